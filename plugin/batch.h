/* The group commit and the plugin's scheduler (MOSQ_EVT_TICK).
 *
 * Requests write into the store's one open transaction and queue what they publish in
 * replies; batch_tick commits when the batch is due (every loop turn with
 * plugin_opt_commit_interval_ms 0, else by age, or at plugin_opt_commit_batch writes) and only
 * then releases the replies and offers the outbox's new entries. A failed commit reloads every
 * device the batch wrote, so memory never runs ahead of the store, and turns the batch's
 * success results into 500s. A store that could not be opened is retried every 5 s; a few
 * things run every 5 s (the hook below, the outbox's stall check).
 */
#ifndef KEDGE_BATCH_H
#define KEDGE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"
#include "outbox.h"
#include "registry.h"
#include "replies.h"
#include "store.h"

/* What the batch calls back into, so that it needs none of the modules above it. */
struct batch_hooks {
    void (*every_5s)(void *ctx); /* refresh the $SYS/kedge/... topics */
    void (*reopened)(void *ctx); /* the store opened after a failure: reload what it holds */
    void *ctx;
};

struct batch {
    const struct plugin_config *cfg; /* commit_interval_ms, commit_batch, db_path */
    struct store *store;
    struct registry *reg;
    struct replies *out;
    struct outbox *outbox;
    struct batch_hooks hooks;
    char **dirty; /* ids of devices written in the open batch */
    size_t n_dirty, cap_dirty;
    uint64_t next_retry_ms; /* broken store: when to try opening it again */
    uint64_t next_sys_ms;   /* next every_5s */
};

/* Borrow the pieces (they must outlive b); nothing is allocated yet. */
void batch_init(struct batch *b, const struct plugin_config *cfg, struct store *store,
                struct registry *reg, struct replies *out, struct outbox *outbox,
                const struct batch_hooks *hooks);
/* Frees the dirty list; does not commit (the owner calls batch_tick(b, true) first). */
void batch_cleanup(struct batch *b);
/* Remember that the open batch wrote this device (reloaded if the commit fails).
 * 0 or -ENOMEM. */
int batch_mark_dirty(struct batch *b, const char *id);
/* Make memory match the store for one device (removed if the store has none): edgecore's
 * SyncDeviceFromSqlite, used to undo a request that failed half way. */
void batch_reload(struct batch *b, const char *id);
/* Commit if due, then publish what the commit released. force: commit whatever is pending.
 * Returns the commit's result (0 when nothing was due, KEDGE_ESTORE when it failed). */
int batch_tick(struct batch *b, bool force);

#endif
