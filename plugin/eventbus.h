/* EventBus inside the broker: device uploads become outbox entries for the cloud, and the
 * cloud's eventbus operations (docs/kubeedge-wire.md §1.3: publish, subscribe, unsubscribe,
 * message) come back here.
 *
 * Uploads are $hw/events/upload/#, SYS/dis/upload_records, +/user/# and the topics the cloud
 * subscribed to, QoS 0 included: edgecore's own subscription could drop those, the plugin sees
 * every publish. The cloud's subscriptions are kept in sub_topics (the table and memory).
 */
#ifndef KEDGE_EVENTBUS_H
#define KEDGE_EVENTBUS_H

#include <stdbool.h>
#include <stddef.h>

#include "batch.h"
#include "outbox.h"
#include "replies.h"
#include "store.h"

struct eventbus {
    struct store *store;
    struct replies *out;   /* cloud publishes to local subscribers, after the commit */
    struct outbox *outbox; /* uploads */
    struct batch *batch;   /* a QoS 1/2 upload commits before the broker acks it */
    char **sub_topics;     /* the cloud's eventbus subscriptions (filters) */
    size_t n_sub_topics;
};

/* Borrow the pieces (they must outlive eb). */
void eventbus_init(struct eventbus *eb, struct store *store, struct replies *out,
                   struct outbox *outbox, struct batch *batch);
void eventbus_cleanup(struct eventbus *eb);
/* Load sub_topics into memory (at start and after the store reopens). 0, KEDGE_ESTORE,
 * -ENOMEM. */
int eventbus_load_subtopics(struct eventbus *eb);

struct mosquitto;
/* A device's upload on topic. Returns what the broker should do with the publish:
 * MOSQ_ERR_SUCCESS, or MOSQ_ERR_ACL_DENIED when it was refused (over
 * plugin_opt_max_upload_bytes, the uploads waiting at their bound with policy refuse, or a
 * QoS 1/2 upload that could not be stored: the device must not get a receipt). */
int eventbus_upload(struct eventbus *eb, const struct mosquitto *client, const char *topic,
                    const char *payload, size_t len, int qos);
/* Whether the cloud subscribed to this topic (never to $ topics). */
bool eventbus_cloud_subscribed(const struct eventbus *eb, const char *topic);

struct kedge_msg;
/* A cloud -> edge eventbus operation into the open batch. 0, or KEDGE_ESCHEMA with *reason,
 * KEDGE_ESTORE, -ENOMEM. */
int eventbus_cloud(struct eventbus *eb, const struct kedge_msg *m, const char **reason);

#endif
