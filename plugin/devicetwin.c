/* DeviceTwin: what edgecore's dtmanager does for devices over MQTT (kubeedge-wire.md §2),
 * answered from inside the broker.
 *
 * A request is applied to the in-memory registry and its rows are written into the store's
 * open transaction; its result, document and delta are queued in replies.c and published only
 * after the commit that holds them (devicetwin_tick). A request that fails validation is
 * undone by reloading its device from the store, as edgecore's SyncDeviceFromSqlite does, which
 * is also why some in-memory quirks of edgecore (an empty value vanishing after an error)
 * show up here the same way. A failed commit reloads every device the batch touched and turns
 * the batch's success results into 500s.
 *
 * Deliberate differences from edgecore, each safer for the device:
 *  - an "expected"/"actual" object without "value" is refused with 400 (edgecore crashes);
 *  - a value is always type-checked (edgecore skips the check when the stored twin has no
 *    expected value yet);
 *  - re-deleting an already deleted twin produces nothing (the spec allows skipping edgecore's
 *    stray document entry).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/topic.h"
#include "kedge/twin.h"
#include "kedge/util.h"
#include "kedge_plugin.h"

#define CODE_BAD_REQUEST 400
#define CODE_NOT_FOUND 404
#define CODE_INTERNAL 500

static struct kedge_ratelimit bad_input_rl = KEDGE_RATELIMIT_INIT(10000, 20);
static struct kedge_ratelimit store_rl = KEDGE_RATELIMIT_INIT(10000, 10);

/* What one key of an update did: enough to print result, document and cloud sync. */
struct key_outcome {
    const char *name;       /* the request's key (borrowed) */
    bool inserted;          /* new row */
    bool deleted;           /* result prints null, document current null */
    bool has_last;          /* document last = `last`, else null */
    struct kedge_twin last; /* the twin before the change */
    struct kedge_twin sync; /* the change as edgecore's syncResult: result = it minus versions */
};

struct update_ctx {
    struct kedge_device *dev;
    int64_t now;
    struct key_outcome *keys;
    size_t n;
    const char *reason; /* first error: KubeEdge reason text */
};

/* ---- small helpers ------------------------------------------------------------------------ */

static int set_str(char **slot, const char *v)
{
    char *d = kedge_strdup(v ? v : "");

    if (!d)
        return -ENOMEM;
    kedge_free(*slot);
    *slot = d;
    return 0;
}

static bool twin_deleted(const struct kedge_twin *t)
{
    return t->type && !strcmp(t->type, KEDGE_TYPE_DELETED);
}

static const char *type_or_empty(const struct kedge_twin *t)
{
    return t->has_meta && t->type ? t->type : "";
}

/* Queue an encoded payload; on -ENOMEM the answer is lost and said so once. */
static void queue(struct devicetwin *dt, struct kedge_buf *b, enum reply_fail on_fail,
                  const char *event_id)
{
    size_t len;
    char *payload = kedge_buf_take(b, &len);

    if (!payload || replies_take(dt->out, dt->topic.data, payload, len, on_fail, event_id) < 0) {
        kedge_free(payload);
        kedge_log(KEDGE_LOG_ERR, "twin: out of memory, reply to topic=%s lost", dt->topic.data);
    }
}

static void queue_error(struct devicetwin *dt, const char *event_id, int code, const char *reason)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    if (kedge_twin_error_encode(&b, event_id, kedge_wall_ms(), code, reason) == 0)
        queue(dt, &b, REPLY_KEEP, NULL);
    kedge_buf_cleanup(&b);
}

static int mark_dirty(struct devicetwin *dt, const char *id)
{
    char **nd;

    if (dt->n_dirty && !strcmp(dt->dirty[dt->n_dirty - 1], id))
        return 0;
    if (dt->n_dirty == dt->cap_dirty) {
        size_t cap = dt->cap_dirty ? dt->cap_dirty * 2 : 16;
        nd = kedge_realloc(dt->dirty, cap * sizeof(*nd));
        if (!nd)
            return -ENOMEM;
        dt->dirty = nd;
        dt->cap_dirty = cap;
    }
    dt->dirty[dt->n_dirty] = kedge_strdup(id);
    if (!dt->dirty[dt->n_dirty])
        return -ENOMEM;
    dt->n_dirty++;
    return 0;
}

