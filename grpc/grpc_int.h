/* grpc.c's insides, shared with grpc_stream.c: the connection and its streams. */
#ifndef KEDGE_GRPC_INT_H
#define KEDGE_GRPC_INT_H

#include <nghttp2/nghttp2.h>

#include "grpc.h"

#define DEFAULT_MAX_MSG (4u * 1024 * 1024)
#define DEFAULT_MAX_STREAMS 100
#define OUT_CAP (128u * 1024)
#define OUT_ROOM (32u * 1024)            /* nghttp2 is asked for more only with this much free */
#define OUT_HIGH (64u * 1024)            /* past this much unsent output, stop reading */
#define STREAM_WINDOW (1u * 1024 * 1024) /* per stream: a 4 MiB message in a few round trips */
#define CONN_WINDOW (16u * 1024 * 1024)
#define PATH_MAX_LEN 1024
/* Messages being received on one connection, together: at most this many max_msg (a request
 * past it is answered RESOURCE_EXHAUSTED), so 100 streams cannot hold 100 x 4 MiB. */
#define IN_BUDGET_MSGS 4

struct gstream {
    struct gstream *prev, *next;
    int32_t id;
    void *tag;  /* client: grpc_call's */
    char *path; /* server: :path */
    uint8_t *in;
    size_t in_len, in_want; /* received bytes (prefix included); want: 5 + the prefix's length */
    uint8_t *out;
    size_t out_len, out_off; /* the framed message being sent */
    int http_status;
    int code;       /* server: grpc-status to send after the message; client: received, -1 none */
    char *message;  /* server: grpc-message to send; client: the received one, decoded */
    bool post;      /* server: :method POST */
    bool rst_after; /* server: answered early; RST_STREAM once the answer left (on_frame_send) */
    bool grpc_ct;   /* content-type application/grpc */
    bool delivered, answered; /* server: handed to ops->request; reply submitted */
    bool cancelled;           /* client: grpc_cancel (no response) */
    bool failed;              /* client: we reset it (fail_code, fail_msg) */
    int fail_code;
    const char *fail_msg;
};

struct grpc_conn {
    nghttp2_session *s;
    bool server;
    const struct grpc_conn_ops *ops;
    void *ctx;
    size_t max_msg;
    uint32_t max_streams;
    size_t in_total; /* the in_want of every stream still receiving */
    struct gstream *streams;
    uint8_t *out;
    size_t out_len, out_off;
    bool broken;  /* nghttp2_session_mem_recv failed: read no more */
    bool dead;    /* nghttp2_session_mem_send failed: nothing more will be written */
    bool goaway;  /* the peer sent GOAWAY: no new calls */
    bool freeing; /* inside grpc_conn_free: callbacks from nghttp2 are ignored */
};

/* A stream on c's list (code -1), NULL on -ENOMEM. */
struct gstream *grpc_stream_new(struct grpc_conn *c);
/* The received message is handed over or refused: its memory and budget go back. */
void grpc_stream_drop_in(struct grpc_conn *c, struct gstream *st);
void grpc_stream_free(struct grpc_conn *c, struct gstream *st);
struct gstream *grpc_stream_of(struct grpc_conn *c, int32_t id);
/* The framed message of m (NULL: empty) in st->out. 0, -EMSGSIZE, -ENOMEM, -EINVAL. */
int grpc_stream_pack(struct grpc_conn *c, struct gstream *st, const ProtobufCMessage *m);
/* Received DATA bytes for st's one message. 0, or the gRPC code that ends the stream (*why). */
int grpc_stream_take(struct grpc_conn *c, struct gstream *st, const uint8_t *data, size_t len,
                     const char **why);

#endif
