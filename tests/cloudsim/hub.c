/* hub.c: CloudHub as the edge sees it on the websocket (docs/kubeedge-wire.md §4, §5).
 *
 * Owns the websocket side of kedge-cloudsim: the lws protocol callback of the wss vhost, one
 * session per node id (a new connection for a node replaces the old one, as
 * session_manager.go AddSession does), the handshake headers, frame reassembly, the keepalive
 * deadline. The per-node outbound queues with cloudcore's ack contract and the logs the control API
 * reads are in hubqueue.c, the control API's view in hubctl.c. What the cloud's controllers
 * *answer* lives in controllers.c; the HTTP API in control.c. TLS (client certificate required and
 * verified) is configured by main.c; the verdict is given here because lws asks protocols[0] for
 * it.
 *
 * Cloudcore behaviours reproduced, with their source:
 *  - ConnectionUse: the cloud's read loop is chosen by that header (viaduct conn/ws.go
 *    ServeConn); anything but "msg" means the edge's frames are never read. We stop reading the
 *    socket (rx flow control), so even keepalives go unseen and the session dies at the
 *    keepalive deadline.
 *  - Keepalive: any upstream message with operation "keepalive" resets the deadline
 *    (node_session.go KeepAliveCheck); none for keepalive-timeout seconds closes the session.
 *    The cloud sends nothing back and no websocket pings.
 *  - Session setup: cloudcore reads a new connection at once but makes its session on another
 *    goroutine (handler/message_handler.go HandleConnection, viaduct server/ws.go). Until the
 *    session exists a keepalive or an ack from the edge is dropped ("session not found",
 *    message_dispatcher.go DispatchUpstream), nothing is sent to the edge and no keepalive
 *    deadline runs; other messages go to the controllers, which need no session. The window
 *    is a scheduling race there (well under a millisecond when idle, longer under load); here
 *    it is --session-setup-ms, counted in /state as session_not_found.
 *  - Closing: the status of the edge's websocket close frame is kept (/state peer_close_code;
 *    0 = the connection ended without one, which Go's websocket reads as 1006).
 *  - Upstream dispatch order (message_dispatcher.go DispatchUpstream): keepalive; any
 *    "response" is only an ack matched by parent_msg_id and never forwarded; "error" is logged;
 *    user uploads go to the router (recorded only); everything else goes to the controllers.
 *  - Downstream: noAckRequired decides (docs/kubeedge-wire.md §5.2). No-ack messages are sent once.
 * Ack-needed ones go through one queue per node whose head is in flight (SendAckMessage handles one
 * message at a time): sent, re-sent with the same msg_id every resend interval, and after 4
 * re-sends without an ack moved to the back of the queue (AddRateLimited), so a lone unacked
 * message is re-sent every interval for ever and a stuck one does not block the rest for ever.
 *    Unlike cloudcore, whose per-node queue dies with the session and is rebuilt by the sync
 *    controller, the queues here outlive connections: unacked messages are re-sent on the next
 *    connect with the same msg_id, and messages queued while no edge is connected wait for it.
 *  - Malformed JSON: cloudcore's ReadJSON fails and the link is closed; the control API's
 *    contract is to log and drop (keep the link). --on-malformed close restores cloudcore's.
 *  - Message size: cloudcore v1.15.4 sets no websocket read limit (viaduct WSLaneWithoutPack
 *    ReadMessage -> gorilla ReadJSON, no SetReadLimit). Ours is --read-limit (64 MiB), above
 *    the edge's largest message (16 MiB of upload plus its envelope); over it the link is closed
 *    with 1009, as a size-limited peer would, so a test can model one.
 *  - Faults (faults.c): a message matching a reject rule is not handled: the link is closed with
 *    1009, or the message is answered with an "error" (model.NewErrorMessage).
 */
#include <errno.h>
#include <string.h>

#include <openssl/x509.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"

#include "hubpriv.h"

/* ---- sessions -------------------------------------------------------------------------------- */

static void keepalive_expired(lws_sorted_usec_list_t *sul);

void hub_keepalive_arm(struct conn *c)
{
    if (!c->live)
        return; /* the deadline starts with the session */
    lws_sul_schedule(c->hub->ctx, 0, &c->keepalive_sul, keepalive_expired,
                     (lws_usec_t)c->hub->cfg->keepalive_timeout_s * LWS_USEC_PER_SEC);
}

