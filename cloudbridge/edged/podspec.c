/* podspec.c: what kubelet reads of a v1.Pod, and the Docker Engine API bodies that create its
 * containers (edged.h, section "podspec.c"). Pure: no I/O. ConfigMaps and Secrets come from the
 * caller's lookup function; everything else comes from the pod and struct podspec_create.
 *
 * Parsing follows Go's decoder (member names match case-insensitively, the last duplicate wins,
 * null is the zero value) and applies the API server's defaults (SetDefaults_Pod, _Container,
 * _Probe, _Volume, _HTTPGetAction), so a pod that reached kedge undefaulted behaves like one
 * that went through the API server. What is validated is what kubelet would trip over, in the
 * API server's words: wrong JSON types, bad quantities, names, duplicate containers or
 * volumes, paths that climb out of a volume. A mount naming no volume is a
 * CreateContainerConfigError at create time, as in kubelet.
 *
 * The create bodies are dockershim's mapping onto the Docker Engine API v1.41 subset that both
 * podman and dockerd serve (containers.md §5.2), written in the field order of Go's
 * container.Config and HostConfig, maps with sorted keys. Env is resolved as kubelet's
 * makeEnvironmentVariables does it: envFrom first, then env in order, each literal value
 * $(VAR)-expanded against what is defined so far; command and args are expanded against the
 * result. A variable defined twice keeps its first position and its last value.
 *
 * Points decided as kubelet decides them: configMapKeyRef and envFrom read a ConfigMap's `data`
 * only (never binaryData); ConfigMap and Secret volumes are always mounted read-only; a
 * resourceFieldRef to a limit that is not set resolves to the node's allocatable (CPUs online,
 * physical memory less kubelet's 100Mi eviction threshold: what node.c reports).
 * Not done (no counterpart in kedge or outside the verified engine subset): service-link
 * variables, the /etc/hosts and termination-log mounts, sharing IPC and PID namespaces with
 * the infra container, subPathExpr (refused at parse), gRPC probes (refused at parse).
 *
 * podspec_container_name and podspec_create_body append to out; on failure out is as it was.
 * Caller mistakes (no pod, an app container without infra_id, no infra_image, no volumes_dir
 * for a volume mount) return -EINVAL.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edged.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/util.h"

#define PODSPEC_MAX_JSON (4u << 20) /* a pod in etcd is at most 1.5 MiB */
#define MAX_CONTAINERS 64           /* per list: initContainers, containers */
#define MAX_ITEMS 1024              /* any other list or map of a pod */
#define MAX_QUANTITY 128            /* characters in a quantity */

/* ==== errors with a field path =========================================================== */

struct parse_ctx {
    char *why;
    size_t why_len;
    char path[256]; /* "spec.containers[0].env[2]": where the parser is */
    size_t plen;
};

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

static size_t path_key(struct parse_ctx *x, const char *key)
{
    return path_push(x, "%s%s", x->plen ? "." : "", key);
}

static size_t path_idx(struct parse_ctx *x, size_t i)
{
    return path_push(x, "[%zu]", i);
}

static void path_pop(struct parse_ctx *x, size_t old)
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

/* KEDGE_ESCHEMA, why = "<path>: <message>". */
static int fail(struct parse_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parse_ctx *x, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vfail(x, fmt, ap);
    va_end(ap);
    return rc;
}

/* The same for the member key of where the parser is. */
static int fail_at(struct parse_ctx *x, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(struct parse_ctx *x, const char *key, const char *fmt, ...)
{
    size_t old = path_key(x, key);
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vfail(x, fmt, ap);
    va_end(ap);
    path_pop(x, old);
    return rc;
}

static const char *jtype_name(const struct kedge_jval *v)
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
static const struct kedge_jval *member(const struct kedge_jval *obj, const char *key)
{
    const struct kedge_jval *v = kedge_json_get(obj, key);

    return kedge_json_is_null(v) ? NULL : v;
}

/* A copy of string v; key names it in the error (NULL: the path already does). */
static int dup_jstr(struct parse_ctx *x, const char *key, const struct kedge_jval *v, char **out)
{
    size_t old = key ? path_key(x, key) : x->plen;
    int rc = 0;

    if (v->type != KEDGE_JSTR)
        rc = fail(x, "must be a string, not %s", jtype_name(v));
    else if (memchr(v->str, '\0', v->len))
        rc = fail(x, "must not contain a NUL character");
    else if (!(*out = kedge_strndup(v->str, v->len)))
        rc = -ENOMEM;
    path_pop(x, old);
    return rc;
}

static int get_str(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, char **out)
{
    const struct kedge_jval *v = member(obj, key);

    return v ? dup_jstr(x, key, v, out) : 0;
}

static int get_bool(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, bool *out)
{
    const struct kedge_jval *v = member(obj, key);

    if (!v)
        return 0;
    if (v->type != KEDGE_JBOOL)
        return fail_at(x, key, "must be a boolean, not %s", jtype_name(v));
    *out = v->boolean;
    return 0;
}

/* An integer in [min, max]; absent or null leaves *out. */
static int get_int(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, int64_t min,
                   int64_t max, int64_t *out)
{
    const struct kedge_jval *v = member(obj, key);
    int64_t n;

    if (!v)
        return 0;
    if (v->type != KEDGE_JNUM)
        return fail_at(x, key, "must be an integer, not %s", jtype_name(v));
    if (kedge_json_int64(v, &n) < 0)
        return fail_at(x, key, "must be an integer, not %.*s", (int)(v->len > 40 ? 40 : v->len),
                       v->str);
    if (n < min || n > max) {
        if (n > max && max == INT32_MAX) /* Go cannot put it in the int32 field */
            return fail_at(x, key, "Invalid value: %" PRId64 ": must be no more than %" PRId64, n,
                           max);
        if (max == INT32_MAX || max == INT64_MAX)
            return fail_at(x, key,
                           "Invalid value: %" PRId64 ": must be greater than or equal to %" PRId64,
                           n, min);
        return fail_at(x, key,
                       "Invalid value: %" PRId64 ": must be between %" PRId64 " and %" PRId64
                       ", inclusive",
                       n, min, max);
    }
    *out = n;
    return 0;
}

static int get_typed(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
                     enum kedge_jtype t, const struct kedge_jval **out)
{
    const struct kedge_jval *v = member(obj, key);

    *out = NULL;
    if (!v)
        return 0;
    if (v->type != t)
        return fail_at(x, key, "must be %s, not %s", t == KEDGE_JOBJ ? "an object" : "an array",
                       jtype_name(v));
    *out = v;
    return 0;
}

static int get_obj(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
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
        return fail_at(x, key, "Too many: must have at most %zu items", max);
    }
    return rc;
}

/* Parse the i-th element e of a list into elem (zeroed; an element of the list's array). */
typedef int (*elem_fn)(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                       void *ctx);

/* The array member `key` of obj (at most max items) into a fresh array of elem_size elements,
 * each parsed by fn with the path at key[i]. out: the address of the caller's array pointer
 * (any element type; left NULL when the list is absent or empty), set before the elements are
 * parsed so that fn can see the ones before it; *n likewise. On failure both still describe
 * what was allocated, so the caller's cleanup frees it. */
static int parse_list(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
                      size_t max, size_t elem_size, void *out, size_t *n, elem_fn fn, void *ctx)
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
    old = path_key(x, key);
    for (e = arr->child; e && rc == 0; e = e->next, i++) {
        size_t o = path_idx(x, i);
        rc = fn(x, e, elems + i * elem_size, i, ctx);
        path_pop(x, o);
    }
    path_pop(x, old);
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

static int get_strv(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, char ***out,
                    size_t *n)
{
    return parse_list(x, obj, key, MAX_ITEMS, sizeof(char *), out, n, parse_str_elem, NULL);
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
static int sorted_members(const struct kedge_jval *obj, const struct kedge_jval ***out, size_t *n)
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
static int get_map(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
                   struct pod_kv **out, size_t *n)
{
    const struct kedge_jval *map, **mems = NULL;
    size_t i, nm = 0, old;
    int rc = get_obj(x, obj, key, &map);

    if (rc < 0 || !map)
        return rc;
    if (map->n > MAX_ITEMS)
        return fail_at(x, key, "Too many: must have at most %d items", MAX_ITEMS);
    rc = sorted_members(map, &mems, &nm);
    if (rc < 0 || !nm)
        return rc;
    *out = kedge_calloc(nm, sizeof(**out));
    if (!*out) {
        kedge_free(mems);
        return -ENOMEM;
    }
    *n = nm;
    old = path_key(x, key);
    for (i = 0; i < nm && rc == 0; i++) {
        const struct kedge_jval *m = mems[i];
        size_t o = path_push(x, "[%.*s]", (int)(m->key_len > 64 ? 64 : m->key_len), m->key);
        if (memchr(m->key, '\0', m->key_len))
            rc = fail(x, "the key must not contain a NUL character");
        else if (!((*out)[i].name = kedge_strndup(m->key, m->key_len)))
            rc = -ENOMEM;
        else if (m->type == KEDGE_JNULL)
            rc = ((*out)[i].value = kedge_strdup("")) ? 0 : -ENOMEM;
        else
            rc = dup_jstr(x, NULL, m, &(*out)[i].value);
        path_pop(x, o);
    }
    path_pop(x, old);
    kedge_free(mems);
    return rc;
}

/* ==== names and paths ==================================================================== */

#define LABEL_MSG                                                                                  \
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "   \
    "must start and end with an alphanumeric character"
#define SUBDOMAIN_MSG                                                                              \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "   \
    "'.', and must start and end with an alphanumeric character"

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? in s[0..n) */
static bool dns_label_n(const char *s, size_t n)
{
    size_t i;

    if (!n || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return false;
    for (i = 1; i + 1 < n; i++)
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

static bool dns_subdomain(const char *s)
{
    const char *dot;
    size_t len = strlen(s);

    if (!len || len > 253)
        return false;
    for (;;) {
        dot = strchr(s, '.');
        if (!dns_label_n(s, dot ? (size_t)(dot - s) : strlen(s)))
            return false;
        if (!dot)
            return true;
        s = dot + 1;
    }
}

/* A required DNS-1123 label (container, volume names; namespace). */
static int check_label(struct parse_ctx *x, const char *key, const char *s)
{
    if (!s || !*s)
        return fail_at(x, key, "Required value");
    if (strlen(s) > 63)
        return fail_at(x, key, "Invalid value: \"%.80s\": must be no more than 63 characters", s);
    if (!dns_label_n(s, strlen(s)))
        return fail_at(x, key, "Invalid value: \"%.80s\": " LABEL_MSG, s);
    return 0;
}

/* Environment variable names as the API server takes them since RelaxedEnvironmentVariable-
 * Validation: printable ASCII other than '='. */
static bool env_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '=')
            return false;
    return true;
}

/* A relative path that stays below its base: no leading '/', no ".." element. */
static const char *relative_path_problem(const char *s)
{
    const char *p = s;

    if (!s || !*s)
        return "Required value";
    if (*s == '/')
        return "must be a relative path";
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return "must not contain '..'";
        p += n;
        if (*p == '/')
            p++;
    }
    return NULL;
}

/* ==== quantities ========================================================================= */

/* resource.Quantity (apimachinery quantity.go): <sign>?<digits>[.<digits>]<suffix>, suffix one
 * of n u m "" k M G T P E | Ki Mi Gi Ti Pi Ei | [eE][+-]?<digits> (an int32). A number part
 * may be empty ("+", "." and "1." are what ParseQuantity accepts). *out = ceil(|q| * 10^scale),
 * away from zero as Quantity.ScaledValue rounds; *neg the sign (false for any zero).
 * Returns 0, KEDGE_EPARSE (not a quantity) or -ERANGE (|result| over INT64_MAX). */
