/* test_stream's exec/attach TCase: `kubectl exec` and `kubectl attach` end to end. The test is
 * the API server in front of cloudsim's stream port (cloudcore's CloudStream model hijacks an
 * /exec or /attach upgrade and pipes it raw through the tunnel), speaking kubectl 1.32's
 * WebSocket v5 (and SPDY/3.1) with the codec suites' client (tests/unit/rc_fixture.c);
 * kedge-bridge serves it with exec.c on the engine's exec/attach sessions.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>

#include "rc_fixture.h"
#include "test_stream.h"

#define CONCURRENT 10
#define SUCCESS "{\"metadata\":{},\"status\":\"Success\"}"

/* ---- a WebSocket v5 client over a TCP connection to cloudsim's stream port --------------- */

struct wsc {
    int fd;
    struct rec r; /* r.out: every byte from the server (the 101 head, then frames) */
    bool eof;
};

/* What the server sent after the 101, by channel. */
struct wsres {
    struct kedge_buf out, err, status;
    bool closed; /* a close frame */
};

static void wsc_open(struct wsc *c, const char *path_query)
{
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
                     "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n"
                     "User-Agent: kubectl/v1.32.4 (test_stream)\r\n\r\n",
                     path_query);

    ck_assert_int_lt(n, (int)sizeof(req));
    memset(c, 0, sizeof(*c));
    rec_init(&c->r);
    c->fd = kt_connect_tcp(simctl_stream_port(sim));
    ck_assert_int_ge(c->fd, 0);
    ck_assert_int_eq(write(c->fd, req, (size_t)n), n);
}

/* All of b, within the deadline (a server that stops taking bytes fails the test, never hangs
 * it). */
static void wsc_send(struct wsc *c, const struct kedge_buf *b)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    size_t off = 0;

    while (off < b->len) {
        struct pollfd p = {c->fd, POLLOUT, 0};
        ssize_t w;

        ck_assert_msg(kt_now_ms() < deadline, "the server took %zu of %zu bytes", off, b->len);
        if (poll(&p, 1, 200) <= 0)
            continue;
        w = send(c->fd, b->data + off, b->len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        ck_assert_msg(w > 0 || errno == EAGAIN || errno == EINTR, "send: %s", strerror(errno));
        if (w > 0)
            off += (size_t)w;
    }
}

/* Read what comes within timeout_ms: 1 something, 0 nothing, -1 the server closed. */
static int wsc_pump(struct wsc *c, int timeout_ms)
{
    return stream_read(c->fd, &c->eof, &c->r.out, timeout_ms);
}

static void wsc_finish(struct wsc *c, const char *what)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (!c->eof) {
        ck_assert_msg(kt_now_ms() < deadline, "%s: the server did not close: %.*s", what,
                      (int)c->r.out.len, c->r.out.data ? c->r.out.data : "");
        (void)wsc_pump(c, 200);
    }
}

static void wsc_close(struct wsc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->r.rc = NULL; /* the fixture's rec frees an rc: this client has none */
    rec_cleanup(&c->r);
}

/* The 101 for v5, then the frames, sorted by channel. */
static void wsc_result(const struct wsc *c, struct wsres *res, const char *what)
{
    struct wsf *f = calloc(4096, sizeof(*f));
    size_t n, i;

    ck_assert_ptr_nonnull(f);
    memset(res, 0, sizeof(*res));
    ck_assert_msg(c->r.out.data && !strncmp(c->r.out.data, "HTTP/1.1 101 ", 13),
                  "%s: not upgraded: %s", what, c->r.out.data ? c->r.out.data : "(nothing)");
    ck_assert_ptr_nonnull(strstr(c->r.out.data, "Sec-WebSocket-Protocol: v5.channel.k8s.io"));
    n = ws_parse(&c->r, head_len(&c->r), f, 4096);
    for (i = 0; i < n; i++) {
        struct kedge_buf *to = NULL;

        if (f[i].op == 8) {
            res->closed = true;
            continue;
        }
        ck_assert_int_eq(f[i].op, 2);
        ck_assert_uint_ge(f[i].n, 1);
        if (f[i].p[0] == 1)
            to = &res->out;
        else if (f[i].p[0] == 2)
            to = &res->err;
        else if (f[i].p[0] == 3)
            to = &res->status;
        ck_assert_msg(to != NULL, "%s: a message on channel %d", what, f[i].p[0]);
        ck_assert_int_eq(kedge_buf_append(to, f[i].p + 1, f[i].n - 1), 0);
        ck_assert_int_eq(kedge_buf_putc(to, '\0'), 0); /* keep it a C string ... */
        to->len--;                                     /* ... of the bytes only */
    }
    free(f);
}

