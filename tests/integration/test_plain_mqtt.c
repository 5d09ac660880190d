/* The plugin must never break ordinary MQTT (spec README facts 8, 11, 26, 27).
 *
 * Each test runs against a real mosquitto with kedge_plugin.so loaded (harness.c) and checks
 * what a plain broker would do: clients with any credentials connect, publish/subscribe at QoS
 * 0/1/2 in MQTT 3.1, 3.1.1 and 5, retained messages, wills on a crashed client and none on a
 * clean disconnect, `$hw/#` versus `#`, a crash and restart, and a clean exit (status 0) on
 * SIGTERM. Twin and EventBus semantics are tested elsewhere.
 */
#define _GNU_SOURCE /* pipe2 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_MS 5000 /* deadline for something that must arrive */
#define QUIET_MS 300 /* how long "nothing arrives" is watched */

static struct kh_broker *broker;

static void setup(void)
{
    broker = kh_broker_start(NULL);
    ck_assert_msg(broker != NULL, "broker with kedge_plugin.so did not start");
}

/* Every test ends with the broker's exit status checked: 0, or the plugin (or, in the sanitizer
 * and valgrind builds, a leak) broke shutdown. */
static void teardown(void)
{
    int st = kh_broker_pid(broker) ? kh_broker_stop(broker) : kh_broker_exit_status(broker);

    ck_assert_int_eq(st, 0);
    kh_broker_free(broker);
    broker = NULL;
}

static int port(void)
{
    return kh_broker_port(broker);
}

/* Connect a client or fail the test. */
static struct kh_client *client(const char *id, const char *user, const char *pass, int proto)
{
    struct kh_client *c = kh_client_new(port(), id, user, pass, proto);

    ck_assert_msg(c != NULL, "client %s (MQTT %d) could not connect", id ? id : "(auto)", proto);
    return c;
}

static void expect_msg(struct kh_client *c, const char *topic, const void *payload, int len,
                       int qos, bool retain)
{
    struct kh_msg m;

    ck_assert_int_eq(kh_client_wait(c, topic, WAIT_MS, &m), 0);
    ck_assert_str_eq(m.topic, topic);
    ck_assert_int_eq(m.len, len);
    if (len > 0)
        ck_assert_mem_eq(m.payload, payload, (size_t)len);
    ck_assert_int_eq(m.qos, qos);
    ck_assert_int_eq(m.retain, retain);
    kh_msg_cleanup(&m);
}

/* --- credentials (fact 27: a registered BASIC_AUTH must not refuse unknown usernames) ------ */

static const int protocols[] = {3, 4, 5};
static const struct {
    const char *user, *pass;
} credentials[] = {
    {NULL, NULL},
    {"device-7", "any-password"},
    {"mapper", NULL},
    {"kedge-node", "not-the-bridge"}, /* a name the plugin might think it owns */
};
#define N_CRED_CASES                                                                               \
    ((int)(sizeof(protocols) / sizeof(protocols[0]) *                                              \
           (sizeof(credentials) / sizeof(credentials[0]))))

START_TEST(test_any_credentials)
{
    int proto = protocols[_i % 3];
    const char *user = credentials[_i / 3].user, *pass = credentials[_i / 3].pass;
    struct kh_client *c = kh_client_create(port(), NULL, user, pass, proto);
    char topic[64];

    ck_assert_ptr_nonnull(c);
    ck_assert_msg(kh_client_connect(c) == 0, "MQTT %d user=%s refused", proto,
                  user ? user : "(none)");
    (void)snprintf(topic, sizeof(topic), "plain/creds/%d", _i);
    ck_assert_int_eq(kh_client_sub(c, topic, 1), 1);
    ck_assert_int_eq(kh_client_pub(c, topic, "hello", -1, 1, false), 0);
    expect_msg(c, topic, "hello", 5, 1, false);
    kh_client_free(c);
}
END_TEST

