/* Twin and state reports are state, not events: a device's pending reports of one kind are
 * coalesced into one (issue 13). TEMPORARY copy of the contract on the bridge branch: the lead's
 * include/kedge/coalesce.h + common/coalesce.c replace it when main is merged. */
#ifndef KEDGE_COALESCE_H
#define KEDGE_COALESCE_H

#include <stddef.h>

#include "kedge/buf.h"

enum kedge_coalesce_kind { KEDGE_COALESCE_NONE, KEDGE_COALESCE_TWIN, KEDGE_COALESCE_STATE };

/* What a cloud-bound resource is: device/{id}/twin/edge_updated -> TWIN,
 * device/{id}/state/update -> STATE, anything else NONE. The subject is the resource. */
enum kedge_coalesce_kind kedge_coalesce_kind(const char *resource);

/* Merge two encoded beehive messages of the same subject (older first): the newer message
 * whose content.twin map is the older overlaid by the newer (TWIN), or the newer (STATE).
 * 0, KEDGE_ESCHEMA (keep the newer as is), -ENOMEM. */
int kedge_coalesce_merge(enum kedge_coalesce_kind kind, const char *older, size_t older_len,
                         const char *newer, size_t newer_len, struct kedge_buf *out);

#endif
