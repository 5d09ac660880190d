/* podstatus.c: a pod's v1.PodStatus from what the engine reported, as kubelet writes it
 * (pkg/kubelet/kubelet_pods.go generateAPIPodStatus / getPhase, status/generate.go).
 *
 * Everything here is derived from edged's view (struct pod_view): inspect results of the
 * newest and the previous attempt of each container, the waiting reason edged decided, probe
 * results. Nothing is invented: a container the engine never reported is Waiting.
 */
#define _GNU_SOURCE /* strptime, timegm */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kedge/json.h"
#include "podstatus.h"
#include "kedge/util.h"

static const char *const cond_names[N_COND] = {"Initialized", "Ready", "ContainersReady",
                                               "PodScheduled"};

const char *podstatus_waiting_reason(enum container_waiting w)
{
    switch (w) {
    case WAIT_PULL_ERROR:
        return "ErrImagePull";
    case WAIT_PULL_BACKOFF:
        return "ImagePullBackOff";
    case WAIT_INVALID_IMAGE:
        return "InvalidImageName";
    case WAIT_NEVER_PULL:
        return "ErrImageNeverPull";
    case WAIT_CONFIG_ERROR:
        return "CreateContainerConfigError";
    case WAIT_CREATE_ERROR:
        return "CreateContainerError";
    case WAIT_RUN_ERROR:
        return "RunContainerError";
    case WAIT_CRASH_BACKOFF:
        return "CrashLoopBackOff";
    case WAIT_POD_INIT:
        return "PodInitializing";
    case WAIT_NONE:
    case WAIT_CREATING:
    default:
        return "ContainerCreating";
    }
}

/* ---- per container ----------------------------------------------------------------------------
 */

static bool is_running(const struct container_view *c)
{
    return c->current && c->current->running;
}

static bool is_exited(const struct observed_container *o)
{
    return o && !o->running && o->finished_ms > 0;
}

enum podstatus_shown podstatus_shown_state(const struct container_view *c)
{
    if (is_running(c))
        return PS_SHOW_RUNNING;
    if (c->waiting != WAIT_NONE || !is_exited(c->current))
        return PS_SHOW_WAITING;
    return PS_SHOW_TERMINATED;
}

const struct observed_container *podstatus_last_terminated(const struct container_view *c)
{
    if (podstatus_shown_state(c) == PS_SHOW_WAITING && is_exited(c->current))
        return c->current;
    if (podstatus_shown_state(c) == PS_SHOW_WAITING && is_exited(c->previous))
        return c->previous; /* the restart is being made */
    if (podstatus_shown_state(c) == PS_SHOW_RUNNING && is_exited(c->previous))
        return c->previous;
    if (podstatus_shown_state(c) == PS_SHOW_TERMINATED && is_exited(c->previous))
        return c->previous;
    return NULL;
}

static void write_time(struct kedge_jw *w, const char *key, int64_t ms)
{
    char t[32];

    kedge_jw_key(w, key);
    if (ms <= 0) {
        kedge_jw_null(w);
        return;
    }
    kedge_rfc3339(ms / 1000, t);
    kedge_jw_str(w, t);
}

static void write_container_id(struct kedge_jw *w, const char *key, const char *id)
{
    char buf[160];

    snprintf(buf, sizeof(buf), "docker://%s", id);
    kedge_jw_kstr(w, key, buf);
}

/* The status goes up as a strategic-merge patch of the stored Pod: a key left out would keep
 * its old value there, so the states not shown are written as null (which deletes them), as
 * kubelet's two-way patch does. */
static void write_null(struct kedge_jw *w, const char *key)
{
    kedge_jw_key(w, key);
    kedge_jw_null(w);
}

static const char *terminated_reason(const struct observed_container *o)
{
    if (o->oom_killed)
        return "OOMKilled";
    if (o->error && *o->error)
        return "ContainerCannotRun";
    return o->exit_code == 0 ? "Completed" : "Error";
}

