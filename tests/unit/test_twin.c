/* common/twin.c: decoding twin/get/state requests as Go's encoding/json + edgecore's checks do
 * (kubeedge-wire.md §2.3), the value/type rules of dtcommon.ValidateValue, and the exact bytes
 * of every message edgecore prints (§2.4-§2.10).
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/twin.h"
#include "unit.h"

#define T0 1700000000000LL
#define S(lit) lit, sizeof(lit) - 1

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
    /* §2.4's request example */
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

/* The reason strings are part of the contract (§2.3). */
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

/* ---- encoders: the spec's examples, byte for byte ------------------------------------------- */

static void set_value(struct kedge_twin_value *v, const char *value, int64_t ts)
{
    v->present = true;
    v->value = kedge_strdup(value);
    v->has_meta = true;
    v->ts = ts;
}

/* A twin as edgecore holds it: values with timestamps, optional, metadata.type. */
static void make_twin(struct kedge_twin *t, const char *name, const char *type, bool optional,
                      const char *expected, int64_t ets, const char *actual, int64_t ats)
{
    memset(t, 0, sizeof(*t));
    t->name = kedge_strdup(name);
    if (expected)
        set_value(&t->expected, expected, ets);
    if (actual)
        set_value(&t->actual, actual, ats);
    t->has_optional = true;
    t->optional = optional;
    t->has_meta = true;
    t->type = kedge_strdup(type);
}

/* §2.4 success result (an actual change) */
START_TEST(spec_update_result)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t;
    struct kedge_twin_ref ref;

    make_twin(&t, "temperature", "int", true, NULL, 0, "25", 1700000000123);
    t.has_av = true; /* versions are never in a result */
    t.av.edge = 4;
    ref.name = t.name;
    ref.twin = &t;
    ck_assert_int_eq(kedge_twin_map_encode(&b, "e1", 1700000000123, &ref, 1, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"e1\",\"timestamp\":1700000000123,\"twin\":{\"temperature\":"
                   "{\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":1700000000123}},"
                   "\"optional\":true,\"metadata\":{\"type\":\"int\"}}}}");
    kedge_twin_cleanup(&t);
    kedge_buf_cleanup(&b);
}
END_TEST

/* Results print deleted keys as null and nothing at all as "twin":{} */
START_TEST(result_null_and_empty)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin_ref ref = {NULL, "optkey"};

    ck_assert_int_eq(kedge_twin_map_encode(&b, "d1", T0, &ref, 1, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"d1\",\"timestamp\":1700000000000,\"twin\":{\"optkey\":null}}");
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_twin_map_encode(&b, NULL, 5, NULL, 0, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"\",\"timestamp\":5,\"twin\":{}}");
    kedge_buf_cleanup(&b);
}
END_TEST

/* §2.4 error result, and the recorded ones */
static const struct {
    const char *event_id;
    int64_t ts;
    int code;
    const char *reason, *want;
} errors[] = {
    {"e1", 1700000000123, 400, KEDGE_REASON_NOT_INT,
     "{\"event_id\":\"e1\",\"timestamp\":1700000000123,\"code\":400,\"reason\":"
     "\"the value is not int or integer\"}"},
    {"", T0, 400, KEDGE_REASON_UNMARSHAL,
     "{\"event_id\":\"\",\"timestamp\":1700000000000,\"code\":400,\"reason\":\"Unmarshal update "
     "request body failed, please check the request\"}"},
    {"c-unknown-upd", T0, 404, KEDGE_REASON_NODEVICE,
     "{\"event_id\":\"c-unknown-upd\",\"timestamp\":1700000000000,\"code\":404,\"reason\":"
     "\"update rejected due to the device is not existed\"}"},
    {"g1", T0, 404, "Device no-such-dev not found while getting twin",
     "{\"event_id\":\"g1\",\"timestamp\":1700000000000,\"code\":404,\"reason\":\"Device "
     "no-such-dev not found while getting twin\"}"},
    {"x", 1, 500, "disk <full> & gone",
     "{\"event_id\":\"x\",\"timestamp\":1,\"code\":500,\"reason\":\"disk \\u003cfull\\u003e "
     "\\u0026 gone\"}"},
    /* code and reason are omitempty */
    {"x", 1, 0, "", "{\"event_id\":\"x\",\"timestamp\":1}"},
    {NULL, 0, 0, NULL, "{\"event_id\":\"\",\"timestamp\":0}"},
};

