/* A stand-in API server for rc_interop.py: real kubectl (and python3-websocket) against the
 * remote command codec over TCP. It answers the discovery kubectl asks for and one pod, and
 * serves .../pods/p/exec and .../attach through rc_accept as kubelet would behind
 * kube-apiserver: the query's stdin/stdout/stderr/tty "true" become input/output/error/tty "1"
 * as kube-apiserver's streamParams writes them for a kubelet. The "process" is a table of fake
 * commands: echo ARGS...   ARGS on stdout          exit N   "bye" on stderr, exit code N cat stdin
 * back on stdout     big N    N bytes on stdout fail           the runtime cannot run it (rc_fail)
 *   size           with a TTY: waits for the first terminal size, prints "size WxH", exit 0
 * attach is cat. One line per upgraded session on stderr: "session <negotiated protocol>".
 * Prints the port, serves until stdin closes.
 *
 * usage: rc_interop_server
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kedge/buf.h"
#include "remotecommand.h"

#define MAX_CONNS 32

struct conn {
    int fd;
    struct kedge_buf in;
    struct rc *rc;
    bool done, logged, draining;
    const char *hk[32], *hv[32];
    size_t nh;
    char *joined[32]; /* header values joined from repeated lines, owned */
    bool is_cat, is_size;
};

static void write_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the client went away: the session ends on its next read */
        b += w;
        n -= (size_t)w;
    }
}

static void on_send(void *ctx, const char *b, size_t n)
{
    struct conn *c = ctx;

    if (!c->logged && n > 12 && !strncmp(b, "HTTP/1.1 101", 12)) {
        const char *p = strcasestr(b, "Sec-WebSocket-Protocol: ");
        const char *q = strcasestr(b, "X-Stream-Protocol-Version: ");
        const char *v = p ? p + 24 : q ? q + 27 : "";

        fprintf(stderr, "session %s %.*s\n",
                p   ? "websocket"
                : q ? "spdy"
                    : "websocket",
                (int)strcspn(v, "\r"), v);
        c->logged = true;
    }
    write_all(c->fd, b, n);
}

static void end_with(struct conn *c, int code)
{
    (void)rc_exit(c->rc, code);
    c->done = true;
}

static void on_ready(void *ctx, const struct rc_options *o)
{
    struct conn *c = ctx;
    const char *cmd = o->argc ? o->argv[0] : "cat";
    size_t i;

    if (!strcmp(cmd, "echo")) {
        for (i = 1; i < o->argc; i++) {
            (void)rc_output(c->rc, RT_STDOUT, o->argv[i], strlen(o->argv[i]));
            (void)rc_output(c->rc, RT_STDOUT, i + 1 < o->argc ? " " : "\n", 1);
        }
        end_with(c, 0);
    } else if (!strcmp(cmd, "exit")) {
        (void)rc_output(c->rc, RT_STDERR, "bye\n", 4);
        end_with(c, o->argc > 1 ? atoi(o->argv[1]) : 0);
    } else if (!strcmp(cmd, "big")) {
        static char chunk[65536];
        long left = o->argc > 1 ? atol(o->argv[1]) : 0;

        for (i = 0; i < sizeof(chunk); i++)
            chunk[i] = (char)('a' + i % 26);
        while (left > 0) {
            size_t k = left < (long)sizeof(chunk) ? (size_t)left : sizeof(chunk);

            (void)rc_output(c->rc, RT_STDOUT, chunk, k);
            left -= (long)k;
        }
        end_with(c, 0);
    } else if (!strcmp(cmd, "size") && o->tty) {
        c->is_size = true;
    } else if (!strcmp(cmd, "fail")) {
        (void)rc_fail(c->rc, "no such process");
        c->done = true;
    } else {
        c->is_cat = true;
        if (!o->in)
            end_with(c, 0);
    }
}

static void on_stdin(void *ctx, const char *b, size_t n)
{
    struct conn *c = ctx;

    if (c->is_cat)
        (void)rc_output(c->rc, RT_STDOUT, b, n);
}

static void on_stdin_close(void *ctx)
{
    end_with(ctx, 0);
}

static void on_resize(void *ctx, unsigned w, unsigned h)
{
    struct conn *c = ctx;
    char line[64];

    fprintf(stderr, "resize %ux%u\n", w, h);
    if (!c->is_size || c->done)
        return;
    snprintf(line, sizeof(line), "size %ux%u\r\n", w, h);
    (void)rc_output(c->rc, RT_STDOUT, line, strlen(line));
    end_with(c, 0);
}

static void on_closed(void *ctx, const char *why)
{
    struct conn *c = ctx;

    fprintf(stderr, "closed: %s\n", why);
    c->done = true;
}

