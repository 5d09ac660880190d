/* test_pull: images pulled from a private registry, and the pod status patches around them.
 *
 * The chain is test_pods' (cloudsim as the cloud, mosquitto + plugin, kedge-bridge with Edged,
 * a private engine: podman or dockerd, KEDGE_TEST_ENGINE) plus a registry (registryctl.h:
 * Debian's docker-registry on 127.0.0.1 with TLS and htpasswd basic auth) holding images the
 * test pushed there through the engine's API (busybox-static ones; the tag is removed from the
 * engine again, so a pod's pull is a real pull). The credentials reach the edge the way they
 * reach kubelet: a kubernetes.io/dockerconfigjson Secret sent down by the cloud, named in the
 * pod's imagePullSecrets.
 *
 *  1. pull policies: Always pulls every time (the registry's log counts the manifest GETs),
 *     IfNotPresent does not pull an image present, Never with the image absent is
 *     ErrImageNeverPull with kubelet's message; each pod's status patches are asserted exactly.
 *  2. wrong credentials: ErrImagePull with the registry's reason, then ImagePullBackOff; the
 *     secret corrected in the cloud, the pod Running, and the patch that says so writes null
 *     for the message it clears.
 *  3. the sandbox image absent: pulled (with the pod's pull secret) before the pod starts.
 *  4. regression (status patches, issue 18): a pod whose sandbox could not be made at first
 *     (its image absent: a message in the pod's status) is Running later with no message in
 *     the cloud's Pod (strategic merge keeps a key a patch leaves out: it must write null).
 *  5. regression (issue 18): after a graceful delete no patch reports the container waiting
 *     (ContainerCreating); the last one has its terminated state.
 *  6. a large pull (KEDGE_PULL_BIG_MB, default 200 MB of random bytes in one layer) while twin
 *     updates go edge -> cloud through the bridge and keepalives go on: the round trips during
 *     the pull and when idle, and the keepalive gaps, are printed (never asserted as timings);
 *     the updates must all arrive while the pull runs.
 *
 * Skipped (with a message) without an engine or without the registry's tools.
 */
#define _GNU_SOURCE

#include "jsoncmp.h"
#include "registryctl.h"
#include "test_pods.h"

#define SECRET "regcred"

static struct registryctl *reg;

/* ---- set-up ------------------------------------------------------------------------------- */

static bool skip_pull_tests(void)
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
static const char *ref(char *buf, size_t n, const char *path)
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

static void pull_teardown(void)
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
static void chain_up_pull(const char *infra_image, const char *keepalive_s)
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
static void pull_chain_up(bool infra_from_registry, const char *keepalive_s)
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
static void send_pull_secret(const char *name, const char *password)
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
static void send_pull_pod(const char *name, const char *image, const char *policy,
                          const char *secret)
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

struct patches {
    char *status[64]; /* each podpatch's content: {"metadata":{"uid"},"status":{...}}, in order */
    long long index[64];
    int n;
};

static void patches_free(struct patches *p)
{
    int i;

    for (i = 0; i < p->n; i++)
        free(p->status[i]);
    p->n = 0;
}

/* Every status patch of pod `name` the cloud received after /received index `after`. */
static void pod_patches(const char *name, long long after, struct patches *out)
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

static void print_patches(const char *name, const struct patches *p)
{
    int i;

    for (i = 0; i < p->n; i++)
        printf("test_pull: %s patch %d (index %lld): %s\n", name, i, p->index[i], p->status[i]);
}

/* The newest /received index (-1 when nothing). */
static long long received_top(void)
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
static int find_patch(const struct patches *p, int from, const char *needle)
{
    int i;

    for (i = from; i < p->n; i++)
        if (strstr(p->status[i], needle))
            return i;
    return -1;
}

/* Patch i of p matches the jsoncmp template (objects by exact key set: a key the template has
 * as null must be in the patch as null). */
static void expect_patch(const char *name, const struct patches *p, int i, const char *tpl)
{
    ck_assert_msg(i >= 0 && i < p->n, "pod %s: no patch %d (of %d)", name, i, p->n);
    jsoncmp_expect(p->status[i], strlen(p->status[i]), tpl);
}

/* The exact status patch (jsoncmp template) of pod uid-<name> with one container "c" of image,
 * after its sandbox is up (podIP set): `state` is the container's state object, `ready` whether
 * the container (and so the pod) is ready, `running` whether it has a container (imageID and
 * containerID set, started = ready). Every key a former status may have set is there, null
 * when cleared. */