START_TEST(error_result)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_twin_error_encode(&b, errors[_i].event_id, errors[_i].ts,
                                             errors[_i].code, errors[_i].reason),
                     0);
    ASSERT_BUF(&b, errors[_i].want);
    kedge_buf_cleanup(&b);
}
END_TEST

/* §2.4 document */
START_TEST(spec_document)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin last, cur;
    struct kedge_twin_doc doc;

    make_twin(&last, "temperature", "int", true, "30", 1699999990000, "24", 1699999995000);
    make_twin(&cur, "temperature", "int", true, "30", 1699999990000, "25", 1700000000123);
    cur.has_ev = cur.has_av = true; /* never printed in a document */
    doc.name = "temperature";
    doc.last = &last;
    doc.current = &cur;
    ck_assert_int_eq(kedge_twin_document_encode(&b, "e1", 1700000000123, &doc, 1), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"e1\",\"timestamp\":1700000000123,\"twin\":{\"temperature\":"
                   "{\"last\":{\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":"
                   "1699999990000}},\"actual\":{\"value\":\"24\",\"metadata\":{\"timestamp\":"
                   "1699999995000}},\"optional\":true,\"metadata\":{\"type\":\"int\"}},"
                   "\"current\":{\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":"
                   "1699999990000}},\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":"
                   "1700000000123}},\"optional\":true,\"metadata\":{\"type\":\"int\"}}}}}");
    kedge_twin_cleanup(&last);
    kedge_twin_cleanup(&cur);
    kedge_buf_cleanup(&b);
}
END_TEST

/* A new twin has last null, a deletion current null; several keys in order. */
START_TEST(document_null_sides)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t;
    struct kedge_twin_doc docs[2];

    make_twin(&t, "x", "string", false, NULL, 0, "a", 5);
    docs[0].name = "added";
    docs[0].last = NULL;
    docs[0].current = &t;
    docs[1].name = "gone";
    docs[1].last = &t;
    docs[1].current = NULL;
    ck_assert_int_eq(kedge_twin_document_encode(&b, "e", 7, docs, 2), 0);
    ASSERT_BUF(&b,
               "{\"event_id\":\"e\",\"timestamp\":7,\"twin\":{\"added\":{\"last\":null,"
               "\"current\":{\"actual\":{\"value\":\"a\",\"metadata\":{\"timestamp\":5}},"
               "\"optional\":false,\"metadata\":{\"type\":\"string\"}}},\"gone\":{\"last\":"
               "{\"actual\":{\"value\":\"a\",\"metadata\":{\"timestamp\":5}},\"optional\":false,"
               "\"metadata\":{\"type\":\"string\"}},\"current\":null}}}");
    kedge_twin_cleanup(&t);
    kedge_buf_cleanup(&b);
}
END_TEST

/* §2.4 delta */
START_TEST(spec_delta)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t;
    bool has;

    make_twin(&t, "temperature", "int", true, "30", 1699999990000, "25", 1700000000123);
    t.has_ev = true;
    ck_assert_int_eq(kedge_twin_delta_encode(&b, "5b0c-uuid", 1700000000124, &t, 1, &has), 0);
    ck_assert(has);
    ASSERT_BUF(&b, "{\"event_id\":\"5b0c-uuid\",\"timestamp\":1700000000124,\"twin\":"
                   "{\"temperature\":{\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":"
                   "1699999990000}},\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":"
                   "1700000000123}},\"optional\":true,\"metadata\":{\"type\":\"int\"}}},"
                   "\"delta\":{\"temperature\":\"30\"}}");
    kedge_twin_cleanup(&t);
    kedge_buf_cleanup(&b);
}
END_TEST

/* The delta's twin map holds every non-deleted twin with a non-empty expected; its delta map
 * only those where expected != actual (a missing actual counts as ""). */
