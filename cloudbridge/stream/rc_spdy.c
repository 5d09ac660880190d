/* The remote command codec over SPDY/3.1 (server side), as kubelet serves it with
 * k8s.io/apimachinery/pkg/util/httpstream/spdy on moby/spdystream: the X-Stream-Protocol-Version
 * handshake and its refusals, the client's streams (one per channel, header streamtype) each
 * answered with a SYN_REPLY at once, ready() when the streams the options need are all there
 * (httpstream.go's expectedStreams), PING echoed, and the end: the status on the error stream,
 * FIN on every stream, GOAWAY.
 *
 * Control frames are held whole (bounded); DATA is consumed as it arrives, so stdin of any size
 * costs no buffer. spdystream neither keeps nor sends flow-control windows (it ignores
 * WINDOW_UPDATE and SETTINGS), so kubectl never waits for a window and none is sent here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kedge/alloc.h"
#include "rc_int.h"
#include "rc_spdy.h"

#define SPDY_VERSION 3
#define SPDY_CTL_MAX 16384   /* a control frame */
#define SPDY_BLOCK_MAX 16384 /* a header block once inflated */
#define SPDY_STREAMS 8       /* kubectl opens at most five */

enum {
    SYN_STREAM = 1,
    SYN_REPLY = 2,
    RST_STREAM = 3,
    SETTINGS = 4,
    PING = 6,
    GOAWAY = 7,
    HEADERS = 8,
    WINDOW_UPDATE = 9,
};
enum { FLAG_FIN = 0x01 };
enum { RST_PROTOCOL_ERROR = 1, RST_REFUSED_STREAM = 3 };
enum { GOAWAY_OK = 0, GOAWAY_PROTOCOL_ERROR = 1 };

struct sstream {
    uint32_t id;
    int chan;     /* enum rc_chan, -1: a type this version does not know (replied, ignored) */
    bool in_fin;  /* the client's side is done */
    bool out_fin; /* ours is */
    bool reset;   /* either side reset it */
};

struct spdy {
    struct rc_spdy_z z;
    unsigned char hdr[8];
    size_t hdr_len;
    bool control;
    unsigned type, flags;
    uint32_t left;          /* payload bytes of the frame still to come */
    struct sstream *data;   /* the stream of the DATA frame being read, NULL: ignored */
    struct kedge_buf ctl;   /* a control frame's payload */
    struct kedge_buf block; /* its header block, inflated */
    struct sstream s[SPDY_STREAMS];
    size_t n;
    uint32_t next_id; /* a new stream's id must be at least this (spdystream's receivedStreamId) */
    uint32_t last_id; /* the last stream accepted, for GOAWAY */
    int expected, received;
};

static const char *const versions[] = {"v4.channel.k8s.io", "v3.channel.k8s.io",
                                       "v2.channel.k8s.io", "channel.k8s.io"};
static const enum rc_version version_of[] = {RC_V4, RC_V3, RC_V2, RC_V1};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* ---- sending ----------------------------------------------------------------------------------
 */

static void control_header(unsigned char *h, unsigned type, unsigned flags, uint32_t len)
{
    h[0] = 0x80;
    h[1] = SPDY_VERSION;
    h[2] = (unsigned char)(type >> 8);
    h[3] = (unsigned char)type;
    put32(h + 4, (uint32_t)flags << 24 | len);
}

/* An 8-byte-payload control frame (RST_STREAM, GOAWAY). */
static void send_pair(struct rc *r, unsigned type, uint32_t a, uint32_t b)
{
    unsigned char f[16];

    control_header(f, type, 0, 8);
    put32(f + 8, a);
    put32(f + 12, b);
    r->fns.send(r->ctx, (const char *)f, sizeof(f));
}

