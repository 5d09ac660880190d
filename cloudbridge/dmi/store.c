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
};

static void one_row(void *arg, const char *key, const char *value)
{
    struct walk *w = arg;
    struct kedge_jdoc *doc = NULL;
    const char *slash = strchr(key, '/');
    char ns[256];

    if (!value || !slash || (size_t)(slash - key) >= sizeof(ns) ||
        kedge_json_parse(value, strlen(value), &doc) < 0)
        return; /* not a Device MetaManager stored */
    memcpy(ns, key, (size_t)(slash - key));
    ns[slash - key] = '\0';
    w->fn(w->ctx, key, ns, kedge_jdoc_root(doc));
    kedge_jdoc_free(doc);
}

int dmi_each_device(struct dmi *d, dmi_device_fn fn, void *ctx)
{
    struct walk w = {fn, ctx};

    return metamgr_list(d->deps.meta, "device", one_row, &w);
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
