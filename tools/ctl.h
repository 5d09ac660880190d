/* kedge-ctl's shared declarations: its configuration, its MQTT session, the command context,
 * and the helpers the command files share. */
#ifndef KEDGE_CTL_H
#define KEDGE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kedge/json.h"

struct mosquitto;
struct kebody_request;

#define DEFAULT_CONF "/etc/kedge/kedge-bridge.conf"
#define DEFAULT_PASSWORD_FILE "/etc/kedge/bridge.password"
#define DEFAULT_META_DB "/var/lib/kedge/meta.db"
#define PLUGIN_WHO "kedge_plugin.so loaded in"
#define BRIDGE_WHO "kedge-bridge running and connected to"
#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 1883
#define DEFAULT_TIMEOUT_S 5
#define MAX_TIMEOUT_S 3600
#define MAX_STEPS 5      /* connect + at most 3 requests + slack: sizes the backstop alarm */
#define ID_LEVEL_MAX 253 /* a Kubernetes object name */

enum exit_code {
    EXIT_OK = 0,
    EXIT_REFUSED = 1,
    EXIT_USAGE = 2,
    EXIT_CONNECT = 3,
};

struct ctl_config {
    char *host;
    long port;
    char *user;
    char *password_file;
    char *meta_db_path; /* import: the bridge's meta DB */
    long timeout_s;
};

/* Command-line values; NULL / 0 when not given, so the config file fills them in. */
struct ctl_args {
    const char *host, *user, *password_file, *conf;
    long port, timeout_s;
};

struct session {
    struct mosquitto *mosq;
    const struct ctl_config *cfg;
    uint64_t step_ms;     /* each step's deadline, from its start */
    uint64_t deadline_ms; /* the current step's */
    bool conn_done, connected, lost;
    int connack, disconnect_rc;
    int loop_rc; /* MOSQ_ERR_* of the loop call that failed */
    int wait_mid, ack_code;
    bool acked;
    const char *want_topic; /* the result topic of the request in flight */
    struct kedge_buf reply;
    bool have_reply;
};

struct cmd_ctx;
/* A command: the arguments after its words. Returns an exit code. */
typedef int cmd_fn(struct cmd_ctx *c, int argc, char **argv);

struct cmd_ctx {
    const struct ctl_config *cfg;
    char *password;
    struct session s;
    bool open;
};

/* ---- ctl_output.c ---- */

/* Output goes through these two, so that a failed write is handled in one place: stderr has
 * nowhere better to go, and stdout's error state is checked once before exit (main). */
__attribute__((format(printf, 1, 2))) void out(const char *fmt, ...);
/* "kedge-ctl: " + the message, on stderr. */
__attribute__((format(printf, 1, 2))) void complain(const char *fmt, ...);
void die_oom(void);
char *xstrdup(const char *s);
void print_json(const struct kedge_jval *v, int indent);
/* A table: rows of ncol cells (borrowed), columns padded to their widest cell. */
void print_table(const char *const *cells, size_t nrows, size_t ncol);
/* Cells for a header row (head, ncol cells) and rows more, zeroed; never NULL. */
const char **table_new(size_t rows, size_t ncol, const char *const *head);
/* print_table, then free the cells. */
void table_print(const char **cells, size_t nrows, size_t ncol);
const char *or_dash(const char *s);

/* ---- ctl_config.c ---- */

/* Defaults, then the config file, then the command line. Returns 0 or an exit code. */
int config_build(struct ctl_config *cfg, const struct ctl_args *a);
void config_cleanup(struct ctl_config *cfg);
/* The first line of the password file (the plugin reads plugin_opt_bridge_password_file the
 * same way). Returns a heap string, or NULL after printing why. */
char *password_read(const char *path);

/* ---- ctl_session.c ---- */

void session_close(struct session *s);
/* Connect with the bridge identity and wait for the CONNACK. Returns 0 or EXIT_CONNECT after
 * printing why. */