/* Close a session without a close frame, as cloudcore's Terminating (conn.Close) does. */
void hub_conn_kill(struct conn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    lws_sul_cancel(&c->keepalive_sul);
    lws_sul_cancel(&c->setup_sul);
    kedge_log(KEDGE_LOG_NOTICE, "cloudsim: closing session=%lu node=%s reason=%s", c->id,
              c->node ? hub_node_label(c->node) : "-", why);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void keepalive_expired(lws_sorted_usec_list_t *sul)
{
    struct conn *c = kedge_container_of(sul, struct conn, keepalive_sul);

    if (c->frozen)
        return; /* a frozen link is the test's to end: thaw re-arms the deadline */
    hub_conn_kill(c, c->reads ? "keepalive timeout"
                              : "keepalive timeout (ConnectionUse is not msg, "
                                "nothing was read)");
}

/* Copy a custom handshake header (lws stores unknown header names lower-cased, with the colon)
 * into a new string; "" when absent. NULL only on -ENOMEM. */
static char *custom_header(struct lws *wsi, const char *name)
{
    int nlen = (int)strlen(name), len = lws_hdr_custom_length(wsi, name, nlen);
    char *v;
    size_t a, z;

    if (len < 0)
        return kedge_strdup("");
    v = kedge_malloc((size_t)len + 1);
    if (!v)
        return NULL;
    if (lws_hdr_custom_copy(wsi, v, len + 1, name, nlen) < 0)
        v[0] = '\0';
    /* trim what HTTP allows around a value */
    a = 0;
    z = strlen(v);
    while (a < z && (v[a] == ' ' || v[a] == '\t'))
        a++;
    while (z > a && (v[z - 1] == ' ' || v[z - 1] == '\t' || v[z - 1] == '\r'))
        z--;
    memmove(v, v + a, z - a);
    v[z - a] = '\0';
    return v;
}

/* The session exists now: its deadline starts and queued messages go. */
static void session_live(lws_sorted_usec_list_t *sul)
{
    struct conn *c = kedge_container_of(sul, struct conn, setup_sul);

    c->live = true;
    hub_keepalive_arm(c);
    if (c->node)
        hub_node_kick(c->node);
}

static int session_open(struct hub *h, struct conn *c, struct lws *wsi)
{
    char *node_id = custom_header(wsi, "node_id:");
    char *project_id = custom_header(wsi, "project_id:");
    char *conn_use = custom_header(wsi, "connectionuse:");
    struct node *n = NULL;
    int rc = -ENOMEM;

    if (!node_id || !project_id || !conn_use)
        goto out;
    n = hub_node_get(h, node_id);
    if (!n)
        goto out;
    c->wsi = wsi;
    c->hub = h;
    c->id = ++h->sessions_total;
    c->reads = strcmp(conn_use, "msg") == 0; /* exact, as Go compares api.UseTypeMessage */
    if (n->conn) {
        struct conn *old = n->conn;
        kedge_log(KEDGE_LOG_WARN, "cloudsim: session exists for node=%s, closing session=%lu",
                  hub_node_label(n), old->id);
        hub_conn_kill(old, "replaced by a new session");
        old->node = NULL;
        n->conn = NULL;
    }
    c->node = n;
    n->conn = c;
    kedge_free(n->project_id);
    kedge_free(n->conn_use);
    n->project_id = project_id;
    n->conn_use = conn_use;
    project_id = conn_use = NULL;
    h->last_node = n;
    n->peer_close_code = 0;

    /* messages queued before any node connected belong to this one */
    hub_fifo_splice(&n->ackq, &h->unbound.ackq);
    hub_fifo_splice(&n->noackq, &h->unbound.noackq);
    lws_sul_cancel(&n->resend_sul);
    if (n->ackq.head) {
        n->ackq.head->sends_round = 0;
        n->head_due = true;
    }

    kedge_log(KEDGE_LOG_NOTICE,
              "cloudsim: session=%lu open node=%s project=%s connection_use=%s%s "
              "pending_acks=%zu pending_noack=%zu",
              c->id, hub_node_label(n), n->project_id, n->conn_use,
              c->reads ? "" : " (edge messages will not be read)", n->ackq.n, n->noackq.n);
    if (!c->reads)
        lws_rx_flow_control(wsi, 0);
    if (h->cfg->session_setup_ms > 0)
        lws_sul_schedule(h->ctx, 0, &c->setup_sul, session_live,
                         (lws_usec_t)h->cfg->session_setup_ms * 1000);
    else
        session_live(&c->setup_sul);
    rc = 0;
out:
    kedge_free(node_id);
    kedge_free(project_id);
    kedge_free(conn_use);
    return rc;
}

static void session_closed(struct conn *c)
{
    struct node *n = c->node;

    lws_sul_cancel(&c->keepalive_sul);
    lws_sul_cancel(&c->setup_sul);
    kedge_buf_cleanup(&c->rx);
    if (n && n->conn == c) {
        n->conn = NULL;
        kedge_log(KEDGE_LOG_NOTICE, "cloudsim: session=%lu closed node=%s pending_acks=%zu", c->id,
                  hub_node_label(n), n->ackq.n);
    } else if (c->id) {
        kedge_log(KEDGE_LOG_INFO, "cloudsim: session=%lu closed (replaced)", c->id);
    }
    c->node = NULL;
}

/* model.NewErrorMessage(m, reason) as CloudHub would send it (source cloudhub, as the UDS
 * server's error answers): a new message whose parent is m, with m's group and resource. */
static int reject_with_error(struct hub *h, const struct node *n, const struct kedge_msg *m)
{
    static const char reason[] = "rejected by cloudsim (fault reject)";
    struct kedge_msg e;
    bool needs_ack;
    int rc = -ENOMEM;

    memset(&e, 0, sizeof(e));
    if ((e.parent_msg_id = kedge_strdup(hub_or_empty(m->msg_id))) &&
        (e.source = kedge_strdup("cloudhub")) && (e.group = kedge_strdup(hub_or_empty(m->group))) &&
        (e.operation = kedge_strdup("error")) &&
        (e.resource = kedge_strdup(hub_or_empty(m->resource))))
        rc = kedge_msg_set_content_string(&e, reason, sizeof(reason) - 1);
    if (rc == 0)
        rc = hub_enqueue(h, n->name, &e, &needs_ack);
    kedge_msg_cleanup(&e);
    return rc;
}

/* A reject rule matched m: 1 when the link is to be closed (1009), else 0 (answered). */
static int reject(struct conn *c, const struct kedge_msg *m, enum fault_action a)
{
    kedge_log(KEDGE_LOG_NOTICE, "cloudsim: fault: rejecting msg_id=%s resource=%s from node=%s: %s",
              hub_or_empty(m->msg_id), hub_or_empty(m->resource), hub_node_label(c->node),
              a == FAULT_CLOSE ? "closing the link (1009)" : "answering with an error");
    if (a == FAULT_CLOSE) {
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
        return 1;
    }
    if (reject_with_error(c->hub, c->node, m) < 0)
        kedge_log(KEDGE_LOG_ERR, "cloudsim: out of memory answering msg_id=%s with an error",
                  hub_or_empty(m->msg_id));
    return 0;
}

/* One complete message from the edge. Returns -1 when the link is to be closed. */
static int handle_frame(struct conn *c)
{
    struct hub *h = c->hub;
    struct node *n = c->node;
    struct kedge_jdoc *doc = NULL;
    struct kedge_msg m;
    enum fault_action fault;
    bool keepalive;
    int rc;

    memset(&m, 0, sizeof(m));
    rc = kedge_json_parse(c->rx.data, c->rx.len, &doc);
    if (rc == 0 && kedge_jdoc_root(doc)->type != KEDGE_JOBJ)
        rc = KEDGE_ESCHEMA;
    if (rc == 0)
        rc = kedge_msg_decode(c->rx.data, c->rx.len, &m);
    if (rc == -ENOMEM) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: out of memory decoding a message session=%lu", c->id);
        kedge_jdoc_free(doc);
        return 0;
    }
    if (rc < 0) {
        h->malformed_total++;
        kedge_log_limited(&h->malformed_rl, "cloudsim", KEDGE_LOG_WARN,
                          "cloudsim: malformed message node=%s session=%lu len=%zu err=%s%s",
                          n ? hub_node_label(n) : "-", c->id, c->rx.len, kedge_errname(rc),
                          h->cfg->close_on_malformed ? ", closing (as cloudcore)" : ", dropped");
        kedge_jdoc_free(doc);
        if (h->cfg->close_on_malformed)
            hub_conn_kill(c, "malformed message");
        return 0;
    }
    if (!n) { /* replaced while this frame was in flight */
        kedge_jdoc_free(doc);
        kedge_msg_cleanup(&m);
        return 0;
    }

    rc = 0;
    keepalive = hub_streq(m.operation, "keepalive");
    hub_rx_log(h, n, kedge_jdoc_root(doc), keepalive);
    kedge_jdoc_free(doc);
    kedge_log(keepalive ? KEDGE_LOG_DEBUG : KEDGE_LOG_INFO,
              "cloudsim: rx node=%s msg_id=%s parent=%s source=%s group=%s op=%s resource=%s",
              hub_node_label(n), hub_or_empty(m.msg_id), hub_or_empty(m.parent_msg_id),
              hub_or_empty(m.source), hub_or_empty(m.group), hub_or_empty(m.operation),
              hub_or_empty(m.resource));
    kedge_log(KEDGE_LOG_DEBUG, "cloudsim: rx content=%.*s", (int)m.content_len, m.content);

    if (!c->live && (keepalive || hub_streq(m.operation, "response"))) {
        n->session_not_found++;
        kedge_log(KEDGE_LOG_WARN,
                  "cloudsim: %s from node=%s before its session exists: dropped (cloudcore: "
                  "session not found for node %s)",
                  keepalive ? "keepalive" : "ack", hub_node_label(n), hub_node_label(n));
    } else if (keepalive) {
        n->last_keepalive_ms = kedge_wall_ms();
        hub_keepalive_arm(c);
    } else if (hub_streq(m.operation, "response")) {
        hub_handle_ack(n, &m); /* never forwarded */
    } else if ((fault = faults_check(h->faults, &m)) != FAULT_NONE) {
        rc = reject(c, &m, fault) ? -1 : 0;
    } else if (hub_streq(m.operation, "error")) {
        kedge_log(KEDGE_LOG_WARN, "cloudsim: error response from node=%s msg_id=%s",
                  hub_node_label(n), hub_or_empty(m.msg_id));
    } else if (hub_streq(m.operation, "upload") && hub_streq(m.group, "user")) {
        /* to the router module: nothing answers */
    } else if (controllers_upstream(h->controllers, h, n->name, &m) < 0) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: out of memory answering msg_id=%s",
                  hub_or_empty(m.msg_id));
    }
    kedge_msg_cleanup(&m);
    return rc;
}

