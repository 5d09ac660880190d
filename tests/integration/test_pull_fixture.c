/* test_pull_fixture.c: test_pull's chain (test_pods' plus a private registry) and what it reads
 * of the status patches the cloud received (test_pull.h). */
#define _GNU_SOURCE

#include "test_pull.h"

struct registryctl *reg;

/* ---- set-up ------------------------------------------------------------------------------- */

bool skip_pull_tests(void)
{
    const char *why = registryctl_unavailable_reason();

    if (skip_without_engine())
        return true;
    if (why) {
        fprintf(stderr, "test_pull: no registry here (%s): skipped\n", why);
        return true;
    }
    return false;
}

/* <registry>/<path> into buf. */
const char *ref(char *buf, size_t n, const char *path)
{
    snprintf(buf, n, "%s/%s", registryctl_addr(reg), path);
    return buf;
}

/* The registry, with busybox as kedge/busybox:v1 and :never, and pause as kedge/pause:v1. */
static void registry_up(void)
{
    const char *sock = enginectl_socket(engine);

    ck_assert_int_eq(registryctl_start(&reg), 0);
    ck_assert_int_eq(registryctl_push(reg, sock, ENGINECTL_BUSYBOX_IMAGE, "kedge/busybox:v1"), 0);
    ck_assert_int_eq(registryctl_push(reg, sock, ENGINECTL_BUSYBOX_IMAGE, "kedge/busybox:never"),
                     0);
    ck_assert_int_eq(registryctl_push(reg, sock, ENGINECTL_PAUSE_IMAGE, "kedge/pause:v1"), 0);
}

void pull_teardown(void)
{
    int rst = reg ? registryctl_stop(reg) : 0;

    registryctl_free(reg);
    reg = NULL;
    teardown();
    ck_assert_msg(rst == 0, "registry stop status %d", rst);
}

/* The engine (started by chain_up) and the registry with its images; then the chain. */
/* The chain with a short image back-off (1 s, at most 4 s: the sequence ErrImagePull,
 * ImagePullBackOff, pull comes round in seconds), keepalive_s (NULL: the default). */
void chain_up_pull(const char *infra_image, const char *keepalive_s)
{
    char initial[24], max[24];
    const char *extra[] = {"pod_backoff_initial_ms",
                           initial,
                           "pod_backoff_max_ms",
                           max,
                           keepalive_s ? "keepalive_s" : NULL,
                           keepalive_s,
                           NULL};

    snprintf(initial, sizeof(initial), "%d", kh_scale_ms(1000));
    snprintf(max, sizeof(max), "%d", kh_scale_ms(4000));
    chain_up_with(NULL, infra_image, extra);
}

/* The engine, the registry with its images, then the chain; its sandbox image from the
 * registry (kedge/pause:v1) when infra_from_registry. */
void pull_chain_up(bool infra_from_registry, const char *keepalive_s)
{
    char pause[128];

    if (!engine) {
        ck_assert_int_eq(enginectl_start(&engine), 0);
        ck_assert_int_eq(enginectl_claim_node(engine, NODE), 0);
    }
    registry_up();
    ref(pause, sizeof(pause), "kedge/pause:v1");
    chain_up_pull(infra_from_registry ? pause : NULL, keepalive_s);
}

/* A kubernetes.io/dockerconfigjson Secret for the registry with user:password, sent down as
 * cloudcore sends a Secret (an update of default/secret/NAME). */
void send_pull_secret(const char *name, const char *password)
{
    struct kedge_buf auth = KEDGE_BUF_INIT, cfg = KEDGE_BUF_INIT, b64 = KEDGE_BUF_INIT;
    char userpass[160];

    snprintf(userpass, sizeof(userpass), "%s:%s", registryctl_user(reg), password);
    ck_assert_int_eq(kedge_base64_encode(userpass, strlen(userpass), &auth), 0);
    ck_assert_int_eq(kedge_buf_printf(&cfg,
                                      "{\"auths\":{\"%s\":{\"username\":\"%s\",\"password\":"
                                      "\"%s\",\"auth\":\"%s\"}}}",
                                      registryctl_addr(reg), registryctl_user(reg), password,
                                      auth.data),
                     0);
    ck_assert_int_eq(kedge_base64_encode(cfg.data, cfg.len, &b64), 0);
    sim_send(ROUTE("update", "default/secret/%s") "{\"metadata\":{\"name\":\"%s\",\"namespace\":"
                                                  "\"default\",\"uid\":\"sec-%s\"},"
                                                  "\"type\":\"kubernetes.io/dockerconfigjson\","
                                                  "\"data\":{\".dockerconfigjson\":\"%s\"}}}",
             name, name, name, b64.data);
    kedge_buf_cleanup(&auth);
    kedge_buf_cleanup(&cfg);
    kedge_buf_cleanup(&b64);
}

