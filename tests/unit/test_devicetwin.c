/* The plugin's core (plugin/core.h) driven the way the broker drives it: requests go in
 * through core_on_message, batch_tick(&core.batch, true) commits, and what would be published
 * is recorded by the core's publisher. The DB is KubeEdge's beego schema plus the seed the
 * recorded edgecore cases ran on (tests/fixtures).
 *
 * Two ways of comparing:
 *  - the 16 recorded cases (edgecore-cases.json, keys sorted, generated values as
 *    placeholders) are printed back in Go's field order with each placeholder replaced by
 *    what kedge put there, and compared byte for byte with kedge's payload;
 *  - everything else is compared byte for byte after normalise(): generated timestamps become
 *    T, generated event ids UUID and last-online times TIME.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/topic.h"
#include "kedge/util.h"
#include "core.h"
#include "db.h"
#include "stubs/broker_stubs.h"
#include "devicetwin_fixture.h"
#include "unit.h"

/* ---- the recorded cases ------------------------------------------------------------------ */

/* Go's field order across DeviceTwin's structs; map keys (twin names) are printed sorted. */
static const char *const go_fields[] = {
    "event_id",
    "timestamp",
    "code",
    "reason",
    "id",
    "name",
    "description",
    "state",
    "last_online",
    "lastOnlineTime",
    "attributes",
    "twin",
    "delta",
    "devices",
    "device",
    "added_devices",
    "removed_devices",
    "last",
    "current",
    "expected",
    "actual",
    "value",
    "optional",
    "metadata",
    "type",
    "expected_version",
    "actual_version",
    "cloud",
    "edge",
};

static int field_rank(const char *k, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(go_fields) / sizeof(go_fields[0]); i++)
        if (strlen(go_fields[i]) == len && !memcmp(go_fields[i], k, len))
            return (int)i;
    return 1000;
}

static int cmp_members(const void *a, const void *b)
{
    const struct kedge_jval *x = *(const struct kedge_jval *const *)a;
    const struct kedge_jval *y = *(const struct kedge_jval *const *)b;
    int rx = field_rank(x->key, x->key_len), ry = field_rank(y->key, y->key_len), c;

    if (rx != ry)
        return rx - ry;
    c = memcmp(x->key, y->key, x->key_len < y->key_len ? x->key_len : y->key_len);
    return c ? c : (int)x->key_len - (int)y->key_len;
}

struct replay {
    bool namespaced; /* device ids as default/NAME (v1.17+) */
};

static bool is_placeholder(const struct kedge_jval *v, const char *p)
{
    return v && v->type == KEDGE_JSTR && v->len == strlen(p) && !memcmp(v->str, p, v->len);
}

/* Print the recorded value `exp` in Go's order, with kedge's value `act` (same path) wherever
 * the recording has a placeholder. */
static void write_expected(struct replay *r, struct kedge_jw *w, const struct kedge_jval *exp,
                           const struct kedge_jval *act)
{
    const struct kedge_jval *m, *members[64], *a;
    size_t n = 0, i;
    int64_t v;

    if (is_placeholder(exp, "<ts>") && act && act->type == KEDGE_JNUM) {
        ck_assert_int_eq(kedge_json_int64(act, &v), 0);
        ck_assert_msg(is_now(v), "generated timestamp %lld", (long long)v);
        kedge_jw_raw(w, act->str, act->len);
        return;
    }
    if (is_placeholder(exp, "<generated>") && act && act->type == KEDGE_JSTR &&
        is_uuid(act->str, act->len)) {
        kedge_jw_strn(w, act->str, act->len);
        return;
    }
    if (is_placeholder(exp, "<time>") && act && act->type == KEDGE_JSTR &&
        is_rfc3339(act->str, act->len)) {
        kedge_jw_strn(w, act->str, act->len);
        return;
    }
    switch (exp->type) {
    case KEDGE_JOBJ:
        for (m = exp->child; m; m = m->next) {
            ck_assert_uint_lt(n, 64);
            members[n++] = m;
        }
        qsort(members, n, sizeof(members[0]), cmp_members);
        kedge_jw_obj_open(w);
        for (i = 0; i < n; i++) {
            char key[256];
            (void)snprintf(key, sizeof(key), "%.*s", (int)members[i]->key_len, members[i]->key);
            kedge_jw_key(w, key);
            a = act && act->type == KEDGE_JOBJ
                    ? kedge_json_get_exact(act, members[i]->key, members[i]->key_len)
                    : NULL;
            write_expected(r, w, members[i], a);
        }
        kedge_jw_obj_close(w);
        break;
    case KEDGE_JARR:
        kedge_jw_arr_open(w);
        a = act && act->type == KEDGE_JARR ? act->child : NULL;
        for (m = exp->child; m; m = m->next) {
            write_expected(r, w, m, a);
            a = a ? a->next : NULL;
        }
        kedge_jw_arr_close(w);
        break;
    case KEDGE_JSTR:
        if (r->namespaced && exp->len > 7 && !memcmp(exp->str, "Device ", 7)) {
            /* edgecore names the device in this reason: it is default/NAME now */
            char s[256];
            (void)snprintf(s, sizeof(s), "Device default/%.*s", (int)exp->len - 7, exp->str + 7);
            kedge_jw_str(w, s);
        } else {
            kedge_jw_strn(w, exp->str, exp->len);
        }
        break;
    case KEDGE_JNUM:
        kedge_jw_raw(w, exp->str, exp->len);
        break;
    case KEDGE_JBOOL:
        kedge_jw_bool(w, exp->boolean);
        break;
    case KEDGE_JNULL:
        kedge_jw_null(w);
        break;
    }
}

