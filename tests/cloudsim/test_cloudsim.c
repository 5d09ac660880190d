/* test_cloudsim.c: kedge-cloudsim against the cloudcore behaviours it claims (cloudsim.h).
 *
 * Every test starts the real binary (simctl.h), drives it with a small lws websocket client
 * written here (mutual TLS with the generated edge certificate, the handshake headers the edge
 * sends) and with the control API, then stops it and asserts exit status 0 (under
 * KEDGE_VALGRIND=1 that also means no leaks). Waits are deadlines on a condition. Where a test
 * must show that something does *not* happen (no resend, no reply), it uses a later marker that
 * the same ordered stream must deliver first, so the absence is proven without a timed pause;
 * the few remaining observation windows are named quiet_ms and documented at their use.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/msg.h"
#include "kedge/util.h"
#include "simctl.h"

#define PROJECT "e632aba927ea4ac2b575ec1603d56f10"
#define DEADLINE_MS 10000 /* generous ceiling for anything that should take milliseconds */

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

static int64_t mono_ms(void)
{
    return (int64_t)kedge_now_ms();
}

static void wsc_queue(struct wsc *w, const char *data, size_t len, int flags)
{
    struct outf *f = calloc(1, sizeof(*f));

    ck_assert_ptr_nonnull(f);
    f->buf = malloc(LWS_PRE + len + 1);
    ck_assert_ptr_nonnull(f->buf);
    memcpy(f->buf + LWS_PRE, data, len);
    f->len = len;
    f->flags = flags;
    if (w->out_tail)
        w->out_tail->next = f;
    else
        w->out_head = f;
    w->out_tail = f;
    if (w->wsi && w->state == WSC_OPEN)
        lws_callback_on_writable(w->wsi);
}

/* One whole text message, with the "\n" edgecore's framing puts after the JSON. */
static void wsc_send(struct wsc *w, const char *json)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_buf_printf(&b, "%s\n", json), 0);
    wsc_queue(w, b.data, b.len, LWS_WRITE_TEXT);
    kedge_buf_cleanup(&b);
}

static void send_keepalive(struct wsc *w)
{
    char id[KEDGE_UUID_LEN + 1], json[512];

    kedge_uuid4(id);
    (void)snprintf(json, sizeof(json),
                   "{\"header\":{\"msg_id\":\"%s\",\"timestamp\":%lld},\"route\":{\"source\":"
                   "\"websocket\",\"group\":\"resource\",\"operation\":\"keepalive\",\"resource\":"
                   "\"node\"},\"content\":\"ping\"}",
                   id, (long long)kedge_wall_ms());
    wsc_send(w, json);
    w->keepalives_sent++;
}

static void tick(lws_sorted_usec_list_t *sul)
{
    struct wsc *w = lws_container_of(sul, struct wsc, tick);

    if (w->o.keepalive_ms && w->state == WSC_OPEN && mono_ms() >= w->next_keepalive_ms) {
        send_keepalive(w);
        w->next_keepalive_ms = mono_ms() + w->o.keepalive_ms;
    }
    lws_sul_schedule(w->ctx, 0, &w->tick, tick, 20 * LWS_US_PER_MS);
}

static int add_header(struct lws *wsi, const char *name, const char *value, void *in, size_t len)
{
    unsigned char **p = in, *end = *p + len;

    if (!value)
        return 0;
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

static int wsc_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct wsc *w = user; /* ci.userdata: one context may carry several clients */
    struct outf *f;

    if (!w)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        /* spelled as edgecore's Go client puts them on the wire (cloudcore-recorded/): Go
         * canonicalises node_id, project_id, ConnectionUse to these */
        if (add_header(wsi, "Node_id:", w->o.node_id, in, len) ||
            add_header(wsi, "Project_id:", w->o.project_id, in, len) ||
            add_header(wsi, "Connectionuse:", w->o.conn_use, in, len))
            return -1;
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        w->state = WSC_OPEN;
        w->was_open = true;
        w->next_keepalive_ms = mono_ms();
        if (w->out_head)
            lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        w->state = WSC_FAILED;
        (void)snprintf(w->error, sizeof(w->error), "%s", in ? (const char *)in : "(none)");
        w->wsi = NULL;
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        w->state = WSC_CLOSED;
        w->wsi = NULL;
        break;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP: /* died before the upgrade: e.g. a TLS 1.3 */
    case LWS_CALLBACK_WSI_DESTROY:        /* client-certificate alert after our Finished */
        if (w->state == WSC_CONNECTING) {
            w->state = WSC_FAILED;
            (void)snprintf(w->error, sizeof(w->error), "closed before the upgrade");
        }
        w->wsi = NULL;
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        ck_assert_int_eq(kedge_buf_append(&w->rx, in, len), 0);
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            struct frame *fr = calloc(1, sizeof(*fr));
            ck_assert_ptr_nonnull(fr);
            fr->data = kedge_buf_take(&w->rx, &fr->len);
            ck_assert_ptr_nonnull(fr->data);
            if (w->in_tail)
                w->in_tail->next = fr;
            else
                w->in_head = fr;
            w->in_tail = fr;
            w->in_total++;
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        w->pongs++;
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
        const unsigned char *b = in; /* a 2-byte status first; none: 1005 */
        w->peer_close = len >= 2 ? (b[0] << 8) | b[1] : 1005;
        break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (w->close_code) {
            lws_close_reason(wsi, (enum lws_close_status)w->close_code, NULL, 0);
            return -1;
        }
        f = w->out_head;
        if (!f)
            break;
        w->out_head = f->next;
        if (!w->out_head)
            w->out_tail = NULL;
        if (lws_write(wsi, f->buf + LWS_PRE, f->len, (enum lws_write_protocol)f->flags) <
            (int)f->len) {
            free(f->buf);
            free(f);
            return -1;
        }
        free(f->buf);
        free(f);
        if (w->out_head)
            lws_callback_on_writable(wsi);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols wsc_protocols[] = {
    {"edge", wsc_callback, 0, 64 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Run the client's loop until pred(w, arg) holds or the deadline passes. */
static bool wsc_run_until(struct wsc *w, bool (*pred)(struct wsc *, void *), void *arg,
                          int timeout_ms)
{
    int64_t deadline = mono_ms() + simctl_scale_ms(timeout_ms);

    while (!pred(w, arg)) {
        if (mono_ms() >= deadline)
            return false;
        lws_service(w->ctx, 0);
    }
    return true;
}

static bool is_settled(struct wsc *w, void *arg)
{
    (void)arg;
    return w->state != WSC_CONNECTING;
}

static bool is_gone(struct wsc *w, void *arg)
{
    (void)arg;
    return w->state == WSC_CLOSED || w->state == WSC_FAILED || !w->wsi;
}

/* Keep the client's loop running for quiet_ms: an observation window for "nothing happens",
 * used only where no later marker can prove the absence. Not scaled: the window is measured
 * against cloudsim's own timers (a keepalive deadline), which run in real time even under
 * valgrind. */
static void wsc_quiet(struct wsc *w, int quiet_ms)
{
    int64_t end = mono_ms() + quiet_ms;

    while (mono_ms() < end)
        lws_service(w->ctx, 0); /* the 20 ms tick bounds each wait */
}

/* Connect to cloudsim and wait until the websocket is open or has failed. share: NULL for a
 * client with its own lws context, or a client whose context (and so whose TLS files) this one
 * shares. Concurrent clients must share: lws 4.1.6 keeps its SSL_CTX ex_data index in a global
 * that each new context overwrites, so of two live contexts one leaks its client SSL_CTX when
 * destroyed (seen under LeakSanitizer). kedge-bridge and cloudsim have one context each. */
static void wsc_open_shared(struct wsc *w, struct simctl *s, const struct wsc_opts *o,
                            struct wsc *share)
{
    struct lws_context_creation_info info;
    struct lws_client_connect_info ci;

    memset(w, 0, sizeof(*w));
    w->o = *o;
    if (share) {
        w->ctx = share->ctx;
    } else {
        memset(&info, 0, sizeof(info));
        info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.port = CONTEXT_PORT_NO_LISTEN;
        info.protocols = wsc_protocols;
        info.fd_limit_per_thread = 64;
        info.client_ssl_ca_filepath = o->ca;
        info.client_ssl_cert_filepath = o->cert;
        info.client_ssl_private_key_filepath = o->key;
        w->ctx = lws_create_context(&info);
        ck_assert_ptr_nonnull(w->ctx);
        w->owns_ctx = true;
    }
    lws_sul_schedule(w->ctx, 0, &w->tick, tick, 20 * LWS_US_PER_MS);

    memset(&ci, 0, sizeof(ci));
    ci.context = w->ctx;
    ci.address = "127.0.0.1";
    ci.port = simctl_wss_port(s);
    ci.path = o->path ? o->path : "/" PROJECT "/edge-node/events"; /* not parsed by the cloud */
    ci.host = "127.0.0.1";
    ci.origin = "127.0.0.1";
    ci.ssl_connection = LCCSCF_USE_SSL;
    ci.userdata = w;
    ci.pwsi = &w->wsi;
    w->state = WSC_CONNECTING;
    if (!lws_client_connect_via_info(&ci))
        w->state = WSC_FAILED;
    ck_assert_msg(wsc_run_until(w, is_settled, NULL, DEADLINE_MS), "connect did not settle");
}

static void wsc_open(struct wsc *w, struct simctl *s, const struct wsc_opts *o)
{
    wsc_open_shared(w, s, o, NULL);
}

/* Close a client; one sharing another's context must be closed before that one. */
static void wsc_close(struct wsc *w)
{
    struct frame *f;
    struct outf *o;

    if (w->ctx) {
        lws_sul_cancel(&w->tick);
        if (w->wsi) /* closed now, while w is still valid for the callbacks */
            lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
        if (w->owns_ctx)
            lws_context_destroy(w->ctx);
    }
    while ((f = w->in_head)) {
        w->in_head = f->next;
        kedge_free(f->data);
        free(f);
    }
    while ((o = w->out_head)) {
        w->out_head = o->next;
        free(o->buf);
        free(o);
    }
    kedge_buf_cleanup(&w->rx);
    memset(w, 0, sizeof(*w));
}

static bool has_pong(struct wsc *w, void *arg)
{
    (void)arg;
    return w->pongs > 0;
}

static bool has_frame(struct wsc *w, void *arg)
{
    (void)arg;
    return w->in_head != NULL;
}

/* Next message from the cloud, decoded; false if none arrives before the deadline. */
static bool wsc_next(struct wsc *w, struct kedge_msg *m, int timeout_ms)
{
    struct frame *f;

    if (!wsc_run_until(w, has_frame, NULL, timeout_ms))
        return false;
    f = w->in_head;
    w->in_head = f->next;
    if (!w->in_head)
        w->in_tail = NULL;
    /* every cloud frame is one JSON message followed by "\n" (kubeedge-wire.md §4.5) */
    ck_assert_msg(f->len > 0 && f->data[f->len - 1] == '\n', "frame without trailing newline: %.*s",
                  (int)f->len, f->data);
    ck_assert_int_eq(kedge_msg_decode(f->data, f->len, m), 0);
    kedge_free(f->data);
    free(f);
    return true;
}

/* Next frame from the cloud, undecoded (kedge_malloc'd; the caller frees). */
static char *wsc_next_raw(struct wsc *w, size_t *len)
{
    struct frame *f;
    char *data;

    ck_assert_msg(wsc_run_until(w, has_frame, NULL, DEADLINE_MS), "no frame within the deadline");
    f = w->in_head;
    w->in_head = f->next;
    if (!w->in_head)
        w->in_tail = NULL;
    data = f->data;
    *len = f->len;
    free(f);
    return data;
}

static void wsc_expect_next(struct wsc *w, struct kedge_msg *m)
{
    ck_assert_msg(wsc_next(w, m, DEADLINE_MS), "no message from the cloud within the deadline");
}

/* ---------------------------------------------------------------------------------------------
 * Test fixtures
 */

static struct simctl *sim_start_opts(const struct simctl_opts *o)
{
    struct simctl *s = NULL;

    ck_assert_int_eq(simctl_start(o, &s), 0);
    return s;
}

static struct simctl *sim_start(long keepalive_s, long resend_s)
{
    struct simctl_opts o;

    memset(&o, 0, sizeof(o));
    o.keepalive_timeout_s = keepalive_s;
    o.resend_interval_s = resend_s;
    return sim_start_opts(&o);
}

static void sim_stop_ok(struct simctl *s)
{
    int rc = simctl_stop(s);

    ck_assert_msg(rc == 0, "kedge-cloudsim exit status %d", rc);
    simctl_free(s);
}

static struct wsc_opts edge_opts(struct simctl *s, const char *node)
{
    struct wsc_opts o;
    static char ca[512], cert[512], key[512];

    (void)snprintf(ca, sizeof(ca), "%s", simctl_cert_path(s, "rootCA.crt"));
    (void)snprintf(cert, sizeof(cert), "%s", simctl_cert_path(s, "edge.crt"));
    (void)snprintf(key, sizeof(key), "%s", simctl_cert_path(s, "edge.key"));
    memset(&o, 0, sizeof(o));
    o.node_id = node;
    o.project_id = PROJECT;
    o.conn_use = "msg";
    o.ca = ca;
    o.cert = cert;
    o.key = key;
    return o;
}

static void edge_connect(struct wsc *w, struct simctl *s, const char *node)
{
    struct wsc_opts o = edge_opts(s, node);

    wsc_open(w, s, &o);
    ck_assert_msg(w->state == WSC_OPEN, "edge could not connect: %s", w->error);
}

/* GET a control endpoint as JSON; the document is the caller's. */
static struct kedge_jdoc *get_json(struct simctl *s, const char *path)
{
    struct kedge_jdoc *doc = NULL;
    int status;

    ck_assert_int_eq(simctl_http_json(s, "GET", path, NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    return doc;
}

static int64_t state_int(struct simctl *s, const char *node, const char *key)
{
    char path[256];
    struct kedge_jdoc *doc;
    int64_t v = -1;

    (void)snprintf(path, sizeof(path), node ? "/state?node=%s" : "/state", node);
    doc = get_json(s, path);
    ck_assert_int_eq(kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), key), &v), 0);
    kedge_jdoc_free(doc);
    return v;
}

static bool state_bool(struct simctl *s, const char *node, const char *key)
{
    char path[256];
    struct kedge_jdoc *doc;
    const struct kedge_jval *v;
    bool b;

    (void)snprintf(path, sizeof(path), node ? "/state?node=%s" : "/state", node);
    doc = get_json(s, path);
    v = kedge_json_get(kedge_jdoc_root(doc), key);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->type, KEDGE_JBOOL);
    b = v->boolean;
    kedge_jdoc_free(doc);
    return b;
}

static char *state_str(struct simctl *s, const char *node, const char *key)
{
    char path[256];
    struct kedge_jdoc *doc;
    const struct kedge_jval *v;
    char *out;

    (void)snprintf(path, sizeof(path), node ? "/state?node=%s" : "/state", node);
    doc = get_json(s, path);
    v = kedge_json_get(kedge_jdoc_root(doc), key);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->type, KEDGE_JSTR);
    out = kedge_strndup(v->str, v->len);
    kedge_jdoc_free(doc);
    return out;
}

