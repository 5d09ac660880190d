/* test_pods_lifecycle.c: restart policies, init containers and liveness, and a graceful delete that
 * is final (test_pods.c says how the suite runs). */
#define _GNU_SOURCE

#include "test_pods.h"

/* ---- 3. lifecycle ------------------------------------------------------------------------- */

bool phase_is(const struct kedge_jval *pod, const void *arg)
{
    return str_is(jpath(pod, "status", "phase", NULL), arg);
}

static void send_policy_pod(const char *name, const char *policy, const char *script)
{
    sim_send(
        ROUTE(
            "insert",
            "default/pod/%s") "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"uid\":"
                              "\"uid-%s\"},"
                              "\"spec\":{\"nodeName\":\"" NODE "\",\"restartPolicy\":\"%s\","
                              "\"terminationGracePeriodSeconds\":0,\"containers\":[{\"name\":\"c\","
                              "\"image\":\"localhost/"
                              "busybox:edge\",\"command\":[\"sh\",\"-c\",\"%s\"]}]}}}",
        name, name, name, policy, script);
}

START_TEST(restart_policies_init_containers_and_liveness)
{
    int one = 1;

    if (skip_without_engine())
        return;
    chain_up(NULL);
    send_policy_pod("once", "Never", "exit 3");
    send_policy_pod("done", "OnFailure", "true");
    sim_send(ROUTE(
        "insert",
        "default/pod/live") "{\"metadata\":{\"name\":\"live\",\"namespace\":\"default\",\"uid\":"
                            "\"uid-live\"},"
                            "\"spec\":{\"nodeName\":\"" NODE
                            "\",\"terminationGracePeriodSeconds\":0,"
                            "\"volumes\":[{\"name\":\"work\",\"emptyDir\":{}}],"
                            "\"initContainers\":[{\"name\":\"prepare\",\"image\":\"localhost/"
                            "busybox:edge\","
                            "\"command\":[\"sh\",\"-c\",\"echo ok > /work/ready\"],"
                            "\"volumeMounts\":[{\"name\":\"work\",\"mountPath\":\"/work\"}]}],"
                            "\"containers\":[{\"name\":\"app\",\"image\":\"localhost/"
                            "busybox:edge\","
                            "\"command\":[\"sh\",\"-c\",\"cat /work/ready && touch /tmp/healthy && "
                            "sleep 3 && "
                            "rm /tmp/healthy && sleep 600\"],"
                            "\"livenessProbe\":{\"exec\":{\"command\":[\"cat\",\"/tmp/healthy\"]},"
                            "\"periodSeconds\":1,\"failureThreshold\":1},"
                            "\"volumeMounts\":[{\"name\":\"work\",\"mountPath\":\"/work\"}]}]}}}");
    wait_pod("once", phase_is, "Failed", "phase Failed");
    {
        struct kedge_jdoc *doc = sim_pod("once");
        const struct kedge_jval *cs = first_cs(kedge_jdoc_root(doc));
        ck_assert_int_eq(num(jpath(cs, "state", "terminated", "exitCode")), 3);
        ck_assert(str_is(jpath(cs, "state", "terminated", "reason"), "Error"));
        ck_assert_int_eq(num(kedge_json_get(cs, "restartCount")), 0);
        kedge_jdoc_free(doc);
    }
    wait_pod("done", phase_is, "Succeeded", "phase Succeeded");
    wait_pod("live", restarted, &one, "a restart after the liveness probe failed");
    {
        struct kedge_jdoc *doc = sim_pod("live");
        const struct kedge_jval *l =
            jpath(kedge_jdoc_root(doc), "status", "initContainerStatuses", NULL);
        ck_assert_msg(l && l->child, "no initContainerStatuses");
        ck_assert(str_is(jpath(l->child, "state", "terminated", "reason"), "Completed"));
        kedge_jdoc_free(doc);
    }
    ck_assert(bridgectl_running(bridge));
    teardown();
}
END_TEST

/* ---- 4. a graceful delete is final ---------------------------------------------------------- */

