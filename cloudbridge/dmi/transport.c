/* DMI's sockets on the bridge's lws loop (transport.h): gRPC connections (grpc/grpc.h) on raw
 * descriptors adopted into lws, as relay.c adopts the broker's socket. lws says a descriptor is
 * readable (RAW_RX_FILE: we read() ourselves) or writable (RAW_WRITEABLE_FILE after
 * lws_callback_on_writable); this file moves bytes between it and the connection.
 *
 * Served requests are remembered as call id -> (connection, stream) until answered, so an
 * answer for a connection that went away (or a stream the mapper reset) finds nothing and is
 * dropped. A call to a mapper has its own connection and a timer; whichever ends first (the
 * answer, the timer, the connection) answers it, once.
 */
#define _GNU_SOURCE /* accept4 */
#include "transport.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grpc_fd.h"
#include "kedge/alloc.h"
#include "kedge/log.h"

#define READ_CHUNK 16384
#define READS_PER_TURN 16 /* then let the loop serve others; lws reports the rest */

struct dmi_conn;

/* A call to a mapper: its connection, its timer, whom to tell. */
struct dmi_outcall {
    struct dmi_conn *conn;
    lws_sorted_usec_list_t sul;
    const ProtobufCMessageDescriptor *desc;
    dmi_response_fn done;
    void *ctx;
    bool finished;
};

struct dmi_conn {
    struct dmi_transport *t;
    struct dmi_conn *prev, *next;
    struct lws *wsi;
    int fd;
    bool listener;
    bool closing; /* the wsi is being killed; RAW_CLOSE_FILE destroys */
    bool reading; /* lws polls for input */
    bool in_recv; /* inside grpc_conn_recv: nghttp2 must not be asked to send from there */
    struct grpc_conn *g;
    struct dmi_outcall *call;    /* a connection to a mapper: its one call */
    lws_sorted_usec_list_t half; /* served: fires when a request stays half-sent too long */
    uint64_t bytes_in, calls;    /* served: read, and requests that arrived whole */
};

struct served {
    uint64_t id;
    struct dmi_conn *conn;
    int32_t stream;
};

struct dmi_transport {
    struct lws_context *lws;
    struct lws_vhost *vhost;
    struct dmi_transport_config cfg;
    char *path;
    dmi_request_fn request;
    void *ctx;
    struct dmi_conn *conns; /* the listener too */
    struct served *served;
    size_t n_served, cap_served;
    uint64_t next_call;
    struct kedge_ratelimit rl; /* lines about what clients send */
};

static void conn_close(struct dmi_conn *k);

/* ---- served calls ------------------------------------------------------------------------- */

static void served_drop(struct dmi_transport *t, size_t i)
{
    t->served[i] = t->served[--t->n_served];
}

/* Forget every call of conn k (stream < 0) or of one stream. */
static void served_forget(struct dmi_transport *t, struct dmi_conn *k, int32_t stream)
{
    size_t i = 0;

    while (i < t->n_served) {
        if (t->served[i].conn == k && (stream < 0 || t->served[i].stream == stream))
            served_drop(t, i);
        else
            i++;
    }
}

