/* DeviceTwin and EventBus live in the plugin, inside the broker. Their cloud messages (group
 * twin: membership, twin/cloud_updated; group user from router_eventbus: publish, subscribe,
 * unsubscribe, message) go to it over $ke/down, and the cloud gets its ack only once the
 * plugin says the change is committed (kubeedge-wire.md §5.2: "an ack means stored").
 */
#include <string.h>

#include "bridge.h"
#include "kedge/err.h"

static void applied(struct bridge *br, const struct kedge_msg *m, bool ok)
{
    if (!ok)
        return; /* no ack: a message that needs one comes again */
    if (route_needs_ack(m))
        (void)edgehub_ack(br->hub, m); /* logged there when not sent; the cloud resends */
}

static int to_plugin(struct bridge *br, const struct kedge_msg *m, void *ctx)
{
    (void)ctx;
    return relay_down(br->relay, m, applied);
}

static int user_group(struct bridge *br, const struct kedge_msg *m, void *ctx)
{
    /* edgehub's bus handler: only the cloud router's eventbus messages (§4.7) */
    if (!m->source || strcmp(m->source, "router_eventbus"))
        return KEDGE_ESCHEMA;
    return to_plugin(br, m, ctx);
}

int twinbus_register(struct router *r)
{
    int rc = router_add(r, "twin", to_plugin, NULL);

    if (rc == 0)
        rc = router_add(r, "user", user_group, NULL);
    return rc;
}
