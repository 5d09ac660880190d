/* The queue of messages waiting for their commit (replies.h), and the publisher's one entry
 * point.
 */
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/log.h"
#include "kedge/twin.h"
#include "kedge/util.h"
#include "replies.h"

static struct kedge_ratelimit oom_rl = KEDGE_RATELIMIT_INIT(10000, 5);

struct reply {
    char *topic;
    char *client_id; /* NULL: all subscribers */
    char *payload;
    size_t len;
    char *event_id;
    char *fail_payload; /* REPLY_ALT */
    size_t fail_len;
    enum reply_fail on_fail;
};

struct replies {
    struct reply *items;
    size_t n, cap;
    const struct publisher *pub;
};

int publisher_send(const struct publisher *p, const char *client_id, const char *topic,
                   char *payload, size_t len, int qos, bool retain)
{
    if (p && p->publish)
        return p->publish(p->ctx, client_id, topic, payload, len, qos, retain);
    kedge_free(payload);
    return -1;
}

int replies_new(struct replies **out, const struct publisher *pub)
{
    *out = kedge_calloc(1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    (*out)->pub = pub;
    return 0;
}

static void reply_cleanup(struct reply *r)
{
    kedge_free_all(r->client_id, r->fail_payload, r->topic, r->payload, r->event_id);
}

void replies_free(struct replies *q)
{
    size_t i;

    if (!q)
        return;
    for (i = 0; i < q->n; i++)
        reply_cleanup(&q->items[i]);
    kedge_free(q->items);
    kedge_free(q);
}

static int grow(struct replies *q)
{
    return kedge_array_grow(&q->items, &q->cap, q->n, sizeof(*q->items), 64);
}

/* Queue r with copies of topic and of the optional extra (NULL: none) into *extra_slot, a
 * field of r. On -ENOMEM nothing is queued and r's borrowed payloads stay the caller's. */
static int queue_reply(struct replies *q, struct reply *r, const char *topic, char **extra_slot,
                       const char *extra)
{
    if (grow(q) < 0)
        return -ENOMEM;
    r->topic = kedge_strdup(topic);
    *extra_slot = extra ? kedge_strdup(extra) : NULL;
    if (!r->topic || (extra && !*extra_slot)) {
        kedge_free_all(r->topic, *extra_slot);
        return -ENOMEM;
    }
    q->items[q->n++] = *r;
    return 0;
}

int replies_take(struct replies *q, const char *topic, char *payload, size_t len,
                 enum reply_fail on_fail, const char *event_id)
{
    struct reply r = {.payload = payload, .len = len, .on_fail = on_fail};

    return queue_reply(q, &r, topic, &r.event_id,
                       on_fail == REPLY_ERR500 ? (event_id ? event_id : "") : NULL);
}

int replies_take_to(struct replies *q, const char *client_id, const char *topic, char *payload,
                    size_t len, char *fail_payload, size_t fail_len)
{
    struct reply r = {.payload = payload,
                      .len = len,
                      .fail_payload = fail_payload,
                      .fail_len = fail_len,
                      .on_fail = REPLY_ALT};

    return queue_reply(q, &r, topic, &r.client_id, client_id);
}

size_t replies_count(const struct replies *q)
{
    return q->n;
}

/* QoS 1, no retain: what edgecore's pub client uses (docs/kubeedge-wire.md §1.1). */
static void publish(struct replies *q, const char *client_id, const char *topic, char *payload,
                    size_t len)
{
    (void)publisher_send(q->pub, client_id, topic, payload, len, 1, false);
}

/* The failed batch's answer to a request whose success result was waiting. */
static void publish_500(struct replies *q, struct reply *r, const char *reason)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char *payload;
    size_t len;

    if (kedge_twin_error_encode(&b, r->event_id, kedge_wall_ms(), 500, reason) < 0 ||
        !(payload = kedge_buf_take(&b, &len))) {
        kedge_buf_cleanup(&b);
        kedge_log_limited(&oom_rl, "twin", KEDGE_LOG_ERR,
                          "twin: out of memory, 500 result for topic=%s lost", r->topic);
        return;
    }
    publish(q, NULL, r->topic, payload, len);
}

void replies_flush(struct replies *q, int commit_rc, const char *store_reason)
{
    size_t i;

    for (i = 0; i < q->n; i++) {
        struct reply *r = &q->items[i];
        if (r->on_fail == REPLY_ALT) {
            char **which = commit_rc == 0 ? &r->payload : &r->fail_payload;
            size_t len = commit_rc == 0 ? r->len : r->fail_len;
            if (*which)
                publish(q, r->client_id, r->topic, *which, len);
            *which = NULL;
        } else if (commit_rc == 0) {
            publish(q, NULL, r->topic, r->payload, r->len);
            r->payload = NULL;
        } else if (r->on_fail == REPLY_ERR500) {
            publish_500(q, r, store_reason);
        } else if (r->on_fail == REPLY_KEEP) {
            publish(q, NULL, r->topic, r->payload, r->len);
            r->payload = NULL;
        }
        reply_cleanup(r);
    }
    q->n = 0;
}
