/* test_stream_metrics: the node's metrics through the CloudStream tunnel, end to end with real
 * processes: kedge-cloudsim (its CloudStream model), the broker with the plugin, kedge-bridge
 * with Edged on a private podman engine (test_pods_fixture.c's chain) and EdgeStream. The test
 * is the API server (and metrics-server): it calls cloudsim's stream port as kube-apiserver
 * calls cloudcore's, GET /stats/summary and /metrics/resource, as `kubectl get --raw
 * /api/v1/nodes/<node>/proxy/stats/summary` and `kubectl top` make it.
 *
 * Needs EdgeStream's wiring of the METRIC_CONNECT handler (stream.c registers kubelet_stats
 * with Edged's pod list: /work/wt/r17-metrics-wiring.patch until the lead merges it).
 */
#include "test_pods.h"

/* One whole answer of cloudsim's stream port (cloudcore writes 200 first: the edge's body). */
static char *get(const char *path)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    int status = 0, rc;
    char *body;

    rc = kt_http_fd(kt_connect_tcp(simctl_stream_port(sim)), "127.0.0.1", "GET", path, NULL,
                    kh_scale_ms(WAIT_MS), &status, &b);
    ck_assert_msg(rc == 0, "GET %s: %s", path, strerror(-rc));
    ck_assert_int_eq(status, 200);
    body = strndup(b.data ? b.data : "", b.len);
    ck_assert_ptr_nonnull(body);
    kedge_buf_cleanup(&b);
    return body;
}

static bool tunnel_up(void)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    int status = 0;
    bool up = kt_http_fd(kt_connect_tcp(bridgectl_metrics_port(bridge)), "127.0.0.1", "GET",
                         "/metrics", NULL, 5000, &status, &b) == 0 &&
              status == 200 && strstr(b.data, "\nkedge_bridge_stream_tunnel_up 1\n");

    kedge_buf_cleanup(&b);
    return up;
}

static void send_burner(void)
{
    sim_send(ROUTE("insert", "default/pod/burner") "{\"metadata\":{\"name\":\"burner\","
                                                   "\"namespace\":\"default\",\"uid\":"
                                                   "\"uid-burner\"},\"spec\":{\"nodeName\":"
                                                   "\"" NODE "\",\"restartPolicy\":\"Always\","
                                                   "\"terminationGracePeriodSeconds\":0,"
                                                   "\"containers\":[{\"name\":\"c\",\"image\":"
                                                   "\"localhost/busybox:edge\",\"command\":"
                                                   "[\"sh\",\"-c\",\"while :; do :; done\"]}]}}}");
}

static const struct kedge_jval *get_in(const struct kedge_jval *v, const char *a, const char *b)
{
    return kedge_json_get(kedge_json_get(v, a), b);
}

static uint64_t u64(const struct kedge_jval *v, const char *what)
{
    ck_assert_msg(v && v->type == KEDGE_JNUM, "%s is not a number", what);
    return strtoull(v->str, NULL, 10);
}

/* The burner's container in a summary that lists it with its cpu; NULL when not yet. */
static const struct kedge_jval *burner_in(const struct kedge_jval *root)
{
    const struct kedge_jval *p, *pods = kedge_json_get(root, "pods");

    for (p = pods ? pods->child : NULL; p; p = p->next)
        if (str_is(get_in(p, "podRef", "name"), "burner")) {
            const struct kedge_jval *cs = kedge_json_get(p, "containers");
            const struct kedge_jval *c = cs ? cs->child : NULL;
            return c && kedge_json_get(c, "cpu") ? c : NULL;
        }
    return NULL;
}

/* container_cpu_usage_seconds_total of the burner in a /metrics/resource body, -1 absent. */
static double burner_cpu(const char *body)
{
    static const char key[] = "\ncontainer_cpu_usage_seconds_total{container=\"c\","
                              "namespace=\"default\",pod=\"burner\"} ";
    const char *at = strstr(body, key);

    return at ? strtod(at + sizeof(key) - 1, NULL) : -1;
}

