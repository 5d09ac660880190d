/* probes.c: kubelet's prober (pkg/probe/{http,tcp,exec}) on the bridge's one lws loop. Nothing
 * here blocks: every connect is non-blocking, every wait is a poll event or an lws_sul timer.
 *
 *   httpGet    an lws HTTP/1.1 client connection (GET, kubelet's headers plus the probe's own)
 *              on the "local" vhost; HTTPS without certificate checks, as kubelet does.
 *              Success is a status in 200..399 (a redirect is not followed: kubelet follows
 *              only same-host ones; here every 3xx counts as success).
 *   tcpSocket  our own non-blocking connect(), adopted into lws as a raw descriptor to hear
 *              POLLOUT, then SO_ERROR. lws' own "RAW" client would do the connect too, but it
 *              reads SO_ERROR itself and reports only "Unable to connect", while kubelet's
 *              message names the reason (`connect: connection refused`). For the same reason a
 *              failed httpGet connect is followed by one such dial to learn its errno.
 *   exec       the container runtime's exec (runtime.h) with the probe's timeout; the
 *              probe's own timer fails it even while the runtime queues the command.
 * Messages are kubelet's event texts. Host names are not resolved (lws and libc would block
 * the loop): a probe host must be an IP address, as the pod IP always is.
 *
 * Ownership: each run is a struct probe in the prober's list until its done() has been called
 * or it is cancelled. Connections point back at it through their opaque user data, which is
 * cleared before the probe lets go of them, so a late lws event finds nothing. A running exec
 * is cancelled with the runtime, which then answers nobody.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probes.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/util.h"

#define PROBE_PROTOCOL "kedge-probe"
#define USER_AGENT "kube-probe/1.22" /* kubelet: kube-probe/<major>.<minor> */
#define DEFAULT_TIMEOUT_S 1          /* the API server's default timeoutSeconds */
#define OOM_MESSAGE "probe failed: cannot allocate memory"

struct prober {
    struct lws_context *lws;
    struct lws_vhost *vhost;
    const struct runtime *rt;
    struct probe *head;
    long last_handle;
};

struct probe {
    struct probe *next, **pprev; /* in the prober's list while pr is set */
    struct prober *pr;           /* NULL once delivered or cancelled */
    struct lws_context *lws;
    struct lws_vhost *vhost;
    const struct runtime *rt;
    long handle;
    enum pod_probe_kind kind;
    probe_done_fn done;
    void *ctx;
    lws_sorted_usec_list_t sul_timeout, sul_deliver;
    uint64_t deadline_ms;
    int busy;      /* > 0 while our code is inside a call that may call us back */
    bool finished; /* result decided, delivery pending */
    enum probe_result result;
    char *message;

    /* httpGet / tcpSocket */
    struct lws *http_wsi, *dial_wsi;
    struct sockaddr_storage sa;
    socklen_t sa_len;
    char ip[INET6_ADDRSTRLEN];
    int port;
    char addr[INET6_ADDRSTRLEN + 8];          /* Go's JoinHostPort: "10.0.0.1:80", "[::1]:80" */
    char *url, *path, *host_header, *headers; /* headers: "Name: value\r\n"... */
    bool tls, tcp_up, sent, via_http;

    /* exec */
    char *cmd_text;
    long exec_handle;  /* the runtime's exec while it runs */
    bool exec_running; /* exec_done not called yet */
};

static void deliver(struct probe *p);

/* ---- lifetime ------------------------------------------------------------------------------ */

static void probe_free(struct probe *p)
{
    lws_sul_cancel(&p->sul_timeout);
    lws_sul_cancel(&p->sul_deliver);
    kedge_free_all(p->message, p->url, p->path, p->host_header, p->headers, p->cmd_text, p);
}

static void unlink_probe(struct probe *p)
{
    if (!p->pprev)
        return;
    *p->pprev = p->next;
    if (p->next)
        p->next->pprev = p->pprev;
    p->next = NULL;
    p->pprev = NULL;
}

/* Let go of a connection: lws events for it find no probe any more. Outside the connection's
 * own callback it is closed on the loop's next pass (never synchronously: the caller may be
 * inside some other lws callback). */
