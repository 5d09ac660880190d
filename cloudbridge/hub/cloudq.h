/* The cloud queue: the bridge's durable queue of messages to the cloud (SQLite, WAL), what the
 * relay stores from the plugin and EdgeHub sends. An entry leaves only once the cloud proved it
 * read it (fire entries: a PONG after them) or answered it (confirm entries: twin/state);
 * what the cloud keeps refusing is set aside as a dead letter, never dropped silently.
 * cloudq.c stores, sends and counts; cloudq_put.c puts (coalescing, budget); deadletter.c
 * keeps what the cloud refused; cloudq_ctl.c answers the operator's $ke/bctl requests.
 * The tables keep their names (kedge_outbox, kedge_subject_seen, kedge_outbox_kv, kedge_dead):
 * existing databases open as they are.
 */
#ifndef KEDGE_CLOUDQ_H
#define KEDGE_CLOUDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"

enum cloudq_kind {
    CLOUDQ_FIRE = 0,    /* delivered once the cloud has read it (uploads, requests) */
    CLOUDQ_CONFIRM = 1, /* kept until the cloud answers with parent_msg_id (twin, state);
                         * its subject is its resource: one per subject is on the link */
};

struct cloudq_entry {
    int64_t id;
    char *msg_id;
    char *msg; /* the beehive message JSON */
    size_t len;
    enum cloudq_kind kind;
    int64_t resends; /* unanswered resends so far (confirm entries) */
    bool resend;     /* cloudq_next picked it because its answer is overdue */
    bool held;       /* a fire entry the cloud answered "error": sent again after resend_s */
};

struct cloudq_opts {
    long resend_max;      /* unanswered resends before an entry is a dead letter (0: never) */
    bool state_answered;  /* the cloud answers state/update (v1.19+): state reports are
                           * confirm entries; otherwise fire entries (nothing would confirm) */
    int64_t budget_bytes; /* bytes of queued uploads (0: unbounded) */
    bool drop_oldest;     /* budget full: drop the oldest uploads; else refuse the new one */
    long poison_after;    /* refusals by the cloud before an entry is a dead letter (0: never) */
};

/* One row as an operator sees it (queue or dead letters); strings are borrowed for the call. */
struct cloudq_row {
    int64_t id;
    const char *msg_id, *resource;
    const char *reason; /* dead letters: why; queue: the last refusal, or "" */
    const char *msg;    /* "" in lists */
    size_t len;
    enum cloudq_kind kind;
    bool subject;   /* twin/state: one per resource, coalesced */
    bool in_flight; /* on the link, the cloud's answer awaited */
    bool blocked;   /* waits behind its subject's entry on the link */
    int64_t bytes, created_ms, dead_ms, failures;
};
typedef int (*cloudq_row_fn)(void *ctx, const struct cloudq_row *row);

struct cloudq_stats {
    int64_t depth, oldest_ms;
    int64_t upload_bytes, budget_bytes;
    int64_t uploads_dropped;     /* by drop-oldest, or larger than the whole budget */
    int64_t coalesced;           /* reports merged into a waiting one of their subject */
    int64_t stale_dropped;       /* re-offers older than what their subject took */
    int64_t set_aside;           /* moved to the dead letters (any reason) */
    int64_t dead_letters;        /* in the dead-letter table now (-1: unknown) */
    int64_t failures;            /* refusals counted (link closed on an entry, "error") */
    int64_t dropped_by_operator; /* queue rows and dead letters */
};

struct cloudq;

int cloudq_open(const char *path, const struct cloudq_opts *opts, struct cloudq **out);
void cloudq_close(struct cloudq *ob);
/* Store a message from the plugin (its seq; 0: none) into the open batch. Twin/state reports
 * coalesce per resource (at most one on the link and one waiting); one with a seq not above
 * the highest its resource took is dropped (a re-offer: newer state is queued). Uploads are
 * deduplicated by msg_id and bounded by budget_bytes. 0 (stored, merged or dropped: ack it),
 * KEDGE_EFULL (an upload over the budget with the refuse policy: do not ack it, nor anything
 * after it; the batch so far stays good), -ENOMEM, KEDGE_ESCHEMA, KEDGE_ESTORE. */
int cloudq_put(struct cloudq *ob, const char *msg, size_t len, int64_t seq);
/* COMMIT the open batch. 0 or KEDGE_ESTORE (then nothing of the batch is stored). */
int cloudq_commit(struct cloudq *ob);
/* The next entry to send: a confirm entry that became its subject's head (the one before it
 * was confirmed) at or before id `after`, else the next sendable entry after `after`, else an
 * entry sent resend_ms ago and still unanswered (or answered "error"). Entries that wait
 * behind an older one of their subject are never returned; an overdue entry past resend_max
 * resends becomes a dead letter instead (logged, counted). Returns 1 (filled; cleanup with
 * cloudq_entry_cleanup), 0 (none), or an error. */
