/* plugin/twin_engine.c alone: no store, no broker, no registry. A device is built in memory,
 * requests are decoded with the common codec and applied in each mode; the assertions check
 * versions, values and types on the device, and the exact result, document, cloud and get
 * JSON the engine encodes (timestamps are the fixed `now` given to twin_apply).
 */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/twin.h"
#include "twin_engine.h"
#include "unit.h"

#define NOW 1700000000123LL

static struct kedge_device *dev;
static struct kedge_twin_update req;
static struct twin_change chg;
static struct kedge_buf out;

static void quiet(int level, const char *line)
{
    (void)level;
    (void)line;
}

static struct kedge_device *new_device(void)
{
    struct kedge_device *d = kedge_calloc(1, sizeof(*d));

    ck_assert_ptr_nonnull(d);
    d->id = kedge_strdup("dev-1");
    d->name = kedge_strdup("dev-1");
    ck_assert_ptr_nonnull(d->name);
    return d;
}

static void setup(void)
{
    unit_count_allocs();
    kedge_log_set_sink(quiet);
    dev = new_device();
    memset(&req, 0, sizeof(req));
    memset(&chg, 0, sizeof(chg));
    memset(&out, 0, sizeof(out));
}

static void teardown(void)
{
    twin_change_cleanup(&chg);
    kedge_twin_update_cleanup(&req);
    kedge_buf_cleanup(&out);
    kedge_device_free(dev);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}

/* Decode json and apply it to dev in mode; the previous change is released first. */
static int apply(enum twin_mode mode, const char *json)
{
    twin_change_cleanup(&chg);
    kedge_twin_update_cleanup(&req);
    ck_assert_int_eq(kedge_twin_update_decode(json, strlen(json), &req), 0);
    return twin_apply(&chg, dev, mode, NOW, req.twins, req.n);
}

static const struct kedge_twin *twin(const char *name)
{
    const struct kedge_twin *t = device_twin_find(dev, name);

    ck_assert_msg(t != NULL, "no twin %s", name);
    return t;
}

#define ASSERT_VER(v, c, e)                                                                        \
    do {                                                                                           \
        ck_assert_int_eq((v).cloud, (c));                                                          \
        ck_assert_int_eq((v).edge, (e));                                                           \
    } while (0)

/* The device's twins as a get result sees them (deleted ones left out). */
static const char *get_json(void)
{
    kedge_buf_reset(&out);
    ck_assert_int_eq(twin_encode_get(dev, "g", NOW, &out), 0);
    return out.data;
}

/* Seed "temp" (int) and "label" (optional string) through the device's own updates. */
static void seed(void)
{
    ck_assert_int_eq(apply(TWIN_REST, "{\"event_id\":\"s\",\"twin\":{"
                                      "\"temp\":{\"expected\":{\"value\":\"20\"},"
                                      "\"actual\":{\"value\":\"21\"},"
                                      "\"optional\":false,\"metadata\":{\"type\":\"int\"}},"
                                      "\"label\":{\"actual\":{\"value\":\"a\"}}}}"),
                     0);
}

