/* The plugin's half of the durable hand-off to kedge-bridge (include/kedge/ke.h).
 *
 * A cloud-bound message is a row in kedge_outbox, inserted in the same transaction as the
 * change that caused it, so a twin result that says success always has its cloud message on
 * disk too. Rows leave only when the bridge acks them ($ke/ack/{seq}), which it does after
 * storing them itself. Committed rows are offered in seq order, at most KE_WINDOW at a time,
 * straight to the accepted bridge's client id; a new hello (bridge reconnect, broker restart)
 * offers again from the oldest unacked row. So delivery to the bridge is at-least-once and
 * in order; the bridge drops duplicates by msg_id.
 *
 * The hot path never reads the table back: a batch's entries are kept in memory until their
 * commit and offered from there when the bridge is caught up; the depth is counted in memory.
 * The table is read only to catch up (after a hello, or when the window was full).
 *
 * Twin and state reports are state (issue 13): a new one is folded into the entry still
 * waiting for the same resource, which leaves the table in the same transaction, and the
 * merged entry gets a new seq. A new seq, not an update in place: the old seq may already be
 * offered, acks are cumulative by seq, and the bridge folds on its side too. So the state part
 * of the queue is bounded by devices x 2 however long the bridge is away, and is never
 * refused. Uploads are events: kept in order, each under plugin_opt_max_upload_bytes, all of
 * them under plugin_opt_upload_budget_bytes and plugin_opt_outbox_max rows, with the
 * operator's policy for one that does not fit. The byte and row figures are counted in memory
 * (as the open batch sees the table), read from the table only at open and after a failed
 * commit, so the broker never scans the table per message.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/coalesce.h"
#include "kedge/json.h"
#include "kedge/ke.h"
#include "kedge/log.h"
#include "kedge/msg.h"
#include "kedge/util.h"
#include "outbox.h"

static struct kedge_ratelimit store_rl = KEDGE_RATELIMIT_INIT(10000, 5);

static struct kedge_ratelimit refuse_rl = KEDGE_RATELIMIT_INIT(10000, 3);
static struct kedge_ratelimit drop_rl = KEDGE_RATELIMIT_INIT(10000, 3);
static struct kedge_ratelimit merge_rl = KEDGE_RATELIMIT_INIT(10000, 3);
static struct kedge_ratelimit again_rl = KEDGE_RATELIMIT_INIT(10000, 3);

/* Memory copies of one batch at most: a flood of large QoS 0 uploads must not hold their
 * bytes twice in the broker; past this the table read catches up. */
#define MEM_MAX_BYTES (4u << 20)

static void mem_clear(struct outbox *ob)
{
    while (ob->n_mem)
        kedge_free(ob->mem[--ob->n_mem].msg);
    ob->mem_full = false;
    ob->mem_bytes = 0;
}

/* What the table holds, and where its seqs stand, read again (at open, after a failed
 * commit: the batch never happened). */
static int reread(struct outbox *ob)
{
    int rc = store_outbox_stats(ob->store, &ob->depth, &ob->committed_seq);

    if (rc == 0)
        rc = store_outbox_tally(ob->store, &ob->held);
    return rc;
}

int outbox_init(struct outbox *ob, struct store *store, const struct plugin_config *cfg,
                const struct publisher *pub)
{
    struct outbox_counters n = ob->n;

    outbox_cleanup(ob);
    ob->n = n;
    ob->store = store;
    ob->pub = pub;
    ob->max_rows = cfg->outbox_max;
    ob->budget = cfg->upload_budget_bytes;
    ob->max_upload = cfg->max_upload_bytes;
    ob->drop_oldest = cfg->upload_policy && !strcmp(cfg->upload_policy, "drop-oldest");
    if (!store_ok(store))
        return 0;
    return reread(ob);
}

void outbox_cleanup(struct outbox *ob)
{
    mem_clear(ob);
    kedge_free(ob->mem);
    kedge_free(ob->bridge_client);
    memset(ob, 0, sizeof(*ob));
}

int64_t outbox_oldest_ms(struct outbox *ob)
{
    return ob->depth ? store_outbox_oldest_ms(ob->store) : 0;
}

/* Keep a copy for the offer after commit; without memory the table read catches up. Once one
 * is not kept, later ones are not either: what is offered from memory must be a prefix. */
