/* The relay (relay.h says what it carries between the plugin and the bridge).
 *
 * libmosquitto runs without its own thread: its socket is adopted into the lws loop as a raw
 * descriptor, readable/writable events drive mosquitto_loop_read/write, and a one-second timer
 * runs mosquitto_loop_misc (MQTT keepalive) and the timeouts. So the one lws loop owns all
 * I/O and nothing blocks it (the connect to the local broker is the only blocking call, and
 * it is to a local socket).
 *
 * Plugin -> cloud: each $ke/outbox/{seq} is stored in the cloud queue; after the batch of one
 * read is committed, every seq in it is acked. Cloud -> plugin: $ke/down/{msg_id}, and the
 * caller is told when $ke/down/{msg_id}/result says the change is committed.
 * Local queries: the relay subscribes to $ke/meta/+ and hands each request to MetaManager,
 * whose answer goes out on $ke/meta/{ref}/result.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <mosquitto.h>

#include "fault.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/ke.h"
#include "kedge/kebody.h"
#include "kedge/log.h"
#include "kedge/util.h"
#include "relay.h"

#define MAX_PENDING_DOWN 10000
#define HELLO_RETRY_US (30 * LWS_USEC_PER_SEC)

struct pending_down {
    struct kedge_msg m; /* deep copy: handed back to done() */
    relay_done_fn done; /* one of done and result */
    relay_result_fn result;
    void *ctx;
    uint64_t deadline_ms;
    bool published;
};

struct relay {
    struct relay_config cfg;
    struct lws_context *lws;
    struct lws_vhost *vhost;
    struct cloudq *q;
    struct edgehub *hub;
    struct metamgr *meta;
    struct certwatch *certs;
    bool stopping;
    struct mosquitto *mosq;
    struct lws *wsi; /* the adopted MQTT socket */
    char client_id[128];
    bool connected, ready;
    bool link_up, link_state_sent;
    lws_sorted_usec_list_t tick; /* loop_misc, timeouts: every second */
    lws_sorted_usec_list_t reconnect;
    uint16_t retries;
    int64_t *acks; /* seqs stored in the open batch, acked after its commit */
    size_t n_acks, cap_acks;
    /* the seq of an upload the full budget refused (refuse policy): nothing from it on is
     * stored or acked until it fits, so the cumulative ack never passes it; 0 = none */
    int64_t refused_seq;
    int64_t uploads_refused; /* times a new refusal began */
    struct kedge_ratelimit full_rl;
    struct kedge_ratelimit msg_rl; /* lines that can repeat per message */
    struct pending_down *downs;
    size_t n_downs;
    relay_bctl_fn bctl; /* another $ke/bctl answerer (DMI's mapper_list) */
    void *bctl_ctx;
};

static void schedule_reconnect(struct relay *r);
static void commit_and_ack(struct relay *r);

/* ---- publishing ------------------------------------------------------------------------------ */

static void want_write(struct relay *r)
{
    if (r->wsi && mosquitto_want_write(r->mosq))
        lws_callback_on_writable(r->wsi);
}

static int publish(struct relay *r, const char *topic, const void *payload, size_t len)
{
    int rc = mosquitto_publish(r->mosq, NULL, topic, (int)len, payload, 1, false);

    want_write(r);
    if (rc != MOSQ_ERR_SUCCESS) {
        kedge_log_limited(&r->msg_rl, "relay", KEDGE_LOG_WARN, "relay: publish %s failed: %s",
                          topic, mosquitto_strerror(rc));
        return -EIO;
    }
    return 0;
}

static void send_hello(struct relay *r)
{
    struct kebody_hello h = {r->cfg.node_name, KE_VERSION};
    struct kedge_buf hello = KEDGE_BUF_INIT;

    if (kebody_hello_encode(&hello, &h) == 0)
        (void)publish(r, KE_HELLO, hello.data, hello.len);
    kedge_buf_cleanup(&hello);
}

/* ---- cloud -> plugin ------------------------------------------------------------------------ */

