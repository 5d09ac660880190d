/* The container runtime (runtime.h) over the Docker Engine REST API v1.41, as both podman's
 * Docker-compatible service and dockerd serve it (docs/containers.md §5.2).
 *
 * Pod layout, as dockershim did it (docs/containers.md §5): per pod one infra container holding the
 * network namespace (the sandbox, named "POD"), app containers joined to it with NetworkMode
 * container:<infra>. Names k8s_{container}_{pod}_{namespace}_{uid}_{attempt}; the labels below
 * carry what a list must find again (several bridges, or other users, may share one engine).
 */
#ifndef KEDGE_EDGED_RUNTIME_DOCKER_H
#define KEDGE_EDGED_RUNTIME_DOCKER_H

#include <libwebsockets.h>

#include "runtime.h"
#include "runtime_docker_body.h"

struct runtime_docker_config {
    const char *socket_path; /* the engine's unix socket */
    const char *node;        /* LABEL_NODE: what this runtime lists and watches */
    const char *infra_image; /* the sandbox's image */
    int nofile, nproc;       /* HostConfig.Ulimits when > 0 (podman without containers.conf) */
};

/* A runtime on the lws loop (vhost: where engine_protocol is); out->ops->free frees it. The
 * strings are copied. Nothing connects until the first call. 0, or -ENOMEM. */
int runtime_docker_new(struct lws_context *lws, struct lws_vhost *vhost,
                       const struct runtime_docker_config *cfg, struct runtime *out);

#endif
