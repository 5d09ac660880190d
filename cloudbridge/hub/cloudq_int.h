/* The bridge queue's insides, shared by cloudq.c (storage, sending, refusals, figures) and
 * cloudq_put.c (putting: coalescing, the seen guard, the upload budget, retries). cloudq_put.c
 * calls into cloudq.c, never the other way round. */
#ifndef KEDGE_CLOUDQ_INT_H
#define KEDGE_CLOUDQ_INT_H

#include <sqlite3.h>

#include "cloudq.h"
#include "kedge/log.h"
#include "kedge/msg.h"

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_PUT,
    ST_TAIL,
    ST_MERGE,
    ST_DEL_SUBJECT,
    ST_SEEN_GET,
    ST_SEEN_SET,
    ST_OLDEST_UPLOAD,
    ST_READY,
    ST_NEXT,
    ST_RESEND,
    ST_DELIVERED,
    ST_MARK,
    ST_UNHOLD,
    ST_CONFIRM,
    ST_FAILED,
    ST_BY_MSG_ID,
    ST_DROP,
    ST_DROP_OLDEST,
    ST_DEPTH,
    ST_OLDEST,
    ST_KV_GET,
    ST_KV_SET,
    ST_UNPROVE,
    ST_SWEEP,
    ST_COUNT
};

struct cloudq {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    bool in_txn, failed;
    struct cloudq_opts o;
    int64_t upload_bytes;  /* committed uploads' bytes (a SUM at open, then kept up to date) */
    int64_t txn_bytes;     /* their change in the open batch, applied when it commits */
    int64_t written_upto;  /* highest id written on the current link (0: none, or no link) */
    struct cloudq_stats n; /* counters since open */
    struct kedge_ratelimit dead_rl, drop_rl, fail_rl, err_rl;
};

/* KEDGE_ESTORE after logging what failed with SQLite's message. */
int cq_fail(struct cloudq *ob, const char *what);
/* Reset statement `which` and its bindings / step it once to completion (0 or KEDGE_ESTORE). */
void cq_done(struct cloudq *ob, int which);
int cq_run(struct cloudq *ob, int which);
/* Open the batch (BEGIN IMMEDIATE) unless it is open. 0 or KEDGE_ESTORE. */
int cq_begin(struct cloudq *ob);
/* The uploads' bytes changed by delta (in the open batch, or now). */
void cq_account(struct cloudq *ob, int64_t delta);
/* Measure the uploads' bytes on disk again. 0 or KEDGE_ESTORE. */
int cq_sum_uploads(struct cloudq *ob);
enum cloudq_kind cq_kind_of(const struct cloudq *ob, const struct kedge_msg *m);

#endif
