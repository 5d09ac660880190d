/* devices.c: the device controller's view of devices (cloud/pkg/devicecontroller, v1.15.4 and
 * v1.17.0), in the cloud generation --cloud-version selects.
 *
 * What it knows: every Device the cloud sent down (a resource insert/update of
 * {ns}/device/{name}, kept with its status) and every device id a membership update added
 * (the real controller only names devices it has). Ids: the bare name up to v1.16
 * (createDevice: ID = device.Name; GetDeviceID reads one level), {ns}/{name} from v1.17
 * (util.GetResourceID; GetDeviceID reads two levels).
 *
 * What it does with a twin report (upstream.go updateDeviceStatus): the id comes from the
 * resource as GetDeviceID reads it; an unknown id is logged ("Device %s does not exist in
 * downstream controller") and never answered. For a known Device, each reported twin that
 * status.twins lists (findTwinByName; others are dropped) gets reported = {value, metadata
 * {timestamp, type}} from its actual value and observedDesired likewise from its expected
 * value; the status is merged into the Device (a new resourceVersion), and, as the real
 * informer does after that patch (isDeviceUpdated compares ObjectMeta, whose managedFields
 * changed), the Device goes down again as a resource update.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"

struct sim_device {
    struct sim_device *next;
    char *ns, *name, *node;
    char *json;
    size_t len;
    char rv[24];
};

struct devctl {
    long minor; /* 15 for a v1.15 cloud */
    unsigned long long *rv_counter;
    struct sim_device *devs;
    char **ids; /* added by membership updates */
    size_t n_ids;
};

static void dev_free(struct sim_device *d)
{
    if (!d)
        return;
    kedge_free(d->ns);
    kedge_free(d->name);
    kedge_free(d->node);
    kedge_free(d->json);
    kedge_free(d);
}

static bool namespaced(const struct devctl *d)
{
    return d->minor >= 17;
}

/* The id this generation gives a Device. */
static int dev_id(const struct devctl *d, const struct sim_device *s, struct kedge_buf *b)
{
    return namespaced(d) ? kedge_buf_printf(b, "%s/%s", s->ns, s->name)
                         : kedge_buf_puts(b, s->name);
}

static struct sim_device *find_by_id(struct devctl *d, const char *id)
{
    struct sim_device *s;
    struct kedge_buf b = KEDGE_BUF_INIT;

    for (s = d->devs; s; s = s->next) {
        kedge_buf_reset(&b);
        if (dev_id(d, s, &b) == 0 && !strcmp(b.data, id))
            break;
    }
    kedge_buf_cleanup(&b);
    return s;
}

static struct sim_device **find_slot(struct devctl *d, const char *ns, const char *name)
{
    struct sim_device **p;

    for (p = &d->devs; *p; p = &(*p)->next)
        if (!strcmp((*p)->ns, ns) && !strcmp((*p)->name, name))
            break;
    return p;
}

static bool id_known(const struct devctl *d, const char *id)
{
    size_t i;

    for (i = 0; i < d->n_ids; i++)
        if (!strcmp(d->ids[i], id))
            return true;
    return false;
}

/* ---- downstream: what the cloud sent -------------------------------------------------------- */

/* The elements of an array member (NULL when it is absent, null or not an array). */
static const struct kedge_jval *elements(const struct kedge_jval *obj, const char *key)
{
    const struct kedge_jval *a = kedge_json_get(obj, key);

    return a && a->type == KEDGE_JARR ? a->child : NULL;
}

static int membership(struct devctl *d, const struct kedge_msg *m)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *e;
    int rc = 0;

    if (kedge_json_parse(m->content, m->content_len, &doc) < 0)
        return 0;
    root = kedge_jdoc_root(doc);
    for (e = elements(root, "added_devices"); e && rc == 0; e = e->next) {
        const struct kedge_jval *id = kedge_json_get(e, "id");
        char **n;
        if (!id || id->type != KEDGE_JSTR || id_known(d, id->str))
            continue;
        n = kedge_realloc(d->ids, (d->n_ids + 1) * sizeof(*n));
        if (!n || !(n[d->n_ids] = kedge_strdup(id->str))) {
            if (n)
                d->ids = n;
            rc = -ENOMEM;
            break;
        }
        d->ids = n;
        d->n_ids++;
    }
    for (e = elements(root, "removed_devices"); e; e = e->next) {
        const struct kedge_jval *id = kedge_json_get(e, "id");
        size_t i;
        for (i = 0; id && id->type == KEDGE_JSTR && i < d->n_ids; i++) {
            if (strcmp(d->ids[i], id->str))
                continue;
            kedge_free(d->ids[i]);
            d->ids[i] = d->ids[--d->n_ids];
            break;
        }
    }
    kedge_jdoc_free(doc);
    return rc;
}

