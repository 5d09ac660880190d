/* cloudbridge/edged/runtime_docker.c: the Docker Engine API behind struct runtime, against a
 * stub engine client (engine.h) that records each request and answers when the test says so:
 * the paths and bodies sent, and how the engine's answers (statuses, list and inspect JSON,
 * error bodies) become runtime results; the logs stream fed in pieces the test chooses.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "runtime_docker_stub.h"
#include "unit.h"

/* ---- tests --------------------------------------------------------------------------------- */

START_TEST(list_and_watch)
{
    struct got g = {0};

    ck_assert_int_eq(rt.ops->list(rt.rt, got, &g), 0);
    ck_assert_str_eq(calls[0].method, "GET");
    ck_assert_str_eq(calls[0].path, "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22io."
                                    "kedge.node%3Dnode1%22%5D%7D");
    answer(0, 200, 0,
           "[{\"Id\":\"a1\",\"State\":\"running\",\"Labels\":{\"io.kubernetes.pod.uid\":\"u1\","
           "\"io.kubernetes.container.name\":\"POD\"}},"
           "{\"Id\":\"b2\",\"State\":\"exited\",\"Labels\":{\"io.kubernetes.pod.uid\":\"u1\","
           "\"io.kubernetes.container.name\":\"app\"}},"
           "{\"Id\":\"c3\",\"State\":\"running\",\"Labels\":{}},"
           "{\"State\":\"running\",\"Labels\":{\"io.kubernetes.pod.uid\":\"u2\","
           "\"io.kubernetes.container.name\":\"x\"}}]");
    ck_assert_int_eq(g.outcome, RT_OK);
    ck_assert_uint_eq(g.n_listed, 2); /* not ours (no labels) and no Id: left out */
    ck_assert_str_eq(g.l_ids[0], "a1");
    ck_assert(g.l[0].sandbox);
    ck_assert_str_eq(g.l_uids[0], "u1");
    ck_assert_str_eq(g.l_ids[1], "b2");
    ck_assert_str_eq(g.l_names[1], "app");
    ck_assert_str_eq(g.l_states[1], "exited");
    ck_assert(!g.l[1].sandbox);

    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(rt.ops->list(rt.rt, got, &g), 0);
    answer(1, 500, 0, "{\"message\":\"database is locked\"}");
    ck_assert_int_eq(g.outcome, RT_FAILED);
    ck_assert_str_eq(g.message, "database is locked");

    ck_assert_int_eq(rt.ops->watch(rt.rt, NULL, NULL, NULL), 0);
    ck_assert_str_eq(watch_path, "/events?filters=%7B%22label%22%3A%5B%22io.kedge.node%3Dnode1%22%"
                                 "5D%2C%22type%22%3A%5B%22container%22%5D%7D");
}
END_TEST

