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

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridgectl.h"
#include "chain.h"
#include "enginectl.h"
#include "harness.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/util.h"
#include "kedge/json.h"
#include "simctl.h"
#include "proc.h"
#include "testsupport.h"

#define PAUSE_MS 100 /* between two polls of a deadline loop */

#define WAIT_MS 30000 /* pod start-up includes an engine's create + start of two containers */
#define NODE "kedge-pods"
#define BRIDGE_PASS "p0ds-Secret"

static struct enginectl *engine;
static struct simctl *sim;
static struct kh_broker *broker;
static struct bridgectl *bridge;

/* ---- helpers ------------------------------------------------------------------------------- */

static void wait_page(int port, const char *want)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    char *got = NULL;

    while (!(got = kt_http_get(port, "/")) || !strstr(got, want)) {
        free(got);
        got = NULL;
        ck_assert_msg(kt_now_ms() < deadline, "no page with \"%s\" on 127.0.0.1:%d", want, port);
        kt_pause_ms(PAUSE_MS);
    }
    free(got);
}

static void sim_send(const char *fmt, ...)
{
    va_list ap;
    char *json = NULL;

    va_start(ap, fmt);
    ck_assert_int_gt(vasprintf(&json, fmt, ap), 0);
    va_end(ap);
    ck_assert_msg(simctl_send(sim, NODE, json, NULL) == 0, "cloudsim refused %s", json);
    free(json);
}

#define ROUTE(op, res)                                                                             \
    "{\"header\":{\"resourceversion\":\"1\"},\"route\":{\"source\":\"edgecontroller\","            \
    "\"group\":\"resource\",\"operation\":\"" op "\",\"resource\":\"" res "\"},\"content\":"

static void send_configmap(const char *name, const char *data_json)
{
    sim_send(
        ROUTE("update",
              "default/configmap/%s") "{\"metadata\":{\"name\":\"%s\","
                                      "\"namespace\":\"default\",\"uid\":\"cm-%s\"},\"data\":%s}}",
        name, name, name, data_json);
}

/* The pod as the cloud knows it: GET /object (NULL when absent). */
static struct kedge_jdoc *sim_pod(const char *name)
{
    struct kedge_jdoc *doc = NULL;
    char path[256];
    int status = 0;

    snprintf(path, sizeof(path), "/object?key=default/pod/%s", name);
    if (simctl_http_json(sim, "GET", path, NULL, &status, &doc) < 0 || status != 200) {
        kedge_jdoc_free(doc);
        return NULL;
    }
    return doc;
}

static const struct kedge_jval *jpath(const struct kedge_jval *v, const char *a, const char *b,
                                      const char *c)
{
    v = kedge_json_get(v, a);
    if (b)
        v = kedge_json_get(v, b);
    if (c)
        v = kedge_json_get(v, c);
    return v;
}

static const struct kedge_jval *first_cs(const struct kedge_jval *pod)
{
    const struct kedge_jval *l = jpath(pod, "status", "containerStatuses", NULL);

    return l && l->type == KEDGE_JARR ? l->child : NULL;
}

static bool str_is(const struct kedge_jval *v, const char *s)
{
    return v && v->type == KEDGE_JSTR && !strcmp(v->str, s);
}

static int64_t num(const struct kedge_jval *v)
{
    int64_t n = -1;

    (void)kedge_json_int64(v, &n);
    return n;
}

typedef bool (*pod_cond_fn)(const struct kedge_jval *pod, const void *arg);

/* Wait until the cloud's pod satisfies cond; the last status is printed when it does not. */
static void wait_pod(const char *name, pod_cond_fn cond, const void *arg, const char *what)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    for (;;) {
        struct kedge_jdoc *doc = sim_pod(name);
        bool ok = doc && cond(kedge_jdoc_root(doc), arg);
        if (!ok && kt_now_ms() >= deadline)
            bridgectl_dump_log(bridge); /* what edged saw and decided */
        kedge_jdoc_free(doc);
        if (ok)
            return;
        ck_assert_msg(kt_now_ms() < deadline, "pod %s: %s never came", name, what);
        kt_pause_ms(PAUSE_MS);
    }
}

