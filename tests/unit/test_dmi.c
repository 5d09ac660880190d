/* cloudbridge/dmi/ without sockets: DeviceManagerService (server.c), the calls to mappers on
 * cloud changes (notify.c), the registry and its meta rows (mappers.c), and mapper_list
 * (dmi.c), over a fake transport, a fake plugin link and MetaManager's table in memory
 * (stubs/meta_stub.c). What edgecore v1.15.4 does is cited at each test.
 */
#include <check.h>

#include "convert.h"
#include "dmi.h"
#include "grpc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "meta_stub.h"
#include "unit.h"

#define DEVICE(name, proto, model)                                                                 \
    "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"default\"},\"spec\":{"                   \
    "\"deviceModelRef\":{\"name\":\"" model "\"},\"protocol\":{\"protocolName\":\"" proto "\"},"   \
    "\"properties\":[{\"name\":\"temperature\",\"desired\":{\"value\":\"22\"}}]}}"
#define MODEL(name, proto)                                                                         \
    "{\"metadata\":{\"name\":\"" name                                                              \
    "\",\"namespace\":\"default\"},\"spec\":{\"protocol\":\"" proto                                \
    "\",\"properties\":[{\"name\":\"temperature\",\"type\":\"INT\"}]}}"

/* ---- the fakes ------------------------------------------------------------------------------ */

#define MAX_REC 16

struct rec_reply {
    uint64_t call;
    int code;
    char message[300];
    uint8_t *resp; /* packed, malloc */
    size_t len;
};

struct rec_call {
    char sock[128], path[96];
    uint8_t *req;
    size_t len;
    dmi_done_fn done;
    void *ctx;
};

struct rec_down {
    char resource[128], group[16], operation[16];
    char *content;
    dmi_result_fn result;
    void *ctx;
};

static struct rec_reply replies[MAX_REC];
static struct rec_call calls[MAX_REC];
static struct rec_down downs[MAX_REC];
static int n_replies, n_calls, n_downs, down_rc;

static uint8_t *packed(const ProtobufCMessage *m, size_t *len)
{
    uint8_t *b;

    *len = m ? protobuf_c_message_get_packed_size(m) : 0;
    b = malloc(*len + 1);
    ck_assert_ptr_nonnull(b);
    if (m)
        protobuf_c_message_pack(m, b);
    return b;
}

static int fake_reply(void *t, uint64_t call, int code, const char *message,
                      const ProtobufCMessage *resp)
{
    struct rec_reply *r = &replies[n_replies++];

    (void)t;
    ck_assert_int_le(n_replies, MAX_REC);
    r->call = call;
    r->code = code;
    snprintf(r->message, sizeof(r->message), "%s", message ? message : "");
    r->resp = packed(resp, &r->len);
    return 0;
}

static int fake_call(void *t, const char *sock, const char *path, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *resp_desc, dmi_done_fn done, void *ctx)
{
    struct rec_call *c = &calls[n_calls++];

    (void)t;
    (void)resp_desc;
    ck_assert_int_le(n_calls, MAX_REC);
    snprintf(c->sock, sizeof(c->sock), "%s", sock);
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->req = packed(req, &c->len);
    c->done = done;
    c->ctx = ctx;
    return 0;
}

static int fake_down(void *sender, const struct kedge_msg *m, dmi_result_fn result, void *ctx)
{
    struct rec_down *d = &downs[n_downs];

    (void)sender;
    if (down_rc)
        return down_rc;
    n_downs++;
    ck_assert_int_le(n_downs, MAX_REC);
    snprintf(d->resource, sizeof(d->resource), "%s", m->resource);
    snprintf(d->group, sizeof(d->group), "%s", m->group);
    snprintf(d->operation, sizeof(d->operation), "%s", m->operation);
    d->content = strndup(m->content, m->content_len);
    d->result = result;
    d->ctx = ctx;
    return 0;
}

