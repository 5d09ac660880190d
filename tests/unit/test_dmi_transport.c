/* cloudbridge/dmi/transport.c on a real lws loop: a plain grpc_fd client calls the served socket,
 * and dmi_call reaches a grpc_fd server in the same process. Every turn services the loop once
 * (a 2 ms tick makes it return) and pumps the plain connections once.
 */
#define _GNU_SOURCE /* accept4 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grpc_fd.h"
#include "kedge/util.h"
#include "kubeedge/dmi/v1beta1/api.pb-c.h"
#include "transport.h"
#include "unit.h"

#define MR "/v1beta1.DeviceManagerService/MapperRegister"

struct world {
    struct lws_context *lws;
    struct lws_vhost *vhost;
    lws_sorted_usec_list_t tick;
    struct dmi_transport *t;
    char dir[64], sub[80], sock[96], mapper_sock[96];
    /* the served side */
    uint64_t call;
    char service[64], method[64];
    int requests;
    bool reply_now;
    /* a plain client */
    int cfd;
    struct grpc_conn *cli;
    int answers, code;
    char message[64];
    char model[64];
    /* a plain mapper server */
    int lfd, mfd;
    struct grpc_conn *msrv;
    bool mapper_holds;
    /* dmi_call's outcome */
    int dones, done_code;
    char done_message[64], done_name[64];
};

static void tick(lws_sorted_usec_list_t *sul)
{
    struct world *w = lws_container_of(sul, struct world, tick);

    lws_sul_schedule(w->lws, 0, sul, tick, 2 * LWS_US_PER_MS);
}

static void on_request(void *ctx, uint64_t call, const char *service, const char *method,
                       const uint8_t *msg, size_t len)
{
    struct world *w = ctx;
    V1beta1__MapperRegisterResponse resp = V1BETA1__MAPPER_REGISTER_RESPONSE__INIT;
    V1beta1__MapperRegisterRequest *req = v1beta1__mapper_register_request__unpack(NULL, len, msg);

    ck_assert_ptr_nonnull(req);
    w->requests++;
    w->call = call;
    (void)snprintf(w->service, sizeof(w->service), "%s", service);
    (void)snprintf(w->method, sizeof(w->method), "%s", method);
    if (w->reply_now)
        ck_assert_int_eq(dmi_reply(w->t, call, GRPC_OK, NULL, &resp.base), 0);
    v1beta1__mapper_register_request__free_unpacked(req, NULL);
}

static void cli_response(void *ctx, struct grpc_conn *c, void *tag, int code, const char *message,
                         const uint8_t *msg, size_t len)
{
    struct world *w = ctx;

    (void)c;
    (void)tag;
    w->answers++;
    w->code = code;
    (void)snprintf(w->message, sizeof(w->message), "%s", message);
    if (code == GRPC_OK) {
        V1beta1__MapperRegisterResponse *r =
            v1beta1__mapper_register_response__unpack(NULL, len, msg);
        ck_assert_ptr_nonnull(r);
        (void)snprintf(w->model, sizeof(w->model), "%s",
                       r->n_modellist ? r->modellist[0]->name : "");
        v1beta1__mapper_register_response__free_unpacked(r, NULL);
    }
}

/* The mapper: answers UpdateDevice with a GetDeviceResponse-free empty message, unless held. */
static void mapper_request(void *ctx, struct grpc_conn *c, int32_t stream, const char *path,
                           const uint8_t *msg, size_t len)
{
    struct world *w = ctx;
    V1beta1__MapperRegisterResponse resp = V1BETA1__MAPPER_REGISTER_RESPONSE__INIT;
    V1beta1__DeviceModel model = V1BETA1__DEVICE_MODEL__INIT, *models[1] = {&model};

    (void)msg;
    (void)len;
    ck_assert_str_eq(path, "/v1beta1.DeviceMapperService/UpdateDevice");
    if (w->mapper_holds)
        return;
    model.name = "from-mapper";
    resp.n_modellist = 1;
    resp.modellist = models;
    ck_assert_int_eq(grpc_reply(c, stream, GRPC_OK, NULL, &resp.base), 0);
}

static const struct grpc_conn_ops cli_ops = {NULL, NULL, cli_response};
static const struct grpc_conn_ops mapper_ops = {mapper_request, NULL, NULL};

static void call_done(void *ctx, int code, const char *message, const ProtobufCMessage *resp)
{
    struct world *w = ctx;

    w->dones++;
    w->done_code = code;
    (void)snprintf(w->done_message, sizeof(w->done_message), "%s", message ? message : "");
    if (resp)
        (void)snprintf(w->done_name, sizeof(w->done_name), "%s",
                       ((const V1beta1__MapperRegisterResponse *)resp)->modellist[0]->name);
}

