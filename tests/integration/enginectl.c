/* enginectl.c: scripts/engine.sh as a test's private container engine, and a blocking HTTP/1.1
 * client for its unix socket (enginectl.h). Test-side code: blocking calls with deadlines are
 * fine here. Only the engine's unix socket is contacted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kedge/err.h"
#include "enginectl.h"
#include "httpc.h"
#include "proc.h"
#include "testsupport.h"

#define ENGINE_SH KEDGE_SOURCE_DIR "/scripts/engine.sh"
#define START_TIMEOUT_MS 60000   /* engine.sh start: the service, then two image imports */
#define SERVICE_TIMEOUT_MS 20000 /* engine.sh's own deadline for GET /_ping */
#define STOP_TIMEOUT_MS 60000    /* engine.sh stop: containers, SIGTERM (10 s), unmounts */
#define HTTP_TIMEOUT_MS 30000
#define TMPDIR_MAX 60 /* <tmp>/kedge-engine-XXXXXX/podman.sock must fit sun_path */
#define POLL_MS 10

extern char **environ;

struct enginectl {
    pid_t pid; /* the service: not our child (engine.sh setsid's it); 0 when not running */
    bool running;
    bool attached;
    bool adopted;     /* KEDGE_TEST_ENGINE_SOCKET: someone else's engine, used by enginectl_start */
    char node[128];   /* enginectl_claim_node: the containers of this node are ours */
    char runtime[16]; /* enginectl_runtime: "podman" or "docker", "" until asked */
    struct kt_watcher watcher;
    char dir[TMPDIR_MAX + 32];
    char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char log_path[TMPDIR_MAX + 64]; /* enginectl.log: engine.sh's stderr, every run */
};

/* ---- environment ----------------------------------------------------------------------------- */

bool enginectl_wanted(void)
{
    const char *v = getenv("KEDGE_TEST_ENGINE");

    return !(v && strcmp(v, "none") == 0);
}

/* What enginectl_start starts: KEDGE_TEST_ENGINE=dockerd, else podman. */
static bool want_dockerd(void)
{
    const char *v = getenv("KEDGE_TEST_ENGINE");

    return v && strcmp(v, "dockerd") == 0;
}

/* KEDGE_TEST_ENGINE_SOCKET, or NULL when unset or empty. */
static const char *adopt_socket(void)
{
    const char *v = getenv("KEDGE_TEST_ENGINE_SOCKET");

    return v && *v ? v : NULL;
}

const char *enginectl_kind(void)
{
    if (adopt_socket())
        return "socket";
    return want_dockerd() ? "dockerd" : "podman";
}

/* Not scaled for valgrind: the engine does not run under it. */
int enginectl_scale_ms(int ms)
{
    double v = (double)ms * kt_timeout_scale();

    return v > (double)INT_MAX ? INT_MAX : (int)v;
}

/* An executable `name` in PATH or, as engine.sh adds them, /usr/sbin and /sbin (runc and
 * chroot live there). */
static bool have_program(const char *name)
{
    const char *path = getenv("PATH");
    char dirs[4096], file[PATH_MAX];
    char *save = NULL, *d;

    (void)snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin",
                   path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    for (d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (snprintf(file, sizeof(file), "%s/%s", d, name) < (int)sizeof(file) &&
            access(file, X_OK) == 0)
            return true;
    }
    return false;
}

const char *enginectl_unavailable_reason(void)
{
    static const char *const podman[] = {"podman", "runc", "busybox", "curl", "chroot", NULL};
    static const char *const dockerd[] = {"dockerd", "ip",     "flock", "busybox",
                                          "curl",    "chroot", NULL};
    static const char *const adopt[] = {"busybox", "curl", "chroot", NULL};
    const char *const *programs = adopt_socket() ? adopt : want_dockerd() ? dockerd : podman;
    static char why[96];
    size_t i;

    if (geteuid() != 0)
        return "not root (a rootful engine is needed for bridge networking)";
    if (access("/bin/bash", X_OK) != 0)
        return "no /bin/bash";
    if (access(ENGINE_SH, R_OK) != 0)
        return "no " ENGINE_SH;
    for (i = 0; programs[i]; i++) {
        if (!have_program(programs[i])) {
            (void)snprintf(why, sizeof(why), "%s is not installed", programs[i]);
            return why;
        }
    }
    return NULL;
}

