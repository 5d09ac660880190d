/* The bridge queue's insides, shared by outbox.c (storage, sending, refusals, figures) and
 * outboxput.c (putting: coalescing, the seen guard, the upload budget, retries). outboxput.c
 * calls into outbox.c, never the other way round. */
#ifndef KEDGE_OUTBOX_INT_H
#define KEDGE_OUTBOX_INT_H

#include <sqlite3.h>

#include "bridge.h"
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

struct boutbox {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    bool in_txn, failed;
    struct boutbox_opts o;
    int64_t upload_bytes;   /* committed uploads' bytes (a SUM at open, then kept up to date) */
    int64_t txn_bytes;      /* their change in the open batch, applied when it commits */
    int64_t written_upto;   /* highest id written on the current link (0: none, or no link) */
    struct boutbox_stats n; /* counters since open */
    struct kedge_ratelimit dead_rl, drop_rl, fail_rl, err_rl;
};

/* KEDGE_ESTORE after logging what failed with SQLite's message. */
int ob_fail(struct boutbox *ob, const char *what);
/* Reset statement `which` and its bindings / step it once to completion (0 or KEDGE_ESTORE). */
void ob_done(struct boutbox *ob, int which);
int ob_run(struct boutbox *ob, int which);
/* Open the batch (BEGIN IMMEDIATE) unless it is open. 0 or KEDGE_ESTORE. */
int ob_begin(struct boutbox *ob);
/* The uploads' bytes changed by delta (in the open batch, or now). */
void ob_account(struct boutbox *ob, int64_t delta);
/* Measure the uploads' bytes on disk again. 0 or KEDGE_ESTORE. */
int ob_sum_uploads(struct boutbox *ob);
enum outbox_kind ob_kind_of(const struct boutbox *ob, const struct kedge_msg *m);

#endif
