/* chain.c: the shared steps of the whole-chain suites (chain.h). */
#include "chain.h"

#include <check.h>
#include <errno.h>
#include <stddef.h>

struct kedge_jdoc *chain_sim_get(struct simctl *sim, const char *path)
{
    struct kedge_jdoc *doc = NULL;
    int status = 0;

    ck_assert_msg(simctl_http_json(sim, "GET", path, NULL, &status, &doc) == 0, "GET %s failed",
                  path);
    ck_assert_msg(status == 200, "GET %s: HTTP %d", path, status);
    return doc;
}

void chain_sim_post(struct simctl *sim, const char *path)
{
    ck_assert_msg(simctl_post(sim, path) == 200, "POST %s failed", path);
}

void chain_down(struct bridgectl **bridge, struct kh_broker **broker, struct simctl **sim,
                bool dead_broker_fails, struct chain_exit *x)
{
    x->bridge = x->broker = x->sim = 0;
    if (*bridge && bridgectl_pid(*bridge))
        x->bridge = bridgectl_stop(*bridge); /* a bridge that died shows its status here */
    bridgectl_free(*bridge);
    *bridge = NULL;
    if (*broker && kh_broker_pid(*broker))
        x->broker = kh_broker_stop(*broker);
    else if (*broker && dead_broker_fails)
        x->broker = kh_broker_exit_status(*broker);
    kh_broker_free(*broker);
    *broker = NULL;
    if (*sim) {
        x->sim = simctl_stop(*sim);
        if (x->sim == -ECHILD) /* a test stopped it already */
            x->sim = 0;
    }
    simctl_free(*sim);
    *sim = NULL;
}

void chain_assert_clean(const struct chain_exit *x)
{
    ck_assert_msg(x->bridge == 0, "kedge-bridge exit status %d", x->bridge);
    ck_assert_msg(x->broker == 0, "mosquitto exit status %d", x->broker);
    ck_assert_msg(x->sim == 0, "kedge-cloudsim exit status %d", x->sim);
}
