/* The remote command codec over SPDY/3.1, against the client in rc_fixture.c (its header blocks
 * compressed as spdystream compresses them): kubelet's handshake and refusals, the streams a
 * version and options need before ready(), stdin and its FIN, resize, PING, GOAWAY, the end
 * kubectl reads (status + FIN on the error stream, FIN elsewhere, GOAWAY), bad frames,
 * allocation failure.
 */
#include <check.h>
#include <string.h>
#include <zlib.h>

#include "kedge/alloc.h"
#include "rc_fixture.h"
#include "rc_spdy.h"
#include "unit.h"

void rc_spdy_tcase(Suite *s);

#define ALL_VERSIONS                                                                               \
    "v5.channel.k8s.io, v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io"

/* kubectl 1.32's SPDY upgrade (one header line per version, joined by the transport) */
static const struct hdrs kubectl = {{"Connection", "Upgrade", "Upgrade", "SPDY/3.1",
                                     "X-Stream-Protocol-Version", ALL_VERSIONS, NULL}};

enum { ERR_ID = 1, IN_ID = 3, OUT_ID = 5, ERRS_ID = 7, RESIZE_ID = 9 };

struct sess {
    struct rec t;
    struct spdy_client c;
    struct kedge_buf b; /* client bytes to send */
};

static void sess_open(struct sess *s, const struct hdrs *h, const char *query)
{
    rec_init(&s->t);
    spdy_client_init(&s->c);
    s->b = (struct kedge_buf)KEDGE_BUF_INIT;
    ck_assert_int_eq(accept_req(&s->t, "POST", query, h, false), 0);
    ck_assert_int_eq(s->t.ready, 0);
}

static void sess_close(struct sess *s)
{
    kedge_buf_cleanup(&s->b);
    spdy_client_cleanup(&s->c);
    rec_cleanup(&s->t);
}

/* Send what was built, one byte at a time (every split point). */
static int sess_send(struct sess *s)
{
    int rc = input_bytewise(s->t.rc, s->b.data, s->b.len);

    kedge_buf_reset(&s->b);
    return rc;
}

/* kubectl's v2+ streams for stdin, stdout, stderr: error first, then each option. */
static void open_streams(struct sess *s, bool in, bool out, bool err, bool resize)
{
    spdy_syn_stream(&s->c, &s->b, ERR_ID, "error", false);
    if (in)
        spdy_syn_stream(&s->c, &s->b, IN_ID, "stdin", false);
    if (out)
        spdy_syn_stream(&s->c, &s->b, OUT_ID, "stdout", false);
    if (err)
        spdy_syn_stream(&s->c, &s->b, ERRS_ID, "stderr", false);
    if (resize)
        spdy_syn_stream(&s->c, &s->b, RESIZE_ID, "resize", false);
}

START_TEST(dictionary)
{
    ck_assert_uint_eq(adler32(adler32(0, NULL, 0), rc_spdy_dict, RC_SPDY_DICT_LEN), 0xe3c6a7c2);
}
END_TEST

START_TEST(handshake_and_streams)
{
    struct sess s;
    struct spdyf f[8];
    size_t n, i;

    sess_open(&s, &kubectl, "command=cat&input=1&output=1&error=1");
    ASSERT_BUF(&s.t.out,
               "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
               "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n");
    open_streams(&s, true, true, false, false);
    ck_assert_int_eq(sess_send(&s), 0);
    ck_assert_int_eq(s.t.ready, 0); /* stderr still missing */
    spdy_syn_stream(&s.c, &s.b, ERRS_ID, "stderr", false);
    ck_assert_int_eq(sess_send(&s), 0);
    ck_assert_int_eq(s.t.ready, 1);
    ck_assert(s.t.o.in && s.t.o.out && s.t.o.err);
    ck_assert_str_eq(s.t.argv0, "cat");
    /* a SYN_REPLY with an empty block for each, in order, through one zlib stream */
    n = spdy_parse(&s.c, &s.t, head_len(&s.t), f, 8);
    ck_assert_uint_eq(n, 4);
    for (i = 0; i < n; i++) {
        ck_assert(f[i].control);
        ck_assert_uint_eq(f[i].type, 2);
        ck_assert_uint_eq(f[i].flags, 0);
        ck_assert_uint_eq(f[i].id, 1 + 2 * i);
        ck_assert_uint_eq(f[i].nheaders, 0);
    }
    sess_close(&s);
}
END_TEST