/* Messages in /received (with ?query) whose operation is op (NULL: any). */
static int count_received(struct simctl *s, const char *query, const char *op)
{
    char path[256];
    struct kedge_jdoc *doc;
    const struct kedge_jval *arr, *e, *route, *o;
    int n = 0;

    (void)snprintf(path, sizeof(path), "/received%s", query ? query : "");
    doc = get_json(s, path);
    arr = kedge_json_get(kedge_jdoc_root(doc), "messages");
    ck_assert_ptr_nonnull(arr);
    for (e = arr->child; e; e = e->next) {
        route = kedge_json_get(kedge_json_get(e, "json"), "route");
        o = kedge_json_get(route, "operation");
        if (!op || (o && o->type == KEDGE_JSTR && strcmp(o->str, op) == 0))
            n++;
    }
    kedge_jdoc_free(doc);
    return n;
}

/* Is id in /acked? */
static bool is_acked(struct simctl *s, const char *id)
{
    struct kedge_jdoc *doc = get_json(s, "/acked");
    const struct kedge_jval *arr = kedge_json_get(kedge_jdoc_root(doc), "acked"), *e;
    bool found = false;

    ck_assert_ptr_nonnull(arr);
    for (e = arr->child; e; e = e->next)
        if (e->type == KEDGE_JSTR && strcmp(e->str, id) == 0)
            found = true;
    kedge_jdoc_free(doc);
    return found;
}

/* Poll a control-API condition with a deadline (the client loop keeps running meanwhile). */
static bool await_state(struct simctl *s, struct wsc *w, bool (*cond)(struct simctl *, void *),
                        void *arg)
{
    int64_t deadline = mono_ms() + simctl_scale_ms(DEADLINE_MS);

    while (!cond(s, arg)) {
        if (mono_ms() >= deadline)
            return false;
        if (w && w->ctx)
            lws_service(w->ctx, 0); /* the 20 ms tick bounds this wait */
        else {
            struct timespec ts = {0, 20 * 1000000L}; /* between two polls of a deadline */
            (void)nanosleep(&ts, NULL);
        }
    }
    return true;
}

static bool cond_acked(struct simctl *s, void *id)
{
    return is_acked(s, id);
}

static bool cond_received_at_least(struct simctl *s, void *n)
{
    return count_received(s, "?skip_keepalive=1", NULL) >= *(int *)n;
}

static bool cond_received_all_at_least(struct simctl *s, void *n)
{
    return count_received(s, NULL, NULL) >= *(int *)n;
}

static bool str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* A message from the edge. */
static void edge_msg(char *out, size_t len, const char *id, const char *source, const char *group,
                     const char *op, const char *resource, const char *content)
{
    int n = snprintf(out, len,
                     "{\"header\":{\"msg_id\":\"%s\",\"timestamp\":%lld},\"route\":{\"source\":"
                     "\"%s\",\"group\":\"%s\",\"operation\":\"%s\",\"resource\":\"%s\"},"
                     "\"content\":%s}",
                     id, (long long)kedge_wall_ms(), source, group, op, resource, content);
    ck_assert(n > 0 && (size_t)n < len);
}

static void edge_ack(struct wsc *w, const struct kedge_msg *m)
{
    char json[1024], id[KEDGE_UUID_LEN + 1];

    kedge_uuid4(id);
    (void)snprintf(json, sizeof(json),
                   "{\"header\":{\"msg_id\":\"%s\",\"parent_msg_id\":\"%s\",\"timestamp\":%lld},"
                   "\"route\":{\"source\":\"%s\",\"group\":\"%s\",\"operation\":\"response\","
                   "\"resource\":\"%s\"},\"content\":\"OK\"}",
                   id, m->msg_id, (long long)kedge_wall_ms(), m->source, m->group, m->resource);
    wsc_send(w, json);
}

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

/* The cloud's membership names thermo (the v1.15 id), so its device controller answers its
 * reports; the edge takes the message and acks it. */
static void thermo_known(struct simctl *s, struct wsc *w)
{
    struct kedge_msg m;

    ck_assert_int_eq(simctl_send(s, NULL, MEMBERSHIP, NULL), 0);
    wsc_expect_next(w, &m);
    ck_assert_str_eq(m.resource, "membership");
    edge_ack(w, &m);
    kedge_msg_cleanup(&m);
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 */

/* The edge certificate is the only way in: no certificate, or one from another CA, fails the
 * TLS handshake, and no session is ever opened. */
START_TEST(test_client_cert_required)
{
    struct simctl *s = sim_start(0, 0);
    struct cloudsim_certs foreign;
    char foreign_dir[600];
    struct wsc_opts o = edge_opts(s, "edge-node");
    struct wsc w;

    o.cert = o.key = NULL;
    wsc_open(&w, s, &o);
    ck_assert_msg(!w.was_open, "connected without a client certificate");
    wsc_close(&w);

    (void)snprintf(foreign_dir, sizeof(foreign_dir), "%s/foreign", simctl_dir(s));
    ck_assert_int_eq(certs_ensure(foreign_dir, "edge-node", &foreign), 0);
    o = edge_opts(s, "edge-node");
    o.cert = foreign.edge_crt;
    o.key = foreign.edge_key;
    wsc_open(&w, s, &o);
    ck_assert_msg(!w.was_open, "connected with a certificate from another CA");
    wsc_close(&w);
    certs_cleanup(&foreign);

    ck_assert_int_eq(state_int(s, NULL, "sessions_total"), 0);
    o = edge_opts(s, "edge-node"); /* the right certificate works, on any path */
    o.path = "/some/other/path?x=1";
    wsc_open(&w, s, &o);
    ck_assert_int_eq(w.state, WSC_OPEN);
    ck_assert_int_eq(state_int(s, NULL, "sessions_total"), 1);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* ConnectionUse decides whether the cloud reads at all (viaduct ServeConn): without
 * "ConnectionUse: msg" the edge's keepalives are never seen and the session dies at the
 * keepalive deadline; with it, keepalives keep the session up past that deadline, and the
 * session dies once they stop. */
START_TEST(test_connection_use_and_keepalive)
{
    struct simctl *s = sim_start(2, 0);
    struct wsc_opts oa = edge_opts(s, "node-a"), ob = edge_opts(s, "node-b");
    struct wsc a, b;
    unsigned sent_before;
    char *use;

    oa.keepalive_ms = 300;
    wsc_open(&a, s, &oa);
    ck_assert_int_eq(a.state, WSC_OPEN);
    ob.keepalive_ms = 300;
    ob.conn_use = NULL; /* no ConnectionUse header */
    wsc_open_shared(&b, s, &ob, &a);
    ck_assert_int_eq(b.state, WSC_OPEN);

    use = state_str(s, "node-b", "connection_use");
    ck_assert_str_eq(use, "");
    kedge_free(use);
    use = state_str(s, "node-a", "connection_use");
    ck_assert_str_eq(use, "msg");
    kedge_free(use);

    /* b: killed at the 2 s keepalive deadline although it sends a keepalive every 300 ms */
    ck_assert_msg(wsc_run_until(&b, is_gone, NULL, DEADLINE_MS),
                  "a session without ConnectionUse: msg was not closed");
    ck_assert_uint_ge(b.keepalives_sent, 3);
    ck_assert(!state_bool(s, "node-b", "connected"));
    ck_assert_int_eq(state_int(s, "node-b", "last_keepalive_ms"), 0);

    /* a: opened before b, so it is past the deadline now, and still up */
    ck_assert_int_eq(a.state, WSC_OPEN);
    ck_assert(state_bool(s, "node-a", "connected"));
    ck_assert_int_gt(state_int(s, "node-a", "last_keepalive_ms"), 0);
    /* only a's messages were read */
    ck_assert_int_gt(count_received(s, NULL, "keepalive"), 0);
    {
        struct kedge_jdoc *doc = get_json(s, "/received");
        const struct kedge_jval *e;
        for (e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; e; e = e->next) {
            const struct kedge_jval *node = kedge_json_get(e, "node");
            ck_assert_str_eq(node->str, "node-a");
        }
        kedge_jdoc_free(doc);
    }

    /* a stops sending keepalives: the cloud closes it within the deadline (and not before
     * another keepalive interval has passed: keepalives counted, then silence) */
    sent_before = a.keepalives_sent;
    ck_assert_uint_gt(sent_before, 0);
    a.o.keepalive_ms = 0;
    ck_assert_msg(wsc_run_until(&a, is_gone, NULL, DEADLINE_MS),
                  "the cloud kept a session without keepalives");
    ck_assert_int_eq(a.state, WSC_CLOSED);
    ck_assert(!state_bool(s, "node-a", "connected"));
    ck_assert_int_eq(a.in_total, 0); /* the cloud sends no keepalives of its own */

    wsc_close(&b);
    wsc_close(&a);
    sim_stop_ok(s);
}
END_TEST

struct copies {
    const char *id;
    int n;
};

static bool cond_state_not_found(struct simctl *s, void *n)
{
    return state_int(s, NULL, "session_not_found") >= *(int *)n;
}

static bool cond_disconnected(struct simctl *s, void *arg)
{
    (void)arg;
    return !state_bool(s, NULL, "connected");
}

/* cloudcore makes a connection's session on another goroutine than the one reading it: a
 * keepalive or an ack before the session exists is dropped ("session not found"), nothing is
 * sent before it, and what comes after counts. The status of the edge's close frame is kept
 * (peer_close_code), 0 when a connection ends without one (Go reads that as 1006). */
START_TEST(test_session_setup_and_close)
{
    static const char *const window[] = {"--session-setup-ms", "3000", NULL};
    struct simctl_opts so;
    struct simctl *s;
    struct kedge_msg m;
    struct wsc w;
    int one = 1;

    memset(&so, 0, sizeof(so));
    so.extra_args = window;
    s = sim_start_opts(&so);
    ck_assert_int_eq(simctl_send(s, NULL, POD_INSERT, NULL), 0); /* waits for the session */
    edge_connect(&w, s, "edge-node");
    send_keepalive(&w); /* at once, as edgecore does: before the session */
    ck_assert(await_state(s, &w, cond_state_not_found, &one));
    ck_assert_int_eq(state_int(s, NULL, "last_keepalive_ms"), 0);
    ck_assert_int_eq(count_received(s, NULL, "keepalive"), 1); /* read, and dropped */

    /* the first message from the cloud means the session exists: from now on all counts */
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.operation, "insert");
    edge_ack(&w, &m);
    ck_assert(await_state(s, &w, cond_acked, m.msg_id));
    send_keepalive(&w);
    ck_assert_int_eq(state_int(s, NULL, "peer_close_code"), 0);
    {
        int64_t deadline = mono_ms() + simctl_scale_ms(DEADLINE_MS);
        while (state_int(s, NULL, "last_keepalive_ms") == 0) {
            ck_assert(mono_ms() < deadline);
            lws_service(w.ctx, 0);
        }
    }
    ck_assert_int_eq(state_int(s, NULL, "session_not_found"), 1);
    kedge_msg_cleanup(&m);

    /* a close frame with 1000: kept */
    w.close_code = 1000;
    lws_callback_on_writable(w.wsi);
    ck_assert(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS));
    ck_assert(await_state(s, NULL, cond_disconnected, NULL));
    ck_assert_int_eq(state_int(s, NULL, "peer_close_code"), 1000);
    wsc_close(&w);

    /* a connection that just ends: none */
    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(state_int(s, NULL, "peer_close_code"), 0);
    wsc_close(&w); /* no close frame */
    ck_assert(await_state(s, NULL, cond_disconnected, NULL));
    ck_assert_int_eq(state_int(s, NULL, "peer_close_code"), 0);
    sim_stop_ok(s);
}
END_TEST

/* An ack-needed message is re-sent with the same msg_id every resend interval until the edge
 * answers with operation "response" and parent_msg_id = that id, and never after. */
