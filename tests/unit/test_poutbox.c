/* plugin/outbox.c on a real SQLite store: twin/state reports folded per resource (the merged
 * entry replaces the waiting one with a new seq, in the open batch, memory copies and counts
 * following), uploads under the per-upload cap, the byte budget and the row bound with both
 * policies, a failed commit, operator drops. Offers to the bridge are recorded by the
 * publisher the outbox is given.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "outbox.h"
#include "db.h"
#include "unit.h"

#define TWIN_A "device/a/twin/edge_updated"
#define TWIN_B "device/b/twin/edge_updated"
#define STATE_A "device/a/state/update"

static struct unit_db db;
static struct plugin_config cfg;
static struct store *st;
static struct outbox ob;

/* what the bridge was offered */
static int64_t offers[64];
static size_t n_offers;
static char last_offer[4096];

static int record_offer(void *ctx, const char *client_id, const char *topic, char *payload,
                        size_t len, int qos, bool retain)
{
    (void)ctx;
    ck_assert_int_eq(qos, 0); /* the table is the durability, $ke/ack the receipt */
    ck_assert(!retain);
    ck_assert_str_eq(client_id, "bridge");
    ck_assert_uint_lt(n_offers, sizeof(offers) / sizeof(offers[0]));
    offers[n_offers++] = strtoll(topic + strlen(KE_OUTBOX_PREFIX), NULL, 10);
    (void)snprintf(last_offer, sizeof(last_offer), "%.*s", (int)len, payload);
    kedge_free(payload);
    return 0;
}

static const struct publisher offer_pub = {record_offer, NULL};

static void quiet(int level, const char *line)
{
    (void)level;
    (void)line;
}

static void start(void)
{
    struct store_opts o = {db.path, false, false};

    ck_assert_int_eq(store_open(&o, &st), 0);
    ck_assert_int_eq(outbox_init(&ob, st, &cfg, &offer_pub), 0);
}

static void stop(void)
{
    outbox_cleanup(&ob);
    store_close(st);
    st = NULL;
}

static void setup(void)
{
    unit_db_init(&db);
    memset(&cfg, 0, sizeof(cfg));
    cfg.outbox_max = 100000;
    cfg.max_upload_bytes = 16 << 20;
    cfg.upload_budget_bytes = 256 << 20;
    cfg.upload_policy = "refuse";
    kedge_log_set_sink(quiet);
    n_offers = 0;
    unit_count_allocs();
    start();
}

static void teardown(void)
{
    stop();
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
    unit_db_cleanup(&db);
}

static void commit(int want)
{
    int rc = store_commit(st);

    ck_assert_int_eq(rc, want);
    outbox_committed(&ob, rc);
}

static const char *q(const char *sql)
{
    static char buf[8192];

    return unit_db_text(&db, sql, buf, sizeof(buf));
}

static void twin(const char *resource, const char *event, const char *key, const char *value)
{
    char content[256];

    (void)snprintf(content, sizeof(content),
                   "{\"event_id\":\"%s\",\"timestamp\":1,\"twin\":{\"%s\":{\"actual\":"
                   "{\"value\":\"%s\"}}}}",
                   event, key, value);
    ck_assert_int_eq(outbox_add_state(&ob, resource, content, strlen(content)), 0);
}

static int upload(const char *topic, size_t n, char fill)
{
    char *p = malloc(n + 1);
    int rc;

    memset(p, fill, n);
    p[n] = '\0';
    rc = outbox_add_upload(&ob, "dev-client", topic, p, n);
    free(p);
    return rc;
}

/* The encoded size of one upload of n bytes (all of the same size in a test). */
static int64_t upload_size(size_t n)
{
    int64_t before = ob.held.upload_bytes, size;

    ck_assert_int_eq(upload("$hw/events/upload/x", n, 'p'), 0);
    size = ob.held.upload_bytes - before;
    commit(0);
    return size;
}

/* ---- twin and state: folded ------------------------------------------------------------- */

