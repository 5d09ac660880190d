/* Pods as real containers, end to end: kedge-cloudsim delivers pods, the real kedge-bridge's
 * Edged runs them on a real engine (podman's Docker-compatible service, enginectl.h), the
 * broker with kedge_plugin.so carries the bridge's local link (harness.h).
 *
 *  1. The seed's example: an nginx-like pod (busybox httpd serving a page from a configMap
 *     volume on a hostPort, env from fieldRef and configMapKeyRef, a readiness probe) runs as
 *     an infra + app container with kubelet's labels; GET on 127.0.0.1 returns the page;
 *     cloudsim has Running and Ready. A second pod asking for the same host port waits with
 *     the reason while the first keeps serving. The app process killed: restartCount 1, lastState
 *     terminated 137; killed again: CrashLoopBackOff while the back-off runs, then
 *     restartCount 2. Deleted in the cloud: the containers are gone and a terminal status was
 *     reported.
 *  2. Autonomy: a pod runs; cloudsim stops; the bridge restarts: the page is still served, the
 *     containers are the same ones (not recreated) and no create was issued; a container
 *     labelled for this node but of no known pod (an orphan) is removed.
 *  3. Lifecycle: restartPolicy Never (exit 3: Failed, terminated 3) and OnFailure (exit 0:
 *     Succeeded); an init container writing into an emptyDir the app reads, and an exec
 *     liveness probe that starts failing: the container is restarted (restartCount >= 1), the
 *     init container shows Completed.
 *  4. Bad input: an invalid container name is Failed (InvalidPodSpec, with the reason); an
 *     invalid image name, an image that cannot be pulled, a missing configMap volume, a missing
 *     configMap key in env: each a Waiting status with kubelet's reason and a message, the
 *     bridge still running; and a bridge whose engine is down reports why.
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
#include "enginectl.h"
#include "harness.h"
#include "kedge/buf.h"
#include "kedge/json.h"
#include "simctl.h"
#include "testsupport.h"

#define WAIT_MS 30000 /* pod start-up includes an engine's create + start of two containers */
#define NODE "kedge-pods"
#define BRIDGE_PASS "p0ds-Secret"

static struct enginectl *engine;
static struct simctl *sim;
static struct kh_broker *broker;
static struct bridgectl *bridge;

/* ---- helpers ------------------------------------------------------------------------------- */

