/* fake_runtime.c: see fake_runtime.h. Every call is answered before it returns, as a runtime
 * that refuses a connection answers; the world changes as a real engine's would. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fake_runtime.h"
#include "kedge/util.h"

static struct fake_runtime *F(void *rt)
{
    return rt;
}

static void record(struct fake_runtime *f, enum fake_call_kind kind, const char *arg, int attempt)
{
    struct fake_call *c;

    if (f->n_calls == FAKE_MAX_CALLS)
        return;
    size_t n = arg ? strnlen(arg, sizeof(c->arg) - 1) : 0;

    c = &f->calls[f->n_calls++];
    c->kind = kind;
    memmove(c->arg, arg ? arg : "", n);
    c->arg[n] = '\0';
    c->attempt = attempt;
}

static struct fake_container *by_id(struct fake_runtime *f, const char *id)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->c[i].exists && !strcmp(f->c[i].id, id))
            return &f->c[i];
    return NULL;
}

static void answer(runtime_done_fn done, void *ctx, enum runtime_outcome o, const char *id)
{
    struct runtime_result r = {.outcome = o, .message = o == RT_OK ? "" : "fake failure", .id = id};

    if (done)
        done(ctx, &r);
}

static int create(struct fake_runtime *f, const struct runtime_create *cc, bool sandbox,
                  runtime_done_fn done, void *ctx)
{
    struct fake_container *c;

    if (f->n == FAKE_MAX_CONTAINERS)
        return -ENOMEM;
    c = &f->c[f->n++];
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "c%d", ++f->next_id);
    snprintf(c->pod_uid, sizeof(c->pod_uid), "%s", cc->pod->uid);
    snprintf(c->name, sizeof(c->name), "%s", sandbox ? "POD" : cc->c->name);
    snprintf(c->image, sizeof(c->image), "%s", sandbox ? "pause" : cc->c->image);
    c->sandbox = sandbox;
    c->exists = true;
    c->attempt = cc->attempt;
    c->hash = sandbox ? 0 : cc->c->hash;
    c->state = "created";
    c->created_ms = kedge_wall_ms();
    record(f, sandbox ? FAKE_CREATE_SANDBOX : FAKE_CREATE, c->name, cc->attempt);
    answer(done, ctx, RT_OK, c->id);
    return 0;
}

static int op_create_sandbox(void *rt, const struct runtime_create *cc, char *why, size_t why_len,
                             runtime_done_fn done, void *ctx)
{
    (void)why;
    (void)why_len;
    return create(F(rt), cc, true, done, ctx);
}

static int op_create_container(void *rt, const struct runtime_create *cc, char *why, size_t why_len,
                               runtime_done_fn done, void *ctx)
{
    (void)why;
    (void)why_len;
    return create(F(rt), cc, false, done, ctx);
}

static int op_start(void *rt, const char *id, runtime_done_fn done, void *ctx)
{
    struct fake_container *c = by_id(F(rt), id);

    record(F(rt), FAKE_START, id, 0);
    if (c) {
        c->running = true;
        c->state = "running";
        c->started_ms = kedge_wall_ms();
    }
    answer(done, ctx, c ? RT_OK : RT_FAILED, NULL);
    return 0;
}

static int op_kill(void *rt, const char *id, const char *signal, runtime_done_fn done, void *ctx)
{
    struct fake_container *c = by_id(F(rt), id);
    char arg[128];

    snprintf(arg, sizeof(arg), "%s %s", id, signal);
    record(F(rt), FAKE_KILL, arg, 0);
    if (c && c->running)
        fake_exit(F(rt), c, 137);
    answer(done, ctx, c ? RT_OK : RT_NOT_FOUND, NULL);
    return 0;
}

static int op_remove(void *rt, const char *id, runtime_done_fn done, void *ctx)
{
    struct fake_container *c = by_id(F(rt), id);

    record(F(rt), FAKE_REMOVE, id, 0);
    if (c)
        c->exists = false;
    answer(done, ctx, c ? RT_OK : RT_NOT_FOUND, NULL);
    return 0;
}

static int op_list(void *rt, runtime_done_fn done, void *ctx)
{
    struct fake_runtime *f = F(rt);
    struct runtime_listed l[FAKE_MAX_CONTAINERS];
    struct runtime_result r = {.outcome = RT_OK, .message = "", .listed = l};

    record(f, FAKE_LIST, NULL, 0);
    for (size_t i = 0; i < f->n; i++)
        if (f->c[i].exists)
            l[r.n_listed++] = (struct runtime_listed){f->c[i].id, f->c[i].pod_uid, f->c[i].name,
                                                      f->c[i].state, f->c[i].sandbox};
    done(ctx, &r);
    return 0;
}

static int op_inspect(void *rt, const char *id, runtime_done_fn done, void *ctx)
{
    struct fake_container *c = by_id(F(rt), id);
    struct observed_container o = {0};
    struct runtime_result r = {.outcome = RT_NOT_FOUND, .message = ""};

    record(F(rt), FAKE_INSPECT, id, 0);
    if (c) {
        o.id = c->id;
        o.name = c->name;
        o.image = o.image_id = c->image;
        o.attempt = c->attempt;
        o.hash = c->hash;
        o.running = c->running;
        o.state = (char *)c->state;
        o.exit_code = c->exit_code;
        o.error = "";
        o.started_ms = c->started_ms;
        o.finished_ms = c->finished_ms;
        o.created_ms = c->created_ms;
        o.ip = c->sandbox ? "10.88.0.5" : NULL;
        r.outcome = RT_OK;
        r.inspected = &o;
    }
    done(ctx, &r);
    return 0;
}

static int op_image_present(void *rt, const char *image, runtime_done_fn done, void *ctx)
{
    struct runtime_result r = {.outcome = RT_OK, .message = "", .present = F(rt)->image_present};

    record(F(rt), FAKE_IMAGE, image, 0);
    done(ctx, &r);
    return 0;
}

static int op_pull(void *rt, const char *image, const struct runtime_auth *auth,
                   runtime_done_fn done, void *ctx)
{
    struct fake_runtime *f = F(rt);

    record(f, FAKE_PULL, image, 0);
    snprintf(f->pull_auth, sizeof(f->pull_auth), "%s:%s@%s", auth ? auth->username : "",
             auth ? auth->password : "", auth ? auth->server : "");
    if (f->pull_error) {
        struct runtime_result r = {.outcome = RT_FAILED, .message = f->pull_error};
        done(ctx, &r);
        return 0;
    }
    f->image_present = true;
    answer(done, ctx, RT_OK, NULL);
    return 0;
}

static int op_version(void *rt, runtime_done_fn done, void *ctx)
{
    struct runtime_result r = {.outcome = RT_OK, .message = "", .text = "fake://1.0"};

    record(F(rt), FAKE_VERSION, NULL, 0);
    done(ctx, &r);
    return 0;
}

static int op_watch(void *rt, runtime_changed_fn changed, runtime_up_fn up, void *ctx)
{
    struct fake_runtime *f = F(rt);

    record(f, FAKE_WATCH, NULL, 0);
    f->changed = changed;
    f->up = up;
    f->watch_ctx = ctx;
    up(ctx, true);
    return 0;
}

static long op_exec(void *rt, const char *id, char *const *argv, size_t argc, int timeout_ms,
                    runtime_exec_fn done, void *ctx)
{
    (void)rt;
    (void)id;
    (void)argv;
    (void)argc;
    (void)timeout_ms;
    (void)done;
    (void)ctx;
    return -ENOSYS; /* the pods of these tests have no exec probes */
}

