/* Pods as real containers, end to end: kedge-cloudsim delivers pods, the real kedge-bridge's
 * Edged runs them on a real engine (podman's Docker-compatible service, enginectl.h), the
 * broker with kedge_plugin.so carries the bridge's local link (harness.h).
 *
 *  1. The seed's example: an nginx-like pod (busybox httpd serving a page from a configMap
 *     volume on a hostPort, env from fieldRef and configMapKeyRef, a readiness probe) runs as
 *     an infra + app container with kubelet's labels; GET on 127.0.0.1 returns the page;
 *     cloudsim has Running and Ready. A second pod asking for the same host port waits with
 *     the reason while the first keeps serving. The node reports the engine as its container
 *     runtime (podman://<version>). The app process killed: restartCount 1, lastState
 *     terminated 137; killed again: CrashLoopBackOff while the back-off runs, then
 *     restartCount 2. Deleted in the cloud (a delete, the pod gone from the API server): the
 *     containers and volumes are gone.
 *  2. Autonomy: a pod runs; cloudsim stops; the bridge restarts: the page is still served, the
 *     containers are the same ones (not recreated) and no create was issued; a container
 *     labelled for this node but of no known pod (an orphan) is removed.
 *  3. Lifecycle: restartPolicy Never (exit 3: Failed, terminated 3) and OnFailure (exit 0:
 *     Succeeded); an init container writing into an emptyDir the app reads, and an exec
 *     liveness probe that starts failing: the container is restarted (restartCount >= 1), the
 *     init container shows Completed.
 *  4. A graceful delete (an update with deletionTimestamp): stopped, final status, one delete;
 *     the update cloudcore sends after that (the pod MODIFIED) does not bring it back.
 *  5. Bad input: an invalid container name is Failed (InvalidPodSpec, with the reason); an
 *     invalid image name, an image that cannot be pulled, a missing configMap volume, a missing
 *     configMap key in env: each a Waiting status with kubelet's reason and a message, the
 *     bridge still running; and a bridge whose engine is down reports why.
 *  5. An ordinary pod as the API server writes it: the kube-api-access projected volume (a
 *     token the edge asks cloudsim for with a TokenRequest, kube-root-ca.crt, the namespace)
 *     and a downwardAPI volume (labels, annotations, a memory limit): the container reads them.
 *
 * Skipped (with a message) when podman is not installed or KEDGE_TEST_ENGINE=none. Waits are
 * deadlines on a condition, never sleeps.
 */
#define _GNU_SOURCE

#include "test_pods.h"

/* ---- 1. the seed's example ------------------------------------------------------------------ */

