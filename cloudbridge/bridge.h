/* kedge-bridge's private header: one section per file.
 *
 *   main.c      arguments, config, signals, the one lws event loop; wiring only
 *   config.c    the key/value config table: parse, validate as a whole
 *   relay.c     libmosquitto client to the local broker, on the lws loop: the $ke/ contract
 *   outbox.c    the bridge's durable queue to the cloud (SQLite, WAL); outboxput.c puts into
 *               it (coalescing, budget), deadletter.c keeps what the cloud refused
 *   outboxctl.c the operator's $ke/bctl requests on that queue
 *   edgehub.c   the websocket link to CloudHub: TLS, headers, framing, keepalive, reconnect
 *   router.c    cloud -> edge dispatch by route.group; modules register handlers
 *   ratelimit.c token bucket for edge -> cloud traffic (cloud_qps / cloud_burst)
 *   fault.c     test-only crash points (KEDGE_BRIDGE_CRASH_AT) for the durability tests
 */
#ifndef KEDGE_BRIDGE_H
#define KEDGE_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "kedge/buf.h"
#include "kedge/msg.h"

/* ==== config.c ========================================================================== */

struct bridge_config {
    char *node_name;
    char *project_id;
    char *cloud_host;
    long cloud_port;
    char *tls_ca_file;
    char *tls_cert_file;
    char *tls_key_file;
    char *broker_host;
    long broker_port;
    char *broker_username;
    char *broker_password_file;
    char *db_path;
    long keepalive_s;      /* application keepalive to CloudHub (edgecore: 15) */
    long ping_idle_s;      /* websocket PING after this much silence */
    long dead_link_s;      /* hang up after this much silence (ping unanswered) */
    long backoff_initial_ms;
    long backoff_max_ms;
    long cloud_qps;        /* 0: no limit */
    long cloud_burst;
    long resend_s;         /* unconfirmed twin/state messages go again (edgecore: 60) */
    long resend_max;       /* ... at most this often, then set aside (0: for ever) */
    long upload_budget_bytes; /* bytes of uploads the queue holds (0: unbounded) */
    char *upload_policy;   /* budget full: "refuse" (back-pressure) or "drop-oldest" */
    long poison_after;     /* refusals by the cloud before an entry is a dead letter */
    long max_frame_bytes;
    long down_timeout_ms;  /* plugin answer to a cloud message */
    char *log_level;
    long cloud_https_port; /* CloudHub's certificate endpoint (10002) */
    long rotate_certificates;
    char *meta_db_path;    /* MetaManager's own SQLite file */
    char *cloud_version;   /* cloudcore's MAJOR.MINOR: selects the generation (config.c) */
    long cloud_minor;      /* derived: 15 for "1.15" */
    char *node_namespace;  /* "default" (cloudcore v1.12-v1.22) or "null" (v1.23+): derived
                              from cloud_version unless set */
    char *kubelet_version; /* the Node's nodeInfo.kubeletVersion */
    long status_interval_s;      /* node status computed (kubelet: 10 s) */
    long lease_interval_s;       /* node lease renewed (kubelet: 10 s) */
    long remote_query_timeout_s; /* edgecore's remoteQueryTimeout (60 s) */
    char *engine_socket;   /* Docker Engine API socket; "none": Edged off */
    char *pods_dir;        /* volumes of the pods: {pods_dir}/{uid}/volumes/{name} */
    char *pod_infra_image; /* the infra ("pause") container's image */
    long pod_backoff_initial_ms, pod_backoff_max_ms; /* kubelet's crash back-off: 10 s, 300 s */
    long pod_resync_s;     /* relist the engine's containers at least this often */
    long engine_nofile, engine_nproc; /* Ulimits sent with every create; 0 = the engine's */
    char *password;        /* read from broker_password_file */
};

/* Parse the file (may be NULL: defaults only), then `key=value` overrides, into a fresh cfg;
 * validate as a whole. Errors name the file and line. Returns 0, KEDGE_ECONFIG, -ENOMEM. */
