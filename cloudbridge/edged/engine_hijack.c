/* engine_hijack.c: a hijacked Docker Engine API connection (engine_hijack.h).
 *
 * The request asks for the upgrade (Connection: Upgrade, Upgrade: tcp) as Docker's CLI does:
 * dockerd answers 101 UPGRADED, podman's service and older dockerd 200 with a raw stream, and
 * from then on the socket carries the process's stdin one way and its output the other. Bytes
 * for the process wait until that answer: dockerd takes the connection over without the
 * buffered reader of its HTTP server, so what arrived early would be lost. An error answer
 * (404 no such container, 409 not running) is an ordinary HTTP response and is collected
 * (Content-Length, chunked, or until the engine closes).
 *
 * Why not lws' own raw client: it connects by address and port; a unix socket path needs the
 * connect done here, which is immediate for a local socket (or refused), then adopted.
 */
#define _GNU_SOURCE
#include "engine_hijack.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kedge/alloc.h"
#include "kedge/buf.h"

#define API_PREFIX "/v1.41"
#define READ_CHUNK 16384
#define READS_PER_TURN 8 /* then let the loop serve others; lws reports the rest */
#define MAX_HEAD 16384
#define MAX_ERROR_BODY 65536

enum phase { P_HEAD, P_STREAM, P_BODY };

struct engine_hijack {
    struct lws *wsi;
    int fd;
    const struct engine_hijack_fns *fns;
    void *ctx;
    struct kedge_buf out; /* the request, then bytes for the process */
    size_t out_off;       /* written so far */
    size_t allowed;       /* of out, what may go now (the request only, until open) */
    struct kedge_buf in;  /* the response head, then an error body */
    enum phase phase;
    int status;
    long clen;
    bool chunked;
    bool shut_wanted, shut_done, write_broken;
    bool paused, cancelled, finished;
    bool in_writable; /* inside RAW_WRITEABLE_FILE */
    bool rearm_armed;
    lws_sorted_usec_list_t rearm; /* asks for POLLOUT again from outside that callback */
    int busy;                     /* calls out of here on the stack */
};

/* ---- the response head ------------------------------------------------------------------- */

static bool header_is(const char *line, size_t n, const char *name, const char **value)
{
    size_t k = strlen(name);

    if (n <= k || strncasecmp(line, name, k) || line[k] != ':')
        return false;
    *value = line + k + 1;
    while (*value < line + n && (**value == ' ' || **value == '\t'))
        (*value)++;
    return true;
}

long engine_http_head(const char *b, size_t n, int *status, long *content_length, bool *chunked)
{
    const char *end = NULL, *p, *v;
    size_t i;

    for (i = 0; i + 3 < n; i++)
        if (!memcmp(b + i, "\r\n\r\n", 4)) {
            end = b + i + 4;
            break;
        }
    if (n >= 5 && strncmp(b, "HTTP/", 5))
        return -1;
    if (!end)
        return n > MAX_HEAD ? -1 : 0;
    p = memchr(b, ' ', (size_t)(end - b));
    if (!p || end - p < 4 || p[1] < '1' || p[1] > '5')
        return -1;
    *status = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    *content_length = -1;
    *chunked = false;
    for (p = memchr(b, '\n', (size_t)(end - b)) + 1; p < end - 2;) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        size_t len = (size_t)(eol - p);

        if (header_is(p, len, "Content-Length", &v))
            *content_length = strtol(v, NULL, 10);
        else if (header_is(p, len, "Transfer-Encoding", &v))
            *chunked = !strncasecmp(v, "chunked", 7);
        p = eol + 2;
    }
    return (long)(end - b);
}

/* A chunked body in b[0..n) into out: 1 complete, 0 more to come, -1 broken. */
static int dechunk(const char *b, size_t n, struct kedge_buf *out)
{
    size_t i = 0;

    out->len = 0;
    for (;;) {
        char *e;
        const char *crlf = n > i ? memmem(b + i, n - i, "\r\n", 2) : NULL;
        unsigned long size;

        if (!crlf)
            return 0;
        size = strtoul(b + i, &e, 16);
        if (e == b + i)
            return -1;
        i = (size_t)(crlf - b) + 2;
        if (!size)
            return 1;
        if (n - i < size + 2)
            return 0;
        if (kedge_buf_append(out, b + i, size) < 0)
            return -1;
        i += size + 2;
    }
}

