/* podstatus.c: the v1.PodStatus Edged reports, from hand-made views of what the engine said.
 * Phases follow kubelet's getPhase; the JSON is compared whole (Go field order, nulls for the
 * states not shown so a strategic merge deletes them). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "podstatus.h"
#include "kedge/buf.h"

static struct pod_container app = {.name = "web", .image = "localhost/busybox:edge"};
static struct pod_container app2 = {.name = "side", .image = "localhost/busybox:edge"};

static struct observed_container running = {.id = "c1",
                                            .image_id = "sha256:aa",
                                            .running = true,
                                            .state = "running",
                                            .started_ms = 1700000000000};
static struct observed_container exited0 = {.id = "c0",
                                            .image_id = "sha256:aa",
                                            .state = "exited",
                                            .exit_code = 0,
                                            .started_ms = 1700000000000,
                                            .finished_ms = 1700000005000};
static struct observed_container exited137 = {.id = "c0",
                                              .image_id = "sha256:aa",
                                              .state = "exited",
                                              .exit_code = 137,
                                              .started_ms = 1700000000000,
                                              .finished_ms = 1700000005000};

struct fixture {
    struct pod_spec spec;
    struct pod_container cs[2];
    struct container_view views[2];
    struct pod_view v;
};

static void setup_view(struct fixture *f, size_t n, enum pod_restart_policy rp)
{
    memset(f, 0, sizeof(*f));
    f->cs[0] = app;
    f->cs[1] = app2;
    f->spec.name = "web";
    f->spec.ns = "default";
    f->spec.uid = "u1";
    f->spec.restart = rp;
    f->spec.containers = f->cs;
    f->spec.n_containers = n;
    for (size_t i = 0; i < n; i++)
        f->views[i].spec = &f->cs[i];
    f->v.spec = &f->spec;
    f->v.apps = f->views;
    f->v.n_apps = n;
    f->v.sandbox_ready = true;
}

START_TEST(phases_follow_kubelet)
{
    struct fixture f;

    setup_view(&f, 1, RESTART_ALWAYS);
    ck_assert_str_eq(podstatus_phase(&f.v), "Pending"); /* nothing observed yet */
    f.views[0].current = &running;
    ck_assert_str_eq(podstatus_phase(&f.v), "Running");
    f.views[0].current = &exited137;
    ck_assert_str_eq(podstatus_phase(&f.v), "Running"); /* Always: restarting */
    f.views[0].waiting = WAIT_CRASH_BACKOFF;
    ck_assert_str_eq(podstatus_phase(&f.v), "Running"); /* waiting after a termination */

    setup_view(&f, 1, RESTART_NEVER);
    f.views[0].current = &exited137;
    ck_assert_str_eq(podstatus_phase(&f.v), "Failed");
    f.views[0].current = &exited0;
    ck_assert_str_eq(podstatus_phase(&f.v), "Succeeded");

    setup_view(&f, 1, RESTART_ON_FAILURE);
    f.views[0].current = &exited137;
    ck_assert_str_eq(podstatus_phase(&f.v), "Running");
    f.views[0].current = &exited0;
    ck_assert_str_eq(podstatus_phase(&f.v), "Succeeded");

    /* two containers, one running, one not yet created: Pending */
    setup_view(&f, 2, RESTART_ALWAYS);
    f.views[0].current = &running;
    ck_assert_str_eq(podstatus_phase(&f.v), "Pending");

    /* a restart being made (new attempt created, not started): still Running */
    {
        static struct observed_container created = {.id = "c2", .state = "created"};
        setup_view(&f, 1, RESTART_ALWAYS);
        f.views[0].current = &created;
        f.views[0].previous = &exited137;
        ck_assert_str_eq(podstatus_phase(&f.v), "Running");
    }

    /* deleted before anything ran: Failed, never Succeeded */
    setup_view(&f, 1, RESTART_ALWAYS);
    f.v.terminating = true;
    ck_assert_str_eq(podstatus_phase(&f.v), "Failed");

    /* deleted: terminal once nothing runs, by the exit codes */
    setup_view(&f, 1, RESTART_ALWAYS);
    f.v.terminating = true;
    f.views[0].current = &exited137;
    ck_assert_str_eq(podstatus_phase(&f.v), "Failed");
    f.views[0].current = &exited0;
    ck_assert_str_eq(podstatus_phase(&f.v), "Succeeded");
}
END_TEST

START_TEST(conditions_need_every_container_ready)
{
    struct fixture f;
    bool c[N_COND];

    setup_view(&f, 2, RESTART_ALWAYS);
    f.views[0].current = &running;
    f.views[1].current = &running;
    f.views[0].ready = true;
    podstatus_conditions(&f.v, c);
    ck_assert(c[COND_INITIALIZED] && c[COND_SCHEDULED]);
    ck_assert(!c[COND_READY] && !c[COND_CONTAINERS_READY]);
    f.views[1].ready = true;
    podstatus_conditions(&f.v, c);
    ck_assert(c[COND_READY] && c[COND_CONTAINERS_READY]);
}
END_TEST

