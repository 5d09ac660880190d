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

struct dmi_outcall {
    char *protocol;
    char method[32];
    ProtobufCMessage *req; /* dmi_pb_free */
    const ProtobufCMessageDescriptor *resp_desc;
    char what[160]; /* "UpdateDevice thermo-1" */
    struct dmi_outcall *next;
};

static void outcall_free(struct dmi_outcall *o)
{
    dmi_pb_free(o->req);
    kedge_free(o->protocol);
    kedge_free(o);
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

static void pump(struct dmi *d);

static void called(void *ctx, int code, const char *message, const ProtobufCMessage *resp)
{
    struct dmi *d = ctx;

    (void)resp;
    if (code != GRPC_OK && !d->stopping)
        kedge_log_limited(&d->rl, "dmi", KEDGE_LOG_WARN, "dmi: %s failed: grpc %d %s", d->current,
                          code, message ? message : "");
    d->in_flight = false;
    pump(d);
}

/* The next waiting call, to the mapper its protocol has now (one may have registered again on
 * another socket meanwhile). A transport that answers at once re-enters through called(): the
 * loop, not the recursion, goes on. */
static void pump(struct dmi *d)
{
    char path[96];

    if (d->pumping)
        return;
    d->pumping = true;
    while (!d->in_flight && d->q_head && !d->stopping && d->has_io) {
        struct dmi_outcall *o = d->q_head;
        struct dmi_mapper *mp = mapper_for(d, o->protocol);
        d->q_head = o->next;
        if (!d->q_head)
            d->q_tail = NULL;
        d->q_len--;
        if (mp) {
            snprintf(d->current, sizeof(d->current), "%s to %.30s", o->what, mp->name);
            snprintf(path, sizeof(path), MAPPER_SERVICE "%s", o->method);
            d->in_flight = true;
            if (d->io.call(d->io.t, mp->socket, path, o->req, o->resp_desc, called, d) < 0) {
                d->in_flight = false;
                kedge_log_limited(&d->rl, "dmi", KEDGE_LOG_WARN,
                                  "dmi: %s not sent: %s does not answer", d->current, mp->socket);
            }
        }
        outcall_free(o);
    }
    d->pumping = false;
}

/* Queue req (owned from here) for protocol's mapper; nothing when there is none. */
static void call(struct dmi *d, const char *protocol, const char *method, const char *name,
                 ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc)
{
    struct dmi_outcall *o = NULL;
    const char *why = NULL;

    if (!mapper_for(d, protocol) || !d->has_io || d->stopping) {
        dmi_pb_free(req);
        return;
    }
    if (d->q_len >= DMI_MAX_QUEUED)
        why = "too many calls waiting";
    else if (!req || !(o = kedge_calloc(1, sizeof(*o))) || !(o->protocol = kedge_strdup(protocol)))
        why = "out of memory";
    if (why) {
        kedge_log_limited(&d->rl, "dmi", KEDGE_LOG_WARN, "dmi: %s %s not sent: %s", method, name,
                          why);
        dmi_pb_free(req);
        kedge_free(o);
        return;
    }
    snprintf(o->method, sizeof(o->method), "%s", method);
    snprintf(o->what, sizeof(o->what), "%s %.120s", method, name);
    o->req = req;
    o->resp_desc = resp_desc;
    if (d->q_tail)
        d->q_tail->next = o;
    else
        d->q_head = o;
    d->q_tail = o;
    d->q_len++;
    pump(d);
}

void dmi_notify_free_queue(struct dmi *d)
{
    while (d->q_head) {
        struct dmi_outcall *o = d->q_head;
        d->q_head = o->next;
        outcall_free(o);
    }
    d->q_tail = NULL;
    d->q_len = 0;
}

/* A request message of desc with its one field set: a string (name) or a message (owned). */
static ProtobufCMessage *request(const ProtobufCMessageDescriptor *desc, const char *name,
                                 void *sub)
{
    ProtobufCMessage *req = dmi_pb_new(desc);
    const ProtobufCFieldDescriptor *f = &desc->fields[0];
    void *v = name ? (void *)dmi_pb_strdup(name, strlen(name)) : sub;

    if (!req || !v) {
        dmi_pb_free(req);
        if (name)
            kedge_free(v);
        else
            dmi_pb_free(sub);
        return NULL;
    }
    *(void **)((char *)req + f->offset) = v;
    return req;
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
        if (mapper_for(d, protocol))
            call(d, protocol, "RemoveDevice", name,
                 request(&v1beta1__remove_device_request__descriptor, name, NULL),
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
        call(d, protocol, "RegisterDevice", name,
             request(&v1beta1__register_device_request__descriptor, NULL, pd),
             &v1beta1__register_device_response__descriptor);
    } else {
        call(d, protocol, "UpdateDevice", name,
             request(&v1beta1__update_device_request__descriptor, NULL, pd),
             &v1beta1__update_device_response__descriptor);
    }
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
        if (mapper_for(d, protocol))
            call(d, protocol, "RemoveDeviceModel", name,
                 request(&v1beta1__remove_device_model_request__descriptor, name, NULL),
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
        call(d, protocol, "CreateDeviceModel", name,
             request(&v1beta1__create_device_model_request__descriptor, NULL, pm),
             &v1beta1__create_device_model_response__descriptor);
    } else {
        call(d, protocol, "UpdateDeviceModel", name,
             request(&v1beta1__update_device_model_request__descriptor, NULL, pm),
             &v1beta1__update_device_model_response__descriptor);
    }
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
    if (!strcmp(type, "device")) {
        dmi_device_changed(d, operation, kedge_jdoc_root(doc));
        device_changed(d, operation, kedge_jdoc_root(doc));
    } else if (!strcmp(type, "devicemodel"))
        model_changed(d, operation, kedge_jdoc_root(doc), kedge_jdoc_root(odoc));
    kedge_jdoc_free(odoc);
    kedge_jdoc_free(doc);
}
