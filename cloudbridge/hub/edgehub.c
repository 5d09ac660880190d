/* EdgeHub: the websocket link to cloudcore's CloudHub (docs/kubeedge-wire.md §4).
 *
 * wss://{cloud}:{port}/{projectID}/{node}/events with the headers CloudHub needs (node_id,
 * project_id, and ConnectionUse: msg, without which it never reads us), mutual TLS from the
 * CA/cert/key files, one JSON message per text frame with a trailing newline, fragmented
 * frames reassembled up to max_frame_bytes.
 *
 * Liveness: the application keepalive CloudHub wants every keepalive_s, plus websocket pings
 * after ping_idle_s of silence; lws hangs up after dead_link_s without valid traffic, so a
 * cloud that stops reading with the TCP connection still open is noticed. Every close or
 * error goes through one place that schedules a reconnect with capped exponential backoff
 * and jitter.
 *
 * The first keepalive goes one keepalive_s after the connection, not at once: CloudHub makes
 * the node's session on its own goroutine after the upgrade (handler/message_handler.go
 * HandleConnection) while another already reads the socket, so a keepalive sent at once can
 * arrive first and be dropped ("session not found", message_dispatcher.go). Nothing is lost
 * by waiting: the session's keepalive deadline starts when the session does
 * (node_session.go KeepAliveCheck), and everything else the edge sends goes to the
 * controllers, which need no session.
 *
 * Stopping: edgehub_close sends a websocket close frame (1000, normal closure) so CloudHub
 * reads a clean close instead of an abnormal one (1006, "unexpected EOF"); the caller runs the
 * loop until edgehub_closed or its own deadline.
 *
 * Sending: acks first (they unblock the cloud), then the cloud queue in id order through the rate
 * limit. A twin/state message leaves the queue once the device controller's response names
 * it (cloudq.c). Anything else gets no answer from CloudHub, so "delivered" is proved with
 * the websocket itself: after writing such entries a PING goes out
 * ("kedge-outbox:<entries written on this link>:<highest fire id written>"), and its PONG, which
 * the cloud can only send once it has read every frame before the PING, removes them
 * (cloudq_delivered). One PING is in flight at a time, because an lws peer drops a PING while a
 * PONG is pending; one unanswered for PONG_WAIT_MS is sent again. A link that breaks first sends
 * them again on the next one. PINGs follow confirm entries too: a PONG proves the cloud read them
 * without choking.
 *
 * Poison: when the cloud closes the link on entries it read and did not take, or answers one
 * with "error", blame.c finds the entry to blame (blame.h says how); EdgeHub tells it what
 * happened and, in probe mode, writes one entry at a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blame.h"
#include "dialer.h"
#include "edgehub.h"
#include "fault.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/msg.h"
#include "kedge/util.h"
#include "ratelimit.h"

#define PING_PREFIX "kedge-outbox:"
#define PONG_WAIT_MS 5000

struct direct_msg {
    char *data;
    size_t len;
};

#define MAX_LISTENERS 4

struct link_listener {
    edgehub_link_fn fn;
    void *ctx;
};

struct edgehub {
    struct edgehub_config cfg;
    struct lws_context *lws;
    struct cloudq *q;
    struct router *router;
    struct link_listener listeners[MAX_LISTENERS];
    size_t n_listeners;
    bool stopping;
    struct dialer dial; /* TLS client identity (remade when the files change), back-off */
    struct lws *wsi;
    lws_retry_bo_t idle_policy; /* pings and hang-up; reconnects are ours */
    lws_sorted_usec_list_t sul_connect, sul_keepalive, sul_kick;
    bool connected, keepalive_due;
    bool closing; /* stopping: the next writeable sends the close frame */
    struct kedge_buf rx;
    bool rx_too_big;
    struct direct_msg *direct;
    size_t n_direct;
    int64_t cursor; /* highest queue id sent on this connection */
    /* entries written on this connection are numbered (written); a PONG proves the cloud read
     * them up to a number (proven). fire_sent: the highest fire entry id written, fire_read
     * the highest proved; ping_serial: the number the PING in flight covers (0 = none), sent
     * at ping_ms */
    uint64_t written, proven, ping_serial;
    int64_t fire_sent, fire_read;
    uint64_t ping_ms;
    int64_t last_id; /* the entry written last */
    bool redialing;  /* our own close (new certificate): nobody to blame */
    struct blame blame;
    struct ratelimit rl;
    uint64_t reconnects; /* links opened after the first one of this run */
    bool ever_connected;
    int64_t last_keepalive_ms, last_delivery_ms;
    struct kedge_ratelimit bad_rl;
};