bool enginectl_available(void)
{
    return enginectl_unavailable_reason() == NULL;
}

void enginectl_dump_log(const struct enginectl *e)
{
    char path[sizeof(e->dir) + 16];

    if (e->attached)
        return;
    kt_copy_to_stderr(e->log_path, "engine.sh output");
    if (e->adopted)
        return;
    (void)snprintf(path, sizeof(path), "%s/engine.log", e->dir);
    kt_copy_to_stderr(path, "the engine's log");
}

/* ---- processes ------------------------------------------------------------------------------- */

/* If the test process dies without enginectl_free, this watcher sees EOF on a pipe only the
 * test holds: it prints the logs and stops the engine, which would otherwise outlive the test
 * (it is a daemon). enginectl_free writes "ok" instead. */
static const char watcher_script[] =
    "if IFS= read -r line && [ \"$line\" = ok ]; then exit 0; fi\n"
    "echo \"enginectl: the test ended with the engine in $1 running; stopping it\" >&2\n"
    "for f in enginectl.log engine.log; do\n"
    "  if [ -s \"$1/$f\" ]; then echo \"----- $f -----\" >&2; tail -n 60 \"$1/$f\" >&2; fi\n"
    "done\n"
    "if [ \"$2\" = rm ]; then /bin/bash \"$3\" stop \"$1\" >&2\n"
    "else KEDGE_ENGINE_KEEP_DIR=1 /bin/bash \"$3\" stop \"$1\" >&2; echo \"enginectl: kept $1\" "
    ">&2\n"
    "fi\n";

/* Run `engine.sh VERB DIR`: stdout into *out, stderr appended to enginectl.log. The script runs
 * in its own process group (killed whole on the deadline) and dies with the test
 * (PR_SET_PDEATHSIG); the service it starts is in its own session and is neither.
 * Returns 0 and the exit code in *code (128 + signal for a signal), -ETIMEDOUT or -errno. */
static int run_script(struct enginectl *e, const char *verb, const char *arg, int timeout_ms,
                      struct kedge_buf *out, int *code)
{
    char start_s[48];
    const char *extra[] = {
        start_s, "KEDGE_ENGINE_KEEP_DIR=1",
        want_dockerd() ? "KEDGE_ENGINE_KIND=dockerd" : "KEDGE_ENGINE_KIND=podman", NULL};
    const char *argv[] = {"/bin/bash", ENGINE_SH, verb, arg, NULL};
    struct kt_spawn sp = {.argv = argv, .env = extra, .log_path = e->log_path, .own_group = true};
    struct kt_proc p = KT_PROC_INIT;
    int64_t deadline = kt_now_ms() + timeout_ms;
    int fds[2], rc = 0;
    bool eof = false;

