/* common/twin.c: decoding twin/get/state requests as Go's encoding/json + edgecore's checks do
 * (docs/kubeedge-wire.md §2.3), the value/type rules of dtcommon.ValidateValue, and the exact bytes
 * of every message edgecore prints (docs/kubeedge-wire.md §2.4-docs/kubeedge-wire.md §2.10).
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/twin.h"
#include "twin_fixture.h"
#include "unit.h"

/* Print a decoded update back with versions, so a table row can state all of it in one string. */
static void encode_update(const struct kedge_twin_update *u, struct kedge_buf *b)
{
    struct kedge_twin_ref refs[16];
    size_t i;

    ck_assert_uint_le(u->n, 16);
    for (i = 0; i < u->n; i++) {
        refs[i].name = u->twins[i].name;
        refs[i].twin = u->twins[i].is_null ? NULL : &u->twins[i];
    }
    ck_assert_int_eq(
        kedge_twin_map_encode(b, u->event_id, u->timestamp, refs, u->n, KEDGE_TWIN_VERSIONS), 0);
}

/* ---- decode: requests that decode ----------------------------------------------------------- */

static const struct {
    const char *in;
    const char *want; /* the decoded update, printed by kedge_twin_map_encode with versions */
} decodes[] = {
    /* docs/kubeedge-wire.md §2.4's request example */
    {"{\"event_id\":\"e1\",\"timestamp\":1700000000000,\"twin\":{\"temperature\":{\"actual\":"
     "{\"value\":\"25\"},\"metadata\":{\"type\":\"int\"}}}}",
     "{\"event_id\":\"e1\",\"timestamp\":1700000000000,\"twin\":{\"temperature\":{\"actual\":"
     "{\"value\":\"25\"},\"metadata\":{\"type\":\"int\"}}}}"},
    /* event_id and timestamp are optional */
    {"{\"twin\":{}}", "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{}}"},
    {"{\"event_id\":null,\"timestamp\":null,\"twin\":{}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{}}"},
    /* every field name matches case-insensitively */
    {"{\"EVENT_ID\":\"x\",\"Timestamp\":5,\"Twin\":{\"k\":{\"EXPECTED\":{\"Value\":\"v\","
     "\"MetaData\":{\"TIMESTAMP\":7}},\"Actual\":{\"VALUE\":\"w\"},\"OPTIONAL\":false,"
     "\"Metadata\":{\"Type\":\"string\"},\"Expected_Version\":{\"Cloud\":1,\"EDGE\":2},"
     "\"actual_VERSION\":{\"cloud\":3,\"edge\":4}}}}",
     "{\"event_id\":\"x\",\"timestamp\":5,\"twin\":{\"k\":{\"expected\":{\"value\":\"v\","
     "\"metadata\":{\"timestamp\":7}},\"actual\":{\"value\":\"w\"},\"optional\":false,"
     "\"metadata\":{\"type\":\"string\"},\"expected_version\":{\"cloud\":1,\"edge\":2},"
     "\"actual_version\":{\"cloud\":3,\"edge\":4}}}}"},
    /* duplicate twin keys: the last one wins, whole */
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":\"1\"}},\"k\":{\"expected\":{\"value\":\"2\"}}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{\"expected\":{\"value\":\"2\"}}}}"},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":\"1\"}},\"k\":null}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":null}}"},
    /* map keys are exact: "k" and "K" are two twins */
    {"{\"twin\":{\"k\":{},\"K\":{}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"K\":{},\"k\":{}}}"},
    /* a null entry means delete */
    {"{\"twin\":{\"k\":null}}", "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":null}}"},
    /* unknown keys are ignored, whatever their type */
    {"{\"foo\":[1,{}],\"twin\":{\"k\":{\"bar\":{},\"actual\":{\"value\":\"1\",\"x\":5}}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{\"actual\":{\"value\":\"1\"}}}}"},
    /* empty objects and nulls inside a twin */
    {"{\"twin\":{\"k\":{}}}", "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{}}}"},
    {"{\"twin\":{\"k\":{\"expected\":null,\"actual\":null,\"optional\":null,\"metadata\":null,"
     "\"expected_version\":null,\"actual_version\":null}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{}}}"},
    {"{\"twin\":{\"k\":{\"expected\":{\"value\":\"1\",\"metadata\":{}}}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{\"expected\":{\"value\":\"1\","
     "\"metadata\":{}}}}}"},
    {"{\"twin\":{\"k\":{\"metadata\":{}}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{\"metadata\":{}}}}"},
    {"{\"twin\":{\"k\":{\"metadata\":{\"type\":null}}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{\"metadata\":{}}}}"},
    /* an expected/actual without value decodes; devicetwin refuses it (Go would crash) */
    {"{\"twin\":{\"k\":{\"expected\":{}}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{\"expected\":{}}}}"},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":null}}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{\"actual\":{}}}}"},
    /* versions with missing members, timestamps at the int64 limits */
    {"{\"twin\":{\"k\":{\"expected_version\":{},\"actual_version\":{\"edge\":-1}}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{\"expected_version\":{\"cloud\":0,"
     "\"edge\":0},\"actual_version\":{\"cloud\":0,\"edge\":-1}}}}"},
    {"{\"timestamp\":-9223372036854775808,\"twin\":{\"k\":{\"actual\":{\"value\":\"a\","
     "\"metadata\":{\"timestamp\":9223372036854775807}}}}}",
     "{\"event_id\":\"\",\"timestamp\":-9223372036854775808,\"twin\":{\"k\":{\"actual\":"
     "{\"value\":\"a\",\"metadata\":{\"timestamp\":9223372036854775807}}}}}"},
    /* keys come back sorted byte-wise, as Go prints map keys */
    {"{\"twin\":{\"b\":{},\"a\":null,\"B\":{},\"_\":{},\"-\":{},\"a1\":{}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"-\":{},\"B\":{},\"_\":{},\"a\":null,"
     "\"a1\":{},\"b\":{}}}"},
    /* the whole charset, at the length limits */
    {"{\"twin\":{\"aZ09-_.,:/@#\":{\"actual\":{\"value\":\"aZ09-_.,:/@#\"}}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"aZ09-_.,:/@#\":{\"actual\":{\"value\":"
     "\"aZ09-_.,:/@#\"}}}}"},
    /* an empty value is accepted without the charset check */
    {"{\"twin\":{\"k\":{\"expected\":{\"value\":\"\"},\"actual\":{\"value\":\"\"}}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{\"expected\":{\"value\":\"\"},"
     "\"actual\":{\"value\":\"\"}}}}"},
    /* the event id is echoed as Go decodes it */
    {"{\"event_id\":\"\\u003cid\\u003e\",\"twin\":{}}",
     "{\"event_id\":\"\\u003cid\\u003e\",\"timestamp\":0,\"twin\":{}}"},
    /* any type name decodes; the type check comes later */
    {"{\"twin\":{\"k\":{\"metadata\":{\"type\":\"double\"}}}}",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{\"metadata\":{\"type\":\"double\"}}}}"},
    /* whitespace anywhere */
    {" { \"twin\" : { \"k\" : { \"optional\" : true } } } ",
     "{\"event_id\":\"\",\"timestamp\":0,\"twin\":{\"k\":{\"optional\":true}}}"},
};

