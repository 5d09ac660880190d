/* main.c: kedge-cloudsim's entry point: arguments, logging, signals, the lws context with its
 * vhosts, and the one service loop. Wiring only: CloudHub is hub.c, the controllers are
 * controllers.c, the control API is control.c, certificates are certs.c.
 *
 *   kedge-cloudsim --certs DIR [--port 10000] [--control-port 10010] [--https-port 0]
 *                  [--keepalive-timeout-s 30] [--resend-interval-s 5] [--log-level info]
 *                  [--node edge-node] [--on-malformed drop|close] [--cert-lifetime-s 31536000]
 *                  [--node-grace-s 40] [--read-limit 67108864] [--tunnel-port 0]
 *                  [--stream-port 0]
 *
 * Listens on 127.0.0.1 only; --port or --control-port 0 picks a free one. --https-port P serves
 * the :10002 certificate bootstrap (docs/kubeedge-wire.md §4.3, certsrv.c) on P; 0 (the default) is
 * off, so a test that wants it picks a free port itself. When the listeners are up, prints
 * exactly one line to stdout and flushes it (https_port only when it is on):
 *
 *   cloudsim: ready wss_port=<p> control_port=<p> [https_port=<p>] tunnel_port=<p> stream_port=<p>
 *
 * Logs go to stderr as mosquitto writes them ("<unix time>: cloudsim: ..."). SIGTERM or SIGINT
 * ends the loop; everything is freed and the exit status is 0. A bad command line exits 2, a
 * start-up failure (certificates, a port in use) 1.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/kvconf.h"
#include "kedge/log.h"
#include "kedge/util.h"

/* ---- options: one row per option ------------------------------------------------------------- */

#define F(m) offsetof(struct cloudsim_config, m)
/* clang-format off */
static const struct kvconf_key opts[] = {
    /* name                  type     field                   min max    default */
    {"--certs",               KVCONF_STR, F(certs_dir),           0, 0,     NULL,
     "DIR  certificate directory; missing certificates are made", NULL},
    {"--port",                KVCONF_LONG, F(port),                0, 65535, "10000",
     "P  wss port (CloudHub); 0 = any free port", NULL},
    {"--control-port",        KVCONF_LONG, F(control_port),        0, 65535, "10010",
     "P  HTTP control API port; 0 = any free port", NULL},
    {"--https-port",          KVCONF_LONG, F(https_port),          0, 65535, "0",
     "P  certificate bootstrap service (/ca.crt, /edge.crt); 0 = off", NULL},
    {"--cert-lifetime-s",     KVCONF_LONG, F(cert_lifetime_s),     1, 315360000, "31536000",
     "S  lifetime of the node certificates /edge.crt signs", NULL},
    {"--keepalive-timeout-s", KVCONF_LONG, F(keepalive_timeout_s), 1, 86400, "30",
     "S  close a session after S seconds without a keepalive", NULL},
    {"--resend-interval-s",   KVCONF_LONG, F(resend_interval_s),   1, 3600,  "5",
     "S  re-send an unacked message every S seconds", NULL},
    {"--session-setup-ms",    KVCONF_LONG, F(session_setup_ms),    0, 600000, "10",
     "MS  a new connection's session exists only after MS: keepalives and acks before are "
     "dropped", NULL},
    {"--node-grace-s",        KVCONF_LONG, F(node_grace_s),        1, 86400, "40",
     "S  a node whose lease is not renewed for S seconds turns NotReady (Unknown)", NULL},
    {"--log-level",           KVCONF_STR, F(log_level),           0, 0,     "info",
     "L  error|warning|notice|info|debug", NULL},
    {"--node",                KVCONF_STR, F(node),                0, 0,     "edge-node",
     "NAME  the node the edge certificate is made for", NULL},
    {"--on-malformed",        KVCONF_STR, F(on_malformed),        0, 0,     "drop",
     "drop|close  bad JSON from the edge: log and drop it, or close as cloudcore", NULL},
    {"--cloud-version",       KVCONF_STR, F(cloud_version),       0, 0,     "1.15",
     "MAJOR.MINOR  the cloudcore generation: device ids ns/name from 1.17", NULL},
    {"--read-limit",          KVCONF_LONG, F(read_limit),          1024, 1073741824, "67108864",
     "BYTES  close the link (1009) on a message from the edge over BYTES (cloudcore: none)", NULL},
    {"--tunnel-port",         KVCONF_LONG, F(tunnel_port),         0, 65535, "0",
     "P  CloudStream tunnel (wss, /v1/kubeedge/connect); 0 = any free port", NULL},
    {"--stream-port",         KVCONF_LONG, F(stream_port),         0, 65535, "0",
     "P  CloudStream stream server for the API server (plain HTTP); 0 = any free port", NULL},
};
/* clang-format on */
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static void usage(FILE *f)
{
    size_t i;

    (void)fprintf(f, "usage: kedge-cloudsim --certs DIR [options]\n");
    for (i = 0; i < N_OPTS; i++)
        (void)fprintf(f, "  %-22s %s%s%s%s\n", opts[i].key, opts[i].help,
                      opts[i].def ? " (default " : "", opts[i].def ? opts[i].def : "",
                      opts[i].def ? ")" : "");
}

