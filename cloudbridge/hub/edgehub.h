/* EdgeHub: the websocket link to cloudcore's CloudHub (docs/kubeedge-wire.md §4).
 *
 * wss://{cloud}:{port}/{projectID}/{node}/events with the headers CloudHub needs, mutual TLS
 * from the CA/cert/key files, one JSON message per text frame. It sends, in this order, the
 * application keepalive, direct messages (acks, responses, requests whose answers someone
 * waits for) and the cloud queue (cloudq.h) through the rate limit; it proves delivery of the
 * queue's entries with PING/PONG and finds an entry the cloud refuses (blame.h). Received
 * messages go to the router (router.h); what the link itself answers (twin confirmations,
 * "error" answers to queued entries) never leaves this room.
 *
 * EdgeHub calls nobody outside hub/: whoever cares about the link state registers a callback
 * (edgehub_on_link), and the rooms above call it to send.
 */
#ifndef KEDGE_EDGEHUB_H
#define KEDGE_EDGEHUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "cloudq.h"
#include "kedge/msg.h"
#include "router.h"

/* The keys EdgeHub reads (config.h says what each means); strings are borrowed. */
struct edgehub_config {
    const char *node_name, *project_id, *cloud_host;
    long cloud_port;
    const char *tls_ca_file, *tls_cert_file, *tls_key_file;
    long keepalive_s, ping_idle_s, dead_link_s;
    long backoff_initial_ms, backoff_max_ms;
    long cloud_qps, cloud_burst;
    long resend_s;
    long max_frame_bytes;
};

/* The link came up (connected true) or went down. */
typedef void (*edgehub_link_fn)(void *ctx, bool connected);

struct edgehub;

/* q: the queue it sends from; r: where received messages go. Both outlive the hub. */
int edgehub_new(const struct edgehub_config *cfg, struct lws_context *lws, struct cloudq *q,
                struct router *r, struct edgehub **out);
void edgehub_free(struct edgehub *eh);
/* Call fn on every change of the link state (a few listeners; 0 or -ENOMEM). */
int edgehub_on_link(struct edgehub *eh, edgehub_link_fn fn, void *ctx);
/* Start connecting (and keep reconnecting with capped, jittered backoff). */
void edgehub_start(struct edgehub *eh);
bool edgehub_connected(const struct edgehub *eh);
/* Ask for a writable callback: something new is in the queue or the direct messages. */
void edgehub_kick(struct edgehub *eh);
/* Queue a message that is not queue traffic (acks, responses): sent before queued entries,
 * lost with the link (the cloud resends what it still wants). msg JSON is copied. */
int edgehub_send_direct(struct edgehub *eh, const char *json, size_t len);
/* Answer a cloud message with operation "response", content "OK", parent_msg_id. */
int edgehub_ack(struct edgehub *eh, const struct kedge_msg *m);
/* Stopping: no reconnect, no blame, timers cancelled. */
void edgehub_stop(struct edgehub *eh);
/* Stopping (after edgehub_stop): close the link with a websocket close frame, 1000 normal
 * closure. Returns false when there is no link to close. The frame goes out from the loop:
 * run it until edgehub_closed, with a deadline of the caller's. */
bool edgehub_close(struct edgehub *eh);
bool edgehub_closed(const struct edgehub *eh);
struct edgehub_stats {
    bool connected;
    uint64_t reconnects;
    int64_t last_keepalive_ms, last_delivery_ms; /* wall clock, 0 never */
    bool probing; /* entries go one at a time to find the one the cloud refuses */
};
void edgehub_stats(const struct edgehub *eh, struct edgehub_stats *st);
/* Close the link now and dial again (new certificate). */
void edgehub_redial(struct edgehub *eh);
/* The protocol for the context's list; its callbacks find the hub through the vhost it makes
 * for the TLS identity (lws_vhost_user), so one process could hold several. */
extern const struct lws_protocols edgehub_protocol;

#endif
