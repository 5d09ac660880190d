/* The broker's side of the cloud: the $ke/ contract (include/kedge/ke.h) against a real
 * mosquitto with kedge_plugin.so.
 *
 * A test client plays kedge-bridge (username kedge-bridge and the password from the plugin
 * options): it says hello, takes outbox entries from $ke/outbox/{seq}, acks them on
 * $ke/ack/{seq}, and sends cloud messages down on $ke/down/{ref}. It subscribes to $ke/# as the
 * real bridge may, so it also receives its own publishes: every wait names the exact topic it
 * wants. Devices are plain MQTT clients with arbitrary usernames.
 *
 * Covered: hello (accepted, refused on a node name mismatch), membership add and the twin
 * traffic it enables, state and upload entries, the cloud's eventbus operations, cloud twin
 * sync with versions, durability across kill -9, re-offer after a bridge reconnect, who may
 * speak on $ke/ in auth_mode open and defer (spec facts 26-27), and a full outbox.
 * Payloads are compared structurally with jsoncmp(): "<ts>" matches any number,
 * "<generated>" / "<time>" any non-empty string; everything else is exact.
 */
#define _GNU_SOURCE

#include "test_ke.h"

/* ---- 1. hello ----------------------------------------------------------------------------- */

START_TEST(test_hello)
{
    struct kh_client *b, *other;

    start_broker(NULL, NULL);
    b = bridge_up(0);
    /* a bridge configured for another node is refused, and both names are in the reason */
    other = bridge_connect("other-bridge");
    ck_assert_int_eq(kh_client_pub(other, "$ke/hello",
                                   "{\"node_name\":\"edge-elsewhere\",\"version\":1}", -1, 1,
                                   false),
                     0);
    expect_msg_json(other, "$ke/hello/result",
                    "{\"accepted\":false,\"node_name\":\"" NODE "\",\"reason\":\"node name "
                    "mismatch: plugin_opt_node_name is " NODE
                    ", the bridge says edge-elsewhere\"}");
    ck_assert_int_eq(
        kh_broker_wait_log(broker, "ke: refused hello from client=other-bridge", WAIT_MS), 0);
    /* a hello without a node name is refused too */
    ck_assert_int_eq(kh_client_pub(other, "$ke/hello", "{\"version\":1}", -1, 1, false), 0);
    expect_msg_json(other, "$ke/hello/result",
                    "{\"accepted\":false,\"node_name\":\"" NODE "\",\"reason\":\"node name "
                    "mismatch: plugin_opt_node_name is " NODE ", the bridge says (none)\"}");
    /* the refused client did not take the bridge's place */
    ck_assert(ctl_status_bool(b, "bridge_connected"));
    kh_client_free(b);
    /* the DISCONNECT of b and the query of other travel on different sockets: ask until the
     * broker has seen b go (bounded by the same deadline as any wait) */
    {
        struct timespec t0, now;
        bool up = true;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do {
            up = ctl_status_bool(other, "bridge_connected");
            clock_gettime(CLOCK_MONOTONIC, &now);
        } while (up && (now.tv_sec - t0.tv_sec) * 1000 < kh_scale_ms(WAIT_MS));
        ck_assert_msg(!up, "the bridge's disconnect was not noticed");
    }
    b = bridge_up(0);
    kh_client_free(other);
    kh_client_free(b);
}
END_TEST

/* ---- 2. membership, twin update -> outbox, ack, restart ----------------------------------- */