START_TEST(rest_add_starts_versions_and_reports)
{
    seed();
    ck_assert_uint_eq(dev->n_twins, 2);
    ck_assert_uint_eq(chg.n, 2);
    ck_assert(chg.keys[0].inserted && chg.keys[0].changed);
    /* a new key's supplied sides start at {cloud 0, edge 1} */
    ASSERT_VER(twin("temp")->ev, 0, 1);
    ASSERT_VER(twin("temp")->av, 0, 1);
    ck_assert(twin("temp")->has_ev && twin("temp")->has_av);
    ck_assert(!twin("label")->has_ev);
    ASSERT_VER(twin("label")->av, 0, 1);
    ck_assert_str_eq(twin("temp")->type, "int");
    ck_assert_str_eq(twin("label")->type, "string"); /* the default */
    ck_assert(twin("label")->optional);              /* the default */
    ck_assert(!twin("temp")->optional);
    ck_assert_int_eq(twin("temp")->expected.ts, NOW);

    ck_assert_int_eq(twin_encode_result(&chg, "s", &out), 0);
    ASSERT_BUF(&out, "{\"event_id\":\"s\",\"timestamp\":1700000000123,\"twin\":{"
                     "\"label\":{\"actual\":{\"value\":\"a\",\"metadata\":"
                     "{\"timestamp\":1700000000123}},\"optional\":true,"
                     "\"metadata\":{\"type\":\"string\"}},"
                     "\"temp\":{\"expected\":{\"value\":\"20\",\"metadata\":"
                     "{\"timestamp\":1700000000123}},\"actual\":{\"value\":\"21\",\"metadata\":"
                     "{\"timestamp\":1700000000123}},\"optional\":false,"
                     "\"metadata\":{\"type\":\"int\"}}}}");
    /* the document: no last for new keys, current as stored */
    kedge_buf_reset(&out);
    ck_assert_int_eq(twin_encode_document(&chg, "s", &out), 1);
    ck_assert_ptr_nonnull(strstr(out.data, "\"temp\":{\"last\":null,\"current\":{"));
    /* the cloud hears of the device's own changes, with versions */
    kedge_buf_reset(&out);
    ck_assert_int_eq(twin_encode_cloud(&chg, "c", NOW, &out), 1);
    ck_assert_ptr_nonnull(strstr(out.data, "\"expected_version\":{\"cloud\":0,\"edge\":1}"));
}
END_TEST

START_TEST(rest_change_moves_edge_version)
{
    seed();
    ck_assert_int_eq(
        apply(TWIN_REST,
              "{\"event_id\":\"u\",\"twin\":{\"temp\":{\"actual\":{\"value\":\"25\"}}}}"),
        0);
    ck_assert_uint_eq(chg.n, 1);
    ck_assert(chg.keys[0].changed && !chg.keys[0].inserted && chg.keys[0].has_last);
    ck_assert_str_eq(chg.keys[0].last.actual.value, "21");
    ck_assert_str_eq(twin("temp")->actual.value, "25");
    ASSERT_VER(twin("temp")->av, 0, 2);
    ASSERT_VER(twin("temp")->ev, 0, 1); /* the side not sent stays */
    kedge_buf_reset(&out);
    ck_assert_int_eq(twin_encode_document(&chg, "u", &out), 1);
    ck_assert_ptr_nonnull(strstr(out.data, "\"last\":{\"expected\":{\"value\":\"20\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"actual\":{\"value\":\"25\""));
}
END_TEST

START_TEST(rest_bad_type_aborts)
{
    seed();
    ck_assert_int_eq(
        apply(TWIN_REST, "{\"event_id\":\"b\",\"twin\":{\"temp\":{\"actual\":{\"value\":\"x\"}}}}"),
        KEDGE_ETYPE);
    ck_assert_ptr_nonnull(chg.reason);
    ck_assert_uint_eq(chg.n, 0);
    ck_assert_str_eq(twin("temp")->actual.value, "21");
}
END_TEST

START_TEST(rest_delete_only_optional)
{
    seed();
    /* temp is not optional: a null leaves it alone and reports nothing */
    ck_assert_int_eq(apply(TWIN_REST, "{\"event_id\":\"d\",\"twin\":{\"temp\":null}}"), 0);
    ck_assert_uint_eq(chg.n, 0);
    ck_assert_str_eq(twin("temp")->type, "int");
    ck_assert_int_eq(apply(TWIN_REST, "{\"event_id\":\"d\",\"twin\":{\"label\":null}}"), 0);
    ck_assert_uint_eq(chg.n, 1);
    ck_assert(chg.keys[0].deleted);
    ck_assert_str_eq(twin("label")->type, KEDGE_TYPE_DELETED);
    ck_assert_ptr_null(twin("label")->actual.value);
    ASSERT_VER(twin("label")->av, 0, 2); /* the delete is a change: its version moves on */
    kedge_buf_reset(&out);
    ck_assert_int_eq(twin_encode_result(&chg, "d", &out), 0);
    ASSERT_BUF(&out, "{\"event_id\":\"d\",\"timestamp\":1700000000123,\"twin\":{\"label\":null}}");
    kedge_buf_reset(&out);
    ck_assert_int_eq(twin_encode_document(&chg, "d", &out), 1);
    ck_assert_ptr_nonnull(strstr(out.data, "\"current\":null"));
    /* a deleted twin is gone from a get; deleting it again produces nothing */
    ck_assert_ptr_null(strstr(get_json(), "label"));
    ck_assert_int_eq(apply(TWIN_REST, "{\"event_id\":\"d\",\"twin\":{\"label\":null}}"), 0);
    ck_assert_uint_eq(chg.n, 0);
    kedge_buf_reset(&out);
    ck_assert_int_eq(twin_encode_document(&chg, "d", &out), 0);
    ck_assert_uint_eq(out.len, 0);
}
END_TEST

