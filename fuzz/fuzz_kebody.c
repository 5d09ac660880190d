/* The $ke/ body codec (common/kebody.c) on arbitrary bytes. The first byte picks the body (hello,
 * hello result, result envelope, status, request, ack topic), the rest is its payload.
 *
 * Properties:
 *  - decoding fails only with KEDGE_EPARSE, KEDGE_ESCHEMA or -ENOMEM, and leaves no document
 *    behind on KEDGE_EPARSE;
 *  - what decoded encodes, and that encoding decodes to the same fields and encodes to the same
 *    bytes again (encode -> decode is a fixed point);
 *  - an ack topic that parses is rebuilt from its seq byte for byte.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/kebody.h"

static void check_rc(int rc, const struct kedge_jdoc *doc)
{
    CHECK(rc == 0 || rc == KEDGE_EPARSE || rc == KEDGE_ESCHEMA || rc == -ENOMEM);
    CHECK(rc != KEDGE_EPARSE || doc == NULL);
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static void same_bytes(const struct kedge_buf *a, const struct kedge_buf *b)
{
    CHECK(a->len == b->len && !memcmp(a->data, b->data, a->len));
}

static void hello(const char *p, size_t n)
{
    struct kedge_buf e1 = KEDGE_BUF_INIT, e2 = KEDGE_BUF_INIT;
    struct kedge_jdoc *d1 = NULL, *d2 = NULL;
    struct kebody_hello h, back;
    int rc = kebody_hello_decode(p, n, &d1, &h);

    check_rc(rc, d1);
    if (rc == 0 && h.node_name && kebody_hello_encode(&e1, &h) == 0) {
        CHECK(kebody_hello_decode(e1.data, e1.len, &d2, &back) == 0);
        CHECK(back.node_name && back.version == h.version);
        CHECK(kebody_hello_encode(&e2, &back) == 0);
        same_bytes(&e1, &e2);
    }
    kedge_jdoc_free(d1);
    kedge_jdoc_free(d2);
    kedge_buf_cleanup(&e1);
    kedge_buf_cleanup(&e2);
}

static void hello_result(const char *p, size_t n)
{
    struct kedge_buf e1 = KEDGE_BUF_INIT, e2 = KEDGE_BUF_INIT;
    struct kedge_jdoc *d1 = NULL, *d2 = NULL;
    struct kebody_hello_result r, back;
    int rc = kebody_hello_result_decode(p, n, &d1, &r);

    check_rc(rc, d1);
    CHECK(r.last_seq >= -1);
    if (rc == 0 && r.node_name && kebody_hello_result_encode(&e1, &r) == 0) {
        CHECK(kebody_hello_result_decode(e1.data, e1.len, &d2, &back) == 0);
        CHECK(back.accepted == r.accepted);
        if (r.accepted)
            CHECK(back.outbox_depth == r.outbox_depth && back.last_seq == r.last_seq);
        CHECK(kebody_hello_result_encode(&e2, &back) == 0);
        same_bytes(&e1, &e2);
    }
    kedge_jdoc_free(d1);
    kedge_jdoc_free(d2);
    kedge_buf_cleanup(&e1);
    kedge_buf_cleanup(&e2);
}

static int write_result(struct kedge_buf *b, const struct kebody_result *r)
{
    struct kedge_jw w;

    kedge_jw_init(&w, b);
    kebody_result_write(&w, r);
    return kedge_jw_finish(&w);
}

static void result(const char *p, size_t n)
{
    struct kedge_buf e1 = KEDGE_BUF_INIT, e2 = KEDGE_BUF_INIT;
    struct kedge_jdoc *d1 = NULL, *d2 = NULL;
    struct kebody_result r, back;
    int rc = kebody_result_decode(p, n, &d1, &r);

    check_rc(rc, d1);
    if (rc == 0 && write_result(&e1, &r) == 0) {
        CHECK(kebody_result_decode(e1.data, e1.len, &d2, &back) == 0);
        CHECK(back.ok == r.ok);
        CHECK(r.ok || (back.code == r.code && same_str(back.reason, r.reason)));
        CHECK(write_result(&e2, &back) == 0);
        same_bytes(&e1, &e2);
    }
    kedge_jdoc_free(d1);
    kedge_jdoc_free(d2);
    kedge_buf_cleanup(&e1);
    kedge_buf_cleanup(&e2);
}

static void status(const char *p, size_t n)
{
    struct kedge_buf e1 = KEDGE_BUF_INIT, e2 = KEDGE_BUF_INIT;
    struct kebody_status s, back;
    int rc = kebody_status_decode(p, n, &s);

    check_rc(rc, NULL);
    if (rc == 0 && kebody_status_encode(&e1, &s) == 0) {
        CHECK(kebody_status_decode(e1.data, e1.len, &back) == 0);
        CHECK(kebody_status_encode(&e2, &back) == 0);
        same_bytes(&e1, &e2);
    }
    kedge_buf_cleanup(&e1);
    kedge_buf_cleanup(&e2);
}

static void same_num(enum kebody_num a, int64_t va, enum kebody_num b, int64_t vb)
{
    CHECK((a == KEBODY_INT) == (b == KEBODY_INT));
    CHECK(a != KEBODY_INT || va == vb);
}

static void request(const char *p, size_t n, bool exact)
{
    struct kedge_buf e1 = KEDGE_BUF_INIT, e2 = KEDGE_BUF_INIT;
    struct kedge_jdoc *d1 = NULL, *d2 = NULL;
    struct kebody_request r, back;
    int rc = kebody_request_decode(p, n, exact, &d1, &r);

    check_rc(rc, d1);
    if (rc == 0 && r.op && kebody_request_encode(&e1, &r) == 0) {
        CHECK(kebody_request_decode(e1.data, e1.len, true, &d2, &back) == 0);
        CHECK(back.op && !strncmp(back.op, r.op, strlen(r.op) + 1));
        same_num(r.has_seq, r.seq, back.has_seq, back.seq);
        same_num(r.has_limit, r.limit, back.has_limit, back.limit);
        same_num(r.has_timeout_ms, r.timeout_ms, back.has_timeout_ms, back.timeout_ms);
        CHECK(!r.resource || (back.resource && back.resource_len == r.resource_len &&
                              !memcmp(back.resource, r.resource, r.resource_len)));
        CHECK(!r.type ||
              (back.type && back.type_len == r.type_len && !memcmp(back.type, r.type, r.type_len)));
        CHECK(kebody_request_encode(&e2, &back) == 0);
        if (!(r.id_str && r.has_id == KEBODY_INT)) /* never both: a number is not a string */
            same_bytes(&e1, &e2);
    }
    kedge_jdoc_free(d1);
    kedge_jdoc_free(d2);
    kedge_buf_cleanup(&e1);
    kedge_buf_cleanup(&e2);
}

static void ack(const char *p, size_t n)
{
    char *topic = malloc(n + 1), again[KEBODY_ACK_TOPIC_MAX];
    int64_t seq = 0, seq2 = 0;

    if (!topic)
        return;
    memcpy(topic, p, n);
    topic[n] = '\0';
    if (kebody_ack_parse(topic, &seq) == 0) {
        CHECK(seq > 0);
        kebody_ack_topic(again, seq);
        CHECK(kebody_ack_parse(again, &seq2) == 0 && seq2 == seq);
    }
    free(topic);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data + 1;
    size_t n = size ? size - 1 : 0;

    if (!size)
        return 0;
    switch (data[0] % 7) {
    case 0:
        hello(p, n);
        break;
    case 1:
        hello_result(p, n);
        break;
    case 2:
        result(p, n);
        break;
    case 3:
        status(p, n);
        break;
    case 4:
        request(p, n, false);
        break;
    case 5:
        request(p, n, true);
        break;
    default:
        ack(p, n);
        break;
    }
    return 0;
}
