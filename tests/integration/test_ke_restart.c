/* test_ke_restart.c: durability across kill -9, restart and reconnect, and the ack window
 * (test_ke.c says how the suite runs). */
#define _GNU_SOURCE

#include "test_ke.h"

/* ---- 5. durability: kill -9, restart, reconnect --------------------------------------------- */

#define N_DURABLE 20

#define N_FOLDED 5 /* twin updates before the uploads: one entry, the latest value */

/* Entry 0 is the device's twin report (its N_FOLDED updates folded into one), entries
 * 1..N_DURABLE-1 QoS 1 uploads "v<i>". */
static void expect_durable_entry(const struct kh_msg *m, int i)
{
    char tpl[1024], value[16];

    if (i == 0) {
        edge_updated_tpl(tpl, sizeof(tpl), 100 + N_FOLDED - 1, N_FOLDED);
    } else {
        snprintf(value, sizeof(value), "\"v%d\"", i);
        upload_tpl(tpl, sizeof(tpl), "$hw/events/upload/durable", value);
    }
    expect_json(m->payload, m->len, tpl);
}

/* Index of seq in seqs[0..n), or -1. */
static int find_seq(const int64_t *seqs, int n, int64_t seq)
{
    for (int i = 0; i < n; i++)
        if (seqs[i] == seq)
            return i;
    return -1;
}

START_TEST(test_durability)
{
    struct kh_client *b, *d;
    int64_t seqs[N_DURABLE], seq, prev = 0, depth;
    bool acked[N_DURABLE] = {false};
    int i, got, dups = 0;
    struct kh_msg m;

    start_broker(NULL, NULL);
    /* the bridge identity adds the device, then leaves without ever saying hello */
    b = bridge_connect(BRIDGE_ID);
    add_thermo(b);
    kh_client_free(b);

    d = device("thermo-dev", "sensor-7", 4);
    ck_assert_int_eq(kh_client_sub(d, DEV_TOPIC "/twin/update/result", 1), 1);
    for (i = 0; i < N_FOLDED; i++)
        twin_update_value(d, 100 + i); /* success means: committed, outbox entry included */
    for (i = 1; i < N_DURABLE; i++) {
        char value[16];
        snprintf(value, sizeof(value), "v%d", i);
        /* a PUBACK means: committed */
        ck_assert_int_eq(kh_client_pub(d, "$hw/events/upload/durable", value, -1, 1, false), 0);
    }
    kh_client_free(d);

    /* a crash: no cleanup runs */
    ck_assert_int_eq(kh_broker_kill9(broker), 0);
    ck_assert_int_eq(kh_broker_restart(broker), 0);

    b = bridge_up(N_DURABLE);
    for (i = 0; i < N_DURABLE; i++) {
        seqs[i] = bridge_next(b, &m);
        ck_assert_int_gt(seqs[i], prev);
        prev = seqs[i];
        expect_durable_entry(&m, i);
        kh_msg_cleanup(&m);
    }
    ck_assert_int_eq(kh_client_expect_none(b, "$ke/outbox/+", QUIET_MS), 0);

    /* ack the first half, go away, come back (same client id: a session takeover) */
    for (i = 0; i < N_DURABLE / 2; i++) {
        bridge_ack(b, seqs[i]);
        acked[i] = true;
    }
    kh_client_free(b);
    b = bridge_connect(BRIDGE_ID);
    /* what is left: the unacked half, plus any acked entry whose ack the plugin had not stored
     * yet (delivery to the bridge is at-least-once) */
    depth = bridge_hello_depth(b);
    ck_assert_int_ge(depth, N_DURABLE / 2);
    ck_assert_int_le(depth, N_DURABLE);
    /* from the oldest unacked, in order, nothing lost; an acked entry again is a duplicate */
    for (got = 0, prev = 0, i = N_DURABLE / 2; i < N_DURABLE;) {
        int k;
        seq = bridge_next(b, &m);
        ck_assert_int_gt(seq, prev);
        prev = seq;
        k = find_seq(seqs, N_DURABLE, seq);
        ck_assert_msg(k >= 0, "seq %" PRId64 " was never offered before", seq);
        expect_durable_entry(&m, k);
        kh_msg_cleanup(&m);
        if (acked[k]) {
            dups++;
            continue;
        }
        ck_assert_msg(k == i, "expected the entry of seq %" PRId64 ", got seq %" PRId64, seqs[i],
                      seq);
        i++;
        got++;
    }
    ck_assert_int_eq(got, N_DURABLE / 2);
    ck_assert_int_eq(kh_client_expect_none(b, "$ke/outbox/+", QUIET_MS), 0);
    fprintf(stderr, "test_durability: re-offer after reconnect: %d entries, %d duplicates\n",
            got + dups, dups);
    ck_assert_int_eq(got + dups, depth);
    for (i = N_DURABLE / 2; i < N_DURABLE; i++)
        bridge_ack(b, seqs[i]);
    ck_assert_int_eq(ctl_status_int(b, "outbox_depth"), 0);
    kh_client_free(b);
}
END_TEST

/* More entries than the window (KE_WINDOW = 64): the rest follow as acks arrive. */
START_TEST(test_window)
{
    enum { N = 150 };
    struct kh_client *b, *d;
    int64_t prev = 0, seq;
    struct kh_msg m;
    int i, held = 0;

    start_broker(NULL, NULL);
    b = bridge_connect(BRIDGE_ID);
    d = device("uploader", "sensor-7", 4);
    for (i = 0; i < N; i++) {
        char payload[16];
        snprintf(payload, sizeof(payload), "%d", i);
        ck_assert_int_eq(kh_client_pub(d, "a/user/w", payload, -1, 1, false), 0);
    }
    bridge_hello(b, N);
    /* without acks, at most a window arrives */
    for (;;) {
        if (kh_client_wait(b, "$ke/outbox/+", QUIET_MS, &m) != 0)
            break;
        held++;
        kh_msg_cleanup(&m);
    }
    ck_assert_int_eq(held, 64);
    /* reconnect: everything, in order, as we ack */
    kh_client_free(b);
    b = bridge_connect(BRIDGE_ID);
    bridge_hello(b, N);
    for (i = 0; i < N; i++) {
        char want[16];
        struct kedge_msg km;
        seq = bridge_next(b, &m);
        ck_assert_int_gt(seq, prev);
        prev = seq;
        ck_assert_int_eq(kedge_msg_decode(m.payload, (size_t)m.len, &km), 0);
        snprintf(want, sizeof(want), "%d", i);
        ck_assert_str_eq(km.content_str, want);
        kedge_msg_cleanup(&km);
        kh_msg_cleanup(&m);
        bridge_ack(b, seq);
    }
    ck_assert_int_eq(kh_client_expect_none(b, "$ke/outbox/+", QUIET_MS), 0);
    kh_client_free(d);
    kh_client_free(b);
}
END_TEST

void ke_add_restart_tests(TCase *tc)
{
    tcase_add_test(tc, test_durability);
    tcase_add_test(tc, test_window);
}