START_TEST(nginx_like_pod_end_to_end)
{
    struct kedge_buf labels = KEDGE_BUF_INIT;
    char id[80], first_id[80], vol[512];
    int port = kt_free_port(), one = 1, two = 2;
    long mark;

    if (skip_without_engine())
        return;
    chain_up(NULL);
    send_configmap("web-page", "{\"index.html\":\"<h1>hello from kedge</h1>\\n\","
                               "\"greeting\":\"hi\"}");
    send_web_pod("web", "uid-web-1", port, "insert");
    wait_page(port, "hello from kedge");
    snprintf(vol, sizeof(vol), "%s/pods/uid-web-1/volumes/page", bridgectl_dir(bridge));
    ck_assert_msg(access(vol, F_OK) == 0, "no configMap volume in %s", vol);
    snprintf(vol, sizeof(vol), "%s/pods/uid-web-1", bridgectl_dir(bridge));
    wait_containers("uid-web-1", 2);
    app_container("uid-web-1", "web", id, sizeof(id), &labels);
    ck_assert_msg(strstr(labels.data, "io.kubernetes.pod.name=web\n") &&
                      strstr(labels.data, "io.kubernetes.pod.namespace=default\n") &&
                      strstr(labels.data, "io.kubernetes.pod.uid=uid-web-1\n") &&
                      strstr(labels.data, "io.kubernetes.container.name=web\n"),
                  "labels: %s", labels.data);
    wait_pod("web", running_ready, NULL, "Running and ready");
    snprintf(first_id, sizeof(first_id), "%s", id);
    wait_runtime_version(engine_runtime_prefix()); /* podman:// or docker:// */

    /* a second pod wants the same host port: it waits with the reason, the first keeps it */
    send_web_pod("clash", "uid-clash", port, "insert");
    wait_pod("clash", waiting_message, "is already in use", "a host port conflict");
    wait_page(port, "hello from kedge");
    sim_send(
        ROUTE("delete", "default/pod/clash") "{\"metadata\":{\"name\":\"clash\","
                                             "\"namespace\":\"default\",\"uid\":\"uid-clash\"}}}");

    /* the app process dies: a new container, restartCount 1, lastState 137 */
    kill_app("uid-web-1", "web");
    wait_pod("web", restarted, &one, "restartCount 1");
    {
        struct kedge_jdoc *doc = sim_pod("web");
        const struct kedge_jval *cs = first_cs(kedge_jdoc_root(doc));
        ck_assert_int_eq(num(jpath(cs, "lastState", "terminated", "exitCode")), 137);
        kedge_jdoc_free(doc);
    }
    wait_page(port, "hello from kedge");
    /* and again at once: now the back-off holds it (CrashLoopBackOff), then restart 2 */
    wait_pod("web", running_ready, NULL, "Running and ready after the restart");
    kill_app("uid-web-1", "web");
    wait_pod("web", waiting_reason, "CrashLoopBackOff", "CrashLoopBackOff");
    wait_pod("web", restarted, &two, "restartCount 2");

    /* deleted in the cloud: containers gone (no terminal status: the API server has no pod) */
    mark = bridgectl_log_mark(bridge);
    sim_send(
        ROUTE("delete", "default/pod/web") "{\"metadata\":{\"name\":\"web\","
                                           "\"namespace\":\"default\",\"uid\":\"uid-web-1\"}}}");
    wait_containers("uid-web-1", 0);
    ck_assert_int_eq(bridgectl_wait_log(bridge, mark, "pod default/pod/web (uid-web-1) removed",
                                        kh_scale_ms(WAIT_MS)),
                     0);
    {
        char *page = kt_http_get(port, "/");
        bool served = page != NULL;
        free(page);
        ck_assert_msg(!served, "the page is still served after the delete");
    }
    ck_assert_msg(access(vol, F_OK) != 0, "the pod's volumes are still in %s", vol);
    kedge_buf_cleanup(&labels);
    teardown();
}
END_TEST

/* ---- 2. autonomy ---------------------------------------------------------------------------- */

START_TEST(pods_survive_cloud_loss_and_bridge_restart)
{
    struct kedge_buf resp = KEDGE_BUF_INIT;
    char before[4][80], after[4][80];
    int port = kt_free_port(), n, status = 0;
    long mark;

    if (skip_without_engine())
        return;
    chain_up(NULL);
    send_configmap("web-page", "{\"index.html\":\"<p>autonomous</p>\",\"greeting\":\"hi\"}");
    send_web_pod("web2", "uid-web-2", port, "insert");
    wait_page(port, "autonomous");
    wait_pod("web2", running_ready, NULL, "Running and ready");
    n = pod_containers("uid-web-2", before, 4);
    ck_assert_int_eq(n, 2);

    ck_assert_int_eq(simctl_stop(sim), 0); /* the cloud is gone */
    ck_assert_int_eq(bridgectl_stop(bridge), 0);
    /* while the bridge is down, an orphan appears: this node's label, a pod nobody has */
    ck_assert_int_eq(enginectl_http(engine, "POST", "/v1.41/containers/create?name=orphan-1",
                                    "{\"Image\":\"localhost/pause:edge\",\"Labels\":{"
                                    "\"io.kedge.node\":\"" NODE "\","
                                    "\"io.kubernetes.pod.uid\":\"uid-gone\","
                                    "\"io.kubernetes.container.name\":\"POD\"}}",
                                    &status, &resp),
                     0);
    ck_assert_int_eq(status, 201);

    mark = bridgectl_log_mark(bridge);
    bset("log_level", "debug");
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    ck_assert_int_eq(bridgectl_wait_log(bridge, mark, "removing container", kh_scale_ms(WAIT_MS)),
                     0);
    wait_containers("uid-gone", 0);
    wait_page(port, "autonomous");
    ck_assert_int_eq(pod_containers("uid-web-2", after, 4), 2);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(!strcmp(before[i], after[0]) || !strcmp(before[i], after[1]),
                      "container %s was replaced", before[i]);
    ck_assert_int_eq(bridgectl_count_log(bridge, mark, "/containers/create"), 0);
    kedge_buf_cleanup(&resp);
    teardown();
}
END_TEST

