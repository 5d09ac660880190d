/* EventBus inside the broker: every client PUBLISH passes here (MOSQ_EVT_MESSAGE) before the
 * broker stores and fans it out.
 *  - $hw/events topics that edgecore's DeviceTwin handles go to devicetwin.c;
 *  - $ke/ topics (only the bridge can publish there, security.c) go to ke.c;
 *  - uploads ($hw/events/upload/#, SYS/dis/upload_records, +/user/#, and the topics the cloud
 *    subscribed to) become outbox entries for the cloud, QoS 0 included: edgecore's own
 *    subscription could drop those, the plugin sees every publish.
 * And the cloud's eventbus operations come back here (eventbus_cloud).
 *
 * The original publish goes on to its subscribers (MOSQ_ERR_SUCCESS), as with edgecore on an
 * external broker; returning anything but SUCCESS/ACL_DENIED would disconnect the publisher
 * (spec fact 4). QoS 1/2 retransmits reach us again and are processed again: at-least-once, as
 * edgecore (spec fact 33).
 */
#include <errno.h>
#include <string.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/ke.h"
#include "kedge/log.h"
#include "kedge/msg.h"
#include "kedge/topic.h"
#include "kedge_plugin.h"

static struct kedge_ratelimit upload_rl = KEDGE_RATELIMIT_INIT(10000, 5);

/* ---- the cloud's subscriptions ------------------------------------------------------------- */

static int subtopic_index(const struct devicetwin *dt, const char *topic)
{
    size_t i;

    for (i = 0; i < dt->n_sub_topics; i++)
        if (!strcmp(dt->sub_topics[i], topic))
            return (int)i;
    return -1;
}

static int subtopic_add(void *ctx, const char *topic)
{
    struct devicetwin *dt = ctx;
    char **n, *copy;

    if (subtopic_index(dt, topic) >= 0)
        return 0;
    copy = kedge_strdup(topic);
    n = copy ? kedge_realloc(dt->sub_topics, (dt->n_sub_topics + 1) * sizeof(*n)) : NULL;
    if (!n) {
        kedge_free(copy);
        return -ENOMEM;
    }
    dt->sub_topics = n;
    dt->sub_topics[dt->n_sub_topics++] = copy;
    return 0;
}

static void subtopic_remove(struct devicetwin *dt, const char *topic)
{
    int i = subtopic_index(dt, topic);

    if (i < 0)
        return;
    kedge_free(dt->sub_topics[i]);
    dt->sub_topics[i] = dt->sub_topics[--dt->n_sub_topics];
}

void eventbus_cleanup(struct devicetwin *dt)
{
    while (dt->n_sub_topics)
        kedge_free(dt->sub_topics[--dt->n_sub_topics]);
    kedge_free(dt->sub_topics);
    dt->sub_topics = NULL;
}

int eventbus_load_subtopics(struct devicetwin *dt)
{
    eventbus_cleanup(dt);
    return store_subtopics_load(dt->store, subtopic_add, dt);
}

static bool cloud_subscribed(const struct devicetwin *dt, const char *topic)
{
    size_t i;
    bool match;

    for (i = 0; i < dt->n_sub_topics; i++)
        if (mosquitto_topic_matches_sub(dt->sub_topics[i], topic, &match) == MOSQ_ERR_SUCCESS &&
            match)
            return true;
    return false;
}

/* ---- uploads to the cloud ------------------------------------------------------------------ */

/* Returns what the broker should do with the publish: deliver it, or refuse it when it is over
 * plugin_opt_max_upload_bytes or the uploads waiting for the cloud are at their bound with
 * plugin_opt_upload_policy refuse (outbox.c counts and logs both). Refused is
 * MOSQ_ERR_ACL_DENIED: an MQTT v5 QoS 1/2 publisher gets reason code 0x87, a v3.1.1 one a
 * plain PUBACK (MQTT 3.1.1 has no way to refuse a PUBLISH) and the message is dropped, local
 * subscribers included; nothing already stored is lost.
 *
 * For QoS 1/2 the broker sends its PUBACK/PUBREC as soon as this callback returns, and that is
 * the device's only receipt for an upload: so the entry is committed here, before returning,
 * instead of at the end of the loop turn. */
static int upload(struct devicetwin *dt, const struct mosquitto *client, const char *topic,
                  const char *payload, size_t len, int qos)
{
    int rc = outbox_add_upload(&dt->outbox, mosquitto_client_id(client), topic, payload, len);

    if (rc == KEDGE_EFULL || rc == KEDGE_ETOOBIG)
        return MOSQ_ERR_ACL_DENIED;
    if (rc == 0 && qos > 0 && devicetwin_tick(dt, true) < 0)
        return MOSQ_ERR_ACL_DENIED; /* not stored: the device must not get a receipt */
    if (rc < 0) {
        kedge_log_limited(&upload_rl, "eventbus", KEDGE_LOG_ERR,
                          "eventbus: upload topic=%s not queued: %s", topic,
                          rc == KEDGE_ESTORE ? store_error(dt->store) : kedge_strerror(rc));
        if (qos > 0)
            return MOSQ_ERR_ACL_DENIED; /* no receipt for what was not stored */
    }
    return MOSQ_ERR_SUCCESS;
}

/* ---- cloud -> edge -------------------------------------------------------------------------- */

/* Publish to local subscribers after the commit in flight (QoS 1, as edgecore's pub client). */
static int publish_local(struct devicetwin *dt, const char *topic, const char *data, size_t len)
{
    char *payload = kedge_strndup(data, len);

    if (!payload)
        return -ENOMEM;
    if (replies_take(dt->out, topic, payload, len, REPLY_KEEP, NULL) < 0) {
        kedge_free(payload);
        return -ENOMEM;
    }
    return 0;
}

