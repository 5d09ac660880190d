/* mqttc.c: the harness's MQTT test clients (harness.h): libmosquitto with one network thread
 * per client, the CONNACK / SUBACK / PUBACK waits and the queue of received messages a test
 * takes from by topic filter. */
#define _GNU_SOURCE

#include "harness.h"
#include "proc.h"
#include "testsupport.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#define READY_TIMEOUT_MS 10000 /* the CONNACK deadline, before scaling */
#define ACK_TIMEOUT_MS 10000   /* SUBACK, PUBACK, PUBCOMP, UNSUBACK */
#define POLL_MS 10

/* ---------------------------------------------------------------------------------------------
 * Clients
 */

struct qmsg {
    struct qmsg *next;
    struct kh_msg m;
};

struct ack {
    int mid;
    int code; /* granted QoS or SUBACK failure; PUBACK/PUBREC/PUBCOMP reason; 0 for UNSUBACK */
};

struct kh_client {
    /* Settings: fixed once kh_client_connect has run. */
    int port;
    int protocol;
    char *id, *username, *password;
    char *will_topic;
    void *will_payload;
    int will_len, will_qos;
    bool will_retain;
    bool clean;

    struct mosquitto *mosq;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast on every change below */
    /* Guarded by mu. */
    bool stop;
    bool got_connack, connected, gone;
    int connack_code, disconnect_code;
    bool lost_message; /* a message could not be queued (allocation failure) */
    struct ack *acks;
    size_t n_acks, cap_acks;
    /* QoS 0 publishes: libmosquitto reports them written (on_publish) but nobody waits for
     * that; their mids are dropped, or an old one would answer a QoS 1 publish that got the
     * same mid after the 16-bit wrap (and the list would grow by one per publish) */
    int *unwanted;
    size_t n_unwanted, cap_unwanted;
    struct qmsg *head, *tail;
};

void kh_msg_cleanup(struct kh_msg *m)
{
    if (!m)
        return;
    free(m->topic);
    free(m->payload);
    memset(m, 0, sizeof(*m));
}

static void deadline_ts(struct timespec *ts, int64_t deadline)
{
    ts->tv_sec = (time_t)(deadline / 1000);
    ts->tv_nsec = (long)(deadline % 1000) * 1000000L;
}

