/* kubelet_stats.c: METRIC_CONNECT, kubelet's stats and metrics endpoints (kubelet_stats.h).
 *
 * What kubelet 1.26's server answers on the paths cloudcore forwards:
 *   /stats/summary            the Summary JSON (server/stats/handler.go; only_cpu_and_memory
 *                             given once as "true": GetCPUAndMemoryStats' smaller summary);
 *   /metrics/resource         the resource collector's Prometheus text (summary_prom.c);
 *   /metrics, /metrics/cadvisor, /metrics/probes
 *                             kubelet's own registry, cadvisor's and the prober's: kedge has
 *                             none of those series, so the body is empty (an exposition with
 *                             no samples, which a scraper reads as such rather than an error);
 *   /stats, /stats/container, /stats/{pod}/{container}, /stats/{ns}/{pod}/{uid}/{container}
 *                             gone from kubelet since the cadvisor JSON endpoints were removed:
 *                             the stats web service has only /summary, so go-restful answers
 *                             404 with "404: Page Not Found" (sent as the body: cloudcore
 *                             wrote 200 already).
 * Every body ends with "\n": edgecore sends the body line by line, each with its "\n".
 *
 * A request takes the pods from Edged, the node's numbers from /proc (nodestats.c) and one
 * stats call per running container from the runtime, all at once; when the last answer is in,
 * the body is made and sent and the connection ended. A container whose stats call fails is
 * listed without cpu and memory (kubelet leaves out what cadvisor has not got).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cpurate.h"
#include "kedge/alloc.h"
#include "kedge/log.h"
#include "kedge/util.h"
#include "kubelet_stats.h"
#include "summary.h"

#define NOT_FOUND_BODY "404: Page Not Found\n" /* go-restful's, plus edgecore's line end */
#define NODE_RATE_KEY "/"                      /* the root cgroup's name: no container id */

struct kubelet_stats {
    struct kubelet_stats_config cfg;
    struct cpurate *rates;
};

enum route { R_SUMMARY, R_RESOURCE, R_EMPTY, R_NOT_FOUND };

struct kreq;

/* One stats call in flight: where its answer goes. */
struct kcall {
    struct kreq *r;
    size_t pod, container;
};

struct kreq {
    struct kubelet_stats *k;
    struct stream_conn *c;
    enum route route;
    bool cpu_and_memory;
    struct ks_summary sum;
    uint64_t mem_total;
    struct kcall *calls;
    size_t pending; /* stats calls not answered yet (+1 while they are being made) */
    bool removed;   /* the cloud or the tunnel ended it: send nothing */
    bool freed;     /* the session let go of it: the last answer frees it */
    bool failed;    /* out of memory gathering: kubelet's scrape_error */
};

static int64_t now_ms(const struct kubelet_stats *k)
{
    return k->cfg.now_ms ? k->cfg.now_ms() : kedge_wall_ms();
}

static void kreq_free(struct kreq *r)
{
    ks_summary_cleanup(&r->sum);
    kedge_free(r->calls);
    kedge_free(r);
}

/* ---- the answer -------------------------------------------------------------------------- */

static void send_body(struct kreq *r, const char *b, size_t n)
{
    int rc = n ? stream_conn_send(r->c, b, n) : 0;

    if (rc < 0 && rc != -ENOTCONN)
        kedge_log(KEDGE_LOG_WARN, "stream: metrics %" PRIu64 ": the answer was not sent: %s",
                  stream_conn_id(r->c), strerror(-rc));
    stream_conn_end(r->c);
}

static void container_sample(struct kreq *r, struct ks_container *c)
{
    if (c->has_cpu)
        c->cpu.has_nano_cores =
            cpurate_sample(r->k->rates, c->id, c->cpu.usage_ns, c->cpu.time_ms, &c->cpu.nano_cores);
}

/* usageNanoCores from the kept samples; availableBytes where the limit is a real one. */
static void derive(struct kreq *r)
{
    struct ks_node *n = &r->sum.node;
    size_t i, j;

    if (n->has_cpu)
        n->cpu.has_nano_cores = cpurate_sample(r->k->rates, NODE_RATE_KEY, n->cpu.usage_ns,
                                               n->cpu.time_ms, &n->cpu.nano_cores);
    for (i = 0; i < r->sum.n_pods; i++)
        for (j = 0; j < r->sum.pods[i].n_cs; j++)
            container_sample(r, &r->sum.pods[i].cs[j]);
    cpurate_sweep(r->k->rates);
    ks_summary_pod_totals(&r->sum);
}

