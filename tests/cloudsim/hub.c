/* hub.c: CloudHub as the edge sees it on the websocket (kubeedge-wire.md §4, §5).
 *
 * Owns the websocket side of kedge-cloudsim: the lws protocol callback of the wss vhost, one
 * session per node id (a new connection for a node replaces the old one, as
 * session_manager.go AddSession does), the handshake headers, frame reassembly, the keepalive
 * deadline, the per-node outbound queues with cloudcore's ack contract, and the logs the control
 * API reads (received messages, acked ids). What the cloud's controllers *answer* lives in
 * controllers.c; the HTTP API in control.c. TLS (client certificate required and verified) is
 * configured by main.c; the verdict is given here because lws asks protocols[0] for it.
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
 *  - Downstream: noAckRequired decides (§5.2). No-ack messages are sent once. Ack-needed ones
 *    go through one queue per node whose head is in flight (SendAckMessage handles one message
 *    at a time): sent, re-sent with the same msg_id every resend interval, and after 4 re-sends
 *    without an ack moved to the back of the queue (AddRateLimited), so a lone unacked message
 *    is re-sent every interval for ever and a stuck one does not block the rest for ever.
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

#define ACK_RETRIES 4     /* node_session.go sendMessageWithRetry: retryCount == 4 */
#define RX_LOG_MAX 100000 /* received-log entries kept (oldest dropped, indexes go on) */
#define ACKED_LOG_MAX 100000

/* ---- types ----------------------------------------------------------------------------------- */

struct out_msg {
    struct out_msg *next;
    char *id;
    unsigned char *buf; /* LWS_PRE bytes of headroom, then the frame (JSON + "\n") */
    size_t len;
    bool needs_ack;
    bool binary;          /* raw frames only (hub_send_raw) */
    unsigned sends_round; /* sends in the current round: 1 + ACK_RETRIES, then requeue */
    unsigned sends_total;
};

struct fifo {
    struct out_msg *head, *tail;
    size_t n;
};

struct conn;

struct node {
    struct node *next;
    struct hub *hub;
    char *name; /* node_id header; NULL for the "first node to connect" queue */
    char *project_id, *conn_use;
    struct conn *conn; /* the current session, or NULL */
    struct fifo ackq;  /* head in flight */
    struct fifo noackq;
    bool head_due; /* the ack head is to be (re)sent at the next writeable */
    int64_t last_keepalive_ms;
    unsigned long session_not_found; /* keepalives and acks that came before the session */
    int peer_close_code;             /* the edge's close frame status on the last session; 0 none */
    lws_sorted_usec_list_t resend_sul;
};

/* lws per-session data of the wss protocol (zeroed by lws, freed by lws after CLOSED). */
struct conn {
    struct lws *wsi;
    struct hub *hub;
    struct node *node; /* NULL once replaced */
    unsigned long id;
    bool reads; /* ConnectionUse: msg */
    bool live;  /* the session exists (after --session-setup-ms) */
    bool frozen, closing;
    bool rx_overflow;
    struct kedge_buf rx;
    lws_sorted_usec_list_t keepalive_sul, setup_sul;
};

struct rx_entry {
    struct rx_entry *next;
    long long index;
    int64_t t_ms;
    char *node;
    char *json;
    size_t len;
    bool keepalive;
};

struct id_entry {
    struct id_entry *next;
    char *id;
};

struct hub {
    const struct cloudsim_config *cfg;
    struct lws_context *ctx;
    struct controllers *controllers;
    struct node *nodes;
    struct node *last_node;
    struct node unbound;
    unsigned long sessions_total;
    unsigned long malformed_total;
    uint64_t refuse_until_ms; /* monotonic; 0 = accepting */
    struct rx_entry *rx_head, *rx_tail;
    size_t rx_n;
    long long rx_next_index;
    struct id_entry *acked_head, *acked_tail;
    size_t acked_n;
    struct kedge_ratelimit malformed_rl;
    struct faults *faults;
    bool stopping;
};

/* ---- small helpers --------------------------------------------------------------------------- */

