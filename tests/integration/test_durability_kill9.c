/* test_durability_kill9.c: kill -9 of the bridge at each crash point, of the broker, of both
 * (test_durability.c says how the suite runs). */
#define _GNU_SOURCE

#include "test_durability.h"

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

void durability_add_kill9_tests(Suite *s)
{
    add_case(s, "broker_kill9_outbox", test_broker_kill9_outbox, 120);
    add_case(s, "broker_kill9_stream", test_broker_kill9_stream, 120);
    add_case(s, "both_kill9", test_both_kill9, 120);
    add_case(s, "bridge_kill9", test_bridge_kill9, 180);
}
