/* kedge-cloudsim's private header: what the files of tests/cloudsim/ use from each other.
 *
 * kedge-cloudsim is a cloud peer that behaves like cloudcore's CloudHub on the wire
 * (docs/kubeedge-wire.md §4, §5), so tests and the out-of-the-box run have a cloud to talk to. Each
 * file says at its top what it owns; the sections below are grouped by the file that defines
 * them (hub*.c share hubpriv.h, the controllers' files ctlpriv.h).
 *
 * Everything runs on one thread inside one lws service loop.
 */
#ifndef KEDGE_CLOUDSIM_H
#define KEDGE_CLOUDSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "kedge/json.h"
#include "kedge/msg.h"

/* ---------------------------------------------------------------------------------------------
 * main.c: configuration
 */

struct cloudsim_config {
    char *certs_dir;          /* --certs DIR (required) */
    char *node;               /* --node NAME: the edge certificate's node (edge-node) */
    long port;                /* --port: wss, 0 = any free port (10000) */
    long control_port;        /* --control-port: HTTP control API, 0 = any (10010) */
    long https_port;          /* --https-port: certificate bootstrap; 0 = off (0) */
    long cert_lifetime_s;     /* --cert-lifetime-s: node certificates it signs (365 days) */
    long keepalive_timeout_s; /* --keepalive-timeout-s (30, cloudcore's keepaliveInterval) */
    long resend_interval_s;   /* --resend-interval-s (5, cloudcore's sendRetryInterval) */
    long session_setup_ms;    /* --session-setup-ms (10): a new connection has no session yet */
    long node_grace_s;        /* --node-grace-s (40, Kubernetes' node-monitor-grace-period) */
    char *log_level;          /* --log-level error|warning|notice|info|debug (info) */
    char *on_malformed;       /* --on-malformed drop|close (drop) */
    bool close_on_malformed;  /* derived: cloudcore closes the link on bad JSON */
    char *cloud_version;      /* --cloud-version MAJOR.MINOR (1.15) */
    long cloud_minor;         /* derived: 15; device ids are ns/name from 17 */
    long read_limit;          /* --read-limit BYTES: one message from the edge (64 MiB) */
    long tunnel_port;         /* --tunnel-port: CloudStream's tunnel (wss), 0 = any free port */
    long stream_port;         /* --stream-port: its stream server (plain HTTP), 0 = any */
};

/* ---------------------------------------------------------------------------------------------
 * certs.c: certificates
 *
 * Files in the certificate directory (docs/kubeedge-wire.md §4.2, §4.3):
 *   rootCA.crt rootCA.key   ECDSA P-256 self-signed CA, 10 years
 *   server.crt server.key   signed by the CA; SAN IP:127.0.0.1 and DNS:localhost; serverAuth
 *   edge.crt   edge.key     signed by the CA; O=system:nodes, CN=system:node:<node>; clientAuth
 * Keys are PEM "EC PRIVATE KEY" (SEC1, as edgecore writes them), mode 0600.
 */

struct cloudsim_certs {
    char *ca_crt, *ca_key, *server_crt, *server_key, *edge_crt, *edge_key; /* paths */
};

/* Make sure dir holds a usable set; files that are present, parse, match their key and chain
 * to the CA (and, for the edge, name `node`) are reused, the rest are (re)made. A new CA
 * means new server and edge certificates too. dir is created (0700) when missing.
 *
 * out: the six paths on success; free with certs_cleanup (also after a failure).
 * Returns 0, -ENOMEM, -errno from the file system, or KEDGE_ECONFIG when OpenSSL fails (the
 * OpenSSL error queue is logged).
 */
int certs_ensure(const char *dir, const char *node, struct cloudsim_certs *out);
void certs_cleanup(struct cloudsim_certs *c);

/* Read a whole (small) file. out: a NUL-terminated kedge_malloc buffer the caller frees.
 * Returns 0, -errno, -EFBIG (over 1 MiB) or -ENOMEM. */
int certs_read_file(const char *path, char **out, size_t *len);

/* ---------------------------------------------------------------------------------------------
 * stream.c, streamapi.c: CloudStream (kubectl logs/exec/attach through the edge's tunnel);
 * streampriv.h has their shared state
 */

struct cstream;

/* The tunnel vhost's protocols (wss, client certificate verdict as hub.c) and the stream
 * port's (a raw socket: HTTP is parsed there, so exec/attach can be piped raw). The vhosts'
 * user pointer is the cstream. */