static bool streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

void cloudsim_resource_type(const char *resource, char *out, size_t out_len)
{
    const char *p = resource ? strchr(resource, '/') : NULL;
    const char *end;
    size_t n;

    out[0] = '\0';
    if (!p)
        return;
    p++;
    end = strchr(p, '/');
    n = end ? (size_t)(end - p) : strlen(p);
    if (n >= out_len)
        return;
    memcpy(out, p, n);
    out[n] = '\0';
}

static void out_msg_free(struct out_msg *o)
{
    if (!o)
        return;
    kedge_free(o->id);
    kedge_free(o->buf);
    kedge_free(o);
}

static void fifo_push(struct fifo *q, struct out_msg *o)
{
    o->next = NULL;
    if (q->tail)
        q->tail->next = o;
    else
        q->head = o;
    q->tail = o;
    q->n++;
}

static struct out_msg *fifo_pop(struct fifo *q)
{
    struct out_msg *o = q->head;

    if (!o)
        return NULL;
    q->head = o->next;
    if (!q->head)
        q->tail = NULL;
    q->n--;
    o->next = NULL;
    return o;
}

/* Append all of src to dst; src is left empty. */
static void fifo_splice(struct fifo *dst, struct fifo *src)
{
    if (!src->head)
        return;
    if (dst->tail)
        dst->tail->next = src->head;
    else
        dst->head = src->head;
    dst->tail = src->tail;
    dst->n += src->n;
    memset(src, 0, sizeof(*src));
}

static void fifo_clear(struct fifo *q)
{
    struct out_msg *o;

    while ((o = fifo_pop(q)))
        out_msg_free(o);
}

/* ---- cloudcore's noAckRequired (message_dispatcher.go) --------------------------------------- */

static bool no_ack_required(const struct kedge_msg *m)
{
    static const char *const contains[] = {"podlist", "membership", "twin/cloud_updated",
                                           "serviceaccounttoken", "k8s/ca.crt"};
    static const char *const volume_ops[] = {
        "createvolume", "deletevolume", "controllerpublishvolume", "controllerunpublishvolume"};
    static const char *const ec_types[] = {"lease", "nodepatch", "podpatch", "podstatus",
                                           "certificatesigningrequest"};
    const char *res = or_empty(m->resource), *op = or_empty(m->operation);
    char type[64];
    size_t i;

    for (i = 0; i < sizeof(contains) / sizeof(contains[0]); i++)
        if (strstr(res, contains[i]))
            return true;
    for (i = 0; i < sizeof(volume_ops) / sizeof(volume_ops[0]); i++)
        if (strcmp(op, volume_ops[i]) == 0)
            return true;
    if (strcmp(op, "applicationResponse") == 0 || streq(m->group, "user") ||
        streq(m->source, "taskmanager") || streq(m->source, "nodeupgradejobcontroller"))
        return true;
    if (strcmp(op, "response") == 0 && m->content_is_string && m->content_str_len == 2 &&
        memcmp(m->content_str, "OK", 2) == 0)
        return true;
    if (streq(m->source, "edgecontroller")) {
        cloudsim_resource_type(res, type, sizeof(type));
        if (strcmp(type, "node") == 0 && strcmp(op, "update") != 0)
            return true;
        for (i = 0; i < sizeof(ec_types) / sizeof(ec_types[0]); i++)
            if (strcmp(type, ec_types[i]) == 0)
                return true;
        if (strcmp(type, "pod") == 0 && strcmp(op, "response") == 0)
            return true;
    }
    return false;
}

/* CloudHub's TrimMessage: node/{id}/rest -> rest (cloud/pkg/cloudhub/common/helper.go). */
static int trim_resource(struct kedge_msg *m)
{
    const char *r = m->resource, *p;
    char *trimmed;

    if (!r || strncmp(r, "node", 4) != 0)
        return 0;
    p = strchr(r, '/');
    p = p ? strchr(p + 1, '/') : NULL;
    if (!p)
        return 0; /* fewer than 3 elements: cloudcore only warns */
    trimmed = kedge_strdup(p + 1);
    if (!trimmed)
        return -ENOMEM;
    kedge_free(m->resource);
    m->resource = trimmed;
    return 0;
}

