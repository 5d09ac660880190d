/* Edged: pods as real containers, kubelet-style, through a container runtime (runtime.h).
 *
 * Pods come from the meta store and the cloud's changes of them; containers from the runtime.
 * Edged relists the runtime (edged_relist.c, kubelet's PLEG), drives every pod one step toward
 * its spec (edged_worker.c, the pod workers; edged_ops.c, their runtime calls), runs its probes
 * (edged_probe.c, the prober manager) and reports its status (edged_status.c, the status
 * manager). Pods in and out: edged_pods.c; the bridge's side: edged_bridge.c.
 *
 * Edged reaches the rest of the bridge only through struct edged_deps, so it can run (and be
 * tested) on any loop, store, cloud link and runtime.
 */
#ifndef KEDGE_EDGED_H
#define KEDGE_EDGED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "kedge/msg.h"
#include "runtime.h"

struct edged;

/* A row of the meta store (key, JSON value). */
typedef void (*edged_row_fn)(void *ctx, const char *key, const char *value);
/* The cloud's answer to a request: m NULL with err -ETIMEDOUT / -ECANCELED when none came. */
typedef void (*edged_reply_fn)(void *ctx, const struct kedge_msg *m, int err);
/* A cloud insert/update/delete of a resource, stored already. */
typedef void (*edged_resource_fn)(void *ctx, const struct kedge_msg *m);

/* What Edged needs from the rest of the bridge. Every function gets ctx. */
struct edged_deps {
    struct lws_context *lws; /* the loop: Edged's timers */
    struct lws_vhost *vhost; /* where probes_protocol is (NULL: no probes are run) */
    void *ctx;
    /* the meta store: rows by key ("{ns}/{type}/{name}"); get: -ENOENT when absent */
    int (*store_get)(void *ctx, const char *key, char **value);
    int (*store_put)(void *ctx, const char *key, const char *value, size_t len);
    int (*store_delete)(void *ctx, const char *key);
    int (*store_list)(void *ctx, const char *type, edged_row_fn fn, void *fctx);
    /* the cloud: whether the link is up; a message straight onto it (-ENOTCONN offline); a
     * request whose answer fn gets; the object of an answer ({"Object":..,"Err":..}: NULL and
     * *reason when Err is set) */
    bool (*connected)(void *ctx);
    int (*send)(void *ctx, const char *msg, size_t len);
    int (*request)(void *ctx, const struct kedge_msg *m, int timeout_ms, edged_reply_fn fn,
                   void *fctx);
    char *(*object_of)(void *ctx, const struct kedge_msg *m, const char **reason);
    /* register for the cloud's pod, configMap and secret changes (fn NULL: unregister) */
    void (*set_resource_hook)(void *ctx, edged_resource_fn fn, void *fctx);
    /* the node's containerRuntimeVersion, once the runtime said it */
    void (*runtime_version)(void *ctx, const char *version);
};

/* A request of edged's to the cloud through deps, as edgecore's edged asks MetaManager: route
 * edged/meta/op on resource, a fresh msg_id, content the JSON content[0..len) (as_string: that
 * text as a JSON string); fn gets the answer, or err after timeout_ms. 0 or a negative code
 * (-ENOTCONN offline). */
int edged_deps_request(const struct edged_deps *deps, int timeout_ms, const char *op,
                       const char *resource, const char *content, size_t len, bool as_string,
                       edged_reply_fn fn, void *ctx);

/* Edged's settings (strings borrowed for Edged's lifetime). */
struct edged_config {
    const char *node_name, *pods_dir;
    const char *runtime_name; /* for log lines: the engine's socket */
    int64_t backoff_initial_ms, backoff_max_ms;
    int64_t resync_s;
    int64_t remote_timeout_ms;
    char host_ip[64]; /* the node's InternalIP: the pods' hostIP */
    /* the sandbox's image (pod_infra_image): checked and pulled before a sandbox is made, as
     * the runtime's create uses it; NULL: not checked */
    const char *sandbox_image;
};

/* Start Edged on rt, which is Edged's from then on (stopped and freed with it, also when this
 * fails): list the pods in the store, reconcile them with the runtime's containers, then
 * follow the resource hook. Returns 0 or a negative code. */
int edged_new(const struct edged_deps *deps, const struct edged_config *cfg,
              const struct runtime *rt, struct edged **out);

/* The runtime Edged drives (EdgeStream reads logs and runs sessions through it). */
struct runtime *edged_runtime(struct edged *ed);
/* The runtime id of container `container` of pod ns/pod as kubelet resolves it for logs
 * (validateContainerLogStatus): the running instance, else the terminated one, else the last
 * termination; with previous the last terminated instance before the current one. container
 * "" means the pod's only container. 0 and id; or -ENOENT with kubelet's message in why
 * (`pod "x" does not exist`, `container "c" not found in pod "x"`, `container "c" in pod "x"
 * is waiting to start: ContainerCreating`, `previous terminated container "c" in pod "x" not
 * found`, the API server's `a container name must be specified for pod x, choose one of: [a
 * b]`); -ENAMETOOLONG when id_len is too small. */
int edged_find_container(struct edged *ed, const char *ns, const char *pod, const char *container,
                         bool previous, char *id, size_t id_len, char *why, size_t why_len);
/* The same for exec and attach, as kubelet's findContainer: running containers only, with
 * kubelet's exec texts (`pod does not exist`, `container not found ("c")`). */
int edged_find_running(struct edged *ed, const char *ns, const char *pod, const char *container,
                       char *id, size_t id_len, char *why, size_t why_len);

/* The pods whose containers run, as kubelet's summary lists them (edged_stats.c): each pod
 * with its running app containers (init containers and the sandbox are not listed, and a pod
 * without a running container is left out). Strings are borrowed for the call. */
struct edged_container_info {
    const char *name, *id; /* the spec's name; the runtime's id */
    int64_t started_ms;    /* Unix ms */
};
struct edged_pod_info {
    const char *ns, *name, *uid;
    int64_t start_ms; /* the pod's status.startTime (Unix ms; 0 unknown) */
    const struct edged_container_info *containers;
    size_t n_containers;
};
typedef void (*edged_pod_fn)(void *ctx, const struct edged_pod_info *p);
/* fn once per such pod. 0, or -ENOMEM (fn may have been called for some pods). */
int edged_pod_list(struct edged *ed, edged_pod_fn fn, void *ctx);

/* Before the loop goes away: no new work, timers cancelled. NULL ok. */
void edged_stop(struct edged *ed);
/* After the loop is gone (its closing connections still call back into edged). NULL ok. */
void edged_free(struct edged *ed);
/* The pods of this node by phase as last computed (for /metrics): fn once per phase of
 * Pending, Running, Succeeded, Failed, Unknown, with its count (pods not computed yet count as
 * Pending). */
typedef void (*edged_phase_fn)(void *ctx, const char *phase, size_t n);
void edged_pod_phases(const struct edged *ed, edged_phase_fn fn, void *ctx);

/* The lws protocols of Edged's connections (the runtime's engine client, the probes): on the
 * bridge's local vhost (main.c). */
extern const struct lws_protocols engine_protocol;
extern const struct lws_protocols probes_protocol;

/* Edged's own filter of the cloud's resources: the type of a "{ns}/{type}/{name}" key
 * ("pod", "configmap", "secret"), or NULL for one Edged does not consume. */
const char *edged_resource_type(const char *resource, char *type, size_t type_len);

#endif
