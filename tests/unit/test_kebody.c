/* common/kebody.c: the $ke/ bodies byte for byte as include/kedge/ke.h shows them (the plugin,
 * the bridge and kedge-ctl compare them on the wire), and decoded back as Go would.
 */
#include <check.h>
#include <string.h>

#include "kedge/err.h"
#include "kedge/kebody.h"
#include "unit.h"

#define S_LIT(lit) lit, sizeof(lit) - 1

START_TEST(hello_bytes)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kebody_hello h = {"edge-1", 1}, back;
    struct kedge_jdoc *doc = NULL;

    ck_assert_int_eq(kebody_hello_encode(&b, &h), 0);
    ASSERT_BUF(&b, "{\"node_name\":\"edge-1\",\"version\":1}");
    ck_assert_int_eq(kebody_hello_decode(b.data, b.len, &doc, &back), 0);
    ck_assert_str_eq(back.node_name, "edge-1");
    ck_assert_int_eq(back.version, 1);
    kedge_jdoc_free(doc);
    ck_assert_int_eq(kebody_hello_decode(S_LIT("{\"node_name\":7}"), &doc, &back), 0);
    ck_assert_ptr_null(back.node_name); /* not a string: as if absent */
    kedge_jdoc_free(doc);
    ck_assert_int_eq(kebody_hello_decode(S_LIT("[1]"), &doc, &back), KEDGE_ESCHEMA);
    kedge_jdoc_free(doc);
    ck_assert_int_eq(kebody_hello_decode(S_LIT("{"), &doc, &back), KEDGE_EPARSE);
    ck_assert_ptr_null(doc);
    kedge_buf_cleanup(&b);
}
END_TEST

START_TEST(hello_result_bytes)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kebody_hello_result yes = {true, "edge-1", 12, 4711, NULL}, no = {0}, back;
    struct kedge_jdoc *doc = NULL;

    ck_assert_int_eq(kebody_hello_result_encode(&b, &yes), 0);
    ASSERT_BUF(&b, "{\"accepted\":true,\"node_name\":\"edge-1\",\"outbox_depth\":12,"
                   "\"last_seq\":4711}");
    ck_assert_int_eq(kebody_hello_result_decode(b.data, b.len, &doc, &back), 0);
    ck_assert(back.accepted);
    ck_assert_int_eq(back.outbox_depth, 12);
    ck_assert_int_eq(back.last_seq, 4711);
    kedge_jdoc_free(doc);
    kedge_buf_reset(&b);
    yes.last_seq = -1; /* a store that cannot say: no last_seq */
    ck_assert_int_eq(kebody_hello_result_encode(&b, &yes), 0);
    ASSERT_BUF(&b, "{\"accepted\":true,\"node_name\":\"edge-1\",\"outbox_depth\":12}");
    ck_assert_int_eq(kebody_hello_result_decode(b.data, b.len, &doc, &back), 0);
    ck_assert_int_eq(back.last_seq, -1);
    kedge_jdoc_free(doc);
    kedge_buf_reset(&b);
    no.node_name = "edge-1";
    no.reason = "node name mismatch";
    ck_assert_int_eq(kebody_hello_result_encode(&b, &no), 0);
    ASSERT_BUF(&b,
               "{\"accepted\":false,\"node_name\":\"edge-1\",\"reason\":\"node name mismatch\"}");
    ck_assert_int_eq(kebody_hello_result_decode(b.data, b.len, &doc, &back), 0);
    ck_assert(!back.accepted);
    ck_assert_str_eq(back.reason, "node name mismatch");
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&b);
}
END_TEST

START_TEST(ack_topic)
{
    char t[KEBODY_ACK_TOPIC_MAX];
    int64_t seq = 0;

    kebody_ack_topic(t, 9223372036854775807LL);
    ck_assert_str_eq(t, "$ke/ack/9223372036854775807");
    ck_assert_int_eq(kebody_ack_parse(t, &seq), 0);
    ck_assert_int_eq(seq, 9223372036854775807LL);
    ck_assert_int_eq(kebody_ack_parse("$ke/ack/0", &seq), KEDGE_ESCHEMA);
    ck_assert_int_eq(kebody_ack_parse("$ke/ack/", &seq), KEDGE_ESCHEMA);
    ck_assert_int_eq(kebody_ack_parse("$ke/ack/12x", &seq), KEDGE_ESCHEMA);
    ck_assert_int_eq(kebody_ack_parse("$ke/ack/-3", &seq), KEDGE_ESCHEMA);
    ck_assert_int_eq(kebody_ack_parse("$ke/down/3", &seq), KEDGE_ESCHEMA);
}
END_TEST