/* The owner's request of "/{service}/{method}"; a malformed path is answered here. */
static void on_request(void *ctx, struct grpc_conn *c, int32_t stream, const char *path,
                       const uint8_t *msg, size_t len)
{
    struct dmi_conn *k = ctx;
    struct dmi_transport *t = k->t;
    char *copy = kedge_strdup(path);

    k->calls++;
    char *slash = copy ? strrchr(copy, '/') : NULL;
    uint64_t id;

    if (!copy || copy[0] != '/' || !slash || slash == copy || !slash[1]) {
        (void)grpc_reply(c, stream, copy ? GRPC_UNIMPLEMENTED : GRPC_RESOURCE_EXHAUSTED,
                         copy ? "malformed method name" : "out of memory", NULL);
        kedge_free(copy);
        return;
    }
    if (kedge_array_grow(&t->served, &t->cap_served, t->n_served, sizeof(*t->served), 16) < 0) {
        (void)grpc_reply(c, stream, GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
        kedge_free(copy);
        return;
    }
    *slash = '\0';
    id = ++t->next_call;
    t->served[t->n_served++] = (struct served){id, k, stream};
    t->request(t->ctx, id, copy + 1, slash + 1, msg, len);
    kedge_free(copy);
}

static void on_cancelled(void *ctx, struct grpc_conn *c, int32_t stream)
{
    struct dmi_conn *k = ctx;

    (void)c;
    served_forget(k->t, k, stream);
}

/* ---- calls to mappers --------------------------------------------------------------------- */

static void call_finish(struct dmi_outcall *oc, int code, const char *message, const uint8_t *msg,
                        size_t len)
{
    ProtobufCMessage *resp = NULL;

    if (oc->finished)
        return;
    oc->finished = true;
    lws_sul_cancel(&oc->sul);
    if (code == GRPC_OK) {
        resp = protobuf_c_message_unpack(oc->desc, NULL, len, msg);
        if (!resp) {
            code = GRPC_INTERNAL;
            message = "cannot decode the mapper's answer";
        }
    }
    oc->done(oc->ctx, code, message, resp);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    conn_close(oc->conn);
}

static void on_response(void *ctx, struct grpc_conn *c, void *tag, int code, const char *message,
                        const uint8_t *msg, size_t len)
{
    (void)ctx;
    (void)c;
    call_finish(tag, code, message, msg, len);
}

static void call_timeout(lws_sorted_usec_list_t *sul)
{
    struct dmi_outcall *oc = lws_container_of(sul, struct dmi_outcall, sul);

    if (oc->conn->g)
        grpc_cancel(oc->conn->g, oc); /* no response for it now */
    call_finish(oc, GRPC_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0);
}

/* The connection refused a request by itself: one line (grpc.c answered the client). */
static void on_refused(void *ctx, struct grpc_conn *c, int code, const char *why)
{
    struct dmi_conn *k = ctx;

    (void)c;
    kedge_log_limited(&k->t->rl, "dmi", KEDGE_LOG_WARN, "dmi: refused a call on %s: %s (code %d)",
                      k->t->path, why, code);
}

static const struct grpc_conn_ops conn_ops = {.refused = on_refused,
                                              .request = on_request,
                                              .cancelled = on_cancelled,
                                              .response = on_response};

/* ---- connections -------------------------------------------------------------------------- */

/* Destroy k: its wsi is closed (or was never made, or is detached). */
static void conn_destroy(struct dmi_conn *k)
{
    struct dmi_transport *t = k->t;

    k->closing = true;
    lws_sul_cancel(&k->half);
    served_forget(t, k, -1);
    grpc_conn_free(k->g); /* an open call to a mapper ends UNAVAILABLE here */
    k->g = NULL;
    if (k->call) {
        call_finish(k->call, GRPC_UNAVAILABLE, "connection closed", NULL, 0);
        lws_sul_cancel(&k->call->sul);
        kedge_free(k->call);
    }
    if (k->prev)
        k->prev->next = k->next;
    else
        t->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    kedge_free(k);
}

/* Ask lws to close k's descriptor; RAW_CLOSE_FILE destroys k. Safe from any callback. */
static void conn_close(struct dmi_conn *k)
{
    if (k->closing)
        return;
    k->closing = true;
    if (k->wsi)
        lws_set_timeout(k->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

/* The peer closed (or reset) its end: one line if it was in the middle of a call, or went
 * before its first call was whole (a client cut short; a mapper that died). */
static void peer_gone(struct dmi_conn *k)
{
    int unread = 0; /* what it sent that the loop never read (it may see the end first) */

    if (k->fd < 0 || ioctl(k->fd, FIONREAD, &unread) < 0)
        unread = 0;
    if (k->g && !k->call && (grpc_conn_partial(k->g) || unread > 0 || (k->bytes_in && !k->calls)))
        kedge_log_limited(&k->t->rl, "dmi", KEDGE_LOG_WARN,
                          "dmi: a client on %s went away in the middle of sending a call",
                          k->t->path);
}

/* Write what waits; close when the connection is over. */
static void conn_flush(struct dmi_conn *k)
{
    const uint8_t *out;
    size_t n;

    if (k->closing || k->in_recv)
        return; /* conn_readable flushes once grpc_conn_recv returned */
    while ((n = grpc_conn_output(k->g, &out)) > 0) {
        ssize_t w = send(k->fd, out, n, MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                lws_callback_on_writable(k->wsi);
                break;
            }
            peer_gone(k); /* a writer may see the hang-up before any read does */
            conn_close(k);
            return;
        }
        grpc_conn_consumed(k->g, (size_t)w);
    }
    if (grpc_conn_done(k->g)) {
        conn_close(k);
        return;
    }
    if (grpc_conn_want_read(k->g) != k->reading) {
        k->reading = !k->reading;
        (void)lws_rx_flow_control(k->wsi, k->reading);
    }
}

/* A client that stops half-way through a request holds a stream and its buffer for ever; one
 * that sends nothing more within the call timeout loses the connection. */
static void half_expired(lws_sorted_usec_list_t *sul)
{
    struct dmi_conn *k = lws_container_of(sul, struct dmi_conn, half);

    if (k->closing || !grpc_conn_partial(k->g))
        return;
    kedge_log_limited(&k->t->rl, "dmi", KEDGE_LOG_WARN,
                      "dmi: a call on %s stayed half-sent for %ld ms: connection closed",
                      k->t->path, k->t->cfg.call_timeout_ms);
    conn_close(k);
}

static void conn_readable(struct dmi_conn *k)
{
    uint8_t buf[READ_CHUNK];
    int i;

    for (i = 0; i < READS_PER_TURN && !k->closing && grpc_conn_want_read(k->g); i++) {
        ssize_t r = read(k->fd, buf, sizeof(buf));

        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (r <= 0) {
            peer_gone(k);
            conn_close(k);
            return;
        }
        k->bytes_in += (uint64_t)r;
        k->in_recv = true;
        r = grpc_conn_recv(k->g, buf, (size_t)r);
        k->in_recv = false;
        if (r < 0) { /* the GOAWAY is flushed, then grpc_conn_done */
            kedge_log_limited(&k->t->rl, "dmi", KEDGE_LOG_WARN,
                              "dmi: a client on %s sent what is not HTTP/2 gRPC: connection "
                              "closed",
                              k->t->path);
            break;
        }
    }
    if (!k->closing && grpc_conn_partial(k->g)) /* served: watch a request left half-sent */
        lws_sul_schedule(k->t->lws, 0, &k->half, half_expired,
                         (lws_usec_t)k->t->cfg.call_timeout_ms * 1000);
    else
        lws_sul_cancel(&k->half);
    conn_flush(k);
}

/* A new connection on fd (server: accepted; else to a mapper), adopted into the loop. */
static struct dmi_conn *conn_new(struct dmi_transport *t, int fd, bool server, bool listener)
{
    struct dmi_conn *k = kedge_calloc(1, sizeof(*k));
    struct grpc_limits lim = {t->cfg.max_msg, 0};
    lws_sock_file_fd_type desc;

    if (!k)
        return NULL;
    k->t = t;
    k->fd = fd;
    k->listener = listener;
    k->reading = true;
    if (!listener && grpc_conn_new(server, &conn_ops, k, &lim, &k->g) < 0) {
        kedge_free(k);
        return NULL;
    }
    desc.filefd = fd;
    k->wsi = lws_adopt_descriptor_vhost(t->vhost, LWS_ADOPT_RAW_FILE_DESC, desc, dmi_protocol.name,
                                        NULL);
    if (!k->wsi) {
        grpc_conn_free(k->g);
        kedge_free(k);
        return NULL;
    }
    lws_set_opaque_user_data(k->wsi, k);
    k->next = t->conns;
    if (t->conns)
        t->conns->prev = k;
    t->conns = k;
    return k;
}

static void accept_all(struct dmi_conn *l)
{
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct dmi_conn *k;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                kedge_log(KEDGE_LOG_WARN, "dmi: accept on %s: %s", l->t->path, strerror(errno));
            if (errno == ECONNABORTED || errno == EINTR)
                continue;
            return;
        }
        k = conn_new(l->t, fd, true, false);
        if (!k) {
            kedge_log(KEDGE_LOG_WARN, "dmi: out of memory: a mapper's connection is refused");
            close(fd);
            continue;
        }
        conn_flush(k); /* our SETTINGS */
    }
}

