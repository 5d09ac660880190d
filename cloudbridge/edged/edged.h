/* Edged: pods as real containers, kubelet-style, through the Docker Engine API. One section per
 * file:
 *
 *   engine.c     Docker Engine REST API v1.41 client over a unix socket, on the lws loop
 *                (libwebsockets' own HTTP client: no thread, no second event loop, no new
 *                library); the /events stream.
 *   podspec.c    a v1.Pod's JSON -> struct pod_spec (what kubelet reads of it), and the
 *                container create bodies (infra and app) built from it. Pure: no I/O.
 *   podvolumes.c the pod's volume directories: emptyDir, hostPath, and the file volumes
 *                (configMap, secret, projected, downwardAPI) written through
 *   atomicwriter.c  kubelet's AtomicWriter, with the files computed by
 *   podpayload.c    kubelet's MakePayload / CollectData: store objects, pod fields, tokens.
 *   satoken.c    service account tokens requested from the cloud, cached, refreshed.
 *   probes.c     liveness / readiness / startup probes: exec (engine exec API), httpGet and
 *                tcpSocket (lws client connections to the pod IP).
 *   podstatus.c  v1.PodStatus from what the engine reports (inspect), and the podpatch body.
 *   podgone.c    the UIDs of pods this node has finished, so a late update does not revive one.
 *   edged.c      the pod workers: sync each pod toward its spec (sandbox, images, containers,
 *                restarts with back-off, probes), reconcile with the engine after a restart,
 *                report status on every change.
 *
 * Container layout, as dockershim did it (containers.md §5): per pod one infra container holding
 * the network namespace ("POD"), app containers joined to it with NetworkMode container:<infra>.
 * Names k8s_{container}_{pod}_{namespace}_{uid}_{attempt}; labels below.
 */
#ifndef KEDGE_EDGED_H
#define KEDGE_EDGED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge.h"
#include "kedge/buf.h"
#include "kedge/json.h"

/* Labels on every container edged makes (kubelet's, plus the two kedge needs to find its own
 * containers again after a restart: several bridges, or other users, may share one engine). */
#define LABEL_POD_NAME "io.kubernetes.pod.name"
#define LABEL_POD_NAMESPACE "io.kubernetes.pod.namespace"
#define LABEL_POD_UID "io.kubernetes.pod.uid"
#define LABEL_CONTAINER_NAME "io.kubernetes.container.name"
#define LABEL_CONTAINER_TYPE "io.kubernetes.docker.type" /* "podsandbox" | "container" */
#define LABEL_RESTART_COUNT "io.kubernetes.container.restartCount"
#define LABEL_CONTAINER_HASH "io.kubernetes.container.hash"
#define LABEL_NODE "io.kedge.node" /* node_name of the bridge that made it */
#define INFRA_CONTAINER_NAME "POD"

/* ==== engine.c =========================================================================== */

struct engine;

struct engine_reply {
    int status;       /* HTTP status; 0 when there was no answer (see err) */
    int err;          /* 0, or -ECONNREFUSED/-ENOENT (engine down), -ETIMEDOUT, -ECANCELED
                       * (engine_free), -EMSGSIZE (body over the cap), -EIO */
    const char *body; /* the whole body (de-chunked), NUL-terminated; never NULL */
    size_t len;
};

/* Called exactly once per request, also when it failed or was cancelled. */
typedef void (*engine_done_fn)(void *ctx, const struct engine_reply *r);

/* socket_path: the engine's unix socket (copied). Nothing connects until the first request. */
int engine_new(struct bridge *br, const char *socket_path, struct engine **out);
/* Every request still queued or in flight completes with err -ECANCELED, then it is gone. */
void engine_free(struct engine *e);

/* One API call. method "GET" | "POST" | "DELETE"; path without the version prefix
 * ("/containers/create?name=x"); body: JSON (sent with Content-Type application/json) or NULL.
 * timeout_ms: 0 = the default (60 s); a stop with a grace period needs more.
 * Requests beyond a small number in flight wait in FIFO order. Returns 0 (done will be called)
 * or -ENOMEM (it will not). */
