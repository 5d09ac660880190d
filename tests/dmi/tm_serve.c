/* tm_serve.c: the test mapper's DeviceMapperService (testmapper.h): every call kedge makes is
 * an event, its device or model is kept, and the answer is mapper-framework's (grpcserver/
 * device.go in KubeEdge v1.15.4: RegisterDevice answers the deviceName, CreateDeviceModel the
 * model's name, GetDevice the kept device or an error). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testmapper.h"

#define SERVICE "/v1beta1.DeviceMapperService/"

/* A request whose message kedge sent and the mapper keeps: a device or a model. */
static void keep_device(struct testmapper *tm, struct grpc_conn *c, int32_t stream,
                        const char *method, const V1beta1__Device *d, const ProtobufCMessage *resp)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    if (!d || !d->name || !*d->name) {
        (void)grpc_reply(c, stream, GRPC_INVALID_ARGUMENT, "device is nil", NULL);
        return;
    }
    if (tm_list_put(&tm->devices, d->name, &d->base) < 0) {
        (void)grpc_reply(c, stream, GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    tm_event_begin(&w, &b, method);
    kedge_jw_key(&w, "device");
    tm_device_json(&w, d);
    tm_event_end(&w, &b);
    (void)grpc_reply(c, stream, GRPC_OK, NULL, resp);
}

static void keep_model(struct testmapper *tm, struct grpc_conn *c, int32_t stream,
                       const char *method, const V1beta1__DeviceModel *m,
                       const ProtobufCMessage *resp)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    if (!m || !m->name || !*m->name) {
        (void)grpc_reply(c, stream, GRPC_INVALID_ARGUMENT, "deviceModel is nil", NULL);
        return;
    }
    if (tm_list_put(&tm->models, m->name, &m->base) < 0) {
        (void)grpc_reply(c, stream, GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    tm_event_begin(&w, &b, method);
    kedge_jw_key(&w, "model");
    tm_model_json(&w, m);
    tm_event_end(&w, &b);
    (void)grpc_reply(c, stream, GRPC_OK, NULL, resp);
}

static void removed(struct tm_list *l, struct grpc_conn *c, int32_t stream, const char *method,
                    const char *name, const ProtobufCMessage *resp)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;
    bool known = name && tm_list_remove(l, name);

    tm_event_begin(&w, &b, method);
    kedge_jw_kstr(&w, "name", name ? name : "");
    kedge_jw_key(&w, "known");
    kedge_jw_bool(&w, known);
    tm_event_end(&w, &b);
    (void)grpc_reply(c, stream, GRPC_OK, NULL, resp);
}

static void get_device(struct testmapper *tm, struct grpc_conn *c, int32_t stream, const char *name)
{
    const struct tm_entry *e = name ? tm_list_find(&tm->devices, name) : NULL;
    V1beta1__GetDeviceResponse resp = V1BETA1__GET_DEVICE_RESPONSE__INIT;
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    tm_event_begin(&w, &b, "GetDevice");
    kedge_jw_kstr(&w, "name", name ? name : "");
    kedge_jw_key(&w, "known");
    kedge_jw_bool(&w, e != NULL);
    tm_event_end(&w, &b);
    if (!e) {
        (void)grpc_reply(c, stream, GRPC_NOT_FOUND, "device not found", NULL);
        return;
    }
    resp.device = v1beta1__device__unpack(NULL, e->len, e->packed);
    if (!resp.device) {
        (void)grpc_reply(c, stream, GRPC_INTERNAL, "kept device does not unpack", NULL);
        return;
    }
    (void)grpc_reply(c, stream, GRPC_OK, NULL, &resp.base);
    v1beta1__device__free_unpacked(resp.device, NULL);
}

/* The message of method, unpacked (NULL: not a message of that type). */
static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t len)
{
    return protobuf_c_message_unpack(d, NULL, len, msg);
}

