/* cloudbridge/edged/probes.c: httpGet and tcpSocket probes against a tiny server on 127.0.0.1 (a
 * thread of this test: 200, 500, 302, a hang, a close without an answer, TLS), on a real lws
 * context built the way main.c builds it; exec probes through the Docker runtime's exec
 * against a stub engine_request that records the calls and answers when the test says so.
 *
 * Every test checks done() counts (exactly once, or never after a cancel) and that every block
 * probes.c allocated is freed (the counting allocator; valgrind covers lws' own).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "engine.h"
#include "probes.h"
#include "runtime_docker_exec.h"
#include "kedge/alloc.h"
#include "kedge/util.h"
#include "unit.h"

/* ---- the server thread --------------------------------------------------------------------- */

enum behaviour { B_OK, B_FAIL, B_REDIRECT, B_HANG, B_CLOSE, B_TLS, N_B };

static int listen_fd[N_B], port[N_B];
static int closed_port;        /* nothing listens there */
static int full_fd, full_port; /* a listener whose accept queue is full: SYNs dropped */
static int fillers[8], n_fillers;
static int wake[2];
static pthread_t server_thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char last_request[N_B][2048];
static int hang_fds[32], n_hang;
static SSL_CTX *server_tls;

static int listener(int backlog, int *port_out)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, backlog), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port_out = ntohs(sa.sin_port);
    return fd;
}

static size_t read_request(int c, SSL *s, char *buf, size_t n)
{
    size_t len = 0;

    while (len + 1 < n) {
        int k = s ? SSL_read(s, buf + len, (int)(n - 1 - len))
                  : (int)recv(c, buf + len, n - 1 - len, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    buf[len] = '\0';
    return len;
}

static void serve(enum behaviour b, int c)
{
    static const char *const answers[] = {
        [B_OK] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        [B_FAIL] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n"
                   "Connection: close\r\n\r\nbad\n",
        [B_REDIRECT] = "HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1:1/elsewhere\r\n"
                       "Content-Length: 0\r\nConnection: close\r\n\r\n",
        [B_TLS] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    };
    struct timeval tv = {2, 0};
    char req[2048];
    SSL *s = NULL;

    (void)setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (b == B_HANG) {
        pthread_mutex_lock(&mu);
        if (n_hang < 32)
            hang_fds[n_hang++] = c;
        else
            close(c);
        pthread_mutex_unlock(&mu);
        return;
    }
    if (b == B_TLS) {
        s = SSL_new(server_tls);
        SSL_set_fd(s, c);
        if (SSL_accept(s) != 1) {
            SSL_free(s);
            close(c);
            return;
        }
    }
    read_request(c, s, req, sizeof(req));
    pthread_mutex_lock(&mu);
    memcpy(last_request[b], req, sizeof(req));
    pthread_mutex_unlock(&mu);
    if (s) {
        SSL_write(s, answers[b], (int)strlen(answers[b]));
        SSL_shutdown(s);
        SSL_free(s);
    } else if (b != B_CLOSE) {
        (void)send(c, answers[b], strlen(answers[b]), MSG_NOSIGNAL);
    }
    close(c);
}

static void *server(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd pf[N_B + 1];
        int i;

        for (i = 0; i < N_B; i++)
            pf[i] = (struct pollfd){.fd = listen_fd[i], .events = POLLIN};
        pf[N_B] = (struct pollfd){.fd = wake[0], .events = POLLIN};
        if (poll(pf, N_B + 1, -1) < 0)
            continue;
        if (pf[N_B].revents)
            break;
        for (i = 0; i < N_B; i++)
            if (pf[i].revents & POLLIN) {
                int c = accept(listen_fd[i], NULL, NULL);
                if (c >= 0)
                    serve((enum behaviour)i, c);
            }
    }
    return NULL;
}

/* A self-signed P-256 certificate for the TLS port (kubelet does not check it; neither may we). */
static SSL_CTX *make_tls(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *crt = X509_new();
    X509_NAME *name;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    ck_assert_ptr_nonnull(key);
    ck_assert_ptr_nonnull(crt);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(X509_set_version(crt, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(crt), 1);
    X509_gmtime_adj(X509_getm_notBefore(crt), -60);
    X509_gmtime_adj(X509_getm_notAfter(crt), 3600);
    ck_assert_int_eq(X509_set_pubkey(crt, key), 1);
    name = X509_get_subject_name(crt);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"pod.example", -1,
                               -1, 0);
    ck_assert_int_eq(X509_set_issuer_name(crt, name), 1);
    ck_assert_int_gt(X509_sign(crt, key, EVP_sha256()), 0);
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, crt), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(crt);
    EVP_PKEY_free(key);
    return ctx;
}

