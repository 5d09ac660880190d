/* The real-cloud tier: kedge against a REAL cloudcore v1.15.4 + kube-apiserver 1.24
 * (KEDGE_CLOUDCORE_DIR, cloudctl.h), observed with kubectl. One cloud for the whole binary;
 * one edge node (broker + plugin, kedge-bridge joined with the cloud's token, a podman engine)
 * for all scenarios, which run in order in this process (CK_NOFORK: they share the node).
 *
 *  1. The node registers and is Ready; InternalIP, capacity and a kubelet version the 1.24
 *     cluster accepts.
 *  2. The seed's scenario: a Deployment placed on the node by the real scheduler runs busybox
 *     httpd serving a configMap on a hostPort; kubelet's container labels; the page is served.
 *  1. (continued) Past the 40 s NotReady grace the node is still Ready and never flapped.
 *  6. kedge-bridge and the broker killed with -9 and restarted: no container recreated, the pod
 *     still Running in the cloud, the node Ready. (2, continued) Scaled to 0: containers and
 *     pod objects gone.
 *  3. An ordinary pod (the API server's kube-api-access projected volume): token, ca.crt and
 *     namespace served from it; a projected volume of a secret, downwardAPI and a configMap.
 *  4. A Device + DeviceModel: one edge device under the cloud's id (v1.15: the bare name) with
 *     a typed twin; a reported value reaches the Device's status; a desired value set with
 *     kubectl reaches the device as expected value + delta.
 *  5. cloudcore down, 50 twin updates, 30 s, cloudcore up: the Device ends at the last value and
 *     the node is Ready again (KEDGE_RC_REPEAT=N rounds; default 1 to keep CI time sane: a
 *     round takes ~40 s; run the binary itself for 10 rounds, ctest stops it at 900 s); no
 *     message reached cloudcore before it had the node's session; the 50 updates reached the
 *     new cloudcore coalesced (at most 3 twin reports read, from its -v 4 log).
 *  7. An upload just under the edge's 16 MiB cap is read by cloudcore and the link stays up;
 *     one over it is refused at the edge with PUBACK 0x87 and counted.
 *  8. kedge-bridge stopped with SIGTERM closes the link with a websocket close frame.
 *
 * Skipped (exit 77) when the cloud folder or a container engine is absent. Every wait is a
 * deadline on a condition; the outage's 30 s is the scenario itself. Figures are printed.
 */
#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridgectl.h"
#include "cloudctl.h"
#include "enginectl.h"
#include "harness.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/json.h"
#include "kedge/ke.h"
#include "kedge/util.h"
#include "rcsupport.h"
#include "test_realcloud.h"
#include "testsupport.h"

#define BRIDGE_PASS "rc-Secret-1"
#define POD_MS 120000   /* scheduling, the edge's create of two containers, the status back */
#define READY_MS 90000  /* a node Ready (again): lease + kube-controller-manager's sync */
#define GRACE_MS 45000  /* past kube-controller-manager's 40 s node-monitor grace */
#define REPORT_MS 2000  /* a twin report in the Device's status (the issue: within a second) */
#define OUTAGE_MS 30000 /* the cloud outage, real time */
#define DEV "rc-thermo"
#define DEV_TOPIC "$hw/events/device/" DEV "/twin"

static struct rc env;

/* cloudcore's log (from a mark) must not say this about our node. */
static void expect_not_in_cloudcore_log(long from, const char *what)
{
    char needle[160], *log = cloudctl_log_read(env.cloud, "cloudcore", from), *hit;

    ck_assert_ptr_nonnull(log);
    snprintf(needle, sizeof(needle), "%s %s", what, env.node);
    hit = strstr(log, needle);
    if (hit) {
        char *eol = strchr(hit, '\n');
        if (eol)
            *eol = '\0';
    }
    ck_assert_msg(!hit, "cloudcore logged: %s", hit);
    kedge_free(log);
}

/* How many messages from our node cloudcore logged (at -v 4 it logs every one it reads:
 * "get msg from node(<node>): ... Resource: <resource> Operation: ...") for this resource, in
 * its log from a mark. */
static int cloudcore_read_count(long from, const char *resource)
{
    char from_node[160], res[200], *log = cloudctl_log_read(env.cloud, "cloudcore", from), *p;
    int n = 0;

    ck_assert_ptr_nonnull(log);
    snprintf(from_node, sizeof(from_node), "get msg from node(%s)", env.node);
    snprintf(res, sizeof(res), "Resource: %s ", resource);
    for (p = strstr(log, from_node); p; p = strstr(p + 1, from_node)) {
        char *eol = strchr(p, '\n'), *hit = strstr(p, res);
        if (hit && (!eol || hit < eol))
            n++;
    }
    kedge_free(log);
    return n;
}

/* ---- 1. the node ---------------------------------------------------------------------------- */

