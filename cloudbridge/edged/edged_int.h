/* Edged's state, shared by its files (edged*.c). Not for use outside them.
 *
 * Calls between the files go one way (no cycle): edged.c (lifecycle, the tick, the resource
 * hook) calls the others; edged_worker.c (the pod workers) calls edged_ops.c (their runtime
 * calls), edged_status.c and edged_pods.c (pods in and out); these and edged_probe.c call
 * edged_relist.c (kubelet's PLEG), edged_cloud.c and edged_state.c, which call no other
 * edged file. edged_lookup.c (EdgeStream's container lookup) calls edged_status.c and
 * edged_state.c and is called by none of them. The relist tells edged.c that it finished through a
 * registered function.
 */
#ifndef KEDGE_EDGED_INT_H
#define KEDGE_EDGED_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edged.h"
#include "imagepull.h"
#include "kedge/log.h"
#include "podgone.h"
#include "podspec.h"
#include "podstatus.h"
#include "probes.h"
#include "runtime.h"
#include "satoken.h"

#define QUERY_AGAIN_MS 10000
#define RETAKE_AFTER_ERROR_MS 10000 /* kubelet's status manager syncs every 10 s */
#define MAX_STOPPING 16

/* A container as the last relist saw it. */
struct seen {
    struct observed_container o; /* strings owned */
    char *uid, *list_state;
    bool infra;
};

struct probe_ctx;

/* edged's state for one container of the spec (init containers first, then apps). */
struct cstate {
    enum container_waiting waiting;
    char *waiting_msg;
    uint64_t backoff_until_ms;             /* monotonic; restart not before */
    int64_t backoff_ms;                    /* the current step; 0: the next restart is immediate */
    struct imagepull_backoff pull_backoff; /* failed pulls of its image (ImagePullBackOff) */
    bool ready, started, kill_requested;
    int live_fail, ready_ok, ready_fail, start_ok, start_fail;
    uint64_t probe_at_ms[3]; /* liveness, readiness, startup: next run (0: not scheduled) */
    long probe_handle[3];
    struct probe_ctx *probe_ctx[3]; /* owned while the probe runs (freed on cancel) */
    char *probe_cid;                /* the container the probe counters belong to */
    uint64_t retry_at_ms;           /* after a config/create error: not before (monotonic) */
};

/* A container asked to stop: SIGTERM now, SIGKILL when the grace period is over (kubelet's
 * StopContainer; done with two quick kill calls rather than one stop that answers only when
 * the container is gone). */
struct stopping {
    char id[72];
    uint64_t kill_at_ms; /* monotonic */
};

enum probe_slot { P_LIVE, P_READY, P_START };

/* One probe run's context: which container of which pod (by UID: it may be gone). */
struct probe_ctx {
    struct edged *ed;
    char *uid, *cid;
    int ci;
    enum probe_slot slot;
};

struct epod {
    struct epod *next;
    char *key, *uid;
    struct pod_spec *spec;
    struct cstate *cs; /* spec->n_init_containers + spec->n_containers */
    size_t n_cs;
    char *pod_reason, *pod_message;
    int64_t start_ms;
    int64_t cond_since_s[N_COND];
    bool cond_last[N_COND], cond_known;
    int busy; /* runtime calls in flight for this pod */
    struct stopping stops[MAX_STOPPING];
    size_t n_stops;
    uint64_t infra_retry_at_ms; /* after the infra container could not be made */
    int sandbox_attempt;
    bool terminating, finalise, final_sent, volumes_ready, volumes_dirty;
    char *status_sent, *status_pending;
    char *status_final; /* the terminal status of a deleted pod, once taken: the last one sent */
    bool status_inflight;
    const char *phase;   /* podstatus_phase's last answer (a literal), NULL until computed */
    uint64_t queried_ms; /* last remote query for a missing configMap/secret */
};

struct deletion;

struct edged {
    struct edged_deps deps;
    struct edged_config cfg;
    struct runtime rt;
    struct prober *prober;
    struct satoken *tokens;
    struct epod *pods;
    struct podgone *gone;     /* pods finished here: late updates of them are ignored */
    struct deletion *retakes; /* deletes the cloud did not confirm: pods to take again */
    struct seen *seen, *next_seen;
    size_t n_seen, n_next;
    size_t inspects_pending;
    bool relisting, relist_again, runtime_up, listed_once, stopping;
    uint64_t retry_ms;  /* after a failed relist: 1 s, doubling up to resync_s */
    bool relist_broken; /* an inspect of this relist failed: the list is not used */
    uint64_t next_resync_ms;
    struct kedge_ratelimit rl;
    lws_sorted_usec_list_t sul_tick, sul_relist;
    /* the relist is over: ok, or not (message: why the runtime could not be listed) */
    void (*relisted)(struct edged *ed, bool ok, const char *message);
};

/* ---- edged_state.c: pods, their containers' state ---- */