int engine_request(struct engine *e, const char *method, const char *path, const char *body,
                   size_t body_len, int timeout_ms, engine_done_fn done, void *ctx);

/* The /events stream, filtered to containers labelled io.kedge.node=node: fn gets each event
 * object's JSON. Reconnects by itself (after 1 s, capped back-off) while the engine is down;
 * on_up is called each time the stream is (re)established, so the caller can relist what it
 * may have missed. */
typedef void (*engine_event_fn)(void *ctx, const char *json, size_t len);
typedef void (*engine_up_fn)(void *ctx, bool up);
int engine_watch(struct engine *e, const char *node, engine_event_fn fn, engine_up_fn on_up,
                 void *ctx);

extern const struct lws_protocols engine_protocol;

/* Percent-encode s for a query string into out. 0 or -ENOMEM. */
int engine_urlencode(struct kedge_buf *out, const char *s);

/* ==== podspec.c ========================================================================== */

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

/* Whether an image reference is one the engine can take ("name[:tag][@digest]", lower-case
 * repository). */
bool podspec_image_valid(const char *image);

/* The store lookups env and volumes need: *json the object's JSON (kedge_malloc, caller frees).
 * type "configmap" | "secret". Returns 0, -ENOENT, or another negative code. */
typedef int (*podspec_lookup_fn)(void *ctx, const char *type, const char *ns, const char *name,
                                 char **json);

struct podspec_create {
    const struct pod_spec *pod;
    const struct pod_container *c; /* NULL: the infra container */
    const char *node;              /* LABEL_NODE value */
    const char *infra_image;       /* infra only */
    const char *infra_id;          /* apps: NetworkMode container:<infra_id> */
    const char *pod_ip, *host_ip;  /* for fieldRef status.podIP / status.hostIP */
    const char *volumes_dir;       /* {pods_dir}/{uid}/volumes: binds are {dir}/{volume}[/sub] */
    int attempt;                   /* LABEL_RESTART_COUNT and the name suffix */
    podspec_lookup_fn lookup;
    void *lookup_ctx;
    int nofile, nproc; /* HostConfig.Ulimits when > 0 (podman without containers.conf) */
};

/* The container name: k8s_{c or POD}_{pod}_{ns}_{uid}_{attempt}. */
int podspec_container_name(const struct podspec_create *cc, struct kedge_buf *out);
/* The body of POST /containers/create for cc. Env values are resolved (configMap, secret,
 * fieldRef, resourceFieldRef, envFrom) and $(VAR) references expanded as kubelet does.
 * Returns 0, -ENOMEM, or KEDGE_ESCHEMA with why set to kubelet's message for a
 * CreateContainerConfigError (`configmap "x" not found`, `couldn't find key k in ConfigMap
 * ns/x`, `secret "s" not found`). */
int podspec_create_body(const struct podspec_create *cc, struct kedge_buf *out, char *why,
                        size_t why_len);

/* ==== atomicwriter.c ===================================================================== */

#include <sys/types.h>

/* One file of a volume: path relative to the volume (clean, see vol_clean_path), content,
 * mode. */
struct vol_file {
    char *path;
    char *data;
    size_t len;
    int mode;
};

/* A volume's files (kubelet's map[string]FileProjection: one entry per path). */
struct vol_payload {
    struct vol_file *f;
    size_t n, cap;
};

void vol_payload_cleanup(struct vol_payload *pl);
/* Add a file, or replace the one at the same path (the last one wins, as in kubelet's map).
 * take: path and data (kedge_malloc, data NUL-terminated after len) are the payload's on
 * success. add: copied. 0 or -ENOMEM (then nothing changed). */