START_TEST(delta_selection)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t[5];
    bool has = true;

    make_twin(&t[0], "a-same", "string", false, "x", 1, "x", 2);
    make_twin(&t[1], "b-noexp", "string", false, NULL, 0, "y", 3);
    make_twin(&t[2], "c-deleted", "deleted", true, NULL, 0, NULL, 0);
    t[2].expected.present = t[2].actual.present = true;
    make_twin(&t[3], "d-emptyexp", "string", false, "", 4, "z", 5);
    make_twin(&t[4], "e-noact", "int", true, "7", 6, NULL, 0);
    ck_assert_int_eq(kedge_twin_delta_encode(&b, "u", 9, t, 5, &has), 0);
    ck_assert(has);
    ASSERT_BUF(&b, "{\"event_id\":\"u\",\"timestamp\":9,\"twin\":{\"a-same\":{\"expected\":"
                   "{\"value\":\"x\",\"metadata\":{\"timestamp\":1}},\"actual\":{\"value\":\"x\","
                   "\"metadata\":{\"timestamp\":2}},\"optional\":false,\"metadata\":{\"type\":"
                   "\"string\"}},\"e-noact\":{\"expected\":{\"value\":\"7\",\"metadata\":"
                   "{\"timestamp\":6}},\"optional\":true,\"metadata\":{\"type\":\"int\"}}},"
                   "\"delta\":{\"e-noact\":\"7\"}}");
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_twin_delta_encode(&b, "u", 9, t, 4, &has), 0);
    ck_assert(!has); /* nothing differs: edgecore does not publish it */
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_twin_delta_encode(&b, "u", 9, NULL, 0, &has), 0);
    ck_assert(!has);
    ASSERT_BUF(&b, "{\"event_id\":\"u\",\"timestamp\":9,\"twin\":{},\"delta\":{}}");
    for (int i = 0; i < 5; i++)
        kedge_twin_cleanup(&t[i]);
    kedge_buf_cleanup(&b);
}
END_TEST

/* §2.6 get result: versions stripped (the caller leaves deleted twins out) */
START_TEST(spec_get_result)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t;
    struct kedge_twin_ref ref;

    make_twin(&t, "temperature", "int", true, "30", 1699999990000, "25", 1699999995000);
    t.has_ev = t.has_av = true;
    ref.name = t.name;
    ref.twin = &t;
    ck_assert_int_eq(kedge_twin_map_encode(&b, "g1", 1700000000500, &ref, 1, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"g1\",\"timestamp\":1700000000500,\"twin\":{\"temperature\":"
                   "{\"expected\":{\"value\":\"30\",\"metadata\":{\"timestamp\":1699999990000}},"
                   "\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":1699999995000}},"
                   "\"optional\":true,\"metadata\":{\"type\":\"int\"}}}}");
    kedge_twin_cleanup(&t);
    kedge_buf_cleanup(&b);
}
END_TEST

/* Recorded case 1 (get_initial): conf-dev-1's six seeded twins, in Go's key order. */
START_TEST(recorded_get_initial)
{
    static const struct {
        const char *name, *type, *exp, *act;
        bool optional;
    } seed[] = {
        {"humidity", "float", "40.5", "41.5", false},  {"label", "string", "a", "a", false},
        {"mandkey", "string", "x", "y", false},        {"optkey", "string", "x", "y", true},
        {"switch", "boolean", "true", "false", false}, {"temperature", "int", "20", "21", false},
    };
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t[6];
    struct kedge_twin_ref refs[6];
    size_t i;

    for (i = 0; i < 6; i++) {
        make_twin(&t[i], seed[i].name, seed[i].type, seed[i].optional, seed[i].exp, T0, seed[i].act,
                  T0);
        refs[i].name = t[i].name;
        refs[i].twin = &t[i];
    }
    ck_assert_int_eq(kedge_twin_map_encode(&b, "c-get-initial", 1700000001000, refs, 6, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"c-get-initial\",\"timestamp\":1700000001000,\"twin\":{"
                   "\"humidity\":{\"expected\":{\"value\":\"40.5\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"actual\":{\"value\":\"41.5\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"optional\":false,\"metadata\":{\"type\":\"float\"}},"
                   "\"label\":{\"expected\":{\"value\":\"a\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"actual\":{\"value\":\"a\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"optional\":false,\"metadata\":{\"type\":\"string\"}},"
                   "\"mandkey\":{\"expected\":{\"value\":\"x\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"actual\":{\"value\":\"y\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"optional\":false,\"metadata\":{\"type\":\"string\"}},"
                   "\"optkey\":{\"expected\":{\"value\":\"x\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"actual\":{\"value\":\"y\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"optional\":true,\"metadata\":{\"type\":\"string\"}},"
                   "\"switch\":{\"expected\":{\"value\":\"true\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"actual\":{\"value\":\"false\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"optional\":false,\"metadata\":{\"type\":\"boolean\"}},"
                   "\"temperature\":{\"expected\":{\"value\":\"20\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"actual\":{\"value\":\"21\",\"metadata\":{\"timestamp\":"
                   "1700000000000}},\"optional\":false,\"metadata\":{\"type\":\"int\"}}}}");
    for (i = 0; i < 6; i++)
        kedge_twin_cleanup(&t[i]);
    kedge_buf_cleanup(&b);
}
END_TEST

/* §2.7 state result */
START_TEST(spec_state_result)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_state_result_encode(&b, "0f8e2a4c-1d2b-4c3d-8e9f-a0b1c2d3e4f5",
                                               1714557600000, "thermo", "online",
                                               "2024-05-01T10:00:00Z"),
                     0);
    ASSERT_BUF(&b, "{\"event_id\":\"0f8e2a4c-1d2b-4c3d-8e9f-a0b1c2d3e4f5\",\"timestamp\":"
                   "1714557600000,\"device\":{\"name\":\"thermo\",\"state\":\"online\","
                   "\"lastOnlineTime\":\"2024-05-01T10:00:00Z\"}}");
    kedge_buf_reset(&b);
    /* offline clears last_online, and omitempty drops it */
    ck_assert_int_eq(kedge_state_result_encode(&b, "u", 1, "thermo", "offline", ""), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"u\",\"timestamp\":1,\"device\":{\"name\":\"thermo\","
                   "\"state\":\"offline\"}}");
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_state_result_encode(&b, "u", 1, NULL, NULL, NULL), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"u\",\"timestamp\":1,\"device\":{}}");
    kedge_buf_cleanup(&b);
}
END_TEST

