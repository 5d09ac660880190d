/* DeviceManagerService, the service mappers call (edgecore v1.15.4's dmiserver/server.go).
 *
 * MapperRegister: protocol "" is refused with edgecore's text; the mapper's row is stored
 * before the answer, and from then on the cloud's changes for its protocol go to its socket
 * (notify.c); withData answers every stored Device of that protocol, converted, each with its
 * model (one model entry per device, same order; a device whose model is missing or does not
 * convert is skipped and logged, as edgecore does). edgecore answers a refusal as a plain Go
 * error (gRPC code UNKNOWN); here it is INVALID_ARGUMENT with the same text.
 *
 * ReportDeviceStatus: edgecore turns each twin into an MQTT twin update of its own and answers
 * success at once. Here all the report's twins go as ONE update ($ke/down, device/{id}/twin/
 * update, processed by the plugin exactly as an MQTT one), and the answer waits for the
 * plugin's commit: OK, NOT_FOUND (unknown device), INVALID_ARGUMENT (a rejected value, the
 * plugin's reason), INTERNAL, or UNAVAILABLE (no answer from the plugin). An empty
 * observedDesired value is left out: edgecore writes "" as the expected value, which a typed
 * twin then refuses.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "dmi_int.h"
#include "grpc.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/util.h"

#define SERVICE "v1beta1.DeviceManagerService"

struct dmi_report {
    struct dmi *d;
    uint64_t call;
    char *protocol; /* the device's, to count the report for its mapper (NULL: unknown) */
    struct dmi_report *prev, *next;
};

static void reply(struct dmi *d, uint64_t call, int code, const char *message,
                  const ProtobufCMessage *resp)
{
    if (d->has_io && !d->stopping)
        (void)d->io.reply(d->io.t, call, code, message, resp); /* a gone call: nothing to do */
}

/* A refusal: one log line (rate limited) and the gRPC error. */
static void refuse(struct dmi *d, uint64_t call, int code, const char *message)
{
    kedge_log_limited(&d->rl, "dmi", KEDGE_LOG_WARN, "dmi: refused (grpc %d): %s", code, message);
    reply(d, call, code, message, NULL);
}

/* ---- MapperRegister ------------------------------------------------------------------------ */

struct reg_list {
    struct dmi *d;
    const char *protocol;
    V1beta1__MapperRegisterResponse *resp;
    size_t cap;
    int rc;
};

static int grow(struct reg_list *l)
{
    V1beta1__Device **dv;
    V1beta1__DeviceModel **mv;
    size_t cap = l->cap ? 2 * l->cap : 8;

    if (l->resp->n_devicelist < l->cap)
        return 0;
    dv = kedge_realloc(l->resp->devicelist, cap * sizeof(*dv));
    if (dv)
        l->resp->devicelist = dv;
    mv = dv ? kedge_realloc(l->resp->modellist, cap * sizeof(*mv)) : NULL;
    if (mv)
        l->resp->modellist = mv;
    if (!dv || !mv)
        return -ENOMEM;
    l->cap = cap;
    return 0;
}

/* One stored Device: with its model into the answer when it has the mapper's protocol. */
static void add_device(void *ctx, const char *key, const char *ns, const struct kedge_jval *dev)
{
    struct reg_list *l = ctx;
    const char *proto = dmi_device_protocol(dev), *model;
    struct kedge_jdoc *mdoc = NULL;
    V1beta1__Device *pd = NULL;
    V1beta1__DeviceModel *pm = NULL;
    char why[200] = "";
    int rc;

    if (l->rc < 0 || !proto || strcmp(proto, l->protocol))
        return;
    rc = dmi_convert_device(dev, &pd, why, sizeof(why));
    model = pd ? pd->spec->devicemodelreference : "";
    if (rc == 0 && (rc = dmi_load_model(l->d, ns, model, &mdoc)) < 0)
        kedge_set_why(why, sizeof(why), "its model %s/%s is not stored", ns, model);
    if (rc == 0)
        rc = dmi_convert_model(kedge_jdoc_root(mdoc), &pm, why, sizeof(why));
    if (rc == 0 && (rc = grow(l)) == 0) {
        l->resp->devicelist[l->resp->n_devicelist++] = pd;
        l->resp->modellist[l->resp->n_modellist++] = pm;
        pd = NULL;
        pm = NULL;
    }
    if (rc == -ENOMEM)
        l->rc = rc;
    else if (rc < 0)
        kedge_log_limited(&l->d->rl, "dmi", KEDGE_LOG_WARN, "dmi: %s not sent to mapper of %s: %s",
                          key, l->protocol, why);
    dmi_pb_free(pd);
    dmi_pb_free(pm);
    kedge_jdoc_free(mdoc);
}

