/* test_node_query.c: queries (the cloud first while connected, the store offline) and a Device from
 * the cloud over MQTT (test_node.c says how the suite runs). */
#define _GNU_SOURCE

#include "test_node.h"

/* ---- 3. queries: the cloud first while connected, the store offline ----------------------- */

#define CM_REMOTE                                                                                  \
    "{\"header\":{\"resourceversion\":\"901\"},\"route\":{\"source\":\"edgecontroller\","          \
    "\"group\":\"resource\",\"operation\":\"update\",\"resource\":\"default/configmap/"            \
    "cm-remote\"},"                                                                                \
    "\"content\":{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"            \
    "\"cm-remote\",\"namespace\":\"default\",\"resourceVersion\":\"901\"},\"data\":{\"level\":"    \
    "\"debug\"}}}"
#define CM_OBJECT                                                                                  \
    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cm-remote\","          \
    "\"namespace\":\"default\",\"resourceVersion\":\"901\"},\"data\":{\"level\":\"debug\"}}"

START_TEST(test_meta_query)
{
    struct ctl_run r;
    char *a, *v;
    long mark;

    chain_up(NULL);
    /* cloudsim knows the ConfigMap; the edge has never been sent it (it went to another node) */
    ck_assert_int_eq(simctl_send(sim, "other-node", CM_REMOTE, NULL), 0);
    ck_assert_ptr_null(db_text(bridgectl_meta_db_path(bridge),
                               "SELECT value FROM meta WHERE key = 'default/configmap/cm-remote'"));

    /* connected: asked of the cloud, stored, the reply acked */
    ctl(&r, "meta", "get", "default/configmap/cm-remote", "--source", END);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "source: cloud\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"level\": \"debug\""));
    ctl_run_free(&r);
    ck_assert_int_eq(count_received("query", "default/configmap/cm-remote", NULL), 1);
    v = db_text(bridgectl_meta_db_path(bridge),
                "SELECT type || ' ' || json_extract(value, '$.data.level') FROM meta "
                "WHERE key = 'default/configmap/cm-remote'");
    ck_assert_str_eq(v, "configmap debug");
    free(v);
    wait_received("response", "default/configmap/cm-remote", 1);

    /* the raw interface, as ke.h documents it */
    a = meta_raw("{\"op\":\"query\",\"resource\":\"default/configmap/cm-remote\"}");
    expect_json(a, "{\"ok\":true,\"source\":\"cloud\",\"object\":" CM_OBJECT "}");
    free(a);

    /* unknown to the cloud: its NotFound, clearly */
    ctl(&r, "meta", "get", "default/configmap/nope", END);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "the cloud answered NotFound for default/configmap/nope"));
    ctl_run_free(&r);

    /* a bad request, a bad resource */
    a = meta_raw("{\"op\":\"fly\"}");
    ck_assert_ptr_nonnull(strstr(a, "\"ok\":false"));
    ck_assert_ptr_nonnull(strstr(a, "unknown op"));
    free(a);
    a = meta_raw("{\"op\":\"query\",\"resource\":\"nothing\"}");
    ck_assert_ptr_nonnull(strstr(a, "query needs \\\"resource\\\""));
    free(a);
    ctl(&r, "meta", "get", "configmap", END);
    ck_assert_int_eq(r.status, 2);
    ctl_run_free(&r);

    /* the cloud does not answer: the caller gets an error at the timeout */
    chain_sim_post(sim, "/link/freeze");
    a = meta_raw("{\"op\":\"query\",\"resource\":\"default/configmap/cm-remote\","
                 "\"timeout_ms\":300}");
    expect_json(a, "{\"ok\":false,\"reason\":\"no answer from the cloud for "
                   "default/configmap/cm-remote within 300 ms\"}");
    free(a);
    chain_sim_post(sim, "/link/thaw");

    /* offline: the same query from the store */
    mark = bridgectl_log_mark(bridge);
    chain_sim_post(sim, "/link/refuse?seconds=3600");
    ck_assert_int_eq(bridgectl_wait_log(bridge, mark, "edgehub: reconnecting in", WAIT_MS), 0);
    ctl(&r, "meta", "get", "default/configmap/cm-remote", "--source", END);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "source: local\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"level\": \"debug\""));
    ctl_run_free(&r);
    a = meta_raw("{\"op\":\"query\",\"resource\":\"default/configmap/cm-remote\"}");
    expect_json(a, "{\"ok\":true,\"source\":\"local\",\"object\":" CM_OBJECT "}");
    free(a);
    ctl(&r, "meta", "get", "default/configmap/nope", END);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(
        r.err, "default/configmap/nope is not stored on this node (and the cloud link is down)"));
    ctl_run_free(&r);
    ctl(&r, "meta", "list", "configmap", END);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "KEY"));
    ck_assert_ptr_nonnull(strstr(r.out, "default/configmap/cm-remote  901"));
    ctl_run_free(&r);
    a = meta_raw("{\"op\":\"query\",\"resource\":\"default/configmap\"}");
    expect_json(a, "{\"ok\":true,\"source\":\"local\",\"objects\":[{\"key\":"
                   "\"default/configmap/cm-remote\",\"object\":" CM_OBJECT "}]}");
    free(a);
    /* the cloud saw the connected queries only (kedge-ctl's, the raw one, the frozen one) */
    ck_assert_int_eq(count_received("query", "default/configmap/cm-remote", NULL), 3);
}
END_TEST

