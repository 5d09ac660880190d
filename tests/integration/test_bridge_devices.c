/* test_bridge_devices.c: the "devices" case: membership and typed twins, a Device against each
 * cloud generation, a backlog in order (test_bridge.c says how the suite runs). */
#define _GNU_SOURCE

#include "test_bridge.h"

/* ---- 2. membership; Device + DeviceModel make a typed twin; both acked --------------------- */

#define DEVICEMODEL_INSERT                                                                         \
    "{\"header\":{\"resourceversion\":\"101\"},\"route\":{\"source\":\"devicecontroller\","        \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":"                                \
    "\"default/devicemodel/boiler-model\"},\"content\":{\"apiVersion\":"                           \
    "\"devices.kubeedge.io/v1beta1\",\"kind\":\"DeviceModel\",\"metadata\":{\"name\":"             \
    "\"boiler-model\",\"namespace\":\"default\",\"resourceVersion\":\"101\"},\"spec\":{"           \
    "\"properties\":[{\"name\":\"temperature\",\"type\":\"INT\",\"accessMode\":\"ReadWrite\"},"    \
    "{\"name\":\"mode\",\"type\":\"STRING\",\"accessMode\":\"ReadWrite\"}]}}}"

#define DEVICE_INSERT                                                                              \
    "{\"header\":{\"resourceversion\":\"102\"},\"route\":{\"source\":\"devicecontroller\","        \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":\"default/device/boiler\"},"     \
    "\"content\":{\"apiVersion\":\"devices.kubeedge.io/v1beta1\",\"kind\":\"Device\","             \
    "\"metadata\":{\"name\":\"boiler\",\"namespace\":\"default\",\"resourceVersion\":\"102\","     \
    "\"labels\":{\"description\":\"basement\"}},\"spec\":{\"deviceModelRef\":{\"name\":"           \
    "\"boiler-model\"},\"nodeName\":\"" NODE "\",\"properties\":[{\"name\":\"temperature\"},"      \
    "{\"name\":\"mode\"}]}}}"

START_TEST(test_membership_and_device_types)
{
    struct kh_client *watch, *d;
    char *model_id, *device_id;

    chain_up(NULL);
    watch = device("watch");
    ck_assert_int_eq(kh_client_sub(watch, UPDATED_TOPIC, 1), 1);
    kedge_free(cloud_send(MEMBERSHIP_ADD_THERMO));
    expect_mqtt_json(watch, UPDATED_TOPIC, ANNOUNCED_THERMO);
    /* the device is usable over MQTT */
    d = device("dev");
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/twin/update/result", 1), 1);
    twin_update_value(d, DEV, 21);

    /* docs/kubeedge-wire.md §8.3: the model first, then the device; both stored, typed twins for
     * the plugin */
    model_id = cloud_send(DEVICEMODEL_INSERT);
    device_id = cloud_send(DEVICE_INSERT);
    expect_mqtt_json(watch, UPDATED_TOPIC,
                     "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"added_devices\":["
                     "{\"id\":\"default/boiler\",\"name\":\"boiler\",\"description\":"
                     "\"basement\",\"twin\":{\"temperature\":{\"metadata\":{\"type\":\"int\"}},"
                     "\"mode\":{\"metadata\":{\"type\":\"string\"}}}}],\"removed_devices\":null}");
    ck_assert_int_eq(kh_client_sub(d, "$hw/events/device/default/boiler/twin/update/result", 1), 1);
    /* the model's INT type is enforced (docs/kubeedge-wire.md §8.2)... */
    ck_assert_int_eq(kh_client_pub(d, "$hw/events/device/default/boiler/twin/update",
                                   "{\"event_id\":\"b1\",\"twin\":{\"temperature\":{\"actual\":"
                                   "{\"value\":\"warm\"}}}}",
                                   -1, 1, false),
                     0);
    expect_mqtt_json(d, "$hw/events/device/default/boiler/twin/update/result",
                     "{\"event_id\":\"b1\",\"timestamp\":\"<ts>\",\"code\":400,\"reason\":"
                     "\"the value is not int or integer\"}");
    /* ...and a good value is taken */
    twin_update_value(d, "default/boiler", 40);

    /* each of the two was acked, after it was stored in the meta table */
    wait_acked(model_id);
    wait_acked(device_id);
    /* and the Device the cloud sends again after the status patch for that report */
    wait_no_pending();
    ck_assert_int_eq(db_int(bridgectl_meta_db_path(bridge),
                            "SELECT count(*) FROM meta WHERE (key = "
                            "'default/devicemodel/boiler-model' AND type = 'devicemodel') OR "
                            "(key = 'default/device/boiler' AND type = 'device')"),
                     2);
    kedge_free(model_id);
    kedge_free(device_id);
    kh_client_free(d);
    kh_client_free(watch);
}
END_TEST

