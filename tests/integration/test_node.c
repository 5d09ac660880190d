/* MetaManager and the edge node, end to end: mosquitto with kedge_plugin.so (harness.h), the
 * real kedge-bridge (bridgectl.h), kedge-cloudsim (simctl.h) and kedge-ctl (KEDGE_CTL_PATH), all
 * real processes on 127.0.0.1.
 *
 *  1. The node registers and stays Ready in the cloud (cloudsim's Node model, GET /nodes); the
 *     bridge stopped, its lease goes stale and the node turns Unknown (NodeStatusUnknown); the
 *     bridge started again, the node is Ready again without a second registration. For both
 *     node namespaces (cloudcore v1.12-v1.22 "default", v1.23+ "null"). The meta table holds
 *     the patch under the nodepatch key and the cloud's Node under the node key. The Node's
 *     status is what a kubelet's holds (addresses, capacity >= allocatable, nodeInfo), its
 *     kubeletVersion the default (v1.24.0-kedge: never newer than a cluster KubeEdge v1.15
 *     supports) or the configured kubelet_version.
 *  2. Only the newest status matters when the link returns: nothing computed while offline is
 *     queued; one status goes up on reconnect.
 *  3. Queries through the local interface ($ke/meta/{ref}, include/kedge/ke.h) and kedge-ctl
 *     meta: a configmap goes to the cloud while connected (stored, acked), comes from the store
 *     offline; an unknown object, a bad request and a cloud that does not answer give clear
 *     errors.
 *  4. A Device + DeviceModel from the cloud make a typed device usable over MQTT.
 *  5. kedge-ctl import of an edgecore.db built from tests/fixtures/edgecore-meta.sql (the spec's
 *     DDL): refused while the services run, then the imported configmap is served offline and
 *     the imported device's twins are there.
 *
 * The bridge runs with short link settings (as test_bridge.c) and status/lease every second;
 * cloudsim's grace period is a few seconds (--node-grace-s), scaled with the deadlines. Waits
 * are deadlines on a condition, never sleeps; the one "stays Ready" check is an observation
 * window of two grace periods, polled.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bridgectl.h"
#include "chain.h"
#include "ctlrun.h"
#include "harness.h"
#include "proc.h"
#include "jsoncmp.h"
#include "kedge/alloc.h"
#include "kedge/json.h"
#include "kedge/msg.h"
#include "simctl.h"
#include "testsupport.h"

#define PAUSE_MS 50 /* between two polls of a deadline loop */

#define WAIT_MS 10000 /* deadline for something that should take milliseconds */
#define RUN_MS 30000  /* kedge-ctl must have exited by then */
#define GRACE_MS 3000 /* cloudsim's --node-grace-s, before scaling */
#define NODE "kedge-node"
#define BRIDGE_USER "kedge-bridge"
#define BRIDGE_PASS "n0de-Secret"
#define FIXTURES KEDGE_SOURCE_DIR "/tests/fixtures/"
#define END ((const char *)NULL) /* ends ctl()'s arguments */

static struct simctl *sim;
static struct kh_broker *broker;
static struct bridgectl *bridge;

/* ---- small helpers ------------------------------------------------------------------------- */

static int grace_s(void)
{
    int s = kh_scale_ms(GRACE_MS) / 1000;

    return s < 2 ? 2 : s;
}

static char *path_in(const char *dir, const char *name)
{
    char *p = NULL;

    ck_assert_int_gt(asprintf(&p, "%s/%s", dir, name), 0);
    return p;
}

/* One text value of a query on a database (NULL when there is no row); malloc'd. */
static char *db_text(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *out = NULL;

    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, kh_scale_ms(2000));
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/* ---- the chain ------------------------------------------------------------------------------ */

struct chain_opts {
    const char *node_namespace;  /* NULL: the bridge's default */
    const char *cloud_version;   /* NULL: the bridge's default (1.15) */
    const char *plugin_db;       /* NULL: the harness's default */
    bool refuse_link;            /* cloudsim refuses the edge from the start */
    const char *kubelet_version; /* NULL: the bridge's default */
};

static void bset(const char *key, const char *value)
{
    ck_assert_int_eq(bridgectl_set(bridge, key, value), 0);
}

static void bset_long(const char *key, long value)
{
    ck_assert_int_eq(bridgectl_set_long(bridge, key, value), 0);
}

static bool sim_connected(void)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *v;
    int status = 0;
    bool up;

    if (simctl_http_json(sim, "GET", "/state?node=" NODE, NULL, &status, &doc) < 0)
        return false;
    v = kedge_json_get(kedge_jdoc_root(doc), "connected");
    up = status == 200 && v && v->type == KEDGE_JBOOL && v->boolean;
    kedge_jdoc_free(doc);
    return up;
}

