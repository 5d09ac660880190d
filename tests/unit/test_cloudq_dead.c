/* The cloudq suite (test_cloudq.c): dead letters (poison by repeated failures, error answers),
 * the probe boundary kept across a reopen, and what an operator lists, retries and drops.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cloudq.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "cloudq_fixture.h"
#include "unit.h"

START_TEST(poison_blamed_becomes_dead_letter)
{
    struct cloudq *ob = open_ob(0, true);
    struct cloudq_stats st;
    const char *why = "cloud closed the link 1009 after reading it";
    int64_t cursor = 0, id;

    ck_assert_int_eq(put_upload(ob, "u01"), 0);
    ck_assert_int_eq(put_upload(ob, "u02"), 0);
    commit(ob);
    id = id_of(ob, "u01");
    ck_assert_int_eq(cloudq_blame(ob, id, why), 0);
    cloudq_close(ob);

    ob = open_ob(0, true);
    ck_assert_int_eq(cloudq_blame(ob, id, why), 0);
    ck_assert_int_eq(queue_rows(ob).failures[0], 2);
    ck_assert_int_eq(cloudq_blame(ob, id, why), 1);
    ck_assert_int_eq(cloudq_blame(ob, id, why), 0); /* gone: nothing to count */
    expect_dead(ob, "u01", "cloud closed the link 1009 after reading it (3 times)");
    cloudq_stats(ob, &st);
    ck_assert_int_eq(st.dead_letters, 1);
    ck_assert_int_eq(st.set_aside, 1);
    ck_assert_int_eq(st.upload_bytes, upload_len());
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "u02");
    cloudq_close(ob);
}
END_TEST

/* An "error" answer: the entry waits resend_s and goes again (a fire entry is not delivered by
 * a PONG meanwhile); at poison_after it is a dead letter and its device's next report goes. */
START_TEST(error_answers)
{
    struct cloudq *ob = open_ob(0, true);
    int64_t cursor = 0;

    put_twin(ob, "a1", "t1", "v1");
    ck_assert_int_eq(put_upload(ob, "u01"), 0);
    commit(ob);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a1");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "u01");
    put_twin(ob, "a2", "t1", "v2");
    commit(ob);
    ck_assert_int_eq(cloudq_refused(ob, "u01", "the cloud answered error: no"), 0);
    ck_assert_int_eq(cloudq_delivered(ob, cursor), 0); /* held for its resend */
    ck_assert_int_eq(cloudq_refused(ob, "a1", "the cloud answered error: bad twin"), 0);
    ck_assert_int_eq(cloudq_refused(ob, "nope", "x"), -ENOENT);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), ""); /* both wait resend_s */
    ck_assert_str_eq(send_next(ob, &cursor, 0), "a1");
    ck_assert_int_eq(cloudq_refused(ob, "a1", "the cloud answered error: bad twin"), 0);
    ck_assert_int_eq(cloudq_refused(ob, "a1", "the cloud answered error: bad twin"), 1);
    expect_dead(ob, "a1", "the cloud answered error: bad twin (3 times)");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a2"); /* its device's next report */
    ck_assert_str_eq(send_next(ob, &cursor, 0), "u01");      /* the upload's resend */
    ck_assert_int_eq(cloudq_delivered(ob, cursor), 1);       /* read again, no error now */
    cloudq_close(ob);
}
END_TEST

/* The cloud's "error" may come after the PONG that proved the entry read: the row is kept for a
 * grace (out of the depth and the budget), so the error still finds it and it goes again;
 * after the grace it is gone. */
