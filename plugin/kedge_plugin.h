/* The plugin's private header: one section per file, as mosquitto's dynamic-security plugin
 * does. Nothing here is visible outside kedge_plugin.so (built -fvisibility=hidden).
 *
 *   plugin.c      entry points, callback registration; wiring only
 *   options.c     plugin_opt_* table: parse, validate as a whole
 *   eventbus.c    MESSAGE callback: classify $hw/events topics, size limit, dispatch
 *   devicetwin.c  twin update/get, state update, membership get: KubeEdge semantics
 *   registry.c    the in-memory device table (devices, attributes, twins)
 *   store.c       SQLite: schema, load, writes into one open transaction, group commit
 *   replies.c     messages waiting for the commit that holds them, then published
 */
#ifndef KEDGE_PLUGIN_H
#define KEDGE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"
#include "kedge/ke.h"
#include "kedge/twin.h"

/* ==== options.c ======================================================================== */

struct plugin_config {
    char *db_path;
    char *node_name;
    long max_payload_bytes;
    long commit_interval_ms; /* 0: commit at the end of every broker loop turn */
    long commit_batch;       /* commit as soon as this many writes are pending */
    char *sync;              /* "normal" | "full": SQLite synchronous */
    char *log_level;         /* err | warn | notice | info | debug */
    long outbox_max;         /* cloud-bound upload rows kept for the bridge */
    long max_upload_bytes;   /* one upload's encoded message */
    long upload_budget_bytes; /* all waiting uploads' encoded messages */
    char *upload_policy;     /* refuse | drop-oldest: when an upload does not fit */
    char *bridge_username;   /* the only identity allowed under $ke/ */
    char *bridge_password;
    char *bridge_password_file;
    char *auth_mode;         /* open | defer (to password_file / acl_file) */
    char *db_lock;           /* exclusive (fast; the broker alone opens the DB) | shared */
};

struct mosquitto_opt;
/* Parse plugin_opt_* into *cfg (zeroed first, defaults applied). Unknown keys are rejected
 * with a log line naming them. Returns 0 or KEDGE_ECONFIG / -ENOMEM. */
int options_parse(struct plugin_config *cfg, const struct mosquitto_opt *opts, int n);
void options_cleanup(struct plugin_config *cfg);

/* ==== registry.c ======================================================================= */

struct registry;

int registry_new(struct registry **out);
void registry_free(struct registry *r);
struct kedge_device *registry_find(const struct registry *r, const char *id, size_t id_len);
/* Takes dev on success (replacing and freeing any device with the same id). 0 or -ENOMEM. */
int registry_put(struct registry *r, struct kedge_device *dev);
/* Removes and frees the device; no-op if absent. */
void registry_remove(struct registry *r, const char *id);
size_t registry_count(const struct registry *r);
/* All devices sorted by id (borrowed pointers; array owned by the caller, kedge_free it). */
int registry_sorted(const struct registry *r, const struct kedge_device ***out, size_t *n);
void registry_clear(struct registry *r);

/* Twins of one device, kept sorted by name. */
struct kedge_twin *device_twin_find(const struct kedge_device *d, const char *name);
/* Inserts t (taken on success) in name order; returns the stored twin or NULL on -ENOMEM.
 * Pointers to other twins of d become invalid. */
struct kedge_twin *device_twin_insert(struct kedge_device *d, struct kedge_twin *t);

/* ==== store.c ========================================================================== */

struct store;

struct store_opts {
    const char *path;
    bool sync_full;
    bool exclusive; /* SQLite locking_mode=EXCLUSIVE: no per-transaction file locks */
};

/* Open (creating the schema with KubeEdge's beego-era DDL if missing; an existing edgecore.db
 * opens as is). On failure *out is still set to a store in the broken state, which reports
 * KEDGE_ESTORE for everything until store_retry_open succeeds; the reason is in
 * store_error(). Returns 0 or KEDGE_ESTORE. */
int store_open(const struct store_opts *o, struct store **out);
void store_close(struct store *s);
bool store_ok(const struct store *s);
const char *store_error(const struct store *s);
int store_retry_open(struct store *s);

/* Load every device with its attributes and twins into r. 0, KEDGE_ESTORE or -ENOMEM. */
int store_load_all(struct store *s, struct registry *r);
/* Load one device as the store sees it now (own uncommitted writes included).
 * 0, -ENOENT (no such device), KEDGE_ESTORE, -ENOMEM. */
int store_load_device(struct store *s, const char *id, struct kedge_device **out);

