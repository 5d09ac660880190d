/* common/coalesce.c: which cloud-bound messages are device state, and how two of one subject
 * fold into one (the newer header and event, the twin maps merged key by key, sorted).
 */
#include <check.h>
#include <string.h>

#include "kedge/coalesce.h"
#include "kedge/err.h"
#include "unit.h"

#define S(lit) lit, sizeof(lit) - 1

/* A twin report as the plugin queues it, with the given msg_id, event and twin map. */
#define TWIN_MSG(id, ev, twins)                                                                    \
    "{\"header\":{\"msg_id\":\"" id "\",\"timestamp\":1},\"route\":{\"source\":\"twin\","          \
    "\"group\":\"resource\",\"operation\":\"update\",\"resource\":\"device/d1/twin/"               \
    "edge_updated\"},\"content\":{\"event_id\":\"" ev "\",\"timestamp\":2,\"twin\":" twins "}}"

START_TEST(kinds)
{
    static const struct {
        const char *resource;
        enum kedge_coalesce_kind kind;
    } t[] = {
        {"device/d1/twin/edge_updated", KEDGE_COALESCE_TWIN},
        {"device/default/d1/twin/edge_updated", KEDGE_COALESCE_TWIN},
        {"device/d1/state/update", KEDGE_COALESCE_STATE},
        {"device/ns/d1/state/update", KEDGE_COALESCE_STATE},
        {"device//twin/edge_updated", KEDGE_COALESCE_NONE}, /* no id */
        {"device/twin/edge_updated", KEDGE_COALESCE_NONE},
        {"device/d1/twin/cloud_updated", KEDGE_COALESCE_NONE},
        {"$hw/events/upload/x", KEDGE_COALESCE_NONE},
        {"SYS/dis/upload_records", KEDGE_COALESCE_NONE},
        {"", KEDGE_COALESCE_NONE},
        {NULL, KEDGE_COALESCE_NONE},
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        ck_assert_msg(kedge_coalesce_kind(t[i].resource) == t[i].kind, "%s",
                      t[i].resource ? t[i].resource : "(null)");
}
END_TEST

START_TEST(twin_maps_merge)
{
    /* older: a, c (deleted), d; newer: b, c, e. Result: a, b, c (newer), d, e; the newer's
     * header, event and timestamp. */
    static const char older[] =
        TWIN_MSG("m1", "e1",
                 "{\"a\":{\"actual\":{\"value\":\"1\"}},\"c\":{\"metadata\":{\"deleted\":true}},"
                 "\"d\":{\"actual\":{\"value\":\"4\"}}}");
    static const char newer[] =
        TWIN_MSG("m2", "e2",
                 "{\"b\":{\"actual\":{\"value\":\"2\"}},\"c\":{\"actual\":{\"value\":\"3\"}},"
                 "\"e\":{\"actual\":{\"value\":\"5\"}}}");
    struct kedge_buf out = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_coalesce_merge(KEDGE_COALESCE_TWIN, S(older), S(newer), &out), 0);
    ASSERT_BUF(
        &out, TWIN_MSG("m2", "e2",
                       "{\"a\":{\"actual\":{\"value\":\"1\"}},\"b\":{\"actual\":{\"value\":\"2\"}},"
                       "\"c\":{\"actual\":{\"value\":\"3\"}},\"d\":{\"actual\":{\"value\":\"4\"}},"
                       "\"e\":{\"actual\":{\"value\":\"5\"}}}"));
    kedge_buf_cleanup(&out);
}
END_TEST

START_TEST(deletion_kept)
{
    /* a twin deleted in the newer report stays deleted; one deleted earlier stays too */
    static const char older[] = TWIN_MSG("m1", "e1",
                                         "{\"a\":{\"actual\":{\"value\":\"1\"}},"
                                         "\"z\":{\"metadata\":{\"deleted\":true}}}");
    static const char newer[] = TWIN_MSG("m2", "e2", "{\"a\":{\"metadata\":{\"deleted\":true}}}");
    struct kedge_buf out = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_coalesce_merge(KEDGE_COALESCE_TWIN, S(older), S(newer), &out), 0);
    ASSERT_BUF(&out, TWIN_MSG("m2", "e2",
                              "{\"a\":{\"metadata\":{\"deleted\":true}},"
                              "\"z\":{\"metadata\":{\"deleted\":true}}}"));
    kedge_buf_cleanup(&out);
}
END_TEST

