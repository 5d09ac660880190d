/* simctl: start a real kedge-cloudsim process for a test and call its control API.
 *
 * For any test that needs a cloud (tests/cloudsim/, the integration suites, the bridge's
 * tests). A started cloudsim lives in its own temporary directory (`kedge-cloudsim-XXXXXX` under
 * $TMPDIR or /tmp) holding its certificates (unless the test names a directory), its log
 * (stderr) and, under valgrind, valgrind's log. Readiness is the ready line on its stdout,
 * awaited with a deadline, never a sleep. The process gets PR_SET_PDEATHSIG, so a test that dies
 * takes it along. Only 127.0.0.1 is ever contacted.
 *
 * Environment (the same knobs as tests/integration/harness.h):
 *   KEDGE_TEST_TIMEOUT_SCALE=F  multiply every deadline by F (default 1).
 *   KEDGE_VALGRIND=1            run cloudsim under valgrind --leak-check=full --error-exitcode=1
 *                               (any error or definite/possible leak makes simctl_stop report
 *                               1); deadlines are scaled by a further 20.
 *   KEDGE_KEEP_TMP=1            keep the temporary directory (its path is printed).
 */
#ifndef KEDGE_SIMCTL_H
#define KEDGE_SIMCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kedge/buf.h"
#include "kedge/json.h"

struct simctl_opts {
    const char *certs_dir;         /* NULL: <tmpdir>/certs, made by cloudsim */
    const char *node;              /* --node for the edge certificate; NULL: cloudsim's default */
    long keepalive_timeout_s;      /* 0: cloudsim's default (30) */
    long resend_interval_s;        /* 0: cloudsim's default (5) */
    const char *log_level;         /* NULL: "info" */
    const char *cloud_version;     /* --cloud-version MAJOR.MINOR; NULL: cloudsim's (1.15) */
    const char *const *extra_args; /* more arguments, NULL-terminated; may be NULL */
};

struct simctl;

/* Scale a deadline (ms) as described above. */
int simctl_scale_ms(int ms);

/* Start cloudsim and wait (10 s, scaled) for its ready line.
 * o: borrowed for the call; NULL = all defaults.
 * Returns 0 and *out, or -ECHILD (it exited; its log is on stderr), -ETIMEDOUT (killed), -errno.
 */
int simctl_start(const struct simctl_opts *o, struct simctl **out);

/* SIGTERM and reap, waiting 10 s (scaled). Returns the exit code (0 = clean), 128 + signal,
 * -ETIMEDOUT (SIGKILLed after the deadline) or -ECHILD (not running). The log is copied to
 * stderr unless the result is 0. */
int simctl_stop(struct simctl *s);

/* SIGKILL if still running, reap, remove the temporary directory (unless KEDGE_KEEP_TMP).
 * NULL is a no-op. */
void simctl_free(struct simctl *s);

int simctl_wss_port(const struct simctl *s);
int simctl_control_port(const struct simctl *s);
/* The certificate service's port (--https-port P in extra_args), 0 when it is off. */
int simctl_https_port(const struct simctl *s);
/* CloudStream: the tunnel the edge opens, and the stream server a test calls as the API server
 * would (plain HTTP on 127.0.0.1; tests/cloudsim/README.md). */
int simctl_tunnel_port(const struct simctl *s);
int simctl_stream_port(const struct simctl *s);
pid_t simctl_pid(const struct simctl *s);
/* A file in the certificate directory ("rootCA.crt", "edge.crt", "edge.key", ...): a path
 * owned by s, valid until the next call or simctl_free. */
const char *simctl_cert_path(struct simctl *s, const char *name);
/* The temporary directory (owned by s). */
const char *simctl_dir(const struct simctl *s);
/* Copy cloudsim's log to stderr (for a failing test). */
void simctl_dump_log(const struct simctl *s);

/* One HTTP/1.1 request to the control API (Connection: close). method "GET" or "POST"; body
 * may be NULL (POSTs then send Content-Length: 0).
 * *status: the HTTP status. resp: the body is appended. Returns 0 or -errno (-ETIMEDOUT after
 * 10 s, scaled; -EPROTO for a reply that is not HTTP). */
int simctl_http(struct simctl *s, const char *method, const char *path_and_query, const char *body,
                int *status, struct kedge_buf *resp);

/* The same, parsing the reply as JSON. *doc: free with kedge_jdoc_free. Returns 0, -errno or
 * KEDGE_EPARSE. */
int simctl_http_json(struct simctl *s, const char *method, const char *path_and_query,
                     const char *body, int *status, struct kedge_jdoc **doc);

/* POST /send[?node=]. msg_id: the id cloudsim assigned (kedge_malloc; may be NULL if not
 * wanted). Returns 0, -errno, or -EBADMSG when cloudsim answered other than 200. */
int simctl_send(struct simctl *s, const char *node, const char *json, char **msg_id);

/* POST /send_raw[?node=]: bytes (a C string) go out as one text frame exactly as given, for
 * tests of what the edge does with frames that are not messages. Returns 0, -errno, or
 * -EBADMSG when cloudsim answered other than 200. */
int simctl_send_raw(struct simctl *s, const char *node, const char *bytes);

/* A POST without a body (link/freeze, link/drop, ...). Returns the HTTP status or -errno. */
int simctl_post(struct simctl *s, const char *path_and_query);

#endif