START_TEST(fold_committed_entry)
{
    twin(TWIN_A, "e1", "k1", "1");
    twin(TWIN_B, "e2", "k1", "x");
    commit(0);
    ck_assert_int_eq(ob.depth, 2);
    twin(TWIN_A, "e3", "k2", "2");
    /* the open batch sees one entry for device a, at a new seq, holding both keys */
    ck_assert_str_eq(q("SELECT count(*) FROM kedge_outbox WHERE subject = '" TWIN_A "'"), "1");
    commit(0);
    ck_assert_int_eq(ob.depth, 2);
    ck_assert_int_eq(ob.held.states, 2);
    ck_assert_int_eq(ob.n.coalesced, 1);
    ck_assert_str_eq(q("SELECT count(*) FROM kedge_outbox WHERE seq = 1"), "0");
    ck_assert_str_eq(q("SELECT seq FROM kedge_outbox WHERE subject = '" TWIN_A "'"), "3");
    ck_assert_ptr_nonnull(strstr(q("SELECT msg FROM kedge_outbox WHERE seq = 3"),
                                 "\"twin\":{\"k1\":{\"actual\":{\"value\":\"1\"}},\"k2\":"));
    ck_assert_ptr_nonnull(strstr(q("SELECT msg FROM kedge_outbox WHERE seq = 3"), "\"e3\""));
    /* state: the newer replaces the older */
    ck_assert_int_eq(outbox_add_state(&ob, STATE_A, "\"online\"", 8), 0);
    ck_assert_int_eq(outbox_add_state(&ob, STATE_A, "\"offline\"", 9), 0);
    commit(0);
    ck_assert_int_eq(ob.held.states, 3);
    ck_assert_int_eq(ob.depth, 3);
    ck_assert_ptr_nonnull(
        strstr(q("SELECT msg FROM kedge_outbox WHERE subject = '" STATE_A "'"), "offline"));
}
END_TEST

/* Replaced in its own batch: only the merged entry is offered after the commit. */
START_TEST(fold_in_batch_offers_merged_only)
{
    ck_assert_int_eq(outbox_bridge_up(&ob, "bridge"), 0);
    twin(TWIN_A, "e1", "k1", "1");
    twin(TWIN_A, "e2", "k2", "2");
    twin(TWIN_A, "e3", "k1", "3");
    ck_assert_int_eq(ob.n_mem, 1);
    commit(0);
    ck_assert_uint_eq(n_offers, 1);
    ck_assert_int_eq(offers[0], 3);
    ck_assert_ptr_nonnull(strstr(last_offer, "\"twin\":{\"k1\":{\"actual\":{\"value\":\"3\"}},"
                                             "\"k2\":{\"actual\":{\"value\":\"2\"}}}"));
    ck_assert_int_eq(ob.depth, 1);
    ck_assert_int_eq(ob.inflight, 1);
}
END_TEST

/* An offered entry replaced before its ack: the ack of the old seq deletes nothing and still
 * frees its place in the window; the new one is offered and acked as usual. */
START_TEST(fold_offered_entry_then_acks)
{
    ck_assert_int_eq(outbox_bridge_up(&ob, "bridge"), 0);
    twin(TWIN_A, "e1", "k1", "1");
    commit(0);
    twin(TWIN_A, "e2", "k1", "2");
    commit(0);
    ck_assert_uint_eq(n_offers, 2);
    ck_assert_int_eq(offers[1], 2);
    ck_assert_int_eq(ob.inflight, 2);
    ck_assert_int_eq(ob.depth, 1);
    outbox_ack(&ob, 1);
    commit(0);
    ck_assert_int_eq(ob.inflight, 1);
    ck_assert_int_eq(ob.depth, 1);
    outbox_ack(&ob, 2);
    commit(0);
    ck_assert_int_eq(ob.inflight, 0);
    ck_assert_int_eq(ob.depth, 0);
    ck_assert_int_eq(ob.held.states, 0);
    ck_assert_str_eq(q("SELECT count(*) FROM kedge_outbox"), "0");
}
END_TEST

/* A batch that fails after replacing a committed entry: the old entry is still there, and
 * every count is the table's again. */
