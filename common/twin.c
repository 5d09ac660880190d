/* DeviceTwin codec: decode twin/get/state requests the way Go's encoding/json does, encode
 * results, documents, deltas and membership the way edgecore prints them
 * (include/kedge/twin.h, kubeedge-wire.md §2).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
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
    kedge_free(a->name);
    kedge_free(a->value);
    kedge_free(a->type);
    kedge_free(a->meta_col);
    kedge_free(a->description);
    memset(a, 0, sizeof(*a));
}

void kedge_device_free(struct kedge_device *d)
{
    size_t i;

    if (!d)
        return;
    for (i = 0; i < d->n_twins; i++)
        kedge_twin_cleanup(&d->twins[i]);
    for (i = 0; i < d->n_attrs; i++)
        kedge_attr_cleanup(&d->attrs[i]);
    kedge_free(d->twins);
    kedge_free(d->attrs);
    kedge_free(d->id);
    kedge_free(d->name);
    kedge_free(d->description);
    kedge_free(d->state);
    kedge_free(d->last_online);
    kedge_free(d);
}

void kedge_twin_update_cleanup(struct kedge_twin_update *u)
{
    size_t i;

    if (!u)
        return;
    for (i = 0; i < u->n; i++)
        kedge_twin_cleanup(&u->twins[i]);
    kedge_free(u->twins);
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

/* ---- decode ------------------------------------------------------------------------------ */

/* A JSON string field into an owned C string. null/absent leave *out NULL. A string with an
 * embedded NUL cannot be a valid twin key/value anyway; it is cut there. */
static int get_string(const struct kedge_jval *v, char **out)
{
    *out = NULL;
    if (kedge_json_is_null(v))
        return 0;
    if (v->type != KEDGE_JSTR)
        return KEDGE_EPARSE;
    *out = kedge_strndup(v->str, v->len);
    return *out ? 0 : -ENOMEM;
}

static int get_bool(const struct kedge_jval *v, bool *present, bool *out)
{
    if (kedge_json_is_null(v))
        return 0;
    if (v->type != KEDGE_JBOOL)
        return KEDGE_EPARSE;
    *present = true;
    *out = v->boolean;
    return 0;
}

static int get_int(const struct kedge_jval *v, int64_t *out)
{
    return kedge_json_int64(v, out) < 0 ? KEDGE_EPARSE : 0;
}

/* Go's decoding into a struct: null leaves it alone (0), an object is decoded (1), anything
 * else fails the whole message. */
static int want_object(const struct kedge_jval *v)
{
    if (kedge_json_is_null(v))
        return 0;
    return v->type == KEDGE_JOBJ ? 1 : KEDGE_EPARSE;
}

static int decode_value(const struct kedge_jval *v, struct kedge_twin_value *out)
{
    const struct kedge_jval *meta, *value;
    size_t i;
    int rc;

    if ((rc = want_object(v)) <= 0)
        return rc;
    out->present = true;
    value = kedge_json_get(v, "value");
    rc = get_string(value, &out->value);
    if (rc < 0)
        return rc;
    /* Go's regexp sees every byte of "25\u0000x" and rejects it; cut at the NUL it would
     * pass as "25". A space fails the same check and keeps the length. */
    for (i = 0; out->value && i < value->len; i++)
        if (out->value[i] == '\0')
            out->value[i] = ' ';
    meta = kedge_json_get(v, "metadata");
    if ((rc = want_object(meta)) <= 0)
        return rc;
    out->has_meta = true;
    return get_int(kedge_json_get(meta, "timestamp"), &out->ts);
}

static int decode_version(const struct kedge_jval *v, bool *has, struct kedge_twin_version *out)
{
    int rc;

    if ((rc = want_object(v)) <= 0)
        return rc;
    *has = true;
    rc = get_int(kedge_json_get(v, "cloud"), &out->cloud);
    if (rc == 0)
        rc = get_int(kedge_json_get(v, "edge"), &out->edge);
    return rc;
}