static void mem_keep(struct outbox *ob, int64_t seq, const char *msg, size_t len)
{
    struct outbox_mem *nm;

    if (ob->mem_full || ob->mem_bytes + len > MEM_MAX_BYTES) {
        ob->mem_full = true;
        return;
    }
    if (ob->n_mem == ob->cap_mem) {
        size_t cap = ob->cap_mem ? ob->cap_mem * 2 : 64;
        nm = cap <= 4 * KE_WINDOW ? kedge_realloc(ob->mem, cap * sizeof(*nm)) : NULL;
        if (!nm) {
            ob->mem_full = true;
            return;
        }
        ob->mem = nm;
        ob->cap_mem = cap;
    }
    ob->mem[ob->n_mem].msg = kedge_strndup(msg, len);
    if (!ob->mem[ob->n_mem].msg) {
        ob->mem_full = true;
        return;
    }
    ob->mem[ob->n_mem].seq = seq;
    ob->mem[ob->n_mem].len = len;
    ob->n_mem++;
    ob->mem_bytes += len;
}

/* The entry seq left the table in the open batch (replaced, dropped): gone is what it held. */
static void forget(struct outbox *ob, int64_t seq, const struct store_outbox_tally *gone)
{
    size_t i;

    ob->held.uploads -= gone->uploads;
    ob->held.upload_bytes -= gone->upload_bytes;
    ob->held.states -= gone->states;
    if (seq <= ob->committed_seq) {
        ob->pending_dels++;
        return;
    }
    ob->pending_adds--; /* inserted by this very batch: it must not be offered after commit */
    for (i = 0; i < ob->n_mem; i++) {
        if (ob->mem[i].seq == seq) {
            ob->mem_bytes -= ob->mem[i].len;
            kedge_free(ob->mem[i].msg);
            memmove(&ob->mem[i], &ob->mem[i + 1], (ob->n_mem - i - 1) * sizeof(ob->mem[0]));
            ob->n_mem--;
            break;
        }
    }
}

static int delete_one(struct outbox *ob, int64_t seq)
{
    struct store_outbox_tally gone = {0};
    int rc = store_outbox_delete_one(ob->store, seq, &gone);

    if (rc > 0)
        forget(ob, seq, &gone);
    return rc < 0 ? rc : rc ? 0 : -ENOENT;
}

static int insert(struct outbox *ob, const char *subject, const char *msg, size_t len)
{
    int64_t seq;
    int rc = store_outbox_insert(ob->store, subject, msg, len, &seq);

    if (rc < 0)
        return rc;
    ob->pending_adds++;
    ob->batch_seq = seq;
    if (subject) {
        ob->held.states++;
    } else {
        ob->held.uploads++;
        ob->held.upload_bytes += (int64_t)len;
    }
    mem_keep(ob, seq, msg, len);
    return 0;
}

/* A beehive message with a fresh msg_id. */
static int encode(struct kedge_buf *b, const char *source, const char *group, const char *operation,
                  const char *resource, const char *content, size_t len)
{
    struct kedge_msg m = {0};
    int rc;

    m.source = (char *)source;
    m.group = (char *)group;
    m.operation = (char *)operation;
    m.resource = (char *)resource;
    m.content = (char *)content;
    m.content_len = len;
    rc = kedge_msg_new_id(&m);
    if (rc == 0)
        rc = kedge_msg_encode(b, &m, false);
    kedge_free(m.msg_id);
    return rc;
}

/* ---- twin and state reports: state, folded ---------------------------------------------- */

/* Fold msg into the entry waiting for resource, if any: on return *use is what to insert and
 * the older entry is gone from the table. */
