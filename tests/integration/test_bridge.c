/* The whole edge node against a cloud: mosquitto with kedge_plugin.so (harness.h), the real
 * kedge-bridge (bridgectl.h) and kedge-cloudsim, a cloud peer that behaves like CloudHub
 * (tests/cloudsim/simctl.h). All three are real processes on 127.0.0.1; each test starts its
 * own set, and teardown asserts that each of them exits 0 on SIGTERM (in the sanitizer tree,
 * and under KEDGE_VALGRIND=1, that also means no leaks).
 *
 * What goes over the websocket is read back from cloudsim's control API: /received (what the
 * edge sent), /acked (cloud messages the edge acknowledged), /state (the session). Payloads are
 * compared structurally with jsoncmp(): "<ts>" matches any number, "<generated>" any non-empty
 * string, everything else is exact (kubeedge-wire.md §2.8, §4.6, §5.1, §5.2).
 *
 * Waits are deadlines on a condition. Where a test must show that something did not happen it
 * uses a later marker that the same ordered stream delivers first (MQTT from the broker, the
 * outbox to the cloud). The bridge runs with short link settings (keepalive 2 s, ping after 2 s
 * of silence, hang up after 5 s, reconnect backoff 100 ms .. 1 s) so a dead link is noticed in
 * seconds; the defaults (15 s / 15 s / 45 s) only stretch the same behaviour.
 *
 * Not covered: malformed JSON from the cloud. cloudsim's /send takes a beehive message and
 * re-encodes it, so a test cannot put bytes that are not a message on the websocket.
 */
#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "bridgectl.h"
#include "chain.h"
#include "dbpeek.h"
#include "harness.h"
#include "jsoncmp.h"
#include "kedge/alloc.h"
#include "kedge/json.h"
#include "kedge/msg.h"
#include "simctl.h"
#include "proc.h"
#include "testsupport.h"

#define PAUSE_MS 20 /* between two polls of a deadline loop */

#define WAIT_MS 10000 /* deadline for something that should take milliseconds */
#define LINK_MS 20000 /* deadline for a dead link to be noticed and redialled (5 s settings) */
#define NODE "kedge-node"
#define PROJECT "e632aba927ea4ac2b575ec1603d56f10"
#define BRIDGE_USER "kedge-bridge"
#define BRIDGE_PASS "br1dge-Secret"
#define DEV "default/thermo"
#define DEV_TOPIC "$hw/events/device/" DEV
#define UPDATED_TOPIC "$hw/events/node/" NODE "/membership/updated"
#define OUTBOX_COUNT "SELECT count(*) FROM kedge_outbox"

static struct simctl *sim;
static struct kh_broker *broker;
static struct bridgectl *bridge;

/* ---- the chain: cloudsim, broker + plugin, bridge ----------------------------------------- */

struct kv {
    const char *key, *value;
};

struct chain_opts {
    const struct kv *bridge_conf; /* more bridge settings, ended by {NULL, NULL} */
    long resend_interval_s;       /* cloudsim: 0 = its default (5 s) */
    long keepalive_timeout_s;     /* cloudsim: 0 = its default (30 s) */
    const char *cloud_version;    /* both ends; NULL: 1.17, whose ns/name ids DEV uses */
    const char *session_setup_ms; /* cloudsim: NULL = its default */
};

static void bset(const char *key, const char *value)
{
    ck_assert_int_eq(bridgectl_set(bridge, key, value), 0);
}

static void wait_session(int64_t min_sessions, int timeout_ms);

static void chain_up(const struct chain_opts *co)
{
    static const struct chain_opts none;
    struct simctl_opts so = {0};
    struct bridgectl_opts bo = {0};
    struct kh_broker_opts ko = {0};
    struct kh_opt popts[2] = {{NULL, NULL}, {NULL, NULL}};
    const char *extra[3] = {"--session-setup-ms", NULL, NULL};
    const struct kv *kv;

    if (!co)
        co = &none;
    so.node = NODE;
    so.resend_interval_s = co->resend_interval_s;
    so.keepalive_timeout_s = co->keepalive_timeout_s;
    so.cloud_version = co->cloud_version ? co->cloud_version : "1.17";
    extra[1] = co->session_setup_ms;
    if (co->session_setup_ms)
        so.extra_args = extra;
    ck_assert_int_eq(simctl_start(&so, &sim), 0);

    bo.password = BRIDGE_PASS;
    ck_assert_int_eq(bridgectl_new(&bo, &bridge), 0);

    /* the plugin reads the bridge's password from that same file (bridge_password_file) */
    popts[0].key = "bridge_password_file";
    popts[0].value = bridgectl_password_path(bridge);
    ko.plugin_opts = popts;
    broker = kh_broker_start(&ko);
    ck_assert_msg(broker != NULL, "broker with kedge_plugin.so did not start");

    ck_assert_int_eq(bridgectl_wire_cloudsim(bridge, sim, NODE, kh_broker_port(broker), true), 0);
    bset("cloud_version", so.cloud_version);
    for (kv = co->bridge_conf; kv && kv->key; kv++)
        bset(kv->key, kv->value);
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    wait_session(1, WAIT_MS);
}

static void teardown(void)
{
    struct chain_exit x;

    chain_down(&bridge, &broker, &sim, true, &x);
    chain_assert_clean(&x);
}

/* ---- cloudsim's control API ---------------------------------------------------------------- */

static const struct kedge_jval *state_get(struct kedge_jdoc **doc, const char *key)
{
    *doc = chain_sim_get(sim, "/state?node=" NODE);
    return kedge_json_get(kedge_jdoc_root(*doc), key);
}

static int64_t state_int(const char *key)
{
    struct kedge_jdoc *doc;
    int64_t v = -1;

    ck_assert_msg(kedge_json_int64(state_get(&doc, key), &v) == 0, "/state has no number %s", key);
    kedge_jdoc_free(doc);
    return v;
}

static bool state_bool(const char *key)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *v = state_get(&doc, key);
    bool b;

    ck_assert_msg(v && v->type == KEDGE_JBOOL, "/state has no bool %s", key);
    b = v->boolean;
    kedge_jdoc_free(doc);
    return b;
}

static void state_str_is(const char *key, const char *want)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *v = state_get(&doc, key);

    ck_assert_msg(v && v->type == KEDGE_JSTR, "/state has no string %s", key);
    ck_assert_str_eq(v->str, want);
    kedge_jdoc_free(doc);
}

/* Whether cloudsim knows the node yet: /state answers 404 until it first connected. */
static bool node_known(void)
{
    struct kedge_jdoc *doc = NULL;
    int status = 0;

    ck_assert_int_eq(simctl_http_json(sim, "GET", "/state?node=" NODE, NULL, &status, &doc), 0);
    kedge_jdoc_free(doc);
    ck_assert_msg(status == 200 || status == 404, "GET /state: HTTP %d", status);
    return status == 200;
}

/* Wait until the node has a live session and at least min_sessions were ever opened. */
static void wait_session(int64_t min_sessions, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);

    for (;;) {
        if (node_known() && state_bool("connected") && state_int("sessions_total") >= min_sessions)
            return;
        ck_assert_msg(kt_now_ms() < deadline,
                      "no session %" PRId64 " of node " NODE " at the cloud", min_sessions);
        kt_pause_ms(PAUSE_MS);
    }
}

static void wait_disconnected(void)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (state_bool("connected")) {
        ck_assert_msg(kt_now_ms() < deadline, "the cloud still has a session");
        kt_pause_ms(PAUSE_MS);
    }
}

/* Queue a message for the node; returns the msg_id cloudsim gave it (kedge_free). */
static char *cloud_send(const char *json)
{
    char *id = NULL;

    ck_assert_msg(simctl_send(sim, NODE, json, &id) == 0, "/send refused %s", json);
    ck_assert_ptr_nonnull(id);
    return id;
}

static bool str_is(const struct kedge_jval *v, const char *want)
{
    return !want || (v && v->type == KEDGE_JSTR && !strcmp(v->str, want));
}

static char *jval_text(const struct kedge_jval *v)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;
    char *s;

    kedge_jw_init(&w, &b);
    kedge_json_write_value(&w, v);
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
    s = strndup(b.data, b.len);
    ck_assert_ptr_nonnull(s);
    kedge_buf_cleanup(&b);
    return s;
}

