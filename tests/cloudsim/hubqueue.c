/* hubqueue.c: cloudsim's CloudHub downstream and its logs: the per-node queues with cloudcore's
 * ack contract (noAckRequired, resend every interval, requeue after 4 re-sends), the acked-id
 * log and the received log the control API reads. hub.c explains the behaviours and their
 * sources.
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

/* ---- small helpers --------------------------------------------------------------------------- */

bool hub_streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

const char *hub_or_empty(const char *s)
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

void hub_out_msg_free(struct out_msg *o)
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

struct out_msg *hub_fifo_pop(struct fifo *q)
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
void hub_fifo_splice(struct fifo *dst, struct fifo *src)
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

    while ((o = hub_fifo_pop(q)))
        hub_out_msg_free(o);
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
    const char *res = hub_or_empty(m->resource), *op = hub_or_empty(m->operation);
    char type[64];
    size_t i;

    for (i = 0; i < sizeof(contains) / sizeof(contains[0]); i++)
        if (strstr(res, contains[i]))
            return true;
    for (i = 0; i < sizeof(volume_ops) / sizeof(volume_ops[0]); i++)
        if (strcmp(op, volume_ops[i]) == 0)
            return true;
    if (strcmp(op, "applicationResponse") == 0 || hub_streq(m->group, "user") ||
        hub_streq(m->source, "taskmanager") || hub_streq(m->source, "nodeupgradejobcontroller"))
        return true;
    if (strcmp(op, "response") == 0 && m->content_is_string && m->content_str_len == 2 &&
        memcmp(m->content_str, "OK", 2) == 0)
        return true;
    if (hub_streq(m->source, "edgecontroller")) {
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

struct node *hub_node_find(struct hub *h, const char *name)
{
    struct node *n;

    for (n = h->nodes; n; n = n->next)
        if (strcmp(n->name, name) == 0)
            return n;
    return NULL;
}

struct node *hub_node_get(struct hub *h, const char *name)
{
    struct node *n = hub_node_find(h, name);

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

void hub_node_cleanup(struct node *n)
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
        return hub_node_get(h, name);
    return h->last_node ? h->last_node : &h->unbound;
}

bool hub_conn_can_write(const struct conn *c)
{
    return c && c->live && !c->frozen && !c->closing;
}

void hub_node_kick(struct node *n)
{
    if (hub_conn_can_write(n->conn))
        lws_callback_on_writable(n->conn->wsi);
}

const char *hub_node_label(const struct node *n)
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
              hub_node_label(n), o->id, hub_or_empty(m->operation), hub_or_empty(m->resource),
              o->needs_ack ? "needed" : "no", n->ackq.n);
    hub_node_kick(n);
    return 0;
oom:
    kedge_buf_cleanup(&b);
    hub_out_msg_free(o);
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
        hub_out_msg_free(o);
        return -ENOMEM;
    }
    if (len)
        memcpy(o->buf + LWS_PRE, data, len);
    o->len = len;
    o->binary = binary;
    fifo_push(&n->noackq, o);
    kedge_log(KEDGE_LOG_INFO, "cloudsim: queued node=%s raw %s frame bytes=%zu", hub_node_label(n),
              binary ? "binary" : "text", len);
    hub_node_kick(n);
    return 0;
}

/* Schedule the next look at the ack head. */
void hub_resend_arm(struct node *n)
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
                  hub_node_label(n), o->id, o->sends_round, n->ackq.n - 1);
        fifo_push(&n->ackq, hub_fifo_pop(&n->ackq));
        n->ackq.head->sends_round = 0;
    } else if (o->sends_round >= 1 + ACK_RETRIES) {
        o->sends_round = 0; /* alone in the queue: a new round at once */
    }
    n->head_due = true;
    hub_node_kick(n);
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
void hub_handle_ack(struct node *n, const struct kedge_msg *m)
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
                  hub_node_label(n), m->parent_msg_id);
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
              hub_node_label(n), o->id, o->sends_total, n->ackq.n);
    record_acked(n->hub, o->id);
    hub_out_msg_free(o);
    if (was_head) {
        lws_sul_cancel(&n->resend_sul);
        if (n->ackq.head) {
            n->ackq.head->sends_round = 0;
            n->head_due = true;
            hub_node_kick(n);
        }
    }
}

/* ---- the received log ------------------------------------------------------------------------ */

void hub_rx_log(struct hub *h, const struct node *n, const struct kedge_jval *root, bool keepalive)
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
        !(e->node = kedge_strdup(hub_or_empty(n->name))))
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