/* "$hw/events/device/<dev:NAME>/..." -> the id form in use; "<node>" -> NODE. */
static void real_topic(const struct replay *r, const struct kedge_jval *t, char *out, size_t size)
{
    const char *s = t->str, *dev = strstr(s, "<dev:"), *node = strstr(s, "<node>");

    if (dev) {
        const char *end = strchr(dev, '>');
        ck_assert_ptr_nonnull(end);
        (void)snprintf(out, size, "%.*s%s%.*s%s", (int)(dev - s), s,
                       r->namespaced ? "default/" : "", (int)(end - dev - 5), dev + 5, end + 1);
    } else if (node) {
        (void)snprintf(out, size, "%.*s%s%s", (int)(node - s), s, NODE, node + 6);
    } else {
        (void)snprintf(out, size, "%s", s);
    }
}

/* Every case of edgecore-cases.json in order, state carrying over: same topics, same count,
 * same bytes (modulo generated values). _i: 0 bare ids (as recorded), 1 namespace/name. */
START_TEST(recorded_cases)
{
    struct replay r = {_i == 1};
    struct kedge_buf file = KEDGE_BUF_INIT, want = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    const struct kedge_jval *cases, *c;
    int n_cases = 0;

    if (r.namespaced) {
        /* the v1.17+ id form: the same devices under namespace "default" */
        stop_plugin();
        unit_db_exec(&db, "UPDATE device SET id = 'default/' || id;"
                          "UPDATE device_twin SET deviceid = 'default/' || deviceid;"
                          "UPDATE device_attr SET deviceid = 'default/' || deviceid;");
        start_plugin();
    }
    unit_read_file(UNIT_CASES_JSON, &file);
    ck_assert_int_eq(kedge_json_parse(file.data, file.len, &doc), 0);
    cases = kedge_json_get(kedge_jdoc_root(doc), "cases");
    ck_assert_ptr_nonnull(cases);
    for (c = cases->child; c; c = c->next, n_cases++) {
        const struct kedge_jval *req = kedge_json_get(c, "request");
        const struct kedge_jval *resps = kedge_json_get(c, "responses"), *resp;
        const struct kedge_jval *payload = kedge_json_get(req, "payload");
        const char *name = kedge_json_get(c, "case")->str;
        char topic[256];
        size_t i = 0;

        real_topic(&r, kedge_json_get(req, "topic"), topic, sizeof(topic));
        clear_pubs();
        send_nocommit(topic, payload->str, payload->len);
        batch_tick(&core.batch, true);
        ck_assert_msg(n_pubs == resps->n, "case %s: %zu publishes, recorded %zu", name, n_pubs,
                      resps->n);
        for (resp = resps->child; resp; resp = resp->next, i++) {
            struct kedge_jdoc *got;
            struct kedge_jw w;

            real_topic(&r, kedge_json_get(resp, "topic"), topic, sizeof(topic));
            ck_assert_msg(!strcmp(pubs[i].topic, topic), "case %s publish %zu: topic %s, want %s",
                          name, i, pubs[i].topic, topic);
            ck_assert_msg(kedge_json_parse(pubs[i].payload, pubs[i].len, &got) == 0,
                          "case %s publish %zu: not JSON: %s", name, i, pubs[i].payload);
            kedge_buf_reset(&want);
            kedge_jw_init(&w, &want);
            write_expected(&r, &w, kedge_json_get(resp, "json"), kedge_jdoc_root(got));
            ck_assert_int_eq(kedge_jw_finish(&w), 0);
            ck_assert_msg(want.len == pubs[i].len && !memcmp(want.data, pubs[i].payload, want.len),
                          "case %s publish %zu on %s\n got: %s\nwant: %s", name, i, topic,
                          pubs[i].payload, want.data);
            kedge_jdoc_free(got);
        }
    }
    ck_assert_int_eq(n_cases, 16);
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&file);
    kedge_buf_cleanup(&want);
}
END_TEST