static int quantity_scaled(const char *s, size_t len, int scale, int64_t *out, bool *neg)
{
    unsigned char d[MAX_QUANTITY + 24] = {0}; /* digits, least significant first */
    size_t nd = 0, i = 0, int_start, int_len, frac_start, frac_len, k;
    long long e10 = 0, e2 = 0, shift;
    const char *suf;
    size_t suf_len;
    uint64_t v = 0;
    bool nonzero = false, frac_nonzero = false;

    *out = 0;
    *neg = false;
    if (!len || len > MAX_QUANTITY || memchr(s, '\0', len))
        return KEDGE_EPARSE;
    if (s[0] == '+' || s[0] == '-') {
        *neg = s[0] == '-';
        i = 1;
    }
    int_start = i;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    int_len = i - int_start;
    frac_start = i;
    frac_len = 0;
    if (i < len && s[i] == '.') {
        frac_start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        frac_len = i - frac_start;
    }
    suf = s + i;
    suf_len = len - i;
    if (suf_len == 0) {
    } else if (suf_len == 1 && strchr("numkMGTPE", suf[0])) {
        static const char sfx[] = "numkMGTPE";
        static const int pow10[] = {-9, -6, -3, 3, 6, 9, 12, 15, 18};
        e10 = pow10[strchr(sfx, suf[0]) - sfx];
    } else if (suf_len == 2 && suf[1] == 'i' && strchr("KMGTPE", suf[0])) {
        static const char sfx[] = "KMGTPE";
        e2 = 10 * (long long)(strchr(sfx, suf[0]) - sfx + 1);
    } else if (suf[0] == 'e' || suf[0] == 'E') {
        size_t j = 1;
        bool eneg = false;
        if (j < suf_len && (suf[j] == '+' || suf[j] == '-'))
            eneg = suf[j++] == '-';
        if (j == suf_len)
            return KEDGE_EPARSE;
        for (; j < suf_len; j++) {
            if (suf[j] < '0' || suf[j] > '9')
                return KEDGE_EPARSE;
            e10 = e10 * 10 + (suf[j] - '0');
            if (e10 > (eneg ? 2147483648LL : 2147483647LL)) /* strconv.ParseInt(s, 10, 32) */
                return KEDGE_EPARSE;
        }
        if (eneg)
            e10 = -e10;
    } else {
        return KEDGE_EPARSE;
    }
    /* the digits, integer then fraction, as one integer M: value = M * 10^(e10 - frac_len) */
    for (k = frac_len; k-- > 0;)
        d[nd++] = (unsigned char)(s[frac_start + k] - '0');
    for (k = int_len; k-- > 0;)
        d[nd++] = (unsigned char)(s[int_start + k] - '0');
    while (nd && d[nd - 1] == 0)
        nd--;
    if (!nd) {
        *neg = false;
        return 0;
    }
    /* times 2^e2, 20 bits at a time (the array has room: 2^60 adds at most 19 digits) */
    for (shift = e2; shift > 0; shift -= 20) {
        uint32_t mul = 1u << (shift > 20 ? 20 : shift), carry = 0;
        for (k = 0; k < nd; k++) {
            uint32_t t = d[k] * mul + carry;
            d[k] = (unsigned char)(t % 10);
            carry = t / 10;
        }
        while (carry) {
            d[nd++] = (unsigned char)(carry % 10);
            carry /= 10;
        }
    }
    /* value = D * 10^e, e = e10 - frac_len + scale; ceil of it */
    e10 = e10 - (long long)frac_len + scale;
    if (e10 >= 0) {
        if ((long long)nd + e10 > 19)
            return -ERANGE;
        for (k = nd; k-- > 0;)
            v = v * 10 + d[k];
        for (; e10 > 0; e10--)
            v *= 10; /* fits: at most 19 digits */
    } else {
        size_t drop = (size_t)(-e10 > (long long)nd ? (long long)nd : -e10);
        for (k = 0; k < drop; k++)
            frac_nonzero |= d[k] != 0;
        if (nd - drop > 19)
            return -ERANGE;
        for (k = nd; k-- > drop;)
            v = v * 10 + d[k];
        if (frac_nonzero)
            v++;
    }
    if (v > INT64_MAX)
        return -ERANGE;
    nonzero = v != 0;
    if (!nonzero)
        *neg = false;
    *out = (int64_t)v;
    return 0;
}

static int quantity_public(const char *q, int scale, int64_t *out)
{
    int64_t v;
    bool neg;

    *out = 0;
    if (!q || quantity_scaled(q, strlen(q), scale, &v, &neg) < 0 || neg)
        return KEDGE_ESCHEMA;
    *out = v;
    return 0;
}

int podspec_cpu_milli(const char *q, int64_t *out)
{
    return quantity_public(q, 3, out);
}

int podspec_bytes(const char *q, int64_t *out)
{
    return quantity_public(q, 0, out);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The text of a Quantity in JSON: Go's Quantity.UnmarshalJSON takes a string or a bare number,
 * with surrounding spaces trimmed. */
static int quantity_text(struct parse_ctx *x, const char *key, const struct kedge_jval *v,
                         const char **s, size_t *n)
{
    if (v->type != KEDGE_JSTR && v->type != KEDGE_JNUM)
        return fail_at(x, key, "must be a quantity (a string), not %s", jtype_name(v));
    *s = v->str;
    *n = v->len;
    while (*n && is_space((*s)[0])) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_space((*s)[*n - 1]))
        (*n)--;
    return 0;
}

/* A non-negative quantity member, ceil(q * 10^scale). */
static int get_quantity(struct parse_ctx *x, const char *key, const struct kedge_jval *v, int scale,
                        int64_t *out)
{
    const char *s = NULL;
    size_t n = 0;
    bool neg;
    int rc = quantity_text(x, key, v, &s, &n);

    if (rc < 0)
        return rc;
    if (n && memchr(s, '\0', n))
        return fail_at(x, key, "must not contain a NUL character");
    rc = quantity_scaled(s, n, scale, out, &neg);
    if (rc == -ERANGE)
        return fail_at(x, key, "quantity \"%.*s\" is too large", (int)n, s);
    if (rc < 0)
        return fail_at(x, key, "quantity \"%.*s\" is not valid", (int)(n > 140 ? 140 : n), s);
    if (neg)
        return fail_at(x, key, "Invalid value: \"%.*s\": must be greater than or equal to 0",
                       (int)n, s);
    return 0;
}

/* ==== image references ==================================================================== */

struct image_ref {
    bool has_tag, has_digest;
    const char *tag;
    size_t tag_len;
};

static bool is_hex_lower(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* path-component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool path_component(const char *s, size_t n)
{
    size_t i = 0;

    for (;;) {
        size_t start = i, sep;
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == start)
            return false;
        if (i == n)
            return true;
        sep = i;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < n && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return false;
        }
        if (i == sep)
            return false;
    }
}

/* domain: host[:port]; host: domain-name ('.'-separated [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)
 * or [IPv6] */
static bool domain_ok(const char *s, size_t n)
{
    size_t i = 0, hend;
    const char *colon;

    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        size_t j;
        bool any_colon = false;
        if (!close || close == s + 1)
            return false;
        for (j = 1; s + j < close; j++) {
            char c = s[j];
            if (c == ':')
                any_colon = true;
            else if (!is_hex_lower((char)(c | 0x20)) && c != '.')
                return false;
        }
        if (!any_colon)
            return false;
        hend = (size_t)(close - s) + 1;
    } else {
        colon = memchr(s, ':', n);
        hend = colon ? (size_t)(colon - s) : n;
        if (!hend)
            return false;
        while (i < hend) {
            size_t start = i;
            while (i < hend && s[i] != '.') {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-'))
                    return false;
                i++;
            }
            if (i == start || s[start] == '-' || s[i - 1] == '-')
                return false;
            if (i < hend) {
                i++; /* the dot */
                if (i == hend)
                    return false;
            }
        }
    }
    if (hend == n)
        return true;
    if (s[hend] != ':' || hend + 1 == n)
        return false;
    for (i = hend + 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* distribution/reference's grammar as ParseNormalizedNamed applies it. */
static bool parse_image(const char *s, struct image_ref *r)
{
    const char *at, *colon, *slash, *name_end, *first_slash;
    size_t len, name_len, i;

    memset(r, 0, sizeof(*r));
    if (!s || !*s)
        return false;
    len = strlen(s);
    at = strchr(s, '@');
    name_end = at ? at : s + len;
    if (at) {
        const char *alg = at + 1, *c2 = strchr(alg, ':');
        size_t hex_len, want;
        if (!c2)
            return false;
        if ((size_t)(c2 - alg) == 6 && !memcmp(alg, "sha256", 6))
            want = 64;
        else if ((size_t)(c2 - alg) == 6 && !memcmp(alg, "sha384", 6))
            want = 96;
        else if ((size_t)(c2 - alg) == 6 && !memcmp(alg, "sha512", 6))
            want = 128;
        else
            return false;
        hex_len = strlen(c2 + 1);
        if (hex_len != want)
            return false;
        for (i = 0; i < hex_len; i++)
            if (!is_hex_lower(c2[1 + i]))
                return false;
        r->has_digest = true;
    }
    /* a tag: after the last ':' that follows the last '/' */
    slash = NULL;
    colon = NULL;
    for (i = 0; s + i < name_end; i++) {
        if (s[i] == '/')
            slash = s + i;
        else if (s[i] == ':')
            colon = s + i;
    }
    if (colon && (!slash || colon > slash)) {
        const char *t = colon + 1;
        size_t tl = (size_t)(name_end - t);
        if (!tl || tl > 128 || !is_word(t[0]))
            return false;
        for (i = 1; i < tl; i++)
            if (!is_word(t[i]) && t[i] != '.' && t[i] != '-')
                return false;
        r->has_tag = true;
        r->tag = t;
        r->tag_len = tl;
        name_end = colon;
    }
    name_len = (size_t)(name_end - s);
    if (!name_len || name_len > 255)
        return false;
    /* the first component is a registry when it has '.' or ':', is "localhost" or has an
     * upper-case letter (splitDockerDomain) */
    first_slash = memchr(s, '/', name_len);
    i = 0;
    if (first_slash) {
        size_t fl = (size_t)(first_slash - s), j;
        bool domain = fl == 9 && !memcmp(s, "localhost", 9);
        for (j = 0; j < fl && !domain; j++)
            if (s[j] == '.' || s[j] == ':' || (s[j] >= 'A' && s[j] <= 'Z'))
                domain = true;
        if (domain) {
            if (!domain_ok(s, fl))
                return false;
            i = fl + 1;
        }
    } else if (name_len == 64 && !r->has_tag && !r->has_digest) {
        size_t j; /* a bare 64-hex name is refused: it looks like an image id */
        for (j = 0; j < 64 && is_hex_lower(s[j]); j++)
            ;
        if (j == 64)
            return false;
    }
    while (i <= name_len) {
        const char *next = memchr(s + i, '/', name_len - i);
        size_t cl = next ? (size_t)(next - (s + i)) : name_len - i;
        if (!path_component(s + i, cl))
            return false;
        i += cl + 1;
    }
    return true;
}

bool podspec_image_valid(const char *image)
{
    struct image_ref r;

    return parse_image(image, &r);
}

/* SetDefaults_Container: Always for ":latest" or no tag and no digest, else IfNotPresent
 * (also for a reference that does not parse: its tag is "" then). */
static const char *default_pull_policy(const char *image)
{
    struct image_ref r;

    if (!parse_image(image, &r))
        return "IfNotPresent";
    if (r.has_tag)
        return r.tag_len == 6 && !memcmp(r.tag, "latest", 6) ? "Always" : "IfNotPresent";
    return r.has_digest ? "IfNotPresent" : "Always";
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
        rc = sorted_members(v, &mems, &n);
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

static uint32_t fnv1a(const void *p, size_t n, uint32_t h)
{
    const unsigned char *s = p;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= s[i];
        h *= 16777619u;
    }
    return h;
}

#define FNV_BASIS 2166136261u

static int container_hash(const struct kedge_jval *v, uint32_t *out)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    int rc = canon(&b, v);

    if (rc == 0)
        *out = fnv1a(b.data, b.len, FNV_BASIS);
    kedge_buf_cleanup(&b);
    return rc;
}

/* ==== podspec_parse: volumes ============================================================= */

/* Every member of v1.VolumeSource: one of them (non-null) is the volume's type; a member Go
 * does not know is ignored, and a volume with none is an emptyDir (SetDefaults_Volume). */
static const char *const volume_types[] = {
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
};

static int get_mode(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, int *mode)
{
    const struct kedge_jval *v = member(obj, key);
    int64_t n;

    if (!v)
        return 0;
    if (v->type != KEDGE_JNUM || kedge_json_int64(v, &n) < 0)
        return fail_at(x, key, "must be an integer, not %s", jtype_name(v));
    if (n < 0 || n > 0777)
        return fail_at(x, key,
                       "Invalid value: %" PRId64
                       ": must be a number between 0 and 0777 (octal), both inclusive",
                       n);
    *mode = (int)n;
    return 0;
}

static int parse_item(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                      void *ctx)
{
    struct pod_key_path *it = elem;
    const char *problem;
    int rc = 0;

    (void)i;
    (void)ctx;
    it->mode = -1;
    if (e->type != KEDGE_JOBJ)
        rc = fail(x, "must be an object, not %s", jtype_name(e));
    if (rc == 0)
        rc = get_str(x, e, "key", &it->key);
    if (rc == 0)
        rc = get_str(x, e, "path", &it->path);
    if (rc == 0)
        rc = get_mode(x, e, "mode", &it->mode);
    if (rc == 0 && (!it->key || !*it->key))
        rc = fail_at(x, "key", "Required value");
    if (rc == 0 && (!it->path || !*it->path))
        rc = fail_at(x, "path", "Required value");
    if (rc == 0 && (problem = relative_path_problem(it->path)))
        rc = fail_at(x, "path", "Invalid value: \"%.80s\": %s", it->path, problem);
    return rc;
}

static int parse_items(struct parse_ctx *x, const struct kedge_jval *src, struct pod_volume *vol)
{
    return parse_list(x, src, "items", MAX_ITEMS, sizeof(*vol->items), &vol->items, &vol->n_items,
                      parse_item, NULL);
}

static int parse_resource_ref(struct parse_ctx *x, const struct kedge_jval *ref, char **resource,
                              char **container, char **divisor);
static const char *field_subscript(const char *fp, const char *prefix, size_t *len);

/* The fieldPaths a downwardAPI volume may name (validDownwardAPIFieldPathExpressions, the
 * subscripted labels and annotations besides). */
static bool volume_field_ok(const char *fp)
{
    static const char *const ok[] = {"metadata.annotations", "metadata.labels", "metadata.name",
                                     "metadata.namespace", "metadata.uid"};
    size_t i, n;

    for (i = 0; i < sizeof(ok) / sizeof(*ok); i++)
        if (!strcmp(fp, ok[i]))
            return true;
    return field_subscript(fp, "metadata.labels['", &n) ||
           field_subscript(fp, "metadata.annotations['", &n);
}

