/* The UIDs of pods this node has finished, so a late update does not revive one. */
#ifndef KEDGE_EDGED_PODGONE_H
#define KEDGE_EDGED_PODGONE_H

#include <stdbool.h>
#include <stdint.h>

/* The UIDs of the pods this node has finished (stopped, reported, deletion asked for): a late
 * update of one must not start it again (see podgone.c). Bounded; entries expire. */
struct podgone;

int podgone_new(struct podgone **out); /* 0 or -ENOMEM */
void podgone_free(struct podgone *g);
/* now_ms: monotonic. An empty or oversized uid is not kept. */
void podgone_add(struct podgone *g, const char *uid, uint64_t now_ms);
bool podgone_has(const struct podgone *g, const char *uid, uint64_t now_ms);
/* The UID is not finished after all (its deletion was not confirmed). */
void podgone_forget(struct podgone *g, const char *uid);

#endif
