/* httpc.c: the tests' blocking HTTP/1.1 client (httpc.h). */
#define _GNU_SOURCE /* memmem */

#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "testsupport.h"

static int send_all(int fd, const char *p, size_t len, int64_t deadline)
{
    while (len) {
        struct pollfd pf = {fd, POLLOUT, 0};
        ssize_t n;
        int r = poll(&pf, 1, kt_remaining_ms(deadline));

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -ETIMEDOUT;
        n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

struct http_head {
    size_t len; /* bytes of the status line and headers, with the blank line */
    int status;
    long content_length; /* -1: none */
    bool chunked;
};

/* Whether a header line (without CRLF) is `name: ...`; *value then points after the colon and
 * any blanks. */
static bool header_is(const char *line, size_t len, const char *name, const char **value)
{
    size_t n = strlen(name);

    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    *value = line + n + 1;
    while (*value < line + len && (**value == ' ' || **value == '\t'))
        (*value)++;
    return true;
}

/* Parse the head once it is complete. Returns 1 (parsed), 0 (incomplete), -EPROTO. */
static int parse_head(const char *buf, size_t len, struct http_head *h)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4), *line, *eol, *v;

    if (!end)
        return len > 65536 ? -EPROTO : 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &h->status) != 1 || h->status < 100)
        return -EPROTO;
    h->len = (size_t)(end - buf) + 4;
    h->content_length = -1;
    h->chunked = false;
    line = memmem(buf, h->len, "\r\n", 2) + 2; /* after the status line */
    for (; line < end + 2; line = eol + 2) {
        eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        if (header_is(line, (size_t)(eol - line), "Content-Length", &v)) {
            char *num_end;
            h->content_length = strtol(v, &num_end, 10);
            if (num_end == v || h->content_length < 0)
                return -EPROTO;
        } else if (header_is(line, (size_t)(eol - line), "Transfer-Encoding", &v)) {
            h->chunked = memmem(v, (size_t)(eol - v), "chunked", 7) != NULL;
        }
    }
    return 1;
}

/* Decode a chunked body (RFC 9112 §7.1) into out, which is reset first. Extensions after ';'
 * and trailers are skipped. Returns 1 (complete), 0 (more bytes needed), -EPROTO, -ENOMEM. */
static int dechunk(const char *p, size_t len, struct kedge_buf *out)
{
    size_t i = 0;

    kedge_buf_reset(out);
    for (;;) {
        const char *eol = memmem(p + i, len - i, "\r\n", 2);
        size_t size = 0, j;
        int digits = 0;

        if (!eol)
            return len - i > 1024 ? -EPROTO : 0;
        for (j = i; p + j < eol; j++, digits++) {
            char c = p[j];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                break;
            if (size > (SIZE_MAX >> 4) - 1)
                return -EPROTO;
            size = size * 16 + (size_t)d;
        }
        if (!digits || (p + j < eol && p[j] != ';' && p[j] != ' ' && p[j] != '\t'))
            return -EPROTO;
        i = (size_t)(eol - p) + 2;
        if (size == 0) { /* trailers, then an empty line */
            for (;;) {
                eol = memmem(p + i, len - i, "\r\n", 2);
                if (!eol)
                    return 0;
                if (eol == p + i)
                    return 1;
                i = (size_t)(eol - p) + 2;
            }
        }
        if (len - i < size || len - i - size < 2)
            return 0;
        if (p[i + size] != '\r' || p[i + size + 1] != '\n')
            return -EPROTO;
        if (kedge_buf_append(out, p + i, size) < 0)
            return -ENOMEM;
        i += size + 2;
    }
}

int kt_connect_unix(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    (void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int rc = -errno;
        (void)close(fd);
        return rc;
    }
    return fd;
}

int kt_connect_tcp(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int rc = -errno;
        (void)close(fd);
        return rc;
    }
    return fd;
}

int kt_http_fd(int fd, const char *host, const char *method, const char *path, const char *body,
               int timeout_ms, int *status, struct kedge_buf *resp)
{
    int64_t deadline = kt_now_ms() + timeout_ms;
    struct kedge_buf in = KEDGE_BUF_INIT, req = KEDGE_BUF_INIT, dec = KEDGE_BUF_INIT;
    struct http_head h = {0, -1, -1, false};
    size_t blen = body ? strlen(body) : 0;
    bool eof = false, done = false, no_body;
    int rc = 0, hr = 0, dr = 0;

    *status = -1;
    no_body = strcmp(method, "HEAD") == 0;
    if (fd < 0)
        return fd;
    if (kedge_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path,
                         host) < 0 ||
        (body && kedge_buf_printf(&req, "Content-Type: application/json\r\n") < 0) ||
        ((body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) &&
         kedge_buf_printf(&req, "Content-Length: %zu\r\n", blen) < 0) ||
        kedge_buf_puts(&req, "\r\n") < 0 || (blen && kedge_buf_append(&req, body, blen) < 0)) {
        rc = -ENOMEM;
        goto out;
    }
    rc = send_all(fd, req.data, req.len, deadline);
    if (rc < 0)
        goto out;
    while (!done) {
        char chunk[16384];
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t n = 0;

        if (!eof) {
            int pr = poll(&pf, 1, kt_remaining_ms(deadline));
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr <= 0) {
                rc = -ETIMEDOUT;
                goto out;
            }
            n = recv(fd, chunk, sizeof(chunk), 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = -errno;
                goto out;
            }
            if (n == 0)
                eof = true;
            else if (kedge_buf_append(&in, chunk, (size_t)n) < 0) {
                rc = -ENOMEM;
                goto out;
            }
        }
        if (hr == 0) {
            hr = parse_head(in.data ? in.data : "", in.len, &h);
            if (hr < 0 || (hr == 0 && eof)) {
                rc = -EPROTO;
                goto out;
            }
            if (hr == 0)
                continue;
            *status = h.status;
            /* 1xx (not asked for) would need another head; 204 and 304 have no body */
            if (no_body || h.status == 204 || h.status == 304)
                break;
        }
        if (h.chunked) {
            dr = dechunk(in.data + h.len, in.len - h.len, &dec);
            if (dr < 0 || (dr == 0 && eof)) {
                rc = dr < 0 ? dr : -EPROTO;
                goto out;
            }
            done = dr == 1;
        } else if (h.content_length >= 0) {
            if (in.len - h.len >= (size_t)h.content_length)
                done = true;
            else if (eof) {
                rc = -EPROTO;
                goto out;
            }
        } else {
            done = eof; /* the body ends with the connection */
        }
    }
    if (resp && hr == 1 && !(no_body || h.status == 204 || h.status == 304)) {
        if (h.chunked)
            rc = kedge_buf_append(resp, dec.data ? dec.data : "", dec.len);
        else
            rc =
                kedge_buf_append(resp, in.data + h.len,
                                 h.content_length >= 0 ? (size_t)h.content_length : in.len - h.len);
    }
out:
    (void)close(fd);
    kedge_buf_cleanup(&in);
    kedge_buf_cleanup(&req);
    kedge_buf_cleanup(&dec);
    return rc;
}
