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
    static const char *const programs[] = {"podman", "runc", "busybox", "curl", "chroot"};
    static char why[96];
    size_t i;

    if (geteuid() != 0)
        return "not root (rootful podman is needed for bridge networking)";
    if (access("/bin/bash", X_OK) != 0)
        return "no /bin/bash";
    if (access(ENGINE_SH, R_OK) != 0)
        return "no " ENGINE_SH;
    for (i = 0; i < sizeof(programs) / sizeof(programs[0]); i++) {
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
    (void)snprintf(path, sizeof(path), "%s/engine.log", e->dir);
    kt_copy_to_stderr(path, "podman service log");
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
static int run_script(struct enginectl *e, const char *verb, int timeout_ms, struct kedge_buf *out,
                      int *code)
{
    char start_s[48];
    const char *extra[] = {start_s, "KEDGE_ENGINE_KEEP_DIR=1", NULL};
    const char *argv[] = {"/bin/bash", ENGINE_SH, verb, e->dir, NULL};
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

/* The service's pid is gone, or a zombie that init reaps (it is not our child). */
static bool process_gone(pid_t pid)
{
    char path[64], stat_line[256];
    const char *p;
    FILE *f;
    bool zombie = false;

    if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
    (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return true;
    if (fgets(stat_line, sizeof(stat_line), f) && (p = strrchr(stat_line, ')')) && p[1] == ' ')
        zombie = p[2] == 'Z';
    (void)fclose(f);
    return zombie;
}

int enginectl_start(struct enginectl **out)
{
    struct kedge_buf so = KEDGE_BUF_INIT;
    const char *line;
    struct enginectl *e;
    int rc, code = -1, pid = 0;
    char *dir;

    *out = NULL;
    if (!enginectl_available())
        return -ENOTSUP;
    e = calloc(1, sizeof(*e));
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
    (void)snprintf(e->sock, sizeof(e->sock), "%s/podman.sock", e->dir);
    rc = kt_watcher_start(
        &e->watcher, watcher_script, "kedge-enginectl-watcher",
        (const char *const[]){e->dir, kt_keep_tmp() ? "keep" : "rm", ENGINE_SH, NULL});
    if (rc < 0)
        goto fail;
    e->running = true; /* from here on, something may run: stop it on failure */
    rc = run_script(e, "start", enginectl_scale_ms(START_TIMEOUT_MS), &so, &code);
    if (rc < 0)
        (void)fprintf(stderr, "enginectl: engine.sh start did not finish: %s\n", strerror(-rc));
    else if (code != 0)
        rc = -ECHILD;
    /* stdout is exactly "engine: ready socket=<path> pid=<n>\n" */
    line = so.data ? strstr(so.data, "engine: ready socket=") : NULL;
    if (rc == 0 &&
        (!line || sscanf(line, "engine: ready socket=%*s pid=%d", &pid) != 1 || pid <= 0)) {
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
    struct enginectl *e;

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

int enginectl_stop(struct enginectl *e)
{
    struct kedge_buf so = KEDGE_BUF_INIT;
    int rc, code = -1;

    if (!e || e->attached || !e->running)
        return -ECHILD;
    rc = run_script(e, "stop", enginectl_scale_ms(STOP_TIMEOUT_MS), &so, &code);
    e->running = false;
    if (rc == 0 && code != 0)
        rc = code;
    else if (rc == 0 && e->pid > 0 && !process_gone(e->pid))
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
    return e->dir;
}

pid_t enginectl_pid(const struct enginectl *e)
{
    return e->running ? e->pid : 0;
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

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

static int connect_unix(const char *path)
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

int enginectl_http(struct enginectl *e, const char *method, const char *path, const char *body,
                   int *status, struct kedge_buf *resp)
{
    int64_t deadline = kt_now_ms() + enginectl_scale_ms(HTTP_TIMEOUT_MS);
    struct kedge_buf in = KEDGE_BUF_INIT, req = KEDGE_BUF_INIT, dec = KEDGE_BUF_INIT;
    struct http_head h = {0, -1, -1, false};
    size_t blen = body ? strlen(body) : 0;
    bool eof = false, done = false, no_body;
    int fd, rc = 0, hr = 0, dr = 0;

    *status = -1;
    no_body = strcmp(method, "HEAD") == 0;
    fd = connect_unix(e->sock);
    if (fd < 0)
        return fd;
    if (kedge_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: d\r\nConnection: close\r\n", method, path) <
            0 ||
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
