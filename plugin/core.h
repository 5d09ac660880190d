/* The plugin's core: the pieces every request passes through, built once by plugin.c and
 * wired to each other here. Each module owns its own state and holds only the pieces it uses
 * (borrowed from the core); nothing in it is global.
 *
 *   MESSAGE  -> core_on_message: $ke/ -> ke.h; DeviceTwin topics -> devicetwin.h's table;
 *               uploads and the cloud's subscriptions -> eventbus.h
 *   TICK     -> batch.h: commit when due, then publish what the commit released
 *   DISCONNECT -> ke.h (the bridge's session)
 *
 * Lower modules reach higher ones only through callbacks registered here (the batch's
 * every-5-s and store-reopened hooks), so the plugin's files call each other without a cycle
 * (unit_plugin_callgraph checks it with scripts/callgraph.py).
 */
#ifndef KEDGE_CORE_H
#define KEDGE_CORE_H

#include "batch.h"
#include "devicetwin.h"
#include "eventbus.h"
#include "ke.h"
#include "options.h"
#include "outbox.h"
#include "registry.h"
#include "replies.h"
#include "store.h"

struct kedge_core {
    const struct plugin_config *cfg;
    struct publisher pub; /* the way out to clients; replies, outbox and ke point at it */
    struct store *store;
    struct registry *reg;
    struct replies *out;
    struct outbox outbox;
    struct batch batch;
    struct devicetwin dt;
    struct eventbus bus;
    struct ke ke;
};

/* Build the core in place (it must not move afterwards: its modules point into it). cfg and
 * pub's context are borrowed. A store that cannot be opened is not fatal: devices get 500s
 * and the batch retries every few seconds. 0 or -ENOMEM (then c is cleaned up). */
int core_init(struct kedge_core *c, const struct plugin_config *cfg, const struct publisher *pub);
/* Commit what is pending (publishing it if the publisher still works), then free. */
void core_cleanup(struct kedge_core *c);

struct mosquitto_evt_message;
/* MOSQ_EVT_MESSAGE: returns what the broker should do with the original publish
 * (MOSQ_ERR_SUCCESS: devices' own subscribers still see their requests, as with edgecore in
 * external mode; MOSQ_ERR_ACL_DENIED for a refused upload). */
int core_on_message(struct kedge_core *c, struct mosquitto_evt_message *ev);
/* MOSQ_EVT_TICK. */
void core_tick(struct kedge_core *c);
/* MOSQ_EVT_DISCONNECT. */
void core_on_disconnect(struct kedge_core *c, const char *client_id);

#endif