/* Fill full_fd's accept queue (backlog 0): connects complete until one hangs in SYN_SENT. */
static void fill_queue(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)full_port)};

    for (n_fillers = 0; n_fillers < 8; n_fillers++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct pollfd pf = {.fd = fd, .events = POLLOUT};

        ck_assert_int_ge(fd, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            ck_assert_int_eq(errno, EINPROGRESS);
        if (poll(&pf, 1, 300) == 0) { /* the queue is full: this SYN was dropped */
            close(fd);
            return;
        }
        fillers[n_fillers] = fd;
    }
    ck_abort_msg("the accept queue never filled");
}

/* ---- the loop ------------------------------------------------------------------------------ */

static struct lws_context *ctx;
static struct lws_vhost *vhost;
static struct prober *pr;
static lws_sorted_usec_list_t tick_sul;

static int first_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void tick(lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(ctx, 0, sul, tick, 10 * LWS_US_PER_MS); /* lws_service returns often */
}

/* main.c's create_loop, with probes_protocol in the list (and something else first). */
static void make_loop(void)
{
    static struct lws_protocols list[3];
    struct lws_context_creation_info info;

    list[0] = (struct lws_protocols){"test-first", first_callback, 0, 0, 0, NULL, 0};
    list[1] = probes_protocol;
    memset(&list[2], 0, sizeof(list[2]));
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = list;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    ctx = lws_create_context(&info);
    ck_assert_ptr_nonnull(ctx);
    info.vhost_name = "local";
    vhost = lws_create_vhost(ctx, &info);
    ck_assert_ptr_nonnull(vhost);
    lws_sul_schedule(ctx, 0, &tick_sul, tick, 10 * LWS_US_PER_MS);
}

struct result {
    int calls;
    enum probe_result r;
    char msg[1024];
    bool free_prober; /* done() frees the prober (re-entrancy) */
};

static void done(void *arg, enum probe_result r, const char *message)
{
    struct result *res = arg;

    ck_assert_ptr_nonnull(message);
    res->calls++;
    res->r = r;
    snprintf(res->msg, sizeof(res->msg), "%s", message);
    if (res->free_prober) {
        prober_free(pr);
        pr = NULL;
    }
}

/* Service the loop until res has been called (or max_ms passed). */
static void spin_until(struct result *res, int max_ms)
{
    uint64_t end = kedge_now_ms() + (uint64_t)max_ms;

    while ((!res || !res->calls) && kedge_now_ms() < end)
        lws_service(ctx, 0);
}

static void spin_for(int ms)
{
    spin_until(NULL, ms);
}

/* ---- the engine stub ----------------------------------------------------------------------- */

struct call {
    char method[8], path[160], body[512];
    int timeout_ms;
    engine_done_fn done;
    void *ctx;
    bool answered;
};

static struct call calls[16];
static int n_calls;
static int sync_err; /* engine_request answers at once with this err (engine down) */
static int fake_engine;
#define ENGINE ((struct engine *)&fake_engine)

int engine_request(struct engine *e, const char *method, const char *path, const char *body,
                   size_t body_len, int timeout_ms, engine_done_fn fn, void *arg)
{
    struct call *c;

    ck_assert_ptr_eq(e, ENGINE);
    ck_assert_int_lt(n_calls, 16);
    c = &calls[n_calls++];
    memset(c, 0, sizeof(*c));
    snprintf(c->method, sizeof(c->method), "%s", method);
    snprintf(c->path, sizeof(c->path), "%s", path);
    if (body)
        snprintf(c->body, sizeof(c->body), "%.*s", (int)body_len, body);
    c->timeout_ms = timeout_ms;
    c->done = fn;
    c->ctx = arg;
    if (sync_err) {
        struct engine_reply r = {0, sync_err, "", 0};
        c->answered = true;
        fn(arg, &r);
    }
    return 0;
}

