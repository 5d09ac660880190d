/* cloudbridge/dmi/convert.c: Device / DeviceModel CRs as the DMI messages edgecore v1.15.4's
 * ConvertDevice / ConvertDeviceModel (dtcommon/util.go) make of them. The example device is
 * /work/shared/cloudcore/examples/device.yaml as cloudcore sent it (cloudcore-recorded/
 * devices-twin.jsonl, "update default/device/thermo-1"), with the configData, visitors and
 * push method a modbus mapper's Device has (the mapper-framework's own example).
 */
#include <check.h>
#include <math.h>

#include "convert.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "kedge/err.h"
#include "unit.h"

#define RECORDED_DEVICE                                                                            \
    "{\"kind\":\"Device\",\"apiVersion\":\"devices.kubeedge.io/v1beta1\",\"metadata\":{\"name\":"  \
    "\"thermo-1\",\"namespace\":\"default\",\"uid\":\"c37b43ef-911e-44fb-b98c-2cae52aa83cc\","     \
    "\"resourceVersion\":\"262\",\"generation\":2,\"labels\":{\"description\":\"thermometer-1\"}}" \
    ","                                                                                            \
    "\"spec\":{\"deviceModelRef\":{\"name\":\"thermo-model\"},\"nodeName\":\"kedge-ref\","         \
    "\"properties\":[{\"name\":\"temperature\",\"desired\":{\"value\":\"22\"},\"visitors\":{},"    \
    "\"reportToCloud\":true}],\"protocol\":{\"protocolName\":\"modbus\"}},\"status\":{\"twins\":"  \
    "[{\"propertyName\":\"temperature\",\"reported\":{\"value\":\"24\",\"metadata\":{"             \
    "\"timestamp\":\"1795608452631\",\"type\":\"int\"}},\"observedDesired\":{\"value\":\"\"}}]}}"

#define MODBUS_DEVICE                                                                              \
    "{\"metadata\":{\"name\":\"thermo-2\",\"namespace\":\"default\"},\"spec\":{"                   \
    "\"deviceModelRef\":{\"name\":\"thermo-model\"},\"protocol\":{\"protocolName\":\"modbus\","    \
    "\"configData\":{\"port\":\"/dev/ttyS0\",\"slaveID\":1,\"baudRate\":9600.5,\"parity\":"        \
    "false}},\"properties\":[{\"name\":\"temperature\",\"desired\":{\"value\":\"30\"},"            \
    "\"reportCycle\":10000,\"collectCycle\":5000,\"visitors\":{\"protocolName\":\"modbus\","       \
    "\"configData\":{\"register\":\"HoldingRegister\",\"offset\":2,\"limit\":1,\"scale\":0.5}},"   \
    "\"pushMethod\":{\"mqtt\":{\"address\":\"tcp://127.0.0.1:1883\",\"topic\":\"t\",\"qos\":1,"    \
    "\"retained\":true},\"http\":{\"hostName\":\"h\",\"port\":8080,\"requestPath\":\"/p\"}}}]}}"

#define RECORDED_MODEL                                                                             \
    "{\"kind\":\"DeviceModel\",\"apiVersion\":\"devices.kubeedge.io/v1beta1\",\"metadata\":{"      \
    "\"name\":\"thermo-model\",\"namespace\":\"default\",\"resourceVersion\":\"254\"},\"spec\":{"  \
    "\"properties\":[{\"name\":\"temperature\",\"type\":\"INT\",\"accessMode\":\"ReadWrite\","     \
    "\"minimum\":\"-40\",\"maximum\":\"125\",\"unit\":\"C\"}],\"protocol\":\"modbus\"}}"

static struct kedge_jdoc *parse(const char *json)
{
    struct kedge_jdoc *doc = NULL;

    ck_assert_int_eq(kedge_json_parse(json, strlen(json), &doc), 0);
    return doc;
}

static int convert_device(const char *json, V1beta1__Device **out, char *why, size_t n)
{
    struct kedge_jdoc *doc = NULL;
    int rc = kedge_json_parse(json, strlen(json), &doc);

    if (rc == 0)
        rc = dmi_convert_device(kedge_jdoc_root(doc), out, why, n);
    kedge_jdoc_free(doc);
    return rc;
}

/* What a mapper unpacks: the message packed and unpacked again by protobuf-c's own code. */
static V1beta1__Device *over_the_wire(const V1beta1__Device *d)
{
    size_t n = v1beta1__device__get_packed_size(d);
    uint8_t *buf = malloc(n ? n : 1);
    V1beta1__Device *back;

    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(v1beta1__device__pack(d, buf), n);
    back = v1beta1__device__unpack(NULL, n, buf);
    free(buf);
    ck_assert_ptr_nonnull(back);
    return back;
}