static void pause_poll(void)
{
    struct timespec ts = {0, 100 * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void wait_page(int port, const char *want)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    char *got = NULL;

    while (!(got = kt_http_get(port, "/")) || !strstr(got, want)) {
        free(got);
        got = NULL;
        ck_assert_msg(kt_now_ms() < deadline, "no page with \"%s\" on 127.0.0.1:%d", want, port);
        pause_poll();
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
    "{\"header\":{\"resourceversion\":\"1\"},\"route\":{\"source\":\"edgecontroller\","        \
    "\"group\":\"resource\",\"operation\":\"" op "\",\"resource\":\"" res "\"},\"content\":"

static void send_configmap(const char *name, const char *data_json)
{
    sim_send(ROUTE("update", "default/configmap/%s") "{\"metadata\":{\"name\":\"%s\","
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
        pause_poll();
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
        pause_poll();
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
                ck_assert_int_eq(kedge_buf_printf(labels, "%.*s=%s\n", (int)m->key_len, m->key,
                                                  m->str), 0);
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
    bset("node_name", NODE);
    bset_long("cloud_port", simctl_wss_port(sim));
    bset("tls_ca_file", simctl_cert_path(sim, "rootCA.crt"));
    bset("tls_cert_file", simctl_cert_path(sim, "edge.crt"));
    bset("tls_key_file", simctl_cert_path(sim, "edge.key"));
    bset_long("broker_port", kh_broker_port(broker));
    bset_long("keepalive_s", 2);
    bset_long("backoff_initial_ms", 100);
    bset_long("backoff_max_ms", 1000);
    bset_long("cloud_qps", 0);
    bset_long("rotate_certificates", 0);
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
    int bst = 0, mst = 0, sst = 0, est = 0;

    if (bridge && bridgectl_pid(bridge))
        bst = bridgectl_stop(bridge);
    bridgectl_free(bridge);
    bridge = NULL;
    if (broker)
        mst = kh_broker_pid(broker) ? kh_broker_stop(broker) : kh_broker_exit_status(broker);
    kh_broker_free(broker);
    broker = NULL;
    if (sim) {
        sst = simctl_stop(sim);
        if (sst == -ECHILD) /* a test stopped it already */
            sst = 0;
    }
    simctl_free(sim);
    sim = NULL;
    if (engine)
        est = enginectl_stop(engine);
    enginectl_free(engine);
    engine = NULL;
    ck_assert_msg(bst == 0, "kedge-bridge exit status %d", bst);
    ck_assert_msg(mst == 0, "mosquitto exit status %d", mst);
    ck_assert_msg(sst == 0, "kedge-cloudsim exit status %d", sst);
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
    sim_send(ROUTE("%s", "default/pod/%s")
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"uid\":\"%s\","
             "\"labels\":{\"app\":\"web\"}},"
             "\"spec\":{\"nodeName\":\"" NODE "\",\"terminationGracePeriodSeconds\":1,"
             "\"containers\":[{\"name\":\"web\",\"image\":\"localhost/busybox:edge\","
             "\"imagePullPolicy\":\"IfNotPresent\","
             "\"command\":[\"httpd\",\"-f\",\"-p\",\"8080\",\"-h\",\"/www\"],"
             "\"env\":[{\"name\":\"POD_NAME\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":"
             "\"metadata.name\"}}},{\"name\":\"GREETING\",\"valueFrom\":{\"configMapKeyRef\":"
             "{\"name\":\"web-page\",\"key\":\"greeting\"}}}],"
             "\"ports\":[{\"containerPort\":8080,\"hostPort\":%d,\"hostIP\":\"127.0.0.1\"}],"
             "\"readinessProbe\":{\"httpGet\":{\"path\":\"/\",\"port\":8080},"
             "\"periodSeconds\":1},"
             "\"resources\":{\"limits\":{\"memory\":\"64Mi\",\"cpu\":\"500m\"}},"
             "\"volumeMounts\":[{\"name\":\"page\",\"mountPath\":\"/www\",\"readOnly\":true}]}],"
             "\"volumes\":[{\"name\":\"page\",\"configMap\":{\"name\":\"web-page\"}}]}}}",
             op, name, name, uid, port);
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

    /* a second pod wants the same host port: it waits with the reason, the first keeps it */
    send_web_pod("clash", "uid-clash", port, "insert");
    wait_pod("clash", waiting_message, "is already in use", "a host port conflict");
    wait_page(port, "hello from kedge");
    sim_send(ROUTE("delete", "default/pod/clash") "{\"metadata\":{\"name\":\"clash\","
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

    /* deleted in the cloud: containers gone, a terminal status reported before */
    mark = bridgectl_log_mark(bridge);
    sim_send(ROUTE("delete", "default/pod/web") "{\"metadata\":{\"name\":\"web\","
             "\"namespace\":\"default\",\"uid\":\"uid-web-1\"}}}");
    wait_containers("uid-web-1", 0);
    ck_assert_int_eq(bridgectl_wait_log(bridge, mark, "pod default/pod/web (uid-web-1) removed",
                                        kh_scale_ms(WAIT_MS)), 0);
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
                                    &status, &resp), 0);
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
    sim_send(ROUTE("insert", "default/pod/%s")
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"uid\":\"uid-%s\"},"
             "\"spec\":{\"nodeName\":\"" NODE "\",\"restartPolicy\":\"%s\","
             "\"terminationGracePeriodSeconds\":0,\"containers\":[{\"name\":\"c\","
             "\"image\":\"localhost/busybox:edge\",\"command\":[\"sh\",\"-c\",\"%s\"]}]}}}",
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
    sim_send(ROUTE("insert", "default/pod/live")
             "{\"metadata\":{\"name\":\"live\",\"namespace\":\"default\",\"uid\":\"uid-live\"},"
             "\"spec\":{\"nodeName\":\"" NODE "\",\"terminationGracePeriodSeconds\":0,"
             "\"volumes\":[{\"name\":\"work\",\"emptyDir\":{}}],"
             "\"initContainers\":[{\"name\":\"prepare\",\"image\":\"localhost/busybox:edge\","
             "\"command\":[\"sh\",\"-c\",\"echo ok > /work/ready\"],"
             "\"volumeMounts\":[{\"name\":\"work\",\"mountPath\":\"/work\"}]}],"
             "\"containers\":[{\"name\":\"app\",\"image\":\"localhost/busybox:edge\","
             "\"command\":[\"sh\",\"-c\",\"cat /work/ready && touch /tmp/healthy && sleep 3 && "
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
        const struct kedge_jval *l = jpath(kedge_jdoc_root(doc), "status",
                                           "initContainerStatuses", NULL);
        ck_assert_msg(l && l->child, "no initContainerStatuses");
        ck_assert(str_is(jpath(l->child, "state", "terminated", "reason"), "Completed"));
        kedge_jdoc_free(doc);
    }
    ck_assert(bridgectl_running(bridge));
    teardown();
}
END_TEST

/* ---- 4. bad input ---------------------------------------------------------------------------- */

static void send_simple_pod(const char *name, const char *image, const char *extra_container,
                            const char *volumes)
{
    sim_send(ROUTE("insert", "default/pod/%s")
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"uid\":\"uid-%s\"},"
             "\"spec\":{\"nodeName\":\"" NODE "\",\"terminationGracePeriodSeconds\":0,"
             "\"containers\":[{\"name\":\"c\",\"image\":\"%s\",\"command\":[\"sleep\",\"600\"]%s}]"
             "%s}}}",
             name, name, name, image, extra_container, volumes);
}

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
    sim_send(ROUTE("insert", "default/pod/badc")
             "{\"metadata\":{\"name\":\"badc\",\"namespace\":\"default\",\"uid\":\"uid-badc\"},"
             "\"spec\":{\"nodeName\":\"" NODE "\",\"containers\":[{\"name\":\"Not_A_Name\","
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
        const struct kedge_jval *m = jpath(first_cs(kedge_jdoc_root(doc)), "state", "waiting",
                                           "message");
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
        const struct kedge_jval *m = jpath(first_cs(kedge_jdoc_root(doc)), "state", "waiting",
                                           "message");
        ck_assert_msg(m && strstr(m->str, "container runtime"), "message: %s",
                      m ? m->str : "none");
        kedge_jdoc_free(doc);
    }
    ck_assert(bridgectl_running(bridge));
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
    tcase_add_test(tc, bad_pods_get_reasons_not_crashes);
    tcase_add_test(tc, engine_down_is_reported);
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
