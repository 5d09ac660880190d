/* cloudbridge/stream/exec.c: `kubectl exec` and `kubectl attach` through the connectID table
 * (session.c), the way the tunnel feeds them: an EXEC_CONNECT / ATTACH_CONNECT as cloudcore
 * marshals it, the client's bytes as DATA, what exec.c answers recorded per connection and read
 * back with rc_fixture's WebSocket and SPDY clients; the process is one of the fake runtime's
 * scripted sessions. Covers the upgrade for both protocols, the command, output, exit codes,
 * stdin and its EOF, resize, attach, kubelet's refusals, the runtime refusing, the cloud or the
 * client ending it mid-way, backpressure, and every allocation failure.
 */
#define _GNU_SOURCE /* memmem */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "fake_runtime.h"
#include "rc_fixture.h"
#include "session.h"
#include "stream.h"
#include "unit.h"

#define NCONN 16

#define WS_HEADERS                                                                                 \
    "\"Connection\":[\"Upgrade\"],\"Kubectl-Command\":[\"kubectl exec\"],"                         \
    "\"Sec-Websocket-Key\":[\"dGhlIHNhbXBsZSBub25jZQ==\"],"                                        \
    "\"Sec-Websocket-Protocol\":[\"v5.channel.k8s.io\"],\"Sec-Websocket-Version\":[\"13\"],"       \
    "\"Upgrade\":[\"websocket\"]"
/* kubectl 1.32's SPDY upgrade as the real cloud relayed it: one value per version */
#define SPDY_HEADERS                                                                               \
    "\"Connection\":[\"Upgrade\"],\"Content-Length\":[\"0\"],\"Upgrade\":[\"SPDY/3.1\"],"          \
    "\"X-Stream-Protocol-Version\":[\"v5.channel.k8s.io\",\"v4.channel.k8s.io\","                  \
    "\"v3.channel.k8s.io\",\"v2.channel.k8s.io\",\"channel.k8s.io\"]"

#define SUCCESS "{\"metadata\":{},\"status\":\"Success\"}"

/* The tunnel: DATA per connectID into a rec (libc memory: fault injection is for exec.c). */
struct tun {
    struct rec r[NCONN];
    int removes[NCONN];
    size_t queued;
};

static int t_send(void *ctx, uint64_t id, uint64_t type, const char *b, size_t n)
{
    struct tun *t = ctx;
    struct kedge_buf *o;
    char *grown;

    ck_assert_uint_lt(id, NCONN);
    if (type == STREAM_REMOVE_CONNECT) {
        t->removes[id]++;
        return 0;
    }
    ck_assert_uint_eq(type, STREAM_DATA);
    o = &t->r[id].out;
    grown = realloc(o->data, o->len + n + 1);
    ck_assert_ptr_nonnull(grown);
    o->data = grown;
    memcpy(o->data + o->len, b, n);
    o->len += n;
    o->data[o->len] = '\0';
    t->queued += n;
    return 0;
}

static size_t t_queued(void *ctx)
{
    return ((struct tun *)ctx)->queued;
}

static void t_wake(void *ctx)
{
    (void)ctx;
}

struct world {
    struct fake_runtime f;
    struct runtime rt;
    struct stream_deps deps;
    struct tun t;
    struct stream_session *s;
};

/* Edged's exec lookup with kubelet's texts: pod "web" has "app" (c1, running) and "stopped"
 * (c2, known to the engine but not running: the session fails to start). */
static int find_running(void *ctx, const char *ns, const char *pod, const char *container, char *id,
                        size_t id_len, char *why, size_t why_len)
{
    (void)ctx;
    (void)ns;
    if (strcmp(pod, "web")) {
        snprintf(why, why_len, "pod does not exist");
        return -ENOENT;
    }
    if (strcmp(container, "app") && strcmp(container, "stopped")) {
        snprintf(why, why_len, "container not found (\"%s\")", container);
        return -ENOENT;
    }
    snprintf(id, id_len, "%s", strcmp(container, "app") ? "c2" : "c1");
    return 0;
}

static void add_container(struct fake_runtime *f, const char *id, bool running)
{
    struct fake_container *c = &f->c[f->n++];

    snprintf(c->id, sizeof(c->id), "%s", id);
    c->exists = true;
    c->running = running;
    c->state = running ? "running" : "exited";
}

