/* runtime_docker_session.c: `kubectl exec` and `kubectl attach` through the Docker Engine API.
 *
 * exec:   POST /containers/{id}/exec (the command, which streams, a TTY), then POST
 *         /exec/{eid}/start on a hijacked connection (engine_hijack.c) that carries stdin one
 *         way and the output the other; when the engine closes it the process is over and GET
 *         /exec/{eid}/json has its ExitCode. Resize: POST /exec/{eid}/resize.
 * attach: POST /containers/{id}/attach?stream=1 hijacked the same way; the end is the end of
 *         the container's streams, its exit code from GET /containers/{id}/json (-1 while it
 *         still runs). Resize: POST /containers/{id}/resize.
 * Without a TTY the output comes in Docker's framing (runtime_docker_mux.c); with one it is raw.
 *
 * Paused, nothing is called: the connection is not read, and what was read already (the rest
 * of a read that output paused in the middle of, or what the hang-up's last read got) is held
 * for the resume, the end behind it.
 *
 * stdin that arrives before the engine took the connection over waits here: dockerd drops what
 * its HTTP server read ahead. close_stdin is shutdown(SHUT_WR) once stdin is written, which
 * both engines pass on as EOF. The exit code may lag the stream's end by a moment (the engine
 * reaps the process after its output closed): an inspect that still says Running is asked
 * again a few times before the code is reported unknown (-1).
 *
 * A session stays allocated while an engine call or its connection holds it, or a callback
 * of it is on the stack: session_cancel from inside output or end is safe, and what answers
 * after a cancel finds the session gone and only lets go of it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "engine_hijack.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "runtime_docker_exec.h"
#include "runtime_docker_mux.h"
#include "runtime_docker_session.h"

#define INSPECT_TRIES 40
#define INSPECT_RETRY_MS 50
#define STOPPED_MESSAGE "the container runtime client stopped"

struct docker_session {
    struct docker_session *next;
    struct docker_sessions *x; /* NULL once off the list (ended or cancelled) */
    long handle;
    bool attach;
    char id[81], exec_id[81];
    struct runtime_stdio io;
    struct runtime_session_fns fns;
    void *ctx;
    struct engine_hijack *h;   /* the stream's connection, until its done */
    struct docker_paced out;   /* the framing, and output held while paused */
    struct kedge_buf early_in; /* stdin before the stream is open */
    bool open, close_in, gone;
    bool resize_pending;
    bool end_pending; /* the stream ended while output was held: finished on the resume */
    int end_err;
    unsigned width, height;
    int refs; /* engine calls in flight for it */
    int busy; /* its callbacks on the stack */
    int inspects;
    bool sul_armed;
    lws_sorted_usec_list_t sul; /* the next inspect */
};

static void release(struct docker_session *s)
{
    if (!s->gone || s->refs || s->busy || s->h || s->sul_armed)
        return;
    kedge_buf_cleanup(&s->early_in);
    docker_paced_cleanup(&s->out);
    kedge_free(s);
}

static void unlink_session(struct docker_session *s)
{
    struct docker_session **pp;

    if (!s->x)
        return;
    for (pp = &s->x->head; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    s->x = NULL;
}

/* Off the list, its connection and timer dropped: nothing more is called. */
static void detach(struct docker_session *s)
{
    unlink_session(s);
    s->gone = true;
    if (s->h) {
        engine_hijack_cancel(s->h);
        s->h = NULL;
    }
    if (s->sul_armed) {
        lws_sul_cancel(&s->sul);
        s->sul_armed = false;
    }
}

/* The end, once; s may be gone when this returns. */
static void end(struct docker_session *s, int err, int exit_code, const char *message)
{
    if (s->gone)
        return;
    detach(s);
    s->busy++;
    s->fns.end(s->ctx, err, exit_code, message ? message : "");
    s->busy--;
    release(s);
}

static size_t trimmed_len(const char *b, size_t n)
{
    while (n && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' '))
        n--;
    return n;
}