/* ---- twin update semantics beyond the recording (docs/kubeedge-wire.md §2.4)
 * -------------------------------------- */

/* null deletes an optional twin: result null, document current null, versions bumped, gone
 * from get and delta. */
START_TEST(delete_optional)
{
    send(PFX DEV "/twin/update",
         "{\"event_id\":\"d1\",\"timestamp\":1000,\"twin\":{\"optkey\":null}}");
    expect_count(3);
    expect_pub(0, RESULT, "{\"event_id\":\"d1\",\"timestamp\":T,\"twin\":{\"optkey\":null}}");
    expect_pub(1, DOCUMENT,
               "{\"event_id\":\"d1\",\"timestamp\":T,\"twin\":{\"optkey\":{\"last\":" OPTKEY
               ",\"current\":null}}}");
    expect_pub(2, DELTA,
               "{\"event_id\":\"UUID\",\"timestamp\":T,\"twin\":{\"humidity\":" HUMIDITY
               ",\"label\":" LABEL ",\"mandkey\":" MANDKEY ",\"switch\":" SWITCH
               ",\"temperature\":" TEMPERATURE "},\"delta\":{\"humidity\":\"40.5\",\"mandkey\":"
               "\"x\",\"switch\":\"true\",\"temperature\":\"20\"}}");
    ck_assert_str_eq(db_text("SELECT quote(expected) || quote(actual) || quote(expected_meta) || "
                             "quote(actual_meta) || expected_version || actual_version || "
                             "attr_type || optional FROM device_twin WHERE name = 'optkey'"),
                     "NULLNULLNULLNULL{\"cloud\":0,\"edge\":1}{\"cloud\":0,\"edge\":1}deleted1");
    expect_get("\"humidity\":" HUMIDITY ",\"label\":" LABEL ",\"mandkey\":" MANDKEY
               ",\"switch\":" SWITCH ",\"temperature\":" TEMPERATURE);
    /* deleting it again changes nothing: empty result, no document */
    send(PFX DEV "/twin/update", "{\"event_id\":\"d2\",\"twin\":{\"optkey\":null}}");
    expect_count(2);
    expect_pub(0, RESULT, "{\"event_id\":\"d2\",\"timestamp\":T,\"twin\":{}}");
    ck_assert_str_eq(pubs[1].topic, DELTA);
    ck_assert_str_eq(db_text("SELECT expected_version FROM device_twin WHERE name = 'optkey'"),
                     "{\"cloud\":0,\"edge\":1}");
}
END_TEST

/* A deleted twin comes back with an update: type from the request, last null in the document. */
START_TEST(readd_deleted)
{
    send(PFX DEV "/twin/update", "{\"event_id\":\"d1\",\"twin\":{\"optkey\":null}}");
    clear_pubs();
    send(PFX DEV "/twin/update", "{\"event_id\":\"r1\",\"twin\":{\"optkey\":{\"actual\":{\"value\":"
                                 "\"5\"},\"metadata\":{\"type\":\"int\"}}}}");
    expect_count(3);
    expect_pub(0, RESULT,
               "{\"event_id\":\"r1\",\"timestamp\":T,\"twin\":{\"optkey\":{\"actual\":"
               "{\"value\":\"5\",\"metadata\":{\"timestamp\":T}},\"optional\":true,"
               "\"metadata\":{\"type\":\"int\"}}}}");
    expect_pub(1, DOCUMENT,
               "{\"event_id\":\"r1\",\"timestamp\":T,\"twin\":{\"optkey\":{\"last\":"
               "null,\"current\":{\"expected\":{},\"actual\":{\"value\":\"5\","
               "\"metadata\":{\"timestamp\":T}},\"optional\":true,\"metadata\":"
               "{\"type\":\"int\"}}}}}");
    ck_assert_str_eq(db_text("SELECT actual || actual_version || attr_type || metadata FROM "
                             "device_twin WHERE name = 'optkey'"),
                     "5{\"cloud\":0,\"edge\":2}int{}");
}
END_TEST

