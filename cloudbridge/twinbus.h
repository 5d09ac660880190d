/* The plugin's groups on the router: DeviceTwin's twin (membership, twin/cloud_updated) and
 * EventBus's user (from router_eventbus: publish, subscribe, unsubscribe, message). Their cloud
 * messages go to the plugin over $ke/down, and the cloud gets its ack only once the plugin says
 * the change is committed (docs/kubeedge-wire.md §5.2: "an ack means stored").
 */
#ifndef KEDGE_TWINBUS_H
#define KEDGE_TWINBUS_H

#include "hub/edgehub.h"
#include "relay.h"
#include "hub/router.h"

/* The owner keeps it for as long as the router runs. */
struct twinbus {
    struct relay *relay; /* to the plugin */
    struct edgehub *hub; /* the ack */
};

int twinbus_register(struct twinbus *tb, struct router *r);

#endif
