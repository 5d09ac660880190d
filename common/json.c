/* Go-compatible JSON writer and a yajl-driven tree parser (include/kedge/json.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"

/* ---- writer ---------------------------------------------------------------------------- */

void kedge_jw_init(struct kedge_jw *w, struct kedge_buf *out)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
}

static void put(struct kedge_jw *w, const char *s, size_t n)
{
    if (!w->err && kedge_buf_append(w->out, s, n) < 0)
        w->err = -ENOMEM;
}

/* Called before every value and every key: the comma between siblings. */
static void before_item(struct kedge_jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->need_comma[w->depth])
        put(w, ",", 1);
    w->need_comma[w->depth] = true;
}

static void open_nested(struct kedge_jw *w, char c)
{
    before_item(w);
    put(w, &c, 1);
    if (w->depth >= KEDGE_JSON_MAX_DEPTH) {
        if (!w->err)
            w->err = -EINVAL;
        return;
    }
    w->need_comma[++w->depth] = false;
}

static void close_nested(struct kedge_jw *w, char c)
{
    put(w, &c, 1);
    if (w->depth > 0)
        w->depth--;
    else if (!w->err)
        w->err = -EINVAL;
}

void kedge_jw_obj_open(struct kedge_jw *w)
{
    open_nested(w, '{');
}

void kedge_jw_obj_close(struct kedge_jw *w)
{
    close_nested(w, '}');
}

void kedge_jw_arr_open(struct kedge_jw *w)
{
    open_nested(w, '[');
}

void kedge_jw_arr_close(struct kedge_jw *w)
{
    close_nested(w, ']');
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid, as Go's utf8.DecodeRune:
 * no overlongs, no surrogates, nothing above U+10FFFF. *cp gets the code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf && n >= 2 && (s[1] & 0xc0) == 0x80) {
        *cp = ((c & 0x1fu) << 6) | (s[1] & 0x3fu);
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef && n >= 3 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) {
        unsigned v = ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
        if (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))
            return 0;
        *cp = v;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4 && n >= 4 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 &&
        (s[3] & 0xc0) == 0x80) {
        unsigned v = ((c & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) |
                     (s[3] & 0x3fu);
        if (v < 0x10000 || v > 0x10ffff)
            return 0;
        *cp = v;
        return 4;
    }
    return 0;
}

int kedge_json_escape(struct kedge_buf *b, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, start = 0;
    int rc = kedge_buf_putc(b, '"');

    while (rc == 0 && i < len) {
        unsigned char c = s[i];
        char esc[8];
        size_t esc_len = 0, adv = 1;
        unsigned cp;

        if (c >= 0x80) {
            adv = utf8_seq(s + i, len - i, &cp);
            if (adv == 0) {
                memcpy(esc, "\\ufffd", 6);
                esc_len = 6;
                adv = 1;
            } else if (cp == 0x2028 || cp == 0x2029) {
                memcpy(esc, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
                esc_len = 6;
            }
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            esc_len = 2;
        } else if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            esc_len = 2;
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            esc_len = 6;
        }
        if (esc_len) {
            rc = kedge_buf_append(b, str + start, i - start);
            if (rc == 0)
                rc = kedge_buf_append(b, esc, esc_len);
            start = i + adv;
        }
        i += adv;
    }
    if (rc == 0)
        rc = kedge_buf_append(b, str + start, len - start);
    if (rc == 0)
        rc = kedge_buf_putc(b, '"');
    return rc;
}

void kedge_jw_key(struct kedge_jw *w, const char *key)
{
    before_item(w);
    if (!w->err && kedge_json_escape(w->out, key, strlen(key)) < 0)
        w->err = -ENOMEM;
    put(w, ":", 1);
    w->after_key = true;
}

void kedge_jw_strn(struct kedge_jw *w, const char *s, size_t len)
{
    before_item(w);
    if (!w->err && kedge_json_escape(w->out, s, len) < 0)
        w->err = -ENOMEM;
}

void kedge_jw_str(struct kedge_jw *w, const char *s)
{
    kedge_jw_strn(w, s ? s : "", s ? strlen(s) : 0);
}

void kedge_jw_int(struct kedge_jw *w, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);

    before_item(w);
    put(w, tmp, (size_t)n);
}