/* v1.DownwardAPIVolumeFile (validateDownwardAPIVolumeFile). */
static int parse_field_file(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                            void *ctx)
{
    struct pod_field_file *f = elem;
    const struct kedge_jval *fr = NULL, *rr = NULL;
    const char *problem;
    size_t old;
    int rc = 0;

    (void)i;
    (void)ctx;
    f->mode = -1;
    if (e->type != KEDGE_JOBJ)
        return fail(x, "must be an object, not %s", jtype_name(e));
    rc = get_str(x, e, "path", &f->path);
    if (rc == 0)
        rc = get_mode(x, e, "mode", &f->mode);
    if (rc == 0 && (problem = relative_path_problem(f->path)))
        rc = fail_at(x, "path", f->path && *f->path ? "Invalid value: \"%.80s\": %s" : "%.0s%s",
                     f->path ? f->path : "", problem);
    if (rc == 0)
        rc = get_obj(x, e, "fieldRef", &fr);
    if (rc == 0)
        rc = get_obj(x, e, "resourceFieldRef", &rr);
    if (rc == 0 && fr && rr)
        rc = fail(x, "Invalid value: \"resource\": fieldRef and resourceFieldRef can not be "
                     "specified simultaneously");
    if (rc == 0 && !fr && !rr)
        rc = fail(x, "Required value: one of fieldRef and resourceFieldRef is required");
    if (rc < 0)
        return rc;
    if (fr) {
        old = path_key(x, "fieldRef");
        rc = get_str(x, fr, "fieldPath", &f->field_path);
        if (rc == 0 && (!f->field_path || !*f->field_path))
            rc = fail_at(x, "fieldPath", "Required value");
        if (rc == 0 && !volume_field_ok(f->field_path))
            rc = fail_at(x, "fieldPath",
                         "Unsupported value: \"%.80s\": supported values: "
                         "\"metadata.annotations\", \"metadata.labels\", \"metadata.name\", "
                         "\"metadata.namespace\", \"metadata.uid\"",
                         f->field_path);
    } else {
        old = path_key(x, "resourceFieldRef");
        rc = parse_resource_ref(x, rr, &f->resource, &f->container, &f->divisor);
        if (rc == 0 && !f->container)
            rc = fail_at(x, "containerName", "Required value");
    }
    path_pop(x, old);
    return rc;
}

static int parse_field_files(struct parse_ctx *x, const struct kedge_jval *src,
                             struct pod_field_file **out, size_t *n)
{
    return parse_list(x, src, "items", MAX_ITEMS, sizeof(**out), out, n, parse_field_file, NULL);
}

/* serviceAccountToken (validateProjectionSources): a path, at least 10 minutes. */
static int parse_token_projection(struct parse_ctx *x, const struct kedge_jval *t,
                                  struct pod_projection *pr)
{
    const char *problem;
    int rc;

    pr->kind = PROJ_TOKEN;
    pr->expiration_s = 3600; /* SetDefaults_ServiceAccountTokenProjection */
    rc = get_str(x, t, "audience", &pr->audience);
    if (rc == 0 && !pr->audience && !(pr->audience = kedge_strdup("")))
        rc = -ENOMEM;
    if (rc == 0)
        rc = get_str(x, t, "path", &pr->path);
    if (rc == 0)
        rc = get_int(x, t, "expirationSeconds", INT64_MIN, INT64_MAX, &pr->expiration_s);
    if (rc == 0 && pr->expiration_s < 600)
        rc = fail_at(x, "expirationSeconds",
                     "Invalid value: %" PRId64 ": may not specify a duration less than 10 minutes",
                     pr->expiration_s);
    if (rc == 0 && pr->expiration_s > (int64_t)1 << 32)
        rc = fail_at(x, "expirationSeconds",
                     "Invalid value: %" PRId64 ": may not specify a duration larger than 2^32 "
                     "seconds",
                     pr->expiration_s);
    if (rc == 0 && (problem = relative_path_problem(pr->path)))
        rc = fail_at(x, "path", pr->path && *pr->path ? "Invalid value: \"%.80s\": %s" : "%.0s%s",
                     pr->path ? pr->path : "", problem);
    return rc;
}

/* v1.VolumeProjection: at most one source each (an empty one projects nothing). */
static int parse_projection(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                            void *ctx)
{
    static const char *const kinds[] = {"secret", "downwardAPI", "configMap",
                                        "serviceAccountToken"};
    struct pod_projection *pr = elem;
    const struct kedge_jval *src = NULL, *m;
    size_t k, which = 0, count = 0, old;
    int rc = 0;

    (void)i;
    (void)ctx;
    if (e->type != KEDGE_JOBJ)
        return fail(x, "must be an object, not %s", jtype_name(e));
    for (k = 0; k < sizeof(kinds) / sizeof(*kinds); k++)
        if ((m = member(e, kinds[k]))) {
            count++;
            src = m;
            which = k;
        }
    if (count > 1)
        return fail(x, "Forbidden: may not specify more than 1 volume type");
    if (!count)
        return 0;
    old = path_key(x, kinds[which]);
    if (src->type != KEDGE_JOBJ) {
        rc = fail(x, "must be an object, not %s", jtype_name(src));
    } else if (which == 1) {
        pr->kind = PROJ_DOWNWARD;
        rc = parse_field_files(x, src, &pr->fields, &pr->n_fields);
    } else if (which == 3) {
        rc = parse_token_projection(x, src, pr);
    } else {
        pr->kind = which == 0 ? PROJ_SECRET : PROJ_CONFIGMAP;
        rc = get_str(x, src, "name", &pr->name);
        if (rc == 0 && (!pr->name || !*pr->name))
            rc = fail_at(x, "name", "Required value");
        if (rc == 0)
            rc = get_bool(x, src, "optional", &pr->optional);
        if (rc == 0)
            rc = parse_list(x, src, "items", MAX_ITEMS, sizeof(*pr->items), &pr->items,
                            &pr->n_items, parse_item, NULL);
    }
    path_pop(x, old);
    return rc;
}

static int parse_volume_source(struct parse_ctx *x, const char *type, const struct kedge_jval *src,
                               struct pod_volume *vol)
{
    static const char *const hp_types[] = {
        "",       "DirectoryOrCreate", "Directory",  "FileOrCreate", "File",
        "Socket", "CharDevice",        "BlockDevice"};
    const struct kedge_jval *v;
    size_t i, old = path_key(x, type);
    int rc = 0;

    if (src->type != KEDGE_JOBJ) {
        rc = fail(x, "must be an object, not %s", jtype_name(src));
        goto out;
    }
    if (!strcmp(type, "emptyDir")) {
        vol->kind = VOL_EMPTYDIR;
        rc = get_str(x, src, "medium", &vol->medium);
        if (rc == 0 && (v = member(src, "sizeLimit")))
            rc = get_quantity(x, "sizeLimit", v, 0, &vol->size_limit);
    } else if (!strcmp(type, "hostPath")) {
        vol->kind = VOL_HOSTPATH;
        rc = get_str(x, src, "path", &vol->source);
        if (rc == 0)
            rc = get_str(x, src, "type", &vol->host_path_type);
        if (rc == 0 && (!vol->source || !*vol->source))
            rc = fail_at(x, "path", "Required value");
        for (i = 0; rc == 0 && vol->host_path_type && i < sizeof(hp_types) / sizeof(*hp_types); i++)
            if (!strcmp(vol->host_path_type, hp_types[i]))
                break;
        if (rc == 0 && vol->host_path_type && i == sizeof(hp_types) / sizeof(*hp_types))
            rc = fail_at(x, "type",
                         "Unsupported value: \"%.80s\": supported values: \"\", "
                         "\"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", "
                         "\"File\", \"FileOrCreate\", \"Socket\"",
                         vol->host_path_type);
    } else if (!strcmp(type, "projected")) {
        vol->kind = VOL_PROJECTED;
        rc = get_mode(x, src, "defaultMode", &vol->default_mode);
        if (rc == 0)
            rc = parse_list(x, src, "sources", MAX_ITEMS, sizeof(*vol->sources), &vol->sources,
                            &vol->n_sources, parse_projection, NULL);
    } else if (!strcmp(type, "downwardAPI")) {
        vol->kind = VOL_DOWNWARD;
        rc = get_mode(x, src, "defaultMode", &vol->default_mode);
        if (rc == 0)
            rc = parse_field_files(x, src, &vol->fields, &vol->n_fields);
    } else {
        const char *name_key = !strcmp(type, "secret") ? "secretName" : "name";
        vol->kind = !strcmp(type, "secret") ? VOL_SECRET : VOL_CONFIGMAP;
        rc = get_str(x, src, name_key, &vol->source);
        if (rc == 0 && (!vol->source || !*vol->source))
            rc = fail_at(x, name_key, "Required value");
        if (rc == 0)
            rc = get_mode(x, src, "defaultMode", &vol->default_mode);
        if (rc == 0)
            rc = get_bool(x, src, "optional", &vol->optional);
        if (rc == 0)
            rc = parse_items(x, src, vol);
    }
out:
    path_pop(x, old);
    return rc;
}

static int parse_volume(struct parse_ctx *x, const struct kedge_jval *v, struct pod_volume *vol)
{
    const struct kedge_jval *src = NULL, *m;
    const char *type = NULL;
    size_t i, count = 0;
    int rc;

    vol->default_mode = 0644;
    if (v->type != KEDGE_JOBJ)
        return fail(x, "must be an object, not %s", jtype_name(v));
    rc = get_str(x, v, "name", &vol->name);
    if (rc == 0)
        rc = check_label(x, "name", vol->name);
    if (rc < 0)
        return rc;
    for (i = 0; i < sizeof(volume_types) / sizeof(*volume_types); i++) {
        if ((m = member(v, volume_types[i]))) {
            count++;
            src = m;
            type = volume_types[i];
        }
    }
    if (count > 1)
        return fail(x, "Forbidden: may not specify more than 1 volume type");
    if (!count) {
        vol->kind = VOL_EMPTYDIR;
        vol->medium = kedge_strdup("");
        return vol->medium ? 0 : -ENOMEM;
    }
    if (strcmp(type, "emptyDir") && strcmp(type, "hostPath") && strcmp(type, "configMap") &&
        strcmp(type, "secret") && strcmp(type, "projected") && strcmp(type, "downwardAPI")) {
        vol->kind = VOL_UNSUPPORTED;
        vol->unsupported = kedge_strdup(type);
        return vol->unsupported ? 0 : -ENOMEM;
    }
    rc = parse_volume_source(x, type, src, vol);
    if (rc == 0 && vol->kind == VOL_EMPTYDIR && !vol->medium && !(vol->medium = kedge_strdup("")))
        rc = -ENOMEM;
    if (rc == 0 && vol->kind == VOL_HOSTPATH && !vol->host_path_type &&
        !(vol->host_path_type = kedge_strdup("")))
        rc = -ENOMEM;
    return rc;
}

static int parse_volume_elem(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                             void *ctx)
{
    struct pod_volume *vol = elem, *all = vol - i; /* the ones before it, for duplicates */
    int rc = parse_volume(x, e, vol);
    size_t j;

    (void)ctx;
    for (j = 0; rc == 0 && j < i; j++)
        if (!strcmp(all[j].name, vol->name))
            rc = fail_at(x, "name", "Duplicate value: \"%s\"", vol->name);
    return rc;
}

static int parse_volumes(struct parse_ctx *x, const struct kedge_jval *spec, struct pod_spec *p)
{
    return parse_list(x, spec, "volumes", MAX_ITEMS, sizeof(*p->volumes), &p->volumes,
                      &p->n_volumes, parse_volume_elem, NULL);
}

/* ==== podspec_parse: containers ========================================================== */

static int parse_port(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                      void *ctx)
{
    const struct pod_spec *p = ctx;
    struct pod_port *pt = elem;
    int rc = 0;

    (void)i;
    int64_t cp = 0, hp = 0;
    if (e->type != KEDGE_JOBJ)
        rc = fail(x, "must be an object, not %s", jtype_name(e));
    if (rc == 0)
        rc = get_int(x, e, "containerPort", INT64_MIN, INT64_MAX, &cp);
    if (rc == 0 && (cp < 1 || cp > 65535))
        rc = fail_at(x, "containerPort",
                     "Invalid value: %" PRId64 ": must be between 1 and 65535, inclusive", cp);
    if (rc == 0)
        rc = get_int(x, e, "hostPort", 0, 65535, &hp);
    if (rc == 0)
        rc = get_str(x, e, "name", &pt->name);
    if (rc == 0)
        rc = get_str(x, e, "hostIP", &pt->host_ip);
    if (rc == 0)
        rc = get_str(x, e, "protocol", &pt->protocol);
    if (rc == 0 && pt->host_ip && !*pt->host_ip) {
        kedge_free(pt->host_ip);
        pt->host_ip = NULL;
    }
    if (rc == 0 && (!pt->protocol || !*pt->protocol)) {
        kedge_free(pt->protocol);
        if (!(pt->protocol = kedge_strdup("TCP")))
            rc = -ENOMEM;
    }
    if (rc == 0 && strcmp(pt->protocol, "TCP") && strcmp(pt->protocol, "UDP") &&
        strcmp(pt->protocol, "SCTP"))
        rc = fail_at(x, "protocol",
                     "Unsupported value: \"%.40s\": supported values: \"SCTP\", \"TCP\", "
                     "\"UDP\"",
                     pt->protocol);
    pt->container_port = (int)cp;
    /* SetDefaults_PodSpec: with hostNetwork a port is published on the node as is */
    pt->host_port = p->host_network && hp == 0 ? (int)cp : (int)hp;
    return rc;
}

static int parse_ports(struct parse_ctx *x, const struct kedge_jval *v, const struct pod_spec *p,
                       struct pod_container *c)
{
    return parse_list(x, v, "ports", MAX_ITEMS, sizeof(*c->ports), &c->ports, &c->n_ports,
                      parse_port, (void *)(uintptr_t)p);
}