static void wsres_cleanup(struct wsres *res)
{
    kedge_buf_cleanup(&res->out);
    kedge_buf_cleanup(&res->err);
    kedge_buf_cleanup(&res->status);
}

static const char *text(const struct kedge_buf *b)
{
    return b->data ? b->data : "";
}

/* One whole exec/attach: the request, stdin (NULL: none), v5's close of stdin when eof, the
 * end. */
static void ws_run(const char *path_query, const char *in, bool eof, struct wsres *res)
{
    struct wsc c;
    struct kedge_buf b = KEDGE_BUF_INIT;

    wsc_open(&c, path_query);
    if (in) {
        ws_msg(&b, 0, in, strlen(in));
        if (eof)
            ws_frame(&b, true, 2, "\xff\x00", 2);
        wsc_send(&c, &b);
    }
    wsc_finish(&c, path_query);
    wsc_result(&c, res, path_query);
    kedge_buf_cleanup(&b);
    wsc_close(&c);
}

/* ---- SPDY/3.1 (kubectl with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, kubectl < 1.30) ------ */

enum { ERR_ID = 1, IN_ID = 3, OUT_ID = 5, ERRS_ID = 7 };

/* One exec over SPDY: kubectl's upgrade (one header line per version), the streams error,
 * stdin (when in), stdout, stderr, stdin's data and FIN, then everything until the server
 * closes; the data sorted by stream. */
static void spdy_run(const char *path_query, const char *in, struct wsres *res, bool *goaway)
{
    struct spdy_client sc;
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct spdyf *f = calloc(4096, sizeof(*f));
    struct wsc c;
    char req[2048];
    size_t n, i;
    int len = snprintf(req, sizeof(req),
                       "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
                       "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                       "X-Stream-Protocol-Version: v3.channel.k8s.io\r\n"
                       "X-Stream-Protocol-Version: v2.channel.k8s.io\r\n"
                       "X-Stream-Protocol-Version: channel.k8s.io\r\nContent-Length: 0\r\n\r\n",
                       path_query);

    ck_assert_ptr_nonnull(f);
    memset(&c, 0, sizeof(c));
    rec_init(&c.r);
    c.fd = kt_connect_tcp(simctl_stream_port(sim));
    ck_assert_int_ge(c.fd, 0);
    ck_assert_int_eq(write(c.fd, req, (size_t)len), len);
    spdy_client_init(&sc);
    spdy_syn_stream(&sc, &b, ERR_ID, "error", false);
    if (in)
        spdy_syn_stream(&sc, &b, IN_ID, "stdin", false);
    spdy_syn_stream(&sc, &b, OUT_ID, "stdout", false);
    spdy_syn_stream(&sc, &b, ERRS_ID, "stderr", false);
    if (in) {
        spdy_data(&b, IN_ID, false, in, strlen(in));
        spdy_data(&b, IN_ID, true, "", 0);
    }
    wsc_send(&c, &b);
    wsc_finish(&c, path_query);
    ck_assert_msg(c.r.out.data && !strncmp(c.r.out.data, "HTTP/1.1 101 ", 13), "not upgraded: %s",
                  c.r.out.data ? c.r.out.data : "(nothing)");
    ck_assert_ptr_nonnull(strstr(c.r.out.data, "X-Stream-Protocol-Version: v4.channel.k8s.io"));
    memset(res, 0, sizeof(*res));
    *goaway = false;
    n = spdy_parse(&sc, &c.r, head_len(&c.r), f, 4096);
    for (i = 0; i < n; i++) {
        struct kedge_buf *to = NULL;

        if (f[i].control) {
            *goaway |= f[i].type == 7;
            continue;
        }
        to = f[i].id == OUT_ID    ? &res->out
             : f[i].id == ERRS_ID ? &res->err
             : f[i].id == ERR_ID  ? &res->status
                                  : NULL;
        if (!to || !f[i].n)
            continue;
        ck_assert_int_eq(kedge_buf_append(to, f[i].p, f[i].n), 0);
        ck_assert_int_eq(kedge_buf_putc(to, '\0'), 0);
        to->len--;
    }
    free(f);
    kedge_buf_cleanup(&b);
    spdy_client_cleanup(&sc);
    wsc_close(&c);
}

