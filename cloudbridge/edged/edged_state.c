/* edged_state.c: Edged's pods and what it knows of their containers: lookups, the containers'
 * waiting state, the last relist's sightings, and a pod's life in memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edged_int.h"
#include "kedge/alloc.h"
#include "kedge/util.h"

struct epod *edged_pod_by_uid(struct edged *ed, const char *uid)
{
    struct epod *p;

    for (p = ed->pods; p; p = p->next)
        if (uid && !strcmp(p->uid, uid))
            return p;
    return NULL;
}

struct epod *edged_pod_by_key(struct edged *ed, const char *key)
{
    struct epod *p;

    for (p = ed->pods; p; p = p->next)
        if (!strcmp(p->key, key))
            return p;
    return NULL;
}

const struct pod_container *edged_spec_container(const struct epod *p, size_t ci)
{
    if (ci < p->spec->n_init_containers)
        return &p->spec->init_containers[ci];
    return &p->spec->containers[ci - p->spec->n_init_containers];
}

bool edged_is_init(const struct epod *p, size_t ci)
{
    return ci < p->spec->n_init_containers;
}

void edged_set_waiting(struct cstate *c, enum container_waiting w, const char *msg)
{
    c->waiting = w;
    kedge_free(c->waiting_msg);
    c->waiting_msg = msg && *msg ? kedge_strdup(msg) : NULL;
}

/* A container that could not be made (bad config, image, runtime error) waits before the
 * next try instead of trying again at every relist. */
void edged_hold(struct edged *ed, struct cstate *c, enum container_waiting w, const char *msg)
{
    edged_set_waiting(c, w, msg);
    c->retry_at_ms = kedge_now_ms() + (uint64_t)ed->cfg.backoff_initial_ms;
}

/* Entries emptied by a relist in progress (reuse) are nobody's. */
bool edged_seen_of(const struct seen *s, const char *uid)
{
    return s->o.id && s->uid && !strcmp(s->uid, uid);
}

void edged_find_seen(struct edged *ed, const char *uid, const char *name, bool infra,
                     struct seen **cur, struct seen **prev)
{
    size_t i;

    *cur = *prev = NULL;
    for (i = 0; i < ed->n_seen; i++) {
        struct seen *s = &ed->seen[i];
        if (!edged_seen_of(s, uid) || s->infra != infra || (!infra && strcmp(s->o.name, name)))
            continue;
        if (!*cur || s->o.attempt > (*cur)->o.attempt ||
            (s->o.attempt == (*cur)->o.attempt && s->o.created_ms > (*cur)->o.created_ms)) {
            *prev = *cur;
            *cur = s;
        } else if (!*prev || s->o.attempt > (*prev)->o.attempt) {
            *prev = s;
        }
    }
}

bool edged_exited(const struct seen *s)
{
    return s && !s->o.running &&
           (s->o.finished_ms > 0 || !strcmp(s->o.state, "exited") ||
            !strcmp(s->o.state, "stopped"));
}

void edged_seen_cleanup(struct seen *s)
{
    observed_container_cleanup(&s->o);
    kedge_free(s->uid);
    kedge_free(s->list_state);
    memset(s, 0, sizeof(*s));
}

void edged_probe_ctx_free(struct probe_ctx *pc)
{
    if (!pc)
        return;
    kedge_free(pc->uid);
    kedge_free(pc->cid);
    kedge_free(pc);
}

void edged_cstate_cleanup(struct edged *ed, struct cstate *c)
{
    for (int k = 0; k < 3; k++)
        if (c->probe_handle[k] && ed->prober) {
            prober_cancel(ed->prober, c->probe_handle[k]);
            c->probe_handle[k] = 0;
        }
    for (int k = 0; k < 3; k++) {
        edged_probe_ctx_free(c->probe_ctx[k]);
        c->probe_ctx[k] = NULL;
    }
    kedge_free(c->waiting_msg);
    kedge_free(c->probe_cid);
    memset(c, 0, sizeof(*c));
}

static void pod_free(struct epod *p)
{
    size_t i;

    if (!p)
        return;
    for (i = 0; i < p->n_cs; i++) { /* probes are cancelled by edged_forget_pod first */
        kedge_free(p->cs[i].waiting_msg);
        kedge_free(p->cs[i].probe_cid);
        for (int k = 0; k < 3; k++)
            edged_probe_ctx_free(p->cs[i].probe_ctx[k]);
    }
    kedge_free(p->cs);
    podspec_free(p->spec);
    kedge_free_all(p->key, p->uid, p->pod_reason, p->pod_message, p->status_sent, p->status_pending,
                   p->status_final, p);
}

struct epod *edged_pod_new(const char *key, struct pod_spec *spec)
{
    struct epod *p = kedge_calloc(1, sizeof(*p));

    if (!p) {
        podspec_free(spec);
        return NULL;
    }
    p->key = kedge_strdup(key);
    p->uid = kedge_strdup(spec->uid ? spec->uid : "");
    p->n_cs = spec->n_init_containers + spec->n_containers;
    p->cs = kedge_calloc(p->n_cs ? p->n_cs : 1, sizeof(*p->cs));
    if (!p->key || !p->uid || !p->cs) {
        podspec_free(spec);
        p->spec = NULL;
        pod_free(p);
        return NULL;
    }
    p->spec = spec;
    p->start_ms = kedge_wall_ms();
    return p;
}

void edged_forget_pod(struct edged *ed, struct epod *p)
{
    struct epod **pp;
    size_t i;

    for (i = 0; i < p->n_cs; i++)
        edged_cstate_cleanup(ed, &p->cs[i]);
    for (pp = &ed->pods; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    pod_free(p);
}
