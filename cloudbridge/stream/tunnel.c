/* tunnel.c: the websocket to cloudcore's tunnel server (tunnel.h).
 *
 * TLS: the node's client certificate from EdgeHub's files, through the same dialer
 * (hub/dialer.h), so a rotated certificate is picked up here too. edgecore skips the server's
 * verification (InsecureSkipVerify in edgestream.go); we verify it against tls_ca_file, as
 * EdgeHub does: cloudcore's tunnel serves cloudHub's certificate when no tlsTunnel* files
 * exist, which is how keadm and /work/shared/cloudcore set it up.
 *
 * Liveness: edgecore pings every 5 s; lws pings after ping_idle_s of silence and hangs up after
 * dead_link_s, with EdgeHub's settings.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dialer.h"
#include "frame.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/log.h"
#include "tunnel.h"

struct qframe {
    struct qframe *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE, then the frame */
};

struct tunnel {
    struct tunnel_config cfg;
    struct lws_context *lws;
    struct tunnel_fns fns;
    struct dialer dial;
    struct lws *wsi;
    lws_retry_bo_t idle_policy;
    lws_sorted_usec_list_t sul_connect;
    bool connected, stopping, closing;
    struct qframe *head, *tail;
    size_t queued;
    bool over; /* above high_water since the last drained */
    struct kedge_buf rx;
    bool rx_too_big;
    uint64_t reconnects;
    bool ever_connected;
    struct kedge_ratelimit rl;
};

static void schedule_connect(struct tunnel *t, const char *why);

/* ---- the outbound queue ------------------------------------------------------------------ */

static int enqueue(struct tunnel *t, uint64_t id, uint64_t type, const char *data, size_t len)
{
    unsigned char head[STREAM_FRAME_HEAD_MAX];
    size_t h = stream_frame_head(head, id, type);
    struct qframe *f = kedge_malloc(sizeof(*f) + LWS_PRE + h + len);

    if (!f)
        return -ENOMEM;
    f->next = NULL;
    f->len = h + len;
    memcpy(f->buf + LWS_PRE, head, h);
    if (len)
        memcpy(f->buf + LWS_PRE + h, data, len);
    if (t->tail)
        t->tail->next = f;
    else
        t->head = f;
    t->tail = f;
    t->queued += f->len;
    if (t->queued > t->cfg.high_water)
        t->over = true;
    return 0;
}

static void drop_queue(struct tunnel *t)
{
    while (t->head) {
        struct qframe *f = t->head;
        t->head = f->next;
        kedge_free(f);
    }
    t->tail = NULL;
    t->queued = 0;
    t->over = false;
}

int tunnel_send(struct tunnel *t, uint64_t id, uint64_t type, const char *data, size_t len)
{
    size_t off = 0;
    int rc;

    if (!t->connected || t->closing)
        return -ENOTCONN;
    do {
        size_t n = len - off;
        if (type == STREAM_DATA && n > STREAM_TUNNEL_DATA_MAX)
            n = STREAM_TUNNEL_DATA_MAX;
        rc = enqueue(t, id, type, data ? data + off : NULL, n);
        if (rc < 0)
            return rc; /* what went stays: the connection's bytes are cut, its handler ends it */
        off += n;
    } while (off < len);
    lws_callback_on_writable(t->wsi);
    return 0;
}

size_t tunnel_queued(const struct tunnel *t)
{
    return t->queued;
}

