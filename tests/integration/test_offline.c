/* Offline for a week (issue 13), with real processes: mosquitto with kedge_plugin.so
 * (harness.h), the real kedge-bridge (bridgectl.h), kedge-cloudsim (simctl.h), all on 127.0.0.1.
 *
 *   no_bridge   1000 devices, N twin updates with no bridge attached (each device's value counts
 *               up 1, 2, 3 ...): no update refused (a sample of devices' results, 503 never seen),
 *               the plugin's outbox at most one entry per device, kedge.db and the broker's RSS
 *               flat after the first pass (figures printed). Then cloudsim and the bridge start:
 *               every device's final value is applied by the cloud (GET /applied), never an
 *               older value after a newer one, each final value applied at most twice (the
 *               bridge sends at-least-once: a report whose answer is late when resend_s fires
 *               goes again; coalescing makes the repeat the same value, never an older one).
 *               The time it took is printed.
 *   online_faults  the cloud is back and updates go on (30 passes) while the bridge is killed
 *               (-9) and restarted and the cloud freezes, then drops the link: the same checks.
 *   cloud_away  the bridge runs, the cloud is gone; N twin updates (KEDGE_OFFLINE_AWAY_UPDATES)
 *               plus uploads of 3x both byte budgets (2 MiB in the plugin, 2 MiB in the
 *               bridge), once with upload_policy refuse and once with drop-oldest: the twin
 *               path never refuses; each queue's
 *               stored upload bytes stay within 10 % of its budget; published == refused +
 *               dropped (both queues) + stored (both queues) + delivered (0).
 *   poison      cloudsim rejects one entry (POST /faults/reject): an upload with close 1009, the
 *               same with a kill -9 of the bridge after the first rejection, and a twin report
 *               with an error answer. The link recovers, every other upload arrives in order
 *               and another device's twin reports land, the poison is in the bridge's dead
 *               letters ($ke/bctl dead_list), rejected poison_after (3) times (+1, see there).
 *
 * N: KEDGE_OFFLINE_UPDATES (default 1 000 000; 20 000 in the sanitizer tree, where the broker's
 * RSS is printed but not judged: ASan's quarantine keeps up to 256 MiB of freed memory). The
 * publisher is one MQTT connection at QoS 0 whose last update of every pass over the devices is
 * QoS 1: its PUBACK bounds what is in flight (the broker handles one connection's packets in
 * order).
 * Under KEDGE_VALGRIND the suite is skipped (a million updates under valgrind take hours).
 * CK_RUN_CASE is not used: every scenario is one test of the single tcase.
 */
#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bridgectl.h"
#include "chain.h"
#include "harness.h"
#include "offline_support.h"
#include "kedge/buf.h"
#include "kedge/json.h"
#include "simctl.h"
#include "testsupport.h"

#define NODE "kedge-node"
#define BRIDGE_USER "kedge-bridge"
#define BRIDGE_PASS "0ffline-Secret"
#define BUDGET 2097152L /* upload_budget_bytes of the plugin and of the bridge */
#define UPLOAD_BYTES 8192
#define N_UPLOADS (3 * 2 * BUDGET / UPLOAD_BYTES) /* three times what both queues may hold */
#define UPLOAD_PREFIX "$hw/events/upload/off/"
#define POISON_TOPIC "$hw/events/upload/poison"
#define MIB (1024.0 * 1024.0)

static struct simctl *sim;
static struct kh_broker *broker;
static struct bridgectl *bridge;
static struct kh_client *ctl; /* the bridge identity, for $ke/ctl and $ke/bctl */

/* ---- processes ------------------------------------------------------------------------------ */

/* The broker with the plugin; more plugin options (key, value, ..., NULL) after the defaults. */
static void broker_up(const char *const *kv)
{
    struct kh_opt popts[12];
    struct kh_broker_opts ko = {0};
    size_t n = 0;

    popts[n++] = (struct kh_opt){"bridge_password", BRIDGE_PASS};
    popts[n++] = (struct kh_opt){"node_name", NODE};
    for (; kv && kv[0]; kv += 2) {
        ck_assert_uint_lt(n, 10);
        popts[n++] = (struct kh_opt){kv[0], kv[1]};
    }
    popts[n] = (struct kh_opt){NULL, NULL};
    ko.plugin_opts = popts;
    broker = kh_broker_start(&ko);
    ck_assert_msg(broker != NULL, "broker with kedge_plugin.so did not start");
    ctl = kh_client_new(kh_broker_port(broker), "off-ctl", BRIDGE_USER, BRIDGE_PASS, 5);
    ck_assert_ptr_nonnull(ctl);
}

