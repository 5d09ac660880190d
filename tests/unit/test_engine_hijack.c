/* cloudbridge/edged/engine_hijack.c and runtime_docker_mux.c: the framing of interactive
 * sessions without an engine. A scripted engine (a unix socket this test listens on and answers
 * byte by byte) meets the hijacked connection on a real lws loop: the request head it sends,
 * stdin held until the upgrade, 101 and 200 answers with stream bytes in the same read as the
 * head, error answers with a Content-Length or chunked body, close_write as EOF at the engine,
 * pause, a cancel from inside data, a refused connect; and the response-head parser and
 * Docker's framing (how much a feed takes when told to stop).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine.h"
#include "engine_hijack.h"
#include "kedge/util.h"
#include "runtime_docker_mux.h"
#include "unit.h"

/* ---- the loop and the scripted engine ------------------------------------------------------- */

static struct lws_context *ctx;
static struct lws_vhost *vhost;
static char sock_path[108], dir[64];
static int listener = -1, peer = -1;
static lws_sorted_usec_list_t tick_sul;

static void tick(lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(ctx, 0, sul, tick, 5 * LWS_US_PER_MS); /* lws_service returns often */
}

static void setup(void)
{
    static struct lws_protocols list[2];
    struct lws_context_creation_info info;
    struct sockaddr_un sa;

    unit_count_allocs();
    list[0] = engine_protocol;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = list;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    lws_set_log_level(LLL_ERR, NULL);
    ctx = lws_create_context(&info);
    ck_assert_ptr_nonnull(ctx);
    info.vhost_name = "local";
    vhost = lws_create_vhost(ctx, &info);
    ck_assert_ptr_nonnull(vhost);
    lws_sul_schedule(ctx, 0, &tick_sul, tick, 5 * LWS_US_PER_MS);
    snprintf(dir, sizeof(dir), "/tmp/kedge-hijack-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sock_path, sizeof(sock_path), "%s/engine.sock", dir);
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(listener, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    ck_assert_int_eq(bind(listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(listener, 4), 0);
    peer = -1;
}

static void teardown(void)
{
    lws_sul_cancel(&tick_sul);
    lws_context_destroy(ctx);
    if (peer >= 0)
        close(peer);
    close(listener);
    unlink(sock_path);
    rmdir(dir);
    ck_assert_int_eq(unit_live_blocks, 0);
}

/* Serve the loop once (briefly). */
static void turn(void)
{
    lws_service(ctx, 0);
}

static void accept_peer(void)
{
    struct pollfd p = {listener, POLLIN, 0};

    ck_assert_int_eq(poll(&p, 1, 5000), 1);
    peer = accept(listener, NULL, NULL);
    ck_assert_int_ge(peer, 0);
}

/* What the engine side reads until b holds needle (the loop served meanwhile). */
static void peer_read_until(struct kedge_buf *b, const char *needle)
{
    uint64_t end = kedge_now_ms() + 5000;

    while (!(b->data && memmem(b->data, b->len, needle, strlen(needle)))) {
        char tmp[4096];
        ssize_t n;

        ck_assert_msg(kedge_now_ms() < end, "the engine never read '%s'", needle);
        turn();
        n = recv(peer, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (n > 0)
            ck_assert_int_eq(kedge_buf_append(b, tmp, (size_t)n), 0);
    }
}

/* The engine side sees EOF (the client's SHUT_WR), with nothing more before it. */
static void peer_read_eof(void)
{
    uint64_t end = kedge_now_ms() + 5000;

    for (;;) {
        char tmp[64];
        ssize_t n;

        ck_assert_msg(kedge_now_ms() < end, "no EOF at the engine");
        turn();
        n = recv(peer, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (n == 0)
            return;
        ck_assert_msg(n < 0, "unexpected bytes at the engine: %.*s", (int)n, tmp);
    }
}

static void peer_write(const char *s, size_t n)
{
    ck_assert_int_eq(send(peer, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* ---- what the hijack delivered -------------------------------------------------------------- */

struct got {
    struct engine_hijack *h;
    int opens, dones, status, err;
    struct kedge_buf data;
    char body[256];
    bool cancel_in_data;
};

static void on_open(void *c)
{
    struct got *g = c;

    g->opens++;
}

static void on_data(void *c, const char *b, size_t n)
{
    struct got *g = c;

    ck_assert_int_eq(g->opens, 1);
    ck_assert_int_eq(kedge_buf_append(&g->data, b, n), 0);
    if (g->cancel_in_data)
        engine_hijack_cancel(g->h);
}

static void on_done(void *c, const struct engine_reply *r)
{
    struct got *g = c;

    g->dones++;
    g->status = r->status;
    g->err = r->err;
    snprintf(g->body, sizeof(g->body), "%.*s", (int)r->len, r->body);
}

static const struct engine_hijack_fns fns = {on_open, on_data, on_done};

static bool has(const struct got *g, const char *s)
{
    return g->data.len == strlen(s) && !memcmp(g->data.data, s, g->data.len);
}

static void until_done(struct got *g)
{
    uint64_t end = kedge_now_ms() + 5000;

    while (!g->dones) {
        ck_assert_msg(kedge_now_ms() < end, "no done");
        turn();
    }
}

static void until_data(struct got *g, const char *want)
{
    uint64_t end = kedge_now_ms() + 5000;

    while (!has(g, want)) {
        ck_assert_msg(kedge_now_ms() < end, "data '%.*s', not '%s'", (int)g->data.len,
                      g->data.data ? g->data.data : "", want);
        turn();
    }
}

#define START_BODY "{\"Detach\":false,\"Tty\":false}"

static void start(struct got *g)
{
    memset(g, 0, sizeof(*g));
    ck_assert_int_eq(
        engine_hijack(vhost, sock_path, "POST", "/exec/e1/start", START_BODY, &fns, g, &g->h), 0);
    accept_peer();
}

/* The request's head and body, complete (and nothing after it). */
static void read_request(void)
{
    struct kedge_buf req = KEDGE_BUF_INIT;
    char cl[64];

    peer_read_until(&req, START_BODY);
    ck_assert_msg(!strncmp(req.data, "POST /v1.41/exec/e1/start HTTP/1.1\r\n", 36), "%.*s",
                  (int)req.len, req.data);
    ck_assert_ptr_nonnull(memmem(req.data, req.len, "\r\nConnection: Upgrade\r\n", 23));
    ck_assert_ptr_nonnull(memmem(req.data, req.len, "\r\nUpgrade: tcp\r\n", 16));
    snprintf(cl, sizeof(cl), "\r\nContent-Length: %zu\r\n", strlen(START_BODY));
    ck_assert_ptr_nonnull(memmem(req.data, req.len, cl, strlen(cl)));
    ck_assert(req.len > strlen(START_BODY) &&
              !memcmp(req.data + req.len - strlen(START_BODY), START_BODY, strlen(START_BODY)));
    kedge_buf_cleanup(&req);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void upgraded(const char *head)
{
    struct kedge_buf in = KEDGE_BUF_INIT;
    char answer[256];
    struct got g;

    start(&g);
    ck_assert_int_eq(engine_hijack_write(g.h, "early", 5), 0); /* held until the upgrade */
    read_request();
    for (int i = 0; i < 20; i++) { /* nothing of it before the answer */
        char tmp[8];
        turn();
        ck_assert_int_lt(recv(peer, tmp, sizeof(tmp), MSG_DONTWAIT), 0);
    }
    snprintf(answer, sizeof(answer), "%sabc", head); /* stream bytes with the head */
    peer_write(answer, strlen(answer));
    until_data(&g, "abc");
    ck_assert_int_eq(g.opens, 1);
    peer_read_until(&in, "early");
    ASSERT_BUF(&in, "early");
    ck_assert_int_eq(engine_hijack_write(g.h, "-late", 5), 0);
    peer_read_until(&in, "-late");
    engine_hijack_close_write(g.h);
    peer_read_eof();
    ck_assert_int_eq(engine_hijack_write(g.h, "x", 1), -EPIPE);
    peer_write("xyz", 3); /* the output goes on after stdin's end */
    close(peer);
    peer = -1;
    until_done(&g);
    ck_assert(has(&g, "abcxyz"));
    ck_assert_int_eq(g.err, 0);
    ck_assert_int_eq(g.status, atoi(head + 9));
    ck_assert_int_eq(g.dones, 1);
    kedge_buf_cleanup(&g.data);
    kedge_buf_cleanup(&in);
}

START_TEST(upgraded_101)
{
    upgraded("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
             "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
}
END_TEST

START_TEST(raw_stream_200)
{
    upgraded("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n");
}
END_TEST

START_TEST(error_bodies)
{
    static const char not_found[] =
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
        "Content-Length: 40\r\n\r\n{\"message\":\"No such exec instance: e1\"}\n";
    static const char chunked[] = "HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "b\r\n{\"message\":\r\n"
                                  "12\r\n\"is not running\"}\n\r\n0\r\n\r\n";
    struct got g;

    start(&g); /* Content-Length: done once it is all there, the connection still open */
    read_request();
    peer_write(not_found, 60);
    for (int i = 0; i < 10; i++)
        turn();
    ck_assert_int_eq(g.dones, 0);
    peer_write(not_found + 60, strlen(not_found) - 60);
    until_done(&g);
    ck_assert_int_eq(g.opens, 0);
    ck_assert_int_eq(g.status, 404);
    ck_assert_str_eq(g.body, "{\"message\":\"No such exec instance: e1\"}\n");
    close(peer);
    peer = -1;

    start(&g); /* chunked */
    read_request();
    peer_write(chunked, strlen(chunked));
    until_done(&g);
    ck_assert_int_eq(g.status, 409);
    ck_assert_str_eq(g.body, "{\"message\":\"is not running\"}\n");
    close(peer);
    peer = -1;

    start(&g); /* closed before an answer */
    read_request();
    close(peer);
    peer = -1;
    until_done(&g);
    ck_assert_int_eq(g.status, 0);
    ck_assert_int_lt(g.err, 0);

    start(&g); /* not HTTP */
    read_request();
    peer_write("SSH-2.0-x\r\n", 11);
    until_done(&g);
    ck_assert_int_eq(g.err, -EPROTO);
    close(peer);
    peer = -1;

    /* nobody listens */
    ck_assert_int_lt(
        engine_hijack(vhost, "/nonexistent/kedge.sock", "POST", "/x", NULL, &fns, &g, &g.h), 0);
}
END_TEST

START_TEST(pause_and_cancel)
{
    static const char head[] = "HTTP/1.1 101 UPGRADED\r\n\r\n";
    struct got g;

    start(&g);
    read_request();
    peer_write(head, strlen(head));
    peer_write("one", 3);
    until_data(&g, "one");
    engine_hijack_pause(g.h, true);
    peer_write("two", 3);
    for (int i = 0; i < 30; i++) /* the loop runs; the connection is not read */
        turn();
    ck_assert(has(&g, "one"));
    engine_hijack_pause(g.h, false);
    until_data(&g, "onetwo");

    g.cancel_in_data = true; /* from inside data: nothing more, not even done */
    peer_write("three", 5);
    for (int i = 0; i < 30 && g.data.len < 11; i++)
        turn();
    ck_assert(has(&g, "onetwothree"));
    (void)send(peer, "four", 4, MSG_NOSIGNAL); /* the connection may be closed already */
    close(peer);
    peer = -1;
    for (int i = 0; i < 30; i++)
        turn();
    ck_assert(has(&g, "onetwothree"));
    ck_assert_int_eq(g.dones, 0);
    kedge_buf_cleanup(&g.data);

    start(&g); /* cancelled before the answer */
    engine_hijack_cancel(g.h);
    for (int i = 0; i < 10; i++)
        turn();
    ck_assert_int_eq(g.dones + g.opens, 0);
}
END_TEST

START_TEST(response_head)
{
    static const char h101[] = "HTTP/1.1 101 UPGRADED\r\nContent-Type: x\r\n\r\nrest";
    static const char h404[] = "HTTP/1.0 404 Not Found\r\ncontent-length: 12\r\n"
                               "transfer-encoding: CHUNKED\r\n\r\n";
    long cl = 0;
    int status = 0;
    bool chunked = true;

    ck_assert_int_eq(engine_http_head(h101, strlen(h101), &status, &cl, &chunked),
                     (long)strlen(h101) - 4);
    ck_assert_int_eq(status, 101);
    ck_assert_int_eq(cl, -1);
    ck_assert(!chunked);
    ck_assert_int_eq(engine_http_head(h404, strlen(h404), &status, &cl, &chunked),
                     (long)strlen(h404));
    ck_assert_int_eq(status, 404);
    ck_assert_int_eq(cl, 12);
    ck_assert(chunked);
    for (size_t n = 0; n < strlen(h101) - 4; n++) /* every prefix: not yet */
        ck_assert_int_eq(engine_http_head(h101, n, &status, &cl, &chunked), 0);
    ck_assert_int_eq(engine_http_head("SSH-2.0", 7, &status, &cl, &chunked), -1);
    ck_assert_int_eq(engine_http_head("HTTP/1.1 abc\r\n\r\n", 16, &status, &cl, &chunked), -1);
}
END_TEST

/* ---- Docker's framing ---------------------------------------------------------------------- */

struct mux_got {
    struct kedge_buf out, err;
    int stop_after; /* emits before saying stop (0: never) */
    int emits;
};

static bool mux_emit(void *c, enum runtime_log_stream s, const char *b, size_t n)
{
    struct mux_got *g = c;

    ck_assert_int_eq(kedge_buf_append(s == RT_STDERR ? &g->err : &g->out, b, n), 0);
    return !(g->stop_after && ++g->emits >= g->stop_after);
}

START_TEST(mux_stop_and_resume)
{
    /* stdout "ab", stderr "cde", stdout "f" */
    static const char body[] = "\1\0\0\0\0\0\0\2ab\2\0\0\0\0\0\0\3cde\1\0\0\0\0\0\0\1f";
    const size_t len = sizeof(body) - 1;
    struct mux_got g = {0};
    struct docker_mux m;
    size_t took, at = 0;

    docker_mux_init(&m, DOCKER_MUX_FRAMED);
    g.stop_after = 1; /* stop after each piece: the rest is fed again, nothing lost or doubled */
    while (at < len) {
        g.emits = 0;
        took = docker_mux_feed(&m, body + at, len - at, mux_emit, &g);
        ck_assert_uint_gt(took, 0);
        at += took;
    }
    ASSERT_BUF(&g.out, "abf");
    ASSERT_BUF(&g.err, "cde");
    kedge_buf_cleanup(&g.out);
    kedge_buf_cleanup(&g.err);

    memset(&g, 0, sizeof(g)); /* a TTY: raw, all stdout, all of it taken */
    docker_mux_init(&m, DOCKER_MUX_RAW);
    ck_assert_uint_eq(docker_mux_feed(&m, "\1\0\0\0xy", 6, mux_emit, &g), 6);
    ck_assert_uint_eq(g.out.len, 6);
    ck_assert(!memcmp(g.out.data, "\1\0\0\0xy", 6));
    kedge_buf_cleanup(&g.out);

    memset(&g, 0, sizeof(g)); /* unknown: a short raw output comes out at the flush */
    docker_mux_init(&m, DOCKER_MUX_UNKNOWN);
    ck_assert_uint_eq(docker_mux_feed(&m, "hi\n", 3, mux_emit, &g), 3);
    ck_assert_uint_eq(g.out.len, 0);
    docker_mux_flush(&m, mux_emit, &g);
    ASSERT_BUF(&g.out, "hi\n");
    kedge_buf_cleanup(&g.out);
}
END_TEST

static Suite *hijack_suite(void)
{
    Suite *s = suite_create("engine_hijack");
    TCase *tc = tcase_create("scripted engine");
    TCase *pure = tcase_create("parsers");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, upgraded_101);
    tcase_add_test(tc, raw_stream_200);
    tcase_add_test(tc, error_bodies);
    tcase_add_test(tc, pause_and_cancel);
    suite_add_tcase(s, tc);
    tcase_add_test(pure, response_head);
    tcase_add_test(pure, mux_stop_and_resume);
    suite_add_tcase(s, pure);
    return s;
}

int main(void)
{
    return unit_run(hijack_suite());
}
