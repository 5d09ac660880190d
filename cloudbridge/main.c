/* kedge-bridge: the edge node's link between the local broker (and the plugin inside it) and
 * KubeEdge's cloudcore. main.c reads the configuration, builds the modules, wires the router
 * and runs the one lws event loop until SIGTERM/SIGINT; the modules do the work.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"
#include "dmi/dmi.h"
#include "dmi/transport.h"
#include "edged.h"
#include "node.h"
#include "fault.h"
#include "hub/certwatch.h"
#include "hub/cloudq.h"
#include "hub/edgehub.h"
#include "hub/router.h"
#include "meta/devices.h"
#include "meta/metamanager.h"
#include "meta/resource.h"
#include "relay.h"
#include "metrics_bridge.h"
#include "stream/stream.h"
#include "svcnotify.h"
#include "twinbus.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"

static volatile sig_atomic_t stop_requested;
static struct lws_context *loop_ctx;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    if (loop_ctx)
        lws_cancel_service(loop_ctx);
}

static void lws_sink(int level, const char *line)
{
    size_t n = strlen(line);

    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    kedge_log(level == LLL_ERR ? KEDGE_LOG_ERR : KEDGE_LOG_WARN, "lws: %.*s", (int)n, line);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kedge-bridge [-c FILE] [KEY=VALUE]...\n"
               "       kedge-bridge join --cloud HOST --token TOKEN --node NAME [-c FILE]\n"
               "                         [--port 10000] [--https-port 10002] [--certs DIR]\n"
               "       kedge-bridge -h\n\n"
               "Connects the local mosquitto (with kedge_plugin.so) to KubeEdge's cloudcore.\n"
               "Reads FILE (mosquitto-style `key value` lines; default /etc/kedge/"
               "kedge-bridge.conf if it exists),\nthen KEY=VALUE arguments override it. Keys:\n\n");
    config_print_keys();
}

static const struct lws_protocols *protocols[] = {
    &edgehub_protocol, &relay_protocol, &engine_protocol, &probes_protocol, &dmi_protocol};
#define N_PROTOCOLS (sizeof(protocols) / sizeof(protocols[0]))

static int create_loop(struct bridge *br)
{
    static struct lws_protocols list[N_PROTOCOLS + 1];
    struct lws_context_creation_info info;
    size_t i;

    for (i = 0; i < N_PROTOCOLS; i++)
        list[i] = *protocols[i];
    memset(&list[N_PROTOCOLS], 0, sizeof(list[N_PROTOCOLS]));
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = list;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    /* How long lws waits for a peer's answer (TLS handshake, HTTP response headers); its
     * default of 5 s cut off container engine calls on a busy gateway (a create under load, a
     * pull that starts slowly). 30 s is edgecore's websocket handshake timeout too. Engine
     * calls keep their own, longer deadlines once the answer has begun (engine.c). */
    info.timeout_secs = 30;
    br->lws = lws_create_context(&info);
    if (!br->lws) {
        kedge_log(KEDGE_LOG_ERR, "bridge: cannot create the event loop");
        return -ENOMEM;
    }
    /* local sockets (the broker's); edgehub.c makes its own TLS vhost, so a bad certificate
     * is retried there instead of stopping the bridge */
    info.vhost_name = "local";
    br->vhost = lws_create_vhost(br->lws, &info);
    if (!br->vhost) {
        kedge_log(KEDGE_LOG_ERR, "bridge: cannot create the local vhost");
        return -ENOMEM;
    }
    return 0;
}

/* How long a stopping bridge waits for its close frame to go out and the cloud's to come back
 * (lws gives up on the cloud's answer by itself after 5 s; a stop must not wait that long). */
#define CLOSE_WAIT_MS 2000

struct close_wait {
    lws_sorted_usec_list_t sul;
    bool expired;
};

static void close_wait_expired(lws_sorted_usec_list_t *sul)
{
    lws_container_of(sul, struct close_wait, sul)->expired = true;
}

