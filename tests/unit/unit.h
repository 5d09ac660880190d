/* Helpers shared by the unit suites: exact-bytes assertions, a suite runner, a counting
 * allocator that turns any leak on an error path into a test failure (in every build, not only
 * under ASan), and the allocation-failure loop of SQLite's test_malloc.c.
 *
 * Everything here is static inline but the live-block count, defined once in unit.c: a suite
 * split over several files is still one executable, and a fixture in one file (setup installs
 * the counting allocator) must count what a test in another file allocates.
 */
#ifndef KEDGE_UNIT_H
#define KEDGE_UNIT_H

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/buf.h"

/* Exact bytes, with both sides printed on failure. `want` is a C string. */
#define ASSERT_BYTES(got, got_len, want)                                                           \
    do {                                                                                           \
        const char *got_ = (got);                                                                  \
        size_t got_len_ = (got_len);                                                               \
        const char *want_ = (want);                                                                \
        ck_assert_msg(got_len_ == strlen(want_) && memcmp(got_, want_, got_len_) == 0,             \
                      "bytes differ\n got: %.*s\nwant: %s", (int)got_len_, got_ ? got_ : "",       \
                      want_);                                                                      \
    } while (0)

#define ASSERT_BUF(buf, want) ASSERT_BYTES((buf)->data, (buf)->len, (want))

static inline int unit_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- counting allocator ------------------------------------------------------------------ */

extern long unit_live_blocks;

static inline void *unit_malloc(size_t n)
{
    void *p = malloc(n);

    if (p)
        unit_live_blocks++;
    return p;
}

static inline void *unit_realloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (q && !p)
        unit_live_blocks++;
    return q;
}

static inline void unit_free(void *p)
{
    if (p)
        unit_live_blocks--;
    free(p);
}

/* Install the counting allocator (a checked fixture: runs in the test's own process). */
static inline void unit_count_allocs(void)
{
    static const struct kedge_allocator a = {unit_malloc, unit_realloc, unit_free};

    kedge_alloc_set(&a);
    unit_live_blocks = 0;
}

static inline void unit_libc_allocs(void)
{
    (void)kedge_alloc_fail_after(-1);
    kedge_alloc_set(NULL);
}

/* ---- allocation-failure loop -------------------------------------------------------------- */

/* One operation under test: 0 on success, else its error code. It must release everything it
 * allocated before returning, success or not (the loop checks the live-block count). */
typedef int (*unit_op)(void *ctx);

/* Run op with the Nth allocation failing (and every one after it), N = 0, 1, 2, ... until it
 * succeeds. Every failing run must return one of the accepted codes and leave no block
 * behind. Returns how many failing runs there were (so a test can check the loop did walk). */
static inline long unit_alloc_fail_loop(unit_op op, void *ctx, const int *ok_codes, size_t n_ok)
{
    long n;

    for (n = 0; n < 100000; n++) {
        long live = unit_live_blocks;
        int rc;
        size_t i;

        (void)kedge_alloc_fail_after(n);
        rc = op(ctx);
        (void)kedge_alloc_fail_after(-1);
        ck_assert_msg(unit_live_blocks == live, "n=%ld rc=%d: %ld blocks leaked", n, rc,
                      unit_live_blocks - live);
        if (rc == 0)
            return n;
        for (i = 0; i < n_ok && ok_codes[i] != rc; i++)
            ;
        ck_assert_msg(i < n_ok, "n=%ld: unexpected rc=%d", n, rc);
    }
    ck_abort_msg("operation never succeeded");
    return -1;
}

/* Read a whole file into a NUL-terminated kedge_buf (fixtures). */
static inline void unit_read_file(const char *path, struct kedge_buf *out)
{
    FILE *f = fopen(path, "rb");
    char chunk[4096];
    size_t n;

    ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
    kedge_buf_reset(out);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ck_assert_int_eq(kedge_buf_append(out, chunk, n), 0);
    ck_assert(!ferror(f));
    (void)fclose(f);
}

#endif
