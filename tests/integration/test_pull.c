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

#include "test_pull.h"

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
    pull_add_big_tests(s);
    return s;
}

int main(void)
{
    return kh_run_suite(suite(), CK_NORMAL);
}