static void sim_up(void)
{
    struct simctl_opts so = {0};

    so.node = NODE;
    so.resend_interval_s = 1;
    so.cloud_version = "1.15"; /* device ids are the bare names off-NNNN */
    ck_assert_int_eq(simctl_start(&so, &sim), 0);
}

static void bset(const char *key, const char *value)
{
    ck_assert_int_eq(bridgectl_set(bridge, key, value), 0);
}

static void bset_long(const char *key, long value)
{
    ck_assert_int_eq(bridgectl_set_long(bridge, key, value), 0);
}

/* The bridge, pointed at cloudsim's port and certificates (cloudsim may be stopped: its
 * directory stays until simctl_free); more settings (key, value, ..., NULL). */
static void bridge_up(const char *const *kv)
{
    struct bridgectl_opts bo = {0};

    bo.password = BRIDGE_PASS;
    ck_assert_int_eq(bridgectl_new(&bo, &bridge), 0);
    /* cloud_qps 0: the drain is the figure, not the rate limit */
    ck_assert_int_eq(bridgectl_wire_cloudsim(bridge, sim, NODE, kh_broker_port(broker), true), 0);
    bset_long("resend_s", 5);
    bset("cloud_version", "1.15");
    for (; kv && kv[0]; kv += 2)
        bset(kv[0], kv[1]);
    ck_assert_int_eq(bridgectl_start(bridge), 0);
}

static void teardown(void)
{
    struct chain_exit x;

    kh_client_free(ctl);
    ctl = NULL;
    chain_down(&bridge, &broker, &sim, false, &x);
    chain_assert_clean(&x);
}

/* ---- $ke/ctl (plugin) and $ke/bctl (bridge) ---------------------------------------------- */

/* One request on {prefix}/{ref}, the answer from {prefix}/{ref}/result; the caller frees it. */
static struct kedge_jdoc *ctl_call(const char *prefix, const char *req)
{
    static unsigned ref;
    char topic[64], rtopic[80];
    struct kedge_jdoc *doc = NULL;
    struct kh_msg m;

    (void)snprintf(topic, sizeof(topic), "%s/off-%u", prefix, ++ref);
    (void)snprintf(rtopic, sizeof(rtopic), "%s/result", topic);
    ck_assert_int_eq(kh_client_sub(ctl, rtopic, 1), 1);
    ck_assert_int_eq(kh_client_pub(ctl, topic, req, -1, 1, false), 0);
    ck_assert_msg(kh_client_wait(ctl, rtopic, WAIT_MS, &m) == 0, "no answer to %s on %s", req,
                  topic);
    ck_assert_msg(kedge_json_parse(m.payload, (size_t)m.len, &doc) == 0, "%s: %s", topic,
                  m.payload);
    kh_msg_cleanup(&m);
    ck_assert_int_eq(kh_client_unsub(ctl, rtopic), 0);
    return doc;
}

static struct kedge_jdoc *plugin_status(void)
{
    return ctl_call("$ke/ctl", "{\"op\":\"status\"}");
}

static int64_t plugin_int(const char *key)
{
    struct kedge_jdoc *doc = plugin_status();
    int64_t v = jint(kedge_json_get(kedge_jdoc_root(doc), key), key);

    kedge_jdoc_free(doc);
    return v;
}

/* A number from the bridge's last $ke/status as the plugin holds it; -1 while there is none. */
static int64_t bridge_int(const char *key)
{
    struct kedge_jdoc *doc = plugin_status();
    const struct kedge_jval *b = kedge_json_get(kedge_jdoc_root(doc), "bridge");
    int64_t v = -1;

    if (b && b->type == KEDGE_JOBJ)
        v = jint(kedge_json_get(b, key), key);
    kedge_jdoc_free(doc);
    return v;
}

/* ---- devices and the twin flood ------------------------------------------------------------ */

