/* kedge-ctl, the real binary (KEDGE_CTL_PATH), against a real mosquitto with kedge_plugin.so.
 *
 * The lifecycle an operator runs on a node without a cloud: add a device with typed twins, list
 * it, let the device report (typed values succeed, a wrong type gets 400), read the twins back,
 * check status, remove the device (its next report gets 404), with membership/updated seen for
 * both. Then the ways kedge-ctl must fail: usage errors (exit 2, before any network), a wrong
 * password, a non-bridge user, no broker, a broker that never answers, a broker without the
 * plugin (exit 3, each within its deadline), and the bridge config file (-c).
 *
 * kedge-ctl runs with a deadline of its own here; in the sanitizer build it is an ASan binary,
 * so a leak makes its exit status non-zero and fails the test.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctlrun.h"
#include "harness.h"
#include "proc.h"
#include "jsoncmp.h"
#include "kedge/json.h"
#include "testsupport.h"

#define WAIT_MS 5000
#define QUIET_MS 300
#define RUN_MS 20000 /* kedge-ctl must have exited by then, whatever happens */
#define BRIDGE_PASS "ctl-Secret-1"
#define DEV "default/thermo"
#define DEV_TOPIC "$hw/events/device/" DEV
#define UPDATED_TOPIC "$hw/events/node/kedge-node/membership/updated"

static struct kh_broker *broker;
static char pwfile[PATH_MAX];

