/* runtime_docker_logs.c: a container's output through GET /containers/{id}/logs, streamed
 * (engine_stream), cut out of Docker's stream framing (runtime_docker_mux.c) into chunks. Whether
 * the container has a TTY is left to the framing's first bytes.
 *
 * Backpressure: while paused, what comes is held (docker_paced), the end behind it; only past
 * HOLD_MAX is the engine's connection not read any more (engine_pause). Why not at once: lws'
 * HTTP client closes a connection it does not read when the engine hangs up, and the bytes
 * still in the socket would be lost, so a stream whose tail fits in HOLD_MAX (most of them)
 * is read to its end. One that is cut while not read ends with -EPIPE (engine.c), not as if
 * it were complete.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "runtime_docker_exec.h"
#include "runtime_docker_logs.h"
#include "runtime_docker_mux.h"

#define HOLD_MAX (4u << 20) /* output held while paused before the connection is not read */

struct docker_log {
    struct docker_log *next; /* in x->head until it ends or is cancelled */
    struct docker_logs *x;   /* NULL once off the list */
    struct engine *e;
    struct engine_req *req;
    long handle;
    runtime_log_chunk_fn chunk;
    runtime_log_end_fn end;
    void *ctx;
    struct docker_paced out; /* the framing, and output held while paused */
    bool end_pending;        /* the engine ended the body while output was held */
    bool engine_paused;      /* past HOLD_MAX: engine_pause */
    int busy;                /* calls out of here on the stack: freed when the last returns */
    bool gone;               /* ended or cancelled: nothing more is called */
};

static void unlink_log(struct docker_log *l)
{
    struct docker_log **pp;

    if (!l->x)
        return;
    for (pp = &l->x->head; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    l->x = NULL;
}

static void release(struct docker_log *l)
{
    if (!l->gone || l->busy)
        return;
    docker_paced_cleanup(&l->out);
    kedge_free(l);
}

static bool emit(void *ctx, enum runtime_log_stream stream, const char *b, size_t n)
{
    struct docker_log *l = ctx;

    if (l->gone)
        return false;
    if (n) {
        l->busy++;
        l->chunk(l->ctx, stream, b, n);
        l->busy--;
    }
    return !l->gone && !l->out.paused;
}

static void on_data(void *ctx, const char *bytes, size_t len)
{
    struct docker_log *l = ctx;

    l->busy++;
    if (docker_paced_feed(&l->out, bytes, len, emit, l) < 0)
        kedge_log(KEDGE_LOG_WARN, "edged: out of memory: logs output lost");
    if (!l->gone && l->out.held.len > HOLD_MAX && !l->engine_paused && l->req) {
        l->engine_paused = true;
        engine_pause(l->e, l->req, true);
    }
    l->busy--;
    release(l);
}

static void ended(struct docker_log *l, int err, const char *message)
{
    unlink_log(l);
    l->busy++;
    l->end(l->ctx, err, message);
    l->busy--;
    l->gone = true;
    release(l);
}

static void on_done(void *ctx, const struct engine_reply *r)
{
    struct docker_log *l = ctx;
    char msg[512];

    l->req = NULL;
    if (r->err == -ECANCELED) {
        ended(l, -ECANCELED, "the container runtime client stopped");
        return;
    }
    if (r->err || r->status < 200 || r->status >= 300) {
        docker_engine_message(r, msg, sizeof(msg));
        ended(l, r->status == 404 ? -ENOENT : (r->err ? r->err : -EIO), msg);
        return;
    }
    if (docker_paced_waiting(&l->out)) { /* the end waits behind what is held */
        l->end_pending = true;
        return;
    }
    docker_mux_flush(&l->out.mux, emit, l);
    if (!l->gone)
        ended(l, 0, "");
}

static const struct engine_stream_fns log_fns = {NULL, on_data, on_done};

long docker_logs(struct docker_logs *x, struct engine *e, const char *id,
                 const struct runtime_log_options *o, runtime_log_chunk_fn chunk,
                 runtime_log_end_fn end, void *ctx)
{
    struct docker_log *l;
    char path[256], tail[24];
    int rc;

    if (!chunk || !end || !o)
        return -EINVAL;
    if (!id || !docker_id_ok(id, strlen(id)))
        return -ENOENT;
    if (o->tail_lines < 0)
        snprintf(tail, sizeof(tail), "all");
    else
        snprintf(tail, sizeof(tail), "%ld", o->tail_lines);
    snprintf(path, sizeof(path),
             "/containers/%s/logs?stdout=1&stderr=1&follow=%d&tail=%s&since=%" PRId64
             "&timestamps=%d",
             id, o->follow ? 1 : 0, tail, o->since_s > 0 ? o->since_s : 0, o->timestamps ? 1 : 0);
    l = kedge_calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    if (x->last_handle >= LONG_MAX - 1)
        x->last_handle = 0;
    l->handle = ++x->last_handle;
    l->x = x;
    l->e = e;
    l->chunk = chunk;
    l->end = end;
    l->ctx = ctx;
    docker_mux_init(&l->out.mux, DOCKER_MUX_UNKNOWN);
    l->next = x->head;
    x->head = l;
    l->busy = 1; /* end may come from inside engine_stream */
    rc = engine_stream(e, path, 0, &log_fns, l, &l->req);
    l->busy = 0;
    if (rc < 0) {
        unlink_log(l);
        kedge_free(l);
        return rc;
    }
    long handle = l->handle;
    release(l);
    return handle;
}

void docker_logs_cancel(struct docker_logs *x, long handle)
{
    struct docker_log *l;

    for (l = x->head; l; l = l->next)
        if (l->handle == handle) {
            unlink_log(l);
            l->gone = true;
            engine_cancel(l->e, l->req);
            release(l);
            return;
        }
}

void docker_logs_pause(struct docker_logs *x, long handle, bool pause)
{
    struct docker_log *l;

    for (l = x->head; l && l->handle != handle; l = l->next)
        ;
    if (!l || l->out.paused == pause)
        return;
    l->out.paused = pause;
    if (!pause) {
        l->busy++;
        if (docker_paced_resume(&l->out, emit, l) < 0) /* what was held; may pause again */
            kedge_log(KEDGE_LOG_WARN, "edged: out of memory: logs output lost");
        if (!l->gone && l->end_pending && !docker_paced_waiting(&l->out)) {
            docker_mux_flush(&l->out.mux, emit, l);
            if (!l->gone)
                ended(l, 0, "");
        }
        l->busy--;
        if (l->gone) {
            release(l);
            return;
        }
    }
    if (!l->out.paused && l->engine_paused && l->req) {
        l->engine_paused = false;
        engine_pause(l->e, l->req, false);
    }
}

void docker_logs_free(struct docker_logs *x)
{
    while (x->head) /* an end held behind paused output: no request is left to end it */
        ended(x->head, -ECANCELED, "the container runtime client stopped");
}