static int web_port; /* the Deployment's pod (2), watched in 1 and 6 */
static char web_uid[64], web_ids[8][80];
static int web_n_ids;
static int64_t t_ready; /* when the node was first seen Ready */
static char ready_since[64];

START_TEST(node_registers_and_is_ready)
{
    struct kedge_jdoc *doc = NULL, *ver = NULL;
    const struct kedge_jval *st, *a;
    int64_t t0 = kt_now_ms();
    bool internal_ip = false;

    ck_assert_msg(rc_edge_up(&env), "the edge node did not come up");
    rc_wait_node_ready(&env, kh_scale_ms(READY_MS));
    t_ready = kt_now_ms();
    printf("test_realcloud: measure: node %s Ready %.1f s after the bridge started (%.1f s after "
           "this check began)\n",
           env.node, (double)(t_ready - env.t_bridge) / 1000, (double)(t_ready - t0) / 1000);
    doc = rc_kget(&env, "node", env.node);
    ck_assert_ptr_nonnull(doc);
    snprintf(ready_since, sizeof(ready_since), "%s",
             rc_str(rc_condition(kedge_jdoc_root(doc), "Ready"), "lastTransitionTime"));
    st = kedge_json_get(kedge_jdoc_root(doc), "status");
    for (a = rc_path(st, "addresses") ? rc_path(st, "addresses")->child : NULL; a; a = a->next)
        internal_ip =
            internal_ip || (!strcmp(rc_str(a, "type"), "InternalIP") && *rc_str(a, "address"));
    ck_assert_msg(internal_ip, "no InternalIP in the node's status.addresses");
    for (int i = 0; i < 3; i++) {
        static const char *const res[] = {"cpu", "memory", "pods"};
        const char *v = rc_str(rc_path(st, "capacity"), res[i]);
        ck_assert_msg(*v, "no capacity.%s in the node's status", res[i]);
        printf("test_realcloud: node capacity.%s = %s\n", res[i], v);
    }
    expect_not_in_cloudcore_log(0, "session not found for node");
    {
        const char *kv = rc_str(rc_path(st, "nodeInfo"), "kubeletVersion");
        int k_major = 0, k_minor = 0, a_minor = 0;
        ck_assert_int_eq(cloudctl_kubectl_json(env.cloud, &ver, "get", "--raw", "/version", NULL),
                         0);
        a_minor = atoi(rc_str(kedge_jdoc_root(ver), "minor"));
        printf("test_realcloud: kubeletVersion %s, apiserver %s\n", kv,
               rc_str(kedge_jdoc_root(ver), "gitVersion"));
        ck_assert_msg(sscanf(kv, "v%d.%d", &k_major, &k_minor) == 2 && k_major == 1,
                      "kubeletVersion \"%s\" is not v1.N", kv);
        ck_assert_int_gt(a_minor, 0);
        ck_assert_msg(k_minor <= a_minor, "kubeletVersion %s is newer than the 1.%d cluster", kv,
                      a_minor);
    }
    kedge_jdoc_free(ver);
    kedge_jdoc_free(doc);
}
END_TEST

/* Re-checked late, with the Deployment's pod running meanwhile: still Ready, never flapped
 * (scenario 6 checks it again across a restart of the bridge). */
START_TEST(node_stays_ready_past_the_grace)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *ready;
    int64_t waited;

    ck_assert_msg(t_ready > 0, "the node was never Ready");
    /* waiting out the grace is the scenario, not a synchronisation */
    while ((waited = kt_now_ms() - t_ready) < GRACE_MS)
        rc_sleep_ms((int)(GRACE_MS - waited));
    doc = rc_kget(&env, "node", env.node);
    ck_assert_ptr_nonnull(doc);
    ready = rc_condition(kedge_jdoc_root(doc), "Ready");
    printf("test_realcloud: measure: node Ready re-checked %.1f s after it became Ready\n",
           (double)waited / 1000);
    ck_assert_msg(!strcmp(rc_str(ready, "status"), "True"), "node %s is not Ready (%s: %s)",
                  env.node, rc_str(ready, "reason"), rc_str(ready, "message"));
    ck_assert_msg(!strcmp(rc_str(ready, "lastTransitionTime"), ready_since),
                  "the Ready condition changed in between (%s, was %s)",
                  rc_str(ready, "lastTransitionTime"), ready_since);
    kedge_jdoc_free(doc);
    if (web_n_ids == 2)
        ck_assert_msg(rc_pod_phase_by_uid(&env, "app=rc-web", web_uid, "Running"),
                      "the Deployment's pod is no longer Running");
}
END_TEST

/* ---- 2. the seed's scenario: a Deployment --------------------------------------------------- */

