/* cloudbridge/hub/cloudq.c: the bridge's durable queue to the cloud. What is checked here is the
 * order the cloud sees: one twin/state message of a device in flight at a time (cloudcore
 * applies concurrently what it reads, so a second one sent early can land first), devices
 * independent of each other, resends of overdue answers, the entry set aside after resend_max
 * unanswered resends, blocked entries surviving a restart, and a database from an older bridge
 * taken over without losing its rows. Then issue 13: twin/state reports coalesced (at most two
 * rows per device and kind, the one on the link untouched), re-offers older than what a device
 * took dropped, the upload byte budget under both policies, dead letters (set aside, poison by
 * repeated failures, error answers) that an operator lists, retries and drops, and the probe
 * boundary kept across a reopen.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cloudq.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "cloudq_fixture.h"
#include "unit.h"

START_TEST(one_in_flight_per_device)
{
    struct cloudq *ob;
    int64_t cursor = 0;

    ob = open_ob(0, true);
    put_commit(ob, "a1", TWIN_A);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    put(ob, "a2", TWIN_A);
    put(ob, "b1", TWIN_B);
    put(ob, "up1", "node/n/upload");
    commit(ob);

    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "b1"); /* a2 waits for a1's answer */
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "up1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "");
    ck_assert_int_eq(cloudq_confirmed(ob, "a1"), 1);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a2"); /* behind the cursor, now head */
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "");
    put(ob, "a3", TWIN_A); /* a2 on the link: a3 waits behind it */
    commit(ob);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "");
    ck_assert_int_eq(cloudq_confirmed(ob, "b1"), 1);
    ck_assert_int_eq(cloudq_confirmed(ob, "a2"), 1);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a3");
    ck_assert_int_eq(cloudq_confirmed(ob, "a3"), 1);
    ck_assert_int_eq(cloudq_confirmed(ob, "a3"), 0); /* a late second answer */
    ck_assert_int_eq(cloudq_delivered(ob, cursor), 1);
    ck_assert_int_eq(cloudq_depth(ob), 0);
    cloudq_close(ob);
}
END_TEST

/* After a reconnect the cursor starts again at 0: the heads go again, in order, and what
 * waits behind them still waits. */
START_TEST(reconnect_resends_heads_only)
{
    struct cloudq *ob;
    int64_t cursor = 0;

    ob = open_ob(0, true);
    put(ob, "a1", TWIN_A);
    put(ob, "b1", TWIN_B);
    commit(ob);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "b1");
    put_commit(ob, "a2", TWIN_A);
    cursor = 0;
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "b1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "");
    cloudq_close(ob);
}
END_TEST

/* The cloud never answers (a device it does not know): resent when overdue, set aside after
 * resend_max resends, and the device's next report goes. */
START_TEST(unanswered_is_set_aside)
{
    struct cloudq *ob;
    int64_t cursor = 0;

    ob = open_ob(2, true);
    put_commit(ob, "a1", TWIN_A);
    ck_assert_str_eq(send_next(ob, &cursor, 0), "a1");
    put_commit(ob, "a2", TWIN_A);
    ck_assert_str_eq(send_next(ob, &cursor, 0), "a1"); /* resend 1 */
    ck_assert_str_eq(send_next(ob, &cursor, 0), "a1"); /* resend 2 */
    ck_assert_int_eq(cloudq_given_up(ob), 0);
    ck_assert_str_eq(send_next(ob, &cursor, 0), "a2"); /* a1 set aside */
    ck_assert_int_eq(cloudq_given_up(ob), 1);
    ck_assert_int_eq(cloudq_depth(ob), 1);
    ck_assert_int_eq(cloudq_confirmed(ob, "a1"), 0); /* too late: nothing to remove */
    ck_assert_int_eq(cloudq_confirmed(ob, "a2"), 1);
    expect_dead(ob, "a1", "no answer from the cloud in 2 resends");
    cloudq_close(ob);
}
END_TEST