/* ---- nodes ----------------------------------------------------------------------------------- */

static void resend_due(lws_sorted_usec_list_t *sul);

static struct node *node_find(struct hub *h, const char *name)
{
    struct node *n;

    for (n = h->nodes; n; n = n->next)
        if (strcmp(n->name, name) == 0)
            return n;
    return NULL;
}

static struct node *node_get(struct hub *h, const char *name)
{
    struct node *n = node_find(h, name);

    if (n)
        return n;
    n = kedge_calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->name = kedge_strdup(name);
    if (!n->name) {
        kedge_free(n);
        return NULL;
    }
    n->hub = h;
    n->next = h->nodes;
    h->nodes = n;
    return n;
}

static void node_cleanup(struct node *n)
{
    lws_sul_cancel(&n->resend_sul);
    fifo_clear(&n->ackq);
    fifo_clear(&n->noackq);
    kedge_free(n->name);
    kedge_free(n->project_id);
    kedge_free(n->conn_use);
}

/* The node a control request means: named, else the last to connect, else the queue for
 * whichever node connects first. */
static struct node *target_node(struct hub *h, const char *name)
{
    if (name)
        return node_get(h, name);
    return h->last_node ? h->last_node : &h->unbound;
}

static bool conn_can_write(const struct conn *c)
{
    return c && c->live && !c->frozen && !c->closing;
}

static void node_kick(struct node *n)
{
    if (conn_can_write(n->conn))
        lws_callback_on_writable(n->conn->wsi);
}

static const char *node_label(const struct node *n)
{
    return n->name ? n->name : "(first to connect)";
}

/* ---- queueing -------------------------------------------------------------------------------- */

int hub_enqueue(struct hub *h, const char *node, struct kedge_msg *m, bool *needs_ack)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct out_msg *o;
    struct node *n;
    bool was_empty;

    *needs_ack = false;
    n = target_node(h, node);
    if (!n)
        return -ENOMEM;
    if (trim_resource(m) < 0)
        return -ENOMEM;
    if ((!m->msg_id || !*m->msg_id) && kedge_msg_new_id(m) < 0)
        return -ENOMEM;
    if (!m->timestamp)
        m->timestamp = kedge_wall_ms();
    m->sync = false; /* never on the wire (viaduct conn/ws.go WriteMessageAsync) */

    o = kedge_calloc(1, sizeof(*o));
    if (!o)
        return -ENOMEM;
    o->id = kedge_strdup(m->msg_id);
    if (!o->id || kedge_buf_reserve(&b, LWS_PRE + 256) < 0)
        goto oom;
    b.len = LWS_PRE; /* headroom lws_write needs in front of the payload */
    if (kedge_msg_encode(&b, m, true) < 0)
        goto oom;
    o->buf = (unsigned char *)kedge_buf_take(&b, &o->len);
    if (!o->buf)
        goto oom;
    o->len -= LWS_PRE;
    o->needs_ack = !no_ack_required(m);
    *needs_ack = o->needs_ack;

    if (o->needs_ack) {
        was_empty = !n->ackq.head;
        fifo_push(&n->ackq, o);
        if (was_empty) {
            n->head_due = true;
            o->sends_round = 0;
        }
    } else {
        fifo_push(&n->noackq, o);
    }
    kedge_log(KEDGE_LOG_INFO,
              "cloudsim: queued node=%s msg_id=%s op=%s resource=%s ack=%s pending_acks=%zu",
              node_label(n), o->id, or_empty(m->operation), or_empty(m->resource),
              o->needs_ack ? "needed" : "no", n->ackq.n);
    node_kick(n);
    return 0;
oom:
    kedge_buf_cleanup(&b);
    out_msg_free(o);
    return -ENOMEM;
}

