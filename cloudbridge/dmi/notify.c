/* The cloud's Device and DeviceModel changes, to the mapper of their protocol (edgecore
 * v1.15.4's dtmanager/dmiworker.go dealMetaDeviceOperation and dmiclient/client.go): a Device
 * insert is RegisterDevice, an update UpdateDevice (the whole converted Device: this is how a
 * desired value set in the cloud reaches a v1.15 mapper), a delete RemoveDevice(name); a
 * DeviceModel (routed by spec.protocol) CreateDeviceModel / UpdateDeviceModel /
 * RemoveDeviceModel(name). One call each on a fresh connection, as edgecore dials per call;
 * a failure is one log line and nothing else: the mapper gets the current state when it
 * registers again. cloudcore sends the Device again after every status patch it makes for a
 * reported value; each of those is an UpdateDevice, as with edgecore.
 *
 * No mapper for the protocol yet: logged once per protocol; the mapper gets every Device of
 * its protocol when it registers (withData). A model's delete carries only its metadata, so
 * its protocol comes from the row as it was before the delete (edgecore, which reads it from
 * the delete message, finds no protocol and fails).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "convert.h"
#include "dmi_int.h"
#include "grpc.h"
#include "kedge/alloc.h"
#include "kedge/err.h"

#define MAPPER_SERVICE "/v1beta1.DeviceMapperService/"

struct pending {
    struct dmi *d;
    char what[200]; /* for the log line: "UpdateDevice thermo-1 (modbus)" */
};

static void called(void *ctx, int code, const char *message, const ProtobufCMessage *resp)
{
    struct pending *p = ctx;

    (void)resp;
    if (code != GRPC_OK && !p->d->stopping)
        kedge_log_limited(&p->d->rl, "dmi", KEDGE_LOG_WARN, "dmi: %s failed: grpc %d %s", p->what,
                          code, message ? message : "");
    kedge_free(p);
}

/* protocol's mapper, or NULL after logging (once per protocol) that it has none. */
static struct dmi_mapper *mapper_for(struct dmi *d, const char *protocol)
{
    struct dmi_mapper *mp = dmi_mappers_of_protocol(d->mappers, protocol);
    size_t i;

    if (mp || !protocol)
        return mp;
    for (i = 0; i < d->n_no_mapper && strcmp(d->no_mapper[i], protocol); i++)
        ;
    if (i == d->n_no_mapper && i < DMI_MAX_LOGGED && (d->no_mapper[i] = kedge_strdup(protocol))) {
        d->n_no_mapper++;
        kedge_log(KEDGE_LOG_INFO,
                  "dmi: no mapper of protocol %s registered; it gets its devices when it does",
                  protocol);
    }
    return NULL;
}

static void call(struct dmi *d, const char *protocol, const char *method, const char *name,
                 const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc)
{
    struct dmi_mapper *mp = mapper_for(d, protocol);
    struct pending *p;
    char path[96];

    if (!mp || !d->has_io || d->stopping)
        return;
    p = kedge_calloc(1, sizeof(*p));
    if (!p) {
        kedge_log_limited(&d->rl, "dmi", KEDGE_LOG_WARN, "dmi: %s %s not sent: out of memory",
                          method, name);
        return;
    }
    p->d = d;
    snprintf(p->what, sizeof(p->what), "%s %.100s to %.60s", method, name, mp->name);
    snprintf(path, sizeof(path), MAPPER_SERVICE "%s", method);
    if (d->io.call(d->io.t, mp->socket, path, req, resp_desc, called, p) < 0) {
        kedge_log_limited(&d->rl, "dmi", KEDGE_LOG_WARN, "dmi: %s not sent", p->what);
        kedge_free(p);
    }
}