static int fold(struct outbox *ob, enum kedge_coalesce_kind kind, const char *resource,
                const struct kedge_buf *msg, struct kedge_buf *merged, const struct kedge_buf **use)
{
    struct kedge_buf old = KEDGE_BUF_INIT;
    int64_t old_seq;
    int rc = store_outbox_find(ob->store, resource, &old_seq, &old);

    *use = msg;
    if (rc == 0 && old_seq) {
        rc = kedge_coalesce_merge(kind, old.data, old.len, msg->data, msg->len, merged);
        if (rc == 0) {
            *use = merged;
        } else if (rc == KEDGE_ESCHEMA) {
            kedge_log_limited(&merge_rl, "outbox", KEDGE_LOG_WARN,
                              "outbox: waiting entry seq=%" PRId64 " for %s does not merge: "
                              "replaced by the newer report",
                              old_seq, resource);
            rc = 0;
        } else {
            /* No memory to merge: keep both, the older goes first; nothing is lost. */
            old_seq = 0;
            rc = 0;
        }
    }
    if (rc == 0 && old_seq) {
        rc = delete_one(ob, old_seq);
        if (rc == 0)
            ob->n.coalesced++;
    }
    kedge_buf_cleanup(&old);
    return rc;
}

int outbox_add_state(struct outbox *ob, const char *resource, const char *content_json,
                     size_t content_len)
{
    enum kedge_coalesce_kind kind = kedge_coalesce_kind(resource);
    struct kedge_buf b = KEDGE_BUF_INIT, merged = KEDGE_BUF_INIT;
    const struct kedge_buf *use = &b;
    int rc = encode(&b, "twin", "resource", "update", resource, content_json, content_len);

    if (rc == 0 && kind != KEDGE_COALESCE_NONE)
        rc = fold(ob, kind, resource, &b, &merged, &use);
    if (rc == 0)
        rc = insert(ob, kind != KEDGE_COALESCE_NONE ? resource : NULL, use->data, use->len);
    kedge_buf_cleanup(&b);
    kedge_buf_cleanup(&merged);
    return rc;
}

/* ---- uploads: events, bounded --------------------------------------------------------------- */

static bool upload_fits(const struct outbox *ob, int64_t bytes)
{
    return ob->held.uploads < ob->max_rows && ob->held.upload_bytes + bytes <= ob->budget;
}

static int oversize(struct outbox *ob, const char *client_id, const char *topic, size_t len)
{
    ob->n.uploads_oversize++;
    kedge_log_limited(&refuse_rl, "outbox", KEDGE_LOG_WARN,
                      "outbox: upload refused client=%s topic=%s: %zu bytes, over "
                      "plugin_opt_max_upload_bytes=%" PRId64 " (or the whole budget); %" PRId64
                      " refused as oversize since start",
                      client_id, topic, len,
                      ob->max_upload < ob->budget ? ob->max_upload : ob->budget,
                      ob->n.uploads_oversize);
    return KEDGE_ETOOBIG;
}

/* Drop the oldest waiting uploads until one of bytes fits (policy drop-oldest). Only uploads
 * not yet offered to the bridge: an offered one may be stored there already, and dropping it
 * here too would count one upload as dropped that still reaches the cloud. When every waiting
 * upload is offered (a window's worth), the new one is refused instead. */
static int drop_oldest(struct outbox *ob, const char *client_id, const char *topic, int64_t bytes)
{
    int64_t after = ob->last_sent, seq, size, dropped = 0, freed = 0;
    int rc = 0;

    while (!upload_fits(ob, bytes) &&
           (rc = store_outbox_next_upload(ob->store, after, &seq, &size)) == 1) {
        rc = delete_one(ob, seq);
        if (rc < 0)
            break;
        dropped++;
        freed += size;
        after = seq;
    }
    ob->n.uploads_dropped += dropped;
    if (dropped)
        kedge_log_limited(&drop_rl, "outbox", KEDGE_LOG_WARN,
                          "outbox: dropped the oldest %" PRId64 " uploads (%" PRId64 " bytes) "
                          "for one from client=%s topic=%s (plugin_opt_upload_policy "
                          "drop-oldest); %" PRId64 " dropped since start",
                          dropped, freed, client_id, topic, ob->n.uploads_dropped);
    if (rc < 0)
        return rc;
    if (upload_fits(ob, bytes))
        return 0;
    ob->n.uploads_refused++;
    return KEDGE_EFULL;
}

