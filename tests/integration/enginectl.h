/* enginectl: a private container engine for a test, and a blocking client for its API.
 *
 * For the tests of edged (pods as real containers). enginectl_start runs
 * `scripts/engine.sh start DIR` (from KEDGE_SOURCE_DIR): podman's Docker-compatible REST API
 * v1.41 on DIR/podman.sock, with its own storage, state and locks in DIR (`kedge-engine-XXXXXX`
 * under $TMPDIR or /tmp), and the images localhost/busybox:edge and localhost/pause:edge made
 * from busybox-static (there is no registry). Several engines can run at once; what rootful
 * podman shares between them (the podman0 bridge, its IP allocations, iptables) is described in
 * scripts/engine.sh. The recipe and its reasons are in docs/containers.md.
 *
 * The service is a daemon (setsid), not a child of the test, so it cannot die with it. If the
 * test process dies without enginectl_free (a failed ck_assert exits it, a Check timeout kills
 * it), a watcher (/bin/sh in its own process group, reading a pipe only the test holds) sees
 * EOF, prints the engine's logs to stderr and runs `engine.sh stop DIR`.
 *
 * KEDGE_TEST_ENGINE=dockerd: the same with Debian's dockerd (docs/containers.md §3.1) on
 * DIR/docker.sock, with its data root, exec root and pidfile under DIR and a bridge of its own
 * (scripts/engine.sh says why).
 *
 * KEDGE_TEST_ENGINE_SOCKET=/path: enginectl_start starts nothing and uses the engine on that
 * socket (a dockerd or podman someone runs); `engine.sh images` gives it the two images if it
 * lacks them (they stay). enginectl_stop removes only the containers of the node the test
 * claimed (enginectl_claim_node), never the engine's others.
 *
 * Environment:
 *   KEDGE_TEST_ENGINE=none      enginectl_wanted() is false: tests skip their engine cases.
 *   KEDGE_TEST_ENGINE=podman    (the default) or dockerd: what enginectl_start starts.
 *   KEDGE_TEST_ENGINE_SOCKET=P  use the engine on the unix socket P (see above).
 *   KEDGE_TEST_TIMEOUT_SCALE=F  every deadline here is multiplied by F (default 1).
 *   KEDGE_KEEP_TMP=1            keep DIR (engine.log, enginectl.log, the database; the service
 *                               is still stopped and everything unmounted); its path is printed.
 * Build-time: KEDGE_SOURCE_DIR (scripts/engine.sh is found there).
 */
#ifndef KEDGE_TESTS_ENGINECTL_H
#define KEDGE_TESTS_ENGINECTL_H

#include <stdbool.h>
#include <sys/types.h>

#include "kedge/buf.h"
#include "kedge/json.h"

/* The API version prefix of every path (podman 4.3 and dockerd 20.10 both serve it). */
#define ENGINECTL_API "/v1.41"
/* The images every engine started here has. */
#define ENGINECTL_BUSYBOX_IMAGE "localhost/busybox:edge" /* ENV PATH=/bin:/sbin, CMD ["sh"] */
#define ENGINECTL_PAUSE_IMAGE "localhost/pause:edge"     /* ENTRYPOINT sleep 2147483647 */

struct enginectl;

/* False only when KEDGE_TEST_ENGINE=none. */
bool enginectl_wanted(void);

/* What enginectl_start would use: "podman", "dockerd" or "socket" (KEDGE_TEST_ENGINE_SOCKET). */
const char *enginectl_kind(void);

/* Whether enginectl_start can work here: root, and podman and runc (dockerd, ip and flock for
 * dockerd), busybox, curl and bash in PATH, and scripts/engine.sh in the source tree. */
bool enginectl_available(void);
/* What is missing, for a test's skip message (a static string); NULL when available. */
const char *enginectl_unavailable_reason(void);

/* Scale a deadline (ms) by KEDGE_TEST_TIMEOUT_SCALE. */
int enginectl_scale_ms(int ms);

/* Start an engine and wait (60 s, scaled; the service itself must answer within 20 s, scaled)
 * until engine.sh reports it ready with both images imported.
 * Returns 0 and *out; -ENOTSUP (enginectl_available is false); -ETIMEDOUT (engine.sh did not
 * finish: it is killed); -ECHILD (engine.sh failed; its output and the service's log are on
 * stderr); -ENOMEM or -errno. On failure everything started is stopped again. */