static void answer(struct kreq *r)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    int rc;

    if (!r->failed)
        derive(r);
    if (r->route == R_SUMMARY)
        rc = r->failed ? -ENOMEM : ks_summary_json(&r->sum, &b);
    else
        rc = ks_resource_metrics(&r->sum, r->failed, &b);
    if (rc < 0) {
        /* kubelet's handleError: 500 with this text (the status cannot cross any more) */
        kedge_buf_reset(&b);
        rc = kedge_buf_puts(&b, "Internal Error: out of memory\n");
    }
    send_body(r, rc == 0 ? b.data : "", rc == 0 ? b.len : 0);
    kedge_buf_cleanup(&b);
}

/* One stats call fewer in flight: the last one answers (or frees an orphan). */
static void call_done(struct kreq *r)
{
    if (--r->pending)
        return;
    if (r->freed)
        kreq_free(r);
    else if (!r->removed)
        answer(r);
}

static void fill(struct ks_container *c, const struct runtime_stats *s, uint64_t mem_total)
{
    if (s->has_cpu) {
        c->has_cpu = true;
        c->cpu = (struct ks_cpu){.time_ms = s->time_ms, .usage_ns = s->cpu_usage_ns};
    }
    if (s->has_mem) {
        c->has_mem = true;
        c->mem = (struct ks_mem){.time_ms = s->time_ms,
                                 .usage = s->mem_usage,
                                 .working_set = s->mem_working_set,
                                 .rss = s->mem_rss,
                                 .has_rss = s->has_rss,
                                 .page_faults = s->page_faults,
                                 .major_page_faults = s->major_page_faults,
                                 .has_faults = s->has_faults};
        /* the engines give the host's memory as the limit of a container without one */
        if (s->has_limit && (!mem_total || s->mem_limit < mem_total)) {
            c->mem.has_available = true;
            c->mem.available =
                s->mem_limit > s->mem_working_set ? s->mem_limit - s->mem_working_set : 0;
        }
    }
}

static void on_stats(void *ctx, int err, const struct runtime_stats *s, const char *message)
{
    struct kcall *call = ctx;
    struct kreq *r = call->r;
    struct ks_container *c = &r->sum.pods[call->pod].cs[call->container];

    if (err == 0 && !r->freed)
        fill(c, s, r->mem_total);
    else if (err && err != -ECANCELED && !r->freed)
        kedge_log(KEDGE_LOG_INFO, "stream: metrics: no stats of container %s: %s", c->id, message);
    call_done(r);
}

/* ---- gathering --------------------------------------------------------------------------- */

static int copy_pod(struct ks_pod *p, const struct edged_pod_info *in)
{
    size_t i;

    p->ns = kedge_strdup(in->ns);
    p->name = kedge_strdup(in->name);
    p->uid = kedge_strdup(in->uid);
    p->start_ms = in->start_ms;
    p->cs = kedge_calloc(in->n_containers, sizeof(*p->cs));
    if (!p->ns || !p->name || !p->uid || !p->cs)
        return -ENOMEM;
    for (i = 0; i < in->n_containers; i++, p->n_cs++) {
        p->cs[i].name = kedge_strdup(in->containers[i].name);
        p->cs[i].id = kedge_strdup(in->containers[i].id);
        p->cs[i].start_ms = in->containers[i].started_ms;
        if (!p->cs[i].name || !p->cs[i].id) {
            p->n_cs++; /* freed with the rest */
            return -ENOMEM;
        }
    }
    return 0;
}

static void on_pod(void *ctx, const struct edged_pod_info *in)
{
    struct kreq *r = ctx;
    struct ks_pod *pods;

    if (r->failed)
        return;
    pods = kedge_realloc(r->sum.pods, (r->sum.n_pods + 1) * sizeof(*pods));
    if (!pods) {
        r->failed = true;
        return;
    }
    r->sum.pods = pods;
    memset(&pods[r->sum.n_pods], 0, sizeof(*pods));
    if (copy_pod(&pods[r->sum.n_pods++], in) < 0)
        r->failed = true;
}

