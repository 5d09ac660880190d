/* kedge-bridge configuration: mosquitto-style `key value` lines with `#` comments, one table
 * row per key (type, bounds, default). The file and the command-line overrides are parsed into
 * a fresh struct, validated as a whole, and only then used. Unknown keys and out-of-range
 * values are refused with the file and line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "edged/node.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/ke.h"
#include "kedge/kvconf.h"
#include "kedge/log.h"
#include "kedge/util.h"

#define F(m) offsetof(struct bridge_config, m)
static const struct kvconf_key keys[] = {
    /* key                 type      field                  min  max        default */
    {"node_name", KVCONF_STR, F(node_name), 0, 0, NULL,
     "this edge node's name; must equal the plugin's plugin_opt_node_name", NULL},
    {"node_ip", KVCONF_STR, F(node_ip), 0, 0, "",
     "the node's InternalIP (edgecore's edged nodeIP): empty = the first IPv4 address of an "
     "interface that is up and not loopback, else 127.0.0.1",
     NULL},
    {"project_id", KVCONF_STR, F(project_id), 0, 0, "e632aba927ea4ac2b575ec1603d56f10",
     "CloudHub project id (header project_id and URL path)", NULL},
    {"cloud_host", KVCONF_STR, F(cloud_host), 0, 0, "127.0.0.1", "cloudcore address", NULL},
    {"cloud_port", KVCONF_LONG, F(cloud_port), 1, 65535, "10000", "CloudHub websocket port", NULL},
    {"tls_ca_file", KVCONF_STR, F(tls_ca_file), 0, 0, "/etc/kedge/ca/rootCA.crt",
     "cloudcore's CA (PEM)", NULL},
    {"tls_cert_file", KVCONF_STR, F(tls_cert_file), 0, 0, "/etc/kedge/certs/server.crt",
     "this node's client certificate (PEM)", NULL},
    {"tls_key_file", KVCONF_STR, F(tls_key_file), 0, 0, "/etc/kedge/certs/server.key",
     "this node's private key (PEM)", NULL},
    {"broker_host", KVCONF_STR, F(broker_host), 0, 0, "127.0.0.1", "the local mosquitto", NULL},
    {"broker_port", KVCONF_LONG, F(broker_port), 1, 65535, "1883", "the local mosquitto's port",
     NULL},
    {"broker_username", KVCONF_STR, F(broker_username), 0, 0, KE_DEFAULT_BRIDGE_USERNAME,
     "the bridge identity (plugin_opt_bridge_username)", NULL},
    {"broker_password_file", KVCONF_STR, F(broker_password_file), 0, 0,
     "/etc/kedge/bridge.password", "its password, first line (plugin_opt_bridge_password_file)",
     NULL},
    {"db_path", KVCONF_STR, F(db_path), 0, 0, "/var/lib/kedge/bridge.db",
     "the bridge's own SQLite file (outbox to the cloud)", NULL},
    {"meta_db_path", KVCONF_STR, F(meta_db_path), 0, 0, "/var/lib/kedge/meta.db",
     "MetaManager's SQLite file (KubeEdge's meta table)", NULL},
    {"cloud_version", KVCONF_STR, F(cloud_version), 0, 0, "1.15",
     "cloudcore's version, MAJOR.MINOR: device ids (ns/name from 1.17), node namespace", NULL},
    {"node_namespace", KVCONF_STR, F(node_namespace), 0, 0, "",
     "override: default or null (otherwise from cloud_version: null from 1.23)", NULL},
    /* not newer than the oldest Kubernetes KubeEdge v1.15 supports (1.24): a kubelet newer
     * than its API server breaks the version-skew policy (edgecore v1.15.4 says
     * v1.26.15-kubeedge-v1.15.4, newer than a 1.24 or 1.25 cluster) */
    {"kubelet_version", KVCONF_STR, F(kubelet_version), 0, 0, "v1.24.0-kedge",
     "the node's kubeletVersion: vMAJOR.MINOR.PATCH[-suffix], not newer than the cluster", NULL},
    {"keepalive_s", KVCONF_LONG, F(keepalive_s), 1, 600, "15", "keepalive message to CloudHub",
     NULL},
    {"ping_idle_s", KVCONF_LONG, F(ping_idle_s), 1, 600, "15", "websocket PING after this silence",
     NULL},
    {"dead_link_s", KVCONF_LONG, F(dead_link_s), 2, 3600, "45", "hang up after this silence", NULL},
    {"backoff_initial_ms", KVCONF_LONG, F(backoff_initial_ms), 10, 600000, "1000",
     "first reconnect delay", NULL},
    {"backoff_max_ms", KVCONF_LONG, F(backoff_max_ms), 10, 3600000, "30000", "reconnect delay cap",
     NULL},
    {"cloud_qps", KVCONF_LONG, F(cloud_qps), 0, 100000, "30", "edge->cloud messages/s, 0 = off",
     NULL},
    {"cloud_burst", KVCONF_LONG, F(cloud_burst), 1, 100000, "60", "edge->cloud burst", NULL},
    {"resend_s", KVCONF_LONG, F(resend_s), 1, 3600, "60",
     "resend unconfirmed twin/state messages after", NULL},
    {"resend_max", KVCONF_LONG, F(resend_max), 0, 1000000, "10",
     "unanswered resends before a twin/state message is set aside (0: never)", NULL},
    {"upload_budget_bytes", KVCONF_LONG, F(upload_budget_bytes), 0, 1L << 40, "268435456",
     "bytes of uploads the bridge's queue holds (0: unbounded)", NULL},
    {"upload_policy", KVCONF_STR, F(upload_policy), 0, 0, "refuse",
     "upload budget full: refuse (the plugin keeps them) | drop-oldest (counted)", NULL},
    {"poison_after", KVCONF_LONG, F(poison_after), 0, 1000000, "3",
     "times the cloud refuses an entry (closes the link on it, answers error) before it is a "
     "dead letter (0: never)",
     NULL},
    {"max_frame_bytes", KVCONF_LONG, F(max_frame_bytes), 1024, 1 << 30, "16777216",
     "largest cloud message accepted", NULL},
    {"down_timeout_ms", KVCONF_LONG, F(down_timeout_ms), 100, 600000, "10000",
     "wait this long for the plugin to apply a cloud message", NULL},
    {"log_level", KVCONF_STR, F(log_level), 0, 0, "info", "err|warn|notice|info|debug", NULL},
    {"metrics_address", KVCONF_STR, F(metrics_address), 0, 0, "127.0.0.1",
     "serve /metrics and /healthz on this address", NULL},
    {"metrics_port", KVCONF_LONG, F(metrics_port), 0, 65535, "9475",
     "serve /metrics (Prometheus) and /healthz on this port (0: not at all)", NULL},
    {"log_file", KVCONF_STR, F(log_file), 0, 0, "",
     "append the log to this file instead of stderr (empty: stderr, the journal under systemd)",
     NULL},
    {"cloud_https_port", KVCONF_LONG, F(cloud_https_port), 1, 65535, "10002",
     "CloudHub's certificate endpoint (join, rotation)", NULL},
    {"rotate_certificates", KVCONF_LONG, F(rotate_certificates), 0, 1, "1",
     "renew the node certificate at 70-90% of its lifetime", NULL},
    {"status_interval_s", KVCONF_LONG, F(status_interval_s), 1, 3600, "10",
     "compute the node status this often; sent when changed, at least every 5 min", NULL},
    {"lease_interval_s", KVCONF_LONG, F(lease_interval_s), 1, 3600, "10",
     "renew the node lease this often (lease duration 40 s)", NULL},
    {"remote_query_timeout_s", KVCONF_LONG, F(remote_query_timeout_s), 1, 3600, "60",
     "wait this long for the cloud's answer to a query, registration, status or lease", NULL},
    {"engine_socket", KVCONF_STR, F(engine_socket), 0, 0, "/var/run/docker.sock",
     "Docker Engine API socket (dockerd, or podman system service); none = no pods", NULL},
    {"pods_dir", KVCONF_STR, F(pods_dir), 0, 0, "/var/lib/kedge/pods",
     "pod volumes (emptyDir, configMap, secret files)", NULL},
    {"pod_infra_image", KVCONF_STR, F(pod_infra_image), 0, 0, "kubeedge/pause:3.6",
     "image of the container holding a pod's network namespace", NULL},
    {"pod_backoff_initial_ms", KVCONF_LONG, F(pod_backoff_initial_ms), 100, 3600000, "10000",
     "first restart back-off of a crashing container (doubles)", NULL},
    {"pod_backoff_max_ms", KVCONF_LONG, F(pod_backoff_max_ms), 100, 3600000, "300000",
     "restart back-off cap", NULL},
    {"pod_resync_s", KVCONF_LONG, F(pod_resync_s), 1, 3600, "10",
     "relist the engine's containers at least this often (events come in between)", NULL},
    {"engine_nofile", KVCONF_LONG, F(engine_nofile), 0, 1 << 30, "0",
     "RLIMIT_NOFILE for containers (podman without containers.conf needs it); 0 = engine's", NULL},
    {"engine_nproc", KVCONF_LONG, F(engine_nproc), 0, 1 << 30, "0",
     "RLIMIT_NPROC for containers; 0 = the engine's", NULL},
    /* DMI (KubeEdge v1.15's device management interface, cloudbridge/dmi/) */
    {"dmi_enabled", KVCONF_LONG, F(dmi_enabled), 0, 1, "1",
     "serve DMI: mappers register and report over gRPC, and get the cloud's device changes", NULL},
    {"dmi_socket", KVCONF_STR, F(dmi_socket), 0, 0, "/etc/kubeedge/dmi.sock",
     "the DeviceManagerService socket mappers call (edgecore's path)", NULL},
    {"dmi_socket_mode", KVCONF_STR, F(dmi_socket_mode), 0, 0, "0660",
     "its permissions, octal (who may be a mapper)", NULL},
    {"dmi_call_timeout_ms", KVCONF_LONG, F(dmi_call_timeout_ms), 100, 600000, "10000",
     "a call to a mapper's socket gives up after this (edgecore: 10 s)", NULL},
    {"dmi_max_msg_bytes", KVCONF_LONG, F(dmi_max_msg_bytes), 1024, 1L << 30, "4194304",
     "largest DMI message either way (gRPC's default 4 MiB)", NULL},
    /* EdgeStream (kubectl logs/exec/attach through cloudcore's CloudStream, cloudbridge/stream/) */
    {"stream_enabled", KVCONF_LONG, F(stream_enabled), 0, 1, "1",
     "open cloudcore's CloudStream tunnel for kubectl logs, exec, attach", NULL},
    {"stream_server", KVCONF_STR, F(stream_server), 0, 0, "",
     "host:port of cloudcore's tunnel port; empty = cloud_host:10004 (cloudStream.tunnelPort)",
     NULL},
    {"stream_node_ip", KVCONF_STR, F(stream_node_ip), 0, 0, "",
     "the address kube-apiserver reaches this node's kubelet port at (SessionInternalIP); "
     "empty = the node's InternalIP",
     NULL},
};
#undef F
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

