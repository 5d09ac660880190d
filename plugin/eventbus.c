/* EventBus inside the broker: every client PUBLISH passes here (MOSQ_EVT_MESSAGE) before the
 * broker stores and fans it out. $hw/events topics that edgecore's DeviceTwin handles are
 * classified and handed to devicetwin.c; everything else is left alone.
 *
 * The original publish always goes on to its subscribers (MOSQ_ERR_SUCCESS), as it does with
 * edgecore on an external broker: a device's request is visible to other subscribers, and
 * returning anything but SUCCESS/ACL_DENIED would disconnect the publisher (spec fact 4).
 * QoS 1/2 retransmits reach us again and are processed again: at-least-once, as edgecore (spec
 * fact 33).
 */
#include <string.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kedge/topic.h"
#include "kedge_plugin.h"

int eventbus_on_message(struct devicetwin *dt, struct mosquitto_evt_message *ev)
{
    struct kedge_topic t;
    const char *payload = ev->payload;
    size_t len = ev->payloadlen;

    if (!ev->topic)
        return MOSQ_ERR_SUCCESS;
    kedge_topic_parse(ev->topic, strlen(ev->topic), &t);
    switch (t.kind) {
    case KEDGE_TOPIC_TWIN_UPDATE:
    case KEDGE_TOPIC_TWIN_GET:
    case KEDGE_TOPIC_STATE_UPDATE:
    case KEDGE_TOPIC_MEMBERSHIP_GET:
        break;
    default:
        /* cloud_updated from a device, state/get, /updated: edgecore either registers no
         * handler or only takes them from the cloud; kedge takes cloud changes only from the
         * bridge. Uploads go to the cloud once the bridge exists. */
        return MOSQ_ERR_SUCCESS;
    }
    if (len > (size_t)dt->cfg->max_payload_bytes) {
        devicetwin_too_big(dt, t.kind, t.id, t.id_len, len);
        return MOSQ_ERR_SUCCESS;
    }
    switch (t.kind) {
    case KEDGE_TOPIC_TWIN_UPDATE:
        devicetwin_twin_update(dt, t.id, t.id_len, payload, len);
        break;
    case KEDGE_TOPIC_TWIN_GET:
        devicetwin_twin_get(dt, t.id, t.id_len, payload, len);
        break;
    case KEDGE_TOPIC_STATE_UPDATE:
        devicetwin_state_update(dt, t.id, t.id_len, payload, len);
        break;
    default:
        devicetwin_membership_get(dt, payload, len);
        break;
    }
    /* A flood between two loop turns must not grow the batch without bound. */
    if (store_pending(dt->store) >= (size_t)dt->cfg->commit_batch)
        devicetwin_tick(dt, true);
    return MOSQ_ERR_SUCCESS;
}