/* Wait on c->cv until deadline (ms, monotonic). Caller holds c->mu. */
static void cv_wait(struct kh_client *c, int64_t deadline)
{
    struct timespec ts;

    deadline_ts(&ts, deadline);
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    struct kh_client *c = obj;

    (void)m;
    (void)flags;
    (void)props;
    pthread_mutex_lock(&c->mu);
    c->got_connack = true;
    c->connack_code = rc;
    c->connected = rc == 0;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* The connection ended (a DISCONNECT, or the loop failed): the first reason is kept. */
static void mark_gone(struct kh_client *c, int rc)
{
    pthread_mutex_lock(&c->mu);
    c->connected = false;
    if (!c->gone) {
        c->gone = true;
        c->disconnect_code = rc;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
    struct kh_client *c = obj;

    (void)m;
    (void)props;
    mark_gone(c, rc);
}

/* mid is in c->unwanted: take it out. Caller holds c->mu. */
static bool take_unwanted(struct kh_client *c, int mid)
{
    size_t i;

    for (i = 0; i < c->n_unwanted && c->unwanted[i] != mid; i++)
        ;
    if (i == c->n_unwanted)
        return false;
    c->unwanted[i] = c->unwanted[--c->n_unwanted];
    return true;
}

/* A QoS 0 publish's mid: its on_publish is dropped, whether it came already or comes later.
 * Without memory for the note the ack is simply kept (the old behaviour). */
static void ignore_ack(struct kh_client *c, int mid)
{
    size_t i;

    pthread_mutex_lock(&c->mu);
    for (i = 0; i < c->n_acks && c->acks[i].mid != mid; i++)
        ;
    if (i < c->n_acks) {
        c->acks[i] = c->acks[--c->n_acks];
    } else {
        if (c->n_unwanted == c->cap_unwanted) {
            size_t ncap = c->cap_unwanted ? c->cap_unwanted * 2 : 64;
            int *nu = realloc(c->unwanted, ncap * sizeof(*nu));
            if (nu) {
                c->unwanted = nu;
                c->cap_unwanted = ncap;
            }
        }
        if (c->n_unwanted < c->cap_unwanted)
            c->unwanted[c->n_unwanted++] = mid;
    }
    pthread_mutex_unlock(&c->mu);
}

static void add_ack(struct kh_client *c, int mid, int code)
{
    pthread_mutex_lock(&c->mu);
    if (take_unwanted(c, mid)) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (c->n_acks == c->cap_acks) {
        size_t ncap = c->cap_acks ? c->cap_acks * 2 : 16;
        struct ack *na = realloc(c->acks, ncap * sizeof(*na));
        if (!na) {
            /* The waiter times out; nothing better to do inside a libmosquitto callback. */
            kt_say("harness: out of memory recording ack mid=%d\n", mid);
            pthread_mutex_unlock(&c->mu);
            return;
        }
        c->acks = na;
        c->cap_acks = ncap;
    }
    c->acks[c->n_acks++] = (struct ack){mid, code};
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int rc,
                       const mosquitto_property *props)
{
    (void)m;
    (void)props;
    add_ack(obj, mid, rc);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int count, const int *granted,
                         const mosquitto_property *props)
{
    (void)m;
    (void)props;
    add_ack(obj, mid, count > 0 ? granted[0] : 0x80);
}

static void on_unsubscribe(struct mosquitto *m, void *obj, int mid, const mosquitto_property *props)
{
    (void)m;
    (void)props;
    add_ack(obj, mid, 0);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    struct kh_client *c = obj;
    struct qmsg *q = calloc(1, sizeof(*q));

    (void)m;
    (void)props;
    if (q) {
        q->m.topic = strdup(msg->topic);
        q->m.payload = malloc((size_t)msg->payloadlen + 1);
    }
    if (!q || !q->m.topic || !q->m.payload) {
        if (q)
            kh_msg_cleanup(&q->m);
        free(q);
        pthread_mutex_lock(&c->mu);
        c->lost_message = true;
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (msg->payloadlen > 0)
        memcpy(q->m.payload, msg->payload, (size_t)msg->payloadlen);
    q->m.payload[msg->payloadlen] = '\0';
    q->m.len = msg->payloadlen;
    q->m.qos = msg->qos;
    q->m.retain = msg->retain;

    pthread_mutex_lock(&c->mu);
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* The network thread: libmosquitto in "external thread" mode, so that publish/subscribe from the
 * test thread only queue packets and this loop writes them (mosquitto_threaded_set). Unlike
 * mosquitto_loop_forever it never reconnects: a lost connection is an event the test sees. */
static void *client_thread(void *arg)
{
    struct kh_client *c = arg;

    for (;;) {
        bool stop;
        int rc;

        pthread_mutex_lock(&c->mu);
        stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        rc = mosquitto_loop(c->mosq, POLL_MS, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            mark_gone(c, rc);
            break;
        }
    }
    return NULL;
}

static int mosq_to_errno(int rc)
{
    switch (rc) {
    case MOSQ_ERR_SUCCESS:
        return 0;
    case MOSQ_ERR_NOMEM:
        return -ENOMEM;
    case MOSQ_ERR_INVAL:
    case MOSQ_ERR_PAYLOAD_SIZE:
    case MOSQ_ERR_MALFORMED_UTF8:
    case MOSQ_ERR_QOS_NOT_SUPPORTED:
        return -EINVAL;
    case MOSQ_ERR_NO_CONN:
    case MOSQ_ERR_CONN_LOST:
        return -ENOTCONN;
    case MOSQ_ERR_ERRNO:
        return errno ? -errno : -EIO;
    default:
        return -EIO;
    }
}

struct kh_client *kh_client_create(int port, const char *client_id, const char *username,
                                   const char *password, int protocol_version)
{
    static unsigned long counter;
    struct kh_client *c;
    pthread_condattr_t ca;

    kh_harness_init();
    if (port <= 0 || port > 65535 || protocol_version < 0 || protocol_version > 5 ||
        (protocol_version > 0 && protocol_version < 3))
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->port = port;
    c->protocol = protocol_version ? protocol_version : MQTT_PROTOCOL_V311;
    c->clean = true;
    if (client_id)
        c->id = strdup(client_id);
    else if (asprintf(&c->id, "kh-%d-%lu", (int)getpid(),
                      __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED)) < 0)
        c->id = NULL;
    c->username = username ? strdup(username) : NULL;
    c->password = password ? strdup(password) : NULL;
    if (!c->id || (username && !c->username) || (password && !c->password))
        goto fail;
    if (pthread_mutex_init(&c->mu, NULL) != 0)
        goto fail;
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&c->mu);
        goto fail;
    }
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&c->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&c->mu);
        goto fail;
    }
    pthread_condattr_destroy(&ca);
    return c;
