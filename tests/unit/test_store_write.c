/* The store suite (test_store.c): writing twins and device state in batches, the outbox and the
 * cloud's subscriptions.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/twin.h"
#include "registry.h"
#include "store.h"
#include "db.h"
#include "store_fixture.h"
#include "unit.h"

/* ---- writing ------------------------------------------------------------------------------ */

/* What an update writes, column by column, and that it reads back the same. */
START_TEST(write_commit_reload)
{
    struct kedge_device *d;
    struct kedge_twin t, *r;
    char buf[256];

    open_seeded();
    ck_assert_int_eq(store_load_device(st, "conf-dev-1", &d), 0);
    ck_assert_int_eq(kedge_twin_copy(&t, device_twin_find(d, "temperature")), 0);
    kedge_device_free(d);
    kedge_free(t.actual.value);
    t.actual.value = kedge_strdup("25");
    t.actual.ts = 1700000000123;
    t.av.edge = 1;
    t.optional = true;
    kedge_free(t.meta_col);
    t.meta_col = kedge_strdup("{}");
    ck_assert_uint_eq(store_pending(st), 0);
    ck_assert_int_eq(store_twin_update(st, "conf-dev-1", &t), 0);
    ck_assert_uint_eq(store_pending(st), 1);
    /* the store's own connection sees the open batch; nobody else does yet */
    ck_assert_int_eq(store_load_device(st, "conf-dev-1", &d), 0);
    ck_assert_str_eq(device_twin_find(d, "temperature")->actual.value, "25");
    kedge_device_free(d);
    ck_assert_str_eq(unit_db_text(&db, "SELECT actual FROM device_twin WHERE name='temperature'",
                                  buf, sizeof(buf)),
                     "21");
    ck_assert_int_eq(store_commit(st), 0);
    ck_assert_uint_eq(store_pending(st), 0);
    ck_assert_str_eq(unit_db_text(&db,
                                  "SELECT actual || '|' || actual_meta || '|' || "
                                  "actual_version || '|' || expected_version || '|' || "
                                  "optional || '|' || attr_type || '|' || metadata FROM "
                                  "device_twin WHERE name='temperature'",
                                  buf, sizeof(buf)),
                     "25|{\"timestamp\":1700000000123}|{\"cloud\":0,\"edge\":1}|"
                     "{\"cloud\":0,\"edge\":0}|1|int|{}");
    ck_assert_int_eq(store_load_device(st, "conf-dev-1", &d), 0);
    r = device_twin_find(d, "temperature");
    assert_value(&r->actual, "25", 1700000000123);
    assert_value(&r->expected, "20", T0);
    ck_assert_int_eq(r->av.edge, 1);
    ck_assert(r->optional);
    ck_assert_str_eq(r->meta_col, "{}");
    kedge_device_free(d);
    kedge_twin_cleanup(&t);
}
END_TEST

/* A deleted twin: NULL values and metas, type "deleted", versions kept. */
START_TEST(write_deleted_twin)
{
    struct kedge_device *d;
    struct kedge_twin t;
    char buf[256];

    open_seeded();
    ck_assert_int_eq(store_load_device(st, "conf-dev-1", &d), 0);
    ck_assert_int_eq(kedge_twin_copy(&t, device_twin_find(d, "optkey")), 0);
    kedge_device_free(d);
    kedge_free(t.expected.value);
    kedge_free(t.actual.value);
    memset(&t.expected, 0, sizeof(t.expected));
    memset(&t.actual, 0, sizeof(t.actual));
    t.expected.present = t.actual.present = true;
    t.ev.edge = t.av.edge = 1;
    ck_assert_int_eq(kedge_twin_set_type(&t, "deleted"), 0); /* types may be shared strings */
    ck_assert_int_eq(store_twin_update(st, "conf-dev-1", &t), 0);
    ck_assert_int_eq(store_commit(st), 0);
    ck_assert_str_eq(unit_db_text(&db,
                                  "SELECT quote(expected) || '|' || quote(actual) || '|' || "
                                  "quote(expected_meta) || '|' || quote(actual_meta) || '|' "
                                  "|| expected_version || '|' || attr_type FROM device_twin "
                                  "WHERE name='optkey'",
                                  buf, sizeof(buf)),
                     "NULL|NULL|NULL|NULL|{\"cloud\":0,\"edge\":1}|deleted");
    ck_assert_int_eq(store_load_device(st, "conf-dev-1", &d), 0);
    ck_assert(!device_twin_find(d, "optkey")->expected.present);
    ck_assert_str_eq(device_twin_find(d, "optkey")->type, "deleted");
    kedge_device_free(d);
    kedge_twin_cleanup(&t);
}
END_TEST