/* Close the websocket with a close frame (1000), so CloudHub logs a normal closure instead of
 * 1006, and run the loop until it is closed or CLOSE_WAIT_MS passed. */
static void close_cloud_link(struct bridge *br)
{
    struct close_wait cw;

    memset(&cw, 0, sizeof(cw));
    if (!edgehub_close(br->hub))
        return;
    lws_sul_schedule(br->lws, 0, &cw.sul, close_wait_expired, (lws_usec_t)CLOSE_WAIT_MS * 1000);
    while (!edgehub_closed(br->hub) && !cw.expired)
        if (lws_service(br->lws, 0) < 0)
            break;
    lws_sul_cancel(&cw.sul);
    if (!edgehub_closed(br->hub))
        kedge_log(KEDGE_LOG_INFO, "bridge: the cloud did not answer the close in %d ms",
                  CLOSE_WAIT_MS);
}

/* devices.c reaches the plugin through the relay without knowing it. */
static int down_to_plugin(void *relay, const struct kedge_msg *m, devices_done_fn done, void *ctx)
{
    return relay_down(relay, m, done, ctx);
}

/* A rotated certificate: the link is dialled again with it. */
static void redial(void *hub)
{
    edgehub_redial(hub);
}

/* Each module's keys, out of the whole configuration. */
static struct edgehub_config hub_config(const struct bridge_config *c)
{
    return (struct edgehub_config){
        .node_name = c->node_name,
        .project_id = c->project_id,
        .cloud_host = c->cloud_host,
        .cloud_port = c->cloud_port,
        .tls_ca_file = c->tls_ca_file,
        .tls_cert_file = c->tls_cert_file,
        .tls_key_file = c->tls_key_file,
        .keepalive_s = c->keepalive_s,
        .ping_idle_s = c->ping_idle_s,
        .dead_link_s = c->dead_link_s,
        .backoff_initial_ms = c->backoff_initial_ms,
        .backoff_max_ms = c->backoff_max_ms,
        .cloud_qps = c->cloud_qps,
        .cloud_burst = c->cloud_burst,
        .resend_s = c->resend_s,
        .max_frame_bytes = c->max_frame_bytes,
    };
}

static struct metamgr_config meta_config(const struct bridge_config *c)
{
    return (struct metamgr_config){
        .path = c->meta_db_path,
        .remote_query_timeout_s = c->remote_query_timeout_s,
        .node_namespace = c->node_namespace,
    };
}

static struct certwatch_config certs_config(const struct bridge_config *c)
{
    return (struct certwatch_config){
        .req = {c->cloud_host, (int)c->cloud_https_port, c->node_name, c->tls_ca_file,
                c->tls_cert_file, c->tls_key_file},
        .rotate = c->rotate_certificates != 0,
    };
}

static struct relay_config relay_config_of(const struct bridge_config *c)
{
    return (struct relay_config){
        .node_name = c->node_name,
        .broker_host = c->broker_host,
        .broker_port = c->broker_port,
        .broker_username = c->broker_username,
        .password = c->password,
        .down_timeout_ms = c->down_timeout_ms,
        .upload_budget_bytes = c->upload_budget_bytes,
    };
}

/* The modules, each given the keys and neighbours it uses. Each registers what it takes from
 * the link (router groups, link state, query answers) so that nothing below calls up. */
static int build(struct bridge *br, struct twinbus *tb)
{
    const struct edgehub_config hc = hub_config(&br->cfg);
    const struct metamgr_config mc = meta_config(&br->cfg);
    const struct certwatch_config wc = certs_config(&br->cfg);
    const struct relay_config rc = relay_config_of(&br->cfg);
    struct relay_deps rd;
    struct devices_deps dd;

    router_set_ack_rule(br->router, resource_needs_ack);
    if (edgehub_new(&hc, br->lws, br->cloudq, br->router, &br->hub) < 0 ||
        metamgr_open(&mc, br->lws, br->router, br->hub, &br->meta) < 0 ||
        certwatch_new(&wc, br->lws, redial, br->hub, &br->certs) < 0)
        return -1;
    rd = (struct relay_deps){.lws = br->lws,
                             .vhost = br->vhost,
                             .q = br->cloudq,
                             .hub = br->hub,
                             .meta = br->meta,
                             .certs = br->certs};
    if (relay_new(&rc, &rd, &br->relay) < 0)
        return -1;
    dd = (struct devices_deps){.meta = br->meta,
                               .hub = br->hub,
                               .send = down_to_plugin,
                               .sender = br->relay,
                               .ids_namespaced = config_device_ids_namespaced(&br->cfg)};
    tb->relay = br->relay;
    tb->hub = br->hub;
    if (devices_new(&dd, &br->devices) < 0 || twinbus_register(tb, br->router) < 0 ||
        dmi_start(br) < 0)
        return -1;
    return 0;
}