int vol_payload_take(struct vol_payload *pl, char *path, char *data, size_t len, int mode);
int vol_payload_add(struct vol_payload *pl, const char *path, const char *data, size_t len,
                    int mode);
/* AtomicWriter's validatePath, then path.Clean: relative, no "..", no leading "..x", at most
 * 4096 bytes with names of at most 255; empty and "." components dropped. *out (kedge_malloc).
 * Returns 0, KEDGE_ESCHEMA (msg: kubelet's "invalid path: ..."), -ENOMEM. */
int vol_clean_path(const char *path, char **out, char *msg, size_t msg_len);
/* AtomicWriter.Write of pl into the volume directory vfd. 0 or -errno. */
int vol_atomic_write(int vfd, const struct vol_payload *pl);
/* A name usable as one directory entry: not empty, no '/', not "." or "..", <= 255 bytes. */
bool vol_safe_name(const char *s);
/* Entry name of dfd as a directory (made with mode if missing; *created, when not NULL, says
 * whether it was made now), opened without following a symlink. The fd or -errno. */
int vol_open_subdir(int dfd, const char *name, mode_t mode, bool *created);
/* Remove entry name of pfd and its whole tree, never following a symlink nor entering another
 * filesystem (-EBUSY). 0 (also when it does not exist) or -errno. */
int vol_remove_tree(int pfd, const char *name);

/* ==== podpayload.c ======================================================================= */

/* The token of a serviceAccountToken projection src of pod p: 0 and *token (kedge_malloc), or
 * a negative code with why set (kubelet's "failed to fetch token: ..."); -EAGAIN while it is
 * being fetched (the caller is told when it arrives, see satoken.c). */
typedef int (*podvolumes_token_fn)(void *ctx, const struct pod_spec *p,
                                   const struct pod_projection *src, char **token, char *why,
                                   size_t why_len);

/* Where a volume's content comes from: the store (configMaps, secrets) and the token source.
 * token NULL: a token projection fails. */
struct podvolumes_src {
    podspec_lookup_fn lookup;
    void *lookup_ctx;
    podvolumes_token_fn token;
    void *token_ctx;
};

/* The files of volume v of pod p (configMap, secret, projected, downwardAPI), as kubelet's
 * plugins compute them (MakePayload, CollectData, collectData). Returns 0, or KEDGE_ESCHEMA /
 * -EAGAIN / another lookup error with msg set to the detail of the FailedMount text (what
 * follows `MountVolume.SetUp failed for volume "v" : `), or -ENOMEM. A projected volume's
 * failures are joined as kubelet's error aggregate ("[a, b]" for more than one). */
int podpayload_build(const struct podvolumes_src *src, const struct pod_spec *p,
                     const struct pod_volume *v, struct vol_payload *out, char *msg,
                     size_t msg_len);
/* kubelet's fieldpath.ExtractFieldPathAsString for a downwardAPI volume file: metadata.name,
 * .namespace, .uid, .labels, .annotations (FormatMap: sorted `k="v"` lines, the value quoted as
 * Go's %q), labels['k'] / annotations['k']. Appends to out. 0, KEDGE_ESCHEMA, -ENOMEM. */
int podpayload_field(const struct pod_spec *p, const char *field_path, struct kedge_buf *out);

/* ==== podvolumes.c ======================================================================= */

/* Make {pods_dir}/{uid}/volumes/{name} for every volume of p and (re)write configMap, secret,
 * projected and downwardAPI files (atomicwriter.c: a reader sees the old or the new set).
 * hostPath DirectoryOrCreate / FileOrCreate are created; Directory / File must exist.
 * Returns 0, or KEDGE_ESCHEMA / -EAGAIN (a token being fetched) with why set to kubelet's
 * FailedMount text (`MountVolume.SetUp failed for volume "cfg" : configmap "x" not found`), or
 * -errno. */
int podvolumes_setup(const char *pods_dir, const struct pod_spec *p,
                     const struct podvolumes_src *src, char *why, size_t why_len);