static void answer(int i, int status, int err, const char *body, size_t len)
{
    struct engine_reply r = {status, err, body, len};

    ck_assert_int_lt(i, n_calls);
    ck_assert(!calls[i].answered);
    calls[i].answered = true;
    calls[i].done(calls[i].ctx, &r);
}

static void answer_json(int i, int status, const char *json)
{
    answer(i, status, 0, json, strlen(json));
}

/* The runtime the prober runs exec probes on: the Docker runtime's exec over the stub. */
static struct docker_execs execs;

static long rt_exec(void *rt, const char *id, char *const *argv, size_t argc, int timeout_ms,
                    runtime_exec_fn fn, void *arg)
{
    return docker_exec(&execs, rt, id, argv, argc, timeout_ms, fn, arg);
}

static void rt_exec_cancel(void *rt, long handle)
{
    (void)rt;
    docker_exec_cancel(&execs, handle);
}

static const struct runtime_ops exec_ops = {.exec = rt_exec, .exec_cancel = rt_exec_cancel};
static const struct runtime engine_rt = {&exec_ops, ENGINE};

/* ---- fixture ------------------------------------------------------------------------------- */

static void setup(void)
{
    int i;

    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, NULL);
    server_tls = make_tls();
    for (i = 0; i < N_B; i++)
        listen_fd[i] = listener(16, &port[i]);
    i = listener(1, &closed_port);
    close(i);
    full_fd = listener(0, &full_port);
    n_fillers = 0;
    n_hang = 0;
    memset(last_request, 0, sizeof(last_request));
    ck_assert_int_eq(pipe(wake), 0);
    ck_assert_int_eq(pthread_create(&server_thread, NULL, server, NULL), 0);
    make_loop();
    n_calls = 0;
    sync_err = 0;
    unit_count_allocs();
    ck_assert_int_eq(prober_new(ctx, vhost, &engine_rt, &pr), 0);
}

static void teardown(void)
{
    int i;

    prober_free(pr);
    pr = NULL;
    for (i = 0; i < n_calls; i++) /* an engine answers everything when it is freed */
        if (!calls[i].answered)
            answer(i, 0, -ECANCELED, "", 0);
    spin_for(50); /* connections let go of are closed on the next passes */
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
    lws_sul_cancel(&tick_sul);
    lws_context_destroy(ctx);
    ck_assert_int_eq(write(wake[1], "x", 1), 1);
    pthread_join(server_thread, NULL);
    for (i = 0; i < n_hang; i++)
        close(hang_fds[i]);
    for (i = 0; i < n_fillers; i++)
        close(fillers[i]);
    for (i = 0; i < N_B; i++)
        close(listen_fd[i]);
    close(full_fd);
    close(wake[0]);
    close(wake[1]);
    SSL_CTX_free(server_tls);
}

/* ---- probes -------------------------------------------------------------------------------- */

static struct pod_probe http_probe(int p, const char *path)
{
    struct pod_probe pp;

    memset(&pp, 0, sizeof(pp));
    pp.kind = PROBE_HTTP;
    pp.port = p;
    pp.path = (char *)path;
    pp.scheme = (char *)"HTTP";
    pp.timeout_s = 5; /* ample, also under valgrind; the timeout tests set 1 */
    return pp;
}

static struct pod_probe tcp_probe(int p)
{
    struct pod_probe pp;

    memset(&pp, 0, sizeof(pp));
    pp.kind = PROBE_TCP;
    pp.port = p;
    pp.timeout_s = 5;
    return pp;
}

static char want[512];

#define WANT(...) (snprintf(want, sizeof(want), __VA_ARGS__), want)

