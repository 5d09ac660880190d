/* chain: steps every suite that runs the whole edge node against kedge-cloudsim shares
 * (mosquitto + plugin from harness.h, kedge-bridge from bridgectl.h, cloudsim from simctl.h):
 * reading cloudsim's control API with assertions, and taking the chain down at the end of a
 * test. The wiring itself is bridgectl_wire_cloudsim. For Check tests: failures ck_assert. */
#ifndef KEDGE_TESTS_CHAIN_H
#define KEDGE_TESTS_CHAIN_H

#include <stdbool.h>

#include "bridgectl.h"
#include "harness.h"
#include "kedge/json.h"
#include "simctl.h"

/* GET path from cloudsim's control API, asserting HTTP 200 and JSON: the document (free it). */
struct kedge_jdoc *chain_sim_get(struct simctl *sim, const char *path);
/* POST path (no body), asserting HTTP 200. */
void chain_sim_post(struct simctl *sim, const char *path);

/* How each process of the chain ended at chain_down (0 = clean or not there). */
struct chain_exit {
    int bridge, broker, sim;
};

/* Stop (SIGTERM, exit status recorded) and free the bridge, the broker and cloudsim, each if
 * there, and set the pointers to NULL. A bridge or cloudsim that is no longer running counts 0
 * (a test stopped it); a broker that died counts its exit status when dead_broker_fails, else 0
 * (a test that kill -9'd it). Asserts nothing: see chain_assert_clean. */
void chain_down(struct bridgectl **bridge, struct kh_broker **broker, struct simctl **sim,
                bool dead_broker_fails, struct chain_exit *x);
/* Assert each status of x is 0. */
void chain_assert_clean(const struct chain_exit *x);

#endif
