/* The twin path through a real broker: every $hw/events topic in both id forms, every error
 * case edgecore answers (and the ones where it stays silent), restart, a corrupt or missing
 * database, and a device that connects with an arbitrary username.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "harness.h"
#include "jsoncmp.h"
#include "kedge/json.h"

#define FIXTURES KEDGE_SOURCE_DIR "/tests/fixtures/"
#define DEV_PREFIX "$hw/events/device/"

static char dir[64];
static struct kh_broker *broker;
static struct kh_client *dev;

/* Seed: the recorded conformance devices plus thermo in both id forms, with an int twin
 * "temperature" and an optional string twin "note". */
static void seed(const char *db_path)
{
    static const char *const ids[] = {"default/thermo", "thermo"};
    char sql[1024];
    sqlite3 *db;
    size_t i;

    ck_assert_int_eq(seed_db(db_path, FIXTURES "edgecore-seed.sql"), 0);
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    for (i = 0; i < 2; i++) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO device VALUES ('%s','thermo','','unknown','');"
                 "INSERT INTO device_twin (deviceid,name,description,expected,actual,expected_meta,"
                 "actual_meta,expected_version,actual_version,optional,attr_type,metadata) VALUES "
                 "('%s','temperature','','30','20','{\"timestamp\":1}','{\"timestamp\":1}',"
                 "'{\"cloud\":0,\"edge\":0}','{\"cloud\":0,\"edge\":0}',0,'int',''),"
                 "('%s','note','','','x','','{\"timestamp\":1}','','{\"cloud\":0,\"edge\":0}',1,"
                 "'string','');",
                 ids[i], ids[i], ids[i]);
        ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    sqlite3_close(db);
}

static void start(const struct kh_opt *opts, bool seeded)
{
    struct kh_broker_opts o = {0};
    char db_path[128];

    snprintf(dir, sizeof(dir), "/tmp/kedge-twin-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(db_path, sizeof(db_path), "%s/kedge.db", dir);
    if (seeded)
        seed(db_path);
    o.data_dir = dir;
    o.plugin_opts = opts;
    broker = kh_broker_start(&o);
    ck_assert_ptr_nonnull(broker);
    dev = kh_client_new(kh_broker_port(broker), NULL, NULL, NULL, 4);
    ck_assert_ptr_nonnull(dev);
    ck_assert_int_eq(kh_client_sub(dev, "$hw/events/#", 1), 1);
}

static void setup(void)
{
    start(NULL, true);
}

static void teardown(void)
{
    kh_client_free(dev);
    dev = NULL;
    if (broker) {
        ck_assert_int_eq(kh_broker_stop(broker), 0);
        kh_broker_free(broker);
        broker = NULL;
    }
    kh_rmtree(dir);
}

/* Publish payload on topic and return the first message on reply_topic. */
static void ask(const char *topic, const char *payload, int len, const char *reply_topic,
                struct kh_msg *m)
{
    ck_assert_int_eq(kh_client_pub(dev, topic, payload, len, 1, false), 0);
    ck_assert_msg(kh_client_wait(dev, reply_topic, 3000, m) == 0, "no reply on %s to %s",
                  reply_topic, topic);
}

static void expect_error(const char *payload, int code, const char *event_id, const char *reason)
{
    char want[768];

    snprintf(want, sizeof(want), "\"code\":%d,\"reason\":\"%s\"}", code, reason);
    ck_assert_msg(strstr(payload, want) != NULL, "got %s, want ...%s", payload, want);
    snprintf(want, sizeof(want), "{\"event_id\":\"%s\",\"timestamp\":", event_id);
    ck_assert_msg(!strncmp(payload, want, strlen(want)), "got %s, want %s...", payload, want);
}

/* ---- every topic, both id forms ------------------------------------------------------------ */

static const char *const forms[] = {"default/thermo", "thermo"};

START_TEST(update_get_state_both_forms)
{
    const char *id = forms[_i];
    char topic[128], reply[160];
    struct kh_msg m;

    snprintf(topic, sizeof(topic), DEV_PREFIX "%s/twin/update", id);
    snprintf(reply, sizeof(reply), "%s/result", topic);
    ask(topic, "{\"event_id\":\"u1\",\"twin\":{\"temperature\":{\"actual\":{\"value\":\"25\"}}}}",
        -1, reply, &m);
    ck_assert_msg(strstr(m.payload, "{\"event_id\":\"u1\",\"timestamp\":") == m.payload &&
                      strstr(m.payload, ",\"twin\":{\"temperature\":{\"actual\":{\"value\":\"25\","
                                        "\"metadata\":{\"timestamp\":") &&
                      strstr(m.payload, "}},\"optional\":false,\"metadata\":{\"type\":\"int\"}}}}"),
                  "result %s", m.payload);
    kh_msg_cleanup(&m);
    snprintf(reply, sizeof(reply), "%s/document", topic);
    ck_assert_int_eq(kh_client_wait(dev, reply, 3000, &m), 0);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"last\":{\"expected\":{\"value\":\"30\""));
    kh_msg_cleanup(&m);
    snprintf(reply, sizeof(reply), "%s/delta", topic);
    ck_assert_int_eq(kh_client_wait(dev, reply, 3000, &m), 0);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"delta\":{\"temperature\":\"30\"}}"));
    kh_msg_cleanup(&m);

    snprintf(topic, sizeof(topic), DEV_PREFIX "%s/twin/get", id);
    snprintf(reply, sizeof(reply), "%s/result", topic);
    ask(topic, "{\"event_id\":\"g1\"}", -1, reply, &m);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"temperature\":{\"expected\":{\"value\":\"30\""));
    ck_assert_ptr_nonnull(strstr(m.payload, "\"actual\":{\"value\":\"25\""));
    kh_msg_cleanup(&m);

    snprintf(topic, sizeof(topic), DEV_PREFIX "%s/state/update", id);
    snprintf(reply, sizeof(reply), "%s/result", topic);
    ask(topic, "{\"event_id\":\"s1\",\"state\":\"OnLine\"}", -1, reply, &m);
    /* a new uuid, not the request's event id; the state as sent */
    ck_assert_ptr_null(strstr(m.payload, "\"s1\""));
    ck_assert_ptr_nonnull(strstr(m.payload, "\"device\":{\"name\":\"thermo\",\"state\":\"OnLine\","
                                            "\"lastOnlineTime\":\""));
    kh_msg_cleanup(&m);
    ask(topic, "{\"state\":\"offline\"}", -1, reply, &m);
    ck_assert_ptr_nonnull(
        strstr(m.payload, "\"device\":{\"name\":\"thermo\",\"state\":\"offline\"}}"));
    kh_msg_cleanup(&m);
}
END_TEST