START_TEST(inspect)
{
    struct got g = {0};

    ck_assert_int_eq(rt.ops->inspect(rt.rt, "b2", got, &g), 0);
    ck_assert_str_eq(calls[0].path, "/containers/b2/json");
    answer(0, 200, 0,
           "{\"Id\":\"b2\",\"Created\":\"2026-01-02T03:04:05.5Z\",\"Image\":\"sha256:ff\","
           "\"State\":{\"Status\":\"exited\",\"Running\":false,\"OOMKilled\":true,"
           "\"ExitCode\":137,\"Error\":\"\",\"StartedAt\":\"2026-01-02T03:04:06Z\","
           "\"FinishedAt\":\"2026-01-02T03:04:07Z\"},"
           "\"Config\":{\"Image\":\"busybox:1.36\",\"Labels\":{"
           "\"io.kubernetes.container.name\":\"app\","
           "\"io.kubernetes.container.restartCount\":\"3\","
           "\"io.kubernetes.container.hash\":\"4242\"}},"
           "\"NetworkSettings\":{\"IPAddress\":\"\",\"Networks\":{\"podman\":"
           "{\"IPAddress\":\"10.88.0.9\"}}}}");
    ck_assert_int_eq(g.outcome, RT_OK);
    ck_assert_str_eq(g.o.id, "b2");
    ck_assert_str_eq(g.o.name, "app");
    ck_assert_str_eq(g.o.image, "busybox:1.36");
    ck_assert_str_eq(g.o.image_id, "sha256:ff");
    ck_assert_str_eq(g.o.state, "exited");
    ck_assert(!g.o.running);
    ck_assert(g.o.oom_killed);
    ck_assert_int_eq(g.o.exit_code, 137);
    ck_assert_int_eq(g.o.attempt, 3);
    ck_assert_uint_eq(g.o.hash, 4242);
    ck_assert_int_eq(g.o.created_ms, 1767323045500);
    ck_assert_int_eq(g.o.finished_ms - g.o.started_ms, 1000);
    ck_assert_str_eq(g.o.ip, "10.88.0.9");
    observed_container_cleanup(&g.o);

    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(rt.ops->inspect(rt.rt, "gone", got, &g), 0);
    answer(1, 404, 0, "{\"message\":\"no such container\"}");
    ck_assert_int_eq(g.outcome, RT_NOT_FOUND);

    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(rt.ops->inspect(rt.rt, "b2", got, &g), 0);
    answer(2, 0, -ECONNREFUSED, "");
    ck_assert_int_eq(g.outcome, RT_UNREACHABLE);
    ck_assert_ptr_nonnull(strstr(g.message, "container runtime is not reachable: "));

    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(rt.ops->inspect(rt.rt, "b2", got, &g), 0);
    answer(3, 200, 0, "{not json");
    ck_assert_int_eq(g.outcome, RT_FAILED); /* unknown, not absent */

    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(rt.ops->inspect(rt.rt, "b2", got, &g), 0);
    answer(4, 0, -ECANCELED, "");
    ck_assert_int_eq(g.outcome, RT_CANCELLED);
}
END_TEST

static const char pod_json[] =
    "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"u1\"},"
    "\"spec\":{\"nodeName\":\"node1\",\"containers\":[{\"name\":\"app\",\"image\":\"busybox\"}]}}";

START_TEST(create_start_stop_remove)
{
    struct pod_spec *p = NULL;
    struct runtime_create cc = {0};
    struct got g = {0};
    char why[256];

    ck_assert_int_eq(podspec_parse(pod_json, strlen(pod_json), &p, why, sizeof(why)), 0);
    cc.pod = p;
    cc.host_ip = cc.pod_ip = "192.0.2.1";
    cc.volumes_dir = "/var/lib/kedge/pods/u1/volumes";
    ck_assert_int_eq(rt.ops->create_sandbox(rt.rt, &cc, why, sizeof(why), got, &g), 0);
    ck_assert_str_eq(calls[0].method, "POST");
    ck_assert_str_eq(calls[0].path, "/containers/create?name=k8s_POD_web_default_u1_0");
    ck_assert_ptr_nonnull(strstr(calls[0].body, "\"Image\":\"localhost/pause:3.9\""));
    answer(0, 201, 0, "{\"Id\":\"sb1\",\"Warnings\":[]}");
    ck_assert_int_eq(g.outcome, RT_OK);
    ck_assert_str_eq(g.id, "sb1");

    memset(&g, 0, sizeof(g));
    cc.c = &p->containers[0];
    cc.sandbox_id = "sb1";
    cc.attempt = 2;
    ck_assert_int_eq(rt.ops->create_container(rt.rt, &cc, why, sizeof(why), got, &g), 0);
    ck_assert_str_eq(calls[1].path, "/containers/create?name=k8s_app_web_default_u1_2");
    ck_assert_ptr_nonnull(strstr(calls[1].body, "\"NetworkMode\":\"container:sb1\""));
    answer(1, 500, 0, "{\"message\":\"the container name is already in use by abc\"}");
    ck_assert_int_eq(g.outcome, RT_CONFLICT);
    ck_assert_int_eq(rt.ops->create_container(rt.rt, &cc, why, sizeof(why), got, &g), 0);
    answer(2, 409, 0, "{\"message\":\"Conflict\"}");
    ck_assert_int_eq(g.outcome, RT_CONFLICT);
    ck_assert_int_eq(rt.ops->create_container(rt.rt, &cc, why, sizeof(why), got, &g), 0);
    answer(3, 404, 0, "{\"message\":\"busybox: image not known\"}");
    ck_assert_int_eq(g.outcome, RT_NOT_FOUND);
    ck_assert_str_eq(g.message, "busybox: image not known");
    ck_assert_int_eq(rt.ops->create_container(rt.rt, &cc, why, sizeof(why), got, &g), 0);
    answer(4, 201, 0, "{}"); /* created, but which? */
    ck_assert_int_eq(g.outcome, RT_FAILED);
    ck_assert_str_eq(g.message, "the container runtime answered 201");

    ck_assert_int_eq(rt.ops->start_container(rt.rt, "sb1", got, &g), 0);
    ck_assert_str_eq(calls[5].path, "/containers/sb1/start");
    answer(5, 304, 0, "");
    ck_assert_int_eq(g.outcome, RT_OK);
    ck_assert_int_eq(rt.ops->start_container(rt.rt, "sb1", got, &g), 0);
    answer(6, 500, 0, "{\"message\":\"OCI runtime error\"}");
    ck_assert_int_eq(g.outcome, RT_FAILED);
    ck_assert_str_eq(g.message, "OCI runtime error");

    ck_assert_int_eq(rt.ops->kill_container(rt.rt, "c9", "TERM", got, &g), 0);
    ck_assert_str_eq(calls[7].method, "POST");
    ck_assert_str_eq(calls[7].path, "/containers/c9/kill?signal=TERM");
    answer(7, 204, 0, "");
    ck_assert_int_eq(g.outcome, RT_OK);
    ck_assert_int_eq(rt.ops->remove_container(rt.rt, "c9", got, &g), 0);
    ck_assert_str_eq(calls[8].method, "DELETE");
    ck_assert_str_eq(calls[8].path, "/containers/c9?force=1&v=1");
    answer(8, 404, 0, "{\"message\":\"no such container\"}");
    ck_assert_int_eq(g.outcome, RT_NOT_FOUND);
    ck_assert_int_eq(rt.ops->remove_container(rt.rt, "c9", NULL, NULL), 0);
    answer(9, 204, 0, "");
    podspec_free(p);
}
END_TEST