/* ---- the engine --------------------------------------------------------------------------- */

/* Processes of the pod's container "c" whose command line holds cmd (the engine's top). */
static int processes_with(const char *pod_uid, const char *cmd)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *p, *col;
    char id[80], path[160];
    int status = 0, n = 0;

    app_container(pod_uid, "c", id, sizeof(id), NULL);
    ck_assert_msg(id[0], "no running container c in pod %s", pod_uid);
    snprintf(path, sizeof(path), "/v1.41/containers/%s/top", id);
    ck_assert_int_eq(enginectl_http_json(engine, "GET", path, NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    for (p = kedge_json_get(kedge_jdoc_root(doc), "Processes")->child; p; p = p->next) {
        bool hit = false;
        for (col = p->child; col; col = col->next)
            hit |= col->str && strstr(col->str, cmd) != NULL;
        n += hit;
    }
    kedge_jdoc_free(doc);
    return n;
}

/* Open descriptors of kedge-bridge (its engine connections among them). */
static int bridge_fds(void)
{
    char path[64];
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)bridgectl_pid(bridge));
    d = opendir(path);
    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* kedge-bridge's peak resident size (VmHWM), kB. */
static long bridge_hwm_kb(void)
{
    char path[64], line[256];
    FILE *f;
    long kb = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)bridgectl_pid(bridge));
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* A big stdin (what `kubectl cp` into a pod sends: tar on exec's stdin) in 32 KiB messages,
 * then EOF, to `wc -c` that starts reading only once all of it was sent (a second exec opens
 * its gate): the engine's socket fills and the rest waits in the bridge, then every byte
 * arrives. (The bridge has no flow control towards the client: it holds what the process has
 * not read yet; its peak RSS is printed.) */
static void big_stdin(size_t total)
{
    static char chunk[32768];
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct wsres res;
    struct wsc c;
    char want[32];
    long hwm0 = bridge_hwm_kb();

    memset(chunk, 'x', sizeof(chunk));
    wsc_open(&c, "/exec/default/shell/c?command=sh&command=-c&command=while+%5B+%21+-e+%2Ftmp%2Fgo+"
                 "%5D%3B+do+sleep+0.1%3B+done%3B+wc+-c&input=1&output=1&error=1");
    for (size_t sent = 0; sent < total; sent += sizeof(chunk)) {
        kedge_buf_reset(&b);
        ws_msg(&b, 0, chunk, sizeof(chunk));
        wsc_send(&c, &b);
    }
    kedge_buf_reset(&b);
    ws_frame(&b, true, 2, "\xff\x00", 2);
    wsc_send(&c, &b);
    ws_run("/exec/default/shell/c?command=touch&command=%2Ftmp%2Fgo&output=1&error=1", NULL, false,
           &res);
    ck_assert_str_eq(text(&res.status), SUCCESS);
    wsres_cleanup(&res);
    wsc_finish(&c, "a big stdin");
    wsc_result(&c, &res, "a big stdin");
    snprintf(want, sizeof(want), "%zu\n", total);
    ck_assert_str_eq(text(&res.out), want);
    ck_assert_str_eq(text(&res.status), SUCCESS);
    fprintf(stderr,
            "test_stream: %zu bytes of exec stdin: kedge-bridge's peak RSS %ld kB -> %ld kB\n",
            total, hwm0, bridge_hwm_kb());
    wsres_cleanup(&res);
    kedge_buf_cleanup(&b);
    wsc_close(&c);
}

/* ---- the TCase ---------------------------------------------------------------------------- */

static void send_stdin_pod(const char *name, const char *script)
{
    sim_send(ROUTE("insert", "default/pod/%s") "{\"metadata\":{\"name\":\"%s\",\"namespace\":"
                                               "\"default\",\"uid\":\"uid-%s\"},\"spec\":{"
                                               "\"nodeName\":\"" NODE "\",\"restartPolicy\":"
                                               "\"Never\",\"terminationGracePeriodSeconds\":0,"
                                               "\"containers\":[{\"name\":\"c\",\"image\":"
                                               "\"localhost/busybox:edge\",\"stdin\":true,"
                                               "\"command\":[\"sh\",\"-c\",\"%s\"]}]}}}",
             name, name, name, script);
}

START_TEST(exec_and_attach)
{
    struct wsres res;
    static struct wsc many[CONCURRENT];
    struct kedge_buf b = KEDGE_BUF_INIT;
    int64_t deadline;
    int i;

    if (skip_without_engine())
        return;
    stream_chain_up();
    send_pod("shell", "Always", "sleep 1000");
    send_stdin_pod("reader", "read x; echo got $x; exit 4");
    wait_pod("shell", running_ready, NULL, "Running");
    wait_pod("reader", running_ready, NULL, "Running");

    /* output on both streams and the exit code (kubectl exits 3) */
    ws_run("/exec/default/shell/c?command=sh&command=-c&command=echo+out%3B+echo+err+%3E%262%3B"
           "+exit+3&output=1&error=1",
           NULL, false, &res);
    ck_assert_str_eq(text(&res.out), "out\n");
    ck_assert_str_eq(text(&res.err), "err\n");
    ck_assert_msg(strstr(text(&res.status), "\"reason\":\"NonZeroExitCode\"") &&
                      strstr(text(&res.status), "exit code 3"),
                  "status: %s", text(&res.status));
    ck_assert(res.closed);
    wsres_cleanup(&res);

    /* cat: stdin and its EOF (v5's close of channel 0) */
    ws_run("/exec/default/shell/c?command=cat&input=1&output=1&error=1", "hello\nworld\n", true,
           &res);
    ck_assert_str_eq(text(&res.out), "hello\nworld\n");
    ck_assert_str_eq(text(&res.status), SUCCESS);
    wsres_cleanup(&res);

    /* the same over SPDY/3.1 (v4: the status JSON on the error stream, then GOAWAY) */
    {
        bool goaway = false;
        spdy_run(
            "/exec/default/shell/c?command=sh&command=-c&command=echo+out%3B+echo+err+%3E%262%3B"
            "+exit+3&output=1&error=1",
            NULL, &res, &goaway);
        ck_assert_str_eq(text(&res.out), "out\n");
        ck_assert_str_eq(text(&res.err), "err\n");
        ck_assert_msg(strstr(text(&res.status), "exit code 3"), "status: %s", text(&res.status));
        ck_assert(goaway);
        wsres_cleanup(&res);
        spdy_run("/exec/default/shell/c?command=cat&input=1&output=1&error=1", "over spdy\n", &res,
                 &goaway);
        ck_assert_str_eq(text(&res.out), "over spdy\n");
        ck_assert_str_eq(text(&res.status), SUCCESS);
        wsres_cleanup(&res);
    }

    big_stdin(4u << 20);

    /* a pod or container the node does not have: kubelet's answers, no upgrade */
    {
        struct wsc c;
        wsc_open(&c, "/exec/default/nope/c?command=ls&output=1");
        wsc_finish(&c, "exec in a pod the node does not have");
        ck_assert_msg(!strncmp(c.r.out.data, "HTTP/1.1 404 ", 13), "%s", c.r.out.data);
        ck_assert_ptr_nonnull(strstr(c.r.out.data, "\r\n\r\npod does not exist"));
        wsc_close(&c);
        wsc_open(&c, "/exec/default/shell/x?command=ls&output=1");
        wsc_finish(&c, "exec in a container the pod does not have");
        ck_assert_msg(!strncmp(c.r.out.data, "HTTP/1.1 500 ", 13), "%s", c.r.out.data);
        ck_assert_ptr_nonnull(strstr(c.r.out.data, "\r\n\r\ncontainer not found (\"x\")"));
        wsc_close(&c);
    }

    /* 10 at once: each waits for its stdin, so all are open together */
    for (i = 0; i < CONCURRENT; i++)
        wsc_open(&many[i], "/exec/default/shell/c?command=sh&command=-c&command=read+x%3B+echo+"
                           "n%3D%24x&input=1&output=1");
    wait_metric("kedge_bridge_stream_connections", CONCURRENT, "10 execs open");
    for (i = 0; i < CONCURRENT; i++) {
        char line[16];
        int n = snprintf(line, sizeof(line), "%d\n", i);
        kedge_buf_reset(&b);
        ws_msg(&b, 0, line, (size_t)n);
        wsc_send(&many[i], &b);
    }
    for (i = 0; i < CONCURRENT; i++) {
        char want[16];
        wsc_finish(&many[i], "one of 10 execs");
        wsc_result(&many[i], &res, "one of 10 execs");
        snprintf(want, sizeof(want), "n=%d\n", i);
        ck_assert_str_eq(text(&res.out), want);
        ck_assert_str_eq(text(&res.status), SUCCESS);
        wsres_cleanup(&res);
        wsc_close(&many[i]);
    }
    wait_metric("kedge_bridge_stream_connections", 0, "the 10 execs ended");

    /* the client goes away under a running `yes`: cloudsim's REMOVE_CONNECT, the bridge cancels
     * the session (closes the engine's exec stream) and forgets the connection; kubelet leaves
     * the process to the runtime, and `yes` dies of its closed stdout (SIGPIPE) */
    {
        struct wsc c;
        int fds = bridge_fds();
        wsc_open(&c, "/exec/default/shell/c?command=yes&output=1");
        deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
        while (c.r.out.len < 65536) {
            ck_assert_msg(kt_now_ms() < deadline, "yes: %zu bytes", c.r.out.len);
            ck_assert_int_ne(wsc_pump(&c, 200), -1);
        }
        ck_assert_int_eq(processes_with("uid-shell", "yes"), 1);
        wsc_close(&c);
        wait_metric("kedge_bridge_stream_connections", 0, "the abandoned exec is gone");
        ck_assert_int_eq(sim_stream("connections"), 0);
        /* the session's engine connection is closed with it */
        deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
        while (bridge_fds() > fds) {
            ck_assert_msg(kt_now_ms() < deadline, "kedge-bridge holds %d descriptors, %d before",
                          bridge_fds(), fds);
            kt_pause_ms(PAUSE_MS);
        }
        /* what is true on podman and dockerd alike: the engine keeps draining the process's
         * output once its exec stream is gone, so nothing stops `yes`; kubelet does not kill
         * it either (the CRI has no call for it) */
        ck_assert_int_eq(processes_with("uid-shell", "yes"), 1);
        ws_run("/exec/default/shell/c?command=killall&command=yes&output=1&error=1", NULL, false,
               &res);
        ck_assert_str_eq(text(&res.status), SUCCESS);
        wsres_cleanup(&res);
        deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
        while (processes_with("uid-shell", "yes") != 0) {
            ck_assert_msg(kt_now_ms() < deadline, "`yes` still runs after killall");
            kt_pause_ms(PAUSE_MS);
        }
    }

    /* attach to a container that reads its stdin: our line reaches it, its answer comes back,
     * and its end is the attach's end (Success whatever its exit code). No EOF: dockerd ends
     * an attach (closes its output) when the client's stdin ends, as `docker attach` does. */
    ws_run("/attach/default/reader/c?input=1&output=1&error=1", "edge\n", false, &res);
    ck_assert_msg(!strcmp(text(&res.out), "got edge\n"), "attach: out \"%s\" err \"%s\" status %s",
                  text(&res.out), text(&res.err), text(&res.status));
    ck_assert_str_eq(text(&res.status), SUCCESS);
    wsres_cleanup(&res);
    wait_metric("kedge_bridge_stream_connections", 0, "every exec and attach ended");
    ck_assert_int_eq(sim_stream("connections"), 0);
    kedge_buf_cleanup(&b);
    teardown();
}
END_TEST

void stream_exec_tcase(Suite *s)
{
    TCase *tc = tcase_create("exec");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, exec_and_attach);
    suite_add_tcase(s, tc);
}