START_TEST(test_ack_needed_resent_until_acked)
{
    struct simctl *s = sim_start(0, 1);
    struct kedge_msg m, first;
    char *id1 = NULL, *id2 = NULL;
    struct wsc w;
    int copies_of_1 = 0, copies_of_2 = 0;
    struct kedge_jdoc *doc;
    int status;

    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(simctl_http_json(s, "POST", "/send", POD_INSERT, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    ck_assert(kedge_json_get(kedge_jdoc_root(doc), "ack_required")->boolean);
    ck_assert(kedge_json_get(kedge_jdoc_root(doc), "queued")->boolean);
    id1 = kedge_strndup(kedge_json_get(kedge_jdoc_root(doc), "msg_id")->str,
                        kedge_json_get(kedge_jdoc_root(doc), "msg_id")->len);
    kedge_jdoc_free(doc);

    /* first copy: as queued, with the msg_id /send returned */
    wsc_expect_next(&w, &first);
    ck_assert_str_eq(first.msg_id, id1);
    ck_assert_str_eq(first.resource, "default/pod/nginx");
    ck_assert_str_eq(first.resource_version, "4711");
    ck_assert_int_gt(first.timestamp, 0);
    /* not acked: it comes again, same id, twice more */
    for (copies_of_1 = 1; copies_of_1 < 3; copies_of_1++) {
        wsc_expect_next(&w, &m);
        ck_assert_str_eq(m.msg_id, id1);
        kedge_msg_cleanup(&m);
    }
    ck_assert_int_eq(state_int(s, NULL, "pending_acks"), 1);

    edge_ack(&w, &first);
    ck_assert_msg(await_state(s, &w, cond_acked, id1), "the ack was not recorded");
    ck_assert_int_eq(state_int(s, NULL, "pending_acks"), 0);

    /* Marker: a second ack-needed message. Everything before its first copy was sent before
     * the ack was processed (one ordered stream); its second copy comes a full resend interval
     * later, so a resend of the first would have to show up in between. */
    ck_assert_int_eq(simctl_send(s, NULL, CONFIGMAP_UPDATE, &id2), 0);
    for (;;) {
        wsc_expect_next(&w, &m);
        if (str_eq(m.msg_id, id2))
            copies_of_2++;
        else {
            ck_assert_str_eq(m.msg_id, id1);
            ck_assert_msg(copies_of_2 == 0, "message re-sent after its ack");
        }
        kedge_msg_cleanup(&m);
        if (copies_of_2 == 2)
            break;
    }
    edge_ack(&w, &first); /* a duplicate ack changes nothing */
    ck_assert_int_eq(state_int(s, NULL, "pending_acks"), 1);

    kedge_msg_cleanup(&first);
    kedge_free(id1);
    kedge_free(id2);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* No-ack messages (membership, §5.2) are sent once. */
START_TEST(test_no_ack_sent_once)
{
    struct simctl *s = sim_start(0, 1);
    struct kedge_jdoc *doc;
    struct kedge_msg m;
    char *marker = NULL;
    struct wsc w;
    int membership = 0, marker_copies = 0, status;

    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(simctl_http_json(s, "POST", "/send", MEMBERSHIP, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    ck_assert(!kedge_json_get(kedge_jdoc_root(doc), "ack_required")->boolean);
    kedge_jdoc_free(doc);
    /* marker: an ack-needed message; its second copy comes one resend interval after its
     * first, which was queued after the membership message */
    ck_assert_int_eq(simctl_send(s, NULL, POD_INSERT, &marker), 0);
    while (marker_copies < 2) {
        wsc_expect_next(&w, &m);
        if (str_eq(m.resource, "membership")) {
            membership++;
            ck_assert_str_eq(m.source, "devicecontroller");
            ck_assert_str_eq(m.group, "twin");
            ck_assert_msg(m.content_is_string == false, "membership content is an object");
        } else {
            ck_assert_str_eq(m.msg_id, marker);
            marker_copies++;
        }
        kedge_msg_cleanup(&m);
    }
    ck_assert_int_eq(membership, 1);
    ck_assert_int_eq(state_int(s, NULL, "pending_noack"), 0);
    kedge_free(marker);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* The device controller, in each cloud generation (v1.15: bare device ids, v1.17: ns/name):
 * a twin report for a device it knows gets "OK" (parent = the report's id), one for a device it
 * does not know gets nothing (cloudcore: "Device ... does not exist in downstream
 * controller"); the reported value lands in the Device's status.twins (only for the twins
 * listed there; from v1.17 an unlisted property gets an empty entry) and the Device goes down
 * again as an update; state reports get "OK" from v1.18 only; membership detail requests are
 * ignored. */
static char *get_object(struct simctl *s, const char *key);

static const struct {
    const char *version, *id, *unknown_res;
    bool creates_twins, answers_state;
} generations[] = {
    /* GetDeviceID reads "default": unknown */
    {"1.15", "thermo", "device/default/thermo/twin/edge_updated", false, false},
    /* GetDeviceID reads two levels: "thermo/twin", unknown; findOrCreateTwinByName */
    {"1.17", "default/thermo", "device/thermo/twin/edge_updated", true, false},
    /* and state/update is answered */
    {"1.18", "default/thermo", "device/thermo/twin/edge_updated", true, true},
};

#define THERMO_DEVICE                                                                              \
    "{\"header\":{\"resourceversion\":\"50\"},\"route\":{\"source\":\"devicecontroller\","         \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":"                                \
    "\"node/edge-node/default/device/thermo\"},\"content\":{\"apiVersion\":"                       \
    "\"devices.kubeedge.io/v1beta1\",\"kind\":\"Device\",\"metadata\":{\"name\":\"thermo\","       \
    "\"namespace\":\"default\",\"resourceVersion\":\"50\"},\"spec\":{\"nodeName\":\"edge-node\","  \
    "\"properties\":[{\"name\":\"temperature\",\"desired\":{\"value\":\"22\"}},{\"name\":"         \
    "\"humidity\"}]},\"status\":{\"twins\":[{\"propertyName\":\"temperature\",\"reported\":"       \
    "{\"value\":\"\"}}]}}}"

/* cloudcore's workers apply reports of one device read together in any order (workers.c
 * models the worst: newest first). Two reports sent back to back: both answered, and the
 * Device keeps the older value, as the real cloud did for a burst after an outage; the next
 * report, sent after the answers, lands. */
START_TEST(test_device_reports_applied_concurrently)
{
    struct simctl_opts o = {.cloud_version = "1.15"};
    struct simctl *s = sim_start_opts(&o);
    static const char *const values[] = {"1", "2", "3"};
    char json[2048], twin[512], id[16];
    struct kedge_msg m;
    struct wsc w;
    char *dev;
    size_t i;
    int answered = 0;

    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(simctl_send(s, NULL, THERMO_DEVICE, NULL), 0);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.resource, "default/device/thermo");
    edge_ack(&w, &m);
    kedge_msg_cleanup(&m);
    for (i = 0; i < 3; i++) {
        (void)snprintf(twin, sizeof(twin),
                       "{\"event_id\":\"u%zu\",\"timestamp\":1,\"twin\":{\"temperature\":{"
                       "\"actual\":{\"value\":\"%s\"},\"metadata\":{\"type\":\"int\"}}}}",
                       i, values[i]);
        (void)snprintf(id, sizeof(id), "twin-%zu", i);
        edge_msg(json, sizeof(json), id, "twin", "resource", "update",
                 "device/thermo/twin/edge_updated", twin);
        /* the first two go out in one burst */
        wsc_queue(&w, json, strlen(json), LWS_WRITE_TEXT);
        if (i == 0)
            continue;
        while (answered < (int)i + 1) {
            wsc_expect_next(&w, &m);
            if (!strcmp(m.operation, "response"))
                answered++;
            else
                edge_ack(&w, &m); /* the Device again, after each status patch */
            kedge_msg_cleanup(&m);
        }
        dev = get_object(s, "default/device/thermo");
        ck_assert_ptr_nonnull(dev);
        /* after the burst the older value won; the third report, sent alone, lands */
        (void)snprintf(json, sizeof(json),
                       "\"reported\":{\"metadata\":{\"type\":\"int\"},"
                       "\"value\":\"%s\"}",
                       i == 1 ? "1" : "3");
        ck_assert_msg(strstr(dev, json), "after report %zu: %s", i, dev);
        kedge_free(dev);
    }
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

START_TEST(test_device_controller_replies)
{
    struct simctl_opts o = {.cloud_version = generations[_i].version};
    struct simctl *s = sim_start_opts(&o);
    const char *twin = "{\"event_id\":\"u1\",\"timestamp\":1,\"twin\":{\"temperature\":{\"actual\":"
                       "{\"value\":\"25\",\"metadata\":{\"timestamp\":1700000000123}},"
                       "\"optional\":true,\"metadata\":{\"type\":\"int\"}},\"humidity\":{"
                       "\"actual\":{\"value\":\"40\"},\"metadata\":{\"type\":\"int\"}}}}";
    char json[2048], res[256], membership[512];
    bool seen_update = false, seen_twin = false, seen_membership = false;
    struct kedge_msg m;
    struct wsc w;
    char *dev;
    int i;

    edge_connect(&w, s, "edge-node");
    /* the cloud's own membership names the device as its generation does */
    (void)snprintf(membership, sizeof(membership),
                   "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":"
                   "\"update\",\"resource\":\"node/edge-node/membership\"},\"content\":{"
                   "\"event_id\":\"e1\",\"timestamp\":1,\"added_devices\":[{\"id\":\"%s\","
                   "\"name\":\"thermo\"}],\"removed_devices\":null}}",
                   generations[_i].id);
    ck_assert_int_eq(simctl_send(s, NULL, membership, NULL), 0);
    ck_assert_int_eq(simctl_send(s, NULL, THERMO_DEVICE, NULL), 0);
    /* both, in either order: queued before the session existed, they leave from the ack and
     * the no-ack queue, which cloudcore drains on two goroutines */
    for (i = 0; i < 2; i++) {
        wsc_expect_next(&w, &m);
        if (strcmp(m.resource, "membership")) {
            ck_assert_str_eq(m.resource, "default/device/thermo");
        } else {
            ck_assert(!seen_membership);
            seen_membership = true;
        }
        edge_ack(&w, &m);
        kedge_msg_cleanup(&m);
    }
    ck_assert(seen_membership);

    /* membership detail first: ignored; then a report under the other generation's id:
     * unknown, never answered; so the first reply is the known device's */
    edge_msg(json, sizeof(json), "detail-1", "twin", "resource", "get", "membership/detail",
             "\"{\\\"event_type\\\":\\\"group_membership_event\\\",\\\"operation\\\":"
             "\\\"detail\\\"}\"");
    wsc_send(&w, json);
    edge_msg(json, sizeof(json), "twin-0", "twin", "resource", "update",
             generations[_i].unknown_res, twin);
    wsc_send(&w, json);
    (void)snprintf(res, sizeof(res), "device/%s/twin/edge_updated", generations[_i].id);
    edge_msg(json, sizeof(json), "twin-1", "twin", "resource", "update", res, twin);
    wsc_send(&w, json);
    (void)snprintf(res, sizeof(res), "device/%s/state/update", generations[_i].id);
    edge_msg(json, sizeof(json), "state-1", "twin", "resource", "update", res,
             "\"{\\\"event_id\\\":\\\"s1\\\",\\\"timestamp\\\":1,\\\"device\\\":{\\\"state\\\":"
             "\\\"online\\\"}}\"");
    wsc_send(&w, json);

    /* the "OK" and the Device again (the status patch made a new version, which goes down as
     * the informer's update); the ack-needed queue and the response queue are separate, so
     * either may come first; then the state's "OK" */
    for (i = 0; i < (generations[_i].answers_state ? 3 : 2); i++) {
        wsc_expect_next(&w, &m);
        if (!strcmp(m.operation, "update")) {
            ck_assert(!seen_update);
            seen_update = true;
            ck_assert_str_eq(m.source, "devicecontroller");
            ck_assert_str_eq(m.group, "resource");
            ck_assert_str_eq(m.resource, "default/device/thermo");
            ck_assert_ptr_nonnull(m.resource_version);
            ck_assert_str_ne(m.resource_version, "50");
            ck_assert_ptr_nonnull(strstr(m.content, "\"desired\":{\"value\":\"22\"}"));
            edge_ack(&w, &m);
        } else if (!strcmp(m.parent_msg_id, "twin-1")) {
            ck_assert(!seen_twin);
            seen_twin = true;
            ck_assert_str_eq(m.source, "devicecontroller");
            ck_assert_str_eq(m.group, "twin");
            ck_assert_str_eq(m.operation, "response");
            ck_assert_str_eq(m.resource, "twin");
            ck_assert(m.content_is_string);
            ck_assert_str_eq(m.content_str, "OK");
            ck_assert_int_eq(strlen(m.msg_id), 36);
            ck_assert_ptr_null(m.resource_version);
        } else {
            ck_assert(generations[_i].answers_state);
            /* the workers answer in no particular order (workers.c) */
            ck_assert_str_eq(m.parent_msg_id, "state-1");
            ck_assert_str_eq(m.content_str, "OK");
        }
        kedge_msg_cleanup(&m);
    }
    ck_assert(seen_update && seen_twin);
    /* the next answer is a later report's: before v1.18 the state report got none */
    (void)snprintf(res, sizeof(res), "device/%s/twin/edge_updated", generations[_i].id);
    edge_msg(json, sizeof(json), "twin-2", "twin", "resource", "update", res,
             "{\"event_id\":\"u2\",\"timestamp\":2,\"twin\":{}}");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "twin-2");
    kedge_msg_cleanup(&m);

    /* only the listed twin got its reported value; from v1.17 the other property of the
     * Device got an entry without one (Go keeps the values in the copy it returns) */
    dev = get_object(s, "default/device/thermo");
    ck_assert_ptr_nonnull(dev);
    (void)snprintf(json, sizeof(json),
                   "\"status\":{\"twins\":[{\"propertyName\":\"temperature\",\"reported\":{"
                   "\"metadata\":{\"timestamp\":\"1700000000123\",\"type\":\"int\"},\"value\":"
                   "\"25\"}}%s]}",
                   generations[_i].creates_twins
                       ? ",{\"propertyName\":\"humidity\",\"reported\":{\"value\":\"\"},"
                         "\"observedDesired\":{\"value\":\"\"}}"
                       : "");
    ck_assert_msg(strstr(dev, json), "status: %s", dev);
    ck_assert_ptr_null(strstr(dev, "\"40\""));
    kedge_free(dev);

    /* the four reports were received and recorded, the unknown one too */
    ck_assert_int_eq(count_received(s, "?skip_keepalive=1", "update"), 4);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* The edge controller: node insert gets {"Object":<node as the API server made it>,"Err":null}
 * (uid, resourceVersion, creationTimestamp filled in); a query finds it (the object itself,
 * resourceversion set, as recorded); before that, NotFound; a status patch is applied and
 * answered with the patched Node; lease queries answer in an ObjectResp. A "response" from the
 * edge is never answered. */
START_TEST(test_edge_controller_replies)
{
    struct simctl *s = sim_start(0, 0);
    const char *node = "{\"metadata\":{\"name\":\"edge-node\",\"creationTimestamp\":null,"
                       "\"labels\":{\"a\":\"b\"}},\"spec\":{},\"status\":{\"phase\":\"Running\"}}";
    char json[2048], *created;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *obj, *meta;
    struct kedge_msg m;
    struct wsc w;

    edge_connect(&w, s, "edge-node");
    edge_msg(json, sizeof(json), "q0", "edged", "meta", "query", "null/node/edge-node", "null");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "q0");
    ck_assert_str_eq(m.resource, "null/node/edge-node");
    ck_assert_str_eq(m.content,
                     "{\"ErrStatus\":{\"metadata\":{},\"status\":\"Failure\",\"message\":"
                     "\"node \\\"edge-node\\\" not found\",\"reason\":\"NotFound\",\"details\":{"
                     "\"name\":\"edge-node\",\"kind\":\"node\"},\"code\":404}}");
    kedge_msg_cleanup(&m);

    edge_msg(json, sizeof(json), "n1", "edged", "meta", "insert", "null/node/edge-node", node);
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "n1");
    ck_assert_str_eq(m.source, "edgecontroller");
    ck_assert_str_eq(m.group, "resource");
    ck_assert_str_eq(m.operation, "response");
    ck_assert_str_eq(m.resource, "null/node/edge-node");
    ck_assert_int_eq(kedge_json_parse(m.content, m.content_len, &doc), 0);
    ck_assert(kedge_json_is_null(kedge_json_get(kedge_jdoc_root(doc), "Err")));
    obj = kedge_json_get(kedge_jdoc_root(doc), "Object");
    meta = kedge_json_get(obj, "metadata");
    ck_assert_str_eq(kedge_json_get(meta, "name")->str, "edge-node");
    ck_assert_int_eq((int)kedge_json_get(meta, "uid")->len, KEDGE_UUID_LEN);
    ck_assert_int_gt((int)kedge_json_get(meta, "resourceVersion")->len, 0);
    ck_assert_int_eq((int)kedge_json_get(meta, "creationTimestamp")->len, 20);
    ck_assert_str_eq(kedge_json_get(kedge_json_get(meta, "labels"), "a")->str, "b");
    ck_assert_str_eq(kedge_json_get(kedge_json_get(obj, "status"), "phase")->str, "Running");
    created = kedge_strndup(m.content + 10, m.content_len - 10 - strlen(",\"Err\":null}"));
    ck_assert_ptr_nonnull(created);
    kedge_jdoc_free(doc);
    kedge_msg_cleanup(&m);

    /* the edge acks the reply (as edgecore does); never answered, never forwarded */
    wsc_send(&w, "{\"header\":{\"msg_id\":\"a1\",\"parent_msg_id\":\"whatever\",\"timestamp\":1},"
                 "\"route\":{\"source\":\"edgecontroller\",\"group\":\"resource\",\"operation\":"
                 "\"response\",\"resource\":\"null/node/edge-node\"},\"content\":\"OK\"}");
    edge_msg(json, sizeof(json), "q1", "edged", "meta", "query", "default/node/edge-node", "null");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "q1"); /* the first answer is the query's */
    ck_assert_str_eq(m.content, created);
    ck_assert_ptr_nonnull(m.resource_version);
    kedge_msg_cleanup(&m);

    /* a second insert: the API server's AlreadyExists */
    edge_msg(json, sizeof(json), "n2", "edged", "meta", "insert", "null/node/edge-node", node);
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "n2");
    ck_assert_ptr_nonnull(strstr(m.content, "\"reason\":\"AlreadyExists\""));
    ck_assert_ptr_nonnull(strstr(m.content, "\"code\":409"));
    kedge_msg_cleanup(&m);

    edge_msg(json, sizeof(json), "p1", "edged", "meta", "patch", "null/nodepatch/edge-node",
             "\"{\\\"status\\\":{\\\"phase\\\":\\\"Pending\\\"}}\"");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "p1");
    ck_assert_str_eq(m.resource, "null/nodepatch/edge-node");
    ck_assert_int_eq(kedge_json_parse(m.content, m.content_len, &doc), 0);
    obj = kedge_json_get(kedge_jdoc_root(doc), "Object");
    ck_assert_str_eq(kedge_json_get(kedge_json_get(obj, "status"), "phase")->str, "Pending");
    ck_assert_str_eq(kedge_json_get(kedge_json_get(obj, "metadata"), "resourceVersion")->str,
                     m.resource_version); /* a new version, in the header and the object */
    kedge_jdoc_free(doc);
    kedge_msg_cleanup(&m);
    kedge_free(created);

    edge_msg(json, sizeof(json), "l1", "edged", "meta", "query", "kube-node-lease/lease/edge-node",
             "null");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "l1");
    ck_assert_str_eq(m.content,
                     "{\"Object\":null,\"Err\":{\"ErrStatus\":{\"metadata\":{},\"status\":"
                     "\"Failure\",\"message\":\"lease.coordination.k8s.io \\\"edge-node\\\" not "
                     "found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"edge-node\","
                     "\"group\":\"coordination.k8s.io\",\"kind\":\"lease\"},\"code\":404}}}");
    kedge_msg_cleanup(&m);

    /* a configmap the cloud sent is what a later query gets */
    ck_assert_int_eq(simctl_send(s, NULL, CONFIGMAP_UPDATE, NULL), 0);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.resource, "default/configmap/cfg");
    edge_ack(&w, &m);
    kedge_msg_cleanup(&m);
    edge_msg(json, sizeof(json), "c1", "edged", "meta", "query", "default/configmap/cfg", "null");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "c1");
    ck_assert_str_eq(m.content, "{\"metadata\":{\"name\":\"cfg\"},\"data\":{\"k\":\"v\"}}");
    ck_assert_str_eq(m.resource_version, "77");
    kedge_msg_cleanup(&m);

    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* A pod's kube-api-access volume: the TokenRequest query is answered as cloudcore forwards the
 * API server's answer (the TokenRequest, audiences defaulted, a JWT bound to the pod, no
 * resourceversion); a pod not in the store is NotFound, another uid a Conflict; kube-root-ca.crt
 * exists in every namespace and holds the CA. */
