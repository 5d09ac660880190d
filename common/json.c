/* A yajl-driven tree parser that decodes as Go's encoding/json does (include/kedge/json.h);
 * the writer is json_write.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "json_int.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/util.h"

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

/* ---- strings as Go's decoder leaves them ---------------------------------------------- */

/* "\uXXXX" at s, or -1. */
static int hex4(const unsigned char *s, size_t n)
{
    int v = 0, i;

    if (n < 6 || s[0] != '\\' || s[1] != 'u')
        return -1;
    for (i = 2; i < 6; i++) {
        unsigned c = s[i] | 0x20u;
        if (s[i] >= '0' && s[i] <= '9')
            v = v * 16 + (s[i] - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (int)(c - 'a' + 10);
        else
            return -1;
    }
    return v;
}

/* The character behind \b, \n, ...; '"', '\\' and '/' stand for themselves. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return (char)c;
    }
}

/* UTF-8 of cp into out (NULL: length only). */
static size_t put_rune(char *out, unsigned cp)
{
    unsigned char b[4];
    size_t n;

    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (out)
        memcpy(out, b, n);
    return n;
}

/* encoding/json's unquote on s[0..n), the text between the quotes (yajl has checked its
 * syntax): escapes resolved, surrogate pairs joined, and whatever is not well-formed UTF-8
 * (raw bad bytes, lone or mismatched surrogates) replaced by U+FFFD. yajl's own decoding
 * differs on exactly those (a lone high surrogate becomes '?'), and event ids are echoed.
 * out NULL: only count. Returns the decoded length. */
static size_t go_unquote(const unsigned char *s, size_t n, char *out)
{
    size_t r = 0, w = 0, adv;
    unsigned cp;
    int hi, lo;

    while (r < n) {
        if (s[r] == '\\' && r + 1 < n && s[r + 1] != 'u') {
            if (out)
                out[w] = short_escape(s[r + 1]);
            w++;
            r += 2;
            continue;
        }
        if (s[r] == '\\') {
            hi = hex4(s + r, n - r);
            r += 6;
            cp = hi < 0 ? 0xfffd : (unsigned)hi;
            if (cp >= 0xd800 && cp < 0xe000) {
                lo = r <= n ? hex4(s + r, n - r) : -1;
                if (cp < 0xdc00 && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (unsigned)(lo - 0xdc00);
                    r += 6;
                } else {
                    cp = 0xfffd;
                }
            }
            w += put_rune(out ? out + w : NULL, cp);
            continue;
        }
        adv = kedge_utf8_seq(s + r, n - r, &cp);
        if (adv == 0) {
            w += put_rune(out ? out + w : NULL, 0xfffd);
            r++;
            continue;
        }
        if (out)
            memcpy(out + w, s + r, adv);
        w += adv;
        r += adv;
    }
    return w;
}

/* The raw text of the string token yajl has just reported: it ends right before
 * bytes_consumed, and opens at the last '"' before that which no backslash escapes. */
static int raw_string(const struct kedge_jdoc *d, const unsigned char **raw, size_t *len)
{
    size_t end = d->h ? yajl_get_bytes_consumed(d->h) : 0, i, bs;

    if (end < 2 || end > d->text_len || d->text[end - 1] != '"')
        return 0;
    for (i = end - 1; i-- > 0;) {
        if (d->text[i] != '"')
            continue;
        for (bs = 0; bs < i && d->text[i - 1 - bs] == '\\'; bs++)
            ;
        if (bs % 2 == 0) {
            *raw = d->text + i + 1;
            *len = end - 1 - (i + 1);
            return 1;
        }
    }
    return 0;
}

/* A string value or key as Go decodes it, copied into the arena; yajl's decoding s[0..len)
 * is the fallback should the raw token not be found. */
static const char *arena_go_str(struct kedge_jdoc *d, const unsigned char *s, size_t len,
                                size_t *out_len)
{
    const unsigned char *raw;
    size_t raw_len;
    char *p;

    if (!raw_string(d, &raw, &raw_len)) {
        *out_len = len;
        return arena_str(d, s, len);
    }
    *out_len = go_unquote(raw, raw_len, NULL);
    p = arena_alloc(d, *out_len + 1);
    if (!p)
        return NULL;
    (void)go_unquote(raw, raw_len, p);
    p[*out_len] = '\0';
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
    if (t == KEDGE_JSTR) {
        v->str = arena_go_str(d, s, len, &v->len);
    } else {
        v->str = arena_str(d, s, len);
        v->len = len;
    }
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

    d->pending_key = arena_go_str(d, s, len, &d->pending_key_len);
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
    on_null,        on_boolean,       NULL,
    NULL,           on_number,        on_string,
    on_start_map,   on_map_key,       on_end_container,
    on_start_array, on_end_container,
};

/* yajl 2.1 uses whatever its allocator returns without a NULL check (yajl_alloc itself,
 * yajl_buf.c, yajl_bytestack.h), so an allocation failure must never return into it: the
 * allocator jumps back to run_yajl instead, and the parse frees every block yajl held. */
static struct yajl_block *yajl_block_of(void *p)
{
    return kedge_container_of(p, struct yajl_block, data);
}

static void yajl_block_link(struct kedge_jdoc *d, struct yajl_block *b)
{
    b->prev = NULL;
    b->next = d->yajl_blocks;
    if (b->next)
        b->next->prev = b;
    d->yajl_blocks = b;
}

static void yajl_block_unlink(struct kedge_jdoc *d, struct yajl_block *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        d->yajl_blocks = b->next;
    if (b->next)
        b->next->prev = b->prev;
}

static _Noreturn void yajl_out_of_memory(struct kedge_jdoc *d)
{
    d->err = -ENOMEM;
    longjmp(*d->oom, 1);
}

static void *y_malloc(void *ctx, size_t n)
{
    struct kedge_jdoc *d = ctx;
    struct yajl_block *b = kedge_malloc(sizeof(*b) + n);

    if (!b)
        yajl_out_of_memory(d);
    yajl_block_link(d, b);
    return b->data;
}

static void *y_realloc(void *ctx, void *p, size_t n)
{
    struct kedge_jdoc *d = ctx;
    struct yajl_block *b, *nb;

    if (!p)
        return y_malloc(ctx, n);
    b = yajl_block_of(p);
    yajl_block_unlink(d, b);
    nb = kedge_realloc(b, sizeof(*b) + n);
    if (!nb) {
        yajl_block_link(d, b); /* still valid, still to be freed */
        yajl_out_of_memory(d);
    }
    yajl_block_link(d, nb);
    return nb->data;
}

static void y_free(void *ctx, void *p)
{
    struct yajl_block *b;

    if (!p)
        return;
    b = yajl_block_of(p);
    yajl_block_unlink(ctx, b);
    kedge_free(b);
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

/* The yajl part of a parse. Returns 0 or KEDGE_EPARSE / -ENOMEM; on a jump back from the
 * allocator yajl's handle is abandoned and its blocks freed. */
static int run_yajl(struct kedge_jdoc *d, const char *buf, size_t len)
{
    yajl_alloc_funcs af = {y_malloc, y_realloc, y_free, d};
    jmp_buf oom;
    yajl_status st;

    d->oom = &oom;
    if (setjmp(oom)) {
        while (d->yajl_blocks) {
            struct yajl_block *b = d->yajl_blocks;
            d->yajl_blocks = b->next;
            kedge_free(b);
        }
        d->h = NULL;
        return -ENOMEM;
    }
    d->h = yajl_alloc(&callbacks, &af, d);
    if (!d->h)
        return -ENOMEM;
    /* Go's decoder takes no comments and accepts invalid UTF-8 (replacing it, see go_unquote). */
    yajl_config(d->h, yajl_allow_comments, 0);
    yajl_config(d->h, yajl_dont_validate_strings, 1);
    st = yajl_parse(d->h, (const unsigned char *)buf, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(d->h);
    yajl_free(d->h);
    d->h = NULL;
    if (st != yajl_status_ok || !d->root)
        return d->err ? d->err : KEDGE_EPARSE;
    return 0;
}

int kedge_json_parse(const char *buf, size_t len, struct kedge_jdoc **out)
{
    struct kedge_jdoc *d;
    int rc;

    *out = NULL;
    d = kedge_calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->text = (const unsigned char *)buf;
    d->text_len = len;
    rc = run_yajl(d, buf, len);
    d->text = NULL;
    d->oom = NULL;
    if (rc < 0) {
        kedge_jdoc_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int kedge_json_parse_object(const char *buf, size_t len, struct kedge_jdoc **out)
{
    int rc = kedge_json_parse(buf, len, out);

    if (rc < 0)
        *out = NULL;
    else if (kedge_jdoc_root(*out)->type != KEDGE_JOBJ)
        rc = KEDGE_ESCHEMA;
    return rc;
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

int kedge_json_optional_object(const struct kedge_jval *v, int bad)
{
    if (kedge_json_is_null(v))
        return 0;
    return v->type == KEDGE_JOBJ ? 1 : bad;
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

bool kedge_json_equal(const struct kedge_jval *a, const struct kedge_jval *b)
{
    const struct kedge_jval *x, *y;

    if (!a || !b)
        return a == b;
    if (a->type != b->type || a->n != b->n)
        return false;
    switch (a->type) {
    case KEDGE_JNULL:
        return true;
    case KEDGE_JBOOL:
        return a->boolean == b->boolean;
    case KEDGE_JNUM: /* as written: 1 and 1.0 differ, as they do in a resent object's text */
    case KEDGE_JSTR:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case KEDGE_JARR:
        for (x = a->child, y = b->child; x && y; x = x->next, y = y->next)
            if (!kedge_json_equal(x, y))
                return false;
        return !x && !y;
    case KEDGE_JOBJ: /* both ways, so that a duplicate key cannot hide a missing one */
        for (x = a->child; x; x = x->next)
            if (!kedge_json_equal(x, kedge_json_get_exact(b, x->key, x->key_len)))
                return false;
        for (y = b->child; y; y = y->next)
            if (!kedge_json_get_exact(a, y->key, y->key_len))
                return false;
        return true;
    }
    return false;
}
