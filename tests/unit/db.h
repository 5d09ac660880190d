/* Scratch SQLite databases for the store and devicetwin suites: a per-test directory under
 * /tmp, a DB made from KubeEdge's beego-era DDL plus the recorded cases' seed, and a second
 * connection to look at (or interfere with) what the plugin wrote.
 */
#ifndef KEDGE_UNIT_DB_H
#define KEDGE_UNIT_DB_H

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "kedge/buf.h"
#include "unit.h"

#define UNIT_SEED_SQL KEDGE_UNIT_FIXTURES "/edgecore-seed.sql"
#define UNIT_CASES_JSON KEDGE_UNIT_FIXTURES "/edgecore-cases.json"

struct unit_db {
    char dir[64];
    char path[128];
};

static inline void unit_db_init(struct unit_db *u)
{
    (void)snprintf(u->dir, sizeof(u->dir), "/tmp/kedge-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(u->dir));
    (void)snprintf(u->path, sizeof(u->path), "%s/edgecore.db", u->dir);
}

/* Remove the directory and whatever SQLite left in it (-wal, -shm). */
static inline void unit_db_cleanup(struct unit_db *u)
{
    DIR *d = opendir(u->dir);
    struct dirent *e;
    char p[400];

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        (void)snprintf(p, sizeof(p), "%s/%s", u->dir, e->d_name);
        (void)unlink(p);
    }
    (void)closedir(d);
    (void)rmdir(u->dir);
}

/* Run SQL on the DB through a connection of its own (busy timeout: the plugin's connection
 * may be checkpointing). */
static inline void unit_db_exec(const struct unit_db *u, const char *sql)
{
    sqlite3 *db;
    char *err = NULL;

    ck_assert_int_eq(sqlite3_open(u->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", sql,
                  err ? err : "?");
    sqlite3_free(err);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

/* The DB edgecore recorded its cases on: beego DDL, conf-dev-1 with six twins, conf-dev-2. */
static inline void unit_db_seed(const struct unit_db *u)
{
    struct kedge_buf sql = KEDGE_BUF_INIT;

    unit_read_file(UNIT_SEED_SQL, &sql);
    unit_db_exec(u, sql.data);
    kedge_buf_cleanup(&sql);
}

/* The first column of the first row as text ("NULL" for SQL NULL, "" for no row), in buf. */
static inline const char *unit_db_text(const struct unit_db *u, const char *sql, char *buf,
                                       size_t size)
{
    sqlite3 *db;
    sqlite3_stmt *st;

    ck_assert_int_eq(sqlite3_open_v2(u->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    buf[0] = '\0';
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        (void)snprintf(buf, size, "%s", t ? (const char *)t : "NULL");
    }
    sqlite3_finalize(st);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
    return buf;
}

static inline void unit_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

#endif
