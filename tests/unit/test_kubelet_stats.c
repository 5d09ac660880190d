/* EdgeStream's metrics (cloudbridge/stream/kubelet_stats.c and its parts): kubelet 1.26's
 * /stats/summary JSON and /metrics/resource text made from a fake runtime's samples, a fixture
 * /proc and a fixed pod list, through the connectID table over a recording tunnel; the other
 * paths cloudcore forwards; Go's float format; the Docker Engine's stats bodies; the cpu rate.
 */
#include <check.h>
#include <inttypes.h>
#include <math.h>

#include "cpurate.h"
#include "fake_runtime.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kubelet_stats.h"
#include "nodestats.h"
#include "runtime_docker_stats.h"
#include "session.h"
#include "summary.h"
#include "unit.h"

#define PROC_DIR KEDGE_UNIT_FIXTURES "/proc-node"
#define NOW_MS 1733500000123LL

/* ---- Go's float format ------------------------------------------------------------------- */

static void check_float(double f, const char *want)
{
    char got[40];

    ks_go_float(f, got, sizeof(got));
    ck_assert_msg(!strcmp(got, want), "%.17g: got %s, want %s", f, got, want);
}

START_TEST(go_float)
{
    /* strconv.FormatFloat(f, 'g', -1, 64), as Prometheus' text encoder writes values */
    check_float(1642962944, "1.642962944e+09");
    check_float(0.035306127, "0.035306127");
    check_float(12345.678, "12345.678");
    check_float(1e6, "1e+06");
    check_float(123456, "123456");
    check_float(0.0001, "0.0001");
    check_float(0.00001, "1e-05");
    check_float(1, "1");
    check_float(0, "0");
    check_float(13.3, "13.3");
    check_float(1733400000.123, "1.733400000123e+09");
    check_float(0.1 + 0.2, "0.30000000000000004");
    check_float(-2.5, "-2.5");
    check_float(INFINITY, "+Inf");
    check_float(NAN, "NaN");
}
END_TEST

/* ---- the summary's exact text ------------------------------------------------------------ */

START_TEST(summary_exact_text)
{
    /* what kubelet's go-restful writes (MarshalIndent, one space) for a node without pods,
     * plus edgecore's line end; a zero time is null, an unset optional field absent */
    struct ks_summary s = {0};
    struct kedge_buf b = KEDGE_BUF_INIT;

    s.node.name = "n\"1<";
    s.node.has_cpu = true;
    s.node.cpu = (struct ks_cpu){
        .time_ms = 1733500000999, .usage_ns = 5, .nano_cores = 7, .has_nano_cores = true};
    s.node.has_rlimit = true;
    s.node.rlimit = (struct ks_rlimit){.time_ms = 0, .maxpid = -1, .curproc = 3};
    ck_assert_int_eq(ks_summary_json(&s, &b), 0);
    ASSERT_BUF(&b, "{\n"
                   " \"node\": {\n"
                   "  \"nodeName\": \"n\\\"1\\u003c\",\n"
                   "  \"startTime\": null,\n"
                   "  \"cpu\": {\n"
                   "   \"time\": \"2024-12-06T15:46:40Z\",\n"
                   "   \"usageNanoCores\": 7,\n"
                   "   \"usageCoreNanoSeconds\": 5\n"
                   "  },\n"
                   "  \"rlimit\": {\n"
                   "   \"time\": null,\n"
                   "   \"curproc\": 3\n"
                   "  }\n"
                   " },\n"
                   " \"pods\": []\n"
                   "}\n");
    kedge_buf_cleanup(&b);
}
END_TEST

/* ---- the Docker Engine's stats ----------------------------------------------------------- */

/* Only the stats body parser is under test here: no engine is reached. */
int engine_request(struct engine *e, const char *method, const char *path, const char *body,
                   size_t body_len, int timeout_ms, engine_done_fn done, void *ctx)
{
    (void)e, (void)method, (void)path, (void)body, (void)body_len, (void)timeout_ms;
    (void)done, (void)ctx;
    return -ENOMEM;
}

