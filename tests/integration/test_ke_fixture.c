/* test_ke_fixture.c: the broker and the stand-in bridge client test_ke drives the $ke/ contract
 * with, JSON templates and devices. */
#define _GNU_SOURCE

#include "test_ke.h"

struct kh_broker *broker;
char *own_dir; /* a data_dir this test made (auth_mode defer), removed in teardown */

/* ---- broker ----------------------------------------------------------------------------- */

void start_broker(const struct kh_opt *extra_opts, const char *extra_conf)
{
    struct kh_opt opts[8] = {{"bridge_password", BRIDGE_PASS}};
    struct kh_broker_opts o = {0};
    int n = 1;

    for (; extra_opts && extra_opts->key; extra_opts++)
        opts[n++] = *extra_opts;
    opts[n] = (struct kh_opt){NULL, NULL};
    o.plugin_opts = opts;
    o.extra_conf = extra_conf;
    o.data_dir = own_dir;
    broker = kh_broker_start(&o);
    ck_assert_msg(broker != NULL, "broker with kedge_plugin.so did not start");
}

void teardown(void)
{
    int st = 0;

    if (broker)
        st = kh_broker_pid(broker) ? kh_broker_stop(broker) : kh_broker_exit_status(broker);
    kh_broker_free(broker);
    broker = NULL;
    if (own_dir) {
        (void)kh_rmtree(own_dir);
        free(own_dir);
        own_dir = NULL;
    }
    ck_assert_int_eq(st, 0);
}

int port(void)
{
    return kh_broker_port(broker);
}

/* ---- JSON ------------------------------------------------------------------------------- */

/* Assert that payload matches the template (see the file comment). */
void expect_json(const char *payload, int len, const char *tpl)
{
    jsoncmp_expect(payload, (size_t)len, tpl);
}

void expect_msg_json(struct kh_client *c, const char *topic, const char *tpl)
{
    jsoncmp_expect_msg(c, topic, tpl, WAIT_MS);
}

/* ---- the bridge ------------------------------------------------------------------------- */

struct kh_client *bridge_connect(const char *client_id)
{
    struct kh_client *b = kh_client_new(port(), client_id, BRIDGE_USER, BRIDGE_PASS, 5);

    ck_assert_msg(b != NULL, "the bridge identity could not connect");
    /* a real bridge needs no subscription (entries come to its client id), but may have one */
    ck_assert_int_eq(kh_client_sub(b, "$ke/#", 1), 1);
    return b;
}

void bridge_hello(struct kh_client *b, int64_t outbox_depth)
{
    char tpl[160];

    ck_assert_int_eq(
        kh_client_pub(b, "$ke/hello", "{\"node_name\":\"" NODE "\",\"version\":1}", -1, 1, false),
        0);
    snprintf(tpl, sizeof(tpl),
             "{\"accepted\":true,\"node_name\":\"" NODE "\",\"outbox_depth\":%" PRId64
             ",\"last_seq\":\"<ts>\"}",
             outbox_depth);
    expect_msg_json(b, "$ke/hello/result", tpl);
}

/* Hello, accepted; returns the outbox depth the plugin reports. */
int64_t bridge_hello_depth(struct kh_client *b)
{
    struct kedge_jdoc *doc = NULL;
    int64_t depth = -1;
    struct kh_msg m;

    ck_assert_int_eq(
        kh_client_pub(b, "$ke/hello", "{\"node_name\":\"" NODE "\",\"version\":1}", -1, 1, false),
        0);
    ck_assert_int_eq(kh_client_wait(b, "$ke/hello/result", WAIT_MS, &m), 0);
    expect_json(m.payload, m.len,
                "{\"accepted\":true,\"node_name\":\"" NODE "\",\"outbox_depth\":\"<ts>\","
                "\"last_seq\":\"<ts>\"}");
    ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &doc), 0);
    ck_assert_int_eq(kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), "outbox_depth"), &depth),
                     0);
    kedge_jdoc_free(doc);
    kh_msg_cleanup(&m);
    return depth;
}

struct kh_client *bridge_up(int64_t outbox_depth)
{
    struct kh_client *b = bridge_connect(BRIDGE_ID);

    bridge_hello(b, outbox_depth);
    return b;
}

/* The next outbox entry: its seq, the message in *m (caller cleans up). */
int64_t bridge_next(struct kh_client *b, struct kh_msg *m)
{
    char *end;
    long long seq;

    ck_assert_msg(kh_client_wait(b, "$ke/outbox/+", WAIT_MS, m) == 0, "no outbox entry");
    ck_assert_int_eq(m->qos, 0); /* offers are QoS 0: the outbox table is the durability */
    seq = strtoll(m->topic + strlen("$ke/outbox/"), &end, 10);
    ck_assert_msg(*end == '\0' && seq > 0, "bad outbox topic %s", m->topic);
    return seq;
}

void bridge_ack(struct kh_client *b, int64_t seq)
{
    char topic[64];

    snprintf(topic, sizeof(topic), "$ke/ack/%" PRId64, seq);
    ck_assert_int_eq(kh_client_pub(b, topic, "", 0, 1, false), 0);
}

/* The next entry must match tpl; it is acked. Returns its seq. */
int64_t bridge_expect(struct kh_client *b, const char *tpl)
{
    struct kh_msg m;
    int64_t seq = bridge_next(b, &m);

    expect_json(m.payload, m.len, tpl);
    kh_msg_cleanup(&m);
    bridge_ack(b, seq);
    return seq;
}

static unsigned next_ref;

