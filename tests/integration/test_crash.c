/* Crash durability of the twin path: a success result means the row is committed.
 *
 * 64 twin updates are in flight when the broker is killed with SIGKILL; the plugin commits
 * every 50 ms (plugin_opt_commit_interval_ms), so some are still only in memory. After a
 * restart, every update whose success result the device saw must be stored. A build that
 * publishes before committing (-DKEDGE_UNSAFE_PUBLISH_BEFORE_COMMIT=ON) fails this test.
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
#define N_UPDATES 64
#define DEV "default/crash"
#define RESULT_TOPIC "$hw/events/device/" DEV "/twin/update/result"

static void seed(const char *db_path)
{
    char sql[256];
    sqlite3 *db;
    int i;

    ck_assert_int_eq(seed_db(db_path, FIXTURES "edgecore-seed.sql"), 0);
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO device VALUES ('" DEV "','crash','','','')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (i = 0; i < N_UPDATES; i++) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO device_twin (deviceid,name,description,expected,actual,"
                 "expected_meta,actual_meta,expected_version,actual_version,optional,attr_type,"
                 "metadata) VALUES ('" DEV "','k%02d','','','0','','{\"timestamp\":1}','',"
                 "'{\"cloud\":0,\"edge\":0}',0,'int','')",
                 i);
        ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    sqlite3_close(db);
}

static void publish_update(struct kh_client *c, int i)
{
    char payload[160];

    snprintf(payload, sizeof(payload),
             "{\"event_id\":\"e%02d\",\"twin\":{\"k%02d\":{\"actual\":{\"value\":\"%d\"}}}}", i, i,
             1000 + i);
    /* QoS 0: fire them all, none waits for the one before */
    ck_assert_int_eq(
        kh_client_pub(c, "$hw/events/device/" DEV "/twin/update", payload, -1, 0, false), 0);
}

/* Record which updates got a success result (code absent). */
static int collect(struct kh_client *c, bool seen[N_UPDATES], int timeout_ms)
{
    struct kh_msg m;
    int n = 0;

    while (kh_client_wait(c, RESULT_TOPIC, timeout_ms, &m) == 0) {
        int i;
        if (!strstr(m.payload, "\"code\"") && sscanf(m.payload, "{\"event_id\":\"e%d\"", &i) == 1 &&
            i >= 0 && i < N_UPDATES && !seen[i]) {
            seen[i] = true;
            n++;
        }
        kh_msg_cleanup(&m);
        timeout_ms = 1; /* drain what already arrived */
    }
    return n;
}

START_TEST(kill9_keeps_every_acknowledged_update)
{
    static const struct kh_opt opts[] = {
        {"commit_interval_ms", "50"}, {"commit_batch", "100000"}, {NULL, NULL}};
    char dir[] = "/tmp/kedge-crash-XXXXXX", db_path[256], key[8], want[16];
    bool seen[N_UPDATES] = {false};
    struct kh_broker_opts o = {0};
    struct kh_broker *b;
    struct kh_client *dev, *sub;
    struct kedge_jdoc *doc;
    struct kh_msg m;
    int i, n_seen = 0, n_stored = 0;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(db_path, sizeof(db_path), "%s/kedge.db", dir);
    seed(db_path);
    o.data_dir = dir;
    o.plugin_opts = opts;
    b = kh_broker_start(&o);
    ck_assert_ptr_nonnull(b);
    sub = kh_client_new(kh_broker_port(b), NULL, "any-user", "any-password", 4);
    dev = kh_client_new(kh_broker_port(b), NULL, NULL, NULL, 4);
    ck_assert_ptr_nonnull(sub);
    ck_assert_ptr_nonnull(dev);
    ck_assert_int_eq(kh_client_sub(sub, RESULT_TOPIC, 1), 1);

    /* half, wait for the first results (a commit happened), then the rest and kill at once:
     * the second half is in flight, mostly not committed */
    for (i = 0; i < N_UPDATES / 2; i++)
        publish_update(dev, i);
    n_seen += collect(sub, seen, 2000);
    ck_assert_int_gt(n_seen, 0);
    for (; i < N_UPDATES; i++)
        publish_update(dev, i);
    n_seen += collect(sub, seen, 1);
    ck_assert_int_eq(kh_broker_kill9(b), 0);
    n_seen += collect(sub, seen, 200); /* results already on the wire before the kill */
    kh_client_free(sub);
    kh_client_free(dev);

    ck_assert_int_eq(kh_broker_restart(b), 0);
    dev = kh_client_new(kh_broker_port(b), NULL, NULL, NULL, 4);
    ck_assert_ptr_nonnull(dev);
    ck_assert_int_eq(kh_client_sub(dev, "$hw/events/device/" DEV "/twin/get/result", 1), 1);
    ck_assert_int_eq(kh_client_pub(dev, "$hw/events/device/" DEV "/twin/get",
                                   "{\"event_id\":\"g\"}", -1, 1, false),
                     0);
    ck_assert_int_eq(kh_client_wait(dev, "$hw/events/device/" DEV "/twin/get/result", 5000, &m), 0);
    ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &doc), 0);
    for (i = 0; i < N_UPDATES; i++) {
        const struct kedge_jval *tw = kedge_json_get(kedge_jdoc_root(doc), "twin");
        const struct kedge_jval *v;
        snprintf(key, sizeof(key), "k%02d", i);
        snprintf(want, sizeof(want), "%d", 1000 + i);
        v = kedge_json_get_exact(
            kedge_json_get(kedge_json_get_exact(tw, key, strlen(key)), "actual"), "value", 5);
        ck_assert_msg(v != NULL, "twin %s missing after restart", key);
        if (!strcmp(v->str, want))
            n_stored++;
        ck_assert_msg(!seen[i] || !strcmp(v->str, want),
                      "update %d got a success result but after kill -9 the twin holds %s", i,
                      v->str);
    }
    fprintf(stderr, "crash: %d of %d updates acknowledged before kill -9, %d stored after it\n",
            n_seen, N_UPDATES, n_stored);
    kedge_jdoc_free(doc);
    kh_msg_cleanup(&m);
    kh_client_free(dev);
    ck_assert_int_eq(kh_broker_stop(b), 0);
    kh_broker_free(b);
    kh_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("crash");
    TCase *tc = tcase_create("kill -9");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, kill9_keeps_every_acknowledged_update);
    suite_add_tcase(s, tc);
    return kh_run_suite(s, CK_NORMAL);
}