/* null on a twin that is not optional: silently unchanged, absent from the result. */
START_TEST(null_on_mandatory)
{
    send(PFX DEV "/twin/update", "{\"event_id\":\"n1\",\"twin\":{\"mandkey\":null}}");
    expect_count(2);
    expect_pub(0, RESULT, "{\"event_id\":\"n1\",\"timestamp\":T,\"twin\":{}}");
    expect_pub(1, DELTA,
               "{\"event_id\":\"UUID\",\"timestamp\":T,\"twin\":{" SEED_TWINS
               "},\"delta\":" SEED_DELTA "}");
    ck_assert_str_eq(db_text("SELECT expected || actual || expected_version || attr_type FROM "
                             "device_twin WHERE name = 'mandkey'"),
                     "xy{\"cloud\":0,\"edge\":0}string");
}
END_TEST

/* A new key with a null body: 400 "the request body is wrong", on the device's topic. */
START_TEST(new_key_null)
{
    send(PFX DEV "/twin/update", "{\"event_id\":\"n2\",\"twin\":{\"brandnew\":null}}");
    expect_count(1);
    expect_pub(0, RESULT,
               "{\"event_id\":\"n2\",\"timestamp\":T,\"code\":400,\"reason\":"
               "\"the request body is wrong\"}");
    ck_assert_str_eq(db_text("SELECT count(*) FROM device_twin WHERE name = 'brandnew'"), "0");
}
END_TEST

/* A new key with metadata type int: the full twin in the result, versions {0,1}. */
START_TEST(new_key_int)
{
    send(PFX DEV "/twin/update", "{\"event_id\":\"a1\",\"twin\":{\"newint\":{\"actual\":{\"value\":"
                                 "\"7\"},\"metadata\":{\"type\":\"int\"}}}}");
    expect_count(3);
    expect_pub(0, RESULT,
               "{\"event_id\":\"a1\",\"timestamp\":T,\"twin\":{\"newint\":{\"actual\":"
               "{\"value\":\"7\",\"metadata\":{\"timestamp\":T}},\"optional\":true,"
               "\"metadata\":{\"type\":\"int\"}}}}");
    expect_pub(1, DOCUMENT,
               "{\"event_id\":\"a1\",\"timestamp\":T,\"twin\":{\"newint\":{\"last\":"
               "null,\"current\":{\"actual\":{\"value\":\"7\",\"metadata\":"
               "{\"timestamp\":T}},\"optional\":true,\"metadata\":{\"type\":"
               "\"int\"}}}}}");
    expect_pub(2, DELTA,
               "{\"event_id\":\"UUID\",\"timestamp\":T,\"twin\":{" SEED_TWINS
               "},\"delta\":" SEED_DELTA "}");
    ck_assert_str_eq(db_text("SELECT quote(expected) || actual || quote(expected_version) || "
                             "actual_version || optional || attr_type || metadata FROM "
                             "device_twin WHERE name = 'newint'"),
                     "NULL7''{\"cloud\":0,\"edge\":1}1int{}");
    /* an expected on a new key is in the delta at once */
    clear_pubs();
    send(PFX DEV "/twin/update", "{\"event_id\":\"a2\",\"twin\":{\"newexp\":{\"expected\":"
                                 "{\"value\":\"on\"},\"optional\":false}}}");
    expect_count(3);
    expect_pub(0, RESULT,
               "{\"event_id\":\"a2\",\"timestamp\":T,\"twin\":{\"newexp\":{\"expected\":"
               "{\"value\":\"on\",\"metadata\":{\"timestamp\":T}},\"optional\":false,"
               "\"metadata\":{\"type\":\"string\"}}}}");
    ck_assert_str_eq(db_text("SELECT expected_version || quote(actual_version) || optional || "
                             "attr_type || quote(metadata) FROM device_twin WHERE name='newexp'"),
                     "{\"cloud\":0,\"edge\":1}''0string''");
    ck_assert_ptr_nonnull(strstr(pubs[2].payload, "\"newexp\":\"on\""));
}
END_TEST

