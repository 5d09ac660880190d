/* test_pods_fixture.c: the chain test_pods runs (cloudsim, broker + plugin, bridge with Edged, a
 * private engine) and what it reads of pods on both sides. */
#define _GNU_SOURCE

#include "test_pods.h"

#define BRIDGE_PASS "p0ds-Secret"

struct enginectl *engine;
struct simctl *sim;
static struct kh_broker *broker;
struct bridgectl *bridge;

/* ---- helpers ------------------------------------------------------------------------------- */

void wait_page(int port, const char *want)
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

void sim_send(const char *fmt, ...)
{
    va_list ap;
    char *json = NULL;

    va_start(ap, fmt);
    ck_assert_int_gt(vasprintf(&json, fmt, ap), 0);
    va_end(ap);
    ck_assert_msg(simctl_send(sim, NODE, json, NULL) == 0, "cloudsim refused %s", json);
    free(json);
}

void send_configmap(const char *name, const char *data_json)
{
    sim_send(
        ROUTE("update",
              "default/configmap/%s") "{\"metadata\":{\"name\":\"%s\","
                                      "\"namespace\":\"default\",\"uid\":\"cm-%s\"},\"data\":%s}}",
        name, name, name, data_json);
}

/* The pod as the cloud knows it: GET /object (NULL when absent). */
struct kedge_jdoc *sim_pod(const char *name)
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

const struct kedge_jval *jpath(const struct kedge_jval *v, const char *a, const char *b,
                               const char *c)
{
    v = kedge_json_get(v, a);
    if (b)
        v = kedge_json_get(v, b);
    if (c)
        v = kedge_json_get(v, c);
    return v;
}

const struct kedge_jval *first_cs(const struct kedge_jval *pod)
{
    const struct kedge_jval *l = jpath(pod, "status", "containerStatuses", NULL);

    return l && l->type == KEDGE_JARR ? l->child : NULL;
}

bool str_is(const struct kedge_jval *v, const char *s)
{
    return v && v->type == KEDGE_JSTR && !strcmp(v->str, s);
}

int64_t num(const struct kedge_jval *v)
{
    int64_t n = -1;

    (void)kedge_json_int64(v, &n);
    return n;
}

/* Wait until the cloud's pod satisfies cond; the last status is printed when it does not. */
void wait_pod(const char *name, pod_cond_fn cond, const void *arg, const char *what)
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

bool running_ready(const struct kedge_jval *pod, const void *arg)
{
    const struct kedge_jval *cs = first_cs(pod);
    const struct kedge_jval *ready = kedge_json_get(cs, "ready");

    (void)arg;
    return str_is(jpath(pod, "status", "phase", NULL), "Running") && ready &&
           ready->type == KEDGE_JBOOL && ready->boolean;
}

bool restarted(const struct kedge_jval *pod, const void *arg)
{
    const struct kedge_jval *cs = first_cs(pod);

    const struct kedge_jval *running = jpath(cs, "state", "running", NULL);

    /* states not shown are null in the patch (podstatus.c), stored as sent */
    return num(kedge_json_get(cs, "restartCount")) >= *(const int *)arg && running &&
           running->type == KEDGE_JOBJ;
}

bool waiting_message(const struct kedge_jval *pod, const void *arg)
{
    const struct kedge_jval *m = jpath(first_cs(pod), "state", "waiting", "message");

    return m && m->type == KEDGE_JSTR && strstr(m->str, arg);
}

bool waiting_reason(const struct kedge_jval *pod, const void *arg)
{
    const struct kedge_jval *cs = first_cs(pod);

    return str_is(jpath(cs, "state", "waiting", "reason"), arg);
}

/* The engine's containers of a pod, by UID label. */
int pod_containers(const char *uid, char ids[][80], int max)
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

void wait_containers(const char *uid, int want)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (pod_containers(uid, NULL, 8) != want) {
        ck_assert_msg(kt_now_ms() < deadline, "pod %s: not %d containers", uid, want);
        kt_pause_ms(PAUSE_MS);
    }
}

/* The app container's id and labels (the one named `cname`). */
void app_container(const char *uid, const char *cname, char *id, size_t len,
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

void kill_app(const char *uid, const char *cname)
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

void bset(const char *key, const char *value)
{
    ck_assert_int_eq(bridgectl_set(bridge, key, value), 0);
}

static void bset_long(const char *key, long value)
{
    ck_assert_int_eq(bridgectl_set_long(bridge, key, value), 0);
}

void chain_up(const char *engine_socket)
{
    chain_up_with(engine_socket, NULL, NULL);
}

int chain_broker_port(void)
{
    return kh_broker_port(broker);
}

void chain_up_with(const char *engine_socket, const char *infra_image, const char *const *extra)
{
    struct bridgectl_opts bo = {0};
    struct kh_broker_opts ko = {0};
    struct kh_opt popts[3] = {{"node_name", NODE}, {NULL, NULL}, {NULL, NULL}};
    struct simctl_opts so = {0};

    if (!engine && enginectl_available() && enginectl_wanted()) {
        ck_assert_int_eq(enginectl_start(&engine), 0);
        ck_assert_int_eq(enginectl_claim_node(engine, NODE), 0);
    }
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
    bset("pod_infra_image", infra_image ? infra_image : "localhost/pause:edge");
    bset_long("pod_backoff_initial_ms", kh_scale_ms(3000));
    bset_long("pod_backoff_max_ms", kh_scale_ms(12000));
    bset_long("pod_resync_s", 2);
    bset("log_level", "info");
    for (; extra && extra[0]; extra += 2)
        bset(extra[0], extra[1]);
    ck_assert_int_eq(bridgectl_start(bridge), 0);
}

void teardown(void)
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

bool skip_without_engine(void)
{
    if (enginectl_available() && enginectl_wanted())
        return false;
    fprintf(stderr,
            "test_pods: no container engine (%s: %s) here or KEDGE_TEST_ENGINE=none: "
            "skipped\n",
            enginectl_kind(), enginectl_wanted() ? enginectl_unavailable_reason() : "none");
    return true;
}

/* kubelet's form of the runtime version's prefix for the engine in use: "podman://" or
 * "docker://" (dockerd, or whatever KEDGE_TEST_ENGINE_SOCKET names). */
const char *engine_runtime_prefix(void)
{
    static char prefix[24];

    (void)snprintf(prefix, sizeof(prefix), "%s://", enginectl_runtime(engine));
    return prefix;
}

/* The web pod: busybox httpd serving /www (a configMap) on hostPort `port`. */
void send_web_pod(const char *name, const char *uid, int port, const char *op)
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
void wait_runtime_version(const char *prefix)
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

/* kedge-ctl -p PORT -P PWFILE -t T args..., against this chain's broker. */
void pods_ctl(struct ctl_run *r, const char *first, ...)
{
    va_list ap;

    va_start(ap, first);
    ctl_run_v(r, KEDGE_CTL_PATH, kh_scale_ms(WAIT_MS), kh_broker_port(broker),
              bridgectl_password_path(bridge), first, ap);
    va_end(ap);
}
