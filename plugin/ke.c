/* The plugin's end of the $ke/ channel (ke.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto_broker.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/ke.h"
#include "kedge/kebody.h"
#include "kedge/log.h"
#include "kedge/msg.h"
#include "kedge/topic.h"
#include "kedge/twin.h"
#include "kedge/util.h"
#include "ke.h"
#include "ke_outbox.h"
#include "membership.h"

static struct kedge_ratelimit ke_rl = KEDGE_RATELIMIT_INIT(10000, 20);

void ke_init(struct ke *k, const struct plugin_config *cfg, struct store *store,
             struct registry *reg, struct replies *out, const struct publisher *pub,
             struct outbox *outbox, struct devicetwin *dt, struct eventbus *bus)
{
    memset(k, 0, sizeof(*k));
    k->cfg = cfg;
    k->store = store;
    k->reg = reg;
    k->out = out;
    k->pub = pub;
    k->outbox = outbox;
    k->dt = dt;
    k->bus = bus;
}

void ke_cleanup(struct ke *k)
{
    kedge_free(k->bridge_status);
    k->bridge_status = NULL;
}

static int has_prefix(const char *s, const char *p)
{
    return !strncmp(s, p, strlen(p));
}

/* Answer one client on topic + "/result". ok/fail payloads are JSON we built. */
static void answer(struct ke *k, const char *client_id, const char *topic, struct kedge_buf *ok,
                   struct kedge_buf *fail)
{
    struct kedge_buf t = KEDGE_BUF_INIT;
    size_t ok_len = 0, fail_len = 0;
    char *okp = NULL, *failp = NULL;

    if (kedge_buf_printf(&t, "%s%s", topic, KE_RESULT_SUFFIX) < 0 ||
        !(okp = kedge_buf_take(ok, &ok_len)) ||
        (fail && !(failp = kedge_buf_take(fail, &fail_len))) ||
        replies_take_to(k->out, client_id, t.data, okp, ok_len, failp, fail_len) < 0) {
        kedge_free(okp);
        kedge_free(failp);
        kedge_log_limited(&ke_rl, "ke", KEDGE_LOG_ERR, "ke: out of memory answering %s", topic);
    }
    kedge_buf_cleanup(&t);
}

static void answer_status(struct ke *k, const char *client_id, const char *topic, int code,
                          const char *reason)
{
    struct kedge_buf ok = KEDGE_BUF_INIT, fail = KEDGE_BUF_INIT;
    struct kebody_result done = {code == 0, code, reason ? reason : ""};
    struct kebody_result failed = {false, 500, store_error(k->store)};
    struct kedge_jw w;

    kedge_jw_init(&w, &ok);
    kebody_result_write(&w, &done);
    /* if the batch holding the change fails, the sender learns it */
    kedge_jw_init(&w, &fail);
    kebody_result_write(&w, &failed);
    if (kedge_jw_finish(&w) == 0)
        answer(k, client_id, topic, &ok, &fail);
    kedge_buf_cleanup(&ok);
    kedge_buf_cleanup(&fail);
}

/* ---- hello --------------------------------------------------------------------------------- */

static void on_hello(struct ke *k, const char *client_id, const char *payload, size_t len)
{
    struct kedge_buf ok = KEDGE_BUF_INIT, reason = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    struct kebody_hello hello;
    struct kebody_hello_result res = {false, k->cfg->node_name, 0, -1, NULL};
    bool accepted;

    (void)kebody_hello_decode(payload, len, &doc, &hello); /* a bad body has no node_name */
    accepted = hello.node_name && !strcmp(hello.node_name, k->cfg->node_name);
    if (!accepted) {
        (void)kedge_buf_printf(&reason,
                               "node name mismatch: plugin_opt_node_name is %s, the bridge says %s",
                               k->cfg->node_name, hello.node_name ? hello.node_name : "(none)");
        kedge_log_limited(&ke_rl, "ke", KEDGE_LOG_ERR, "ke: refused hello from client=%s: %s",
                          client_id, reason.data ? reason.data : "out of memory");
    } else if (outbox_bridge_up(k->outbox, client_id) < 0) {
        accepted = false;
        (void)kedge_buf_puts(&reason, "out of memory");
    } else {
        kedge_log(KEDGE_LOG_NOTICE, "ke: bridge client=%s accepted for node=%s, outbox=%" PRId64,
                  client_id, k->cfg->node_name, k->outbox->depth);
    }
    res.accepted = accepted;
    if (accepted) {
        res.outbox_depth = k->outbox->depth;
        res.last_seq = store_outbox_last_seq(k->store); /* a new kedge.db starts over */
    } else {
        res.reason = reason.data ? reason.data : "";
    }
    if (kebody_hello_result_encode(&ok, &res) == 0) {
        struct kedge_buf fail = KEDGE_BUF_INIT;
        (void)kedge_buf_append(&fail, ok.data, ok.len);
        answer(k, client_id, KE_HELLO, &ok, &fail);
        kedge_buf_cleanup(&fail);
    }
    kedge_buf_cleanup(&ok);
    kedge_buf_cleanup(&reason);
    kedge_jdoc_free(doc);
}

