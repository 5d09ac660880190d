/* The devicetwin suite (test_devicetwin.c): a batch that cannot be stored, twin get, state
 * update and membership get, allocation failure, and the regressions kept.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/topic.h"
#include "kedge/util.h"
#include "core.h"
#include "db.h"
#include "stubs/broker_stubs.h"
#include "devicetwin_fixture.h"
#include "unit.h"

/* ---- a batch that cannot be stored --------------------------------------------------------- */

/* COMMIT itself fails (the WAL cannot grow: RLIMIT_FSIZE, the way a full disk looks): the
 * success result becomes a 500 with the same event id, document and delta are dropped, and
 * memory is reloaded from the store. */
START_TEST(commit_failure_500)
{
    struct rlimit old, lim;
    struct kedge_buf b = KEDGE_BUF_INIT;
    char wal[200];
    FILE *f;
    long wal_size;

    (void)snprintf(wal, sizeof(wal), "%s-wal", db.path);
    send_nocommit(PFX DEV "/twin/update",
                  "{\"event_id\":\"f1\",\"twin\":{\"temperature\":"
                  "{\"actual\":{\"value\":\"99\"}}}}",
                  strlen("{\"event_id\":\"f1\",\"twin\":{\"temperature\":{\"actual\":{\"value\":"
                         "\"99\"}}}}"));
    expect_count(0);
    f = fopen(wal, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    wal_size = ftell(f);
    (void)fclose(f);
    (void)signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)wal_size;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    batch_tick(&core.batch, true);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    (void)signal(SIGXFSZ, SIG_DFL);
    expect_count(1);
    ck_assert_str_eq(pubs[0].topic, RESULT);
    normalise(pubs[0].payload, pubs[0].len, &b);
    ck_assert_msg(!strncmp(b.data,
                           "{\"event_id\":\"f1\",\"timestamp\":T,\"code\":500,\"reason\":"
                           "\"commit: ",
                           strlen("{\"event_id\":\"f1\",\"timestamp\":T,\"code\":500,\"reason\":"
                                  "\"commit: ")),
                  "got %s", b.data);
    kedge_buf_cleanup(&b);
    ck_assert_str_eq(db_text("SELECT actual || actual_version FROM device_twin WHERE "
                             "name = 'temperature'"),
                     "21{\"cloud\":0,\"edge\":0}");
    expect_get(SEED_TWINS); /* memory went back to the store */
    /* and the store works again */
    send(PFX DEV "/twin/update", "{\"event_id\":\"f2\",\"twin\":{\"temperature\":{\"actual\":"
                                 "{\"value\":\"98\"}}}}");
    ck_assert_uint_eq(n_pubs, 3);
    ck_assert_ptr_nonnull(strstr(pubs[0].payload, "\"value\":\"98\""));
    ck_assert_str_eq(db_text("SELECT actual || actual_version FROM device_twin WHERE "
                             "name = 'temperature'"),
                     "98{\"cloud\":0,\"edge\":1}");
}
END_TEST

/* A write of the batch fails (a trigger refuses it): the whole batch fails at commit, every
 * success result in it becomes a 500, a get answered in the same batch too, and both devices
 * go back to what the store has. */
