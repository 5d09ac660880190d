/* Publishing, and the messages that wait for a commit.
 *
 * A success result, a document or a delta that reached a device before its commit could be a
 * lie after a crash, so everything a request produces is queued here, in order, and released
 * by replies_flush() after store_commit(). If the commit failed, each entry does what it was
 * queued with: go out anyway, vanish, turn into a 500 error result, or become its alternative.
 */
#ifndef KEDGE_REPLIES_H
#define KEDGE_REPLIES_H

#include <stdbool.h>
#include <stddef.h>

/* The plugin's one way out to MQTT clients: plugin.c wires it to mosquitto_broker_publish,
 * unit tests record. client_id NULL: every subscriber, else that client only. payload comes
 * from kedge_malloc and is taken in all cases. Returns 0, or -1 when the broker refused it. */
struct publisher {
    int (*publish)(void *ctx, const char *client_id, const char *topic, char *payload, size_t len,
                   int qos, bool retain);
    void *ctx;
};

/* Publish through p (NULL or without a function: the payload is freed, -1). */
int publisher_send(const struct publisher *p, const char *client_id, const char *topic,
                   char *payload, size_t len, int qos, bool retain);

enum reply_fail {
    REPLY_KEEP,   /* batch failed: sent anyway (error results that do not depend on it) */
    REPLY_DROP,   /* batch failed: not sent (document, delta, state result) */
    REPLY_ERR500, /* batch failed: replaced by a 500 error result with the same event id */
    REPLY_ALT,    /* to one client; batch failed: its alternative payload instead */
};

struct replies;

/* A queue publishing through pub (borrowed; it must outlive the queue). 0 or -ENOMEM. */
int replies_new(struct replies **out, const struct publisher *pub);
/* Frees what is still queued, unpublished; NULL is fine. */
void replies_free(struct replies *q);
/* Queue a publish (QoS 1, as edgecore's pub client). topic borrowed (copied); payload from
 * kedge_malloc, taken on success. event_id borrowed (copied) when on_fail is REPLY_ERR500.
 * 0 or -ENOMEM. */
int replies_take(struct replies *q, const char *topic, char *payload, size_t len,
                 enum reply_fail on_fail, const char *event_id);
/* Queue a publish to one client (client_id NULL: to all subscribers). On a failed batch
 * fail_payload (taken, may be NULL = nothing) is published instead. 0 or -ENOMEM; on failure
 * the caller still owns both payloads. */
int replies_take_to(struct replies *q, const char *client_id, const char *topic, char *payload,
                    size_t len, char *fail_payload, size_t fail_len);
size_t replies_count(const struct replies *q);
/* Publish everything queued: as is when commit_rc == 0, else per each entry's on_fail. */
void replies_flush(struct replies *q, int commit_rc, const char *store_reason);

#endif