/* ---- 2b. a Device against each cloud generation ------------------------------------------ */

/* v1.15 names devices by name, v1.17 by namespace/name: in its membership, in what it reads from
 * twin/edge_updated; the bridge's cloud_version and cloudsim's --cloud-version agree. */
static const struct {
    const char *version, *id;
} gens[] = {{"1.15", "thermo-e2e"}, {"1.17", "default/thermo-e2e"}};

#define E2E_MODEL                                                                                  \
    "{\"header\":{\"resourceversion\":\"200\"},\"route\":{\"source\":\"devicecontroller\","        \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":"                                \
    "\"default/devicemodel/thermo-model\"},\"content\":{\"apiVersion\":"                           \
    "\"devices.kubeedge.io/v1beta1\",\"kind\":\"DeviceModel\",\"metadata\":{\"name\":"             \
    "\"thermo-model\",\"namespace\":\"default\"},\"spec\":{\"properties\":[{\"name\":"             \
    "\"temperature\",\"type\":\"INT\",\"accessMode\":\"ReadWrite\"}]}}}"

/* The Device as cloudcore's downstream sends it (insert or update), desired value `desired`;
 * status.twins lists temperature, so the device controller records its reported value. */
static char *e2e_device_from(const char *source, const char *op, int rv, const char *desired)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(
        kedge_buf_printf(
            &b,
            "{\"header\":{\"resourceversion\":\"%d\"},\"route\":{\"source\":\"%s\","
            "\"group\":\"resource\",\"operation\":\"%s\",\"resource\":\"default/device/"
            "thermo-e2e\"},\"content\":{\"apiVersion\":\"devices.kubeedge.io/v1beta1\",\"kind\":"
            "\"Device\",\"metadata\":{\"name\":\"thermo-e2e\",\"namespace\":\"default\","
            "\"resourceVersion\":\"%d\",\"labels\":{\"description\":\"e2e\"}},\"spec\":{"
            "\"deviceModelRef\":{\"name\":\"thermo-model\"},\"nodeName\":\"" NODE "\","
            "\"properties\":[{\"name\":\"temperature\",\"desired\":{\"value\":\"%s\"}}]},"
            "\"status\":{\"twins\":[{\"propertyName\":\"temperature\",\"reported\":{\"value\":"
            "\"\"}}]}}}",
            rv, source, op, rv, desired),
        0);
    return kedge_buf_take(&b, NULL);
}

static char *e2e_device(const char *op, int rv, const char *desired)
{
    return e2e_device_from("devicecontroller", op, rv, desired);
}

static char *send_owned(char *json)
{
    char *id = cloud_send(json);

    kedge_free(json);
    return id;
}

static void expect_delta(struct kh_client *c, const char *topic, const char *expected,
                         const char *actual)
{
    char tpl[768];

    (void)snprintf(tpl, sizeof(tpl),
                   "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"twin\":{\"temperature\":"
                   "{\"expected\":{\"value\":\"%s\",\"metadata\":{\"timestamp\":\"<ts>\"}},%s%s%s"
                   "\"optional\":true,\"metadata\":{\"type\":\"int\"}}},\"delta\":{\"temperature\":"
                   "\"%s\"}}",
                   expected, actual ? "\"actual\":{\"value\":\"" : "", actual ? actual : "",
                   actual ? "\",\"metadata\":{\"timestamp\":\"<ts>\"}}," : "", expected);
    expect_mqtt_json(c, topic, tpl);
}

