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

#include "test_durability.h"

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
    /* twin messages leave the bridge's outbox once the device controller said OK
     * (docs/kubeedge-wire.md §2.9) */
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

/* One case per test, so CK_RUN_CASE=<name> runs one of them. */
void add_case(Suite *s, const char *name, const TTest *test, int timeout_s)
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
    durability_add_health_tests(s);
    durability_add_kill9_tests(s);
    add_case(s, "link_breaks", test_link_breaks, 120);
    add_case(s, "cloud_outage", test_cloud_outage, 240);
    return s;
}

int main(void)
{
    return kh_run_suite(durability_suite(), CK_NORMAL);
}