    *code = -1;
    (void)snprintf(start_s, sizeof(start_s), "KEDGE_ENGINE_START_TIMEOUT_S=%d",
                   (enginectl_scale_ms(SERVICE_TIMEOUT_MS) + 999) / 1000);
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    sp.stdout_fd = fds[1];
    rc = kt_proc_spawn(&p, &sp);
    (void)close(fds[1]);
    while (rc == 0 && !eof) {
        char buf[1024];
        struct pollfd pf = {fds[0], POLLIN, 0};
        int r = poll(&pf, 1, kt_remaining_ms(deadline));
        ssize_t n;

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        n = read(fds[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            eof = true;
        else if (kedge_buf_append(out, buf, (size_t)n) < 0)
            rc = -ENOMEM;
    }
    (void)close(fds[0]);
    /* stdout is closed (or the deadline passed): reap it, killing its group on the deadline */
    if (p.pid && (rc == -ETIMEDOUT || kt_proc_wait_exit(&p, kt_remaining_ms(deadline)) < 0)) {
        (void)kt_proc_kill9(&p);
        rc = -ETIMEDOUT;
    }
    if (rc == 0)
        *code = p.exit_status;
    return rc;
}

/* A handle with a scratch directory of its own (enginectl.log; the engine's files). */
static int new_handle(struct enginectl **out)
{
    struct enginectl *e = calloc(1, sizeof(**out));
    char *dir;
    int rc;

    if (!e)
        return -ENOMEM;
    e->watcher = (struct kt_watcher)KT_WATCHER_INIT;
    dir = kt_scratch_dir("kedge-engine", TMPDIR_MAX);
    if (!dir) {
        rc = -errno;
        free(e);
        return rc;
    }
    (void)snprintf(e->dir, sizeof(e->dir), "%s", dir);
    free(dir);
    (void)snprintf(e->log_path, sizeof(e->log_path), "%s/enginectl.log", e->dir);
    *out = e;
    return 0;
}

/* KEDGE_TEST_ENGINE_SOCKET: use that engine, start nothing; `engine.sh images` gives it the
 * two images if it lacks them. Only the containers of a claimed node are removed at the end. */
static int adopt(const char *sock, struct enginectl **out)
{
    struct kedge_buf so = KEDGE_BUF_INIT;
    struct enginectl *e = NULL;
    int rc, code = -1;

    if (strlen(sock) >= sizeof(e->sock))
        return -ENAMETOOLONG;
    if ((rc = new_handle(&e)) < 0)
        return rc;
    (void)snprintf(e->sock, sizeof(e->sock), "%s", sock);
    e->adopted = true;
    rc = run_script(e, "images", e->sock, enginectl_scale_ms(START_TIMEOUT_MS), &so, &code);
    if (rc == 0 && code != 0)
        rc = -ECHILD;
    kedge_buf_cleanup(&so);
    if (rc < 0) {
        (void)fprintf(stderr, "enginectl: engine.sh images %s failed (exit %d)\n", e->sock, code);
        enginectl_dump_log(e);
        enginectl_free(e);
        return rc;
    }
    e->running = true;
    *out = e;
    return 0;
}

int enginectl_start(struct enginectl **out)
{
    struct kedge_buf so = KEDGE_BUF_INIT;
    const char *line;
    struct enginectl *e = NULL;
    int rc, code = -1, pid = 0;

    *out = NULL;
    if (!enginectl_available())
        return -ENOTSUP;
    if (adopt_socket())
        return adopt(adopt_socket(), out);
    if ((rc = new_handle(&e)) < 0)
        return rc;
    rc = kt_watcher_start(
        &e->watcher, watcher_script, "kedge-enginectl-watcher",
        (const char *const[]){e->dir, kt_keep_tmp() ? "keep" : "rm", ENGINE_SH, NULL});
    if (rc < 0)
        goto fail;
    e->running = true; /* from here on, something may run: stop it on failure */
    rc = run_script(e, "start", e->dir, enginectl_scale_ms(START_TIMEOUT_MS), &so, &code);
    if (rc < 0)
        (void)fprintf(stderr, "enginectl: engine.sh start did not finish: %s\n", strerror(-rc));
    else if (code != 0)
        rc = -ECHILD;
    /* stdout is exactly "engine: ready socket=<path> pid=<n>\n" (podman.sock or docker.sock) */
    line = so.data ? strstr(so.data, "engine: ready socket=") : NULL;
    if (rc == 0 &&
        (!line || sscanf(line, "engine: ready socket=%107s pid=%d", e->sock, &pid) != 2 ||
         pid <= 0)) {
        (void)fprintf(stderr, "enginectl: no ready line from engine.sh: %s\n",
                      so.data ? so.data : "");
        rc = -EPROTO;
    }
    if (rc < 0) {
        (void)fprintf(stderr, "enginectl: engine start failed (exit %d) in %s\n", code, e->dir);
        enginectl_dump_log(e);
        goto fail;
    }
    e->pid = pid;
    kedge_buf_cleanup(&so);
    *out = e;
    return 0;
fail:
    kedge_buf_cleanup(&so);
    enginectl_free(e); /* runs engine.sh stop: it is safe after a failed start */
    return rc;
}

int enginectl_attach(const char *socket_path, struct enginectl **out)
{
    struct enginectl *e = NULL;

    *out = NULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    if (strlen(socket_path) >= sizeof(e->sock)) {
        free(e);
        return -ENAMETOOLONG;
    }
    (void)snprintf(e->sock, sizeof(e->sock), "%s", socket_path);
    e->attached = true;
    e->watcher = (struct kt_watcher)KT_WATCHER_INIT;
    *out = e;
    return 0;
}

int enginectl_claim_node(struct enginectl *e, const char *node)
{
    if (strlen(node) >= sizeof(e->node))
        return -ENAMETOOLONG;
    (void)snprintf(e->node, sizeof(e->node), "%s", node);
    return 0;
}

/* The containers of the claimed node (label io.kedge.node), force-removed; an infra container
 * in use by an app container is refused by podman, so this takes passes. Returns 0, -EBUSY
 * (some left) or what enginectl_list returns. */
static int remove_claimed(struct enginectl *e)
{
    char label[sizeof(e->node) + 32], path[160];
    int pass, rc = 0;

    (void)snprintf(label, sizeof(label), "io.kedge.node=%s", e->node);
    for (pass = 0; pass < 4; pass++) {
        struct kedge_jdoc *doc = NULL;
        const struct kedge_jval *c, *id;
        size_t n = 0;
        int status;

        if ((rc = enginectl_list(e, label, &doc)) < 0)
            return rc;
        for (c = kedge_jdoc_root(doc)->child; c; c = c->next, n++) {
            id = kedge_json_get(c, "Id");
            if (!id || id->type != KEDGE_JSTR)
                continue;
            (void)snprintf(path, sizeof(path), ENGINECTL_API "/containers/%.*s?force=1&v=1",
                           (int)id->len, id->str);
            (void)enginectl_http(e, "DELETE", path, NULL, &status, NULL);
        }
        kedge_jdoc_free(doc);
        if (n == 0)
            return 0;
    }
    return -EBUSY;
}

int enginectl_stop(struct enginectl *e)
{
    struct kedge_buf so = KEDGE_BUF_INIT;
    int rc, code = -1;

    if (!e || e->attached || !e->running)
        return -ECHILD;
    if (e->adopted) {
        e->running = false;
        rc = e->node[0] ? remove_claimed(e) : 0;
        if (rc < 0)
            (void)fprintf(stderr, "enginectl: containers of node %s not all removed: %d\n", e->node,
                          rc);
        return rc;
    }
    rc = run_script(e, "stop", e->dir, enginectl_scale_ms(STOP_TIMEOUT_MS), &so, &code);
    e->running = false;
    if (rc == 0 && code != 0)
        rc = code;
    else if (rc == 0 && e->pid > 0 && !kt_pid_gone(e->pid))
        rc = -EBUSY;
    if (rc != 0) {
        (void)fprintf(stderr, "enginectl: engine.sh stop failed (rc %d, exit %d): %s\n", rc, code,
                      so.data ? so.data : "");
        enginectl_dump_log(e);
    }
    e->pid = 0;
    kedge_buf_cleanup(&so);
    return rc;
}

void enginectl_free(struct enginectl *e)
{
    int rc;

    if (!e)
        return;
    if (e->running) {
        rc = enginectl_stop(e);
        if (rc != 0)
            (void)fprintf(stderr, "enginectl: stopping the engine in %s failed: %d\n", e->dir, rc);
    }
    kt_watcher_stop(&e->watcher);
    if (!e->attached)
        kt_scratch_done(e->dir, true, "enginectl");
    free(e);
}

const char *enginectl_socket(const struct enginectl *e)
{
    return e->sock;
}

const char *enginectl_dir(const struct enginectl *e)
{
    return e->attached || e->adopted ? "" : e->dir;
}

const char *enginectl_runtime(struct enginectl *e)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *c;
    int status;

    if (e->runtime[0])
        return e->runtime;
    if (enginectl_http_json(e, "GET", ENGINECTL_API "/version", NULL, &status, &doc) < 0 ||
        status != 200) {
        kedge_jdoc_free(doc);
        return "unknown";
    }
    (void)snprintf(e->runtime, sizeof(e->runtime), "docker");
    c = kedge_json_get(kedge_jdoc_root(doc), "Components");
    for (c = c && c->type == KEDGE_JARR ? c->child : NULL; c; c = c->next) {
        const struct kedge_jval *nm = kedge_json_get(c, "Name");
        if (nm && nm->type == KEDGE_JSTR && !strncmp(nm->str, "Podman", 6))
            (void)snprintf(e->runtime, sizeof(e->runtime), "podman");
    }
    kedge_jdoc_free(doc);
    return e->runtime;
}

pid_t enginectl_pid(const struct enginectl *e)
{
    return e->running ? e->pid : 0;
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

int enginectl_http(struct enginectl *e, const char *method, const char *path, const char *body,
                   int *status, struct kedge_buf *resp)
{
    *status = -1;
    return kt_http_fd(kt_connect_unix(e->sock), "d", method, path, body,
                      enginectl_scale_ms(HTTP_TIMEOUT_MS), status, resp);
}

int enginectl_http_json(struct enginectl *e, const char *method, const char *path, const char *body,
                        int *status, struct kedge_jdoc **doc)
{
    struct kedge_buf resp = KEDGE_BUF_INIT;
    int rc;

    *doc = NULL;
    rc = enginectl_http(e, method, path, body, status, &resp);
    if (rc == 0)
        rc = kedge_json_parse(resp.data ? resp.data : "", resp.len, doc);
    kedge_buf_cleanup(&resp);
    return rc;
}

/* Percent-encode s into b (a query parameter value). Returns 0 or -ENOMEM. */
static int urlencode(struct kedge_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char enc[3] = {'%', hex[c >> 4], hex[c & 15]};

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            if (kedge_buf_putc(b, (char)c) < 0)
                return -ENOMEM;
        } else if (kedge_buf_append(b, enc, 3) < 0) {
            return -ENOMEM;
        }
    }
    return 0;
}

