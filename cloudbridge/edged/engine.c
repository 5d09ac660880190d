/* engine.c: the Docker Engine REST API v1.41 over a unix socket, on the bridge's lws loop.
 *
 * Why libwebsockets' HTTP client and not libcurl's multi interface: the bridge already runs one
 * lws loop (edgehub, relay), lws 4.1 connects to a unix socket ("+/path" address) and de-chunks
 * replies, so each API call is one more client connection on the same loop with no thread, no
 * second event loop to integrate and no new library in the footprint. Measured against podman
 * 4.3 and the verified subset of docs/containers.md §5.2.
 *
 * One connection per call (Connection: close, as the engines expect from simple clients), at
 * most MAX_INFLIGHT at a time, the rest in FIFO order: a pod start is a handful of calls and the
 * engine serialises much of its work anyway. Every request ends in exactly one done() call.
 * Streams (logs, the event stream) are long-lived requests whose body goes to the caller as it
 * arrives; they connect at once, outside that limit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "engine_hijack.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"

#define API_PREFIX "/v1.41"
#define MAX_INFLIGHT 8
#define DEFAULT_TIMEOUT_MS 60000
#define MAX_BODY_BYTES (16u << 20) /* an inspect is ~10 KB; a list of many containers more */
#define MAX_EVENT_LINE (1u << 20)
#define WATCH_BACKOFF_MIN_MS 1000
#define WATCH_BACKOFF_MAX_MS 30000
#define WRITE_CHUNK 4096

struct engine_req {
    struct engine_req *next; /* queue, then the in-flight list */
    struct engine *e;
    struct lws *wsi;
    char *method, *path, *body;
    size_t body_len, body_sent;
    char *headers; /* extra request headers: "name:\0value\0" pairs, n_headers of them */
    size_t n_headers;
    int timeout_ms;
    uint64_t deadline_ms;
    engine_done_fn done;
    void *ctx;
    struct kedge_buf resp;
    int status, err;
    const struct engine_stream_fns *fns; /* a stream (engine_stream); NULL: collect the body */
    bool finished, connecting, closed, too_big;
    bool streaming; /* a stream whose 2xx head is in: the body goes to fns->data */
    bool cancelled; /* engine_cancel: nothing more is called; the connection is being closed */
    bool in_cb;     /* inside fns->open/data: a cancel there closes by the callback's return */
    bool paused;    /* engine_pause: the loop does not read the connection */
};

struct engine {
    struct lws_context *lws;
    struct lws_vhost *vhost;
    bool stopping; /* engine_stop: the loop is going away, no new timers */
    char *address; /* "+/path/to/socket" */
    struct engine_req *queue, *queue_tail, *inflight;
    int n_inflight;
    bool freeing;
    /* the /events watch */
    char *watch_path;
    engine_event_fn on_event;
    engine_up_fn on_up;
    void *watch_ctx;
    struct engine_req *watch_req;
    struct kedge_buf watch_line; /* the partial event line */
    bool watch_up;
    int backoff_ms;
    lws_sorted_usec_list_t sul_watch;
};

static void pump(struct engine *e);

/* ---- requests ------------------------------------------------------------------------------- */

static void ereq_free(struct engine_req *r)
{
    if (!r)
        return;
    kedge_free(r->method);
    kedge_free(r->path);
    kedge_free(r->body);
    kedge_free(r->headers);
    kedge_buf_cleanup(&r->resp);
    kedge_free(r);
}

static void unlink_inflight(struct engine *e, struct engine_req *r)
{
    struct engine_req **p;

    for (p = &e->inflight; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            if (!r->fns) /* streams do not count against MAX_INFLIGHT */
                e->n_inflight--;
            return;
        }
}

