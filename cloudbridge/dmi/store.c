/* DMI's reads of MetaManager's table: the Devices and DeviceModels the device controller sent
 * (meta/devices.c stores them, key {ns}/device/{name} and {ns}/devicemodel/{name}). */
#include <errno.h>
#include <string.h>

#include "dmi_int.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"

const char *dmi_jstr(const struct kedge_jval *v)
{
    return v && v->type == KEDGE_JSTR ? v->str : NULL;
}

const char *dmi_device_protocol(const struct kedge_jval *dev)
{
    return dmi_jstr(
        kedge_json_get(kedge_json_get(kedge_json_get(dev, "spec"), "protocol"), "protocolName"));
}

struct walk {
    dmi_device_fn fn;
    void *ctx;
    int rc; /* -ENOMEM: a row was not read */
};

static void one_row(void *arg, const char *key, const char *value)
{
    struct walk *w = arg;
    struct kedge_jdoc *doc = NULL;
    const char *slash = strchr(key, '/');
    char ns[256];
    int rc;

    if (!value || !slash || (size_t)(slash - key) >= sizeof(ns))
        return; /* not a Device MetaManager stored */
    rc = kedge_json_parse(value, strlen(value), &doc);
    if (rc == -ENOMEM)
        w->rc = rc;
    if (rc < 0)
        return;
    memcpy(ns, key, (size_t)(slash - key));
    ns[slash - key] = '\0';
    w->fn(w->ctx, key, ns, kedge_jdoc_root(doc));
    kedge_jdoc_free(doc);
}

int dmi_each_device(struct dmi *d, dmi_device_fn fn, void *ctx)
{
    struct walk w = {fn, ctx, 0};
    int rc = metamgr_list(d->deps.meta, "device", one_row, &w);

    return rc < 0 ? rc : w.rc;
}

int dmi_load_model(struct dmi *d, const char *ns, const char *name, struct kedge_jdoc **doc)
{
    struct kedge_buf key = KEDGE_BUF_INIT;
    char *value = NULL;
    int rc = kedge_buf_printf(&key, "%s/devicemodel/%s", ns, name);

    *doc = NULL;
    if (rc == 0)
        rc = metamgr_get(d->deps.meta, key.data, &value);
    if (rc == 0)
        rc = kedge_json_parse(value, strlen(value), doc);
    kedge_free(value);
    kedge_buf_cleanup(&key);
    return rc;
}

/* ---- the index of Devices by name ------------------------------------------------------------ */

static void dev_cleanup(struct dmi_dev *v)
{
    kedge_free_all(v->name, v->ns, v->protocol);
}

void dmi_device_index_free(struct dmi *d)
{
    while (d->n_devs)
        dev_cleanup(&d->devs[--d->n_devs]);
    kedge_free(d->devs);
    d->devs = NULL;
    d->cap_devs = 0;
    d->devs_loaded = false;
}

static struct dmi_dev *dev_find(struct dmi *d, const char *name)
{
    size_t i;

    for (i = 0; i < d->n_devs; i++)
        if (!strcmp(d->devs[i].name, name))
            return &d->devs[i];
    return NULL;
}

/* name in ns with protocol, replacing one of the same name and namespace. */
static int dev_put(struct dmi *d, const char *name, const char *ns, const char *protocol)
{
    struct dmi_dev v = {kedge_strdup(name), kedge_strdup(ns), kedge_strdup(protocol)};
    size_t i;

    if (!v.name || !v.ns || !v.protocol ||
        kedge_array_grow(&d->devs, &d->cap_devs, d->n_devs, sizeof(*d->devs), 16) < 0) {
        dev_cleanup(&v);
        return -ENOMEM;
    }
    for (i = 0; i < d->n_devs && (strcmp(d->devs[i].name, name) || strcmp(d->devs[i].ns, ns)); i++)
        ;
    if (i < d->n_devs)
        dev_cleanup(&d->devs[i]);
    else
        d->n_devs++;
    d->devs[i] = v;
    return 0;
}

struct loader {
    struct dmi *d;
    int rc;
};

static void load_one(void *ctx, const char *key, const char *ns, const struct kedge_jval *dev)
{
    struct loader *l = ctx;
    const char *name = dmi_jstr(kedge_json_get(kedge_json_get(dev, "metadata"), "name"));
    const char *protocol = dmi_device_protocol(dev);

    (void)key;
    if (name && l->rc == 0)
        l->rc = dev_put(l->d, name, ns, protocol ? protocol : "");
}

int dmi_device_lookup(struct dmi *d, const char *name, const struct dmi_dev **out)
{
    *out = NULL;
    if (!d->devs_loaded) {
        struct loader l = {d, 0};
        int rc = dmi_each_device(d, load_one, &l);
        if (rc == 0)
            rc = l.rc;
        if (rc < 0) {
            dmi_device_index_free(d); /* read again at the next report */
            return rc;
        }
        d->devs_loaded = true;
    }
    *out = dev_find(d, name);
    return *out ? 0 : -ENOENT;
}

void dmi_device_changed(struct dmi *d, const char *operation, const struct kedge_jval *dev)
{
    const struct kedge_jval *meta = kedge_json_get(dev, "metadata");
    const char *name = dmi_jstr(kedge_json_get(meta, "name"));
    const char *ns = dmi_jstr(kedge_json_get(meta, "namespace"));
    const char *protocol = dmi_device_protocol(dev);
    size_t i;

    if (!d->devs_loaded || !name)
        return; /* read from the table when first needed */
    if (!ns)
        ns = "default";
    if (strcmp(operation, "delete")) {
        if (dev_put(d, name, ns, protocol ? protocol : "") < 0)
            dmi_device_index_free(d);
        return;
    }
    for (i = 0; i < d->n_devs; i++)
        if (!strcmp(d->devs[i].name, name) && !strcmp(d->devs[i].ns, ns)) {
            dev_cleanup(&d->devs[i]);
            d->devs[i] = d->devs[--d->n_devs];
            return;
        }
}