static const struct rc_fns fns = {on_send,        on_ready,  on_stdin,
                                  on_stdin_close, on_resize, on_closed};

static const char *get_header(void *ctx, const char *name)
{
    struct conn *c = ctx;
    size_t i;

    for (i = 0; i < c->nh; i++)
        if (!strcasecmp(c->hk[i], name))
            return c->hv[i];
    return NULL;
}

static void reply(struct conn *c, int status, const char *body)
{
    char head[256];

    snprintf(head, sizeof(head),
             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             status, status == 200 ? "OK" : "Not Found", strlen(body));
    write_all(c->fd, head, strlen(head));
    write_all(c->fd, body, strlen(body));
}

static const char api[] = "{\"kind\":\"APIVersions\",\"versions\":[\"v1\"],"
                          "\"serverAddressByClientCIDRs\":[{\"clientCIDR\":\"0.0.0.0/0\","
                          "\"serverAddress\":\"127.0.0.1\"}]}";
static const char apis[] = "{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":[]}";
static const char v1[] =
    "{\"kind\":\"APIResourceList\",\"groupVersion\":\"v1\",\"resources\":["
    "{\"name\":\"pods\",\"singularName\":\"pod\",\"namespaced\":true,\"kind\":\"Pod\","
    "\"verbs\":[\"get\",\"list\"],\"shortNames\":[\"po\"]},"
    "{\"name\":\"pods/exec\",\"singularName\":\"\",\"namespaced\":true,\"kind\":"
    "\"PodExecOptions\",\"verbs\":[\"create\",\"get\"]},"
    "{\"name\":\"pods/attach\",\"singularName\":\"\",\"namespaced\":true,\"kind\":"
    "\"PodAttachOptions\",\"verbs\":[\"create\",\"get\"]}]}";
static const char pod[] =
    "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"p\",\"namespace\":"
    "\"default\",\"uid\":\"u1\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\","
    "\"stdin\":true}]},\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"c\","
    "\"ready\":true,\"restartCount\":0,\"image\":\"x\",\"imageID\":\"\",\"state\":{\"running\":"
    "{}}}]}}";
static const char notfound[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                               "\"reason\":\"NotFound\",\"code\":404}";

/* kube-apiserver's streamParams names the flags as kubelet reads them (api.ExecStdinParam ...). */
static const char *kubelet_name(const char *k, size_t n)
{
    static const char *const map[][2] = {
        {"stdin", "input"}, {"stdout", "output"}, {"stderr", "error"}, {"tty", "tty"}};
    size_t i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i][0]) == n && !strncmp(k, map[i][0], n))
            return map[i][1];
    return NULL;
}

/* kube-apiserver's streamParams: the flags as "1" on the URL it sends a kubelet. */
static void kubelet_query(const char *q, char *out, size_t n)
{
    size_t o = 0;

    while (*q && o + 8 < n) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);

        if (eq && (size_t)(q + len - eq - 1) == 4 && !strncmp(eq + 1, "true", 4)) {
            const char *k = kubelet_name(q, (size_t)(eq - q));

            o += (size_t)snprintf(out + o, n - o, "%s%.*s=1", o ? "&" : "",
                                  k ? (int)strlen(k) : (int)(eq - q), k ? k : q);
        } else {
            o += (size_t)snprintf(out + o, n - o, "%s%.*s", o ? "&" : "", (int)len, q);
        }
        q += len + (q[len] == '&');
    }
    out[o < n ? o : n - 1] = '\0';
}