static void wait_connected(void)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (!sim_connected()) {
        ck_assert_msg(kt_now_ms() < deadline, "the bridge did not connect to the cloud");
        kt_pause_ms(PAUSE_MS);
    }
}

static void sim_start_for_node(void)
{
    struct simctl_opts so = {0};
    char grace[16];
    const char *args[] = {"--node-grace-s", grace, NULL};

    (void)snprintf(grace, sizeof(grace), "%d", grace_s());
    so.node = NODE;
    so.extra_args = args;
    ck_assert_int_eq(simctl_start(&so, &sim), 0);
}

static void chain_up(const struct chain_opts *co)
{
    static const struct chain_opts none;
    struct bridgectl_opts bo = {0};
    struct kh_broker_opts ko = {0};
    struct kh_opt popts[2] = {{NULL, NULL}, {NULL, NULL}};

    if (!co)
        co = &none;
    if (!sim)
        sim_start_for_node();
    if (co->refuse_link)
        chain_sim_post(sim, "/link/refuse?seconds=3600");
    if (!bridge) {
        bo.password = BRIDGE_PASS;
        ck_assert_int_eq(bridgectl_new(&bo, &bridge), 0);
    }
    popts[0].key = "bridge_password_file";
    popts[0].value = bridgectl_password_path(bridge);
    ko.plugin_opts = popts;
    ko.db_path = co->plugin_db;
    broker = kh_broker_start(&ko);
    ck_assert_msg(broker != NULL, "broker with kedge_plugin.so did not start");

    ck_assert_int_eq(bridgectl_wire_cloudsim(bridge, sim, NODE, kh_broker_port(broker), true), 0);
    bset_long("status_interval_s", 1);
    bset_long("lease_interval_s", 1);
    if (co->node_namespace)
        bset("node_namespace", co->node_namespace);
    if (co->cloud_version)
        bset("cloud_version", co->cloud_version);
    if (co->kubelet_version)
        bset("kubelet_version", co->kubelet_version);
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    if (!co->refuse_link)
        wait_connected();
}

static void teardown(void)
{
    struct chain_exit x;

    chain_down(&bridge, &broker, &sim, true, &x);
    chain_assert_clean(&x);
}

/* ---- cloudsim's view of the node (GET /nodes) ---------------------------------------------- */

struct node_view {
    bool found;
    char ready[16], ready_reason[64];
    int64_t registrations, lease_renew_ms;
};

static void node_view(struct node_view *v)
{
    struct kedge_jdoc *doc = chain_sim_get(sim, "/nodes");
    const struct kedge_jval *n, *c, *name;

    memset(v, 0, sizeof(*v));
    n = kedge_json_get(kedge_jdoc_root(doc), "nodes");
    for (n = n ? n->child : NULL; n; n = n->next) {
        name = kedge_json_get(n, "name");
        if (!name || strcmp(name->str, NODE) != 0)
            continue;
        v->found = true;
        (void)snprintf(v->ready, sizeof(v->ready), "%s", kedge_json_get(n, "ready")->str);
        ck_assert_int_eq(kedge_json_int64(kedge_json_get(n, "registrations"), &v->registrations),
                         0);
        ck_assert_int_eq(kedge_json_int64(kedge_json_get(n, "lease_renew_ms"), &v->lease_renew_ms),
                         0);
        c = kedge_json_get(kedge_json_get(n, "status"), "conditions");
        for (c = c && c->type == KEDGE_JARR ? c->child : NULL; c; c = c->next) {
            const struct kedge_jval *t = kedge_json_get(c, "type"),
                                    *r = kedge_json_get(c, "reason");
            if (t && t->type == KEDGE_JSTR && !strcmp(t->str, "Ready") && r &&
                r->type == KEDGE_JSTR)
                (void)snprintf(v->ready_reason, sizeof(v->ready_reason), "%s", r->str);
        }
    }
    kedge_jdoc_free(doc);
}

static void wait_ready(const char *want, int timeout_ms, struct node_view *v)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);

    for (;;) {
        node_view(v);
        if (v->found && !strcmp(v->ready, want))
            return;
        ck_assert_msg(kt_now_ms() < deadline, "node " NODE " is not Ready=%s at the cloud (%s)",
                      want, v->found ? v->ready : "not there");
        kt_pause_ms(PAUSE_MS);
    }
}

/* ---- what the cloud received ------------------------------------------------------------ */