static void status_tpl(struct kedge_buf *b, const char *name, const char *phase, const char *image,
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
static void waiting_state(char *out, size_t n, const char *reason, const char *message)
{
    struct kedge_buf m = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_json_escape(&m, message, strlen(message)), 0);
    snprintf(out, n,
             "{\"waiting\":{\"reason\":\"%s\",\"message\":%s},\"running\":null,"
             "\"terminated\":null}",
             reason, m.data);
    kedge_buf_cleanup(&m);
}

#define RUNNING_STATE                                                                              \
    "{\"waiting\":null,\"running\":{\"startedAt\":\"<time>\"},\"terminated\":null}"

/* What the engine says when the registry refuses the credentials, as Edged passes it on
 * (docs/image-pulls.md): dockerd's {"message"} of its HTTP 500, podman's errorDetail. */
static void denied_message(char *out, size_t n, const char *image, const char *repo)
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
static bool no_pod_message(const struct kedge_jval *pod, const void *arg)
{
    const struct kedge_jval *m = jpath(pod, "status", "message", NULL);

    (void)arg;
    return !m || m->type == KEDGE_JNULL;
}

static bool image_in_engine(const char *image)
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
static int manifest_gets(const char *path, const char *tag)
{
    char needle[160];

    snprintf(needle, sizeof(needle), " /v2/%s/manifests/%s HTTP/1.1\" 200", path, tag);
    return registryctl_log_count(reg, needle);
}

/* ---- 1. pull policies ---------------------------------------------------------------------- */

START_TEST(pull_policies)
{
    char img[128], never[128], msg[300], state[600];
    struct kedge_buf tpl = KEDGE_BUF_INIT;
    struct patches p;
    int gets;

    if (skip_pull_tests())
        return;
    pull_chain_up(false, NULL);
    ref(img, sizeof(img), "kedge/busybox:v1");
    ref(never, sizeof(never), "kedge/busybox:never");
    send_pull_secret(SECRET, registryctl_password(reg));
    ck_assert(!image_in_engine(img));

    /* Always, the image absent: pulled with the secret's credentials */
    send_pull_pod("always", img, "Always", SECRET);
    wait_pod("always", running_ready, NULL, "Running and ready");
    ck_assert(image_in_engine(img));
    gets = manifest_gets("kedge/busybox", "v1");
    ck_assert_int_ge(gets, 1);
    pod_patches("always", -1, &p);
    print_patches("always", &p);
    /* the first says the container is being made, the last that it runs */
    status_tpl(&tpl, "always", "Running", img, RUNNING_STATE, true, true);
    expect_patch("always", &p, p.n - 1, tpl.data);
    patches_free(&p);

    /* IfNotPresent, the image present: no pull */
    send_pull_pod("ifnp", img, "IfNotPresent", SECRET);
    wait_pod("ifnp", running_ready, NULL, "Running and ready");
    ck_assert_int_eq(manifest_gets("kedge/busybox", "v1"), gets);

    /* Always, the image present: pulled again (the registry is asked) */
    send_pull_pod("always2", img, "Always", SECRET);
    wait_pod("always2", running_ready, NULL, "Running and ready");
    ck_assert_int_gt(manifest_gets("kedge/busybox", "v1"), gets);

    /* Never, the image absent: ErrImageNeverPull, and nothing asked of the registry */
    send_pull_pod("never", never, "Never", SECRET);
    snprintf(msg, sizeof(msg), "Container image \"%s\" is not present with pull policy of Never",
             never);
    wait_pod("never", waiting_reason, "ErrImageNeverPull", "ErrImageNeverPull");
    wait_pod("never", waiting_message, msg, "kubelet's message for Never");
    ck_assert_int_eq(manifest_gets("kedge/busybox", "never"), 0);
    ck_assert(!image_in_engine(never));
    pod_patches("never", -1, &p);
    print_patches("never", &p);
    waiting_state(state, sizeof(state), "ErrImageNeverPull", msg);
    status_tpl(&tpl, "never", "Pending", never, state, false, false);
    expect_patch("never", &p, find_patch(&p, 0, "ErrImageNeverPull"), tpl.data);
    expect_patch("never", &p, p.n - 1, tpl.data);
    patches_free(&p);
    kedge_buf_cleanup(&tpl);
    pull_teardown();
}
END_TEST

