/* The bridge's durable queue to the cloud (its own SQLite file, WAL).
 *
 * What the plugin hands over is stored here before the bridge acks it to the plugin, so every
 * cloud-bound message lives in the plugin's outbox or in this queue at all times. Entries leave in
 * id order. An entry the cloud confirms (twin and state messages: the device controller answers
 * with parent_msg_id, docs/kubeedge-wire.md §2.9) stays until that answer comes and is sent again
 * every resend_s, as edgecore does. Any other entry (uploads, requests) gets no answer from
 * CloudHub; it stays until the cloud has provably read it: edgehub.c sends a websocket PING
 * after it and calls cloudq_delivered when the PONG comes back (frames are read in order, so
 * the cloud read everything before the PING). Deleting on write instead lost whatever sat
 * unread in the cloud's socket when the link broke. After a reconnect unconfirmed entries go
 * again (at-least-once). Duplicates from a re-offering plugin are dropped by msg_id.
 *
 * Twin and state are state, not events (issue 13). A device's twin report
 * (device/{id}/twin/edge_updated) and state report (.../state/update) carry a subject, their
 * resource, and a subject has at most two rows: the one on the link awaiting the cloud's answer
 * and one waiting behind it. A new report merges into the waiting one (kedge_coalesce_merge:
 * later keys win, deletions kept) instead of queueing behind it, so the twin part of the queue
 * is bounded by the number of devices, not by the time offline. A report the cloud does not
 * answer (a fire entry) replaces its subject's row at the tail. kedge_subject_seen keeps the
 * highest plugin seq taken per subject, so a re-offer after a crash can never overwrite newer
 * state with older.
 *
 * Order per subject. cloudcore dispatches every message it reads on its own goroutine
 * (devicecontroller's updateDeviceStatus workers), so two twin reports of one device sent
 * back to back can be applied in either order and the cloud can end on the older value. Only
 * the oldest entry of a subject is sendable; the next one is unblocked when the cloud confirms
 * it (the device controller answers only after its PATCH of the Device went through) or when
 * it leaves otherwise. Different devices still go in parallel.
 *
 * Uploads are events: kept in order, bounded by upload_budget_bytes. When a new one does not
 * fit, the policy says: refuse it (KEDGE_EFULL: the relay stops acking there and the plugin
 * keeps it) or drop the oldest stored uploads (counted, logged).
 *
 * Giving up. cloudcore never answers a report of a device it does not know, and v1.15-v1.18
 * never answer state/update at all (there state reports are fire entries). edgecore resends such a
 * message every 60 s for as long as its process lives (dtmanager/communicate.go checkConfirm; its
 * ConfirmMap is memory only, so a restart forgets it). kedge resends every resend_s too, but after
 * resend_max unanswered resends on a live link the entry is set aside: moved to the dead
 * letters (deadletter.c) with one log line and counted, so that neither the queue nor the
 * device's later reports wait behind it for ever. An entry the cloud refuses poison_after
 * times (closes the link after reading it, edgehub.c finds which; or answers "error") goes
 * there too. An operator looks at both and retries or drops (kedge-ctl outbox, cloudq_ctl.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "deadletter.h"
#include "cloudq_int.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/msg.h"
#include "kedge/schema.h"
#include "kedge/util.h"

#define ENTRY_COLS "id, msg_id, msg, kind, resends, sent_ms FROM kedge_outbox "
/* bytes of a row that counts against the upload budget (a fire entry without subject), else 0 */
#define UPLOAD_BYTES                                                                               \
    "CASE WHEN subject IS NULL AND kind = 0 AND proven_ms = 0 THEN bytes ELSE 0 END"
/* A fire entry the cloud proved it read stays CLOUDQ_PROOF_GRACE_MS (hidden, not counted)
 * before it goes: a cloud that refuses it answers "error" after reading it, and that answer
 * can come after the PONG (cloudsim queues it); the row must still be there to be counted and
 * sent again. */