extern const struct lws_protocols cstream_tunnel_protocols[];
extern const struct lws_protocols cstream_api_protocols[];
int cstream_new(struct cstream **out);
void cstream_set_context(struct cstream *cs, struct lws_context *ctx);
/* Before lws_context_destroy: no new tunnels or requests. */
void cstream_stop(struct cstream *cs);
void cstream_free(struct cstream *cs);
/* GET /stream: the tunnels and the API connections. */
void cstream_write_state(struct cstream *cs, struct kedge_jw *w);
/* POST /stream/close: CLOSE_CONNECT (connectID 0, data: reason) to every tunnel. */
void cstream_close_tunnels(struct cstream *cs, const char *reason, struct kedge_jw *w);

/* ---------------------------------------------------------------------------------------------
 * hub.c, hubqueue.c, hubctl.c: CloudHub
 */

struct hub;

/* The websocket protocol list for the wss vhost (index 0 takes upgrades without a protocol
 * header and the TLS client-certificate verdict). The vhost's user pointer must be the hub. */
extern const struct lws_protocols hub_protocols[];

/* cfg: borrowed; must outlive the hub. ca_pem_path: answers k8s/ca.crt requests.
 * Returns 0 or -ENOMEM / -errno (reading the CA). */
int hub_new(const struct cloudsim_config *cfg, const char *ca_pem_path, struct hub **out);
/* Call before lws_context_destroy: cancels the hub's timers. */
void hub_stop(struct hub *h);
void hub_free(struct hub *h);
void hub_set_context(struct hub *h, struct lws_context *ctx);
struct lws_context *hub_context(struct hub *h);
/* The CloudStream model the control API reports on (main.c sets it). */
void hub_set_cstream(struct hub *h, struct cstream *cs);
struct cstream *hub_cstream(struct hub *h);

/* Queue a message for a node; it is sent when that node is connected (at once if it is).
 * Messages that need an ack (docs/kubeedge-wire.md §5.2) are re-sent every resend interval until
 * acked.
 *
 * node: NULL = the last node that connected, or, before any did, the first one that will.
 * m:    borrowed; msg_id and timestamp are filled in when empty, a `node/{id}/` resource prefix
 *       is stripped (CloudHub's TrimMessage) and sync is cleared.
 * Returns 0, -ENOMEM.
 */
int hub_enqueue(struct hub *h, const char *node, struct kedge_msg *m, bool *needs_ack);

/* Control API (control.c) entry points. node: NULL = as hub_enqueue. */

/* POST /send. json: a beehive message. node NULL: the node a `node/{id}/...` resource names,
 * else as hub_enqueue. The message also updates the controllers' object store.
 * msg_id: its id, a kedge_malloc string the caller frees.
 * Returns 0, KEDGE_EPARSE / KEDGE_ESCHEMA for a body that is not a message, -ENOMEM. */
int hub_send_json(struct hub *h, const char *node, const char *json, size_t len, char **msg_id,
                  bool *needs_ack);
/* POST /send_raw: data sent as it is, one text (or binary) frame, once; for tests of how the
 * edge takes frames that are not messages. Returns 0 or -ENOMEM. */
int hub_send_raw(struct hub *h, const char *node, const char *data, size_t len, bool binary);
void hub_write_received(struct hub *h, struct kedge_jw *w, long long since, bool skip_keepalive);
void hub_write_acked(struct hub *h, struct kedge_jw *w);
/* node NULL: the last node that connected. Returns 0 or -ENOENT (a node never named). */
int hub_write_state(struct hub *h, const char *node, struct kedge_jw *w);
/* Returns 0 or -ENOTCONN (no connection for that node). */
int hub_link_freeze(struct hub *h, const char *node, bool freeze);
int hub_link_drop(struct hub *h, const char *node);
/* Drop every connection and refuse new ones for `seconds` (0 ends a refusal). */
void hub_link_refuse(struct hub *h, long seconds);
/* GET /nodes, GET /pods, GET /object (controllers_write_nodes, _pods, _object). */
void hub_write_nodes(struct hub *h, struct kedge_jw *w);
void hub_write_pods(struct hub *h, struct kedge_jw *w);
int hub_write_object(struct hub *h, const char *key, struct kedge_jw *w);
/* GET /applied (controllers_write_applied). */
void hub_write_applied(struct hub *h, const char *device, bool with_log, struct kedge_jw *w);
/* POST /faults/reject (faults_add_reject), POST /faults/clear, GET /faults. */
int hub_fault_reject(struct hub *h, const char *json, size_t len);
void hub_faults_clear(struct hub *h);
void hub_write_faults(struct hub *h, struct kedge_jw *w);