START_TEST(resend_max_zero_resends_for_ever)
{
    struct cloudq *ob;
    int64_t cursor = 0;
    int i;

    ob = open_ob(0, true);
    put_commit(ob, "a1", TWIN_A);
    for (i = 0; i < 20; i++)
        ck_assert_str_eq(send_next(ob, &cursor, 0), "a1");
    ck_assert_int_eq(cloudq_given_up(ob), 0);
    cloudq_close(ob);
}
END_TEST

/* The order is on disk: a restart (or kill -9 after the commit) keeps the waiting entry
 * waiting, and the answer to the first one still lets it go. */
START_TEST(order_survives_restart)
{
    struct cloudq *ob;
    int64_t cursor = 0;

    ob = open_ob(0, true);
    put_commit(ob, "a1", TWIN_A);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    put_commit(ob, "a2", TWIN_A);
    cloudq_close(ob);

    cursor = 0;
    ob = open_ob(0, true);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "");
    ck_assert_int_eq(cloudq_confirmed(ob, "a1"), 1);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a2");
    cloudq_close(ob);
}
END_TEST

/* A bridge.db written by the previous release (no subject/blocked/resends columns) is taken
 * over: its rows are still sent, and new rows are ordered. */
START_TEST(older_database_is_migrated)
{
    struct cloudq *ob;
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

    ob = open_ob(0, true);
    put_commit(ob, "a1", TWIN_A);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "old");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    put_commit(ob, "a2", TWIN_A);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "");
    ck_assert_int_eq(cloudq_confirmed(ob, "old"), 1);
    ck_assert_int_eq(cloudq_confirmed(ob, "a1"), 1);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a2");
    cloudq_close(ob);

    ob = open_ob(0, true); /* a second open migrates nothing */
    ck_assert_int_eq(cloudq_depth(ob), 1);
    cloudq_close(ob);
}
END_TEST

/* A cloud that never answers state/update (v1.15-v1.18): state reports are fire entries,
 * delivered once the cloud has read them, and never wait for each other. */
START_TEST(state_reports_without_answers)
{
    struct cloudq *ob;
    int64_t cursor = 0;

    ob = open_ob(1, false);
    put_commit(ob, "s1", "device/a/state/update");
    ck_assert_str_eq(send_next(ob, &cursor, 0), "s1");
    put(ob, "s2", "device/a/state/update"); /* replaces s1 (written, unproven) at the tail */
    put(ob, "up", "node/n/upload");
    put(ob, "s3", "device/a/state/update"); /* s2 is not on the link: merged in its place */
    commit(ob);
    ck_assert_int_eq(cloudq_depth(ob), 2);
    ck_assert_str_eq(send_next(ob, &cursor, 0), "s3"); /* not behind the upload */
    ck_assert_str_eq(send_next(ob, &cursor, 0), "up");
    ck_assert_str_eq(send_next(ob, &cursor, 0), "");
    ck_assert_int_eq(cloudq_delivered(ob, cursor), 2);
    ck_assert_int_eq(cloudq_given_up(ob), 0);
    cloudq_close(ob);
}
END_TEST

/* Twin reports of one device: the one on the link stays as it was sent, everything after it
 * merges into one waiting row (later keys win, earlier keys kept), so a device never has more
 * than two rows however long the cloud takes. */
