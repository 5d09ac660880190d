/* Putting into the bridge's queue (cloudq.c says what the queue is): a twin or state report
 * merges into its subject's waiting row or waits behind the one on the link, a re-offer older
 * than what its subject took is dropped, an upload goes in order within the byte budget, and a
 * retried dead letter goes back under its subject's newer values.
 */
#include <errno.h>
#include <string.h>

#include "deadletter.h"
#include "kedge/alloc.h"
#include "kedge/coalesce.h"
#include "kedge/err.h"
#include "kedge/util.h"
#include "cloudq_int.h"

/* A twin or state report of the twin module is state (coalesced per resource); an MQTT
 * client's upload on a topic that happens to look the same is not. */
static enum kedge_coalesce_kind subject_kind(const struct kedge_msg *m)
{
    if (!m->source || strcmp(m->source, "twin"))
        return KEDGE_COALESCE_NONE;
    return kedge_coalesce_kind(m->resource);
}

/* ---- putting ---------------------------------------------------------------------------- */

struct row_in {
    const char *msg_id, *resource, *subject;
    const char *msg;
    size_t len;
    enum cloudq_kind kind;
    bool blocked;
};

static int insert(struct cloudq *ob, const struct row_in *r)
{
    sqlite3_stmt *st = ob->st[ST_PUT];

    sqlite3_bind_text(st, 1, r->msg_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, r->msg, (int)r->len, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, r->kind);
    sqlite3_bind_int64(st, 4, kedge_wall_ms());
    if (r->subject)
        sqlite3_bind_text(st, 5, r->subject, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 6, r->blocked);
    if (r->resource)
        sqlite3_bind_text(st, 7, r->resource, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 8, (int64_t)r->len);
    if (cq_run(ob, ST_PUT) < 0)
        return cq_fail(ob, "insert");
    return sqlite3_changes(ob->db);
}

/* Whether a re-offer is older than what this subject already took (then it is dropped: a
 * newer value was merged already). seq 0: not from the plugin, no guard. 1, 0, KEDGE_ESTORE. */
static int stale(struct cloudq *ob, const char *subject, int64_t seq)
{
    sqlite3_stmt *st = ob->st[ST_SEEN_GET];
    int rc;
    bool older = false;

    if (seq <= 0)
        return 0;
    sqlite3_bind_text(st, 1, subject, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        older = seq <= sqlite3_column_int64(st, 0);
    cq_done(ob, ST_SEEN_GET);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cq_fail(ob, "read seen");
    if (older)
        return 1;
    st = ob->st[ST_SEEN_SET];
    sqlite3_bind_text(st, 1, subject, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, seq);
    return cq_run(ob, ST_SEEN_SET) < 0 ? cq_fail(ob, "write seen") : 0;
}

/* The newest row of a subject. 1 (filled; free msg and msg_id), 0 none, or an error. */
struct tail {
    int64_t id, sent_ms;
    enum cloudq_kind kind;
    char *msg, *msg_id;
    size_t len;
};

static int subject_tail(struct cloudq *ob, const char *subject, struct tail *t)
{
    sqlite3_stmt *st = ob->st[ST_TAIL];
    int rc;

    memset(t, 0, sizeof(*t));
    sqlite3_bind_text(st, 1, subject, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        t->id = sqlite3_column_int64(st, 0);
        t->len = (size_t)sqlite3_column_bytes(st, 1);
        t->msg = kedge_strndup((const char *)sqlite3_column_text(st, 1), t->len);
        t->sent_ms = sqlite3_column_int64(st, 2);
        t->kind = sqlite3_column_int(st, 3) ? CLOUDQ_CONFIRM : CLOUDQ_FIRE;
        t->msg_id = kedge_strdup((const char *)sqlite3_column_text(st, 4));
        rc = t->msg && t->msg_id ? 1 : -ENOMEM;
    } else {
        rc = rc == SQLITE_DONE ? 0 : cq_fail(ob, "read subject");
    }
    cq_done(ob, ST_TAIL);
    return rc;
}

/* older overlaid by newer into out; a message the codec does not understand: the newer as is. */
static int merge(enum kedge_coalesce_kind ck, const char *older, size_t olen, const char *newer,
                 size_t nlen, struct kedge_buf *out)
{
    int rc = kedge_coalesce_merge(ck, older, olen, newer, nlen, out);

    if (rc == KEDGE_ESCHEMA) {
        kedge_buf_reset(out);
        rc = kedge_buf_append(out, newer, nlen);
    }
    return rc;
}

static int replace_msg(struct cloudq *ob, int64_t id, const char *msg_id, const struct kedge_buf *b)
{
    sqlite3_stmt *st = ob->st[ST_MERGE];

    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, b->data, (int)b->len, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, msg_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, (int64_t)b->len);
    return cq_run(ob, ST_MERGE) < 0 ? cq_fail(ob, "merge") : 0;
}

