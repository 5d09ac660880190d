/* streamapi.c: cloudcore's CloudStream stream server (cloud/pkg/cloudstream/streamserver.go and
 * the *_connection.go files) for kedge-cloudsim: what kube-apiserver talks to when it reaches a
 * node's kubelet port.
 *
 * The model serves plain HTTP/1.1 on 127.0.0.1 (cloudcore: TLS with the API server's kubelet
 * client certificate; the bytes inside are the same), so a test is the "API server" with curl
 * or a socket. Each request gets the next connectID (StreamServer.nextMessageID, from 1) and goes
 * to the edge as a *_CONNECT with cloudcore's JSON (the request's URL with scheme http and host
 * 127.0.0.1:10350, its header, and for exec/attach its method):
 *   GET /containerLogs/{ns}/{pod}/{container}?...   200, Transfer-Encoding: chunked, the DATA
 *                                                   bytes as they come; the edge's
 *                                                   REMOVE_CONNECT ends the body
 *   GET|POST /exec/..., /attach/... (an upgrade)    the connection is hijacked: bytes are piped
 *                                                   raw both ways as DATA; no upgrade: 500
 *   GET /stats/..., /metrics/...                    METRIC_CONNECT, answered as the logs are
 * The client going away sends REMOVE_CONNECT to the edge. With no tunnel: 500, no body (the
 * handlers' deferred WriteHeader). cloudcore finds the tunnel by the pod's node; the model
 * serves the edge that connected last. The model closes each connection after its answer
 * (Connection: close) where Go's server would keep it alive.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kedge/alloc.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "streampriv.h"

#define HEAD_MAX (16 * 1024)

static int queue_out(struct aconn *a, const void *b, size_t n)
{
    if (kedge_buf_append(&a->out, b, n) < 0)
        return -ENOMEM;
    lws_callback_on_writable(a->wsi);
    return 0;
}

static int queue_str(struct aconn *a, const char *s)
{
    return queue_out(a, s, strlen(s));
}

static void finish(struct aconn *a)
{
    if (a->edge_done)
        return;
    a->edge_done = true;
    if (a->chunked)
        (void)queue_str(a, "0\r\n\r\n");
    lws_callback_on_writable(a->wsi);
}

/* ---- the request ------------------------------------------------------------------------- */

struct hdr {
    char name[128];
    const char *value;
    size_t value_len;
};

/* textproto.CanonicalMIMEHeaderKey for the usual token characters. */
static void canonical(char *s)
{
    bool up = true;

    for (; *s; s++) {
        *s = (char)(up ? toupper((unsigned char)*s) : tolower((unsigned char)*s));
        up = *s == '-';
    }
}

static int cmp_hdr(const void *x, const void *y)
{
    return strcmp(((const struct hdr *)x)->name, ((const struct hdr *)y)->name);
}

static int hexv(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* url.URL.Path: the path percent-decoded ('+' stays). */
static void path_decode(const char *p, size_t n, struct kedge_buf *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i] == '%' && i + 2 < n && hexv(p[i + 1]) >= 0 && hexv(p[i + 2]) >= 0) {
            (void)kedge_buf_putc(out, (char)(hexv(p[i + 1]) * 16 + hexv(p[i + 2])));
            i += 2;
        } else {
            (void)kedge_buf_putc(out, p[i]);
        }
    }
}

/* Go's json.Marshal of pkg/stream's Edged*Connection (fields in declaration order, the header
 * map's keys sorted). */
static int connect_json(struct aconn *a, const char *method, const char *path, size_t path_len,
                        const char *query, size_t query_len, struct hdr *h, size_t nh,
                        struct kedge_buf *out)
{
    struct kedge_buf p = KEDGE_BUF_INIT;
    struct kedge_jw w;
    size_t i;
    int rc;