static int decode_twin(const struct kedge_jval *v, struct kedge_twin *t)
{
    const struct kedge_jval *meta;
    int rc;

    if (kedge_json_is_null(v)) {
        t->is_null = true;
        return 0;
    }
    if (v->type != KEDGE_JOBJ)
        return KEDGE_EPARSE;
    rc = decode_value(kedge_json_get(v, "expected"), &t->expected);
    if (rc == 0)
        rc = decode_value(kedge_json_get(v, "actual"), &t->actual);
    if (rc == 0)
        rc = get_bool(kedge_json_get(v, "optional"), &t->has_optional, &t->optional);
    if (rc == 0)
        rc = decode_version(kedge_json_get(v, "expected_version"), &t->has_ev, &t->ev);
    if (rc == 0)
        rc = decode_version(kedge_json_get(v, "actual_version"), &t->has_av, &t->av);
    if (rc < 0)
        return rc;
    meta = kedge_json_get(v, "metadata");
    if ((rc = want_object(meta)) <= 0)
        return rc;
    t->has_meta = true;
    {
        char *type = NULL;
        rc = get_string(kedge_json_get(meta, "type"), &type);
        if (rc == 0)
            rc = kedge_twin_set_type(t, type ? type : "");
        kedge_free(type);
    }
    return rc;
}

static int cmp_twin_name(const void *a, const void *b)
{
    return strcmp(((const struct kedge_twin *)a)->name, ((const struct kedge_twin *)b)->name);
}

/* The twin map: one entry per distinct key (Go map: the last duplicate wins), sorted. */
static int decode_twin_map(const struct kedge_jval *map, struct kedge_twin_update *out)
{
    const struct kedge_jval *m;
    size_t i = 0;
    int rc;

    out->twins = kedge_calloc(map->n ? map->n : 1, sizeof(*out->twins));
    if (!out->twins)
        return -ENOMEM;
    for (m = map->child; m; m = m->next) {
        if (kedge_json_get_exact(map, m->key, m->key_len) != m)
            continue; /* a later duplicate wins */
        /* keys with an embedded NUL can never pass the key check; keep the text up to it */
        out->twins[i].name = kedge_strndup(m->key, m->key_len);
        if (!out->twins[i].name)
            return -ENOMEM;
        out->n = ++i;
        if (strlen(out->twins[i - 1].name) != m->key_len)
            out->twins[i - 1].name[0] = '\0'; /* forces the key check to fail */
        rc = decode_twin(m, &out->twins[i - 1]);
        if (rc < 0)
            return rc;
    }
    qsort(out->twins, out->n, sizeof(*out->twins), cmp_twin_name);
    return 0;
}

static int check_charsets(const struct kedge_twin_update *u)
{
    size_t i;

    for (i = 0; i < u->n; i++) {
        const struct kedge_twin *t = &u->twins[i];
        if (!kedge_twin_key_valid(t->name, strlen(t->name)))
            return KEDGE_ETWINKEY;
        if (t->expected.value && *t->expected.value &&
            !kedge_twin_value_valid(t->expected.value, strlen(t->expected.value)))
            return KEDGE_ETWINVALUE;
        if (t->actual.value && *t->actual.value &&
            !kedge_twin_value_valid(t->actual.value, strlen(t->actual.value)))
            return KEDGE_ETWINVALUE;
    }
    return 0;
}

static int decode_base(const struct kedge_jval *root, char **event_id, int64_t *ts)
{
    int rc;

    if (root->type == KEDGE_JNULL)
        return 0; /* json.Unmarshal("null") leaves the struct alone */
    if (root->type != KEDGE_JOBJ)
        return KEDGE_EPARSE;
    rc = get_string(kedge_json_get(root, "event_id"), event_id);
    if (rc == 0 && ts)
        rc = get_int(kedge_json_get(root, "timestamp"), ts);
    return rc;
}

/* Parse buf and its BaseMessage: *doc is set whenever the JSON parsed (the caller frees it). */
static int parse_base(const char *buf, size_t len, struct kedge_jdoc **doc,
                      const struct kedge_jval **root, char **event_id, int64_t *ts)
{
    int rc = kedge_json_parse(buf, len, doc);

    if (rc < 0) {
        *doc = NULL;
        *root = NULL;
        return rc;
    }
    *root = kedge_jdoc_root(*doc);
    return decode_base(*root, event_id, ts);
}

int kedge_twin_update_decode(const char *buf, size_t len, struct kedge_twin_update *out)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *twin;
    char *event_id;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = parse_base(buf, len, &doc, &root, &out->event_id, &out->timestamp);
    if (rc < 0)
        goto out;
    twin = kedge_json_get(root, "twin");
    if (kedge_json_is_null(twin)) {
        rc = KEDGE_ENOTWIN;
        goto out;
    }
    if (twin->type != KEDGE_JOBJ) {
        rc = KEDGE_EPARSE;
        goto out;
    }
    rc = decode_twin_map(twin, out);
    if (rc == 0)
        rc = check_charsets(out);