/* Which streams make a version ready (kubelet's expectedStreams and each handler's types). */
static const struct {
    const char *version, *query;
    bool in, out, err, resize;
    int ready_after_all;
} expect[] = {
    {"v4.channel.k8s.io", "input=1&output=1&tty=1", true, true, false, true, 1},
    {"v4.channel.k8s.io", "input=1&output=1&tty=1", true, true, false, false, 0},
    {"v3.channel.k8s.io", "output=1&tty=1", false, true, false, true, 1},
    {"v2.channel.k8s.io", "input=1&output=1&tty=1", true, true, false, false, 1},
    {"channel.k8s.io", "output=1&error=1", false, true, true, false, 1},
    {"v4.channel.k8s.io", "output=1&error=1", false, true, false, false, 0},
};

START_TEST(expected_streams)
{
    struct hdrs h = {{"Connection", "Upgrade", "Upgrade", "SPDY/3.1", "X-Stream-Protocol-Version",
                      expect[_i].version, NULL}};
    struct sess s;

    sess_open(&s, &h, expect[_i].query);
    open_streams(&s, expect[_i].in, expect[_i].out, expect[_i].err, expect[_i].resize);
    ck_assert_int_eq(sess_send(&s), 0);
    ck_assert_int_eq(s.t.ready, expect[_i].ready_after_all);
    sess_close(&s);
}
END_TEST

/* The handshake refused as kubelet refuses it (httpstream.Handshake, UpgradeResponse). */
START_TEST(refusals)
{
    static const struct hdrs none = {{"Connection", "Upgrade", "Upgrade", "SPDY/3.1", NULL}};
    static const struct hdrs v9 = {{"Connection", "Upgrade", "Upgrade", "SPDY/3.1",
                                    "X-Stream-Protocol-Version", "v9.channel.k8s.io, v8", NULL}};
    static const struct hdrs plain = {
        {"Connection", "keep-alive", "X-Stream-Protocol-Version", "v4.channel.k8s.io", NULL}};
    static const char neg[] =
        "unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io v8], "
        "server accepts [v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io channel.k8s.io]\n";
    char want[1024];
    struct rec t;

    rec_init(&t);
    ck_assert_int_eq(accept_req(&t, "POST", "output=1", &none, false), -EINVAL);
    ASSERT_BUF(&t.out, "HTTP/1.1 400 Bad Request\r\nContent-Length: 57\r\nContent-Type: "
                       "text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\r\n"
                       "unable to upgrade: X-Stream-Protocol-Version is required\n");
    rec_cleanup(&t);
    rec_init(&t);
    ck_assert_int_eq(accept_req(&t, "POST", "output=1", &v9, false), -EINVAL);
    /* Handshake answers 403, then its caller's http.Error(400) adds the text once more */
    snprintf(want, sizeof(want),
             "HTTP/1.1 403 Forbidden\r\nContent-Length: %zu\r\nContent-Type: text/plain; "
             "charset=utf-8\r\nX-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io\r\n"
             "X-Accepted-Stream-Protocol-Versions: v3.channel.k8s.io\r\n"
             "X-Accepted-Stream-Protocol-Versions: v2.channel.k8s.io\r\n"
             "X-Accepted-Stream-Protocol-Versions: channel.k8s.io\r\n"
             "X-Content-Type-Options: nosniff\r\n\r\n%s%s",
             2 * strlen(neg), neg, neg);
    ASSERT_BUF(&t.out, want);
    rec_cleanup(&t);
    rec_init(&t);
    ck_assert_int_eq(accept_req(&t, "GET", "output=1", &plain, false), -EINVAL);
    ck_assert_ptr_nonnull(strstr(t.out.data, "400 Bad Request"));
    ck_assert_ptr_nonnull(strstr(t.out.data,
                                 "\r\n\r\nunable to upgrade: missing upgrade headers in request: "
                                 "http.Header{\"Connection\":[]string{\"keep-alive\"}}\n"));
    rec_cleanup(&t);
}
END_TEST