/* ---- the end ----------------------------------------------------------------------------- */

static void release(struct engine_hijack *h)
{
    if (h->busy || h->wsi || !(h->finished || h->cancelled))
        return;
    if (h->rearm_armed)
        lws_sul_cancel(&h->rearm);
    kedge_buf_cleanup(&h->out);
    kedge_buf_cleanup(&h->in);
    kedge_free(h);
}

/* Ask lws to close the descriptor; RAW_CLOSE_FILE lets go of h. */
static void hang_up(struct engine_hijack *h)
{
    if (h->wsi)
        lws_set_timeout(h->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

static void finish(struct engine_hijack *h, int status, int err, const char *body, size_t len)
{
    struct engine_reply r = {err ? 0 : status, err, body ? body : "", body ? len : 0};

    if (h->finished || h->cancelled)
        return;
    h->finished = true;
    h->busy++;
    h->fns->done(h->ctx, &r);
    h->busy--;
    hang_up(h);
}

/* ---- bytes in ---------------------------------------------------------------------------- */

static void emit(struct engine_hijack *h, const char *b, size_t n)
{
    if (!n || h->cancelled || h->finished)
        return;
    h->busy++;
    h->fns->data(h->ctx, b, n);
    h->busy--;
}

static void flush_out(struct engine_hijack *h);

/* An error body: complete yet? Then done with it. eof: the engine closed. */
static void body_in(struct engine_hijack *h, bool eof)
{
    struct kedge_buf plain = KEDGE_BUF_INIT;
    int rc;

    if (h->chunked) {
        rc = dechunk(h->in.data ? h->in.data : "", h->in.len, &plain);
        if (rc != 0 || eof) {
            if (kedge_buf_putc(&plain, '\0') == 0)
                plain.len--;
            finish(h, h->status, 0, plain.data, plain.len);
        }
        kedge_buf_cleanup(&plain);
        return;
    }
    if (eof || (h->clen >= 0 && h->in.len >= (size_t)h->clen) || h->in.len > MAX_ERROR_BODY) {
        if (kedge_buf_putc(&h->in, '\0') == 0)
            h->in.len--;
        finish(h, h->status, 0, h->in.data, h->in.len);
    }
}

/* The head is in: the stream, or an error body. */
static void head_in(struct engine_hijack *h, long head_len)
{
    size_t rest = h->in.len - (size_t)head_len;

    memmove(h->in.data, h->in.data + head_len, rest);
    h->in.len = rest;
    if (h->status == 101 || (h->status >= 200 && h->status < 300)) {
        h->phase = P_STREAM;
        h->allowed = SIZE_MAX;
        h->busy++;
        h->fns->open(h->ctx);
        h->busy--;
        if (h->cancelled || h->finished)
            return;
        flush_out(h);
        if (h->paused && h->wsi)
            (void)lws_rx_flow_control(h->wsi, 0);
        emit(h, h->in.data, h->in.len); /* what came with the head */
        h->in.len = 0;
        return;
    }
    h->phase = P_BODY;
    body_in(h, false);
}

static void got(struct engine_hijack *h, const char *b, size_t n)
{
    long head;

    if (h->phase == P_STREAM) {
        emit(h, b, n);
        return;
    }
    if (kedge_buf_append(&h->in, b, n) < 0) {
        finish(h, 0, -ENOMEM, NULL, 0);
        return;
    }
    if (h->phase == P_BODY) {
        body_in(h, false);
        return;
    }
    head = engine_http_head(h->in.data, h->in.len, &h->status, &h->clen, &h->chunked);
    if (head < 0)
        finish(h, 0, -EPROTO, NULL, 0);
    else if (head > 0)
        head_in(h, head);
}

/* The engine closed its side (or the connection broke: err). */
static void eof(struct engine_hijack *h, int err)
{
    if (h->phase == P_BODY && !err)
        body_in(h, true);
    else if (h->phase == P_STREAM)
        finish(h, h->status, err, NULL, 0);
    else
        finish(h, 0, err ? err : -ECONNRESET, NULL, 0); /* closed before an answer */
}

/* Read what is there; all of it (drain) when lws is closing the descriptor. */
static void readable(struct engine_hijack *h, bool drain)
{
    char buf[READ_CHUNK];
    int i;

    for (i = 0; (drain || i < READS_PER_TURN) && !h->cancelled && !h->finished; i++) {
        ssize_t r;

        if (!drain && h->paused && h->phase == P_STREAM)
            return;
        r = read(h->fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            eof(h, r < 0 ? -errno : 0);
            return;
        }
        got(h, buf, (size_t)r);
    }
}

/* ---- bytes out --------------------------------------------------------------------------- */

static void rearm_writable(lws_sorted_usec_list_t *sul)
{
    struct engine_hijack *h = lws_container_of(sul, struct engine_hijack, rearm);

    h->rearm_armed = false;
    if (h->wsi && !h->cancelled && !h->finished)
        lws_callback_on_writable(h->wsi);
}

/* More to write once the socket takes it. lws' raw-file role (4.1) clears POLLOUT after its
 * RAW_WRITEABLE_FILE callback returns, so a request made inside that callback is lost and the
 * rest of stdin would wait forever (a process slower than its stdin: `kubectl cp` into a busy
 * container): from there the request is made from the next loop turn instead. */
static void want_writable(struct engine_hijack *h)
{
    if (!h->wsi)
        return;
    if (!h->in_writable) {
        lws_callback_on_writable(h->wsi);
    } else if (!h->rearm_armed) {
        h->rearm_armed = true;
        lws_sul_schedule(lws_get_context(h->wsi), 0, &h->rearm, rearm_writable, 1);
    }
}

static void flush_out(struct engine_hijack *h)
{
    size_t limit = h->allowed < h->out.len ? h->allowed : h->out.len;

    while (!h->write_broken && h->out_off < limit) {
        ssize_t w = send(h->fd, h->out.data + h->out_off, limit - h->out_off, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            want_writable(h);
            return;
        }
        if (w < 0) { /* the process is gone or closed its stdin: its output may still come */
            h->write_broken = true;
            break;
        }
        h->out_off += (size_t)w;
    }
    if (h->out_off == h->out.len) {
        h->out.len = h->out_off = 0;
        if (h->allowed != SIZE_MAX)
            h->allowed = 0;
    }
    if (h->phase == P_STREAM && h->shut_wanted && !h->shut_done && !h->out.len) {
        h->shut_done = true;
        (void)shutdown(h->fd, SHUT_WR);
    }
}

int engine_hijack_write(struct engine_hijack *h, const char *bytes, size_t len)
{
    if (h->shut_wanted || h->write_broken || h->finished || h->cancelled)
        return -EPIPE;
    if (kedge_buf_append(&h->out, bytes, len) < 0)
        return -ENOMEM;
    if (h->phase == P_STREAM && !h->busy)
        flush_out(h);
    else if (h->wsi)
        lws_callback_on_writable(h->wsi);
    return 0;
}

void engine_hijack_close_write(struct engine_hijack *h)
{
    if (h->shut_wanted)
        return;
    h->shut_wanted = true;
    if (h->phase == P_STREAM && h->wsi)
        lws_callback_on_writable(h->wsi);
}

void engine_hijack_pause(struct engine_hijack *h, bool pause)
{
    if (h->paused == pause)
        return;
    h->paused = pause;
    if (h->phase == P_STREAM && h->wsi && !h->finished)
        (void)lws_rx_flow_control(h->wsi, pause ? 0 : 1);
}

void engine_hijack_cancel(struct engine_hijack *h)
{
    if (!h || h->cancelled)
        return;
    h->cancelled = true;
    hang_up(h);
    release(h);
}

/* ---- the connection ---------------------------------------------------------------------- */

static int connect_unix(const char *path)
{
    struct sockaddr_un sa;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* a local socket connects at once or not at all (EAGAIN: its backlog is full) */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno == EAGAIN ? -ECONNREFUSED : -errno;
        close(fd);
        return err;
    }
    return fd;
}

static int request_head(struct kedge_buf *b, const char *method, const char *path, const char *body)
{
    size_t n = body ? strlen(body) : 0;

    if (kedge_buf_printf(b,
                         "%s " API_PREFIX "%s HTTP/1.1\r\nHost: localhost\r\n"
                         "User-Agent: kedge\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n",
                         method, path) < 0)
        return -ENOMEM;
    if (body &&
        kedge_buf_printf(b, "Content-Type: application/json\r\nContent-Length: %zu\r\n", n) < 0)
        return -ENOMEM;
    if (kedge_buf_puts(b, "\r\n") < 0 || (n && kedge_buf_append(b, body, n) < 0))
        return -ENOMEM;
    return 0;
}

int engine_hijack(struct lws_vhost *vhost, const char *socket_path, const char *method,
                  const char *path, const char *body, const struct engine_hijack_fns *fns,
                  void *ctx, struct engine_hijack **out)
{
    struct engine_hijack *h = kedge_calloc(1, sizeof(*h));
    lws_adopt_desc_t ad;
    int fd;

    *out = NULL;
    if (!h)
        return -ENOMEM;
    h->fns = fns;
    h->ctx = ctx;
    if (request_head(&h->out, method, path, body) < 0) {
        kedge_buf_cleanup(&h->out);
        kedge_free(h);
        return -ENOMEM;
    }
    h->allowed = h->out.len;
    fd = connect_unix(socket_path);
    if (fd < 0) {
        kedge_buf_cleanup(&h->out);
        kedge_free(h);
        return fd;
    }
    h->fd = fd;
    memset(&ad, 0, sizeof(ad));
    ad.vh = vhost;
    ad.type = LWS_ADOPT_RAW_FILE_DESC;
    ad.fd.filefd = fd;
    ad.vh_prot_name = ENGINE_PROTOCOL_NAME;
    ad.opaque = h;
    h->wsi = lws_adopt_descriptor_vhost_via_info(&ad);
    if (!h->wsi) {
        close(fd); /* a raw descriptor is left to us when adoption fails */
        kedge_buf_cleanup(&h->out);
        kedge_free(h);
        return -ENOMEM;
    }
    lws_callback_on_writable(h->wsi);
    *out = h;
    return 0;
}

bool engine_hijack_reason(enum lws_callback_reasons reason)
{
    return reason == LWS_CALLBACK_RAW_ADOPT_FILE || reason == LWS_CALLBACK_RAW_RX_FILE ||
           reason == LWS_CALLBACK_RAW_WRITEABLE_FILE || reason == LWS_CALLBACK_RAW_CLOSE_FILE;
}

int engine_hijack_callback(struct lws *wsi, enum lws_callback_reasons reason)
{
    struct engine_hijack *h = wsi ? lws_get_opaque_user_data(wsi) : NULL;

    if (!h || h->wsi != wsi)
        return 0; /* adoption (before the opaque data is set) */
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        readable(h, false);
        break;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (!h->cancelled && !h->finished) {
            h->in_writable = true;
            flush_out(h);
            h->in_writable = false;
        }
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* the hang-up may come before the rest of the stream was read (or while paused): the
         * descriptor is still open here, so what is left is read now rather than lost */
        lws_set_opaque_user_data(wsi, NULL);
        h->wsi = NULL;
        if (!h->cancelled && !h->finished)
            readable(h, true);
        if (!h->cancelled && !h->finished)
            eof(h, 0);
        h->fd = -1;         /* lws closes the descriptor it adopted */
        h->finished = true; /* nothing is called after the close */
        release(h);
        break;
    default:
        break;
    }
    return 0;
}