static void dispatch(struct testmapper *tm, struct grpc_conn *c, int32_t stream, const char *method,
                     const ProtobufCMessage *req)
{
    V1beta1__RegisterDeviceResponse reg = V1BETA1__REGISTER_DEVICE_RESPONSE__INIT;
    V1beta1__CreateDeviceModelResponse cre = V1BETA1__CREATE_DEVICE_MODEL_RESPONSE__INIT;
    V1beta1__UpdateDeviceResponse upd = V1BETA1__UPDATE_DEVICE_RESPONSE__INIT;
    V1beta1__UpdateDeviceModelResponse updm = V1BETA1__UPDATE_DEVICE_MODEL_RESPONSE__INIT;
    V1beta1__RemoveDeviceResponse rm = V1BETA1__REMOVE_DEVICE_RESPONSE__INIT;
    V1beta1__RemoveDeviceModelResponse rmm = V1BETA1__REMOVE_DEVICE_MODEL_RESPONSE__INIT;

    if (!strcmp(method, "RegisterDevice")) {
        const V1beta1__Device *d = ((const V1beta1__RegisterDeviceRequest *)req)->device;

        reg.devicename = d && d->name ? d->name : (char *)"";
        keep_device(tm, c, stream, method, d, &reg.base);
    } else if (!strcmp(method, "UpdateDevice")) {
        keep_device(tm, c, stream, method, ((const V1beta1__UpdateDeviceRequest *)req)->device,
                    &upd.base);
    } else if (!strcmp(method, "RemoveDevice")) {
        removed(&tm->devices, c, stream, method,
                ((const V1beta1__RemoveDeviceRequest *)req)->devicename, &rm.base);
    } else if (!strcmp(method, "CreateDeviceModel")) {
        const V1beta1__DeviceModel *m = ((const V1beta1__CreateDeviceModelRequest *)req)->model;

        cre.devicemodelname = m && m->name ? m->name : (char *)"";
        keep_model(tm, c, stream, method, m, &cre.base);
    } else if (!strcmp(method, "UpdateDeviceModel")) {
        keep_model(tm, c, stream, method, ((const V1beta1__UpdateDeviceModelRequest *)req)->model,
                   &updm.base);
    } else if (!strcmp(method, "RemoveDeviceModel")) {
        removed(&tm->models, c, stream, method,
                ((const V1beta1__RemoveDeviceModelRequest *)req)->modelname, &rmm.base);
    } else {
        get_device(tm, c, stream, ((const V1beta1__GetDeviceRequest *)req)->devicename);
    }
}

static const struct {
    const char *method;
    const ProtobufCMessageDescriptor *desc;
} methods[] = {
    {"RegisterDevice", &v1beta1__register_device_request__descriptor},
    {"UpdateDevice", &v1beta1__update_device_request__descriptor},
    {"RemoveDevice", &v1beta1__remove_device_request__descriptor},
    {"CreateDeviceModel", &v1beta1__create_device_model_request__descriptor},
    {"UpdateDeviceModel", &v1beta1__update_device_model_request__descriptor},
    {"RemoveDeviceModel", &v1beta1__remove_device_model_request__descriptor},
    {"GetDevice", &v1beta1__get_device_request__descriptor},
};

void tm_serve_request(void *ctx, struct grpc_conn *c, int32_t stream, const char *path,
                      const uint8_t *msg, size_t len)
{
    struct testmapper *tm = ctx;
    const char *method = strncmp(path, SERVICE, strlen(SERVICE)) ? "" : path + strlen(SERVICE);
    ProtobufCMessage *req;
    size_t i;

    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (!strcmp(methods[i].method, method))
            break;
    if (i == sizeof(methods) / sizeof(methods[0])) {
        (void)grpc_reply(c, stream, GRPC_UNIMPLEMENTED, "unknown method", NULL);
        return;
    }
    if (tm->die_on && !strcmp(tm->die_on, method)) {
        /* a mapper that dies in the middle of kedge's call: the request read, no answer */
        (void)fprintf(stdout, "{\"ev\":\"dying\",\"method\":\"%s\"}\n", method);
        (void)fflush(stdout);
        _exit(3);
    }
    req = unpack(methods[i].desc, msg, len);
    if (!req) {
        (void)grpc_reply(c, stream, GRPC_INVALID_ARGUMENT, "request does not unpack", NULL);
        return;
    }
    dispatch(tm, c, stream, method, req);
    protobuf_c_message_free_unpacked(req, NULL);
}