int devctl_downstream(struct devctl *d, const struct kedge_msg *m, const char *ns, const char *name)
{
    struct sim_device **slot, *s;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *node;

    if (!ns)
        return membership(d, m);
    slot = find_slot(d, ns, name);
    if (!strcmp(m->operation, "delete")) {
        s = *slot;
        if (s) {
            *slot = s->next;
            dev_free(s);
        }
        return 0;
    }
    if (kedge_json_parse(m->content, m->content_len, &doc) < 0)
        return 0;
    node = kedge_json_get(kedge_json_get(kedge_jdoc_root(doc), "spec"), "nodeName");
    s = *slot;
    if (s && m->resource_version &&
        strtoull(m->resource_version, NULL, 10) < strtoull(s->rv, NULL, 10)) {
        /* an old version sent again (a resend a newer one overtook): the API server's object
         * stays what it is */
        kedge_jdoc_free(doc);
        return 0;
    }
    if (!s) {
        s = kedge_calloc(1, sizeof(*s));
        if (!s || !(s->ns = kedge_strdup(ns)) || !(s->name = kedge_strdup(name))) {
            dev_free(s);
            kedge_jdoc_free(doc);
            return -ENOMEM;
        }
        *slot = s;
    }
    kedge_free(s->node);
    kedge_free(s->json);
    s->node = kedge_strdup(node && node->type == KEDGE_JSTR ? node->str : "");
    s->json = kedge_strndup(m->content, m->content_len);
    s->len = m->content_len;
    (void)snprintf(s->rv, sizeof(s->rv), "%s", m->resource_version ? m->resource_version : "");
    {
        /* versions only go up (etcd's revision): ours continue above the one sent */
        char *end;
        unsigned long long rv = strtoull(s->rv, &end, 10);
        if (*s->rv && !*end && rv > *d->rv_counter)
            *d->rv_counter = rv;
    }
    kedge_jdoc_free(doc);
    if (!s->node || !s->json) {
        *slot = s->next;
        dev_free(s);
        return -ENOMEM;
    }
    return 0;
}

int devctl_get(struct devctl *d, const char *ns, const char *name, const char **json, size_t *len,
               const char **rv)
{
    struct sim_device *s = *find_slot(d, ns, name);

    if (!s)
        return -ENOENT;
    *json = s->json;
    *len = s->len;
    *rv = s->rv;
    return 0;
}

/* ---- upstream: twin reports ----------------------------------------------------------------- */

/* GetDeviceID on the edge's resource device/{id}/twin/edge_updated: one level before v1.17,
 * two from v1.17. */
static int id_from_resource(const struct devctl *d, const char *res, struct kedge_buf *id)
{
    const char *a, *b, *c;

    if (strncmp(res, "device/", 7))
        return -1;
    a = res + 7;
    b = strchr(a, '/');
    if (!b)
        return -1;
    if (!namespaced(d))
        return kedge_buf_append(id, a, (size_t)(b - a));
    c = strchr(b + 1, '/');
    return c ? kedge_buf_append(id, a, (size_t)(c - a)) : -1;
}

/* reported/observedDesired as upstream.go builds them. */
static void write_property(struct kedge_jw *w, const struct kedge_jval *side,
                           const struct kedge_jval *meta)
{
    const struct kedge_jval *ts = kedge_json_get(kedge_json_get(side, "metadata"), "timestamp");
    const struct kedge_jval *type = kedge_json_get(meta, "type");
    int64_t t = 0;

    kedge_jw_obj_open(w);
    kedge_jw_key(w, "metadata");
    kedge_jw_obj_open(w);
    if (ts && kedge_json_int64(ts, &t) == 0) {
        char num[24];
        (void)snprintf(num, sizeof(num), "%lld", (long long)t);
        kedge_jw_kstr(w, "timestamp", num);
    }
    if (meta)
        kedge_jw_kstr(w, "type", type && type->type == KEDGE_JSTR ? type->str : "");
    kedge_jw_obj_close(w);
    kedge_jw_key(w, "value");
    kedge_json_write_value(w, kedge_json_get(side, "value"));
    kedge_jw_obj_close(w);
}

static bool has_value(const struct kedge_jval *side)
{
    const struct kedge_jval *v = kedge_json_get(side, "value");

    return v && v->type == KEDGE_JSTR;
}

