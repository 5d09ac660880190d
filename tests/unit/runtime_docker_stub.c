/* runtime_docker_stub.c: the engine stub of unit_runtime_docker (runtime_docker_stub.h). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "runtime_docker_stub.h"
#include "unit.h"

/* ---- the engine stub ----------------------------------------------------------------------- */

struct call calls[16];
int n_calls;
static int fake_engine;
char watch_path[512];

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

struct engine_stream_stub es;
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

struct pull_stub pulled;

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

void feed(const char *b, size_t len)
{
    ck_assert(!es.cancelled);
    es.fns->data(es.ctx, b, len);
}

void stream_end(int status, int err, const char *body)
{
    struct engine_reply r = {status, err, body, strlen(body)};

    es.fns->done(es.ctx, &r);
}

void answer(int i, int status, int err, const char *body)
{
    struct engine_reply r = {status, err, body, strlen(body)};

    ck_assert_int_lt(i, n_calls);
    calls[i].done(calls[i].ctx, &r);
}

/* ---- what the runtime answered ------------------------------------------------------------- */

void got(void *ctx, const struct runtime_result *r)
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

struct runtime rt;
bool rt_freed;

void setup(void)
{
    const struct runtime_docker_config cfg = {"/run/podman.sock", "node1", "localhost/pause:3.9", 0,
                                              0};

    n_calls = 0;
    memset(&es, 0, sizeof(es));
    unit_count_allocs();
    ck_assert_int_eq(runtime_docker_new(NULL, NULL, &cfg, &rt), 0);
}

void teardown(void)
{
    if (!rt_freed) /* a test may free it itself */
        rt.ops->free(rt.rt);
    rt_freed = false;
    ck_assert_int_eq(unit_live_blocks, 0);
}