static void op_exec_cancel(void *rt, long handle)
{
    (void)rt;
    (void)handle;
}

static void follow_end(struct fake_runtime *f, int err, const char *message)
{
    runtime_log_end_fn end = f->log_end;

    if (!f->log_handle)
        return;
    f->log_handle = 0;
    end(f->log_ctx, err, message);
}

static long op_logs(void *rt, const char *id, const struct runtime_log_options *o,
                    runtime_log_chunk_fn chunk, runtime_log_end_fn end, void *ctx)
{
    struct fake_runtime *f = F(rt);
    struct fake_container *c = by_id(f, id);
    long handle = (long)f->n_calls + 1;

    record(f, FAKE_LOGS, id, 0);
    f->log_opts = *o;
    if (!c) {
        end(ctx, -ENOENT, "no such container");
        return handle;
    }
    for (size_t i = 0; i < f->n_log; i++)
        chunk(ctx, f->log[i].stream, f->log[i].bytes, strlen(f->log[i].bytes));
    if (o->follow && c->running && !f->log_err && !f->log_handle) {
        f->log_handle = handle;
        f->log_chunk = chunk;
        f->log_end = end;
        f->log_ctx = ctx;
        snprintf(f->log_id, sizeof(f->log_id), "%s", id);
    } else {
        end(ctx, f->log_err, f->log_err ? "fake failure" : "");
    }
    return handle;
}