/* ---- 2. wrong credentials ------------------------------------------------------------------ */

START_TEST(wrong_credentials)
{
    char img[128], backoff[300], repo[128], msg[512], state[700];
    struct kedge_buf tpl = KEDGE_BUF_INIT;
    struct patches p;
    int err, back, run;

    if (skip_pull_tests())
        return;
    pull_chain_up(false, NULL);
    ref(img, sizeof(img), "kedge/busybox:v1");
    send_pull_secret(SECRET, "not-the-password");
    send_pull_pod("denied", img, "IfNotPresent", SECRET);
    wait_pod("denied", waiting_reason, "ErrImagePull", "ErrImagePull");
    snprintf(backoff, sizeof(backoff), "Back-off pulling image \"%s\"", img);
    wait_pod("denied", waiting_reason, "ImagePullBackOff", "ImagePullBackOff");
    wait_pod("denied", waiting_message, backoff, "kubelet's back-off message");
    ck_assert(!image_in_engine(img));

    /* the cloud corrects the secret: the next try pulls, and the pod runs */
    send_pull_secret(SECRET, registryctl_password(reg));
    wait_pod("denied", running_ready, NULL, "Running and ready");
    wait_pod("denied", no_pod_message, NULL, "no message in the Pod's status");

    pod_patches("denied", -1, &p);
    print_patches("denied", &p);
    err = find_patch(&p, 0, "\"ErrImagePull\"");
    ck_assert_msg(err >= 0, "no ErrImagePull patch");
    /* the registry's reason, as the engine passed it on */
    snprintf(repo, sizeof(repo), "%s/kedge/busybox", registryctl_addr(reg));
    denied_message(msg, sizeof(msg), img, repo);
    waiting_state(state, sizeof(state), "ErrImagePull", msg);
    status_tpl(&tpl, "denied", "Pending", img, state, false, false);
    expect_patch("denied", &p, err, tpl.data);
    back = find_patch(&p, err, "\"ImagePullBackOff\"");
    ck_assert_msg(back > err, "no ImagePullBackOff after ErrImagePull");
    waiting_state(state, sizeof(state), "ImagePullBackOff", backoff);
    status_tpl(&tpl, "denied", "Pending", img, state, false, false);
    expect_patch("denied", &p, back, tpl.data);
    run = find_patch(&p, back + 1, "\"running\":{");
    ck_assert_msg(run > back, "no patch with the container running after the back-off");
    /* the last: Running and ready, the waiting state and every message cleared with null */
    status_tpl(&tpl, "denied", "Running", img, RUNNING_STATE, true, true);
    expect_patch("denied", &p, p.n - 1, tpl.data);
    patches_free(&p);
    kedge_buf_cleanup(&tpl);
    pull_teardown();
}
END_TEST

/* ---- 3. the sandbox image --------------------------------------------------------------- */

START_TEST(sandbox_image_pulled)
{
    char pause[128], msg[300];

    if (skip_pull_tests())
        return;
    pull_chain_up(true, NULL);
    ref(pause, sizeof(pause), "kedge/pause:v1");
    ck_assert(!image_in_engine(pause));
    /* first with a wrong password: the sandbox cannot be made, which the containers' waiting
     * message says (kubelet's FailedCreatePodSandBox text) */
    send_pull_secret(SECRET, "not-the-password");
    send_pull_pod("sbx", ENGINECTL_BUSYBOX_IMAGE, "IfNotPresent", SECRET);
    snprintf(msg, sizeof(msg), "Failed to create pod sandbox: failed pulling image \"%s\"", pause);
    wait_pod("sbx", waiting_reason, "ContainerCreating", "ContainerCreating");
    wait_pod("sbx", waiting_message, msg, "the sandbox's pull failure");
    wait_pod("sbx", phase_is, "Pending", "Pending");
    send_pull_secret(SECRET, registryctl_password(reg));
    wait_pod("sbx", running_ready, NULL, "Running and ready");
    wait_pod("sbx", no_pod_message, NULL, "no message in the Pod's status");
    ck_assert(image_in_engine(pause));
    ck_assert_int_ge(manifest_gets("kedge/pause", "v1"), 1);
    pull_teardown();
}
END_TEST

/* ---- 4. regression: a cleared message is written as null ------------------------------------ */

