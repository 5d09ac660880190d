/* kedge-ctl: the operator's CLI for a kedge node, so that a node without a cloud is fully usable.
 *
 * It speaks the $ke/ contract (include/kedge/ke.h) with the bridge identity: device add/rm are
 * the cloud's own membership update (kubeedge-wire.md §2.10) sent on $ke/down/{ref}, and
 * device list/get and status are $ke/ctl/{ref} queries. meta get/list ask kedge-bridge's
 * MetaManager on $ke/meta/{ref}. It owns argument and config parsing, one short MQTT session
 * (libmosquitto, single thread, mosquitto_loop with deadlines) and the printing; the plugin
 * owns every decision about devices, the bridge every decision about metadata.
 *
 * `import` is the one command without the network: it copies a KubeEdge node's edgecore.db
 * (kubeedge-wire.md §3) into the bridge's meta DB and the plugin's DB, with both services
 * stopped (import.c-sized, so it lives at the end of this file).
 *
 * It never hangs: every wait has a deadline (-t, default 5 s, per step), and an alarm() backs
 * them all up in case a system call blocks (a DNS lookup of -h, say).
 *
 * Exit codes: 0 ok, 1 refused or not found, 2 usage (or a bad config file), 3 cannot connect,
 * authentication refused, not authorised on $ke/, or no answer in time.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <sqlite3.h>

#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/ke.h"
#include "kedge/kebody.h"
#include "kedge/kvconf.h"
#include "kedge/msg.h"
#include "kedge/schema.h"
#include "kedge/twin.h"
#include "kedge/util.h"

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

/* ---- configuration ------------------------------------------------------------------------ */

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

/* Output goes through these two, so that a failed write is handled in one place: stderr has
 * nowhere better to go, and stdout's error state is checked once before exit (main). */
__attribute__((format(printf, 1, 2))) static void out(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vprintf(fmt, ap);
    va_end(ap);
}

/* "kedge-ctl: " + the message, on stderr. */
__attribute__((format(printf, 1, 2))) static void complain(const char *fmt, ...)
{
    va_list ap;

    (void)fputs("kedge-ctl: ", stderr);
    va_start(ap, fmt);
    (void)vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static void usage(FILE *f)
{
    (void)fprintf(
        f,
        "usage: kedge-ctl [-h HOST] [-p PORT] [-u USER] [-P PASSWORD_FILE] [-c BRIDGE_CONF]\n"
        "                 [-t TIMEOUT_S] COMMAND\n"
        "\n"
        "commands:\n"
        "  device add ID [--twin NAME:TYPE]... [--description TEXT]\n"
        "                      TYPE: string|int|integer|float|boolean\n"
        "  device rm ID\n"
        "  device list\n"
        "  device get ID [--table]   the twin get result as indented JSON (or a table)\n"
        "  status                    outbox, bridge and cloud links, devices, db size\n"
        "  meta get RESOURCE [--source]\n"
        "                      an object of the node's metadata (ns/type/name, e.g.\n"
        "                      default/configmap/cm1) as kedge-bridge's MetaManager answers it:\n"
        "                      from the cloud while connected for configmaps, secrets and the\n"
        "                      other remote-first types, else from its store\n"
        "  meta list TYPE            every stored object of a type (configmap, pod, ...)\n"
        "  outbox list [--limit N]   the head of the plugin's and the bridge's queues to the\n"
        "                      cloud, and the bridge's dead letters (entries the cloud\n"
        "                      refused poison_after times or never answered)\n"
        "  outbox show p:SEQ|b:ID|d:ID   one entry with its message (a bare SEQ: p:SEQ)\n"
        "  outbox retry d:ID         a dead letter back to the bridge queue's tail\n"
        "  outbox drop p:SEQ|b:ID|d:ID   delete one entry (logged and counted)\n"
        "  import EDGECORE_DB [--meta-db PATH] [--plugin-db PATH]\n"
        "                      copy a KubeEdge node's edgecore.db: meta and sub_topics into the\n"
        "                      bridge's meta DB (--meta-db, or meta_db_path in BRIDGE_CONF);\n"
        "                      device, device_attr, device_twin and sub_topics into the plugin's\n"
        "                      DB (--plugin-db, its plugin_opt_db_path). Stop mosquitto and\n"
        "                      kedge-bridge first: both hold their DB while they run\n"
        "\n"
        "options:\n"
        "  -h HOST           broker host (default %s, or broker_host in BRIDGE_CONF)\n"
        "  -p PORT           broker port (default %d, or broker_port)\n"
        "  -u USER           bridge identity (default %s, or broker_username)\n"
        "  -P PASSWORD_FILE  its password, first line (default %s,\n"
        "                    or broker_password_file)\n"
        "  -c BRIDGE_CONF    kedge-bridge's config file (default %s)\n"
        "  -t TIMEOUT_S      seconds to wait for each step (default %d)\n"
        "  --help            this text\n"
        "\n"
        "exit: 0 ok, 1 refused or not found, 2 usage, 3 cannot connect, auth failure or "
        "timeout\n",
        DEFAULT_HOST, DEFAULT_PORT, KE_DEFAULT_BRIDGE_USERNAME, DEFAULT_PASSWORD_FILE, DEFAULT_CONF,
        DEFAULT_TIMEOUT_S);
}

static void die_oom(void)
{
    complain("out of memory\n");
    exit(EXIT_CONNECT);
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);

    if (!d)
        die_oom();
    return d;
}

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
static int config_build(struct ctl_config *cfg, const struct ctl_args *a)
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

static void config_cleanup(struct ctl_config *cfg)
{
    struct kvconf c = conf_table(cfg);

    kvconf_free(&c);
    memset(cfg, 0, sizeof(*cfg));
}

/* The first line of the password file (the plugin reads plugin_opt_bridge_password_file the
 * same way). Returns a heap string, or NULL after printing why. */
static char *password_read(const char *path)
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

/* ---- the MQTT session --------------------------------------------------------------------- */

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

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    struct session *s = obj;

    (void)m;
    (void)flags;
    (void)props;
    s->conn_done = true;
    s->connack = rc;
    s->connected = rc == 0;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
    struct session *s = obj;

    (void)m;
    (void)props;
    if (!s->lost)
        s->disconnect_rc = rc;
    s->lost = true;
    s->connected = false;
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int count, const int *granted,
                         const mosquitto_property *props)
{
    struct session *s = obj;

    (void)m;
    (void)props;
    if (mid != s->wait_mid)
        return;
    s->acked = true;
    s->ack_code = count > 0 ? granted[0] : 0x80;
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int rc,
                       const mosquitto_property *props)
{
    struct session *s = obj;

    (void)m;
    (void)props;
    if (mid != s->wait_mid)
        return;
    s->acked = true;
    s->ack_code = rc;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    struct session *s = obj;

    (void)m;
    (void)props;
    if (s->have_reply || !s->want_topic || strcmp(msg->topic, s->want_topic) != 0)
        return;
    kedge_buf_reset(&s->reply);
    if (kedge_buf_append(&s->reply, msg->payload, (size_t)msg->payloadlen) < 0)
        die_oom();
    s->have_reply = true;
}

enum wait_for { WAIT_CONNACK, WAIT_ACK, WAIT_REPLY };

static bool waited(const struct session *s, enum wait_for w)
{
    switch (w) {
    case WAIT_CONNACK:
        return s->conn_done;
    case WAIT_ACK:
        return s->acked;
    default:
        return s->have_reply;
    }
}

/* Run the network loop until w happened. Returns 0, -ETIMEDOUT at the step's deadline, or
 * -ECONNRESET when the connection failed or went (*err_no: errno of the failure, or 0 with the
 * reason in s->loop_rc). */
static int pump(struct session *s, enum wait_for w, int *err_no)
{
    *err_no = 0;
    while (!waited(s, w)) {
        uint64_t now = kedge_now_ms();
        int rc;

        if (s->lost)
            return -ECONNRESET;
        if (now >= s->deadline_ms)
            return -ETIMEDOUT;
        errno = 0;
        rc = mosquitto_loop(s->mosq, (int)(s->deadline_ms - now < 100 ? s->deadline_ms - now : 100),
                            1);
        if (rc != MOSQ_ERR_SUCCESS && !waited(s, w)) {
            *err_no = rc == MOSQ_ERR_ERRNO ? errno : 0;
            s->loop_rc = rc;
            s->lost = true;
            return -ECONNRESET;
        }
    }
    return 0;
}

static const char *lost_reason(const struct session *s, int err_no)
{
    if (err_no)
        return strerror(err_no);
    if (s->loop_rc && s->loop_rc != MOSQ_ERR_CONN_LOST)
        return mosquitto_strerror(s->loop_rc);
    return "the broker closed the connection";
}

static void step_start(struct session *s)
{
    s->deadline_ms = kedge_now_ms() + s->step_ms;
}

static void session_close(struct session *s)
{
    if (s->mosq) {
        if (s->connected)
            (void)mosquitto_disconnect(s->mosq);
        mosquitto_destroy(s->mosq);
    }
    kedge_buf_cleanup(&s->reply);
    s->mosq = NULL;
}