static void release(struct lws **wsi, bool in_its_callback)
{
    if (!*wsi)
        return;
    lws_set_opaque_user_data(*wsi, NULL);
    if (!in_its_callback)
        lws_set_timeout(*wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
    *wsi = NULL;
}

/* A running exec is withdrawn: the runtime answers nobody for it. */
static void cancel_exec(struct probe *p)
{
    if (p->exec_handle && p->rt)
        p->rt->ops->exec_cancel(p->rt->rt, p->exec_handle);
    p->exec_handle = 0;
    p->exec_running = false;
}

/* Off the list, with nothing in flight that could reach it: no timer, connection or exec
 * (one timed out while the command runs on) will call it again. */
static void disconnect(struct probe *p)
{
    unlink_probe(p);
    p->pr = NULL;
    lws_sul_cancel(&p->sul_timeout);
    lws_sul_cancel(&p->sul_deliver);
    release(&p->http_wsi, false);
    release(&p->dial_wsi, false);
    cancel_exec(p);
}

static void detach(struct probe *p)
{
    disconnect(p);
    probe_free(p);
}

static void on_deliver(lws_sorted_usec_list_t *sul)
{
    deliver(kedge_container_of(sul, struct probe, sul_deliver));
}

/* The result is decided. message: owned, may be NULL after an allocation failure. done() is
 * called now, or on the loop's next pass when we are inside a call that must finish first
 * (prober_run, the runtime's exec). */
static void finish(struct probe *p, enum probe_result r, char *message)
{
    if (p->finished || !p->pr) {
        kedge_free(message);
        return;
    }
    p->finished = true;
    p->result = r;
    p->message = message;
    lws_sul_cancel(&p->sul_timeout);
    if (p->busy)
        lws_sul_schedule(p->lws, 0, &p->sul_deliver, on_deliver, 1);
    else
        deliver(p);
}

static char *msgf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *msgf(const char *fmt, ...)
{
    char buf[1024]; /* a message is one line of an event; longer ones are cut */
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : kedge_strdup(buf);
}

static void fail(struct probe *p, char *message)
{
    finish(p, PROBE_FAILURE, message);
}

static void deliver(struct probe *p)
{
    probe_done_fn done = p->done;
    void *ctx = p->ctx;

    if (!p->finished || !p->pr)
        return;
    disconnect(p);
    done(ctx, p->result, p->message ? p->message : p->result == PROBE_SUCCESS ? "" : OOM_MESSAGE);
    probe_free(p);
}

/* ---- tcp dial ------------------------------------------------------------------------------ */

static void dial_result(struct probe *p, int err)
{
    char eb[128];

    if (!err && !p->via_http) {
        finish(p, PROBE_SUCCESS, msgf("%s", ""));
    } else if (!err) { /* lws could not connect, a moment later we could */
        fail(p, msgf("Get \"%s\": dial tcp %s: connect failed", p->url, p->addr));
    } else if (p->via_http) {
        fail(p, msgf("Get \"%s\": dial tcp %s: connect: %s", p->url, p->addr,
                     kedge_go_strerror(err, eb, sizeof(eb))));
    } else {
        fail(p, msgf("dial tcp %s: connect: %s", p->addr, kedge_go_strerror(err, eb, sizeof(eb))));
    }
}

static int so_error(struct lws *wsi)
{
    socklen_t sl = sizeof(int);
    int e = 0;

    if (getsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
        return errno;
    return e;
}

/* Start a non-blocking connect to p->sa and watch it from the loop. */
static void dial(struct probe *p)
{
    lws_adopt_desc_t ad;
    char eb[128];
    int fd;

    fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int err = errno;
        fail(p, p->via_http ? msgf("Get \"%s\": dial tcp %s: socket: %s", p->url, p->addr,
                                   kedge_go_strerror(err, eb, sizeof(eb)))
                            : msgf("dial tcp %s: socket: %s", p->addr,
                                   kedge_go_strerror(err, eb, sizeof(eb))));
        return;
    }
    if (connect(fd, (struct sockaddr *)&p->sa, p->sa_len) == 0) {
        close(fd);
        dial_result(p, 0);
        return;
    }
    if (errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        dial_result(p, err);
        return;
    }
    memset(&ad, 0, sizeof(ad));
    ad.vh = p->vhost;
    ad.type = LWS_ADOPT_RAW_FILE_DESC;
    ad.fd.filefd = fd;
    ad.vh_prot_name = PROBE_PROTOCOL;
    ad.opaque = p;
    p->dial_wsi = lws_adopt_descriptor_vhost_via_info(&ad);
    if (!p->dial_wsi) {
        close(fd); /* a raw descriptor is left to us when adoption fails */
        fail(p, msgf("dial tcp %s: cannot watch the socket", p->addr));
        return;
    }
    lws_callback_on_writable(p->dial_wsi);
}

/* ---- httpGet ------------------------------------------------------------------------------- */

/* The connection failed (or closed) before a status line. */
static void http_failed(struct probe *p, const char *cce, size_t len)
{
    if (p->finished)
        return;
    if (!p->tcp_up) { /* learn the errno lws keeps to itself */
        p->via_http = true;
        dial(p);
        return;
    }
    /* lws says "read failed" or "Closed before conn" where Go's transport says EOF */
    if (!cce || !len || !strncasecmp(cce, "closed", 6) || !strncmp(cce, "read failed", len))
        fail(p, msgf("Get \"%s\": EOF", p->url));
    else
        fail(p, msgf("Get \"%s\": %.*s", p->url, (int)len, cce));
}

static int append_headers(struct probe *p, char **pos, size_t room)
{
    size_t n = strlen(p->headers);

    if (n >= room)
        return -1;
    memcpy(*pos, p->headers, n);
    *pos += n;
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct probe *p = lws_get_opaque_user_data(wsi);
    int status;

    switch (reason) {
    /* httpGet */
    case LWS_CALLBACK_WSI_CREATE: /* to the connection's protocol: the TCP connect succeeded */
        if (p && wsi == p->http_wsi)
            p->tcp_up = true;
        return 0;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (!p || wsi != p->http_wsi)
            return -1;
        p->tcp_up = true;
        p->sent = true;
        if (append_headers(p, (char **)in, len) < 0) {
            release(&p->http_wsi, true);
            fail(p, msgf("Get \"%s\": request headers too long", p->url));
            return -1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (!p || wsi != p->http_wsi)
            return -1;
        status = (int)lws_http_client_http_response(wsi);
        release(&p->http_wsi, true);
        if (status >= 200 && status < 400)
            finish(p, PROBE_SUCCESS, msgf("%s", ""));
        else
            fail(p, msgf("HTTP probe failed with statuscode: %d", status));
        return -1; /* the body is not needed */
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (p && wsi == p->http_wsi) {
            release(&p->http_wsi, true);
            http_failed(p, in, in ? strnlen(in, len ? len : 256) : 0);
        }
        return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (p && wsi == p->http_wsi) {
            release(&p->http_wsi, true);
            http_failed(p, NULL, 0);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        return p ? 0 : -1;

    /* the dial */
    case LWS_CALLBACK_RAW_ADOPT_FILE:
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!p || wsi != p->dial_wsi)
            return -1;
        status = so_error(wsi);
        release(&p->dial_wsi, true);
        dial_result(p, status);
        return -1;
    case LWS_CALLBACK_RAW_CLOSE_FILE: /* POLLHUP: the descriptor is still open here */
        if (p && wsi == p->dial_wsi) {
            status = so_error(wsi);
            release(&p->dial_wsi, true);
            dial_result(p, status);
        }
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

const struct lws_protocols probes_protocol = {PROBE_PROTOCOL, callback, 0, 0, 0, NULL, 0};

static bool token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c);
}

static bool header_name_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!token_char((unsigned char)*s))
            return false;
    return true;
}

