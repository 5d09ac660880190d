/* The bridge's figures for /metrics: what `kedge-ctl status` shows, from the modules that own
 * them (EdgeHub's link, the cloud queue, the certificate) and the plugin's own status as the
 * plugin publishes it ($SYS/kedge/{node}/plugin), so one scrape sees both outboxes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/json.h"
#include "metrics_bridge.h"

#define G "gauge"
#define C "counter"

static void hub_figures(struct metrics_writer *w, const struct edgehub *hub)
{
    struct edgehub_stats st;

    edgehub_stats(hub, &st);
    metrics_sample(w, "kedge_bridge_cloud_link_up", G, "1 while the websocket to cloudcore is up",
                   st.connected);
    metrics_sample(w, "kedge_bridge_cloud_reconnects_total", C,
                   "links to cloudcore opened again after one was lost", (double)st.reconnects);
    metrics_sample(w, "kedge_bridge_last_keepalive_timestamp_seconds", G,
                   "when cloudcore last answered a keepalive (0: never)",
                   (double)st.last_keepalive_ms / 1000.0);
    metrics_sample(w, "kedge_bridge_last_delivery_timestamp_seconds", G,
                   "when cloudcore last acknowledged a queued message (0: never)",
                   (double)st.last_delivery_ms / 1000.0);
    metrics_sample(w, "kedge_bridge_probing", G,
                   "1 while queued messages go one at a time to find one cloudcore refuses",
                   st.probing);
}

static void stream_figures(struct metrics_writer *w, const struct stream *s)
{
    struct stream_stats st;

    stream_stats(s, &st);
    metrics_sample(w, "kedge_bridge_stream_tunnel_up", G,
                   "1 while the CloudStream tunnel to cloudcore is up", st.connected);
    metrics_sample(w, "kedge_bridge_stream_reconnects_total", C,
                   "CloudStream tunnels opened again after one was lost", (double)st.reconnects);
    metrics_sample(w, "kedge_bridge_stream_connections", G,
                   "kubectl logs/exec/attach connections open on the tunnel",
                   (double)st.connections);
    metrics_sample(w, "kedge_bridge_stream_queued_bytes", G,
                   "bytes waiting to be written to the tunnel", (double)st.queued);
}

static void queue_figures(struct metrics_writer *w, struct cloudq *q)
{
    struct cloudq_stats ob;

    cloudq_stats(q, &ob);
    metrics_sample(w, "kedge_bridge_queue_depth", G, "messages queued for the cloud",
                   (double)ob.depth);
    metrics_sample(w, "kedge_bridge_queue_oldest_age_seconds", G,
                   "age of the oldest queued message (0: empty)",
                   ob.oldest_ms > 0 ? (double)ob.oldest_ms / 1000.0 : 0);
    metrics_sample(w, "kedge_bridge_queue_upload_bytes", G, "bytes of queued MQTT uploads",
                   (double)ob.upload_bytes);
    metrics_sample(w, "kedge_bridge_queue_upload_budget_bytes", G,
                   "upload_budget_bytes: the most queued uploads may take",
                   (double)ob.budget_bytes);
    metrics_sample(w, "kedge_bridge_uploads_dropped_total", C,
                   "uploads dropped by drop-oldest or larger than the budget",
                   (double)ob.uploads_dropped);
    metrics_sample(w, "kedge_bridge_coalesced_total", C,
                   "twin and state reports merged into a waiting one", (double)ob.coalesced);
    metrics_sample(w, "kedge_bridge_stale_dropped_total", C,
                   "re-offered reports older than what their device sent since",
                   (double)ob.stale_dropped);
    metrics_sample(w, "kedge_bridge_dead_letters", G, "messages set aside as dead letters",
                   (double)ob.dead_letters);
    metrics_sample(w, "kedge_bridge_refusals_total", C,
                   "messages cloudcore refused or closed the link over", (double)ob.failures);
    metrics_sample(w, "kedge_bridge_dropped_by_operator_total", C,
                   "queued messages or dead letters an operator dropped",
                   (double)ob.dropped_by_operator);
}

/* Every number and boolean at the top of the plugin's status JSON, named kedge_plugin_<key>:
 * the plugin owns their meaning (include/kedge/ke.h, $ke/ctl status), this only carries them. */
static void plugin_figures(struct metrics_writer *w, const char *json)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *v;
    char name[96];

    metrics_sample(w, "kedge_plugin_status_seen", G,
                   "1 once the plugin's status was received from the broker", json != NULL);
    if (!json || kedge_json_parse(json, strlen(json), &doc) < 0)
        return;
    for (v = kedge_jdoc_root(doc)->child; v; v = v->next) {
        if (!v->key || strspn(v->key, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(v->key))
            continue;
        (void)snprintf(name, sizeof(name), "kedge_plugin_%s", v->key);
        if (v->type == KEDGE_JNUM)
            metrics_sample(w, name, "untyped", "the plugin's status figure of this name",
                           strtod(v->str, NULL));
        else if (v->type == KEDGE_JBOOL)
            metrics_sample(w, name, "untyped", "the plugin's status figure of this name",
                           v->boolean);
    }
    kedge_jdoc_free(doc);
}

static void pod_phase(void *ctx, const char *phase, size_t n)
{
    metrics_sample_label(ctx, "kedge_bridge_pods", "gauge", "pods of this node by phase", "phase",
                         phase, (double)n);
}

static void collect(void *ctx, struct metrics_writer *w)
{
    struct metrics_bridge *mb = ctx;

    hub_figures(w, mb->hub);
    queue_figures(w, mb->q);
    metrics_sample(w, "kedge_bridge_cert_not_after_timestamp_seconds", G,
                   "when the node certificate expires (0: unknown)",
                   (double)certwatch_not_after(mb->certs));
    metrics_sample(w, "kedge_bridge_broker_link_up", G,
                   "1 while the plugin in the local broker accepted the bridge",
                   relay_ready(mb->relay));
    if (mb->edged) /* NULL: no container engine, no pods */
        edged_pod_phases(mb->edged, pod_phase, w);
    if (mb->stream)
        stream_figures(w, mb->stream);
    plugin_figures(w, relay_plugin_status(mb->relay));
}

static bool healthy(void *ctx, const char **why)
{
    struct metrics_bridge *mb = ctx;

    if (relay_ready(mb->relay))
        return true;
    *why = "no link to the plugin in the local broker";
    return false;
}

int metrics_bridge_register(struct metrics *m, struct metrics_bridge *mb)
{
    metrics_set_health(m, healthy, mb);
    return metrics_add(m, collect, mb);
}