static bool running_ready(const struct kedge_jval *pod, const void *arg)
{
    const struct kedge_jval *cs = first_cs(pod);
    const struct kedge_jval *ready = kedge_json_get(cs, "ready");

    (void)arg;
    return str_is(jpath(pod, "status", "phase", NULL), "Running") && ready &&
           ready->type == KEDGE_JBOOL && ready->boolean;
}

static bool restarted(const struct kedge_jval *pod, const void *arg)
{
    const struct kedge_jval *cs = first_cs(pod);

    const struct kedge_jval *running = jpath(cs, "state", "running", NULL);

    /* states not shown are null in the patch (podstatus.c), stored as sent */
    return num(kedge_json_get(cs, "restartCount")) >= *(const int *)arg && running &&
           running->type == KEDGE_JOBJ;
}

static bool waiting_message(const struct kedge_jval *pod, const void *arg)
{
    const struct kedge_jval *m = jpath(first_cs(pod), "state", "waiting", "message");

    return m && m->type == KEDGE_JSTR && strstr(m->str, arg);
}

static bool waiting_reason(const struct kedge_jval *pod, const void *arg)
{
    const struct kedge_jval *cs = first_cs(pod);

    return str_is(jpath(cs, "state", "waiting", "reason"), arg);
}

/* The engine's containers of a pod, by UID label. */
static int pod_containers(const char *uid, char ids[][80], int max)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *c;
    char filter[160];
    int n = 0;

    snprintf(filter, sizeof(filter), "io.kubernetes.pod.uid=%s", uid);
    ck_assert_int_eq(enginectl_list(engine, filter, &doc), 0);
    for (c = kedge_jdoc_root(doc)->child; c && n < max; c = c->next) {
        const struct kedge_jval *id = kedge_json_get(c, "Id");
        if (ids)
            snprintf(ids[n], 80, "%s", id ? id->str : "");
        n++;
    }
    kedge_jdoc_free(doc);
    return n;
}

static void wait_containers(const char *uid, int want)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (pod_containers(uid, NULL, 8) != want) {
        ck_assert_msg(kt_now_ms() < deadline, "pod %s: not %d containers", uid, want);
        kt_pause_ms(PAUSE_MS);
    }
}

/* The app container's id and labels (the one named `cname`). */
static void app_container(const char *uid, const char *cname, char *id, size_t len,
                          struct kedge_buf *labels)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *c;
    char filter[160];

    snprintf(filter, sizeof(filter), "io.kubernetes.pod.uid=%s", uid);
    ck_assert_int_eq(enginectl_list(engine, filter, &doc), 0);
    id[0] = '\0';
    for (c = kedge_jdoc_root(doc)->child; c; c = c->next) {
        const struct kedge_jval *l = kedge_json_get(c, "Labels");
        const struct kedge_jval *n = kedge_json_get_exact(l, "io.kubernetes.container.name", 28);
        const struct kedge_jval *st = kedge_json_get(c, "State");
        if (!str_is(n, cname) || !str_is(st, "running"))
            continue;
        snprintf(id, len, "%s", kedge_json_get(c, "Id")->str);
        if (labels) {
            const struct kedge_jval *m;
            for (m = l->child; m; m = m->next)
                ck_assert_int_eq(
                    kedge_buf_printf(labels, "%.*s=%s\n", (int)m->key_len, m->key, m->str), 0);
        }
    }
    kedge_jdoc_free(doc);
}

static void kill_app(const char *uid, const char *cname)
{
    struct kedge_buf resp = KEDGE_BUF_INIT;
    char id[80], path[200];
    int status = 0;

    app_container(uid, cname, id, sizeof(id), NULL);
    ck_assert_msg(id[0], "no running %s container", cname);
    snprintf(path, sizeof(path), "/v1.41/containers/%s/kill?signal=KILL", id);
    ck_assert_int_eq(enginectl_http(engine, "POST", path, NULL, &status, &resp), 0);
    ck_assert_msg(status == 204, "kill: HTTP %d", status);
    kedge_buf_cleanup(&resp);
}