static const char *const field_paths[] = {
    "metadata.name",           "metadata.namespace", "metadata.uid",   "spec.nodeName",
    "spec.serviceAccountName", "status.hostIP",      "status.hostIPs", "status.podIP",
    "status.podIPs",
};

/* metadata.labels['k'] / metadata.annotations['k']: the subscript (within fp), or NULL. */
static const char *field_subscript(const char *fp, const char *prefix, size_t *len)
{
    size_t pl = strlen(prefix), n = strlen(fp);

    if (n < pl + 3 || strncmp(fp, prefix, pl) || strcmp(fp + n - 2, "']"))
        return NULL;
    *len = n - pl - 2;
    return fp + pl;
}

static bool field_path_ok(const char *fp)
{
    size_t i, n;

    for (i = 0; i < sizeof(field_paths) / sizeof(*field_paths); i++)
        if (!strcmp(fp, field_paths[i]))
            return true;
    return field_subscript(fp, "metadata.labels['", &n) ||
           field_subscript(fp, "metadata.annotations['", &n);
}

static const char *const resource_names[] = {"limits.cpu", "limits.memory", "requests.cpu",
                                             "requests.memory"};

/* v1.ResourceFieldSelector (the path is at it): resource one of resource_names, containerName
 * ("" -> NULL), divisor's text (NULL: "1"; it must be greater than 0). */
static int parse_resource_ref(struct parse_ctx *x, const struct kedge_jval *ref, char **resource,
                              char **container, char **divisor)
{
    const struct kedge_jval *div;
    size_t i;
    int rc = get_str(x, ref, "resource", resource);

    if (rc == 0)
        rc = get_str(x, ref, "containerName", container);
    if (rc == 0 && *container && !**container) {
        kedge_free(*container);
        *container = NULL;
    }
    if (rc == 0 && (!*resource || !**resource))
        rc = fail_at(x, "resource", "Required value");
    for (i = 0; rc == 0 && i < 4 && strcmp(*resource, resource_names[i]); i++)
        ;
    if (rc == 0 && i == 4)
        rc = fail_at(x, "resource",
                     "Unsupported value: \"%.80s\": supported values: \"limits.cpu\", "
                     "\"limits.memory\", \"requests.cpu\", \"requests.memory\"",
                     *resource);
    if (rc == 0 && (div = member(ref, "divisor"))) {
        const char *s = NULL;
        size_t len = 0;
        int64_t d = 0;
        rc = get_quantity(x, "divisor", div, strstr(*resource, "cpu") ? 3 : 0, &d);
        if (rc == 0 && d == 0)
            rc = fail_at(x, "divisor", "Invalid value: \"%.*s\": must be greater than 0",
                         (int)div->len, div->str);
        if (rc == 0 && quantity_text(x, "divisor", div, &s, &len) == 0 &&
            !(*divisor = kedge_strndup(s, len)))
            rc = -ENOMEM;
    }
    return rc;
}

static int parse_key_ref(struct parse_ctx *x, const char *key, const struct kedge_jval *ref,
                         struct pod_env *e)
{
    size_t old = path_key(x, key);
    int rc = 0;

    if (ref->type != KEDGE_JOBJ)
        rc = fail(x, "must be an object, not %s", jtype_name(ref));
    if (rc == 0)
        rc = get_str(x, ref, "name", &e->ref_name);
    if (rc == 0)
        rc = get_str(x, ref, "key", &e->ref_key);
    if (rc == 0)
        rc = get_bool(x, ref, "optional", &e->optional);
    if (rc == 0 && (!e->ref_name || !*e->ref_name))
        rc = fail_at(x, "name", "Required value");
    if (rc == 0 && (!e->ref_key || !*e->ref_key))
        rc = fail_at(x, "key", "Required value");
    path_pop(x, old);
    return rc;
}

static int parse_value_from(struct parse_ctx *x, const struct kedge_jval *vf, struct pod_env *e)
{
    static const char *const refs[] = {"configMapKeyRef", "secretKeyRef", "fieldRef",
                                       "resourceFieldRef"};
    const struct kedge_jval *ref = NULL, *m;
    size_t i, n = 0, which = 0, old;
    int rc = 0;

    for (i = 0; i < 4; i++)
        if ((m = member(vf, refs[i]))) {
            n++;
            ref = m;
            which = i;
        }
    if (n == 0)
        return fail(x, "Invalid value: \"\": must specify one of: `configMapKeyRef`, `fieldRef`, "
                       "`resourceFieldRef` or `secretKeyRef`");
    if (n > 1)
        return fail(x, "Invalid value: \"\": may not have more than one field specified at a time");
    if (which < 2) {
        e->src = which == 0 ? ENV_CONFIGMAP : ENV_SECRET;
        return parse_key_ref(x, refs[which], ref, e);
    }
    old = path_key(x, refs[which]);
    if (ref->type != KEDGE_JOBJ) {
        rc = fail(x, "must be an object, not %s", jtype_name(ref));
    } else if (which == 2) {
        e->src = ENV_FIELD;
        rc = get_str(x, ref, "fieldPath", &e->ref_key);
        if (rc == 0 && (!e->ref_key || !*e->ref_key))
            rc = fail_at(x, "fieldPath", "Required value");
        if (rc == 0 && !field_path_ok(e->ref_key))
            rc = fail_at(x, "fieldPath",
                         "Unsupported value: \"%.80s\": supported values: \"metadata.name\", "
                         "\"metadata.namespace\", \"metadata.uid\", \"metadata.labels['<KEY>']\", "
                         "\"metadata.annotations['<KEY>']\", \"spec.nodeName\", "
                         "\"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", "
                         "\"status.podIP\", \"status.podIPs\"",
                         e->ref_key);
    } else {
        e->src = ENV_RESOURCE;
        rc = parse_resource_ref(x, ref, &e->ref_key, &e->ref_name, &e->value);
    }
    path_pop(x, old);
    return rc;
}

static int parse_env_var(struct parse_ctx *x, const struct kedge_jval *v, struct pod_env *e)
{
    const struct kedge_jval *vf = NULL;
    int rc;

    if (v->type != KEDGE_JOBJ)
        return fail(x, "must be an object, not %s", jtype_name(v));
    rc = get_str(x, v, "name", &e->name);
    if (rc == 0 && (!e->name || !*e->name))
        rc = fail_at(x, "name", "Required value");
    if (rc == 0 && !env_name_ok(e->name))
        rc = fail_at(x, "name",
                     "Invalid value: \"%.80s\": a valid environment variable name must consist "
                     "only of printable ASCII characters other than '='",
                     e->name);
    if (rc == 0)
        rc = get_str(x, v, "value", &e->value);
    if (rc == 0)
        rc = get_obj(x, v, "valueFrom", &vf);
    if (rc < 0)
        return rc;
    if (!vf) {
        e->src = ENV_VALUE;
        if (!e->value && !(e->value = kedge_strdup("")))
            return -ENOMEM;
        return 0;
    }
    if (e->value && *e->value)
        return fail_at(x, "valueFrom",
                       "Invalid value: \"\": may not be specified when `value` is not empty");
    kedge_free(e->value);
    e->value = NULL;
    {
        size_t old = path_key(x, "valueFrom");
        rc = parse_value_from(x, vf, e);
        path_pop(x, old);
    }
    return rc;
}

static int parse_env_elem(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                          void *ctx)
{
    (void)i;
    (void)ctx;
    return parse_env_var(x, e, elem);
}

static int parse_env(struct parse_ctx *x, const struct kedge_jval *v, struct pod_container *c)
{
    return parse_list(x, v, "env", MAX_ITEMS, sizeof(*c->env), &c->env, &c->n_env, parse_env_elem,
                      NULL);
}

static int parse_env_from_one(struct parse_ctx *x, const struct kedge_jval *v,
                              struct pod_env_from *ef)
{
    const struct kedge_jval *cm, *sec, *ref;
    const char *key;
    size_t old;
    int rc;

    if (v->type != KEDGE_JOBJ)
        return fail(x, "must be an object, not %s", jtype_name(v));
    rc = get_str(x, v, "prefix", &ef->prefix);
    if (rc == 0 && ef->prefix && *ef->prefix && !env_name_ok(ef->prefix))
        rc = fail_at(x, "prefix",
                     "Invalid value: \"%.80s\": a valid environment variable name must consist "
                     "only of printable ASCII characters other than '='",
                     ef->prefix);
    if (rc < 0)
        return rc;
    cm = member(v, "configMapRef");
    sec = member(v, "secretRef");
    if (!cm && !sec)
        return fail(x, "Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`");
    if (cm && sec)
        return fail(x, "Invalid value: \"\": may not have more than one field specified at a time");
    ef->secret = sec != NULL;
    ref = sec ? sec : cm;
    key = sec ? "secretRef" : "configMapRef";
    old = path_key(x, key);
    if (ref->type != KEDGE_JOBJ)
        rc = fail(x, "must be an object, not %s", jtype_name(ref));
    if (rc == 0)
        rc = get_str(x, ref, "name", &ef->name);
    if (rc == 0)
        rc = get_bool(x, ref, "optional", &ef->optional);
    if (rc == 0 && (!ef->name || !*ef->name))
        rc = fail_at(x, "name", "Required value");
    path_pop(x, old);
    return rc;
}

static int parse_env_from_elem(struct parse_ctx *x, const struct kedge_jval *e, void *elem,
                               size_t i, void *ctx)
{
    (void)i;
    (void)ctx;
    return parse_env_from_one(x, e, elem);
}

static int parse_env_from(struct parse_ctx *x, const struct kedge_jval *v, struct pod_container *c)
{
    return parse_list(x, v, "envFrom", MAX_ITEMS, sizeof(*c->env_from), &c->env_from,
                      &c->n_env_from, parse_env_from_elem, NULL);
}

static int parse_mount(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                       void *ctx)
{
    struct pod_mount *m = elem;
    int rc = 0;

    (void)i;
    (void)ctx;
    const struct kedge_jval *expr;
    const char *problem;
    if (e->type != KEDGE_JOBJ)
        rc = fail(x, "must be an object, not %s", jtype_name(e));
    if (rc == 0)
        rc = get_str(x, e, "name", &m->name);
    if (rc == 0)
        rc = get_str(x, e, "mountPath", &m->mount_path);
    if (rc == 0)
        rc = get_str(x, e, "subPath", &m->sub_path);
    if (rc == 0)
        rc = get_bool(x, e, "readOnly", &m->read_only);
    if (rc == 0 && (!m->name || !*m->name))
        rc = fail_at(x, "name", "Required value");
    if (rc == 0 && (!m->mount_path || !*m->mount_path))
        rc = fail_at(x, "mountPath", "Required value");
    if (rc == 0 && m->sub_path && !*m->sub_path) {
        kedge_free(m->sub_path);
        m->sub_path = NULL;
    }
    if (rc == 0 && m->sub_path && (problem = relative_path_problem(m->sub_path)))
        rc = fail_at(x, "subPath", "Invalid value: \"%.80s\": %s", m->sub_path, problem);
    if (rc == 0 && (expr = member(e, "subPathExpr")) && (expr->type != KEDGE_JSTR || expr->len))
        rc = fail_at(x, "subPathExpr", "Forbidden: not supported by kedge");
    return rc;
}

static int parse_mounts(struct parse_ctx *x, const struct kedge_jval *v, struct pod_container *c)
{
    return parse_list(x, v, "volumeMounts", MAX_ITEMS, sizeof(*c->mounts), &c->mounts, &c->n_mounts,
                      parse_mount, NULL);
}

/* resources.limits / requests: cpu and memory kept, every other quantity checked. */
static int parse_resource_list(struct parse_ctx *x, const struct kedge_jval *res, const char *key,
                               int64_t *cpu, int64_t *mem, bool *has_cpu, bool *has_mem)
{
    const struct kedge_jval *list, **mems = NULL;
    size_t i, n = 0, old;
    int rc = get_obj(x, res, key, &list);

    if (rc < 0 || !list)
        return rc;
    if (list->n > MAX_ITEMS)
        return fail_at(x, key, "Too many: must have at most %d items", MAX_ITEMS);
    rc = sorted_members(list, &mems, &n);
    old = path_key(x, key);
    for (i = 0; i < n && rc == 0; i++) {
        const struct kedge_jval *m = mems[i];
        char name[64];
        int64_t v = 0;
        (void)snprintf(name, sizeof(name), "%.*s", (int)m->key_len, m->key);
        if (m->type == KEDGE_JNULL)
            continue; /* a null Quantity is the zero quantity */
        if (m->key_len == 3 && !memcmp(m->key, "cpu", 3)) {
            rc = get_quantity(x, name, m, 3, cpu);
            *has_cpu = true;
        } else if (m->key_len == 6 && !memcmp(m->key, "memory", 6)) {
            rc = get_quantity(x, name, m, 0, mem);
            *has_mem = true;
        } else {
            const char *s = NULL;
            size_t len = 0;
            bool neg;
            /* kubelet does not use it: only the syntax matters */
            rc = quantity_text(x, name, m, &s, &len);
            if (rc == 0 && quantity_scaled(s, len, 0, &v, &neg) == KEDGE_EPARSE)
                rc = fail_at(x, name, "quantity \"%.*s\" is not valid",
                             (int)(len > 140 ? 140 : len), s);
        }
    }
    path_pop(x, old);
    kedge_free(mems);
    return rc;
}