static void setup(void)
{
    static const struct kh_opt opts[] = {{"bridge_password", BRIDGE_PASS}, {NULL, NULL}};
    struct kh_broker_opts o = {.plugin_opts = opts};
    FILE *f;

    broker = kh_broker_start(&o);
    ck_assert_msg(broker != NULL, "broker with kedge_plugin.so did not start");
    snprintf(pwfile, sizeof(pwfile), "%s/bridge.password", kh_broker_dir(broker));
    f = fopen(pwfile, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", BRIDGE_PASS);
    ck_assert_int_eq(fclose(f), 0);
}

static void teardown(void)
{
    int st = kh_broker_pid(broker) ? kh_broker_stop(broker) : kh_broker_exit_status(broker);

    kh_broker_free(broker);
    broker = NULL;
    ck_assert_int_eq(st, 0);
}

/* ---- running kedge-ctl ------------------------------------------------------------------ */

/* kedge-ctl -p PORT -P PWFILE -t T args... */
static void ctl(struct ctl_run *r, const char *first, ...)
{
    va_list ap;

    va_start(ap, first);
    ctl_run_v(r, KEDGE_CTL_PATH, kh_scale_ms(RUN_MS), kh_broker_port(broker), pwfile, first, ap);
    va_end(ap);
}

/* Run and assert the exit status; the run is left in *r for more checks. */
#define CTL_EXPECT(r, code, ...)                                                                   \
    do {                                                                                           \
        ctl((r), __VA_ARGS__, (const char *)NULL);                                                 \
        ck_assert_msg((r)->status == (code), "kedge-ctl exited %d, expected %d; stderr: %s",       \
                      (r)->status, (code), (r)->err);                                              \
    } while (0)

/* ---- helpers ------------------------------------------------------------------------------- */

static void expect_msg_json(struct kh_client *c, const char *topic, const char *tpl)
{
    jsoncmp_expect_msg(c, topic, tpl, WAIT_MS);
}

/* The line of text that starts with prefix, or NULL. */
static const char *line_starting(const char *text, const char *prefix)
{
    const char *p = text;

    while (p && *p) {
        if (!strncmp(p, prefix, strlen(prefix)))
            return p;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

static void expect_line(const char *text, const char *line)
{
    const char *p = line_starting(text, line);

    ck_assert_msg(p && (p[strlen(line)] == '\n' || p[strlen(line)] == '\0'), "no line '%s' in:\n%s",
                  line, text);
}

/* A table row: cells separated by runs of spaces. */
static void expect_row(const char *text, const char *const *cells, int n)
{
    const char *p = line_starting(text, cells[0]);
    int i;

    ck_assert_msg(p != NULL, "no row for %s in:\n%s", cells[0], text);
    for (i = 0; i < n; i++) {
        size_t k = strlen(cells[i]);
        ck_assert_msg(!strncmp(p, cells[i], k), "row for %s: expected cell '%s' at '%.40s'",
                      cells[0], cells[i], p);
        p += k;
        if (i + 1 < n) {
            ck_assert_msg(*p == ' ', "row for %s: cell '%s' not followed by space", cells[0],
                          cells[i]);
            while (*p == ' ')
                p++;
        }
    }
    ck_assert_msg(*p == '\n' || *p == '\0', "row for %s has more cells: '%.40s'", cells[0], p);
}

/* ---- the operator's lifecycle -------------------------------------------------------------- */

START_TEST(test_device_lifecycle)
{
    struct kh_client *watch, *dev;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *twin;
    struct ctl_run r;

    watch = kh_client_new(kh_broker_port(broker), "watch", NULL, NULL, 4);
    ck_assert_ptr_nonnull(watch);
    ck_assert_int_eq(kh_client_sub(watch, UPDATED_TOPIC, 1), 1);

    CTL_EXPECT(&r, 0, "device", "add", DEV, "--twin", "temperature:int", "--twin", "label:string",
               "--description", "living room <1>");
    expect_line(r.out, "device " DEV " added with 2 twins");
    ctl_run_free(&r);
    /* the message the cloud would send, as membership/updated announces it (docs/kubeedge-wire.md
     * §2.10) */
    expect_msg_json(watch, UPDATED_TOPIC,
                    "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"added_devices\":["
                    "{\"id\":\"" DEV "\",\"name\":\"thermo\",\"description\":\"living room <1>\","
                    "\"twin\":{\"label\":{\"metadata\":{\"type\":\"string\"}},"
                    "\"temperature\":{\"metadata\":{\"type\":\"int\"}}}}],"
                    "\"removed_devices\":null}");
    /* adding it again is refused, and announces nothing */
    CTL_EXPECT(&r, 1, "device", "add", DEV);
    ck_assert_ptr_nonnull(strstr(r.err, "already exists"));
    ctl_run_free(&r);

    CTL_EXPECT(&r, 0, "device", "list");
    {
        static const char *const head[] = {"ID", "NAME", "STATE", "LAST_ONLINE"};
        static const char *const row[] = {DEV, "thermo", "-", "-"};
        expect_row(r.out, head, 4);
        expect_row(r.out, row, 4);
    }
    ctl_run_free(&r);

    /* the device reports, with any username */
    dev = kh_client_new(kh_broker_port(broker), "thermo-dev", "sensor-7", "whatever", 4);
    ck_assert_ptr_nonnull(dev);
    ck_assert_int_eq(kh_client_sub(dev, DEV_TOPIC "/twin/update/result", 1), 1);
    ck_assert_int_eq(
        kh_client_pub(dev, DEV_TOPIC "/twin/update",
                      "{\"event_id\":\"u1\",\"twin\":{\"temperature\":{\"actual\":"
                      "{\"value\":\"25\"}},\"label\":{\"actual\":{\"value\":\"hall\"}}}}",
                      -1, 1, false),
        0);
    expect_msg_json(
        dev, DEV_TOPIC "/twin/update/result",
        "{\"event_id\":\"u1\",\"timestamp\":\"<ts>\",\"twin\":{"
        "\"label\":{\"actual\":{\"value\":\"hall\",\"metadata\":{\"timestamp\":\"<ts>\"}},"
        "\"optional\":true,\"metadata\":{\"type\":\"string\"}},"
        "\"temperature\":{\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":"
        "\"<ts>\"}},\"optional\":true,\"metadata\":{\"type\":\"int\"}}}}");
    ck_assert_int_eq(kh_client_pub(dev, DEV_TOPIC "/twin/update",
                                   "{\"event_id\":\"u2\",\"twin\":{\"temperature\":{\"actual\":"
                                   "{\"value\":\"hot\"}}}}",
                                   -1, 1, false),
                     0);
    expect_msg_json(dev, DEV_TOPIC "/twin/update/result",
                    "{\"event_id\":\"u2\",\"timestamp\":\"<ts>\",\"code\":400,"
                    "\"reason\":\"the value is not int or integer\"}");

    /* device get: the twin get result as JSON (the rejected value left no trace) */
    CTL_EXPECT(&r, 0, "device", "get", DEV);
    ck_assert_int_eq(kedge_json_parse(r.out, strlen(r.out), &doc), 0);
    twin = kedge_json_get(kedge_jdoc_root(doc), "twin");
    ck_assert_ptr_nonnull(twin);
    ck_assert_int_eq(twin->n, 2);
    {
        const struct kedge_jval *t = kedge_json_get_exact(twin, "temperature", 11);
        const struct kedge_jval *v = kedge_json_get(kedge_json_get(t, "actual"), "value");
        ck_assert_ptr_nonnull(v);
        ck_assert_str_eq(v->str, "25");
        ck_assert_str_eq(kedge_json_get(kedge_json_get(t, "metadata"), "type")->str, "int");
    }
    kedge_jdoc_free(doc);
    ctl_run_free(&r);
    CTL_EXPECT(&r, 0, "device", "get", DEV, "--table");
    {
        static const char *const head[] = {"TWIN", "TYPE", "EXPECTED", "ACTUAL"};
        static const char *const t1[] = {"label", "string", "-", "hall"};
        static const char *const t2[] = {"temperature", "int", "-", "25"};
        expect_row(r.out, head, 4);
        expect_row(r.out, t1, 4);
        expect_row(r.out, t2, 4);
    }
    ctl_run_free(&r);

    CTL_EXPECT(&r, 0, "status");
    expect_line(r.out, "node_name: kedge-node");
    expect_line(r.out, "devices: 1");
    expect_line(r.out, "bridge_connected: no");
    expect_line(r.out, "cloud_connected: no");
    expect_line(r.out, "outbox_depth: 1"); /* the accepted update waits for a bridge */
    expect_line(r.out, "store_ok: yes");
    expect_line(r.out, "bridge: no report");
    ck_assert_ptr_nonnull(line_starting(r.out, "db_size: "));
    ck_assert_ptr_nonnull(strstr(line_starting(r.out, "db_size: "), "KiB"));
    ck_assert_ptr_nonnull(line_starting(r.out, "outbox_oldest_age: "));
    ctl_run_free(&r);

    CTL_EXPECT(&r, 0, "device", "rm", DEV);
    expect_line(r.out, "device " DEV " removed");
    ctl_run_free(&r);
    expect_msg_json(watch, UPDATED_TOPIC,
                    "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"added_devices\":null,"
                    "\"removed_devices\":[{\"id\":\"" DEV "\",\"name\":\"thermo\"}]}");
    /* the device's next report is for a device the node no longer has */
    ck_assert_int_eq(kh_client_pub(dev, DEV_TOPIC "/twin/update",
                                   "{\"event_id\":\"u3\",\"twin\":{\"temperature\":{\"actual\":"
                                   "{\"value\":\"26\"}}}}",
                                   -1, 1, false),
                     0);
    expect_msg_json(dev, DEV_TOPIC "/twin/update/result",
                    "{\"event_id\":\"u3\",\"timestamp\":\"<ts>\",\"code\":404,"
                    "\"reason\":\"update rejected due to the device is not existed\"}");

    CTL_EXPECT(&r, 1, "device", "get", DEV);
    ck_assert_ptr_nonnull(strstr(r.err, "not found"));
    ctl_run_free(&r);
    CTL_EXPECT(&r, 1, "device", "rm", DEV);
    ck_assert_ptr_nonnull(strstr(r.err, "not found"));
    ctl_run_free(&r);
    ck_assert_int_eq(kh_client_expect_none(watch, UPDATED_TOPIC, QUIET_MS), 0);
    CTL_EXPECT(&r, 0, "device", "list");
    ck_assert_ptr_null(strstr(r.out, DEV));
    ctl_run_free(&r);
    CTL_EXPECT(&r, 0, "status");
    expect_line(r.out, "devices: 0");
    ctl_run_free(&r);
    kh_client_free(dev);
    kh_client_free(watch);
}
END_TEST

/* status with a bridge that has said hello and reported its link ($ke/status) */
START_TEST(test_status_bridge)
{
    struct kh_client *b =
        kh_client_new(kh_broker_port(broker), "bridge", "kedge-bridge", BRIDGE_PASS, 5);
    char report[512];
    long long now = (long long)time(NULL);
    struct ctl_run r;

    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(
        kh_client_pub(b, "$ke/hello", "{\"node_name\":\"kedge-node\",\"version\":1}", -1, 1, false),
        0);
    ck_assert_int_eq(kh_client_wait(b, "$ke/hello/result", WAIT_MS, NULL), 0);
    snprintf(report, sizeof(report),
             "{\"link\":\"connected\",\"reconnects\":3,\"last_keepalive_ms\":%lld,"
             "\"last_delivery_ms\":0,\"outbox_depth\":0,\"outbox_oldest_ms\":0,"
             "\"cert_not_after_s\":%lld}",
             (now - 2) * 1000, now + 90LL * 86400 + 3600);
    ck_assert_int_eq(kh_client_pub(b, "$ke/status", report, -1, 1, false), 0);
    CTL_EXPECT(&r, 0, "status");
    expect_line(r.out, "bridge_connected: yes");
    expect_line(r.out, "last_ack: never");
    expect_line(r.out, "bridge_link: connected");
    expect_line(r.out, "bridge_reconnects: 3");
    expect_line(r.out, "bridge_last_delivery: never");
    expect_line(r.out, "bridge_outbox_depth: 0");
    expect_line(r.out, "bridge_outbox_oldest_age: -");
    ck_assert_ptr_nonnull(line_starting(r.out, "bridge_last_keepalive: "));
    ck_assert_ptr_nonnull(strstr(line_starting(r.out, "bridge_last_keepalive: "), " ago\n"));
    ck_assert_ptr_nonnull(line_starting(r.out, "bridge_cert_not_after: "));
    ck_assert_ptr_nonnull(strstr(line_starting(r.out, "bridge_cert_not_after: "), "(in 90d "));
    ctl_run_free(&r);
    kh_client_free(b);
    /* the bridge gone: its last report stays, the link is down */
    CTL_EXPECT(&r, 0, "status");
    expect_line(r.out, "bridge_connected: no");
    ctl_run_free(&r);
}
END_TEST

/* ---- the plugin's outbox: list, show, drop ------------------------------------------------ */

static int count_of(const char *text, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

START_TEST(test_outbox)
{
    struct kh_client *d = kh_client_new(kh_broker_port(broker), "uploader", "sensor-7", "pw", 5);
    const char *row;
    struct ctl_run r;

    ck_assert_ptr_nonnull(d);
    /* no bridge: the uploads wait in the plugin's outbox; the bridge's part says it is away */
    ck_assert_int_eq(kh_client_pub(d, "$hw/events/upload/ctl", "hello", -1, 1, false), 0);
    ck_assert_int_eq(kh_client_pub(d, "$hw/events/upload/ctl", "again", -1, 1, false), 0);
    CTL_EXPECT(&r, 0, "outbox", "list");
    ck_assert_ptr_nonnull(line_starting(r.out, "plugin queue: 2 entries, "));
    ck_assert_ptr_nonnull(line_starting(r.out, "ENTRY "));
    row = line_starting(r.out, "p:1 ");
    ck_assert_msg(row && strstr(row, " $hw/events/upload/ctl "), "no upload row p:1:\n%s", r.out);
    ck_assert_ptr_nonnull(line_starting(r.out, "p:2 "));
    ck_assert_ptr_nonnull(line_starting(r.out, "bridge queue and dead letters: kedge-bridge did "
                                               "not answer"));
    ctl_run_free(&r);
    CTL_EXPECT(&r, 0, "outbox", "list", "--limit", "1");
    ck_assert_int_eq(count_of(r.out, "upload/ctl"), 1);
    ctl_run_free(&r);
    CTL_EXPECT(&r, 0, "outbox", "show", "p:2");
    ck_assert_ptr_nonnull(strstr(r.out, "\"again\""));
    ck_assert_ptr_nonnull(strstr(r.out, "\"upload\""));
    ctl_run_free(&r);
    CTL_EXPECT(&r, 0, "outbox", "drop", "1"); /* a bare SEQ is the plugin's */
    expect_line(r.out, "1: dropped");
    ctl_run_free(&r);
    CTL_EXPECT(&r, 1, "outbox", "show", "p:1");
    ctl_run_free(&r);
    CTL_EXPECT(&r, 1, "outbox", "drop", "p:1");
    ctl_run_free(&r);
    CTL_EXPECT(&r, 0, "outbox", "list");
    ck_assert_int_eq(count_of(r.out, "upload/ctl"), 1);
    ck_assert_ptr_nonnull(strstr(line_starting(r.out, "p:2 "), "upload/ctl"));
    ck_assert_ptr_nonnull(line_starting(r.out, "plugin queue: 1 entries, "));
    ctl_run_free(&r);
    kh_client_free(d);
}
END_TEST

/* ---- usage errors: exit 2, before the password file or the broker matter ------------------ */

static const char *const usage_cases[][8] = {
    {NULL},
    {"frobnicate", NULL},
    {"device", NULL},
    {"device", "add", NULL},
    {"device", "add", "default/thermo", "--twin", "temperature:double", NULL},
    {"device", "add", "default/thermo", "--twin", "temperature", NULL},
    {"device", "add", "default/thermo", "--twin", "bad name:int", NULL},
    {"device", "add", "default/thermo", "--twin", NULL},
    {"device", "add", "default/thermo", "--twin", "t:int", "--twin", "t:string", NULL},
    {"device", "add", "a/b/c", NULL},
    {"device", "add", "default/+", NULL},
    {"device", "add", "default/thermo", "--colour", "red", NULL},
    {"device", "rm", NULL},
    {"device", "get", NULL},
    {"device", "get", "x", "y", NULL},
    {"device", "list", "extra", NULL},
    {"status", "extra", NULL},
    {"-t", "0", "status", NULL},
    {"-p", "70000", "status", NULL},
    {"-q", "status", NULL},
    {"outbox", NULL},
    {"outbox", "peek", NULL},
    {"outbox", "show", NULL},
    {"outbox", "show", "0", NULL},
    {"outbox", "drop", "x", NULL},
    {"outbox", "list", "--limit", "many", NULL},
    {"pod", NULL},
    {"pod", "get", NULL},
    {"pod", "get", "a/b/c", NULL},
    {"pod", "list", "extra", NULL},
    {"help", "nope", NULL},
    {"-H", NULL},
};

START_TEST(test_usage)
{
    char *args[16];
    struct ctl_run r;
    int n = 0;

    /* a password file that does not exist: usage is checked first */
    args[n++] = "-P";
    args[n++] = "/nonexistent/kedge/password";
    for (int i = 0; usage_cases[_i][i]; i++)
        args[n++] = (char *)usage_cases[_i][i];
    args[n] = NULL;
    ctl_run_argv(&r, KEDGE_CTL_PATH, args, kh_scale_ms(RUN_MS));
    ck_assert_msg(r.status == 2, "case %d: exit %d, stderr %s", _i, r.status, r.err);
    ck_assert_msg(r.err[0] != '\0', "case %d: no message", _i);
    ctl_run_free(&r);
}
END_TEST

START_TEST(test_help)
{
    /* -h is help (-H the host), also after options with values; help CMD for one group */
    static char *const cases[][4] = {
        {"--help", NULL}, {"-h", NULL}, {"-p", "1895", "--help", NULL}, {"help", NULL}};
    char *group[] = {"help", "pod", NULL}, *too_long[] = {"device", "add", NULL, NULL};
    char id[301];
    struct ctl_run r;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ctl_run_argv(&r, KEDGE_CTL_PATH, cases[i], kh_scale_ms(RUN_MS));
        ck_assert_msg(r.status == 0, "case %zu: exit %d %s", i, r.status, r.err);
        ck_assert_ptr_nonnull(strstr(r.out, "device add ID"));
        ck_assert_ptr_nonnull(strstr(r.out, "-H, --host HOST"));
        ctl_run_free(&r);
    }
    ctl_run_argv(&r, KEDGE_CTL_PATH, group, kh_scale_ms(RUN_MS));
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "pod list"));
    ck_assert_ptr_nonnull(strstr(r.out, "pod get [NAMESPACE/]NAME"));
    ck_assert_ptr_null(strstr(r.out, "device add"));
    ctl_run_free(&r);
    /* an id of the right characters but too long says so */
    memset(id, 'a', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    too_long[2] = id;
    ctl_run_argv(&r, KEDGE_CTL_PATH, too_long, kh_scale_ms(RUN_MS));
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "too long") != NULL, "%s", r.err);
    ctl_run_free(&r);
}
END_TEST