static void device_changed(struct dmi *d, const char *op, const struct kedge_jval *dev)
{
    const char *protocol = dmi_device_protocol(dev);
    const char *name = dmi_jstr(kedge_json_get(kedge_json_get(dev, "metadata"), "name"));
    V1beta1__Device *pd = NULL;
    char why[200] = "";
    int rc;

    if (!name)
        return;
    if (!strcmp(op, "delete")) {
        V1beta1__RemoveDeviceRequest req = V1BETA1__REMOVE_DEVICE_REQUEST__INIT;
        req.devicename = (char *)name;
        call(d, protocol, "RemoveDevice", name, &req.base,
             &v1beta1__remove_device_response__descriptor);
        return;
    }
    if (!mapper_for(d, protocol))
        return; /* nothing to convert for */
    rc = dmi_convert_device(dev, &pd, why, sizeof(why));
    if (rc < 0) {
        kedge_log_limited(&d->rl, "dmi", KEDGE_LOG_WARN, "dmi: device %s not converted: %s", name,
                          rc == -ENOMEM ? "out of memory" : why);
    } else if (!strcmp(op, "insert")) {
        V1beta1__RegisterDeviceRequest req = V1BETA1__REGISTER_DEVICE_REQUEST__INIT;
        req.device = pd;
        call(d, protocol, "RegisterDevice", name, &req.base,
             &v1beta1__register_device_response__descriptor);
    } else {
        V1beta1__UpdateDeviceRequest req = V1BETA1__UPDATE_DEVICE_REQUEST__INIT;
        req.device = pd;
        call(d, protocol, "UpdateDevice", name, &req.base,
             &v1beta1__update_device_response__descriptor);
    }
    dmi_pb_free(pd);
}

static void model_changed(struct dmi *d, const char *op, const struct kedge_jval *model,
                          const struct kedge_jval *old)
{
    const char *name = dmi_jstr(kedge_json_get(kedge_json_get(model, "metadata"), "name"));
    const char *protocol = dmi_jstr(kedge_json_get(kedge_json_get(model, "spec"), "protocol"));
    V1beta1__DeviceModel *pm = NULL;
    char why[200] = "";
    int rc;

    if (!protocol)
        protocol = dmi_jstr(kedge_json_get(kedge_json_get(old, "spec"), "protocol"));
    if (!name)
        return;
    if (!strcmp(op, "delete")) {
        V1beta1__RemoveDeviceModelRequest req = V1BETA1__REMOVE_DEVICE_MODEL_REQUEST__INIT;
        req.modelname = (char *)name;
        call(d, protocol, "RemoveDeviceModel", name, &req.base,
             &v1beta1__remove_device_model_response__descriptor);
        return;
    }
    if (!mapper_for(d, protocol))
        return;
    rc = dmi_convert_model(model, &pm, why, sizeof(why));
    if (rc < 0) {
        kedge_log_limited(&d->rl, "dmi", KEDGE_LOG_WARN, "dmi: model %s not converted: %s", name,
                          rc == -ENOMEM ? "out of memory" : why);
    } else if (!strcmp(op, "insert")) {
        V1beta1__CreateDeviceModelRequest req = V1BETA1__CREATE_DEVICE_MODEL_REQUEST__INIT;
        req.model = pm;
        call(d, protocol, "CreateDeviceModel", name, &req.base,
             &v1beta1__create_device_model_response__descriptor);
    } else {
        V1beta1__UpdateDeviceModelRequest req = V1BETA1__UPDATE_DEVICE_MODEL_REQUEST__INIT;
        req.model = pm;
        call(d, protocol, "UpdateDeviceModel", name, &req.base,
             &v1beta1__update_device_model_response__descriptor);
    }
    dmi_pb_free(pm);
}

void dmi_cloud_change(void *ctx, const char *type, const char *operation, const char *json,
                      size_t len, const char *old)
{
    struct dmi *d = ctx;
    struct kedge_jdoc *doc = NULL, *odoc = NULL;

    if (d->stopping || kedge_json_parse(json, len, &doc) < 0)
        return; /* devices.c stored it: it was JSON */
    if (old)
        (void)kedge_json_parse(old, strlen(old), &odoc);
    if (!strcmp(type, "device"))
        device_changed(d, operation, kedge_jdoc_root(doc));
    else if (!strcmp(type, "devicemodel"))
        model_changed(d, operation, kedge_jdoc_root(doc), kedge_jdoc_root(odoc));
    kedge_jdoc_free(odoc);
    kedge_jdoc_free(doc);
}