static int parse_resources(struct parse_ctx *x, const struct kedge_jval *v, struct pod_container *c)
{
    const struct kedge_jval *res;
    bool lc = false, lm = false, rcpu = false, rmem = false;
    size_t old;
    int rc = get_obj(x, v, "resources", &res);

    if (rc < 0 || !res)
        return rc;
    old = path_key(x, "resources");
    rc = parse_resource_list(x, res, "limits", &c->cpu_limit_milli, &c->mem_limit_bytes, &lc, &lm);
    if (rc == 0)
        rc = parse_resource_list(x, res, "requests", &c->cpu_request_milli, &c->mem_request_bytes,
                                 &rcpu, &rmem);
    path_pop(x, old);
    /* SetDefaults_Pod: a request left out is the limit */
    if (lc && !rcpu)
        c->cpu_request_milli = c->cpu_limit_milli;
    if (lm && !rmem)
        c->mem_request_bytes = c->mem_limit_bytes;
    return rc;
}

/* IntOrString: a number, or the name of one of the container's ports, or (kubelet's last try)
 * a number written as a string. */
static int parse_probe_port(struct parse_ctx *x, const struct kedge_jval *h,
                            const struct pod_container *c, int *port)
{
    const struct kedge_jval *v = member(h, "port");
    int64_t n = -1;
    size_t i;

    if (!v)
        return fail_at(x, "port", "Required value");
    if (v->type == KEDGE_JNUM) {
        if (kedge_json_int64(v, &n) < 0)
            return fail_at(x, "port", "must be an integer, not %.*s",
                           (int)(v->len > 40 ? 40 : v->len), v->str);
    } else if (v->type == KEDGE_JSTR) {
        for (i = 0; i < c->n_ports; i++)
            if (c->ports[i].name && strlen(c->ports[i].name) == v->len &&
                !memcmp(c->ports[i].name, v->str, v->len)) {
                *port = c->ports[i].container_port;
                return 0;
            }
        if (v->len && v->len < 10 && strspn(v->str, "0123456789") == v->len) {
            n = strtoll(v->str, NULL, 10);
        } else {
            return fail_at(x, "port",
                           "Invalid value: \"%.*s\": the container has no port with this name",
                           (int)(v->len > 64 ? 64 : v->len), v->str);
        }
    } else {
        return fail_at(x, "port", "must be an integer or a string, not %s", jtype_name(v));
    }
    if (n < 1 || n > 65535)
        return fail_at(x, "port",
                       "Invalid value: %" PRId64 ": must be between 1 and 65535, inclusive", n);
    *port = (int)n;
    return 0;
}

static int parse_header(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                        void *ctx)
{
    struct pod_kv *hd = elem;
    int rc = 0;

    (void)i;
    (void)ctx;
    if (e->type != KEDGE_JOBJ)
        rc = fail(x, "must be an object, not %s", jtype_name(e));
    if (rc == 0)
        rc = get_str(x, e, "name", &hd->name);
    if (rc == 0)
        rc = get_str(x, e, "value", &hd->value);
    if (rc == 0 && (!hd->name || !*hd->name))
        rc = fail_at(x, "name", "Required value");
    if (rc == 0 && !hd->value && !(hd->value = kedge_strdup("")))
        rc = -ENOMEM;
    return rc;
}

static int parse_http_get(struct parse_ctx *x, const struct kedge_jval *h,
                          const struct pod_container *c, struct pod_probe *pr)
{
    int rc;

    pr->kind = PROBE_HTTP;
    rc = get_str(x, h, "path", &pr->path);
    if (rc == 0)
        rc = get_str(x, h, "host", &pr->host);
    if (rc == 0)
        rc = get_str(x, h, "scheme", &pr->scheme);
    if (rc == 0)
        rc = parse_probe_port(x, h, c, &pr->port);
    if (rc < 0)
        return rc;
    if (pr->host && !*pr->host) {
        kedge_free(pr->host);
        pr->host = NULL;
    }
    /* SetDefaults_HTTPGetAction */
    if (!pr->path || !*pr->path) {
        kedge_free(pr->path);
        if (!(pr->path = kedge_strdup("/")))
            return -ENOMEM;
    }
    if (!pr->scheme || !*pr->scheme) {
        kedge_free(pr->scheme);
        if (!(pr->scheme = kedge_strdup("HTTP")))
            return -ENOMEM;
    }
    if (strcmp(pr->scheme, "HTTP") && strcmp(pr->scheme, "HTTPS"))
        return fail_at(x, "scheme",
                       "Unsupported value: \"%.40s\": supported values: \"HTTP\", \"HTTPS\"",
                       pr->scheme);
    return parse_list(x, h, "httpHeaders", MAX_ITEMS, sizeof(*pr->headers), &pr->headers,
                      &pr->n_headers, parse_header, NULL);
}

static int parse_probe(struct parse_ctx *x, const struct kedge_jval *v, const char *key,
                       const struct pod_container *c, struct pod_probe *pr)
{
    static const char *const handlers[] = {"exec", "httpGet", "tcpSocket", "grpc"};
    const struct kedge_jval *probe, *h = NULL, *m;
    size_t i, n = 0, which = 0, old, oh;
    int64_t t[5] = {0, 0, 0, 0, 0};
    int rc = get_obj(x, v, key, &probe);

    if (rc < 0 || !probe)
        return rc;
    old = path_key(x, key);
    for (i = 0; i < 4; i++)
        if ((m = member(probe, handlers[i]))) {
            n++;
            h = m;
            which = i;
        }
    if (n == 0) {
        rc = fail(x, "Required value: must specify a handler type");
        goto out;
    }
    if (n > 1) {
        rc = fail(x, "Forbidden: may not specify more than 1 handler type");
        goto out;
    }
    oh = path_key(x, handlers[which]);
    if (h->type != KEDGE_JOBJ)
        rc = fail(x, "must be an object, not %s", jtype_name(h));
    else if (which == 0) {
        pr->kind = PROBE_EXEC;
        rc = get_strv(x, h, "command", &pr->command, &pr->n_command);
    } else if (which == 1) {
        rc = parse_http_get(x, h, c, pr);
    } else if (which == 2) {
        pr->kind = PROBE_TCP;
        rc = get_str(x, h, "host", &pr->host);
        if (rc == 0 && pr->host && !*pr->host) {
            kedge_free(pr->host);
            pr->host = NULL;
        }
        if (rc == 0)
            rc = parse_probe_port(x, h, c, &pr->port);
    } else {
        rc = fail(x, "Forbidden: gRPC probes are not supported by kedge");
    }
    path_pop(x, oh);
    if (rc == 0)
        rc = get_int(x, probe, "initialDelaySeconds", 0, INT32_MAX, &t[0]);
    if (rc == 0)
        rc = get_int(x, probe, "periodSeconds", 0, INT32_MAX, &t[1]);
    if (rc == 0)
        rc = get_int(x, probe, "timeoutSeconds", 0, INT32_MAX, &t[2]);
    if (rc == 0)
        rc = get_int(x, probe, "successThreshold", 0, INT32_MAX, &t[3]);
    if (rc == 0)
        rc = get_int(x, probe, "failureThreshold", 0, INT32_MAX, &t[4]);
    /* SetDefaults_Probe: 0 is "not set" */
    pr->initial_delay_s = (int)t[0];
    pr->period_s = t[1] ? (int)t[1] : 10;
    pr->timeout_s = t[2] ? (int)t[2] : 1;
    pr->success_threshold = t[3] ? (int)t[3] : 1;
    pr->failure_threshold = t[4] ? (int)t[4] : 3;
out:
    path_pop(x, old);
    return rc;
}

static bool name_taken(const struct pod_container *list, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (list[i].name && !strcmp(list[i].name, name))
            return true;
    return false;
}