/* 0, or -ENOMEM (nothing left allocated) */
static int world_try(struct world *w, size_t high_water)
{
    struct session_out out = {t_send, t_queued, t_wake, &w->t, high_water};

    memset(w, 0, sizeof(*w));
    for (size_t i = 0; i < NCONN; i++)
        rec_init(&w->t.r[i]);
    fake_runtime_init(&w->f, &w->rt);
    add_container(&w->f, "c1", true);
    add_container(&w->f, "c2", false);
    w->deps.rt = &w->rt;
    w->deps.find_running = find_running;
    w->deps.find_ctx = w;
    if (stream_session_new(&out, &w->s) < 0) {
        w->rt.ops->free(w->rt.rt);
        return -ENOMEM;
    }
    ck_assert_int_eq(stream_session_register(w->s, STREAM_EXEC_CONNECT, &stream_exec_ops, &w->deps),
                     0);
    ck_assert_int_eq(
        stream_session_register(w->s, STREAM_ATTACH_CONNECT, &stream_attach_ops, &w->deps), 0);
    return 0;
}

static void world_up(struct world *w, size_t high_water)
{
    ck_assert_int_eq(world_try(w, high_water), 0);
}

static bool has(const struct rec *r, const char *text)
{
    return r->out.data && memmem(r->out.data, r->out.len, text, strlen(text));
}

static void world_down(struct world *w)
{
    stream_session_free(w->s);
    w->rt.ops->free(w->rt.rt);
    for (size_t i = 0; i < NCONN; i++)
        rec_cleanup(&w->t.r[i]);
}

/* A *_CONNECT as cloudcore v1.15.4 marshals it (the real cloud's capture, fields trimmed). */
static void open_conn(struct world *w, uint64_t id, uint64_t type, const char *method,
                      const char *path, const char *query, const char *headers)
{
    char j[2048];
    struct stream_frame f;

    snprintf(j, sizeof(j),
             "{\"MessID\":%llu,\"url\":{\"Scheme\":\"http\",\"Host\":\"127.0.0.1:10350\","
             "\"Path\":\"%s\",\"RawQuery\":\"%s\"},\"header\":{%s},\"method\":\"%s\"}",
             (unsigned long long)id, path, query, headers, method);
    f = (struct stream_frame){id, type, j, strlen(j)};
    stream_session_input(w->s, &f);
}

static void data(struct world *w, uint64_t id, const struct kedge_buf *b)
{
    struct stream_frame f = {id, STREAM_DATA, b->data, b->len};

    stream_session_input(w->s, &f);
}

static void remove_conn(struct world *w, uint64_t id)
{
    struct stream_frame f = {id, STREAM_REMOVE_CONNECT, "", 0};

    stream_session_input(w->s, &f);
}

static void ws_exec(struct world *w, uint64_t id, const char *query)
{
    open_conn(w, id, STREAM_EXEC_CONNECT, "GET", "/exec/default/web/app", query, WS_HEADERS);
}

/* The 101 answered, then kubelet's empty "connection established" message; returns where the
 * frames after them start. */
static size_t expect_ws_upgraded(const struct rec *r)
{
    struct wsf f[1];
    size_t h = head_len(r);

    ck_assert_msg(!strncmp(r->out.data, "HTTP/1.1 101 Switching Protocols\r\n", 34), "%s",
                  r->out.data);
    ck_assert_ptr_nonnull(strstr(r->out.data, "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n"));
    ck_assert_uint_ge(r->out.len, h + 3);
    ck_assert_uint_eq(ws_parse(&(struct rec){.out = {.data = r->out.data, .len = h + 3}}, h, f, 1),
                      1);
    ck_assert(f[0].op == 2 && f[0].n == 1 && f[0].p[0] == 1);
    return h + 3;
}

static void expect_msg(const struct wsf *f, int ch, const char *body)
{
    ck_assert_int_eq(f->op, 2);
    ck_assert_uint_ge(f->n, 1);
    ck_assert_int_eq(f->p[0], ch);
    ASSERT_BYTES((const char *)f->p + 1, f->n - 1, body);
}

