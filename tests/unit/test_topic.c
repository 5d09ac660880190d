/* common/topic.c: which $hw/events topics kedge acts on and whose they are (docs/kubeedge-wire.md
 * docs/kubeedge-wire.md §1.2, §2.1), in both device id forms, and the reply topics built from an
 * id.
 */
#include <check.h>
#include <string.h>

#include "kedge/topic.h"
#include "unit.h"

#define S(lit) lit, sizeof(lit) - 1

static const struct {
    const char *topic;
    enum kedge_topic_kind kind;
    const char *id; /* NULL: no id */
} topics[] = {
    /* every device suffix, bare id (<= v1.15) and namespace/name (v1.17+) */
    {"$hw/events/device/conf-dev-1/twin/update", KEDGE_TOPIC_TWIN_UPDATE, "conf-dev-1"},
    {"$hw/events/device/default/thermo/twin/update", KEDGE_TOPIC_TWIN_UPDATE, "default/thermo"},
    {"$hw/events/device/conf-dev-1/twin/get", KEDGE_TOPIC_TWIN_GET, "conf-dev-1"},
    {"$hw/events/device/default/thermo/twin/get", KEDGE_TOPIC_TWIN_GET, "default/thermo"},
    {"$hw/events/device/d/twin/cloud_updated", KEDGE_TOPIC_TWIN_CLOUD_UPDATED, "d"},
    {"$hw/events/device/ns/d/twin/cloud_updated", KEDGE_TOPIC_TWIN_CLOUD_UPDATED, "ns/d"},
    {"$hw/events/device/d/state/update", KEDGE_TOPIC_STATE_UPDATE, "d"},
    {"$hw/events/device/ns/d/state/update", KEDGE_TOPIC_STATE_UPDATE, "ns/d"},
    {"$hw/events/device/d/state/get", KEDGE_TOPIC_STATE_GET, "d"},
    {"$hw/events/device/ns/d/state/get", KEDGE_TOPIC_STATE_GET, "ns/d"},
    {"$hw/events/device/d/updated", KEDGE_TOPIC_DEVICE_UPDATED, "d"},
    {"$hw/events/device/ns/d/updated", KEDGE_TOPIC_DEVICE_UPDATED, "ns/d"},
    /* ids that look like suffix words are still ids */
    {"$hw/events/device/twin/twin/update", KEDGE_TOPIC_TWIN_UPDATE, "twin"},
    {"$hw/events/device/a/twin/twin/update", KEDGE_TOPIC_TWIN_UPDATE, "a/twin"},
    {"$hw/events/device/state/update/state/update", KEDGE_TOPIC_STATE_UPDATE, "state/update"},
    {"$hw/events/device/e/ev/twin/get", KEDGE_TOPIC_TWIN_GET, "e/ev"}, /* edgecore's quirk */
    {"$hw/events/device/x.y_z-1:2@3#4,5/twin/update", KEDGE_TOPIC_TWIN_UPDATE, "x.y_z-1:2@3#4,5"},
    /* empty id, empty levels, three-level ids: edgecore would not subscribe */
    {"$hw/events/device//twin/update", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device///twin/update", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/a//twin/update", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device//a/twin/update", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/a/b/c/twin/update", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/a/b/c/updated", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/a/b/c/d/e/f/twin/get", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/twin/update", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/updated", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device", KEDGE_TOPIC_OTHER, NULL},
    /* what kedge publishes is never taken for a request */
    {"$hw/events/device/d/twin/update/result", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/ns/d/twin/update/result", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device//twin/update/result", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/d/twin/update/document", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/d/twin/update/delta", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/ns/d/twin/update/delta", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/d/twin/get/result", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/ns/d/twin/get/result", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/d/state/update/result", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/node/kedge-node/membership/get/result", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/node/kedge-node/membership/updated", KEDGE_TOPIC_OTHER, NULL},
    /* suffixes must match whole levels */
    {"$hw/events/device/d/twin/updatex", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/d/Twin/Update", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/device/d/twin/update/", KEDGE_TOPIC_OTHER, NULL},
    /* node membership get: any one-level node name */
    {"$hw/events/node/kedge-node/membership/get", KEDGE_TOPIC_MEMBERSHIP_GET, "kedge-node"},
    {"$hw/events/node/other/membership/get", KEDGE_TOPIC_MEMBERSHIP_GET, "other"},
    {"$hw/events/node//membership/get", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/node/a/b/membership/get", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/node/membership/get", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/node/n/membership/getx", KEDGE_TOPIC_OTHER, NULL},
    /* uploads: $hw/events/upload/#, SYS/dis/upload_records, +/user/# */
    {"$hw/events/upload", KEDGE_TOPIC_UPLOAD, NULL},
    {"$hw/events/upload/", KEDGE_TOPIC_UPLOAD, NULL},
    {"$hw/events/upload/x", KEDGE_TOPIC_UPLOAD, NULL},
    {"$hw/events/upload/x/y", KEDGE_TOPIC_UPLOAD, NULL},
    {"$hw/events/uploads", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/uploa", KEDGE_TOPIC_OTHER, NULL},
    {"SYS/dis/upload_records", KEDGE_TOPIC_UPLOAD, NULL},
    {"SYS/dis/upload_records/x", KEDGE_TOPIC_OTHER, NULL},
    {"SYS/dis/upload_record", KEDGE_TOPIC_OTHER, NULL},
    {"sys/dis/upload_records", KEDGE_TOPIC_OTHER, NULL},
    {"a/user", KEDGE_TOPIC_UPLOAD, NULL},
    {"a/user/", KEDGE_TOPIC_UPLOAD, NULL},
    {"a/user/b", KEDGE_TOPIC_UPLOAD, NULL},
    {"a/user/b/c/d", KEDGE_TOPIC_UPLOAD, NULL},
    {"default/user/x", KEDGE_TOPIC_UPLOAD, NULL},
    {"/user", KEDGE_TOPIC_UPLOAD, NULL}, /* '+' matches an empty first level */
    {"a/users", KEDGE_TOPIC_OTHER, NULL},
    {"a/use", KEDGE_TOPIC_OTHER, NULL},
    {"a/User", KEDGE_TOPIC_OTHER, NULL},
    {"a/b/user", KEDGE_TOPIC_OTHER, NULL},
    {"user", KEDGE_TOPIC_OTHER, NULL},
    {"user/x", KEDGE_TOPIC_OTHER, NULL},
    {"$x/user/y", KEDGE_TOPIC_OTHER, NULL}, /* '+' does not match a '$' first level */
    {"$hw/user", KEDGE_TOPIC_OTHER, NULL},
    /* garbage */
    {"", KEDGE_TOPIC_OTHER, NULL},
    {"/", KEDGE_TOPIC_OTHER, NULL},
    {"$", KEDGE_TOPIC_OTHER, NULL},
    {"$hw", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/", KEDGE_TOPIC_OTHER, NULL},
    {"$hw/events/devicex/d/twin/update", KEDGE_TOPIC_OTHER, NULL},
    {"$HW/events/device/d/twin/update", KEDGE_TOPIC_OTHER, NULL},
    {"hw/events/device/d/twin/update", KEDGE_TOPIC_OTHER, NULL},
    {"$ke/events/device/d/data/update", KEDGE_TOPIC_OTHER, NULL},
    {"#", KEDGE_TOPIC_OTHER, NULL},
    {"+/+/+", KEDGE_TOPIC_OTHER, NULL},
};

START_TEST(parse_table)
{
    struct kedge_topic t;
    const char *topic = topics[_i].topic;

    kedge_topic_parse(topic, strlen(topic), &t);
    ck_assert_msg(t.kind == topics[_i].kind, "%s: kind %d, want %d", topic, t.kind,
                  topics[_i].kind);
    if (topics[_i].id) {
        ck_assert_msg(t.id_len == strlen(topics[_i].id) && !memcmp(t.id, topics[_i].id, t.id_len),
                      "%s: id %.*s, want %s", topic, (int)t.id_len, t.id ? t.id : "",
                      topics[_i].id);
        /* the id points into the topic */
        ck_assert(t.id > topic && t.id + t.id_len < topic + strlen(topic));
    } else if (t.kind == KEDGE_TOPIC_OTHER || t.kind == KEDGE_TOPIC_UPLOAD) {
        ck_assert_ptr_null(t.id);
        ck_assert_uint_eq(t.id_len, 0);
    }
}
END_TEST

/* A suffix starts at a level boundary: "xtwin/update" does not end in "/twin/update". */
START_TEST(suffix_on_level_boundary)
{
    struct kedge_topic t;

    kedge_topic_parse(S("$hw/events/device/d/xtwin/update"), &t);
    ck_assert_int_eq(t.kind, KEDGE_TOPIC_OTHER);
}
END_TEST

/* Codecs take (buf, len): a longer buffer is not read past len, a shorter len truncates. */
START_TEST(parse_respects_len)
{
    static const char buf[] = "$hw/events/device/d/twin/update/result";
    struct kedge_topic t;

    kedge_topic_parse(buf, strlen("$hw/events/device/d/twin/update"), &t);
    ck_assert_int_eq(t.kind, KEDGE_TOPIC_TWIN_UPDATE);
    ck_assert_uint_eq(t.id_len, 1);
    kedge_topic_parse(buf, strlen("$hw/events/device/d/twin/get"), &t); /* "…/twin/upd" */
    ck_assert_int_eq(t.kind, KEDGE_TOPIC_OTHER);
    kedge_topic_parse(buf, 0, &t);
    ck_assert_int_eq(t.kind, KEDGE_TOPIC_OTHER);
    kedge_topic_parse(NULL, 0, &t);
    ck_assert_int_eq(t.kind, KEDGE_TOPIC_OTHER);
}
END_TEST

/* An id is whatever bytes lie between prefix and suffix (MQTT topics are UTF-8). */
START_TEST(parse_utf8_id)
{
    struct kedge_topic t;

    kedge_topic_parse(S("$hw/events/device/\xc3\xa9t\xc3\xa9/twin/get"), &t);
    ck_assert_int_eq(t.kind, KEDGE_TOPIC_TWIN_GET);
    ck_assert_uint_eq(t.id_len, 5);
}
END_TEST

/* ---- reply topics ----------------------------------------------------------------------- */

static const struct {
    const char *id, *suffix, *want;
} device_topics[] = {
    {"conf-dev-1", KEDGE_SFX_TWIN_UPDATE_RESULT, "$hw/events/device/conf-dev-1/twin/update/result"},
    {"default/thermo", KEDGE_SFX_TWIN_UPDATE_RESULT,
     "$hw/events/device/default/thermo/twin/update/result"},
    {"", KEDGE_SFX_TWIN_UPDATE_RESULT, "$hw/events/device//twin/update/result"},
    {"d", KEDGE_SFX_TWIN_UPDATE_DOCUMENT, "$hw/events/device/d/twin/update/document"},
    {"d", KEDGE_SFX_TWIN_UPDATE_DELTA, "$hw/events/device/d/twin/update/delta"},
    {"ns/d", KEDGE_SFX_TWIN_GET_RESULT, "$hw/events/device/ns/d/twin/get/result"},
    {"ns/d", KEDGE_SFX_STATE_UPDATE_RESULT, "$hw/events/device/ns/d/state/update/result"},
    {"ns/d", KEDGE_SFX_DEVICE_UPDATED, "$hw/events/device/ns/d/updated"},
};

START_TEST(device_topic)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_buf_puts(&b, "stale contents"), 0);
    ck_assert_int_eq(kedge_topic_device(&b, device_topics[_i].id, strlen(device_topics[_i].id),
                                        device_topics[_i].suffix),
                     0);
    ASSERT_BUF(&b, device_topics[_i].want);
    kedge_buf_cleanup(&b);
}
END_TEST

START_TEST(node_topic)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_topic_node(&b, "kedge-node", KEDGE_SFX_MEMBERSHIP_GET_RESULT), 0);
    ASSERT_BUF(&b, "$hw/events/node/kedge-node/membership/get/result");
    ck_assert_int_eq(kedge_topic_node(&b, "n", KEDGE_SFX_MEMBERSHIP_UPDATED), 0);
    ASSERT_BUF(&b, "$hw/events/node/n/membership/updated");
    kedge_buf_cleanup(&b);
}
END_TEST