START_TEST(test_membership_twin_outbox)
{
    struct kh_client *b, *watch, *d;
    char tpl[1024];
    int64_t seq;

    start_broker(NULL, NULL);
    watch = device("watch", NULL, 4);
    ck_assert_int_eq(kh_client_sub(watch, UPDATED_TOPIC, 1), 1);
    b = bridge_up(0);
    add_thermo(b);
    expect_msg_json(watch, UPDATED_TOPIC,
                    "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"added_devices\":["
                    "{\"id\":\"" DEV "\",\"name\":\"thermo\",\"description\":\"hall\","
                    "\"twin\":{\"temperature\":{\"metadata\":{\"type\":\"int\"}}}}],"
                    "\"removed_devices\":null}");
    /* the same device again is not announced again (docs/kubeedge-wire.md §2.10) and still answers
     * ok */
    add_thermo(b);
    ck_assert_int_eq(kh_client_expect_none(watch, UPDATED_TOPIC, QUIET_MS), 0);
    /* adding a device puts nothing in the outbox */
    ck_assert_int_eq(kh_client_expect_none(b, "$ke/outbox/+", QUIET_MS), 0);

    d = device("thermo-dev", "sensor-7", 4);
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/twin/update/result", 1), 1);
    twin_update_value(d, 25);
    edge_updated_tpl(tpl, sizeof(tpl), 25, 1);
    seq = bridge_expect(b, tpl);
    ck_assert_int_ge(seq, 1);
    ck_assert_int_eq(kh_client_expect_none(b, "$ke/outbox/+", QUIET_MS), 0);
    kh_client_free(d);
    kh_client_free(watch);

    /* acked (bridge_expect did, at QoS 1, so the plugin has it in its batch): a restart
     * (clean stop commits) must not offer it again */
    kh_client_free(b);
    ck_assert_int_eq(kh_broker_restart(broker), 0);
    b = bridge_up(0);
    ck_assert_int_eq(kh_client_expect_none(b, "$ke/outbox/+", QUIET_MS), 0);
    ck_assert_int_eq(ctl_status_int(b, "outbox_depth"), 0);
    /* the device survived the restart */
    ck_assert_int_eq(ctl_status_int(b, "devices"), 1);
    /* and seq keeps increasing across restarts */
    d = device("thermo-dev", "sensor-7", 4);
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/twin/update/result", 1), 1);
    twin_update_value(d, 26);
    edge_updated_tpl(tpl, sizeof(tpl), 26, 2);
    ck_assert_int_gt(bridge_expect(b, tpl), seq);
    kh_client_free(d);
    kh_client_free(b);
}
END_TEST

/* ---- 3. state, uploads, the cloud's eventbus operations ----------------------------------- */

