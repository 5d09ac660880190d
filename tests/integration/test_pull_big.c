/* test_pull_big.c: test_pull's case 6 (see test_pull.c): a large pull while twin updates go
 * edge -> cloud through the bridge and keepalives go on; the figures are printed. */
#define _GNU_SOURCE

#include "test_pull.h"

#define DEV "thermo" /* a bare id: the cloud of this chain is v1.15 */
#define MEMBERSHIP_ADD                                                                             \
    "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":\"update\","     \
    "\"resource\":\"membership\"},"                                                                \
    "\"content\":{\"event_id\":\"ev-add\",\"timestamp\":1700000000000,\"added_devices\":["         \
    "{\"id\":\"" DEV "\",\"name\":\"thermo\",\"description\":\"hall\","                            \
    "\"twin\":{\"temperature\":{\"metadata\":{\"type\":\"int\"}}}}],\"removed_devices\":null}}"
#define RT_MAX 4096

struct figures {
    int64_t ms[RT_MAX];
    int n;
};

/* One twin update from the device (MQTT) until the cloud has its edge_updated (the bridge
 * carried it): its round trip in ms. value: unique to this update. */
static int64_t twin_round_trip(struct kh_client *d, int value, long long *since)
{
    char payload[128], needle[64];
    int64_t t0 = kt_now_ms(), deadline = t0 + kh_scale_ms(WAIT_MS);

    snprintf(payload, sizeof(payload),
             "{\"event_id\":\"rt%d\",\"twin\":{\"temperature\":{\"actual\":{\"value\":\"%d\"}}}}",
             value, value);
    snprintf(needle, sizeof(needle), "\"value\":\"%d\"", value);
    ck_assert_int_eq(
        kh_client_pub(d, "$hw/events/device/" DEV "/twin/update", payload, -1, 1, false), 0);
    for (;;) {
        struct kedge_buf b = KEDGE_BUF_INIT;
        char path[96];
        int status = 0;
        bool got;

        snprintf(path, sizeof(path), "/received?since=%lld&skip_keepalive=1", *since);
        ck_assert_int_eq(simctl_http(sim, "GET", path, NULL, &status, &b), 0);
        got = b.data && strstr(b.data, needle) && strstr(b.data, "twin/edge_updated");
        if (!got && kt_now_ms() >= deadline)
            fprintf(stderr, "test_pull: the cloud received since %lld: %.4000s\n", *since,
                    b.data ? b.data : "");
        kedge_buf_cleanup(&b);
        if (got)
            break;
        ck_assert_msg(kt_now_ms() < deadline, "twin update %d never reached the cloud", value);
        kt_pause_ms(2);
    }
    *since = received_top();
    return kt_now_ms() - t0;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static void print_figures(const char *what, struct figures *f)
{
    if (f->n == 0) {
        printf("test_pull: %s: none\n", what);
        return;
    }
    qsort(f->ms, (size_t)f->n, sizeof(f->ms[0]), cmp64);
    printf("test_pull: %s: n=%d min=%lld median=%lld p90=%lld max=%lld ms\n", what, f->n,
           (long long)f->ms[0], (long long)f->ms[f->n / 2], (long long)f->ms[f->n * 9 / 10],
           (long long)f->ms[f->n - 1]);
}

/* The gaps between the keepalives the cloud received around the window of /received indexes
 * (from, to]: from the last one before it to the first one after it, so a loop held for the
 * whole window shows as one long gap. Returns false while no keepalive after `to` is there. */
static bool keepalive_gaps(long long from, long long to, struct figures *f)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *e;
    int64_t last = -1, before = -1;
    bool after = false;
    int status = 0;

    f->n = 0;
    ck_assert_int_eq(simctl_http_json(sim, "GET", "/received", NULL, &status, &doc), 0);
    for (e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; e && !after; e = e->next) {
        const struct kedge_jval *route = kedge_json_get(kedge_json_get(e, "json"), "route");
        int64_t idx = -1, t = -1;

        (void)kedge_json_int64(kedge_json_get(e, "index"), &idx);
        (void)kedge_json_int64(kedge_json_get(e, "t_ms"), &t);
        if (!str_is(kedge_json_get(route, "operation"), "keepalive"))
            continue;
        if (idx <= from) {
            before = t;
            continue;
        }
        if (last < 0)
            last = before;
        if (last >= 0 && f->n < RT_MAX)
            f->ms[f->n++] = t - last;
        last = t;
        after = idx > to;
    }
    kedge_jdoc_free(doc);
    return after;
}