static int on_receive(struct conn *c, const void *in, size_t len)
{
    struct lws *wsi = c->wsi;

    if (!c->reads || c->closing || !c->node)
        return 0; /* never read (the socket is flow-controlled); belt and braces */
    if (lws_is_first_fragment(wsi)) {
        kedge_buf_reset(&c->rx);
        c->rx_overflow = false;
    }
    if (!c->rx_overflow) {
        if (c->rx.len + len > (size_t)c->hub->cfg->read_limit) {
            c->rx_overflow = true;
            kedge_log(KEDGE_LOG_WARN,
                      "cloudsim: message over %ld bytes from node=%s session=%lu, closing",
                      c->hub->cfg->read_limit, hub_node_label(c->node), c->id);
            kedge_buf_cleanup(&c->rx);
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
            return -1;
        }
        if (kedge_buf_append(&c->rx, in, len) < 0) {
            kedge_log(KEDGE_LOG_ERR, "cloudsim: out of memory reassembling session=%lu", c->id);
            return -1;
        }
    }
    if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
        if (handle_frame(c) < 0) {
            kedge_buf_cleanup(&c->rx);
            return -1; /* a reject fault: the close reason is set */
        }
        kedge_buf_reset(&c->rx);
        if (c->rx.cap > (1u << 20)) /* do not keep a big buffer for small messages */
            kedge_buf_cleanup(&c->rx);
    }
    return 0;
}

