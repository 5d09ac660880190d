/* What the store suite's files share (store_fixture.c): a scratch DB per test, the store opened
 * on it (empty or with edgecore's seed), and a twin value's check.
 */
#ifndef KEDGE_UNIT_STORE_FIXTURE_H
#define KEDGE_UNIT_STORE_FIXTURE_H

#include <check.h>
#include <stdint.h>

#include "kedge/twin.h"
#include "registry.h"
#include "store.h"
#include "db.h"

#define T0 1700000000000LL

extern struct unit_db db;
extern struct store *st;
extern struct registry *reg;

void setup(void);
void teardown(void);
void open_store(void);
void open_seeded(void);
void assert_value(const struct kedge_twin_value *v, const char *value, int64_t ts);

/* The tests of test_store_write.c, added to the suite's "write" TCase. */
void store_write_tests(TCase *write);

#endif
