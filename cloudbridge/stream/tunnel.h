/* EdgeStream's websocket to cloudcore's CloudStream tunnel server (edgecore's
 * edge/pkg/edgestream): wss://{server}/v1/kubeedge/connect with the node's client certificate
 * and the headers SessionHostNameOverride (the node; cloudcore keys its session by it) and
 * SessionInternalIP (where kube-apiserver reaches the node's kubelet port). Frames (frame.h)
 * go up to the owner one at a time; the owner's frames go out through one queue, one frame per
 * writable callback so EdgeHub's link on the same loop keeps its turn. It reconnects with the
 * same back-off as EdgeHub; a CLOSE_CONNECT from the cloud is logged and the link closed.
 */
#ifndef KEDGE_STREAM_TUNNEL_H
#define KEDGE_STREAM_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "frame.h"

struct tunnel_config {
    const char *node_name, *node_ip; /* the two session headers */
    const char *host;                /* the tunnel server */
    long port;
    const char *tls_ca_file, *tls_cert_file, *tls_key_file;
    long backoff_initial_ms, backoff_max_ms;
    long ping_idle_s, dead_link_s;
    size_t high_water; /* queued bytes: above it the owner is told "over", drained below half */
};

struct tunnel_fns {
    /* One whole frame from the cloud (not CLOSE_CONNECT: the tunnel handles it). */
    void (*frame)(void *ctx, const struct stream_frame *f);
    /* The tunnel came up or went down (down: every connection on it is gone). */
    void (*link)(void *ctx, bool up);
    /* The queue went from above high_water to below half of it. */
    void (*drained)(void *ctx);
    void *ctx;
};

struct tunnel;

int tunnel_new(const struct tunnel_config *cfg, struct lws_context *lws,
               const struct tunnel_fns *fns, struct tunnel **out);
void tunnel_start(struct tunnel *t);
/* No reconnect, no callbacks; the link is closed (the loop must still run for the close). */
void tunnel_stop(struct tunnel *t);
/* After the loop is gone (or after tunnel_stop and the close). */
void tunnel_free(struct tunnel *t);
/* Queue a frame; DATA longer than STREAM_TUNNEL_DATA_MAX goes as several. 0, -ENOMEM,
 * -ENOTCONN (no tunnel: nothing queued). */
int tunnel_send(struct tunnel *t, uint64_t id, uint64_t type, const char *data, size_t len);
size_t tunnel_queued(const struct tunnel *t);
bool tunnel_connected(const struct tunnel *t);
uint64_t tunnel_reconnects(const struct tunnel *t);

/* DATA per frame. edgecore sends 256-byte pieces (pkg/stream/edgedlogconnection.go); cloudcore
 * reads each frame whole with io.ReadAll(io.LimitReader(r, MaxRespBodyLength)), 1 MiB in
 * common/constants/default.go, so any frame under that is taken whole. 32 KiB keeps the
 * per-frame cost low without holding a big buffer per connection. */
#define STREAM_TUNNEL_DATA_MAX (32 * 1024)
/* What we take from the cloud in one frame: its own limit, and the head. */
#define STREAM_TUNNEL_RX_MAX ((1 << 20) + 20)

extern const struct lws_protocols tunnel_protocol;

#endif
