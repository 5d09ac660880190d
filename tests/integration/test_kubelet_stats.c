/* Metrics from a real engine: the runtime's stats op (runtime_docker_stats.c) against podman's
 * Docker API (enginectl), and kubelet's /stats/summary and /metrics/resource made from it by
 * EdgeStream's METRIC_CONNECT handler (stream/kubelet_stats.c) on this host's /proc, through
 * the connectID table. A busy container's cpu grows between two samples and an idle one's
 * barely moves; memory is what the engine says; an unknown id is -ENOENT.
 * Skipped (with a line saying why) when KEDGE_TEST_ENGINE=none or there is no podman.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "kedge/json.h"
#include "kedge/util.h"
#include "kubelet_stats.h"
#include "runtime_fixture.h"
#include "session.h"

static void setup(void)
{
    rtfx_setup_node("node-metrics");
}

struct got {
    bool done;
    int err;
    struct runtime_stats s;
    char message[256];
};

static void on_stats(void *ctx, int err, const struct runtime_stats *s, const char *message)
{
    struct got *g = ctx;

    ck_assert(!g->done);
    g->done = true;
    g->err = err;
    if (s)
        g->s = *s;
    snprintf(g->message, sizeof(g->message), "%s", message);
}

static struct runtime_stats sample(const char *id)
{
    struct got g = {0};

    ck_assert_int_eq(rt.ops->stats(rt.rt, id, on_stats, &g), 0);
    ck_assert_msg(spin_until(&g.done, 10000), "no stats answer for %s", id);
    ck_assert_msg(g.err == 0, "stats of %s: %d %s", id, g.err, g.message);
    return g.s;
}

START_TEST(stats_busy_and_idle)
{
    char busy[80], idle[80];
    struct runtime_stats a, b, i1, i2;
    int64_t now = kedge_wall_ms();
    uint64_t end;
    struct got g = {0};

    run_container("busy", "while :; do :; done", busy, sizeof(busy));
    run_container("idle", "sleep 1000", idle, sizeof(idle));
    a = sample(busy);
    i1 = sample(idle);
    ck_assert(a.has_cpu && a.has_mem);
    ck_assert_msg(a.time_ms > now - 60000 && a.time_ms < now + 60000, "read %" PRId64, a.time_ms);
    ck_assert_uint_gt(a.mem_usage, 0);
    ck_assert_uint_le(a.mem_working_set, a.mem_usage);
    ck_assert(a.has_limit && a.mem_limit > a.mem_usage);
    /* the busy loop burns cpu: sample again until it grew by 100 ms of cpu time */
    end = kedge_now_ms() + (uint64_t)enginectl_scale_ms(20000);
    do {
        b = sample(busy);
    } while (b.cpu_usage_ns < a.cpu_usage_ns + 100000000u && kedge_now_ms() < end);
    ck_assert_msg(b.cpu_usage_ns >= a.cpu_usage_ns + 100000000u, "cpu %" PRIu64 " -> %" PRIu64,
                  a.cpu_usage_ns, b.cpu_usage_ns);
    ck_assert_int_ge(b.time_ms, a.time_ms);
    /* the sleeping one used less than the busy one did in the same time */
    i2 = sample(idle);
    ck_assert_uint_lt(i2.cpu_usage_ns - i1.cpu_usage_ns, b.cpu_usage_ns - a.cpu_usage_ns);
    /* no such container */
    ck_assert_int_eq(rt.ops->stats(rt.rt, "0123456789abcdef", on_stats, &g), 0);
    ck_assert(spin_until(&g.done, 10000));
    ck_assert_int_eq(g.err, -ENOENT);
}
END_TEST

/* ---- through the handler ----------------------------------------------------------------- */

struct tunnel {
    struct kedge_buf body[4];
    bool removed[4];
};