/* Messages from the edge with this operation and resource (NULL: any) after index since. */
static int count_received(const char *op, const char *resource, const char *content_has)
{
    struct kedge_jdoc *doc = chain_sim_get(sim, "/received?skip_keepalive=1");
    const struct kedge_jval *e;
    int n = 0;

    e = kedge_json_get(kedge_jdoc_root(doc), "messages");
    for (e = e ? e->child : NULL; e; e = e->next) {
        const struct kedge_jval *json = kedge_json_get(e, "json");
        const struct kedge_jval *route = kedge_json_get(json, "route");
        const struct kedge_jval *o = kedge_json_get(route, "operation");
        const struct kedge_jval *r = kedge_json_get(route, "resource");
        const struct kedge_jval *c = kedge_json_get(json, "content");

        if (!o || strcmp(o->str, op) != 0 || (resource && (!r || strcmp(r->str, resource) != 0)))
            continue;
        if (content_has && !(c && c->type == KEDGE_JSTR && strstr(c->str, content_has)))
            continue;
        n++;
    }
    kedge_jdoc_free(doc);
    return n;
}

static void wait_received(const char *op, const char *resource, int at_least)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (count_received(op, resource, NULL) < at_least) {
        ck_assert_msg(kt_now_ms() < deadline, "the cloud did not receive %d %s %s", at_least, op,
                      resource);
        kt_pause_ms(PAUSE_MS);
    }
}

/* ---- kedge-ctl ------------------------------------------------------------------------------ */

/* kedge-ctl -p PORT -P PWFILE -t T args... */
static void ctl(struct ctl_run *r, const char *first, ...)
{
    va_list ap;

    va_start(ap, first);
    ctl_run_v(r, KEDGE_CTL_PATH, kh_scale_ms(RUN_MS), broker ? kh_broker_port(broker) : 1,
              bridgectl_password_path(bridge), first, ap);
    va_end(ap);
}

/* ---- the raw local query interface ------------------------------------------------------------
 */

/* Ask $ke/meta/{ref} with the bridge identity; the answer's payload (malloc'd). */
static char *meta_raw(const char *body)
{
    struct kh_client *c = kh_client_new(kh_broker_port(broker), NULL, BRIDGE_USER, BRIDGE_PASS, 4);
    char ref[40], topic[96], result[128];
    static unsigned seq;
    struct kh_msg m;
    char *out;

    ck_assert_ptr_nonnull(c);
    (void)snprintf(ref, sizeof(ref), "test-%d-%u", (int)getpid(), ++seq);
    (void)snprintf(topic, sizeof(topic), "$ke/meta/%s", ref);
    (void)snprintf(result, sizeof(result), "$ke/meta/%s/result", ref);
    ck_assert_int_eq(kh_client_sub(c, result, 1), 1);
    ck_assert_int_eq(kh_client_pub(c, topic, body, -1, 1, false), 0);
    ck_assert_msg(kh_client_wait(c, result, WAIT_MS, &m) == 0, "no answer to %s", body);
    out = strdup(m.payload);
    ck_assert_ptr_nonnull(out);
    kh_msg_cleanup(&m);
    kh_client_free(c);
    fprintf(stderr, "$ke/meta %s -> %s\n", body, out);
    return out;
}

static void expect_json(const char *actual, const char *expected)
{
    jsoncmp_expect(actual, strlen(actual), expected);
}

/* ---- 1. registration, Ready, NotReady, Ready again ------------------------------------------ */

/* cloud_version alone decides the node namespace: default before v1.23, null from v1.23 */
static const char *const namespaces[] = {"default", "null"};
static const char *const versions[] = {"1.15", "1.23"};

/* obj.a.b as a string (b NULL: obj.a), NULL when absent or not a string */
static const char *jstr_at(const struct kedge_jval *obj, const char *a, const char *b)
{
    const struct kedge_jval *v = kedge_json_get(obj, a);

    if (b)
        v = kedge_json_get(v, b);
    return v && v->type == KEDGE_JSTR ? v->str : NULL;
}

static int64_t num_at(const struct kedge_jval *obj, const char *key)
{
    int64_t n = -1;

    (void)kedge_json_int64(kedge_json_get(obj, key), &n);
    return n;
}

/* A resource.Quantity kubelet writes: a plain integer, or an integer with Ki. */
static long long quantity(const struct kedge_jval *list, const char *name)
{
    const struct kedge_jval *v = kedge_json_get(list, name);
    char *end;
    long long n;

    ck_assert_msg(v && v->type == KEDGE_JSTR, "no %s quantity", name);
    n = strtoll(v->str, &end, 10);
    ck_assert_msg(end != v->str && (!*end || !strcmp(end, "Ki")), "%s: '%s'", name, v->str);
    return !strcmp(end, "Ki") ? n * 1024 : n;
}

/* What a real node's status holds (kubectl get node -o yaml of a kubelet's node), with sane
 * values, and the configured kubeletVersion. */