static const char *const sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PUT] = "INSERT OR IGNORE INTO kedge_outbox (msg_id, msg, kind, created_ms, subject, "
               "blocked, resource, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_TAIL] = "SELECT id, msg, sent_ms, kind, msg_id FROM kedge_outbox WHERE subject = ?1 "
                "AND proven_ms = 0 "
                "ORDER BY id DESC LIMIT 1",
    [ST_MERGE] = "UPDATE OR IGNORE kedge_outbox SET msg = ?2, msg_id = ?3, bytes = ?4 "
                 "WHERE id = ?1",
    [ST_DEL_SUBJECT] = "DELETE FROM kedge_outbox WHERE subject = ?1",
    [ST_SEEN_GET] = "SELECT seq FROM kedge_subject_seen WHERE subject = ?1",
    [ST_SEEN_SET] = "INSERT INTO kedge_subject_seen (subject, seq) VALUES (?1, ?2) "
                    "ON CONFLICT (subject) DO UPDATE SET seq = excluded.seq",
    [ST_OLDEST_UPLOAD] = "SELECT id, msg_id, bytes FROM kedge_outbox WHERE subject IS NULL "
                         "AND proven_ms = 0 "
                         "AND kind = 0 ORDER BY id LIMIT 1",
    /* an unblocked head the send cursor has already passed */
    [ST_READY] = "SELECT " ENTRY_COLS "WHERE kind = 1 AND sent_ms = 0 AND blocked = 0 AND "
                 "id <= ?1 ORDER BY id LIMIT 1",
    [ST_NEXT] = "SELECT " ENTRY_COLS "WHERE blocked = 0 AND id > ?1 AND proven_ms = 0 "
                "ORDER BY id LIMIT 1",
    /* a confirm entry whose answer is overdue, or any entry the cloud answered "error" */
    [ST_RESEND] = "SELECT " ENTRY_COLS "WHERE sent_ms > 0 AND sent_ms <= ?1 AND blocked = 0 "
                  "ORDER BY id LIMIT 1",
    [ST_DELIVERED] = "UPDATE kedge_outbox SET proven_ms = ?2 WHERE kind = 0 AND sent_ms = 0 "
                     "AND proven_ms = 0 AND id <= ?1 "
                     "RETURNING CASE WHEN subject IS NULL THEN bytes ELSE 0 END",
    [ST_SWEEP] = "DELETE FROM kedge_outbox WHERE proven_ms > 0 AND proven_ms <= ?1",
    /* an "error" for a proven entry: it is queued again, and counts against the budget */
    [ST_UNPROVE] = "UPDATE kedge_outbox SET proven_ms = 0 WHERE id = ?1 AND proven_ms > 0 "
                   "RETURNING " UPLOAD_BYTES,
    [ST_MARK] = "UPDATE kedge_outbox SET sent_ms = ?2, resends = resends + ?3 WHERE id = ?1",
    [ST_UNHOLD] = "UPDATE kedge_outbox SET sent_ms = 0, resends = resends + ?2 WHERE id = ?1",
    [ST_CONFIRM] = "DELETE FROM kedge_outbox WHERE msg_id = ?1 AND kind = 1",
    [ST_FAILED] = "UPDATE kedge_outbox SET failures = failures + ?4, last_error = ?2, "
                  "sent_ms = CASE WHEN ?3 > 0 THEN ?3 ELSE sent_ms END WHERE id = ?1 "
                  "RETURNING failures",
    [ST_BY_MSG_ID] = "SELECT id FROM kedge_outbox WHERE msg_id = ?1",
    [ST_DROP] = "DELETE FROM kedge_outbox WHERE id = ?1 RETURNING " UPLOAD_BYTES ", msg_id",
    [ST_DROP_OLDEST] = "DELETE FROM kedge_outbox WHERE id = ?1",
    [ST_DEPTH] = "SELECT count(*) FROM kedge_outbox WHERE proven_ms = 0",
    [ST_OLDEST] = "SELECT created_ms FROM kedge_outbox WHERE proven_ms = 0 ORDER BY id LIMIT 1",
    [ST_KV_GET] = "SELECT value FROM kedge_outbox_kv WHERE key = ?1",
    [ST_KV_SET] = "INSERT OR REPLACE INTO kedge_outbox_kv (key, value) VALUES (?1, ?2)",
};