static bool header_value_ok(const char *s)
{
    for (; s && *s; s++)
        if (*s == '\r' || *s == '\n' || ((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return false;
    return true;
}

static bool has_header(const struct pod_probe *pp, const char *name)
{
    size_t i;

    for (i = 0; i < pp->n_headers; i++)
        if (pp->headers[i].name && !strcasecmp(pp->headers[i].name, name))
            return true;
    return false;
}

/* The request line's path: as given, "/" first, bytes that cannot stand in it escaped. */
static int request_path(const char *path, struct kedge_buf *out)
{
    const unsigned char *s = (const unsigned char *)(path && *path ? path : "/");
    int rc = 0;

    if (*s != '/')
        rc = kedge_buf_putc(out, '/');
    for (; *s && rc == 0; s++)
        rc = *s <= 0x20 || *s >= 0x7f ? kedge_buf_printf(out, "%%%02X", *s)
                                      : kedge_buf_putc(out, (char)*s);
    return rc;
}

/* p->ip / p->port into p->sa and p->addr. false: not an IP address. */
static bool numeric_address(struct probe *p, const char *host, int port)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)&p->sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&p->sa;

    memset(&p->sa, 0, sizeof(p->sa));
    snprintf(p->ip, sizeof(p->ip), "%s", host);
    p->port = port;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        p->sa_len = sizeof(*in4);
        snprintf(p->addr, sizeof(p->addr), "%s:%d", host, port);
        return true;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        p->sa_len = sizeof(*in6);
        snprintf(p->addr, sizeof(p->addr), "[%s]:%d", host, port);
        return true;
    }
    snprintf(p->addr, sizeof(p->addr), "%.*s:%d", (int)sizeof(p->ip) - 1, host, port);
    return false;
}