/* --- publish/subscribe ------------------------------------------------------------------- */

/* _i = protocol index * 3 + QoS */
START_TEST(test_pubsub_qos)
{
    static const int protos[] = {4, 5};
    int proto = protos[_i / 3], qos = _i % 3;
    /* Binary payload with a NUL inside: the broker path must be length-based. */
    static const char payload[] = {'{', '"', 'v', '"', ':', '1', '}', '\0', '\xff', 'z'};
    struct kh_client *sub = client("plain-sub", NULL, NULL, proto);
    struct kh_client *pub = client("plain-pub", "device-1", "x", proto);

    ck_assert_int_eq(kh_client_sub(sub, "plain/qos/+", qos), qos);
    ck_assert_int_eq(kh_client_pub(pub, "plain/qos/a", payload, sizeof(payload), qos, false), 0);
    expect_msg(sub, "plain/qos/a", payload, sizeof(payload), qos, false);
    /* A second message keeps the order and the first is not re-delivered. */
    ck_assert_int_eq(kh_client_pub(pub, "plain/qos/b", "two", -1, qos, false), 0);
    expect_msg(sub, "plain/qos/b", "two", 3, qos, false);
    ck_assert_int_eq(kh_client_expect_none(sub, "#", QUIET_MS), 0);
    kh_client_free(pub);
    kh_client_free(sub);
}
END_TEST

/* Delivery QoS is the lower of the publish and the subscription QoS. */
START_TEST(test_qos_downgrade)
{
    struct kh_client *s0 = client("plain-s0", NULL, NULL, 4);
    struct kh_client *s2 = client("plain-s2", NULL, NULL, 5);
    struct kh_client *pub = client("plain-pub", NULL, NULL, 4);

    ck_assert_int_eq(kh_client_sub(s0, "plain/down", 0), 0);
    ck_assert_int_eq(kh_client_sub(s2, "plain/down", 2), 2);
    ck_assert_int_eq(kh_client_pub(pub, "plain/down", "q2", -1, 2, false), 0);
    expect_msg(s0, "plain/down", "q2", 2, 0, false);
    expect_msg(s2, "plain/down", "q2", 2, 2, false);
    ck_assert_int_eq(kh_client_pub(pub, "plain/down", "q1", -1, 1, false), 0);
    expect_msg(s0, "plain/down", "q1", 2, 0, false);
    expect_msg(s2, "plain/down", "q1", 2, 1, false);
    kh_client_free(pub);
    kh_client_free(s2);
    kh_client_free(s0);
}
END_TEST

/* Ordinary topics are not subject to the plugin's payload limit (max_payload_bytes). */
START_TEST(test_large_payload)
{
    enum { LEN = 256 * 1024 };
    char *big = malloc(LEN);
    struct kh_client *sub = client("plain-sub", NULL, NULL, 5);
    struct kh_client *pub = client("plain-pub", NULL, NULL, 5);

    ck_assert_ptr_nonnull(big);
    for (int i = 0; i < LEN; i++)
        big[i] = (char)(i * 7);
    ck_assert_int_eq(kh_client_sub(sub, "plain/big", 1), 1);
    ck_assert_int_eq(kh_client_pub(pub, "plain/big", big, LEN, 1, false), 0);
    expect_msg(sub, "plain/big", big, LEN, 1, false);
    kh_client_free(pub);
    kh_client_free(sub);
    free(big);
}
END_TEST

/* --- retained messages ------------------------------------------------------------------- */

