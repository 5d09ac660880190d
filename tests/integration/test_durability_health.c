/* test_durability_health.c: the node's health on $SYS and the edge-to-cloud rate limit
 * (test_durability.c says how the suite runs). */
#define _GNU_SOURCE

#include <math.h>
#include <poll.h>

#include "httpc.h"
#include "kedge/util.h"
#include "test_durability.h"

/* ---- 5. the node's health on $SYS --------------------------------------------------------- */

struct sys_view {
    struct kedge_jdoc *plugin, *bridge;
};

static void sys_view_clear(struct sys_view *v)
{
    kedge_jdoc_free(v->plugin);
    kedge_jdoc_free(v->bridge);
    v->plugin = v->bridge = NULL;
}

static int64_t jint(struct kedge_jdoc *doc, const char *key)
{
    int64_t v = -1;

    ck_assert_msg(doc != NULL, "no status for %s", key);
    ck_assert_msg(kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), key), &v) == 0,
                  "status has no number %s", key);
    return v;
}

static bool jbool(struct kedge_jdoc *doc, const char *key)
{
    const struct kedge_jval *v = kedge_json_get(kedge_jdoc_root(doc), key);

    ck_assert_msg(v && v->type == KEDGE_JBOOL, "status has no boolean %s", key);
    return v->boolean;
}

static bool jstr_is(struct kedge_jdoc *doc, const char *key, const char *want)
{
    const struct kedge_jval *v = kedge_json_get(kedge_jdoc_root(doc), key);

    ck_assert_msg(v && v->type == KEDGE_JSTR, "status has no string %s", key);
    return !strcmp(v->str, want);
}

typedef bool (*sys_pred)(struct sys_view *v, void *ctx);

/* Read $SYS/kedge/<node>/plugin|bridge (retained, then every 5 s) until pred holds. */
static void sys_wait(struct kh_client *w, sys_pred pred, void *ctx, const char *what)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(20000);
    struct sys_view v = {NULL, NULL};
    struct kh_msg m;

    for (;;) {
        ck_assert_msg(kt_now_ms() < deadline, "$SYS never showed %s", what);
        if (kh_client_wait(w, "$SYS/kedge/" NODE "/+", 1000, &m) != 0)
            continue;
        if (!strcmp(m.topic, "$SYS/kedge/" NODE "/plugin")) {
            kedge_jdoc_free(v.plugin);
            v.plugin = NULL;
            ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &v.plugin), 0);
        } else if (!strcmp(m.topic, "$SYS/kedge/" NODE "/bridge")) {
            kedge_jdoc_free(v.bridge);
            v.bridge = NULL;
            ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &v.bridge), 0);
        }
        kh_msg_cleanup(&m);
        if (v.plugin && v.bridge && pred(&v, ctx))
            break;
    }
    sys_view_clear(&v);
}

struct sys_expect {
    int64_t cert_not_after, since_ms, min_reconnects;
    int64_t min_bridge_depth, min_plugin_depth;
    bool link_up, bridge_up;
};

/* Every field of both reports, against what the test knows. */
static bool sys_matches(struct sys_view *v, void *ctx)
{
    const struct sys_expect *e = ctx;
    struct kedge_jdoc *p = v->plugin, *b = v->bridge;
    int64_t now = wall_ms(), depth, oldest, pdepth, age;

    /* the plugin: {"node_name","bridge_connected","cloud_connected","outbox_depth",
     * "outbox_max","outbox_oldest_age_ms","last_ack_ms","devices","db_bytes","store_ok",
     * "bridge"} */
    ck_assert_msg(jstr_is(p, "node_name", NODE), "plugin status names another node");
    ck_assert_int_eq(jint(p, "outbox_max"), 100000);
    ck_assert_int_eq(jint(p, "devices"), N_DEV);
    ck_assert_int_gt(jint(p, "db_bytes"), 0);
    ck_assert_msg(jbool(p, "store_ok"), "store_ok is false");
    ck_assert_msg(kedge_json_get(kedge_jdoc_root(p), "bridge") != NULL, "no bridge member");
    pdepth = jint(p, "outbox_depth");
    age = jint(p, "outbox_oldest_age_ms");
    if (jbool(p, "bridge_connected") != e->bridge_up || pdepth < e->min_plugin_depth)
        return false;
    if (e->min_plugin_depth && !(age > 0 && age < 600000))
        return false;
    if (!e->min_plugin_depth && (pdepth != 0 || age != 0))
        return false;
    if (jint(p, "last_ack_ms") <= 0 || jint(p, "last_ack_ms") > now)
        return false;
    if (!e->bridge_up)
        return true; /* the bridge's report is the last one it gave */
    if (jbool(p, "cloud_connected") != e->link_up)
        return false;

    /* the bridge: {"link","reconnects","last_keepalive_ms","last_delivery_ms","outbox_depth",
     * "outbox_oldest_ms","cert_not_after_s"} */
    ck_assert_int_eq(jint(b, "cert_not_after_s"), e->cert_not_after);
    if (!jstr_is(b, "link", e->link_up ? "connected" : "disconnected") ||
        jint(b, "reconnects") < e->min_reconnects)
        return false;
    depth = jint(b, "outbox_depth");
    oldest = jint(b, "outbox_oldest_ms");
    if (depth < e->min_bridge_depth || (e->link_up && depth != 0))
        return false;
    if (depth ? !(oldest > 0 && oldest <= now) : oldest != 0)
        return false;
    if (e->link_up &&
        !(jint(b, "last_keepalive_ms") >= e->since_ms && jint(b, "last_keepalive_ms") <= now))
        return false;
    return jint(b, "last_delivery_ms") >= e->since_ms && jint(b, "last_delivery_ms") <= now;
}