/* New keys whose value does not fit their type: the first error aborts the request. */
static const struct {
    const char *twin, *reason;
} bad_new[] = {
    {"{\"k\":{\"actual\":{\"value\":\"x\"},\"metadata\":{\"type\":\"int\"}}}",
     "the value is not int or integer"},
    {"{\"k\":{\"expected\":{\"value\":\"1.5.1\"},\"metadata\":{\"type\":\"float\"}}}",
     "the value is not float"},
    {"{\"k\":{\"actual\":{\"value\":\"yes\"},\"metadata\":{\"type\":\"boolean\"}}}",
     "the bool value must be true or false"},
    {"{\"k\":{\"actual\":{\"value\":\"1.5\"},\"metadata\":{\"type\":\"double\"}}}",
     "the value type is not allowed"},
    {"{\"k\":{\"actual\":{\"value\":\"\"},\"metadata\":{\"type\":\"bytes\"}}}",
     "the value type is not allowed"},
    {"{\"k\":{\"actual\":{\"value\":\"\"},\"metadata\":{\"type\":\"int\"}}}",
     "the value is not int or integer"},
    {"{\"k\":{\"actual\":{}}}", "the request body is wrong"},
    {"{\"k\":{\"expected\":{\"metadata\":{\"timestamp\":5}}}}", "the request body is wrong"},
    /* an earlier key was applied in memory before the error: undone */
    {"{\"a\":{\"actual\":{\"value\":\"1\"}},\"k\":{\"actual\":{\"value\":\"x\"},\"metadata\":"
     "{\"type\":\"int\"}}}",
     "the value is not int or integer"},
    {"{\"label\":{\"actual\":{\"value\":\"zz\"}},\"temperature\":{\"expected\":{}}}",
     "the request body is wrong"},
    {"{\"humidity\":{\"actual\":{\"value\":\"1_000\"}},\"temperature\":{\"actual\":{\"value\":"
     "\"1_000\"}}}",
     "the value is not int or integer"},
};

START_TEST(rejected_update)
{
    char req[512], want[512];

    (void)snprintf(req, sizeof(req), "{\"event_id\":\"bad%d\",\"twin\":%s}", _i, bad_new[_i].twin);
    send(PFX DEV "/twin/update", req);
    expect_count(1);
    (void)snprintf(want, sizeof(want),
                   "{\"event_id\":\"bad%d\",\"timestamp\":T,\"code\":400,\"reason\":\"%s\"}", _i,
                   bad_new[_i].reason);
    expect_pub(0, RESULT, want);
    /* nothing stored, and memory is what the store says */
    ck_assert_str_eq(db_text("SELECT count(*) FROM device_twin"), "6");
    ck_assert_str_eq(db_text("SELECT group_concat(actual_version, '') FROM device_twin"),
                     "{\"cloud\":0,\"edge\":0}{\"cloud\":0,\"edge\":0}{\"cloud\":0,\"edge\":0}"
                     "{\"cloud\":0,\"edge\":0}{\"cloud\":0,\"edge\":0}{\"cloud\":0,\"edge\":0}");
    expect_get(SEED_TWINS);
}
END_TEST

/* Requests that never reach a device: answered on the empty-id topic with event_id "". */
static const struct {
    const char *payload, *reason;
} unparsable[] = {
    {"{\"event_id\":\"x\",\"twin\":", KEDGE_REASON_UNMARSHAL},
    {"{\"event_id\":\"x\",\"twin\":{\"k\":{\"optional\":\"yes\"}}}", KEDGE_REASON_UNMARSHAL},
    {"", KEDGE_REASON_UNMARSHAL},
    {"{\"event_id\":\"x\"}", KEDGE_REASON_NOTWIN},
    {"{\"event_id\":\"x\",\"twin\":null}", KEDGE_REASON_NOTWIN},
    {"{\"twin\":{\"a b\":{}}}", KEDGE_REASON_KEY},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":\"a+b\"}}}}", KEDGE_REASON_VALUE},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":\"25\\u0000x\"}}}}", KEDGE_REASON_VALUE},
};