static char *status_of(const struct pod_view *v)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(podstatus_write(v, &b), 0);
    return kedge_buf_take(&b, NULL);
}

START_TEST(running_container_status_exactly)
{
    struct fixture f;
    char *s;

    setup_view(&f, 1, RESTART_ALWAYS);
    f.views[0].current = &running;
    f.views[0].previous = &exited137;
    f.views[0].ready = true;
    f.views[0].started = true;
    f.views[0].restart_count = 1;
    f.v.pod_ip = "10.88.0.5";
    f.v.host_ip = "192.0.2.2";
    f.v.start_ms = 1700000000000;
    for (int i = 0; i < N_COND; i++)
        f.v.cond_since_s[i] = 1700000001;
    s = status_of(&f.v);
    ck_assert_str_eq(
        s, "{\"phase\":\"Running\",\"conditions\":["
           "{\"type\":\"Initialized\",\"status\":\"True\",\"lastProbeTime\":null,"
           "\"lastTransitionTime\":\"2023-11-14T22:13:21Z\",\"reason\":null,\"message\":null},"
           "{\"type\":\"Ready\",\"status\":\"True\",\"lastProbeTime\":null,"
           "\"lastTransitionTime\":\"2023-11-14T22:13:21Z\",\"reason\":null,\"message\":null},"
           "{\"type\":\"ContainersReady\",\"status\":\"True\",\"lastProbeTime\":null,"
           "\"lastTransitionTime\":\"2023-11-14T22:13:21Z\",\"reason\":null,\"message\":null},"
           "{\"type\":\"PodScheduled\",\"status\":\"True\",\"lastProbeTime\":null,"
           "\"lastTransitionTime\":\"2023-11-14T22:13:21Z\",\"reason\":null,\"message\":null}],"
           "\"message\":null,\"reason\":null,\"hostIP\":\"192.0.2.2\",\"hostIPs\":[{\"ip\":\"192.0."
           "2.2\"}],"
           "\"podIP\":\"10.88.0.5\",\"podIPs\":[{\"ip\":\"10.88.0.5\"}],"
           "\"startTime\":\"2023-11-14T22:13:20Z\",\"containerStatuses\":[{\"name\":\"web\","
           "\"state\":{\"waiting\":null,\"running\":{\"startedAt\":"
           "\"2023-11-14T22:13:20Z\"},\"terminated\":null},\"lastState\":{\"terminated\":{"
           "\"exitCode\":137,"
           "\"reason\":\"Error\",\"message\":null,\"startedAt\":\"2023-11-14T22:13:20Z\","
           "\"finishedAt\":"
           "\"2023-11-14T22:13:25Z\",\"containerID\":\"docker://c0\"}},\"ready\":true,"
           "\"restartCount\":1,\"image\":\"localhost/busybox:edge\",\"imageID\":"
           "\"docker://sha256:aa\",\"containerID\":\"docker://c1\",\"started\":true}],"
           "\"qosClass\":\"BestEffort\"}");
    free(s);
}
END_TEST

/* A pod that never ran, its old problems gone: every key a former status may have set is
 * written, null when cleared (pod message and reason, the states, the container's id), so the
 * API server's strategic merge keeps nothing stale. */
START_TEST(cleared_keys_are_null)
{
    struct fixture f;
    char *s;

    setup_view(&f, 1, RESTART_ALWAYS);
    f.views[0].waiting = WAIT_CREATING;
    for (int i = 0; i < N_COND; i++)
        f.v.cond_since_s[i] = 1700000001;
    s = status_of(&f.v);
    ck_assert_str_eq(
        s, "{\"phase\":\"Pending\",\"conditions\":["
           "{\"type\":\"Initialized\",\"status\":\"True\",\"lastProbeTime\":null,"
           "\"lastTransitionTime\":\"2023-11-14T22:13:21Z\",\"reason\":null,\"message\":null},"
           "{\"type\":\"Ready\",\"status\":\"False\",\"lastProbeTime\":null,"
           "\"lastTransitionTime\":\"2023-11-14T22:13:21Z\",\"reason\":\"ContainersNotReady\","
           "\"message\":\"containers with unready status: [web]\"},"
           "{\"type\":\"ContainersReady\",\"status\":\"False\",\"lastProbeTime\":null,"
           "\"lastTransitionTime\":\"2023-11-14T22:13:21Z\",\"reason\":\"ContainersNotReady\","
           "\"message\":\"containers with unready status: [web]\"},"
           "{\"type\":\"PodScheduled\",\"status\":\"True\",\"lastProbeTime\":null,"
           "\"lastTransitionTime\":\"2023-11-14T22:13:21Z\",\"reason\":null,\"message\":null}],"
           "\"message\":null,\"reason\":null,\"containerStatuses\":[{\"name\":\"web\","
           "\"state\":{\"waiting\":{\"reason\":\"ContainerCreating\",\"message\":null},"
           "\"running\":null,\"terminated\":null},\"lastState\":{\"terminated\":null},"
           "\"ready\":false,\"restartCount\":0,\"image\":\"localhost/busybox:edge\","
           "\"imageID\":\"\",\"containerID\":null,\"started\":false}],"
           "\"qosClass\":\"BestEffort\"}");
    free(s);
    /* a pod-level problem is written, and goes back to null once solved (above) */
    f.v.pod_message = "Pod was rejected";
    f.v.pod_reason = "UnexpectedAdmissionError";
    s = status_of(&f.v);
    ck_assert_ptr_nonnull(strstr(s, "}],\"message\":\"Pod was rejected\","
                                    "\"reason\":\"UnexpectedAdmissionError\","));
    free(s);
}
END_TEST

