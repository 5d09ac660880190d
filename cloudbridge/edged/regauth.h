/* Registry credentials for image pulls, as kubelet finds them: the pod's imagePullSecrets
 * (kubernetes.io/dockerconfigjson and the legacy kubernetes.io/dockercfg) made a keyring, and
 * the keyring's entries that match an image's repository (pkg/credentialprovider/keyring.go,
 * BasicDockerKeyring: host[:port] with `*` globs per host label, a path prefix, the most
 * specific key first, and index.docker.io's entry for Docker Hub images). Pure: no I/O.
 */
#ifndef KEDGE_EDGED_REGAUTH_H
#define KEDGE_EDGED_REGAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "kedge/buf.h"

/* One credential: the keyring key it was filed under ("127.0.0.1:5000", "quay.io/org",
 * "index.docker.io") and what the registry takes. */
struct regauth_entry {
    char *key, *username, *password;
};

struct regauth {
    struct regauth_entry *e; /* sorted by key, the greatest first (kubelet's reverse sort) */
    size_t n;
};

#define REGAUTH_INIT                                                                               \
    {                                                                                              \
        NULL, 0                                                                                    \
    }

void regauth_cleanup(struct regauth *k);

/* A v1.Secret's JSON (data values base64, as the API server sends them). A
 * kubernetes.io/dockerconfigjson secret adds the entries of data[".dockerconfigjson"].auths,
 * a kubernetes.io/dockercfg one those of data[".dockercfg"]; another type adds nothing (kubelet
 * ignores it). 0; KEDGE_EPARSE (not JSON, or a docker secret whose data does not decode:
 * kubelet refuses the whole keyring then); -ENOMEM. */
int regauth_add_secret(struct regauth *k, const char *json, size_t len);

/* The entries of a dockercfg map ({"host": {"username", "password", "auth", "email"}}, text
 * cfg[0..len)): "auth" (base64 "user:password") wins over username/password when set, as in
 * DockerConfigEntry.UnmarshalJSON. Keys are stored as kubelet's Add makes them: scheme dropped,
 * a /v1/ or /v2/ path prefix dropped, "host/" as "host". 0, KEDGE_EPARSE, -ENOMEM. */
int regauth_add_config(struct regauth *k, const char *cfg, size_t len);

/* The repository an image reference names, normalised as Docker's ParseNormalizedNamed does
 * (kubelet's repoToPull): "busybox:1.36" -> "docker.io/library/busybox",
 * "index.docker.io/x/y" -> "docker.io/x/y", "127.0.0.1:5000/a/b@sha256:.." -> "127.0.0.1:5000/a/b".
 * 0 or -ENAMETOOLONG. */
int regauth_repository(const char *image, char *out, size_t n);

/* The entries for repository repo (regauth_repository's form), in the order kubelet tries
 * them: every key that matches, most specific first; when none does and repo is on Docker Hub,
 * those filed under index.docker.io. Up to max of them into out (pointers into k); returns how
 * many matched in all. */
size_t regauth_lookup(const struct regauth *k, const char *repo, const struct regauth_entry **out,
                      size_t max);

/* Whether key (a keyring key) matches repo: kubelet's URLsMatchStr. */
bool regauth_match(const char *key, const char *repo);

/* The registry host of repo ("docker.io" for Docker Hub): the serveraddress a pull names. */
void regauth_registry(const char *repo, char *out, size_t n);

/* The value of the Docker Engine API's X-Registry-Auth header for a pull: the AuthConfig JSON
 * {"username":..,"password":..,"serveraddress":..} in base64url with padding (what dockerd's
 * registry.DecodeAuthConfig and podman's auth.parseSingleAuthHeader decode), appended to out.
 * 0 or -ENOMEM. */
int regauth_header(const char *username, const char *password, const char *server,
                   struct kedge_buf *out);

#endif
