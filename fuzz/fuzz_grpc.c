/* grpc/grpc.c fed arbitrary bytes: a server connection (raw, or after a valid client preface
 * and SETTINGS) and a client connection with calls open (after a valid server SETTINGS). The
 * first byte picks the end and the read sizes. Properties: no crash or leak (ASan); a
 * connection that refused input reads no more; output stays within the connection's bound;
 * a client's every call is answered exactly once by the time it is freed.
 */
#include <string.h>

#include "fuzz.h"
#include "grpc.h"

#define OUT_BOUND (256u * 1024) /* grpc.c's buffer (128 KiB) and then some */

struct ctx {
    int calls_answered[4];
    unsigned replies;
};

static void on_request(void *vctx, struct grpc_conn *c, int32_t stream, const char *path,
                       const uint8_t *msg, size_t len)
{
    struct ctx *x = vctx;

    (void)msg;
    CHECK(path != NULL);
    CHECK(len <= 4u * 1024 * 1024);
    /* answer every other request now, the rest never (freed open) */
    if (x->replies++ % 2 == 0)
        (void)grpc_reply(c, stream, len % 2 ? GRPC_OK : GRPC_NOT_FOUND, "fuzz\n%", NULL);
}

static void on_response(void *vctx, struct grpc_conn *c, void *tag, int code, const char *message,
                        const uint8_t *msg, size_t len)
{
    struct ctx *x = vctx;
    int i = (int)((int *)tag - x->calls_answered);

    (void)c;
    (void)msg;
    (void)len;
    CHECK(i >= 0 && i < 4);
    CHECK(message != NULL);
    CHECK(code >= 0);
    x->calls_answered[i]++;
}

static const struct grpc_conn_ops ops = {.request = on_request, .response = on_response};

static void drain(struct grpc_conn *c)
{
    const uint8_t *out;
    size_t n;

    while ((n = grpc_conn_output(c, &out)) > 0) {
        CHECK(n <= OUT_BOUND);
        grpc_conn_consumed(c, n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    static const uint8_t settings[] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    struct grpc_limits lim = {64 * 1024, 8};
    struct ctx x = {{0}, 0};
    struct grpc_conn *c;
    uint8_t mode;
    size_t chunk, i;
    int failed = 0;

    if (size < 1)
        return 0;
    mode = data[0];
    data++;
    size--;
    chunk = 1 + (mode >> 3) * 97;
    if (grpc_conn_new((mode & 3) != 2, &ops, &x, &lim, &c) < 0)
        return 0;
    /* 0: a server fed raw bytes; 1: after the client preface; 3: after the preface and a
     * SETTINGS frame; 2: a client with 4 calls open, after the server's SETTINGS */
    if ((mode & 3) == 1 || (mode & 3) == 3)
        CHECK(grpc_conn_recv(c, preface, sizeof(preface) - 1) == 0);
    if ((mode & 3) >= 2)
        CHECK(grpc_conn_recv(c, settings, sizeof(settings)) == 0);
    if ((mode & 3) == 2)
        for (i = 0; i < 4; i++)
            CHECK(grpc_call(c, "/v1beta1.DeviceMapperService/GetDevice", NULL,
                            &x.calls_answered[i]) == 0);
    drain(c);
    for (i = 0; i < size && !failed; i += chunk) {
        size_t n = size - i < chunk ? size - i : chunk;

        failed = grpc_conn_recv(c, data + i, n) < 0;
        if (failed)
            CHECK(!grpc_conn_want_read(c));
        drain(c);
    }
    (void)grpc_conn_done(c);
    (void)grpc_conn_open_streams(c);
    grpc_conn_free(c);
    if ((mode & 3) == 2)
        for (i = 0; i < 4; i++)
            CHECK(x.calls_answered[i] == 1);
    return 0;
}
