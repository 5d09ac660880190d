/* Cloud -> edge dispatch by route.group, as edgecore's edgehub message handlers do
 * (docs/kubeedge-wire.md §4.7): the modules that take cloud messages (MetaManager for resource and
 * func, the plugin's groups twin and user through twinbus.c) register a handler per group, so
 * they plug in without the link code knowing them.
 *
 * Whether the cloud waits for an ack of a message is a property of its resource, kept in
 * MetaManager's resource table (meta/resource.h); the link needs it too (an "error" answer is
 * acked like any other message), so the rule is registered here rather than called.
 */
#ifndef KEDGE_ROUTER_H
#define KEDGE_ROUTER_H

#include <stdbool.h>

#include "kedge/msg.h"

/* A handler owns nothing of m beyond the call. Returns 0 (handled; it answers the cloud
 * itself if an ack is due) or a negative code (logged and dropped by the link). */
typedef int (*route_fn)(const struct kedge_msg *m, void *ctx);
/* Whether CloudHub waits for our "response" to m (its noAckRequired, docs/kubeedge-wire.md §5.2).
 */
typedef bool (*route_ack_fn)(const struct kedge_msg *m);

struct router;

int router_new(struct router **out);
void router_free(struct router *r);
/* Register fn for route.group `group`. 0 or -ENOMEM. */
int router_add(struct router *r, const char *group, route_fn fn, void *ctx);
/* Dispatch one cloud message. Returns the handler's result, or KEDGE_ESCHEMA (no handler). */
int router_dispatch(struct router *r, const struct kedge_msg *m);
/* The ack rule (main.c registers resource_needs_ack); without one every message is acked. */
void router_set_ack_rule(struct router *r, route_ack_fn fn);
bool router_needs_ack(const struct router *r, const struct kedge_msg *m);

#endif
