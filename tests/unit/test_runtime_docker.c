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

/* The one stream open at a time (logs): what was asked, and the test feeds it. */
static struct {
    int n;
    char path[512];
    const struct engine_stream_fns *fns;
    void *ctx;
    bool cancelled, paused;
    int refuse; /* an error: done is called inside engine_stream, as a refused connect does */
} es;
static char fake_req;

int engine_stream(struct engine *e, const char *path, int timeout_ms,
                  const struct engine_stream_fns *fns, void *ctx, struct engine_req **req)
{
    struct engine_reply r = {0, es.refuse, "", 0};

    ck_assert_ptr_eq(e, &fake_engine);
    ck_assert_int_eq(timeout_ms, 0);
    es.n++;
    snprintf(es.path, sizeof(es.path), "%s", path);
    es.fns = fns;
    es.ctx = ctx;
    es.cancelled = false;
    *req = NULL;
    if (es.refuse) {
        fns->done(ctx, &r);
        return 0;
    }
    *req = (struct engine_req *)&fake_req;
    return 0;
}

/* A pull: a POST stream with its headers, recorded; the test answers through es. */
static struct {
    char method[8], path[512], auth[1024];
    size_t n_headers;
} pulled;

int engine_stream_call(struct engine *e, const struct engine_call *call,
                       const struct engine_stream_fns *fns, void *ctx, struct engine_req **req)
{
    snprintf(pulled.method, sizeof(pulled.method), "%s", call->method);
    pulled.n_headers = call->n_headers;
    pulled.auth[0] = '\0';
    if (call->n_headers) {
        ck_assert_str_eq(call->headers[0].name, "X-Registry-Auth");
        snprintf(pulled.auth, sizeof(pulled.auth), "%s", call->headers[0].value);
    }
    ck_assert_int_gt(call->timeout_ms, 60000); /* the engine may resolve long before it answers */
    es.refuse = 0;
    return engine_stream(e, call->path, 0, fns, ctx, req);
}

void engine_cancel(struct engine *e, struct engine_req *req)
{
    ck_assert_ptr_eq(e, &fake_engine);
    ck_assert_ptr_eq(req, &fake_req);
    es.cancelled = true;
}

void engine_pause(struct engine *e, struct engine_req *req, bool pause)
{
    ck_assert_ptr_eq(e, &fake_engine);
    ck_assert_ptr_eq(req, &fake_req);
    es.paused = pause;
}

/* engine_hijack.c's connections are adopted under engine.c's protocol (not linked here) */
const struct lws_protocols engine_protocol = {"kedge-engine", NULL, 0, 0, 0, NULL, 0};

static void feed(const char *b, size_t len)
{
    ck_assert(!es.cancelled);
    es.fns->data(es.ctx, b, len);
}