/* What the cloud received, filtered by route (NULL fields match anything). */
struct route_sel {
    const char *source, *group, *operation, *resource;
};

/* The messages after index *since that match sel: the first one's JSON is returned (malloc;
 * NULL if none) and *since moves to its index; *count (may be NULL) gets how many matched. */
static char *cloud_find(long long *since, const struct route_sel *sel, int *count)
{
    char path[96];
    struct kedge_jdoc *doc;
    const struct kedge_jval *e;
    char *first = NULL;
    int n = 0;

    (void)snprintf(path, sizeof(path), "/received?since=%lld%s", *since,
                   sel->operation && !strcmp(sel->operation, "keepalive") ? ""
                                                                          : "&skip_keepalive=1");
    doc = chain_sim_get(sim, path);
    e = kedge_json_get(kedge_jdoc_root(doc), "messages");
    ck_assert_msg(e && e->type == KEDGE_JARR, "/received has no messages");
    for (e = e->child; e; e = e->next) {
        const struct kedge_jval *json = kedge_json_get(e, "json");
        const struct kedge_jval *route = kedge_json_get(json, "route");
        int64_t index = 0;

        if (!str_is(kedge_json_get(route, "source"), sel->source) ||
            !str_is(kedge_json_get(route, "group"), sel->group) ||
            !str_is(kedge_json_get(route, "operation"), sel->operation) ||
            !str_is(kedge_json_get(route, "resource"), sel->resource))
            continue;
        if (!n++) {
            ck_assert_int_eq(kedge_json_int64(kedge_json_get(e, "index"), &index), 0);
            first = jval_text(json);
            *since = index;
        }
    }
    kedge_jdoc_free(doc);
    if (count)
        *count = n;
    return first;
}

/* Wait for the next matching message after *since (see cloud_find). */
static char *cloud_wait(long long *since, const struct route_sel *sel)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    char *json;

    while (!(json = cloud_find(since, sel, NULL))) {
        ck_assert_msg(kt_now_ms() < deadline, "the cloud received no %s/%s/%s/%s after index %lld",
                      sel->source ? sel->source : "*", sel->group ? sel->group : "*",
                      sel->operation ? sel->operation : "*", sel->resource ? sel->resource : "*",
                      *since);
        kt_pause_ms(PAUSE_MS);
    }
    return json;
}

static int cloud_count(long long since, const struct route_sel *sel)
{
    int n;

    free(cloud_find(&since, sel, &n));
    return n;
}

static bool acked(const char *msg_id)
{
    struct kedge_jdoc *doc = chain_sim_get(sim, "/acked");
    const struct kedge_jval *e = kedge_json_get(kedge_jdoc_root(doc), "acked");
    bool found = false;

    ck_assert_msg(e && e->type == KEDGE_JARR, "/acked has no list");
    for (e = e->child; e && !found; e = e->next)
        found = e->type == KEDGE_JSTR && !strcmp(e->str, msg_id);
    kedge_jdoc_free(doc);
    return found;
}

static void wait_acked(const char *msg_id)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (!acked(msg_id)) {
        ck_assert_msg(kt_now_ms() < deadline, "the edge never acked %s", msg_id);
        kt_pause_ms(PAUSE_MS);
    }
}

/* Lines of cloudsim's log holding both needles. */
static int sim_log_count(const char *a, const char *b)
{
    char path[1200], *log, *line, *save = NULL;
    size_t len;
    int n = 0;

    (void)snprintf(path, sizeof(path), "%s/cloudsim.log", simctl_dir(sim));
    log = slurp(path, &len);
    ck_assert_ptr_nonnull(log);
    for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strstr(line, a) && (!b || strstr(line, b)))
            n++;
    free(log);
    return n;
}

/* ---- JSON --------------------------------------------------------------------------------- */

static void expect_json(const char *payload, size_t len, const char *tpl)
{
    jsoncmp_expect(payload, len, tpl);
}

static void expect_cloud_msg(char *json, const char *tpl)
{
    expect_json(json, strlen(json), tpl);
    free(json);
}

/* The edge_updated message a successful actual update of temperature produces (§2.8). */
static void edge_updated_tpl(char *tpl, size_t n, const char *dev, int value, int edge_version)
{
    (void)snprintf(tpl, n,
                   "{\"header\":{\"msg_id\":\"<generated>\",\"timestamp\":\"<ts>\"},"
                   "\"route\":{\"source\":\"twin\",\"group\":\"resource\",\"operation\":"
                   "\"update\",\"resource\":\"device/%s/twin/edge_updated\"},"
                   "\"content\":{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"twin\":{"
                   "\"temperature\":{\"actual\":{\"value\":\"%d\",\"metadata\":{\"timestamp\":"
                   "\"<ts>\"}},\"optional\":true,\"metadata\":{\"type\":\"int\"},"
                   "\"actual_version\":{\"cloud\":0,\"edge\":%d}}}}}",
                   dev, value, edge_version);
}

static void upload_tpl(char *tpl, size_t n, const char *topic, const char *content_json)
{
    (void)snprintf(tpl, n,
                   "{\"header\":{\"msg_id\":\"<generated>\",\"timestamp\":\"<ts>\"},"
                   "\"route\":{\"source\":\"bus\",\"group\":\"user\",\"operation\":\"upload\","
                   "\"resource\":\"%s\"},\"content\":%s}",
                   topic, content_json);
}

/* ---- MQTT, the plugin, the databases ------------------------------------------------------- */

static struct kh_client *device(const char *id)
{
    struct kh_client *d = kh_client_new(kh_broker_port(broker), id, "sensor-7", "x", 4);

    ck_assert_msg(d != NULL, "device %s could not connect", id);
    return d;
}

static void expect_mqtt_json(struct kh_client *c, const char *topic, const char *tpl)
{
    struct kh_msg m;

    ck_assert_msg(kh_client_wait(c, topic, WAIT_MS, &m) == 0, "nothing on %s", topic);
    expect_json(m.payload, (size_t)m.len, tpl);
    kh_msg_cleanup(&m);
}

/* The next message of any topic must be exactly topic/payload. */
static void expect_next(struct kh_client *c, const char *topic, const char *payload)
{
    struct kh_msg m;

    ck_assert_msg(kh_client_wait(c, "#", WAIT_MS, &m) == 0, "nothing arrived (wanted %s)", topic);
    ck_assert_str_eq(m.topic, topic);
    ck_assert_str_eq(m.payload, payload);
    kh_msg_cleanup(&m);
}

static void twin_update_value(struct kh_client *d, const char *dev, int value)
{
    char topic[128], payload[128], tpl[320];

    (void)snprintf(topic, sizeof(topic), "$hw/events/device/%s/twin/update", dev);
    (void)snprintf(payload, sizeof(payload),
                   "{\"event_id\":\"u%d\",\"twin\":{\"temperature\":{\"actual\":{\"value\":"
                   "\"%d\"}}}}",
                   value, value);
    (void)snprintf(tpl, sizeof(tpl),
                   "{\"event_id\":\"u%d\",\"timestamp\":\"<ts>\",\"twin\":{\"temperature\":{"
                   "\"actual\":{\"value\":\"%d\",\"metadata\":{\"timestamp\":\"<ts>\"}},"
                   "\"optional\":true,\"metadata\":{\"type\":\"int\"}}}}",
                   value, value);
    ck_assert_int_eq(kh_client_pub(d, topic, payload, -1, 1, false), 0);
    (void)snprintf(topic, sizeof(topic), "$hw/events/device/%s/twin/update/result", dev);
    expect_mqtt_json(d, topic, tpl);
}

/* A number (or bool: 0/1) from the plugin's status, the $ke/ctl query kedge-ctl makes as the
 * bridge identity. */