/* The plugin learns the devices as the bridge would deliver them ($ke/down). */
static void add_devices_edge(void)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kh_msg m;

    membership_json(&b);
    ck_assert_int_eq(kh_client_sub(ctl, "$ke/down/off-members/result", 1), 1);
    ck_assert_int_eq(kh_client_pub(ctl, "$ke/down/off-members", b.data, (int)b.len, 1, false), 0);
    ck_assert_msg(kh_client_wait(ctl, "$ke/down/off-members/result", WAIT_MS, &m) == 0,
                  "no result for the membership");
    ck_assert_msg(strstr(m.payload, "\"ok\":true"), "membership refused: %s", m.payload);
    kh_msg_cleanup(&m);
    kedge_buf_cleanup(&b);
    ck_assert_int_eq(plugin_int("devices"), N_DEV);
}

/* The cloud knows the devices too (they were added there before the node went offline). The
 * membership is queued for a node that never connects, so only cloudsim's device controller
 * learns it: the edge has it already. */
static void add_devices_cloud(void)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    membership_json(&b);
    ck_assert_int_eq(simctl_send(sim, "cloud-side-only", b.data, NULL), 0);
    kedge_buf_cleanup(&b);
}

/* ---- 1. no bridge, then the cloud comes back ----------------------------------------------- */

/* Never an older value after a newer one, each final value applied at most twice, the sampled
 * devices' logs in order, and nothing left in the plugin's queue. */
static void check_applied(const struct applied_view *v)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS), depth;
    char id[16];
    int i;

    ck_assert_int_eq(v->regressions, 0);
    ck_assert_int_eq(v->more, 0);
    ck_assert_int_eq(v->devices, N_DEV);
    for (i = 0; i < N_DEV; i += SAMPLE_EVERY) {
        dev_id(i, id, sizeof(id));
        ck_assert_int_ge(applied_log_monotonic(sim, id), 1);
    }
    while ((depth = plugin_int("outbox_depth")) != 0) {
        ck_assert_msg(kt_now_ms() < deadline, "plugin outbox still holds %" PRId64, depth);
        pause_poll();
    }
}

START_TEST(test_no_bridge)
{
    long n = n_updates(), passes = n / N_DEV, p, db1, wal1, rss1, db2, wal2, rss2;
    int64_t t0, t_pass1, t_end, depth, pending = -1;
    struct applied_view v;
    struct flood f;
    char final[24], wal[600];
    double secs;

    if (under_valgrind())
        return;
    broker_up(NULL);
    add_devices_edge();
    flood_open(&f, kh_broker_port(broker));

    t0 = kt_now_ms();
    flood_pass(&f, 1);
    flood_settle(&f);
    t_pass1 = kt_now_ms();
    db1 = file_bytes(kh_broker_db_path(broker));
    (void)snprintf(wal, sizeof(wal), "%s-wal", kh_broker_db_path(broker));
    wal1 = file_bytes(wal);
    rss1 = rss_kb(kh_broker_pid(broker));
    for (p = 2; p <= passes; p++) {
        flood_pass(&f, p);
        /* fail while the disk still has room: an unbounded WAL grows by gigabytes here */
        if (p % 50 == 0)
            ck_assert_msg(file_bytes(kh_broker_db_path(broker)) + file_bytes(wal) <=
                              flat_bound(db1 + wal1),
                          "kedge.db + WAL past %ld bytes after %ld updates (%ld + %ld bytes)",
                          flat_bound(db1 + wal1), p * N_DEV, file_bytes(kh_broker_db_path(broker)),
                          file_bytes(wal));
    }
    flood_settle(&f);
    t_end = kt_now_ms();
    db2 = file_bytes(kh_broker_db_path(broker));
    wal2 = file_bytes(wal);
    rss2 = rss_kb(kh_broker_pid(broker));
    depth = plugin_int("outbox_depth");
    {
        struct kedge_jdoc *doc = plugin_status();
        const struct kedge_jval *sp = kedge_json_get(kedge_jdoc_root(doc), "state_pending");
        if (sp)
            pending = jint(sp, "state_pending");
        kedge_jdoc_free(doc);
    }
    secs = (double)(t_end - t0) / 1000.0;
    printf("offline: no_bridge: updates=%ld devices=%d seconds=%.1f per_s=%.0f "
           "(first pass %.0f/s)\n",
           n, N_DEV, secs, (double)n / secs, N_DEV * 1000.0 / (double)(t_pass1 - t0 + 1));
    printf("offline: no_bridge: sampled_results=%ld refused_503=%ld other_errors=%ld "
           "outbox_depth=%" PRId64 " state_pending=%" PRId64 "\n",
           f.results, f.refused, f.failed, depth, pending);
    printf("offline: no_bridge: kedge.db after_first_pass=%.2f MiB end=%.2f MiB; wal %.2f -> "
           "%.2f MiB; broker VmRSS after_first_pass=%.1f MiB end=%.1f MiB\n",
           db1 / MIB, db2 / MIB, wal1 / MIB, wal2 / MIB, rss1 / 1024.0, rss2 / 1024.0);
    fflush(stdout);
    flood_close(&f);
    ck_assert_msg(f.refused == 0 && f.failed == 0, "twin updates refused: 503 x%ld, other x%ld",
                  f.refused, f.failed);
    ck_assert_msg(depth <= N_DEV, "plugin outbox holds %" PRId64 " entries for %d devices", depth,
                  N_DEV);
    /* the disk the database takes is the file and its WAL (checkpoints do not shrink a WAL) */
    ck_assert_msg(db2 + wal2 <= flat_bound(db1 + wal1), "kedge.db + WAL grew: %ld -> %ld bytes",
                  db1 + wal1, db2 + wal2);
#ifndef KEDGE_ASAN_PRELOAD
    ck_assert_msg(rss2 * 1024 <= flat_bound(rss1 * 1024), "broker RSS grew: %ld -> %ld kB", rss1,
                  rss2);
#endif

    /* the cloud comes back */
    sim_up();
    add_devices_cloud();
    (void)snprintf(final, sizeof(final), "%ld", passes);
    t0 = kt_now_ms();
    bridge_up(NULL);
    wait_final_applied(sim, final, &v);
    t_end = kt_now_ms();
    printf("offline: no_bridge: cloud back: all %d final values applied in %.2f s; applied once "
           "%d, twice %d, more %d; regressions %" PRId64 "\n",
           N_DEV, (double)(t_end - t0) / 1000.0, v.once, v.twice, v.more, v.regressions);
    fflush(stdout);
    check_applied(&v);
    teardown();
}
END_TEST