static void stream_end(int status, int err, const char *body)
{
    struct engine_reply r = {status, err, body, strlen(body)};

    es.fns->done(es.ctx, &r);
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
static bool rt_freed;

static void setup(void)
{
    const struct runtime_docker_config cfg = {"/run/podman.sock", "node1", "localhost/pause:3.9", 0,
                                              0};

    n_calls = 0;
    memset(&es, 0, sizeof(es));
    unit_count_allocs();
    ck_assert_int_eq(runtime_docker_new(NULL, NULL, &cfg, &rt), 0);
}

static void teardown(void)
{
    if (!rt_freed) /* a test may free it itself */
        rt.ops->free(rt.rt);
    rt_freed = false;
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

/* What a logs call delivered: the bytes tagged with their stream ("1" stdout, "2" stderr) each
 * time the stream changes, so pieces cut anywhere read the same. */
struct logs_got {
    char text[512];
    size_t len;
    int last_stream, chunks, ends, err;
    char message[256];
    long cancel_in_chunk; /* a handle to cancel from inside the first chunk */
    long pause_in_chunk;  /* a handle to pause from inside the first chunk */
    struct runtime *rt;
};

static void log_chunk(void *ctx, enum runtime_log_stream stream, const char *b, size_t n)
{
    struct logs_got *g = ctx;

    ck_assert(stream == RT_STDOUT || stream == RT_STDERR);
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(g->ends, 0);
    if ((int)stream != g->last_stream) {
        ck_assert_uint_lt(g->len, sizeof(g->text) - 1);
        g->text[g->len++] = stream == RT_STDERR ? '2' : '1';
        g->last_stream = (int)stream;
    }
    ck_assert_uint_lt(g->len + n, sizeof(g->text));
    memcpy(g->text + g->len, b, n);
    g->len += n;
    g->text[g->len] = '\0';
    g->chunks++;
    if (g->cancel_in_chunk) {
        g->rt->ops->logs_cancel(g->rt->rt, g->cancel_in_chunk);
        g->cancel_in_chunk = 0;
    }
    if (g->pause_in_chunk) {
        g->rt->ops->logs_pause(g->rt->rt, g->pause_in_chunk, true);
        g->pause_in_chunk = 0;
    }
}

static void log_end(void *ctx, int err, const char *message)
{
    struct logs_got *g = ctx;

    g->ends++;
    g->err = err;
    snprintf(g->message, sizeof(g->message), "%s", message);
}

static const struct runtime_log_options all_logs = {false, -1, 0, false};

/* A Docker frame: [stream, 0, 0, 0, len BE32] + payload, appended to out at *len. */
static void frame(char *out, size_t *len, int stream, const char *payload)
{
    size_t n = strlen(payload);

    out[(*len)++] = (char)stream;
    out[(*len)++] = 0;
    out[(*len)++] = 0;
    out[(*len)++] = 0;
    out[(*len)++] = (char)(n >> 24);
    out[(*len)++] = (char)(n >> 16);
    out[(*len)++] = (char)(n >> 8);
    out[(*len)++] = (char)n;
    memcpy(out + *len, payload, n);
    *len += n;
}

START_TEST(logs_path)
{
    const struct runtime_log_options o = {true, 10, 1700000000, true};
    struct logs_got g = {0};

    ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &o, log_chunk, log_end, &g), 0);
    ck_assert_str_eq(es.path, "/containers/b2/logs?stdout=1&stderr=1&follow=1&tail=10"
                              "&since=1700000000&timestamps=1");
    stream_end(200, 0, "");
    ck_assert_int_eq(g.ends, 1);
    ck_assert_int_eq(g.err, 0);
    ck_assert_int_eq(g.chunks, 0);

    memset(&g, 0, sizeof(g));
    ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g), 0);
    ck_assert_str_eq(es.path, "/containers/b2/logs?stdout=1&stderr=1&follow=0&tail=all"
                              "&since=0&timestamps=0");
    stream_end(200, 0, "");

    /* an id that cannot be one never reaches a path */
    ck_assert_int_eq(rt.ops->logs(rt.rt, "../images", &all_logs, log_chunk, log_end, &g), -ENOENT);
    ck_assert_int_eq(es.n, 2);
}
END_TEST

START_TEST(logs_framing_split_everywhere)
{
    char body[128];
    size_t len = 0;

    frame(body, &len, 1, "hello\n");
    frame(body, &len, 2, "oops\n");
    frame(body, &len, 1, "bye\n");
    frame(body, &len, 1, "");
    frame(body, &len, 2, "last");
    for (size_t k = 0; k <= len; k++) {
        struct logs_got g = {0};

        ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g), 0);
        feed(body, k); /* may be empty: the engine never calls with 0, but it must not matter */
        feed(body + k, len - k);
        stream_end(200, 0, "");
        ck_assert_str_eq(g.text, "1hello\n2oops\n1bye\n2last");
        ck_assert_int_eq(g.ends, 1);
        ck_assert_int_eq(g.err, 0);
    }
    {
        struct logs_got g = {0}; /* every byte a read of its own */

        ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g), 0);
        for (size_t k = 0; k < len; k++)
            feed(body + k, 1);
        stream_end(200, 0, "");
        ck_assert_str_eq(g.text, "1hello\n2oops\n1bye\n2last");
    }
}
END_TEST

