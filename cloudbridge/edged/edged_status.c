/* edged_status.c: kubelet's status manager. After every relist each pod's v1.PodStatus is
 * computed (podstatus.c) from the spec, the runtime's containers and edged's own state, and
 * sent as a podpatch when it differs from the last one the cloud took; while the link is down
 * the newest status waits and goes when it returns. Condition transition times are kept here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "edged_int.h"
#include "kedge/alloc.h"
#include "kedge/log.h"

void edged_container_view(struct edged *ed, const struct epod *p, size_t ci,
                          struct container_view *cv)
{
    const struct pod_container *c = edged_spec_container(p, ci);
    struct seen *cur, *prev;

    edged_find_seen(ed, p->uid, c->name, false, &cur, &prev);
    memset(cv, 0, sizeof(*cv));
    cv->spec = c;
    cv->current = cur ? &cur->o : NULL;
    cv->previous = prev ? &prev->o : NULL;
    cv->waiting = p->cs[ci].waiting;
    cv->waiting_message = p->cs[ci].waiting_msg;
    if (cur && cur->o.running)
        cv->waiting = WAIT_NONE;
    else if (!edged_is_init(p, ci) && !cur && p->spec->n_init_containers &&
             cv->waiting == WAIT_NONE)
        cv->waiting = WAIT_POD_INIT; /* apps wait for the init containers */
    cv->ready = p->cs[ci].ready;
    cv->started = p->cs[ci].started;
    cv->restart_count = cur ? cur->o.attempt : 0;
}

static void fill_view(struct edged *ed, struct epod *p, struct pod_view *v,
                      struct container_view *views)
{
    struct seen *infra, *iprev;
    size_t ci;

    memset(v, 0, sizeof(*v));
    v->spec = p->spec;
    edged_find_seen(ed, p->uid, NULL, true, &infra, &iprev);
    v->sandbox_ready = infra && infra->o.running;
    v->pod_ip = p->spec->host_network ? ed->cfg.host_ip : (v->sandbox_ready ? infra->o.ip : NULL);
    v->host_ip = ed->cfg.host_ip;
    v->start_ms = p->start_ms;
    v->terminating = p->terminating;
    v->pod_reason = p->pod_reason;
    v->pod_message = p->pod_message;
    for (ci = 0; ci < p->n_cs; ci++)
        edged_container_view(ed, p, ci, &views[ci]);
    v->init = views;
    v->n_init = p->spec->n_init_containers;
    v->apps = views + v->n_init;
    v->n_apps = p->spec->n_containers;
    memcpy(v->cond_since_s, p->cond_since_s, sizeof(v->cond_since_s));
}

struct status_ctx {
    struct edged *ed;
    char uid[]; /* the pod may be gone when the answer comes */
};

static void status_sent(void *ctx, const struct kedge_msg *m, int err)
{
    struct status_ctx *sc = ctx;
    struct edged *ed = sc->ed;
    const char *reason = NULL;
    char *obj = NULL;
    struct epod *p = edged_pod_by_uid(ed, sc->uid);

    if (!err)
        obj = ed->deps.object_of(ed->deps.ctx, m, &reason);
    if (p) {
        p->status_inflight = false;
        if (obj || !err) {
            /* applied, or refused by the cloud (a pod it no longer has, say): either way this
             * status is not sent again; the next change is */
            if (!obj)
                kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_INFO,
                                  "edged: pod %s: status patch refused (%s)", p->key,
                                  reason ? reason : "no object");
            kedge_free(p->status_sent);
            p->status_sent = p->status_pending;
            p->status_pending = NULL;
        } else {
            kedge_free(p->status_pending); /* no answer: sent again at the next tick */
            p->status_pending = NULL;
        }
    }
    kedge_free(obj);
    kedge_free(sc);
}

/* podpatch {ns}/podpatch/{name}: the status as a strategic-merge patch, a string
 * (docs/kubeedge-wire.md §5.1). */
