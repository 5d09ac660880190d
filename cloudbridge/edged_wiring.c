/* edged_wiring.c: Edged and the node in the bridge. Edged's room knows nothing of the bridge:
 * this file fills struct edged_deps from MetaManager (the store, requests to the cloud,
 * the resource hook) and EdgeHub (the link), makes the Docker runtime on engine_socket, and
 * hands them to edged_new and node_new.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "edged.h"
#include "kedge/log.h"
#include "node.h"
#include "runtime_docker.h"

static int store_get(void *ctx, const char *key, char **value)
{
    return metamgr_get(((struct bridge *)ctx)->meta, key, value);
}

static int store_put(void *ctx, const char *key, const char *value, size_t len)
{
    return metamgr_put(((struct bridge *)ctx)->meta, key, value, len);
}

static int store_delete(void *ctx, const char *key)
{
    return metamgr_delete(((struct bridge *)ctx)->meta, key);
}

static int store_list(void *ctx, const char *type, edged_row_fn fn, void *fctx)
{
    return metamgr_list(((struct bridge *)ctx)->meta, type, fn, fctx);
}

static bool connected(void *ctx)
{
    return edgehub_connected(((struct bridge *)ctx)->hub);
}

static int send_direct(void *ctx, const char *msg, size_t len)
{
    return edgehub_send_direct(((struct bridge *)ctx)->hub, msg, len);
}

static int request(void *ctx, const struct kedge_msg *m, int timeout_ms, edged_reply_fn fn,
                   void *fctx)
{
    return metamgr_remote(((struct bridge *)ctx)->meta, m, timeout_ms, fn, fctx);
}

static char *object_of(void *ctx, const struct kedge_msg *m, const char **reason)
{
    (void)ctx;
    return metamgr_object_of(m, reason);
}

static void set_resource_hook(void *ctx, edged_resource_fn fn, void *fctx)
{
    metamgr_set_pod_hook(((struct bridge *)ctx)->meta, fn, fctx);
}

static void runtime_version(void *ctx, const char *version)
{
    struct bridge *br = ctx;

    snprintf(br->runtime_version, sizeof(br->runtime_version), "%s", version);
}

/* What Edged and the node need of the bridge. */
static struct edged_deps bridge_deps(struct bridge *br)
{
    struct edged_deps deps = {
        br->lws,   br->vhost,   br,      store_get, store_put,         store_delete,    store_list,
        connected, send_direct, request, object_of, set_resource_hook, runtime_version,
    };

    return deps;
}

int node_start(struct bridge *br, struct node **out)
{
    struct edged_deps deps = bridge_deps(br);
    struct node_config cfg = {
        br->cfg.node_name,         br->cfg.node_ip,          br->cfg.node_namespace,
        br->cfg.db_path,           br->cfg.kubelet_version,  br->runtime_version,
        br->cfg.status_interval_s, br->cfg.lease_interval_s, br->cfg.remote_query_timeout_s * 1000};

    return node_new(&deps, &cfg, out);
}

int edged_start(struct bridge *br, struct edged **out)
{
    struct edged_deps deps = bridge_deps(br);
    struct edged_config cfg = {
        br->cfg.node_name,
        br->cfg.pods_dir,
        br->cfg.engine_socket,
        br->cfg.pod_backoff_initial_ms,
        br->cfg.pod_backoff_max_ms,
        br->cfg.pod_resync_s,
        br->cfg.remote_query_timeout_s * 1000,
        "",
        br->cfg.pod_infra_image,
    };
    struct runtime_docker_config rc = {br->cfg.engine_socket, br->cfg.node_name,
                                       br->cfg.pod_infra_image, (int)br->cfg.engine_nofile,
                                       (int)br->cfg.engine_nproc};
    struct runtime rt;
    int err;

    *out = NULL;
    if (!strcmp(br->cfg.engine_socket, "none")) {
        kedge_log(KEDGE_LOG_NOTICE, "edged: off (engine_socket none): no pods on this node");
        return 0;
    }
    snprintf(cfg.host_ip, sizeof(cfg.host_ip), "%s", br->cfg.node_ip);
    err = runtime_docker_new(br->lws, br->vhost, &rc, &rt);
    if (err == 0)
        err = edged_new(&deps, &cfg, &rt, out);
    if (err < 0)
        return err;
    kedge_log(KEDGE_LOG_NOTICE, "edged: engine %s, pods in %s, infra image %s",
              br->cfg.engine_socket, br->cfg.pods_dir, br->cfg.pod_infra_image);
    return 0;
}
