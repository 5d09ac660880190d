/* Who may connect and what they may touch: the bridge identity alone under $ke/, everyone
 * else per plugin_opt_auth_mode (open, or deferred to the broker's password and ACL files).
 */
#ifndef KEDGE_SECURITY_H
#define KEDGE_SECURITY_H

#include "kedge/log.h"
#include "options.h"

#define SECURITY_LOGGED_SLOTS 64

struct security {
    const struct plugin_config *cfg; /* borrowed */
    struct kedge_ratelimit rl;       /* refusals: a client retrying must not flood the log */
    /* Client ids already told off about $ke/, so each is logged once (a small ring is enough:
     * a client that keeps trying after falling out of it is logged again, which is fine). */
    char logged[SECURITY_LOGGED_SLOTS][64];
    unsigned logged_next;
};

void security_init(struct security *sec, const struct plugin_config *cfg);
struct mosquitto_evt_basic_auth;
struct mosquitto_evt_acl_check;
/* MOSQ_EVT_BASIC_AUTH and MOSQ_EVT_ACL_CHECK: a MOSQ_ERR_* for the broker. */
int security_basic_auth(struct security *sec, struct mosquitto_evt_basic_auth *ev);
int security_acl_check(struct security *sec, struct mosquitto_evt_acl_check *ev);

#endif
