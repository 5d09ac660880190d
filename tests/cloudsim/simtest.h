/* simtest.h: what the files of test_cloudsim share: a tiny edge (an lws websocket client
 * with its own context, mutual TLS with the generated edge certificate, the handshake headers
 * the edge sends), starting and stopping kedge-cloudsim, reading its control API, and the
 * messages several topics send. Each topic file adds its cases with one function below. */
#ifndef KEDGE_CLOUDSIM_SIMTEST_H
#define KEDGE_CLOUDSIM_SIMTEST_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "kedge/buf.h"
#include "kedge/json.h"
#include "kedge/msg.h"
#include "simctl.h"

#define PROJECT "e632aba927ea4ac2b575ec1603d56f10"
#define DEADLINE_MS 10000 /* generous ceiling for anything that should take milliseconds */
#define POD_INSERT                                                                                 \
    "{\"header\":{\"resourceversion\":\"4711\"},\"route\":{\"source\":\"edgecontroller\","         \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":\"default/pod/nginx\"},"         \
    "\"content\":{\"metadata\":{\"name\":\"nginx\",\"namespace\":\"default\"}}}"
#define CONFIGMAP_UPDATE                                                                           \
    "{\"header\":{\"resourceversion\":\"77\"},\"route\":{\"source\":\"edgecontroller\","           \
    "\"group\":\"resource\",\"operation\":\"update\",\"resource\":\"default/configmap/cfg\"},"     \
    "\"content\":{\"metadata\":{\"name\":\"cfg\"},\"data\":{\"k\":\"v\"}}}"
#define MEMBERSHIP                                                                                 \
    "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":\"update\","     \
    "\"resource\":\"membership\"},\"content\":{\"event_id\":\"e1\",\"timestamp\":1,"               \
    "\"added_devices\":[{\"id\":\"thermo\",\"name\":\"thermo\"}],"                                 \
    "\"removed_devices\":null}}"
#define NODE_READY                                                                                 \
    "{\"metadata\":{\"name\":\"edge-node\"},\"spec\":{},\"status\":{\"conditions\":["              \
    "{\"type\":\"MemoryPressure\",\"status\":\"False\",\"reason\":\"KubeletHasMemory\"},"          \
    "{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\"}],"                       \
    "\"addresses\":[{\"type\":\"Hostname\",\"address\":\"edge-node\"}]}}"

/* ---------------------------------------------------------------------------------------------
 * A tiny edge: an lws websocket client with its own context
 */

struct frame {
    struct frame *next;
    char *data;
    size_t len;
};

struct outf {
    struct outf *next;
    unsigned char *buf; /* LWS_PRE headroom + payload */
    size_t len;
    int flags;
};

enum wsc_state { WSC_CONNECTING, WSC_OPEN, WSC_CLOSED, WSC_FAILED };

struct wsc_opts {
    const char *node_id, *project_id, *conn_use; /* NULL: header not sent */
    const char *cert, *key;                      /* NULL: no client certificate */
    const char *ca;
    const char *path; /* NULL: /{project}/edge-node/events, as edgecore dials */
    int keepalive_ms; /* 0: the test sends its own */
    int port;         /* 0: the wss port (CloudHub); simctl_tunnel_port for CloudStream */
    const char *session_node, *session_ip; /* CloudStream's headers; NULL: not sent */
};

struct wsc {
    struct lws_context *ctx;
    bool owns_ctx;
    struct lws *wsi;
    enum wsc_state state;
    bool was_open;
    char error[256];
    struct wsc_opts o;
    struct kedge_buf rx;
    struct frame *in_head, *in_tail;
    size_t in_total;
    struct outf *out_head, *out_tail;
    int64_t next_keepalive_ms;
    unsigned keepalives_sent;
    unsigned pongs;
    int close_code; /* set: the next writeable closes with a close frame of this status */
    int peer_close; /* the cloud's close frame status; 0: none came */
    lws_sorted_usec_list_t tick;
};

int64_t mono_ms(void);

void wsc_queue(struct wsc *w, const char *data, size_t len, int flags);
/* tc_stream.c: cloudcore's CloudStream model (stream.c, streamapi.c) */
void cloudsim_add_stream_tests(TCase *tc);

/* One whole text message, with the "\n" edgecore's framing puts after the JSON. */
void wsc_send(struct wsc *w, const char *json);

void send_keepalive(struct wsc *w);