START_TEST(decode_ok)
{
    struct kedge_twin_update u;
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_twin_update_decode(decodes[_i].in, strlen(decodes[_i].in), &u), 0);
    encode_update(&u, &b);
    ASSERT_BUF(&b, decodes[_i].want);
    kedge_twin_update_cleanup(&u);
    kedge_buf_cleanup(&b);
}
END_TEST

START_TEST(decode_fields)
{
    static const char in[] = "{\"twin\":{\"k\":{\"expected\":{\"value\":\"1\"},"
                             "\"actual\":{\"metadata\":{}},\"optional\":false,"
                             "\"metadata\":{}},\"z\":null}}";
    struct kedge_twin_update u;
    const struct kedge_twin *t;

    ck_assert_int_eq(kedge_twin_update_decode(S(in), &u), 0);
    ck_assert_uint_eq(u.n, 2);
    t = &u.twins[0];
    ck_assert_str_eq(t->name, "k");
    ck_assert(t->expected.present && !t->expected.has_meta);
    ck_assert_str_eq(t->expected.value, "1");
    ck_assert(t->actual.present && t->actual.has_meta && !t->actual.value);
    ck_assert(t->has_optional && !t->optional);
    ck_assert(t->has_meta);
    ck_assert_str_eq(t->type, "");
    ck_assert(!t->has_ev && !t->has_av && !t->is_null);
    t = &u.twins[1];
    ck_assert_str_eq(t->name, "z");
    ck_assert(t->is_null);
    ck_assert(!t->expected.present && !t->actual.present && !t->has_meta);
    kedge_twin_update_cleanup(&u);
    ck_assert_ptr_null(u.twins);
    ck_assert_uint_eq(u.n, 0);
}
END_TEST