static void clear_records(void)
{
    int i;

    for (i = 0; i < n_replies; i++)
        free(replies[i].resp);
    for (i = 0; i < n_calls; i++)
        free(calls[i].req);
    for (i = 0; i < n_downs; i++)
        free(downs[i].content);
    n_replies = n_calls = n_downs = down_rc = 0;
}

static struct dmi *make(bool namespaced)
{
    const struct dmi_deps deps = {NULL, fake_down, NULL, namespaced};
    const struct dmi_io io = {NULL, fake_reply, fake_call};
    struct dmi *d = NULL;

    ck_assert_int_eq(dmi_new(&deps, &d), 0);
    dmi_set_io(d, &io);
    return d;
}

static void setup(void)
{
    meta_stub_reset();
    clear_records();
}

static void teardown(void)
{
    meta_stub_reset();
    clear_records();
}

/* ---- requests ------------------------------------------------------------------------------- */

static void request(struct dmi *d, uint64_t call, const char *method, const ProtobufCMessage *m)
{
    size_t len;
    uint8_t *b = packed(m, &len);

    dmi_request(d, call, "v1beta1.DeviceManagerService", method, b, len);
    free(b);
}

static void register_mapper(struct dmi *d, uint64_t call, const char *protocol, bool with_data)
{
    V1beta1__MapperRegisterRequest req = V1BETA1__MAPPER_REGISTER_REQUEST__INIT;
    V1beta1__MapperInfo info = V1BETA1__MAPPER_INFO__INIT;

    info.name = "modbus-mapper";
    info.version = "v1.0";
    info.api_version = "v1beta1";
    info.protocol = (char *)protocol;
    info.address.data = (uint8_t *)"/tmp/m.sock";
    info.address.len = 11;
    info.state = "running";
    req.withdata = with_data;
    req.mapper = &info;
    request(d, call, "MapperRegister", &req.base);
}

static void report(struct dmi *d, uint64_t call, const char *device, V1beta1__Twin **twins,
                   size_t n)
{
    V1beta1__ReportDeviceStatusRequest req = V1BETA1__REPORT_DEVICE_STATUS_REQUEST__INIT;
    V1beta1__DeviceStatus st = V1BETA1__DEVICE_STATUS__INIT;

    st.twins = twins;
    st.n_twins = n;
    req.devicename = (char *)device;
    req.reporteddevice = &st;
    request(d, call, "ReportDeviceStatus", &req.base);
}

/* ---- MapperRegister ---------------------------------------------------------------------- */

/* dmiserver MapperRegister: protocol "" -> "fail to register mapper %s because the protocol is
 * nil" (edgecore: a plain error, gRPC UNKNOWN; here INVALID_ARGUMENT), nothing stored. */
START_TEST(register_needs_protocol)
{
    struct dmi *d = make(false);

    register_mapper(d, 7, "", true);
    ck_assert_int_eq(n_replies, 1);
    ck_assert_uint_eq(replies[0].call, 7);
    ck_assert_int_eq(replies[0].code, GRPC_INVALID_ARGUMENT);
    ck_assert_str_eq(replies[0].message,
                     "fail to register mapper modbus-mapper because the protocol is nil");
    ck_assert_int_eq(meta_stub_n, 0);
    dmi_free(d);
}
END_TEST

/* saveMapper's row (key, type, Go's JSON of pb.MapperInfo: omitempty, address in base64), and
 * withData: every Device of the protocol with its model, same order; one whose model is not
 * stored is skipped; another protocol's is not sent. */
