/* A hijacked Docker Engine API connection (engine_hijack.c): the request whose answer turns the
 * HTTP connection into the process's raw stdin/stdout (POST /exec/{id}/start, POST
 * /containers/{id}/attach), both ways at once, on the lws loop. engine.c's lws HTTP client
 * cannot give that (its connection is request, then answer); this one is a unix socket of its
 * own, adopted into lws as a raw descriptor whose events engine.c's protocol hands over here.
 * Only runtime_docker*.c use it.
 */
#ifndef KEDGE_EDGED_ENGINE_HIJACK_H
#define KEDGE_EDGED_ENGINE_HIJACK_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

#include "engine.h"

/* The lws protocol (engine.c's engine_protocol) the raw descriptors are adopted under: named
 * here so this file need not reach back into engine.c, which calls in here for their events. */
#define ENGINE_PROTOCOL_NAME "kedge-engine"

struct engine_hijack;

struct engine_hijack_fns {
    /* The engine took the connection over (101 UPGRADED; 200 from older engines): the raw
     * stream follows through data, and writes reach the process. */
    void (*open)(void *ctx);
    void (*data)(void *ctx, const char *bytes, size_t len);
    /* Once, last: after open, err 0 when the engine closed the stream (the process is done),
     * else err; without open, the engine's refusal (status and body, as engine_request's) or
     * err with status 0. */
    engine_done_fn done;
};

/* Connect to the engine's socket at socket_path and send method path (without the version
 * prefix) with the JSON body, asking for the upgrade. 0 and *out (valid until done, or until
 * engine_hijack_cancel); or a negative code (-ENOENT, -ECONNREFUSED: no engine; -ENOMEM), and
 * nothing is called. */
int engine_hijack(struct lws_vhost *vhost, const char *socket_path, const char *method,
                  const char *path, const char *body, const struct engine_hijack_fns *fns,
                  void *ctx, struct engine_hijack **out);
/* Bytes for the process, written in order once the stream is open. 0, -ENOMEM, or -EPIPE (the
 * write side is closed or broken). */
int engine_hijack_write(struct engine_hijack *h, const char *bytes, size_t len);
/* EOF for the process (shutdown(SHUT_WR)) once what was written is out. */
void engine_hijack_close_write(struct engine_hijack *h);
/* Stop or resume reading the stream (lws_rx_flow_control): backpressure. */
void engine_hijack_pause(struct engine_hijack *h, bool pause);
/* Close: nothing is called any more. Safe from inside the fns. */
void engine_hijack_cancel(struct engine_hijack *h);

/* engine.c's protocol hands its raw-descriptor events here (the adopted connections carry
 * their struct engine_hijack as the wsi's opaque user data). */
int engine_hijack_callback(struct lws *wsi, enum lws_callback_reasons reason);
bool engine_hijack_reason(enum lws_callback_reasons reason);

/* An HTTP/1.1 response head at b[0..n): its length with the blank line (0: not complete yet,
 * -1: not HTTP), the status, Content-Length (-1 none) and whether the body is chunked. */
long engine_http_head(const char *b, size_t n, int *status, long *content_length, bool *chunked);

#endif
