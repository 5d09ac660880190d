/* The $ke/ bodies (include/kedge/kebody.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/err.h"
#include "kedge/ke.h"
#include "kedge/kebody.h"

static const char *get_str(const struct kedge_jval *obj, const char *key)
{
    const struct kedge_jval *v = kedge_json_get(obj, key);

    return v && v->type == KEDGE_JSTR ? v->str : NULL;
}

static int64_t get_int(const struct kedge_jval *obj, const char *key, int64_t dflt)
{
    int64_t v = dflt;

    return kedge_json_int64(kedge_json_get(obj, key), &v) == 0 ? v : dflt;
}

static bool get_true(const struct kedge_jval *obj, const char *key)
{
    const struct kedge_jval *v = kedge_json_get(obj, key);

    return v && v->type == KEDGE_JBOOL && v->boolean;
}

static void kbool(struct kedge_jw *w, const char *key, bool v)
{
    kedge_jw_key(w, key);
    kedge_jw_bool(w, v);
}

/* ---- hello ----------------------------------------------------------------------------------- */

int kebody_hello_encode(struct kedge_buf *b, const struct kebody_hello *h)
{
    struct kedge_jw w;

    kedge_jw_init(&w, b);
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "node_name", h->node_name);
    kedge_jw_kint(&w, "version", h->version);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

int kebody_hello_decode(const char *p, size_t len, struct kedge_jdoc **doc,
                        struct kebody_hello *out)
{
    int rc = kedge_json_parse_object(p, len, doc);

    memset(out, 0, sizeof(*out));
    if (rc < 0)
        return rc;
    out->node_name = get_str(kedge_jdoc_root(*doc), "node_name");
    out->version = get_int(kedge_jdoc_root(*doc), "version", 0);
    return 0;
}

int kebody_hello_result_encode(struct kedge_buf *b, const struct kebody_hello_result *r)
{
    struct kedge_jw w;

    kedge_jw_init(&w, b);
    kedge_jw_obj_open(&w);
    kbool(&w, "accepted", r->accepted);
    kedge_jw_kstr(&w, "node_name", r->node_name);
    if (r->accepted) {
        kedge_jw_kint(&w, "outbox_depth", r->outbox_depth);
        if (r->last_seq >= 0)
            kedge_jw_kint(&w, "last_seq", r->last_seq);
    } else {
        kedge_jw_kstr(&w, "reason", r->reason ? r->reason : "");
    }
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

int kebody_hello_result_decode(const char *p, size_t len, struct kedge_jdoc **doc,
                               struct kebody_hello_result *out)
{
    const struct kedge_jval *root;
    int rc = kedge_json_parse_object(p, len, doc);

    memset(out, 0, sizeof(*out));
    out->last_seq = -1;
    if (rc < 0)
        return rc;
    root = kedge_jdoc_root(*doc);
    out->accepted = get_true(root, "accepted");
    out->node_name = get_str(root, "node_name");
    out->outbox_depth = get_int(root, "outbox_depth", 0);
    out->last_seq = get_int(root, "last_seq", -1);
    if (out->last_seq < 0)
        out->last_seq = -1;
    out->reason = get_str(root, "reason");
    return 0;
}

/* ---- ack ------------------------------------------------------------------------------------- */

void kebody_ack_topic(char out[KEBODY_ACK_TOPIC_MAX], int64_t seq)
{
    (void)snprintf(out, KEBODY_ACK_TOPIC_MAX, KE_ACK_PREFIX "%" PRId64, seq);
}

int kebody_ack_parse(const char *topic, int64_t *seq)
{
    const char *rest;
    char *end;
    long long v;

    if (strncmp(topic, KE_ACK_PREFIX, strlen(KE_ACK_PREFIX)) != 0)
        return KEDGE_ESCHEMA;
    rest = topic + strlen(KE_ACK_PREFIX);
    errno = 0;
    v = strtoll(rest, &end, 10);
    if (!*rest || *end || v <= 0)
        return KEDGE_ESCHEMA;
    *seq = v;
    return 0;
}

/* ---- result envelopes ------------------------------------------------------------------------ */

void kebody_result_write(struct kedge_jw *w, const struct kebody_result *r)
{
    kedge_jw_obj_open(w);
    kbool(w, "ok", r->ok);
    if (!r->ok && r->code)
        kedge_jw_kint(w, "code", r->code);
    if (!r->ok && r->reason)
        kedge_jw_kstr(w, "reason", r->reason);
    kedge_jw_obj_close(w);
}

void kebody_error_write(struct kedge_jw *w, int64_t code, const char *reason)
{
    kedge_jw_obj_open(w);
    kedge_jw_kint(w, "code", code);
    kedge_jw_kstr(w, "reason", reason);
    kedge_jw_obj_close(w);
}

void kebody_meta_ok_open(struct kedge_jw *w, const char *source)
{
    kedge_jw_obj_open(w);
    kbool(w, "ok", true);
    kedge_jw_kstr(w, "source", source);
}

void kebody_result_read(const struct kedge_jval *root, struct kebody_result *out)
{
    out->ok = get_true(root, "ok");
    out->code = get_int(root, "code", 0);
    out->reason = get_str(root, "reason");
}

int kebody_result_decode(const char *p, size_t len, struct kedge_jdoc **doc,
                         struct kebody_result *out)
{
    int rc = kedge_json_parse_object(p, len, doc);

    memset(out, 0, sizeof(*out));
    if (rc < 0)
        return rc;
    kebody_result_read(kedge_jdoc_root(*doc), out);
    return 0;
}

/* ---- status ---------------------------------------------------------------------------------- */

/* The numbers of struct kebody_status in wire order, so encode and decode share one list. */
#define STATUS_NUMBERS(X)                                                                          \
    X(last_keepalive_ms)                                                                           \
    X(last_delivery_ms)                                                                            \
    X(outbox_depth)                                                                                \
    X(outbox_oldest_ms)                                                                            \
    X(outbox_set_aside)                                                                            \
    X(cert_not_after_s)                                                                            \
    X(upload_bytes)                                                                                \
    X(upload_budget_bytes)                                                                         \
    X(uploads_dropped)                                                                             \
    X(uploads_refused)                                                                             \
    X(dead_letters)                                                                                \
    X(coalesced)                                                                                   \
    X(stale_dropped)                                                                               \
    X(refusals)                                                                                    \
    X(dropped_by_operator)

int kebody_status_encode(struct kedge_buf *b, const struct kebody_status *s)
{
    struct kedge_jw w;

    kedge_jw_init(&w, b);
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "link", s->connected ? "connected" : "disconnected");
    /* a count, never near 2^63: written as the signed number Go would read back */
    kedge_jw_kint(&w, "reconnects", (int64_t)s->reconnects);
#define X(f) kedge_jw_kint(&w, #f, s->f);
    STATUS_NUMBERS(X)
#undef X
    kbool(&w, "probing", s->probing);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

int kebody_status_decode(const char *p, size_t len, struct kebody_status *out)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root;
    const char *link;
    int rc = kedge_json_parse_object(p, len, &doc);

    memset(out, 0, sizeof(*out));
    if (rc == 0) {
        root = kedge_jdoc_root(doc);
        link = get_str(root, "link");
        out->connected = link && !strcmp(link, "connected");
        out->reconnects = (uint64_t)get_int(root, "reconnects", 0);
#define X(f) out->f = get_int(root, #f, 0);
        STATUS_NUMBERS(X)
#undef X
        out->probing = get_true(root, "probing");
    }
    kedge_jdoc_free(doc);
    return rc;
}

