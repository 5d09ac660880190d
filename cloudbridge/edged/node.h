/* The edge node as Kubernetes sees it: registration, status and lease, as edged's kubelet
 * does them (node.c). It reaches the bridge through struct edged_deps (the store, requests to
 * the cloud, the link state), as Edged does.
 */
#ifndef KEDGE_EDGED_NODE_H
#define KEDGE_EDGED_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "edged.h"

struct node;

/* Strings borrowed for the node's lifetime. */
struct node_config {
    const char *node_name;
    const char *node_ip;        /* the InternalIP reported */
    const char *node_namespace; /* "default" (cloudcore v1.12-v1.22) or "null" (v1.23+) */
    const char *db_path;        /* the disk whose size the node reports */
    const char *kubelet_version;
    const char *runtime_version; /* read at every report: "" until the runtime said */
    int64_t status_interval_s, lease_interval_s;
    int64_t remote_timeout_ms;
};

/* Register the node, then keep its status and lease fresh while the link is up. deps is
 * copied. 0 or -ENOMEM. */
int node_new(const struct edged_deps *deps, const struct node_config *cfg, struct node **out);
/* Before the loop goes away: no new timers. NULL ok. */
void node_stop(struct node *n);
/* After the requests in flight were answered (metamgr_close cancels them). NULL ok. */
void node_free(struct node *n);
/* The node's InternalIP (the first IPv4 address of an interface that is up and not loopback;
 * 127.0.0.1 when there is none), as reported in the Node's addresses and the pods' hostIP. */
void node_internal_ip(char *out, size_t n);

#endif