/* Connect with the bridge identity and wait for the CONNACK. Returns 0 or EXIT_CONNECT after
 * printing why. */
static int session_open(struct session *s, const struct ctl_config *cfg, const char *password)
{
    char client_id[48];
    int rc, err_no;

    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->step_ms = (uint64_t)cfg->timeout_s * 1000;
    (void)snprintf(client_id, sizeof(client_id), "kedge-ctl-%ld", (long)getpid());
    s->mosq = mosquitto_new(client_id, true, s);
    if (!s->mosq)
        die_oom();
    (void)mosquitto_int_option(s->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    if (mosquitto_username_pw_set(s->mosq, cfg->user, password) != MOSQ_ERR_SUCCESS) {
        complain("user name '%s' is not usable in MQTT\n", cfg->user);
        return EXIT_USAGE;
    }
    mosquitto_connect_v5_callback_set(s->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(s->mosq, on_disconnect);
    mosquitto_subscribe_v5_callback_set(s->mosq, on_subscribe);
    mosquitto_publish_v5_callback_set(s->mosq, on_publish);
    mosquitto_message_v5_callback_set(s->mosq, on_message);

    step_start(s);
    errno = 0;
    /* async: the TCP connect must not block past our deadline */
    rc = mosquitto_connect_async(s->mosq, cfg->host, (int)cfg->port,
                                 (int)(cfg->timeout_s * 2 > 10 ? cfg->timeout_s * 2 : 10));
    if (rc != MOSQ_ERR_SUCCESS) {
        complain("cannot connect to %s:%ld: %s\n", cfg->host, cfg->port,
                 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return EXIT_CONNECT;
    }
    rc = pump(s, WAIT_CONNACK, &err_no);
    if (rc == -ETIMEDOUT) {
        complain("no answer from the broker at %s:%ld within %ld s\n", cfg->host, cfg->port,
                 cfg->timeout_s);
        return EXIT_CONNECT;
    }
    if (rc < 0) {
        complain("cannot connect to %s:%ld: %s\n", cfg->host, cfg->port, lost_reason(s, err_no));
        return EXIT_CONNECT;
    }
    if (s->connack != 0) {
        complain("the broker at %s:%ld refused user '%s': %s (check the password "
                 "file against plugin_opt_bridge_password of kedge_plugin.so)\n",
                 cfg->host, cfg->port, cfg->user, mosquitto_reason_string(s->connack));
        return EXIT_CONNECT;
    }
    return 0;
}

/* Publish payload on topic and wait for the answer on topic + "/result" (the plugin sends it
 * to our client id, the bridge to the topic; the subscription also proves we may use $ke/).
 * who: what should have answered, for the message when nothing does ("kedge_plugin.so loaded
 * in", "kedge-bridge connected to").
 * Returns 0 with the answer in s->reply, or EXIT_CONNECT after printing why. */
static int session_request(struct session *s, const char *topic, const char *payload, size_t len,
                           const char *who)
{
    struct kedge_buf result_topic = KEDGE_BUF_INIT;
    const struct ctl_config *cfg = s->cfg;
    int rc, err_no, mid = 0;

    if (kedge_buf_printf(&result_topic, "%s%s", topic, KE_RESULT_SUFFIX) < 0)
        die_oom();
    s->want_topic = result_topic.data;
    s->have_reply = false;

    step_start(s);
    s->acked = false;
    rc = mosquitto_subscribe(s->mosq, &mid, result_topic.data, 1);
    if (rc != MOSQ_ERR_SUCCESS)
        goto lost;
    s->wait_mid = mid;
    rc = pump(s, WAIT_ACK, &err_no);
    if (rc < 0)
        goto fail;
    if (s->ack_code >= 0x80) {
        complain("user '%s' may not use %s (%s): only the bridge identity "
                 "(plugin_opt_bridge_username) may\n",
                 cfg->user, KE_PREFIX, mosquitto_reason_string(s->ack_code));
        rc = EXIT_CONNECT;
        goto out;
    }

    s->acked = false;
    rc = mosquitto_publish(s->mosq, &mid, topic, (int)len, payload, 1, false);
    if (rc != MOSQ_ERR_SUCCESS)
        goto lost;
    s->wait_mid = mid;
    rc = pump(s, WAIT_ACK, &err_no);
    if (rc < 0)
        goto fail;
    if (s->ack_code >= 0x80) {
        complain("the broker refused the request on %s: %s\n", topic,
                 mosquitto_reason_string(s->ack_code));
        rc = EXIT_CONNECT;
        goto out;
    }

    rc = pump(s, WAIT_REPLY, &err_no);
    if (rc == -ETIMEDOUT) {
        complain("no answer on %s within %ld s (is %s the broker at %s:%ld?)\n", result_topic.data,
                 cfg->timeout_s, who, cfg->host, cfg->port);
        rc = EXIT_CONNECT;
        goto out;
    }
    if (rc < 0)
        goto fail;
    rc = 0;
    goto out;
lost:
    err_no = rc == MOSQ_ERR_ERRNO ? errno : 0;
    s->loop_rc = rc;
    rc = -ECONNRESET;
fail:
    if (rc == -ETIMEDOUT)
        complain("the broker at %s:%ld did not acknowledge within %ld s\n", cfg->host, cfg->port,
                 cfg->timeout_s);
    else
        complain("lost the connection to %s:%ld: %s\n", cfg->host, cfg->port,
                 lost_reason(s, err_no));
    rc = EXIT_CONNECT;
out:
    s->want_topic = NULL;
    kedge_buf_cleanup(&result_topic);
    return rc;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* {prefix}{ref} with body to the plugin or the bridge (who, whose: for messages); the answer
 * parsed into *doc (caller frees). Returns 0 or an exit code after printing why. */
static int json_query(struct session *s, const char *prefix, const char *who, const char *whose,
                      const struct kebody_request *req, struct kedge_jdoc **doc)
{
    char ref[KEDGE_UUID_LEN + 1];
    struct kedge_buf topic = KEDGE_BUF_INIT, body = KEDGE_BUF_INIT;
    int rc;

    *doc = NULL;
    kedge_uuid4(ref);
    if (kedge_buf_printf(&topic, "%s%s", prefix, ref) < 0 || kebody_request_encode(&body, req) < 0)
        die_oom();
    rc = session_request(s, topic.data, body.data, body.len, who);
    kedge_buf_cleanup(&topic);
    kedge_buf_cleanup(&body);
    if (rc)
        return rc;
    if (kedge_json_parse(s->reply.data, s->reply.len, doc) < 0 ||
        kedge_jdoc_root(*doc)->type != KEDGE_JOBJ) {
        complain("%s answer is not a JSON object: %.*s\n", whose, (int)s->reply.len,
                 s->reply.data ? s->reply.data : "");
        kedge_jdoc_free(*doc);
        *doc = NULL;
        return EXIT_REFUSED;
    }
    return 0;
}

/* $ke/ctl/{ref}: the plugin. */
static int ctl_query(struct session *s, const struct kebody_request *req, struct kedge_jdoc **doc)
{
    return json_query(s, KE_CTL_PREFIX, PLUGIN_WHO, "the plugin's", req, doc);
}

/* A request that is only its op. */
static int ctl_op(struct session *s, const char *op, struct kedge_jdoc **doc)
{
    struct kebody_request req = {.op = op};

    return ctl_query(s, &req, doc);
}

static const char *jstr(const struct kedge_jval *obj, const char *key)
{
    const struct kedge_jval *v = kedge_json_get(obj, key);

    return v && v->type == KEDGE_JSTR ? v->str : NULL;
}

/* The code of an error answer ({"code":404,"reason":...}), or 0 for a normal one. */
static int64_t answer_code(const struct kedge_jval *root)
{
    struct kebody_result res;

    kebody_result_read(root, &res);
    return res.code;
}

/* device_get for id: *doc is the answer, *found whether the device exists. */
static int device_lookup(struct session *s, const char *id, struct kedge_jdoc **doc, bool *found)
{
    struct kebody_request req = {.op = "device_get", .id_str = id, .id_len = strlen(id)};
    int rc = ctl_query(s, &req, doc);

    if (rc)
        return rc;
    *found = answer_code(kedge_jdoc_root(*doc)) == 0;
    if (!*found && answer_code(kedge_jdoc_root(*doc)) != 404) {
        const char *reason = jstr(kedge_jdoc_root(*doc), "reason");
        complain("device_get refused (code %lld): %s\n",
                 (long long)answer_code(kedge_jdoc_root(*doc)), reason ? reason : "");
        kedge_jdoc_free(*doc);
        *doc = NULL;
        return EXIT_REFUSED;
    }
    return 0;
}

/* A membership update (§2.10) on $ke/down/{msg_id}, as the cloud's device controller sends it.
 * content: the membership JSON. Returns 0 when the plugin answered {"ok":true}. */
static int down_membership(struct session *s, const char *content, size_t len)
{
    struct kedge_msg m = {0};
    struct kedge_buf msg = KEDGE_BUF_INIT, topic = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    struct kebody_result res;
    int rc;

    m.source = "kedge-ctl";
    m.group = "twin";
    m.resource = "membership";
    m.operation = "update";
    m.content = (char *)content;
    m.content_len = len;
    if (kedge_msg_new_id(&m) < 0 || kedge_msg_encode(&msg, &m, false) < 0 ||
        kedge_buf_printf(&topic, "%s%s", KE_DOWN_PREFIX, m.msg_id) < 0)
        die_oom();
    rc = session_request(s, topic.data, msg.data, msg.len, PLUGIN_WHO);
    if (rc)
        goto out;
    rc = EXIT_REFUSED;
    if (kebody_result_decode(s->reply.data, s->reply.len, &doc, &res) < 0 && !doc) {
        complain("the plugin's answer is not JSON: %.*s\n", (int)s->reply.len, s->reply.data);
        goto out;
    }
    if (res.ok) {
        rc = 0;
    } else {
        complain("refused by the node (code %lld): %s\n", (long long)res.code,
                 res.reason ? res.reason : "(no reason given)");
    }
out:
    kedge_jdoc_free(doc);
    kedge_free(m.msg_id);
    kedge_buf_cleanup(&msg);
    kedge_buf_cleanup(&topic);
    return rc;
}

/* ---- validation ---------------------------------------------------------------------------- */

/* A device id is `namespace/name` (KubeEdge v1.17+) or a bare `name`: one or two topic levels
 * of Kubernetes-name characters, so that every $hw/events/device/{id}/... topic parses. */
static bool device_id_valid(const char *id)
{
    const char *p = id;
    int levels = 0;

    for (;;) {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");
        if (n == 0 || n > ID_LEVEL_MAX)
            return false;
        levels++;
        p += n;
        if (*p == '\0')
            return levels <= 2;
        if (*p != '/')
            return false;
        p++;
    }
}

/* rm and get take any id the node may hold (the cloud's membership update is not held to the
 * rule above), so that a device added with an odd id can still be looked at and removed. */
static bool device_id_usable(const char *id)
{
    const unsigned char *p = (const unsigned char *)id;

    if (!*p || strlen(id) > 2 * ID_LEVEL_MAX + 1)
        return false;
    for (; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static const char *const twin_types[] = {"string", "int", "integer", "float", "boolean"};

struct twin_spec {
    char *name;
    const char *type;
};

static int cmp_twin_spec(const void *a, const void *b)
{
    return strcmp(((const struct twin_spec *)a)->name, ((const struct twin_spec *)b)->name);
}

/* NAME:TYPE; NAME may itself hold ':' (KubeEdge's key charset allows it), TYPE never does. */
static int twin_spec_parse(const char *arg, struct twin_spec *out)
{
    const char *colon = strrchr(arg, ':');
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!colon || colon == arg) {
        complain("--twin '%s': expected NAME:TYPE\n", arg);
        return EXIT_USAGE;
    }
    for (i = 0; i < sizeof(twin_types) / sizeof(twin_types[0]); i++)
        if (!strcmp(colon + 1, twin_types[i]))
            out->type = twin_types[i];
    if (!out->type) {
        complain("--twin '%s': type '%s' is not one of string, int, integer, float, "
                 "boolean\n",
                 arg, colon + 1);
        return EXIT_USAGE;
    }
    if (!kedge_twin_key_valid(arg, (size_t)(colon - arg))) {
        complain("--twin '%s': %s\n", arg, KEDGE_REASON_KEY);
        return EXIT_USAGE;
    }
    out->name = strndup(arg, (size_t)(colon - arg));
    if (!out->name)
        die_oom();
    return 0;
}

/* ---- commands ------------------------------------------------------------------------------ */

struct cmd_ctx {
    const struct ctl_config *cfg;
    char *password;
    struct session s;
    bool open;
};

/* Read the password and connect, once the command's arguments are known to be fine (a usage
 * error must not depend on the password file or the broker). */
static int connect_once(struct cmd_ctx *c)
{
    if (c->open)
        return 0;
    c->open = true;
    c->password = password_read(c->cfg->password_file);
    if (!c->password)
        return EXIT_CONNECT;
    return session_open(&c->s, c->cfg, c->password);
}

/* A long option with a value, "--name VALUE" or "--name=VALUE", at argv[*i].
 * Returns 1 with *value set (and *i moved past it), 0 when argv[*i] is not --name, or -1 when
 * the value is missing. */
static int long_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);

    if (strncmp(argv[*i], name, n) != 0 || (argv[*i][n] != '=' && argv[*i][n] != '\0'))
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (*i + 1 >= argc) {
        complain("%s needs a value\n", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

static void write_device(struct kedge_jw *w, const char *id, const char *description,
                         const struct twin_spec *twins, size_t n)
{
    const char *slash = strrchr(id, '/');
    size_t i;

    kedge_jw_arr_open(w);
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "id", id);
    kedge_jw_kstr(w, "name", slash ? slash + 1 : id);
    if (description && *description)
        kedge_jw_kstr(w, "description", description);
    if (n) {
        kedge_jw_key(w, "twin");
        kedge_jw_obj_open(w);
        for (i = 0; i < n; i++) {
            kedge_jw_key(w, twins[i].name);
            kedge_jw_obj_open(w);
            kedge_jw_key(w, "metadata");
            kedge_jw_obj_open(w);
            kedge_jw_kstr(w, "type", twins[i].type);
            kedge_jw_obj_close(w);
            kedge_jw_obj_close(w);
        }
        kedge_jw_obj_close(w);
    }
    kedge_jw_obj_close(w);
    kedge_jw_arr_close(w);
}

/* The membership update content (§2.10): one device added (with its twins' names and types, no
 * values: those come from the device) or removed. */
static void write_membership(struct kedge_jw *w, const char *id, const char *description,
                             const struct twin_spec *twins, size_t n, bool add)
{
    char uuid[KEDGE_UUID_LEN + 1];

    kedge_uuid4(uuid);
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "event_id", uuid);
    kedge_jw_kint(w, "timestamp", kedge_wall_ms());
    kedge_jw_key(w, "added_devices");
    if (add)
        write_device(w, id, description, twins, n);
    else
        kedge_jw_null(w);
    kedge_jw_key(w, "removed_devices");
    if (add)
        kedge_jw_null(w);
    else
        write_device(w, id, NULL, NULL, 0);
    kedge_jw_obj_close(w);
}

static int cmd_device_add(struct cmd_ctx *c, int argc, char **argv)
{
    struct twin_spec *twins = NULL;
    const char *id = NULL, *description = NULL, *v;
    struct kedge_buf content = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    struct kedge_jw w;
    size_t n = 0, i;
    bool found;
    int rc = 0;

    twins = calloc((size_t)argc + 1, sizeof(*twins));
    if (!twins)
        die_oom();
    for (int k = 0; k < argc && rc == 0; k++) {
        int t = long_value(argc, argv, &k, "--twin", &v), d = 0;

        if (t == 0)
            d = long_value(argc, argv, &k, "--description", &v);
        if (t < 0 || d < 0) {
            rc = EXIT_USAGE;
        } else if (t) {
            rc = twin_spec_parse(v, &twins[n]);
            if (rc == 0)
                n++;
        } else if (d) {
            description = v;
        } else if (argv[k][0] == '-' || id) {
            complain("device add: unexpected '%s'\n", argv[k]);
            rc = EXIT_USAGE;
        } else {
            id = argv[k];
        }
    }
    if (rc)
        goto out;
    if (!id) {
        complain("device add: missing ID\n");
        rc = EXIT_USAGE;
        goto out;
    }
    if (!device_id_valid(id)) {
        complain("device id '%s' must be NAMESPACE/NAME or NAME, of letters, "
                 "digits, '-', '_' and '.'\n",
                 id);
        rc = EXIT_USAGE;
        goto out;
    }
    /* Go prints map keys sorted; the plugin keeps twins sorted by name too */
    qsort(twins, n, sizeof(*twins), cmp_twin_spec);
    for (i = 1; i < n; i++) {
        if (!strcmp(twins[i - 1].name, twins[i].name)) {
            complain("twin '%s' given twice\n", twins[i].name);
            rc = EXIT_USAGE;
            goto out;
        }
    }
    kedge_jw_init(&w, &content);
    write_membership(&w, id, description, twins, n, true);
    if (kedge_jw_finish(&w) < 0)
        die_oom();

    rc = connect_once(c);
    if (rc == 0)
        rc = device_lookup(&c->s, id, &doc, &found);
    if (rc)
        goto out;
    if (found) {
        /* the cloud's membership update would only sync twins of a known device; an operator
         * asking to add it again more likely typed the wrong id */
        complain("device %s already exists on this node (device rm it first)\n", id);
        rc = EXIT_REFUSED;
        goto out;
    }
    rc = down_membership(&c->s, content.data, content.len);
    if (rc == 0)
        out("device %s added with %zu twin%s\n", id, n, n == 1 ? "" : "s");
out:
    for (i = 0; i < n; i++)
        free(twins[i].name);
    free(twins);
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&content);
    return rc;
}

static int cmd_device_rm(struct cmd_ctx *c, int argc, char **argv)
{
    struct kedge_buf content = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    struct kedge_jw w;
    bool found;
    int rc;

    if (argc != 1) {
        complain("usage: device rm ID\n");
        return EXIT_USAGE;
    }
    if (!device_id_usable(argv[0])) {
        complain("'%s' is not a device id\n", argv[0]);
        return EXIT_USAGE;
    }
    kedge_jw_init(&w, &content);
    write_membership(&w, argv[0], NULL, NULL, 0, false);
    if (kedge_jw_finish(&w) < 0)
        die_oom();
    rc = connect_once(c);
    if (rc == 0)
        rc = device_lookup(&c->s, argv[0], &doc, &found);
    if (rc == 0 && !found) {
        complain("device %s not found\n", argv[0]);
        rc = EXIT_REFUSED;
    }
    if (rc == 0)
        rc = down_membership(&c->s, content.data, content.len);
    if (rc == 0)
        out("device %s removed\n", argv[0]);
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&content);
    return rc;
}

/* ---- printing ------------------------------------------------------------------------------ */

static void print_json_string(const char *s, size_t len)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    if (kedge_json_escape(&b, s, len) < 0)
        die_oom();
    out("%.*s", (int)b.len, b.data);
    kedge_buf_cleanup(&b);
}

static void print_json(const struct kedge_jval *v, int indent)
{
    const struct kedge_jval *m;

    switch (v->type) {
    case KEDGE_JNULL:
        out("null");
        break;
    case KEDGE_JBOOL:
        out("%s", v->boolean ? "true" : "false");
        break;
    case KEDGE_JNUM:
        out("%.*s", (int)v->len, v->str);
        break;
    case KEDGE_JSTR:
        print_json_string(v->str, v->len);
        break;
    case KEDGE_JOBJ:
    case KEDGE_JARR:
        if (!v->child) {
            out("%s", v->type == KEDGE_JOBJ ? "{}" : "[]");
            break;
        }
        out("%c", v->type == KEDGE_JOBJ ? '{' : '[');
        for (m = v->child; m; m = m->next) {
            out("\n%*s", (indent + 1) * 2, "");
            if (v->type == KEDGE_JOBJ) {
                print_json_string(m->key, m->key_len);
                out(": ");
            }
            print_json(m, indent + 1);
            if (m->next)
                out(",");
        }
        out("\n%*s%c", indent * 2, "", v->type == KEDGE_JOBJ ? '}' : ']');
        break;
    }
}

/* A table: rows of ncol cells (borrowed), columns padded to their widest cell. */
static void print_table(const char *const *cells, size_t nrows, size_t ncol)
{
    size_t width[8] = {0}, r, k;

    for (r = 0; r < nrows; r++)
        for (k = 0; k < ncol; k++)
            if (strlen(cells[r * ncol + k]) > width[k])
                width[k] = strlen(cells[r * ncol + k]);
    for (r = 0; r < nrows; r++) {
        for (k = 0; k < ncol; k++) {
            if (k + 1 < ncol)
                out("%-*s  ", (int)width[k], cells[r * ncol + k]);
            else
                out("%s\n", cells[r * ncol + k]);
        }
    }
}

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

static int cmd_device_list(struct cmd_ctx *c, int argc)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *devs, *d;
    const char **cells = NULL;
    size_t n = 1;
    int rc;

    if (argc != 0) {
        complain("usage: device list\n");
        return EXIT_USAGE;
    }
    rc = connect_once(c);
    if (rc == 0)
        rc = ctl_op(&c->s, "device_list", &doc);
    if (rc)
        return rc;
    devs = kedge_json_get(kedge_jdoc_root(doc), "devices");
    if (!devs || devs->type != KEDGE_JARR) {
        complain("the plugin's answer has no device list: %.*s\n", (int)c->s.reply.len,
                 c->s.reply.data);
        rc = EXIT_REFUSED;
        goto out;
    }
    cells = calloc((devs->n + 1) * 4, sizeof(*cells));
    if (!cells)
        die_oom();
    cells[0] = "ID";
    cells[1] = "NAME";
    cells[2] = "STATE";
    cells[3] = "LAST_ONLINE";
    for (d = devs->child; d; d = d->next, n++) {
        cells[n * 4 + 0] = or_dash(jstr(d, "id"));
        cells[n * 4 + 1] = or_dash(jstr(d, "name"));
        cells[n * 4 + 2] = or_dash(jstr(d, "state"));
        cells[n * 4 + 3] = or_dash(jstr(d, "last_online"));
    }
    print_table(cells, n, 4);
out:
    free(cells);
    kedge_jdoc_free(doc);
    return rc;
}

