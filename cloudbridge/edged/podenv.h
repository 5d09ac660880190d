/* A container's environment as kubelet's makeEnvironmentVariables computes it: envFrom first,
 * then env in order, each literal value $(VAR)-expanded against what is defined so far;
 * configMapKeyRef, secretKeyRef, fieldRef and resourceFieldRef resolved. A variable defined
 * twice keeps its first position and its last value. Pure: ConfigMaps and Secrets come from
 * the caller's lookup function.
 */
#ifndef KEDGE_EDGED_PODENV_H
#define KEDGE_EDGED_PODENV_H

#include <stddef.h>

#include "kedge/buf.h"
#include "podspec.h"

struct podenv_var {
    char *name;
    char *val;
    size_t len;
};

struct podenv_cached;

/* The environment: vars[0..n) in first-definition order. */
struct podenv {
    struct podenv_var *vars;
    size_t n, cap;
    size_t *slot;               /* hash slots: index + 1 */
    size_t n_slot;              /* a power of two, > 2n */
    struct podenv_cached *objs; /* what lookup answered (kubelet's per-call maps) */
    size_t n_objs, cap_objs;
};

struct podenv_src {
    const struct pod_spec *pod;
    const struct pod_container *c;
    const char *pod_ip, *host_ip; /* for fieldRef status.podIP / status.hostIP */
    podspec_lookup_fn lookup;
    void *lookup_ctx;
};

/* Resolve src->c's environment into env (zeroed by the caller; podenv_cleanup in any case).
 * Returns 0, -ENOMEM, a lookup error, or KEDGE_ESCHEMA with why set to kubelet's message for a
 * CreateContainerConfigError. */
int podenv_resolve(const struct podenv_src *src, struct podenv *env, char *why, size_t why_len);
/* Kubernetes' $(VAR) expansion of in[0..len) against env, appended to out. 0 or -ENOMEM. */
int podenv_expand(const struct podenv *env, const char *in, size_t len, struct kedge_buf *out);
void podenv_cleanup(struct podenv *env);

#endif