int hub_send_json(struct hub *h, const char *node, const char *json, size_t len, char **msg_id,
                  bool *needs_ack)
{
    struct kedge_msg m;
    char from_resource[256];
    int rc;

    *msg_id = NULL;
    rc = kedge_msg_decode(json, len, &m);
    if (rc < 0)
        return rc;
    /* a cloud-side resource (node/{id}/...) names its node, as it does inside cloudcore */
    if (!node && m.resource && strncmp(m.resource, "node/", 5) == 0) {
        const char *id = m.resource + 5, *end = strchr(id, '/');
        if (end && end > id && (size_t)(end - id) < sizeof(from_resource)) {
            memcpy(from_resource, id, (size_t)(end - id));
            from_resource[end - id] = '\0';
            node = from_resource;
        }
    }
    rc = hub_enqueue(h, node, &m, needs_ack);
    if (rc == 0)
        rc = controllers_downstream(h->controllers, &m);
    if (rc == 0 && !(*msg_id = kedge_strdup(m.msg_id)))
        rc = -ENOMEM;
    kedge_msg_cleanup(&m);
    return rc;
}

int hub_send_raw(struct hub *h, const char *node, const char *data, size_t len, bool binary)
{
    struct node *n = target_node(h, node);
    struct out_msg *o;

    if (!n)
        return -ENOMEM;
    o = kedge_calloc(1, sizeof(*o));
    if (!o || !(o->id = kedge_strdup("(raw)")) || !(o->buf = kedge_malloc(LWS_PRE + len + 1))) {
        out_msg_free(o);
        return -ENOMEM;
    }
    if (len)
        memcpy(o->buf + LWS_PRE, data, len);
    o->len = len;
    o->binary = binary;
    fifo_push(&n->noackq, o);
    kedge_log(KEDGE_LOG_INFO, "cloudsim: queued node=%s raw %s frame bytes=%zu", node_label(n),
              binary ? "binary" : "text", len);
    node_kick(n);
    return 0;
}

/* Schedule the next look at the ack head. */
static void resend_arm(struct node *n)
{
    lws_sul_schedule(n->hub->ctx, 0, &n->resend_sul, resend_due,
                     (lws_usec_t)n->hub->cfg->resend_interval_s * LWS_USEC_PER_SEC);
}

static void resend_due(lws_sorted_usec_list_t *sul)
{
    struct node *n = kedge_container_of(sul, struct node, resend_sul);
    struct out_msg *o = n->ackq.head;

    if (!o)
        return;
    if (o->sends_round >= 1 + ACK_RETRIES && n->ackq.n > 1) {
        /* cloudcore: ErrWaitTimeout -> AddRateLimited; the queue moves on */
        kedge_log(KEDGE_LOG_NOTICE,
                  "cloudsim: no ack node=%s msg_id=%s after %u sends, requeued behind %zu",
                  node_label(n), o->id, o->sends_round, n->ackq.n - 1);
        fifo_push(&n->ackq, fifo_pop(&n->ackq));
        n->ackq.head->sends_round = 0;
    } else if (o->sends_round >= 1 + ACK_RETRIES) {
        o->sends_round = 0; /* alone in the queue: a new round at once */
    }
    n->head_due = true;
    node_kick(n);
}

static void record_acked(struct hub *h, const char *id)
{
    struct id_entry *e = kedge_calloc(1, sizeof(*e));

    if (!e || !(e->id = kedge_strdup(id))) {
        kedge_free(e);
        kedge_log(KEDGE_LOG_ERR, "cloudsim: out of memory recording ack msg_id=%s", id);
        return;
    }
    if (h->acked_tail)
        h->acked_tail->next = e;
    else
        h->acked_head = e;
    h->acked_tail = e;
    if (++h->acked_n > ACKED_LOG_MAX) {
        struct id_entry *old = h->acked_head;
        h->acked_head = old->next;
        kedge_free(old->id);
        kedge_free(old);
        h->acked_n--;
    }
}

/* An upstream "response": the ack of the message whose id is parent_msg_id, if it is one of
 * this node's ack-needed messages that went out (node_session.go ReceiveMessageAck). */