/* ---- the chain ------------------------------------------------------------------------------ */

static void bset(const char *key, const char *value)
{
    ck_assert_int_eq(bridgectl_set(bridge, key, value), 0);
}

static void bset_long(const char *key, long value)
{
    ck_assert_int_eq(bridgectl_set_long(bridge, key, value), 0);
}

static void chain_up(const char *engine_socket)
{
    struct bridgectl_opts bo = {0};
    struct kh_broker_opts ko = {0};
    struct kh_opt popts[3] = {{"node_name", NODE}, {NULL, NULL}, {NULL, NULL}};
    struct simctl_opts so = {0};

    if (!engine && enginectl_available() && enginectl_wanted())
        ck_assert_int_eq(enginectl_start(&engine), 0);
    so.node = NODE;
    ck_assert_int_eq(simctl_start(&so, &sim), 0);
    bo.password = BRIDGE_PASS;
    ck_assert_int_eq(bridgectl_new(&bo, &bridge), 0);
    popts[1].key = "bridge_password_file";
    popts[1].value = bridgectl_password_path(bridge);
    ko.plugin_opts = popts;
    broker = kh_broker_start(&ko);
    ck_assert_msg(broker != NULL, "broker with kedge_plugin.so did not start");
    ck_assert_int_eq(bridgectl_wire_cloudsim(bridge, sim, NODE, kh_broker_port(broker), false), 0);
    bset("engine_socket", engine_socket ? engine_socket : enginectl_socket(engine));
    bset("pod_infra_image", "localhost/pause:edge");
    bset_long("pod_backoff_initial_ms", kh_scale_ms(3000));
    bset_long("pod_backoff_max_ms", kh_scale_ms(12000));
    bset_long("pod_resync_s", 2);
    bset("log_level", "info");
    ck_assert_int_eq(bridgectl_start(bridge), 0);
}

static void teardown(void)
{
    int est = 0;
    struct chain_exit x;

    chain_down(&bridge, &broker, &sim, true, &x);
    if (engine)
        est = enginectl_stop(engine);
    enginectl_free(engine);
    engine = NULL;
    chain_assert_clean(&x);
    ck_assert_msg(est == 0, "engine stop status %d", est);
}

static bool skip_without_engine(void)
{
    if (enginectl_available() && enginectl_wanted())
        return false;
    fprintf(stderr, "test_pods: no container engine (podman) here or KEDGE_TEST_ENGINE=none: "
                    "skipped\n");
    return true;
}

/* The web pod: busybox httpd serving /www (a configMap) on hostPort `port`. */
static void send_web_pod(const char *name, const char *uid, int port, const char *op)
{
    sim_send(
        ROUTE("%s",
              "default/pod/%s") "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"uid\":"
                                "\"%s\","
                                "\"labels\":{\"app\":\"web\"}},"
                                "\"spec\":{\"nodeName\":\"" NODE
                                "\",\"terminationGracePeriodSeconds\":1,"
                                "\"containers\":[{\"name\":\"web\",\"image\":\"localhost/"
                                "busybox:edge\","
                                "\"imagePullPolicy\":\"IfNotPresent\","
                                "\"command\":[\"httpd\",\"-f\",\"-p\",\"8080\",\"-h\",\"/www\"],"
                                "\"env\":[{\"name\":\"POD_NAME\",\"valueFrom\":{\"fieldRef\":{"
                                "\"fieldPath\":"
                                "\"metadata.name\"}}},{\"name\":\"GREETING\",\"valueFrom\":{"
                                "\"configMapKeyRef\":"
                                "{\"name\":\"web-page\",\"key\":\"greeting\"}}}],"
                                "\"ports\":[{\"containerPort\":8080,\"hostPort\":%d,\"hostIP\":"
                                "\"127.0.0.1\"}],"
                                "\"readinessProbe\":{\"httpGet\":{\"path\":\"/\",\"port\":8080},"
                                "\"periodSeconds\":1},"
                                "\"resources\":{\"limits\":{\"memory\":\"64Mi\",\"cpu\":\"500m\"}},"
                                "\"volumeMounts\":[{\"name\":\"page\",\"mountPath\":\"/"
                                "www\",\"readOnly\":true}]}],"
                                "\"volumes\":[{\"name\":\"page\",\"configMap\":{\"name\":\"web-"
                                "page\"}}]}}}",
        op, name, name, uid, port);
}

