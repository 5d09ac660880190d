/* v1.PodStatus from what the runtime reports and what Edged decided, and the podpatch body.
 * Pure: no I/O.
 */
#ifndef KEDGE_EDGED_PODSTATUS_H
#define KEDGE_EDGED_PODSTATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "kedge/buf.h"
#include "podspec.h"
#include "runtime.h"

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
/* The state kubelet shows for c: waiting wins over a dead container (it is being restarted). */
enum podstatus_shown { PS_SHOW_WAITING, PS_SHOW_RUNNING, PS_SHOW_TERMINATED };
enum podstatus_shown podstatus_shown_state(const struct container_view *c);
/* The terminated container lastState shows (NULL none): the dead current one while waiting to
 * restart, else the previous attempt. */
const struct observed_container *podstatus_last_terminated(const struct container_view *c);
/* kubelet's waiting reason for w ("ContainerCreating", "CrashLoopBackOff", ...). */
const char *podstatus_waiting_reason(enum container_waiting w);
/* An RFC 3339 time with nanoseconds, as the engines write them, to Unix ms; 0 for the zero
 * time ("0001-01-01T00:00:00Z") or anything unparsable. */
int64_t podstatus_parse_time_ms(const char *s);

#endif