static void check_node_status(const char *kubelet_version)
{
    struct kedge_jdoc *doc = chain_sim_get(sim, "/object?key=node/" NODE);
    const struct kedge_jval *st = kedge_json_get(kedge_jdoc_root(doc), "status"), *a;
    const struct kedge_jval *cap = kedge_json_get(st, "capacity");
    const struct kedge_jval *alloc = kedge_json_get(st, "allocatable");
    static const char *const res[] = {"cpu", "memory", "pods", "ephemeral-storage"};
    bool internal = false, hostname = false;
    size_t i;

    ck_assert_str_eq(jstr_at(st, "nodeInfo", "kubeletVersion"), kubelet_version);
    ck_assert_str_eq(jstr_at(st, "nodeInfo", "operatingSystem"), "linux");
    ck_assert_msg(
        jstr_at(st, "nodeInfo", "architecture") && *jstr_at(st, "nodeInfo", "architecture") &&
            jstr_at(st, "nodeInfo", "kernelVersion") && *jstr_at(st, "nodeInfo", "kernelVersion") &&
            jstr_at(st, "nodeInfo", "osImage") && *jstr_at(st, "nodeInfo", "osImage"),
        "nodeInfo incomplete");
    /* kubelet's form: <runtime name>://<version> */
    ck_assert_ptr_nonnull(strstr(jstr_at(st, "nodeInfo", "containerRuntimeVersion"), "://"));
    for (a = kedge_json_get(st, "addresses")->child; a; a = a->next) {
        const struct kedge_jval *type = kedge_json_get(a, "type");
        if (type && !strcmp(type->str, "InternalIP")) {
            struct in_addr ia;
            internal = inet_pton(AF_INET, kedge_json_get(a, "address")->str, &ia) == 1;
        } else if (type && !strcmp(type->str, "Hostname")) {
            hostname = !strcmp(kedge_json_get(a, "address")->str, NODE);
        }
    }
    ck_assert_msg(internal && hostname, "addresses: no InternalIP (an IPv4) or Hostname " NODE);
    for (i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
        ck_assert_int_gt(quantity(alloc, res[i]), 0);
        ck_assert_int_le(quantity(alloc, res[i]), quantity(cap, res[i]));
    }
    ck_assert_int_gt(
        num_at(kedge_json_get(kedge_json_get(st, "daemonEndpoints"), "kubeletEndpoint"), "Port"),
        0);
    kedge_jdoc_free(doc);
}

START_TEST(test_node_ready_lifecycle)
{
    const char *ns = namespaces[_i];
    /* the default kubelet version, and one set in the configuration */
    const char *version = _i ? "v1.23.17-edge" : "v1.24.0-kedge";
    struct chain_opts co = {.cloud_version = versions[_i], .kubelet_version = _i ? version : NULL};
    char key_node[128], key_patch[128], sql[512], *v;
    struct node_view nv;
    int64_t until, first_renew;
    long mark;

    chain_up(&co);
    (void)snprintf(key_node, sizeof(key_node), "%s/node/" NODE, ns);
    (void)snprintf(key_patch, sizeof(key_patch), "%s/nodepatch/" NODE, ns);

    /* registered once, Ready as the bridge reports it */
    wait_ready("True", WAIT_MS, &nv);
    ck_assert_int_eq(nv.registrations, 1);
    ck_assert_int_eq(count_received("insert", key_node, NULL), 1);
    first_renew = nv.lease_renew_ms;
    check_node_status(version);

    /* ...and it stays Ready for two grace periods: the lease keeps it alive */
    until = kt_now_ms() + 2 * (int64_t)grace_s() * 1000;
    while (kt_now_ms() < until) {
        node_view(&nv);
        ck_assert_msg(!strcmp(nv.ready, "True"), "node went %s (%s) while the bridge ran", nv.ready,
                      nv.ready_reason);
        kt_pause_ms(PAUSE_MS);
    }
    ck_assert_int_gt(nv.lease_renew_ms, first_renew);

    /* edgecore's keys: the patch under nodepatch, the cloud's Node (with its uid) under node */
    (void)snprintf(sql, sizeof(sql),
                   "SELECT json_extract(value, '$.metadata.uid') FROM meta "
                   "WHERE key = '%s' AND type = 'node'",
                   key_node);
    v = db_text(bridgectl_meta_db_path(bridge), sql);
    ck_assert_msg(v && strlen(v) == 36, "no Node with a uid under %s", key_node);
    free(v);
    (void)snprintf(sql, sizeof(sql),
                   "SELECT json_type(value, '$.status') || ',' || "
                   "ifnull(json_type(value, '$.metadata'), 'none') FROM meta "
                   "WHERE key = '%s' AND type = 'nodepatch'",
                   key_patch);
    v = db_text(bridgectl_meta_db_path(bridge), sql);
    ck_assert_msg(v && !strcmp(v, "object,none"), "%s holds %s, not the patch", key_patch,
                  v ? v : "nothing");
    free(v);

    /* the bridge stops: no more lease renewals, NotReady after the grace period */
    ck_assert_int_eq(bridgectl_stop(bridge), 0);
    wait_ready("Unknown", 2 * grace_s() * 1000 + WAIT_MS, &nv);
    ck_assert_str_eq(nv.ready_reason, "NodeStatusUnknown");

    /* started again: Ready, and the stored Node means no second registration */
    mark = bridgectl_log_mark(bridge);
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    wait_ready("True", WAIT_MS, &nv);
    ck_assert_int_eq(nv.registrations, 1);
    ck_assert_int_eq(count_received("insert", key_node, NULL), 1);
    ck_assert_int_eq(bridgectl_count_log(bridge, mark, "registered with the cloud"), 0);
}
END_TEST