static int dmi_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct dmi_conn *k = wsi ? lws_get_opaque_user_data(wsi) : NULL; /* set in conn_new */

    (void)user;
    (void)in;
    (void)len;
    if (!k || k->wsi != wsi)
        return 0; /* adoption (before the user data) or a detached descriptor */
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (k->listener)
            accept_all(k);
        else if (!k->closing)
            conn_readable(k);
        break;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (!k->listener)
            conn_flush(k);
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (!k->closing && !k->listener) /* lws saw the hang-up before we read the end */
            peer_gone(k);
        lws_set_opaque_user_data(wsi, NULL); /* lws calls again (WSI_DESTROY) after this */
        k->wsi = NULL;
        conn_destroy(k);
        break;
    default:
        break;
    }
    return 0;
}

const struct lws_protocols dmi_protocol = {"kedge-dmi-raw", dmi_callback, 0, 0, 0, NULL, 0};

/* ---- the transport ------------------------------------------------------------------------ */

/* mkdir -p of path's directory (0755). 0 or -errno. */
static int make_parent(const char *path)
{
    char *dir = kedge_strdup(path);
    char *p;
    int rv = 0;

    if (!dir)
        return -ENOMEM;
    for (p = dir + 1; *p && rv == 0; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            rv = -errno;
        *p = '/';
    }
    kedge_free(dir);
    return rv;
}