/* ---- cannot connect, refused, no answer: exit 3 within the deadline ------------------------ */

static void write_file(const char *path, const char *text)
{
    test_write_file(path, text);
}

START_TEST(test_refused)
{
    char wrong[PATH_MAX + 16], port[16];
    struct ctl_run r;

    /* wrong password: refused at CONNECT */
    snprintf(wrong, sizeof(wrong), "%s.wrong", pwfile);
    write_file(wrong, "not-the-password\n");
    snprintf(port, sizeof(port), "%d", kh_broker_port(broker));
    {
        char *args[] = {"-p", port, "-P", wrong, "status", NULL};
        ctl_run_argv(&r, KEDGE_CTL_PATH, args, kh_scale_ms(RUN_MS));
    }
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "refused user 'kedge-bridge'"));
    ctl_run_free(&r);
    /* no password file at all */
    {
        char *args[] = {"-p", port, "-P", "/nonexistent/pw", "status", NULL};
        ctl_run_argv(&r, KEDGE_CTL_PATH, args, kh_scale_ms(RUN_MS));
    }
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent/pw"));
    ctl_run_free(&r);
    /* a user that connects (open mode) but is not the bridge */
    CTL_EXPECT(&r, 3, "-u", "sensor-7", "device", "list");
    ck_assert_ptr_nonnull(strstr(r.err, "may not use $ke/"));
    ctl_run_free(&r);
    /* nothing of it reached the plugin */
    CTL_EXPECT(&r, 0, "status");
    expect_line(r.out, "devices: 0");
    ctl_run_free(&r);
}
END_TEST