#define TOKEN_REQ(uid)                                                                             \
    "{\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"audiences\":null,"                     \
    "\"expirationSeconds\":3607,\"boundObjectRef\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\","       \
    "\"name\":\"nginx\",\"uid\":\"" uid "\"}},\"status\":{\"token\":\"\","                         \
    "\"expirationTimestamp\":null}}"

START_TEST(test_service_account_token)
{
    struct simctl *s = sim_start(0, 0);
    char json[2048], *ca = NULL;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *st, *v;
    struct kedge_msg m;
    struct wsc w;
    size_t ca_len = 0;
    FILE *f;

    edge_connect(&w, s, "edge-node");
    edge_msg(json, sizeof(json), "t0", "edged", "meta", "query",
             "default/serviceaccounttoken/default", TOKEN_REQ("u-1"));
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "t0");
    ck_assert_msg(strstr(m.content, "\"reason\":\"NotFound\"") &&
                      strstr(m.content, "pods \\\"nginx\\\" not found"),
                  "%s", m.content);
    kedge_msg_cleanup(&m);

    ck_assert_int_eq(simctl_send(s, NULL,
                                 "{\"header\":{\"resourceversion\":\"5\"},\"route\":{\"source\":"
                                 "\"edgecontroller\",\"group\":\"resource\",\"operation\":"
                                 "\"insert\",\"resource\":\"default/pod/nginx\"},\"content\":"
                                 "{\"metadata\":{\"name\":\"nginx\",\"namespace\":\"default\","
                                 "\"uid\":\"u-1\"}}}",
                                 NULL),
                     0);
    wsc_expect_next(&w, &m);
    edge_ack(&w, &m);
    kedge_msg_cleanup(&m);
    edge_msg(json, sizeof(json), "t1", "edged", "meta", "query",
             "default/serviceaccounttoken/default", TOKEN_REQ("u-1"));
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "t1");
    ck_assert_str_eq(m.source, "edgecontroller");
    ck_assert_str_eq(m.group, "resource");
    ck_assert_str_eq(m.operation, "response");
    ck_assert_str_eq(m.resource, "default/serviceaccounttoken/default");
    ck_assert_ptr_null(m.resource_version);
    ck_assert_int_eq(kedge_json_parse(m.content, m.content_len, &doc), 0);
    root = kedge_jdoc_root(doc);
    ck_assert_str_eq(kedge_json_get(root, "kind")->str, "TokenRequest");
    v = kedge_json_get(kedge_json_get(root, "spec"), "audiences");
    ck_assert_str_eq(v->child->str, "https://kubernetes.default.svc.cluster.local");
    ck_assert_str_eq(
        kedge_json_get(kedge_json_get(kedge_json_get(root, "spec"), "boundObjectRef"), "uid")->str,
        "u-1");
    st = kedge_json_get(root, "status");
    v = kedge_json_get(st, "token");
    ck_assert_msg(v && v->type == KEDGE_JSTR && strchr(v->str, '.') &&
                      strchr(strchr(v->str, '.') + 1, '.'),
                  "token %s", m.content);
    v = kedge_json_get(st, "expirationTimestamp");
    ck_assert_msg(v && v->type == KEDGE_JSTR && v->len == 20 && v->str[19] == 'Z', "%s", m.content);
    kedge_jdoc_free(doc);
    kedge_msg_cleanup(&m);

    edge_msg(json, sizeof(json), "t2", "edged", "meta", "query",
             "default/serviceaccounttoken/default", TOKEN_REQ("u-2"));
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_msg(strstr(m.content, "\"reason\":\"Conflict\"") && strstr(m.content, "\"code\":409"),
                  "%s", m.content);
    kedge_msg_cleanup(&m);

    edge_msg(json, sizeof(json), "r1", "edged", "meta", "query",
             "kube-system/configmap/kube-root-ca.crt", "null");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "r1");
    f = fopen(simctl_cert_path(s, "rootCA.crt"), "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_gt(getdelim(&ca, &ca_len, '\0', f), 0);
    fclose(f);
    ck_assert_int_eq(kedge_json_parse(m.content, m.content_len, &doc), 0);
    root = kedge_jdoc_root(doc);
    ck_assert_str_eq(kedge_json_get(kedge_json_get(root, "metadata"), "namespace")->str,
                     "kube-system");
    ck_assert_str_eq(kedge_json_get(kedge_json_get(root, "data"), "ca.crt")->str, ca);
    kedge_jdoc_free(doc);
    kedge_msg_cleanup(&m);
    free(ca);

    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* One node of GET /nodes: its "ready", "registrations", "lease_renew_ms", and the status of
 * condition `cond` (its reason in reason[]). */
struct node_view {
    char ready[16], cond_status[16], cond_reason[64];
    int64_t registrations, lease_renew_ms;
};

static void node_view(struct simctl *s, const char *name, const char *cond, struct node_view *v)
{
    struct kedge_jdoc *doc = get_json(s, "/nodes");
    const struct kedge_jval *n, *c;

    memset(v, 0, sizeof(*v));
    n = kedge_json_get(kedge_jdoc_root(doc), "nodes");
    ck_assert_ptr_nonnull(n);
    for (n = n->child; n && !str_eq(kedge_json_get(n, "name")->str, name); n = n->next)
        ;
    ck_assert_msg(n != NULL, "/nodes has no node %s", name);
    (void)snprintf(v->ready, sizeof(v->ready), "%s", kedge_json_get(n, "ready")->str);
    ck_assert_int_eq(kedge_json_int64(kedge_json_get(n, "registrations"), &v->registrations), 0);
    ck_assert_int_eq(kedge_json_int64(kedge_json_get(n, "lease_renew_ms"), &v->lease_renew_ms), 0);
    c = kedge_json_get(kedge_json_get(n, "status"), "conditions");
    for (c = c ? c->child : NULL; c; c = c->next) {
        if (!str_eq(kedge_json_get(c, "type")->str, cond))
            continue;
        (void)snprintf(v->cond_status, sizeof(v->cond_status), "%s",
                       kedge_json_get(c, "status")->str);
        (void)snprintf(v->cond_reason, sizeof(v->cond_reason), "%s",
                       kedge_json_get(c, "reason")->str);
    }
    kedge_jdoc_free(doc);
}

/* A request from edged and the cloud's answer to it (m: the caller cleans it up). */
static void edge_call(struct wsc *w, const char *id, const char *op, const char *resource,
                      const char *content, struct kedge_msg *m)
{
    char json[4096];

    edge_msg(json, sizeof(json), id, "edged", "meta", op, resource, content);
    wsc_send(w, json);
    wsc_expect_next(w, m);
    ck_assert_str_eq(m->parent_msg_id, id);
}

static void edge_request(struct wsc *w, const char *id, const char *op, const char *resource,
                         const char *content)
{
    struct kedge_msg m;

    edge_call(w, id, op, resource, content, &m);
    kedge_msg_cleanup(&m);
}

/* A message from edged, its answer not awaited. */
static void edge_msg_send(struct wsc *w, const char *id, const char *op, const char *resource,
                          const char *content)
{
    char json[4096];

    edge_msg(json, sizeof(json), id, "edged", "meta", op, resource, content);
    wsc_send(w, json);
}

#define NODE_READY                                                                                 \
    "{\"metadata\":{\"name\":\"edge-node\"},\"spec\":{},\"status\":{\"conditions\":["              \
    "{\"type\":\"MemoryPressure\",\"status\":\"False\",\"reason\":\"KubeletHasMemory\"},"          \
    "{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\"}],"                       \
    "\"addresses\":[{\"type\":\"Hostname\",\"address\":\"edge-node\"}]}}"
#define LEASE(t)                                                                                   \
    "{\"metadata\":{\"name\":\"edge-node\",\"namespace\":\"kube-node-lease\"},\"spec\":{"          \
    "\"holderIdentity\":\"edge-node\",\"leaseDurationSeconds\":40,\"renewTime\":\"" t "\"}}"

/* The node lifecycle (nodes.c): Ready as the kubelet reports it; status patches merge their
 * conditions by type; the lease's renewTime is tracked; without a renewal for --node-grace-s
 * every condition turns Unknown (NodeStatusUnknown); a renewal plus a Ready report bring it
 * back. Every insert counts as a registration. */
START_TEST(test_node_lifecycle)
{
    char grace_s[16];
    const char *args[] = {"--node-grace-s", grace_s, NULL};
    struct simctl_opts o;
    struct wsc_opts eo;
    struct node_view v;
    struct simctl *s;
    struct wsc w;
    int64_t deadline;

    /* long enough for the steps below to happen inside it, even under valgrind */
    (void)snprintf(grace_s, sizeof(grace_s), "%d", simctl_scale_ms(2000) / 1000);
    memset(&o, 0, sizeof(o));
    o.extra_args = args;
    s = sim_start_opts(&o);
    /* keepalives: the scaled grace period (40 s under valgrind) outlasts the 30 s deadline */
    eo = edge_opts(s, "edge-node");
    eo.keepalive_ms = 5000;
    wsc_open(&w, s, &eo);
    ck_assert_msg(w.state == WSC_OPEN, "edge could not connect: %s", w.error);
    edge_request(&w, "n1", "insert", "null/node/edge-node", NODE_READY);
    edge_request(&w, "l1", "insert", "kube-node-lease/lease/edge-node",
                 LEASE("2030-01-01T00:00:00.250000Z"));
    node_view(s, "edge-node", "Ready", &v);
    ck_assert_str_eq(v.ready, "True");
    ck_assert_int_eq(v.registrations, 1);
    ck_assert_int_eq(v.lease_renew_ms, 1893456000250LL);

    /* merge by type: Ready changes, MemoryPressure stays, a new condition is added */
    edge_request(&w, "p1", "patch", "null/nodepatch/edge-node",
                 "\"{\\\"status\\\":{\\\"conditions\\\":[{\\\"type\\\":\\\"Ready\\\","
                 "\\\"status\\\":\\\"False\\\",\\\"reason\\\":\\\"KubeletNotReady\\\"},{"
                 "\\\"type\\\":\\\"PIDPressure\\\",\\\"status\\\":\\\"False\\\",\\\"reason\\\":"
                 "\\\"KubeletHasSufficientPID\\\"}]}}\"");
    node_view(s, "edge-node", "Ready", &v);
    ck_assert_str_eq(v.ready, "False");
    ck_assert_str_eq(v.cond_reason, "KubeletNotReady");
    node_view(s, "edge-node", "MemoryPressure", &v);
    ck_assert_str_eq(v.cond_status, "False");
    node_view(s, "edge-node", "PIDPressure", &v);
    ck_assert_str_eq(v.cond_reason, "KubeletHasSufficientPID");

    /* no renewal: Unknown, every condition, once the grace period is over */
    deadline = mono_ms() + simctl_scale_ms(2000) + simctl_scale_ms(DEADLINE_MS);
    for (;;) {
        node_view(s, "edge-node", "Ready", &v);
        if (str_eq(v.ready, "Unknown") || mono_ms() > deadline)
            break;
        wsc_quiet(&w, 50);
    }
    ck_assert_str_eq(v.ready, "Unknown");
    ck_assert_str_eq(v.cond_reason, "NodeStatusUnknown");
    node_view(s, "edge-node", "MemoryPressure", &v);
    ck_assert_str_eq(v.cond_status, "Unknown");
    ck_assert_str_eq(v.cond_reason, "NodeStatusUnknown");

    /* a renewal alone does not make it Ready; the kubelet's next report does */
    edge_request(&w, "l2", "update", "kube-node-lease/lease/edge-node",
                 LEASE("2030-01-01T00:00:10.000000Z"));
    node_view(s, "edge-node", "Ready", &v);
    ck_assert_str_eq(v.ready, "Unknown");
    ck_assert_int_eq(v.lease_renew_ms, 1893456010000LL);
    edge_request(&w, "p2", "patch", "null/nodepatch/edge-node",
                 "\"{\\\"status\\\":{\\\"conditions\\\":[{\\\"type\\\":\\\"Ready\\\","
                 "\\\"status\\\":\\\"True\\\",\\\"reason\\\":\\\"KubeletReady\\\"}]}}\"");
    node_view(s, "edge-node", "Ready", &v);
    ck_assert_str_eq(v.ready, "True");
    ck_assert_int_eq(v.registrations, 1);

    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* ---- pods ----------------------------------------------------------------------------------- */

#define POD_UID "2b7e1b0c-4f0e-4b8e-9a51-6a3c5b7d9e01"
#define POD_STORED                                                                                 \
    "{\"metadata\":{\"name\":\"nginx\",\"namespace\":\"default\",\"uid\":\"" POD_UID "\"},"        \
    "\"spec\":{\"nodeName\":\"edge-node\",\"containers\":[{\"name\":\"a\",\"image\":\"nginx\"},"   \
    "{\"name\":\"b\",\"image\":\"busybox\"}]},\"status\":{\"phase\":\"Pending\",\"conditions\":["  \
    "{\"type\":\"PodScheduled\",\"status\":\"True\"}],\"containerStatuses\":[{\"name\":\"a\","     \
    "\"ready\":false},{\"name\":\"b\",\"ready\":false}]}}"
#define POD_SEND(name, content)                                                                    \
    "{\"header\":{\"resourceversion\":\"4711\"},\"route\":{\"source\":\"edgecontroller\","         \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":\"default/pod/" name "\"},"      \
    "\"content\":" content "}"
#define POD_TERMINATING                                                                            \
    "{\"metadata\":{\"name\":\"nginx\",\"namespace\":\"default\",\"uid\":\"" POD_UID "\","         \
    "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\",\"deletionGracePeriodSeconds\":30},"           \
    "\"spec\":{\"nodeName\":\"edge-node\",\"containers\":[{\"name\":\"a\",\"image\":\"nginx\"}]}}"
/* client-go's empty Pod: the Object beside an error */
#define EMPTY_POD                                                                                  \
    "{\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"containers\":null},\"status\":{}}"

/* json as a JSON string: a patch's content is a string holding the patch (§5.1). */
static char *as_string(const char *json)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char *out;

    ck_assert_int_eq(kedge_json_escape(&b, json, strlen(json)), 0);
    out = kedge_buf_take(&b, NULL);
    ck_assert_ptr_nonnull(out);
    return out;
}

/* A podpatch from edged (the patch JSON sent as a string), its reply in m. */
static void pod_patch(struct wsc *w, const char *id, const char *name, const char *patch,
                      struct kedge_msg *m)
{
    char resource[128], *content = as_string(patch);

    (void)snprintf(resource, sizeof(resource), "default/podpatch/%s", name);
    edge_call(w, id, "patch", resource, content, m);
    ck_assert_str_eq(m->source, "edgecontroller");
    ck_assert_str_eq(m->group, "resource");
    ck_assert_str_eq(m->operation, "response");
    ck_assert_str_eq(m->resource, resource);
    kedge_free(content);
}

/* The cloud sends a pod to the edge (stored in the cloud's store), and the edge acks it. */
static void cloud_sends_pod(struct simctl *s, struct wsc *w, const char *json)
{
    struct kedge_msg m;

    ck_assert_int_eq(simctl_send(s, NULL, json, NULL), 0);
    wsc_expect_next(w, &m);
    edge_ack(w, &m);
    kedge_msg_cleanup(&m);
}

/* GET /object?key=: the object's JSON text (kedge_malloc'd) or NULL for a 404. */
static char *get_object(struct simctl *s, const char *key)
{
    struct kedge_buf body = KEDGE_BUF_INIT;
    char path[512];
    int status;

    (void)snprintf(path, sizeof(path), "/object?key=%s", key);
    ck_assert_int_eq(simctl_http(s, "GET", path, NULL, &status, &body), 0);
    if (status == 404) {
        ck_assert_str_eq(body.data, "{\"error\":\"no such object\"}\n");
        kedge_buf_cleanup(&body);
        return NULL;
    }
    ck_assert_int_eq(status, 200);
    ck_assert(body.len > 0 && body.data[body.len - 1] == '\n');
    body.data[--body.len] = '\0';
    return kedge_buf_take(&body, NULL);
}

/* One pod of GET /pods by key (its fields in v), or false when it is not listed. */
struct pod_view {
    char uid[64], phase[32];
    int64_t patches;
    int count; /* pods listed in all */
};

static bool pod_view(struct simctl *s, const char *key, struct pod_view *v)
{
    struct kedge_jdoc *doc = get_json(s, "/pods");
    const struct kedge_jval *p;
    bool found = false;

    memset(v, 0, sizeof(*v));
    p = kedge_json_get(kedge_jdoc_root(doc), "pods");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->type, KEDGE_JARR);
    for (p = p->child; p; p = p->next, v->count++) {
        if (!str_eq(kedge_json_get(p, "key")->str, key))
            continue;
        found = true;
        (void)snprintf(v->uid, sizeof(v->uid), "%s", kedge_json_get(p, "uid")->str);
        (void)snprintf(v->phase, sizeof(v->phase), "%s", kedge_json_get(p, "phase")->str);
        ck_assert_int_eq(kedge_json_int64(kedge_json_get(p, "patches"), &v->patches), 0);
        ck_assert_int_eq(kedge_json_get(p, "object")->type, KEDGE_JOBJ);
    }
    kedge_jdoc_free(doc);
    return found;
}