static int send_data(struct rc *r, uint32_t id, unsigned flags, const char *b, size_t n)
{
    struct kedge_buf f = KEDGE_BUF_INIT;
    unsigned char h[8];
    int rc;

    put32(h, id & 0x7fffffff);
    put32(h + 4, (uint32_t)flags << 24 | (uint32_t)n);
    rc = kedge_buf_reserve(&f, sizeof(h) + n);
    if (rc == 0) {
        (void)kedge_buf_append(&f, h, sizeof(h));
        (void)kedge_buf_append(&f, b, n);
        r->fns.send(r->ctx, f.data, f.len);
    }
    kedge_buf_cleanup(&f);
    return rc;
}

/* spdystream's SendReply(http.Header{}, false): an empty header block. */
static int send_reply(struct rc *r, uint32_t id)
{
    static const unsigned char empty[4] = {0, 0, 0, 0};
    struct spdy *s = r->p;
    struct kedge_buf f = KEDGE_BUF_INIT;
    unsigned char h[12] = {0}; /* filled once the block's length is known */
    int rc = kedge_buf_append(&f, h, sizeof(h));

    if (rc == 0)
        rc = rc_spdy_deflate(&s->z, empty, sizeof(empty), &f);
    if (rc == 0) {
        control_header((unsigned char *)f.data, SYN_REPLY, 0, (uint32_t)(f.len - 8));
        put32((unsigned char *)f.data + 8, id);
        r->fns.send(r->ctx, f.data, f.len);
    }
    kedge_buf_cleanup(&f);
    return rc;
}

/* The client broke the protocol: GOAWAY PROTOCOL_ERROR, then closed(). */
static int fail(struct rc *r, const char *why)
{
    struct spdy *s = r->p;

    send_pair(r, GOAWAY, s->last_id, GOAWAY_PROTOCOL_ERROR);
    rc_core_closed(r, why);
    return -EPROTO;
}

/* ---- streams -------------------------------------------------------------------------------- */

static struct sstream *by_id(struct spdy *s, uint32_t id)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (s->s[i].id == id)
            return &s->s[i];
    return NULL;
}

/* The stream of channel ch we write on: the last one opened (kubelet keeps the last). */
static struct sstream *by_chan(struct spdy *s, enum rc_chan ch)
{
    size_t i = s->n;

    while (i-- > 0)
        if (s->s[i].chan == (int)ch)
            return &s->s[i];
    return NULL;
}

/* The streamtype values kubelet's handler for this version knows (resize from v3 on). */
static int stream_chan(const struct rc *r, const char *v, size_t n)
{
    static const char *const types[RC_NCHAN] = {"stdin", "stdout", "stderr", "error", "resize"};
    int i;

    for (i = 0; i < RC_NCHAN; i++)
        if (strlen(types[i]) == n && !memcmp(types[i], v, n))
            return i == RC_RESIZE && r->version < RC_V3 ? -1 : i;
    return -1;
}

/* The client is done with st (FIN or reset): stdin's EOF; the rest needs nothing. */
static void client_done(struct rc *r, struct sstream *st)
{
    struct spdy *s = r->p;

    st->in_fin = true;
    if (st->chan == RC_STDIN && by_chan(s, RC_STDIN) == st)
        rc_core_stdin_eof(r);
}

static void streams_ready(struct rc *r)
{
    struct spdy *s = r->p;
    struct sstream *in = by_chan(s, RC_STDIN);

    /* v1ProtocolHandler closes its side of stdin once the streams are there */
    if (r->version == RC_V1 && in && !in->out_fin && send_data(r, in->id, FLAG_FIN, NULL, 0) == 0)
        in->out_fin = true;
    rc_core_ready(r);
}