/* ---- decode: requests that fail ----------------------------------------------------------- */

static char key129[160], key128[160], val513[560], val512[560];

static void make_long_strings(void)
{
    memset(key128, 'k', 128);
    key128[128] = '\0';
    memset(key129, 'k', 129);
    key129[129] = '\0';
    memset(val512, '9', 512);
    val512[512] = '\0';
    memset(val513, '9', 513);
    val513[513] = '\0';
}

static const struct {
    const char *in;
    int rc;
} decode_errors[] = {
    /* not JSON, or a wrong JSON type anywhere: Go's Unmarshal fails */
    {"{\"event_id\":\"c-malformed\",\"twin\":", KEDGE_EPARSE},
    {"", KEDGE_EPARSE},
    {"[]", KEDGE_EPARSE},
    {"\"x\"", KEDGE_EPARSE},
    {"1", KEDGE_EPARSE},
    {"true", KEDGE_EPARSE},
    {"{\"twin\":{}} x", KEDGE_EPARSE},
    {"{\"twin\":{}/*c*/}", KEDGE_EPARSE},
    {"{\"twin\":[]}", KEDGE_EPARSE},
    {"{\"twin\":\"x\"}", KEDGE_EPARSE},
    {"{\"twin\":1}", KEDGE_EPARSE},
    {"{\"twin\":true}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":1}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":\"v\"}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":[]}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":false}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"expected\":\"v\"}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"actual\":[]}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"expected\":{\"value\":1}}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":true}}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":{}}}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"expected\":{\"metadata\":[]}}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"expected\":{\"metadata\":{\"timestamp\":\"1\"}}}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"expected\":{\"metadata\":{\"timestamp\":1.5}}}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"expected\":{\"metadata\":{\"timestamp\":1e3}}}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"actual\":{\"metadata\":{\"timestamp\":9223372036854775808}}}}}",
     KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"optional\":\"true\"}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"optional\":1}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"metadata\":\"int\"}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"metadata\":{\"type\":1}}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"expected_version\":[]}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"actual_version\":{\"cloud\":\"1\"}}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"k\":{\"actual_version\":{\"edge\":0.5}}}}", KEDGE_EPARSE},
    {"{\"event_id\":5,\"twin\":{}}", KEDGE_EPARSE},
    {"{\"event_id\":{},\"twin\":{}}", KEDGE_EPARSE},
    {"{\"timestamp\":\"5\",\"twin\":{}}", KEDGE_EPARSE},
    {"{\"timestamp\":1.5,\"twin\":{}}", KEDGE_EPARSE},
    {"{\"timestamp\":-9223372036854775809,\"twin\":{}}", KEDGE_EPARSE},
    /* the type error wins over a bad key: Unmarshal runs before the checks */
    {"{\"twin\":{\"bad key\":{\"optional\":\"x\"}}}", KEDGE_EPARSE},
    {"{\"twin\":{\"bad key\":{}},\"timestamp\":\"x\"}", KEDGE_EPARSE},
    /* no twin map */
    {"{}", KEDGE_ENOTWIN},
    {"null", KEDGE_ENOTWIN},
    {"{\"twin\":null}", KEDGE_ENOTWIN},
    {"{\"Twin\":null}", KEDGE_ENOTWIN},
    {"{\"event_id\":\"e\",\"timestamp\":1}", KEDGE_ENOTWIN},
    {"{\"twins\":{}}", KEDGE_ENOTWIN},
    {"{\"twin\":{},\"TWIN\":null}", KEDGE_ENOTWIN},
    /* key: ^[a-zA-Z0-9-_.,:/@#]{1,128}$ */
    {"{\"twin\":{\"\":{}}}", KEDGE_ETWINKEY},
    {"{\"twin\":{\"a b\":{}}}", KEDGE_ETWINKEY},
    {"{\"twin\":{\"a+b\":{}}}", KEDGE_ETWINKEY},
    {"{\"twin\":{\"+\":{}}}", KEDGE_ETWINKEY},
    {"{\"twin\":{\"a$\":{}}}", KEDGE_ETWINKEY},
    {"{\"twin\":{\"a\\\"\":{}}}", KEDGE_ETWINKEY},
    {"{\"twin\":{\"a\\n\":{}}}", KEDGE_ETWINKEY},
    {"{\"twin\":{\"\\u00e9\":{}}}", KEDGE_ETWINKEY},
    {"{\"twin\":{\"a\\u0000\":{}}}", KEDGE_ETWINKEY},
    {"{\"twin\":{\"\\u0000a\":{}}}", KEDGE_ETWINKEY},
    {"{\"twin\":{\"a b\":null}}", KEDGE_ETWINKEY}, /* checked even for a delete */
    {"{\"twin\":{\"ok\":{},\"a b\":{}}}", KEDGE_ETWINKEY},
    {"{\"twin\":{\"a b\":{\"actual\":{\"value\":\"x y\"}}}}", KEDGE_ETWINKEY},
    /* value: ^[a-zA-Z0-9-_.,:/@#]{1,512}$ when not empty, expected and actual */
    {"{\"twin\":{\"k\":{\"expected\":{\"value\":\"a b\"}}}}", KEDGE_ETWINVALUE},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":\"a b\"}}}}", KEDGE_ETWINVALUE},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":\" \"}}}}", KEDGE_ETWINVALUE},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":\"+5\"}}}}", KEDGE_ETWINVALUE},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":\"1e+5\"}}}}", KEDGE_ETWINVALUE},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":\"\\u00e9\"}}}}", KEDGE_ETWINVALUE},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":\"x\\t\"}}}}", KEDGE_ETWINVALUE},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":\"25\\u0000x\"}}}}", KEDGE_ETWINVALUE},
    {"{\"twin\":{\"k\":{\"actual\":{\"value\":\"\\u0000\"}}}}", KEDGE_ETWINVALUE},
    {"{\"twin\":{\"k\":{\"expected\":{\"value\":\"1\\u0000\"}}}}", KEDGE_ETWINVALUE},
    {"{\"twin\":{\"k\":{\"expected\":{\"value\":\"ok\"},\"actual\":{\"value\":\"n o\"}}}}",
     KEDGE_ETWINVALUE},
};