static void op_logs_cancel(void *rt, long handle)
{
    struct fake_runtime *f = F(rt);

    record(f, FAKE_LOGS_CANCEL, NULL, 0);
    if (handle == f->log_handle)
        f->log_handle = 0;
}

static void op_logs_pause(void *rt, long handle, bool pause)
{
    struct fake_runtime *f = F(rt);

    record(f, FAKE_LOGS_PAUSE, NULL, pause); /* attempt: 1 pause, 0 resume */
    if (handle == f->log_handle)
        f->log_paused = pause;
}

/* ---- sessions ---- */

static struct fake_session *session_slot(struct fake_runtime *f)
{
    for (size_t i = 0; i < FAKE_MAX_SESSIONS; i++) {
        struct fake_session *s = &f->sessions[i];
        if (!s->handle || s->ended || s->cancelled)
            return s;
    }
    return NULL;
}

static void session_ended(struct fake_session *s, int err, int exit_code, const char *message)
{
    if (s->ended || s->cancelled)
        return;
    s->ended = true;
    s->fns.end(s->ctx, err, exit_code, message);
}

static long session_new(struct fake_runtime *f, const char *id, bool attach, char *const *argv,
                        size_t argc, const struct runtime_stdio *io,
                        const struct runtime_session_fns *fns, void *ctx)
{
    struct fake_session *s = session_slot(f);
    struct fake_container *c = by_id(f, id);
    size_t n = 0;

    if (!s)
        return -ENOMEM;
    memset(s, 0, sizeof(*s));
    s->handle = (long)f->n_calls + 1;
    s->attach = attach;
    snprintf(s->id, sizeof(s->id), "%s", id);
    for (size_t i = 0; i < argc && n < sizeof(s->argv); i++)
        n += (size_t)snprintf(s->argv + n, sizeof(s->argv) - n, "%s%s", i ? " " : "", argv[i]);
    s->io = *io;
    s->fns = *fns;
    s->ctx = ctx;
    if (attach) {
        record(f, FAKE_ATTACH_SESSION, id, 0);
    } else {
        char arg[sizeof(s->id) + sizeof(s->argv) + 2];
        snprintf(arg, sizeof(arg), "%s %s", s->id, s->argv);
        record(f, FAKE_EXEC_SESSION, arg, 0);
    }
    long handle = s->handle;
    if (!c || !c->running) /* the engines' texts */
        session_ended(s, -ENOENT, -1, c ? "container is not running" : "No such container: fake");
    else if (f->session_err)
        session_ended(s, f->session_err, -1,
                      f->session_message ? f->session_message : "fake failure");
    return handle;
}

static long op_exec_session(void *rt, const char *id, char *const *argv, size_t argc,
                            const struct runtime_stdio *io, const struct runtime_session_fns *fns,
                            void *ctx)
{
    return session_new(F(rt), id, false, argv, argc, io, fns, ctx);
}

static long op_attach_session(void *rt, const char *id, const struct runtime_stdio *io,
                              const struct runtime_session_fns *fns, void *ctx)
{
    return session_new(F(rt), id, true, NULL, 0, io, fns, ctx);
}

static struct fake_session *live(struct fake_runtime *f, long handle)
{
    struct fake_session *s = fake_session(f, handle);

    return s && !s->ended && !s->cancelled ? s : NULL;
}

