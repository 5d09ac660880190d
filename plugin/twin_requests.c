/* The device-facing DeviceTwin requests (docs/kubeedge-wire.md §2.4-2.10), one table row each:
 * the topic kind, its handler, and what edgecore answers when the payload is over
 * plugin_opt_max_payload_bytes (the answer it gives for one it cannot parse).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/topic.h"
#include "kedge/twin.h"
#include "kedge/util.h"
#include "devicetwin.h"

static struct kedge_ratelimit oom_rl = KEDGE_RATELIMIT_INIT(10000, 5);
static struct kedge_ratelimit bad_input_rl = KEDGE_RATELIMIT_INIT(10000, 20);
static struct kedge_ratelimit store_rl = KEDGE_RATELIMIT_INIT(10000, 10);

/* ---- twin update (dtmanager/twin.go) -------------------------------------------------------- */

static const char *decode_reason(int rc)
{
    switch (rc) {
    case KEDGE_ENOTWIN:
        return KEDGE_REASON_NOTWIN;
    case KEDGE_ETWINKEY:
        return KEDGE_REASON_KEY;
    case KEDGE_ETWINVALUE:
        return KEDGE_REASON_VALUE;
    default:
        return KEDGE_REASON_UNMARSHAL;
    }
}

/* Requests edgecore cannot parse or validate are answered on the empty-id topic
 * "$hw/events/device//twin/update/result" with event_id "" (docs/kubeedge-wire.md §2.4 step 1). */
static void reject_unparsable_update(struct devicetwin *dt, const char *reason)
{
    if (kedge_topic_device(&dt->topic, "", 0, KEDGE_SFX_TWIN_UPDATE_RESULT) == 0)
        devicetwin_queue_error(dt, "", TWIN_BAD_REQUEST, reason);
}

/* The MQTT request and the bridge's (a DMI mapper's report) share one path; the device is
 * answered on its result topic either way, and the caller learns the code. */
int devicetwin_edge_update(struct devicetwin *dt, const char *id, size_t id_len,
                           const char *payload, size_t len, const char **why)
{
    struct kedge_twin_update req;
    struct kedge_device *dev;
    const char *reason = NULL;
    int rc, code = 0;

    dt->n.updates++;
    rc = kedge_twin_update_decode(payload, len, &req);
    if (rc < 0 && rc != -ENOMEM) {
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                          "twin: bad update device=%.*s err=%s", (int)id_len, id,
                          kedge_errname(rc));
        reason = decode_reason(rc);
        reject_unparsable_update(dt, reason);
        code = TWIN_BAD_REQUEST;
        goto out;
    }
    if (rc < 0 || kedge_topic_device(&dt->topic, id, id_len, KEDGE_SFX_TWIN_UPDATE_RESULT) < 0) {
        kedge_log_limited(&oom_rl, "twin", KEDGE_LOG_ERR,
                          "twin: out of memory decoding update device=%.*s", (int)id_len, id);
        reason = "out of memory";
        code = TWIN_INTERNAL;
        goto out;
    }
    if (!devicetwin_store_usable(dt, req.event_id)) {
        reason = "store unavailable";
        code = TWIN_INTERNAL;
        goto out;
    }
    dev = registry_find(dt->reg, id, id_len);
    if (!dev) {
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                          "twin: update for unknown device=%.*s", (int)id_len, id);
        reason = KEDGE_REASON_NODEVICE;
        devicetwin_queue_error(dt, req.event_id, TWIN_NOT_FOUND, reason);
        code = TWIN_NOT_FOUND;
        goto out;
    }
    rc = devicetwin_apply(dt, dev, TWIN_REST, req.event_id, req.twins, req.n, &reason);
    if (rc < 0) {
        code = rc == -ENOMEM ? TWIN_INTERNAL : TWIN_BAD_REQUEST;
        if (reason) {
            kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                              "twin: update rejected device=%.*s err=%s reason=\"%s\"", (int)id_len,
                              id, kedge_errname(rc), reason);
            devicetwin_queue_error(dt, req.event_id, code, reason);
        } else {
            reason = "out of memory";
        }
    }
out:
    kedge_twin_update_cleanup(&req);
    if (why)
        *why = reason;
    return code;
}

static void twin_update(struct devicetwin *dt, const char *id, size_t id_len, const char *payload,
                        size_t len)
{
    (void)devicetwin_edge_update(dt, id, id_len, payload, len, NULL);
}

/* ---- twin get ------------------------------------------------------------------------------- */

/* Twin and membership gets: edgecore's 400 for a body that does not parse (its fmt "Unmarshal
 * twin info %s failed , err: %#v"), on the get's result topic. Returns 0 or -ENOMEM. */
static int unmarshal_error(struct devicetwin *dt, const char *what, const char *payload, size_t len,
                           int err)
{
    struct kedge_buf reason = KEDGE_BUF_INIT;
    int rc = kedge_buf_printf(&reason, "Unmarshal %s info %.*s failed , err: %s", what, (int)len,
                              payload ? payload : "", kedge_strerror(err));

    if (rc == 0)
        devicetwin_queue_error(dt, "", TWIN_BAD_REQUEST, reason.data);
    kedge_buf_cleanup(&reason);
    return rc;
}