START_TEST(fold_then_failed_commit)
{
    twin(TWIN_A, "e1", "k1", "1");
    ck_assert_int_eq(upload("$hw/events/upload/x", 10, 'a'), 0);
    commit(0);
    unit_db_exec(&db, "CREATE TRIGGER boom BEFORE INSERT ON kedge_outbox WHEN NEW.msg LIKE "
                      "'%zzzz%' BEGIN SELECT RAISE(ABORT, 'no'); END;");
    twin(TWIN_A, "e2", "k1", "2");
    ck_assert_int_eq(ob.pending_dels, 1);
    ck_assert_int_eq(upload("$hw/events/upload/y", 10, 'y'), 0);
    ck_assert_int_eq(upload("$hw/events/upload/z", 10, 'z'), KEDGE_ESTORE);
    commit(KEDGE_ESTORE);
    ck_assert_int_eq(ob.depth, 2);
    ck_assert_int_eq(ob.held.states, 1);
    ck_assert_int_eq(ob.held.uploads, 1);
    ck_assert_int_eq(ob.committed_seq, 2);
    ck_assert_int_eq(ob.n_mem, 0);
    ck_assert_ptr_nonnull(
        strstr(q("SELECT msg FROM kedge_outbox WHERE subject = '" TWIN_A "'"), "\"e1\""));
}
END_TEST

/* A waiting entry that does not parse is replaced by the newer one as is. */
START_TEST(fold_unparsable_keeps_newer)
{
    int64_t seq;

    ck_assert_int_eq(store_outbox_insert(st, TWIN_A, "not json", 8, &seq), 0);
    commit(0);
    ck_assert_int_eq(outbox_init(&ob, st, &cfg, &offer_pub), 0);
    twin(TWIN_A, "e2", "k2", "2");
    commit(0);
    ck_assert_str_eq(q("SELECT count(*) FROM kedge_outbox"), "1");
    ck_assert_ptr_nonnull(strstr(q("SELECT msg FROM kedge_outbox"), "\"e2\""));
}
END_TEST

/* Twin reports are never refused, whatever the uploads hold. */
START_TEST(state_never_refused)
{
    stop();
    cfg.outbox_max = 1;
    start();
    ck_assert_int_eq(upload("$hw/events/upload/x", 10, 'a'), 0);
    ck_assert_int_eq(upload("$hw/events/upload/x", 10, 'b'), KEDGE_EFULL);
    twin(TWIN_A, "e1", "k1", "1");
    twin(TWIN_B, "e2", "k1", "1");
    commit(0);
    ck_assert_int_eq(ob.depth, 3);
    ck_assert_int_eq(ob.n.uploads_refused, 1);
}
END_TEST

/* ---- uploads: bounded ------------------------------------------------------------------- */

START_TEST(upload_cap)
{
    stop();
    cfg.max_upload_bytes = 1024;
    start();
    ck_assert_int_eq(upload("$hw/events/upload/big", 2000, 'a'), KEDGE_ETOOBIG);
    /* under the cap as a payload, over it once encoded */
    ck_assert_int_eq(upload("$hw/events/upload/big", 1000, 'a'), KEDGE_ETOOBIG);
    ck_assert_int_eq(ob.n.uploads_oversize, 2);
    ck_assert_int_eq(upload("$hw/events/upload/small", 500, 'a'), 0);
    commit(0);
    ck_assert_int_eq(ob.held.uploads, 1);
    ck_assert_int_le(ob.held.upload_bytes, 1024);
}
END_TEST

START_TEST(budget_refuse)
{
    int64_t size = upload_size(200);
    int i;

    stop();
    cfg.upload_budget_bytes = size * 4 + size / 2; /* four of them fit */
    start();
    ck_assert_int_eq(ob.held.upload_bytes, size); /* read from the table at open */
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(upload("$hw/events/upload/x", 200, (char)('a' + i)), 0);
    ck_assert_int_eq(upload("$hw/events/upload/x", 200, 'z'), KEDGE_EFULL);
    commit(0);
    ck_assert_int_eq(ob.n.uploads_refused, 1);
    ck_assert_int_eq(ob.held.uploads, 4);
    ck_assert_int_eq(ob.held.upload_bytes, 4 * size);
    ck_assert_str_eq(q("SELECT count(*) FROM kedge_outbox WHERE msg LIKE '%zzz%'"), "0");
    twin(TWIN_A, "e1", "k1", "1"); /* state still goes in */
    commit(0);
    ck_assert_int_eq(ob.depth, 5);
}
END_TEST

/* drop-oldest: the oldest uploads not yet offered make room, committed or in the open batch;
 * the offered probe stays (the bridge may hold it already: dropping it here would count an
 * upload as dropped that still arrives); twin entries in between are left alone. */
