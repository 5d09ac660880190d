/* stream_wiring.c: EdgeStream in the bridge. stream/ knows nothing of Edged: this file gives it
 * Edged's runtime and container lookup (struct stream_deps), EdgeHub's TLS files and back-off,
 * and the tunnel server of the configuration.
 */
#include <errno.h>
#include <stdio.h>

#include "bridge.h"
#include "edged.h"
#include "kedge/log.h"
#include "stream/stream.h"

static int find(void *ctx, const char *ns, const char *pod, const char *container, bool previous,
                char *id, size_t id_len, char *why, size_t why_len)
{
    return edged_find_container(ctx, ns, pod, container, previous, id, id_len, why, why_len);
}

static int pods(void *ctx, edged_pod_fn fn, void *fctx)
{
    return edged_pod_list(ctx, fn, fctx);
}

static int find_running(void *ctx, const char *ns, const char *pod, const char *container, char *id,
                        size_t id_len, char *why, size_t why_len)
{
    return edged_find_running(ctx, ns, pod, container, id, id_len, why, why_len);
}

int stream_start(struct bridge *br)
{
    const struct bridge_config *c = &br->cfg;
    struct stream_deps deps = {.fs_path = c->pods_dir};
    struct stream_config sc = {.node_name = c->node_name,
                               .tls_ca_file = c->tls_ca_file,
                               .tls_cert_file = c->tls_cert_file,
                               .tls_key_file = c->tls_key_file,
                               .backoff_initial_ms = c->backoff_initial_ms,
                               .backoff_max_ms = c->backoff_max_ms,
                               .ping_idle_s = c->ping_idle_s,
                               .dead_link_s = c->dead_link_s};

    if (!c->stream_enabled) {
        kedge_log(KEDGE_LOG_NOTICE, "stream: off (stream_enabled 0): no kubectl logs or exec");
        return 0;
    }
    if (config_stream_server(c, sc.server_host, sizeof(sc.server_host), &sc.server_port) < 0)
        return -EINVAL;                                         /* checked at load */
    snprintf(sc.node_ip, sizeof(sc.node_ip), "%s", c->node_ip); /* the Node's InternalIP */
    if (br->edged) {
        deps.rt = edged_runtime(br->edged);
        deps.find = find;
        deps.find_running = find_running;
        deps.find_ctx = br->edged;
        deps.pods = pods;
        deps.pods_ctx = br->edged;
    }
    kedge_log(KEDGE_LOG_NOTICE, "stream: tunnel wss://%s:%ld/v1/kubeedge/connect as %s (%s)",
              sc.server_host, sc.server_port, c->node_name, sc.node_ip);
    return stream_new(&sc, &deps, br->lws, &br->stream);
}
