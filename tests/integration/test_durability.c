/* Proof that nothing is lost on the way to the cloud: the whole edge node (mosquitto with
 * kedge_plugin.so from harness.h, the real kedge-bridge from bridgectl.h, kedge-cloudsim from
 * simctl.h; real processes on 127.0.0.1) through a 60 s cloud outage, the cloud closing the link
 * under a stream, kill -9 of the bridge, of the broker and of both, and a full plugin outbox;
 * plus the health the node publishes ($SYS/kedge/{node}/plugin|bridge) and the edge->cloud rate
 * limit. CK_RUN_CASE=<case> runs one scenario (the case names are at the end of the file).
 *
 * Every message of a stream carries its identity: devices default/dur-0 and default/dur-1 each
 * publish uploads ($hw/events/upload/dur/<name>, payload {"seq":N,...}) and twin updates
 * (temperature = N, which the plugin turns into device/<id>/twin/edge_updated for the cloud),
 * N increasing per device. A message counts as taken when the device was told so: the PUBACK
 * of a QoS 1 upload, the success result of a twin update (sent after the plugin's commit).
 * What the cloud received (cloudsim's GET /received) is checked per source, by identity:
 *   lost       taken, never arrived (a twin value: only the device's   (must be 0)
 *              last one must arrive; older ones fold into it, issue 13)
 *   dup        arrived again (same source and N)                   (allowed: at-least-once)
 *   reordered  a first arrival with a smaller N than an earlier one (must be 0)
 * Each scenario prints "durability: <scenario>: lost=N dup=N reordered=N ...".
 *
 * Kills land inside the stream: after a random number of publishes, or, for the two instants
 * no outside kill can hit, by the bridge's test-only hook KEDGE_BRIDGE_CRASH_AT
 * (cloudbridge/fault.c): between storing an entry from the plugin and committing it
 * (after_receive), between writing an entry to the cloud and marking it sent (after_send).
 * KEDGE_DUR_SEED=<n> repeats a run's random choices (the seed is printed).
 *
 * Waits are deadlines on a condition; the only fixed time is the 60 s outage, which
 * cloudsim's /link/refuse?seconds=60 ends by itself. The bridge runs with cloud_qps 0 except in
 * the rate-limit case, and with short link settings (keepalive 2 s, hang up after 5 s,
 * reconnect 100 ms .. 1 s, resend unconfirmed twin messages after 2 s).
 */
#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "bridgectl.h"
#include "chain.h"
#include "dbpeek.h"
#include "harness.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/json.h"
#include "simctl.h"
#include "proc.h"
#include "testsupport.h"

#define PAUSE_MS 20 /* between two polls of a deadline loop */

#define WAIT_MS 10000    /* something that takes milliseconds */
#define DELIVER_MS 60000 /* a stream drains to the cloud once the path is whole again */
#define OUTAGE_S 60      /* the figure */
#define NODE "kedge-node"
#define BRIDGE_USER "kedge-bridge"
#define BRIDGE_PASS "dur4ble-Secret"
#define N_DEV 2
#define MAX_SEQ 2048
#define UPLOAD_PREFIX "$hw/events/upload/dur/"
#define UPDATED_TOPIC "$hw/events/node/" NODE "/membership/updated"
#define OUR_ROWS "SELECT count(*) FROM kedge_outbox WHERE msg LIKE '%dur-%'"
#define OUR_UPLOAD_ROWS "SELECT count(*) FROM kedge_outbox WHERE msg LIKE '%/upload/dur/%'"

static struct simctl *sim;
static struct kh_broker *broker;
static struct bridgectl *bridge;

struct dev {
    const char *id, *name;
    struct kh_client *c;
};

static struct dev devs[N_DEV] = {{"default/dur-0", "dur-0", NULL},
                                 {"default/dur-1", "dur-1", NULL}};

/* ---- small things ------------------------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The test's own random choices: rand_r on a seed from KEDGE_DUR_SEED or the clock, printed
 * for a re-run (its own state, so libraries calling rand() do not shift the sequence). */
static unsigned rand_state;

static void seed_random(const char *test)
{
    const char *env = getenv("KEDGE_DUR_SEED");
    unsigned seed =
        env && *env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();

    rand_state = seed;
    printf("durability: %s: seed=%u (KEDGE_DUR_SEED=%u repeats it)\n", test, seed, seed);
    fflush(stdout);
}

static int rand_in(int lo, int hi) /* [lo, hi] */
{
    return lo + rand_r(&rand_state) % (hi - lo + 1);
}

/* ---- the chain: cloudsim, broker + plugin, bridge ------------------------------------------ */

struct chain_opts {
    const char *outbox_max;       /* plugin_opt_outbox_max, NULL: default */
    const char *const *bridge_kv; /* more bridge settings: key, value, ..., NULL */
    bool may_die;                 /* bridgectl_start does not wait: a crash hook may fire first */
};

static void bset(const char *key, const char *value)
{
    ck_assert_int_eq(bridgectl_set(bridge, key, value), 0);
}