/* One stats call per container; answer() runs when the last comes back. */
static void start_calls(struct kreq *r)
{
    const struct runtime *rt = r->k->cfg.rt;
    size_t i, j, n = 0, total = 0;

    for (i = 0; i < r->sum.n_pods; i++)
        total += r->sum.pods[i].n_cs;
    r->pending = 1; /* held until every call is made: an answer at once must not finish it */
    if (total && !r->failed && rt && rt->ops->stats &&
        !(r->calls = kedge_calloc(total, sizeof(*r->calls))))
        r->failed = true;
    for (i = 0; r->calls && i < r->sum.n_pods; i++)
        for (j = 0; j < r->sum.pods[i].n_cs; j++) {
            struct kcall *call = &r->calls[n++];
            *call = (struct kcall){r, i, j};
            r->pending++;
            if (rt->ops->stats(rt->rt, r->sum.pods[i].cs[j].id, on_stats, call) < 0) {
                r->failed = true;
                r->pending--;
            }
        }
    call_done(r);
}

static void gather(struct kreq *r)
{
    const struct kubelet_stats_config *cfg = &r->k->cfg;

    r->sum.node.name = cfg->node_name;
    if (nodestats_read(&cfg->node, now_ms(r->k), r->cpu_and_memory, &r->sum.node) < 0)
        r->failed = true;
    r->mem_total = nodestats_mem_total(&cfg->node);
    if (cfg->pods && cfg->pods(cfg->pods_ctx, on_pod, r) < 0)
        r->failed = true;
    start_calls(r);
}

/* ---- the handler ------------------------------------------------------------------------- */

/* only_cpu_and_memory as kubelet reads it: exactly one value, and it is "true". */
static bool only_cpu_and_memory(const struct stream_request *req)
{
    struct stream_query q = {0};
    const struct stream_query_kv *kv;
    bool yes = false;

    if (stream_query_parse(req->raw_query, strlen(req->raw_query), &q) < 0)
        return false;
    if (stream_query_count(&q, "only_cpu_and_memory") == 1) {
        kv = stream_query_get(&q, "only_cpu_and_memory");
        yes = kv->value_len == 4 && !memcmp(kv->value, "true", 4);
    }
    stream_query_cleanup(&q);
    return yes;
}

static enum route route_of(const char *path)
{
    if (!strcmp(path, "/stats/summary"))
        return R_SUMMARY;
    if (!strcmp(path, "/metrics/resource"))
        return R_RESOURCE;
    if (!strcmp(path, "/metrics") || !strcmp(path, "/metrics/cadvisor") ||
        !strcmp(path, "/metrics/probes"))
        return R_EMPTY;
    return R_NOT_FOUND;
}

static int op_open(void *hctx, struct stream_conn *c, const struct stream_request *req,
                   void **state)
{
    struct kreq *r = kedge_calloc(1, sizeof(*r));

    if (!r)
        return -ENOMEM;
    r->k = hctx;
    r->c = c;
    r->route = route_of(req->path);
    *state = r;
    kedge_log(KEDGE_LOG_DEBUG, "stream: metrics %" PRIu64 ": %s", stream_conn_id(c), req->path);
    switch (r->route) {
    case R_EMPTY:
        send_body(r, "", 0);
        break;
    case R_NOT_FOUND:
        send_body(r, NOT_FOUND_BODY, strlen(NOT_FOUND_BODY));
        break;
    case R_SUMMARY:
        r->cpu_and_memory = only_cpu_and_memory(req);
        gather(r);
        break;
    case R_RESOURCE:
        r->cpu_and_memory = true; /* the collector reads GetCPUAndMemoryStats */
        gather(r);
        break;
    }
    return 0;
}

static void op_remove(void *state)
{
    struct kreq *r = state;

    r->removed = true;
}

static void op_free(void *state)
{
    struct kreq *r = state;

    if (r->pending)
        r->freed = true; /* the runtime still answers: the last answer frees it */
    else
        kreq_free(r);
}

const struct stream_handler_ops kubelet_stats_ops = {
    .open = op_open,
    .remove = op_remove,
    .free = op_free,
};

int kubelet_stats_new(const struct kubelet_stats_config *cfg, struct kubelet_stats **out)
{
    struct kubelet_stats *k = kedge_calloc(1, sizeof(*k));

    *out = NULL;
    if (!k || !(k->rates = cpurate_new())) {
        kedge_free(k);
        return -ENOMEM;
    }
    k->cfg = *cfg;
    *out = k;
    return 0;
}

int kubelet_stats_register(struct kubelet_stats *k, struct stream_session *s)
{
    return stream_session_register(s, STREAM_METRIC_CONNECT, &kubelet_stats_ops, k);
}

void kubelet_stats_free(struct kubelet_stats *k)
{
    if (!k)
        return;
    cpurate_free(k->rates);
    kedge_free(k);
}