START_TEST(deployment_runs_on_the_node)
{
    struct kedge_buf out = KEDGE_BUF_INIT, labels = KEDGE_BUF_INIT;
    char pod[128];
    int64_t t0;

    ck_assert_msg(rc_edge_up(&env), "the edge node did not come up");
    web_port = rc_free_port();
    ck_assert_int_eq(cloudctl_kubectl(env.cloud, NULL, NULL, NULL, "label", "node", env.node,
                                      "kedge/edge=true", "--overwrite", NULL),
                     0);
    rc_apply(&env, "apiVersion: v1\nkind: ConfigMap\n"
                   "metadata: {name: rc-page, namespace: default}\n"
                   "data: {index.html: '<h1>hello from the real cloud</h1>'}\n");
    t0 = kt_now_ms();
    rc_apply(&env,
             "apiVersion: apps/v1\nkind: Deployment\n"
             "metadata: {name: rc-web, namespace: default}\n"
             "spec:\n"
             "  replicas: 1\n"
             "  selector: {matchLabels: {app: rc-web}}\n"
             "  template:\n"
             "    metadata: {labels: {app: rc-web}}\n"
             "    spec:\n"
             "      automountServiceAccountToken: false\n"
             "      terminationGracePeriodSeconds: 1\n"
             "      nodeSelector: {kedge/edge: \"true\"}\n"
             "      tolerations: [{operator: Exists}]\n"
             "      volumes: [{name: page, configMap: {name: rc-page}}]\n"
             "      containers:\n"
             "      - name: web\n"
             "        image: localhost/busybox:edge\n"
             "        imagePullPolicy: IfNotPresent\n"
             "        command: [httpd, -f, -p, \"8080\", -h, /www]\n"
             "        ports: [{containerPort: 8080, hostPort: %d, hostIP: 127.0.0.1}]\n"
             "        volumeMounts: [{name: page, mountPath: /www, readOnly: true}]\n",
             web_port);
    rc_wait_pod_running(&env, "app=rc-web", kh_scale_ms(POD_MS), pod, sizeof(pod), web_uid,
                        sizeof(web_uid));
    printf("test_realcloud: measure: Deployment applied -> pod %s Running with an IP: %.1f s\n",
           pod, (double)(kt_now_ms() - t0) / 1000);
    ck_assert_int_eq(
        cloudctl_kubectl(env.cloud, NULL, &out, NULL, "get", "pods", "-o", "wide", NULL), 0);
    printf("%s", out.data);
    rc_assert_scheduled(&env, pod);

    web_n_ids = rc_pod_containers(&env, web_uid, web_ids, 8);
    ck_assert_msg(web_n_ids == 2, "pod %s: %d containers in the engine, expected 2 (infra + web)",
                  web_uid, web_n_ids);
    ck_assert_msg(rc_app_labels(&env, web_uid, "web", &labels), "no running web container");
    ck_assert_msg(rc_has_label(&labels, "io.kubernetes.pod.name", pod) &&
                      rc_has_label(&labels, "io.kubernetes.pod.namespace", "default") &&
                      rc_has_label(&labels, "io.kubernetes.pod.uid", web_uid) &&
                      rc_has_label(&labels, "io.kubernetes.container.name", "web"),
                  "labels: %s", labels.data);
    free(rc_wait_page(web_port, "/", "hello from the real cloud", kh_scale_ms(30000)));
    rc_wait_pod_condition(&env, pod, "Ready", kh_scale_ms(30000));
    printf("test_realcloud: measure: Deployment applied -> pod Ready and page served: %.1f s\n",
           (double)(kt_now_ms() - t0) / 1000);
    kedge_buf_cleanup(&labels);
    kedge_buf_cleanup(&out);
}
END_TEST

/* ---- 6. the edge's processes crash under a running pod -------------------------------------- */