/* Deliver the outcome once. err 0 with a status: an answer; otherwise no answer. */
static void finish(struct engine_req *r, int err)
{
    struct engine_reply rep;
    static const char empty[] = "";

    if (r->finished)
        return;
    r->finished = true;
    if (r->too_big)
        err = -EMSGSIZE;
    if (r->resp.data && kedge_buf_putc(&r->resp, '\0') == 0) /* NUL-terminate for the reader */
        r->resp.len--;
    rep.status = err ? 0 : r->status;
    rep.err = err;
    rep.body = r->resp.data ? r->resp.data : empty;
    rep.len = r->resp.len;
    if (r->done)
        r->done(r->ctx, &rep);
}

static int ereq_new(struct engine *e, const char *method, const char *path, const char *body,
                    size_t body_len, int timeout_ms, struct engine_req **out)
{
    struct engine_req *r = kedge_calloc(1, sizeof(*r));
    struct kedge_buf p = KEDGE_BUF_INIT;

    if (!r)
        return -ENOMEM;
    r->e = e;
    r->method = kedge_strdup(method);
    if (kedge_buf_puts(&p, API_PREFIX) < 0 || kedge_buf_puts(&p, path) < 0)
        goto fail;
    r->path = kedge_buf_take(&p, NULL);
    if (body) {
        r->body = kedge_malloc(body_len ? body_len : 1);
        if (r->body)
            memcpy(r->body, body, body_len);
        r->body_len = body_len;
    }
    if (!r->method || !r->path || (body && !r->body))
        goto fail;
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
    *out = r;
    return 0;
fail:
    kedge_buf_cleanup(&p);
    ereq_free(r);
    return -ENOMEM;
}

/* Open the connection for r. On failure r is finished (and the caller frees it). */
static int ereq_connect(struct engine *e, struct engine_req *r)
{
    struct lws_client_connect_info i;

    memset(&i, 0, sizeof(i));
    i.context = e->lws;
    i.vhost = e->vhost;
    i.address = e->address;
    i.port = 0;
    i.path = r->path;
    i.host = "localhost";
    i.origin = "localhost";
    i.method = r->method;
    i.protocol = NULL;
    i.local_protocol_name = engine_protocol.name;
    i.userdata = r;
    i.pwsi = &r->wsi;
    r->deadline_ms = kedge_now_ms() + (uint64_t)r->timeout_ms;
    r->connecting = true;
    if (!lws_client_connect_via_info(&i)) {
        r->connecting = false;
        r->wsi = NULL;
        finish(r, r->err ? r->err : -ECONNREFUSED);
        return -ECONNREFUSED;
    }
    r->connecting = false;
    return r->closed ? -ECONNREFUSED : 0; /* closed inside the call after all */
}

/* Start queued requests while there is room. */
static void pump(struct engine *e)
{
    while (e->queue && e->n_inflight < MAX_INFLIGHT && !e->freeing) {
        struct engine_req *r = e->queue;

        e->queue = r->next;
        if (!e->queue)
            e->queue_tail = NULL;
        r->next = e->inflight;
        e->inflight = r;
        e->n_inflight++;
        if (ereq_connect(e, r) < 0) {
            unlink_inflight(e, r);
            ereq_free(r);
        }
    }
}

int engine_request(struct engine *e, const char *method, const char *path, const char *body,
                   size_t body_len, int timeout_ms, engine_done_fn done, void *ctx)
{
    struct engine_req *r;
    int rc = ereq_new(e, method, path, body, body_len, timeout_ms, &r);

    if (rc < 0)
        return rc;
    r->done = done;
    r->ctx = ctx;
    if (e->queue_tail)
        e->queue_tail->next = r;
    else
        e->queue = r;
    e->queue_tail = r;
    pump(e);
    return 0;
}

/* Connect stream r at once: it is not counted against MAX_INFLIGHT, or a few follows would
 * hold up every request. 0, or the connection failed (r is finished and gone). */
static int connect_now(struct engine *e, struct engine_req *r)
{
    r->next = e->inflight;
    e->inflight = r;
    if (ereq_connect(e, r) < 0) {
        unlink_inflight(e, r);
        ereq_free(r);
        return -ECONNREFUSED;
    }
    return 0;
}

