/* request.c: the *_CONNECT JSON and the query string (request.h). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "request.h"

/* A string member: "" when absent or null (Go's zero value), KEDGE_ESCHEMA when another type. */
static int str_member(const struct kedge_jval *obj, const char *name, const char **out)
{
    const struct kedge_jval *v = kedge_json_get(obj, name);

    *out = "";
    if (kedge_json_is_null(v))
        return 0;
    if (v->type != KEDGE_JSTR)
        return KEDGE_ESCHEMA;
    *out = v->str;
    return 0;
}

static int read_url(const struct kedge_jval *u, struct stream_request *r)
{
    int rc = kedge_json_optional_object(u, KEDGE_ESCHEMA);

    if (rc <= 0)
        return rc; /* absent: an empty URL, which no handler serves */
    if (str_member(u, "Scheme", &r->scheme) || str_member(u, "Host", &r->host) ||
        str_member(u, "Path", &r->path) || str_member(u, "RawQuery", &r->raw_query))
        return KEDGE_ESCHEMA;
    return 0;
}

/* http.Header: an object whose members are arrays of strings (or null). */
static int read_header(const struct kedge_jval *h, struct stream_request *r)
{
    const struct kedge_jval *m, *e;
    int rc = kedge_json_optional_object(h, KEDGE_ESCHEMA);

    if (rc <= 0)
        return rc;
    for (m = h->child; m; m = m->next) {
        if (m->type == KEDGE_JNULL)
            continue;
        if (m->type != KEDGE_JARR)
            return KEDGE_ESCHEMA;
        for (e = m->child; e; e = e->next)
            if (e->type != KEDGE_JSTR)
                return KEDGE_ESCHEMA;
    }
    r->header = h;
    return 0;
}

static int read_request(const struct kedge_jval *root, struct stream_request *r)
{
    const struct kedge_jval *id = kedge_json_get(root, "MessID");
    int64_t v = 0;

    if (!kedge_json_is_null(id) && (kedge_json_int64(id, &v) < 0 || v < 0))
        return KEDGE_ESCHEMA; /* a uint64 in Go; ours never exceed int64 */
    r->mess_id = (uint64_t)v;
    if (str_member(root, "method", &r->method) < 0)
        return KEDGE_ESCHEMA;
    if (!*r->method)
        r->method = "GET";
    if (read_url(kedge_json_get(root, "url"), r) < 0 ||
        read_header(kedge_json_get(root, "header"), r) < 0)
        return KEDGE_ESCHEMA;
    return 0;
}

int stream_request_parse(const char *b, size_t n, struct stream_request *r)
{
    int rc;

    memset(r, 0, sizeof(*r));
    r->method = r->scheme = r->host = r->path = r->raw_query = "";
    rc = kedge_json_parse_object(b, n, &r->doc);
    if (rc == 0)
        rc = read_request(kedge_jdoc_root(r->doc), r);
    if (rc < 0)
        stream_request_cleanup(r);
    return rc;
}

void stream_request_cleanup(struct stream_request *r)
{
    kedge_jdoc_free(r->doc);
    memset(r, 0, sizeof(*r));
}

static const struct kedge_jval *header_member(const struct stream_request *r, const char *name)
{
    const struct kedge_jval *m;

    for (m = r->header ? r->header->child : NULL; m; m = m->next)
        if (m->type == KEDGE_JARR && m->child && strlen(name) == m->key_len &&
            !strncasecmp(m->key, name, m->key_len))
            return m;
    return NULL;
}

const char *stream_request_header(const struct stream_request *r, const char *name)
{
    const struct kedge_jval *v = header_member(r, name);

    return v ? v->child->str : NULL;
}

int stream_request_header_join(const struct stream_request *r, const char *name,
                               struct kedge_buf *out)
{
    const struct kedge_jval *v = header_member(r, name), *e;

    kedge_buf_reset(out);
    if (!v)
        return -ENOENT;
    for (e = v->child; e; e = e->next)
        if ((e != v->child && kedge_buf_puts(out, ", ") < 0) || kedge_buf_puts(out, e->str) < 0)
            return -ENOMEM;
    return 0;
}

/* ---- query ------------------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Go's QueryUnescape into a fresh string: 0, KEDGE_EPARSE (bad escape) or -ENOMEM. */
static int unescape(const char *s, size_t n, char **out, size_t *out_len)
{
    char *d = kedge_malloc(n + 1);
    size_t i, j = 0;

    if (!d)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                goto bad;
            d[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            d[j++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    d[j] = '\0';
    *out = d;
    *out_len = j;
    return 0;
bad:
    kedge_free(d);
    return KEDGE_EPARSE;
}

static int add_pair(struct stream_query *q, const char *p, size_t n)
{
    const char *eq = memchr(p, '=', n);
    size_t kn = eq ? (size_t)(eq - p) : n;
    struct stream_query_kv kv = {0};
    int rc;

    rc = unescape(p, kn, &kv.key, &kv.key_len);
    if (rc == 0)
        rc = unescape(eq ? eq + 1 : "", eq ? n - kn - 1 : 0, &kv.value, &kv.value_len);
    if (rc == 0 && q->n == q->cap && kedge_array_grow(&q->kv, &q->cap, q->n, sizeof(kv), 8))
        rc = -ENOMEM;
    if (rc < 0) {
        kedge_free(kv.key);
        kedge_free(kv.value);
        if (rc == KEDGE_EPARSE)
            q->had_error = true;
        return rc == KEDGE_EPARSE ? 0 : rc;
    }
    q->kv[q->n++] = kv;
    return 0;
}

int stream_query_parse(const char *raw, size_t len, struct stream_query *q)
{
    size_t i = 0;

    memset(q, 0, sizeof(*q));
    while (i < len) {
        const char *p = raw + i, *amp = memchr(p, '&', len - i);
        size_t n = amp ? (size_t)(amp - p) : len - i;
        i += n + 1;
        if (memchr(p, ';', n)) {
            q->had_error = true; /* Go 1.17+: "invalid semicolon separator in query" */
            continue;
        }
        if (n && add_pair(q, p, n) < 0) {
            stream_query_cleanup(q);
            return -ENOMEM;
        }
    }
    return 0;
}

void stream_query_cleanup(struct stream_query *q)
{
    size_t i;

    for (i = 0; i < q->n; i++) {
        kedge_free(q->kv[i].key);
        kedge_free(q->kv[i].value);
    }
    kedge_free(q->kv);
    memset(q, 0, sizeof(*q));
}

static bool key_is(const struct stream_query_kv *kv, const char *key)
{
    size_t n = strlen(key);

    return kv->key_len == n && !memcmp(kv->key, key, n);
}

const struct stream_query_kv *stream_query_nth(const struct stream_query *q, const char *key,
                                               size_t i)
{
    size_t k;

    for (k = 0; k < q->n; k++)
        if (key_is(&q->kv[k], key) && i-- == 0)
            return &q->kv[k];
    return NULL;
}

const struct stream_query_kv *stream_query_get(const struct stream_query *q, const char *key)
{
    return stream_query_nth(q, key, 0);
}

size_t stream_query_count(const struct stream_query *q, const char *key)
{
    size_t k, c = 0;

    for (k = 0; k < q->n; k++)
        c += key_is(&q->kv[k], key);
    return c;
}