START_TEST(logs_frames_in_one_read)
{
    struct logs_got g = {0};
    char body[64];
    size_t len = 0;

    frame(body, &len, 2, "err line\n");
    frame(body, &len, 1, "out line\n");
    ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g), 0);
    feed(body, len);
    ck_assert_int_eq(g.chunks, 2); /* one chunk per frame, each on its own stream */
    ck_assert_str_eq(g.text, "2err line\n1out line\n");
    ck_assert_int_eq(g.ends, 0); /* a follow stays open until the engine ends it */
    stream_end(200, 0, "");
    ck_assert_int_eq(g.ends, 1);
}
END_TEST

START_TEST(logs_raw_tty)
{
    struct logs_got g = {0};
    static const char tty[] = "$ ls\r\nbin  etc\r\n";

    ck_assert_int_gt(rt.ops->logs(rt.rt, "t1", &all_logs, log_chunk, log_end, &g), 0);
    feed(tty, 3); /* less than a header: held until it can tell */
    ck_assert_int_eq(g.chunks, 0);
    feed(tty + 3, strlen(tty) - 3);
    stream_end(200, 0, "");
    ck_assert_str_eq(g.text, "1$ ls\r\nbin  etc\r\n");
    ck_assert_int_eq(g.err, 0);

    memset(&g, 0, sizeof(g)); /* output shorter than a header, then the end */
    ck_assert_int_gt(rt.ops->logs(rt.rt, "t1", &all_logs, log_chunk, log_end, &g), 0);
    feed("ok\n", 3);
    stream_end(200, 0, "");
    ck_assert_str_eq(g.text, "1ok\n");
    ck_assert_int_eq(g.ends, 1);
}
END_TEST

START_TEST(logs_errors)
{
    struct logs_got g = {0};
    long h;

    ck_assert_int_gt(rt.ops->logs(rt.rt, "gone", &all_logs, log_chunk, log_end, &g), 0);
    stream_end(404, 0, "{\"message\":\"no such container\"}");
    ck_assert_int_eq(g.err, -ENOENT);
    ck_assert_str_eq(g.message, "no such container");
    ck_assert_int_eq(g.chunks, 0);

    memset(&g, 0, sizeof(g));
    ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g), 0);
    stream_end(500, 0, "{\"message\":\"failed to read log file\"}");
    ck_assert_int_eq(g.err, -EIO);
    ck_assert_str_eq(g.message, "failed to read log file");

    memset(&g, 0, sizeof(g)); /* refused at once: end before the call returns, handle valid */
    es.refuse = -ECONNREFUSED;
    h = rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g);
    ck_assert_int_gt(h, 0);
    ck_assert_int_eq(g.ends, 1);
    ck_assert_int_eq(g.err, -ECONNREFUSED);
    ck_assert_ptr_nonnull(strstr(g.message, "container runtime is not reachable: "));
    rt.ops->logs_cancel(rt.rt, h); /* after the end: nothing */
    es.refuse = 0;

    memset(&g, 0, sizeof(g)); /* the runtime is freed with the stream open */
    ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g), 0);
    feed("\1\0\0\0\0\0\0\3ab", 10);
    stream_end(0, -ECANCELED, "");
    ck_assert_int_eq(g.err, -ECANCELED);
    ck_assert_str_eq(g.text, "1ab");
}
END_TEST