static void handle_ack(struct node *n, const struct kedge_msg *m)
{
    struct out_msg *o, *prev = NULL;
    bool was_head;

    if (!m->parent_msg_id || !*m->parent_msg_id)
        return;
    for (o = n->ackq.head; o; prev = o, o = o->next)
        if (o->sends_total > 0 && strcmp(o->id, m->parent_msg_id) == 0)
            break;
    if (!o) {
        kedge_log(KEDGE_LOG_DEBUG, "cloudsim: response node=%s parent=%s matches nothing pending",
                  node_label(n), m->parent_msg_id);
        return;
    }
    was_head = o == n->ackq.head;
    if (prev)
        prev->next = o->next;
    else
        n->ackq.head = o->next;
    if (n->ackq.tail == o)
        n->ackq.tail = prev;
    n->ackq.n--;
    kedge_log(KEDGE_LOG_INFO, "cloudsim: acked node=%s msg_id=%s after %u sends pending_acks=%zu",
              node_label(n), o->id, o->sends_total, n->ackq.n);
    record_acked(n->hub, o->id);
    out_msg_free(o);
    if (was_head) {
        lws_sul_cancel(&n->resend_sul);
        if (n->ackq.head) {
            n->ackq.head->sends_round = 0;
            n->head_due = true;
            node_kick(n);
        }
    }
}

/* ---- the received log ------------------------------------------------------------------------ */

static void rx_log(struct hub *h, const struct node *n, const struct kedge_jval *root,
                   bool keepalive)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct rx_entry *e;
    struct kedge_jw w;

    e = kedge_calloc(1, sizeof(*e));
    if (!e)
        goto oom;
    kedge_jw_init(&w, &b);
    kedge_json_write_value(&w, root);
    if (kedge_jw_finish(&w) < 0 || !(e->json = kedge_buf_take(&b, &e->len)) ||
        !(e->node = kedge_strdup(or_empty(n->name))))
        goto oom;
    e->index = h->rx_next_index++;
    e->t_ms = kedge_wall_ms();
    e->keepalive = keepalive;
    if (h->rx_tail)
        h->rx_tail->next = e;
    else
        h->rx_head = e;
    h->rx_tail = e;
    if (++h->rx_n > RX_LOG_MAX) {
        struct rx_entry *old = h->rx_head;
        h->rx_head = old->next;
        kedge_free(old->json);
        kedge_free(old->node);
        kedge_free(old);
        h->rx_n--;
    }
    return;
oom:
    kedge_buf_cleanup(&b);
    if (e) {
        kedge_free(e->json);
        kedge_free(e);
    }
    kedge_log(KEDGE_LOG_ERR, "cloudsim: out of memory logging a received message");
}

/* ---- sessions -------------------------------------------------------------------------------- */

static void keepalive_expired(lws_sorted_usec_list_t *sul);

static void keepalive_arm(struct conn *c)
{
    if (!c->live)
        return; /* the deadline starts with the session */
    lws_sul_schedule(c->hub->ctx, 0, &c->keepalive_sul, keepalive_expired,
                     (lws_usec_t)c->hub->cfg->keepalive_timeout_s * LWS_USEC_PER_SEC);
}