static int64_t plugin_status_int(const char *key)
{
    static unsigned ref;
    const struct kedge_jval *val;
    struct kh_client *c =
        kh_client_new(kh_broker_port(broker), "test-ctl", BRIDGE_USER, BRIDGE_PASS, 5);
    struct kedge_jdoc *doc = NULL;
    char topic[64], rtopic[80];
    struct kh_msg m;
    int64_t v = -1;

    ck_assert_ptr_nonnull(c);
    (void)snprintf(topic, sizeof(topic), "$ke/ctl/tb-%u", ++ref);
    (void)snprintf(rtopic, sizeof(rtopic), "%s/result", topic);
    ck_assert_int_eq(kh_client_sub(c, rtopic, 1), 1);
    ck_assert_int_eq(kh_client_pub(c, topic, "{\"op\":\"status\"}", -1, 1, false), 0);
    ck_assert_msg(kh_client_wait(c, rtopic, WAIT_MS, &m) == 0, "no status from the plugin");
    ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &doc), 0);
    val = kedge_json_get(kedge_jdoc_root(doc), key);
    if (val && val->type == KEDGE_JBOOL)
        v = val->boolean;
    else
        ck_assert_msg(kedge_json_int64(val, &v) == 0, "no %s in %s", key, m.payload);
    kedge_jdoc_free(doc);
    kh_msg_cleanup(&m);
    kh_client_free(c);
    return v;
}

/* Wait until the plugin's status says the cloud link is up / down (the bridge tells it with
 * edgehub's node/connection message, §4.6). */
static void wait_plugin_cloud(bool connected)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (plugin_status_int("cloud_connected") != connected) {
        ck_assert_msg(kt_now_ms() < deadline, "the plugin never saw cloud_connected=%d", connected);
        kt_pause_ms(PAUSE_MS);
    }
}

static void wait_plugin_outbox(int64_t depth)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (plugin_status_int("outbox_depth") != depth) {
        ck_assert_msg(kt_now_ms() < deadline, "the plugin's outbox never held %" PRId64, depth);
        kt_pause_ms(PAUSE_MS);
    }
}

static void wait_db_int(const char *path, const char *sql, int64_t want)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS), got;

    while ((got = db_int(path, sql)) != want) {
        ck_assert_msg(kt_now_ms() < deadline, "%s: %" PRId64 ", expected %" PRId64, sql, got, want);
        kt_pause_ms(PAUSE_MS);
    }
}

static void wait_bridge_log(long from, const char *needle)
{
    ck_assert_msg(bridgectl_wait_log(bridge, from, needle, WAIT_MS) == 0,
                  "the bridge never logged '%s'", needle);
}

/* ---- cloud messages ----------------------------------------------------------------------- */

/* devicecontroller's membership update (§2.10), with the twin names and types. */
#define MEMBERSHIP_ADD_THERMO                                                                      \
    "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":\"update\","     \
    "\"resource\":\"membership\"},"                                                                \
    "\"content\":{\"event_id\":\"ev-add\",\"timestamp\":1700000000000,\"added_devices\":["         \
    "{\"id\":\"" DEV "\",\"name\":\"thermo\",\"description\":\"hall\","                            \
    "\"twin\":{\"temperature\":{\"metadata\":{\"type\":\"int\"}}}}],\"removed_devices\":null}}"

#define ANNOUNCED_THERMO                                                                           \
    "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"added_devices\":["                     \
    "{\"id\":\"" DEV "\",\"name\":\"thermo\",\"description\":\"hall\","                            \
    "\"twin\":{\"temperature\":{\"metadata\":{\"type\":\"int\"}}}}],\"removed_devices\":null}"

/* router_eventbus publish (§5.2, §8.6): content is the MQTT payload. */
static void cloud_publish(const char *topic, const char *payload)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_buf_printf(&b,
                                      "{\"route\":{\"source\":\"router_eventbus\",\"group\":"
                                      "\"user\",\"operation\":\"publish\",\"resource\":\"%s\"},"
                                      "\"content\":",
                                      topic),
                     0);
    ck_assert_int_eq(kedge_json_escape(&b, payload, strlen(payload)), 0);
    ck_assert_int_eq(kedge_buf_puts(&b, "}"), 0);
    kedge_free(cloud_send(b.data));
    kedge_buf_cleanup(&b);
}

/* Add default/thermo from the cloud and wait until the plugin announced it. */
static void add_thermo(void)
{
    struct kh_client *watch = device("watch");

    ck_assert_int_eq(kh_client_sub(watch, UPDATED_TOPIC, 1), 1);
    kedge_free(cloud_send(MEMBERSHIP_ADD_THERMO));
    expect_mqtt_json(watch, UPDATED_TOPIC, ANNOUNCED_THERMO);
    kh_client_free(watch);
}

/* ---- 1. a twin update reaches the cloud, is confirmed, the outbox empties ------------------ */

START_TEST(test_twin_to_cloud)
{
    static const struct route_sel edge_updated = {"twin", "resource", "update",
                                                  "device/" DEV "/twin/edge_updated"};
    struct kh_client *d;
    long long since = -1;
    char tpl[1024];

    chain_up(NULL);
    add_thermo();
    d = device("thermo-dev");
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/twin/update/result", 1), 1);
    twin_update_value(d, DEV, 25);
    edge_updated_tpl(tpl, sizeof(tpl), DEV, 25, 1);
    expect_cloud_msg(cloud_wait(&since, &edge_updated), tpl);
    /* the device controller's "OK" (parent_msg_id = that message) takes it out of the
     * bridge's outbox; the plugin let go of it when the bridge had stored it */
    wait_db_int(bridgectl_db_path(bridge), OUTBOX_COUNT, 0);
    wait_plugin_outbox(0);
    ck_assert_int_eq(cloud_count(-1, &edge_updated), 1);

    /* the next update carries the next edge version */
    twin_update_value(d, DEV, 26);
    edge_updated_tpl(tpl, sizeof(tpl), DEV, 26, 2);
    expect_cloud_msg(cloud_wait(&since, &edge_updated), tpl);
    wait_db_int(bridgectl_db_path(bridge), OUTBOX_COUNT, 0);
    kh_client_free(d);
}
END_TEST

/* Wait until cloudsim holds no unacked message for the node. */
static void wait_no_pending(void)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (state_int("pending_acks") != 0) {
        ck_assert_msg(kt_now_ms() < deadline, "the cloud's messages were not all acked");
        kt_pause_ms(PAUSE_MS);
    }
}

/* ---- 2. membership; Device + DeviceModel make a typed twin; both acked --------------------- */

#define DEVICEMODEL_INSERT                                                                         \
    "{\"header\":{\"resourceversion\":\"101\"},\"route\":{\"source\":\"devicecontroller\","        \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":"                                \
    "\"default/devicemodel/boiler-model\"},\"content\":{\"apiVersion\":"                           \
    "\"devices.kubeedge.io/v1beta1\",\"kind\":\"DeviceModel\",\"metadata\":{\"name\":"             \
    "\"boiler-model\",\"namespace\":\"default\",\"resourceVersion\":\"101\"},\"spec\":{"           \
    "\"properties\":[{\"name\":\"temperature\",\"type\":\"INT\",\"accessMode\":\"ReadWrite\"},"    \
    "{\"name\":\"mode\",\"type\":\"STRING\",\"accessMode\":\"ReadWrite\"}]}}}"

#define DEVICE_INSERT                                                                              \
    "{\"header\":{\"resourceversion\":\"102\"},\"route\":{\"source\":\"devicecontroller\","        \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":\"default/device/boiler\"},"     \
    "\"content\":{\"apiVersion\":\"devices.kubeedge.io/v1beta1\",\"kind\":\"Device\","             \
    "\"metadata\":{\"name\":\"boiler\",\"namespace\":\"default\",\"resourceVersion\":\"102\","     \
    "\"labels\":{\"description\":\"basement\"}},\"spec\":{\"deviceModelRef\":{\"name\":"           \
    "\"boiler-model\"},\"nodeName\":\"" NODE "\",\"properties\":[{\"name\":\"temperature\"},"      \
    "{\"name\":\"mode\"}]}}}"