static void bset_long(const char *key, long value)
{
    ck_assert_int_eq(bridgectl_set_long(bridge, key, value), 0);
}

static bool sim_state_bool(const char *key);
static int64_t sim_state_int(const char *key);

static void wait_session(int64_t min_sessions, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);

    while (!(sim_state_bool("connected") && sim_state_int("sessions_total") >= min_sessions)) {
        ck_assert_msg(kt_now_ms() < deadline,
                      "no session %" PRId64 " of node " NODE " at the cloud", min_sessions);
        kt_pause_ms(PAUSE_MS);
    }
}

static void chain_up(const struct chain_opts *co)
{
    static const struct chain_opts none;
    struct simctl_opts so = {0};
    struct bridgectl_opts bo = {0};
    struct kh_broker_opts ko = {0};
    struct kh_opt popts[3] = {{NULL, NULL}, {NULL, NULL}, {NULL, NULL}};
    const char *const *kv;

    if (!co)
        co = &none;
    so.node = NODE;
    so.resend_interval_s = 1;
    so.cloud_version = "1.17"; /* the devices are default/dur-N */
    ck_assert_int_eq(simctl_start(&so, &sim), 0);

    bo.password = BRIDGE_PASS;
    bo.ready_log = co->may_die ? "" : NULL;
    ck_assert_int_eq(bridgectl_new(&bo, &bridge), 0);
    popts[0].key = "bridge_password_file";
    popts[0].value = bridgectl_password_path(bridge);
    if (co->outbox_max) {
        popts[1].key = "outbox_max";
        popts[1].value = co->outbox_max;
    }
    ko.plugin_opts = popts;
    broker = kh_broker_start(&ko);
    ck_assert_msg(broker != NULL, "broker with kedge_plugin.so did not start");

    ck_assert_int_eq(bridgectl_wire_cloudsim(bridge, sim, NODE, kh_broker_port(broker), true), 0);
    bset_long("resend_s", 2);
    bset("cloud_version", so.cloud_version);
    for (kv = co->bridge_kv; kv && kv[0]; kv += 2)
        bset(kv[0], kv[1]);
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    if (co->may_die)
        ck_assert_int_eq(bridgectl_wait_log(bridge, 0, BRIDGECTL_READY_LOG, WAIT_MS), 0);
    wait_session(1, WAIT_MS);
}

static void devices_free(void)
{
    int i;

    for (i = 0; i < N_DEV; i++) {
        kh_client_free(devs[i].c);
        devs[i].c = NULL;
    }
}

static void teardown(void)
{
    struct chain_exit x;

    unsetenv("KEDGE_BRIDGE_CRASH_AT");
    devices_free();
    chain_down(&bridge, &broker, &sim, false, &x);
    chain_assert_clean(&x);
}

/* ---- cloudsim's control API ---------------------------------------------------------------- */

static int64_t sim_state_int(const char *key)
{
    struct kedge_jdoc *doc = chain_sim_get(sim, "/state?node=" NODE);
    int64_t v = -1;

    ck_assert_msg(kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), key), &v) == 0,
                  "/state has no number %s", key);
    kedge_jdoc_free(doc);
    return v;
}

static bool sim_state_bool(const char *key)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *v;
    bool b;
    int status = 0;

    /* before the node's first connection cloudsim does not know it: not connected */
    if (simctl_http_json(sim, "GET", "/state?node=" NODE, NULL, &status, &doc) != 0 ||
        status != 200) {
        kedge_jdoc_free(doc);
        return false;
    }
    v = kedge_json_get(kedge_jdoc_root(doc), key);
    ck_assert_msg(v && v->type == KEDGE_JBOOL, "/state has no boolean %s", key);
    b = v->boolean;
    kedge_jdoc_free(doc);
    return b;
}

static void wait_disconnected(void)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (sim_state_bool("connected")) {
        ck_assert_msg(kt_now_ms() < deadline, "the cloud still has a session");
        kt_pause_ms(PAUSE_MS);
    }
}

/* ---- databases and the plugin's status ------------------------------------------------------- */

static void wait_db_int(const char *path, const char *sql, int64_t want)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS), got;

    while ((got = db_int(path, sql)) != want) {
        ck_assert_msg(kt_now_ms() < deadline, "%s: %" PRId64 ", expected %" PRId64, sql, got, want);
        kt_pause_ms(PAUSE_MS);
    }
}

/* The plugin's status ($ke/ctl, what kedge-ctl status asks), as the bridge identity. */
static struct kedge_jdoc *plugin_status(void)
{
    static unsigned ref;
    struct kh_client *c =
        kh_client_new(kh_broker_port(broker), "dur-ctl", BRIDGE_USER, BRIDGE_PASS, 5);
    struct kedge_jdoc *doc = NULL;
    char topic[64], rtopic[80];
    struct kh_msg m;