/* Remove {pods_dir}/{uid} and everything below it (never following symlinks; hostPath
 * volumes are binds, not directories here). 0 or -errno. */
int podvolumes_remove(const char *pods_dir, const char *uid);
/* Whether a volume of p (or a projected volume's source) is a configMap / secret named name
 * (its files need rewriting when that object changes). */
bool podvolumes_uses(const struct pod_spec *p, const char *type, const char *name);
/* Whether p has a serviceAccountToken projection (its files need rewriting with each new
 * token). */
bool podvolumes_has_token(const struct pod_spec *p);

/* ==== satoken.c ========================================================================== */

struct satoken;
/* A new token for the pod with this uid is in the cache: its volumes need writing again. */
typedef void (*satoken_changed_fn)(void *ctx, const char *pod_uid);

/* Tokens requested through br's MetaManager; changed is called for every new token.
 * Returns 0 or -ENOMEM. */
int satoken_new(struct bridge *br, satoken_changed_fn changed, void *ctx, struct satoken **out);
/* A podvolumes_token_fn (ctx: the satoken): the cached token while it has not expired; a
 * request goes to the cloud when there is none or it is due for refresh (80 % of its TTL or
 * 24 h). -EAGAIN with kubelet's "failed to fetch token: ..." while there is no usable one. */
int satoken_get(void *ctx, const struct pod_spec *p, const struct pod_projection *src, char **token,
                char *why, size_t why_len);
/* The pod is gone: its tokens leave memory and the meta table. */
void satoken_forget(struct satoken *ts, const char *pod_uid);
/* No new timers (before lws_context_destroy). NULL ok. */
void satoken_stop(struct satoken *ts);
/* After MetaManager is closed (its close answers the requests in flight). NULL ok. */
void satoken_free(struct satoken *ts);

/* ==== probes.c =========================================================================== */

struct prober;

enum probe_result { PROBE_SUCCESS, PROBE_FAILURE };
/* ctx, the probe's owner; result and a short message (kubelet's event text). */
typedef void (*probe_done_fn)(void *ctx, enum probe_result r, const char *message);

int prober_new(struct bridge *br, struct engine *e, struct prober **out);
/* Cancels every probe in flight: their done functions are not called. */
void prober_free(struct prober *pr);
/* Run one probe now against container_id (exec) or ip (httpGet / tcpSocket; the probe's host
 * wins when set). Timeout: probe->timeout_s. done is called exactly once unless the probe is
 * cancelled. Returns a handle (> 0) or a negative code. */
long prober_run(struct prober *pr, const struct pod_probe *probe, const char *container_id,
                const char *ip, probe_done_fn done, void *ctx);
void prober_cancel(struct prober *pr, long handle);
/* The lws protocol of the probes' client connections: on the bridge's local vhost (main.c). */
extern const struct lws_protocols probes_protocol;

/* ==== podstatus.c ======================================================================== */

/* What edged observed of one container (from inspect). */
struct observed_container {
    char *id, *name; /* engine id; LABEL_CONTAINER_NAME */
    char *image, *image_id;
    int attempt;
    uint32_t hash;
    bool running;
    char *state; /* engine State.Status: created|running|exited|... */
    int exit_code;
    bool oom_killed;
    char *error;                     /* State.Error */
    int64_t started_ms, finished_ms; /* 0: never */
    int64_t created_ms;
};

enum container_waiting {
    WAIT_NONE,
    WAIT_CREATING,      /* ContainerCreating */
    WAIT_PULL_ERROR,    /* ErrImagePull */
    WAIT_PULL_BACKOFF,  /* ImagePullBackOff */
    WAIT_INVALID_IMAGE, /* InvalidImageName */
    WAIT_NEVER_PULL,    /* ErrImageNeverPull */
    WAIT_CONFIG_ERROR,  /* CreateContainerConfigError */
    WAIT_CREATE_ERROR,  /* CreateContainerError */
    WAIT_RUN_ERROR,     /* RunContainerError (the engine could not start it) */
    WAIT_CRASH_BACKOFF, /* CrashLoopBackOff */
    WAIT_POD_INIT,      /* PodInitializing */
};

