/* test_realcloud_pull.c: test_realcloud's scenario of an image pull with a pull secret against
 * the REAL cloud (cloudcore v1.15.4 + kube-apiserver 1.24), observed with kubectl: the Pod
 * objects the API server keeps after kedge's status patches (strategic merge), which cloudsim
 * only models. It shares test_realcloud's cloud and node (one cloud boot for the binary).
 *
 * A private registry (registryctl.h: docker-registry with TLS and htpasswd) holds busybox as
 * kedge/busybox:v1. A kubernetes.io/dockerconfigjson Secret with a wrong password and a Pod on
 * this node naming it in imagePullSecrets: the Pod shows ErrImagePull / ImagePullBackOff with
 * the registry's reason. The Secret corrected with kubectl: the Pod Running and Ready, and then
 * nothing stale in the API server's object: no status.message / reason, the container's state
 * only `running`, the Ready and ContainersReady conditions without reason or message (a patch
 * that leaves a key out would leave the old value there). Deleted: gone.
 *
 * Not added (a line says why) without the registry's tools.
 */
#define _GNU_SOURCE

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridgectl.h"
#include "cloudctl.h"
#include "enginectl.h"
#include "harness.h"
#include "kedge/util.h"
#include "rcsupport.h"
#include "registryctl.h"
#include "test_realcloud.h"
#include "testsupport.h"

#define WAIT_MS 180000 /* image back-off steps of 10 s, 20 s, ... and the secret's way down */

static struct rc *envp;         /* test_realcloud's node and cloud */
static struct registryctl *reg; /* realcloud_pull_cleanup stops it: a failed check does not
                                 * return to the scenario */

static void apply_secret(const char *password)
{
    struct kedge_buf auth = KEDGE_BUF_INIT, cfg = KEDGE_BUF_INIT, b64 = KEDGE_BUF_INIT;
    char userpass[160];

    snprintf(userpass, sizeof(userpass), "%s:%s", registryctl_user(reg), password);
    ck_assert_int_eq(kedge_base64_encode(userpass, strlen(userpass), &auth), 0);
    ck_assert_int_eq(kedge_buf_printf(&cfg, "{\"auths\":{\"%s\":{\"auth\":\"%s\"}}}",
                                      registryctl_addr(reg), auth.data),
                     0);
    ck_assert_int_eq(kedge_base64_encode(cfg.data, cfg.len, &b64), 0);
    rc_apply(envp,
             "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"regcred\","
             "\"namespace\":\"default\"},\"type\":\"kubernetes.io/dockerconfigjson\","
             "\"data\":{\".dockerconfigjson\":\"%s\"}}",
             b64.data);
    kedge_buf_cleanup(&auth);
    kedge_buf_cleanup(&cfg);
    kedge_buf_cleanup(&b64);
}

/* The first container status of pod rc-pull, as kubectl shows it now (NULL: none yet). */
static const struct kedge_jval *first_status(const struct kedge_jval *pod)
{
    const struct kedge_jval *l = rc_path(pod, "status.containerStatuses");

    return l && l->type == KEDGE_JARR ? l->child : NULL;
}

/* Until the pod's container waits with `reason` and a message holding `needle` (NULL: any). */
static void wait_waiting(const char *reason, const char *needle)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    for (;;) {
        struct kedge_jdoc *doc = rc_kget(envp, "pod", "rc-pull");
        const struct kedge_jval *w =
            rc_path(first_status(doc ? kedge_jdoc_root(doc) : NULL), "state.waiting");
        bool ok = w && !strcmp(rc_str(w, "reason"), reason) &&
                  (!needle || strstr(rc_str(w, "message"), needle));

        if (ok)
            printf("test_realcloud_pull: waiting %s: %s\n", reason, rc_str(w, "message"));
        kedge_jdoc_free(doc);
        if (ok)
            return;
        if (kt_now_ms() >= deadline)
            bridgectl_dump_log(envp->bridge);
        ck_assert_msg(kt_now_ms() < deadline, "pod rc-pull never waited with %s (%s)", reason,
                      needle ? needle : "");
        rc_sleep_ms(500);
    }
}