    ck_assert_ptr_nonnull(c);
    (void)snprintf(topic, sizeof(topic), "$ke/ctl/dur-%u", ++ref);
    (void)snprintf(rtopic, sizeof(rtopic), "%s/result", topic);
    ck_assert_int_eq(kh_client_sub(c, rtopic, 1), 1);
    ck_assert_int_eq(kh_client_pub(c, topic, "{\"op\":\"status\"}", -1, 1, false), 0);
    ck_assert_msg(kh_client_wait(c, rtopic, WAIT_MS, &m) == 0, "no status from the plugin");
    ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &doc), 0);
    kh_msg_cleanup(&m);
    kh_client_free(c);
    return doc;
}

static int64_t plugin_status_int(const char *key)
{
    struct kedge_jdoc *doc = plugin_status();
    int64_t v = -1;

    ck_assert_int_eq(kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), key), &v), 0);
    kedge_jdoc_free(doc);
    return v;
}

/* Until the plugin's outbox is empty (the bridge took everything). */
static void wait_plugin_drained(void)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS), got;

    while ((got = plugin_status_int("outbox_depth")) != 0) {
        ck_assert_msg(kt_now_ms() < deadline, "plugin outbox_depth %" PRId64 ", expected 0", got);
        kt_pause_ms(PAUSE_MS);
    }
}

/* ---- devices --------------------------------------------------------------------------------- */

/* devicecontroller's membership update (kubeedge-wire.md §2.10) for both devices. */
#define MEMBERSHIP_ADD                                                                             \
    "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":\"update\","     \
    "\"resource\":\"membership\"},\"content\":{\"event_id\":\"ev-dur\",\"timestamp\":"             \
    "1700000000000,\"added_devices\":["                                                            \
    "{\"id\":\"default/dur-0\",\"name\":\"dur-0\",\"description\":\"d0\",\"twin\":{"               \
    "\"temperature\":{\"metadata\":{\"type\":\"int\"}}}},"                                         \
    "{\"id\":\"default/dur-1\",\"name\":\"dur-1\",\"description\":\"d1\",\"twin\":{"               \
    "\"temperature\":{\"metadata\":{\"type\":\"int\"}}}}],\"removed_devices\":null}}"

static void devices_connect(void)
{
    char id[32], topic[128];
    int i;

    for (i = 0; i < N_DEV; i++) {
        (void)snprintf(id, sizeof(id), "dur-dev-%d", i);
        /* MQTT v5: a refused QoS 1 publish shows its reason code (0x87) */
        devs[i].c = kh_client_new(kh_broker_port(broker), id, "sensor", "x", 5);
        ck_assert_msg(devs[i].c != NULL, "device %s could not connect", id);
        (void)snprintf(topic, sizeof(topic), "$hw/events/device/%s/twin/update/result", devs[i].id);
        ck_assert_int_eq(kh_client_sub(devs[i].c, topic, 1), 1);
    }
}

/* The cloud adds both devices; wait until the plugin announced them. */
static void add_devices(void)
{
    struct kh_client *watch = kh_client_new(kh_broker_port(broker), "dur-watch", NULL, NULL, 4);
    struct kh_msg m;
    int i;

    ck_assert_ptr_nonnull(watch);
    ck_assert_int_eq(kh_client_sub(watch, UPDATED_TOPIC, 1), 1);
    ck_assert_int_eq(simctl_send(sim, NODE, MEMBERSHIP_ADD, NULL), 0);
    /* one membership/updated per device */
    for (i = 0; i < N_DEV; i++) {
        ck_assert_msg(kh_client_wait(watch, UPDATED_TOPIC, WAIT_MS, &m) == 0,
                      "the plugin did not announce device %d", i);
        kh_msg_cleanup(&m);
    }
    kh_client_free(watch);
    devices_connect();
}

/* ---- the tally --------------------------------------------------------------------------------
 * Sources 0..N_DEV-1: uploads of device i; N_DEV..2*N_DEV-1: its twin messages. */

#define N_SRC (2 * N_DEV)

struct source {
    char resource[96];
    unsigned char taken[MAX_SEQ + 1];
    unsigned short seen[MAX_SEQ + 1];
    int last; /* highest N among first arrivals */
    int dup, reordered;
};

struct tally {
    struct source src[N_SRC];
    long long since; /* last /received index looked at */
    int unexpected;  /* arrivals of what the device was refused */
    unsigned char refused[N_SRC][MAX_SEQ + 1];
};

static struct tally *tally_new(void)
{
    struct tally *t = calloc(1, sizeof(*t));
    int i;

    ck_assert_ptr_nonnull(t);
    t->since = -1;
    for (i = 0; i < N_DEV; i++) {
        (void)snprintf(t->src[i].resource, sizeof(t->src[i].resource), UPLOAD_PREFIX "%s",
                       devs[i].name);
        (void)snprintf(t->src[N_DEV + i].resource, sizeof(t->src[N_DEV + i].resource),
                       "device/%s/twin/edge_updated", devs[i].id);
    }
    return t;
}