/* The id parsed from a request builds the reply topic for the same device, which is never
 * itself taken for a request; the request topic rebuilt from the id parses to the same id. */
START_TEST(reply_from_parsed_id)
{
    static const struct {
        const char *req, *sfx;
        enum kedge_topic_kind kind;
    } reqs[] = {
        {"$hw/events/device/default/thermo/twin/update", KEDGE_SFX_TWIN_UPDATE,
         KEDGE_TOPIC_TWIN_UPDATE},
        {"$hw/events/device/conf-dev-1/twin/get", KEDGE_SFX_TWIN_GET, KEDGE_TOPIC_TWIN_GET},
        {"$hw/events/device/ns/x/state/update", KEDGE_SFX_STATE_UPDATE, KEDGE_TOPIC_STATE_UPDATE},
    };
    static const char *const results[] = {
        KEDGE_SFX_TWIN_UPDATE_RESULT, KEDGE_SFX_TWIN_UPDATE_DOCUMENT, KEDGE_SFX_TWIN_UPDATE_DELTA,
        KEDGE_SFX_TWIN_GET_RESULT, KEDGE_SFX_STATE_UPDATE_RESULT};
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_topic t, r;
    size_t i, j;

    for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        kedge_topic_parse(reqs[i].req, strlen(reqs[i].req), &t);
        ck_assert_int_eq(t.kind, reqs[i].kind);
        for (j = 0; j < sizeof(results) / sizeof(results[0]); j++) {
            ck_assert_int_eq(kedge_topic_device(&b, t.id, t.id_len, results[j]), 0);
            kedge_topic_parse(b.data, b.len, &r);
            ck_assert_int_eq(r.kind, KEDGE_TOPIC_OTHER);
        }
        ck_assert_int_eq(kedge_topic_device(&b, t.id, t.id_len, reqs[i].sfx), 0);
        ck_assert_str_eq(b.data, reqs[i].req);
        kedge_topic_parse(b.data, b.len, &r);
        ck_assert_int_eq(r.kind, t.kind);
        ck_assert_uint_eq(r.id_len, t.id_len);
        ck_assert_mem_eq(r.id, t.id, t.id_len);
    }
    kedge_buf_cleanup(&b);
}
END_TEST

