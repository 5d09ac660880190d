/* One gRPC connection, either end, on an nghttp2 session with no I/O (grpc.h).
 *
 * nghttp2 parses and writes every frame, answers PING and SETTINGS, and keeps flow control
 * (window updates are automatic: a message is only ever buffered whole, up to max_msg). This
 * file keeps, per stream, the one message being received and the one being sent, and turns
 * stream ends into grpc.h's callbacks. Header validation is ours, not nghttp2's HTTP checks:
 * grpc-go clients dialling a socket path send an :authority such as "etc/kubeedge/dmi.sock",
 * which nghttp2 would reset as malformed, and grpc-go's server takes it.
 *
 * Output goes through one buffer of OUT_CAP bytes filled from nghttp2_session_mem_send; what
 * nghttp2 itself queues is capped by its flood protection (at most 1000 control answers), and
 * answers wait in their streams (max_streams of at most max_msg each).
 */
#include "grpc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "grpc_int.h"
#include "grpc_wire.h"
#include "kedge/alloc.h"

/* ---- allocation through kedge's allocator (tests count and fail it) ---------------------- */

static void *mem_malloc(size_t size, void *ud)
{
    (void)ud;
    return kedge_malloc(size);
}

static void mem_free(void *ptr, void *ud)
{
    (void)ud;
    kedge_free(ptr);
}

static void *mem_calloc(size_t n, size_t size, void *ud)
{
    (void)ud;
    return kedge_calloc(n, size);
}

static void *mem_realloc(void *ptr, size_t size, void *ud)
{
    (void)ud;
    return kedge_realloc(ptr, size);
}

/* ---- answers (server end) ----------------------------------------------------------------- */

#define NV(n, v, vl)                                                                               \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE                  \
    }

/* grpc-status and grpc-message into nv[0..2); returns how many. The buffers are the caller's. */
static size_t status_nv(nghttp2_nv *nv, int code, const char *message, char code_s[12],
                        char msg_s[3 * GRPC_MESSAGE_MAX + 1])
{
    size_t n = 0, ml;

    (void)snprintf(code_s, 12, "%d", code);
    nv[n++] = (nghttp2_nv)NV("grpc-status", code_s, strlen(code_s));
    if (message && *message) {
        ml = grpc_wire_encode_message(message, msg_s);
        nv[n++] = (nghttp2_nv)NV("grpc-message", msg_s, ml);
    }
    return n;
}

/* A response of headers and trailers in one HEADERS frame (gRPC's Trailers-Only), and the end of
 * a request still arriving (RST_STREAM NO_ERROR, as grpc-go). */
static int answer_only(struct grpc_conn *c, struct gstream *st, int http, int code,
                       const char *message)
{
    char http_s[12], code_s[12], msg_s[3 * GRPC_MESSAGE_MAX + 1];
    nghttp2_nv nv[4];
    size_t n = 0;
    int rv;

    (void)snprintf(http_s, sizeof(http_s), "%d", http);
    nv[n++] = (nghttp2_nv)NV(":status", http_s, strlen(http_s));
    nv[n++] = (nghttp2_nv)NV("content-type", "application/grpc", 16);
    n += status_nv(nv + n, code, message, code_s, msg_s);
    st->answered = true;
    grpc_stream_drop_in(c, st);
    rv = nghttp2_submit_response(c->s, st->id, nv, n, NULL);
    st->rst_after = rv == 0;
    return rv == 0 ? 0 : (rv == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EIO);
}

static ssize_t read_out(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct grpc_conn *c = ud;
    struct gstream *st = src->ptr;
    size_t n = st->out_len - st->out_off;

    if (n > length)
        n = length;
    memcpy(buf, st->out + st->out_off, n);
    st->out_off += n;
    if (st->out_off < st->out_len)
        return (ssize_t)n;
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    kedge_free(st->out);
    st->out = NULL;
    st->out_len = st->out_off = 0;
    if (c->server) {
        char code_s[12], msg_s[3 * GRPC_MESSAGE_MAX + 1];
        nghttp2_nv nv[2];
        size_t nn = status_nv(nv, st->code, st->message, code_s, msg_s);

        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(s, id, nv, nn) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
    }
    return (ssize_t)n;
}

