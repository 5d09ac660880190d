/* cloudbridge/outbox.c: the bridge's durable queue to the cloud. What is checked here is the
 * order the cloud sees: one twin/state message of a device in flight at a time (cloudcore
 * applies concurrently what it reads, so a second one sent early can land first), devices
 * independent of each other, resends of overdue answers, the entry set aside after resend_max
 * unanswered resends, blocked entries surviving a restart, and a database from an older bridge
 * taken over without losing its rows.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bridge.h"
#include "kedge/err.h"
#include "unit.h"

static char dir[64], path[128];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kedge-boutbox-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/bridge.db", dir);
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A beehive message as the plugin hands it over: twin reports are confirm entries whose
 * subject is their resource; anything else is a fire entry. */
static void put(struct boutbox *ob, const char *msg_id, const char *resource)
{
    char msg[512];
    int n =
        snprintf(msg, sizeof(msg),
                 "{\"header\":{\"msg_id\":\"%s\",\"parent_msg_id\":\"\",\"timestamp\":1},"
                 "\"route\":{\"source\":\"%s\",\"group\":\"resource\",\"operation\":"
                 "\"update\",\"resource\":\"%s\"},\"content\":\"x\"}",
                 msg_id, strncmp(resource, "device/", 7) ? "router_eventbus" : "twin", resource);

    ck_assert_int_eq(boutbox_put(ob, msg, (size_t)n), 0);
}

/* Take the next entry, mark it sent, and return its msg_id (static buffer) or "" for none. */
static const char *send_next(struct boutbox *ob, int64_t *cursor, uint64_t resend_ms)
{
    static char id[64];
    struct outbox_entry e;
    int rc = boutbox_next(ob, *cursor, resend_ms, &e);

    ck_assert_int_ge(rc, 0);
    if (rc == 0)
        return "";
    snprintf(id, sizeof(id), "%s", e.msg_id);
    ck_assert_int_eq(boutbox_sent(ob, &e), 0);
    if (e.id > *cursor)
        *cursor = e.id;
    boutbox_entry_cleanup(&e);
    return id;
}

#define TWIN_A "device/a/twin/edge_updated"
#define TWIN_B "device/b/twin/edge_updated"
#define HOUR_MS (3600u * 1000u)

START_TEST(one_in_flight_per_device)
{
    struct boutbox *ob;
    int64_t cursor = 0;

    ck_assert_int_eq(boutbox_open(path, 0, true, &ob), 0);
    put(ob, "a1", TWIN_A);
    put(ob, "a2", TWIN_A);
    put(ob, "b1", TWIN_B);
    put(ob, "up1", "node/n/upload");
    put(ob, "a3", TWIN_A);
    ck_assert_int_eq(boutbox_commit(ob), 0);

    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "b1"); /* a2 waits for a1's answer */
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "up1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "");
    ck_assert_int_eq(boutbox_confirmed(ob, "a1"), 1);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a2"); /* behind the cursor, now head */
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "");
    ck_assert_int_eq(boutbox_confirmed(ob, "b1"), 1);
    ck_assert_int_eq(boutbox_confirmed(ob, "a2"), 1);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a3");
    ck_assert_int_eq(boutbox_confirmed(ob, "a3"), 1);
    ck_assert_int_eq(boutbox_confirmed(ob, "a3"), 0); /* a late second answer */
    ck_assert_int_eq(boutbox_delivered(ob, cursor), 1);
    ck_assert_int_eq(boutbox_depth(ob), 0);
    boutbox_close(ob);
}
END_TEST

/* After a reconnect the cursor starts again at 0: the heads go again, in order, and what
 * waits behind them still waits. */
START_TEST(reconnect_resends_heads_only)
{
    struct boutbox *ob;
    int64_t cursor = 0;

    ck_assert_int_eq(boutbox_open(path, 0, true, &ob), 0);
    put(ob, "a1", TWIN_A);
    put(ob, "b1", TWIN_B);
    put(ob, "a2", TWIN_A);
    ck_assert_int_eq(boutbox_commit(ob), 0);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "b1");
    cursor = 0;
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "b1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "");
    boutbox_close(ob);
}
END_TEST

/* The cloud never answers (a device it does not know): resent when overdue, set aside after
 * resend_max resends, and the device's next report goes. */
