/* The plugin's settings: the plugin_opt_* lines of mosquitto.conf, parsed by a table and
 * validated as a whole (options.c). README.md lists every key with its default.
 */
#ifndef KEDGE_OPTIONS_H
#define KEDGE_OPTIONS_H

struct plugin_config {
    char *db_path;
    char *node_name;
    long max_payload_bytes;
    long commit_interval_ms;  /* 0: commit at the end of every broker loop turn */
    long commit_batch;        /* commit as soon as this many writes are pending */
    char *sync;               /* "normal" | "full": SQLite synchronous */
    char *log_level;          /* err | warn | notice | info | debug */
    long outbox_max;          /* cloud-bound upload rows kept for the bridge */
    long max_upload_bytes;    /* one upload's encoded message */
    long upload_budget_bytes; /* all waiting uploads' encoded messages */
    char *upload_policy;      /* refuse | drop-oldest: when an upload does not fit */
    char *bridge_username;    /* the only identity allowed under $ke/ */
    char *bridge_password;
    char *bridge_password_file;
    char *auth_mode; /* open | defer (to password_file / acl_file) */
    char *db_lock;   /* exclusive (fast; the broker alone opens the DB) | shared */
};

struct mosquitto_opt;
/* Parse plugin_opt_* into *cfg (zeroed first, defaults applied). Unknown keys are rejected
 * with a log line naming them. Returns 0 or KEDGE_ECONFIG / -ENOMEM. */
int options_parse(struct plugin_config *cfg, const struct mosquitto_opt *opts, int n);
void options_cleanup(struct plugin_config *cfg);

#endif
