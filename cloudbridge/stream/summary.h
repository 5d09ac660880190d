/* kubelet's Summary API (k8s.io/kubelet/pkg/apis/stats/v1alpha1, kubelet 1.26 as edgecore
 * v1.15.4 embeds it) as data, and the two texts made of it: the /stats/summary JSON and the
 * /metrics/resource Prometheus exposition. Pure: no I/O (summary_json.c, summary_prom.c).
 *
 * Times are Unix ms; a has_ flag false leaves the optional field out, as Go's omitempty does
 * for the nil pointer kubelet leaves there.
 */
#ifndef KEDGE_STREAM_SUMMARY_H
#define KEDGE_STREAM_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"

struct ks_cpu {
    int64_t time_ms;
    uint64_t usage_ns;   /* usageCoreNanoSeconds: cumulative */
    uint64_t nano_cores; /* usageNanoCores: the rate over the last sample window */
    bool has_nano_cores;
};

struct ks_mem {
    int64_t time_ms;
    uint64_t available, usage, working_set, rss, page_faults, major_page_faults;
    bool has_available, has_rss, has_faults;
};

struct ks_fs {
    int64_t time_ms;
    uint64_t available, capacity, used, inodes_free, inodes, inodes_used;
    bool has_used;
};

struct ks_iface {
    char name[32];
    uint64_t rx_bytes, rx_errors, tx_bytes, tx_errors;
};

struct ks_net {
    int64_t time_ms;
    struct ks_iface *ifs; /* owned */
    size_t n;
    int def; /* the default interface (kubelet's "eth0") inline, or -1: none */
};

struct ks_rlimit {
    int64_t time_ms;
    int64_t maxpid, curproc; /* < 0: unknown, left out */
};

struct ks_node {
    const char *name; /* borrowed */
    int64_t start_ms;
    bool has_cpu, has_mem, has_net, has_fs, has_image_fs, has_rlimit;
    struct ks_cpu cpu;
    struct ks_mem mem;
    struct ks_net net;
    struct ks_fs fs, image_fs;
    struct ks_rlimit rlimit;
};

struct ks_container {
    char *name, *id; /* owned */
    int64_t start_ms;
    bool has_cpu, has_mem;
    struct ks_cpu cpu;
    struct ks_mem mem;
};

struct ks_pod {
    char *ns, *name, *uid; /* owned */
    int64_t start_ms;
    struct ks_container *cs; /* owned */
    size_t n_cs;
    bool has_cpu, has_mem;
    struct ks_cpu cpu;
    struct ks_mem mem;
};

struct ks_summary {
    struct ks_node node;
    struct ks_pod *pods; /* owned */
    size_t n_pods;
};

/* Free what the summary owns (not s itself). */
void ks_summary_cleanup(struct ks_summary *s);

/* Each pod's cpu and memory as the sum of its containers' (kubelet reads the pod's cgroup,
 * which holds them): a field only when every container has it. */
void ks_summary_pod_totals(struct ks_summary *s);

/* The /stats/summary body as kubelet's go-restful writes it (encoding/json's MarshalIndent with
 * a one-space indent), each line ended by "\n" as edgecore's scanner sends it. 0 or -ENOMEM. */
int ks_summary_json(const struct ks_summary *s, struct kedge_buf *out);

/* The /metrics/resource body (kubelet's resource_metrics.go collector through Prometheus'
 * text encoder): families by name, samples by label values, with their own timestamps.
 * scrape_error: kubelet's gauge (1: the summary could not be made). 0 or -ENOMEM. */
int ks_resource_metrics(const struct ks_summary *s, bool scrape_error, struct kedge_buf *out);

/* Go's strconv.FormatFloat(f, 'g', -1, 64) (Prometheus' text values): the shortest digits
 * that read back as f, with an exponent below 1e-4 and from 1e6 on (1.642962944e+09). out: 32
 * bytes at least. */
void ks_go_float(double f, char *out, size_t n);

#endif