/* The engine did not answer (status 0) or refused. */
static void failed(struct docker_session *s, const struct engine_reply *r)
{
    char msg[600];
    int err;

    docker_engine_message(r, msg, sizeof(msg));
    if (r->status && r->len && r->body[0] != '{') /* dockerd answers an upgrade in plain text */
        snprintf(msg, sizeof(msg), "%.*s", (int)trimmed_len(r->body, r->len), r->body);
    if (r->status == 0)
        err = r->err == -ECANCELED || r->err == -ETIMEDOUT || r->err == -ENOMEM ? r->err
                                                                                : -ECONNREFUSED;
    else
        err = r->status == 404 ? -ENOENT : -EIO;
    end(s, err, -1, msg);
}

/* An engine call for s (it holds s until answered). 0 or -ENOMEM. */
static int side_call(struct docker_session *s, const char *method, const char *path,
                     const char *body, engine_done_fn fn)
{
    int rc = engine_request(s->x->e, method, path, body, body ? strlen(body) : 0, 0, fn, s);

    if (rc == 0)
        s->refs++;
    return rc;
}

/* An engine answer for s arrived: false when s is no longer wanted (then let go). */
static bool answered(struct docker_session *s)
{
    s->refs--;
    if (!s->gone)
        return true;
    release(s);
    return false;
}

/* ---- the exit code ----------------------------------------------------------------------- */

static void inspect(struct docker_session *s);

static void inspect_again(lws_sorted_usec_list_t *sul)
{
    struct docker_session *s = lws_container_of(sul, struct docker_session, sul);

    s->sul_armed = false;
    if (s->gone)
        release(s);
    else
        inspect(s);
}

/* Running and the exit code from an exec's or a container's inspect; false: no answer. */
static bool exit_of(const struct docker_session *s, const struct engine_reply *r, bool *running,
                    int *code)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *st, *run, *ec;
    int64_t v = -1;

    if (r->err || r->status != 200 || kedge_json_parse(r->body, r->len, &doc) < 0)
        return false;
    root = kedge_jdoc_root(doc);
    st = s->attach ? kedge_json_get(root, "State") : root;
    run = kedge_json_get(st, "Running");
    ec = kedge_json_get(st, "ExitCode");
    *running = run && run->type == KEDGE_JBOOL && run->boolean;
    if (kedge_json_is_null(ec) || kedge_json_int64(ec, &v) < 0 || v < INT_MIN || v > INT_MAX)
        v = -1;
    *code = (int)v;
    kedge_jdoc_free(doc);
    return true;
}

static void inspected(void *ctx, const struct engine_reply *r)
{
    struct docker_session *s = ctx;
    bool running = false;
    int code = -1;

    if (!answered(s))
        return;
    if (r->err == -ECANCELED) { /* the runtime is being freed */
        end(s, -ECANCELED, -1, STOPPED_MESSAGE);
        return;
    }
    if (!exit_of(s, r, &running, &code)) { /* removed already, say: the code is unknown */
        end(s, 0, -1, "");
        return;
    }
    if (running && ++s->inspects < INSPECT_TRIES && !s->x->stopping) {
        s->sul_armed = true;
        lws_sul_schedule(s->x->lws, 0, &s->sul, inspect_again,
                         (lws_usec_t)INSPECT_RETRY_MS * LWS_US_PER_MS);
        return;
    }
    end(s, 0, running ? -1 : code, "");
}

static void inspect(struct docker_session *s)
{
    char path[160];

    if (s->attach)
        snprintf(path, sizeof(path), "/containers/%s/json", s->id);
    else
        snprintf(path, sizeof(path), "/exec/%s/json", s->exec_id);
    if (side_call(s, "GET", path, NULL, inspected) < 0)
        end(s, 0, -1, ""); /* out of memory: the code is unknown */
}

/* ---- resize ------------------------------------------------------------------------------ */

static void resized(void *ctx, const struct engine_reply *r)
{
    struct docker_session *s = ctx;

    if (!answered(s))
        return;
    if (r->err || r->status < 200 || r->status >= 300) {
        char msg[300];
        docker_engine_message(r, msg, sizeof(msg));
        kedge_log(KEDGE_LOG_DEBUG, "edged: resize of %s %s: %s", s->attach ? "attach" : "exec",
                  s->attach ? s->id : s->exec_id, msg);
    }
}

