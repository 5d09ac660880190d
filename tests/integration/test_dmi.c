/* Mappers over DMI (issue 16) against the whole edge node: kedge-cloudsim sends Devices and
 * DeviceModels as cloudcore v1.15 does, kedge-bridge serves v1beta1.DeviceManagerService on its
 * DMI socket and calls each mapper's v1beta1.DeviceMapperService, the broker's plugin holds the
 * twins. Every case runs with both test mappers (tests/dmi): kedge-testmapper, on kedge's own
 * gRPC, and pymapper.py, on Debian's python3-grpcio with stubs generated from the same proto,
 * the independent client that shows kedge speaks gRPC as the rest of the world does.
 *
 * The chain is test_bridge's (test_bridge_fixture.c), cloud generation 1.15 (device ids are
 * bare names, as DMI's deviceName). What reaches the cloud is read from cloudsim's /received,
 * what reaches MQTT subscribers from a libmosquitto client, what reaches the mapper from its
 * event log. Waits are deadlines; where a case must show that something did not happen it
 * waits for a later marker on the same ordered path first.
 */
#define _GNU_SOURCE

#include "ctlrun.h"
#include "test_dmi.h"

#define RESULT_TOPIC "$hw/events/device/thermo/twin/update/result"
#define DOCUMENT_TOPIC "$hw/events/device/thermo/twin/update/document"

static const char *const THERMO[] = {"thermo", NULL};
static const char *const ONE_MODEL[] = {MODEL, NULL};

/* The next edge_updated of thermo at the cloud after *since whose temperature is value. */
static void wait_cloud_value(long long *since, const char *value)
{
    static const struct route_sel sel = {"twin", "resource", "update",
                                         "device/thermo/twin/edge_updated"};
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    for (;;) {
        char *json = cloud_wait(since, &sel);
        struct kedge_jdoc *doc = NULL;
        const char *got;
        bool found;

        ck_assert_int_eq(kedge_json_parse(json, strlen(json), &doc), 0);
        got = mapper_jstr(kedge_jdoc_root(doc), "content.twin.temperature.actual.value");
        found = got && !strcmp(got, value);
        kedge_jdoc_free(doc);
        free(json);
        if (found)
            return;
        ck_assert_msg(kt_now_ms() < deadline, "the cloud never saw thermo at %s", value);
    }
}

/* The next MQTT message on topic has the string value at path. */
static void expect_mqtt_at(struct kh_client *c, const char *topic, const char *path,
                           const char *value)
{
    struct kedge_jdoc *doc = NULL;
    const char *got;
    struct kh_msg m;

    ck_assert_msg(kh_client_wait(c, topic, WAIT_MS, &m) == 0, "nothing on %s", topic);
    ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &doc), 0);
    got = mapper_jstr(kedge_jdoc_root(doc), path);
    ck_assert_msg(got && !strcmp(got, value), "%s: %s is not %s in %s", topic, path, value,
                  m.payload);
    kedge_jdoc_free(doc);
    kh_msg_cleanup(&m);
}

/* ---- 1. register, report, cloud changes, mapper restart ---------------------------------- */

static void check_converted(const struct kedge_jdoc *doc)
{
    const struct kedge_jval *d = mapper_jget(kedge_jdoc_root(doc), "list.0"), *v;

    /* edgecore's ConvertDevice: deviceModelRef.name as deviceModelReference, configData as Any
     * wrappers (a string StringValue, a JSON number FloatValue, a bool BoolValue) */
    ck_assert_str_eq(mapper_jstr(d, "name"), "thermo");
    ck_assert_str_eq(mapper_jstr(d, "model"), MODEL);
    ck_assert_str_eq(mapper_jstr(d, "protocol"), PROTO);
    ck_assert_str_eq(mapper_jstr(d, "config.host"), "10.0.0.7");
    v = mapper_jget(d, "config.port");
    ck_assert_msg(v && v->type == KEDGE_JNUM && !strcmp(v->str, "502"), "config.port");
    v = mapper_jget(d, "config.debug");
    ck_assert_msg(v && v->type == KEDGE_JBOOL && v->boolean, "config.debug");
    ck_assert_str_eq(mapper_jstr(d, "visitors.temperature.register"), "HR");
    v = mapper_jget(d, "visitors.temperature.offset");
    ck_assert_msg(v && v->type == KEDGE_JNUM && !strcmp(v->str, "2"), "visitors offset");
    ck_assert_str_eq(mapper_jstr(d, "desired.temperature"), "22");
}