/* Run the client's loop until pred(w, arg) holds or the deadline passes. */
bool wsc_run_until(struct wsc *w, bool (*pred)(struct wsc *, void *), void *arg, int timeout_ms);

bool is_gone(struct wsc *w, void *arg);

/* Keep the client's loop running for quiet_ms: an observation window for "nothing happens",
 * used only where no later marker can prove the absence. Not scaled: the window is measured
 * against cloudsim's own timers (a keepalive deadline), which run in real time even under
 * valgrind. */
void wsc_quiet(struct wsc *w, int quiet_ms);

/* Connect to cloudsim and wait until the websocket is open or has failed. share: NULL for a
 * client with its own lws context, or a client whose context (and so whose TLS files) this one
 * shares. Concurrent clients must share: lws 4.1.6 keeps its SSL_CTX ex_data index in a global
 * that each new context overwrites, so of two live contexts one leaks its client SSL_CTX when
 * destroyed (seen under LeakSanitizer). kedge-bridge and cloudsim have one context each. */
void wsc_open_shared(struct wsc *w, struct simctl *s, const struct wsc_opts *o, struct wsc *share);

void wsc_open(struct wsc *w, struct simctl *s, const struct wsc_opts *o);

/* Close a client; one sharing another's context must be closed before that one. */
void wsc_close(struct wsc *w);

bool has_pong(struct wsc *w, void *arg);

/* Next frame from the cloud, undecoded (kedge_malloc'd; the caller frees). */
char *wsc_next_raw(struct wsc *w, size_t *len);

void wsc_expect_next(struct wsc *w, struct kedge_msg *m);

struct simctl *sim_start_opts(const struct simctl_opts *o);

struct simctl *sim_start(long keepalive_s, long resend_s);

void sim_stop_ok(struct simctl *s);

struct wsc_opts edge_opts(struct simctl *s, const char *node);

void edge_connect(struct wsc *w, struct simctl *s, const char *node);

/* GET a control endpoint as JSON; the document is the caller's. */
struct kedge_jdoc *get_json(struct simctl *s, const char *path);

int64_t state_int(struct simctl *s, const char *node, const char *key);

bool state_bool(struct simctl *s, const char *node, const char *key);

char *state_str(struct simctl *s, const char *node, const char *key);

/* Messages in /received (with ?query) whose operation is op (NULL: any). */
int count_received(struct simctl *s, const char *query, const char *op);

/* Poll a control-API condition with a deadline (the client loop keeps running meanwhile). */
bool await_state(struct simctl *s, struct wsc *w, bool (*cond)(struct simctl *, void *), void *arg);

bool cond_acked(struct simctl *s, void *id);

bool cond_received_at_least(struct simctl *s, void *n);

bool cond_received_all_at_least(struct simctl *s, void *n);

bool str_eq(const char *a, const char *b);

/* A message from the edge. */
void edge_msg(char *out, size_t len, const char *id, const char *source, const char *group,
              const char *op, const char *resource, const char *content);

void edge_ack(struct wsc *w, const struct kedge_msg *m);

/* The cloud's membership names thermo (the v1.15 id), so its device controller answers its
 * reports; the edge takes the message and acks it. */
void thermo_known(struct simctl *s, struct wsc *w);

/* A request from edged and the cloud's answer to it (m: the caller cleans it up). */
void edge_call(struct wsc *w, const char *id, const char *op, const char *resource,
               const char *content, struct kedge_msg *m);

void edge_request(struct wsc *w, const char *id, const char *op, const char *resource,
                  const char *content);

/* A message from edged, its answer not awaited. */
void edge_msg_send(struct wsc *w, const char *id, const char *op, const char *resource,
                   const char *content);

/* GET /object?key=: the object's JSON text (kedge_malloc'd) or NULL for a 404. */
char *get_object(struct simctl *s, const char *key);

/* ---- the topics (one file each) ----------------------------------------------------------------
 */

/* tc_link.c: TLS, sessions, keepalive, the ack contract, link faults, malformed and big frames. */
void cloudsim_add_link_tests(TCase *tc);
/* tc_controllers.c: the device and edge controllers, tokens, the node lifecycle, faults. */
void cloudsim_add_controller_tests(TCase *tc);
/* tc_pods.c: pod status patches, deletes and the object API. */
void cloudsim_add_pod_tests(TCase *tc);
/* tc_control.c: the control API, certificates, the command line. */
void cloudsim_add_control_tests(TCase *tc);

#endif