/* ---- 1b. a quick restart is no transition ------------------------------------------------ */

/* kubelet keeps a condition's lastTransitionTime while its status stays the same: a bridge
 * restarted within the grace period (the lease never lapsed) reports Ready since the same
 * time; the node never stopped being Ready. */
START_TEST(test_restart_keeps_ready_since)
{
    static const char *const sql =
        "SELECT json_extract(value, '$.status.conditions[3].lastTransitionTime') || ',' || "
        "json_extract(value, '$.status.conditions[3].type') FROM meta "
        "WHERE key = 'default/nodepatch/" NODE "'";
    const char *patch_key = "default/nodepatch/" NODE;
    char *before, *after;
    struct node_view nv;
    time_t started;
    int patches;

    chain_up(NULL);
    wait_ready("True", WAIT_MS, &nv);
    wait_received("patch", patch_key, 1);
    before = db_text(bridgectl_meta_db_path(bridge), sql);
    ck_assert_msg(before && strstr(before, ",Ready"), "no Ready condition sent: %s",
                  before ? before : "nothing");
    /* a second later, so that a reset transition time would differ */
    started = time(NULL);
    while (time(NULL) < started + 2)
        kt_pause_ms(PAUSE_MS);
    patches = count_received("patch", patch_key, NULL);
    ck_assert_int_eq(bridgectl_stop(bridge), 0);
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    wait_received("patch", patch_key, patches + 1);
    after = db_text(bridgectl_meta_db_path(bridge), sql);
    ck_assert_ptr_nonnull(after);
    ck_assert_str_eq(after, before);
    free(before);
    free(after);
}
END_TEST

/* ---- 2. only the newest status when the link returns -------------------------------------- */

START_TEST(test_newest_status_after_link_return)
{
    const char *patch_key = "default/nodepatch/" NODE, *lease_key = "kube-node-lease/lease/" NODE;
    struct node_view nv;
    int patches, leases;
    time_t back;
    char *hb;

    chain_up(NULL);
    wait_ready("True", WAIT_MS, &nv);
    wait_received("patch", patch_key, 1);

    /* the cloud refuses the link for longer than the grace period: the node goes Unknown, and
     * the bridge computes its status every second meanwhile */
    chain_sim_post(sim, "/link/refuse?seconds=3600");
    wait_ready("Unknown", 2 * grace_s() * 1000 + WAIT_MS, &nv);
    patches = count_received("patch", patch_key, NULL);

    back = time(NULL);
    chain_sim_post(sim, "/link/refuse?seconds=0");
    wait_connected();
    wait_received("patch", patch_key, patches + 1);
    wait_ready("True", WAIT_MS, &nv);
    /* two lease renewals after it, on the same link: nothing else was queued for it */
    leases = count_received("update", lease_key, NULL);
    wait_received("update", lease_key, leases + 2);
    ck_assert_int_eq(count_received("patch", patch_key, NULL), patches + 1);
    /* and what went up was made after the link returned */
    hb = db_text(bridgectl_meta_db_path(bridge),
                 "SELECT json_extract(value, '$.status.conditions[3].lastHeartbeatTime') "
                 "FROM meta WHERE key = 'default/nodepatch/" NODE "'");
    ck_assert_ptr_nonnull(hb);
    {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        ck_assert_ptr_nonnull(strptime(hb, "%Y-%m-%dT%H:%M:%SZ", &tm));
        ck_assert_int_ge((long long)timegm(&tm), (long long)back - 1);
    }
    free(hb);
    /* the status never went through the outbox */
    ck_assert_ptr_null(
        db_text(bridgectl_db_path(bridge),
                "SELECT msg FROM kedge_outbox WHERE msg LIKE '%nodepatch%' LIMIT 1"));
}
END_TEST

/* ---- 3. queries: the cloud first while connected, the store offline ----------------------- */