/* cloudsim's wording for kvconf's faults (the only ones its options can meet). */
static void opt_report(void *arg, const struct kvconf_error *e)
{
    (void)arg;
    if (e->fault == KVCONF_NOT_LONG)
        (void)fprintf(stderr, "kedge-cloudsim: %s: '%s' is not an integer in %ld..%ld\n",
                      e->key->key, e->value, e->key->min, e->key->max);
}

static struct kvconf opt_table(struct cloudsim_config *cfg)
{
    struct kvconf c = {opts, N_OPTS, cfg, false, opt_report, NULL};

    return c;
}

static void config_cleanup(struct cloudsim_config *cfg)
{
    struct kvconf c = opt_table(cfg);

    kvconf_free(&c);
    memset(cfg, 0, sizeof(*cfg));
}

static const struct {
    const char *name;
    int level;
} log_levels[] = {
    {"error", KEDGE_LOG_ERR}, {"warning", KEDGE_LOG_WARN}, {"notice", KEDGE_LOG_NOTICE},
    {"info", KEDGE_LOG_INFO}, {"debug", KEDGE_LOG_DEBUG},
};

/* Parse into cfg (defaults first), then check the whole. Returns 0, 1 for --help, -1. */
static int config_parse(int argc, char **argv, struct cloudsim_config *cfg, int *log_level)
{
    struct kvconf c = opt_table(cfg);
    size_t i;
    int a;

    memset(cfg, 0, sizeof(*cfg));
    if (kvconf_defaults(&c) < 0)
        return -1;
    for (a = 1; a < argc; a++) {
        const char *arg = argv[a], *eq = strchr(arg, '='), *value;
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct kvconf_key *o;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return 1;
        o = kvconf_find(&c, arg, nlen);
        if (!o) {
            (void)fprintf(stderr, "kedge-cloudsim: unknown option '%s'\n", arg);
            return -1;
        }
        if (eq) {
            value = eq + 1;
        } else if (a + 1 < argc) {
            value = argv[++a];
        } else {
            (void)fprintf(stderr, "kedge-cloudsim: %s needs a value\n", o->key);
            return -1;
        }
        if (kvconf_set(&c, o, value, NULL) < 0)
            return -1;
    }

    if (!cfg->certs_dir || !*cfg->certs_dir) {
        (void)fprintf(stderr, "kedge-cloudsim: --certs DIR is required\n");
        return -1;
    }
    if (!*cfg->node) {
        (void)fprintf(stderr, "kedge-cloudsim: --node must not be empty\n");
        return -1;
    }
    *log_level = -1;
    for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
        if (strcmp(cfg->log_level, log_levels[i].name) == 0)
            *log_level = log_levels[i].level;
    if (*log_level < 0) {
        (void)fprintf(stderr,
                      "kedge-cloudsim: --log-level: '%s' is not one of "
                      "error|warning|notice|info|debug\n",
                      cfg->log_level);
        return -1;
    }
    if (strcmp(cfg->on_malformed, "drop") != 0 && strcmp(cfg->on_malformed, "close") != 0) {
        (void)fprintf(stderr, "kedge-cloudsim: --on-malformed: '%s' is not drop|close\n",
                      cfg->on_malformed);
        return -1;
    }
    cfg->close_on_malformed = strcmp(cfg->on_malformed, "close") == 0;
    {
        char *end;
        const char *v = cfg->cloud_version;
        if (strncmp(v, "1.", 2) != 0 || (cfg->cloud_minor = strtol(v + 2, &end, 10)) < 0 ||
            end == v + 2 || (*end && *end != '.')) {
            (void)fprintf(stderr, "kedge-cloudsim: --cloud-version: '%s' is not 1.MINOR\n", v);
            return -1;
        }
    }
    return 0;
}

/* ---- logging --------------------------------------------------------------------------------- */

static void log_sink(int level, const char *line)
{
    (void)level;
    (void)fprintf(stderr, "%lld: %s\n", (long long)time(NULL), line);
}

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);

    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    kedge_log(level == LLL_ERR    ? KEDGE_LOG_ERR
              : level == LLL_WARN ? KEDGE_LOG_WARN
                                  : KEDGE_LOG_DEBUG,
              "cloudsim: lws: %.*s", (int)n, line);
}