fail:
    free(c->id);
    free(c->username);
    free(c->password);
    free(c);
    return NULL;
}

int kh_client_set_will(struct kh_client *c, const char *topic, const void *payload, int len,
                       int qos, bool retain)
{
    char *t;
    void *p;

    if (c->mosq || !topic || qos < 0 || qos > 2)
        return -EINVAL;
    if (len < 0)
        len = payload ? (int)strlen(payload) : 0;
    t = strdup(topic);
    p = malloc(len > 0 ? (size_t)len : 1);
    if (!t || !p) {
        free(t);
        free(p);
        return -ENOMEM;
    }
    if (len > 0)
        memcpy(p, payload, (size_t)len);
    free(c->will_topic);
    free(c->will_payload);
    c->will_topic = t;
    c->will_payload = p;
    c->will_len = len;
    c->will_qos = qos;
    c->will_retain = retain;
    return 0;
}

int kh_client_set_clean_session(struct kh_client *c, bool clean)
{
    if (c->mosq)
        return -EINVAL;
    c->clean = clean;
    return 0;
}

int kh_client_connect(struct kh_client *c)
{
    mosquitto_property *props = NULL;
    int64_t deadline;
    int rc;

    if (c->mosq)
        return -EISCONN;
    c->mosq = mosquitto_new(c->id, c->clean, c);
    if (!c->mosq)
        return -ENOMEM;
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, c->protocol);
    mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_threaded_set(c->mosq, true);
    if (c->username) {
        rc = mosquitto_username_pw_set(c->mosq, c->username, c->password);
        if (rc != MOSQ_ERR_SUCCESS)
            return mosq_to_errno(rc);
    }
    if (c->will_topic) {
        rc = mosquitto_will_set(c->mosq, c->will_topic, c->will_len, c->will_payload, c->will_qos,
                                c->will_retain);
        if (rc != MOSQ_ERR_SUCCESS)
            return mosq_to_errno(rc);
    }
    mosquitto_connect_v5_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(c->mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(c->mosq, on_publish);
    mosquitto_subscribe_v5_callback_set(c->mosq, on_subscribe);
    mosquitto_unsubscribe_v5_callback_set(c->mosq, on_unsubscribe);
    mosquitto_message_v5_callback_set(c->mosq, on_message);

    /* v5 ends a session at disconnect unless CONNECT asks for an expiry interval. */
    if (!c->clean && c->protocol == MQTT_PROTOCOL_V5 &&
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 3600) !=
            MOSQ_ERR_SUCCESS)
        return -ENOMEM;
    errno = 0;
    rc = mosquitto_connect_bind_v5(c->mosq, "127.0.0.1", c->port, 60, NULL, props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS)
        return mosq_to_errno(rc);
    if (pthread_create(&c->thread, NULL, client_thread, c) != 0)
        return -EAGAIN;
    c->thread_started = true;

    deadline = kt_now_ms() + kh_scale_ms(READY_TIMEOUT_MS);
    pthread_mutex_lock(&c->mu);
    while (!c->got_connack && !c->gone && kt_now_ms() < deadline)
        cv_wait(c, deadline);
    if (c->got_connack)
        rc = c->connack_code;
    else
        rc = c->gone ? -ECONNRESET : -ETIMEDOUT;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