/* ---- 4. a Device and its DeviceModel from the cloud: a typed device over MQTT -------------- */

#define METER_MODEL                                                                                \
    "{\"header\":{\"resourceversion\":\"301\"},\"route\":{\"source\":\"devicecontroller\","        \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":"                                \
    "\"default/devicemodel/meter-model\"},\"content\":{\"apiVersion\":"                            \
    "\"devices.kubeedge.io/v1beta1\",\"kind\":\"DeviceModel\",\"metadata\":{\"name\":"             \
    "\"meter-model\",\"namespace\":\"default\",\"resourceVersion\":\"301\"},\"spec\":{"            \
    "\"properties\":[{\"name\":\"power\",\"type\":\"INT\",\"accessMode\":\"ReadOnly\"}]}}}"
#define METER_DEVICE                                                                               \
    "{\"header\":{\"resourceversion\":\"302\"},\"route\":{\"source\":\"devicecontroller\","        \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":\"default/device/meter\"},"      \
    "\"content\":{\"apiVersion\":\"devices.kubeedge.io/v1beta1\",\"kind\":\"Device\","             \
    "\"metadata\":{\"name\":\"meter\",\"namespace\":\"default\",\"resourceVersion\":\"302\"},"     \
    "\"spec\":{\"deviceModelRef\":{\"name\":\"meter-model\"},\"nodeName\":\"" NODE "\","           \
    "\"properties\":[{\"name\":\"power\"}]}}}"
/* the bridge's default generation (cloud_version 1.15) names devices by their bare name */
#define METER_TOPIC "$hw/events/device/meter/twin/update"

START_TEST(test_device_from_cloud)
{
    struct kh_client *d;
    struct kh_msg m;

    chain_up(NULL);
    d = kh_client_new(kh_broker_port(broker), "meter-mapper", NULL, NULL, 4);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(kh_client_sub(d, "$hw/events/node/" NODE "/membership/updated", 1), 1);
    ck_assert_int_eq(kh_client_sub(d, METER_TOPIC "/result", 1), 1);
    ck_assert_int_eq(simctl_send(sim, NODE, METER_MODEL, NULL), 0);
    ck_assert_int_eq(simctl_send(sim, NODE, METER_DEVICE, NULL), 0);
    ck_assert_int_eq(kh_client_wait(d, "$hw/events/node/" NODE "/membership/updated", WAIT_MS, &m),
                     0);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"power\":{\"metadata\":{\"type\":\"int\"}}"));
    kh_msg_cleanup(&m);

    /* a bad int: 400, as edgecore */
    ck_assert_int_eq(kh_client_pub(d, METER_TOPIC,
                                   "{\"event_id\":\"p1\",\"twin\":{\"power\":{\"actual\":{"
                                   "\"value\":\"lots\"}}}}",
                                   -1, 1, false),
                     0);
    ck_assert_int_eq(kh_client_wait(d, METER_TOPIC "/result", WAIT_MS, &m), 0);
    expect_json(m.payload, "{\"event_id\":\"p1\",\"timestamp\":\"<ts>\",\"code\":400,\"reason\":"
                           "\"the value is not int or integer\"}");
    kh_msg_cleanup(&m);
    /* a good one: taken */
    ck_assert_int_eq(kh_client_pub(d, METER_TOPIC,
                                   "{\"event_id\":\"p2\",\"twin\":{\"power\":{\"actual\":{"
                                   "\"value\":\"42\"}}}}",
                                   -1, 1, false),
                     0);
    ck_assert_int_eq(kh_client_wait(d, METER_TOPIC "/result", WAIT_MS, &m), 0);
    ck_assert_ptr_null(strstr(m.payload, "\"code\""));
    ck_assert_ptr_nonnull(strstr(m.payload, "\"value\":\"42\""));
    kh_msg_cleanup(&m);
    kh_client_free(d);
}
END_TEST

void node_add_query_tests(TCase *tc)
{
    tcase_add_test(tc, test_meta_query);
    tcase_add_test(tc, test_device_from_cloud);
}