START_TEST(unparsable_update)
{
    char want[512];

    send(PFX DEV "/twin/update", unparsable[_i].payload);
    expect_count(1);
    (void)snprintf(want, sizeof(want),
                   "{\"event_id\":\"\",\"timestamp\":T,\"code\":400,\"reason\":\"%s\"}",
                   unparsable[_i].reason);
    expect_pub(0, PFX "/twin/update/result", want);
}
END_TEST

/* optional may only go from true to false. */
START_TEST(optional_true_to_false)
{
    send(PFX DEV "/twin/update",
         "{\"event_id\":\"o1\",\"twin\":{\"optkey\":{\"optional\":false}}}");
    expect_count(3);
    expect_pub(0, RESULT,
               "{\"event_id\":\"o1\",\"timestamp\":T,\"twin\":{\"optkey\":{\"optional\":"
               "false}}}");
    expect_pub(1, DOCUMENT,
               "{\"event_id\":\"o1\",\"timestamp\":T,\"twin\":{\"optkey\":{\"last\":" OPTKEY
               ",\"current\":" SEED_TWIN("x", "y", "false", "string") "}}}");
    ck_assert_str_eq(db_text("SELECT optional FROM device_twin WHERE name = 'optkey'"), "0");
    /* and not back */
    clear_pubs();
    send(PFX DEV "/twin/update", "{\"event_id\":\"o2\",\"twin\":{\"optkey\":{\"optional\":true}}}");
    expect_count(2);
    expect_pub(0, RESULT, "{\"event_id\":\"o2\",\"timestamp\":T,\"twin\":{}}");
    ck_assert_str_eq(db_text("SELECT optional FROM device_twin WHERE name = 'optkey'"), "0");
    /* a twin no longer optional is not deleted by null */
    clear_pubs();
    send(PFX DEV "/twin/update", "{\"event_id\":\"o3\",\"twin\":{\"optkey\":null}}");
    expect_pub(0, RESULT, "{\"event_id\":\"o3\",\"timestamp\":T,\"twin\":{}}");
    ck_assert_str_eq(db_text("SELECT attr_type FROM device_twin WHERE name = 'optkey'"), "string");
}
END_TEST

/* Metadata with another type on a live twin: metadata column {} , type unchanged. */
START_TEST(metadata_change_keeps_type)
{
    send(PFX DEV "/twin/update", "{\"event_id\":\"m1\",\"twin\":{\"label\":{\"metadata\":"
                                 "{\"type\":\"int\"}}}}");
    expect_count(3);
    expect_pub(0, RESULT, "{\"event_id\":\"m1\",\"timestamp\":T,\"twin\":{\"label\":{}}}");
    ck_assert_str_eq(db_text("SELECT attr_type || '|' || metadata FROM device_twin WHERE "
                             "name = 'label'"),
                     "string|{}");
}
END_TEST