/* A pull is a POST stream: the progress lines are read as they come, cut anywhere, and only
 * an error is kept. podman fails inside a 200 stream, dockerd with HTTP 500. */
START_TEST(pull_streams)
{
    struct runtime_auth auth = {"kedge", "s3cret", "127.0.0.1:5000"};
    static const char progress[] =
        "{\"status\":\"Pulling from library/busybox\",\"id\":\"latest\"}\r\n"
        "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1,\"total\":2}}\r\n";
    struct got g = {0};

    ck_assert_int_eq(rt.ops->pull_image(rt.rt, "busybox", NULL, got, &g), 0);
    ck_assert_str_eq(pulled.method, "POST");
    ck_assert_str_eq(es.path, "/images/create?fromImage=busybox%3Alatest"); /* one tag */
    ck_assert_uint_eq(pulled.n_headers, 0);
    for (size_t i = 0; i < sizeof(progress) - 1; i += 7) /* in pieces, lines split */
        feed(progress + i, sizeof(progress) - 1 - i < 7 ? sizeof(progress) - 1 - i : 7);
    ck_assert_int_eq(g.calls, 0);
    stream_end(200, 0, "");
    ck_assert_int_eq(g.calls, 1);
    ck_assert_int_eq(g.outcome, RT_OK);

    /* podman: 200, then the error in the stream (the last line without its newline) */
    ck_assert_int_eq(rt.ops->pull_image(rt.rt, "127.0.0.1:5000/app:1", &auth, got, &g), 0);
    ck_assert_str_eq(es.path, "/images/create?fromImage=127.0.0.1%3A5000%2Fapp%3A1");
    ck_assert_uint_eq(pulled.n_headers, 1);
    /* base64url of {"username":"kedge","password":"s3cret","serveraddress":"127.0.0.1:5000"} */
    ck_assert_str_eq(pulled.auth, "eyJ1c2VybmFtZSI6ImtlZGdlIiwicGFzc3dvcmQiOiJzM2NyZXQiLCJzZXJ2ZXJ"
                                  "hZGRyZXNzIjoiMTI3LjAuMC4xOjUwMDAifQ==");
    feed(progress, 40);
    feed(progress + 40, sizeof(progress) - 1 - 40);
    feed("{\"error\":\"x\",\"errorDetail\":{\"message\":\"unauthorized: authentication "
         "required\"}}",
         79);
    stream_end(200, 0, "");
    ck_assert_int_eq(g.outcome, RT_FAILED);
    ck_assert_str_eq(g.message, "unauthorized: authentication required");

    /* dockerd: 500 with the reason, collected */
    ck_assert_int_eq(rt.ops->pull_image(rt.rt, "busybox@sha256:ab", NULL, got, &g), 0);
    ck_assert_str_eq(es.path, "/images/create?fromImage=busybox%40sha256%3Aab");
    stream_end(500, 0,
               "{\"message\":\"Head \\\"https://127.0.0.1:5000/v2/app/manifests/1\\\": no basic "
               "auth credentials\"}");
    ck_assert_int_eq(g.outcome, RT_FAILED);
    ck_assert_str_eq(
        g.message, "Head \"https://127.0.0.1:5000/v2/app/manifests/1\": no basic auth credentials");

    /* the engine gone midway; the runtime client freed */
    ck_assert_int_eq(rt.ops->pull_image(rt.rt, "busybox:1", NULL, got, &g), 0);
    stream_end(0, -ECONNRESET, "");
    ck_assert_int_eq(g.outcome, RT_UNREACHABLE);
    ck_assert_int_eq(rt.ops->pull_image(rt.rt, "busybox:1", NULL, got, &g), 0);
    stream_end(0, -ECANCELED, "");
    ck_assert_int_eq(g.outcome, RT_CANCELLED);
}
END_TEST

