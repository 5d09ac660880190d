/* cpurate.c: usageNanoCores from consecutive samples (cpurate.h). */
#include <stdio.h>
#include <string.h>

#include "cpurate.h"
#include "kedge/alloc.h"

struct entry {
    struct entry *next;
    char *key;
    uint64_t usage_ns, rate;
    int64_t t_ms;
    bool has_rate, seen;
};

struct cpurate {
    struct entry *head;
};

struct cpurate *cpurate_new(void)
{
    return kedge_calloc(1, sizeof(struct cpurate));
}

static void entry_free(struct entry *e)
{
    kedge_free(e->key);
    kedge_free(e);
}

void cpurate_free(struct cpurate *r)
{
    if (!r)
        return;
    while (r->head) {
        struct entry *e = r->head;
        r->head = e->next;
        entry_free(e);
    }
    kedge_free(r);
}

static struct entry *find(struct cpurate *r, const char *key)
{
    struct entry *e;

    for (e = r->head; e; e = e->next)
        if (!strcmp(e->key, key))
            return e;
    e = kedge_calloc(1, sizeof(*e));
    if (!e || !(e->key = kedge_strdup(key))) {
        kedge_free(e);
        return NULL;
    }
    e->t_ms = -1;
    e->next = r->head;
    r->head = e;
    return e;
}

bool cpurate_sample(struct cpurate *r, const char *key, uint64_t usage_ns, int64_t t_ms,
                    uint64_t *nano_cores)
{
    struct entry *e = find(r, key);

    if (!e)
        return false;
    e->seen = true;
    if (e->t_ms < 0 || usage_ns < e->usage_ns || t_ms < e->t_ms) {
        /* the first sample, or a counter that went back (not the same cgroup any more) */
        e->usage_ns = usage_ns;
        e->t_ms = t_ms;
        e->has_rate = false;
    } else if (t_ms - e->t_ms >= CPURATE_MIN_WINDOW_MS) {
        /* ns per s of wall time = nano-cores */
        e->rate = (uint64_t)((double)(usage_ns - e->usage_ns) * 1000.0 / (double)(t_ms - e->t_ms));
        e->has_rate = true;
        e->usage_ns = usage_ns;
        e->t_ms = t_ms;
    }
    if (e->has_rate)
        *nano_cores = e->rate;
    return e->has_rate;
}

void cpurate_sweep(struct cpurate *r)
{
    struct entry **pp = &r->head;

    while (*pp) {
        struct entry *e = *pp;
        if (e->seen) {
            e->seen = false;
            pp = &e->next;
        } else {
            *pp = e->next;
            entry_free(e);
        }
    }
}