/* Writes go into one open transaction; a failure makes the whole batch fail at commit. */
int store_twin_insert(struct store *s, const char *dev_id, const struct kedge_twin *t);
int store_twin_update(struct store *s, const char *dev_id, const struct kedge_twin *t);
int store_device_state(struct store *s, const char *dev_id, const char *state,
                       const char *last_online);
int store_device_insert(struct store *s, const struct kedge_device *d);
/* Deletes the device row with its attributes and twins. */
int store_device_delete(struct store *s, const char *id);
int store_attr_write(struct store *s, const char *dev_id, const struct kedge_attr *a, bool insert);
int store_attr_delete(struct store *s, const char *dev_id, const char *name);

/* ==== store_outbox.c: the outbox's table (include/kedge/ke.h) ============================ */

/* Writes join the open transaction. An entry with a subject (a twin or state report, see
 * kedge/coalesce.h) is state; an entry without is an upload. */
struct store_outbox_tally {
    int64_t uploads, upload_bytes; /* rows without a subject and their msg bytes */
    int64_t states;                /* rows with a subject */
};
struct store_outbox_row {
    int64_t seq;
    bool state; /* has a subject */
    int64_t bytes;
    int64_t created_ms;
    const char *msg;
    size_t len;
};

/* subject NULL for an upload. *seq gets the new entry's number. */
int store_outbox_insert(struct store *s, const char *subject, const char *msg, size_t len,
                        int64_t *seq);
/* The newest entry of subject, committed or in the open batch: *seq 0 when there is none,
 * else its msg is appended to *msg. 0, KEDGE_ESTORE, -ENOMEM. */
int store_outbox_find(struct store *s, const char *subject, int64_t *seq, struct kedge_buf *msg);
/* Delete every entry up to seq (acks are cumulative), or seq alone; what went is added to
 * *gone. Return how many went, or an error. */
int store_outbox_delete(struct store *s, int64_t seq, struct store_outbox_tally *gone);
int store_outbox_delete_one(struct store *s, int64_t seq, struct store_outbox_tally *gone);
/* The oldest upload with seq > after: 1 (with *seq, *bytes), 0 none, or KEDGE_ESTORE. */
int store_outbox_next_upload(struct store *s, int64_t after, int64_t *seq, int64_t *bytes);
/* Per-kind totals of the whole table (a scan: at open and after a failed commit only). */
int store_outbox_tally(struct store *s, struct store_outbox_tally *t);
typedef int (*store_row_fn)(void *ctx, const struct store_outbox_row *r);
/* The first limit entries in seq order (ctl's outbox_list). Returns fn's first error or 0. */
int store_outbox_list(struct store *s, int limit, store_row_fn fn, void *ctx);
/* One entry (ctl's outbox_show): fn's result, -ENOENT, KEDGE_ESTORE. */
int store_outbox_get(struct store *s, int64_t seq, store_row_fn fn, void *ctx);
typedef void (*store_outbox_fn)(void *ctx, int64_t seq, const char *msg, size_t len);
/* Committed entries with seq > after, oldest first, at most limit. Only outside a batch.
 * Returns the number of entries passed to fn, or KEDGE_ESTORE. */
int store_outbox_after(struct store *s, int64_t after, int limit, store_outbox_fn fn, void *ctx);
int store_outbox_stats(struct store *s, int64_t *count, int64_t *max_seq);
/* The highest seq this database ever gave an entry (AUTOINCREMENT's record: it survives the
 * rows' deletion), 0 for a new database, -1 if unknown. */
int64_t store_outbox_last_seq(struct store *s);
/* created_ms of the oldest entry (0: none). */
int64_t store_outbox_oldest_ms(struct store *s);

/* ==== store.c, continued ================================================================ */

/* sub_topics: the cloud's eventbus subscriptions (kubeedge-wire.md §1.3). */
int store_subtopic(struct store *s, const char *topic, bool add);
typedef int (*store_topic_fn)(void *ctx, const char *topic);
int store_subtopics_load(struct store *s, store_topic_fn fn, void *ctx);
int64_t store_db_bytes(struct store *s); /* -1 if unknown */

size_t store_pending(const struct store *s);   /* writes in the open transaction */
uint64_t store_oldest_ms(const struct store *s); /* monotonic ms of the first pending write */
/* COMMIT (or ROLLBACK if a write failed). 0 or KEDGE_ESTORE. Nothing pending: 0. */
int store_commit(struct store *s);
/* Passive WAL checkpoint when the WAL is large or the broker is idle. */
void store_maintain(struct store *s, bool idle);