/* A pod of one container `c` (sleep 600) with image and policy, and imagePullSecrets [secret]
 * unless secret is NULL. */
void send_pull_pod(const char *name, const char *image, const char *policy, const char *secret)
{
    char secrets[96] = "";

    if (secret)
        snprintf(secrets, sizeof(secrets), "\"imagePullSecrets\":[{\"name\":\"%s\"}],", secret);
    sim_send(ROUTE("insert", "default/pod/%s") "{\"metadata\":{\"name\":\"%s\",\"namespace\":"
                                               "\"default\",\"uid\":\"uid-%s\"},"
                                               "\"spec\":{\"nodeName\":\"" NODE "\",%s"
                                               "\"terminationGracePeriodSeconds\":0,"
                                               "\"containers\":[{\"name\":\"c\",\"image\":\"%s\","
                                               "\"imagePullPolicy\":\"%s\","
                                               "\"command\":[\"sleep\",\"600\"]}]}}}",
             name, name, name, secrets, image, policy);
}

/* ---- what the cloud received -------------------------------------------------------------- */

void patches_free(struct patches *p)
{
    int i;

    for (i = 0; i < p->n; i++)
        free(p->status[i]);
    p->n = 0;
}

/* Every status patch of pod `name` the cloud received after /received index `after`. */
void pod_patches(const char *name, long long after, struct patches *out)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *e;
    char resource[128];
    int status = 0;

    memset(out, 0, sizeof(*out));
    snprintf(resource, sizeof(resource), "default/podpatch/%s", name);
    ck_assert_int_eq(
        simctl_http_json(sim, "GET", "/received?skip_keepalive=1", NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    for (e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; e; e = e->next) {
        const struct kedge_jval *msg = kedge_json_get(e, "json");
        const struct kedge_jval *route = kedge_json_get(msg, "route");
        const struct kedge_jval *content = kedge_json_get(msg, "content");
        int64_t idx = -1;

        (void)kedge_json_int64(kedge_json_get(e, "index"), &idx);
        if (idx <= after || !str_is(kedge_json_get(route, "operation"), "patch") ||
            !str_is(kedge_json_get(route, "resource"), resource))
            continue;
        ck_assert_msg(content && content->type == KEDGE_JSTR, "a podpatch whose content is not a "
                                                              "string");
        ck_assert_int_lt(out->n, 64);
        out->index[out->n] = idx;
        out->status[out->n] = strndup(content->str, content->len);
        ck_assert_ptr_nonnull(out->status[out->n++]);
    }
    kedge_jdoc_free(doc);
}

void print_patches(const char *name, const struct patches *p)
{
    int i;

    for (i = 0; i < p->n; i++)
        printf("test_pull: %s patch %d (index %lld): %s\n", name, i, p->index[i], p->status[i]);
}

/* The newest /received index (-1 when nothing). */
long long received_top(void)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *e;
    int64_t idx = -1;
    int status = 0;

    ck_assert_int_eq(simctl_http_json(sim, "GET", "/received", NULL, &status, &doc), 0);
    for (e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; e; e = e->next)
        (void)kedge_json_int64(kedge_json_get(e, "index"), &idx);
    kedge_jdoc_free(doc);
    return idx;
}

/* The first patch (from `from` on) whose status text contains needle; -1 when none. */
int find_patch(const struct patches *p, int from, const char *needle)
{
    int i;

    for (i = from; i < p->n; i++)
        if (strstr(p->status[i], needle))
            return i;
    return -1;
}

/* Patch i of p matches the jsoncmp template (objects by exact key set: a key the template has
 * as null must be in the patch as null). */
void expect_patch(const char *name, const struct patches *p, int i, const char *tpl)
{
    ck_assert_msg(i >= 0 && i < p->n, "pod %s: no patch %d (of %d)", name, i, p->n);
    jsoncmp_expect(p->status[i], strlen(p->status[i]), tpl);
}

/* The exact status patch (jsoncmp template) of pod uid-<name> with one container "c" of image,
 * after its sandbox is up (podIP set): `state` is the container's state object, `ready` whether
 * the container (and so the pod) is ready, `running` whether it has a container (imageID and
 * containerID set, started = ready). Every key a former status may have set is there, null
 * when cleared. */