int enginectl_start(struct enginectl **out);

/* A handle on an engine this process did not start (a dockerd or podman socket, or a test's
 * fake server): only the HTTP calls work; enginectl_stop returns -ECHILD and enginectl_free
 * frees the handle. socket_path: copied. Returns 0 and *out, -ENAMETOOLONG, -ENOMEM. */
int enginectl_attach(const char *socket_path, struct enginectl **out);

/* The containers labelled io.kedge.node=<node> (what a bridge with that node_name creates)
 * are this test's: an engine of KEDGE_TEST_ENGINE_SOCKET loses them at enginectl_stop.
 * node: copied. Returns 0 or -ENAMETOOLONG. */
int enginectl_claim_node(struct enginectl *e, const char *node);

/* "podman" or "docker" (kubelet's runtime name, from GET /version's Components), or "unknown"
 * when the engine does not answer. Borrowed; asked once. */
const char *enginectl_runtime(struct enginectl *e);

/* An engine of KEDGE_TEST_ENGINE_SOCKET: remove the claimed node's containers, nothing else;
 * 0, -EBUSY (some left) or an HTTP error.
 * Otherwise: run `engine.sh stop` (every container removed, the service stopped by pid, everything
 * under DIR unmounted; the files stay until enginectl_free) and wait 60 s (scaled) for it. Returns
 * 0 when engine.sh succeeded and the service process is gone; engine.sh's exit code
 * (> 0) when it failed; -EBUSY when the service process still exists afterwards; -ETIMEDOUT
 * (engine.sh killed); -ECHILD (not running: stopped already, or attached). Output of a failed
 * stop is on stderr. */
int enginectl_stop(struct enginectl *e);

/* Stop the engine if it still runs (a failure is printed, not asserted: assert on
 * enginectl_stop), stop the watcher, remove DIR unless KEDGE_KEEP_TMP=1. NULL is a no-op. */
void enginectl_free(struct enginectl *e);

/* Borrowed strings, valid until enginectl_free. The socket path fits in sun_path. */
const char *enginectl_socket(const struct enginectl *e);
const char *enginectl_dir(const struct enginectl *e); /* "" when attached or adopted */
/* The service's pid (not a child of the test), 0 when not running or attached. */
pid_t enginectl_pid(const struct enginectl *e);
/* engine.sh's output (enginectl.log) and the service's log (engine.log) to stderr. */
void enginectl_dump_log(const struct enginectl *e);

/* One HTTP/1.1 request over the unix socket (Connection: close), waiting 30 s (scaled).
 * path: with the version prefix and query, e.g. ENGINECTL_API "/containers/json?all=1".
 * body: NULL for none; otherwise sent as application/json (POST and PUT without a body send
 * Content-Length: 0).
 * *status: the HTTP status (-1 until one is read). resp: the body is appended, de-chunked when
 * the reply is Transfer-Encoding: chunked (the engine chunks inspect, logs and streams); may be
 * NULL. Returns 0; -ETIMEDOUT; -EPROTO (not HTTP, or bad chunk framing); -ENOMEM; -errno
 * (-ENOENT, -ECONNREFUSED: no engine on the socket). A streaming endpoint (/events without
 * until=, logs?follow=1) does not end by itself, so it ends in -ETIMEDOUT. */
int enginectl_http(struct enginectl *e, const char *method, const char *path, const char *body,
                   int *status, struct kedge_buf *resp);

/* The same, parsing the reply body as JSON. *doc: set on success (free with kedge_jdoc_free);
 * the status is in *status whatever it is. Returns 0, what enginectl_http returns, or
 * KEDGE_EPARSE. */
int enginectl_http_json(struct enginectl *e, const char *method, const char *path, const char *body,
                        int *status, struct kedge_jdoc **doc);

/* GET ENGINECTL_API/containers/json?all=1, filtered by one label when label_filter is not NULL
 * ("io.kubernetes.pod.uid=abc", or a bare key "io.kubernetes.pod.uid"), parsed.
 * *doc: the JSON array (free with kedge_jdoc_free). Returns 0, -EBADMSG (status not 200: the
 * body is printed), KEDGE_EPARSE, or what enginectl_http returns. */
int enginectl_list(struct enginectl *e, const char *label_filter, struct kedge_jdoc **doc);

#endif
