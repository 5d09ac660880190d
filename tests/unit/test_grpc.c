/* grpc/grpc.c: both ends back to back in memory (grpc_fixture.c) with real DMI messages; bad
 * input from a raw HTTP/2 client; grpc_fd.c over a real unix socket (a forked server).
 */
#define _GNU_SOURCE /* accept4 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "grpc_fd.h"
#include "grpc_fixture.h"
#include "grpc_wire.h"
#include "unit.h"

#define MIB (1024u * 1024)

static int tag[FX_MAX_CALLS];

/* The address length that makes MapperRegisterRequest{withData, mapper{name, "modbus",
 * address}} exactly want bytes packed. */
static size_t addr_for(const char *name, size_t want)
{
    V1beta1__MapperRegisterRequest req = V1BETA1__MAPPER_REGISTER_REQUEST__INIT;
    V1beta1__MapperInfo info = V1BETA1__MAPPER_INFO__INIT;
    size_t len = want - 64;

    info.name = (char *)name;
    info.protocol = "modbus";
    req.withdata = true;
    req.mapper = &info;
    for (;;) {
        size_t got;

        info.address.len = len;
        got = protobuf_c_message_get_packed_size(&req.base);
        if (got == want)
            return len;
        ck_assert_uint_lt(got, want);
        len += want - got;
    }
}

START_TEST(unary_round_trip)
{
    struct fx f;
    struct fx_resp *r;

    fx_open(&f, NULL, NULL);
    ck_assert_int_eq(fx_call(&f, "thermo-mapper", 12, &tag[0]), 0);
    ck_assert_uint_eq(grpc_conn_open_streams(f.cli), 1);
    fx_shuttle(&f);
    ck_assert_uint_eq(f.n_reqs, 1);
    ck_assert_str_eq(f.reqs[0].path, MR_PATH);
    ck_assert_ptr_nonnull(f.reqs[0].req);
    ck_assert(f.reqs[0].req->withdata);
    ck_assert_str_eq(f.reqs[0].req->mapper->name, "thermo-mapper");
    ck_assert_str_eq(f.reqs[0].req->mapper->protocol, "modbus");
    r = fx_resp_of(&f, &tag[0]);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->times, 1);
    ck_assert_int_eq(r->code, GRPC_OK);
    ck_assert_uint_eq(r->resp->n_modellist, 1);
    ck_assert_str_eq(r->resp->modellist[0]->name, "thermo-mapper");
    ck_assert_str_eq(r->resp->devicelist[0]->name, "aaaaaaaaaaaa");
    ck_assert_uint_eq(grpc_conn_open_streams(f.cli), 0);
    ck_assert_uint_eq(grpc_conn_open_streams(f.srv), 0);
    ck_assert(!grpc_conn_done(f.cli));
    fx_close(&f);
}
END_TEST

START_TEST(error_status_and_message)
{
    struct fx f;
    struct fx_resp *r;

    fx_open(&f, NULL, NULL);
    /* percent-encoded on the wire (grpc-message), decoded back: '%', a quote, UTF-8 */
    ck_assert_int_eq(fx_call(&f, "err:no device \"thermo\" at 100% \xc3\xbc", 1, &tag[0]), 0);
    fx_shuttle(&f);
    r = fx_resp_of(&f, &tag[0]);
    ck_assert_int_eq(r->times, 1);
    ck_assert_int_eq(r->code, GRPC_NOT_FOUND);
    ck_assert_str_eq(r->message, "no device \"thermo\" at 100% \xc3\xbc");
    ck_assert_ptr_null(r->resp);
    fx_close(&f);
}
END_TEST

