/* The real-cloud tier for EdgeStream (issue 17): kubectl logs, exec and attach on pods of a kedge
 * node through a REAL cloudcore v1.15.4 with cloudStream on (CC_STREAM=1) and kube-apiserver
 * 1.24: kubectl -> API server -> cloudcore's stream port -> the node's tunnel -> kedge-bridge ->
 * the container engine. The edge node is rcsupport's (broker + plugin, kedge-bridge joined with
 * the cloud's token, podman's service), reporting InternalIP 127.0.0.1 where the API server dials.
 *
 *  1. The tunnel: cloudcore points the node's kubeletEndpoint at its stream port once kedge's
 *     tunnel is up.
 *  2. kubectl logs: the whole output, --tail, --timestamps, -f (lines keep coming, kubectl is
 *     still streaming when we stop it), --previous after a restart.
 *  3. kubectl exec: a command's stdout, stderr and exit code; stdin (-i) to `cat`; both with
 *     kubectl's default protocol (WebSocket, v5.channel.k8s.io) and SPDY/3.1
 *     (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, what kubectl before 1.30 speaks).
 *  4. An interactive shell through a pty (kubectl exec -i -t): a command's output, the terminal
 *     resized (stty size follows), exit with a code.
 *  5. kubectl attach to a running container's output.
 *  6. The node's metrics (`kubectl get --raw .../proxy/stats/summary`, `.../metrics/resource`),
 *     as metrics-server scrapes them.
 *
 * Scenarios run in order in this process (CK_NOFORK: one node, one cloud). Skipped (exit 77)
 * with the reason when the cloud folder is absent. Every wait is a deadline; kubectl runs
 * under --request-timeout or a kill deadline (cloudcore never fails a stream the edge does not
 * answer: kubectl would hang).
 */
#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridgectl.h"
#include "cloudctl.h"
#include "harness.h"
#include "rcsupport.h"
#include "testsupport.h"

#define BRIDGE_PASS "rc-Stream-Secret-1"
#define READY_MS 90000
#define POD_MS 120000
#define KUBECTL_MS 30000

static struct rc env;

/* kubectl with extra environment, stdin text, separate stdout and stderr, killed after
 * timeout_ms (not scaled): its exit status, or -ETIMEDOUT. */
static int kubectl_run(const char *const *extra_env, const char *in, struct kedge_buf *out,
                       struct kedge_buf *err, int timeout_ms, const char *const *args)
{
    const char *argv[32];
    char kubeconfig[PATH_MAX + 16];
    size_t n = 0;

    snprintf(kubeconfig, sizeof(kubeconfig), "--kubeconfig=%s",
             cloudctl_env(env.cloud, "KUBECONFIG"));
    argv[n++] = getenv("KUBECTL") ? getenv("KUBECTL") : "kubectl";
    argv[n++] = kubeconfig;
    while (*args && n < 31)
        argv[n++] = *args++;
    argv[n] = NULL;
    return cloudctl_run(argv, extra_env, in, out, err, timeout_ms);
}

/* The same within KUBECTL_MS (scaled). */
static int kubectl_env(const char *const *extra_env, const char *in, struct kedge_buf *out,
                       struct kedge_buf *err, const char *const *args)
{
    return kubectl_run(extra_env, in, out, err, kh_scale_ms(KUBECTL_MS), args);
}

static void expect_contains(const struct kedge_buf *b, const char *want, const char *what)
{
    ck_assert_msg(b->data && strstr(b->data, want), "%s: '%s' not in:\n%s", what, want,
                  b->data ? b->data : "(nothing)");
}