START_TEST(pull_secret_and_no_stale_keys)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *pod, *cs, *c;
    char img[160], name[128], uid[64];

    ck_assert_int_eq(registryctl_start(&reg), 0);
    ck_assert_int_eq(registryctl_push(reg, enginectl_socket(envp->engine), ENGINECTL_BUSYBOX_IMAGE,
                                      "kedge/busybox:v1"),
                     0);
    snprintf(img, sizeof(img), "%s/kedge/busybox:v1", registryctl_addr(reg));
    apply_secret("not-the-password");
    rc_apply(envp,
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"rc-pull\","
             "\"namespace\":\"default\",\"labels\":{\"app\":\"rc-pull\"}},"
             "\"spec\":{\"nodeName\":\"%s\",\"terminationGracePeriodSeconds\":0,"
             "\"imagePullSecrets\":[{\"name\":\"regcred\"}],"
             "\"containers\":[{\"name\":\"c\",\"image\":\"%s\",\"imagePullPolicy\":"
             "\"IfNotPresent\",\"command\":[\"sleep\",\"3600\"]}]}}",
             envp->node, img);
    wait_waiting("ErrImagePull", "unauthorized");
    wait_waiting("ImagePullBackOff", "Back-off pulling image");

    apply_secret(registryctl_password(reg));
    rc_wait_pod_running(envp, "app=rc-pull", kh_scale_ms(WAIT_MS), name, sizeof(name), uid,
                        sizeof(uid));
    rc_wait_pod_condition(envp, "rc-pull", "Ready", kh_scale_ms(WAIT_MS));

    /* the API server's object: nothing left of the failures */
    doc = rc_kget(envp, "pod", "rc-pull");
    ck_assert_ptr_nonnull(doc);
    pod = kedge_jdoc_root(doc);
    printf("test_realcloud_pull: status after Running: message=%s reason=%s\n",
           rc_path(pod, "status.message") ? "present" : "absent",
           rc_path(pod, "status.reason") ? "present" : "absent");
    ck_assert_msg(!rc_path(pod, "status.message"), "stale status.message: %s",
                  rc_str(rc_path(pod, "status"), "message"));
    ck_assert_msg(!rc_path(pod, "status.reason"), "stale status.reason");
    cs = first_status(pod);
    ck_assert_ptr_nonnull(rc_path(cs, "state.running"));
    ck_assert_msg(!rc_path(cs, "state.waiting") && !rc_path(cs, "state.terminated"),
                  "the container's state keeps more than running");
    ck_assert(rc_path(cs, "ready")->boolean);
    for (c = rc_path(pod, "status.conditions")->child; c; c = c->next) {
        ck_assert_str_eq(rc_str(c, "status"), "True");
        ck_assert_msg(!kedge_json_get(c, "reason") && !kedge_json_get(c, "message"),
                      "condition %s keeps reason %s / message %s", rc_str(c, "type"),
                      rc_str(c, "reason"), rc_str(c, "message"));
    }
    kedge_jdoc_free(doc);

    ck_assert_int_eq(cloudctl_kubectl(envp->cloud, NULL, NULL, NULL, "delete", "pod", "rc-pull",
                                      "--wait=false", NULL),
                     0);
    rc_wait_no_pods(envp, "app=rc-pull", kh_scale_ms(WAIT_MS));
    rc_wait_containers(envp, uid, 0, kh_scale_ms(WAIT_MS));
    (void)cloudctl_kubectl(envp->cloud, NULL, NULL, NULL, "delete", "secret", "regcred", NULL);
    ck_assert_int_eq(registryctl_stop(reg), 0);
}
END_TEST

void realcloud_pull_tests(TCase *tc, struct rc *e)
{
    const char *why = registryctl_unavailable_reason();

    if (why) {
        printf("test_realcloud: the pull scenario is skipped: %s\n", why);
        return;
    }
    envp = e;
    tcase_add_test(tc, pull_secret_and_no_stale_keys);
}

void realcloud_pull_cleanup(void)
{
    registryctl_free(reg);
    reg = NULL;
}
