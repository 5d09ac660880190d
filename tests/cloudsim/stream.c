/* stream.c: cloudcore's CloudStream tunnel server (cloud/pkg/cloudstream/tunnelserver.go,
 * session.go) for kedge-cloudsim.
 *
 * wss on --tunnel-port with CloudHub's certificate and CA (cloudcore falls back to cloudHub's
 * when no tlsTunnel* files exist), a client certificate required. The edge connects to
 * /v1/kubeedge/connect with SessionHostNameOverride (the session's key) and SessionInternalIP.
 * Frames are pkg/stream's: uvarint(connectID) uvarint(type) data, TEXT frames only (cloudcore
 * ends the session on any other type); they go to the API server's connections (streamapi.c).
 * A new tunnel of the same node replaces the old one's entry, as cloudcore's map does.
 * Not modelled: updating the Node's kubeletEndpoint port (the test's "API server" dials the
 * stream port itself).
 */
#include <errno.h>
#include <string.h>

#include <openssl/x509.h>

#include "kedge/alloc.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "frame.h"
#include "streampriv.h"

/* ---- frames ------------------------------------------------------------------------------ */

int cstream_send(struct tsess *s, uint64_t id, int type, const void *data, size_t len)
{
    unsigned char head[STREAM_FRAME_HEAD_MAX];
    size_t h = stream_frame_head(head, id, (uint64_t)type);
    struct tframe *f;

    f = kedge_malloc(sizeof(*f) + LWS_PRE + h + len);
    if (!f)
        return -ENOMEM;
    f->next = NULL;
    f->len = h + len;
    memcpy(f->buf + LWS_PRE, head, h);
    if (len)
        memcpy(f->buf + LWS_PRE + h, data, len);
    if (s->tail)
        s->tail->next = f;
    else
        s->head = f;
    s->tail = f;
    lws_callback_on_writable(s->wsi);
    return 0;
}

static void drop_frames(struct tsess *s)
{
    while (s->head) {
        struct tframe *f = s->head;
        s->head = f->next;
        kedge_free(f);
    }
    s->tail = NULL;
}

/* ---- sessions ---------------------------------------------------------------------------- */

/* The session kube-apiserver's request reaches: cloudcore finds it by the pod's node; the model
 * serves one edge, the one that connected last. */
struct tsess *cstream_session_for(struct cstream *cs)
{
    return cs->sessions;
}

void cstream_unthrottle(struct tsess *s)
{
    struct aconn *a;

    if (!s || !s->throttled)
        return;
    for (a = s->cs->conns; a; a = a->next)
        if (a->sess == s && a->out.len - a->out_off > CS_API_HIGH / 4)
            return;
    s->throttled = false;
    lws_rx_flow_control(s->wsi, 1);
}

static void throttle_if_full(struct tsess *s)
{
    struct aconn *a;

    for (a = s->cs->conns; a; a = a->next)
        if (a->sess == s && a->out.len - a->out_off > CS_API_HIGH && !s->throttled) {
            s->throttled = true;
            lws_rx_flow_control(s->wsi, 0);
        }
}

static int header(struct lws *wsi, const char *name, char *out, size_t n)
{
    int len = lws_hdr_custom_copy(wsi, out, (int)n, name, (int)strlen(name));

    if (len < 0)
        out[0] = '\0';
    return len < 0 ? -1 : 0;
}

static int session_open(struct cstream *cs, struct tsess *s, struct lws *wsi)
{
    char uri[128];

    memset(s, 0, sizeof(*s));
    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0 ||
        strcmp(uri, "/v1/kubeedge/connect")) {
        kedge_log(KEDGE_LOG_WARN, "cloudsim: stream: a tunnel to %s refused (not the path)", uri);
        return -1;
    }
    s->cs = cs;
    s->wsi = wsi;
    (void)header(wsi, "sessionhostnameoverride:", s->node, sizeof(s->node));
    if (header(wsi, "sessioninternalip:", s->ip, sizeof(s->ip)) < 0 || !*s->ip)
        snprintf(s->ip, sizeof(s->ip), "(remote address)");
    s->next = cs->sessions;
    cs->sessions = s;
    cs->tunnels_total++;
    kedge_log(KEDGE_LOG_NOTICE,
              "cloudsim: stream: get a new tunnel agent hostname %s, internalIP %s", s->node,
              s->ip);
    return 0;
}

