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
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/topic.h"
#include "kedge/twin.h"
#include "kedge/util.h"
#include "kedge_plugin.h"

static struct kedge_ratelimit oom_rl = KEDGE_RATELIMIT_INIT(10000, 5);

#define CODE_BAD_REQUEST 400
#define CODE_NOT_FOUND 404
#define CODE_INTERNAL 500

static struct kedge_ratelimit bad_input_rl = KEDGE_RATELIMIT_INIT(10000, 20);
static struct kedge_ratelimit store_rl = KEDGE_RATELIMIT_INIT(10000, 10);

/* What one key of a twin change did: enough to print result, document and cloud message. */
struct key_outcome {
    const char *name;       /* the request's key (borrowed) */
    bool changed;           /* a row was written: document entry, result entry (rest) */
    bool inserted;          /* new row */
    bool deleted;           /* result prints null, document current null */
    bool echo;              /* sync rejected: `sync` carries the edge's newer twin to the cloud */
    bool has_last;          /* document last = `last`, else null */
    struct kedge_twin last; /* the twin before the change */
    struct kedge_twin sync; /* rest: the change as edgecore's syncResult (result = it minus
                               versions); sync: the echo */
};

struct update_ctx {
    struct kedge_device *dev;
    int64_t now;
    bool sync;    /* cloud semantics (§2.5): versions decide, errors skip a key */
    bool desired; /* with sync: the cloud's desired values (devicetwin_desired) */
    struct key_outcome *keys;
    size_t n;
    const char *reason; /* rest: first error, as KubeEdge words it */
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

/* Queue an encoded payload for the current dt->topic; on -ENOMEM the answer is lost and said
 * so once. */
static void queue(struct devicetwin *dt, struct kedge_buf *b, enum reply_fail on_fail,
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

static void queue_error(struct devicetwin *dt, const char *event_id, int code, const char *reason)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    if (kedge_twin_error_encode(&b, event_id, kedge_wall_ms(), code, reason) == 0)
        queue(dt, &b, REPLY_KEEP, NULL);
    kedge_buf_cleanup(&b);
}

int devicetwin_mark_dirty(struct devicetwin *dt, const char *id)
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
void devicetwin_reload(struct devicetwin *dt, const char *id)
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
    kedge_log_limited(&store_rl, "twin", KEDGE_LOG_ERR,
                      "twin: cannot reload device=%s from the store: %s", id,
                      rc == KEDGE_ESTORE ? store_error(dt->store) : kedge_strerror(rc));
}

/* ---- the twin engine: dtmanager/twin.go's DealMsgTwin, rest and sync ---------------------- */

/* dealVersion: rest bumps the edge count; sync takes the cloud's pair unless ours is newer.
 * A sync without a version is refused, except for deletions. */
static bool deal_version(const struct update_ctx *c, struct kedge_twin_version *ver, bool has_req,
                         const struct kedge_twin_version *req, bool deleting)
{
    if (c->desired) {
        ver->cloud++; /* a change made in the cloud: its count moves on */
        return true;
    }
    if (!c->sync) {
        ver->edge++;
        return true;
    }
    if (!has_req)
        return deleting;
    if (ver->cloud > req->cloud || ver->edge > req->edge)
        return false;
    *ver = *req;
    return true;
}

/* Set value, value timestamp and (rest) the syncResult entry for one side of a twin. */
static int apply_value(struct update_ctx *c, struct kedge_twin *twin, struct key_outcome *o,
                       const char *value, bool actual)
{
    struct kedge_twin_value *v = actual ? &twin->actual : &twin->expected;
    struct kedge_twin_value *sv = actual ? &o->sync.actual : &o->sync.expected;

    if (set_str(&v->value, value) < 0)
        return -ENOMEM;
    v->present = v->has_meta = true;
    v->ts = c->now;
    if (c->sync)
        return 0;
    if (set_str(&sv->value, value) < 0)
        return -ENOMEM;
    sv->present = sv->has_meta = true;
    sv->ts = c->now;
    if (actual) {
        o->sync.av = twin->av;
        o->sync.has_av = true;
    } else {
        o->sync.ev = twin->ev;
        o->sync.has_ev = true;
    }
    o->sync.has_optional = true;
    o->sync.optional = twin->optional;
    o->sync.has_meta = true;
    return kedge_twin_set_type(&o->sync, type_or_empty(twin));
}

