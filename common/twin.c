/* The DeviceTwin model (include/kedge/twin.h): the lifetime of twins, attributes, devices and
 * updates, and KubeEdge's checks on twin keys, values and types (docs/kubeedge-wire.md §2). The
 * JSON sides are twin_decode.c and twin_encode.c.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/twin.h"

/* ---- lifetime ---------------------------------------------------------------------------- */

/* Twin types are a handful of words repeated in every twin: the known ones are shared static
 * strings (100k twins would otherwise hold 100k small allocations of "int"). */
static const char *const static_types[] = {"",      "string",  "int",    "integer",
                                           "float", "boolean", "deleted"};

static const char *static_type(const char *s)
{
    size_t i;

    for (i = 0; s && i < sizeof(static_types) / sizeof(static_types[0]); i++)
        if (!strcmp(s, static_types[i]))
            return static_types[i];
    return NULL;
}

static bool is_static_type(const char *p)
{
    size_t i;

    for (i = 0; i < sizeof(static_types) / sizeof(static_types[0]); i++)
        if (p == static_types[i])
            return true;
    return false;
}

int kedge_twin_set_type(struct kedge_twin *t, const char *type)
{
    const char *st = static_type(type ? type : "");
    char *d = NULL;

    if (!st && !(d = kedge_strdup(type)))
        return -ENOMEM;
    if (!is_static_type(t->type))
        kedge_free(t->type);
    t->type = st ? (char *)st : d;
    return 0;
}

void kedge_twin_cleanup(struct kedge_twin *t)
{
    if (!t)
        return;
    kedge_free(t->name);
    kedge_free(t->expected.value);
    kedge_free(t->actual.value);
    if (!is_static_type(t->type))
        kedge_free(t->type);
    kedge_free(t->meta_col);
    kedge_free(t->description);
    memset(t, 0, sizeof(*t));
}

static int dup_field(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = kedge_strdup(src);
    return *dst ? 0 : -ENOMEM;
}

int kedge_twin_copy(struct kedge_twin *dst, const struct kedge_twin *src)
{
    *dst = *src;
    if (is_static_type(src->type))
        dst->type = NULL; /* set again below, shared */
    if (dup_field(&dst->name, src->name) < 0 ||
        dup_field(&dst->expected.value, src->expected.value) < 0 ||
        dup_field(&dst->actual.value, src->actual.value) < 0 ||
        (is_static_type(src->type) ? (dst->type = src->type, 0)
                                   : dup_field(&dst->type, src->type)) < 0 ||
        dup_field(&dst->meta_col, src->meta_col) < 0 ||
        dup_field(&dst->description, src->description) < 0) {
        /* fields not yet duplicated still point into src: clear them before freeing */
        struct kedge_twin partial = *dst;
        char **f[] = {&partial.name, &partial.expected.value, &partial.actual.value,
                      &partial.type, &partial.meta_col,       &partial.description};
        const char *s[] = {src->name, src->expected.value, src->actual.value,
                           src->type, src->meta_col,       src->description};
        size_t i;
        for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
            if (*f[i] == s[i])
                *f[i] = NULL;
        kedge_twin_cleanup(&partial);
        memset(dst, 0, sizeof(*dst));
        return -ENOMEM;
    }
    return 0;
}

void kedge_attr_cleanup(struct kedge_attr *a)
{
    if (!a)
        return;
    kedge_free_all(a->name, a->value, a->type, a->meta_col, a->description);
    memset(a, 0, sizeof(*a));
}

static void free_twins(struct kedge_twin *twins, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        kedge_twin_cleanup(&twins[i]);
    kedge_free(twins);
}

void kedge_device_free(struct kedge_device *d)
{
    size_t i;

    if (!d)
        return;
    free_twins(d->twins, d->n_twins);
    for (i = 0; i < d->n_attrs; i++)
        kedge_attr_cleanup(&d->attrs[i]);
    kedge_free_all(d->attrs, d->id, d->name, d->description, d->state, d->last_online, d);
}

void kedge_twin_update_cleanup(struct kedge_twin_update *u)
{
    if (!u)
        return;
    free_twins(u->twins, u->n);
    kedge_free(u->event_id);
    memset(u, 0, sizeof(*u));
}

/* ---- validation -------------------------------------------------------------------------- */

/* ^[a-zA-Z0-9-_.,:/@#]{1,max}$ (Go regexp; all members are ASCII, so bytes = runes). */
static bool charset_ok(const char *s, size_t len, size_t max)
{
    size_t i;

    if (len < 1 || len > max)
        return false;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (!strchr("-_.,:/@#", c) || c == '\0')
            return false;
    }
    return true;
}

bool kedge_twin_key_valid(const char *key, size_t len)
{
    return charset_ok(key, len, KEDGE_TWIN_KEY_MAX);
}

bool kedge_twin_value_valid(const char *value, size_t len)
{
    return charset_ok(value, len, KEDGE_TWIN_VALUE_MAX);
}

