/* cloudctl.c: the shared real cloud (up.sh/down.sh) for a test, kubectl, and a small runner of
 * programs with captured output and a deadline (cloudctl.h). Test-side code: blocking calls
 * with deadlines are fine here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cloudctl.h"
#include "harness.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "proc.h"
#include "testsupport.h"

#define UP_TIMEOUT_MS 300000   /* a first up.sh decompresses ~220 MB; later ones take 15-25 s */
#define DOWN_TIMEOUT_MS 120000 /* down.sh: up to 10 s per daemon, then unmounts and rm */
#define KUBECTL_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 10000
#define MAX_ENV 64
#define MAX_ARGS 48

extern char **environ;

struct cloudctl {
    char dir[PATH_MAX]; /* the cloudcore folder (up.sh, down.sh) */
    char run[PATH_MAX]; /* CC_RUN */
    char kubeconfig[PATH_MAX];
    char *env_text; /* env.sh, split in place into the pairs below */
    const char *names[MAX_ENV];
    const char *values[MAX_ENV];
    int n_env;
    struct kt_watcher watcher;
    bool down;
};

/* ---- running programs ------------------------------------------------------------------------ */

static int append_fd(int fd, struct kedge_buf *to, bool *open_)
{
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof(buf));

    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -errno;
    if (n == 0) {
        *open_ = false;
        return 0;
    }
    return to && kedge_buf_append(to, buf, (size_t)n) < 0 ? -ENOMEM : 0;
}

/* Feed stdin, drain stdout/stderr until both are closed or the deadline passes. */
static int pump(int in_fd, const char *in, int out_fd, int err_fd, struct kedge_buf *out,
                struct kedge_buf *err, int64_t deadline)
{
    size_t in_left = in ? strlen(in) : 0;
    bool out_open = true, err_open = true;
    int rc = 0;

    if (in_fd >= 0 && in_left == 0) {
        (void)close(in_fd);
        in_fd = -1;
    }
    while ((out_open || err_open) && rc == 0) {
        struct pollfd p[3] = {{out_open ? out_fd : -1, POLLIN, 0},
                              {err_open ? err_fd : -1, POLLIN, 0},
                              {in_fd, POLLOUT, 0}};
        int left = kt_remaining_ms(deadline);
        if (left == 0)
            rc = -ETIMEDOUT;
        else if (poll(p, 3, left) < 0 && errno != EINTR)
            rc = -errno;
        if (rc == 0 && (p[0].revents & (POLLIN | POLLHUP)))
            rc = append_fd(out_fd, out, &out_open);
        if (rc == 0 && (p[1].revents & (POLLIN | POLLHUP)))
            rc = append_fd(err_fd, err, &err_open);
        if (rc == 0 && in_fd >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(in_fd, in, in_left);
            if (n > 0) {
                in += n;
                in_left -= (size_t)n;
            }
            if (n < 0 || in_left == 0) {
                (void)close(in_fd);
                in_fd = -1;
            }
        }
    }
    if (in_fd >= 0)
        (void)close(in_fd);
    return rc;
}