static int count_lines(const char *s)
{
    int n = 0;

    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

START_TEST(tunnel_points_the_node_at_the_stream_port)
{
    long want = cloudctl_env_long(env.cloud, "CC_STREAM_PORT");
    int64_t deadline = kt_now_ms() + kh_scale_ms(60000);
    long port = -1;

    rc_wait_node_ready(&env, kh_scale_ms(READY_MS));
    while (kt_now_ms() < deadline) {
        struct kedge_jdoc *node = rc_kget(&env, "node", env.node);
        const struct kedge_jval *p =
            node ? rc_path(kedge_jdoc_root(node), "status.daemonEndpoints.kubeletEndpoint.Port")
                 : NULL;

        port = p && p->type == KEDGE_JNUM ? strtol(p->str, NULL, 10) : -1;
        kedge_jdoc_free(node);
        if (port == want)
            break;
        rc_sleep_ms(500);
    }
    ck_assert_msg(port == want, "node %s kubeletEndpoint.Port is %ld, not the stream port %ld",
                  env.node, port, want);
    rc_apply(&env,
             "apiVersion: v1\nkind: Pod\n"
             "metadata: {name: rc-talk, namespace: default, labels: {app: rc-talk}}\n"
             "spec:\n"
             "  nodeName: %s\n"
             "  terminationGracePeriodSeconds: 1\n"
             "  tolerations: [{operator: Exists}]\n"
             "  containers:\n"
             "  - name: talk\n"
             "    image: localhost/busybox:edge\n"
             "    command: [sh, -c, 'i=0; while true; do echo line $i; echo err $i >&2;"
             " i=$((i+1)); sleep 0.2; done']\n"
             "  - name: shell\n"
             "    image: localhost/busybox:edge\n"
             "    command: [sleep, '3600']\n"
             "---\n"
             "apiVersion: v1\nkind: Pod\n"
             "metadata: {name: rc-crash, namespace: default, labels: {app: rc-crash}}\n"
             "spec:\n"
             "  nodeName: %s\n"
             "  terminationGracePeriodSeconds: 1\n"
             "  tolerations: [{operator: Exists}]\n"
             "  volumes: [{name: mark, emptyDir: {}}]\n"
             "  containers:\n"
             "  - name: once\n"
             "    image: localhost/busybox:edge\n"
             "    volumeMounts: [{name: mark, mountPath: /m}]\n"
             "    command: [sh, -c, 'echo run $(cat /proc/sys/kernel/random/uuid);"
             " if [ -e /m/ran ]; then exec sleep 3600; fi; touch /m/ran; sleep 1; exit 1']\n",
             env.node, env.node);
}
END_TEST

START_TEST(logs_whole_tail_timestamps_follow)
{
    char pod[128], uid[64];
    struct kedge_buf out = KEDGE_BUF_INIT, err = KEDGE_BUF_INIT;
    const char *whole[] = {"logs", "rc-talk", "-c", "talk", "--request-timeout=20s", NULL};
    const char *tail[] = {"logs", "rc-talk", "-c", "talk", "--tail=3", NULL};
    const char *ts[] = {"logs", "rc-talk", "-c", "talk", "--tail=2", "--timestamps", NULL};
    const char *follow[] = {"logs", "rc-talk", "-c", "talk", "-f", "--tail=1", NULL};
    int rc, before;

    rc_wait_pod_running(&env, "app=rc-talk", kh_scale_ms(POD_MS), pod, sizeof(pod), uid,
                        sizeof(uid));
    rc_sleep_ms(1500); /* a few lines written */
    rc = kubectl_env(NULL, NULL, &out, &err, whole);
    ck_assert_msg(rc == 0, "kubectl logs: %d %s", rc, err.data ? err.data : "");
    expect_contains(&out, "line 0\n", "logs");
    expect_contains(&out, "err 0\n", "logs (stderr too, as kubelet serves both)");
    before = count_lines(out.data);
    kedge_buf_reset(&out);

    rc = kubectl_env(NULL, NULL, &out, &err, tail);
    ck_assert_msg(rc == 0, "kubectl logs --tail: %d %s", rc, err.data ? err.data : "");
    ck_assert_msg(count_lines(out.data) == 3, "--tail=3 gave:\n%s", out.data);
    kedge_buf_reset(&out);

    rc = kubectl_env(NULL, NULL, &out, &err, ts);
    ck_assert_msg(rc == 0, "kubectl logs --timestamps: %d %s", rc, err.data ? err.data : "");
    ck_assert_msg(count_lines(out.data) == 2 && out.data[4] == '-' && out.data[10] == 'T' &&
                      strstr(out.data, "Z "),
                  "--timestamps lines are not RFC 3339 + space:\n%s", out.data);
    kedge_buf_reset(&out);

    /* -f never ends by itself: the kill deadline ends it; what it printed must have grown */
    rc = kubectl_run(NULL, NULL, &out, &err, 4000, follow);
    ck_assert_msg(rc == -ETIMEDOUT, "kubectl logs -f ended by itself (%d): %s", rc,
                  err.data ? err.data : "");
    ck_assert_msg(count_lines(out.data) >= 8, "logs -f for 4 s gave %d lines:\n%s",
                  count_lines(out.data), out.data ? out.data : "");
    printf("test_realcloud_stream: logs %d lines, --tail 3, -f %d lines in 4 s\n", before,
           count_lines(out.data));
    kedge_buf_cleanup(&out);
    kedge_buf_cleanup(&err);
}
END_TEST

START_TEST(logs_previous_after_restart)
{
    struct kedge_buf out = KEDGE_BUF_INIT, prev = KEDGE_BUF_INIT, err = KEDGE_BUF_INIT;
    const char *cur[] = {"logs", "rc-crash", NULL};
    const char *previous[] = {"logs", "rc-crash", "--previous", NULL};
    int64_t deadline = kt_now_ms() + kh_scale_ms(POD_MS);
    long restarts = 0;
    int rc;

    while (kt_now_ms() < deadline && restarts < 1) {
        struct kedge_jdoc *p = rc_kget(&env, "pod", "rc-crash");
        const struct kedge_jval *cs =
            p ? rc_path(kedge_jdoc_root(p), "status.containerStatuses") : NULL;

        if (cs && cs->type == KEDGE_JARR && cs->child) {
            const struct kedge_jval *r = kedge_json_get(cs->child, "restartCount");

            /* the second instance running: the first is the previous one (while the
             * restart waits, kubelet serves the last instance as the current logs too) */
            restarts = r && r->type == KEDGE_JNUM && rc_path(cs->child, "state.running")
                           ? strtol(r->str, NULL, 10)
                           : 0;
        }
        kedge_jdoc_free(p);
        if (restarts < 1)
            rc_sleep_ms(500);
    }
    ck_assert_msg(restarts >= 1, "rc-crash never restarted");
    rc = kubectl_env(NULL, NULL, &prev, &err, previous);
    ck_assert_msg(rc == 0, "kubectl logs --previous: %d %s", rc, err.data ? err.data : "");
    expect_contains(&prev, "run ", "--previous");
    rc = kubectl_env(NULL, NULL, &out, &err, cur);
    ck_assert_msg(rc == 0, "kubectl logs: %d %s", rc, err.data ? err.data : "");
    expect_contains(&out, "run ", "current");
    ck_assert_msg(strcmp(out.data, prev.data) != 0,
                  "--previous shows the current instance's output: %s", prev.data);
    kedge_buf_cleanup(&out);
    kedge_buf_cleanup(&prev);
    kedge_buf_cleanup(&err);
}
END_TEST

static void exec_checks(const char *const *extra_env, const char *proto)
{
    struct kedge_buf out = KEDGE_BUF_INIT, err = KEDGE_BUF_INIT;
    const char *cmd[] = {"exec", "rc-talk", "-c", "shell",
                         "--",   "sh",      "-c", "echo out-$((6*7)); echo err-line >&2; exit 3",
                         NULL};
    const char *cat[] = {"exec", "-i", "rc-talk", "-c", "shell", "--", "cat", NULL};
    int rc;

    rc = kubectl_env(extra_env, NULL, &out, &err, cmd);
    ck_assert_msg(rc == 3, "%s: kubectl exec exit status %d (want 3); stderr:\n%s", proto, rc,
                  err.data ? err.data : "");
    ck_assert_msg(out.data && !strcmp(out.data, "out-42\n"), "%s: stdout '%s'", proto,
                  out.data ? out.data : "");
    expect_contains(&err, "err-line\n", proto);
    kedge_buf_reset(&out);
    kedge_buf_reset(&err);

    rc = kubectl_env(extra_env, "hello from stdin\nsecond\n", &out, &err, cat);
    ck_assert_msg(rc == 0, "%s: kubectl exec -i cat: %d %s", proto, rc, err.data ? err.data : "");
    ck_assert_msg(out.data && !strcmp(out.data, "hello from stdin\nsecond\n"),
                  "%s: cat echoed '%s'", proto, out.data ? out.data : "");
    kedge_buf_cleanup(&out);
    kedge_buf_cleanup(&err);
}

START_TEST(exec_websocket)
{
    char pod[128], uid[64];

    rc_wait_pod_running(&env, "app=rc-talk", kh_scale_ms(POD_MS), pod, sizeof(pod), uid,
                        sizeof(uid));
    exec_checks(NULL, "websocket (v5.channel.k8s.io)");
}
END_TEST

START_TEST(exec_spdy)
{
    const char *spdy[] = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", NULL};

    exec_checks(spdy, "SPDY/3.1");
}
END_TEST

/* ---- an interactive shell through a pty ------------------------------------------------------ */

struct term {
    pid_t pid;
    int fd;
    struct kedge_buf seen;
};

static void term_start(struct term *t, const char *const *extra_env)
{
    char kubeconfig[PATH_MAX + 16];
    struct winsize ws = {.ws_row = 24, .ws_col = 80};

    snprintf(kubeconfig, sizeof(kubeconfig), "--kubeconfig=%s",
             cloudctl_env(env.cloud, "KUBECONFIG"));
    t->seen = (struct kedge_buf)KEDGE_BUF_INIT;
    t->pid = forkpty(&t->fd, NULL, NULL, &ws);
    ck_assert_int_ge(t->pid, 0);
    if (t->pid == 0) {
        for (; extra_env && *extra_env; extra_env++)
            putenv((char *)*extra_env);
        execlp("kubectl", "kubectl", kubeconfig, "exec", "-i", "-t", "rc-talk", "-c", "shell", "--",
               "sh", (char *)NULL);
        _exit(127);
    }
}

/* Read the terminal until want appears (in what was read since `from`). */
static void term_expect(struct term *t, size_t from, const char *want, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);

    while (kt_now_ms() < deadline) {
        struct pollfd p = {.fd = t->fd, .events = POLLIN};
        char b[4096];
        ssize_t n;

        if (t->seen.len > from && strstr(t->seen.data + from, want))
            return;
        if (poll(&p, 1, 200) <= 0)
            continue;
        n = read(t->fd, b, sizeof(b));
        if (n <= 0)
            break;
        ck_assert_int_eq(kedge_buf_append(&t->seen, b, (size_t)n), 0);
    }
    ck_abort_msg("the terminal never showed '%s'; it showed:\n%s", want,
                 t->seen.data ? t->seen.data : "(nothing)");
}