/* ---------------------------------------------------------------------------------------------
 * controllers.c, ctlstore.c, ctlreply.c, ctlpods.c: cloudcore's controllers, as far as the edge can
 * see them
 */

struct controllers;

/* ca_pem: borrowed; copied (the content of the k8s/ca.crt answer). node_grace_s: see nodes.c.
 * cloud_minor: the generation (devices.c). Returns 0 or -ENOMEM. */
int controllers_new(const char *ca_pem, long node_grace_s, long cloud_minor,
                    struct controllers **out);
void controllers_free(struct controllers *c);
/* Drop work queued for a later service turn (hub_stop, before the lws context goes). */
void controllers_stop(struct controllers *c);

/* An upstream message that CloudHub hands to the controllers (docs/kubeedge-wire.md §5, the default
 * branch of DispatchUpstream, plus k8s/ca.crt). Replies are queued with hub_enqueue(h, node).
 * Returns 0 or -ENOMEM. */
int controllers_upstream(struct controllers *c, struct hub *h, const char *node,
                         const struct kedge_msg *m);

/* A downstream message (from /send): insert/update/delete of a named resource updates the
 * store, so that later queries and patches from the edge find the object. Returns 0 or -ENOMEM. */
int controllers_downstream(struct controllers *c, const struct kedge_msg *m);

/* GET /nodes: {"nodes":[{"name","ready":"True|False|Unknown","registrations","lease_renew_ms",
 * "exists","status":{...}|null}]}. */
void controllers_write_nodes(struct controllers *c, struct kedge_jw *w);
/* GET /pods: {"pods":[{"key":"{ns}/pod/{name}","uid":"...","phase":"...","patches":N,
 * "object":{...}}]} in the order the pods were first stored; uid and phase are "" when the pod
 * has none; patches counts the status patches applied since it was first stored. */
void controllers_write_pods(struct controllers *c, struct kedge_jw *w);
/* GET /object?key=K: the stored object as it is. key: "{ns}/{type}/{name}" ("{ns}/node/{name}"
 * and "node/{name}" both name a Node). Returns 0 or -ENOENT (nothing written). */
int controllers_write_object(struct controllers *c, const char *key, struct kedge_jw *w);
/* GET /applied: applied_write of the device controller's log. */
void controllers_write_applied(struct controllers *c, const char *device, bool with_log,
                               struct kedge_jw *w);

/* ---------------------------------------------------------------------------------------------
 * nodes.c: Node objects, registrations, leases, NotReady after the grace period
 */

struct nodes;

/* grace_s: a node whose lease is not renewed for this long is marked Unknown. rv_counter:
 * borrowed; the resourceVersion counter shared with the other objects. Returns 0, -ENOMEM. */
int nodes_new(long grace_s, unsigned long long *rv_counter, struct nodes **out);
void nodes_free(struct nodes *ns);
/* The Node called name: *json (not NUL-terminated past *len) and *rv are borrowed until the
 * next nodes_ call. Returns 0 or -ENOENT. */
int nodes_get(struct nodes *ns, const char *name, const char **json, size_t *len, const char **rv);
/* A registration (node insert from the edge); counted even when the node exists, which
 * leaves it unchanged and sets *existed (the reply is AlreadyExists). json: the Node as sent.
 * Returns 0, KEDGE_EPARSE / KEDGE_ESCHEMA (not a JSON object), -ENOMEM. */
int nodes_register(struct nodes *ns, const char *name, const char *json, size_t len, bool *existed);
/* A strategic merge patch (nodepatch, nodestatus, node update). Returns 0, -ENOENT, KEDGE_EPARSE,
 * KEDGE_ESCHEMA, -ENOMEM. */
int nodes_patch(struct nodes *ns, const char *name, const char *patch, size_t len);
/* The cloud side writes or deletes a Node (/send). rv: the message's resourceversion or NULL. */
int nodes_put(struct nodes *ns, const char *name, const char *json, size_t len, const char *rv);
void nodes_delete(struct nodes *ns, const char *name);
/* A lease insert/update from the edge: its spec.renewTime renews the node. Returns 0,
 * KEDGE_EPARSE, KEDGE_ESCHEMA (no renewTime), -ENOMEM. */