int dmi_transport_new(struct lws_context *lws, struct lws_vhost *vhost,
                      const struct dmi_transport_config *cfg, dmi_request_fn request, void *ctx,
                      struct dmi_transport **out)
{
    struct dmi_transport *t = kedge_calloc(1, sizeof(*t));
    int fd, rv;

    *out = NULL;
    if (!t)
        return -ENOMEM;
    t->lws = lws;
    t->vhost = vhost;
    t->cfg = *cfg;
    /* a line per bad client, but not a flood from one that loops */
    t->rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(10000, 50);
    t->request = request;
    t->ctx = ctx;
    t->path = kedge_strdup(cfg->socket_path);
    t->cfg.socket_path = t->path;
    if (!t->path) {
        kedge_free(t);
        return -ENOMEM;
    }
    rv = make_parent(t->path);
    fd = rv < 0 ? rv : grpc_fd_listen_unix(t->path, cfg->socket_mode);
    if (fd < 0) {
        kedge_log(KEDGE_LOG_ERR, "dmi: cannot listen on %s: %s", t->path, strerror(-fd));
        kedge_free_all(t->path, t);
        return fd;
    }
    if (!conn_new(t, fd, true, true)) {
        close(fd);
        (void)unlink(t->path);
        kedge_free_all(t->path, t);
        return -ENOMEM;
    }
    *out = t;
    return 0;
}

void dmi_transport_free(struct dmi_transport *t)
{
    if (!t)
        return;
    while (t->conns) {
        struct dmi_conn *k = t->conns;

        /* lws closes the descriptor later (or with its context); its callbacks find no k */
        if (k->wsi) {
            lws_set_opaque_user_data(k->wsi, NULL);
            lws_set_timeout(k->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
        }
        k->wsi = NULL;
        conn_destroy(k);
    }
    (void)unlink(t->path);
    kedge_free_all(t->served, t->path, t);
}

int dmi_reply(struct dmi_transport *t, uint64_t call, int code, const char *message,
              const ProtobufCMessage *resp)
{
    size_t i;
    struct served s;
    int rv;

    for (i = 0; i < t->n_served && t->served[i].id != call; i++)
        ;
    if (i == t->n_served)
        return -ENOENT; /* its connection or stream went away: answered into nothing */
    s = t->served[i];
    served_drop(t, i);
    if (s.conn->closing)
        return -ENOENT;
    rv = grpc_reply(s.conn->g, s.stream, code, message, resp);
    conn_flush(s.conn);
    return rv;
}

int dmi_call(struct dmi_transport *t, const char *sock, const char *path,
             const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
             dmi_response_fn done, void *ctx)
{
    struct dmi_outcall *oc = kedge_calloc(1, sizeof(*oc));
    struct dmi_conn *k;
    int fd, rv;

    if (!oc)
        return -ENOMEM;
    fd = grpc_fd_connect_unix(sock);
    if (fd < 0) {
        kedge_free(oc);
        return fd;
    }
    k = conn_new(t, fd, false, false);
    if (!k) {
        close(fd);
        kedge_free(oc);
        return -ENOMEM;
    }
    rv = grpc_call(k->g, path, req, oc);
    if (rv < 0) {
        oc->finished = true; /* the caller hears rv, not done */
        k->call = oc;
        conn_close(k);
        return rv;
    }
    oc->conn = k;
    oc->desc = resp_desc;
    oc->done = done;
    oc->ctx = ctx;
    k->call = oc;
    lws_sul_schedule(t->lws, 0, &oc->sul, call_timeout,
                     (lws_usec_t)(t->cfg.call_timeout_ms > 0 ? t->cfg.call_timeout_ms : 10000) *
                         1000);
    conn_flush(k);
    return 0;
}
