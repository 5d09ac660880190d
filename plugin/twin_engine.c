/* The twin engine: dtmanager/twin.go's DealMsgTwin (rest, sync and the cloud's desired
 * values) applied to one device in memory, and the JSON its outcome is reported in. Pure: no
 * store, no broker; twin_engine.h says what each mode does.
 *
 * Deliberate differences from edgecore, each safer for the device:
 *  - an "expected"/"actual" object without "value" is refused with 400 (edgecore crashes);
 *  - a value is always type-checked (edgecore skips the check when the stored twin has no
 *    expected value yet);
 *  - re-deleting an already deleted twin produces nothing (the spec allows skipping edgecore's
 *    stray document entry).
 */
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "twin_engine.h"

static struct kedge_ratelimit bad_input_rl = KEDGE_RATELIMIT_INIT(10000, 20);

/* ---- small helpers ------------------------------------------------------------------------ */

bool twin_is_deleted(const struct kedge_twin *t)
{
    return t->type && !strcmp(t->type, KEDGE_TYPE_DELETED);
}

static const char *type_or_empty(const struct kedge_twin *t)
{
    return t->has_meta && t->type ? t->type : "";
}

/* ---- the twin engine: dtmanager/twin.go's DealMsgTwin, rest and sync ---------------------- */

/* dealVersion: rest bumps the edge count; sync takes the cloud's pair unless ours is newer.
 * A sync without a version is refused, except for deletions. */