static void session_closed(struct cstream *cs, struct tsess *s)
{
    struct tsess **pp;

    for (pp = &cs->sessions; *pp && *pp != s; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = s->next;
    cstream_api_session_gone(cs, s);
    drop_frames(s);
    kedge_buf_cleanup(&s->rx);
    kedge_log(KEDGE_LOG_NOTICE, "cloudsim: stream: tunnel of %s closed", s->node);
}

static int on_frame(struct cstream *cs, struct tsess *s)
{
    struct stream_frame f;

    if (stream_frame_decode(s->rx.data, s->rx.len, &f) < 0) {
        kedge_log(KEDGE_LOG_WARN, "cloudsim: stream: a frame with a broken head: session ends");
        return -1; /* cloudcore: Read message from tunnel error, Serve returns */
    }
    if (f.type == CS_DATA || f.type == CS_REMOVE)
        cstream_api_frame(cs, s, f.id, (int)f.type, f.data, f.len);
    else
        kedge_log(KEDGE_LOG_INFO, "cloudsim: stream: frame type %llu from the edge ignored",
                  (unsigned long long)f.type);
    throttle_if_full(s);
    return 0;
}

static int on_receive(struct cstream *cs, struct tsess *s, struct lws *wsi, const void *in,
                      size_t len)
{
    if (lws_is_first_fragment(wsi)) {
        kedge_buf_reset(&s->rx);
        if (lws_frame_is_binary(wsi)) {
            kedge_log(KEDGE_LOG_WARN, "cloudsim: stream: Websocket message type must be 1 type");
            return -1;
        }
    }
    /* cloudcore: io.ReadAll(io.LimitReader(r, MaxRespBodyLength)) */
    if (s->rx.len + len > (1u << 20) + 20 || kedge_buf_append(&s->rx, in, len) < 0)
        return -1;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
        return 0;
    return on_frame(cs, s);
}

static int on_writeable(struct tsess *s)
{
    struct tframe *f = s->head;
    int n;

    if (!f)
        return 0;
    s->head = f->next;
    if (!s->head)
        s->tail = NULL;
    n = lws_write(s->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
    kedge_free(f);
    if (n < 0)
        return -1;
    if (s->head)
        lws_callback_on_writable(s->wsi);
    return 0;
}

static int tunnel_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    struct cstream *cs = vh ? lws_vhost_user(vh) : NULL;
    struct tsess *s = user;

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
        /* as hub.c: lws takes our return as the verdict; len is OpenSSL's preverify_ok */
        if (!len) {
            kedge_log(KEDGE_LOG_NOTICE, "cloudsim: stream: rejecting a client certificate: %s",
                      X509_verify_cert_error_string(X509_STORE_CTX_get_error(user)));
            return 1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        if (!cs || cs->stopping)
            return -1;
        return session_open(cs, s, wsi);
    case LWS_CALLBACK_RECEIVE:
        return s->cs ? on_receive(cs, s, wsi, in, len) : 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return s->cs ? on_writeable(s) : 0;
    case LWS_CALLBACK_CLOSED:
        if (s && s->cs)
            session_closed(cs, s);
        return 0;
    default:
        return 0;
    }
}

const struct lws_protocols cstream_tunnel_protocols[] = {
    {"cloudstream", tunnel_callback, sizeof(struct tsess), (size_t)64 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

void cstream_write_state(struct cstream *cs, struct kedge_jw *w)
{
    const struct tsess *s;
    const struct aconn *a;
    int64_t n = 0;

    kedge_jw_obj_open(w);
    kedge_jw_key(w, "tunnels");
    kedge_jw_arr_open(w);
    for (s = cs->sessions; s; s = s->next) {
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "node", s->node);
        kedge_jw_kstr(w, "internal_ip", s->ip);
        kedge_jw_obj_close(w);
    }
    kedge_jw_arr_close(w);
    for (a = cs->conns; a; a = a->next)
        n += a->id != 0;
    kedge_jw_kint(w, "connections", n);
    kedge_jw_kint(w, "connections_total", (int64_t)cs->next_id);
    kedge_jw_kint(w, "tunnels_total", (int64_t)cs->tunnels_total);
    kedge_jw_obj_close(w);
}

void cstream_close_tunnels(struct cstream *cs, const char *reason, struct kedge_jw *w)
{
    struct tsess *s;
    int64_t n = 0;

    /* cloudcore writes the message and returns from its handler; the edge closes */
    for (s = cs->sessions; s; s = s->next)
        n += cstream_send(s, 0, CS_CLOSE, reason, strlen(reason)) == 0;
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "ok");
    kedge_jw_bool(w, true);
    kedge_jw_kint(w, "tunnels", n);
    kedge_jw_obj_close(w);
}

int cstream_new(struct cstream **out)
{
    *out = kedge_calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void cstream_set_context(struct cstream *cs, struct lws_context *ctx)
{
    cs->ctx = ctx;
}

void cstream_stop(struct cstream *cs)
{
    if (cs)
        cs->stopping = true;
}

void cstream_free(struct cstream *cs)
{
    kedge_free(cs); /* sessions and connections went with the lws context */
}