START_TEST(unsorted_input)
{
    /* a foreign sender's unsorted map still merges right (newer's keys after the older's) */
    static const char older[] = TWIN_MSG("m1", "e1", "{\"y\":{\"v\":1},\"x\":{\"v\":2}}");
    static const char newer[] = TWIN_MSG("m2", "e2", "{\"x\":{\"v\":3},\"w\":{\"v\":4}}");
    struct kedge_buf out = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_coalesce_merge(KEDGE_COALESCE_TWIN, S(older), S(newer), &out), 0);
    ASSERT_BUF(&out, TWIN_MSG("m2", "e2", "{\"y\":{\"v\":1},\"x\":{\"v\":3},\"w\":{\"v\":4}}"));
    kedge_buf_cleanup(&out);
}
END_TEST

START_TEST(state_newer_wins)
{
    static const char older[] = "{\"header\":{\"msg_id\":\"m1\",\"timestamp\":1},\"route\":{},"
                                "\"content\":\"{\\\"state\\\":\\\"online\\\"}\"}";
    static const char newer[] = "{\"header\":{\"msg_id\":\"m2\",\"timestamp\":3},\"route\":{},"
                                "\"content\":\"{\\\"state\\\":\\\"offline\\\"}\"}";
    struct kedge_buf out = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_coalesce_merge(KEDGE_COALESCE_STATE, S(older), S(newer), &out), 0);
    ASSERT_BUF(&out, newer);
    kedge_buf_cleanup(&out);
}
END_TEST

START_TEST(bad_shapes)
{
    static const char good[] = TWIN_MSG("m1", "e1", "{\"a\":{}}");
    static const char *const bad[] = {
        "not json",
        "{\"header\":{\"msg_id\":\"m\"},\"content\":{\"event_id\":\"e\"}}",  /* no twin */
        "{\"header\":{\"msg_id\":\"m\"},\"content\":{\"twin\":[1]}}",        /* not a map */
        "{\"header\":{\"msg_id\":\"m\"},\"content\":\"{\\\"twin\\\":{}}\"}", /* a string */
        "[]",
    };
    struct kedge_buf out = KEDGE_BUF_INIT;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(
            kedge_coalesce_merge(KEDGE_COALESCE_TWIN, S(good), bad[i], strlen(bad[i]), &out),
            KEDGE_ESCHEMA);
        ck_assert_int_eq(
            kedge_coalesce_merge(KEDGE_COALESCE_TWIN, bad[i], strlen(bad[i]), S(good), &out),
            KEDGE_ESCHEMA);
    }
    ck_assert_int_eq(kedge_coalesce_merge(KEDGE_COALESCE_STATE, S(good), S("nope"), &out),
                     KEDGE_ESCHEMA);
    kedge_buf_cleanup(&out);
}
END_TEST

static int op_merge(void *arg)
{
    static const char older[] = TWIN_MSG("m1", "e1", "{\"a\":{\"v\":1},\"b\":{\"v\":2}}");
    static const char newer[] = TWIN_MSG("m2", "e2", "{\"b\":{\"v\":3}}");
    struct kedge_buf out = KEDGE_BUF_INIT;
    int rc = kedge_coalesce_merge(KEDGE_COALESCE_TWIN, S(older), S(newer), &out);

    (void)arg;
    kedge_buf_cleanup(&out);
    return rc;
}

START_TEST(merge_nomem)
{
    static const int ok[] = {-ENOMEM};

    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(op_merge, NULL, ok, 1), 0);
    unit_libc_allocs();
}
END_TEST

static Suite *coalesce_suite(void)
{
    Suite *s = suite_create("coalesce");
    TCase *tc = tcase_create("coalesce");

    tcase_add_test(tc, kinds);
    tcase_add_test(tc, twin_maps_merge);
    tcase_add_test(tc, deletion_kept);
    tcase_add_test(tc, unsorted_input);
    tcase_add_test(tc, state_newer_wins);
    tcase_add_test(tc, bad_shapes);
    tcase_add_test(tc, merge_nomem);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(coalesce_suite());
}