/* c is element i of its list; the containers parsed before it (both lists) are complete. */
static int parse_container(struct parse_ctx *x, const struct kedge_jval *v,
                           const struct pod_spec *p, struct pod_container *c,
                           const struct pod_container *list, size_t i)
{
    int rc;

    if (v->type != KEDGE_JOBJ)
        return fail(x, "must be an object, not %s", jtype_name(v));
    rc = container_hash(v, &c->hash);
    if (rc == 0)
        rc = get_str(x, v, "name", &c->name);
    if (rc == 0)
        rc = check_label(x, "name", c->name);
    if (rc == 0 && (name_taken(list, i, c->name) ||
                    (list != p->init_containers &&
                     name_taken(p->init_containers, p->n_init_containers, c->name))))
        rc = fail_at(x, "name", "Duplicate value: \"%s\"", c->name);
    if (rc == 0)
        rc = get_str(x, v, "image", &c->image);
    if (rc == 0 && !c->image && !(c->image = kedge_strdup("")))
        rc = -ENOMEM;
    if (rc == 0)
        rc = get_str(x, v, "imagePullPolicy", &c->pull_policy);
    if (rc == 0 && c->pull_policy && *c->pull_policy && strcmp(c->pull_policy, "Always") &&
        strcmp(c->pull_policy, "IfNotPresent") && strcmp(c->pull_policy, "Never"))
        rc = fail_at(x, "imagePullPolicy",
                     "Unsupported value: \"%.40s\": supported values: \"Always\", "
                     "\"IfNotPresent\", \"Never\"",
                     c->pull_policy);
    if (rc == 0 && (!c->pull_policy || !*c->pull_policy)) {
        kedge_free(c->pull_policy);
        if (!(c->pull_policy = kedge_strdup(default_pull_policy(c->image))))
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = get_strv(x, v, "command", &c->command, &c->n_command);
    if (rc == 0)
        rc = get_strv(x, v, "args", &c->args, &c->n_args);
    if (rc == 0)
        rc = get_str(x, v, "workingDir", &c->working_dir);
    if (rc == 0 && c->working_dir && !*c->working_dir) {
        kedge_free(c->working_dir);
        c->working_dir = NULL;
    }
    if (rc == 0)
        rc = parse_ports(x, v, p, c);
    if (rc == 0)
        rc = parse_env(x, v, c);
    if (rc == 0)
        rc = parse_env_from(x, v, c);
    if (rc == 0)
        rc = parse_mounts(x, v, c);
    if (rc == 0)
        rc = parse_resources(x, v, c);
    if (rc == 0)
        rc = parse_probe(x, v, "livenessProbe", c, &c->liveness);
    if (rc == 0)
        rc = parse_probe(x, v, "readinessProbe", c, &c->readiness);
    if (rc == 0)
        rc = parse_probe(x, v, "startupProbe", c, &c->startup);
    if (rc == 0)
        rc = get_bool(x, v, "tty", &c->tty);
    if (rc == 0)
        rc = get_bool(x, v, "stdin", &c->stdin_open);
    return rc;
}

static int parse_container_elem(struct parse_ctx *x, const struct kedge_jval *e, void *elem,
                                size_t i, void *ctx)
{
    struct pod_container *c = elem;

    return parse_container(x, e, ctx, c, c - i, i);
}

static int parse_containers(struct parse_ctx *x, const struct kedge_jval *spec, const char *key,
                            struct pod_spec *p, struct pod_container **out, size_t *n_out)
{
    return parse_list(x, spec, key, MAX_CONTAINERS, sizeof(**out), out, n_out, parse_container_elem,
                      p);
}

/* ==== podspec_parse: the pod ============================================================= */

static bool uid_ok(const char *s)
{
    size_t n = strlen(s);

    /* a UUID in practice; nothing that would break the container name's '_' fields */
    return n && n <= 128 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789-.") == n;
}

static int parse_metadata(struct parse_ctx *x, const struct kedge_jval *root, struct pod_spec *p)
{
    const struct kedge_jval *md, *v;
    size_t old;
    int rc = get_obj(x, root, "metadata", &md);

    if (rc < 0)
        return rc;
    old = path_key(x, "metadata");
    if (!md) {
        rc = fail_at(x, "name", "Required value");
        goto out;
    }
    rc = get_str(x, md, "name", &p->name);
    if (rc == 0)
        rc = get_str(x, md, "namespace", &p->ns);
    if (rc == 0)
        rc = get_str(x, md, "uid", &p->uid);
    if (rc < 0)
        goto out;
    if (!p->name || !*p->name) {
        rc = fail_at(x, "name", "Required value");
        goto out;
    }
    if (!dns_subdomain(p->name)) {
        rc = fail_at(x, "name", "Invalid value: \"%.80s\": " SUBDOMAIN_MSG, p->name);
        goto out;
    }
    if (!p->ns || !*p->ns) {
        kedge_free(p->ns);
        if (!(p->ns = kedge_strdup("default"))) {
            rc = -ENOMEM;
            goto out;
        }
    }
    rc = check_label(x, "namespace", p->ns);
    if (rc < 0)
        goto out;
    if (!p->uid || !*p->uid) {
        rc = fail_at(x, "uid", "Required value");
        goto out;
    }
    if (!uid_ok(p->uid)) {
        rc = fail_at(x, "uid", "Invalid value: \"%.80s\": must be a UUID", p->uid);
        goto out;
    }
    rc = get_map(x, md, "labels", &p->labels, &p->n_labels);
    if (rc == 0)
        rc = get_map(x, md, "annotations", &p->annotations, &p->n_annotations);
    if (rc == 0 && (v = member(md, "deletionTimestamp"))) {
        if (v->type != KEDGE_JSTR)
            rc = fail_at(x, "deletionTimestamp", "must be a string, not %s", jtype_name(v));
        p->deleting = true;
    }
out:
    path_pop(x, old);
    return rc;
}

static int parse_spec(struct parse_ctx *x, const struct kedge_jval *root, struct pod_spec *p)
{
    const struct kedge_jval *spec;
    char *restart = NULL;
    int64_t grace = 30;
    size_t old;
    int rc;

    p->grace_s = 30;
    p->restart = RESTART_ALWAYS;
    rc = get_obj(x, root, "spec", &spec);
    if (rc < 0 || !spec)
        return rc;
    old = path_key(x, "spec");
    rc = get_str(x, spec, "nodeName", &p->node_name);
    if (rc == 0)
        rc = get_str(x, spec, "serviceAccountName", &p->service_account);
    if (rc == 0 && (!p->service_account || !*p->service_account)) {
        /* serviceAccount: the deprecated alias, still honoured by the API's conversion */
        kedge_free(p->service_account);
        p->service_account = NULL;
        rc = get_str(x, spec, "serviceAccount", &p->service_account);
    }
    if (rc == 0)
        rc = get_str(x, spec, "hostname", &p->hostname);
    if (rc == 0 && p->hostname && !*p->hostname) {
        kedge_free(p->hostname);
        p->hostname = NULL;
    }
    if (rc == 0 && p->hostname)
        rc = check_label(x, "hostname", p->hostname);
    if (rc == 0)
        rc = get_bool(x, spec, "hostNetwork", &p->host_network);
    if (rc == 0)
        rc = get_str(x, spec, "restartPolicy", &restart);
    if (rc == 0 && restart && *restart) {
        if (!strcmp(restart, "Always"))
            p->restart = RESTART_ALWAYS;
        else if (!strcmp(restart, "OnFailure"))
            p->restart = RESTART_ON_FAILURE;
        else if (!strcmp(restart, "Never"))
            p->restart = RESTART_NEVER;
        else
            rc = fail_at(x, "restartPolicy",
                         "Unsupported value: \"%.40s\": supported values: \"Always\", "
                         "\"OnFailure\", \"Never\"",
                         restart);
    }
    kedge_free(restart);
    if (rc == 0)
        rc = get_int(x, spec, "terminationGracePeriodSeconds", INT64_MIN, INT64_MAX, &grace);
    /* the API server turns a negative grace period into 1 */
    p->grace_s = grace < 0 ? 1 : grace;
    if (rc == 0)
        rc = parse_volumes(x, spec, p);
    if (rc == 0)
        rc = parse_containers(x, spec, "initContainers", p, &p->init_containers,
                              &p->n_init_containers);
    if (rc == 0)
        rc = parse_containers(x, spec, "containers", p, &p->containers, &p->n_containers);
    path_pop(x, old);
    return rc;
}

int podspec_parse(const char *json, size_t len, struct pod_spec **out, char *why, size_t why_len)
{
    struct parse_ctx x;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root;
    struct pod_spec *p = NULL;
    int rc;

    *out = NULL;
    memset(&x, 0, sizeof(x));
    x.why = why;
    x.why_len = why_len;
    kedge_set_why(why, why_len, "%s", "");
    if (len > PODSPEC_MAX_JSON)
        return fail(&x, "the pod's JSON is %zu bytes, over the limit of %u", len, PODSPEC_MAX_JSON);
    rc = kedge_json_parse(json, len, &doc);
    if (rc == KEDGE_EPARSE)
        kedge_set_why(why, why_len, "pod: not valid JSON");
    if (rc < 0)
        return rc;
    root = kedge_jdoc_root(doc);
    if (root->type != KEDGE_JOBJ) {
        rc = fail(&x, "must be an object, not %s", jtype_name(root));
        goto out;
    }
    p = kedge_calloc(1, sizeof(*p));
    if (!p) {
        rc = -ENOMEM;
        goto out;
    }
    rc = parse_metadata(&x, root, p);
    if (rc == 0)
        rc = parse_spec(&x, root, p);
out:
    kedge_jdoc_free(doc);
    if (rc < 0) {
        podspec_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static void free_strv(char **v, size_t n)
{
    size_t i;

    for (i = 0; v && i < n; i++)
        kedge_free(v[i]);
    kedge_free(v);
}

static void free_kv(struct pod_kv *kv, size_t n)
{
    size_t i;

    for (i = 0; kv && i < n; i++) {
        kedge_free(kv[i].name);
        kedge_free(kv[i].value);
    }
    kedge_free(kv);
}

static void free_probe(struct pod_probe *pr)
{
    free_strv(pr->command, pr->n_command);
    kedge_free(pr->path);
    kedge_free(pr->host);
    kedge_free(pr->scheme);
    free_kv(pr->headers, pr->n_headers);
}

static void free_containers(struct pod_container *cs, size_t n)
{
    size_t i, j;

    for (i = 0; cs && i < n; i++) {
        struct pod_container *c = &cs[i];
        kedge_free(c->name);
        kedge_free(c->image);
        kedge_free(c->pull_policy);
        free_strv(c->command, c->n_command);
        free_strv(c->args, c->n_args);
        kedge_free(c->working_dir);
        for (j = 0; c->env && j < c->n_env; j++) {
            kedge_free(c->env[j].name);
            kedge_free(c->env[j].value);
            kedge_free(c->env[j].ref_name);
            kedge_free(c->env[j].ref_key);
        }
        kedge_free(c->env);
        for (j = 0; c->env_from && j < c->n_env_from; j++) {
            kedge_free(c->env_from[j].name);
            kedge_free(c->env_from[j].prefix);
        }
        kedge_free(c->env_from);
        for (j = 0; c->ports && j < c->n_ports; j++) {
            kedge_free(c->ports[j].name);
            kedge_free(c->ports[j].protocol);
            kedge_free(c->ports[j].host_ip);
        }
        kedge_free(c->ports);
        for (j = 0; c->mounts && j < c->n_mounts; j++) {
            kedge_free(c->mounts[j].name);
            kedge_free(c->mounts[j].mount_path);
            kedge_free(c->mounts[j].sub_path);
        }
        kedge_free(c->mounts);
        free_probe(&c->liveness);
        free_probe(&c->readiness);
        free_probe(&c->startup);
    }
    kedge_free(cs);
}

static void free_key_paths(struct pod_key_path *items, size_t n)
{
    size_t i;

    for (i = 0; items && i < n; i++) {
        kedge_free(items[i].key);
        kedge_free(items[i].path);
    }
    kedge_free(items);
}

static void free_field_files(struct pod_field_file *f, size_t n)
{
    size_t i;

    for (i = 0; f && i < n; i++) {
        kedge_free(f[i].path);
        kedge_free(f[i].field_path);
        kedge_free(f[i].resource);
        kedge_free(f[i].container);
        kedge_free(f[i].divisor);
    }
    kedge_free(f);
}

static void free_projection(struct pod_projection *pr)
{
    kedge_free(pr->name);
    free_key_paths(pr->items, pr->n_items);
    free_field_files(pr->fields, pr->n_fields);
    kedge_free(pr->audience);
    kedge_free(pr->path);
}

void podspec_free(struct pod_spec *p)
{
    size_t i, j;

    if (!p)
        return;
    kedge_free(p->ns);
    kedge_free(p->name);
    kedge_free(p->uid);
    kedge_free(p->node_name);
    kedge_free(p->service_account);
    kedge_free(p->hostname);
    free_kv(p->labels, p->n_labels);
    free_kv(p->annotations, p->n_annotations);
    free_containers(p->init_containers, p->n_init_containers);
    free_containers(p->containers, p->n_containers);
    for (i = 0; p->volumes && i < p->n_volumes; i++) {
        struct pod_volume *v = &p->volumes[i];
        kedge_free(v->name);
        kedge_free(v->source);
        kedge_free(v->host_path_type);
        kedge_free(v->medium);
        free_key_paths(v->items, v->n_items);
        kedge_free(v->unsupported);
        free_field_files(v->fields, v->n_fields);
        for (j = 0; v->sources && j < v->n_sources; j++)
            free_projection(&v->sources[j]);
        kedge_free(v->sources);
    }
    kedge_free(p->volumes);
    kedge_free(p);
}

/* ==== podspec_container_name ============================================================= */

int podspec_container_name(const struct podspec_create *cc, struct kedge_buf *out)
{
    const struct pod_spec *p = cc->pod;

    return kedge_buf_printf(out, "k8s_%s_%s_%s_%s_%d", cc->c ? cc->c->name : INFRA_CONTAINER_NAME,
                            p->name ? p->name : "", p->ns ? p->ns : "", p->uid ? p->uid : "",
                            cc->attempt);
}

/* ==== podspec_create_body: the environment =============================================== */

struct env_entry {
    char *name;
    char *val;
    size_t len;
};

/* Kubelet's tmpEnv map, kept in first-definition order; slots hash names to index + 1. */
struct envset {
    struct env_entry *e;
    size_t n, cap;
    size_t *slot;
    size_t n_slot; /* a power of two, > 2n */
};

static long env_find(const struct envset *s, const char *name, size_t nlen)
{
    size_t i;

    if (!s->n_slot)
        return -1;
    for (i = fnv1a(name, nlen, FNV_BASIS) & (s->n_slot - 1); s->slot[i];
         i = (i + 1) & (s->n_slot - 1)) {
        const struct env_entry *e = &s->e[s->slot[i] - 1];
        if (strlen(e->name) == nlen && !memcmp(e->name, name, nlen))
            return (long)(s->slot[i] - 1);
    }
    return -1;
}

static void env_slot(size_t *slot, size_t n_slot, const char *name, size_t idx)
{
    size_t j;

    for (j = fnv1a(name, strlen(name), FNV_BASIS) & (n_slot - 1); slot[j];
         j = (j + 1) & (n_slot - 1))
        ;
    slot[j] = idx + 1;
}

static int env_rehash(struct envset *s, size_t n_slot)
{
    size_t *slot = kedge_calloc(n_slot, sizeof(*slot)), i;

    if (!slot)
        return -ENOMEM;
    for (i = 0; i < s->n; i++)
        env_slot(slot, n_slot, s->e[i].name, i);
    kedge_free(s->slot);
    s->slot = slot;
    s->n_slot = n_slot;
    return 0;
}

/* Set name (name[0..nlen)) to val[0..len): copies both. 0 or -ENOMEM (the set unchanged). */
static int env_put(struct envset *s, const char *name, size_t nlen, const char *val, size_t len)
{
    long at = env_find(s, name, nlen);
    char *v = kedge_strndup(val, len), *n;
    int rc;

    if (!v)
        return -ENOMEM;
    if (at >= 0) {
        kedge_free(s->e[at].val);
        s->e[at].val = v;
        s->e[at].len = len;
        return 0;
    }
    if ((s->n + 1) * 2 >= s->n_slot && (rc = env_rehash(s, s->n_slot ? s->n_slot * 2 : 16)) < 0) {
        kedge_free(v);
        return rc;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct env_entry *e = kedge_realloc(s->e, cap * sizeof(*e));
        if (!e) {
            kedge_free(v);
            return -ENOMEM;
        }
        s->e = e;
        s->cap = cap;
    }
    n = kedge_strndup(name, nlen);
    if (!n) {
        kedge_free(v);
        return -ENOMEM;
    }
    s->e[s->n].name = n;
    s->e[s->n].val = v;
    s->e[s->n].len = len;
    env_slot(s->slot, s->n_slot, n, s->n);
    s->n++;
    return 0;
}

static void env_cleanup(struct envset *s)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        kedge_free(s->e[i].name);
        kedge_free(s->e[i].val);
    }
    kedge_free(s->e);
    kedge_free(s->slot);
    memset(s, 0, sizeof(*s));
}

struct cached_obj {
    const char *type; /* "configmap" | "secret" */
    char *name;
    struct kedge_jdoc *doc; /* NULL: not found */
};

struct build {
    const struct podspec_create *cc;
    const struct pod_spec *pod;
    const struct pod_container *c;
    char *why;
    size_t why_len;
    struct envset env;
    struct cached_obj *objs; /* what lookup answered, for this body (kubelet's per-call maps) */
    size_t n_objs, cap_objs;
};

static int bfail(struct build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bfail(struct build *b, const char *fmt, ...)
{
    va_list ap;

    if (b->why && b->why_len) {
        va_start(ap, fmt);
        (void)vsnprintf(b->why, b->why_len, fmt, ap);
        va_end(ap);
    }
    return KEDGE_ESCHEMA;
}

/* The stored object type/name: *root its JSON object, or NULL when it does not exist.
 * Returns 0, KEDGE_ESCHEMA (the store holds something that is not an object), or the lookup's
 * own error (-ENOMEM, -EIO, ...). */
static int get_object(struct build *b, const char *type, const char *name,
                      const struct kedge_jval **root)
{
    const struct podspec_create *cc = b->cc;
    struct kedge_jdoc *doc = NULL;
    char *json = NULL;
    size_t i;
    int rc;

    *root = NULL;
    for (i = 0; i < b->n_objs; i++)
        if (!strcmp(b->objs[i].type, type) && !strcmp(b->objs[i].name, name)) {
            *root = kedge_jdoc_root(b->objs[i].doc);
            return 0;
        }
    rc = cc->lookup ? cc->lookup(cc->lookup_ctx, type, b->pod->ns, name, &json) : -ENOENT;
    if (rc == 0 && !json)
        rc = -ENOENT;
    if (rc == 0) {
        rc = kedge_json_parse(json, strlen(json), &doc);
        if (rc == 0 && kedge_jdoc_root(doc)->type != KEDGE_JOBJ)
            rc = KEDGE_EPARSE;
        if (rc == KEDGE_EPARSE)
            rc = bfail(b, "%s \"%s\": the stored object is not a JSON object", type, name);
    } else if (rc != -ENOENT && rc != -ENOMEM) {
        bfail(b, "%s \"%s\": lookup failed: %s", type, name, kedge_strerror(rc));
    }
    kedge_free(json);
    if (rc < 0 && rc != -ENOENT)
        goto fail;
    if (b->n_objs == b->cap_objs) {
        size_t cap = b->cap_objs ? b->cap_objs * 2 : 4;
        struct cached_obj *o = kedge_realloc(b->objs, cap * sizeof(*o));
        if (!o) {
            rc = -ENOMEM;
            goto fail;
        }
        b->objs = o;
        b->cap_objs = cap;
    }
    b->objs[b->n_objs].name = kedge_strdup(name);
    if (!b->objs[b->n_objs].name) {
        rc = -ENOMEM;
        goto fail;
    }
    b->objs[b->n_objs].type = type;
    b->objs[b->n_objs].doc = doc;
    b->n_objs++;
    *root = kedge_jdoc_root(doc);
    return 0;
fail:
    kedge_jdoc_free(doc);
    return rc;
}

/* One value of a ConfigMap's data (plain) or a Secret's data (base64) into *out (kedge_malloc;
 * NULL when the key is absent). */
static int object_value(struct build *b, const char *type, const char *name,
                        const struct kedge_jval *v, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (v->type == KEDGE_JNULL) {
        *out = kedge_strdup("");
        return *out ? 0 : -ENOMEM;
    }
    if (v->type != KEDGE_JSTR)
        return bfail(b, "%s \"%s\": data[%.*s] is not a string", type, name, (int)v->key_len,
                     v->key);
    if (type[0] == 's') {
        int rc = kedge_base64_decode(v->str, v->len, out, len);
        if (rc == KEDGE_EPARSE)
            return bfail(b, "%s \"%s\": data[%.*s] is not valid base64", type, name,
                         (int)v->key_len, v->key);
        return rc;
    }
    *out = kedge_strndup(v->str, v->len);
    *len = v->len;
    return *out ? 0 : -ENOMEM;
}

/* The object's data member (NULL: none). */
static int object_data(struct build *b, const char *type, const char *name,
                       const struct kedge_jval *root, const struct kedge_jval **data)
{
    *data = member(root, "data");
    if (*data && (*data)->type != KEDGE_JOBJ)
        return bfail(b, "%s \"%s\": data is not an object", type, name);
    return 0;
}

/* Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion): $$ is a literal $,
 * $(NAME) is NAME's value when defined and stays as written otherwise, an unterminated $( and
 * any other $x are kept. Appends to out. */
static int expand(const struct envset *env, const char *in, size_t len, struct kedge_buf *out)
{
    size_t i = 0, checkpoint = 0;
    int rc = 0;

    for (i = 0; i < len && rc == 0; i++) {
        if (in[i] != '$' || i + 1 >= len)
            continue;
        rc = kedge_buf_append(out, in + checkpoint, i - checkpoint);
        if (rc)
            break;
        if (in[i + 1] == '$') {
            rc = kedge_buf_putc(out, '$');
            i += 1;
        } else if (in[i + 1] == '(') {
            const char *close = memchr(in + i + 2, ')', len - i - 2);
            if (close) {
                size_t nlen = (size_t)(close - (in + i + 2));
                long at = env_find(env, in + i + 2, nlen);
                if (at >= 0) /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): found */
                    rc = kedge_buf_append(out, env->e[at].val, env->e[at].len);
                else
                    rc = kedge_buf_append(out, in + i, nlen + 3);
                i += nlen + 2;
            } else {
                rc = kedge_buf_append(out, "$(", 2);
                i += 1;
            }
        } else {
            /* Go's string(input[0]) of a byte: a byte over 0x7f becomes that code point */
            unsigned char c = (unsigned char)in[i + 1];
            char enc[3] = {'$', (char)c, 0};
            size_t n = 2;
            if (c >= 0x80) {
                enc[1] = (char)(0xc0 | (c >> 6));
                enc[2] = (char)(0x80 | (c & 0x3f));
                n = 3;
            }
            rc = kedge_buf_append(out, enc, n);
            i += 1;
        }
        checkpoint = i + 1;
    }
    if (rc == 0)
        rc = kedge_buf_append(out, in + checkpoint, len - checkpoint);
    return rc;
}

static const struct pod_container *find_container(const struct pod_spec *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->n_containers; i++)
        if (!strcmp(p->containers[i].name, name))
            return &p->containers[i];
    for (i = 0; i < p->n_init_containers; i++)
        if (!strcmp(p->init_containers[i].name, name))
            return &p->init_containers[i];
    return NULL;
}