START_TEST(decode_error)
{
    struct kedge_twin_update u;

    ck_assert_int_eq(
        kedge_twin_update_decode(decode_errors[_i].in, strlen(decode_errors[_i].in), &u),
        decode_errors[_i].rc);
    ck_assert_ptr_null(u.twins);
    ck_assert_uint_eq(u.n, 0);
    kedge_twin_update_cleanup(&u);
}
END_TEST

enum { LEN_KEY128, LEN_KEY129, LEN_VAL512, LEN_VAL513, LEN_VAL512_EXPECTED, LEN_VAL513_EXPECTED };

START_TEST(decode_length_limits)
{
    static const int want[] = {0, KEDGE_ETWINKEY, 0, KEDGE_ETWINVALUE, 0, KEDGE_ETWINVALUE};
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin_update u;

    make_long_strings();
    switch (_i) {
    case LEN_KEY128:
    case LEN_KEY129:
        ck_assert_int_eq(
            kedge_buf_printf(&b, "{\"twin\":{\"%s\":{}}}", _i == LEN_KEY128 ? key128 : key129), 0);
        break;
    default:
        ck_assert_int_eq(kedge_buf_printf(&b, "{\"twin\":{\"k\":{\"%s\":{\"value\":\"%s\"}}}}",
                                          _i >= LEN_VAL512_EXPECTED ? "expected" : "actual",
                                          _i % 2 == 0 ? val512 : val513),
                         0);
        break;
    }
    ck_assert_int_eq(kedge_twin_update_decode(b.data, b.len, &u), want[_i]);
    if (want[_i] == 0) {
        ck_assert_uint_eq(u.n, 1);
        ck_assert_uint_eq(strlen(_i == LEN_KEY128   ? u.twins[0].name
                                 : _i == LEN_VAL512 ? u.twins[0].actual.value
                                                    : u.twins[0].expected.value),
                          _i == LEN_KEY128 ? 128 : 512);
    }
    kedge_twin_update_cleanup(&u);
    kedge_buf_cleanup(&b);
}
END_TEST