    path_decode(path, path_len, &p);
    qsort(h, nh, sizeof(*h), cmp_hdr);
    kedge_jw_init(&w, out);
    kedge_jw_obj_open(&w);
    kedge_jw_kint(&w, "MessID", (int64_t)a->id);
    kedge_jw_key(&w, "url");
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "Scheme", "http");
    kedge_jw_kstr(&w, "Opaque", "");
    kedge_jw_key(&w, "User");
    kedge_jw_null(&w);
    kedge_jw_kstr(&w, "Host", "127.0.0.1:10350");
    kedge_jw_key(&w, "Path");
    kedge_jw_strn(&w, p.data ? p.data : "", p.len);
    kedge_jw_kstr(&w, "RawPath", "");
    kedge_jw_key(&w, "OmitHost");
    kedge_jw_bool(&w, false);
    kedge_jw_key(&w, "ForceQuery");
    kedge_jw_bool(&w, false);
    kedge_jw_key(&w, "RawQuery");
    kedge_jw_strn(&w, query, query_len);
    kedge_jw_kstr(&w, "Fragment", "");
    kedge_jw_kstr(&w, "RawFragment", "");
    kedge_jw_obj_close(&w);
    kedge_jw_key(&w, "header");
    kedge_jw_obj_open(&w);
    for (i = 0; i < nh; i++) {
        if (i == 0 || strcmp(h[i].name, h[i - 1].name)) {
            if (i)
                kedge_jw_arr_close(&w);
            kedge_jw_key(&w, h[i].name);
            kedge_jw_arr_open(&w);
        }
        kedge_jw_strn(&w, h[i].value, h[i].value_len);
    }
    if (nh)
        kedge_jw_arr_close(&w);
    kedge_jw_obj_close(&w);
    if (a->kind == CS_EXEC || a->kind == CS_ATTACH)
        kedge_jw_kstr(&w, "method", method);
    kedge_jw_obj_close(&w);
    rc = kedge_jw_finish(&w);
    kedge_buf_cleanup(&p);
    return rc;
}

static const struct hdr *find_hdr(const struct hdr *h, size_t nh, const char *name)
{
    size_t i;

    for (i = 0; i < nh; i++)
        if (!strcasecmp(h[i].name, name))
            return &h[i];
    return NULL;
}

/* httpstream.IsUpgradeRequest: a Connection header naming upgrade, and an Upgrade header. */
static bool is_upgrade(const struct hdr *h, size_t nh)
{
    const struct hdr *c = find_hdr(h, nh, "Connection"), *u = find_hdr(h, nh, "Upgrade");
    char v[256];
    size_t i;

    if (!c || !u || !u->value_len)
        return false;
    snprintf(v, sizeof(v), "%.*s", (int)c->value_len, c->value);
    for (i = 0; v[i]; i++)
        v[i] = (char)tolower((unsigned char)v[i]);
    return strstr(v, "upgrade") != NULL;
}

static int kind_of(const char *path, size_t n, const char *method)
{
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");

    if (n > 15 && !strncmp(path, "/containerLogs/", 15) && get)
        return CS_LOGS;
    if (n > 6 && !strncmp(path, "/exec/", 6) && (get || post))
        return CS_EXEC;
    if (n > 8 && !strncmp(path, "/attach/", 8) && (get || post))
        return CS_ATTACH;
    if (((n >= 6 && !strncmp(path, "/stats", 6)) || (n >= 8 && !strncmp(path, "/metrics", 8))) &&
        get)
        return CS_METRIC;
    return -1;
}

/* Split the head into the request line and headers (pointers into a->head). */
static int parse_head(struct aconn *a, char *method, size_t mlen, const char **target, size_t *tlen,
                      struct hdr *h, size_t *nh)
{
    char *p = a->head.data, *eol = strstr(p, "\r\n"), *sp1, *sp2;
    size_t max = *nh;