START_TEST(bridge_and_broker_killed_keep_the_pod)
{
    struct kedge_jdoc *doc;
    char ids[8][80], wall[40];
    int64_t t0, until;
    long mark;

    ck_assert_msg(web_n_ids == 2, "no pod from the Deployment to watch");
    ck_assert_int_eq(kh_broker_kill9(env.broker), 0);
    ck_assert_int_eq(bridgectl_kill9(env.bridge), 0);
    mark = bridgectl_log_mark(env.bridge);
    t0 = kt_now_ms();
    rc_wall_now(wall, sizeof(wall));
    ck_assert_int_eq(kh_broker_restart(env.broker), 0);
    ck_assert_int_eq(bridgectl_set(env.bridge, "log_level", "debug"), 0);
    ck_assert_int_eq(bridgectl_start(env.bridge), 0);
    ck_assert_int_eq(bridgectl_wait_log(env.bridge, mark, "edgehub: connected", kh_scale_ms(60000)),
                     0);
    printf("test_realcloud: measure: restarted broker + bridge connected to cloudcore in %.1f s\n",
           (double)(kt_now_ms() - t0) / 1000);
    free(rc_wait_page(web_port, "/", "hello from the real cloud", kh_scale_ms(30000)));
    rc_wait_lease_renewed(&env, wall, kh_scale_ms(READY_MS));
    rc_wait_node_ready(&env, kh_scale_ms(READY_MS));
    /* an observation window: the bridge relists the engine every pod_resync_s (2 s) and the
     * pod's status goes up; nothing may be created or replaced meanwhile */
    until = kt_now_ms() + kh_scale_ms(8000);
    while (kt_now_ms() < until) {
        ck_assert_int_eq(rc_pod_containers(&env, web_uid, ids, 8), 2);
        for (int i = 0; i < 2; i++)
            ck_assert_msg(!strcmp(ids[i], web_ids[0]) || !strcmp(ids[i], web_ids[1]),
                          "container %s is new (was %s, %s)", ids[i], web_ids[0], web_ids[1]);
        rc_sleep_ms(200);
    }
    ck_assert_int_eq(bridgectl_count_log(env.bridge, mark, "/containers/create"), 0);
    ck_assert_msg(rc_pod_phase_by_uid(&env, "app=rc-web", web_uid, "Running"),
                  "the pod is not Running in the cloud after the restart");
    /* the node never stopped being Ready (its lease never lapsed): kubelet keeps the Ready
     * condition's lastTransitionTime, and so does the restarted bridge */
    doc = rc_kget(&env, "node", env.node);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(rc_str(rc_condition(kedge_jdoc_root(doc), "Ready"), "lastTransitionTime"),
                     ready_since);
    kedge_jdoc_free(doc);
    ck_assert_int_eq(bridgectl_set(env.bridge, "log_level", "info"), 0);
}
END_TEST

/* After the delete, late updates of the pod must not bring it back at the edge (nor make the
 * bridge patch a pod the API server no longer has). */
static void expect_no_late_update(long mark)
{
    char removed[128], added[128], *log, *after;

    snprintf(removed, sizeof(removed), "(%s) removed", web_uid);
    snprintf(added, sizeof(added), "(%s) added", web_uid);
    ck_assert_int_eq(bridgectl_wait_log(env.bridge, mark, removed, kh_scale_ms(10000)), 0);
    rc_sleep_ms(kh_scale_ms(3000)); /* a quiet period: late updates come right behind */
    log = bridgectl_log_read(env.bridge, mark);
    ck_assert_ptr_nonnull(log);
    after = strstr(log, removed);
    ck_assert_msg(after && !strstr(after, added), "the pod was re-added after its removal:\n%s",
                  log);
    ck_assert_msg(!strstr(log, "status patch refused"), "a deleted pod was patched:\n%s", log);
    free(log);
}

START_TEST(deployment_scales_to_zero)
{
    int64_t t0 = kt_now_ms();
    long mark = bridgectl_log_mark(env.bridge);

    ck_assert_msg(web_n_ids == 2, "no pod from the Deployment");
    ck_assert_int_eq(cloudctl_kubectl(env.cloud, NULL, NULL, NULL, "scale", "deployment", "rc-web",
                                      "--replicas=0", NULL),
                     0);
    rc_wait_containers(&env, web_uid, 0, kh_scale_ms(60000));
    rc_wait_no_pods(&env, "app=rc-web", kh_scale_ms(60000));
    printf("test_realcloud: measure: scaled to 0 -> containers and pod object gone in %.1f s\n",
           (double)(kt_now_ms() - t0) / 1000);
    {
        char *page = kt_http_get(web_port, "/");
        bool served = page != NULL;
        free(page);
        ck_assert_msg(!served, "the page is still served");
    }
    expect_no_late_update(mark);
}
END_TEST

/* ---- 3. service account token and projected volumes ----------------------------------------- */

static void expect_jwt_sub(const char *token, const char *sub)
{
    const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    struct kedge_jdoc *doc = NULL;
    char *payload;
    size_t len = 0;

    ck_assert_msg(dot1 && dot2 && !strchr(dot2 + 1, '.') && dot1 > token && dot2 > dot1 + 1 &&
                      dot2[1],
                  "the token is not three dot-separated parts: %s", token);
    payload = rc_base64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &len);
    ck_assert_msg(payload, "the token's payload is not base64url");
    ck_assert_msg(kedge_json_parse(payload, len, &doc) == 0, "payload: %s", payload);
    ck_assert_str_eq(rc_str(kedge_jdoc_root(doc), "sub"), sub);
    kedge_jdoc_free(doc);
    free(payload);
}