/* edged's view of one container of the spec, as podstatus needs it. */
struct container_view {
    const struct pod_container *spec;
    const struct observed_container *current;  /* newest attempt, NULL none */
    const struct observed_container *previous; /* the one before (lastState), NULL none */
    enum container_waiting waiting;
    char *waiting_message;
    bool ready;   /* readiness probe (true when there is none and it runs) */
    bool started; /* startup probe passed (or none) and running */
    int restart_count;
};

enum pod_condition { COND_INITIALIZED, COND_READY, COND_CONTAINERS_READY, COND_SCHEDULED, N_COND };

struct pod_view {
    const struct pod_spec *spec;
    struct container_view *init, *apps;
    size_t n_init, n_apps;
    const char *pod_ip, *host_ip;
    int64_t start_ms;   /* when edged first took the pod (startTime) */
    bool sandbox_ready; /* the infra container runs */
    bool terminating;   /* deleted: the phase becomes terminal once nothing runs */
    const char *pod_reason, *pod_message; /* a pod-level problem (unsupported volume, ...) */
    int64_t cond_since_s[N_COND]; /* lastTransitionTime of each condition (edged keeps them) */
};

/* The conditions' truth for v (edged updates cond_since_s when one flips). */
void podstatus_conditions(const struct pod_view *v, bool out[N_COND]);
/* The pod phase: Pending | Running | Succeeded | Failed (kubelet's getPhase). */
const char *podstatus_phase(const struct pod_view *v);
/* The v1.PodStatus object for v, in Go's field order (phase, conditions, message, reason,
 * hostIP, hostIPs, podIP, podIPs, startTime, initContainerStatuses, containerStatuses,
 * qosClass). Returns 0 or -ENOMEM. */
int podstatus_write(const struct pod_view *v, struct kedge_buf *out);
/* The podpatch content: {"metadata":{"uid":uid},"status":<status>}. 0 or -ENOMEM. */
int podstatus_patch(const char *uid, const char *status, size_t len, struct kedge_buf *out);
/* kubelet's waiting reason for w ("ContainerCreating", "CrashLoopBackOff", ...). */
const char *podstatus_waiting_reason(enum container_waiting w);
/* An RFC 3339 time with nanoseconds, as the engines write them, to Unix ms; 0 for the zero
 * time ("0001-01-01T00:00:00Z") or anything unparsable. */
int64_t podstatus_parse_time_ms(const char *s);

/* ==== podgone.c ========================================================================== */

/* The UIDs of the pods this node has finished (stopped, reported, deletion asked for): a late
 * update of one must not start it again (see podgone.c). Bounded; entries expire. */
struct podgone;

int podgone_new(struct podgone **out); /* 0 or -ENOMEM */
void podgone_free(struct podgone *g);
/* now_ms: monotonic. An empty or oversized uid is not kept. */
void podgone_add(struct podgone *g, const char *uid, uint64_t now_ms);
bool podgone_has(const struct podgone *g, const char *uid, uint64_t now_ms);
/* The UID is not finished after all (its deletion was not confirmed). */
void podgone_forget(struct podgone *g, const char *uid);

/* ==== edged.c ============================================================================ */

struct edged;

/* Start Edged if engine_socket is configured: list pods in the store, reconcile them with the
 * engine's containers, then follow MetaManager's pod hook. Returns 0 (also when disabled) or a
 * negative code. */
int edged_start(struct bridge *br, struct edged **out);
/* Before lws_context_destroy: no new work, timers cancelled. */
void edged_stop(struct edged *ed);
/* After lws_context_destroy (whose closing connections still call back into edged). NULL ok. */
void edged_free(struct edged *ed);

#endif
