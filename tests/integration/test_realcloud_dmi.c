/* The real-cloud tier for DMI (issue 16): a mapper driving a device through kedge against a
 * REAL cloudcore v1.15.4 + kube-apiserver 1.24 (KEDGE_CLOUDCORE_DIR, cloudctl.h), observed with
 * kubectl. The edge node is test_realcloud's (rcsupport.h), without a container engine: broker
 * + plugin and kedge-bridge joined with the cloud's token, its DMI socket in its directory. The
 * mapper is kedge-testmapper (tests/dmi), for protocol kedge-virtual.
 *
 *  1. The mapper registers before the cloud has a Device for it (an empty list); kubectl
 *     creates a DeviceModel and a Device of its protocol (status.twins listed: cloudcore v1.15
 *     patches only listed twins), and the mapper receives RegisterDevice with it, converted as
 *     edgecore's ConvertDevice (desired value, protocol); registering again lists it.
 *  2. The mapper reports a value: `kubectl get device -o json` shows it in
 *     status.twins[].reported.value.
 *  3. `kubectl patch` of spec.properties[].desired.value: the mapper receives UpdateDevice with
 *     it (the first one: the Device cloudcore resends after a status patch reaches no mapper).
 *  4. The same with the Python mapper (pymapper.py) in its place, when python3-grpcio is there.
 *
 * Scenarios run in order in this process (CK_NOFORK: one node, one cloud, one mapper). Skipped
 * (exit 77) with the reason when the cloud folder is absent. Every wait is a deadline.
 */
#define _GNU_SOURCE

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridgectl.h"
#include "cloudctl.h"
#include "grpc.h"
#include "harness.h"
#include "mapperctl.h"
#include "rcsupport.h"
#include "testsupport.h"

#define BRIDGE_PASS "rc-Dmi-Secret-1"
#define READY_MS 90000  /* the node Ready: lease + kube-controller-manager's sync */
#define DEVICE_MS 30000 /* a Device created with kubectl at the mapper */
#define REPORT_MS 5000  /* a report in the Device's status */
#define PROTO "kedge-virtual"
#define DEV "rc-dmi-thermo"

static struct rc env;
static struct mapperctl *mapper;

/* The mapper's next `ev` of DEV whose desired temperature is value (earlier ones of DEV are
 * skipped: cloudcore re-sends the Device after each status patch). */
/* Wait for the mapper's ev of DEV carrying desired value; first: it must be the first ev of DEV
 * (none went before it), else earlier ones are skipped. */
static void wait_desired(const char *ev, const char *value, int timeout_ms, bool first)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);
    struct kedge_jdoc *doc = NULL;
    const char *got;

    for (;;) {
        /* each wait up to the whole time (mapperctl_wait scales it), the loop to the deadline */
        if (kt_now_ms() >= deadline || mapperctl_wait(mapper, ev, DEV, timeout_ms, &doc) < 0) {
            bridgectl_dump_log(env.bridge);
            ck_abort_msg("the mapper never got %s of " DEV " with desired %s", ev, value);
        }
        got = mapper_ev_str(doc, "device.desired.temperature");
        if (got && !strcmp(got, value))
            break;
        ck_assert_msg(!first, "the mapper got %s of " DEV " with desired %s before %s", ev,
                      got ? got : "none", value);
        kedge_jdoc_free(doc);
    }
    ck_assert_str_eq(mapper_ev_str(doc, "device.protocol"), PROTO);
    ck_assert_str_eq(mapper_ev_str(doc, "device.model"), "rc-dmi-model");
    kedge_jdoc_free(doc);
}

static void start_mapper(enum mapper_kind kind)
{
    char sock[PATH_MAX], kedge[PATH_MAX], log[PATH_MAX];
    struct mapperctl_opts o = {kind, "rc-virt", PROTO, sock, kedge, log};
    const char *k = mapper_kind_name(kind);

    /* in the bridge's directory, which its watcher removes should this process die */
    snprintf(sock, sizeof(sock), "%s/virt-%s.sock", bridgectl_dir(env.bridge), k);
    snprintf(log, sizeof(log), "%s/virt-%s.log", bridgectl_dir(env.bridge), k);
    snprintf(kedge, sizeof(kedge), "%s/dmi.sock", bridgectl_dir(env.bridge));
    ck_assert_int_eq(mapperctl_start(&o, &mapper), 0);
}

START_TEST(mapper_receives_the_device)
{
    static const char *const none[] = {NULL}, *const dev[] = {DEV, NULL},
                             *const model[] = {"rc-dmi-model", NULL};
    struct kedge_jdoc *doc = NULL;
    int64_t t0;

    ck_assert_msg(rc_edge_up(&env), "the edge node did not come up");
    rc_wait_node_ready(&env, kh_scale_ms(READY_MS));
    start_mapper(MAPPER_C);
    ck_assert_int_eq(mapperctl_call(mapper, "registered", &doc, "register"), GRPC_OK);
    ck_assert(mapper_ev_names_are(doc, "devices", none));
    kedge_jdoc_free(doc);

    t0 = kt_now_ms();
    rc_apply(&env,
             "apiVersion: devices.kubeedge.io/v1beta1\nkind: DeviceModel\n"
             "metadata: {name: rc-dmi-model, namespace: default}\n"
             "spec:\n  protocol: " PROTO "\n  properties:\n"
             "  - {name: temperature, type: INT, accessMode: ReadWrite}\n---\n"
             "apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\n"
             "metadata: {name: " DEV ", namespace: default}\n"
             "spec:\n  deviceModelRef: {name: rc-dmi-model}\n  nodeName: %s\n"
             "  protocol: {protocolName: " PROTO "}\n"
             "  properties: [{name: temperature, desired: {value: \"22\"}, reportToCloud: true}]\n"
             "status:\n  twins: [{propertyName: temperature, reported: {value: \"\"}, "
             "observedDesired: {value: \"\"}}]\n",
             env.node);
    wait_desired("RegisterDevice", "22", DEVICE_MS, false);
    printf("test_realcloud_dmi: measure: kubectl apply -> RegisterDevice at the mapper in %.1f s\n",
           (double)(kt_now_ms() - t0) / 1000);
    /* registering again: the stored Device, with its model */
    ck_assert_int_eq(mapperctl_call(mapper, "registered", &doc, "register"), GRPC_OK);
    ck_assert(mapper_ev_names_are(doc, "devices", dev));
    ck_assert(mapper_ev_names_are(doc, "models", model));
    kedge_jdoc_free(doc);
}
END_TEST