/* ---- down: cloud messages --------------------------------------------------------------- */

/* "device/{id}{sfx}" -> id (two levels since v1.17, one before). */
static char *twin_resource_id(const char *resource, const char *sfx)
{
    size_t len = strlen(resource), n = strlen(sfx);

    if (!has_prefix(resource, "device/") || len <= n + 7 || strcmp(resource + len - n, sfx))
        return NULL;
    return kedge_strndup(resource + 7, len - n - 7);
}

static int down_twin(struct ke *k, const struct kedge_msg *m, const char **reason)
{
    struct kedge_twin_update u;
    bool desired = false;
    char *id = NULL;
    int rc;

    if (m->resource && !strcmp(m->resource, "membership"))
        return membership_update(k->dt, m->content_is_string ? m->content_str : m->content,
                                 m->content_is_string ? m->content_str_len : m->content_len,
                                 reason);
    if (m->resource) {
        id = twin_resource_id(m->resource, KEDGE_SFX_TWIN_CLOUD_UPDATED);
        if (!id && (id = twin_resource_id(m->resource, KE_SFX_TWIN_DESIRED)) != NULL)
            desired = true;
    }
    if (!id) {
        *reason = "unsupported twin resource";
        return KEDGE_ESCHEMA;
    }
    rc = kedge_twin_update_decode(m->content_is_string ? m->content_str : m->content,
                                  m->content_is_string ? m->content_str_len : m->content_len, &u);
    if (rc == 0) {
        rc = (desired ? devicetwin_desired
                      : devicetwin_sync)(k->dt, id, u.event_id ? u.event_id : "", u.twins, u.n);
        if (rc == KEDGE_ENODEVICE)
            *reason = "device is not known on this node";
    } else {
        *reason = "twin content does not parse";
    }
    kedge_twin_update_cleanup(&u);
    kedge_free(id);
    return rc;
}

static int down_connection(struct ke *k, const struct kedge_msg *m, const char **reason)
{
    const char *state = m->content_is_string ? m->content_str : "";

    if (!strcmp(state, "cloud_connected") || !strcmp(state, "cloud_disconnected")) {
        bool up = state[6] == 'c';
        if (up != k->cloud_connected)
            kedge_log(KEDGE_LOG_NOTICE, "ke: %s", state);
        k->cloud_connected = up;
        return 0;
    }
    *reason = "unknown connection state";
    return KEDGE_ESCHEMA;
}

/* A mapper's report, through the bridge (include/kedge/ke.h, device/{id}/twin/update): the same
 * path as a device's MQTT twin update; the answer carries its code. */
static bool down_edge_update(struct ke *k, const char *client_id, const char *topic,
                             const struct kedge_msg *m)
{
    const char *reason = NULL;
    char *id;
    int code;

    if (!m->group || strcmp(m->group, "twin") || !m->resource ||
        !(id = twin_resource_id(m->resource, KEDGE_SFX_TWIN_UPDATE)))
        return false;
    code = devicetwin_edge_update(
        k->dt, id, strlen(id), m->content_is_string ? m->content_str : m->content,
        m->content_is_string ? m->content_str_len : m->content_len, &reason);
    answer_status(k, client_id, topic, code, reason ? reason : "");
    kedge_free(id);
    return true;
}