/* stdin (before and after ready), its FIN, output, exit code: what kubectl reads at the end. */
START_TEST(session_exit_code)
{
    struct sess s;
    struct spdyf f[16];
    size_t n, base;

    sess_open(&s, &kubectl, "command=sh&command=-c&command=exit 3&input=1&output=1&error=1");
    spdy_syn_stream(&s.c, &s.b, ERR_ID, "error", false);
    spdy_syn_stream(&s.c, &s.b, IN_ID, "stdin", false);
    spdy_data(&s.b, IN_ID, false, "early ", 6); /* before ready: held */
    spdy_syn_stream(&s.c, &s.b, OUT_ID, "stdout", false);
    spdy_syn_stream(&s.c, &s.b, ERRS_ID, "stderr", false);
    spdy_data(&s.b, IN_ID, false, "late", 4);
    spdy_data(&s.b, IN_ID, true, "", 0);
    spdy_data(&s.b, IN_ID, false, "after FIN", 9); /* dropped */
    ck_assert_int_eq(sess_send(&s), 0);
    ck_assert_int_eq(s.t.ready, 1);
    ASSERT_BUF(&s.t.in, "early late");
    ck_assert_int_eq(s.t.stdin_closes, 1);
    base = s.t.out.len;
    ck_assert_int_eq(rc_output(s.t.rc, RT_STDOUT, "out", 3), 0);
    ck_assert_int_eq(rc_output(s.t.rc, RT_STDERR, "err", 3), 0);
    ck_assert_int_eq(rc_exit(s.t.rc, 3), 0);
    (void)spdy_parse(&s.c, &s.t, head_len(&s.t), f, 16); /* the replies, through the inflater */
    n = spdy_parse(&s.c, &s.t, base, f, 16);
    ck_assert_uint_eq(n, 7);
    ck_assert(!f[0].control && f[0].id == OUT_ID && f[0].flags == 0);
    ASSERT_BYTES((const char *)f[0].p, f[0].n, "out");
    ck_assert(!f[1].control && f[1].id == ERRS_ID);
    ASSERT_BYTES((const char *)f[1].p, f[1].n, "err");
    ck_assert(!f[2].control && f[2].id == ERR_ID && f[2].flags == 1);
    ASSERT_BYTES((const char *)f[2].p, f[2].n,
                 "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"command terminated with "
                 "non-zero exit code: error executing command [sh -c exit 3], exit code 3\","
                 "\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":"
                 "\"ExitCode\",\"message\":\"3\"}]}}");
    /* FIN on the rest, in stream order, then GOAWAY OK naming the last stream */
    ck_assert(!f[3].control && f[3].id == IN_ID && f[3].flags == 1 && f[3].n == 0);
    ck_assert(!f[4].control && f[4].id == OUT_ID && f[4].flags == 1 && f[4].n == 0);
    ck_assert(!f[5].control && f[5].id == ERRS_ID && f[5].flags == 1 && f[5].n == 0);
    ck_assert(f[6].control && f[6].type == 7 && f[6].id == ERRS_ID && f[6].status == 0);
    ck_assert_int_eq(rc_output(s.t.rc, RT_STDOUT, "x", 1), -EPIPE);
    ck_assert_int_eq(s.t.closes, 0);
    sess_close(&s);
}
END_TEST