static void expect_close(const struct wsf *f)
{
    ck_assert_int_eq(f->op, 8);
    ck_assert_uint_eq(f->n, 2);
    ck_assert_uint_eq((unsigned)f->p[0] << 8 | f->p[1], 1000);
}

static bool status_has(const struct wsf *f, const char *text)
{
    return f->op == 2 && f->n > 1 && f->p[0] == 3 && memmem(f->p, f->n, text, strlen(text));
}

/* ---- WebSocket --------------------------------------------------------------------------- */

START_TEST(ws_exec_output_and_exit_code)
{
    struct world w;
    struct fake_session *fs;
    struct wsf f[8];
    size_t off;

    unit_count_allocs();
    world_up(&w, 1 << 20);
    ws_exec(&w, 1,
            "command=sh\\u0026command=-c\\u0026command=echo+out%3B+echo+err+%3E%262%3B+exit+3"
            "\\u0026error=1\\u0026output=1");
    off = expect_ws_upgraded(&w.t.r[1]);
    ck_assert_uint_eq(
        fake_count(&w.f, 0, FAKE_EXEC_SESSION, "c1 sh -c echo out; echo err >&2; exit 3"), 1);
    fs = fake_session_last(&w.f);
    ck_assert_ptr_nonnull(fs);
    ck_assert(!fs->io.in && fs->io.out && fs->io.err && !fs->io.tty);
    fake_session_output(&w.f, fs, RT_STDOUT, "out\n");
    fake_session_output(&w.f, fs, RT_STDERR, "err\n");
    ck_assert_int_eq(w.t.removes[1], 0);
    fake_session_end(&w.f, fs, 0, 3, NULL);
    ck_assert_uint_eq(ws_parse(&w.t.r[1], off, f, 8), 4);
    expect_msg(&f[0], 1, "out\n");
    expect_msg(&f[1], 2, "err\n");
    ck_assert(status_has(&f[2], "\"reason\":\"NonZeroExitCode\""));
    ck_assert(status_has(&f[2], "exit code 3"));
    expect_close(&f[3]);
    ck_assert_int_eq(w.t.removes[1], 1);
    ck_assert_uint_eq(stream_session_count(w.s), 0);
    ck_assert_uint_eq(fake_count(&w.f, 0, FAKE_SESSION_CANCEL, NULL), 0); /* it ended by itself */

    /* exit 0: Success */
    ws_exec(&w, 2, "command=true\\u0026output=1");
    off = expect_ws_upgraded(&w.t.r[2]);
    fake_session_end(&w.f, fake_session_last(&w.f), 0, 0, NULL);
    ck_assert_uint_eq(ws_parse(&w.t.r[2], off, f, 8), 2);
    expect_msg(&f[0], 3, SUCCESS);
    expect_close(&f[1]);
    ck_assert_int_eq(w.t.removes[2], 1);
    stream_session_reap(w.s);
    world_down(&w);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

START_TEST(ws_stdin_eof_resize)
{
    struct world w;
    struct fake_session *fs;
    struct kedge_buf c = KEDGE_BUF_INIT;
    struct wsf f[8];
    size_t off;

    world_up(&w, 1 << 20);
    ws_exec(&w, 3, "command=sh\\u0026input=1\\u0026output=1\\u0026error=1\\u0026tty=1");
    off = expect_ws_upgraded(&w.t.r[3]);
    fs = fake_session_last(&w.f);
    ck_assert(fs->io.in && fs->io.out && !fs->io.err && fs->io.tty); /* a tty drops stderr */
    ws_msg(&c, 0, "echo hi\n", 8);
    ws_msg(&c, 4, "{\"Width\":120,\"Height\":40}", 25);
    data(&w, 3, &c);
    ASSERT_BYTES(fs->in, fs->in_len, "echo hi\n");
    ck_assert_int_eq(fs->resizes, 1);
    ck_assert(fs->width == 120 && fs->height == 40);
    ck_assert(!fs->stdin_closed);
    kedge_buf_reset(&c);
    ws_frame(&c, true, 2, "\xff\x00", 2); /* v5: stdin closed */
    data(&w, 3, &c);
    ck_assert(fs->stdin_closed);
    fake_session_output(&w.f, fs, RT_STDERR, "hi\r\n"); /* a tty's output is all stdout */
    fake_session_end(&w.f, fs, 0, 0, NULL);
    ck_assert_uint_eq(ws_parse(&w.t.r[3], off, f, 8), 3);
    expect_msg(&f[0], 1, "hi\r\n");
    expect_msg(&f[1], 3, SUCCESS);
    expect_close(&f[2]);
    ck_assert_int_eq(w.t.removes[3], 1);

    /* `cat`: stdin comes back, EOF ends it with 0 */
    w.f.session_echo = true;
    ws_exec(&w, 4, "command=cat\\u0026input=1\\u0026output=1\\u0026error=1");
    off = expect_ws_upgraded(&w.t.r[4]);
    kedge_buf_reset(&c);
    ws_msg(&c, 0, "abc", 3);
    ws_msg(&c, 0, "def", 3);
    ws_frame(&c, true, 2, "\xff\x00", 2);
    data(&w, 4, &c);
    ck_assert_uint_eq(ws_parse(&w.t.r[4], off, f, 8), 4);
    expect_msg(&f[0], 1, "abc");
    expect_msg(&f[1], 1, "def");
    expect_msg(&f[2], 3, SUCCESS);
    expect_close(&f[3]);
    ck_assert_int_eq(w.t.removes[4], 1);
    kedge_buf_cleanup(&c);
    world_down(&w);
}
END_TEST

START_TEST(ws_attach)
{
    struct world w;
    struct fake_session *fs;
    struct kedge_buf c = KEDGE_BUF_INIT;
    struct wsf f[8];
    size_t off;

    world_up(&w, 1 << 20);
    open_conn(&w, 5, STREAM_ATTACH_CONNECT, "GET", "/attach/default/web/app",
              "error=1\\u0026input=1\\u0026output=1", WS_HEADERS);
    off = expect_ws_upgraded(&w.t.r[5]);
    ck_assert_uint_eq(fake_count(&w.f, 0, FAKE_ATTACH_SESSION, "c1"), 1);
    ck_assert_uint_eq(fake_count(&w.f, 0, FAKE_EXEC_SESSION, NULL), 0);
    fs = fake_session_last(&w.f);
    ck_assert(fs->attach && fs->io.in && fs->io.out && fs->io.err);
    ws_msg(&c, 0, "x", 1);
    data(&w, 5, &c);
    ASSERT_BYTES(fs->in, fs->in_len, "x");
    fake_session_output(&w.f, fs, RT_STDOUT, "log line\n");
    fake_session_end(&w.f, fs, 0, 7, NULL); /* attach: Success whatever the container's code */
    ck_assert_uint_eq(ws_parse(&w.t.r[5], off, f, 8), 3);
    expect_msg(&f[0], 1, "log line\n");
    expect_msg(&f[1], 3, SUCCESS);
    expect_close(&f[2]);
    ck_assert_int_eq(w.t.removes[5], 1);
    kedge_buf_cleanup(&c);
    world_down(&w);
}
END_TEST

/* ---- SPDY/3.1 ----------------------------------------------------------------------------- */

enum { ERR_ID = 1, IN_ID = 3, OUT_ID = 5, ERRS_ID = 7 };

START_TEST(spdy_exec)
{
    struct world w;
    struct spdy_client sc;
    struct kedge_buf c = KEDGE_BUF_INIT;
    struct fake_session *fs;
    struct spdyf f[16];
    size_t n;

    world_up(&w, 1 << 20);
    spdy_client_init(&sc);
    open_conn(&w, 6, STREAM_EXEC_CONNECT, "POST", "/exec/default/web/app",
              "command=sh\\u0026command=-c\\u0026command=exit+3\\u0026error=1\\u0026input=1"
              "\\u0026output=1",
              SPDY_HEADERS);
    ASSERT_BUF(&w.t.r[6].out, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                              "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: "
                              "v4.channel.k8s.io\r\n\r\n");
    ck_assert_uint_eq(fake_count(&w.f, 0, FAKE_EXEC_SESSION, NULL), 0); /* streams first */
    spdy_syn_stream(&sc, &c, ERR_ID, "error", false);
    spdy_syn_stream(&sc, &c, IN_ID, "stdin", false);
    spdy_syn_stream(&sc, &c, OUT_ID, "stdout", false);
    spdy_syn_stream(&sc, &c, ERRS_ID, "stderr", false);
    spdy_data(&c, IN_ID, false, "in", 2);
    spdy_data(&c, IN_ID, true, "", 0);
    data(&w, 6, &c);
    ck_assert_uint_eq(fake_count(&w.f, 0, FAKE_EXEC_SESSION, "c1 sh -c exit 3"), 1);
    fs = fake_session_last(&w.f);
    ASSERT_BYTES(fs->in, fs->in_len, "in");
    ck_assert(fs->stdin_closed);
    fake_session_output(&w.f, fs, RT_STDOUT, "out");
    fake_session_output(&w.f, fs, RT_STDERR, "err");
    fake_session_end(&w.f, fs, 0, 3, NULL);
    n = spdy_parse(&sc, &w.t.r[6], head_len(&w.t.r[6]), f, 16);
    ck_assert_uint_eq(n, 4 + 7); /* 4 SYN_REPLYs, then as test_rc_spdy's session_exit_code */
    for (size_t i = 0; i < 4; i++)
        ck_assert(f[i].control && f[i].type == 2);
    ck_assert(!f[4].control && f[4].id == OUT_ID);
    ASSERT_BYTES((const char *)f[4].p, f[4].n, "out");
    ck_assert(!f[5].control && f[5].id == ERRS_ID);
    ASSERT_BYTES((const char *)f[5].p, f[5].n, "err");
    ck_assert(!f[6].control && f[6].id == ERR_ID && f[6].flags == 1);
    ck_assert_ptr_nonnull(memmem(f[6].p, f[6].n, "exit code 3", 11));
    ck_assert(f[10].control && f[10].type == 7); /* GOAWAY */
    ck_assert_int_eq(w.t.removes[6], 1);
    kedge_buf_cleanup(&c);
    spdy_client_cleanup(&sc);
    world_down(&w);
}
END_TEST

/* ---- refusals ----------------------------------------------------------------------------- */

static void expect_http(const struct rec *r, const char *status_line, const char *body)
{
    size_t h = head_len(r);

    ck_assert_msg(!strncmp(r->out.data, status_line, strlen(status_line)), "%s", r->out.data);
    ASSERT_BYTES(r->out.data + h, r->out.len - h, body);
}

START_TEST(refusals)
{
    struct world w;
    struct wsf f[4];
    size_t off;

    world_up(&w, 1 << 20);
    open_conn(&w, 1, STREAM_EXEC_CONNECT, "GET", "/exec/default/nope/app", "command=ls",
              WS_HEADERS);
    expect_http(&w.t.r[1], "HTTP/1.1 404 Not Found\r\n", "pod does not exist");
    open_conn(&w, 2, STREAM_EXEC_CONNECT, "GET", "/exec/default/web/c", "command=ls", WS_HEADERS);
    expect_http(&w.t.r[2], "HTTP/1.1 500 Internal Server Error\r\n", "container not found (\"c\")");
    open_conn(&w, 3, STREAM_ATTACH_CONNECT, "GET", "/attach/default/web", "output=1", WS_HEADERS);
    expect_http(&w.t.r[3], "HTTP/1.1 404 Not Found\r\n", "404 page not found\n");
    open_conn(&w, 4, STREAM_EXEC_CONNECT, "GET", "/exec/default/web/uid/app/x", "output=1",
              WS_HEADERS);
    expect_http(&w.t.r[4], "HTTP/1.1 404 Not Found\r\n", "404 page not found\n");
    /* the codec's own refusal: none of stdin, stdout, stderr */
    ws_exec(&w, 5, "command=ls");
    ck_assert_ptr_nonnull(strstr(w.t.r[5].out.data, "HTTP/1.1 400 Bad Request\r\n"));
    for (int i = 1; i <= 5; i++)
        ck_assert_int_eq(w.t.removes[i], 1);
    /* the uid form of the route is served */
    open_conn(&w, 6, STREAM_EXEC_CONNECT, "GET", "/exec/default/web/uid-1/app",
              "command=ls\\u0026output=1", WS_HEADERS);
    (void)expect_ws_upgraded(&w.t.r[6]);
    ck_assert_uint_eq(fake_count(&w.f, 0, FAKE_EXEC_SESSION, "c1 ls"), 1);
    remove_conn(&w, 6);
    ck_assert_uint_eq(fake_count(&w.f, 0, FAKE_EXEC_SESSION, NULL), 1); /* only the last one */

    /* the runtime refuses to start it (the container is not running; a failure): kubelet's
     * InternalError status on the error channel, then the close */
    open_conn(&w, 7, STREAM_EXEC_CONNECT, "GET", "/exec/default/web/stopped",
              "output=1\\u0026"
              "command=ls",
              WS_HEADERS);
    off = expect_ws_upgraded(&w.t.r[7]);
    ck_assert_uint_eq(ws_parse(&w.t.r[7], off, f, 4), 2);
    ck_assert(status_has(&f[0], "error executing command in container: container is not running"));
    expect_close(&f[1]);
    ck_assert_int_eq(w.t.removes[7], 1);
    w.f.session_err = -EIO;
    w.f.session_message = "OCI runtime exec failed: exec: nope: not found";
    open_conn(&w, 8, STREAM_ATTACH_CONNECT, "GET", "/attach/default/web/app", "output=1",
              WS_HEADERS);
    off = expect_ws_upgraded(&w.t.r[8]);
    ck_assert_uint_eq(ws_parse(&w.t.r[8], off, f, 4), 2);
    ck_assert(status_has(&f[0], "error attaching to container: OCI runtime exec failed"));
    ck_assert_int_eq(w.t.removes[8], 1);
    /* a session that fails later (the engine went away) */
    w.f.session_err = 0;
    ws_exec(&w, 9, "command=ls\\u0026output=1");
    off = expect_ws_upgraded(&w.t.r[9]);
    fake_session_end(&w.f, fake_session_last(&w.f), -EIO, -1, "engine gone");
    ck_assert_uint_eq(ws_parse(&w.t.r[9], off, f, 4), 2);
    ck_assert(status_has(&f[0], "error executing command in container: engine gone"));
    ck_assert_int_eq(w.t.removes[9], 1);
    ck_assert_uint_eq(stream_session_count(w.s), 0);
    world_down(&w);

    /* no runtime on this node */
    world_up(&w, 1 << 20);
    w.deps.rt = NULL;
    ws_exec(&w, 1, "command=ls\\u0026output=1");
    expect_http(&w.t.r[1], "HTTP/1.1 500 Internal Server Error\r\n",
                "no container runtime on this node");
    ck_assert_int_eq(w.t.removes[1], 1);
    w.deps.rt = &w.rt;
    world_down(&w);
}
END_TEST

/* ---- ending it mid-way -------------------------------------------------------------------- */

START_TEST(ends_cancel_the_session)
{
    struct world w;
    struct kedge_buf c = KEDGE_BUF_INIT;
    struct fake_session *fs;
    struct wsf f[4];
    size_t off, before;
    char unmasked[] = "\x82\x02\x00x";

    unit_count_allocs();
    world_up(&w, 1 << 20);
    /* the cloud's REMOVE_CONNECT (kubectl went away): cancelled, nothing more sent */
    ws_exec(&w, 1, "command=yes\\u0026output=1");
    (void)expect_ws_upgraded(&w.t.r[1]);
    fs = fake_session_last(&w.f);
    fake_session_output(&w.f, fs, RT_STDOUT, "y\n");
    before = w.t.r[1].out.len;
    remove_conn(&w, 1);
    ck_assert(fs->cancelled);
    ck_assert_uint_eq(fake_count(&w.f, 0, FAKE_SESSION_CANCEL, NULL), 1);
    fake_session_output(&w.f, fs, RT_STDOUT, "y\n"); /* a cancelled session says nothing more */
    ck_assert_uint_eq(w.t.r[1].out.len, before);
    ck_assert_int_eq(w.t.removes[1], 0); /* the cloud ended it: no REMOVE_CONNECT back */
    ck_assert_uint_eq(stream_session_count(w.s), 0);

    /* the client's close frame: cancelled, and REMOVE_CONNECT to the cloud */
    ws_exec(&w, 2, "command=yes\\u0026output=1");
    off = expect_ws_upgraded(&w.t.r[2]);
    fs = fake_session_last(&w.f);
    ws_frame(&c, true, 8, "\x03\xe8", 2);
    data(&w, 2, &c);
    ck_assert(fs->cancelled);
    ck_assert_int_eq(w.t.removes[2], 1);
    ck_assert_uint_le(ws_parse(&w.t.r[2], off, f, 4), 1); /* at most the close echoed */

    /* the client breaks the protocol (an unmasked frame): the same */
    ws_exec(&w, 3, "command=yes\\u0026output=1");
    (void)expect_ws_upgraded(&w.t.r[3]);
    fs = fake_session_last(&w.f);
    data(&w, 3, &(struct kedge_buf){.data = unmasked, .len = 4});
    ck_assert(fs->cancelled);
    ck_assert_int_eq(w.t.removes[3], 1);

    /* the tunnel drops */
    ws_exec(&w, 4, "command=yes\\u0026output=1");
    (void)expect_ws_upgraded(&w.t.r[4]);
    fs = fake_session_last(&w.f);
    stream_session_reset(w.s);
    ck_assert(fs->cancelled);
    ck_assert_uint_eq(fake_count(&w.f, 0, FAKE_SESSION_CANCEL, NULL), 4);
    stream_session_reap(w.s);

    /* the session is freed while one runs (the bridge stopping): cancelled too */
    ws_exec(&w, 5, "command=yes\\u0026output=1");
    fs = fake_session_last(&w.f);
    kedge_buf_cleanup(&c);
    world_down(&w);
    ck_assert(fs->cancelled);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

START_TEST(backpressure)
{
    struct world w;
    struct fake_session *fs;
    struct wsf f[8];
    size_t off;
    char big[201];

    world_up(&w, 100);
    ws_exec(&w, 1, "command=yes\\u0026output=1");
    off = expect_ws_upgraded(&w.t.r[1]);
    w.t.queued = 0; /* the 101 went out */
    fs = fake_session_last(&w.f);
    fake_session_output(&w.f, fs, RT_STDOUT, "small");
    ck_assert(!fs->paused);
    memset(big, 'y', 200);
    big[200] = '\0';
    fake_session_output(&w.f, fs, RT_STDOUT, big); /* over the mark of 100 */
    ck_assert(fs->paused);
    fake_session_output(&w.f, fs, RT_STDOUT, "held"); /* the runtime holds it */
    ck_assert_uint_eq(ws_parse(&w.t.r[1], off, f, 8), 2);
    w.t.queued = 0;
    stream_session_drained(w.s);
    ck_assert(!fs->paused);
    ck_assert_uint_eq(ws_parse(&w.t.r[1], off, f, 8), 3);
    expect_msg(&f[2], 1, "held");
    /* paused again and then ended by the cloud: cancelled, the resume finds nothing to do */
    fake_session_output(&w.f, fs, RT_STDOUT, big);
    ck_assert(fs->paused);
    remove_conn(&w, 1);
    ck_assert(fs->cancelled);
    w.t.queued = 0;
    stream_session_drained(w.s);
    world_down(&w);
}
END_TEST

/* ---- allocation failures ------------------------------------------------------------------ */

struct alloc_case {
    struct kedge_buf ws_in, spdy_in; /* the clients' bytes, built before the loop */
    struct world w;
};

/* A WebSocket exec with stdin, output and exit 3, and a SPDY one with exit 0, start to end.
 * 0 when the clients got everything; else the connections were still ended, and no session of
 * the runtime is left running. */
static int exec_op(void *ctx)
{
    struct alloc_case *a = ctx;
    struct world *w = &a->w;
    struct fake_session *fs;
    bool whole;

    if (world_try(w, 1 << 20) < 0)
        return -ENOMEM;
    ws_exec(w, 1, "command=cat\\u0026input=1\\u0026output=1\\u0026error=1");
    data(w, 1, &a->ws_in);
    fs = fake_session_last(&w->f);
    if (fs) {
        fake_session_output(&w->f, fs, RT_STDOUT, "out");
        fake_session_end(&w->f, fs, 0, 3, NULL);
    }
    open_conn(w, 2, STREAM_EXEC_CONNECT, "POST", "/exec/default/web/app",
              "command=true\\u0026output=1", SPDY_HEADERS); /* streams: error, stdout */
    data(w, 2, &a->spdy_in);
    fs = fake_session_last(&w->f);
    if (fs)
        fake_session_end(&w->f, fs, 0, 0, NULL);
    /* every connection ended, none left running in the runtime */
    ck_assert_int_eq(w->t.removes[1], 1);
    ck_assert_msg(w->t.removes[2] == 1, "conn 2 not ended; sent: %s",
                  w->t.r[2].out.data ? w->t.r[2].out.data : "(nothing)");
    ck_assert_uint_eq(stream_session_count(w->s), 0);
    ck_assert_ptr_null(fake_session_last(&w->f));
    /* an exit status never reaches the client with output missing before it */
    ck_assert(!has(&w->t.r[1], "exit code 3") || has(&w->t.r[1], "\x82\x04\x01out"));
    whole = has(&w->t.r[1], "exit code 3") && has(&w->t.r[1], "\x82\x04\x01out") &&
            fake_count(&w->f, 0, FAKE_EXEC_SESSION, "c1 cat") == 1 && has(&w->t.r[2], SUCCESS);
    world_down(w);
    return whole ? 0 : -ENOMEM;
}

/* One allocation fails, the ones after it succeed again (a transient shortage): counted like
 * unit.h's allocator. */
static long one_shot = -1;

static void *one_shot_malloc(size_t n)
{
    return one_shot-- == 0 ? NULL : unit_malloc(n);
}

static void *one_shot_realloc(void *p, size_t n)
{
    return one_shot-- == 0 ? NULL : unit_realloc(p, n);
}

START_TEST(alloc_failures)
{
    static struct alloc_case a; /* zero: empty buffers */
    struct spdy_client sc;
    long n, made = 0;

    ws_msg(&a.ws_in, 0, "abc", 3);
    ws_frame(&a.ws_in, true, 2, "\xff\x00", 2);
    spdy_client_init(&sc);
    spdy_syn_stream(&sc, &a.spdy_in, ERR_ID, "error", false);
    spdy_syn_stream(&sc, &a.spdy_in, OUT_ID, "stdout", false);
    spdy_client_cleanup(&sc);
    unit_count_allocs();
    /* walk every allocation: the Nth fails (and all after it) until none did */
    for (n = 0; n < 10000; n++) {
        int rc;

        (void)kedge_alloc_fail_after(n);
        rc = exec_op(&a);
        made = kedge_alloc_fail_after(-1);
        ck_assert_msg(unit_live_blocks == 0, "n=%ld: %ld blocks leaked", n, unit_live_blocks);
        if (made <= n) {
            ck_assert_msg(rc == 0, "n=%ld: nothing failed, yet the clients missed output", n);
            break;
        }
    }
    ck_assert_int_gt(n, 10);
    ck_assert_int_lt(n, 10000);
    /* the same with only the Nth failing: whatever is lost, the client never gets an exit code
     * after output went missing (exec_op asserts it), and nothing leaks */
    {
        static const struct kedge_allocator once = {one_shot_malloc, one_shot_realloc, unit_free};
        long total = made, k;

        kedge_alloc_set(&once);
        for (k = 0; k < total; k++) {
            one_shot = k;
            (void)exec_op(&a);
            ck_assert_msg(unit_live_blocks == 0, "k=%ld: %ld blocks leaked", k, unit_live_blocks);
        }
        one_shot = -1;
    }
    unit_libc_allocs();
    kedge_buf_cleanup(&a.ws_in);
    kedge_buf_cleanup(&a.spdy_in);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stream_exec");
    TCase *tw = tcase_create("websocket");
    TCase *tp = tcase_create("spdy");
    TCase *tr = tcase_create("refusals");
    TCase *te = tcase_create("ends");

    tcase_add_test(tw, ws_exec_output_and_exit_code);
    tcase_add_test(tw, ws_stdin_eof_resize);
    tcase_add_test(tw, ws_attach);
    tcase_add_test(tp, spdy_exec);
    tcase_add_test(tr, refusals);
    tcase_add_test(te, ends_cancel_the_session);
    tcase_add_test(te, backpressure);
    tcase_add_test(te, alloc_failures);
    suite_add_tcase(s, tw);
    suite_add_tcase(s, tp);
    suite_add_tcase(s, tr);
    suite_add_tcase(s, te);
    return unit_run(s);
}
