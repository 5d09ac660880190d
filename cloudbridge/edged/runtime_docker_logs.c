/* runtime_docker_logs.c: a container's output through GET /containers/{id}/logs, streamed
 * (engine_stream) and cut out of Docker's stream framing into chunks.
 *
 * Without a TTY the engine multiplexes stdout and stderr into one body of frames,
 * [stream (0 stdin, 1 stdout, 2 stderr), 0, 0, 0, length (big-endian u32)] + payload, on podman
 * and dockerd alike (docs/containers.md §5.1). A frame may be split across reads and several may
 * come in one, so the header is collected byte by byte and a payload handed on as it arrives.
 * A container with a TTY sends raw bytes: the first 8 bytes decide (a header that does not parse
 * means raw, all of it stdout), which spares the inspect of Config.Tty Docker's CLI makes. A
 * header that stops parsing later turns the rest raw rather than losing it.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "runtime_docker_exec.h"
#include "runtime_docker_logs.h"

#define HEADER_LEN 8

enum mode { MODE_UNKNOWN, MODE_MUX, MODE_RAW };

struct docker_log {
    struct docker_log *next; /* in x->head until it ends or is cancelled */
    struct docker_logs *x;   /* NULL once off the list */
    struct engine *e;
    struct engine_req *req;
    long handle;
    runtime_log_chunk_fn chunk;
    runtime_log_end_fn end;
    void *ctx;
    unsigned char header[HEADER_LEN];
    size_t header_len;
    uint32_t left; /* payload bytes of the current frame still to come */
    enum runtime_log_stream stream;
    enum mode mode;
    int busy;  /* calls out of here on the stack: freed when the last returns */
    bool gone; /* ended or cancelled: nothing more is called */
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
    if (l->gone && !l->busy)
        kedge_free(l);
}

static void emit(struct docker_log *l, enum runtime_log_stream stream, const char *b, size_t n)
{
    if (!n || l->gone)
        return;
    l->busy++;
    l->chunk(l->ctx, stream, b, n);
    l->busy--;
}

static bool header_ok(const unsigned char *h)
{
    return h[0] <= 2 && !h[1] && !h[2] && !h[3];
}

/* The collected header is complete: the next frame, or raw from here on. */
static void frame_start(struct docker_log *l)
{
    const unsigned char *h = l->header;

    l->header_len = 0;
    if (!header_ok(h)) {
        l->mode = MODE_RAW; /* a TTY's output, or framing lost: nothing is dropped */
        emit(l, RT_STDOUT, (const char *)h, HEADER_LEN);
        return;
    }
    l->mode = MODE_MUX;
    l->stream = h[0] == 2 ? RT_STDERR : RT_STDOUT;
    l->left = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
}

static void demux(struct docker_log *l, const char *b, size_t len)
{
    while (len && !l->gone) {
        size_t n;

        if (l->mode == MODE_RAW) {
            emit(l, RT_STDOUT, b, len);
            return;
        }
        if (l->left) {
            n = len < l->left ? len : l->left;
            emit(l, l->stream, b, n);
            l->left -= (uint32_t)n;
        } else {
            n = HEADER_LEN - l->header_len;
            n = len < n ? len : n;
            memcpy(l->header + l->header_len, b, n);
            l->header_len += n;
            if (l->header_len == HEADER_LEN)
                frame_start(l);
        }
        b += n;
        len -= n;
    }
}

static void on_data(void *ctx, const char *bytes, size_t len)
{
    struct docker_log *l = ctx;

    l->busy++;
    demux(l, bytes, len);
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
    if (l->mode == MODE_UNKNOWN) /* raw output shorter than a header */
        emit(l, RT_STDOUT, (const char *)l->header, l->header_len);
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
