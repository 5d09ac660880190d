/* simtest.c: the tiny edge and the cloudsim helpers of test_cloudsim (simtest.h). */
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
#include "simtest.h"

int64_t mono_ms(void)
{
    return (int64_t)kedge_now_ms();
}

void wsc_queue(struct wsc *w, const char *data, size_t len, int flags)
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
void wsc_send(struct wsc *w, const char *json)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_buf_printf(&b, "%s\n", json), 0);
    wsc_queue(w, b.data, b.len, LWS_WRITE_TEXT);
    kedge_buf_cleanup(&b);
}

void send_keepalive(struct wsc *w)
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
            add_header(wsi, "Connectionuse:", w->o.conn_use, in, len) ||
            add_header(wsi, "Sessionhostnameoverride:", w->o.session_node, in, len) ||
            add_header(wsi, "Sessioninternalip:", w->o.session_ip, in, len))
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
bool wsc_run_until(struct wsc *w, bool (*pred)(struct wsc *, void *), void *arg, int timeout_ms)
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

bool is_gone(struct wsc *w, void *arg)
{
    (void)arg;
    return w->state == WSC_CLOSED || w->state == WSC_FAILED || !w->wsi;
}

/* Keep the client's loop running for quiet_ms: an observation window for "nothing happens",
 * used only where no later marker can prove the absence. Not scaled: the window is measured
 * against cloudsim's own timers (a keepalive deadline), which run in real time even under
 * valgrind. */
void wsc_quiet(struct wsc *w, int quiet_ms)
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
void wsc_open_shared(struct wsc *w, struct simctl *s, const struct wsc_opts *o, struct wsc *share)
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
    ci.port = o->port ? o->port : simctl_wss_port(s);
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

void wsc_open(struct wsc *w, struct simctl *s, const struct wsc_opts *o)
{
    wsc_open_shared(w, s, o, NULL);
}

/* Close a client; one sharing another's context must be closed before that one. */
void wsc_close(struct wsc *w)
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

bool has_pong(struct wsc *w, void *arg)
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
    /* every cloud frame is one JSON message followed by "\n" (docs/kubeedge-wire.md §4.5) */
    ck_assert_msg(f->len > 0 && f->data[f->len - 1] == '\n', "frame without trailing newline: %.*s",
                  (int)f->len, f->data);
    ck_assert_int_eq(kedge_msg_decode(f->data, f->len, m), 0);
    kedge_free(f->data);
    free(f);
    return true;
}

/* Next frame from the cloud, undecoded (kedge_malloc'd; the caller frees). */
char *wsc_next_raw(struct wsc *w, size_t *len)
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

void wsc_expect_next(struct wsc *w, struct kedge_msg *m)
{
    ck_assert_msg(wsc_next(w, m, DEADLINE_MS), "no message from the cloud within the deadline");
}

/* ---------------------------------------------------------------------------------------------
 * Test fixtures
 */

struct simctl *sim_start_opts(const struct simctl_opts *o)
{
    struct simctl *s = NULL;

    ck_assert_int_eq(simctl_start(o, &s), 0);
    return s;
}

struct simctl *sim_start(long keepalive_s, long resend_s)
{
    struct simctl_opts o;

    memset(&o, 0, sizeof(o));
    o.keepalive_timeout_s = keepalive_s;
    o.resend_interval_s = resend_s;
    return sim_start_opts(&o);
}

void sim_stop_ok(struct simctl *s)
{
    int rc = simctl_stop(s);

    ck_assert_msg(rc == 0, "kedge-cloudsim exit status %d", rc);
    simctl_free(s);
}

struct wsc_opts edge_opts(struct simctl *s, const char *node)
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

void edge_connect(struct wsc *w, struct simctl *s, const char *node)
{
    struct wsc_opts o = edge_opts(s, node);

    wsc_open(w, s, &o);
    ck_assert_msg(w->state == WSC_OPEN, "edge could not connect: %s", w->error);
}

/* GET a control endpoint as JSON; the document is the caller's. */
struct kedge_jdoc *get_json(struct simctl *s, const char *path)
{
    struct kedge_jdoc *doc = NULL;
    int status;

    ck_assert_int_eq(simctl_http_json(s, "GET", path, NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    return doc;
}

int64_t state_int(struct simctl *s, const char *node, const char *key)
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

bool state_bool(struct simctl *s, const char *node, const char *key)
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

char *state_str(struct simctl *s, const char *node, const char *key)
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
int count_received(struct simctl *s, const char *query, const char *op)
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
bool await_state(struct simctl *s, struct wsc *w, bool (*cond)(struct simctl *, void *), void *arg)
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

bool cond_acked(struct simctl *s, void *id)
{
    return is_acked(s, id);
}

bool cond_received_at_least(struct simctl *s, void *n)
{
    return count_received(s, "?skip_keepalive=1", NULL) >= *(int *)n;
}

bool cond_received_all_at_least(struct simctl *s, void *n)
{
    return count_received(s, NULL, NULL) >= *(int *)n;
}

bool str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* A message from the edge. */
void edge_msg(char *out, size_t len, const char *id, const char *source, const char *group,
              const char *op, const char *resource, const char *content)
{
    int n = snprintf(out, len,
                     "{\"header\":{\"msg_id\":\"%s\",\"timestamp\":%lld},\"route\":{\"source\":"
                     "\"%s\",\"group\":\"%s\",\"operation\":\"%s\",\"resource\":\"%s\"},"
                     "\"content\":%s}",
                     id, (long long)kedge_wall_ms(), source, group, op, resource, content);
    ck_assert(n > 0 && (size_t)n < len);
}

void edge_ack(struct wsc *w, const struct kedge_msg *m)
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

/* The cloud's membership names thermo (the v1.15 id), so its device controller answers its
 * reports; the edge takes the message and acks it. */
void thermo_known(struct simctl *s, struct wsc *w)
{
    struct kedge_msg m;

    ck_assert_int_eq(simctl_send(s, NULL, MEMBERSHIP, NULL), 0);
    wsc_expect_next(w, &m);
    ck_assert_str_eq(m.resource, "membership");
    edge_ack(w, &m);
    kedge_msg_cleanup(&m);
}

/* A request from edged and the cloud's answer to it (m: the caller cleans it up). */
void edge_call(struct wsc *w, const char *id, const char *op, const char *resource,
               const char *content, struct kedge_msg *m)
{
    char json[4096];

    edge_msg(json, sizeof(json), id, "edged", "meta", op, resource, content);
    wsc_send(w, json);
    wsc_expect_next(w, m);
    ck_assert_str_eq(m->parent_msg_id, id);
}

void edge_request(struct wsc *w, const char *id, const char *op, const char *resource,
                  const char *content)
{
    struct kedge_msg m;

    edge_call(w, id, op, resource, content, &m);
    kedge_msg_cleanup(&m);
}

/* A message from edged, its answer not awaited. */
void edge_msg_send(struct wsc *w, const char *id, const char *op, const char *resource,
                   const char *content)
{
    char json[4096];

    edge_msg(json, sizeof(json), id, "edged", "meta", op, resource, content);
    wsc_send(w, json);
}

/* GET /object?key=: the object's JSON text (kedge_malloc'd) or NULL for a 404. */
char *get_object(struct simctl *s, const char *key)
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