/* Returns 0 (the result will come through finish) or -ENOMEM (nothing started). */
static int start_http(struct probe *p, const struct pod_probe *pp, const char *host)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct lws_client_connect_info i;
    bool numeric;
    size_t k;

    p->tls = pp->scheme && !strcasecmp(pp->scheme, "HTTPS");
    numeric = numeric_address(p, host, pp->port);
    if (request_path(pp->path, &b) < 0)
        goto nomem;
    p->path = kedge_buf_take(&b, NULL);
    if (!p->path ||
        kedge_buf_printf(&b, "%s://%s%s", p->tls ? "https" : "http", p->addr, p->path) < 0)
        goto nomem;
    p->url = kedge_buf_take(&b, NULL);
    if (!p->url)
        goto nomem;
    /* kubelet's request: its User-Agent and Accept unless the probe sets them, every
     * httpHeaders entry, Host from a "Host" entry (else the URL's host:port) */
    if (!has_header(pp, "User-Agent") && kedge_buf_puts(&b, "User-Agent: " USER_AGENT "\r\n") < 0)
        goto nomem;
    if (!has_header(pp, "Accept") && kedge_buf_puts(&b, "Accept: */*\r\n") < 0)
        goto nomem;
    for (k = 0; k < pp->n_headers; k++) {
        const struct pod_kv *h = &pp->headers[k];

        if (!header_name_ok(h->name)) {
            kedge_buf_cleanup(&b);
            fail(p, msgf("Get \"%s\": net/http: invalid header field name \"%s\"", p->url,
                         h->name ? h->name : ""));
            return 0;
        }
        if (!header_value_ok(h->value)) {
            kedge_buf_cleanup(&b);
            fail(p, msgf("Get \"%s\": net/http: invalid header field value for \"%s\"", p->url,
                         h->name));
            return 0;
        }
        if (!strcasecmp(h->name, "Host")) {
            kedge_free(p->host_header);
            p->host_header = kedge_strdup(h->value ? h->value : "");
            if (!p->host_header)
                goto nomem;
        } else if (kedge_buf_printf(&b, "%s: %s\r\n", h->name, h->value ? h->value : "") < 0) {
            goto nomem;
        }
    }
    p->headers = kedge_buf_take(&b, NULL);
    if (!p->headers || (!p->host_header && !(p->host_header = kedge_strdup(p->addr))))
        goto nomem;
    if (pp->port < 1 || pp->port > 65535) {
        fail(p, msgf("Get \"%s\": dial tcp %s: invalid port", p->url, p->addr));
        return 0;
    }
    if (!numeric) {
        fail(p, msgf("Get \"%s\": dial tcp: lookup %s: not an IP address (the prober does not "
                     "resolve names)",
                     p->url, host));
        return 0;
    }
    memset(&i, 0, sizeof(i));
    i.context = p->lws;
    i.vhost = p->vhost;
    i.address = p->ip;
    i.port = p->port;
    i.path = p->path;
    i.host = p->host_header;
    i.method = "GET";
    i.local_protocol_name = PROBE_PROTOCOL;
    i.alpn = "http/1.1";
    i.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
    if (p->tls) /* kubelet: InsecureSkipVerify */
        i.ssl_connection |= LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED | LCCSCF_ALLOW_EXPIRED |
                            LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_INSECURE;
    i.opaque_user_data = p;
    i.pwsi = &p->http_wsi;
    if (!lws_client_connect_via_info(&i)) {
        p->http_wsi = NULL;
        if (!p->finished && !p->dial_wsi)
            http_failed(p, NULL, 0);
    }
    return 0;