START_TEST(http_ok)
{
    struct pod_kv headers[] = {{(char *)"X-Probe", (char *)"yes"}};
    struct pod_probe pp = http_probe(port[B_OK], "healthz?full=1");
    struct result res = {0};
    long h;

    pp.headers = headers;
    pp.n_headers = 1;
    h = prober_run(pr, &pp, NULL, "127.0.0.1", done, &res);
    ck_assert_int_gt(h, 0);
    ck_assert_int_eq(res.calls, 0); /* never from inside prober_run */
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_SUCCESS);
    ck_assert_str_eq(res.msg, "");
    pthread_mutex_lock(&mu);
    ck_assert_msg(!strncmp(last_request[B_OK], "GET /healthz?full=1 HTTP/1.1\r\n", 30), "%s",
                  last_request[B_OK]);
    ck_assert_ptr_nonnull(
        strstr(last_request[B_OK], WANT("\r\nHost: 127.0.0.1:%d\r\n", port[B_OK])));
    ck_assert_ptr_nonnull(strstr(last_request[B_OK], "\r\nUser-Agent: kube-probe/1.22\r\n"));
    ck_assert_ptr_nonnull(strstr(last_request[B_OK], "\r\nAccept: */*\r\n"));
    ck_assert_ptr_nonnull(strstr(last_request[B_OK], "\r\nX-Probe: yes\r\n"));
    pthread_mutex_unlock(&mu);
    prober_cancel(pr, h); /* done already: a no-op */
    spin_for(100);
    ck_assert_int_eq(res.calls, 1);
}
END_TEST

START_TEST(http_headers_override)
{
    struct pod_kv headers[] = {{(char *)"Host", (char *)"pod.example"},
                               {(char *)"User-Agent", (char *)"mine/1"}};
    struct pod_probe pp = http_probe(port[B_OK], "/");
    struct result res = {0};

    pp.headers = headers;
    pp.n_headers = 2;
    pp.host = (char *)"127.0.0.1"; /* the probe's host wins over the pod IP */
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "10.255.255.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_SUCCESS);
    pthread_mutex_lock(&mu);
    ck_assert_ptr_nonnull(strstr(last_request[B_OK], "\r\nHost: pod.example\r\n"));
    ck_assert_ptr_nonnull(strstr(last_request[B_OK], "\r\nUser-Agent: mine/1\r\n"));
    ck_assert_ptr_null(strstr(last_request[B_OK], "kube-probe"));
    pthread_mutex_unlock(&mu);
}
END_TEST

START_TEST(http_status)
{
    struct pod_probe pp = http_probe(port[B_FAIL], NULL);
    struct result res = {0};

    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, "HTTP probe failed with statuscode: 500");

    memset(&res, 0, sizeof(res)); /* a redirect is a success, and is not followed */
    pp = http_probe(port[B_REDIRECT], NULL);
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_SUCCESS);
}
END_TEST

START_TEST(http_refused)
{
    struct pod_probe pp = http_probe(closed_port, "/ready");
    struct result res = {0};

    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, WANT("Get \"http://127.0.0.1:%d/ready\": dial tcp 127.0.0.1:%d: "
                                   "connect: connection refused",
                                   closed_port, closed_port));
}
END_TEST

START_TEST(http_timeout)
{
    struct pod_probe pp = http_probe(port[B_HANG], NULL);
    struct result res = {0};

    pp.timeout_s = 1;
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, WANT("Get \"http://127.0.0.1:%d/\": context deadline exceeded "
                                   "(Client.Timeout exceeded while awaiting headers)",
                                   port[B_HANG]));
    spin_for(300);
    ck_assert_int_eq(res.calls, 1);
}
END_TEST

START_TEST(http_closed_without_answer)
{
    struct pod_probe pp = http_probe(port[B_CLOSE], NULL);
    struct result res = {0};

    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, WANT("Get \"http://127.0.0.1:%d/\": EOF", port[B_CLOSE]));
}
END_TEST