    if (!eol)
        return -1;
    *eol = '\0';
    sp1 = strchr(p, ' ');
    sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - p) >= mlen)
        return -1;
    snprintf(method, mlen, "%.*s", (int)(sp1 - p), p);
    *target = sp1 + 1;
    *tlen = (size_t)(sp2 - sp1 - 1);
    *nh = 0;
    for (p = eol + 2; *p && strncmp(p, "\r\n", 2); p = eol + 2) {
        char *colon;
        eol = strstr(p, "\r\n");
        if (!eol)
            return -1;
        *eol = '\0';
        colon = strchr(p, ':');
        if (!colon || *nh == max || (size_t)(colon - p) >= sizeof(h->name))
            continue;
        snprintf(h[*nh].name, sizeof(h->name), "%.*s", (int)(colon - p), p);
        canonical(h[*nh].name);
        for (colon++; *colon == ' ' || *colon == '\t'; colon++)
            ;
        h[*nh].value = colon;
        h[*nh].value_len = strlen(colon);
        if (strcmp(h[*nh].name, "Host")) /* Go moves Host out of the header map */
            (*nh)++;
    }
    return 0;
}

static int answer_plain(struct aconn *a, const char *status, const char *body)
{
    char b[512];

    snprintf(b, sizeof(b),
             "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             status, strlen(body), body);
    a->edge_done = true;
    return queue_str(a, b);
}

static int start_request(struct aconn *a)
{
    struct hdr h[64];
    size_t nh = 64, tlen, plen;
    char method[16];
    const char *target, *q;
    struct kedge_buf j = KEDGE_BUF_INIT;
    int rc;

    if (parse_head(a, method, sizeof(method), &target, &tlen, h, &nh) < 0)
        return answer_plain(a, "400 Bad Request", "bad request");
    q = memchr(target, '?', tlen);
    plen = q ? (size_t)(q - target) : tlen;
    a->kind = kind_of(target, plen, method);
    if (a->kind < 0)
        return answer_plain(a, "404 Not Found", "404 page not found");
    a->sess = cstream_session_for(a->cs);
    if (!a->sess || ((a->kind == CS_EXEC || a->kind == CS_ATTACH) && !is_upgrade(h, nh))) {
        kedge_log(KEDGE_LOG_INFO, "cloudsim: stream: %.*s: %s", (int)plen, target,
                  a->sess ? "request was not an upgrade" : "can not find the session");
        a->sess = NULL;
        return answer_plain(a, "500 Internal Server Error", "");
    }
    a->id = ++a->cs->next_id;
    rc = connect_json(a, method, target, plen, q ? q + 1 : "", q ? tlen - plen - 1 : 0, h, nh, &j);
    if (rc == 0)
        rc = cstream_send(a->sess, a->id, a->kind, j.data, j.len);
    kedge_buf_cleanup(&j);
    if (rc < 0)
        return rc;
    kedge_log(KEDGE_LOG_INFO, "cloudsim: stream: connection %llu: %s %.*s",
              (unsigned long long)a->id, method, (int)tlen, target);
    if (a->kind == CS_EXEC || a->kind == CS_ATTACH) {
        a->raw = true; /* hijacked: nothing of ours goes to the client */
        return 0;
    }
    a->chunked = true;
    return queue_str(a, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
}

static int on_rx(struct aconn *a, const char *in, size_t len)
{
    char *end;
    size_t used;

    if (a->head_done) {
        if (a->raw && a->sess && !a->edge_done)
            return cstream_send(a->sess, a->id, CS_DATA, in, len);
        return 0; /* a body we do not read */
    }
    if (kedge_buf_append(&a->head, in, len) < 0 || a->head.len > HEAD_MAX)
        return -1;
    end = strstr(a->head.data, "\r\n\r\n");
    if (!end)
        return 0;
    a->head_done = true;
    used = (size_t)(end + 4 - a->head.data);
    if (start_request(a) < 0)
        return -1;
    /* bytes after the head: a client that did not wait for the 101 (cloudcore's hijack drops
     * them with its bufio reader; the model forwards them) */
    if (a->raw && used < a->head.len)
        return cstream_send(a->sess, a->id, CS_DATA, a->head.data + used, a->head.len - used);
    return 0;
}

static int on_writeable(struct aconn *a)
{
    size_t n = a->out.len - a->out_off;
    unsigned char *buf;
    int w;

    if (n > 65536)
        n = 65536;
    if (n) {
        buf = kedge_malloc(LWS_PRE + n);
        if (!buf)
            return -1;
        memcpy(buf + LWS_PRE, a->out.data + a->out_off, n);
        w = lws_write(a->wsi, buf + LWS_PRE, n, LWS_WRITE_RAW);
        kedge_free(buf);
        if (w < 0)
            return -1;
        a->out_off += n;
        if (a->out_off == a->out.len) {
            kedge_buf_reset(&a->out);
            a->out_off = 0;
        }
        cstream_unthrottle(a->sess);
    }
    if (a->out.len)
        lws_callback_on_writable(a->wsi);
    else if (a->edge_done)
        return -1; /* everything written: close */
    return 0;
}

/* ---- frames from the edge ---------------------------------------------------------------- */

void cstream_api_frame(struct cstream *cs, struct tsess *s, uint64_t id, int type, const char *data,
                       size_t len)
{
    struct aconn *a;
    char head[32];

    for (a = cs->conns; a && !(a->sess == s && a->id == id); a = a->next)
        ;
    if (!a) {
        kedge_log(KEDGE_LOG_INFO,
                  "cloudsim: stream: can not find apiServer connection id %llu in session %s",
                  (unsigned long long)id, s->node);
        return;
    }
    if (type == CS_REMOVE) {
        kedge_log(KEDGE_LOG_INFO, "cloudsim: stream: the edge ended connection %llu",
                  (unsigned long long)id);
        finish(a);
        return;
    }
    if (!len || a->edge_done)
        return;
    if (a->chunked) {
        snprintf(head, sizeof(head), "%zx\r\n", len);
        if (queue_str(a, head) < 0 || queue_out(a, data, len) < 0 || queue_str(a, "\r\n") < 0)
            kedge_log(KEDGE_LOG_ERR, "cloudsim: stream: out of memory");
    } else if (queue_out(a, data, len) < 0) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: stream: out of memory");
    }
}

void cstream_api_session_gone(struct cstream *cs, struct tsess *s)
{
    struct aconn *a;

    for (a = cs->conns; a; a = a->next)
        if (a->sess == s) {
            finish(a);
            a->sess = NULL;
        }
}

/* ---- the raw socket ---------------------------------------------------------------------- */

static void conn_closed(struct cstream *cs, struct aconn *a)
{
    struct aconn **pp;

    if (a->sess && a->id && !a->edge_done) /* cloudcore: ctx.Done -> REMOVE_CONNECT */
        (void)cstream_send(a->sess, a->id, CS_REMOVE, NULL, 0);
    for (pp = &cs->conns; *pp && *pp != a; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = a->next;
    kedge_buf_cleanup(&a->head);
    kedge_buf_cleanup(&a->out);
    if (a->sess)
        cstream_unthrottle(a->sess);
}

static int api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    struct cstream *cs = vh ? lws_vhost_user(vh) : NULL;
    struct aconn *a = user;

    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        if (!cs || cs->stopping)
            return -1;
        memset(a, 0, sizeof(*a));
        a->cs = cs;
        a->wsi = wsi;
        a->next = cs->conns;
        cs->conns = a;
        return 0;
    case LWS_CALLBACK_RAW_RX:
        return a->cs ? on_rx(a, in, len) : 0;
    case LWS_CALLBACK_RAW_WRITEABLE:
        return a->cs ? on_writeable(a) : 0;
    case LWS_CALLBACK_RAW_CLOSE:
        if (a && a->cs)
            conn_closed(cs, a);
        return 0;
    default:
        return 0;
    }
}

const struct lws_protocols cstream_api_protocols[] = {
    {"cloudstream-api", api_callback, sizeof(struct aconn), (size_t)64 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};
