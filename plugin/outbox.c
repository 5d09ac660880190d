/* The plugin's half of the durable hand-off to kedge-bridge (include/kedge/ke.h).
 *
 * A cloud-bound message is a row in kedge_outbox, inserted in the same transaction as the
 * change that caused it, so a twin result that says success always has its cloud message on
 * disk too. Rows leave only when the bridge acks them ($ke/ack/{seq}), which it does after
 * storing them itself. Committed rows are offered in seq order, at most KE_WINDOW at a time,
 * straight to the accepted bridge's client id; a new hello (bridge reconnect, broker restart)
 * offers again from the oldest unacked row. So delivery to the bridge is at-least-once and
 * in order; the bridge drops duplicates by msg_id.
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

int outbox_init(struct outbox *ob, struct store *store, long max)
{
    memset(ob, 0, sizeof(*ob));
    ob->store = store;
    ob->max = max;
    if (!store_ok(store))
        return 0;
    return store_outbox_stats(store, &ob->depth, &ob->oldest_ms);
}

void outbox_cleanup(struct outbox *ob)
{
    kedge_free(ob->bridge_client);
    memset(ob, 0, sizeof(*ob));
}

bool outbox_full(const struct outbox *ob)
{
    return ob->depth + ob->pending_adds >= ob->max;
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
    if (rc == 0)
        ob->pending_adds++;
    kedge_free(m.msg_id);
    kedge_buf_cleanup(&b);
    return rc;
}

struct pump_ctx {
    struct outbox *ob;
    struct kedge_buf topic;
    bool stop;
};

static void offer(void *arg, int64_t seq, const char *msg, size_t len)
{
    struct pump_ctx *p = arg;
    char *payload;

    if (p->stop)
        return;
    kedge_buf_reset(&p->topic);
    payload = kedge_strndup(msg, len);
    if (!payload || kedge_buf_printf(&p->topic, KE_OUTBOX_PREFIX "%" PRId64, seq) < 0) {
        kedge_free(payload);
        p->stop = true;
        return;
    }
    if (replies_publish_now(p->ob->bridge_client, p->topic.data, payload, len) < 0) {
        p->stop = true; /* retried on the next pump */
        return;
    }
    p->ob->last_sent = seq;
    p->ob->inflight++;
}

void outbox_pump(struct outbox *ob)
{
    struct pump_ctx p = {ob, KEDGE_BUF_INIT, false};
    int room = KE_WINDOW - ob->inflight;

    if (!ob->bridge_client || room <= 0 || ob->depth == 0)
        return;
    if (store_outbox_after(ob->store, ob->last_sent, room, offer, &p) < 0)
        kedge_log(KEDGE_LOG_ERR, "outbox: cannot read entries: %s", store_error(ob->store));
    kedge_buf_cleanup(&p.topic);
}

void outbox_committed(struct outbox *ob, int commit_rc)
{
    int64_t count, oldest;

    (void)commit_rc;
    ob->pending_adds = 0;
    /* Re-read the exact figures: acks of unknown seqs and failed batches make counting
     * fragile, and this is one indexed query per commit. */
    if (store_outbox_stats(ob->store, &count, &oldest) == 0) {
        ob->depth = count;
        ob->oldest_ms = oldest;
    }
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
    ob->last_sent = 0; /* offer everything unacked again, oldest first */
    ob->inflight = 0;
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
    int rc = store_outbox_delete(ob->store, seq);

    if (rc == -ENOENT)
        return; /* a duplicate ack after a re-offer */
    if (rc < 0) {
        kedge_log(KEDGE_LOG_ERR, "outbox: cannot delete seq=%" PRId64 ": %s", seq,
                  store_error(ob->store));
        return;
    }
    if (seq <= ob->last_sent && ob->inflight > 0)
        ob->inflight--;
    ob->last_ack_ms = kedge_wall_ms();
}