static void twin_get(struct devicetwin *dt, const char *id, size_t id_len, const char *payload,
                     size_t len)
{
    struct kedge_buf b = KEDGE_BUF_INIT, reason = KEDGE_BUF_INIT;
    const struct kedge_device *dev;
    char *event_id = NULL;
    int rc;

    if (kedge_topic_device(&dt->topic, id, id_len, KEDGE_SFX_TWIN_GET_RESULT) < 0)
        goto oom;
    rc = kedge_twin_event_id_decode(payload, len, &event_id);
    if (rc == -ENOMEM)
        goto oom;
    if (rc < 0) {
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN, "twin: bad get device=%.*s err=%s",
                          (int)id_len, id, kedge_errname(rc));
        if (unmarshal_error(dt, "twin", payload, len, rc) < 0)
            goto oom;
        goto out;
    }
    if (!devicetwin_store_usable(dt, event_id))
        goto out;
    dev = registry_find(dt->reg, id, id_len);
    if (!dev) {
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                          "twin: get for unknown device=%.*s", (int)id_len, id);
        if (kedge_buf_printf(&reason, "Device %.*s not found while getting twin", (int)id_len, id) <
            0)
            goto oom;
        devicetwin_queue_error(dt, event_id, TWIN_NOT_FOUND, reason.data);
        goto out;
    }
    if (twin_encode_get(dev, event_id, kedge_wall_ms(), &b) < 0)
        goto oom;
    /* It may show writes of the open batch: if that batch fails, the answer is a 500. */
    devicetwin_queue(dt, &b, REPLY_ERR500, event_id);
    goto out;
oom:
    kedge_log_limited(&oom_rl, "twin", KEDGE_LOG_ERR,
                      "twin: out of memory answering get device=%.*s", (int)id_len, id);
out:
    kedge_free(event_id);
    kedge_buf_cleanup(&b);
    kedge_buf_cleanup(&reason);
}

/* ---- state update (dtmanager/device.go) ------------------------------------------------- */

static bool state_allowed(const char *state)
{
    static const char *const ok[] = {"online", "offline", "ok", "unknown", "unhealthy"};
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!strcasecmp(state, ok[i]))
            return true;
    return false;
}

static void state_update(struct devicetwin *dt, const char *id, size_t id_len, const char *payload,
                         size_t len)
{
    struct kedge_buf b = KEDGE_BUF_INIT, content = KEDGE_BUF_INIT, resource = KEDGE_BUF_INIT;
    struct kedge_device *dev;
    char last_online[32] = "", uuid[KEDGE_UUID_LEN + 1];
    char *state = NULL;
    int rc;

    /* edgecore answers nothing at all for bad JSON, unknown devices and unknown states */
    rc = kedge_twin_state_decode(payload, len, &state);
    dev = registry_find(dt->reg, id, id_len);
    if (rc < 0 || !dev || !state_allowed(state) || !store_ok(dt->store)) {
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                          "twin: state update ignored device=%.*s err=%s", (int)id_len, id,
                          rc < 0                 ? kedge_errname(rc)
                          : !dev                 ? "KEDGE_ENODEVICE"
                          : !store_ok(dt->store) ? "KEDGE_ESTORE"
                                                 : "invalid state");
        goto out;
    }
    if (!strcasecmp(state, "online") || !strcasecmp(state, "ok"))
        kedge_rfc3339_now(last_online);
    if (kedge_replace_str(&dev->state, state) < 0 ||
        kedge_replace_str(&dev->last_online, last_online) < 0)
        goto oom;
    (void)store_device_state(dt->store, dev->id, state, last_online);
    if (batch_mark_dirty(dt->batch, dev->id) < 0)
        goto oom;
    kedge_uuid4(uuid);
    if (kedge_topic_device(&dt->topic, id, id_len, KEDGE_SFX_STATE_UPDATE_RESULT) < 0 ||
        kedge_state_result_encode(&b, uuid, kedge_wall_ms(), dev->name, state, last_online) < 0)
        goto oom;
    /* to the cloud: the same JSON, as a string (docs/kubeedge-wire.md §2.7) */
    if (kedge_json_escape(&content, b.data, b.len) < 0 ||
        kedge_buf_printf(&resource, "device/%s/state/update", dev->id) < 0)
        goto oom;
    rc = outbox_add_state(dt->outbox, resource.data, content.data, content.len);
    if (rc < 0)
        kedge_log_limited(&store_rl, "twin", KEDGE_LOG_ERR,
                          "twin: state of device=%s not queued for the cloud: %s", dev->id,
                          rc == KEDGE_ESTORE ? store_error(dt->store) : kedge_strerror(rc));
    devicetwin_queue(dt, &b, REPLY_DROP, NULL);
    goto out;
oom:
    kedge_log_limited(&oom_rl, "twin", KEDGE_LOG_ERR,
                      "twin: out of memory on state update device=%.*s", (int)id_len, id);