/* One request head in c->in (NUL-terminated by the buffer): route it. 0, or -1 to close. */
static int request(struct conn *c, size_t head)
{
    char *line = c->in.data, *p, *method, *target, *query, *save = NULL;
    char kq[4096];
    bool attach;

    line[head - 2] = '\0';
    method = strtok_r(line, " ", &save);
    target = strtok_r(NULL, " ", &save);
    if (!method || !target)
        return -1;
    p = target + strlen(target) + 1;
    p += strcspn(p, "\n") + 1;
    for (c->nh = 0; c->nh < 32; c->nh++) {
        free(c->joined[c->nh]);
        c->joined[c->nh] = NULL;
    }
    c->nh = 0;
    while (*p && c->nh < 32) {
        char *e = strstr(p, "\r\n"), *colon;

        if (!e)
            break;
        *e = '\0';
        colon = strchr(p, ':');
        if (colon) {
            size_t j;

            *colon = '\0';
            for (j = 0; j < c->nh && strcasecmp(c->hk[j], p); j++)
                ;
            colon += 1 + strspn(colon + 1, " ");
            if (j < c->nh) { /* a repeated field: joined with ", " (X-Stream-Protocol-Version) */
                size_t a = strlen(c->hv[j]), b = strlen(colon);
                char *joined = malloc(a + b + 3);

                if (!joined)
                    return -1;
                memcpy(joined, c->hv[j], a);
                memcpy(joined + a, ", ", 2);
                memcpy(joined + a + 2, colon, b + 1);
                free(c->joined[j]);
                c->joined[j] = joined;
                c->hv[j] = joined;
            } else {
                c->hk[c->nh] = p;
                c->hv[c->nh++] = colon;
            }
        }
        p = e + 2;
    }
    query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    if (!strcmp(target, "/api"))
        reply(c, 200, api);
    else if (!strcmp(target, "/apis"))
        reply(c, 200, apis);
    else if (!strcmp(target, "/api/v1"))
        reply(c, 200, v1);
    else if (!strcmp(target, "/api/v1/namespaces/default/pods/p"))
        reply(c, 200, pod);
    else if ((attach = !strcmp(target, "/api/v1/namespaces/default/pods/p/attach")) ||
             !strcmp(target, "/api/v1/namespaces/default/pods/p/exec")) {
        struct rc_upgrade u = {method, kq, get_header, c, attach};

        kubelet_query(query ? query : "", kq, sizeof(kq));
        if (rc_accept(&u, &fns, c, &c->rc) < 0)
            return -1;
        return 1;
    } else {
        reply(c, 404, notfound);
    }
    return 0;
}

/* Bytes from the client: HTTP requests until an upgrade, then the session's. 0 or -1: close. */
static int readable(struct conn *c)
{
    char b[65536];
    ssize_t n = read(c->fd, b, sizeof(b));

    if (n <= 0)
        return -1;
    if (c->draining) /* our side is shut: read to the client's end, so no RST eats our last bytes */
        return 0;
    if (c->rc)
        return rc_input(c->rc, b, (size_t)n) < 0 && !c->done ? -1 : 0;
    if (kedge_buf_append(&c->in, b, (size_t)n) < 0)
        return -1;
    for (;;) {
        char *e = strstr(c->in.data, "\r\n\r\n");
        size_t head, rest;
        int rc;

        if (!e)
            return 0;
        head = (size_t)(e - c->in.data) + 4;
        rest = c->in.len - head;
        rc = request(c, head);
        if (rc < 0)
            return -1;
        if (rc == 1) { /* upgraded: what followed the head is the session's */
            int r2 = rest ? rc_input(c->rc, c->in.data + head, rest) : 0;

            kedge_buf_reset(&c->in);
            return r2 < 0 && !c->done ? -1 : 0;
        }
        memmove(c->in.data, c->in.data + head, rest + 1);
        c->in.len = rest;
    }
}

static void drop(struct conn *c)
{
    size_t i;

    for (i = 0; i < 32; i++)
        free(c->joined[i]);
    rc_free(c->rc);
    kedge_buf_cleanup(&c->in);
    (void)shutdown(c->fd, SHUT_WR);
    (void)close(c->fd);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

int main(void)
{
    static struct conn conns[MAX_CONNS];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int ls = socket(AF_INET, SOCK_STREAM, 0), i;

    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 16) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) < 0) {
        perror("listen");
        return 1;
    }
    for (i = 0; i < MAX_CONNS; i++)
        conns[i].fd = -1;
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        struct pollfd pf[MAX_CONNS + 2];
        int map[MAX_CONNS + 2], n = 0;

        pf[n] = (struct pollfd){.fd = 0, .events = POLLIN};
        map[n++] = -1;
        pf[n] = (struct pollfd){.fd = ls, .events = POLLIN};
        map[n++] = -2;
        for (i = 0; i < MAX_CONNS; i++) {
            if (conns[i].fd < 0)
                continue;
            pf[n] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
            map[n++] = i;
        }
        if (poll(pf, (nfds_t)n, -1) < 0 && errno != EINTR)
            return 1;
        for (i = 0; i < n; i++) {
            if (!pf[i].revents)
                continue;
            if (map[i] == -1) {
                char x;

                if (read(0, &x, 1) <= 0)
                    return 0;
            } else if (map[i] == -2) {
                int fd = accept(ls, NULL, NULL), j;

                for (j = 0; fd >= 0 && j < MAX_CONNS && conns[j].fd >= 0; j++)
                    ;
                if (fd >= 0 && j < MAX_CONNS)
                    conns[j].fd = fd;
                else if (fd >= 0)
                    (void)close(fd);
            } else if (readable(&conns[map[i]]) < 0) {
                drop(&conns[map[i]]);
            } else if (conns[map[i]].done && !conns[map[i]].draining) {
                conns[map[i]].draining = true;
                (void)shutdown(conns[map[i]].fd, SHUT_WR);
            }
        }
    }
}
