/* The bridge's configuration: one struct with every key of kedge-bridge.conf (conf/ has them
 * all with their defaults), filled and validated as a whole by config.c. main.c owns it and
 * hands each module the few values it uses, never the whole struct.
 */
#ifndef KEDGE_BRIDGE_CONFIG_H
#define KEDGE_BRIDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct bridge_config {
    char *node_name;
    char *node_ip; /* never empty after config_load: detected when not set */
    char *project_id;
    char *cloud_host;
    long cloud_port;
    char *tls_ca_file;
    char *tls_cert_file;
    char *tls_key_file;
    char *broker_host;
    long broker_port;
    char *broker_username;
    char *broker_password_file;
    char *db_path;
    long keepalive_s; /* application keepalive to CloudHub (edgecore: 15) */
    long ping_idle_s; /* websocket PING after this much silence */
    long dead_link_s; /* hang up after this much silence (ping unanswered) */
    long backoff_initial_ms;
    long backoff_max_ms;
    long cloud_qps; /* 0: no limit */
    long cloud_burst;
    long resend_s;            /* unconfirmed twin/state messages go again (edgecore: 60) */
    long resend_max;          /* ... at most this often, then set aside (0: for ever) */
    long upload_budget_bytes; /* bytes of uploads the queue holds (0: unbounded) */
    char *upload_policy;      /* budget full: "refuse" (back-pressure) or "drop-oldest" */
    long poison_after;        /* refusals by the cloud before an entry is a dead letter */
    long max_frame_bytes;
    long down_timeout_ms; /* plugin answer to a cloud message */
    char *log_level;
    char *log_file; /* "": stderr */
    char *metrics_address;
    long metrics_port;     /* 0: no /metrics */
    long cloud_https_port; /* CloudHub's certificate endpoint (10002) */
    long rotate_certificates;
    char *meta_db_path;          /* MetaManager's own SQLite file */
    char *cloud_version;         /* cloudcore's MAJOR.MINOR: selects the generation (config.c) */
    long cloud_minor;            /* derived: 15 for "1.15" */
    char *node_namespace;        /* "default" (cloudcore v1.12-v1.22) or "null" (v1.23+): derived
                                    from cloud_version unless set */
    char *kubelet_version;       /* the Node's nodeInfo.kubeletVersion */
    long status_interval_s;      /* node status computed (kubelet: 10 s) */
    long lease_interval_s;       /* node lease renewed (kubelet: 10 s) */
    long remote_query_timeout_s; /* edgecore's remoteQueryTimeout (60 s) */
    char *engine_socket;         /* Docker Engine API socket; "none": Edged off */
    char *pods_dir;              /* volumes of the pods: {pods_dir}/{uid}/volumes/{name} */
    char *pod_infra_image;       /* the infra ("pause") container's image */
    long pod_backoff_initial_ms, pod_backoff_max_ms; /* kubelet's crash back-off: 10 s, 300 s */
    long pod_resync_s;                /* relist the engine's containers at least this often */
    long engine_nofile, engine_nproc; /* Ulimits sent with every create; 0 = the engine's */
    long dmi_enabled;                 /* serve DMI (cloudbridge/dmi/) */
    char *dmi_socket;                 /* DeviceManagerService (/etc/kubeedge/dmi.sock) */
    char *dmi_socket_mode;            /* octal text */
    long dmi_mode;                    /* derived from dmi_socket_mode */
    long dmi_call_timeout_ms;         /* a call to a mapper (edgecore: 10 s) */
    long dmi_max_msg_bytes;           /* largest DMI message (4 MiB) */
    long stream_enabled;              /* EdgeStream: the CloudStream tunnel (cloudbridge/stream/) */
    char *stream_server;              /* host:port of cloudcore's tunnel; "": cloud_host:10004 */
    char *stream_node_ip;             /* SessionInternalIP; "": the node's InternalIP */
    char *password;                   /* read from broker_password_file */
};

/* Parse the file (may be NULL: defaults only), then `key=value` overrides, into a fresh cfg;
 * validate as a whole. Errors name the file and line. Returns 0, KEDGE_ECONFIG, -ENOMEM. */
int config_load(struct bridge_config *cfg, const char *path, char *const *overrides, int n);
void config_cleanup(struct bridge_config *cfg);
/* Print every key with its current value (for --help and the docs). */
void config_print_keys(void);
/* Device ids are {namespace}/{name} (cloudcore v1.17+), else the bare name. */
bool config_device_ids_namespaced(const struct bridge_config *cfg);
/* The tunnel server of stream_server (or cloud_host and 10004 when it is empty) into host;
 * 0, or -1 when it is not host:port. */
int config_stream_server(const struct bridge_config *cfg, char *host, size_t host_len, long *port);
/* Whether the configured cloud answers a device's state/update (cloudcore v1.18+). */
bool bridge_cloud_answers_state(const struct bridge_config *cfg);

#endif
