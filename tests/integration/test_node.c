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

#include "test_node.h"

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
    node_add_query_tests(tc);
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
    return kh_run_suite(node_suite(), CK_ENV);
}
