/* JSON in and out, with Go's encoding/json as the byte reference (docs/kubeedge-wire.md §0).
 *
 * Out: a small writer that produces exactly Go's bytes: no whitespace, `<` `>` `&` U+2028 U+2029
 * escaped as \u003c..., \b \f \n \r \t short escapes (Go 1.22+), other control characters as
 * \u00XX, invalid UTF-8 as \ufffd. yajl's generator cannot do this (spec fact 31). The caller
 * writes struct fields in declaration order and map keys sorted; the writer adds the commas and
 * keeps a sticky error, so a builder checks once at the end.
 *
 * In: yajl's event parser builds a small tree in one arena (comments off, a depth and size
 * cap). Lookups follow Go's decoder: keys match case-insensitively and the last duplicate wins.
 * Codecs take (buf, len) and never assume NUL-termination.
 */
#ifndef KEDGE_JSON_H
#define KEDGE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"

/* ---- writer ---------------------------------------------------------------------------- */

#define KEDGE_JSON_MAX_DEPTH 32

struct kedge_jw {
    struct kedge_buf *out;
    int err; /* first error (-ENOMEM, -EINVAL), sticky */
    int depth;
    bool need_comma[KEDGE_JSON_MAX_DEPTH + 1];
    bool after_key;
};

void kedge_jw_init(struct kedge_jw *w, struct kedge_buf *out);
void kedge_jw_obj_open(struct kedge_jw *w);
void kedge_jw_obj_close(struct kedge_jw *w);
void kedge_jw_arr_open(struct kedge_jw *w);
void kedge_jw_arr_close(struct kedge_jw *w);
void kedge_jw_key(struct kedge_jw *w, const char *key);
/* A key that may hold NUL (a parsed key with its length). */
void kedge_jw_key_n(struct kedge_jw *w, const char *key, size_t len);
void kedge_jw_str(struct kedge_jw *w, const char *s);
void kedge_jw_strn(struct kedge_jw *w, const char *s, size_t len);
void kedge_jw_int(struct kedge_jw *w, int64_t v);
void kedge_jw_bool(struct kedge_jw *w, bool v);
void kedge_jw_null(struct kedge_jw *w);
/* Insert already-encoded JSON as one value (trusted: our own or a parsed-and-checked text). */
void kedge_jw_raw(struct kedge_jw *w, const char *json, size_t len);
/* Convenience: key then value. */
void kedge_jw_kstr(struct kedge_jw *w, const char *key, const char *s);
void kedge_jw_kint(struct kedge_jw *w, const char *key, int64_t v);
/* 0, or the first error. Also -EINVAL if objects/arrays are left open. */
int kedge_jw_finish(struct kedge_jw *w);

/* Append s as a Go-escaped JSON string (with quotes). Returns 0 or -ENOMEM. */
int kedge_json_escape(struct kedge_buf *b, const char *s, size_t len);

/* ---- parser ---------------------------------------------------------------------------- */

enum kedge_jtype {
    KEDGE_JNULL,
    KEDGE_JBOOL,
    KEDGE_JNUM, /* str/len hold the number's text as written */
    KEDGE_JSTR,
    KEDGE_JOBJ,
    KEDGE_JARR,
};

struct kedge_jval {
    enum kedge_jtype type;
    bool boolean;
    const char *str; /* NUL-terminated copy in the arena; may contain NUL (len counts) */
    size_t len;
    const char *key; /* set when this value is an object member */
    size_t key_len;
    struct kedge_jval *child, *last, *next, *parent;
    size_t n; /* members / elements */
};

struct kedge_jdoc;

#define KEDGE_JSON_MAX_NEST 64

/* Parse buf[0..len) as exactly one JSON value.
 * *out: set on success; free with kedge_jdoc_free. root via kedge_jdoc_root.
 * Returns 0, KEDGE_EPARSE (bad JSON, trailing garbage, too deep), -ENOMEM. */
int kedge_json_parse(const char *buf, size_t len, struct kedge_jdoc **out);
/* The same, for a body that must be an object: KEDGE_ESCHEMA when the root is something else,
 * with *out set all the same (the caller frees it). */
int kedge_json_parse_object(const char *buf, size_t len, struct kedge_jdoc **out);
const struct kedge_jval *kedge_jdoc_root(const struct kedge_jdoc *doc);
void kedge_jdoc_free(struct kedge_jdoc *doc);

/* Member of obj named `name` as Go's decoder finds it: case-insensitive (ASCII), last wins.
 * NULL when obj is not an object or has no such member. */
const struct kedge_jval *kedge_json_get(const struct kedge_jval *obj, const char *name);
/* Whether two values are the same JSON: objects whatever their member order (a duplicated key
 * is compared by its last value, as lookups see it), numbers as written. NULL equals only NULL. */
bool kedge_json_equal(const struct kedge_jval *a, const struct kedge_jval *b);
/* Exact-match member lookup (for map keys). */
const struct kedge_jval *kedge_json_get_exact(const struct kedge_jval *obj, const char *key,
                                              size_t key_len);

/* Go's decoding of a number into int64: an integer literal in range. NULL/null leaves *out.
 * Returns 0 or KEDGE_ESCHEMA. */
int kedge_json_int64(const struct kedge_jval *v, int64_t *out);
/* True if v is absent or JSON null: Go leaves the field at its zero value. */
bool kedge_json_is_null(const struct kedge_jval *v);
/* An optional object member: 0 when v is absent or null (Go's zero value), 1 when it is an
 * object, else the caller's error code bad. */
int kedge_json_optional_object(const struct kedge_jval *v, int bad);

#endif
