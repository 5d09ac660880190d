/* tc_stream.c: cloudcore's CloudStream as kedge-cloudsim models it (stream.c, streamapi.c). A
 * test edge opens the tunnel (wsc, as edgecore's edgestream dials it) and a test API server
 * calls the stream port, and each side sees what cloudcore v1.15.4 gives it: the *_CONNECT
 * JSON byte for byte as Go's json.Marshal writes pkg/stream's Edged*Connection, DATA as chunks
 * (logs) or raw bytes (a hijacked exec), REMOVE_CONNECT both ways, 500 without a tunnel or an
 * upgrade, a binary frame ending the session.
 */
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "httpc.h"
#include "kedge/alloc.h"
#include "simtest.h"

static struct wsc_opts tunnel_opts(struct simctl *s)
{
    struct wsc_opts o = edge_opts(s, NULL);

    o.node_id = o.project_id = o.conn_use = NULL;
    o.port = simctl_tunnel_port(s);
    o.path = "/v1/kubeedge/connect";
    o.session_node = "edge-node";
    o.session_ip = "127.0.0.1";
    return o;
}

/* The next frame from the cloud: its data (the caller frees); ids and types here are one
 * uvarint byte each. */
static char *next_frame(struct wsc *w, unsigned *id, unsigned *type, size_t *len)
{
    size_t n;
    char *raw = wsc_next_raw(w, &n), *data;

    ck_assert_uint_ge(n, 2);
    ck_assert((unsigned char)raw[0] < 0x80 && (unsigned char)raw[1] < 0x80);
    *id = (unsigned char)raw[0];
    *type = (unsigned char)raw[1];
    *len = n - 2;
    data = strndup(raw + 2, n - 2);
    ck_assert_ptr_nonnull(data);
    kedge_free(raw);
    return data;
}

static void send_frame(struct wsc *w, unsigned id, unsigned type, const char *data, int flags)
{
    char buf[512];
    size_t n = strlen(data);

    ck_assert(id < 0x80 && type < 0x80 && n + 2 <= sizeof(buf));
    buf[0] = (char)id;
    buf[1] = (char)type;
    memcpy(buf + 2, data, n);
    wsc_queue(w, buf, n + 2, flags);
    wsc_quiet(w, 50); /* run the client's loop: the frame goes out */
}

/* The test's API server connection. */
struct api {
    int fd;
    struct kedge_buf in;
    bool eof;
};

static void api_open(struct api *a, struct simctl *s, const char *request)
{
    memset(a, 0, sizeof(*a));
    a->fd = kt_connect_tcp(simctl_stream_port(s));
    ck_assert_int_ge(a->fd, 0);
    ck_assert_int_eq(write(a->fd, request, strlen(request)), (ssize_t)strlen(request));
}

/* Read until the bytes hold want (or, want NULL, until the server closed). */
static void api_until(struct api *a, const char *want)
{
    int64_t deadline = mono_ms() + DEADLINE_MS;
    char buf[4096];

    while (want ? !(a->in.data && strstr(a->in.data, want)) : !a->eof) {
        struct pollfd p = {a->fd, POLLIN, 0};
        ssize_t n;
        ck_assert_msg(mono_ms() < deadline, "API server side: no \"%s\" in: %s",
                      want ? want : "(close)", a->in.data ? a->in.data : "");
        if (poll(&p, 1, 100) <= 0)
            continue;
        n = read(a->fd, buf, sizeof(buf));
        if (n <= 0) {
            ck_assert_msg(!want, "closed before \"%s\": %s", want, a->in.data ? a->in.data : "");
            a->eof = true;
            break;
        }
        ck_assert_int_eq(kedge_buf_append(&a->in, buf, (size_t)n), 0);
    }
}

static void api_close(struct api *a)
{
    close(a->fd);
    kedge_buf_cleanup(&a->in);
}

static int64_t stream_state(struct simctl *s, const char *key)
{
    struct kedge_jdoc *doc = NULL;
    int status = 0;
    int64_t n = -1;

    ck_assert_int_eq(simctl_http_json(s, "GET", "/stream", NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    (void)kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), key), &n);
    kedge_jdoc_free(doc);
    return n;
}

