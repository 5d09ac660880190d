/* The group commit and the scheduler (batch.h). */
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"
#include "batch.h"

static struct kedge_ratelimit store_rl = KEDGE_RATELIMIT_INIT(10000, 10);

void batch_init(struct batch *b, const struct plugin_config *cfg, struct store *store,
                struct registry *reg, struct replies *out, struct outbox *outbox,
                const struct batch_hooks *hooks)
{
    memset(b, 0, sizeof(*b));
    b->cfg = cfg;
    b->store = store;
    b->reg = reg;
    b->out = out;
    b->outbox = outbox;
    b->hooks = *hooks;
    b->next_retry_ms = kedge_now_ms() + 5000;
}

int batch_mark_dirty(struct batch *b, const char *id)
{
    if (b->n_dirty && !strcmp(b->dirty[b->n_dirty - 1], id))
        return 0;
    if (kedge_array_grow(&b->dirty, &b->cap_dirty, b->n_dirty, sizeof(*b->dirty), 16) < 0)
        return -ENOMEM;
    b->dirty[b->n_dirty] = kedge_strdup(id);
    if (!b->dirty[b->n_dirty])
        return -ENOMEM;
    b->n_dirty++;
    return 0;
}

void batch_reload(struct batch *b, const char *id)
{
    struct kedge_device *fresh;
    int rc = store_load_device(b->store, id, &fresh);

    if (rc == -ENOENT) {
        registry_remove(b->reg, id);
        return;
    }
    if (rc == 0 && registry_put(b->reg, fresh) == 0)
        return;
    if (rc == 0)
        kedge_device_free(fresh);
    kedge_log_limited(&store_rl, "twin", KEDGE_LOG_ERR,
                      "twin: cannot reload device=%s from the store: %s", id,
                      rc == KEDGE_ESTORE ? store_error(b->store) : kedge_strerror(rc));
}

static void clear_dirty(struct batch *b, bool reload)
{
    size_t i;

    for (i = 0; i < b->n_dirty; i++) {
        if (reload)
            batch_reload(b, b->dirty[i]);
        kedge_free(b->dirty[i]);
    }
    b->n_dirty = 0;
}

void batch_cleanup(struct batch *b)
{
    clear_dirty(b, false);
    kedge_free(b->dirty);
    b->dirty = NULL;
    b->cap_dirty = 0;
}

static bool commit_due(const struct batch *b, uint64_t now)
{
    size_t pending = store_pending(b->store);

    if (!pending)
        return false;
    return b->cfg->commit_interval_ms == 0 || (long)pending >= b->cfg->commit_batch ||
           now - store_oldest_ms(b->store) >= (uint64_t)b->cfg->commit_interval_ms;
}

int batch_tick(struct batch *b, bool force)
{
    uint64_t now = kedge_now_ms();
    int rc;

    if (now >= b->next_sys_ms) {
        b->next_sys_ms = now + 5000;
        if (b->hooks.every_5s)
            b->hooks.every_5s(b->hooks.ctx);
        if (!store_pending(b->store))
            outbox_check_stall(b->outbox, now);
    }
    if (!store_ok(b->store) && now >= b->next_retry_ms) {
        b->next_retry_ms = now + 5000;
        if (store_retry_open(b->store) == 0) {
            kedge_log(KEDGE_LOG_NOTICE, "twin: db=%s is open again", b->cfg->db_path);
            if (b->hooks.reopened)
                b->hooks.reopened(b->hooks.ctx);
        }
    }
#ifdef KEDGE_UNSAFE_PUBLISH_BEFORE_COMMIT
    replies_flush(b->out, 0, NULL); /* the bug the crash test must catch */
#endif
    if (!force && !commit_due(b, now)) {
        if (!store_pending(b->store)) {
            replies_flush(b->out, 0, NULL); /* nothing waits on a commit */
            outbox_pump(b->outbox);
            store_maintain(b->store, replies_count(b->out) == 0);
        }
        return 0;
    }
    rc = store_commit(b->store);
    if (rc < 0) {
        kedge_log_limited(&store_rl, "twin", KEDGE_LOG_ERR,
                          "twin: commit failed (%s): %zu replies become 500s or are dropped",
                          store_error(b->store), replies_count(b->out));
        clear_dirty(b, true); /* memory must not run ahead of the store */
    } else {
        clear_dirty(b, false);
    }
    replies_flush(b->out, rc, store_error(b->store));
    outbox_committed(b->outbox, rc);
    /* a flood keeps a write pending at every tick, so the idle path never runs: the WAL is
     * checkpointed here once it is large (store_maintain), or it grows without bound */
    store_maintain(b->store, false);
    return rc;
}