static const char schema[] =
    /* a small page cache: the queue is read front to back, and the bridge lives on gateways */
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA "
    "cache_size=-256;" KEDGE_DDL_BRIDGE_QUEUE;

/* Columns added after the first release: a database without them gets them. Rows queued
 * before have no subject and keep the old, unordered behaviour; their size is measured once. */
static const char *const columns[][2] = {
    {"subject", "ALTER TABLE kedge_outbox ADD COLUMN subject TEXT"},
    {"blocked", "ALTER TABLE kedge_outbox ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0"},
    {"resends", "ALTER TABLE kedge_outbox ADD COLUMN resends INTEGER NOT NULL DEFAULT 0"},
    {"resource", "ALTER TABLE kedge_outbox ADD COLUMN resource TEXT"},
    {"failures", "ALTER TABLE kedge_outbox ADD COLUMN failures INTEGER NOT NULL DEFAULT 0"},
    {"last_error", "ALTER TABLE kedge_outbox ADD COLUMN last_error TEXT"},
    {"proven_ms", "ALTER TABLE kedge_outbox ADD COLUMN proven_ms INTEGER NOT NULL DEFAULT 0"},
    {"bytes", "ALTER TABLE kedge_outbox ADD COLUMN bytes INTEGER NOT NULL DEFAULT -1;"
              "UPDATE kedge_outbox SET bytes = length(CAST(msg AS BLOB)) WHERE bytes = -1"},
};

/* The send path walks unblocked rows only, so a long blocked backlog of one device costs
 * nothing per send, and a subject's head is one index probe away. Whatever removes an entry
 * (the cloud's answer, a dead letter) lets the next of its subject go in the same statement, so
 * a kill -9 can never leave a subject blocked behind nothing. */
static const char indexes[] =
    "CREATE INDEX IF NOT EXISTS kedge_outbox_subject ON kedge_outbox (subject, id) "
    "WHERE subject IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS kedge_outbox_unblocked ON kedge_outbox (id) WHERE blocked = 0;"
    "CREATE INDEX IF NOT EXISTS kedge_outbox_ready ON kedge_outbox (id) "
    "WHERE kind = 1 AND sent_ms = 0 AND blocked = 0;"
    "CREATE INDEX IF NOT EXISTS kedge_outbox_sent ON kedge_outbox (id) WHERE sent_ms > 0;"
    "CREATE INDEX IF NOT EXISTS kedge_outbox_proven ON kedge_outbox (proven_ms) "
    "WHERE proven_ms > 0;"
    "CREATE TRIGGER IF NOT EXISTS kedge_outbox_next AFTER DELETE ON kedge_outbox "
    "WHEN old.subject IS NOT NULL BEGIN UPDATE kedge_outbox SET blocked = 0 WHERE id = "
    "(SELECT min(id) FROM kedge_outbox WHERE subject = old.subject); END;";

int cq_fail(struct cloudq *ob, const char *what)
{
    /* a full or broken disk fails every put: one line per message would flood the log */
    kedge_log_limited(&ob->err_rl, "outbox", KEDGE_LOG_ERR, "outbox: %s: %s", what,
                      sqlite3_errmsg(ob->db));
    return KEDGE_ESTORE;
}