START_TEST(stale_message_cleared)
{
    struct patches p;
    long mark;
    int st;

    if (skip_pull_tests())
        return;
    /* the sandbox image does not exist yet (no registry: nothing can pull it either) */
    chain_up_pull("localhost/pause:late", NULL);
    mark = bridgectl_log_mark(bridge);
    send_pull_pod("late", ENGINECTL_BUSYBOX_IMAGE, "IfNotPresent", NULL);
    ck_assert_int_eq(bridgectl_wait_log(bridge, mark, "localhost/pause:late", kh_scale_ms(WAIT_MS)),
                     0);
    wait_pod("late", phase_is, "Pending", "Pending");
    {
        /* it appears: the next try of the sandbox finds it */
        char path[256];
        snprintf(path, sizeof(path),
                 ENGINECTL_API "/images/" ENGINECTL_PAUSE_IMAGE
                               "/tag?repo=localhost/pause&tag=late");
        ck_assert_int_eq(enginectl_http(engine, "POST", path, NULL, &st, NULL), 0);
        ck_assert_int_eq(st, 201);
    }
    wait_pod("late", running_ready, NULL, "Running and ready");
    pod_patches("late", -1, &p);
    print_patches("late", &p);
    ck_assert_int_gt(p.n, 0);
    /* the Pod in the cloud: the old message is gone */
    wait_pod("late", no_pod_message, NULL, "no status.message after Running");
    patches_free(&p);
    teardown();
}
END_TEST

/* ---- 5. regression: a deleted pod's last patches keep its terminated state ------------------ */

START_TEST(delete_keeps_terminated)
{
    struct patches p;
    long long before;
    long mark;
    int i;

    if (skip_without_engine())
        return;
    chain_up(NULL);
    mark = bridgectl_log_mark(bridge);
    send_pull_pod("bye", ENGINECTL_BUSYBOX_IMAGE, "IfNotPresent", NULL);
    wait_pod("bye", running_ready, NULL, "Running and ready");
    before = received_top();
    sim_send(ROUTE(
        "update",
        "default/pod/bye") "{\"metadata\":{\"name\":\"bye\",\"namespace\":"
                           "\"default\",\"uid\":\"uid-bye\","
                           "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\","
                           "\"deletionGracePeriodSeconds\":0},"
                           "\"spec\":{\"nodeName\":\"" NODE "\","
                           "\"terminationGracePeriodSeconds\":0,"
                           "\"containers\":[{\"name\":\"c\",\"image\":\"" ENGINECTL_BUSYBOX_IMAGE
                           "\","
                           "\"command\":[\"sleep\",\"600\"]}]}}}");
    wait_containers("uid-bye", 0);
    ck_assert_int_eq(bridgectl_wait_log(bridge, mark, "pod default/pod/bye (uid-bye) removed",
                                        kh_scale_ms(WAIT_MS)),
                     0);
    pod_patches("bye", before, &p);
    print_patches("bye (after the delete)", &p);
    ck_assert_msg(p.n > 0, "no status patch after the delete");
    for (i = 0; i < p.n; i++)
        ck_assert_msg(
            !strstr(p.status[i], "\"waiting\":{") && !strstr(p.status[i], "ContainerCreating"),
            "patch %d after the delete reports the container waiting: %s", i, p.status[i]);
    ck_assert_msg(strstr(p.status[p.n - 1], "\"terminated\":{"),
                  "the last patch has no terminated state: %s", p.status[p.n - 1]);
    /* conditions merge by type in the API server: the last patch clears, with null, the
     * message a condition had while Running ("containers with unready status") */
    {
        struct kedge_jdoc *doc = NULL;
        const struct kedge_jval *c;
        ck_assert_int_eq(kedge_json_parse(p.status[p.n - 1], strlen(p.status[p.n - 1]), &doc), 0);
        c = jpath(kedge_jdoc_root(doc), "status", "conditions", NULL);
        ck_assert_ptr_nonnull(c);
        for (c = c->child; c; c = c->next)
            ck_assert_msg(kedge_json_get(c, "reason") && kedge_json_get(c, "message"),
                          "condition %s of the last patch leaves reason or message out: %s",
                          kedge_json_get(c, "type")->str, p.status[p.n - 1]);
        kedge_jdoc_free(doc);
    }
    patches_free(&p);
    teardown();
}
END_TEST

