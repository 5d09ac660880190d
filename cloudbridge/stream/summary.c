/* summary.c: the Summary's memory and the pod totals (summary.h). */
#include "kedge/alloc.h"
#include "summary.h"

void ks_summary_cleanup(struct ks_summary *s)
{
    size_t i, j;

    for (i = 0; i < s->n_pods; i++) {
        struct ks_pod *p = &s->pods[i];
        for (j = 0; j < p->n_cs; j++) {
            kedge_free(p->cs[j].name);
            kedge_free(p->cs[j].id);
        }
        kedge_free(p->cs);
        kedge_free(p->ns);
        kedge_free(p->name);
        kedge_free(p->uid);
    }
    kedge_free(s->pods);
    kedge_free(s->node.net.ifs);
    s->pods = NULL;
    s->n_pods = 0;
    s->node.net.ifs = NULL;
    s->node.net.n = 0;
}

static int64_t later(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static void cpu_total(struct ks_pod *p)
{
    size_t i;

    p->has_cpu = p->n_cs > 0;
    p->cpu = (struct ks_cpu){.has_nano_cores = true};
    for (i = 0; i < p->n_cs && p->has_cpu; i++) {
        const struct ks_cpu *c = &p->cs[i].cpu;
        p->has_cpu = p->cs[i].has_cpu;
        p->cpu.time_ms = later(p->cpu.time_ms, c->time_ms);
        p->cpu.usage_ns += c->usage_ns;
        p->cpu.nano_cores += c->nano_cores;
        p->cpu.has_nano_cores = p->cpu.has_nano_cores && c->has_nano_cores;
    }
}

static void mem_total(struct ks_pod *p)
{
    size_t i;

    p->has_mem = p->n_cs > 0;
    p->mem = (struct ks_mem){.has_rss = true, .has_faults = true};
    for (i = 0; i < p->n_cs && p->has_mem; i++) {
        const struct ks_mem *m = &p->cs[i].mem;
        p->has_mem = p->cs[i].has_mem;
        p->mem.time_ms = later(p->mem.time_ms, m->time_ms);
        p->mem.usage += m->usage;
        p->mem.working_set += m->working_set;
        p->mem.rss += m->rss;
        p->mem.page_faults += m->page_faults;
        p->mem.major_page_faults += m->major_page_faults;
        p->mem.has_rss = p->mem.has_rss && m->has_rss;
        p->mem.has_faults = p->mem.has_faults && m->has_faults;
    }
}

void ks_summary_pod_totals(struct ks_summary *s)
{
    size_t i;

    for (i = 0; i < s->n_pods; i++) {
        cpu_total(&s->pods[i]);
        mem_total(&s->pods[i]);
    }
}