static void mapper_list_shows(const char *name, const char *sock)
{
    struct ctl_run r;
    char *args[] = {
        (char *)"-p",     NULL,           (char *)"-P", (char *)bridgectl_password_path(bridge),
        (char *)"mapper", (char *)"list", NULL};
    char port[16];

    (void)snprintf(port, sizeof(port), "%d", kh_broker_port(broker));
    args[1] = port;
    ctl_run_argv(&r, KEDGE_CTL_PATH, args, kh_scale_ms(WAIT_MS));
    ck_assert_msg(r.status == 0, "kedge-ctl mapper list: %d %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, name) && strstr(r.out, PROTO) && strstr(r.out, sock) &&
                      strstr(r.out, "thermo"),
                  "kedge-ctl mapper list: %s", r.out);
    ctl_run_free(&r);
}

START_TEST(test_flow)
{
    enum mapper_kind k = (enum mapper_kind)_i;
    struct kh_client *d;
    struct kedge_jdoc *doc;
    struct mapperctl *m;
    long long since = -1;
    char *msg = NULL, sock[300];
    long mark;

    if (!dmi_kind_runs(k))
        return;
    dmi_up(NULL);
    cloud_model("insert", MODEL, PROTO, false);
    cloud_model("insert", "meter-model", OTHER_PROTO, false);
    cloud_add_device("thermo", MODEL, PROTO, "22");
    cloud_add_device("meter", "meter-model", OTHER_PROTO, "1");

    /* registered: this protocol's device and its model, not the modbus one */
    m = mapper_up(k, "virt", PROTO);
    doc = mapper_register(m, THERMO, ONE_MODEL);
    check_converted(doc);
    kedge_jdoc_free(doc);

    /* a report lands where an MQTT twin update does: result and document for MQTT
     * subscribers, edge_updated to the cloud */
    d = device("watch-thermo");
    ck_assert_int_eq(kh_client_sub(d, RESULT_TOPIC, 1), 1);
    ck_assert_int_eq(kh_client_sub(d, DOCUMENT_TOPIC, 1), 1);
    ck_assert_int_eq(mapper_report(m, "thermo", "25", NULL), GRPC_OK);
    expect_mqtt_at(d, RESULT_TOPIC, "twin.temperature.actual.value", "25");
    expect_mqtt_at(d, DOCUMENT_TOPIC, "twin.temperature.current.actual.value", "25");
    wait_cloud_value(&since, "25");

    /* kedge answers what edgecore swallows: an unknown device, a value of the wrong type */
    mark = bridgectl_log_mark(bridge);
    ck_assert_int_eq(mapper_report(m, "nosuch", "1", &msg), GRPC_NOT_FOUND);
    wait_bridge_log(mark, "refused (grpc 5)");
    kedge_free(msg);
    ck_assert_int_eq(mapper_report(m, "thermo", "warm", &msg), GRPC_INVALID_ARGUMENT);
    ck_assert_msg(msg && strstr(msg, "not int"), "the reason: %s", msg ? msg : "none");
    kedge_free(msg);
    /* the device's MQTT subscribers got the same refusal (it may still be on its way) */
    expect_mqtt_at(d, RESULT_TOPIC, "reason", "the value is not int or integer");
    /* and the broker's MQTT door is unaffected */
    (void)kh_client_drain(d);
    twin_update_value(d, "thermo", 24);
    wait_cloud_value(&since, "24");

    /* a desired value set in the cloud. The cloud sent the Device again after each report's
     * status patch (same spec): those reached no mapper, so the first UpdateDevice is this one */
    cloud_device("update", "thermo", MODEL, PROTO, "30");
    ck_assert_int_eq(mapperctl_wait(m, "UpdateDevice", "thermo", WAIT_MS, &doc), 0);
    ck_assert_str_eq(mapper_ev_str(doc, "device.desired.temperature"), "30");
    kedge_jdoc_free(doc);

    /* devices added and deleted in the cloud; another protocol's device is not sent */
    cloud_add_device("meter2", "meter-model", OTHER_PROTO, "1");
    cloud_add_device("thermo2", MODEL, PROTO, "5");
    mapper_wait_desired(m, "RegisterDevice", "thermo2", "5");
    cloud_remove_device("thermo2", MODEL, PROTO);
    ck_assert_int_eq(mapperctl_wait(m, "RemoveDevice", "thermo2", WAIT_MS, NULL), 0);
    ck_assert(!mapperctl_has(m, "RegisterDevice", "meter2"));
    ck_assert(!mapperctl_has(m, "UpdateDevice", "meter2"));

    /* model changes */
    cloud_model("update", MODEL, PROTO, true);
    ck_assert_int_eq(mapperctl_wait(m, "UpdateDeviceModel", MODEL, WAIT_MS, &doc), 0);
    ck_assert_str_eq(mapper_ev_str(doc, "model.properties.1.name"), "mode");
    ck_assert_str_eq(mapper_ev_str(doc, "model.properties.1.type"), "STRING");
    kedge_jdoc_free(doc);
    cloud_model("insert", "spare-model", PROTO, false);
    ck_assert_int_eq(mapperctl_wait(m, "CreateDeviceModel", "spare-model", WAIT_MS, NULL), 0);
    cloud_model("delete", "spare-model", PROTO, false);
    ck_assert_int_eq(mapperctl_wait(m, "RemoveDeviceModel", "spare-model", WAIT_MS, NULL), 0);

    /* kedge-ctl mapper list */
    (void)snprintf(sock, sizeof(sock), "%s/virt.sock", dmi_dir);
    mapper_list_shows("virt", sock);

    /* the mapper restarts (a change made meanwhile waits in the store) and registers again:
     * the current list */
    ck_assert_int_eq(mapperctl_stop(m), 0);
    cloud_device("update", "thermo", MODEL, PROTO, "31");
    ck_assert_int_eq(mapperctl_restart(m), 0);
    doc = mapper_register(m, THERMO, ONE_MODEL);
    ck_assert_str_eq(mapper_ev_str(doc, "list.0.desired.temperature"), "31");
    kedge_jdoc_free(doc);
    ck_assert_int_eq(mapper_report(m, "thermo", "26", NULL), GRPC_OK);
    wait_cloud_value(&since, "26");
    ck_assert_int_eq(mapperctl_stop(m), 0);
    mapperctl_free(m);
    kh_client_free(d);
}
END_TEST

