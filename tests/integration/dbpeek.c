/* tests/integration/dbpeek.h */
#include <check.h>
#include <inttypes.h>
#include <sqlite3.h>

#include "dbpeek.h"
#include "harness.h"
#include "proc.h"
#include "testsupport.h"

int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v;

    ck_assert_msg(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK,
                  "cannot open %s", path);
    sqlite3_busy_timeout(db, kh_scale_ms(5000));
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

void db_wait_int(const char *path, const char *sql, int64_t want, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms), got;

    while ((got = db_int(path, sql)) != want) {
        ck_assert_msg(kt_now_ms() < deadline, "%s: %" PRId64 ", expected %" PRId64, sql, got, want);
        kt_pause_ms(20);
    }
}
