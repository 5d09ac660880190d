/* common/alloc.c: the small allocation helpers every module shares (kedge_replace_str,
 * kedge_array_grow, kedge_free_all), including what each leaves behind when an allocation
 * fails. */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "unit.h"

START_TEST(replace_str_copies_and_frees_the_old)
{
    char *slot = NULL;

    unit_count_allocs();
    ck_assert_int_eq(kedge_replace_str(&slot, "first"), 0);
    ck_assert_str_eq(slot, "first");
    ck_assert_int_eq(kedge_replace_str(&slot, "second"), 0);
    ck_assert_str_eq(slot, "second");
    ck_assert_int_eq(kedge_replace_str(&slot, NULL), 0); /* NULL stands for "" */
    ck_assert_str_eq(slot, "");
    ck_assert_int_eq(unit_live_blocks, 1);
    kedge_free(slot);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

START_TEST(replace_str_keeps_the_old_on_enomem)
{
    char *slot = kedge_strdup("kept");

    (void)kedge_alloc_fail_after(0);
    ck_assert_int_eq(kedge_replace_str(&slot, "new"), -ENOMEM);
    (void)kedge_alloc_fail_after(-1);
    ck_assert_str_eq(slot, "kept");
    kedge_free(slot);
}
END_TEST

START_TEST(array_grow_first_then_doubles)
{
    int *items = NULL;
    size_t cap = 0, n;

    for (n = 0; n < 9; n++) {
        ck_assert_int_eq(kedge_array_grow(&items, &cap, n, sizeof(*items), 4), 0);
        ck_assert_uint_gt(cap, n);
        items[n] = (int)n;
    }
    ck_assert_uint_eq(cap, 16); /* 4, 8, 16 */
    for (n = 0; n < 9; n++)
        ck_assert_int_eq(items[n], (int)n); /* kept across each growth */
    kedge_free(items);
}
END_TEST

START_TEST(array_grow_without_need_allocates_nothing)
{
    int *items = kedge_calloc(4, sizeof(*items)), *before = items;
    size_t cap = 4;

    (void)kedge_alloc_fail_after(0); /* any allocation would fail */
    ck_assert_int_eq(kedge_array_grow(&items, &cap, 3, sizeof(*items), 4), 0);
    (void)kedge_alloc_fail_after(-1);
    ck_assert_ptr_eq(items, before);
    ck_assert_uint_eq(cap, 4);
    kedge_free(items);
}
END_TEST

START_TEST(array_grow_keeps_the_array_on_enomem)
{
    int *items = kedge_calloc(2, sizeof(*items)), *before = items;
    size_t cap = 2;

    items[1] = 42;
    (void)kedge_alloc_fail_after(0);
    ck_assert_int_eq(kedge_array_grow(&items, &cap, 2, sizeof(*items), 4), -ENOMEM);
    (void)kedge_alloc_fail_after(-1);
    ck_assert_ptr_eq(items, before);
    ck_assert_uint_eq(cap, 2);
    ck_assert_int_eq(items[1], 42);
    kedge_free(items);
}
END_TEST

START_TEST(array_grow_refuses_an_overflowing_size)
{
    char *items = NULL;
    size_t doubling_wraps = (size_t)-1 / 2 + 1, bytes_wrap = (size_t)-1 / 8 + 1, cap;
    int rc;

    cap = doubling_wraps;
    rc = kedge_array_grow(&items, &cap, cap, 1, 4);
    ck_assert_int_eq(rc, -ENOMEM);
    ck_assert_uint_eq(cap, doubling_wraps);
    cap = bytes_wrap; /* twice as many 4-byte elements do not fit in a size_t */
    rc = kedge_array_grow(&items, &cap, cap, 4, 4);
    ck_assert_int_eq(rc, -ENOMEM);
    ck_assert_uint_eq(cap, bytes_wrap);
    ck_assert_ptr_null(items);
}
END_TEST

START_TEST(free_all_frees_every_pointer_and_skips_null)
{
    struct {
        char *a, *b, *c;
    } * o;

    unit_count_allocs();
    o = kedge_calloc(1, sizeof(*o));
    o->a = kedge_strdup("a");
    o->c = kedge_strdup("c"); /* o->b stays NULL */
    ck_assert_int_eq(unit_live_blocks, 3);
    kedge_free_all(o->a, o->b, o->c, o); /* every value is read before anything is freed */
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("helpers");

    tcase_add_test(tc, replace_str_copies_and_frees_the_old);
    tcase_add_test(tc, replace_str_keeps_the_old_on_enomem);
    tcase_add_test(tc, array_grow_first_then_doubles);
    tcase_add_test(tc, array_grow_without_need_allocates_nothing);
    tcase_add_test(tc, array_grow_keeps_the_array_on_enomem);
    tcase_add_test(tc, array_grow_refuses_an_overflowing_size);
    tcase_add_test(tc, free_all_frees_every_pointer_and_skips_null);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(alloc_suite());
}