static int syn_stream(struct rc *r)
{
    struct spdy *s = r->p;
    const unsigned char *p = (const unsigned char *)s->ctl.data;
    const char *type = NULL;
    size_t type_len = 0;
    struct sstream *st;
    uint32_t id;
    int rc, found;

    if (s->ctl.len < 10)
        return fail(r, "short SYN_STREAM");
    id = be32(p) & 0x7fffffff;
    /* the block is inflated whatever becomes of the stream: the zlib stream spans frames */
    rc = rc_spdy_inflate(&s->z, p + 10, s->ctl.len - 10, SPDY_BLOCK_MAX, &s->block);
    if (rc < 0)
        return rc == -ENOMEM ? rc : fail(r, "SYN_STREAM header block does not inflate");
    found = rc_spdy_block_find((const unsigned char *)s->block.data, s->block.len, "streamtype",
                               &type, &type_len);
    if (found < 0)
        return fail(r, "malformed SYN_STREAM header block");
    if (id == 0)
        return fail(r, "SYN_STREAM for stream 0");
    if (id < s->next_id) { /* spdystream: RST_STREAM PROTOCOL_ERROR, the frame dropped */
        send_pair(r, RST_STREAM, id, RST_PROTOCOL_ERROR);
        return 0;
    }
    s->next_id = id + 2;
    s->last_id = id;
    if (s->n == SPDY_STREAMS) {
        send_pair(r, RST_STREAM, id, RST_REFUSED_STREAM);
        return 0;
    }
    st = &s->s[s->n++];
    *st = (struct sstream){id, found ? stream_chan(r, type, type_len) : -1, false, false, false};
    rc = send_reply(r, id);
    if (rc < 0)
        return rc;
    if (s->flags & FLAG_FIN)
        client_done(r, st);
    if (st->chan >= 0 && r->state == RC_OPENING && ++s->received == s->expected)
        streams_ready(r);
    return 0;
}

static int rst_stream(struct rc *r)
{
    struct spdy *s = r->p;
    const unsigned char *p = (const unsigned char *)s->ctl.data;
    struct sstream *st;

    if (s->ctl.len != 8 || be32(p + 4) == 0)
        return fail(r, "malformed RST_STREAM");
    st = by_id(s, be32(p) & 0x7fffffff);
    if (st && !st->reset) {
        st->reset = true;
        if (!st->in_fin)
            client_done(r, st);
    }
    return 0;
}

/* HEADERS and SYN_REPLY: nothing for us in them, but their blocks keep the zlib stream going. */
static int headers(struct rc *r)
{
    struct spdy *s = r->p;
    struct sstream *st;
    int rc;

    if (s->ctl.len < 4)
        return fail(r, "short HEADERS / SYN_REPLY");
    rc = rc_spdy_inflate(&s->z, s->ctl.data + 4, s->ctl.len - 4, SPDY_BLOCK_MAX, &s->block);
    if (rc < 0)
        return rc == -ENOMEM ? rc : fail(r, "header block does not inflate");
    st = by_id(s, be32((const unsigned char *)s->ctl.data) & 0x7fffffff);
    if (s->type == HEADERS && (s->flags & FLAG_FIN) && st && !st->in_fin)
        client_done(r, st);
    return 0;
}

static int ping(struct rc *r)
{
    struct spdy *s = r->p;
    unsigned char f[12];
    uint32_t id;

    if (s->ctl.len != 4 || s->flags)
        return fail(r, "malformed PING");
    id = be32((const unsigned char *)s->ctl.data);
    if (id == 0)
        return fail(r, "PING 0");
    if (id & 1) { /* the client's: echo it; an even one would answer ours, and we send none */
        control_header(f, PING, 0, 4);
        put32(f + 8, id);
        r->fns.send(r->ctx, (const char *)f, sizeof(f));
    }
    return 0;
}

static int control_frame(struct rc *r, unsigned version)
{
    struct spdy *s = r->p;
    size_t len = s->ctl.len;

    if (version != SPDY_VERSION)
        return fail(r, "not SPDY/3");
    switch (s->type) {
    case SYN_STREAM:
        return syn_stream(r);
    case SYN_REPLY:
    case HEADERS:
        return headers(r);
    case RST_STREAM:
        return rst_stream(r);
    case SETTINGS:
        if (len < 4 || (len - 4) % 8 || be32((const unsigned char *)s->ctl.data) != (len - 4) / 8)
            return fail(r, "malformed SETTINGS");
        return 0;
    case PING:
        return ping(r);
    case GOAWAY:
        if (len != 8)
            return fail(r, "malformed GOAWAY");
        rc_core_closed(r, "the client sent GOAWAY");
        return -EPIPE;
    case WINDOW_UPDATE:
        return len == 8 ? 0 : fail(r, "malformed WINDOW_UPDATE");
    default:
        return 0; /* SPDY/3 §2.2.1: an unknown control frame is ignored */
    }
}