START_TEST(logs_cancel)
{
    const struct runtime_log_options follow = {true, -1, 0, false};
    struct logs_got g = {0}, g2 = {0};
    char body[64];
    size_t len = 0;
    long h;

    frame(body, &len, 1, "one\n");
    frame(body, &len, 1, "two\n");
    h = rt.ops->logs(rt.rt, "b2", &follow, log_chunk, log_end, &g);
    ck_assert_int_gt(h, 0);
    feed(body, 10);
    rt.ops->logs_cancel(rt.rt, h);
    ck_assert(es.cancelled);
    ck_assert_str_eq(g.text, "1on");
    ck_assert_int_eq(g.ends, 0); /* a cancelled stream ends without end */

    /* from inside a chunk: the frame after it in the same read is not delivered */
    h = rt.ops->logs(rt.rt, "b2", &follow, log_chunk, log_end, &g2);
    g2.cancel_in_chunk = h;
    g2.rt = &rt;
    feed(body, len);
    ck_assert(es.cancelled);
    ck_assert_int_eq(g2.chunks, 1);
    ck_assert_str_eq(g2.text, "1one\n");
    ck_assert_int_eq(g2.ends, 0);
    rt.ops->logs_cancel(rt.rt, h); /* twice: nothing */
}
END_TEST

START_TEST(logs_pause)
{
    const struct runtime_log_options follow = {true, -1, 0, false};
    struct logs_got g = {0};
    long h = rt.ops->logs(rt.rt, "b2", &follow, log_chunk, log_end, &g);

    ck_assert_int_gt(h, 0);
    /* paused: what comes is held, and the connection is read on up to 4 MB held */
    rt.ops->logs_pause(rt.rt, h, true);
    ck_assert(!es.paused);
    {
        static char big[1 << 20];
        char head[8] = {1, 0, 0, 0, 0, 0x50, 0, 0}; /* stdout, 5 MB */

        feed(head, 8);
        for (int i = 0; i < 3; i++)
            feed(big, sizeof(big));
        feed(big, sizeof(big) - 8); /* 4 MB held with the header */
        ck_assert(!es.paused);
        feed(big, 1);
        ck_assert(es.paused); /* past 4 MB: not read any more */
        ck_assert_int_eq(g.chunks, 0);
        rt.ops->logs_pause(rt.rt, h + 100, true); /* no such stream: nothing */
        g.len = sizeof(g.text); /* log_chunk would keep the bytes; they are not looked at */
    }
    rt.ops->logs_cancel(rt.rt, h);

    /* paused from inside a chunk: the rest of that read waits, and the end behind it */
    {
        struct logs_got p = {0};
        char body[64];
        size_t len = 0;

        frame(body, &len, 1, "one\n");
        frame(body, &len, 2, "two\n");
        h = rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &p);
        p.pause_in_chunk = h;
        p.rt = &rt;
        feed(body, len);
        ck_assert(es.paused);
        ck_assert_str_eq(p.text, "1one\n");
        stream_end(200, 0, "");
        ck_assert_int_eq(p.ends, 0);
        rt.ops->logs_pause(rt.rt, h, false);
        ck_assert_str_eq(p.text, "1one\n2two\n");
        ck_assert_int_eq(p.ends, 1);
        ck_assert_int_eq(p.err, 0);

        /* and the runtime freed meanwhile: the end comes, cancelled */
        memset(&p, 0, sizeof(p));
        h = rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &p);
        p.pause_in_chunk = h;
        p.rt = &rt;
        feed(body, len);
        stream_end(200, 0, "");
        ck_assert_int_eq(p.ends, 0);
        rt.ops->free(rt.rt);
        rt_freed = true;
        ck_assert_int_eq(p.ends, 1);
        ck_assert_int_eq(p.err, -ECANCELED);
        ck_assert_str_eq(p.text, "1one\n");
    }
}
END_TEST

/* What a session delivered. */
struct sess_got {
    int ends, err, exit_code;
    char message[512];
};

static void sess_output(void *ctx, enum runtime_log_stream s, const char *b, size_t n)
{
    (void)ctx;
    (void)s;
    (void)b;
    (void)n;
    ck_abort_msg("no output expected");
}

