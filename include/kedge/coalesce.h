/* Device state to the cloud is state, not events (issue: offline for a week).
 *
 * A device's twin report (device/{id}/twin/edge_updated) and state report
 * (device/{id}/state/update) say what the device is now; the cloud wants the latest, not every
 * step on the way. Both queues to the cloud (the plugin's and the bridge's) therefore keep at
 * most one waiting message per such resource, its "subject", and fold a newer message into it.
 * Uploads and everything else are events and are never folded.
 */
#ifndef KEDGE_COALESCE_H
#define KEDGE_COALESCE_H

#include <stddef.h>

#include "kedge/buf.h"

enum kedge_coalesce_kind {
    KEDGE_COALESCE_NONE,  /* an event: queued as is */
    KEDGE_COALESCE_TWIN,  /* device/{id}/twin/edge_updated: twin maps merge key by key */
    KEDGE_COALESCE_STATE, /* device/{id}/state/update: the newer replaces the older */
};

/* What a cloud-bound resource is. The subject of a TWIN or STATE message is its resource. */
enum kedge_coalesce_kind kedge_coalesce_kind(const char *resource);

/* Fold two encoded beehive messages of one subject, older first, into out (appended).
 * The result is the newer message (its header with msg_id and timestamp, its route, its
 * event_id and timestamp) whose content.twin, for TWIN, is the older map overlaid key by key
 * by the newer one: a twin only in the older message stays (a deleted twin too), a twin in
 * both is the newer's. Keys come out sorted, as Go encodes a map. For STATE the result is the
 * newer message as is.
 * Returns 0, KEDGE_ESCHEMA (either message does not parse or has no twin object: the caller
 * keeps the newer message unchanged), -ENOMEM. */
int kedge_coalesce_merge(enum kedge_coalesce_kind kind, const char *older, size_t older_len,
                         const char *newer, size_t newer_len, struct kedge_buf *out);

#endif