START_TEST(register_stores_and_answers_devices)
{
    V1beta1__MapperRegisterResponse *resp;
    const struct meta_stub_row *row;
    struct dmi *d;

    meta_stub_put("default/devicemodel/thermo-model", "devicemodel",
                  MODEL("thermo-model", "modbus"));
    meta_stub_put("default/device/thermo-1", "device",
                  DEVICE("thermo-1", "modbus", "thermo-model"));
    meta_stub_put("default/device/other", "device", DEVICE("other", "opcua", "thermo-model"));
    meta_stub_put("default/device/lost", "device", DEVICE("lost", "modbus", "no-such-model"));
    meta_stub_put("default/device/thermo-2", "device",
                  DEVICE("thermo-2", "modbus", "thermo-model"));
    d = make(false);
    register_mapper(d, 1, "modbus", true);
    ck_assert_int_eq(n_replies, 1);
    ck_assert_int_eq(replies[0].code, GRPC_OK);
    row = meta_stub_find("node/nodeID/namespace/devicemapper/modbus-mapper");
    ck_assert_ptr_nonnull(row);
    ck_assert_str_eq(row->type, "devicemapper");
    ck_assert_str_eq(row->value, "{\"name\":\"modbus-mapper\",\"version\":\"v1.0\",\"api_version\":"
                                 "\"v1beta1\",\"protocol\":\"modbus\",\"address\":"
                                 "\"L3RtcC9tLnNvY2s=\",\"state\":\"running\"}");
    resp = v1beta1__mapper_register_response__unpack(NULL, replies[0].len, replies[0].resp);
    ck_assert_ptr_nonnull(resp);
    ck_assert_uint_eq(resp->n_devicelist, 2);
    ck_assert_uint_eq(resp->n_modellist, 2);
    ck_assert_str_eq(resp->devicelist[0]->name, "thermo-1");
    ck_assert_str_eq(resp->devicelist[1]->name, "thermo-2");
    ck_assert_str_eq(resp->modellist[0]->name, "thermo-model");
    ck_assert_str_eq(resp->modellist[1]->spec->properties[0]->type, "INT");
    v1beta1__mapper_register_response__free_unpacked(resp, NULL);

    /* withData false: the empty answer */
    register_mapper(d, 2, "modbus", false);
    ck_assert_int_eq(replies[1].code, GRPC_OK);
    ck_assert_uint_eq(replies[1].len, 0);
    dmi_free(d);
}
END_TEST

START_TEST(register_store_failure)
{
    struct dmi *d = make(false);

    meta_stub_fail = 1;
    register_mapper(d, 3, "modbus", true);
    ck_assert_int_eq(replies[0].code, GRPC_INTERNAL);
    ck_assert_str_eq(replies[0].message,
                     "fail to register mapper modbus-mapper: local store failed");
    dmi_free(d);
}
END_TEST

/* ---- the registry across a restart, and mapper_list ------------------------------------------ */

static char *bctl(struct dmi *d, const char *req)
{
    struct kedge_buf out = KEDGE_BUF_INIT;

    ck_assert_int_eq(dmi_bctl(d, req, strlen(req), &out), 1);
    return kedge_buf_take(&out, NULL);
}

START_TEST(restored_mapper_is_listed_and_called)
{
    struct dmi *d;
    char *json;
    struct kedge_buf other = KEDGE_BUF_INIT;

    meta_stub_put("node/nodeID/namespace/devicemapper/modbus-mapper", "devicemapper",
                  "{\"name\":\"modbus-mapper\",\"protocol\":\"modbus\",\"address\":"
                  "\"L3RtcC9tLnNvY2s=\",\"state\":\"running\"}");
    meta_stub_put("node/nodeID/namespace/devicemapper/broken", "devicemapper", "{\"name\":1}");
    meta_stub_put("default/device/thermo-1", "device", DEVICE("thermo-1", "modbus", "m"));
    meta_stub_put("default/device/thermo-2", "device", DEVICE("thermo-2", "modbus", "m"));
    meta_stub_put("default/device/other", "device", DEVICE("other", "opcua", "m"));
    d = make(false);
    json = bctl(d, "{\"op\":\"mapper_list\"}");
    ck_assert_str_eq(json, "{\"mappers\":[{\"name\":\"modbus-mapper\",\"version\":\"\","
                           "\"api_version\":\"\",\"protocol\":\"modbus\",\"address\":"
                           "\"/tmp/m.sock\",\"state\":\"running\",\"registered_ms\":0,"
                           "\"last_report_ms\":0,\"reports\":0,\"devices\":[\"thermo-1\","
                           "\"thermo-2\"]}]}");
    kedge_free(json);
    /* another op is the queue's */
    ck_assert_int_eq(
        dmi_bctl(d, "{\"op\":\"outbox_list\"}", strlen("{\"op\":\"outbox_list\"}"), &other), 0);
    ck_assert_uint_eq(other.len, 0);
    /* the restored mapper gets the cloud's change without registering again */
    dmi_cloud_change(d, "device", "update", DEVICE("thermo-1", "modbus", "m"),
                     strlen(DEVICE("thermo-1", "modbus", "m")), NULL);
    ck_assert_int_eq(n_calls, 1);
    ck_assert_str_eq(calls[0].sock, "/tmp/m.sock");
    ck_assert_str_eq(calls[0].path, "/v1beta1.DeviceMapperService/UpdateDevice");
    calls[0].done(calls[0].ctx, GRPC_OK, NULL, NULL);
    dmi_free(d);
}
END_TEST

