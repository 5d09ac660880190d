#define _GNU_SOURCE /* nftw's FTW_ flags, close_range */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testsupport.h"

void kt_say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vfprintf(stderr, fmt, ap);
    va_end(ap);
}

int64_t kt_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kt_remaining_ms(int64_t deadline)
{
    int64_t r = deadline - kt_now_ms();
    return r < 0 ? 0 : r > INT_MAX ? INT_MAX : (int)r;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int kt_rmtree(const char *path, bool one_filesystem)
{
    int flags = FTW_DEPTH | FTW_PHYS | (one_filesystem ? FTW_MOUNT : 0);

    if (nftw(path, rm_entry, 16, flags) < 0)
        return errno == ENOENT ? 0 : -errno;
    return 0;
}

void kt_copy_to_stderr(const char *path, const char *what)
{
    char *text = kt_read_from(path, 0);

    if (text && *text)
        (void)fprintf(stderr, "----- %s (%s) -----\n%s%s----- end of %s -----\n", what, path, text,
                      text[strlen(text) - 1] == '\n' ? "" : "\n", what);
    free(text);
}

int kt_free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

    if (fd < 0)
        return -errno;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        rc = -errno;
    else
        rc = ntohs(a.sin_port);
    (void)close(fd);
    return rc;
}

char *kt_http_get(int port, const char *path)
{
    struct sockaddr_in a = {0};
    struct timeval tv = {2, 0};
    char req[512], buf[16384], *body;
    size_t got = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return NULL;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || write(fd, req, strlen(req)) < 0) {
        (void)close(fd);
        return NULL;
    }
    while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    (void)close(fd);
    buf[got] = '\0';
    body = strstr(buf, "\r\n\r\n");
    return body && strstr(buf, " 200 ") ? strdup(body + 4) : NULL;
}

char **kt_env_with(const char *const *extra)
{
    size_t n = 0, k = 0, i, j = 0, x;
    char **env;

    while (environ[n])
        n++;
    while (extra && extra[k])
        k++;
    env = calloc(n + k + 1, sizeof(*env));
    if (!env)
        return NULL;
    for (i = 0; i < n; i++) {
        bool replaced = false;
        for (x = 0; x < k && !replaced; x++) {
            const char *eq = strchr(extra[x], '=');
            size_t name_len = eq ? (size_t)(eq - extra[x]) + 1 : strlen(extra[x]);
            replaced = !strncmp(environ[i], extra[x], name_len);
        }
        if (!replaced)
            env[j++] = environ[i];
    }
    for (x = 0; x < k; x++)
        env[j++] = (char *)extra[x];
    return env;
}

void kt_close_from(int lowest)
{
    if (close_range((unsigned)lowest, ~0U, 0) == 0)
        return;
    for (int fd = lowest; fd < 4096; fd++)
        (void)close(fd);
}

char *kt_path_join(const char *dir, const char *name)
{
    char *p = NULL;

    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

long kt_file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

char *kt_read_from(const char *path, long offset)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), saved;

    if (fd < 0)
        return NULL;
    if (offset > 0 && lseek(fd, (off_t)offset, SEEK_SET) < 0)
        goto fail;
    for (;;) {
        ssize_t n;

        if (cap - len < 4096) {
            char *nb = realloc(buf, cap + 65536);
            if (!nb)
                goto fail;
            buf = nb;
            cap += 65536;
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    (void)close(fd);
    return buf;
fail:
    saved = errno;
    free(buf);
    (void)close(fd);
    errno = saved;
    return NULL;
}

bool kt_file_contains(const char *path, long offset, const char *needle)
{
    char *text = kt_read_from(path, offset);
    bool found = text && strstr(text, needle);

    free(text);
    return found;
}

int kt_append_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode);
    size_t len = strlen(text), off = 0;
    int rc = 0;

    if (fd < 0)
        return -errno;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)n;
    }
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}