int config_load(struct bridge_config *cfg, const char *path, char *const *overrides, int n);
void config_cleanup(struct bridge_config *cfg);
/* Print every key with its current value (for --help and the docs). */
void config_print_keys(void);
/* Device ids are {namespace}/{name} (cloudcore v1.17+), else the bare name. */
bool config_device_ids_namespaced(const struct bridge_config *cfg);
/* Whether the configured cloud answers a device's state/update (cloudcore v1.18+). */
bool bridge_cloud_answers_state(const struct bridge_config *cfg);

/* ==== ratelimit.c ======================================================================== */

struct ratelimit {
    double tokens, rate, burst;
    uint64_t last_ms;
};

void ratelimit_init(struct ratelimit *rl, long qps, long burst);
/* Take one token: 0 now, or the ms to wait for the next one. qps 0: always 0. */
uint64_t ratelimit_take(struct ratelimit *rl, uint64_t now_ms);

/* ==== outbox.c =========================================================================== */

enum outbox_kind {
    OUTBOX_FIRE = 0,    /* delivered once the cloud has read it (uploads, requests) */
    OUTBOX_CONFIRM = 1, /* kept until the cloud answers with parent_msg_id (twin, state);
                         * its subject is its resource: one per subject is on the link */
};

struct outbox_entry {
    int64_t id;
    char *msg_id;
    char *msg; /* the beehive message JSON */
    size_t len;
    enum outbox_kind kind;
    int64_t resends; /* unanswered resends so far (confirm entries) */
    bool resend;     /* boutbox_next picked it because its answer is overdue */
    bool held;       /* a fire entry the cloud answered "error": sent again after resend_s */
};

struct boutbox_opts {
    long resend_max;      /* unanswered resends before an entry is a dead letter (0: never) */
    bool state_answered;  /* the cloud answers state/update (v1.19+): state reports are
                           * confirm entries; otherwise fire entries (nothing would confirm) */
    int64_t budget_bytes; /* bytes of queued uploads (0: unbounded) */
    bool drop_oldest;     /* budget full: drop the oldest uploads; else refuse the new one */
    long poison_after;    /* refusals by the cloud before an entry is a dead letter (0: never) */
};

/* One row as an operator sees it (queue or dead letters); strings are borrowed for the call. */
struct outbox_row {
    int64_t id;
    const char *msg_id, *resource;
    const char *reason; /* dead letters: why; queue: the last refusal, or "" */
    const char *msg;    /* "" in lists */
    size_t len;
    enum outbox_kind kind;
    bool subject;   /* twin/state: one per resource, coalesced */
    bool in_flight; /* on the link, the cloud's answer awaited */
    bool blocked;   /* waits behind its subject's entry on the link */
    int64_t bytes, created_ms, dead_ms, failures;
};
typedef int (*outbox_row_fn)(void *ctx, const struct outbox_row *row);

struct boutbox_stats {
    int64_t depth, oldest_ms;
    int64_t upload_bytes, budget_bytes;
    int64_t uploads_dropped;     /* by drop-oldest, or larger than the whole budget */
    int64_t coalesced;           /* reports merged into a waiting one of their subject */
    int64_t stale_dropped;       /* re-offers older than what their subject took */
    int64_t set_aside;           /* moved to the dead letters (any reason) */
    int64_t dead_letters;        /* in the dead-letter table now (-1: unknown) */
    int64_t failures;            /* refusals counted (link closed on an entry, "error") */
    int64_t dropped_by_operator; /* queue rows and dead letters */
};

struct boutbox;

int boutbox_open(const char *path, const struct boutbox_opts *opts, struct boutbox **out);
void boutbox_close(struct boutbox *ob);
/* Store a message from the plugin (its seq; 0: none) into the open batch. Twin/state reports
 * coalesce per resource (at most one on the link and one waiting); one with a seq not above
 * the highest its resource took is dropped (a re-offer: newer state is queued). Uploads are
 * deduplicated by msg_id and bounded by budget_bytes. 0 (stored, merged or dropped: ack it),
 * KEDGE_EFULL (an upload over the budget with the refuse policy: do not ack it, nor anything
 * after it; the batch so far stays good), -ENOMEM, KEDGE_ESCHEMA, KEDGE_ESTORE. */