/* A report of subject r->subject (the newer one): merged into the subject's waiting row, or
 * queued behind the row on the link, or (fire) replacing the subject's row at the tail. */
static int put_subject(struct cloudq *ob, enum kedge_coalesce_kind ck, const struct row_in *r)
{
    struct kedge_buf merged = KEDGE_BUF_INIT;
    struct row_in in = *r;
    struct tail t;
    int rc = subject_tail(ob, r->subject, &t);

    if (rc <= 0)
        return rc < 0 ? rc : insert(ob, r) < 0 ? KEDGE_ESTORE : 0;
    if (t.kind == CLOUDQ_CONFIRM && r->kind == CLOUDQ_CONFIRM && t.sent_ms > 0) {
        in.blocked = true; /* one on the link; this one waits behind it */
        rc = insert(ob, &in) < 0 ? KEDGE_ESTORE : 0;
        goto out;
    }
    rc = merge(ck, t.msg, t.len, r->msg, r->len, &merged);
    if (rc < 0)
        goto out;
    ob->n.coalesced++;
    if (t.kind == CLOUDQ_CONFIRM && r->kind == CLOUDQ_CONFIRM) {
        rc = replace_msg(ob, t.id, r->msg_id, &merged); /* keeps its place, and blocked */
        goto out;
    }
    /* fire: nothing answers it. Not on the link yet: merged in place, so a device reporting
     * faster than a backlog of uploads drains still gets its turn */
    if (t.kind == CLOUDQ_FIRE && r->kind == CLOUDQ_FIRE && t.id > ob->written_upto) {
        rc = replace_msg(ob, t.id, r->msg_id, &merged);
        goto out;
    }
    /* on the link, a PONG would take it for the newer values: the merged one goes at the tail */
    sqlite3_bind_text(ob->st[ST_DEL_SUBJECT], 1, r->subject, -1, SQLITE_TRANSIENT);
    rc = cq_run(ob, ST_DEL_SUBJECT) < 0 ? cq_fail(ob, "replace subject") : 0;
    in.msg = merged.data;
    in.len = merged.len;
    if (rc == 0)
        rc = insert(ob, &in) < 0 ? KEDGE_ESTORE : 0;
out:
    kedge_free(t.msg);
    kedge_free(t.msg_id);
    kedge_buf_cleanup(&merged);
    return rc;
}

/* Drop the oldest uploads until `need` more bytes fit the budget. 0 or KEDGE_ESTORE. */
static int make_room(struct cloudq *ob, int64_t need)
{
    while (ob->upload_bytes + ob->txn_bytes + need > ob->o.budget_bytes) {
        sqlite3_stmt *st = ob->st[ST_OLDEST_UPLOAD];
        int64_t id, bytes;
        int rc = sqlite3_step(st);

        if (rc != SQLITE_ROW) {
            cq_done(ob, ST_OLDEST_UPLOAD);
            if (rc != SQLITE_DONE)
                return cq_fail(ob, "oldest upload");
            (void)cq_sum_uploads(ob); /* the count drifted: trust the table */
            ob->txn_bytes = 0;
            return 0;
        }
        id = sqlite3_column_int64(st, 0);
        bytes = sqlite3_column_int64(st, 2);
        kedge_log_limited(&ob->drop_rl, "outbox", KEDGE_LOG_WARN,
                          "outbox: upload budget full (%lld of %lld bytes): dropped the oldest "
                          "upload %s (%lld bytes; upload_policy drop-oldest)",
                          (long long)(ob->upload_bytes + ob->txn_bytes),
                          (long long)ob->o.budget_bytes, sqlite3_column_text(st, 1),
                          (long long)bytes);
        cq_done(ob, ST_OLDEST_UPLOAD);
        sqlite3_bind_int64(ob->st[ST_DROP_OLDEST], 1, id);
        if (cq_run(ob, ST_DROP_OLDEST) < 0)
            return cq_fail(ob, "drop oldest");
        cq_account(ob, -bytes);
        ob->n.uploads_dropped++;
    }
    return 0;
}

/* An upload: in order, within the byte budget. 0, KEDGE_EFULL (refuse policy), or an error. */
static int put_upload(struct cloudq *ob, const struct row_in *r)
{
    int64_t len = (int64_t)r->len;
    int rc;

    if (ob->o.budget_bytes > 0 && len > ob->o.budget_bytes) {
        ob->n.uploads_dropped++; /* could never fit: refusing it would stop the line for ever */
        kedge_log_limited(&ob->drop_rl, "outbox", KEDGE_LOG_WARN,
                          "outbox: dropped upload %s resource=%s: %lld bytes is more than the "
                          "whole upload_budget_bytes=%lld",
                          r->msg_id, r->resource ? r->resource : "", (long long)len,
                          (long long)ob->o.budget_bytes);
        return 0;
    }
    if (ob->o.budget_bytes > 0 && ob->upload_bytes + ob->txn_bytes + len > ob->o.budget_bytes) {
        if (!ob->o.drop_oldest)
            return KEDGE_EFULL;
        rc = make_room(ob, len);
        if (rc < 0)
            return rc;
    }
    rc = insert(ob, r);
    if (rc > 0)
        cq_account(ob, len);
    return rc < 0 ? rc : 0;
}