out:
    kedge_jdoc_free(doc);
    if (rc < 0) {
        event_id = out->event_id;
        out->event_id = NULL;
        kedge_twin_update_cleanup(out);
        out->event_id = event_id;
    }
    return rc;
}

/* MsgAttr: {"value","optional","metadata":{"type"}} -> stored attribute (MsgAttrToDeviceAttr:
 * optional defaults to true, type to string). */
static int decode_attr(const struct kedge_jval *v, struct kedge_attr *a)
{
    const struct kedge_jval *meta;
    bool has_opt = false;
    int rc;

    a->optional = true;
    if (v->type != KEDGE_JOBJ)
        return KEDGE_EPARSE;
    rc = get_string(kedge_json_get(v, "value"), &a->value);
    if (rc == 0)
        rc = get_bool(kedge_json_get(v, "optional"), &has_opt, &a->optional);
    if (rc < 0)
        return rc;
    meta = kedge_json_get(v, "metadata");
    if (!kedge_json_is_null(meta)) {
        if (meta->type != KEDGE_JOBJ)
            return KEDGE_EPARSE;
        rc = get_string(kedge_json_get(meta, "type"), &a->type);
        if (rc < 0)
            return rc;
        if (!a->type && !(a->type = kedge_strdup("")))
            return -ENOMEM;
    } else if (!(a->type = kedge_strdup(KEDGE_TYPE_STRING))) {
        return -ENOMEM;
    }
    if (!a->value && !(a->value = kedge_strdup("")))
        return -ENOMEM;
    return 0;
}

static int cmp_attr_name(const void *x, const void *y)
{
    return strcmp(((const struct kedge_attr *)x)->name, ((const struct kedge_attr *)y)->name);
}