/* §2.8 edge_updated content: like a result, with versions */
START_TEST(spec_edge_updated)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t, del;
    struct kedge_twin_ref refs[2];

    make_twin(&t, "temperature", "int", true, NULL, 0, "25", 1700000000123);
    t.has_av = true;
    t.av.cloud = 0;
    t.av.edge = 4;
    make_twin(&del, "optkey", "deleted", true, NULL, 0, NULL, 0);
    del.expected.present = del.actual.present = true;
    del.has_ev = del.has_av = true;
    del.ev.edge = 1;
    del.av.cloud = 3;
    del.av.edge = 2;
    refs[0].name = "optkey";
    refs[0].twin = &del;
    refs[1].name = "temperature";
    refs[1].twin = &t;
    ck_assert_int_eq(
        kedge_twin_map_encode(&b, "3f1e-uuid", 1700000000123, &refs[1], 1, KEDGE_TWIN_VERSIONS), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"3f1e-uuid\",\"timestamp\":1700000000123,\"twin\":"
                   "{\"temperature\":{\"actual\":{\"value\":\"25\",\"metadata\":{\"timestamp\":"
                   "1700000000123}},\"optional\":true,\"metadata\":{\"type\":\"int\"},"
                   "\"actual_version\":{\"cloud\":0,\"edge\":4}}}}");
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_twin_map_encode(&b, "u", 2, refs, 2, KEDGE_TWIN_VERSIONS), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"u\",\"timestamp\":2,\"twin\":{\"optkey\":{\"expected\":{},"
                   "\"actual\":{},\"optional\":true,\"metadata\":{\"type\":\"deleted\"},"
                   "\"expected_version\":{\"cloud\":0,\"edge\":1},\"actual_version\":{\"cloud\":3,"
                   "\"edge\":2}},\"temperature\":{\"actual\":{\"value\":\"25\",\"metadata\":"
                   "{\"timestamp\":1700000000123}},\"optional\":true,\"metadata\":{\"type\":"
                   "\"int\"},\"actual_version\":{\"cloud\":0,\"edge\":4}}}}");
    kedge_twin_cleanup(&t);
    kedge_twin_cleanup(&del);
    kedge_buf_cleanup(&b);
}
END_TEST

