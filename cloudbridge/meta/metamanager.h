/* MetaManager: the node's local copy of every object the cloud sent it (docs/kubeedge-wire.md §6),
 * in KubeEdge's own `meta` table, in the bridge's meta DB file. Cloud messages of the groups
 * resource and func are stored and acked once committed, handed to the hook of their consumer
 * (meta/resource.h says which: Edged, devices.c); queries are answered as edgecore does, from
 * the cloud first for remote-first types while the link is up, else from the table. Requests
 * to the cloud (Edged's node, lease, pod status) go through metamgr_remote.
 *
 * MetaManager calls only into hub/ (to ack and to send); the relay and Edged register
 * callbacks with it.
 */
#ifndef KEDGE_METAMANAGER_H
#define KEDGE_METAMANAGER_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

#include "hub/edgehub.h"
#include "kedge/msg.h"
#include "hub/router.h"

/* The keys MetaManager reads (config.h); strings borrowed. */
struct metamgr_config {
    const char *path;            /* meta_db_path */
    long remote_query_timeout_s; /* edgecore's remoteQueryTimeout */
    const char *node_namespace;  /* decides whether node queries are remote-first */
};

struct metamgr;
/* A reply to metamgr_remote: m NULL with err -ETIMEDOUT / -ECANCELED when none came. */
typedef void (*metamgr_reply_fn)(void *ctx, const struct kedge_msg *m, int err);
typedef void (*metamgr_row_fn)(void *ctx, const char *key, const char *value);
/* Edged's hook for cloud insert/update/delete of the types it follows (resource_wants_edged:
 * pods, configmaps, secrets), after the row is committed, before the ack. */
typedef void (*metamgr_pod_fn)(void *ctx, const struct kedge_msg *m);
/* devices.c's hook for devices and device models (type "device" or "devicemodel", from the
 * device controller or the object sync after a reconnect), before anything is stored: it stores
 * the row (metamgr_store) and acks the cloud itself. Returns as a route_fn does. */
typedef int (*metamgr_device_fn)(void *ctx, const struct kedge_msg *m, const char *type);

/* The answer to a local query ($ke/meta/{ref}): the relay registers it (metamgr_set_answer). */
typedef void (*metamgr_answer_fn)(void *ctx, const char *ref, const char *json, size_t len);

/* Open the meta DB and register for the resource and func groups on r; hub: the link it acks
 * on and asks the cloud through; lws: the loop for the remote reply deadlines. The DB file is
 * flock()ed while it is open, so a second bridge (or kedge-ctl import) on the same file is
 * refused: KEDGE_ESTORE, logged. */
int metamgr_open(const struct metamgr_config *cfg, struct lws_context *lws, struct router *r,
                 struct edgehub *hub, struct metamgr **out);
void metamgr_start(struct metamgr *mm);
/* Stopping: the reply deadline timer ends (waiters are cancelled at close). */
void metamgr_stop(struct metamgr *mm);
/* Cancels the waiters (-ECANCELED), closes the DB. After the loop is gone is fine. */
void metamgr_close(struct metamgr *mm);
/* The table: INSERT OR REPLACE / lookup by key / all rows of a type. */
int metamgr_put(struct metamgr *mm, const char *key, const char *value, size_t len);
/* The same with the type given, for a key whose second level is not its type (edgecore's
 * mapper rows: key node/nodeID/namespace/devicemapper/{name}, type devicemapper). */
int metamgr_put_typed(struct metamgr *mm, const char *key, const char *type, const char *value,
                      size_t len);
int metamgr_get(struct metamgr *mm, const char *key, char **value); /* -ENOENT if absent */
int metamgr_delete(struct metamgr *mm, const char *key);            /* 0 also when absent */
int metamgr_list(struct metamgr *mm, const char *type, metamgr_row_fn fn, void *ctx);
/* A query of the local interface ($ke/meta/{ref}, include/kedge/ke.h), answered through
 * the registered answer function now or, for a remote-first type while the link is up, when the
 * cloud replies or the remote query timeout passes. ref: one topic level (the relay checks it); ref
 * and payload are borrowed (copied when the answer has to wait). Bad requests are answered
 * {"ok":false,"reason":...}; nothing is returned because the asker is the one to tell. */
void metamgr_local_request(struct metamgr *mm, const char *ref, const char *payload, size_t len);
/* Send m (msg_id set) to the cloud now and call fn with its reply. -ENOTCONN offline. */
int metamgr_remote(struct metamgr *mm, const struct kedge_msg *m, int timeout_ms,
                   metamgr_reply_fn fn, void *ctx);
void metamgr_set_answer(struct metamgr *mm, metamgr_answer_fn fn, void *ctx);
void metamgr_set_pod_hook(struct metamgr *mm, metamgr_pod_fn fn, void *ctx);
void metamgr_set_device_hook(struct metamgr *mm, metamgr_device_fn fn, void *ctx);
/* Apply a cloud insert/update/patch/delete (m->resource the key) to the table as edgecore's
 * MetaManager does (a pod row goes only with its UID). 0, KEDGE_ESCHEMA, KEDGE_ESTORE. */
int metamgr_store(struct metamgr *mm, const struct kedge_msg *m);
/* A reply of the edge controller, {"Object":..,"Err":..}: the Object's JSON (kedge_malloc), or
 * NULL when Err is set (*reason: its reason, e.g. "NotFound", borrowed from nothing: static or
 * NULL) or there is none. A reply that is the object itself is taken as the object. */
char *metamgr_object_of(const struct kedge_msg *m, const char **reason);

#endif
