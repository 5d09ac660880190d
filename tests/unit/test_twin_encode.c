/* The twin suite (test_twin.c): the exact bytes of every message edgecore prints
 * (docs/kubeedge-wire.md §2.4-docs/kubeedge-wire.md §2.10), a twin's deep copy, and what allocation
 * failures leave behind.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/twin.h"
#include "twin_fixture.h"
#include "unit.h"

/* ---- encoders: the spec's examples, byte for byte ------------------------------------------- */

static void set_value(struct kedge_twin_value *v, const char *value, int64_t ts)
{
    v->present = true;
    v->value = kedge_strdup(value);
    v->has_meta = true;
    v->ts = ts;
}

/* A twin as edgecore holds it: values with timestamps, optional, metadata.type. */
static void make_twin(struct kedge_twin *t, const char *name, const char *type, bool optional,
                      const char *expected, int64_t ets, const char *actual, int64_t ats)
{
    memset(t, 0, sizeof(*t));
    t->name = kedge_strdup(name);
    if (expected)
        set_value(&t->expected, expected, ets);
    if (actual)
        set_value(&t->actual, actual, ats);
    t->has_optional = true;
    t->optional = optional;
    t->has_meta = true;
    t->type = kedge_strdup(type);
}

/* docs/kubeedge-wire.md §2.4 success result (an actual change) */
START_TEST(spec_update_result)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t;
    struct kedge_twin_ref ref;

    make_twin(&t, "temperature", "int", true, NULL, 0, "25", 1700000000123);
    t.has_av = true; /* versions are never in a result */
    t.av.edge = 4;
    ref.name = t.name;
    ref.twin = &t;
    ck_assert_int_eq(kedge_twin_map_encode(&b, "e1", 1700000000123, &ref, 1, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"e1\",\"timestamp\":1700000000123,\"twin\":{\"temperature\":"
                   "{\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":1700000000123}},"
                   "\"optional\":true,\"metadata\":{\"type\":\"int\"}}}}");
    kedge_twin_cleanup(&t);
    kedge_buf_cleanup(&b);
}
END_TEST

/* Results print deleted keys as null and nothing at all as "twin":{} */
START_TEST(result_null_and_empty)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin_ref ref = {NULL, "optkey"};

    ck_assert_int_eq(kedge_twin_map_encode(&b, "d1", T0, &ref, 1, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"d1\",\"timestamp\":1700000000000,\"twin\":{\"optkey\":null}}");
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_twin_map_encode(&b, NULL, 5, NULL, 0, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"\",\"timestamp\":5,\"twin\":{}}");
    kedge_buf_cleanup(&b);
}
END_TEST

/* docs/kubeedge-wire.md §2.4 error result, and the recorded ones */
static const struct {
    const char *event_id;
    int64_t ts;
    int code;
    const char *reason, *want;
} errors[] = {
    {"e1", 1700000000123, 400, KEDGE_REASON_NOT_INT,
     "{\"event_id\":\"e1\",\"timestamp\":1700000000123,\"code\":400,\"reason\":"
     "\"the value is not int or integer\"}"},
    {"", T0, 400, KEDGE_REASON_UNMARSHAL,
     "{\"event_id\":\"\",\"timestamp\":1700000000000,\"code\":400,\"reason\":\"Unmarshal update "
     "request body failed, please check the request\"}"},
    {"c-unknown-upd", T0, 404, KEDGE_REASON_NODEVICE,
     "{\"event_id\":\"c-unknown-upd\",\"timestamp\":1700000000000,\"code\":404,\"reason\":"
     "\"update rejected due to the device is not existed\"}"},
    {"g1", T0, 404, "Device no-such-dev not found while getting twin",
     "{\"event_id\":\"g1\",\"timestamp\":1700000000000,\"code\":404,\"reason\":\"Device "
     "no-such-dev not found while getting twin\"}"},
    {"x", 1, 500, "disk <full> & gone",
     "{\"event_id\":\"x\",\"timestamp\":1,\"code\":500,\"reason\":\"disk \\u003cfull\\u003e "
     "\\u0026 gone\"}"},
    /* code and reason are omitempty */
    {"x", 1, 0, "", "{\"event_id\":\"x\",\"timestamp\":1}"},
    {NULL, 0, 0, NULL, "{\"event_id\":\"\",\"timestamp\":0}"},
};