static int send_resize(struct docker_session *s)
{
    char path[200];

    s->resize_pending = false;
    snprintf(path, sizeof(path), "/%s/%s/resize?h=%u&w=%u", s->attach ? "containers" : "exec",
             s->attach ? s->id : s->exec_id, s->height, s->width);
    return side_call(s, "POST", path, NULL, resized);
}

/* ---- the stream -------------------------------------------------------------------------- */

static void finish_stream(struct docker_session *s, int err);

static bool emit(void *ctx, enum runtime_log_stream stream, const char *b, size_t n)
{
    struct docker_session *s = ctx;

    if (s->gone)
        return false;
    if (n) {
        s->busy++;
        s->fns.output(s->ctx, s->io.tty ? RT_STDOUT : stream, b, n);
        s->busy--;
    }
    return !s->gone && !s->out.paused;
}

/* Output read from the engine, through the framing to output (held while paused). */
static void deliver(struct docker_session *s, const char *b, size_t n)
{
    s->busy++;
    if (docker_paced_feed(&s->out, b, n, emit, s) < 0)
        end(s, -ENOMEM, -1, "out of memory for the session's output");
    s->busy--;
}

static void on_open(void *ctx)
{
    struct docker_session *s = ctx;

    s->open = true;
    if (s->early_in.len && engine_hijack_write(s->h, s->early_in.data, s->early_in.len) == -ENOMEM)
        kedge_log(KEDGE_LOG_WARN, "edged: out of memory: stdin of a session lost");
    kedge_buf_cleanup(&s->early_in);
    if (s->close_in)
        engine_hijack_close_write(s->h);
    if (s->out.paused)
        engine_hijack_pause(s->h, true);
    if (s->resize_pending && send_resize(s) < 0)
        kedge_log(KEDGE_LOG_WARN, "edged: out of memory: a terminal resize lost");
}

static void on_data(void *ctx, const char *b, size_t n)
{
    struct docker_session *s = ctx;

    deliver(s, b, n);
    release(s);
}

static void on_done(void *ctx, const struct engine_reply *r)
{
    struct docker_session *s = ctx;

    s->h = NULL; /* the connection lets go of itself */
    if (s->gone) {
        release(s);
        return;
    }
    if (!s->open) {
        failed(s, r);
        return;
    }
    if (docker_paced_waiting(&s->out)) { /* the end waits behind what is held */
        s->end_pending = true;
        s->end_err = r->err;
        return;
    }
    finish_stream(s, r->err);
}

/* The engine closed the stream (err 0) or it broke, and everything read was delivered. */
static void finish_stream(struct docker_session *s, int err)
{
    char eb[160];

    s->end_pending = false;
    s->busy++;
    docker_mux_flush(&s->out.mux, emit, s);
    s->busy--;
    if (s->gone) {
        release(s);
        return;
    }
    if (s->x->stopping) {
        end(s, -ECANCELED, -1, STOPPED_MESSAGE);
    } else if (err) {
        snprintf(eb, sizeof(eb), "the container runtime's stream broke: %s", strerror(-err));
        end(s, err, -1, eb);
    } else {
        inspect(s);
    }
}

static const struct engine_hijack_fns stream_fns = {on_open, on_data, on_done};

static void start_stream(struct docker_session *s)
{
    char path[200], body[64];
    int rc;

    if (s->attach) {
        snprintf(path, sizeof(path), "/containers/%s/attach?stream=1&stdin=%d&stdout=%d&stderr=%d",
                 s->id, s->io.in, s->io.out, s->io.err);
        rc = engine_hijack(s->x->vhost, s->x->socket_path, "POST", path, NULL, &stream_fns, s,
                           &s->h);
    } else {
        snprintf(path, sizeof(path), "/exec/%s/start", s->exec_id);
        snprintf(body, sizeof(body), "{\"Detach\":false,\"Tty\":%s}", s->io.tty ? "true" : "false");
        rc = engine_hijack(s->x->vhost, s->x->socket_path, "POST", path, body, &stream_fns, s,
                           &s->h);
    }
    if (rc < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "container runtime is not reachable: %s", strerror(-rc));
        end(s, rc == -ENOMEM ? rc : -ECONNREFUSED, -1, msg);
    }
}

