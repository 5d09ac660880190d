/* The bridge's durable queue to the cloud (its own SQLite file, WAL).
 *
 * What the plugin hands over is stored here before the bridge acks it to the plugin, so every
 * cloud-bound message lives in one of the two outboxes at all times. Entries leave in id
 * order. An entry the cloud confirms (twin and state messages: the device controller answers
 * with parent_msg_id, kubeedge-wire.md §2.9) stays until that answer comes and is sent again
 * every resend_s, as edgecore does. Any other entry (uploads, requests) gets no answer from
 * CloudHub; it stays until the cloud has provably read it: edgehub.c sends a websocket PING
 * after it and calls boutbox_delivered when the PONG comes back (frames are read in order, so
 * the cloud read everything before the PING). Deleting on write instead lost whatever sat
 * unread in the cloud's socket when the link broke. After a reconnect unconfirmed entries go
 * again (at-least-once). Duplicates from a re-offering plugin are dropped by msg_id.
 *
 * Order per subject. cloudcore dispatches every message it reads on its own goroutine
 * (devicecontroller's updateDeviceStatus workers), so two twin reports of one device sent
 * back to back can be applied in either order and the cloud can end on the older value. A
 * confirm entry therefore carries a subject (its resource: device/{id}/twin/edge_updated or
 * .../state/update) and only the oldest entry of a subject is sendable; the next one is
 * unblocked when the cloud confirms it (the device controller answers only after its PATCH
 * of the Device went through) or when it is given up. Different devices still go in parallel.
 *
 * Giving up. cloudcore never answers a report of a device it does not know, and v1.15-v1.18
 * never answer state/update at all (there state reports are fire entries). edgecore resends such a
 * message every 60 s for as long as its process lives (dtmanager/communicate.go checkConfirm; its
 * ConfirmMap is memory only, so a restart forgets it). kedge resends every resend_s too, but after
 * resend_max unanswered resends on a live link the entry is set aside: deleted with one log line
 * and counted, so that neither the queue nor the device's later reports wait behind it for ever.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "bridge.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/msg.h"
#include "kedge/util.h"

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_PUT,
    ST_BLOCKED,
    ST_READY,
    ST_NEXT,
    ST_RESEND,
    ST_DELIVERED,
    ST_MARK,
    ST_CONFIRM,
    ST_DROP,
    ST_DEPTH,
    ST_OLDEST,
    ST_COUNT
};

static const char *const sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PUT] = "INSERT OR IGNORE INTO kedge_outbox (msg_id, msg, kind, created_ms, subject, "
               "blocked) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_BLOCKED] = "SELECT 1 FROM kedge_outbox WHERE subject = ?1 LIMIT 1",
    /* an unblocked head the send cursor has already passed */
    [ST_READY] = "SELECT id, msg_id, msg, kind, 0 FROM kedge_outbox WHERE kind = 1 AND "
                 "sent_ms = 0 AND blocked = 0 AND id <= ?1 ORDER BY id LIMIT 1",
    [ST_NEXT] = "SELECT id, msg_id, msg, kind, 0 FROM kedge_outbox WHERE blocked = 0 AND id > ?1 "
                "ORDER BY id LIMIT 1",
    [ST_RESEND] = "SELECT id, msg_id, msg, kind, resends FROM kedge_outbox WHERE kind = 1 AND "
                  "sent_ms > 0 AND sent_ms <= ?1 ORDER BY id LIMIT 1",
    [ST_DELIVERED] = "DELETE FROM kedge_outbox WHERE kind = 0 AND id <= ?1",
    [ST_MARK] = "UPDATE kedge_outbox SET sent_ms = ?2, resends = resends + ?3 WHERE id = ?1",
    [ST_CONFIRM] = "DELETE FROM kedge_outbox WHERE msg_id = ?1 AND kind = 1",
    [ST_DROP] = "DELETE FROM kedge_outbox WHERE id = ?1",
    [ST_DEPTH] = "SELECT count(*) FROM kedge_outbox",
    [ST_OLDEST] = "SELECT created_ms FROM kedge_outbox ORDER BY id LIMIT 1",
};