START_TEST(test_state_upload_eventbus)
{
    struct kh_client *b, *d, *sub;
    struct kedge_msg km;
    struct kh_msg m;
    char tpl[1024];
    int64_t seq, last;

    start_broker(NULL, NULL);
    b = bridge_up(0);
    add_thermo(b);
    d = device("thermo-dev", "sensor-7", 5);

    /* state update: the state result JSON, as a string (docs/kubeedge-wire.md §2.7) */
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/state/update/result", 1), 1);
    ck_assert_int_eq(kh_client_pub(d, DEV_TOPIC "/state/update",
                                   "{\"event_id\":\"s1\",\"state\":\"online\"}", -1, 1, false),
                     0);
    expect_msg_json(d, DEV_TOPIC "/state/update/result",
                    "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"device\":{"
                    "\"name\":\"thermo\",\"state\":\"online\",\"lastOnlineTime\":\"<time>\"}}");
    last = bridge_next(b, &m);
    expect_json(m.payload, m.len,
                "{\"header\":{\"msg_id\":\"<generated>\",\"timestamp\":\"<ts>\"},"
                "\"route\":{\"source\":\"twin\",\"group\":\"resource\",\"operation\":\"update\","
                "\"resource\":\"device/" DEV "/state/update\"},\"content\":\"<generated>\"}");
    ck_assert_int_eq(kedge_msg_decode(m.payload, (size_t)m.len, &km), 0);
    ck_assert(km.content_is_string);
    expect_json(km.content_str, (int)km.content_str_len,
                "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"device\":{"
                "\"name\":\"thermo\",\"state\":\"online\",\"lastOnlineTime\":\"<time>\"}}");
    kedge_msg_cleanup(&km);
    kh_msg_cleanup(&m);
    bridge_ack(b, last);

    /* uploads: $hw/events/upload/# at QoS 0 too, and +/user/# */
    ck_assert_int_eq(kh_client_pub(d, "$hw/events/upload/x", "{\"v\":1}", -1, 0, false), 0);
    upload_tpl(tpl, sizeof(tpl), "$hw/events/upload/x", "\"{\\\"v\\\":1}\"");
    seq = bridge_expect(b, tpl);
    ck_assert_int_gt(seq, last);
    last = seq;
    ck_assert_int_eq(kh_client_pub(d, "a/user/b", "plain <text> & more", -1, 1, false), 0);
    /* Go escapes < > & (docs/kubeedge-wire.md §0) */
    upload_tpl(tpl, sizeof(tpl), "a/user/b", "\"plain \\u003ctext\\u003e \\u0026 more\"");
    seq = bridge_expect(b, tpl);
    ck_assert_int_gt(seq, last);
    last = seq;
    /* an ordinary topic is not uploaded ... */
    ck_assert_int_eq(kh_client_pub(d, "my/topic", "m0", -1, 1, false), 0);
    ck_assert_int_eq(kh_client_expect_none(b, "$ke/outbox/+", QUIET_MS), 0);

    /* ... until the cloud subscribes to it (docs/kubeedge-wire.md §1.3) */
    down(b,
         "{\"header\":{\"msg_id\":\"sub-1\",\"timestamp\":1},\"route\":{\"source\":"
         "\"router_eventbus\",\"group\":\"user\",\"operation\":\"subscribe\",\"resource\":"
         "\"my/topic\"},\"content\":\"\"}",
         OK);
    ck_assert_int_eq(kh_client_pub(d, "my/topic", "m1", -1, 0, false), 0);
    upload_tpl(tpl, sizeof(tpl), "my/topic", "\"m1\"");
    last = bridge_expect(b, tpl);
    down(b,
         "{\"header\":{\"msg_id\":\"unsub-1\",\"timestamp\":1},\"route\":{\"source\":"
         "\"router_eventbus\",\"group\":\"user\",\"operation\":\"unsubscribe\",\"resource\":"
         "\"my/topic\"},\"content\":\"\"}",
         OK);
    /* after unsubscribe: my/topic is not uploaded, so the marker is the next entry */
    ck_assert_int_eq(kh_client_pub(d, "my/topic", "m2", -1, 1, false), 0);
    ck_assert_int_eq(kh_client_pub(d, "a/user/marker", "mark", -1, 1, false), 0);
    upload_tpl(tpl, sizeof(tpl), "a/user/marker", "\"mark\"");
    ck_assert_int_gt(bridge_expect(b, tpl), last);

    /* the cloud publishes: string content verbatim, JSON content as its text */
    sub = device("t-sub", NULL, 4);
    ck_assert_int_eq(kh_client_sub(sub, "t/x", 1), 1);
    down(b,
         "{\"header\":{\"msg_id\":\"pub-1\",\"timestamp\":1},\"route\":{\"source\":"
         "\"router_eventbus\",\"group\":\"user\",\"operation\":\"publish\",\"resource\":\"t/x\"},"
         "\"content\":\"hello \\\"cloud\\\" <&>\"}",
         OK);
    ck_assert_int_eq(kh_client_wait(sub, "t/x", WAIT_MS, &m), 0);
    ck_assert_str_eq(m.payload, "hello \"cloud\" <&>");
    ck_assert_int_eq(m.len, (int)strlen("hello \"cloud\" <&>"));
    kh_msg_cleanup(&m);
    down(b,
         "{\"header\":{\"msg_id\":\"pub-2\",\"timestamp\":1},\"route\":{\"source\":"
         "\"router_eventbus\",\"group\":\"user\",\"operation\":\"publish\",\"resource\":\"t/x\"},"
         "\"content\":{\"a\":1}}",
         OK);
    ck_assert_int_eq(kh_client_wait(sub, "t/x", WAIT_MS, &m), 0);
    ck_assert_str_eq(m.payload, "{\"a\":1}");
    kh_msg_cleanup(&m);
    /* a publish to a wildcard is refused with a reason */
    down(b,
         "{\"header\":{\"msg_id\":\"pub-3\",\"timestamp\":1},\"route\":{\"source\":"
         "\"router_eventbus\",\"group\":\"user\",\"operation\":\"publish\",\"resource\":\"t/#\"},"
         "\"content\":\"x\"}",
         "{\"ok\":false,\"code\":400,\"reason\":\"not a valid topic to publish to\"}");
    /* the cloud's publish reached the subscriber only, not the outbox */
    ck_assert_int_eq(kh_client_expect_none(b, "$ke/outbox/+", QUIET_MS), 0);
    kh_client_free(sub);
    kh_client_free(d);
    kh_client_free(b);
}
END_TEST