/* ==== replies.c ======================================================================== */

enum reply_fail {
    REPLY_KEEP,   /* batch failed: sent anyway (error results that do not depend on it) */
    REPLY_DROP,   /* batch failed: not sent (document, delta, state result) */
    REPLY_ERR500, /* batch failed: replaced by a 500 error result with the same event id */
    REPLY_ALT,    /* to one client; batch failed: its alternative payload instead */
};

struct replies;

int replies_new(struct replies **out);
void replies_free(struct replies *q);
/* Queue a publish. topic borrowed (copied); payload from kedge_malloc, taken on success.
 * event_id borrowed (copied) when on_fail is REPLY_ERR500. 0 or -ENOMEM. */
int replies_take(struct replies *q, const char *topic, char *payload, size_t len,
                 enum reply_fail on_fail, const char *event_id);
size_t replies_count(const struct replies *q);
/* Publish everything queued: as is when commit_rc == 0, else per each entry's on_fail. */
void replies_flush(struct replies *q, int commit_rc, const char *store_reason);

/* Queue a publish to one client (client_id NULL: to all subscribers). On a failed batch
 * fail_payload (taken, may be NULL = nothing) is published instead. 0 or -ENOMEM; on failure
 * the caller still owns both payloads. */
int replies_take_to(struct replies *q, const char *client_id, const char *topic, char *payload,
                    size_t len, char *fail_payload, size_t fail_len);

/* The publish primitive (plugin.c wires it to mosquitto_broker_publish; unit tests record).
 * client_id NULL: every subscriber; else that client only. Takes payload in all cases.
 * Returns 0 or -1 when the broker refused it. */
typedef int (*publish_fn)(const char *client_id, const char *topic, char *payload, size_t len);
int replies_publish_now(const char *client_id, const char *topic, char *payload, size_t len);
/* QoS 0 to one client (outbox offers: the table is the durability, acks the delivery). */
void replies_set_offer_publisher(publish_fn fn);
int replies_publish_offer(const char *client_id, const char *topic, char *payload, size_t len);
/* Retained publish to all subscribers (the $SYS/kedge/... health topics). Takes payload. */
void replies_set_retained_publisher(publish_fn fn);
int replies_publish_retained(const char *topic, char *payload, size_t len);
void replies_set_publisher(publish_fn fn);

/* ==== outbox.c ========================================================================= */

/* The plugin's half of the durable hand-off to the bridge (include/kedge/ke.h). */
struct outbox_mem {
    int64_t seq;
    char *msg;
    size_t len;
};

/* Since the broker started (kedge-ctl status, $SYS/kedge/{node}/plugin). */
struct outbox_counters {
    int64_t uploads_refused;     /* budget or row bound full, policy refuse */
    int64_t uploads_dropped;     /* stored uploads dropped for newer ones, policy drop-oldest */
    int64_t uploads_oversize;    /* over plugin_opt_max_upload_bytes */
    int64_t dropped_by_operator; /* kedge-ctl outbox drop */
    int64_t coalesced;           /* twin/state reports folded into a waiting one */
};

struct outbox {
    struct store *store;
    long max_rows;          /* plugin_opt_outbox_max: waiting uploads */
    int64_t budget;         /* plugin_opt_upload_budget_bytes */
    int64_t max_upload;     /* plugin_opt_max_upload_bytes */
    bool drop_oldest;       /* plugin_opt_upload_policy */
    bool refusing;          /* an upload was refused since the queue last had room (a log) */
    int64_t depth;          /* committed entries */
    int64_t pending_adds;   /* entries inserted in the open batch (net of those it deleted) */
    int64_t pending_dels;   /* committed entries deleted in the open batch */
    int64_t committed_seq;  /* highest committed seq */
    int64_t batch_seq;      /* highest seq inserted in the open batch, 0: none */
    struct store_outbox_tally held; /* the table as the open batch sees it */
    struct outbox_counters n;
    int64_t last_sent;      /* highest seq offered to the bridge in this session */
    int inflight;           /* offered, not yet acked: offered[] from off_head */
    int off_head;
    int64_t offered[KE_WINDOW];
    int64_t acked;          /* highest seq the bridge acked in this session */
    uint64_t progress_ms;   /* monotonic ms of the last offer or ack: a stall re-offers */
    char *bridge_client;    /* client id of the accepted bridge, NULL when none */
    int64_t last_ack_ms;    /* wall clock of the bridge's last ack, 0 never */
    /* this batch's entries, offered from memory right after their commit (no read-back);
     * mem_full: one was not kept, so later ones are not either (mem stays a prefix) */
    struct outbox_mem *mem;
    size_t n_mem, cap_mem, mem_bytes;
    bool mem_full;
};