static bool pod_running(const char *name)
{
    struct kedge_jdoc *doc = sim_pod(name);
    bool ok = doc && running_ready(kedge_jdoc_root(doc), NULL);

    kedge_jdoc_free(doc);
    return ok;
}

START_TEST(big_pull_keeps_the_loop)
{
    static struct figures idle, busy, gaps;
    const char *mb_env = getenv("KEDGE_PULL_BIG_MB");
    int mb = mb_env && atoi(mb_env) > 0 ? atoi(mb_env) : 200, value = 7000000, i;
    char img[128];
    struct kh_client *d;
    struct kh_msg m;
    long long since, k0, k1;
    int64_t t0, t_pull;

    if (skip_pull_tests())
        return;
    pull_chain_up(false, "1");
    t0 = kt_now_ms();
    ck_assert_int_eq(registryctl_make_big(reg, enginectl_socket(engine), "localhost/big:v1", mb),
                     0);
    ck_assert_int_eq(
        registryctl_push(reg, enginectl_socket(engine), "localhost/big:v1", "kedge/big:v1"), 0);
    printf("test_pull: a %d MB image made and pushed in %lld ms\n", mb,
           (long long)(kt_now_ms() - t0));
    { /* its layers go with it: the pull downloads them all */
        int st = -1;
        ck_assert_int_eq(enginectl_http(engine, "DELETE", ENGINECTL_API "/images/localhost/big:v1",
                                        NULL, &st, NULL),
                         0);
        ck_assert_int_eq(st, 200);
    }
    ref(img, sizeof(img), "kedge/big:v1");
    send_pull_secret(SECRET, registryctl_password(reg));

    /* a device the plugin knows (its membership announced on the node's topic), and its first
     * update through */
    d = kh_client_new(chain_broker_port(), "thermo-dev", "sensor-7", "x", 4);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(kh_client_sub(d, "$hw/events/node/" NODE "/membership/updated", 1), 1);
    sim_send("%s", MEMBERSHIP_ADD);
    ck_assert_int_eq(
        kh_client_wait(d, "$hw/events/node/" NODE "/membership/updated", kh_scale_ms(WAIT_MS), &m),
        0);
    kh_msg_cleanup(&m);
    since = received_top();
    (void)twin_round_trip(d, ++value, &since);

    /* idle */
    for (i = 0; i < 30; i++)
        idle.ms[idle.n++] = twin_round_trip(d, ++value, &since);

    /* during the pull */
    k0 = received_top();
    t_pull = kt_now_ms();
    send_pull_pod("big", img, "Always", SECRET);
    while (!pod_running("big")) {
        ck_assert_msg(kt_now_ms() - t_pull < kh_scale_ms(10 * WAIT_MS), "pod big never Running");
        if (busy.n < RT_MAX)
            busy.ms[busy.n++] = twin_round_trip(d, ++value, &since);
    }
    t_pull = kt_now_ms() - t_pull;
    k1 = received_top();
    /* the keepalives around the pull: updates go on until the first one after it */
    while (!keepalive_gaps(k0, k1, &gaps)) {
        ck_assert_msg(kt_now_ms() - t0 < kh_scale_ms(20 * WAIT_MS), "no keepalive after the pull");
        (void)twin_round_trip(d, ++value, &since);
    }
    printf("test_pull: pod big (%d MB, Always) Running %lld ms after it was sent\n", mb,
           (long long)t_pull);
    print_figures("twin update round trips, idle", &idle);
    print_figures("twin update round trips, during the pull", &busy);
    print_figures("keepalive gaps from the last one before the pull to the first after it "
                  "(keepalive_s=1)",
                  &gaps);
    ck_assert(image_in_engine(img));
    ck_assert_int_ge(manifest_gets("kedge/big", "v1"), 1);
    /* the updates went on while the pull ran: the loop was not held by it */
    ck_assert_int_gt(busy.n, 0);
    kh_client_free(d);
    pull_teardown();
}
END_TEST

void pull_add_big_tests(Suite *s)
{
    TCase *tc = tcase_create("big");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, big_pull_keeps_the_loop);
    suite_add_tcase(s, tc);
}