START_TEST(test_retained)
{
    struct kh_client *live = client("plain-live", NULL, NULL, 4);
    struct kh_client *pub = client("plain-pub", NULL, NULL, 5);
    struct kh_client *late, *later;

    ck_assert_int_eq(kh_client_sub(live, "plain/retained/#", 1), 1);
    ck_assert_int_eq(kh_client_pub(pub, "plain/retained/a", "r1", -1, 1, true), 0);
    /* A subscriber that was there already gets it live: retain flag clear. */
    expect_msg(live, "plain/retained/a", "r1", 2, 1, false);

    late = client("plain-late", NULL, NULL, 4);
    ck_assert_int_eq(kh_client_sub(late, "plain/retained/+", 1), 1);
    expect_msg(late, "plain/retained/a", "r1", 2, 1, true);

    /* An empty retained publish clears it. */
    ck_assert_int_eq(kh_client_pub(pub, "plain/retained/a", NULL, 0, 1, true), 0);
    expect_msg(live, "plain/retained/a", NULL, 0, 1, false);
    later = client("plain-later", NULL, NULL, 5);
    ck_assert_int_eq(kh_client_sub(later, "plain/retained/#", 1), 1);
    ck_assert_int_eq(kh_client_expect_none(later, "plain/retained/#", QUIET_MS), 0);

    kh_client_free(later);
    kh_client_free(late);
    kh_client_free(pub);
    kh_client_free(live);
}
END_TEST

/* --- wills ------------------------------------------------------------------------------- */

START_TEST(test_will_on_abort)
{
    struct kh_client *watch = client("plain-watch", NULL, NULL, 5);
    struct kh_client *dev = kh_client_create(port(), "plain-doomed", "device-9", "pw", 4);

    ck_assert_int_eq(kh_client_sub(watch, "plain/will/#", 1), 1);
    ck_assert_ptr_nonnull(dev);
    ck_assert_int_eq(kh_client_set_will(dev, "plain/will/abort", "gone", -1, 1, false), 0);
    ck_assert_int_eq(kh_client_connect(dev), 0);
    kh_client_abort(dev); /* the socket closes without DISCONNECT */
    expect_msg(watch, "plain/will/abort", "gone", 4, 1, false);
    kh_client_free(dev);
    kh_client_free(watch);
}
END_TEST

/* A client process that dies: the kernel closes its socket. The child connects with a will,
 * reports "connected" on a pipe and waits to be SIGKILLed. */