static void exec_created(void *ctx, const struct engine_reply *r)
{
    struct docker_session *s = ctx;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *id = NULL;

    if (!answered(s))
        return;
    if (r->err || r->status != 201) {
        failed(s, r);
        return;
    }
    if (kedge_json_parse(r->body, r->len, &doc) == 0)
        id = kedge_json_get(kedge_jdoc_root(doc), "Id");
    if (!id || id->type != KEDGE_JSTR || !docker_id_ok(id->str, id->len) ||
        id->len >= sizeof(s->exec_id)) {
        kedge_jdoc_free(doc);
        end(s, -EIO, -1, "the container runtime gave no exec id");
        return;
    }
    memcpy(s->exec_id, id->str, id->len);
    s->exec_id[id->len] = '\0';
    kedge_jdoc_free(doc);
    start_stream(s);
}

/* ---- the ops ----------------------------------------------------------------------------- */

static int create_body(char *const *argv, size_t argc, const struct runtime_stdio *io,
                       struct kedge_buf *body)
{
    struct kedge_jw w;
    size_t k;

    kedge_jw_init(&w, body);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "AttachStdin");
    kedge_jw_bool(&w, io->in);
    kedge_jw_key(&w, "AttachStdout");
    kedge_jw_bool(&w, io->out);
    kedge_jw_key(&w, "AttachStderr");
    kedge_jw_bool(&w, io->err);
    kedge_jw_key(&w, "Tty");
    kedge_jw_bool(&w, io->tty);
    kedge_jw_key(&w, "Cmd");
    kedge_jw_arr_open(&w);
    for (k = 0; k < argc; k++)
        kedge_jw_str(&w, argv[k] ? argv[k] : "");
    kedge_jw_arr_close(&w);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

static struct docker_session *session_new(struct docker_sessions *x, const char *id, bool attach,
                                          const struct runtime_stdio *io,
                                          const struct runtime_session_fns *fns, void *ctx)
{
    struct docker_session *s = kedge_calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    if (x->last_handle >= LONG_MAX - 1)
        x->last_handle = 0;
    s->handle = ++x->last_handle;
    s->attach = attach;
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->io = *io;
    s->fns = *fns;
    s->ctx = ctx;
    docker_mux_init(&s->out.mux, io->tty ? DOCKER_MUX_RAW : DOCKER_MUX_FRAMED);
    s->x = x;
    s->next = x->head;
    x->head = s;
    return s;
}

/* The handle, after what the first call may have ended already (s held meanwhile). */
static long handle_of(struct docker_session *s)
{
    long handle = s->handle;

    s->busy--;
    release(s);
    return handle;
}

static bool args_ok(const char *id, const struct runtime_stdio *io,
                    const struct runtime_session_fns *fns)
{
    return id && io && fns && fns->output && fns->end;
}

long docker_exec_session(struct docker_sessions *x, const char *id, char *const *argv, size_t argc,
                         const struct runtime_stdio *io, const struct runtime_session_fns *fns,
                         void *ctx)
{
    struct kedge_buf body = KEDGE_BUF_INIT;
    struct docker_session *s;
    char path[160];
    int rc;

    if (!args_ok(id, io, fns) || !argc)
        return -EINVAL;
    if (x->stopping)
        return -ECANCELED;
    if (!docker_id_ok(id, strlen(id)))
        return -ENOENT;
    if (create_body(argv, argc, io, &body) < 0) {
        kedge_buf_cleanup(&body);
        return -ENOMEM;
    }
    s = session_new(x, id, false, io, fns, ctx);
    if (!s) {
        kedge_buf_cleanup(&body);
        return -ENOMEM;
    }
    s->busy++;
    snprintf(path, sizeof(path), "/containers/%s/exec", id);
    rc = side_call(s, "POST", path, body.data, exec_created);
    kedge_buf_cleanup(&body);
    if (rc < 0) {
        detach(s);
        s->busy--;
        release(s);
        return rc;
    }
    return handle_of(s);
}