int cloudq_put(struct cloudq *ob, const char *msg, size_t len, int64_t seq)
{
    struct kedge_msg m;
    enum kedge_coalesce_kind ck;
    struct row_in r = {0};
    int rc = kedge_msg_decode(msg, len, &m);

    if (rc < 0 || !m.msg_id || !*m.msg_id) {
        kedge_msg_cleanup(&m);
        kedge_log_limited(&ob->err_rl, "outbox", KEDGE_LOG_ERR,
                          "outbox: refusing a message without msg_id from the plugin");
        return rc < 0 ? rc : KEDGE_ESCHEMA;
    }
    rc = cq_begin(ob);
    r = (struct row_in){m.msg_id, m.resource, NULL, msg, len, cq_kind_of(ob, &m), false};
    ck = subject_kind(&m);
    if (rc == 0 && ck != KEDGE_COALESCE_NONE) {
        r.subject = m.resource;
        rc = stale(ob, r.subject, seq);
        if (rc > 0)
            ob->n.stale_dropped++; /* a re-offer: the newer value is queued or sent already */
        else if (rc == 0)
            rc = put_subject(ob, ck, &r);
    } else if (rc == 0) {
        rc = put_upload(ob, &r);
    }
    kedge_msg_cleanup(&m);
    if (rc == KEDGE_EFULL)
        return rc; /* the batch so far stays good */
    if (rc < 0) {
        ob->failed = true;
        return rc;
    }
    return 0;
}
static int copy_msg(void *ctx, const struct cloudq_row *row)
{
    struct kedge_buf *b = ctx;

    return kedge_buf_append(b, row->msg, row->len);
}

/* A retried report of a subject goes under what is queued for it (older first), so the cloud
 * still never sees older values after newer. 0, -EBUSY (the subject's report is on the link
 * and nothing waits: retry once it is answered), or an error. */
static int requeue_subject(struct cloudq *ob, enum kedge_coalesce_kind ck, const struct row_in *r)
{
    struct kedge_buf merged = KEDGE_BUF_INIT;
    struct tail t;
    int rc = subject_tail(ob, r->subject, &t);

    if (rc <= 0)
        return rc < 0 ? rc : insert(ob, r) < 0 ? KEDGE_ESTORE : 0;
    if (t.kind == CLOUDQ_CONFIRM && t.sent_ms > 0)
        rc = -EBUSY;
    else
        rc = merge(ck, r->msg, r->len, t.msg, t.len, &merged);
    if (rc == 0)
        rc = replace_msg(ob, t.id, t.msg_id, &merged);
    kedge_free(t.msg);
    kedge_free(t.msg_id);
    kedge_buf_cleanup(&merged);
    return rc;
}

int cloudq_dead_retry(struct cloudq *ob, int64_t id)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_msg m;
    struct row_in r;
    enum kedge_coalesce_kind ck;
    int rc = dead_get(ob->db, id, copy_msg, &b);

    if (rc <= 0) {
        kedge_buf_cleanup(&b);
        return rc == 0 ? -ENOENT : rc;
    }
    rc = kedge_msg_decode(b.data, b.len, &m);
    if (rc == 0)
        rc = cq_begin(ob);
    if (rc == 0) {
        r = (struct row_in){m.msg_id, m.resource, NULL, b.data, b.len, cq_kind_of(ob, &m), false};
        ck = subject_kind(&m);
        if (ck != KEDGE_COALESCE_NONE) {
            r.subject = m.resource;
            rc = requeue_subject(ob, ck, &r);
        } else {
            rc = insert(ob, &r); /* the operator's word: beyond the budget if need be */
            if (rc > 0 && r.kind == CLOUDQ_FIRE)
                cq_account(ob, (int64_t)b.len);
            rc = rc < 0 ? rc : 0;
        }
        if (rc == 0 && dead_delete(ob->db, id) < 0)
            rc = cq_fail(ob, "retry");
        if (rc < 0)
            ob->failed = true; /* nothing of it stays */
        if (cloudq_commit(ob) < 0 && rc == 0)
            rc = KEDGE_ESTORE;
    }
    if (rc == 0)
        kedge_log(KEDGE_LOG_NOTICE, "outbox: the operator queued dead letter %lld (%s) again",
                  (long long)id, m.msg_id);
    kedge_msg_cleanup(&m);
    kedge_buf_cleanup(&b);
    return rc;
}