/* N of a cloud message from one of our sources, or -1. */
static int seq_of(int src, const struct kedge_jval *json)
{
    const struct kedge_jval *content = kedge_json_get(json, "content"), *v;
    struct kedge_jdoc *doc = NULL;
    int64_t n = -1;

    if (src < N_DEV) {
        /* an upload's content is the MQTT payload as a string (§1.2) */
        if (!content || content->type != KEDGE_JSTR ||
            kedge_json_parse(content->str, content->len, &doc) < 0)
            return -1;
        (void)kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), "seq"), &n);
        kedge_jdoc_free(doc);
    } else {
        v = kedge_json_get(
            kedge_json_get(kedge_json_get(kedge_json_get(content, "twin"), "temperature"),
                           "actual"),
            "value");
        if (v && v->type == KEDGE_JSTR)
            n = strtol(v->str, NULL, 10);
    }
    return n >= 1 && n <= MAX_SEQ ? (int)n : -1;
}

/* Read what the cloud received since the last look. */
static void tally_collect(struct tally *t)
{
    char path[96];
    struct kedge_jdoc *doc;
    const struct kedge_jval *e;
    int src;

    (void)snprintf(path, sizeof(path), "/received?since=%lld&skip_keepalive=1", t->since);
    doc = chain_sim_get(sim, path);
    e = kedge_json_get(kedge_jdoc_root(doc), "messages");
    ck_assert_msg(e && e->type == KEDGE_JARR, "/received has no messages");
    for (e = e->child; e; e = e->next) {
        const struct kedge_jval *json = kedge_json_get(e, "json");
        const struct kedge_jval *res = kedge_json_get(kedge_json_get(json, "route"), "resource");
        int64_t index = 0;
        int n;

        if (kedge_json_int64(kedge_json_get(e, "index"), &index) == 0 && index > t->since)
            t->since = index;
        if (!res || res->type != KEDGE_JSTR)
            continue;
        for (src = 0; src < N_SRC && strcmp(res->str, t->src[src].resource); src++)
            ;
        if (src == N_SRC || (n = seq_of(src, json)) < 0)
            continue;
        if (t->refused[src][n] && !t->src[src].taken[n])
            t->unexpected++;
        if (t->src[src].seen[n]++) {
            t->src[src].dup++;
        } else if (n < t->src[src].last) {
            t->src[src].reordered++;
        } else {
            t->src[src].last = n;
        }
    }
    kedge_jdoc_free(doc);
}

struct totals {
    int taken, arrived, lost, dup, reordered, folded;
};

/* The highest N taken from source s (0: none). */
static int last_taken(const struct source *src)
{
    int n;

    for (n = MAX_SEQ; n > 0 && !src->taken[n]; n--)
        ;
    return n;
}

/* Uploads are events: every one taken must arrive. Twin values are state (issue 13): one
 * superseded by a newer value before it left is folded into it (counted, not lost); the last
 * taken value of each device must arrive, and never before an older one (reordered). */
static bool is_lost(const struct tally *t, int s, int n)
{
    return t->src[s].taken[n] && !t->src[s].seen[n] && (s < N_DEV || n == last_taken(&t->src[s]));
}

static struct totals tally_totals(const struct tally *t)
{
    struct totals x = {0, 0, 0, 0, 0, 0};
    int s, n;

    for (s = 0; s < N_SRC; s++) {
        for (n = 1; n <= MAX_SEQ; n++) {
            x.taken += t->src[s].taken[n];
            x.arrived += t->src[s].seen[n] > 0;
            x.lost += is_lost(t, s, n);
            x.folded += t->src[s].taken[n] && !t->src[s].seen[n] && !is_lost(t, s, n);
        }
        x.dup += t->src[s].dup;
        x.reordered += t->src[s].reordered;
    }
    return x;
}

/* Poll the cloud until everything taken arrived (or the deadline). */
static void wait_delivered(struct tally *t, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);

    for (;;) {
        tally_collect(t);
        if (!tally_totals(t).lost || kt_now_ms() >= deadline)
            return;
        kt_pause_ms(PAUSE_MS);
    }
}

static bool undelivered(struct tally *t)
{
    struct totals x;

    tally_collect(t);
    x = tally_totals(t);
    return x.lost > 0;
}

/* The scenario's line, then the verdict: nothing lost, nothing out of order; and, where no
 * fault was injected (faults false), nothing twice either: at-least-once only repeats what a
 * crash or a broken link left unconfirmed. */
static void report(const char *scenario, struct tally *t, bool faults)
{
    struct totals x = tally_totals(t);
    int s, n, shown = 0;

    printf("durability: %s: lost=%d dup=%d reordered=%d (taken=%d arrived=%d twin values "
           "folded into newer=%d)\n",
           scenario, x.lost, x.dup, x.reordered, x.taken, x.arrived, x.folded);
    fflush(stdout);
    for (s = 0; s < N_SRC && x.lost; s++)
        for (n = 1; n <= MAX_SEQ && shown < 20; n++)
            if (is_lost(t, s, n)) {
                fprintf(stderr, "durability: lost %s #%d\n", t->src[s].resource, n);
                shown++;
            }
    if (x.lost || x.reordered) {
        bridgectl_dump_log(bridge);
        simctl_dump_log(sim);
    }
    ck_assert_msg(x.taken > 0, "%s: nothing was taken", scenario);
    ck_assert_msg(x.lost == 0, "%s: %d messages lost", scenario, x.lost);
    ck_assert_msg(x.reordered == 0, "%s: %d messages out of order", scenario, x.reordered);
    ck_assert_msg(faults || x.dup == 0, "%s: %d duplicates without a fault", scenario, x.dup);
    ck_assert_msg(t->unexpected == 0, "%s: %d refused messages reached the cloud", scenario,
                  t->unexpected);
}