static int publish_down(struct relay *r, struct pending_down *p)
{
    struct kedge_buf topic = KEDGE_BUF_INIT, body = KEDGE_BUF_INIT;
    int rc = kedge_buf_printf(&topic, KE_DOWN_PREFIX "%s", p->m.msg_id);

    if (rc == 0)
        rc = kedge_msg_encode(&body, &p->m, false);
    if (rc == 0)
        rc = publish(r, topic.data, body.data, body.len);
    if (rc == 0)
        p->published = true;
    kedge_buf_cleanup(&topic);
    kedge_buf_cleanup(&body);
    return rc;
}

static int add_down(struct relay *r, const struct kedge_msg *m, relay_done_fn done,
                    relay_result_fn result, void *ctx)
{
    struct pending_down *nd, *p;

    if (!m->msg_id || !*m->msg_id || strchr(m->msg_id, '/') || strchr(m->msg_id, '+') ||
        strchr(m->msg_id, '#'))
        return KEDGE_ESCHEMA;
    if (r->n_downs >= MAX_PENDING_DOWN)
        return KEDGE_EFULL;
    nd = kedge_realloc(r->downs, (r->n_downs + 1) * sizeof(*nd));
    if (!nd)
        return -ENOMEM;
    r->downs = nd;
    p = &r->downs[r->n_downs];
    memset(p, 0, sizeof(*p));
    if (kedge_msg_copy(&p->m, m) < 0)
        return -ENOMEM;
    p->done = done;
    p->result = result;
    p->ctx = ctx;
    p->deadline_ms = kedge_now_ms() + (uint64_t)r->cfg.down_timeout_ms;
    r->n_downs++;
    if (r->ready)
        (void)publish_down(r, p); /* else sent once the plugin accepts our hello */
    return 0;
}

int relay_down(struct relay *r, const struct kedge_msg *m, relay_done_fn done, void *ctx)
{
    return add_down(r, m, done, NULL, ctx);
}

int relay_down_result(struct relay *r, const struct kedge_msg *m, relay_result_fn result, void *ctx)
{
    return add_down(r, m, NULL, result, ctx);
}

/* code: 0 applied, the plugin's error code, or -1 no answer (reason says why). */
static void finish_down(struct relay *r, size_t i, int code, const char *reason)
{
    struct pending_down p = r->downs[i];

    r->downs[i] = r->downs[--r->n_downs];
    if (p.result)
        p.result(p.ctx, &p.m, code, reason);
    else
        p.done(p.ctx, &p.m, code == 0);
    kedge_msg_cleanup(&p.m);
}

static void on_down_result(struct relay *r, const char *ref, const char *payload, int len)
{
    struct kedge_jdoc *doc = NULL;
    struct kebody_result res;
    size_t i;

    for (i = 0; i < r->n_downs; i++)
        if (!strcmp(r->downs[i].m.msg_id, ref))
            break;
    if (i == r->n_downs)
        return; /* timed out already; the cloud will resend */
    (void)kebody_result_decode(payload, (size_t)len, &doc, &res); /* not JSON: not ok */
    if (!res.ok && !r->downs[i].result) /* a result's sender logs its own refusal */
        kedge_log_limited(&r->msg_rl, "relay", KEDGE_LOG_WARN,
                          "relay: plugin refused cloud message %s: %.*s", ref, len, payload);
    /* an answer without a code is still a refusal */
    finish_down(r, i,
                res.ok         ? 0
                : res.code > 0 ? (int)res.code
                               : 500,
                res.reason ? res.reason : "");
    kedge_jdoc_free(doc);
}