START_TEST(service_account_token_and_projected_volumes)
{
    int sa_port = rc_free_port(), proj_port = rc_free_port();
    char pod[128], uid[64], *token, *ca, *ns;
    struct kedge_jdoc *cm;
    rc_apply(&env, "apiVersion: v1\nkind: Secret\nmetadata: {name: rc-secret, namespace: default}\n"
                   "stringData: {password: s3cret}\n---\n"
                   "apiVersion: v1\nkind: ConfigMap\n"
                   "metadata: {name: rc-proj-cm, namespace: default}\n"
                   "data: {greeting: hello-projected}\n");
    rc_apply(&env,
             "apiVersion: v1\nkind: Pod\n"
             "metadata: {name: rc-sa, namespace: default, labels: {app: rc-sa}}\n"
             "spec:\n"
             "  terminationGracePeriodSeconds: 1\n"
             "  nodeSelector: {kedge/edge: \"true\"}\n"
             "  tolerations: [{operator: Exists}]\n"
             "  containers:\n"
             "  - name: web\n"
             "    image: localhost/busybox:edge\n"
             "    command: [httpd, -f, -p, \"8080\", -h, /var/run/secrets/kubernetes.io/"
             "serviceaccount]\n"
             "    ports: [{containerPort: 8080, hostPort: %d, hostIP: 127.0.0.1}]\n"
             "---\n"
             "apiVersion: v1\nkind: Pod\n"
             "metadata: {name: rc-proj, namespace: default, labels: {app: rc-proj}}\n"
             "spec:\n"
             "  terminationGracePeriodSeconds: 1\n"
             "  nodeSelector: {kedge/edge: \"true\"}\n"
             "  tolerations: [{operator: Exists}]\n"
             "  volumes:\n"
             "  - name: all\n"
             "    projected:\n"
             "      sources:\n"
             "      - secret: {name: rc-secret, items: [{key: password, path: password}]}\n"
             "      - downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}},"
             " {path: name, fieldRef: {fieldPath: metadata.name}}]}\n"
             "      - configMap: {name: rc-proj-cm, items: [{key: greeting, path: greeting}]}\n"
             "  containers:\n"
             "  - name: web\n"
             "    image: localhost/busybox:edge\n"
             "    command: [httpd, -f, -p, \"8080\", -h, /proj]\n"
             "    ports: [{containerPort: 8080, hostPort: %d, hostIP: 127.0.0.1}]\n"
             "    volumeMounts: [{name: all, mountPath: /proj, readOnly: true}]\n",
             sa_port, proj_port);
    rc_wait_pod_running(&env, "app=rc-sa", kh_scale_ms(POD_MS), pod, sizeof(pod), uid, sizeof(uid));
    rc_wait_pod_running(&env, "app=rc-proj", kh_scale_ms(POD_MS), pod, sizeof(pod), uid,
                        sizeof(uid));

    token = rc_wait_page(sa_port, "/token", ".", kh_scale_ms(30000));
    expect_jwt_sub(token, "system:serviceaccount:default:default");
    ca = rc_wait_page(sa_port, "/ca.crt", "BEGIN CERTIFICATE", kh_scale_ms(30000));
    cm = rc_kget(&env, "configmap", "kube-root-ca.crt");
    ck_assert_ptr_nonnull(cm);
    ck_assert_str_eq(ca, rc_str(rc_path(kedge_jdoc_root(cm), "data"), "ca.crt"));
    ns = rc_wait_page(sa_port, "/namespace", "default", kh_scale_ms(30000));
    ck_assert_str_eq(ns, "default");
    free(token);
    free(ca);
    free(ns);
    kedge_jdoc_free(cm);

    free(rc_expect_page(proj_port, "/password", "s3cret"));
    free(rc_expect_page(proj_port, "/name", "rc-proj"));
    free(rc_expect_page(proj_port, "/greeting", "hello-projected"));
    {
        char *labels = rc_wait_page(proj_port, "/labels", "app=", kh_scale_ms(30000));
        ck_assert_msg(strstr(labels, "app=\"rc-proj\""), "labels file: %s", labels);
        free(labels);
    }
    ck_assert_int_eq(cloudctl_kubectl(env.cloud, NULL, NULL, NULL, "delete", "pod", "rc-sa",
                                      "rc-proj", "--wait=false", NULL),
                     0);
    rc_wait_no_pods(&env, "app in (rc-sa,rc-proj)", kh_scale_ms(60000));
}
END_TEST

/* ---- 4. devices ------------------------------------------------------------------------------ */

static struct kh_client *dev;

/* One twin update of temperature over MQTT; the plugin's result must be a success. */
static void report(int value)
{
    char payload[160];
    struct kedge_jdoc *doc = NULL;
    struct kh_msg m;

    snprintf(payload, sizeof(payload),
             "{\"event_id\":\"rc-%d\",\"twin\":{\"temperature\":{\"actual\":{\"value\":\"%d\"}}}}",
             value, value);
    ck_assert_int_eq(kh_client_pub(dev, DEV_TOPIC "/update", payload, -1, 1, false), 0);
    ck_assert_msg(kh_client_wait(dev, DEV_TOPIC "/update/result", 10000, &m) == 0,
                  "no twin update result for %d", value);
    ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &doc), 0);
    ck_assert_msg(kedge_json_get(kedge_jdoc_root(doc), "code") == NULL, "update %d refused: %s",
                  value, m.payload);
    kedge_jdoc_free(doc);
    kh_msg_cleanup(&m);
}