/* ---- publishing ---------------------------------------------------------------------------- */

/* A QoS 1 upload; taken on PUBACK. Returns 0 or what kh_client_pub said. */
static int put_upload(struct tally *t, int d, int n)
{
    char topic[96], payload[96];
    int rc;

    (void)snprintf(topic, sizeof(topic), UPLOAD_PREFIX "%s", devs[d].name);
    (void)snprintf(payload, sizeof(payload), "{\"seq\":%d,\"dev\":\"%s\",\"t\":%" PRId64 "}", n,
                   devs[d].name, wall_ms());
    rc = kh_client_pub(devs[d].c, topic, payload, -1, 1, false);
    if (rc == 0)
        t->src[d].taken[n] = 1;
    else
        t->refused[d][n] = 1;
    return rc;
}

/* A twin update temperature = n; taken on its success result (published after the commit).
 * Returns 0, the result's error code, or -errno. */
static int put_twin(struct tally *t, int d, int n)
{
    char topic[128], payload[160], want[32];
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *code;
    struct kh_msg m;
    int64_t c = 0;
    int rc;

    (void)snprintf(topic, sizeof(topic), "$hw/events/device/%s/twin/update", devs[d].id);
    (void)snprintf(payload, sizeof(payload),
                   "{\"event_id\":\"t%d\",\"twin\":{\"temperature\":{\"actual\":{\"value\":"
                   "\"%d\"}}}}",
                   n, n);
    rc = kh_client_pub(devs[d].c, topic, payload, -1, 1, false);
    if (rc != 0)
        return rc;
    strcat(topic, "/result");
    (void)snprintf(want, sizeof(want), "\"event_id\":\"t%d\"", n);
    for (;;) {
        if (kh_client_wait(devs[d].c, topic, WAIT_MS, &m) != 0)
            return -ETIMEDOUT;
        if (strstr(m.payload, want))
            break;
        kh_msg_cleanup(&m); /* a late result of an earlier attempt */
    }
    ck_assert_int_eq(kedge_json_parse(m.payload, (size_t)m.len, &doc), 0);
    code = kedge_json_get(kedge_jdoc_root(doc), "code");
    if (code && kedge_json_int64(code, &c) == 0 && c) {
        rc = (int)c;
        t->refused[N_DEV + d][n] = 1;
    } else {
        t->src[N_DEV + d].taken[n] = 1;
    }
    kedge_jdoc_free(doc);
    kh_msg_cleanup(&m);
    return rc;
}

/* Rounds of (upload n, twin n) for every device, n from *next on. After each publish,
 * after(count, ctx) may kill something (it restarts what it killed before returning). */
typedef void (*after_fn)(int count, void *ctx);

static void stream(struct tally *t, int *next, int rounds, after_fn after, void *ctx)
{
    static int count;
    int r, d, n, rc;

    for (r = 0; r < rounds; r++) {
        n = (*next)++;
        ck_assert_int_le(n, MAX_SEQ);
        for (d = 0; d < N_DEV; d++) {
            rc = put_upload(t, d, n);
            ck_assert_msg(rc == 0, "upload %s #%d: %d", devs[d].name, n, rc);
            if (after)
                after(++count, ctx);
            rc = put_twin(t, d, n);
            ck_assert_msg(rc == 0, "twin update %s #%d: %d", devs[d].name, n, rc);
            if (after)
                after(++count, ctx);
        }
    }
}

/* ---- 1. the cloud goes away for 60 s ------------------------------------------------------- */

START_TEST(test_cloud_outage)
{
    /* a twin message unconfirmed for 30 s would go again: none may (no fault but the outage) */
    static const char *const kv[] = {"resend_s", "30", NULL};
    static const struct chain_opts co = {.bridge_kv = kv};
    struct tally *t;
    int64_t t0, t_pub, t_back, t_done;
    int next = 1;

    chain_up(&co);
    add_devices();
    t = tally_new();
    /* cloudsim drops the link and refuses every connection for 60 s */
    chain_sim_post(sim, "/link/refuse?seconds=60");
    t0 = kt_now_ms();
    wait_disconnected();
    /* 1000 uploads and 1000 twin updates while the cloud is away */
    stream(t, &next, 500, NULL, NULL);
    t_pub = kt_now_ms();
    /* all of it waits at the edge: the plugin handed it to the bridge's durable outbox, the
     * uploads one by one, each device's twin updates folded into one (issue 13) */
    wait_db_int(bridgectl_db_path(bridge), OUR_ROWS, 1000 + N_DEV);
    wait_plugin_drained();
    tally_collect(t);
    ck_assert_int_eq(tally_totals(t).arrived, 0);

    /* the cloud is back by itself after 60 s; the bridge redials within its backoff */
    wait_session(2, OUTAGE_S * 1000 + 30000);
    t_back = kt_now_ms();
    ck_assert_int_ge(t_back - t0, OUTAGE_S * 1000 - 1000);
    wait_delivered(t, DELIVER_MS);
    t_done = kt_now_ms();
    printf("durability: cloud outage: published 2000 in %" PRId64 " ms, link back after %" PRId64
           " ms, all delivered %" PRId64 " ms later\n",
           t_pub - t0, t_back - t0, t_done - t_back);
    report("cloud outage 60 s (1000 uploads + 1000 twin updates)", t, false);
    /* twin messages leave the bridge's outbox once the device controller said OK (§2.9) */
    wait_db_int(bridgectl_db_path(bridge), OUR_ROWS, 0);
    free(t);
}
END_TEST