/* ---- ReportDeviceStatus ------------------------------------------------------------------- */

static V1beta1__Twin twin(const char *name, V1beta1__TwinProperty *rep,
                          V1beta1__TwinProperty *desired)
{
    V1beta1__Twin t = V1BETA1__TWIN__INIT;

    t.propertyname = (char *)name;
    t.reported = rep;
    t.observeddesired = desired;
    return t;
}

static V1beta1__TwinProperty value(const char *v)
{
    V1beta1__TwinProperty p = V1BETA1__TWIN_PROPERTY__INIT;

    p.value = (char *)v;
    return p;
}

/* Everything of the content but the timestamp. */
static void assert_update(const char *content, const char *twin_json)
{
    struct kedge_jdoc *doc = NULL;
    const char *t;

    ck_assert_int_eq(kedge_json_parse(content, strlen(content), &doc), 0);
    ck_assert_ptr_nonnull(kedge_json_get(kedge_jdoc_root(doc), "timestamp"));
    ck_assert_int_eq(kedge_json_get(kedge_jdoc_root(doc), "timestamp")->type, KEDGE_JNUM);
    kedge_jdoc_free(doc);
    ck_assert_msg(!strncmp(content, "{\"event_id\":\"\",\"timestamp\":", 27), "%s", content);
    t = strstr(content, ",\"twin\":");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t + 8, twin_json);
}

/* dmiserver's CreateMessageTwinUpdate per twin, here one update of all of them: keys sorted,
 * the last of a name given twice wins, an empty observedDesired value left out. */
START_TEST(report_is_one_twin_update)
{
    V1beta1__TwinProperty r1 = value("1"), r2 = value("2"), r3 = value("3"), d5 = value("5"),
                          empty = value("");
    V1beta1__Twin a = twin("b", &r2, &empty), b = twin("a", &r1, &d5), c = twin("a", &r3, &d5);
    V1beta1__Twin *twins[] = {&a, &b, &c};
    struct dmi *d;

    meta_stub_put("default/device/thermo-1", "device", DEVICE("thermo-1", "modbus", "m"));
    d = make(false);
    report(d, 9, "thermo-1", twins, 3);
    ck_assert_int_eq(n_downs, 1);
    ck_assert_int_eq(n_replies, 0); /* the answer waits for the plugin */
    ck_assert_str_eq(downs[0].resource, "device/thermo-1/twin/update");
    ck_assert_str_eq(downs[0].group, "twin");
    ck_assert_str_eq(downs[0].operation, "update");
    assert_update(downs[0].content, "{\"a\":{\"expected\":{\"value\":\"5\"},\"actual\":{\"value\":"
                                    "\"3\"}},\"b\":{\"actual\":{\"value\":\"2\"}}}}");
    downs[0].result(downs[0].ctx, NULL, 0, NULL);
    ck_assert_int_eq(n_replies, 1);
    ck_assert_uint_eq(replies[0].call, 9);
    ck_assert_int_eq(replies[0].code, GRPC_OK);
    dmi_free(d);
}
END_TEST