/* ---- signals --------------------------------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;
static struct lws_context *volatile signal_ctx;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    if (signal_ctx)
        lws_cancel_service(signal_ctx); /* writes to lws's event pipe: wakes the loop */
}

static int install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    (void)sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
        return -errno;
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        return -errno;
    return 0;
}

/* ---- vhosts ---------------------------------------------------------------------------------- */

/* A TLS vhost on 127.0.0.1 with the cloud's server certificate and CA, TLS 1.2+ (every port
 * of cloudcore's but the control API); ciphers NULL: OpenSSL's defaults. */
static struct lws_vhost *tls_vhost(struct lws_context *ctx, const char *name, long port,
                                   const struct lws_protocols *protocols, void *user,
                                   const struct cloudsim_certs *certs, uint64_t options,
                                   const char *ciphers)
{
    struct lws_context_creation_info vi;

    memset(&vi, 0, sizeof(vi));
    vi.vhost_name = name;
    vi.iface = "127.0.0.1";
    vi.port = (int)port;
    vi.protocols = protocols;
    vi.user = user;
    vi.options = options | LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT |
                 LWS_SERVER_OPTION_DISABLE_IPV6;
    vi.ssl_cert_filepath = certs->server_crt;
    vi.ssl_private_key_filepath = certs->server_key;
    vi.ssl_ca_filepath = certs->ca_crt;
    vi.ssl_cipher_list = ciphers;
    vi.ssl_options_set = (long)(SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);
    vi.alpn = "http/1.1";
    vi.timeout_secs = 30; /* CloudHub's handshake timeout */
    return lws_create_vhost(ctx, &vi);
}

/* CloudHub's TLS (cloud/pkg/cloudhub/servers/server.go createTLSConfig): the TLS 1.2 suites
 * limited to ECDHE-ECDSA with AES-GCM / ChaCha20, a client certificate required and verified
 * against the CA (the verdict itself: hub.c, LWS_CALLBACK_OPENSSL_PERFORM_...). */