static const char *twin_value(const struct kedge_jval *twin, const char *side)
{
    return or_dash(jstr(kedge_json_get(twin, side), "value"));
}

/* Arguments of the form OPERAND [FLAG], in any order: exactly one operand, the flag optional.
 * Returns 0, or -1 after printing the usage line. */
static int one_operand(int argc, char **argv, const char *flag, const char **operand, bool *set,
                       const char *usage)
{
    for (int k = 0; k < argc; k++) {
        if (!strcmp(argv[k], flag)) {
            *set = true;
        } else if (argv[k][0] == '-' || *operand) {
            *operand = NULL;
            break;
        } else {
            *operand = argv[k];
        }
    }
    if (!*operand) {
        complain("usage: %s\n", usage);
        return -1;
    }
    return 0;
}

static int cmd_device_get(struct cmd_ctx *c, int argc, char **argv)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *twins, *t;
    const char *id = NULL, **cells = NULL;
    bool table = false, found;
    size_t n = 1;
    int rc;

    if (one_operand(argc, argv, "--table", &id, &table, "device get ID [--table]") < 0)
        return EXIT_USAGE;
    if (!device_id_usable(id)) {
        complain("'%s' is not a device id\n", id);
        return EXIT_USAGE;
    }
    rc = connect_once(c);
    if (rc == 0)
        rc = device_lookup(&c->s, id, &doc, &found);
    if (rc)
        return rc;
    if (!found) {
        complain("device %s not found\n", id);
        rc = EXIT_REFUSED;
        goto out;
    }
    root = kedge_jdoc_root(doc);
    if (!table) {
        print_json(root, 0);
        out("\n");
        goto out;
    }
    twins = kedge_json_get(root, "twin");
    cells = calloc(((twins && twins->type == KEDGE_JOBJ ? twins->n : 0) + 1) * 4, sizeof(*cells));
    if (!cells)
        die_oom();
    cells[0] = "TWIN";
    cells[1] = "TYPE";
    cells[2] = "EXPECTED";
    cells[3] = "ACTUAL";
    if (twins && twins->type == KEDGE_JOBJ) {
        for (t = twins->child; t; t = t->next, n++) {
            cells[n * 4 + 0] = t->key;
            cells[n * 4 + 1] = or_dash(jstr(kedge_json_get(t, "metadata"), "type"));
            cells[n * 4 + 2] = twin_value(t, "expected");
            cells[n * 4 + 3] = twin_value(t, "actual");
        }
    }
    print_table(cells, n, 4);
