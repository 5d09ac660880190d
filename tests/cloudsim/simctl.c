/* simctl.c: a kedge-cloudsim child process and a blocking HTTP/1.1 client for its control API
 * (simctl.h). Test-side code: blocking calls with deadlines are fine here, and nothing but
 * 127.0.0.1 is contacted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "httpc.h"
#include "proc.h"
#include "simctl.h"
#include "testsupport.h"

#define READY_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000
#define HTTP_TIMEOUT_MS 10000

struct simctl {
    struct kt_proc proc;
    pid_t last_pid; /* of the process started, also after it ended */
    struct kt_watcher watcher;
    int wss_port, control_port, https_port, tunnel_port, stream_port;
    char dir[1024]; /* short enough that every path below fits */
    char certs[1100];
    char log_path[PATH_MAX];
    char vg_path[PATH_MAX];
    char scratch[PATH_MAX + 1100];
    bool valgrind;
};

/* ---- timing ---------------------------------------------------------------------------------- */

int simctl_scale_ms(int ms)
{
    return kt_scale_ms(ms);
}

void simctl_dump_log(const struct simctl *s)
{
    kt_copy_to_stderr(s->log_path, "kedge-cloudsim log");
    if (s->valgrind)
        kt_copy_to_stderr(s->vg_path, "valgrind log");
}

/* ---- process --------------------------------------------------------------------------------- */

/* If the test process dies without simctl_free (a failed ck_assert exits it, a Check timeout
 * kills it), cloudsim dies with it (PR_SET_PDEATHSIG) and this watcher sees EOF: it prints
 * cloudsim's log and removes the directory. simctl_free writes "ok" instead. */
static const char watcher_script[] =
    "if IFS= read -r line && [ \"$line\" = ok ]; then exit 0; fi\n"
    "echo \"simctl: the test ended with kedge-cloudsim running; files from $1:\" >&2\n"
    "for f in cloudsim.log valgrind.log; do\n"
    "  if [ -s \"$1/$f\" ]; then echo \"----- $f -----\" >&2; cat \"$1/$f\" >&2; fi\n"
    "done\n"
    "if [ \"$2\" = rm ]; then rm -rf -- \"$1\"; else echo \"simctl: kept $1\" >&2; fi\n";

/* cloudsim's command line, into argv (64 slots; ka, rs, vg_log: the caller's buffers). */
static void build_argv(const struct simctl *s, const struct simctl_opts *o, const char **argv,
                       char ka[32], char rs[32], char vg_log[PATH_MAX + 16])
{
    int argc = 0, i;

    if (s->valgrind) {
        (void)snprintf(vg_log, PATH_MAX + 16, "--log-file=%s", s->vg_path);
        argv[argc++] = "valgrind";
        argv[argc++] = "--leak-check=full";
        argv[argc++] = "--show-leak-kinds=definite,indirect,possible";
        argv[argc++] = "--error-exitcode=1";
        argv[argc++] = vg_log;
    }
    argv[argc++] = KEDGE_CLOUDSIM_BIN;
    argv[argc++] = "--certs";
    argv[argc++] = s->certs;
    argv[argc++] = "--port";
    argv[argc++] = "0";
    argv[argc++] = "--control-port";
    argv[argc++] = "0";
    if (o && o->keepalive_timeout_s) {
        (void)snprintf(ka, 32, "%ld", o->keepalive_timeout_s);
        argv[argc++] = "--keepalive-timeout-s";
        argv[argc++] = ka;
    }
    if (o && o->cloud_version) {
        argv[argc++] = "--cloud-version";
        argv[argc++] = o->cloud_version;
    }
    if (o && o->resend_interval_s) {
        (void)snprintf(rs, 32, "%ld", o->resend_interval_s);
        argv[argc++] = "--resend-interval-s";
        argv[argc++] = rs;
    }
    if (o && o->node) {
        argv[argc++] = "--node";
        argv[argc++] = o->node;
    }
    argv[argc++] = "--log-level";
    argv[argc++] = o && o->log_level ? o->log_level : "info";
    for (i = 0; o && o->extra_args && o->extra_args[i] && argc < 62; i++)
        argv[argc++] = o->extra_args[i];
    argv[argc] = NULL;
}