START_TEST(many_calls_interleaved)
{
    struct fx f;
    size_t i;
    char name[32];

    fx_open(&f, NULL, NULL);
    f.hold = true;
    for (i = 0; i < 64; i++) {
        (void)snprintf(name, sizeof(name), "m%zu", i);
        ck_assert_int_eq(fx_call(&f, name, i * 1000, &tag[i]), 0);
    }
    fx_shuttle(&f);
    ck_assert_uint_eq(f.n_reqs, 64);
    ck_assert_uint_eq(grpc_conn_open_streams(f.srv), 64);
    /* answer odd ones first, last to first, then the even ones */
    for (i = 64; i-- > 0;)
        if (i % 2)
            fx_answer(&f, i);
    fx_shuttle(&f);
    ck_assert_uint_eq(f.n_resps, 32);
    for (i = 0; i < 64; i += 2)
        fx_answer(&f, i);
    fx_shuttle(&f);
    ck_assert_uint_eq(f.n_resps, 64);
    for (i = 0; i < 64; i++) {
        struct fx_resp *r = fx_resp_of(&f, &tag[i]);

        (void)snprintf(name, sizeof(name), "m%zu", i);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(r->times, 1);
        ck_assert_int_eq(r->code, GRPC_OK);
        ck_assert_str_eq(r->resp->modellist[0]->name, name);
        ck_assert_uint_eq(strlen(r->resp->devicelist[0]->name), i * 1000);
    }
    ck_assert_uint_eq(grpc_conn_open_streams(f.srv), 0);
    fx_close(&f);
}
END_TEST

START_TEST(four_mib_both_ways)
{
    struct fx f;
    struct fx_resp *r;
    size_t len = addr_for("big", 4 * MIB);

    fx_open(&f, NULL, NULL);
    ck_assert_int_eq(fx_call(&f, "big", len, &tag[0]), 0);
    fx_shuttle(&f);
    r = fx_resp_of(&f, &tag[0]);
    ck_assert_int_eq(r->code, GRPC_OK);
    ck_assert_uint_eq(r->resp->devicelist[0]->name ? strlen(r->resp->devicelist[0]->name) : 0, len);
    /* one byte more does not leave */
    ck_assert_int_eq(fx_call(&f, "big", addr_for("big", 4 * MIB + 1), &tag[1]), -EMSGSIZE);
    fx_close(&f);
}
END_TEST

START_TEST(oversize_is_answered_and_connection_lives)
{
    struct grpc_limits big = {8 * MIB, 0};
    struct fx f;
    struct fx_resp *r;

    /* the client may send 5 MiB, the server takes 4 */
    fx_open(&f, NULL, &big);
    ck_assert_int_eq(fx_call(&f, "big", 5 * MIB, &tag[0]), 0);
    fx_shuttle(&f);
    ck_assert_uint_eq(f.n_reqs, 0);
    r = fx_resp_of(&f, &tag[0]);
    ck_assert_int_eq(r->code, GRPC_RESOURCE_EXHAUSTED);
    ck_assert_str_eq(r->message, "grpc: received message larger than max");
    ck_assert_int_eq(fx_call(&f, "after", 10, &tag[1]), 0);
    fx_shuttle(&f);
    ck_assert_int_eq(fx_resp_of(&f, &tag[1])->code, GRPC_OK);
    fx_close(&f);

    /* the server answers 5 MiB, the client takes 4 */
    fx_open(&f, &big, NULL);
    ck_assert_int_eq(fx_call(&f, "big", 3 * MIB, &tag[0]), 0);
    ck_assert_int_eq(fx_call(&f, "big2", 3 * MIB, &tag[1]), 0);
    f.hold = true;
    fx_shuttle(&f);
    ck_assert_uint_eq(f.n_reqs, 2);
    /* 3 MiB in, but the echo's answer to "big" is made 5 MiB: a bigger address */
    {
        V1beta1__MapperInfo *m = f.reqs[0].req->mapper;

        if (strcmp(m->name, "big") != 0)
            m = f.reqs[1].req->mapper;
        m->address.len = 5 * MIB;
        m->address.data = realloc(m->address.data, 5 * MIB);
        ck_assert_ptr_nonnull(m->address.data);
        memset(m->address.data, 'b', 5 * MIB);
    }
    fx_answer(&f, 0);
    fx_answer(&f, 1);
    fx_shuttle(&f);
    ck_assert_int_eq(fx_resp_of(&f, &tag[0])->code, GRPC_RESOURCE_EXHAUSTED);
    ck_assert_int_eq(fx_resp_of(&f, &tag[1])->code, GRPC_OK);
    fx_close(&f);
}
END_TEST