static void schedule_connect(struct edgehub *eh, const char *why);
static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len);

/* ---- sending ----------------------------------------------------------------------------- */

/* One text frame: JSON + "\n" (viaduct's encoder framing). Returns 0 or -1 (link broken). */
static int write_frame(struct edgehub *eh, const char *json, size_t len)
{
    unsigned char *buf = kedge_malloc(LWS_PRE + len + 1);
    int n;

    if (!buf)
        return -1;
    memcpy(buf + LWS_PRE, json, len);
    buf[LWS_PRE + len] = '\n';
    n = lws_write(eh->wsi, buf + LWS_PRE, len + 1, LWS_WRITE_TEXT);
    kedge_free(buf);
    return n < (int)(len + 1) ? -1 : 0;
}

/* A message of the hub's own (keepalive, ack) given a fresh msg_id and encoded into b. */
static int encode_own(struct kedge_msg *m, struct kedge_buf *b)
{
    int rc = kedge_msg_new_id(m);

    if (rc == 0)
        rc = kedge_msg_encode(b, m, false);
    kedge_free(m->msg_id);
    m->msg_id = NULL;
    return rc;
}

static int send_keepalive(struct edgehub *eh)
{
    struct kedge_msg m = {0};
    struct kedge_buf b = KEDGE_BUF_INIT;
    int rc;

    /* docs/kubeedge-wire.md §4.6: a normal message, not a websocket ping */
    m.source = "websocket";
    m.group = "resource";
    m.operation = "keepalive";
    m.resource = "node";
    m.content = "\"ping\"";
    m.content_len = 6;
    rc = encode_own(&m, &b);
    if (rc == 0)
        rc = write_frame(eh, b.data, b.len);
    kedge_buf_cleanup(&b);
    return rc;
}

static void kick_cb(lws_sorted_usec_list_t *sul)
{
    struct edgehub *eh = lws_container_of(sul, struct edgehub, sul_kick);

    if (eh->wsi && eh->connected)
        lws_callback_on_writable(eh->wsi);
}

/* A PING after the entries written so far, when none is in flight (or the last one was not
 * answered in time). Returns 1 if one went, 0 if none was due, -1 on a broken link. */
static int maybe_ping(struct edgehub *eh, uint64_t now)
{
    unsigned char buf[LWS_PRE + 80];
    int n;

    if (eh->written <= eh->proven)
        return 0; /* everything written has been read */
    if (eh->ping_serial && now - eh->ping_ms < PONG_WAIT_MS)
        return 0; /* its PONG is on the way; the next PING covers the rest */
    n = snprintf((char *)buf + LWS_PRE, 80, PING_PREFIX "%llu:%lld",
                 (unsigned long long)eh->written, (long long)eh->fire_sent);
    if (lws_write(eh->wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_PING) < n)
        return -1;
    eh->ping_serial = eh->written;
    eh->ping_ms = now;
    return 1;
}

/* A PONG: "kedge-outbox:<serial>:<fire id>" proves the cloud read every entry written before
 * that PING. Others (lws's own idle pings) are not ours. */