START_TEST(test_stream_logs)
{
    struct simctl *s = sim_start(30, 5);
    struct wsc_opts o = tunnel_opts(s);
    struct wsc w;
    struct api a;
    unsigned id, type;
    size_t n;
    char *d;

    /* no tunnel: the stream server fails the request (the handlers' deferred 500) */
    api_open(&a, s, "GET /containerLogs/default/web/app HTTP/1.1\r\nHost: x\r\n\r\n");
    api_until(&a, NULL);
    ck_assert_msg(!strncmp(a.in.data, "HTTP/1.1 500 ", 13), "%s", a.in.data);
    api_close(&a);

    wsc_open(&w, s, &o);
    ck_assert_int_eq(w.state, WSC_OPEN);
    ck_assert_int_eq(stream_state(s, "tunnels_total"), 1);
    /* the request as cloudcore marshals it: url with scheme and host rewritten, the header's
     * names canonical and sorted, repeated ones in one array, Host not among them, & escaped */
    api_open(&a, s,
             "GET /containerLogs/default/web/app?follow=true&tailLines=2 HTTP/1.1\r\n"
             "Host: 127.0.0.1:10250\r\nx-forwarded-for: a\r\nUser-Agent: kube-apiserver\r\n"
             "X-Forwarded-For: b\r\n\r\n");
    d = next_frame(&w, &id, &type, &n);
    ck_assert_uint_eq(id, 1); /* nextMessageID starts at 1 */
    ck_assert_uint_eq(type, 0);
    ck_assert_str_eq(d, "{\"MessID\":1,\"url\":{\"Scheme\":\"http\",\"Opaque\":\"\",\"User\":null,"
                        "\"Host\":\"127.0.0.1:10350\",\"Path\":\"/containerLogs/default/web/app\","
                        "\"RawPath\":\"\",\"OmitHost\":false,\"ForceQuery\":false,"
                        "\"RawQuery\":\"follow=true\\u0026tailLines=2\",\"Fragment\":\"\","
                        "\"RawFragment\":\"\"},\"header\":{\"User-Agent\":[\"kube-apiserver\"],"
                        "\"X-Forwarded-For\":[\"a\",\"b\"]}}");
    free(d);
    api_until(&a, "Transfer-Encoding: chunked\r\n");
    ck_assert(!strncmp(a.in.data, "HTTP/1.1 200 OK\r\n", 17));
    send_frame(&w, 1, 3, "hello\n", LWS_WRITE_TEXT); /* DATA: a chunk */
    api_until(&a, "\r\n\r\n6\r\nhello\n\r\n");
    send_frame(&w, 1, 4, "", LWS_WRITE_TEXT); /* REMOVE_CONNECT: the body ends */
    api_until(&a, NULL);
    ck_assert(strstr(a.in.data, "hello\n\r\n0\r\n\r\n"));
    api_close(&a);

    /* the API server's client goes: REMOVE_CONNECT to the edge */
    api_open(&a, s, "GET /containerLogs/default/web/app HTTP/1.1\r\nHost: x\r\n\r\n");
    free(next_frame(&w, &id, &type, &n));
    ck_assert_uint_eq(id, 2);
    api_until(&a, "\r\n\r\n");
    api_close(&a);
    d = next_frame(&w, &id, &type, &n);
    ck_assert(id == 2 && type == 4 && n == 0);
    free(d);
    send_frame(&w, 99, 3, "nobody's", LWS_WRITE_TEXT); /* logged and dropped, tunnel kept */
    ck_assert_int_eq(stream_state(s, "connections"), 0);
    ck_assert_int_eq(w.state, WSC_OPEN);

    /* a binary frame ends the session (cloudcore: "Websocket message type must be 1") */
    send_frame(&w, 1, 3, "x", LWS_WRITE_BINARY);
    ck_assert(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS));
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

START_TEST(test_stream_exec_is_piped)
{
    struct simctl *s = sim_start(30, 5);
    struct wsc_opts o = tunnel_opts(s);
    struct wsc w;
    struct api a;
    unsigned id, type;
    size_t n;
    char *d;

    wsc_open(&w, s, &o);
    ck_assert_int_eq(w.state, WSC_OPEN);
    /* not an upgrade: 500, nothing to the edge */
    api_open(&a, s, "POST /exec/default/web/app?command=ls HTTP/1.1\r\nHost: x\r\n\r\n");
    api_until(&a, NULL);
    ck_assert_msg(!strncmp(a.in.data, "HTTP/1.1 500 ", 13), "%s", a.in.data);
    api_close(&a);
    /* an upgrade: EXEC_CONNECT with the method, then bytes both ways untouched */
    api_open(&a, s,
             "POST /exec/default/web/app?command=sh&command=-c&input=1 HTTP/1.1\r\nHost: x\r\n"
             "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n");
    d = next_frame(&w, &id, &type, &n);
    ck_assert_uint_eq(type, 1);
    ck_assert_msg(strstr(d, "\"Path\":\"/exec/default/web/app\"") &&
                      strstr(d, "\"RawQuery\":\"command=sh\\u0026command=-c\\u0026input=1\"") &&
                      strstr(d, "\"header\":{\"Connection\":[\"Upgrade\"],\"Upgrade\":[\"SPDY/"
                                "3.1\"]},\"method\":\"POST\"}"),
                  "%s", d);
    free(d);
    ck_assert_int_eq(write(a.fd, "stdin bytes", 11), 11);
    d = next_frame(&w, &id, &type, &n);
    ck_assert_uint_eq(type, 3);
    ck_assert_str_eq(d, "stdin bytes");
    free(d);
    send_frame(&w, id, 3, "HTTP/1.1 101 Switching Protocols\r\n\r\nout", LWS_WRITE_TEXT);
    api_until(&a, "out");
    ck_assert_str_eq(a.in.data, "HTTP/1.1 101 Switching Protocols\r\n\r\nout");
    send_frame(&w, id, 4, "", LWS_WRITE_TEXT);
    api_until(&a, NULL);
    api_close(&a);
    ck_assert_int_eq(stream_state(s, "connections"), 0);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

void cloudsim_add_stream_tests(TCase *tc)
{
    tcase_add_test(tc, test_stream_logs);
    tcase_add_test(tc, test_stream_exec_is_piped);
}
