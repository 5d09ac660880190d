/* The probes suite's rig (probes_fixture.h). */
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
#include "probes_fixture.h"
#include "unit.h"

/* ---- the server thread --------------------------------------------------------------------- */

static int listen_fd[N_B];
int port[N_B];
int closed_port;
static int full_fd; /* full_port's listener */
int full_port;
static int fillers[8], n_fillers;
static int wake[2];
static pthread_t server_thread;
pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
char last_request[N_B][2048];
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
void fill_queue(void)
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
struct prober *pr;
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

void done(void *arg, enum probe_result r, const char *message)
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
void spin_until(struct result *res, int max_ms)
{
    uint64_t end = kedge_now_ms() + (uint64_t)max_ms;

    while ((!res || !res->calls) && kedge_now_ms() < end)
        lws_service(ctx, 0);
}

void spin_for(int ms)
{
    spin_until(NULL, ms);
}

/* ---- the engine stub ----------------------------------------------------------------------- */

struct call calls[16];
int n_calls;
int sync_err;
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

void answer(int i, int status, int err, const char *body, size_t len)
{
    struct engine_reply r = {status, err, body, len};

    ck_assert_int_lt(i, n_calls);
    ck_assert(!calls[i].answered);
    calls[i].answered = true;
    calls[i].done(calls[i].ctx, &r);
}

void answer_json(int i, int status, const char *json)
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

void setup(void)
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

void teardown(void)
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
