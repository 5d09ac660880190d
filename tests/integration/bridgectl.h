/* bridgectl: the real kedge-bridge binary as a child process of a test.
 *
 * For the integration tests that need the whole chain (broker + plugin from harness.h,
 * kedge-bridge from here, kedge-cloudsim from tests/cloudsim/simctl.h). Each bridge lives in its
 * own temporary directory (`kedge-bridge-XXXXXX` under $TMPDIR or /tmp) holding its generated
 * config (kedge-bridge.conf, always passed with -c, so /etc/kedge is never read), the password
 * file, the outbox and MetaManager databases, its log (stderr, appended across restarts) and,
 * under valgrind, one valgrind log per run.
 *
 * Process model: tests/support/proc.h, as for the broker: fork/exec with PR_SET_PDEATHSIG=SIGKILL
 * (the bridge never outlives a test that died), no inherited descriptors, readiness by a
 * deadline on a log line (never a sleep), stop = SIGTERM and the exit status returned. A watcher
 * (/bin/sh in its own process group) prints the bridge's log to stderr when the test process
 * dies without freeing the bridge (a failed ck_assert _exits), and removes the directory.
 *
 * Environment (the harness's knobs):
 *   KEDGE_TEST_TIMEOUT_SCALE=F  every deadline here is scaled (kh_scale_ms).
 *   KEDGE_VALGRIND=1            run the bridge under valgrind --leak-check=full
 *                               --errors-for-leak-kinds=definite,indirect --error-exitcode=1;
 *                               refused (-ENOTSUP) in the sanitizer tree.
 *   KEDGE_KEEP_TMP=1            keep the directory (its path is printed).
 * Build-time: KEDGE_BRIDGE_PATH (the kedge-bridge binary).
 * Only 127.0.0.1 is ever contacted by what this starts; the config decides the ports.
 */
#ifndef KEDGE_TESTS_BRIDGECTL_H
#define KEDGE_TESTS_BRIDGECTL_H

#include <stdbool.h>
#include <sys/types.h>

/* The line bridgectl_start waits for by default: the plugin accepted the bridge's hello. */
#define BRIDGECTL_READY_LOG "relay: plugin accepted"

struct bridgectl_opts {
    /* "key value" lines for the generated kedge-bridge.conf, NULL-terminated; may be NULL.
     * Written in order after the defaults below, so a line here overrides a default. */
    const char *const *conf;
    /* "key=value" command-line overrides (they win over the file), NULL-terminated; may be
     * NULL. */
    const char *const *args;
    /* Written to <dir>/bridge.password (mode 0600, one line); the config then names it as
     * broker_password_file. NULL: neither (the config must name one). */
    const char *password;
    /* The log line bridgectl_start waits for; NULL: BRIDGECTL_READY_LOG; "": do not wait. */
    const char *ready_log;
    /* "NAME=value" entries added to (or replacing in) the bridge's environment, which is
     * otherwise the test's; NULL-terminated; may be NULL. E.g. KEDGE_BRIDGE_CRASH_AT. */
    const char *const *env;
};

struct bridgectl;

/* Make the directory and the config; nothing is started.
 * Defaults written first: db_path <dir>/bridge.db, meta_db_path <dir>/meta.db, pods_dir
 * <dir>/pods, engine_socket none (no pods unless the test names an engine), dmi_socket
 * <dir>/dmi.sock, and broker_password_file when .password is set.
 * o: borrowed for the call. Returns 0 and *out, -ENOTSUP (valgrind in the ASan tree), -EINVAL
 * (a line with a newline, an env entry without =), -E2BIG (over 48 args), -ENOMEM or -errno. */
int bridgectl_new(const struct bridgectl_opts *o, struct bridgectl **out);

/* Append "key value" to the config (it overrides earlier lines from the next start on).
 * Returns 0, -EINVAL (a newline in it) or -errno. */
int bridgectl_set(struct bridgectl *b, const char *key, const char *value);
int bridgectl_set_long(struct bridgectl *b, const char *key, long value);

struct simctl;

/* Point the bridge at kedge-cloudsim and the broker, with the short settings the suites use:
 * node_name, cloud_host 127.0.0.1, cloud_port and tls_ca_file / tls_cert_file / tls_key_file
 * from sim, broker_host 127.0.0.1, broker_port, keepalive_s 2, backoff_initial_ms 100,
 * backoff_max_ms 1000, cloud_qps 0 (no rate limit), rotate_certificates 0; quick_dead_link adds
 * ping_idle_s 2 and dead_link_s 5 (a dead link is noticed in seconds). Later bridgectl_set
 * lines override any of them. Returns 0 or what bridgectl_set returns. */
int bridgectl_wire_cloudsim(struct bridgectl *b, struct simctl *sim, const char *node,
                            int broker_port, bool quick_dead_link);

/* Start the bridge (again, after a stop or kill) and wait (10 s, scaled) for the ready line
 * in what this process logged. Returns 0; -EBUSY (already running); -ECHILD (it exited: its
 * status is in bridgectl_exit_status, the log on stderr); -ETIMEDOUT (not ready: killed, log on
 * stderr); -errno. */
int bridgectl_start(struct bridgectl *b);

/* SIGTERM and reap, waiting 10 s (scaled). Returns the exit code (0 = clean), 128 + signal,
 * -ETIMEDOUT (SIGKILLed after the deadline) or -ECHILD (not running). The log is dumped to
 * stderr unless the result is 0. */
int bridgectl_stop(struct bridgectl *b);

/* SIGKILL and reap (a crash: nothing is flushed). Returns 0 or -ECHILD. */
int bridgectl_kill9(struct bridgectl *b);

/* Whether it runs; reaps (and records the status of) a bridge that died. */
bool bridgectl_running(struct bridgectl *b);
/* Status of the last run that ended, encoded as bridgectl_stop returns it; -ECHILD if none. */
int bridgectl_exit_status(const struct bridgectl *b);

/* Stop it if running (a non-zero status is printed, not asserted: assert on bridgectl_stop),
 * stop the watcher, remove the directory unless KEDGE_KEEP_TMP=1. NULL is a no-op. */
void bridgectl_free(struct bridgectl *b);

pid_t bridgectl_pid(const struct bridgectl *b); /* 0 when not running */
/* The 127.0.0.1 port of its /metrics and /healthz (metrics_port, a free one). */
int bridgectl_metrics_port(const struct bridgectl *b);
/* Borrowed strings, valid until bridgectl_free. */
const char *bridgectl_dir(const struct bridgectl *b);
const char *bridgectl_db_path(const struct bridgectl *b);
const char *bridgectl_meta_db_path(const struct bridgectl *b);
const char *bridgectl_password_path(const struct bridgectl *b);

/* The log: a mark is its current size; *_from functions look at what was logged after it
 * (0 = the whole log, all runs). */
long bridgectl_log_mark(const struct bridgectl *b);
/* Wait until the log after `from` contains needle. Returns 0 or -ETIMEDOUT. */
int bridgectl_wait_log(struct bridgectl *b, long from, const char *needle, int timeout_ms);
/* Non-overlapping occurrences of needle after `from`. */
int bridgectl_count_log(const struct bridgectl *b, long from, const char *needle);
/* The log after `from`, NUL-terminated, for the caller to free; NULL on error (errno). */
char *bridgectl_log_read(const struct bridgectl *b, long from);
/* The whole log (and the last valgrind log) to stderr. */
void bridgectl_dump_log(const struct bridgectl *b);

#endif