static void on_pong(struct edgehub *eh, const char *in, size_t len)
{
    size_t plen = strlen(PING_PREFIX);
    char text[64];
    unsigned long long serial;
    long long id;
    char *end;
    int n;

    if (len <= plen || len - plen >= sizeof(text) || memcmp(in, PING_PREFIX, plen))
        return;
    memcpy(text, in + plen, len - plen);
    text[len - plen] = '\0';
    serial = strtoull(text, &end, 10);
    if (*end != ':')
        return;
    id = strtoll(end + 1, &end, 10);
    if (*end || serial == 0 || serial > eh->written || id < 0 || id > eh->fire_sent)
        return;
    if (serial == eh->ping_serial)
        eh->ping_serial = 0;
    if (serial > eh->proven)
        eh->proven = serial;
    if (id > eh->fire_read) {
        n = cloudq_delivered(eh->q, id);
        if (n < 0)
            return; /* logged; the next PONG tries again */
        eh->fire_read = id;
        if (n > 0)
            eh->last_delivery_ms = kedge_wall_ms();
    }
    if (eh->blame.probe_upto && eh->proven == eh->written && eh->last_id >= eh->blame.probe_upto)
        blame_end_probe(&eh->blame, "every entry in doubt was read");
    edgehub_kick(eh); /* the next PING, for what was written meanwhile */
}

/* Send one thing; returns 1 if more may be waiting, 0 if idle, -1 on a broken link. */
static int send_one(struct edgehub *eh)
{
    struct cloudq_entry e;
    uint64_t wait;
    int rc;

    if (eh->keepalive_due) {
        eh->keepalive_due = false;
        if (send_keepalive(eh) < 0)
            return -1;
        eh->last_keepalive_ms = kedge_wall_ms();
        return 1;
    }
    if (eh->n_direct) {
        struct direct_msg d = eh->direct[0];
        memmove(eh->direct, eh->direct + 1, --eh->n_direct * sizeof(*eh->direct));
        rc = write_frame(eh, d.data, d.len);
        kedge_free(d.data);
        return rc < 0 ? -1 : 1;
    }
    rc = maybe_ping(eh, kedge_now_ms());
    if (rc)
        return rc;
    if (eh->blame.probe_upto && eh->written > eh->proven)
        return 0; /* probing: the next entry waits for the PONG of the one in doubt */
    rc = cloudq_next(eh->q, eh->cursor, (uint64_t)eh->cfg.resend_s * 1000, &e);
    if (rc == 0)
        blame_end_probe(&eh->blame, "nothing in doubt left to send");
    if (rc <= 0)
        return 0;
    if (eh->blame.probe_upto && e.id > eh->blame.probe_upto && !e.resend)
        blame_end_probe(&eh->blame, "every entry in doubt was read");
    wait = ratelimit_take(&eh->rl, kedge_now_ms());
    if (wait) {
        cloudq_entry_cleanup(&e);
        lws_sul_schedule(eh->lws, 0, &eh->sul_kick, kick_cb, (lws_usec_t)wait * 1000);
        return 0;
    }
    rc = write_frame(eh, e.msg, e.len);
    if (rc == 0) {
        fault_point(FAULT_AFTER_SEND); /* test-only: on the link, still in the cloud queue */
        (void)cloudq_sent(eh->q, &e);
        if (e.kind == CLOUDQ_FIRE && e.id > eh->fire_sent)
            eh->fire_sent = e.id; /* every fire entry up to it is on this link */
        if (e.id > eh->cursor)
            eh->cursor = e.id;
        eh->written++;
        eh->last_id = e.id;
    }
    cloudq_entry_cleanup(&e);
    return rc < 0 ? -1 : 1;
}

int edgehub_send_direct(struct edgehub *eh, const char *json, size_t len)
{
    struct direct_msg *nd;
    char *copy;

    if (!eh->connected)
        return -ENOTCONN;
    copy = kedge_strndup(json, len);
    nd = copy ? kedge_realloc(eh->direct, (eh->n_direct + 1) * sizeof(*nd)) : NULL;
    if (!nd) {
        kedge_free(copy);
        return -ENOMEM;
    }
    eh->direct = nd;
    eh->direct[eh->n_direct].data = copy;
    eh->direct[eh->n_direct].len = len;
    eh->n_direct++;
    edgehub_kick(eh);
    return 0;
}