/* A new twin (edgecore's dealTwinAdd row): versions only for what was given. */
START_TEST(insert_twin)
{
    struct kedge_device *d;
    struct kedge_twin t;
    char buf[256];

    open_seeded();
    memset(&t, 0, sizeof(t));
    t.name = kedge_strdup("newint");
    t.actual.present = t.actual.has_meta = true;
    t.actual.value = kedge_strdup("7");
    t.actual.ts = 1700000000999;
    t.has_av = true;
    t.av.edge = 1;
    t.has_optional = t.optional = true;
    t.has_meta = true;
    t.type = kedge_strdup("int");
    t.meta_col = kedge_strdup("{}");
    ck_assert_int_eq(store_twin_insert(st, "conf-dev-2", &t), 0);
    ck_assert_int_eq(store_commit(st), 0);
    ck_assert_str_eq(
        unit_db_text(&db,
                     "SELECT quote(expected) || '|' || actual || '|' || "
                     "actual_meta || '|' || quote(expected_version) || '|' || "
                     "actual_version || '|' || optional || '|' || attr_type || "
                     "'|' || metadata || '|' || quote(description) FROM "
                     "device_twin WHERE deviceid='conf-dev-2'",
                     buf, sizeof(buf)),
        "NULL|7|{\"timestamp\":1700000000999}|''|{\"cloud\":0,\"edge\":1}|1|int|{}|''");
    ck_assert_int_eq(store_load_device(st, "conf-dev-2", &d), 0);
    ck_assert_uint_eq(d->n_twins, 1);
    assert_value(&d->twins[0].actual, "7", 1700000000999);
    ck_assert(!d->twins[0].has_ev && d->twins[0].has_av);
    kedge_device_free(d);
    kedge_twin_cleanup(&t);
}
END_TEST

START_TEST(device_state)
{
    char buf[256];
    struct kedge_device *d;

    open_seeded();
    ck_assert_int_eq(store_device_state(st, "conf-dev-1", "Online", "2024-05-01T10:00:00Z"), 0);
    ck_assert_int_eq(store_commit(st), 0);
    ck_assert_str_eq(unit_db_text(&db,
                                  "SELECT state || '|' || last_online FROM device WHERE "
                                  "id='conf-dev-1'",
                                  buf, sizeof(buf)),
                     "Online|2024-05-01T10:00:00Z");
    ck_assert_int_eq(store_load_device(st, "conf-dev-1", &d), 0);
    ck_assert_str_eq(d->state, "Online");
    ck_assert_str_eq(d->last_online, "2024-05-01T10:00:00Z");
    kedge_device_free(d);
}
END_TEST

/* Several writes, one transaction: all of them or none. */
START_TEST(batch_commits_together)
{
    struct kedge_device *d;
    char buf[64];
    size_t i;

    open_seeded();
    ck_assert_int_eq(store_load_device(st, "conf-dev-1", &d), 0);
    for (i = 0; i < d->n_twins; i++) {
        kedge_free(d->twins[i].actual.value);
        d->twins[i].actual.value = kedge_strdup("9");
        ck_assert_int_eq(store_twin_update(st, "conf-dev-1", &d->twins[i]), 0);
    }
    ck_assert_uint_eq(store_pending(st), 6);
    ck_assert_str_eq(
        unit_db_text(&db, "SELECT count(*) FROM device_twin WHERE actual='9'", buf, sizeof(buf)),
        "0");
    ck_assert_int_eq(store_commit(st), 0);
    ck_assert_str_eq(
        unit_db_text(&db, "SELECT count(*) FROM device_twin WHERE actual='9'", buf, sizeof(buf)),
        "6");
    ck_assert_int_eq(store_commit(st), 0); /* nothing pending */
    kedge_device_free(d);
}
END_TEST

/* A write that fails poisons its batch: later writes refuse, the commit rolls everything
 * back (the earlier, successful write too), and the next batch works again. */