START_TEST(large_messages_at_once_are_bounded)
{
    struct fx f;
    size_t i, ok = 0, refused = 0;

    /* 4 x max_msg may arrive at once: of five 3.5 MiB requests in flight, one is refused */
    fx_open(&f, NULL, NULL);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(fx_call(&f, "big", 7 * MIB / 2, &tag[i]), 0);
    fx_shuttle(&f);
    for (i = 0; i < 5; i++) {
        struct fx_resp *r = fx_resp_of(&f, &tag[i]);

        ck_assert_int_eq(r->times, 1);
        if (r->code == GRPC_OK)
            ok++;
        else if (r->code == GRPC_RESOURCE_EXHAUSTED &&
                 strcmp(r->message, "grpc: too many large messages arriving at once") == 0)
            refused++;
    }
    ck_assert_uint_ge(refused, 1);
    ck_assert_uint_eq(ok + refused, 5);
    /* and the budget came back */
    ck_assert_int_eq(fx_call(&f, "big", 7 * MIB / 2, &tag[5]), 0);
    fx_shuttle(&f);
    ck_assert_int_eq(fx_resp_of(&f, &tag[5])->code, GRPC_OK);
    fx_close(&f);
}
END_TEST

START_TEST(garbage_is_a_connection_error)
{
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct fx f;
    const uint8_t *out;
    size_t n;

    fx_open(&f, NULL, NULL);
    ck_assert_int_lt(grpc_conn_recv(f.srv, (const uint8_t *)junk, sizeof(junk) - 1), 0);
    ck_assert(!grpc_conn_want_read(f.srv));
    ck_assert_int_lt(grpc_conn_recv(f.srv, (const uint8_t *)junk, 3), 0);
    while ((n = grpc_conn_output(f.srv, &out)) > 0)
        grpc_conn_consumed(f.srv, n);
    ck_assert(grpc_conn_done(f.srv));
    fx_close(&f);

    /* after a good preface: a frame of an unknown stream state (DATA on stream 1, idle) */
    fx_open(&f, NULL, NULL);
    fx_shuttle(&f);
    {
        static const uint8_t data1[] = {0, 0, 1, 0, 0, 0, 0, 0, 1, 'x'};

        (void)grpc_conn_recv(f.srv, data1, sizeof(data1));
    }
    /* the server says GOAWAY; the client sees it, and new calls are refused */
    fx_shuttle(&f);
    ck_assert(grpc_conn_done(f.srv));
    ck_assert_int_eq(fx_call(&f, "late", 1, &tag[0]), -ESHUTDOWN);
    fx_close(&f);
}
END_TEST

static void raw_body(uint8_t *b, uint8_t flag, uint32_t len)
{
    grpc_wire_prefix(b, len);
    b[0] = flag;
    memset(b + 5, 0, len);
}

START_TEST(wrong_content_type_and_compressed)
{
    struct fx f;
    struct raw r;
    uint8_t body[5 + 4];

    fx_open(&f, NULL, NULL);
    raw_open(&r);
    raw_body(body, 0, 4);
    ck_assert_int_gt(raw_request(&r, "application/json", body, sizeof(body), true), 0);
    raw_shuttle(&r, f.srv);
    ck_assert_int_eq(r.status, 415);
    ck_assert_int_eq(r.grpc_status, GRPC_INVALID_ARGUMENT);
    ck_assert_str_eq(r.grpc_message, "invalid gRPC request content-type");
    ck_assert(r.closed);
    raw_close(&r);
    fx_close(&f);

    fx_open(&f, NULL, NULL);
    raw_open(&r);
    raw_body(body, 1, 4);
    ck_assert_int_gt(raw_request(&r, "application/grpc+proto", body, sizeof(body), true), 0);
    raw_shuttle(&r, f.srv);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.grpc_status, GRPC_UNIMPLEMENTED);
    ck_assert_uint_eq(f.n_reqs, 0);
    raw_close(&r);
    fx_close(&f);
}
END_TEST