/* ---- 1b. the link breaks under a stream ------------------------------------------------------
 * At random points of a stream cloudsim stops reading the link (/link/freeze), the stream goes
 * on for a few more publishes, which the bridge writes into the link, and then the cloud closes
 * it (/link/drop; the last time /link/refuse?seconds=2), as cloudcore's conn.Close does: what
 * the cloud had not read is gone with the socket. The bridge must send it again. */

struct link_breaks {
    int at[6];
    int n, next, drop_at, dropped;
    struct tally *t;
    int mid_stream;
};

static void break_link_at(int count, void *ctx)
{
    struct link_breaks *k = ctx;

    if (k->drop_at && count == k->drop_at) {
        k->mid_stream += undelivered(k->t);
        if (k->next == k->n)
            chain_sim_post(sim, "/link/refuse?seconds=2");
        else
            chain_sim_post(sim, "/link/drop?node=" NODE);
        k->dropped++;
        k->drop_at = 0;
        return;
    }
    if (k->next < k->n && count == k->at[k->next]) {
        /* the bridge may still be redialling after the last break: break the next session */
        wait_session(k->next + 1, WAIT_MS);
        chain_sim_post(sim, "/link/freeze?node=" NODE);
        k->next++;
        k->drop_at = count + rand_in(4, 40);
    }
}

START_TEST(test_link_breaks)
{
    struct link_breaks k = {{0}, 6, 0, 0, 0, NULL, 0};
    int next = 1, i;

    seed_random("link breaks");
    chain_up(NULL);
    add_devices();
    k.t = tally_new();
    for (i = 0; i < k.n; i++)
        k.at[i] = i * 200 + rand_in(20, 140);
    stream(k.t, &next, 300, break_link_at, &k);
    wait_delivered(k.t, DELIVER_MS);
    printf("durability: link breaks: %d sessions closed by the cloud with unread frames (%d with "
           "taken messages not yet delivered)\n",
           k.dropped, k.mid_stream);
    report("cloud closes the link x6 mid-stream (600 uploads + 600 twin updates)", k.t, true);
    ck_assert_int_eq(k.dropped, k.n);
    ck_assert_int_eq(k.mid_stream, k.n);
    free(k.t);
}
END_TEST

/* ---- 2. kill -9 of the bridge at 10 points of a stream -------------------------------------- */

enum kill_how { KILL_OUTSIDE, KILL_AFTER_RECEIVE, KILL_AFTER_SEND };

struct bridge_kills {
    struct tally *t;
    int at_count; /* KILL_OUTSIDE: kill after this many publishes (0: not this round) */
    bool killed;
    int mid_stream; /* kills with taken messages not yet at the cloud */
};

/* Start the bridge again; with a crash hook armed it may die before it is ready (the backlog
 * reaches its n-th pass first): that is a kill inside the stream too. */
static void restart_bridge(bool hook)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    long mark = bridgectl_log_mark(bridge);

    ck_assert_int_eq(bridgectl_start(bridge), 0); /* chain_opts.may_die: returns at once */
    for (;;) {
        if (bridgectl_count_log(bridge, mark, BRIDGECTL_READY_LOG) > 0)
            return;
        if (!bridgectl_running(bridge)) {
            ck_assert_msg(hook && bridgectl_exit_status(bridge) == 128 + SIGKILL,
                          "kedge-bridge exited with %d during start-up",
                          bridgectl_exit_status(bridge));
            return;
        }
        ck_assert_msg(kt_now_ms() < deadline, "kedge-bridge not ready");
        kt_pause_ms(PAUSE_MS);
    }
}

static void kill_bridge_at(int count, void *ctx)
{
    struct bridge_kills *k = ctx;

    if (!k->at_count || count != k->at_count)
        return;
    ck_assert_int_eq(bridgectl_kill9(bridge), 0);
    k->mid_stream += undelivered(k->t);
    k->killed = true;
}

