/* control.c: kedge-cloudsim's control API, plain HTTP/1.1 with JSON in and out, on 127.0.0.1.
 *
 * Owns request parsing and response writing for the control vhost; every decision is the
 * hub's (hub.c). Endpoints (errors are {"error":"..."} with 400, 404 or 405):
 *
 *   POST /send[?node=N]          body: a beehive message; queued for the node (default: the one a
 *                                node/{id}/... resource names, else the last to connect, else
 *                                the first that will) -> {"msg_id","queued":true,"ack_required"}
 *   POST /send_raw[?node=N][&binary=1]
 *                                body: any bytes, sent once as they are in one text (binary)
 *                                frame, no "\n" added -> {"queued":true,"bytes":N}
 *   GET  /received[?since=N][&skip_keepalive=1]
 *                                -> {"messages":[{"index","t_ms","node","json"},...]}
 *   GET  /acked                  -> {"acked":["<msg_id>",...]}
 *   GET  /state[?node=N]         -> {"connected","node_id","project_id","connection_use",
 *                                    "sessions_total","last_keepalive_ms","pending_acks",
 *                                    "frozen", + "pending_noack","malformed_total","refusing"}
 *   POST /link/freeze|thaw|drop[?node=N], POST /link/refuse?seconds=N -> {"ok":true}
 *   GET  /nodes                  -> {"nodes":[{"name","ready","registrations","lease_renew_ms",
 *                                    "exists","status"},...]} (nodes.c)
 *   GET  /pods                   -> {"pods":[{"key":"default/pod/nginx","uid":"...",
 *                                    "phase":"Running","patches":N,"object":{<the Pod>}},...]}
 *                                (ctlpods.c): every pod in the cloud's store, in the order
 *                                they were first stored; uid/phase "" when the pod has none;
 *                                patches = status patches from the edge applied to it since
 *                                then. A pod the edge deleted (finalised) is gone from it.
 *   GET  /object?key=K           -> the stored object itself (200), K = {ns}/{type}/{name} (a
 *                                Node: node/{name} or {ns}/node/{name}); 404 when there is none,
 *                                400 without ?key=
 *
 *   GET  /applied[?device=ID][&log=0]
 *                                -> what the device controller applied, per device in the order
 *                                it applied it (applied.c): {"reports","regressions",
 *                                "devices_total","devices":[{"id","reports","regressions",
 *                                "twins":{...},"log_dropped","log":[...]}]}; log=0 leaves the
 *                                logs out
 *   POST /faults/reject          body: {"resource_prefix":"...","mode":"close"|"error"[,"max":N]}
 *                                -> {"ok":true}: messages from the edge whose resource starts
 *                                with the prefix are rejected (faults.c)
 *   POST /faults/clear           -> {"ok":true}: no more rejections (counters stay)
 *   GET  /faults                 -> {"reject":[...],"rejections_total","rejections_close",
 *                                    "rejections_error","rejected":[...]}
 *
 *   GET  /stream                 -> {"tunnels":[{"node","internal_ip"}],"connections":n,
 *                                   "connections_total":n} (CloudStream, stream.c)
 *   POST /stream/close           -> {"ok":true,"tunnels":n}: CLOSE_CONNECT to every tunnel, as
 *                                   cloudcore sends when it cannot set the node's kubelet port
 * A POST needs a Content-Length (lws waits for a body otherwise); one without it is answered
 * as if the body were empty and the connection is then closed, so `curl -X POST` works.
 */
#include <errno.h>
#include <string.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"

#define BODY_MAX_BYTES (16u << 20)
#define WRITE_CHUNK 32768

enum method { M_OTHER, M_GET, M_POST };

/* lws per-session data of the control protocol (one HTTP transaction at a time). */
struct req {
    enum method method;
    char path[128];
    char node[256];
    bool has_node;
    char key[600];
    bool has_key;
    char device[600];
    bool has_device, no_log;
    long long since;
    bool skip_keepalive;
    long seconds;
    bool has_seconds, bad_query;
    bool binary;
    struct kedge_buf body;
    bool body_too_big, close_after;
    struct kedge_buf resp; /* LWS_PRE bytes of headroom, then the JSON */
    size_t sent;
    bool active;
};

static void req_reset(struct req *r)
{
    kedge_buf_cleanup(&r->body);
    kedge_buf_cleanup(&r->resp);
    memset(r, 0, sizeof(*r));
    r->since = -1;
}