static const char *kv_find(const struct pod_kv *kv, size_t n, const char *key, size_t klen)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strlen(kv[i].name) == klen && !memcmp(kv[i].name, key, klen))
            return kv[i].value;
    return NULL;
}

/* fieldRef (kubelet's podFieldSelectorRuntimeValue): a missing label or annotation is "". */
static int field_value(struct build *b, const char *fp, struct kedge_buf *out)
{
    const struct pod_spec *p = b->pod;
    const char *v = NULL, *sub;
    size_t n;

    if (!strcmp(fp, "metadata.name"))
        v = p->name;
    else if (!strcmp(fp, "metadata.namespace"))
        v = p->ns;
    else if (!strcmp(fp, "metadata.uid"))
        v = p->uid;
    else if (!strcmp(fp, "spec.nodeName"))
        v = p->node_name;
    else if (!strcmp(fp, "spec.serviceAccountName"))
        v = p->service_account;
    else if (!strcmp(fp, "status.podIP") || !strcmp(fp, "status.podIPs"))
        v = b->cc->pod_ip;
    else if (!strcmp(fp, "status.hostIP") || !strcmp(fp, "status.hostIPs"))
        v = b->cc->host_ip;
    else if ((sub = field_subscript(fp, "metadata.labels['", &n)))
        v = kv_find(p->labels, p->n_labels, sub, n);
    else if ((sub = field_subscript(fp, "metadata.annotations['", &n)))
        v = kv_find(p->annotations, p->n_annotations, sub, n);
    else
        return bfail(b, "unsupported fieldPath: %s", fp);
    return kedge_buf_puts(out, v ? v : "");
}

static int64_t node_cpu_milli(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return (n > 0 ? (int64_t)n : 1) * 1000;
}

static int64_t node_memory_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    int64_t m = pages > 0 && page > 0 ? (int64_t)pages * page - (100 << 20) : 0;

    return m > 0 ? m : 0;
}

int podspec_resource_value(const struct pod_container *c, const char *resource, const char *divisor,
                           struct kedge_buf *out)
{
    bool cpu = strstr(resource, "cpu") != NULL, limit = !strncmp(resource, "limits.", 7);
    int64_t v, d = cpu ? 1000 : 1;

    if (divisor && (cpu ? podspec_cpu_milli(divisor, &d) : podspec_bytes(divisor, &d)) < 0)
        return KEDGE_ESCHEMA;
    if (d <= 0)
        d = cpu ? 1000 : 1;
    if (cpu)
        v = limit ? c->cpu_limit_milli : c->cpu_request_milli;
    else
        v = limit ? c->mem_limit_bytes : c->mem_request_bytes;
    if (limit && !v) /* defaultPodLimitsForDownwardAPI: the node's allocatable */
        v = cpu ? node_cpu_milli() : node_memory_bytes();
    return kedge_buf_printf(out, "%" PRId64, v / d + (v % d != 0));
}

const struct pod_container *podspec_find_container(const struct pod_spec *p, const char *name)
{
    return find_container(p, name);
}

/* resourceFieldRef (kubelet's containerResourceRuntimeValue): ceil(value / divisor). */
static int resource_value(struct build *b, const struct pod_env *e, struct kedge_buf *out)
{
    const struct pod_container *c = b->c;
    int rc;

    if (e->ref_name && !(c = find_container(b->pod, e->ref_name)))
        return bfail(b, "container %s not found", e->ref_name);
    rc = podspec_resource_value(c, e->ref_key, e->value, out);
    if (rc == KEDGE_ESCHEMA)
        return bfail(b, "invalid divisor %s", e->value);
    return rc;
}

/* envFrom: every key of the object's data, prefixed, in key order. */
static int env_from_object(struct build *b, const struct pod_env_from *ef)
{
    const char *type = ef->secret ? "secret" : "configmap";
    const struct kedge_jval *root, *data, **mems = NULL;
    struct kedge_buf name = KEDGE_BUF_INIT;
    size_t i, n = 0;
    int rc = get_object(b, type, ef->name, &root);

    if (rc < 0)
        return rc;
    if (!root)
        return ef->optional ? 0 : bfail(b, "%s \"%s\" not found", type, ef->name);
    rc = object_data(b, type, ef->name, root, &data);
    if (rc < 0 || !data)
        return rc;
    rc = sorted_members(data, &mems, &n);
    for (i = 0; i < n && rc == 0; i++) {
        char *val = NULL;
        size_t len = 0;
        kedge_buf_reset(&name);
        rc = kedge_buf_puts(&name, ef->prefix ? ef->prefix : "");
        if (rc == 0)
            rc = kedge_buf_append(&name, mems[i]->key, mems[i]->key_len);
        if (rc < 0)
            break;
        /* kubelet skips keys that are not valid variable names (and reports them in an event) */
        if (strlen(name.data) != name.len || !env_name_ok(name.data))
            continue;
        rc = object_value(b, type, ef->name, mems[i], &val, &len);
        if (rc == 0)
            rc = env_put(&b->env, name.data, name.len, val, len);
        kedge_free(val);
    }
    kedge_free(mems);
    kedge_buf_cleanup(&name);
    return rc;
}

/* configMapKeyRef / secretKeyRef. *found false: optional and missing (the variable is not set). */
static int env_key_ref(struct build *b, const struct pod_env *e, char **val, size_t *len,
                       bool *found)
{
    bool secret = e->src == ENV_SECRET;
    const char *type = secret ? "secret" : "configmap";
    const struct kedge_jval *root, *data, *v;
    int rc = get_object(b, type, e->ref_name, &root);

    *found = false;
    if (rc < 0)
        return rc;
    if (!root)
        return e->optional ? 0 : bfail(b, "%s \"%s\" not found", type, e->ref_name);
    rc = object_data(b, type, e->ref_name, root, &data);
    if (rc < 0)
        return rc;
    v = data ? kedge_json_get_exact(data, e->ref_key, strlen(e->ref_key)) : NULL;
    if (!v)
        return e->optional ? 0
                           : bfail(b, "couldn't find key %s in %s %s/%s", e->ref_key,
                                   secret ? "Secret" : "ConfigMap", b->pod->ns, e->ref_name);
    rc = object_value(b, type, e->ref_name, v, val, len);
    *found = rc == 0;
    return rc;
}

/* Kubelet's makeEnvironmentVariables into b->env. */
static int resolve_env(struct build *b)
{
    const struct pod_container *c = b->c;
    struct kedge_buf tmp = KEDGE_BUF_INIT;
    size_t i;
    int rc = 0;

    for (i = 0; i < c->n_env_from && rc == 0; i++)
        rc = env_from_object(b, &c->env_from[i]);
    for (i = 0; i < c->n_env && rc == 0; i++) {
        const struct pod_env *e = &c->env[i];
        char *val = NULL;
        size_t len = 0;
        bool found = true;
        kedge_buf_reset(&tmp);
        switch (e->src) {
        case ENV_VALUE:
            rc = expand(&b->env, e->value ? e->value : "", e->value ? strlen(e->value) : 0, &tmp);
            break;
        case ENV_CONFIGMAP:
        case ENV_SECRET:
            rc = env_key_ref(b, e, &val, &len, &found);
            break;
        case ENV_FIELD:
            rc = field_value(b, e->ref_key, &tmp);
            break;
        case ENV_RESOURCE:
            rc = resource_value(b, e, &tmp);
            break;
        }
        if (rc == 0 && found)
            rc =
                val ? env_put(&b->env, e->name, strlen(e->name), val, len)
                    : env_put(&b->env, e->name, strlen(e->name), tmp.data ? tmp.data : "", tmp.len);
        kedge_free(val);
    }
    kedge_buf_cleanup(&tmp);
    return rc;
}

/* ==== podspec_create_body: the JSON ======================================================= */

struct label {
    const char *key, *value;
};

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct label *)a)->key, ((const struct label *)b)->key);
}

/* Labels: a Go map, so sorted by key. */
static void write_labels(struct kedge_jw *w, const struct build *b, const char *hash)
{
    const struct podspec_create *cc = b->cc;
    struct label l[8];
    char restarts[24];
    size_t n = 0, i;

    (void)snprintf(restarts, sizeof(restarts), "%d", cc->attempt);
    l[n++] = (struct label){LABEL_POD_NAME, b->pod->name};
    l[n++] = (struct label){LABEL_POD_NAMESPACE, b->pod->ns};
    l[n++] = (struct label){LABEL_POD_UID, b->pod->uid};
    l[n++] = (struct label){LABEL_CONTAINER_NAME, b->c ? b->c->name : INFRA_CONTAINER_NAME};
    l[n++] = (struct label){LABEL_CONTAINER_TYPE, b->c ? "container" : "podsandbox"};
    l[n++] = (struct label){LABEL_RESTART_COUNT, restarts};
    l[n++] = (struct label){LABEL_NODE, cc->node ? cc->node : ""};
    if (hash)
        l[n++] = (struct label){LABEL_CONTAINER_HASH, hash};
    qsort(l, n, sizeof(*l), label_cmp);
    kedge_jw_key(w, "Labels");
    kedge_jw_obj_open(w);
    for (i = 0; i < n; i++)
        kedge_jw_kstr(w, l[i].key, l[i].value);
    kedge_jw_obj_close(w);
}

