/* What the json suite's files share (test_json.c, test_json_parse.c). */
#ifndef KEDGE_UNIT_JSON_FIXTURE_H
#define KEDGE_UNIT_JSON_FIXTURE_H

#include <check.h>

#define S(lit) lit, sizeof(lit) - 1 /* a literal with its exact length (may hold NUL) */

/* The tests of test_json_parse.c, added to the suite's "parser" TCase. */
void json_parser_tests(TCase *parser);

#endif