long docker_attach_session(struct docker_sessions *x, const char *id,
                           const struct runtime_stdio *io, const struct runtime_session_fns *fns,
                           void *ctx)
{
    struct docker_session *s;

    if (!args_ok(id, io, fns))
        return -EINVAL;
    if (x->stopping)
        return -ECANCELED;
    if (!docker_id_ok(id, strlen(id)))
        return -ENOENT;
    s = session_new(x, id, true, io, fns, ctx);
    if (!s)
        return -ENOMEM;
    s->busy++;
    start_stream(s); /* a refused connection ends it here */
    return handle_of(s);
}

static struct docker_session *find(struct docker_sessions *x, long handle)
{
    struct docker_session *s;

    for (s = x->head; s; s = s->next)
        if (s->handle == handle)
            return s;
    return NULL;
}

int docker_session_stdin(struct docker_sessions *x, long handle, const char *b, size_t n)
{
    struct docker_session *s = find(x, handle);
    int rc;

    if (!s || s->close_in)
        return -ENOENT;
    if (!n)
        return 0;
    if (!s->open)
        return kedge_buf_append(&s->early_in, b, n) < 0 ? -ENOMEM : 0;
    rc = engine_hijack_write(s->h, b, n);
    return rc == -EPIPE ? 0 : rc; /* a process that closed its stdin: dropped, as a pipe does */
}

int docker_session_close_stdin(struct docker_sessions *x, long handle)
{
    struct docker_session *s = find(x, handle);

    if (!s)
        return -ENOENT;
    if (s->close_in)
        return 0;
    s->close_in = true;
    if (s->open)
        engine_hijack_close_write(s->h);
    return 0;
}

int docker_session_resize(struct docker_sessions *x, long handle, unsigned width, unsigned height)
{
    struct docker_session *s = find(x, handle);

    if (!s)
        return -ENOENT;
    s->width = width;
    s->height = height;
    if (!s->open) {
        s->resize_pending = true; /* the exec must have started: sent when it did */
        return 0;
    }
    return send_resize(s);
}

void docker_session_pause(struct docker_sessions *x, long handle, bool pause)
{
    struct docker_session *s = find(x, handle);

    if (!s || s->out.paused == pause)
        return;
    s->out.paused = pause;
    if (!pause) {
        s->busy++;
        if (docker_paced_resume(&s->out, emit, s) < 0) /* what was held; may pause again */
            end(s, -ENOMEM, -1, "out of memory for the session's output");
        else if (!s->gone && !docker_paced_waiting(&s->out) && s->end_pending)
            finish_stream(s, s->end_err);
        s->busy--;
        if (s->gone) {
            release(s);
            return;
        }
    }
    if (s->open && s->h)
        engine_hijack_pause(s->h, s->out.paused);
}

void docker_session_cancel(struct docker_sessions *x, long handle)
{
    struct docker_session *s = find(x, handle);

    if (!s)
        return;
    detach(s);
    release(s);
}

/* ---- lifetime ---------------------------------------------------------------------------- */

int docker_sessions_init(struct docker_sessions *x, struct engine *e, struct lws_context *lws,
                         struct lws_vhost *vhost, const char *socket_path)
{
    memset(x, 0, sizeof(*x));
    x->e = e;
    x->lws = lws;
    x->vhost = vhost;
    x->socket_path = kedge_strdup(socket_path ? socket_path : "");
    return x->socket_path ? 0 : -ENOMEM;
}

/* End every session on the list (each end takes it off). */
static void end_all(struct docker_sessions *x, bool waiting_only)
{
    struct docker_session *s;

    for (s = x->head; s;) {
        if (waiting_only && !s->sul_armed) {
            s = s->next;
            continue;
        }
        end(s, -ECANCELED, -1, STOPPED_MESSAGE);
        s = x->head;
    }
}

void docker_sessions_stop(struct docker_sessions *x)
{
    x->stopping = true;
    end_all(x, true); /* their timers go with the loop */
}

void docker_sessions_free(struct docker_sessions *x)
{
    end_all(x, false);
    kedge_free(x->socket_path);
    x->socket_path = NULL;
}