static void parse_query(struct lws *wsi, struct req *r)
{
    char arg[1024];
    int i, n;

    for (i = 0; (n = lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i)) >= 0;
         i++) {
        const char *eq = strchr(arg, '=');
        const char *v = eq ? eq + 1 : "";
        size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
        long l;

        if (n == 0)
            break;
        if (klen == 4 && strncmp(arg, "node", 4) == 0) {
            if (strlen(v) >= sizeof(r->node))
                r->bad_query = true;
            else {
                memcpy(r->node, v, strlen(v) + 1);
                r->has_node = true;
            }
        } else if (klen == 3 && strncmp(arg, "key", 3) == 0) {
            if (strlen(v) >= sizeof(r->key))
                r->bad_query = true;
            else {
                memcpy(r->key, v, strlen(v) + 1);
                r->has_key = true;
            }
        } else if (klen == 6 && strncmp(arg, "device", 6) == 0) {
            if (strlen(v) >= sizeof(r->device))
                r->bad_query = true;
            else {
                memcpy(r->device, v, strlen(v) + 1);
                r->has_device = true;
            }
        } else if (klen == 3 && strncmp(arg, "log", 3) == 0) {
            r->no_log = strcmp(v, "0") == 0 || strcmp(v, "false") == 0;
        } else if (klen == 5 && strncmp(arg, "since", 5) == 0) {
            if (kedge_parse_long(v, -1, 0x7fffffffffffffffL, &l) < 0)
                r->bad_query = true;
            else
                r->since = l;
        } else if (klen == 6 && strncmp(arg, "binary", 6) == 0) {
            r->binary = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
        } else if (klen == 14 && strncmp(arg, "skip_keepalive", 14) == 0) {
            r->skip_keepalive = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
        } else if (klen == 7 && strncmp(arg, "seconds", 7) == 0) {
            if (kedge_parse_long(v, 0, 86400, &r->seconds) < 0)
                r->bad_query = true;
            else
                r->has_seconds = true;
        }
    }
}

/* ---- handlers: each writes the response JSON and returns the HTTP status ----------------------
 */

static void write_error(struct kedge_jw *w, const char *text)
{
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "error", text);
    kedge_jw_obj_close(w);
}

static void write_ok(struct kedge_jw *w)
{
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "ok");
    kedge_jw_bool(w, true);
    kedge_jw_obj_close(w);
}

static unsigned handle_send(struct hub *h, struct req *r, struct kedge_jw *w)
{
    struct kedge_buf err = KEDGE_BUF_INIT;
    char *msg_id = NULL;
    bool needs_ack;
    int rc;

    if (r->body_too_big) {
        write_error(w, "body over 16 MiB");
        return 400;
    }
    rc = hub_send_json(h, r->has_node ? r->node : NULL, r->body.data ? r->body.data : "",
                       r->body.len, &msg_id, &needs_ack);
    if (rc == -ENOMEM) {
        write_error(w, "out of memory");
        return 500;
    }
    if (rc < 0) {
        (void)kedge_buf_printf(&err, "body is not a beehive message: %s (%s)", kedge_errname(rc),
                               kedge_strerror(rc));
        write_error(w, err.data ? err.data : "body is not a beehive message");
        kedge_buf_cleanup(&err);
        return 400;
    }
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "msg_id", msg_id);
    kedge_jw_key(w, "queued");
    kedge_jw_bool(w, true);
    kedge_jw_key(w, "ack_required");
    kedge_jw_bool(w, needs_ack);
    kedge_jw_obj_close(w);
    kedge_free(msg_id);
    return 200;
}

static unsigned handle_send_raw(struct hub *h, struct req *r, struct kedge_jw *w)
{
    if (r->body_too_big) {
        write_error(w, "body over 16 MiB");
        return 400;
    }
    if (hub_send_raw(h, r->has_node ? r->node : NULL, r->body.data ? r->body.data : "", r->body.len,
                     r->binary) < 0) {
        write_error(w, "out of memory");
        return 500;
    }
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "queued");
    kedge_jw_bool(w, true);
    kedge_jw_kint(w, "bytes", (int64_t)r->body.len);
    kedge_jw_obj_close(w);
    return 200;
}