/* Add the columns a database from an older bridge lacks (PRAGMA table_info lists them). */
static int migrate(struct cloudq *ob)
{
    size_t i;

    for (i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
        sqlite3_stmt *st = NULL;
        bool have = false;
        int rc;

        if (sqlite3_prepare_v2(ob->db,
                               "SELECT 1 FROM pragma_table_info('kedge_outbox') "
                               "WHERE name = ?1",
                               -1, &st, NULL) != SQLITE_OK)
            return KEDGE_ESTORE;
        sqlite3_bind_text(st, 1, columns[i][0], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        have = rc == SQLITE_ROW;
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return KEDGE_ESTORE;
        if (!have && sqlite3_exec(ob->db, columns[i][1], NULL, NULL, NULL) != SQLITE_OK)
            return KEDGE_ESTORE;
    }
    if (sqlite3_exec(ob->db, indexes, NULL, NULL, NULL) != SQLITE_OK)
        return KEDGE_ESTORE;
    return dead_init(ob->db);
}

/* The uploads' bytes on disk: once at open, and again after a batch failed to commit. */
int cq_sum_uploads(struct cloudq *ob)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(ob->db, "SELECT coalesce(sum(" UPLOAD_BYTES "), 0) FROM kedge_outbox",
                           -1, &st, NULL) != SQLITE_OK)
        return KEDGE_ESTORE;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        ob->upload_bytes = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : KEDGE_ESTORE;
}

int cloudq_open(const char *path, const struct cloudq_opts *opts, struct cloudq **out)
{
    struct cloudq *ob = kedge_calloc(1, sizeof(*ob));
    int i;

    *out = NULL;
    if (!ob)
        return -ENOMEM;
    ob->o = *opts;
    ob->dead_rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(60000, 10);
    ob->drop_rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(60000, 5);
    ob->fail_rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(60000, 10);
    ob->err_rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(10000, 10);
    if (sqlite3_open_v2(path, &ob->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(ob->db, schema, NULL, NULL, NULL) != SQLITE_OK || migrate(ob) < 0 ||
        cq_sum_uploads(ob) < 0) {
        kedge_log(KEDGE_LOG_ERR, "outbox: cannot open %s: %s", path,
                  ob->db ? sqlite3_errmsg(ob->db) : "out of memory");
        cloudq_close(ob);
        return KEDGE_ESTORE;
    }
    sqlite3_busy_timeout(ob->db, 1000);
    for (i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v2(ob->db, sql[i], -1, &ob->st[i], NULL) != SQLITE_OK) {
            (void)cq_fail(ob, "prepare");
            cloudq_close(ob);
            return KEDGE_ESTORE;
        }
    }
    *out = ob;
    return 0;
}

