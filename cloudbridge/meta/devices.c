/* Devices: the device controller's Device and DeviceModel objects (docs/kubeedge-wire.md §8), as
 * the plugin's DeviceTwin needs them. MetaManager hands them here (metamgr_set_device_hook)
 * before storing anything.
 *
 * Ids. The cloud names a device by its bare name up to v1.16 and by {namespace}/{name} from
 * v1.17 (cloud_version; config.c says why 1.17). Its own membership message (group twin,
 * through twinbus.c) carries that id but no twins; a Device gives the twin names and its
 * DeviceModel the types, sent here as a membership update of the same id with metadata-only
 * twins, so the device exists once, typed, whichever of the two the plugin sees first.
 *
 * Desired values. cloudcore (v1.15 and later) sends no twin message when
 * spec.properties[].desired.value changes: it sends the whole Device again (resource update).
 * It also sends the Device again after each status patch it makes for a reported value, with
 * the same desired values. So only a desired value that differs from the one in the Device row
 * stored before goes down, as a "device/{id}/twin/desired" message (include/kedge/ke.h): the
 * plugin makes it the twin's expected value and publishes the delta.
 *
 * Durability. The row is stored, and the cloud acked, only after the plugin answered every
 * message this Device produced (its answer comes after its commit). A bridge or broker that
 * stops in between leaves the row as it was: the cloud sends the Device again, the same
 * difference is found again, and the plugin, which ignores an expected value it already
 * holds, applies it once. An update whose resourceVersion is below the stored Device's (a
 * resend that a newer one overtook) is acked and dropped, so an old desired value never
 * comes back.
 *
 * Deletion. The cloud's membership removes the device; the removal sent here for a deleted
 * Device finds nothing then (no second announcement), and covers a cloud that sends none.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "devices.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/util.h"
#include "resource.h"

#define MAX_REFS 2 /* plugin messages per cloud message: membership, desired */

/* A cloud message waiting for the plugin's answers before it is stored and acked. */
struct waiting {
    struct kedge_msg cloud;
    char *refs[MAX_REFS]; /* msg_ids of the plugin messages still unanswered */
    size_t n_refs;
    bool failed;
    bool notify; /* the change hook hears of it (not of a resend with the same spec) */
};

struct devices {
    struct devices_deps deps;
    bool stopping;
    struct kedge_ratelimit rl; /* lines that can repeat per cloud message */
    struct waiting *w;
    size_t n;
    devices_change_fn changed; /* DMI: the mappers hear of it */
    void *changed_ctx;
};

/* One Device, read from its JSON. Members point into the parsed document. */
struct device_view {
    const char *ns, *name;
    const struct kedge_jval *desc, *model, *props, *spec;
};

static const char *jstr(const struct kedge_jval *v)
{
    return v && v->type == KEDGE_JSTR ? v->str : NULL;
}

static bool view_device(const struct kedge_jval *dev, const char *ns, struct device_view *dv)
{
    const struct kedge_jval *meta = kedge_json_get(dev, "metadata");
    const struct kedge_jval *spec = kedge_json_get(dev, "spec");

    dv->ns = ns;
    dv->name = jstr(kedge_json_get(meta, "name"));
    dv->desc = kedge_json_get(kedge_json_get(meta, "labels"), "description");
    dv->model = kedge_json_get(kedge_json_get(spec, "deviceModelRef"), "name");
    dv->spec = spec;
    dv->props = kedge_json_get(spec, "properties");
    if (dv->props && dv->props->type != KEDGE_JARR)
        dv->props = NULL;
    return dv->name && *dv->name;
}

static int device_id(const struct devices *d, const struct device_view *dv, struct kedge_buf *id)
{
    if (d->deps.ids_namespaced)
        return kedge_buf_printf(id, "%s/%s", dv->ns, dv->name);
    return kedge_buf_puts(id, dv->name);
}