/* Close a session without a close frame, as cloudcore's Terminating (conn.Close) does. */
static void conn_kill(struct conn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    lws_sul_cancel(&c->keepalive_sul);
    lws_sul_cancel(&c->setup_sul);
    kedge_log(KEDGE_LOG_NOTICE, "cloudsim: closing session=%lu node=%s reason=%s", c->id,
              c->node ? node_label(c->node) : "-", why);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void keepalive_expired(lws_sorted_usec_list_t *sul)
{
    struct conn *c = kedge_container_of(sul, struct conn, keepalive_sul);

    if (c->frozen)
        return; /* a frozen link is the test's to end: thaw re-arms the deadline */
    conn_kill(c, c->reads ? "keepalive timeout"
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
    keepalive_arm(c);
    if (c->node)
        node_kick(c->node);
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
    n = node_get(h, node_id);
    if (!n)
        goto out;
    c->wsi = wsi;
    c->hub = h;
    c->id = ++h->sessions_total;
    c->reads = strcmp(conn_use, "msg") == 0; /* exact, as Go compares api.UseTypeMessage */
    if (n->conn) {
        struct conn *old = n->conn;
        kedge_log(KEDGE_LOG_WARN, "cloudsim: session exists for node=%s, closing session=%lu",
                  node_label(n), old->id);
        conn_kill(old, "replaced by a new session");
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
    fifo_splice(&n->ackq, &h->unbound.ackq);
    fifo_splice(&n->noackq, &h->unbound.noackq);
    lws_sul_cancel(&n->resend_sul);
    if (n->ackq.head) {
        n->ackq.head->sends_round = 0;
        n->head_due = true;
    }

    kedge_log(KEDGE_LOG_NOTICE,
              "cloudsim: session=%lu open node=%s project=%s connection_use=%s%s "
              "pending_acks=%zu pending_noack=%zu",
              c->id, node_label(n), n->project_id, n->conn_use,
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
                  node_label(n), n->ackq.n);
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
    if ((e.parent_msg_id = kedge_strdup(or_empty(m->msg_id))) &&
        (e.source = kedge_strdup("cloudhub")) && (e.group = kedge_strdup(or_empty(m->group))) &&
        (e.operation = kedge_strdup("error")) && (e.resource = kedge_strdup(or_empty(m->resource))))
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
              or_empty(m->msg_id), or_empty(m->resource), node_label(c->node),
              a == FAULT_CLOSE ? "closing the link (1009)" : "answering with an error");
    if (a == FAULT_CLOSE) {
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
        return 1;
    }
    if (reject_with_error(c->hub, c->node, m) < 0)
        kedge_log(KEDGE_LOG_ERR, "cloudsim: out of memory answering msg_id=%s with an error",
                  or_empty(m->msg_id));
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
                          n ? node_label(n) : "-", c->id, c->rx.len, kedge_errname(rc),
                          h->cfg->close_on_malformed ? ", closing (as cloudcore)" : ", dropped");
        kedge_jdoc_free(doc);
        if (h->cfg->close_on_malformed)
            conn_kill(c, "malformed message");
        return 0;
    }
    if (!n) { /* replaced while this frame was in flight */
        kedge_jdoc_free(doc);
        kedge_msg_cleanup(&m);
        return 0;
    }

    rc = 0;
    keepalive = streq(m.operation, "keepalive");
    rx_log(h, n, kedge_jdoc_root(doc), keepalive);
    kedge_jdoc_free(doc);
    kedge_log(keepalive ? KEDGE_LOG_DEBUG : KEDGE_LOG_INFO,
              "cloudsim: rx node=%s msg_id=%s parent=%s source=%s group=%s op=%s resource=%s",
              node_label(n), or_empty(m.msg_id), or_empty(m.parent_msg_id), or_empty(m.source),
              or_empty(m.group), or_empty(m.operation), or_empty(m.resource));
    kedge_log(KEDGE_LOG_DEBUG, "cloudsim: rx content=%.*s", (int)m.content_len, m.content);

    if (!c->live && (keepalive || streq(m.operation, "response"))) {
        n->session_not_found++;
        kedge_log(KEDGE_LOG_WARN,
                  "cloudsim: %s from node=%s before its session exists: dropped (cloudcore: "
                  "session not found for node %s)",
                  keepalive ? "keepalive" : "ack", node_label(n), node_label(n));
    } else if (keepalive) {
        n->last_keepalive_ms = kedge_wall_ms();
        keepalive_arm(c);
    } else if (streq(m.operation, "response")) {
        handle_ack(n, &m); /* never forwarded */
    } else if ((fault = faults_check(h->faults, &m)) != FAULT_NONE) {
        rc = reject(c, &m, fault) ? -1 : 0;
    } else if (streq(m.operation, "error")) {
        kedge_log(KEDGE_LOG_WARN, "cloudsim: error response from node=%s msg_id=%s", node_label(n),
                  or_empty(m.msg_id));
    } else if (streq(m.operation, "upload") && streq(m.group, "user")) {
        /* to the router module: nothing answers */
    } else if (controllers_upstream(h->controllers, h, n->name, &m) < 0) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: out of memory answering msg_id=%s", or_empty(m.msg_id));
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
                      c->hub->cfg->read_limit, node_label(c->node), c->id);
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

    if (!n || !conn_can_write(c))
        return 0;
    if (n->head_due && n->ackq.head) {
        o = n->ackq.head;
        head = true;
    } else if (n->noackq.head) {
        o = fifo_pop(&n->noackq);
    }
    if (!o)
        return 0;
    if (lws_write(c->wsi, o->buf + LWS_PRE, o->len, o->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) <
        (int)o->len) {
        kedge_log(KEDGE_LOG_WARN, "cloudsim: write failed node=%s session=%lu", node_label(n),
                  c->id);
        if (!head)
            out_msg_free(o); /* no-ack messages are dropped on failure, as cloudcore does */
        return -1;
    }
    kedge_log(KEDGE_LOG_INFO, "cloudsim: tx node=%s msg_id=%s bytes=%zu%s", node_label(n), o->id,
              o->len, head ? (o->sends_total ? " (resend)" : " (ack needed)") : "");
    if (head) {
        o->sends_round++;
        o->sends_total++;
        n->head_due = false;
        resend_arm(n);
    } else {
        out_msg_free(o);
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
                      node_label(c->node), c->id, c->node->peer_close_code);
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