#define CM_REMOTE                                                                                  \
    "{\"header\":{\"resourceversion\":\"901\"},\"route\":{\"source\":\"edgecontroller\","          \
    "\"group\":\"resource\",\"operation\":\"update\",\"resource\":\"default/configmap/"            \
    "cm-remote\"},"                                                                                \
    "\"content\":{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"            \
    "\"cm-remote\",\"namespace\":\"default\",\"resourceVersion\":\"901\"},\"data\":{\"level\":"    \
    "\"debug\"}}}"
#define CM_OBJECT                                                                                  \
    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cm-remote\","          \
    "\"namespace\":\"default\",\"resourceVersion\":\"901\"},\"data\":{\"level\":\"debug\"}}"

START_TEST(test_meta_query)
{
    struct ctl_run r;
    char *a, *v;
    long mark;

    chain_up(NULL);
    /* cloudsim knows the ConfigMap; the edge has never been sent it (it went to another node) */
    ck_assert_int_eq(simctl_send(sim, "other-node", CM_REMOTE, NULL), 0);
    ck_assert_ptr_null(db_text(bridgectl_meta_db_path(bridge),
                               "SELECT value FROM meta WHERE key = 'default/configmap/cm-remote'"));

    /* connected: asked of the cloud, stored, the reply acked */
    ctl(&r, "meta", "get", "default/configmap/cm-remote", "--source", END);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "source: cloud\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"level\": \"debug\""));
    ctl_run_free(&r);
    ck_assert_int_eq(count_received("query", "default/configmap/cm-remote", NULL), 1);
    v = db_text(bridgectl_meta_db_path(bridge),
                "SELECT type || ' ' || json_extract(value, '$.data.level') FROM meta "
                "WHERE key = 'default/configmap/cm-remote'");
    ck_assert_str_eq(v, "configmap debug");
    free(v);
    wait_received("response", "default/configmap/cm-remote", 1);

    /* the raw interface, as ke.h documents it */
    a = meta_raw("{\"op\":\"query\",\"resource\":\"default/configmap/cm-remote\"}");
    expect_json(a, "{\"ok\":true,\"source\":\"cloud\",\"object\":" CM_OBJECT "}");
    free(a);

    /* unknown to the cloud: its NotFound, clearly */
    ctl(&r, "meta", "get", "default/configmap/nope", END);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "the cloud answered NotFound for default/configmap/nope"));
    ctl_run_free(&r);

    /* a bad request, a bad resource */
    a = meta_raw("{\"op\":\"fly\"}");
    ck_assert_ptr_nonnull(strstr(a, "\"ok\":false"));
    ck_assert_ptr_nonnull(strstr(a, "unknown op"));
    free(a);
    a = meta_raw("{\"op\":\"query\",\"resource\":\"nothing\"}");
    ck_assert_ptr_nonnull(strstr(a, "query needs \\\"resource\\\""));
    free(a);
    ctl(&r, "meta", "get", "configmap", END);
    ck_assert_int_eq(r.status, 2);
    ctl_run_free(&r);

    /* the cloud does not answer: the caller gets an error at the timeout */
    chain_sim_post(sim, "/link/freeze");
    a = meta_raw("{\"op\":\"query\",\"resource\":\"default/configmap/cm-remote\","
                 "\"timeout_ms\":300}");
    expect_json(a, "{\"ok\":false,\"reason\":\"no answer from the cloud for "
                   "default/configmap/cm-remote within 300 ms\"}");
    free(a);
    chain_sim_post(sim, "/link/thaw");

    /* offline: the same query from the store */
    mark = bridgectl_log_mark(bridge);
    chain_sim_post(sim, "/link/refuse?seconds=3600");
    ck_assert_int_eq(bridgectl_wait_log(bridge, mark, "edgehub: reconnecting in", WAIT_MS), 0);
    ctl(&r, "meta", "get", "default/configmap/cm-remote", "--source", END);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "source: local\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"level\": \"debug\""));
    ctl_run_free(&r);
    a = meta_raw("{\"op\":\"query\",\"resource\":\"default/configmap/cm-remote\"}");
    expect_json(a, "{\"ok\":true,\"source\":\"local\",\"object\":" CM_OBJECT "}");
    free(a);
    ctl(&r, "meta", "get", "default/configmap/nope", END);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(
        r.err, "default/configmap/nope is not stored on this node (and the cloud link is down)"));
    ctl_run_free(&r);
    ctl(&r, "meta", "list", "configmap", END);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "KEY"));
    ck_assert_ptr_nonnull(strstr(r.out, "default/configmap/cm-remote  901"));
    ctl_run_free(&r);
    a = meta_raw("{\"op\":\"query\",\"resource\":\"default/configmap\"}");
    expect_json(a, "{\"ok\":true,\"source\":\"local\",\"objects\":[{\"key\":"
                   "\"default/configmap/cm-remote\",\"object\":" CM_OBJECT "}]}");
    free(a);
    /* the cloud saw the connected queries only (kedge-ctl's, the raw one, the frozen one) */
    ck_assert_int_eq(count_received("query", "default/configmap/cm-remote", NULL), 3);
}
END_TEST