/* The event id survives a failure once the JSON parsed: 404/400 results echo it. */
START_TEST(decode_keeps_event_id)
{
    struct kedge_twin_update u;

    ck_assert_int_eq(kedge_twin_update_decode(S("{\"event_id\":\"e9\",\"twin\":null}"), &u),
                     KEDGE_ENOTWIN);
    ck_assert_str_eq(u.event_id, "e9");
    kedge_twin_update_cleanup(&u);
    ck_assert_ptr_null(u.event_id);
    ck_assert_int_eq(kedge_twin_update_decode(S("{\"event_id\":\"e9\",\"twin\":{\"a b\":{}}}"), &u),
                     KEDGE_ETWINKEY);
    ck_assert_str_eq(u.event_id, "e9");
    ck_assert_ptr_null(u.twins);
    kedge_twin_update_cleanup(&u);
    ck_assert_int_eq(kedge_twin_update_decode(S("{\"event_id\":\"e9\",\"twin\":"), &u),
                     KEDGE_EPARSE);
    ck_assert_ptr_null(u.event_id);
    kedge_twin_update_cleanup(&u);
}
END_TEST

/* ---- key and value charset ---------------------------------------------------------------- */

START_TEST(charset_every_byte)
{
    int c;

    for (c = 0; c < 256; c++) {
        char s[2] = {(char)c, 'a'};
        bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    (c != 0 && strchr("-_.,:/@#", c));
        ck_assert_msg(kedge_twin_key_valid(s, 2) == want, "key byte 0x%02x", c);
        ck_assert_msg(kedge_twin_value_valid(s, 2) == want, "value byte 0x%02x", c);
    }
    ck_assert(!kedge_twin_key_valid("", 0));
    ck_assert(!kedge_twin_value_valid("", 0));
}
END_TEST

START_TEST(charset_lengths)
{
    char s[600];

    memset(s, 'a', sizeof(s));
    ck_assert(kedge_twin_key_valid(s, 1));
    ck_assert(kedge_twin_key_valid(s, 128));
    ck_assert(!kedge_twin_key_valid(s, 129));
    ck_assert(kedge_twin_value_valid(s, 512));
    ck_assert(!kedge_twin_value_valid(s, 513));
}
END_TEST

/* ---- dtcommon.ValidateValue ----------------------------------------------------------------- */

