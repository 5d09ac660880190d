/* The Docker runtime (cloudbridge/edged/runtime_docker.c) on an lws loop in the test's process,
 * against the engine enginectl starts: what test_runtime_engine and test_runtime_session share.
 * One fixture per test process (Check's checked fixture: setup before each test, teardown
 * after), so its state is these globals. */
#ifndef KEDGE_TEST_RUNTIME_FIXTURE_H
#define KEDGE_TEST_RUNTIME_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

#include "enginectl.h"
#include "runtime.h"

extern struct enginectl *engine;
extern struct lws_context *lws;
extern struct lws_vhost *rtfx_vhost;
extern struct runtime rt;

/* Start the engine, the loop and a runtime on it (node: the runtime's node label). */
void rtfx_setup_node(const char *node);
void rtfx_teardown(void);
/* Service the loop until *flag is true or ms (scaled) passed; the flag's value. */
bool spin_until(const bool *flag, int ms);
/* Create and start a busybox container running `sh -c script` (extra: more fields of the
 * create body, each starting with a comma, or ""); its id into id. */
void run_container_with(const char *name, const char *script, const char *extra, char *id,
                        size_t id_len);
void run_container(const char *name, const char *script, char *id, size_t id_len);

#endif