static void write_terminated(struct kedge_jw *w, const struct observed_container *o)
{
    kedge_jw_key(w, "terminated");
    kedge_jw_obj_open(w);
    kedge_jw_kint(w, "exitCode", o->exit_code);
    kedge_jw_kstr(w, "reason", terminated_reason(o));
    if (o->error && *o->error)
        kedge_jw_kstr(w, "message", o->error);
    else
        write_null(w, "message");
    write_time(w, "startedAt", o->started_ms);
    write_time(w, "finishedAt", o->finished_ms);
    write_container_id(w, "containerID", o->id);
    kedge_jw_obj_close(w);
}

static void write_state(struct kedge_jw *w, const struct container_view *c)
{
    enum podstatus_shown sh = podstatus_shown_state(c);

    kedge_jw_key(w, "state");
    kedge_jw_obj_open(w); /* Go's order: waiting, running, terminated */
    if (sh == PS_SHOW_WAITING) {
        kedge_jw_key(w, "waiting");
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "reason", podstatus_waiting_reason(c->waiting));
        if (c->waiting_message && *c->waiting_message)
            kedge_jw_kstr(w, "message", c->waiting_message);
        else
            write_null(w, "message");
        kedge_jw_obj_close(w);
    } else {
        write_null(w, "waiting");
    }
    if (sh == PS_SHOW_RUNNING) {
        kedge_jw_key(w, "running");
        kedge_jw_obj_open(w);
        write_time(w, "startedAt", c->current->started_ms);
        kedge_jw_obj_close(w);
    } else {
        write_null(w, "running");
    }
    if (sh == PS_SHOW_TERMINATED)
        write_terminated(w, c->current);
    else
        write_null(w, "terminated");
    kedge_jw_obj_close(w);
}

static void write_container(struct kedge_jw *w, const struct container_view *c)
{
    const struct observed_container *last = podstatus_last_terminated(c);
    char image_id[200];

    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "name", c->spec->name);
    write_state(w, c);
    kedge_jw_key(w, "lastState");
    kedge_jw_obj_open(w);
    if (last)
        write_terminated(w, last);
    else
        write_null(w, "terminated");
    kedge_jw_obj_close(w);
    kedge_jw_key(w, "ready");
    kedge_jw_bool(w, c->ready && is_running(c));
    kedge_jw_kint(w, "restartCount", c->restart_count);
    kedge_jw_kstr(w, "image", c->spec->image ? c->spec->image : "");
    image_id[0] = '\0';
    if (c->current && c->current->image_id && *c->current->image_id)
        snprintf(image_id, sizeof(image_id), "docker://%s", c->current->image_id);
    kedge_jw_kstr(w, "imageID", image_id);
    if (c->current)
        write_container_id(w, "containerID", c->current->id);
    else
        write_null(w, "containerID");
    kedge_jw_key(w, "started");
    kedge_jw_bool(w, c->started && is_running(c));
    kedge_jw_obj_close(w);
}

/* ---- the pod ------------------------------------------------------------------------------------
 */

static bool inits_done(const struct pod_view *v)
{
    size_t i;

    for (i = 0; i < v->n_init; i++) {
        const struct observed_container *o = v->init[i].current;
        if (!is_exited(o) || o->exit_code != 0)
            return false;
    }
    return true;
}

static bool init_failed(const struct pod_view *v)
{
    size_t i;

    for (i = 0; i < v->n_init; i++) {
        const struct observed_container *o = v->init[i].current;
        if (is_exited(o) && o->exit_code != 0)
            return true;
    }
    return false;
}