static int decode_device(const struct kedge_jval *v, struct kedge_device **out)
{
    struct kedge_device *d = kedge_calloc(1, sizeof(*d));
    const struct kedge_jval *m, *attrs, *twins;
    struct kedge_twin_update tw = {0};
    int rc;

    *out = NULL;
    if (!d)
        return -ENOMEM;
    rc = v->type == KEDGE_JOBJ ? 0 : KEDGE_EPARSE;
    if (rc == 0)
        rc = get_string(kedge_json_get(v, "id"), &d->id);
    if (rc == 0)
        rc = get_string(kedge_json_get(v, "name"), &d->name);
    if (rc == 0)
        rc = get_string(kedge_json_get(v, "description"), &d->description);
    if (rc == 0)
        rc = get_string(kedge_json_get(v, "state"), &d->state);
    if (rc == 0)
        rc = get_string(kedge_json_get(v, "last_online"), &d->last_online);
    if (rc == 0 && (!d->id || !*d->id))
        rc = KEDGE_ESCHEMA;
    attrs = kedge_json_get(v, "attributes");
    if (rc == 0 && !kedge_json_is_null(attrs)) {
        if (attrs->type != KEDGE_JOBJ)
            rc = KEDGE_EPARSE;
        else if (!(d->attrs = kedge_calloc(attrs->n ? attrs->n : 1, sizeof(*d->attrs))))
            rc = -ENOMEM;
        for (m = attrs->child; rc == 0 && m; m = m->next) {
            if (kedge_json_get_exact(attrs, m->key, m->key_len) != m || m->type == KEDGE_JNULL)
                continue;
            struct kedge_attr *a = &d->attrs[d->n_attrs++];
            a->name = kedge_strndup(m->key, m->key_len);
            rc = a->name ? decode_attr(m, a) : -ENOMEM;
        }
        if (rc == 0)
            qsort(d->attrs, d->n_attrs, sizeof(*d->attrs), cmp_attr_name);
    }
    twins = kedge_json_get(v, "twin");
    if (rc == 0 && !kedge_json_is_null(twins)) {
        rc = twins->type == KEDGE_JOBJ ? decode_twin_map(twins, &tw) : KEDGE_EPARSE;
        d->twins = tw.twins;
        d->n_twins = d->cap_twins = tw.n;
        tw.twins = NULL;
        tw.n = 0;
    }
    kedge_twin_update_cleanup(&tw);
    if (rc < 0) {
        kedge_device_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

static int decode_device_list(const struct kedge_jval *arr, struct kedge_device ***out, size_t *n)
{
    const struct kedge_jval *e;
    int rc = 0;

    if (kedge_json_is_null(arr))
        return 0;
    if (arr->type != KEDGE_JARR)
        return KEDGE_EPARSE;
    *out = kedge_calloc(arr->n ? arr->n : 1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    for (e = arr->child; e && rc == 0; e = e->next) {
        rc = decode_device(e, &(*out)[*n]);
        if (rc == 0)
            (*n)++;
    }
    return rc;
}

void kedge_membership_cleanup(struct kedge_membership *m)
{
    size_t i;

    if (!m)
        return;
    for (i = 0; i < m->n_added; i++)
        kedge_device_free(m->added[i]);
    for (i = 0; i < m->n_removed; i++)
        kedge_device_free(m->removed[i]);
    kedge_free(m->added);
    kedge_free(m->removed);
    kedge_free(m->event_id);
    memset(m, 0, sizeof(*m));
}

int kedge_membership_decode(const char *buf, size_t len, struct kedge_membership *out)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = parse_base(buf, len, &doc, &root, &out->event_id, &out->timestamp);
    if (rc == 0 && root->type == KEDGE_JOBJ)
        rc = decode_device_list(kedge_json_get(root, "added_devices"), &out->added, &out->n_added);
    if (rc == 0 && root->type == KEDGE_JOBJ)
        rc = decode_device_list(kedge_json_get(root, "removed_devices"), &out->removed,
                                &out->n_removed);
    kedge_jdoc_free(doc);
    if (rc < 0)
        kedge_membership_cleanup(out);
    return rc;
}

int kedge_twin_event_id_decode(const char *buf, size_t len, char **event_id)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root;
    int64_t ts = 0;
    int rc;

    *event_id = NULL;
    rc = parse_base(buf, len, &doc, &root, event_id, &ts);
    kedge_jdoc_free(doc);
    if (rc < 0) {
        kedge_free(*event_id);
        *event_id = NULL;
    } else if (!*event_id) {
        *event_id = kedge_strdup("");
        rc = *event_id ? 0 : -ENOMEM;
    }
    return rc;
}

/* DeviceUpdate: BaseMessage, state, attributes (map of MsgAttr). Type errors anywhere make
 * Go's Unmarshal fail, and edgecore then stays silent. */
static int check_attrs(const struct kedge_jval *attrs)
{
    const struct kedge_jval *a, *meta, *f;
    int rc;

    if ((rc = want_object(attrs)) <= 0)
        return rc;
    for (a = attrs->child; a; a = a->next) {
        if (a->type == KEDGE_JNULL)
            continue;
        if (a->type != KEDGE_JOBJ)
            return KEDGE_EPARSE;
        f = kedge_json_get(a, "value");
        if (!kedge_json_is_null(f) && f->type != KEDGE_JSTR)
            return KEDGE_EPARSE;
        f = kedge_json_get(a, "optional");
        if (!kedge_json_is_null(f) && f->type != KEDGE_JBOOL)
            return KEDGE_EPARSE;
        meta = kedge_json_get(a, "metadata");
        if (kedge_json_is_null(meta))
            continue;
        if (meta->type != KEDGE_JOBJ)
            return KEDGE_EPARSE;
        f = kedge_json_get(meta, "type");
        if (!kedge_json_is_null(f) && f->type != KEDGE_JSTR)
            return KEDGE_EPARSE;
    }
    return 0;
}

int kedge_twin_state_decode(const char *buf, size_t len, char **state)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root;
    char *event_id = NULL;
    int64_t ts = 0;
    int rc;

    *state = NULL;
    rc = parse_base(buf, len, &doc, &root, &event_id, &ts);
    if (rc == 0 && root->type == KEDGE_JOBJ)
        rc = check_attrs(kedge_json_get(root, "attributes"));
    if (rc == 0 && root->type == KEDGE_JOBJ)
        rc = get_string(kedge_json_get(root, "state"), state);
    if (rc == 0 && !*state) {
        *state = kedge_strdup("");
        rc = *state ? 0 : -ENOMEM;
    }
    kedge_free(event_id);
    kedge_jdoc_free(doc);
    if (rc < 0) {
        kedge_free(*state);
        *state = NULL;
    }
    return rc;
}

/* ---- encode ------------------------------------------------------------------------------ */

