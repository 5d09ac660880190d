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

/* The publish primitive (plugin.c wires it to mosquitto_broker_publish; unit tests record).
 * Takes payload in all cases. */
typedef void (*publish_fn)(const char *topic, char *payload, size_t len);
void replies_set_publisher(publish_fn fn);

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
/* Commit if due, then publish what the commit released. force: commit whatever is pending. */
void devicetwin_tick(struct devicetwin *dt, bool force);

/* ==== eventbus.c ======================================================================= */

struct mosquitto_evt_message;
/* MOSQ_EVT_MESSAGE: returns what the broker should do with the original publish (always
 * MOSQ_ERR_SUCCESS today: devices' own subscribers still see their requests, as with
 * edgecore in external mode). */
int eventbus_on_message(struct devicetwin *dt, struct mosquitto_evt_message *ev);

#endif