/* Copy the extra headers into r as "name:" NUL value NUL pairs (lws wants the colon). */
static int copy_headers(struct engine_req *r, const struct engine_header *h, size_t n)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    size_t i;

    for (i = 0; i < n; i++)
        if (kedge_buf_printf(&b, "%s:", h[i].name) < 0 || kedge_buf_putc(&b, '\0') < 0 ||
            kedge_buf_puts(&b, h[i].value) < 0 || kedge_buf_putc(&b, '\0') < 0) {
            kedge_buf_cleanup(&b);
            return -ENOMEM;
        }
    r->headers = kedge_buf_take(&b, NULL);
    r->n_headers = n;
    return 0;
}

int engine_stream(struct engine *e, const char *path, int timeout_ms,
                  const struct engine_stream_fns *fns, void *ctx, struct engine_req **req)
{
    struct engine_call call = {"GET", path, NULL, 0, timeout_ms};

    return engine_stream_call(e, &call, fns, ctx, req);
}

int engine_stream_call(struct engine *e, const struct engine_call *call,
                       const struct engine_stream_fns *fns, void *ctx, struct engine_req **req)
{
    struct engine_req *r;
    int rc;

    *req = NULL;
    if (e->freeing)
        return -ECANCELED;
    rc =
        ereq_new(e, call->method ? call->method : "GET", call->path, NULL, 0, call->timeout_ms, &r);
    if (rc == 0 && call->n_headers && copy_headers(r, call->headers, call->n_headers) < 0) {
        ereq_free(r);
        rc = -ENOMEM;
    }
    if (rc < 0)
        return rc;
    r->fns = fns;
    r->done = fns->done;
    r->ctx = ctx;
    if (connect_now(e, r) == 0)
        *req = r;
    return 0;
}