static void write_value(struct kedge_jw *w, const char *key, const struct kedge_twin_value *v)
{
    if (!v->present)
        return;
    kedge_jw_key(w, key);
    kedge_jw_obj_open(w);
    if (v->value)
        kedge_jw_kstr(w, "value", v->value);
    if (v->has_meta) {
        kedge_jw_key(w, "metadata");
        kedge_jw_obj_open(w);
        if (v->ts)
            kedge_jw_kint(w, "timestamp", v->ts);
        kedge_jw_obj_close(w);
    }
    kedge_jw_obj_close(w);
}

static void write_version(struct kedge_jw *w, const char *key, const struct kedge_twin_version *v)
{
    kedge_jw_key(w, key);
    kedge_jw_obj_open(w);
    kedge_jw_kint(w, "cloud", v->cloud);
    kedge_jw_kint(w, "edge", v->edge);
    kedge_jw_obj_close(w);
}

void kedge_twin_write(struct kedge_jw *w, const struct kedge_twin *t, unsigned flags)
{
    kedge_jw_obj_open(w);
    write_value(w, "expected", &t->expected);
    write_value(w, "actual", &t->actual);
    if (t->has_optional) {
        kedge_jw_key(w, "optional");
        kedge_jw_bool(w, t->optional);
    }
    if (t->has_meta) {
        kedge_jw_key(w, "metadata");
        kedge_jw_obj_open(w);
        if (t->type && *t->type)
            kedge_jw_kstr(w, "type", t->type);
        kedge_jw_obj_close(w);
    }
    if ((flags & KEDGE_TWIN_VERSIONS) && t->has_ev)
        write_version(w, "expected_version", &t->ev);
    if ((flags & KEDGE_TWIN_VERSIONS) && t->has_av)
        write_version(w, "actual_version", &t->av);
    kedge_jw_obj_close(w);
}

static void write_base(struct kedge_jw *w, const char *event_id, int64_t ts)
{
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "event_id", event_id ? event_id : "");
    kedge_jw_kint(w, "timestamp", ts);
}

int kedge_twin_error_encode(struct kedge_buf *b, const char *event_id, int64_t ts, int code,
                            const char *reason)
{
    struct kedge_jw w;

    kedge_jw_init(&w, b);
    write_base(&w, event_id, ts);
    if (code)
        kedge_jw_kint(&w, "code", code);
    if (reason && *reason)
        kedge_jw_kstr(&w, "reason", reason);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

/* {"event_id":...,"timestamp":...,"<key>":{ : the start of a message with one object member
 * ("twin", "device"). */
static void open_msg(struct kedge_jw *w, struct kedge_buf *b, const char *event_id, int64_t ts,
                     const char *key)
{
    kedge_jw_init(w, b);
    write_base(w, event_id, ts);
    kedge_jw_key(w, key);
    kedge_jw_obj_open(w);
}

/* }} and the writer's verdict. */
static int close_msg(struct kedge_jw *w)
{
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
    return kedge_jw_finish(w);
}

static void write_twin_or_null(struct kedge_jw *w, const struct kedge_twin *t, unsigned flags)
{
    if (t)
        kedge_twin_write(w, t, flags);
    else
        kedge_jw_null(w);
}

int kedge_twin_map_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                          const struct kedge_twin_ref *refs, size_t n, unsigned flags)
{
    struct kedge_jw w;
    size_t i;

    open_msg(&w, b, event_id, ts, "twin");
    for (i = 0; i < n; i++) {
        kedge_jw_key(&w, refs[i].name);
        write_twin_or_null(&w, refs[i].twin, flags);
    }
    return close_msg(&w);
}

int kedge_twin_document_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                               const struct kedge_twin_doc *docs, size_t n)
{
    struct kedge_jw w;
    size_t i;

    open_msg(&w, b, event_id, ts, "twin");
    for (i = 0; i < n; i++) {
        kedge_jw_key(&w, docs[i].name);
        kedge_jw_obj_open(&w);
        kedge_jw_key(&w, "last");
        write_twin_or_null(&w, docs[i].last, 0);
        kedge_jw_key(&w, "current");
        write_twin_or_null(&w, docs[i].current, 0);
        kedge_jw_obj_close(&w);
    }
    return close_msg(&w);
}

static bool is_deleted(const struct kedge_twin *t)
{
    return t->has_meta && t->type && !strcmp(t->type, KEDGE_TYPE_DELETED);
}

static const char *value_text(const struct kedge_twin_value *v)
{
    return v->present && v->value ? v->value : "";
}