void cloudq_close(struct cloudq *ob)
{
    int i;

    if (!ob)
        return;
    if (ob->in_txn)
        (void)cloudq_commit(ob);
    for (i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(ob->st[i]);
    sqlite3_close_v2(ob->db);
    kedge_free(ob);
}

void cq_done(struct cloudq *ob, int which)
{
    sqlite3_reset(ob->st[which]);
    sqlite3_clear_bindings(ob->st[which]);
}

int cq_run(struct cloudq *ob, int which)
{
    int rc = sqlite3_step(ob->st[which]);

    cq_done(ob, which);
    return rc == SQLITE_DONE ? 0 : KEDGE_ESTORE;
}

/* Uploads' bytes changed by delta: in the open batch (counted when it commits) or now. */
void cq_account(struct cloudq *ob, int64_t delta)
{
    if (ob->in_txn)
        ob->txn_bytes += delta;
    else
        ob->upload_bytes += delta;
}

/* Twin reports get the device controller's answer, state reports only from a cloud that
 * answers them (v1.19+: cloud/pkg/common/messagelayer GetResourceTypeForDevice); the rest
 * gets none. */
enum cloudq_kind cq_kind_of(const struct cloudq *ob, const struct kedge_msg *m)
{
    size_t n = m->resource ? strlen(m->resource) : 0;
    static const char *const confirmed[] = {"/twin/edge_updated", "/state/update"};
    size_t i;

    if (!m->source || strcmp(m->source, "twin") || !n || strncmp(m->resource, "device/", 7))
        return CLOUDQ_FIRE;
    for (i = 0; i < (ob->o.state_answered ? 2u : 1u); i++) {
        size_t k = strlen(confirmed[i]);
        if (n > k && !strcmp(m->resource + n - k, confirmed[i]))
            return CLOUDQ_CONFIRM;
    }
    return CLOUDQ_FIRE;
}

int cq_begin(struct cloudq *ob)
{
    if (ob->in_txn)
        return 0;
    if (cq_run(ob, ST_BEGIN) < 0)
        return cq_fail(ob, "begin");
    ob->in_txn = true;
    return 0;
}

int cloudq_commit(struct cloudq *ob)
{
    int rc = 0;

    if (!ob->in_txn)
        return 0;
    if (ob->failed || cq_run(ob, ST_COMMIT) < 0) {
        rc = ob->failed ? KEDGE_ESTORE : cq_fail(ob, "commit");
        if (!sqlite3_get_autocommit(ob->db))
            (void)cq_run(ob, ST_ROLLBACK);
    } else {
        ob->upload_bytes += ob->txn_bytes;
    }
    ob->in_txn = ob->failed = false;
    ob->txn_bytes = 0;
    if (rc < 0)
        (void)cq_sum_uploads(ob); /* what the rollback left */
    return rc;
}

/* ---- sending ---------------------------------------------------------------------------- */

static int fill(sqlite3_stmt *st, struct cloudq_entry *e)
{
    const char *id = (const char *)sqlite3_column_text(st, 1);

    e->id = sqlite3_column_int64(st, 0);
    e->msg_id = kedge_strdup(id ? id : "");
    e->len = (size_t)sqlite3_column_bytes(st, 2);
    e->msg = kedge_strndup((const char *)sqlite3_column_text(st, 2), e->len);
    e->kind = sqlite3_column_int(st, 3) ? CLOUDQ_CONFIRM : CLOUDQ_FIRE;
    e->resends = sqlite3_column_int64(st, 4);
    e->held = e->kind == CLOUDQ_FIRE && sqlite3_column_int64(st, 5) > 0;
    if (!e->msg_id || !e->msg) {
        cloudq_entry_cleanup(e);
        return -ENOMEM;
    }
    return 1;
}

/* Move entry id to the dead letters: logged (rate-limited), counted. */
static int bury(struct cloudq *ob, int64_t id, const char *msg_id, const char *reason)
{
    int64_t bytes = 0;
    int rc = dead_move(ob->db, id, reason, &bytes);

    if (rc <= 0)
        return rc < 0 ? cq_fail(ob, "move to the dead letters") : 0;
    cq_account(ob, -bytes);
    ob->n.set_aside++;
    kedge_log_limited(&ob->dead_rl, "outbox", KEDGE_LOG_WARN,
                      "outbox: %s moved to the dead letters: %s (kedge-ctl outbox list)", msg_id,
                      reason);
    return 1;
}

/* An entry left unanswered for resend_max resends on a live link: set it aside. */
static int give_up(struct cloudq *ob, const struct cloudq_entry *e)
{
    char reason[96];

    snprintf(reason, sizeof(reason), "no answer from the cloud in %lld resends",
             (long long)e->resends);
    return bury(ob, e->id, e->msg_id, reason) < 0 ? KEDGE_ESTORE : 0;
}

/* One candidate from statement `which`: 1 (filled), 0 (none), or an error. */
static int candidate(struct cloudq *ob, int which, int64_t arg, struct cloudq_entry *e)
{
    sqlite3_stmt *st = ob->st[which];
    int rc;

    sqlite3_bind_int64(st, 1, arg);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = fill(st, e);
    else
        rc = rc == SQLITE_DONE ? 0 : cq_fail(ob, "read");
    cq_done(ob, which);
    return rc;
}

int cloudq_next(struct cloudq *ob, int64_t after, uint64_t resend_ms, struct cloudq_entry *e)
{
    int rc;

    memset(e, 0, sizeof(*e));
    for (;;) {
        rc = candidate(ob, ST_READY, after, e);
        if (rc == 0)
            rc = candidate(ob, ST_NEXT, after, e);
        if (rc != 0)
            return rc;
        rc = candidate(ob, ST_RESEND, kedge_wall_ms() - (int64_t)resend_ms, e);
        if (rc <= 0)
            return rc;
        e->resend = true;
        if (!ob->o.resend_max || e->resends < ob->o.resend_max)
            return 1;
        rc = give_up(ob, e); /* then the next of its subject may be sendable */
        cloudq_entry_cleanup(e);
        if (rc < 0)
            return rc;
    }
}

void cloudq_entry_cleanup(struct cloudq_entry *e)
{
    kedge_free(e->msg_id);
    kedge_free(e->msg);
    memset(e, 0, sizeof(*e));
}

int cloudq_sent(struct cloudq *ob, const struct cloudq_entry *e)
{
    if (e->id > ob->written_upto)
        ob->written_upto = e->id;
    if (e->kind == CLOUDQ_FIRE && !e->held)
        return 0; /* nothing to remember: cloudq_delivered removes it */
    if (e->kind == CLOUDQ_FIRE) {
        /* answered "error" before: sent again, a PONG delivers it like any fire entry */
        sqlite3_bind_int64(ob->st[ST_UNHOLD], 1, e->id);
        sqlite3_bind_int(ob->st[ST_UNHOLD], 2, e->resend ? 1 : 0);
        return cq_run(ob, ST_UNHOLD) < 0 ? cq_fail(ob, "mark sent") : 0;
    }
    sqlite3_bind_int64(ob->st[ST_MARK], 1, e->id);
    sqlite3_bind_int64(ob->st[ST_MARK], 2, kedge_wall_ms());
    sqlite3_bind_int(ob->st[ST_MARK], 3, e->resend ? 1 : 0);
    return cq_run(ob, ST_MARK) < 0 ? cq_fail(ob, "mark sent") : 0;
}

int cloudq_delivered(struct cloudq *ob, int64_t upto)
{
    sqlite3_stmt *st = ob->st[ST_DELIVERED];
    int64_t bytes = 0;
    int rc, n = 0;

    sqlite3_bind_int64(st, 1, upto);
    sqlite3_bind_int64(st, 2, kedge_wall_ms());
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bytes += sqlite3_column_int64(st, 0);
        n++;
    }
    cq_done(ob, ST_DELIVERED);
    if (rc != SQLITE_DONE)
        return cq_fail(ob, "mark delivered");
    cq_account(ob, -bytes);
    return n;
}

