/* kedge-ctl's MQTT session: one short libmosquitto connection as the bridge identity, single
 * thread, every wait (connect, subscribe, publish, answer) bounded by the step's deadline. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>

#include "kedge/buf.h"
#include "kedge/ke.h"
#include "kedge/util.h"
#include "ctl.h"

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

/* The SUBACK or PUBACK of the step in flight, with its reason code. */
static void acked(struct session *s, int mid, int code)
{
    if (mid != s->wait_mid)
        return;
    s->acked = true;
    s->ack_code = code;
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int count, const int *granted,
                         const mosquitto_property *props)
{
    (void)m;
    (void)props;
    acked(obj, mid, count > 0 ? granted[0] : 0x80);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int rc,
                       const mosquitto_property *props)
{
    (void)m;
    (void)props;
    acked(obj, mid, rc);
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

void session_close(struct session *s)
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
int session_open(struct session *s, const struct ctl_config *cfg, const char *password)
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

/* Wait for the ack of the SUBSCRIBE or PUBLISH just sent (rc: what libmosquitto returned,
 * *mid: its message id). Returns 0 with s->ack_code, or -ECONNRESET / -ETIMEDOUT with *err_no. */
static int await_ack(struct session *s, int rc, const int *mid, int *err_no)
{
    if (rc != MOSQ_ERR_SUCCESS) {
        *err_no = rc == MOSQ_ERR_ERRNO ? errno : 0;
        s->loop_rc = rc;
        return -ECONNRESET;
    }
    s->wait_mid = *mid;
    return pump(s, WAIT_ACK, err_no);
}

/* Publish payload on topic and wait for the answer on topic + "/result" (the plugin sends it
 * to our client id, the bridge to the topic; the subscription also proves we may use $ke/).
 * who: what should have answered, for the message when nothing does ("kedge_plugin.so loaded
 * in", "kedge-bridge connected to").
 * Returns 0 with the answer in s->reply, or EXIT_CONNECT after printing why. */
int session_request(struct session *s, const char *topic, const char *payload, size_t len,
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
    rc = await_ack(s, mosquitto_subscribe(s->mosq, &mid, result_topic.data, 1), &mid, &err_no);
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
    rc = await_ack(s, mosquitto_publish(s->mosq, &mid, topic, (int)len, payload, 1, false), &mid,
                   &err_no);
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
