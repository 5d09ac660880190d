/* rcobserve.c: the small observers of rcsupport.h that need no process: pages on 127.0.0.1
 * (kt_http_get), JSON paths, base64url, a free port, a sleep for polling loops. */
#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    int port = kt_free_port();

    ck_assert_msg(port > 0, "no free port: %d", port);
    return port;
}

char *rc_wait_page(int port, const char *path, const char *want, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + timeout_ms;
    char *got;

    while (!(got = kt_http_get(port, path)) || !strstr(got, want)) {
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

    while (!(got = kt_http_get(port, path))) {
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