int cloudq_sweep(struct cloudq *ob, uint64_t grace_ms)
{
    sqlite3_bind_int64(ob->st[ST_SWEEP], 1, kedge_wall_ms() - (int64_t)grace_ms);
    if (cq_run(ob, ST_SWEEP) < 0)
        return cq_fail(ob, "delete delivered");
    return sqlite3_changes(ob->db);
}

int cloudq_confirmed(struct cloudq *ob, const char *msg_id)
{
    sqlite3_bind_text(ob->st[ST_CONFIRM], 1, msg_id, -1, SQLITE_TRANSIENT);
    if (cq_run(ob, ST_CONFIRM) < 0)
        return cq_fail(ob, "confirm");
    return sqlite3_changes(ob->db) > 0;
}

/* ---- refusals ------------------------------------------------------------------------------ */

/* n more refusals of entry id; hold_ms > 0: it goes again only after resend_s (an error
 * answer). A dead letter at poison_after. 1 buried, 0 counted, -ENOENT gone, KEDGE_ESTORE. */
static int count_failure(struct cloudq *ob, int64_t id, const char *why, int64_t hold_ms, int64_t n)
{
    sqlite3_stmt *st = ob->st[ST_FAILED];
    int64_t failures = 0;
    char reason[320];
    int rc;

    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, why, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, hold_ms);
    sqlite3_bind_int64(st, 4, n);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        failures = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    cq_done(ob, ST_FAILED);
    if (rc != SQLITE_DONE)
        return cq_fail(ob, "count a failure");
    if (!failures)
        return -ENOENT;
    ob->n.failures += n;
    if (!ob->o.poison_after || failures < ob->o.poison_after) {
        kedge_log_limited(&ob->fail_rl, "outbox", KEDGE_LOG_WARN,
                          "outbox: entry %lld refused by the cloud (%lld of %ld): %s",
                          (long long)id, (long long)failures, ob->o.poison_after, why);
        return 0;
    }
    snprintf(reason, sizeof(reason), "%s (%lld times)", why, (long long)failures);
    return bury(ob, id, "an entry", reason);
}