static void link_state(struct relay *r, bool connected)
{
    struct kedge_msg m = {0};

    r->link_up = connected;
    r->link_state_sent = false;
    if (!r->ready)
        return;
    /* edgecore's edgehub tells its modules the same way (docs/kubeedge-wire.md §4.6) */
    m.source = "edgehub";
    m.group = "resource";
    m.operation = "connect";
    m.resource = "node/connection";
    if (kedge_msg_new_id(&m) == 0 &&
        kedge_msg_set_content_string(&m, connected ? "cloud_connected" : "cloud_disconnected",
                                     connected ? 15 : 18) == 0) {
        struct kedge_buf topic = KEDGE_BUF_INIT, body = KEDGE_BUF_INIT;
        if (kedge_buf_printf(&topic, KE_DOWN_PREFIX "%s", m.msg_id) == 0 &&
            kedge_msg_encode(&body, &m, false) == 0 &&
            publish(r, topic.data, body.data, body.len) == 0)
            r->link_state_sent = true;
        kedge_buf_cleanup(&topic);
        kedge_buf_cleanup(&body);
    }
    kedge_free(m.msg_id);
    kedge_free(m.content);
    kedge_free(m.content_str);
}

/* EdgeHub's listener: the link went up or down. */
static void on_link(void *ctx, bool connected)
{
    link_state(ctx, connected);
}

/* ---- local queries --------------------------------------------------------------------------- */

/* MetaManager's answer to a local query: json on $ke/meta/{ref}/result. Lost (logged; the asker
 * times out) when the broker is not reachable. */
static void meta_answer(void *ctx, const char *ref, const char *json, size_t len)
{
    struct relay *r = ctx;
    struct kedge_buf topic = KEDGE_BUF_INIT;
    int rc = kedge_buf_printf(&topic, KE_META_PREFIX "%s" KE_RESULT_SUFFIX, ref);

    if (rc == 0)
        rc = r->connected ? publish(r, topic.data, json, len) : -EIO;
    if (rc == -EIO && !r->connected)
        kedge_log_limited(&r->msg_rl, "relay", KEDGE_LOG_WARN,
                          "relay: answer to query %s lost: no broker connection", ref);
    kedge_buf_cleanup(&topic);
}

/* $ke/meta/{ref}: ref is one topic level (the subscription's '+'), used in the answer's topic. */
static void on_meta_request(struct relay *r, const char *ref, const void *payload, int len)
{
    if (!*ref || strlen(ref) > 160 || strchr(ref, '/'))
        return; /* our own $ke/meta/{ref}/result, or junk */
    if (r->meta)
        metamgr_local_request(r->meta, ref, payload ? payload : "", (size_t)len);
}

/* $ke/bctl/{ref}: an operator's request on the bridge's queue (cloudq_ctl.c). What the read
 * stored so far is committed and acked first, so the request sees it and cannot be undone by
 * a later failed commit. */
static void on_bctl_request(struct relay *r, const char *ref, const void *payload, int len)
{
    struct kedge_buf topic = KEDGE_BUF_INIT, out = KEDGE_BUF_INIT;
    int rc;

    if (!*ref || strlen(ref) > 160 || strchr(ref, '/'))
        return; /* our own $ke/bctl/{ref}/result, or junk */
    commit_and_ack(r);
    rc = r->bctl ? r->bctl(r->bctl_ctx, payload ? payload : "", (size_t)len, &out) : 0;
    if (rc == 0) /* not the other answerer's op: the queue's */
        rc = cloudq_ctl_handle(r->q, payload ? payload : "", (size_t)len, &out);
    else if (rc == 1)
        rc = 0;
    if (rc == 0 && kedge_buf_printf(&topic, KE_BCTL_PREFIX "%s" KE_RESULT_SUFFIX, ref) == 0)
        (void)publish(r, topic.data, out.data, out.len);
    else
        kedge_log(KEDGE_LOG_WARN, "relay: no answer to outbox request %s: out of memory", ref);
    kedge_buf_cleanup(&topic);
    kedge_buf_cleanup(&out);
    edgehub_kick(r->hub); /* a retried dead letter may be sendable */
}

/* ---- plugin -> cloud ------------------------------------------------------------------------- */

