/* The plugin's end of the $ke/ channel (include/kedge/ke.h): the bridge's hello, its acks of
 * outbox entries, its status, cloud messages coming down, and kedge-ctl's queries; and the
 * retained $SYS/kedge/{node}/... health topics.
 *
 * Cloud messages are applied into the open batch and answered on $ke/down/{ref}/result only
 * after the commit that holds them, so the bridge acks the cloud for stored changes only.
 * Only the bridge identity can publish under $ke/ (security.h).
 */
#ifndef KEDGE_PLUGIN_KE_H
#define KEDGE_PLUGIN_KE_H

#include <stdbool.h>
#include <stddef.h>

#include "kedge/buf.h"
#include "devicetwin.h"
#include "eventbus.h"
#include "options.h"
#include "outbox.h"
#include "registry.h"
#include "replies.h"
#include "store.h"

struct ke {
    const struct plugin_config *cfg; /* node_name */
    struct store *store;
    struct registry *reg;
    struct replies *out;         /* answers, after the commit */
    const struct publisher *pub; /* the retained $SYS topics, now */
    struct outbox *outbox;
    struct devicetwin *dt; /* twin messages from the cloud, ctl views */
    struct eventbus *bus;  /* eventbus messages from the cloud */
    bool cloud_connected;  /* from the bridge's node/connection events */
    char *bridge_status;   /* the bridge's last $ke/status JSON */
};

/* Borrow the pieces (they must outlive k). */
void ke_init(struct ke *k, const struct plugin_config *cfg, struct store *store,
             struct registry *reg, struct replies *out, const struct publisher *pub,
             struct outbox *outbox, struct devicetwin *dt, struct eventbus *bus);
void ke_cleanup(struct ke *k);

struct mosquitto;
/* A publish under $ke/ from the bridge identity (security.c already refused everyone else). */
void ke_on_message(struct ke *k, const struct mosquitto *client, const char *topic,
                   const char *payload, size_t len);
/* A client went away: if it was the accepted bridge, the outbox stops offering. */
void ke_on_disconnect(struct ke *k, const char *client_id);
/* The plugin's status object (kedge-ctl status, $SYS/kedge/{node}/plugin). 0 or -ENOMEM. */
int ke_status_encode(struct ke *k, struct kedge_buf *b);
/* Refresh the retained $SYS/kedge/{node}/... topics (every 5 s, from the batch's hook). */
void ke_publish_sys(struct ke *k);

#endif