static void write_ulimits(struct kedge_jw *w, const struct podspec_create *cc)
{
    if (cc->nofile <= 0 && cc->nproc <= 0)
        return;
    kedge_jw_key(w, "Ulimits");
    kedge_jw_arr_open(w);
    if (cc->nofile > 0) {
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "Name", "nofile");
        kedge_jw_kint(w, "Hard", cc->nofile);
        kedge_jw_kint(w, "Soft", cc->nofile);
        kedge_jw_obj_close(w);
    }
    if (cc->nproc > 0) {
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "Name", "nproc");
        kedge_jw_kint(w, "Hard", cc->nproc);
        kedge_jw_kint(w, "Soft", cc->nproc);
        kedge_jw_obj_close(w);
    }
    kedge_jw_arr_close(w);
}

static void write_restart_policy(struct kedge_jw *w)
{
    /* kubelet restarts containers (with back-off), never the engine */
    kedge_jw_key(w, "RestartPolicy");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "Name", "no");
    kedge_jw_obj_close(w);
}

struct port_key {
    char key[24]; /* "80/tcp" */
    const struct pod_port *port;
    size_t seq;
};

static int port_key_cmp(const void *pa, const void *pb)
{
    const struct port_key *a = pa, *b = pb;
    int c = strcmp(a->key, b->key);

    return c ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

/* The published ports of every app container (dockershim's makePortsAndBindings), sorted by
 * "port/proto" (Go map order), bindings for one key in the pod's order. */
static int collect_ports(const struct pod_spec *p, struct port_key **out, size_t *n)
{
    size_t i, j, k = 0, total = 0;
    struct port_key *keys;

    *out = NULL;
    *n = 0;
    for (i = 0; i < p->n_containers; i++)
        for (j = 0; j < p->containers[i].n_ports; j++)
            total += p->containers[i].ports[j].host_port > 0;
    if (!total)
        return 0;
    keys = kedge_calloc(total, sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    for (i = 0; i < p->n_containers; i++) {
        for (j = 0; j < p->containers[i].n_ports; j++) {
            const struct pod_port *pt = &p->containers[i].ports[j];
            const char *proto = !strcmp(pt->protocol, "UDP")    ? "udp"
                                : !strcmp(pt->protocol, "SCTP") ? "sctp"
                                                                : "tcp";
            if (pt->host_port <= 0)
                continue;
            (void)snprintf(keys[k].key, sizeof(keys[k].key), "%d/%s", pt->container_port, proto);
            keys[k].port = pt;
            keys[k].seq = k;
            k++;
        }
    }
    qsort(keys, k, sizeof(*keys), port_key_cmp);
    *out = keys;
    *n = k;
    return 0;
}

static void write_exposed_ports(struct kedge_jw *w, const struct port_key *keys, size_t n)
{
    size_t i;

    kedge_jw_key(w, "ExposedPorts");
    kedge_jw_obj_open(w);
    for (i = 0; i < n; i++) {
        if (i && !strcmp(keys[i].key, keys[i - 1].key))
            continue;
        kedge_jw_key(w, keys[i].key);
        kedge_jw_obj_open(w);
        kedge_jw_obj_close(w);
    }
    kedge_jw_obj_close(w);
}

static void write_port_bindings(struct kedge_jw *w, const struct port_key *keys, size_t n)
{
    size_t i;
    char hp[16];

    kedge_jw_key(w, "PortBindings");
    kedge_jw_obj_open(w);
    for (i = 0; i < n; i++) {
        if (!i || strcmp(keys[i].key, keys[i - 1].key)) {
            if (i)
                kedge_jw_arr_close(w);
            kedge_jw_key(w, keys[i].key);
            kedge_jw_arr_open(w);
        }
        (void)snprintf(hp, sizeof(hp), "%d", keys[i].port->host_port);
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "HostIp", keys[i].port->host_ip ? keys[i].port->host_ip : "");
        kedge_jw_kstr(w, "HostPort", hp);
        kedge_jw_obj_close(w);
    }
    if (n)
        kedge_jw_arr_close(w);
    kedge_jw_obj_close(w);
}

/* kubelet's GeneratePodHostNameAndDomain: spec.hostname or the pod's name, cut to 63 characters
 * without a trailing '-' or '.'. */
static void write_hostname(struct kedge_jw *w, const struct pod_spec *p)
{
    const char *h = p->hostname ? p->hostname : p->name;
    size_t n = strlen(h);

    if (n > 63) {
        n = 63;
        while (n && (h[n - 1] == '-' || h[n - 1] == '.'))
            n--;
    }
    kedge_jw_key(w, "Hostname");
    kedge_jw_strn(w, h, n);
}

static int infra_body(struct build *b, struct kedge_jw *w)
{
    const struct podspec_create *cc = b->cc;
    const struct pod_spec *p = b->pod;
    struct port_key *ports = NULL;
    size_t n_ports = 0;
    int rc;

    if (!cc->infra_image)
        return -EINVAL;
    /* with hostNetwork the node's ports are the pod's: nothing to publish, and Docker refuses
     * a Hostname in host mode */
    rc = p->host_network ? 0 : collect_ports(p, &ports, &n_ports);
    if (rc < 0)
        return rc;
    kedge_jw_obj_open(w);
    if (!p->host_network)
        write_hostname(w, p);
    if (n_ports)
        write_exposed_ports(w, ports, n_ports);
    kedge_jw_kstr(w, "Image", cc->infra_image);
    write_labels(w, b, NULL);
    kedge_jw_key(w, "HostConfig");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "NetworkMode", p->host_network ? "host" : "bridge");
    if (n_ports)
        write_port_bindings(w, ports, n_ports);
    write_restart_policy(w);
    write_ulimits(w, cc);
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
    kedge_free(ports);
    return 0;
}

static const struct pod_volume *find_volume(const struct pod_spec *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->n_volumes; i++)
        if (!strcmp(p->volumes[i].name, name))
            return &p->volumes[i];
    return NULL;
}

/* base + "/" + sub with empty and "." elements of sub dropped (filepath.Join, no ".." left by
 * the parser). */
static int join_sub(struct kedge_buf *out, const char *sub)
{
    const char *p = sub;
    int rc = 0;

    while (*p && rc == 0) {
        size_t n = strcspn(p, "/");
        if (n && !(n == 1 && p[0] == '.')) {
            if (!out->len || out->data[out->len - 1] != '/')
                rc = kedge_buf_putc(out, '/');
            if (rc == 0)
                rc = kedge_buf_append(out, p, n);
        }
        p += n;
        if (*p == '/')
            p++;
    }
    return rc;
}

/* "{source}[/{subPath}]:{mountPath}[:ro]" for each mount (kubelet's makeMounts). */
static int write_binds(struct build *b, struct kedge_jw *w)
{
    const struct pod_container *c = b->c;
    struct kedge_buf bind = KEDGE_BUF_INIT;
    size_t i;
    int rc = 0;

    if (!c->n_mounts)
        return 0;
    kedge_jw_key(w, "Binds");
    kedge_jw_arr_open(w);
    for (i = 0; i < c->n_mounts && rc == 0; i++) {
        const struct pod_mount *m = &c->mounts[i];
        const struct pod_volume *v = find_volume(b->pod, m->name);
        bool ro = m->read_only;
        kedge_buf_reset(&bind);
        if (!v) {
            rc = bfail(b, "cannot find volume \"%s\" to mount into container \"%s\"", m->name,
                       c->name);
            break;
        }
        if (v->kind == VOL_HOSTPATH) {
            rc = kedge_buf_puts(&bind, v->source);
        } else if (!b->cc->volumes_dir) {
            rc = -EINVAL;
        } else {
            rc = kedge_buf_printf(&bind, "%s/%s", b->cc->volumes_dir, v->name);
            /* configMap, secret, projected and downwardAPI volumes are read-only mounts
             * (their plugins' GetAttributes say so) */
            ro = ro || v->kind == VOL_CONFIGMAP || v->kind == VOL_SECRET ||
                 v->kind == VOL_PROJECTED || v->kind == VOL_DOWNWARD;
        }
        if (rc == 0 && m->sub_path)
            rc = join_sub(&bind, m->sub_path);
        if (rc == 0 && bind.len && memchr(bind.data, ':', bind.len))
            rc = bfail(b, "volume \"%s\": the path %s has a ':', which a bind cannot carry",
                       m->name, bind.data);
        if (rc == 0 && strchr(m->mount_path, ':'))
            rc = bfail(b, "volumeMount \"%s\": mountPath %s has a ':', which a bind cannot carry",
                       m->name, m->mount_path);
        if (rc == 0)
            rc = kedge_buf_printf(&bind, ":%s%s%s", m->mount_path[0] == '/' ? "" : "/",
                                  m->mount_path, ro ? ":ro" : "");
        if (rc == 0)
            kedge_jw_str(w, bind.data);
    }
    kedge_jw_arr_close(w);
    kedge_buf_cleanup(&bind);
    return rc;
}

/* Entrypoint / Cmd: each element $(VAR)-expanded against the final environment. */
static int write_expanded(struct build *b, struct kedge_jw *w, const char *key, char **v, size_t n)
{
    struct kedge_buf tmp = KEDGE_BUF_INIT;
    size_t i;
    int rc = 0;

    kedge_jw_key(w, key);
    kedge_jw_arr_open(w);
    for (i = 0; i < n && rc == 0; i++) {
        kedge_buf_reset(&tmp);
        rc = expand(&b->env, v[i], strlen(v[i]), &tmp);
        if (rc == 0)
            kedge_jw_strn(w, tmp.data ? tmp.data : "", tmp.len);
    }
    kedge_jw_arr_close(w);
    kedge_buf_cleanup(&tmp);
    return rc;
}

/* kubelet's MilliCPUToShares */
static int64_t cpu_shares(int64_t milli)
{
    int64_t shares;

    if (milli >= 256000)
        return 262144;
    shares = milli * 1024 / 1000;
    return shares < 2 ? 2 : shares;
}

static int app_body(struct build *b, struct kedge_jw *w)
{
    const struct podspec_create *cc = b->cc;
    const struct pod_container *c = b->c;
    struct kedge_buf tmp = KEDGE_BUF_INIT;
    char hash[16];
    size_t i;
    int rc;

    if (!cc->infra_id)
        return -EINVAL;
    if (c->cpu_limit_milli > INT64_MAX / 1000000)
        return bfail(b, "container \"%s\": the cpu limit is too large", c->name);
    rc = resolve_env(b);
    if (rc < 0)
        return rc;
    (void)snprintf(hash, sizeof(hash), "%" PRIu32, c->hash);
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "Tty");
    kedge_jw_bool(w, c->tty);
    kedge_jw_key(w, "OpenStdin");
    kedge_jw_bool(w, c->stdin_open);
    if (b->env.n) {
        kedge_jw_key(w, "Env");
        kedge_jw_arr_open(w);
        for (i = 0; i < b->env.n && rc == 0; i++) {
            kedge_buf_reset(&tmp);
            rc = kedge_buf_printf(&tmp, "%s=", b->env.e[i].name);
            if (rc == 0)
                rc = kedge_buf_append(&tmp, b->env.e[i].val, b->env.e[i].len);
            if (rc == 0)
                kedge_jw_strn(w, tmp.data, tmp.len);
        }
        kedge_jw_arr_close(w);
    }
    if (rc == 0 && c->n_args)
        rc = write_expanded(b, w, "Cmd", c->args, c->n_args);
    kedge_jw_kstr(w, "Image", c->image);
    if (c->working_dir)
        kedge_jw_kstr(w, "WorkingDir", c->working_dir);
    if (rc == 0 && c->n_command)
        rc = write_expanded(b, w, "Entrypoint", c->command, c->n_command);
    write_labels(w, b, hash);
    kedge_jw_key(w, "HostConfig");
    kedge_jw_obj_open(w);
    if (rc == 0)
        rc = write_binds(b, w);
    kedge_buf_reset(&tmp);
    if (rc == 0)
        rc = kedge_buf_printf(&tmp, "container:%s", cc->infra_id);
    if (rc == 0)
        kedge_jw_kstr(w, "NetworkMode", tmp.data);
    write_restart_policy(w);
    kedge_jw_kint(w, "CpuShares", cpu_shares(c->cpu_request_milli));
    if (c->mem_limit_bytes > 0)
        kedge_jw_kint(w, "Memory", c->mem_limit_bytes);
    if (c->cpu_limit_milli > 0)
        kedge_jw_kint(w, "NanoCpus", c->cpu_limit_milli * 1000000);
    write_ulimits(w, cc);
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
    kedge_buf_cleanup(&tmp);
    return rc;
}

int podspec_create_body(const struct podspec_create *cc, struct kedge_buf *out, char *why,
                        size_t why_len)
{
    struct build b;
    struct kedge_jw w;
    size_t start = out->len, i;
    int rc;

    kedge_set_why(why, why_len, "%s", "");
    if (!cc || !cc->pod || !cc->pod->name || !cc->pod->ns || !cc->pod->uid)
        return -EINVAL;
    memset(&b, 0, sizeof(b));
    b.cc = cc;
    b.pod = cc->pod;
    b.c = cc->c;
    b.why = why;
    b.why_len = why_len;
    kedge_jw_init(&w, out);
    rc = cc->c ? app_body(&b, &w) : infra_body(&b, &w);
    if (rc == 0)
        rc = kedge_jw_finish(&w);
    env_cleanup(&b.env);
    for (i = 0; i < b.n_objs; i++) {
        kedge_free(b.objs[i].name);
        kedge_jdoc_free(b.objs[i].doc);
    }
    kedge_free(b.objs);
    if (rc < 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}
