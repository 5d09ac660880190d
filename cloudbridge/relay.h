/* The relay: the bridge's client of the local broker, speaking the $ke/ contract
 * (include/kedge/ke.h) with the plugin, on the one lws loop (relay.c says how).
 *
 * Plugin -> cloud: each $ke/outbox/{seq} is put into the cloud queue, and acked once the
 * batch is committed. Cloud -> plugin: relay_down publishes $ke/down/{msg_id} and calls back
 * when the plugin's result says the change is committed. It also answers the local queries
 * ($ke/meta, through MetaManager), the operator's queue requests ($ke/bctl, cloudq_ctl.c),
 * tells the plugin the cloud link state (a listener on EdgeHub) and publishes $ke/status.
 *
 * The relay may call hub/ and meta/; nothing there calls it: they get callbacks.
 */
#ifndef KEDGE_RELAY_H
#define KEDGE_RELAY_H

#include <stdbool.h>

#include <libwebsockets.h>

#include "hub/certwatch.h"
#include "hub/cloudq.h"
#include "hub/edgehub.h"
#include "kedge/buf.h"
#include "kedge/msg.h"
#include "meta/metamanager.h"

/* The keys the relay reads (config.h); strings borrowed. */
struct relay_config {
    const char *node_name;
    const char *broker_host;
    long broker_port;
    const char *broker_username, *password;
    long down_timeout_ms;     /* the plugin's answer to a cloud message */
    long upload_budget_bytes; /* for the log line of a refused upload */
};

/* What the relay works with; all outlive it. meta and certs may be NULL. */
struct relay_deps {
    struct lws_context *lws;
    struct lws_vhost *vhost; /* the local one: the MQTT socket is adopted there */
    struct cloudq *q;
    struct edgehub *hub;
    struct metamgr *meta;
    struct certwatch *certs;
};

struct relay;

/* Registers itself for EdgeHub's link state and MetaManager's query answers. */
int relay_new(const struct relay_config *cfg, const struct relay_deps *deps, struct relay **out);
void relay_free(struct relay *r);
void relay_start(struct relay *r);
bool relay_ready(const struct relay *r); /* connected and hello accepted */
/* Hand a cloud message to the plugin ($ke/down/{msg_id}); done(ctx, m_copy, ok) is called when
 * the plugin answered (after its commit) or the timeout passed (ok false). */
typedef void (*relay_done_fn)(void *ctx, const struct kedge_msg *m, bool ok);
int relay_down(struct relay *r, const struct kedge_msg *m, relay_done_fn done, void *ctx);
/* The same, for a sender that needs the plugin's answer (a DMI mapper's report): code 0
 * applied, the plugin's code (400, 404, 500) with its reason, or -1 when no answer came
 * (timeout, the bridge stopping; reason says which). */
typedef void (*relay_result_fn)(void *ctx, const struct kedge_msg *m, int code, const char *reason);
int relay_down_result(struct relay *r, const struct kedge_msg *m, relay_result_fn result,
                      void *ctx);
/* Another answerer of $ke/bctl requests, asked first (DMI's mapper_list): 1 with the answer
 * in out when the op is its own, 0 (out untouched) to leave it to the queue's (cloudq_ctl.c),
 * < 0 on error. */
typedef int (*relay_bctl_fn)(void *ctx, const char *req, size_t len, struct kedge_buf *out);
void relay_set_bctl(struct relay *r, relay_bctl_fn fn, void *ctx);
/* Commit and ack what was received, disconnect cleanly; no reconnect after it. */
void relay_stop(struct relay *r);
/* The raw protocol for the context's list: its callbacks find the relay in the adopted
 * socket's opaque user data. */
extern const struct lws_protocols relay_protocol;

#endif