START_TEST(error_result)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_twin_error_encode(&b, errors[_i].event_id, errors[_i].ts,
                                             errors[_i].code, errors[_i].reason),
                     0);
    ASSERT_BUF(&b, errors[_i].want);
    kedge_buf_cleanup(&b);
}
END_TEST

/* docs/kubeedge-wire.md §2.4 document */
START_TEST(spec_document)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin last, cur;
    struct kedge_twin_doc doc;

    make_twin(&last, "temperature", "int", true, "30", 1699999990000, "24", 1699999995000);
    make_twin(&cur, "temperature", "int", true, "30", 1699999990000, "25", 1700000000123);
    cur.has_ev = cur.has_av = true; /* never printed in a document */
    doc.name = "temperature";
    doc.last = &last;
    doc.current = &cur;
    ck_assert_int_eq(kedge_twin_document_encode(&b, "e1", 1700000000123, &doc, 1), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"e1\",\"timestamp\":1700000000123,\"twin\":{\"temperature\":"
                   "{\"last\":{\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":"
                   "1699999990000}},\"actual\":{\"value\":\"24\",\"metadata\":{\"timestamp\":"
                   "1699999995000}},\"optional\":true,\"metadata\":{\"type\":\"int\"}},"
                   "\"current\":{\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":"
                   "1699999990000}},\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":"
                   "1700000000123}},\"optional\":true,\"metadata\":{\"type\":\"int\"}}}}}");
    kedge_twin_cleanup(&last);
    kedge_twin_cleanup(&cur);
    kedge_buf_cleanup(&b);
}
END_TEST

/* A new twin has last null, a deletion current null; several keys in order. */
START_TEST(document_null_sides)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t;
    struct kedge_twin_doc docs[2];

    make_twin(&t, "x", "string", false, NULL, 0, "a", 5);
    docs[0].name = "added";
    docs[0].last = NULL;
    docs[0].current = &t;
    docs[1].name = "gone";
    docs[1].last = &t;
    docs[1].current = NULL;
    ck_assert_int_eq(kedge_twin_document_encode(&b, "e", 7, docs, 2), 0);
    ASSERT_BUF(&b,
               "{\"event_id\":\"e\",\"timestamp\":7,\"twin\":{\"added\":{\"last\":null,"
               "\"current\":{\"actual\":{\"value\":\"a\",\"metadata\":{\"timestamp\":5}},"
               "\"optional\":false,\"metadata\":{\"type\":\"string\"}}},\"gone\":{\"last\":"
               "{\"actual\":{\"value\":\"a\",\"metadata\":{\"timestamp\":5}},\"optional\":false,"
               "\"metadata\":{\"type\":\"string\"}},\"current\":null}}}");
    kedge_twin_cleanup(&t);
    kedge_buf_cleanup(&b);
}
END_TEST

/* docs/kubeedge-wire.md §2.4 delta */
START_TEST(spec_delta)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t;
    bool has;

    make_twin(&t, "temperature", "int", true, "30", 1699999990000, "25", 1700000000123);
    t.has_ev = true;
    ck_assert_int_eq(kedge_twin_delta_encode(&b, "5b0c-uuid", 1700000000124, &t, 1, &has), 0);
    ck_assert(has);
    ASSERT_BUF(&b, "{\"event_id\":\"5b0c-uuid\",\"timestamp\":1700000000124,\"twin\":"
                   "{\"temperature\":{\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":"
                   "1699999990000}},\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":"
                   "1700000000123}},\"optional\":true,\"metadata\":{\"type\":\"int\"}}},"
                   "\"delta\":{\"temperature\":\"30\"}}");
    kedge_twin_cleanup(&t);
    kedge_buf_cleanup(&b);
}
END_TEST

/* The delta's twin map holds every non-deleted twin with a non-empty expected; its delta map
 * only those where expected != actual (a missing actual counts as ""). */