static void on_down(struct ke *k, const char *client_id, const char *topic, const char *payload,
                    size_t len)
{
    struct kedge_msg m;
    const char *reason = NULL;
    int rc = kedge_msg_decode(payload, len, &m);

    if (rc == 0 && down_edge_update(k, client_id, topic, &m)) {
        kedge_msg_cleanup(&m);
        return;
    }
    if (rc < 0) {
        reason = "not a beehive message";
    } else if (m.resource && !strcmp(m.resource, "node/connection")) {
        rc = down_connection(k, &m, &reason);
    } else if (m.group && !strcmp(m.group, "twin")) {
        rc = down_twin(k, &m, &reason);
    } else if (m.group && !strcmp(m.group, "user")) {
        rc = eventbus_cloud(k->bus, &m, &reason);
    } else {
        rc = KEDGE_ESCHEMA;
        reason = "no handler for this group/resource";
    }
    if (rc < 0)
        kedge_log_limited(&ke_rl, "ke", KEDGE_LOG_WARN,
                          "ke: down message refused topic=%s group=%s resource=%s: %s", topic,
                          m.group ? m.group : "", m.resource ? m.resource : "",
                          reason ? reason : kedge_strerror(rc));
    answer_status(k, client_id, topic,
                  rc < 0 ? (rc == -ENOMEM || rc == KEDGE_ESTORE ? 500 : 400) : 0,
                  reason ? reason : kedge_strerror(rc));
    kedge_msg_cleanup(&m);
}

/* ---- ctl: operator queries ---------------------------------------------------------------- */

int ke_status_encode(struct ke *k, struct kedge_buf *b)
{
    int64_t now = kedge_wall_ms();
    struct kedge_jw w;

    kedge_jw_init(&w, b);
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "node_name", k->cfg->node_name);
    kedge_jw_key(&w, "bridge_connected");
    kedge_jw_bool(&w, k->outbox->bridge_client != NULL);
    kedge_jw_key(&w, "cloud_connected");
    kedge_jw_bool(&w, k->cloud_connected);
    kedge_jw_kint(&w, "outbox_depth", k->outbox->depth);
    kedge_jw_kint(&w, "outbox_max", k->outbox->max_rows);
    kedge_jw_kint(&w, "state_pending", k->outbox->held.states);
    kedge_jw_kint(&w, "upload_rows", k->outbox->held.uploads);
    kedge_jw_kint(&w, "upload_bytes", k->outbox->held.upload_bytes);
    kedge_jw_kint(&w, "upload_budget_bytes", k->outbox->budget);
    kedge_jw_kint(&w, "max_upload_bytes", k->outbox->max_upload);
    kedge_jw_kstr(&w, "upload_policy", k->outbox->drop_oldest ? "drop-oldest" : "refuse");
    kedge_jw_kint(&w, "uploads_refused", k->outbox->n.uploads_refused);
    kedge_jw_kint(&w, "uploads_dropped", k->outbox->n.uploads_dropped);
    kedge_jw_kint(&w, "uploads_oversize", k->outbox->n.uploads_oversize);
    kedge_jw_kint(&w, "dropped_by_operator", k->outbox->n.dropped_by_operator);
    kedge_jw_kint(&w, "coalesced", k->outbox->n.coalesced);
    {
        int64_t oldest = outbox_oldest_ms(k->outbox);
        kedge_jw_kint(&w, "outbox_oldest_age_ms", oldest ? now - oldest : 0);
    }
    kedge_jw_kint(&w, "last_ack_ms", k->outbox->last_ack_ms);
    kedge_jw_kint(&w, "devices", (int64_t)registry_count(k->reg));
    kedge_jw_kint(&w, "twin_updates", k->dt->n.updates);
    kedge_jw_kint(&w, "twin_gets", k->dt->n.gets);
    kedge_jw_kint(&w, "state_updates", k->dt->n.states);
    kedge_jw_kint(&w, "membership_gets", k->dt->n.members);
    kedge_jw_kint(&w, "twin_errors", k->dt->n.errors);
    kedge_jw_kint(&w, "db_bytes", store_db_bytes(k->store));
    kedge_jw_key(&w, "store_ok");
    kedge_jw_bool(&w, store_ok(k->store));
    kedge_jw_key(&w, "bridge");
    if (k->bridge_status)
        kedge_jw_raw(&w, k->bridge_status, strlen(k->bridge_status));
    else
        kedge_jw_null(&w);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