/* ---- 5. bad input ---------------------------------------------------------------------------- */

START_TEST(bad_pods_get_reasons_not_crashes)
{
    if (skip_without_engine())
        return;
    chain_up(NULL);
    send_simple_pod("badname", "Not A Valid:Image!", "", "");
    send_simple_pod("nopull", "localhost/nope:1", "", "");
    send_simple_pod("nocm", "localhost/busybox:edge",
                    ",\"volumeMounts\":[{\"name\":\"v\",\"mountPath\":\"/v\"}]",
                    ",\"volumes\":[{\"name\":\"v\",\"configMap\":{\"name\":\"absent\"}}]");
    send_simple_pod("nokey", "localhost/busybox:edge",
                    ",\"env\":[{\"name\":\"X\",\"valueFrom\":{\"configMapKeyRef\":"
                    "{\"name\":\"absent2\",\"key\":\"k\"}}}]",
                    "");
    sim_send(ROUTE("insert", "default/pod/badc") "{\"metadata\":{\"name\":\"badc\",\"namespace\":"
                                                 "\"default\",\"uid\":\"uid-badc\"},"
                                                 "\"spec\":{\"nodeName\":\"" NODE
                                                 "\",\"containers\":[{\"name\":\"Not_A_Name\","
                                                 "\"image\":\"localhost/busybox:edge\"}]}}}");
    wait_pod("badname", waiting_reason, "InvalidImageName", "InvalidImageName");
    wait_pod("badc", phase_is, "Failed", "Failed for an invalid container name");
    {
        struct kedge_jdoc *doc = sim_pod("badc");
        const struct kedge_jval *m = jpath(kedge_jdoc_root(doc), "status", "message", NULL);
        ck_assert_msg(m && strstr(m->str, "Not_A_Name"), "message: %s", m ? m->str : "none");
        kedge_jdoc_free(doc);
    }
    wait_pod("nopull", waiting_reason, "ImagePullBackOff", "ImagePullBackOff");
    wait_pod("nocm", waiting_reason, "ContainerCreating", "ContainerCreating");
    wait_pod("nokey", waiting_reason, "CreateContainerConfigError", "CreateContainerConfigError");
    {
        struct kedge_jdoc *doc = sim_pod("nocm");
        const struct kedge_jval *m =
            jpath(first_cs(kedge_jdoc_root(doc)), "state", "waiting", "message");
        ck_assert_msg(m && strstr(m->str, "configmap \"absent\" not found"), "message: %s",
                      m ? m->str : "none");
        kedge_jdoc_free(doc);
    }
    ck_assert(bridgectl_running(bridge));
    teardown();
}
END_TEST

START_TEST(engine_down_is_reported)
{
    char sock[256];

    snprintf(sock, sizeof(sock), "/tmp/kedge-no-engine-%d.sock", (int)getpid());
    chain_up(sock);
    send_simple_pod("lonely", "localhost/busybox:edge", "", "");
    wait_pod("lonely", waiting_reason, "ContainerCreating", "ContainerCreating");
    {
        struct kedge_jdoc *doc = sim_pod("lonely");
        const struct kedge_jval *m =
            jpath(first_cs(kedge_jdoc_root(doc)), "state", "waiting", "message");
        ck_assert_msg(m && strstr(m->str, "container runtime"), "message: %s", m ? m->str : "none");
        kedge_jdoc_free(doc);
    }
    ck_assert(bridgectl_running(bridge));
    teardown();
}
END_TEST

/* ---- 5. an ordinary pod: the API server's kube-api-access volume, a downwardAPI volume ------ */

/* The pod as the API server stores it: the ServiceAccount admission's projected volume and
 * mount (token, kube-root-ca.crt, namespace) besides the pod's own downwardAPI volume. httpd
 * serves the whole file system on a host port, so the test reads what the container sees. */