/* Send msg down on a fresh $ke/down/{ref} and compare the result with tpl. */
void down(struct kh_client *b, const char *msg, const char *tpl)
{
    char topic[64], rtopic[80];

    snprintf(topic, sizeof(topic), "$ke/down/ref-%u", ++next_ref);
    snprintf(rtopic, sizeof(rtopic), "%s/result", topic);
    ck_assert_int_eq(kh_client_pub(b, topic, msg, -1, 1, false), 0);
    expect_msg_json(b, rtopic, tpl);
}

/* $ke/ctl/{ref} query; the answer in *m. */
void ctl(struct kh_client *b, const char *body, struct kh_msg *m)
{
    char topic[64], rtopic[80];

    snprintf(topic, sizeof(topic), "$ke/ctl/q-%u", ++next_ref);
    snprintf(rtopic, sizeof(rtopic), "%s/result", topic);
    ck_assert_int_eq(kh_client_pub(b, topic, body, -1, 1, false), 0);
    ck_assert_msg(kh_client_wait(b, rtopic, WAIT_MS, m) == 0, "no answer to %s", body);
}

int64_t ctl_status_int(struct kh_client *b, const char *key)
{
    struct kedge_jdoc *doc = NULL;
    struct kh_msg m;
    int64_t v = -1;

    ctl(b, "{\"op\":\"status\"}", &m);
    ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &doc), 0);
    ck_assert_int_eq(kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), key), &v), 0);
    kedge_jdoc_free(doc);
    kh_msg_cleanup(&m);
    return v;
}

bool ctl_status_bool(struct kh_client *b, const char *key)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *v;
    struct kh_msg m;
    bool r;

    ctl(b, "{\"op\":\"status\"}", &m);
    ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &doc), 0);
    v = kedge_json_get(kedge_jdoc_root(doc), key);
    ck_assert_msg(v && v->type == KEDGE_JBOOL, "status has no bool %s: %s", key, m.payload);
    r = v->boolean;
    kedge_jdoc_free(doc);
    kh_msg_cleanup(&m);
    return r;
}

#define MEMBERSHIP_ADD_THERMO                                                                      \
    "{\"header\":{\"msg_id\":\"mem-1\",\"timestamp\":1700000000000},"                              \
    "\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":\"update\","      \
    "\"resource\":\"membership\"},"                                                                \
    "\"content\":{\"event_id\":\"ev-add\",\"timestamp\":1700000000000,\"added_devices\":["         \
    "{\"id\":\"" DEV "\",\"name\":\"thermo\",\"description\":\"hall\","                            \
    "\"twin\":{\"temperature\":{\"metadata\":{\"type\":\"int\"}}}}],\"removed_devices\":null}}"

void add_thermo(struct kh_client *b)
{
    down(b, MEMBERSHIP_ADD_THERMO, OK);
}

/* ---- devices ---------------------------------------------------------------------------- */

struct kh_client *device(const char *id, const char *user, int proto)
{
    struct kh_client *d = kh_client_new(port(), id, user, "any-password", proto);

    ck_assert_msg(d != NULL, "device %s could not connect", id);
    return d;
}

/* Publish a twin update for DEV and compare its result with tpl (the device must have
 * subscribed to DEV_TOPIC "/twin/update/result"). */
static void twin_update(struct kh_client *d, const char *payload, const char *tpl)
{
    ck_assert_int_eq(kh_client_pub(d, DEV_TOPIC "/twin/update", payload, -1, 1, false), 0);
    expect_msg_json(d, DEV_TOPIC "/twin/update/result", tpl);
}

void twin_update_value(struct kh_client *d, int value)
{
    char payload[128], tpl[256];

    snprintf(payload, sizeof(payload),
             "{\"event_id\":\"u%d\",\"twin\":{\"temperature\":{\"actual\":{\"value\":\"%d\"}}}}",
             value, value);
    snprintf(tpl, sizeof(tpl),
             "{\"event_id\":\"u%d\",\"timestamp\":\"<ts>\",\"twin\":{\"temperature\":{\"actual\":"
             "{\"value\":\"%d\",\"metadata\":{\"timestamp\":\"<ts>\"}},\"optional\":true,"
             "\"metadata\":{\"type\":\"int\"}}}}",
             value, value);
    twin_update(d, payload, tpl);
}

/* The edge_updated entry a successful actual update of temperature produces (docs/kubeedge-wire.md
 * §2.8). */
void edge_updated_tpl(char *tpl, size_t n, int value, int edge_version)
{
    snprintf(tpl, n,
             "{\"header\":{\"msg_id\":\"<generated>\",\"timestamp\":\"<ts>\"},"
             "\"route\":{\"source\":\"twin\",\"group\":\"resource\",\"operation\":\"update\","
             "\"resource\":\"device/" DEV "/twin/edge_updated\"},"
             "\"content\":{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"twin\":{"
             "\"temperature\":{\"actual\":{\"value\":\"%d\",\"metadata\":{\"timestamp\":\"<ts>\"}},"
             "\"optional\":true,\"metadata\":{\"type\":\"int\"},"
             "\"actual_version\":{\"cloud\":0,\"edge\":%d}}}}}",
             value, edge_version);
}

void upload_tpl(char *tpl, size_t n, const char *topic, const char *content_json)
{
    snprintf(tpl, n,
             "{\"header\":{\"msg_id\":\"<generated>\",\"timestamp\":\"<ts>\"},"
             "\"route\":{\"source\":\"bus\",\"group\":\"user\",\"operation\":\"upload\","
             "\"resource\":\"%s\"},\"content\":%s}",
             topic, content_json);
}