START_TEST(device_appears_once_at_the_edge)
{
    struct kedge_buf ids = KEDGE_BUF_INIT, all = KEDGE_BUF_INIT;
    struct kedge_jdoc *twins;
    int64_t t0;
    int n;

    ck_assert_msg(rc_edge_up(&env), "the edge node did not come up");
    dev = kh_client_new(kh_broker_port(env.broker), "rc-thermo-dev", "sensor-rc", "x", 4);
    ck_assert_ptr_nonnull(dev);
    ck_assert_int_eq(kh_client_sub(dev, DEV_TOPIC "/update/result", 1), 1);
    ck_assert_int_eq(kh_client_sub(dev, DEV_TOPIC "/update/delta", 1), 1);
    t0 = kt_now_ms();
    rc_apply(&env,
             "apiVersion: devices.kubeedge.io/v1beta1\nkind: DeviceModel\n"
             "metadata: {name: rc-thermo-model, namespace: default}\n"
             "spec:\n  protocol: modbus\n  properties:\n"
             "  - {name: temperature, type: INT, accessMode: ReadWrite, minimum: \"-40\", "
             "maximum: \"100000\", unit: C}\n---\n"
             "apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\n"
             "metadata: {name: " DEV ", namespace: default, labels: {description: rc-thermo}}\n"
             "spec:\n  deviceModelRef: {name: rc-thermo-model}\n  nodeName: %s\n"
             "  protocol: {protocolName: modbus}\n"
             "  properties: [{name: temperature, desired: {value: \"22\"}, reportToCloud: true}]\n"
             "status:\n  twins: [{propertyName: temperature, reported: {value: \"\"}, "
             "observedDesired: {value: \"\"}}]\n",
             env.node);
    n = rc_wait_edge_device(&env, DEV, kh_scale_ms(30000), &ids, &all);
    printf("test_realcloud: measure: Device at the edge in %.1f s; edge devices: %s\n",
           (double)(kt_now_ms() - t0) / 1000, all.data);
    {
        int64_t deadline = kt_now_ms() + kh_scale_ms(10000);
        /* typed (INT from the DeviceModel) under the bare id: the Device resource was applied */
        for (;;) {
            twins = rc_edge_twins(&env, DEV);
            bool typed = !strcmp(
                rc_str(rc_path(kedge_jdoc_root(twins), "twin.temperature.metadata"), "type"),
                "int");
            kedge_jdoc_free(twins);
            if (typed)
                break;
            if (kt_now_ms() >= deadline) {
                rc_edge_print(&env, "{\"op\":\"device_get\",\"id\":\"" DEV "\"}");
                rc_edge_print(&env, "{\"op\":\"device_list\"}");
            }
            ck_assert_msg(kt_now_ms() < deadline, "no typed twin under id " DEV);
            rc_sleep_ms(200);
        }
        n = rc_wait_edge_device(&env, DEV, kh_scale_ms(1000), &ids, &all);
        ck_assert_msg(n == 1 && !strcmp(ids.data, DEV " "),
                      "edge devices for %s: %d, ids: %s (want one: " DEV "; all: %s)", DEV, n,
                      ids.data, all.data);
    }
    kedge_buf_cleanup(&ids);
    kedge_buf_cleanup(&all);
}
END_TEST

START_TEST(device_report_reaches_the_cloud)
{
    int64_t t0;

    ck_assert_msg(dev != NULL, "no device client (the Device did not reach the edge)");
    report(21);
    t0 = kt_now_ms();
    rc_wait_reported(&env, DEV, "21", kh_scale_ms(REPORT_MS));
    printf("test_realcloud: measure: twin report -> Device status.twins reported in %.0f ms\n",
           (double)(kt_now_ms() - t0));
}
END_TEST