START_TEST(test_bridge_kill9)
{
    static const char *const how_name[] = {"kill -9 from outside", "after_receive (hook)",
                                           "after_send (hook)"};
    static const struct chain_opts co = {.may_die = true};
    struct bridge_kills k = {0};
    char crash[64];
    int next = 1, round, base = 0;

    seed_random("bridge kill -9");
    chain_up(&co);
    add_devices();
    k.t = tally_new();
    for (round = 0; round < 10; round++) {
        /* round 0 uses the bridge chain_up started; every other one a fresh bridge */
        enum kill_how how = round == 0 ? KILL_OUTSIDE : (enum kill_how)(round % 3);
        int n = rand_in(1, 150);
        int64_t deadline;

        k.killed = false;
        k.at_count = 0;
        if (round > 0) {
            if (how == KILL_OUTSIDE)
                unsetenv("KEDGE_BRIDGE_CRASH_AT");
            else {
                (void)snprintf(crash, sizeof(crash), "%s:%d",
                               how == KILL_AFTER_RECEIVE ? "after_receive" : "after_send", n);
                setenv("KEDGE_BRIDGE_CRASH_AT", crash, 1);
            }
            restart_bridge(how != KILL_OUTSIDE);
        }
        if (how == KILL_OUTSIDE)
            k.at_count = base + rand_in(10, 190);
        /* 50 rounds: 100 uploads and 100 twin updates, the bridge forwarding as they come */
        stream(k.t, &next, 50, kill_bridge_at, &k);
        base += 200;
        if (how != KILL_OUTSIDE) {
            /* the hook fires inside the stream, at the n-th entry the bridge handles */
            bool mid = undelivered(k.t);
            deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
            while (bridgectl_running(bridge)) {
                ck_assert_msg(kt_now_ms() < deadline, "the %s hook never fired", how_name[how]);
                kt_pause_ms(PAUSE_MS);
                mid = mid || undelivered(k.t);
            }
            ck_assert_int_eq(bridgectl_exit_status(bridge), 128 + SIGKILL);
            k.mid_stream += mid;
        }
        ck_assert_msg(how != KILL_OUTSIDE || k.killed, "round %d: no kill", round);
        printf("durability: bridge kill %d: %s%s%d\n", round + 1, how_name[how],
               how == KILL_OUTSIDE ? " after publish " : " at pass ",
               how == KILL_OUTSIDE ? k.at_count - (base - 200) : n);
        fflush(stdout);
    }
    unsetenv("KEDGE_BRIDGE_CRASH_AT");
    restart_bridge(false);
    wait_delivered(k.t, DELIVER_MS);
    printf("durability: bridge kill -9: %d of 10 kills left taken messages short of the cloud\n",
           k.mid_stream);
    report("bridge kill -9 x10 (1000 uploads + 1000 twin updates)", k.t, true);
    ck_assert_msg(k.mid_stream >= 3, "only %d kills landed mid-stream", k.mid_stream);
    wait_db_int(bridgectl_db_path(bridge), OUR_ROWS, 0);
    free(k.t);
}
END_TEST

/* ---- 3. kill -9 of the broker, of both ------------------------------------------------------- */

static void restart_broker(void)
{
    ck_assert_int_eq(kh_broker_restart(broker), 0);
    devices_connect();
}

START_TEST(test_broker_kill9_outbox)
{
    struct tally *t;
    int64_t depth;
    int next = 1;

    chain_up(NULL);
    add_devices();
    t = tally_new();
    /* the bridge is away: everything stays in the plugin's outbox, each device's 100 twin
     * reports folded into one */
    ck_assert_int_eq(bridgectl_stop(bridge), 0);
    stream(t, &next, 100, NULL, NULL);
    depth = plugin_status_int("outbox_depth");
    ck_assert_int_eq(depth, 100 * N_DEV + N_DEV);
    devices_free();
    ck_assert_int_eq(kh_broker_kill9(broker), 0);
    restart_broker();
    ck_assert_int_eq(plugin_status_int("outbox_depth"), depth);
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    wait_delivered(t, DELIVER_MS);
    report("broker kill -9 with 200 uploads and 2 folded twin reports in the plugin's outbox", t,
           true);
    free(t);
}
END_TEST

struct broker_kills {
    int at[3];
    int n;
    bool both;
    struct tally *t;
    int mid_stream;
};

static void kill_broker_at(int count, void *ctx)
{
    struct broker_kills *k = ctx;
    int i;

    for (i = 0; i < k->n && k->at[i] != count; i++)
        ;
    if (i == k->n)
        return;
    k->mid_stream += undelivered(k->t);
    devices_free();
    if (k->both) {
        /* both at once: the signals go out back to back, then both are reaped */
        ck_assert_int_eq(kill(bridgectl_pid(bridge), SIGKILL), 0);
        ck_assert_int_eq(kill(kh_broker_pid(broker), SIGKILL), 0);
        ck_assert_int_eq(bridgectl_kill9(bridge), 0);
    }
    ck_assert_int_eq(kh_broker_kill9(broker), 0);
    restart_broker();
    if (k->both)
        ck_assert_int_eq(bridgectl_start(bridge), 0);
    printf("durability: %s killed after publish %d\n", k->both ? "bridge and broker" : "broker",
           count);
    fflush(stdout);
}

