/* podspec_check.c: the API server's checks that kubelet relies on: DNS labels and
 * subdomains, relative paths, environment variable names, resource quantities, image
 * references (and the pull policy an image implies).
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

/* ==== names and paths ==================================================================== */

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

bool ps__dns_subdomain(const char *s)
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
int ps__check_label(struct parse_ctx *x, const char *key, const char *s)
{
    if (!s || !*s)
        return ps__fail_at(x, key, "Required value");
    if (strlen(s) > 63)
        return ps__fail_at(x, key, "Invalid value: \"%.80s\": must be no more than 63 characters",
                           s);
    if (!dns_label_n(s, strlen(s)))
        return ps__fail_at(x, key, "Invalid value: \"%.80s\": " LABEL_MSG, s);
    return 0;
}

/* Environment variable names as the API server takes them since RelaxedEnvironmentVariable-
 * Validation: printable ASCII other than '='. */
bool ps__env_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '=')
            return false;
    return true;
}

/* A relative path that stays below its base: no leading '/', no ".." element. */
const char *ps__relative_path_problem(const char *s)
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
int ps__quantity_scaled(const char *s, size_t len, int scale, int64_t *out, bool *neg)
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
    if (!q || ps__quantity_scaled(q, strlen(q), scale, &v, &neg) < 0 || neg)
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
int ps__quantity_text(struct parse_ctx *x, const char *key, const struct kedge_jval *v,
                      const char **s, size_t *n)
{
    if (v->type != KEDGE_JSTR && v->type != KEDGE_JNUM)
        return ps__fail_at(x, key, "must be a quantity (a string), not %s", ps__jtype_name(v));
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
int ps__get_quantity(struct parse_ctx *x, const char *key, const struct kedge_jval *v, int scale,
                     int64_t *out)
{
    const char *s = NULL;
    size_t n = 0;
    bool neg;
    int rc = ps__quantity_text(x, key, v, &s, &n);

    if (rc < 0)
        return rc;
    if (n && memchr(s, '\0', n))
        return ps__fail_at(x, key, "must not contain a NUL character");
    rc = ps__quantity_scaled(s, n, scale, out, &neg);
    if (rc == -ERANGE)
        return ps__fail_at(x, key, "quantity \"%.*s\" is too large", (int)n, s);
    if (rc < 0)
        return ps__fail_at(x, key, "quantity \"%.*s\" is not valid", (int)(n > 140 ? 140 : n), s);
    if (neg)
        return ps__fail_at(x, key, "Invalid value: \"%.*s\": must be greater than or equal to 0",
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
const char *ps__default_pull_policy(const char *image)
{
    struct image_ref r;

    if (!parse_image(image, &r))
        return "IfNotPresent";
    if (r.has_tag)
        return r.tag_len == 6 && !memcmp(r.tag, "latest", 6) ? "Always" : "IfNotPresent";
    return r.has_digest ? "IfNotPresent" : "Always";
}
