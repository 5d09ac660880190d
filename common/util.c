/* Clocks, UUIDs and number parsing behind include/kedge/util.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/util.h"

uint64_t kedge_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t kedge_now_ms(void)
{
    return kedge_now_ns() / 1000000u;
}

int64_t kedge_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A small xorshift generator seeded from getrandom(): UUIDs only need to be unique, and a
 * getrandom() call per id would be a syscall on the broker's hot path. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t x;

    if (!rng_state) {
        if (getrandom(&rng_state, sizeof(rng_state), 0) != (ssize_t)sizeof(rng_state))
            rng_state = kedge_now_ns() ^ (uint64_t)(uintptr_t)&rng_state;
        rng_state |= 1;
    }
    x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void kedge_uuid4(char out[KEDGE_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    uint64_t a = rng_next(), c = rng_next();
    int i, o = 0;

    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void kedge_rfc3339(int64_t unix_s, char out[32])
{
    time_t t = (time_t)unix_s;
    struct tm tm;

    gmtime_r(&t, &tm);
    (void)strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void kedge_rfc3339_now(char out[32])
{
    kedge_rfc3339((int64_t)time(NULL), out);
}

int kedge_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (!s || !*s)
        return -EINVAL;
    errno = 0;
    v = strtol(s, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int kedge_read_secret(const char *path, char **out)
{
    char line[512];
    FILE *f = fopen(path, "re");
    size_t n;
    int rc = 0;

    *out = NULL;
    if (!f)
        return -errno;
    if (!fgets(line, sizeof(line), f)) {
        rc = ferror(f) ? -EIO : 0;
        line[0] = '\0';
    }
    (void)fclose(f);
    n = strcspn(line, "\r\n");
    line[n] = '\0';
    if (rc == 0 && !n)
        rc = KEDGE_ECONFIG;
    if (rc == 0 && !(*out = kedge_strdup(line)))
        rc = -ENOMEM;
    memset(line, 0, sizeof(line));
    return rc;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int kedge_base64_decode(const char *in, size_t len, char **out, size_t *out_len)
{
    size_t i, n = 0, pad = 0;
    uint32_t acc = 0;
    char *o;

    *out = NULL;
    *out_len = 0;
    if (len % 4)
        return KEDGE_EPARSE;
    while (pad < 2 && len > pad && in[len - 1 - pad] == '=')
        pad++;
    o = kedge_malloc(len / 4 * 3 + 1);
    if (!o)
        return -ENOMEM;
    for (i = 0; i < len - pad; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            kedge_free(o);
            return KEDGE_EPARSE;
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            o[n++] = (char)(acc >> 16);
            o[n++] = (char)(acc >> 8);
            o[n++] = (char)acc;
            acc = 0;
        }
    }
    /* the last group: 2 or 3 characters give 1 or 2 bytes; its unused low bits are
     * ignored, as Go's StdEncoding (not Strict) does */
    if (pad == 2) {
        o[n++] = (char)(acc >> 4);
    } else if (pad == 1) {
        o[n++] = (char)(acc >> 10);
        o[n++] = (char)(acc >> 2);
    }
    o[n] = '\0';
    *out = o;
    *out_len = n;
    return 0;
}

int kedge_base64_encode(const void *in, size_t len, struct kedge_buf *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = in;
    size_t i;
    int rc = kedge_buf_reserve(out, (len + 2) / 3 * 4 + 1);

    for (i = 0; rc == 0 && i < len; i += 3) {
        uint32_t acc = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) |
                       (i + 2 < len ? p[i + 2] : 0);
        char q[4] = {abc[acc >> 18 & 63], abc[acc >> 12 & 63],
                     i + 1 < len ? abc[acc >> 6 & 63] : '=', i + 2 < len ? abc[acc & 63] : '='};
        rc = kedge_buf_append(out, q, 4);
    }
    return rc;
}

const char *kedge_go_strerror(int err, char *buf, size_t n)
{
    size_t i;

    snprintf(buf, n, "%s", strerror(err < 0 ? -err : err));
    for (i = 0; buf[i]; i++)
        if (buf[i] >= 'A' && buf[i] <= 'Z')
            buf[i] = (char)(buf[i] - 'A' + 'a');
    return buf;
}

__attribute__((format(printf, 3, 0))) static void vset_why(char *why, size_t why_len,
                                                           const char *fmt, va_list ap)
{
    if (why && why_len)
        (void)vsnprintf(why, why_len, fmt, ap);
}

void kedge_set_why(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vset_why(why, why_len, fmt, ap);
    va_end(ap);
}

int kedge_schema_why(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vset_why(why, why_len, fmt, ap);
    va_end(ap);
    return KEDGE_ESCHEMA;
}