struct kh_client *kh_client_new(int port, const char *client_id, const char *username,
                                const char *password, int protocol_version)
{
    struct kh_client *c = kh_client_create(port, client_id, username, password, protocol_version);
    int rc;

    if (!c) {
        kt_say("harness: kh_client_create failed\n");
        return NULL;
    }
    rc = kh_client_connect(c);
    if (rc != 0) {
        if (rc < 0)
            kt_say("harness: client %s could not connect to port %d: %s\n", c->id, port,
                   strerror(-rc));
        else
            kt_say("harness: client %s was refused by port %d: CONNACK code 0x%02x\n", c->id, port,
                   (unsigned)rc);
        kh_client_free(c);
        return NULL;
    }
    return c;
}

/* Wait for the ack of mid. Returns its code, -ENOTCONN if the connection went, -ETIMEDOUT. */
static int wait_ack(struct kh_client *c, int mid)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(ACK_TIMEOUT_MS);
    int rc = -ETIMEDOUT;

    pthread_mutex_lock(&c->mu);
    for (;;) {
        size_t i;
        for (i = 0; i < c->n_acks && c->acks[i].mid != mid; i++)
            ;
        if (i < c->n_acks) {
            rc = c->acks[i].code;
            c->acks[i] = c->acks[--c->n_acks];
            break;
        }
        if (c->gone) {
            rc = -ENOTCONN;
            break;
        }
        if (kt_now_ms() >= deadline)
            break;
        cv_wait(c, deadline);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int kh_client_sub(struct kh_client *c, const char *filter, int qos)
{
    int mid = 0, rc;

    if (!c->mosq)
        return -ENOTCONN;
    rc = mosquitto_subscribe(c->mosq, &mid, filter, qos);
    if (rc != MOSQ_ERR_SUCCESS)
        return mosq_to_errno(rc);
    return wait_ack(c, mid);
}

int kh_client_unsub(struct kh_client *c, const char *filter)
{
    int mid = 0, rc;

    if (!c->mosq)
        return -ENOTCONN;
    rc = mosquitto_unsubscribe(c->mosq, &mid, filter);
    if (rc != MOSQ_ERR_SUCCESS)
        return mosq_to_errno(rc);
    rc = wait_ack(c, mid);
    return rc > 0 ? 0 : rc;
}

int kh_client_pub(struct kh_client *c, const char *topic, const void *payload, int len, int qos,
                  bool retain)
{
    int mid = 0, rc;

    if (!c->mosq)
        return -ENOTCONN;
    if (len < 0)
        len = payload ? (int)strlen(payload) : 0;
    rc = mosquitto_publish(c->mosq, &mid, topic, len, payload, qos, retain);
    if (rc != MOSQ_ERR_SUCCESS)
        return mosq_to_errno(rc);
    if (qos == 0) {
        ignore_ack(c, mid);
        return 0;
    }
    rc = wait_ack(c, mid);
    if (rc < 0)
        return rc;
    return rc < 0x80 ? 0 : rc;
}

/* Unlink and return the first queued message matching filter, or NULL. Caller holds c->mu. */
static struct qmsg *take_match(struct kh_client *c, const char *filter, bool unlink_it)
{
    struct qmsg *prev = NULL;

    for (struct qmsg *q = c->head; q; prev = q, q = q->next) {
        bool match = false;
        if (mosquitto_topic_matches_sub(filter, q->m.topic, &match) != MOSQ_ERR_SUCCESS || !match)
            continue;
        if (unlink_it) {
            if (prev)
                prev->next = q->next;
            else
                c->head = q->next;
            if (c->tail == q)
                c->tail = prev;
            q->next = NULL;
        }
        return q;
    }
    return NULL;
}

int kh_client_wait(struct kh_client *c, const char *filter, int timeout_ms, struct kh_msg *out)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);
    struct qmsg *q;

    if (out)
        memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->mu);
    while (!(q = take_match(c, filter, true)) && kt_now_ms() < deadline)
        cv_wait(c, deadline);
    if (!q && c->lost_message)
        kt_say("harness: client %s dropped a message (out of memory)\n", c->id);
    pthread_mutex_unlock(&c->mu);
    if (!q)
        return -ETIMEDOUT;
    if (out)
        *out = q->m;
    else
        kh_msg_cleanup(&q->m);
    free(q);
    return 0;
}