static void mapper_register(struct dmi *d, uint64_t call, const uint8_t *msg, size_t len)
{
    V1beta1__MapperRegisterRequest *req = v1beta1__mapper_register_request__unpack(NULL, len, msg);
    struct reg_list l = {d, NULL, NULL, 0, 0};
    char text[300];
    int rc;

    if (!req) {
        refuse(d, call, GRPC_INVALID_ARGUMENT, "the request is not a MapperRegisterRequest");
        return;
    }
    if (!req->mapper || !*req->mapper->protocol) {
        snprintf(text, sizeof(text), "fail to register mapper %s because the protocol is nil",
                 req->mapper ? req->mapper->name : "");
        refuse(d, call, GRPC_INVALID_ARGUMENT, text);
        v1beta1__mapper_register_request__free_unpacked(req, NULL);
        return;
    }
    rc = dmi_mappers_register(d->mappers, req->mapper);
    l.protocol = req->mapper->protocol;
    l.resp = dmi_pb_new(&v1beta1__mapper_register_response__descriptor);
    if (rc == 0 && !l.resp)
        rc = -ENOMEM;
    if (rc == 0 && req->withdata)
        rc = dmi_each_device(d, add_device, &l);
    if (rc == 0)
        rc = l.rc;
    if (rc < 0) {
        snprintf(text, sizeof(text), "fail to register mapper %s: %s", req->mapper->name,
                 kedge_strerror(rc));
        refuse(d, call, GRPC_INTERNAL, text);
    } else {
        kedge_log(KEDGE_LOG_NOTICE, "dmi: mapper %s (%s) registered on %s with %zu device(s)",
                  req->mapper->name, req->mapper->protocol,
                  dmi_mappers_of_protocol(d->mappers, req->mapper->protocol)->socket,
                  l.resp->n_devicelist);
        reply(d, call, GRPC_OK, NULL, &l.resp->base);
    }
    dmi_pb_free(l.resp);
    v1beta1__mapper_register_request__free_unpacked(req, NULL);
}

/* ---- ReportDeviceStatus --------------------------------------------------------------------- */

struct twin_at {
    const V1beta1__Twin *t;
    size_t i; /* its place in the report: of a name given twice, the last wins */
};