/* Both id forms address the same kind of device; the result goes back on the same form. */
START_TEST(namespaced_device)
{
    stop_plugin();
    unit_db_exec(&db, "INSERT INTO device VALUES ('default/thermo','thermo','','unknown','');"
                      "INSERT INTO device_twin (deviceid,name,description,expected,actual,"
                      "expected_meta,actual_meta,expected_version,actual_version,optional,"
                      "attr_type,metadata) VALUES ('default/thermo','temperature','','30','24',"
                      "'{\"timestamp\":1699999990000}','{\"timestamp\":1699999995000}',"
                      "'{\"cloud\":0,\"edge\":3}','{\"cloud\":0,\"edge\":3}',1,'int','')");
    start_plugin();
    send(PFX "default/thermo/twin/update", "{\"event_id\":\"e1\",\"timestamp\":1700000000000,"
                                           "\"twin\":{\"temperature\":{\"actual\":{\"value\":"
                                           "\"25\"},\"metadata\":{\"type\":\"int\"}}}}");
    expect_count(3);
    /* docs/kubeedge-wire.md §2.4's examples, for this twin */
    expect_pub(0, PFX "default/thermo/twin/update/result",
               "{\"event_id\":\"e1\",\"timestamp\":T,\"twin\":{\"temperature\":{\"actual\":"
               "{\"value\":\"25\",\"metadata\":{\"timestamp\":T}},\"optional\":true,\"metadata\":"
               "{\"type\":\"int\"}}}}");
    expect_pub(1, PFX "default/thermo/twin/update/document",
               "{\"event_id\":\"e1\",\"timestamp\":T,\"twin\":{\"temperature\":{\"last\":"
               "{\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":1699999990000}},"
               "\"actual\":{\"value\":\"24\",\"metadata\":{\"timestamp\":1699999995000}},"
               "\"optional\":true,\"metadata\":{\"type\":\"int\"}},\"current\":{\"expected\":"
               "{\"value\":\"30\",\"metadata\":{\"timestamp\":1699999990000}},\"actual\":"
               "{\"value\":\"25\",\"metadata\":{\"timestamp\":T}},\"optional\":true,\"metadata\":"
               "{\"type\":\"int\"}}}}}");
    expect_pub(2, PFX "default/thermo/twin/update/delta",
               "{\"event_id\":\"UUID\",\"timestamp\":T,\"twin\":{\"temperature\":{\"expected\":"
               "{\"value\":\"30\",\"metadata\":{\"timestamp\":1699999990000}},\"actual\":"
               "{\"value\":\"25\",\"metadata\":{\"timestamp\":T}},\"optional\":true,\"metadata\":"
               "{\"type\":\"int\"}}},\"delta\":{\"temperature\":\"30\"}}");
    ck_assert_str_eq(db_text("SELECT actual_version FROM device_twin WHERE deviceid = "
                             "'default/thermo'"),
                     "{\"cloud\":0,\"edge\":4}");
    /* the bare name is another (unknown) device */
    clear_pubs();
    send(PFX "thermo/twin/update", "{\"event_id\":\"e2\",\"twin\":{}}");
    expect_pub(0, PFX "thermo/twin/update/result",
               "{\"event_id\":\"e2\",\"timestamp\":T,\"code\":404,\"reason\":\"update rejected "
               "due to the device is not existed\"}");
}
END_TEST

/* A desired-value message from the bridge (include/kedge/ke.h, device/{id}/twin/desired). */
static int desired(const char *id, const char *content)
{
    struct kedge_twin_update u;
    int rc;

    ck_assert_int_eq(kedge_twin_update_decode(content, strlen(content), &u), 0);
    rc = devicetwin_desired(&core.dt, id, "", u.twins, u.n);
    kedge_twin_update_cleanup(&u);
    batch_tick(&core.batch, true);
    return rc;
}

/* The cloud's desired value: expected value, expected cloud version + 1, document and delta,
 * nothing for the cloud; actual untouched. The same value again publishes nothing; a value
 * not of the twin's type is skipped; a missing twin is added with the given type. */