START_TEST(https_insecure)
{
    struct pod_probe pp = http_probe(port[B_TLS], "/tls");
    struct result res = {0};

    pp.scheme = (char *)"HTTPS";
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_msg(res.r == PROBE_SUCCESS, "%s", res.msg);
    pthread_mutex_lock(&mu);
    ck_assert_msg(!strncmp(last_request[B_TLS], "GET /tls HTTP/1.1\r\n", 19), "%s",
                  last_request[B_TLS]);
    pthread_mutex_unlock(&mu);

    memset(&res, 0, sizeof(res)); /* TLS to a plain HTTP port fails, and says which URL */
    pp = http_probe(port[B_FAIL], NULL);
    pp.scheme = (char *)"HTTPS";
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    WANT("Get \"https://127.0.0.1:%d/\": ", port[B_FAIL]);
    ck_assert_msg(!strncmp(res.msg, want, strlen(want)), "%s", res.msg);
}
END_TEST

START_TEST(http_bad_input)
{
    struct pod_kv bad_value[] = {{(char *)"X-A", (char *)"1\r\nX-Injected: 1"}};
    struct pod_kv bad_name[] = {{(char *)"X A", (char *)"1"}};
    struct pod_probe pp = http_probe(port[B_OK], NULL);
    struct result res = {0};

    pp.headers = bad_value;
    pp.n_headers = 1;
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    ck_assert_int_eq(res.calls, 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, WANT("Get \"http://127.0.0.1:%d/\": net/http: invalid header field "
                                   "value for \"X-A\"",
                                   port[B_OK]));
    memset(&res, 0, sizeof(res));
    pp.headers = bad_name;
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_str_eq(res.msg, WANT("Get \"http://127.0.0.1:%d/\": net/http: invalid header field "
                                   "name \"X A\"",
                                   port[B_OK]));
    memset(&res, 0, sizeof(res));
    pp = http_probe(80, NULL);
    pp.host = (char *)"pod.example";
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_str_eq(res.msg, "Get \"http://pod.example:80/\": dial tcp: lookup pod.example: not "
                              "an IP address (the prober does not resolve names)");
    memset(&res, 0, sizeof(res));
    pp = http_probe(port[B_OK], "/a b");
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.r, PROBE_SUCCESS);
    pthread_mutex_lock(&mu);
    ck_assert_msg(!strncmp(last_request[B_OK], "GET /a%20b HTTP/1.1\r\n", 21), "%s",
                  last_request[B_OK]);
    pthread_mutex_unlock(&mu);
    ck_assert_int_eq(prober_run(pr, NULL, NULL, "127.0.0.1", done, &res), -EINVAL);
    pp.kind = PROBE_NONE;
    ck_assert_int_eq(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), -EINVAL);
}
END_TEST

START_TEST(tcp_results)
{
    struct pod_probe pp = tcp_probe(port[B_OK]);
    struct result res = {0};

    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_SUCCESS);
    ck_assert_str_eq(res.msg, "");

    memset(&res, 0, sizeof(res));
    pp = tcp_probe(closed_port);
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg,
                     WANT("dial tcp 127.0.0.1:%d: connect: connection refused", closed_port));

    memset(&res, 0, sizeof(res));
    pp = tcp_probe(closed_port);
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "::1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    WANT("dial tcp [::1]:%d: connect: ", closed_port);
    ck_assert_msg(!strncmp(res.msg, want, strlen(want)), "%s", res.msg);
}
END_TEST

START_TEST(tcp_timeout)
{
    struct pod_probe pp = tcp_probe(full_port);
    struct result res = {0};

    pp.timeout_s = 1;
    fill_queue();
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, WANT("dial tcp 127.0.0.1:%d: i/o timeout", full_port));
}
END_TEST

START_TEST(cancel_in_flight)
{
    struct pod_probe hang = http_probe(port[B_HANG], NULL);
    struct pod_probe refused = http_probe(closed_port, NULL);
    struct pod_probe slow = tcp_probe(full_port);
    struct pod_probe ok = http_probe(port[B_OK], NULL);
    struct result r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
    long h1, h2, h3, h4;

    hang.timeout_s = refused.timeout_s = slow.timeout_s = 1;
    fill_queue();
    h1 = prober_run(pr, &hang, NULL, "127.0.0.1", done, &r1);
    h2 = prober_run(pr, &refused, NULL, "127.0.0.1", done, &r2);
    h3 = prober_run(pr, &slow, NULL, "127.0.0.1", done, &r3);
    h4 = prober_run(pr, &ok, NULL, "127.0.0.1", done, &r4);
    ck_assert(h1 > 0 && h2 > h1 && h3 > h2 && h4 > h3);
    spin_for(200); /* the hang and the dial are in flight now */
    prober_cancel(pr, h1);
    prober_cancel(pr, h2); /* finished already, or not: either way, no call from now on */
    prober_cancel(pr, h3);
    prober_cancel(pr, 999999); /* unknown: nothing */
    spin_until(&r4, 10000);
    ck_assert_int_eq(r4.calls, 1);
    spin_for(1500); /* past every timeout */
    ck_assert_int_eq(r1.calls, 0);
    ck_assert_int_le(r2.calls, 1);
    ck_assert_int_eq(r3.calls, 0);
    ck_assert_int_eq(r4.calls, 1);
}
END_TEST