START_TEST(desired_value_reaches_the_device)
{
    struct kedge_jdoc *twins;
    struct kh_msg m;
    int64_t t0;

    ck_assert_msg(dev != NULL, "no device client (the Device did not reach the edge)");
    {
        kh_client_drain(dev);
        t0 = kt_now_ms();
        ck_assert_int_eq(cloudctl_kubectl(env.cloud, NULL, NULL, NULL, "patch", "device", DEV,
                                          "--type=json", "-p",
                                          "[{\"op\":\"replace\",\"path\":\"/spec/properties/0/"
                                          "desired/value\",\"value\":\"30\"}]",
                                          NULL),
                         0);
        ck_assert_msg(kh_client_wait(dev, DEV_TOPIC "/update/delta", 10000, &m) == 0,
                      "no delta for the desired value 30");
        printf("test_realcloud: measure: kubectl patch desired -> delta in %.0f ms: %s\n",
               (double)(kt_now_ms() - t0), m.payload);
        {
            struct kedge_jdoc *d = NULL;
            ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &d), 0);
            ck_assert_str_eq(rc_str(rc_path(kedge_jdoc_root(d), "delta"), "temperature"), "30");
            kedge_jdoc_free(d);
        }
        kh_msg_cleanup(&m);
        twins = rc_edge_twins(&env, DEV);
        ck_assert_str_eq(
            rc_str(rc_path(kedge_jdoc_root(twins), "twin.temperature.expected"), "value"), "30");
        kedge_jdoc_free(twins);
    }
}
END_TEST

/* ---- 5. an outage of cloudcore -------------------------------------------------------------- */

START_TEST(twin_updates_survive_a_cloud_outage)
{
    const char *r = getenv("KEDGE_RC_REPEAT");
    int rounds = r && atoi(r) > 0 ? atoi(r) : 1;

    ck_assert_msg(dev != NULL, "no device client (scenario 4 failed)");
    for (int round = 0; round < rounds; round++) {
        int64_t t0 = kt_now_ms(), t_up, waited;
        char last[16], wall_up[40];

        ck_assert_int_eq(cloudctl_stop_cloudcore(env.cloud), 0);
        for (int v = 1; v <= 50; v++)
            report(round * 100 + v);
        snprintf(last, sizeof(last), "%d", round * 100 + 50);
        /* the outage lasts 30 s of real time: that is the scenario, not a synchronisation */
        while ((waited = kt_now_ms() - t0) < OUTAGE_MS)
            rc_sleep_ms((int)(OUTAGE_MS - waited));
        ck_assert_int_eq(cloudctl_start_cloudcore(env.cloud), 0);
        t_up = kt_now_ms();
        rc_wall_now(wall_up, sizeof(wall_up));
        printf("test_realcloud: measure: outage %d/%d: cloudcore down %.1f s\n", round + 1, rounds,
               (double)(t_up - t0) / 1000);
        /* Ready again, and kept so by the edge: its lease renewed through the new cloudcore */
        rc_wait_lease_renewed(&env, wall_up, kh_scale_ms(READY_MS));
        rc_wait_node_ready(&env, kh_scale_ms(READY_MS));
        printf("test_realcloud: measure: outage %d: lease renewed and node Ready %.1f s after "
               "cloudcore came back\n",
               round + 1, (double)(kt_now_ms() - t_up) / 1000);
        expect_not_in_cloudcore_log(0, "session not found for node");
        {
            int reads;
            rc_wait_reported(&env, DEV, last, kh_scale_ms(60000));
            printf("test_realcloud: measure: outage %d: reported %s %.1f s after cloudcore "
                   "came back\n",
                   round + 1, last, (double)(kt_now_ms() - t_up) / 1000);
            /* Twin state is coalesced while the cloud is away: the 50 updates reach the new
             * cloudcore as the one report that was in flight when it went (resent) and one
             * merged report, not as 50 messages. */
            reads = cloudcore_read_count(0, "device/" DEV "/twin/edge_updated");
            printf("test_realcloud: measure: outage %d: the restarted cloudcore read %d twin "
                   "reports for the 50 updates made while it was away\n",
                   round + 1, reads);
            ck_assert_msg(reads >= 1 && reads <= 3, "cloudcore read %d twin reports", reads);
        }
    }
    kh_client_free(dev);
    dev = NULL;
}
END_TEST

/* ---- 7. uploads at the cap ----------------------------------------------------------------- */

/* cloudcore v1.15.4 sets no websocket read limit (viaduct's WSLaneWithoutPack reads with
 * gorilla's ReadJSON, no SetReadLimit), so the edge's own cap, plugin_opt_max_upload_bytes
 * (16 MiB of encoded message by default), decides: an upload just under it is read by the real
 * cloud and the link stays up; one over it is refused at the edge (v5: PUBACK 0x87) and counted,
 * and never reaches the queue. */
#define CAP_BYTES (16 << 20)