void engine_cancel(struct engine *e, struct engine_req *r)
{
    (void)e;
    if (!r || r->finished || r->cancelled)
        return;
    r->cancelled = true;
    r->done = NULL;
    if (r->wsi && !r->in_cb) /* in a callback its return value closes it */
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void engine_pause(struct engine *e, struct engine_req *r, bool pause)
{
    (void)e;
    if (!r || r->finished || r->cancelled || r->paused == pause)
        return;
    r->paused = pause;
    if (r->wsi)
        (void)lws_rx_flow_control(r->wsi, pause ? 0 : 1);
}

/* ---- the event stream -----------------------------------------------------------------------
 */

static void watch_connect(lws_sorted_usec_list_t *sul);

static void watch_schedule(struct engine *e)
{
    if (e->freeing || e->stopping)
        return;
    lws_sul_schedule(e->lws, 0, &e->sul_watch, watch_connect, (lws_usec_t)e->backoff_ms * 1000);
    e->backoff_ms =
        e->backoff_ms * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS : e->backoff_ms * 2;
}

/* Hand over every complete line of the stream; keep the partial tail. */
static void watch_data(void *ctx, const char *bytes, size_t len)
{
    struct engine *e = ctx;
    struct kedge_buf *b = &e->watch_line;
    size_t start = 0, i;

    if (kedge_buf_append(b, bytes, len) < 0) {
        kedge_log(KEDGE_LOG_WARN, "engine: out of memory for an event line; dropped");
        b->len = 0;
        return;
    }
    for (i = 0; i < b->len; i++) {
        if (b->data[i] != '\n')
            continue;
        if (i > start)
            e->on_event(e->watch_ctx, b->data + start, i - start);
        start = i + 1;
    }
    if (start) {
        memmove(b->data, b->data + start, b->len - start);
        b->len -= start;
    }
    if (b->len > MAX_EVENT_LINE) {
        kedge_log(KEDGE_LOG_WARN, "engine: an event line over %u bytes; dropped", MAX_EVENT_LINE);
        b->len = 0;
    }
}

static void watch_open(void *ctx)
{
    struct engine *e = ctx;

    e->backoff_ms = WATCH_BACKOFF_MIN_MS;
    e->watch_up = true;
    e->on_up(e->watch_ctx, true);
}

static void watch_ended(void *ctx, const struct engine_reply *rep)
{
    struct engine *e = ctx;

    e->watch_req = NULL;
    e->watch_line.len = 0;
    if (e->watch_up) {
        e->watch_up = false;
        e->on_up(e->watch_ctx, false);
    }
    if (rep->err != -ECANCELED)
        kedge_log(KEDGE_LOG_WARN, "engine: event stream ended (%s); reconnecting",
                  rep->err ? strerror(-rep->err) : "closed by the engine");
    watch_schedule(e);
}

static const struct engine_stream_fns watch_fns = {watch_open, watch_data, watch_ended};

static void watch_connect(lws_sorted_usec_list_t *sul)
{
    struct engine *e = lws_container_of(sul, struct engine, sul_watch);
    struct engine_req *r = NULL;

    if (e->watch_req || e->freeing)
        return;
    /* a refused connection ends in watch_ended, which schedules the next try */
    if (engine_stream(e, e->watch_path, 0, &watch_fns, e, &r) < 0)
        watch_schedule(e);
    else
        e->watch_req = r;
}

int engine_watch(struct engine *e, const char *path, engine_event_fn fn, engine_up_fn on_up,
                 void *ctx)
{
    kedge_free(e->watch_path);
    e->watch_path = kedge_strdup(path);
    if (!e->watch_path)
        return -ENOMEM;
    e->on_event = fn;
    e->on_up = on_up;
    e->watch_ctx = ctx;
    e->backoff_ms = WATCH_BACKOFF_MIN_MS;
    watch_connect(&e->sul_watch);
    return 0;
}

/* ---- the lws protocol -------------------------------------------------------------------------
 */

static int append_body_headers(struct engine_req *r, struct lws *wsi, void *in, size_t len)
{
    unsigned char **p = (unsigned char **)in, *end = (*p) + len;
    const char *h = r->headers;
    char cl[24];
    size_t i;
    int n;

    for (i = 0; i < r->n_headers; i++) {
        const char *v = h + strlen(h) + 1;
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)h, (const unsigned char *)v,
                                        (int)strlen(v), p, end))
            return -1;
        h = v + strlen(v) + 1;
    }
    if (!r->body)
        return 0;
    n = snprintf(cl, sizeof(cl), "%zu", r->body_len);
    if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                     (const unsigned char *)"application/json", 16, p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, (const unsigned char *)cl,
                                     n, p, end))
        return -1;
    if (r->body_len) {
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
    }
    return 0;
}

static int write_body(struct engine_req *r, struct lws *wsi)
{
    unsigned char buf[LWS_PRE + WRITE_CHUNK];
    size_t n = r->body_len - r->body_sent;
    bool last;

    if (n > WRITE_CHUNK)
        n = WRITE_CHUNK;
    last = r->body_sent + n == r->body_len;
    memcpy(buf + LWS_PRE, r->body + r->body_sent, n);
    if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
        return -1;
    r->body_sent += n;
    if (last)
        lws_client_http_body_pending(wsi, 0);
    else
        lws_callback_on_writable(wsi);
    return 0;
}

static int on_data(struct engine_req *r, const void *in, size_t len)
{
    if (r->streaming) {
        r->in_cb = true;
        r->fns->data(r->ctx, in, len);
        r->in_cb = false;
        return r->cancelled ? -1 : 0;
    }
    if (r->resp.len + len > MAX_BODY_BYTES) {
        r->too_big = true;
        return -1;
    }
    if (kedge_buf_append(&r->resp, in, len) < 0) {
        r->err = -ENOMEM;
        return -1;
    }
    return 0;
}

