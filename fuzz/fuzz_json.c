/* kedge_json_parse and kedge_json_escape on arbitrary bytes.
 *
 * Properties:
 *  - parse fails only with KEDGE_EPARSE, and then hands back no document;
 *  - every string and key in a parsed tree is well-formed UTF-8 (Go's decoder replaces the
 *    rest with U+FFFD), and escaping it and parsing it back gives the same bytes;
 *  - the tree printed again with the writer parses to an equal tree, and printing that gives
 *    the same bytes (the writer and the parser agree);
 *  - kedge_json_get_exact finds the last member with a key, kedge_json_get a member whose key
 *    matches ignoring ASCII case; an int64 read back prints as its literal;
 *  - the input escaped as one string parses back to the input with each byte that is not part
 *    of well-formed UTF-8 replaced by U+FFFD (checked against a small decoder of our own).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/json.h"

/* Length of a well-formed UTF-8 sequence at s (Unicode table 3-7), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

static int well_formed(const char *s, size_t n)
{
    size_t i = 0, k;

    while (i < n) {
        k = utf8_len((const unsigned char *)s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* Go's coercion of arbitrary bytes to a string: each bad byte becomes U+FFFD. */
static void coerce(const char *s, size_t n, struct kedge_buf *out)
{
    size_t i = 0, k;

    while (i < n) {
        k = utf8_len((const unsigned char *)s + i, n - i);
        if (k) {
            CHECK(kedge_buf_append(out, s + i, k) == 0);
            i += k;
        } else {
            CHECK(kedge_buf_append(out, "\xef\xbf\xbd", 3) == 0);
            i++;
        }
    }
}

static void check_string_round_trip(const char *s, size_t n)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    const struct kedge_jval *v;

    CHECK(well_formed(s, n));
    CHECK(kedge_json_escape(&b, s, n) == 0);
    CHECK(kedge_json_parse(b.data, b.len, &doc) == 0);
    v = kedge_jdoc_root(doc);
    CHECK(v->type == KEDGE_JSTR && v->len == n && !memcmp(v->str, s, n));
    CHECK(v->str[n] == '\0');
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&b);
}

static int fold_eq(const char *a, size_t an, const char *b, size_t bn)
{
    size_t i;

    if (an != bn)
        return 0;
    for (i = 0; i < an; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return 0;
    }
    return 1;
}

/* Walk the tree: string properties, lookups, numbers. */
static void check_tree(const struct kedge_jval *v, int depth)
{
    const struct kedge_jval *c, *last, *got;
    char key[64];

    CHECK(depth <= KEDGE_JSON_MAX_NEST + 1); /* scalars sit one below the deepest container */
    switch (v->type) {
    case KEDGE_JSTR:
        check_string_round_trip(v->str, v->len);
        break;
    case KEDGE_JNUM: {
        int64_t n;
        if (kedge_json_int64(v, &n) == 0) {
            char text[32];
            int len = snprintf(text, sizeof(text), "%" PRId64, n);
            CHECK(((size_t)len == v->len && !memcmp(text, v->str, v->len)) ||
                  (v->len == 2 && !memcmp(v->str, "-0", 2) && n == 0));
        }
        break;
    }
    case KEDGE_JOBJ:
    case KEDGE_JARR: {
        size_t n = 0;
        for (c = v->child; c; c = c->next, n++) {
            CHECK(c->parent == v);
            if (v->type == KEDGE_JOBJ) {
                CHECK(c->key != NULL);
                check_string_round_trip(c->key, c->key_len);
                /* the last member with exactly this key */
                got = kedge_json_get_exact(v, c->key, c->key_len);
                CHECK(got != NULL && got->key_len == c->key_len &&
                      !memcmp(got->key, c->key, c->key_len));
                for (last = got->next; last; last = last->next)
                    CHECK(last->key_len != c->key_len || memcmp(last->key, c->key, c->key_len));
                /* case-insensitive lookup of a NUL-free key finds a matching member */
                if (c->key_len < sizeof(key) && !memchr(c->key, '\0', c->key_len)) {
                    memcpy(key, c->key, c->key_len);
                    key[c->key_len] = '\0';
                    got = kedge_json_get(v, key);
                    CHECK(got && fold_eq(got->key, got->key_len, key, c->key_len));
                }
            } else {
                CHECK(c->key == NULL);
            }
            check_tree(c, depth + 1);
        }
        CHECK(n == v->n);
        CHECK(n == 0 ? v->child == NULL && v->last == NULL : v->last != NULL);
        break;
    }
    default:
        break;
    }
}

