/* EdgeStream: `kubectl logs`, `exec`, `attach` and the node's metrics through cloudcore's
 * CloudStream. edgecore's edge/pkg/edgestream opens one websocket to cloudcore's tunnel port
 * and serves, per connectID, the kubelet requests the API server sends the node; here the
 * tunnel (tunnel.c) feeds the connectID table (session.c), whose handlers (logs.c, exec.c)
 * serve them straight from the container runtime: there is no kubelet HTTP port in between.
 *
 * This room calls nothing of edged/: it gets the runtime and the pod/container lookup as
 * struct stream_deps (filled by cloudbridge/stream_wiring.c).
 */
#ifndef KEDGE_STREAM_H
#define KEDGE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "edged.h" /* edged_pod_fn: types only */
#include "runtime.h"
#include "session.h"

/* Edged's lookup (edged_find_container): the runtime id of a pod's container, the previous
 * (terminated) instance when previous; container "" = the pod's only one. 0, or -ENOENT with
 * kubelet's message in why. */
typedef int (*stream_find_fn)(void *ctx, const char *ns, const char *pod, const char *container,
                              bool previous, char *id, size_t id_len, char *why, size_t why_len);

/* Edged's lookup for exec and attach (edged_find_running): the running instance only. 0, or
 * -ENOENT with kubelet's exec text in why ("pod does not exist", `container not found ("c")`). */
typedef int (*stream_find_running_fn)(void *ctx, const char *ns, const char *pod,
                                      const char *container, char *id, size_t id_len, char *why,
                                      size_t why_len);

struct stream_deps {
    struct runtime *rt; /* NULL: no runtime (engine_socket none): every request is refused */
    stream_find_fn find;
    stream_find_running_fn find_running;
    void *find_ctx;
    /* the node's metrics (kubelet_stats.c): the pods with running containers (edged_pod_list;
     * NULL: none listed), and the filesystem kubelet's fs and imageFs stats describe */
    int (*pods)(void *ctx, edged_pod_fn fn, void *fctx);
    void *pods_ctx;
    const char *fs_path;
};

struct stream_config {
    const char *node_name; /* borrowed, as the TLS file names: outlive the stream */
    char node_ip[64];      /* copied */
    char server_host[256];
    long server_port;
    const char *tls_ca_file, *tls_cert_file, *tls_key_file;
    long backoff_initial_ms, backoff_max_ms, ping_idle_s, dead_link_s;
};

struct stream;

/* Builds the tunnel and the handlers, and starts connecting. 0 or -ENOMEM. */
int stream_new(const struct stream_config *cfg, const struct stream_deps *deps,
               struct lws_context *lws, struct stream **out);
/* Who serves a *_CONNECT type (exec.c, metrics.c register here); replaces the refusal. */
int stream_register(struct stream *s, uint64_t type, const struct stream_handler_ops *ops,
                    void *hctx);
/* Before the loop goes: every connection ends (its runtime work cancelled), the tunnel closes. */
void stream_stop(struct stream *s);
/* After the loop is destroyed. */
void stream_free(struct stream *s);

struct stream_stats {
    bool connected;
    uint64_t reconnects;
    size_t connections; /* open stream connections */
    size_t queued;      /* bytes waiting for the tunnel */
};
void stream_stats(const struct stream *s, struct stream_stats *st);

#endif