/* Make memory match the store again for one device (edgecore's SyncDeviceFromSqlite). */
static void reload_device(struct devicetwin *dt, const char *id)
{
    struct kedge_device *fresh;
    int rc = store_load_device(dt->store, id, &fresh);

    if (rc == -ENOENT) {
        registry_remove(dt->reg, id);
        return;
    }
    if (rc == 0 && registry_put(dt->reg, fresh) == 0)
        return;
    if (rc == 0)
        kedge_device_free(fresh);
    kedge_log(KEDGE_LOG_ERR, "twin: cannot reload device=%s from the store: %s", id,
              rc == KEDGE_ESTORE ? store_error(dt->store) : kedge_strerror(rc));
}

/* ---- twin update: the three cases of dtmanager/twin.go ------------------------------------- */

/* Record the value change in the twin, the sync entry and (for the caller) the row. */
static int apply_value(struct update_ctx *c, struct kedge_twin *twin, struct key_outcome *o,
                       const struct kedge_twin_value *req, bool actual)
{
    struct kedge_twin_value *v = actual ? &twin->actual : &twin->expected;
    struct kedge_twin_version *ver = actual ? &twin->av : &twin->ev;
    bool *has_ver = actual ? &twin->has_av : &twin->has_ev;
    struct kedge_twin_value *sv = actual ? &o->sync.actual : &o->sync.expected;

    if (!*has_ver) {
        memset(ver, 0, sizeof(*ver));
        *has_ver = true;
    }
    ver->edge++;
    if (set_str(&v->value, req->value) < 0 || set_str(&sv->value, req->value) < 0)
        return -ENOMEM;
    v->present = v->has_meta = true;
    v->ts = c->now;
    sv->present = sv->has_meta = true;
    sv->ts = c->now;
    if (actual) {
        o->sync.av = *ver;
        o->sync.has_av = true;
    } else {
        o->sync.ev = *ver;
        o->sync.has_ev = true;
    }
    o->sync.has_optional = true;
    o->sync.optional = twin->optional;
    o->sync.has_meta = true;
    return set_str(&o->sync.type, type_or_empty(twin));
}

/* The type a value is checked against: the stored one, or the request's when the stored twin
 * is deleted (dtmanager isTwinValueDiff). */
static const char *check_type(const struct kedge_twin *twin, const struct kedge_twin *req)
{
    if (twin_deleted(twin))
        return req->has_meta && req->type ? req->type : KEDGE_TYPE_STRING;
    return type_or_empty(twin);
}

static int validate_value(struct update_ctx *c, const struct kedge_twin *twin,
                          const struct kedge_twin *req, const struct kedge_twin_value *v)
{
    if (!v->present)
        return 0;
    if (!v->value) {
        c->reason = KEDGE_REASON_BODY;
        return KEDGE_EBODY;
    }
    c->reason = kedge_twin_check_type(check_type(twin, req), v->value);
    return c->reason ? KEDGE_ETYPE : 0;
}

/* Existing twin, object in the request (dealTwinCompare, rest semantics). */
static int twin_compare(struct update_ctx *c, struct kedge_twin *twin, const struct kedge_twin *req,
                        struct key_outcome *o, bool *changed)
{
    int rc;

