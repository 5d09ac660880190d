/* grpc.h's connection on a plain descriptor with poll() (grpc_fd.h): the test mapper, tools, the
 * benchmark. Sockets are non-blocking; a turn reads what is there and writes what it can.
 */
#include "grpc_fd.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kedge/alloc.h"

#define READ_CHUNK 16384
#define READS_PER_TURN 16

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(sa->sun_path))
        return -ENAMETOOLONG;
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, n + 1);
    return 0;
}

int grpc_fd_listen_unix(const char *path, mode_t mode)
{
    struct sockaddr_un sa;
    struct stat sb;
    int fd, rv = unix_addr(path, &sa);

    if (rv < 0)
        return rv;
    if (lstat(path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode))
            return -EEXIST;
        if (unlink(path) < 0)
            return -errno;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* chmod before listen: no peer can connect before the mode is right */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, mode) < 0 ||
        listen(fd, 64) < 0) {
        rv = -errno;
        close(fd);
        return rv;
    }
    return fd;
}

int grpc_fd_connect_unix(const char *path)
{
    struct sockaddr_un sa;
    int fd, rv = unix_addr(path, &sa);

    if (rv < 0)
        return rv;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* a unix connect completes or fails at once (EAGAIN: the backlog is full) */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rv = -errno;
        close(fd);
        return rv;
    }
    return fd;
}

/* Write what waits until the socket is full. 0 or -errno. */
static int write_out(struct grpc_conn *c, int fd)
{
    const uint8_t *out;
    size_t n;

    while ((n = grpc_conn_output(c, &out)) > 0) {
        ssize_t w = send(fd, out, n, MSG_NOSIGNAL);

        if (w < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        grpc_conn_consumed(c, (size_t)w);
    }
    return 0;
}

/* Read what the socket holds into c. 0, or < 0: the peer closed, an I/O or HTTP/2 error. */
static int read_in(struct grpc_conn *c, int fd)
{
    uint8_t buf[READ_CHUNK];
    int i, rv;

    for (i = 0; i < READS_PER_TURN && grpc_conn_want_read(c); i++) {
        ssize_t r = read(fd, buf, sizeof(buf));

        if (r == 0)
            return -ECONNRESET;
        if (r < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        rv = grpc_conn_recv(c, buf, (size_t)r);
        if (rv < 0) {
            (void)write_out(c, fd); /* the GOAWAY, if it goes */
            return rv;
        }
        if ((size_t)r < sizeof(buf))
            break; /* drained */
    }
    return 0;
}

int grpc_fd_pump(struct grpc_conn *c, int fd, int timeout_ms)
{
    const uint8_t *out;
    struct pollfd p = {fd, 0, 0};
    int rv;

    if (grpc_conn_output(c, &out) > 0)
        p.events |= POLLOUT;
    if (grpc_conn_want_read(c))
        p.events |= POLLIN;
    if (grpc_conn_done(c))
        return -EPIPE;
    rv = poll(&p, 1, timeout_ms);
    if (rv < 0)
        return errno == EINTR ? 0 : -errno;
    if ((p.revents & (POLLHUP | POLLERR)) && !(p.events & POLLIN))
        return -ECONNRESET; /* nothing will be read to see it: poll would only repeat it */
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        rv = read_in(c, fd);
        if (rv < 0)
            return rv;
    }
    rv = write_out(c, fd);
    if (rv < 0)
        return rv;
    return grpc_conn_done(c) ? -EPIPE : 0;
}

/* ---- one call on its own connection ------------------------------------------------------- */

struct unary {
    const ProtobufCMessageDescriptor *desc;
    bool answered;
    int code;
    char *message;
    ProtobufCMessage *resp;
};

static void unary_response(void *ctx, struct grpc_conn *c, void *tag, int code, const char *message,
                           const uint8_t *msg, size_t len)
{
    struct unary *u = ctx;

    (void)c;
    (void)tag;
    if (u->answered)
        return;
    u->answered = true;
    u->code = code;
    if (code == GRPC_OK) {
        u->resp = protobuf_c_message_unpack(u->desc, NULL, len, msg);
        if (u->resp)
            return;
        u->code = GRPC_INTERNAL;
        message = "cannot decode the response message";
    }
    u->message = kedge_strdup(message ? message : "");
}

static const struct grpc_conn_ops unary_ops = {NULL, NULL, unary_response};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int grpc_fd_unary(const char *sock, const char *path, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *desc, int timeout_ms, ProtobufCMessage **resp,
                  int *code, char **message)
{
    struct unary u = {desc, false, 0, NULL, NULL};
    struct grpc_conn *c;
    long long deadline = now_ms() + timeout_ms;
    int fd, rv;

    *resp = NULL;
    *message = NULL;
    fd = grpc_fd_connect_unix(sock);
    if (fd < 0)
        return fd;
    rv = grpc_conn_new(false, &unary_ops, &u, NULL, &c);
    if (rv == 0)
        rv = grpc_call(c, path, req, &u);
    while (rv == 0 && !u.answered) {
        long long left = deadline - now_ms();

        if (left <= 0) {
            rv = -ETIMEDOUT;
            break;
        }
        if (grpc_fd_pump(c, fd, (int)left) < 0)
            break; /* the connection ended: freeing it answers the call UNAVAILABLE */
    }
    if (rv == -ETIMEDOUT)
        u.answered = true; /* no answer: freeing must not make one up */
    grpc_conn_free(c);
    close(fd);
    if (rv < 0 || (u.code != GRPC_OK && !u.message)) {
        if (u.resp)
            protobuf_c_message_free_unpacked(u.resp, NULL);
        return rv < 0 ? rv : -ENOMEM;
    }
    *code = u.code;
    *resp = u.resp;
    *message = u.message;
    return 0;
}