static const struct {
    const char *type, *value, *reason; /* reason NULL: accepted */
} types[] = {
    /* no type, string, deleted: anything */
    {NULL, "x y", NULL},
    {"", "", NULL},
    {"", "any thing", NULL},
    {"string", "", NULL},
    {"string", "a b c", NULL},
    {"deleted", "x", NULL},
    /* int / integer: strconv.ParseInt(v, 10, 64) */
    {"int", "25", NULL},
    {"int", "+5", NULL},
    {"int", "-5", NULL},
    {"int", "0", NULL},
    {"int", "-0", NULL},
    {"int", "007", NULL},
    {"int", "9223372036854775807", NULL},
    {"int", "-9223372036854775808", NULL},
    {"int", "9223372036854775808", KEDGE_REASON_NOT_INT},
    {"int", "-9223372036854775809", KEDGE_REASON_NOT_INT},
    {"int", "18446744073709551616", KEDGE_REASON_NOT_INT},
    {"int", "1.0", KEDGE_REASON_NOT_INT},
    {"int", "1e3", KEDGE_REASON_NOT_INT},
    {"int", "", KEDGE_REASON_NOT_INT},
    {"int", "+", KEDGE_REASON_NOT_INT},
    {"int", "-", KEDGE_REASON_NOT_INT},
    {"int", "+-1", KEDGE_REASON_NOT_INT},
    {"int", "1_000", KEDGE_REASON_NOT_INT}, /* base 10 given: no separators */
    {"int", "0x10", KEDGE_REASON_NOT_INT},
    {"int", " 5", KEDGE_REASON_NOT_INT},
    {"int", "5 ", KEDGE_REASON_NOT_INT},
    {"int", "abc", KEDGE_REASON_NOT_INT},
    {"int", "notint", KEDGE_REASON_NOT_INT},
    {"integer", "26", NULL},
    {"integer", "-9223372036854775808", NULL},
    {"integer", "2.5", KEDGE_REASON_NOT_INT},
    {"integer", "", KEDGE_REASON_NOT_INT},
    /* float: strconv.ParseFloat(v, 64) */
    {"float", "1", NULL},
    {"float", "1.5", NULL},
    {"float", "-1.5", NULL},
    {"float", "+1.5", NULL},
    {"float", ".5", NULL},
    {"float", "5.", NULL},
    {"float", "49.0", NULL},
    {"float", "1e5", NULL},
    {"float", "1E5", NULL},
    {"float", "1e+5", NULL},
    {"float", "1e-5", NULL},
    {"float", "1e400", KEDGE_REASON_NOT_FLOAT}, /* ErrRange */
    {"float", "-1e400", KEDGE_REASON_NOT_FLOAT},
    {"float", "1e-400", NULL}, /* underflow is not an error */
    {"float", "1.7976931348623157e308", NULL},
    {"float", "1.7976931348623159e308", KEDGE_REASON_NOT_FLOAT},
    {"float", "4e-324", NULL},
    {"float", "inf", NULL},
    {"float", "+Inf", NULL},
    {"float", "-Infinity", NULL},
    {"float", "INFINITY", NULL},
    {"float", "infin", KEDGE_REASON_NOT_FLOAT},
    {"float", "infx", KEDGE_REASON_NOT_FLOAT},
    {"float", "nan", NULL},
    {"float", "NaN", NULL},
    {"float", "+nan", KEDGE_REASON_NOT_FLOAT},
    {"float", "-nan", KEDGE_REASON_NOT_FLOAT},
    {"float", "nan(1)", KEDGE_REASON_NOT_FLOAT},
    {"float", "0x1p-2", NULL},
    {"float", "0X1P-2", NULL},
    {"float", "-0x1.8p1", NULL},
    {"float", "0x.8p1", NULL},
    {"float", "0x1.fffffffffffffp1023", NULL},
    {"float", "0x1p1024", KEDGE_REASON_NOT_FLOAT}, /* ErrRange */
    {"float", "0x1p-2000", NULL},
    {"float", "0x1", KEDGE_REASON_NOT_FLOAT}, /* hex needs its p exponent */
    {"float", "0x1e2", KEDGE_REASON_NOT_FLOAT},
    {"float", "0x", KEDGE_REASON_NOT_FLOAT},
    {"float", "0xp1", KEDGE_REASON_NOT_FLOAT},
    {"float", "0x1p", KEDGE_REASON_NOT_FLOAT},
    {"float", "1x", KEDGE_REASON_NOT_FLOAT},
    /* '_' as Go source allows it (atof_test.go: "1_23.50_0_0e+1_2" is 1.235e+14) */
    {"float", "1_000", NULL},
    {"float", "1_23.50_0_0e+1_2", NULL},
    {"float", "0x_1_2.3_4_5p+1_2", NULL},
    {"float", "0x1p1_0", NULL},
    {"float", "_1", KEDGE_REASON_NOT_FLOAT},
    {"float", "1_", KEDGE_REASON_NOT_FLOAT},
    {"float", "1__0", KEDGE_REASON_NOT_FLOAT},
    {"float", "123_.5", KEDGE_REASON_NOT_FLOAT},
    {"float", "123._5", KEDGE_REASON_NOT_FLOAT},
    {"float", "123.5e_+12", KEDGE_REASON_NOT_FLOAT},
    {"float", "123.5e+_12", KEDGE_REASON_NOT_FLOAT},
    {"float", "123.5e+12_", KEDGE_REASON_NOT_FLOAT},
    {"float", "-_123.5", KEDGE_REASON_NOT_FLOAT},
    {"float", "0x__12.345p+12", KEDGE_REASON_NOT_FLOAT},
    {"float", "1_0e4_00", KEDGE_REASON_NOT_FLOAT}, /* 10e400: syntax fine, ErrRange */
    {"float", "", KEDGE_REASON_NOT_FLOAT},
    {"float", ".", KEDGE_REASON_NOT_FLOAT},
    {"float", "e5", KEDGE_REASON_NOT_FLOAT},
    {"float", "1e", KEDGE_REASON_NOT_FLOAT},
    {"float", "1e+", KEDGE_REASON_NOT_FLOAT},
    {"float", "1.5.5", KEDGE_REASON_NOT_FLOAT},
    {"float", "1,5", KEDGE_REASON_NOT_FLOAT},
    {"float", " 1", KEDGE_REASON_NOT_FLOAT},
    {"float", "x1", KEDGE_REASON_NOT_FLOAT},
    /* boolean: exactly true or false */
    {"boolean", "true", NULL},
    {"boolean", "false", NULL},
    {"boolean", "True", KEDGE_REASON_NOT_BOOL},
    {"boolean", "TRUE", KEDGE_REASON_NOT_BOOL},
    {"boolean", "1", KEDGE_REASON_NOT_BOOL},
    {"boolean", "yes", KEDGE_REASON_NOT_BOOL},
    {"boolean", "", KEDGE_REASON_NOT_BOOL},
    {"boolean", "true ", KEDGE_REASON_NOT_BOOL},
    /* every other type name, whatever the value */
    {"double", "1.5", KEDGE_REASON_TYPE},
    {"bytes", "YQ==", KEDGE_REASON_TYPE},
    {"bytes", "", KEDGE_REASON_TYPE},
    {"Int", "1", KEDGE_REASON_TYPE},
    {"INT", "1", KEDGE_REASON_TYPE},
    {"int64", "1", KEDGE_REASON_TYPE},
    {"bool", "true", KEDGE_REASON_TYPE},
    {"String", "x", KEDGE_REASON_TYPE},
    {" int", "1", KEDGE_REASON_TYPE},
};