START_TEST(delta_selection)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t[5];
    bool has = true;

    make_twin(&t[0], "a-same", "string", false, "x", 1, "x", 2);
    make_twin(&t[1], "b-noexp", "string", false, NULL, 0, "y", 3);
    make_twin(&t[2], "c-deleted", "deleted", true, NULL, 0, NULL, 0);
    t[2].expected.present = t[2].actual.present = true;
    make_twin(&t[3], "d-emptyexp", "string", false, "", 4, "z", 5);
    make_twin(&t[4], "e-noact", "int", true, "7", 6, NULL, 0);
    ck_assert_int_eq(kedge_twin_delta_encode(&b, "u", 9, t, 5, &has), 0);
    ck_assert(has);
    ASSERT_BUF(&b, "{\"event_id\":\"u\",\"timestamp\":9,\"twin\":{\"a-same\":{\"expected\":"
                   "{\"value\":\"x\",\"metadata\":{\"timestamp\":1}},\"actual\":{\"value\":\"x\","
                   "\"metadata\":{\"timestamp\":2}},\"optional\":false,\"metadata\":{\"type\":"
                   "\"string\"}},\"e-noact\":{\"expected\":{\"value\":\"7\",\"metadata\":"
                   "{\"timestamp\":6}},\"optional\":true,\"metadata\":{\"type\":\"int\"}}},"
                   "\"delta\":{\"e-noact\":\"7\"}}");
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_twin_delta_encode(&b, "u", 9, t, 4, &has), 0);
    ck_assert(!has); /* nothing differs: edgecore does not publish it */
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_twin_delta_encode(&b, "u", 9, NULL, 0, &has), 0);
    ck_assert(!has);
    ASSERT_BUF(&b, "{\"event_id\":\"u\",\"timestamp\":9,\"twin\":{},\"delta\":{}}");
    for (int i = 0; i < 5; i++)
        kedge_twin_cleanup(&t[i]);
    kedge_buf_cleanup(&b);
}
END_TEST

/* docs/kubeedge-wire.md §2.6 get result: versions stripped (the caller leaves deleted twins out) */
START_TEST(spec_get_result)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t;
    struct kedge_twin_ref ref;

    make_twin(&t, "temperature", "int", true, "30", 1699999990000, "25", 1699999995000);
    t.has_ev = t.has_av = true;
    ref.name = t.name;
    ref.twin = &t;
    ck_assert_int_eq(kedge_twin_map_encode(&b, "g1", 1700000000500, &ref, 1, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"g1\",\"timestamp\":1700000000500,\"twin\":{\"temperature\":"
                   "{\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":1699999990000}},"
                   "\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":1699999995000}},"
                   "\"optional\":true,\"metadata\":{\"type\":\"int\"}}}}");
    kedge_twin_cleanup(&t);
    kedge_buf_cleanup(&b);
}
END_TEST

/* Recorded case 1 (get_initial): conf-dev-1's six seeded twins, in Go's key order. */
START_TEST(recorded_get_initial)
{
    static const struct {
        const char *name, *type, *exp, *act;
        bool optional;
    } seed[] = {
        {"humidity", "float", "40.5", "41.5", false},  {"label", "string", "a", "a", false},
        {"mandkey", "string", "x", "y", false},        {"optkey", "string", "x", "y", true},
        {"switch", "boolean", "true", "false", false}, {"temperature", "int", "20", "21", false},
    };
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t[6];
    struct kedge_twin_ref refs[6];
    size_t i;

    for (i = 0; i < 6; i++) {
        make_twin(&t[i], seed[i].name, seed[i].type, seed[i].optional, seed[i].exp, T0, seed[i].act,
                  T0);
        refs[i].name = t[i].name;
        refs[i].twin = &t[i];
    }
    ck_assert_int_eq(kedge_twin_map_encode(&b, "c-get-initial", 1700000001000, refs, 6, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"c-get-initial\",\"timestamp\":1700000001000,\"twin\":{"
                   "\"humidity\":{\"expected\":{\"value\":\"40.5\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"actual\":{\"value\":\"41.5\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"optional\":false,\"metadata\":{\"type\":\"float\"}},"
                   "\"label\":{\"expected\":{\"value\":\"a\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"actual\":{\"value\":\"a\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"optional\":false,\"metadata\":{\"type\":\"string\"}},"
                   "\"mandkey\":{\"expected\":{\"value\":\"x\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"actual\":{\"value\":\"y\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"optional\":false,\"metadata\":{\"type\":\"string\"}},"
                   "\"optkey\":{\"expected\":{\"value\":\"x\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"actual\":{\"value\":\"y\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"optional\":true,\"metadata\":{\"type\":\"string\"}},"
                   "\"switch\":{\"expected\":{\"value\":\"true\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"actual\":{\"value\":\"false\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"optional\":false,\"metadata\":{\"type\":\"boolean\"}},"
                   "\"temperature\":{\"expected\":{\"value\":\"20\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"actual\":{\"value\":\"21\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"optional\":false,\"metadata\":{\"type\":\"int\"}}}}");
    for (i = 0; i < 6; i++)
        kedge_twin_cleanup(&t[i]);
    kedge_buf_cleanup(&b);
}
END_TEST

/* docs/kubeedge-wire.md §2.7 state result */
START_TEST(spec_state_result)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_state_result_encode(&b, "0f8e2a4c-1d2b-4c3d-8e9f-a0b1c2d3e4f5",
                                               1714557600000, "thermo", "online",
                                               "2024-05-01T10:00:00Z"),
                     0);
    ASSERT_BUF(&b, "{\"event_id\":\"0f8e2a4c-1d2b-4c3d-8e9f-a0b1c2d3e4f5\",\"timestamp\":"
                   "1714557600000,\"device\":{\"name\":\"thermo\",\"state\":\"online\","
                   "\"lastOnlineTime\":\"2024-05-01T10:00:00Z\"}}");
    kedge_buf_reset(&b);
    /* offline clears last_online, and omitempty drops it */
    ck_assert_int_eq(kedge_state_result_encode(&b, "u", 1, "thermo", "offline", ""), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"u\",\"timestamp\":1,\"device\":{\"name\":\"thermo\","
                   "\"state\":\"offline\"}}");
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_state_result_encode(&b, "u", 1, NULL, NULL, NULL), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"u\",\"timestamp\":1,\"device\":{}}");
    kedge_buf_cleanup(&b);
}
END_TEST