static int by_name(const void *a, const void *b)
{
    const struct twin_at *x = a, *y = b;
    int c = strcmp(x->t->propertyname, y->t->propertyname);

    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* The MQTT twin update of all the twins (dmiserver's CreateMessageTwinUpdate, merged): the
 * twin map's keys sorted as Go writes a map. */
static int twin_update(const V1beta1__DeviceStatus *st, struct kedge_buf *out)
{
    struct twin_at *t = kedge_malloc(st->n_twins * sizeof(*t));
    struct kedge_jw w;
    size_t i;

    if (!t)
        return -ENOMEM;
    for (i = 0; i < st->n_twins; i++)
        t[i] = (struct twin_at){st->twins[i], i};
    qsort(t, st->n_twins, sizeof(*t), by_name);
    kedge_jw_init(&w, out);
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "event_id", "");
    kedge_jw_kint(&w, "timestamp", kedge_wall_ms());
    kedge_jw_key(&w, "twin");
    kedge_jw_obj_open(&w);
    for (i = 0; i < st->n_twins; i++) {
        const V1beta1__Twin *x = t[i].t;
        if (i + 1 < st->n_twins && !strcmp(x->propertyname, t[i + 1].t->propertyname))
            continue;
        kedge_jw_key(&w, x->propertyname);
        kedge_jw_obj_open(&w);
        if (x->observeddesired && *x->observeddesired->value) {
            kedge_jw_key(&w, "expected");
            kedge_jw_obj_open(&w);
            kedge_jw_kstr(&w, "value", x->observeddesired->value);
            kedge_jw_obj_close(&w);
        }
        if (x->reported) {
            kedge_jw_key(&w, "actual");
            kedge_jw_obj_open(&w);
            kedge_jw_kstr(&w, "value", x->reported->value);
            kedge_jw_obj_close(&w);
        }
        kedge_jw_obj_close(&w);
    }
    kedge_jw_obj_close(&w);
    kedge_jw_obj_close(&w);
    kedge_free(t);
    return kedge_jw_finish(&w);
}

static void report_free(struct dmi_report *r)
{
    struct dmi *d = r->d;

    if (r->prev)
        r->prev->next = r->next;
    else
        d->reports = r->next;
    if (r->next)
        r->next->prev = r->prev;
    kedge_free(r->protocol);
    kedge_free(r);
}

static int grpc_code_of(int code)
{
    switch (code) {
    case 0:
        return GRPC_OK;
    case 404:
        return GRPC_NOT_FOUND;
    case 400:
        return GRPC_INVALID_ARGUMENT;
    case 500:
        return GRPC_INTERNAL;
    case -1:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
}

/* The plugin committed (or refused) the update: the mapper gets its answer now. */
static void reported(void *ctx, const struct kedge_msg *m, int code, const char *reason)
{
    struct dmi_report *r = ctx;
    struct dmi *d = r->d;
    int gc = grpc_code_of(code);
    struct dmi_mapper *mp;

    if (gc == GRPC_OK) {
        V1beta1__ReportDeviceStatusResponse resp = V1BETA1__REPORT_DEVICE_STATUS_RESPONSE__INIT;
        if ((mp = dmi_mappers_of_protocol(d->mappers, r->protocol))) {
            mp->reports++;
            mp->last_report_ms = kedge_wall_ms();
        }
        reply(d, r->call, GRPC_OK, NULL, &resp.base);
    } else if (!d->stopping) {
        char text[300];
        snprintf(text, sizeof(text), "%s: %s", m ? m->resource : "report",
                 reason && *reason ? reason : "refused by the device twin");
        refuse(d, r->call, gc, text);
    }
    report_free(r);
}

/* The device's id in the plugin: its bare name up to cloudcore v1.16, else {ns}/{name} of
 * the stored Device of that name (the mapper knows only the name); and its protocol, whose
 * mapper the report is counted for. A device not stored goes by its name: the plugin answers
 * whether it knows it. */
static int device_id(struct dmi *d, const char *name, struct kedge_buf *id, char **protocol)
{
    const struct dmi_dev *dev = NULL;
    int rc = dmi_device_lookup(d, name, &dev);

    if (rc == -ENOENT)
        rc = 0;
    if (rc == 0 && dev && !(*protocol = kedge_strdup(dev->protocol)))
        rc = -ENOMEM;
    if (rc == 0 && d->deps.ids_namespaced && dev)
        rc = kedge_buf_printf(id, "%s/%s", dev->ns, name);
    else if (rc == 0)
        rc = kedge_buf_puts(id, name);
    return rc;
}

static int send_report(struct dmi *d, uint64_t call, const V1beta1__ReportDeviceStatusRequest *req)
{
    struct kedge_buf id = KEDGE_BUF_INIT, res = KEDGE_BUF_INIT, content = KEDGE_BUF_INIT;
    struct kedge_msg m = {0};
    struct dmi_report *r = kedge_calloc(1, sizeof(*r));
    char *protocol = NULL;
    int rc = r ? device_id(d, req->devicename, &id, &protocol) : -ENOMEM;

    if (rc == 0)
        rc = kedge_buf_printf(&res, "device/%s/twin/update", id.data);
    if (rc == 0)
        rc = twin_update(req->reporteddevice, &content);
    m.source = "dmi";
    m.group = "twin";
    m.operation = "update";
    m.resource = res.data;
    m.content = content.data;
    m.content_len = content.len;
    if (rc == 0)
        rc = kedge_msg_new_id(&m);
    if (rc == 0) {
        r->d = d;
        r->call = call;
        r->protocol = protocol;
        protocol = NULL;
        r->next = d->reports;
        if (d->reports)
            d->reports->prev = r;
        d->reports = r;
        rc = d->deps.down(d->deps.sender, &m, reported, r);
        if (rc < 0)
            report_free(r);
        r = NULL;
    }
    kedge_free(r);
    kedge_free_all(m.msg_id, protocol);
    kedge_buf_cleanup(&id);
    kedge_buf_cleanup(&res);
    kedge_buf_cleanup(&content);
    return rc;
}

static void report_status(struct dmi *d, uint64_t call, const uint8_t *msg, size_t len)
{
    V1beta1__ReportDeviceStatusRequest *req =
        v1beta1__report_device_status_request__unpack(NULL, len, msg);
    int rc;

    if (!req) {
        refuse(d, call, GRPC_INVALID_ARGUMENT, "the request is not a ReportDeviceStatusRequest");
        return;
    }
    if (!*req->devicename) {
        refuse(d, call, GRPC_INVALID_ARGUMENT, "no deviceName");
    } else if (!req->reporteddevice || !req->reporteddevice->n_twins) {
        V1beta1__ReportDeviceStatusResponse resp = V1BETA1__REPORT_DEVICE_STATUS_RESPONSE__INIT;
        reply(d, call, GRPC_OK, NULL, &resp.base); /* nothing to report */
    } else if ((rc = send_report(d, call, req)) < 0) {
        char text[200];
        snprintf(text, sizeof(text), "the device twin cannot be reached: %s", kedge_strerror(rc));
        refuse(d, call, rc == -ENOMEM ? GRPC_RESOURCE_EXHAUSTED : GRPC_UNAVAILABLE, text);
    }
    v1beta1__report_device_status_request__free_unpacked(req, NULL);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

void dmi_request(void *ctx, uint64_t call, const char *service, const char *method,
                 const uint8_t *msg, size_t len)
{
    struct dmi *d = ctx;
    char text[300];

    if (d->stopping)
        return;
    if (!strcmp(service, SERVICE) && !strcmp(method, "MapperRegister")) {
        mapper_register(d, call, msg, len);
    } else if (!strcmp(service, SERVICE) && !strcmp(method, "ReportDeviceStatus")) {
        report_status(d, call, msg, len);
    } else {
        snprintf(text, sizeof(text), "unknown method %.100s/%.100s", service, method);
        refuse(d, call, GRPC_UNIMPLEMENTED, text);
    }
}

void dmi_server_free_reports(struct dmi *d)
{
    while (d->reports)
        report_free(d->reports);
}