static void term_send(struct term *t, const char *s)
{
    ck_assert_int_eq(write(t->fd, s, strlen(s)), (ssize_t)strlen(s));
}

static int term_wait(struct term *t, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);
    int st;

    while (kt_now_ms() < deadline) {
        char b[4096];

        if (waitpid(t->pid, &st, WNOHANG) == t->pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        (void)!read(t->fd, b, sizeof(b)); /* drain: kubectl must not block on the pty */
        rc_sleep_ms(50);
    }
    kill(t->pid, SIGKILL);
    waitpid(t->pid, &st, 0);
    return -ETIMEDOUT;
}

static void interactive(const char *const *extra_env, const char *proto)
{
    struct term t;
    struct winsize ws = {.ws_row = 40, .ws_col = 100};
    size_t mark;
    int rc;

    term_start(&t, extra_env);
    term_send(&t, "echo ready-$((6*7))\n");
    term_expect(&t, 0, "ready-42", 30000);
    mark = t.seen.len;
    term_send(&t, "stty size\n");
    term_expect(&t, mark, "24 80", 10000);
    ck_assert_int_eq(ioctl(t.fd, TIOCSWINSZ, &ws), 0); /* kubectl sends the resize */
    rc_sleep_ms(300);
    mark = t.seen.len;
    term_send(&t, "stty size\n");
    term_expect(&t, mark, "40 100", 10000);
    term_send(&t, "exit 5\n");
    rc = term_wait(&t, 20000);
    close(t.fd);
    ck_assert_msg(rc == 5, "%s: interactive kubectl exec ended with %d, not 5; terminal:\n%s",
                  proto, rc, t.seen.data ? t.seen.data : "");
    printf("test_realcloud_stream: interactive shell over %s: output, resize 24x80 -> 40x100, "
           "exit 5\n",
           proto);
    kedge_buf_cleanup(&t.seen);
}