START_TEST(error_after_proof)
{
    struct cloudq *ob = open_budget(10 * upload_len(), false);
    struct cloudq_stats st;
    int64_t cursor = 0;

    ck_assert_int_eq(put_upload(ob, "u01"), 0);
    ck_assert_int_eq(put_upload(ob, "u02"), 0);
    commit(ob);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "u01");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "u02");
    ck_assert_int_eq(cloudq_delivered(ob, cursor), 2);
    cloudq_stats(ob, &st);
    ck_assert_int_eq(st.depth, 0);
    ck_assert_int_eq(st.upload_bytes, 0);
    ck_assert_int_eq(cloudq_refused(ob, "u02", "the cloud answered error: no"), 0);
    cloudq_stats(ob, &st);
    ck_assert_int_eq(st.depth, 1);
    ck_assert_int_eq(st.upload_bytes, upload_len());
    ck_assert_int_eq(cloudq_sweep(ob, 0), 1); /* u01's grace is over; u02 is queued again */
    ck_assert_str_eq(send_next(ob, &cursor, 0), "u02");
    ck_assert_int_eq(cloudq_delivered(ob, cursor), 1);
    ck_assert_int_eq(cloudq_sweep(ob, HOUR_MS), 0); /* within its grace */
    ck_assert_int_eq(cloudq_sweep(ob, 0), 1);
    ck_assert_int_eq(cloudq_refused(ob, "u02", "late"), -ENOENT);
    cloudq_close(ob);
}
END_TEST

/* The probe boundary is on disk: a restart in probe mode probes on. The failure that started
 * probing is pending for the entry the probe finds (so the cloud refuses it poison_after times
 * in all, not one more), and forgotten when probing ends without a culprit. */
START_TEST(probe_boundary_persists)
{
    struct cloudq *ob = open_ob(0, true);
    const char *why = "cloud closed the link 1009 after reading it";
    int64_t id;

    ck_assert_int_eq(put_upload(ob, "u01"), 0);
    commit(ob);
    id = id_of(ob, "u01");
    ck_assert_int_eq(cloudq_set_probe(ob, 9), 0);
    ck_assert_int_eq(cloudq_set_probe(ob, 0), 0); /* all proven: nobody to blame */
    ck_assert_int_eq(cloudq_blame(ob, id, why), 0);
    ck_assert_int_eq(queue_rows(ob).failures[0], 1);
    ck_assert_int_eq(cloudq_set_probe(ob, 9), 0);
    cloudq_close(ob);
    ob = open_ob(0, true);
    ck_assert_int_eq(cloudq_blame(ob, id, why), 1); /* 1 + the pending one + this one */
    expect_dead(ob, "u01", "cloud closed the link 1009 after reading it (3 times)");
    ck_assert_int_eq(cloudq_set_probe(ob, 0), 0);

    ck_assert_int_eq(cloudq_probe_upto(ob), 0);
    ck_assert_int_eq(cloudq_set_probe(ob, 42), 0);
    cloudq_close(ob);
    ob = open_ob(0, true);
    ck_assert_int_eq(cloudq_probe_upto(ob), 42);
    ck_assert_int_eq(cloudq_set_probe(ob, 0), 0);
    cloudq_close(ob);
    ob = open_ob(0, true);
    ck_assert_int_eq(cloudq_probe_upto(ob), 0);
    cloudq_close(ob);
}
END_TEST

/* The operator: a dead letter retried goes to the tail with no failures (a twin one under
 * its device's newer values, or refused while its device's report is on the link); drops are
 * counted; unknown ids are 0 / -ENOENT. */