/* ---- 1b. the cloud is back and the stream goes on, through kill -9 and a dropped link ------ */

#define ONLINE_PASSES 30

/* Updates keep coming while the bridge drains to the cloud; the bridge is killed (-9) and
 * restarted after a third of them; after two thirds the cloud stops reading the link (freeze)
 * for two passes, then drops it. Every device ends
 * at its last value, and the cloud never applied an older value after a newer one. */
START_TEST(test_online_faults)
{
    struct applied_view v;
    struct flood f;
    char final[24];
    long p;

    if (under_valgrind())
        return;
    sim_up();
    add_devices_cloud();
    broker_up(NULL);
    add_devices_edge();
    bridge_up(NULL);
    flood_open(&f, kh_broker_port(broker));
    for (p = 1; p <= ONLINE_PASSES; p++) {
        flood_pass(&f, p);
        if (p == ONLINE_PASSES / 3) {
            ck_assert_int_eq(bridgectl_kill9(bridge), 0);
            ck_assert_int_eq(bridgectl_start(bridge), 0);
        } else if (p == 2 * ONLINE_PASSES / 3) {
            /* reports sent into a link that reads nothing are lost with it: sent again */
            ck_assert_int_eq(simctl_post(sim, "/link/freeze?node=" NODE), 200);
        } else if (p == 2 * ONLINE_PASSES / 3 + 2) {
            ck_assert_int_eq(simctl_post(sim, "/link/drop?node=" NODE), 200);
        }
    }
    flood_settle(&f);
    flood_close(&f);
    (void)snprintf(final, sizeof(final), "%d", ONLINE_PASSES);
    wait_final_applied(sim, final, &v);
    {
        struct kedge_jdoc *doc = NULL;
        int status = 0;
        ck_assert_int_eq(simctl_http_json(sim, "GET", "/applied?log=0", NULL, &status, &doc), 0);
        printf("offline: online_faults: %d passes, kill -9 and link drop: reports applied %" PRId64
               "; final values once %d, twice %d; regressions %" PRId64 "\n",
               ONLINE_PASSES, jint(kedge_json_get(kedge_jdoc_root(doc), "reports"), "reports"),
               v.once, v.twice, v.regressions);
        kedge_jdoc_free(doc);
    }
    fflush(stdout);
    ck_assert_msg(f.refused == 0 && f.failed == 0, "twin updates refused: 503 x%ld, other x%ld",
                  f.refused, f.failed);
    check_applied(&v);
    teardown();
}
END_TEST