static int op_topic(void *arg)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    int rc = kedge_topic_device(&b, arg, strlen(arg), KEDGE_SFX_TWIN_UPDATE_RESULT);

    if (rc == 0)
        rc = kedge_topic_node(&b, arg, KEDGE_SFX_MEMBERSHIP_GET_RESULT);
    kedge_buf_cleanup(&b);
    return rc;
}

START_TEST(builders_nomem)
{
    static const int ok[] = {-ENOMEM};
    char id[200];

    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(op_topic, id, ok, 1), 0);
    unit_libc_allocs();
}
END_TEST

static Suite *topic_suite(void)
{
    Suite *s = suite_create("topic");
    TCase *tc = tcase_create("parse");

    tcase_add_loop_test(tc, parse_table, 0, (int)(sizeof(topics) / sizeof(topics[0])));
    tcase_add_test(tc, suffix_on_level_boundary);
    tcase_add_test(tc, parse_respects_len);
    tcase_add_test(tc, parse_utf8_id);
    suite_add_tcase(s, tc);
    tc = tcase_create("build");
    tcase_add_loop_test(tc, device_topic, 0,
                        (int)(sizeof(device_topics) / sizeof(device_topics[0])));
    tcase_add_test(tc, node_topic);
    tcase_add_test(tc, reply_from_parsed_id);
    tcase_add_test(tc, builders_nomem);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(topic_suite());
}
