/* EdgeStream's parsers on arbitrary bytes (cloudbridge/stream/frame.c, request.c): what the
 * cloud sends through the tunnel. The input is one frame as it comes off the websocket.
 *
 * Properties:
 *  - a frame decodes or fails with KEDGE_EPARSE; one that decodes encodes back to a frame that
 *    decodes to the same id, type and data, and the head is never longer than
 *    STREAM_FRAME_HEAD_MAX;
 *  - the data as a *_CONNECT request parses or fails with KEDGE_EPARSE, KEDGE_ESCHEMA or
 *    -ENOMEM, holding nothing on failure; a parsed request's strings are never NULL;
 *  - its query string (and the raw data as one) decodes into pairs no longer than the input,
 *    and every pair is found again by its key.
 */
#include <errno.h>
#include <string.h>

#include "frame.h"
#include "fuzz.h"
#include "kedge/err.h"
#include "request.h"

static void query(const char *raw, size_t n)
{
    struct stream_query q;
    size_t i;

    if (stream_query_parse(raw, n, &q) < 0)
        return;
    for (i = 0; i < q.n; i++) {
        CHECK(q.kv[i].key_len <= n && q.kv[i].value_len <= n);
        CHECK(strlen(q.kv[i].key) <= q.kv[i].key_len);
        if (strlen(q.kv[i].key) == q.kv[i].key_len) {
            CHECK(stream_query_get(&q, q.kv[i].key) != NULL);
            CHECK(stream_query_count(&q, q.kv[i].key) >= 1);
        }
    }
    stream_query_cleanup(&q);
}

static void request(const char *b, size_t n)
{
    struct stream_request r;
    int rc = stream_request_parse(b, n, &r);

    CHECK(rc == 0 || rc == KEDGE_EPARSE || rc == KEDGE_ESCHEMA || rc == -ENOMEM);
    if (rc < 0) {
        CHECK(r.doc == NULL);
        return;
    }
    CHECK(r.method && r.scheme && r.host && r.path && r.raw_query);
    (void)stream_request_header(&r, "Upgrade");
    query(r.raw_query, strlen(r.raw_query));
    stream_request_cleanup(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct stream_frame f, back;
    struct kedge_buf b = KEDGE_BUF_INIT;
    unsigned char head[STREAM_FRAME_HEAD_MAX];
    int rc = stream_frame_decode((const char *)data, size, &f);

    CHECK(rc == 0 || rc == KEDGE_EPARSE);
    query((const char *)data, size);
    if (rc < 0)
        return 0;
    CHECK(f.len <= size && stream_frame_head(head, f.id, f.type) <= STREAM_FRAME_HEAD_MAX);
    if (stream_frame_encode(&b, f.id, f.type, f.data, f.len) == 0) {
        CHECK(stream_frame_decode(b.data, b.len, &back) == 0);
        CHECK(back.id == f.id && back.type == f.type && back.len == f.len);
        CHECK(!f.len || !memcmp(back.data, f.data, f.len));
    }
    kedge_buf_cleanup(&b);
    request(f.data, f.len);
    return 0;
}
