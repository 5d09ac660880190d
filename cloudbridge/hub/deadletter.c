/* Dead letters of the bridge queue: entries the cloud refused poison_after times in a row
 * (closed the link on them, or answered with an error), or never answered in resend_max
 * resends. They are kept with the reason, out of the queue's way, until an operator retries or
 * drops them (kedge-ctl outbox ...): nothing is deleted silently. cloudq.c owns the handle and
 * the counting; this file is the table, and the read-only views of the queue an operator gets.
 */
#include <string.h>

#include "deadletter.h"
#include "kedge/err.h"
#include "kedge/schema.h"
#include "kedge/util.h"

static const char schema[] = KEDGE_DDL_DEAD_LETTERS;

/* The columns walk() reads, for the dead letters and for the queue: id, msg_id, msg (or ''),
 * resource, kind, reason, failures, created_ms, dead_ms (queue: sent_ms), bytes, subject,
 * blocked. */
#define DEAD_COLS(msg)                                                                             \
    "SELECT id, msg_id, " msg ", resource, kind, reason, failures, created_ms, dead_ms, "          \
    "length(CAST(msg AS BLOB)), 0, 0 FROM kedge_dead "
#define QUEUE_COLS(msg)                                                                            \
    "SELECT id, msg_id, " msg ", resource, kind, coalesce(last_error, ''), failures, "             \
    "created_ms, sent_ms, bytes, subject IS NOT NULL, blocked FROM kedge_outbox "

int dead_init(sqlite3 *db)
{
    return sqlite3_exec(db, schema, NULL, NULL, NULL) == SQLITE_OK ? 0 : KEDGE_ESTORE;
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : KEDGE_ESTORE;
}

/* One statement with one int64 parameter, run to completion. Returns the changed rows or
 * KEDGE_ESTORE. */
static int run_id(sqlite3 *db, const char *sql, int64_t id, const char *text, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return KEDGE_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    if (now)
        sqlite3_bind_int64(st, 3, now);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? sqlite3_changes(db) : KEDGE_ESTORE;
}

/* The row's bytes if it is an upload (fire, no subject), 0 for twin/state, -1 if absent. */
static int64_t upload_bytes_of(sqlite3 *db, int64_t id)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;

    if (sqlite3_prepare_v2(
            db,
            "SELECT CASE WHEN subject IS NULL AND kind = 0 AND proven_ms = 0 THEN bytes ELSE 0 END "
            "FROM kedge_outbox WHERE id = ?1",
            -1, &st, NULL) != SQLITE_OK)
        return KEDGE_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

int dead_move(sqlite3 *db, int64_t id, const char *reason, int64_t *upload_bytes)
{
    int64_t bytes;
    int rc;

    *upload_bytes = 0;
    if (exec(db, "SAVEPOINT dead_move") < 0)
        return KEDGE_ESTORE;
    bytes = upload_bytes_of(db, id);
    if (bytes < 0) {
        rc = bytes == -1 ? 0 : KEDGE_ESTORE;
        goto out;
    }
    rc = run_id(db,
                "INSERT INTO kedge_dead (msg_id, msg, resource, kind, reason, failures, "
                "created_ms, dead_ms) SELECT msg_id, msg, resource, kind, ?2, failures, "
                "created_ms, ?3 FROM kedge_outbox WHERE id = ?1",
                id, reason, kedge_wall_ms());
    if (rc >= 0)
        rc = run_id(db, "DELETE FROM kedge_outbox WHERE id = ?1", id, NULL, 0);
    if (rc > 0)
        *upload_bytes = bytes;
out:
    if (rc < 0)
        (void)exec(db, "ROLLBACK TO dead_move"); /* the caller logs sqlite3_errmsg */
    if (exec(db, "RELEASE dead_move") < 0)
        return KEDGE_ESTORE;
    return rc < 0 ? rc : rc > 0;
}

int64_t dead_count(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;

    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM kedge_dead", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static const char *text_col(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);

    return s ? s : "";
}

/* Run a SELECT of select_cols and hand each row to fn. Returns the rows seen, fn's negative
 * value, or KEDGE_ESTORE. */
static int walk(sqlite3 *db, const char *sql, bool dead, int64_t arg, cloudq_row_fn fn, void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc, n = 0;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return KEDGE_ESTORE;
    sqlite3_bind_int64(st, 1, arg);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct cloudq_row row = {0};
        row.id = sqlite3_column_int64(st, 0);
        row.msg_id = text_col(st, 1);
        row.msg = text_col(st, 2);
        row.len = (size_t)sqlite3_column_bytes(st, 2);
        row.resource = text_col(st, 3);
        row.kind = sqlite3_column_int(st, 4) ? CLOUDQ_CONFIRM : CLOUDQ_FIRE;
        row.reason = text_col(st, 5);
        row.failures = sqlite3_column_int64(st, 6);
        row.created_ms = sqlite3_column_int64(st, 7);
        if (dead)
            row.dead_ms = sqlite3_column_int64(st, 8);
        else
            row.in_flight = row.kind == CLOUDQ_CONFIRM && sqlite3_column_int64(st, 8) > 0;
        row.bytes = sqlite3_column_int64(st, 9);
        row.subject = sqlite3_column_int(st, 10) != 0;
        row.blocked = sqlite3_column_int(st, 11) != 0;
        n++;
        rc = fn(ctx, &row);
        if (rc < 0)
            break;
    }
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;
    return rc == SQLITE_DONE ? n : KEDGE_ESTORE;
}

int dead_list(sqlite3 *db, long limit, cloudq_row_fn fn, void *ctx)
{
    return walk(db, DEAD_COLS("''") "ORDER BY id LIMIT ?1", true, limit, fn, ctx);
}

int dead_get(sqlite3 *db, int64_t id, cloudq_row_fn fn, void *ctx)
{
    return walk(db, DEAD_COLS("msg") "WHERE id = ?1", true, id, fn, ctx);
}

int queue_list(sqlite3 *db, long limit, cloudq_row_fn fn, void *ctx)
{
    return walk(db, QUEUE_COLS("''") "WHERE proven_ms = 0 ORDER BY id LIMIT ?1", false, limit, fn,
                ctx);
}

int queue_get(sqlite3 *db, int64_t id, cloudq_row_fn fn, void *ctx)
{
    return walk(db, QUEUE_COLS("msg") "WHERE id = ?1", false, id, fn, ctx);
}

int dead_delete(sqlite3 *db, int64_t id)
{
    return run_id(db, "DELETE FROM kedge_dead WHERE id = ?1", id, NULL, 0);
}