/* (Re)start on the store's table: counters since start survive a reopen. */
int outbox_init(struct outbox *ob, struct store *store, const struct plugin_config *cfg);
void outbox_cleanup(struct outbox *ob);
/* A twin or state report to the cloud (twin/resource/update on resource, content JSON): folded
 * into the entry waiting for the same resource (kedge/coalesce.h), which it replaces with a new
 * seq in the open batch. Never refused. 0, KEDGE_ESTORE, -ENOMEM. */
int outbox_add_state(struct outbox *ob, const char *resource, const char *content_json,
                     size_t content_len);
/* An upload (bus/user/upload on topic, payload as a JSON string) from client_id (for logs).
 * 0; KEDGE_ETOOBIG over plugin_opt_max_upload_bytes; KEDGE_EFULL when it does not fit and the
 * policy is refuse (drop-oldest drops the oldest waiting uploads instead); KEDGE_ESTORE;
 * -ENOMEM. Refusals are counted and logged (rate-limited) here. */
int outbox_add_upload(struct outbox *ob, const char *client_id, const char *topic,
                      const char *payload, size_t len);
/* kedge-ctl outbox drop: delete one entry in the open batch, counted and logged.
 * 0, -ENOENT, KEDGE_ESTORE. */
int outbox_drop(struct outbox *ob, int64_t seq);
/* After a commit: account for the batch (failed: its inserts never happened) and offer
 * entries to the bridge up to the window. */
void outbox_committed(struct outbox *ob, int commit_rc);
void outbox_pump(struct outbox *ob);
/* A bridge was accepted (hello): re-offer from the oldest unacked entry. */
int outbox_bridge_up(struct outbox *ob, const char *client_id);
void outbox_bridge_down(struct outbox *ob, const char *client_id);
bool outbox_is_bridge(const struct outbox *ob, const char *client_id);
/* $ke/ack/{seq}: the bridge stored every entry up to seq; delete them in the open batch. */
void outbox_ack(struct outbox *ob, int64_t seq);
/* From the tick: offers unanswered for a few seconds are offered again (QoS 0 offers can be
 * dropped by the broker under pressure; the bridge drops duplicates). */
void outbox_check_stall(struct outbox *ob, uint64_t now_ms);
/* Wall-clock ms of the oldest waiting entry, 0 when empty. */
int64_t outbox_oldest_ms(struct outbox *ob);

/* ==== devicetwin.c ===================================================================== */

struct devicetwin {
    const struct plugin_config *cfg;
    struct registry *reg;
    struct store *store;
    struct replies *out;
    struct kedge_buf topic; /* scratch */
    char **dirty;           /* ids of devices written in the open batch */
    size_t n_dirty, cap_dirty;
    uint64_t next_retry_ms; /* broken store: when to try opening it again */
    struct outbox outbox;
    bool cloud_connected;   /* from the bridge's node/connection events */
    char **sub_topics;      /* the cloud's eventbus subscriptions (filters) */
    size_t n_sub_topics;
    char *bridge_status;    /* the bridge's last $ke/status JSON */
    uint64_t next_sys_ms;   /* next $SYS/kedge/... refresh */
};

int devicetwin_init(struct devicetwin *dt, const struct plugin_config *cfg);
void devicetwin_cleanup(struct devicetwin *dt);
/* Handlers: id/node borrowed for the call; payload may be NULL when len is 0. They answer
 * the device themselves (or stay silent where edgecore does) and never fail the broker. */
void devicetwin_twin_update(struct devicetwin *dt, const char *id, size_t id_len,
                            const char *payload, size_t len);
void devicetwin_twin_get(struct devicetwin *dt, const char *id, size_t id_len,
                         const char *payload, size_t len);
void devicetwin_state_update(struct devicetwin *dt, const char *id, size_t id_len,
                             const char *payload, size_t len);
void devicetwin_membership_get(struct devicetwin *dt, const char *payload, size_t len);
/* Oversized payloads: the answer edgecore gives for one it cannot parse. */
void devicetwin_too_big(struct devicetwin *dt, int kind, const char *id, size_t id_len,
                        size_t len);
/* Cloud-side twin change (sync semantics, §2.5) for a known device: versions decide, refused
 * keys go back to the cloud as edge_updated. Publishes document and delta, no result.
 * Returns 0, KEDGE_ENODEVICE, -ENOMEM. */