/* A request answered in order after everything the edge sent before it: a lease query, whose
 * answer needs no ack (§5.2). */
enum { DEL_UPDATE = 1, DEL_DELETE = 2 };

/* The edge deletes pod default/pod/{name}: cloudcore answers "OK" (parent id), and for a pod
 * that went, the watch events come down (`update` if it was terminating, then `delete`), each
 * acked here; `events` says which must come. They and the answer may come in any order
 * (cloudcore sends them from different goroutines), the update before the delete. */
static void edge_delete(struct wsc *w, const char *id, const char *name, const char *content,
                        int events)
{
    char resource[128];
    int seen = 0;
    bool answered = false;

    (void)snprintf(resource, sizeof(resource), "default/pod/%s", name);
    edge_msg_send(w, id, "delete", resource, content);
    while (!answered || seen != events) {
        struct kedge_msg m;
        wsc_expect_next(w, &m);
        if (str_eq(m.operation, "response")) {
            ck_assert_str_eq(m.parent_msg_id, id);
            ck_assert(m.content_is_string && !strcmp(m.content_str, "OK"));
            answered = true;
        } else {
            int ev = str_eq(m.operation, "update") ? DEL_UPDATE : DEL_DELETE;
            ck_assert_str_eq(m.source, "edgecontroller");
            ck_assert_str_eq(m.resource, resource);
            ck_assert_msg(str_eq(m.operation, "update") || str_eq(m.operation, "delete"), "%s",
                          m.operation);
            ck_assert_msg((events & ev) && !(seen & ev), "unexpected %s", m.operation);
            ck_assert_msg(ev == DEL_UPDATE || !(events & DEL_UPDATE) || (seen & DEL_UPDATE),
                          "the delete came before the update");
            ck_assert_ptr_nonnull(strstr(m.content, name)); /* the Pod as stored */
            seen |= ev;
            edge_ack(w, &m);
        }
        kedge_msg_cleanup(&m);
    }
}

/* Pod status (§7, §8.4 step 6): a podpatch is applied to the pod the cloud sent as the API
 * server applies PATCH pods/status (strategic merge: conditions merge by type, the container
 * status lists are atomic and replaced, only status is taken) and answered with the patched
 * Pod and its new resourceVersion. A patch naming another pod's uid is Invalid and changes
 * nothing; a pod the cloud does not have is NotFound; a patch that is not an object is a
 * BadRequest. GET /pods and GET /object show the result. */