static int64_t kv_get(struct cloudq *ob, const char *key);
static int kv_set(struct cloudq *ob, const char *key, int64_t v);

/* The failure that started probe mode had this entry among those in doubt; now that a link
 * died with it alone in doubt, that one was its doing too. */
int cloudq_blame(struct cloudq *ob, int64_t id, const char *why)
{
    int64_t pending = kv_get(ob, "probe_pending");
    int rc = count_failure(ob, id, why, 0, 1 + pending);

    if (pending && rc >= 0 && kv_set(ob, "probe_pending", 0) < 0)
        rc = KEDGE_ESTORE;
    return rc == -ENOENT ? 0 : rc;
}

int cloudq_refused(struct cloudq *ob, const char *msg_id, const char *why)
{
    sqlite3_stmt *st = ob->st[ST_BY_MSG_ID];
    int64_t id = 0;
    int rc;

    sqlite3_bind_text(st, 1, msg_id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    cq_done(ob, ST_BY_MSG_ID);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cq_fail(ob, "find refused");
    if (!id)
        return -ENOENT;
    st = ob->st[ST_UNPROVE];
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        cq_account(ob, sqlite3_column_int64(st, 0));
        rc = sqlite3_step(st);
    }
    cq_done(ob, ST_UNPROVE);
    if (rc != SQLITE_DONE)
        return cq_fail(ob, "queue refused again");
    return count_failure(ob, id, why, kedge_wall_ms(), 1);
}

static int64_t kv_get(struct cloudq *ob, const char *key)
{
    sqlite3_stmt *st = ob->st[ST_KV_GET];
    int64_t v = 0;

    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    cq_done(ob, ST_KV_GET);
    return v;
}

int64_t cloudq_probe_upto(struct cloudq *ob)
{
    return kv_get(ob, "probe_upto");
}

static int kv_set(struct cloudq *ob, const char *key, int64_t v)
{
    sqlite3_bind_text(ob->st[ST_KV_SET], 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ob->st[ST_KV_SET], 2, v);
    return cq_run(ob, ST_KV_SET) < 0 ? cq_fail(ob, "probe state") : 0;
}

/* Starting: the failure that made us probe is pending, for the entry the probe will find.
 * Ending without one found: it was not an entry's doing (a network break), forgotten. */
int cloudq_set_probe(struct cloudq *ob, int64_t upto)
{
    int rc = kv_set(ob, "probe_pending", upto ? 1 : 0);

    return rc < 0 ? rc : kv_set(ob, "probe_upto", upto);
}

/* ---- figures ----------------------------------------------------------------------------- */

int64_t cloudq_given_up(const struct cloudq *ob)
{
    return ob->n.set_aside;
}