    if (!twin_deleted(twin)) {
        if (kedge_twin_copy(&o->last, twin) < 0)
            return -ENOMEM;
        o->has_last = true;
    }
    if ((rc = validate_value(c, twin, req, &req->expected)) < 0)
        return rc;
    if (req->expected.present) {
        if ((rc = apply_value(c, twin, o, &req->expected, false)) < 0)
            return rc;
        *changed = true;
    }
    if ((rc = validate_value(c, twin, req, &req->actual)) < 0)
        return rc;
    if (req->actual.present) {
        if ((rc = apply_value(c, twin, o, &req->actual, true)) < 0)
            return rc;
        *changed = true;
    }
    /* optional may only go from true to false */
    if (req->has_optional && req->optional != twin->optional && twin->optional) {
        twin->optional = false;
        o->sync.has_optional = true;
        o->sync.optional = false;
        *changed = true;
    }
    if (req->has_meta) {
        if (strcmp(req->type ? req->type : "", type_or_empty(twin)) != 0) {
            if (set_str(&twin->meta_col, "{}") < 0)
                return -ENOMEM;
            if (twin_deleted(twin)) {
                if (set_str(&twin->type, req->type) < 0 || set_str(&o->sync.type, req->type) < 0)
                    return -ENOMEM;
                o->sync.has_meta = true;
            }
            *changed = true;
        }
    } else if (twin_deleted(twin)) {
        if (set_str(&twin->type, KEDGE_TYPE_STRING) < 0 ||
            set_str(&o->sync.type, KEDGE_TYPE_STRING) < 0)
            return -ENOMEM;
        o->sync.has_meta = true;
        *changed = true;
    }
    return 0;
}

/* Existing twin, null in the request (dealTwinDelete, rest semantics): only optional twins
 * are deleted; each existing version's edge count goes up by one. */
static int twin_delete(struct kedge_twin *twin, struct key_outcome *o, bool *changed)
{
    struct kedge_twin_value *vals[2] = {&twin->expected, &twin->actual};
    bool has[2] = {twin->has_ev, twin->has_av};
    int i;

    if (!twin->optional || twin_deleted(twin))
        return 0;
    if (!has[0] && !has[1])
        return 0;
    if (kedge_twin_copy(&o->last, twin) < 0)
        return -ENOMEM;
    o->has_last = true;
    for (i = 0; i < 2; i++) {
        if (!has[i])
            continue;
        (i == 0 ? &twin->ev : &twin->av)->edge++;
        kedge_free(vals[i]->value);
        memset(vals[i], 0, sizeof(*vals[i]));
        vals[i]->present = true; /* edgecore keeps an empty object: prints "expected":{} */
    }
    if (set_str(&twin->type, KEDGE_TYPE_DELETED) < 0)
        return -ENOMEM;
    twin->has_meta = true;
    if (kedge_twin_copy(&o->sync, twin) < 0)
        return -ENOMEM;
    o->deleted = true;
    *changed = true;
    return 0;
}

/* New key (dealTwinAdd, rest semantics): versions start at {0,1} for each value supplied,
 * optional defaults to true, type to string. */
static int twin_add(struct update_ctx *c, const struct kedge_twin *req, struct key_outcome *o)
{
    struct kedge_twin t = {0};
    const char *type = req->has_meta ? (req->type ? req->type : "") : KEDGE_TYPE_STRING;
    const struct kedge_twin_value *vals[2] = {&req->expected, &req->actual};
    struct kedge_twin_value *dst[2] = {&t.expected, &t.actual};
    int i, rc = -ENOMEM;

    if (req->is_null) {
        c->reason = KEDGE_REASON_BODY;
        return KEDGE_EBODY;
    }
    for (i = 0; i < 2; i++) {
        if (!vals[i]->present)
            continue;
        if (!vals[i]->value) {
            c->reason = KEDGE_REASON_BODY;
            return KEDGE_EBODY;
        }
        c->reason = kedge_twin_check_type(type, vals[i]->value);
        if (c->reason)
            return KEDGE_ETYPE;
    }
    t.name = kedge_strdup(req->name);
    t.type = kedge_strdup(type);
    t.meta_col = kedge_strdup(req->has_meta ? "{}" : "");
    if (!t.name || !t.type || !t.meta_col)
        goto fail;
    t.has_optional = true;
    t.optional = req->has_optional ? req->optional : true;
    t.has_meta = true;
    for (i = 0; i < 2; i++) {
        if (!vals[i]->present)
            continue;
        *(i == 0 ? &t.has_ev : &t.has_av) = true;
        (i == 0 ? &t.ev : &t.av)->edge = 1;
        /* DeviceTwinToMsgTwin: an empty value has its version but no value in memory (and
         * reads back from the row as absent either way) */
        if (!*vals[i]->value)
            continue;
        dst[i]->value = kedge_strdup(vals[i]->value);
        if (!dst[i]->value)
            goto fail;
        dst[i]->present = dst[i]->has_meta = true;
        dst[i]->ts = c->now;
    }
    if (kedge_twin_copy(&o->sync, &t) < 0)
        goto fail;
    if (!device_twin_insert(c->dev, &t))
        goto fail;
    o->inserted = true;
    return 0;
fail:
    kedge_twin_cleanup(&t);
    return rc;
}