START_TEST(check_type)
{
    const char *got = kedge_twin_check_type(types[_i].type, types[_i].value);

    if (!types[_i].reason)
        ck_assert_msg(got == NULL, "type=%s value=%s: refused with \"%s\"",
                      types[_i].type ? types[_i].type : "(null)", types[_i].value, got);
    else
        ck_assert_msg(got && !strcmp(got, types[_i].reason),
                      "type=%s value=%s: got %s, want \"%s\"", types[_i].type, types[_i].value,
                      got ? got : "(accepted)", types[_i].reason);
}
END_TEST

/* The reason strings are part of the contract (docs/kubeedge-wire.md §2.3). */
START_TEST(reason_strings)
{
    ck_assert_str_eq(KEDGE_REASON_UNMARSHAL,
                     "Unmarshal update request body failed, please check the request");
    ck_assert_str_eq(KEDGE_REASON_NOTWIN, "Update twin error, key:twin does not exist");
    ck_assert_str_eq(KEDGE_REASON_KEY,
                     "The key of twin must only include upper or lowercase letters, number, "
                     "english, and special letter - _ . , : / @ # and the length of key should "
                     "be less than 128 bytes");
    ck_assert_str_eq(KEDGE_REASON_VALUE,
                     "The value of twin must only include upper or lowercase letters, number, "
                     "english, and special letter - _ . , : / @ # and the length of value "
                     "should be less than 512 bytes");
    ck_assert_str_eq(KEDGE_REASON_NODEVICE, "update rejected due to the device is not existed");
    ck_assert_str_eq(KEDGE_REASON_BODY, "the request body is wrong");
    ck_assert_str_eq(KEDGE_REASON_NOT_INT, "the value is not int or integer");
    ck_assert_str_eq(KEDGE_REASON_NOT_FLOAT, "the value is not float");
    ck_assert_str_eq(KEDGE_REASON_NOT_BOOL, "the bool value must be true or false");
    ck_assert_str_eq(KEDGE_REASON_TYPE, "the value type is not allowed");
}
END_TEST

/* ---- get and state requests ------------------------------------------------------------- */

static const struct {
    const char *in;
    int rc;
    const char *event_id;
} gets[] = {
    {"{\"event_id\":\"g1\"}", 0, "g1"},
    {"{\"event_id\":\"c-get-initial\",\"timestamp\":1000}", 0, "c-get-initial"},
    {"{\"EVENT_ID\":\"x\"}", 0, "x"},
    {"{}", 0, ""},
    {"null", 0, ""},
    {"{\"event_id\":null}", 0, ""},
    {"{\"twin\":5}", 0, ""}, /* unknown keys are ignored */
    {"{\"event_id\":5}", KEDGE_EPARSE, NULL},
    {"{\"timestamp\":\"x\"}", KEDGE_EPARSE, NULL},
    {"[]", KEDGE_EPARSE, NULL},
    {"", KEDGE_EPARSE, NULL},
    {"{\"event_id\":\"g1\"", KEDGE_EPARSE, NULL},
};