static const Google__Protobuf__Any *config(const V1beta1__CustomizedValue *cv, const char *key)
{
    size_t i;

    ck_assert_ptr_nonnull(cv);
    for (i = 0; i < cv->n_data; i++)
        if (!strcmp(cv->data[i]->key, key))
            return cv->data[i]->value;
    ck_abort_msg("no configData %s", key);
    return NULL;
}

static float float_of(const Google__Protobuf__Any *a)
{
    Google__Protobuf__FloatValue *f;
    float v;

    ck_assert_str_eq(a->type_url, "type.googleapis.com/google.protobuf.FloatValue");
    f = google__protobuf__float_value__unpack(NULL, a->value.len, a->value.data);
    ck_assert_ptr_nonnull(f);
    v = f->value;
    google__protobuf__float_value__free_unpacked(f, NULL);
    return v;
}

START_TEST(recorded_device)
{
    char why[256] = "";
    V1beta1__Device *d = NULL, *w;
    V1beta1__Twin *t;

    ck_assert_int_eq(convert_device(RECORDED_DEVICE, &d, why, sizeof(why)), 0);
    w = over_the_wire(d);
    ck_assert_str_eq(w->name, "thermo-1");
    ck_assert_ptr_nonnull(w->spec);
    ck_assert_str_eq(w->spec->devicemodelreference, "thermo-model");
    ck_assert_str_eq(w->spec->protocol->protocolname, "modbus");
    ck_assert_ptr_null(w->spec->protocol->configdata); /* none in the CR: nil in Go too */
    ck_assert_uint_eq(w->spec->n_properties, 1);
    ck_assert_str_eq(w->spec->properties[0]->name, "temperature");
    ck_assert_str_eq(w->spec->properties[0]->desired->value, "22");
    ck_assert(w->spec->properties[0]->reporttocloud);
    ck_assert_ptr_nonnull(w->spec->properties[0]->visitors); /* {} in the CR */
    ck_assert_ptr_null(w->spec->properties[0]->visitors->configdata);
    ck_assert_ptr_null(w->spec->properties[0]->pushmethod);
    ck_assert_uint_eq(w->status->n_twins, 1);
    t = w->status->twins[0];
    ck_assert_str_eq(t->propertyname, "temperature");
    ck_assert_str_eq(t->reported->value, "24");
    ck_assert_uint_eq(t->reported->n_metadata, 2);
    ck_assert_str_eq(t->observeddesired->value, "");
    v1beta1__device__free_unpacked(w, NULL);
    dmi_pb_free(d);
}
END_TEST

START_TEST(config_data_as_any)
{
    char why[256] = "";
    V1beta1__Device *d = NULL, *w;
    V1beta1__DeviceProperty *p;
    const Google__Protobuf__Any *a;
    Google__Protobuf__StringValue *s;
    Google__Protobuf__BoolValue *b;

    ck_assert_int_eq(convert_device(MODBUS_DEVICE, &d, why, sizeof(why)), 0);
    w = over_the_wire(d);
    a = config(w->spec->protocol->configdata, "port");
    ck_assert_str_eq(a->type_url, "type.googleapis.com/google.protobuf.StringValue");
    s = google__protobuf__string_value__unpack(NULL, a->value.len, a->value.data);
    ck_assert_str_eq(s->value, "/dev/ttyS0");
    google__protobuf__string_value__free_unpacked(s, NULL);
    ck_assert(float_of(config(w->spec->protocol->configdata, "slaveID")) == 1.0f);
    ck_assert(float_of(config(w->spec->protocol->configdata, "baudRate")) == 9600.5f);
    a = config(w->spec->protocol->configdata, "parity");
    ck_assert_str_eq(a->type_url, "type.googleapis.com/google.protobuf.BoolValue");
    ck_assert_uint_eq(a->value.len, 0); /* false packs to nothing, as in Go */
    b = google__protobuf__bool_value__unpack(NULL, a->value.len, a->value.data);
    ck_assert(!b->value);
    google__protobuf__bool_value__free_unpacked(b, NULL);

    p = w->spec->properties[0];
    ck_assert_int_eq(p->reportcycle, 10000);
    ck_assert_int_eq(p->collectcycle, 5000);
    ck_assert_str_eq(p->visitors->protocolname, "modbus");
    ck_assert_uint_eq(p->visitors->configdata->n_data, 4);
    ck_assert(float_of(config(p->visitors->configdata, "scale")) == 0.5f);
    ck_assert_str_eq(p->pushmethod->mqtt->address, "tcp://127.0.0.1:1883");
    ck_assert_int_eq(p->pushmethod->mqtt->qos, 1);
    ck_assert(p->pushmethod->mqtt->retained);
    /* the CR's hostName / requestPath reach hostname / requestpath case-insensitively */
    ck_assert_str_eq(p->pushmethod->http->hostname, "h");
    ck_assert_str_eq(p->pushmethod->http->requestpath, "/p");
    ck_assert_int_eq(p->pushmethod->http->port, 8080);
    ck_assert_ptr_null(p->pushmethod->dbmethod);
    /* the CR has no status: its zero value is marshalled all the same */
    ck_assert_ptr_nonnull(w->status);
    ck_assert_uint_eq(w->status->n_twins, 0);
    v1beta1__device__free_unpacked(w, NULL);
    dmi_pb_free(d);
}
END_TEST