/* `join`: keadm join's certificate bootstrap, then a config file that points at it. */
static int join(int argc, char **argv)
{
    const char *cloud = NULL, *token = NULL, *node = NULL, *conf = "/etc/kedge/kedge-bridge.conf";
    const char *certs = "/etc/kedge", *port = "10000", *https_port = "10002";
    char ca[1024], cert[1024], key[1024];
    struct certmgr_req cr;
    FILE *f;
    int i;

    for (i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--cloud"))
            cloud = v;
        else if (!strcmp(k, "--token"))
            token = v;
        else if (!strcmp(k, "--node"))
            node = v;
        else if (!strcmp(k, "-c"))
            conf = v;
        else if (!strcmp(k, "--certs"))
            certs = v;
        else if (!strcmp(k, "--port"))
            port = v;
        else if (!strcmp(k, "--https-port"))
            https_port = v;
        else
            break;
    }
    if (i != argc || !cloud || !token || !node) {
        usage(stderr);
        return 2;
    }
    snprintf(ca, sizeof(ca), "%s/ca/rootCA.crt", certs);
    snprintf(cert, sizeof(cert), "%s/certs/server.crt", certs);
    snprintf(key, sizeof(key), "%s/certs/server.key", certs);
    cr.cloud_host = cloud;
    cr.https_port = atoi(https_port);
    cr.node_name = node;
    cr.ca_file = ca;
    cr.cert_file = cert;
    cr.key_file = key;
    if (certmgr_join(&cr, token) < 0)
        return 1;
    f = fopen(conf, "w");
    if (!f ||
        fprintf(f,
                "# written by kedge-bridge join; see conf/kedge-bridge.conf for every key\n"
                "node_name %s\ncloud_host %s\ncloud_port %s\ncloud_https_port %s\n"
                "tls_ca_file %s\ntls_cert_file %s\ntls_key_file %s\n",
                node, cloud, port, https_port, ca, cert, key) < 0 ||
        fclose(f) != 0) {
        kedge_log(KEDGE_LOG_ERR, "join: cannot write %s: %s", conf, strerror(errno));
        return 1;
    }
    kedge_log(KEDGE_LOG_NOTICE, "join: node %s joined %s; configuration in %s", node, cloud, conf);
    return 0;
}