void config_print_keys(void)
{
    size_t i;

    for (i = 0; i < N_KEYS; i++)
        printf("  %-22s %-34s %s\n", keys[i].key, keys[i].def ? keys[i].def : "(required)",
               keys[i].help);
}

/* kvconf's text behind "config: ", as the bridge has always logged it. */
static void report(void *arg, const struct kvconf_error *e)
{
    char text[4400];

    (void)arg;
    kvconf_describe(e, text, sizeof(text));
    kedge_log(KEDGE_LOG_ERR, "config: %s", text);
}

static struct kvconf table(struct bridge_config *cfg)
{
    struct kvconf c = {keys, N_KEYS, cfg, false, report, NULL};

    return c;
}

static int read_password(struct bridge_config *cfg)
{
    return kvconf_read_secret("config: broker_password_file", cfg->broker_password_file,
                              &cfg->password);
}

/* cloud_version "MAJOR.MINOR" (a ".PATCH" or "v" prefix is tolerated) -> the two behaviours
 * that differ between cloudcore generations (docs/kubeedge-wire.md §9):
 *  - device ids: the device name up to v1.16, {namespace}/{name} from v1.17 (v1.16.0 named
 *    devices ns/name in membership but still read one level in twin/edge_updated; v1.17.0 is
 *    the first release where both sides agree, commit b7a10ce39);
 *  - node resources under "default/" up to v1.22, "null/" from v1.23.
 * node_namespace, the older key, still overrides the derived namespace. */
