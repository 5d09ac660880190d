/* edged_relist.c: kubelet's PLEG. Edged lists the runtime's containers (its own: the runtime
 * lists only this node's), inspects the ones whose list state changed since the last list,
 * and swaps the new sightings in only when the whole list is sound: an inspect that failed
 * makes the list unknown, not empty (acting on it could start a container twice).
 *
 * Triggers come from everywhere (the runtime's events, a pod from the cloud, a reply, a probe
 * result, the tick), debounced; a relist asked for while one runs follows it. When it is over
 * the function registered in ed->relisted syncs the pods.
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

#define RELIST_DEBOUNCE_MS 50

static void relist_finished(struct edged *ed);

/* The relist could not be used: the old sightings stay, the caller says why. */
static void relist_failed(struct edged *ed, const char *message)
{
    uint64_t resync = (uint64_t)ed->cfg.resync_s * 1000;

    /* try again soon, not only at the next resync: a busy engine drops a call now and then */
    ed->retry_ms = ed->retry_ms ? ed->retry_ms * 2 : 1000;
    if (ed->retry_ms > resync)
        ed->retry_ms = resync;
    ed->next_resync_ms = kedge_now_ms() + ed->retry_ms;
    ed->relisting = false;
    ed->relisted(ed, false, message);
}

/* What o says of the container into s, whose id and name stay the list's. 0 or -ENOMEM. */
static int take_observed(struct seen *s, const struct observed_container *o)
{
    char *id = s->o.id, *name = s->o.name;
    int rc;

    s->o.id = s->o.name = NULL;
    observed_container_cleanup(&s->o);
    rc = observed_container_copy(&s->o, o);
    kedge_free(s->o.id);
    kedge_free(s->o.name);
    s->o.id = id;
    s->o.name = name;
    return rc;
}

struct inspect_ctx {
    struct edged *ed;
    size_t i; /* index into ed->next_seen (never reallocated while inspects run) */
};

static void inspected(void *ctx, const struct runtime_result *r)
{
    struct inspect_ctx *ic = ctx;
    struct edged *ed = ic->ed;
    struct seen *s = &ed->next_seen[ic->i];

    kedge_free(ic);
    if (r->outcome == RT_NOT_FOUND) {
        kedge_free(s->o.id); /* removed meanwhile: not seen */
        s->o.id = NULL;
    } else if (r->outcome != RT_OK) {
        ed->relist_broken = true; /* unknown, not absent */
    } else if (take_observed(s, r->inspected) < 0) {
        ed->relist_broken = true; /* out of memory: not a list to act on */
    }
    if (--ed->inspects_pending == 0 && !ed->stopping)
        relist_finished(ed);
}

static void start_inspect(struct edged *ed, size_t i)
{
    struct inspect_ctx *ic = kedge_malloc(sizeof(*ic));
    struct seen *s = &ed->next_seen[i];

    if (ic) {
        ic->ed = ed;
        ic->i = i;
        ed->inspects_pending++;
        if (ed->rt.ops->inspect(ed->rt.rt, s->o.id, inspected, ic) == 0)
            return;
        ed->inspects_pending--;
        kedge_free(ic);
    }
    kedge_free(s->o.id);
    s->o.id = NULL;
}

/* A previous sighting of the same container in the same list state: copied, not inspected
 * (the old list stays whole until this one is complete and sound). */
static bool reuse(struct edged *ed, struct seen *s)
{
    size_t i;

    for (i = 0; i < ed->n_seen; i++) {
        const struct seen *o = &ed->seen[i];
        if (!o->o.id || strcmp(o->o.id, s->o.id) || !o->list_state ||
            strcmp(o->list_state, s->list_state))
            continue;
        if (take_observed(s, &o->o) < 0)
            ed->relist_broken = true; /* out of memory: not a list to act on */
        return true;
    }
    return false;
}

/* One container of the list into s. false: out of memory (s empty). */
static bool take_listed(struct seen *s, const struct runtime_listed *l)
{
    s->o.id = kedge_strdup(l->id);
    s->o.name = kedge_strdup(l->name);
    s->uid = kedge_strdup(l->pod_uid);
    s->list_state = kedge_strdup(l->state);
    s->infra = l->sandbox;
    if (!s->o.id || !s->o.name || !s->uid || !s->list_state) {
        edged_seen_cleanup(s);
        return false;
    }
    return true;
}

