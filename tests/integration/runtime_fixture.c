/* runtime_fixture.c: see runtime_fixture.h. */
#include "runtime_fixture.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/util.h"
#include "runtime_docker.h"

struct enginectl *engine;
struct lws_context *lws;
struct lws_vhost *rtfx_vhost;
struct runtime rt;
static lws_sorted_usec_list_t tick_sul;

static void tick(lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(lws, 0, sul, tick, 10 * LWS_US_PER_MS); /* lws_service returns often */
}

/* The node of the set-up: its label marks the containers made here as the test's. */
static char fixture_node[64];

void rtfx_setup_node(const char *node)
{
    static struct lws_protocols list[2]; /* engine_protocol, then the end of the list */
    struct lws_context_creation_info info;
    struct runtime_docker_config cfg = {NULL, node, ENGINECTL_PAUSE_IMAGE, 0, 0};
    int rc = enginectl_start(&engine);

    ck_assert_msg(rc == 0, "enginectl_start: %s", kedge_errname(rc));
    /* an engine the test attached to (KEDGE_TEST_ENGINE_SOCKET) loses only this node's */
    ck_assert_int_eq(enginectl_claim_node(engine, node), 0);
    snprintf(fixture_node, sizeof(fixture_node), "%s", node);
    list[0] = engine_protocol;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = list;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    lws = lws_create_context(&info);
    ck_assert_ptr_nonnull(lws);
    info.vhost_name = "local";
    rtfx_vhost = lws_create_vhost(lws, &info);
    ck_assert_ptr_nonnull(rtfx_vhost);
    lws_sul_schedule(lws, 0, &tick_sul, tick, 10 * LWS_US_PER_MS);
    cfg.socket_path = enginectl_socket(engine);
    ck_assert_int_eq(runtime_docker_new(lws, rtfx_vhost, &cfg, &rt), 0);
}

void rtfx_teardown(void)
{
    rt.ops->stop(rt.rt);
    lws_sul_cancel(&tick_sul);
    lws_context_destroy(lws);
    rt.ops->free(rt.rt);
    enginectl_free(engine);
    engine = NULL;
    lws = NULL;
}

bool spin_until(const bool *flag, int ms)
{
    uint64_t end = kedge_now_ms() + (uint64_t)enginectl_scale_ms(ms);

    while (!(flag && *flag) && kedge_now_ms() < end)
        lws_service(lws, 0);
    return flag && *flag;
}

void run_container_with(const char *name, const char *script, const char *extra, char *id,
                        size_t id_len)
{
    struct kedge_buf body = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *v;
    char path[256];
    int status = -1;

    ck_assert_int_eq(kedge_buf_printf(&body,
                                      "{\"Image\":\"%s\",\"Cmd\":[\"sh\",\"-c\",\"%s\"],"
                                      "\"Labels\":{\"io.kedge.node\":\"%s\"},"
                                      "\"HostConfig\":{\"NetworkMode\":\"none\"}%s}",
                                      ENGINECTL_BUSYBOX_IMAGE, script, fixture_node, extra),
                     0);
    snprintf(path, sizeof(path), ENGINECTL_API "/containers/create?name=%s", name);
    ck_assert_int_eq(enginectl_http_json(engine, "POST", path, body.data, &status, &doc), 0);
    ck_assert_int_eq(status, 201);
    v = kedge_json_get(kedge_jdoc_root(doc), "Id");
    ck_assert(v && v->type == KEDGE_JSTR);
    snprintf(id, id_len, "%s", v->str);
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&body);
    snprintf(path, sizeof(path), ENGINECTL_API "/containers/%s/start", id);
    ck_assert_int_eq(enginectl_http(engine, "POST", path, NULL, &status, NULL), 0);
    ck_assert_int_eq(status, 204);
}

void run_container(const char *name, const char *script, char *id, size_t id_len)
{
    run_container_with(name, script, "", id, id_len);
}