START_TEST(write_failure_500)
{
    unit_db_exec(&db, "CREATE TRIGGER refuse BEFORE UPDATE ON device_twin WHEN NEW.name = "
                      "'switch' BEGIN SELECT RAISE(ABORT, 'refused by test'); END;");
    send_nocommit(
        PFX DEV "/twin/update",
        "{\"event_id\":\"w1\",\"twin\":{\"label\":{\"actual\":"
        "{\"value\":\"b\"}}}}",
        strlen("{\"event_id\":\"w1\",\"twin\":{\"label\":{\"actual\":{\"value\":\"b\"}}}}"));
    send_nocommit(PFX DEV "/twin/update",
                  "{\"event_id\":\"w2\",\"twin\":{\"switch\":{\"actual\":"
                  "{\"value\":\"true\"}}}}",
                  strlen("{\"event_id\":\"w2\",\"twin\":{\"switch\":{\"actual\":{\"value\":"
                         "\"true\"}}}}"));
    send_nocommit(PFX DEV "/twin/get", "{\"event_id\":\"w3\"}", strlen("{\"event_id\":\"w3\"}"));
    batch_tick(&core.batch, true);
    expect_count(3);
    expect_pub(0, RESULT,
               "{\"event_id\":\"w1\",\"timestamp\":T,\"code\":500,\"reason\":"
               "\"update twin: refused by test\"}");
    expect_pub(1, RESULT,
               "{\"event_id\":\"w2\",\"timestamp\":T,\"code\":500,\"reason\":"
               "\"update twin: refused by test\"}");
    expect_pub(2, GET_RESULT,
               "{\"event_id\":\"w3\",\"timestamp\":T,\"code\":500,\"reason\":"
               "\"update twin: refused by test\"}");
    ck_assert_str_eq(db_text("SELECT actual FROM device_twin WHERE name = 'label'"), "a");
    expect_get(SEED_TWINS);
}
END_TEST

/* ---- twin get, state update, membership get (docs/kubeedge-wire.md §2.6, §2.7, §2.10)
 * ----------------------------- */

START_TEST(twin_get)
{
    expect_get(SEED_TWINS);
    send(PFX "nope/twin/get", "{\"event_id\":\"g2\"}");
    expect_pub(0, PFX "nope/twin/get/result",
               "{\"event_id\":\"g2\",\"timestamp\":T,\"code\":404,"
               "\"reason\":\"Device nope not found while "
               "getting twin\"}");
    clear_pubs();
    send(PFX DEV "/twin/get", "{}");
    expect_pub(0, GET_RESULT, "{\"event_id\":\"\",\"timestamp\":T,\"twin\":{" SEED_TWINS "}}");
    clear_pubs();
    send(PFX DEV "/twin/get", "{\"event_id\":5}");
    expect_count(1);
    ck_assert_str_eq(pubs[0].topic, GET_RESULT);
    ck_assert_ptr_nonnull(strstr(pubs[0].payload, "\"event_id\":\"\""));
    ck_assert_ptr_nonnull(strstr(pubs[0].payload, "\"code\":400"));
    clear_pubs();
    send(PFX "conf-dev-2/twin/get", "{\"event_id\":\"g3\"}");
    expect_pub(0, PFX "conf-dev-2/twin/get/result",
               "{\"event_id\":\"g3\",\"timestamp\":T,\"twin\":{}}");
}
END_TEST

static const struct {
    const char *payload, *want; /* want NULL: no answer at all */
    const char *db_state;
} states[] = {
    {"{\"event_id\":\"s1\",\"timestamp\":1,\"state\":\"online\"}",
     "{\"event_id\":\"UUID\",\"timestamp\":T,\"device\":{\"name\":\"conf-dev-1\",\"state\":"
     "\"online\",\"lastOnlineTime\":\"TIME\"}}",
     "online|T"},
    {"{\"state\":\"ONLINE\"}",
     "{\"event_id\":\"UUID\",\"timestamp\":T,\"device\":{\"name\":\"conf-dev-1\",\"state\":"
     "\"ONLINE\",\"lastOnlineTime\":\"TIME\"}}",
     "ONLINE|T"},
    {"{\"state\":\"ok\"}",
     "{\"event_id\":\"UUID\",\"timestamp\":T,\"device\":{\"name\":\"conf-dev-1\",\"state\":\"ok\","
     "\"lastOnlineTime\":\"TIME\"}}",
     "ok|T"},
    {"{\"state\":\"offline\"}",
     "{\"event_id\":\"UUID\",\"timestamp\":T,\"device\":{\"name\":\"conf-dev-1\",\"state\":"
     "\"offline\"}}",
     "offline|"},
    {"{\"state\":\"Unhealthy\"}",
     "{\"event_id\":\"UUID\",\"timestamp\":T,\"device\":{\"name\":\"conf-dev-1\",\"state\":"
     "\"Unhealthy\"}}",
     "Unhealthy|"},
    {"{\"state\":\"unknown\"}",
     "{\"event_id\":\"UUID\",\"timestamp\":T,\"device\":{\"name\":\"conf-dev-1\",\"state\":"
     "\"unknown\"}}",
     "unknown|"},
    {"{\"state\":\"bogus\"}", NULL, "unknown|"},
    {"{\"state\":\"\"}", NULL, "unknown|"},
    {"{}", NULL, "unknown|"},
    {"{\"state\":5}", NULL, "unknown|"},
    {"{\"state\":\"online\",\"attributes\":[]}", NULL, "unknown|"},
    {"not json", NULL, "unknown|"},
};