static int64_t cert_not_after(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    struct tm tm;
    int64_t t = 0;

    if (f)
        fclose(f);
    ck_assert_msg(x != NULL, "cannot read %s", path);
    ck_assert_int_eq(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm), 1);
    t = (int64_t)timegm(&tm);
    X509_free(x);
    return t;
}

/* ---- the same figures on the bridge's /metrics and /healthz --------------------------------- */

/* GET path from the bridge's metrics port: the status, the body in out. */
static int scrape(const char *path, struct kedge_buf *out)
{
    int status = -1;

    out->len = 0;
    ck_assert_int_eq(kt_http_fd(kt_connect_tcp(bridgectl_metrics_port(bridge)), "127.0.0.1", "GET",
                                path, NULL, 5000, &status, out),
                     0);
    return status;
}

/* The value of the sample `name` (a line "name value") in a scrape; NAN when none. */
static double sample(const struct kedge_buf *b, const char *name)
{
    size_t n = strlen(name);
    const char *p;

    for (p = b->data; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

/* Scrape until name is within [lo, hi] (the bridge refreshes nothing: every scrape reads the
 * figures as they are, so this only waits for the state to come). */
static void metrics_wait(const char *name, double lo, double hi, const char *what)
{
    uint64_t end = kedge_now_ms() + (uint64_t)kh_scale_ms(WAIT_MS);
    struct kedge_buf b = KEDGE_BUF_INIT;
    double v = NAN;

    while (kedge_now_ms() < end) {
        ck_assert_int_eq(scrape("/metrics", &b), 200);
        v = sample(&b, name);
        if (v >= lo && v <= hi)
            break;
        (void)poll(NULL, 0, 100);
    }
    ck_assert_msg(v >= lo && v <= hi, "%s: %s is %g, not in [%g, %g]:\n%s", what, name, v, lo, hi,
                  b.data ? b.data : "");
    kedge_buf_cleanup(&b);
}

START_TEST(test_sys_status)
{
    struct sys_expect e = {0};
    struct kh_client *w;
    struct tally *t;
    int next = 1;

    chain_up(NULL);
    add_devices();
    t = tally_new();
    e.cert_not_after = cert_not_after(simctl_cert_path(sim, "edge.crt"));
    w = kh_client_new(kh_broker_port(broker), "dur-sys", NULL, NULL, 4);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(kh_client_sub(w, "$SYS/kedge/" NODE "/+", 0), 0);

    /* healthy: both links up, a delivery and a keepalive since the start, outboxes empty */
    e.since_ms = wall_ms();
    stream(t, &next, 2, NULL, NULL);
    wait_delivered(t, WAIT_MS);
    e.link_up = e.bridge_up = true;
    e.min_reconnects = 0; /* the first link is no reconnection */
    sys_wait(w, sys_matches, &e, "a healthy node");
    metrics_wait("kedge_bridge_cloud_link_up", 1, 1, "a healthy node");
    metrics_wait("kedge_bridge_cloud_reconnects_total", 0, 0, "a fresh node's first link");
    metrics_wait("kedge_bridge_broker_link_up", 1, 1, "a healthy node");
    metrics_wait("kedge_plugin_bridge_connected", 1, 1, "the plugin's figures");
    metrics_wait("kedge_plugin_twin_updates", 1, 1e12, "the plugin's twin updates");
    metrics_wait("kedge_bridge_cert_not_after_timestamp_seconds", (double)e.cert_not_after,
                 (double)e.cert_not_after, "the certificate");
    {
        struct kedge_buf b = KEDGE_BUF_INIT;
        ck_assert_int_eq(scrape("/healthz", &b), 200);
        ck_assert_str_eq(b.data, "ok\n");
        ck_assert_int_eq(scrape("/nope", &b), 404);
        kedge_buf_cleanup(&b);
    }

    /* the cloud refuses: the bridge's outbox holds the stream, the link is down */
    chain_sim_post(sim, "/link/refuse?seconds=120");
    wait_disconnected();
    stream(t, &next, 3, NULL, NULL);
    e.link_up = false;
    e.min_bridge_depth = 6;
    e.since_ms = 0;
    sys_wait(w, sys_matches, &e, "the link down and 6 entries in the bridge's outbox");
    metrics_wait("kedge_bridge_cloud_link_up", 0, 0, "the link down");
    metrics_wait("kedge_bridge_queue_depth", 6, 1e9, "6 entries queued");

    /* back: reconnected once more, everything delivered after the return */
    e.since_ms = wall_ms();
    chain_sim_post(sim, "/link/refuse?seconds=0");
    wait_session(2, 15000);
    wait_delivered(t, DELIVER_MS);
    e.link_up = true;
    e.min_bridge_depth = 0;
    e.min_reconnects = 1;
    sys_wait(w, sys_matches, &e, "the link back, 1 reconnection, the outbox delivered");
    metrics_wait("kedge_bridge_cloud_reconnects_total", 1, 1e9, "the link back");
    metrics_wait("kedge_bridge_queue_depth", 0, 0, "the outbox delivered");

    /* the bridge is gone: the plugin's outbox holds what comes, with its age */
    ck_assert_int_eq(bridgectl_stop(bridge), 0);
    stream(t, &next, 2, NULL, NULL);
    e.bridge_up = false;
    e.min_plugin_depth = 2 * N_DEV + N_DEV; /* 2 uploads each, twin reports folded */
    sys_wait(w, sys_matches, &e, "the bridge gone and 6 entries in the plugin's outbox");
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    wait_delivered(t, DELIVER_MS);
    report("status checks", t, true);
    kh_client_free(w);
    free(t);
}
END_TEST

/* ---- 6. the edge->cloud rate limit holds ----------------------------------------------------- */

START_TEST(test_rate_limit)
{
    static const char *const kv[] = {"cloud_qps", "30", "cloud_burst", "10", NULL};
    static const struct chain_opts co = {.bridge_kv = kv};
    struct kedge_jdoc *doc;
    const struct kedge_jval *e;
    char topic[64], payload[32];
    int64_t first = 0, last = 0;
    int i, n = 0;

    chain_up(&co);
    devs[0].c = kh_client_new(kh_broker_port(broker), "dur-rate", NULL, NULL, 4);
    ck_assert_ptr_nonnull(devs[0].c);
    /* the node's own start-up traffic goes first (it only makes the uploads later) */
    wait_db_int(bridgectl_db_path(bridge), "SELECT count(*) FROM kedge_outbox", 0);
    (void)snprintf(topic, sizeof(topic), UPLOAD_PREFIX "rate");
    for (i = 1; i <= 70; i++) {
        (void)snprintf(payload, sizeof(payload), "{\"seq\":%d}", i);
        ck_assert_int_eq(kh_client_pub(devs[0].c, topic, payload, -1, 1, false), 0);
    }
    {
        int64_t deadline = kt_now_ms() + kh_scale_ms(30000);
        for (;;) {
            n = 0;
            doc = chain_sim_get(sim, "/received?skip_keepalive=1");
            for (e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; e; e = e->next) {
                const struct kedge_jval *r =
                    kedge_json_get(kedge_json_get(kedge_json_get(e, "json"), "route"), "resource");
                int64_t tm = 0;
                if (!r || r->type != KEDGE_JSTR || strcmp(r->str, topic))
                    continue;
                ck_assert_int_eq(kedge_json_int64(kedge_json_get(e, "t_ms"), &tm), 0);
                if (!n++)
                    first = tm;
                last = tm;
            }
            kedge_jdoc_free(doc);
            if (n >= 70)
                break;
            ck_assert_msg(kt_now_ms() < deadline, "only %d of 70 uploads arrived", n);
            kt_pause_ms(PAUSE_MS);
        }
    }
    /* burst 10 at once, then 60 at 30/s: at least (60 - 1) / 30 s between first and last */
    printf("durability: rate limit 30/s burst 10: 70 uploads over %" PRId64
           " ms (%.1f msg/s after the burst)\n",
           last - first, last > first ? 59000.0 / (double)(last - first) : 0.0);
    fflush(stdout);
    ck_assert_msg(last - first >= 1700, "70 uploads in %" PRId64 " ms: faster than 30/s",
                  last - first);
    ck_assert_msg(last - first <= kh_scale_ms(8000), "70 uploads took %" PRId64 " ms",
                  last - first);
}
END_TEST

void durability_add_health_tests(Suite *s)
{
    add_case(s, "rate_limit", test_rate_limit, 60);
    add_case(s, "sys_status", test_sys_status, 120);
}