/* docs/kubeedge-wire.md §2.8 edge_updated content: like a result, with versions */
START_TEST(spec_edge_updated)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t, del;
    struct kedge_twin_ref refs[2];

    make_twin(&t, "temperature", "int", true, NULL, 0, "25", 1700000000123);
    t.has_av = true;
    t.av.cloud = 0;
    t.av.edge = 4;
    make_twin(&del, "optkey", "deleted", true, NULL, 0, NULL, 0);
    del.expected.present = del.actual.present = true;
    del.has_ev = del.has_av = true;
    del.ev.edge = 1;
    del.av.cloud = 3;
    del.av.edge = 2;
    refs[0].name = "optkey";
    refs[0].twin = &del;
    refs[1].name = "temperature";
    refs[1].twin = &t;
    ck_assert_int_eq(
        kedge_twin_map_encode(&b, "3f1e-uuid", 1700000000123, &refs[1], 1, KEDGE_TWIN_VERSIONS), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"3f1e-uuid\",\"timestamp\":1700000000123,\"twin\":"
                   "{\"temperature\":{\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":"
                   "1700000000123}},\"optional\":true,\"metadata\":{\"type\":\"int\"},"
                   "\"actual_version\":{\"cloud\":0,\"edge\":4}}}}");
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_twin_map_encode(&b, "u", 2, refs, 2, KEDGE_TWIN_VERSIONS), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"u\",\"timestamp\":2,\"twin\":{\"optkey\":{\"expected\":{},"
                   "\"actual\":{},\"optional\":true,\"metadata\":{\"type\":\"deleted\"},"
                   "\"expected_version\":{\"cloud\":0,\"edge\":1},\"actual_version\":{\"cloud\":3,"
                   "\"edge\":2}},\"temperature\":{\"actual\":{\"value\":\"25\",\"metadata\":"
                   "{\"timestamp\":1700000000123}},\"optional\":true,\"metadata\":{\"type\":"
                   "\"int\"},\"actual_version\":{\"cloud\":0,\"edge\":4}}}}");
    kedge_twin_cleanup(&t);
    kedge_twin_cleanup(&del);
    kedge_buf_cleanup(&b);
}
END_TEST

