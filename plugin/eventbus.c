/* EventBus inside the broker (eventbus.h): uploads to the outbox, the cloud's operations.
 *
 * QoS 1/2 retransmits reach us again and are processed again: at-least-once, as edgecore
 * (spec fact 33).
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
#include "eventbus.h"

static struct kedge_ratelimit upload_rl = KEDGE_RATELIMIT_INIT(10000, 5);

/* ---- the cloud's subscriptions ------------------------------------------------------------- */

static int subtopic_index(const struct eventbus *eb, const char *topic)
{
    size_t i;

    for (i = 0; i < eb->n_sub_topics; i++)
        if (!strcmp(eb->sub_topics[i], topic))
            return (int)i;
    return -1;
}

static int subtopic_add(void *ctx, const char *topic)
{
    struct eventbus *eb = ctx;
    char **n, *copy;

    if (subtopic_index(eb, topic) >= 0)
        return 0;
    copy = kedge_strdup(topic);
    n = copy ? kedge_realloc(eb->sub_topics, (eb->n_sub_topics + 1) * sizeof(*n)) : NULL;
    if (!n) {
        kedge_free(copy);
        return -ENOMEM;
    }
    eb->sub_topics = n;
    eb->sub_topics[eb->n_sub_topics++] = copy;
    return 0;
}

static void subtopic_remove(struct eventbus *eb, const char *topic)
{
    int i = subtopic_index(eb, topic);

    if (i < 0)
        return;
    kedge_free(eb->sub_topics[i]);
    eb->sub_topics[i] = eb->sub_topics[--eb->n_sub_topics];
}

void eventbus_init(struct eventbus *eb, struct store *store, struct replies *out,
                   struct outbox *outbox, struct batch *batch)
{
    memset(eb, 0, sizeof(*eb));
    eb->store = store;
    eb->out = out;
    eb->outbox = outbox;
    eb->batch = batch;
}

void eventbus_cleanup(struct eventbus *eb)
{
    while (eb->n_sub_topics)
        kedge_free(eb->sub_topics[--eb->n_sub_topics]);
    kedge_free(eb->sub_topics);
    eb->sub_topics = NULL;
}

int eventbus_load_subtopics(struct eventbus *eb)
{
    eventbus_cleanup(eb);
    return store_subtopics_load(eb->store, subtopic_add, eb);
}

bool eventbus_cloud_subscribed(const struct eventbus *eb, const char *topic)
{
    size_t i;
    bool match;

    if (!eb->n_sub_topics || topic[0] == '$')
        return false;
    for (i = 0; i < eb->n_sub_topics; i++)
        if (mosquitto_topic_matches_sub(eb->sub_topics[i], topic, &match) == MOSQ_ERR_SUCCESS &&
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
int eventbus_upload(struct eventbus *eb, const struct mosquitto *client, const char *topic,
                    const char *payload, size_t len, int qos)
{
    int rc = outbox_add_upload(eb->outbox, mosquitto_client_id(client), topic, payload, len);

    if (rc == KEDGE_EFULL || rc == KEDGE_ETOOBIG)
        return MOSQ_ERR_ACL_DENIED;
    if (rc == 0 && qos > 0 && batch_tick(eb->batch, true) < 0)
        return MOSQ_ERR_ACL_DENIED; /* not stored: the device must not get a receipt */
    if (rc < 0) {
        kedge_log_limited(&upload_rl, "eventbus", KEDGE_LOG_ERR,
                          "eventbus: upload topic=%s not queued: %s", topic,
                          rc == KEDGE_ESTORE ? store_error(eb->store) : kedge_strerror(rc));
        if (qos > 0)
            return MOSQ_ERR_ACL_DENIED; /* no receipt for what was not stored */
    }
    return MOSQ_ERR_SUCCESS;
}

/* ---- cloud -> edge -------------------------------------------------------------------------- */

/* Publish to local subscribers after the commit in flight (QoS 1, as edgecore's pub client). */
static int publish_local(struct eventbus *eb, const char *topic, const char *data, size_t len)
{
    char *payload = kedge_strndup(data, len);

    if (!payload)
        return -ENOMEM;
    if (replies_take(eb->out, topic, payload, len, REPLY_KEEP, NULL) < 0) {
        kedge_free(payload);
        return -ENOMEM;
    }
    return 0;
}

/* operation "message": {"message":{"topic":"t",...}}: the inner object goes to its topic. */
static int publish_message(struct eventbus *eb, const struct kedge_msg *m, const char **reason)
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
        rc = publish_local(eb, topic->str, out.data, out.len);
out:
    kedge_buf_cleanup(&out);
    kedge_jdoc_free(doc);
    return rc;
}

int eventbus_cloud(struct eventbus *eb, const struct kedge_msg *m, const char **reason)
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
        return m->content_is_string
                   ? publish_local(eb, m->resource, m->content_str, m->content_str_len)
                   : publish_local(eb, m->resource, m->content, m->content_len);
    }
    if (!strcmp(op, "message"))
        return publish_message(eb, m, reason);
    if (!strcmp(op, "subscribe") || !strcmp(op, "unsubscribe")) {
        bool add = op[0] == 's';
        if (mosquitto_sub_topic_check(m->resource) != MOSQ_ERR_SUCCESS) {
            *reason = "not a valid topic filter";
            return KEDGE_ESCHEMA;
        }
        rc = store_subtopic(eb->store, m->resource, add);
        if (rc < 0)
            return rc;
        if (add)
            rc = subtopic_add(eb, m->resource);
        else
            subtopic_remove(eb, m->resource);
        kedge_log(KEDGE_LOG_NOTICE, "eventbus: cloud %s topic=%s", op, m->resource);
        return rc;
    }
    *reason = "unknown eventbus operation";
    return KEDGE_ESCHEMA;
}