/* ---- 4. a Device and its DeviceModel from the cloud: a typed device over MQTT -------------- */

#define METER_MODEL                                                                                \
    "{\"header\":{\"resourceversion\":\"301\"},\"route\":{\"source\":\"devicecontroller\","        \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":"                                \
    "\"default/devicemodel/meter-model\"},\"content\":{\"apiVersion\":"                            \
    "\"devices.kubeedge.io/v1beta1\",\"kind\":\"DeviceModel\",\"metadata\":{\"name\":"             \
    "\"meter-model\",\"namespace\":\"default\",\"resourceVersion\":\"301\"},\"spec\":{"            \
    "\"properties\":[{\"name\":\"power\",\"type\":\"INT\",\"accessMode\":\"ReadOnly\"}]}}}"
#define METER_DEVICE                                                                               \
    "{\"header\":{\"resourceversion\":\"302\"},\"route\":{\"source\":\"devicecontroller\","        \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":\"default/device/meter\"},"      \
    "\"content\":{\"apiVersion\":\"devices.kubeedge.io/v1beta1\",\"kind\":\"Device\","             \
    "\"metadata\":{\"name\":\"meter\",\"namespace\":\"default\",\"resourceVersion\":\"302\"},"     \
    "\"spec\":{\"deviceModelRef\":{\"name\":\"meter-model\"},\"nodeName\":\"" NODE "\","           \
    "\"properties\":[{\"name\":\"power\"}]}}}"
/* the bridge's default generation (cloud_version 1.15) names devices by their bare name */
#define METER_TOPIC "$hw/events/device/meter/twin/update"

START_TEST(test_device_from_cloud)
{
    struct kh_client *d;
    struct kh_msg m;

    chain_up(NULL);
    d = kh_client_new(kh_broker_port(broker), "meter-mapper", NULL, NULL, 4);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(kh_client_sub(d, "$hw/events/node/" NODE "/membership/updated", 1), 1);
    ck_assert_int_eq(kh_client_sub(d, METER_TOPIC "/result", 1), 1);
    ck_assert_int_eq(simctl_send(sim, NODE, METER_MODEL, NULL), 0);
    ck_assert_int_eq(simctl_send(sim, NODE, METER_DEVICE, NULL), 0);
    ck_assert_int_eq(kh_client_wait(d, "$hw/events/node/" NODE "/membership/updated", WAIT_MS, &m),
                     0);
    ck_assert_ptr_nonnull(strstr(m.payload, "\"power\":{\"metadata\":{\"type\":\"int\"}}"));
    kh_msg_cleanup(&m);

    /* a bad int: 400, as edgecore */
    ck_assert_int_eq(kh_client_pub(d, METER_TOPIC,
                                   "{\"event_id\":\"p1\",\"twin\":{\"power\":{\"actual\":{"
                                   "\"value\":\"lots\"}}}}",
                                   -1, 1, false),
                     0);
    ck_assert_int_eq(kh_client_wait(d, METER_TOPIC "/result", WAIT_MS, &m), 0);
    expect_json(m.payload, "{\"event_id\":\"p1\",\"timestamp\":\"<ts>\",\"code\":400,\"reason\":"
                           "\"the value is not int or integer\"}");
    kh_msg_cleanup(&m);
    /* a good one: taken */
    ck_assert_int_eq(kh_client_pub(d, METER_TOPIC,
                                   "{\"event_id\":\"p2\",\"twin\":{\"power\":{\"actual\":{"
                                   "\"value\":\"42\"}}}}",
                                   -1, 1, false),
                     0);
    ck_assert_int_eq(kh_client_wait(d, METER_TOPIC "/result", WAIT_MS, &m), 0);
    ck_assert_ptr_null(strstr(m.payload, "\"code\""));
    ck_assert_ptr_nonnull(strstr(m.payload, "\"value\":\"42\""));
    kh_msg_cleanup(&m);
    kh_client_free(d);
}
END_TEST

/* ---- 4b. kedge-ctl outbox: the bridge's queue and dead letters over $ke/bctl ---------------- */