/* Before v4: nothing on success, the message as text on failure (v1WriteStatusFunc). */
START_TEST(v2_status)
{
    struct hdrs h = {{"Connection", "Upgrade", "Upgrade", "SPDY/3.1", "X-Stream-Protocol-Version",
                      "v2.channel.k8s.io", NULL}};
    struct sess s;
    struct spdyf f[8];
    size_t base;

    sess_open(&s, &h, "command=true&output=1");
    open_streams(&s, false, true, false, false);
    ck_assert_int_eq(sess_send(&s), 0);
    base = s.t.out.len;
    ck_assert_int_eq(rc_exit(s.t.rc, 0), 0);
    (void)spdy_parse(&s.c, &s.t, head_len(&s.t), f, 8);
    ck_assert_uint_eq(spdy_parse(&s.c, &s.t, base, f, 8), 3);
    ck_assert(!f[0].control && f[0].id == ERR_ID && f[0].flags == 1 && f[0].n == 0);
    sess_close(&s);

    sess_open(&s, &h, "command=false&output=1");
    open_streams(&s, false, true, false, false);
    ck_assert_int_eq(sess_send(&s), 0);
    base = s.t.out.len;
    ck_assert_int_eq(rc_fail(s.t.rc, "boom"), 0);
    (void)spdy_parse(&s.c, &s.t, head_len(&s.t), f, 8);
    ck_assert_uint_eq(spdy_parse(&s.c, &s.t, base, f, 8), 3);
    ASSERT_BYTES((const char *)f[0].p, f[0].n,
                 "Internal error occurred: error executing command in container: boom");
    sess_close(&s);
}
END_TEST

START_TEST(resize_ping_goaway)
{
    struct sess s;
    struct spdyf f[16];
    size_t base, n;

    sess_open(&s, &kubectl, "command=sh&input=1&output=1&tty=1");
    open_streams(&s, true, true, false, true);
    spdy_data(&s.b, RESIZE_ID, false, "{\"Width\":120,\"Height\":4", 23);
    spdy_data(&s.b, RESIZE_ID, false, "0}\n", 3);
    spdy_control(&s.b, 3, 6, 0, "\0\0\0\x05", 4); /* client PING: echoed */
    spdy_control(&s.b, 3, 6, 0, "\0\0\0\x02", 4); /* even: an answer to ours, never sent */
    spdy_control(&s.b, 3, 4, 0, "\0\0\0\x01\0\0\0\x07\0\x01\0\0", 12); /* SETTINGS */
    spdy_control(&s.b, 3, 9, 0, "\0\0\0\x03\0\0\x10\0", 8);            /* WINDOW_UPDATE */
    spdy_control(&s.b, 3, 0x42, 0, "xyz", 3);                          /* unknown: ignored */
    base = s.t.out.len + 4 * 0;
    ck_assert_int_eq(sess_send(&s), 0);
    ck_assert_int_eq(s.t.ready, 1);
    ck_assert_int_eq(s.t.nresize, 1);
    ck_assert_uint_eq(s.t.w[0], 120);
    ck_assert_uint_eq(s.t.h[0], 40);
    n = spdy_parse(&s.c, &s.t, head_len(&s.t), f, 16);
    ck_assert_uint_eq(n, 5); /* 4 replies, 1 pong */
    ck_assert(f[4].control && f[4].type == 6 && f[4].status == 5);
    (void)base;
    spdy_control(&s.b, 3, 7, 0, "\0\0\0\0\0\0\0\0", 8);
    ck_assert_int_eq(rc_input(s.t.rc, s.b.data, s.b.len), -EPIPE);
    ck_assert_int_eq(s.t.closes, 1);
    ck_assert_int_eq(rc_exit(s.t.rc, 0), -EPIPE);
    sess_close(&s);
}
END_TEST

/* A stream id that does not increase is refused alone (spdystream); RST_STREAM on stdin is its
 * EOF. */
START_TEST(stream_ids_and_reset)
{
    struct sess s;
    struct spdyf f[16];
    size_t n;

    sess_open(&s, &kubectl, "command=cat&input=1&output=1");
    spdy_syn_stream(&s.c, &s.b, 5, "error", false);
    spdy_syn_stream(&s.c, &s.b, 3, "stdin", false); /* lower than 5: RST PROTOCOL_ERROR */
    spdy_syn_stream(&s.c, &s.b, 7, "stdin", false);
    spdy_syn_stream(&s.c, &s.b, 9, "stdout", false);
    spdy_control(&s.b, 3, 3, 0, "\0\0\0\x07\0\0\0\x05", 8); /* RST_STREAM stdin CANCEL */
    ck_assert_int_eq(sess_send(&s), 0);
    ck_assert_int_eq(s.t.ready, 1);
    ck_assert_int_eq(s.t.stdin_closes, 1);
    n = spdy_parse(&s.c, &s.t, head_len(&s.t), f, 16);
    ck_assert_uint_eq(n, 4);
    ck_assert(f[1].control && f[1].type == 3 && f[1].id == 3 && f[1].status == 1);
    sess_close(&s);
}
END_TEST