const char *podstatus_phase(const struct pod_view *v)
{
    size_t i, running = 0, waiting = 0, stopped = 0, succeeded = 0;
    enum pod_restart_policy rp = v->spec->restart;

    if (v->n_apps == 0)
        return v->terminating ? "Failed" : "Pending";
    if (!inits_done(v)) {
        if (v->terminating)
            return "Failed"; /* deleted before it ever ran (kubelet 1.27+) */
        return init_failed(v) && rp == RESTART_NEVER ? "Failed" : "Pending";
    }
    for (i = 0; i < v->n_apps; i++) {
        const struct container_view *c = &v->apps[i];
        if (is_running(c)) {
            running++;
        } else if (is_exited(c->current)) {
            stopped++;
            succeeded += c->current->exit_code == 0;
        } else if (is_exited(c->previous)) {
            /* a restart being made: still stopped, by the last termination (kubelet counts
             * Waiting with a terminated lastState so), not Pending */
            stopped++;
            succeeded += c->previous->exit_code == 0;
        } else {
            waiting++;
        }
    }
    if (v->terminating && running == 0) /* deleted: Succeeded only if every app succeeded */
        return stopped == v->n_apps && succeeded == stopped ? "Succeeded" : "Failed";
    if (waiting > 0 && !v->terminating)
        return "Pending";
    if (running > 0)
        return "Running";
    if (stopped == 0)
        return "Pending";
    if (rp == RESTART_ALWAYS)
        return "Running"; /* restarting */
    if (stopped == succeeded)
        return "Succeeded";
    return rp == RESTART_ON_FAILURE ? "Running" : "Failed";
}

static bool terminal(const char *phase)
{
    return !strcmp(phase, "Succeeded") || !strcmp(phase, "Failed");
}

void podstatus_conditions(const struct pod_view *v, bool out[N_COND])
{
    const char *phase = podstatus_phase(v);
    bool all_ready = v->n_apps > 0;
    size_t i;

    for (i = 0; i < v->n_apps; i++)
        if (!(v->apps[i].ready && is_running(&v->apps[i])))
            all_ready = false;
    out[COND_INITIALIZED] = inits_done(v) || terminal(phase);
    out[COND_CONTAINERS_READY] = all_ready && !terminal(phase);
    out[COND_READY] = out[COND_CONTAINERS_READY];
    out[COND_SCHEDULED] = true;
}

/* "containers with unready status: [a b]" */
static void list_message(struct kedge_jw *w, const char *what, const struct container_view *cs,
                         size_t n, bool want_init)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    size_t i;
    bool first = true;

    if (kedge_buf_printf(&b, "containers with %s status: [", what) < 0)
        goto out;
    for (i = 0; i < n; i++) {
        bool ok = want_init ? is_exited(cs[i].current) && cs[i].current->exit_code == 0
                            : cs[i].ready && is_running(&cs[i]);
        if (ok)
            continue;
        if (kedge_buf_printf(&b, "%s%s", first ? "" : " ", cs[i].spec->name) < 0)
            goto out;
        first = false;
    }
    if (kedge_buf_putc(&b, ']') < 0)
        goto out;
    kedge_jw_kstr(w, "message", b.data);
out:
    kedge_buf_cleanup(&b);
}

static void write_conditions(struct kedge_jw *w, const struct pod_view *v)
{
    bool c[N_COND];
    const char *phase = podstatus_phase(v);
    int i;

    podstatus_conditions(v, c);
    kedge_jw_key(w, "conditions");
    kedge_jw_arr_open(w);
    for (i = 0; i < N_COND; i++) {
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "type", cond_names[i]);
        kedge_jw_kstr(w, "status", c[i] ? "True" : "False");
        kedge_jw_key(w, "lastProbeTime");
        kedge_jw_null(w);
        write_time(w, "lastTransitionTime", v->cond_since_s[i] * 1000);
        if (terminal(phase) &&
            (i == COND_READY || i == COND_CONTAINERS_READY || i == COND_INITIALIZED)) {
            kedge_jw_kstr(w, "reason", "PodCompleted");
            write_null(w, "message"); /* "containers with unready status" must not stay */
        } else if (!c[i] && i == COND_INITIALIZED) {
            kedge_jw_kstr(w, "reason", "ContainersNotInitialized");
            list_message(w, "incomplete", v->init, v->n_init, true);
        } else if (!c[i] && (i == COND_READY || i == COND_CONTAINERS_READY)) {
            kedge_jw_kstr(w, "reason", "ContainersNotReady");
            list_message(w, "unready", v->apps, v->n_apps, false);
        } else {
            write_null(w, "reason"); /* a former reason must not stay (see write_null) */
            write_null(w, "message");
        }
        kedge_jw_obj_close(w);
    }
    kedge_jw_arr_close(w);
}