int kh_client_expect_none(struct kh_client *c, const char *filter, int quiet_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(quiet_ms);
    struct qmsg *q;

    pthread_mutex_lock(&c->mu);
    while (!(q = take_match(c, filter, false)) && kt_now_ms() < deadline)
        cv_wait(c, deadline);
    if (q)
        kt_say("harness: client %s got an unexpected message on %s (%d bytes): %.200s\n", c->id,
               q->m.topic, q->m.len, q->m.payload);
    pthread_mutex_unlock(&c->mu);
    return q ? 1 : 0;
}

int kh_client_drain(struct kh_client *c)
{
    struct qmsg *q;
    int n = 0;

    pthread_mutex_lock(&c->mu);
    q = c->head;
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->mu);
    while (q) {
        struct qmsg *next = q->next;
        kh_msg_cleanup(&q->m);
        free(q);
        q = next;
        n++;
    }
    return n;
}

bool kh_client_connected(struct kh_client *c)
{
    bool v;

    pthread_mutex_lock(&c->mu);
    v = c->connected;
    pthread_mutex_unlock(&c->mu);
    return v;
}

int kh_client_wait_disconnect(struct kh_client *c, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);
    int rc;

    pthread_mutex_lock(&c->mu);
    while (!c->gone && kt_now_ms() < deadline)
        cv_wait(c, deadline);
    rc = c->gone ? c->disconnect_code : -ETIMEDOUT;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static void stop_thread(struct kh_client *c)
{
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_mutex_unlock(&c->mu);
    if (c->thread_started) {
        pthread_join(c->thread, NULL);
        c->thread_started = false;
    }
}

void kh_client_abort(struct kh_client *c)
{
    if (!c->mosq)
        return;
    stop_thread(c);
    /* mosquitto_destroy closes the socket without sending DISCONNECT. */
    mosquitto_destroy(c->mosq);
    c->mosq = NULL;
    pthread_mutex_lock(&c->mu);
    c->connected = false;
    if (!c->gone) {
        c->gone = true;
        c->disconnect_code = MOSQ_ERR_CONN_LOST;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void kh_client_free(struct kh_client *c)
{
    if (!c)
        return;
    if (c->mosq) {
        if (kh_client_connected(c) && mosquitto_disconnect(c->mosq) == MOSQ_ERR_SUCCESS)
            (void)kh_client_wait_disconnect(c, READY_TIMEOUT_MS);
        stop_thread(c);
        mosquitto_destroy(c->mosq);
        c->mosq = NULL;
    }
    kh_client_drain(c);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->acks);
    free(c->unwanted);
    free(c->will_topic);
    free(c->will_payload);
    free(c->id);
    free(c->username);
    free(c->password);
    free(c);
}