START_TEST(operator_retry_and_drop)
{
    struct cloudq *ob = open_ob(0, true);
    struct cloudq_stats st;
    struct rows r;
    int64_t cursor = 0, dead, id;
    int i;

    ck_assert_int_eq(put_upload(ob, "u01"), 0);
    ck_assert_int_eq(put_upload(ob, "u02"), 0);
    commit(ob);
    id = id_of(ob, "u01");
    for (i = 0; i < 3; i++)
        (void)cloudq_blame(ob, id, "the link broke after it was written");
    dead = expect_dead(ob, "u01", "the link broke after it was written (3 times)");
    ck_assert_int_eq(cloudq_dead_retry(ob, dead), 0);
    ck_assert_int_eq(cloudq_dead_retry(ob, dead), -ENOENT);
    r = queue_rows(ob);
    ck_assert_int_eq(r.n, 2);
    ck_assert_str_eq(r.msg_id[1], "u01"); /* at the tail */
    ck_assert_int_eq(r.failures[1], 0);
    ck_assert_int_eq(cloudq_drop(ob, r.id[0]), 1);
    ck_assert_int_eq(cloudq_drop(ob, r.id[0]), 0);

    put_twin(ob, "a1", "t1", "v1");
    commit(ob);
    id = id_of(ob, "a1");
    for (i = 0; i < 3; i++)
        (void)cloudq_blame(ob, id, "the link broke after it was written");
    dead = expect_dead(ob, "a1", "the link broke after it was written (3 times)");
    put_twin(ob, "a2", "t2", "v2");
    commit(ob);
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "u01");
    ck_assert_str_eq(send_next(ob, &cursor, HOUR_MS), "a2");
    ck_assert_int_eq(cloudq_dead_retry(ob, dead), -EBUSY); /* a2 on the link */
    ck_assert_int_eq(cloudq_confirmed(ob, "a2"), 1);
    put_twin(ob, "a3", "t1", "v3");
    commit(ob);
    ck_assert_int_eq(cloudq_dead_retry(ob, dead), 0); /* under a3: one row, a3's header */
    r = queue_rows(ob);
    ck_assert_int_eq(r.n, 2);
    ck_assert_str_eq(r.msg_id[1], "a3");
    ck_assert_int_eq(cloudq_dead_drop(ob, dead), 0);
    cloudq_stats(ob, &st);
    ck_assert_int_eq(st.dropped_by_operator, 1);
    ck_assert_int_eq(st.dead_letters, 0);
    cloudq_close(ob);
}
END_TEST

/* $ke/bctl requests answered as include/kedge/ke.h says. */
START_TEST(ctl_requests)
{
    struct cloudq *ob = open_ob(0, true);
    struct kedge_buf out = KEDGE_BUF_INIT;
    char req[128];
    int64_t id;

    ck_assert_int_eq(put_upload(ob, "u01"), 0);
    commit(ob);
    id = id_of(ob, "u01");
    ck_assert_int_eq(cloudq_ctl_handle(ob, "{\"op\":\"outbox_list\"}", 20, &out), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "\"msg_id\":\"u01\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"depth\":1"));
    kedge_buf_reset(&out);
    snprintf(req, sizeof(req), "{\"op\":\"outbox_show\",\"id\":%lld}", (long long)id);
    ck_assert_int_eq(cloudq_ctl_handle(ob, req, strlen(req), &out), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "\"msg\":{\"header\""));
    kedge_buf_reset(&out);
    ck_assert_int_eq(cloudq_ctl_handle(ob, "{\"op\":\"dead_show\",\"id\":9}", 25, &out), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "\"code\":404"));
    kedge_buf_reset(&out);
    ck_assert_int_eq(cloudq_ctl_handle(ob, "{\"op\":\"dead_drop\"}", 18, &out), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "\"code\":400"));
    kedge_buf_reset(&out);
    snprintf(req, sizeof(req), "{\"op\":\"outbox_drop\",\"id\":%lld}", (long long)id);
    ck_assert_int_eq(cloudq_ctl_handle(ob, req, strlen(req), &out), 0);
    ck_assert_str_eq(out.data, "{\"ok\":true}");
    ck_assert_int_eq(cloudq_depth(ob), 0);
    kedge_buf_cleanup(&out);
    cloudq_close(ob);
}
END_TEST

void cloudq_dead_letter_tests(TCase *order)
{
    tcase_add_test(order, poison_blamed_becomes_dead_letter);
    tcase_add_test(order, error_answers);
    tcase_add_test(order, error_after_proof);
    tcase_add_test(order, probe_boundary_persists);
    tcase_add_test(order, operator_retry_and_drop);
    tcase_add_test(order, ctl_requests);
}