START_TEST(membership_get_answers_on_own_node)
{
    struct kh_msg m;

    ask("$hw/events/node/whatever/membership/get", "{\"event_id\":\"m1\"}", -1,
        "$hw/events/node/kedge-node/membership/get/result", &m);
    ck_assert_ptr_nonnull(strstr(m.payload, "{\"event_id\":\"m1\",\"timestamp\":"));
    ck_assert_ptr_nonnull(strstr(m.payload,
                                 "{\"id\":\"conf-dev-1\",\"name\":\"conf-dev-1\",\"description\":"
                                 "\"conformance device 1\",\"state\":\"unknown\",\"attributes\":"
                                 "{\"model\":{\"value\":\"m1\",\"optional\":false,\"metadata\":"
                                 "{\"type\":\"string\"}}}}"));
    ck_assert_ptr_nonnull(strstr(m.payload, "{\"id\":\"default/thermo\",\"name\":\"thermo\""));
    kh_msg_cleanup(&m);
    ask("$hw/events/node/x/membership/get", "{\"event_id\":", -1,
        "$hw/events/node/kedge-node/membership/get/result", &m);
    ck_assert_ptr_nonnull(strstr(m.payload, "{\"event_id\":\"\",\"timestamp\":"));
    ck_assert_ptr_nonnull(strstr(m.payload, "\"code\":400,\"reason\":\"Unmarshal get membership"));
    kh_msg_cleanup(&m);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------------- */

struct bad_update {
    const char *payload;
    bool empty_topic; /* answered on $hw/events/device//twin/update/result with event_id "" */
    int code;
    const char *reason;
};

static const struct bad_update bad_updates[] = {
    {"{\"event_id\":\"b\",\"twin\":", true, 400,
     "Unmarshal update request body failed, please check the request"},
    {"", true, 400, "Unmarshal update request body failed, please check the request"},
    {"{\"event_id\":\"b\",\"twin\":{\"temperature\":{\"actual\":{\"value\":25}}}}", true, 400,
     "Unmarshal update request body failed, please check the request"},
    {"{\"event_id\":\"b\"}", true, 400, "Update twin error, key:twin does not exist"},
    {"{\"event_id\":\"b\",\"twin\":{\"bad key\":{\"actual\":{\"value\":\"1\"}}}}", true, 400,
     "The key of twin must only include upper or lowercase letters, number, english, and "
     "special letter - _ . , : / @ # and the length of key should be less than 128 bytes"},
    {"{\"event_id\":\"b\",\"twin\":{\"temperature\":{\"actual\":{\"value\":\"1 2\"}}}}", true, 400,
     "The value of twin must only include upper or lowercase letters, number, english, and "
     "special letter - _ . , : / @ # and the length of value should be less than 512 bytes"},
    {"{\"event_id\":\"b\",\"twin\":{\"temperature\":{\"actual\":{\"value\":\"1.5\"}}}}", false, 400,
     "the value is not int or integer"},
    {"{\"event_id\":\"b\",\"twin\":{\"newkey\":null}}", false, 400, "the request body is wrong"},
    {"{\"event_id\":\"b\",\"twin\":{\"temperature\":{\"actual\":{}}}}", false, 400,
     "the request body is wrong"},
    {"{\"event_id\":\"b\",\"twin\":{\"newkey\":{\"actual\":{\"value\":\"1\"},\"metadata\":"
     "{\"type\":\"double\"}}}}",
     false, 400, "the value type is not allowed"},
};

START_TEST(bad_updates_get_edgecores_answer)
{
    const struct bad_update *t = &bad_updates[_i];
    const char *topic = DEV_PREFIX "default/thermo/twin/update";
    const char *reply = t->empty_topic ? DEV_PREFIX "/twin/update/result"
                                       : DEV_PREFIX "default/thermo/twin/update/result";
    struct kh_msg m;

    ask(topic, t->payload, -1, reply, &m);
    expect_error(m.payload, t->code, t->empty_topic ? "" : "b", t->reason);
    kh_msg_cleanup(&m);
    /* nothing stored: a get still shows the seeded twins */
    ask(DEV_PREFIX "default/thermo/twin/get", "{}", -1, DEV_PREFIX "default/thermo/twin/get/result",
        &m);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"actual\":{\"value\":\"20\""));
    ck_assert_ptr_null(strstr(m.payload, "newkey"));
    kh_msg_cleanup(&m);
    ck_assert_int_eq(kh_broker_wait_log(broker, "twin: ", 3000), 0); /* one log line */
}
END_TEST