START_TEST(cancel_before_loop)
{
    struct pod_probe refused = http_probe(closed_port, NULL);
    struct pod_kv bad[] = {{(char *)"X", (char *)"\n"}};
    struct result r1 = {0}, r2 = {0};
    long h;

    refused.timeout_s = 1;
    h = prober_run(pr, &refused, NULL, "127.0.0.1", done, &r1);
    prober_cancel(pr, h);
    refused.headers = bad; /* decided inside prober_run, delivered later: cancelled first */
    refused.n_headers = 1;
    h = prober_run(pr, &refused, NULL, "127.0.0.1", done, &r2);
    prober_cancel(pr, h);
    spin_for(1500);
    ck_assert_int_eq(r1.calls, 0);
    ck_assert_int_eq(r2.calls, 0);
}
END_TEST

START_TEST(free_in_flight)
{
    struct pod_probe hang = http_probe(port[B_HANG], NULL);
    struct pod_probe slow = tcp_probe(full_port);
    struct pod_probe ex = {.kind = PROBE_EXEC, .timeout_s = 1};
    char *cmd[] = {(char *)"true"};
    struct result r1 = {0}, r2 = {0}, r3 = {0};

    ex.command = cmd;
    ex.n_command = 1;
    hang.timeout_s = slow.timeout_s = 1;
    fill_queue();
    ck_assert_int_gt(prober_run(pr, &hang, NULL, "127.0.0.1", done, &r1), 0);
    ck_assert_int_gt(prober_run(pr, &slow, NULL, "127.0.0.1", done, &r2), 0);
    ck_assert_int_gt(prober_run(pr, &ex, "c0ffee", NULL, done, &r3), 0);
    spin_for(100);
    prober_free(pr);
    pr = NULL;
    answer_json(0, 201, "{\"Id\":\"e1\"}"); /* the engine answers after all: nobody listens */
    spin_for(1500);
    ck_assert_int_eq(n_calls, 1);
    ck_assert_int_eq(r1.calls + r2.calls + r3.calls, 0);
}
END_TEST

START_TEST(free_from_done)
{
    struct pod_probe refused = tcp_probe(closed_port);
    struct pod_probe hang = http_probe(port[B_HANG], NULL);
    struct result r1 = {.free_prober = true}, r2 = {0};

    hang.timeout_s = 1;
    ck_assert_int_gt(prober_run(pr, &hang, NULL, "127.0.0.1", done, &r2), 0);
    ck_assert_int_gt(prober_run(pr, &refused, NULL, "127.0.0.1", done, &r1), 0);
    spin_until(&r1, 10000);
    ck_assert_int_eq(r1.calls, 1);
    ck_assert_ptr_null(pr);
    spin_for(1500);
    ck_assert_int_eq(r2.calls, 0);
}
END_TEST

/* ---- exec ---------------------------------------------------------------------------------- */

static char *health_cmd[] = {(char *)"cat", (char *)"/tmp/healthy"};

static struct pod_probe exec_probe(void)
{
    struct pod_probe pp;

    memset(&pp, 0, sizeof(pp));
    pp.kind = PROBE_EXEC;
    pp.command = health_cmd;
    pp.n_command = 2;
    pp.timeout_s = 1;
    return pp;
}

