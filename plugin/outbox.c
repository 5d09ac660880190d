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
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/ke.h"
#include "kedge/log.h"
#include "kedge/msg.h"
#include "kedge/util.h"
#include "kedge_plugin.h"

static struct kedge_ratelimit full_rl = KEDGE_RATELIMIT_INIT(10000, 3);

static void mem_clear(struct outbox *ob)
{
    while (ob->n_mem)
        kedge_free(ob->mem[--ob->n_mem].msg);
}

int outbox_init(struct outbox *ob, struct store *store, long max)
{
    mem_clear(ob);
    kedge_free(ob->mem);
    kedge_free(ob->bridge_client);
    memset(ob, 0, sizeof(*ob));
    ob->store = store;
    ob->max = max;
    if (!store_ok(store))
        return 0;
    return store_outbox_stats(store, &ob->depth, &ob->committed_seq);
}

void outbox_cleanup(struct outbox *ob)
{
    mem_clear(ob);
    kedge_free(ob->mem);
    kedge_free(ob->bridge_client);
    memset(ob, 0, sizeof(*ob));
}

bool outbox_full(const struct outbox *ob)
{
    return ob->depth + ob->pending_adds >= ob->max;
}

int64_t outbox_oldest_ms(struct outbox *ob)
{
    return ob->depth ? store_outbox_oldest_ms(ob->store) : 0;
}

/* Keep a copy for the offer after commit; without memory the table read catches up. */
static void mem_keep(struct outbox *ob, int64_t seq, const char *msg, size_t len)
{
    struct outbox_mem *nm;

    if (ob->n_mem == ob->cap_mem) {
        size_t cap = ob->cap_mem ? ob->cap_mem * 2 : 64;
        if (cap > 4 * KE_WINDOW)
            return;
        nm = kedge_realloc(ob->mem, cap * sizeof(*nm));
        if (!nm)
            return;
        ob->mem = nm;
        ob->cap_mem = cap;
    }
    ob->mem[ob->n_mem].msg = kedge_strndup(msg, len);
    if (!ob->mem[ob->n_mem].msg)
        return;
    ob->mem[ob->n_mem].seq = seq;
    ob->mem[ob->n_mem].len = len;
    ob->n_mem++;
}

int outbox_add(struct outbox *ob, const char *source, const char *group, const char *operation,
               const char *resource, const char *content_json, size_t content_len)
{
    struct kedge_msg m = {0};
    struct kedge_buf b = KEDGE_BUF_INIT;
    int64_t seq;
    int rc;

    if (outbox_full(ob)) {
        if (!ob->full_logged)
            kedge_log(KEDGE_LOG_ERR,
                      "outbox: FULL (%" PRId64 " of plugin_opt_outbox_max=%ld entries waiting "
                      "for the bridge): refusing new cloud-bound traffic until it drains",
                      ob->depth + ob->pending_adds, ob->max);
        else
            kedge_log_limited(&full_rl, "outbox", KEDGE_LOG_WARN,
                              "outbox: full, refused resource=%s", resource);
        ob->full_logged = true;
        return KEDGE_EFULL;
    }
    m.source = (char *)source;
    m.group = (char *)group;
    m.operation = (char *)operation;
    m.resource = (char *)resource;
    m.content = (char *)content_json;
    m.content_len = content_len;
    rc = kedge_msg_new_id(&m);
    if (rc == 0)
        rc = kedge_msg_encode(&b, &m, false);
    if (rc == 0)
        rc = store_outbox_insert(ob->store, b.data, b.len, &seq);
    if (rc == 0) {
        ob->pending_adds++;
        mem_keep(ob, seq, b.data, b.len);
    }
    kedge_free(m.msg_id);
    kedge_buf_cleanup(&b);
    return rc;
}

/* Publish one entry to the bridge. Returns false when the broker refused it. */
static bool offer_one(struct outbox *ob, int64_t seq, const char *msg, size_t len)
{
    char topic[48];
    char *payload = kedge_strndup(msg, len);

    if (!payload)
        return false;
    snprintf(topic, sizeof(topic), KE_OUTBOX_PREFIX "%" PRId64, seq);
    if (replies_publish_offer(ob->bridge_client, topic, payload, len) < 0)
        return false;
    ob->last_sent = seq;
    ob->inflight++;
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
        kedge_log(KEDGE_LOG_ERR, "outbox: cannot read entries: %s", store_error(ob->store));
}

void outbox_committed(struct outbox *ob, int commit_rc)
{
    int64_t count, max_seq;
    size_t i;

    if (commit_rc == 0) {
        ob->depth += ob->pending_adds - ob->pending_dels;
        /* caught up: this batch's entries go straight from memory */
        for (i = 0; i < ob->n_mem; i++) {
            struct outbox_mem *e = &ob->mem[i];
            if (!ob->bridge_client || ob->inflight >= KE_WINDOW || ob->last_sent != ob->committed_seq)
                break;
            if (!offer_one(ob, e->seq, e->msg, e->len))
                break;
            ob->committed_seq = e->seq;
        }
        if (ob->n_mem)
            ob->committed_seq = ob->mem[ob->n_mem - 1].seq;
    } else if (store_outbox_stats(ob->store, &count, &max_seq) == 0) {
        ob->depth = count; /* the batch never happened: read the truth again */
        ob->committed_seq = max_seq;
    }
    ob->pending_adds = ob->pending_dels = 0;
    mem_clear(ob);
    if (ob->full_logged && !outbox_full(ob)) {
        kedge_log(KEDGE_LOG_NOTICE, "outbox: below its bound again (%" PRId64 " entries)",
                  ob->depth);
        ob->full_logged = false;
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
    ob->inflight = 0;
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
    ob->inflight = 0;
}

void outbox_ack(struct outbox *ob, int64_t seq)
{
    int rc;

    if (seq <= ob->acked)
        return; /* a duplicate or late ack */
    rc = store_outbox_delete(ob->store, seq);
    if (rc < 0) {
        kedge_log(KEDGE_LOG_ERR, "outbox: cannot delete up to seq=%" PRId64 ": %s", seq,
                  store_error(ob->store));
        return;
    }
    ob->pending_dels += rc;
    ob->inflight = seq >= ob->last_sent ? 0 : ob->inflight > rc ? ob->inflight - rc : 0;
    ob->acked = seq;
    ob->last_ack_ms = kedge_wall_ms();
    ob->progress_ms = kedge_now_ms();
}

void outbox_check_stall(struct outbox *ob, uint64_t now_ms)
{
    if (!ob->bridge_client || !ob->inflight || now_ms - ob->progress_ms < 5000)
        return;
    kedge_log(KEDGE_LOG_WARN, "outbox: no ack for %d offered entries in 5 s; offering again "
                              "from seq %" PRId64,
              ob->inflight, ob->acked + 1);
    ob->last_sent = ob->acked;
    ob->inflight = 0;
    ob->progress_ms = now_ms;
    outbox_pump(ob);
}