/* The node's containerRuntimeVersion (kubelet's <runtime>://<version>) starts with prefix,
 * and has a version after it. */
static void wait_runtime_version(const char *prefix)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    size_t n = strlen(prefix);

    for (;;) {
        struct kedge_jdoc *doc = NULL;
        int status = 0;
        bool ok = false;
        if (simctl_http_json(sim, "GET", "/object?key=node/" NODE, NULL, &status, &doc) == 0 &&
            status == 200) {
            const struct kedge_jval *v =
                jpath(kedge_jdoc_root(doc), "status", "nodeInfo", "containerRuntimeVersion");
            ok = v && v->type == KEDGE_JSTR && v->len > n && !strncmp(v->str, prefix, n);
        }
        kedge_jdoc_free(doc);
        if (ok)
            return;
        ck_assert_msg(kt_now_ms() < deadline, "the node's containerRuntimeVersion is not %s...",
                      prefix);
        kt_pause_ms(PAUSE_MS);
    }
}

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
    wait_runtime_version("podman://"); /* enginectl runs podman's Docker API */

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

/* ---- 3. lifecycle ------------------------------------------------------------------------- */

static bool phase_is(const struct kedge_jval *pod, const void *arg)
{
    return str_is(jpath(pod, "status", "phase", NULL), arg);
}

static void send_policy_pod(const char *name, const char *policy, const char *script)
{
    sim_send(
        ROUTE(
            "insert",
            "default/pod/%s") "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"uid\":"
                              "\"uid-%s\"},"
                              "\"spec\":{\"nodeName\":\"" NODE "\",\"restartPolicy\":\"%s\","
                              "\"terminationGracePeriodSeconds\":0,\"containers\":[{\"name\":\"c\","
                              "\"image\":\"localhost/"
                              "busybox:edge\",\"command\":[\"sh\",\"-c\",\"%s\"]}]}}}",
        name, name, name, policy, script);
}

START_TEST(restart_policies_init_containers_and_liveness)
{
    int one = 1;

    if (skip_without_engine())
        return;
    chain_up(NULL);
    send_policy_pod("once", "Never", "exit 3");
    send_policy_pod("done", "OnFailure", "true");
    sim_send(ROUTE(
        "insert",
        "default/pod/live") "{\"metadata\":{\"name\":\"live\",\"namespace\":\"default\",\"uid\":"
                            "\"uid-live\"},"
                            "\"spec\":{\"nodeName\":\"" NODE
                            "\",\"terminationGracePeriodSeconds\":0,"
                            "\"volumes\":[{\"name\":\"work\",\"emptyDir\":{}}],"
                            "\"initContainers\":[{\"name\":\"prepare\",\"image\":\"localhost/"
                            "busybox:edge\","
                            "\"command\":[\"sh\",\"-c\",\"echo ok > /work/ready\"],"
                            "\"volumeMounts\":[{\"name\":\"work\",\"mountPath\":\"/work\"}]}],"
                            "\"containers\":[{\"name\":\"app\",\"image\":\"localhost/"
                            "busybox:edge\","
                            "\"command\":[\"sh\",\"-c\",\"cat /work/ready && touch /tmp/healthy && "
                            "sleep 3 && "
                            "rm /tmp/healthy && sleep 600\"],"
                            "\"livenessProbe\":{\"exec\":{\"command\":[\"cat\",\"/tmp/healthy\"]},"
                            "\"periodSeconds\":1,\"failureThreshold\":1},"
                            "\"volumeMounts\":[{\"name\":\"work\",\"mountPath\":\"/work\"}]}]}}}");
    wait_pod("once", phase_is, "Failed", "phase Failed");
    {
        struct kedge_jdoc *doc = sim_pod("once");
        const struct kedge_jval *cs = first_cs(kedge_jdoc_root(doc));
        ck_assert_int_eq(num(jpath(cs, "state", "terminated", "exitCode")), 3);
        ck_assert(str_is(jpath(cs, "state", "terminated", "reason"), "Error"));
        ck_assert_int_eq(num(kedge_json_get(cs, "restartCount")), 0);
        kedge_jdoc_free(doc);
    }
    wait_pod("done", phase_is, "Succeeded", "phase Succeeded");
    wait_pod("live", restarted, &one, "a restart after the liveness probe failed");
    {
        struct kedge_jdoc *doc = sim_pod("live");
        const struct kedge_jval *l =
            jpath(kedge_jdoc_root(doc), "status", "initContainerStatuses", NULL);
        ck_assert_msg(l && l->child, "no initContainerStatuses");
        ck_assert(str_is(jpath(l->child, "state", "terminated", "reason"), "Completed"));
        kedge_jdoc_free(doc);
    }
    ck_assert(bridgectl_running(bridge));
    teardown();
}
END_TEST