/* Whether an array of objects has one whose `key` is the string name. */
static bool names(const struct kedge_jval *arr, const char *key, const char *name)
{
    const struct kedge_jval *e;

    for (e = arr && arr->type == KEDGE_JARR ? arr->child : NULL; e; e = e->next) {
        const struct kedge_jval *n = kedge_json_get(e, key);
        if (n && n->type == KEDGE_JSTR && !strcmp(n->str, name))
            return true;
    }
    return false;
}

/* One entry of status.twins with the report's values put in. */
static bool write_listed(struct kedge_jw *w, const struct kedge_jval *t,
                         const struct kedge_jval *twin)
{
    const struct kedge_jval *pn = kedge_json_get(t, "propertyName"), *mem;
    const struct kedge_jval *r =
        pn && pn->type == KEDGE_JSTR ? kedge_json_get(twin, pn->str) : NULL;
    const struct kedge_jval *actual = kedge_json_get(r, "actual");
    const struct kedge_jval *expected = kedge_json_get(r, "expected");
    const struct kedge_jval *meta = kedge_json_get(r, "metadata");
    bool rep = has_value(actual), obs = has_value(expected);

    kedge_jw_obj_open(w);
    for (mem = t->type == KEDGE_JOBJ ? t->child : NULL; mem; mem = mem->next) {
        if ((rep && !strcmp(mem->key, "reported")) || (obs && !strcmp(mem->key, "observedDesired")))
            continue;
        kedge_jw_key(w, mem->key);
        kedge_json_write_value(w, mem);
    }
    if (rep) {
        kedge_jw_key(w, "reported");
        write_property(w, actual, meta);
    }
    if (obs) {
        kedge_jw_key(w, "observedDesired");
        write_property(w, expected, meta);
    }
    kedge_jw_obj_close(w);
    return rep || obs;
}

/* {"metadata":{"resourceVersion":rv},"status":{"twins":[...]}}: the listed twins with the
 * reported ones replaced. From v1.17 (findOrCreateTwinByName) a reported twin that is not
 * listed but is one of spec.properties is appended, as Go's code leaves it: a copy holding only
 * the property name, since the values go into the original it returns; the next report finds
 * it listed. Returns 1 (a patch), 0 (nothing to change), or <0. */
static int status_patch(const struct devctl *d, const struct kedge_jval *dev,
                        const struct kedge_jval *twin, const char *rv, struct kedge_buf *out)
{
    const struct kedge_jval *listed = kedge_json_get(kedge_json_get(dev, "status"), "twins");
    const struct kedge_jval *props = kedge_json_get(kedge_json_get(dev, "spec"), "properties");
    const struct kedge_jval *t;
    struct kedge_jw w;
    int touched = 0;

    kedge_jw_init(&w, out);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "metadata");
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "resourceVersion", rv);
    kedge_jw_obj_close(&w);
    kedge_jw_key(&w, "status");
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "twins");
    kedge_jw_arr_open(&w);
    for (t = listed && listed->type == KEDGE_JARR ? listed->child : NULL; t; t = t->next)
        touched |= write_listed(&w, t, twin);
    for (t = d->minor >= 17 && twin && twin->type == KEDGE_JOBJ ? twin->child : NULL; t;
         t = t->next) {
        if (names(listed, "propertyName", t->key) || !names(props, "name", t->key))
            continue;
        kedge_jw_obj_open(&w);
        kedge_jw_kstr(&w, "propertyName", t->key);
        kedge_jw_key(&w, "reported");
        kedge_jw_obj_open(&w);
        kedge_jw_kstr(&w, "value", "");
        kedge_jw_obj_close(&w);
        kedge_jw_key(&w, "observedDesired");
        kedge_jw_obj_open(&w);
        kedge_jw_kstr(&w, "value", "");
        kedge_jw_obj_close(&w);
        kedge_jw_obj_close(&w);
        touched = 1;
    }
    kedge_jw_arr_close(&w);
    kedge_jw_obj_close(&w);
    kedge_jw_obj_close(&w);
    if (kedge_jw_finish(&w) < 0)
        return -ENOMEM;
    return touched;
}