static void listed(void *ctx, const struct runtime_result *r)
{
    struct edged *ed = ctx;
    size_t i, n = 0;

    if (ed->stopping || r->outcome == RT_CANCELLED) {
        ed->relisting = false;
        return;
    }
    if (r->outcome != RT_OK) {
        relist_failed(ed, r->message);
        return;
    }
    ed->next_seen = kedge_calloc(r->n_listed ? r->n_listed : 1, sizeof(*ed->next_seen));
    if (!ed->next_seen) {
        ed->relisting = false;
        return;
    }
    for (i = 0; i < r->n_listed; i++)
        n += take_listed(&ed->next_seen[n], &r->listed[i]);
    ed->n_next = n;
    ed->inspects_pending = 1; /* held until every inspect is queued */
    for (i = 0; i < n; i++)
        if (!reuse(ed, &ed->next_seen[i]))
            start_inspect(ed, i);
    if (--ed->inspects_pending == 0)
        relist_finished(ed);
}

/* Containers of pods edged does not have: orphans of a pod deleted while the bridge was down. */
static void remove_orphans(struct edged *ed)
{
    size_t i;

    for (i = 0; i < ed->n_seen; i++) {
        struct seen *s = &ed->seen[i];
        if (!s->o.id || edged_pod_by_uid(ed, s->uid))
            continue;
        kedge_log(KEDGE_LOG_NOTICE, "edged: removing container %.12s of unknown pod %s", s->o.id,
                  s->uid);
        (void)ed->rt.ops->remove_container(ed->rt.rt, s->o.id, NULL, NULL);
    }
}

/* A relist's result (ed->seen or the one being gathered, ed->next_seen), emptied. */
static void free_seen(struct seen **list, size_t *n)
{
    size_t i;

    for (i = 0; i < *n; i++)
        edged_seen_cleanup(&(*list)[i]);
    kedge_free(*list);
    *list = NULL;
    *n = 0;
}

static void relist_finished(struct edged *ed)
{
    size_t i, n = 0;

    if (ed->relist_broken) {
        char msg[300];
        free_seen(&ed->next_seen, &ed->n_next);
        ed->relist_broken = false;
        snprintf(msg, sizeof(msg), "container runtime is not reachable: %s", kedge_strerror(-EIO));
        relist_failed(ed, msg);
        return;
    }
    free_seen(&ed->seen, &ed->n_seen);
    /* compact: entries whose inspect found nothing are dropped */
    for (i = 0; i < ed->n_next; i++)
        if (ed->next_seen[i].o.id)
            ed->next_seen[n++] = ed->next_seen[i];
        else
            edged_seen_cleanup(&ed->next_seen[i]);
    ed->seen = ed->next_seen;
    ed->n_seen = n;
    ed->next_seen = NULL;
    ed->n_next = 0;
    ed->relisting = false;
    ed->listed_once = true;
    ed->retry_ms = 0;
    remove_orphans(ed);
    ed->relisted(ed, true, NULL);
    if (ed->relist_again) {
        ed->relist_again = false;
        edged_relist_soon(ed);
    }
}

static void relist(lws_sorted_usec_list_t *sul)
{
    struct edged *ed = lws_container_of(sul, struct edged, sul_relist);

    if (ed->stopping)
        return;
    if (ed->relisting) {
        ed->relist_again = true;
        return;
    }
    ed->next_resync_ms = kedge_now_ms() + (uint64_t)ed->cfg.resync_s * 1000;
    ed->relisting = true; /* first: a refused connection completes inside the call */
    if (ed->rt.ops->list(ed->rt.rt, listed, ed) < 0) {
        kedge_log(KEDGE_LOG_WARN, "edged: cannot relist: out of memory");
        ed->relisting = false;
    }
}

void edged_relist_soon(struct edged *ed)
{
    if (ed->stopping)
        return;
    if (ed->relisting) {
        ed->relist_again = true;
        return;
    }
    lws_sul_schedule(ed->deps.lws, 0, &ed->sul_relist, relist,
                     (lws_usec_t)RELIST_DEBOUNCE_MS * 1000);
}

void edged_relist_cancel(struct edged *ed)
{
    lws_sul_cancel(&ed->sul_relist);
}

void edged_relist_free(struct edged *ed)
{
    free_seen(&ed->seen, &ed->n_seen);
    free_seen(&ed->next_seen, &ed->n_next);
}