START_TEST(event_id_decode)
{
    char *id = (char *)1;

    ck_assert_int_eq(kedge_twin_event_id_decode(gets[_i].in, strlen(gets[_i].in), &id),
                     gets[_i].rc);
    if (gets[_i].event_id)
        ck_assert_str_eq(id, gets[_i].event_id);
    else
        ck_assert_ptr_null(id);
    kedge_free(id);
}
END_TEST

static const struct {
    const char *in;
    int rc;
    const char *state;
} states[] = {
    {"{\"event_id\":\"s1\",\"timestamp\":1,\"state\":\"online\"}", 0, "online"},
    {"{\"STATE\":\"OffLine\"}", 0, "OffLine"},
    {"{}", 0, ""},
    {"null", 0, ""},
    {"{\"state\":null}", 0, ""},
    {"{\"state\":\"x\",\"attributes\":{\"a\":{\"value\":\"1\",\"optional\":true,"
     "\"metadata\":{\"type\":\"int\"}},\"b\":null}}",
     0, "x"},
    {"{\"state\":5}", KEDGE_EPARSE, NULL},
    {"{\"state\":\"x\",\"event_id\":1}", KEDGE_EPARSE, NULL},
    {"{\"attributes\":[]}", KEDGE_EPARSE, NULL},
    {"{\"attributes\":{\"a\":\"v\"}}", KEDGE_EPARSE, NULL},
    {"{\"attributes\":{\"a\":{\"value\":1}}}", KEDGE_EPARSE, NULL},
    {"{\"attributes\":{\"a\":{\"optional\":\"x\"}}}", KEDGE_EPARSE, NULL},
    {"{\"attributes\":{\"a\":{\"metadata\":{\"type\":1}}}}", KEDGE_EPARSE, NULL},
    {"{\"attributes\":{\"a\":{\"metadata\":[]}}}", KEDGE_EPARSE, NULL},
    {"\"x\"", KEDGE_EPARSE, NULL},
    {"{\"state\":", KEDGE_EPARSE, NULL},
};

START_TEST(state_decode)
{
    char *state = (char *)1;

    ck_assert_int_eq(kedge_twin_state_decode(states[_i].in, strlen(states[_i].in), &state),
                     states[_i].rc);
    if (states[_i].state)
        ck_assert_str_eq(state, states[_i].state);
    else
        ck_assert_ptr_null(state);
    kedge_free(state);
}
END_TEST

static Suite *twin_suite(void)
{
    Suite *s = suite_create("twin");
    TCase *tc;

    tc = tcase_create("decode");
    tcase_add_loop_test(tc, decode_ok, 0, (int)(sizeof(decodes) / sizeof(decodes[0])));
    tcase_add_test(tc, decode_fields);
    tcase_add_loop_test(tc, decode_error, 0,
                        (int)(sizeof(decode_errors) / sizeof(decode_errors[0])));
    tcase_add_loop_test(tc, decode_length_limits, LEN_KEY128, LEN_VAL513_EXPECTED + 1);
    tcase_add_test(tc, decode_keeps_event_id);
    tcase_add_loop_test(tc, event_id_decode, 0, (int)(sizeof(gets) / sizeof(gets[0])));
    tcase_add_loop_test(tc, state_decode, 0, (int)(sizeof(states) / sizeof(states[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("validate");
    tcase_add_test(tc, charset_every_byte);
    tcase_add_test(tc, charset_lengths);
    tcase_add_loop_test(tc, check_type, 0, (int)(sizeof(types) / sizeof(types[0])));
    tcase_add_test(tc, reason_strings);
    suite_add_tcase(s, tc);

    tc = tcase_create("encode");
    twin_encode_tests(tc);
    suite_add_tcase(s, tc);

    tc = tcase_create("nomem");
    twin_nomem_tests(tc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(twin_suite());
}