/* strconv.ParseInt(s, 10, 64). */
static bool go_parse_int(const char *s)
{
    uint64_t acc = 0, limit = (uint64_t)INT64_MAX;
    size_t i = 0;

    if (s[0] == '+' || s[0] == '-') {
        if (s[0] == '-')
            limit++;
        i = 1;
    }
    if (!s[i])
        return false;
    for (; s[i]; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return false;
        d = (unsigned)(s[i] - '0');
        if (acc > (limit - d) / 10)
            return false;
        acc = acc * 10 + d;
    }
    return true;
}

static bool prefix_nocase(const char *s, const char *word)
{
    size_t i;

    for (i = 0; word[i]; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != word[i])
            return false;
    }
    return true;
}

static bool is_digit(char c, bool hex)
{
    char l = (char)(c | 0x20);

    return (c >= '0' && c <= '9') || (hex && l >= 'a' && l <= 'f');
}

/* strconv's underscoreOK: '_' only between digits, or between a base prefix and a digit. */
static bool underscore_ok(const char *s)
{
    char saw = '^'; /* ^ start, 0 digit or prefix, _ underscore, ! anything else */
    size_t i = 0;
    bool hex = false;

    if (*s == '+' || *s == '-')
        s++;
    if (s[0] == '0' && s[1] && strchr("boxBOX", s[1])) {
        i = 2;
        saw = '0';
        hex = (s[1] | 0x20) == 'x';
    }
    for (; s[i]; i++) {
        if (is_digit(s[i], hex)) {
            saw = '0';
        } else if (s[i] == '_') {
            if (saw != '0')
                return false;
            saw = '_';
        } else {
            if (saw == '_')
                return false;
            saw = '!';
        }
    }
    return saw != '_';
}

/* Go's value does not fit a float64 (ParseFloat's ErrRange): the literal, already checked,
 * rounds to infinity. strtod rounds correctly too, so both agree at the boundary; it only
 * needs the underscores gone. */
static bool float_overflows(const char *s, bool underscores)
{
    char tmp[640], *p = tmp, *heap = NULL;
    size_t i, n = strlen(s), k = 0;
    bool inf;

    if (!underscores)
        return isinf(strtod(s, NULL));
    if (n >= sizeof(tmp)) {
        /* longer than any value that passes the 512-byte check; no memory: refuse it */
        heap = kedge_malloc(n + 1);
        if (!heap)
            return true;
        p = heap;
    }
    for (i = 0; i < n; i++)
        if (s[i] != '_')
            p[k++] = s[i];
    p[k] = '\0';
    inf = isinf(strtod(p, NULL));
    kedge_free(heap);
    return inf;
}

/* strconv.ParseFloat(s, 64) succeeds (atof.go: special, then readFloat over the whole string,
 * then ErrRange on overflow). Decimal and hex literals as in Go source, '_' separators included
 * ("1_000" is a float to Go), hex needs its p exponent, inf/infinity with a sign, nan without. */
static bool go_parse_float(const char *s)
{
    const char *p = s;
    size_t i = 0, n;
    bool hex = false, dot = false, digits = false, underscores = false;
    char exp_char = 'e';

    if (*p == '+' || *p == '-')
        p++;
    if ((strlen(p) == 3 && prefix_nocase(p, "inf")) ||
        (strlen(p) == 8 && prefix_nocase(p, "infinity")))
        return true;
    if (p == s && strlen(p) == 3 && prefix_nocase(p, "nan"))
        return true;
    n = strlen(p);
    if (n > 2 && p[0] == '0' && (p[1] | 0x20) == 'x') {
        hex = true;
        exp_char = 'p';
        i = 2;
    }
    for (; i < n; i++) {
        if (p[i] == '_') {
            underscores = true;
        } else if (p[i] == '.') {
            if (dot)
                break;
            dot = true;
        } else if (is_digit(p[i], hex)) {
            digits = true;
        } else {
            break;
        }
    }
    if (!digits)
        return false;
    if (i < n && (p[i] | 0x20) == exp_char) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= n || p[i] < '0' || p[i] > '9')
            return false;
        for (; i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '_'); i++)
            underscores |= p[i] == '_';
    } else if (hex) {
        return false;
    }
    if (i != n || (underscores && !underscore_ok(s)))
        return false;
    return !float_overflows(s, underscores);
}

const char *kedge_twin_check_type(const char *type, const char *value)
{
    if (!type || !*type || !strcmp(type, "string") || !strcmp(type, KEDGE_TYPE_DELETED))
        return NULL;
    if (!strcmp(type, "int") || !strcmp(type, "integer"))
        return go_parse_int(value) ? NULL : KEDGE_REASON_NOT_INT;
    if (!strcmp(type, "float"))
        return go_parse_float(value) ? NULL : KEDGE_REASON_NOT_FLOAT;
    if (!strcmp(type, "boolean"))
        return !strcmp(value, "true") || !strcmp(value, "false") ? NULL : KEDGE_REASON_NOT_BOOL;
    return KEDGE_REASON_TYPE;
}