/* ---- control API ----------------------------------------------------------------------------- */

static struct node *control_node(struct hub *h, const char *name)
{
    if (name)
        return node_find(h, name);
    return h->last_node;
}

void hub_write_received(struct hub *h, struct kedge_jw *w, long long since, bool skip_keepalive)
{
    const struct rx_entry *e;

    kedge_jw_obj_open(w);
    kedge_jw_key(w, "messages");
    kedge_jw_arr_open(w);
    for (e = h->rx_head; e; e = e->next) {
        if (e->index <= since || (skip_keepalive && e->keepalive))
            continue;
        kedge_jw_obj_open(w);
        kedge_jw_kint(w, "index", e->index);
        kedge_jw_kint(w, "t_ms", e->t_ms);
        kedge_jw_kstr(w, "node", e->node);
        kedge_jw_key(w, "json");
        kedge_jw_raw(w, e->json, e->len);
        kedge_jw_obj_close(w);
    }
    kedge_jw_arr_close(w);
    kedge_jw_obj_close(w);
}

void hub_write_acked(struct hub *h, struct kedge_jw *w)
{
    const struct id_entry *e;

    kedge_jw_obj_open(w);
    kedge_jw_key(w, "acked");
    kedge_jw_arr_open(w);
    for (e = h->acked_head; e; e = e->next)
        kedge_jw_str(w, e->id);
    kedge_jw_arr_close(w);
    kedge_jw_obj_close(w);
}

int hub_write_state(struct hub *h, const char *name, struct kedge_jw *w)
{
    struct node *n = control_node(h, name);
    const struct node *q = n ? n : &h->unbound;

    if (name && !n)
        return -ENOENT;
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "connected");
    kedge_jw_bool(w, q->conn != NULL);
    kedge_jw_kstr(w, "node_id", or_empty(q->name));
    kedge_jw_kstr(w, "project_id", or_empty(q->project_id));
    kedge_jw_kstr(w, "connection_use", or_empty(q->conn_use));
    kedge_jw_kint(w, "sessions_total", (int64_t)h->sessions_total);
    kedge_jw_kint(w, "last_keepalive_ms", q->last_keepalive_ms);
    kedge_jw_kint(w, "pending_acks", (int64_t)q->ackq.n);
    kedge_jw_key(w, "frozen");
    kedge_jw_bool(w, q->conn && q->conn->frozen);
    /* extensions */
    kedge_jw_kint(w, "pending_noack", (int64_t)q->noackq.n);
    kedge_jw_kint(w, "malformed_total", (int64_t)h->malformed_total);
    kedge_jw_key(w, "refusing");
    kedge_jw_bool(w, h->refuse_until_ms && kedge_now_ms() < h->refuse_until_ms);
    kedge_jw_kint(w, "session_not_found", (int64_t)q->session_not_found);
    kedge_jw_kint(w, "peer_close_code", q->peer_close_code);
    kedge_jw_obj_close(w);
    return 0;
}

