/* test_node_fixture.c: the chain test_node runs, cloudsim's view of the node, what the cloud
 * received, kedge-ctl and the raw local query interface. */
#define _GNU_SOURCE

#include "test_node.h"

#define RUN_MS 30000  /* kedge-ctl must have exited by then */
#define GRACE_MS 3000 /* cloudsim's --node-grace-s, before scaling */
#define BRIDGE_USER "kedge-bridge"

struct simctl *sim;
struct kh_broker *broker;
struct bridgectl *bridge;

/* ---- small helpers ------------------------------------------------------------------------- */

int grace_s(void)
{
    int s = kh_scale_ms(GRACE_MS) / 1000;

    return s < 2 ? 2 : s;
}

char *path_in(const char *dir, const char *name)
{
    char *p = NULL;

    ck_assert_int_gt(asprintf(&p, "%s/%s", dir, name), 0);
    return p;
}

/* One text value of a query on a database (NULL when there is no row); malloc'd. */
char *db_text(const char *path, const char *sql)
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

void wait_connected(void)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (!sim_connected()) {
        ck_assert_msg(kt_now_ms() < deadline, "the bridge did not connect to the cloud");
        kt_pause_ms(PAUSE_MS);
    }
}

void sim_start_for_node(void)
{
    struct simctl_opts so = {0};
    char grace[16];
    const char *args[] = {"--node-grace-s", grace, NULL};

    (void)snprintf(grace, sizeof(grace), "%d", grace_s());
    so.node = NODE;
    so.extra_args = args;
    ck_assert_int_eq(simctl_start(&so, &sim), 0);
}

void chain_up(const struct chain_opts *co)
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

void teardown(void)
{
    struct chain_exit x;

    chain_down(&bridge, &broker, &sim, true, &x);
    chain_assert_clean(&x);
}

/* ---- cloudsim's view of the node (GET /nodes) ---------------------------------------------- */

void node_view(struct node_view *v)
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

void wait_ready(const char *want, int timeout_ms, struct node_view *v)
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
int count_received(const char *op, const char *resource, const char *content_has)
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

void wait_received(const char *op, const char *resource, int at_least)
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
void ctl(struct ctl_run *r, const char *first, ...)
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
char *meta_raw(const char *body)
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

void expect_json(const char *actual, const char *expected)
{
    jsoncmp_expect(actual, strlen(actual), expected);
}