int nodes_lease(struct nodes *ns, const char *name, const char *json, size_t len);
/* The GET /nodes answer (controllers_write_nodes). */
void nodes_write(struct nodes *ns, struct kedge_jw *w);

/* ---------------------------------------------------------------------------------------------
 * devices.c: the device controller's devices
 */

struct devctl;

/* cloud_minor: 15 for v1.15 (bare device ids), 17+ for ns/name ids. rv_counter: borrowed, as
 * nodes_new. Returns 0 or -ENOMEM. */
int devctl_new(long cloud_minor, unsigned long long *rv_counter, struct devctl **out);
void devctl_free(struct devctl *d);
/* A downstream Device insert/update/delete (ns, name from {ns}/device/{name}), or, with ns
 * NULL, a membership update (its added ids become known, removed ones not). 0 or -ENOMEM. */
int devctl_downstream(struct devctl *d, const struct kedge_msg *m, const char *ns,
                      const char *name);
/* The stored Device (borrowed until the next devctl_ call). 0 or -ENOENT. */
int devctl_get(struct devctl *d, const char *ns, const char *name, const char **json, size_t *len,
               const char **rv);
/* A twin/edge_updated from the edge: *known says whether the controller answers it; *resend is
 * filled (a Device update for the node, clean it up) when the Device's status changed, else
 * zeroed. Returns 0 or -ENOMEM. */
int devctl_edge_updated(struct devctl *d, const struct kedge_msg *m, bool *known,
                        struct kedge_msg *resend);
/* The device id in a twin report's resource, as GetDeviceID reads it in this generation.
 * Returns 0 (id appended), -1 (none in it) or -ENOMEM. */
int devctl_report_id(const struct devctl *d, const char *resource, struct kedge_buf *id);
/* A state/update from the edge: answered ("OK") from v1.18, for a device it knows. */
bool devctl_state_answered(struct devctl *d, const struct kedge_msg *m);

/* ---------------------------------------------------------------------------------------------
 * workers.c: the device controller's concurrent workers (reports read within a few ms are
 * applied together, newest first)
 */

struct workers;
typedef int (*worker_fn)(void *ctx, struct hub *h, const char *node, const struct kedge_msg *m);

/* fn(ctx, ...) applies one report and answers it; ctx: borrowed. 0 or -ENOMEM. */
int workers_new(worker_fn fn, void *ctx, struct workers **out);
/* Queue a copy of m (read from node) for the workers. 0 or -ENOMEM. */
int workers_submit(struct workers *w, struct hub *h, const char *node, const struct kedge_msg *m);
/* Drop what is queued and the timer; before the lws context goes. NULL is a no-op. */
void workers_stop(struct workers *w);
void workers_free(struct workers *w);

/* ---------------------------------------------------------------------------------------------
 * applied.c: the device controller's applied reports, per device
 */

struct applied;

int applied_new(struct applied **out); /* 0 or -ENOMEM */
void applied_free(struct applied *a);
/* One twin report (a twin/edge_updated message) applied to device id at now_ms.
 * Returns 0 or -ENOMEM (nothing recorded). */
int applied_record(struct applied *a, const char *id, const struct kedge_msg *m, int64_t now_ms);
/* {"reports","regressions","devices_total","devices":[{"id","reports","regressions",
 * "twins":{name:{"value","edge","ts","times","regressions"}}[,"log_dropped","log":[{"n","t_ms",
 * "msg_id","timestamp","twins":{name:{"value","edge","ts"}}}]]}]}, devices in the order they
 * were first applied; id: only that device (none listed when it has nothing applied). */
void applied_write(const struct applied *a, const char *id, bool with_log, struct kedge_jw *w);

/* ---------------------------------------------------------------------------------------------
 * faults.c: the reject fault
 */

enum fault_action { FAULT_NONE, FAULT_CLOSE, FAULT_ERROR };

struct faults;

int faults_new(struct faults **out); /* 0 or -ENOMEM */
void faults_free(struct faults *f);
/* Add a rule from {"resource_prefix":"...","mode":"close"|"error"[,"max":N]}. Returns 0,
 * KEDGE_EPARSE, KEDGE_ESCHEMA (a member missing or wrong), -ENOMEM. */