static void turn(struct world *w)
{
    lws_service(w->lws, 0);
    if (w->cli && grpc_fd_pump(w->cli, w->cfd, 0) < 0) {
        grpc_conn_free(w->cli);
        close(w->cfd);
        w->cli = NULL;
    }
    if (w->lfd >= 0 && !w->msrv) {
        w->mfd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK);
        if (w->mfd >= 0)
            ck_assert_int_eq(grpc_conn_new(true, &mapper_ops, w, NULL, &w->msrv), 0);
    }
    if (w->msrv && grpc_fd_pump(w->msrv, w->mfd, 0) < 0) {
        grpc_conn_free(w->msrv);
        close(w->mfd);
        w->msrv = NULL;
    }
}

#define SPIN_UNTIL(w, cond)                                                                        \
    do {                                                                                           \
        uint64_t end_ = kedge_now_ms() + 10000;                                                    \
        while (!(cond) && kedge_now_ms() < end_)                                                   \
            turn(w);                                                                               \
        ck_assert_msg((cond), "never: %s", #cond);                                                 \
    } while (0)

static void setup_world(struct world *w, long timeout_ms)
{
    static struct lws_protocols list[2];
    struct lws_context_creation_info info;
    struct dmi_transport_config cfg = {NULL, 0660, 0, timeout_ms};

    memset(w, 0, sizeof(*w));
    w->lfd = w->cfd = w->mfd = -1;
    (void)snprintf(w->dir, sizeof(w->dir), "/tmp/kedge-unit-dmi-%d", (int)getpid());
    (void)snprintf(w->sub, sizeof(w->sub), "%s/sub", w->dir);
    (void)snprintf(w->sock, sizeof(w->sock), "%s/dmi.sock", w->sub);
    (void)snprintf(w->mapper_sock, sizeof(w->mapper_sock), "%s/mapper.sock", w->dir);
    list[0] = dmi_protocol;
    memset(&list[1], 0, sizeof(list[1]));
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = list;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    w->lws = lws_create_context(&info);
    ck_assert_ptr_nonnull(w->lws);
    info.vhost_name = "local";
    w->vhost = lws_create_vhost(w->lws, &info);
    ck_assert_ptr_nonnull(w->vhost);
    lws_sul_schedule(w->lws, 0, &w->tick, tick, 2 * LWS_US_PER_MS);
    cfg.socket_path = w->sock;
    ck_assert_int_eq(dmi_transport_new(w->lws, w->vhost, &cfg, on_request, w, &w->t), 0);
}

static void teardown_world(struct world *w)
{
    dmi_transport_free(w->t);
    grpc_conn_free(w->cli);
    grpc_conn_free(w->msrv);
    if (w->cfd >= 0)
        close(w->cfd);
    if (w->mfd >= 0)
        close(w->mfd);
    if (w->lfd >= 0)
        close(w->lfd);
    lws_sul_cancel(&w->tick);
    lws_context_destroy(w->lws);
    (void)unlink(w->mapper_sock);
    (void)rmdir(w->sub);
    (void)rmdir(w->dir);
}

static void client_call(struct world *w, const char *name)
{
    V1beta1__MapperRegisterRequest req = V1BETA1__MAPPER_REGISTER_REQUEST__INIT;
    V1beta1__MapperInfo info = V1BETA1__MAPPER_INFO__INIT;

    if (!w->cli) {
        w->cfd = grpc_fd_connect_unix(w->sock);
        ck_assert_int_ge(w->cfd, 0);
        ck_assert_int_eq(grpc_conn_new(false, &cli_ops, w, NULL, &w->cli), 0);
    }
    info.name = (char *)name;
    req.mapper = &info;
    ck_assert_int_eq(grpc_call(w->cli, MR, &req.base, w), 0);
}

START_TEST(served_socket_and_replies)
{
    struct world w;
    struct stat sb;
    V1beta1__MapperRegisterResponse resp = V1BETA1__MAPPER_REGISTER_RESPONSE__INIT;
    V1beta1__DeviceModel model = V1BETA1__DEVICE_MODEL__INIT, *models[1] = {&model};

    setup_world(&w, 10000);
    /* the directory was made; the socket has the mode */
    ck_assert_int_eq(stat(w.sock, &sb), 0);
    ck_assert(S_ISSOCK(sb.st_mode));
    ck_assert_int_eq(sb.st_mode & 0777, 0660);
    /* an answer now (inside the request callback) */
    w.reply_now = true;
    client_call(&w, "m1");
    SPIN_UNTIL(&w, w.answers == 1);
    ck_assert_str_eq(w.service, "v1beta1.DeviceManagerService");
    ck_assert_str_eq(w.method, "MapperRegister");
    ck_assert_int_eq(w.code, GRPC_OK);
    /* an answer later, with a message and an error status after that */
    w.reply_now = false;
    client_call(&w, "m2");
    SPIN_UNTIL(&w, w.requests == 2);
    model.name = "later";
    resp.n_modellist = 1;
    resp.modellist = models;
    ck_assert_int_eq(dmi_reply(w.t, w.call, GRPC_OK, NULL, &resp.base), 0);
    ck_assert_int_eq(dmi_reply(w.t, w.call, GRPC_OK, NULL, &resp.base), -ENOENT);
    SPIN_UNTIL(&w, w.answers == 2);
    ck_assert_str_eq(w.model, "later");
    client_call(&w, "m3");
    SPIN_UNTIL(&w, w.requests == 3);
    ck_assert_int_eq(dmi_reply(w.t, w.call, GRPC_NOT_FOUND, "no such device", NULL), 0);
    SPIN_UNTIL(&w, w.answers == 3);
    ck_assert_int_eq(w.code, GRPC_NOT_FOUND);
    ck_assert_str_eq(w.message, "no such device");
    /* the client goes away with a call open: the late answer goes nowhere */
    client_call(&w, "m4");
    SPIN_UNTIL(&w, w.requests == 4);
    grpc_conn_free(w.cli);
    w.cli = NULL;
    close(w.cfd);
    w.cfd = -1;
    for (int i = 0; i < 20; i++)
        turn(&w);
    ck_assert_int_eq(dmi_reply(w.t, w.call, GRPC_OK, NULL, &resp.base), -ENOENT);
    teardown_world(&w);
    ck_assert_int_ne(access(w.sock, F_OK), 0); /* removed */
}
END_TEST

START_TEST(calls_to_a_mapper)
{
    struct world w;
    V1beta1__MapperRegisterRequest req = V1BETA1__MAPPER_REGISTER_REQUEST__INIT;
    const ProtobufCMessageDescriptor *d = &v1beta1__mapper_register_response__descriptor;
    const char *path = "/v1beta1.DeviceMapperService/UpdateDevice";

    setup_world(&w, 300);
    w.lfd = grpc_fd_listen_unix(w.mapper_sock, 0600);
    ck_assert_int_ge(w.lfd, 0);
    ck_assert_int_eq(dmi_call(w.t, w.mapper_sock, path, &req.base, d, call_done, &w), 0);
    SPIN_UNTIL(&w, w.dones == 1);
    ck_assert_int_eq(w.done_code, GRPC_OK);
    ck_assert_str_eq(w.done_name, "from-mapper");
    /* a mapper that does not answer: the deadline */
    SPIN_UNTIL(&w, w.msrv == NULL); /* the first connection is closed by the bridge */
    w.mapper_holds = true;
    ck_assert_int_eq(dmi_call(w.t, w.mapper_sock, path, &req.base, d, call_done, &w), 0);
    SPIN_UNTIL(&w, w.dones == 2);
    ck_assert_int_eq(w.done_code, GRPC_DEADLINE_EXCEEDED);
    ck_assert_str_eq(w.done_message, "deadline exceeded");
    for (int i = 0; i < 20; i++)
        turn(&w);
    ck_assert_int_eq(w.dones, 2);
    /* no socket there */
    ck_assert_int_lt(dmi_call(w.t, "/nonexistent/x.sock", path, &req.base, d, call_done, &w), 0);
    ck_assert_int_eq(w.dones, 2);
    /* freed with a call open: answered UNAVAILABLE, once */
    SPIN_UNTIL(&w, w.msrv == NULL);
    ck_assert_int_eq(dmi_call(w.t, w.mapper_sock, path, &req.base, d, call_done, &w), 0);
    SPIN_UNTIL(&w, w.msrv != NULL);
    dmi_transport_free(w.t);
    w.t = NULL;
    ck_assert_int_eq(w.dones, 3);
    ck_assert_int_eq(w.done_code, GRPC_UNAVAILABLE);
    for (int i = 0; i < 20; i++)
        turn(&w);
    ck_assert_int_eq(w.dones, 3);
    teardown_world(&w);
}
END_TEST

static Suite *transport_suite(void)
{
    Suite *s = suite_create("dmi_transport");
    TCase *tc = tcase_create("dmi_transport");

    tcase_add_test(tc, served_socket_and_replies);
    tcase_add_test(tc, calls_to_a_mapper);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    return unit_run(transport_suite());
}