/* Docker's multiplexed stream: one frame per (stream, text). */
static size_t mux(char *out, int stream, const char *text)
{
    size_t n = strlen(text);

    out[0] = (char)stream;
    out[1] = out[2] = out[3] = 0;
    out[4] = (char)(n >> 24);
    out[5] = (char)(n >> 16);
    out[6] = (char)(n >> 8);
    out[7] = (char)n;
    memcpy(out + 8, text, n);
    return n + 8;
}

static void run_exec(struct result *res, int exit_code, const char *out_text)
{
    struct pod_probe pp = exec_probe();
    char body[256], json[64];
    size_t n;

    ck_assert_int_gt(prober_run(pr, &pp, "3f2a9c", NULL, done, res), 0);
    ck_assert_int_eq(n_calls, 1);
    ck_assert_str_eq(calls[0].method, "POST");
    ck_assert_str_eq(calls[0].path, "/containers/3f2a9c/exec");
    ck_assert_str_eq(calls[0].body, "{\"AttachStdout\":true,\"AttachStderr\":true,"
                                    "\"Cmd\":[\"cat\",\"/tmp/healthy\"]}");
    ck_assert(calls[0].timeout_ms > 0 && calls[0].timeout_ms <= 1000);
    answer_json(0, 201, "{\"Id\":\"e7f1\"}");
    ck_assert_int_eq(n_calls, 2);
    ck_assert_str_eq(calls[1].method, "POST");
    ck_assert_str_eq(calls[1].path, "/exec/e7f1/start");
    ck_assert_str_eq(calls[1].body, "{\"Detach\":false,\"Tty\":false}");
    ck_assert(calls[1].timeout_ms > 0 && calls[1].timeout_ms <= 1000);
    n = mux(body, 1, "");
    n += mux(body + n, 2, out_text);
    answer(1, 200, 0, body, n);
    ck_assert_int_eq(n_calls, 3);
    ck_assert_str_eq(calls[2].method, "GET");
    ck_assert_str_eq(calls[2].path, "/exec/e7f1/json");
    ck_assert_str_eq(calls[2].body, "");
    ck_assert_int_eq(res->calls, 0);
    snprintf(json, sizeof(json), "{\"Running\":false,\"ExitCode\":%d}", exit_code);
    answer_json(2, 200, json);
    ck_assert_int_eq(res->calls, 1);
}

START_TEST(exec_exit_codes)
{
    struct result res = {0};

    run_exec(&res, 1, "cat: /tmp/healthy: No such file or directory\n");
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, "command \"cat /tmp/healthy\" exited with 1: cat: /tmp/healthy: "
                              "No such file or directory");
    memset(&res, 0, sizeof(res));
    n_calls = 0;
    run_exec(&res, 0, "ok\n");
    ck_assert_int_eq(res.r, PROBE_SUCCESS);
    memset(&res, 0, sizeof(res));
    n_calls = 0;
    run_exec(&res, 137, "");
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, "command \"cat /tmp/healthy\" exited with 137");
}
END_TEST