static void outcomes_cleanup(struct update_ctx *c)
{
    size_t i;

    for (i = 0; i < c->n; i++) {
        kedge_twin_cleanup(&c->keys[i].last);
        kedge_twin_cleanup(&c->keys[i].sync);
    }
    kedge_free(c->keys);
}

/* Apply every key; stop at the first error (edgecore aborts the whole request). */
static int apply_update(struct update_ctx *c, const struct kedge_twin_update *req)
{
    size_t i;
    int rc = 0;

    c->keys = kedge_calloc(req->n ? req->n : 1, sizeof(*c->keys));
    if (!c->keys)
        return -ENOMEM;
    for (i = 0; i < req->n && rc == 0; i++) {
        const struct kedge_twin *r = &req->twins[i];
        struct kedge_twin *twin = device_twin_find(c->dev, r->name);
        struct key_outcome *o = &c->keys[c->n];
        bool changed = false;

        o->name = r->name;
        if (!twin)
            rc = twin_add(c, r, o), changed = rc == 0;
        else if (r->is_null)
            rc = twin_delete(twin, o, &changed);
        else
            rc = twin_compare(c, twin, r, o, &changed);
        if (rc == 0 && changed) {
            c->n++;
        } else {
            kedge_twin_cleanup(&o->last);
            kedge_twin_cleanup(&o->sync);
            memset(o, 0, sizeof(*o));
        }
    }
    return rc;
}

/* Rows for every changed key, into the open transaction. */
static int write_rows(struct devicetwin *dt, struct update_ctx *c)
{
    size_t i;
    int rc = 0;

    for (i = 0; i < c->n; i++) {
        struct kedge_twin *t = device_twin_find(c->dev, c->keys[i].name);
        int wrc = c->keys[i].inserted ? store_twin_insert(dt->store, c->dev->id, t)
                                      : store_twin_update(dt->store, c->dev->id, t);
        if (wrc < 0 && rc == 0)
            rc = wrc;
    }
    return rc;
}

static void queue_update_result(struct devicetwin *dt, struct update_ctx *c, const char *event_id)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin_ref *refs = kedge_calloc(c->n ? c->n : 1, sizeof(*refs));
    size_t i, n = 0;

    if (!refs)
        goto oom;
    for (i = 0; i < c->n; i++) {
        const struct key_outcome *o = &c->keys[i];
        /* BuildDeviceTwinResult leaves out entries whose type is "deleted" */
        if (!o->deleted && twin_deleted(&o->sync))
            continue;
        refs[n].name = o->name;
        refs[n].twin = o->deleted ? NULL : &o->sync;
        n++;
    }
    if (kedge_twin_map_encode(&b, event_id, c->now, refs, n, 0) < 0)
        goto oom;
    queue(dt, &b, REPLY_ERR500, event_id);
    kedge_free(refs);
    return;
oom:
    kedge_free(refs);
    kedge_buf_cleanup(&b);
    kedge_log(KEDGE_LOG_ERR, "twin: out of memory building the result for device=%s", c->dev->id);
}