/* The edge's current side of a twin, sent back to the cloud when its sync was refused. */
static int echo_side(struct kedge_twin *twin, struct key_outcome *o, bool actual)
{
    const struct kedge_twin_value *v = actual ? &twin->actual : &twin->expected;
    struct kedge_twin_value *sv = actual ? &o->sync.actual : &o->sync.expected;

    *sv = *v;
    sv->value = NULL;
    if (v->value && set_str(&sv->value, v->value) < 0)
        return -ENOMEM;
    if (actual) {
        o->sync.av = twin->av;
        o->sync.has_av = twin->has_av;
    } else {
        o->sync.ev = twin->ev;
        o->sync.has_ev = twin->has_ev;
    }
    o->sync.has_optional = true;
    o->sync.optional = twin->optional;
    o->sync.has_meta = true;
    o->echo = true;
    return kedge_twin_set_type(&o->sync, type_or_empty(twin));
}

/* The type a value is checked against: the stored one, or the request's when the stored twin
 * is deleted (dtmanager isTwinValueDiff). */
static const char *check_type(const struct kedge_twin *twin, const struct kedge_twin *req)
{
    if (twin_deleted(twin))
        return req->has_meta && req->type ? req->type : KEDGE_TYPE_STRING;
    return type_or_empty(twin);
}

/* 1: apply this side; 0: skip it (sync); <0: abort the request (rest). */
static int side_ok(struct update_ctx *c, const char *type, const struct kedge_twin_value *v)
{
    if (!v->present)
        return 0;
    if (!v->value) {
        c->reason = KEDGE_REASON_BODY;
        return c->sync ? 0 : KEDGE_EBODY;
    }
    c->reason = kedge_twin_check_type(type, v->value);
    if (c->reason && c->desired)
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                          "twin: desired value \"%s\" of device=%s skipped: %s", v->value,
                          c->dev->id, c->reason);
    if (c->reason)
        return c->sync ? (c->reason = NULL, 0) : KEDGE_ETYPE;
    return 1;
}

static int compare_side(struct update_ctx *c, struct kedge_twin *twin, const struct kedge_twin *req,
                        struct key_outcome *o, bool actual, bool *changed, bool *sync_allow)
{
    const struct kedge_twin_value *rv = actual ? &req->actual : &req->expected;
    struct kedge_twin_version *ver = actual ? &twin->av : &twin->ev;
    bool *has_ver = actual ? &twin->has_av : &twin->has_ev;
    int rc;

    /* a desired value sets only the expected side, and only when it differs */
    if (c->desired && (actual || (rv->present && rv->value && twin->expected.value &&
                                  !strcmp(rv->value, twin->expected.value))))
        return 0;
    rc = side_ok(c, check_type(twin, req), rv);
    if (rc <= 0)
        return rc;
    if (!*has_ver) {
        memset(ver, 0, sizeof(*ver));
        *has_ver = true;
    }
    if (!deal_version(c, ver, actual ? req->has_av : req->has_ev, actual ? &req->av : &req->ev,
                      false)) {
        *sync_allow = false;
        return echo_side(twin, o, actual);
    }
    *changed = true;
    return apply_value(c, twin, o, rv->value, actual);
}

/* Existing twin, object in the request (dealTwinCompare). */
static int twin_compare(struct update_ctx *c, struct kedge_twin *twin, const struct kedge_twin *req,
                        struct key_outcome *o)
{
    bool changed = false, sync_allow = true;
    int rc;