START_TEST(twin_reports_coalesce)
{
    struct cloudq *ob = open_ob(0, true);
    struct cloudq_stats st;
    struct rows r;
    int64_t cursor = 0;

    put_twin(ob, "a1", "t1", "v1");
    commit(ob);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    put_twin(ob, "a2", "t2", "v2");
    put_twin(ob, "a3", "t1", "v3");
    put_twin(ob, "a4", "t3", "v4");
    commit(ob);

    r = queue_rows(ob);
    ck_assert_int_eq(r.n, 2);
    ck_assert_str_eq(r.msg_id[0], "a1");
    ck_assert(r.in_flight[0]);
    ck_assert_str_eq(r.msg_id[1], "a4"); /* the newest header */
    ck_assert(r.blocked[1]);
    cloudq_stats(ob, &st);
    ck_assert_int_eq(st.coalesced, 2);
    {
        struct rows one = {0};
        ck_assert_int_eq(cloudq_show(ob, r.id[0], grab, &one), 1);
        ck_assert_ptr_nonnull(strstr(one.msg[0], "\"v1\"")); /* on the link: untouched */
        ck_assert_ptr_null(strstr(one.msg[0], "\"t2\""));
        memset(&one, 0, sizeof(one));
        ck_assert_int_eq(cloudq_show(ob, r.id[1], grab, &one), 1);
        ck_assert_ptr_nonnull(strstr(one.msg[0], "\"t2\":")); /* merged: every key, latest */
        ck_assert_ptr_nonnull(strstr(one.msg[0], "\"t3\":"));
        ck_assert_ptr_nonnull(strstr(one.msg[0], "\"v3\""));
        ck_assert_ptr_null(strstr(one.msg[0], "\"v1\""));
    }
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "");
    ck_assert_int_eq(cloudq_confirmed(ob, "a1"), 1);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a4");
    cloudq_close(ob);
}
END_TEST

/* A new kedge.db numbers its entries from 1 again; its hello says so (last_seq), and the marks
 * above it are forgotten, so the devices' reports are taken again instead of dropped as stale. */
START_TEST(new_plugin_db_resets_marks)
{
    struct cloudq *ob = open_ob(0, true);
    struct cloudq_stats st;
    const char *c = "{\"event_id\":\"e\",\"timestamp\":1,\"twin\":{}}";

    ck_assert_int_eq(put_raw(ob, "a500", TWIN_A, c, 500), 0);
    ck_assert_int_eq(put_raw(ob, "b5", TWIN_B, c, 5), 0);
    commit(ob);
    ck_assert_int_eq(cloudq_plugin_seq(ob, 600), 0); /* the same database: nothing forgotten */
    ck_assert_int_eq(cloudq_plugin_seq(ob, 7), 1);   /* a new one: A's mark goes, B's stays */
    ck_assert_int_eq(put_raw(ob, "a3", TWIN_A, c, 3), 0);
    ck_assert_int_eq(put_raw(ob, "b4", TWIN_B, c, 4), 0);
    commit(ob);
    cloudq_stats(ob, &st);
    ck_assert_int_eq(st.stale_dropped, 1); /* b4 only */
    ck_assert_int_gt(id_of(ob, "a3"), 0);
    cloudq_close(ob);
}
END_TEST

/* A re-offer (kill -9 before the ack reached the plugin) older than what the device took is
 * dropped, also after a restart: it must never overwrite the newer value merged since. */
START_TEST(stale_reoffer_dropped)
{
    struct cloudq *ob = open_ob(0, true);
    struct cloudq_stats st;
    const char *c = "{\"event_id\":\"e\",\"timestamp\":1,\"twin\":{}}";

    ck_assert_int_eq(put_raw(ob, "a10", TWIN_A, c, 10), 0);
    commit(ob);
    ck_assert_int_eq(put_raw(ob, "a9", TWIN_A, c, 9), 0);    /* older */
    ck_assert_int_eq(put_raw(ob, "a10b", TWIN_A, c, 10), 0); /* the same seq again */
    ck_assert_int_eq(put_raw(ob, "b9", TWIN_B, c, 9), 0);    /* other devices are their own */
    commit(ob);
    cloudq_stats(ob, &st);
    ck_assert_int_eq(st.stale_dropped, 2);
    ck_assert_int_eq(id_of(ob, "a10") > 0, 1);
    ck_assert_int_eq(cloudq_depth(ob), 2);
    cloudq_close(ob);

    ob = open_ob(0, true);
    ck_assert_int_eq(put_raw(ob, "a10c", TWIN_A, c, 10), 0);
    ck_assert_int_eq(put_raw(ob, "a11", TWIN_A, c, 11), 0);
    commit(ob);
    ck_assert_int_eq(cloudq_depth(ob), 2);
    ck_assert_int_eq(id_of(ob, "a11") > 0, 1); /* merged into a10's row */
    cloudq_close(ob);
}
END_TEST

