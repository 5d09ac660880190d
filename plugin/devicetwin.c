/* The DeviceTwin service (devicetwin.h): a change applied by the twin engine becomes rows in
 * the open batch and messages waiting for its commit; plus kedge-ctl's views.
 */
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/topic.h"
#include "kedge/twin.h"
#include "kedge/util.h"
#include "devicetwin.h"

static struct kedge_ratelimit oom_rl = KEDGE_RATELIMIT_INIT(10000, 5);
static struct kedge_ratelimit store_rl = KEDGE_RATELIMIT_INIT(10000, 10);

void devicetwin_init(struct devicetwin *dt, const struct plugin_config *cfg, struct registry *reg,
                     struct store *store, struct replies *out, struct outbox *outbox,
                     struct batch *batch)
{
    memset(dt, 0, sizeof(*dt));
    dt->cfg = cfg;
    dt->reg = reg;
    dt->store = store;
    dt->out = out;
    dt->outbox = outbox;
    dt->batch = batch;
}

void devicetwin_cleanup(struct devicetwin *dt)
{
    kedge_buf_cleanup(&dt->topic);
}

/* ---- queueing ------------------------------------------------------------------------------ */

/* Queue an encoded payload for the current dt->topic; on -ENOMEM the answer is lost and said
 * so once. */
void devicetwin_queue(struct devicetwin *dt, struct kedge_buf *b, enum reply_fail on_fail,
                      const char *event_id)
{
    size_t len;
    char *payload = kedge_buf_take(b, &len);

    if (!payload || replies_take(dt->out, dt->topic.data, payload, len, on_fail, event_id) < 0) {
        kedge_free(payload);
        kedge_log_limited(&oom_rl, "twin", KEDGE_LOG_ERR,
                          "twin: out of memory, reply to topic=%s lost", dt->topic.data);
    }
}

void devicetwin_queue_error(struct devicetwin *dt, const char *event_id, int code,
                            const char *reason)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    dt->n.errors++;
    if (kedge_twin_error_encode(&b, event_id, kedge_wall_ms(), code, reason) == 0)
        devicetwin_queue(dt, &b, REPLY_KEEP, NULL);
    kedge_buf_cleanup(&b);
}

bool devicetwin_store_usable(struct devicetwin *dt, const char *event_id)
{
    if (store_ok(dt->store))
        return true;
    kedge_log_limited(&store_rl, "twin", KEDGE_LOG_ERR, "twin: store unavailable (%s): 500",
                      store_error(dt->store));
    devicetwin_queue_error(dt, event_id, TWIN_INTERNAL, store_error(dt->store));
    return false;
}

/* ---- a change: rows, result, document, delta, cloud message -------------------------------- */

/* Rows for every changed key, into the open transaction. */
static int write_rows(struct devicetwin *dt, struct twin_change *c)
{
    size_t i;
    int rc = 0;

    for (i = 0; i < c->n; i++) {
        struct kedge_twin *t;
        int wrc;

        if (!c->keys[i].changed)
            continue;
        t = device_twin_find(c->dev, c->keys[i].name);
        wrc = c->keys[i].inserted ? store_twin_insert(dt->store, c->dev->id, t)
                                  : store_twin_update(dt->store, c->dev->id, t);
        if (wrc < 0 && rc == 0)
            rc = wrc;
    }
    return rc;
}

static void queue_update_result(struct devicetwin *dt, struct twin_change *c, const char *event_id)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    if (twin_encode_result(c, event_id, &b) < 0) {
        kedge_buf_cleanup(&b);
        kedge_log_limited(&oom_rl, "twin", KEDGE_LOG_ERR,
                          "twin: out of memory building the result for device=%s", c->dev->id);
        return;
    }
    devicetwin_queue(dt, &b, REPLY_ERR500, event_id);
}

static void queue_document(struct devicetwin *dt, struct twin_change *c, const char *event_id)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    if (twin_encode_document(c, event_id, &b) > 0 &&
        kedge_topic_device(&dt->topic, c->dev->id, strlen(c->dev->id),
                           KEDGE_SFX_TWIN_UPDATE_DOCUMENT) == 0)
        devicetwin_queue(dt, &b, REPLY_DROP, NULL);
    kedge_buf_cleanup(&b);
}

/* Recomputed over all of the device's twins after every change, with a fresh event id. */
static void queue_delta(struct devicetwin *dt, const struct kedge_device *dev)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char uuid[KEDGE_UUID_LEN + 1];
    bool has_delta;

    kedge_uuid4(uuid);
    if (kedge_twin_delta_encode(&b, uuid, kedge_wall_ms(), dev->twins, dev->n_twins, &has_delta) ==
            0 &&
        has_delta &&
        kedge_topic_device(&dt->topic, dev->id, strlen(dev->id), KEDGE_SFX_TWIN_UPDATE_DELTA) == 0)
        devicetwin_queue(dt, &b, REPLY_DROP, NULL);
    kedge_buf_cleanup(&b);
}

