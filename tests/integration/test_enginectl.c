/* enginectl (enginectl.h), the test-side container engine, against itself.
 *
 * "http": enginectl_http against a fake engine on a unix socket (a thread here) that answers
 * from a table, each reply written in small pieces: Content-Length, chunked (extensions,
 * trailers, upper-case hex), 204, a body ended by the close, and broken chunk framing. These
 * run everywhere.
 *
 * "engine": a real engine (scripts/engine.sh: podman's Docker API): start it, list (empty),
 * create, start, inspect, list by label, read the logs, remove one container, then stop it and
 * check that the service, the container's process and every mount under its directory are gone.
 * Skipped (with a line saying why) when KEDGE_TEST_ENGINE=none or podman and friends are not
 * installed (enginectl_available).
 */
#define _GNU_SOURCE

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "enginectl.h"
#include "harness.h"
#include "proc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/json.h"

#define LABEL_KEY "io.kubernetes.pod.uid"

/* ---- a fake engine ------------------------------------------------------------------------ */

struct fake {
    char dir[64];
    char sock[80];
    int listen_fd;
    const char *reply; /* written in pieces of `piece` bytes, then the connection closes */
    size_t piece;
    char request[4096]; /* what the client sent (head and body) */
    size_t request_len;
    pthread_t thread;
};

static bool request_complete(const char *req, size_t len)
{
    const char *end = memmem(req, len, "\r\n\r\n", 4), *cl;
    long body = 0;

    if (!end)
        return false;
    cl = strcasestr(req, "Content-Length:");
    if (cl && cl < end)
        body = strtol(cl + 15, NULL, 10);
    return len >= (size_t)(end - req) + 4 + (size_t)body;
}

static void *fake_serve(void *arg)
{
    struct fake *f = arg;
    size_t off = 0, total = strlen(f->reply);
    int fd = accept(f->listen_fd, NULL, NULL);

    if (fd < 0)
        return NULL;
    while (!request_complete(f->request, f->request_len) &&
           f->request_len < sizeof(f->request) - 1) {
        ssize_t n = read(fd, f->request + f->request_len, sizeof(f->request) - 1 - f->request_len);
        if (n <= 0)
            break;
        f->request_len += (size_t)n;
        f->request[f->request_len] = '\0';
    }
    while (off < total) {
        size_t n = total - off < f->piece ? total - off : f->piece;
        struct timespec ts = {0, 1000000}; /* 1 ms: let the client see each piece alone */

        if (send(fd, f->reply + off, n, MSG_NOSIGNAL) != (ssize_t)n) /* the client may be gone */
            break;
        off += n;
        (void)nanosleep(&ts, NULL);
    }
    (void)close(fd);
    return NULL;
}

static void fake_start(struct fake *f, const char *reply, size_t piece)
{
    struct sockaddr_un sa;

    memset(f, 0, sizeof(*f));
    (void)snprintf(f->dir, sizeof(f->dir), "/tmp/kedge-fake-engine-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    (void)snprintf(f->sock, sizeof(f->sock), "%s/s.sock", f->dir);
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(f->listen_fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    (void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
    ck_assert_int_eq(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(f->listen_fd, 4), 0);
    f->reply = reply;
    f->piece = piece;
    ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_serve, f), 0);
}

static void fake_stop(struct fake *f)
{
    (void)pthread_join(f->thread, NULL);
    (void)close(f->listen_fd);
    (void)unlink(f->sock);
    (void)rmdir(f->dir);
}

struct http_case {
    const char *reply;
    size_t piece;
    int rc;
    int status;
    const char *body; /* NULL: not checked (rc != 0) */
};

static const struct http_case http_cases[] = {
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 3, 0, 200, "hello"},
    {"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5\r\nhello\r\n6;name=value\r\n world\r\n0\r\n\r\n",
     1, 0, 200, "hello world"},
    {"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nA\r\n0123456789\r\n3\r\nabc\r\n"
     "0\r\nX-Trailer: 1\r\n\r\n",
     7, 0, 200, "0123456789abc"},
    {"HTTP/1.1 204 No Content\r\nApi-Version: 1.41\r\n\r\n", 4, 0, 204, ""},
    {"HTTP/1.1 404 Not Found\r\nContent-Length: 13\r\n\r\n{\"message\":1}", 100, 0, 404,
     "{\"message\":1}"},
    {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nended by the close", 5, 0, 200,
     "ended by the close"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 64, -EPROTO,
     200, NULL},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 64, -EPROTO, 200,
     NULL},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 2, -EPROTO, 200, NULL},
    {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 64, -EPROTO, 200, NULL},
    {"SSH-2.0-OpenSSH\r\n\r\n", 64, -EPROTO, -1, NULL},
};