static void on_outbox_entry(struct relay *r, const char *seq_text, const char *payload, int len)
{
    char *end;
    long long seq = strtoll(seq_text, &end, 10);
    int rc;

    if (!*seq_text || *end || seq <= 0)
        return;
    if (r->refused_seq && seq > r->refused_seq)
        return; /* behind a refused upload: the plugin offers them again, in order */
    rc = cloudq_put(r->q, payload, (size_t)len, seq);
    if (rc == KEDGE_EFULL) {
        if (r->refused_seq != seq) {
            r->uploads_refused++;
            kedge_log_limited(&r->full_rl, "relay", KEDGE_LOG_WARN,
                              "relay: upload budget full (upload_budget_bytes=%ld): not taking "
                              "plugin entry %lld nor what follows until stored uploads reach "
                              "the cloud (upload_policy refuse; the plugin keeps them)",
                              r->cfg.upload_budget_bytes, seq);
        }
        r->refused_seq = seq;
        return;
    }
    if (rc < 0)
        return; /* not acked: offered again after the next hello */
    if (seq >= r->refused_seq)
        r->refused_seq = 0;
    fault_point(FAULT_AFTER_RECEIVE); /* test-only: stored, not committed, not acked */
    if (kedge_array_grow(&r->acks, &r->cap_acks, r->n_acks, sizeof(*r->acks), 64) < 0)
        return;
    r->acks[r->n_acks++] = seq;
}

/* After one read: make the batch durable, then tell the plugin it may forget it. */
static void commit_and_ack(struct relay *r)
{
    char topic[64];
    size_t i;

    if (!r->n_acks && !r->q)
        return;
    if (cloudq_commit(r->q) < 0) {
        kedge_log(KEDGE_LOG_ERR,
                  "relay: %zu entries not stored; reconnecting so the plugin "
                  "offers them again",
                  r->n_acks);
        r->n_acks = 0;
        mosquitto_disconnect(r->mosq);
        return;
    }
    /* acks are cumulative: the highest seq of the batch covers the rest */
    {
        int64_t max = 0;
        for (i = 0; i < r->n_acks; i++)
            if (r->acks[i] > max)
                max = r->acks[i];
        if (max) {
            kebody_ack_topic(topic, max);
            (void)publish(r, topic, NULL, 0);
        }
    }
    if (r->n_acks)
        edgehub_kick(r->hub);
    r->n_acks = 0;
}

/* ---- libmosquitto callbacks ------------------------------------------------------------------ */