/* device/{id}/twin/edge_updated to the cloud (docs/kubeedge-wire.md §2.8): rest changes, or the
 * keys whose cloud sync the edge refused (the edge is newer). It joins the same commit as the rows.
 */
static int queue_cloud_sync(struct devicetwin *dt, struct twin_change *c)
{
    struct kedge_buf content = KEDGE_BUF_INIT, resource = KEDGE_BUF_INIT;
    char uuid[KEDGE_UUID_LEN + 1];
    int rc;

    kedge_uuid4(uuid);
    rc = twin_encode_cloud(c, uuid, kedge_wall_ms(), &content);
    if (rc > 0)
        rc = kedge_buf_printf(&resource, "device/%s/twin/edge_updated", c->dev->id);
    if (rc == 0 && resource.len)
        rc = outbox_add_state(dt->outbox, resource.data, content.data, content.len);
    kedge_buf_cleanup(&content);
    kedge_buf_cleanup(&resource);
    return rc;
}

/* Everything after a successful apply: rows, result (rest), document, delta, cloud message. */
static void finish_change(struct devicetwin *dt, struct twin_change *c, const char *event_id)
{
    int rc;

    if (c->n) {
        (void)write_rows(dt, c); /* a failed write fails the batch: 500 at commit */
        if (batch_mark_dirty(dt->batch, c->dev->id) < 0)
            kedge_log_limited(&oom_rl, "twin", KEDGE_LOG_ERR,
                              "twin: out of memory tracking device=%s", c->dev->id);
    }
    if (!c->sync)
        queue_update_result(dt, c, event_id);
    queue_document(dt, c, event_id);
    if (!c->desired || c->n)
        queue_delta(dt, c->dev); /* a desired value already held republishes nothing */
    rc = queue_cloud_sync(dt, c);
    if (rc < 0)
        kedge_log_limited(&store_rl, "twin", KEDGE_LOG_ERR,
                          "twin: cloud message for device=%s not queued: %s", c->dev->id,
                          rc == KEDGE_ESTORE ? store_error(dt->store) : kedge_strerror(rc));
}

int devicetwin_apply(struct devicetwin *dt, struct kedge_device *dev, enum twin_mode mode,
                     const char *event_id, const struct kedge_twin *twins, size_t n,
                     const char **reason)
{
    struct twin_change c;
    char *id = kedge_strdup(dev->id);
    int rc;

    *reason = NULL;
    if (!id)
        return -ENOMEM;
    rc = twin_apply(&c, dev, mode, kedge_wall_ms(), twins, n);
    if (rc < 0) {
        *reason = rc == -ENOMEM ? "out of memory" : c.reason;
        batch_reload(dt->batch, id); /* undo what the change did before failing */
    } else {
        finish_change(dt, &c, event_id);
    }
    twin_change_cleanup(&c);
    kedge_free(id);
    return rc;
}

static int apply_cloud(struct devicetwin *dt, const char *dev_id, const char *event_id,
                       const struct kedge_twin *twins, size_t n, enum twin_mode mode)
{
    struct kedge_device *dev = registry_find(dt->reg, dev_id, strlen(dev_id));
    const char *reason;

    if (!dev)
        return KEDGE_ENODEVICE;
    return devicetwin_apply(dt, dev, mode, event_id, twins, n, &reason);
}

int devicetwin_sync(struct devicetwin *dt, const char *dev_id, const char *event_id,
                    const struct kedge_twin *twins, size_t n)
{
    return apply_cloud(dt, dev_id, event_id, twins, n, TWIN_SYNC);
}

int devicetwin_desired(struct devicetwin *dt, const char *dev_id, const char *event_id,
                       const struct kedge_twin *twins, size_t n)
{
    return apply_cloud(dt, dev_id, event_id, twins, n, TWIN_DESIRED);
}

/* ---- kedge-ctl's views --------------------------------------------------------------------- */

/* Devices sorted by id (Go ranges over a map; a stable order is kinder to readers). */
int devicetwin_encode_members(struct devicetwin *dt, const char *event_id, struct kedge_buf *b)
{
    const struct kedge_device **devs = NULL;
    size_t n = 0;
    int rc = registry_sorted(dt->reg, &devs, &n);

    if (rc == 0)
        rc = kedge_membership_get_encode(b, event_id, kedge_wall_ms(),
                                         (const struct kedge_device *const *)devs, n);
    kedge_free(devs);
    return rc;
}

int devicetwin_encode_twins(struct devicetwin *dt, const char *id, size_t id_len,
                            struct kedge_buf *b)
{
    const struct kedge_device *dev = registry_find(dt->reg, id, id_len);
    struct kedge_buf reason = KEDGE_BUF_INIT;
    int rc;

    if (dev)
        return twin_encode_get(dev, "", kedge_wall_ms(), b);
    rc = kedge_buf_printf(&reason, "Device %.*s not found while getting twin", (int)id_len, id);
    if (rc == 0)
        rc = kedge_twin_error_encode(b, "", kedge_wall_ms(), TWIN_NOT_FOUND, reason.data);
    kedge_buf_cleanup(&reason);
    return rc;
}