int boutbox_put(struct boutbox *ob, const char *msg, size_t len, int64_t seq);
/* COMMIT the open batch. 0 or KEDGE_ESTORE (then nothing of the batch is stored). */
int boutbox_commit(struct boutbox *ob);
/* The next entry to send: a confirm entry that became its subject's head (the one before it
 * was confirmed) at or before id `after`, else the next sendable entry after `after`, else an
 * entry sent resend_ms ago and still unanswered (or answered "error"). Entries that wait
 * behind an older one of their subject are never returned; an overdue entry past resend_max
 * resends becomes a dead letter instead (logged, counted). Returns 1 (filled; cleanup with
 * boutbox_entry_cleanup), 0 (none), or an error. */
int boutbox_next(struct boutbox *ob, int64_t after, uint64_t resend_ms, struct outbox_entry *e);
void boutbox_entry_cleanup(struct outbox_entry *e);
/* The entry went out on the link: confirm entries are remembered (resent after resend_ms);
 * fire entries wait for boutbox_delivered. 0 or KEDGE_ESTORE. */
int boutbox_sent(struct boutbox *ob, const struct outbox_entry *e);
/* The cloud has read every fire entry up to id upto (a PONG to a PING sent after them):
 * they leave the queue (its depth, lists and budget at once; the rows themselves after a
 * grace, boutbox_sweep, so that an "error" answer coming after the PONG still finds them).
 * Returns how many left, or KEDGE_ESTORE. */
int boutbox_delivered(struct boutbox *ob, int64_t upto);
/* Delete the delivered rows older than grace_ms (PROOF_GRACE_MS; the relay's tick calls it).
 * Returns how many, or KEDGE_ESTORE. */
int boutbox_sweep(struct boutbox *ob, uint64_t grace_ms);
#define BOUTBOX_PROOF_GRACE_MS 3000
/* The cloud answered msg_id: the entry leaves and the next one of its subject may go.
 * Returns 1 if an entry was removed, 0 if none matched, or KEDGE_ESTORE. */
int boutbox_confirmed(struct boutbox *ob, const char *msg_id);
/* The cloud closed the link (or it broke) with entry id written and not proven read: one more
 * failure for it (persisted), why in its reason, plus the failure that started probe mode if
 * one is pending (boutbox_set_probe). At poison_after failures it becomes a dead letter with
 * reason "<why> (N times)". 1 (now a dead letter), 0 (counted, or no such entry),
 * KEDGE_ESTORE. */
int boutbox_blame(struct boutbox *ob, int64_t id, const char *why);
/* The cloud answered msg_id with operation "error" (why: its content): one more failure; the
 * entry goes again after resend_s, or becomes a dead letter at poison_after. 1, 0, -ENOENT
 * (no such entry), KEDGE_ESTORE. */
int boutbox_refused(struct boutbox *ob, const char *msg_id, const char *why);
/* Probe mode (edgehub.c): the highest id that was written but not proven read when a link
 * failed with several entries in doubt; 0 when not probing. Persisted, so a restart probes on.
 * Setting a boundary also keeps that failure pending for the entry the probe finds (its next
 * boutbox_blame counts it); setting 0 forgets it. 0 or KEDGE_ESTORE. */
int64_t boutbox_probe_upto(struct boutbox *ob);
/* The plugin's hello says the highest seq its database ever gave (last_seq). A mark of the
 * newest entry taken per subject above it can only come from a database since replaced (the
 * plugin's numbers start over with a new kedge.db): those marks are forgotten, or every twin
 * report of those devices would be dropped as stale. Returns how many, or KEDGE_ESTORE. */
int boutbox_plugin_seq(struct boutbox *ob, int64_t last_seq);
int boutbox_set_probe(struct boutbox *ob, int64_t upto);
/* Entries moved to the dead letters since the outbox was opened. */
int64_t boutbox_given_up(const struct boutbox *ob);
/* A new link: nothing is written on it yet (everything unconfirmed goes again; a state report
 * not yet written on this link is merged in place rather than moved to the tail). */