START_TEST(state_update)
{
    const char *row;

    send(PFX DEV "/state/update", states[_i].payload);
    if (!states[_i].want) {
        expect_count(0);
    } else {
        expect_count(1);
        expect_pub(0, PFX DEV "/state/update/result", states[_i].want);
    }
    row = db_text("SELECT state || '|' || last_online FROM device WHERE id = 'conf-dev-1'");
    if (!strcmp(states[_i].db_state + strlen(states[_i].db_state) - 1, "T"))
        ck_assert_msg(!strncmp(row, states[_i].db_state, strlen(states[_i].db_state) - 1) &&
                          is_rfc3339(strchr(row, '|') + 1, strlen(strchr(row, '|') + 1)),
                      "row %s", row);
    else
        ck_assert_str_eq(row, states[_i].db_state);
}
END_TEST

START_TEST(state_unknown_device)
{
    send(PFX "nope/state/update", "{\"state\":\"online\"}");
    expect_count(0);
}
END_TEST

START_TEST(membership_get)
{
    send("$hw/events/node/whatever/membership/get", "{\"event_id\":\"m1\"}");
    expect_count(1);
    expect_pub(0, "$hw/events/node/" NODE "/membership/get/result",
               "{\"event_id\":\"m1\",\"timestamp\":T,\"devices\":[{\"id\":\"conf-dev-1\","
               "\"name\":\"conf-dev-1\",\"description\":\"conformance device 1\",\"state\":"
               "\"unknown\",\"attributes\":{\"model\":{\"value\":\"m1\",\"optional\":false,"
               "\"metadata\":{\"type\":\"string\"}}}},{\"id\":\"conf-dev-2\",\"name\":"
               "\"conf-dev-2\",\"description\":\"conformance device 2 (no twins)\",\"state\":"
               "\"unknown\"}]}");
    /* after a state update the device carries state and last_online */
    clear_pubs();
    send(PFX DEV "/state/update", "{\"state\":\"online\"}");
    clear_pubs();
    send("$hw/events/node/" NODE "/membership/get", "{}");
    expect_pub(0, "$hw/events/node/" NODE "/membership/get/result",
               "{\"event_id\":\"\",\"timestamp\":T,\"devices\":[{\"id\":\"conf-dev-1\","
               "\"name\":\"conf-dev-1\",\"description\":\"conformance device 1\",\"state\":"
               "\"online\",\"last_online\":\"TIME\",\"attributes\":{\"model\":{\"value\":\"m1\","
               "\"optional\":false,\"metadata\":{\"type\":\"string\"}}}},{\"id\":\"conf-dev-2\","
               "\"name\":\"conf-dev-2\",\"description\":\"conformance device 2 (no twins)\","
               "\"state\":\"unknown\"}]}");
}
END_TEST