    if (!twin_deleted(twin)) {
        if (kedge_twin_copy(&o->last, twin) < 0)
            return -ENOMEM;
        o->has_last = true;
    }
    rc = compare_side(c, twin, req, o, false, &changed, &sync_allow);
    if (rc == 0 && sync_allow)
        rc = compare_side(c, twin, req, o, true, &changed, &sync_allow);
    if (rc < 0 || !sync_allow || (c->desired && !twin_deleted(twin))) {
        o->changed = changed;
        return rc;
    }
    /* optional may only go from true to false */
    if (req->has_optional && req->optional != twin->optional && twin->optional) {
        twin->optional = false;
        o->sync.has_optional = true;
        o->sync.optional = false;
        changed = true;
    }
    if (req->has_meta) {
        if (strcmp(req->type ? req->type : "", type_or_empty(twin)) != 0) {
            if (set_str(&twin->meta_col, "{}") < 0)
                return -ENOMEM;
            if (twin_deleted(twin)) {
                if (kedge_twin_set_type(twin, req->type) < 0 ||
                    kedge_twin_set_type(&o->sync, req->type) < 0)
                    return -ENOMEM;
                o->sync.has_meta = true;
            }
            changed = true;
        }
    } else if (twin_deleted(twin)) {
        if (kedge_twin_set_type(twin, KEDGE_TYPE_STRING) < 0 ||
            kedge_twin_set_type(&o->sync, KEDGE_TYPE_STRING) < 0)
            return -ENOMEM;
        o->sync.has_meta = true;
        changed = true;
    }
    o->changed = changed;
    return 0;
}

/* Existing twin to delete (dealTwinDelete): rest deletes only optional twins, on a null; the
 * cloud deletes with type "deleted" and its versions. Each existing version moves on. */
static int twin_delete(struct update_ctx *c, struct kedge_twin *twin, const struct kedge_twin *req,
                       struct key_outcome *o)
{
    struct kedge_twin_value *vals[2] = {&twin->expected, &twin->actual};
    struct kedge_twin_version *vers[2] = {&twin->ev, &twin->av};
    struct kedge_twin_version next[2] = {twin->ev, twin->av};
    bool has[2] = {twin->has_ev, twin->has_av};
    bool req_has[2] = {req->has_ev, req->has_av};
    const struct kedge_twin_version *req_ver[2] = {&req->ev, &req->av};
    int i;

    if ((!c->sync && !twin->optional) || twin_deleted(twin) || (!has[0] && !has[1]))
        return 0;
    /* Check both versions before touching anything: a refused side leaves the twin whole. */
    for (i = 0; i < 2; i++) {
        if (has[i] && !deal_version(c, &next[i], req_has[i], req_ver[i], true)) {
            if (kedge_twin_copy(&o->sync, twin) < 0)
                return -ENOMEM;
            o->echo = true;
            return 0;
        }
    }
    if (kedge_twin_copy(&o->last, twin) < 0)
        return -ENOMEM;
    o->has_last = true;
    for (i = 0; i < 2; i++) {
        if (!has[i])
            continue;
        *vers[i] = next[i];
        kedge_free(vals[i]->value);
        memset(vals[i], 0, sizeof(*vals[i]));
        vals[i]->present = true; /* edgecore keeps an empty object: prints "expected":{} */
    }
    if (kedge_twin_set_type(twin, KEDGE_TYPE_DELETED) < 0)
        return -ENOMEM;
    twin->has_meta = true;
    if (!c->sync && kedge_twin_copy(&o->sync, twin) < 0)
        return -ENOMEM;
    o->deleted = o->changed = true;
    return 0;
}

/* New key (dealTwinAdd): versions start at {0,1} (rest) or the cloud's (sync) for each value
 * supplied, optional defaults to true, type to string. */