static void write_result(struct kedge_buf *b, const struct kebody_result *r)
{
    struct kedge_jw w;

    kedge_buf_reset(b);
    kedge_jw_init(&w, b);
    kebody_result_write(&w, r);
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
}

START_TEST(result_envelopes)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kebody_result ok = {true, 0, NULL}, down = {false, 400, "device is not known"},
                         meta = {false, 0, "not stored"}, back;
    struct kedge_jdoc *doc = NULL;
    struct kedge_jw w;

    write_result(&b, &ok);
    ASSERT_BUF(&b, "{\"ok\":true}");
    write_result(&b, &down);
    ASSERT_BUF(&b, "{\"ok\":false,\"code\":400,\"reason\":\"device is not known\"}");
    ck_assert_int_eq(kebody_result_decode(b.data, b.len, &doc, &back), 0);
    ck_assert(!back.ok);
    ck_assert_int_eq(back.code, 400);
    ck_assert_str_eq(back.reason, "device is not known");
    kedge_jdoc_free(doc);
    write_result(&b, &meta);
    ASSERT_BUF(&b, "{\"ok\":false,\"reason\":\"not stored\"}");
    kedge_buf_reset(&b);
    kedge_jw_init(&w, &b);
    kebody_error_write(&w, 404, "no such entry");
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
    ASSERT_BUF(&b, "{\"code\":404,\"reason\":\"no such entry\"}");
    kedge_buf_reset(&b);
    kedge_jw_init(&w, &b);
    kebody_meta_ok_open(&w, "cloud");
    kedge_jw_key(&w, "object");
    kedge_jw_null(&w);
    kedge_jw_obj_close(&w);
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
    ASSERT_BUF(&b, "{\"ok\":true,\"source\":\"cloud\",\"object\":null}");
    ck_assert_int_eq(kebody_result_decode(S_LIT("{\"ok\":\"true\",\"code\":\"5\"}"), &doc, &back),
                     0);
    ck_assert(!back.ok); /* Go: a string is not a bool, nor a number */
    ck_assert_int_eq(back.code, 0);
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&b);
}
END_TEST

START_TEST(status_bytes)
{
    /* the bridge's $ke/status exactly as it has always been written (relay.c's format) */
    static const char want[] =
        "{\"link\":\"connected\",\"reconnects\":3,\"last_keepalive_ms\":1,"
        "\"last_delivery_ms\":2,\"outbox_depth\":4,\"outbox_oldest_ms\":5,"
        "\"outbox_set_aside\":6,\"cert_not_after_s\":1795000000,\"upload_bytes\":7,"
        "\"upload_budget_bytes\":268435456,\"uploads_dropped\":8,\"uploads_refused\":9,"
        "\"dead_letters\":10,\"coalesced\":11,\"stale_dropped\":12,"
        "\"refusals\":13,\"dropped_by_operator\":14,\"probing\":true}";
    struct kebody_status s = {true,      3, 1, 2,  4,  5,  6,  1795000000, 7,
                              268435456, 8, 9, 10, 11, 12, 13, 14,         true},
                         back;
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(kebody_status_encode(&b, &s), 0);
    ASSERT_BUF(&b, want);
    ck_assert_int_eq(kebody_status_decode(b.data, b.len, &back), 0);
    kedge_buf_reset(&b); /* every field came back: it encodes to the same bytes */
    ck_assert_int_eq(kebody_status_encode(&b, &back), 0);
    ASSERT_BUF(&b, want);
    ck_assert_int_eq(kebody_status_decode(S_LIT("\"connected\""), &back), KEDGE_ESCHEMA);
    kedge_buf_cleanup(&b);
}
END_TEST

