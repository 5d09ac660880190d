/* edged_probe.c: kubelet's prober manager. Every tick each running container's due probes
 * run (probes.c runs one); the results count toward the probe's thresholds: a failed
 * liveness or startup probe asks the worker to restart the container, readiness decides the
 * container's (and the pod's) Ready condition. Counters belong to one container id: a new
 * container starts them over.
 */
#include <stdio.h>
#include <string.h>

#include "edged_int.h"
#include "kedge/alloc.h"
#include "kedge/log.h"

static const struct pod_probe *probe_of(const struct pod_container *c, enum probe_slot s)
{
    return s == P_LIVE ? &c->liveness : s == P_READY ? &c->readiness : &c->startup;
}

static void probe_done(void *ctx, enum probe_result res, const char *message)
{
    struct probe_ctx *pc = ctx;
    struct epod *p = edged_pod_by_uid(pc->ed, pc->uid);
    struct cstate *cs;
    const struct pod_probe *pr;
    bool ok = res == PROBE_SUCCESS, was_ready;

    if (!p || !p->spec || (size_t)pc->ci >= p->n_cs || p->cs[pc->ci].probe_ctx[pc->slot] != pc)
        goto out;
    cs = &p->cs[pc->ci];
    cs->probe_handle[pc->slot] = 0;
    cs->probe_ctx[pc->slot] = NULL;
    if (!cs->probe_cid || strcmp(cs->probe_cid, pc->cid))
        goto out; /* a probe of a container that is gone */
    pr = probe_of(edged_spec_container(p, (size_t)pc->ci), pc->slot);
    was_ready = cs->ready;
    switch (pc->slot) {
    case P_START:
        cs->start_ok = ok ? cs->start_ok + 1 : 0;
        cs->start_fail = ok ? 0 : cs->start_fail + 1;
        if (cs->start_ok >= 1)
            cs->started = true;
        else if (cs->start_fail >= pr->failure_threshold)
            cs->kill_requested = true;
        break;
    case P_LIVE:
        cs->live_fail = ok ? 0 : cs->live_fail + 1;
        if (cs->live_fail >= pr->failure_threshold) {
            kedge_log(KEDGE_LOG_NOTICE,
                      "edged: pod %s container %s failed liveness probe, "
                      "will be restarted: %s",
                      p->key, edged_spec_container(p, (size_t)pc->ci)->name,
                      message ? message : "");
            cs->kill_requested = true;
            cs->live_fail = 0;
        }
        break;
    case P_READY:
        cs->ready_ok = ok ? cs->ready_ok + 1 : 0;
        cs->ready_fail = ok ? 0 : cs->ready_fail + 1;
        if (cs->ready_ok >= pr->success_threshold)
            cs->ready = true;
        else if (cs->ready_fail >= pr->failure_threshold)
            cs->ready = false;
        break;
    }
    if (cs->kill_requested || was_ready != cs->ready || (pc->slot == P_START && cs->started))
        edged_relist_soon(pc->ed);
out:
    edged_probe_ctx_free(pc);
}

static void run_probe(struct edged *ed, struct epod *p, int ci, enum probe_slot slot,
                      const struct seen *cur, const struct seen *infra)
{
    struct cstate *cs = &p->cs[ci];
    const struct pod_probe *pr = probe_of(edged_spec_container(p, (size_t)ci), slot);
    struct probe_ctx *pc;
    const char *ip =
        p->spec->host_network ? "127.0.0.1" : (infra && infra->o.ip ? infra->o.ip : "");
    long h;

    pc = kedge_calloc(1, sizeof(*pc));
    if (!pc || !(pc->uid = kedge_strdup(p->uid)) || !(pc->cid = kedge_strdup(cur->o.id))) {
        if (pc)
            kedge_free(pc->uid);
        kedge_free(pc);
        return;
    }
    pc->ed = ed;
    pc->ci = ci;
    pc->slot = slot;
    h = prober_run(ed->prober, pr, cur->o.id, ip, probe_done, pc);
    if (h <= 0) {
        edged_probe_ctx_free(pc);
        return;
    }
    cs->probe_handle[slot] = h;
    cs->probe_ctx[slot] = pc; /* freed by probe_done, or by cstate_cleanup on cancel */
}

/* Due probes of the running containers of p (the tick calls it every second). */
void edged_probe_pod(struct edged *ed, struct epod *p, uint64_t now)
{
    struct seen *infra, *iprev;
    size_t ci;

    if (!p->spec || p->terminating || !ed->prober)
        return;
    edged_find_seen(ed, p->uid, NULL, true, &infra, &iprev);
    for (ci = p->spec->n_init_containers; ci < p->n_cs; ci++) {
        const struct pod_container *c = edged_spec_container(p, ci);
        struct cstate *cs = &p->cs[ci];
        struct seen *cur, *prev;
        int slot;

        edged_find_seen(ed, p->uid, c->name, false, &cur, &prev);
        if (!cur || !cur->o.running || !cs->probe_cid || strcmp(cs->probe_cid, cur->o.id))
            continue;
        if (c->startup.kind == PROBE_NONE)
            cs->started = true;
        if (c->readiness.kind == PROBE_NONE && cs->started && !cs->ready) {
            cs->ready = true;
            edged_relist_soon(ed);
        }
        for (slot = 0; slot < 3; slot++) {
            const struct pod_probe *pr = probe_of(c, (enum probe_slot)slot);
            if (pr->kind == PROBE_NONE || cs->probe_handle[slot])
                continue;
            if ((slot != P_START && !cs->started) || (slot == P_START && cs->started))
                continue;
            if (!cs->probe_at_ms[slot]) {
                cs->probe_at_ms[slot] = now + (uint64_t)pr->initial_delay_s * 1000;
                continue;
            }
            if (now < cs->probe_at_ms[slot])
                continue;
            cs->probe_at_ms[slot] = now + (uint64_t)(pr->period_s > 0 ? pr->period_s : 10) * 1000;
            run_probe(ed, p, (int)ci, (enum probe_slot)slot, cur, infra);
        }
    }
}
