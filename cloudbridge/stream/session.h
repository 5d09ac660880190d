/* The connections multiplexed on the tunnel (edgecore's TunnelSession, edge/pkg/edgestream):
 * a table by connectID, and a handler per *_CONNECT type that serves one kubelet request.
 *
 * A handler's life: open (the *_CONNECT and its parsed request) -> data (DATA from the cloud:
 * stdin of an exec) -> it answers with stream_conn_send and ends with stream_conn_end
 * (REMOVE_CONNECT to the cloud). The cloud may end it first (its REMOVE_CONNECT: the API
 * server's client went away), and a tunnel that drops ends them all: then remove is called,
 * where the handler cancels its runtime work, and it must not send any more. free is called
 * once for every opened connection, from the loop and never from inside one of the handler's
 * own calls, so a handler may end itself anywhere and keep using its state until it returns.
 *
 * Backpressure: the tunnel has one outbound queue. stream_conn_over says it is above its
 * high-water mark: the handler pauses its source (logs_pause, session_pause) and gets resume
 * once the queue drained below half of it. One queue for all connections is enough here: it
 * is small (the mark), so what one busy connection puts ahead of another is a fraction of a
 * second of the link.
 *
 * No lws here: the session sends through struct session_out, so it is tested on its own.
 */
#ifndef KEDGE_STREAM_SESSION_H
#define KEDGE_STREAM_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "request.h"

struct stream_conn;
struct stream_session;

struct stream_handler_ops {
    /* A *_CONNECT for c: start serving req (it lives only during the call). Returns 0 with
     * *state set (handed to every other op), or a negative code: nothing was started, the
     * session logs it and ends the connection. The handler may send and even end c here. */
    int (*open)(void *hctx, struct stream_conn *c, const struct stream_request *req, void **state);
    /* DATA from the cloud for this connection (may be NULL: ignored). */
    void (*data)(void *state, const char *b, size_t n);
    /* The cloud or the tunnel ended the connection: cancel the work, send nothing more. */
    void (*remove)(void *state);
    /* The outbound queue drained after stream_conn_over said true (may be NULL). */
    void (*resume)(void *state);
    /* The end: release state (once, after remove or the handler's own stream_conn_end). */
    void (*free)(void *state);
};

/* What the session needs of the tunnel. */
struct session_out {
    /* Queue one frame: 0, -ENOMEM, or -ENOTCONN (no tunnel: the frame is dropped). */
    int (*send)(void *ctx, uint64_t id, uint64_t type, const char *data, size_t len);
    /* Bytes queued and not yet written. */
    size_t (*queued)(void *ctx);
    /* Call stream_session_reap from the loop soon (ended connections wait there). */
    void (*wake)(void *ctx);
    void *ctx;
    size_t high_water; /* bytes queued above which stream_conn_over is true */
};

int stream_session_new(const struct session_out *out, struct stream_session **s);
/* Ends every connection (remove, then free) and frees the table. */
void stream_session_free(struct stream_session *s);
/* Who serves a *_CONNECT type (LOGS, EXEC, ATTACH, METRIC); a later call replaces it. A type
 * without a handler is refused with a log line and REMOVE_CONNECT. 0 or -EINVAL. */
int stream_session_register(struct stream_session *s, uint64_t type,
                            const struct stream_handler_ops *ops, void *hctx);
/* One frame from the cloud (CLOSE_CONNECT is the tunnel's, not the session's: not here). */
void stream_session_input(struct stream_session *s, const struct stream_frame *f);
/* The tunnel went down: every connection ends (remove, then free at the next reap). */
void stream_session_reset(struct stream_session *s);
/* The outbound queue drained below the low mark: resume whoever was told "over". */
void stream_session_drained(struct stream_session *s);
/* Free the connections that ended (from the loop: session_out's wake asked for it). */
void stream_session_reap(struct stream_session *s);
/* Open connections (ended ones waiting for reap not counted). */
size_t stream_session_count(const struct stream_session *s);

/* ---- for handlers ------------------------------------------------------------------------ */

/* DATA to the cloud: 0, -ENOMEM, -ENOTCONN (no tunnel), or -EPIPE (already ended). */
int stream_conn_send(struct stream_conn *c, const char *b, size_t n);
/* The outbound queue is above its high-water mark: pause the source; resume comes. */
bool stream_conn_over(struct stream_conn *c);
/* REMOVE_CONNECT to the cloud; free follows from the loop. A second call does nothing. */
void stream_conn_end(struct stream_conn *c);
/* The connectID (for log lines). */
uint64_t stream_conn_id(const struct stream_conn *c);

#endif
