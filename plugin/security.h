/* Who may connect and what they may touch: the bridge identity alone under $ke/, everyone
 * else per plugin_opt_auth_mode (open, or deferred to the broker's password and ACL files).
 */
#ifndef KEDGE_SECURITY_H
#define KEDGE_SECURITY_H

#include "options.h"

struct mosquitto_evt_basic_auth;
struct mosquitto_evt_acl_check;
/* MOSQ_EVT_BASIC_AUTH and MOSQ_EVT_ACL_CHECK: a MOSQ_ERR_* for the broker. */
int security_basic_auth(const struct plugin_config *cfg, struct mosquitto_evt_basic_auth *ev);
int security_acl_check(const struct plugin_config *cfg, struct mosquitto_evt_acl_check *ev);

#endif
