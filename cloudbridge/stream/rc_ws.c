/* The remote command codec over WebSocket (RFC 6455, server side), as kubelet's wsstream serves
 * it (k8s.io/apimachinery/pkg/util/httpstream/wsstream on golang.org/x/net/websocket): the
 * handshake and its refusals, the channel-byte messages in both directions (binary, or text
 * base64 for the base64 subprotocols), v5's close signal, ping/pong, the close handshake.
 *
 * A client message is consumed as it arrives: stdin bytes go to stdin_data() frame by frame, so
 * a message of any size costs no buffer; only base64 messages (decoded whole, as kubelet does) and
 * v5 close signals are held, bounded.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/util.h"
#include "rc_int.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MSG_MAX (1u << 20) /* a held (base64) message */
#define WS_CLOSE_SIGNAL 255   /* v5: [255, channel] = the client closed that channel */

enum ws_op { WS_CONT = 0, WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

/* RFC 6455 §7.4.1 */
enum { WS_NORMAL = 1000, WS_PROTOCOL_ERROR = 1002, WS_TOO_BIG = 1009 };

struct ws {
    bool base64;
    /* the frame being read */
    unsigned char hdr[14];
    size_t hdr_len;
    uint64_t left; /* payload bytes still to come */
    unsigned char mask[4];
    size_t mask_pos;
    int op;
    bool fin, in_payload;
    unsigned char ctl[125]; /* a control frame's payload */
    size_t ctl_len;
    /* the data message being read (possibly over several frames) */
    bool in_msg, have_chan, hold;
    unsigned char chan;
    struct kedge_buf msg;
};

static const struct {
    const char *name;
    enum rc_version version;
    bool base64;
} protocols[] = {
    {"v5.channel.k8s.io", RC_V5, false},       {"v4.channel.k8s.io", RC_V4, false},
    {"v4.base64.channel.k8s.io", RC_V4, true}, {"channel.k8s.io", RC_V1, false},
    {"base64.channel.k8s.io", RC_V1, true},    {"", RC_V1, false}, /* no subprotocol asked for */
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/* wsstream's connectionUpgradeRegex "(^|.*,\s*)upgrade($|\s*,)" on the lowered Connection. */
static bool connection_upgrade(const char *s)
{
    size_t len = strlen(s), i;

    for (i = 0; i + 7 <= len; i++) {
        size_t l = i, r = i + 7;

        if (strncasecmp(s + i, "upgrade", 7))
            continue;
        while (l > 0 && is_space(s[l - 1]))
            l--;
        while (r < len && is_space(s[r]))
            r++;
        if ((i == 0 || (l > 0 && s[l - 1] == ',')) && (i + 7 == len || (r < len && s[r] == ',')))
            return true;
    }
    return false;
}

bool rc_ws_is_request(const struct rc_upgrade *u)
{
    return !strcasecmp(rc_core_header(u, "Upgrade"), "websocket") &&
           connection_upgrade(rc_core_header(u, "Connection"));
}

/* The first of the client's subprotocols (comma-separated, trimmed) we serve, as wsstream's
 * handshake picks it; -1 for none. */
static int pick_protocol(const char *list)
{
    size_t i;

    while (is_space(*list))
        list++;
    if (!*list)
        return (int)(sizeof(protocols) / sizeof(protocols[0])) - 1;
    for (;;) {
        size_t n = strcspn(list, ","), a = 0, b = n;

        while (a < b && is_space(list[a]))
            a++;
        while (b > a && is_space(list[b - 1]))
            b--;
        for (i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
            if (strlen(protocols[i].name) == b - a && !strncmp(protocols[i].name, list + a, b - a))
                return (int)i;
        if (!list[n])
            return -1;
        list += n + 1;
    }
}

/* ---- sending ----------------------------------------------------------------------------------
 */

/* One unmasked frame (server to client). */
static int send_frame(struct rc *r, int op, const void *pre, size_t pre_len, const void *b,
                      size_t n)
{
    struct kedge_buf f = KEDGE_BUF_INIT;
    uint64_t len = pre_len + n;
    unsigned char h[10];
    size_t hl = 2, i;
    int rc;

    h[0] = (unsigned char)(0x80 | op);
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        hl = 4;
    } else {
        h[1] = 127;
        for (i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        hl = 10;
    }
    rc = kedge_buf_reserve(&f, hl + len);
    if (rc == 0) {
        (void)kedge_buf_append(&f, h, hl);
        (void)kedge_buf_append(&f, pre, pre_len);
        (void)kedge_buf_append(&f, b, n);
        r->fns.send(r->ctx, f.data, f.len);
    }
    kedge_buf_cleanup(&f);
    return rc;
}

/* A message on channel ch: [ch]+bytes in a binary frame, or '0'+ch and base64 in a text frame. */
static int send_chan(struct rc *r, enum rc_chan ch, const char *b, size_t n)
{
    struct ws *w = r->p;
    struct kedge_buf enc = KEDGE_BUF_INIT;
    unsigned char c = (unsigned char)ch;
    int rc;

    if (!w->base64)
        return send_frame(r, WS_BINARY, &c, 1, b, n);
    c = (unsigned char)('0' + ch);
    rc = kedge_base64_encode(b, n, &enc);
    if (rc == 0)
        rc = send_frame(r, WS_TEXT, &c, 1, enc.data, enc.len);
    kedge_buf_cleanup(&enc);
    return rc;
}

static void send_close(struct rc *r, int code)
{
    unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};

    (void)send_frame(r, WS_CLOSE, NULL, 0, p, code ? 2 : 0);
}

/* The client broke the protocol: a close frame with the reason's code, then closed(). */
static int fail(struct rc *r, int code, const char *why)
{
    send_close(r, code);
    rc_core_closed(r, why);
    return -EPROTO;
}

/* ---- a client message --------------------------------------------------------------------- */

/* kubelet reads stdin and resize; everything else a client sends is dropped. */
static int deliver(struct rc *r, unsigned char ch, const char *b, size_t n)
{
    if (ch == RC_STDIN)
        return rc_core_stdin(r, b, n);
    if (ch == RC_RESIZE)
        return rc_core_resize(r, b, n);
    return 0;
}

static int msg_bytes(struct rc *r, const char *b, size_t n)
{
    struct ws *w = r->p;

    if (n && !w->have_chan) {
        w->have_chan = true;
        w->chan = (unsigned char)(w->base64 ? (unsigned char)b[0] - '0' : (unsigned char)b[0]);
        w->hold = w->base64 ? w->chan == RC_STDIN || w->chan == RC_RESIZE
                            : r->version >= RC_V5 && w->chan == WS_CLOSE_SIGNAL;
        b++;
        n--;
    }
    if (!n)
        return 0;
    if (!w->hold)
        return deliver(r, w->chan, b, n);
    if (w->msg.len + n > WS_MSG_MAX)
        return fail(r, WS_TOO_BIG, "websocket message over 1 MiB");
    return kedge_buf_append(&w->msg, b, n);
}

static int close_signal(struct rc *r, const struct kedge_buf *m)
{
    if (m->len != 1) /* wsstream ends the connection on a malformed signal */
        return fail(r, WS_PROTOCOL_ERROR, "malformed v5 close signal");
    if (m->data[0] == RC_STDIN)
        rc_core_stdin_eof(r);
    else if (m->data[0] == RC_RESIZE)
        r->resize_off = true;
    return 0;
}

static int msg_end(struct rc *r)
{
    struct ws *w = r->p;
    char *dec = NULL;
    size_t dlen = 0;
    int rc = 0;

    if (!w->have_chan || !w->hold)
        goto out;
    if (!w->base64) {
        rc = close_signal(r, &w->msg);
        goto out;
    }
    /* DataFromSocket: a message that is not base64 is logged and dropped */
    rc = kedge_base64_decode(w->msg.data ? w->msg.data : "", w->msg.len, &dec, &dlen);
    if (rc == 0)
        rc = deliver(r, w->chan, dec, dlen);
    else if (rc == KEDGE_EPARSE)
        rc = 0;
    kedge_free(dec);
out:
    kedge_buf_reset(&w->msg);
    w->have_chan = w->hold = w->in_msg = false;
    return rc;
}

/* ---- control frames ----------------------------------------------------------------------- */

static bool close_code_ok(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

static int control(struct rc *r)
{
    struct ws *w = r->p;
    unsigned code;

    switch (w->op) {
    case WS_PING:
        return send_frame(r, WS_PONG, NULL, 0, w->ctl, w->ctl_len);
    case WS_PONG:
        return 0;
    default: /* WS_CLOSE: echo its code (RFC 6455 §5.5.1), the client is gone */
        if (w->ctl_len == 1)
            return fail(r, WS_PROTOCOL_ERROR, "close frame with a 1-byte body");
        code = w->ctl_len ? (unsigned)w->ctl[0] << 8 | w->ctl[1] : 0;
        if (w->ctl_len && !close_code_ok(code))
            return fail(r, WS_PROTOCOL_ERROR, "close frame with an invalid code");
        send_close(r, (int)code);
        rc_core_closed(r, "the client closed the websocket");
        return -EPIPE;
    }
}

/* ---- frames ------------------------------------------------------------------------------- */

static size_t header_need(const unsigned char *h, size_t have)
{
    size_t need = 2;

    if (have < 2)
        return need;
    if ((h[1] & 0x7f) == 126)
        need += 2;
    else if ((h[1] & 0x7f) == 127)
        need += 8;
    return need + ((h[1] & 0x80) ? 4 : 0);
}

/* The header is whole: check it (RFC 6455 §5.2, §5.5) and start the frame. */
static int frame_start(struct rc *r)
{
    struct ws *w = r->p;
    const unsigned char *h = w->hdr;
    unsigned len7 = h[1] & 0x7f;
    size_t i;

    w->fin = (h[0] & 0x80) != 0;
    w->op = h[0] & 0x0f;
    if (h[0] & 0x70)
        return fail(r, WS_PROTOCOL_ERROR, "websocket frame with reserved bits set");
    if (!(h[1] & 0x80))
        return fail(r, WS_PROTOCOL_ERROR, "unmasked websocket frame from the client");
    if (len7 < 126) {
        w->left = len7;
    } else if (len7 == 126) {
        w->left = (uint64_t)h[2] << 8 | h[3];
    } else {
        for (w->left = 0, i = 0; i < 8; i++)
            w->left = w->left << 8 | h[2 + i];
        if (w->left >> 63)
            return fail(r, WS_PROTOCOL_ERROR, "websocket frame length over 2^63");
    }
    memcpy(w->mask, h + w->hdr_len - 4, 4);
    w->mask_pos = 0;
    w->ctl_len = 0;
    if (w->op >= 8) {
        if (w->op > WS_PONG)
            return fail(r, WS_PROTOCOL_ERROR, "unknown websocket opcode");
        if (!w->fin || w->left > 125)
            return fail(r, WS_PROTOCOL_ERROR, "fragmented or long websocket control frame");
    } else if (w->op == WS_CONT) {
        if (!w->in_msg)
            return fail(r, WS_PROTOCOL_ERROR, "websocket continuation without a message");
    } else if (w->op == WS_TEXT || w->op == WS_BINARY) {
        if (w->in_msg)
            return fail(r, WS_PROTOCOL_ERROR, "websocket message inside a fragmented one");
        w->in_msg = true;
    } else {
        return fail(r, WS_PROTOCOL_ERROR, "unknown websocket opcode");
    }
    w->in_payload = true;
    return 0;
}

static int frame_end(struct rc *r)
{
    struct ws *w = r->p;

    w->in_payload = false;
    w->hdr_len = 0;
    if (w->op >= 8)
        return control(r);
    return w->fin ? msg_end(r) : 0;
}

/* Up to n payload bytes of the frame, unmasked in chunks. Returns how many were used or < 0. */
static long payload(struct rc *r, const char *b, size_t n)
{
    struct ws *w = r->p;
    char chunk[4096];
    size_t take = n < w->left ? n : (size_t)w->left, done = 0;

    while (done < take) {
        size_t k = take - done < sizeof(chunk) ? take - done : sizeof(chunk), i;
        int rc;

        for (i = 0; i < k; i++)
            chunk[i] = (char)(b[done + i] ^ w->mask[w->mask_pos++ & 3]);
        if (w->op >= 8) {
            memcpy(w->ctl + w->ctl_len, chunk, k);
            w->ctl_len += k;
            rc = 0;
        } else {
            rc = msg_bytes(r, chunk, k);
        }
        if (rc < 0)
            return rc;
        done += k;
        w->left -= k;
        if (r->state == RC_OVER) /* a callback ended it */
            return -EPIPE;
    }
    return (long)take;
}

static int ws_input(struct rc *r, const char *b, size_t n)
{
    struct ws *w = r->p;
    int rc = 0;

    while (rc == 0 && r->state != RC_OVER) {
        if (!w->in_payload) {
            size_t need = header_need(w->hdr, w->hdr_len);

            if (w->hdr_len == need) {
                rc = frame_start(r);
                if (rc == 0 && w->left == 0)
                    rc = frame_end(r);
                continue;
            }
            if (!n)
                break;
            while (n && w->hdr_len < need) {
                w->hdr[w->hdr_len++] = (unsigned char)*b++;
                n--;
                need = header_need(w->hdr, w->hdr_len);
            }
            continue;
        }
        if (w->left) {
            long k;

            if (!n)
                break;
            k = payload(r, b, n);
            if (k < 0)
                return (int)k;
            b += k;
            n -= (size_t)k;
        }
        if (w->left == 0)
            rc = frame_end(r);
    }
    if (rc == -ENOMEM)
        rc_core_closed(r, "out of memory");
    return r->state == RC_OVER ? (rc < 0 ? rc : -EPIPE) : rc;
}

static int ws_output(struct rc *r, enum rc_chan ch, const char *b, size_t n)
{
    int rc = 0;

    while (n && rc == 0) {
        size_t k = n < RC_OUT_CHUNK ? n : RC_OUT_CHUNK;

        rc = send_chan(r, ch, b, k);
        b += k;
        n -= k;
    }
    return rc;
}

/* kubelet: writeStatus on the error channel, then conn.Close(): x/net's close frame (1000). */
static int ws_finish(struct rc *r, const char *status, size_t n)
{
    int rc = n ? send_chan(r, RC_ERROR, status, n) : 0;

    send_close(r, WS_NORMAL);
    r->state = RC_OVER;
    return rc;
}

static void ws_free(struct rc *r)
{
    struct ws *w = r->p;

    if (w)
        kedge_buf_cleanup(&w->msg);
    kedge_free(w);
}

static const struct rc_proto ws_proto = {ws_input, ws_output, ws_finish, ws_free};

/* ---- the handshake -------------------------------------------------------------------------- */

/* base64(SHA-1(key + GUID)) into out (RFC 6455 §4.2.2). 0 or -ENOMEM. */
static int accept_key(const char *key, struct kedge_buf *out)
{
    struct kedge_buf in = KEDGE_BUF_INIT;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    int rc = kedge_buf_printf(&in, "%s" WS_GUID, key);

    if (rc == 0 && !EVP_Digest(in.data, in.len, md, &md_len, EVP_sha1(), NULL))
        rc = -ENOMEM;
    if (rc == 0)
        rc = kedge_base64_encode(md, md_len, out);
    kedge_buf_cleanup(&in);
    return rc;
}

/* golang.org/x/net/websocket's refusals: the status line, maybe a header, the error's text. */
static int refuse(struct rc *r, int status, const char *extra, const char *text)
{
    int rc = rc_core_http(&r->fns, r->ctx, status, extra, false, text, strlen(text));

    return rc < 0 ? rc : -EINVAL;
}

static int handshake(struct rc *r, const struct rc_upgrade *u, int *proto)
{
    if (!u->method || strcmp(u->method, "GET"))
        return refuse(r, 405, NULL, "bad method");
    if (!*rc_core_header(u, "Sec-WebSocket-Key"))
        return refuse(r, 400, NULL, "mismatch challenge/response");
    if (strcmp(rc_core_header(u, "Sec-WebSocket-Version"), "13"))
        return refuse(r, 400, "Sec-WebSocket-Version: 13\r\n", "bad protocol version");
    *proto = pick_protocol(rc_core_header(u, "Sec-WebSocket-Protocol"));
    if (*proto < 0) /* wsstream's handshake error: x/net answers 403 with no body */
        return refuse(r, 403, NULL, "");
    return 0;
}

int rc_ws_accept(struct rc *r, const struct rc_upgrade *u)
{
    struct kedge_buf key = KEDGE_BUF_INIT, resp = KEDGE_BUF_INIT;
    struct ws *w;
    int proto, rc = handshake(r, u, &proto);

    if (rc < 0)
        return rc;
    w = kedge_calloc(1, sizeof(*w));
    rc = w ? accept_key(rc_core_header(u, "Sec-WebSocket-Key"), &key) : -ENOMEM;
    if (rc == 0)
        rc = kedge_buf_printf(&resp,
                              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                              key.data, *protocols[proto].name ? "Sec-WebSocket-Protocol: " : "",
                              protocols[proto].name, *protocols[proto].name ? "\r\n" : "");
    kedge_buf_cleanup(&key);
    if (rc < 0) {
        kedge_buf_cleanup(&resp);
        kedge_free(w);
        (void)rc_core_http(&r->fns, r->ctx, 500, NULL, false, NULL, 0);
        return rc;
    }
    w->base64 = protocols[proto].base64;
    r->p = w;
    r->proto = &ws_proto;
    r->version = protocols[proto].version;
    r->fns.send(r->ctx, resp.data, resp.len);
    kedge_buf_cleanup(&resp);
    /* createWebSocketStreams: an empty message on the lowest writable channel says the
     * connection is up (kubectl < 1.30's websocket clients wait for it), then the process runs. */
    (void)send_chan(r, r->o.out ? RC_STDOUT : r->o.err ? RC_STDERR : RC_ERROR, NULL, 0);
    rc_core_ready(r);
    return 0;
}