START_TEST(test_membership_and_device_types)
{
    struct kh_client *watch, *d;
    char *model_id, *device_id;

    chain_up(NULL);
    watch = device("watch");
    ck_assert_int_eq(kh_client_sub(watch, UPDATED_TOPIC, 1), 1);
    kedge_free(cloud_send(MEMBERSHIP_ADD_THERMO));
    expect_mqtt_json(watch, UPDATED_TOPIC, ANNOUNCED_THERMO);
    /* the device is usable over MQTT */
    d = device("dev");
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/twin/update/result", 1), 1);
    twin_update_value(d, DEV, 21);

    /* §8.3: the model first, then the device; both stored, typed twins for the plugin */
    model_id = cloud_send(DEVICEMODEL_INSERT);
    device_id = cloud_send(DEVICE_INSERT);
    expect_mqtt_json(watch, UPDATED_TOPIC,
                     "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"added_devices\":["
                     "{\"id\":\"default/boiler\",\"name\":\"boiler\",\"description\":"
                     "\"basement\",\"twin\":{\"temperature\":{\"metadata\":{\"type\":\"int\"}},"
                     "\"mode\":{\"metadata\":{\"type\":\"string\"}}}}],\"removed_devices\":null}");
    ck_assert_int_eq(kh_client_sub(d, "$hw/events/device/default/boiler/twin/update/result", 1), 1);
    /* the model's INT type is enforced (§8.2)... */
    ck_assert_int_eq(kh_client_pub(d, "$hw/events/device/default/boiler/twin/update",
                                   "{\"event_id\":\"b1\",\"twin\":{\"temperature\":{\"actual\":"
                                   "{\"value\":\"warm\"}}}}",
                                   -1, 1, false),
                     0);
    expect_mqtt_json(d, "$hw/events/device/default/boiler/twin/update/result",
                     "{\"event_id\":\"b1\",\"timestamp\":\"<ts>\",\"code\":400,\"reason\":"
                     "\"the value is not int or integer\"}");
    /* ...and a good value is taken */
    twin_update_value(d, "default/boiler", 40);

    /* each of the two was acked, after it was stored in the meta table */
    wait_acked(model_id);
    wait_acked(device_id);
    /* and the Device the cloud sends again after the status patch for that report */
    wait_no_pending();
    ck_assert_int_eq(db_int(bridgectl_meta_db_path(bridge),
                            "SELECT count(*) FROM meta WHERE (key = "
                            "'default/devicemodel/boiler-model' AND type = 'devicemodel') OR "
                            "(key = 'default/device/boiler' AND type = 'device')"),
                     2);
    kedge_free(model_id);
    kedge_free(device_id);
    kh_client_free(d);
    kh_client_free(watch);
}
END_TEST

/* ---- 2b. a Device against each cloud generation ------------------------------------------ */

/* v1.15 names devices by name, v1.17 by namespace/name: in its membership, in what it reads from
 * twin/edge_updated; the bridge's cloud_version and cloudsim's --cloud-version agree. */
static const struct {
    const char *version, *id;
} gens[] = {{"1.15", "thermo-e2e"}, {"1.17", "default/thermo-e2e"}};

#define E2E_MODEL                                                                                  \
    "{\"header\":{\"resourceversion\":\"200\"},\"route\":{\"source\":\"devicecontroller\","        \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":"                                \
    "\"default/devicemodel/thermo-model\"},\"content\":{\"apiVersion\":"                           \
    "\"devices.kubeedge.io/v1beta1\",\"kind\":\"DeviceModel\",\"metadata\":{\"name\":"             \
    "\"thermo-model\",\"namespace\":\"default\"},\"spec\":{\"properties\":[{\"name\":"             \
    "\"temperature\",\"type\":\"INT\",\"accessMode\":\"ReadWrite\"}]}}}"

/* The Device as cloudcore's downstream sends it (insert or update), desired value `desired`;
 * status.twins lists temperature, so the device controller records its reported value. */
static char *e2e_device_from(const char *source, const char *op, int rv, const char *desired)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(
        kedge_buf_printf(
            &b,
            "{\"header\":{\"resourceversion\":\"%d\"},\"route\":{\"source\":\"%s\","
            "\"group\":\"resource\",\"operation\":\"%s\",\"resource\":\"default/device/"
            "thermo-e2e\"},\"content\":{\"apiVersion\":\"devices.kubeedge.io/v1beta1\",\"kind\":"
            "\"Device\",\"metadata\":{\"name\":\"thermo-e2e\",\"namespace\":\"default\","
            "\"resourceVersion\":\"%d\",\"labels\":{\"description\":\"e2e\"}},\"spec\":{"
            "\"deviceModelRef\":{\"name\":\"thermo-model\"},\"nodeName\":\"" NODE "\","
            "\"properties\":[{\"name\":\"temperature\",\"desired\":{\"value\":\"%s\"}}]},"
            "\"status\":{\"twins\":[{\"propertyName\":\"temperature\",\"reported\":{\"value\":"
            "\"\"}}]}}}",
            rv, source, op, rv, desired),
        0);
    return kedge_buf_take(&b, NULL);
}

static char *e2e_device(const char *op, int rv, const char *desired)
{
    return e2e_device_from("devicecontroller", op, rv, desired);
}

static char *send_owned(char *json)
{
    char *id = cloud_send(json);

    kedge_free(json);
    return id;
}

static void expect_delta(struct kh_client *c, const char *topic, const char *expected,
                         const char *actual)
{
    char tpl[768];

    (void)snprintf(tpl, sizeof(tpl),
                   "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"twin\":{\"temperature\":"
                   "{\"expected\":{\"value\":\"%s\",\"metadata\":{\"timestamp\":\"<ts>\"}},%s%s%s"
                   "\"optional\":true,\"metadata\":{\"type\":\"int\"}}},\"delta\":{\"temperature\":"
                   "\"%s\"}}",
                   expected, actual ? "\"actual\":{\"value\":\"" : "", actual ? actual : "",
                   actual ? "\",\"metadata\":{\"timestamp\":\"<ts>\"}}," : "", expected);
    expect_mqtt_json(c, topic, tpl);
}

/* GET /object?key=K: the cloud's object (kedge_malloc'd), NULL when it has none. */
static char *sim_object(const char *key)
{
    struct kedge_buf body = KEDGE_BUF_INIT;
    char path[256];
    int status = 0;

    (void)snprintf(path, sizeof(path), "/object?key=%s", key);
    ck_assert_int_eq(simctl_http(sim, "GET", path, NULL, &status, &body), 0);
    if (status != 200) {
        kedge_buf_cleanup(&body);
        return NULL;
    }
    return kedge_buf_take(&body, NULL);
}

/* The cloud's next resourceVersion for thermo-e2e: above the one it holds (its own status
 * patches make versions too), as the API server's only go up. */
static int next_rv(void)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *rv;
    char *obj = sim_object("default/device/thermo-e2e");
    long n = 200;

    if (obj && kedge_json_parse(obj, strlen(obj), &doc) == 0) {
        rv = kedge_json_get(kedge_json_get(kedge_jdoc_root(doc), "metadata"), "resourceVersion");
        ck_assert_ptr_nonnull(rv);
        n = strtol(rv->str, NULL, 10);
    }
    kedge_jdoc_free(doc);
    kedge_free(obj);
    return (int)n + 1;
}