/* Read the ready line. Returns 0, -ECHILD (EOF: it exited) or -ETIMEDOUT. */
static int await_ready(struct simctl *s, int fd)
{
    int64_t deadline = kt_now_ms() + simctl_scale_ms(READY_TIMEOUT_MS);
    char line[256];
    size_t len = 0;
    ssize_t n;

    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, kt_remaining_ms(deadline));

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -ETIMEDOUT;
        n = read(fd, line + len, sizeof(line) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -ECHILD;
        len += (size_t)n;
        line[len] = '\0';
        if (strchr(line, '\n')) {
            if (sscanf(line, "cloudsim: ready wss_port=%d control_port=%d", &s->wss_port,
                       &s->control_port) == 2) {
                const char *h = strstr(line, " https_port=");
                s->https_port = h ? atoi(h + 12) : 0; /* only with --https-port */
                h = strstr(line, " tunnel_port=");
                s->tunnel_port = h ? atoi(h + 13) : 0;
                h = strstr(line, " stream_port=");
                s->stream_port = h ? atoi(h + 13) : 0;
                return 0;
            }
            (void)fprintf(stderr, "simctl: unexpected first line: %s", line);
            return -EPROTO;
        }
        if (len == sizeof(line) - 1)
            return -EPROTO;
    }
}

/* Make the directory and the paths; start the watcher. */
static int prepare(struct simctl *s, const struct simctl_opts *o)
{
    char *dir;

    if (o && o->certs_dir && strlen(o->certs_dir) >= sizeof(s->certs))
        return -ENAMETOOLONG;
    dir = kt_scratch_dir("kedge-cloudsim", 900);
    if (!dir)
        return -errno;
    (void)snprintf(s->dir, sizeof(s->dir), "%s", dir);
    free(dir);
    if (o && o->certs_dir)
        (void)snprintf(s->certs, sizeof(s->certs), "%s", o->certs_dir);
    else
        (void)snprintf(s->certs, sizeof(s->certs), "%s/certs", s->dir);
    (void)snprintf(s->log_path, sizeof(s->log_path), "%s/cloudsim.log", s->dir);
    (void)snprintf(s->vg_path, sizeof(s->vg_path), "%s/valgrind.log", s->dir);
    return kt_watcher_start(&s->watcher, watcher_script, "kedge-simctl-watcher",
                            (const char *const[]){s->dir, kt_keep_tmp() ? "keep" : "rm", NULL});
}

