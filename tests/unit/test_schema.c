/* include/kedge/schema.h against the recorded edgecore databases in tests/fixtures: every
 * edgecore table kedge creates has exactly the columns (name, type, NOT NULL, default, key)
 * the fixtures' edgecore DDL gives it, and kedge's scripts run on such a database unchanged.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "kedge/buf.h"
#include "kedge/schema.h"
#include "unit.h"

static const char *const fixtures[] = {
    KEDGE_UNIT_FIXTURES "/edgecore-meta.sql", /* a v1.22 node's edgecore.db, all tables */
    KEDGE_UNIT_FIXTURES "/edgecore-seed.sql", /* the recorded cases' DB: device tables */
};

static sqlite3 *open_with(const char *sql)
{
    sqlite3 *db;
    char *err = NULL;

    ck_assert_int_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s", err ? err : "?");
    return db;
}

static sqlite3 *open_fixture(const char *path)
{
    struct kedge_buf sql = KEDGE_BUF_INIT;
    sqlite3 *db;

    unit_read_file(path, &sql);
    db = open_with(sql.data);
    kedge_buf_cleanup(&sql);
    return db;
}

/* The table's columns, one "name type notnull default pk;" each, into out. Empty: no table. */
static void columns(sqlite3 *db, const char *table, struct kedge_buf *out)
{
    char sql[128];
    sqlite3_stmt *st;

    kedge_buf_reset(out);
    (void)snprintf(sql, sizeof(sql), "PRAGMA table_info(`%s`)", table);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int i;
        for (i = 1; i <= 5; i++) {
            const char *v = (const char *)sqlite3_column_text(st, i);
            ck_assert_int_eq(kedge_buf_printf(out, "%s%c", v ? v : "NULL", i < 5 ? ' ' : ';'), 0);
        }
    }
    ck_assert_int_eq(sqlite3_finalize(st), SQLITE_OK);
}

/* A table both sides have must be column for column the same. */
static void same_table(sqlite3 *ours, sqlite3 *theirs, const char *table, int *compared)
{
    struct kedge_buf a = KEDGE_BUF_INIT, b = KEDGE_BUF_INIT;

    columns(theirs, table, &b);
    if (b.len) {
        columns(ours, table, &a);
        ck_assert_msg(a.len && !strcmp(a.data, b.data), "%s differs:\n ours: %s\nfixture: %s",
                      table, a.len ? a.data : "(none)", b.data);
        (*compared)++;
    }
    kedge_buf_cleanup(&a);
    kedge_buf_cleanup(&b);
}

START_TEST(edgecore_tables_match_fixture)
{
    static const char *const tables[] = {"device", "device_attr", "device_twin", "meta",
                                         "sub_topics"};
    sqlite3 *ours = open_with(KEDGE_SCHEMA_PLUGIN KEDGE_DDL_META);
    sqlite3 *theirs = open_fixture(fixtures[_i]);
    size_t i;
    int compared = 0;

    for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        same_table(ours, theirs, tables[i], &compared);
    ck_assert_int_ge(compared, 3); /* both fixtures hold at least the device tables */
    ck_assert_int_eq(sqlite3_close(ours), SQLITE_OK);
    ck_assert_int_eq(sqlite3_close(theirs), SQLITE_OK);
}
END_TEST

/* An existing edgecore.db takes every script as it is (IF NOT EXISTS everywhere) and keeps its
 * rows. */
START_TEST(scripts_run_on_edgecore_db)
{
    sqlite3 *db = open_fixture(fixtures[0]);
    char *err = NULL;

    ck_assert_msg(sqlite3_exec(db,
                               KEDGE_SCHEMA_PLUGIN KEDGE_SCHEMA_META KEDGE_DDL_BRIDGE_QUEUE
                                   KEDGE_DDL_DEAD_LETTERS KEDGE_SCHEMA_PLUGIN,
                               NULL, NULL, &err) == SQLITE_OK,
                  "%s", err ? err : "?");
    ck_assert_int_eq(sqlite3_exec(db, "SELECT 1 FROM meta LIMIT 1", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}
END_TEST

static Suite *schema_suite(void)
{
    Suite *s = suite_create("schema");
    TCase *tc = tcase_create("schema");

    tcase_add_loop_test(tc, edgecore_tables_match_fixture, 0,
                        sizeof(fixtures) / sizeof(fixtures[0]));
    tcase_add_test(tc, scripts_run_on_edgecore_db);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(schema_suite());
}
