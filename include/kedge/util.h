/* Small helpers every binary needs: clocks, UUIDs, RFC 3339 times, bounded number parsing. */
#ifndef KEDGE_UTIL_H
#define KEDGE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define KEDGE_UUID_LEN 36

/* CLOCK_MONOTONIC in ms / ns: for deadlines and intervals. */
uint64_t kedge_now_ms(void);
uint64_t kedge_now_ns(void);
/* Wall clock in Unix ms, as Go's time.Now().UnixNano()/1e6: for timestamps on the wire. */
int64_t kedge_wall_ms(void);
/* Random UUIDv4 text into out[KEDGE_UUID_LEN + 1]. */
void kedge_uuid4(char out[KEDGE_UUID_LEN + 1]);
/* Now as RFC 3339 UTC with second precision ("2024-05-01T10:00:00Z"), as Go's time.RFC3339. */
void kedge_rfc3339_now(char out[32]);
/* The same for a given Unix time in seconds. */
void kedge_rfc3339(int64_t unix_s, char out[32]);
/* Parse a base-10 integer in [min, max], whole string. Returns 0, -EINVAL or -ERANGE. */
int kedge_parse_long(const char *s, long min, long max, long *out);

/* The first line of a secret file (a password shared by the plugin, the bridge and kedge-ctl),
 * without its line end, into *out (kedge_malloc). Returns 0, -errno (cannot open or read),
 * KEDGE_ECONFIG (the first line is empty), -ENOMEM. The stack copy is wiped. */
int kedge_read_secret(const char *path, char **out);

/* Standard base64 (RFC 4648 §4, padded; Go's base64.StdEncoding, which Kubernetes uses for a
 * Secret's data and a ConfigMap's binaryData) into *out (kedge_malloc, NUL-terminated; the
 * bytes may contain NUL: *out_len counts them). Returns 0, KEDGE_EPARSE (not base64), -ENOMEM. */
int kedge_base64_decode(const char *in, size_t len, char **out, size_t *out_len);
/* in[0..len) as standard padded base64 appended to out (Go's base64.StdEncoding, as
 * encoding/json writes a []byte). 0 or -ENOMEM. */
struct kedge_buf;
int kedge_base64_encode(const void *in, size_t len, struct kedge_buf *out);

/* Go's text for a syscall error (strerror in lower case: "connection refused"), as kubelet's
 * messages carry it. err: positive or negative errno. Returns buf. */
const char *kedge_go_strerror(int err, char *buf, size_t n);
/* snprintf into a caller's "why" buffer, which may be NULL or empty (then nothing is written). */
void kedge_set_why(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, returning KEDGE_ESCHEMA: a builder's "this input cannot be used, and here is why". */
int kedge_schema_why(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define kedge_container_of(ptr, type, member)                                                      \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