/* Print the tree back with the writer, members in their order. */
static void write_tree(struct kedge_jw *w, const struct kedge_jval *v)
{
    const struct kedge_jval *c;
    struct kedge_buf key = KEDGE_BUF_INIT;

    switch (v->type) {
    case KEDGE_JNULL:
        kedge_jw_null(w);
        break;
    case KEDGE_JBOOL:
        kedge_jw_bool(w, v->boolean);
        break;
    case KEDGE_JNUM:
        kedge_jw_raw(w, v->str, v->len);
        break;
    case KEDGE_JSTR:
        kedge_jw_strn(w, v->str, v->len);
        break;
    case KEDGE_JARR:
        kedge_jw_arr_open(w);
        for (c = v->child; c; c = c->next)
            write_tree(w, c);
        kedge_jw_arr_close(w);
        break;
    case KEDGE_JOBJ:
        /* keys with a NUL cannot go through kedge_jw_key (a C string): write them raw */
        kedge_jw_obj_open(w);
        for (c = v->child; c; c = c->next) {
            kedge_buf_reset(&key);
            CHECK(kedge_json_escape(&key, c->key, c->key_len) == 0);
            CHECK(kedge_buf_putc(&key, ':') == 0);
            kedge_jw_raw(w, key.data, key.len);
            w->after_key = true;
            write_tree(w, c);
        }
        kedge_jw_obj_close(w);
        break;
    }
    kedge_buf_cleanup(&key);
}

static void same_tree(const struct kedge_jval *a, const struct kedge_jval *b)
{
    const struct kedge_jval *x, *y;

    CHECK(a->type == b->type && a->n == b->n);
    CHECK(a->key_len == b->key_len && (!a->key_len || !memcmp(a->key, b->key, a->key_len)));
    switch (a->type) {
    case KEDGE_JBOOL:
        CHECK(a->boolean == b->boolean);
        break;
    case KEDGE_JNUM:
    case KEDGE_JSTR:
        CHECK(a->len == b->len && !memcmp(a->str, b->str, a->len));
        break;
    case KEDGE_JOBJ:
    case KEDGE_JARR:
        for (x = a->child, y = b->child; x && y; x = x->next, y = y->next)
            same_tree(x, y);
        CHECK(!x && !y);
        break;
    default:
        break;
    }
}

/* Containers on the deepest path (the writer stops at KEDGE_JSON_MAX_DEPTH, the parser at
 * KEDGE_JSON_MAX_NEST: deeper documents are the cloud's problem, not ours to print). */
static int depth_of(const struct kedge_jval *v)
{
    const struct kedge_jval *c;
    int d = 0, cd;

    if (v->type != KEDGE_JOBJ && v->type != KEDGE_JARR)
        return 0;
    for (c = v->child; c; c = c->next)
        if ((cd = depth_of(c)) > d)
            d = cd;
    return d + 1;
}

static void print_tree(const struct kedge_jval *v, struct kedge_buf *out)
{
    struct kedge_jw w;

    kedge_jw_init(&w, out);
    write_tree(&w, v);
    CHECK(kedge_jw_finish(&w) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kedge_buf b1 = KEDGE_BUF_INIT, b2 = KEDGE_BUF_INIT, want = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL, *again = NULL;
    const struct kedge_jval *v;
    int rc;

    rc = kedge_json_parse((const char *)data, size, &doc);
    if (rc < 0) {
        CHECK(rc == KEDGE_EPARSE && doc == NULL);
    } else {
        check_tree(kedge_jdoc_root(doc), 1);
        if (depth_of(kedge_jdoc_root(doc)) > KEDGE_JSON_MAX_DEPTH)
            goto done;
        print_tree(kedge_jdoc_root(doc), &b1);
        CHECK(kedge_json_parse(b1.data, b1.len, &again) == 0);
        same_tree(kedge_jdoc_root(doc), kedge_jdoc_root(again));
        print_tree(kedge_jdoc_root(again), &b2);
        CHECK(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len));
        kedge_jdoc_free(again);
    done:
        kedge_jdoc_free(doc);
        doc = NULL;
    }
    /* the input as one string: escape, parse, compare with Go's coercion */
    kedge_buf_reset(&b1);
    CHECK(kedge_json_escape(&b1, (const char *)data, size) == 0);
    CHECK(kedge_json_parse(b1.data, b1.len, &doc) == 0);
    v = kedge_jdoc_root(doc);
    coerce((const char *)data, size, &want);
    CHECK(v->type == KEDGE_JSTR && v->len == want.len &&
          (want.len == 0 || !memcmp(v->str, want.data, want.len)));
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&b1);
    kedge_buf_cleanup(&b2);
    kedge_buf_cleanup(&want);
    return 0;
}