int hub_link_freeze(struct hub *h, const char *name, bool freeze)
{
    struct node *n = control_node(h, name);
    struct conn *c = n ? n->conn : NULL;

    if (!c || c->closing)
        return -ENOTCONN;
    if (c->frozen == freeze)
        return 0;
    c->frozen = freeze;
    kedge_log(KEDGE_LOG_NOTICE, "cloudsim: link %s node=%s session=%lu",
              freeze ? "frozen" : "thawed", node_label(n), c->id);
    if (freeze) {
        /* neither read nor write; TCP stays open. The keepalive deadline is paused too, so
         * the link ends only when the edge gives up on it (or the test thaws or drops it). */
        lws_rx_flow_control(c->wsi, LWS_RXFLOW_REASON_APPLIES_DISABLE |
                                        LWS_RXFLOW_REASON_USER_BOOL |
                                        LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
        lws_sul_cancel(&c->keepalive_sul);
    } else {
        if (c->reads)
            lws_rx_flow_control(c->wsi, LWS_RXFLOW_REASON_APPLIES_ENABLE |
                                            LWS_RXFLOW_REASON_USER_BOOL |
                                            LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
        keepalive_arm(c);
        node_kick(n);
    }
    return 0;
}

int hub_link_drop(struct hub *h, const char *name)
{
    struct node *n = control_node(h, name);

    if (!n || !n->conn || n->conn->closing)
        return -ENOTCONN;
    conn_kill(n->conn, "link/drop");
    return 0;
}

void hub_link_refuse(struct hub *h, long seconds)
{
    struct node *n;

    if (seconds <= 0) {
        h->refuse_until_ms = 0;
        kedge_log(KEDGE_LOG_NOTICE, "cloudsim: accepting connections again");
        return;
    }
    h->refuse_until_ms = kedge_now_ms() + (uint64_t)seconds * 1000u;
    kedge_log(KEDGE_LOG_NOTICE, "cloudsim: refusing connections for %ld s", seconds);
    for (n = h->nodes; n; n = n->next)
        if (n->conn)
            conn_kill(n->conn, "link/refuse");
}

void hub_write_nodes(struct hub *h, struct kedge_jw *w)
{
    controllers_write_nodes(h->controllers, w);
}

void hub_write_pods(struct hub *h, struct kedge_jw *w)
{
    controllers_write_pods(h->controllers, w);
}

int hub_write_object(struct hub *h, const char *key, struct kedge_jw *w)
{
    return controllers_write_object(h->controllers, key, w);
}

void hub_write_applied(struct hub *h, const char *device, bool with_log, struct kedge_jw *w)
{
    controllers_write_applied(h->controllers, device, with_log, w);
}

int hub_fault_reject(struct hub *h, const char *json, size_t len)
{
    int rc = faults_add_reject(h->faults, json, len);

    if (rc == 0)
        kedge_log(KEDGE_LOG_NOTICE, "cloudsim: fault: reject rule added: %.*s", (int)len, json);
    return rc;
}

void hub_faults_clear(struct hub *h)
{
    faults_clear(h->faults);
    kedge_log(KEDGE_LOG_NOTICE, "cloudsim: fault: reject rules cleared");
}

void hub_write_faults(struct hub *h, struct kedge_jw *w)
{
    faults_write(h->faults, w);
}

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
        node_cleanup(n);
        kedge_free(n);
    }
    node_cleanup(&h->unbound);
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