/* The plugin's answer is the mapper's: 404 NOT_FOUND, 400 INVALID_ARGUMENT with its reason,
 * 500 INTERNAL, no answer UNAVAILABLE; a link that takes nothing UNAVAILABLE at once. */
START_TEST(report_answer_codes)
{
    static const struct {
        int plugin, grpc;
    } cases[] = {{404, GRPC_NOT_FOUND},
                 {400, GRPC_INVALID_ARGUMENT},
                 {500, GRPC_INTERNAL},
                 {-1, GRPC_UNAVAILABLE}};
    V1beta1__TwinProperty r = value("x");
    V1beta1__Twin t = twin("temperature", &r, NULL);
    V1beta1__Twin *twins[] = {&t};
    struct kedge_msg m = {0};
    struct dmi *d = make(false);
    size_t i;

    m.resource = "device/thermo-1/twin/update";
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        report(d, i, "thermo-1", twins, 1);
        downs[i].result(downs[i].ctx, &m, cases[i].plugin, "the value is not int or integer");
        ck_assert_int_eq(replies[i].code, cases[i].grpc);
        ck_assert_str_eq(replies[i].message,
                         "device/thermo-1/twin/update: the value is not int or integer");
    }
    down_rc = -ENOTCONN;
    report(d, 99, "thermo-1", twins, 1);
    ck_assert_int_eq(replies[i].code, GRPC_UNAVAILABLE);
    /* no twins: nothing to do, OK at once; no name: refused */
    report(d, 100, "thermo-1", twins, 0);
    ck_assert_int_eq(replies[i + 1].code, GRPC_OK);
    report(d, 101, "", twins, 1);
    ck_assert_int_eq(replies[i + 2].code, GRPC_INVALID_ARGUMENT);
    dmi_free(d);
}
END_TEST

#define NINE                                                                                       \
    "{\"metadata\":{\"name\":\"thermo-9\",\"namespace\":\"site-b\"},\"spec\":{"                    \
    "\"protocol\":{\"protocolName\":\"opcua\"}}}"

/* cloudcore v1.17+: the plugin's id is {namespace}/{name} of the stored Device. */
START_TEST(report_namespaced_id)
{
    V1beta1__TwinProperty r = value("1");
    V1beta1__Twin t = twin("temperature", &r, NULL);
    V1beta1__Twin *twins[] = {&t};
    struct dmi *d;

    meta_stub_put("site-a/device/thermo-1", "device", DEVICE("thermo-1", "modbus", "m"));
    d = make(true);
    report(d, 1, "thermo-1", twins, 1);
    ck_assert_str_eq(downs[0].resource, "device/site-a/thermo-1/twin/update");
    /* the index read at the first report follows the cloud's changes */
    dmi_cloud_change(d, "device", "insert", NINE, strlen(NINE), NULL);
    report(d, 2, "thermo-9", twins, 1);
    ck_assert_str_eq(downs[1].resource, "device/site-b/thermo-9/twin/update");
    dmi_cloud_change(d, "device", "delete", NINE, strlen(NINE), NULL);
    report(d, 3, "thermo-9", twins, 1); /* not stored: the plugin says whether it knows it */
    ck_assert_str_eq(downs[2].resource, "device/thermo-9/twin/update");
    downs[1].result(downs[1].ctx, NULL, 0, NULL);
    downs[2].result(downs[2].ctx, NULL, 404, "no such device");
    ck_assert_int_eq(n_replies, 2);
    dmi_stop(d); /* a result after the stop answers nothing, frees its call */
    downs[0].result(downs[0].ctx, NULL, 0, NULL);
    ck_assert_int_eq(n_replies, 2);
    dmi_free(d);
}
END_TEST