START_TEST(upload_at_the_cap_reaches_the_cloud)
{
    struct kh_client *c;
    struct kedge_jdoc *st;
    char *payload = malloc(CAP_BYTES + 1);
    long mark = cloudctl_log_size(env.cloud, "cloudcore");
    int64_t t0, deadline;
    int64_t oversize = -1;

    ck_assert_ptr_nonnull(payload);
    ck_assert_msg(rc_edge_up(&env), "the edge node did not come up");
    memset(payload, 'u', CAP_BYTES + 1);
    c = kh_client_new(kh_broker_port(env.broker), "rc-uploader", "sensor-up", "x", 5);
    ck_assert_ptr_nonnull(c);
    /* the envelope (header, route) is a few hundred bytes: 4 KiB under the cap fits */
    t0 = kt_now_ms();
    ck_assert_int_eq(
        kh_client_pub(c, "$hw/events/upload/rc-cap", payload, CAP_BYTES - 4096, 1, false), 0);
    deadline = kt_now_ms() + kh_scale_ms(60000);
    while (cloudcore_read_count(mark, "$hw/events/upload/rc-cap") < 1) {
        ck_assert_msg(kt_now_ms() < deadline, "cloudcore never read the upload at the cap");
        rc_sleep_ms(200);
    }
    printf("test_realcloud: measure: a %d-byte upload read by cloudcore %.1f s after its "
           "PUBACK\n",
           CAP_BYTES - 4096, (double)(kt_now_ms() - t0) / 1000);
    ck_assert_int_eq(
        kh_client_pub(c, "$hw/events/upload/rc-over", payload, CAP_BYTES + 1, 1, false), 0x87);
    st = rc_edge_status(&env);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(
        kedge_json_int64(kedge_json_get(kedge_jdoc_root(st), "uploads_oversize"), &oversize), 0);
    ck_assert_int_eq(oversize, 1);
    kedge_jdoc_free(st);
    kh_client_free(c);
    free(payload);
    rc_wait_node_ready(&env, kh_scale_ms(READY_MS));
    ck_assert_int_eq(cloudcore_read_count(mark, "$hw/events/upload/rc-over"), 0);
}
END_TEST

/* ---- the link's end ---------------------------------------------------------------------------
 */

/* kedge-bridge stopped with SIGTERM says goodbye: a websocket close frame (cloudcore logs
 * close 1000, not 1006 "abnormal closure"). */
START_TEST(sigterm_closes_the_link_cleanly)
{
    long mark = cloudctl_log_size(env.cloud, "cloudcore");
    int64_t deadline;
    char *log = NULL;

    ck_assert_msg(rc_edge_up(&env), "the edge node did not come up");
    ck_assert_int_eq(bridgectl_stop(env.bridge), 0);
    deadline = kt_now_ms() + kh_scale_ms(10000);
    /* cloudcore notices the end of the link: "failed to read message, error: ..." */
    while (!(log = cloudctl_log_read(env.cloud, "cloudcore", mark)) ||
           !strstr(log, "failed to read message")) {
        kedge_free(log);
        ck_assert_msg(kt_now_ms() < deadline, "cloudcore did not notice the bridge leaving");
        rc_sleep_ms(100);
    }
    {
        char *line = strstr(log, "failed to read message"), *eol = strchr(line, '\n');
        if (eol)
            *eol = '\0';
        printf("test_realcloud: cloudcore, after SIGTERM of kedge-bridge: %s\n", line);
        ck_assert_msg(!strstr(line, "1006"), "no close frame: %s", line);
    }
    kedge_free(log);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("realcloud");
    TCase *tc = tcase_create("realcloud");

    tcase_add_test(tc, node_registers_and_is_ready);
    tcase_add_test(tc, deployment_runs_on_the_node);
    tcase_add_test(tc, node_stays_ready_past_the_grace);
    tcase_add_test(tc, bridge_and_broker_killed_keep_the_pod);
    tcase_add_test(tc, deployment_scales_to_zero);
    tcase_add_test(tc, service_account_token_and_projected_volumes);
    tcase_add_test(tc, device_appears_once_at_the_edge);
    tcase_add_test(tc, device_report_reaches_the_cloud);
    tcase_add_test(tc, desired_value_reaches_the_device);
    tcase_add_test(tc, twin_updates_survive_a_cloud_outage);
    tcase_add_test(tc, upload_at_the_cap_reaches_the_cloud);
    realcloud_pull_tests(tc, &env); /* test_realcloud_pull.c */
    tcase_add_test(tc, sigterm_closes_the_link_cleanly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    char why[PATH_MAX + 128];
    int failed, rc;
    int64_t t0 = kt_now_ms();

    if (!cloudctl_available(KEDGE_CLOUDCORE_DIR, why, sizeof(why))) {
        printf("test_realcloud: skipped: %s\n", why);
        return 77;
    }
    if (!enginectl_available() || !enginectl_wanted()) {
        printf("test_realcloud: skipped: no container engine (%s)\n",
               enginectl_wanted() ? enginectl_unavailable_reason() : "KEDGE_TEST_ENGINE=none");
        return 77;
    }
    failed = rc_run_suite(&env, KEDGE_CLOUDCORE_DIR, BRIDGE_PASS, suite());
    realcloud_pull_cleanup();
    rc = rc_teardown(&env);
    printf("test_realcloud: measure: whole binary %.1f s\n", (double)(kt_now_ms() - t0) / 1000);
    return failed || rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