/* One frame per writeable: the ack head when due, else the next no-ack message. */
static int on_writeable(struct conn *c)
{
    struct node *n = c->node;
    struct out_msg *o = NULL;
    bool head = false;

    if (!n || !hub_conn_can_write(c))
        return 0;
    if (n->head_due && n->ackq.head) {
        o = n->ackq.head;
        head = true;
    } else if (n->noackq.head) {
        o = hub_fifo_pop(&n->noackq);
    }
    if (!o)
        return 0;
    if (lws_write(c->wsi, o->buf + LWS_PRE, o->len, o->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) <
        (int)o->len) {
        kedge_log(KEDGE_LOG_WARN, "cloudsim: write failed node=%s session=%lu", hub_node_label(n),
                  c->id);
        if (!head)
            hub_out_msg_free(o); /* no-ack messages are dropped on failure, as cloudcore does */
        return -1;
    }
    kedge_log(KEDGE_LOG_INFO, "cloudsim: tx node=%s msg_id=%s bytes=%zu%s", hub_node_label(n),
              o->id, o->len, head ? (o->sends_total ? " (resend)" : " (ack needed)") : "");
    if (head) {
        o->sends_round++;
        o->sends_total++;
        n->head_due = false;
        hub_resend_arm(n);
    } else {
        hub_out_msg_free(o);
    }
    if ((n->head_due && n->ackq.head) || n->noackq.head)
        lws_callback_on_writable(c->wsi);
    return 0;
}

