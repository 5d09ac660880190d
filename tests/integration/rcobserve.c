/* rcobserve.c: the small observers of rcsupport.h that need no process: plain HTTP on
 * 127.0.0.1, JSON paths, base64url, a free port, a sleep for polling loops. */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "kedge/alloc.h"
#include "kedge/util.h"
#include "rcsupport.h"
#include "testsupport.h"

#define PAGE_MS 30000

void rc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int rc_free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    ck_assert_int_ge(fd, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

char *rc_http_get(int port, const char *path)
{
    struct sockaddr_in a = {0};
    struct timeval tv = {2, 0};
    char req[512], buf[16384], *body;
    size_t got = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return NULL;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || write(fd, req, strlen(req)) < 0) {
        close(fd);
        return NULL;
    }
    while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    buf[got] = '\0';
    body = strstr(buf, "\r\n\r\n");
    return body && strstr(buf, " 200 ") ? strdup(body + 4) : NULL;
}

char *rc_wait_page(int port, const char *path, const char *want, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + timeout_ms;
    char *got;

    while (!(got = rc_http_get(port, path)) || !strstr(got, want)) {
        ck_assert_msg(kt_now_ms() < deadline, "no page with \"%s\" at 127.0.0.1:%d%s (got %s)",
                      want, port, path, got ? got : "nothing");
        free(got);
        rc_sleep_ms(100);
    }
    return got;
}

char *rc_expect_page(int port, const char *path, const char *exact)
{
    int64_t deadline = kt_now_ms() + PAGE_MS;
    char *got;

    while (!(got = rc_http_get(port, path))) {
        ck_assert_msg(kt_now_ms() < deadline, "nothing served at 127.0.0.1:%d%s", port, path);
        rc_sleep_ms(100);
    }
    ck_assert_msg(!strcmp(got, exact), "127.0.0.1:%d%s is \"%s\", want \"%s\"", port, path, got,
                  exact);
    return got;
}

char *rc_base64url_decode(const char *in, size_t len, size_t *out_len)
{
    char *std = malloc(len + 4), *dec = NULL, *copy;
    size_t i;

    if (!std)
        return NULL;
    for (i = 0; i < len; i++)
        std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    while (i % 4)
        std[i++] = '=';
    if (kedge_base64_decode(std, i, &dec, out_len) != 0) {
        free(std);
        return NULL;
    }
    free(std);
    copy = malloc(*out_len + 1); /* the caller frees with free() */
    if (copy) {
        memcpy(copy, dec, *out_len);
        copy[*out_len] = '\0';
    }
    kedge_free(dec);
    return copy;
}

const struct kedge_jval *rc_path(const struct kedge_jval *v, const char *dotted)
{
    while (v && *dotted) {
        size_t n = strcspn(dotted, ".");
        v = kedge_json_get_exact(v, dotted, n);
        dotted += n + (dotted[n] == '.');
    }
    return v;
}

const char *rc_str(const struct kedge_jval *obj, const char *key)
{
    const struct kedge_jval *v = obj ? kedge_json_get_exact(obj, key, strlen(key)) : NULL;

    return v && v->type == KEDGE_JSTR ? v->str : "";
}

const struct kedge_jval *rc_condition(const struct kedge_jval *obj, const char *type)
{
    const struct kedge_jval *c = rc_path(obj, "status.conditions");

    for (c = c ? c->child : NULL; c; c = c->next)
        if (!strcmp(rc_str(c, "type"), type))
            return c;
    return NULL;
}