void boutbox_reset_sent(struct boutbox *ob);
int64_t boutbox_depth(struct boutbox *ob);
/* created_ms (wall) of the oldest entry, 0 when empty. */
int64_t boutbox_oldest_ms(struct boutbox *ob);
void boutbox_stats(struct boutbox *ob, struct boutbox_stats *st);
/* The operator's view and hands. list: the oldest `limit` rows; show: one with its message
 * (1 found, 0 none); drop: 1 dropped (logged, counted), 0 none; retry: the dead letter goes
 * back to the queue's tail with no failures (a twin/state one under its subject's newer
 * values), 0, -ENOENT, -EBUSY (its subject's report is on the link: retry after its answer).
 * Errors are KEDGE_ESTORE or -ENOMEM. */
int boutbox_list(struct boutbox *ob, long limit, outbox_row_fn fn, void *ctx);
int boutbox_show(struct boutbox *ob, int64_t id, outbox_row_fn fn, void *ctx);
int boutbox_drop(struct boutbox *ob, int64_t id);
int boutbox_dead_list(struct boutbox *ob, long limit, outbox_row_fn fn, void *ctx);
int boutbox_dead_show(struct boutbox *ob, int64_t id, outbox_row_fn fn, void *ctx);
int boutbox_dead_drop(struct boutbox *ob, int64_t id);
int boutbox_dead_retry(struct boutbox *ob, int64_t id);

/* ==== outboxctl.c ======================================================================== */

/* An operator's request on $ke/bctl/{ref} (include/kedge/ke.h): the answer's JSON into out.
 * 0, or -ENOMEM (then out is unusable). Bad requests are answered {"code":400,...}. */
int outboxctl_handle(struct boutbox *ob, const char *req, size_t len, struct kedge_buf *out);

/* ==== router.c =========================================================================== */

struct bridge;
/* A handler owns nothing of m beyond the call. Returns 0 (handled; it answers the cloud
 * itself if an ack is due) or a negative code (logged and dropped by the router). */
typedef int (*route_fn)(struct bridge *br, const struct kedge_msg *m, void *ctx);

struct router;

int router_new(struct router **out);
void router_free(struct router *r);
/* Register fn for route.group `group`. 0 or -ENOMEM. */
int router_add(struct router *r, const char *group, route_fn fn, void *ctx);
/* Dispatch one cloud message. Returns the handler's result, or KEDGE_ESCHEMA (no handler). */
int router_dispatch(struct router *r, struct bridge *br, const struct kedge_msg *m);
/* Whether CloudHub waits for our "response" to this message (its noAckRequired, §5.2). */
bool route_needs_ack(const struct kedge_msg *m);

/* ==== twinbus.c ========================================================================== */

/* Register the groups the plugin owns (twin, user) on the router. */
int twinbus_register(struct router *r);

/* ==== edgehub.c ========================================================================== */

struct edgehub;

int edgehub_new(struct bridge *br, struct edgehub **out);
void edgehub_free(struct edgehub *eh);
/* Start connecting (and keep reconnecting with capped, jittered backoff). */
void edgehub_start(struct edgehub *eh);
bool edgehub_connected(const struct edgehub *eh);
/* Ask for a writable callback: something new is in the outbox or the ack queue. */
void edgehub_kick(struct edgehub *eh);
/* Queue a message that is not outbox traffic (acks, responses): sent before outbox entries,
 * lost with the link (the cloud resends what it still wants). msg JSON is copied. */
int edgehub_send_direct(struct edgehub *eh, const char *json, size_t len);
/* Answer a cloud message with operation "response", content "OK", parent_msg_id. */
int edgehub_ack(struct edgehub *eh, const struct kedge_msg *m);
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
extern const struct lws_protocols edgehub_protocol;

/* ==== relay.c ============================================================================ */

struct relay;