int edgehub_ack(struct edgehub *eh, const struct kedge_msg *cloud)
{
    struct kedge_msg m = {0};
    struct kedge_buf b = KEDGE_BUF_INIT;
    int rc;

    /* MetaManager's ack (docs/kubeedge-wire.md §5.2): route copied, operation response, content
     * "OK" */
    m.parent_msg_id = cloud->msg_id;
    m.source = cloud->source;
    m.group = cloud->group;
    m.operation = "response";
    m.resource = cloud->resource;
    m.content = "\"OK\"";
    m.content_len = 4;
    rc = encode_own(&m, &b);
    if (rc == 0)
        rc = edgehub_send_direct(eh, b.data, b.len);
    if (rc < 0)
        kedge_log_limited(&eh->bad_rl, "edgehub", KEDGE_LOG_WARN,
                          "edgehub: ack for %s not sent (%s); the cloud resends", cloud->msg_id,
                          rc == -ENOTCONN ? "link down" : kedge_strerror(rc));
    kedge_buf_cleanup(&b);
    return rc;
}

void edgehub_kick(struct edgehub *eh)
{
    if (eh && eh->wsi && eh->connected)
        lws_callback_on_writable(eh->wsi);
}

static void keepalive_cb(lws_sorted_usec_list_t *sul)
{
    struct edgehub *eh = lws_container_of(sul, struct edgehub, sul_keepalive);

    if (!eh->connected)
        return;
    eh->keepalive_due = true;
    edgehub_kick(eh);
    lws_sul_schedule(eh->lws, 0, &eh->sul_keepalive, keepalive_cb,
                     (lws_usec_t)eh->cfg.keepalive_s * LWS_USEC_PER_SEC);
}

/* ---- receiving --------------------------------------------------------------------------- */

/* A resource addressed to another node ("node/{other}/...") is not ours. */
static bool for_other_node(const struct edgehub *eh, const struct kedge_msg *m)
{
    const char *r = m->resource, *node = eh->cfg.node_name;
    size_t n = strlen(node);

    if (!r || strncmp(r, "node/", 5) || !strcmp(r, "node/connection"))
        return false;
    return strncmp(r + 5, node, n) != 0 || (r[5 + n] != '/' && r[5 + n] != '\0');
}

/* An "error" answer naming one of our entries: acked like any message, counted by blame.c. */
static void on_error_answer(struct edgehub *eh, const struct kedge_msg *m)
{
    if (router_needs_ack(eh->router, m))
        (void)edgehub_ack(eh, m); /* logged there when not sent; the cloud sends it again */
    if (blame_error_answer(&eh->blame, m) >= 0)
        edgehub_kick(eh);
}

static void handle_message(struct edgehub *eh, const char *buf, size_t len)
{
    struct kedge_msg m;
    int rc = kedge_msg_decode(buf, len, &m);

    if (rc < 0) {
        kedge_log_limited(&eh->bad_rl, "edgehub", KEDGE_LOG_WARN,
                          "edgehub: dropped a cloud frame that is not a message (%s)",
                          kedge_errname(rc));
        return;
    }
    if (for_other_node(eh, &m)) {
        kedge_log_limited(&eh->bad_rl, "edgehub", KEDGE_LOG_WARN,
                          "edgehub: dropped a message for another node resource=%s", m.resource);
        goto out;
    }
    /* the device controller's answer to a twin/state message (docs/kubeedge-wire.md §2.9) */
    if (m.parent_msg_id && *m.parent_msg_id && m.operation && !strcmp(m.operation, "response") &&
        m.group && !strcmp(m.group, "twin")) {
        if (cloudq_confirmed(eh->q, m.parent_msg_id) > 0) {
            eh->last_delivery_ms = kedge_wall_ms();
            edgehub_kick(eh);
        }
        goto out;
    }
    /* the cloud refused an entry (beehive model.ResponseErrorOperation) */
    if (m.parent_msg_id && *m.parent_msg_id && m.operation && !strcmp(m.operation, "error")) {
        on_error_answer(eh, &m);
        goto out;
    }
    rc = router_dispatch(eh->router, &m);
    if (rc < 0)
        kedge_log_limited(&eh->bad_rl, "edgehub", KEDGE_LOG_WARN,
                          "edgehub: dropped cloud message group=%s operation=%s resource=%s: %s",
                          m.group ? m.group : "", m.operation ? m.operation : "",
                          m.resource ? m.resource : "",
                          rc == KEDGE_ESCHEMA ? "no handler for it, or not a message it takes"
                                              : kedge_strerror(rc));
out:
    kedge_msg_cleanup(&m);
}