static int send_status(struct edged *ed, struct epod *p, const char *status, size_t len)
{
    struct kedge_buf patch = KEDGE_BUF_INIT;
    char resource[600];
    size_t ul = strlen(p->uid);
    struct status_ctx *sc = kedge_malloc(sizeof(*sc) + ul + 1);
    int rc = podstatus_patch(p->uid, status, len, &patch);

    snprintf(resource, sizeof(resource), "%s/podpatch/%s", p->spec->ns, p->spec->name);
    if (rc < 0 || !sc) {
        kedge_free(sc);
        kedge_buf_cleanup(&patch);
        return -ENOMEM;
    }
    sc->ed = ed;
    memcpy(sc->uid, p->uid, ul + 1);
    rc = edged_request_cloud(ed, "patch", resource, patch.data, true, status_sent, sc);
    if (rc == 0) /* as edgecore does */
        (void)ed->deps.store_put(ed->deps.ctx, resource, patch.data, patch.len);
    else
        kedge_free(sc);
    kedge_buf_cleanup(&patch);
    return rc;
}

/* Send status (the newest) unless the cloud has it already. false: not now (a patch in
 * flight, out of memory); true: sent, unchanged, or offline (it goes when the link is back). */
static bool offer(struct edged *ed, struct epod *p, const char *status, size_t len)
{
    if (p->status_sent && !strcmp(p->status_sent, status))
        return true;
    if (!ed->deps.connected(ed->deps.ctx))
        return true;
    if (send_status(ed, p, status, len) < 0)
        return false;
    p->status_inflight = true;
    p->status_pending = kedge_strdup(status); /* NULL (no memory): offered again after the answer */
    kedge_log(KEDGE_LOG_DEBUG, "edged: pod %s status %s sent", p->key, p->phase ? p->phase : "");
    return true;
}

/* p's v1.PodStatus now, into b. 0 or -ENOMEM. */
static int compute(struct edged *ed, struct epod *p, struct kedge_buf *b)
{
    struct container_view *views = kedge_calloc(p->n_cs ? p->n_cs : 1, sizeof(*views));
    struct pod_view v;
    bool cond[N_COND];
    int64_t now_s = (int64_t)time(NULL);
    int i, rc;

    if (!views)
        return -ENOMEM;
    fill_view(ed, p, &v, views);
    podstatus_conditions(&v, cond);
    for (i = 0; i < N_COND; i++)
        if (!p->cond_known || cond[i] != p->cond_last[i]) {
            p->cond_since_s[i] = now_s;
            p->cond_last[i] = cond[i];
        }
    p->cond_known = true;
    memcpy(v.cond_since_s, p->cond_since_s, sizeof(v.cond_since_s));
    p->phase = podstatus_phase(&v);
    rc = podstatus_write(&v, b);
    kedge_free(views);
    return rc;
}

/* Compute p's status and send it if it changed. Returns false when it could not be sent now
 * (a patch in flight, out of memory), true when sent, unchanged, or offline. A pod whose
 * terminal status was taken (edged_report_final_status) offers that one only: the removal of
 * its containers afterwards is no change of status (it would read ContainerCreating). */
bool edged_report_status(struct edged *ed, struct epod *p)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    bool done;

    if (!p->spec || (p->terminating && !p->finalise))
        return true; /* a pod the cloud deleted (or replaced): it has no status to take */
    if (p->status_inflight)
        return false;
    if (p->status_final)
        return offer(ed, p, p->status_final, strlen(p->status_final));
    done = compute(ed, p, &b) == 0 && offer(ed, p, b.data, b.len);
    kedge_buf_cleanup(&b);
    return done;
}

bool edged_report_final_status(struct edged *ed, struct epod *p)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    if (!p->status_final) {
        if (compute(ed, p, &b) < 0) {
            kedge_buf_cleanup(&b);
            return false;
        }
        p->status_final = kedge_buf_take(&b, NULL);
    }
    return edged_report_status(ed, p);
}

bool edged_final_status_taken(const struct epod *p)
{
    return p->status_final && p->status_sent && !strcmp(p->status_final, p->status_sent);
}
