/* Stand-ins for the broker-only part of the mosquitto plugin API (the functions
 * /usr/sbin/mosquitto exports to plugins; libmosquitto has the topic helpers, which the tests
 * link for real). Clients are fake: a `struct mosquitto *` handed to the plugin points at a
 * struct broker_stub_client, whose id and username the accessors return. Publishes are
 * recorded, in order, for the test to inspect; the payload is taken as the broker takes it
 * (freed on success).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "broker_stubs.h"

struct broker_stub_publish broker_stub_published[BROKER_STUB_MAX];
size_t broker_stub_n_published;

const char *mosquitto_client_id(const struct mosquitto *client)
{
    return client ? ((const struct broker_stub_client *)(const void *)client)->id : NULL;
}

const char *mosquitto_client_username(const struct mosquitto *client)
{
    return client ? ((const struct broker_stub_client *)(const void *)client)->username : NULL;
}

void *mosquitto_malloc(size_t size)
{
    return malloc(size);
}

void mosquitto_free(void *mem)
{
    free(mem);
}

void mosquitto_log_printf(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

int mosquitto_broker_publish(const char *clientid, const char *topic, int payloadlen, void *payload,
                             int qos, bool retain, mosquitto_property *properties)
{
    struct broker_stub_publish *p;

    (void)properties;
    if (!topic || payloadlen < 0 || (payloadlen > 0 && !payload) || qos < 0 || qos > 2 ||
        broker_stub_n_published == BROKER_STUB_MAX)
        return MOSQ_ERR_INVAL; /* the payload stays the caller's */
    p = &broker_stub_published[broker_stub_n_published++];
    p->client_id = clientid ? strdup(clientid) : NULL;
    p->topic = strdup(topic);
    p->payload = malloc((size_t)payloadlen + 1);
    if (payloadlen)
        memcpy(p->payload, payload, (size_t)payloadlen);
    p->payload[payloadlen] = '\0';
    p->len = (size_t)payloadlen;
    p->qos = qos;
    p->retain = retain;
    free(payload);
    return MOSQ_ERR_SUCCESS;
}

void broker_stub_reset(void)
{
    size_t i;

    for (i = 0; i < broker_stub_n_published; i++) {
        free(broker_stub_published[i].client_id);
        free(broker_stub_published[i].topic);
        free(broker_stub_published[i].payload);
    }
    memset(broker_stub_published, 0, sizeof(broker_stub_published));
    broker_stub_n_published = 0;
}
