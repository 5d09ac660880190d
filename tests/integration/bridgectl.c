/* bridgectl.c: a kedge-bridge child process for integration tests (bridgectl.h).
 *
 * Owns one bridge's directory, generated config, process lifecycle (fork/exec, readiness,
 * stop/kill, exit status), log reading and the watcher that reports a test that died with the
 * bridge running. What the bridge does is the bridge's business; what a test asserts, the
 * test's. Waits are deadline loops on a condition; the only pause is between two polls.
 */
#define _GNU_SOURCE /* asprintf, close_range, execvpe, pipe2 */

#include "bridgectl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "testsupport.h"

#ifndef KEDGE_BRIDGE_PATH
#error "KEDGE_BRIDGE_PATH must be defined (tests/integration/CMakeLists.txt)"
#endif

#define READY_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000
#define POLL_MS 10
#define MAX_ARGS 64

extern char **environ;

struct bridgectl {
    char *dir, *conf_path, *log_path, *db_path, *meta_path, *pw_path;
    char *ready_log;
    char **args; /* command-line overrides, NULL-terminated */
    size_t n_args;
    char **env; /* extra environment, NULL-terminated */
    size_t n_env;
    pid_t pid;       /* 0 when not running */
    int exit_status; /* of the last run that ended; -ECHILD before */
    unsigned runs;   /* starts so far: names the valgrind log of each run */
    bool valgrind;
    pid_t watcher_pid; /* 0 when none */
    int watcher_fd;    /* write end of the watcher's pipe; -1 when none */
};

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* Between two polls of a deadline loop. */
static void poll_pause(void)
{
    struct timespec ts = {0, POLL_MS * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool env_is(const char *name, const char *value)
{
    const char *v = getenv(name);

    return v && strcmp(v, value) == 0;
}

static bool asan_tree(void)
{
#ifdef KEDGE_ASAN_PRELOAD
    return true;
#else
    return false;
#endif
}

/* ---- files ----------------------------------------------------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;

    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

static long file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static char *read_from(const char *path, long offset)
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

static void copy_to_stderr(const char *path, const char *what)
{
    char *text = read_from(path, 0);

    if (text && *text)
        say("----- %s (%s) -----\n%s%s----- end of %s -----\n", what, path, text,
            text[strlen(text) - 1] == '\n' ? "" : "\n", what);
    free(text);
}

static int append_text(const char *path, const char *text, mode_t mode)
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

static char *valgrind_log_path(const struct bridgectl *b, unsigned run)
{
    char name[64];

    (void)snprintf(name, sizeof(name), "valgrind-%u.log", run);
    return path_join(b->dir, name);
}

void bridgectl_dump_log(const struct bridgectl *b)
{
    copy_to_stderr(b->log_path, "kedge-bridge log");
    if (b->valgrind && b->runs) {
        char *vg = valgrind_log_path(b, b->runs);
        if (vg)
            copy_to_stderr(vg, "kedge-bridge valgrind log");
        free(vg);
    }
}

/* ---- the watcher ----------------------------------------------------------------------------- */

static void watcher_say(const struct bridgectl *b, const char *line)
{
    if (b->watcher_fd >= 0 && write(b->watcher_fd, line, strlen(line)) < 0)
        (void)0; /* EPIPE: the watcher is gone; nothing to report to it */
}

/* $1 = directory, $2 = rm|keep; fd 3 = the pipe from the test process. Lines: "ok" (the test
 * freed the bridge), "dumped" / "fresh" (whether the log is on stderr already). EOF without
 * "ok" means the test process died. */
static const char watcher_script[] =
    "dumped=no\n"
    "while IFS= read -r line <&3; do\n"
    "  case $line in ok) exit 0;; dumped) dumped=yes;; fresh) dumped=no;; esac\n"
    "done\n"
    "if [ $dumped = no ]; then\n"
    "  echo \"bridgectl: the test died with its bridge set up; files from $1:\" >&2\n"
    "  for f in \"$1\"/bridge.log \"$1\"/valgrind-*.log; do\n"
    "    if [ -s \"$f\" ]; then echo \"----- $f -----\" >&2; cat \"$f\" >&2; fi\n"
    "  done\n"
    "  echo \"----- end of bridgectl files -----\" >&2\n"
    "fi\n"
    "if [ \"$2\" = rm ]; then rm -rf -- \"$1\"; else echo \"bridgectl: kept $1\" >&2; fi\n";

static int spawn_watcher(struct bridgectl *b, bool remove)
{
    int p[2];
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int e = errno;
        (void)close(p[0]);
        (void)close(p[1]);
        return -e;
    }
    if (pid == 0) {
        (void)setpgid(0, 0); /* Check killpg()s the test's group; the watcher must outlive it */
        if (p[0] == 3) {
            if (fcntl(3, F_SETFD, 0) < 0)
                _exit(127);
        } else if (dup2(p[0], 3) < 0) {
            _exit(127);
        }
        (void)close_range(4, ~0U, 0);
        execl("/bin/sh", "sh", "-c", watcher_script, "kedge-bridgectl-watcher", b->dir,
              remove ? "rm" : "keep", (char *)NULL);
        _exit(127);
    }
    (void)close(p[0]);
    b->watcher_fd = p[1];
    b->watcher_pid = pid;
    return 0;
}

static void stop_watcher(struct bridgectl *b)
{
    if (b->watcher_fd >= 0) {
        watcher_say(b, "ok\n");
        (void)close(b->watcher_fd);
        b->watcher_fd = -1;
    }
    if (b->watcher_pid > 0) {
        while (waitpid(b->watcher_pid, NULL, 0) < 0 && errno == EINTR)
            ;
        b->watcher_pid = 0;
    }
}

/* ---- setup ----------------------------------------------------------------------------------- */

static void release(struct bridgectl *b)
{
    size_t i;

    for (i = 0; b->args && i < b->n_args; i++)
        free(b->args[i]);
    free(b->args);
    for (i = 0; b->env && i < b->n_env; i++)
        free(b->env[i]);
    free(b->env);
    free(b->dir);
    free(b->conf_path);
    free(b->log_path);
    free(b->db_path);
    free(b->meta_path);
    free(b->pw_path);
    free(b->ready_log);
    free(b);
}

static bool keep_tmp(void)
{
    return env_is("KEDGE_KEEP_TMP", "1");
}

int bridgectl_set(struct bridgectl *b, const char *key, const char *value)
{
    char *line = NULL;
    int rc;

    if (strchr(key, '\n') || strchr(value, '\n') || strchr(key, ' '))
        return -EINVAL;
    if (asprintf(&line, "%s %s\n", key, value) < 0)
        return -ENOMEM;
    rc = append_text(b->conf_path, line, 0600);
    free(line);
    return rc;
}

int bridgectl_set_long(struct bridgectl *b, const char *key, long value)
{
    char v[32];

    (void)snprintf(v, sizeof(v), "%ld", value);
    return bridgectl_set(b, key, v);
}

static int write_config(struct bridgectl *b, const struct bridgectl_opts *o)
{
    const char *const *l;
    int rc;

    rc = append_text(b->conf_path, "# Written by tests/integration/bridgectl.c; later lines win.\n",
                     0600);
    if (rc == 0)
        rc = bridgectl_set(b, "db_path", b->db_path);
    if (rc == 0)
        rc = bridgectl_set(b, "meta_db_path", b->meta_path);
    if (rc == 0) { /* no container engine unless a test names one; pod volumes stay inside */
        char *pods = NULL;
        rc = asprintf(&pods, "%s/pods", b->dir) < 0 ? -ENOMEM : 0;
        if (rc == 0)
            rc = bridgectl_set(b, "pods_dir", pods);
        free(pods);
    }
    if (rc == 0)
        rc = bridgectl_set(b, "engine_socket", "none");
    if (rc == 0 && o->password) {
        char *pw = NULL;
        if (strchr(o->password, '\n') || asprintf(&pw, "%s\n", o->password) < 0)
            return -EINVAL;
        rc = append_text(b->pw_path, pw, 0600);
        free(pw);
        if (rc == 0)
            rc = bridgectl_set(b, "broker_password_file", b->pw_path);
    }
    for (l = o->conf; rc == 0 && l && *l; l++) {
        char *line = NULL;
        if (strchr(*l, '\n'))
            return -EINVAL;
        if (asprintf(&line, "%s\n", *l) < 0)
            return -ENOMEM;
        rc = append_text(b->conf_path, line, 0600);
        free(line);
    }
    return rc;
}

int bridgectl_new(const struct bridgectl_opts *o, struct bridgectl **out)
{
    static const struct bridgectl_opts none;
    const char *tmp = getenv("TMPDIR");
    struct bridgectl *b;
    const char *const *a;
    int rc;

    *out = NULL;
    if (!o)
        o = &none;
    if (env_is("KEDGE_VALGRIND", "1") && asan_tree()) {
        say("bridgectl: KEDGE_VALGRIND=1 needs the normal build, not the ASan one\n");
        return -ENOTSUP;
    }
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->exit_status = -ECHILD;
    b->watcher_fd = -1;
    b->valgrind = env_is("KEDGE_VALGRIND", "1");
    if (asprintf(&b->dir, "%s/kedge-bridge-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) {
        b->dir = NULL;
        release(b);
        return -ENOMEM;
    }
    if (!mkdtemp(b->dir)) {
        rc = -errno;
        release(b);
        return rc;
    }
    b->conf_path = path_join(b->dir, "kedge-bridge.conf");
    b->log_path = path_join(b->dir, "bridge.log");
    b->db_path = path_join(b->dir, "bridge.db");
    b->meta_path = path_join(b->dir, "meta.db");
    b->pw_path = path_join(b->dir, "bridge.password");
    b->ready_log = strdup(o->ready_log ? o->ready_log : BRIDGECTL_READY_LOG);
    for (a = o->args; a && *a; a++)
        b->n_args++;
    for (a = o->env; a && *a; a++)
        b->n_env++;
    b->args = calloc(b->n_args + 1, sizeof(*b->args));
    b->env = calloc(b->n_env + 1, sizeof(*b->env));
    rc = b->n_args > MAX_ARGS - 16 ? -E2BIG : -ENOMEM;
    if (!b->conf_path || !b->log_path || !b->db_path || !b->meta_path || !b->pw_path ||
        !b->ready_log || !b->args || !b->env || rc == -E2BIG)
        goto fail;
    for (size_t i = 0; o->args && i < b->n_args; i++)
        if (!(b->args[i] = strdup(o->args[i])))
            goto fail;
    for (size_t i = 0; o->env && i < b->n_env; i++) {
        rc = strchr(o->env[i], '=') ? -ENOMEM : -EINVAL;
        if (rc == -EINVAL || !(b->env[i] = strdup(o->env[i])))
            goto fail;
    }
    rc = write_config(b, o);
    if (rc == 0)
        rc = spawn_watcher(b, !keep_tmp());
    if (rc < 0)
        goto fail;
    *out = b;
    return 0;
fail:
    (void)kh_rmtree(b->dir);
    release(b);
    return rc;
}

/* ---- the process ----------------------------------------------------------------------------- */

static int encode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 255;
}

/* Reap the bridge if it has ended. Returns true when it is not running. */
static bool reap(struct bridgectl *b, bool block)
{
    int st;
    pid_t r;

    if (!b->pid)
        return true;
    do
        r = waitpid(b->pid, &st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return false;
    b->exit_status = r == b->pid ? encode_status(st) : -ECHILD;
    b->pid = 0;
    return true;
}

static int spawn(struct bridgectl *b)
{
    const char *argv[MAX_ARGS];
    char *vg_arg = NULL, *vg_path = NULL, banner[96], **envp = NULL;
    int argc = 0, log_fd = -1, null_fd = -1, rc = 0;
    pid_t parent = getpid(), pid;
    size_t i;

    b->runs++;
    if (b->valgrind) {
        vg_path = valgrind_log_path(b, b->runs);
        if (!vg_path || asprintf(&vg_arg, "--log-file=%s", vg_path) < 0) {
            free(vg_path);
            return -ENOMEM;
        }
        argv[argc++] = "valgrind";
        argv[argc++] = "--leak-check=full";
        argv[argc++] = "--show-leak-kinds=definite,indirect";
        argv[argc++] = "--errors-for-leak-kinds=definite,indirect";
        argv[argc++] = "--error-exitcode=1";
        argv[argc++] = "--num-callers=30";
        argv[argc++] = vg_arg;
    }
    argv[argc++] = KEDGE_BRIDGE_PATH;
    argv[argc++] = "-c";
    argv[argc++] = b->conf_path;
    for (i = 0; i < b->n_args; i++)
        argv[argc++] = b->args[i];
    argv[argc] = NULL;

    /* a banner between runs makes a dumped log readable */
    (void)snprintf(banner, sizeof(banner), "==== bridgectl: run %u ====\n", b->runs);
    rc = append_text(b->log_path, banner, 0644);
    if (rc < 0)
        goto out;
    envp = kt_env_with((const char *const *)b->env);
    if (!envp) {
        rc = -ENOMEM;
        goto out;
    }
    log_fd = open(b->log_path, O_WRONLY | O_APPEND | O_CLOEXEC);
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0) {
        rc = -errno;
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto out;
    }
    if (pid == 0) {
        sigset_t none;

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(127);
        if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
            _exit(127);
        (void)close_range(3, ~0U, 0); /* no test client's socket may live on in the bridge */
        (void)signal(SIGPIPE, SIG_DFL);
        (void)sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        execvpe(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    b->pid = pid;
    watcher_say(b, "fresh\n");
out:
    if (log_fd >= 0)
        (void)close(log_fd);
    if (null_fd >= 0)
        (void)close(null_fd);
    free(envp);
    free(vg_arg);
    free(vg_path);
    return rc;
}

int bridgectl_start(struct bridgectl *b)
{
    int64_t deadline;
    long from;
    int rc;

    if (b->pid && !reap(b, false))
        return -EBUSY;
    rc = spawn(b);
    if (rc < 0)
        return rc;
    from = file_size(b->log_path); /* after the banner: this run's lines only */
    if (!*b->ready_log)
        return 0;
    deadline = kt_now_ms() + kh_scale_ms(READY_TIMEOUT_MS);
    for (;;) {
        char *log = read_from(b->log_path, from);
        bool ready = log && strstr(log, b->ready_log);

        free(log);
        if (ready)
            return 0;
        if (reap(b, false)) {
            say("bridgectl: kedge-bridge exited during start-up with status %d\n", b->exit_status);
            bridgectl_dump_log(b);
            watcher_say(b, "dumped\n");
            return -ECHILD;
        }
        if (kt_now_ms() >= deadline) {
            say("bridgectl: kedge-bridge did not log '%s' in time; killing it\n", b->ready_log);
            (void)kill(b->pid, SIGKILL);
            (void)reap(b, true);
            bridgectl_dump_log(b);
            watcher_say(b, "dumped\n");
            return -ETIMEDOUT;
        }
        poll_pause();
    }
}

int bridgectl_stop(struct bridgectl *b)
{
    int64_t deadline;

    if (!b->pid)
        return -ECHILD;
    if (kill(b->pid, SIGTERM) < 0 && errno != ESRCH)
        return -errno;
    deadline = kt_now_ms() + kh_scale_ms(STOP_TIMEOUT_MS);
    while (!reap(b, false)) {
        if (kt_now_ms() >= deadline) {
            say("bridgectl: kedge-bridge pid %d ignored SIGTERM; killing it\n", (int)b->pid);
            (void)kill(b->pid, SIGKILL);
            (void)reap(b, true);
            b->exit_status = -ETIMEDOUT;
            break;
        }
        poll_pause();
    }
    if (b->exit_status != 0) {
        say("bridgectl: kedge-bridge stopped with status %d\n", b->exit_status);
        bridgectl_dump_log(b);
        watcher_say(b, "dumped\n");
    }
    return b->exit_status;
}

int bridgectl_kill9(struct bridgectl *b)
{
    if (!b->pid)
        return -ECHILD;
    if (kill(b->pid, SIGKILL) < 0 && errno != ESRCH)
        return -errno;
    (void)reap(b, true);
    return 0;
}

bool bridgectl_running(struct bridgectl *b)
{
    return !reap(b, false);
}

int bridgectl_exit_status(const struct bridgectl *b)
{
    return b->exit_status;
}

void bridgectl_free(struct bridgectl *b)
{
    if (!b)
        return;
    if (b->pid) {
        int st = bridgectl_stop(b);
        if (st != 0)
            say("bridgectl: bridgectl_free: kedge-bridge exited with status %d\n", st);
    }
    stop_watcher(b);
    if (keep_tmp()) {
        say("bridgectl: kept %s\n", b->dir);
    } else {
        int rc = kh_rmtree(b->dir);
        if (rc < 0)
            say("bridgectl: cannot remove %s: %s\n", b->dir, strerror(-rc));
    }
    release(b);
}

/* ---- accessors, the log ---------------------------------------------------------------------- */

pid_t bridgectl_pid(const struct bridgectl *b)
{
    return b->pid;
}

const char *bridgectl_dir(const struct bridgectl *b)
{
    return b->dir;
}

const char *bridgectl_db_path(const struct bridgectl *b)
{
    return b->db_path;
}

const char *bridgectl_meta_db_path(const struct bridgectl *b)
{
    return b->meta_path;
}

const char *bridgectl_password_path(const struct bridgectl *b)
{
    return b->pw_path;
}

long bridgectl_log_mark(const struct bridgectl *b)
{
    return file_size(b->log_path);
}

char *bridgectl_log_read(const struct bridgectl *b, long from)
{
    return read_from(b->log_path, from);
}

int bridgectl_count_log(const struct bridgectl *b, long from, const char *needle)
{
    char *log = read_from(b->log_path, from);
    size_t n = strlen(needle);
    int count = 0;

    for (const char *p = log && n ? strstr(log, needle) : NULL; p; p = strstr(p + n, needle))
        count++;
    free(log);
    return count;
}

int bridgectl_wait_log(struct bridgectl *b, long from, const char *needle, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);

    for (;;) {
        if (bridgectl_count_log(b, from, needle) > 0)
            return 0;
        if (kt_now_ms() >= deadline)
            return -ETIMEDOUT;
        poll_pause();
    }
}