static void send_sa_pod(int port)
{
    sim_send(
        ROUTE(
            "insert",
            "default/pod/tok") "{\"metadata\":{\"name\":\"tok\",\"namespace\":\"default\",\"uid\":"
                               "\"uid-tok-1\","
                               "\"labels\":{\"app\":\"tok\",\"tier\":\"edge\"},"
                               "\"annotations\":{\"note\":\"say \\\"hi\\\"\"}},"
                               "\"spec\":{\"nodeName\":\"" NODE
                               "\",\"serviceAccountName\":\"default\","
                               "\"serviceAccount\":\"default\",\"terminationGracePeriodSeconds\":1,"
                               "\"containers\":[{\"name\":\"c\",\"image\":\"localhost/"
                               "busybox:edge\","
                               "\"command\":[\"httpd\",\"-f\",\"-p\",\"8080\",\"-h\",\"/\"],"
                               "\"ports\":[{\"containerPort\":8080,\"hostPort\":%d,\"hostIP\":"
                               "\"127.0.0.1\"}],"
                               "\"resources\":{\"limits\":{\"memory\":\"64Mi\"}},"
                               "\"volumeMounts\":[{\"name\":\"podinfo\",\"mountPath\":\"/etc/"
                               "podinfo\"},"
                               "{\"name\":\"kube-api-access-q2x9z\",\"readOnly\":true,"
                               "\"mountPath\":\"/var/run/secrets/kubernetes.io/"
                               "serviceaccount\"}]}],"
                               "\"volumes\":[{\"name\":\"podinfo\",\"downwardAPI\":{\"items\":["
                               "{\"path\":\"labels\",\"fieldRef\":{\"fieldPath\":\"metadata."
                               "labels\"}},"
                               "{\"path\":\"note\",\"fieldRef\":{\"fieldPath\":\"metadata."
                               "annotations\"}},"
                               "{\"path\":\"mem\",\"resourceFieldRef\":{\"containerName\":\"c\","
                               "\"resource\":\"limits.memory\",\"divisor\":\"1Mi\"}}]}},"
                               "{\"name\":\"kube-api-access-q2x9z\",\"projected\":{\"defaultMode\":"
                               "420,\"sources\":["
                               "{\"serviceAccountToken\":{\"expirationSeconds\":3607,\"path\":"
                               "\"token\"}},"
                               "{\"configMap\":{\"name\":\"kube-root-ca.crt\",\"items\":[{\"key\":"
                               "\"ca.crt\","
                               "\"path\":\"ca.crt\"}]}},"
                               "{\"downwardAPI\":{\"items\":[{\"fieldRef\":{\"apiVersion\":\"v1\","
                               "\"fieldPath\":\"metadata.namespace\"},\"path\":\"namespace\"}]}}]}}"
                               "]}}}",
        port);
}

static char *wait_file(int port, const char *path)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    char *got;

    while (!(got = kt_http_get(port, path))) {
        ck_assert_msg(kt_now_ms() < deadline, "%s not served on 127.0.0.1:%d", path, port);
        kt_pause_ms(PAUSE_MS);
    }
    return got;
}

/* The claims (middle part) of a JWT, base64url-decoded. */
static char *jwt_claims(const char *jwt)
{
    const char *a = strchr(jwt, '.'), *b = a ? strchr(a + 1, '.') : NULL;
    struct kedge_buf std = KEDGE_BUF_INIT;
    char *out = NULL;
    size_t len = 0;
    const char *p;

    ck_assert_msg(a && b && !strchr(b + 1, '.'), "not a JWT: %s", jwt);
    for (p = a + 1; p < b; p++)
        ck_assert_int_eq(kedge_buf_putc(&std, *p == '-' ? '+' : *p == '_' ? '/' : *p), 0);
    while (std.len % 4)
        ck_assert_int_eq(kedge_buf_putc(&std, '='), 0);
    ck_assert_int_eq(kedge_base64_decode(std.data, std.len, &out, &len), 0);
    kedge_buf_cleanup(&std);
    return out;
}