/* The Device as the informer's update sends it down again. */
static int resend_msg(const struct sim_device *s, struct kedge_msg *out)
{
    struct kedge_buf res = KEDGE_BUF_INIT;
    int rc = kedge_buf_printf(&res, "node/%s/%s/device/%s", s->node, s->ns, s->name);

    memset(out, 0, sizeof(*out));
    if (rc == 0 &&
        (!(out->source = kedge_strdup("devicecontroller")) ||
         !(out->group = kedge_strdup("resource")) || !(out->operation = kedge_strdup("update")) ||
         !(out->resource_version = kedge_strdup(s->rv))))
        rc = -ENOMEM;
    if (rc == 0 && !(out->resource = kedge_buf_take(&res, NULL)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = kedge_msg_set_content_json(out, s->json, s->len);
    kedge_buf_cleanup(&res);
    if (rc < 0)
        kedge_msg_cleanup(out);
    return rc;
}

int devctl_edge_updated(struct devctl *d, const struct kedge_msg *m, bool *known,
                        struct kedge_msg *resend)
{
    struct kedge_buf id = KEDGE_BUF_INIT, patch = KEDGE_BUF_INIT, merged = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL, *content = NULL;
    static const struct smp_list atomic[] = {{NULL, NULL}}; /* a JSON merge patch */
    struct sim_device *s;
    char rv[24];
    int rc = 0;

    *known = false;
    memset(resend, 0, sizeof(*resend));
    if (id_from_resource(d, m->resource ? m->resource : "", &id) < 0 || !id.data) {
        kedge_log(KEDGE_LOG_WARN, "cloudsim: device controller: no device id in resource=%s",
                  m->resource ? m->resource : "");
        goto out;
    }
    s = find_by_id(d, id.data);
    *known = s || id_known(d, id.data);
    if (!*known) {
        kedge_log(KEDGE_LOG_WARN,
                  "cloudsim: Device %s does not exist in downstream controller (no answer)",
                  id.data);
        goto out;
    }
    if (!s || kedge_json_parse(s->json, s->len, &doc) < 0 ||
        kedge_json_parse(m->content, m->content_len, &content) < 0)
        goto out; /* known from a membership only: nothing to patch */
    (void)snprintf(rv, sizeof(rv), "%llu", ++*d->rv_counter);
    rc = status_patch(d, kedge_jdoc_root(doc), kedge_json_get(kedge_jdoc_root(content), "twin"), rv,
                      &patch);
    if (rc <= 0)
        goto out;
    rc = smp_apply(s->json, s->len, patch.data, patch.len, atomic, &merged);
    if (rc < 0)
        goto out;
    kedge_free(s->json);
    s->len = merged.len;
    s->json = kedge_buf_take(&merged, NULL);
    (void)snprintf(s->rv, sizeof(s->rv), "%s", rv);
    rc = s->json ? resend_msg(s, resend) : -ENOMEM;
out:
    kedge_buf_cleanup(&id);
    kedge_buf_cleanup(&patch);
    kedge_buf_cleanup(&merged);
    kedge_jdoc_free(doc);
    kedge_jdoc_free(content);
    return rc < 0 ? rc : 0;
}

int devctl_report_id(const struct devctl *d, const char *resource, struct kedge_buf *id)
{
    int rc = id_from_resource(d, resource, id);

    return rc < 0 ? rc : id->data ? 0 : -1;
}

bool devctl_state_answered(struct devctl *d, const struct kedge_msg *m)
{
    struct kedge_buf id = KEDGE_BUF_INIT;
    bool known = false;

    if (d->minor < 18) {
        kedge_log(KEDGE_LOG_WARN,
                  "cloudsim: device controller: unknown resource, found: %s (state/update is "
                  "answered from v1.18)",
                  m->resource ? m->resource : "");
        return false;
    }
    if (id_from_resource(d, m->resource ? m->resource : "", &id) == 0 && id.data) {
        known = find_by_id(d, id.data) || id_known(d, id.data);
        if (!known)
            kedge_log(KEDGE_LOG_WARN,
                      "cloudsim: Device %s does not exist in upstream controller (no answer)",
                      id.data);
    }
    kedge_buf_cleanup(&id);
    return known;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

int devctl_new(long minor, unsigned long long *rv_counter, struct devctl **out)
{
    struct devctl *d = kedge_calloc(1, sizeof(*d));

    *out = d;
    if (!d)
        return -ENOMEM;
    d->minor = minor;
    d->rv_counter = rv_counter;
    return 0;
}

void devctl_free(struct devctl *d)
{
    size_t i;

    if (!d)
        return;
    while (d->devs) {
        struct sim_device *s = d->devs;
        d->devs = s->next;
        dev_free(s);
    }
    for (i = 0; i < d->n_ids; i++)
        kedge_free(d->ids[i]);
    kedge_free(d->ids);
    kedge_free(d);
}