void send_simple_pod(const char *name, const char *image, const char *extra_container,
                     const char *volumes)
{
    sim_send(ROUTE("insert", "default/pod/%s") "{\"metadata\":{\"name\":\"%s\",\"namespace\":"
                                               "\"default\",\"uid\":\"uid-%s\"},"
                                               "\"spec\":{\"nodeName\":\"" NODE
                                               "\",\"terminationGracePeriodSeconds\":0,"
                                               "\"containers\":[{\"name\":\"c\",\"image\":\"%s\","
                                               "\"command\":[\"sleep\",\"600\"]%s}]"
                                               "%s}}}",
             name, name, name, image, extra_container, volumes);
}

/* What the edge sent (GET /received): how many `op` of `resource` with an index above
 * `after`; *first: the index of the first of them (-1 none). */
static int edge_sent(const char *op, const char *resource, long long after, long long *first)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *e;
    int status = 0, n = 0;
    int64_t idx;

    ck_assert_int_eq(
        simctl_http_json(sim, "GET", "/received?skip_keepalive=1", NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    if (first)
        *first = -1;
    for (e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; e; e = e->next) {
        const struct kedge_jval *route = kedge_json_get(kedge_json_get(e, "json"), "route");
        ck_assert_int_eq(kedge_json_int64(kedge_json_get(e, "index"), &idx), 0);
        if (idx <= after || !str_is(kedge_json_get(route, "operation"), op) ||
            !str_is(kedge_json_get(route, "resource"), resource))
            continue;
        if (first && *first < 0)
            *first = idx;
        n++;
    }
    kedge_jdoc_free(doc);
    return n;
}

static bool sim_settled(void)
{
    struct kedge_jdoc *doc = NULL;
    int status = 0;
    int64_t pending = -1;

    if (simctl_http_json(sim, "GET", "/state?node=" NODE, NULL, &status, &doc) == 0 &&
        status == 200)
        (void)kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), "pending_acks"), &pending);
    kedge_jdoc_free(doc);
    return pending == 0;
}