START_TEST(peer_reset_and_cancel)
{
    struct fx f;
    struct raw r;
    uint8_t body[5];
    int32_t id;

    /* a raw client resets a stream the server holds */
    fx_open(&f, NULL, NULL);
    f.hold = true;
    raw_open(&r);
    raw_body(body, 0, 0);
    id = raw_request(&r, "application/grpc", body, sizeof(body), true);
    raw_shuttle(&r, f.srv);
    ck_assert_uint_eq(f.n_reqs, 1);
    ck_assert_ptr_nonnull(f.reqs[0].req); /* an empty message parses */
    ck_assert_int_eq(nghttp2_submit_rst_stream(r.s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL), 0);
    raw_shuttle(&r, f.srv);
    ck_assert_uint_eq(f.n_cancelled, 1);
    ck_assert_int_eq(f.cancelled[0], f.reqs[0].stream);
    ck_assert_int_eq(grpc_reply(f.srv, f.reqs[0].stream, GRPC_OK, NULL, NULL), -ENOENT);
    raw_close(&r);
    fx_close(&f);

    /* the client cancels one call before it left and one the server holds */
    fx_open(&f, NULL, NULL);
    f.hold = true;
    ck_assert_int_eq(fx_call(&f, "held", 1, &tag[0]), 0);
    fx_shuttle(&f);
    ck_assert_int_eq(fx_call(&f, "never", 1, &tag[1]), 0);
    grpc_cancel(f.cli, &tag[1]);
    grpc_cancel(f.cli, &tag[0]);
    ck_assert_uint_eq(grpc_conn_open_streams(f.cli), 0);
    fx_shuttle(&f);
    ck_assert_uint_eq(f.n_resps, 0);
    ck_assert_uint_eq(f.n_cancelled, 1);
    ck_assert_uint_le(f.n_reqs, 2);
    ck_assert_int_eq(fx_call(&f, "after", 1, &tag[2]), 0);
    fx_shuttle(&f);
    ck_assert_uint_eq(f.n_resps, 0);
    fx_answer(&f, f.n_reqs - 1);
    fx_shuttle(&f);
    ck_assert_int_eq(fx_resp_of(&f, &tag[2])->code, GRPC_OK);
    fx_close(&f);
}
END_TEST

START_TEST(free_with_calls_open)
{
    struct fx f;
    size_t i;

    fx_open(&f, NULL, NULL);
    f.hold = true;
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(fx_call(&f, "x", 1, &tag[i]), 0);
    fx_shuttle(&f);
    ck_assert_int_eq(fx_call(&f, "unsent", 1, &tag[3]), 0);
    grpc_conn_free(f.cli);
    f.cli = NULL;
    for (i = 0; i < 4; i++) {
        struct fx_resp *r = fx_resp_of(&f, &tag[i]);

        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(r->times, 1);
        ck_assert_int_eq(r->code, GRPC_UNAVAILABLE);
        ck_assert_str_eq(r->message, "connection closed");
    }
    fx_close(&f);
}
END_TEST

/* ---- every allocation failure on a round trip ------------------------------------------- */

static int round_trip(void *ctx)
{
    struct fx *f = ctx;
    struct fx_resp *r;
    int rv;

    memset(f, 0, sizeof(*f));
    rv = grpc_conn_new(true, &fx_server_ops, f, NULL, &f->srv);
    if (rv < 0)
        return rv;
    rv = grpc_conn_new(false, &fx_client_ops, f, NULL, &f->cli);
    if (rv == 0)
        rv = fx_call(f, "m", 100, &tag[0]);
    if (rv == 0)
        fx_shuttle(f);
    r = fx_resp_of(f, &tag[0]);
    if (rv == 0 && (!r || r->code != GRPC_OK))
        rv = -ENOMEM;
    fx_close(f);
    if (f->srv == NULL || rv < 0)
        return -ENOMEM;
    return 0;
}

