/* exec.c: `kubectl exec` and `kubectl attach` on a tunnel connection (EXEC_CONNECT,
 * ATTACH_CONNECT).
 *
 * The API server's upgrade request reaches us as the *_CONNECT's method, URL and headers, the
 * client's bytes after it as DATA, and what we send back as DATA reaches the client untouched,
 * starting with our answer to the upgrade: edgecore hands the raw answer of its local kubelet
 * server back the same way (pkg/stream/edgedexecconnection.go). remotecommand.h speaks the
 * client's protocol (WebSocket channels or SPDY/3.1 streams); the process is a runtime session
 * (runtime.h exec_session / attach_session). This file is the glue: which container, and the
 * flow between the two, with backpressure (the process's output pauses while the tunnel is over
 * its high-water mark).
 *
 * A request refused before any upgrade is answered as kubelet's server answers it
 * (pkg/kubelet/server/server.go getExec/getAttach): a pod the node does not have -> 404 "pod
 * does not exist"; a container it does not have -> 500 `container not found ("c")`; kubectl
 * prints "error: unable to upgrade connection: <text>".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "exec.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/log.h"
#include "remotecommand.h"
#include "stream.h"

struct exec_conn {
    const struct stream_deps *deps;
    struct stream_conn *c;
    struct rc *rc;
    const struct stream_request *req; /* during open only: the upgrade's headers */
    struct kedge_buf joined;          /* a header's values, for rc_accept */
    bool attach;
    long session; /* the runtime session; 0 none */
    bool paused;  /* the session's output, while the tunnel is over its mark */
    bool ended;   /* REMOVE_CONNECT sent, or the cloud removed it */
    char id[128]; /* the container's runtime id */
    char what[160];
};

static const struct runtime_ops *ops(const struct exec_conn *x)
{
    return x->deps->rt->ops;
}

static void *rt(const struct exec_conn *x)
{
    return x->deps->rt->rt;
}

static void stop_session(struct exec_conn *x)
{
    if (x->session > 0)
        ops(x)->session_cancel(rt(x), x->session);
    x->session = 0;
}

static void end(struct exec_conn *x)
{
    stop_session(x);
    if (!x->ended)
        stream_conn_end(x->c);
    x->ended = true;
}

/* ---- the process -> the client ----------------------------------------------------------- */

static void on_output(void *ctx, enum runtime_log_stream s, const char *b, size_t n)
{
    struct exec_conn *x = ctx;

    if (x->ended)
        return;
    if (rc_output(x->rc, s, b, n) < 0) {
        /* out of memory (the rc is not over, or we would have ended): output is missing, so
         * the client must not get an exit code after it; cut the connection instead */
        end(x);
        return;
    }
    if (!x->paused && x->session > 0 && stream_conn_over(x->c)) {
        ops(x)->session_pause(rt(x), x->session, true);
        x->paused = true;
    }
}

static void on_end(void *ctx, int err, int exit_code, const char *message)
{
    struct exec_conn *x = ctx;

    x->session = 0; /* the runtime is done with it */
    if (x->ended)
        return;
    if (err < 0) {
        kedge_log(KEDGE_LOG_WARN, "stream: %s (connection %llu): %s", x->what,
                  (unsigned long long)stream_conn_id(x->c), message);
        rc_fail(x->rc, message);
    } else {
        rc_exit(x->rc, exit_code < 0 ? 0 : exit_code); /* attach: Success whatever the code */
    }
    end(x);
}

static const struct runtime_session_fns session_fns = {on_output, on_end};

/* ---- the client -> the process ----------------------------------------------------------- */

static void rc_send(void *ctx, const char *b, size_t n)
{
    struct exec_conn *x = ctx;

    if (!x->ended && stream_conn_send(x->c, b, n) < 0)
        end(x); /* no tunnel or no memory: nothing more can reach the client */
}

static void rc_ready(void *ctx, const struct rc_options *o)
{
    struct exec_conn *x = ctx;
    struct runtime_stdio io = {o->in, o->out, o->err, o->tty};
    long h;

    if (x->attach)
        h = ops(x)->attach_session(rt(x), x->id, &io, &session_fns, x);
    else
        h = ops(x)->exec_session(rt(x), x->id, o->argv, o->argc, &io, &session_fns, x);
    if (h < 0) {
        kedge_log(KEDGE_LOG_WARN, "stream: %s (connection %llu): the runtime refused: %s", x->what,
                  (unsigned long long)stream_conn_id(x->c),
                  h == -ENOMEM ? "out of memory" : "no session");
        rc_fail(x->rc, h == -ENOMEM ? "out of memory" : "the container runtime refused");
        end(x);
    } else if (!x->ended) {
        x->session = h; /* unless it ended already, from inside the call */
    }
}

static void rc_stdin(void *ctx, const char *b, size_t n)
{
    struct exec_conn *x = ctx;

    if (x->session > 0 && ops(x)->session_stdin(rt(x), x->session, b, n) < 0) {
        rc_fail(x->rc, "cannot write the process's stdin");
        end(x);
    }
}

static void rc_stdin_close(void *ctx)
{
    struct exec_conn *x = ctx;

    if (x->session > 0)
        ops(x)->session_close_stdin(rt(x), x->session);
}

static void rc_resize(void *ctx, unsigned width, unsigned height)
{
    struct exec_conn *x = ctx;

    if (x->session > 0)
        ops(x)->session_resize(rt(x), x->session, width, height);
}