START_TEST(recorded_model)
{
    struct kedge_jdoc *doc = parse(RECORDED_MODEL);
    V1beta1__DeviceModel *m = NULL;
    V1beta1__ModelProperty *p;
    char why[256] = "";

    ck_assert_int_eq(dmi_convert_model(kedge_jdoc_root(doc), &m, why, sizeof(why)), 0);
    ck_assert_str_eq(m->name, "thermo-model");
    ck_assert_uint_eq(m->spec->n_properties, 1);
    p = m->spec->properties[0];
    ck_assert_str_eq(p->name, "temperature");
    ck_assert_str_eq(p->type, "INT");
    ck_assert_str_eq(p->accessmode, "ReadWrite");
    ck_assert_str_eq(p->minimum, "-40");
    ck_assert_str_eq(p->maximum, "125");
    ck_assert_str_eq(p->unit, "C");
    ck_assert_uint_eq(m->spec->n_commands, 0);
    ck_assert_uint_gt(v1beta1__device_model__get_packed_size(m), 0);
    dmi_pb_free(m);
    kedge_jdoc_free(doc);
}
END_TEST

/* Go's decoder: the last of duplicate keys wins (also across letter case), unknown keys and
 * nulls are ignored, a null element of a CR slice is its zero value. */
START_TEST(go_decoder_rules)
{
    static const char json[] =
        "{\"metadata\":{\"name\":\"a\",\"NAME\":\"b\"},\"name\":\"ignored\",\"spec\":{"
        "\"deviceModelRef\":{\"name\":\"m\"},\"deviceModelReference\":\"ignored\",\"protocol\":"
        "null,\"unknown\":[1,2],\"properties\":[null,{\"Name\":\"x\",\"name\":\"y\","
        "\"desired\":{\"value\":\"1\",\"metadata\":{\"k\":\"1\",\"k\":\"2\",\"n\":null}}}]}}";
    V1beta1__Device *d = NULL, *w;
    char why[256] = "";

    ck_assert_int_eq(convert_device(json, &d, why, sizeof(why)), 0);
    w = over_the_wire(d);
    ck_assert_str_eq(w->name, "b");
    ck_assert_str_eq(w->spec->devicemodelreference, "m");
    ck_assert_ptr_nonnull(w->spec->protocol); /* a plain struct in the CR */
    ck_assert_uint_eq(w->spec->n_properties, 2);
    ck_assert_str_eq(w->spec->properties[0]->name, "");
    ck_assert_ptr_nonnull(w->spec->properties[0]->desired);
    ck_assert_str_eq(w->spec->properties[1]->name, "y");
    ck_assert_uint_eq(w->spec->properties[1]->desired->n_metadata, 2);
    ck_assert_str_eq(w->spec->properties[1]->desired->metadata[0]->key, "k");
    ck_assert_str_eq(w->spec->properties[1]->desired->metadata[0]->value, "2");
    ck_assert_str_eq(w->spec->properties[1]->desired->metadata[1]->value, "");
    v1beta1__device__free_unpacked(w, NULL);
    dmi_pb_free(d);
}
END_TEST