/* A port nobody listens on (bound once to find it free, then closed). */
static int dead_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), p;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    p = ntohs(a.sin_port);
    close(fd);
    return p;
}

START_TEST(test_no_broker)
{
    char port[16];
    struct ctl_run r;

    snprintf(port, sizeof(port), "%d", dead_port());
    {
        char *args[] = {"-p", port, "-P", pwfile, "-t", "2", "status", NULL};
        ctl_run_argv(&r, KEDGE_CTL_PATH, args, kh_scale_ms(RUN_MS));
    }
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "cannot connect"));
    ctl_run_free(&r);
}
END_TEST

/* TCP accepted (by the kernel's backlog) but never a CONNACK: kedge-ctl gives up at -t. */
START_TEST(test_silent_broker)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char port[16];
    struct ctl_run r;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    snprintf(port, sizeof(port), "%d", ntohs(a.sin_port));
    {
        char *args[] = {"-p", port, "-P", pwfile, "-t", "1", "status", NULL};
        ctl_run_argv(&r, KEDGE_CTL_PATH, args, kh_scale_ms(RUN_MS));
    }
    close(fd);
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "within 1 s"));
    ctl_run_free(&r);
}
END_TEST

/* A plain broker (no plugin) takes the request and never answers. */
START_TEST(test_no_plugin)
{
    struct kh_broker_opts o = {.no_plugin = true};
    struct kh_broker *plain = kh_broker_start(&o);
    char port[16];
    struct ctl_run r;

    ck_assert_ptr_nonnull(plain);
    snprintf(port, sizeof(port), "%d", kh_broker_port(plain));
    {
        char *args[] = {"-p", port, "-P", pwfile, "-t", "1", "device", "list", NULL};
        ctl_run_argv(&r, KEDGE_CTL_PATH, args, kh_scale_ms(RUN_MS));
    }
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "is kedge_plugin.so loaded"));
    ctl_run_free(&r);
    ck_assert_int_eq(kh_broker_stop(plain), 0);
    kh_broker_free(plain);
}
END_TEST