int cloudq_next(struct cloudq *ob, int64_t after, uint64_t resend_ms, struct cloudq_entry *e);
void cloudq_entry_cleanup(struct cloudq_entry *e);
/* The entry went out on the link: confirm entries are remembered (resent after resend_ms);
 * fire entries wait for cloudq_delivered. 0 or KEDGE_ESTORE. */
int cloudq_sent(struct cloudq *ob, const struct cloudq_entry *e);
/* The cloud has read every fire entry up to id upto (a PONG to a PING sent after them):
 * they leave the queue (its depth, lists and budget at once; the rows themselves after a
 * grace, cloudq_sweep, so that an "error" answer coming after the PONG still finds them).
 * Returns how many left, or KEDGE_ESTORE. */
int cloudq_delivered(struct cloudq *ob, int64_t upto);
/* Delete the delivered rows older than grace_ms (PROOF_GRACE_MS; the relay's tick calls it).
 * Returns how many, or KEDGE_ESTORE. */
int cloudq_sweep(struct cloudq *ob, uint64_t grace_ms);
#define CLOUDQ_PROOF_GRACE_MS 3000
/* The cloud answered msg_id: the entry leaves and the next one of its subject may go.
 * Returns 1 if an entry was removed, 0 if none matched, or KEDGE_ESTORE. */
int cloudq_confirmed(struct cloudq *ob, const char *msg_id);
/* The cloud closed the link (or it broke) with entry id written and not proven read: one more
 * failure for it (persisted), why in its reason, plus the failure that started probe mode if
 * one is pending (cloudq_set_probe). At poison_after failures it becomes a dead letter with
 * reason "<why> (N times)". 1 (now a dead letter), 0 (counted, or no such entry),
 * KEDGE_ESTORE. */
int cloudq_blame(struct cloudq *ob, int64_t id, const char *why);
/* The cloud answered msg_id with operation "error" (why: its content): one more failure; the
 * entry goes again after resend_s, or becomes a dead letter at poison_after. 1, 0, -ENOENT
 * (no such entry), KEDGE_ESTORE. */
int cloudq_refused(struct cloudq *ob, const char *msg_id, const char *why);
/* Probe mode (edgehub.c): the highest id that was written but not proven read when a link
 * failed with several entries in doubt; 0 when not probing. Persisted, so a restart probes on.
 * Setting a boundary also keeps that failure pending for the entry the probe finds (its next
 * cloudq_blame counts it); setting 0 forgets it. 0 or KEDGE_ESTORE. */
int64_t cloudq_probe_upto(struct cloudq *ob);
/* The plugin's hello says the highest seq its database ever gave (last_seq). A mark of the
 * newest entry taken per subject above it can only come from a database since replaced (the
 * plugin's numbers start over with a new kedge.db): those marks are forgotten, or every twin
 * report of those devices would be dropped as stale. Returns how many, or KEDGE_ESTORE. */
int cloudq_plugin_seq(struct cloudq *ob, int64_t last_seq);
int cloudq_set_probe(struct cloudq *ob, int64_t upto);
/* Entries moved to the dead letters since the queue was opened. */
int64_t cloudq_given_up(const struct cloudq *ob);
/* A new link: nothing is written on it yet (everything unconfirmed goes again; a state report
 * not yet written on this link is merged in place rather than moved to the tail). */
void cloudq_reset_sent(struct cloudq *ob);
int64_t cloudq_depth(struct cloudq *ob);
/* created_ms (wall) of the oldest entry, 0 when empty. */
int64_t cloudq_oldest_ms(struct cloudq *ob);
void cloudq_stats(struct cloudq *ob, struct cloudq_stats *st);
/* The operator's view and hands. list: the oldest `limit` rows; show: one with its message
 * (1 found, 0 none); drop: 1 dropped (logged, counted), 0 none; retry: the dead letter goes
 * back to the queue's tail with no failures (a twin/state one under its subject's newer
 * values), 0, -ENOENT, -EBUSY (its subject's report is on the link: retry after its answer).
 * Errors are KEDGE_ESTORE or -ENOMEM. */
int cloudq_list(struct cloudq *ob, long limit, cloudq_row_fn fn, void *ctx);
int cloudq_show(struct cloudq *ob, int64_t id, cloudq_row_fn fn, void *ctx);
int cloudq_drop(struct cloudq *ob, int64_t id);
int cloudq_dead_list(struct cloudq *ob, long limit, cloudq_row_fn fn, void *ctx);
int cloudq_dead_show(struct cloudq *ob, int64_t id, cloudq_row_fn fn, void *ctx);
int cloudq_dead_drop(struct cloudq *ob, int64_t id);
int cloudq_dead_retry(struct cloudq *ob, int64_t id);

/* An operator's request on $ke/bctl/{ref} (include/kedge/ke.h): the answer's JSON into out.
 * 0, or -ENOMEM (then out is unusable). Bad requests are answered {"code":400,...}. */
int cloudq_ctl_handle(struct cloudq *ob, const char *req, size_t len, struct kedge_buf *out);

#endif