START_TEST(sync_versions_decide)
{
    seed();
    /* the cloud's pair is newer: taken as is */
    ck_assert_int_eq(apply(TWIN_SYNC, "{\"event_id\":\"c1\",\"twin\":{\"temp\":{"
                                      "\"expected\":{\"value\":\"30\"},"
                                      "\"expected_version\":{\"cloud\":5,\"edge\":1}}}}"),
                     0);
    ck_assert_str_eq(twin("temp")->expected.value, "30");
    ASSERT_VER(twin("temp")->ev, 5, 1);
    ck_assert(!chg.keys[0].echo);
    kedge_buf_reset(&out);
    ck_assert_int_eq(twin_encode_cloud(&chg, "c", NOW, &out), 0); /* nothing to tell the cloud */
    ck_assert_uint_eq(out.len, 0);
    /* the edge is newer (edge 1 > 0): refused, and echoed back with the edge's twin */
    ck_assert_int_eq(apply(TWIN_SYNC, "{\"event_id\":\"c2\",\"twin\":{\"temp\":{"
                                      "\"expected\":{\"value\":\"40\"},"
                                      "\"expected_version\":{\"cloud\":6,\"edge\":0}}}}"),
                     0);
    ck_assert_str_eq(twin("temp")->expected.value, "30");
    ASSERT_VER(twin("temp")->ev, 5, 1);
    ck_assert_uint_eq(chg.n, 1);
    ck_assert(chg.keys[0].echo && !chg.keys[0].changed);
    kedge_buf_reset(&out);
    ck_assert_int_eq(twin_encode_cloud(&chg, "c", NOW, &out), 1);
    ck_assert_ptr_nonnull(strstr(out.data, "\"value\":\"30\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"expected_version\":{\"cloud\":5,\"edge\":1}"));
    /* a bad value from the cloud is skipped, not fatal */
    ck_assert_int_eq(apply(TWIN_SYNC, "{\"event_id\":\"c3\",\"twin\":{\"temp\":{"
                                      "\"expected\":{\"value\":\"x\"},"
                                      "\"expected_version\":{\"cloud\":9,\"edge\":1}}}}"),
                     0);
    ck_assert_str_eq(twin("temp")->expected.value, "30");
}
END_TEST

START_TEST(sync_delete_with_versions)
{
    seed();
    ck_assert_int_eq(apply(TWIN_SYNC, "{\"event_id\":\"x\",\"twin\":{\"temp\":{"
                                      "\"metadata\":{\"type\":\"deleted\"},"
                                      "\"expected_version\":{\"cloud\":3,\"edge\":1},"
                                      "\"actual_version\":{\"cloud\":3,\"edge\":1}}}}"),
                     0);
    ck_assert_str_eq(twin("temp")->type, KEDGE_TYPE_DELETED);
    ASSERT_VER(twin("temp")->ev, 3, 1);
    ASSERT_VER(twin("temp")->av, 3, 1);
    ck_assert_ptr_eq(strstr(get_json(), "temp"), NULL);
}
END_TEST

