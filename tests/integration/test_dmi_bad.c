/* test_dmi_bad.c: bad input on DMI (test_dmi.c says how the suite runs): garbage bytes on
 * kedge's socket, an oversize message, a mapper that hangs, one that dies in the middle of
 * kedge's call, one that dies in the middle of its own, and no link from the bridge to the
 * plugin. Each answered or contained where it happens; the bridge's loop goes on serving the
 * mapper that behaves (its reports, the cloud's changes) and EdgeHub's keepalives. */
#define _GNU_SOURCE

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "test_dmi.h"

/* Bytes that are not HTTP/2 on kedge's socket: kedge hangs up (after its GOAWAY, if any). */
static void garbage_is_refused(void)
{
    static const char junk[] = "GET / HTTP/1.1\r\nHost: kedge\r\n\r\n\x16\x03\x01\x00\xff\xfe"
                               "not a preface at all, just bytes";
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    char buf[512];
    ssize_t r = 1;

    ck_assert_int_ge(fd, 0);
    ck_assert_uint_lt(strlen(dmi_sock), sizeof(a.sun_path));
    memcpy(a.sun_path, dmi_sock, strlen(dmi_sock) + 1);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(write(fd, junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
    while (r > 0) {
        struct pollfd pf = {fd, POLLIN, 0};

        ck_assert_msg(poll(&pf, 1, kt_remaining_ms(deadline)) > 0,
                      "kedge kept a connection that sent garbage");
        r = read(fd, buf, sizeof(buf));
    }
    (void)close(fd);
}

/* A mapper of its own protocol with one device, registered. */
static struct mapperctl *lone_mapper(enum mapper_kind k, const char *name, const char *proto,
                                     const char *dev)
{
    const char *const devs[] = {dev, NULL};
    char model[64];
    struct mapperctl *m;

    (void)snprintf(model, sizeof(model), "%s-model", dev);
    const char *const models[] = {model, NULL};

    cloud_model("insert", model, proto, false);
    cloud_add_device(dev, model, proto, "1");
    m = mapper_up(k, name, proto);
    kedge_jdoc_free(mapper_register(m, devs, models));
    return m;
}

/* Whether the bridge logged a dmi line after mark (within the usual deadline); what it did not
 * log is collected in *unlogged for one assertion at the end. */
static void logged(long mark, const char *what, struct kedge_buf *unlogged)
{
    if (bridgectl_wait_log(bridge, mark, "dmi: ", WAIT_MS) < 0)
        ck_assert_int_eq(kedge_buf_printf(unlogged, " %s", what), 0);
}

static void command_ok(struct mapperctl *m, const char *cmd)
{
    ck_assert_int_eq(mapperctl_send(m, "%s", cmd), 0);
    ck_assert_int_eq(mapperctl_wait(m, "ok", NULL, WAIT_MS, NULL), 0);
}

START_TEST(test_bad_input)
{
    static const struct route_sel keepalive = {NULL, NULL, "keepalive", NULL};
    enum mapper_kind k = (enum mapper_kind)_i;
    struct mapperctl *m, *h, *f, *x;
    long long since = -1;
    int code;
    struct kedge_buf unlogged = KEDGE_BUF_INIT;
    long mark;

    if (!dmi_kind_runs(k))
        return;
    m = thermo_mapper_up(k);

    /* garbage on kedge's socket: refused, one log line */
    mark = bridgectl_log_mark(bridge);
    garbage_is_refused();
    logged(mark, "garbage", &unlogged);
    ck_assert_int_eq(mapper_report(m, "thermo", "25", NULL), GRPC_OK);

    /* a message over dmi_max_msg_bytes (4 MiB): RESOURCE_EXHAUSTED, one log line */
    mark = bridgectl_log_mark(bridge);
    code = mapperctl_call(m, "report", NULL, "oversize thermo %d", 5 * 1024 * 1024);
    ck_assert_msg(code == GRPC_RESOURCE_EXHAUSTED, "an oversize report: %d", code);
    logged(mark, "oversize", &unlogged);
    ck_assert_int_eq(mapper_report(m, "thermo", "26", NULL), GRPC_OK);

    /* a mapper that hangs while kedge calls it: the rest goes on */
    h = lone_mapper(k, "hang", "kedge-hang", "stuck");
    command_ok(h, "hang");
    mark = bridgectl_log_mark(bridge);
    free(cloud_wait(&since, &keepalive));
    cloud_device("update", "stuck", "stuck-model", "kedge-hang", "33");
    ck_assert_int_eq(mapper_report(m, "thermo", "27", NULL), GRPC_OK);
    cloud_device("update", "thermo", MODEL, PROTO, "35");
    mapper_wait_desired(m, "UpdateDevice", "thermo", "35");
    free(cloud_wait(&since, &keepalive));
    free(cloud_wait(&since, &keepalive));
    wait_bridge_log(mark, "UpdateDevice stuck to hang failed");
    command_ok(h, "resume");
    ck_assert_int_eq(mapperctl_stop(h), 0);
    mapperctl_free(h);

    /* a mapper that dies in the middle of kedge's call */
    f = lone_mapper(k, "fragile", "kedge-die", "fragile");
    command_ok(f, "die-on UpdateDevice");
    mark = bridgectl_log_mark(bridge);
    cloud_device("update", "fragile", "fragile-model", "kedge-die", "9");
    ck_assert_int_eq(mapperctl_wait(f, "dying", NULL, WAIT_MS, NULL), 0);
    ck_assert_int_eq(mapperctl_wait_exit(f, WAIT_MS), 3);
    mapperctl_free(f);
    wait_bridge_log(mark, "UpdateDevice fragile to fragile failed");
    ck_assert_int_eq(mapper_report(m, "thermo", "28", NULL), GRPC_OK);

    /* a mapper that dies in the middle of its own call */
    x = mapper_up(k, "half", "kedge-half");
    mark = bridgectl_log_mark(bridge);
    ck_assert_int_eq(mapperctl_send(x, "half-report thermo"), 0);
    ck_assert_int_eq(mapperctl_wait_exit(x, WAIT_MS), 3);
    mapperctl_free(x);
    logged(mark, "half-call", &unlogged);
    ck_assert_int_eq(mapper_report(m, "thermo", "29", NULL), GRPC_OK);
    free(cloud_wait(&since, &keepalive));

    /* no link from the bridge to the plugin: UNAVAILABLE, and served again once it is back */
    mark = bridgectl_log_mark(bridge);
    ck_assert_int_eq(kh_broker_stop(broker), 0);
    code = mapper_report(m, "thermo", "30", NULL);
    ck_assert_msg(code == GRPC_UNAVAILABLE, "a report without the plugin: %d", code);
    wait_bridge_log(mark, "refused (grpc 14)");
    mark = bridgectl_log_mark(bridge);
    ck_assert_int_eq(kh_broker_restart(broker), 0);
    wait_bridge_log(mark, BRIDGECTL_READY_LOG);
    ck_assert_int_eq(mapper_report(m, "thermo", "31", NULL), GRPC_OK);

    ck_assert(bridgectl_running(bridge));
    /* last, so that a missing line does not hide what the steps after it show */
    ck_assert_msg(!unlogged.len, "the bridge logged no dmi line for:%s", unlogged.data);
    kedge_buf_cleanup(&unlogged);
    ck_assert_int_eq(mapperctl_stop(m), 0);
    mapperctl_free(m);
}
END_TEST

void dmi_add_bad_input_tests(TCase *tc)
{
    tcase_add_loop_test(tc, test_bad_input, MAPPER_C, MAPPER_PYTHON + 1);
}