START_TEST(docker_stats_bodies)
{
    /* dockerd on cgroup v1: memory.stat passed through, total_* for the hierarchy */
    static const char v1[] =
        "{\"read\":\"2026-12-06T17:53:53.721564144Z\",\"cpu_stats\":{\"cpu_usage\":{"
        "\"total_usage\":31899901}},\"memory_stats\":{\"usage\":10000000,\"limit\":268435456,"
        "\"stats\":{\"inactive_file\":5,\"total_inactive_file\":4000000,\"rss\":7,"
        "\"total_rss\":3000000,\"total_pgfault\":1234,\"total_pgmajfault\":5}}}";
    /* cgroup v2: inactive_file and anon */
    static const char v2[] =
        "{\"read\":\"2026-12-06T17:53:53Z\",\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":9}},"
        "\"memory_stats\":{\"usage\":5000,\"stats\":{\"inactive_file\":6000,\"anon\":100,"
        "\"pgfault\":1,\"pgmajfault\":0}}}";
    /* podman 4.3 on v1: no memory.stat at all */
    static const char podman[] =
        "{\"read\":\"2026-12-06T17:53:53.721564144Z\",\"preread\":\"0001-01-01T00:00:00Z\","
        "\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":31899901,\"percpu_usage\":[1,2]}},"
        "\"precpu_stats\":{\"cpu_usage\":{\"total_usage\":0}},"
        "\"memory_stats\":{\"usage\":503808,\"limit\":25324953600}}";
    struct runtime_stats s;

    ck_assert_int_eq(docker_stats_parse(v1, sizeof(v1) - 1, &s), 0);
    ck_assert(s.has_cpu && s.cpu_usage_ns == 31899901);
    ck_assert_int_eq(s.time_ms, 1796579633721LL);
    ck_assert(s.has_mem && s.mem_usage == 10000000 && s.mem_working_set == 6000000);
    ck_assert(s.has_rss && s.mem_rss == 3000000);
    ck_assert(s.has_faults && s.page_faults == 1234 && s.major_page_faults == 5);
    ck_assert(s.has_limit && s.mem_limit == 268435456);

    ck_assert_int_eq(docker_stats_parse(v2, sizeof(v2) - 1, &s), 0);
    ck_assert(s.mem_usage == 5000 && s.mem_working_set == 0); /* floor 0, as cadvisor */
    ck_assert(s.has_rss && s.mem_rss == 100 && s.has_faults && !s.has_limit);

    ck_assert_int_eq(docker_stats_parse(podman, sizeof(podman) - 1, &s), 0);
    ck_assert(s.mem_usage == 503808 && s.mem_working_set == 503808);
    ck_assert(!s.has_rss && !s.has_faults && s.has_limit);

    /* a real answer of dockerd 20.10 on cgroup v1 (one-shot, 0.12 s): a container that wrote
     * 64 MiB, all of it still inactive page cache, which the working set leaves out */
    {
        struct kedge_buf real = KEDGE_BUF_INIT;
        unit_read_file(KEDGE_UNIT_FIXTURES "/docker-20.10-stats-v1.json", &real);
        ck_assert_int_eq(docker_stats_parse(real.data, real.len, &s), 0);
        ck_assert(s.has_cpu && s.cpu_usage_ns == 39545380);
        ck_assert_int_eq(s.time_ms, 1796581243783LL);
        ck_assert(s.mem_usage == 69279744 && s.mem_working_set == 69279744 - 67108864);
        ck_assert(s.has_rss && s.mem_rss == 49152);
        ck_assert(s.has_faults && s.page_faults == 1400 && s.major_page_faults == 0);
        ck_assert(s.has_limit && s.mem_limit == 25324953600ULL); /* no limit: the host's */
        kedge_buf_cleanup(&real);
    }

    ck_assert_int_eq(docker_stats_parse("{", 1, &s), KEDGE_EPARSE);
    ck_assert_int_eq(docker_stats_parse("{\"message\":\"x\"}", 15, &s), KEDGE_ESCHEMA);
}
END_TEST