START_TEST(allocation_failures)
{
    static const int ok[] = {-ENOMEM};
    struct fx *f = malloc(sizeof(*f));

    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(round_trip, f, ok, 1), 10);
    unit_libc_allocs();
    free(f);
}
END_TEST

/* ---- grpc_fd over a real unix socket ---------------------------------------------------- */

static void serve_one(int lfd)
{
    struct fx f;
    struct pollfd p = {lfd, POLLIN, 0};
    int fd;

    memset(&f, 0, sizeof(f));
    if (poll(&p, 1, 10000) != 1)
        _exit(2);
    fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    if (fd < 0 || grpc_conn_new(true, &fx_server_ops, &f, NULL, &f.srv) < 0)
        _exit(3);
    while (grpc_fd_pump(f.srv, fd, 10000) == 0)
        ;
    grpc_conn_free(f.srv);
    _exit(0);
}

START_TEST(fd_unary_over_unix_socket)
{
    V1beta1__MapperRegisterRequest req = V1BETA1__MAPPER_REGISTER_REQUEST__INIT;
    V1beta1__MapperInfo info = V1BETA1__MAPPER_INFO__INIT;
    ProtobufCMessage *resp;
    char path[64], *message;
    int lfd, code, st;
    pid_t pid;

    (void)snprintf(path, sizeof(path), "/tmp/kedge-unit-grpc-%d.sock", (int)getpid());
    lfd = grpc_fd_listen_unix(path, 0600);
    ck_assert_int_ge(lfd, 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        serve_one(lfd);
    close(lfd);
    info.name = "fd-mapper";
    info.address.data = (uint8_t *)"/x";
    info.address.len = 2;
    req.mapper = &info;
    ck_assert_int_eq(grpc_fd_unary(path, MR_PATH, &req.base,
                                   &v1beta1__mapper_register_response__descriptor, 5000, &resp,
                                   &code, &message),
                     0);
    ck_assert_int_eq(code, GRPC_OK);
    ck_assert_ptr_null(message);
    ck_assert_str_eq(((V1beta1__MapperRegisterResponse *)resp)->modellist[0]->name, "fd-mapper");
    ck_assert_str_eq(((V1beta1__MapperRegisterResponse *)resp)->devicelist[0]->name, "/x");
    protobuf_c_message_free_unpacked(resp, NULL);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* the server is gone: the socket refuses */
    ck_assert_int_lt(grpc_fd_unary(path, MR_PATH, &req.base,
                                   &v1beta1__mapper_register_response__descriptor, 1000, &resp,
                                   &code, &message),
                     0);
    /* a regular file is not replaced */
    unlink(path);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    ck_assert_int_eq(grpc_fd_listen_unix(path, 0600), -EEXIST);
    unlink(path);
}
END_TEST

static Suite *grpc_suite(void)
{
    Suite *s = suite_create("grpc");
    TCase *tc = tcase_create("grpc");

    tcase_add_test(tc, unary_round_trip);
    tcase_add_test(tc, error_status_and_message);
    tcase_add_test(tc, many_calls_interleaved);
    tcase_add_test(tc, four_mib_both_ways);
    tcase_add_test(tc, oversize_is_answered_and_connection_lives);
    tcase_add_test(tc, large_messages_at_once_are_bounded);
    tcase_add_test(tc, garbage_is_a_connection_error);
    tcase_add_test(tc, wrong_content_type_and_compressed);
    tcase_add_test(tc, peer_reset_and_cancel);
    tcase_add_test(tc, free_with_calls_open);
    tcase_add_test(tc, allocation_failures);
    tcase_add_test(tc, fd_unary_over_unix_socket);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return unit_run(grpc_suite());
}