START_TEST(test_pod_status_patch)
{
    struct simctl *s = sim_start(0, 0);
    char expect[2048], *obj, *after_first;
    struct pod_view v;
    struct kedge_msg m;
    struct wsc w;

    edge_connect(&w, s, "edge-node");
    cloud_sends_pod(s, &w, POD_SEND("nginx", POD_STORED));
    ck_assert(pod_view(s, "default/pod/nginx", &v));
    ck_assert_int_eq(v.count, 1);
    ck_assert_str_eq(v.uid, POD_UID);
    ck_assert_str_eq(v.phase, "Pending");
    ck_assert_int_eq(v.patches, 0);

    /* the uid is a precondition; conditions merge by type (PodScheduled keeps its place and
     * gains a field, Ready is added); containerStatuses is replaced whole; spec and the rest of
     * metadata stay; a new resourceVersion, in the header and in the object */
    pod_patch(&w, "pp1", "nginx",
              "{\"metadata\":{\"uid\":\"" POD_UID "\"},\"status\":{\"phase\":\"Running\","
              "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},{\"type\":"
              "\"PodScheduled\",\"status\":\"True\",\"lastTransitionTime\":"
              "\"2030-01-01T00:00:00Z\"}],\"podIP\":\"10.0.0.5\",\"containerStatuses\":[{"
              "\"name\":\"b\",\"ready\":true,\"restartCount\":0}]}}",
              &m);
    ck_assert_ptr_nonnull(m.resource_version);
    ck_assert_str_ne(m.resource_version, "4711");
    (void)snprintf(
        expect, sizeof(expect),
        "{\"Object\":{\"metadata\":{\"name\":\"nginx\",\"namespace\":\"default\",\"uid\":"
        "\"" POD_UID "\",\"resourceVersion\":\"%s\"},\"spec\":{\"nodeName\":\"edge-node\","
        "\"containers\":[{\"name\":\"a\",\"image\":\"nginx\"},{\"name\":\"b\",\"image\":"
        "\"busybox\"}]},\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":"
        "\"PodScheduled\",\"status\":\"True\",\"lastTransitionTime\":\"2030-01-01T00:00:00Z\"},"
        "{\"type\":\"Ready\",\"status\":\"True\"}],\"containerStatuses\":[{\"name\":\"b\","
        "\"ready\":true,\"restartCount\":0}],\"podIP\":\"10.0.0.5\"}},\"Err\":null}",
        m.resource_version);
    ck_assert_str_eq(m.content, expect);
    kedge_msg_cleanup(&m);
    ck_assert(pod_view(s, "default/pod/nginx", &v));
    ck_assert_str_eq(v.phase, "Running");
    ck_assert_int_eq(v.patches, 1);
    /* GET /object is the Object the edge got */
    after_first = get_object(s, "default/pod/nginx");
    ck_assert_ptr_nonnull(after_first);
    ck_assert_int_eq(strncmp(expect + strlen("{\"Object\":"), after_first, strlen(after_first)), 0);
    ck_assert_str_eq(expect + strlen("{\"Object\":") + strlen(after_first), ",\"Err\":null}");
    obj = get_object(s, "default%2Fpod%2Fnginx"); /* the key may be URL-encoded */
    ck_assert_ptr_nonnull(obj);
    ck_assert_str_eq(obj, after_first);
    kedge_free(obj);

    /* another pod's uid: Invalid (the uid is immutable), the empty Pod beside it, no version,
     * nothing applied */
    pod_patch(&w, "pp2", "nginx",
              "{\"metadata\":{\"uid\":\"other-uid\"},\"status\":{\"phase\":\"Failed\"}}", &m);
    ck_assert_str_eq(
        m.content,
        "{\"Object\":" EMPTY_POD ",\"Err\":{\"ErrStatus\":{\"metadata\":{},\"status\":\"Failure\","
        "\"message\":\"Pod \\\"nginx\\\" is invalid: metadata.uid: Invalid value: "
        "\\\"other-uid\\\": field is immutable\",\"reason\":\"Invalid\",\"details\":{\"name\":"
        "\"nginx\",\"kind\":\"Pod\",\"causes\":[{\"reason\":\"FieldValueInvalid\",\"message\":"
        "\"Invalid value: \\\"other-uid\\\": field is immutable\",\"field\":\"metadata.uid\"}]},"
        "\"code\":422}}}");
    ck_assert(!m.resource_version || !*m.resource_version);
    kedge_msg_cleanup(&m);
    obj = get_object(s, "default/pod/nginx");
    ck_assert_str_eq(obj, after_first);
    kedge_free(obj);

    /* no uid: no precondition; a condition changes in place, the other lists stay */
    pod_patch(&w, "pp3", "nginx",
              "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","
              "\"reason\":\"ContainersNotReady\"}]}}",
              &m);
    ck_assert_ptr_nonnull(strstr(
        m.content, "\"conditions\":[{\"type\":\"PodScheduled\",\"status\":\"True\","
                   "\"lastTransitionTime\":\"2030-01-01T00:00:00Z\"},{\"type\":\"Ready\","
                   "\"status\":\"False\",\"reason\":\"ContainersNotReady\"}],"
                   "\"containerStatuses\":[{\"name\":\"b\",\"ready\":true,\"restartCount\":0}]"));
    kedge_msg_cleanup(&m);
    ck_assert(pod_view(s, "default/pod/nginx", &v));
    ck_assert_int_eq(v.patches, 2);

    /* a pod the cloud does not have */
    pod_patch(&w, "pp4", "ghost",
              "{\"metadata\":{\"uid\":\"" POD_UID "\"},\"status\":{\"phase\":\"Running\"}}", &m);
    ck_assert_str_eq(m.content,
                     "{\"Object\":" EMPTY_POD ",\"Err\":{\"ErrStatus\":{\"metadata\":{},"
                     "\"status\":\"Failure\",\"message\":\"pods \\\"ghost\\\" not found\","
                     "\"reason\":\"NotFound\",\"details\":{\"name\":\"ghost\",\"kind\":\"pods\"},"
                     "\"code\":404}}}");
    ck_assert(!m.resource_version || !*m.resource_version);
    kedge_msg_cleanup(&m);
    ck_assert(!pod_view(s, "default/pod/ghost", &v));

    /* a patch that is not an object */
    pod_patch(&w, "pp5", "nginx", "[1]", &m);
    ck_assert_ptr_nonnull(strstr(m.content, "\"reason\":\"BadRequest\""));
    ck_assert_ptr_nonnull(strstr(m.content, "\"code\":400"));
    kedge_msg_cleanup(&m);
    ck_assert(pod_view(s, "default/pod/nginx", &v));
    ck_assert_int_eq(v.patches, 2);

    kedge_free(after_first);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* The edge finalises a pod the cloud deleted (§5.1 pod delete): the delete removes it from the
 * store when its uid is the pod's (DeleteOptions preconditions, metadata, or the bare uid of
 * old edges), and leaves it when the uid is another pod's; each is answered "OK" (cloudcore's
 * deletePod), and a removed pod's watch events follow (a terminating pod's late update, the
 * delete). GET /object: 404 for what is not stored, 400 without a key, and Nodes by either
 * key. */
START_TEST(test_pod_delete_and_object_api)
{
    struct simctl *s = sim_start(0, 0);
    struct kedge_buf body = KEDGE_BUF_INIT;
    struct pod_view v;
    struct wsc w;
    char *obj;
    int status;

    edge_connect(&w, s, "edge-node");
    cloud_sends_pod(s, &w, POD_SEND("nginx", POD_STORED));
    cloud_sends_pod(s, &w, POD_SEND("web", "{\"metadata\":{\"name\":\"web\"}}"));
    ck_assert(pod_view(s, "default/pod/web", &v));
    ck_assert_int_eq(v.count, 2);
    ck_assert_str_eq(v.uid, "");
    ck_assert_str_eq(v.phase, "");

    /* another pod's uid: stays; answered "OK" all the same */
    edge_delete(&w, "d1", "nginx",
                "{\"gracePeriodSeconds\":0,\"preconditions\":{\"uid\":\"other-uid\"}}", 0);
    ck_assert(pod_view(s, "default/pod/nginx", &v));
    ck_assert_int_eq(v.count, 2);

    /* its own uid: gone, "OK", and the API server's DELETED event comes down as a delete */
    edge_delete(&w, "d2", "nginx",
                "{\"gracePeriodSeconds\":0,\"preconditions\":{\"uid\":\"" POD_UID "\"}}",
                DEL_DELETE);
    ck_assert(!pod_view(s, "default/pod/nginx", &v));
    ck_assert_int_eq(v.count, 1);
    ck_assert_ptr_null(get_object(s, "default/pod/nginx"));

    /* the uid as the content (before v1.12); then a pod without a uid, DeleteOptions {} */
    cloud_sends_pod(s, &w, POD_SEND("nginx", POD_STORED));
    edge_delete(&w, "d3", "nginx", "\"" POD_UID "\"", DEL_DELETE);
    edge_delete(&w, "d4", "web", "{}", DEL_DELETE);
    ck_assert(!pod_view(s, "default/pod/nginx", &v));
    ck_assert_int_eq(v.count, 0);

    /* a pod the cloud is deleting (deletionTimestamp): the edge's delete after it finished
     * the pod brings the MODIFIED update (a late update of a finished pod) and the delete */
    cloud_sends_pod(s, &w, POD_SEND("nginx", POD_TERMINATING));
    edge_delete(&w, "d5", "nginx", "\"" POD_UID "\"", DEL_UPDATE | DEL_DELETE);
    ck_assert(!pod_view(s, "default/pod/nginx", &v));

    /* GET /object for other kinds and its errors */
    ck_assert_int_eq(simctl_http(s, "GET", "/object", NULL, &status, &body), 0);
    ck_assert_int_eq(status, 400);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "POST", "/object?key=a/b/c", NULL, &status, &body), 0);
    ck_assert_int_eq(status, 405);
    kedge_buf_cleanup(&body);
    ck_assert_ptr_null(get_object(s, "node/edge-node"));
    edge_request(&w, "n1", "insert", "null/node/edge-node", NODE_READY);
    obj = get_object(s, "node/edge-node");
    ck_assert_ptr_nonnull(strstr(obj, "\"name\":\"edge-node\""));
    kedge_free(obj);
    obj = get_object(s, "null/node/edge-node");
    ck_assert_ptr_nonnull(strstr(obj, "\"name\":\"edge-node\""));
    kedge_free(obj);
    ck_assert_int_eq(simctl_send(s, NULL, CONFIGMAP_UPDATE, NULL), 0);
    obj = get_object(s, "default/configmap/cfg");
    ck_assert_str_eq(obj, "{\"metadata\":{\"name\":\"cfg\"},\"data\":{\"k\":\"v\"}}");
    kedge_free(obj);

    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

static bool cond_frozen(struct simctl *s, void *want)
{
    return state_bool(s, NULL, "frozen") == *(bool *)want;
}

/* /link/freeze: the cloud neither reads nor writes, the TCP connection stays open (also past
 * the keepalive deadline); /link/thaw lets everything through in order. */
START_TEST(test_link_freeze_thaw)
{
    struct simctl *s = sim_start(1, 0);
    char json[2048];
    struct kedge_msg m;
    struct wsc w;
    bool yes = true;

    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(simctl_post(s, "/link/freeze"), 200);
    ck_assert(await_state(s, &w, cond_frozen, &yes));
    ck_assert_int_eq(simctl_send(s, NULL, MEMBERSHIP, NULL), 0);
    edge_msg(json, sizeof(json), "twin-f", "twin", "resource", "update",
             "device/thermo/twin/edge_updated", "{}");
    wsc_send(&w, json);
    /* Observation window: three keepalive deadlines (1 s each) of silence. Nothing may arrive
     * and the link must survive; there is no event to wait for, by design. */
    wsc_quiet(&w, 3000);
    ck_assert_int_eq(w.state, WSC_OPEN);
    ck_assert_int_eq(w.in_total, 0);
    ck_assert_int_eq(count_received(s, NULL, NULL), 0);
    ck_assert(state_bool(s, NULL, "connected"));

    ck_assert_int_eq(simctl_post(s, "/link/thaw"), 200);
    wsc_expect_next(&w, &m); /* the queued membership */
    ck_assert_str_eq(m.resource, "membership");
    kedge_msg_cleanup(&m);
    wsc_expect_next(&w, &m); /* the twin report was read after all, and answered */
    ck_assert_str_eq(m.parent_msg_id, "twin-f");
    kedge_msg_cleanup(&m);
    ck_assert_int_eq(count_received(s, NULL, NULL), 1);
    ck_assert(!state_bool(s, NULL, "frozen"));

    ck_assert_int_eq(simctl_post(s, "/link/freeze?node=nobody"), 404);

    /* the edge's dead-link recovery: it gives up on a frozen link and dials again; the new
     * session replaces the frozen one and is not frozen */
    ck_assert_int_eq(simctl_post(s, "/link/freeze"), 200);
    ck_assert(await_state(s, &w, cond_frozen, &yes));
    wsc_close(&w);
    edge_connect(&w, s, "edge-node");
    ck_assert(state_bool(s, NULL, "connected"));
    ck_assert(!state_bool(s, NULL, "frozen"));
    ck_assert_int_eq(state_int(s, NULL, "sessions_total"), 2);
    ck_assert_int_eq(simctl_send(s, NULL, MEMBERSHIP, NULL), 0);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.resource, "membership");
    kedge_msg_cleanup(&m);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* /link/drop closes the websocket; /link/refuse refuses new connections until it ends. */
START_TEST(test_link_drop_and_refuse)
{
    struct simctl *s = sim_start(0, 0);
    struct wsc w;

    ck_assert_int_eq(simctl_post(s, "/link/drop"), 404); /* nobody connected */
    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(simctl_post(s, "/link/drop"), 200);
    ck_assert_msg(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS), "link/drop did not close");
    ck_assert(!state_bool(s, NULL, "connected"));
    wsc_close(&w);

    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(simctl_post(s, "/link/refuse"), 400); /* seconds is required */
    ck_assert_int_eq(simctl_post(s, "/link/refuse?seconds=600"), 200);
    ck_assert_msg(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS), "link/refuse did not drop");
    wsc_close(&w);
    ck_assert(state_bool(s, NULL, "refusing"));
    {
        struct wsc_opts o = edge_opts(s, "edge-node");
        wsc_open(&w, s, &o);
        ck_assert_msg(!w.was_open, "connected while refusing");
        wsc_close(&w);
    }
    ck_assert_int_eq(simctl_post(s, "/link/refuse?seconds=0"), 200);
    ck_assert(!state_bool(s, NULL, "refusing"));
    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(state_int(s, NULL, "sessions_total"), 3);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* Malformed JSON from the edge is logged and dropped; the link survives and what it carried
 * is received in order. Frames may come fragmented or binary. */