/* ---- 2. the bridge restarts, with and without the cloud ---------------------------------- */

START_TEST(test_bridge_restarts)
{
    static const char *const both[] = {"thermo", "thermo4", NULL};
    static const char *const two_models[] = {MODEL, MODEL, NULL};
    enum mapper_kind k = (enum mapper_kind)_i;
    struct kedge_jdoc *doc;
    struct mapperctl *m;
    long long since = -1;
    int64_t sessions;
    const char *first;

    if (!dmi_kind_runs(k))
        return;
    m = thermo_mapper_up(k);

    /* cloud changes while all is up, then the mapper stops, the cloud goes away and the bridge
     * restarts without it */
    cloud_device("update", "thermo", MODEL, PROTO, "40");
    mapper_wait_desired(m, "UpdateDevice", "thermo", "40");
    cloud_add_device("thermo4", MODEL, PROTO, "4");
    mapper_wait_desired(m, "RegisterDevice", "thermo4", "4");
    ck_assert_int_eq(mapperctl_stop(m), 0);
    chain_sim_post(sim, "/link/refuse?seconds=600");
    wait_disconnected();
    ck_assert_int_eq(bridgectl_stop(bridge), 0);
    ck_assert_int_eq(bridgectl_start(bridge), 0);

    /* the mapper registers again: what the cloud said, from the meta store */
    ck_assert_int_eq(mapperctl_restart(m), 0);
    doc = mapper_register(m, both, two_models);
    first = mapper_ev_str(doc, "list.0.name");
    ck_assert_str_eq(mapper_ev_str(doc, !strcmp(first, "thermo") ? "list.0.desired.temperature"
                                                                 : "list.1.desired.temperature"),
                     "40");
    kedge_jdoc_free(doc);
    /* a report with the cloud away: committed now, sent later */
    ck_assert_int_eq(mapper_report(m, "thermo", "41", NULL), GRPC_OK);

    /* the bridge restarts again and the cloud comes back; the mapper does NOT register again
     * (edgecore would forget it: kedge restores its mappers from the meta store) */
    sessions = state_int("sessions_total");
    ck_assert_int_eq(bridgectl_stop(bridge), 0);
    chain_sim_post(sim, "/link/refuse?seconds=0");
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    wait_session(sessions + 1, LINK_MS);
    wait_cloud_value(&since, "41");
    cloud_device("update", "thermo", MODEL, PROTO, "50");
    mapper_wait_desired(m, "UpdateDevice", "thermo", "50");
    ck_assert_int_eq(mapper_report(m, "thermo", "51", NULL), GRPC_OK);
    wait_cloud_value(&since, "51");
    ck_assert_int_eq(mapperctl_stop(m), 0);
    mapperctl_free(m);
}
END_TEST

static Suite *dmi_suite(void)
{
    Suite *s = suite_create("dmi");
    TCase *tc = tcase_create("flow");

    tcase_add_checked_fixture(tc, NULL, dmi_down);
    tcase_add_loop_test(tc, test_flow, MAPPER_C, MAPPER_PYTHON + 1);
    tcase_add_loop_test(tc, test_bridge_restarts, MAPPER_C, MAPPER_PYTHON + 1);
    suite_add_tcase(s, tc);
    tc = tcase_create("bad_input");
    tcase_add_checked_fixture(tc, NULL, dmi_down);
    dmi_add_bad_input_tests(tc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kh_run_suite(dmi_suite(), CK_NORMAL);
}
