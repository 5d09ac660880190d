/* A v1.Pod's JSON -> struct pod_spec: what kubelet reads of it, defaulted as the API server
 * defaults it and validated where kubelet would trip. Pure: no I/O, no event loop.
 */
#ifndef KEDGE_EDGED_PODSPEC_H
#define KEDGE_EDGED_PODSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"

struct pod_kv {
    char *name, *value;
};

enum pod_env_source {
    ENV_VALUE,     /* value (may be "") */
    ENV_CONFIGMAP, /* valueFrom.configMapKeyRef: ref_name, ref_key */
    ENV_SECRET,    /* valueFrom.secretKeyRef: ref_name, ref_key (the value is base64 in store) */
    ENV_FIELD,     /* valueFrom.fieldRef: ref_key = fieldPath */
    ENV_RESOURCE,  /* valueFrom.resourceFieldRef: ref_key = resource ("limits.cpu", ...) */
};

struct pod_env {
    char *name;
    enum pod_env_source src;
    char *value;
    char *ref_name, *ref_key;
    bool optional;
};

struct pod_env_from {
    bool secret; /* secretRef, else configMapRef */
    char *name, *prefix;
    bool optional;
};

enum pod_probe_kind { PROBE_NONE, PROBE_EXEC, PROBE_HTTP, PROBE_TCP };

struct pod_probe {
    enum pod_probe_kind kind;
    char **command; /* exec */
    size_t n_command;
    char *path, *host, *scheme; /* httpGet: path "/" by default, scheme "HTTP" */
    int port;                   /* httpGet / tcpSocket; named ports resolved against ports[] */
    struct pod_kv *headers;     /* httpGet httpHeaders */
    size_t n_headers;
    int initial_delay_s, period_s, timeout_s, success_threshold, failure_threshold;
};

struct pod_port {
    char *name, *protocol, *host_ip; /* protocol "TCP" | "UDP" | "SCTP"; host_ip may be NULL */
    int container_port, host_port;   /* host_port 0: not published */
};

struct pod_mount {
    char *name, *mount_path, *sub_path; /* sub_path may be NULL */
    bool read_only;
};

struct pod_container {
    char *name, *image;
    char *pull_policy; /* "Always" | "IfNotPresent" | "Never", defaulted as the API server does */
    char **command, **args;
    size_t n_command, n_args;
    char *working_dir;
    struct pod_env *env;
    size_t n_env;
    struct pod_env_from *env_from;
    size_t n_env_from;
    struct pod_port *ports;
    size_t n_ports;
    struct pod_mount *mounts;
    size_t n_mounts;
    int64_t cpu_limit_milli, cpu_request_milli; /* 0: none */
    int64_t mem_limit_bytes, mem_request_bytes;
    struct pod_probe liveness, readiness, startup;
    bool tty, stdin_open;
    uint32_t hash; /* of the container's JSON as written: a change means a new container */
};

enum pod_volume_kind {
    VOL_EMPTYDIR,
    VOL_HOSTPATH,
    VOL_CONFIGMAP,
    VOL_SECRET,
    VOL_PROJECTED, /* sources[] */
    VOL_DOWNWARD,  /* downwardAPI: fields[] */
    VOL_UNSUPPORTED
};

struct pod_key_path {
    char *key, *path;
    int mode; /* -1: the volume's default_mode */
};

/* One file of a downwardAPI volume or projection (v1.DownwardAPIVolumeFile): fieldRef
 * (field_path) or resourceFieldRef (resource, container, divisor). */
struct pod_field_file {
    char *path;
    char *field_path;           /* NULL for a resourceFieldRef */
    char *resource, *container; /* "limits.cpu", ...; the container is required in a volume */
    char *divisor;              /* the quantity's text; NULL: "1" */
    int mode;                   /* -1: the volume's default_mode */
};

enum pod_projection_kind { PROJ_NONE, PROJ_CONFIGMAP, PROJ_SECRET, PROJ_DOWNWARD, PROJ_TOKEN };