static void on_hello_result(struct relay *r, const char *payload, int len)
{
    struct kedge_jdoc *doc = NULL;
    struct kebody_hello_result res;
    size_t i;

    (void)kebody_hello_result_decode(payload, (size_t)len, &doc, &res); /* bad: refused */
    if (!res.accepted) {
        kedge_log(KEDGE_LOG_ERR, "relay: the plugin refused this bridge: %s (retrying in 30 s)",
                  res.reason ? res.reason : "no reason");
        kedge_jdoc_free(doc);
        return;
    }
    if (res.last_seq >= 0)
        (void)cloudq_plugin_seq(r->q, res.last_seq); /* logged there */
    kedge_jdoc_free(doc);
    if (!r->ready)
        kedge_log(KEDGE_LOG_NOTICE, "relay: plugin accepted node=%s", r->cfg.node_name);
    r->ready = true;
    r->refused_seq = 0; /* the plugin offers again from its oldest unacked entry */
    for (i = 0; i < r->n_downs; i++)
        if (!r->downs[i].published)
            (void)publish_down(r, &r->downs[i]);
    link_state(r, r->link_up);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    struct relay *r = obj;
    const char *t = msg->topic;
    size_t tl = strlen(t), rl = strlen(KE_RESULT_SUFFIX);

    (void)mosq;
    if (!strncmp(t, KE_OUTBOX_PREFIX, strlen(KE_OUTBOX_PREFIX))) {
        on_outbox_entry(r, t + strlen(KE_OUTBOX_PREFIX), msg->payload, msg->payloadlen);
    } else if (!strcmp(t, KE_HELLO_RESULT)) {
        on_hello_result(r, msg->payload, msg->payloadlen);
    } else if (!strncmp(t, KE_META_PREFIX, strlen(KE_META_PREFIX))) {
        on_meta_request(r, t + strlen(KE_META_PREFIX), msg->payload, msg->payloadlen);
    } else if (!strncmp(t, KE_BCTL_PREFIX, strlen(KE_BCTL_PREFIX))) {
        on_bctl_request(r, t + strlen(KE_BCTL_PREFIX), msg->payload, msg->payloadlen);
    } else if (!strncmp(t, KE_DOWN_PREFIX, strlen(KE_DOWN_PREFIX)) && tl > rl &&
               !strcmp(t + tl - rl, KE_RESULT_SUFFIX)) {
        char ref[160];
        size_t n = tl - rl - strlen(KE_DOWN_PREFIX);
        if (n < sizeof(ref)) {
            memcpy(ref, t + strlen(KE_DOWN_PREFIX), n);
            ref[n] = '\0';
            on_down_result(r, ref, msg->payload, msg->payloadlen);
        }
    }
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    struct relay *r = obj;

    (void)mosq;
    if (rc != 0) {
        kedge_log(KEDGE_LOG_ERR, "relay: broker refused the bridge identity %s: %s",
                  r->cfg.broker_username, mosquitto_connack_string(rc));
        return;
    }
    r->connected = true;
    r->retries = 0;
    kedge_log(KEDGE_LOG_NOTICE, "relay: connected to broker %s:%ld as %s", r->cfg.broker_host,
              r->cfg.broker_port, r->client_id);
    /* a clean session: the local query subscription is made again on every connect */
    rc = mosquitto_subscribe(r->mosq, NULL, KE_META_PREFIX "+", 1);
    if (rc != MOSQ_ERR_SUCCESS)
        kedge_log(KEDGE_LOG_WARN,
                  "relay: cannot subscribe to %s+: %s (kedge-ctl meta will "
                  "time out)",
                  KE_META_PREFIX, mosquitto_strerror(rc));
    rc = mosquitto_subscribe(r->mosq, NULL, KE_BCTL_PREFIX "+", 1);
    if (rc != MOSQ_ERR_SUCCESS)
        kedge_log(KEDGE_LOG_WARN,
                  "relay: cannot subscribe to %s+: %s (kedge-ctl outbox will time out)",
                  KE_BCTL_PREFIX, mosquitto_strerror(rc));
    send_hello(r);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    struct relay *r = obj;
    size_t i;

    (void)mosq;
    if (r->connected)
        kedge_log(KEDGE_LOG_WARN, "relay: lost the broker (%s)", mosquitto_strerror(rc));
    r->connected = r->ready = false;
    for (i = 0; i < r->n_downs; i++)
        r->downs[i].published = false;
}

/* ---- the socket on the lws loop -------------------------------------------------------------- */

static void drop_socket(struct relay *r)
{
    struct lws *wsi = r->wsi;

    r->wsi = NULL;
    if (wsi)
        lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

static void connection_lost(struct relay *r)
{
    drop_socket(r);
    if (r->connected || r->ready)
        on_disconnect(r->mosq, r, MOSQ_ERR_CONN_LOST);
    if (!r->stopping)
        schedule_reconnect(r);
}

/* After libmosquitto read or wrote: the link is lost, or it may have more to write. */
static void after_io(struct relay *r, int rc)
{
    if (rc != MOSQ_ERR_SUCCESS)
        connection_lost(r);
    else
        want_write(r);
}

static int raw_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct relay *r = wsi ? lws_get_opaque_user_data(wsi) : NULL; /* set in try_connect */
    int rc;

    (void)user;
    (void)in;
    (void)len;
    if (!r || wsi != r->wsi)
        return reason == LWS_CALLBACK_RAW_CLOSE_FILE
                   ? 0
                   : lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        /* drain what the socket holds (libmosquitto reads one packet a call), so a burst of
         * outbox entries is stored in one commit and acked with one cumulative ack */
        for (int n = 0; n < 512; n++) {
            int avail = 0;
            rc = mosquitto_loop_read(r->mosq, 1);
            if (rc != MOSQ_ERR_SUCCESS || ioctl(mosquitto_socket(r->mosq), FIONREAD, &avail) < 0 ||
                avail <= 0)
                break;
        }
        commit_and_ack(r);
        after_io(r, rc);
        break;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        after_io(r, mosquitto_loop_write(r->mosq, 1));
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (r->wsi == wsi)
            r->wsi = NULL;
        break;
    default:
        break;
    }
    return 0;
}