static unsigned handle_link(struct hub *h, struct req *r, const char *what, struct kedge_jw *w)
{
    const char *node = r->has_node ? r->node : NULL;
    int rc;

    if (strcmp(what, "refuse") == 0) {
        if (!r->has_seconds) {
            write_error(w, "refuse needs ?seconds=N (0..86400)");
            return 400;
        }
        hub_link_refuse(h, r->seconds);
        write_ok(w);
        return 200;
    }
    if (strcmp(what, "freeze") == 0)
        rc = hub_link_freeze(h, node, true);
    else if (strcmp(what, "thaw") == 0)
        rc = hub_link_freeze(h, node, false);
    else if (strcmp(what, "drop") == 0)
        rc = hub_link_drop(h, node);
    else {
        write_error(w, "no such endpoint");
        return 404;
    }
    if (rc < 0) {
        write_error(w, "no edge connected");
        return 404;
    }
    write_ok(w);
    return 200;
}

static unsigned handle_object(struct hub *h, struct req *r, struct kedge_jw *w)
{
    if (!r->has_key || !r->key[0]) {
        write_error(w, "object needs ?key={ns}/{type}/{name}");
        return 400;
    }
    if (hub_write_object(h, r->key, w) < 0) {
        write_error(w, "no such object");
        return 404;
    }
    return 200;
}

static unsigned handle_fault_reject(struct hub *h, struct req *r, struct kedge_jw *w)
{
    int rc;

    if (r->body_too_big) {
        write_error(w, "body over 16 MiB");
        return 400;
    }
    rc = hub_fault_reject(h, r->body.data ? r->body.data : "", r->body.len);
    if (rc == -ENOMEM) {
        write_error(w, "out of memory");
        return 500;
    }
    if (rc < 0) {
        write_error(w, "body must be {\"resource_prefix\":\"...\",\"mode\":\"close\"|"
                       "\"error\"[,\"max\":N]}");
        return 400;
    }
    write_ok(w);
    return 200;
}

/* The endpoints that are not about the link or the store: the test's own instruments. */
static unsigned route_instruments(struct hub *h, struct req *r, struct kedge_jw *w)
{
    if (strcmp(r->path, "/applied") == 0) {
        hub_write_applied(h, r->has_device ? r->device : NULL, !r->no_log, w);
        return 200;
    }
    if (strcmp(r->path, "/faults") == 0) {
        hub_write_faults(h, w);
        return 200;
    }
    if (strcmp(r->path, "/faults/clear") == 0) {
        hub_faults_clear(h);
        write_ok(w);
        return 200;
    }
    return handle_fault_reject(h, r, w);
}