/* ---- the bridge's config file ----------------------------------------------------------- */

START_TEST(test_bridge_conf)
{
    char conf[PATH_MAX + 16], bad[PATH_MAX + 16], text[2 * PATH_MAX];
    struct ctl_run r;

    snprintf(conf, sizeof(conf), "%s/kedge-bridge.conf", kh_broker_dir(broker));
    snprintf(text, sizeof(text),
             "# kedge-bridge configuration\n"
             "node_name kedge-node\n"
             "cloud_url wss://127.0.0.1:10000/e632aba927ea4ac2b575ec1603d56f10/kedge-node/events\n"
             "\n"
             "  broker_host   127.0.0.1  \n"
             "broker_port %d\n"
             "broker_username kedge-bridge\n"
             "broker_password_file %s\n",
             kh_broker_port(broker), pwfile);
    write_file(conf, text);
    {
        char *args[] = {"-c", conf, "status", NULL};
        ctl_run_argv(&r, KEDGE_CTL_PATH, args, kh_scale_ms(RUN_MS));
    }
    ck_assert_int_eq(r.status, 0);
    expect_line(r.out, "devices: 0");
    ctl_run_free(&r);
    /* the command line wins over the file */
    {
        char port[16];
        char *args[] = {"-c", conf, "-p", port, "-t", "2", "status", NULL};
        snprintf(port, sizeof(port), "%d", dead_port());
        ctl_run_argv(&r, KEDGE_CTL_PATH, args, kh_scale_ms(RUN_MS));
    }
    ck_assert_int_eq(r.status, 3);
    ctl_run_free(&r);
    /* a bad value names the file and line; a missing -c file is an error */
    snprintf(bad, sizeof(bad), "%s/bad.conf", kh_broker_dir(broker));
    write_file(bad, "# x\nbroker_port 99999\n");
    {
        char *args[] = {"-c", bad, "status", NULL};
        ctl_run_argv(&r, KEDGE_CTL_PATH, args, kh_scale_ms(RUN_MS));
    }
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "bad.conf:2"));
    ctl_run_free(&r);
    {
        char *args[] = {"-c", "/nonexistent/kedge-bridge.conf", "status", NULL};
        ctl_run_argv(&r, KEDGE_CTL_PATH, args, kh_scale_ms(RUN_MS));
    }
    ck_assert_int_eq(r.status, 2);
    ctl_run_free(&r);
}
END_TEST

static Suite *ctl_suite(void)
{
    Suite *s = suite_create("ctl");
    TCase *tc = tcase_create("ctl"), *tu = tcase_create("usage");

    /* usage errors need no broker */
    tcase_add_loop_test(tu, test_usage, 0, (int)(sizeof(usage_cases) / sizeof(usage_cases[0])));
    tcase_add_test(tu, test_help);
    suite_add_tcase(s, tu);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_device_lifecycle);
    tcase_add_test(tc, test_status_bridge);
    tcase_add_test(tc, test_outbox);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_no_broker);
    tcase_add_test(tc, test_silent_broker);
    tcase_add_test(tc, test_no_plugin);
    tcase_add_test(tc, test_bridge_conf);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kh_run_suite(ctl_suite(), CK_NORMAL);
}