static int t_send(void *ctx, uint64_t id, uint64_t type, const char *b, size_t n)
{
    struct tunnel *t = ctx;

    ck_assert_uint_lt(id, 4);
    if (type == STREAM_REMOVE_CONNECT)
        t->removed[id] = true;
    else if (type == STREAM_DATA)
        ck_assert_int_eq(kedge_buf_append(&t->body[id], b, n), 0);
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

static char busy_id[80];

static int list_pods(void *ctx, edged_pod_fn fn, void *fctx)
{
    struct edged_container_info c = {"burn", busy_id, kedge_wall_ms() - 1000};
    struct edged_pod_info p = {"default", "busy-pod", "uid-busy", kedge_wall_ms() - 2000, &c, 1};

    (void)ctx;
    fn(fctx, &p);
    return 0;
}

static void connect_path(struct stream_session *s, uint64_t id, const char *path)
{
    char j[256];
    struct stream_frame f = {id, STREAM_METRIC_CONNECT, j, 0};

    f.len = (size_t)snprintf(j, sizeof(j),
                             "{\"MessID\":%" PRIu64 ",\"url\":{\"Scheme\":\"http\",\"Host\":"
                             "\"127.0.0.1:10350\",\"Path\":\"%s\",\"RawQuery\":\"\"},"
                             "\"header\":{\"Accept-Encoding\":[\"gzip\"]}}",
                             id, path);
    stream_session_input(s, &f);
}

START_TEST(summary_and_resource_from_the_engine)
{
    struct tunnel t = {0};
    struct session_out out = {t_send, t_queued, t_wake, &t, 1 << 20};
    struct kubelet_stats_config cfg = {
        .rt = &rt,
        .pods = list_pods,
        .node_name = "node-metrics",
        .node = {.proc = "/proc",
                 .fs_path = "/",
                 .image_fs_path = "/",
                 .clk_tck = sysconf(_SC_CLK_TCK)},
    };
    struct stream_session *s;
    struct kubelet_stats *k;
    struct kedge_jdoc *doc;
    const struct kedge_jval *c, *v;
    const char *line;
    double cpu_s = 0;

    run_container("burn", "while :; do :; done", busy_id, sizeof(busy_id));
    ck_assert_int_eq(stream_session_new(&out, &s), 0);
    ck_assert_int_eq(kubelet_stats_new(&cfg, &k), 0);
    ck_assert_int_eq(kubelet_stats_register(k, s), 0);
    connect_path(s, 1, "/stats/summary");
    connect_path(s, 2, "/metrics/resource");
    ck_assert(spin_until(&t.removed[1], 10000));
    ck_assert(spin_until(&t.removed[2], 10000));

    ck_assert_int_eq(kedge_json_parse(t.body[1].data, t.body[1].len, &doc), 0);
    v = kedge_json_get(kedge_json_get(kedge_json_get(kedge_jdoc_root(doc), "node"), "memory"),
                       "workingSetBytes");
    ck_assert(v && v->type == KEDGE_JNUM && strtoull(v->str, NULL, 10) > 0);
    c = kedge_json_get(kedge_jdoc_root(doc), "pods")->child;
    ck_assert_str_eq(kedge_json_get(kedge_json_get(c, "podRef"), "name")->str, "busy-pod");
    c = kedge_json_get(c, "containers")->child;
    ck_assert_str_eq(kedge_json_get(c, "name")->str, "burn");
    v = kedge_json_get(kedge_json_get(c, "cpu"), "usageCoreNanoSeconds");
    ck_assert(v && v->type == KEDGE_JNUM && strtoull(v->str, NULL, 10) > 0);
    v = kedge_json_get(kedge_json_get(c, "memory"), "workingSetBytes");
    ck_assert(v && v->type == KEDGE_JNUM && strtoull(v->str, NULL, 10) > 0);
    kedge_jdoc_free(doc);

    line = strstr(t.body[2].data,
                  "\ncontainer_cpu_usage_seconds_total{container=\"burn\",namespace=\"default\","
                  "pod=\"busy-pod\"} ");
    ck_assert_msg(line != NULL, "%s", t.body[2].data);
    ck_assert_int_eq(sscanf(strchr(line, '}') + 2, "%lf", &cpu_s), 1);
    ck_assert(cpu_s > 0);
    ck_assert_ptr_nonnull(strstr(t.body[2].data, "\nnode_memory_working_set_bytes "));
    ck_assert_ptr_nonnull(strstr(t.body[2].data, "\nscrape_error 0\n"));

    stream_session_reap(s);
    stream_session_free(s);
    kubelet_stats_free(k);
    kedge_buf_cleanup(&t.body[1]);
    kedge_buf_cleanup(&t.body[2]);
}
END_TEST

static Suite *kubelet_stats_suite(void)
{
    Suite *s = suite_create("kubelet_stats");
    TCase *tc;
    const char *why =
        !enginectl_wanted() ? "KEDGE_TEST_ENGINE=none" : enginectl_unavailable_reason();

    if (why) {
        (void)printf("test_kubelet_stats: skipped: %s\n", why);
        return s;
    }
    tc = tcase_create("engine");
    tcase_add_checked_fixture(tc, setup, rtfx_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, stats_busy_and_idle);
    tcase_add_test(tc, summary_and_resource_from_the_engine);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kh_run_suite(kubelet_stats_suite(), CK_NORMAL);
}