out:
    kedge_buf_cleanup(&b);
    kedge_buf_cleanup(&content);
    kedge_buf_cleanup(&resource);
    kedge_free(state);
}

/* ---- membership get (dtmanager/membership.go) ------------------------------------------- */

static void membership_get(struct devicetwin *dt, const char *id, size_t id_len,
                           const char *payload, size_t len)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char *event_id = NULL;
    int rc;

    (void)id; /* the node's own name answers, as edgecore's does */
    (void)id_len;
    if (kedge_topic_node(&dt->topic, dt->cfg->node_name, KEDGE_SFX_MEMBERSHIP_GET_RESULT) < 0)
        goto oom;
    rc = kedge_twin_event_id_decode(payload, len, &event_id);
    if (rc == -ENOMEM)
        goto oom;
    if (rc < 0) {
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN, "twin: bad membership get err=%s",
                          kedge_errname(rc));
        if (unmarshal_error(dt, "get membership", payload, len, rc) < 0)
            goto oom;
        goto out;
    }
    if (!devicetwin_store_usable(dt, event_id))
        goto out;
    if (devicetwin_encode_members(dt, event_id, &b) < 0)
        goto oom;
    devicetwin_queue(dt, &b, REPLY_ERR500, event_id);
    goto out;
oom:
    kedge_log_limited(&oom_rl, "twin", KEDGE_LOG_ERR,
                      "twin: out of memory answering membership get");
out:
    kedge_free(event_id);
    kedge_buf_cleanup(&b);
}

/* ---- oversized payloads ----------------------------------------------------------------- */

/* Twin and membership gets: the error edgecore gives for a body it cannot read, on the
 * get's result topic (set by the caller). */
static void too_big_error(struct devicetwin *dt, const char *what, size_t len)
{
    struct kedge_buf reason = KEDGE_BUF_INIT;

    if (kedge_buf_printf(&reason,
                         "Unmarshal %s info failed , err: payload of %zu bytes is "
                         "over the limit of %ld bytes",
                         what, len, dt->cfg->max_payload_bytes) == 0)
        devicetwin_queue_error(dt, "", TWIN_BAD_REQUEST, reason.data);
    kedge_buf_cleanup(&reason);
}

static void twin_update_too_big(struct devicetwin *dt, const char *id, size_t id_len, size_t len)
{
    (void)id;
    (void)id_len;
    (void)len;
    reject_unparsable_update(dt, KEDGE_REASON_UNMARSHAL);
}

static void twin_get_too_big(struct devicetwin *dt, const char *id, size_t id_len, size_t len)
{
    if (kedge_topic_device(&dt->topic, id, id_len, KEDGE_SFX_TWIN_GET_RESULT) == 0)
        too_big_error(dt, "twin", len);
}

static void membership_get_too_big(struct devicetwin *dt, const char *id, size_t id_len, size_t len)
{
    (void)id;
    (void)id_len;
    if (kedge_topic_node(&dt->topic, dt->cfg->node_name, KEDGE_SFX_MEMBERSHIP_GET_RESULT) == 0)
        too_big_error(dt, "get membership", len);
}

/* ---- the table ------------------------------------------------------------------------------ */

typedef void (*request_fn)(struct devicetwin *dt, const char *id, size_t id_len,
                           const char *payload, size_t len);
typedef void (*too_big_fn)(struct devicetwin *dt, const char *id, size_t id_len, size_t len);

/* too_big NULL: edgecore stays silent on a payload it cannot parse (state updates). */
static const struct twin_request {
    enum kedge_topic_kind kind;
    request_fn handle;
    too_big_fn too_big;
} requests[] = {
    {KEDGE_TOPIC_TWIN_UPDATE, twin_update, twin_update_too_big},
    {KEDGE_TOPIC_TWIN_GET, twin_get, twin_get_too_big},
    {KEDGE_TOPIC_STATE_UPDATE, state_update, NULL},
    {KEDGE_TOPIC_MEMBERSHIP_GET, membership_get, membership_get_too_big},
};

bool devicetwin_request(struct devicetwin *dt, const struct kedge_topic *t, const char *payload,
                        size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        const struct twin_request *r = &requests[i];
        if (r->kind != t->kind)
            continue;
        dt->n.gets += t->kind == KEDGE_TOPIC_TWIN_GET;
        dt->n.states += t->kind == KEDGE_TOPIC_STATE_UPDATE;
        dt->n.members += t->kind == KEDGE_TOPIC_MEMBERSHIP_GET;
        if (len <= (size_t)dt->cfg->max_payload_bytes) {
            r->handle(dt, t->id, t->id_len, payload, len);
        } else {
            kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                              "twin: payload of %zu bytes over max_payload_bytes=%ld device=%.*s",
                              len, dt->cfg->max_payload_bytes, (int)t->id_len, t->id);
            if (r->too_big)
                r->too_big(dt, t->id, t->id_len, len);
        }
        return true;
    }
    return false;
}