void kedge_jw_bool(struct kedge_jw *w, bool v)
{
    before_item(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void kedge_jw_null(struct kedge_jw *w)
{
    before_item(w);
    put(w, "null", 4);
}

void kedge_jw_raw(struct kedge_jw *w, const char *json, size_t len)
{
    before_item(w);
    put(w, json, len);
}

void kedge_jw_kstr(struct kedge_jw *w, const char *key, const char *s)
{
    kedge_jw_key(w, key);
    kedge_jw_str(w, s);
}

void kedge_jw_kint(struct kedge_jw *w, const char *key, int64_t v)
{
    kedge_jw_key(w, key);
    kedge_jw_int(w, v);
}

int kedge_jw_finish(struct kedge_jw *w)
{
    if (!w->err && (w->depth != 0 || w->after_key))
        w->err = -EINVAL;
    return w->err;
}

/* ---- parser ---------------------------------------------------------------------------- */

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

/* One allocation yajl made: kept on a list so a failed parse can free them all. */
struct yajl_block {
    struct yajl_block *prev, *next;
    max_align_t data[];
};

struct kedge_jdoc {
    struct arena_block *blocks;
    struct kedge_jval *root;
    /* build state */
    struct kedge_jval *cur; /* open object/array */
    const char *pending_key;
    size_t pending_key_len;
    int depth;
    int err;
    const unsigned char *text; /* the input, for the raw text of string tokens */
    size_t text_len;
    yajl_handle h;
    struct yajl_block *yajl_blocks;
    jmp_buf *oom;
};

static void *arena_alloc(struct kedge_jdoc *d, size_t n)
{
    struct arena_block *b = d->blocks;
    size_t align = sizeof(max_align_t);

    n = (n + align - 1) / align * align;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 8192 ? n : 8192;
        b = kedge_malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->next = d->blocks;
        b->used = 0;
        b->cap = cap;
        d->blocks = b;
    }
    b->used += n;
    return (char *)b->data + b->used - n;
}

static const char *arena_str(struct kedge_jdoc *d, const unsigned char *s, size_t len)
{
    char *p = arena_alloc(d, len + 1);

    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* Attach a new value at the current position: as the root, an array element or the member
 * named by the pending key. */
static struct kedge_jval *add_value(struct kedge_jdoc *d, enum kedge_jtype type)
{
    struct kedge_jval *v = arena_alloc(d, sizeof(*v));

    if (!v) {
        d->err = -ENOMEM;
        return NULL;
    }
    memset(v, 0, sizeof(*v));
    v->type = type;
    if (!d->cur) {
        d->root = v;
        return v;
    }
    v->parent = d->cur;
    if (d->cur->type == KEDGE_JOBJ) {
        v->key = d->pending_key;
        v->key_len = d->pending_key_len;
    }
    if (d->cur->last)
        d->cur->last->next = v;
    else
        d->cur->child = v;
    d->cur->last = v;
    d->cur->n++;
    return v;
}

static int on_null(void *ctx)
{
    return add_value(ctx, KEDGE_JNULL) != NULL;
}

static int on_boolean(void *ctx, int b)
{
    struct kedge_jval *v = add_value(ctx, KEDGE_JBOOL);

    if (v)
        v->boolean = b != 0;
    return v != NULL;
}

static int set_text(struct kedge_jdoc *d, enum kedge_jtype t, const unsigned char *s, size_t len)
{
    struct kedge_jval *v = add_value(d, t);

    if (!v)
        return 0;
    v->str = arena_str(d, s, len);
    v->len = len;
    if (!v->str)
        d->err = -ENOMEM;
    return v->str != NULL;
}

static int on_number(void *ctx, const char *s, size_t len)
{
    return set_text(ctx, KEDGE_JNUM, (const unsigned char *)s, len);
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    return set_text(ctx, KEDGE_JSTR, s, len);
}

static int open_container(struct kedge_jdoc *d, enum kedge_jtype t)
{
    struct kedge_jval *v;

    if (++d->depth > KEDGE_JSON_MAX_NEST) {
        d->err = KEDGE_EPARSE;
        return 0;
    }
    v = add_value(d, t);
    if (!v)
        return 0;
    d->cur = v;
    return 1;
}

static int on_start_map(void *ctx)
{
    return open_container(ctx, KEDGE_JOBJ);
}

static int on_map_key(void *ctx, const unsigned char *s, size_t len)
{
    struct kedge_jdoc *d = ctx;

    d->pending_key = arena_str(d, s, len);
    d->pending_key_len = len;
    if (!d->pending_key)
        d->err = -ENOMEM;
    return d->pending_key != NULL;
}

static int on_end_container(void *ctx)
{
    struct kedge_jdoc *d = ctx;

    d->depth--;
    d->cur = d->cur->parent;
    return 1;
}

static int on_start_array(void *ctx)
{
    return open_container(ctx, KEDGE_JARR);
}

static const yajl_callbacks callbacks = {
    on_null,      on_boolean,       NULL,         NULL,          on_number,      on_string,
    on_start_map, on_map_key,       on_end_container, on_start_array, on_end_container,
};

static void *y_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return kedge_malloc(n);
}

static void *y_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return kedge_realloc(p, n);
}