int relay_new(struct bridge *br, struct relay **out);
void relay_free(struct relay *r);
void relay_start(struct relay *r);
bool relay_ready(const struct relay *r); /* connected and hello accepted */
/* Hand a cloud message to the plugin ($ke/down/{msg_id}); done(br, m_copy, ok) is called when
 * the plugin answered (after its commit) or the timeout passed (ok false). */
typedef void (*relay_done_fn)(struct bridge *br, const struct kedge_msg *m, bool ok);
int relay_down(struct relay *r, const struct kedge_msg *m, relay_done_fn done);
/* Tell the plugin the cloud link state (a node/connection message). */
void relay_link_state(struct relay *r, bool connected);
/* Answer a local query: json on $ke/meta/{ref}/result (include/kedge/ke.h). ref, json:
 * borrowed. Returns 0, or -EIO when the broker is not reachable (logged; the asker times out). */
int relay_meta_answer(struct relay *r, const char *ref, const char *json, size_t len);
/* Commit and ack what was received, disconnect cleanly. */
void relay_stop(struct relay *r);
extern const struct lws_protocols relay_protocol;

/* ==== metamanager.c ====================================================================== */

struct metamgr;
/* A reply to metamgr_remote: m NULL with err -ETIMEDOUT / -ECANCELED when none came. */
typedef void (*metamgr_reply_fn)(void *ctx, const struct kedge_msg *m, int err);
typedef void (*metamgr_row_fn)(void *ctx, const char *key, const char *value);
/* Edged's hook for cloud insert/update/delete of pods, configmaps and secrets (after the row is
 * committed, before the ack). */
typedef void (*metamgr_pod_fn)(void *ctx, const struct kedge_msg *m);
/* devices.c's hook for devices and device models (type "device" or "devicemodel", from the
 * device controller or the object sync after a reconnect), before anything is stored: it stores the row (metamgr_store) and acks the
 * cloud itself. Returns as a route_fn does. */
typedef int (*metamgr_device_fn)(void *ctx, const struct kedge_msg *m, const char *type);

/* Open the meta DB and register for the resource and func groups. The DB file is flock()ed
 * while it is open, so a second bridge (or kedge-ctl import) on the same file is refused:
 * KEDGE_ESTORE, logged. */
int metamgr_open(struct bridge *br, const char *path, struct metamgr **out);
void metamgr_start(struct metamgr *mm);
void metamgr_close(struct metamgr *mm);
/* The table: INSERT OR REPLACE / lookup by key / all rows of a type. */
int metamgr_put(struct metamgr *mm, const char *key, const char *value, size_t len);
int metamgr_get(struct metamgr *mm, const char *key, char **value); /* -ENOENT if absent */
int metamgr_delete(struct metamgr *mm, const char *key); /* 0 also when absent */
int metamgr_list(struct metamgr *mm, const char *type, metamgr_row_fn fn, void *ctx);
/* Types whose queries go to the cloud first while the link is up (§6). */
bool metamgr_remote_first(const char *type);
/* A query of the local interface ($ke/meta/{ref}, include/kedge/ke.h), answered through
 * relay_meta_answer now or, for a remote-first type while the link is up, when the cloud
 * replies or the remote query timeout passes. ref: one topic level (the relay checks it);
 * ref and payload are borrowed (copied when the answer has to wait). Bad requests are answered
 * {"ok":false,"reason":...}; nothing is returned because the asker is the one to tell. */
void metamgr_local_request(struct metamgr *mm, const char *ref, const char *payload, size_t len);
/* Send m (msg_id set) to the cloud now and call fn with its reply. -ENOTCONN offline. */
int metamgr_remote(struct metamgr *mm, const struct kedge_msg *m, int timeout_ms,
                   metamgr_reply_fn fn, void *ctx);
void metamgr_set_pod_hook(struct metamgr *mm, metamgr_pod_fn fn, void *ctx);
void metamgr_set_device_hook(struct metamgr *mm, metamgr_device_fn fn, void *ctx);
/* Apply a cloud insert/update/patch/delete (m->resource the key) to the table as edgecore's
 * MetaManager does (a pod row goes only with its UID). 0, KEDGE_ESCHEMA, KEDGE_ESTORE. */