static const char schema[] =
    /* a small page cache: the queue is read front to back, and the bridge lives on gateways */
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-256;"
    "CREATE TABLE IF NOT EXISTS kedge_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "msg_id TEXT NOT NULL UNIQUE, msg TEXT NOT NULL, kind INTEGER NOT NULL, "
    "created_ms INTEGER NOT NULL, sent_ms INTEGER NOT NULL DEFAULT 0);";

/* Columns added after the first release: a database without them gets them. Rows queued
 * before have no subject and keep the old, unordered behaviour. */
static const char *const columns[][2] = {
    {"subject", "ALTER TABLE kedge_outbox ADD COLUMN subject TEXT"},
    {"blocked", "ALTER TABLE kedge_outbox ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0"},
    {"resends", "ALTER TABLE kedge_outbox ADD COLUMN resends INTEGER NOT NULL DEFAULT 0"},
};

/* The send path walks unblocked rows only, so a long blocked backlog of one device costs
 * nothing per send, and a subject's head is one index probe away. Whatever removes an entry
 * (the cloud's answer, a set-aside) lets the next of its subject go in the same statement, so
 * a kill -9 can never leave a subject blocked behind nothing. */
static const char indexes[] =
    "CREATE INDEX IF NOT EXISTS kedge_outbox_subject ON kedge_outbox (subject, id) "
    "WHERE subject IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS kedge_outbox_unblocked ON kedge_outbox (id) WHERE blocked = 0;"
    "CREATE INDEX IF NOT EXISTS kedge_outbox_ready ON kedge_outbox (id) "
    "WHERE kind = 1 AND sent_ms = 0 AND blocked = 0;"
    "CREATE TRIGGER IF NOT EXISTS kedge_outbox_next AFTER DELETE ON kedge_outbox "
    "WHEN old.subject IS NOT NULL BEGIN UPDATE kedge_outbox SET blocked = 0 WHERE id = "
    "(SELECT min(id) FROM kedge_outbox WHERE subject = old.subject); END;";

struct boutbox {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    bool in_txn, failed;
    long resend_max;     /* 0: resend for ever */
    bool state_answered; /* the cloud answers state/update */
    int64_t given_up;    /* entries set aside since open */
    struct kedge_ratelimit give_up_rl;
};

static int fail(struct boutbox *ob, const char *what)
{
    kedge_log(KEDGE_LOG_ERR, "outbox: %s: %s", what, sqlite3_errmsg(ob->db));
    return KEDGE_ESTORE;
}

/* Add the columns a database from an older bridge lacks (PRAGMA table_info lists them). */
static int migrate(struct boutbox *ob)
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
    return sqlite3_exec(ob->db, indexes, NULL, NULL, NULL) == SQLITE_OK ? 0 : KEDGE_ESTORE;
}

int boutbox_open(const char *path, long resend_max, bool state_answered, struct boutbox **out)
{
    struct boutbox *ob = kedge_calloc(1, sizeof(*ob));
    int i;

    *out = NULL;
    if (!ob)
        return -ENOMEM;
    ob->resend_max = resend_max;
    ob->state_answered = state_answered;
    ob->give_up_rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(60000, 10);
    if (sqlite3_open_v2(path, &ob->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(ob->db, schema, NULL, NULL, NULL) != SQLITE_OK || migrate(ob) < 0) {
        kedge_log(KEDGE_LOG_ERR, "outbox: cannot open %s: %s", path,
                  ob->db ? sqlite3_errmsg(ob->db) : "out of memory");
        boutbox_close(ob);
        return KEDGE_ESTORE;
    }
    sqlite3_busy_timeout(ob->db, 1000);
    for (i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v2(ob->db, sql[i], -1, &ob->st[i], NULL) != SQLITE_OK) {
            (void)fail(ob, "prepare");
            boutbox_close(ob);
            return KEDGE_ESTORE;
        }
    }
    *out = ob;
    return 0;
}