START_TEST(http_replies)
{
    const struct http_case *c = &http_cases[_i];
    struct kedge_buf resp = KEDGE_BUF_INIT;
    struct enginectl *e = NULL;
    struct fake f;
    int status = 0, rc;

    fake_start(&f, c->reply, c->piece);
    ck_assert_int_eq(enginectl_attach(f.sock, &e), 0);
    rc = enginectl_http(e, "GET", ENGINECTL_API "/containers/x/json", NULL, &status, &resp);
    fake_stop(&f);
    ck_assert_msg(rc == c->rc, "case %d: rc %s, want %s", _i, kedge_errname(rc),
                  kedge_errname(c->rc));
    ck_assert_int_eq(status, c->status);
    if (c->body)
        ck_assert_str_eq(resp.data ? resp.data : "", c->body);
    ck_assert_str_eq(f.request, "GET /v1.41/containers/x/json HTTP/1.1\r\nHost: d\r\n"
                                "Connection: close\r\n\r\n");
    ck_assert_int_eq(enginectl_stop(e), -ECHILD); /* attached: nothing to stop */
    enginectl_free(e);
    kedge_buf_cleanup(&resp);
}
END_TEST

/* A POST with a JSON body, and one without: the body, its type and length go out. */
START_TEST(http_post)
{
    struct kedge_buf resp = KEDGE_BUF_INIT;
    struct enginectl *e = NULL;
    struct fake f;
    int status = 0;

    fake_start(&f, "HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\n{\"Id\":\"ab\"}", 64);
    ck_assert_int_eq(enginectl_attach(f.sock, &e), 0);
    ck_assert_int_eq(
        enginectl_http(e, "POST", "/v1.41/containers/create?name=a", "{\"x\":1}", &status, &resp),
        0);
    fake_stop(&f);
    ck_assert_int_eq(status, 201);
    ck_assert_str_eq(resp.data, "{\"Id\":\"ab\"}");
    ck_assert_str_eq(f.request, "POST /v1.41/containers/create?name=a HTTP/1.1\r\nHost: d\r\n"
                                "Connection: close\r\nContent-Type: application/json\r\n"
                                "Content-Length: 7\r\n\r\n{\"x\":1}");

    enginectl_free(e);
    fake_start(&f, "HTTP/1.1 204 No Content\r\n\r\n", 64);
    ck_assert_int_eq(enginectl_attach(f.sock, &e), 0);
    ck_assert_int_eq(enginectl_http(e, "POST", "/v1.41/containers/a/start", NULL, &status, NULL),
                     0);
    fake_stop(&f);
    ck_assert_int_eq(status, 204);
    ck_assert_str_eq(f.request, "POST /v1.41/containers/a/start HTTP/1.1\r\nHost: d\r\n"
                                "Connection: close\r\nContent-Length: 0\r\n\r\n");
    enginectl_free(e);
    kedge_buf_cleanup(&resp);
}
END_TEST