START_TEST(test_device_generations)
{
    const char *id = gens[_i].id;
    struct chain_opts co = {.cloud_version = gens[_i].version};
    struct route_sel edge_updated = {"twin", "resource", "update", NULL};
    char delta[160], get[160], getres[200], res[160], tpl[1024], *msg_id, *obj;
    struct kh_client *watch, *d;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *devs;
    long long since = -1;
    struct kh_msg m;
    int64_t deadline;

    chain_up(&co);
    (void)snprintf(delta, sizeof(delta), "$hw/events/device/%s/twin/update/delta", id);
    (void)snprintf(get, sizeof(get), "$hw/events/device/%s/twin/get", id);
    (void)snprintf(getres, sizeof(getres), "%s/result", get);
    (void)snprintf(res, sizeof(res), "device/%s/twin/edge_updated", id);
    edge_updated.resource = res;
    watch = device("watch");
    ck_assert_int_eq(kh_client_sub(watch, UPDATED_TOPIC, 1), 1);
    ck_assert_int_eq(kh_client_sub(watch, delta, 1), 1);

    /* what cloudcore's deviceAdded sends: its membership (the generation's id, no twins), the
     * model, the Device */
    (void)snprintf(tpl, sizeof(tpl),
                   "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":"
                   "\"update\",\"resource\":\"node/" NODE "/membership\"},\"content\":{"
                   "\"event_id\":\"ev-e2e\",\"timestamp\":1,\"added_devices\":[{\"id\":\"%s\","
                   "\"name\":\"thermo-e2e\",\"description\":\"e2e\"}],\"removed_devices\":[]}}",
                   id);
    kedge_free(cloud_send(tpl));
    kedge_free(cloud_send(E2E_MODEL));
    msg_id = send_owned(e2e_device("insert", next_rv(), "22"));
    /* one device, announced once; the Device's twin types join it without a second one */
    (void)snprintf(
        tpl, sizeof(tpl),
        "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"added_devices\":[{\"id\":"
        "\"%s\",\"name\":\"thermo-e2e\",\"description\":\"e2e\"}],\"removed_devices\":"
        "null}",
        id);
    expect_mqtt_json(watch, UPDATED_TOPIC, tpl);
    /* the desired value is the twin's expected value, and the delta says so */
    expect_delta(watch, delta, "22", NULL);
    wait_acked(msg_id);
    kedge_free(msg_id);
    d = device("thermo-dev");
    ck_assert_int_eq(kh_client_sub(d, "$hw/events/node/" NODE "/membership/get/result", 1), 1);
    ck_assert_int_eq(kh_client_pub(d, "$hw/events/node/" NODE "/membership/get",
                                   "{\"event_id\":\"m2\"}", -1, 1, false),
                     0);
    ck_assert_int_eq(
        kh_client_wait(d, "$hw/events/node/" NODE "/membership/get/result", WAIT_MS, &m), 0);
    ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &doc), 0);
    devs = kedge_json_get(kedge_jdoc_root(doc), "devices");
    ck_assert_msg(devs && devs->n == 1, "devices: %s", m.payload);
    ck_assert_str_eq(kedge_json_get(devs->child, "id")->str, id);
    kedge_jdoc_free(doc);
    kh_msg_cleanup(&m);

    /* a typed twin (the result carries type int), reported under the generation's resource,
     * answered by the device controller: the outbox empties */
    ck_assert_int_eq(kh_client_sub(d, getres, 1), 1);
    (void)snprintf(tpl, sizeof(tpl), "$hw/events/device/%s/twin/update/result", id);
    ck_assert_int_eq(kh_client_sub(d, tpl, 1), 1);
    twin_update_value(d, id, 25);
    edge_updated_tpl(tpl, sizeof(tpl), id, 25, 1);
    expect_cloud_msg(cloud_wait(&since, &edge_updated), tpl);
    wait_db_int(bridgectl_db_path(bridge), OUTBOX_COUNT, 0);
    expect_delta(watch, delta, "22", "25");
    obj = NULL;
    deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    while (!(obj = sim_object("default/device/thermo-e2e")) ||
           !strstr(obj, "\"reported\":{\"metadata\":{\"timestamp\":")) {
        kedge_free(obj);
        ck_assert_msg(kt_now_ms() < deadline, "the cloud's Device never got the reported value");
        kt_pause_ms(PAUSE_MS);
    }
    ck_assert_ptr_nonnull(strstr(obj, "\"type\":\"int\"},\"value\":\"25\"}"));
    kedge_free(obj);
    /* the cloud sends the Device again after that status patch: acked, and no delta */
    wait_no_pending();

    /* a desired value patched in the cloud: the expected value and a delta; had the re-sent
     * Device published one, it would come first on this subscription */
    msg_id = send_owned(e2e_device("update", next_rv(), "30"));
    expect_delta(watch, delta, "30", "25");
    wait_acked(msg_id);
    kedge_free(msg_id);
    /* the same Device again (cloudcore does this after each status patch): nothing; the next
     * delta is the next change's */
    msg_id = send_owned(e2e_device("update", next_rv(), "30"));
    wait_acked(msg_id);
    kedge_free(msg_id);
    msg_id = send_owned(e2e_device("update", next_rv(), "31"));
    expect_delta(watch, delta, "31", "25");
    wait_acked(msg_id);
    kedge_free(msg_id);
    /* an older version resent after a newer one went through (cloudcore re-queues what stays
     * unacked): acked, not applied; the next delta is the next change's */
    msg_id = send_owned(e2e_device("update", 150, "99"));
    wait_acked(msg_id);
    kedge_free(msg_id);
    /* a Device changed while the node was away comes with the reconnect from the edge
     * controller's object sync (seen with cloudcore v1.15.4): the same path */
    msg_id = send_owned(e2e_device_from("edgecontroller", "update", next_rv(), "32"));
    expect_delta(watch, delta, "32", "25");
    wait_acked(msg_id);
    kedge_free(msg_id);
    /* the device's own reported value is untouched by all of it */
    ck_assert_int_eq(kh_client_pub(d, get, "{\"event_id\":\"g1\"}", -1, 1, false), 0);
    expect_mqtt_json(d, getres,
                     "{\"event_id\":\"g1\",\"timestamp\":\"<ts>\",\"twin\":{\"temperature\":{"
                     "\"expected\":{\"value\":\"32\",\"metadata\":{\"timestamp\":\"<ts>\"}},"
                     "\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":\"<ts>\"}},"
                     "\"optional\":true,\"metadata\":{\"type\":\"int\"}}}}");

    /* deleted in the cloud (its membership, then the Device): removed and announced once; the
     * next announcement is a later device's */
    (void)snprintf(tpl, sizeof(tpl),
                   "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":"
                   "\"update\",\"resource\":\"node/" NODE "/membership\"},\"content\":{"
                   "\"event_id\":\"ev-rm\",\"timestamp\":1,\"added_devices\":[],"
                   "\"removed_devices\":[{\"id\":\"%s\",\"name\":\"thermo-e2e\"}]}}",
                   id);
    kedge_free(cloud_send(tpl));
    msg_id = send_owned(e2e_device("delete", next_rv(), "32"));
    wait_acked(msg_id);
    kedge_free(msg_id);
    ck_assert_int_eq(kh_client_wait(watch, UPDATED_TOPIC, WAIT_MS, &m), 0);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"removed_devices\":[{"));
    kh_msg_cleanup(&m);
    kedge_free(cloud_send(MEMBERSHIP_ADD_THERMO));
    ck_assert_int_eq(kh_client_wait(watch, UPDATED_TOPIC, WAIT_MS, &m), 0);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"added_devices\":[{\"id\":\"" DEV "\""));
    kh_msg_cleanup(&m);
    kh_client_free(d);
    kh_client_free(watch);
}
END_TEST

/* ---- 2c. a backlog reaches the cloud in order ------------------------------------------- */

/* cloudcore applies the reports it reads concurrently (cloudsim: workers.c, a burst lands
 * newest first). Twenty reports made while the link is refused wait in the bridge as one
 * (coalesced, the last values); after the reconnect the cloud's Device shows the last one,
 * because the bridge sends a device's next report only after the cloud answered the one
 * before. */
START_TEST(test_backlog_in_order)
{
    struct chain_opts co = {.cloud_version = "1.15"};
    char tpl[1024], *msg_id, *obj;
    struct kh_client *d;
    int64_t sessions;
    int v;

    chain_up(&co);
    (void)snprintf(tpl, sizeof(tpl),
                   "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":"
                   "\"update\",\"resource\":\"node/" NODE "/membership\"},\"content\":{"
                   "\"event_id\":\"ev-b\",\"timestamp\":1,\"added_devices\":[{\"id\":"
                   "\"thermo-e2e\",\"name\":\"thermo-e2e\"}],\"removed_devices\":[]}}");
    kedge_free(cloud_send(tpl));
    kedge_free(cloud_send(E2E_MODEL));
    msg_id = send_owned(e2e_device("insert", next_rv(), "22"));
    wait_acked(msg_id);
    kedge_free(msg_id);
    d = device("thermo-dev");
    ck_assert_int_eq(kh_client_sub(d, "$hw/events/device/thermo-e2e/twin/update/result", 1), 1);

    sessions = state_int("sessions_total");
    wait_plugin_cloud(true);
    chain_sim_post(sim, "/link/refuse?seconds=600");
    wait_disconnected();
    wait_plugin_cloud(false);
    for (v = 1; v <= 20; v++)
        twin_update_value(d, "thermo-e2e", v);
    /* twin reports are state: the twenty wait as one, holding the last value (issue 13) */
    wait_db_int(bridgectl_db_path(bridge),
                "SELECT count(*) FROM kedge_outbox WHERE msg LIKE '%/twin/edge_updated%' AND "
                "msg LIKE '%\"value\":\"20\"%'",
                1);
    ck_assert_int_eq(db_int(bridgectl_db_path(bridge), "SELECT count(*) FROM kedge_outbox WHERE "
                                                       "msg LIKE '%/twin/edge_updated%'"),
                     1);
    chain_sim_post(sim, "/link/refuse?seconds=0");
    wait_session(sessions + 1, LINK_MS);
    wait_db_int(bridgectl_db_path(bridge), OUTBOX_COUNT, 0);
    obj = sim_object("default/device/thermo-e2e");
    ck_assert_ptr_nonnull(obj);
    ck_assert_msg(strstr(obj, "\"type\":\"int\"},\"value\":\"20\"}"), "the cloud's Device: %s",
                  obj);
    kedge_free(obj);
    kh_client_free(d);
}
END_TEST