/* MsgTwin's omitempty fields one by one */
START_TEST(twin_write_omitempty)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;
    struct kedge_twin t;

    memset(&t, 0, sizeof(t));
    kedge_jw_init(&w, &b);
    kedge_twin_write(&w, &t, KEDGE_TWIN_VERSIONS);
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
    ASSERT_BUF(&b, "{}");
    kedge_buf_reset(&b);
    t.expected.present = true; /* no value, no metadata */
    t.actual.present = true;
    t.actual.has_meta = true; /* timestamp 0 is omitted */
    t.has_meta = true;        /* type NULL is omitted */
    t.has_optional = true;    /* false is printed: a pointer in Go */
    kedge_jw_init(&w, &b);
    kedge_twin_write(&w, &t, 0);
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
    ASSERT_BUF(&b, "{\"expected\":{},\"actual\":{\"metadata\":{}},\"optional\":false,"
                   "\"metadata\":{}}");
    kedge_buf_cleanup(&b);
}
END_TEST

/* §2.10 membership get result */
START_TEST(spec_membership_get)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_attr attrs[2] = {
        {.name = "model", .value = "m1", .type = "string", .optional = false},
        {.name = "zone", .value = NULL, .type = NULL, .optional = true},
    };
    struct kedge_device d1 = {.id = "default/thermo",
                              .name = "thermo",
                              .description = "",
                              .state = "online",
                              .last_online = "2024-05-01T10:00:00Z",
                              .attrs = attrs,
                              .n_attrs = 2};
    struct kedge_device d2 = {.id = "conf-dev-2",
                              .name = "conf-dev-2",
                              .description = "conformance device 2 (no twins)",
                              .state = "unknown",
                              .last_online = ""};
    const struct kedge_device *devs[2] = {&d2, &d1};

    ck_assert_int_eq(kedge_membership_get_encode(&b, "m1", 1714557600000, &devs[1], 1), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"m1\",\"timestamp\":1714557600000,\"devices\":[{\"id\":"
                   "\"default/thermo\",\"name\":\"thermo\",\"state\":\"online\",\"last_online\":"
                   "\"2024-05-01T10:00:00Z\",\"attributes\":{\"model\":{\"value\":\"m1\","
                   "\"optional\":false,\"metadata\":{\"type\":\"string\"}},\"zone\":{\"value\":"
                   "\"\",\"optional\":true,\"metadata\":{}}}}]}");
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_membership_get_encode(&b, "m2", 1, devs, 2), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"m2\",\"timestamp\":1,\"devices\":[{\"id\":\"conf-dev-2\","
                   "\"name\":\"conf-dev-2\",\"description\":\"conformance device 2 (no twins)\","
                   "\"state\":\"unknown\"},{\"id\":\"default/thermo\",\"name\":\"thermo\","
                   "\"state\":\"online\",\"last_online\":\"2024-05-01T10:00:00Z\","
                   "\"attributes\":{\"model\":{\"value\":\"m1\",\"optional\":false,\"metadata\":"
                   "{\"type\":\"string\"}},\"zone\":{\"value\":\"\",\"optional\":true,"
                   "\"metadata\":{}}}}]}");
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_membership_get_encode(&b, "m3", 1, NULL, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"m3\",\"timestamp\":1,\"devices\":[]}");
    kedge_buf_cleanup(&b);
}
END_TEST

/* Names and values are escaped as Go escapes map keys and strings. */
START_TEST(encode_escapes_names)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin t;
    struct kedge_twin_ref ref;

    make_twin(&t, "a<b", "string", false, NULL, 0, "x&y", 0);
    ref.name = t.name;
    ref.twin = &t;
    ck_assert_int_eq(kedge_twin_map_encode(&b, "<e>", 1, &ref, 1, 0), 0);
    ASSERT_BUF(&b, "{\"event_id\":\"\\u003ce\\u003e\",\"timestamp\":1,\"twin\":{\"a\\u003cb\":"
                   "{\"actual\":{\"value\":\"x\\u0026y\",\"metadata\":{}},\"optional\":false,"
                   "\"metadata\":{\"type\":\"string\"}}}}");
    kedge_twin_cleanup(&t);
    kedge_buf_cleanup(&b);
}
END_TEST

/* ---- lifetime -------------------------------------------------------------------------------- */