static int op_session_stdin(void *rt, long handle, const char *b, size_t n)
{
    struct fake_runtime *f = F(rt);
    struct fake_session *s = live(f, handle);

    if (!s || s->stdin_closed)
        return -ENOENT;
    if (n > sizeof(s->in) - s->in_len)
        return -ENOMEM;
    memcpy(s->in + s->in_len, b, n);
    s->in_len += n;
    if (f->session_echo) {
        char tmp[FAKE_SESSION_BYTES + 1];
        memcpy(tmp, b, n);
        tmp[n] = '\0';
        fake_session_output(f, s, RT_STDOUT, tmp);
    }
    return 0;
}

static int op_session_close_stdin(void *rt, long handle)
{
    struct fake_runtime *f = F(rt);
    struct fake_session *s = live(f, handle);

    if (!s)
        return -ENOENT;
    s->stdin_closed = true;
    if (f->session_echo && !s->paused)
        session_ended(s, 0, 0, "");
    return 0;
}

static int op_session_resize(void *rt, long handle, unsigned width, unsigned height)
{
    struct fake_session *s = live(F(rt), handle);

    if (!s)
        return -ENOENT;
    s->width = width;
    s->height = height;
    s->resizes++;
    return 0;
}

static void op_session_pause(void *rt, long handle, bool pause)
{
    struct fake_runtime *f = F(rt);
    struct fake_session *s = live(f, handle);

    if (!s)
        return;
    s->paused = pause;
    if (!pause && s->held_len) {
        char tmp[FAKE_SESSION_BYTES + 1];
        memcpy(tmp, s->held, s->held_len);
        tmp[s->held_len] = '\0';
        s->held_len = 0;
        fake_session_output(f, s, s->held_stream, tmp);
    }
    if (!pause && f->session_echo && s->stdin_closed)
        session_ended(s, 0, 0, "");
}

static void op_session_cancel(void *rt, long handle)
{
    struct fake_runtime *f = F(rt);
    struct fake_session *s = fake_session(f, handle);

    record(f, FAKE_SESSION_CANCEL, NULL, 0);
    if (s)
        s->cancelled = true;
}

static void op_stop(void *rt)
{
    record(F(rt), FAKE_STOP, NULL, 0);
}

static void op_free(void *rt)
{
    record(F(rt), FAKE_FREE, NULL, 0);
    follow_end(F(rt), -ECANCELED, "the runtime is gone");
    for (size_t i = 0; i < FAKE_MAX_SESSIONS; i++)
        if (F(rt)->sessions[i].handle)
            session_ended(&F(rt)->sessions[i], -ECANCELED, -1, "the runtime is gone");
    fake_stats_release(F(rt), -ECANCELED);
    F(rt)->freed = true;
}

/* ---- stats ---- */

static void stats_answer(struct fake_runtime *f, const char *id, runtime_stats_fn done, void *ctx)
{
    struct runtime_stats st = f->stats_sample;

    for (size_t i = 0; i < f->n; i++)
        if (f->c[i].exists && f->c[i].running && !strcmp(f->c[i].id, id)) {
            f->stats_cpu_ns += f->stats_step_ns;
            st.cpu_usage_ns += f->stats_cpu_ns;
            st.time_ms = kedge_wall_ms();
            done(ctx, 0, &st, "");
            return;
        }
    done(ctx, -ENOENT, NULL, "no such container");
}

static int op_stats(void *rt, const char *id, runtime_stats_fn done, void *ctx)
{
    struct fake_runtime *f = F(rt);

    record(f, FAKE_STATS, id, 0);
    if (!f->stats_hold) {
        stats_answer(f, id, done, ctx);
        return 0;
    }
    if (f->n_stats_held == FAKE_MAX_CONTAINERS)
        return -ENOMEM;
    snprintf(f->stats_held[f->n_stats_held].id, sizeof(f->stats_held[0].id), "%s", id);
    f->stats_held[f->n_stats_held].done = done;
    f->stats_held[f->n_stats_held++].ctx = ctx;
    return 0;
}

void fake_stats_release(struct fake_runtime *f, int err)
{
    size_t n = f->n_stats_held;

    f->n_stats_held = 0;
    for (size_t i = 0; i < n; i++) {
        if (err)
            f->stats_held[i].done(f->stats_held[i].ctx, err, NULL, "the runtime is gone");
        else
            stats_answer(f, f->stats_held[i].id, f->stats_held[i].done, f->stats_held[i].ctx);
    }
}

