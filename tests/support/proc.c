/* proc.c: children of a test, stopping and reaping them, and their watcher (proc.h). */
#define _GNU_SOURCE /* execvpe, pipe2 */

#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testsupport.h"

#define POLL_MS 10
#define VALGRIND_SCALE 20

static bool env_is(const char *name, const char *value)
{
    const char *v = getenv(name);

    return v && strcmp(v, value) == 0;
}

/* ---- timing ---------------------------------------------------------------------------------- */

bool kt_valgrind(void)
{
    return env_is("KEDGE_VALGRIND", "1");
}

double kt_timeout_scale(void)
{
    const char *s = getenv("KEDGE_TEST_TIMEOUT_SCALE");
    char *end = NULL;
    double v;

    if (!s || !*s)
        return 1.0;
    v = strtod(s, &end);
    if (end != s && *end == '\0' && v >= 1.0 && v <= 1000.0)
        return v;
    (void)fprintf(stderr, "tests: ignoring KEDGE_TEST_TIMEOUT_SCALE=%s (want 1..1000)\n", s);
    return 1.0;
}

int kt_scale_ms(int ms)
{
    double v = (double)ms * kt_timeout_scale() * (kt_valgrind() ? VALGRIND_SCALE : 1);

    return v > (double)INT_MAX ? INT_MAX : (int)v;
}

void kt_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

void kt_poll_pause(void)
{
    kt_pause_ms(POLL_MS);
}

/* ---- scratch directories ----------------------------------------------------------------------
 */

bool kt_keep_tmp(void)
{
    return env_is("KEDGE_KEEP_TMP", "1");
}

char *kt_scratch_dir(const char *prefix, size_t tmp_max)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = NULL;
    int e;

    if (!tmp || !*tmp || strlen(tmp) > tmp_max)
        tmp = "/tmp";
    if (asprintf(&dir, "%s/%s-XXXXXX", tmp, prefix) < 0) {
        errno = ENOMEM;
        return NULL;
    }
    if (mkdtemp(dir))
        return dir;
    e = errno;
    free(dir);
    errno = e;
    return NULL;
}

void kt_scratch_done(const char *dir, bool one_filesystem, const char *who)
{
    int rc;

    if (!dir || !*dir)
        return;
    if (kt_keep_tmp()) {
        (void)fprintf(stderr, "%s: kept %s\n", who, dir);
        return;
    }
    rc = kt_rmtree(dir, one_filesystem);
    if (rc < 0)
        (void)fprintf(stderr, "%s: cannot remove %s: %s\n", who, dir, strerror(-rc));
}

/* ---- a child process --------------------------------------------------------------------------
 */

static int encode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 255;
}

/* Between fork and exec: only async-signal-safe calls (the test may have threads). */
static void child_exec(const struct kt_spawn *s, char **envp, int null_fd, int log_fd, int err_fd,
                       pid_t parent)
{
    sigset_t none;
    int out_fd = s->stdout_fd > 0 ? s->stdout_fd : log_fd;
    int e_fd = s->stderr_fd > 0 ? s->stderr_fd : err_fd >= 0 ? err_fd : log_fd;
    int in_fd = s->stdin_fd > 0 ? s->stdin_fd : null_fd;

    if (s->own_group)
        (void)setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(127);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(e_fd, 2) < 0)
        _exit(127);
    kt_close_from(3);
    (void)signal(SIGPIPE, SIG_DFL);
    (void)sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    execvpe(s->argv[0], (char *const *)s->argv, envp);
    _exit(127);
}

int kt_proc_spawn(struct kt_proc *p, const struct kt_spawn *s)
{
    const char *log = s->log_path ? s->log_path : "/dev/null";
    char **envp = kt_env_with(s->env);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int err_fd =
        s->err_path ? open(s->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    pid_t parent = getpid(), pid = -1;
    int rc = 0;

    if (p->pid)
        rc = -EBUSY;
    else if (!envp)
        rc = -ENOMEM;
    else if (null_fd < 0 || log_fd < 0 || (s->err_path && err_fd < 0))
        rc = -errno;
    else if ((pid = fork()) < 0)
        rc = -errno;
    else if (pid == 0)
        child_exec(s, envp, null_fd, log_fd, err_fd, parent);
    if (rc == 0) {
        p->pid = pid;
        p->group = s->own_group;
    }
    if (null_fd >= 0)
        (void)close(null_fd);
    if (log_fd >= 0)
        (void)close(log_fd);
    if (err_fd >= 0)
        (void)close(err_fd);
    free(envp);
    return rc;
}

bool kt_proc_reap(struct kt_proc *p, bool block)
{
    int st;
    pid_t r;

    if (!p->pid)
        return true;
    do
        r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return false;
    p->exit_status = r == p->pid ? encode_status(st) : -ECHILD;
    p->pid = 0;
    return true;
}

int kt_proc_wait_exit(struct kt_proc *p, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + timeout_ms;

    while (!kt_proc_reap(p, false)) {
        if (kt_now_ms() >= deadline)
            return -ETIMEDOUT;
        kt_poll_pause();
    }
    return 0;
}

int kt_proc_kill9(struct kt_proc *p)
{
    if (!p->pid)
        return -ECHILD;
    if (kill(p->group ? -p->pid : p->pid, SIGKILL) < 0 && errno != ESRCH)
        return -errno;
    (void)kt_proc_reap(p, true);
    return 0;
}

int kt_proc_stop(struct kt_proc *p, int timeout_ms, const char *who)
{
    if (!p->pid)
        return -ECHILD;
    if (kill(p->pid, SIGTERM) < 0 && errno != ESRCH)
        return -errno;
    if (kt_proc_wait_exit(p, timeout_ms) < 0) {
        (void)fprintf(stderr, "%s: pid %d ignored SIGTERM; killing it\n", who, (int)p->pid);
        (void)kt_proc_kill9(p);
        p->exit_status = -ETIMEDOUT;
    }
    return p->exit_status;
}

int kt_proc_wait_log(struct kt_proc *p, const char *path, long from, const char *needle,
                     int timeout_ms)
{
    int64_t deadline = kt_now_ms() + timeout_ms;

    for (;;) {
        if (kt_file_contains(path, from, needle))
            return 0;
        if (p && kt_proc_reap(p, false))
            return -ECHILD;
        if (kt_now_ms() >= deadline)
            return -ETIMEDOUT;
        kt_poll_pause();
    }
}

bool kt_pid_gone(pid_t pid)
{
    char path[64], line[512];
    const char *p;
    bool zombie = false;
    FILE *f;

    if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
    (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return true;
    if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')')) && p[1] == ' ')
        zombie = p[2] == 'Z';
    (void)fclose(f);
    return zombie;
}