START_TEST(desired_sets_expected_only)
{
    seed();
    ck_assert_int_eq(apply(TWIN_DESIRED, "{\"event_id\":\"w\",\"twin\":{\"temp\":{"
                                         "\"expected\":{\"value\":\"22\"},"
                                         "\"actual\":{\"value\":\"99\"}}}}"),
                     0);
    ck_assert_str_eq(twin("temp")->expected.value, "22");
    ck_assert_str_eq(twin("temp")->actual.value, "21"); /* actual values are the device's */
    ASSERT_VER(twin("temp")->ev, 1, 1);                 /* the cloud's count moves on */
    ASSERT_VER(twin("temp")->av, 0, 1);
    ck_assert_uint_eq(chg.n, 1);
    /* the same value again changes nothing; a value not of the twin's type is left alone */
    ck_assert_int_eq(apply(TWIN_DESIRED, "{\"event_id\":\"w\",\"twin\":{\"temp\":{"
                                         "\"expected\":{\"value\":\"22\"}}}}"),
                     0);
    ck_assert_uint_eq(chg.n, 0);
    ck_assert_int_eq(apply(TWIN_DESIRED, "{\"event_id\":\"w\",\"twin\":{\"temp\":{"
                                         "\"expected\":{\"value\":\"warm\"}}}}"),
                     0);
    ck_assert_uint_eq(chg.n, 0);
    ASSERT_VER(twin("temp")->ev, 1, 1);
    /* nothing goes back to the cloud for desired values */
    ck_assert_int_eq(apply(TWIN_DESIRED, "{\"event_id\":\"w\",\"twin\":{\"temp\":{"
                                         "\"expected\":{\"value\":\"23\"}}}}"),
                     0);
    kedge_buf_reset(&out);
    ck_assert_int_eq(twin_encode_cloud(&chg, "c", NOW, &out), 0);
}
END_TEST

/* The delta the service publishes is computed over the device's twins after a change. */
START_TEST(delta_after_change)
{
    bool has;

    seed();
    ck_assert_int_eq(kedge_twin_delta_encode(&out, "e", NOW, dev->twins, dev->n_twins, &has), 0);
    ck_assert(has);
    ck_assert_ptr_nonnull(strstr(out.data, "\"delta\":{\"temp\":\"20\"}"));
    ck_assert_int_eq(
        apply(TWIN_REST,
              "{\"event_id\":\"u\",\"twin\":{\"temp\":{\"actual\":{\"value\":\"20\"}}}}"),
        0);
    kedge_buf_reset(&out);
    ck_assert_int_eq(kedge_twin_delta_encode(&out, "e", NOW, dev->twins, dev->n_twins, &has), 0);
    ck_assert(!has);
}
END_TEST

/* Every allocation failure is reported as -ENOMEM and leaves a change that cleans up
 * without leaks (teardown counts the blocks). */
START_TEST(oom_anywhere)
{
    static const char json[] = "{\"event_id\":\"s\",\"twin\":{\"temp\":{\"expected\":"
                               "{\"value\":\"20\"},\"metadata\":{\"type\":\"int\"}}}}";
    int n, rc = -ENOMEM;

    ck_assert_int_eq(kedge_twin_update_decode(json, strlen(json), &req), 0);
    for (n = 0; n < 200 && rc != 0; n++) {
        twin_change_cleanup(&chg);
        kedge_device_free(dev);
        dev = new_device();
        (void)kedge_alloc_fail_after(n);
        rc = twin_apply(&chg, dev, TWIN_REST, NOW, req.twins, req.n);
        (void)kedge_alloc_fail_after(-1);
        ck_assert(rc == 0 || rc == -ENOMEM);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_gt(n, 1); /* at least one failure was met and survived */
    ck_assert_str_eq(twin("temp")->expected.value, "20");
}
END_TEST

static Suite *twinengine_suite(void)
{
    Suite *s = suite_create("twinengine");
    TCase *tc = tcase_create("engine");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rest_add_starts_versions_and_reports);
    tcase_add_test(tc, rest_change_moves_edge_version);
    tcase_add_test(tc, rest_bad_type_aborts);
    tcase_add_test(tc, rest_delete_only_optional);
    tcase_add_test(tc, sync_versions_decide);
    tcase_add_test(tc, sync_delete_with_versions);
    tcase_add_test(tc, desired_sets_expected_only);
    tcase_add_test(tc, delta_after_change);
    tcase_add_test(tc, oom_anywhere);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(twinengine_suite());
}
