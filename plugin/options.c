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
#include "kedge/log.h"
#include "kedge/util.h"
#include "options.h"

enum opt_type { OPT_STR, OPT_INT };

struct opt_row {
    const char *key;
    enum opt_type type;
    size_t field;
    long min, max;
    const char *def; /* NULL: required */
    const char *const *choices;
};

static const char *const sync_choices[] = {"normal", "full", NULL};
static const char *const level_choices[] = {"err", "warn", "notice", "info", "debug", NULL};
static const char *const auth_choices[] = {"open", "defer", NULL};
static const char *const lock_choices[] = {"exclusive", "shared", NULL};
static const char *const policy_choices[] = {"refuse", "drop-oldest", NULL};

#define F(m) offsetof(struct plugin_config, m)
static const struct opt_row rows[] = {
    /* key                 type     field                     min  max        default */
    {"db_path", OPT_STR, F(db_path), 0, 0, "/var/lib/kedge/kedge.db", NULL},
    {"node_name", OPT_STR, F(node_name), 0, 0, NULL, NULL},
    {"max_payload_bytes", OPT_INT, F(max_payload_bytes), 256, 16 << 20, "65536", NULL},
    {"commit_interval_ms", OPT_INT, F(commit_interval_ms), 0, 10000, "0", NULL},
    {"commit_batch", OPT_INT, F(commit_batch), 1, 100000, "512", NULL},
    {"sync", OPT_STR, F(sync), 0, 0, "normal", sync_choices},
    {"log_level", OPT_STR, F(log_level), 0, 0, "info", level_choices},
    /* upload rows waiting for the bridge; twin and state reports are not counted (coalesced) */
    {"outbox_max", OPT_INT, F(outbox_max), 1, 100000000, "100000", NULL},
    /* one upload's encoded beehive message: the bridge's max_frame_bytes (cloudcore v1.15.4
     * sets no websocket read limit, so the bridge's frame limit is the binding one) */
    {"max_upload_bytes", OPT_INT, F(max_upload_bytes), 1024, 1L << 30, "16777216", NULL},
    {"upload_budget_bytes", OPT_INT, F(upload_budget_bytes), 1024, 1L << 50, "268435456", NULL},
    {"upload_policy", OPT_STR, F(upload_policy), 0, 0, "refuse", policy_choices},
    {"bridge_username", OPT_STR, F(bridge_username), 0, 0, KE_DEFAULT_BRIDGE_USERNAME, NULL},
    {"bridge_password", OPT_STR, F(bridge_password), 0, 0, "", NULL},
    {"bridge_password_file", OPT_STR, F(bridge_password_file), 0, 0, "", NULL},
    {"auth_mode", OPT_STR, F(auth_mode), 0, 0, "open", auth_choices},
    {"db_lock", OPT_STR, F(db_lock), 0, 0, "exclusive", lock_choices},
};
#undef F

static int in_choices(const char *v, const char *const *choices)
{
    for (; *choices; choices++)
        if (!strcmp(v, *choices))
            return 1;
    return 0;
}

static int set_value(struct plugin_config *cfg, const struct opt_row *row, const char *value)
{
    char *base = (char *)cfg;

    if (row->type == OPT_INT) {
        long v;
        if (kedge_parse_long(value, row->min, row->max, &v) < 0) {
            kedge_log(KEDGE_LOG_ERR, "kedge: plugin_opt_%s '%s' is not a number in [%ld, %ld]",
                      row->key, value, row->min, row->max);
            return KEDGE_ECONFIG;
        }
        *(long *)(void *)(base + row->field) = v;
        return 0;
    }
    if (row->choices && !in_choices(value, row->choices)) {
        kedge_log(KEDGE_LOG_ERR, "kedge: plugin_opt_%s '%s' is not one of the allowed values",
                  row->key, value);
        return KEDGE_ECONFIG;
    }
    char **slot = (char **)(void *)(base + row->field);
    char *copy = kedge_strdup(value);
    if (!copy)
        return -ENOMEM;
    kedge_free(*slot);
    *slot = copy;
    return 0;
}

static const struct opt_row *find_row(const char *key)
{
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (!strcmp(rows[i].key, key))
            return &rows[i];
    return NULL;
}

/* The bridge's password may live in a file (mode 0600, first line), shared with the bridge's
 * and kedge-ctl's configuration, so it never has to sit in mosquitto.conf. */
static int read_password_file(struct plugin_config *cfg)
{
    char *pw;
    int rc;

    if (!*cfg->bridge_password_file)
        return 0;
    rc = kedge_read_secret(cfg->bridge_password_file, &pw);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        kedge_log(KEDGE_LOG_ERR, "kedge: plugin_opt_bridge_password_file %s: %s",
                  cfg->bridge_password_file,
                  rc == KEDGE_ECONFIG ? "no password on its first line" : strerror(-rc));
        return KEDGE_ECONFIG;
    }
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
    if (strchr(cfg->node_name, '/') || strchr(cfg->node_name, '+') ||
        strchr(cfg->node_name, '#')) {
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
    size_t i;
    int k, rc = 0;

    memset(cfg, 0, sizeof(*cfg));
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]) && rc == 0; i++)
        if (rows[i].def)
            rc = set_value(cfg, &rows[i], rows[i].def);
    for (k = 0; k < n && rc == 0; k++) {
        const struct opt_row *row = find_row(opts[k].key);
        if (!row) {
            kedge_log(KEDGE_LOG_ERR, "kedge: unknown option plugin_opt_%s", opts[k].key);
            rc = KEDGE_ECONFIG;
            break;
        }
        rc = set_value(cfg, row, opts[k].value ? opts[k].value : "");
    }
    if (rc == 0)
        rc = check_whole(cfg);
    if (rc < 0)
        options_cleanup(cfg);
    return rc;
}

void options_cleanup(struct plugin_config *cfg)
{
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (rows[i].type == OPT_STR) {
            char **slot = (char **)(void *)((char *)cfg + rows[i].field);
            kedge_free(*slot);
            *slot = NULL;
        }
    }
}