static void sess_end(void *ctx, int err, int exit_code, const char *message)
{
    struct sess_got *g = ctx;

    g->ends++;
    g->err = err;
    g->exit_code = exit_code;
    snprintf(g->message, sizeof(g->message), "%s", message);
}

static const struct runtime_session_fns sess_fns = {sess_output, sess_end};

/* The exec's create: its body, and the engine's refusals as the session's end. */
START_TEST(exec_session_create)
{
    char *argv[] = {"sh", "-c", "echo \"hi\""};
    const struct runtime_stdio io = {true, true, false, true};
    struct sess_got g = {0};
    long h;

    h = rt.ops->exec_session(rt.rt, "c1", argv, 3, &io, &sess_fns, &g);
    ck_assert_int_gt(h, 0);
    ck_assert_int_eq(n_calls, 1);
    ck_assert_str_eq(calls[0].method, "POST");
    ck_assert_str_eq(calls[0].path, "/containers/c1/exec");
    ck_assert_str_eq(calls[0].body, "{\"AttachStdin\":true,\"AttachStdout\":true,"
                                    "\"AttachStderr\":false,\"Tty\":true,"
                                    "\"Cmd\":[\"sh\",\"-c\",\"echo \\\"hi\\\"\"]}");
    /* stdin and a resize before the exec runs wait for it; then the engine says no */
    ck_assert_int_eq(rt.ops->session_stdin(rt.rt, h, "x", 1), 0);
    ck_assert_int_eq(rt.ops->session_resize(rt.rt, h, 80, 24), 0);
    answer(0, 404, 0, "{\"message\":\"No such container: c1\"}");
    ck_assert_int_eq(g.ends, 1);
    ck_assert_int_eq(g.err, -ENOENT);
    ck_assert_str_eq(g.message, "No such container: c1");
    ck_assert_int_eq(rt.ops->session_stdin(rt.rt, h, "x", 1), -ENOENT); /* over */
    ck_assert_int_eq(n_calls, 1);

    memset(&g, 0, sizeof(g)); /* the engine is down */
    h = rt.ops->exec_session(rt.rt, "c1", argv, 1, &io, &sess_fns, &g);
    answer(1, 0, -ECONNREFUSED, "");
    ck_assert_int_eq(g.err, -ECONNREFUSED);
    ck_assert_ptr_nonnull(strstr(g.message, "container runtime is not reachable"));

    memset(&g, 0, sizeof(g)); /* cancelled before the engine answered: no end after */
    h = rt.ops->exec_session(rt.rt, "c1", argv, 1, &io, &sess_fns, &g);
    rt.ops->session_cancel(rt.rt, h);
    answer(2, 201, 0, "{\"Id\":\"e1\"}");
    ck_assert_int_eq(g.ends, 0);
    ck_assert_int_eq(n_calls, 3); /* and nothing started */

    memset(&g, 0, sizeof(g)); /* the runtime is freed while the create is in flight */
    h = rt.ops->exec_session(rt.rt, "c1", argv, 1, &io, &sess_fns, &g);
    answer(3, 0, -ECANCELED, "");
    ck_assert_int_eq(g.err, -ECANCELED);

    ck_assert_int_eq(rt.ops->exec_session(rt.rt, "../x", argv, 1, &io, &sess_fns, &g), -ENOENT);
    ck_assert_int_eq(rt.ops->exec_session(rt.rt, "c1", argv, 0, &io, &sess_fns, &g), -EINVAL);
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
    tcase_add_test(tc, pull_streams);
    suite_add_tcase(s, tc);
    tc = tcase_create("logs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, logs_path);
    tcase_add_test(tc, logs_framing_split_everywhere);
    tcase_add_test(tc, logs_frames_in_one_read);
    tcase_add_test(tc, logs_raw_tty);
    tcase_add_test(tc, logs_errors);
    tcase_add_test(tc, logs_cancel);
    tcase_add_test(tc, logs_pause);
    tcase_add_test(tc, exec_session_create);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(runtime_docker_suite());
}