static void on_receive(struct edgehub *eh, struct lws *wsi, const void *in, size_t len)
{
    if (lws_is_first_fragment(wsi)) {
        kedge_buf_reset(&eh->rx);
        eh->rx_too_big = false;
    }
    if (!eh->rx_too_big) {
        if (eh->rx.len + len > (size_t)eh->cfg.max_frame_bytes) {
            eh->rx_too_big = true;
            kedge_log_limited(&eh->bad_rl, "edgehub", KEDGE_LOG_WARN,
                              "edgehub: dropped a cloud message over max_frame_bytes=%ld",
                              eh->cfg.max_frame_bytes);
            kedge_buf_cleanup(&eh->rx);
        } else if (kedge_buf_append(&eh->rx, in, len) < 0) {
            eh->rx_too_big = true;
            kedge_log(KEDGE_LOG_ERR, "edgehub: out of memory reading a cloud message");
        }
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
        return;
    if (!eh->rx_too_big)
        handle_message(eh, eh->rx.data, eh->rx.len);
    kedge_buf_reset(&eh->rx);
}

/* ---- connection lifecycle ------------------------------------------------------------------- */

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* The link ended with entries written and not proven read: blame.c judges it. Not when we
 * closed it ourselves. */
static void judge_failure(struct edgehub *eh)
{
    if (eh->closing || eh->redialing || eh->stopping || eh->written <= eh->proven)
        return;
    blame_link_failed(&eh->blame, eh->written - eh->proven, eh->last_id, eh->cursor);
}

static void notify_link(struct edgehub *eh, bool connected)
{
    size_t i;

    for (i = 0; i < eh->n_listeners; i++)
        eh->listeners[i].fn(eh->listeners[i].ctx, connected);
}

static void link_down(struct edgehub *eh, const char *why)
{
    bool was = eh->connected;

    if (was)
        judge_failure(eh);
    eh->connected = false;
    eh->wsi = NULL;
    lws_sul_cancel(&eh->sul_keepalive);
    lws_sul_cancel(&eh->sul_kick);
    while (eh->n_direct)
        kedge_free(eh->direct[--eh->n_direct].data);
    if (was)
        notify_link(eh, false);
    if (!eh->stopping)
        schedule_connect(eh, why);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_vhost *vh = wsi ? lws_get_vhost(wsi) : NULL;
    struct edgehub *eh = vh ? lws_vhost_user(vh) : NULL; /* the TLS vhost's: dialer.h */
    int rc;

    if (!eh)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in, *end = *p + len;
        /* CloudHub reads identity from these, not from the path (docs/kubeedge-wire.md §4.2) */
        if (add_header(wsi, "node_id:", eh->cfg.node_name, p, end) ||
            add_header(wsi, "project_id:", eh->cfg.project_id, p, end) ||
            add_header(wsi, "ConnectionUse:", "msg", p, end))
            return -1;
        break;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        eh->connected = true;
        eh->closing = false;
        eh->dial.attempts = 0;
        eh->cursor = 0; /* everything still queued goes again, in order */
        eh->fire_sent = eh->fire_read = eh->last_id = 0;
        eh->written = eh->proven = eh->ping_serial = 0;
        eh->redialing = false;
        cloudq_reset_sent(eh->q);
        blame_link_up(&eh->blame);
        /* the first link of a run is a connection, not a reconnection */
        eh->reconnects += eh->ever_connected;
        eh->ever_connected = true;
        kedge_log(KEDGE_LOG_NOTICE, "edgehub: connected to wss://%s:%ld as node %s",
                  eh->cfg.cloud_host, eh->cfg.cloud_port, eh->cfg.node_name);
        /* not at once: the cloud's session may not exist yet (see the top of this file) */
        lws_sul_schedule(eh->lws, 0, &eh->sul_keepalive, keepalive_cb,
                         (lws_usec_t)eh->cfg.keepalive_s * LWS_USEC_PER_SEC);
        notify_link(eh, true);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        kedge_log(eh->dial.attempts ? KEDGE_LOG_INFO : KEDGE_LOG_WARN,
                  "edgehub: cannot connect to wss://%s:%ld: %s", eh->cfg.cloud_host,
                  eh->cfg.cloud_port, in && len ? (const char *)in : "connection error");
        link_down(eh, "connection error");
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        on_receive(eh, wsi, in, len);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        on_pong(eh, in, len);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (eh->closing) {
            /* lws sends the close frame when we return -1 with a reason set, then waits
             * (bounded) for the cloud's close frame back */
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"edge stopping", 13);
            return -1;
        }
        rc = send_one(eh);
        if (rc < 0)
            return -1; /* lws closes; CLIENT_CLOSED reconnects */
        if (rc > 0)
            lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        kedge_log(eh->closing ? KEDGE_LOG_NOTICE : KEDGE_LOG_WARN, "edgehub: link to the cloud %s",
                  eh->closing ? "closed (stopping)" : "closed");
        link_down(eh, "closed");
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* lws 4.1 hands the client a stale buffer in `in` here (a close 1009 read as 27493,
         * the first bytes of an earlier PONG): its close-payload accessors are right */
        blame_note_close(&eh->blame, lws_get_close_payload(wsi), (size_t)lws_get_close_length(wsi));
        kedge_log(KEDGE_LOG_WARN, "edgehub: the cloud closed the link (%d%s%s)",
                  eh->blame.close_code, eh->blame.close_reason[0] ? " " : "",
                  eh->blame.close_reason);
        break;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        /* lws 4.1 with TLS 1.3: a client certificate the cloud rejects ends here, with no
         * CONNECTION_ERROR; any end of our connection attempt must lead to a retry */
        if (wsi == eh->wsi) {
            kedge_log(KEDGE_LOG_WARN,
                      "edgehub: the connection to wss://%s:%ld ended during the "
                      "handshake (certificate refused?)",
                      eh->cfg.cloud_host, eh->cfg.cloud_port);
            link_down(eh, "handshake ended");
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols edgehub_protocol = {"kedge-edgehub", callback, 0, 0, 0, NULL, 0};

static void connect_cb(lws_sorted_usec_list_t *sul)
{
    struct edgehub *eh = lws_container_of(sul, struct edgehub, sul_connect);
    struct lws_client_connect_info i;
    char path[512];

    if (eh->stopping || eh->wsi)
        return;
    if (dialer_vhost(&eh->dial, eh->lws) < 0) {
        eh->dial.attempts++;
        schedule_connect(eh, NULL);
        return;
    }
    snprintf(path, sizeof(path), "/%s/%s/events", eh->cfg.project_id, eh->cfg.node_name);
    memset(&i, 0, sizeof(i));
    i.context = eh->lws;
    i.vhost = eh->dial.vhost;
    i.address = eh->cfg.cloud_host;
    i.port = (int)eh->cfg.cloud_port;
    i.ssl_connection = LCCSCF_USE_SSL;
    i.path = path;
    i.host = eh->cfg.cloud_host;
    i.origin = eh->cfg.cloud_host;
    i.local_protocol_name = edgehub_protocol.name;
    i.retry_and_idle_policy = &eh->idle_policy;
    i.pwsi = &eh->wsi;
    eh->dial.attempts++;
    if (!lws_client_connect_via_info(&i)) {
        eh->wsi = NULL;
        schedule_connect(eh, "connect failed");
    }
}

static void schedule_connect(struct edgehub *eh, const char *why)
{
    uint64_t d = dialer_backoff_ms(&eh->dial);

    if (why)
        kedge_log(KEDGE_LOG_INFO, "edgehub: reconnecting in %llu ms (%s)", (unsigned long long)d,
                  why);
    lws_sul_schedule(eh->lws, 0, &eh->sul_connect, connect_cb, (lws_usec_t)d * 1000);
}

int edgehub_new(const struct edgehub_config *cfg, struct lws_context *lws, struct cloudq *q,
                struct router *r, struct edgehub **out)
{
    struct edgehub *eh = kedge_calloc(1, sizeof(*eh));
    struct kedge_ratelimit rl = KEDGE_RATELIMIT_INIT(10000, 20);

    *out = NULL;
    if (!eh)
        return -ENOMEM;
    eh->cfg = *cfg;
    eh->lws = lws;
    eh->q = q;
    eh->router = r;
    eh->bad_rl = rl;
    eh->dial = (struct dialer){.who = "edgehub",
                               .ca_file = cfg->tls_ca_file,
                               .cert_file = cfg->tls_cert_file,
                               .key_file = cfg->tls_key_file,
                               .protocol = &edgehub_protocol,
                               .user = eh,
                               .backoff_initial_ms = cfg->backoff_initial_ms,
                               .backoff_max_ms = cfg->backoff_max_ms};
    blame_init(&eh->blame, q);
    eh->idle_policy.secs_since_valid_ping = (uint16_t)cfg->ping_idle_s;
    eh->idle_policy.secs_since_valid_hangup = (uint16_t)cfg->dead_link_s;
    ratelimit_init(&eh->rl, cfg->cloud_qps, cfg->cloud_burst);
    srand((unsigned)kedge_now_ns());
    *out = eh;
    return 0;
}

int edgehub_on_link(struct edgehub *eh, edgehub_link_fn fn, void *ctx)
{
    if (eh->n_listeners == MAX_LISTENERS)
        return -ENOMEM;
    eh->listeners[eh->n_listeners].fn = fn;
    eh->listeners[eh->n_listeners].ctx = ctx;
    eh->n_listeners++;
    return 0;
}

void edgehub_start(struct edgehub *eh)
{
    connect_cb(&eh->sul_connect);
}

bool edgehub_connected(const struct edgehub *eh)
{
    return eh && eh->connected;
}

void edgehub_stop(struct edgehub *eh)
{
    if (!eh)
        return;
    eh->stopping = true;
    lws_sul_cancel(&eh->sul_connect);
    lws_sul_cancel(&eh->sul_keepalive);
    lws_sul_cancel(&eh->sul_kick);
}

bool edgehub_close(struct edgehub *eh)
{
    if (!eh || !eh->wsi || !eh->connected)
        return false;
    eh->closing = true;
    lws_callback_on_writable(eh->wsi);
    return true;
}

bool edgehub_closed(const struct edgehub *eh)
{
    return !eh || !eh->wsi;
}

void edgehub_stats(const struct edgehub *eh, struct edgehub_stats *st)
{
    st->connected = eh->connected;
    st->reconnects = eh->reconnects;
    st->last_keepalive_ms = eh->last_keepalive_ms;
    st->last_delivery_ms = eh->last_delivery_ms;
    st->probing = eh->blame.probe_upto != 0;
}

void edgehub_redial(struct edgehub *eh)
{
    if (eh->wsi) {
        eh->redialing = true;
        lws_set_timeout(eh->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
    }
    eh->dial.attempts = 0;
}

void edgehub_free(struct edgehub *eh)
{
    if (!eh)
        return;
    while (eh->n_direct)
        kedge_free(eh->direct[--eh->n_direct].data);
    kedge_free(eh->direct);
    kedge_buf_cleanup(&eh->rx); /* the vhost goes with the lws context */
    kedge_free(eh);
}