void status_tpl(struct kedge_buf *b, const char *name, const char *phase, const char *image,
                const char *state, bool ready, bool running)
{
    const char *not_ready = "\"reason\":\"ContainersNotReady\",\"message\":\"containers with "
                            "unready status: [c]\"";
    const char *cond = ready ? "\"reason\":null,\"message\":null" : not_ready;

    kedge_buf_reset(b);
    ck_assert_int_eq(
        kedge_buf_printf(
            b,
            "{\"metadata\":{\"uid\":\"uid-%s\"},\"status\":{\"phase\":\"%s\",\"conditions\":["
            "{\"type\":\"Initialized\",\"status\":\"True\",\"lastProbeTime\":null,"
            "\"lastTransitionTime\":\"<time>\",\"reason\":null,\"message\":null},"
            "{\"type\":\"Ready\",\"status\":\"%s\",\"lastProbeTime\":null,"
            "\"lastTransitionTime\":\"<time>\",%s},"
            "{\"type\":\"ContainersReady\",\"status\":\"%s\",\"lastProbeTime\":null,"
            "\"lastTransitionTime\":\"<time>\",%s},"
            "{\"type\":\"PodScheduled\",\"status\":\"True\",\"lastProbeTime\":null,"
            "\"lastTransitionTime\":\"<time>\",\"reason\":null,\"message\":null}],"
            "\"message\":null,\"reason\":null,\"hostIP\":\"<generated>\","
            "\"hostIPs\":[{\"ip\":\"<generated>\"}],\"podIP\":\"<generated>\","
            "\"podIPs\":[{\"ip\":\"<generated>\"}],\"startTime\":\"<time>\","
            "\"containerStatuses\":[{\"name\":\"c\",\"state\":%s,"
            "\"lastState\":{\"terminated\":null},\"ready\":%s,\"restartCount\":0,"
            "\"image\":\"%s\",\"imageID\":%s,\"containerID\":%s,\"started\":%s}],"
            "\"qosClass\":\"BestEffort\"}}",
            name, phase, ready ? "True" : "False", cond, ready ? "True" : "False", cond, state,
            ready ? "true" : "false", image, running ? "\"<generated>\"" : "\"\"",
            running ? "\"<generated>\"" : "null", ready ? "true" : "false"),
        0);
}

/* state: waiting with reason and message (its quotes escaped for JSON here). */
void waiting_state(char *out, size_t n, const char *reason, const char *message)
{
    struct kedge_buf m = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_json_escape(&m, message, strlen(message)), 0);
    snprintf(out, n,
             "{\"waiting\":{\"reason\":\"%s\",\"message\":%s},\"running\":null,"
             "\"terminated\":null}",
             reason, m.data);
    kedge_buf_cleanup(&m);
}

/* What the engine says when the registry refuses the credentials, as Edged passes it on
 * (docs/image-pulls.md): dockerd's {"message"} of its HTTP 500, podman's errorDetail. */
void denied_message(char *out, size_t n, const char *image, const char *repo)
{
    if (!strcmp(enginectl_runtime(engine), "podman"))
        snprintf(out, n,
                 "Failed to pull image \"%s\": initializing source docker://%s: reading manifest "
                 "v1 in %s: unauthorized: authentication required",
                 image, image, repo);
    else
        snprintf(out, n, "Failed to pull image \"%s\": unauthorized: authentication required",
                 image);
}

/* The cloud's Pod has no status.message (or a null one). */
bool no_pod_message(const struct kedge_jval *pod, const void *arg)
{
    const struct kedge_jval *m = jpath(pod, "status", "message", NULL);

    (void)arg;
    return !m || m->type == KEDGE_JNULL;
}

bool image_in_engine(const char *image)
{
    char path[256];
    int status = -1;

    snprintf(path, sizeof(path), ENGINECTL_API "/images/%s/json", image);
    ck_assert_int_eq(enginectl_http(engine, "GET", path, NULL, &status, NULL), 0);
    return status == 200;
}

/* How many times the registry answered for the manifest of repository path (e.g.
 * "kedge/busybox") by tag: a pull asks it (podman GETs it, dockerd HEADs it, then GETs the
 * manifest by digest). */
int manifest_gets(const char *path, const char *tag)
{
    char needle[160];

    snprintf(needle, sizeof(needle), " /v2/%s/manifests/%s HTTP/1.1\" 200", path, tag);
    return registryctl_log_count(reg, needle);
}