START_TEST(test_malformed_fragmented_binary)
{
    struct simctl *s = sim_start(0, 0);
    char json[2048];
    struct kedge_msg m;
    size_t len, third;
    struct wsc w;
    bool first_bin;

    edge_connect(&w, s, "edge-node");
    thermo_known(s, &w);
    wsc_send(&w, "{\"header\": not json");
    wsc_send(&w, "[1,2,3]");
    wsc_send(&w, "{\"header\":5}");
    /* a twin report in three fragments */
    edge_msg(json, sizeof(json), "frag-1", "twin", "resource", "update",
             "device/thermo/twin/edge_updated", "{\"event_id\":\"x\"}");
    len = strlen(json);
    third = len / 3;
    wsc_queue(&w, json, third, lws_write_ws_flags(LWS_WRITE_TEXT, 1, 0));
    wsc_queue(&w, json + third, third, lws_write_ws_flags(LWS_WRITE_TEXT, 0, 0));
    wsc_queue(&w, json + 2 * third, len - 2 * third, lws_write_ws_flags(LWS_WRITE_TEXT, 0, 1));
    /* and a binary one */
    edge_msg(json, sizeof(json), "bin-1", "twin", "resource", "update",
             "device/thermo/twin/edge_updated", "{}");
    wsc_queue(&w, json, strlen(json), LWS_WRITE_BINARY);

    /* both answered, in the workers' order (workers.c) */
    wsc_expect_next(&w, &m);
    first_bin = !strcmp(m.parent_msg_id, "bin-1");
    ck_assert_str_eq(m.parent_msg_id, first_bin ? "bin-1" : "frag-1");
    kedge_msg_cleanup(&m);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, first_bin ? "frag-1" : "bin-1");
    kedge_msg_cleanup(&m);
    ck_assert_int_eq(w.state, WSC_OPEN);
    ck_assert_int_eq(state_int(s, NULL, "malformed_total"), 3);
    /* websocket pings are answered (lws does it; the cloud never pings itself) */
    wsc_queue(&w, "p", 1, LWS_WRITE_PING);
    ck_assert_msg(wsc_run_until(&w, has_pong, NULL, DEADLINE_MS), "no pong");
    ck_assert_int_eq(count_received(s, NULL, "update"), 2);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* A twin report of `size` bytes of padding, sent in 1 MiB fragments. */
static void send_padded_report(struct wsc *w, const char *id, size_t size)
{
    const size_t chunk = 1u << 20;
    struct kedge_buf msg = KEDGE_BUF_INIT;
    char head[512], *filler;
    size_t off, n;

    edge_msg(head, sizeof(head), id, "twin", "resource", "update",
             "device/thermo/twin/edge_updated", "{\"pad\":\"@\"}");
    filler = malloc(size);
    ck_assert_ptr_nonnull(filler);
    memset(filler, 'x', size);
    ck_assert_int_eq(kedge_buf_append(&msg, head, (size_t)(strchr(head, '@') - head)), 0);
    ck_assert_int_eq(kedge_buf_append(&msg, filler, size), 0);
    ck_assert_int_eq(kedge_buf_puts(&msg, strchr(head, '@') + 1), 0);
    free(filler);
    for (off = 0; off < msg.len; off += n) {
        n = msg.len - off < chunk ? msg.len - off : chunk;
        wsc_queue(w, msg.data + off, n,
                  lws_write_ws_flags(LWS_WRITE_TEXT, off == 0, off + n == msg.len));
    }
    kedge_buf_cleanup(&msg);
}

/* cloudcore v1.15.4 reads messages of any size (no SetReadLimit): by default a message of 17 MiB
 * (past the edge's 16 MiB upload cap plus envelope) is read and answered. --read-limit models a
 * size-limited cloud: a 3 MiB message under a 4 MiB limit passes, a 5 MiB one closes the link
 * with 1009 and is not handled. */
START_TEST(test_big_and_oversize_messages)
{
    static const char *const args[] = {"--read-limit", "4194304", NULL};
    const size_t mib = 1u << 20;
    struct simctl_opts so = {0};
    struct simctl *s = sim_start(0, 0);
    struct kedge_msg m;
    struct wsc w;

    edge_connect(&w, s, "edge-node");
    thermo_known(s, &w);
    send_padded_report(&w, "huge-1", 17 * mib);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "huge-1");
    kedge_msg_cleanup(&m);
    wsc_close(&w);
    sim_stop_ok(s);

    so.extra_args = args;
    s = sim_start_opts(&so);
    edge_connect(&w, s, "edge-node");
    thermo_known(s, &w);
    send_padded_report(&w, "big-1", 3 * mib);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "big-1");
    kedge_msg_cleanup(&m);
    send_padded_report(&w, "over-1", 5 * mib);
    ck_assert_msg(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS), "oversize message not refused");
    ck_assert_int_eq(w.peer_close, 1009);
    ck_assert_int_eq(count_received(s, NULL, "update"), 1);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* A twin report of thermo's temperature: value v, actual_version.edge v. */
static void thermo_report(struct wsc *w, const char *id, int v)
{
    char json[1024], twin[512];

    (void)snprintf(twin, sizeof(twin),
                   "{\"event_id\":\"e-%s\",\"timestamp\":%d,\"twin\":{\"temperature\":{"
                   "\"actual\":{\"value\":\"%d\",\"metadata\":{\"timestamp\":%d}},"
                   "\"metadata\":{\"type\":\"int\"},\"actual_version\":{\"cloud\":0,"
                   "\"edge\":%d}}}}",
                   id, 1000 + v, v, 1000 + v, v);
    edge_msg(json, sizeof(json), id, "twin", "resource", "update",
             "device/thermo/twin/edge_updated", twin);
    wsc_queue(w, json, strlen(json), LWS_WRITE_TEXT);
}

/* Wait for n answers ("OK") from the device controller. */
static void expect_answers(struct wsc *w, int n)
{
    struct kedge_msg m;

    while (n > 0) {
        wsc_expect_next(w, &m);
        ck_assert_str_eq(m.operation, "response");
        n--;
        kedge_msg_cleanup(&m);
    }
}

static int64_t jint(const struct kedge_jval *v)
{
    int64_t x = -999;

    ck_assert_msg(v && kedge_json_int64(v, &x) == 0, "not a number");
    return x;
}

/* GET /applied: per device, the order the workers applied reports in, each twin's value with
 * its edge version, how many reports applied the current value, and every step backwards. A
 * report sent again alone is applied again (times 2); a burst is applied newest first, so the
 * older value lands after the newer one (a regression, as with cloudcore's goroutines). */
START_TEST(test_applied_order)
{
    static const int want[] = {1, 2, 2, 4, 3};
    struct simctl *s = sim_start(0, 0);
    const struct kedge_jval *dev, *t, *e;
    struct kedge_jdoc *doc;
    struct wsc w;
    size_t i;

    edge_connect(&w, s, "edge-node");
    thermo_known(s, &w);
    thermo_report(&w, "r1", 1);
    expect_answers(&w, 1);
    thermo_report(&w, "r2", 2);
    expect_answers(&w, 1);
    thermo_report(&w, "r2", 2); /* a resend */
    expect_answers(&w, 1);
    thermo_report(&w, "r3", 3);
    thermo_report(&w, "r4", 4);
    expect_answers(&w, 2);
    /* a device the controller does not know is not applied */
    {
        char json[512];
        edge_msg(json, sizeof(json), "ghost-1", "twin", "resource", "update",
                 "device/ghost/twin/edge_updated", "{\"twin\":{}}");
        wsc_send(&w, json);
    }

    doc = get_json(s, "/applied?device=thermo");
    ck_assert_int_eq(jint(kedge_json_get(kedge_jdoc_root(doc), "regressions")), 1);
    dev = kedge_json_get(kedge_jdoc_root(doc), "devices")->child;
    ck_assert_ptr_nonnull(dev);
    ck_assert_str_eq(kedge_json_get(dev, "id")->str, "thermo");
    ck_assert_int_eq(jint(kedge_json_get(dev, "reports")), 5);
    ck_assert_int_eq(jint(kedge_json_get(dev, "regressions")), 1);
    t = kedge_json_get(kedge_json_get(dev, "twins"), "temperature");
    ck_assert_str_eq(kedge_json_get(t, "value")->str, "3");
    ck_assert_int_eq(jint(kedge_json_get(t, "edge")), 3);
    ck_assert_int_eq(jint(kedge_json_get(t, "ts")), 1003);
    ck_assert_int_eq(jint(kedge_json_get(t, "times")), 1);
    ck_assert_int_eq(jint(kedge_json_get(t, "regressions")), 1);
    ck_assert_int_eq(jint(kedge_json_get(dev, "log_dropped")), 0);
    for (i = 0, e = kedge_json_get(dev, "log")->child; e; e = e->next, i++) {
        const struct kedge_jval *tw = kedge_json_get(kedge_json_get(e, "twins"), "temperature");
        char v[8];
        ck_assert_uint_lt(i, 5);
        ck_assert_int_eq(jint(kedge_json_get(e, "n")), (int64_t)i + 1);
        (void)snprintf(v, sizeof(v), "%d", want[i]);
        ck_assert_str_eq(kedge_json_get(tw, "value")->str, v);
        ck_assert_int_eq(jint(kedge_json_get(tw, "edge")), want[i]);
        ck_assert_int_eq(jint(kedge_json_get(e, "timestamp")), 1000 + want[i]);
    }
    ck_assert_uint_eq(i, 5);
    kedge_jdoc_free(doc);

    /* the resend: times counts the reports that applied the value it holds */
    thermo_report(&w, "r3", 3);
    expect_answers(&w, 1);
    doc = get_json(s, "/applied?log=0");
    ck_assert_int_eq(jint(kedge_json_get(kedge_jdoc_root(doc), "devices_total")), 1);
    dev = kedge_json_get(kedge_jdoc_root(doc), "devices")->child;
    ck_assert_ptr_null(kedge_json_get(dev, "log"));
    t = kedge_json_get(kedge_json_get(dev, "twins"), "temperature");
    ck_assert_int_eq(jint(kedge_json_get(t, "times")), 2);
    ck_assert_int_eq(jint(kedge_json_get(dev, "reports")), 6);
    kedge_jdoc_free(doc);
    doc = get_json(s, "/applied?device=ghost");
    ck_assert_ptr_null(kedge_json_get(kedge_jdoc_root(doc), "devices")->child);
    kedge_jdoc_free(doc);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

static int64_t faults_int(struct simctl *s, const char *key)
{
    struct kedge_jdoc *doc = get_json(s, "/faults");
    int64_t v = jint(kedge_json_get(kedge_jdoc_root(doc), key));

    kedge_jdoc_free(doc);
    return v;
}

/* POST /faults/reject: an upload to the poison topic is answered with an "error" (NewErrorMessage:
 * parent_msg_id, same resource; group user needs no ack), others pass; a close rule with max 1
 * closes the link with 1009 on the first twin report only; /faults counts and lists the
 * rejections; /faults/clear ends them. A rejected message is still in /received. */
START_TEST(test_reject_fault)
{
    static const char poison[] = "$hw/events/upload/poison";
    struct simctl *s = sim_start(0, 0);
    struct kedge_buf body = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    const struct kedge_jval *e;
    struct kedge_msg m;
    char json[1024];
    struct wsc w;
    int status;

    ck_assert_int_eq(
        simctl_http(s, "POST", "/faults/reject", "{\"mode\":\"close\"}", &status, &body), 0);
    ck_assert_int_eq(status, 400);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "POST", "/faults/reject",
                                 "{\"resource_prefix\":\"x\",\"mode\":\"explode\"}", &status,
                                 &body),
                     0);
    ck_assert_int_eq(status, 400);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "POST", "/faults/reject",
                                 "{\"resource_prefix\":\"$hw/events/upload/poison\","
                                 "\"mode\":\"error\"}",
                                 &status, &body),
                     0);
    ck_assert_int_eq(status, 200);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "POST", "/faults/reject",
                                 "{\"resource_prefix\":\"device/thermo/twin\",\"mode\":\"close\","
                                 "\"max\":1}",
                                 &status, &body),
                     0);
    ck_assert_int_eq(status, 200);
    kedge_buf_cleanup(&body);

    edge_connect(&w, s, "edge-node");
    thermo_known(s, &w);
    edge_msg(json, sizeof(json), "up-poison", "bus", "user", "upload", poison, "\"x\"");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.operation, "error");
    ck_assert_str_eq(m.parent_msg_id, "up-poison");
    ck_assert_str_eq(m.resource, poison);
    ck_assert_str_eq(m.source, "cloudhub");
    ck_assert_str_eq(m.group, "user");
    ck_assert(m.content_is_string);
    kedge_msg_cleanup(&m);
    ck_assert_int_eq(state_int(s, NULL, "pending_acks"), 0); /* group user: no ack needed */
    edge_msg(json, sizeof(json), "up-fine", "bus", "user", "upload", "$hw/events/upload/fine",
             "\"y\"");
    wsc_send(&w, json);
    thermo_report(&w, "t-1", 1);
    ck_assert_msg(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS), "link not closed");
    ck_assert_int_eq(w.peer_close, 1009);
    /* the membership and the error: the upload passed, the report was not handled */
    ck_assert_int_eq(w.in_total, 2);
    wsc_close(&w);
    ck_assert_int_eq(faults_int(s, "rejections_total"), 2);
    ck_assert_int_eq(faults_int(s, "rejections_error"), 1);
    ck_assert_int_eq(faults_int(s, "rejections_close"), 1);
    doc = get_json(s, "/faults");
    e = kedge_json_get(kedge_jdoc_root(doc), "rejected")->child;
    ck_assert_str_eq(kedge_json_get(e, "msg_id")->str, "up-poison");
    ck_assert_str_eq(kedge_json_get(e, "mode")->str, "error");
    ck_assert_str_eq(kedge_json_get(e->next, "msg_id")->str, "t-1");
    ck_assert_str_eq(kedge_json_get(e->next, "mode")->str, "close");
    ck_assert_ptr_null(e->next->next);
    e = kedge_json_get(kedge_jdoc_root(doc), "reject")->child;
    ck_assert_int_eq(jint(kedge_json_get(e, "hits")), 1);
    ck_assert_int_eq(jint(kedge_json_get(e->next, "hits")), 1);
    kedge_jdoc_free(doc);
    ck_assert_int_eq(count_received(s, "?skip_keepalive=1", "upload"), 2);

    /* max 1: the next report is handled */
    edge_connect(&w, s, "edge-node");
    thermo_report(&w, "t-2", 2);
    expect_answers(&w, 1);
    /* cleared: the poison upload passes */
    ck_assert_int_eq(simctl_post(s, "/faults/clear"), 200);
    edge_msg(json, sizeof(json), "up-poison-2", "bus", "user", "upload", poison, "\"x\"");
    wsc_send(&w, json);
    thermo_report(&w, "t-3", 3);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "t-3"); /* the answer to the report, no error before it */
    kedge_msg_cleanup(&m);
    ck_assert_int_eq(faults_int(s, "rejections_total"), 2);
    doc = get_json(s, "/faults");
    ck_assert_ptr_null(kedge_json_get(kedge_jdoc_root(doc), "reject")->child);
    kedge_jdoc_free(doc);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* --on-malformed close: cloudcore's own behaviour (ReadJSON fails, the link is closed). */