START_TEST(summary_and_resource_metrics)
{
    int64_t deadline;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *c = NULL, *root;
    char *body;
    double cpu1, cpu2;

    if (skip_without_engine())
        return;
    chain_up(NULL);
    deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    while (!tunnel_up()) {
        ck_assert_msg(kt_now_ms() < deadline, "the tunnel to cloudsim did not come up");
        kt_pause_ms(PAUSE_MS);
    }
    send_burner();
    wait_pod("burner", running_ready, NULL, "Running");

    /* /stats/summary: the node and, once Edged's relist saw it run, the pod with its samples */
    deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    for (;;) {
        body = get("/stats/summary");
        ck_assert_msg(kedge_json_parse(body, strlen(body), &doc) == 0, "not JSON: %s", body);
        if ((c = burner_in(kedge_jdoc_root(doc))) != NULL)
            break;
        ck_assert_msg(kt_now_ms() < deadline, "no burner with cpu in: %s", body);
        kedge_jdoc_free(doc);
        free(body);
        kt_pause_ms(PAUSE_MS);
    }
    root = kedge_jdoc_root(doc);
    ck_assert_msg(!strncmp(body, "{\n \"node\": {\n  \"nodeName\": \"" NODE "\",\n", 30), "%s",
                  body);
    ck_assert_str_eq(kedge_json_get(kedge_json_get(root, "node"), "nodeName")->str, NODE);
    ck_assert_uint_gt(u64(get_in(kedge_json_get(root, "node"), "memory", "workingSetBytes"),
                          "node.memory.workingSetBytes"),
                      0);
    ck_assert_uint_gt(u64(get_in(kedge_json_get(root, "node"), "cpu", "usageCoreNanoSeconds"),
                          "node.cpu.usageCoreNanoSeconds"),
                      0);
    ck_assert_ptr_nonnull(get_in(root, "node", "rlimit"));
    ck_assert(str_is(kedge_json_get(c, "name"), "c"));
    ck_assert_uint_gt(u64(get_in(c, "cpu", "usageCoreNanoSeconds"), "cpu"), 0);
    ck_assert_uint_gt(u64(get_in(c, "memory", "workingSetBytes"), "workingSetBytes"), 0);
    kedge_jdoc_free(doc);
    free(body);

    /* only_cpu_and_memory: kubelet's smaller summary */
    body = get("/stats/summary?only_cpu_and_memory=true");
    ck_assert_int_eq(kedge_json_parse(body, strlen(body), &doc), 0);
    ck_assert_ptr_nonnull(get_in(kedge_jdoc_root(doc), "node", "cpu"));
    ck_assert_ptr_null(get_in(kedge_jdoc_root(doc), "node", "network"));
    kedge_jdoc_free(doc);
    free(body);

    /* /metrics/resource, twice: the busy loop's counter grows */
    body = get("/metrics/resource");
    cpu1 = burner_cpu(body);
    ck_assert_msg(cpu1 > 0, "%s", body);
    ck_assert_ptr_nonnull(strstr(body, "# TYPE node_cpu_usage_seconds_total counter\n"));
    ck_assert_ptr_nonnull(strstr(body, "\nscrape_error 0\n"));
    free(body);
    deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    do {
        kt_pause_ms(PAUSE_MS);
        body = get("/metrics/resource");
        cpu2 = burner_cpu(body);
        free(body);
    } while (cpu2 <= cpu1 && kt_now_ms() < deadline);
    ck_assert_msg(cpu2 > cpu1, "cpu %g -> %g", cpu1, cpu2);

    /* the other paths: kubelet's answers as the body */
    body = get("/metrics/cadvisor");
    ck_assert_str_eq(body, "");
    free(body);
    body = get("/stats/container");
    ck_assert_str_eq(body, "404: Page Not Found\n");
    free(body);
    teardown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stream_metrics");
    TCase *tc = tcase_create("metrics");

    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, summary_and_resource_metrics);
    suite_add_tcase(s, tc);
    return kh_run_suite(s, CK_NORMAL);
}
