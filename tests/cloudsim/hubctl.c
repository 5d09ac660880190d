/* hubctl.c: the control API's view of cloudsim's CloudHub: the received and acked logs, a
 * node's link state, freezing, dropping and refusing links, and the controllers' and faults'
 * writers the HTTP API reaches through the hub.
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

/* ---- control API ----------------------------------------------------------------------------- */

static struct node *control_node(struct hub *h, const char *name)
{
    if (name)
        return hub_node_find(h, name);
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
    kedge_jw_kstr(w, "node_id", hub_or_empty(q->name));
    kedge_jw_kstr(w, "project_id", hub_or_empty(q->project_id));
    kedge_jw_kstr(w, "connection_use", hub_or_empty(q->conn_use));
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
              freeze ? "frozen" : "thawed", hub_node_label(n), c->id);
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
        hub_keepalive_arm(c);
        hub_node_kick(n);
    }
    return 0;
}

int hub_link_drop(struct hub *h, const char *name)
{
    struct node *n = control_node(h, name);

    if (!n || !n->conn || n->conn->closing)
        return -ENOTCONN;
    hub_conn_kill(n->conn, "link/drop");
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
            hub_conn_kill(n->conn, "link/refuse");
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