/* ---- 6. a large pull while the bridge's loop goes on ---------------------------------------- */

#define DEV "thermo" /* a bare id: the cloud of this chain is v1.15 */
#define MEMBERSHIP_ADD                                                                             \
    "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":\"update\","     \
    "\"resource\":\"membership\"},"                                                                \
    "\"content\":{\"event_id\":\"ev-add\",\"timestamp\":1700000000000,\"added_devices\":["         \
    "{\"id\":\"" DEV "\",\"name\":\"thermo\",\"description\":\"hall\","                            \
    "\"twin\":{\"temperature\":{\"metadata\":{\"type\":\"int\"}}}}],\"removed_devices\":null}}"
#define RT_MAX 4096

struct figures {
    int64_t ms[RT_MAX];
    int n;
};

/* One twin update from the device (MQTT) until the cloud has its edge_updated (the bridge
 * carried it): its round trip in ms. value: unique to this update. */
static int64_t twin_round_trip(struct kh_client *d, int value, long long *since)
{
    char payload[128], needle[64];
    int64_t t0 = kt_now_ms(), deadline = t0 + kh_scale_ms(WAIT_MS);

    snprintf(payload, sizeof(payload),
             "{\"event_id\":\"rt%d\",\"twin\":{\"temperature\":{\"actual\":{\"value\":\"%d\"}}}}",
             value, value);
    snprintf(needle, sizeof(needle), "\"value\":\"%d\"", value);
    ck_assert_int_eq(
        kh_client_pub(d, "$hw/events/device/" DEV "/twin/update", payload, -1, 1, false), 0);
    for (;;) {
        struct kedge_buf b = KEDGE_BUF_INIT;
        char path[96];
        int status = 0;
        bool got;

        snprintf(path, sizeof(path), "/received?since=%lld&skip_keepalive=1", *since);
        ck_assert_int_eq(simctl_http(sim, "GET", path, NULL, &status, &b), 0);
        got = b.data && strstr(b.data, needle) && strstr(b.data, "twin/edge_updated");
        if (!got && kt_now_ms() >= deadline)
            fprintf(stderr, "test_pull: the cloud received since %lld: %.4000s\n", *since,
                    b.data ? b.data : "");
        kedge_buf_cleanup(&b);
        if (got)
            break;
        ck_assert_msg(kt_now_ms() < deadline, "twin update %d never reached the cloud", value);
        kt_pause_ms(2);
    }
    *since = received_top();
    return kt_now_ms() - t0;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static void print_figures(const char *what, struct figures *f)
{
    if (f->n == 0) {
        printf("test_pull: %s: none\n", what);
        return;
    }
    qsort(f->ms, (size_t)f->n, sizeof(f->ms[0]), cmp64);
    printf("test_pull: %s: n=%d min=%lld median=%lld p90=%lld max=%lld ms\n", what, f->n,
           (long long)f->ms[0], (long long)f->ms[f->n / 2], (long long)f->ms[f->n * 9 / 10],
           (long long)f->ms[f->n - 1]);
}

/* The gaps between the keepalives the cloud received around the window of /received indexes
 * (from, to]: from the last one before it to the first one after it, so a loop held for the
 * whole window shows as one long gap. Returns false while no keepalive after `to` is there. */
static bool keepalive_gaps(long long from, long long to, struct figures *f)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *e;
    int64_t last = -1, before = -1;
    bool after = false;
    int status = 0;

    f->n = 0;
    ck_assert_int_eq(simctl_http_json(sim, "GET", "/received", NULL, &status, &doc), 0);
    for (e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; e && !after; e = e->next) {
        const struct kedge_jval *route = kedge_json_get(kedge_json_get(e, "json"), "route");
        int64_t idx = -1, t = -1;

        (void)kedge_json_int64(kedge_json_get(e, "index"), &idx);
        (void)kedge_json_int64(kedge_json_get(e, "t_ms"), &t);
        if (!str_is(kedge_json_get(route, "operation"), "keepalive"))
            continue;
        if (idx <= from) {
            before = t;
            continue;
        }
        if (last < 0)
            last = before;
        if (last >= 0 && f->n < RT_MAX)
            f->ms[f->n++] = t - last;
        last = t;
        after = idx > to;
    }
    kedge_jdoc_free(doc);
    return after;
}