START_TEST(test_malformed_close_option)
{
    static const char *const args[] = {"--on-malformed", "close", NULL};
    struct simctl_opts so;
    struct simctl *s;
    struct wsc w;

    memset(&so, 0, sizeof(so));
    so.extra_args = args;
    s = sim_start_opts(&so);
    edge_connect(&w, s, "edge-node");
    wsc_send(&w, "not json");
    ck_assert_msg(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS), "link not closed");
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* Messages queued while no edge is connected go to the first one that connects; unacked ones
 * are sent again, same msg_id, on the next connection; a new connection for the same node
 * replaces the old one. */
START_TEST(test_queue_reconnect_replace)
{
    struct simctl *s = sim_start(0, 60);
    struct kedge_msg m1, m2, m;
    char *pod = NULL;
    struct wsc w, w2;

    ck_assert_int_eq(simctl_send(s, NULL, MEMBERSHIP, NULL), 0);
    ck_assert_int_eq(simctl_send(s, NULL, POD_INSERT, &pod), 0);
    ck_assert_int_eq(state_int(s, NULL, "pending_acks"), 1);
    edge_connect(&w, s, "edge-node");
    wsc_expect_next(&w, &m1);
    wsc_expect_next(&w, &m2);
    /* the ack head and the no-ack queue are independent: either may go first */
    ck_assert(str_eq(m1.resource, "membership") || str_eq(m2.resource, "membership"));
    ck_assert(str_eq(m1.msg_id, pod) || str_eq(m2.msg_id, pod));
    kedge_msg_cleanup(&m1);
    kedge_msg_cleanup(&m2);

    /* replaced: the same node connects again; the old link is closed, the unacked pod is sent
     * on the new one (the resend interval is 60 s, so this is the reconnect, not a resend) */
    {
        struct wsc_opts o2 = edge_opts(s, "edge-node");
        wsc_open_shared(&w2, s, &o2, &w);
        ck_assert_int_eq(w2.state, WSC_OPEN);
    }
    ck_assert_msg(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS), "old session not closed");
    wsc_expect_next(&w2, &m);
    ck_assert_str_eq(m.msg_id, pod);
    edge_ack(&w2, &m);
    ck_assert(await_state(s, &w2, cond_acked, pod));
    kedge_msg_cleanup(&m);
    ck_assert_int_eq(state_int(s, NULL, "sessions_total"), 2);
    ck_assert(state_bool(s, NULL, "connected"));

    /* ?node= for a node that never connected queues for it, /state knows it; so does a
     * cloud-side node/{id}/ resource, which is trimmed before it goes out */
    ck_assert_int_eq(simctl_send(s, "later", POD_INSERT, NULL), 0);
    ck_assert_int_eq(state_int(s, "later", "pending_acks"), 1);
    ck_assert(!state_bool(s, "later", "connected"));
    ck_assert_int_eq(simctl_send(s, NULL,
                                 "{\"route\":{\"source\":\"edgecontroller\",\"group\":"
                                 "\"resource\",\"operation\":\"update\",\"resource\":"
                                 "\"node/other/default/configmap/c\"},\"content\":{}}",
                                 NULL),
                     0);
    ck_assert_int_eq(state_int(s, "other", "pending_acks"), 1);
    ck_assert_int_eq(state_int(s, "edge-node", "pending_acks"), 0);
    {
        struct wsc w3;
        struct wsc_opts o3 = edge_opts(s, "other");
        wsc_open_shared(&w3, s, &o3, &w); /* w is closed, its context is not */
        ck_assert_int_eq(w3.state, WSC_OPEN);
        wsc_expect_next(&w3, &m);
        ck_assert_str_eq(m.resource, "default/configmap/c");
        kedge_msg_cleanup(&m);
        wsc_close(&w3);
    }

    kedge_free(pod);
    wsc_close(&w2);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* The control API's errors and /received's filters. */
START_TEST(test_control_api)
{
    struct simctl *s = sim_start(0, 0);
    struct kedge_buf body = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    char json[1024];
    struct wsc w;
    int status, one = 1, three = 3;

    ck_assert_int_eq(simctl_http(s, "GET", "/nope", NULL, &status, &body), 0);
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(body.data, "{\"error\":\"no such endpoint\"}\n");
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "POST", "/send", "{\"route\":", &status, &body), 0);
    ck_assert_int_eq(status, 400);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "POST", "/send", "[]", &status, &body), 0);
    ck_assert_int_eq(status, 400);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "GET", "/send", NULL, &status, &body), 0);
    ck_assert_int_eq(status, 405);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "GET", "/state?node=ghost", NULL, &status, &body), 0);
    ck_assert_int_eq(status, 404);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "GET", "/received?since=x", NULL, &status, &body), 0);
    ck_assert_int_eq(status, 400);
    kedge_buf_cleanup(&body);

    edge_connect(&w, s, "edge-node");
    send_keepalive(&w);
    edge_msg(json, sizeof(json), "up-1", "bus", "user", "upload", "SYS/dis/upload_records",
             "\"hello\"");
    wsc_send(&w, json);
    send_keepalive(&w);
    ck_assert(await_state(s, &w, cond_received_at_least, &one));
    ck_assert(await_state(s, &w, cond_received_all_at_least, &three));
    ck_assert_int_eq(count_received(s, NULL, NULL), 3);
    ck_assert_int_eq(count_received(s, "?skip_keepalive=1", NULL), 1);
    ck_assert_int_eq(count_received(s, "?since=0", NULL), 2);
    ck_assert_int_eq(count_received(s, "?since=1&skip_keepalive=1", NULL), 0);
    doc = get_json(s, "/received?since=0&skip_keepalive=1");
    {
        const struct kedge_jval *e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child;
        int64_t idx = -1, t = 0;
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(kedge_json_int64(kedge_json_get(e, "index"), &idx), 0);
        ck_assert_int_eq(idx, 1);
        ck_assert_int_eq(kedge_json_int64(kedge_json_get(e, "t_ms"), &t), 0);
        ck_assert_int_gt(t, 1600000000000LL);
        ck_assert_str_eq(
            kedge_json_get(kedge_json_get(kedge_json_get(e, "json"), "header"), "msg_id")->str,
            "up-1");
    }
    kedge_jdoc_free(doc);
    ck_assert_int_eq(w.in_total, 0); /* uploads go to the router: no reply */

    /* /send_raw: bytes that are not a message reach the edge exactly as given */
    ck_assert_int_eq(simctl_send_raw(s, NULL, "{\"not\": a message"), 0);
    {
        size_t len;
        char *raw = wsc_next_raw(&w, &len);
        ck_assert_uint_eq(len, strlen("{\"not\": a message"));
        ck_assert_int_eq(memcmp(raw, "{\"not\": a message", len), 0);
        kedge_free(raw);
    }
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* Certificates: made with the right properties, reused on the next start. */
START_TEST(test_certs_made_and_reused)
{
    static const char *const files[] = {"rootCA.crt", "rootCA.key", "server.crt",
                                        "server.key", "edge.crt",   "edge.key"};
    struct simctl_opts o;
    struct simctl *s;
    char dir[] = "/tmp/kedge-cloudsim-certs-XXXXXX", path[600], *ca1 = NULL, *ca2 = NULL;
    size_t l1, l2, i;
    struct stat st;
    struct wsc w;

    ck_assert_ptr_nonnull(mkdtemp(dir)); /* outlives each cloudsim process */
    memset(&o, 0, sizeof(o));
    o.certs_dir = dir;
    o.node = "kedge-node-7";
    s = sim_start_opts(&o);
    ck_assert_int_eq(certs_read_file(simctl_cert_path(s, "rootCA.crt"), &ca1, &l1), 0);
    ck_assert_int_eq(stat(simctl_cert_path(s, "edge.key"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(simctl_cert_path(s, "rootCA.key"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    edge_connect(&w, s, "kedge-node-7"); /* the edge certificate for --node works */
    wsc_close(&w);
    sim_stop_ok(s);

    s = sim_start_opts(&o); /* same directory: the CA is reused, byte for byte */
    ck_assert_int_eq(certs_read_file(simctl_cert_path(s, "rootCA.crt"), &ca2, &l2), 0);
    ck_assert_uint_eq(l1, l2);
    ck_assert_int_eq(memcmp(ca1, ca2, l1), 0);
    sim_stop_ok(s);

    kedge_free(ca1);
    kedge_free(ca2);
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        (void)snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        ck_assert_int_eq(unlink(path), 0);
    }
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* Run kedge-cloudsim with args and return its exit status (it is expected to exit at once). */
static int run_cli(const char *const *args)
{
    const char *argv[16];
    int argc = 0, st;
    pid_t pid;

    argv[argc++] = KEDGE_CLOUDSIM_BIN;
    while (*args && argc < 15)
        argv[argc++] = *args++;
    argv[argc] = NULL;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null < 0 || dup2(null, STDOUT_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0)
            _exit(126);
        execv(KEDGE_CLOUDSIM_BIN, (char *const *)argv);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid); /* Check's test timeout bounds this */
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* The command line: --help, and bad input refused with status 2 before anything starts. */
START_TEST(test_command_line)
{
    static const char *const help[] = {"--help", NULL};
    static const char *const no_certs[] = {"--port", "0", NULL};
    static const char *const unknown[] = {"--certs", "/nonexistent", "--bogus", "1", NULL};
    static const char *const range[] = {"--certs", "/nonexistent", "--port", "70000", NULL};
    static const char *const level[] = {"--certs", "/nonexistent", "--log-level", "loud", NULL};
    static const char *const https[] = {"--certs", "/nonexistent", "--https-port", "-1", NULL};
    static const char *const life[] = {"--certs", "/nonexistent", "--cert-lifetime-s", "0", NULL};
    static const char *const missing[] = {"--certs", NULL};

    ck_assert_int_eq(run_cli(help), 0);
    ck_assert_int_eq(run_cli(no_certs), 2);
    ck_assert_int_eq(run_cli(unknown), 2);
    ck_assert_int_eq(run_cli(range), 2);
    ck_assert_int_eq(run_cli(level), 2);
    ck_assert_int_eq(run_cli(https), 2);
    ck_assert_int_eq(run_cli(life), 2);
    ck_assert_int_eq(run_cli(missing), 2);
}
END_TEST

static Suite *cloudsim_suite(void)
{
    Suite *s = suite_create("cloudsim");
    TCase *tc = tcase_create("cloudcore");

    tcase_add_test(tc, test_client_cert_required);
    tcase_add_test(tc, test_connection_use_and_keepalive);
    tcase_add_test(tc, test_session_setup_and_close);
    tcase_add_test(tc, test_ack_needed_resent_until_acked);
    tcase_add_test(tc, test_no_ack_sent_once);
    tcase_add_loop_test(tc, test_device_controller_replies, 0,
                        (int)(sizeof(generations) / sizeof(generations[0])));
    tcase_add_test(tc, test_edge_controller_replies);
    tcase_add_test(tc, test_service_account_token);
    tcase_add_test(tc, test_device_reports_applied_concurrently);
    tcase_add_test(tc, test_node_lifecycle);
    tcase_add_test(tc, test_pod_status_patch);
    tcase_add_test(tc, test_pod_delete_and_object_api);
    tcase_add_test(tc, test_link_freeze_thaw);
    tcase_add_test(tc, test_link_drop_and_refuse);
    tcase_add_test(tc, test_malformed_fragmented_binary);
    tcase_add_test(tc, test_malformed_close_option);
    tcase_add_test(tc, test_big_and_oversize_messages);
    tcase_add_test(tc, test_applied_order);
    tcase_add_test(tc, test_reject_fault);
    tcase_add_test(tc, test_queue_reconnect_replace);
    tcase_add_test(tc, test_control_api);
    tcase_add_test(tc, test_certs_made_and_reused);
    tcase_add_test(tc, test_command_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cloudsim_suite());
    int failed;

    /* KEDGE_TEST_LWS_LOG=<lws level bits> shows the client's lws log (e.g. 15) */
    lws_set_log_level(getenv("KEDGE_TEST_LWS_LOG") ? atoi(getenv("KEDGE_TEST_LWS_LOG")) : LLL_ERR,
                      NULL);
    kedge_log_level_max = KEDGE_LOG_WARN;
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