/* ---- 4. cloud twin sync with versions (docs/kubeedge-wire.md §2.5)
 * ---------------------------------------------- */

#define CLOUD_UPDATED(ref, value, cloud, edge)                                                     \
    "{\"header\":{\"msg_id\":\"" ref "\",\"timestamp\":1},\"route\":{\"source\":"                  \
    "\"devicecontroller\",\"group\":\"twin\",\"operation\":\"update\",\"resource\":\"device/" DEV  \
    "/twin/cloud_updated\"},\"content\":{\"event_id\":\"" ref "\",\"timestamp\":1,\"twin\":{"      \
    "\"temperature\":{\"expected\":{\"value\":\"" value                                            \
    "\"},\"expected_version\":{\"cloud\":" #cloud ",\"edge\":" #edge "}}}}}"

START_TEST(test_cloud_updated)
{
    struct kh_client *b, *d;
    struct kh_msg m;

    start_broker(NULL, NULL);
    b = bridge_up(0);
    add_thermo(b);
    d = device("thermo-dev", "sensor-7", 4);
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/twin/update/+", 1), 1);
    /* membership add published a document for the new twin: not what this test is about */
    (void)kh_client_expect_none(d, "#", QUIET_MS);
    (void)kh_client_drain(d);

    /* applied: document (event id of the cloud's message) and delta, no result, no echo */
    down(b, CLOUD_UPDATED("c1", "30", 1, 0), OK);
    expect_msg_json(d, DEV_TOPIC "/twin/update/document",
                    "{\"event_id\":\"c1\",\"timestamp\":\"<ts>\",\"twin\":{\"temperature\":{"
                    "\"last\":{\"optional\":true,\"metadata\":{\"type\":\"int\"}},"
                    "\"current\":{\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":"
                    "\"<ts>\"}},\"optional\":true,\"metadata\":{\"type\":\"int\"}}}}}");
    expect_msg_json(
        d, DEV_TOPIC "/twin/update/delta",
        "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"twin\":{\"temperature\":{"
        "\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":\"<ts>\"}},"
        "\"optional\":true,\"metadata\":{\"type\":\"int\"}}},"
        "\"delta\":{\"temperature\":\"30\"}}");
    ck_assert_int_eq(kh_client_expect_none(d, DEV_TOPIC "/twin/update/result", QUIET_MS), 0);
    ck_assert_int_eq(kh_client_expect_none(b, "$ke/outbox/+", 0), 0);

    /* stale (the edge holds cloud version 1): refused, nothing changes, and the edge's twin goes
     * back to the cloud as edge_updated */
    down(b, CLOUD_UPDATED("c2", "20", 0, 0), OK);
    bridge_expect(b, "{\"header\":{\"msg_id\":\"<generated>\",\"timestamp\":\"<ts>\"},"
                     "\"route\":{\"source\":\"twin\",\"group\":\"resource\",\"operation\":"
                     "\"update\",\"resource\":\"device/" DEV "/twin/edge_updated\"},"
                     "\"content\":{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"twin\":{"
                     "\"temperature\":{\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":"
                     "\"<ts>\"}},\"optional\":true,\"metadata\":{\"type\":\"int\"},"
                     "\"expected_version\":{\"cloud\":1,\"edge\":0}}}}}");
    ck_assert_int_eq(kh_client_expect_none(d, DEV_TOPIC "/twin/update/document", QUIET_MS), 0);
    ck_assert_int_eq(kh_client_expect_none(d, DEV_TOPIC "/twin/update/result", 0), 0);
    ctl(b, "{\"op\":\"device_get\",\"id\":\"" DEV "\"}", &m);
    expect_json(m.payload, m.len,
                "{\"event_id\":\"\",\"timestamp\":\"<ts>\",\"twin\":{\"temperature\":{"
                "\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":\"<ts>\"}},"
                "\"optional\":true,\"metadata\":{\"type\":\"int\"}}}}");
    kh_msg_cleanup(&m);

    /* a sync for a device this node does not have */
    down(b,
         "{\"header\":{\"msg_id\":\"c3\",\"timestamp\":1},\"route\":{\"source\":"
         "\"devicecontroller\","
         "\"group\":\"twin\",\"operation\":\"update\",\"resource\":\"device/default/nope/twin/"
         "cloud_updated\"},\"content\":{\"event_id\":\"c3\",\"timestamp\":1,\"twin\":{}}}",
         "{\"ok\":false,\"code\":400,\"reason\":\"device is not known on this node\"}");
    kh_client_free(d);
    kh_client_free(b);
}
END_TEST

