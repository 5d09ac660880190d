/* summary_prom.c: the /metrics/resource body (summary.h).
 *
 * kubelet 1.26's resource collector (pkg/kubelet/metrics/collectors/resource_metrics.go): every
 * family ALPHA, so component-base prefixes the help with "[ALPHA] "; cpu in core-seconds
 * (usageCoreNanoSeconds / 1e9) as counters, working sets as gauges, each sample with the time
 * of its stats in ms; container_start_time_seconds with the start as its timestamp;
 * scrape_error without one. Prometheus' registry sorts the families by name and the samples by
 * their label values (labels in name order: container, namespace, pod), leaves out a family
 * without samples, and writes values with Go's strconv 'g' format.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "summary.h"

void ks_go_float(double f, char *out, size_t n)
{
    char e[40];
    int p, x;

    if (isnan(f)) {
        snprintf(out, n, "NaN");
        return;
    }
    if (isinf(f)) {
        snprintf(out, n, f > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (f == 0) {
        snprintf(out, n, "0");
        return;
    }
    for (p = 0;; p++) { /* the shortest digits that read back as f (17 always do) */
        snprintf(e, sizeof(e), "%.*e", p, f);
        if (p == 16 || strtod(e, NULL) == f)
            break;
    }
    x = atoi(strchr(e, 'e') + 1);
    if (x < -4 || x >= 6) {
        snprintf(out, n, "%s", e); /* C's %e has Go's form: d.ddde+XX, two exponent digits */
        return;
    }
    /* p + 1 significant digits, x + 1 of them before the point */
    snprintf(out, n, "%.*f", p - x > 0 ? p - x : 0, f);
}

/* One sample of a family. */
struct sample {
    const char *container, *ns, *pod; /* NULL: not a label of this family */
    double value;
    int64_t ts_ms; /* 0: none */
};

struct family {
    const char *name, *help, *type;
    struct sample *s;
    size_t n;
};

static int cmp_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

static int cmp_sample(const void *pa, const void *pb)
{
    const struct sample *a = pa, *b = pb;
    int c = cmp_str(a->container, b->container);

    if (!c)
        c = cmp_str(a->ns, b->ns);
    if (!c)
        c = cmp_str(a->pod, b->pod);
    return c;
}

static int put_label_value(struct kedge_buf *b, const char *v)
{
    int rc = 0;

    for (; *v && rc == 0; v++) {
        if (*v == '\\')
            rc = kedge_buf_puts(b, "\\\\");
        else if (*v == '"')
            rc = kedge_buf_puts(b, "\\\"");
        else if (*v == '\n')
            rc = kedge_buf_puts(b, "\\n");
        else
            rc = kedge_buf_putc(b, *v);
    }
    return rc;
}

static int put_labels(struct kedge_buf *b, const struct sample *s)
{
    const char *names[3] = {"container", "namespace", "pod"};
    const char *vals[3] = {s->container, s->ns, s->pod};
    int rc = 0, i, k = 0;

    for (i = 0; i < 3 && rc == 0; i++) {
        if (!vals[i])
            continue;
        rc = kedge_buf_printf(b, "%s%s=\"", k++ ? "," : "{", names[i]);
        if (rc == 0)
            rc = put_label_value(b, vals[i]);
        if (rc == 0)
            rc = kedge_buf_putc(b, '"');
    }
    if (rc == 0 && k)
        rc = kedge_buf_putc(b, '}');
    return rc;
}