static void y_free(void *ctx, void *p)
{
    (void)ctx;
    kedge_free(p);
}

void kedge_jdoc_free(struct kedge_jdoc *doc)
{
    struct arena_block *b, *next;

    if (!doc)
        return;
    for (b = doc->blocks; b; b = next) {
        next = b->next;
        kedge_free(b);
    }
    kedge_free(doc);
}

int kedge_json_parse(const char *buf, size_t len, struct kedge_jdoc **out)
{
    yajl_alloc_funcs af = {y_malloc, y_realloc, y_free, NULL};
    struct kedge_jdoc *d;
    yajl_handle h;
    yajl_status st;
    int rc = 0;

    *out = NULL;
    d = kedge_calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    h = yajl_alloc(&callbacks, &af, d);
    if (!h) {
        kedge_free(d);
        return -ENOMEM;
    }
    /* Go's decoder takes no comments and accepts invalid UTF-8 (replacing it on output). */
    yajl_config(h, yajl_allow_comments, 0);
    yajl_config(h, yajl_dont_validate_strings, 1);
    st = yajl_parse(h, (const unsigned char *)buf, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (st != yajl_status_ok || !d->root)
        rc = d->err ? d->err : KEDGE_EPARSE;
    yajl_free(h);
    if (rc < 0) {
        kedge_jdoc_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

const struct kedge_jval *kedge_jdoc_root(const struct kedge_jdoc *doc)
{
    return doc ? doc->root : NULL;
}

static int fold_eq(const char *a, size_t alen, const char *b)
{
    size_t i;

    for (i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (!y)
            return 0;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return 0;
    }
    return b[alen] == '\0';
}

const struct kedge_jval *kedge_json_get(const struct kedge_jval *obj, const char *name)
{
    const struct kedge_jval *v, *found = NULL;

    if (!obj || obj->type != KEDGE_JOBJ)
        return NULL;
    for (v = obj->child; v; v = v->next)
        if (fold_eq(v->key, v->key_len, name))
            found = v;
    return found;
}

const struct kedge_jval *kedge_json_get_exact(const struct kedge_jval *obj, const char *key,
                                              size_t key_len)
{
    const struct kedge_jval *v, *found = NULL;

    if (!obj || obj->type != KEDGE_JOBJ)
        return NULL;
    for (v = obj->child; v; v = v->next)
        if (v->key_len == key_len && memcmp(v->key, key, key_len) == 0)
            found = v;
    return found;
}

bool kedge_json_is_null(const struct kedge_jval *v)
{
    return !v || v->type == KEDGE_JNULL;
}

int kedge_json_int64(const struct kedge_jval *v, int64_t *out)
{
    const char *s;
    size_t i = 0;
    uint64_t acc = 0, limit;
    bool neg = false;

    if (kedge_json_is_null(v))
        return 0;
    if (v->type != KEDGE_JNUM)
        return KEDGE_ESCHEMA;
    s = v->str;
    if (s[0] == '-') {
        neg = true;
        i = 1;
    }
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (i >= v->len)
        return KEDGE_ESCHEMA;
    for (; i < v->len; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return KEDGE_ESCHEMA; /* 1.5, 1e3: Go refuses them for an int64 field */
        d = (unsigned)(s[i] - '0');
        if (acc > (limit - d) / 10)
            return KEDGE_ESCHEMA;
        acc = acc * 10 + d;
    }
    *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return 0;
}