START_TEST(test_outbox_ctl)
{
    struct ctl_run r;

    chain_up(NULL);
    ctl(&r, "outbox", "list", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "bridge queue: 0 entries, 0 of 268435456 upload bytes"));
    ck_assert_ptr_nonnull(strstr(r.out, "dead letters: 0\n  (empty)\n"));
    ctl_run_free(&r);
    ctl(&r, "outbox", "show", "d:7", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "d:7: no such entry (code 404)"));
    ctl_run_free(&r);
    ctl(&r, "outbox", "drop", "b:7", NULL);
    ck_assert_int_eq(r.status, 1);
    ctl_run_free(&r);
    ctl(&r, "outbox", "retry", "b:1", NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "only a dead letter (d:ID) can be retried"));
    ctl_run_free(&r);
    ctl(&r, "outbox", "drop", "q:1", NULL);
    ck_assert_int_eq(r.status, 2);
    ctl_run_free(&r);
    ctl(&r, "outbox", "list", "--limit", "0", NULL);
    ck_assert_int_eq(r.status, 2);
    ctl_run_free(&r);
    ctl(&r, "outbox", "list", "--limit", "5", NULL);
    ck_assert_int_eq(r.status, 0);
    ctl_run_free(&r);
}
END_TEST

/* ---- 5. kedge-ctl import of an edgecore.db --------------------------------------------------- */

START_TEST(test_import)
{
    struct chain_opts co = {.node_namespace = "default", .refuse_link = true};
    struct bridgectl_opts bo = {0};
    char *edgecore, *plugin_db, *other_meta, *v;
    struct ctl_run r;

    sim_start_for_node();
    bo.password = BRIDGE_PASS;
    ck_assert_int_eq(bridgectl_new(&bo, &bridge), 0);
    edgecore = path_in(bridgectl_dir(bridge), "edgecore.db");
    plugin_db = path_in(bridgectl_dir(bridge), "kedge.db");
    other_meta = path_in(bridgectl_dir(bridge), "other-meta.db");
    ck_assert_int_eq(seed_db(edgecore, FIXTURES "edgecore-meta.sql"), 0);

    /* nothing runs yet: both databases are filled, each in one transaction */
    ctl(&r, "import", edgecore, "--meta-db", bridgectl_meta_db_path(bridge), "--plugin-db",
        plugin_db, END);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "meta 5, sub_topics 1"));
    ck_assert_ptr_nonnull(strstr(r.out, "device 1, device_attr 1, device_twin 2, sub_topics 1"));
    ctl_run_free(&r);
    v = db_text(plugin_db, "SELECT topic FROM sub_topics");
    ck_assert_str_eq(v, "factory/line1/telemetry");
    free(v);
    v = db_text(bridgectl_meta_db_path(bridge), "SELECT topic FROM sub_topics");
    ck_assert_str_eq(v, "factory/line1/telemetry");
    free(v);

    /* a source that is not a database, and a missing one */
    ctl(&r, "import", FIXTURES "edgecore-meta.sql", "--meta-db", other_meta, END);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "is not a SQLite database"));
    ctl_run_free(&r);

    /* the services run: each refuses, and says to stop it */
    co.plugin_db = plugin_db;
    chain_up(&co);
    ctl(&r, "import", edgecore, "--meta-db", bridgectl_meta_db_path(bridge), END);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "kedge-bridge holds it while it runs. Stop kedge-bridge"));
    ctl_run_free(&r);
    ctl(&r, "import", edgecore, "--meta-db", other_meta, "--plugin-db", plugin_db, END);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "Stop mosquitto (kedge_plugin.so) first"));
    ctl_run_free(&r);
    /* found before anything was written: the free meta DB got nothing either */
    if (access(other_meta, F_OK) == 0) {
        v = db_text(other_meta, "SELECT count(*) FROM sqlite_master");
        ck_assert_str_eq(v, "0");
        free(v);
    }

    /* offline (the cloud refuses the link): the imported configmap comes from the store */
    ctl(&r, "meta", "get", "default/configmap/cm-imported", "--source", END);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "source: local\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"app.conf\": \"level=debug\\nport=8080\""));
    ctl_run_free(&r);
    ctl(&r, "meta", "list", "pod", END);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "default/pod/nginx  4711"));
    ctl_run_free(&r);
    /* the twins moved too */
    ctl(&r, "device", "get", "default/imported-meter", END);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\"power\""));
    ck_assert_ptr_nonnull(strstr(r.out, "\"97\""));
    ctl_run_free(&r);

    free(edgecore);
    free(plugin_db);
    free(other_meta);
}
END_TEST

static Suite *node_suite(void)
{
    Suite *s = suite_create("node");
    TCase *tc = tcase_create("node");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_loop_test(tc, test_node_ready_lifecycle, 0,
                        (int)(sizeof(namespaces) / sizeof(namespaces[0])));
    tcase_add_test(tc, test_restart_keeps_ready_since);
    tcase_add_test(tc, test_newest_status_after_link_return);
    tcase_add_test(tc, test_meta_query);
    tcase_add_test(tc, test_device_from_cloud);
    tcase_add_test(tc, test_import);
    suite_add_tcase(s, tc);
    tc = tcase_create("outbox_ctl"); /* CK_RUN_CASE=outbox_ctl runs it alone */
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_outbox_ctl);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(node_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