/* ---- 4b. a DMI mapper's report through the bridge: the MQTT twin update's path ----------- */

#define EDGE_UPDATE(ref, dev, value)                                                               \
    "{\"header\":{\"msg_id\":\"" ref "\",\"timestamp\":1},\"route\":{\"source\":\"dmi\","          \
    "\"group\":\"twin\",\"operation\":\"update\",\"resource\":\"device/" dev                       \
    "/twin/update\"},\"content\":{\"event_id\":\"\",\"timestamp\":1,\"twin\":{"                    \
    "\"temperature\":{\"actual\":{\"value\":\"" value "\"}}}}}"

START_TEST(test_edge_update_down)
{
    struct kh_client *b, *d;
    struct kh_msg m;

    start_broker(NULL, NULL);
    b = bridge_up(0);
    add_thermo(b);
    d = device("thermo-dev", "sensor-7", 4);
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/twin/update/+", 1), 1);
    (void)kh_client_expect_none(d, "#", QUIET_MS);
    (void)kh_client_drain(d);

    /* applied: the device sees the result and document an MQTT update gets, the cloud the
     * edge_updated, and the bridge's answer comes once it is committed */
    down(b, EDGE_UPDATE("e1", DEV, "25"), OK);
    ck_assert_int_eq(kh_client_wait(d, DEV_TOPIC "/twin/update/result", WAIT_MS, &m), 0);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"actual\":{\"value\":\"25\""));
    ck_assert_ptr_null(strstr(m.payload, "\"code\""));
    kh_msg_cleanup(&m);
    ck_assert_int_eq(kh_client_wait(d, DEV_TOPIC "/twin/update/document", WAIT_MS, &m), 0);
    kh_msg_cleanup(&m);
    bridge_expect(b, "{\"header\":{\"msg_id\":\"<generated>\",\"timestamp\":\"<ts>\"},"
                     "\"route\":{\"source\":\"twin\",\"group\":\"resource\",\"operation\":"
                     "\"update\",\"resource\":\"device/" DEV "/twin/edge_updated\"},"
                     "\"content\":{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"twin\":{"
                     "\"temperature\":{\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":"
                     "\"<ts>\"}},\"optional\":true,\"metadata\":{\"type\":\"int\"},"
                     "\"actual_version\":{\"cloud\":0,\"edge\":1}}}}}");
    ctl(b, "{\"op\":\"device_get\",\"id\":\"" DEV "\"}", &m);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"value\":\"25\""));
    kh_msg_cleanup(&m);

    /* refused as the device would be: the code says why */
    down(b, EDGE_UPDATE("e2", DEV, "warm"),
         "{\"ok\":false,\"code\":400,\"reason\":\"the value is not int or integer\"}");
    ck_assert_int_eq(kh_client_wait(d, DEV_TOPIC "/twin/update/result", WAIT_MS, &m), 0);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"code\":400"));
    kh_msg_cleanup(&m);
    down(b, EDGE_UPDATE("e3", "default/ghost", "1"),
         "{\"ok\":false,\"code\":404,\"reason\":\"update rejected due to the device is not "
         "existed\"}");
    ck_assert_int_eq(kh_client_expect_none(b, "$ke/outbox/+", QUIET_MS), 0);
    kh_client_free(d);
    kh_client_free(b);
}
END_TEST