START_TEST(unknown_device_and_oversized)
{
    struct kh_msg m;
    char *big;

    ask(DEV_PREFIX "ns/nobody/twin/update", "{\"event_id\":\"x\",\"twin\":{}}", -1,
        DEV_PREFIX "ns/nobody/twin/update/result", &m);
    expect_error(m.payload, 404, "x", "update rejected due to the device is not existed");
    kh_msg_cleanup(&m);
    ask(DEV_PREFIX "ns/nobody/twin/get", "{\"event_id\":\"y\"}", -1,
        DEV_PREFIX "ns/nobody/twin/get/result", &m);
    expect_error(m.payload, 404, "y", "Device ns/nobody not found while getting twin");
    kh_msg_cleanup(&m);
    ask(DEV_PREFIX "thermo/twin/get", "not json", -1, DEV_PREFIX "thermo/twin/get/result", &m);
    ck_assert_ptr_nonnull(strstr(m.payload, "{\"event_id\":\"\",\"timestamp\":"));
    ck_assert_ptr_nonnull(
        strstr(m.payload, "\"code\":400,\"reason\":\"Unmarshal twin info not json"));
    kh_msg_cleanup(&m);

    /* over plugin_opt_max_payload_bytes (64 KiB by default): what a body edgecore cannot read
     * gets, and the broker keeps serving */
    big = malloc(70000);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', 70000);
    memcpy(big, "{\"twin\":{}}", 11);
    ask(DEV_PREFIX "thermo/twin/update", big, 70000, DEV_PREFIX "/twin/update/result", &m);
    expect_error(m.payload, 400, "",
                 "Unmarshal update request body failed, please check the request");
    kh_msg_cleanup(&m);
    free(big);
    ck_assert_int_eq(kh_broker_wait_log(broker, "over max_payload_bytes", 3000), 0);
}
END_TEST