int kedge_twin_delta_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                            const struct kedge_twin *twins, size_t n, bool *has_delta)
{
    struct kedge_jw w;
    size_t i;

    *has_delta = false;
    open_msg(&w, b, event_id, ts, "twin");
    for (i = 0; i < n; i++) {
        if (is_deleted(&twins[i]) || !*value_text(&twins[i].expected))
            continue;
        kedge_jw_key(&w, twins[i].name);
        kedge_twin_write(&w, &twins[i], 0);
    }
    kedge_jw_obj_close(&w);
    kedge_jw_key(&w, "delta");
    kedge_jw_obj_open(&w);
    for (i = 0; i < n; i++) {
        const char *exp = value_text(&twins[i].expected);
        if (is_deleted(&twins[i]) || !*exp || !strcmp(exp, value_text(&twins[i].actual)))
            continue;
        kedge_jw_kstr(&w, twins[i].name, exp);
        *has_delta = true;
    }
    return close_msg(&w);
}

static void write_opt_str(struct kedge_jw *w, const char *key, const char *s)
{
    if (s && *s)
        kedge_jw_kstr(w, key, s);
}

static bool is_deleted(const struct kedge_twin *t);

/* dttype.Device; with_twins adds "twin" (versions stripped, deleted twins null) as
 * MarshalMembershipUpdate prints it. */
static void write_device(struct kedge_jw *w, const struct kedge_device *d, bool with_twins)
{
    size_t i;

    kedge_jw_obj_open(w);
    write_opt_str(w, "id", d->id);
    write_opt_str(w, "name", d->name);
    write_opt_str(w, "description", d->description);
    write_opt_str(w, "state", d->state);
    write_opt_str(w, "last_online", d->last_online);
    if (d->n_attrs) {
        kedge_jw_key(w, "attributes");
        kedge_jw_obj_open(w);
        for (i = 0; i < d->n_attrs; i++) {
            const struct kedge_attr *a = &d->attrs[i];
            kedge_jw_key(w, a->name);
            kedge_jw_obj_open(w);
            kedge_jw_kstr(w, "value", a->value ? a->value : "");
            kedge_jw_key(w, "optional");
            kedge_jw_bool(w, a->optional);
            kedge_jw_key(w, "metadata");
            kedge_jw_obj_open(w);
            write_opt_str(w, "type", a->type);
            kedge_jw_obj_close(w);
            kedge_jw_obj_close(w);
        }
        kedge_jw_obj_close(w);
    }
    if (with_twins && d->n_twins) {
        kedge_jw_key(w, "twin");
        kedge_jw_obj_open(w);
        for (i = 0; i < d->n_twins; i++) {
            const struct kedge_twin *t = &d->twins[i];
            kedge_jw_key(w, t->name);
            if (t->is_null || is_deleted(t))
                kedge_jw_null(w);
            else
                kedge_twin_write(w, t, 0);
        }
        kedge_jw_obj_close(w);
    }
    kedge_jw_obj_close(w);
}

int kedge_membership_updated_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                                    const struct kedge_device *added,
                                    const struct kedge_device *removed)
{
    struct kedge_jw w;
    int i;

    kedge_jw_init(&w, b);
    write_base(&w, event_id, ts);
    for (i = 0; i < 2; i++) {
        const struct kedge_device *d = i == 0 ? added : removed;
        kedge_jw_key(&w, i == 0 ? "added_devices" : "removed_devices");
        if (!d) {
            kedge_jw_null(&w);
            continue;
        }
        kedge_jw_arr_open(&w);
        write_device(&w, d, true);
        kedge_jw_arr_close(&w);
    }
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

int kedge_membership_get_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                                const struct kedge_device *const *devs, size_t n)
{
    struct kedge_jw w;
    size_t i;

    kedge_jw_init(&w, b);
    write_base(&w, event_id, ts);
    kedge_jw_key(&w, "devices");
    kedge_jw_arr_open(&w);
    for (i = 0; i < n; i++)
        write_device(&w, devs[i], false);
    kedge_jw_arr_close(&w);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

int kedge_state_result_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                              const char *name, const char *state, const char *last_online)
{
    struct kedge_jw w;

    open_msg(&w, b, event_id, ts, "device");
    write_opt_str(&w, "name", name);
    write_opt_str(&w, "state", state);
    write_opt_str(&w, "lastOnlineTime", last_online);
    return close_msg(&w);
}