/* ---- 2. cloud away: twin updates and uploads past the byte budgets ------------------------- */

static const char *const policies[] = {"refuse", "drop-oldest"};

struct upload_tally {
    long published, accepted, refused;
};

/* Each queue's stored uploads and their bytes, and what each side refused or dropped: the
 * plugin's status (its outbox_depth less its coalesced twin/state entries), the bridge's own
 * table (bridge.db: its upload rows and their encoded size, read live; dead letters live
 * elsewhere) and its last $ke/status (refreshed every few seconds). */
struct queues {
    int64_t p_rows, p_bytes, p_refused, p_dropped, b_rows, b_bytes, b_dropped;
};

static void queues_read(struct queues *q)
{
    struct kedge_jdoc *doc = plugin_status();
    const struct kedge_jval *root = kedge_jdoc_root(doc);

    q->p_rows = jint(kedge_json_get(root, "outbox_depth"), "outbox_depth") -
                jint(kedge_json_get(root, "state_pending"), "state_pending");
    q->p_bytes = jint(kedge_json_get(root, "upload_bytes"), "upload_bytes");
    q->p_refused = jint(kedge_json_get(root, "uploads_refused"), "uploads_refused");
    q->p_dropped = jint(kedge_json_get(root, "uploads_dropped"), "uploads_dropped");
    kedge_jdoc_free(doc);
    q->b_rows = db_int(bridgectl_db_path(bridge),
                       "SELECT count(*) FROM kedge_outbox WHERE msg LIKE '%" UPLOAD_PREFIX "%'");
    q->b_bytes = db_int(bridgectl_db_path(bridge),
                        "SELECT coalesce(sum(length(CAST(msg AS BLOB))), 0) FROM kedge_outbox "
                        "WHERE msg LIKE '%" UPLOAD_PREFIX "%'");
    q->b_dropped = bridge_int("uploads_dropped"); /* its last $ke/status: may lag a few s */
}

static bool counts_match(const struct queues *q, const struct upload_tally *u)
{
    return q->b_dropped >= 0 &&
           q->p_refused + q->p_dropped + q->b_dropped + q->p_rows + q->b_rows == u->published;
}

static void upload_one(struct kh_client *c, struct upload_tally *u)
{
    static char payload[UPLOAD_BYTES];
    char topic[96];
    int rc, head;

    /* {"seq":N,"pad":"uuu...u"}, UPLOAD_BYTES long */
    memset(payload, 'u', sizeof(payload));
    head = snprintf(payload, 32, "{\"seq\":%ld,\"pad\":\"", u->published);
    payload[head] = 'u'; /* snprintf's NUL back to padding */
    payload[UPLOAD_BYTES - 2] = '"';
    payload[UPLOAD_BYTES - 1] = '}';
    (void)snprintf(topic, sizeof(topic), UPLOAD_PREFIX "%ld", u->published);
    rc = kh_client_pub(c, topic, payload, UPLOAD_BYTES, 1, false);
    ck_assert_msg(rc == 0 || rc >= 0x80, "upload %ld: %d", u->published, rc);
    u->published++;
    if (rc == 0)
        u->accepted++;
    else
        u->refused++;
}

