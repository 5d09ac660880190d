/* kedge-ctl's configuration: defaults, then kedge-bridge's config file (the keys kedge-ctl
 * shares with the bridge, read with kvconf), then the command line; and the password file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/err.h"
#include "kedge/ke.h"
#include "kedge/kvconf.h"
#include "kedge/util.h"
#include "ctl.h"

static void set_str(char **slot, const char *v)
{
    free(*slot);
    *slot = xstrdup(v);
}

/* The keys kedge-ctl takes from kedge-bridge's config; the bridge's other keys are its own. */
#define F(m) offsetof(struct ctl_config, m)
static const struct kvconf_key conf_keys[] = {
    {"broker_host", KVCONF_STR, F(host), 0, 0, NULL, NULL, NULL},
    {"broker_port", KVCONF_LONG, F(port), 1, 65535, NULL, NULL, NULL},
    {"broker_username", KVCONF_STR, F(user), 0, 0, NULL, NULL, NULL},
    {"broker_password_file", KVCONF_STR, F(password_file), 0, 0, NULL, NULL, NULL},
    {"meta_db_path", KVCONF_STR, F(meta_db_path), 0, 0, NULL, NULL, NULL},
};
#undef F

static void conf_report(void *arg, const struct kvconf_error *e)
{
    (void)arg;
    if (e->fault == KVCONF_OPEN || e->fault == KVCONF_READ)
        complain("cannot read %s: %s\n", e->where, strerror(e->err));
    else if (e->fault == KVCONF_NOT_LONG)
        complain("%s: %s '%s' is not a port (1-65535)\n", e->where, e->key->key, e->value);
    else
        complain("%s: %s has no value\n", e->where, e->key->key);
}

static struct kvconf conf_table(struct ctl_config *cfg)
{
    struct kvconf c = {conf_keys, sizeof(conf_keys) / sizeof(conf_keys[0]), cfg, true, conf_report,
                       NULL};

    return c;
}

/* Read `key value` lines (mosquitto.conf syntax) into cfg. required: a missing file is an
 * error (it was named with -c). Returns 0, or EXIT_USAGE after printing the file and line. */
static int config_read(struct ctl_config *cfg, const char *path, bool required)
{
    struct kvconf c = conf_table(cfg);
    int rc = kvconf_file(&c, path, !required);

    if (rc == -ENOMEM)
        die_oom();
    return rc < 0 ? EXIT_USAGE : 0;
}

/* Defaults, then the config file, then the command line. Returns 0 or an exit code. */
int config_build(struct ctl_config *cfg, const struct ctl_args *a)
{
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    rc = config_read(cfg, a->conf ? a->conf : DEFAULT_CONF, a->conf != NULL);
    if (rc)
        return rc;
    if (a->host)
        set_str(&cfg->host, a->host);
    else if (!cfg->host)
        set_str(&cfg->host, DEFAULT_HOST);
    if (a->port)
        cfg->port = a->port;
    else if (!cfg->port)
        cfg->port = DEFAULT_PORT;
    if (a->user)
        set_str(&cfg->user, a->user);
    else if (!cfg->user)
        set_str(&cfg->user, KE_DEFAULT_BRIDGE_USERNAME);
    if (a->password_file)
        set_str(&cfg->password_file, a->password_file);
    else if (!cfg->password_file)
        set_str(&cfg->password_file, DEFAULT_PASSWORD_FILE);
    if (!cfg->meta_db_path)
        set_str(&cfg->meta_db_path, DEFAULT_META_DB);
    cfg->timeout_s = a->timeout_s ? a->timeout_s : DEFAULT_TIMEOUT_S;
    return 0;
}

void config_cleanup(struct ctl_config *cfg)
{
    struct kvconf c = conf_table(cfg);

    kvconf_free(&c);
    memset(cfg, 0, sizeof(*cfg));
}

/* The first line of the password file (the plugin reads plugin_opt_bridge_password_file the
 * same way). Returns a heap string, or NULL after printing why. */
char *password_read(const char *path)
{
    char *pw = NULL;
    int rc = kedge_read_secret(path, &pw);

    if (rc == KEDGE_ECONFIG)
        complain("%s holds no password on its first line\n", path);
    else if (rc < 0)
        complain("cannot read the bridge password file %s: %s (use -P FILE, "
                 "or broker_password_file in -c BRIDGE_CONF)\n",
                 path, strerror(-rc));
    return rc < 0 ? NULL : pw;
}