/* ---- 3. eventbus: cloud publish, uploads, cloud subscribe ---------------------------------- */

START_TEST(test_eventbus)
{
    static const struct route_sel upload_y = {"bus", "user", "upload", "$hw/events/upload/y"};
    static const struct route_sel upload_ab = {"bus", "user", "upload", "a/b"};
    struct kh_client *sub, *d;
    long long since = -1;
    char tpl[1024];

    chain_up(NULL);
    /* the cloud publishes: the subscriber gets the content string, exactly */
    sub = device("sub");
    ck_assert_int_eq(kh_client_sub(sub, "cloud/x", 1), 1);
    cloud_publish("cloud/x", "hello \"cloud\" <&> \xc3\xa9");
    expect_next(sub, "cloud/x", "hello \"cloud\" <&> \xc3\xa9");

    /* a device upload, QoS 0, goes up with the payload as a string (§8.6) */
    d = device("dev");
    ck_assert_int_eq(kh_client_pub(d, "$hw/events/upload/y", "{\"t\":1} <x>", -1, 0, false), 0);
    upload_tpl(tpl, sizeof(tpl), "$hw/events/upload/y", "\"{\\\"t\\\":1} \\u003cx\\u003e\"");
    expect_cloud_msg(cloud_wait(&since, &upload_y), tpl);

    /* an ordinary topic is not uploaded until the cloud subscribes to it (§1.3) */
    ck_assert_int_eq(kh_client_pub(d, "a/b", "before", -1, 1, false), 0);
    kedge_free(cloud_send("{\"route\":{\"source\":\"router_eventbus\",\"group\":\"user\","
                          "\"operation\":\"subscribe\",\"resource\":\"a/b\"},\"content\":\"\"}"));
    ck_assert_int_eq(kh_broker_wait_log(broker, "eventbus: cloud subscribe topic=a/b", WAIT_MS), 0);
    ck_assert_int_eq(kh_client_pub(d, "a/b", "after", -1, 1, false), 0);
    upload_tpl(tpl, sizeof(tpl), "a/b", "\"after\"");
    /* the outbox is in order: had "before" gone up, it would be the first a/b upload */
    since = -1;
    expect_cloud_msg(cloud_wait(&since, &upload_ab), tpl);
    ck_assert_int_eq(cloud_count(-1, &upload_ab), 1);
    kh_client_free(d);
    kh_client_free(sub);
}
END_TEST

/* ---- 4. a frozen link is noticed and redialled --------------------------------------------- */

START_TEST(test_frozen_link)
{
    static const struct route_sel edge_updated = {"twin", "resource", "update",
                                                  "device/" DEV "/twin/edge_updated"};
    struct kh_client *sub, *d;
    long long since = -1;
    int64_t sessions;
    char tpl[1024];
    long mark;

    chain_up(NULL);
    add_thermo();
    d = device("thermo-dev");
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/twin/update/result", 1), 1);
    sessions = state_int("sessions_total");
    mark = bridgectl_log_mark(bridge);
    /* cloudsim stops reading and writing; TCP stays open, nothing is closed */
    chain_sim_post(sim, "/link/freeze?node=" NODE);
    ck_assert(state_bool("frozen"));
    /* a twin change written into the frozen link is never read there: it stays in the
     * bridge's outbox until the device controller confirms it (§2.9) */
    twin_update_value(d, DEV, 27);
    /* no pong to the bridge's pings: it hangs up after dead_link_s and dials again */
    wait_session(sessions + 1, LINK_MS);
    /* the cloud sees the session a moment before the bridge logs it */
    wait_bridge_log(mark, "edgehub: connected to wss://");
    ck_assert_int_eq(bridgectl_count_log(bridge, mark, "edgehub: link to the cloud closed"), 1);
    ck_assert_int_eq(bridgectl_count_log(bridge, mark, "edgehub: connected to wss://"), 1);
    /* thaw: the new session is the node's; nothing is frozen and the link carries traffic */
    chain_sim_post(sim, "/link/thaw?node=" NODE);
    ck_assert(!state_bool("frozen"));
    ck_assert(state_bool("connected"));
    ck_assert_int_eq(state_int("sessions_total"), sessions + 1);
    edge_updated_tpl(tpl, sizeof(tpl), DEV, 27, 1);
    expect_cloud_msg(cloud_wait(&since, &edge_updated), tpl);
    wait_db_int(bridgectl_db_path(bridge), OUTBOX_COUNT, 0);
    sub = device("sub");
    ck_assert_int_eq(kh_client_sub(sub, "cloud/x", 1), 1);
    cloud_publish("cloud/x", "after the freeze");
    expect_next(sub, "cloud/x", "after the freeze");
    kh_client_free(sub);
    kh_client_free(d);
}
END_TEST

/* ---- 5. keepalive and the handshake headers ----------------------------------------------- */

START_TEST(test_keepalive)
{
    static const struct kv fast[] = {{"keepalive_s", "1"}, {NULL, NULL}};
    static const struct route_sel keepalive = {NULL, NULL, "keepalive", NULL};
    static const char tpl[] =
        "{\"header\":{\"msg_id\":\"<generated>\",\"timestamp\":\"<ts>\"},\"route\":{\"source\":"
        "\"websocket\",\"group\":\"resource\",\"operation\":\"keepalive\",\"resource\":\"node\"},"
        "\"content\":\"ping\"}";
    /* and a cloud whose sessions take 500 ms to exist after the upgrade (cloudcore makes them
     * on another goroutine): no keepalive may come before */
    struct chain_opts co = {fast, 0, 3, NULL, "500"};
    char *ids[7];
    long long since = -1;
    int i, j;

    /* cloudsim closes a session after 3 s without a keepalive */
    chain_up(&co);
    /* §4.2: node_id, project_id, and ConnectionUse: msg, without which the cloud reads nothing */
    state_str_is("node_id", NODE);
    state_str_is("project_id", PROJECT);
    state_str_is("connection_use", "msg");
    /* seven keepalives, each a proper §4.6 message with its own msg_id: 6 s pass, twice the
     * cloud's patience, and the one session lives on because the cloud sees them */
    for (i = 0; i < 7; i++) {
        struct kedge_jdoc *doc = NULL;
        char *json = cloud_wait(&since, &keepalive);
        expect_json(json, strlen(json), tpl);
        ck_assert_int_eq(kedge_json_parse(json, strlen(json), &doc), 0);
        ids[i] =
            strdup(kedge_json_get(kedge_json_get(kedge_jdoc_root(doc), "header"), "msg_id")->str);
        for (j = 0; j < i; j++)
            ck_assert_str_ne(ids[i], ids[j]);
        kedge_jdoc_free(doc);
        free(json);
    }
    ck_assert_int_gt(state_int("last_keepalive_ms"), 0);
    ck_assert(state_bool("connected"));
    ck_assert_int_eq(state_int("sessions_total"), 1);
    ck_assert_int_eq(state_int("session_not_found"), 0);
    for (i = 0; i < 7; i++)
        free(ids[i]);
}
END_TEST

/* ---- 6. bad input from the cloud does not break the link ----------------------------------- */

