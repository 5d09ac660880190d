/* registryctl: a private image registry for a test (scripts/registry.sh): Debian's
 * docker-registry (CNCF distribution 2.8) on 127.0.0.1:<free port> with TLS (a test CA, a
 * server certificate for IP 127.0.0.1) and htpasswd basic auth (bcrypt), its files in a scratch
 * directory, the engines' certs.d entries for it made at start and removed at stop. Images get
 * into it through an engine's API (tag, then push with X-Registry-Auth).
 *
 * The registry is a daemon (setsid): a watcher stops it if the test process dies without
 * registryctl_free, as enginectl's does. KEDGE_KEEP_TMP is not honoured (the directory holds
 * only the registry's blobs and the test CA); the log is printed by registryctl_dump_log.
 */
#ifndef KEDGE_TESTS_REGISTRYCTL_H
#define KEDGE_TESTS_REGISTRYCTL_H

#include <stdbool.h>
#include <sys/types.h>

struct registryctl;

/* NULL when registry.sh can run here (root, docker-registry, openssl, htpasswd, curl), else
 * what is missing (a static string). */
const char *registryctl_unavailable_reason(void);

/* Start one on a free port and wait (30 s, scaled) until it answers. 0 and *out, or < 0 (the
 * script's output is on stderr). */
int registryctl_start(struct registryctl **out);

/* Tag the image `src` of the engine on engine_sock as <addr>/<name> (name: "repo/path:tag") and
 * push it through the engine's API with this registry's credentials; the new tag is removed from
 * the engine again. 0 or < 0 (output on stderr). */
int registryctl_push(struct registryctl *r, const char *engine_sock, const char *src,
                     const char *name);

/* Import into the engine a busybox image with one layer of `mb` random megabytes, as `name`. */
int registryctl_make_big(struct registryctl *r, const char *engine_sock, const char *name, int mb);

/* Stop it (by pid), remove the certs.d entries and its directory. 0 or < 0. */
int registryctl_stop(struct registryctl *r);
void registryctl_free(struct registryctl *r); /* stops it if needed; NULL is a no-op */

/* "127.0.0.1:PORT"; the user and password its htpasswd accepts; the test CA's path. Borrowed. */
const char *registryctl_addr(const struct registryctl *r);
const char *registryctl_user(const struct registryctl *r);
const char *registryctl_password(const struct registryctl *r);
pid_t registryctl_pid(const struct registryctl *r);

/* How many times the registry's log shows `needle` (e.g. "GET /v2/kedge/busybox/manifests/v1"
 * served with 200): a pull that happened, or did not. -1 when the log cannot be read. */
int registryctl_log_count(const struct registryctl *r, const char *needle);
void registryctl_dump_log(const struct registryctl *r);

#endif