static void queue_document(struct devicetwin *dt, struct update_ctx *c, const char *event_id)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin_doc *docs;
    size_t i;

    if (c->n == 0)
        return;
    docs = kedge_calloc(c->n, sizeof(*docs));
    if (!docs)
        return;
    for (i = 0; i < c->n; i++) {
        const struct key_outcome *o = &c->keys[i];
        const struct kedge_twin *cur = device_twin_find(c->dev, o->name);
        docs[i].name = o->name;
        docs[i].last = o->has_last ? &o->last : NULL;
        docs[i].current = o->deleted || (cur && twin_deleted(cur)) ? NULL : cur;
    }
    if (kedge_topic_device(&dt->topic, c->dev->id, strlen(c->dev->id),
                           KEDGE_SFX_TWIN_UPDATE_DOCUMENT) == 0 &&
        kedge_twin_document_encode(&b, event_id, c->now, docs, c->n) == 0)
        queue(dt, &b, REPLY_DROP, NULL);
    kedge_buf_cleanup(&b);
    kedge_free(docs);
}

/* Recomputed over all of the device's twins after every update, with a fresh event id. */
static void queue_delta(struct devicetwin *dt, const struct kedge_device *dev)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char uuid[KEDGE_UUID_LEN + 1];
    bool has_delta;

    kedge_uuid4(uuid);
    if (kedge_twin_delta_encode(&b, uuid, kedge_wall_ms(), dev->twins, dev->n_twins,
                                &has_delta) == 0 &&
        has_delta &&
        kedge_topic_device(&dt->topic, dev->id, strlen(dev->id), KEDGE_SFX_TWIN_UPDATE_DELTA) == 0)
        queue(dt, &b, REPLY_DROP, NULL);
    kedge_buf_cleanup(&b);
}

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
 * "$hw/events/device//twin/update/result" with event_id "" (§2.4 step 1). */
static void reject_unparsable_update(struct devicetwin *dt, const char *reason)
{
    if (kedge_topic_device(&dt->topic, "", 0, KEDGE_SFX_TWIN_UPDATE_RESULT) == 0)
        queue_error(dt, "", CODE_BAD_REQUEST, reason);
}

static bool store_usable(struct devicetwin *dt, const char *event_id)
{
    if (store_ok(dt->store))
        return true;
    kedge_log_limited(&store_rl, "twin", KEDGE_LOG_ERR, "twin: store unavailable (%s): 500",
                      store_error(dt->store));
    queue_error(dt, event_id, CODE_INTERNAL, store_error(dt->store));
    return false;
}

void devicetwin_twin_update(struct devicetwin *dt, const char *id, size_t id_len,
                            const char *payload, size_t len)
{
    struct kedge_twin_update req;
    struct update_ctx c = {0};
    char *dev_id = NULL;
    int rc;

    rc = kedge_twin_update_decode(payload, len, &req);
    if (rc < 0 && rc != -ENOMEM) {
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                          "twin: bad update device=%.*s err=%s", (int)id_len, id,
                          kedge_errname(rc));
        reject_unparsable_update(dt, decode_reason(rc));
        goto out;
    }
    if (rc < 0 || kedge_topic_device(&dt->topic, id, id_len, KEDGE_SFX_TWIN_UPDATE_RESULT) < 0) {
        kedge_log(KEDGE_LOG_ERR, "twin: out of memory decoding update device=%.*s", (int)id_len,
                  id);
        goto out;
    }
    if (!store_usable(dt, req.event_id))
        goto out;
    c.dev = registry_find(dt->reg, id, id_len);
    if (!c.dev) {
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                          "twin: update for unknown device=%.*s", (int)id_len, id);
        queue_error(dt, req.event_id, CODE_NOT_FOUND, KEDGE_REASON_NODEVICE);
        goto out;
    }
    dev_id = kedge_strdup(c.dev->id);
    if (!dev_id)
        goto out;
    c.now = kedge_wall_ms();
    rc = apply_update(&c, &req);
    if (rc < 0) {
        if (rc == -ENOMEM)
            c.reason = "out of memory";
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                          "twin: update rejected device=%s err=%s reason=\"%s\"", dev_id,
                          kedge_errname(rc), c.reason);
        reload_device(dt, dev_id); /* undo what the request did before failing */
        queue_error(dt, req.event_id, rc == -ENOMEM ? CODE_INTERNAL : CODE_BAD_REQUEST,
                    c.reason);
        goto out;
    }
    if (c.n) {
        (void)write_rows(dt, &c); /* a failed write fails the batch: 500 at commit */
        if (mark_dirty(dt, dev_id) < 0)
            kedge_log(KEDGE_LOG_ERR, "twin: out of memory tracking device=%s", dev_id);
    }
    queue_update_result(dt, &c, req.event_id);
    queue_document(dt, &c, req.event_id);
    queue_delta(dt, c.dev);
