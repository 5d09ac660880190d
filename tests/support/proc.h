/* proc: a child process of a test, and the watcher that reports a test that died with one.
 *
 * The one process helper behind every program a test starts: mosquitto (harness.c),
 * kedge-bridge (bridgectl.c), kedge-cloudsim (simctl.c), scripts/engine.sh (enginectl.c) and the
 * short-lived tools (kedge-ctl, kedge-bridge join). Each of those owns its directory, its
 * arguments and what "ready" means; this owns fork/exec, waiting with deadlines, stopping and
 * reaping.
 *
 * A child gets PR_SET_PDEATHSIG=SIGKILL (it never outlives a test that died: a failed ck_assert
 * _exits the test's process), stdin from /dev/null (or a pipe the test writes), no inherited
 * descriptor above stderr (a child holding a test client's socket would keep that connection alive
 * after the client "crashed"), SIGPIPE at its default and an empty signal mask. Its exit is encoded
 * as the helpers report it: the exit code, 128 + the signal that ended it, or a -errno of our own.
 *
 * Waits are deadline loops on a condition; the only pause is kt_poll_pause between two polls.
 */
#ifndef KEDGE_TESTS_PROC_H
#define KEDGE_TESTS_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* ---- timing ---------------------------------------------------------------------------------- */

/* Whether KEDGE_VALGRIND=1: the helpers run their program under valgrind. */
bool kt_valgrind(void);
/* KEDGE_TEST_TIMEOUT_SCALE (1..1000; anything else is ignored with a note on stderr), 1 when
 * unset. */
double kt_timeout_scale(void);
/* ms scaled by kt_timeout_scale and, under KEDGE_VALGRIND=1, by a further 20. */
int kt_scale_ms(int ms);
/* Between two polls of a deadline loop: 10 ms, or ms. */
void kt_poll_pause(void);
void kt_pause_ms(int ms);

/* ---- scratch directories ----------------------------------------------------------------------
 */

/* Whether KEDGE_KEEP_TMP=1: scratch directories stay (their paths are printed). */
bool kt_keep_tmp(void);
/* mkdtemp "<$TMPDIR or /tmp>/<prefix>-XXXXXX" (a $TMPDIR longer than tmp_max characters is
 * ignored: a unix socket path must fit in it). Returns the malloc'd path, or NULL (errno). */
char *kt_scratch_dir(const char *prefix, size_t tmp_max);
/* Remove dir (see kt_rmtree) unless KEDGE_KEEP_TMP=1, which prints "<who>: kept <dir>"; a
 * failure is printed, not returned. NULL is a no-op. */
void kt_scratch_done(const char *dir, bool one_filesystem, const char *who);

/* ---- a child process --------------------------------------------------------------------------
 */

struct kt_proc {
    pid_t pid;       /* 0 when not running */
    int exit_status; /* of the last run that ended (see above); -ECHILD before the first */
    bool group;      /* it leads its own process group: killed as a group */
};

/* A kt_proc that has not run yet. */
#define KT_PROC_INIT                                                                               \
    {                                                                                              \
        0, -ECHILD, false                                                                          \
    }

struct kt_spawn {
    const char *const *argv; /* argv[0] is looked up in PATH */
    /* "NAME=value" entries over the test's environment (each replaces an entry of that NAME),
     * NULL-terminated; NULL: the test's environment as it is. */
    const char *const *env;
    /* stdout and stderr appended to this file (made 0644 if missing); NULL: /dev/null. */
    const char *log_path;
    /* stderr to this file instead, truncated; NULL: with stdout. */
    const char *err_path;
    /* > 0: stdout, stderr are this descriptor (a pipe's write end) instead of the log. */
    int stdout_fd, stderr_fd;
    /* > 0: stdin is this descriptor (a pipe's read end: a child driven by lines, such as
     * tests/dmi's mappers) instead of /dev/null. */
    int stdin_fd;
    /* Its own process group (a script whose children must die with it on a deadline). */
    bool own_group;
};

/* Fork and exec. p must not be running. Returns 0 (p->pid set) or -errno; an exec failure
 * shows as exit status 127. */
int kt_proc_spawn(struct kt_proc *p, const struct kt_spawn *s);
/* Reap p if it has ended, recording its exit status. Returns true when it is not running. */
bool kt_proc_reap(struct kt_proc *p, bool block);
/* Wait until p has ended, up to timeout_ms (not scaled: the caller's deadline). Returns 0 (the
 * status is in p->exit_status) or -ETIMEDOUT (it still runs). */
int kt_proc_wait_exit(struct kt_proc *p, int timeout_ms);
/* SIGKILL p (its group when it has one) and reap it: a crash, nothing is flushed. Returns 0 or
 * -ECHILD when it was not running. */
int kt_proc_kill9(struct kt_proc *p);
/* SIGTERM p and reap it within timeout_ms (not scaled); past that, SIGKILL, a note on stderr
 * naming `who`, and -ETIMEDOUT recorded as its exit status. Returns its exit status, or -ECHILD
 * when it was not running. */
int kt_proc_stop(struct kt_proc *p, int timeout_ms, const char *who);
/* Wait until the file at path, from byte `from` on, contains needle. Returns 0; -ECHILD when p
 * exits first (p may be NULL: no such check); -ETIMEDOUT after timeout_ms (not scaled). */
int kt_proc_wait_log(struct kt_proc *p, const char *path, long from, const char *needle,
                     int timeout_ms);

/* Whether a process that is not our child (a daemon a script started) is gone: no such pid, or
 * a zombie its parent has not reaped yet. */
bool kt_pid_gone(pid_t pid);

/* Run a program to its end: stdout and stderr captured (malloc'd, NUL-terminated; free them),
 * killed at timeout_ms (not scaled). Returns 0 and *status (exit code, 128 + signal, -1 when it
 * was killed on the deadline), or -errno (nothing to free then). out or err may be NULL. */
int kt_run(const char *const *argv, int timeout_ms, int *status, char **out, char **err);

/* ---- the watcher ------------------------------------------------------------------------------
 */

/* A /bin/sh script in its own process group (Check killpg()s the test's group; the watcher must
 * outlive it) reading, on its stdin, a pipe whose only write end the test holds. EOF without an
 * "ok" line means the test process died without freeing what it started: the script then shows
 * its logs and cleans up. */
struct kt_watcher {
    pid_t pid; /* 0 when none */
    int fd;    /* the pipe's write end; -1 when none */
};

#define KT_WATCHER_INIT                                                                            \
    {                                                                                              \
        0, -1                                                                                      \
    }

/* Start script with $0 = name and $1.. = args (NULL-terminated). Returns 0 or -errno. */
int kt_watcher_start(struct kt_watcher *w, const char *script, const char *name,
                     const char *const *args);
/* Send one line ("dumped\n", "fresh\n" ...). A watcher that is gone is not an error. */
void kt_watcher_say(const struct kt_watcher *w, const char *line);
/* Send "ok", close the pipe and reap the watcher. No-op when none runs. */
void kt_watcher_stop(struct kt_watcher *w);

#endif