START_TEST(unknown_and_garbage)
{
    struct dmi *d = make(false);

    dmi_request(d, 1, "v1beta1.DeviceManagerService", "Nope", NULL, 0);
    dmi_request(d, 2, "v1beta1.DeviceMapperService", "MapperRegister", NULL, 0);
    dmi_request(d, 3, "v1beta1.DeviceManagerService", "MapperRegister", (const uint8_t *)"\xff\xff",
                2);
    dmi_request(d, 4, "v1beta1.DeviceManagerService", "ReportDeviceStatus",
                (const uint8_t *)"\x0a\x05zz", 4);
    ck_assert_int_eq(n_replies, 4);
    ck_assert_int_eq(replies[0].code, GRPC_UNIMPLEMENTED);
    ck_assert_int_eq(replies[1].code, GRPC_UNIMPLEMENTED);
    ck_assert_int_eq(replies[2].code, GRPC_INVALID_ARGUMENT);
    ck_assert_int_eq(replies[3].code, GRPC_INVALID_ARGUMENT);
    dmi_free(d);
}
END_TEST

/* ---- notify ---------------------------------------------------------------------------------- */

static void change(struct dmi *d, const char *type, const char *op, const char *json,
                   const char *old)
{
    dmi_cloud_change(d, type, op, json, strlen(json), old);
}

/* dmiworker: insert -> RegisterDevice / CreateDeviceModel, update -> UpdateDevice (the desired
 * values) / UpdateDeviceModel, delete -> RemoveDevice(name) / RemoveDeviceModel(name), to the
 * mapper of the protocol, one at a time in order. */
START_TEST(cloud_changes_reach_the_mapper_in_order)
{
    static const char dev30[] =
        "{\"metadata\":{\"name\":\"thermo-1\"},\"spec\":{\"deviceModelRef\":{\"name\":\"m\"},"
        "\"protocol\":{\"protocolName\":\"modbus\"},\"properties\":[{\"name\":\"temperature\","
        "\"desired\":{\"value\":\"30\"}}]}}";
    V1beta1__UpdateDeviceRequest *upd;
    V1beta1__RemoveDeviceModelRequest *rm;
    struct dmi *d = make(false);

    register_mapper(d, 1, "modbus", false);
    change(d, "devicemodel", "insert", MODEL("m", "modbus"), NULL);
    change(d, "device", "insert", DEVICE("thermo-1", "modbus", "m"), NULL);
    change(d, "device", "update", dev30, NULL);
    change(d, "device", "insert", DEVICE("x", "opcua", "m"), NULL); /* no mapper: nothing */
    change(d, "device", "delete", DEVICE("thermo-1", "modbus", "m"), NULL);
    /* a model's delete carries only its metadata: the stored row's protocol routes it */
    change(d, "devicemodel", "delete", "{\"metadata\":{\"name\":\"m\"}}", MODEL("m", "modbus"));
    ck_assert_int_eq(n_calls, 1); /* the next waits for this one's end */
    ck_assert_str_eq(calls[0].path, "/v1beta1.DeviceMapperService/CreateDeviceModel");
    calls[0].done(calls[0].ctx, GRPC_OK, NULL, NULL);
    ck_assert_str_eq(calls[1].path, "/v1beta1.DeviceMapperService/RegisterDevice");
    calls[1].done(calls[1].ctx, GRPC_UNAVAILABLE, "connection refused", NULL); /* logged */
    ck_assert_str_eq(calls[2].path, "/v1beta1.DeviceMapperService/UpdateDevice");
    upd = v1beta1__update_device_request__unpack(NULL, calls[2].len, calls[2].req);
    ck_assert_str_eq(upd->device->spec->properties[0]->desired->value, "30");
    v1beta1__update_device_request__free_unpacked(upd, NULL);
    calls[2].done(calls[2].ctx, GRPC_OK, NULL, NULL);
    ck_assert_str_eq(calls[3].path, "/v1beta1.DeviceMapperService/RemoveDevice");
    calls[3].done(calls[3].ctx, GRPC_OK, NULL, NULL);
    ck_assert_str_eq(calls[4].path, "/v1beta1.DeviceMapperService/RemoveDeviceModel");
    rm = v1beta1__remove_device_model_request__unpack(NULL, calls[4].len, calls[4].req);
    ck_assert_str_eq(rm->modelname, "m");
    v1beta1__remove_device_model_request__free_unpacked(rm, NULL);
    calls[4].done(calls[4].ctx, GRPC_OK, NULL, NULL);
    ck_assert_int_eq(n_calls, 5);
    /* stopped: queued calls are dropped with the object */
    change(d, "device", "update", dev30, NULL);
    change(d, "device", "update", dev30, NULL);
    dmi_stop(d);
    calls[5].done(calls[5].ctx, GRPC_UNAVAILABLE, "closing", NULL);
    ck_assert_int_eq(n_calls, 6);
    dmi_free(d);
}
END_TEST