out:
    outcomes_cleanup(&c);
    kedge_free(dev_id);
    kedge_twin_update_cleanup(&req);
}

/* ---- twin get --------------------------------------------------------------------------- */

void devicetwin_twin_get(struct devicetwin *dt, const char *id, size_t id_len,
                         const char *payload, size_t len)
{
    struct kedge_buf b = KEDGE_BUF_INIT, reason = KEDGE_BUF_INIT;
    const struct kedge_device *dev;
    struct kedge_twin_ref *refs = NULL;
    char *event_id = NULL;
    size_t i, n = 0;
    int rc;

    if (kedge_topic_device(&dt->topic, id, id_len, KEDGE_SFX_TWIN_GET_RESULT) < 0)
        goto oom;
    rc = kedge_twin_event_id_decode(payload, len, &event_id);
    if (rc == -ENOMEM)
        goto oom;
    if (rc < 0) {
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                          "twin: bad get device=%.*s err=%s", (int)id_len, id, kedge_errname(rc));
        /* edgecore: fmt "Unmarshal twin info %s failed , err: %#v" */
        if (kedge_buf_printf(&reason, "Unmarshal twin info %.*s failed , err: %s", (int)len,
                             payload ? payload : "", kedge_strerror(rc)) < 0)
            goto oom;
        queue_error(dt, "", CODE_BAD_REQUEST, reason.data);
        goto out;
    }
    if (!store_usable(dt, event_id))
        goto out;
    dev = registry_find(dt->reg, id, id_len);
    if (!dev) {
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                          "twin: get for unknown device=%.*s", (int)id_len, id);
        if (kedge_buf_printf(&reason, "Device %.*s not found while getting twin", (int)id_len,
                             id) < 0)
            goto oom;
        queue_error(dt, event_id, CODE_NOT_FOUND, reason.data);
        goto out;
    }
    refs = kedge_calloc(dev->n_twins ? dev->n_twins : 1, sizeof(*refs));
    if (!refs)
        goto oom;
    for (i = 0; i < dev->n_twins; i++) {
        if (twin_deleted(&dev->twins[i]))
            continue;
        refs[n].name = dev->twins[i].name;
        refs[n++].twin = &dev->twins[i];
    }
    if (kedge_twin_map_encode(&b, event_id, kedge_wall_ms(), refs, n, 0) < 0)
        goto oom;
    /* It may show writes of the open batch: if that batch fails, the answer is a 500. */
    queue(dt, &b, REPLY_ERR500, event_id);
    goto out;
oom:
    kedge_log(KEDGE_LOG_ERR, "twin: out of memory answering get device=%.*s", (int)id_len, id);
out:
    kedge_free(refs);
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

void devicetwin_state_update(struct devicetwin *dt, const char *id, size_t id_len,
                             const char *payload, size_t len)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
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
                          rc < 0 ? kedge_errname(rc)
                          : !dev ? "KEDGE_ENODEVICE"
                          : !store_ok(dt->store) ? "KEDGE_ESTORE"
                                                 : "invalid state");
        goto out;
    }
    if (!strcasecmp(state, "online") || !strcasecmp(state, "ok"))
        kedge_rfc3339_now(last_online);
    if (set_str(&dev->state, state) < 0 || set_str(&dev->last_online, last_online) < 0)
        goto oom;
    (void)store_device_state(dt->store, dev->id, state, last_online);
    if (mark_dirty(dt, dev->id) < 0)
        goto oom;
    kedge_uuid4(uuid);
    if (kedge_topic_device(&dt->topic, id, id_len, KEDGE_SFX_STATE_UPDATE_RESULT) < 0 ||
        kedge_state_result_encode(&b, uuid, kedge_wall_ms(), dev->name, state, last_online) < 0)
        goto oom;
    queue(dt, &b, REPLY_DROP, NULL);
    goto out;