/* The connection is gone: deliver (if not yet) and free. */
static void closed(struct engine_req *r, int err)
{
    struct engine *e = r->e;

    if (!r->finished && !err && r->deadline_ms && !r->streaming && kedge_now_ms() >= r->deadline_ms)
        err = -ETIMEDOUT;
    if (!err && !r->err && r->streaming && r->paused) /* lws closes what it does not read */
        err = -EPIPE;                                 /* on a hang-up: the tail may be lost */
    if (!err && !r->err && r->streaming) /* a stream's body may end with the connection */
        finish(r, r->e->stopping ? -ECANCELED : 0); /* (not when the loop is going away) */
    finish(r, err ? err : (r->err ? r->err : -EIO));
    r->closed = true;
    if (r->connecting)
        return; /* lws_client_connect_via_info is still on the stack: ereq_connect frees */
    unlink_inflight(e, r);
    ereq_free(r);
    pump(e);
}

static int engine_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    struct engine_req *r = user;

    if (engine_hijack_reason(reason)) /* the raw connections of exec and attach */
        return engine_hijack_callback(wsi, reason);
    if (!r)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        kedge_log(KEDGE_LOG_DEBUG, "engine: %s %s: %s", r->method, r->path,
                  in ? (const char *)in : "connection failed");
        r->err = -ECONNREFUSED;
        lws_set_wsi_user(wsi, NULL);
        closed(r, -ECONNREFUSED);
        return 0;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        return append_body_headers(r, wsi, in, len);
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
        if (r->body && r->body_sent < r->body_len)
            return write_body(r, wsi);
        return 0;
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        r->status = (int)lws_http_client_http_response(wsi);
        if (r->fns && r->status >= 200 && r->status < 300) {
            r->streaming = true;
            lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
            r->in_cb = true;
            if (r->fns->open)
                r->fns->open(r->ctx);
            r->in_cb = false;
            return r->cancelled ? -1 : 0;
        } else {
            int s = (int)((r->deadline_ms - kedge_now_ms()) / 1000) + 1;
            lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, s > 0 ? s : 1);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[LWS_PRE + 16384];
        char *p = buf + LWS_PRE;
        int n = (int)sizeof(buf) - LWS_PRE;
        return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        return on_data(r, in, len);
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        finish(r, 0);
        return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        lws_set_wsi_user(wsi, NULL);
        closed(r, 0);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols engine_protocol = {
    ENGINE_PROTOCOL_NAME, engine_callback, 0, 0, 0, NULL, 0};

/* ---- lifetime ---------------------------------------------------------------------------------
 */

int engine_new(struct lws_context *lws, struct lws_vhost *vhost, const char *socket_path,
               struct engine **out)
{
    struct engine *e = kedge_calloc(1, sizeof(*e));
    struct kedge_buf a = KEDGE_BUF_INIT;

    *out = NULL;
    if (!e || kedge_buf_printf(&a, "+%s", socket_path) < 0) {
        kedge_free(e);
        return -ENOMEM;
    }
    e->lws = lws;
    e->vhost = vhost;
    e->address = kedge_buf_take(&a, NULL);
    *out = e;
    return 0;
}

void engine_stop(struct engine *e)
{
    if (!e || e->stopping)
        return;
    e->stopping = true;
    lws_sul_cancel(&e->sul_watch);
}

void engine_free(struct engine *e)
{
    struct engine_req *r;

    if (!e)
        return;
    e->freeing = true;
    if (!e->stopping) /* after lws_context_destroy the timer list is gone with the context */
        lws_sul_cancel(&e->sul_watch);
    while ((r = e->queue)) {
        e->queue = r->next;
        finish(r, -ECANCELED);
        ereq_free(r);
    }
    /* in flight: the connections belong to the lws context; detach them */
    while ((r = e->inflight)) {
        e->inflight = r->next;
        if (r->wsi)
            lws_set_wsi_user(r->wsi, NULL);
        finish(r, -ECANCELED);
        ereq_free(r);
    }
    kedge_buf_cleanup(&e->watch_line);
    kedge_free(e->watch_path);
    kedge_free(e->address);
    kedge_free(e);
}