START_TEST(copy_is_deep)
{
    struct kedge_twin a, b;

    make_twin(&a, "k", "int", true, "1", 2, "3", 4);
    a.meta_col = kedge_strdup("{}");
    a.description = kedge_strdup("d");
    a.has_ev = true;
    a.ev.edge = 9;
    ck_assert_int_eq(kedge_twin_copy(&b, &a), 0);
    ck_assert_ptr_ne(a.name, b.name);
    ck_assert_ptr_ne(a.expected.value, b.expected.value);
    ck_assert_ptr_ne(a.meta_col, b.meta_col);
    kedge_twin_cleanup(&a);
    ck_assert_ptr_null(a.name);
    ck_assert_str_eq(b.name, "k");
    ck_assert_str_eq(b.expected.value, "1");
    ck_assert_str_eq(b.actual.value, "3");
    ck_assert_str_eq(b.type, "int");
    ck_assert_str_eq(b.meta_col, "{}");
    ck_assert_str_eq(b.description, "d");
    ck_assert_int_eq(b.ev.edge, 9);
    ck_assert(b.has_ev && b.optional && b.expected.has_meta);
    kedge_twin_cleanup(&b);
    kedge_twin_cleanup(NULL);
    kedge_attr_cleanup(NULL);
    kedge_device_free(NULL);
    kedge_twin_update_cleanup(NULL);
}
END_TEST

/* ---- allocation failure ---------------------------------------------------------------------- */

static int op_decode(void *arg)
{
    struct kedge_twin_update u;
    int rc = kedge_twin_update_decode(arg, strlen(arg), &u);

    if (rc == 0)
        ck_assert_uint_eq(u.n, 3);
    kedge_twin_update_cleanup(&u);
    return rc;
}

START_TEST(decode_nomem)
{
    static const int ok[] = {-ENOMEM};
    static const char *const ins[] = {
        "{\"event_id\":\"e\\u0031\",\"timestamp\":5,\"twin\":{\"b\":{\"expected\":{\"value\":"
        "\"1\",\"metadata\":{\"timestamp\":3}},\"actual\":{\"value\":\"2\"},\"optional\":true,"
        "\"metadata\":{\"type\":\"int\"},\"expected_version\":{\"cloud\":1,\"edge\":2}},"
        "\"a\":null,\"c\":{\"metadata\":{}},\"a\":null}}",
    };

    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(op_decode, (void *)ins[0], ok, 1), 10);
    unit_libc_allocs();
}
END_TEST

/* Failing requests under allocation failure: their own code or -ENOMEM, and no leak even of
 * the kept event id once the caller cleans up. */
static int op_decode_error(void *arg)
{
    struct kedge_twin_update u;
    int rc = kedge_twin_update_decode(arg, strlen(arg), &u);

    kedge_twin_update_cleanup(&u);
    return rc == KEDGE_ETWINVALUE ? 1 : rc;
}

START_TEST(decode_error_nomem)
{
    static const char in[] = "{\"event_id\":\"e\",\"twin\":{\"a\":{\"actual\":{\"value\":\"x y\"}},"
                             "\"b\":null}}";
    long n;

    unit_count_allocs();
    for (n = 0; n < 40; n++) {
        int rc;
        (void)kedge_alloc_fail_after(n);
        rc = op_decode_error((void *)in);
        (void)kedge_alloc_fail_after(-1);
        ck_assert(rc == 1 || rc == -ENOMEM);
        ck_assert_int_eq(unit_live_blocks, 0);
    }
    unit_libc_allocs();
}
END_TEST

static int op_small_decoders(void *arg)
{
    char *s = NULL;
    int rc;

    (void)arg;
    rc = kedge_twin_event_id_decode(S("{\"event_id\":\"g\\u0031\"}"), &s);
    if (rc == 0) {
        ck_assert_str_eq(s, "g1");
        kedge_free(s);
        rc = kedge_twin_state_decode(S("{\"state\":\"online\",\"attributes\":{\"a\":{}}}"), &s);
    }
    if (rc == 0)
        ck_assert_str_eq(s, "online");
    kedge_free(s);
    return rc;
}

START_TEST(small_decoders_nomem)
{
    static const int ok[] = {-ENOMEM};

    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(op_small_decoders, NULL, ok, 1), 3);
    unit_libc_allocs();
}
END_TEST

