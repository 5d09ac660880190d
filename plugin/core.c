/* The plugin's core (core.h): building and wiring the modules, and routing the broker's
 * events to them.
 *
 * The original publish goes on to its subscribers (MOSQ_ERR_SUCCESS), as with edgecore on an
 * external broker; returning anything but SUCCESS/ACL_DENIED would disconnect the publisher
 * (spec fact 4).
 */
#include <errno.h>
#include <string.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/ke.h"
#include "kedge/log.h"
#include "kedge/topic.h"
#include "kedge/util.h"
#include "core.h"

static void load_registry(struct kedge_core *c)
{
    uint64_t t0 = kedge_now_ms();
    int rc = store_load_all(c->store, c->reg);

    if (rc < 0)
        kedge_log(KEDGE_LOG_ERR, "twin: cannot load devices from db=%s: %s", c->cfg->db_path,
                  rc == KEDGE_ESTORE ? store_error(c->store) : kedge_strerror(rc));
    else
        kedge_log(KEDGE_LOG_NOTICE, "twin: loaded devices=%zu from db=%s in %llu ms",
                  registry_count(c->reg), c->cfg->db_path,
                  (unsigned long long)(kedge_now_ms() - t0));
}

/* The batch's hooks. */
static void every_5s(void *ctx)
{
    struct kedge_core *c = ctx;

    ke_publish_sys(&c->ke);
}

static void reopened(void *ctx)
{
    struct kedge_core *c = ctx;

    load_registry(c);
    (void)eventbus_load_subtopics(&c->bus);
    (void)outbox_init(&c->outbox, c->store, c->cfg, &c->pub);
}

static void wire(struct kedge_core *c)
{
    const struct batch_hooks hooks = {every_5s, reopened, c};

    batch_init(&c->batch, c->cfg, c->store, c->reg, c->out, &c->outbox, &hooks);
    devicetwin_init(&c->dt, c->cfg, c->reg, c->store, c->out, &c->outbox, &c->batch);
    eventbus_init(&c->bus, c->store, c->out, &c->outbox, &c->batch);
    ke_init(&c->ke, c->cfg, c->store, c->reg, c->out, &c->pub, &c->outbox, &c->dt, &c->bus);
}

int core_init(struct kedge_core *c, const struct plugin_config *cfg, const struct publisher *pub)
{
    struct store_opts so = {cfg->db_path, cfg->sync && !strcmp(cfg->sync, "full"),
                            cfg->db_lock && !strcmp(cfg->db_lock, "exclusive")};
    int rc;

    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->pub = *pub;
    if (registry_new(&c->reg) < 0 || replies_new(&c->out, &c->pub) < 0)
        goto oom;
    rc = store_open(&so, &c->store);
    wire(c);
    if (rc == -ENOMEM)
        goto oom;
    if (rc < 0) {
        /* The broker keeps running: devices get 500s and the batch retries every few seconds. */
        kedge_log(KEDGE_LOG_ERR,
                  "twin: cannot open db=%s: %s; answering 500 until it opens (check the "
                  "file and that user mosquitto can write its directory)",
                  cfg->db_path, store_error(c->store));
        (void)outbox_init(&c->outbox, c->store, cfg, &c->pub);
        return 0;
    }
    load_registry(c);
    if (eventbus_load_subtopics(&c->bus) < 0)
        kedge_log(KEDGE_LOG_ERR, "eventbus: cannot load sub_topics: %s", store_error(c->store));
    if (outbox_init(&c->outbox, c->store, cfg, &c->pub) < 0)
        kedge_log(KEDGE_LOG_ERR, "outbox: cannot read its state: %s", store_error(c->store));
    return 0;
oom:
    core_cleanup(c);
    return -ENOMEM;
}

void core_cleanup(struct kedge_core *c)
{
    if (c->store && store_pending(c->store))
        batch_tick(&c->batch, true); /* publishing is lost here (broker gone), the rows are not */
    batch_cleanup(&c->batch);
    replies_free(c->out);
    eventbus_cleanup(&c->bus);
    ke_cleanup(&c->ke);
    outbox_cleanup(&c->outbox);
    store_close(c->store);
    registry_free(c->reg);
    devicetwin_cleanup(&c->dt);
    memset(c, 0, sizeof(*c));
}

int core_on_message(struct kedge_core *c, struct mosquitto_evt_message *ev)
{
    struct kedge_topic t;
    const char *payload = ev->payload;
    size_t len = ev->payloadlen;
    int rc = MOSQ_ERR_SUCCESS;

    if (!ev->topic)
        return MOSQ_ERR_SUCCESS;
    if (!strncmp(ev->topic, KE_PREFIX, strlen(KE_PREFIX))) {
        ke_on_message(&c->ke, ev->client, ev->topic, payload, len);
        goto out;
    }
    kedge_topic_parse(ev->topic, strlen(ev->topic), &t);
    if (devicetwin_request(&c->dt, &t, payload, len))
        goto out;
    /* cloud_updated from a device, state/get, /updated: edgecore either registers no handler
     * or only takes them from the cloud; kedge takes cloud changes only from the bridge.
     * Anything else is ordinary MQTT, unless the cloud subscribed to it. */
    if (t.kind == KEDGE_TOPIC_UPLOAD || eventbus_cloud_subscribed(&c->bus, ev->topic))
        rc = eventbus_upload(&c->bus, ev->client, ev->topic, payload, len, ev->qos);
out:
    /* A flood between two loop turns must not grow the batch without bound. */
    if (store_pending(c->store) >= (size_t)c->cfg->commit_batch)
        batch_tick(&c->batch, true);
    return rc;
}

void core_tick(struct kedge_core *c)
{
    (void)batch_tick(&c->batch, false);
}

void core_on_disconnect(struct kedge_core *c, const char *client_id)
{
    ke_on_disconnect(&c->ke, client_id);
}
