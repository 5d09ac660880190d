/* The plugin's half of the durable hand-off to kedge-bridge (include/kedge/ke.h).
 *
 * A cloud-bound message is a row in kedge_outbox, inserted in the same transaction as the
 * change that caused it; rows leave only when the bridge acks them ($ke/ack/{seq}) after
 * storing them itself. Committed rows are offered in seq order, at most KE_WINDOW at a time,
 * to the accepted bridge's client id, so delivery to the bridge is at-least-once and in order.
 * Twin and state reports are state, folded per resource (kedge/coalesce.h) and never refused;
 * uploads are events, bounded by plugin_opt_max_upload_bytes, _upload_budget_bytes and
 * _outbox_max under plugin_opt_upload_policy.
 */
#ifndef KEDGE_OUTBOX_H
#define KEDGE_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/ke.h"
#include "options.h"
#include "replies.h"
#include "store.h"

struct outbox_mem {
    int64_t seq;
    char *msg;
    size_t len;
};

/* Since the broker started (kedge-ctl status, $SYS/kedge/{node}/plugin). */
struct outbox_counters {
    int64_t uploads_refused;     /* budget or row bound full, policy refuse */
    int64_t uploads_dropped;     /* stored uploads dropped for newer ones, policy drop-oldest */
    int64_t uploads_oversize;    /* over plugin_opt_max_upload_bytes */
    int64_t dropped_by_operator; /* kedge-ctl outbox drop */
    int64_t coalesced;           /* twin/state reports folded into a waiting one */
};

struct outbox {
    struct store *store;
    const struct publisher *pub; /* offers go out through it */
    long max_rows;               /* plugin_opt_outbox_max: waiting uploads */
    int64_t budget;              /* plugin_opt_upload_budget_bytes */
    int64_t max_upload;          /* plugin_opt_max_upload_bytes */
    bool drop_oldest;            /* plugin_opt_upload_policy */
    bool refusing;               /* an upload was refused since the queue last had room (a log) */
    int64_t depth;               /* committed entries */
    int64_t pending_adds;        /* entries inserted in the open batch (net of those it deleted) */
    int64_t pending_dels;        /* committed entries deleted in the open batch */
    int64_t committed_seq;       /* highest committed seq */
    int64_t batch_seq;           /* highest seq inserted in the open batch, 0: none */
    struct store_outbox_tally held; /* the table as the open batch sees it */
    struct outbox_counters n;
    int64_t last_sent; /* highest seq offered to the bridge in this session */
    int inflight;      /* offered, not yet acked: offered[] from off_head */
    int off_head;
    int64_t offered[KE_WINDOW];
    int64_t acked;        /* highest seq the bridge acked in this session */
    uint64_t progress_ms; /* monotonic ms of the last offer or ack: a stall re-offers */
    char *bridge_client;  /* client id of the accepted bridge, NULL when none */
    int64_t last_ack_ms;  /* wall clock of the bridge's last ack, 0 never */
    /* this batch's entries, offered from memory right after their commit (no read-back);
     * mem_full: one was not kept, so later ones are not either (mem stays a prefix) */
    struct outbox_mem *mem;
    size_t n_mem, cap_mem, mem_bytes;
    bool mem_full;
};

/* (Re)start on the store's table: counters since start survive a reopen. store and pub are
 * borrowed and must outlive ob. 0 or KEDGE_ESTORE (a broken store is fine: 0). */
int outbox_init(struct outbox *ob, struct store *store, const struct plugin_config *cfg,
                const struct publisher *pub);
void outbox_cleanup(struct outbox *ob);
/* A twin or state report to the cloud (twin/resource/update on resource, content JSON): folded
 * into the entry waiting for the same resource (kedge/coalesce.h), which it replaces with a new
 * seq in the open batch. Never refused. 0, KEDGE_ESTORE, -ENOMEM. */
int outbox_add_state(struct outbox *ob, const char *resource, const char *content_json,
                     size_t content_len);
/* An upload (bus/user/upload on topic, payload as a JSON string) from client_id (for logs).
 * 0; KEDGE_ETOOBIG over plugin_opt_max_upload_bytes; KEDGE_EFULL when it does not fit and the
 * policy is refuse (drop-oldest drops the oldest waiting uploads instead); KEDGE_ESTORE;
 * -ENOMEM. Refusals are counted and logged (rate-limited) here. */
int outbox_add_upload(struct outbox *ob, const char *client_id, const char *topic,
                      const char *payload, size_t len);
/* kedge-ctl outbox drop: delete one entry in the open batch, counted and logged.
 * 0, -ENOENT, KEDGE_ESTORE. */
int outbox_drop(struct outbox *ob, int64_t seq);
/* After a commit: account for the batch (failed: its inserts never happened) and offer
 * entries to the bridge up to the window. */
void outbox_committed(struct outbox *ob, int commit_rc);
void outbox_pump(struct outbox *ob);
/* A bridge was accepted (hello): re-offer from the oldest unacked entry. */
int outbox_bridge_up(struct outbox *ob, const char *client_id);
void outbox_bridge_down(struct outbox *ob, const char *client_id);
bool outbox_is_bridge(const struct outbox *ob, const char *client_id);
/* $ke/ack/{seq}: the bridge stored every entry up to seq; delete them in the open batch. */
void outbox_ack(struct outbox *ob, int64_t seq);
/* From the tick: offers unanswered for a few seconds are offered again (QoS 0 offers can be
 * dropped by the broker under pressure; the bridge drops duplicates). */
void outbox_check_stall(struct outbox *ob, uint64_t now_ms);
/* Wall-clock ms of the oldest waiting entry, 0 when empty. */
int64_t outbox_oldest_ms(struct outbox *ob);

#endif
