/* The outbox's table, kedge_outbox (include/kedge/ke.h): the plugin's half of the durable
 * hand-off to the bridge. Twin and state reports carry their resource as subject (at most one
 * waiting per subject, outbox.c sees to it, found through a partial index); uploads have none.
 * bytes is the encoded message's length, kept in a column so that counting the upload budget
 * never reads a message (NULL in rows from before the column: sized from msg then).
 */
#include <errno.h>
#include <string.h>

#include <sqlite3.h>

#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/util.h"
#include "store.h"
#include "store_int.h"

int store_outbox_insert(struct store *s, const char *subject, const char *msg, size_t len,
                        int64_t *seq)
{
    sqlite3_stmt *st = s ? s->st[ST_OUTBOX_INSERT] : NULL;
    int rc = store_begin_write(s);

    *seq = 0;
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, msg, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)kedge_wall_ms());
    if (subject)
        sqlite3_bind_text(st, 3, subject, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)len);
    rc = store_finish_write(s, st, "insert outbox entry");
    if (rc == 0)
        *seq = (int64_t)sqlite3_last_insert_rowid(s->db);
    return rc;
}

int store_outbox_find(struct store *s, const char *subject, int64_t *seq, struct kedge_buf *msg)
{
    sqlite3_stmt *st;
    int rc, err = 0;

    *seq = 0;
    if (!store_ok(s))
        return KEDGE_ESTORE;
    st = s->st[ST_OUTBOX_FIND];
    sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *text = sqlite3_column_text(st, 1);
        *seq = (int64_t)sqlite3_column_int64(st, 0);
        if (text)
            err = kedge_buf_append(msg, text, (size_t)sqlite3_column_bytes(st, 1));
    } else {
        err = store_step_error(s, rc, "find outbox subject");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

/* Add what the range from..to holds, per kind, to *t (to < 0: the whole table). */
static int tally(struct store *s, int64_t from, int64_t to, struct store_outbox_tally *t)
{
    sqlite3_stmt *st = s->st[to < 0 ? ST_OUTBOX_TALLY : ST_OUTBOX_GONE];
    int rc;

    if (to >= 0) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)to);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int(st, 0)) {
            t->uploads += sqlite3_column_int64(st, 1);
            t->upload_bytes += (int64_t)sqlite3_column_double(st, 2);
        } else {
            t->states += sqlite3_column_int64(st, 1);
        }
    }
    rc = store_step_error(s, rc, "count outbox entries");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* Delete seq alone (one) or everything up to it; what went is added to *gone. */
static int delete_entries(struct store *s, bool one, int64_t seq, struct store_outbox_tally *gone)
{
    sqlite3_stmt *st = s ? s->st[one ? ST_OUTBOX_DELETE_ONE : ST_OUTBOX_DELETE] : NULL;
    struct store_outbox_tally t = {0};
    int rc = store_begin_write(s);

    if (rc < 0)
        return rc;
    rc = tally(s, one ? seq : 0, seq, &t);
    if (rc < 0) {
        s->failed = true; /* the batch's accounting would be wrong: fail it as a whole */
        return rc;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    rc = store_finish_write(s, st, "delete outbox entries");
    if (rc < 0)
        return rc;
    gone->uploads += t.uploads;
    gone->upload_bytes += t.upload_bytes;
    gone->states += t.states;
    return sqlite3_changes(s->db);
}

int store_outbox_delete(struct store *s, int64_t seq, struct store_outbox_tally *gone)
{
    return delete_entries(s, false, seq, gone);
}

int store_outbox_delete_one(struct store *s, int64_t seq, struct store_outbox_tally *gone)
{
    return delete_entries(s, true, seq, gone);
}

/* Step st for one row of two integers into *a and *b, then reset it. Returns 1 (a row),
 * 0 (no row) or KEDGE_ESTORE. */
static int step_int_pair(struct store *s, sqlite3_stmt *st, const char *what, int64_t *a,
                         int64_t *b)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW) {
        *a = (int64_t)sqlite3_column_int64(st, 0);
        *b = (int64_t)sqlite3_column_int64(st, 1);
        rc = 1;
    } else {
        rc = store_step_error(s, rc, what);
    }
    sqlite3_reset(st);
    return rc;
}