static int derive_generation(struct bridge_config *cfg)
{
    const char *v = cfg->cloud_version;
    long major = 0, minor = 0;
    char *end;

    if (*v == 'v')
        v++;
    major = strtol(v, &end, 10);
    if (end != v && *end == '.') {
        const char *m = end + 1;
        minor = strtol(m, &end, 10);
        if (end == m)
            major = 0;
    } else {
        major = 0;
    }
    if (major != 1 || minor < 0 || minor > 999 || (*end && *end != '.')) {
        kedge_log(KEDGE_LOG_ERR,
                  "config: cloud_version '%s' is not MAJOR.MINOR of a KubeEdge 1.x "
                  "cloudcore, e.g. 1.15 or 1.17",
                  cfg->cloud_version);
        return KEDGE_ECONFIG;
    }
    cfg->cloud_minor = minor;
    if (!*cfg->node_namespace) {
        kedge_free(cfg->node_namespace);
        cfg->node_namespace = kedge_strdup(minor >= 23 ? "null" : "default");
        if (!cfg->node_namespace)
            return -ENOMEM;
    } else if (strcmp(cfg->node_namespace, "default") && strcmp(cfg->node_namespace, "null")) {
        kedge_log(KEDGE_LOG_ERR, "config: node_namespace must be default or null");
        return KEDGE_ECONFIG;
    }
    return 0;
}