START_TEST(test_cloud_away)
{
    const char *policy = policies[_i];
    const char *const pkv[] = {"upload_budget_bytes", "2097152", "upload_policy", policy, NULL};
    const char *const bkv[] = {"upload_budget_bytes", "2097152", "upload_policy", policy, NULL};
    /* half the uploads spread over the passes, half in one burst halfway: a burst fills the
     * plugin's budget while the bridge still stores, so both queues' policies act */
    long passes = away_updates() / N_DEV, p, per_pass = (N_UPLOADS / 2 + passes - 1) / passes;
    struct upload_tally u = {0, 0, 0};
    struct kh_client *up;
    struct queues q;
    struct flood f;
    int64_t deadline, t0 = kt_now_ms();
    long k;

    if (under_valgrind())
        return;
    sim_up();
    ck_assert_int_eq(simctl_stop(sim), 0); /* the cloud is gone; its certificates stay */
    broker_up(pkv);
    bridge_up(bkv);
    add_devices_edge();
    flood_open(&f, kh_broker_port(broker));
    up = kh_client_new(kh_broker_port(broker), "off-uploader", "sensor", "x", 5);
    ck_assert_ptr_nonnull(up);
    for (p = 1; p <= passes; p++) {
        flood_pass(&f, p);
        for (k = 0; k < per_pass + (p == passes / 2 ? N_UPLOADS / 2 : 0) && u.published < N_UPLOADS;
             k++)
            upload_one(up, &u);
    }
    flood_settle(&f);
    kh_client_free(up);
    flood_close(&f);

    /* the plugin and the bridge settle: every upload is counted exactly once */
    deadline = kt_now_ms() + kh_scale_ms(DRAIN_MS);
    for (;;) {
        queues_read(&q);
        if (counts_match(&q, &u) || kt_now_ms() >= deadline)
            break;
        pause_poll();
    }
    printf("offline: cloud_away %s: uploads published=%ld accepted=%ld refused_mqtt=%ld | "
           "plugin rows=%" PRId64 " bytes=%" PRId64 " refused=%" PRId64 " dropped=%" PRId64
           " | bridge rows=%" PRId64 " bytes=%" PRId64 " dropped=%" PRId64
           " | budgets %ld | twin updates %ld, sampled results %ld refused %ld | %.1f s\n",
           policy, u.published, u.accepted, u.refused, q.p_rows, q.p_bytes, q.p_refused,
           q.p_dropped, q.b_rows, q.b_bytes, q.b_dropped, BUDGET, passes * N_DEV, f.results,
           f.refused, (double)(kt_now_ms() - t0) / 1000.0);
    fflush(stdout);
    ck_assert_msg(f.refused == 0 && f.failed == 0, "twin updates refused: 503 x%ld, other x%ld",
                  f.refused, f.failed);
    ck_assert_msg(counts_match(&q, &u), "uploads do not add up (see the line above)");
    ck_assert_int_le(q.p_bytes, BUDGET + BUDGET / 10);
    ck_assert_int_le(q.b_bytes, BUDGET + BUDGET / 10);
    ck_assert_int_ge(q.b_bytes, BUDGET - BUDGET / 10); /* three times the budgets were sent */
    if (_i == 0) { /* refuse: the bridge pushes back, the plugin fills up, then refuses */
        ck_assert_int_ge(q.p_bytes, BUDGET - BUDGET / 10);
        ck_assert_int_eq(q.p_refused, u.refused); /* MQTT v5: a failure PUBACK per refusal */
        ck_assert_int_gt(q.p_refused, 0);
        ck_assert_int_eq(q.p_dropped + q.b_dropped, 0);
    } else { /* drop-oldest: nothing refused, the oldest dropped */
        ck_assert_int_eq(u.refused, 0);
        ck_assert_int_eq(q.p_refused, 0);
        ck_assert_int_gt(q.p_dropped + q.b_dropped, 0);
    }
    teardown();
}
END_TEST

/* ---- 3. a poison upload ------------------------------------------------------------------- */

/* What the cloud rejects, how, and what else happens. An upload answered with an error is not
 * one of them: the bridge counts an upload delivered when the websocket PONG after it comes
 * back, and the PONG overtakes the error answer (cloudsim's lws and cloudcore's gorilla both
 * answer a PING at once), so an upload has no error to be blamed for; a twin report waits for
 * its answer, so the error mode poisons one device's twin report. */
struct poison_case {
    const char *name;
    const char *resource; /* the poison's resource, the rule's prefix */
    const char *mode;     /* close | error */
    bool kill;            /* kill -9 of the bridge after the first rejection */
};

#define POISON_DEV 7  /* off-0007: its twin report is the poison of the error case */
#define WITNESS_DEV 8 /* off-0008: its twin reports must arrive around it */

static const struct poison_case poison_cases[] = {
    {"upload, close", POISON_TOPIC, "close", false},
    {"upload, close, kill -9 of the bridge", POISON_TOPIC, "close", true},
    {"twin report, error", "device/off-0007/twin/edge_updated", "error", false},
};