int store_outbox_next_upload(struct store *s, int64_t after, int64_t *seq, int64_t *bytes)
{
    sqlite3_stmt *st;
    int rc;

    if (!store_ok(s))
        return KEDGE_ESTORE;
    st = s->st[ST_OUTBOX_UPLOAD_NEXT];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
    rc = step_int_pair(s, st, "find oldest upload", seq, bytes);
    sqlite3_clear_bindings(st);
    return rc;
}

int store_outbox_tally(struct store *s, struct store_outbox_tally *t)
{
    memset(t, 0, sizeof(*t));
    if (!store_ok(s))
        return KEDGE_ESTORE;
    return tally(s, 0, -1, t);
}

/* Columns as OUTBOX_ROW: seq, has subject, bytes, created_ms, msg. */
static int each_row(struct store *s, sqlite3_stmt *st, store_row_fn fn, void *ctx, int *n)
{
    int rc, err = 0;

    while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_outbox_row r = {
            .seq = (int64_t)sqlite3_column_int64(st, 0),
            .state = sqlite3_column_int(st, 1) != 0,
            .bytes = (int64_t)sqlite3_column_int64(st, 2),
            .created_ms = (int64_t)sqlite3_column_int64(st, 3),
            .msg = (const char *)sqlite3_column_text(st, 4),
            .len = (size_t)sqlite3_column_bytes(st, 4),
        };
        if (!r.msg)
            r.msg = "";
        err = fn(ctx, &r);
        (*n)++;
    }
    if (err == 0)
        err = store_step_error(s, rc, "read outbox");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

int store_outbox_list(struct store *s, int limit, store_row_fn fn, void *ctx)
{
    int n = 0;

    if (!store_ok(s))
        return KEDGE_ESTORE;
    sqlite3_bind_int(s->st[ST_OUTBOX_LIST], 1, limit);
    return each_row(s, s->st[ST_OUTBOX_LIST], fn, ctx, &n);
}

int store_outbox_get(struct store *s, int64_t seq, store_row_fn fn, void *ctx)
{
    int n = 0, rc;

    if (!store_ok(s))
        return KEDGE_ESTORE;
    sqlite3_bind_int64(s->st[ST_OUTBOX_GET], 1, (sqlite3_int64)seq);
    rc = each_row(s, s->st[ST_OUTBOX_GET], fn, ctx, &n);
    return rc < 0 ? rc : n ? 0 : -ENOENT;
}

int store_outbox_after(struct store *s, int64_t after, int limit, store_outbox_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    int rc, n = 0;

    if (!store_ok(s) || s->in_txn)
        return KEDGE_ESTORE; /* never read another batch's uncommitted rows */
    st = s->st[ST_OUTBOX_AFTER];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
    sqlite3_bind_int(st, 2, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fn(ctx, (int64_t)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
           (size_t)sqlite3_column_bytes(st, 1));
        n++;
    }
    rc = store_step_error(s, rc, "read outbox");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc < 0 ? rc : n;
}

int64_t store_outbox_oldest_ms(struct store *s)
{
    sqlite3_stmt *st;
    int64_t t = 0;

    if (!store_ok(s))
        return 0;
    st = s->st[ST_OUTBOX_OLDEST];
    if (sqlite3_step(st) == SQLITE_ROW)
        t = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return t;
}

int store_outbox_stats(struct store *s, int64_t *count, int64_t *max_seq)
{
    int rc;

    *count = *max_seq = 0;
    if (!store_ok(s))
        return KEDGE_ESTORE;
    rc = step_int_pair(s, s->st[ST_OUTBOX_STATS], "count outbox", count, max_seq);
    return rc < 0 ? rc : 0;
}

int64_t store_outbox_last_seq(struct store *s)
{
    sqlite3_stmt *st = NULL;
    int64_t seq = -1;

    if (!store_ok(s) || sqlite3_prepare_v2(s->db,
                                           "SELECT coalesce((SELECT seq FROM sqlite_sequence "
                                           "WHERE name = 'kedge_outbox'), 0)",
                                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return seq;
}
