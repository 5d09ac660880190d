/* plugin_opt_* parsing: one table row per option (type, bounds, default), parsed into a fresh
 * struct and validated as a whole before the plugin uses any of it. Unknown keys are refused:
 * a typo in mosquitto.conf should stop the broker with a clear line, not be ignored.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/ke.h"
#include "kedge/kvconf.h"
#include "kedge/log.h"
#include "kedge/util.h"
#include "options.h"

static const char *const sync_choices[] = {"normal", "full", NULL};
static const char *const auth_choices[] = {"open", "defer", NULL};
static const char *const lock_choices[] = {"exclusive", "shared", NULL};
static const char *const policy_choices[] = {"refuse", "drop-oldest", NULL};

#define F(m) offsetof(struct plugin_config, m)
static const struct kvconf_key rows[] = {
    /* key                 type     field                     min  max        default */
    {"db_path", KVCONF_STR, F(db_path), 0, 0, "/var/lib/kedge/kedge.db", NULL, NULL},
    {"node_name", KVCONF_STR, F(node_name), 0, 0, NULL, NULL, NULL},
    {"max_payload_bytes", KVCONF_LONG, F(max_payload_bytes), 256, 16 << 20, "65536", NULL, NULL},
    {"commit_interval_ms", KVCONF_LONG, F(commit_interval_ms), 0, 10000, "0", NULL, NULL},
    {"commit_batch", KVCONF_LONG, F(commit_batch), 1, 100000, "512", NULL, NULL},
    {"sync", KVCONF_STR, F(sync), 0, 0, "normal", NULL, sync_choices},
    {"log_level", KVCONF_STR, F(log_level), 0, 0, "info", NULL, kedge_log_level_names},
    /* upload rows waiting for the bridge; twin and state reports are not counted (coalesced) */
    {"outbox_max", KVCONF_LONG, F(outbox_max), 1, 100000000, "100000", NULL, NULL},
    /* one upload's encoded beehive message: the bridge's max_frame_bytes (cloudcore v1.15.4
     * sets no websocket read limit, so the bridge's frame limit is the binding one) */
    {"max_upload_bytes", KVCONF_LONG, F(max_upload_bytes), 1024, 1L << 30, "16777216", NULL, NULL},
    {"upload_budget_bytes", KVCONF_LONG, F(upload_budget_bytes), 1024, 1L << 50, "268435456", NULL,
     NULL},
    {"upload_policy", KVCONF_STR, F(upload_policy), 0, 0, "refuse", NULL, policy_choices},
    {"bridge_username", KVCONF_STR, F(bridge_username), 0, 0, KE_DEFAULT_BRIDGE_USERNAME, NULL,
     NULL},
    {"bridge_password", KVCONF_STR, F(bridge_password), 0, 0, "", NULL, NULL},
    {"bridge_password_file", KVCONF_STR, F(bridge_password_file), 0, 0, "", NULL, NULL},
    {"auth_mode", KVCONF_STR, F(auth_mode), 0, 0, "open", NULL, auth_choices},
    {"db_lock", KVCONF_STR, F(db_lock), 0, 0, "exclusive", NULL, lock_choices},
};
#undef F

/* The plugin's own wording: mosquitto.conf names the keys plugin_opt_*. */
static void report(void *arg, const struct kvconf_error *e)
{
    (void)arg;
    if (e->fault == KVCONF_UNKNOWN)
        kedge_log(KEDGE_LOG_ERR, "kedge: unknown option plugin_opt_%.*s", (int)e->name_len,
                  e->name);
    else if (e->fault == KVCONF_NOT_LONG)
        kedge_log(KEDGE_LOG_ERR, "kedge: plugin_opt_%s '%s' is not a number in [%ld, %ld]",
                  e->key->key, e->value, e->key->min, e->key->max);
    else
        kedge_log(KEDGE_LOG_ERR, "kedge: plugin_opt_%s '%s' is not one of the allowed values",
                  e->key->key, e->value);
}

static struct kvconf table(struct plugin_config *cfg)
{
    struct kvconf c = {rows, sizeof(rows) / sizeof(rows[0]), cfg, false, report, NULL};

    return c;
}

/* The bridge's password may live in a file (mode 0600, first line), shared with the bridge's
 * and kedge-ctl's configuration, so it never has to sit in mosquitto.conf. */
static int read_password_file(struct plugin_config *cfg)
{
    char *pw;
    int rc;

    if (!*cfg->bridge_password_file)
        return 0;
    rc = kvconf_read_secret("kedge: plugin_opt_bridge_password_file", cfg->bridge_password_file,
                            &pw);
    if (rc < 0)
        return rc;
    kedge_free(cfg->bridge_password);
    cfg->bridge_password = pw;
    return 0;
}

static int check_whole(struct plugin_config *cfg)
{
    int rc = read_password_file(cfg);

    if (rc < 0)
        return rc;
    if (!*cfg->bridge_password)
        kedge_log(KEDGE_LOG_WARN, "kedge: no bridge password (plugin_opt_bridge_password or "
                                  "plugin_opt_bridge_password_file): $ke/ is closed to everyone");
    if (!*cfg->bridge_username) {
        kedge_log(KEDGE_LOG_ERR, "kedge: plugin_opt_bridge_username is empty");
        return KEDGE_ECONFIG;
    }
    if (!cfg->node_name || !*cfg->node_name) {
        kedge_log(KEDGE_LOG_ERR, "kedge: plugin_opt_node_name is required (the edge node's name, "
                                 "as the bridge and the cloud know it)");
        return KEDGE_ECONFIG;
    }
    if (strchr(cfg->node_name, '/') || strchr(cfg->node_name, '+') || strchr(cfg->node_name, '#')) {
        kedge_log(KEDGE_LOG_ERR, "kedge: plugin_opt_node_name '%s' must be one topic level",
                  cfg->node_name);
        return KEDGE_ECONFIG;
    }
    if (!*cfg->db_path) {
        kedge_log(KEDGE_LOG_ERR, "kedge: plugin_opt_db_path is empty");
        return KEDGE_ECONFIG;
    }
    return 0;
}

int options_parse(struct plugin_config *cfg, const struct mosquitto_opt *opts, int n)
{
    struct kvconf c = table(cfg);
    int k, rc;

    memset(cfg, 0, sizeof(*cfg));
    rc = kvconf_defaults(&c);
    for (k = 0; k < n && rc == 0; k++)
        rc = kvconf_set_name(&c, opts[k].key, strlen(opts[k].key),
                             opts[k].value ? opts[k].value : "", NULL);
    if (rc == 0)
        rc = check_whole(cfg);
    if (rc < 0)
        options_cleanup(cfg);
    return rc;
}

void options_cleanup(struct plugin_config *cfg)
{
    struct kvconf c = table(cfg);

    kvconf_free(&c);
}