int session_open(struct session *s, const struct ctl_config *cfg, const char *password);
/* Publish payload on topic and wait for the answer on topic + "/result" (the plugin sends it
 * to our client id, the bridge to the topic; the subscription also proves we may use $ke/).
 * who: what should have answered, for the message when nothing does ("kedge_plugin.so loaded
 * in", "kedge-bridge connected to").
 * Returns 0 with the answer in s->reply, or EXIT_CONNECT after printing why. */
int session_request(struct session *s, const char *topic, const char *payload, size_t len,
                    const char *who);

/* ---- ctl_request.c ---- */

/* $ke/ctl/{ref}: the plugin. */
int ctl_query(struct session *s, const struct kebody_request *req, struct kedge_jdoc **doc);
typedef int query_fn(struct session *s, const struct kebody_request *req, struct kedge_jdoc **doc);
/* connect_once, then q(req): the answer in *doc. Returns 0 or an exit code after printing why. */
int ask(struct cmd_ctx *c, query_fn *q, const struct kebody_request *req, struct kedge_jdoc **doc);
/* ask, then the answer's member name (an array when list): 0 with *doc and *member set, or an
 * exit code after printing why; lacks says what is missing ("the bridge's answer holds no
 * object") and is printed with the answer. */
int ask_member(struct cmd_ctx *c, query_fn *q, const struct kebody_request *req, const char *name,
               bool list, const char *lacks, struct kedge_jdoc **doc,
               const struct kedge_jval **member);
const char *jstr(const struct kedge_jval *obj, const char *key);
/* The code of an error answer ({"code":404,"reason":...}), or 0 for a normal one. */
int64_t answer_code(const struct kedge_jval *root);
/* Read the password and connect, once the command's arguments are known to be fine (a usage
 * error must not depend on the password file or the broker). */
int connect_once(struct cmd_ctx *c);
/* $ke/meta/{ref} with body; the answer parsed into *doc (caller frees). An {"ok":false} answer
 * is printed and returned as EXIT_REFUSED. Returns 0 or an exit code after printing why. */
int meta_query(struct session *s, const struct kebody_request *req, struct kedge_jdoc **doc);
/* $ke/bctl/{ref}: kedge-bridge's queue and dead letters (include/kedge/ke.h). */
int bctl_query(struct session *s, const struct kebody_request *req, struct kedge_jdoc **doc);
/* An answer with a "code" (404, 409, 400...): print its reason, EXIT_REFUSED. Else 0. */
int refused(struct kedge_jdoc *doc, const char *what);
int64_t jint(const struct kedge_jval *o, const char *key);
bool jbool(const struct kedge_jval *o, const char *key);

/* ---- ctl_args.c ---- */

/* A long option with a value, "--name VALUE" or "--name=VALUE", at argv[*i].
 * Returns 1 with *value set (and *i moved past it), 0 when argv[*i] is not --name, or -1 when
 * the value is missing. */
int long_value(int argc, char **argv, int *i, const char *name, const char **value);
/* Arguments of the form OPERAND [FLAG], in any order: exactly one operand, the flag optional.
 * Returns 0, or -1 after printing the usage line. */
int one_operand(int argc, char **argv, const char *flag, const char **operand, bool *set,
                const char *usage);

/* ---- the commands (kedge_ctl.c's table runs them) ---- */

cmd_fn cmd_device_add, cmd_device_rm, cmd_device_list, cmd_device_get; /* ctl_device.c */
cmd_fn cmd_status;                                                     /* ctl_status.c */
cmd_fn cmd_meta_get, cmd_meta_list;                                    /* ctl_meta.c */
/* ctl_outbox.c; show|retry|drop REF: one request to the queue REF names */
cmd_fn cmd_outbox_list, cmd_outbox_show, cmd_outbox_retry, cmd_outbox_drop;
cmd_fn cmd_import;      /* ctl_import.c */
cmd_fn cmd_mapper_list; /* ctl_mapper.c */

#endif
