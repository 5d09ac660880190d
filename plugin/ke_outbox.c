/* kedge-ctl's outbox ops (ke_outbox.h). */
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/kebody.h"
#include "kedge/util.h"
#include "ke_outbox.h"

#define LIST_DEFAULT 20
#define LIST_MAX 200

/* A JSON string token at p (p[0] == '"'): its length including both quotes, 0 if none. */
static size_t string_token(const char *p, const char *end)
{
    const char *q = p + 1;

    if (p >= end || *p != '"')
        return 0;
    while (q < end && *q != '"')
        q += *q == '\\' && q + 1 < end ? 2 : 1;
    return q < end ? (size_t)(q + 1 - p) : 0;
}

/* The route's resource of an encoded beehive message (NUL-terminated, as SQLite gives it), as
 * its JSON string token (quotes included), found without parsing the content: kedge writes
 * header and route before it and the route holds only strings. NULL when it is not there. */
static const char *route_resource(const char *msg, size_t n, size_t *len)
{
    static const char route[] = "\"route\":{";
    const char *end = msg + n, *p = strstr(msg, route);

    *len = 0;
    if (!p)
        return NULL;
    p += sizeof(route) - 1;
    while (p < end && *p == '"') {
        size_t k = string_token(p, end), v;
        if (!k || p + k >= end || p[k] != ':')
            return NULL;
        v = string_token(p + k + 1, end);
        if (!v)
            return NULL;
        if (k == 10 && !memcmp(p, "\"resource\"", 10)) {
            *len = v;
            return p + k + 1;
        }
        p += k + 1 + v;
        if (p < end && *p == ',')
            p++;
    }
    return NULL;
}

struct list_ctx {
    struct kedge_jw *w;
    int64_t now;
};

static int list_row(void *arg, const struct store_outbox_row *r)
{
    struct list_ctx *c = arg;
    size_t rlen;
    const char *res = route_resource(r->msg, r->len, &rlen);

    kedge_jw_obj_open(c->w);
    kedge_jw_kint(c->w, "seq", r->seq);
    kedge_jw_key(c->w, "resource");
    if (res)
        kedge_jw_raw(c->w, res, rlen);
    else
        kedge_jw_null(c->w);
    kedge_jw_key(c->w, "subject");
    kedge_jw_bool(c->w, r->state);
    kedge_jw_kint(c->w, "bytes", r->bytes);
    kedge_jw_kint(c->w, "age_ms", r->created_ms ? c->now - r->created_ms : 0);
    kedge_jw_obj_close(c->w);
    return 0;
}

int ke_outbox_list(struct outbox *ob, const struct kebody_request *req, struct kedge_buf *b)
{
    struct kedge_jw w;
    struct list_ctx c = {&w, kedge_wall_ms()};
    int64_t limit = req->has_limit == KEBODY_INT && req->limit > 0 ? req->limit : LIST_DEFAULT;
    int rc;

    if (limit > LIST_MAX)
        limit = LIST_MAX;
    kedge_jw_init(&w, b);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "entries");
    kedge_jw_arr_open(&w);
    rc = store_outbox_list(ob->store, (int)limit, list_row, &c);
    kedge_jw_arr_close(&w);
    kedge_jw_kint(&w, "depth", ob->held.uploads + ob->held.states);
    kedge_jw_kint(&w, "bytes", ob->held.upload_bytes);
    kedge_jw_kint(&w, "state_pending", ob->held.states);
    kedge_jw_obj_close(&w);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        kedge_buf_reset(b);
        kedge_jw_init(&w, b);
        kebody_error_write(&w, 500, store_error(ob->store));
    }
    return kedge_jw_finish(&w);
}

static int show_row(void *arg, const struct store_outbox_row *r)
{
    struct kedge_jw *w = arg;

    kedge_jw_obj_open(w);
    kedge_jw_kint(w, "seq", r->seq);
    kedge_jw_key(w, "subject");
    kedge_jw_bool(w, r->state);
    kedge_jw_key(w, "msg");
    kedge_jw_raw(w, r->msg, r->len); /* written by kedge_msg_encode: JSON */
    kedge_jw_obj_close(w);
    return 0;
}

int ke_outbox_show(struct outbox *ob, const struct kebody_request *req, struct kedge_buf *b)
{
    struct kedge_jw w;
    int64_t seq = req->has_seq == KEBODY_INT ? req->seq : 0;
    int rc;

    kedge_jw_init(&w, b);
    if (seq <= 0) {
        kebody_error_write(&w, 400, "outbox_show needs \"seq\"");
        return kedge_jw_finish(&w);
    }
    rc = store_outbox_get(ob->store, seq, show_row, &w);
    if (rc == -ENOENT)
        kebody_error_write(&w, 404, "no such entry in the plugin's outbox");
    else if (rc < 0)
        kebody_error_write(&w, 500, store_error(ob->store));
    return kedge_jw_finish(&w);
}

int ke_outbox_drop(struct outbox *ob, const struct kebody_request *req, const char **reason)
{
    int64_t seq = req->has_seq == KEBODY_INT ? req->seq : 0;
    int rc;

    if (seq <= 0) {
        *reason = "outbox_drop needs \"seq\"";
        return 400;
    }
    rc = outbox_drop(ob, seq);
    if (rc == -ENOENT) {
        *reason = "no such entry in the plugin's outbox";
        return 404;
    }
    if (rc < 0) {
        *reason = store_error(ob->store);
        return 500;
    }
    return 0;
}