const struct lws_protocols relay_protocol = {"kedge-mqtt-raw", raw_callback, 0, 0, 0, NULL, 0};

/* $ke/status: the link and cloud queue figures an operator needs (kedge-ctl status, $SYS). */
static void send_status(struct relay *r)
{
    struct edgehub_stats st;
    struct cloudq_stats ob;
    struct kebody_status s;
    struct kedge_buf json = KEDGE_BUF_INIT;

    edgehub_stats(r->hub, &st);
    cloudq_stats(r->q, &ob);
    s = (struct kebody_status){
        .connected = st.connected,
        .reconnects = st.reconnects,
        .last_keepalive_ms = st.last_keepalive_ms,
        .last_delivery_ms = st.last_delivery_ms,
        .outbox_depth = ob.depth,
        .outbox_oldest_ms = ob.oldest_ms,
        .outbox_set_aside = ob.set_aside,
        .cert_not_after_s = certwatch_not_after(r->certs),
        .upload_bytes = ob.upload_bytes,
        .upload_budget_bytes = ob.budget_bytes,
        .uploads_dropped = ob.uploads_dropped,
        .uploads_refused = r->uploads_refused,
        .dead_letters = ob.dead_letters,
        .coalesced = ob.coalesced,
        .stale_dropped = ob.stale_dropped,
        .refusals = ob.failures,
        .dropped_by_operator = ob.dropped_by_operator,
        .probing = st.probing,
    };
    if (kebody_status_encode(&json, &s) == 0)
        (void)publish(r, KE_STATUS, json.data, json.len);
    kedge_buf_cleanup(&json);
}

static void tick(lws_sorted_usec_list_t *sul)
{
    struct relay *r = lws_container_of(sul, struct relay, tick);
    uint64_t now = kedge_now_ms();
    size_t i;

    if (r->wsi && mosquitto_loop_misc(r->mosq) != MOSQ_ERR_SUCCESS)
        connection_lost(r);
    (void)cloudq_sweep(r->q, CLOUDQ_PROOF_GRACE_MS); /* logged there */
    want_write(r);
    for (i = 0; i < r->n_downs;) {
        if (now >= r->downs[i].deadline_ms) {
            kedge_log_limited(&r->msg_rl, "relay", KEDGE_LOG_WARN,
                              "relay: no answer from the plugin for cloud message %s",
                              r->downs[i].m.msg_id);
            finish_down(r, i, -1, "no answer from the plugin");
            continue;
        }
        i++;
    }
    if (r->connected && !r->ready && (now / 1000) % 30 == 0)
        send_hello(r); /* refused before: the operator may have fixed the config */
    if (r->ready && (now / 1000) % 5 == 0)
        send_status(r);
    if (!r->stopping)
        lws_sul_schedule(r->lws, 0, &r->tick, tick, LWS_USEC_PER_SEC);
}

