/* kedge_plugin.so entry points: read options, set up logging and allocation, build the core
 * (core.h), register the broker callbacks. Wiring only; the work is in the other files.
 *
 * Loaded by mosquitto 2.0.x (v5 plugin API) with `plugin /path/kedge_plugin.so` and
 * `plugin_opt_*` lines; keep `per_listener_settings false` or TICK never fires (spec fact 2).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "core.h"
#include "security.h"

#define KEDGE_EXPORT __attribute__((visibility("default")))

struct kedge_plugin {
    mosquitto_plugin_id_t *id;
    struct plugin_config cfg;
    struct security sec;
    struct kedge_ratelimit publish_rl; /* failed publishes: one log line per burst */
    struct kedge_core core;
    bool core_up;
};

static void log_sink(int level, const char *line)
{
    static const int map[] = {MOSQ_LOG_ERR, MOSQ_LOG_WARNING, MOSQ_LOG_NOTICE, MOSQ_LOG_INFO,
                              MOSQ_LOG_DEBUG};

    mosquitto_log_printf(map[level >= 0 && level <= KEDGE_LOG_DEBUG ? level : 0], "%s", line);
}

/* The core's publisher. QoS 1 without retain is what edgecore's pub client uses
 * (docs/kubeedge-wire.md §1.1); outbox offers go at QoS 0 and the $SYS health topics retained. The
 * broker frees the payload only on success. With a client id it goes to that client alone. */
static int broker_publish(void *ctx, const char *client_id, const char *topic, char *payload,
                          size_t len, int qos, bool retain)
{
    struct kedge_ratelimit *rl = ctx;
    int rc = mosquitto_broker_publish(client_id, topic, (int)len, payload, qos, retain, NULL);

    if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_free(payload);
        kedge_log_limited(rl, "kedge", KEDGE_LOG_ERR, "kedge: publish to topic=%s failed rc=%d",
                          topic, rc);
        return -1;
    }
    return 0;
}

static int on_message(int event, void *event_data, void *userdata)
{
    struct kedge_plugin *kp = userdata;

    (void)event;
    return core_on_message(&kp->core, event_data);
}

static int on_tick(int event, void *event_data, void *userdata)
{
    struct kedge_plugin *kp = userdata;

    (void)event;
    (void)event_data;
    core_tick(&kp->core);
    return MOSQ_ERR_SUCCESS;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
    struct kedge_plugin *kp = userdata;

    (void)event;
    return security_basic_auth(&kp->sec, event_data);
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
    struct kedge_plugin *kp = userdata;

    (void)event;
    return security_acl_check(&kp->sec, event_data);
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
    struct kedge_plugin *kp = userdata;
    struct mosquitto_evt_disconnect *ev = event_data;

    (void)event;
    core_on_disconnect(&kp->core, mosquitto_client_id(ev->client));
    return MOSQ_ERR_SUCCESS;
}

static const struct {
    int event;
    MOSQ_FUNC_generic_callback cb;
} callbacks[] = {
    {MOSQ_EVT_BASIC_AUTH, on_basic_auth}, {MOSQ_EVT_ACL_CHECK, on_acl_check},
    {MOSQ_EVT_MESSAGE, on_message},       {MOSQ_EVT_TICK, on_tick},
    {MOSQ_EVT_DISCONNECT, on_disconnect},
};
#define N_CALLBACKS (sizeof(callbacks) / sizeof(callbacks[0]))

static void unregister_all(mosquitto_plugin_id_t *id)
{
    size_t i;

    for (i = 0; i < N_CALLBACKS; i++)
        (void)mosquitto_callback_unregister(id, callbacks[i].event, callbacks[i].cb, NULL);
}

KEDGE_EXPORT int mosquitto_plugin_version(int supported_version_count,
                                          const int *supported_versions)
{
    int i;

    for (i = 0; i < supported_version_count; i++)
        if (supported_versions[i] == 5)
            return 5;
    return -1;
}

static const struct kedge_allocator broker_alloc = {mosquitto_malloc, mosquitto_realloc,
                                                    mosquitto_free};

KEDGE_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                                       struct mosquitto_opt *options, int option_count)
{
    static const struct kedge_ratelimit publish_rl = KEDGE_RATELIMIT_INIT(10000, 5);
    struct kedge_plugin *kp;
    int rc;

    /* Everything goes through the broker's allocator: payloads we hand to
     * mosquitto_broker_publish are freed with it, and memory_limit accounts for us. */
    kedge_alloc_set(&broker_alloc);
    kedge_log_set_sink(log_sink);
    kp = kedge_calloc(1, sizeof(*kp));
    if (!kp)
        return MOSQ_ERR_NOMEM;
    kp->id = identifier;
    rc = options_parse(&kp->cfg, options, option_count);
    if (rc < 0)
        goto fail;
    kedge_log_level_max = kedge_log_level_named(kp->cfg.log_level);
    security_init(&kp->sec, &kp->cfg);
    kp->publish_rl = publish_rl;
    rc = core_init(&kp->core, &kp->cfg, &(struct publisher){broker_publish, &kp->publish_rl});
    if (rc < 0)
        goto fail;
    kp->core_up = true;
    for (size_t i = 0; i < N_CALLBACKS; i++) {
        if (mosquitto_callback_register(identifier, callbacks[i].event, callbacks[i].cb, NULL,
                                        kp) != MOSQ_ERR_SUCCESS) {
            rc = -EINVAL;
            goto fail;
        }
    }
    kedge_log(KEDGE_LOG_NOTICE,
              "kedge: plugin ready node=%s db=%s commit_interval_ms=%ld auth_mode=%s bridge=%s",
              kp->cfg.node_name, kp->cfg.db_path, kp->cfg.commit_interval_ms, kp->cfg.auth_mode,
              kp->cfg.bridge_username);
    *userdata = kp;
    return MOSQ_ERR_SUCCESS;
fail:
    kedge_log(KEDGE_LOG_ERR, "kedge: plugin init failed: %s", kedge_strerror(rc));
    unregister_all(identifier);
    if (kp->core_up)
        core_cleanup(&kp->core);
    options_cleanup(&kp->cfg);
    kedge_free(kp);
    return rc == -ENOMEM ? MOSQ_ERR_NOMEM : MOSQ_ERR_INVAL;
}

KEDGE_EXPORT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options,
                                          int option_count)
{
    struct kedge_plugin *kp = userdata;

    (void)options;
    (void)option_count;
    if (!kp)
        return MOSQ_ERR_SUCCESS;
    unregister_all(kp->id);
    /* Last call, no clients left (spec docs/kubeedge-wire.md §7): commit what is pending;
     * publishing is moot. */
    kp->core.pub.publish = NULL;
    core_cleanup(&kp->core);
    options_cleanup(&kp->cfg);
    kedge_free(kp);
    return MOSQ_ERR_SUCCESS;
}