START_TEST(silence_where_edgecore_is_silent)
{
    /* invalid state, unknown device, bad JSON: no state result at all; odd topic shapes and
     * topics edgecore has no handler for: nothing */
    ck_assert_int_eq(kh_client_pub(dev, DEV_PREFIX "thermo/state/update", "{\"state\":\"sleepy\"}",
                                   -1, 1, false),
                     0);
    ck_assert_int_eq(kh_client_pub(dev, DEV_PREFIX "nobody/state/update", "{\"state\":\"online\"}",
                                   -1, 1, false),
                     0);
    ck_assert_int_eq(kh_client_pub(dev, DEV_PREFIX "thermo/state/update", "{", -1, 1, false), 0);
    ck_assert_int_eq(
        kh_client_pub(dev, DEV_PREFIX "a/b/c/twin/update", "{\"twin\":{}}", -1, 1, false), 0);
    ck_assert_int_eq(kh_client_pub(dev, DEV_PREFIX "thermo/twin/whatever", "{}", -1, 1, false), 0);
    ck_assert_int_eq(kh_client_pub(dev, DEV_PREFIX "thermo/state/get", "{}", -1, 1, false), 0);
    ck_assert_int_eq(kh_client_expect_none(dev, "$hw/events/+/+/state/update/result", 500), 0);
    ck_assert_int_eq(kh_client_expect_none(dev, "$hw/events/+/+/+/state/update/result", 1), 0);
    ck_assert_int_eq(kh_client_expect_none(dev, "$hw/events/device/+/+/+/+/result", 1), 0);
    ck_assert_int_eq(kh_client_expect_none(dev, "$hw/events/device/+/+/+/+/+/result", 1), 0);
}
END_TEST

START_TEST(optional_twin_deleted_by_null)
{
    struct kh_msg m;

    ask(DEV_PREFIX "thermo/twin/update",
        "{\"event_id\":\"d\",\"twin\":{\"note\":null,"
        "\"temperature\":null}}",
        -1, DEV_PREFIX "thermo/twin/update/result", &m);
    /* note is optional: deleted (null); temperature is not: silently left alone */
    ck_assert_msg(strstr(m.payload, ",\"twin\":{\"note\":null}}") != NULL, "%s", m.payload);
    kh_msg_cleanup(&m);
    ck_assert_int_eq(kh_client_wait(dev, DEV_PREFIX "thermo/twin/update/document", 3000, &m), 0);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"current\":null"));
    kh_msg_cleanup(&m);
    ask(DEV_PREFIX "thermo/twin/get", "{}", -1, DEV_PREFIX "thermo/twin/get/result", &m);
    ck_assert_ptr_null(strstr(m.payload, "note"));
    ck_assert_ptr_nonnull(strstr(m.payload, "temperature"));
    kh_msg_cleanup(&m);
}
END_TEST

/* ---- restart, storage trouble, identities --------------------------------------------------- */

START_TEST(restart_serves_stored_state)
{
    struct kh_msg m;

    ask(DEV_PREFIX "default/thermo/twin/update",
        "{\"twin\":{\"temperature\":{\"actual\":{\"value\":\"77\"}},\"added\":{\"expected\":"
        "{\"value\":\"true\"},\"metadata\":{\"type\":\"boolean\"}}}}",
        -1, DEV_PREFIX "default/thermo/twin/update/result", &m);
    kh_msg_cleanup(&m);
    kh_client_free(dev);
    ck_assert_int_eq(kh_broker_restart(broker), 0);
    dev = kh_client_new(kh_broker_port(broker), NULL, NULL, NULL, 4);
    ck_assert_ptr_nonnull(dev);
    ck_assert_int_eq(kh_client_sub(dev, "$hw/events/#", 1), 1);
    ask(DEV_PREFIX "default/thermo/twin/get", "{\"event_id\":\"after\"}", -1,
        DEV_PREFIX "default/thermo/twin/get/result", &m);
    ck_assert_msg(strstr(m.payload, "\"added\":{\"expected\":{\"value\":\"true\"") &&
                      strstr(m.payload, "\"metadata\":{\"type\":\"boolean\"}") &&
                      strstr(m.payload, "\"actual\":{\"value\":\"77\""),
                  "%s", m.payload);
    kh_msg_cleanup(&m);
}
END_TEST