oom:
    kedge_log(KEDGE_LOG_ERR, "twin: out of memory on state update device=%.*s", (int)id_len, id);
out:
    kedge_buf_cleanup(&b);
    kedge_free(state);
}

/* ---- membership get (dtmanager/membership.go) ------------------------------------------- */

void devicetwin_membership_get(struct devicetwin *dt, const char *payload, size_t len)
{
    struct kedge_buf b = KEDGE_BUF_INIT, reason = KEDGE_BUF_INIT;
    const struct kedge_device **devs = NULL;
    char *event_id = NULL;
    size_t n = 0;
    int rc;

    if (kedge_topic_node(&dt->topic, dt->cfg->node_name, KEDGE_SFX_MEMBERSHIP_GET_RESULT) < 0)
        goto oom;
    rc = kedge_twin_event_id_decode(payload, len, &event_id);
    if (rc == -ENOMEM)
        goto oom;
    if (rc < 0) {
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN, "twin: bad membership get err=%s",
                          kedge_errname(rc));
        if (kedge_buf_printf(&reason, "Unmarshal get membership info %.*s failed , err: %s",
                             (int)len, payload ? payload : "", kedge_strerror(rc)) < 0)
            goto oom;
        queue_error(dt, "", CODE_BAD_REQUEST, reason.data);
        goto out;
    }
    if (!store_usable(dt, event_id))
        goto out;
    if (registry_sorted(dt->reg, &devs, &n) < 0 ||
        kedge_membership_get_encode(&b, event_id, kedge_wall_ms(),
                                    (const struct kedge_device *const *)devs, n) < 0)
        goto oom;
    queue(dt, &b, REPLY_ERR500, event_id);
    goto out;
oom:
    kedge_log(KEDGE_LOG_ERR, "twin: out of memory answering membership get");
out:
    kedge_free(devs);
    kedge_free(event_id);
    kedge_buf_cleanup(&b);
    kedge_buf_cleanup(&reason);
}

/* ---- oversized payloads ----------------------------------------------------------------- */

void devicetwin_too_big(struct devicetwin *dt, int kind, const char *id, size_t id_len,
                        size_t len)
{
    struct kedge_buf reason = KEDGE_BUF_INIT;

    kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                      "twin: payload of %zu bytes over max_payload_bytes=%ld device=%.*s", len,
                      dt->cfg->max_payload_bytes, (int)id_len, id);
    switch (kind) {
    case KEDGE_TOPIC_TWIN_UPDATE:
        /* what edgecore says for a body it cannot read */
        reject_unparsable_update(dt, KEDGE_REASON_UNMARSHAL);
        break;
    case KEDGE_TOPIC_TWIN_GET:
    case KEDGE_TOPIC_MEMBERSHIP_GET:
        if (kind == KEDGE_TOPIC_TWIN_GET
                ? kedge_topic_device(&dt->topic, id, id_len, KEDGE_SFX_TWIN_GET_RESULT) < 0
                : kedge_topic_node(&dt->topic, dt->cfg->node_name,
                                   KEDGE_SFX_MEMBERSHIP_GET_RESULT) < 0)
            break;
        if (kedge_buf_printf(&reason, "Unmarshal %s info failed , err: payload of %zu bytes is "
                                      "over the limit of %ld bytes",
                             kind == KEDGE_TOPIC_TWIN_GET ? "twin" : "get membership", len,
                             dt->cfg->max_payload_bytes) == 0)
            queue_error(dt, "", CODE_BAD_REQUEST, reason.data);
        break;
    default:
        break; /* state updates: edgecore stays silent on what it cannot parse */
    }
    kedge_buf_cleanup(&reason);
}

/* ---- lifecycle and group commit ---------------------------------------------------------- */