/* operation "message": {"message":{"topic":"t",...}}: the inner object goes to its topic. */
static int publish_message(struct devicetwin *dt, const struct kedge_msg *m, const char **reason)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *msg, *topic;
    struct kedge_buf out = KEDGE_BUF_INIT;
    struct kedge_jw w;
    int rc = kedge_json_parse(m->content_is_string ? m->content_str : m->content,
                              m->content_is_string ? m->content_str_len : m->content_len, &doc);

    if (rc < 0) {
        *reason = "message content does not parse";
        return KEDGE_ESCHEMA;
    }
    msg = kedge_json_get(kedge_jdoc_root(doc), "message");
    topic = kedge_json_get(msg, "topic");
    if (!msg || msg->type != KEDGE_JOBJ || !topic || topic->type != KEDGE_JSTR || !topic->len) {
        *reason = "message content has no message.topic";
        rc = KEDGE_ESCHEMA;
        goto out;
    }
    kedge_jw_init(&w, &out);
    kedge_json_write_value(&w, msg);
    rc = kedge_jw_finish(&w);
    if (rc == 0)
        rc = publish_local(dt, topic->str, out.data, out.len);
out:
    kedge_buf_cleanup(&out);
    kedge_jdoc_free(doc);
    return rc;
}

int eventbus_cloud(struct devicetwin *dt, const struct kedge_msg *m, const char **reason)
{
    const char *op = m->operation ? m->operation : "";
    int rc;

    if (!m->resource || !*m->resource) {
        *reason = "eventbus message without a topic";
        return KEDGE_ESCHEMA;
    }
    if (!strcmp(op, "publish")) {
        if (mosquitto_pub_topic_check(m->resource) != MOSQ_ERR_SUCCESS) {
            *reason = "not a valid topic to publish to";
            return KEDGE_ESCHEMA;
        }
        return m->content_is_string ? publish_local(dt, m->resource, m->content_str,
                                                    m->content_str_len)
                                    : publish_local(dt, m->resource, m->content, m->content_len);
    }
    if (!strcmp(op, "message"))
        return publish_message(dt, m, reason);
    if (!strcmp(op, "subscribe") || !strcmp(op, "unsubscribe")) {
        bool add = op[0] == 's';
        if (mosquitto_sub_topic_check(m->resource) != MOSQ_ERR_SUCCESS) {
            *reason = "not a valid topic filter";
            return KEDGE_ESCHEMA;
        }
        rc = store_subtopic(dt->store, m->resource, add);
        if (rc < 0)
            return rc;
        if (add)
            rc = subtopic_add(dt, m->resource);
        else
            subtopic_remove(dt, m->resource);
        kedge_log(KEDGE_LOG_NOTICE, "eventbus: cloud %s topic=%s", op, m->resource);
        return rc;
    }
    *reason = "unknown eventbus operation";
    return KEDGE_ESCHEMA;
}

/* ---- the MESSAGE callback ------------------------------------------------------------------- */

static int on_twin_topic(struct devicetwin *dt, const struct kedge_topic *t, const char *payload,
                         size_t len)
{
    if (len > (size_t)dt->cfg->max_payload_bytes) {
        devicetwin_too_big(dt, t->kind, t->id, t->id_len, len);
        return MOSQ_ERR_SUCCESS;
    }
    switch (t->kind) {
    case KEDGE_TOPIC_TWIN_UPDATE:
        devicetwin_twin_update(dt, t->id, t->id_len, payload, len);
        break;
    case KEDGE_TOPIC_TWIN_GET:
        devicetwin_twin_get(dt, t->id, t->id_len, payload, len);
        break;
    case KEDGE_TOPIC_STATE_UPDATE:
        devicetwin_state_update(dt, t->id, t->id_len, payload, len);
        break;
    default:
        devicetwin_membership_get(dt, payload, len);
        break;
    }
    return MOSQ_ERR_SUCCESS;
}

int eventbus_on_message(struct devicetwin *dt, struct mosquitto_evt_message *ev)
{
    struct kedge_topic t;
    const char *payload = ev->payload;
    size_t len = ev->payloadlen;
    int rc = MOSQ_ERR_SUCCESS;

    if (!ev->topic)
        return MOSQ_ERR_SUCCESS;
    if (!strncmp(ev->topic, KE_PREFIX, strlen(KE_PREFIX))) {
        ke_on_message(dt, ev->client, ev->topic, payload, len);
        goto out;
    }
    kedge_topic_parse(ev->topic, strlen(ev->topic), &t);
    switch (t.kind) {
    case KEDGE_TOPIC_TWIN_UPDATE:
    case KEDGE_TOPIC_TWIN_GET:
    case KEDGE_TOPIC_STATE_UPDATE:
    case KEDGE_TOPIC_MEMBERSHIP_GET:
        rc = on_twin_topic(dt, &t, payload, len);
        break;
    case KEDGE_TOPIC_UPLOAD:
        rc = upload(dt, ev->client, ev->topic, payload, len, ev->qos);
        break;
    default:
        /* cloud_updated from a device, state/get, /updated: edgecore either registers no
         * handler or only takes them from the cloud; kedge takes cloud changes only from the
         * bridge. Anything else is ordinary MQTT, unless the cloud subscribed to it. */
        if (dt->n_sub_topics && ev->topic[0] != '$' && cloud_subscribed(dt, ev->topic))
            rc = upload(dt, ev->client, ev->topic, payload, len, ev->qos);
        break;
    }
out:
    /* A flood between two loop turns must not grow the batch without bound. */
    if (store_pending(dt->store) >= (size_t)dt->cfg->commit_batch)
        devicetwin_tick(dt, true);
    return rc;
}