static int twin_add(struct update_ctx *c, const struct kedge_twin *req, struct key_outcome *o)
{
    struct kedge_twin t = {0};
    const char *type = req->has_meta ? (req->type ? req->type : "") : KEDGE_TYPE_STRING;
    const struct kedge_twin_value *vals[2] = {&req->expected, &req->actual};
    struct kedge_twin_value *dst[2] = {&t.expected, &t.actual};
    struct kedge_twin_version *vers[2] = {&t.ev, &t.av};
    bool *has_vers[2] = {&t.has_ev, &t.has_av};
    bool req_has[2] = {req->has_ev, req->has_av};
    const struct kedge_twin_version *req_ver[2] = {&req->ev, &req->av};
    int i, rc;

    if (req->is_null) {
        c->reason = KEDGE_REASON_BODY;
        return c->sync ? 0 : KEDGE_EBODY;
    }
    if (c->sync && !strcmp(type, KEDGE_TYPE_DELETED)) {
        for (i = 0; i < 2; i++) {
            *has_vers[i] = req_has[i];
            *vers[i] = *req_ver[i];
        }
    }
    for (i = 0; i < 2; i++) {
        if (!vals[i]->present || (c->desired && i == 1))
            continue;
        memset(vers[i], 0, sizeof(*vers[i]));
        if (!deal_version(c, vers[i], req_has[i], req_ver[i], false))
            return 0; /* sync without a version: the key is skipped */
        rc = side_ok(c, type, vals[i]);
        if (rc <= 0)
            return rc;
        *has_vers[i] = true;
        /* DeviceTwinToMsgTwin: an empty value has its version but no value in memory (and
         * reads back from the row as absent either way) */
        if (!*vals[i]->value)
            continue;
        dst[i]->value = kedge_strdup(vals[i]->value);
        if (!dst[i]->value)
            goto oom;
        dst[i]->present = dst[i]->has_meta = true;
        dst[i]->ts = c->now;
    }
    t.name = kedge_strdup(req->name);
    t.meta_col = req->has_meta ? kedge_strdup("{}") : NULL;
    if (!t.name || kedge_twin_set_type(&t, type) < 0 || (req->has_meta && !t.meta_col))
        goto oom;
    t.has_optional = true;
    t.optional = req->has_optional ? req->optional : true;
    t.has_meta = true;
    if (!c->sync && kedge_twin_copy(&o->sync, &t) < 0)
        goto oom;
    if (!device_twin_insert(c->dev, &t))
        goto oom;
    o->inserted = o->changed = true;
    return 0;
oom:
    kedge_twin_cleanup(&t);
    return -ENOMEM;
}

static void outcomes_cleanup(struct update_ctx *c)
{
    size_t i;

    for (i = 0; i < c->n; i++) {
        kedge_twin_cleanup(&c->keys[i].last);
        kedge_twin_cleanup(&c->keys[i].sync);
    }
    kedge_free(c->keys);
    c->keys = NULL;
    c->n = 0;
}

