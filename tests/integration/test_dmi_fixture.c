/* test_dmi_fixture.c: the chain with DMI, the cloud's Devices and DeviceModels, and the steps on
 * mappers that the cases of test_dmi share (test_dmi.h). */
#define _GNU_SOURCE

#include "test_dmi.h"

const char *dmi_dir;
char dmi_sock[256];

void dmi_up(const struct kv *more)
{
    struct kv conf[16] = {{"dmi_call_timeout_ms", CALL_TIMEOUT_MS}};
    struct chain_opts co = {.cloud_version = "1.15", .bridge_conf = conf};
    size_t n = 1;

    for (; more && more->key && n < 15; more++)
        conf[n++] = *more;
    conf[n] = (struct kv){NULL, NULL};
    chain_up(&co);
    /* bridgectl's default dmi_socket; the mappers' sockets and logs go there too, so the
     * bridge's watcher removes them with its directory when a test dies */
    dmi_dir = bridgectl_dir(bridge);
    (void)snprintf(dmi_sock, sizeof(dmi_sock), "%s/dmi.sock", dmi_dir);
    ck_assert_int_eq(access(dmi_sock, F_OK), 0);
}

void dmi_down(void)
{
    teardown();
    dmi_dir = NULL;
}

bool dmi_kind_runs(enum mapper_kind k)
{
    const char *why = "";

    if (mapper_kind_available(k, &why))
        return true;
    kt_say("test_dmi: the %s mapper cannot run here (%s): its case checks nothing",
           mapper_kind_name(k), why);
    return false;
}

struct mapperctl *mapper_up(enum mapper_kind k, const char *name, const char *protocol)
{
    char sock[256], log[256];
    struct mapperctl_opts o = {k, name, protocol, sock, dmi_sock, log};
    struct mapperctl *m = NULL;

    (void)snprintf(sock, sizeof(sock), "%s/%s.sock", dmi_dir, name);
    (void)snprintf(log, sizeof(log), "%s/%s.log", dmi_dir, name);
    ck_assert_msg(mapperctl_start(&o, &m) == 0, "the %s mapper %s did not start",
                  mapper_kind_name(k), name);
    return m;
}

/* ---- the cloud's objects ----------------------------------------------------------------- */

/* Above the resourceVersion the cloud holds for key (its own status patches make versions too)
 * and above every one this test sent: the API server's only go up. */
static long next_rv(const char *key)
{
    static long last = 1000;
    struct kedge_buf body = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    const char *rv;
    char path[256];
    int status = 0;

    (void)snprintf(path, sizeof(path), "/object?key=%s", key);
    ck_assert_int_eq(simctl_http(sim, "GET", path, NULL, &status, &body), 0);
    if (status == 200 && kedge_json_parse(body.data, body.len, &doc) == 0) {
        rv = mapper_jstr(kedge_jdoc_root(doc), "metadata.resourceVersion");
        if (rv && strtol(rv, NULL, 10) > last)
            last = strtol(rv, NULL, 10);
    }
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&body);
    /* well above: the device controller may still bump it for a report on its way (a queued
     * edge_updated delivered after a reconnect), and the bridge drops an update older than
     * the Device it stored */
    last += 1000;
    return last;
}

static void send_acked(struct kedge_buf *b)
{
    char *id = cloud_send(b->data);

    wait_acked(id);
    kedge_free(id);
    kedge_buf_cleanup(b);
}

/* The device controller's resource message for the v1beta1 object {kind} default/{name} with
 * the rest of its body (",\"spec\":{...}..."), under a resourceVersion above the cloud's. */
static void send_object(const char *op, const char *type, const char *kind, const char *name,
                        const char *rest)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char key[128];
    long rv;

    (void)snprintf(key, sizeof(key), "default/%s/%s", type, name);
    rv = next_rv(key);
    ck_assert_int_eq(
        kedge_buf_printf(&b,
                         "{\"header\":{\"resourceversion\":\"%ld\"},\"route\":{\"source\":"
                         "\"devicecontroller\",\"group\":\"resource\",\"operation\":\"%s\","
                         "\"resource\":\"%s\"},\"content\":{\"apiVersion\":"
                         "\"devices.kubeedge.io/v1beta1\",\"kind\":\"%s\",\"metadata\":{"
                         "\"name\":\"%s\",\"namespace\":\"default\",\"resourceVersion\":"
                         "\"%ld\"}%s}}",
                         rv, op, key, kind, name, rv, rest),
        0);
    send_acked(&b);
}

void cloud_model(const char *op, const char *name, const char *proto, bool with_mode)
{
    char rest[512];

    (void)snprintf(
        rest, sizeof(rest),
        ",\"spec\":{\"protocol\":\"%s\",\"properties\":[{\"name\":\"temperature\","
        "\"type\":\"INT\",\"accessMode\":\"ReadWrite\"}%s]}",
        proto,
        with_mode ? ",{\"name\":\"mode\",\"type\":\"STRING\",\"accessMode\":\"ReadWrite\"}" : "");
    send_object(op, "devicemodel", "DeviceModel", name, rest);
}

