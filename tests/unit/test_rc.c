/* The remote command codec (cloudbridge/stream/remotecommand.h) over WebSocket, driven by the
 * client in rc_fixture.c: kubelet's handshake and refusals, the channels both ways, v5's close
 * signal, fragmentation, ping, the close handshake, bad frames, the exact statuses kubectl
 * reads, allocation failure. SPDY is test_rc_spdy.c.
 */
#define _GNU_SOURCE /* memmem */
#include <check.h>
#include <string.h>

#include "kedge/alloc.h"
#include "rc_fixture.h"
#include "unit.h"

void rc_spdy_tcase(Suite *s);

#define KEY "dGhlIHNhbXBsZSBub25jZQ==" /* RFC 6455 §1.3's example: */
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define WS_HDRS(proto)                                                                             \
    {                                                                                              \
        {                                                                                          \
            "Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Key", KEY,             \
                "Sec-WebSocket-Version", "13", "Sec-WebSocket-Protocol", proto, NULL               \
        }                                                                                          \
    }

#define SUCCESS "{\"metadata\":{},\"status\":\"Success\"}"

static const struct hdrs v5 = WS_HDRS("v5.channel.k8s.io");

/* A v5 exec of "sh -c x" with the given streams, upgraded; the 101 and first message checked. */
static void ws_open(struct rec *t, const char *query)
{
    rec_init(t);
    ck_assert_int_eq(accept_req(t, "GET", query, &v5, false), 0);
    ck_assert_ptr_nonnull(t->rc);
}

static void expect_msg(const struct wsf *f, int op, int ch, const char *body)
{
    ck_assert_int_eq(f->op, op);
    ck_assert(f->fin);
    ck_assert_uint_ge(f->n, 1);
    ck_assert_int_eq(f->p[0], ch);
    ASSERT_BYTES((const char *)f->p + 1, f->n - 1, body);
}

static void expect_close(const struct wsf *f, unsigned code)
{
    ck_assert_int_eq(f->op, 8);
    ck_assert_uint_eq(f->n, 2);
    ck_assert_uint_eq((unsigned)f->p[0] << 8 | f->p[1], code);
}

START_TEST(handshake_v5)
{
    struct rec t;
    struct wsf f[4];

    ws_open(&t, "command=sh&command=-c&command=echo+hi%21&output=1&error=1&container=c1");
    ck_assert_int_eq(t.ready, 1);
    ck_assert(!t.o.in && t.o.out && t.o.err && !t.o.tty);
    ck_assert_uint_eq(t.o.argc, 3);
    ck_assert_str_eq(t.argv0, "sh");
    ck_assert_str_eq(t.o.argv[2], "echo hi!");
    ck_assert_ptr_null(t.o.argv[3]);
    ck_assert_str_eq(t.o.container, "c1");
    ASSERT_BYTES(t.out.data, head_len(&t),
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                 "Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n"
                 "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n");
    /* kubelet's "connection established": an empty message on the lowest writable channel */
    ck_assert_uint_eq(ws_parse(&t, head_len(&t), f, 4), 1);
    expect_msg(&f[0], 2, 1, "");
    rec_cleanup(&t);
}
END_TEST

/* Which subprotocol the server takes from the client's list: the first it serves. */
static const struct {
    const char *offer, *chosen; /* chosen NULL: no header in the 101; "403": refused */
} pick[] = {
    {"v5.channel.k8s.io", "v5.channel.k8s.io"},
    {"v5.channel.k8s.io, v4.channel.k8s.io", "v5.channel.k8s.io"},
    {"v4.channel.k8s.io,channel.k8s.io", "v4.channel.k8s.io"},
    {"v3.channel.k8s.io, v4.base64.channel.k8s.io", "v4.base64.channel.k8s.io"},
    {"foo,  base64.channel.k8s.io ", "base64.channel.k8s.io"},
    {"channel.k8s.io", "channel.k8s.io"},
    {"", NULL},
    {"v3.channel.k8s.io", "403"},
    {"v5.base64.channel.k8s.io", "403"},
};