int faults_add_reject(struct faults *f, const char *json, size_t len);
/* Remove every rule (the counters and the log stay). */
void faults_clear(struct faults *f);
/* What to do with a message read from the edge; a rejection is counted and logged. */
enum fault_action faults_check(struct faults *f, const struct kedge_msg *m);
/* {"reject":[{"resource_prefix","mode","max","hits"}],"rejections_total","rejections_close",
 * "rejections_error","rejected":[{"msg_id","resource","mode","t_ms"}]}. */
void faults_write(const struct faults *f, struct kedge_jw *w);

/* ---------------------------------------------------------------------------------------------
 * smpatch.c: strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch)
 */

/* A list that merges element by element: the member name it has wherever it appears, and its
 * patchMergeKey (k8s.io/api's struct tags). Tables end with {NULL, NULL}. */
struct smp_list {
    const char *name, *key;
};

/* out = base (JSON) with patch (a JSON object) applied: objects merge, null deletes, the lists
 * in `lists` merge by their key, every other list and scalar is replaced, "$" directives are
 * dropped. base, patch, lists: borrowed. out: appended to; the caller cleans it up (also on
 * failure). Returns 0, KEDGE_EPARSE (either is not JSON), KEDGE_ESCHEMA (patch is not an
 * object), -ENOMEM. */
int smp_apply(const char *base, size_t base_len, const char *patch, size_t patch_len,
              const struct smp_list *lists, struct kedge_buf *out);

/* ---------------------------------------------------------------------------------------------
 * control.c: the HTTP control API
 */

/* The HTTP protocol list for the control vhost. The vhost's user pointer must be the hub. */
extern const struct lws_protocols control_protocols[];

/* ---------------------------------------------------------------------------------------------
 * certsrv.c: the certificate service (docs/kubeedge-wire.md §4.3)
 */

struct certsrv;

/* The HTTP protocol list for the certsrv vhost (TLS with the server certificate; a client
 * certificate asked for, not required). The vhost's user pointer must be the certsrv. */
extern const struct lws_protocols certsrv_protocols[];

/* Load the CA, make the join token (logged as "cloudsim: token=...", written to
 * <certs_dir>/token). cfg, certs: borrowed; cfg must outlive the certsrv.
 * Returns 0, -ENOMEM, -errno (the token file) or -EINVAL (the CA does not load). */
int certsrv_new(const struct cloudsim_config *cfg, const struct cloudsim_certs *certs,
                struct certsrv **out);
void certsrv_free(struct certsrv *cs);
/* "<sha256 hex of the CA DER>.<JWT>"; borrowed, lives as long as cs. */
const char *certsrv_token(const struct certsrv *cs);
/* A JWT "<header>.<claims>.<signature>" (base64url, no padding), HS256 with key, appended to
 * out. header and claims: JSON text. Returns 0, -ENOMEM or -EINVAL (HMAC failed). */
int cloudsim_jwt_hs256(const void *key, size_t key_len, const char *header, const char *claims,
                       struct kedge_buf *out);

/* ---------------------------------------------------------------------------------------------
 * tokens.c: the API server's TokenRequest answer and the kube-root-ca.crt ConfigMap
 */

struct tokens_request {
    const char *ns, *sa;       /* the query's resource: {ns}/serviceaccounttoken/{sa} */
    const char *audience;      /* spec.audiences[0]; NULL: none asked (the API server's own) */
    const char *pod, *pod_uid; /* spec.boundObjectRef */
    int64_t expiration_s;      /* spec.expirationSeconds (3600 when not given) */
};

/* The TokenRequest the API server returns for tr, as cloudcore forwards it, written to w;
 * the JWT signed with key (any text). Returns 0 or -ENOMEM. */
int tokens_answer(const char *key, const struct tokens_request *tr, struct kedge_jw *w);
/* The kube-root-ca.crt ConfigMap of namespace ns (data ca.crt = ca_pem) written to w.
 * Returns 0 or -ENOMEM. */
int tokens_root_ca(const char *ca_pem, const char *ns, struct kedge_jw *w);

/* ---------------------------------------------------------------------------------------------
 * shared helpers (hub.c)
 */

/* Resource type as cloudcore's GetResourceType finds it on a trimmed resource
 * ({ns}/{type}/{name}): the second element. Writes "" when there is none. */
void cloudsim_resource_type(const char *resource, char *out, size_t out_len);

#endif