/* GET /object?key=K: the cloud's object (kedge_malloc'd), NULL when it has none. */
static char *sim_object(const char *key)
{
    struct kedge_buf body = KEDGE_BUF_INIT;
    char path[256];
    int status = 0;

    (void)snprintf(path, sizeof(path), "/object?key=%s", key);
    ck_assert_int_eq(simctl_http(sim, "GET", path, NULL, &status, &body), 0);
    if (status != 200) {
        kedge_buf_cleanup(&body);
        return NULL;
    }
    return kedge_buf_take(&body, NULL);
}

/* The cloud's next resourceVersion for thermo-e2e: above the one it holds (its own status
 * patches make versions too), as the API server's only go up. */
static int next_rv(void)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *rv;
    char *obj = sim_object("default/device/thermo-e2e");
    long n = 200;

    if (obj && kedge_json_parse(obj, strlen(obj), &doc) == 0) {
        rv = kedge_json_get(kedge_json_get(kedge_jdoc_root(doc), "metadata"), "resourceVersion");
        ck_assert_ptr_nonnull(rv);
        n = strtol(rv->str, NULL, 10);
    }
    kedge_jdoc_free(doc);
    kedge_free(obj);
    return (int)n + 1;
}

START_TEST(test_device_generations)
{
    const char *id = gens[_i].id;
    struct chain_opts co = {.cloud_version = gens[_i].version};
    struct route_sel edge_updated = {"twin", "resource", "update", NULL};
    char delta[160], get[160], getres[200], res[160], tpl[1024], *msg_id, *obj;
    struct kh_client *watch, *d;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *devs;
    long long since = -1;
    struct kh_msg m;
    int64_t deadline;

    chain_up(&co);
    (void)snprintf(delta, sizeof(delta), "$hw/events/device/%s/twin/update/delta", id);
    (void)snprintf(get, sizeof(get), "$hw/events/device/%s/twin/get", id);
    (void)snprintf(getres, sizeof(getres), "%s/result", get);
    (void)snprintf(res, sizeof(res), "device/%s/twin/edge_updated", id);
    edge_updated.resource = res;
    watch = device("watch");
    ck_assert_int_eq(kh_client_sub(watch, UPDATED_TOPIC, 1), 1);
    ck_assert_int_eq(kh_client_sub(watch, delta, 1), 1);

    /* what cloudcore's deviceAdded sends: its membership (the generation's id, no twins), the
     * model, the Device */
    (void)snprintf(tpl, sizeof(tpl),
                   "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":"
                   "\"update\",\"resource\":\"node/" NODE "/membership\"},\"content\":{"
                   "\"event_id\":\"ev-e2e\",\"timestamp\":1,\"added_devices\":[{\"id\":\"%s\","
                   "\"name\":\"thermo-e2e\",\"description\":\"e2e\"}],\"removed_devices\":[]}}",
                   id);
    kedge_free(cloud_send(tpl));
    kedge_free(cloud_send(E2E_MODEL));
    msg_id = send_owned(e2e_device("insert", next_rv(), "22"));
    /* one device, announced once; the Device's twin types join it without a second one */
    (void)snprintf(
        tpl, sizeof(tpl),
        "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"added_devices\":[{\"id\":"
        "\"%s\",\"name\":\"thermo-e2e\",\"description\":\"e2e\"}],\"removed_devices\":"
        "null}",
        id);
    expect_mqtt_json(watch, UPDATED_TOPIC, tpl);
    /* the desired value is the twin's expected value, and the delta says so */
    expect_delta(watch, delta, "22", NULL);
    wait_acked(msg_id);
    kedge_free(msg_id);
    d = device("thermo-dev");
    ck_assert_int_eq(kh_client_sub(d, "$hw/events/node/" NODE "/membership/get/result", 1), 1);
    ck_assert_int_eq(kh_client_pub(d, "$hw/events/node/" NODE "/membership/get",
                                   "{\"event_id\":\"m2\"}", -1, 1, false),
                     0);
    ck_assert_int_eq(
        kh_client_wait(d, "$hw/events/node/" NODE "/membership/get/result", WAIT_MS, &m), 0);
    ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &doc), 0);
    devs = kedge_json_get(kedge_jdoc_root(doc), "devices");
    ck_assert_msg(devs && devs->n == 1, "devices: %s", m.payload);
    ck_assert_str_eq(kedge_json_get(devs->child, "id")->str, id);
    kedge_jdoc_free(doc);
    kh_msg_cleanup(&m);

    /* a typed twin (the result carries type int), reported under the generation's resource,
     * answered by the device controller: the outbox empties */
    ck_assert_int_eq(kh_client_sub(d, getres, 1), 1);
    (void)snprintf(tpl, sizeof(tpl), "$hw/events/device/%s/twin/update/result", id);
    ck_assert_int_eq(kh_client_sub(d, tpl, 1), 1);
    twin_update_value(d, id, 25);
    edge_updated_tpl(tpl, sizeof(tpl), id, 25, 1);
    expect_cloud_msg(cloud_wait(&since, &edge_updated), tpl);
    wait_db_int(bridgectl_db_path(bridge), OUTBOX_COUNT, 0);
    expect_delta(watch, delta, "22", "25");
    obj = NULL;
    deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    while (!(obj = sim_object("default/device/thermo-e2e")) ||
           !strstr(obj, "\"reported\":{\"metadata\":{\"timestamp\":")) {
        kedge_free(obj);
        ck_assert_msg(kt_now_ms() < deadline, "the cloud's Device never got the reported value");
        kt_pause_ms(PAUSE_MS);
    }
    ck_assert_ptr_nonnull(strstr(obj, "\"type\":\"int\"},\"value\":\"25\"}"));
    kedge_free(obj);
    /* the cloud sends the Device again after that status patch: acked, and no delta */
    wait_no_pending();

    /* a desired value patched in the cloud: the expected value and a delta; had the re-sent
     * Device published one, it would come first on this subscription */
    msg_id = send_owned(e2e_device("update", next_rv(), "30"));
    expect_delta(watch, delta, "30", "25");
    wait_acked(msg_id);
    kedge_free(msg_id);
    /* the same Device again (cloudcore does this after each status patch): nothing; the next
     * delta is the next change's */
    msg_id = send_owned(e2e_device("update", next_rv(), "30"));
    wait_acked(msg_id);
    kedge_free(msg_id);
    msg_id = send_owned(e2e_device("update", next_rv(), "31"));
    expect_delta(watch, delta, "31", "25");
    wait_acked(msg_id);
    kedge_free(msg_id);
    /* an older version resent after a newer one went through (cloudcore re-queues what stays
     * unacked): acked, not applied; the next delta is the next change's */
    msg_id = send_owned(e2e_device("update", 150, "99"));
    wait_acked(msg_id);
    kedge_free(msg_id);
    /* a Device changed while the node was away comes with the reconnect from the edge
     * controller's object sync (seen with cloudcore v1.15.4): the same path */
    msg_id = send_owned(e2e_device_from("edgecontroller", "update", next_rv(), "32"));
    expect_delta(watch, delta, "32", "25");
    wait_acked(msg_id);
    kedge_free(msg_id);
    /* the device's own reported value is untouched by all of it */
    ck_assert_int_eq(kh_client_pub(d, get, "{\"event_id\":\"g1\"}", -1, 1, false), 0);
    expect_mqtt_json(d, getres,
                     "{\"event_id\":\"g1\",\"timestamp\":\"<ts>\",\"twin\":{\"temperature\":{"
                     "\"expected\":{\"value\":\"32\",\"metadata\":{\"timestamp\":\"<ts>\"}},"
                     "\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":\"<ts>\"}},"
                     "\"optional\":true,\"metadata\":{\"type\":\"int\"}}}}");

    /* deleted in the cloud (its membership, then the Device): removed and announced once; the
     * next announcement is a later device's */
    (void)snprintf(tpl, sizeof(tpl),
                   "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":"
                   "\"update\",\"resource\":\"node/" NODE "/membership\"},\"content\":{"
                   "\"event_id\":\"ev-rm\",\"timestamp\":1,\"added_devices\":[],"
                   "\"removed_devices\":[{\"id\":\"%s\",\"name\":\"thermo-e2e\"}]}}",
                   id);
    kedge_free(cloud_send(tpl));
    msg_id = send_owned(e2e_device("delete", next_rv(), "32"));
    wait_acked(msg_id);
    kedge_free(msg_id);
    ck_assert_int_eq(kh_client_wait(watch, UPDATED_TOPIC, WAIT_MS, &m), 0);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"removed_devices\":[{"));
    kh_msg_cleanup(&m);
    kedge_free(cloud_send(MEMBERSHIP_ADD_THERMO));
    ck_assert_int_eq(kh_client_wait(watch, UPDATED_TOPIC, WAIT_MS, &m), 0);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"added_devices\":[{\"id\":\"" DEV "\""));
    kh_msg_cleanup(&m);
    kh_client_free(d);
    kh_client_free(watch);
}
END_TEST