out:
    free(cells);
    kedge_jdoc_free(doc);
    return rc;
}

static const char *fmt_bytes(char *buf, size_t len, int64_t n)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = (double)n / 1024;
    int u = 0;

    if (n < 0)
        return "unknown";
    if (n < 1024) {
        (void)snprintf(buf, len, "%lld B", (long long)n);
        return buf;
    }
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    (void)snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

static const char *fmt_age(char *buf, size_t len, int64_t ms)
{
    long long s = (long long)(ms / 1000);

    if (ms < 1000)
        (void)snprintf(buf, len, "%lld ms", (long long)ms);
    else if (s < 60)
        (void)snprintf(buf, len, "%.1f s", (double)ms / 1000);
    else if (s < 3600)
        (void)snprintf(buf, len, "%lldm %llds", s / 60, s % 60);
    else if (s < 86400)
        (void)snprintf(buf, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
    else
        (void)snprintf(buf, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
    return buf;
}

static bool has_suffix(const char *s, const char *sfx)
{
    size_t n = strlen(s), k = strlen(sfx);

    return n >= k && !strcmp(s + n - k, sfx);
}

/* One `key: value` line per member, in the plugin's order; nested objects (the bridge's own
 * report) are flattened with their key as a prefix. Sizes and times in human units:
 *   db_bytes              -> db_size: 120.0 KiB
 *   outbox_oldest_age_ms  -> outbox_oldest_age: 1.2 s   ("-" when the outbox is empty)
 *   *_ms (Unix ms, 0 = never), e.g. last_ack_ms -> last_ack: 3.0 s ago
 *   *_s  (Unix s, 0 = unknown), e.g. cert_not_after_s -> cert_not_after: <UTC time> (in 90d 2h)
 * anything else as sent (booleans as yes/no). */
static void print_status(const struct kedge_jval *obj, const char *prefix)
{
    const struct kedge_jval *m;
    int64_t depth = 0, now_ms = kedge_wall_ms();

    (void)kedge_json_int64(kedge_json_get(obj, "outbox_depth"), &depth);
    for (m = obj->child; m; m = m->next) {
        int64_t num = 0;
        bool is_num = m->type == KEDGE_JNUM && kedge_json_int64(m, &num) == 0;
        char name[128], text[64];

        (void)snprintf(name, sizeof(name), "%s%s", prefix, m->key);
        if (!strcmp(m->key, "db_bytes") && is_num) {
            out("%sdb_size: %s\n", prefix, fmt_bytes(text, sizeof(text), num));
        } else if (!strcmp(m->key, "outbox_oldest_age_ms") && is_num) {
            out("%soutbox_oldest_age: %s\n", prefix,
                depth == 0 ? "-" : fmt_age(text, sizeof(text), num));
        } else if (!strcmp(m->key, "outbox_oldest_ms") && is_num) {
            out("%soutbox_oldest_age: %s\n", prefix,
                num == 0 ? "-" : fmt_age(text, sizeof(text), now_ms > num ? now_ms - num : 0));
        } else if (has_suffix(m->key, "_ms") && is_num) {
            out("%.*s: %s%s\n", (int)(strlen(name) - 3), name,
                num == 0 ? "never" : fmt_age(text, sizeof(text), now_ms > num ? now_ms - num : 0),
                num == 0 ? "" : " ago");
        } else if (has_suffix(m->key, "_s") && is_num) {
            time_t t = (time_t)num;
            struct tm tm;
            char when[32] = "unknown";
            int64_t left_ms = num * 1000 - now_ms;

            if (num != 0 && gmtime_r(&t, &tm))
                (void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
            out("%.*s: %s", (int)(strlen(name) - 2), name, when);
            if (num != 0)
                out(left_ms >= 0 ? " (in %s)" : " (%s ago)",
                    fmt_age(text, sizeof(text), left_ms >= 0 ? left_ms : -left_ms));
            out("\n");
        } else if (m->type == KEDGE_JOBJ) {
            char sub[160];
            if (snprintf(sub, sizeof(sub), "%s_", name) < (int)sizeof(sub))
                print_status(m, sub);
        } else if (m->type == KEDGE_JNULL && !strcmp(m->key, "bridge")) {
            out("%s: no report\n", name);
        } else if (m->type == KEDGE_JBOOL) {
            out("%s: %s\n", name, m->boolean ? "yes" : "no");
        } else if (m->type == KEDGE_JSTR) {
            out("%s: %s\n", name, m->str);
        } else {
            out("%s: ", name);
            print_json(m, 0);
            out("\n");
        }
    }
}

static int cmd_status(struct cmd_ctx *c, int argc)
{
    struct kedge_jdoc *doc = NULL;
    int rc;

    if (argc != 0) {
        complain("usage: status\n");
        return EXIT_USAGE;
    }
    rc = connect_once(c);
    if (rc == 0)
        rc = ctl_op(&c->s, "status", &doc);
    if (rc)
        return rc;
    print_status(kedge_jdoc_root(doc), "");
    kedge_jdoc_free(doc);
    return 0;
}

/* ---- meta: kedge-bridge's MetaManager ------------------------------------------------------ */

/* $ke/meta/{ref} with body; the answer parsed into *doc (caller frees). An {"ok":false} answer
 * is printed and returned as EXIT_REFUSED. Returns 0 or an exit code after printing why. */
static int meta_query(struct session *s, const struct kebody_request *req, struct kedge_jdoc **doc)
{
    struct kebody_result res;
    int rc = json_query(s, KE_META_PREFIX, BRIDGE_WHO, "the bridge's", req, doc);

    if (rc)
        return rc;
    kebody_result_read(kedge_jdoc_root(*doc), &res);
    if (!res.ok) {
        complain("%s\n", res.reason ? res.reason : "refused by the bridge (no reason given)");
        kedge_jdoc_free(*doc);
        *doc = NULL;
        return EXIT_REFUSED;
    }
    return 0;
}

/* The bridge may wait for the cloud up to this long: most of our own deadline, so its "no
 * answer from the cloud" reaches us before we give up on the bridge. */
static int64_t meta_timeout_ms(const struct ctl_config *cfg)
{
    return cfg->timeout_s * 1000 * 4 / 5;
}

static bool resource_usable(const char *r, bool need_name)
{
    const unsigned char *p = (const unsigned char *)r;
    const char *slash = strchr(r, '/');

    if (!*r || strlen(r) > 512 || !slash || slash == r || !slash[1] ||
        (need_name && (!strchr(slash + 1, '/') || strchr(slash + 1, '/')[1] == '\0')))
        return false;
    for (; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '+' || *p == '#')
            return false;
    return true;
}

static int cmd_meta_get(struct cmd_ctx *c, int argc, char **argv)
{
    struct kebody_request req = {.op = "query", .has_timeout_ms = KEBODY_INT};
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *obj;
    const char *resource = NULL;
    bool show_source = false;
    int rc;

    if (one_operand(argc, argv, "--source", &resource, &show_source,
                    "meta get RESOURCE [--source]") < 0)
        return EXIT_USAGE;
    if (!resource_usable(resource, true)) {
        complain("'%s' is not a resource: NAMESPACE/TYPE/NAME, e.g. default/configmap/cm1\n",
                 resource);
        return EXIT_USAGE;
    }
    req.resource = resource;
    req.resource_len = strlen(resource);
    req.timeout_ms = meta_timeout_ms(c->cfg);
    rc = connect_once(c);
    if (rc == 0)
        rc = meta_query(&c->s, &req, &doc);
    if (rc)
        return rc;
    obj = kedge_json_get(kedge_jdoc_root(doc), "object");
    if (!obj) {
        complain("the bridge's answer holds no object: %.*s\n", (int)c->s.reply.len,
                 c->s.reply.data);
        kedge_jdoc_free(doc);
        return EXIT_REFUSED;
    }
    if (show_source)
        out("source: %s\n", or_dash(jstr(kedge_jdoc_root(doc), "source")));
    print_json(obj, 0);
    out("\n");
    kedge_jdoc_free(doc);
    return 0;
}

static int cmd_meta_list(struct cmd_ctx *c, int argc, char **argv)
{
    struct kebody_request req = {.op = "list"};
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *objs, *o;
    const char **cells = NULL;
    size_t n = 1;
    int rc;

    if (argc != 1 || argv[0][0] == '-' || !*argv[0] || strchr(argv[0], '/')) {
        complain("usage: meta list TYPE (configmap, secret, pod, node, device, ...)\n");
        return EXIT_USAGE;
    }
    req.type = argv[0];
    req.type_len = strlen(argv[0]);
    rc = connect_once(c);
    if (rc == 0)
        rc = meta_query(&c->s, &req, &doc);
    if (rc)
        return rc;
    objs = kedge_json_get(kedge_jdoc_root(doc), "objects");
    if (!objs || objs->type != KEDGE_JARR) {
        complain("the bridge's answer has no object list: %.*s\n", (int)c->s.reply.len,
                 c->s.reply.data);
        kedge_jdoc_free(doc);
        return EXIT_REFUSED;
    }
    cells = calloc((objs->n + 1) * 2, sizeof(*cells));
    if (!cells)
        die_oom();
    cells[0] = "KEY";
    cells[1] = "RESOURCE_VERSION";
    for (o = objs->child; o; o = o->next, n++) {
        cells[n * 2 + 0] = or_dash(jstr(o, "key"));
        cells[n * 2 + 1] = or_dash(
            jstr(kedge_json_get(kedge_json_get(o, "object"), "metadata"), "resourceVersion"));
    }
    print_table(cells, n, 2);
    free(cells);
    kedge_jdoc_free(doc);
    return 0;
}

/* ---- outbox: the heads of both queues and the bridge's dead letters ------------------------ */

/* $ke/bctl/{ref}: kedge-bridge's queue and dead letters (include/kedge/ke.h). */
static int bctl_query(struct session *s, const struct kebody_request *req, struct kedge_jdoc **doc)
{
    return json_query(s, KE_BCTL_PREFIX, BRIDGE_WHO, "the bridge's", req, doc);
}

/* An answer with a "code" (404, 409, 400...): print its reason, EXIT_REFUSED. Else 0. */
static int refused(struct kedge_jdoc *doc, const char *what)
{
    struct kebody_result res;

    kebody_result_read(kedge_jdoc_root(doc), &res);
    if (!res.code)
        return 0;
    complain("%s: %s (code %lld)\n", what, or_dash(res.reason), (long long)res.code);
    return EXIT_REFUSED;
}

/* "p:12", "b:7", "d:3": which queue and which entry; a bare number is the plugin's seq.
 * 0, or EXIT_USAGE after saying why. */
static int outbox_ref(const char *ref, char *queue, int64_t *id)
{
    bool bare = *ref >= '0' && *ref <= '9';
    char *end;
    long long v;

    if (!bare && (strlen(ref) < 3 || !strchr("pbd", ref[0]) || ref[1] != ':'))
        goto bad;
    errno = 0;
    v = strtoll(bare ? ref : ref + 2, &end, 10);
    if (errno || *end || v <= 0)
        goto bad;
    *queue = bare ? 'p' : ref[0];
    *id = v;
    return 0;
bad:
    complain("'%s' is not an entry: p:SEQ (the plugin's queue), b:ID (the bridge's), d:ID (a "
             "dead letter), as outbox list shows them\n",
             ref);
    return EXIT_USAGE;
}

static const char *num(char (*cell)[24], int64_t v)
{
    (void)snprintf(*cell, sizeof(*cell), "%lld", (long long)v);
    return *cell;
}

static int64_t jint(const struct kedge_jval *o, const char *key)
{
    int64_t v = 0;

    (void)kedge_json_int64(kedge_json_get(o, key), &v);
    return v;
}

static bool jbool(const struct kedge_jval *o, const char *key)
{
    const struct kedge_jval *v = kedge_json_get(o, key);

    return v && v->type == KEDGE_JBOOL && v->boolean;
}

/* One table of an outbox_list / dead_list answer. which: 'p', 'b' or 'd'. */
static void print_entries(const struct kedge_jval *root, char which)
{
    static const char *const head[3][6] = {
        {"ENTRY", "RESOURCE", "BYTES", "AGE_S", "STATE", "-"},
        {"ENTRY", "RESOURCE", "BYTES", "AGE_S", "FAILURES", "STATE"},
        {"ENTRY", "RESOURCE", "BYTES", "AGE_S", "FAILURES", "REASON"},
    };
    const struct kedge_jval *list = kedge_json_get(root, "entries"), *e;
    int t = which == 'p' ? 0 : which == 'b' ? 1 : 2;
    size_t ncol = t == 0 ? 5 : 6, n = 1, k;
    char(*nums)[24];
    const char **cells;

    if (!list || list->type != KEDGE_JARR || !list->n) {
        out("  (empty)\n");
        return;
    }
    cells = calloc((list->n + 1) * ncol, sizeof(*cells));
    nums = calloc((list->n + 1) * 4, sizeof(*nums));
    if (!cells || !nums)
        die_oom();
    for (k = 0; k < ncol; k++)
        cells[k] = head[t][k];
    for (e = list->child; e; e = e->next, n++) {
        const char **row = cells + n * ncol;
        char(*nb)[24] = nums + n * 4;
        (void)snprintf(nb[0], sizeof(nb[0]), "%c:%lld", which,
                       (long long)jint(e, which == 'p' ? "seq" : "id"));
        row[0] = nb[0];
        row[1] = or_dash(jstr(e, "resource"));
        row[2] = num(&nb[1], jint(e, "bytes"));
        row[3] = num(&nb[2], jint(e, "age_ms") / 1000);
        if (t == 0) {
            row[4] = jbool(e, "subject") ? "coalesced" : "-";
            continue;
        }
        row[4] = num(&nb[3], jint(e, "failures"));
        row[5] = t == 2                  ? or_dash(jstr(e, "reason"))
                 : jbool(e, "in_flight") ? "in-flight"
                 : jbool(e, "blocked")   ? "waiting"
                                         : "queued";
    }
    print_table(cells, n, ncol);
    free(nums);
    free(cells);
}

static int cmd_outbox_list(struct cmd_ctx *c, int argc, char **argv)
{
    struct kebody_request req = {.op = "outbox_list", .has_limit = KEBODY_INT};
    struct kedge_jdoc *doc = NULL;
    char *end = NULL;
    long long limit = 20;
    int rc;

    if (argc == 2 && !strcmp(argv[0], "--limit")) {
        errno = 0;
        limit = strtoll(argv[1], &end, 10);
    }
    if ((argc != 0 && argc != 2) || (argc == 2 && (!end || *end || errno || limit < 1))) {
        complain("usage: outbox list [--limit N]\n");
        return EXIT_USAGE;
    }
    req.limit = limit;
    rc = connect_once(c);
    if (rc == 0)
        rc = ctl_query(&c->s, &req, &doc);
    if (rc)
        return rc;
    if (refused(doc, "the plugin's queue") == 0) {
        out("plugin queue: %lld entries, %lld upload bytes\n",
            (long long)jint(kedge_jdoc_root(doc), "depth"),
            (long long)jint(kedge_jdoc_root(doc), "bytes"));
        print_entries(kedge_jdoc_root(doc), 'p');
    }
    kedge_jdoc_free(doc);
    rc = bctl_query(&c->s, &req, &doc);
    if (rc == EXIT_CONNECT) {
        /* the plugin's queue is what matters most while the bridge is away: shown, exit 0 */
        out("bridge queue and dead letters: kedge-bridge did not answer (not running?)\n");
        return 0;
    }
    if (rc)
        return rc;
    out("bridge queue: %lld entries, %lld of %lld upload bytes\n",
        (long long)jint(kedge_jdoc_root(doc), "depth"),
        (long long)jint(kedge_jdoc_root(doc), "bytes"),
        (long long)jint(kedge_jdoc_root(doc), "budget_bytes"));
    print_entries(kedge_jdoc_root(doc), 'b');
    kedge_jdoc_free(doc);
    req.op = "dead_list";
    rc = bctl_query(&c->s, &req, &doc);
    if (rc)
        return rc;
    out("dead letters: %lld\n", (long long)jint(kedge_jdoc_root(doc), "count"));
    print_entries(kedge_jdoc_root(doc), 'd');
    kedge_jdoc_free(doc);
    return 0;
}

/* outbox show|drop|retry REF: one request to the queue REF names. */
static int cmd_outbox_act(struct cmd_ctx *c, const char *verb, int argc, char **argv)
{
    struct kebody_request req = {0};
    struct kedge_jdoc *doc = NULL;
    char queue, op[24];
    int64_t id;
    int rc;

    if (argc != 1) {
        complain("usage: outbox %s %s\n", verb,
                 !strcmp(verb, "retry") ? "d:ID" : "p:SEQ|b:ID|d:ID");
        return EXIT_USAGE;
    }
    rc = outbox_ref(argv[0], &queue, &id);
    if (rc)
        return rc;
    if (!strcmp(verb, "retry") && queue != 'd') {
        complain("only a dead letter (d:ID) can be retried; queued entries go on their own\n");
        return EXIT_USAGE;
    }
    (void)snprintf(op, sizeof(op), "%s_%s", queue == 'd' ? "dead" : "outbox", verb);
    req.op = op;
    if (queue == 'p') {
        req.has_seq = KEBODY_INT;
        req.seq = id;
    } else {
        req.has_id = KEBODY_INT;
        req.id = id;
    }
    rc = connect_once(c);
    if (rc == 0)
        rc = queue == 'p' ? ctl_query(&c->s, &req, &doc) : bctl_query(&c->s, &req, &doc);
    if (rc == 0)
        rc = refused(doc, argv[0]);
    if (rc == 0 && !strcmp(verb, "show")) {
        print_json(kedge_jdoc_root(doc), 0);
        out("\n");
    } else if (rc == 0) {
        out("%s: %s\n", argv[0], !strcmp(verb, "drop") ? "dropped" : "queued again");
    }
    kedge_jdoc_free(doc);
    return rc;
}

/* ---- import: edgecore.db into the bridge's and the plugin's databases ------------------------ */

/* The beego-era DDL (kubeedge-wire.md §3.1), so that a target that does not exist yet gets the
 * tables the bridge and the plugin would make themselves. */
static const char meta_ddl[] = KEDGE_SCHEMA_META;
static const char plugin_ddl[] = KEDGE_DDL_DEVICES KEDGE_DDL_SUB_TOPICS;

/* One table's copy: statements run in order inside the target's transaction; the row count is
 * the changes of the last one. Columns are named, so beego (<= v1.22) and gorm (v1.23+)
 * databases both work. device_attr / device_twin rows have their own ids in each database, so
 * the imported devices' rows replace ours by device instead of by id. */
struct import_table {
    const char *name;
    const char *const sql[3];
};

static const struct import_table meta_tables[] = {
    {"meta",
     {"INSERT OR REPLACE INTO main.`meta` (`key`, `type`, `value`) "
      "SELECT `key`, `type`, `value` FROM src.`meta`",
      NULL}},
    {"sub_topics",
     {"INSERT OR REPLACE INTO main.`sub_topics` (`topic`) SELECT `topic` FROM src.`sub_topics`",
      NULL}},
};

static const struct import_table plugin_tables[] = {
    {"device",
     {"INSERT OR REPLACE INTO main.`device` (`id`, `name`, `description`, `state`, `last_online`) "
      "SELECT `id`, `name`, `description`, `state`, `last_online` FROM src.`device`",
      NULL}},
    {"device_attr",
     {"DELETE FROM main.`device_attr` WHERE `deviceid` IN (SELECT `id` FROM src.`device`) "
      "OR `deviceid` IN (SELECT `deviceid` FROM src.`device_attr`)",
      "INSERT INTO main.`device_attr` (`deviceid`, `name`, `description`, `value`, `optional`, "
      "`attr_type`, `metadata`) SELECT `deviceid`, `name`, `description`, `value`, `optional`, "
      "`attr_type`, `metadata` FROM src.`device_attr` ORDER BY `id`",
      NULL}},
    {"device_twin",
     {"DELETE FROM main.`device_twin` WHERE `deviceid` IN (SELECT `id` FROM src.`device`) "
      "OR `deviceid` IN (SELECT `deviceid` FROM src.`device_twin`)",
      "INSERT INTO main.`device_twin` (`deviceid`, `name`, `description`, `expected`, `actual`, "
      "`expected_meta`, `actual_meta`, `expected_version`, `actual_version`, `optional`, "
      "`attr_type`, `metadata`) SELECT `deviceid`, `name`, `description`, `expected`, `actual`, "
      "`expected_meta`, `actual_meta`, `expected_version`, `actual_version`, `optional`, "
      "`attr_type`, `metadata` FROM src.`device_twin` ORDER BY `id`",
      NULL}},
    {"sub_topics",
     {"INSERT OR REPLACE INTO main.`sub_topics` (`topic`) SELECT `topic` FROM src.`sub_topics`",
      NULL}},
};

struct import_target {
    const char *what; /* "the bridge's meta DB", "the plugin's DB" */
    const char *path;
    const char *ddl;
    const struct import_table *tables;
    size_t n_tables;
    const char *stop_hint; /* which service holds it */
    bool flock;            /* kedge-bridge holds an flock on its meta DB while it runs */
};

/* "file:" URI of path, read-only, so that ATTACH never creates or changes the source. */
static void source_uri(struct kedge_buf *b, const char *path)
{
    static const char keep[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/";
    const unsigned char *p;

    if (kedge_buf_puts(b, "file:") < 0)
        die_oom();
    for (p = (const unsigned char *)path; *p; p++)
        if ((strchr(keep, *p) ? kedge_buf_putc(b, (char)*p) : kedge_buf_printf(b, "%%%02X", *p)) <
            0)
            die_oom();
    if (kedge_buf_puts(b, "?mode=ro") < 0)
        die_oom();
}

static bool busy(sqlite3 *db)
{
    int e = sqlite3_errcode(db);

    return e == SQLITE_BUSY || e == SQLITE_LOCKED;
}

static void complain_db(const struct import_target *t, sqlite3 *db, const char *doing)
{
    if (db && busy(db))
        complain("%s %s is in use: %s holds it while it runs. Stop %s first, then import "
                 "again (nothing was changed)\n",
                 t->what, t->path, t->stop_hint, t->stop_hint);
    else
        complain("%s %s: %s: %s (nothing was changed)\n", t->what, t->path, doing,
                 db ? sqlite3_errmsg(db) : "out of memory");
}

static bool source_has(sqlite3 *db, const char *table)
{
    sqlite3_stmt *st = NULL;
    bool has = false;

    if (sqlite3_prepare_v2(db, "SELECT 1 FROM src.sqlite_master WHERE type = 'table' AND name = ?1",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC) == SQLITE_OK)
        has = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return has;
}

/* One target's import: opened, locked and in its transaction (import_begin), filled
 * (import_copy), committed (import_commit), closed (import_end). Every target is begun before
 * any is filled, so a service still running is found before anything changes. */
struct import_job {
    const struct import_target *t;
    sqlite3 *db;
    int lock_fd;
    bool in_txn;
    long long counts[8];
};

/* Returns 0 or EXIT_REFUSED after printing why. */
static int import_begin(struct import_job *j, const struct import_target *t, const char *uri)
{
    sqlite3_stmt *st = NULL;
    int rc = EXIT_REFUSED;

    memset(j, 0, sizeof(*j));
    j->t = t;
    j->lock_fd = -1;
    if (sqlite3_open_v2(t->path, &j->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                        NULL) != SQLITE_OK) {
        complain_db(t, j->db, "cannot open");
        return rc;
    }
    (void)sqlite3_busy_timeout(j->db, 0); /* a held lock means a running service: say so now */
    if (t->flock) {
        j->lock_fd = open(t->path, O_RDONLY | O_CLOEXEC);
        if (j->lock_fd < 0 || flock(j->lock_fd, LOCK_EX | LOCK_NB) < 0) {
            if (errno == EWOULDBLOCK)
                complain("%s %s is in use: %s holds it while it runs. Stop %s first, then "
                         "import again (nothing was changed)\n",
                         t->what, t->path, t->stop_hint, t->stop_hint);
            else
                complain("%s %s: %s\n", t->what, t->path, strerror(errno));
            return rc;
        }
    }
    /* the plugin's exclusive lock shows here, before the source is involved */
    if (sqlite3_exec(j->db, "SELECT count(*) FROM main.sqlite_master", NULL, NULL, NULL) !=
        SQLITE_OK) {
        complain_db(t, j->db, "cannot read");
        return rc;
    }
    if (sqlite3_prepare_v2(j->db, "ATTACH DATABASE ?1 AS src", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE) {
        complain("cannot read %s: %s\n", uri, sqlite3_errmsg(j->db));
        sqlite3_finalize(st);
        return rc;
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(j->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        complain_db(t, j->db, "cannot start a transaction");
        return rc;
    }
    j->in_txn = true;
    if (sqlite3_exec(j->db, t->ddl, NULL, NULL, NULL) != SQLITE_OK) {
        complain_db(t, j->db, "cannot create its tables");
        return rc;
    }
    return 0;
}

/* Copy the target's tables from the source (inside its transaction). 0 or EXIT_REFUSED. */
static int import_copy(struct import_job *j)
{
    const struct import_target *t = j->t;
    size_t i, k;

    for (i = 0; i < t->n_tables; i++) {
        j->counts[i] = -1; /* not in the source */
        if (!source_has(j->db, t->tables[i].name))
            continue;
        for (k = 0; k < 3 && t->tables[i].sql[k]; k++) {
            if (sqlite3_exec(j->db, t->tables[i].sql[k], NULL, NULL, NULL) != SQLITE_OK) {
                complain_db(t, j->db, t->tables[i].name);
                return EXIT_REFUSED;
            }
        }
        j->counts[i] = sqlite3_changes(j->db);
    }
    return 0;
}

static int import_commit(struct import_job *j)
{
    const struct import_target *t = j->t;
    size_t i;

    if (sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        complain_db(t, j->db, "cannot commit");
        return EXIT_REFUSED;
    }
    j->in_txn = false;
    out("%s %s:", t->what, t->path);
    for (i = 0; i < t->n_tables; i++) {
        if (j->counts[i] < 0)
            out(" %s (not in the source)", t->tables[i].name);
        else
            out(" %s %lld", t->tables[i].name, j->counts[i]);
        out(i + 1 < t->n_tables ? "," : "\n");
    }
    return 0;
}

static void import_end(struct import_job *j)
{
    if (j->in_txn)
        (void)sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(j->db); /* NULL is a no-op */
    if (j->lock_fd >= 0)
        (void)close(j->lock_fd);
    memset(j, 0, sizeof(*j));
    j->lock_fd = -1;
}

static int cmd_import(struct cmd_ctx *c, int argc, char **argv)
{
    const char *src = NULL, *meta_db = c->cfg->meta_db_path, *plugin_db = NULL, *v;
    struct kedge_buf uri = KEDGE_BUF_INIT;
    struct import_target meta = {
        .what = "the bridge's meta DB",
        .ddl = meta_ddl,
        .tables = meta_tables,
        .n_tables = sizeof(meta_tables) / sizeof(meta_tables[0]),
        .stop_hint = "kedge-bridge",
        .flock = true,
    };
    struct import_target plugin = {
        .what = "the plugin's DB",
        .ddl = plugin_ddl,
        .tables = plugin_tables,
        .n_tables = sizeof(plugin_tables) / sizeof(plugin_tables[0]),
        .stop_hint = "mosquitto (kedge_plugin.so)",
    };
    struct import_job jobs[2];
    sqlite3 *probe = NULL;
    struct stat sst, tst;
    size_t i;
    int rc;

    for (int k = 0; k < argc; k++) {
        int lv = long_value(argc, argv, &k, "--meta-db", &v);
        if (lv == 1) {
            meta_db = v;
            continue;
        }
        if (lv == 0 && (lv = long_value(argc, argv, &k, "--plugin-db", &v)) == 1) {
            plugin_db = v;
            continue;
        }
        if (lv < 0 || argv[k][0] == '-' || src) {
            complain("usage: import EDGECORE_DB [--meta-db PATH] [--plugin-db PATH]\n");
            return EXIT_USAGE;
        }
        src = argv[k];
    }
    if (!src) {
        complain("usage: import EDGECORE_DB [--meta-db PATH] [--plugin-db PATH]\n");
        return EXIT_USAGE;
    }
    errno = 0;
    if (stat(src, &sst) < 0 || !S_ISREG(sst.st_mode)) {
        complain("cannot read %s: %s\n", src, errno ? strerror(errno) : "not a file");
        return EXIT_USAGE;
    }
    if ((stat(meta_db, &tst) == 0 && tst.st_ino == sst.st_ino && tst.st_dev == sst.st_dev) ||
        (plugin_db && stat(plugin_db, &tst) == 0 && tst.st_ino == sst.st_ino &&
         tst.st_dev == sst.st_dev)) {
        complain("%s is the source and a target\n", src);
        return EXIT_USAGE;
    }
    source_uri(&uri, src);
    /* is it a database at all? (before anything is written anywhere) */
    if (sqlite3_open_v2(uri.data, &probe, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(probe, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
        complain("%s is not a SQLite database: %s\n", src,
                 probe ? sqlite3_errmsg(probe) : "out of memory");
        sqlite3_close_v2(probe);
        kedge_buf_cleanup(&uri);
        return EXIT_REFUSED;
    }
    sqlite3_close_v2(probe);
    memset(jobs, 0, sizeof(jobs));
    jobs[0].lock_fd = jobs[1].lock_fd = -1;
    meta.path = meta_db;
    plugin.path = plugin_db;
    /* both begun (locked, in their transactions) before either is written */
    rc = import_begin(&jobs[0], &meta, uri.data);
    if (rc == 0 && plugin_db)
        rc = import_begin(&jobs[1], &plugin, uri.data);
    for (i = 0; rc == 0 && i < 2 && jobs[i].t; i++)
        rc = import_copy(&jobs[i]);
    for (i = 0; rc == 0 && i < 2 && jobs[i].t; i++)
        rc = import_commit(&jobs[i]);
    if (rc == 0 && !plugin_db)
        complain("devices, twins and sub_topics were not copied: give --plugin-db PATH "
                 "(plugin_opt_db_path in mosquitto.conf)\n");
    import_end(&jobs[0]);
    import_end(&jobs[1]);
    kedge_buf_cleanup(&uri);
    return rc;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void on_alarm(int sig)
{
    static const char msg[] = "kedge-ctl: timed out (a system call did not return in time)\n";

    (void)sig;
    (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
    _exit(EXIT_CONNECT);
}

static int parse_args(int argc, char **argv, struct ctl_args *a)
{
    int opt;

    memset(a, 0, sizeof(*a));
    opterr = 0;
    /* '+': stop at the command, whose own options are parsed by the command */
    while ((opt = getopt(argc, argv, "+h:p:u:P:c:t:")) != -1) {
        switch (opt) {
        case 'h':
            a->host = optarg;
            break;
        case 'p':
            if (kedge_parse_long(optarg, 1, 65535, &a->port) < 0) {
                complain("-p '%s' is not a port (1-65535)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'u':
            if (!*optarg) {
                complain("-u needs a user name\n");
                return EXIT_USAGE;
            }
            a->user = optarg;
            break;
        case 'P':
            a->password_file = optarg;
            break;
        case 'c':
            a->conf = optarg;
            break;
        case 't':
            if (kedge_parse_long(optarg, 1, MAX_TIMEOUT_S, &a->timeout_s) < 0) {
                complain("-t '%s' is not a number of seconds (1-%d)\n", optarg, MAX_TIMEOUT_S);
                return EXIT_USAGE;
            }
            break;
        default:
            if (optopt && strchr("hpuPct", optopt))
                complain("-%c needs a value\n", optopt);
            else
                complain("unknown option '%s'\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* Which command, before anything touches the network: 0 and *cmd set, or EXIT_USAGE. */
enum command {
    CMD_ADD,
    CMD_RM,
    CMD_LIST,
    CMD_GET,
    CMD_STATUS,
    CMD_META_GET,
    CMD_META_LIST,
    CMD_OUTBOX_LIST,
    CMD_OUTBOX_SHOW,
    CMD_OUTBOX_RETRY,
    CMD_OUTBOX_DROP,
    CMD_IMPORT
};

static int pick_command(int argc, char **argv, enum command *cmd, int *first_arg)
{
    if (argc >= 1 && !strcmp(argv[0], "status")) {
        *cmd = CMD_STATUS;
        *first_arg = 1;
        return 0;
    }
    if (argc >= 1 && !strcmp(argv[0], "import")) {
        *cmd = CMD_IMPORT;
        *first_arg = 1;
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[0], "meta") &&
        (!strcmp(argv[1], "get") || !strcmp(argv[1], "list"))) {
        *cmd = !strcmp(argv[1], "get") ? CMD_META_GET : CMD_META_LIST;
        *first_arg = 2;
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[0], "outbox")) {
        static const char *const subs[] = {"list", "show", "retry", "drop"};
        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
            if (!strcmp(argv[1], subs[i])) {
                *cmd = (enum command)(CMD_OUTBOX_LIST + (int)i);
                *first_arg = 2;
                return 0;
            }
        }
    }
    if (argc >= 2 && !strcmp(argv[0], "device")) {
        static const struct {
            const char *name;
            enum command cmd;
        } sub[] = {{"add", CMD_ADD}, {"rm", CMD_RM}, {"list", CMD_LIST}, {"get", CMD_GET}};
        for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
            if (!strcmp(argv[1], sub[i].name)) {
                *cmd = sub[i].cmd;
                *first_arg = 2;
                return 0;
            }
        }
    }
    if (argc == 0)
        usage(stderr);
    else if (!strcmp(argv[0], "device"))
        complain("device %s%s%s: use device add, rm, list or get (--help)\n",
                 argc > 1 ? "'" : "needs a subcommand", argc > 1 ? argv[1] : "",
                 argc > 1 ? "' is unknown" : "");
    else if (!strcmp(argv[0], "outbox"))
        complain("outbox %s%s%s: use outbox list, show, retry or drop (--help)\n",
                 argc > 1 ? "'" : "needs a subcommand", argc > 1 ? argv[1] : "",
                 argc > 1 ? "' is unknown" : "");
    else if (!strcmp(argv[0], "meta"))
        complain("meta %s%s%s: use meta get or list (--help)\n",
                 argc > 1 ? "'" : "needs a subcommand", argc > 1 ? argv[1] : "",
                 argc > 1 ? "' is unknown" : "");
    else
        complain("unknown command '%s' (--help lists them)\n", argv[0]);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    struct ctl_args args;
    struct ctl_config cfg = {0};
    struct cmd_ctx c;
    enum command cmd;
    int rc, first;

    for (int i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--"))
            break;
    }
    rc = parse_args(argc, argv, &args);
    if (rc)
        return rc;
    rc = pick_command(argc - optind, argv + optind, &cmd, &first);
    if (rc)
        return rc;
    rc = config_build(&cfg, &args);
    if (rc)
        goto out;
    (void)signal(SIGPIPE, SIG_IGN);
    (void)signal(SIGALRM, on_alarm);
    /* every step has its own deadline; this only catches a call that blocks past all of them */
    if (cmd != CMD_IMPORT) /* import has no network to wait for; a big copy takes its time */
        alarm((unsigned)(cfg.timeout_s * MAX_STEPS + 2));

    mosquitto_lib_init();
    memset(&c, 0, sizeof(c));
    c.cfg = &cfg;
    argc -= optind + first;
    argv += optind + first;
    switch (cmd) {
    case CMD_ADD:
        rc = cmd_device_add(&c, argc, argv);
        break;
    case CMD_RM:
        rc = cmd_device_rm(&c, argc, argv);
        break;
    case CMD_LIST:
        rc = cmd_device_list(&c, argc);
        break;
    case CMD_GET:
        rc = cmd_device_get(&c, argc, argv);
        break;
    case CMD_STATUS:
        rc = cmd_status(&c, argc);
        break;
    case CMD_META_GET:
        rc = cmd_meta_get(&c, argc, argv);
        break;
    case CMD_META_LIST:
        rc = cmd_meta_list(&c, argc, argv);
        break;
    case CMD_OUTBOX_LIST:
        rc = cmd_outbox_list(&c, argc, argv);
        break;
    case CMD_OUTBOX_SHOW:
        rc = cmd_outbox_act(&c, "show", argc, argv);
        break;
    case CMD_OUTBOX_RETRY:
        rc = cmd_outbox_act(&c, "retry", argc, argv);
        break;
    case CMD_OUTBOX_DROP:
        rc = cmd_outbox_act(&c, "drop", argc, argv);
        break;
    case CMD_IMPORT:
        rc = cmd_import(&c, argc, argv);
        break;
    }
    session_close(&c.s);
    mosquitto_lib_cleanup();
    if (c.password) {
        memset(c.password, 0, strlen(c.password));
        free(c.password);
    }
out:
    config_cleanup(&cfg);
    if (fflush(stdout) != 0 && rc == 0) {
        complain("cannot write the output: %s\n", strerror(errno));
        rc = EXIT_REFUSED;
    }
    return rc;
}