static bool pod_running(const char *name)
{
    struct kedge_jdoc *doc = sim_pod(name);
    bool ok = doc && running_ready(kedge_jdoc_root(doc), NULL);

    kedge_jdoc_free(doc);
    return ok;
}

START_TEST(big_pull_keeps_the_loop)
{
    static struct figures idle, busy, gaps;
    const char *mb_env = getenv("KEDGE_PULL_BIG_MB");
    int mb = mb_env && atoi(mb_env) > 0 ? atoi(mb_env) : 200, value = 7000000, i;
    char img[128];
    struct kh_client *d;
    struct kh_msg m;
    long long since, k0, k1;
    int64_t t0, t_pull;

    if (skip_pull_tests())
        return;
    pull_chain_up(false, "1");
    t0 = kt_now_ms();
    ck_assert_int_eq(registryctl_make_big(reg, enginectl_socket(engine), "localhost/big:v1", mb),
                     0);
    ck_assert_int_eq(
        registryctl_push(reg, enginectl_socket(engine), "localhost/big:v1", "kedge/big:v1"), 0);
    printf("test_pull: a %d MB image made and pushed in %lld ms\n", mb,
           (long long)(kt_now_ms() - t0));
    { /* its layers go with it: the pull downloads them all */
        int st = -1;
        ck_assert_int_eq(enginectl_http(engine, "DELETE", ENGINECTL_API "/images/localhost/big:v1",
                                        NULL, &st, NULL),
                         0);
        ck_assert_int_eq(st, 200);
    }
    ref(img, sizeof(img), "kedge/big:v1");
    send_pull_secret(SECRET, registryctl_password(reg));

    /* a device the plugin knows (its membership announced on the node's topic), and its first
     * update through */
    d = kh_client_new(chain_broker_port(), "thermo-dev", "sensor-7", "x", 4);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(kh_client_sub(d, "$hw/events/node/" NODE "/membership/updated", 1), 1);
    sim_send("%s", MEMBERSHIP_ADD);
    ck_assert_int_eq(
        kh_client_wait(d, "$hw/events/node/" NODE "/membership/updated", kh_scale_ms(WAIT_MS), &m),
        0);
    kh_msg_cleanup(&m);
    since = received_top();
    (void)twin_round_trip(d, ++value, &since);

    /* idle */
    for (i = 0; i < 30; i++)
        idle.ms[idle.n++] = twin_round_trip(d, ++value, &since);

    /* during the pull */
    k0 = received_top();
    t_pull = kt_now_ms();
    send_pull_pod("big", img, "Always", SECRET);
    while (!pod_running("big")) {
        ck_assert_msg(kt_now_ms() - t_pull < kh_scale_ms(10 * WAIT_MS), "pod big never Running");
        if (busy.n < RT_MAX)
            busy.ms[busy.n++] = twin_round_trip(d, ++value, &since);
    }
    t_pull = kt_now_ms() - t_pull;
    k1 = received_top();
    /* the keepalives around the pull: updates go on until the first one after it */
    while (!keepalive_gaps(k0, k1, &gaps)) {
        ck_assert_msg(kt_now_ms() - t0 < kh_scale_ms(20 * WAIT_MS), "no keepalive after the pull");
        (void)twin_round_trip(d, ++value, &since);
    }
    printf("test_pull: pod big (%d MB, Always) Running %lld ms after it was sent\n", mb,
           (long long)t_pull);
    print_figures("twin update round trips, idle", &idle);
    print_figures("twin update round trips, during the pull", &busy);
    print_figures("keepalive gaps from the last one before the pull to the first after it "
                  "(keepalive_s=1)",
                  &gaps);
    ck_assert(image_in_engine(img));
    ck_assert_int_ge(manifest_gets("kedge/big", "v1"), 1);
    /* the updates went on while the pull ran: the loop was not held by it */
    ck_assert_int_gt(busy.n, 0);
    kh_client_free(d);
    pull_teardown();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pull");
    TCase *tc = tcase_create("pull");

    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, pull_policies);
    tcase_add_test(tc, wrong_credentials);
    tcase_add_test(tc, sandbox_image_pulled);
    tcase_add_test(tc, stale_message_cleared);
    tcase_add_test(tc, delete_keeps_terminated);
    suite_add_tcase(s, tc);
    tc = tcase_create("big");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, big_pull_keeps_the_loop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kh_run_suite(suite(), CK_NORMAL);
}