int grpc_reply(struct grpc_conn *c, int32_t stream, int code, const char *message,
               const ProtobufCMessage *resp)
{
    struct gstream *st = c->server ? nghttp2_session_get_stream_user_data(c->s, stream) : NULL;
    nghttp2_nv nv[2] = {NV(":status", "200", 3), NV("content-type", "application/grpc", 16)};
    nghttp2_data_provider prd;
    int rv;

    if (!st || !st->delivered || st->answered || c->broken || c->dead)
        return -ENOENT;
    if (code != GRPC_OK)
        return answer_only(c, st, 200, code, message);
    rv = grpc_stream_pack(c, st, resp);
    if (rv == -EMSGSIZE)
        return answer_only(c, st, 200, GRPC_RESOURCE_EXHAUSTED,
                           "grpc: trying to send message larger than max");
    if (rv < 0)
        return rv;
    st->code = GRPC_OK;
    prd.source.ptr = st;
    prd.read_callback = read_out;
    rv = nghttp2_submit_response(c->s, stream, nv, 2, &prd);
    if (rv != 0) {
        kedge_free(st->out);
        st->out = NULL;
        return rv == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EIO;
    }
    st->answered = true;
    return 0;
}

/* ---- receiving ---------------------------------------------------------------------------- */

static void client_fail(struct grpc_conn *c, struct gstream *st, int code, const char *why)
{
    st->failed = true;
    st->fail_code = code;
    st->fail_msg = why;
    (void)nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    struct grpc_conn *c = ud;
    struct gstream *st = nghttp2_session_get_stream_user_data(s, id);
    const char *why = NULL;
    int code;

    (void)flags;
    if (!st || c->freeing || st->answered || st->failed || st->cancelled)
        return 0;
    code = grpc_stream_take(c, st, data, len, &why);
    if (code == 0)
        return 0;
    if (c->server)
        return answer_only(c, st, 200, code, why) == -ENOMEM ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
    client_fail(c, st, code, why);
    return 0;
}