/* Payloads over max_payload_bytes are answered as edgecore answers what it cannot parse. */
START_TEST(too_big)
{
    char big[400];

    stop_plugin();
    cfg.max_payload_bytes = 256;
    start_plugin();
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "{\"twin\":{}}", 11);
    send(PFX DEV "/twin/update", big);
    expect_count(1);
    expect_pub(0, PFX "/twin/update/result",
               "{\"event_id\":\"\",\"timestamp\":T,\"code\":400,\"reason\":\"Unmarshal update "
               "request body failed, please check the request\"}");
    clear_pubs();
    send(PFX DEV "/state/update", big);
    expect_count(0);
    send(PFX DEV "/twin/get", big);
    expect_count(1);
    ck_assert_str_eq(pubs[0].topic, GET_RESULT);
    ck_assert_ptr_nonnull(strstr(pubs[0].payload, "\"code\":400"));
}
END_TEST

/* Topics kedge does not act on pass through without an answer. */
START_TEST(other_topics_ignored)
{
    static const char *const topics[] = {RESULT,
                                         DELTA,
                                         PFX DEV "/twin/cloud_updated",
                                         PFX DEV "/state/get",
                                         PFX DEV "/updated",
                                         PFX "/twin/update",
                                         "a/b/c",
                                         "$SYS/x"};
    size_t i;

    for (i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        send(topics[i], "{\"event_id\":\"x\",\"twin\":{\"label\":{\"actual\":{\"value\":\"q\"}}}}");
    expect_count(0);
    ck_assert_str_eq(db_text("SELECT actual FROM device_twin WHERE name = 'label'"), "a");
}
END_TEST

/* A store that cannot be opened: every request that would answer gets a 500, nothing crashes. */
START_TEST(broken_store)
{
    char junk[4096];

    stop_plugin();
    memset(junk, 0x5a, sizeof(junk));
    unit_write_file(db.path, junk, sizeof(junk));
    start_plugin();
    send(PFX DEV "/twin/update", "{\"event_id\":\"b1\",\"twin\":{}}");
    send(PFX DEV "/twin/get", "{\"event_id\":\"b2\"}");
    send(PFX DEV "/state/update", "{\"state\":\"online\"}");
    send("$hw/events/node/" NODE "/membership/get", "{\"event_id\":\"b3\"}");
    expect_count(3);
    ck_assert_ptr_nonnull(strstr(pubs[0].payload, "\"event_id\":\"b1\""));
    ck_assert_ptr_nonnull(strstr(pubs[0].payload, "\"code\":500"));
    ck_assert_ptr_nonnull(strstr(pubs[1].payload, "\"code\":500"));
    ck_assert_ptr_nonnull(strstr(pubs[2].payload, "\"code\":500"));
}
END_TEST

/* ---- allocation failure ------------------------------------------------------------------- */

/* Every allocation of an update failing in turn: no crash, no leak (teardown counts), no
 * success answered for a change that was not stored, and once memory is back, requests
 * work and memory agrees with the store. */
START_TEST(update_nomem)
{
    static const char req[] = "{\"event_id\":\"u1\",\"twin\":{\"humidity\":{\"expected\":"
                              "{\"value\":\"1.5\"},\"actual\":{\"value\":\"2.5\"}},\"newkey\":"
                              "{\"actual\":{\"value\":\"v\"}},\"optkey\":null}}";
    long n;

    for (n = 0; n < 400; n++) {
        size_t i;
        clear_pubs();
        (void)kedge_alloc_fail_after(n);
        send_nocommit(PFX DEV "/twin/update", req, sizeof(req) - 1);
        (void)kedge_alloc_fail_after(-1);
        batch_tick(&core.batch, true);
        for (i = 0; i < n_pubs; i++) {
            /* a result is either a success carrying the change or an error */
            if (!strcmp(pubs[i].topic, RESULT))
                ck_assert(strstr(pubs[i].payload, "\"code\":5") ||
                          strstr(pubs[i].payload, "\"newkey\":{\"actual\""));
        }
        if (n_pubs == 3 && strstr(pubs[0].payload, "\"newkey\""))
            break; /* the whole request went through */
        /* whatever happened, memory must agree with the store once the store is re-read */
        batch_reload(&core.batch, DEV);
    }
    ck_assert_int_lt(n, 400);
    ck_assert_int_gt(n, 10);
    ck_assert_str_eq(db_text("SELECT expected || actual FROM device_twin WHERE name='humidity'"),
                     "1.52.5");
    ck_assert_str_eq(db_text("SELECT attr_type FROM device_twin WHERE name='optkey'"), "deleted");
}
END_TEST

static int op_get(void *arg)
{
    (void)arg;
    clear_pubs();
    send_nocommit(PFX DEV "/twin/get", "{\"event_id\":\"g\"}", 16);
    send_nocommit("$hw/events/node/" NODE "/membership/get", "{\"event_id\":\"m\"}", 16);
    batch_tick(&core.batch, true);
    return n_pubs == 2 ? 0 : -ENOMEM;
}

/* Gets need no store write: with allocation failing they just answer nothing, leak nothing. */
START_TEST(get_nomem)
{
    static const int ok[] = {-ENOMEM};

    ck_assert_int_eq(op_get(NULL), 0); /* the buffers a plugin keeps between requests */
    ck_assert_int_gt(unit_alloc_fail_loop(op_get, NULL, ok, 1), 5);
    expect_pub(0, GET_RESULT, "{\"event_id\":\"g\",\"timestamp\":T,\"twin\":{" SEED_TWINS "}}");
}
END_TEST

/* ---- regressions: plugin bugs found by these tests, fixed, kept ---------------------------------
 */

/* BEGIN fails (another connection holds the write lock past the 20 ms busy timeout): the
 * update is answered as a success although no row was written, and memory keeps the change.
 * Expected: a 500 and memory reloaded, as for any failed batch. */
START_TEST(begin_busy_reports_success)
{
    sqlite3 *other;

    ck_assert_int_eq(sqlite3_open(db.path, &other), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    send_nocommit(
        PFX DEV "/twin/update",
        "{\"event_id\":\"k1\",\"twin\":{\"label\":{\"actual\":"
        "{\"value\":\"b\"}}}}",
        strlen("{\"event_id\":\"k1\",\"twin\":{\"label\":{\"actual\":{\"value\":\"b\"}}}}"));
    ck_assert_int_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_close(other), SQLITE_OK);
    batch_tick(&core.batch, true);
    ck_assert_str_eq(db_text("SELECT actual FROM device_twin WHERE name = 'label'"), "a");
    ck_assert_uint_ge(n_pubs, 1);
    ck_assert_msg(strstr(pubs[0].payload, "\"code\":500") != NULL,
                  "success reported for a change that was not stored: %s", pubs[0].payload);
}
END_TEST

/* ke.c publish_retained freed the payload again when the retained publish failed, but a
 * failing publisher has already freed it ("takes payload in all cases"): a double free
 * whenever the broker refuses the retained $SYS publish, and on every tick while no publisher
 * is set (plugin_cleanup clears it before core_cleanup, whose final tick publishes the
 * status). */
START_TEST(retained_publish_failure_double_free)
{
    refuse_retained = true;
    batch_tick(&core.batch, true); /* the first tick publishes the $SYS status */
    refuse_retained = false;
}
END_TEST

void devicetwin_failure_tests(TCase *failure)
{
    tcase_add_test(failure, commit_failure_500);
    tcase_add_test(failure, write_failure_500);
    tcase_add_test(failure, update_nomem);
    tcase_add_test(failure, get_nomem);
}

void devicetwin_other_tests(TCase *other)
{
    tcase_add_test(other, twin_get);
    tcase_add_loop_test(other, state_update, 0, (int)(sizeof(states) / sizeof(states[0])));
    tcase_add_test(other, state_unknown_device);
    tcase_add_test(other, membership_get);
    tcase_add_test(other, too_big);
    tcase_add_test(other, other_topics_ignored);
    tcase_add_test(other, broken_store);
}

void devicetwin_regression_tests(TCase *regressions)
{
    tcase_add_test(regressions, begin_busy_reports_success);
    tcase_add_test(regressions, retained_publish_failure_double_free);
}
