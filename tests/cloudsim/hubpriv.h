/* hubpriv.h: what the three files of cloudsim's CloudHub share (hub.c: sessions and the lws
 * callback; hubqueue.c: the per-node queues with cloudcore's ack contract and the logs;
 * hubctl.c: the control API's view). Private to those files. */
#ifndef KEDGE_CLOUDSIM_HUBPRIV_H
#define KEDGE_CLOUDSIM_HUBPRIV_H

#include "cloudsim.h"
#include "kedge/buf.h"

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
    struct cstream *cstream; /* CloudStream, for the control API */
    bool stopping;
};

/* ---- hubqueue.c ------------------------------------------------------------------------------ */

/* Both set and equal (a NULL equals nothing). */
bool hub_streq(const char *a, const char *b);
/* s, or "" for NULL. */
const char *hub_or_empty(const char *s);
/* A queued frame, freed. */
void hub_out_msg_free(struct out_msg *o);
/* Take the head of a queue; NULL when empty. */
struct out_msg *hub_fifo_pop(struct fifo *q);
/* Move all of src to the back of dst. */
void hub_fifo_splice(struct fifo *dst, struct fifo *src);
/* The node of that name, or NULL. */
struct node *hub_node_find(struct hub *h, const char *name);
/* The same, made if missing; NULL on allocation failure. */
struct node *hub_node_get(struct hub *h, const char *name);
/* Free what a node holds (its queues, names, timer). */
void hub_node_cleanup(struct node *n);
/* Whether a session may be written to now (live, not frozen, not closing). */
bool hub_conn_can_write(const struct conn *c);
/* Ask lws for a writeable callback on the node's session, if it has one. */
void hub_node_kick(struct node *n);
/* The node's name for log lines. */
const char *hub_node_label(const struct node *n);
/* (Re)start the resend timer of the node's ack queue head. */
void hub_resend_arm(struct node *n);
/* An upstream "response": the ack of the in-flight head, by parent_msg_id. */
void hub_handle_ack(struct node *n, const struct kedge_msg *m);
/* Append a received message to the log the control API reads. */
void hub_rx_log(struct hub *h, const struct node *n, const struct kedge_jval *root, bool keepalive);

/* ---- hub.c ----------------------------------------------------------------------------------- */

/* (Re)start the session's keepalive deadline. */
void hub_keepalive_arm(struct conn *c);
/* Close a session (why: for the log). */
void hub_conn_kill(struct conn *c, const char *why);

#endif