/* Apply every key in order; rest stops at the first error (edgecore aborts the request). */
static int apply_twins(struct update_ctx *c, const struct kedge_twin *twins, size_t n)
{
    size_t i;
    int rc = 0;

    c->keys = kedge_calloc(n ? n : 1, sizeof(*c->keys));
    if (!c->keys)
        return -ENOMEM;
    for (i = 0; i < n && rc == 0; i++) {
        const struct kedge_twin *r = &twins[i];
        struct kedge_twin *twin = device_twin_find(c->dev, r->name);
        struct key_outcome *o = &c->keys[c->n];

        o->name = r->name;
        if (!twin)
            rc = twin_add(c, r, o);
        else if (c->sync ? r->has_meta && r->type && !strcmp(r->type, KEDGE_TYPE_DELETED)
                         : r->is_null)
            rc = twin_delete(c, twin, r, o);
        else if (r->is_null)
            rc = 0; /* a cloud null without "deleted" type: edgecore would crash; ignore */
        else
            rc = twin_compare(c, twin, r, o);
        if (rc == 0 && (o->changed || o->echo)) {
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
        if (!o->changed || (!o->deleted && twin_deleted(&o->sync)))
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
    kedge_log_limited(&oom_rl, "twin", KEDGE_LOG_ERR,
                      "twin: out of memory building the result for device=%s", c->dev->id);
}

static void queue_document(struct devicetwin *dt, struct update_ctx *c, const char *event_id)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin_doc *docs;
    size_t i, n = 0;

    docs = kedge_calloc(c->n ? c->n : 1, sizeof(*docs));
    if (!docs)
        return;
    for (i = 0; i < c->n; i++) {
        const struct key_outcome *o = &c->keys[i];
        const struct kedge_twin *cur = device_twin_find(c->dev, o->name);
        if (!o->changed)
            continue;
        docs[n].name = o->name;
        docs[n].last = o->has_last ? &o->last : NULL;
        docs[n++].current = o->deleted || (cur && twin_deleted(cur)) ? NULL : cur;
    }
    if (n &&
        kedge_topic_device(&dt->topic, c->dev->id, strlen(c->dev->id),
                           KEDGE_SFX_TWIN_UPDATE_DOCUMENT) == 0 &&
        kedge_twin_document_encode(&b, event_id, c->now, docs, n) == 0)
        queue(dt, &b, REPLY_DROP, NULL);
    kedge_buf_cleanup(&b);
    kedge_free(docs);
}

/* Recomputed over all of the device's twins after every change, with a fresh event id. */
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

/* device/{id}/twin/edge_updated to the cloud (§2.8): rest changes, or the keys whose cloud
 * sync the edge refused (the edge is newer). It joins the same commit as the rows. */
static int queue_cloud_sync(struct devicetwin *dt, struct update_ctx *c)
{
    struct kedge_buf content = KEDGE_BUF_INIT, resource = KEDGE_BUF_INIT;
    struct kedge_twin_ref *refs = kedge_calloc(c->n ? c->n : 1, sizeof(*refs));
    char uuid[KEDGE_UUID_LEN + 1];
    size_t i, n = 0;
    int rc = -ENOMEM;

    if (!refs)
        goto out;
    for (i = 0; i < c->n; i++) {
        const struct key_outcome *o = &c->keys[i];
        if (c->sync ? !o->echo : !o->changed)
            continue;
        refs[n].name = o->name;
        refs[n++].twin = &o->sync;
    }
    rc = 0;
    if (n == 0)
        goto out;
    kedge_uuid4(uuid);
    rc = kedge_twin_map_encode(&content, uuid, kedge_wall_ms(), refs, n, KEDGE_TWIN_VERSIONS);
    if (rc == 0)
        rc = kedge_buf_printf(&resource, "device/%s/twin/edge_updated", c->dev->id);
    if (rc == 0)
        rc = outbox_add_state(&dt->outbox, resource.data, content.data, content.len);
out:
    kedge_free(refs);
    kedge_buf_cleanup(&content);
    kedge_buf_cleanup(&resource);
    return rc;
}

/* Everything after a successful apply: rows, result (rest), document, delta, cloud message. */
static void finish_change(struct devicetwin *dt, struct update_ctx *c, const char *event_id)
{
    int rc;

    if (c->n) {
        (void)write_rows(dt, c); /* a failed write fails the batch: 500 at commit */
        if (devicetwin_mark_dirty(dt, c->dev->id) < 0)
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
        kedge_log_limited(&store_rl, "twin", KEDGE_LOG_ERR, "twin: cloud message for device=%s not queued: %s", c->dev->id,
                  rc == KEDGE_ESTORE ? store_error(dt->store) : kedge_strerror(rc));
}

static int apply_cloud(struct devicetwin *dt, const char *dev_id, const char *event_id,
                       const struct kedge_twin *twins, size_t n, bool desired)
{
    struct update_ctx c = {0};
    char *id;
    int rc;

    c.dev = registry_find(dt->reg, dev_id, strlen(dev_id));
    if (!c.dev)
        return KEDGE_ENODEVICE;
    id = kedge_strdup(c.dev->id);
    if (!id)
        return -ENOMEM;
    c.now = kedge_wall_ms();
    c.sync = true;
    c.desired = desired;
    rc = apply_twins(&c, twins, n);
    if (rc < 0) {
        devicetwin_reload(dt, id);
    } else {
        finish_change(dt, &c, event_id);
    }
    outcomes_cleanup(&c);
    kedge_free(id);
    return rc;
}

int devicetwin_sync(struct devicetwin *dt, const char *dev_id, const char *event_id,
                    const struct kedge_twin *twins, size_t n)
{
    return apply_cloud(dt, dev_id, event_id, twins, n, false);
}

int devicetwin_desired(struct devicetwin *dt, const char *dev_id, const char *event_id,
                       const struct kedge_twin *twins, size_t n)
{
    return apply_cloud(dt, dev_id, event_id, twins, n, true);
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
        kedge_log_limited(&oom_rl, "twin", KEDGE_LOG_ERR,
                          "twin: out of memory decoding update device=%.*s", (int)id_len, id);
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
    rc = apply_twins(&c, req.twins, req.n);
    if (rc < 0) {
        if (rc == -ENOMEM)
            c.reason = "out of memory";
        kedge_log_limited(&bad_input_rl, "twin", KEDGE_LOG_WARN,
                          "twin: update rejected device=%s err=%s reason=\"%s\"", dev_id,
                          kedge_errname(rc), c.reason);
        devicetwin_reload(dt, dev_id); /* undo what the request did before failing */
        queue_error(dt, req.event_id, rc == -ENOMEM ? CODE_INTERNAL : CODE_BAD_REQUEST,
                    c.reason);
        goto out;
    }
    finish_change(dt, &c, req.event_id);
out:
    outcomes_cleanup(&c);
    kedge_free(dev_id);
    kedge_twin_update_cleanup(&req);
}

/* ---- twin get --------------------------------------------------------------------------- */

/* {"event_id","timestamp","twin":{...}} of a device: versions stripped, deleted twins left out. */
static int encode_twins(const struct kedge_device *dev, const char *event_id, struct kedge_buf *b)
{
    struct kedge_twin_ref *refs = kedge_calloc(dev->n_twins ? dev->n_twins : 1, sizeof(*refs));
    size_t i, n = 0;
    int rc;

    if (!refs)
        return -ENOMEM;
    for (i = 0; i < dev->n_twins; i++) {
        if (twin_deleted(&dev->twins[i]))
            continue;
        refs[n].name = dev->twins[i].name;
        refs[n++].twin = &dev->twins[i];
    }
    rc = kedge_twin_map_encode(b, event_id, kedge_wall_ms(), refs, n, 0);
    kedge_free(refs);
    return rc;
}

int devicetwin_encode_twins(struct devicetwin *dt, const char *id, size_t id_len,
                            struct kedge_buf *b)
{
    const struct kedge_device *dev = registry_find(dt->reg, id, id_len);
    struct kedge_buf reason = KEDGE_BUF_INIT;
    int rc;

    if (dev)
        return encode_twins(dev, "", b);
    rc = kedge_buf_printf(&reason, "Device %.*s not found while getting twin", (int)id_len, id);
    if (rc == 0)
        rc = kedge_twin_error_encode(b, "", kedge_wall_ms(), CODE_NOT_FOUND, reason.data);
    kedge_buf_cleanup(&reason);
    return rc;
}

void devicetwin_twin_get(struct devicetwin *dt, const char *id, size_t id_len,
                         const char *payload, size_t len)
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
    if (encode_twins(dev, event_id, &b) < 0)
        goto oom;
    /* It may show writes of the open batch: if that batch fails, the answer is a 500. */
    queue(dt, &b, REPLY_ERR500, event_id);
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

void devicetwin_state_update(struct devicetwin *dt, const char *id, size_t id_len,
                             const char *payload, size_t len)
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
                          rc < 0                   ? kedge_errname(rc)
                          : !dev                   ? "KEDGE_ENODEVICE"
                          : !store_ok(dt->store)   ? "KEDGE_ESTORE"
                                                   : "invalid state");
        goto out;
    }
    if (!strcasecmp(state, "online") || !strcasecmp(state, "ok"))
        kedge_rfc3339_now(last_online);
    if (set_str(&dev->state, state) < 0 || set_str(&dev->last_online, last_online) < 0)
        goto oom;
    (void)store_device_state(dt->store, dev->id, state, last_online);
    if (devicetwin_mark_dirty(dt, dev->id) < 0)
        goto oom;
    kedge_uuid4(uuid);
    if (kedge_topic_device(&dt->topic, id, id_len, KEDGE_SFX_STATE_UPDATE_RESULT) < 0 ||
        kedge_state_result_encode(&b, uuid, kedge_wall_ms(), dev->name, state, last_online) < 0)
        goto oom;
    /* to the cloud: the same JSON, as a string (§2.7) */
    if (kedge_json_escape(&content, b.data, b.len) < 0 ||
        kedge_buf_printf(&resource, "device/%s/state/update", dev->id) < 0)
        goto oom;
    rc = outbox_add_state(&dt->outbox, resource.data, content.data, content.len);
    if (rc < 0)
        kedge_log_limited(&store_rl, "twin", KEDGE_LOG_ERR,
                          "twin: state of device=%s not queued for the cloud: %s", dev->id,
                          rc == KEDGE_ESTORE ? store_error(dt->store) : kedge_strerror(rc));
    queue(dt, &b, REPLY_DROP, NULL);
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

