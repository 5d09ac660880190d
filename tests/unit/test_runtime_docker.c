/* cloudbridge/edged/runtime_docker.c: the Docker Engine API behind struct runtime, against a
 * stub engine client (engine.h) that records each request and answers when the test says so:
 * the paths and bodies sent, and how the engine's answers (statuses, list and inspect JSON,
 * error bodies) become runtime results.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "kedge/alloc.h"
#include "runtime_docker.h"
#include "unit.h"

/* ---- the engine stub ----------------------------------------------------------------------- */

struct call {
    char method[8], path[512], body[4096];
    int timeout_ms;
    engine_done_fn done;
    void *ctx;
};

static struct call calls[16];
static int n_calls;
static int fake_engine;
static char watch_path[512];

int engine_new(struct lws_context *lws, struct lws_vhost *vhost, const char *socket_path,
               struct engine **out)
{
    (void)lws;
    (void)vhost;
    ck_assert_str_eq(socket_path, "/run/podman.sock");
    *out = (struct engine *)&fake_engine;
    return 0;
}

void engine_stop(struct engine *e)
{
    (void)e;
}

void engine_free(struct engine *e)
{
    ck_assert_ptr_eq(e, &fake_engine);
}

int engine_request(struct engine *e, const char *method, const char *path, const char *body,
                   size_t body_len, int timeout_ms, engine_done_fn fn, void *arg)
{
    struct call *c = &calls[n_calls++];

    ck_assert_ptr_eq(e, &fake_engine);
    ck_assert_int_le(n_calls, 16);
    memset(c, 0, sizeof(*c));
    snprintf(c->method, sizeof(c->method), "%s", method);
    snprintf(c->path, sizeof(c->path), "%s", path);
    if (body)
        snprintf(c->body, sizeof(c->body), "%.*s", (int)body_len, body);
    c->timeout_ms = timeout_ms;
    c->done = fn;
    c->ctx = arg;
    return 0;
}

int engine_watch(struct engine *e, const char *path, engine_event_fn fn, engine_up_fn on_up,
                 void *ctx)
{
    (void)e;
    (void)fn;
    (void)on_up;
    (void)ctx;
    snprintf(watch_path, sizeof(watch_path), "%s", path);
    return 0;
}

static void answer(int i, int status, int err, const char *body)
{
    struct engine_reply r = {status, err, body, strlen(body)};

    ck_assert_int_lt(i, n_calls);
    calls[i].done(calls[i].ctx, &r);
}

/* ---- what the runtime answered ------------------------------------------------------------- */

struct got {
    int calls;
    enum runtime_outcome outcome;
    char message[512], id[64], text[64];
    bool present;
    struct observed_container o;
    struct runtime_listed l[4];
    char l_ids[4][32], l_names[4][32], l_uids[4][32], l_states[4][32];
    size_t n_listed;
};

static void got(void *ctx, const struct runtime_result *r)
{
    struct got *g = ctx;

    g->calls++;
    g->outcome = r->outcome;
    snprintf(g->message, sizeof(g->message), "%s", r->message);
    snprintf(g->id, sizeof(g->id), "%s", r->id ? r->id : "");
    snprintf(g->text, sizeof(g->text), "%s", r->text ? r->text : "");
    g->present = r->present;
    if (r->inspected)
        ck_assert_int_eq(observed_container_copy(&g->o, r->inspected), 0);
    g->n_listed = r->n_listed;
    for (size_t i = 0; i < r->n_listed && i < 4; i++) {
        g->l[i] = r->listed[i];
        snprintf(g->l_ids[i], 32, "%s", r->listed[i].id);
        snprintf(g->l_names[i], 32, "%s", r->listed[i].name);
        snprintf(g->l_uids[i], 32, "%s", r->listed[i].pod_uid);
        snprintf(g->l_states[i], 32, "%s", r->listed[i].state);
    }
}

static struct runtime rt;

static void setup(void)
{
    const struct runtime_docker_config cfg = {"/run/podman.sock", "node1", "localhost/pause:3.9", 0,
                                              0};

    n_calls = 0;
    unit_count_allocs();
    ck_assert_int_eq(runtime_docker_new(NULL, NULL, &cfg, &rt), 0);
}

static void teardown(void)
{
    rt.ops->free(rt.rt);
    ck_assert_int_eq(unit_live_blocks, 0);
}

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

    ck_assert_int_eq(rt.ops->pull_image(rt.rt, "busybox", got, &g), 0);
    ck_assert_str_eq(calls[3].path, "/images/create?fromImage=busybox%3Alatest"); /* one tag */
    ck_assert_int_eq(calls[3].timeout_ms, 600000);
    answer(3, 200, 0, "{\"status\":\"Pulling\"}\n{\"error\":\"no such host\"}\n");
    ck_assert_int_eq(g.outcome, RT_FAILED);
    ck_assert_str_eq(g.message, "no such host");
    ck_assert_int_eq(rt.ops->pull_image(rt.rt, "busybox@sha256:ab", got, &g), 0);
    ck_assert_str_eq(calls[4].path, "/images/create?fromImage=busybox%40sha256%3Aab");
    answer(4, 200, 0, "{\"status\":\"Downloaded\"}\n");
    ck_assert_int_eq(g.outcome, RT_OK);

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

static Suite *runtime_docker_suite(void)
{
    Suite *s = suite_create("runtime_docker");
    TCase *tc = tcase_create("ops");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, list_and_watch);
    tcase_add_test(tc, inspect);
    tcase_add_test(tc, create_start_stop_remove);
    tcase_add_test(tc, images_and_version);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(runtime_docker_suite());
}