static void broker_stream_case(bool both)
{
    struct broker_kills k = {{0}, 0, both, NULL, 0};
    int next = 1, i;

    seed_random(both ? "broker + bridge kill -9" : "broker kill -9");
    chain_up(NULL);
    add_devices();
    k.t = tally_new();
    k.n = both ? 2 : 3;
    /* a stream of 150 rounds (600 publishes); kills spread over it */
    for (i = 0; i < k.n; i++)
        k.at[i] = i * (600 / k.n) + rand_in(5, 600 / k.n - 5);
    stream(k.t, &next, 150, kill_broker_at, &k);
    wait_delivered(k.t, DELIVER_MS);
    report(both ? "bridge + broker kill -9 at once x2 (300 uploads + 300 twin updates)"
                : "broker kill -9 x3 mid-stream (300 uploads + 300 twin updates)",
           k.t, true);
    free(k.t);
}

START_TEST(test_broker_kill9_stream)
{
    broker_stream_case(false);
}
END_TEST

START_TEST(test_both_kill9)
{
    broker_stream_case(true);
}
END_TEST

/* ---- 4. uploads at their bound are refused, twin updates never --------------------------------
 */

START_TEST(test_outbox_full)
{
    static const struct chain_opts co = {.outbox_max = "10"};
    struct tally *t;
    int next = 1, rc, d;

    chain_up(&co);
    add_devices();
    t = tally_new();
    ck_assert_int_eq(bridgectl_stop(bridge), 0);
    /* 5 rounds: 10 uploads fill the 10 upload places, each device's 5 twin messages fold into
     * the one entry waiting for it */
    stream(t, &next, 5, NULL, NULL);
    ck_assert_int_eq(plugin_status_int("outbox_depth"), 10 + N_DEV);
    /* uploads are refused where the device can see it (QoS 1, v5: PUBACK 0x87), nothing is
     * dropped to make room; twin updates still succeed */
    for (d = 0; d < N_DEV; d++) {
        rc = put_upload(t, d, next);
        ck_assert_msg(rc == 0x87, "upload into a full outbox: %d, expected 0x87", rc);
        rc = put_twin(t, d, next);
        ck_assert_msg(rc == 0, "twin update with uploads at their bound: %d, expected 0", rc);
    }
    next++;
    ck_assert_int_eq(kh_broker_wait_log(broker, "outbox: upload refused", WAIT_MS), 0);
    ck_assert_int_eq(plugin_status_int("outbox_depth"), 10 + N_DEV);
    ck_assert_int_eq(plugin_status_int("uploads_refused"), N_DEV);
    ck_assert_int_eq(plugin_status_int("state_pending"), N_DEV);
    /* the bridge is back: the 10 uploads and each device's latest twin go out, the refused
     * uploads never existed */
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    wait_delivered(t, DELIVER_MS);
    ck_assert_int_eq(kh_broker_wait_log(broker, "outbox: uploads are taken again", WAIT_MS), 0);
    /* and new traffic is taken again */
    stream(t, &next, 1, NULL, NULL);
    wait_delivered(t, DELIVER_MS);
    report("uploads at their bound (10 rows), twin never refused", t, false);
    free(t);
}
END_TEST

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
    e.min_reconnects = 1;
    sys_wait(w, sys_matches, &e, "a healthy node");

    /* the cloud refuses: the bridge's outbox holds the stream, the link is down */
    chain_sim_post(sim, "/link/refuse?seconds=120");
    wait_disconnected();
    stream(t, &next, 3, NULL, NULL);
    e.link_up = false;
    e.min_bridge_depth = 6;
    e.since_ms = 0;
    sys_wait(w, sys_matches, &e, "the link down and 6 entries in the bridge's outbox");

    /* back: reconnected once more, everything delivered after the return */
    e.since_ms = wall_ms();
    chain_sim_post(sim, "/link/refuse?seconds=0");
    wait_session(2, 15000);
    wait_delivered(t, DELIVER_MS);
    e.link_up = true;
    e.min_bridge_depth = 0;
    e.min_reconnects = 2;
    sys_wait(w, sys_matches, &e, "the link back, 2 connections, the outbox delivered");

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

/* One case per test, so CK_RUN_CASE=<name> runs one of them. */
static void add_case(Suite *s, const char *name, const TTest *test, int timeout_s)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, timeout_s);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}

static Suite *durability_suite(void)
{
    Suite *s = suite_create("durability");

    add_case(s, "outbox_full", test_outbox_full, 60);
    add_case(s, "rate_limit", test_rate_limit, 60);
    add_case(s, "broker_kill9_outbox", test_broker_kill9_outbox, 120);
    add_case(s, "broker_kill9_stream", test_broker_kill9_stream, 120);
    add_case(s, "both_kill9", test_both_kill9, 120);
    add_case(s, "bridge_kill9", test_bridge_kill9, 180);
    add_case(s, "link_breaks", test_link_breaks, 120);
    add_case(s, "sys_status", test_sys_status, 120);
    add_case(s, "cloud_outage", test_cloud_outage, 240);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(durability_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