/* Devices sorted by id (Go ranges over a map; a stable order is kinder to readers). */
static int encode_members(struct devicetwin *dt, const char *event_id, struct kedge_buf *b)
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

int devicetwin_encode_members(struct devicetwin *dt, struct kedge_buf *b)
{
    return encode_members(dt, "", b);
}

void devicetwin_membership_get(struct devicetwin *dt, const char *payload, size_t len)
{
    struct kedge_buf b = KEDGE_BUF_INIT, reason = KEDGE_BUF_INIT;
    char *event_id = NULL;
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
    if (encode_members(dt, event_id, &b) < 0)
        goto oom;
    queue(dt, &b, REPLY_ERR500, event_id);
    goto out;
oom:
    kedge_log_limited(&oom_rl, "twin", KEDGE_LOG_ERR,
                      "twin: out of memory answering membership get");
out:
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
    struct store_opts so = {cfg->db_path, cfg->sync && !strcmp(cfg->sync, "full"),
                            cfg->db_lock && !strcmp(cfg->db_lock, "exclusive")};
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
        (void)outbox_init(&dt->outbox, dt->store, cfg);
        return 0;
    }
    load_registry(dt);
    if (eventbus_load_subtopics(dt) < 0)
        kedge_log(KEDGE_LOG_ERR, "eventbus: cannot load sub_topics: %s", store_error(dt->store));
    if (outbox_init(&dt->outbox, dt->store, cfg) < 0)
        kedge_log(KEDGE_LOG_ERR, "outbox: cannot read its state: %s", store_error(dt->store));
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
            devicetwin_reload(dt, dt->dirty[i]);
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
    eventbus_cleanup(dt);
    kedge_free(dt->bridge_status);
    outbox_cleanup(&dt->outbox);
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