/* ---- run to the end ----------------------------------------------------------------------------
 */

struct capture {
    int fd;
    char *text;
    size_t len;
};

/* Read what is there from c->fd; false at EOF or on an error (the descriptor is done). */
static bool capture_more(struct capture *c)
{
    char buf[4096];
    ssize_t n = read(c->fd, buf, sizeof(buf));
    char *nt;

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    nt = realloc(c->text, c->len + (size_t)n + 1);
    if (!nt)
        return false;
    memcpy(nt + c->len, buf, (size_t)n);
    c->len += (size_t)n;
    nt[c->len] = '\0';
    c->text = nt;
    return true;
}

/* Read both pipes until both are at EOF or the deadline passes. */
static void capture_until(struct capture c[2], int64_t deadline)
{
    bool open_fd[2] = {true, true};

    while ((open_fd[0] || open_fd[1]) && kt_remaining_ms(deadline) > 0) {
        struct pollfd pf[2] = {{open_fd[0] ? c[0].fd : -1, POLLIN, 0},
                               {open_fd[1] ? c[1].fd : -1, POLLIN, 0}};

        if (poll(pf, 2, kt_remaining_ms(deadline)) <= 0)
            continue;
        for (int i = 0; i < 2; i++)
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR))
                open_fd[i] = capture_more(&c[i]);
    }
}

int kt_run(const char *const *argv, int timeout_ms, int *status, char **out, char **err)
{
    int64_t deadline = kt_now_ms() + timeout_ms;
    struct kt_proc p = KT_PROC_INIT;
    struct capture c[2] = {{-1, NULL, 0}, {-1, NULL, 0}};
    int po[2] = {-1, -1}, pe[2] = {-1, -1}, rc = 0;
    struct kt_spawn s = {.argv = argv};

    *status = -1;
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
        rc = -errno;
        goto out;
    }
    s.stdout_fd = po[1];
    s.stderr_fd = pe[1];
    rc = kt_proc_spawn(&p, &s);
    (void)close(po[1]);
    (void)close(pe[1]);
    po[1] = pe[1] = -1;
    if (rc < 0)
        goto out;
    c[0].fd = po[0];
    c[1].fd = pe[0];
    capture_until(c, deadline);
    if (kt_proc_wait_exit(&p, kt_remaining_ms(deadline)) < 0)
        (void)kt_proc_kill9(&p);
    else
        *status = p.exit_status;
out:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            (void)close(po[i]);
        if (pe[i] >= 0)
            (void)close(pe[i]);
    }
    if (rc == 0 && out && !c[0].text)
        c[0].text = calloc(1, 1);
    if (rc == 0 && err && !c[1].text)
        c[1].text = calloc(1, 1);
    if (rc == 0 && ((out && !c[0].text) || (err && !c[1].text)))
        rc = -ENOMEM;
    if (rc == 0 && out) {
        *out = c[0].text;
        c[0].text = NULL;
    }
    if (rc == 0 && err) {
        *err = c[1].text;
        c[1].text = NULL;
    }
    free(c[0].text);
    free(c[1].text);
    return rc;
}

/* ---- the watcher ------------------------------------------------------------------------------
 */

int kt_watcher_start(struct kt_watcher *w, const char *script, const char *name,
                     const char *const *args)
{
    const char *argv[16] = {"sh", "-c", script, name};
    size_t n = 4;
    int fds[2];
    pid_t pid;

    for (; args && *args && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int e = errno;
        (void)close(fds[0]);
        (void)close(fds[1]);
        return -e;
    }
    if (pid == 0) {
        (void)setpgid(0, 0); /* Check killpg()s the test's group: the watcher must outlive it */
        if (dup2(fds[0], STDIN_FILENO) < 0)
            _exit(127);
        kt_close_from(3);
        execv("/bin/sh", (char *const *)argv);
        _exit(127);
    }
    (void)close(fds[0]);
    w->fd = fds[1];
    w->pid = pid;
    return 0;
}

void kt_watcher_say(const struct kt_watcher *w, const char *line)
{
    if (w->fd >= 0 && write(w->fd, line, strlen(line)) < 0)
        (void)0; /* EPIPE: the watcher is gone; nothing is left for it to clean up */
}

void kt_watcher_stop(struct kt_watcher *w)
{
    if (w->fd >= 0) {
        kt_watcher_say(w, "ok\n");
        (void)close(w->fd);
        w->fd = -1;
    }
    if (w->pid > 0) {
        while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        w->pid = 0;
    }
}