/* MsgTwin's omitempty fields one by one */
START_TEST(twin_write_omitempty)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;
    struct kedge_twin t;

    memset(&t, 0, sizeof(t));
    kedge_jw_init(&w, &b);
    kedge_twin_write(&w, &t, KEDGE_TWIN_VERSIONS);
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
    ASSERT_BUF(&b, "{}");
    kedge_buf_reset(&b);
    t.expected.present = true; /* no value, no metadata */
    t.actual.present = true;
    t.actual.has_meta = true; /* timestamp 0 is omitted */
    t.has_meta = true;        /* type NULL is omitted */
    t.has_optional = true;    /* false is printed: a pointer in Go */
    kedge_jw_init(&w, &b);
    kedge_twin_write(&w, &t, 0);
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
    ASSERT_BUF(&b, "{\"expected\":{},\"actual\":{\"metadata\":{}},\"optional\":false,"
                   "\"metadata\":{}}");
    kedge_buf_cleanup(&b);
}
END_TEST

/* docs/kubeedge-wire.md §2.10 membership get result */
START_TEST(spec_membership_get)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_attr attrs[2] = {
        {.name = "model", .value = "m1", .type = "string", .optional = false},
        {.name = "zone", .value = NULL, .type = NULL, .optional = true},
    };
    struct kedge_device d1 = {.id = "default/thermo",
                              .name = "thermo",
                              .description = "",
                              .state = "online",
                              .last_online = "2024-05-01T10:00:00Z",
                              .attrs = attrs,
                              .n_attrs = 2};
    struct kedge_device d2 = {.id = "conf-dev-2",
                              .name = "conf-dev-2",
                              .description = "conformance device 2 (no twins)",
                              .state = "unknown",
                              .last_online = ""};
    const struct kedge_device *devs[2] = {&d2, &d1};

    ck_assert_int_eq(kedge_membership_get_encode(&b, "m1", 1714557600000, &devs[1], 1), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"m1\",\"timestamp\":1714557600000,\"devices\":[{\"id\":"
                   "\"default/thermo\",\"name\":\"thermo\",\"state\":\"online\",\"last_online\":"
                   "\"2024-05-01T10:00:00Z\",\"attributes\":{\"model\":{\"value\":\"m1\","
                   "\"optional\":false,\"metadata\":{\"type\":\"string\"}},\"zone\":{\"value\":"
                   "\"\",\"optional\":true,\"metadata\":{}}}}]}");
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_membership_get_encode(&b, "m2", 1, devs, 2), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"m2\",\"timestamp\":1,\"devices\":[{\"id\":\"conf-dev-2\","
                   "\"name\":\"conf-dev-2\",\"description\":\"conformance device 2 (no twins)\","
                   "\"state\":\"unknown\"},{\"id\":\"default/thermo\",\"name\":\"thermo\","
                   "\"state\":\"online\",\"last_online\":\"2024-05-01T10:00:00Z\","
                   "\"attributes\":{\"model\":{\"value\":\"m1\",\"optional\":false,\"metadata\":"
                   "{\"type\":\"string\"}},\"zone\":{\"value\":\"\",\"optional\":true,"
                   "\"metadata\":{}}}}]}");
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_membership_get_encode(&b, "m3", 1, NULL, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"m3\",\"timestamp\":1,\"devices\":[]}");
    kedge_buf_cleanup(&b);
}
END_TEST

/* Names and values are escaped as Go escapes map keys and strings. */
START_TEST(encode_escapes_names)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t;
    struct kedge_twin_ref ref;

    make_twin(&t, "a<b", "string", false, NULL, 0, "x&y", 0);
    ref.name = t.name;
    ref.twin = &t;
    ck_assert_int_eq(kedge_twin_map_encode(&b, "<e>", 1, &ref, 1, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"\\u003ce\\u003e\",\"timestamp\":1,\"twin\":{\"a\\u003cb\":"
                   "{\"actual\":{\"value\":\"x\\u0026y\",\"metadata\":{}},\"optional\":false,"
                   "\"metadata\":{\"type\":\"string\"}}}}");
    kedge_twin_cleanup(&t);
    kedge_buf_cleanup(&b);
}
END_TEST

/* ---- lifetime -------------------------------------------------------------------------------- */