START_TEST(budget_drop_oldest)
{
    int64_t size = upload_size(200);
    char want[64];
    int i;

    twin(TWIN_A, "e1", "k1", "1");
    commit(0);
    stop();
    cfg.upload_budget_bytes = size * 3 + size / 2; /* three fit */
    cfg.upload_policy = "drop-oldest";
    start();
    ck_assert_int_eq(outbox_bridge_up(&ob, "bridge"), 0);
    outbox_pump(&ob);
    ck_assert_uint_eq(n_offers, 2); /* probe and twin */
    n_offers = 0;
    for (i = 0; i < 6; i++)
        ck_assert_int_eq(upload("$hw/events/upload/x", 200, (char)('a' + i)), 0);
    ck_assert_int_eq(ob.held.uploads, 3);
    ck_assert_int_le(ob.held.upload_bytes, cfg.upload_budget_bytes);
    commit(0);
    ck_assert_int_eq(ob.n.uploads_dropped, 4); /* a, b, c, d */
    ck_assert_int_eq(ob.depth, 4);
    ck_assert_int_eq(ob.held.states, 1);
    /* the offered probe and the two newest are kept; only the new ones are offered */
    ck_assert_str_eq(q("SELECT group_concat(substr(msg, instr(msg, 'content') + 10, 3), ',') "
                       "FROM (SELECT msg FROM kedge_outbox WHERE subject IS NULL ORDER BY seq)"),
                     "ppp,eee,fff");
    ck_assert_uint_eq(n_offers, 2);
    (void)snprintf(want, sizeof(want), "%" PRId64, offers[0]);
    ck_assert_str_eq(q("SELECT min(seq) FROM kedge_outbox WHERE subject IS NULL AND "
                       "msg LIKE '%eee%'"),
                     want);
}
END_TEST

START_TEST(row_bound)
{
    stop();
    cfg.outbox_max = 2;
    cfg.upload_policy = "drop-oldest";
    start();
    ck_assert_int_eq(upload("$hw/events/upload/x", 10, 'a'), 0);
    ck_assert_int_eq(upload("$hw/events/upload/x", 10, 'b'), 0);
    ck_assert_int_eq(upload("$hw/events/upload/x", 10, 'c'), 0);
    commit(0);
    ck_assert_int_eq(ob.held.uploads, 2);
    ck_assert_int_eq(ob.n.uploads_dropped, 1);
}
END_TEST

/* A batch of large uploads: memory copies stop at a few MiB, the rest is read back from the
 * table, and every entry is offered once, in order. */
START_TEST(large_batch_offered_in_order)
{
    int i;

    ck_assert_int_eq(outbox_bridge_up(&ob, "bridge"), 0);
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(upload("$hw/events/upload/big", 1500000, (char)('a' + i)), 0);
    ck_assert_uint_lt(ob.n_mem, 4);
    commit(0);
    ck_assert_uint_eq(n_offers, 4);
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(offers[i], i + 1);
    ck_assert_int_eq(ob.inflight, 4);
}
END_TEST

/* ---- the operator --------------------------------------------------------------------------- */

START_TEST(operator_drop)
{
    ck_assert_int_eq(upload("$hw/events/upload/x", 10, 'a'), 0);
    twin(TWIN_A, "e1", "k1", "1");
    commit(0);
    ck_assert_int_eq(outbox_drop(&ob, 99), -ENOENT);
    ck_assert_int_eq(outbox_drop(&ob, 1), 0);
    commit(0);
    ck_assert_int_eq(ob.n.dropped_by_operator, 1);
    ck_assert_int_eq(ob.depth, 1);
    ck_assert_int_eq(ob.held.uploads, 0);
    ck_assert_int_eq(ob.held.upload_bytes, 0);
    ck_assert_str_eq(q("SELECT seq FROM kedge_outbox"), "2");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("poutbox");
    TCase *tc = tcase_create("poutbox");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, fold_committed_entry);
    tcase_add_test(tc, fold_in_batch_offers_merged_only);
    tcase_add_test(tc, fold_offered_entry_then_acks);
    tcase_add_test(tc, fold_then_failed_commit);
    tcase_add_test(tc, fold_unparsable_keeps_newer);
    tcase_add_test(tc, state_never_refused);
    tcase_add_test(tc, upload_cap);
    tcase_add_test(tc, budget_refuse);
    tcase_add_test(tc, budget_drop_oldest);
    tcase_add_test(tc, row_bound);
    tcase_add_test(tc, large_batch_offered_in_order);
    tcase_add_test(tc, operator_drop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