static struct lws_vhost *make_wss_vhost(struct lws_context *ctx, const struct cloudsim_config *cfg,
                                        const struct cloudsim_certs *certs, struct hub *hub)
{
    return tls_vhost(ctx, "cloudhub", cfg->port, hub_protocols, hub, certs, 0,
                     "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                     "ECDHE-ECDSA-CHACHA20-POLY1305");
}

static struct lws_vhost *make_control_vhost(struct lws_context *ctx,
                                            const struct cloudsim_config *cfg, struct hub *hub)
{
    struct lws_context_creation_info vi;

    memset(&vi, 0, sizeof(vi));
    vi.vhost_name = "control";
    vi.iface = "127.0.0.1";
    vi.port = (int)cfg->control_port;
    vi.protocols = control_protocols;
    vi.user = hub;
    vi.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    vi.timeout_secs = 30;
    return lws_create_vhost(ctx, &vi);
}

/* cloudcore's :10002 (certsrv.c): a client certificate is asked for but not required (joins
 * have none), and judged per request. */
static struct lws_vhost *make_https_vhost(struct lws_context *ctx,
                                          const struct cloudsim_config *cfg,
                                          const struct cloudsim_certs *certs, struct certsrv *cs)
{
    return tls_vhost(ctx, "certsrv", cfg->https_port, certsrv_protocols, cs, certs,
                     LWS_SERVER_OPTION_PEER_CERT_NOT_REQUIRED, NULL);
}

/* CloudStream's tunnel (stream.c): TLS as CloudHub's (cloudcore falls back to cloudHub's
 * certificates), a client certificate required. */
static struct lws_vhost *make_tunnel_vhost(struct lws_context *ctx,
                                           const struct cloudsim_config *cfg,
                                           const struct cloudsim_certs *certs, struct cstream *cs)
{
    return tls_vhost(ctx, "cloudstream", cfg->tunnel_port, cstream_tunnel_protocols, cs, certs, 0,
                     NULL);
}

/* Its stream server (streamapi.c): raw TCP, the HTTP parsed there. */
static struct lws_vhost *make_streamapi_vhost(struct lws_context *ctx,
                                              const struct cloudsim_config *cfg, struct cstream *cs)
{
    struct lws_context_creation_info vi;

    memset(&vi, 0, sizeof(vi));
    vi.vhost_name = "cloudstream-api";
    vi.iface = "127.0.0.1";
    vi.port = (int)cfg->stream_port;
    vi.protocols = cstream_api_protocols;
    vi.user = cs;
    vi.options =
        LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG | LWS_SERVER_OPTION_DISABLE_IPV6;
    vi.listen_accept_role = "raw-skt";
    vi.listen_accept_protocol = "cloudstream-api";
    return lws_create_vhost(ctx, &vi);
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    struct cloudsim_config cfg;
    struct cloudsim_certs certs;
    struct lws_context *ctx = NULL;
    struct lws_vhost *wss, *control, *https = NULL, *tunnel, *streamapi;
    struct hub *hub = NULL;
    struct cstream *cs = NULL;
    struct certsrv *certsrv = NULL;
    int rc, level, exit_code = 1;

    memset(&certs, 0, sizeof(certs));
    rc = config_parse(argc, argv, &cfg, &level);
    if (rc != 0) {
        usage(rc > 0 ? stdout : stderr);
        config_cleanup(&cfg);
        return rc > 0 ? 0 : 2;
    }
    kedge_log_set_sink(log_sink);
    kedge_log_level_max = level;
    lws_set_log_level(level >= KEDGE_LOG_DEBUG ? LLL_ERR | LLL_WARN | LLL_NOTICE
                                               : LLL_ERR | LLL_WARN,
                      lws_log_emit);

    rc = certs_ensure(cfg.certs_dir, cfg.node, &certs);
    if (rc < 0) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: no usable certificates in dir=%s", cfg.certs_dir);
        goto out;
    }
    rc = hub_new(&cfg, certs.ca_crt, &hub);
    if (rc < 0) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: start-up failed err=%d", rc);
        goto out;
    }
    if (cstream_new(&cs) < 0) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: start-up failed: out of memory");
        goto out;
    }
    if (cfg.https_port && certsrv_new(&cfg, &certs, &certsrv) < 0) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: the certificate service cannot start");
        goto out;
    }
    if (install_signals() < 0) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: cannot install signal handlers");
        goto out;
    }

    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.fd_limit_per_thread = 256; /* lws sizes tables from this; the default is ulimit -n */
    ctx = lws_create_context(&info);
    if (!ctx) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: lws_create_context failed");
        goto out;
    }
    hub_set_context(hub, ctx);
    hub_set_cstream(hub, cs);
    cstream_set_context(cs, ctx);
    signal_ctx = ctx;

    wss = make_wss_vhost(ctx, &cfg, &certs, hub);
    if (!wss) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: cannot listen on 127.0.0.1:%ld (wss)", cfg.port);
        goto out;
    }
    control = make_control_vhost(ctx, &cfg, hub);
    if (!control) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: cannot listen on 127.0.0.1:%ld (control)",
                  cfg.control_port);
        goto out;
    }

    if (certsrv) {
        https = make_https_vhost(ctx, &cfg, &certs, certsrv);
        if (!https) {
            kedge_log(KEDGE_LOG_ERR, "cloudsim: cannot listen on 127.0.0.1:%ld (https)",
                      cfg.https_port);
            goto out;
        }
    }

    tunnel = make_tunnel_vhost(ctx, &cfg, &certs, cs);
    streamapi = tunnel ? make_streamapi_vhost(ctx, &cfg, cs) : NULL;
    if (!streamapi) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: cannot listen on 127.0.0.1:%ld/%ld (CloudStream)",
                  cfg.tunnel_port, cfg.stream_port);
        goto out;
    }

    kedge_log(KEDGE_LOG_NOTICE,
              "cloudsim: listening wss=127.0.0.1:%d control=127.0.0.1:%d https=%d certs=%s "
              "keepalive_timeout_s=%ld resend_interval_s=%ld",
              lws_get_vhost_listen_port(wss), lws_get_vhost_listen_port(control),
              https ? lws_get_vhost_listen_port(https) : 0, cfg.certs_dir, cfg.keepalive_timeout_s,
              cfg.resend_interval_s);
    if (printf("cloudsim: ready wss_port=%d control_port=%d", lws_get_vhost_listen_port(wss),
               lws_get_vhost_listen_port(control)) < 0 ||
        (https && printf(" https_port=%d", lws_get_vhost_listen_port(https)) < 0) ||
        printf(" tunnel_port=%d stream_port=%d\n", lws_get_vhost_listen_port(tunnel),
               lws_get_vhost_listen_port(streamapi)) < 0 ||
        fflush(stdout) != 0) {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: cannot write the ready line");
        goto out;
    }

    while (!stop_requested)
        if (lws_service(ctx, 0) < 0)
            break;
    kedge_log(KEDGE_LOG_NOTICE, "cloudsim: %s, shutting down",
              stop_requested ? "signal received" : "service loop failed");
    exit_code = stop_requested ? 0 : 1;
out:
    hub_stop(hub);
    cstream_stop(cs);
    signal_ctx = NULL;
    if (ctx)
        lws_context_destroy(ctx);
    hub_free(hub);
    cstream_free(cs);
    certsrv_free(certsrv);
    certs_cleanup(&certs);
    config_cleanup(&cfg);
    return exit_code;
}