/* ---- allocation failures ----------------------------------------------------------------------
 */

static int register_op(void *ctx)
{
    struct dmi *d = NULL;
    const struct dmi_deps deps = {NULL, fake_down, NULL, false};
    const struct dmi_io io = {NULL, fake_reply, fake_call};
    int rc = dmi_new(&deps, &d);

    (void)ctx;
    if (rc < 0)
        return rc;
    dmi_set_io(d, &io);
    clear_records();
    register_mapper(d, 1, "modbus", true);
    rc = replies[0].code == GRPC_OK ? 0 : -ENOMEM;
    if (rc == 0) {
        V1beta1__MapperRegisterResponse *r =
            v1beta1__mapper_register_response__unpack(NULL, replies[0].len, replies[0].resp);
        rc = r && r->n_devicelist == 1 ? 0 : -ENOMEM; /* a skipped device is logged, not sent */
        v1beta1__mapper_register_response__free_unpacked(r, NULL);
    }
    dmi_free(d);
    return rc;
}

static int report_op(void *ctx)
{
    V1beta1__TwinProperty r = value("1");
    V1beta1__Twin t = twin("temperature", &r, NULL);
    V1beta1__Twin *twins[] = {&t};
    struct dmi *d = ctx;

    clear_records();
    report(d, 1, "thermo-1", twins, 1);
    if (n_downs != 1)
        return replies[0].code == GRPC_RESOURCE_EXHAUSTED ? -ENOMEM : -1;
    downs[0].result(downs[0].ctx, NULL, 0, NULL);
    return replies[0].code == GRPC_OK ? 0 : -1;
}

START_TEST(allocation_failures)
{
    static const int ok[] = {-ENOMEM};
    struct dmi *d;

    meta_stub_put("default/devicemodel/m", "devicemodel", MODEL("m", "modbus"));
    meta_stub_put("default/device/thermo-1", "device", DEVICE("thermo-1", "modbus", "m"));
    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(register_op, NULL, ok, 1), 10);
    d = make(false);
    ck_assert_int_eq(report_op(d), 0); /* the index of Devices is read once, then kept */
    ck_assert_int_gt(unit_alloc_fail_loop(report_op, d, ok, 1), 3);
    dmi_free(d);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dmi");
    TCase *tc = tcase_create("dmi");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, register_needs_protocol);
    tcase_add_test(tc, register_stores_and_answers_devices);
    tcase_add_test(tc, register_store_failure);
    tcase_add_test(tc, restored_mapper_is_listed_and_called);
    tcase_add_test(tc, report_is_one_twin_update);
    tcase_add_test(tc, report_answer_codes);
    tcase_add_test(tc, report_namespaced_id);
    tcase_add_test(tc, unknown_and_garbage);
    tcase_add_test(tc, cloud_changes_reach_the_mapper_in_order);
    tcase_add_test(tc, allocation_failures);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