/* ---- cpu rate ---------------------------------------------------------------------------- */

START_TEST(cpu_rate)
{
    struct cpurate *r;
    uint64_t nc = 0;

    unit_count_allocs();
    r = cpurate_new();
    ck_assert_ptr_nonnull(r);
    ck_assert(!cpurate_sample(r, "a", 1000000000, 10000, &nc)); /* the first: no rate */
    ck_assert(!cpurate_sample(r, "a", 1000500000, 10400, &nc)); /* under the window */
    /* 0.5 s of cpu in 2 s of wall time: half a core */
    ck_assert(cpurate_sample(r, "a", 1500000000, 12000, &nc));
    ck_assert_uint_eq(nc, 250000000);
    nc = 0;
    ck_assert(cpurate_sample(r, "a", 1500000001, 12100, &nc)); /* the last window's rate */
    ck_assert_uint_eq(nc, 250000000);
    ck_assert(!cpurate_sample(r, "a", 10, 13000, &nc)); /* the counter went back: anew */
    cpurate_sweep(r);
    cpurate_sweep(r); /* not sampled since: forgotten */
    ck_assert(!cpurate_sample(r, "a", 20, 20000, &nc));
    cpurate_free(r);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

/* ---- through the session ----------------------------------------------------------------- */

struct tunnel {
    struct kedge_buf data[8]; /* DATA by connectID */
    int removes[8];           /* REMOVE_CONNECT by connectID */
    int frames[8];
};

static int t_send(void *ctx, uint64_t id, uint64_t type, const char *b, size_t n)
{
    struct tunnel *t = ctx;

    ck_assert_uint_lt(id, 8);
    t->frames[id]++;
    if (type == STREAM_REMOVE_CONNECT)
        t->removes[id]++;
    else if (type == STREAM_DATA)
        return kedge_buf_append(&t->data[id], b, n);
    return 0;
}

static size_t t_queued(void *ctx)
{
    (void)ctx;
    return 0;
}

static void t_wake(void *ctx)
{
    (void)ctx;
}

static int64_t fixed_now(void)
{
    return NOW_MS;
}

/* Two pods: web (app + sidecar) and db; a third container id the runtime does not run. */
static int list_pods(void *ctx, edged_pod_fn fn, void *fctx)
{
    static const struct edged_container_info web[] = {{"sidecar", "c2", 1733400100000LL},
                                                      {"app", "c1", 1733400050500LL}};
    static const struct edged_container_info db[] = {{"pg", "c3", 1733400200000LL},
                                                     {"gone", "c9", 1733400300000LL}};
    struct edged_pod_info p = {"prod", "web-1", "uid-web", 1733400000000LL, web, 2};

    (void)ctx;
    fn(fctx, &p);
    p = (struct edged_pod_info){"default", "db-0", "uid-db", 1733400190000LL, db, 2};
    fn(fctx, &p);
    return 0;
}

struct world {
    struct fake_runtime f;
    struct runtime rt;
    struct tunnel t;
    struct stream_session *s;
    struct kubelet_stats *k;
};

static void add_running(struct fake_runtime *f, const char *id)
{
    struct fake_container *c = &f->c[f->n++];

    snprintf(c->id, sizeof(c->id), "%s", id);
    c->exists = c->running = true;
    c->state = "running";
}

static void world_up(struct world *w)
{
    struct session_out out = {t_send, t_queued, t_wake, &w->t, 1 << 20};
    struct kubelet_stats_config cfg = {
        .pods = list_pods,
        .node_name = "edge-1",
        .node = {.proc = PROC_DIR, .fs_path = "/", .image_fs_path = "/", .clk_tck = 100},
        .now_ms = fixed_now,
    };

    memset(w, 0, sizeof(*w));
    fake_runtime_init(&w->f, &w->rt);
    add_running(&w->f, "c1");
    add_running(&w->f, "c2");
    add_running(&w->f, "c3");
    w->f.stats_sample = (struct runtime_stats){.cpu_usage_ns = 2000000000,
                                               .mem_usage = 52428800,
                                               .mem_working_set = 41943040,
                                               .mem_rss = 30000000,
                                               .mem_limit = 104857600,
                                               .page_faults = 100,
                                               .major_page_faults = 1,
                                               .has_cpu = true,
                                               .has_mem = true,
                                               .has_rss = true,
                                               .has_limit = true,
                                               .has_faults = true};
    w->f.stats_step_ns = 1000;
    cfg.rt = &w->rt;
    ck_assert_int_eq(stream_session_new(&out, &w->s), 0);
    ck_assert_int_eq(kubelet_stats_new(&cfg, &w->k), 0);
    ck_assert_int_eq(kubelet_stats_register(w->k, w->s), 0);
}

static void world_down(struct world *w)
{
    stream_session_free(w->s);
    w->rt.ops->free(w->rt.rt);
    kubelet_stats_free(w->k);
    for (size_t i = 0; i < 8; i++)
        kedge_buf_cleanup(&w->t.data[i]);
}

/* A METRIC_CONNECT as cloudcore v1.15.4 marshals it (captured from the real cloud). */
static void metric_connect(struct world *w, uint64_t id, const char *path, const char *query)
{
    char j[1024];
    struct stream_frame f = {id, STREAM_METRIC_CONNECT, j, 0};

    f.len = (size_t)snprintf(
        j, sizeof(j),
        "{\"MessID\":%" PRIu64 ",\"url\":{\"Scheme\":\"http\",\"Opaque\":\"\",\"User\":null,"
        "\"Host\":\"127.0.0.1:10350\",\"Path\":\"%s\",\"RawPath\":\"\",\"OmitHost\":false,"
        "\"ForceQuery\":false,\"RawQuery\":\"%s\",\"Fragment\":\"\",\"RawFragment\":\"\"},"
        "\"header\":{\"Accept-Encoding\":[\"gzip\"],\"User-Agent\":[\"Go-http-client/1.1\"],"
        "\"X-Forwarded-Uri\":[\"/api/v1/nodes/edge-1/proxy%s\"]}}",
        id, path, query, path);
    stream_session_input(w->s, &f);
}

static const struct kedge_jval *at(const struct kedge_jval *v, const char *path)
{
    char key[64];

    while (v && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        if (v->type == KEDGE_JARR) {
            long i = strtol(key, NULL, 10);
            for (v = v->child; v && i--; v = v->next)
                ;
        } else {
            v = kedge_json_get_exact(v, key, n);
        }
        path += n + (dot ? 1 : 0);
    }
    return v;
}

static uint64_t num(const struct kedge_jval *root, const char *path)
{
    const struct kedge_jval *v = at(root, path);

    ck_assert_msg(v && v->type == KEDGE_JNUM, "%s is not a number", path);
    return strtoull(v->str, NULL, 10);
}

static const char *str(const struct kedge_jval *root, const char *path)
{
    const struct kedge_jval *v = at(root, path);

    ck_assert_msg(v && v->type == KEDGE_JSTR, "%s is not a string", path);
    return v->str;
}

START_TEST(summary_json)
{
    struct world w;
    struct kedge_jdoc *doc;
    const struct kedge_jval *root, *b;
    const char *body;

    unit_count_allocs();
    world_up(&w);
    metric_connect(&w, 1, "/stats/summary", "");
    /* the body, then REMOVE_CONNECT; pretty-printed with one space, every line ended */
    ck_assert_int_eq(w.t.removes[1], 1);
    body = w.t.data[1].data;
    ck_assert_ptr_nonnull(body);
    ck_assert_msg(!strncmp(body, "{\n \"node\": {\n  \"nodeName\": \"edge-1\",\n", 37), "%s", body);
    ck_assert_int_eq(body[w.t.data[1].len - 1], '\n');
    ck_assert_int_eq(body[w.t.data[1].len - 2], '}');
    ck_assert_int_eq(kedge_json_parse(body, w.t.data[1].len, &doc), 0);
    root = kedge_jdoc_root(doc);
    /* the node from the fixture /proc (USER_HZ 100) */
    ck_assert_str_eq(str(root, "node.startTime"), "2024-12-05T12:00:00Z");
    ck_assert_str_eq(str(root, "node.cpu.time"), "2024-12-06T15:46:40Z");
    ck_assert_uint_eq(num(root, "node.cpu.usageCoreNanoSeconds"), 13300000000ULL);
    ck_assert_ptr_null(at(root, "node.cpu.usageNanoCores")); /* one sample only */
    ck_assert_uint_eq(num(root, "node.memory.usageBytes"), 3072000000ULL);
    ck_assert_uint_eq(num(root, "node.memory.workingSetBytes"), 2252800000ULL);
    ck_assert_uint_eq(num(root, "node.memory.availableBytes"), 5939200000ULL);
    ck_assert_uint_eq(num(root, "node.memory.rssBytes"), 921600000ULL);
    ck_assert_uint_eq(num(root, "node.memory.pageFaults"), 5555555);
    ck_assert_uint_eq(num(root, "node.memory.majorPageFaults"), 4444);
    /* eth0 inline, lo and veth* left out as cadvisor does */
    ck_assert_str_eq(str(root, "node.network.name"), "eth0");
    ck_assert_uint_eq(num(root, "node.network.rxBytes"), 1000);
    ck_assert_uint_eq(num(root, "node.network.txErrors"), 2);
    ck_assert_uint_eq(at(root, "node.network.interfaces")->n, 2);
    ck_assert_str_eq(str(root, "node.network.interfaces.1.name"), "wlan0");
    ck_assert_uint_gt(num(root, "node.fs.capacityBytes"), 0);
    ck_assert_ptr_nonnull(at(root, "node.fs.usedBytes"));
    ck_assert_uint_gt(num(root, "node.runtime.imageFs.capacityBytes"), 0);
    ck_assert_ptr_null(at(root, "node.runtime.imageFs.usedBytes"));
    ck_assert_uint_eq(num(root, "node.rlimit.maxpid"), 4194304);
    ck_assert_uint_eq(num(root, "node.rlimit.curproc"), 345);
    ck_assert_ptr_null(at(root, "node.systemContainers"));
    /* the pods in Edged's order, containers with the runtime's samples */
    ck_assert_uint_eq(at(root, "pods")->n, 2);
    ck_assert_str_eq(str(root, "pods.0.podRef.name"), "web-1");
    ck_assert_str_eq(str(root, "pods.0.podRef.namespace"), "prod");
    ck_assert_str_eq(str(root, "pods.0.podRef.uid"), "uid-web");
    ck_assert_str_eq(str(root, "pods.0.startTime"), "2024-12-05T12:00:00Z");
    ck_assert_str_eq(str(root, "pods.0.containers.1.name"), "app");
    ck_assert_str_eq(str(root, "pods.0.containers.1.startTime"), "2024-12-05T12:00:50Z");
    b = at(root, "pods.0.containers.0");
    ck_assert_uint_ge(num(b, "cpu.usageCoreNanoSeconds"), 2000001000ULL);
    ck_assert_uint_eq(num(b, "memory.usageBytes"), 52428800);
    ck_assert_uint_eq(num(b, "memory.workingSetBytes"), 41943040);
    ck_assert_uint_eq(num(b, "memory.availableBytes"), 104857600 - 41943040);
    ck_assert_uint_eq(num(b, "memory.rssBytes"), 30000000);
    /* the pod: the sum of its containers */
    ck_assert_uint_eq(num(root, "pods.0.memory.workingSetBytes"), 2 * 41943040ULL);
    ck_assert_uint_eq(num(root, "pods.0.cpu.usageCoreNanoSeconds"),
                      num(root, "pods.0.containers.0.cpu.usageCoreNanoSeconds") +
                          num(root, "pods.0.containers.1.cpu.usageCoreNanoSeconds"));
    ck_assert_ptr_null(at(root, "pods.0.memory.availableBytes"));
    /* c9 does not run: listed without cpu and memory, and so is its pod's total */
    ck_assert_str_eq(str(root, "pods.1.containers.1.name"), "gone");
    ck_assert_ptr_null(at(root, "pods.1.containers.1.cpu"));
    ck_assert_ptr_null(at(root, "pods.1.cpu"));
    ck_assert_uint_eq(fake_count(&w.f, 0, FAKE_STATS, NULL), 4);
    kedge_jdoc_free(doc);
    stream_session_reap(w.s);
    world_down(&w);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

START_TEST(summary_cpu_and_memory)
{
    struct world w;
    struct kedge_jdoc *doc;
    const struct kedge_jval *root;

    world_up(&w);
    metric_connect(&w, 2, "/stats/summary", "only_cpu_and_memory=true");
    metric_connect(&w, 3, "/stats/summary", "only_cpu_and_memory=true&only_cpu_and_memory=true");
    ck_assert_int_eq(kedge_json_parse(w.t.data[2].data, w.t.data[2].len, &doc), 0);
    root = kedge_jdoc_root(doc);
    ck_assert_ptr_nonnull(at(root, "node.cpu"));
    ck_assert_ptr_nonnull(at(root, "node.memory"));
    ck_assert_ptr_null(at(root, "node.network"));
    ck_assert_ptr_null(at(root, "node.fs"));
    ck_assert_ptr_null(at(root, "node.rlimit"));
    ck_assert_uint_eq(at(root, "pods")->n, 2);
    kedge_jdoc_free(doc);
    /* kubelet wants exactly one value "true": twice is the full summary */
    ck_assert_ptr_nonnull(strstr(w.t.data[3].data, "\"rlimit\""));
    stream_session_reap(w.s);
    world_down(&w);
}
END_TEST

/* One sample line of a Prometheus text: name, labels, value, timestamp. */
struct prom_line {
    char name[256], labels[256];
    double value;
    long long ts;
    int fields;
};

static bool find_sample(const char *body, const char *name, const char *labels,
                        struct prom_line *out)
{
    const char *l;

    for (l = body; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        char line[256], *sp, *brace;
        size_t n = strcspn(l, "\n");
        if (*l == '#' || n >= sizeof(line))
            continue;
        memcpy(line, l, n);
        line[n] = '\0';
        sp = strchr(line, ' ');
        ck_assert_ptr_nonnull(sp);
        *sp = '\0';
        brace = strchr(line, '{');
        memset(out, 0, sizeof(*out));
        if (brace) {
            snprintf(out->labels, sizeof(out->labels), "%s", brace);
            *brace = '\0';
        }
        snprintf(out->name, sizeof(out->name), "%s", line);
        out->fields = sscanf(sp + 1, "%lf %lld", &out->value, &out->ts);
        if (!strcmp(out->name, name) && !strcmp(out->labels, labels))
            return true;
    }
    return false;
}

START_TEST(resource_metrics)
{
    struct world w;
    struct prom_line p;
    const char *body;
    const char *order[] = {
        "container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
        "container_start_time_seconds",      "node_cpu_usage_seconds_total",
        "node_memory_working_set_bytes",     "pod_cpu_usage_seconds_total",
        "pod_memory_working_set_bytes",      "scrape_error"};
    const char *last = NULL;

    unit_count_allocs();
    world_up(&w);
    metric_connect(&w, 4, "/metrics/resource", "");
    ck_assert_int_eq(w.t.removes[4], 1);
    body = w.t.data[4].data;
    /* families by name, each with its HELP ([ALPHA], component-base) and TYPE */
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        char help[128];
        const char *at_help;
        snprintf(help, sizeof(help), "# HELP %s [ALPHA] ", order[i]);
        at_help = strstr(body, help);
        ck_assert_msg(at_help != NULL, "no %s", help);
        ck_assert_msg(!last || at_help > last, "%s out of order", order[i]);
        last = at_help;
    }
    ck_assert_ptr_nonnull(strstr(body, "# TYPE node_cpu_usage_seconds_total counter\n"));
    ck_assert_ptr_nonnull(strstr(body, "# TYPE pod_memory_working_set_bytes gauge\n"));
    ck_assert_ptr_nonnull(strstr(body, "# HELP node_memory_working_set_bytes [ALPHA] Current "
                                       "working set of the node in bytes\n"));
    /* node: 1330 ticks at USER_HZ 100, with the sample's time */
    ck_assert(find_sample(body, "node_cpu_usage_seconds_total", "", &p));
    ck_assert(p.fields == 2 && p.value == 13.3 && p.ts == NOW_MS);
    ck_assert_ptr_nonnull(strstr(body, "\nnode_memory_working_set_bytes 2.2528e+09 "
                                       "1733500000123\n"));
    /* containers: labels in name order, samples by label values (app before sidecar) */
    ck_assert(find_sample(body, "container_memory_working_set_bytes",
                          "{container=\"app\",namespace=\"prod\",pod=\"web-1\"}", &p));
    ck_assert(p.fields == 2 && p.value == 41943040);
    ck_assert(strstr(body, "container=\"app\",namespace=\"prod\"") <
              strstr(body, "container=\"sidecar\",namespace=\"prod\""));
    ck_assert(find_sample(body, "container_cpu_usage_seconds_total",
                          "{container=\"pg\",namespace=\"default\",pod=\"db-0\"}", &p));
    ck_assert(p.fields == 2 && p.value > 2.0 && p.value < 2.1);
    ck_assert(find_sample(body, "container_start_time_seconds",
                          "{container=\"app\",namespace=\"prod\",pod=\"web-1\"}", &p));
    ck_assert(p.fields == 2 && p.ts == 1733400050500LL);
    ck_assert_ptr_nonnull(strstr(body, "container_start_time_seconds{container=\"app\","
                                       "namespace=\"prod\",pod=\"web-1\"} 1.7334000505e+09 "
                                       "1733400050500\n"));
    /* c9 runs no more: a start time, no usage */
    ck_assert(find_sample(body, "container_start_time_seconds",
                          "{container=\"gone\",namespace=\"default\",pod=\"db-0\"}", &p));
    ck_assert(!find_sample(body, "container_cpu_usage_seconds_total",
                           "{container=\"gone\",namespace=\"default\",pod=\"db-0\"}", &p));
    ck_assert(find_sample(body, "pod_memory_working_set_bytes",
                          "{namespace=\"prod\",pod=\"web-1\"}", &p));
    ck_assert(p.value == 2 * 41943040.0);
    ck_assert(!find_sample(body, "pod_cpu_usage_seconds_total",
                           "{namespace=\"default\",pod=\"db-0\"}", &p));
    ck_assert(find_sample(body, "scrape_error", "", &p));
    ck_assert(p.fields == 1 && p.value == 0);
    ck_assert_int_eq(body[w.t.data[4].len - 1], '\n');
    stream_session_reap(w.s);
    world_down(&w);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

START_TEST(other_paths)
{
    struct world w;

    world_up(&w);
    /* kubelet's own, cadvisor's and the prober's registries: none here, an empty body */
    metric_connect(&w, 1, "/metrics", "");
    metric_connect(&w, 2, "/metrics/cadvisor", "");
    metric_connect(&w, 3, "/metrics/probes", "");
    /* the stats web service has only /summary: go-restful's 404 text */
    metric_connect(&w, 4, "/stats/container", "");
    metric_connect(&w, 5, "/stats", "");
    metric_connect(&w, 6, "/stats/prod/web-1/uid-web/app", "");
    for (int i = 1; i <= 3; i++) {
        ck_assert_uint_eq(w.t.data[i].len, 0);
        ck_assert_int_eq(w.t.frames[i], 1);
        ck_assert_int_eq(w.t.removes[i], 1);
    }
    for (int i = 4; i <= 6; i++) {
        ASSERT_BUF(&w.t.data[i], "404: Page Not Found\n");
        ck_assert_int_eq(w.t.removes[i], 1);
    }
    ck_assert_uint_eq(fake_count(&w.f, 0, FAKE_STATS, NULL), 0);
    stream_session_reap(w.s);
    world_down(&w);
}
END_TEST

START_TEST(removed_while_gathering)
{
    struct world w;

    unit_count_allocs();
    world_up(&w);
    w.f.stats_hold = true;
    metric_connect(&w, 1, "/stats/summary", "");
    metric_connect(&w, 2, "/metrics/resource", "");
    ck_assert_uint_eq(w.f.n_stats_held, 8);
    ck_assert_int_eq(w.t.frames[1], 0);
    /* the API server's client went away: the cloud ends 1; its state outlives the session's
     * free until the runtime's answers are in, and nothing is sent for it */
    {
        struct stream_frame f = {1, STREAM_REMOVE_CONNECT, "", 0};
        stream_session_input(w.s, &f);
    }
    stream_session_reap(w.s);
    fake_stats_release(&w.f, 0);
    ck_assert_int_eq(w.t.frames[1], 0);
    ck_assert_int_eq(w.t.removes[2], 1);
    ck_assert_ptr_nonnull(strstr(w.t.data[2].data, "scrape_error 0\n"));
    /* and a tunnel that drops with calls out: the late answers (cancelled) free the rest */
    metric_connect(&w, 3, "/stats/summary", "");
    stream_session_reset(w.s);
    stream_session_reap(w.s);
    stream_session_free(w.s);
    w.s = NULL;
    w.rt.ops->free(w.rt.rt); /* answers the held calls: -ECANCELED */
    ck_assert_int_eq(w.t.frames[3], 0);
    kubelet_stats_free(w.k);
    for (size_t i = 0; i < 8; i++)
        kedge_buf_cleanup(&w.t.data[i]);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

START_TEST(node_rate)
{
    struct world w;
    struct kedge_jdoc *doc;

    world_up(&w);
    metric_connect(&w, 1, "/stats/summary", "");
    ck_assert_int_eq(kedge_json_parse(w.t.data[1].data, w.t.data[1].len, &doc), 0);
    ck_assert_ptr_null(at(kedge_jdoc_root(doc), "node.cpu.usageNanoCores"));
    kedge_jdoc_free(doc);
    stream_session_reap(w.s);
    world_down(&w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kubelet_stats");
    TCase *tc = tcase_create("parts");
    TCase *th = tcase_create("handler");

    tcase_add_test(tc, go_float);
    tcase_add_test(tc, summary_exact_text);
    tcase_add_test(tc, docker_stats_bodies);
    tcase_add_test(tc, cpu_rate);
    tcase_add_test(th, summary_json);
    tcase_add_test(th, summary_cpu_and_memory);
    tcase_add_test(th, resource_metrics);
    tcase_add_test(th, other_paths);
    tcase_add_test(th, removed_while_gathering);
    tcase_add_test(th, node_rate);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, th);
    return unit_run(s);
}