static int reap(pid_t pid, int64_t deadline, bool timed_out)
{
    int st = 0;
    pid_t r;

    if (timed_out)
        (void)kill(-pid, SIGKILL);
    while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
        struct timespec ts = {0, 10 * 1000000L};
        if (kt_remaining_ms(deadline) == 0 && !timed_out) {
            (void)kill(-pid, SIGKILL);
            timed_out = true;
        }
        (void)nanosleep(&ts, NULL);
    }
    if (r < 0)
        return -errno;
    if (timed_out)
        return -ETIMEDOUT;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int cloudctl_run(const char *const *argv, const char *const *env_extra, const char *in,
                 struct kedge_buf *out, struct kedge_buf *err, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + timeout_ms;
    int po[2] = {-1, -1}, pe[2] = {-1, -1}, pi[2] = {-1, -1}, rc;
    char **env = kt_env_with(env_extra);
    pid_t pid;

    if (!env)
        return -ENOMEM;
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0 || pipe2(pi, O_CLOEXEC) < 0) {
        rc = -errno;
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto fail;
    }
    if (pid == 0) {
        (void)setpgid(0, 0); /* a timeout kills the whole group (up.sh's own children) */
        if (dup2(pi[0], 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
            _exit(127);
        kt_close_from(3);
        execvpe(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    free(env);
    (void)close(po[1]);
    (void)close(pe[1]);
    (void)close(pi[0]);
    (void)fcntl(pi[1], F_SETFL, O_NONBLOCK);
    (void)signal(SIGPIPE, SIG_IGN); /* a child that does not read its stdin */
    rc = pump(pi[1], in, po[0], pe[0], out, err, deadline);
    (void)close(po[0]);
    (void)close(pe[0]);
    {
        int st = reap(pid, deadline + 5000, rc == -ETIMEDOUT);
        if (rc == 0 || rc == -ETIMEDOUT)
            rc = rc ? rc : st;
    }
    return rc;
fail:
    free(env);
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            (void)close(po[i]);
        if (pe[i] >= 0)
            (void)close(pe[i]);
        if (pi[i] >= 0)
            (void)close(pi[i]);
    }
    return rc;
}

/* ---- up.sh / down.sh ------------------------------------------------------------------------- */

bool cloudctl_available(const char *dir, char *why, size_t why_len)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/up.sh", dir);
    if (access(path, X_OK) == 0) {
        snprintf(path, sizeof(path), "%s/down.sh", dir);
        if (access(path, X_OK) == 0)
            return true;
    }
    snprintf(why, why_len, "no real cloud: %s is not executable (KEDGE_CLOUDCORE_DIR=%s)", path,
             dir);
    return false;
}

/* If the test dies without cloudctl_free, the watcher sees EOF on a pipe only the test holds:
 * it shows cloudcore's log tail and takes the instance down (its daemons would outlive us). */
static const char watcher_script[] =
    "if IFS= read -r line && [ \"$line\" = ok ]; then exit 0; fi\n"
    "echo \"cloudctl: the test ended with the cloud in $1 running; taking it down\" >&2\n"
    "tail -n 40 \"$1/logs/cloudcore.log\" >&2 2>/dev/null\n"
    "CC_RUN=\"$1\" \"$2/down.sh\" $3 >&2\n";

static int start_watcher(struct cloudctl *c)
{
    const char *args[] = {c->run, c->dir, kt_keep_tmp() ? "" : "--purge", NULL};

    return kt_watcher_start(&c->watcher, watcher_script, "kedge-cloudctl-watcher", args);
}

/* Split env.sh's `export A=1 B=2` lines into name/value pairs (values have no blanks). */
static int parse_env(struct cloudctl *c)
{
    char path[PATH_MAX + 16], *save = NULL, *tok;
    struct kedge_buf b = KEDGE_BUF_INIT;
    FILE *f;
    size_t n;
    char chunk[4096];

    snprintf(path, sizeof(path), "%s/env.sh", c->run);
    f = fopen(path, "r");
    if (!f)
        return -EBADMSG;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (kedge_buf_append(&b, chunk, n) < 0) {
            (void)fclose(f);
            kedge_buf_cleanup(&b);
            return -ENOMEM;
        }
    (void)fclose(f);
    kedge_free(c->env_text);
    c->env_text = kedge_buf_take(&b, NULL);
    c->n_env = 0;
    if (!c->env_text)
        return -EBADMSG;
    for (tok = strtok_r(c->env_text, " \t\n", &save); tok && c->n_env < MAX_ENV;
         tok = strtok_r(NULL, " \t\n", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || !strcmp(tok, "export"))
            continue;
        *eq = '\0';
        c->names[c->n_env] = tok;
        c->values[c->n_env++] = eq + 1;
    }
    if (!cloudctl_env(c, "KUBECONFIG") || !cloudctl_env(c, "CC_TOKEN") ||
        cloudctl_env_long(c, "CC_WS_PORT") <= 0 || cloudctl_env_long(c, "CC_HTTPS_PORT") <= 0)
        return -EBADMSG;
    snprintf(c->kubeconfig, sizeof(c->kubeconfig), "%s", cloudctl_env(c, "KUBECONFIG"));
    return 0;
}

static int run_script(struct cloudctl *c, const char *script, const char *arg, int timeout_ms,
                      struct kedge_buf *out)
{
    char path[PATH_MAX + 16], env_run[PATH_MAX + 8];
    const char *argv[] = {path, arg, NULL};
    /* cloudStream on: kubectl logs/exec reach the edge through its tunnel, as a user who
     * wants them runs cloudcore (README §cloudStream of the shared cloud) */
    const char *env[] = {env_run, "CC_STREAM=1", NULL};

    snprintf(path, sizeof(path), "%s/%s", c->dir, script);
    snprintf(env_run, sizeof(env_run), "CC_RUN=%s", c->run);
    return cloudctl_run(argv, env, NULL, out, out, timeout_ms);
}

static int up(struct cloudctl *c)
{
    struct kedge_buf out = KEDGE_BUF_INIT;
    int64_t t0 = kt_now_ms();
    int rc = run_script(c, "up.sh", NULL, kh_scale_ms(UP_TIMEOUT_MS), &out);

    if (rc != 0) {
        fprintf(stderr, "cloudctl: up.sh (CC_RUN=%s) ended with %d:\n%s\n", c->run, rc,
                out.data ? out.data : "");
        kedge_buf_cleanup(&out);
        return rc < 0 ? rc : -ECHILD;
    }
    kedge_buf_cleanup(&out);
    fprintf(stderr, "cloudctl: up.sh took %.1f s\n", (double)(kt_now_ms() - t0) / 1000.0);
    rc = parse_env(c);
    if (rc < 0)
        fprintf(stderr, "cloudctl: %s/env.sh is missing or incomplete\n", c->run);
    return rc;
}

int cloudctl_start(const char *dir, struct cloudctl **out)
{
    const char *tmp = getenv("TMPDIR");
    struct cloudctl *c = calloc(1, sizeof(*c));
    int rc;

    *out = NULL;
    if (!c)
        return -ENOMEM;
    c->watcher = (struct kt_watcher)KT_WATCHER_INIT;
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    snprintf(c->run, sizeof(c->run), "%s/kedge-cc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(c->run)) {
        rc = -errno;
        free(c);
        return rc;
    }
    rc = start_watcher(c);
    if (rc == 0)
        rc = up(c);
    if (rc < 0) {
        cloudctl_free(c); /* up.sh leaves what it started: down.sh */
        return rc;
    }
    *out = c;
    return 0;
}

static pid_t cloudcore_pid(const struct cloudctl *c)
{
    long pid = cloudctl_env_long(c, "CC_PID_CLOUDCORE");

    return pid > 0 ? (pid_t)pid : 0;
}

/* Exists and is not a zombie (it is not our child: up.sh's subshell left it to init). */
static bool pid_running(pid_t pid)
{
    char path[64], buf[512], *p;
    FILE *f;
    size_t n;

    if (pid <= 0 || kill(pid, 0) < 0)
        return false;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    (void)fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z';
}

bool cloudctl_cloudcore_running(const struct cloudctl *c)
{
    return pid_running(cloudcore_pid(c));
}

int cloudctl_stop_cloudcore(struct cloudctl *c)
{
    pid_t pid = cloudcore_pid(c);
    int64_t deadline = kt_now_ms() + kh_scale_ms(STOP_TIMEOUT_MS);

    if (!pid_running(pid))
        return -ESRCH;
    if (kill(pid, SIGTERM) < 0)
        return -errno;
    while (pid_running(pid)) {
        struct timespec ts = {0, 50 * 1000000L};
        if (kt_remaining_ms(deadline) == 0) {
            (void)kill(pid, SIGKILL);
            deadline = kt_now_ms() + kh_scale_ms(STOP_TIMEOUT_MS);
            while (pid_running(pid) && kt_remaining_ms(deadline) > 0)
                (void)nanosleep(&ts, NULL);
            return pid_running(pid) ? -ETIMEDOUT : 0;
        }
        (void)nanosleep(&ts, NULL);
    }
    return 0;
}

int cloudctl_start_cloudcore(struct cloudctl *c)
{
    return up(c);
}

int cloudctl_down(struct cloudctl *c)
{
    struct kedge_buf out = KEDGE_BUF_INIT;
    int rc;

    if (!c || c->down)
        return 0;
    rc = run_script(c, "down.sh", kt_keep_tmp() ? NULL : "--purge", kh_scale_ms(DOWN_TIMEOUT_MS),
                    &out);
    if (rc != 0)
        fprintf(stderr, "cloudctl: down.sh (CC_RUN=%s) ended with %d:\n%s\n", c->run, rc,
                out.data ? out.data : "");
    else if (kt_keep_tmp())
        fprintf(stderr, "cloudctl: kept %s\n", c->run);
    kedge_buf_cleanup(&out);
    c->down = true;
    return rc;
}

void cloudctl_free(struct cloudctl *c)
{
    if (!c)
        return;
    (void)cloudctl_down(c);
    kt_watcher_stop(&c->watcher);
    kedge_free(c->env_text);
    free(c);
}

/* ---- accessors ------------------------------------------------------------------------------- */

const char *cloudctl_env(const struct cloudctl *c, const char *name)
{
    const char *v = NULL;

    for (int i = 0; i < c->n_env; i++)
        if (!strcmp(c->names[i], name))
            v = c->values[i]; /* the last one wins, as in the shell */
    return v;
}

long cloudctl_env_long(const struct cloudctl *c, const char *name)
{
    const char *v = cloudctl_env(c, name);
    char *end;
    long n;

    if (!v || !*v)
        return -1;
    errno = 0;
    n = strtol(v, &end, 10);
    return errno || *end ? -1 : n;
}

const char *cloudctl_run_dir(const struct cloudctl *c)
{
    return c->run;
}

void cloudctl_dump_log(const struct cloudctl *c, const char *name, int lines)
{
    char path[PATH_MAX + 64], n[16];
    const char *argv[] = {"tail", "-n", n, path, NULL};
    struct kedge_buf out = KEDGE_BUF_INIT;

    snprintf(n, sizeof(n), "%d", lines);
    snprintf(path, sizeof(path), "%s/logs/%s.log", c->run, name);
    if (cloudctl_run(argv, NULL, NULL, &out, NULL, 10000) == 0)
        fprintf(stderr, "---- %s (last %d lines) ----\n%s---- end of %s ----\n", path, lines,
                out.data ? out.data : "", name);
    kedge_buf_cleanup(&out);
}

static void log_path(const struct cloudctl *c, const char *name, char *path, size_t len)
{
    snprintf(path, len, "%s/logs/%s.log", c->run, name);
}

long cloudctl_log_size(const struct cloudctl *c, const char *name)
{
    char path[PATH_MAX + 64];
    struct stat st;

    log_path(c, name, path, sizeof(path));
    return stat(path, &st) < 0 ? 0 : (long)st.st_size;
}

char *cloudctl_log_read(const struct cloudctl *c, const char *name, long from)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char path[PATH_MAX + 64], chunk[8192];
    size_t n;
    FILE *f;

    log_path(c, name, path, sizeof(path));
    f = fopen(path, "r");
    if (!f || fseek(f, from, SEEK_SET) < 0) {
        if (f)
            (void)fclose(f);
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (kedge_buf_append(&b, chunk, n) < 0) {
            (void)fclose(f);
            kedge_buf_cleanup(&b);
            return NULL;
        }
    (void)fclose(f);
    return kedge_buf_take(&b, NULL);
}

/* ---- kubectl --------------------------------------------------------------------------------- */

static int kubectl_v(struct cloudctl *c, const char *in, struct kedge_buf *out,
                     struct kedge_buf *err, const char *arg, va_list ap)
{
    const char *argv[MAX_ARGS + 4];
    const char *kubectl = getenv("KUBECTL");
    int n = 0;

    argv[n++] = kubectl && *kubectl ? kubectl : "kubectl";
    argv[n++] = "--kubeconfig";
    argv[n++] = c->kubeconfig;
    for (; arg; arg = va_arg(ap, const char *)) {
        if (n >= MAX_ARGS + 3)
            return -E2BIG;
        argv[n++] = arg;
    }
    argv[n] = NULL;
    return cloudctl_run(argv, NULL, in, out, err, kh_scale_ms(KUBECTL_TIMEOUT_MS));
}

int cloudctl_kubectl(struct cloudctl *c, const char *in, struct kedge_buf *out,
                     struct kedge_buf *err, const char *arg, ...)
{
    va_list ap;
    int rc;

    va_start(ap, arg);
    rc = kubectl_v(c, in, out, err, arg, ap);
    va_end(ap);
    return rc;
}

int cloudctl_kubectl_json(struct cloudctl *c, struct kedge_jdoc **doc, const char *arg, ...)
{
    struct kedge_buf out = KEDGE_BUF_INIT, err = KEDGE_BUF_INIT;
    va_list ap;
    int rc;

    *doc = NULL;
    va_start(ap, arg);
    rc = kubectl_v(c, NULL, &out, &err, arg, ap);
    va_end(ap);
    if (rc != 0)
        fprintf(stderr, "cloudctl: kubectl %s... ended with %d: %s", arg, rc,
                err.data ? err.data : "\n");
    else
        rc = kedge_json_parse(out.data ? out.data : "", out.len, doc);
    kedge_buf_cleanup(&out);
    kedge_buf_cleanup(&err);
    return rc;
}
