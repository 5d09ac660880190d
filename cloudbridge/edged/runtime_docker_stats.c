/* runtime_docker_stats.c: one usage sample of a container, GET /containers/{id}/stats.
 *
 * stream=false asks for one answer instead of a stream; one-shot=true stops dockerd from
 * waiting a second for a second sample (it fills precpu_stats for `docker stats`' percentage;
 * kubelet's summary needs only the cumulative counters). podman 4.3 answers at once either way
 * and accepts one-shot.
 *
 * The memory numbers are cadvisor's (kubelet's summary is made of them): the working set is
 * usage minus the inactive file pages, the page cache the kernel reclaims first, which is
 * total_inactive_file in cgroup v1's memory.stat and inactive_file in v2's. dockerd passes
 * memory.stat through as memory_stats.stats; podman 4.3 sends no stats at all, and then the
 * working set is the usage (cadvisor's value when the kernel reports no inactive file pages).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "podstatus.h"
#include "runtime_docker_exec.h"
#include "runtime_docker_stats.h"

#define STATS_TIMEOUT_MS 10000

struct stats_call {
    runtime_stats_fn done;
    void *ctx;
};

/* A JSON number that is a non-negative integer (Go's uint64), into *out. */
static bool u64_of(const struct kedge_jval *v, uint64_t *out)
{
    char *end;
    unsigned long long n;

    if (!v || v->type != KEDGE_JNUM || !v->len || v->str[0] == '-')
        return false;
    errno = 0;
    n = strtoull(v->str, &end, 10);
    if (errno || *end)
        return false;
    *out = n;
    return true;
}

/* memory.stat's key k, cgroup v1's total_k first (the hierarchy's, as cadvisor reads it). */
static bool mem_stat(const struct kedge_jval *stats, const char *k, uint64_t *out)
{
    char total[64];

    snprintf(total, sizeof(total), "total_%s", k);
    return u64_of(kedge_json_get_exact(stats, total, strlen(total)), out) ||
           u64_of(kedge_json_get_exact(stats, k, strlen(k)), out);
}

static void parse_memory(const struct kedge_jval *m, struct runtime_stats *s)
{
    const struct kedge_jval *stats = kedge_json_get(m, "stats");
    uint64_t inactive = 0;

    s->has_mem = u64_of(kedge_json_get(m, "usage"), &s->mem_usage);
    s->has_limit = u64_of(kedge_json_get(m, "limit"), &s->mem_limit) && s->mem_limit > 0;
    if (stats && stats->type == KEDGE_JOBJ) {
        mem_stat(stats, "inactive_file", &inactive);
        /* v1 names it rss, v2 anon (cadvisor's RSS either way) */
        s->has_rss = mem_stat(stats, "rss", &s->mem_rss) || mem_stat(stats, "anon", &s->mem_rss);
        s->has_faults = mem_stat(stats, "pgfault", &s->page_faults) &&
                        mem_stat(stats, "pgmajfault", &s->major_page_faults);
    }
    s->mem_working_set = s->mem_usage > inactive ? s->mem_usage - inactive : 0;
}

int docker_stats_parse(const char *json, size_t len, struct runtime_stats *s)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *cpu, *mem, *read;
    int rc = kedge_json_parse(json, len, &doc);

    memset(s, 0, sizeof(*s));
    if (rc < 0)
        return rc == -ENOMEM ? -ENOMEM : KEDGE_EPARSE;
    root = kedge_jdoc_root(doc);
    cpu = kedge_json_get(root, "cpu_stats");
    mem = kedge_json_get(root, "memory_stats");
    if (!cpu || cpu->type != KEDGE_JOBJ || !mem || mem->type != KEDGE_JOBJ) {
        kedge_jdoc_free(doc);
        return KEDGE_ESCHEMA;
    }
    read = kedge_json_get(root, "read");
    s->time_ms = read && read->type == KEDGE_JSTR ? podstatus_parse_time_ms(read->str) : 0;
    s->has_cpu =
        u64_of(kedge_json_get(kedge_json_get(cpu, "cpu_usage"), "total_usage"), &s->cpu_usage_ns);
    parse_memory(mem, s);
    kedge_jdoc_free(doc);
    return 0;
}

static void answered(void *ctx, const struct engine_reply *r)
{
    struct stats_call *c = ctx;
    struct runtime_stats s;
    char msg[512];
    int rc;

    if (r->err == -ECANCELED) {
        c->done(c->ctx, -ECANCELED, NULL, "the container runtime client stopped");
    } else if (r->status == 404) {
        docker_engine_message(r, msg, sizeof(msg));
        c->done(c->ctx, -ENOENT, NULL, msg);
    } else if (r->status != 200) {
        docker_engine_message(r, msg, sizeof(msg));
        c->done(c->ctx, r->status == 0 ? -EHOSTUNREACH : -EIO, NULL, msg);
    } else if ((rc = docker_stats_parse(r->body, r->len, &s)) < 0) {
        c->done(c->ctx, rc == -ENOMEM ? -ENOMEM : -EPROTO, NULL,
                rc == -ENOMEM ? "out of memory" : "the container runtime's stats did not parse");
    } else {
        c->done(c->ctx, 0, &s, "");
    }
    kedge_free(c);
}

int docker_stats(struct engine *e, const char *id, runtime_stats_fn done, void *ctx)
{
    struct stats_call *c;
    char path[192];

    if (!docker_id_ok(id, strlen(id))) {
        done(ctx, -ENOENT, NULL, "no such container");
        return 0;
    }
    c = kedge_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->done = done;
    c->ctx = ctx;
    snprintf(path, sizeof(path), "/containers/%s/stats?stream=false&one-shot=true", id);
    if (engine_request(e, "GET", path, NULL, 0, STATS_TIMEOUT_MS, answered, c) < 0) {
        kedge_free(c);
        return -ENOMEM;
    }
    return 0;
}