/* ---- reading ----------------------------------------------------------------------------------
 */

/* The 8-byte header is whole: start the frame. */
static int frame_start(struct rc *r, unsigned *version)
{
    struct spdy *s = r->p;
    uint32_t w0 = be32(s->hdr), w1 = be32(s->hdr + 4);

    s->control = (w0 & 0x80000000u) != 0;
    s->flags = w1 >> 24;
    s->left = w1 & 0xffffff;
    kedge_buf_reset(&s->ctl);
    if (s->control) {
        *version = (w0 >> 16) & 0x7fff;
        s->type = w0 & 0xffff;
        if (s->left > SPDY_CTL_MAX)
            return fail(r, "SPDY control frame over 16 KiB");
        return kedge_buf_reserve(&s->ctl, s->left);
    }
    if ((w0 & 0x7fffffff) == 0)
        return fail(r, "DATA on stream 0");
    s->data = by_id(s, w0 & 0x7fffffff);
    /* data on a stream the client finished or either side reset is dropped (spdystream) */
    if (s->data && (s->data->in_fin || s->data->reset))
        s->data = NULL;
    return 0;
}

static int data_bytes(struct rc *r, const char *b, size_t n)
{
    struct spdy *s = r->p;

    if (!s->data)
        return 0;
    if (s->data->chan == RC_STDIN && by_chan(s, RC_STDIN) == s->data)
        return rc_core_stdin(r, b, n);
    if (s->data->chan == RC_RESIZE && by_chan(s, RC_RESIZE) == s->data)
        return rc_core_resize(r, b, n);
    return 0;
}

static int frame_end(struct rc *r, unsigned version)
{
    struct spdy *s = r->p;

    s->hdr_len = 0;
    if (s->control)
        return control_frame(r, version);
    if ((s->flags & FLAG_FIN) && s->data)
        client_done(r, s->data);
    return 0;
}

static int spdy_input(struct rc *r, const char *b, size_t n)
{
    struct spdy *s = r->p;
    unsigned version = 0;
    int rc = 0;

    while (rc == 0 && r->state != RC_OVER && n) {
        if (s->hdr_len < 8) {
            size_t k = 8 - s->hdr_len < n ? 8 - s->hdr_len : n;

            memcpy(s->hdr + s->hdr_len, b, k);
            s->hdr_len += k;
            b += k;
            n -= k;
            if (s->hdr_len == 8)
                rc = frame_start(r, &version);
            if (rc == 0 && s->hdr_len == 8 && s->left == 0)
                rc = frame_end(r, version);
            continue;
        }
        {
            size_t k = s->left < n ? s->left : n;

            rc = s->control ? kedge_buf_append(&s->ctl, b, k) : data_bytes(r, b, k);
            s->left -= (uint32_t)k;
            b += k;
            n -= k;
            if (rc == 0 && r->state != RC_OVER && s->left == 0)
                rc = frame_end(r, (be32(s->hdr) >> 16) & 0x7fff);
        }
    }
    if (rc == -ENOMEM)
        rc_core_closed(r, "out of memory");
    else if (rc == -EPROTO && r->state != RC_OVER)
        rc = fail(r, "stdin before the streams were set up, over 64 KiB");
    return r->state == RC_OVER ? (rc < 0 ? rc : -EPIPE) : rc;
}

/* ---- writing -------------------------------------------------------------------------------- */

