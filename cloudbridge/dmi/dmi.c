/* The DMI object (dmi.h): its parts' lifecycle, and the operator's view of the mappers
 * ($ke/bctl op mapper_list, kedge-ctl mapper list). */
#include <errno.h>
#include <string.h>

#include "dmi_int.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/kebody.h"

int dmi_new(const struct dmi_deps *deps, struct dmi **out)
{
    struct dmi *d = kedge_calloc(1, sizeof(*d));
    int rc;

    *out = d;
    if (!d)
        return -ENOMEM;
    d->deps = *deps;
    d->rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(10000, 10);
    rc = dmi_mappers_new(deps->meta, &d->mappers);
    if (rc < 0) {
        dmi_free(d);
        *out = NULL;
    }
    return rc;
}

void dmi_set_io(struct dmi *d, const struct dmi_io *io)
{
    d->io = *io;
    d->has_io = true;
}

void dmi_stop(struct dmi *d)
{
    if (d)
        d->stopping = true;
}

void dmi_free(struct dmi *d)
{
    if (!d)
        return;
    dmi_server_free_reports(d);
    dmi_notify_free_queue(d);
    dmi_device_index_free(d);
    dmi_mappers_free(d->mappers);
    while (d->n_no_mapper)
        kedge_free(d->no_mapper[--d->n_no_mapper]);
    kedge_free(d);
}

/* ---- $ke/bctl mapper_list ------------------------------------------------------------------ */

struct names {
    struct kedge_jw *w;
    const char *protocol;
};

static void device_name(void *ctx, const char *key, const char *ns, const struct kedge_jval *dev)
{
    struct names *n = ctx;
    const char *proto = dmi_device_protocol(dev);
    const char *name = dmi_jstr(kedge_json_get(kedge_json_get(dev, "metadata"), "name"));

    (void)key;
    (void)ns;
    if (name && proto && !strcmp(proto, n->protocol))
        kedge_jw_str(n->w, name);
}

static void mapper_entry(struct dmi *d, struct kedge_jw *w, const struct dmi_mapper *m)
{
    struct names n = {w, m->protocol};

    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "name", m->name);
    kedge_jw_kstr(w, "version", m->version);
    kedge_jw_kstr(w, "api_version", m->api_version);
    kedge_jw_kstr(w, "protocol", m->protocol);
    kedge_jw_kstr(w, "address", m->socket);
    kedge_jw_kstr(w, "state", m->state);
    kedge_jw_kint(w, "registered_ms", m->registered_ms);
    kedge_jw_kint(w, "last_report_ms", m->last_report_ms);
    kedge_jw_kint(w, "reports", (int64_t)m->reports);
    kedge_jw_key(w, "devices");
    kedge_jw_arr_open(w);
    (void)dmi_each_device(d, device_name, &n); /* a failed read lists what it found */
    kedge_jw_arr_close(w);
    kedge_jw_obj_close(w);
}

int dmi_bctl(void *ctx, const char *req, size_t len, struct kedge_buf *out)
{
    struct dmi *d = ctx;
    struct kedge_jdoc *doc = NULL;
    struct kebody_request r;
    struct kedge_jw w;
    size_t i;
    int rc = kebody_request_decode(req, len, false, &doc, &r);

    if (rc < 0 || !r.op || strcmp(r.op, "mapper_list")) {
        kedge_jdoc_free(doc);
        return 0; /* not ours */
    }
    kedge_jdoc_free(doc);
    kedge_jw_init(&w, out);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "mappers");
    kedge_jw_arr_open(&w);
    for (i = 0; i < dmi_mappers_count(d->mappers); i++)
        mapper_entry(d, &w, dmi_mappers_at(d->mappers, i));
    kedge_jw_arr_close(&w);
    kedge_jw_obj_close(&w);
    rc = kedge_jw_finish(&w);
    return rc < 0 ? rc : 1;
}
