/* test_realcloud.h: the scenario files of test_realcloud besides test_realcloud.c. */
#ifndef KEDGE_TESTS_TEST_REALCLOUD_H
#define KEDGE_TESTS_TEST_REALCLOUD_H

#include <check.h>

#include "rcsupport.h"

/* test_realcloud_pull.c: add the image pull scenario to tc (not when the registry cannot run
 * here: a line says why); it uses e's node and cloud. */
void realcloud_pull_tests(TCase *tc, struct rc *e);
/* Stop what the scenario left running (a failed check leaves it early). */
void realcloud_pull_cleanup(void);

#endif