int simctl_start(const struct simctl_opts *o, struct simctl **out)
{
    const char *argv[64];
    char ka[32], rs[32], vg_log[PATH_MAX + 16];
    struct kt_spawn sp = {.argv = argv};
    struct simctl *s;
    int fds[2], rc;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->proc = (struct kt_proc)KT_PROC_INIT;
    s->watcher = (struct kt_watcher)KT_WATCHER_INIT;
    s->last_pid = -1;
    s->valgrind = kt_valgrind();
    rc = prepare(s, o);
    if (rc == 0 && pipe2(fds, O_CLOEXEC) < 0)
        rc = -errno;
    if (rc < 0) {
        simctl_free(s);
        return rc;
    }
    build_argv(s, o, argv, ka, rs, vg_log);
    sp.stdout_fd = fds[1]; /* the ready line */
    sp.err_path = s->log_path;
    rc = kt_proc_spawn(&s->proc, &sp);
    (void)close(fds[1]);
    if (rc == 0) {
        s->last_pid = s->proc.pid;
        rc = await_ready(s, fds[0]);
    }
    (void)close(fds[0]); /* cloudsim prints nothing else on stdout */
    if (rc < 0) {
        (void)fprintf(stderr, "simctl: kedge-cloudsim did not become ready: %s\n", strerror(-rc));
        (void)kt_proc_kill9(&s->proc);
        simctl_dump_log(s);
        simctl_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int simctl_stop(struct simctl *s)
{
    int rc;

    if (!s)
        return -ECHILD;
    rc = kt_proc_stop(&s->proc, simctl_scale_ms(STOP_TIMEOUT_MS), "simctl: kedge-cloudsim");
    if (rc != 0 && rc != -ECHILD)
        simctl_dump_log(s);
    return rc;
}

void simctl_free(struct simctl *s)
{
    if (!s)
        return;
    (void)kt_proc_kill9(&s->proc);
    kt_watcher_stop(&s->watcher);
    kt_scratch_done(s->dir, false, "simctl");
    free(s);
}

int simctl_wss_port(const struct simctl *s)
{
    return s->wss_port;
}

int simctl_control_port(const struct simctl *s)
{
    return s->control_port;
}

int simctl_tunnel_port(const struct simctl *s)
{
    return s->tunnel_port;
}

int simctl_stream_port(const struct simctl *s)
{
    return s->stream_port;
}

int simctl_https_port(const struct simctl *s)
{
    return s->https_port;
}

pid_t simctl_pid(const struct simctl *s)
{
    return s->last_pid;
}

const char *simctl_dir(const struct simctl *s)
{
    return s->dir;
}

const char *simctl_cert_path(struct simctl *s, const char *name)
{
    (void)snprintf(s->scratch, sizeof(s->scratch), "%s/%s", s->certs, name);
    return s->scratch;
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

int simctl_http(struct simctl *s, const char *method, const char *path_and_query, const char *body,
                int *status, struct kedge_buf *resp)
{
    *status = -1;
    return kt_http_fd(kt_connect_tcp(s->control_port), "127.0.0.1", method, path_and_query, body,
                      simctl_scale_ms(HTTP_TIMEOUT_MS), status, resp);
}

int simctl_http_json(struct simctl *s, const char *method, const char *path_and_query,
                     const char *body, int *status, struct kedge_jdoc **doc)
{
    struct kedge_buf resp = KEDGE_BUF_INIT;
    int rc;

    *doc = NULL;
    rc = simctl_http(s, method, path_and_query, body, status, &resp);
    if (rc == 0)
        rc = kedge_json_parse(resp.data ? resp.data : "", resp.len, doc);
    kedge_buf_cleanup(&resp);
    return rc;
}

int simctl_send(struct simctl *s, const char *node, const char *json, char **msg_id)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *id;
    char path[512];
    int status, rc;

    if (msg_id)
        *msg_id = NULL;
    if (node)
        (void)snprintf(path, sizeof(path), "/send?node=%s", node);
    else
        (void)snprintf(path, sizeof(path), "/send");
    rc = simctl_http_json(s, "POST", path, json, &status, &doc);
    if (rc == 0 && status != 200)
        rc = -EBADMSG;
    if (rc == 0 && msg_id) {
        id = kedge_json_get(kedge_jdoc_root(doc), "msg_id");
        if (!id || id->type != KEDGE_JSTR)
            rc = -EBADMSG;
        else if (!(*msg_id = kedge_strndup(id->str, id->len)))
            rc = -ENOMEM;
    }
    kedge_jdoc_free(doc);
    return rc;
}

int simctl_send_raw(struct simctl *s, const char *node, const char *bytes)
{
    struct kedge_buf resp = KEDGE_BUF_INIT;
    char path[512];
    int status, rc;

    if (node)
        (void)snprintf(path, sizeof(path), "/send_raw?node=%s", node);
    else
        (void)snprintf(path, sizeof(path), "/send_raw");
    rc = simctl_http(s, "POST", path, bytes, &status, &resp);
    kedge_buf_cleanup(&resp);
    if (rc == 0 && status != 200)
        rc = -EBADMSG;
    return rc;
}

int simctl_post(struct simctl *s, const char *path_and_query)
{
    struct kedge_buf resp = KEDGE_BUF_INIT;
    int status, rc;

    rc = simctl_http(s, "POST", path_and_query, NULL, &status, &resp);
    kedge_buf_cleanup(&resp);
    return rc < 0 ? rc : status;
}