START_TEST(test_bad_cloud_input)
{
    static const struct kv small[] = {{"max_frame_bytes", "4096"}, {NULL, NULL}};
    struct chain_opts co = {small, 3600, 0, NULL, NULL}; /* no resends muddle the log */
    static const struct {
        const char *what, *json, *log;
    } cases[] = {
        {"unknown group",
         "{\"route\":{\"source\":\"taskmanager\",\"group\":\"bogus\",\"operation\":\"update\","
         "\"resource\":\"task/x\"},\"content\":\"z\"}",
         "edgehub: dropped cloud message group=bogus operation=update resource=task/x"},
        /* cloudsim strips one node/{id}/ prefix (TrimMessage): the bridge sees node/other-node */
        {"another node's message",
         "{\"route\":{\"source\":\"router_eventbus\",\"group\":\"user\",\"operation\":"
         "\"publish\",\"resource\":\"node/" NODE "/node/other-node/t\"},\"content\":\"leak\"}",
         "edgehub: dropped a message for another node resource=node/other-node/t"},
        {"user group from a source other than router_eventbus (§4.7)",
         "{\"route\":{\"source\":\"router_servicebus\",\"group\":\"user\",\"operation\":"
         "\"publish\",\"resource\":\"cloud/x\"},\"content\":\"not for the bus\"}",
         "edgehub: dropped cloud message group=user operation=publish resource=cloud/x"},
        /* the bridge hands cloud messages to the plugin on $ke/down/{msg_id} */
        {"a msg_id that is no topic level",
         "{\"header\":{\"msg_id\":\"a/b+#\"},\"route\":{\"source\":\"router_eventbus\","
         "\"group\":\"user\",\"operation\":\"publish\",\"resource\":\"cloud/x\"},"
         "\"content\":\"bad id\"}",
         "edgehub: dropped cloud message group=user operation=publish resource=cloud/x"},
        {"a membership the plugin refuses",
         "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":"
         "\"update\",\"resource\":\"membership\"},\"content\":{\"event_id\":\"\",\"timestamp\":1,"
         "\"added_devices\":[{\"id\":\"x/+\",\"name\":\"x\"}],\"removed_devices\":null}}",
         "relay: plugin refused cloud message"},
    };
    struct kh_client *sub;
    struct kedge_buf big = KEDGE_BUF_INIT;
    int64_t sessions;
    char after[32];
    long mark;
    size_t i;

    chain_up(&co);
    sessions = state_int("sessions_total");
    sub = device("sub");
    ck_assert_int_eq(kh_client_sub(sub, "#", 1), 1);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mark = bridgectl_log_mark(bridge);
        kedge_free(cloud_send(cases[i].json));
        ck_assert_msg(bridgectl_wait_log(bridge, mark, cases[i].log, WAIT_MS) == 0,
                      "%s: no log line '%s'", cases[i].what, cases[i].log);
        /* the link still carries traffic, and the bad message reached no subscriber: the
         * next message the subscriber sees is this one */
        (void)snprintf(after, sizeof(after), "after %zu", i);
        cloud_publish("cloud/ok", after);
        expect_next(sub, "cloud/ok", after);
    }
    /* a message over max_frame_bytes is dropped whole */
    mark = bridgectl_log_mark(bridge);
    ck_assert_int_eq(kedge_buf_puts(&big, "{\"route\":{\"source\":\"router_eventbus\",\"group\":"
                                          "\"user\",\"operation\":\"publish\",\"resource\":"
                                          "\"cloud/x\"},\"content\":\""),
                     0);
    for (i = 0; i < 10000; i++)
        ck_assert_int_eq(kedge_buf_putc(&big, 'x'), 0);
    ck_assert_int_eq(kedge_buf_puts(&big, "\"}"), 0);
    kedge_free(cloud_send(big.data));
    kedge_buf_cleanup(&big);
    wait_bridge_log(mark, "edgehub: dropped a cloud message over max_frame_bytes=4096");
    cloud_publish("cloud/ok", "after the big one");
    expect_next(sub, "cloud/ok", "after the big one");
    /* all on the one session */
    ck_assert_int_eq(state_int("sessions_total"), sessions);
    ck_assert(state_bool("connected"));
    kh_client_free(sub);
}
END_TEST

/* ---- 7. reconnect with backoff while the cloud refuses ------------------------------------- */

START_TEST(test_reconnect_backoff)
{
    struct kh_client *sub;
    int64_t sessions;
    char *log, *p;
    long mark;
    long delay, max_delay = 0;
    int tries, delays = 0;

    chain_up(NULL);
    sessions = state_int("sessions_total");
    mark = bridgectl_log_mark(bridge);
    chain_sim_post(sim, "/link/refuse?seconds=3");
    wait_session(sessions + 1, LINK_MS);
    /* it kept trying while refused... */
    tries = bridgectl_count_log(bridge, mark, "edgehub: cannot connect to wss://");
    ck_assert_msg(tries >= 2, "%d attempts while the cloud refused", tries);
    /* ...with a capped, jittered, growing delay (100 ms doubling to 1 s, +-25 %), not in a
     * busy loop: 3 s of refusal take well under 15 attempts */
    ck_assert_msg(tries <= 15, "%d attempts in 3 s: no backoff", tries);
    log = bridgectl_log_read(bridge, mark);
    ck_assert_ptr_nonnull(log);
    for (p = strstr(log, "edgehub: reconnecting in "); p;
         p = strstr(p + 1, "edgehub: reconnecting in ")) {
        delay = strtol(p + strlen("edgehub: reconnecting in "), NULL, 10);
        ck_assert_msg(delay >= 75 && delay <= 1250, "reconnect delay %ld ms", delay);
        if (delay > max_delay)
            max_delay = delay;
        delays++;
    }
    free(log);
    ck_assert_int_ge(delays, tries);
    /* the third delay is 400 ms +-25 %: at least 300 ms once the first two attempts failed */
    ck_assert_msg(max_delay >= 300, "the delay never grew (max %ld ms)", max_delay);
    /* and the new session works */
    sub = device("sub");
    ck_assert_int_eq(kh_client_sub(sub, "cloud/x", 1), 1);
    cloud_publish("cloud/x", "after the refusal");
    expect_next(sub, "cloud/x", "after the refusal");
    kh_client_free(sub);
}
END_TEST

/* ---- 8. a twin update while the cloud refuses is delivered when it is back ---------------- */

START_TEST(test_twin_while_refused)
{
    static const struct route_sel edge_updated = {"twin", "resource", "update",
                                                  "device/" DEV "/twin/edge_updated"};
    struct kh_client *d;
    long long since = -1;
    int64_t sessions;
    char tpl[1024];

    chain_up(NULL);
    add_thermo();
    d = device("thermo-dev");
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/twin/update/result", 1), 1);
    sessions = state_int("sessions_total");
    wait_plugin_cloud(true);
    chain_sim_post(sim, "/link/refuse?seconds=600");
    wait_disconnected();
    wait_plugin_cloud(false);
    /* the device is answered locally; the change waits in the bridge's outbox */
    twin_update_value(d, DEV, 30);
    wait_plugin_outbox(0);
    wait_db_int(bridgectl_db_path(bridge),
                "SELECT count(*) FROM kedge_outbox WHERE msg LIKE '%/twin/edge_updated%'", 1);
    ck_assert_int_eq(cloud_count(-1, &edge_updated), 0);
    chain_sim_post(sim, "/link/refuse?seconds=0");
    wait_session(sessions + 1, LINK_MS);
    wait_plugin_cloud(true);
    edge_updated_tpl(tpl, sizeof(tpl), DEV, 30, 1);
    expect_cloud_msg(cloud_wait(&since, &edge_updated), tpl);
    wait_db_int(bridgectl_db_path(bridge), OUTBOX_COUNT, 0);
    ck_assert_int_eq(cloud_count(-1, &edge_updated), 1);
    kh_client_free(d);
}
END_TEST

/* ---- 9. the cloud's ack means "stored" (§5.2) ---------------------------------------------- */

#define CONFIGMAP_UPDATE                                                                           \
    "{\"header\":{\"resourceversion\":\"42\"},\"route\":{\"source\":\"edgecontroller\","           \
    "\"group\":\"resource\",\"operation\":\"update\",\"resource\":\"default/configmap/app-cfg\"}," \
    "\"content\":{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"            \
    "\"app-cfg\",\"namespace\":\"default\",\"resourceVersion\":\"42\"},\"data\":{\"k\":\"v\"}}}"

#define CONFIGMAP_ROWS                                                                             \
    "SELECT count(*) FROM meta WHERE key = 'default/configmap/app-cfg' AND type = 'configmap' "    \
    "AND value LIKE '%\"k\":\"v\"%'"

