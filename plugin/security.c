/* Who may speak on $ke/ (spec facts 26-27).
 *
 * The bridge identity (plugin_opt_bridge_username + password) is the only one that may publish
 * or subscribe under $ke/. Everyone else keeps what plain mosquitto gives them:
 *  - auth_mode open (default): the plugin decides for everyone. Any other username connects
 *    (devices and mappers often send one), anonymous clients follow allow_anonymous, and every
 *    topic outside $ke/ is allowed. password_file / acl_file are not consulted.
 *  - auth_mode defer: the plugin decides only for its own identity and $ke/, and defers the
 *    rest to the operator's password_file / acl_file (or another plugin). Registering an ACL
 *    callback turns mosquitto's default into deny, so an acl_file must then exist.
 */
#include <string.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kedge/ke.h"
#include "kedge/log.h"
#include "security.h"

void security_init(struct security *sec, const struct plugin_config *cfg)
{
    static const struct kedge_ratelimit rl = KEDGE_RATELIMIT_INIT(10000, 5);

    memset(sec, 0, sizeof(*sec));
    sec->cfg = cfg;
    sec->rl = rl;
}

static bool once_per_client(struct security *sec, const char *id)
{
    unsigned i;

    if (!id)
        id = "";
    for (i = 0; i < SECURITY_LOGGED_SLOTS; i++)
        if (!strncmp(sec->logged[i], id, sizeof(sec->logged[i]) - 1))
            return false;
    strncpy(sec->logged[sec->logged_next], id, sizeof(sec->logged[0]) - 1);
    sec->logged_next = (sec->logged_next + 1) % SECURITY_LOGGED_SLOTS;
    return true;
}

/* Constant-time comparison: the password check must not leak its length of agreement. */
static bool secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i;
    unsigned char diff = (unsigned char)(la != lb);

    for (i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0 && lb > 0;
}

static bool is_bridge_identity(const struct plugin_config *cfg, const char *username)
{
    return username && !strcmp(username, cfg->bridge_username);
}

/* Client ids starting with the bridge username are the bridge's: a device that connected
 * with the bridge's client id would take over its session (and its queued outbox entries). */
static bool reserved_client_id(const struct plugin_config *cfg, const char *id)
{
    return id && !strncmp(id, cfg->bridge_username, strlen(cfg->bridge_username));
}

int security_basic_auth(struct security *sec, struct mosquitto_evt_basic_auth *ev)
{
    const struct plugin_config *cfg = sec->cfg;
    const char *id = mosquitto_client_id(ev->client);

    if (!is_bridge_identity(cfg, ev->username) && reserved_client_id(cfg, id)) {
        kedge_log_limited(&sec->rl, "security", KEDGE_LOG_WARN,
                          "security: refused client=%s user=%s: client ids starting "
                          "with %s belong to the bridge identity",
                          id, ev->username ? ev->username : "(none)", cfg->bridge_username);
        return MOSQ_ERR_AUTH;
    }
    if (is_bridge_identity(cfg, ev->username)) {
        if (ev->password && *cfg->bridge_password &&
            secret_equal(ev->password, cfg->bridge_password))
            return MOSQ_ERR_SUCCESS;
        kedge_log_limited(&sec->rl, "security", KEDGE_LOG_WARN,
                          "security: bad password for bridge identity %s from client=%s",
                          ev->username,
                          mosquitto_client_id(ev->client) ? mosquitto_client_id(ev->client) : "?");
        return MOSQ_ERR_AUTH;
    }
    /* Anonymous clients: allow_anonymous decides (a deferred NULL username is let in only when
     * it is true). Named clients: open mode lets them in as plain mosquitto would. */
    if (!ev->username || !strcmp(cfg->auth_mode, "defer"))
        return MOSQ_ERR_PLUGIN_DEFER;
    return MOSQ_ERR_SUCCESS;
}

int security_acl_check(struct security *sec, struct mosquitto_evt_acl_check *ev)
{
    const struct plugin_config *cfg = sec->cfg;
    const char *user = mosquitto_client_username(ev->client);

    if (ev->topic && !strncmp(ev->topic, KE_PREFIX, strlen(KE_PREFIX))) {
        if (is_bridge_identity(cfg, user))
            return MOSQ_ERR_SUCCESS;
        if (once_per_client(sec, mosquitto_client_id(ev->client))) /* bounded already */
            kedge_log(KEDGE_LOG_WARN,
                      "security: denied client=%s user=%s %s on %s: $ke/ is the bridge's",
                      mosquitto_client_id(ev->client) ? mosquitto_client_id(ev->client) : "?",
                      user ? user : "(none)",
                      ev->access == MOSQ_ACL_SUBSCRIBE ? "subscribe"
                      : ev->access == MOSQ_ACL_READ    ? "read"
                                                       : "publish",
                      ev->topic);
        return MOSQ_ERR_ACL_DENIED;
    }
    return strcmp(cfg->auth_mode, "defer") ? MOSQ_ERR_SUCCESS : MOSQ_ERR_PLUGIN_DEFER;
}