/* ---- 7. uploads bounded, twin never refused ----------------------------------------------- */

static void upload_value(struct kh_client *c, const char *value, int want_rc)
{
    ck_assert_int_eq(kh_client_pub(c, "$hw/events/upload/full", value, -1, 1, false), want_rc);
}

START_TEST(test_outbox_full)
{
    static const struct kh_opt small[] = {
        {"outbox_max", "3"}, {"max_upload_bytes", "2048"}, {NULL, NULL}};
    struct kh_client *b, *d, *up5, *up3;
    char tpl[1024], value[16], big[4096];
    int i;

    start_broker(small, NULL);
    b = bridge_connect(BRIDGE_ID); /* no hello: the outbox only fills */
    add_thermo(b);
    d = device("thermo-dev", "sensor-7", 4);
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/twin/update/result", 1), 1);
    up5 = device("uploader", "sensor-7", 5);
    up3 = device("uploader-311", "sensor-7", 4);
    /* over plugin_opt_max_upload_bytes: refused (v5: 0x87), counted, logged with the client */
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    upload_value(up5, big, 0x87);
    ck_assert_int_eq(kh_broker_wait_log(broker,
                                        "outbox: upload refused client=uploader "
                                        "topic=$hw/events/upload/full: 4095 bytes, over "
                                        "plugin_opt_max_upload_bytes=2048",
                                        WAIT_MS),
                     0);
    ck_assert_int_eq(ctl_status_int(b, "uploads_oversize"), 1);
    for (i = 1; i <= 3; i++) {
        snprintf(value, sizeof(value), "u%d", i);
        upload_value(up5, value, 0);
    }
    /* the uploads' row bound is reached: a v5 QoS 1 publisher is told (0x87), a v3.1.1 one
     * gets its PUBACK (it has no way to be refused) and the upload is dropped; both counted,
     * logged with the client and the topic */
    upload_value(up5, "x", 0x87);
    upload_value(up3, "y", 0);
    ck_assert_int_eq(kh_broker_wait_log(broker,
                                        "outbox: upload refused client=uploader "
                                        "topic=$hw/events/upload/full",
                                        WAIT_MS),
                     0);
    ck_assert_int_eq(ctl_status_int(b, "uploads_refused"), 2);
    /* twin updates are never refused: six fold into the one entry waiting for the device */
    for (i = 1; i <= 6; i++)
        twin_update_value(d, i);
    ck_assert_int_eq(ctl_status_int(b, "outbox_depth"), 4);
    ck_assert_int_eq(ctl_status_int(b, "state_pending"), 1);
    ck_assert_int_eq(ctl_status_int(b, "upload_rows"), 3);
    ck_assert_int_eq(ctl_status_int(b, "coalesced"), 5);

    /* the bridge drains it: the uploads in order, then the latest twin; nothing refused */
    bridge_hello(b, 4);
    for (i = 1; i <= 3; i++) {
        snprintf(value, sizeof(value), "\"u%d\"", i);
        upload_tpl(tpl, sizeof(tpl), "$hw/events/upload/full", value);
        bridge_expect(b, tpl);
    }
    edge_updated_tpl(tpl, sizeof(tpl), 6, 6);
    bridge_expect(b, tpl);
    ck_assert_int_eq(kh_broker_wait_log(broker, "outbox: uploads are taken again", WAIT_MS), 0);
    ck_assert_int_eq(ctl_status_int(b, "outbox_depth"), 0);

    /* and uploads flow again */
    upload_value(up5, "z", 0);
    upload_tpl(tpl, sizeof(tpl), "$hw/events/upload/full", "\"z\"");
    bridge_expect(b, tpl);
    kh_client_free(up3);
    kh_client_free(up5);
    kh_client_free(d);
    kh_client_free(b);
}
END_TEST