struct epod *edged_pod_by_uid(struct edged *ed, const char *uid);
struct epod *edged_pod_by_key(struct edged *ed, const char *key);
const struct pod_container *edged_spec_container(const struct epod *p, size_t ci);
bool edged_is_init(const struct epod *p, size_t ci);
void edged_set_waiting(struct cstate *c, enum container_waiting w, const char *msg);
/* A container that could not be made waits before the next try. */
void edged_hold(struct edged *ed, struct cstate *c, enum container_waiting w, const char *msg);
/* The newest and the previous attempt of container name (infra: the sandbox) of pod uid. */
void edged_find_seen(struct edged *ed, const char *uid, const char *name, bool infra,
                     struct seen **cur, struct seen **prev);
/* Whether s is a container of pod uid. */
bool edged_seen_of(const struct seen *s, const char *uid);
bool edged_exited(const struct seen *s);
void edged_seen_cleanup(struct seen *s);
void edged_probe_ctx_free(struct probe_ctx *pc);
/* Cancel the container's probes and free its state. */
void edged_cstate_cleanup(struct edged *ed, struct cstate *c);
/* A pod taking spec (freed on failure). NULL: out of memory. */
struct epod *edged_pod_new(const char *key, struct pod_spec *spec);
/* Off the list and freed (its probes cancelled). */
void edged_forget_pod(struct edged *ed, struct epod *p);

/* ---- edged_relist.c: kubelet's PLEG ---- */

void edged_relist_soon(struct edged *ed);
void edged_relist_cancel(struct edged *ed);
void edged_relist_free(struct edged *ed);

/* ---- edged_cloud.c: messages to the cloud, lookups in the store ---- */

/* A message from edged straight onto the link. 0 or a negative code (-ENOTCONN offline). */
int edged_send_to_cloud(struct edged *ed, const char *op, const char *resource, const char *content,
                        bool as_string);
/* A request to the cloud; its answer goes to fn. */
int edged_request_cloud(struct edged *ed, const char *op, const char *resource, const char *content,
                        bool as_string, edged_reply_fn fn, void *ctx);
struct lookup_ctx {
    struct edged *ed;
    struct epod *p;
};
/* A podspec_lookup_fn (ctx: a struct lookup_ctx): the store; a miss asks the cloud. */
int edged_store_lookup(void *ctx, const char *type, const char *ns, const char *name, char **json);

/* ---- edged_status.c: kubelet's status manager ---- */

/* Container ci of p as the status shows it (strings borrowed from Edged's state). */
void edged_container_view(struct edged *ed, const struct epod *p, size_t ci,
                          struct container_view *cv);
/* Compute p's status and send it if it changed. false: it could not be sent now (a patch in
 * flight, out of memory); true: sent, unchanged, or offline. */
bool edged_report_status(struct edged *ed, struct epod *p);
/* A deleted pod whose containers stopped: take its terminal status (once) and send it; from then
 * on it is the only status p reports. Returns as edged_report_status. */
bool edged_report_final_status(struct edged *ed, struct epod *p);
/* Whether the cloud has answered the terminal status. */
bool edged_final_status_taken(const struct epod *p);

/* ---- edged_probe.c: kubelet's prober manager ---- */

/* Run the due probes of p's running containers (the tick). */
void edged_probe_pod(struct edged *ed, struct epod *p, uint64_t now);

/* ---- edged_ops.c: the pod workers' runtime calls ---- */

void edged_remove_container(struct edged *ed, struct epod *p, const char *id);
/* Stop a running container once: TERM, and KILL after the grace period (stops_due). */
void edged_stop_container(struct edged *ed, struct epod *p, int ci, const char *id);
/* The tick: KILL what outlived its grace period; forget stops of containers that are gone. */
void edged_stops_due(struct edged *ed, struct epod *p, uint64_t now);
/* Start a created container (ci -1: the sandbox). */
void edged_start_existing(struct edged *ed, struct epod *p, int ci, const char *id);
/* Container ci, attempt: check the image (pull if the policy says so), create, start. */
void edged_start_container(struct edged *ed, struct epod *p, int ci, int attempt);
/* Make the pod's sandbox: its image checked (pulled when absent, with the pod's pull secrets),
 * created, started. A failure holds the pod's containers in ContainerCreating with kubelet's
 * FailedCreatePodSandBox message until the next try. */
void edged_create_sandbox(struct edged *ed, struct epod *p);

/* ---- edged_worker.c: kubelet's pod workers ---- */

/* One step of p toward its spec (or, terminating, toward gone). p may be forgotten. */
void edged_sync_pod(struct edged *ed, struct epod *p);

/* ---- edged_pods.c: pods in and out ---- */

/* Take a pod from the store or the cloud (deleted: a delete of it). */
void edged_pod_apply(struct edged *ed, const char *key, const char *json, size_t len, bool deleted);
/* Ask the cloud to delete a pod this node has finished. 0, or -ENOTCONN, -ENOMEM. */
int edged_send_pod_delete(struct edged *ed, struct epod *p);
/* The tick: take the pods whose deletion was not confirmed again. */
void edged_retake_due(struct edged *ed, uint64_t now);
void edged_retakes_free(struct edged *ed);

#endif