START_TEST(desired_values)
{
    ck_assert_int_eq(desired(DEV, "{\"event_id\":\"\",\"timestamp\":1,\"twin\":{\"temperature\":{"
                                  "\"expected\":{\"value\":\"30\"},\"metadata\":{\"type\":"
                                  "\"int\"}}}}"),
                     0);
    expect_count(2);
    ck_assert_str_eq(pubs[0].topic, DOCUMENT);
    expect_pub(1, DELTA,
               "{\"event_id\":\"UUID\",\"timestamp\":T,\"twin\":{\"humidity\":" HUMIDITY
               ",\"label\":" LABEL ",\"mandkey\":" MANDKEY ",\"optkey\":" OPTKEY
               ",\"switch\":" SWITCH
               ",\"temperature\":{\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":T}},"
               "\"actual\":{\"value\":\"21\",\"metadata\":" META0 "},\"optional\":false,"
               "\"metadata\":{\"type\":\"int\"}}},\"delta\":{\"humidity\":\"40.5\",\"mandkey\":"
               "\"x\",\"optkey\":\"x\",\"switch\":\"true\",\"temperature\":\"30\"}}");
    ck_assert_str_eq(db_text("SELECT expected || '|' || actual || '|' || expected_version || '|' "
                             "|| actual_version FROM device_twin WHERE deviceid = '" DEV
                             "' AND name = 'temperature'"),
                     "30|21|{\"cloud\":1,\"edge\":0}|{\"cloud\":0,\"edge\":0}");
    ck_assert_str_eq(db_text("SELECT count(*) FROM kedge_outbox"), "0");

    /* again (a bridge that stopped before it stored the Device sends it again): nothing */
    clear_pubs();
    ck_assert_int_eq(desired(DEV, "{\"event_id\":\"\",\"timestamp\":1,\"twin\":{\"temperature\":{"
                                  "\"expected\":{\"value\":\"30\"}}}}"),
                     0);
    expect_count(0);
    /* not an int: skipped, nothing changes */
    ck_assert_int_eq(desired(DEV, "{\"event_id\":\"\",\"timestamp\":1,\"twin\":{\"temperature\":{"
                                  "\"expected\":{\"value\":\"warm\"}}}}"),
                     0);
    expect_count(0);
    ck_assert_str_eq(db_text("SELECT expected || '|' || expected_version FROM device_twin WHERE "
                             "deviceid = '" DEV "' AND name = 'temperature'"),
                     "30|{\"cloud\":1,\"edge\":0}");
    /* a twin the device has not got yet: added, typed, with the value expected */
    ck_assert_int_eq(desired(DEV, "{\"event_id\":\"\",\"timestamp\":1,\"twin\":{\"mode\":{"
                                  "\"expected\":{\"value\":\"eco\"},\"metadata\":{\"type\":"
                                  "\"string\"}}}}"),
                     0);
    ck_assert_str_eq(db_text("SELECT expected || '|' || attr_type || '|' || expected_version "
                             "FROM device_twin WHERE deviceid = '" DEV "' AND name = 'mode'"),
                     "eco|string|{\"cloud\":1,\"edge\":0}");
    ck_assert_str_eq(db_text("SELECT count(*) FROM kedge_outbox"), "0");
    /* an unknown device is refused (the bridge leaves the Device unacked) */
    ck_assert_int_eq(desired("nobody", "{\"event_id\":\"\",\"twin\":{}}"), KEDGE_ENODEVICE);
}
END_TEST

/* Results wait for the commit that holds them (group commit). */
START_TEST(nothing_before_commit)
{
    stop_plugin();
    cfg.commit_interval_ms = 3600000;
    start_plugin();
    send_nocommit(
        PFX DEV "/twin/update",
        "{\"event_id\":\"w1\",\"twin\":{\"label\":{\"actual\":"
        "{\"value\":\"b\"}}}}",
        strlen("{\"event_id\":\"w1\",\"twin\":{\"label\":{\"actual\":{\"value\":\"b\"}}}}"));
    batch_tick(&core.batch, false);
    batch_tick(&core.batch, false);
    expect_count(0);
    ck_assert_str_eq(db_text("SELECT actual FROM device_twin WHERE name = 'label'"), "a");
    batch_tick(&core.batch, true);
    expect_count(3);
    ck_assert_str_eq(pubs[0].topic, RESULT);
    ck_assert_str_eq(db_text("SELECT actual FROM device_twin WHERE name = 'label'"), "b");
}
END_TEST

static Suite *devicetwin_suite(void)
{
    Suite *s = suite_create("devicetwin");
    TCase *tc;

    tc = tcase_create("recorded");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, recorded_cases, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("update");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, delete_optional);
    tcase_add_test(tc, desired_values);
    tcase_add_test(tc, readd_deleted);
    tcase_add_test(tc, null_on_mandatory);
    tcase_add_test(tc, new_key_null);
    tcase_add_test(tc, new_key_int);
    tcase_add_loop_test(tc, rejected_update, 0, (int)(sizeof(bad_new) / sizeof(bad_new[0])));
    tcase_add_loop_test(tc, unparsable_update, 0,
                        (int)(sizeof(unparsable) / sizeof(unparsable[0])));
    tcase_add_test(tc, optional_true_to_false);
    tcase_add_test(tc, metadata_change_keeps_type);
    tcase_add_test(tc, namespaced_device);
    tcase_add_test(tc, nothing_before_commit);
    suite_add_tcase(s, tc);

    tc = tcase_create("failure");
    tcase_add_checked_fixture(tc, setup, teardown);
    devicetwin_failure_tests(tc);
    suite_add_tcase(s, tc);

    tc = tcase_create("other");
    tcase_add_checked_fixture(tc, setup, teardown);
    devicetwin_other_tests(tc);
    suite_add_tcase(s, tc);

    tc = tcase_create("regressions");
    tcase_add_checked_fixture(tc, setup, teardown);
    devicetwin_regression_tests(tc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(devicetwin_suite());
}