static void publish_retained(struct ke *k, const char *what, const char *json, size_t len)
{
    struct kedge_buf topic = KEDGE_BUF_INIT;
    char *payload = kedge_strndup(json, len);

    if (payload && kedge_buf_printf(&topic, KE_SYS_PREFIX "%s/%s", k->cfg->node_name, what) == 0)
        (void)publisher_send(k->pub, NULL, topic.data, payload, len, 0, true); /* takes it */
    else
        kedge_free(payload);
    kedge_buf_cleanup(&topic);
}

void ke_publish_sys(struct ke *k)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    if (ke_status_encode(k, &b) == 0)
        publish_retained(k, "plugin", b.data, b.len);
    if (k->bridge_status)
        publish_retained(k, "bridge", k->bridge_status, strlen(k->bridge_status));
    kedge_buf_cleanup(&b);
}

static void on_bridge_status(struct ke *k, const char *client_id, const char *payload, size_t len)
{
    struct kebody_status st;
    char *copy;

    if (!outbox_is_bridge(k->outbox, client_id))
        return; /* only the accepted bridge speaks for the link */
    if (kebody_status_decode(payload, len, &st) < 0)
        return;
    copy = kedge_strndup(payload, len);
    if (!copy)
        return;
    kedge_free(k->bridge_status);
    k->bridge_status = copy;
}

static void on_ctl(struct ke *k, const char *client_id, const char *topic, const char *payload,
                   size_t len)
{
    struct kedge_buf ok = KEDGE_BUF_INIT, copy = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    struct kebody_request req;
    const char *op;
    struct kedge_jw w;
    int rc;

    (void)kebody_request_decode(payload, len, false, &doc, &req); /* bad: no op, answered 400 */
    op = req.op ? req.op : "";
    kedge_jw_init(&w, &ok);
    if (!strcmp(op, "status")) {
        rc = ke_status_encode(k, &ok);
    } else if (!strcmp(op, "device_list")) {
        rc = devicetwin_encode_members(k->dt, "", &ok);
    } else if (!strcmp(op, "device_get") && req.id_str) {
        rc = devicetwin_encode_twins(k->dt, req.id_str, req.id_len, &ok);
    } else if (!strcmp(op, "outbox_list")) {
        rc = ke_outbox_list(k->outbox, &req, &ok);
    } else if (!strcmp(op, "outbox_show")) {
        rc = ke_outbox_show(k->outbox, &req, &ok);
    } else if (!strcmp(op, "outbox_drop")) {
        const char *reason = NULL;
        int code = ke_outbox_drop(k->outbox, &req, &reason);
        answer_status(k, client_id, topic, code, reason); /* after the commit that drops it */
        goto out;
    } else {
        kebody_error_write(&w, 400,
                           "unknown op: use status, device_list, device_get, "
                           "outbox_list, outbox_show or outbox_drop");
        rc = kedge_jw_finish(&w);
    }
    if (rc == 0 && kedge_buf_append(&copy, ok.data, ok.len) == 0)
        answer(k, client_id, topic, &ok, &copy);
out:
    kedge_buf_cleanup(&ok);
    kedge_buf_cleanup(&copy);
    kedge_jdoc_free(doc);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

void ke_on_message(struct ke *k, const struct mosquitto *client, const char *topic,
                   const char *payload, size_t len)
{
    const char *client_id = mosquitto_client_id(client);
    const char *rest;

    if (!client_id)
        return;
    if (!strcmp(topic, KE_HELLO)) {
        on_hello(k, client_id, payload, len);
    } else if (!strcmp(topic, KE_STATUS)) {
        on_bridge_status(k, client_id, payload, len);
    } else if (has_prefix(topic, KE_ACK_PREFIX)) {
        int64_t seq;
        if (kebody_ack_parse(topic, &seq) == 0)
            outbox_ack(k->outbox, seq);
    } else if (has_prefix(topic, KE_DOWN_PREFIX) || has_prefix(topic, KE_CTL_PREFIX)) {
        bool down = has_prefix(topic, KE_DOWN_PREFIX);
        rest = topic + strlen(down ? KE_DOWN_PREFIX : KE_CTL_PREFIX);
        if (!*rest || strchr(rest, '/'))
            return; /* our own .../result topics, or junk */
        if (down)
            on_down(k, client_id, topic, payload, len);
        else
            on_ctl(k, client_id, topic, payload, len);
    }
}

void ke_on_disconnect(struct ke *k, const char *client_id)
{
    outbox_bridge_down(k->outbox, client_id);
}