START_TEST(crash_loop_shows_waiting_and_the_last_termination)
{
    struct fixture f;
    char *s;

    setup_view(&f, 1, RESTART_ALWAYS);
    f.views[0].current = &exited137;
    f.views[0].waiting = WAIT_CRASH_BACKOFF;
    f.views[0].waiting_message = "back-off 10s restarting failed container=web pod=web_default(u1)";
    f.views[0].restart_count = 2;
    s = status_of(&f.v);
    ck_assert_ptr_nonnull(strstr(s, "\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\","
                                    "\"message\":\"back-off 10s restarting failed "
                                    "container=web pod=web_default(u1)\"},\"running\":null,"
                                    "\"terminated\":null}"));
    ck_assert_ptr_nonnull(strstr(s, "\"lastState\":{\"terminated\":{\"exitCode\":137,"));
    ck_assert_ptr_nonnull(strstr(s, "\"reason\":\"ContainersNotReady\",\"message\":"
                                    "\"containers with unready status: [web]\""));
    free(s);
}
END_TEST

START_TEST(reasons_and_qos)
{
    ck_assert_str_eq(podstatus_waiting_reason(WAIT_PULL_BACKOFF), "ImagePullBackOff");
    ck_assert_str_eq(podstatus_waiting_reason(WAIT_CONFIG_ERROR), "CreateContainerConfigError");
    ck_assert_str_eq(podstatus_waiting_reason(WAIT_INVALID_IMAGE), "InvalidImageName");
    ck_assert_str_eq(podstatus_waiting_reason(WAIT_NONE), "ContainerCreating");
    {
        struct fixture f;
        char *s;
        setup_view(&f, 1, RESTART_ALWAYS);
        f.cs[0].cpu_limit_milli = 500;
        f.cs[0].mem_limit_bytes = 64 << 20;
        s = status_of(&f.v);
        ck_assert_ptr_nonnull(strstr(s, "\"qosClass\":\"Guaranteed\""));
        free(s);
        f.cs[0].cpu_request_milli = 100;
        s = status_of(&f.v);
        ck_assert_ptr_nonnull(strstr(s, "\"qosClass\":\"Burstable\""));
        free(s);
    }
}
END_TEST

START_TEST(engine_times_parse)
{
    ck_assert_int_eq(podstatus_parse_time_ms("2023-11-14T22:13:20.123456789Z"), 1700000000123);
    ck_assert_int_eq(podstatus_parse_time_ms("2023-11-14T23:13:20+01:00"), 1700000000000);
    ck_assert_int_eq(podstatus_parse_time_ms("0001-01-01T00:00:00Z"), 0);
    ck_assert_int_eq(podstatus_parse_time_ms("yesterday"), 0);
    ck_assert_int_eq(podstatus_parse_time_ms(NULL), 0);
}
END_TEST

START_TEST(patch_wraps_the_status)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(podstatus_patch("u1", "{\"phase\":\"Running\"}", 19, &b), 0);
    ck_assert_str_eq(b.data, "{\"metadata\":{\"uid\":\"u1\"},\"status\":{\"phase\":\"Running\"}}");
    kedge_buf_cleanup(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("podstatus");
    TCase *tc = tcase_create("podstatus");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, phases_follow_kubelet);
    tcase_add_test(tc, conditions_need_every_container_ready);
    tcase_add_test(tc, running_container_status_exactly);
    tcase_add_test(tc, crash_loop_shows_waiting_and_the_last_termination);
    tcase_add_test(tc, cleared_keys_are_null);
    tcase_add_test(tc, reasons_and_qos);
    tcase_add_test(tc, engine_times_parse);
    tcase_add_test(tc, patch_wraps_the_status);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
