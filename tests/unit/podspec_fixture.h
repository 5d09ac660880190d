/* What the podspec suite's files share (podspec_fixture.c): pods written with ' for " (Q()),
 * a ConfigMap/Secret store behind the create bodies' lookup, and the nginx and env pods.
 */
#ifndef KEDGE_UNIT_PODSPEC_FIXTURE_H
#define KEDGE_UNIT_PODSPEC_FIXTURE_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "podspec.h"
#include "runtime_docker_body.h"
#include "kedge/buf.h"

#define UID "0d6f1c2a-8b1e-4c55-9a0e-3f2b5c7d9e11"

const char *Q(const char *s);
struct pod_spec *parse_ok(const char *json);
const char *with_hash(const char *tmpl, uint32_t h);

/* How many times the store was looked up (env_every_source counts them). */
extern int lookups;
extern const struct docker_create cc_template;
int body(const struct pod_spec *p, const struct pod_container *c, int attempt,
         struct kedge_buf *out, char *why, size_t why_len);

extern const char nginx_pod[];
extern const char env_pod[];

/* The tests of test_podspec_errors.c and test_podspec_env.c, added to the suite's TCases. */
void podspec_parse_error_tests(TCase *parse);
void podspec_nomem_tests(TCase *nomem);
void podspec_env_body_tests(TCase *bodies);
void podspec_value_tests(TCase *values);

#endif