/* ---- 4. a graceful delete is final ---------------------------------------------------------- */

static void send_simple_pod(const char *name, const char *image, const char *extra_container,
                            const char *volumes)
{
    sim_send(ROUTE("insert", "default/pod/%s") "{\"metadata\":{\"name\":\"%s\",\"namespace\":"
                                               "\"default\",\"uid\":\"uid-%s\"},"
                                               "\"spec\":{\"nodeName\":\"" NODE
                                               "\",\"terminationGracePeriodSeconds\":0,"
                                               "\"containers\":[{\"name\":\"c\",\"image\":\"%s\","
                                               "\"command\":[\"sleep\",\"600\"]%s}]"
                                               "%s}}}",
             name, name, name, image, extra_container, volumes);
}

/* What the edge sent (GET /received): how many `op` of `resource` with an index above
 * `after`; *first: the index of the first of them (-1 none). */
static int edge_sent(const char *op, const char *resource, long long after, long long *first)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *e;
    int status = 0, n = 0;
    int64_t idx;

    ck_assert_int_eq(
        simctl_http_json(sim, "GET", "/received?skip_keepalive=1", NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    if (first)
        *first = -1;
    for (e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; e; e = e->next) {
        const struct kedge_jval *route = kedge_json_get(kedge_json_get(e, "json"), "route");
        ck_assert_int_eq(kedge_json_int64(kedge_json_get(e, "index"), &idx), 0);
        if (idx <= after || !str_is(kedge_json_get(route, "operation"), op) ||
            !str_is(kedge_json_get(route, "resource"), resource))
            continue;
        if (first && *first < 0)
            *first = idx;
        n++;
    }
    kedge_jdoc_free(doc);
    return n;
}

static bool sim_settled(void)
{
    struct kedge_jdoc *doc = NULL;
    int status = 0;
    int64_t pending = -1;

    if (simctl_http_json(sim, "GET", "/state?node=" NODE, NULL, &status, &doc) == 0 &&
        status == 200)
        (void)kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), "pending_acks"), &pending);
    kedge_jdoc_free(doc);
    return pending == 0;
}