static void try_connect(lws_sorted_usec_list_t *sul)
{
    struct relay *r = lws_container_of(sul, struct relay, reconnect);
    lws_sock_file_fd_type fd;
    int rc;

    if (r->stopping)
        return;
    rc = mosquitto_connect(r->mosq, r->cfg.broker_host, (int)r->cfg.broker_port, 30);
    if (rc != MOSQ_ERR_SUCCESS) {
        if (r->retries == 0)
            kedge_log(KEDGE_LOG_WARN, "relay: cannot reach broker %s:%ld: %s (retrying)",
                      r->cfg.broker_host, r->cfg.broker_port, mosquitto_strerror(rc));
        schedule_reconnect(r);
        return;
    }
    /* lws polls a duplicate: closing its wsi never closes mosquitto's own descriptor */
    fd.filefd = dup(mosquitto_socket(r->mosq));
    if (fd.filefd < 0) {
        kedge_log(KEDGE_LOG_ERR, "relay: dup: %s", strerror(errno));
        mosquitto_disconnect(r->mosq);
        schedule_reconnect(r);
        return;
    }
    r->wsi = lws_adopt_descriptor_vhost(r->vhost, LWS_ADOPT_RAW_FILE_DESC, fd, relay_protocol.name,
                                        NULL);
    if (!r->wsi) {
        close(fd.filefd);
        kedge_log(KEDGE_LOG_ERR, "relay: cannot adopt the MQTT socket into the loop");
        mosquitto_disconnect(r->mosq);
        schedule_reconnect(r);
        return;
    }
    lws_set_opaque_user_data(r->wsi, r);
    want_write(r); /* the CONNECT packet may still be queued */
}

static void schedule_reconnect(struct relay *r)
{
    uint64_t delay_ms = 1000u << (r->retries < 3 ? r->retries : 3); /* 1, 2, 4, 8 s */

    r->retries++;
    lws_sul_schedule(r->lws, 0, &r->reconnect, try_connect, (lws_usec_t)delay_ms * 1000);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int relay_new(const struct relay_config *cfg, const struct relay_deps *deps, struct relay **out)
{
    struct relay *r = kedge_calloc(1, sizeof(*r));

    *out = NULL;
    if (!r)
        return -ENOMEM;
    r->cfg = *cfg;
    r->lws = deps->lws;
    r->vhost = deps->vhost;
    r->q = deps->q;
    r->hub = deps->hub;
    r->meta = deps->meta;
    r->certs = deps->certs;
    r->full_rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(60000, 3);
    r->msg_rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(10000, 10);
    snprintf(r->client_id, sizeof(r->client_id), "kedge-bridge-%s", cfg->node_name);
    mosquitto_lib_init();
    r->mosq = mosquitto_new(r->client_id, true, r);
    if (!r->mosq) {
        kedge_free(r);
        return -ENOMEM;
    }
    (void)mosquitto_int_option(r->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    if (mosquitto_username_pw_set(r->mosq, cfg->broker_username, cfg->password) !=
        MOSQ_ERR_SUCCESS) {
        relay_free(r);
        return -ENOMEM;
    }
    mosquitto_connect_callback_set(r->mosq, on_connect);
    mosquitto_disconnect_callback_set(r->mosq, on_disconnect);
    mosquitto_message_callback_set(r->mosq, on_message);
    if (edgehub_on_link(r->hub, on_link, r) < 0) {
        relay_free(r);
        return -ENOMEM;
    }
    if (r->meta)
        metamgr_set_answer(r->meta, meta_answer, r);
    *out = r;
    return 0;
}

void relay_start(struct relay *r)
{
    try_connect(&r->reconnect);
    lws_sul_schedule(r->lws, 0, &r->tick, tick, LWS_USEC_PER_SEC);
}

bool relay_ready(const struct relay *r)
{
    return r && r->ready;
}

void relay_stop(struct relay *r)
{
    if (!r)
        return;
    r->stopping = true;
    lws_sul_cancel(&r->tick);
    lws_sul_cancel(&r->reconnect);
    commit_and_ack(r);
    if (r->connected) {
        r->connected = r->ready = false; /* a clean stop is not a lost broker */
        mosquitto_disconnect(r->mosq);
        (void)mosquitto_loop_write(r->mosq, 1);
    }
    drop_socket(r);
}

void relay_set_bctl(struct relay *r, relay_bctl_fn fn, void *ctx)
{
    r->bctl = fn;
    r->bctl_ctx = ctx;
}

void relay_free(struct relay *r)
{
    if (!r)
        return;
    while (r->n_downs)
        finish_down(r, r->n_downs - 1, -1, "the bridge is stopping");
    kedge_free(r->downs);
    kedge_free(r->acks);
    mosquitto_destroy(r->mosq);
    mosquitto_lib_cleanup();
    kedge_free(r);
}