/* enginectl_list sends the label filter as the Docker API wants it, percent-encoded. */
START_TEST(list_filter_encoding)
{
    struct kedge_jdoc *doc = NULL;
    struct enginectl *e = NULL;
    struct fake f;

    fake_start(&f, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 64);
    ck_assert_int_eq(enginectl_attach(f.sock, &e), 0);
    ck_assert_int_eq(enginectl_list(e, LABEL_KEY "=abc", &doc), 0);
    fake_stop(&f);
    ck_assert_int_eq(kedge_jdoc_root(doc)->type, KEDGE_JARR);
    ck_assert_str_eq(f.request, "GET /v1.41/containers/json?all=1&filters="
                                "%7B%22label%22%3A%5B%22io.kubernetes.pod.uid%3Dabc%22%5D%7D "
                                "HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
    kedge_jdoc_free(doc);
    enginectl_free(e);
}
END_TEST

START_TEST(no_engine_on_socket)
{
    struct enginectl *e = NULL;
    int status = 0;

    ck_assert_int_eq(enginectl_attach("/nonexistent/kedge/engine.sock", &e), 0);
    ck_assert_int_eq(enginectl_http(e, "GET", "/_ping", NULL, &status, NULL), -ENOENT);
    ck_assert_int_eq(status, -1);
    enginectl_free(e);
}
END_TEST

/* ---- a real engine ----------------------------------------------------------------------------
 */

static struct enginectl *engine;

static void engine_setup(void)
{
    int rc = enginectl_start(&engine);

    ck_assert_msg(rc == 0, "enginectl_start: %s", kedge_errname(rc));
}

static void engine_teardown(void)
{
    enginectl_free(engine); /* stops it if a failed test left it running */
    engine = NULL;
}

static const struct kedge_jval *member(const struct kedge_jval *v, const char *name)
{
    const struct kedge_jval *m = kedge_json_get(v, name);

    ck_assert_msg(m != NULL, "no member %s", name);
    return m;
}

static const char *str_member(const struct kedge_jval *v, const char *name)
{
    const struct kedge_jval *m = member(v, name);

    ck_assert_int_eq(m->type, KEDGE_JSTR);
    return m->str;
}

static size_t list_count(const char *filter)
{
    struct kedge_jdoc *doc = NULL;
    size_t n;

    ck_assert_int_eq(enginectl_list(engine, filter, &doc), 0);
    ck_assert_int_eq(kedge_jdoc_root(doc)->type, KEDGE_JARR);
    n = kedge_jdoc_root(doc)->n;
    kedge_jdoc_free(doc);
    return n;
}

/* Whether any process's command line is exactly `argv` (NUL-separated, as in /proc). */
static bool process_with_cmdline(const char *argv, size_t len)
{
    char path[300], buf[256];
    bool found = false;
    DIR *d = opendir("/proc");
    struct dirent *de;

    ck_assert_ptr_nonnull(d);
    while (!found && (de = readdir(d))) {
        FILE *f;
        size_t n;

        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        (void)snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        n = fread(buf, 1, sizeof(buf), f);
        (void)fclose(f);
        found = n == len && memcmp(buf, argv, len) == 0;
    }
    (void)closedir(d);
    return found;
}

static bool mounted_under(const char *dir)
{
    char line[4096], mnt[4096];
    size_t dl = strlen(dir);
    bool found = false;
    FILE *f = fopen("/proc/self/mounts", "r");

    ck_assert_ptr_nonnull(f);
    while (!found && fgets(line, sizeof(line), f))
        found = sscanf(line, "%*s %4095s", mnt) == 1 && strncmp(mnt, dir, dl) == 0 &&
                (mnt[dl] == '\0' || mnt[dl] == '/');
    (void)fclose(f);
    return found;
}

START_TEST(engine_lifecycle)
{
    char body[512], path[256], id[128], uid[64], sleep_arg[32], cmdline[64];
    struct kedge_buf resp = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *labels;
    int status = 0, i;
    pid_t pid = enginectl_pid(engine);
    size_t cmdline_len;
    char *dir;

    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(enginectl_http(engine, "GET", "/_ping", NULL, &status, &resp), 0);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(resp.data, "OK");
    kedge_buf_reset(&resp);

    /* a new engine has no containers, and both images */
    ck_assert_uint_eq(list_count(NULL), 0);
    ck_assert_int_eq(
        enginectl_http(engine, "GET", ENGINECTL_API "/images/json", NULL, &status, &resp), 0);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp.data, "\"" ENGINECTL_BUSYBOX_IMAGE "\""));
    ck_assert_ptr_nonnull(strstr(resp.data, "\"" ENGINECTL_PAUSE_IMAGE "\""));
    kedge_buf_reset(&resp);

    /* create: a process with a command line no other test has */
    (void)snprintf(uid, sizeof(uid), "enginectl-%d", (int)getpid());
    (void)snprintf(sleep_arg, sizeof(sleep_arg), "7%d", (int)getpid());
    (void)snprintf(body, sizeof(body),
                   "{\"Image\":\"" ENGINECTL_BUSYBOX_IMAGE "\","
                   "\"Cmd\":[\"sh\",\"-c\",\"echo hello-kedge; exec sleep %s\"],"
                   "\"Labels\":{\"" LABEL_KEY "\":\"%s\",\"io.kubernetes.pod.name\":\"p1\"},"
                   "\"HostConfig\":{\"NetworkMode\":\"none\"}}",
                   sleep_arg, uid);
    ck_assert_int_eq(enginectl_http_json(engine, "POST",
                                         ENGINECTL_API "/containers/create?name=enginectl-c1", body,
                                         &status, &doc),
                     0);
    ck_assert_int_eq(status, 201);
    (void)snprintf(id, sizeof(id), "%s", str_member(kedge_jdoc_root(doc), "Id"));
    ck_assert_uint_eq(strlen(id), 64);
    kedge_jdoc_free(doc);

    /* start, then inspect (a chunked reply) */
    (void)snprintf(path, sizeof(path), ENGINECTL_API "/containers/%s/start", id);
    ck_assert_int_eq(enginectl_http(engine, "POST", path, NULL, &status, NULL), 0);
    ck_assert_int_eq(status, 204);
    (void)snprintf(path, sizeof(path), ENGINECTL_API "/containers/%s/json", id);
    ck_assert_int_eq(enginectl_http_json(engine, "GET", path, NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    root = kedge_jdoc_root(doc);
    ck_assert_str_eq(str_member(root, "Id"), id);
    ck_assert_str_eq(str_member(member(root, "State"), "Status"), "running");
    ck_assert(member(member(root, "State"), "Running")->boolean);
    labels = member(member(root, "Config"), "Labels");
    ck_assert_str_eq(str_member(labels, LABEL_KEY), uid);
    kedge_jdoc_free(doc);

    /* the label filter finds it, and only it */
    (void)snprintf(body, sizeof(body), LABEL_KEY "=%s", uid);
    ck_assert_uint_eq(list_count(body), 1);
    ck_assert_uint_eq(list_count(LABEL_KEY "=someone-else"), 0);
    ck_assert_uint_eq(list_count(LABEL_KEY), 1);

    /* the logs (chunked, 8-byte stream headers): the echo ran */
    (void)snprintf(path, sizeof(path), ENGINECTL_API "/containers/%s/logs?stdout=1&stderr=1", id);
    for (i = 0; i < 200; i++) {
        struct timespec ts = {0, 20000000};

        kedge_buf_reset(&resp);
        ck_assert_int_eq(enginectl_http(engine, "GET", path, NULL, &status, &resp), 0);
        ck_assert_int_eq(status, 200);
        if (resp.len > 8 && memmem(resp.data, resp.len, "hello-kedge\n", 12))
            break;
        (void)nanosleep(&ts, NULL); /* conmon writes the log asynchronously */
    }
    ck_assert_msg(i < 200, "no hello-kedge in the logs");
    ck_assert_int_eq(resp.data[0], 1); /* stdout */

    /* the container's process runs on this host */
    cmdline_len = (size_t)snprintf(cmdline, sizeof(cmdline), "sleep%c%s", '\0', sleep_arg) + 1;
    ck_assert(process_with_cmdline(cmdline, cmdline_len));

    /* remove */
    (void)snprintf(path, sizeof(path), ENGINECTL_API "/containers/%s?force=1", id);
    ck_assert_int_eq(enginectl_http(engine, "DELETE", path, NULL, &status, NULL), 0);
    ck_assert_int_eq(status, 204);
    (void)snprintf(path, sizeof(path), ENGINECTL_API "/containers/%s/json", id);
    ck_assert_int_eq(enginectl_http(engine, "GET", path, NULL, &status, NULL), 0);
    ck_assert_int_eq(status, 404);
    ck_assert_uint_eq(list_count(NULL), 0);
    ck_assert(!process_with_cmdline(cmdline, cmdline_len));

    /* a container left running, then stop: the engine takes it along */
    ck_assert_int_eq(enginectl_http(engine, "POST",
                                    ENGINECTL_API "/containers/create?name=enginectl-c2",
                                    "{\"Image\":\"" ENGINECTL_PAUSE_IMAGE "\","
                                    "\"HostConfig\":{\"NetworkMode\":\"none\"}}",
                                    &status, NULL),
                     0);
    ck_assert_int_eq(status, 201);
    ck_assert_int_eq(enginectl_http(engine, "POST", ENGINECTL_API "/containers/enginectl-c2/start",
                                    NULL, &status, NULL),
                     0);
    ck_assert_int_eq(status, 204);
    ck_assert(mounted_under(enginectl_dir(engine)));

    dir = strdup(enginectl_dir(engine));
    ck_assert_ptr_nonnull(dir);
    ck_assert_int_eq(enginectl_stop(engine), 0);
    ck_assert_int_eq(enginectl_pid(engine), 0);
    ck_assert_msg(kt_pid_gone(pid), "the service (pid %d) still runs", (int)pid);
    ck_assert_msg(!mounted_under(dir), "something is still mounted under %s", dir);
    ck_assert_int_eq(enginectl_stop(engine), -ECHILD);
    ck_assert_int_ne(enginectl_http(engine, "GET", "/_ping", NULL, &status, NULL), 0);
    enginectl_free(engine);
    engine = NULL;
    ck_assert_msg(access(dir, F_OK) < 0 || getenv("KEDGE_KEEP_TMP"), "%s is still there", dir);
    free(dir);
    kedge_buf_cleanup(&resp);
}
END_TEST

static Suite *enginectl_suite(void)
{
    Suite *s = suite_create("enginectl");
    TCase *tc = tcase_create("http");
    const char *why;

    tcase_add_loop_test(tc, http_replies, 0, (int)(sizeof(http_cases) / sizeof(http_cases[0])));
    tcase_add_test(tc, http_post);
    tcase_add_test(tc, list_filter_encoding);
    tcase_add_test(tc, no_engine_on_socket);
    suite_add_tcase(s, tc);

    why = !enginectl_wanted() ? "KEDGE_TEST_ENGINE=none" : enginectl_unavailable_reason();
    /* the engine case starts and stops an engine: an engine of KEDGE_TEST_ENGINE_SOCKET is
     * someone else's */
    if (!why && strcmp(enginectl_kind(), "socket") == 0)
        why = "KEDGE_TEST_ENGINE_SOCKET is set (this case starts its own engine)";
    if (why) {
        (void)printf("test_enginectl: engine tests skipped: %s\n", why);
        return s;
    }
    tc = tcase_create("engine");
    tcase_add_checked_fixture(tc, engine_setup, engine_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, engine_lifecycle);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kh_run_suite(enginectl_suite(), CK_NORMAL);
}