/* Frames that end the session: GOAWAY PROTOCOL_ERROR, closed(), input refused after. */
START_TEST(bad_frames)
{
    static const char garbage[] = "\0\0\0\x01\0\0\0\0\0\0not zlib at all";
    struct sess s;
    struct spdyf f[8];
    size_t n;
    char big[16385];

    memset(big, 0, sizeof(big));
    sess_open(&s, &kubectl, "command=cat&input=1&output=1");
    switch (_i) {
    case 0:
        spdy_control(&s.b, 2, 6, 0, "\0\0\0\x01", 4); /* SPDY/2 */
        break;
    case 1:
        spdy_control(&s.b, 3, 1, 0, garbage, sizeof(garbage) - 1);
        break;
    case 2:
        spdy_data(&s.b, 0, false, "x", 1);
        break;
    case 3:
        spdy_control(&s.b, 3, 8, 0, big, sizeof(big));
        break;
    case 4:
        spdy_control(&s.b, 3, 3, 0, "\0\0\0\x01\0\0\0\0", 8); /* RST status 0 */
        break;
    case 5:
        spdy_control(&s.b, 3, 6, 0, "\0\0\0\0", 4); /* PING 0 */
        break;
    default:
        spdy_control(&s.b, 3, 1, 0, "\0\0\0", 3); /* short SYN_STREAM */
        break;
    }
    ck_assert_int_eq(sess_send(&s), -EPROTO);
    ck_assert_int_eq(s.t.closes, 1);
    n = spdy_parse(&s.c, &s.t, head_len(&s.t), f, 8);
    ck_assert_uint_eq(n, 1);
    ck_assert(f[0].control && f[0].type == 7 && f[0].status == 1);
    ck_assert_int_eq(rc_input(s.t.rc, "\0", 1), -EPIPE);
    sess_close(&s);
}
END_TEST

/* A header block compressed without the dictionary is not this connection's zlib stream. */
START_TEST(wrong_dictionary)
{
    struct sess s;
    unsigned char z[128];
    uLongf zn = sizeof(z);
    unsigned char blk[] = {0,   0,   0,   1,   0, 0, 0, 10, 's', 't', 'r', 'e', 'a', 'm',
                           't', 'y', 'p', 'e', 0, 0, 0, 5,  'e', 'r', 'r', 'o', 'r'};
    unsigned char frame[160] = {0, 0, 0, 1, 0, 0, 0, 0, 0, 0};

    sess_open(&s, &kubectl, "command=cat&output=1");
    ck_assert_int_eq(compress(z, &zn, blk, sizeof(blk)), Z_OK);
    memcpy(frame + 10, z, zn);
    spdy_control(&s.b, 3, 1, 0, frame, 10 + zn);
    ck_assert_int_eq(sess_send(&s), -EPROTO);
    ck_assert_ptr_nonnull(strstr(s.t.why, "inflate"));
    sess_close(&s);
}
END_TEST

/* The client's side of stdin can end with the SYN_STREAM itself or a HEADERS frame; channel.k8s.io
 * (v1) closes the server's side of stdin once the streams are there. */