/* ---- 2c. a backlog reaches the cloud in order ------------------------------------------- */

/* cloudcore applies the reports it reads concurrently (cloudsim: workers.c, a burst lands
 * newest first). Twenty reports made while the link is refused wait in the bridge as one
 * (coalesced, the last values); after the reconnect the cloud's Device shows the last one,
 * because the bridge sends a device's next report only after the cloud answered the one
 * before. */
START_TEST(test_backlog_in_order)
{
    struct chain_opts co = {.cloud_version = "1.15"};
    char tpl[1024], *msg_id, *obj;
    struct kh_client *d;
    int64_t sessions;
    int v;

    chain_up(&co);
    (void)snprintf(tpl, sizeof(tpl),
                   "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":"
                   "\"update\",\"resource\":\"node/" NODE "/membership\"},\"content\":{"
                   "\"event_id\":\"ev-b\",\"timestamp\":1,\"added_devices\":[{\"id\":"
                   "\"thermo-e2e\",\"name\":\"thermo-e2e\"}],\"removed_devices\":[]}}");
    kedge_free(cloud_send(tpl));
    kedge_free(cloud_send(E2E_MODEL));
    msg_id = send_owned(e2e_device("insert", next_rv(), "22"));
    wait_acked(msg_id);
    kedge_free(msg_id);
    d = device("thermo-dev");
    ck_assert_int_eq(kh_client_sub(d, "$hw/events/device/thermo-e2e/twin/update/result", 1), 1);

    sessions = state_int("sessions_total");
    wait_plugin_cloud(true);
    chain_sim_post(sim, "/link/refuse?seconds=600");
    wait_disconnected();
    wait_plugin_cloud(false);
    for (v = 1; v <= 20; v++)
        twin_update_value(d, "thermo-e2e", v);
    /* twin reports are state: the twenty wait as one, holding the last value (issue 13) */
    wait_db_int(bridgectl_db_path(bridge),
                "SELECT count(*) FROM kedge_outbox WHERE msg LIKE '%/twin/edge_updated%' AND "
                "msg LIKE '%\"value\":\"20\"%'",
                1);
    ck_assert_int_eq(db_int(bridgectl_db_path(bridge), "SELECT count(*) FROM kedge_outbox WHERE "
                                                       "msg LIKE '%/twin/edge_updated%'"),
                     1);
    chain_sim_post(sim, "/link/refuse?seconds=0");
    wait_session(sessions + 1, LINK_MS);
    wait_db_int(bridgectl_db_path(bridge), OUTBOX_COUNT, 0);
    obj = sim_object("default/device/thermo-e2e");
    ck_assert_ptr_nonnull(obj);
    ck_assert_msg(strstr(obj, "\"type\":\"int\"},\"value\":\"20\"}"), "the cloud's Device: %s",
                  obj);
    kedge_free(obj);
    kh_client_free(d);
}
END_TEST

void bridge_add_devices_tests(TCase *tc)
{
    tcase_add_test(tc, test_membership_and_device_types);
    tcase_add_loop_test(tc, test_device_generations, 0, 2);
    tcase_add_test(tc, test_backlog_in_order);
}