START_TEST(mapper_report_reaches_the_cloud)
{
    int64_t t0 = kt_now_ms();

    ck_assert_msg(mapper != NULL, "no mapper (the first scenario failed)");
    ck_assert_int_eq(mapperctl_call(mapper, "report", NULL, "report " DEV " temperature 23"),
                     GRPC_OK);
    rc_wait_reported(&env, DEV, "23", kh_scale_ms(REPORT_MS));
    printf("test_realcloud_dmi: measure: ReportDeviceStatus -> Device status.twins reported in "
           "%.0f ms\n",
           (double)(kt_now_ms() - t0));
}
END_TEST

START_TEST(desired_value_reaches_the_mapper)
{
    int64_t t0 = kt_now_ms();

    ck_assert_msg(mapper != NULL, "no mapper (the first scenario failed)");
    ck_assert_int_eq(cloudctl_kubectl(env.cloud, NULL, NULL, NULL, "patch", "device", DEV,
                                      "--type=json", "-p",
                                      "[{\"op\":\"replace\",\"path\":\"/spec/properties/0/"
                                      "desired/value\",\"value\":\"30\"}]",
                                      NULL),
                     0);
    /* cloudcore sent the Device again after the report's status patch, with the same spec:
     * kedge passed that on to no mapper, so this is the first UpdateDevice */
    wait_desired("UpdateDevice", "30", DEVICE_MS, true);
    printf("test_realcloud_dmi: measure: kubectl patch desired -> UpdateDevice in %.0f ms\n",
           (double)(kt_now_ms() - t0));
}
END_TEST

/* 4. The same flow with the independent client (Python grpcio, stubs from the same proto) in
 * the C mapper's place: it registers and gets the Device as it is now, its report reaches the
 * API server, and a desired value set with kubectl reaches it. */
START_TEST(python_mapper_same_flow)
{
    static const char *const dev[] = {DEV, NULL};
    struct kedge_jdoc *doc = NULL;
    const char *why = NULL;

    if (!mapper_kind_available(MAPPER_PYTHON, &why)) {
        printf("test_realcloud_dmi: python mapper skipped: %s\n", why ? why : "unavailable");
        return;
    }
    ck_assert_msg(mapper != NULL, "no mapper (the first scenario failed)");
    ck_assert_int_eq(mapperctl_stop(mapper), 0);
    mapperctl_free(mapper);
    mapper = NULL;
    start_mapper(MAPPER_PYTHON);
    ck_assert_int_eq(mapperctl_call(mapper, "registered", &doc, "register"), GRPC_OK);
    ck_assert(mapper_ev_names_are(doc, "devices", dev));
    kedge_jdoc_free(doc);
    ck_assert_int_eq(mapperctl_call(mapper, "report", NULL, "report " DEV " temperature 24"),
                     GRPC_OK);
    rc_wait_reported(&env, DEV, "24", kh_scale_ms(REPORT_MS));
    ck_assert_int_eq(cloudctl_kubectl(env.cloud, NULL, NULL, NULL, "patch", "device", DEV,
                                      "--type=json", "-p",
                                      "[{\"op\":\"replace\",\"path\":\"/spec/properties/0/"
                                      "desired/value\",\"value\":\"31\"}]",
                                      NULL),
                     0);
    wait_desired("UpdateDevice", "31", DEVICE_MS, true);
    printf("test_realcloud_dmi: python mapper: registered, reported 24, got desired 31\n");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("realcloud_dmi");
    TCase *tc = tcase_create("dmi");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, mapper_receives_the_device);
    tcase_add_test(tc, mapper_report_reaches_the_cloud);
    tcase_add_test(tc, desired_value_reaches_the_mapper);
    tcase_add_test(tc, python_mapper_same_flow);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    char why[PATH_MAX + 128];
    int failed, rc = 0;

    if (!cloudctl_available(KEDGE_CLOUDCORE_DIR, why, sizeof(why))) {
        printf("test_realcloud_dmi: skipped: %s\n", why);
        return 77;
    }
    env.no_engine = true;
    failed = rc_run_suite(&env, KEDGE_CLOUDCORE_DIR, BRIDGE_PASS, suite()); /* and the mapper */
    if (mapper && mapperctl_stop(mapper) != 0)
        rc = -1;
    mapperctl_free(mapper);
    if (rc_teardown(&env) < 0)
        rc = -1;
    return failed || rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