/* One source of a projected volume (v1.VolumeProjection). */
struct pod_projection {
    enum pod_projection_kind kind;
    char *name; /* configMap / secret */
    struct pod_key_path *items;
    size_t n_items;
    bool optional;
    struct pod_field_file *fields; /* downwardAPI */
    size_t n_fields;
    char *audience, *path; /* serviceAccountToken: audience "" = the API server's own */
    int64_t expiration_s;  /* serviceAccountToken: 3600 unless given */
};

struct pod_volume {
    char *name;
    enum pod_volume_kind kind;
    char *source;         /* hostPath path; configMap / secret name */
    char *host_path_type; /* "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", ... */
    char *medium;         /* emptyDir: "" or "Memory" */
    int64_t size_limit;   /* emptyDir sizeLimit in bytes, 0 none */
    struct pod_key_path *items;
    size_t n_items;
    int default_mode; /* 0644 unless given */
    bool optional;
    struct pod_projection *sources; /* VOL_PROJECTED */
    size_t n_sources;
    struct pod_field_file *fields; /* VOL_DOWNWARD */
    size_t n_fields;
    char *unsupported; /* VOL_UNSUPPORTED: the volume type's name (for the status message) */
};

enum pod_restart_policy { RESTART_ALWAYS, RESTART_ON_FAILURE, RESTART_NEVER };

struct pod_spec {
    char *ns, *name, *uid, *node_name;
    char *service_account, *hostname;
    struct pod_kv *labels, *annotations;
    size_t n_labels, n_annotations;
    bool deleting;   /* metadata.deletionTimestamp is set */
    int64_t grace_s; /* terminationGracePeriodSeconds (30) */
    enum pod_restart_policy restart;
    bool host_network;
    char **pull_secrets; /* imagePullSecrets[].name, in order */
    size_t n_pull_secrets;
    struct pod_container *init_containers, *containers;
    size_t n_init_containers, n_containers;
    struct pod_volume *volumes;
    size_t n_volumes;
};

/* Parse a v1.Pod. Fields kubelet does not need are ignored; a value of the wrong JSON type or
 * an unparseable quantity is an error, with a reason a user can act on in why (e.g.
 * `spec.containers[0].resources.limits.memory: quantity "12x" is not valid`).
 * Returns 0 and *out (podspec_free), KEDGE_EPARSE (not JSON), KEDGE_ESCHEMA (why set), -ENOMEM.
 * A pod with only metadata (a delete after a forced deletion) parses with n_containers 0. */
int podspec_parse(const char *json, size_t len, struct pod_spec **out, char *why, size_t why_len);
void podspec_free(struct pod_spec *p);

/* Kubernetes quantities: "100m", "2", "0.5" -> millicores; "128Mi", "1G", "1e3" -> bytes.
 * Returns 0 or KEDGE_ESCHEMA. */
int podspec_cpu_milli(const char *q, int64_t *out);
int podspec_bytes(const char *q, int64_t *out);

/* A container's resource for a resourceFieldRef ("limits.cpu", "requests.memory", ...):
 * ceil(value / divisor) in decimal, appended to out, as kubelet's
 * ExtractContainerResourceValue; a limit not set is the node's allocatable. divisor: the
 * quantity's text, NULL for "1". Returns 0, KEDGE_ESCHEMA (a bad divisor), -ENOMEM. */
int podspec_resource_value(const struct pod_container *c, const char *resource, const char *divisor,
                           struct kedge_buf *out);
/* The app or init container named name, or NULL. */
const struct pod_container *podspec_find_container(const struct pod_spec *p, const char *name);
/* The pod fields a fieldRef and a downwardAPI file both name: metadata.name, .namespace, .uid,
 * and one label or annotation (metadata.labels['key']). Whether fp is one of them; *v its
 * value (NULL: a label or annotation the pod does not have, which reads as ""). */
bool podspec_metadata_field(const struct pod_spec *p, const char *fp, const char **v);

/* Whether an image reference is one the engine can take ("name[:tag][@digest]", lower-case
 * repository). */
bool podspec_image_valid(const char *image);

/* The store lookups env and volumes need: *json the object's JSON (kedge_malloc, caller frees).
 * type "configmap" | "secret". Returns 0, -ENOENT, or another negative code. */
typedef int (*podspec_lookup_fn)(void *ctx, const char *type, const char *ns, const char *name,
                                 char **json);

#endif
