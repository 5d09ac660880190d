/* The streams of a gRPC connection (grpc_int.h): the list, the message being sent, and the
 * one being received, reassembled from DATA frames within max_msg and the connection's budget.
 */
#include <errno.h>
#include <string.h>

#include "grpc_int.h"
#include "grpc_wire.h"
#include "kedge/alloc.h"

struct gstream *grpc_stream_new(struct grpc_conn *c)
{
    struct gstream *st = kedge_calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    st->code = -1;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    return st;
}

/* The received message is handed over or refused: its memory and budget go back. */
void grpc_stream_drop_in(struct grpc_conn *c, struct gstream *st)
{
    c->in_total -= st->in_want;
    kedge_free(st->in);
    st->in = NULL;
    st->in_len = st->in_want = 0;
}

void grpc_stream_free(struct grpc_conn *c, struct gstream *st)
{
    grpc_stream_drop_in(c, st);
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    kedge_free_all(st->path, st->out, st->message, st);
}

struct gstream *grpc_stream_of(struct grpc_conn *c, int32_t id)
{
    struct gstream *st;

    for (st = c->streams; st; st = st->next)
        if (st->id == id)
            return st;
    return NULL;
}

/* The framed message of m (NULL: empty) in st->out. 0, -EMSGSIZE, -ENOMEM. */
int grpc_stream_pack(struct grpc_conn *c, struct gstream *st, const ProtobufCMessage *m)
{
    size_t len = m ? protobuf_c_message_get_packed_size(m) : 0;

    if (len > c->max_msg)
        return -EMSGSIZE;
    st->out = kedge_malloc(GRPC_PREFIX_LEN + len);
    if (!st->out)
        return -ENOMEM;
    grpc_wire_prefix(st->out, (uint32_t)len);
    if (m && protobuf_c_message_pack(m, st->out + GRPC_PREFIX_LEN) != len) {
        kedge_free(st->out);
        st->out = NULL;
        return -EINVAL;
    }
    st->out_len = GRPC_PREFIX_LEN + len;
    st->out_off = 0;
    return 0;
}

/* A received message's bytes for st. 0, or the gRPC code that ends the stream (with *why). */
int grpc_stream_take(struct grpc_conn *c, struct gstream *st, const uint8_t *data, size_t len,
                     const char **why)
{
    while (len > 0) {
        size_t want = st->in_want ? st->in_want : GRPC_PREFIX_LEN;
        size_t n = want - st->in_len;

        if (st->in_want && st->in_len == st->in_want) {
            *why = "grpc: more than one message on a unary call";
            return GRPC_INTERNAL;
        }
        if (!st->in) {
            st->in = kedge_malloc(GRPC_PREFIX_LEN);
            if (!st->in) {
                *why = "out of memory";
                return GRPC_RESOURCE_EXHAUSTED;
            }
        }
        if (n > len)
            n = len;
        memcpy(st->in + st->in_len, data, n);
        st->in_len += n;
        data += n;
        len -= n;
        if (!st->in_want && st->in_len == GRPC_PREFIX_LEN) {
            uint32_t mlen = (uint32_t)st->in[1] << 24 | (uint32_t)st->in[2] << 16 |
                            (uint32_t)st->in[3] << 8 | st->in[4];
            uint8_t *grown;

            if (st->in[0] != 0) {
                *why = "grpc: compressed messages are not supported";
                return c->server ? GRPC_UNIMPLEMENTED : GRPC_INTERNAL;
            }
            if (mlen > c->max_msg) {
                *why = "grpc: received message larger than max";
                return GRPC_RESOURCE_EXHAUSTED;
            }
            if (c->in_total + GRPC_PREFIX_LEN + mlen > IN_BUDGET_MSGS * c->max_msg) {
                *why = "grpc: too many large messages arriving at once";
                return GRPC_RESOURCE_EXHAUSTED;
            }
            grown = kedge_realloc(st->in, GRPC_PREFIX_LEN + (size_t)mlen);
            if (!grown) {
                *why = "out of memory";
                return GRPC_RESOURCE_EXHAUSTED;
            }
            st->in = grown;
            st->in_want = GRPC_PREFIX_LEN + (size_t)mlen;
            c->in_total += st->in_want;
        }
    }
    return 0;
}