/* refuse: the upload that does not fit is refused (the plugin keeps it), twin reports never;
 * room comes back when uploads reach the cloud. The count is right after a reopen. */
START_TEST(budget_refuse)
{
    struct cloudq *ob = open_budget(3 * upload_len() + 10, false);
    struct cloudq_stats st;
    int64_t cursor = 0;

    ck_assert_int_eq(put_upload(ob, "u01"), 0);
    ck_assert_int_eq(put_upload(ob, "u02"), 0);
    ck_assert_int_eq(put_upload(ob, "u03"), 0);
    ck_assert_int_eq(put_upload(ob, "u04"), KEDGE_EFULL);
    put_twin(ob, "a1", "t1", "v1");
    commit(ob);
    cloudq_stats(ob, &st);
    ck_assert_int_eq(st.upload_bytes, 3 * upload_len());
    ck_assert_int_eq(st.uploads_dropped, 0);
    ck_assert_int_eq(cloudq_depth(ob), 4);
    cloudq_close(ob);

    ob = open_budget(3 * upload_len() + 10, false);
    cloudq_stats(ob, &st);
    ck_assert_int_eq(st.upload_bytes, 3 * upload_len());
    ck_assert_int_eq(put_upload(ob, "u04"), KEDGE_EFULL);
    commit(ob);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "u01");
    ck_assert_int_eq(cloudq_delivered(ob, cursor), 1);
    ck_assert_int_eq(put_upload(ob, "u04"), 0);
    commit(ob);
    cloudq_stats(ob, &st);
    ck_assert_int_eq(st.upload_bytes, 3 * upload_len());
    cloudq_close(ob);
}
END_TEST

/* drop-oldest: the oldest uploads go (counted), the newest are kept in order; an upload larger
 * than the whole budget is dropped, never queued. */
START_TEST(budget_drop_oldest)
{
    struct cloudq *ob = open_budget(3 * upload_len() + 10, true);
    struct cloudq_stats st;
    int64_t cursor = 0;
    static const char *ids[] = {"u01", "u02", "u03", "u04", "u05"};
    size_t i;

    for (i = 0; i < 5; i++)
        ck_assert_int_eq(put_upload(ob, ids[i]), 0);
    put_twin(ob, "a1", "t1", "v1");
    commit(ob);
    cloudq_stats(ob, &st);
    ck_assert_int_eq(st.uploads_dropped, 2);
    ck_assert_int_eq(st.upload_bytes, 3 * upload_len());
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "u03");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "u04");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "u05");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    cloudq_close(ob);

    ob = open_budget(upload_len() - 1, true);
    ck_assert_int_eq(put_upload(ob, "u06"), 0);
    commit(ob);
    cloudq_stats(ob, &st);
    ck_assert_int_eq(st.uploads_dropped, 1);
    ck_assert_int_eq(cloudq_depth(ob), 4); /* u03..u05 and a1 from before; not u06 */
    cloudq_close(ob);
}
END_TEST

/* Poison by link failures (edgehub.c blames the entry in doubt): counted on disk, so a restart
 * in between still counts; the third makes a dead letter and the queue moves on. */
int main(void)
{
    Suite *s = suite_create("cloudq");
    TCase *tc = tcase_create("order");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, one_in_flight_per_device);
    tcase_add_test(tc, reconnect_resends_heads_only);
    tcase_add_test(tc, unanswered_is_set_aside);
    tcase_add_test(tc, resend_max_zero_resends_for_ever);
    tcase_add_test(tc, order_survives_restart);
    tcase_add_test(tc, older_database_is_migrated);
    tcase_add_test(tc, state_reports_without_answers);
    tcase_add_test(tc, twin_reports_coalesce);
    tcase_add_test(tc, stale_reoffer_dropped);
    tcase_add_test(tc, new_plugin_db_resets_marks);
    tcase_add_test(tc, budget_refuse);
    tcase_add_test(tc, budget_drop_oldest);
    cloudq_dead_letter_tests(tc);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