static int put_family(struct kedge_buf *b, struct family *f)
{
    char num[40];
    size_t i;
    int rc;

    if (!f->n)
        return 0;
    qsort(f->s, f->n, sizeof(*f->s), cmp_sample);
    rc = kedge_buf_printf(b, "# HELP %s [ALPHA] %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                          f->type);
    for (i = 0; i < f->n && rc == 0; i++) {
        ks_go_float(f->s[i].value, num, sizeof(num));
        rc = kedge_buf_puts(b, f->name);
        if (rc == 0)
            rc = put_labels(b, &f->s[i]);
        if (rc == 0)
            rc = kedge_buf_printf(b, " %s", num);
        if (rc == 0 && f->s[i].ts_ms)
            rc = kedge_buf_printf(b, " %" PRId64, f->s[i].ts_ms);
        if (rc == 0)
            rc = kedge_buf_putc(b, '\n');
    }
    return rc;
}

enum fam {
    F_CCPU,
    F_CMEM,
    F_CSTART,
    F_NCPU,
    F_NMEM,
    F_PCPU,
    F_PMEM,
    F_SCRAPE,
    N_FAM
}; /* in name order */

static const struct family family_defs[N_FAM] = {
    {"container_cpu_usage_seconds_total",
     "Cumulative cpu time consumed by the container in core-seconds", "counter", NULL, 0},
    {"container_memory_working_set_bytes", "Current working set of the container in bytes", "gauge",
     NULL, 0},
    {"container_start_time_seconds", "Start time of the container since unix epoch in seconds",
     "gauge", NULL, 0},
    {"node_cpu_usage_seconds_total", "Cumulative cpu time consumed by the node in core-seconds",
     "counter", NULL, 0},
    {"node_memory_working_set_bytes", "Current working set of the node in bytes", "gauge", NULL, 0},
    {"pod_cpu_usage_seconds_total", "Cumulative cpu time consumed by the pod in core-seconds",
     "counter", NULL, 0},
    {"pod_memory_working_set_bytes", "Current working set of the pod in bytes", "gauge", NULL, 0},
    {"scrape_error", "1 if there was an error while getting container metrics, 0 otherwise",
     "gauge", NULL, 0},
};

static void add(struct family *f, const char *c, const char *ns, const char *pod, double v,
                int64_t ts)
{
    f->s[f->n++] = (struct sample){c, ns, pod, v, ts};
}

static void collect_pod(struct family *fam, const struct ks_pod *p)
{
    size_t j;

    for (j = 0; j < p->n_cs; j++) {
        const struct ks_container *c = &p->cs[j];
        if (c->start_ms > 0)
            add(&fam[F_CSTART], c->name, p->ns, p->name, (double)c->start_ms / 1e3, c->start_ms);
        if (c->has_cpu)
            add(&fam[F_CCPU], c->name, p->ns, p->name, (double)c->cpu.usage_ns / 1e9,
                c->cpu.time_ms);
        if (c->has_mem)
            add(&fam[F_CMEM], c->name, p->ns, p->name, (double)c->mem.working_set, c->mem.time_ms);
    }
    if (p->has_cpu)
        add(&fam[F_PCPU], NULL, p->ns, p->name, (double)p->cpu.usage_ns / 1e9, p->cpu.time_ms);
    if (p->has_mem)
        add(&fam[F_PMEM], NULL, p->ns, p->name, (double)p->mem.working_set, p->mem.time_ms);
}

int ks_resource_metrics(const struct ks_summary *s, bool scrape_error, struct kedge_buf *out)
{
    struct family fam[N_FAM];
    size_t i, room = 1;
    int rc = 0;

    for (i = 0; i < s->n_pods; i++)
        room += s->pods[i].n_cs + 1;
    memcpy(fam, family_defs, sizeof(fam));
    for (i = 0; i < N_FAM && rc == 0; i++)
        if (!(fam[i].s = kedge_calloc(room, sizeof(struct sample))))
            rc = -ENOMEM;
    if (rc == 0) {
        if (!scrape_error && s->node.has_cpu)
            add(&fam[F_NCPU], NULL, NULL, NULL, (double)s->node.cpu.usage_ns / 1e9,
                s->node.cpu.time_ms);
        if (!scrape_error && s->node.has_mem)
            add(&fam[F_NMEM], NULL, NULL, NULL, (double)s->node.mem.working_set,
                s->node.mem.time_ms);
        for (i = 0; i < s->n_pods && !scrape_error; i++)
            collect_pod(fam, &s->pods[i]);
        add(&fam[F_SCRAPE], NULL, NULL, NULL, scrape_error ? 1 : 0, 0);
    }
    for (i = 0; i < N_FAM && rc == 0; i++)
        rc = put_family(out, &fam[i]) < 0 ? -ENOMEM : 0;
    for (i = 0; i < N_FAM; i++)
        kedge_free(fam[i].s);
    return rc;
}