static const struct runtime_ops fake_ops = {
    .create_sandbox = op_create_sandbox,
    .create_container = op_create_container,
    .start_container = op_start,
    .kill_container = op_kill,
    .remove_container = op_remove,
    .list = op_list,
    .inspect = op_inspect,
    .image_present = op_image_present,
    .pull_image = op_pull,
    .version = op_version,
    .watch = op_watch,
    .exec = op_exec,
    .exec_cancel = op_exec_cancel,
    .logs = op_logs,
    .logs_cancel = op_logs_cancel,
    .logs_pause = op_logs_pause,
    .exec_session = op_exec_session,
    .attach_session = op_attach_session,
    .session_stdin = op_session_stdin,
    .session_close_stdin = op_session_close_stdin,
    .session_resize = op_session_resize,
    .session_pause = op_session_pause,
    .session_cancel = op_session_cancel,
    .stats = op_stats,
    .stop = op_stop,
    .free = op_free,
};

void fake_runtime_init(struct fake_runtime *f, struct runtime *rt)
{
    memset(f, 0, sizeof(*f));
    f->image_present = true;
    rt->ops = &fake_ops;
    rt->rt = f;
}

struct fake_container *fake_find(struct fake_runtime *f, const char *uid, const char *name)
{
    struct fake_container *best = NULL;

    for (size_t i = 0; i < f->n; i++)
        if (f->c[i].exists && !strcmp(f->c[i].pod_uid, uid) && !strcmp(f->c[i].name, name) &&
            (!best || f->c[i].attempt >= best->attempt))
            best = &f->c[i];
    return best;
}

void fake_exit(struct fake_runtime *f, struct fake_container *c, int code)
{
    c->running = false;
    c->state = "exited";
    c->exit_code = code;
    c->finished_ms = kedge_wall_ms();
    if (f->log_handle && !strcmp(f->log_id, c->id))
        follow_end(f, 0, ""); /* a follow ends with its container */
    if (f->changed)
        f->changed(f->watch_ctx);
}

size_t fake_count(const struct fake_runtime *f, size_t from, enum fake_call_kind kind,
                  const char *arg)
{
    size_t n = 0;

    for (size_t i = from; i < f->n_calls; i++)
        n += f->calls[i].kind == kind && (!arg || !strcmp(f->calls[i].arg, arg));
    return n;
}

void fake_log_write(struct fake_runtime *f, enum runtime_log_stream stream, const char *bytes)
{
    if (f->log_handle)
        f->log_chunk(f->log_ctx, stream, bytes, strlen(bytes));
}

struct fake_session *fake_session(struct fake_runtime *f, long handle)
{
    for (size_t i = 0; handle > 0 && i < FAKE_MAX_SESSIONS; i++)
        if (f->sessions[i].handle == handle)
            return &f->sessions[i];
    return NULL;
}

struct fake_session *fake_session_last(struct fake_runtime *f)
{
    struct fake_session *best = NULL;

    for (size_t i = 0; i < FAKE_MAX_SESSIONS; i++) {
        struct fake_session *s = &f->sessions[i];
        if (s->handle && !s->ended && !s->cancelled && (!best || s->handle > best->handle))
            best = s;
    }
    return best;
}

void fake_session_output(struct fake_runtime *f, struct fake_session *s,
                         enum runtime_log_stream stream, const char *bytes)
{
    size_t n = strlen(bytes);

    (void)f;
    if (s->ended || s->cancelled || !n)
        return;
    if (s->io.tty)
        stream = RT_STDOUT; /* a TTY has one stream */
    if (s->paused) {
        if (n > sizeof(s->held) - s->held_len)
            n = sizeof(s->held) - s->held_len;
        memcpy(s->held + s->held_len, bytes, n);
        s->held_len += n;
        s->held_stream = stream;
        return;
    }
    s->fns.output(s->ctx, stream, bytes, n);
}

void fake_session_end(struct fake_runtime *f, struct fake_session *s, int err, int exit_code,
                      const char *message)
{
    (void)f;
    session_ended(s, err, exit_code, message ? message : "");
}