bool config_device_ids_namespaced(const struct bridge_config *cfg)
{
    return cfg->cloud_minor >= 17;
}

/* A Kubernetes version as kubelet reports it (k8s.io/apimachinery/pkg/util/version parses
 * it): v, three numbers, then optionally -pre or +build of printable characters. */
static bool kube_version_ok(const char *v)
{
    int i;

    if (!v || *v++ != 'v')
        return false;
    for (i = 0; i < 3; i++) {
        if (*v < '0' || *v > '9')
            return false;
        while (*v >= '0' && *v <= '9')
            v++;
        if (i < 2 && *v++ != '.')
            return false;
    }
    if (*v && *v != '-' && *v != '+')
        return false;
    for (; *v; v++)
        if (*v <= ' ' || *v > '~')
            return false;
    return true;
}

/* An octal file mode, 0 to 0777. */
static int parse_mode(const char *text, long *mode)
{
    char *end;

    if (!*text || strspn(text, "01234567") != strlen(text))
        return -1;
    *mode = strtol(text, &end, 8);
    return *mode > 0777 ? -1 : 0;
}

/* One InternalIP for everything that names the node's address (the Node's addresses, the
 * pods' hostIP, EdgeStream's SessionInternalIP): read once, so they never disagree. */
static int settle_node_ip(struct bridge_config *cfg)
{
    struct in_addr a;
    char ip[64];

    if (*cfg->node_ip) {
        if (inet_pton(AF_INET, cfg->node_ip, &a) != 1) {
            kedge_log(KEDGE_LOG_ERR, "config: node_ip '%s' is not an IPv4 address", cfg->node_ip);
            return KEDGE_ECONFIG;
        }
        return 0;
    }
    node_internal_ip(ip, sizeof(ip));
    kedge_free(cfg->node_ip);
    cfg->node_ip = kedge_strdup(ip);
    return cfg->node_ip ? 0 : -ENOMEM;
}