int enginectl_list(struct enginectl *e, const char *label_filter, struct kedge_jdoc **doc)
{
    struct kedge_buf path = KEDGE_BUF_INIT, filters = KEDGE_BUF_INIT, resp = KEDGE_BUF_INIT;
    int status = -1, rc = 0;

    *doc = NULL;
    if (kedge_buf_puts(&path, ENGINECTL_API "/containers/json?all=1") < 0)
        rc = -ENOMEM;
    /* filters={"label":["key=value"]}, as the Docker API takes it */
    if (rc == 0 && label_filter &&
        (kedge_buf_puts(&filters, "{\"label\":[") < 0 ||
         kedge_json_escape(&filters, label_filter, strlen(label_filter)) < 0 ||
         kedge_buf_puts(&filters, "]}") < 0 || kedge_buf_puts(&path, "&filters=") < 0 ||
         urlencode(&path, filters.data, filters.len) < 0))
        rc = -ENOMEM;
    if (rc == 0)
        rc = enginectl_http(e, "GET", path.data, NULL, &status, &resp);
    if (rc == 0 && status != 200) {
        (void)fprintf(stderr, "enginectl: GET %s: HTTP %d %s\n", path.data, status,
                      resp.data ? resp.data : "");
        rc = -EBADMSG;
    }
    if (rc == 0)
        rc = kedge_json_parse(resp.data ? resp.data : "", resp.len, doc);
    kedge_buf_cleanup(&path);
    kedge_buf_cleanup(&filters);
    kedge_buf_cleanup(&resp);
    return rc;
}
