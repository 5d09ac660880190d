/* What the twin suite's files share (test_twin.c, test_twin_encode.c). */
#ifndef KEDGE_UNIT_TWIN_FIXTURE_H
#define KEDGE_UNIT_TWIN_FIXTURE_H

#include <check.h>

#define T0 1700000000000LL
#define S(lit) lit, sizeof(lit) - 1

/* The tests of test_twin_encode.c, added to the suite's TCases. */
void twin_encode_tests(TCase *encode);
void twin_nomem_tests(TCase *nomem);

#endif
