/* The whole edge node against a cloud: mosquitto with kedge_plugin.so (harness.h), the real
 * kedge-bridge (bridgectl.h) and kedge-cloudsim, a cloud peer that behaves like CloudHub
 * (tests/cloudsim/simctl.h). All three are real processes on 127.0.0.1; each test starts its
 * own set, and teardown asserts that each of them exits 0 on SIGTERM (in the sanitizer tree,
 * and under KEDGE_VALGRIND=1, that also means no leaks).
 *
 * What goes over the websocket is read back from cloudsim's control API: /received (what the
 * edge sent), /acked (cloud messages the edge acknowledged), /state (the session). Payloads are
 * compared structurally with jsoncmp(): "<ts>" matches any number, "<generated>" any non-empty
 * string, everything else is exact (docs/kubeedge-wire.md §2.8, §4.6, §5.1, §5.2).
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

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kedge/util.h"
#include "test_bridge.h"

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
void wait_no_pending(void)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (state_int("pending_acks") != 0) {
        ck_assert_msg(kt_now_ms() < deadline, "the cloud's messages were not all acked");
        kt_pause_ms(PAUSE_MS);
    }
}

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

    /* a device upload, QoS 0, goes up with the payload as a string (docs/kubeedge-wire.md §8.6) */
    d = device("dev");
    ck_assert_int_eq(kh_client_pub(d, "$hw/events/upload/y", "{\"t\":1} <x>", -1, 0, false), 0);
    upload_tpl(tpl, sizeof(tpl), "$hw/events/upload/y", "\"{\\\"t\\\":1} \\u003cx\\u003e\"");
    expect_cloud_msg(cloud_wait(&since, &upload_y), tpl);

    /* an ordinary topic is not uploaded until the cloud subscribes to it (docs/kubeedge-wire.md
     * §1.3) */
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
     * bridge's outbox until the device controller confirms it (docs/kubeedge-wire.md §2.9) */
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
    /* docs/kubeedge-wire.md §4.2: node_id, project_id, and ConnectionUse: msg, without which the
     * cloud reads nothing */
    state_str_is("node_id", NODE);
    state_str_is("project_id", PROJECT);
    state_str_is("connection_use", "msg");
    /* seven keepalives, each a proper docs/kubeedge-wire.md §4.6 message with its own msg_id: 6 s
     * pass, twice the cloud's patience, and the one session lives on because the cloud sees them */
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
        {"user group from a source other than router_eventbus (docs/kubeedge-wire.md §4.7)",
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

/* ---- 9. the cloud's ack means "stored" (docs/kubeedge-wire.md §5.2)
 * ---------------------------------------------- */

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

/* A bridge with no broker, no cloud and no TLS files (it keeps trying), started with env. */
static void start_lonely_bridge(const char *const *env)
{
    static const char *const conf[] = {"broker_port 1", "cloud_port 1",
                                       "tls_ca_file /nonexistent/ca.crt", NULL};
    struct bridgectl_opts bo = {0};

    bo.conf = conf;
    bo.env = env;
    bo.password = BRIDGE_PASS;
    bo.ready_log = "bridge: node=" NODE;
    ck_assert_int_eq(bridgectl_new(&bo, &bridge), 0);
    bset("node_name", NODE);
    ck_assert_int_eq(bridgectl_start(bridge), 0);
}

START_TEST(test_bridgectl)
{
    static const char *const env[] = {"KEDGE_TEST_MARK=bridgectl", NULL};
    static char environ_text[1 << 16];
    char path[64], *p;
    bool found_mark = false, found_path = false;
    size_t len;
    FILE *f;

    start_lonely_bridge(env);
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

/* Datagrams to the notify socket until one contains want (or the deadline): 0 or -1. */
static int wait_notify(int fd, const char *want, int timeout_ms)
{
    uint64_t end = kedge_now_ms() + (uint64_t)kh_scale_ms(timeout_ms);
    char buf[512];

    while (kedge_now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&p, 1, (int)(end - kedge_now_ms())) <= 0)
            continue;
        n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
            return -1;
        buf[n] = '\0';
        if (strstr(buf, want))
            return 0;
    }
    return -1;
}

/* Under systemd (conf/kedge-bridge.service, Type=notify): READY=1 once the loop runs, the
 * watchdog fed from the loop at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM. The test plays
 * systemd's part with its own notify socket. */
START_TEST(test_systemd_notify)
{
    char dir[] = "/tmp/kedge-notify-XXXXXX", sock[96], env_sock[128];
    const char *env[] = {env_sock, "WATCHDOG_USEC=200000", NULL};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, watchdogs;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    (void)snprintf(sock, sizeof(sock), "%s/notify", dir);
    (void)snprintf(env_sock, sizeof(env_sock), "NOTIFY_SOCKET=%s", sock);
    (void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    start_lonely_bridge(env);
    ck_assert_int_eq(wait_notify(fd, "READY=1", 10000), 0);
    wait_bridge_log(0, "bridge: systemd watchdog every 100 ms");
    for (watchdogs = 0; watchdogs < 3; watchdogs++)
        ck_assert_int_eq(wait_notify(fd, "WATCHDOG=1", 5000), 0);
    ck_assert_int_eq(bridgectl_stop(bridge), 0);
    ck_assert_int_eq(wait_notify(fd, "STOPPING=1", 5000), 0);
    (void)close(fd);
    (void)unlink(sock);
    (void)rmdir(dir);
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
    tcase_add_test(tc, test_systemd_notify);
    suite_add_tcase(s, tc);
    /* devices from the cloud (CK_RUN_CASE=devices runs only these) */
    tc = tcase_create("devices");
    tcase_add_checked_fixture(tc, NULL, teardown);
    bridge_add_devices_tests(tc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kh_run_suite(bridge_suite(), CK_NORMAL);
}