/* The whole request arrived: hand it over, or answer what is wrong with it. */
static int request_done(struct grpc_conn *c, struct gstream *st)
{
    int rv = 0;

    if (st->answered || st->delivered)
        return 0;
    if (st->in_len < GRPC_PREFIX_LEN || st->in_len != st->in_want)
        rv = answer_only(c, st, 200, GRPC_INTERNAL, "grpc: request message missing or cut");
    else {
        st->delivered = true;
        c->ops->request(c->ctx, c, st->id, st->path, st->in + GRPC_PREFIX_LEN,
                        st->in_len - GRPC_PREFIX_LEN);
        grpc_stream_drop_in(c, st);
    }
    return rv == -ENOMEM ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

/* The request's headers are complete: is it a gRPC call at all? */
static int request_headers(struct grpc_conn *c, struct gstream *st)
{
    if (!st->post || !st->path) {
        st->answered = true; /* never handed over */
        return nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
    }
    if (!st->grpc_ct)
        return answer_only(c, st, 415, GRPC_INVALID_ARGUMENT, "invalid gRPC request content-type");
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct grpc_conn *c = ud;
    struct gstream *st;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    if (c->freeing)
        return 0;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true;
        return 0;
    }
    if (!c->server || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
        return 0;
    st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST &&
        request_headers(c, st) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return end ? request_done(c, st) : 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct grpc_conn *c = ud;
    struct gstream *st;

    if (!c->server || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = grpc_stream_new(c);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* nghttp2 resets the stream */
    st->id = f->hd.stream_id;
    if (nghttp2_session_set_stream_user_data(s, st->id, st) != 0) {
        grpc_stream_free(c, st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

#define IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    struct grpc_conn *c = ud;
    struct gstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

    (void)flags;
    if (!st || c->freeing || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (IS("content-type")) {
        st->grpc_ct = grpc_wire_content_type_ok(value, valuelen);
    } else if (c->server) {
        if (IS(":method"))
            st->post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
        else if (IS(":path") && !st->path) {
            if (valuelen > PATH_MAX_LEN)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            st->path = kedge_strndup((const char *)value, valuelen);
            if (!st->path)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    } else if (IS(":status")) {
        st->http_status = grpc_wire_parse_int(value, valuelen);
    } else if (IS("grpc-status")) {
        st->code = grpc_wire_parse_int(value, valuelen);
        if (st->code < 0)
            st->code = GRPC_UNKNOWN;
    } else if (IS("grpc-message") && !st->message) {
        st->message = grpc_wire_decode_message(value, valuelen < 4096 ? valuelen : 4096);
        if (!st->message)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

/* ---- the end of a stream ------------------------------------------------------------------ */

/* The outcome of a client call whose stream closed with error_code. */
static void call_end(struct grpc_conn *c, struct gstream *st, uint32_t error_code)
{
    const uint8_t *msg = NULL;
    size_t len = 0;
    int code;
    const char *why = st->message;

    if (st->failed) {
        code = st->fail_code;
        why = st->fail_msg;
    } else if (st->code >= 0) {
        code = st->code;
        if (code == GRPC_OK) {
            if (st->in_want && st->in_len == st->in_want) {
                msg = st->in + GRPC_PREFIX_LEN;
                len = st->in_len - GRPC_PREFIX_LEN;
            } else {
                code = GRPC_INTERNAL;
                why = "grpc: response message missing or cut";
            }
        }
    } else if (st->http_status > 0 && st->http_status != 200) {
        code = grpc_wire_code_of_http(st->http_status);
        why = "HTTP status without grpc-status";
    } else if (error_code == NGHTTP2_REFUSED_STREAM || c->goaway || c->broken || c->dead) {
        code = GRPC_UNAVAILABLE;
        why = "connection closed";
    } else if (error_code == NGHTTP2_CANCEL) {
        code = GRPC_CANCELLED;
        why = "stream cancelled by the peer";
    } else {
        code = GRPC_INTERNAL;
        why = "stream ended without grpc-status";
    }
    c->ops->response(c->ctx, c, st->tag, code, why ? why : "", msg, len);
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
    struct grpc_conn *c = ud;
    struct gstream *st = nghttp2_session_get_stream_user_data(s, id);

    if (!st || c->freeing)
        return 0;
    if (c->server) {
        if (st->delivered && !st->answered && c->ops->cancelled)
            c->ops->cancelled(c->ctx, c, id);
    } else if (!st->cancelled) {
        call_end(c, st, error_code);
    }
    grpc_stream_free(c, st);
    return 0;
}

/* An early answer left while the request may still be arriving: end it (nghttp2 would send a
 * RST_STREAM submitted with the answer before the answer itself). */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct grpc_conn *c = ud;
    struct gstream *st;

    if (!c->server || c->freeing || f->hd.type != NGHTTP2_HEADERS ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (st && st->rst_after && !nghttp2_session_get_stream_remote_close(s, st->id))
        (void)nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
}

/* A request never sent (a GOAWAY came first, or grpc_cancel before it left): nghttp2 opened no
 * stream for it, so it never closes; it ends here. */
static int on_not_send(nghttp2_session *s, const nghttp2_frame *f, int err, void *ud)
{
    struct grpc_conn *c = ud;
    struct gstream *st;

    (void)err;
    if (c->server || c->freeing || f->hd.type != NGHTTP2_HEADERS ||
        f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = grpc_stream_of(c, f->hd.stream_id);
    if (!st || nghttp2_session_get_stream_user_data(s, f->hd.stream_id) == st)
        return 0; /* nghttp2 opened the stream: on_stream_close ends it */
    if (!st->cancelled)
        c->ops->response(c->ctx, c, st->tag, GRPC_UNAVAILABLE, "connection closed", NULL, 0);
    grpc_stream_free(c, st);
    return 0;
}

/* ---- calls (client end) ------------------------------------------------------------------- */

int grpc_call(struct grpc_conn *c, const char *path, const ProtobufCMessage *req, void *tag)
{
    nghttp2_nv nv[] = {NV(":method", "POST", 4),
                       NV(":scheme", "http", 4),
                       NV(":path", path, strlen(path)),
                       NV(":authority", "localhost", 9),
                       NV("content-type", "application/grpc", 16),
                       NV("te", "trailers", 8),
                       NV("user-agent", "kedge-grpc", 10)};
    nghttp2_data_provider prd;
    struct gstream *st;
    int32_t id;
    int rv;

    if (c->server)
        return -EINVAL;
    if (c->goaway || c->broken || c->dead)
        return -ESHUTDOWN;
    if (grpc_conn_open_streams(c) >= c->max_streams)
        return -EBUSY;
    st = grpc_stream_new(c);
    if (!st)
        return -ENOMEM;
    st->tag = tag;
    rv = grpc_stream_pack(c, st, req);
    if (rv < 0) {
        grpc_stream_free(c, st);
        return rv;
    }
    prd.source.ptr = st;
    prd.read_callback = read_out;
    id = nghttp2_submit_request(c->s, NULL, nv, sizeof(nv) / sizeof(nv[0]), &prd, st);
    if (id < 0) {
        grpc_stream_free(c, st);
        return id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EIO;
    }
    st->id = id;
    return 0;
}

void grpc_cancel(struct grpc_conn *c, void *tag)
{
    struct gstream *st;

    for (st = c->streams; st; st = st->next)
        if (st->tag == tag && !st->cancelled)
            break;
    if (!st || c->server)
        return;
    st->cancelled = true;
    /* RST_STREAM CANCEL; a request not sent yet is dropped by nghttp2 (on_not_send). If even
     * that cannot be queued, the stream ends with the connection; no response either way. */
    (void)nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
}

size_t grpc_conn_open_streams(const struct grpc_conn *c)
{
    const struct gstream *st;
    size_t n = 0;

    for (st = c->streams; st; st = st->next)
        if (c->server ? !st->answered : !st->cancelled)
            n++;
    return n;
}

/* ---- the connection ----------------------------------------------------------------------- */

static int session_new(struct grpc_conn *c)
{
    nghttp2_mem mem = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc}; /* copied */
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    nghttp2_settings_entry iv[3] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 16384},
    };
    int rv;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -ENOMEM;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -ENOMEM;
    }
    nghttp2_option_set_no_http_messaging(opt, 1); /* see the top: our own checks */
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_not_send);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    rv = c->server ? nghttp2_session_server_new3(&c->s, cb, c, opt, &mem)
                   : nghttp2_session_client_new3(&c->s, cb, c, opt, &mem);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0)
        return -ENOMEM;
    if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
        nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0) {
        nghttp2_session_del(c->s);
        c->s = NULL;
        return -ENOMEM;
    }
    return 0;
}

int grpc_conn_new(bool server, const struct grpc_conn_ops *ops, void *ctx,
                  const struct grpc_limits *lim, struct grpc_conn **out)
{
    struct grpc_conn *c = kedge_calloc(1, sizeof(*c));
    int rv;

    *out = NULL;
    if (!c)
        return -ENOMEM;
    c->server = server;
    c->ops = ops;
    c->ctx = ctx;
    c->max_msg = lim && lim->max_msg ? lim->max_msg : DEFAULT_MAX_MSG;
    if (c->max_msg > 0x7fffffffu)
        c->max_msg = 0x7fffffffu;
    c->max_streams = lim && lim->max_streams ? lim->max_streams : DEFAULT_MAX_STREAMS;
    c->out = kedge_malloc(OUT_CAP);
    if (!c->out) {
        kedge_free(c);
        return -ENOMEM;
    }
    rv = session_new(c);
    if (rv < 0) {
        kedge_free_all(c->out, c);
        return rv;
    }
    *out = c;
    return 0;
}

void grpc_conn_free(struct grpc_conn *c)
{
    if (!c)
        return;
    c->freeing = true;
    while (c->streams) {
        struct gstream *st = c->streams;

        if (!c->server && !st->cancelled)
            c->ops->response(c->ctx, c, st->tag, GRPC_UNAVAILABLE, "connection closed", NULL, 0);
        grpc_stream_free(c, st);
    }
    nghttp2_session_del(c->s);
    kedge_free_all(c->out, c);
}

int grpc_conn_recv(struct grpc_conn *c, const uint8_t *buf, size_t n)
{
    ssize_t rv;

    if (c->broken)
        return -EPIPE;
    rv = nghttp2_session_mem_recv(c->s, buf, n);
    if (rv >= 0)
        return 0;
    /* a broken preface, a flood, out of memory: say so to the peer if we still can */
    c->broken = true;
    (void)nghttp2_session_terminate_session(c->s, rv == NGHTTP2_ERR_NOMEM ? NGHTTP2_INTERNAL_ERROR
                                                                          : NGHTTP2_PROTOCOL_ERROR);
    return rv == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
}

/* Move what nghttp2 has to send into c->out while there is room for a frame. */
static void fill(struct grpc_conn *c)
{
    while (!c->dead && c->out_len + OUT_ROOM <= OUT_CAP) {
        const uint8_t *p;
        ssize_t n;

        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        n = nghttp2_session_mem_send(c->s, &p);
        if (n <= 0) {
            c->dead = n < 0;
            return;
        }
        if ((size_t)n > OUT_CAP - c->out_len) {
            /* a frame larger than a DATA frame and our headers: nghttp2 never makes one here,
             * and the chunk cannot be kept past the next call */
            c->dead = true;
            return;
        }
        memcpy(c->out + c->out_len, p, (size_t)n);
        c->out_len += (size_t)n;
    }
}

size_t grpc_conn_output(struct grpc_conn *c, const uint8_t **buf)
{
    fill(c);
    *buf = c->out + c->out_off;
    return c->out_len - c->out_off;
}

void grpc_conn_consumed(struct grpc_conn *c, size_t n)
{
    if (n > c->out_len - c->out_off)
        n = c->out_len - c->out_off;
    c->out_off += n;
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
}

bool grpc_conn_want_read(const struct grpc_conn *c)
{
    return !c->broken && !c->dead && c->out_len - c->out_off < OUT_HIGH &&
           nghttp2_session_want_read(c->s);
}

bool grpc_conn_done(const struct grpc_conn *c)
{
    if (c->out_len > c->out_off)
        return false;
    if (c->dead)
        return true;
    if (nghttp2_session_want_write(c->s))
        return false;
    return c->broken || !nghttp2_session_want_read(c->s);
}