START_TEST(test_ack_after_store)
{
    static const struct route_sel ack = {"edgecontroller", "resource", "response",
                                         "default/configmap/app-cfg"};
    struct chain_opts co = {NULL, 1, 0, NULL, NULL}; /* cloudsim resends every second */
    sqlite3 *lock = NULL;
    char tpl[512], tx[128];
    long long since = -1;
    char *id;
    long mark;

    chain_up(&co);
    /* hold the meta database's write lock: the bridge cannot store the ConfigMap */
    ck_assert_int_eq(
        sqlite3_open_v2(bridgectl_meta_db_path(bridge), &lock, SQLITE_OPEN_READWRITE, NULL),
        SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    mark = bridgectl_log_mark(bridge);
    id = cloud_send(CONFIGMAP_UPDATE);
    (void)snprintf(tx, sizeof(tx), "msg_id=%s", id);
    /* not stored, so not acked: the cloud sends it again (same msg_id) */
    wait_bridge_log(mark, "edgehub: dropped cloud message group=resource operation=update "
                          "resource=default/configmap/app-cfg");
    {
        int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
        while (sim_log_count(tx, "(resend)") < 1) {
            ck_assert_msg(kt_now_ms() < deadline, "cloudsim never resent %s", id);
            kt_pause_ms(PAUSE_MS);
        }
    }
    ck_assert(!acked(id));
    ck_assert_int_eq(state_int("pending_acks"), 1);
    ck_assert_int_eq(db_int(bridgectl_meta_db_path(bridge), CONFIGMAP_ROWS), 0);
    ck_assert_int_eq(sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(lock);

    /* a resend after the lock is gone is stored, then acked as MetaManager does */
    wait_acked(id);
    ck_assert_int_eq(db_int(bridgectl_meta_db_path(bridge), CONFIGMAP_ROWS), 1);
    (void)snprintf(tpl, sizeof(tpl),
                   "{\"header\":{\"msg_id\":\"<generated>\",\"parent_msg_id\":\"%s\","
                   "\"timestamp\":\"<ts>\"},\"route\":{\"source\":\"edgecontroller\",\"group\":"
                   "\"resource\",\"operation\":\"response\",\"resource\":"
                   "\"default/configmap/app-cfg\"},\"content\":\"OK\"}",
                   id);
    expect_cloud_msg(cloud_wait(&since, &ack), tpl);
    ck_assert_int_eq(state_int("pending_acks"), 0);
    kedge_free(id);
}
END_TEST

/* ---- 10. SIGTERM loses nothing ------------------------------------------------------------- */

START_TEST(test_sigterm_keeps_outbox)
{
    struct kh_client *d;
    long long since = -1;
    char topic[64], payload[16], tpl[512];
    int i;

    chain_up(NULL);
    d = device("dev");
    /* stored by the bridge, not yet sent: the cloud refuses */
    chain_sim_post(sim, "/link/refuse?seconds=600");
    wait_disconnected();
    for (i = 1; i <= 5; i++) {
        (void)snprintf(topic, sizeof(topic), "$hw/events/upload/n%d", i);
        (void)snprintf(payload, sizeof(payload), "v%d", i);
        ck_assert_int_eq(kh_client_pub(d, topic, payload, -1, 1, false), 0);
    }
    wait_plugin_outbox(0);
    wait_db_int(bridgectl_db_path(bridge), OUTBOX_COUNT, 5);
    ck_assert_int_eq(bridgectl_stop(bridge), 0);
    ck_assert_int_eq(db_int(bridgectl_db_path(bridge), OUTBOX_COUNT), 5);
    /* still in the plugin's outbox: the bridge is gone */
    for (i = 6; i <= 8; i++) {
        (void)snprintf(topic, sizeof(topic), "$hw/events/upload/n%d", i);
        (void)snprintf(payload, sizeof(payload), "v%d", i);
        ck_assert_int_eq(kh_client_pub(d, topic, payload, -1, 1, false), 0);
    }
    wait_plugin_outbox(3);

    /* the cloud is back, the bridge restarts: everything arrives, once and in order */
    chain_sim_post(sim, "/link/refuse?seconds=0");
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    for (i = 1; i <= 8; i++) {
        struct route_sel up = {"bus", "user", "upload", topic};
        char content[24];
        (void)snprintf(topic, sizeof(topic), "$hw/events/upload/n%d", i);
        (void)snprintf(content, sizeof(content), "\"v%d\"", i);
        upload_tpl(tpl, sizeof(tpl), topic, content);
        expect_cloud_msg(cloud_wait(&since, &up), tpl);
        ck_assert_int_eq(cloud_count(-1, &up), 1);
    }
    wait_plugin_outbox(0);
    wait_db_int(bridgectl_db_path(bridge), OUTBOX_COUNT, 0);
    kh_client_free(d);

    /* SIGTERM on a live link: a websocket close frame, 1000 normal closure (not a bare TCP
     * close, which cloudcore logs as 1006 abnormal closure) */
    ck_assert(state_bool("connected"));
    ck_assert_int_eq(state_int("peer_close_code"), 0);
    ck_assert_int_eq(bridgectl_stop(bridge), 0);
    wait_disconnected();
    ck_assert_int_eq(state_int("peer_close_code"), 1000);
}
END_TEST

/* ---- bridgectl itself: environment, config errors, a bridge with nothing to talk to ------ */

START_TEST(test_bridgectl)
{
    static const char *const env[] = {"KEDGE_TEST_MARK=bridgectl", NULL};
    static const char *const conf[] = {"broker_port 1", "cloud_port 1",
                                       "tls_ca_file /nonexistent/ca.crt", NULL};
    struct bridgectl_opts bo = {0};
    static char environ_text[1 << 16];
    char path[64], *p;
    bool found_mark = false, found_path = false;
    size_t len;
    FILE *f;

    bo.conf = conf;
    bo.env = env;
    bo.password = BRIDGE_PASS;
    bo.ready_log = "bridge: node=" NODE;
    ck_assert_int_eq(bridgectl_new(&bo, &bridge), 0);
    bset("node_name", NODE);
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    /* the extra variable reaches the bridge, and the rest of the environment with it */
    (void)snprintf(path, sizeof(path), "/proc/%d/environ", (int)bridgectl_pid(bridge));
    f = fopen(path, "r"); /* a /proc file has no size: read it to its end */
    ck_assert_ptr_nonnull(f);
    len = fread(environ_text, 1, sizeof(environ_text) - 1, f);
    ck_assert(feof(f));
    (void)fclose(f);
    environ_text[len] = '\0';
    for (p = environ_text; p < environ_text + len; p += strlen(p) + 1) {
        found_mark = found_mark || !strcmp(p, "KEDGE_TEST_MARK=bridgectl");
        found_path = found_path || !strncmp(p, "PATH=", 5);
    }
    ck_assert(found_mark);
    ck_assert(found_path);
    /* no broker, no cloud, no TLS files: it says so and keeps trying */
    wait_bridge_log(0, "edgehub: TLS files missing");
    ck_assert(bridgectl_running(bridge));
    ck_assert_int_eq(bridgectl_stop(bridge), 0);
    /* a bad key stops it at start-up, naming the file and line */
    ck_assert_int_eq(bridgectl_set(bridge, "no_such_key", "1"), 0);
    ck_assert_int_eq(bridgectl_start(bridge), -ECHILD);
    ck_assert_int_eq(bridgectl_exit_status(bridge), 1);
    wait_bridge_log(0, "kedge-bridge.conf:");
    wait_bridge_log(0, ": unknown key 'no_such_key'");
}
END_TEST

static Suite *bridge_suite(void)
{
    Suite *s = suite_create("bridge");
    TCase *tc = tcase_create("bridge");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_twin_to_cloud);
    tcase_add_test(tc, test_eventbus);
    tcase_add_test(tc, test_frozen_link);
    tcase_add_test(tc, test_keepalive);
    tcase_add_test(tc, test_bad_cloud_input);
    tcase_add_test(tc, test_reconnect_backoff);
    tcase_add_test(tc, test_twin_while_refused);
    tcase_add_test(tc, test_ack_after_store);
    tcase_add_test(tc, test_sigterm_keeps_outbox);
    tcase_add_test(tc, test_bridgectl);
    suite_add_tcase(s, tc);
    /* devices from the cloud (CK_RUN_CASE=devices runs only these) */
    tc = tcase_create("devices");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_membership_and_device_types);
    tcase_add_loop_test(tc, test_device_generations, 0, 2);
    tcase_add_test(tc, test_backlog_in_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(bridge_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