/* Every encoder builds into a fresh buffer: -ENOMEM or the exact success bytes. */
static int op_encoders(void *arg)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_twin *t = arg;
    struct kedge_twin_ref ref = {t, t->name};
    struct kedge_twin_doc doc = {t->name, t, t};
    struct kedge_attr attr = {.name = "m", .value = "v", .type = "string"};
    struct kedge_device dev = {
        .id = "ns/d", .name = "d", .state = "online", .attrs = &attr, .n_attrs = 1};
    const struct kedge_device *devs = &dev;
    bool has;
    int rc;

    rc = kedge_twin_map_encode(&b, "e", 1, &ref, 1, KEDGE_TWIN_VERSIONS);
    if (rc == 0) {
        kedge_buf_cleanup(&b);
        rc = kedge_twin_document_encode(&b, "e", 1, &doc, 1);
    }
    if (rc == 0) {
        kedge_buf_cleanup(&b);
        rc = kedge_twin_delta_encode(&b, "e", 1, t, 1, &has);
    }
    if (rc == 0) {
        kedge_buf_cleanup(&b);
        rc = kedge_twin_error_encode(&b, "e", 1, 400, KEDGE_REASON_VALUE);
    }
    if (rc == 0) {
        kedge_buf_cleanup(&b);
        rc = kedge_membership_get_encode(&b, "e", 1, &devs, 1);
    }
    if (rc == 0) {
        kedge_buf_cleanup(&b);
        rc = kedge_state_result_encode(&b, "e", 1, "d", "online", "2024-05-01T10:00:00Z");
    }
    if (rc == 0)
        ASSERT_BUF(&b, "{\"event_id\":\"e\",\"timestamp\":1,\"device\":{\"name\":\"d\","
                       "\"state\":\"online\",\"lastOnlineTime\":\"2024-05-01T10:00:00Z\"}}");
    kedge_buf_cleanup(&b);
    return rc;
}

START_TEST(encoders_nomem)
{
    static const int ok[] = {-ENOMEM};
    struct kedge_twin t;
    long live;

    make_twin(&t, "a-long-twin-name-so-that-buffers-grow-more-than-once", "int", true, "1234567890",
              T0, "0987654321", T0);
    t.has_ev = t.has_av = true;
    unit_count_allocs();
    live = unit_live_blocks;
    ck_assert_int_gt(unit_alloc_fail_loop(op_encoders, &t, ok, 1), 5);
    ck_assert_int_eq(unit_live_blocks, live);
    unit_libc_allocs();
    kedge_twin_cleanup(&t);
}
END_TEST

static int op_copy(void *arg)
{
    struct kedge_twin dst;
    int rc = kedge_twin_copy(&dst, arg);

    if (rc < 0) {
        ck_assert_ptr_null(dst.name); /* zeroed on failure */
        ck_assert_ptr_null(dst.description);
    }
    kedge_twin_cleanup(&dst);
    return rc;
}

START_TEST(copy_nomem)
{
    static const int ok[] = {-ENOMEM};
    struct kedge_twin t;

    unit_count_allocs();
    make_twin(&t, "k", "int", true, "1", 2, "3", 4);
    t.meta_col = kedge_strdup("{}");
    t.description = kedge_strdup("d");
    ck_assert_int_eq(unit_alloc_fail_loop(op_copy, &t, ok, 1), 6);
    kedge_twin_cleanup(&t);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
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
    tcase_add_test(tc, spec_update_result);
    tcase_add_test(tc, result_null_and_empty);
    tcase_add_loop_test(tc, error_result, 0, (int)(sizeof(errors) / sizeof(errors[0])));
    tcase_add_test(tc, spec_document);
    tcase_add_test(tc, document_null_sides);
    tcase_add_test(tc, spec_delta);
    tcase_add_test(tc, delta_selection);
    tcase_add_test(tc, spec_get_result);
    tcase_add_test(tc, recorded_get_initial);
    tcase_add_test(tc, spec_state_result);
    tcase_add_test(tc, spec_edge_updated);
    tcase_add_test(tc, twin_write_omitempty);
    tcase_add_test(tc, spec_membership_get);
    tcase_add_test(tc, encode_escapes_names);
    tcase_add_test(tc, copy_is_deep);
    suite_add_tcase(s, tc);

    tc = tcase_create("nomem");
    tcase_add_test(tc, decode_nomem);
    tcase_add_test(tc, decode_error_nomem);
    tcase_add_test(tc, small_decoders_nomem);
    tcase_add_test(tc, encoders_nomem);
    tcase_add_test(tc, copy_nomem);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(twin_suite());
}
