/* The tunnel's message (KubeEdge's pkg/stream/message.go): every websocket TEXT frame is
 * uvarint(connectID) uvarint(messageType) data, the uvarints as Go's encoding/binary writes
 * them (7 bits a byte, low first, at most 10 bytes). Pure encode/decode, no I/O.
 */
#ifndef KEDGE_STREAM_FRAME_H
#define KEDGE_STREAM_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"

/* pkg/stream/constants.go, in iota order */
enum stream_type {
    STREAM_LOGS_CONNECT = 0,
    STREAM_EXEC_CONNECT = 1,
    STREAM_METRIC_CONNECT = 2,
    STREAM_DATA = 3,
    STREAM_REMOVE_CONNECT = 4,
    STREAM_CLOSE_CONNECT = 5,
    STREAM_ATTACH_CONNECT = 6,
};
#define STREAM_N_TYPES 7

/* The longest head: two 10-byte uvarints. */
#define STREAM_FRAME_HEAD_MAX 20

struct stream_frame {
    uint64_t id;      /* connectID: cloudcore's per-request message id */
    uint64_t type;    /* enum stream_type, or another value a newer peer sent */
    const char *data; /* points into the decoded buffer */
    size_t len;
};

/* Decode b[0..n). 0, or KEDGE_EPARSE: a uvarint cut short or over 64 bits (Go's ReadUvarint
 * fails on both, and cloudcore then drops the whole tunnel). */
int stream_frame_decode(const char *b, size_t n, struct stream_frame *f);
/* Write the head (the two uvarints) into out[STREAM_FRAME_HEAD_MAX]; returns its length. */
size_t stream_frame_head(unsigned char *out, uint64_t id, uint64_t type);
/* Append a whole frame to b: 0 or -ENOMEM. */
int stream_frame_encode(struct kedge_buf *b, uint64_t id, uint64_t type, const char *data,
                        size_t len);
/* "LOGS_CONNECT", ... or "UNKNOWN" (pkg/stream's MessageType.String, with CLOSE_CONNECT named). */
const char *stream_type_name(uint64_t type);

#endif