START_TEST(exec_engine_errors)
{
    struct pod_probe pp = exec_probe();
    struct result res = {0};

    ck_assert_int_gt(prober_run(pr, &pp, "3f2a9c", NULL, done, &res), 0);
    answer_json(0, 404, "{\"message\":\"No such container: 3f2a9c\"}");
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, "failed to exec in container: No such container: 3f2a9c");

    memset(&res, 0, sizeof(res));
    ck_assert_int_gt(prober_run(pr, &pp, "3f2a9c", NULL, done, &res), 0);
    answer_json(1, 201, "{\"Id\":\"e2\"}");
    answer(2, 0, -ETIMEDOUT, "", 0); /* start: the command outlived the timeout */
    ck_assert_int_eq(res.calls, 1);
    ck_assert_str_eq(res.msg, "command \"cat /tmp/healthy\" timed out");
    ck_assert_int_eq(n_calls, 3);

    memset(&res, 0, sizeof(res)); /* the engine is down: answered inside engine_request */
    sync_err = -ECONNREFUSED;
    ck_assert_int_gt(prober_run(pr, &pp, "3f2a9c", NULL, done, &res), 0);
    ck_assert_int_eq(res.calls, 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_str_eq(res.msg, "failed to exec in container: connection refused");
    sync_err = 0;

    memset(&res, 0, sizeof(res));
    ck_assert_int_gt(prober_run(pr, &pp, "3f2a9c", NULL, done, &res), 0);
    answer_json(4, 201, "{}");
    ck_assert_int_eq(res.calls, 1);
    ck_assert_str_eq(res.msg, "failed to exec in container: the engine gave no exec id");

    memset(&res, 0, sizeof(res));
    ck_assert_int_gt(prober_run(pr, &pp, "bad/id", NULL, done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_str_eq(res.msg, "failed to exec in container: no container id");
    ck_assert_int_eq(n_calls, 5);
}
END_TEST

START_TEST(exec_timeout_and_cancel)
{
    struct pod_probe pp = exec_probe();
    struct result r1 = {0}, r2 = {0};
    long h;

    ck_assert_int_gt(prober_run(pr, &pp, "3f2a9c", NULL, done, &r1), 0);
    answer_json(0, 201, "{\"Id\":\"e3\"}");
    spin_until(&r1, 10000); /* the start never answers: the probe's own timer */
    ck_assert_int_eq(r1.calls, 1);
    ck_assert_str_eq(r1.msg, "command \"cat /tmp/healthy\" timed out");
    answer(1, 0, -ETIMEDOUT, "", 0); /* the late answer reaches nobody */
    ck_assert_int_eq(r1.calls, 1);

    h = prober_run(pr, &pp, "3f2a9c", NULL, done, &r2);
    prober_cancel(pr, h);
    answer_json(2, 201, "{\"Id\":\"e4\"}");
    ck_assert_int_eq(n_calls, 3); /* nothing more asked for a cancelled probe */
    ck_assert_int_eq(r2.calls, 0);
}
END_TEST

/* ---- allocation failures ------------------------------------------------------------------- */

static int op_run(void *arg)
{
    const struct pod_probe *pp = arg;
    struct result res = {0};
    long h;

    n_calls = 0;
    h = prober_run(pr, pp, "3f2a9c", "127.0.0.1", done, &res);
    if (h < 0)
        return (int)h;
    prober_cancel(pr, h);
    return 0;
}

START_TEST(run_nomem)
{
    static const int ok[] = {-ENOMEM};
    struct pod_kv headers[] = {{(char *)"X-Probe", (char *)"yes"}, {(char *)"Host", (char *)"h"}};
    struct pod_probe http = http_probe(port[B_OK], "/x");
    struct pod_probe tcp = tcp_probe(port[B_OK]);
    struct pod_probe ex = exec_probe();

    http.headers = headers;
    http.n_headers = 2;
    ck_assert_int_gt(unit_alloc_fail_loop(op_run, &http, ok, 1), 3);
    ck_assert_int_ge(unit_alloc_fail_loop(op_run, &tcp, ok, 1), 1);
    sync_err = -ECONNREFUSED; /* every exec answered at once: nothing stays in the engine */
    ck_assert_int_ge(unit_alloc_fail_loop(op_run, &ex, ok, 1), 2);
    sync_err = 0;
    spin_for(50);
}
END_TEST

static Suite *probes_suite(void)
{
    Suite *s = suite_create("probes");
    TCase *tc;

    tc = tcase_create("http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, http_ok);
    tcase_add_test(tc, http_headers_override);
    tcase_add_test(tc, http_status);
    tcase_add_test(tc, http_refused);
    tcase_add_test(tc, http_timeout);
    tcase_add_test(tc, http_closed_without_answer);
    tcase_add_test(tc, https_insecure);
    tcase_add_test(tc, http_bad_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("tcp");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, tcp_results);
    tcase_add_test(tc, tcp_timeout);
    suite_add_tcase(s, tc);

    tc = tcase_create("exec");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, exec_exit_codes);
    tcase_add_test(tc, exec_engine_errors);
    tcase_add_test(tc, exec_timeout_and_cancel);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetime");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, cancel_in_flight);
    tcase_add_test(tc, cancel_before_loop);
    tcase_add_test(tc, free_in_flight);
    tcase_add_test(tc, free_from_done);
    tcase_add_test(tc, run_nomem);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(probes_suite());
}