/* One frame per writable callback. Returns 0, or -1 on a broken link. */
static int write_one(struct tunnel *t)
{
    struct qframe *f = t->head;
    int n;

    if (!f)
        return 0;
    t->head = f->next;
    if (!t->head)
        t->tail = NULL;
    t->queued -= f->len;
    /* TEXT: cloudcore's session ends on any other type (cloud/pkg/cloudstream/session.go),
     * binary payloads included; neither side checks UTF-8 */
    n = lws_write(t->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
    kedge_free(f);
    if (n < 0)
        return -1;
    if (t->head)
        lws_callback_on_writable(t->wsi);
    if (t->over && t->queued <= t->cfg.high_water / 2) {
        t->over = false;
        if (t->fns.drained)
            t->fns.drained(t->fns.ctx);
    }
    return 0;
}

/* ---- receiving --------------------------------------------------------------------------- */

/* Returns -1 to close the link (CLOSE_CONNECT), else 0. */
static int on_frame(struct tunnel *t, const char *b, size_t n)
{
    struct stream_frame f;

    if (stream_frame_decode(b, n, &f) < 0) {
        /* cloudcore drops the whole tunnel on such a frame; one bad frame is not worth that */
        kedge_log_limited(&t->rl, "stream", KEDGE_LOG_WARN,
                          "stream: dropped a tunnel frame with a broken head (%zu bytes)", n);
        return 0;
    }
    if (f.type == STREAM_CLOSE_CONNECT) {
        kedge_log(KEDGE_LOG_WARN, "stream: the cloud closed the tunnel: %.*s",
                  (int)(f.len > 512 ? 512 : f.len), f.data);
        return -1;
    }
    t->fns.frame(t->fns.ctx, &f);
    return 0;
}

static int on_receive(struct tunnel *t, struct lws *wsi, const void *in, size_t len)
{
    if (lws_is_first_fragment(wsi)) {
        kedge_buf_reset(&t->rx);
        t->rx_too_big = false;
    }
    if (!t->rx_too_big) {
        if (t->rx.len + len > STREAM_TUNNEL_RX_MAX || kedge_buf_append(&t->rx, in, len) < 0) {
            t->rx_too_big = true;
            kedge_log_limited(&t->rl, "stream", KEDGE_LOG_WARN,
                              "stream: dropped a tunnel frame over %d bytes (or out of memory)",
                              STREAM_TUNNEL_RX_MAX);
            kedge_buf_cleanup(&t->rx);
        }
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
        return 0;
    if (t->rx_too_big)
        return 0;
    return on_frame(t, t->rx.data ? t->rx.data : "", t->rx.len);
}

/* ---- connection lifecycle ---------------------------------------------------------------- */

static void link_down(struct tunnel *t, const char *why)
{
    bool was = t->connected;

    t->connected = false;
    t->wsi = NULL;
    drop_queue(t);
    kedge_buf_cleanup(&t->rx);
    if (t->stopping)
        return;
    if (was)
        t->fns.link(t->fns.ctx, false);
    schedule_connect(t, why);
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

static void on_established(struct tunnel *t)
{
    t->connected = true;
    t->dial.attempts = 0;
    t->reconnects += t->ever_connected;
    t->ever_connected = true;
    kedge_log(KEDGE_LOG_NOTICE, "stream: tunnel to wss://%s:%ld up as node %s (%s)", t->cfg.host,
              t->cfg.port, t->cfg.node_name, t->cfg.node_ip);
    t->fns.link(t->fns.ctx, true);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_vhost *vh = wsi ? lws_get_vhost(wsi) : NULL;
    struct tunnel *t = vh ? lws_vhost_user(vh) : NULL; /* the dialer's vhost */

    if (!t)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in, *end = *p + len;
        /* pkg/stream's SessionKeyHostNameOverride and SessionKeyInternalIP */
        if (add_header(wsi, "SessionHostNameOverride:", t->cfg.node_name, p, end) ||
            add_header(wsi, "SessionInternalIP:", t->cfg.node_ip, p, end))
            return -1;
        break;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        on_established(t);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        kedge_log(t->dial.attempts > 1 ? KEDGE_LOG_INFO : KEDGE_LOG_WARN,
                  "stream: cannot connect to wss://%s:%ld: %s", t->cfg.host, t->cfg.port,
                  in && len ? (const char *)in : "connection error");
        link_down(t, "connection error");
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (on_receive(t, wsi, in, len) < 0) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"closed", 6);
            return -1; /* CLIENT_CLOSED follows: reconnect later */
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (t->closing) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"edge stopping", 13);
            return -1;
        }
        if (write_one(t) < 0)
            return -1;
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (!t->stopping)
            kedge_log(KEDGE_LOG_WARN, "stream: tunnel to wss://%s:%ld closed", t->cfg.host,
                      t->cfg.port);
        link_down(t, "closed");
        break;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        /* as in edgehub.c: a refused client certificate (TLS 1.3) ends here, no CONNECTION_ERROR */
        if (wsi == t->wsi) {
            kedge_log(KEDGE_LOG_WARN,
                      "stream: the connection to wss://%s:%ld ended during the "
                      "handshake (certificate refused, or no tunnel server?)",
                      t->cfg.host, t->cfg.port);
            link_down(t, "handshake ended");
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols tunnel_protocol = {"kedge-stream", callback, 0, 0, 0, NULL, 0};

static void connect_cb(lws_sorted_usec_list_t *sul)
{
    struct tunnel *t = lws_container_of(sul, struct tunnel, sul_connect);
    struct lws_client_connect_info i;

    if (t->stopping || t->wsi)
        return;
    t->dial.attempts++;
    if (dialer_vhost(&t->dial, t->lws) < 0) {
        schedule_connect(t, NULL);
        return;
    }
    memset(&i, 0, sizeof(i));
    i.context = t->lws;
    i.vhost = t->dial.vhost;
    i.address = t->cfg.host;
    i.port = (int)t->cfg.port;
    i.ssl_connection = LCCSCF_USE_SSL;
    i.path = "/v1/kubeedge/connect";
    i.host = t->cfg.host;
    /* no Origin: gorilla's default CheckOrigin (cloudcore's tunnel upgrader) refuses one whose
     * host is not the Host header, and a bare address parses as a URL without a host */
    i.local_protocol_name = tunnel_protocol.name;
    i.retry_and_idle_policy = &t->idle_policy;
    i.pwsi = &t->wsi;
    if (!lws_client_connect_via_info(&i)) {
        t->wsi = NULL;
        schedule_connect(t, "connect failed");
    }
}

static void schedule_connect(struct tunnel *t, const char *why)
{
    uint64_t d = dialer_backoff_ms(&t->dial);

    if (why)
        kedge_log(KEDGE_LOG_INFO, "stream: reconnecting the tunnel in %llu ms (%s)",
                  (unsigned long long)d, why);
    lws_sul_schedule(t->lws, 0, &t->sul_connect, connect_cb, (lws_usec_t)d * 1000);
}

int tunnel_new(const struct tunnel_config *cfg, struct lws_context *lws,
               const struct tunnel_fns *fns, struct tunnel **out)
{
    struct tunnel *t = kedge_calloc(1, sizeof(*t));
    struct kedge_ratelimit rl = KEDGE_RATELIMIT_INIT(10000, 10);

    *out = NULL;
    if (!t)
        return -ENOMEM;
    t->cfg = *cfg;
    t->lws = lws;
    t->fns = *fns;
    t->rl = rl;
    t->dial = (struct dialer){.who = "stream",
                              .ca_file = cfg->tls_ca_file,
                              .cert_file = cfg->tls_cert_file,
                              .key_file = cfg->tls_key_file,
                              .protocol = &tunnel_protocol,
                              .user = t,
                              .backoff_initial_ms = cfg->backoff_initial_ms,
                              .backoff_max_ms = cfg->backoff_max_ms};
    t->idle_policy.secs_since_valid_ping = (uint16_t)cfg->ping_idle_s;
    t->idle_policy.secs_since_valid_hangup = (uint16_t)cfg->dead_link_s;
    *out = t;
    return 0;
}

void tunnel_start(struct tunnel *t)
{
    connect_cb(&t->sul_connect);
}

void tunnel_stop(struct tunnel *t)
{
    if (!t)
        return;
    t->stopping = true;
    lws_sul_cancel(&t->sul_connect);
    drop_queue(t);
    if (t->wsi && t->connected) {
        t->closing = true;
        lws_callback_on_writable(t->wsi);
    }
}

bool tunnel_connected(const struct tunnel *t)
{
    return t && t->connected;
}

uint64_t tunnel_reconnects(const struct tunnel *t)
{
    return t ? t->reconnects : 0;
}

void tunnel_free(struct tunnel *t)
{
    if (!t)
        return;
    drop_queue(t);
    kedge_buf_cleanup(&t->rx); /* the vhost goes with the lws context */
    kedge_free(t);
}
