/* test_durability_fixture.c: the chain test_durability runs, its devices, the tally of what was
 * sent and acknowledged, and publishing. */
#define _GNU_SOURCE

#include "test_durability.h"

#define BRIDGE_USER "kedge-bridge"
#define BRIDGE_PASS "dur4ble-Secret"
#define UPDATED_TOPIC "$hw/events/node/" NODE "/membership/updated"
#define OUR_UPLOAD_ROWS "SELECT count(*) FROM kedge_outbox WHERE msg LIKE '%/upload/dur/%'"

struct simctl *sim;
struct kh_broker *broker;
struct bridgectl *bridge;

struct dev devs[N_DEV] = {{"default/dur-0", "dur-0", NULL}, {"default/dur-1", "dur-1", NULL}};

/* ---- small things ------------------------------------------------------------------------- */

int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The test's own random choices: rand_r on a seed from KEDGE_DUR_SEED or the clock, printed
 * for a re-run (its own state, so libraries calling rand() do not shift the sequence). */
static unsigned rand_state;

void seed_random(const char *test)
{
    const char *env = getenv("KEDGE_DUR_SEED");
    unsigned seed =
        env && *env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();

    rand_state = seed;
    printf("durability: %s: seed=%u (KEDGE_DUR_SEED=%u repeats it)\n", test, seed, seed);
    fflush(stdout);
}

int rand_in(int lo, int hi) /* [lo, hi] */
{
    return lo + rand_r(&rand_state) % (hi - lo + 1);
}

/* ---- the chain: cloudsim, broker + plugin, bridge ------------------------------------------ */

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

void wait_session(int64_t min_sessions, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);

    while (!(sim_state_bool("connected") && sim_state_int("sessions_total") >= min_sessions)) {
        ck_assert_msg(kt_now_ms() < deadline,
                      "no session %" PRId64 " of node " NODE " at the cloud", min_sessions);
        kt_pause_ms(PAUSE_MS);
    }
}

void chain_up(const struct chain_opts *co)
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

void devices_free(void)
{
    int i;

    for (i = 0; i < N_DEV; i++) {
        kh_client_free(devs[i].c);
        devs[i].c = NULL;
    }
}

void teardown(void)
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

void wait_disconnected(void)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);

    while (sim_state_bool("connected")) {
        ck_assert_msg(kt_now_ms() < deadline, "the cloud still has a session");
        kt_pause_ms(PAUSE_MS);
    }
}

/* ---- databases and the plugin's status ------------------------------------------------------- */

void wait_db_int(const char *path, const char *sql, int64_t want)
{
    db_wait_int(path, sql, want, WAIT_MS);
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

int64_t plugin_status_int(const char *key)
{
    struct kedge_jdoc *doc = plugin_status();
    int64_t v = -1;

    ck_assert_int_eq(kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), key), &v), 0);
    kedge_jdoc_free(doc);
    return v;
}

/* Until the plugin's outbox is empty (the bridge took everything). */
void wait_plugin_drained(void)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS), got;

    while ((got = plugin_status_int("outbox_depth")) != 0) {
        ck_assert_msg(kt_now_ms() < deadline, "plugin outbox_depth %" PRId64 ", expected 0", got);
        kt_pause_ms(PAUSE_MS);
    }
}

/* ---- devices --------------------------------------------------------------------------------- */

/* devicecontroller's membership update (docs/kubeedge-wire.md §2.10) for both devices. */
#define MEMBERSHIP_ADD                                                                             \
    "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":\"update\","     \
    "\"resource\":\"membership\"},\"content\":{\"event_id\":\"ev-dur\",\"timestamp\":"             \
    "1700000000000,\"added_devices\":["                                                            \
    "{\"id\":\"default/dur-0\",\"name\":\"dur-0\",\"description\":\"d0\",\"twin\":{"               \
    "\"temperature\":{\"metadata\":{\"type\":\"int\"}}}},"                                         \
    "{\"id\":\"default/dur-1\",\"name\":\"dur-1\",\"description\":\"d1\",\"twin\":{"               \
    "\"temperature\":{\"metadata\":{\"type\":\"int\"}}}}],\"removed_devices\":null}}"

void devices_connect(void)
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
void add_devices(void)
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

struct tally *tally_new(void)
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
        /* an upload's content is the MQTT payload as a string (docs/kubeedge-wire.md §1.2) */
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
void tally_collect(struct tally *t)
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

struct totals tally_totals(const struct tally *t)
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
void wait_delivered(struct tally *t, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);

    for (;;) {
        tally_collect(t);
        if (!tally_totals(t).lost || kt_now_ms() >= deadline)
            return;
        kt_pause_ms(PAUSE_MS);
    }
}

bool undelivered(struct tally *t)
{
    struct totals x;

    tally_collect(t);
    x = tally_totals(t);
    return x.lost > 0;
}

/* The scenario's line, then the verdict: nothing lost, nothing out of order; and, where no
 * fault was injected (faults false), nothing twice either: at-least-once only repeats what a
 * crash or a broken link left unconfirmed. */
void report(const char *scenario, struct tally *t, bool faults)
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
int put_upload(struct tally *t, int d, int n)
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
int put_twin(struct tally *t, int d, int n)
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

void stream(struct tally *t, int *next, int rounds, after_fn after, void *ctx)
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
