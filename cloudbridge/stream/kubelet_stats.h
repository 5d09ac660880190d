/* EdgeStream's METRIC_CONNECT handler (kubelet_stats.c): the kubelet endpoints cloudcore's
 * stream server forwards through the tunnel (cloud/pkg/cloudstream/streamserver.go getMetrics:
 * /stats, /stats/summary, /stats/container, /stats/{pod}/{container},
 * /stats/{ns}/{pod}/{uid}/{container}, /metrics, /metrics/cadvisor, /metrics/probes,
 * /metrics/resource), answered as kubelet 1.26 (edgecore v1.15.4's) answers them.
 *
 * cloudcore has written 200 to the API server before it asks the edge, so only the body
 * crosses (pkg/stream/edgedmetricsconnection.go: the body as DATA, line by line, then
 * REMOVE_CONNECT): a path kubelet does not serve gets its 404 text as the body all the same.
 */
#ifndef KEDGE_STREAM_KUBELET_STATS_H
#define KEDGE_STREAM_KUBELET_STATS_H

#include <stdint.h>

#include "edged.h"
#include "nodestats.h"
#include "runtime.h"
#include "session.h"

struct kubelet_stats_config {
    struct runtime *rt; /* its stats op gives the containers' samples (NULL op: none) */
    /* the pods with running containers (edged_pod_list, ctx its struct edged) */
    int (*pods)(void *ctx, edged_pod_fn fn, void *fctx);
    void *pods_ctx;
    const char *node_name;
    struct nodestats_src node; /* strings borrowed for the handler's lifetime */
    int64_t (*now_ms)(void);   /* the wall clock (NULL: kedge_wall_ms) */
};

struct kubelet_stats;

/* 0 or -ENOMEM. */
int kubelet_stats_new(const struct kubelet_stats_config *cfg, struct kubelet_stats **out);
/* Serve METRIC_CONNECT on s (stream_session_register). */
int kubelet_stats_register(struct kubelet_stats *k, struct stream_session *s);
/* After the session is freed (its connections' runtime calls may still come back later: they
 * find their connection orphaned and touch nothing of k). NULL ok. */
void kubelet_stats_free(struct kubelet_stats *k);

/* The handler itself (hctx: a struct kubelet_stats), for tests. */
extern const struct stream_handler_ops kubelet_stats_ops;

#endif