int main(int argc, char **argv)
{
    struct bridge br;
    struct twinbus tb;
    struct node *node = NULL;
    struct cloudq_opts ob_opts;
    struct metrics_bridge mb;
    const char *conf = NULL;
    char **overrides = NULL;
    int n_over = 0, i, rc = 1;

    memset(&br, 0, sizeof(br));
    if (argc > 1 && !strcmp(argv[1], "join"))
        return join(argc, argv);
    if (fault_init() < 0)
        return 2;
    overrides = calloc((size_t)argc, sizeof(*overrides));
    if (!overrides)
        return 1;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            free(overrides);
            return 0;
        } else if (!strcmp(argv[i], "-c") && i + 1 < argc) {
            conf = argv[++i];
        } else if (strchr(argv[i], '=') && argv[i][0] != '-') {
            overrides[n_over++] = argv[i];
        } else {
            usage(stderr);
            free(overrides);
            return 2;
        }
    }
    if (!conf) {
        FILE *f = fopen("/etc/kedge/kedge-bridge.conf", "r");
        if (f) {
            fclose(f);
            conf = "/etc/kedge/kedge-bridge.conf";
        }
    }
    if (config_load(&br.cfg, conf, overrides, n_over) < 0)
        goto out;
    kedge_log_level_max = kedge_log_level_named(br.cfg.log_level);
    if (*br.cfg.log_file && (i = kedge_log_open_file(br.cfg.log_file)) < 0) {
        kedge_log(KEDGE_LOG_ERR, "bridge: cannot open log_file %s: %s", br.cfg.log_file,
                  strerror(-i));
        goto out;
    }
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_sink);
    ob_opts = (struct cloudq_opts){
        br.cfg.resend_max, bridge_cloud_answers_state(&br.cfg), br.cfg.upload_budget_bytes,
        !strcmp(br.cfg.upload_policy, "drop-oldest"), br.cfg.poison_after};
    if (cloudq_open(br.cfg.db_path, &ob_opts, &br.cloudq) < 0 || router_new(&br.router) < 0 ||
        create_loop(&br) < 0 || build(&br, &tb) < 0)
        goto out;
    loop_ctx = br.lws;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    kedge_log(KEDGE_LOG_NOTICE, "bridge: node=%s cloud=wss://%s:%ld broker=%s:%ld outbox=%lld",
              br.cfg.node_name, br.cfg.cloud_host, br.cfg.cloud_port, br.cfg.broker_host,
              br.cfg.broker_port, (long long)cloudq_depth(br.cloudq));
    relay_start(br.relay);
    edgehub_start(br.hub);
    certwatch_start(br.certs);
    metamgr_start(br.meta);
    if (node_start(&br, &node) < 0)
        goto out;
    if (edged_start(&br, &br.edged) < 0 || stream_start(&br) < 0)
        goto out;
    if (svcnotify_new(br.lws, &br.svc) < 0 || edgehub_on_link(br.hub, svcnotify_link, br.svc) < 0)
        goto out;
    mb = (struct metrics_bridge){br.hub, br.cloudq, br.certs, br.relay, br.edged, br.stream};
    if (metrics_new(br.lws, br.cfg.metrics_address, br.cfg.metrics_port, &br.metrics) < 0 ||
        metrics_bridge_register(br.metrics, &mb) < 0)
        goto out;
    svcnotify_ready(br.svc);
    while (!stop_requested)
        if (lws_service(br.lws, 0) < 0)
            break;
    kedge_log(KEDGE_LOG_NOTICE, "bridge: stopping");
    svcnotify_stopping(br.svc);
    br.stopping = true;
    relay_stop(br.relay);
    edgehub_stop(br.hub);
    certwatch_stop(br.certs);
    metamgr_stop(br.meta);
    devices_stop(br.devices);
    dmi_stop(br.dmi);
    node_stop(node);
    stream_stop(br.stream); /* its connections cancel their runtime work: before Edged's */
    edged_stop(br.edged);
    close_cloud_link(&br);
    rc = 0;
out:
    stream_stop(br.stream);   /* once; the tunnel's close needs the loop */
    dmi_close(&br);           /* the transport needs the loop */
    svcnotify_free(br.svc);   /* its timer lives in the loop */
    metrics_free(br.metrics); /* its vhost too */
    if (br.lws)
        lws_context_destroy(br.lws); /* closes the websocket and the adopted socket */
    br.lws = NULL;
    metamgr_close(br.meta); /* cancels edged's status waiters: edged must still be there */
    node_free(node);
    stream_free(br.stream); /* stopped above: nothing of Edged's runtime is in use */
    edged_free(br.edged);
    relay_free(br.relay); /* before devices_free: it ends the device messages still waiting */
    devices_free(br.devices);
    dmi_free(br.dmi); /* after relay_free: the reports still waiting end there */
    certwatch_free(br.certs);
    edgehub_free(br.hub);
    router_free(br.router);
    cloudq_close(br.cloudq);
    config_cleanup(&br.cfg);
    free(overrides);
    return rc;
}