START_TEST(interactive_shell_websocket)
{
    interactive(NULL, "websocket");
}
END_TEST

START_TEST(interactive_shell_spdy)
{
    static char spdy[] = "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false";
    const char *e[] = {spdy, NULL};

    interactive(e, "SPDY/3.1");
}
END_TEST

START_TEST(attach_shows_output)
{
    struct kedge_buf out = KEDGE_BUF_INIT, err = KEDGE_BUF_INIT;
    const char *attach[] = {"attach", "rc-talk", "-c", "talk", NULL};
    int rc;

    rc = kubectl_run(NULL, NULL, &out, &err, 4000, attach);
    ck_assert_msg(rc == -ETIMEDOUT, "kubectl attach ended by itself (%d): %s", rc,
                  err.data ? err.data : "");
    expect_contains(&out, "line ", "attach");
    kedge_buf_cleanup(&out);
    kedge_buf_cleanup(&err);
}
END_TEST

START_TEST(node_metrics_through_the_tunnel)
{
    struct kedge_buf out = KEDGE_BUF_INIT, err = KEDGE_BUF_INIT;
    char summary[256], resource[256];
    const char *get_summary[] = {"get", "--raw", summary, NULL};
    const char *get_resource[] = {"get", "--raw", resource, NULL};
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *pods, *p;
    bool talk = false;
    int rc;

    snprintf(summary, sizeof(summary), "/api/v1/nodes/%s/proxy/stats/summary", env.node);
    snprintf(resource, sizeof(resource), "/api/v1/nodes/%s/proxy/metrics/resource", env.node);
    rc = kubectl_env(NULL, NULL, &out, &err, get_summary);
    ck_assert_msg(rc == 0, "stats/summary: %d %s", rc, err.data ? err.data : "");
    ck_assert_int_eq(kedge_json_parse(out.data, out.len, &doc), 0);
    ck_assert_str_eq(rc_str(rc_path(kedge_jdoc_root(doc), "node"), "nodeName"), env.node);
    pods = rc_path(kedge_jdoc_root(doc), "pods");
    for (p = pods ? pods->child : NULL; p; p = p->next)
        talk |= !strcmp(rc_str(rc_path(p, "podRef"), "name"), "rc-talk");
    ck_assert_msg(talk, "stats/summary has no pod rc-talk:\n%s", out.data);
    kedge_jdoc_free(doc);
    kedge_buf_reset(&out);

    rc = kubectl_env(NULL, NULL, &out, &err, get_resource);
    ck_assert_msg(rc == 0, "metrics/resource: %d %s", rc, err.data ? err.data : "");
    expect_contains(&out,
                    "container_cpu_usage_seconds_total{container=\"talk\",namespace=\"default\","
                    "pod=\"rc-talk\"}",
                    "metrics/resource");
    expect_contains(&out, "node_memory_working_set_bytes ", "metrics/resource");
    printf("test_realcloud_stream: stats/summary and metrics/resource through the tunnel\n");
    kedge_buf_cleanup(&out);
    kedge_buf_cleanup(&err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("realcloud_stream");
    TCase *tc = tcase_create("stream");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, tunnel_points_the_node_at_the_stream_port);
    tcase_add_test(tc, logs_whole_tail_timestamps_follow);
    tcase_add_test(tc, logs_previous_after_restart);
    tcase_add_test(tc, exec_websocket);
    tcase_add_test(tc, exec_spdy);
    tcase_add_test(tc, interactive_shell_websocket);
    tcase_add_test(tc, interactive_shell_spdy);
    tcase_add_test(tc, attach_shows_output);
    tcase_add_test(tc, node_metrics_through_the_tunnel);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    char why[PATH_MAX + 128];
    int failed, rc = 0;

    if (!cloudctl_available(KEDGE_CLOUDCORE_DIR, why, sizeof(why))) {
        printf("test_realcloud_stream: skipped: %s\n", why);
        return 77;
    }
    failed = rc_run_suite(&env, KEDGE_CLOUDCORE_DIR, BRIDGE_PASS, suite());
    if (rc_teardown(&env) < 0)
        rc = -1;
    return failed || rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