static bool deal_version(const struct twin_change *c, struct kedge_twin_version *ver, bool has_req,
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
static int apply_value(struct twin_change *c, struct kedge_twin *twin, struct twin_key *o,
                       const char *value, bool actual)
{
    struct kedge_twin_value *v = actual ? &twin->actual : &twin->expected;
    struct kedge_twin_value *sv = actual ? &o->sync.actual : &o->sync.expected;

    if (kedge_replace_str(&v->value, value) < 0)
        return -ENOMEM;
    v->present = v->has_meta = true;
    v->ts = c->now;
    if (c->sync)
        return 0;
    if (kedge_replace_str(&sv->value, value) < 0)
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
static int echo_side(struct kedge_twin *twin, struct twin_key *o, bool actual)
{
    const struct kedge_twin_value *v = actual ? &twin->actual : &twin->expected;
    struct kedge_twin_value *sv = actual ? &o->sync.actual : &o->sync.expected;

    *sv = *v;
    sv->value = NULL;
    if (v->value && kedge_replace_str(&sv->value, v->value) < 0)
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
    if (twin_is_deleted(twin))
        return req->has_meta && req->type ? req->type : KEDGE_TYPE_STRING;
    return type_or_empty(twin);
}

/* 1: apply this side; 0: skip it (sync); <0: abort the request (rest). */
static int side_ok(struct twin_change *c, const char *type, const struct kedge_twin_value *v)
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

static int compare_side(struct twin_change *c, struct kedge_twin *twin,
                        const struct kedge_twin *req, struct twin_key *o, bool actual,
                        bool *changed, bool *sync_allow)
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
static int twin_compare(struct twin_change *c, struct kedge_twin *twin,
                        const struct kedge_twin *req, struct twin_key *o)
{
    bool changed = false, sync_allow = true;
    int rc;

    if (!twin_is_deleted(twin)) {
        if (kedge_twin_copy(&o->last, twin) < 0)
            return -ENOMEM;
        o->has_last = true;
    }
    rc = compare_side(c, twin, req, o, false, &changed, &sync_allow);
    if (rc == 0 && sync_allow)
        rc = compare_side(c, twin, req, o, true, &changed, &sync_allow);
    if (rc < 0 || !sync_allow || (c->desired && !twin_is_deleted(twin))) {
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
            if (kedge_replace_str(&twin->meta_col, "{}") < 0)
                return -ENOMEM;
            if (twin_is_deleted(twin)) {
                if (kedge_twin_set_type(twin, req->type) < 0 ||
                    kedge_twin_set_type(&o->sync, req->type) < 0)
                    return -ENOMEM;
                o->sync.has_meta = true;
            }
            changed = true;
        }
    } else if (twin_is_deleted(twin)) {
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
static int twin_delete(struct twin_change *c, struct kedge_twin *twin, const struct kedge_twin *req,
                       struct twin_key *o)
{
    struct kedge_twin_value *vals[2] = {&twin->expected, &twin->actual};
    struct kedge_twin_version *vers[2] = {&twin->ev, &twin->av};
    struct kedge_twin_version next[2] = {twin->ev, twin->av};
    bool has[2] = {twin->has_ev, twin->has_av};
    bool req_has[2] = {req->has_ev, req->has_av};
    const struct kedge_twin_version *req_ver[2] = {&req->ev, &req->av};
    int i;

    if ((!c->sync && !twin->optional) || twin_is_deleted(twin) || (!has[0] && !has[1]))
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
static int twin_add(struct twin_change *c, const struct kedge_twin *req, struct twin_key *o)
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

void twin_change_cleanup(struct twin_change *c)
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

int twin_apply(struct twin_change *c, struct kedge_device *dev, enum twin_mode mode, int64_t now,
               const struct kedge_twin *twins, size_t n)
{
    size_t i;
    int rc = 0;

    memset(c, 0, sizeof(*c));
    c->dev = dev;
    c->now = now;
    c->sync = mode != TWIN_REST;
    c->desired = mode == TWIN_DESIRED;
    c->keys = kedge_calloc(n ? n : 1, sizeof(*c->keys));
    if (!c->keys)
        return -ENOMEM;
    for (i = 0; i < n && rc == 0; i++) {
        const struct kedge_twin *r = &twins[i];
        struct kedge_twin *twin = device_twin_find(c->dev, r->name);
        struct twin_key *o = &c->keys[c->n];

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

/* ---- what a change reports -------------------------------------------------------------- */

/* Names the keys of a change a twin map carries into refs. For the cloud: sync mode's echoes,
 * else the changed keys. For the device: the changed keys, a deleted one as null, leaving out
 * those whose type became "deleted" as BuildDeviceTwinResult does. Returns how many. */
static size_t pick_keys(const struct twin_change *c, bool for_cloud, struct kedge_twin_ref *refs)
{
    size_t i, n = 0;

    for (i = 0; i < c->n; i++) {
        const struct twin_key *o = &c->keys[i];
        if (for_cloud ? (c->sync ? !o->echo : !o->changed)
                      : (!o->changed || (!o->deleted && twin_is_deleted(&o->sync))))
            continue;
        refs[n].name = o->name;
        refs[n++].twin = !for_cloud && o->deleted ? NULL : &o->sync;
    }
    return n;
}

/* The twin map of a change's picked keys; for the cloud only when some key is picked, with
 * versions. *n_picked says how many keys it names. */
static int encode_key_map(const struct twin_change *c, bool for_cloud, const char *event_id,
                          int64_t ts, struct kedge_buf *b, size_t *n_picked)
{
    struct kedge_twin_ref *refs = kedge_calloc(c->n ? c->n : 1, sizeof(*refs));
    int rc = 0;

    if (!refs)
        return -ENOMEM;
    *n_picked = pick_keys(c, for_cloud, refs);
    if (*n_picked || !for_cloud)
        rc = kedge_twin_map_encode(b, event_id, ts, refs, *n_picked,
                                   for_cloud ? KEDGE_TWIN_VERSIONS : 0);
    kedge_free(refs);
    return rc;
}

int twin_encode_result(const struct twin_change *c, const char *event_id, struct kedge_buf *b)
{
    size_t n;

    return encode_key_map(c, false, event_id, c->now, b, &n);
}

int twin_encode_document(const struct twin_change *c, const char *event_id, struct kedge_buf *b)
{
    struct kedge_twin_doc *docs = kedge_calloc(c->n ? c->n : 1, sizeof(*docs));
    size_t i, n = 0;
    int rc;

    if (!docs)
        return -ENOMEM;
    for (i = 0; i < c->n; i++) {
        const struct twin_key *o = &c->keys[i];
        const struct kedge_twin *cur = device_twin_find(c->dev, o->name);
        if (!o->changed)
            continue;
        docs[n].name = o->name;
        docs[n].last = o->has_last ? &o->last : NULL;
        docs[n++].current = o->deleted || (cur && twin_is_deleted(cur)) ? NULL : cur;
    }
    rc = n ? kedge_twin_document_encode(b, event_id, c->now, docs, n) : 0;
    kedge_free(docs);
    return rc < 0 ? rc : n > 0;
}

int twin_encode_cloud(const struct twin_change *c, const char *event_id, int64_t ts,
                      struct kedge_buf *b)
{
    size_t n;
    int rc = encode_key_map(c, true, event_id, ts, b, &n);

    return rc < 0 ? rc : n > 0;
}

int twin_encode_get(const struct kedge_device *dev, const char *event_id, int64_t ts,
                    struct kedge_buf *b)
{
    struct kedge_twin_ref *refs = kedge_calloc(dev->n_twins ? dev->n_twins : 1, sizeof(*refs));
    size_t i, n = 0;
    int rc;

    if (!refs)
        return -ENOMEM;
    for (i = 0; i < dev->n_twins; i++) {
        if (twin_is_deleted(&dev->twins[i]))
            continue;
        refs[n].name = dev->twins[i].name;
        refs[n++].twin = &dev->twins[i];
    }
    rc = kedge_twin_map_encode(b, event_id, ts, refs, n, 0);
    kedge_free(refs);
    return rc;
}