START_TEST(images_and_version)
{
    struct got g = {0};

    ck_assert_int_eq(rt.ops->image_present(rt.rt, "docker.io/library/busybox:1.36", got, &g), 0);
    ck_assert_str_eq(calls[0].path, "/images/docker.io%2Flibrary%2Fbusybox%3A1.36/json");
    answer(0, 200, 0, "{}");
    ck_assert(g.present);
    ck_assert_int_eq(g.outcome, RT_OK);
    ck_assert_int_eq(rt.ops->image_present(rt.rt, "busybox", got, &g), 0);
    answer(1, 404, 0, "{\"message\":\"no such image\"}");
    ck_assert(!g.present);
    ck_assert_int_eq(g.outcome, RT_OK);
    ck_assert_int_eq(rt.ops->image_present(rt.rt, "busybox", got, &g), 0);
    answer(2, 0, -ETIMEDOUT, "");
    ck_assert_int_eq(g.outcome, RT_UNREACHABLE);

    ck_assert_int_eq(rt.ops->version(rt.rt, got, &g), 0); /* (keeps the call numbers) */
    answer(3, 200, 0, "{\"Version\":\"1\"}");
    ck_assert_int_eq(rt.ops->version(rt.rt, got, &g), 0);
    answer(4, 200, 0, "{\"Version\":\"1\"}");
    ck_assert_int_eq(rt.ops->version(rt.rt, got, &g), 0);
    ck_assert_str_eq(calls[5].path, "/version");
    answer(5, 200, 0,
           "{\"Version\":\"4.3.1\",\"Components\":[{\"Name\":\"Podman Engine\","
           "\"Version\":\"4.3.1\"}]}");
    ck_assert_int_eq(g.outcome, RT_OK);
    ck_assert_str_eq(g.text, "podman://4.3.1");
    ck_assert_int_eq(rt.ops->version(rt.rt, got, &g), 0);
    answer(6, 200, 0, "{\"Version\":\"24.0.5\"}");
    ck_assert_str_eq(g.text, "docker://24.0.5");
}
END_TEST

/* ---- logs ---------------------------------------------------------------------------------- */

TCase *runtime_docker_logs_tcase(void);

static Suite *runtime_docker_suite(void)
{
    Suite *s = suite_create("runtime_docker");
    TCase *tc = tcase_create("ops");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, list_and_watch);
    tcase_add_test(tc, inspect);
    tcase_add_test(tc, create_start_stop_remove);
    tcase_add_test(tc, images_and_version);
    tcase_add_test(tc, pull_streams);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, runtime_docker_logs_tcase());
    return s;
}

int main(void)
{
    return unit_run(runtime_docker_suite());
}