static void load_registry(struct devicetwin *dt)
{
    uint64_t t0 = kedge_now_ms();
    int rc = store_load_all(dt->store, dt->reg);

    if (rc < 0)
        kedge_log(KEDGE_LOG_ERR, "twin: cannot load devices from db=%s: %s", dt->cfg->db_path,
                  rc == KEDGE_ESTORE ? store_error(dt->store) : kedge_strerror(rc));
    else
        kedge_log(KEDGE_LOG_NOTICE, "twin: loaded devices=%zu from db=%s in %llu ms",
                  registry_count(dt->reg), dt->cfg->db_path,
                  (unsigned long long)(kedge_now_ms() - t0));
}

int devicetwin_init(struct devicetwin *dt, const struct plugin_config *cfg)
{
    struct store_opts so = {cfg->db_path, !strcmp(cfg->sync, "full")};
    int rc;

    memset(dt, 0, sizeof(*dt));
    dt->cfg = cfg;
    if (registry_new(&dt->reg) < 0 || replies_new(&dt->out) < 0)
        goto oom;
    rc = store_open(&so, &dt->store);
    if (rc == -ENOMEM)
        goto oom;
    if (rc < 0) {
        /* The broker keeps running: devices get 500s and we retry every few seconds. */
        kedge_log(KEDGE_LOG_ERR,
                  "twin: cannot open db=%s: %s; answering 500 until it opens (check the "
                  "file and that user mosquitto can write its directory)",
                  cfg->db_path, store_error(dt->store));
        dt->next_retry_ms = kedge_now_ms() + 5000;
        return 0;
    }
    load_registry(dt);
    return 0;
oom:
    devicetwin_cleanup(dt);
    return -ENOMEM;
}

static void clear_dirty(struct devicetwin *dt, bool reload)
{
    size_t i;

    for (i = 0; i < dt->n_dirty; i++) {
        if (reload)
            reload_device(dt, dt->dirty[i]);
        kedge_free(dt->dirty[i]);
    }
    dt->n_dirty = 0;
}

void devicetwin_cleanup(struct devicetwin *dt)
{
    if (dt->store && store_pending(dt->store))
        devicetwin_tick(dt, true); /* publishing is lost here (broker gone), the rows are not */
    clear_dirty(dt, false);
    kedge_free(dt->dirty);
    replies_free(dt->out);
    store_close(dt->store);
    registry_free(dt->reg);
    kedge_buf_cleanup(&dt->topic);
    memset(dt, 0, sizeof(*dt));
}

static bool commit_due(const struct devicetwin *dt, uint64_t now)
{
    size_t pending = store_pending(dt->store);

    if (!pending)
        return false;
    return dt->cfg->commit_interval_ms == 0 ||
           (long)pending >= dt->cfg->commit_batch ||
           now - store_oldest_ms(dt->store) >= (uint64_t)dt->cfg->commit_interval_ms;
}

void devicetwin_tick(struct devicetwin *dt, bool force)
{
    uint64_t now = kedge_now_ms();
    int rc;

    if (!store_ok(dt->store) && now >= dt->next_retry_ms) {
        dt->next_retry_ms = now + 5000;
        if (store_retry_open(dt->store) == 0) {
            kedge_log(KEDGE_LOG_NOTICE, "twin: db=%s is open again", dt->cfg->db_path);
            load_registry(dt);
        }
    }
#ifdef KEDGE_UNSAFE_PUBLISH_BEFORE_COMMIT
    replies_flush(dt->out, 0, NULL); /* the bug the crash test must catch */
#endif
    if (!force && !commit_due(dt, now)) {
        if (!store_pending(dt->store)) {
            replies_flush(dt->out, 0, NULL); /* nothing waits on a commit */
            store_maintain(dt->store, replies_count(dt->out) == 0);
        }
        return;
    }
    rc = store_commit(dt->store);
    if (rc < 0) {
        kedge_log_limited(&store_rl, "twin", KEDGE_LOG_ERR,
                          "twin: commit failed (%s): %zu replies become 500s or are dropped",
                          store_error(dt->store), replies_count(dt->out));
        clear_dirty(dt, true); /* memory must not run ahead of the store */
    } else {
        clear_dirty(dt, false);
    }
    replies_flush(dt->out, rc, store_error(dt->store));
}