void boutbox_close(struct boutbox *ob)
{
    int i;

    if (!ob)
        return;
    if (ob->in_txn)
        (void)boutbox_commit(ob);
    for (i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(ob->st[i]);
    sqlite3_close_v2(ob->db);
    kedge_free(ob);
}

static int run(struct boutbox *ob, int which)
{
    int rc = sqlite3_step(ob->st[which]);

    sqlite3_reset(ob->st[which]);
    sqlite3_clear_bindings(ob->st[which]);
    return rc == SQLITE_DONE ? 0 : KEDGE_ESTORE;
}

/* Twin reports get the device controller's answer, state reports only from a cloud that
 * answers them (v1.19+: cloud/pkg/common/messagelayer GetResourceTypeForDevice); the rest
 * gets none. */
static enum outbox_kind kind_of(const struct boutbox *ob, const struct kedge_msg *m)
{
    size_t n = m->resource ? strlen(m->resource) : 0;
    static const char *const confirmed[] = {"/twin/edge_updated", "/state/update"};
    size_t i;

    if (!m->source || strcmp(m->source, "twin") || !n || strncmp(m->resource, "device/", 7))
        return OUTBOX_FIRE;
    for (i = 0; i < (ob->state_answered ? 2u : 1u); i++) {
        size_t k = strlen(confirmed[i]);
        if (n > k && !strcmp(m->resource + n - k, confirmed[i]))
            return OUTBOX_CONFIRM;
    }
    return OUTBOX_FIRE;
}

/* Whether an entry of this subject is queued already (then the new one waits its turn).
 * 1, 0, or KEDGE_ESTORE. */
static int subject_queued(struct boutbox *ob, const char *subject)
{
    sqlite3_stmt *st = ob->st[ST_BLOCKED];
    int rc;

    sqlite3_bind_text(st, 1, subject, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : KEDGE_ESTORE;
}

int boutbox_put(struct boutbox *ob, const char *msg, size_t len)
{
    struct kedge_msg m;
    sqlite3_stmt *st = ob->st[ST_PUT];
    enum outbox_kind kind;
    int rc = kedge_msg_decode(msg, len, &m), blocked = 0;

    if (rc < 0 || !m.msg_id || !*m.msg_id) {
        kedge_msg_cleanup(&m);
        kedge_log(KEDGE_LOG_ERR, "outbox: refusing a message without msg_id from the plugin");
        return rc < 0 ? rc : KEDGE_ESCHEMA;
    }
    if (!ob->in_txn) {
        if (run(ob, ST_BEGIN) < 0) {
            kedge_msg_cleanup(&m);
            return fail(ob, "begin");
        }
        ob->in_txn = true;
    }
    kind = kind_of(ob, &m);
    if (kind == OUTBOX_CONFIRM)
        blocked = subject_queued(ob, m.resource);
    if (blocked >= 0) {
        sqlite3_bind_text(st, 1, m.msg_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, msg, (int)len, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 3, kind);
        sqlite3_bind_int64(st, 4, kedge_wall_ms());
        if (kind == OUTBOX_CONFIRM)
            sqlite3_bind_text(st, 5, m.resource, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 6, blocked);
        rc = run(ob, ST_PUT);
    } else {
        rc = blocked;
    }
    kedge_msg_cleanup(&m);
    if (rc < 0) {
        ob->failed = true;
        return fail(ob, "insert");
    }
    return 0;
}

int boutbox_commit(struct boutbox *ob)
{
    int rc = 0;

    if (!ob->in_txn)
        return 0;
    if (ob->failed || run(ob, ST_COMMIT) < 0) {
        rc = ob->failed ? KEDGE_ESTORE : fail(ob, "commit");
        if (!sqlite3_get_autocommit(ob->db))
            (void)run(ob, ST_ROLLBACK);
    }
    ob->in_txn = ob->failed = false;
    return rc;
}

static int fill(sqlite3_stmt *st, struct outbox_entry *e)
{
    const char *id = (const char *)sqlite3_column_text(st, 1);

    e->id = sqlite3_column_int64(st, 0);
    e->msg_id = kedge_strdup(id ? id : "");
    e->len = (size_t)sqlite3_column_bytes(st, 2);
    e->msg = kedge_strndup((const char *)sqlite3_column_text(st, 2), e->len);
    e->kind = sqlite3_column_int(st, 3) ? OUTBOX_CONFIRM : OUTBOX_FIRE;
    e->resends = sqlite3_column_int64(st, 4);
    if (!e->msg_id || !e->msg) {
        boutbox_entry_cleanup(e);
        return -ENOMEM;
    }
    return 1;
}

/* A confirm entry left unanswered for resend_max resends on a live link: set it aside. */
static int give_up(struct boutbox *ob, const struct outbox_entry *e)
{
    sqlite3_bind_int64(ob->st[ST_DROP], 1, e->id);
    if (run(ob, ST_DROP) < 0)
        return fail(ob, "set aside");
    ob->given_up++;
    kedge_log_limited(&ob->give_up_rl, "outbox", KEDGE_LOG_WARN,
                      "outbox: the cloud never answered %s in %lld resends; set aside (a device "
                      "the cloud does not know?)",
                      e->msg_id, (long long)e->resends);
    return 0;
}

/* One candidate from statement `which`: 1 (filled), 0 (none), or an error. */
static int candidate(struct boutbox *ob, int which, int64_t arg, struct outbox_entry *e)
{
    sqlite3_stmt *st = ob->st[which];
    int rc;

    sqlite3_bind_int64(st, 1, arg);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = fill(st, e);
    else
        rc = rc == SQLITE_DONE ? 0 : fail(ob, "read");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int boutbox_next(struct boutbox *ob, int64_t after, uint64_t resend_ms, struct outbox_entry *e)
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
        if (!ob->resend_max || e->resends < ob->resend_max)
            return 1;
        rc = give_up(ob, e); /* then the next of its subject may be sendable */
        boutbox_entry_cleanup(e);
        if (rc < 0)
            return rc;
    }
}

void boutbox_entry_cleanup(struct outbox_entry *e)
{
    kedge_free(e->msg_id);
    kedge_free(e->msg);
    memset(e, 0, sizeof(*e));
}

int boutbox_sent(struct boutbox *ob, const struct outbox_entry *e)
{
    if (e->kind == OUTBOX_FIRE)
        return 0; /* nothing to remember: boutbox_delivered removes it */
    sqlite3_bind_int64(ob->st[ST_MARK], 1, e->id);
    sqlite3_bind_int64(ob->st[ST_MARK], 2, kedge_wall_ms());
    sqlite3_bind_int(ob->st[ST_MARK], 3, e->resend ? 1 : 0);
    return run(ob, ST_MARK) < 0 ? fail(ob, "mark sent") : 0;
}

int boutbox_delivered(struct boutbox *ob, int64_t upto)
{
    sqlite3_bind_int64(ob->st[ST_DELIVERED], 1, upto);
    if (run(ob, ST_DELIVERED) < 0)
        return fail(ob, "delete delivered");
    return sqlite3_changes(ob->db);
}

int boutbox_confirmed(struct boutbox *ob, const char *msg_id)
{
    sqlite3_bind_text(ob->st[ST_CONFIRM], 1, msg_id, -1, SQLITE_TRANSIENT);
    if (run(ob, ST_CONFIRM) < 0)
        return fail(ob, "confirm");
    return sqlite3_changes(ob->db) > 0;
}

int64_t boutbox_given_up(const struct boutbox *ob)
{
    return ob->given_up;
}

void boutbox_reset_sent(struct boutbox *ob)
{
    (void)ob; /* the send cursor restarts at 0 on reconnect; rows need no change */
}

int64_t boutbox_depth(struct boutbox *ob)
{
    int64_t n = -1;

    if (sqlite3_step(ob->st[ST_DEPTH]) == SQLITE_ROW)
        n = sqlite3_column_int64(ob->st[ST_DEPTH], 0);
    sqlite3_reset(ob->st[ST_DEPTH]);
    return n;
}

int64_t boutbox_oldest_ms(struct boutbox *ob)
{
    int64_t t = 0;

    if (sqlite3_step(ob->st[ST_OLDEST]) == SQLITE_ROW)
        t = sqlite3_column_int64(ob->st[ST_OLDEST], 0);
    sqlite3_reset(ob->st[ST_OLDEST]);
    return t;
}