/* ---- requests -------------------------------------------------------------------------------- */

static void knum(struct kedge_jw *w, const char *key, enum kebody_num has, int64_t v)
{
    if (has == KEBODY_INT)
        kedge_jw_kint(w, key, v);
}

int kebody_request_encode(struct kedge_buf *b, const struct kebody_request *r)
{
    struct kedge_jw w;

    kedge_jw_init(&w, b);
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "op", r->op);
    if (r->id_str) {
        kedge_jw_key(&w, "id");
        kedge_jw_strn(&w, r->id_str, r->id_len);
    }
    if (r->resource) {
        kedge_jw_key(&w, "resource");
        kedge_jw_strn(&w, r->resource, r->resource_len);
    }
    if (r->type) {
        kedge_jw_key(&w, "type");
        kedge_jw_strn(&w, r->type, r->type_len);
    }
    knum(&w, "seq", r->has_seq, r->seq);
    knum(&w, "id", r->has_id, r->id);
    knum(&w, "limit", r->has_limit, r->limit);
    knum(&w, "timeout_ms", r->has_timeout_ms, r->timeout_ms);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

static const struct kedge_jval *member(const struct kedge_jval *obj, const char *key, bool exact)
{
    return exact ? kedge_json_get_exact(obj, key, strlen(key)) : kedge_json_get(obj, key);
}

static enum kebody_num read_num(const struct kedge_jval *v, int64_t *out)
{
    if (kedge_json_is_null(v))
        return KEBODY_ABSENT;
    return kedge_json_int64(v, out) == 0 ? KEBODY_INT : KEBODY_WRONG;
}

static const char *read_str(const struct kedge_jval *v, size_t *len)
{
    if (!v || v->type != KEDGE_JSTR)
        return NULL;
    *len = v->len;
    return v->str;
}

int kebody_request_decode(const char *p, size_t len, bool exact_keys, struct kedge_jdoc **doc,
                          struct kebody_request *out)
{
    const struct kedge_jval *root, *id;
    size_t op_len;
    int rc = kedge_json_parse_object(p, len, doc);

    memset(out, 0, sizeof(*out));
    if (rc < 0)
        return rc;
    root = kedge_jdoc_root(*doc);
    out->op = read_str(member(root, "op", exact_keys), &op_len);
    id = member(root, "id", exact_keys);
    out->id_str = read_str(id, &out->id_len);
    out->has_id = read_num(id, &out->id);
    out->has_seq = read_num(member(root, "seq", exact_keys), &out->seq);
    out->has_limit = read_num(member(root, "limit", exact_keys), &out->limit);
    out->has_timeout_ms = read_num(member(root, "timeout_ms", exact_keys), &out->timeout_ms);
    out->resource = read_str(member(root, "resource", exact_keys), &out->resource_len);
    out->type = read_str(member(root, "type", exact_keys), &out->type_len);
    return 0;
}