START_TEST(copy_is_deep)
{
    struct kedge_twin a, b;

    make_twin(&a, "k", "int", true, "1", 2, "3", 4);
    a.meta_col = kedge_strdup("{}");
    a.description = kedge_strdup("d");
    a.has_ev = true;
    a.ev.edge = 9;
    ck_assert_int_eq(kedge_twin_copy(&b, &a), 0);
    ck_assert_ptr_ne(a.name, b.name);
    ck_assert_ptr_ne(a.expected.value, b.expected.value);
    ck_assert_ptr_ne(a.meta_col, b.meta_col);
    kedge_twin_cleanup(&a);
    ck_assert_ptr_null(a.name);
    ck_assert_str_eq(b.name, "k");
    ck_assert_str_eq(b.expected.value, "1");
    ck_assert_str_eq(b.actual.value, "3");
    ck_assert_str_eq(b.type, "int");
    ck_assert_str_eq(b.meta_col, "{}");
    ck_assert_str_eq(b.description, "d");
    ck_assert_int_eq(b.ev.edge, 9);
    ck_assert(b.has_ev && b.optional && b.expected.has_meta);
    kedge_twin_cleanup(&b);
    kedge_twin_cleanup(NULL);
    kedge_attr_cleanup(NULL);
    kedge_device_free(NULL);
    kedge_twin_update_cleanup(NULL);
}
END_TEST

/* ---- allocation failure ---------------------------------------------------------------------- */

static int op_decode(void *arg)
{
    struct kedge_twin_update u;
    int rc = kedge_twin_update_decode(arg, strlen(arg), &u);

    if (rc == 0)
        ck_assert_uint_eq(u.n, 3);
    kedge_twin_update_cleanup(&u);
    return rc;
}

START_TEST(decode_nomem)
{
    static const int ok[] = {-ENOMEM};
    static const char *const ins[] = {
        "{\"event_id\":\"e\\u0031\",\"timestamp\":5,\"twin\":{\"b\":{\"expected\":{\"value\":"
        "\"1\",\"metadata\":{\"timestamp\":3}},\"actual\":{\"value\":\"2\"},\"optional\":true,"
        "\"metadata\":{\"type\":\"int\"},\"expected_version\":{\"cloud\":1,\"edge\":2}},"
        "\"a\":null,\"c\":{\"metadata\":{}},\"a\":null}}",
    };

    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(op_decode, (void *)ins[0], ok, 1), 10);
    unit_libc_allocs();
}
END_TEST

/* Failing requests under allocation failure: their own code or -ENOMEM, and no leak even of
 * the kept event id once the caller cleans up. */
static int op_decode_error(void *arg)
{
    struct kedge_twin_update u;
    int rc = kedge_twin_update_decode(arg, strlen(arg), &u);

    kedge_twin_update_cleanup(&u);
    return rc == KEDGE_ETWINVALUE ? 1 : rc;
}

START_TEST(decode_error_nomem)
{
    static const char in[] = "{\"event_id\":\"e\",\"twin\":{\"a\":{\"actual\":{\"value\":\"x y\"}},"
                             "\"b\":null}}";
    long n;

    unit_count_allocs();
    for (n = 0; n < 40; n++) {
        int rc;
        (void)kedge_alloc_fail_after(n);
        rc = op_decode_error((void *)in);
        (void)kedge_alloc_fail_after(-1);
        ck_assert(rc == 1 || rc == -ENOMEM);
        ck_assert_int_eq(unit_live_blocks, 0);
    }
    unit_libc_allocs();
}
END_TEST

static int op_small_decoders(void *arg)
{
    char *s = NULL;
    int rc;

    (void)arg;
    rc = kedge_twin_event_id_decode(S("{\"event_id\":\"g\\u0031\"}"), &s);
    if (rc == 0) {
        ck_assert_str_eq(s, "g1");
        kedge_free(s);
        rc = kedge_twin_state_decode(S("{\"state\":\"online\",\"attributes\":{\"a\":{}}}"), &s);
    }
    if (rc == 0)
        ck_assert_str_eq(s, "online");
    kedge_free(s);
    return rc;
}

START_TEST(small_decoders_nomem)
{
    static const int ok[] = {-ENOMEM};

    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(op_small_decoders, NULL, ok, 1), 3);
    unit_libc_allocs();
}
END_TEST