void cloudq_reset_sent(struct cloudq *ob)
{
    ob->written_upto = 0; /* a new link: nothing is on it yet; rows need no change */
}

static int64_t one_int(struct cloudq *ob, int which, int64_t none)
{
    int64_t n = none;

    if (sqlite3_step(ob->st[which]) == SQLITE_ROW)
        n = sqlite3_column_int64(ob->st[which], 0);
    sqlite3_reset(ob->st[which]);
    return n;
}

int64_t cloudq_depth(struct cloudq *ob)
{
    return one_int(ob, ST_DEPTH, -1);
}

int64_t cloudq_oldest_ms(struct cloudq *ob)
{
    return one_int(ob, ST_OLDEST, 0);
}

void cloudq_stats(struct cloudq *ob, struct cloudq_stats *st)
{
    *st = ob->n;
    st->depth = cloudq_depth(ob);
    st->oldest_ms = cloudq_oldest_ms(ob);
    st->upload_bytes = ob->upload_bytes + ob->txn_bytes;
    st->budget_bytes = ob->o.budget_bytes;
    st->dead_letters = dead_count(ob->db);
}

/* ---- the operator's hands (cloudq_ctl.c) ------------------------------------------------------
 */

int cloudq_list(struct cloudq *ob, long limit, cloudq_row_fn fn, void *ctx)
{
    return queue_list(ob->db, limit, fn, ctx);
}

int cloudq_show(struct cloudq *ob, int64_t id, cloudq_row_fn fn, void *ctx)
{
    return queue_get(ob->db, id, fn, ctx);
}

int cloudq_drop(struct cloudq *ob, int64_t id)
{
    sqlite3_stmt *st = ob->st[ST_DROP];
    int rc;

    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        cq_account(ob, -sqlite3_column_int64(st, 0));
        ob->n.dropped_by_operator++;
        kedge_log(KEDGE_LOG_NOTICE, "outbox: the operator dropped queued entry %lld (%s)",
                  (long long)id, sqlite3_column_text(st, 1));
        rc = sqlite3_step(st);
        cq_done(ob, ST_DROP);
        return rc == SQLITE_DONE ? 1 : cq_fail(ob, "drop");
    }
    cq_done(ob, ST_DROP);
    return rc == SQLITE_DONE ? 0 : cq_fail(ob, "drop");
}

int cloudq_dead_list(struct cloudq *ob, long limit, cloudq_row_fn fn, void *ctx)
{
    return dead_list(ob->db, limit, fn, ctx);
}

int cloudq_dead_show(struct cloudq *ob, int64_t id, cloudq_row_fn fn, void *ctx)
{
    return dead_get(ob->db, id, fn, ctx);
}

int cloudq_dead_drop(struct cloudq *ob, int64_t id)
{
    int rc = dead_delete(ob->db, id);

    if (rc > 0) {
        ob->n.dropped_by_operator++;
        kedge_log(KEDGE_LOG_NOTICE, "outbox: the operator dropped dead letter %lld", (long long)id);
    }
    return rc < 0 ? cq_fail(ob, "drop dead letter") : rc;
}

int cloudq_plugin_seq(struct cloudq *ob, int64_t last_seq)
{
    sqlite3_stmt *st = NULL;
    int n;

    if (sqlite3_prepare_v2(ob->db, "DELETE FROM kedge_subject_seen WHERE seq > ?1", -1, &st,
                           NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return cq_fail(ob, "prepare forget seen");
    }
    sqlite3_bind_int64(st, 1, last_seq);
    n = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(ob->db) : -1;
    sqlite3_finalize(st);
    if (n < 0)
        return cq_fail(ob, "forget seen");
    if (n > 0)
        kedge_log(KEDGE_LOG_NOTICE,
                  "outbox: the plugin's entries are numbered up to %lld only (a new kedge.db?): "
                  "forgot the newest-taken marks of %d devices",
                  (long long)last_seq, n);
    return n;
}