START_TEST(stdin_fin_forms)
{
    struct hdrs v1 = {{"Connection", "Upgrade", "Upgrade", "SPDY/3.1", "X-Stream-Protocol-Version",
                       "channel.k8s.io", NULL}};
    struct sess s;
    struct spdyf f[8];
    size_t base, n;
    unsigned char hb[8] = {0, 0, 0, IN_ID, 0, 0, 0, 0};
    unsigned char z[64];

    sess_open(&s, &kubectl, "command=cat&input=1&output=1");
    spdy_syn_stream(&s.c, &s.b, ERR_ID, "error", false);
    spdy_syn_stream(&s.c, &s.b, IN_ID, "stdin", true); /* FIN before ready: due at ready */
    ck_assert_int_eq(sess_send(&s), 0);
    ck_assert_int_eq(s.t.stdin_closes, 0);
    spdy_syn_stream(&s.c, &s.b, OUT_ID, "stdout", false);
    ck_assert_int_eq(sess_send(&s), 0);
    ck_assert_int_eq(s.t.ready, 1);
    ck_assert_int_eq(s.t.stdin_closes, 1);
    sess_close(&s);

    sess_open(&s, &v1, "command=cat&input=1&output=1");
    open_streams(&s, true, true, false, false);
    base = s.t.out.len;
    ck_assert_int_eq(sess_send(&s), 0);
    ck_assert_int_eq(s.t.ready, 1);
    n = spdy_parse(&s.c, &s.t, base, f, 8);
    ck_assert_uint_eq(n, 4); /* 3 replies, then FIN on stdin */
    ck_assert(!f[3].control && f[3].id == IN_ID && f[3].flags == 1 && f[3].n == 0);
    /* HEADERS with FIN and an empty block (compressed on the client's stream) ends stdin */
    s.c.def.next_in = hb + 4;
    s.c.def.avail_in = 4;
    s.c.def.next_out = z;
    s.c.def.avail_out = sizeof(z);
    ck_assert_int_eq(deflate(&s.c.def, Z_SYNC_FLUSH), Z_OK);
    {
        unsigned char frame[80];
        size_t zn = sizeof(z) - s.c.def.avail_out;

        memcpy(frame, hb, 4);
        memcpy(frame + 4, z, zn);
        spdy_control(&s.b, 3, 8, 1, frame, 4 + zn);
    }
    ck_assert_int_eq(sess_send(&s), 0);
    ck_assert_int_eq(s.t.stdin_closes, 1);
    sess_close(&s);
}
END_TEST

static int spdy_session(void *arg)
{
    const struct kedge_buf *c = arg;
    struct rec t;
    int rc;

    rec_init(&t);
    rc = accept_req(&t, "POST", "command=cat&input=1&output=1&tty=1", &kubectl, false);
    if (rc == 0)
        rc = rc_input(t.rc, c->data, c->len);
    if (rc == 0)
        rc = rc_output(t.rc, RT_STDOUT, "out", 3);
    if (rc == 0)
        rc = rc_exit(t.rc, 0);
    if (rc == 0) {
        ck_assert_int_eq(t.ready, 1);
        ck_assert_int_eq(t.nresize, 1);
        ASSERT_BUF(&t.in, "input");
    }
    rec_cleanup(&t);
    return rc;
}

START_TEST(alloc_failures)
{
    static const int ok[] = {-ENOMEM, -EPIPE};
    struct spdy_client c;
    struct kedge_buf b = KEDGE_BUF_INIT;

    spdy_client_init(&c);
    spdy_syn_stream(&c, &b, ERR_ID, "error", false);
    spdy_syn_stream(&c, &b, IN_ID, "stdin", false);
    spdy_data(&b, IN_ID, false, "input", 5);
    spdy_syn_stream(&c, &b, OUT_ID, "stdout", false);
    spdy_syn_stream(&c, &b, RESIZE_ID, "resize", false);
    spdy_data(&b, RESIZE_ID, false, "{\"Width\":1,\"Height\":2}", 22);
    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(spdy_session, &b, ok, 2), 5);
    unit_libc_allocs();
    kedge_buf_cleanup(&b);
    spdy_client_cleanup(&c);
}
END_TEST

void rc_spdy_tcase(Suite *s)
{
    TCase *tc = tcase_create("spdy");

    tcase_add_test(tc, dictionary);
    tcase_add_test(tc, handshake_and_streams);
    tcase_add_loop_test(tc, expected_streams, 0, sizeof(expect) / sizeof(expect[0]));
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, session_exit_code);
    tcase_add_test(tc, v2_status);
    tcase_add_test(tc, resize_ping_goaway);
    tcase_add_test(tc, stream_ids_and_reset);
    tcase_add_loop_test(tc, bad_frames, 0, 7);
    tcase_add_test(tc, wrong_dictionary);
    tcase_add_test(tc, stdin_fin_forms);
    tcase_add_test(tc, alloc_failures);
    suite_add_tcase(s, tc);
}