/* DeviceModel property type -> the twin type the plugin checks values against. DOUBLE has no
 * edge twin type (edgecore rejects "double"), so it is checked as float. */
static const char *twin_type(const struct kedge_jval *t)
{
    static const struct {
        const char *model, *twin;
    } map[] = {{"int", "int"},      {"integer", "int"},     {"float", "float"},
               {"double", "float"}, {"boolean", "boolean"}, {"bool", "boolean"},
               {"string", "string"}};
    size_t i;

    if (!t || t->type != KEDGE_JSTR)
        return "string";
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcasecmp(t->str, map[i].model))
            return map[i].twin;
    return "string";
}

/* The type of property `name` in the model's spec.properties. */
static const char *prop_type(const struct kedge_jval *mprops, const char *name)
{
    const struct kedge_jval *mp;

    for (mp = mprops && mprops->type == KEDGE_JARR ? mprops->child : NULL; mp; mp = mp->next) {
        const char *mn = jstr(kedge_json_get(mp, "name"));
        if (mn && !strcmp(mn, name))
            return twin_type(kedge_json_get(mp, "type"));
    }
    return "string";
}

/* A twin's "metadata":{"type":..}, typed as the model's property `name`. */
static void write_twin_type(struct kedge_jw *w, const struct kedge_jval *mprops, const char *name)
{
    kedge_jw_key(w, "metadata");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "type", prop_type(mprops, name));
    kedge_jw_obj_close(w);
}

/* spec.properties[name].desired.value of a Device, or NULL. */
static const char *desired_of(const struct kedge_jval *props, const char *name)
{
    const struct kedge_jval *p;

    for (p = props ? props->child : NULL; p; p = p->next) {
        const char *pn = jstr(kedge_json_get(p, "name"));
        if (pn && !strcmp(pn, name))
            return jstr(kedge_json_get(kedge_json_get(p, "desired"), "value"));
    }
    return NULL;
}

/* ---- waiting for the plugin --------------------------------------------------------------- */

static void waiting_free(struct waiting *w)
{
    size_t i;

    for (i = 0; i < w->n_refs; i++)
        kedge_free(w->refs[i]);
    kedge_msg_cleanup(&w->cloud);
}

/* The plugin has (ok) or has not applied everything of the cloud message: store and ack it,
 * or leave both so that the cloud sends it again. */
static void settle(struct devices *d, const struct kedge_msg *cloud, bool failed, bool notify)
{
    int rc;

    if (failed) {
        kedge_log_limited(&d->rl, "devices", KEDGE_LOG_WARN,
                          "devices: %s %s not applied by the plugin; the cloud resends",
                          cloud->operation, cloud->resource);
        return;
    }
    rc = metamgr_store(d->deps.meta, cloud);
    if (rc < 0) {
        kedge_log_limited(&d->rl, "devices", KEDGE_LOG_ERR,
                          "devices: %s not stored (%s); the cloud resends", cloud->resource,
                          kedge_strerror(rc));
        return;
    }
    if (resource_needs_ack(cloud))
        (void)edgehub_ack(d->deps.hub, cloud); /* logged there when not sent */
    if (d->changed && notify)
        d->changed(d->changed_ctx, "device", cloud->operation, cloud->content, cloud->content_len,
                   NULL);
}

static void plugin_answered(void *ctx, const struct kedge_msg *m, bool ok)
{
    struct devices *d = ctx;
    size_t i, j;

    for (i = 0; d && i < d->n; i++) {
        struct waiting *w = &d->w[i];
        for (j = 0; j < w->n_refs && strcmp(w->refs[j], m->msg_id); j++)
            ;
        if (j == w->n_refs)
            continue;
        kedge_free(w->refs[j]);
        w->refs[j] = w->refs[--w->n_refs];
        w->failed |= !ok;
        if (w->n_refs)
            return;
        if (!d->stopping)
            settle(d, &w->cloud, w->failed, w->notify);
        waiting_free(w);
        d->w[i] = d->w[--d->n];
        return;
    }
}