nomem:
    kedge_buf_cleanup(&b);
    return -ENOMEM;
}

static int start_tcp(struct probe *p, const struct pod_probe *pp, const char *host)
{
    if (!numeric_address(p, host, pp->port)) {
        fail(p, msgf("dial tcp: lookup %s: not an IP address (the prober does not resolve names)",
                     host));
        return 0;
    }
    if (pp->port < 1 || pp->port > 65535) {
        fail(p, msgf("dial tcp %s: invalid port", p->addr));
        return 0;
    }
    dial(p);
    return 0;
}

/* ---- exec ---------------------------------------------------------------------------------- */

/* Go's %q of s (ASCII control bytes escaped; other bytes as they are). */
static int go_quote(struct kedge_buf *b, const char *s)
{
    int rc = kedge_buf_putc(b, '"');

    for (; *s && rc == 0; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            rc = kedge_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            rc = kedge_buf_puts(b, "\\n");
        else if (c == '\t')
            rc = kedge_buf_puts(b, "\\t");
        else if (c == '\r')
            rc = kedge_buf_puts(b, "\\r");
        else if (c < 0x20 || c == 0x7f)
            rc = kedge_buf_printf(b, "\\x%02x", c);
        else
            rc = kedge_buf_putc(b, (char)c);
    }
    return rc ? rc : kedge_buf_putc(b, '"');
}

/* `command "..." <what>` plus ": output" when there was any. */
static char *exec_message(struct probe *p, const char *what, const char *out, size_t n)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    if (kedge_buf_puts(&b, "command ") < 0 || go_quote(&b, p->cmd_text ? p->cmd_text : "") < 0 ||
        kedge_buf_printf(&b, " %s", what) < 0 ||
        (n && (kedge_buf_puts(&b, ": ") < 0 || kedge_buf_append(&b, out, n) < 0))) {
        kedge_buf_cleanup(&b);
        return NULL;
    }
    return kedge_buf_take(&b, NULL);
}

/* The runtime's answer: kubelet's messages for an exec probe. */
static void exec_done(void *ctx, const struct runtime_exec_result *r)
{
    struct probe *p = ctx;
    size_t n = r->output_len;
    char what[48];

    p->exec_running = false;
    p->exec_handle = 0;
    while (n && strchr(" \t\r\n", r->output[n - 1]))
        n--;
    if (r->err == -ETIMEDOUT) {
        fail(p, exec_message(p, "timed out", NULL, 0));
    } else if (r->err == -ENOMEM) {
        fail(p, NULL);
    } else if (r->err) {
        fail(p, msgf("failed to exec in container: %s", r->reason));
    } else if (r->exit_code == 0) {
        finish(p, PROBE_SUCCESS, kedge_strndup(r->output, n));
    } else {
        snprintf(what, sizeof(what), "exited with %d", r->exit_code);
        fail(p, exec_message(p, what, r->output, n));
    }
}

static int start_exec(struct probe *p, const struct pod_probe *pp, const char *container_id)
{
    struct kedge_buf text = KEDGE_BUF_INIT;
    uint64_t now = kedge_now_ms();
    size_t k;
    long h;
    int rc = 0;

    for (k = 0; k < pp->n_command && rc == 0; k++)
        rc = (k && kedge_buf_putc(&text, ' ') < 0) ||
                     kedge_buf_puts(&text, pp->command[k] ? pp->command[k] : "") < 0
                 ? -ENOMEM
                 : 0;
    p->cmd_text = rc == 0 ? kedge_buf_take(&text, NULL) : NULL;
    kedge_buf_cleanup(&text);
    if (!p->cmd_text)
        return -ENOMEM;
    if (!pp->n_command) {
        fail(p, msgf("failed to exec in container: the probe has no command"));
        return 0;
    }
    if (!p->rt) {
        fail(p, msgf("failed to exec in container: no container engine"));
        return 0;
    }
    if (now >= p->deadline_ms) {
        fail(p, exec_message(p, "timed out", NULL, 0));
        return 0;
    }
    p->exec_running = true; /* the runtime may answer before it returns */
    h = p->rt->ops->exec(p->rt->rt, container_id, pp->command, pp->n_command,
                         (int)(p->deadline_ms - now), exec_done, p);
    if (h < 0) {
        p->exec_running = false;
        return -ENOMEM;
    }
    if (p->exec_running)
        p->exec_handle = h;
    return 0;
}