/* ---- 8. the operator's view of the outbox ------------------------------------------------- */

START_TEST(test_outbox_ctl)
{
    struct kh_client *b, *d, *up;
    struct kh_msg m;
    char body[96], tpl[1024];
    int64_t seq;

    start_broker(NULL, NULL);
    b = bridge_connect(BRIDGE_ID); /* no hello: entries wait */
    add_thermo(b);
    d = device("thermo-dev", "sensor-7", 4);
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/twin/update/result", 1), 1);
    up = device("uploader", "sensor-7", 5);
    upload_value(up, "first", 0);
    twin_update_value(d, 1);
    upload_value(up, "second", 0);
    ctl(b, "{\"op\":\"outbox_list\",\"limit\":10}", &m);
    expect_json(m.payload, m.len,
                "{\"entries\":[{\"seq\":1,\"resource\":\"$hw/events/upload/full\","
                "\"subject\":false,\"bytes\":\"<ts>\",\"age_ms\":\"<ts>\"},"
                "{\"seq\":2,\"resource\":\"device/" DEV "/twin/edge_updated\",\"subject\":true,"
                "\"bytes\":\"<ts>\",\"age_ms\":\"<ts>\"},"
                "{\"seq\":3,\"resource\":\"$hw/events/upload/full\",\"subject\":false,"
                "\"bytes\":\"<ts>\",\"age_ms\":\"<ts>\"}],"
                "\"depth\":3,\"bytes\":\"<ts>\",\"state_pending\":1}");
    kh_msg_cleanup(&m);
    ctl(b, "{\"op\":\"outbox_show\",\"seq\":3}", &m);
    upload_tpl(tpl, sizeof(tpl), "$hw/events/upload/full", "\"second\"");
    snprintf(body, sizeof(body), "{\"seq\":3,\"subject\":false,\"msg\":");
    {
        char want[1200];
        snprintf(want, sizeof(want), "%s%s}", body, tpl);
        expect_json(m.payload, m.len, want);
    }
    kh_msg_cleanup(&m);
    ctl(b, "{\"op\":\"outbox_show\",\"seq\":9}", &m);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"code\":404"));
    kh_msg_cleanup(&m);
    /* the operator drops the first upload: it never reaches the bridge */
    ctl(b, "{\"op\":\"outbox_drop\",\"seq\":1}", &m);
    expect_json(m.payload, m.len, OK);
    kh_msg_cleanup(&m);
    ctl(b, "{\"op\":\"outbox_drop\",\"seq\":1}", &m);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"code\":404"));
    kh_msg_cleanup(&m);
    ck_assert_int_eq(ctl_status_int(b, "dropped_by_operator"), 1);
    ck_assert_int_eq(
        kh_broker_wait_log(broker, "outbox: entry seq=1 dropped by the operator", WAIT_MS), 0);
    bridge_hello(b, 2);
    edge_updated_tpl(tpl, sizeof(tpl), 1, 1);
    seq = bridge_expect(b, tpl);
    ck_assert_int_eq(seq, 2);
    upload_tpl(tpl, sizeof(tpl), "$hw/events/upload/full", "\"second\"");
    bridge_expect(b, tpl);
    kh_client_free(up);
    kh_client_free(d);
    kh_client_free(b);
}
END_TEST

static Suite *ke_suite(void)
{
    Suite *s = suite_create("ke");
    TCase *tc = tcase_create("ke");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_hello);
    tcase_add_test(tc, test_membership_twin_outbox);
    tcase_add_test(tc, test_state_upload_eventbus);
    tcase_add_test(tc, test_cloud_updated);
    tcase_add_test(tc, test_edge_update_down);
    ke_add_restart_tests(tc);
    ke_add_acl_tests(tc);
    tcase_add_test(tc, test_outbox_full);
    tcase_add_test(tc, test_outbox_ctl);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kh_run_suite(ke_suite(), CK_NORMAL);
}