static int spdy_output(struct rc *r, enum rc_chan ch, const char *b, size_t n)
{
    struct sstream *st = by_chan(r->p, ch);
    int rc = 0;

    if (!st || st->out_fin || st->reset)
        return 0;
    while (n && rc == 0) {
        size_t k = n < RC_OUT_CHUNK ? n : RC_OUT_CHUNK;

        rc = send_data(r, st->id, 0, b, k);
        b += k;
        n -= k;
    }
    return rc;
}

/* The status on the error stream with its FIN, FIN on every other stream we have not finished,
 * GOAWAY: kubectl reads stdout and stderr to their end, then the error stream to its end. */
static int spdy_finish(struct rc *r, const char *status, size_t n)
{
    struct spdy *s = r->p;
    struct sstream *err = by_chan(s, RC_ERROR);
    size_t i;
    int rc = 0;

    if (err && !err->out_fin && !err->reset) {
        rc = send_data(r, err->id, FLAG_FIN, status, n);
        err->out_fin = true;
    }
    for (i = 0; i < s->n && rc == 0; i++) {
        if (s->s[i].out_fin || s->s[i].reset)
            continue;
        rc = send_data(r, s->s[i].id, FLAG_FIN, NULL, 0);
        s->s[i].out_fin = true;
    }
    send_pair(r, GOAWAY, s->last_id, GOAWAY_OK);
    r->state = RC_OVER;
    return rc;
}

static void spdy_free(struct rc *r)
{
    struct spdy *s = r->p;

    if (!s)
        return;
    rc_spdy_z_cleanup(&s->z);
    kedge_buf_cleanup(&s->ctl);
    kedge_buf_cleanup(&s->block);
    kedge_free(s);
}

static const struct rc_proto spdy_proto = {spdy_input, spdy_output, spdy_finish, spdy_free};

/* ---- the handshake -------------------------------------------------------------------------- */

/* http.Error(w, msg, status): text/plain, nosniff, the message and a newline (count times: the
 * refused negotiation is answered twice, once by Handshake and once by its caller). */
static int http_error(struct rc *r, int status, const char *extra, const char *msg, int count)
{
    struct kedge_buf h = KEDGE_BUF_INIT, body = KEDGE_BUF_INIT;
    int rc = kedge_buf_printf(&h, "%sX-Content-Type-Options: nosniff\r\n", extra ? extra : "");
    int i;

    for (i = 0; rc == 0 && i < count; i++)
        rc = kedge_buf_printf(&body, "%s\n", msg);
    if (rc == 0)
        rc = rc_core_http(&r->fns, r->ctx, status, h.data, true, body.data, body.len);
    else
        (void)rc_core_http(&r->fns, r->ctx, 500, NULL, false, NULL, 0);
    kedge_buf_cleanup(&h);
    kedge_buf_cleanup(&body);
    return rc < 0 ? rc : -EINVAL;
}

/* Go's %#v of a string: quoted, with \ and " escaped (enough for a header value). */
static int go_quote(struct kedge_buf *b, const char *s)
{
    int rc = kedge_buf_putc(b, '"');

    for (; rc == 0 && *s; s++)
        rc = (*s == '"' || *s == '\\') ? kedge_buf_printf(b, "\\%c", *s) : kedge_buf_putc(b, *s);
    return rc == 0 ? kedge_buf_putc(b, '"') : rc;
}

/* UpgradeResponse's refusal: the request's headers as %#v (only the two that matter here). */
static int missing_upgrade(struct rc *r, const struct rc_upgrade *u)
{
    static const char *const names[] = {"Connection", "Upgrade"};
    struct kedge_buf m = KEDGE_BUF_INIT;
    int rc = kedge_buf_puts(&m, "unable to upgrade: missing upgrade headers in request: "
                                "http.Header{");
    bool first = true;
    size_t i;

    for (i = 0; rc == 0 && i < 2; i++) {
        const char *v = u->header ? u->header(u->hctx, names[i]) : NULL;

        if (!v)
            continue;
        rc = kedge_buf_printf(&m, "%s\"%s\":[]string{", first ? "" : ", ", names[i]);
        if (rc == 0)
            rc = go_quote(&m, v);
        if (rc == 0)
            rc = kedge_buf_putc(&m, '}');
        first = false;
    }
    if (rc == 0)
        rc = kedge_buf_putc(&m, '}');
    rc = rc == 0 ? http_error(r, 400, NULL, m.data, 1) : http_error(r, 500, NULL, "", 0);
    kedge_buf_cleanup(&m);
    return rc;
}

