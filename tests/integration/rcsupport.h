/* rcsupport: the edge node of the real-cloud tier and what its scenarios observe.
 *
 * rc_setup starts, in this order: the real cloud (cloudctl.h), a container engine
 * (enginectl.h), `kedge-bridge join` with the cloud's token (the node's certificates from
 * cloudcore's /edge.crt), the broker with kedge_plugin.so (harness.h) and kedge-bridge
 * (bridgectl.h) pointed at the cloud's websocket and https ports. The node name is unique per
 * run. rc_teardown stops them in reverse order.
 *
 * The observers: kubectl (JSON parsed with kedge/json.h), the engine's API, plain HTTP GETs on
 * 127.0.0.1 and the plugin's $ke/ctl queries (what `kedge-ctl device list/get` asks). The rc_wait_*
 * and rc_assert_* functions are Check assertions (call them inside a test); every wait is a
 * deadline, and on a timeout the last state seen is printed with the logs that explain it.
 */
#ifndef KEDGE_TESTS_RCSUPPORT_H
#define KEDGE_TESTS_RCSUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include "kedge/buf.h"
#include "kedge/json.h"

struct rc {
    struct cloudctl *cloud;
    struct enginectl *engine;
    struct kh_broker *broker;
    struct bridgectl *bridge;
    char node[64];
    char password[64]; /* the bridge identity's, for $ke/ctl */
    int64_t t_bridge;  /* when kedge-bridge was started */
    bool no_engine;    /* set before rc_setup: no container engine (a node without pods) */
};

/* Everything up (the reason on stderr otherwise). Returns 0 or -1; call rc_teardown anyway. */
int rc_setup(struct rc *e, const char *cloudcore_dir, const char *bridge_password);
/* Stop all, in reverse order. Returns 0 when every stop was clean, else -1 (reasons printed). */
int rc_teardown(struct rc *e);
/* rc_setup, then the scenarios of s in this process (CK_NOFORK: they share one node and one
 * cloud). The number that failed, or -1 when the set-up failed. rc_teardown after, either way. */
int rc_run_suite(struct rc *e, const char *cloudcore_dir, const char *bridge_password, Suite *s);
bool rc_edge_up(const struct rc *e);

/* ---- small things ---------------------------------------------------------------------------- */

void rc_sleep_ms(int ms);
int rc_free_port(void);
/* Until the body contains want: the body (malloc'd). */
char *rc_wait_page(int port, const char *path, const char *want, int timeout_ms)
    __attribute__((warn_unused_result));
/* Until served; the body must equal exact. Returns it (malloc'd). */
char *rc_expect_page(int port, const char *path, const char *exact)
    __attribute__((warn_unused_result));
/* base64url (RFC 4648 §5, padding optional) decoded, NUL-terminated (malloc'd), or NULL. */
char *rc_base64url_decode(const char *in, size_t len, size_t *out_len);

/* ---- JSON ------------------------------------------------------------------------------------ */

/* The member at a dotted path of exact keys ("status.nodeInfo"); NULL when absent. */
const struct kedge_jval *rc_path(const struct kedge_jval *v, const char *dotted);
/* obj's string member key (exact), "" when absent or not a string. */
const char *rc_str(const struct kedge_jval *obj, const char *key);
/* The status.conditions entry of obj with this type, or NULL. */
const struct kedge_jval *rc_condition(const struct kedge_jval *obj, const char *type);

/* ---- the cloud (kubectl) --------------------------------------------------------------------- */

/* kubectl get kind name -o json; NULL when it fails (not found). */
struct kedge_jdoc *rc_kget(struct rc *e, const char *kind, const char *name);
/* kubectl apply -f - of the formatted manifest, retried for 30 s (the default service account
 * appears a moment after the cloud is up). */
void rc_apply(struct rc *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rc_wait_node_ready(struct rc *e, int timeout_ms);
/* The wall clock now in a Lease's renewTime form (RFC 3339, microseconds, UTC). */
void rc_wall_now(char *out, size_t len);
/* The node's Lease (kube-node-lease) is renewed after since (an rc_wall_now string). */
void rc_wait_lease_renewed(struct rc *e, const char *since, int timeout_ms);
/* Exactly one pod with the label selector, on this node, Running with an IP: its name, uid. */
void rc_wait_pod_running(struct rc *e, const char *selector, int timeout_ms, char *name,
                         size_t name_len, char *uid, size_t uid_len);
/* The pod's status.conditions[type] becomes True. */
void rc_wait_pod_condition(struct rc *e, const char *pod, const char *type, int timeout_ms);
/* The pod was bound to this node by the real scheduler (PodScheduled, a Scheduled event). */
void rc_assert_scheduled(struct rc *e, const char *pod);
/* Whether the pod with this uid (selected by selector) has this phase. */
bool rc_pod_phase_by_uid(struct rc *e, const char *selector, const char *uid, const char *phase);
void rc_wait_no_pods(struct rc *e, const char *selector, int timeout_ms);
/* The Device's status.twins[temperature].reported.value becomes value. */
void rc_wait_reported(struct rc *e, const char *device, const char *value, int timeout_ms);

/* ---- the engine ------------------------------------------------------------------------------ */

/* The engine's containers labelled with this pod uid: their ids (sorted), how many. */
int rc_pod_containers(struct rc *e, const char *uid, char ids[][80], int max);
void rc_wait_containers(struct rc *e, const char *uid, int want, int timeout_ms);
/* The labels ("k=v\n" lines) of the pod's running container named cname; false if none. */
bool rc_app_labels(struct rc *e, const char *uid, const char *cname, struct kedge_buf *labels);
bool rc_has_label(const struct kedge_buf *labels, const char *key, const char *value);

/* ---- the edge's devices ($ke/ctl, as kedge-ctl asks) ----------------------------------------- */

/* Until the plugin has a device named name (by name, by id, or by an id ns/name): how many;
 * ids gets their ids, all every device as "id (name name) ", each followed by a blank. */
int rc_wait_edge_device(struct rc *e, const char *name, int timeout_ms, struct kedge_buf *ids,
                        struct kedge_buf *all);
/* Print the plugin's raw answer to a $ke/ctl query (for a failure's context). */
void rc_edge_print(struct rc *e, const char *query);
/* The plugin's twin get result for id (device_get). */
struct kedge_jdoc *rc_edge_twins(struct rc *e, const char *id);
/* The plugin's status object (what `kedge-ctl status` prints). */
struct kedge_jdoc *rc_edge_status(struct rc *e);

#endif