static pid_t spawn_doomed_process(int broker_port)
{
    int p[2];
    pid_t pid;
    struct pollfd pfd;
    char byte = 0;

    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct kh_client *c;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(p[0]);
        c = kh_client_create(broker_port, "plain-doomed-proc", "device-10", NULL, 5);
        if (!c || kh_client_set_will(c, "plain/will/killed", "process died", -1, 2, true) != 0 ||
            kh_client_connect(c) != 0)
            _exit(1);
        if (write(p[1], "c", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(p[1]);
    pfd.fd = p[0];
    pfd.events = POLLIN;
    ck_assert_int_eq(poll(&pfd, 1, kh_scale_ms(WAIT_MS)), 1);
    ck_assert_int_eq(read(p[0], &byte, 1), 1);
    ck_assert_int_eq(byte, 'c');
    close(p[0]);
    return pid;
}

START_TEST(test_will_on_killed_process)
{
    struct kh_client *watch = client("plain-watch", NULL, NULL, 4);
    struct kh_client *late;
    pid_t pid;
    int st;

    ck_assert_int_eq(kh_client_sub(watch, "plain/will/#", 2), 2);
    pid = spawn_doomed_process(port());
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    expect_msg(watch, "plain/will/killed", "process died", 12, 2, false);
    /* The will was retained. */
    late = client("plain-late", NULL, NULL, 5);
    ck_assert_int_eq(kh_client_sub(late, "plain/will/killed", 1), 1);
    expect_msg(late, "plain/will/killed", "process died", 12, 1, true);
    kh_client_free(late);
    kh_client_free(watch);
}
END_TEST

START_TEST(test_no_will_on_clean_disconnect)
{
    struct kh_client *watch = client("plain-watch", NULL, NULL, 5);
    struct kh_client *dev = kh_client_create(port(), "plain-polite", NULL, NULL, 5);

    ck_assert_int_eq(kh_client_sub(watch, "plain/will/#", 1), 1);
    ck_assert_ptr_nonnull(dev);
    ck_assert_int_eq(
        kh_client_set_will(dev, "plain/will/polite", "should not be sent", -1, 1, false), 0);
    ck_assert_int_eq(kh_client_connect(dev), 0);
    kh_client_free(dev); /* DISCONNECT, reason 0 */
    ck_assert_int_eq(kh_client_expect_none(watch, "plain/will/#", QUIET_MS), 0);
    kh_client_free(watch);
}
END_TEST

/* --- $hw topics (fact 8) ----------------------------------------------------------------- */

START_TEST(test_hw_topics)
{
    static const char payload[] = "{\"data\":{\"temp\":\"21\"}}";
    struct kh_client *hw = client("plain-hw", NULL, NULL, 4);
    struct kh_client *all = client("plain-all", NULL, NULL, 5);
    struct kh_client *dev = client("plain-device", "device-x", "secret", 4);

    ck_assert_int_eq(kh_client_sub(hw, "$hw/#", 1), 1);
    ck_assert_int_eq(kh_client_sub(all, "#", 1), 1);
    ck_assert_int_eq(kh_client_pub(dev, "$hw/events/upload/x", payload, -1, 1, false), 0);
    ck_assert_int_eq(kh_client_pub(dev, "plain/hw/after", "after", -1, 1, false), 0);

    expect_msg(hw, "$hw/events/upload/x", payload, (int)strlen(payload), 1, false);
    /* "#" gets the ordinary message, which was published after the $hw one on the same
     * connection; so had "#" matched $hw/..., that message would be queued already. */
    expect_msg(all, "plain/hw/after", "after", 5, 1, false);
    ck_assert_int_eq(kh_client_expect_none(all, "$hw/#", 0), 0);
    /* And "$hw/#" does not match ordinary topics. */
    ck_assert_int_eq(kh_client_expect_none(hw, "#", QUIET_MS), 0);

    kh_client_free(dev);
    kh_client_free(all);
    kh_client_free(hw);
}
END_TEST

/* --- lifecycle (fact 11) ----------------------------------------------------------------- */

/* SIGTERM with clients still connected (contexts are freed without DISCONNECT events) and a
 * persistent session holding a queued message: the broker and the plugin exit with status 0. */
START_TEST(test_sigterm_with_clients)
{
    struct kh_client *a = client("plain-a", "device-a", "pw", 4);
    struct kh_client *b = client("plain-b", NULL, NULL, 5);
    struct kh_client *durable = kh_client_create(port(), "plain-durable", NULL, NULL, 4);

    ck_assert_ptr_nonnull(durable);
    ck_assert_int_eq(kh_client_set_clean_session(durable, false), 0);
    ck_assert_int_eq(kh_client_connect(durable), 0);
    ck_assert_int_eq(kh_client_sub(durable, "plain/durable", 1), 1);
    kh_client_free(durable); /* the session stays, queueing */
    ck_assert_int_eq(kh_client_set_will(b, "x", "y", -1, 0, false), -EINVAL); /* too late */
    ck_assert_int_eq(kh_client_sub(b, "$hw/#", 1), 1);
    ck_assert_int_eq(kh_client_pub(a, "plain/durable", "queued", -1, 1, false), 0);
    ck_assert_int_eq(kh_client_pub(a, "$hw/events/upload/a", "{}", -1, 1, false), 0);
    expect_msg(b, "$hw/events/upload/a", "{}", 2, 1, false);

    ck_assert_int_eq(kh_broker_stop(broker), 0);
    ck_assert_int_ne(kh_client_wait_disconnect(a, WAIT_MS), -ETIMEDOUT);
    ck_assert_int_ne(kh_client_wait_disconnect(b, WAIT_MS), -ETIMEDOUT);
    ck_assert(!kh_client_connected(a));
    kh_client_free(b);
    kh_client_free(a);
}
END_TEST

/* kill -9 and a SIGTERM restart: the broker comes back on the same port with the plugin and
 * the same database, and ordinary traffic works again. */
START_TEST(test_crash_and_restart)
{
    struct kh_client *c = client("plain-c", NULL, NULL, 4);
    int p = port();

    ck_assert_int_eq(kh_client_sub(c, "plain/restart", 1), 1);
    ck_assert_int_eq(kh_client_pub(c, "plain/restart", "one", -1, 1, false), 0);
    expect_msg(c, "plain/restart", "one", 3, 1, false);

    ck_assert_int_eq(kh_broker_kill9(broker), 0);
    ck_assert_int_eq(kh_broker_exit_status(broker), 128 + SIGKILL);
    ck_assert_int_ne(kh_client_wait_disconnect(c, WAIT_MS), -ETIMEDOUT);
    kh_client_free(c);

    ck_assert_int_eq(kh_broker_restart(broker), 0);
    ck_assert_int_eq(kh_broker_port(broker), p);
    c = client("plain-c", NULL, NULL, 5);
    ck_assert_int_eq(kh_client_sub(c, "plain/restart", 1), 1);
    ck_assert_int_eq(kh_client_pub(c, "plain/restart", "two", -1, 1, false), 0);
    expect_msg(c, "plain/restart", "two", 3, 1, false);
    kh_client_free(c);

    ck_assert_int_eq(kh_broker_restart(broker), 0); /* SIGTERM, status 0, start */
    c = client("plain-c", NULL, NULL, 5);
    ck_assert_int_eq(kh_client_pub(c, "plain/restart", "three", -1, 2, false), 0);
    kh_client_free(c);
}
END_TEST

/* --- start-up failure is visible (the harness path other suites rely on) ------------------ */

/* Option keys under 3 characters are a config error in 2.0.11 (docs/mosquitto-plugin.md §2). */
START_TEST(test_short_option_key_stops_broker)
{
    static const struct kh_opt opts[] = {{"ab", "1"}, {NULL, NULL}};
    struct kh_broker_opts o = {.plugin_opts = opts};
    struct kh_broker *bad = NULL;

    ck_assert_int_eq(kh_broker_launch(&o, &bad), -ECHILD);
    ck_assert_ptr_nonnull(bad);
    ck_assert_int_ne(kh_broker_exit_status(bad), 0);
    ck_assert_int_eq(kh_broker_pid(bad), 0);
    kh_broker_free(bad);
}
END_TEST

static Suite *plain_suite(void)
{
    Suite *s = suite_create("plain_mqtt");
    TCase *tc = tcase_create("with_plugin");
    TCase *tf = tcase_create("startup_failure");

    /* The same budget ctest gives (CK_DEFAULT_TIMEOUT), also when the binary is run by hand;
     * CK_TIMEOUT_MULTIPLIER still scales it (valgrind). */
    tcase_set_timeout(tc, 120);
    tcase_set_timeout(tf, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_any_credentials, 0, N_CRED_CASES);
    tcase_add_loop_test(tc, test_pubsub_qos, 0, 6);
    tcase_add_test(tc, test_qos_downgrade);
    tcase_add_test(tc, test_large_payload);
    tcase_add_test(tc, test_retained);
    tcase_add_test(tc, test_will_on_abort);
    tcase_add_test(tc, test_will_on_killed_process);
    tcase_add_test(tc, test_no_will_on_clean_disconnect);
    tcase_add_test(tc, test_hw_topics);
    tcase_add_test(tc, test_sigterm_with_clients);
    tcase_add_test(tc, test_crash_and_restart);
    suite_add_tcase(s, tc);

    tcase_add_test(tf, test_short_option_key_stops_broker);
    suite_add_tcase(s, tf);
    return s;
}

int main(void)
{
    return kh_run_suite(plain_suite(), CK_NORMAL);
}