/* ---- the prober ---------------------------------------------------------------------------- */

static void on_timeout(lws_sorted_usec_list_t *sul)
{
    struct probe *p = kedge_container_of(sul, struct probe, sul_timeout);

    release(&p->http_wsi, false);
    release(&p->dial_wsi, false);
    if (p->kind == PROBE_EXEC) /* kubelet's CRI text; the engine request runs on, unheard */
        fail(p, exec_message(p, "timed out", NULL, 0));
    else if (p->kind == PROBE_HTTP)
        fail(p, msgf("Get \"%s\": context deadline exceeded (Client.Timeout exceeded while "
                     "awaiting headers)",
                     p->url));
    else
        fail(p, msgf("dial tcp %s: i/o timeout", p->addr));
}

int prober_new(struct lws_context *lws, struct lws_vhost *vhost, const struct runtime *rt,
               struct prober **out)
{
    struct prober *pr;

    *out = NULL;
    if (!lws || !vhost)
        return -EINVAL;
    if (!lws_vhost_name_to_protocol(vhost, PROBE_PROTOCOL)) {
        kedge_log(KEDGE_LOG_ERR,
                  "probes: protocol %s is not on the local vhost "
                  "(probes_protocol missing from main.c's list)",
                  PROBE_PROTOCOL);
        return -ENOPROTOOPT;
    }
    pr = kedge_calloc(1, sizeof(*pr));
    if (!pr)
        return -ENOMEM;
    pr->lws = lws;
    pr->vhost = vhost;
    pr->rt = rt;
    *out = pr;
    return 0;
}

void prober_free(struct prober *pr)
{
    if (!pr)
        return;
    while (pr->head)
        detach(pr->head);
    kedge_free(pr);
}

long prober_run(struct prober *pr, const struct pod_probe *probe, const char *container_id,
                const char *ip, probe_done_fn done, void *ctx)
{
    const char *host;
    struct probe *p;
    int timeout_s, rc;

    if (!pr || !probe || !done ||
        (probe->kind != PROBE_EXEC && probe->kind != PROBE_HTTP && probe->kind != PROBE_TCP))
        return -EINVAL;
    p = kedge_calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->pr = pr;
    p->lws = pr->lws;
    p->vhost = pr->vhost;
    p->rt = pr->rt;
    p->kind = probe->kind;
    p->done = done;
    p->ctx = ctx;
    if (pr->last_handle >= LONG_MAX - 1)
        pr->last_handle = 0;
    p->handle = ++pr->last_handle;
    p->next = pr->head;
    if (p->next)
        p->next->pprev = &p->next;
    p->pprev = &pr->head;
    pr->head = p;
    timeout_s = probe->timeout_s > 0 ? probe->timeout_s : DEFAULT_TIMEOUT_S;
    p->deadline_ms = kedge_now_ms() + (uint64_t)timeout_s * 1000u;
    lws_sul_schedule(p->lws, 0, &p->sul_timeout, on_timeout,
                     (lws_usec_t)timeout_s * LWS_US_PER_SEC);
    host = probe->host && *probe->host ? probe->host : ip ? ip : "";
    p->busy++;
    if (probe->kind == PROBE_EXEC)
        rc = start_exec(p, probe, container_id);
    else if (probe->kind == PROBE_HTTP)
        rc = start_http(p, probe, host);
    else
        rc = start_tcp(p, probe, host);
    p->busy--;
    if (rc < 0) { /* nothing was started */
        detach(p);
        return rc;
    }
    return p->handle;
}

void prober_cancel(struct prober *pr, long handle)
{
    struct probe *p;

    if (!pr)
        return;
    for (p = pr->head; p; p = p->next)
        if (p->handle == handle) {
            detach(p);
            return;
        }
}