/* httpstream.Handshake: the first of the client's versions (comma-separated, any number of
 * header lines, spaces trimmed) kubelet serves. */
static int negotiate(struct rc *r, const char *list, int *pick)
{
    struct kedge_buf client = KEDGE_BUF_INIT, msg = KEDGE_BUF_INIT;
    const char *p = list;
    int rc = 0, best = -1;
    size_t i;

    while (*p && rc == 0) {
        size_t n = strcspn(p, ","), a = 0, b = n;

        while (a < b && p[a] == ' ')
            a++;
        while (b > a && p[b - 1] == ' ')
            b--;
        if (b > a) {
            for (i = 0; best < 0 && i < 4; i++)
                if (strlen(versions[i]) == b - a && !strncmp(versions[i], p + a, b - a))
                    best = (int)i;
            rc = kedge_buf_printf(&client, "%s%.*s", client.len ? " " : "", (int)(b - a), p + a);
        }
        p += n + (p[n] == ',');
    }
    if (rc == 0 && !client.len) {
        rc =
            http_error(r, 400, NULL, "unable to upgrade: X-Stream-Protocol-Version is required", 1);
    } else if (rc == 0 && best < 0) {
        rc = kedge_buf_printf(&msg,
                              "unable to upgrade: unable to negotiate protocol: client supports "
                              "[%s], server accepts [%s %s %s %s]",
                              client.data, versions[0], versions[1], versions[2], versions[3]);
        if (rc == 0)
            rc = http_error(r, 403,
                            "X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io\r\n"
                            "X-Accepted-Stream-Protocol-Versions: v3.channel.k8s.io\r\n"
                            "X-Accepted-Stream-Protocol-Versions: v2.channel.k8s.io\r\n"
                            "X-Accepted-Stream-Protocol-Versions: channel.k8s.io\r\n",
                            msg.data, 2);
    }
    if (rc == -ENOMEM)
        (void)rc_core_http(&r->fns, r->ctx, 500, NULL, false, NULL, 0);
    kedge_buf_cleanup(&client);
    kedge_buf_cleanup(&msg);
    *pick = best;
    return rc;
}

int rc_spdy_accept(struct rc *r, const struct rc_upgrade *u)
{
    struct spdy *s;
    char resp[160];
    int pick, rc = negotiate(r, rc_core_header(u, "X-Stream-Protocol-Version"), &pick);

    if (rc < 0)
        return rc;
    if (!rc_core_contains_ci(rc_core_header(u, "Connection"), "upgrade") ||
        !rc_core_contains_ci(rc_core_header(u, "Upgrade"), "spdy/3.1"))
        return missing_upgrade(r, u);
    s = kedge_calloc(1, sizeof(*s));
    rc = s ? rc_spdy_z_init(&s->z) : -ENOMEM;
    if (rc < 0) {
        kedge_free(s);
        (void)rc_core_http(&r->fns, r->ctx, 500, NULL, false, NULL, 0);
        return rc;
    }
    s->next_id = 1;
    r->p = s;
    r->proto = &spdy_proto;
    r->version = version_of[pick];
    /* createHTTPStreamStreams' expectedStreams: error, one per option, resize for a TTY (v3+) */
    s->expected = 1 + r->o.in + r->o.out + r->o.err + (r->o.tty && r->version >= RC_V3);
    (void)snprintf(resp, sizeof(resp),
                   "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                   "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: %s\r\n\r\n",
                   versions[pick]);
    r->fns.send(r->ctx, resp, strlen(resp));
    return 0;
}
