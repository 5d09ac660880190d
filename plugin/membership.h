/* Devices joining and leaving this node: the cloud's membership update
 * (dtmanager/membership.go dealMembershipUpdate), which kedge-ctl also uses to add devices on
 * a node without a cloud.
 *
 * A new device gets its row, attributes and twins (twins with cloud sync semantics: names and
 * types alone are fine, values need versions) in the open batch, and one
 * $hw/events/node/{node}/membership/updated is published per device once that commits.
 * A device already known is not announced again; its attributes and twins are synced.
 */
#ifndef KEDGE_MEMBERSHIP_H
#define KEDGE_MEMBERSHIP_H

#include <stddef.h>

#include "devicetwin.h"

/* Apply a membership update's content (docs/kubeedge-wire.md §2.10). 0, or an error with *reason
 * for the sender. */
int membership_update(struct devicetwin *dt, const char *content, size_t len, const char **reason);

#endif