/* The index of the last message the edge sent, -1 none. */
static long long last_sent(void)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *e;
    int64_t idx = -1;
    int status = 0;

    ck_assert_int_eq(simctl_http_json(sim, "GET", "/received", NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    for (e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; e; e = e->next)
        ck_assert_int_eq(kedge_json_int64(kedge_json_get(e, "index"), &idx), 0);
    kedge_jdoc_free(doc);
    return idx;
}

/* Deleted in the cloud as the API server does it (graceful: an update with deletionTimestamp):
 * the containers stop, the final status goes up, then the edge's delete (grace 0, uid). The
 * cloud then sends what its watch saw, as cloudcore does: the pod MODIFIED (an update, still
 * with the deletionTimestamp) after the edge finished it, "OK", then the delete. The late
 * update must not bring the pod back: no second start, no status patch after the delete (the
 * API server: pods "gone" not found), one delete. A pod deleted at once (kubectl delete --force:
 * the cloud's delete) gets no status at all after it: the API server has no such pod. */
START_TEST(graceful_delete_is_final)
{
    long long del_at, before;
    long mark;

    if (skip_without_engine())
        return;
    chain_up(NULL);
    mark = bridgectl_log_mark(bridge);
    send_simple_pod("forced", "localhost/busybox:edge", "", "");
    send_simple_pod("gone", "localhost/busybox:edge", "", "");
    wait_pod("forced", running_ready, NULL, "Running and ready");
    wait_pod("gone", running_ready, NULL, "Running and ready");
    { /* the operator's view of the same, from the bridge's store */
        struct ctl_run r;
        pods_ctl(&r, "pod", "list", NULL);
        ck_assert_msg(r.status == 0, "pod list: exit %d: %s", r.status, r.err);
        ck_assert_msg(strstr(r.out, "NAMESPACE") && strstr(r.out, "forced") &&
                          strstr(r.out, "gone") && strstr(r.out, "Running"),
                      "pod list:\n%s", r.out);
        ctl_run_free(&r);
        pods_ctl(&r, "pod", "get", "default/gone", NULL);
        ck_assert_msg(r.status == 0 && strstr(r.out, "\"uid-gone\"") && strstr(r.out, "status: ") &&
                          strstr(r.out, "\"Running\""),
                      "pod get: exit %d:\n%s%s", r.status, r.out, r.err);
        ctl_run_free(&r);
        pods_ctl(&r, "pod", "get", "default/nope", NULL);
        ck_assert_int_eq(r.status, 1);
        ctl_run_free(&r);
    }
    { /* and on the bridge's /metrics */
        struct kedge_buf b = KEDGE_BUF_INIT;
        int status = -1;
        ck_assert_int_eq(kt_http_fd(kt_connect_tcp(bridgectl_metrics_port(bridge)), "127.0.0.1",
                                    "GET", "/metrics", NULL, 5000, &status, &b),
                         0);
        ck_assert_int_eq(status, 200);
        ck_assert_msg(strstr(b.data, "\nkedge_bridge_pods{phase=\"Running\"} 2\n") != NULL,
                      "/metrics:\n%s", b.data);
        kedge_buf_cleanup(&b);
    }

    /* forced: stopped and removed, and nothing said about it to the cloud any more */
    before = last_sent();
    sim_send(ROUTE("delete",
                   "default/pod/forced") "{\"metadata\":{\"name\":\"forced\","
                                         "\"namespace\":\"default\",\"uid\":\"uid-forced\"}}}");
    ck_assert_int_eq(bridgectl_wait_log(bridge, mark, "pod default/pod/forced (uid-forced) removed",
                                        kh_scale_ms(WAIT_MS)),
                     0);
    ck_assert_int_eq(edge_sent("patch", "default/podpatch/forced", before, NULL), 0);
    ck_assert_int_eq(edge_sent("delete", "default/pod/forced", -1, NULL), 0);

    /* gone: the graceful way */
    sim_send(ROUTE(
        "update",
        "default/pod/gone") "{\"metadata\":{\"name\":\"gone\",\"namespace\":\"default\",\"uid\":"
                            "\"uid-gone\","
                            "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\","
                            "\"deletionGracePeriodSeconds\":0},"
                            "\"spec\":{\"nodeName\":\"" NODE
                            "\",\"terminationGracePeriodSeconds\":0,"
                            "\"containers\":[{\"name\":\"c\",\"image\":\"localhost/busybox:edge\","
                            "\"command\":[\"sleep\",\"600\"]}]}}}");
    wait_containers("uid-gone", 0);
    ck_assert_int_eq(bridgectl_wait_log(bridge, mark, "pod default/pod/gone (uid-gone) removed",
                                        kh_scale_ms(WAIT_MS)),
                     0);
    /* the cloud's update, OK and delete have been sent and acked, and the bridge has decided
     * about the late update: ignored (the fix) or taken again (the defect) */
    {
        int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
        while (sim_pod("gone") || !sim_settled() ||
               (bridgectl_count_log(bridge, mark, "(uid-gone) is finished here") == 0 &&
                bridgectl_count_log(bridge, mark, "(uid-gone) added") < 2)) {
            ck_assert_msg(kt_now_ms() < deadline, "the cloud still has pod gone or unacked "
                                                  "messages, or the late update was not seen");
            kt_pause_ms(PAUSE_MS);
        }
    }
    ck_assert_int_eq(edge_sent("delete", "default/pod/gone", -1, &del_at), 1);
    ck_assert_int_gt(edge_sent("patch", "default/podpatch/gone", -1, NULL), 0);
    ck_assert_int_eq(edge_sent("patch", "default/podpatch/gone", del_at, NULL), 0);
    ck_assert_int_eq(bridgectl_count_log(bridge, mark, "pod default/pod/gone (uid-gone) added"), 1);
    ck_assert_int_eq(bridgectl_count_log(bridge, mark, "pod default/pod/gone (uid-gone) removed"),
                     1);
    ck_assert_int_eq(bridgectl_count_log(bridge, mark, "status patch refused"), 0);
    /* the late update came, and was seen for what it is */
    ck_assert_int_eq(
        bridgectl_count_log(bridge, mark, "pod default/pod/gone (uid-gone) is finished here"), 1);
    ck_assert(bridgectl_running(bridge));
    teardown();
}
END_TEST

void pods_add_lifecycle_tests(TCase *tc)
{
    tcase_add_test(tc, restart_policies_init_containers_and_liveness);
    tcase_add_test(tc, graceful_delete_is_final);
}