/* The request the edge sent for the token (cloudsim's received log). */
static bool token_request_seen(const char *pod_uid)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *m;
    bool seen = false;
    int status = 0;

    ck_assert_int_eq(
        simctl_http_json(sim, "GET", "/received?skip_keepalive=1", NULL, &status, &doc), 0);
    for (m = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; m && !seen; m = m->next) {
        const struct kedge_jval *j = kedge_json_get(m, "json");
        const struct kedge_jval *spec = jpath(j, "content", "spec", NULL);

        seen = str_is(jpath(j, "route", "resource", NULL), "default/serviceaccounttoken/default") &&
               str_is(jpath(j, "route", "operation", NULL), "query") &&
               str_is(jpath(j, "route", "source", NULL), "edged") &&
               str_is(jpath(j, "route", "group", NULL), "meta") &&
               num(kedge_json_get(spec, "expirationSeconds")) == 3607 &&
               str_is(jpath(spec, "boundObjectRef", "kind", NULL), "Pod") &&
               str_is(jpath(spec, "boundObjectRef", "name", NULL), "tok") &&
               str_is(jpath(spec, "boundObjectRef", "uid", NULL), pod_uid) &&
               kedge_json_is_null(kedge_json_get(spec, "audiences"));
    }
    kedge_jdoc_free(doc);
    return seen;
}

START_TEST(ordinary_pod_with_service_account_token)
{
    char *token, *ca, *ns, *labels, *note, *mem, *claims, *want_ca = NULL;
    size_t ca_len = 0;
    int port = kt_free_port();
    FILE *f;

    if (skip_without_engine())
        return;
    chain_up(NULL);
    send_sa_pod(port);
    token = wait_file(port, "/var/run/secrets/kubernetes.io/serviceaccount/token");
    wait_pod("tok", running_ready, NULL, "Running and ready");
    ca = wait_file(port, "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
    ns = wait_file(port, "/var/run/secrets/kubernetes.io/serviceaccount/namespace");
    labels = wait_file(port, "/etc/podinfo/labels");
    note = wait_file(port, "/etc/podinfo/note");
    mem = wait_file(port, "/etc/podinfo/mem");

    /* the token: cloudsim's answer to the edge's TokenRequest, bound to this pod */
    claims = jwt_claims(token);
    ck_assert_msg(strstr(claims, "\"sub\":\"system:serviceaccount:default:default\"") &&
                      strstr(claims, "\"pod\":{\"name\":\"tok\",\"uid\":\"uid-tok-1\"}"),
                  "claims: %s", claims);
    ck_assert(token_request_seen("uid-tok-1"));
    /* ca.crt: the cluster CA from kube-root-ca.crt; namespace from the downward API */
    f = fopen(simctl_cert_path(sim, "rootCA.crt"), "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_gt(getdelim(&want_ca, &ca_len, '\0', f), 0);
    fclose(f);
    ck_assert_str_eq(ca, want_ca);
    ck_assert_str_eq(ns, "default");
    ck_assert_str_eq(labels, "app=\"tok\"\ntier=\"edge\"");
    ck_assert_str_eq(note, "note=\"say \\\"hi\\\"\"");
    ck_assert_str_eq(mem, "64");

    /* deleted: the containers and the pod's volumes go */
    sim_send(
        ROUTE("delete", "default/pod/tok") "{\"metadata\":{\"name\":\"tok\","
                                           "\"namespace\":\"default\",\"uid\":\"uid-tok-1\"}}}");
    wait_containers("uid-tok-1", 0);
    free(token);
    free(ca);
    free(ns);
    free(labels);
    free(note);
    free(mem);
    free(want_ca);
    kedge_free(claims);
    teardown();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pods");
    TCase *tc = tcase_create("pods");

    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, nginx_like_pod_end_to_end);
    tcase_add_test(tc, pods_survive_cloud_loss_and_bridge_restart);
    pods_add_lifecycle_tests(tc);
    tcase_add_test(tc, bad_pods_get_reasons_not_crashes);
    tcase_add_test(tc, engine_down_is_reported);
    tcase_add_test(tc, ordinary_pod_with_service_account_token);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kh_run_suite(suite(), CK_NORMAL);
}