/* The index of the last message the edge sent, -1 none. */
static long long last_sent(void)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *e;
    int64_t idx = -1;
    int status = 0;

    ck_assert_int_eq(simctl_http_json(sim, "GET", "/received", NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    for (e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; e; e = e->next)
        ck_assert_int_eq(kedge_json_int64(kedge_json_get(e, "index"), &idx), 0);
    kedge_jdoc_free(doc);
    return idx;
}

/* Deleted in the cloud as the API server does it (graceful: an update with deletionTimestamp):
 * the containers stop, the final status goes up, then the edge's delete (grace 0, uid). The
 * cloud then sends what its watch saw, as cloudcore does: the pod MODIFIED (an update, still
 * with the deletionTimestamp) after the edge finished it, "OK", then the delete. The late
 * update must not bring the pod back: no second start, no status patch after the delete (the
 * API server: pods "gone" not found), one delete. A pod deleted at once (kubectl delete --force:
 * the cloud's delete) gets no status at all after it: the API server has no such pod. */
START_TEST(graceful_delete_is_final)
{
    long long del_at, before;
    long mark;

    if (skip_without_engine())
        return;
    chain_up(NULL);
    mark = bridgectl_log_mark(bridge);
    send_simple_pod("forced", "localhost/busybox:edge", "", "");
    send_simple_pod("gone", "localhost/busybox:edge", "", "");
    wait_pod("forced", running_ready, NULL, "Running and ready");
    wait_pod("gone", running_ready, NULL, "Running and ready");

    /* forced: stopped and removed, and nothing said about it to the cloud any more */
    before = last_sent();
    sim_send(ROUTE("delete",
                   "default/pod/forced") "{\"metadata\":{\"name\":\"forced\","
                                         "\"namespace\":\"default\",\"uid\":\"uid-forced\"}}}");
    ck_assert_int_eq(bridgectl_wait_log(bridge, mark, "pod default/pod/forced (uid-forced) removed",
                                        kh_scale_ms(WAIT_MS)),
                     0);
    ck_assert_int_eq(edge_sent("patch", "default/podpatch/forced", before, NULL), 0);
    ck_assert_int_eq(edge_sent("delete", "default/pod/forced", -1, NULL), 0);

    /* gone: the graceful way */
    sim_send(ROUTE(
        "update",
        "default/pod/gone") "{\"metadata\":{\"name\":\"gone\",\"namespace\":\"default\",\"uid\":"
                            "\"uid-gone\","
                            "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\","
                            "\"deletionGracePeriodSeconds\":0},"
                            "\"spec\":{\"nodeName\":\"" NODE
                            "\",\"terminationGracePeriodSeconds\":0,"
                            "\"containers\":[{\"name\":\"c\",\"image\":\"localhost/busybox:edge\","
                            "\"command\":[\"sleep\",\"600\"]}]}}}");
    wait_containers("uid-gone", 0);
    ck_assert_int_eq(bridgectl_wait_log(bridge, mark, "pod default/pod/gone (uid-gone) removed",
                                        kh_scale_ms(WAIT_MS)),
                     0);
    /* the cloud's update, OK and delete have been sent and acked, and the bridge has decided
     * about the late update: ignored (the fix) or taken again (the defect) */
    {
        int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
        while (sim_pod("gone") || !sim_settled() ||
               (bridgectl_count_log(bridge, mark, "(uid-gone) is finished here") == 0 &&
                bridgectl_count_log(bridge, mark, "(uid-gone) added") < 2)) {
            ck_assert_msg(kt_now_ms() < deadline, "the cloud still has pod gone or unacked "
                                                  "messages, or the late update was not seen");
            kt_pause_ms(PAUSE_MS);
        }
    }
    ck_assert_int_eq(edge_sent("delete", "default/pod/gone", -1, &del_at), 1);
    ck_assert_int_gt(edge_sent("patch", "default/podpatch/gone", -1, NULL), 0);
    ck_assert_int_eq(edge_sent("patch", "default/podpatch/gone", del_at, NULL), 0);
    ck_assert_int_eq(bridgectl_count_log(bridge, mark, "pod default/pod/gone (uid-gone) added"), 1);
    ck_assert_int_eq(bridgectl_count_log(bridge, mark, "pod default/pod/gone (uid-gone) removed"),
                     1);
    ck_assert_int_eq(bridgectl_count_log(bridge, mark, "status patch refused"), 0);
    /* the late update came, and was seen for what it is */
    ck_assert_int_eq(
        bridgectl_count_log(bridge, mark, "pod default/pod/gone (uid-gone) is finished here"), 1);
    ck_assert(bridgectl_running(bridge));
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
    tcase_add_test(tc, restart_policies_init_containers_and_liveness);
    tcase_add_test(tc, graceful_delete_is_final);
    tcase_add_test(tc, bad_pods_get_reasons_not_crashes);
    tcase_add_test(tc, engine_down_is_reported);
    tcase_add_test(tc, ordinary_pod_with_service_account_token);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
