/* The store suite's shared fixtures (store_fixture.h). */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/twin.h"
#include "registry.h"
#include "store.h"
#include "db.h"
#include "store_fixture.h"
#include "unit.h"

struct unit_db db;
struct store *st;
struct registry *reg;

void setup(void)
{
    unit_db_init(&db);
    st = NULL;
    ck_assert_int_eq(registry_new(&reg), 0);
}

void teardown(void)
{
    store_close(st);
    st = NULL;
    registry_free(reg);
    unit_db_cleanup(&db);
}

void open_store(void)
{
    struct store_opts o = {db.path, false, false};

    ck_assert_int_eq(store_open(&o, &st), 0);
    ck_assert(store_ok(st));
}

void open_seeded(void)
{
    unit_db_seed(&db);
    open_store();
}

void assert_value(const struct kedge_twin_value *v, const char *value, int64_t ts)
{
    if (!value) {
        ck_assert(!v->present);
        ck_assert_ptr_null(v->value);
        return;
    }
    ck_assert(v->present);
    ck_assert_str_eq(v->value, value);
    ck_assert(v->has_meta);
    ck_assert_int_eq(v->ts, ts);
}