START_TEST(failed_batch_rolls_back)
{
    struct kedge_device *d;
    char buf[64];

    open_seeded();
    unit_db_exec(&db, "CREATE TRIGGER fail_label BEFORE UPDATE ON device_twin WHEN "
                      "NEW.name = 'label' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    ck_assert_int_eq(store_load_device(st, "conf-dev-1", &d), 0);
    kedge_free(device_twin_find(d, "temperature")->actual.value);
    device_twin_find(d, "temperature")->actual.value = kedge_strdup("99");
    ck_assert_int_eq(store_twin_update(st, "conf-dev-1", device_twin_find(d, "temperature")), 0);
    ck_assert_int_eq(store_twin_update(st, "conf-dev-1", device_twin_find(d, "label")),
                     KEDGE_ESTORE);
    ck_assert_ptr_nonnull(strstr(store_error(st), "injected failure"));
    ck_assert_int_eq(store_twin_update(st, "conf-dev-1", device_twin_find(d, "humidity")),
                     KEDGE_ESTORE);
    ck_assert_int_eq(store_device_state(st, "conf-dev-1", "online", ""), KEDGE_ESTORE);
    ck_assert_uint_ge(store_pending(st), 2);
    ck_assert_int_eq(store_commit(st), KEDGE_ESTORE);
    ck_assert_uint_eq(store_pending(st), 0);
    kedge_device_free(d);
    ck_assert_int_eq(store_load_device(st, "conf-dev-1", &d), 0);
    ck_assert_str_eq(device_twin_find(d, "temperature")->actual.value, "21");
    ck_assert_str_eq(unit_db_text(&db, "SELECT actual FROM device_twin WHERE name='temperature'",
                                  buf, sizeof(buf)),
                     "21");
    /* the next batch is a fresh one */
    unit_db_exec(&db, "DROP TRIGGER fail_label");
    ck_assert_int_eq(store_twin_update(st, "conf-dev-1", device_twin_find(d, "label")), 0);
    ck_assert_int_eq(store_commit(st), 0);
    kedge_device_free(d);
    ck_assert(store_ok(st));
}
END_TEST

/* ---- the outbox and the cloud's subscriptions ------------------------------------------------ */

struct seen {
    int n;
    int64_t seq[8];
    char msg[8][32];
};

static void on_entry(void *ctx, int64_t seq, const char *msg, size_t len)
{
    struct seen *s = ctx;

    ck_assert_int_lt(s->n, 8);
    s->seq[s->n] = seq;
    (void)snprintf(s->msg[s->n], sizeof(s->msg[0]), "%.*s", (int)len, msg);
    s->n++;
}

START_TEST(outbox_round_trip)
{
    struct seen seen = {0};
    struct store_outbox_tally gone = {0};
    int64_t seq[3], count, oldest;

    open_seeded();
    ck_assert_int_eq(store_outbox_insert(st, NULL, "{\"a\":1}", 7, &seq[0]), 0);
    ck_assert_int_eq(store_outbox_insert(st, NULL, "{\"b\":2}xx", 7, &seq[1]), 0);
    ck_assert_int_eq(store_outbox_after(st, 0, 10, on_entry, &seen), KEDGE_ESTORE); /* open */
    ck_assert_int_eq(store_commit(st), 0);
    ck_assert_int_lt(seq[0], seq[1]);
    ck_assert_int_eq(store_outbox_after(st, 0, 10, on_entry, &seen), 2);
    ck_assert_int_eq(seen.seq[0], seq[0]);
    ck_assert_str_eq(seen.msg[0], "{\"a\":1}");
    ck_assert_str_eq(seen.msg[1], "{\"b\":2}");
    ck_assert_int_eq(store_outbox_stats(st, &count, &oldest), 0);
    ck_assert_int_eq(count, 2);
    ck_assert_int_gt(oldest, 0);
    ck_assert_int_eq(store_outbox_delete(st, seq[0], &gone), 1); /* acks are cumulative */
    ck_assert_int_eq(store_outbox_delete(st, seq[0], &gone), 0); /* nothing left up to seq[0] */
    ck_assert_int_eq(gone.uploads, 1);
    ck_assert_int_eq(gone.upload_bytes, 7);
    ck_assert_int_eq(store_commit(st), 0);
    seen.n = 0;
    ck_assert_int_eq(store_outbox_after(st, 0, 10, on_entry, &seen), 1);
    ck_assert_int_eq(seen.seq[0], seq[1]);
    /* a rolled-back insert never happened */
    unit_db_exec(&db, "CREATE TRIGGER no_outbox BEFORE INSERT ON kedge_outbox WHEN NEW.msg = 'x' "
                      "BEGIN SELECT RAISE(ABORT, 'no'); END;");
    ck_assert_int_eq(store_outbox_insert(st, NULL, "ok", 2, &seq[2]), 0);
    ck_assert_int_eq(store_outbox_insert(st, NULL, "x", 1, &seq[2]), KEDGE_ESTORE);
    ck_assert_int_eq(seq[2], 0);
    ck_assert_int_eq(store_commit(st), KEDGE_ESTORE);
    seen.n = 0;
    ck_assert_int_eq(store_outbox_after(st, 0, 10, on_entry, &seen), 1);
}
END_TEST

static int on_row(void *ctx, const struct store_outbox_row *r)
{
    struct kedge_buf *b = ctx;

    return kedge_buf_printf(b, "%lld:%d:%lld:%.*s;", (long long)r->seq, r->state,
                            (long long)r->bytes, (int)r->len, r->msg);
}

/* The query plan's detail for sql contains want. */
static void assert_plan(const char *sql, const char *want)
{
    struct kedge_buf q = KEDGE_BUF_INIT, plan = KEDGE_BUF_INIT;
    sqlite3 *h;
    sqlite3_stmt *p;

    ck_assert_int_eq(kedge_buf_printf(&q, "EXPLAIN QUERY PLAN %s", sql), 0);
    ck_assert_int_eq(sqlite3_open_v2(db.path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(h, q.data, -1, &p, NULL), SQLITE_OK);
    while (sqlite3_step(p) == SQLITE_ROW)
        ck_assert_int_eq(kedge_buf_printf(&plan, "%s;", sqlite3_column_text(p, 3)), 0);
    sqlite3_finalize(p);
    sqlite3_close(h);
    ck_assert_msg(plan.data && strstr(plan.data, want), "plan: %s", plan.data ? plan.data : "");
    kedge_buf_cleanup(&q);
    kedge_buf_cleanup(&plan);
}

/* Subjects: found (own uncommitted rows included, newest first), counted apart from uploads,
 * the oldest upload found past twin rows, one entry deleted with what it held. */
START_TEST(outbox_subjects)
{
    struct store_outbox_tally t, gone = {0};
    struct kedge_buf msg = KEDGE_BUF_INIT, listed = KEDGE_BUF_INIT;
    int64_t s1, s2, u1, found, bytes;
    char buf[64];

    open_seeded();
    ck_assert_int_eq(store_outbox_insert(st, "device/a/twin/edge_updated", "A1", 2, &s1), 0);
    ck_assert_int_eq(store_outbox_insert(st, NULL, "upload-1", 8, &u1), 0);
    ck_assert_int_eq(store_outbox_find(st, "device/a/twin/edge_updated", &found, &msg), 0);
    ck_assert_int_eq(found, s1);
    ASSERT_BUF(&msg, "A1");
    ck_assert_int_eq(store_outbox_find(st, "device/b/twin/edge_updated", &found, &msg), 0);
    ck_assert_int_eq(found, 0);
    ck_assert_int_eq(store_commit(st), 0);
    ck_assert_int_eq(store_outbox_insert(st, "device/a/twin/edge_updated", "A2", 2, &s2), 0);
    kedge_buf_reset(&msg);
    ck_assert_int_eq(store_outbox_find(st, "device/a/twin/edge_updated", &found, &msg), 0);
    ck_assert_int_eq(found, s2); /* the newest, uncommitted */
    ASSERT_BUF(&msg, "A2");
    ck_assert_int_eq(store_outbox_tally(st, &t), 0);
    ck_assert_int_eq(t.states, 2);
    ck_assert_int_eq(t.uploads, 1);
    ck_assert_int_eq(t.upload_bytes, 8);
    ck_assert_int_eq(store_outbox_next_upload(st, 0, &found, &bytes), 1);
    ck_assert_int_eq(found, u1);
    ck_assert_int_eq(bytes, 8);
    ck_assert_int_eq(store_outbox_next_upload(st, u1, &found, &bytes), 0);
    ck_assert_int_eq(store_outbox_delete_one(st, s1, &gone), 1);
    ck_assert_int_eq(gone.states, 1);
    ck_assert_int_eq(gone.uploads, 0);
    ck_assert_int_eq(store_outbox_delete_one(st, s1, &gone), 0);
    ck_assert_int_eq(store_outbox_list(st, 10, on_row, &listed), 0);
    ck_assert_int_eq(store_commit(st), 0);
    (void)snprintf(buf, sizeof(buf), "%lld:0:8:upload-1;%lld:1:2:A2;", (long long)u1,
                   (long long)s2);
    ASSERT_BUF(&listed, buf);
    kedge_buf_reset(&listed);
    ck_assert_int_eq(store_outbox_get(st, s2, on_row, &listed), 0);
    ck_assert_int_eq(store_outbox_get(st, s1, on_row, &listed), -ENOENT);
    ck_assert_str_eq(unit_db_text(&db,
                                  "SELECT subject FROM kedge_outbox WHERE seq = (SELECT "
                                  "max(seq) FROM kedge_outbox)",
                                  buf, sizeof(buf)),
                     "device/a/twin/edge_updated");
    /* the subject lookup goes through the partial index, not a scan */
    assert_plan("SELECT seq, msg FROM kedge_outbox WHERE subject = ?1 ORDER BY seq DESC LIMIT 1",
                "USING INDEX kedge_outbox_subject (subject=?)");
    kedge_buf_cleanup(&msg);
    kedge_buf_cleanup(&listed);
}
END_TEST

/* A kedge.db from before coalescing: its outbox gains subject and bytes, and its rows (all
 * uploads then) are sized from their messages. */
START_TEST(outbox_migrates_old_table)
{
    struct store_outbox_tally t;
    char buf[64];

    unit_db_seed(&db);
    unit_db_exec(&db,
                 "CREATE TABLE kedge_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                 "msg TEXT NOT NULL, created_ms INTEGER NOT NULL);"
                 "INSERT INTO kedge_outbox (msg, created_ms) VALUES ('{\"x\":\"\xc3\xa9\"}', 1);"
                 "INSERT INTO kedge_outbox (msg, created_ms) VALUES ('{\"route\":{\"source\":"
                 "\"twin\",\"resource\":\"device/default/a/twin/edge_updated\"}}', 2);"
                 "INSERT INTO kedge_outbox (msg, created_ms) VALUES ('{\"route\":{\"source\":"
                 "\"twin\",\"resource\":\"device/default/a/state/update\"}}', 3);"
                 "INSERT INTO kedge_outbox (msg, created_ms) VALUES ('{\"route\":{\"source\":"
                 "\"bus\",\"resource\":\"device/x/twin/edge_updated\"}}', 4);"
                 "INSERT INTO kedge_outbox (msg, created_ms) VALUES ('not json', 5);");
    open_store();
    ck_assert_int_eq(store_outbox_tally(st, &t), 0);
    ck_assert_int_eq(t.uploads, 3); /* the upload, a bus message, one that does not parse */
    ck_assert_int_eq(t.upload_bytes, 10 + 66 + 8); /* bytes, not characters */
    ck_assert_int_eq(t.states, 2);
    ck_assert_str_eq(
        unit_db_text(&db, "SELECT subject FROM kedge_outbox WHERE seq = 2", buf, sizeof(buf)),
        "device/default/a/twin/edge_updated");
    ck_assert_str_eq(unit_db_text(&db,
                                  "SELECT count(*) FROM pragma_index_list('kedge_outbox') "
                                  "WHERE name = 'kedge_outbox_subject'",
                                  buf, sizeof(buf)),
                     "1");
}
END_TEST

static int on_topic(void *ctx, const char *topic)
{
    struct kedge_buf *b = ctx;

    return kedge_buf_printf(b, "%s;", topic);
}

START_TEST(subtopics_round_trip)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    open_seeded();
    ck_assert_int_eq(store_subtopic(st, "default/user/a", true), 0);
    ck_assert_int_eq(store_subtopic(st, "default/user/a", true), 0); /* INSERT OR IGNORE */
    ck_assert_int_eq(store_subtopic(st, "x/#", true), 0);
    ck_assert_int_eq(store_commit(st), 0);
    ck_assert_int_eq(store_subtopic(st, "x/#", false), 0);
    ck_assert_int_eq(store_commit(st), 0);
    ck_assert_int_eq(store_subtopics_load(st, on_topic, &b), 0);
    ASSERT_BUF(&b, "default/user/a;");
    kedge_buf_cleanup(&b);
}
END_TEST

void store_write_tests(TCase *write)
{
    tcase_add_test(write, write_commit_reload);
    tcase_add_test(write, write_deleted_twin);
    tcase_add_test(write, insert_twin);
    tcase_add_test(write, device_state);
    tcase_add_test(write, batch_commits_together);
    tcase_add_test(write, failed_batch_rolls_back);
    tcase_add_test(write, outbox_round_trip);
    tcase_add_test(write, outbox_subjects);
    tcase_add_test(write, outbox_migrates_old_table);
    tcase_add_test(write, subtopics_round_trip);
}
