/* kebody: the $ke/ bodies (include/kedge/ke.h) encoded and decoded once, for the plugin, the
 * bridge and kedge-ctl: the hello and its result, the ack topic, the result envelopes
 * ({"ok":...,"code":...,"reason":...} and {"code":...,"reason":...}), the bridge's status, and
 * the ctl / bctl / meta request envelopes {"op":...}.
 *
 * Encoders write the exact bytes the contract shows (key order included); kedge_json's writer
 * escapes strings as Go does. Decoders are as lenient as Go's encoding/json: a member that is
 * absent or of the wrong type leaves its field at zero (or says so, where a caller tells the two
 * apart). Decoded strings point into the parsed document, which the caller frees.
 * Functions return 0, KEDGE_EPARSE (not JSON), KEDGE_ESCHEMA (not an object), -ENOMEM.
 */
#ifndef KEDGE_KEBODY_H
#define KEDGE_KEBODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"
#include "kedge/json.h"

/* ---- $ke/hello and $ke/hello/result ---------------------------------------------------------- */

struct kebody_hello {
    const char *node_name; /* NULL: absent or not a string */
    int64_t version;
};

/* {"node_name":N,"version":V} */
int kebody_hello_encode(struct kedge_buf *b, const struct kebody_hello *h);
int kebody_hello_decode(const char *p, size_t len, struct kedge_jdoc **doc,
                        struct kebody_hello *out);

struct kebody_hello_result {
    bool accepted;
    const char *node_name;
    int64_t outbox_depth; /* accepted only */
    int64_t last_seq;     /* accepted only; -1: not sent / not a number */
    const char *reason;   /* refused only */
};

/* {"accepted":true,"node_name":N,"outbox_depth":D[,"last_seq":S]} or
 * {"accepted":false,"node_name":N,"reason":R} */
int kebody_hello_result_encode(struct kedge_buf *b, const struct kebody_hello_result *r);
int kebody_hello_result_decode(const char *p, size_t len, struct kedge_jdoc **doc,
                               struct kebody_hello_result *out);

/* ---- $ke/ack/{seq} (the body is empty: the topic says it all) -------------------------------- */

#define KEBODY_ACK_TOPIC_MAX (sizeof("$ke/ack/") + 20)
void kebody_ack_topic(char out[KEBODY_ACK_TOPIC_MAX], int64_t seq);
/* The seq of an ack topic: 0, or KEDGE_ESCHEMA (not $ke/ack/{decimal > 0}). */
int kebody_ack_parse(const char *topic, int64_t *seq);

/* ---- result envelopes ------------------------------------------------------------------------ */

struct kebody_result {
    bool ok;            /* "ok" is true */
    int64_t code;       /* 0: none */
    const char *reason; /* NULL: none */
};

/* {"ok":true} or {"ok":false[,"code":C][,"reason":R]} (code 0 and reason NULL are left out):
 * the answer to $ke/down/{ref}, outbox_drop, the bctl actions, a refused meta query. */
void kebody_result_write(struct kedge_jw *w, const struct kebody_result *r);
/* {"code":C,"reason":R}: an error answer to a ctl or bctl query. */
void kebody_error_write(struct kedge_jw *w, int64_t code, const char *reason);
/* {"ok":true,"source":S ... left open for the meta answer's "object" or "objects". */
void kebody_meta_ok_open(struct kedge_jw *w, const char *source);
/* Either envelope's fields from a parsed answer (any JSON; a non-object gives zeros). */
void kebody_result_read(const struct kedge_jval *root, struct kebody_result *out);
int kebody_result_decode(const char *p, size_t len, struct kedge_jdoc **doc,
                         struct kebody_result *out);

/* ---- $ke/status: the bridge's figures ---------------------------------------------------------
 */

struct kebody_status {
    bool connected;
    uint64_t reconnects;
    int64_t last_keepalive_ms, last_delivery_ms;
    int64_t outbox_depth, outbox_oldest_ms, outbox_set_aside;
    int64_t cert_not_after_s;
    int64_t upload_bytes, upload_budget_bytes, uploads_dropped, uploads_refused;
    int64_t dead_letters, coalesced, stale_dropped, refusals, dropped_by_operator;
    bool probing;
};

int kebody_status_encode(struct kedge_buf *b, const struct kebody_status *s);
/* KEDGE_ESCHEMA unless an object; members not there (or not numbers) are 0. */
int kebody_status_decode(const char *p, size_t len, struct kebody_status *out);

/* ---- $ke/ctl, $ke/bctl, $ke/meta requests ---------------------------------------------------- */

enum kebody_num {
    KEBODY_ABSENT, /* not there, or null (Go leaves the field alone) */
    KEBODY_INT,    /* an integer in int64 */
    KEBODY_WRONG,  /* there, but not an integer */
};

struct kebody_request {
    const char *op; /* NULL: absent or not a string */
    /* "id" as a string (ctl device_get) and as a number (bctl entries) */
    const char *id_str;
    size_t id_len;
    enum kebody_num has_id;
    int64_t id;
    enum kebody_num has_seq, has_limit, has_timeout_ms;
    int64_t seq, limit, timeout_ms;
    const char *resource, *type; /* meta; NULL: absent or not a string */
    size_t resource_len, type_len;
};

/* {"op":OP} then, in this order, those set: "id" (string), "resource", "type", "seq", "id"
 * (number), "limit", "timeout_ms". A number is sent when its has_ is KEBODY_INT. */
int kebody_request_encode(struct kedge_buf *b, const struct kebody_request *r);
/* exact_keys: member names matched exactly (the bridge's MetaManager) rather than as Go's
 * decoder does (case-insensitively). A root that is not an object gives KEDGE_ESCHEMA with *doc
 * set and every field empty. */
int kebody_request_decode(const char *p, size_t len, bool exact_keys, struct kedge_jdoc **doc,
                          struct kebody_request *out);

#endif
