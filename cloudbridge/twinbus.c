/* The plugin's groups, twin and user, routed to the plugin (twinbus.h says why the ack waits).
 *
 * The message goes on as the router decoded it: the relay encodes it once for $ke/down and the
 * plugin decodes it once (plugin/ke.c). Nothing here parses it again.
 */
#include <string.h>

#include "kedge/err.h"
#include "meta/resource.h"
#include "twinbus.h"

static void applied(void *ctx, const struct kedge_msg *m, bool ok)
{
    struct twinbus *tb = ctx;

    if (!ok)
        return; /* no ack: a message that needs one comes again */
    if (resource_needs_ack(m))
        (void)edgehub_ack(tb->hub, m); /* logged there when not sent; the cloud resends */
}

static int to_plugin(const struct kedge_msg *m, void *ctx)
{
    struct twinbus *tb = ctx;

    return relay_down(tb->relay, m, applied, tb);
}

static int user_group(const struct kedge_msg *m, void *ctx)
{
    /* edgehub's bus handler: only the cloud router's eventbus messages (docs/kubeedge-wire.md §4.7)
     */
    if (!m->source || strcmp(m->source, "router_eventbus"))
        return KEDGE_ESCHEMA;
    return to_plugin(m, ctx);
}

int twinbus_register(struct twinbus *tb, struct router *r)
{
    int rc = router_add(r, "twin", to_plugin, tb);

    if (rc == 0)
        rc = router_add(r, "user", user_group, tb);
    return rc;
}