/* Values Go's decoder or dataToAny refuses fail the whole conversion, with a reason. */
START_TEST(wrong_types_fail)
{
    static const struct {
        const char *json, *why;
    } cases[] = {
        {"[]", "not a JSON object"},
        {"{\"metadata\":{\"name\":5},\"spec\":{\"deviceModelRef\":{\"name\":\"m\"}}}",
         "metadata.name is not a string"},
        {"{\"metadata\":{\"name\":\"a\"},\"spec\":{}}", "spec.deviceModelRef is missing"},
        {"{\"spec\":\"x\"}", "spec: cannot unmarshal string into v1beta1.DeviceSpec"},
        {"{\"spec\":{\"deviceModelRef\":{\"name\":\"m\"},\"properties\":[{\"reportCycle\":"
         "\"10\"}]}}",
         "reportCycle: cannot unmarshal string into int64"},
        {"{\"spec\":{\"deviceModelRef\":{\"name\":\"m\"},\"properties\":[{\"reportCycle\":1.5}]}}",
         "reportCycle: cannot unmarshal number 1.5 into int64"},
        {"{\"spec\":{\"properties\":[{\"pushMethod\":{\"mqtt\":{\"qos\":4294967296}}}]}}",
         "qos: cannot unmarshal number 4294967296 into int32"},
        {"{\"spec\":{\"properties\":{}}}", "properties: cannot unmarshal object into array"},
        {"{\"spec\":{\"properties\":[{\"reportToCloud\":\"true\"}]}}",
         "reportToCloud: cannot unmarshal string into bool"},
        {"{\"status\":{\"twins\":[{\"reported\":{\"metadata\":{\"a\":1}}}]}}",
         "value: cannot unmarshal number into string"},
        {"{\"spec\":{\"protocol\":{\"configData\":{\"a\":null}}}}",
         "configData a: <nil> does not support converting to any"},
        {"{\"spec\":{\"protocol\":{\"configData\":{\"a\":{}}}}}",
         "configData a: map[string]interface {} does not support converting to any"},
        {"{\"spec\":{\"properties\":[{\"visitors\":{\"configData\":{\"a\":[1]}}}]}}",
         "configData a: []interface {} does not support converting to any"},
        {"{\"spec\":{\"protocol\":{\"configData\":{\"a\":1e400}}}}",
         "configData a: number 1e400 out of range"},
        {"{\"spec\":{\"protocol\":{\"configData\":\"x\"}}}",
         "configData: cannot unmarshal string into map[string]interface {}"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        V1beta1__Device *d = (V1beta1__Device *)1;
        char why[256] = "";
        ck_assert_msg(convert_device(cases[i].json, &d, why, sizeof(why)) == KEDGE_ESCHEMA,
                      "case %zu converted", i);
        ck_assert_ptr_null(d);
        ck_assert_msg(!strcmp(why, cases[i].why), "case %zu: why '%s', want '%s'", i, why,
                      cases[i].why);
    }
}
END_TEST

START_TEST(model_wrong_types_fail)
{
    struct kedge_jdoc *doc = parse("{\"metadata\":{\"name\":\"m\"},\"spec\":{\"properties\":"
                                   "[{\"name\":\"t\",\"minimum\":-40}]}}");
    V1beta1__DeviceModel *m = NULL;
    char why[256] = "";

    ck_assert_int_eq(dmi_convert_model(kedge_jdoc_root(doc), &m, why, sizeof(why)), KEDGE_ESCHEMA);
    ck_assert_ptr_null(m);
    ck_assert_str_eq(why, "minimum: cannot unmarshal number into string");
    kedge_jdoc_free(doc);
}
END_TEST

static int convert_op(void *ctx)
{
    V1beta1__Device *d = NULL;
    char why[128];
    int rc = convert_device(ctx, &d, why, sizeof(why));

    dmi_pb_free(d);
    return rc;
}

static int model_op(void *ctx)
{
    struct kedge_jdoc *doc = NULL;
    V1beta1__DeviceModel *m = NULL;
    char why[128];
    int rc = kedge_json_parse(ctx, strlen(ctx), &doc);

    if (rc == 0)
        rc = dmi_convert_model(kedge_jdoc_root(doc), &m, why, sizeof(why));
    dmi_pb_free(m);
    kedge_jdoc_free(doc);
    return rc;
}

/* Every allocation of a conversion fails in turn: -ENOMEM, nothing leaked (the counting
 * allocator sees every block, including those protobuf-c frees through ours). */
START_TEST(allocation_failures)
{
    static const int ok[] = {-ENOMEM};

    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(convert_op, MODBUS_DEVICE, ok, 1), 20);
    ck_assert_int_gt(unit_alloc_fail_loop(convert_op, RECORDED_DEVICE, ok, 1), 10);
    ck_assert_int_gt(unit_alloc_fail_loop(model_op, RECORDED_MODEL, ok, 1), 5);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

/* A failure half way (after messages, arrays and Anys were made) frees all of it. */
START_TEST(failure_half_way_frees)
{
    static const char json[] =
        "{\"spec\":{\"deviceModelRef\":{\"name\":\"m\"},\"protocol\":{\"configData\":{\"a\":1,"
        "\"b\":\"x\"}},\"properties\":[{\"name\":\"p\",\"visitors\":{\"configData\":{\"c\":true,"
        "\"d\":[]}}}]}}";
    V1beta1__Device *d = NULL;
    char why[128];

    unit_count_allocs();
    ck_assert_int_eq(convert_device(json, &d, why, sizeof(why)), KEDGE_ESCHEMA);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dmi_convert");
    TCase *tc = tcase_create("convert");

    tcase_add_test(tc, recorded_device);
    tcase_add_test(tc, config_data_as_any);
    tcase_add_test(tc, recorded_model);
    tcase_add_test(tc, go_decoder_rules);
    tcase_add_test(tc, wrong_types_fail);
    tcase_add_test(tc, model_wrong_types_fail);
    tcase_add_test(tc, allocation_failures);
    tcase_add_test(tc, failure_half_way_frees);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
