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
    ST_NEXT,
    ST_RESEND,
    ST_DELIVERED,
    ST_MARK,
    ST_CONFIRM,
    ST_DEPTH,
    ST_OLDEST,
    ST_COUNT
};

static const char *const sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PUT] = "INSERT OR IGNORE INTO kedge_outbox (msg_id, msg, kind, created_ms) "
               "VALUES (?1, ?2, ?3, ?4)",
    [ST_NEXT] = "SELECT id, msg_id, msg, kind FROM kedge_outbox WHERE id > ?1 ORDER BY id LIMIT 1",
    [ST_RESEND] = "SELECT id, msg_id, msg, kind FROM kedge_outbox WHERE kind = 1 AND "
                  "sent_ms > 0 AND sent_ms <= ?1 ORDER BY id LIMIT 1",
    [ST_DELIVERED] = "DELETE FROM kedge_outbox WHERE kind = 0 AND id <= ?1",
    [ST_MARK] = "UPDATE kedge_outbox SET sent_ms = ?2 WHERE id = ?1",
    [ST_CONFIRM] = "DELETE FROM kedge_outbox WHERE msg_id = ?1 AND kind = 1",
    [ST_DEPTH] = "SELECT count(*) FROM kedge_outbox",
    [ST_OLDEST] = "SELECT created_ms FROM kedge_outbox ORDER BY id LIMIT 1",
};

static const char schema[] =
    /* a small page cache: the queue is read front to back, and the bridge lives on gateways */
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-256;"
    "CREATE TABLE IF NOT EXISTS kedge_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "msg_id TEXT NOT NULL UNIQUE, msg TEXT NOT NULL, kind INTEGER NOT NULL, "
    "created_ms INTEGER NOT NULL, sent_ms INTEGER NOT NULL DEFAULT 0);";

struct boutbox {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    bool in_txn, failed;
};

static int fail(struct boutbox *ob, const char *what)
{
    kedge_log(KEDGE_LOG_ERR, "outbox: %s: %s", what, sqlite3_errmsg(ob->db));
    return KEDGE_ESTORE;
}

int boutbox_open(const char *path, struct boutbox **out)
{
    struct boutbox *ob = kedge_calloc(1, sizeof(*ob));
    int i;

    *out = NULL;
    if (!ob)
        return -ENOMEM;
    if (sqlite3_open_v2(path, &ob->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(ob->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
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

/* Twin and state messages get the device controller's answer; the rest does not. */
static enum outbox_kind kind_of(const struct kedge_msg *m)
{
    size_t n = m->resource ? strlen(m->resource) : 0;
    static const char *const confirmed[] = {"/twin/edge_updated", "/state/update"};
    size_t i;

    if (!m->source || strcmp(m->source, "twin") || !n || strncmp(m->resource, "device/", 7))
        return OUTBOX_FIRE;
    for (i = 0; i < 2; i++) {
        size_t k = strlen(confirmed[i]);
        if (n > k && !strcmp(m->resource + n - k, confirmed[i]))
            return OUTBOX_CONFIRM;
    }
    return OUTBOX_FIRE;
}

int boutbox_put(struct boutbox *ob, const char *msg, size_t len)
{
    struct kedge_msg m;
    sqlite3_stmt *st = ob->st[ST_PUT];
    int rc = kedge_msg_decode(msg, len, &m);

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
    sqlite3_bind_text(st, 1, m.msg_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, msg, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, kind_of(&m));
    sqlite3_bind_int64(st, 4, kedge_wall_ms());
    rc = run(ob, ST_PUT);
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
    if (!e->msg_id || !e->msg) {
        boutbox_entry_cleanup(e);
        return -ENOMEM;
    }
    return 1;
}

int boutbox_next(struct boutbox *ob, int64_t after, uint64_t resend_ms, struct outbox_entry *e)
{
    int which, rc = 0;

    memset(e, 0, sizeof(*e));
    for (which = ST_NEXT; which <= ST_RESEND && rc == 0; which++) {
        sqlite3_stmt *st = ob->st[which];
        if (which == ST_NEXT)
            sqlite3_bind_int64(st, 1, after);
        else
            sqlite3_bind_int64(st, 1, kedge_wall_ms() - (int64_t)resend_ms);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            rc = fill(st, e);
        else
            rc = rc == SQLITE_DONE ? 0 : fail(ob, "read");
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    return rc;
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