START_TEST(corrupt_database_gives_500_not_a_crash)
{
    char path[128];
    FILE *f;
    struct kh_msg m;

    /* replace the DB with garbage while the broker is down */
    kh_client_free(dev);
    ck_assert_int_eq(kh_broker_stop(broker), 0);
    snprintf(path, sizeof(path), "%s/kedge.db", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/kedge.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/kedge.db", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 8192; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    ck_assert_int_eq(kh_broker_restart(broker), 0);
    ck_assert_int_eq(kh_broker_wait_log(broker, "cannot open db=", 3000), 0);
    dev = kh_client_new(kh_broker_port(broker), NULL, NULL, NULL, 4);
    ck_assert_int_eq(kh_client_sub(dev, "$hw/events/#", 1), 1);
    ask(DEV_PREFIX "thermo/twin/update", "{\"event_id\":\"c\",\"twin\":{}}", -1,
        DEV_PREFIX "thermo/twin/update/result", &m);
    ck_assert_msg(strstr(m.payload, "{\"event_id\":\"c\",\"timestamp\":") &&
                      strstr(m.payload, "\"code\":500"),
                  "%s", m.payload);
    kh_msg_cleanup(&m);
    ck_assert(kh_broker_running(broker));
}
END_TEST

START_TEST(missing_db_directory_gives_500)
{
    static const struct kh_opt opts[] = {{"db_path", "/nonexistent-dir/kedge.db"}, {NULL, NULL}};
    struct kh_msg m;

    start(opts, false);
    ask(DEV_PREFIX "thermo/twin/get", "{\"event_id\":\"g\"}", -1,
        DEV_PREFIX "thermo/twin/get/result", &m);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"code\":500"));
    kh_msg_cleanup(&m);
}
END_TEST

START_TEST(any_username_works)
{
    struct kh_client *c =
        kh_client_new(kh_broker_port(broker), "mapper-1", "some-mapper", "whatever", 5);
    struct kh_msg m;

    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(kh_client_sub(c, DEV_PREFIX "thermo/twin/update/result", 1), 1);
    ck_assert_int_eq(kh_client_pub(c, DEV_PREFIX "thermo/twin/update",
                                   "{\"twin\":{\"temperature\":{\"actual\":{\"value\":\"1\"}}}}",
                                   -1, 1, false),
                     0);
    ck_assert_int_eq(kh_client_wait(c, DEV_PREFIX "thermo/twin/update/result", 3000, &m), 0);
    ck_assert_ptr_null(strstr(m.payload, "\"code\""));
    kh_msg_cleanup(&m);
    kh_client_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("twin");
    TCase *tc = tcase_create("topics");
    TCase *tc2 = tcase_create("no seed");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, update_get_state_both_forms, 0, 2);
    tcase_add_test(tc, membership_get_answers_on_own_node);
    tcase_add_loop_test(tc, bad_updates_get_edgecores_answer, 0,
                        (int)(sizeof(bad_updates) / sizeof(bad_updates[0])));
    tcase_add_test(tc, unknown_device_and_oversized);
    tcase_add_test(tc, silence_where_edgecore_is_silent);
    tcase_add_test(tc, optional_twin_deleted_by_null);
    tcase_add_test(tc, restart_serves_stored_state);
    tcase_add_test(tc, corrupt_database_gives_500_not_a_crash);
    tcase_add_test(tc, any_username_works);
    suite_add_tcase(s, tc);
    tcase_set_timeout(tc2, 120);
    tcase_add_checked_fixture(tc2, NULL, teardown);
    tcase_add_test(tc2, missing_db_directory_gives_500);
    suite_add_tcase(s, tc2);
    return kh_run_suite(s, CK_NORMAL);
}