static void rc_closed(void *ctx, const char *why)
{
    struct exec_conn *x = ctx;

    kedge_log(KEDGE_LOG_INFO, "stream: %s (connection %llu): the client ended it (%s)", x->what,
              (unsigned long long)stream_conn_id(x->c), why);
    end(x);
}

static const struct rc_fns rc_callbacks = {
    .send = rc_send,
    .ready = rc_ready,
    .stdin_data = rc_stdin,
    .stdin_close = rc_stdin_close,
    .resize = rc_resize,
    .closed = rc_closed,
};

/* ---- the request ------------------------------------------------------------------------- */

static const char *header(void *hctx, const char *name)
{
    struct exec_conn *x = hctx;

    return stream_request_header_join(x->req, name, &x->joined) == 0 ? x->joined.data : NULL;
}

static void refuse(struct exec_conn *x, int status, const char *text)
{
    kedge_log(KEDGE_LOG_WARN, "stream: %s (connection %llu): %d %s", x->what,
              (unsigned long long)stream_conn_id(x->c), status, text);
    rc_reject(&rc_callbacks, x, status, text);
    end(x);
}

/* kubelet's routes: /{exec|attach}/{ns}/{pod}/{container} and .../{ns}/{pod}/{uid}/{container}:
 * 4 or 5 non-empty segments. */
static int split_path(const char *path, char parts[5][256], int *n)
{
    const char *p = path;

    *n = 0;
    if (*p++ != '/')
        return -EINVAL;
    while (*n < 5) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);

        if (!len || len >= sizeof(parts[0]))
            return -EINVAL;
        memcpy(parts[*n], p, len);
        parts[(*n)++][len] = '\0';
        if (!slash)
            return *n >= 4 ? 0 : -EINVAL;
        p = slash + 1;
    }
    return -EINVAL;
}

static void serve(struct exec_conn *x, const struct stream_request *req)
{
    struct rc_upgrade u = {req->method, req->raw_query, header, x, x->attach};
    char parts[5][256], why[256];
    const char *ns, *pod, *container;
    int n, err;

    if (split_path(req->path, parts, &n) < 0) {
        snprintf(x->what, sizeof(x->what), "%.150s", req->path);
        refuse(x, 404, "404 page not found\n"); /* go-restful: no such route */
        return;
    }
    ns = parts[1];
    pod = parts[2];
    container = parts[n - 1];
    snprintf(x->what, sizeof(x->what), "%s %.40s/%.60s/%.40s", x->attach ? "attach" : "exec", ns,
             pod, container);
    if (!x->deps->rt) {
        refuse(x, 500, "no container runtime on this node");
        return;
    }
    err = x->deps->find_running(x->deps->find_ctx, ns, pod, container, x->id, sizeof(x->id), why,
                                sizeof(why));
    if (err < 0) { /* kubelet: GetPodByName fails -> 404, GetExec/GetAttach fails -> 500 */
        refuse(x, strcmp(why, "pod does not exist") ? 500 : 404, why);
        return;
    }
    x->req = req;
    err = rc_accept(&u, &rc_callbacks, x, &x->rc);
    x->req = NULL;
    if (err < 0) { /* answered with kubelet's error */
        kedge_log(KEDGE_LOG_WARN, "stream: %s (connection %llu): upgrade refused", x->what,
                  (unsigned long long)stream_conn_id(x->c));
        end(x);
    }
}

static int conn_open(void *hctx, struct stream_conn *c, const struct stream_request *req,
                     void **state, bool attach)
{
    struct exec_conn *x = kedge_calloc(1, sizeof(*x));

    if (!x)
        return -ENOMEM;
    x->deps = hctx;
    x->c = c;
    x->attach = attach;
    x->joined = (struct kedge_buf)KEDGE_BUF_INIT;
    *state = x;
    serve(x, req);
    return 0;
}

static int exec_open(void *hctx, struct stream_conn *c, const struct stream_request *req,
                     void **state)
{
    return conn_open(hctx, c, req, state, false);
}

static int attach_open(void *hctx, struct stream_conn *c, const struct stream_request *req,
                       void **state)
{
    return conn_open(hctx, c, req, state, true);
}

static void conn_data(void *state, const char *b, size_t n)
{
    struct exec_conn *x = state;

    if (!x->ended && x->rc && rc_input(x->rc, b, n) < 0)
        end(x); /* over: closed() said why, or rc_exit/rc_fail ended it */
}

static void conn_remove(void *state)
{
    struct exec_conn *x = state;

    x->ended = true; /* the cloud ended it: nothing more is sent */
    stop_session(x);
}

static void conn_resume(void *state)
{
    struct exec_conn *x = state;

    if (x->paused && x->session > 0)
        ops(x)->session_pause(rt(x), x->session, false);
    x->paused = false;
}

static void conn_free(void *state)
{
    struct exec_conn *x = state;

    stop_session(x);
    rc_free(x->rc);
    kedge_buf_cleanup(&x->joined);
    kedge_free(x);
}

const struct stream_handler_ops stream_exec_ops = {exec_open, conn_data, conn_remove, conn_resume,
                                                   conn_free};
const struct stream_handler_ops stream_attach_ops = {attach_open, conn_data, conn_remove,
                                                     conn_resume, conn_free};
