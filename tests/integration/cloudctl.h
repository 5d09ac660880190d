/* cloudctl: a REAL KubeEdge cloud for a test binary, and kubectl to observe it.
 *
 * For the `real-cloud` tier (test_realcloud.c). cloudctl_start runs the shared cloud's up.sh
 * (KEDGE_CLOUDCORE_DIR/up.sh: etcd, kube-apiserver 1.24, kube-controller-manager,
 * kube-scheduler and cloudcore v1.15.4, all on 127.0.0.1) with CC_RUN = a fresh directory
 * (`kedge-cc-XXXXXX` under $TMPDIR or /tmp), then reads the env.sh it writes (KUBECONFIG,
 * CC_TOKEN, ports, PIDs). kubectl runs with --kubeconfig of that instance; its stdout and exit
 * status come back to the test, JSON is parsed with the project's parser (kedge/json.h).
 *
 * The daemons are not children of the test (up.sh detaches them), so they cannot die with it.
 * A watcher (/bin/sh in its own process group, reading a pipe only the test holds) sees EOF
 * when the test process dies without cloudctl_free (a crash, a Check timeout), prints the tail
 * of cloudcore's log and runs `down.sh --purge` for that instance. cloudctl_free does the same
 * in order and ends the watcher.
 *
 * Environment:
 *   KEDGE_TEST_TIMEOUT_SCALE=F  deadlines here are scaled (kh_scale_ms).
 *   KEDGE_KEEP_TMP=1            down.sh without --purge: the run dir (logs, etcd) is kept and
 *                               its path printed.
 *   KUBECTL                     kubectl binary (default: kubectl in PATH; up.sh uses it too).
 * Only 127.0.0.1 is contacted by anything this starts.
 */
#ifndef KEDGE_TESTS_CLOUDCTL_H
#define KEDGE_TESTS_CLOUDCTL_H

#include <stdbool.h>
#include <sys/types.h>

#include "kedge/buf.h"
#include "kedge/json.h"

struct cloudctl;

/* Whether dir holds the shared cloud (up.sh and down.sh, executable). When not, why is set
 * to a reason for a skip message. */
bool cloudctl_available(const char *dir, char *why, size_t why_len);

/* Start an instance of the cloud in dir (the cloudcore folder) and wait for up.sh (5 min,
 * scaled: a first run decompresses the binaries). Returns 0 and *out; -ECHILD (up.sh failed:
 * its output is on stderr, what it started is stopped again); -ETIMEDOUT; -EBADMSG (no usable
 * env.sh); -ENOMEM or -errno. */
int cloudctl_start(const char *dir, struct cloudctl **out);

/* Stop cloudcore alone (SIGTERM to CC_PID_CLOUDCORE, SIGKILL after 10 s), the rest of the
 * cloud keeps running. Returns 0 when the process is gone, -ESRCH when it was not running,
 * -ETIMEDOUT, -errno. */
int cloudctl_stop_cloudcore(struct cloudctl *c);

/* Run up.sh again, which starts only what is not running (so: cloudcore), and re-read env.sh
 * (a new PID and token). Returns as cloudctl_start. */
int cloudctl_start_cloudcore(struct cloudctl *c);

/* Whether CC_PID_CLOUDCORE exists and is not a zombie. */
bool cloudctl_cloudcore_running(const struct cloudctl *c);

/* down.sh --purge (without --purge under KEDGE_KEEP_TMP=1). Returns its exit status (0 =
 * everything stopped), -ETIMEDOUT or -errno. Idempotent. */
int cloudctl_down(struct cloudctl *c);

/* cloudctl_down unless done, end the watcher, free. NULL is a no-op. */
void cloudctl_free(struct cloudctl *c);

/* A value from env.sh ("CC_TOKEN", "CC_WS_PORT", "KUBECONFIG", ...), borrowed until the next
 * cloudctl_start_cloudcore; NULL when absent. */
const char *cloudctl_env(const struct cloudctl *c, const char *name);
/* The same as a number; -1 when absent or not a number. */
long cloudctl_env_long(const struct cloudctl *c, const char *name);
/* The instance directory (CC_RUN); borrowed. */
const char *cloudctl_run_dir(const struct cloudctl *c);
/* The tail (last `lines` lines) of $CC_RUN/logs/<name>.log to stderr. */
void cloudctl_dump_log(const struct cloudctl *c, const char *name, int lines);

/* $CC_RUN/logs/<name>.log: its size now (a mark; 0 when absent), and its text from a mark
 * (kedge_malloc'd, free with kedge_free; NULL when unreadable). up.sh truncates a log when it
 * restarts that daemon. */
long cloudctl_log_size(const struct cloudctl *c, const char *name);
char *cloudctl_log_read(const struct cloudctl *c, const char *name, long from);

/* kubectl --kubeconfig <instance> args... (NULL-terminated), waiting 60 s (scaled).
 * in: written to its stdin (for `apply -f -`), NULL for none. out, err: stdout and stderr are
 * appended (NUL-terminated), each may be NULL (then discarded).
 * Returns kubectl's exit status (0..255), 128 + signal, -ETIMEDOUT (killed) or -errno. */
int cloudctl_kubectl(struct cloudctl *c, const char *in, struct kedge_buf *out,
                     struct kedge_buf *err, const char *arg, ...) __attribute__((sentinel));

/* kubectl ... with its stdout parsed as JSON (add `-o json` to args yourself).
 * Returns 0 and *doc (free with kedge_jdoc_free); kubectl's non-zero status (its stderr is
 * printed); KEDGE_EPARSE; -errno. */
int cloudctl_kubectl_json(struct cloudctl *c, struct kedge_jdoc **doc, const char *arg, ...)
    __attribute__((sentinel));

/* Run argv (argv[0] a path or a name in PATH) with env_extra ("NAME=value", NULL-terminated,
 * may be NULL) added to the environment, in written to stdin, stdout/stderr appended to out/err
 * (NULL: discarded), waiting timeout_ms (not scaled here). Returns as cloudctl_kubectl. */
int cloudctl_run(const char *const *argv, const char *const *env_extra, const char *in,
                 struct kedge_buf *out, struct kedge_buf *err, int timeout_ms);

#endif
