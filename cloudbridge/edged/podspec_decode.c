/* podspec_decode.c: the typed getters of the pod parser, as Go's decoder reads a struct
 * field (member names match case-insensitively, the last duplicate wins, null is the zero
 * value), with the field path of every error; and the canonical hash of a JSON value (the
 * container hash).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kedge/alloc.h"
#include "kedge/json.h"
#include "kedge/err.h"
#include "kedge/util.h"
#include "podspec_decode.h"

/* ==== errors with a field path =========================================================== */

static size_t path_push(struct parse_ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static size_t path_push(struct parse_ctx *x, const char *fmt, ...)
{
    size_t old = x->plen, room = sizeof(x->path) - x->plen;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(x->path + x->plen, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        x->plen += (size_t)n < room ? (size_t)n : room - 1;
    return old;
}

size_t ps__path_key(struct parse_ctx *x, const char *key)
{
    return path_push(x, "%s%s", x->plen ? "." : "", key);
}

static size_t path_idx(struct parse_ctx *x, size_t i)
{
    return path_push(x, "[%zu]", i);
}

void ps__path_pop(struct parse_ctx *x, size_t old)
{
    x->plen = old;
    x->path[old] = '\0';
}

static int vfail(struct parse_ctx *x, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static int vfail(struct parse_ctx *x, const char *fmt, va_list ap)
{
    char msg[384];

    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    kedge_set_why(x->why, x->why_len, "%s: %s", x->plen ? x->path : "pod", msg);
    return KEDGE_ESCHEMA;
}

int ps__fail(struct parse_ctx *x, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vfail(x, fmt, ap);
    va_end(ap);
    return rc;
}

int ps__fail_at(struct parse_ctx *x, const char *key, const char *fmt, ...)
{
    size_t old = ps__path_key(x, key);
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vfail(x, fmt, ap);
    va_end(ap);
    ps__path_pop(x, old);
    return rc;
}

const char *ps__jtype_name(const struct kedge_jval *v)
{
    switch (v->type) {
    case KEDGE_JNULL:
        return "null";
    case KEDGE_JBOOL:
        return "a boolean";
    case KEDGE_JNUM:
        return "a number";
    case KEDGE_JSTR:
        return "a string";
    case KEDGE_JOBJ:
        return "an object";
    case KEDGE_JARR:
        return "an array";
    }
    return "unknown";
}

/* ==== typed getters (Go's decoding into a struct field) ================================== */

/* obj[key] as Go finds it, NULL when absent or null (the field keeps its zero value). */
const struct kedge_jval *ps__member(const struct kedge_jval *obj, const char *key)
{
    const struct kedge_jval *v = kedge_json_get(obj, key);

    return kedge_json_is_null(v) ? NULL : v;
}

/* A copy of string v; key names it in the error (NULL: the path already does). */
static int dup_jstr(struct parse_ctx *x, const char *key, const struct kedge_jval *v, char **out)
{
    size_t old = key ? ps__path_key(x, key) : x->plen;
    int rc = 0;

    if (v->type != KEDGE_JSTR)
        rc = ps__fail(x, "must be a string, not %s", ps__jtype_name(v));
    else if (memchr(v->str, '\0', v->len))
        rc = ps__fail(x, "must not contain a NUL character");
    else if (!(*out = kedge_strndup(v->str, v->len)))
        rc = -ENOMEM;
    ps__path_pop(x, old);
    return rc;
}

int ps__get_str(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, char **out)
{
    const struct kedge_jval *v = ps__member(obj, key);

    return v ? dup_jstr(x, key, v, out) : 0;
}

int ps__get_opt_str(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, char **out)
{
    int rc = ps__get_str(x, obj, key, out);

    if (rc == 0 && *out && !**out) {
        kedge_free(*out);
        *out = NULL;
    }
    return rc;
}

int ps__get_str_or(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
                   const char *dflt, char **out)
{
    int rc = ps__get_str(x, obj, key, out);

    if (rc == 0 && (!*out || !**out)) {
        kedge_free(*out);
        if (!(*out = kedge_strdup(dflt)))
            rc = -ENOMEM;
    }
    return rc;
}

int ps__required(struct parse_ctx *x, const char *key, const char *s)
{
    return s && *s ? 0 : ps__fail_at(x, key, "Required value");
}

int ps__want_object(struct parse_ctx *x, const struct kedge_jval *v)
{
    return v->type == KEDGE_JOBJ ? 0 : ps__fail(x, "must be an object, not %s", ps__jtype_name(v));
}

int ps__get_bool(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, bool *out)
{
    const struct kedge_jval *v = ps__member(obj, key);

    if (!v)
        return 0;
    if (v->type != KEDGE_JBOOL)
        return ps__fail_at(x, key, "must be a boolean, not %s", ps__jtype_name(v));
    *out = v->boolean;
    return 0;
}

/* An integer in [min, max]; absent or null leaves *out. */
int ps__get_int(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, int64_t min,
                int64_t max, int64_t *out)
{
    const struct kedge_jval *v = ps__member(obj, key);
    int64_t n;

    if (!v)
        return 0;
    if (v->type != KEDGE_JNUM)
        return ps__fail_at(x, key, "must be an integer, not %s", ps__jtype_name(v));
    if (kedge_json_int64(v, &n) < 0)
        return ps__fail_at(x, key, "must be an integer, not %.*s", (int)(v->len > 40 ? 40 : v->len),
                           v->str);
    if (n < min || n > max) {
        if (n > max && max == INT32_MAX) /* Go cannot put it in the int32 field */
            return ps__fail_at(x, key, "Invalid value: %" PRId64 ": must be no more than %" PRId64,
                               n, max);
        if (max == INT32_MAX || max == INT64_MAX)
            return ps__fail_at(
                x, key, "Invalid value: %" PRId64 ": must be greater than or equal to %" PRId64, n,
                min);
        return ps__fail_at(x, key,
                           "Invalid value: %" PRId64 ": must be between %" PRId64 " and %" PRId64
                           ", inclusive",
                           n, min, max);
    }
    *out = n;
    return 0;
}

int ps__get_mode(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, int *mode)
{
    const struct kedge_jval *v = ps__member(obj, key);
    int64_t n;

    if (!v)
        return 0;
    if (v->type != KEDGE_JNUM || kedge_json_int64(v, &n) < 0)
        return ps__fail_at(x, key, "must be an integer, not %s", ps__jtype_name(v));
    if (n < 0 || n > 0777)
        return ps__fail_at(x, key,
                           "Invalid value: %" PRId64
                           ": must be a number between 0 and 0777 (octal), both inclusive",
                           n);
    *mode = (int)n;
    return 0;
}

static int get_field(struct parse_ctx *x, const struct kedge_jval *obj, const struct ps_field *f)
{
    switch (f->kind) {
    case PS_STR:
    case PS_REQUIRED:
        return f->dflt ? ps__get_str_or(x, obj, f->key, f->dflt, f->out)
                       : ps__get_str(x, obj, f->key, f->out);
    case PS_OPT_STR:
        return ps__get_opt_str(x, obj, f->key, f->out);
    case PS_BOOL:
        return ps__get_bool(x, obj, f->key, f->out);
    case PS_MODE:
        return ps__get_mode(x, obj, f->key, f->out);
    }
    return KEDGE_ESCHEMA;
}

int ps__get_fields(struct parse_ctx *x, const struct kedge_jval *obj, const struct ps_field *f,
                   size_t n)
{
    size_t i;
    int rc = ps__want_object(x, obj);

    for (i = 0; rc == 0 && i < n; i++)
        rc = get_field(x, obj, &f[i]);
    for (i = 0; rc == 0 && i < n; i++)
        if (f[i].kind == PS_REQUIRED)
            rc = ps__required(x, f[i].key, *(char **)f[i].out);
    return rc;
}

static int get_typed(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
                     enum kedge_jtype t, const struct kedge_jval **out)
{
    const struct kedge_jval *v = ps__member(obj, key);

    *out = NULL;
    if (!v)
        return 0;
    if (v->type != t)
        return ps__fail_at(x, key, "must be %s, not %s", t == KEDGE_JOBJ ? "an object" : "an array",
                           ps__jtype_name(v));
    *out = v;
    return 0;
}

int ps__get_obj(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
                const struct kedge_jval **out)
{
    return get_typed(x, obj, key, KEDGE_JOBJ, out);
}

/* An array of at most max elements; *n its length. */
static int get_arr(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, size_t max,
                   const struct kedge_jval **out)
{
    int rc = get_typed(x, obj, key, KEDGE_JARR, out);

    if (rc == 0 && *out && (*out)->n > max) {
        *out = NULL;
        return ps__fail_at(x, key, "Too many: must have at most %zu items", max);
    }
    return rc;
}

/* The array member `key` of obj (at most max items) into a fresh array of elem_size elements,
 * each parsed by fn with the path at key[i]. out: the address of the caller's array pointer
 * (any element type; left NULL when the list is absent or empty), set before the elements are
 * parsed so that fn can see the ones before it; *n likewise. On failure both still describe
 * what was allocated, so the caller's cleanup frees it. */
int ps__parse_list(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, size_t max,
                   size_t elem_size, void *out, size_t *n, elem_fn fn, void *ctx)
{
    const struct kedge_jval *arr, *e;
    size_t i = 0, old;
    char *elems;
    int rc = get_arr(x, obj, key, max, &arr);

    if (rc < 0 || !arr || !arr->n)
        return rc;
    elems = kedge_calloc(arr->n, elem_size);
    if (!elems)
        return -ENOMEM;
    memcpy(out, &elems, sizeof(elems)); /* a T * whatever T is: no cast through void ** */
    *n = arr->n;
    old = ps__path_key(x, key);
    for (e = arr->child; e && rc == 0; e = e->next, i++) {
        size_t o = path_idx(x, i);
        rc = fn(x, e, elems + i * elem_size, i, ctx);
        ps__path_pop(x, o);
    }
    ps__path_pop(x, old);
    return rc;
}

static int parse_str_elem(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                          void *ctx)
{
    char **out = elem;

    (void)i;
    (void)ctx;
    if (e->type == KEDGE_JNULL)
        return (*out = kedge_strdup("")) ? 0 : -ENOMEM;
    return dup_jstr(x, NULL, e, out);
}

int ps__get_strv(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, char ***out,
                 size_t *n)
{
    return ps__parse_list(x, obj, key, MAX_ITEMS, sizeof(char *), out, n, parse_str_elem, NULL);
}

/* ==== object members as Go's map decoding sees them ====================================== */

struct mem_ref {
    const struct kedge_jval *v;
    size_t pos;
};

static int mem_cmp(const void *pa, const void *pb)
{
    const struct mem_ref *a = pa, *b = pb;
    size_t n = a->v->key_len < b->v->key_len ? a->v->key_len : b->v->key_len;
    int c = memcmp(a->v->key, b->v->key, n);

    if (c)
        return c;
    if (a->v->key_len != b->v->key_len)
        return a->v->key_len < b->v->key_len ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* The members of obj sorted by key (bytes), one per key: the last one, as Go's decoder keeps.
 * *out: kedge_malloc'd (NULL when obj has no members). Returns 0 or -ENOMEM. */
int ps__sorted_members(const struct kedge_jval *obj, const struct kedge_jval ***out, size_t *n)
{
    struct mem_ref *refs;
    const struct kedge_jval *m, **list;
    size_t i, k = 0;

    *out = NULL;
    *n = 0;
    if (!obj->n)
        return 0;
    refs = kedge_calloc(obj->n, sizeof(*refs));
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, as intended */
    list = kedge_calloc(obj->n, sizeof(*list));
    if (!refs || !list) {
        kedge_free(refs);
        kedge_free(list);
        return -ENOMEM;
    }
    for (m = obj->child, i = 0; m; m = m->next, i++) {
        refs[i].v = m;
        refs[i].pos = i;
    }
    qsort(refs, obj->n, sizeof(*refs), mem_cmp);
    for (i = 0; i < obj->n; i++) {
        bool last = i + 1 == obj->n || refs[i + 1].v->key_len != refs[i].v->key_len ||
                    memcmp(refs[i + 1].v->key, refs[i].v->key, refs[i].v->key_len) != 0;
        if (last)
            list[k++] = refs[i].v;
    }
    kedge_free(refs);
    *out = list;
    *n = k;
    return 0;
}

/* A map[string]string (labels, annotations), sorted by key. */
const struct kedge_jval *ps__one_of(const struct kedge_jval *obj, const char *const *names,
                                    size_t n, size_t *count, size_t *which)
{
    const struct kedge_jval *found = NULL, *m;
    size_t i;

    *count = 0;
    *which = 0;
    for (i = 0; i < n; i++)
        if ((m = ps__member(obj, names[i]))) {
            ++*count;
            found = m;
            *which = i;
        }
    return found;
}

int ps__get_members(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
                    const struct kedge_jval ***mems, size_t *n)
{
    const struct kedge_jval *map;
    int rc = ps__get_obj(x, obj, key, &map);

    *mems = NULL;
    *n = 0;
    if (rc < 0 || !map)
        return rc;
    if (map->n > MAX_ITEMS)
        return ps__fail_at(x, key, "Too many: must have at most %d items", MAX_ITEMS);
    return ps__sorted_members(map, mems, n);
}

int ps__get_map(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
                struct pod_kv **out, size_t *n)
{
    const struct kedge_jval **mems;
    size_t i, nm, old;
    int rc = ps__get_members(x, obj, key, &mems, &nm);

    if (rc < 0 || !nm)
        return rc;
    *out = kedge_calloc(nm, sizeof(**out));
    if (!*out) {
        kedge_free(mems);
        return -ENOMEM;
    }
    *n = nm;
    old = ps__path_key(x, key);
    for (i = 0; i < nm && rc == 0; i++) {
        const struct kedge_jval *m = mems[i];
        size_t o = path_push(x, "[%.*s]", (int)(m->key_len > 64 ? 64 : m->key_len), m->key);
        if (memchr(m->key, '\0', m->key_len))
            rc = ps__fail(x, "the key must not contain a NUL character");
        else if (!((*out)[i].name = kedge_strndup(m->key, m->key_len)))
            rc = -ENOMEM;
        else if (m->type == KEDGE_JNULL)
            rc = ((*out)[i].value = kedge_strdup("")) ? 0 : -ENOMEM;
        else
            rc = dup_jstr(x, NULL, m, &(*out)[i].value);
        ps__path_pop(x, o);
    }
    ps__path_pop(x, old);
    kedge_free(mems);
    return rc;
}

/* ==== the container hash ================================================================= */

/* v with every object's members sorted by key (one per key, the last) and no whitespace. */
static int canon(struct kedge_buf *b, const struct kedge_jval *v)
{
    const struct kedge_jval *c, **mems;
    size_t i, n;
    int rc = 0;

    switch (v->type) {
    case KEDGE_JNULL:
        return kedge_buf_puts(b, "null");
    case KEDGE_JBOOL:
        return kedge_buf_puts(b, v->boolean ? "true" : "false");
    case KEDGE_JNUM:
        return kedge_buf_append(b, v->str, v->len);
    case KEDGE_JSTR:
        return kedge_json_escape(b, v->str, v->len);
    case KEDGE_JARR:
        rc = kedge_buf_putc(b, '[');
        for (c = v->child; c && rc == 0; c = c->next) {
            if (c != v->child)
                rc = kedge_buf_putc(b, ',');
            if (rc == 0)
                rc = canon(b, c);
        }
        return rc ? rc : kedge_buf_putc(b, ']');
    case KEDGE_JOBJ:
        rc = ps__sorted_members(v, &mems, &n);
        if (rc == 0)
            rc = kedge_buf_putc(b, '{');
        for (i = 0; i < n && rc == 0; i++) {
            if (i)
                rc = kedge_buf_putc(b, ',');
            if (rc == 0)
                rc = kedge_json_escape(b, mems[i]->key, mems[i]->key_len);
            if (rc == 0)
                rc = kedge_buf_putc(b, ':');
            if (rc == 0)
                rc = canon(b, mems[i]);
        }
        kedge_free(mems);
        return rc ? rc : kedge_buf_putc(b, '}');
    }
    return 0;
}

uint32_t ps__fnv1a(const void *p, size_t n, uint32_t h)
{
    const unsigned char *s = p;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= s[i];
        h *= 16777619u;
    }
    return h;
}

int ps__container_hash(const struct kedge_jval *v, uint32_t *out)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    int rc = canon(&b, v);

    if (rc == 0)
        *out = ps__fnv1a(b.data, b.len, FNV_BASIS);
    kedge_buf_cleanup(&b);
    return rc;
}