START_TEST(request_bytes)
{
    struct {
        struct kebody_request r;
        const char *want;
    } cases[] = {
        {{.op = "status"}, "{\"op\":\"status\"}"},
        {{.op = "device_get", .id_str = "default/thermo", .id_len = 14},
         "{\"op\":\"device_get\",\"id\":\"default/thermo\"}"},
        {{.op = "outbox_list", .has_limit = KEBODY_INT, .limit = 20},
         "{\"op\":\"outbox_list\",\"limit\":20}"},
        {{.op = "outbox_drop", .has_seq = KEBODY_INT, .seq = 7},
         "{\"op\":\"outbox_drop\",\"seq\":7}"},
        {{.op = "dead_retry", .has_id = KEBODY_INT, .id = 3}, "{\"op\":\"dead_retry\",\"id\":3}"},
        {{.op = "query",
          .resource = "default/configmap/cm1",
          .resource_len = 21,
          .has_timeout_ms = KEBODY_INT,
          .timeout_ms = 5000},
         "{\"op\":\"query\",\"resource\":\"default/configmap/cm1\",\"timeout_ms\":5000}"},
        {{.op = "list", .type = "configmap", .type_len = 9},
         "{\"op\":\"list\",\"type\":\"configmap\"}"},
    };
    struct kedge_buf b = KEDGE_BUF_INIT;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kedge_buf_reset(&b);
        ck_assert_int_eq(kebody_request_encode(&b, &cases[i].r), 0);
        ASSERT_BUF(&b, cases[i].want);
    }
    kedge_buf_cleanup(&b);
}
END_TEST

START_TEST(request_decode)
{
    static const char body[] = "{\"OP\":\"outbox_show\",\"Seq\":9,\"limit\":\"x\",\"id\":null,"
                               "\"timeout_ms\":1.5,\"resource\":\"a/b/c\"}";
    struct kedge_jdoc *doc = NULL;
    struct kebody_request r;

    /* Go's decoder: names match case-insensitively */
    ck_assert_int_eq(kebody_request_decode(body, sizeof(body) - 1, false, &doc, &r), 0);
    ck_assert_str_eq(r.op, "outbox_show");
    ck_assert_int_eq(r.has_seq, KEBODY_INT);
    ck_assert_int_eq(r.seq, 9);
    ck_assert_int_eq(r.has_limit, KEBODY_WRONG);
    ck_assert_int_eq(r.has_id, KEBODY_ABSENT); /* null: as if absent */
    ck_assert_ptr_null(r.id_str);
    ck_assert_int_eq(r.has_timeout_ms, KEBODY_WRONG);
    ck_assert_str_eq(r.resource, "a/b/c");
    ck_assert_uint_eq(r.resource_len, 5);
    kedge_jdoc_free(doc);
    /* MetaManager's exact names */
    ck_assert_int_eq(kebody_request_decode(body, sizeof(body) - 1, true, &doc, &r), 0);
    ck_assert_ptr_null(r.op);
    ck_assert_int_eq(r.has_seq, KEBODY_ABSENT);
    kedge_jdoc_free(doc);
    ck_assert_int_eq(kebody_request_decode(S_LIT("{\"id\":\"d1\"}"), false, &doc, &r), 0);
    ck_assert_str_eq(r.id_str, "d1");
    ck_assert_int_eq(r.has_id, KEBODY_WRONG);
    kedge_jdoc_free(doc);
    ck_assert_int_eq(kebody_request_decode(S_LIT("5"), false, &doc, &r), KEDGE_ESCHEMA);
    ck_assert_ptr_nonnull(doc);
    ck_assert_ptr_null(r.op);
    kedge_jdoc_free(doc);
    ck_assert_int_eq(kebody_request_decode(S_LIT("nope"), false, &doc, &r), KEDGE_EPARSE);
    ck_assert_ptr_null(doc);
}
END_TEST

static Suite *kebody_suite(void)
{
    Suite *s = suite_create("kebody");
    TCase *tc = tcase_create("kebody");

    tcase_add_test(tc, hello_bytes);
    tcase_add_test(tc, hello_result_bytes);
    tcase_add_test(tc, ack_topic);
    tcase_add_test(tc, result_envelopes);
    tcase_add_test(tc, status_bytes);
    tcase_add_test(tc, request_bytes);
    tcase_add_test(tc, request_decode);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(kebody_suite());
}
