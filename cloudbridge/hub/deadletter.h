/* The bridge queue's dead letters (deadletter.c): private to cloudq.c, which owns the
 * database handle. Every function works on kedge_outbox / kedge_dead of that handle and is
 * atomic on its own (a SAVEPOINT), inside or outside the caller's transaction. */
#ifndef KEDGE_DEADLETTER_H
#define KEDGE_DEADLETTER_H

#include <sqlite3.h>

#include "cloudq.h"

/* Create kedge_dead if missing. 0 or KEDGE_ESTORE. */
int dead_init(sqlite3 *db);
/* Move queue row id (kedge_outbox) to the dead letters with reason, in one savepoint.
 * *upload_bytes: the row's bytes when it was an upload (no subject), else 0.
 * 1 moved, 0 no such row, KEDGE_ESTORE. */
int dead_move(sqlite3 *db, int64_t id, const char *reason, int64_t *upload_bytes);
/* How many dead letters there are, or -1. */
int64_t dead_count(sqlite3 *db);
/* The oldest `limit` dead letters (fn sees each with its message), or the one with id
 * (dead_get: 1 found, 0 none). fn returning < 0 stops the walk with that value. */
int dead_list(sqlite3 *db, long limit, cloudq_row_fn fn, void *ctx);
int dead_get(sqlite3 *db, int64_t id, cloudq_row_fn fn, void *ctx);
/* The queue's oldest `limit` rows (without their messages), or row id with its message. */
int queue_list(sqlite3 *db, long limit, cloudq_row_fn fn, void *ctx);
int queue_get(sqlite3 *db, int64_t id, cloudq_row_fn fn, void *ctx);
/* Delete dead letter id. 1, 0 (none), KEDGE_ESTORE. */
int dead_delete(sqlite3 *db, int64_t id);

#endif
