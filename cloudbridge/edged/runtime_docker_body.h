/* The Docker Engine API's create bodies for a pod's containers (runtime_docker_body.c), and
 * the names and labels they carry. Pure: no I/O, no event loop.
 */
#ifndef KEDGE_EDGED_RUNTIME_DOCKER_BODY_H
#define KEDGE_EDGED_RUNTIME_DOCKER_BODY_H

#include <stddef.h>

#include "kedge/buf.h"
#include "podspec.h"

/* Labels on every container the runtime makes: kubelet's, plus the node's. */
#define LABEL_POD_NAME "io.kubernetes.pod.name"
#define LABEL_POD_NAMESPACE "io.kubernetes.pod.namespace"
#define LABEL_POD_UID "io.kubernetes.pod.uid"
#define LABEL_CONTAINER_NAME "io.kubernetes.container.name"
#define LABEL_CONTAINER_TYPE "io.kubernetes.docker.type" /* "podsandbox" | "container" */
#define LABEL_RESTART_COUNT "io.kubernetes.container.restartCount"
#define LABEL_CONTAINER_HASH "io.kubernetes.container.hash"
#define LABEL_NODE "io.kedge.node" /* node_name of the bridge that made it */
#define INFRA_CONTAINER_NAME "POD"

struct docker_create {
    const struct pod_spec *pod;
    const struct pod_container *c; /* NULL: the infra container */
    const char *node;              /* LABEL_NODE value */
    const char *infra_image;       /* infra only */
    const char *infra_id;          /* apps: NetworkMode container:<infra_id> */
    const char *pod_ip, *host_ip;  /* for fieldRef status.podIP / status.hostIP */
    const char *volumes_dir;       /* {pods_dir}/{uid}/volumes: binds are {dir}/{volume}[/sub] */
    int attempt;                   /* LABEL_RESTART_COUNT and the name suffix */
    podspec_lookup_fn lookup;
    void *lookup_ctx;
    int nofile, nproc; /* HostConfig.Ulimits when > 0 (podman without containers.conf) */
};

/* The container name: k8s_{c or POD}_{pod}_{ns}_{uid}_{attempt}. */
int docker_container_name(const struct docker_create *cc, struct kedge_buf *out);
/* The body of POST /containers/create for cc, in the field order of Go's container.Config and
 * HostConfig, maps with sorted keys. Env values are resolved (podenv.h) and $(VAR) references
 * in command and args expanded against them. Returns 0, -ENOMEM, or KEDGE_ESCHEMA with why set
 * to kubelet's message for a CreateContainerConfigError (`configmap "x" not found`, `couldn't
 * find key k in ConfigMap ns/x`, `secret "s" not found`). Caller mistakes (no pod, an app
 * container without infra_id, no infra_image, no volumes_dir for a volume mount) return
 * -EINVAL. On failure out is as it was. */
int docker_create_body(const struct docker_create *cc, struct kedge_buf *out, char *why,
                       size_t why_len);

#endif