/* Every encoder builds into a fresh buffer: -ENOMEM or the exact success bytes. */
static int op_encoders(void *arg)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin *t = arg;
    struct kedge_twin_ref ref = {t, t->name};
    struct kedge_twin_doc doc = {t->name, t, t};
    struct kedge_attr attr = {.name = "m", .value = "v", .type = "string"};
    struct kedge_device dev = {
        .id = "ns/d", .name = "d", .state = "online", .attrs = &attr, .n_attrs = 1};
    const struct kedge_device *devs = &dev;
    bool has;
    int rc;

    rc = kedge_twin_map_encode(&b, "e", 1, &ref, 1, KEDGE_TWIN_VERSIONS);
    if (rc == 0) {
        kedge_buf_cleanup(&b);
        rc = kedge_twin_document_encode(&b, "e", 1, &doc, 1);
    }
    if (rc == 0) {
        kedge_buf_cleanup(&b);
        rc = kedge_twin_delta_encode(&b, "e", 1, t, 1, &has);
    }
    if (rc == 0) {
        kedge_buf_cleanup(&b);
        rc = kedge_twin_error_encode(&b, "e", 1, 400, KEDGE_REASON_VALUE);
    }
    if (rc == 0) {
        kedge_buf_cleanup(&b);
        rc = kedge_membership_get_encode(&b, "e", 1, &devs, 1);
    }
    if (rc == 0) {
        kedge_buf_cleanup(&b);
        rc = kedge_state_result_encode(&b, "e", 1, "d", "online", "2024-05-01T10:00:00Z");
    }
    if (rc == 0)
        ASSERT_BUF(&b, "{\"event_id\":\"e\",\"timestamp\":1,\"device\":{\"name\":\"d\","
                       "\"state\":\"online\",\"lastOnlineTime\":\"2024-05-01T10:00:00Z\"}}");
    kedge_buf_cleanup(&b);
    return rc;
}

START_TEST(encoders_nomem)
{
    static const int ok[] = {-ENOMEM};
    struct kedge_twin t;
    long live;

    make_twin(&t, "a-long-twin-name-so-that-buffers-grow-more-than-once", "int", true, "1234567890",
              T0, "0987654321", T0);
    t.has_ev = t.has_av = true;
    unit_count_allocs();
    live = unit_live_blocks;
    ck_assert_int_gt(unit_alloc_fail_loop(op_encoders, &t, ok, 1), 5);
    ck_assert_int_eq(unit_live_blocks, live);
    unit_libc_allocs();
    kedge_twin_cleanup(&t);
}
END_TEST

static int op_copy(void *arg)
{
    struct kedge_twin dst;
    int rc = kedge_twin_copy(&dst, arg);

    if (rc < 0) {
        ck_assert_ptr_null(dst.name); /* zeroed on failure */
        ck_assert_ptr_null(dst.description);
    }
    kedge_twin_cleanup(&dst);
    return rc;
}

START_TEST(copy_nomem)
{
    static const int ok[] = {-ENOMEM};
    struct kedge_twin t;

    unit_count_allocs();
    make_twin(&t, "k", "int", true, "1", 2, "3", 4);
    t.meta_col = kedge_strdup("{}");
    t.description = kedge_strdup("d");
    ck_assert_int_eq(unit_alloc_fail_loop(op_copy, &t, ok, 1), 6);
    kedge_twin_cleanup(&t);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

void twin_encode_tests(TCase *encode)
{
    tcase_add_test(encode, spec_update_result);
    tcase_add_test(encode, result_null_and_empty);
    tcase_add_loop_test(encode, error_result, 0, (int)(sizeof(errors) / sizeof(errors[0])));
    tcase_add_test(encode, spec_document);
    tcase_add_test(encode, document_null_sides);
    tcase_add_test(encode, spec_delta);
    tcase_add_test(encode, delta_selection);
    tcase_add_test(encode, spec_get_result);
    tcase_add_test(encode, recorded_get_initial);
    tcase_add_test(encode, spec_state_result);
    tcase_add_test(encode, spec_edge_updated);
    tcase_add_test(encode, twin_write_omitempty);
    tcase_add_test(encode, spec_membership_get);
    tcase_add_test(encode, encode_escapes_names);
    tcase_add_test(encode, copy_is_deep);
}

void twin_nomem_tests(TCase *nomem)
{
    tcase_add_test(nomem, decode_nomem);
    tcase_add_test(nomem, decode_error_nomem);
    tcase_add_test(nomem, small_decoders_nomem);
    tcase_add_test(nomem, encoders_nomem);
    tcase_add_test(nomem, copy_nomem);
}