int devicetwin_sync(struct devicetwin *dt, const char *dev_id, const char *event_id,
                    const struct kedge_twin *twins, size_t n);
/* The cloud's desired values (include/kedge/ke.h, device/{id}/twin/desired): each twin's
 * "expected" value that differs from the one held becomes the expected value, its cloud
 * version moves on by one, and document and delta are published after the commit; a twin
 * not there yet is added with the message's type. Nothing goes back to the cloud (it knows its
 * desired values); actual values, and a value that is not of the twin's type, are left alone
 * (the latter logged). A value already held publishes nothing. 0, KEDGE_ENODEVICE, -ENOMEM. */
int devicetwin_desired(struct devicetwin *dt, const char *dev_id, const char *event_id,
                       const struct kedge_twin *twins, size_t n);
/* kedge-ctl views: the membership get result of all devices, and one device's twin get
 * result (or {"code":404,...}). Return 0 or -ENOMEM. */
int devicetwin_encode_members(struct devicetwin *dt, struct kedge_buf *b);
int devicetwin_encode_twins(struct devicetwin *dt, const char *id, size_t id_len,
                            struct kedge_buf *b);
/* Remember that the open batch wrote this device (reloaded if the commit fails). */
int devicetwin_mark_dirty(struct devicetwin *dt, const char *id);
/* Make memory match the store for one device (removed if the store has none). */
void devicetwin_reload(struct devicetwin *dt, const char *id);
/* Queue a publish on dt->topic that waits for the commit. */

/* Commit if due, then publish what the commit released. force: commit whatever is pending.
 * Returns the commit's result (0 when nothing was due). */
int devicetwin_tick(struct devicetwin *dt, bool force);

/* ==== membership.c ===================================================================== */

/* Apply a membership update's content (§2.10). 0, or an error with *reason for the sender. */
int membership_update(struct devicetwin *dt, const char *content, size_t len,
                      const char **reason);

/* ==== ke.c ============================================================================= */

struct mosquitto;
/* A publish under $ke/ from the bridge identity (security.c already refused everyone else). */
void ke_on_message(struct devicetwin *dt, const struct mosquitto *client, const char *topic,
                   const char *payload, size_t len);
/* The bridge's connection went away. */
void ke_on_disconnect(struct devicetwin *dt, const char *client_id);
/* The plugin's status object (kedge-ctl status, $SYS/kedge/{node}/plugin). 0 or -ENOMEM. */
int ke_status_encode(struct devicetwin *dt, struct kedge_buf *b);
/* Refresh the retained $SYS/kedge/{node}/... topics (called from the tick, every 5 s). */
void ke_publish_sys(struct devicetwin *dt);

/* ==== ke_outbox.c ===================================================================== */

struct kebody_request;
/* $ke/ctl outbox_list {"limit":N} and outbox_show {"seq":S}: the answer's JSON into b.
 * 0 or -ENOMEM. */
int ke_outbox_list(struct devicetwin *dt, const struct kebody_request *req, struct kedge_buf *b);
int ke_outbox_show(struct devicetwin *dt, const struct kebody_request *req, struct kedge_buf *b);
/* outbox_drop {"seq":S} in the open batch: 0, or an HTTP-like code with *reason. */
int ke_outbox_drop(struct devicetwin *dt, const struct kebody_request *req, const char **reason);

/* ==== security.c ======================================================================= */

struct mosquitto_evt_basic_auth;
struct mosquitto_evt_acl_check;
int security_basic_auth(const struct plugin_config *cfg, struct mosquitto_evt_basic_auth *ev);
int security_acl_check(const struct plugin_config *cfg, struct mosquitto_evt_acl_check *ev);

/* ==== eventbus.c ======================================================================= */

/* Cloud -> edge eventbus operations (§1.3): publish, subscribe, unsubscribe, message.
 * 0, or KEDGE_ESCHEMA with *reason. */
struct kedge_msg;
int eventbus_cloud(struct devicetwin *dt, const struct kedge_msg *m, const char **reason);
/* Load sub_topics into memory (at start and after the store reopens). */
int eventbus_load_subtopics(struct devicetwin *dt);
void eventbus_cleanup(struct devicetwin *dt);

struct mosquitto_evt_message;
/* MOSQ_EVT_MESSAGE: returns what the broker should do with the original publish (always
 * MOSQ_ERR_SUCCESS today: devices' own subscribers still see their requests, as with
 * edgecore in external mode). */
int eventbus_on_message(struct devicetwin *dt, struct mosquitto_evt_message *ev);

#endif