static unsigned route(struct hub *h, struct req *r, struct kedge_jw *w)
{
    static const struct {
        const char *path;
        enum method method;
    } endpoints[] = {
        {"/send", M_POST},          {"/send_raw", M_POST},  {"/received", M_GET},
        {"/acked", M_GET},          {"/state", M_GET},      {"/link/freeze", M_POST},
        {"/link/thaw", M_POST},     {"/link/drop", M_POST}, {"/link/refuse", M_POST},
        {"/nodes", M_GET},          {"/pods", M_GET},       {"/object", M_GET},
        {"/applied", M_GET},        {"/faults", M_GET},     {"/faults/clear", M_POST},
        {"/faults/reject", M_POST}, {"/stream", M_GET},     {"/stream/close", M_POST},
    };
    size_t i;

    for (i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
        if (strcmp(r->path, endpoints[i].path) == 0)
            break;
    if (i == sizeof(endpoints) / sizeof(endpoints[0])) {
        write_error(w, "no such endpoint");
        return 404;
    }
    if (r->method != endpoints[i].method) {
        write_error(w, "method not allowed");
        return 405;
    }
    if (r->bad_query) {
        write_error(w, "bad query argument");
        return 400;
    }
    if (strcmp(r->path, "/send") == 0)
        return handle_send(h, r, w);
    if (strcmp(r->path, "/send_raw") == 0)
        return handle_send_raw(h, r, w);
    if (strcmp(r->path, "/received") == 0) {
        hub_write_received(h, w, r->since, r->skip_keepalive);
        return 200;
    }
    if (strcmp(r->path, "/acked") == 0) {
        hub_write_acked(h, w);
        return 200;
    }
    if (strcmp(r->path, "/nodes") == 0) {
        hub_write_nodes(h, w);
        return 200;
    }
    if (strcmp(r->path, "/pods") == 0) {
        hub_write_pods(h, w);
        return 200;
    }
    if (strcmp(r->path, "/object") == 0)
        return handle_object(h, r, w);
    if (strcmp(r->path, "/stream") == 0) {
        cstream_write_state(hub_cstream(h), w);
        return 200;
    }
    if (strcmp(r->path, "/stream/close") == 0) {
        cstream_close_tunnels(hub_cstream(h), "closed by the control API", w);
        return 200;
    }
    if (strncmp(r->path, "/applied", 8) == 0 || strncmp(r->path, "/faults", 7) == 0)
        return route_instruments(h, r, w);
    if (strcmp(r->path, "/state") == 0) {
        if (hub_write_state(h, r->has_node ? r->node : NULL, w) < 0) {
            write_error(w, "unknown node");
            return 404;
        }
        return 200;
    }
    return handle_link(h, r, r->path + strlen("/link/"), w);
}

/* Build the response and send its headers; the body goes out in HTTP_WRITEABLE. */
static int respond(struct lws *wsi, struct hub *h, struct req *r)
{
    unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
                                      *end = hdr + sizeof(hdr) - 1;
    struct kedge_jw w;
    unsigned status;

    kedge_buf_reset(&r->resp);
    if (kedge_buf_reserve(&r->resp, LWS_PRE + 256) < 0)
        return -1;
    r->resp.len = LWS_PRE;
    {
        struct kedge_buf json = KEDGE_BUF_INIT;
        kedge_jw_init(&w, &json);
        status = route(h, r, &w);
        if (kedge_jw_finish(&w) < 0 || kedge_buf_append(&r->resp, json.data, json.len) < 0 ||
            kedge_buf_putc(&r->resp, '\n') < 0) {
            kedge_buf_cleanup(&json);
            kedge_log(KEDGE_LOG_ERR, "cloudsim: control: out of memory answering %s", r->path);
            return -1;
        }
        kedge_buf_cleanup(&json);
    }
    kedge_log(status == 200 ? KEDGE_LOG_DEBUG : KEDGE_LOG_INFO, "cloudsim: control: %s %s -> %u",
              r->method == M_POST  ? "POST"
              : r->method == M_GET ? "GET"
                                   : "other",
              r->path, status);
    if (lws_add_http_common_headers(wsi, status, "application/json",
                                    (lws_filepos_t)(r->resp.len - LWS_PRE), &p, end) ||
        (r->close_after &&
         lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                      &p, end)) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    r->sent = LWS_PRE;
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_writeable(struct lws *wsi, struct req *r)
{
    size_t left, n;
    int flag;

    if (!r->active || r->sent >= r->resp.len)
        return 0;
    left = r->resp.len - r->sent;
    n = left > WRITE_CHUNK ? WRITE_CHUNK : left;
    flag = n == left ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP;
    /* the LWS_PRE bytes before this chunk are headroom or already-sent data: both may be
     * overwritten */
    if (lws_write(wsi, (unsigned char *)r->resp.data + r->sent, n, (enum lws_write_protocol)flag) <
        (int)n)
        return -1;
    r->sent += n;
    if (r->sent < r->resp.len) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    r->active = false;
    if (r->close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int control_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                            size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    struct hub *h = vh ? lws_vhost_user(vh) : NULL;
    struct req *r = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        req_reset(r);
        r->active = true;
        if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
            r->method = M_GET;
        else if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
            r->method = M_POST;
        if (!in || strlen(in) >= sizeof(r->path))
            memcpy(r->path, "/?", 3);
        else
            memcpy(r->path, in, strlen(in) + 1);
        parse_query(wsi, r);
        if (r->method == M_POST && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
            return 0; /* the body follows; answered at BODY_COMPLETION */
        if (r->method == M_POST)
            r->close_after = true; /* lws still expects a body: finish with this request */
        return respond(wsi, h, r);

    case LWS_CALLBACK_HTTP_BODY:
        if (!r->active || r->body_too_big)
            return 0;
        if (r->body.len + len > BODY_MAX_BYTES) {
            r->body_too_big = true;
            kedge_buf_cleanup(&r->body);
            return 0;
        }
        if (len && kedge_buf_append(&r->body, in, len) < 0)
            return -1;
        return 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!r->active)
            return 0;
        return respond(wsi, h, r);

    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(wsi, r);

    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (r)
            req_reset(r);
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols control_protocols[] = {
    {"cloudsim-control", control_callback, sizeof(struct req), (size_t)16 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};
