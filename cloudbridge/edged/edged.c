/* edged.c: Edged's lifecycle and its sync loop on the bridge's event loop.
 *
 * Level-triggered, as kubelet's syncLoop: edged relists the runtime's containers
 * (edged_relist.c), and after every relist it reports each pod's status (edged_status.c) and
 * drives it one step toward its spec (edged_worker.c). Triggers: the runtime's events
 * (debounced), a pod from the cloud, a back-off or probe coming due (1 s tick), and a periodic
 * resync (resync_s) in case an event was missed.
 *
 * So a restart needs no special path: pods come from the meta store, containers from the
 * runtime, and the first relist matches them by pod UID and container name; containers of pods
 * the store no longer has are removed (no orphans).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edged_int.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"
#include "meta/resource.h"
#include "podvolumes.h"

#define TICK_MS 1000

const char *edged_resource_type(const char *resource, char *type, size_t type_len)
{
    const char *a = resource ? strchr(resource, '/') : NULL;
    const char *b = a ? strchr(a + 1, '/') : NULL;

    if (!a || !b || (size_t)(b - a - 1) >= type_len)
        return NULL;
    memcpy(type, a + 1, (size_t)(b - a - 1));
    type[b - a - 1] = '\0';
    if (!resource_wants_edged(type))
        return NULL;
    return type;
}

/* The resource hook: a cloud insert/update/delete of a pod, configmap or secret (stored). */
static void on_resource(void *ctx, const struct kedge_msg *m)
{
    struct edged *ed = ctx;
    const char *op = m->operation ? m->operation : "";
    char type[32];
    const char *name;
    struct epod *p;

    if (!edged_resource_type(m->resource, type, sizeof(type)))
        return;
    if (!strcmp(type, "pod")) {
        if (!strcmp(op, "insert") || !strcmp(op, "update") || !strcmp(op, "delete"))
            edged_pod_apply(ed, m->resource, m->content, m->content_len, !strcmp(op, "delete"));
        return;
    }
    /* a configMap or secret changed: pods that mount it get their files rewritten */
    name = strchr(strchr(m->resource, '/') + 1, '/') + 1;
    for (p = ed->pods; p; p = p->next)
        if (p->spec && podvolumes_uses(p->spec, type, name) &&
            !strncmp(m->resource, p->spec->ns, (size_t)(strchr(m->resource, '/') - m->resource)))
            p->volumes_dirty = true;
    edged_relist_soon(ed);
}

/* satoken: a new token for the pod uid: its projected volumes are written again. */
static void on_token(void *ctx, const char *uid)
{
    struct edged *ed = ctx;
    struct epod *p;

    if (ed->stopping)
        return;
    for (p = ed->pods; p; p = p->next)
        if (!strcmp(p->uid, uid))
            p->volumes_dirty = true;
    edged_relist_soon(ed);
}

static void load_row(void *ctx, const char *key, const char *value)
{
    edged_pod_apply(ctx, key, value, strlen(value), false);
}

/* The relist is over: report and sync every pod. When the runtime could not be listed, pods
 * that never ran say why (kubelet's pods wait in ContainerCreating while the runtime is down);
 * running ones keep their last status. */
static void relisted(struct edged *ed, bool ok, const char *message)
{
    struct epod *p, *next;
    size_t i;

    if (ok) {
        for (p = ed->pods; p; p = next) {
            next = p->next; /* the sync may forget p */
            edged_report_status(ed, p);
            edged_sync_pod(ed, p);
        }
        return;
    }
    kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: cannot list containers (%s): %s",
                      ed->cfg.runtime_name, message);
    for (p = ed->pods; p; p = p->next) {
        struct seen *cur, *prev;
        if (!p->spec || p->terminating)
            continue;
        for (i = 0; i < p->n_cs; i++) {
            edged_find_seen(ed, p->uid, edged_spec_container(p, i)->name, false, &cur, &prev);
            if (!cur && (p->cs[i].waiting == WAIT_NONE || p->cs[i].waiting == WAIT_CREATING))
                edged_set_waiting(&p->cs[i], WAIT_CREATING, message);
        }
        edged_report_status(ed, p);
    }
}

/* Whether something of p is due: a back-off over, a retry, a kill asked for. */
static bool pod_due(const struct epod *p, uint64_t now)
{
    size_t i;

    if (p->terminating)
        return true; /* until its containers are gone */
    for (i = 0; i < p->n_cs; i++) {
        const struct cstate *cs = &p->cs[i];
        if ((cs->waiting == WAIT_CRASH_BACKOFF && now >= cs->backoff_until_ms) ||
            (cs->waiting == WAIT_PULL_BACKOFF &&
             !imagepull_backoff_active(&cs->pull_backoff, now)) ||
            (cs->retry_at_ms && now >= cs->retry_at_ms) || cs->kill_requested)
            return true;
    }
    return false;
}