static int hub_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    struct hub *h = vh ? lws_vhost_user(vh) : NULL;
    struct conn *c = user;

    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        if (h && h->refuse_until_ms && kedge_now_ms() < h->refuse_until_ms) {
            kedge_log(KEDGE_LOG_INFO, "cloudsim: refusing a connection (link/refuse)");
            return 1;
        }
        return 0;

    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
        /* lws turns *our* return into the verdict (0 = accept) and ignores OpenSSL's own:
         * without this, a certificate from any CA would pass. len = OpenSSL's preverify_ok. */
        if (!len) {
            X509_STORE_CTX *xs = user;
            int err = X509_STORE_CTX_get_error(xs);
            kedge_log(KEDGE_LOG_NOTICE, "cloudsim: rejecting a client certificate: %s",
                      X509_verify_cert_error_string(err));
            return 1;
        }
        return 0;

    case LWS_CALLBACK_ESTABLISHED:
        if (!h || h->stopping)
            return -1;
        if (session_open(h, c, wsi) < 0) {
            kedge_log(KEDGE_LOG_ERR, "cloudsim: out of memory opening a session");
            return -1;
        }
        return 0;

    case LWS_CALLBACK_RECEIVE:
        return c->hub ? on_receive(c, in, len) : 0;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c->hub ? on_writeable(c) : 0;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* in: the close frame's payload, a 2-byte status first (none: 1005, no status) */
        if (c && c->hub && c->node) {
            const unsigned char *b = in;
            c->node->peer_close_code = len >= 2 ? (b[0] << 8) | b[1] : 1005;
            kedge_log(KEDGE_LOG_INFO, "cloudsim: node=%s session=%lu sent a close frame (%d)",
                      hub_node_label(c->node), c->id, c->node->peer_close_code);
        }
        return 0;

    case LWS_CALLBACK_CLOSED:
        if (c && c->hub)
            session_closed(c);
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols hub_protocols[] = {
    {"cloudhub", hub_callback, sizeof(struct conn), (size_t)64 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- lifetime -------------------------------------------------------------------------------- */

int hub_new(const struct cloudsim_config *cfg, const char *ca_pem_path, struct hub **out)
{
    struct hub *h;
    char *pem = NULL;
    size_t len;
    int rc;

    *out = NULL;
    rc = certs_read_file(ca_pem_path, &pem, &len);
    if (rc < 0)
        return rc;
    h = kedge_calloc(1, sizeof(*h));
    if (!h) {
        kedge_free(pem);
        return -ENOMEM;
    }
    h->cfg = cfg;
    h->unbound.hub = h;
    h->malformed_rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(10000, 20);
    rc = controllers_new(pem, cfg->node_grace_s, cfg->cloud_minor, &h->controllers);
    kedge_free(pem);
    if (rc == 0 && faults_new(&h->faults) < 0) {
        controllers_free(h->controllers);
        rc = -ENOMEM;
    }
    if (rc < 0) {
        kedge_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void hub_set_context(struct hub *h, struct lws_context *ctx)
{
    h->ctx = ctx;
}

void hub_set_cstream(struct hub *h, struct cstream *cs)
{
    h->cstream = cs;
}

struct cstream *hub_cstream(struct hub *h)
{
    return h->cstream;
}

struct lws_context *hub_context(struct hub *h)
{
    return h->ctx;
}

void hub_stop(struct hub *h)
{
    struct node *n;

    if (!h)
        return;
    h->stopping = true;
    controllers_stop(h->controllers);
    lws_sul_cancel(&h->unbound.resend_sul);
    for (n = h->nodes; n; n = n->next)
        lws_sul_cancel(&n->resend_sul);
}

void hub_free(struct hub *h)
{
    struct node *n;

    if (!h)
        return;
    while ((n = h->nodes)) {
        h->nodes = n->next;
        hub_node_cleanup(n);
        kedge_free(n);
    }
    hub_node_cleanup(&h->unbound);
    while (h->rx_head) {
        struct rx_entry *e = h->rx_head;
        h->rx_head = e->next;
        kedge_free(e->json);
        kedge_free(e->node);
        kedge_free(e);
    }
    while (h->acked_head) {
        struct id_entry *e = h->acked_head;
        h->acked_head = e->next;
        kedge_free(e->id);
        kedge_free(e);
    }
    controllers_free(h->controllers);
    faults_free(h->faults);
    kedge_free(h);
}