/* Only the plugin's answer matters to nobody: the types of a model change are sent again with
 * the next Device. */
static void logged_only(void *ctx, const struct kedge_msg *m, bool ok)
{
    struct devices *d = ctx;

    if (!ok)
        kedge_log_limited(&d->rl, "devices", KEDGE_LOG_WARN,
                          "devices: the plugin did not take device types %s", m->msg_id);
}

/* Send one twin-group message to the plugin; its msg_id joins w (NULL: answer only logged). */
static int to_plugin(struct devices *d, const char *resource, struct kedge_buf *content,
                     struct waiting *w)
{
    struct kedge_msg m = {0};
    char *ref = NULL;
    int rc;

    m.source = "metamanager";
    m.group = "twin";
    m.operation = "update";
    m.resource = (char *)resource;
    m.content = content->data;
    m.content_len = content->len;
    rc = kedge_msg_new_id(&m);
    if (rc == 0 && w && !(ref = kedge_strdup(m.msg_id)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = d->deps.send(d->deps.sender, &m, w ? plugin_answered : logged_only, d);
    if (rc == 0 && w)
        w->refs[w->n_refs++] = ref;
    else
        kedge_free(ref);
    kedge_free(m.msg_id);
    return rc;
}

/* ---- the plugin's messages ------------------------------------------------------------------ */

/* The Device's model as MetaManager stores it, whose spec.properties type the twins; NULL
 * when it names none, or it is not stored (yet) or not JSON: then every twin is a string. */
static struct kedge_jdoc *load_model(struct devices *d, const struct device_view *dv)
{
    struct kedge_buf key = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    char *json = NULL;

    if (jstr(dv->model) &&
        kedge_buf_printf(&key, "%s/devicemodel/%s", dv->ns, dv->model->str) == 0 &&
        metamgr_get(d->deps.meta, key.data, &json) == 0 &&
        kedge_json_parse(json, strlen(json), &doc) < 0)
        doc = NULL;
    kedge_buf_cleanup(&key);
    kedge_free(json);
    return doc;
}

static const struct kedge_jval *model_properties(const struct kedge_jdoc *model)
{
    return model ? kedge_json_get(kedge_json_get(kedge_jdoc_root(model), "spec"), "properties")
                 : NULL;
}

/* Membership update (include/kedge/ke.h): the device added with metadata-only twins typed from
 * its model, or removed. */
static int push_membership(struct devices *d, const struct device_view *dv, const char *id,
                           bool removed, struct waiting *w)
{
    struct kedge_buf content = KEDGE_BUF_INIT;
    struct kedge_jdoc *mdoc = removed ? NULL : load_model(d, dv);
    const struct kedge_jval *mprops = model_properties(mdoc), *p;
    struct kedge_jw w_;
    int rc;

    kedge_jw_init(&w_, &content);
    kedge_jw_obj_open(&w_);
    kedge_jw_kstr(&w_, "event_id", "");
    kedge_jw_kint(&w_, "timestamp", kedge_wall_ms());
    kedge_jw_key(&w_, removed ? "added_devices" : "removed_devices");
    kedge_jw_null(&w_);
    kedge_jw_key(&w_, removed ? "removed_devices" : "added_devices");
    kedge_jw_arr_open(&w_);
    kedge_jw_obj_open(&w_);
    kedge_jw_kstr(&w_, "id", id);
    kedge_jw_kstr(&w_, "name", dv->name);
    if (jstr(dv->desc))
        kedge_jw_kstr(&w_, "description", dv->desc->str);
    if (!removed && dv->props && dv->props->n) {
        kedge_jw_key(&w_, "twin");
        kedge_jw_obj_open(&w_);
        for (p = dv->props->child; p; p = p->next) {
            const char *pn = jstr(kedge_json_get(p, "name"));
            if (!pn)
                continue;
            kedge_jw_key(&w_, pn);
            kedge_jw_obj_open(&w_);
            write_twin_type(&w_, mprops, pn);
            kedge_jw_obj_close(&w_);
        }
        kedge_jw_obj_close(&w_);
    }
    kedge_jw_obj_close(&w_);
    kedge_jw_arr_close(&w_);
    kedge_jw_obj_close(&w_);
    rc = kedge_jw_finish(&w_);
    if (rc == 0)
        rc = to_plugin(d, "membership", &content, w);
    kedge_buf_cleanup(&content);
    kedge_jdoc_free(mdoc);
    return rc;
}

/* The desired values of dv that differ from those of the stored Device (old, NULL: none
 * stored) as a desired message; nothing when none changed. A desired value taken away in the
 * cloud changes nothing on the edge: the twin keeps its expected value, as edgecore's twin
 * does when the cloud stops sending one. */
static int push_desired(struct devices *d, const struct device_view *dv,
                        const struct kedge_jval *old_props, const char *id, struct waiting *w)
{
    struct kedge_buf content = KEDGE_BUF_INIT, resource = KEDGE_BUF_INIT;
    struct kedge_jdoc *mdoc = load_model(d, dv);
    const struct kedge_jval *mprops = model_properties(mdoc), *p;
    struct kedge_jw jw;
    size_t n = 0;
    int rc;

    kedge_jw_init(&jw, &content);
    kedge_jw_obj_open(&jw);
    kedge_jw_kstr(&jw, "event_id", "");
    kedge_jw_kint(&jw, "timestamp", kedge_wall_ms());
    kedge_jw_key(&jw, "twin");
    kedge_jw_obj_open(&jw);
    for (p = dv->props ? dv->props->child : NULL; p; p = p->next) {
        const char *pn = jstr(kedge_json_get(p, "name"));
        const char *now = jstr(kedge_json_get(kedge_json_get(p, "desired"), "value"));
        const char *before = old_props ? desired_of(old_props, pn ? pn : "") : NULL;
        if (!pn || !now || !*now || (before && !strcmp(before, now)))
            continue;
        kedge_jw_key(&jw, pn);
        kedge_jw_obj_open(&jw);
        kedge_jw_key(&jw, "expected");
        kedge_jw_obj_open(&jw);
        kedge_jw_kstr(&jw, "value", now);
        kedge_jw_obj_close(&jw);
        write_twin_type(&jw, mprops, pn);
        kedge_jw_obj_close(&jw);
        n++;
    }
    kedge_jw_obj_close(&jw);
    kedge_jw_obj_close(&jw);
    rc = kedge_jw_finish(&jw);
    if (rc == 0 && n) {
        kedge_log_limited(&d->rl, "devices", KEDGE_LOG_INFO,
                          "devices: %zu desired value(s) of device=%s to its twin", n, id);
        rc = kedge_buf_printf(&resource, "device/%s/twin/desired", id);
        if (rc == 0)
            rc = to_plugin(d, resource.data, &content, w);
    }
    kedge_buf_cleanup(&content);
    kedge_buf_cleanup(&resource);
    kedge_jdoc_free(mdoc);
    return rc;
}

/* ---- cloud messages ------------------------------------------------------------------------- */

/* "{ns}/device/{name}" -> ns. */
static int ns_of(const char *resource, char *ns, size_t n)
{
    const char *slash = strchr(resource, '/');

    if (!slash || slash == resource || (size_t)(slash - resource) >= n)
        return -1;
    memcpy(ns, resource, (size_t)(slash - resource));
    ns[slash - resource] = '\0';
    return 0;
}

/* metadata.resourceVersion as a number (etcd's revision, which the API server hands out in
 * increasing order); -1 when there is none or it is not a number. */
static long long resource_version(const struct kedge_jval *dev)
{
    const char *rv = jstr(kedge_json_get(kedge_json_get(dev, "metadata"), "resourceVersion"));
    char *end;
    long long n;

    if (!rv || !*rv)
        return -1;
    n = strtoll(rv, &end, 10);
    return *end || n < 0 ? -1 : n;
}

/* An update older than the stored Device: the cloud resent a message that a newer one overtook
 * (cloudcore re-queues a message left unacked after a few tries). Applying it would bring an
 * old desired value back. */
static bool stale(const struct kedge_jval *dev, const struct kedge_jval *old)
{
    long long now = resource_version(dev), before = resource_version(old);

    return now >= 0 && before >= 0 && now < before;
}

/* Whether the twins' names and types could differ from those of the stored Device: another
 * model, or other property names. */
static bool shape_changed(const struct device_view *dv, const struct device_view *old)
{
    const struct kedge_jval *a, *b;

    if (!jstr(dv->model) != !jstr(old->model) ||
        (jstr(dv->model) && strcmp(dv->model->str, old->model->str)))
        return true;
    a = dv->props ? dv->props->child : NULL;
    b = old->props ? old->props->child : NULL;
    for (; a && b; a = a->next, b = b->next) {
        const char *an = jstr(kedge_json_get(a, "name")), *bn = jstr(kedge_json_get(b, "name"));
        if (!an != !bn || (an && strcmp(an, bn)))
            return true;
    }
    return a || b;
}

/* The membership (when the shape is new) and desired messages of one Device to the plugin;
 * the cloud message waits for their answers. old: the stored Device, NULL when none. */
static int to_twins(struct devices *d, const struct kedge_msg *m, const struct device_view *dv,
                    const struct device_view *old, bool removed)
{
    struct kedge_buf id = KEDGE_BUF_INIT;
    struct waiting *nw, *w;
    int rc;

    nw = kedge_realloc(d->w, (d->n + 1) * sizeof(*nw));
    if (!nw)
        return -ENOMEM;
    d->w = nw;
    w = &d->w[d->n];
    memset(w, 0, sizeof(*w));
    /* cloudcore sends the whole Device again after each status patch it makes for a reported
     * value: a mapper hears of a Device only when its spec changed (edgecore passes every
     * resend on as an UpdateDevice, and the mapper-framework restarts the device for each) */
    w->notify = removed || !old || !kedge_json_equal(dv->spec, old->spec);
    rc = kedge_msg_copy(&w->cloud, m);
    if (rc == 0)
        rc = device_id(d, dv, &id);
    if (rc == 0 && (removed || !old || shape_changed(dv, old)))
        rc = push_membership(d, dv, id.data, removed, w);
    if (rc == 0 && !removed)
        rc = push_desired(d, dv, old ? old->props : NULL, id.data, w);
    if (w->n_refs) {
        /* what went to the plugin is answered; a failure after it fails the whole */
        w->failed = rc < 0;
        d->n++;
    } else {
        bool notify = w->notify;
        waiting_free(w);
        if (rc == 0) /* nothing for the plugin: stored and acked now */
            settle(d, m, false, notify);
    }
    kedge_buf_cleanup(&id);
    return rc;
}

/* A Device: the types go down for one not stored before or whose shape changed (cloudcore
 * sends the Device again after every status patch, and a membership sync republishes the
 * delta); the desired values that changed; an update older than the stored Device is acked
 * and dropped. */
static int on_device(struct devices *d, const struct kedge_msg *m, const char *ns)
{
    bool removed = !strcmp(m->operation, "delete"), had_old = false;
    struct kedge_jdoc *doc = NULL, *old = NULL;
    struct device_view dv, ov = {0};
    char *old_json = NULL;
    int rc = 0;

    if (kedge_json_parse(m->content, m->content_len, &doc) < 0 ||
        !view_device(kedge_jdoc_root(doc), ns, &dv)) {
        kedge_jdoc_free(doc);
        return KEDGE_ESCHEMA; /* a Device without a name: nothing to store or ack */
    }
    if (!removed && metamgr_get(d->deps.meta, m->resource, &old_json) == 0 &&
        kedge_json_parse(old_json, strlen(old_json), &old) == 0)
        had_old = view_device(kedge_jdoc_root(old), ns, &ov);
    if (had_old && stale(kedge_jdoc_root(doc), kedge_jdoc_root(old))) {
        kedge_log_limited(&d->rl, "devices", KEDGE_LOG_INFO,
                          "devices: %s %s is older than the stored one: acked, not applied",
                          m->operation, m->resource);
        if (resource_needs_ack(m))
            (void)edgehub_ack(d->deps.hub, m); /* logged there when not sent */
    } else {
        rc = to_twins(d, m, &dv, had_old ? &ov : NULL, removed);
    }
    kedge_free(old_json);
    kedge_jdoc_free(old);
    kedge_jdoc_free(doc);
    return rc;
}

struct model_ctx {
    struct devices *d;
    const char *ns, *model;
};

/* A DeviceModel changed: every stored device that uses it gets its types again. */
static void repush(void *arg, const char *key, const char *value)
{
    struct model_ctx *c = arg;
    struct kedge_jdoc *doc = NULL;
    struct kedge_buf id = KEDGE_BUF_INIT;
    struct device_view dv;
    size_t nl = strlen(c->ns);

    if (!value || strncmp(key, c->ns, nl) || key[nl] != '/' ||
        kedge_json_parse(value, strlen(value), &doc) < 0)
        return;
    if (view_device(kedge_jdoc_root(doc), c->ns, &dv) && jstr(dv.model) &&
        !strcmp(dv.model->str, c->model) && device_id(c->d, &dv, &id) == 0)
        (void)push_membership(c->d, &dv, id.data, false, NULL);
    kedge_buf_cleanup(&id);
    kedge_jdoc_free(doc);
}

static int on_cloud(void *ctx, const struct kedge_msg *m, const char *type)
{
    struct devices *d = ctx;
    char ns[256], *old = NULL;
    int rc;

    if (ns_of(m->resource, ns, sizeof(ns)) < 0)
        return KEDGE_ESCHEMA;
    if (!strcmp(type, "device"))
        return on_device(d, m, ns);
    /* a DeviceModel: stored and acked now; its devices get the types again. A delete carries
     * only the model's metadata: the mappers' notice needs the stored row's spec.protocol. */
    if (d->changed && !strcmp(m->operation, "delete") &&
        metamgr_get(d->deps.meta, m->resource, &old) < 0)
        old = NULL;
    rc = metamgr_store(d->deps.meta, m);
    if (rc < 0) {
        kedge_free(old);
        return rc;
    }
    if (strcmp(m->operation, "delete")) {
        struct model_ctx c = {d, ns, strrchr(m->resource, '/') + 1};
        (void)metamgr_list(d->deps.meta, "device", repush, &c);
    }
    if (resource_needs_ack(m))
        (void)edgehub_ack(d->deps.hub, m); /* logged there when not sent; the cloud resends */
    if (d->changed)
        d->changed(d->changed_ctx, "devicemodel", m->operation, m->content, m->content_len, old);
    kedge_free(old);
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int devices_new(const struct devices_deps *deps, struct devices **out)
{
    struct devices *d = kedge_calloc(1, sizeof(*d));

    *out = d;
    if (!d)
        return -ENOMEM;
    d->deps = *deps;
    d->rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(10000, 10);
    metamgr_set_device_hook(deps->meta, on_cloud, d);
    return 0;
}

void devices_set_change_hook(struct devices *d, devices_change_fn fn, void *ctx)
{
    d->changed = fn;
    d->changed_ctx = ctx;
}

void devices_stop(struct devices *d)
{
    if (d)
        d->stopping = true;
}

void devices_free(struct devices *d)
{
    if (!d)
        return;
    while (d->n)
        waiting_free(&d->w[--d->n]);
    kedge_free(d->w);
    kedge_free(d);
}