static int make_room(struct outbox *ob, const char *client_id, const char *topic, int64_t bytes)
{
    if (upload_fits(ob, bytes))
        return 0;
    if (ob->drop_oldest)
        return drop_oldest(ob, client_id, topic, bytes);
    ob->n.uploads_refused++;
    ob->refusing = true;
    kedge_log_limited(&refuse_rl, "outbox", KEDGE_LOG_WARN,
                      "outbox: upload refused client=%s topic=%s (%" PRId64 " bytes): waiting "
                      "uploads hold %" PRId64 " of plugin_opt_upload_budget_bytes=%" PRId64
                      " in %" PRId64 " of plugin_opt_outbox_max=%ld rows (policy refuse); %" PRId64
                      " refused since start",
                      client_id, topic, bytes, ob->held.upload_bytes, ob->budget, ob->held.uploads,
                      ob->max_rows, ob->n.uploads_refused);
    return KEDGE_EFULL;
}

int outbox_add_upload(struct outbox *ob, const char *client_id, const char *topic,
                      const char *payload, size_t len)
{
    struct kedge_buf content = KEDGE_BUF_INIT, b = KEDGE_BUF_INIT;
    int64_t cap = ob->max_upload < ob->budget ? ob->max_upload : ob->budget;
    int rc;

    if (!client_id)
        client_id = "(unknown)";
    /* the encoded message is never shorter than the payload: refuse before copying it */
    if ((int64_t)len > cap)
        return oversize(ob, client_id, topic, len);
    rc = kedge_json_escape(&content, payload ? payload : "", len);
    if (rc == 0)
        rc = encode(&b, "bus", "user", "upload", topic, content.data, content.len);
    kedge_buf_cleanup(&content);
    if (rc == 0 && (int64_t)b.len > cap)
        rc = oversize(ob, client_id, topic, b.len);
    if (rc == 0)
        rc = make_room(ob, client_id, topic, (int64_t)b.len);
    if (rc == 0)
        rc = insert(ob, NULL, b.data, b.len);
    kedge_buf_cleanup(&b);
    return rc;
}

int outbox_drop(struct outbox *ob, int64_t seq)
{
    int rc = delete_one(ob, seq);

    if (rc == 0) {
        ob->n.dropped_by_operator++;
        kedge_log(KEDGE_LOG_NOTICE, "outbox: entry seq=%" PRId64 " dropped by the operator", seq);
    }
    return rc;
}

/* ---- the hand-off to the bridge ---------------------------------------------------------- */

/* Offers in flight, oldest first: acks are cumulative, so an ack takes the offers up to its
 * seq off the front however many of those entries a replacement or a drop deleted since. */
static void offered_push(struct outbox *ob, int64_t seq)
{
    if (ob->inflight < KE_WINDOW)
        ob->offered[(ob->off_head + ob->inflight++) % KE_WINDOW] = seq;
}

static void offered_ack(struct outbox *ob, int64_t seq)
{
    while (ob->inflight && ob->offered[ob->off_head] <= seq) {
        ob->off_head = (ob->off_head + 1) % KE_WINDOW;
        ob->inflight--;
    }
}

static void offered_clear(struct outbox *ob)
{
    ob->inflight = ob->off_head = 0;
}

/* Publish one entry to the bridge. Returns false when the broker refused it. */
static bool offer_one(struct outbox *ob, int64_t seq, const char *msg, size_t len)
{
    char topic[48];
    char *payload;

    if (ob->inflight >= KE_WINDOW)
        return false;
    payload = kedge_strndup(msg, len);
    if (!payload)
        return false;
    snprintf(topic, sizeof(topic), KE_OUTBOX_PREFIX "%" PRId64, seq);
    /* QoS 0: the table is the offer's durability and $ke/ack its receipt, so a PUBACK per
     * entry would only double the packets on the hot path */
    if (publisher_send(ob->pub, ob->bridge_client, topic, payload, len, 0, false) < 0)
        return false;
    ob->last_sent = seq;
    offered_push(ob, seq);
    ob->progress_ms = kedge_now_ms();
    return true;
}

struct pump_ctx {
    struct outbox *ob;
    bool stop;
};

static void offer_row(void *arg, int64_t seq, const char *msg, size_t len)
{
    struct pump_ctx *p = arg;

    if (!p->stop && !offer_one(p->ob, seq, msg, len))
        p->stop = true; /* retried on the next pump */
}

