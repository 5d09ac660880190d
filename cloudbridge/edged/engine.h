/* The Docker Engine REST API v1.41 client over a unix socket, on the lws loop (libwebsockets'
 * own HTTP client: no thread, no second event loop, no new library), and the event stream.
 * Only runtime_docker*.c use it: the rest of Edged speaks struct runtime (runtime.h).
 */
#ifndef KEDGE_EDGED_ENGINE_H
#define KEDGE_EDGED_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

#include "kedge/buf.h"

struct engine;

struct engine_reply {
    int status;       /* HTTP status; 0 when there was no answer (see err) */
    int err;          /* 0, or -ECONNREFUSED/-ENOENT (engine down), -ETIMEDOUT, -ECANCELED
                       * (engine_free), -EMSGSIZE (body over the cap), -EIO */
    const char *body; /* the whole body (de-chunked), NUL-terminated; never NULL */
    size_t len;
};

/* Called exactly once per request, also when it failed or was cancelled. */
typedef void (*engine_done_fn)(void *ctx, const struct engine_reply *r);

/* socket_path: the engine's unix socket (copied). Nothing connects until the first request. */
int engine_new(struct lws_context *lws, struct lws_vhost *vhost, const char *socket_path,
               struct engine **out);
/* Before lws_context_destroy: no new timers (the /events stream is not reconnected). */
void engine_stop(struct engine *e);
/* Every request still queued or in flight completes with err -ECANCELED, then it is gone. */
void engine_free(struct engine *e);

/* One API call. method "GET" | "POST" | "DELETE"; path without the version prefix
 * ("/version"); body: JSON (sent with Content-Type application/json) or NULL.
 * timeout_ms: 0 = the default (60 s); a stop with a grace period needs more.
 * Requests beyond a small number in flight wait in FIFO order. Returns 0 (done will be called)
 * or -ENOMEM (it will not). */
int engine_request(struct engine *e, const char *method, const char *path, const char *body,
                   size_t body_len, int timeout_ms, engine_done_fn done, void *ctx);

/* A streamed GET (logs, events): a 2xx body is not collected but handed to data piece by piece
 * as it arrives (de-chunked), after open; once that head is in there is no timeout (the stream
 * lasts until the engine ends it or engine_cancel). Any other status: the body is collected and
 * done gets it as engine_request's would. done is called once at the end (err 0 with a 2xx
 * status: the engine ended the body), unless engine_cancel came first. Streams neither wait
 * behind the requests in flight nor count against their limit (a follow never ends). */
struct engine_req;
struct engine_stream_fns {
    void (*open)(void *ctx); /* a 2xx head arrived: data follows (NULL: not wanted) */
    void (*data)(void *ctx, const char *bytes, size_t len);
    engine_done_fn done;
};
/* 0 and *req (the handle for engine_cancel, valid until done), or -ENOMEM (nothing is called).
 * done may be called before it returns (a refused connection): then *req is NULL. */
int engine_stream(struct engine *e, const char *path, int timeout_ms,
                  const struct engine_stream_fns *fns, void *ctx, struct engine_req **req);
/* A stream with more than a GET: method (NULL "GET"), the path, extra request headers (a pull's
 * X-Registry-Auth; names without the colon; the values are copied) and timeout_ms for the head as
 * engine_stream's. Otherwise as engine_stream; engine_stream is this call with a bare GET. */
struct engine_header {
    const char *name, *value;
};
struct engine_call {
    const char *method, *path;
    const struct engine_header *headers;
    size_t n_headers;
    int timeout_ms;
};
int engine_stream_call(struct engine *e, const struct engine_call *call,
                       const struct engine_stream_fns *fns, void *ctx, struct engine_req **req);
/* Close a stream before its done: nothing of fns is called any more. */
void engine_cancel(struct engine *e, struct engine_req *req);
/* Backpressure for a stream: while paused the connection is not read (lws_rx_flow_control), so
 * no data comes and the engine is held up by its socket buffer. lws closes a connection it
 * does not read when the engine hangs up, with bytes perhaps still unread: done then says
 * -EPIPE (the body may be cut), never a clean end. Safe from inside data. */
void engine_pause(struct engine *e, struct engine_req *req, bool pause);

/* The engine's event stream, GET path (with its query): fn gets each event object's JSON.
 * Reconnects by itself (after 1 s, capped back-off) while the engine is down; on_up is called each
 * time the stream is (re)established, so the caller can relist what it may have missed. */
typedef void (*engine_event_fn)(void *ctx, const char *json, size_t len);
typedef void (*engine_up_fn)(void *ctx, bool up);
int engine_watch(struct engine *e, const char *path, engine_event_fn fn, engine_up_fn on_up,
                 void *ctx);

extern const struct lws_protocols engine_protocol;

#endif
