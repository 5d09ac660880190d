/* The in-memory device table: every device of this node by id, with its attributes and twins
 * (device.h keeps a device's twins). It owns the devices it holds. The store fills it at start
 * (store_load_all) and refreshes single devices after a failed request or commit.
 */
#ifndef KEDGE_REGISTRY_H
#define KEDGE_REGISTRY_H

#include <stddef.h>

#include "device.h"

struct registry;

/* 0 or -ENOMEM. */
int registry_new(struct registry **out);
/* Frees every device held; NULL is fine. */
void registry_free(struct registry *r);
/* The device with this id (id_len bytes, not NUL-terminated), borrowed; NULL if absent. */
struct kedge_device *registry_find(const struct registry *r, const char *id, size_t id_len);
/* Takes dev on success (replacing and freeing any device with the same id). 0 or -ENOMEM. */
int registry_put(struct registry *r, struct kedge_device *dev);
/* Removes and frees the device; no-op if absent. */
void registry_remove(struct registry *r, const char *id);
size_t registry_count(const struct registry *r);
/* All devices sorted by id (borrowed pointers; array owned by the caller, kedge_free it). */
int registry_sorted(const struct registry *r, const struct kedge_device ***out, size_t *n);
/* Frees every device; the table stays usable. */
void registry_clear(struct registry *r);

#endif