int devicetwin_tick(struct devicetwin *dt, bool force)
{
    uint64_t now = kedge_now_ms();
    int rc;

    if (now >= dt->next_sys_ms) {
        dt->next_sys_ms = now + 5000;
        ke_publish_sys(dt);
        if (!store_pending(dt->store))
            outbox_check_stall(&dt->outbox, now);
    }
    if (!store_ok(dt->store) && now >= dt->next_retry_ms) {
        dt->next_retry_ms = now + 5000;
        if (store_retry_open(dt->store) == 0) {
            kedge_log(KEDGE_LOG_NOTICE, "twin: db=%s is open again", dt->cfg->db_path);
            load_registry(dt);
            (void)eventbus_load_subtopics(dt);
            (void)outbox_init(&dt->outbox, dt->store, dt->cfg);
        }
    }
#ifdef KEDGE_UNSAFE_PUBLISH_BEFORE_COMMIT
    replies_flush(dt->out, 0, NULL); /* the bug the crash test must catch */
#endif
    if (!force && !commit_due(dt, now)) {
        if (!store_pending(dt->store)) {
            replies_flush(dt->out, 0, NULL); /* nothing waits on a commit */
            outbox_pump(&dt->outbox);
            store_maintain(dt->store, replies_count(dt->out) == 0);
        }
        return 0;
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
    outbox_committed(&dt->outbox, rc);
    /* a flood keeps a write pending at every tick, so the idle path never runs: the WAL is
     * checkpointed here once it is large (store_maintain), or it grows without bound */
    store_maintain(dt->store, false);
    return rc;
}