START_TEST(unanswered_is_set_aside)
{
    struct boutbox *ob;
    int64_t cursor = 0;

    ck_assert_int_eq(boutbox_open(path, 2, true, &ob), 0);
    put(ob, "a1", TWIN_A);
    put(ob, "a2", TWIN_A);
    ck_assert_int_eq(boutbox_commit(ob), 0);
    ck_assert_str_eq(send_next(ob, &cursor, 0), "a1");
    ck_assert_str_eq(send_next(ob, &cursor, 0), "a1"); /* resend 1 */
    ck_assert_str_eq(send_next(ob, &cursor, 0), "a1"); /* resend 2 */
    ck_assert_int_eq(boutbox_given_up(ob), 0);
    ck_assert_str_eq(send_next(ob, &cursor, 0), "a2"); /* a1 set aside */
    ck_assert_int_eq(boutbox_given_up(ob), 1);
    ck_assert_int_eq(boutbox_depth(ob), 1);
    ck_assert_int_eq(boutbox_confirmed(ob, "a1"), 0); /* too late: nothing to remove */
    ck_assert_int_eq(boutbox_confirmed(ob, "a2"), 1);
    boutbox_close(ob);
}
END_TEST

START_TEST(resend_max_zero_resends_for_ever)
{
    struct boutbox *ob;
    int64_t cursor = 0;
    int i;

    ck_assert_int_eq(boutbox_open(path, 0, true, &ob), 0);
    put(ob, "a1", TWIN_A);
    ck_assert_int_eq(boutbox_commit(ob), 0);
    for (i = 0; i < 20; i++)
        ck_assert_str_eq(send_next(ob, &cursor, 0), "a1");
    ck_assert_int_eq(boutbox_given_up(ob), 0);
    boutbox_close(ob);
}
END_TEST

/* The order is on disk: a restart (or kill -9 after the commit) keeps the waiting entry
 * waiting, and the answer to the first one still lets it go. */
START_TEST(order_survives_restart)
{
    struct boutbox *ob;
    int64_t cursor = 0;

    ck_assert_int_eq(boutbox_open(path, 0, true, &ob), 0);
    put(ob, "a1", TWIN_A);
    put(ob, "a2", TWIN_A);
    ck_assert_int_eq(boutbox_commit(ob), 0);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    boutbox_close(ob);

    cursor = 0;
    ck_assert_int_eq(boutbox_open(path, 0, true, &ob), 0);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "");
    ck_assert_int_eq(boutbox_confirmed(ob, "a1"), 1);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a2");
    boutbox_close(ob);
}
END_TEST

/* A bridge.db written by the previous release (no subject/blocked/resends columns) is taken
 * over: its rows are still sent, and new rows are ordered. */
START_TEST(older_database_is_migrated)
{
    struct boutbox *ob;
    sqlite3 *db;
    int64_t cursor = 0;

    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db,
                     "CREATE TABLE kedge_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "msg_id TEXT NOT NULL UNIQUE, msg TEXT NOT NULL, kind INTEGER NOT NULL, "
                     "created_ms INTEGER NOT NULL, sent_ms INTEGER NOT NULL DEFAULT 0);"
                     "INSERT INTO kedge_outbox (msg_id, msg, kind, created_ms) VALUES "
                     "('old', '{}', 1, 1);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    ck_assert_int_eq(boutbox_open(path, 0, true, &ob), 0);
    put(ob, "a1", TWIN_A);
    put(ob, "a2", TWIN_A);
    ck_assert_int_eq(boutbox_commit(ob), 0);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "old");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "");
    ck_assert_int_eq(boutbox_confirmed(ob, "old"), 1);
    ck_assert_int_eq(boutbox_confirmed(ob, "a1"), 1);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a2");
    boutbox_close(ob);

    ck_assert_int_eq(boutbox_open(path, 0, true, &ob), 0); /* a second open migrates nothing */
    ck_assert_int_eq(boutbox_depth(ob), 1);
    boutbox_close(ob);
}
END_TEST

/* A cloud that never answers state/update (v1.15-v1.18): state reports are fire entries,
 * delivered once the cloud has read them, and never wait for each other. */
START_TEST(state_reports_without_answers)
{
    struct boutbox *ob;
    int64_t cursor = 0;

    ck_assert_int_eq(boutbox_open(path, 1, false, &ob), 0);
    put(ob, "s1", "device/a/state/update");
    put(ob, "s2", "device/a/state/update");
    ck_assert_int_eq(boutbox_commit(ob), 0);
    ck_assert_str_eq(send_next(ob, &cursor, 0), "s1");
    ck_assert_str_eq(send_next(ob, &cursor, 0), "s2");
    ck_assert_str_eq(send_next(ob, &cursor, 0), "");
    ck_assert_int_eq(boutbox_delivered(ob, cursor), 2);
    ck_assert_int_eq(boutbox_given_up(ob), 0);
    boutbox_close(ob);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("boutbox");
    TCase *tc = tcase_create("order");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, one_in_flight_per_device);
    tcase_add_test(tc, reconnect_resends_heads_only);
    tcase_add_test(tc, unanswered_is_set_aside);
    tcase_add_test(tc, resend_max_zero_resends_for_ever);
    tcase_add_test(tc, order_survives_restart);
    tcase_add_test(tc, older_database_is_migrated);
    tcase_add_test(tc, state_reports_without_answers);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
