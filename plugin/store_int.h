/* The store's insides, shared by its three files only (the connection and transaction, the
 * device tables, the outbox's table). Nothing outside the store includes this.
 */
#ifndef KEDGE_STORE_INT_H
#define KEDGE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* Every statement is prepared once at open (store.c's stmt_sql). */
enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_TWIN_INSERT,
    ST_TWIN_UPDATE,
    ST_DEVICE_STATE,
    ST_LOAD_DEVICES,
    ST_LOAD_ATTRS,
    ST_LOAD_TWINS,
    ST_ONE_DEVICE,
    ST_ONE_ATTRS,
    ST_ONE_TWINS,
    ST_DEVICE_INSERT,
    ST_DEVICE_DELETE,
    ST_DEVICE_ATTRS_DELETE,
    ST_DEVICE_TWINS_DELETE,
    ST_ATTR_INSERT,
    ST_ATTR_UPDATE,
    ST_ATTR_DELETE,
    ST_OUTBOX_INSERT,
    ST_OUTBOX_DELETE,
    ST_OUTBOX_DELETE_ONE,
    ST_OUTBOX_GONE,
    ST_OUTBOX_TALLY,
    ST_OUTBOX_FIND,
    ST_OUTBOX_UPLOAD_NEXT,
    ST_OUTBOX_LIST,
    ST_OUTBOX_GET,
    ST_OUTBOX_AFTER,
    ST_OUTBOX_STATS,
    ST_OUTBOX_OLDEST,
    ST_SUBTOPIC_INSERT,
    ST_SUBTOPIC_DELETE,
    ST_SUBTOPIC_LOAD,
    ST_DB_BYTES,
    ST_TWIN_COUNTS,
    ST_COUNT
};

struct store {
    sqlite3 *db;
    bool exclusive;
    sqlite3_stmt *st[ST_COUNT];
    char *path;
    bool sync_full;
    bool in_txn, failed;
    size_t pending;
    uint64_t oldest_ms;
    int wal_pages;
    uint64_t last_checkpoint_ms;
    char error[256];
};

/* store.c: a write joins the open transaction (BEGIN on the first); finish steps a bound write
 * statement, and a failure poisons the batch. step_error maps a final sqlite3_step code. */
int store_begin_write(struct store *s);
int store_finish_write(struct store *s, sqlite3_stmt *st, const char *what);
int store_step_error(struct store *s, int rc, const char *what);
/* A write of one or two text parameters (b NULL: one). */
int store_exec_bound(struct store *s, enum stmt_id which, const char *what, const char *a,
                     const char *b);

#endif