void cloud_device(const char *op, const char *name, const char *model, const char *proto,
                  const char *desired)
{
    char rest[1024];

    /* configData of each kind edgecore's dataToAny converts: a string, a number, a bool */
    (void)snprintf(rest, sizeof(rest),
                   ",\"spec\":{\"deviceModelRef\":{\"name\":\"%s\"},\"nodeName\":\"" NODE "\","
                   "\"protocol\":{\"protocolName\":\"%s\",\"configData\":{\"host\":\"10.0.0.7\","
                   "\"port\":502,\"debug\":true}},\"properties\":[{\"name\":\"temperature\","
                   "\"desired\":{\"value\":\"%s\"},\"visitors\":{\"protocolName\":\"%s\","
                   "\"configData\":{\"register\":\"HR\",\"offset\":2}},\"reportCycle\":1000,"
                   "\"collectCycle\":500,\"reportToCloud\":true}]},\"status\":{\"twins\":[{"
                   "\"propertyName\":\"temperature\",\"reported\":{\"value\":\"\"}}]}",
                   model, proto, desired, proto);
    send_object(op, "device", "Device", name, rest);
}

static void membership(const char *list, const char *name)
{
    char msg[768];

    (void)snprintf(msg, sizeof(msg),
                   "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":"
                   "\"update\",\"resource\":\"node/" NODE "/membership\"},\"content\":{"
                   "\"event_id\":\"ev-%s\",\"timestamp\":1,\"added_devices\":[%s%s%s],"
                   "\"removed_devices\":[%s%s%s]}}",
                   name, !strcmp(list, "added") ? "{\"id\":\"" : "",
                   !strcmp(list, "added") ? name : "", !strcmp(list, "added") ? "\"}" : "",
                   !strcmp(list, "removed") ? "{\"id\":\"" : "",
                   !strcmp(list, "removed") ? name : "", !strcmp(list, "removed") ? "\"}" : "");
    kedge_free(cloud_send(msg));
}

void cloud_add_device(const char *name, const char *model, const char *proto, const char *desired)
{
    membership("added", name);
    cloud_device("insert", name, model, proto, desired);
}

void cloud_remove_device(const char *name, const char *model, const char *proto)
{
    cloud_device("delete", name, model, proto, "0");
    membership("removed", name);
}

/* ---- steps on mappers ------------------------------------------------------------------- */

struct kedge_jdoc *mapper_register(struct mapperctl *m, const char *const *devices,
                                   const char *const *models)
{
    struct kedge_jdoc *doc = NULL;
    int code = mapperctl_call(m, "registered", &doc, "register");

    ck_assert_msg(code == 0, "MapperRegister answered %d (%s)", code,
                  doc ? mapper_ev_str(doc, "message") : "no event");
    ck_assert_msg(mapper_ev_names_are(doc, "devices", devices), "registered devices: %s",
                  kedge_json_get(kedge_jdoc_root(doc), "devices") ? "unexpected" : "none");
    ck_assert_msg(mapper_ev_names_are(doc, "models", models), "registered models unexpected");
    return doc;
}

void mapper_wait_desired(struct mapperctl *m, const char *ev, const char *dev, const char *value)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    struct kedge_jdoc *doc = NULL;
    const char *got;

    for (;;) {
        ck_assert_msg(kt_now_ms() < deadline && mapperctl_wait(m, ev, dev, WAIT_MS, &doc) == 0,
                      "the mapper never got %s of %s with desired temperature %s", ev, dev, value);
        got = mapper_ev_str(doc, "device.desired.temperature");
        if (got && !strcmp(got, value))
            break;
        kedge_jdoc_free(doc);
    }
    kedge_jdoc_free(doc);
}

int mapper_report(struct mapperctl *m, const char *dev, const char *value, char **message)
{
    struct kedge_jdoc *doc = NULL;
    int code = mapperctl_call(m, "report", &doc, "report %s temperature %s", dev, value);

    ck_assert_msg(code >= -1, "no report event from the mapper (%d)", code);
    if (message)
        *message = kedge_strdup(mapper_ev_str(doc, "message"));
    kedge_jdoc_free(doc);
    return code;
}

struct mapperctl *thermo_mapper_up(enum mapper_kind k)
{
    static const char *const thermo[] = {"thermo", NULL}, *const one_model[] = {MODEL, NULL};
    struct mapperctl *m;

    dmi_up(NULL);
    cloud_model("insert", MODEL, PROTO, false);
    cloud_add_device("thermo", MODEL, PROTO, "22");
    m = mapper_up(k, "virt", PROTO);
    kedge_jdoc_free(mapper_register(m, thermo, one_model));
    return m;
}