void outbox_pump(struct outbox *ob)
{
    struct pump_ctx p = {ob, false};
    int room = KE_WINDOW - ob->inflight;

    if (!ob->bridge_client || room <= 0 || ob->last_sent >= ob->committed_seq)
        return;
    if (store_outbox_after(ob->store, ob->last_sent, room, offer_row, &p) < 0)
        kedge_log_limited(&store_rl, "outbox", KEDGE_LOG_ERR, "outbox: cannot read entries: %s",
                          store_error(ob->store));
}

void outbox_committed(struct outbox *ob, int commit_rc)
{
    size_t i;

    if (commit_rc == 0) {
        ob->depth += ob->pending_adds - ob->pending_dels;
        /* caught up: this batch's entries go straight from memory */
        for (i = 0; i < ob->n_mem; i++) {
            struct outbox_mem *e = &ob->mem[i];
            if (!ob->bridge_client || ob->last_sent != ob->committed_seq)
                break;
            if (!offer_one(ob, e->seq, e->msg, e->len))
                break;
            ob->committed_seq = e->seq;
        }
        if (ob->batch_seq > ob->committed_seq)
            ob->committed_seq = ob->batch_seq;
    } else if (store_ok(ob->store) && reread(ob) < 0) {
        kedge_log(KEDGE_LOG_ERR, "outbox: cannot read its state again: %s", store_error(ob->store));
    }
    ob->pending_adds = ob->pending_dels = ob->batch_seq = 0;
    mem_clear(ob);
    if (ob->refusing && ob->held.uploads < ob->max_rows && ob->held.upload_bytes < ob->budget) {
        kedge_log_limited(&again_rl, "outbox", KEDGE_LOG_NOTICE,
                          "outbox: uploads are taken again (%" PRId64 " waiting, %" PRId64
                          " bytes)",
                          ob->held.uploads, ob->held.upload_bytes);
        ob->refusing = false;
    }
    outbox_pump(ob);
}

int outbox_bridge_up(struct outbox *ob, const char *client_id)
{
    char *id = kedge_strdup(client_id);

    if (!id)
        return -ENOMEM;
    kedge_free(ob->bridge_client);
    ob->bridge_client = id;
    ob->last_sent = ob->acked = 0; /* offer everything unacked again, oldest first */
    offered_clear(ob);
    ob->progress_ms = kedge_now_ms();
    return 0;
}

bool outbox_is_bridge(const struct outbox *ob, const char *client_id)
{
    return ob->bridge_client && client_id && !strcmp(ob->bridge_client, client_id);
}

void outbox_bridge_down(struct outbox *ob, const char *client_id)
{
    if (!outbox_is_bridge(ob, client_id))
        return;
    kedge_log(KEDGE_LOG_NOTICE, "outbox: bridge client=%s gone, %" PRId64 " entries wait for it",
              client_id, ob->depth);
    kedge_free(ob->bridge_client);
    ob->bridge_client = NULL;
    offered_clear(ob);
}

void outbox_ack(struct outbox *ob, int64_t seq)
{
    struct store_outbox_tally gone = {0};
    int rc;

    if (seq <= ob->acked)
        return; /* a duplicate or late ack */
    if (seq > ob->committed_seq)
        seq = ob->committed_seq; /* the open batch's entries were never offered */
    rc = store_outbox_delete(ob->store, seq, &gone);
    if (rc < 0) {
        kedge_log_limited(&store_rl, "outbox", KEDGE_LOG_ERR,
                          "outbox: cannot delete up to seq=%" PRId64 ": %s", seq,
                          store_error(ob->store));
        return;
    }
    ob->pending_dels += rc;
    ob->held.uploads -= gone.uploads;
    ob->held.upload_bytes -= gone.upload_bytes;
    ob->held.states -= gone.states;
    offered_ack(ob, seq);
    ob->acked = seq;
    ob->last_ack_ms = kedge_wall_ms();
    ob->progress_ms = kedge_now_ms();
}

void outbox_check_stall(struct outbox *ob, uint64_t now_ms)
{
    if (!ob->bridge_client || !ob->inflight || now_ms - ob->progress_ms < 5000)
        return;
    kedge_log(KEDGE_LOG_WARN,
              "outbox: no ack for %d offered entries in 5 s; offering again "
              "from seq %" PRId64,
              ob->inflight, ob->acked + 1);
    ob->last_sent = ob->acked;
    offered_clear(ob);
    ob->progress_ms = now_ms;
    outbox_pump(ob);
}