static int check_whole(struct bridge_config *cfg)
{
    int rc;

    if (!cfg->node_name || !*cfg->node_name || strchr(cfg->node_name, '/')) {
        kedge_log(KEDGE_LOG_ERR, "config: node_name is required and must be one path level");
        return KEDGE_ECONFIG;
    }
    rc = derive_generation(cfg);
    if (rc < 0)
        return rc;
    rc = settle_node_ip(cfg);
    if (rc < 0)
        return rc;
    if (!kube_version_ok(cfg->kubelet_version)) {
        kedge_log(KEDGE_LOG_ERR,
                  "config: kubelet_version '%s' is not vMAJOR.MINOR.PATCH with an "
                  "optional -suffix or +suffix",
                  cfg->kubelet_version);
        return KEDGE_ECONFIG;
    }
    if (cfg->dead_link_s <= cfg->ping_idle_s) {
        kedge_log(KEDGE_LOG_ERR, "config: dead_link_s (%ld) must be above ping_idle_s (%ld)",
                  cfg->dead_link_s, cfg->ping_idle_s);
        return KEDGE_ECONFIG;
    }
    if (strcmp(cfg->upload_policy, "refuse") && strcmp(cfg->upload_policy, "drop-oldest")) {
        kedge_log(KEDGE_LOG_ERR, "config: upload_policy '%s' is not refuse or drop-oldest",
                  cfg->upload_policy);
        return KEDGE_ECONFIG;
    }
    if (parse_mode(cfg->dmi_socket_mode, &cfg->dmi_mode) < 0) {
        kedge_log(KEDGE_LOG_ERR, "config: dmi_socket_mode '%s' is not an octal mode like 0660",
                  cfg->dmi_socket_mode);
        return KEDGE_ECONFIG;
    }
    if (config_stream_server(cfg, NULL, 0, NULL) < 0) {
        kedge_log(KEDGE_LOG_ERR, "config: stream_server '%s' is not host:port", cfg->stream_server);
        return KEDGE_ECONFIG;
    }
    if (cfg->backoff_max_ms < cfg->backoff_initial_ms) {
        kedge_log(KEDGE_LOG_ERR, "config: backoff_max_ms is below backoff_initial_ms");
        return KEDGE_ECONFIG;
    }
    return read_password(cfg);
}

int config_load(struct bridge_config *cfg, const char *path, char *const *overrides, int n)
{
    struct kvconf c = table(cfg);
    char where[64];
    int k, rc;

    memset(cfg, 0, sizeof(*cfg));
    rc = kvconf_defaults(&c);
    if (rc == 0 && path)
        rc = kvconf_file(&c, path, false);
    for (k = 0; k < n && rc == 0; k++) {
        char *line = kedge_strdup(overrides[k]);
        if (!line) {
            rc = -ENOMEM;
            break;
        }
        snprintf(where, sizeof(where), "argument %d", k + 1);
        rc = kvconf_line(&c, line, '=', where);
        kedge_free(line);
    }
    if (rc == 0)
        rc = check_whole(cfg);
    if (rc < 0)
        config_cleanup(cfg);
    return rc;
}

void config_cleanup(struct bridge_config *cfg)
{
    struct kvconf c = table(cfg);

    kvconf_free(&c);
    if (cfg->password)
        memset(cfg->password, 0, strlen(cfg->password));
    kedge_free(cfg->password);
    cfg->password = NULL;
}

/* cloudcore's default tunnelPort (cloudStream config, v1.15) */
#define STREAM_DEFAULT_PORT 10004

int config_stream_server(const struct bridge_config *cfg, char *host, size_t host_len, long *port)
{
    const char *s = cfg->stream_server, *colon = strrchr(s, ':');
    char *end;
    long p;

    if (!*s) {
        if (host)
            snprintf(host, host_len, "%s", cfg->cloud_host);
        if (port)
            *port = STREAM_DEFAULT_PORT;
        return 0;
    }
    if (!colon || colon == s)
        return -1;
    p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || p < 1 || p > 65535)
        return -1;
    if (host)
        snprintf(host, host_len, "%.*s", (int)(colon - s), s);
    if (port)
        *port = p;
    return 0;
}

bool bridge_cloud_answers_state(const struct bridge_config *cfg)
{
    /* devicecontroller's upstream knows state/update from v1.18.0 (GetResourceTypeForDevice,
     * updateDeviceStates); up to v1.17 it is "unknown resource" and never answered */
    return cfg->cloud_minor >= 18;
}