#define POISON_BEFORE 10
#define POISON_AFTER 20

static int64_t sim_int(const char *path, const char *key)
{
    struct kedge_jdoc *doc = NULL;
    int status = 0;
    int64_t v;

    ck_assert_int_eq(simctl_http_json(sim, "GET", path, NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    v = jint(kedge_json_get(kedge_jdoc_root(doc), key), key);
    kedge_jdoc_free(doc);
    return v;
}

/* The uploads the cloud received: how many distinct seqs, and whether first arrivals were in
 * order. */
static int arrived_uploads(bool *in_order)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *e;
    bool seen[POISON_BEFORE + POISON_AFTER] = {false};
    int status = 0, n = 0, last = -1;

    *in_order = true;
    ck_assert_int_eq(
        simctl_http_json(sim, "GET", "/received?skip_keepalive=1", NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    for (e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; e; e = e->next) {
        const struct kedge_jval *json = kedge_json_get(e, "json");
        const struct kedge_jval *res = kedge_json_get(kedge_json_get(json, "route"), "resource");
        long seq;
        if (!res || res->type != KEDGE_JSTR ||
            strncmp(res->str, UPLOAD_PREFIX, strlen(UPLOAD_PREFIX)))
            continue;
        seq = strtol(res->str + strlen(UPLOAD_PREFIX), NULL, 10);
        if (seq < 0 || seq >= POISON_BEFORE + POISON_AFTER || seen[seq])
            continue;
        seen[seq] = true;
        n++;
        if (seq < last)
            *in_order = false;
        last = (int)seq;
    }
    kedge_jdoc_free(doc);
    return n;
}

/* The bridge's dead letters holding resource. */
static int dead_letters_for(const char *resource)
{
    struct kedge_jdoc *doc = ctl_call("$ke/bctl", "{\"op\":\"dead_list\"}");
    const struct kedge_jval *e = kedge_json_get(kedge_jdoc_root(doc), "entries");
    int n = 0;

    for (e = e && e->type == KEDGE_JARR ? e->child : NULL; e; e = e->next) {
        const struct kedge_jval *r = kedge_json_get(e, "resource");
        n += r && r->type == KEDGE_JSTR && !strcmp(r->str, resource);
    }
    kedge_jdoc_free(doc);
    return n;
}

/* The value the cloud applied last for device idx's temperature, or -1. */
static long applied_value(int idx)
{
    char path[64], id[16];
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *d, *v;
    int status = 0;
    long x = -1;

    dev_id(idx, id, sizeof(id));
    (void)snprintf(path, sizeof(path), "/applied?device=%s&log=0", id);
    ck_assert_int_eq(simctl_http_json(sim, "GET", path, NULL, &status, &doc), 0);
    d = kedge_json_get(kedge_jdoc_root(doc), "devices")->child;
    v = kedge_json_get(kedge_json_get(kedge_json_get(d, "twins"), "temperature"), "value");
    if (v && v->type == KEDGE_JSTR)
        x = strtol(v->str, NULL, 10);
    kedge_jdoc_free(doc);
    return x;
}

static void twin_update(struct kh_client *c, int idx, int value)
{
    char topic[96], payload[128], id[16];

    dev_id(idx, id, sizeof(id));
    (void)snprintf(topic, sizeof(topic), "$hw/events/device/%s/twin/update", id);
    (void)snprintf(payload, sizeof(payload),
                   "{\"event_id\":\"p%d\",\"twin\":{\"temperature\":{\"actual\":{\"value\":"
                   "\"%d\"}}}}",
                   value, value);
    ck_assert_int_eq(kh_client_pub(c, topic, payload, -1, 1, false), 0);
}

/* Uploads 0..29 with the poison after the 10th; the witness device's twin goes 1, 2 around it. */
static void publish_around_poison(const struct poison_case *pc)
{
    struct kh_client *up = kh_client_new(kh_broker_port(broker), "off-uploader", "sensor", "x", 5);
    char topic[96], payload[64];
    int i;

    ck_assert_ptr_nonnull(up);
    twin_update(up, WITNESS_DEV, 1);
    for (i = 0; i < POISON_BEFORE + POISON_AFTER; i++) {
        if (i == POISON_BEFORE && !strcmp(pc->resource, POISON_TOPIC))
            ck_assert_int_eq(kh_client_pub(up, POISON_TOPIC, "{\"poison\":true}", -1, 1, false), 0);
        else if (i == POISON_BEFORE)
            twin_update(up, POISON_DEV, 1);
        (void)snprintf(topic, sizeof(topic), UPLOAD_PREFIX "%d", i);
        (void)snprintf(payload, sizeof(payload), "{\"seq\":%d}", i);
        ck_assert_int_eq(kh_client_pub(up, topic, payload, -1, 1, false), 0);
    }
    twin_update(up, WITNESS_DEV, 2);
    kh_client_free(up);
}

START_TEST(test_poison)
{
    static const char *const bkv[] = {"resend_s", "1", NULL}; /* error answers: resent soon */
    const struct poison_case *pc = &poison_cases[_i];
    char rule[160];
    int64_t deadline, rejections, t0 = kt_now_ms();
    bool in_order = false;
    int arrived = 0, dead = 0;
    long witness = -1;

    if (under_valgrind())
        return;
    sim_up();
    add_devices_cloud();
    (void)snprintf(rule, sizeof(rule), "{\"resource_prefix\":\"%s\",\"mode\":\"%s\"}", pc->resource,
                   pc->mode);
    {
        struct kedge_buf body = KEDGE_BUF_INIT;
        int status = 0;
        ck_assert_int_eq(simctl_http(sim, "POST", "/faults/reject", rule, &status, &body), 0);
        ck_assert_int_eq(status, 200);
        kedge_buf_cleanup(&body);
    }
    broker_up(NULL);
    add_devices_edge();
    bridge_up(bkv);
    publish_around_poison(pc);
    if (pc->kill) { /* between the first and the second rejection */
        deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
        while (sim_int("/faults", "rejections_total") < 1) {
            ck_assert_msg(kt_now_ms() < deadline, "the poison never reached the cloud");
            pause_poll();
        }
        ck_assert_int_eq(bridgectl_kill9(bridge), 0);
        ck_assert_int_eq(bridgectl_start(bridge), 0);
    }
    deadline = kt_now_ms() + kh_scale_ms(DRAIN_MS);
    for (;;) {
        arrived = arrived_uploads(&in_order);
        dead = dead_letters_for(pc->resource);
        witness = applied_value(WITNESS_DEV);
        if ((arrived == POISON_BEFORE + POISON_AFTER && dead == 1 && witness == 2) ||
            kt_now_ms() >= deadline)
            break;
        pause_poll();
    }
    rejections = sim_int("/faults", "rejections_total");
    printf("offline: poison (%s): uploads arrived %d of %d in_order=%d; witness twin at %ld; "
           "poison rejected %" PRId64 " times; in dead letters %d; cloud sessions %" PRId64
           " | %.1f s\n",
           pc->name, arrived, POISON_BEFORE + POISON_AFTER, in_order, witness, rejections, dead,
           sim_int("/state?node=" NODE, "sessions_total"), (double)(kt_now_ms() - t0) / 1000.0);
    fflush(stdout);
    ck_assert_int_eq(arrived, POISON_BEFORE + POISON_AFTER);
    ck_assert(in_order);
    ck_assert_int_eq(witness, 2);
    ck_assert_int_eq(dead, 1);
    /* poison_after (3) failures in a row. One more close is allowed: a close while several
     * entries were on the link blames none of them until the bridge sends one at a time (its
     * probe mode). A kill -9 right after a rejection may lose the failure the bridge had not
     * recorded yet: one more again. An error answer names its entry. */
    ck_assert_int_ge(rejections, 3);
    ck_assert_int_le(rejections, 3 + !strcmp(pc->mode, "close") + pc->kill);
    deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    while (bridge_int("dead_letters") != 1) {
        ck_assert_msg(kt_now_ms() < deadline, "the bridge's status has dead_letters %" PRId64,
                      bridge_int("dead_letters"));
        pause_poll();
    }
    teardown();
}
END_TEST

static Suite *offline_suite(void)
{
    Suite *s = suite_create("offline");
    TCase *tc = tcase_create("offline");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_no_bridge);
    tcase_add_test(tc, test_online_faults);
    tcase_add_loop_test(tc, test_cloud_away, 0, 2);
    tcase_add_loop_test(tc, test_poison, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kh_run_suite(offline_suite(), CK_ENV);
}
