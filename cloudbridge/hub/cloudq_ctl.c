/* The operator's requests on the bridge's queue: $ke/bctl/{ref} (include/kedge/ke.h), sent by
 * kedge-ctl outbox, answered by the relay on $ke/bctl/{ref}/result with what this file writes.
 * Every drop and retry is logged and counted by cloudq.c; nothing here deletes on its own.
 */
#include <errno.h>
#include <string.h>

#include "cloudq.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/kebody.h"
#include "kedge/util.h"

#define LIST_DEFAULT 20
#define LIST_MAX 1000

struct lister {
    struct kedge_jw *w;
    int64_t now;
    bool dead, with_msg;
};

static const char *kind_name(enum cloudq_kind k)
{
    return k == CLOUDQ_CONFIRM ? "confirm" : "fire";
}

/* One row's fields: the shape of an outbox_list / dead_list entry. */
static void row_fields(struct kedge_jw *w, const struct cloudq_row *row, int64_t now, bool dead)
{
    kedge_jw_kint(w, "id", row->id);
    kedge_jw_kstr(w, "msg_id", row->msg_id);
    kedge_jw_kstr(w, "resource", row->resource);
    kedge_jw_kstr(w, "kind", kind_name(row->kind));
    kedge_jw_key(w, "subject");
    kedge_jw_bool(w, row->subject);
    kedge_jw_kint(w, "bytes", row->bytes);
    kedge_jw_kint(w, "age_ms", now > row->created_ms ? now - row->created_ms : 0);
    kedge_jw_kint(w, "failures", row->failures);
    kedge_jw_kstr(w, "reason", row->reason);
    if (dead) {
        kedge_jw_kint(w, "dead_ms", row->dead_ms);
        return;
    }
    kedge_jw_key(w, "in_flight");
    kedge_jw_bool(w, row->in_flight);
    kedge_jw_key(w, "blocked");
    kedge_jw_bool(w, row->blocked);
}

static int add_row(void *ctx, const struct cloudq_row *row)
{
    struct lister *l = ctx;

    kedge_jw_obj_open(l->w);
    row_fields(l->w, row, l->now, l->dead);
    if (l->with_msg) {
        kedge_jw_key(l->w, "msg");
        kedge_jw_raw(l->w, row->msg, row->len); /* stored only after kedge_msg_decode took it */
    }
    kedge_jw_obj_close(l->w);
    return l->w->err;
}

static void answer_code(struct kedge_jw *w, int code, const char *reason)
{
    kebody_error_write(w, code, reason);
}

static void answer_error(struct kedge_jw *w, int rc)
{
    if (rc == -ENOENT || rc == 0)
        answer_code(w, 404, "no such entry");
    else if (rc == -EBUSY)
        answer_code(w, 409,
                    "a report of this device is on the link; retry once the cloud "
                    "answered it");
    else
        answer_code(w, 500, kedge_strerror(rc));
}

static void do_list(struct cloudq *ob, struct kedge_jw *w, long limit, bool dead)
{
    struct lister l = {w, kedge_wall_ms(), dead, false};
    struct cloudq_stats st;
    int rc;

    kedge_jw_obj_open(w);
    kedge_jw_key(w, "entries");
    kedge_jw_arr_open(w);
    rc = dead ? cloudq_dead_list(ob, limit, add_row, &l) : cloudq_list(ob, limit, add_row, &l);
    kedge_jw_arr_close(w);
    cloudq_stats(ob, &st);
    if (dead) {
        kedge_jw_kint(w, "count", st.dead_letters);
    } else {
        kedge_jw_kint(w, "depth", st.depth);
        kedge_jw_kint(w, "bytes", st.upload_bytes);
        kedge_jw_kint(w, "budget_bytes", st.budget_bytes);
    }
    if (rc < 0)
        kedge_jw_kstr(w, "error", kedge_strerror(rc));
    kedge_jw_obj_close(w);
}

static void do_show(struct cloudq *ob, struct kedge_jw *w, int64_t id, bool dead)
{
    struct lister l = {w, kedge_wall_ms(), dead, true};
    struct kedge_buf scratch = KEDGE_BUF_INIT;
    struct kedge_jw probe;
    int rc;

    /* found or not is known only after the walk: write into a scratch writer first */
    kedge_jw_init(&probe, &scratch);
    l.w = &probe;
    rc = dead ? cloudq_dead_show(ob, id, add_row, &l) : cloudq_show(ob, id, add_row, &l);
    if (rc == 1 && kedge_jw_finish(&probe) == 0)
        kedge_jw_raw(w, scratch.data, scratch.len);
    else
        answer_error(w, rc == 1 ? -ENOMEM : rc);
    kedge_buf_cleanup(&scratch);
}

static void do_act(struct kedge_jw *w, int rc)
{
    if (rc < 0 || rc == 0) {
        answer_error(w, rc);
        return;
    }
    static const struct kebody_result done = {true, 0, NULL};

    kebody_result_write(w, &done);
}

static void dispatch(struct cloudq *ob, struct kedge_jw *w, const char *op, bool has_id, int64_t id,
                     long limit)
{
    bool needs_id = strcmp(op, "outbox_list") && strcmp(op, "dead_list");

    if (needs_id && !has_id) {
        answer_code(w, 400, "this op needs \"id\"");
    } else if (!strcmp(op, "outbox_list") || !strcmp(op, "dead_list")) {
        do_list(ob, w, limit, op[0] == 'd');
    } else if (!strcmp(op, "outbox_show") || !strcmp(op, "dead_show")) {
        do_show(ob, w, id, op[0] == 'd');
    } else if (!strcmp(op, "outbox_drop")) {
        do_act(w, cloudq_drop(ob, id));
    } else if (!strcmp(op, "dead_drop")) {
        do_act(w, cloudq_dead_drop(ob, id));
    } else if (!strcmp(op, "dead_retry")) {
        int rc = cloudq_dead_retry(ob, id);
        do_act(w, rc == 0 ? 1 : rc);
    } else {
        answer_code(w, 400,
                    "unknown op (outbox_list, outbox_show, outbox_drop, dead_list, "
                    "dead_show, dead_retry, dead_drop)");
    }
}

int cloudq_ctl_handle(struct cloudq *ob, const char *req, size_t len, struct kedge_buf *out)
{
    struct kedge_jdoc *doc = NULL;
    struct kebody_request r;
    struct kedge_jw w;
    int64_t limit;
    bool has_id;

    kedge_jw_init(&w, out);
    if (kebody_request_decode(req, len, false, &doc, &r) < 0 && !doc) {
        answer_code(&w, 400, "the request is not JSON");
        return kedge_jw_finish(&w);
    }
    has_id = r.has_id == KEBODY_INT && r.id > 0;
    limit = r.has_limit == KEBODY_INT && r.limit >= 1 ? r.limit : LIST_DEFAULT;
    if (limit > LIST_MAX)
        limit = LIST_MAX;
    if (!r.op)
        answer_code(&w, 400, "no \"op\"");
    else
        dispatch(ob, &w, r.op, has_id, r.id, (long)limit);
    kedge_jdoc_free(doc);
    return kedge_jw_finish(&w);
}