static void tick(lws_sorted_usec_list_t *sul)
{
    struct edged *ed = lws_container_of(sul, struct edged, sul_tick);
    uint64_t now = kedge_now_ms();
    bool due = now >= ed->next_resync_ms;
    struct epod *p;

    edged_retake_due(ed, now);
    for (p = ed->pods; p; p = p->next) {
        edged_probe_pod(ed, p, now);
        edged_stops_due(ed, p, now);
        due = pod_due(p, now) || due;
        if (!p->status_inflight && p->status_pending == NULL && p->spec &&
            ed->deps.connected(ed->deps.ctx) && ed->listed_once)
            edged_report_status(ed, p); /* sends only when it differs from what the cloud has */
    }
    if (due)
        edged_relist_soon(ed);
    if (!ed->stopping)
        lws_sul_schedule(ed->deps.lws, 0, &ed->sul_tick, tick, (lws_usec_t)TICK_MS * 1000);
}

static void on_changed(void *ctx)
{
    edged_relist_soon(ctx);
}

/* The runtime's version: the node's containerRuntimeVersion. */
static void version_read(void *ctx, const struct runtime_result *r)
{
    struct edged *ed = ctx;

    if (r->outcome == RT_OK && r->text)
        ed->deps.runtime_version(ed->deps.ctx, r->text);
    /* else the node keeps what it says; the next connection asks again */
}

static void on_runtime_up(void *ctx, bool up)
{
    struct edged *ed = ctx;

    if (up != ed->runtime_up)
        kedge_log(up ? KEDGE_LOG_NOTICE : KEDGE_LOG_WARN, "edged: container runtime %s (%s)",
                  up ? "connected" : "lost", ed->cfg.runtime_name);
    ed->runtime_up = up;
    if (up) {
        edged_relist_soon(ed);
        if (ed->rt.ops->version(ed->rt.rt, version_read, ed) < 0)
            kedge_log(KEDGE_LOG_WARN, "edged: out of memory asking the runtime's version");
    }
}

/* ---- lifetime ---------------------------------------------------------------------------- */

int edged_new(const struct edged_deps *deps, const struct edged_config *cfg,
              const struct runtime *rt, struct edged **out)
{
    struct edged *ed = kedge_calloc(1, sizeof(*ed));
    int rc;

    *out = NULL;
    if (!ed) {
        rt->ops->free(rt->rt);
        return -ENOMEM;
    }
    ed->deps = *deps;
    ed->cfg = *cfg;
    ed->rt = *rt;
    ed->relisted = relisted;
    ed->rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(10000, 5);
    rc = podgone_new(&ed->gone);
    if (rc == 0 && deps->vhost)
        rc = prober_new(deps->lws, deps->vhost, &ed->rt, &ed->prober);
    if (rc == 0)
        rc = satoken_new(&ed->deps, cfg->remote_timeout_ms, on_token, ed, &ed->tokens);
    if (rc < 0) {
        edged_free(ed);
        return rc;
    }
    rc = deps->store_list(deps->ctx, "pod", load_row, ed);
    if (rc < 0)
        kedge_log(KEDGE_LOG_WARN, "edged: cannot read the pods in the store: %s",
                  kedge_strerror(rc));
    deps->set_resource_hook(deps->ctx, on_resource, ed);
    rc = ed->rt.ops->watch(ed->rt.rt, on_changed, on_runtime_up, ed);
    if (rc < 0) {
        deps->set_resource_hook(deps->ctx, NULL, NULL);
        edged_free(ed);
        return rc;
    }
    edged_relist_soon(ed);
    lws_sul_schedule(deps->lws, 0, &ed->sul_tick, tick, (lws_usec_t)TICK_MS * 1000);
    *out = ed;
    return 0;
}

void edged_stop(struct edged *ed)
{
    if (!ed)
        return;
    ed->stopping = true;
    ed->deps.set_resource_hook(ed->deps.ctx, NULL, NULL);
    lws_sul_cancel(&ed->sul_tick);
    edged_relist_cancel(ed);
    satoken_stop(ed->tokens);
    ed->rt.ops->stop(ed->rt.rt);
}

void edged_free(struct edged *ed)
{
    if (!ed)
        return;
    ed->stopping = true;
    while (ed->pods)
        edged_forget_pod(ed, ed->pods); /* cancels their probes */
    prober_free(ed->prober);
    satoken_free(ed->tokens);
    ed->rt.ops->free(ed->rt.rt); /* completes what is in flight (cancelled); the pods are gone */
    edged_relist_free(ed);
    podgone_free(ed->gone);
    edged_retakes_free(ed);
    kedge_free(ed);
}

void edged_pod_phases(const struct edged *ed, edged_phase_fn fn, void *ctx)
{
    static const char *const phases[] = {"Pending", "Running", "Succeeded", "Failed", "Unknown"};
    size_t n[5] = {0}, i;
    const struct epod *p;

    for (p = ed->pods; p; p = p->next) {
        for (i = 0; p->phase && i < 5 && strcmp(p->phase, phases[i]); i++)
            ;
        n[i < 5 ? i : 4]++; /* not computed yet: i stays 0, Pending */
    }
    for (i = 0; i < 5; i++)
        fn(ctx, phases[i], n[i]);
}
