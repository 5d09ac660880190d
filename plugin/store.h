/* The SQLite store: KubeEdge's edgecore.db tables (device, device_attr, device_twin) plus
 * kedge's own (kedge_outbox, sub_topics), every statement prepared once at open.
 *
 * Writes never commit on their own: the first one opens a transaction and every later one
 * joins it, until the group commit (batch.c) calls store_commit. A failed write poisons the
 * batch, which then rolls back as a whole. Reads see the open batch's own writes.
 */
#ifndef KEDGE_STORE_H
#define KEDGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"
#include "kedge/twin.h"

struct registry;
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

/* ---- the outbox's table (include/kedge/ke.h) ----------------------------------------- */

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

/* ---- the cloud's subscriptions, size, the batch -------------------------------------------- */

/* sub_topics: the cloud's eventbus subscriptions (docs/kubeedge-wire.md §1.3). */
int store_subtopic(struct store *s, const char *topic, bool add);
typedef int (*store_topic_fn)(void *ctx, const char *topic);
int store_subtopics_load(struct store *s, store_topic_fn fn, void *ctx);
int64_t store_db_bytes(struct store *s); /* -1 if unknown */

size_t store_pending(const struct store *s);     /* writes in the open transaction */
uint64_t store_oldest_ms(const struct store *s); /* monotonic ms of the first pending write */
/* COMMIT (or ROLLBACK if a write failed). 0 or KEDGE_ESTORE. Nothing pending: 0. */
int store_commit(struct store *s);
/* Passive WAL checkpoint when the WAL is large or the broker is idle. */
void store_maintain(struct store *s, bool idle);

#endif
