/* test_bridge_fixture.c: the chain test_bridge runs (cloudsim, broker + plugin, bridge), reading
 * cloudsim's control API, the plugin and the databases, and the cloud messages its cases share. */
#define _GNU_SOURCE

#include "test_bridge.h"

#define BRIDGE_USER "kedge-bridge"

struct simctl *sim;
struct kh_broker *broker;
struct bridgectl *bridge;

/* ---- the chain: cloudsim, broker + plugin, bridge ----------------------------------------- */

void bset(const char *key, const char *value)
{
    ck_assert_int_eq(bridgectl_set(bridge, key, value), 0);
}

void chain_up(const struct chain_opts *co)
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

void teardown(void)
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

int64_t state_int(const char *key)
{
    struct kedge_jdoc *doc;
    int64_t v = -1;

    ck_assert_msg(kedge_json_int64(state_get(&doc, key), &v) == 0, "/state has no number %s", key);
    kedge_jdoc_free(doc);
    return v;
}

bool state_bool(const char *key)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *v = state_get(&doc, key);
    bool b;

    ck_assert_msg(v && v->type == KEDGE_JBOOL, "/state has no bool %s", key);
    b = v->boolean;
    kedge_jdoc_free(doc);
    return b;
}

void state_str_is(const char *key, const char *want)
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
void wait_session(int64_t min_sessions, int timeout_ms)
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

void wait_disconnected(void)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (state_bool("connected")) {
        ck_assert_msg(kt_now_ms() < deadline, "the cloud still has a session");
        kt_pause_ms(PAUSE_MS);
    }
}

/* Queue a message for the node; returns the msg_id cloudsim gave it (kedge_free). */
char *cloud_send(const char *json)
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
char *cloud_wait(long long *since, const struct route_sel *sel)
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

int cloud_count(long long since, const struct route_sel *sel)
{
    int n;

    free(cloud_find(&since, sel, &n));
    return n;
}

bool acked(const char *msg_id)
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

void wait_acked(const char *msg_id)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (!acked(msg_id)) {
        ck_assert_msg(kt_now_ms() < deadline, "the edge never acked %s", msg_id);
        kt_pause_ms(PAUSE_MS);
    }
}

/* Lines of cloudsim's log holding both needles. */
int sim_log_count(const char *a, const char *b)
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

void expect_json(const char *payload, size_t len, const char *tpl)
{
    jsoncmp_expect(payload, len, tpl);
}

void expect_cloud_msg(char *json, const char *tpl)
{
    expect_json(json, strlen(json), tpl);
    free(json);
}

/* The edge_updated message a successful actual update of temperature produces
 * (docs/kubeedge-wire.md §2.8). */
void edge_updated_tpl(char *tpl, size_t n, const char *dev, int value, int edge_version)
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

void upload_tpl(char *tpl, size_t n, const char *topic, const char *content_json)
{
    (void)snprintf(tpl, n,
                   "{\"header\":{\"msg_id\":\"<generated>\",\"timestamp\":\"<ts>\"},"
                   "\"route\":{\"source\":\"bus\",\"group\":\"user\",\"operation\":\"upload\","
                   "\"resource\":\"%s\"},\"content\":%s}",
                   topic, content_json);
}

/* ---- MQTT, the plugin, the databases ------------------------------------------------------- */

struct kh_client *device(const char *id)
{
    struct kh_client *d = kh_client_new(kh_broker_port(broker), id, "sensor-7", "x", 4);

    ck_assert_msg(d != NULL, "device %s could not connect", id);
    return d;
}

void expect_mqtt_json(struct kh_client *c, const char *topic, const char *tpl)
{
    struct kh_msg m;

    ck_assert_msg(kh_client_wait(c, topic, WAIT_MS, &m) == 0, "nothing on %s", topic);
    expect_json(m.payload, (size_t)m.len, tpl);
    kh_msg_cleanup(&m);
}

/* The next message of any topic must be exactly topic/payload. */
void expect_next(struct kh_client *c, const char *topic, const char *payload)
{
    struct kh_msg m;

    ck_assert_msg(kh_client_wait(c, "#", WAIT_MS, &m) == 0, "nothing arrived (wanted %s)", topic);
    ck_assert_str_eq(m.topic, topic);
    ck_assert_str_eq(m.payload, payload);
    kh_msg_cleanup(&m);
}

void twin_update_value(struct kh_client *d, const char *dev, int value)
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
 * edgehub's node/connection message, docs/kubeedge-wire.md §4.6). */
void wait_plugin_cloud(bool connected)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (plugin_status_int("cloud_connected") != connected) {
        ck_assert_msg(kt_now_ms() < deadline, "the plugin never saw cloud_connected=%d", connected);
        kt_pause_ms(PAUSE_MS);
    }
}

void wait_plugin_outbox(int64_t depth)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (plugin_status_int("outbox_depth") != depth) {
        ck_assert_msg(kt_now_ms() < deadline, "the plugin's outbox never held %" PRId64, depth);
        kt_pause_ms(PAUSE_MS);
    }
}

void wait_db_int(const char *path, const char *sql, int64_t want)
{
    db_wait_int(path, sql, want, WAIT_MS);
}

void wait_bridge_log(long from, const char *needle)
{
    ck_assert_msg(bridgectl_wait_log(bridge, from, needle, WAIT_MS) == 0,
                  "the bridge never logged '%s'", needle);
}

/* ---- cloud messages ----------------------------------------------------------------------- */

/* devicecontroller's membership update (docs/kubeedge-wire.md §2.10), with the twin names and
 * types. */

/* router_eventbus publish (docs/kubeedge-wire.md §5.2, §8.6): content is the MQTT payload. */
void cloud_publish(const char *topic, const char *payload)
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
void add_thermo(void)
{
    struct kh_client *watch = device("watch");

    ck_assert_int_eq(kh_client_sub(watch, UPDATED_TOPIC, 1), 1);
    kedge_free(cloud_send(MEMBERSHIP_ADD_THERMO));
    expect_mqtt_json(watch, UPDATED_TOPIC, ANNOUNCED_THERMO);
    kh_client_free(watch);
}
