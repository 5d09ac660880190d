/* gRPC over HTTP/2 on one connection, either end, with no I/O of its own.
 *
 * The wire is gRPC's (PROTOCOL-HTTP2 in grpc's doc/): a POST to /{package}.{Service}/{Method}
 * with content-type application/grpc and te: trailers; each message is a 5-byte prefix (a
 * compressed flag, which must be 0 here, and a big-endian length) and its protobuf bytes; the
 * answer is :status 200, the message, and trailers grpc-status / grpc-message. HTTP/2 itself is
 * nghttp2's: nothing here parses frames.
 *
 * No I/O: the owner reads the socket and hands the bytes to grpc_conn_recv, and writes what
 * grpc_conn_output gives. So the same connection runs in the bridge's lws loop
 * (cloudbridge/dmi/) and in a plain poll() loop (grpc_fd.h: tests, tools, the benchmark).
 *
 * Only unary calls: one request message, one answer message (all DMI v1beta1 has).
 *
 * Callbacks run inside grpc_conn_recv, grpc_conn_output or grpc_conn_free. From a callback the
 * owner may call grpc_reply, grpc_call and grpc_cancel on c, never grpc_conn_free (set a flag,
 * free after), and should not write the socket (grpc_conn_output is for after the call).
 */
#ifndef KEDGE_GRPC_H
#define KEDGE_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* The status codes of grpc's doc/statuscodes.md that kedge answers or meets. */
enum grpc_code {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
};

struct grpc_conn;

struct grpc_conn_ops {
    /* Server end: a unary request is complete: path "/v1beta1.DeviceManagerService/..." and
     * its one message (without the prefix). Answer with grpc_reply, now or later, once. A
     * request whose message is larger than max_msg, compressed, or not application/grpc is
     * answered here (RESOURCE_EXHAUSTED, UNIMPLEMENTED, INVALID_ARGUMENT) and never seen. */
    void (*request)(void *ctx, struct grpc_conn *c, int32_t stream, const char *path,
                    const uint8_t *msg, size_t len);
    /* Server end, optional: the peer reset a stream not answered yet (grpc_reply on it is
     * then a no-op). */
    void (*cancelled)(void *ctx, struct grpc_conn *c, int32_t stream);
    /* Client end: the call of grpc_call's tag ended: code GRPC_OK with the answer's message,
     * or an error code and the peer's grpc-message (or ours: "connection closed", ...); message
     * is never NULL. Called once per call, also from grpc_conn_free for calls still open
     * (GRPC_UNAVAILABLE). */
    void (*response)(void *ctx, struct grpc_conn *c, void *tag, int code, const char *message,
                     const uint8_t *msg, size_t len);
};

struct grpc_limits {
    size_t max_msg; /* largest message either way; 0: 4 MiB, gRPC's default. Messages
                     * arriving at once share 4 x max_msg: past it, RESOURCE_EXHAUSTED */
    uint32_t
        max_streams; /* concurrent streams the peer may open (our open calls, client); 0: 100 */
};

/* server: the accepting end (answers requests); else the calling end. ops and ctx outlive c. */
int grpc_conn_new(bool server, const struct grpc_conn_ops *ops, void *ctx,
                  const struct grpc_limits *lim, struct grpc_conn **out);
/* Ends every open call (response UNAVAILABLE "connection closed") and frees. */
void grpc_conn_free(struct grpc_conn *c);

/* Bytes read from the socket. 0, or < 0 when the peer broke HTTP/2: a GOAWAY is queued; write
 * the output, then close. */
int grpc_conn_recv(struct grpc_conn *c, const uint8_t *buf, size_t n);
/* What is waiting to be written: *buf and its length (0: nothing). Write some, then say how
 * much with grpc_conn_consumed. Output never grows without bound: it is one buffer of 128 KiB
 * filled from nghttp2 (whose own control answers are capped by its flood protection), answers
 * wait in their streams (max_streams of at most max_msg, paced by the peer's flow control), and
 * a peer that does not read stops being read (want_read false) once 64 KiB wait unwritten. */
size_t grpc_conn_output(struct grpc_conn *c, const uint8_t **buf);
void grpc_conn_consumed(struct grpc_conn *c, size_t n);
bool grpc_conn_want_read(const struct grpc_conn *c);
/* Nothing more will be read or written (GOAWAY both ways, or a protocol error flushed):
 * close the socket and free. */
bool grpc_conn_done(const struct grpc_conn *c);

/* Server end: answer stream. code GRPC_OK sends resp (NULL: an empty message; one larger than
 * max_msg is answered RESOURCE_EXHAUSTED instead); any other code sends no message, and message
 * (percent-encoded, cut at 1 KiB) as grpc-message. 0, or < 0 (-ENOENT: no such stream, reset or
 * answered already; -ENOMEM: the stream stays unanswered, try again with an error). */
int grpc_reply(struct grpc_conn *c, int32_t stream, int code, const char *message,
               const ProtobufCMessage *resp);

/* Client end: start a unary call of path with req (NULL: an empty message); response(tag)
 * later. 0 or < 0: -EBUSY (max_streams calls open), -EMSGSIZE (req past max_msg), -ENOMEM,
 * -ESHUTDOWN (GOAWAY received, or the connection failed); response is then not called. */
int grpc_call(struct grpc_conn *c, const char *path, const ProtobufCMessage *req, void *tag);
/* Client end: give up on the call of tag (RST_STREAM CANCEL); response is not called for it. */
void grpc_cancel(struct grpc_conn *c, void *tag);
/* Open calls (client) or unanswered requests (server). */
size_t grpc_conn_open_streams(const struct grpc_conn *c);

#endif