int metamgr_store(struct metamgr *mm, const struct kedge_msg *m);
/* A reply of the edge controller, {"Object":..,"Err":..}: the Object's JSON (kedge_malloc), or
 * NULL when Err is set (*reason: its reason, e.g. "NotFound", borrowed from nothing: static or
 * NULL) or there is none. A reply that is the object itself is taken as the object. */
char *metamgr_object_of(const struct kedge_msg *m, const char **reason);

/* ==== devices.c ========================================================================== */

/* The device controller's Devices and DeviceModels, turned into what the plugin's DeviceTwin
 * needs: the device under this cloud generation's id with typed twins, and each changed
 * desired value as the twin's expected value. The cloud is acked only once the plugin has
 * committed that. */
struct devices;
int devices_new(struct bridge *br, struct devices **out);
void devices_free(struct devices *d);

/* ==== node.c ============================================================================= */

/* Register the node, then keep its status and lease fresh while the link is up. 0 or -ENOMEM. */
struct node;
int node_start(struct bridge *br, struct node **out);
/* Before lws_context_destroy: no new timers. NULL ok. */
void node_stop(struct node *n);
/* After metamgr_close (which answers the node's requests in flight). NULL ok. */
void node_free(struct node *n);
/* The node's InternalIP (the first IPv4 address of an interface that is up and not loopback;
 * 127.0.0.1 when there is none), as reported in the Node's addresses and the pods' hostIP. */
void node_internal_ip(char *out, size_t n);

/* ==== certmgr.c ========================================================================== */

#include <sys/types.h>

struct certmgr_req {
    const char *cloud_host;
    int https_port; /* CloudHub's HTTPS port, 10002 */
    const char *node_name;
    const char *ca_file, *cert_file, *key_file;
};

/* keadm join's certificate bootstrap (§4.3). Blocking: for the join command only.
 * Returns 0, or KEDGE_ECONFIG with the reason logged; nothing is written unless it all worked. */
int certmgr_join(const struct certmgr_req *cr, const char *token);
/* A new key and certificate, presenting the current one. Blocking. 0 or -1 (logged). */
int certmgr_rotate(const struct certmgr_req *cr);
/* certmgr_rotate in a child process, so the loop never blocks: returns its pid or -1. */
pid_t certmgr_rotate_async(const struct certmgr_req *cr);
/* Validity of a PEM certificate in Unix seconds. 0 or -1. */
int certmgr_validity(const char *cert_file, int64_t *not_before, int64_t *not_after);
/* When to rotate: a jittered 70-90 % of the lifetime (Unix seconds). */
int64_t certmgr_rotation_due(int64_t not_before, int64_t not_after);

/* ==== certwatch.c ======================================================================== */

void certwatch_start(struct bridge *br);
void certwatch_stop(void);
int64_t certwatch_not_after(void); /* Unix seconds, 0 unknown */

/* ==== fault.c (test-only) ================================================================= */

/* KEDGE_BRIDGE_CRASH_AT=after_receive[:N]|after_send[:N]: SIGKILL at the N-th pass of that
 * point (fault.c says where they are). Never set in production. */
enum fault_point { FAULT_AFTER_RECEIVE, FAULT_AFTER_SEND };
/* Read the variable once. 0, or -1 for a value that is not understood (logged). */
int fault_init(void);
void fault_point(enum fault_point p);

/* ==== main.c: the bridge object shared by the modules ===================================== */

struct bridge {
    struct bridge_config cfg;
    struct lws_context *lws;
    struct lws_vhost *vhost;
    struct boutbox *outbox;
    struct router *router;
    struct edgehub *hub;
    struct relay *relay;
    struct metamgr *meta;
    struct edged *edged; /* NULL when engine_socket is none */
    struct devices *devices;
    /* nodeInfo.containerRuntimeVersion (edged writes it from the engine, node.c reports it):
     * "" until the engine said */
    char runtime_version[96];
    bool stopping;
};

#endif