START_TEST(subprotocols)
{
    struct hdrs h = WS_HDRS(pick[_i].offer);
    struct rec t;
    int rc;

    rec_init(&t);
    rc = accept_req(&t, "GET", "output=1", &h, false);
    if (pick[_i].chosen && !strcmp(pick[_i].chosen, "403")) {
        ck_assert_int_eq(rc, -EINVAL);
        ck_assert_ptr_null(t.rc);
        ck_assert_int_eq(t.ready, 0);
        ASSERT_BUF(&t.out, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    } else if (pick[_i].chosen) {
        char want[128];

        ck_assert_int_eq(rc, 0);
        snprintf(want, sizeof(want), "Sec-WebSocket-Protocol: %s\r\n\r\n", pick[_i].chosen);
        ck_assert_ptr_nonnull(strstr(t.out.data, want));
    } else {
        ck_assert_int_eq(rc, 0);
        ck_assert_ptr_null(strstr(t.out.data, "Sec-WebSocket-Protocol"));
    }
    rec_cleanup(&t);
}
END_TEST

/* x/net/websocket's and kubelet's answers to requests they refuse. */
START_TEST(refusals)
{
    static const struct hdrs nokey = {{"Upgrade", "websocket", "Connection", "keep-alive, Upgrade",
                                       "Sec-WebSocket-Version", "13", NULL}};
    static const struct hdrs v8 = {{"Upgrade", "WebSocket", "Connection", "upgrade",
                                    "Sec-WebSocket-Key", KEY, "Sec-WebSocket-Version", "8", NULL}};
    struct rec t;

    rec_init(&t);
    ck_assert_int_eq(accept_req(&t, "POST", "output=1", &v5, false), -EINVAL);
    ASSERT_BUF(&t.out, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 10\r\n\r\nbad method");
    rec_cleanup(&t);
    rec_init(&t);
    ck_assert_int_eq(accept_req(&t, "GET", "output=1", &nokey, false), -EINVAL);
    ASSERT_BUF(&t.out,
               "HTTP/1.1 400 Bad Request\r\nContent-Length: 27\r\n\r\nmismatch challenge/response");
    rec_cleanup(&t);
    rec_init(&t);
    ck_assert_int_eq(accept_req(&t, "GET", "output=1", &v8, false), -EINVAL);
    ASSERT_BUF(&t.out, "HTTP/1.1 400 Bad Request\r\nContent-Length: 20\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\nbad protocol version");
    rec_cleanup(&t);
    /* kubelet's router: no stream asked for ("true" is not "1": kube-apiserver writes "1") */
    rec_init(&t);
    ck_assert_int_eq(accept_req(&t, "GET", "command=ls&output=true&tty=1&error=1", &v5, false),
                     -EINVAL);
    ASSERT_BUF(&t.out, "HTTP/1.1 400 Bad Request\r\nContent-Length: 52\r\nContent-Type: "
                       "text/plain; charset=utf-8\r\n\r\nyou must specify at least 1 of stdin, "
                       "stdout, stderr");
    rec_cleanup(&t);
}
END_TEST

START_TEST(query_rules)
{
    struct rec t;

    /* the first value counts; a TTY has no stderr; a malformed pair is skipped */
    ws_open(&t, "input=1&input=0&tty=1&error=1&command=a%2Zb&command=%2Fbin%2Fls&output=x;y");
    ck_assert(t.o.in && !t.o.out && !t.o.err && t.o.tty);
    ck_assert_uint_eq(t.o.argc, 1);
    ck_assert_str_eq(t.argv0, "/bin/ls");
    ck_assert_ptr_null(t.o.container);
    rec_cleanup(&t);
}
END_TEST

START_TEST(output_and_exit_codes)
{
    struct rec t;
    struct wsf f[8];
    size_t n;

    ws_open(&t, "command=sh&command=-c&command=exit 3&output=1&error=1");
    ck_assert_int_eq(rc_output(t.rc, RT_STDOUT, "hello", 5), 0);
    ck_assert_int_eq(rc_output(t.rc, RT_STDERR, "oops", 4), 0);
    ck_assert_int_eq(rc_exit(t.rc, 3), 0);
    n = ws_parse(&t, head_len(&t), f, 8);
    ck_assert_uint_eq(n, 5);
    expect_msg(&f[1], 2, 1, "hello");
    expect_msg(&f[2], 2, 2, "oops");
    expect_msg(&f[3], 2, 3,
               "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"command terminated with "
               "non-zero exit code: error executing command [sh -c exit 3], exit code 3\","
               "\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":\"ExitCode\","
               "\"message\":\"3\"}]}}");
    expect_close(&f[4], 1000);
    /* over: nothing more goes out */
    ck_assert_int_eq(rc_output(t.rc, RT_STDOUT, "x", 1), -EPIPE);
    ck_assert_int_eq(rc_exit(t.rc, 0), -EPIPE);
    ck_assert_int_eq(rc_input(t.rc, "x", 1), -EPIPE);
    ck_assert_int_eq(t.closes, 0);
    rec_cleanup(&t);
}
END_TEST

START_TEST(success_fail_attach)
{
    static const char internal[] =
        "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"Internal error occurred: %s: no "
        "such container\",\"reason\":\"InternalError\",\"details\":{\"causes\":[{\"message\":"
        "\"%s: no such container\"}]},\"code\":500}";
    struct rec t;
    struct wsf f[4];
    char want[512];

    ws_open(&t, "command=true&output=1");
    ck_assert_int_eq(rc_exit(t.rc, 0), 0);
    ck_assert_uint_eq(ws_parse(&t, head_len(&t), f, 4), 3);
    expect_msg(&f[1], 2, 3, SUCCESS);
    rec_cleanup(&t);

    ws_open(&t, "command=true&output=1");
    ck_assert_int_eq(rc_fail(t.rc, "no such container"), 0);
    ck_assert_uint_eq(ws_parse(&t, head_len(&t), f, 4), 3);
    snprintf(want, sizeof(want), internal, "error executing command in container",
             "error executing command in container");
    expect_msg(&f[1], 2, 3, want);
    rec_cleanup(&t);

    /* attach: Success whatever the container's code; its own failure text */
    rec_init(&t);
    ck_assert_int_eq(accept_req(&t, "GET", "output=1&input=1", &v5, true), 0);
    ck_assert_int_eq(rc_exit(t.rc, 7), 0);
    ck_assert_uint_eq(ws_parse(&t, head_len(&t), f, 4), 3);
    expect_msg(&f[1], 2, 3, SUCCESS);
    rec_cleanup(&t);
    rec_init(&t);
    ck_assert_int_eq(accept_req(&t, "GET", "output=1", &v5, true), 0);
    ck_assert_int_eq(rc_fail(t.rc, "no such container"), 0);
    ck_assert_uint_eq(ws_parse(&t, head_len(&t), f, 4), 3);
    snprintf(want, sizeof(want), internal, "error attaching to container",
             "error attaching to container");
    expect_msg(&f[1], 2, 3, want);
    rec_cleanup(&t);
}
END_TEST

/* channel.k8s.io (v1 statuses): nothing on success, the message as text on failure. */
START_TEST(v1_status_text)
{
    struct hdrs h = WS_HDRS("channel.k8s.io");
    struct rec t;
    struct wsf f[4];

    rec_init(&t);
    ck_assert_int_eq(accept_req(&t, "GET", "command=true&error=1", &h, false), 0);
    ck_assert_int_eq(rc_exit(t.rc, 0), 0);
    ck_assert_uint_eq(ws_parse(&t, head_len(&t), f, 4), 2);
    expect_msg(&f[0], 2, 2, ""); /* stderr: the lowest writable */
    expect_close(&f[1], 1000);
    rec_cleanup(&t);
    rec_init(&t);
    ck_assert_int_eq(accept_req(&t, "GET", "command=false&input=1", &h, false), 0);
    ck_assert_int_eq(rc_exit(t.rc, 1), 0);
    ck_assert_uint_eq(ws_parse(&t, head_len(&t), f, 4), 3);
    expect_msg(&f[0], 2, 3, ""); /* no output stream: the error channel */
    expect_msg(&f[1], 2, 3,
               "command terminated with non-zero exit code: error executing command [false], "
               "exit code 1");
    rec_cleanup(&t);
}
END_TEST

/* stdin in frames split at every byte, a fragmented message, and v5's close signal. */
START_TEST(stdin_fragments_close)
{
    struct kedge_buf c = KEDGE_BUF_INIT;
    struct rec t;

    ws_open(&t, "command=cat&input=1&output=1");
    ws_msg(&c, 0, "abc", 3);
    ws_frame(&c, false, 2, "\0de", 3); /* [0]"de" ... */
    ws_frame(&c, true, 9, "p", 1);     /* a ping between the fragments */
    ws_frame(&c, false, 0, "fg", 2);
    ws_frame(&c, true, 0, "", 0);
    ws_msg(&c, 1, "ignored", 7);  /* the client writing on stdout: dropped */
    ws_frame(&c, true, 2, "", 0); /* empty message: skipped */
    ws_frame(&c, true, 2, "\xff\x00", 2);
    ck_assert_int_eq(input_bytewise(t.rc, c.data, c.len), 0);
    ASSERT_BUF(&t.in, "abcdefg");
    ck_assert_int_eq(t.stdin_closes, 1);
    ck_assert_ptr_nonnull(memmem(t.out.data, t.out.len, "\x8a\x01p", 3)); /* the pong */
    /* stdin after its EOF is dropped */
    kedge_buf_reset(&c);
    ws_msg(&c, 0, "late", 4);
    ck_assert_int_eq(rc_input(t.rc, c.data, c.len), 0);
    ASSERT_BUF(&t.in, "abcdefg");
    kedge_buf_cleanup(&c);
    rec_cleanup(&t);
}
END_TEST

/* Big messages: a 64-bit length in, 32 KiB frames out. */
START_TEST(large_messages)
{
    size_t big = 100000, i;
    char *p = malloc(big);
    struct kedge_buf c = KEDGE_BUF_INIT;
    struct rec t;
    struct wsf f[8];

    ck_assert_ptr_nonnull(p);
    for (i = 0; i < big; i++)
        p[i] = (char)('a' + i % 26);
    ws_open(&t, "command=cat&input=1&output=1");
    ws_msg(&c, 0, p, big);
    ck_assert_int_eq(rc_input(t.rc, c.data, c.len), 0);
    ck_assert_uint_eq(t.in.len, big);
    ck_assert(!memcmp(t.in.data, p, big));
    ck_assert_int_eq(rc_output(t.rc, RT_STDOUT, p, big), 0);
    ck_assert_uint_eq(ws_parse(&t, head_len(&t), f, 8), 5);
    ck_assert_uint_eq(f[1].n, 32769);
    ck_assert_uint_eq(f[4].n, 1 + big - 3 * 32768);
    ck_assert(!memcmp(f[4].p + 1, p + 3 * 32768, big - 3 * 32768));
    kedge_buf_cleanup(&c);
    free(p);
    rec_cleanup(&t);
}
END_TEST

START_TEST(resize)
{
    struct kedge_buf c = KEDGE_BUF_INIT;
    struct rec t;

    ws_open(&t, "command=sh&input=1&output=1&tty=1");
    ws_msg(&c, 4, "{\"Width\":80,\"Height\":24}\n{\"width\":1", 35);
    ws_msg(&c, 4, "00,\"height\":50}", 15);
    ws_msg(&c, 4, " {\"Width\":70000}", 16); /* not a uint16: kubelet stops reading sizes */
    ws_msg(&c, 4, "{\"Width\":1,\"Height\":2}", 22);
    ck_assert_int_eq(rc_input(t.rc, c.data, c.len), 0);
    ck_assert_int_eq(t.nresize, 2);
    ck_assert_uint_eq(t.w[0], 80);
    ck_assert_uint_eq(t.h[0], 24);
    ck_assert_uint_eq(t.w[1], 100);
    ck_assert_uint_eq(t.h[1], 50);
    kedge_buf_cleanup(&c);
    rec_cleanup(&t);
}
END_TEST

/* base64.channel.k8s.io: text frames, '0'+channel, base64 both ways. */
START_TEST(base64_protocol)
{
    struct hdrs h = WS_HDRS("v4.base64.channel.k8s.io");
    struct kedge_buf c = KEDGE_BUF_INIT;
    struct rec t;
    struct wsf f[4];

    rec_init(&t);
    ck_assert_int_eq(accept_req(&t, "GET", "command=cat&input=1&output=1", &h, false), 0);
    ws_frame(&c, true, 1, "0aGk=", 5);
    ws_frame(&c, true, 1, "0!!!", 4); /* not base64: dropped, as kubelet drops it */
    ws_frame(&c, true, 1, "0Cg==", 5);
    ck_assert_int_eq(rc_input(t.rc, c.data, c.len), 0);
    ASSERT_BUF(&t.in, "hi\n");
    ck_assert_int_eq(rc_output(t.rc, RT_STDOUT, "x", 1), 0);
    ck_assert_int_eq(rc_exit(t.rc, 0), 0);
    ck_assert_uint_eq(ws_parse(&t, head_len(&t), f, 4), 4);
    ck_assert_int_eq(f[0].op, 1);
    ASSERT_BYTES((const char *)f[0].p, f[0].n, "1");
    ASSERT_BYTES((const char *)f[1].p, f[1].n, "1eA==");
    ASSERT_BYTES((const char *)f[2].p, f[2].n, "3eyJtZXRhZGF0YSI6e30sInN0YXR1cyI6IlN1Y2Nlc3MifQ==");
    kedge_buf_cleanup(&c);
    rec_cleanup(&t);
}
END_TEST

START_TEST(client_close)
{
    struct kedge_buf c = KEDGE_BUF_INIT;
    struct rec t;
    struct wsf f[4];

    ws_open(&t, "command=sh&input=1&output=1");
    ws_frame(&c, true, 8, "\x03\xe9", 2);
    ws_msg(&c, 0, "after", 5);
    ck_assert_int_eq(rc_input(t.rc, c.data, c.len), -EPIPE);
    ck_assert_int_eq(t.closes, 1);
    ck_assert_uint_eq(t.in.len, 0);
    ck_assert_uint_eq(ws_parse(&t, head_len(&t), f, 4), 2);
    expect_close(&f[1], 1001); /* its code echoed */
    ck_assert_int_eq(rc_input(t.rc, "x", 1), -EPIPE);
    ck_assert_int_eq(rc_exit(t.rc, 0), -EPIPE);
    ck_assert_int_eq(t.closes, 1);
    kedge_buf_cleanup(&c);
    rec_cleanup(&t);
}
END_TEST

/* Frames a server must refuse (RFC 6455 §5): a 1002 close, closed(), input refused after. */
static const struct {
    const char *bytes;
    size_t n;
    const char *why;
} bad[] = {
    {"\x82\x01\x00", 3, "unmasked"},
    {"\xc2\x80\x00\x00\x00\x00", 6, "reserved"},
    {"\x83\x80\x00\x00\x00\x00", 6, "opcode"},
    {"\x89\xfe\x00\x7e\x00\x00\x00\x00", 8, "control"},
    {"\x09\x80\x00\x00\x00\x00", 6, "control"},
    {"\x80\x80\x00\x00\x00\x00", 6, "continuation"},
    {"\x02\x81\x00\x00\x00\x00\x00\x82\x80\x00\x00\x00\x00", 13, "inside"},
    {"\x88\x81\x00\x00\x00\x00\x03", 7, "1-byte"},
    {"\x88\x82\x00\x00\x00\x00\x03\xec", 8, "invalid code"},
    {"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 14, "2^63"},
    {"\x82\x83\x00\x00\x00\x00\xff\x00\x01", 9, "close signal"},
};

START_TEST(bad_frames)
{
    struct rec t;
    struct wsf f[4];

    ws_open(&t, "command=sh&input=1&output=1");
    ck_assert_int_eq(rc_input(t.rc, bad[_i].bytes, bad[_i].n), -EPROTO);
    ck_assert_int_eq(t.closes, 1);
    ck_assert_msg(strstr(t.why, bad[_i].why), "why: %s", t.why);
    ck_assert_uint_eq(ws_parse(&t, head_len(&t), f, 4), 2);
    expect_close(&f[1], 1002);
    ck_assert_int_eq(rc_input(t.rc, "\x82\x80\0\0\0\0", 6), -EPIPE);
    ck_assert_int_eq(t.closes, 1);
    rec_cleanup(&t);
}
END_TEST

/* A callback may end the rc: the process fails to start inside ready(). */
START_TEST(exit_inside_ready)
{
    struct rec t;
    struct wsf f[4];

    rec_init(&t);
    t.exit_in_ready = 0;
    ck_assert_int_eq(accept_req(&t, "GET", "command=true&output=1", &v5, false), 0);
    ck_assert_uint_eq(ws_parse(&t, head_len(&t), f, 4), 3);
    expect_msg(&f[1], 2, 3, SUCCESS);
    expect_close(&f[2], 1000);
    ck_assert_int_eq(rc_input(t.rc, "\x82\x80\0\0\0\0", 6), -EPIPE);
    ck_assert_int_eq(t.closes, 0);
    rec_cleanup(&t);
}
END_TEST

/* A whole session with the Nth allocation failing: a clean code, no leak, never a crash. */
static int ws_session(void *arg)
{
    const struct kedge_buf *c = arg;
    struct rec t;
    int rc;

    rec_init(&t);
    rc =
        accept_req(&t, "GET", "command=sh&command=-c&command=x&input=1&output=1&tty=1", &v5, false);
    if (rc == 0)
        rc = rc_input(t.rc, c->data, c->len);
    if (rc == 0)
        rc = rc_output(t.rc, RT_STDOUT, "out", 3);
    if (rc == 0)
        rc = rc_exit(t.rc, 2);
    if (rc == 0) {
        ck_assert_int_eq(t.nresize, 1);
        ASSERT_BUF(&t.in, "input");
    }
    rec_cleanup(&t);
    return rc;
}

START_TEST(alloc_failures)
{
    static const int ok[] = {-ENOMEM, -EPIPE};
    struct kedge_buf c = KEDGE_BUF_INIT;

    ws_msg(&c, 0, "input", 5);
    ws_msg(&c, 4, "{\"Width\":3,\"Height\":4}", 22);
    ws_frame(&c, true, 9, "hb", 2);
    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(ws_session, &c, ok, 2), 5);
    unit_libc_allocs();
    kedge_buf_cleanup(&c);
}
END_TEST

START_TEST(reject)
{
    struct rec t;

    rec_init(&t);
    ck_assert_int_eq(rc_reject(&rec_fns, &t, 404, "pod not found"), 0);
    ASSERT_BUF(&t.out, "HTTP/1.1 404 Not Found\r\nContent-Length: 13\r\nContent-Type: text/plain; "
                       "charset=utf-8\r\n\r\npod not found");
    rec_cleanup(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rc");
    TCase *tc = tcase_create("websocket");

    tcase_add_test(tc, handshake_v5);
    tcase_add_loop_test(tc, subprotocols, 0, sizeof(pick) / sizeof(pick[0]));
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, query_rules);
    tcase_add_test(tc, output_and_exit_codes);
    tcase_add_test(tc, success_fail_attach);
    tcase_add_test(tc, v1_status_text);
    tcase_add_test(tc, stdin_fragments_close);
    tcase_add_test(tc, large_messages);
    tcase_add_test(tc, resize);
    tcase_add_test(tc, base64_protocol);
    tcase_add_test(tc, client_close);
    tcase_add_loop_test(tc, bad_frames, 0, sizeof(bad) / sizeof(bad[0]));
    tcase_add_test(tc, exit_inside_ready);
    tcase_add_test(tc, alloc_failures);
    tcase_add_test(tc, reject);
    suite_add_tcase(s, tc);
    rc_spdy_tcase(s);
    return unit_run(s);
}