static void write_ips(struct kedge_jw *w, const char *key, const char *list_key, const char *ip)
{
    if (!ip || !*ip)
        return;
    kedge_jw_kstr(w, key, ip);
    kedge_jw_key(w, list_key);
    kedge_jw_arr_open(w);
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "ip", ip);
    kedge_jw_obj_close(w);
    kedge_jw_arr_close(w);
}

/* Guaranteed: every container has cpu and memory limits equal to its requests (a request left
 * out defaults to the limit); BestEffort: nothing set anywhere; Burstable otherwise. */
static const char *qos_class(const struct pod_spec *p)
{
    bool any = false, guaranteed = true;
    size_t i;

    for (i = 0; i < p->n_containers; i++) {
        const struct pod_container *c = &p->containers[i];
        int64_t cr = c->cpu_request_milli ? c->cpu_request_milli : c->cpu_limit_milli;
        int64_t mr = c->mem_request_bytes ? c->mem_request_bytes : c->mem_limit_bytes;
        if (c->cpu_limit_milli || c->cpu_request_milli || c->mem_limit_bytes ||
            c->mem_request_bytes)
            any = true;
        if (!c->cpu_limit_milli || !c->mem_limit_bytes || cr != c->cpu_limit_milli ||
            mr != c->mem_limit_bytes)
            guaranteed = false;
    }
    if (!any)
        return "BestEffort";
    return guaranteed ? "Guaranteed" : "Burstable";
}

int podstatus_write(const struct pod_view *v, struct kedge_buf *out)
{
    struct kedge_jw w;
    size_t i;

    kedge_jw_init(&w, out);
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "phase", podstatus_phase(v));
    write_conditions(&w, v);
    /* plain keys of the Pod's status: left out, a strategic merge would keep the old value */
    if (v->pod_message && *v->pod_message)
        kedge_jw_kstr(&w, "message", v->pod_message);
    else
        write_null(&w, "message");
    if (v->pod_reason && *v->pod_reason)
        kedge_jw_kstr(&w, "reason", v->pod_reason);
    else
        write_null(&w, "reason");
    write_ips(&w, "hostIP", "hostIPs", v->host_ip);
    write_ips(&w, "podIP", "podIPs", v->pod_ip);
    if (v->start_ms)
        write_time(&w, "startTime", v->start_ms);
    if (v->n_init) {
        kedge_jw_key(&w, "initContainerStatuses");
        kedge_jw_arr_open(&w);
        for (i = 0; i < v->n_init; i++)
            write_container(&w, &v->init[i]);
        kedge_jw_arr_close(&w);
    }
    kedge_jw_key(&w, "containerStatuses");
    kedge_jw_arr_open(&w);
    for (i = 0; i < v->n_apps; i++)
        write_container(&w, &v->apps[i]);
    kedge_jw_arr_close(&w);
    kedge_jw_kstr(&w, "qosClass", qos_class(v->spec));
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

int podstatus_patch(const char *uid, const char *status, size_t len, struct kedge_buf *out)
{
    struct kedge_jw w;

    kedge_jw_init(&w, out);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "metadata");
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "uid", uid);
    kedge_jw_obj_close(&w);
    kedge_jw_key(&w, "status");
    kedge_jw_raw(&w, status, len);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

/* "2026-11-25T12:11:14.123456789Z" or with an offset ("+01:00"). */
int64_t podstatus_parse_time_ms(const char *s)
{
    struct tm tm;
    const char *p;
    int64_t ms = 0, off_s = 0, t;
    int frac_digits = 0;

    if (!s)
        return 0;
    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p || tm.tm_year + 1900 < 1971)
        return 0;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, frac_digits++)
            if (frac_digits < 3)
                ms = ms * 10 + (*p - '0');
        for (; frac_digits < 3; frac_digits++)
            ms *= 10;
    }
    if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return 0;
        off_s = (int64_t)(hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
    } else if (*p != 'Z') {
        return 0;
    }
    t = (int64_t)timegm(&tm);
    return (t - off_s) * 1000 + ms;
}
