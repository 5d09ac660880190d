/* common/json.c: the Go-compatible writer (kubeedge-wire.md §0) and the tree parser with Go's
 * decoding rules. Expected bytes are what Go 1.22+ encoding/json prints for the same input.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kedge/err.h"
#include "kedge/json.h"
#include "unit.h"

#define S(lit) lit, sizeof(lit) - 1 /* a literal with its exact length (may hold NUL) */

/* ---- writer: string escaping ------------------------------------------------------------- */

static const struct {
    const char *in;
    size_t len;
    const char *want;
} escapes[] = {
    {S("plain"), "\"plain\""},
    {S(""), "\"\""},
    {S("<>&"), "\"\\u003c\\u003e\\u0026\""},
    {S("a<b>c&d"), "\"a\\u003cb\\u003ec\\u0026d\""},
    {S("\xe2\x80\xa8"), "\"\\u2028\""}, /* U+2028 */
    {S("\xe2\x80\xa9"), "\"\\u2029\""}, /* U+2029 */
    {S("x\xe2\x80\xa8y\xe2\x80\xa9z"), "\"x\\u2028y\\u2029z\""},
    {S("\xe2\x80\xaa"), "\"\xe2\x80\xaa\""}, /* U+202A: raw */
    {S("\x01"), "\"\\u0001\""},
    {S("\x1f"), "\"\\u001f\""},
    {S("\x00"), "\"\\u0000\""},
    {S("a\x00"
       "b"),
     "\"a\\u0000b\""},
    {S("\x0b"), "\"\\u000b\""}, /* vertical tab: no short escape */
    {S("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\""},
    {S("\x7f"), "\"\x7f\""}, /* DEL is not escaped */
    {S("\""), "\"\\\"\""},
    {S("\\"), "\"\\\\\""},
    {S("a\"b\\c"), "\"a\\\"b\\\\c\""},
    {S("/"), "\"/\""},                                 /* slash is not escaped */
    {S("\xc3\xa9t\xc3\xa9"), "\"\xc3\xa9t\xc3\xa9\""}, /* é: raw */
    {S("\xe6\x97\xa5\xe6\x9c\xac"), "\"\xe6\x97\xa5\xe6\x9c\xac\""},
    {S("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\""}, /* U+1F600 */
    {S("\xff"), "\"\\ufffd\""},                      /* invalid byte */
    {S("a\xfe"
       "b"),
     "\"a\\ufffdb\""},
    {S("\xc3"), "\"\\ufffd\""},                                  /* truncated 2-byte */
    {S("\xc3("), "\"\\ufffd(\""},                                /* bad continuation */
    {S("\xc0\xaf"), "\"\\ufffd\\ufffd\""},                       /* overlong '/' */
    {S("\xe0\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\""},            /* overlong 3-byte */
    {S("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""},            /* encoded surrogate U+D800 */
    {S("\xe2\x82"), "\"\\ufffd\\ufffd\""},                       /* truncated 3-byte */
    {S("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* above U+10FFFF */
    {S("\xf0\x80\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* overlong 4-byte */
    {S("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\""},             /* U+10FFFF: raw */
    {S("\x80"), "\"\\ufffd\""},                                  /* lone continuation byte */
    {S("\xef\xbf\xbd"), "\"\xef\xbf\xbd\""},                     /* a real U+FFFD stays raw */
};

START_TEST(escape_table)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_int_eq(kedge_json_escape(&b, escapes[_i].in, escapes[_i].len), 0);
    ASSERT_BUF(&b, escapes[_i].want);
    kedge_buf_cleanup(&b);
}
END_TEST

/* The writer's string and key paths escape the same way. */
START_TEST(writer_escapes_keys_and_strings)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    kedge_jw_init(&w, &b);
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "<k>", "a&b");
    kedge_jw_key(&w, "n");
    kedge_jw_strn(&w, S("x\x00y"));
    kedge_jw_kstr(&w, "null", NULL);
    kedge_jw_obj_close(&w);
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
    ASSERT_BUF(&b, "{\"\\u003ck\\u003e\":\"a\\u0026b\",\"n\":\"x\\u0000y\",\"null\":\"\"}");
    kedge_buf_cleanup(&b);
}
END_TEST

/* ---- writer: structure -------------------------------------------------------------------- */

START_TEST(writer_nesting_and_commas)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    kedge_jw_init(&w, &b);
    kedge_jw_obj_open(&w);
    kedge_jw_kint(&w, "a", 1);
    kedge_jw_key(&w, "b");
    kedge_jw_arr_open(&w);
    kedge_jw_int(&w, 1);
    kedge_jw_int(&w, -2);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "c");
    kedge_jw_null(&w);
    kedge_jw_obj_close(&w);
    kedge_jw_arr_open(&w);
    kedge_jw_arr_close(&w);
    kedge_jw_obj_open(&w);
    kedge_jw_obj_close(&w);
    kedge_jw_arr_close(&w);
    kedge_jw_key(&w, "d");
    kedge_jw_bool(&w, true);
    kedge_jw_key(&w, "e");
    kedge_jw_bool(&w, false);
    kedge_jw_key(&w, "raw");
    kedge_jw_raw(&w, S("{\"x\":[1]}"));
    kedge_jw_kstr(&w, "f", "x");
    kedge_jw_obj_close(&w);
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
    ASSERT_BUF(&b, "{\"a\":1,\"b\":[1,-2,{\"c\":null},[],{}],\"d\":true,\"e\":false,"
                   "\"raw\":{\"x\":[1]},\"f\":\"x\"}");
    kedge_buf_cleanup(&b);
}
END_TEST

START_TEST(writer_int64_limits)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    kedge_jw_init(&w, &b);
    kedge_jw_arr_open(&w);
    kedge_jw_int(&w, INT64_MIN);
    kedge_jw_int(&w, INT64_MAX);
    kedge_jw_int(&w, 0);
    kedge_jw_arr_close(&w);
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
    ASSERT_BUF(&b, "[-9223372036854775808,9223372036854775807,0]");
    kedge_buf_cleanup(&b);
}
END_TEST

START_TEST(writer_top_level_scalars)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    kedge_jw_init(&w, &b);
    kedge_jw_str(&w, "<");
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
    ASSERT_BUF(&b, "\"\\u003c\"");
    kedge_buf_cleanup(&b);
}
END_TEST

/* The first error sticks: nothing more is written and finish reports it. */
START_TEST(writer_sticky_enomem)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    unit_count_allocs();
    kedge_jw_init(&w, &b);
    (void)kedge_alloc_fail_after(0);
    kedge_jw_obj_open(&w);
    ck_assert_int_eq(w.err, -ENOMEM);
    (void)kedge_alloc_fail_after(-1);
    kedge_jw_kstr(&w, "a", "b"); /* allocation works again, but the error is sticky */
    kedge_jw_obj_close(&w);
    ck_assert_int_eq(kedge_jw_finish(&w), -ENOMEM);
    ck_assert_uint_eq(b.len, 0);
    kedge_buf_cleanup(&b);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

START_TEST(writer_sticky_enomem_midway)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;
    char big[200];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    kedge_jw_init(&w, &b);
    kedge_jw_obj_open(&w); /* the buffer now has 64 bytes */
    (void)kedge_alloc_fail_after(0);
    kedge_jw_kstr(&w, "k", big); /* needs to grow: fails */
    (void)kedge_alloc_fail_after(-1);
    kedge_jw_kint(&w, "n", 1);
    kedge_jw_obj_close(&w);
    ck_assert_int_eq(kedge_jw_finish(&w), -ENOMEM);
    kedge_buf_cleanup(&b);
}
END_TEST

enum unbalanced { OPEN_OBJ, OPEN_ARR, EXTRA_CLOSE, KEY_NO_VALUE, TOO_DEEP };

START_TEST(writer_finish_unbalanced)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;
    int i;

    kedge_jw_init(&w, &b);
    switch (_i) {
    case OPEN_OBJ:
        kedge_jw_obj_open(&w);
        kedge_jw_kint(&w, "a", 1);
        break;
    case OPEN_ARR:
        kedge_jw_arr_open(&w);
        break;
    case EXTRA_CLOSE:
        kedge_jw_obj_open(&w);
        kedge_jw_obj_close(&w);
        kedge_jw_obj_close(&w);
        break;
    case KEY_NO_VALUE:
        kedge_jw_obj_open(&w);
        kedge_jw_key(&w, "a");
        kedge_jw_obj_close(&w); /* "{"a":}" is not JSON */
        break;
    case TOO_DEEP:
        for (i = 0; i <= KEDGE_JSON_MAX_DEPTH; i++)
            kedge_jw_arr_open(&w);
        for (i = 0; i <= KEDGE_JSON_MAX_DEPTH; i++)
            kedge_jw_arr_close(&w);
        break;
    }
    ck_assert_int_eq(kedge_jw_finish(&w), -EINVAL);
    kedge_buf_cleanup(&b);
}
END_TEST

START_TEST(writer_max_depth_ok)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;
    int i;

    kedge_jw_init(&w, &b);
    for (i = 0; i < KEDGE_JSON_MAX_DEPTH; i++)
        kedge_jw_arr_open(&w);
    for (i = 0; i < KEDGE_JSON_MAX_DEPTH; i++)
        kedge_jw_arr_close(&w);
    ck_assert_int_eq(kedge_jw_finish(&w), 0);
    ck_assert_uint_eq(b.len, 2 * KEDGE_JSON_MAX_DEPTH);
    kedge_buf_cleanup(&b);
}
END_TEST

/* A key left dangling at the end is an error. */
START_TEST(writer_finish_dangling_key)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    kedge_jw_init(&w, &b);
    kedge_jw_key(&w, "a");
    ck_assert_int_eq(kedge_jw_finish(&w), -EINVAL);
    kedge_buf_cleanup(&b);
}
END_TEST

/* ---- parser -------------------------------------------------------------------------------- */

static const struct {
    const char *in;
    size_t len;
    enum kedge_jtype type;
} valid_docs[] = {
    {S("{}"), KEDGE_JOBJ},
    {S("[]"), KEDGE_JARR},
    {S("1"), KEDGE_JNUM},
    {S("-0"), KEDGE_JNUM},
    {S("1.5e-3"), KEDGE_JNUM},
    {S("1E+2"), KEDGE_JNUM},
    {S("1e400"), KEDGE_JNUM}, /* valid JSON; only decoding it into a number would fail */
    {S("\"s\""), KEDGE_JSTR},
    {S("true"), KEDGE_JBOOL},
    {S("false"), KEDGE_JBOOL},
    {S("null"), KEDGE_JNULL},
    {S(" \t\r\n{ \"a\" : [ 1 , 2 ] } \n"), KEDGE_JOBJ},
    {S("{\"a\":{\"b\":{\"c\":[null,true,{}]}}}"), KEDGE_JOBJ},
    {S("\"\xff\""), KEDGE_JSTR}, /* Go accepts invalid UTF-8 inside strings */
};

START_TEST(parse_valid)
{
    struct kedge_jdoc *doc;

    ck_assert_int_eq(kedge_json_parse(valid_docs[_i].in, valid_docs[_i].len, &doc), 0);
    ck_assert_ptr_nonnull(doc);
    ck_assert_int_eq(kedge_jdoc_root(doc)->type, valid_docs[_i].type);
    kedge_jdoc_free(doc);
}
END_TEST

static const struct {
    const char *in;
    size_t len;
} invalid_docs[] = {
    {S("")},
    {S("   ")},
    {S("{")},
    {S("[1,]")},
    {S("{\"a\":1,}")},
    {S("{\"a\"}")},
    {S("{\"a\" 1}")},
    {S("{'a':1}")},
    {S("{a:1}")},
    {S("[\"a\"\"b\"]")},
    {S("01")},
    {S("-01")},
    {S("+1")},
    {S(".5")},
    {S("1.")},
    {S("-")},
    {S("NaN")},
    {S("Infinity")},
    {S("tru")},
    {S("nul")},
    {S("True")},
    {S("\"\\x\"")},
    {S("\"\\u12\"")},
    {S("\"\t\"")}, /* raw control character in a string */
    {S("\"\x01\"")},
    {S("\"abc")},
    {S("{}x")}, /* trailing garbage */
    {S("{}{}")},
    {S("1 2")},
    {S("[] ]")},
    {S("{} // c")}, /* comments */
    {S("/*c*/{}")},
    {S("{/*c*/}")},
    {S("# c\n{}")},
    {S("\xef\xbb\xbf{}")}, /* a BOM is not whitespace for Go */
    {S("{\"a\":1}\x00")},  /* NUL after the value */
};

START_TEST(parse_invalid)
{
    struct kedge_jdoc *doc = (struct kedge_jdoc *)1;

    ck_assert_int_eq(kedge_json_parse(invalid_docs[_i].in, invalid_docs[_i].len, &doc),
                     KEDGE_EPARSE);
    ck_assert_ptr_null(doc);
}
END_TEST

START_TEST(parse_null_empty)
{
    struct kedge_jdoc *doc;

    ck_assert_int_eq(kedge_json_parse(NULL, 0, &doc), KEDGE_EPARSE);
    ck_assert_ptr_null(doc);
}
END_TEST

/* Codecs take (buf, len): bytes after len are not part of the document. */
START_TEST(parse_not_nul_terminated)
{
    static const char text[] = "{\"a\":1}garbage";
    struct kedge_jdoc *doc;

    ck_assert_int_eq(kedge_json_parse(text, 7, &doc), 0);
    ck_assert_ptr_nonnull(kedge_json_get(kedge_jdoc_root(doc), "a"));
    kedge_jdoc_free(doc);
    ck_assert_int_eq(kedge_json_parse(text, 6, &doc), KEDGE_EPARSE);
}
END_TEST

static const struct kedge_jval *parse_root(const char *text, size_t len, struct kedge_jdoc **doc)
{
    ck_assert_int_eq(kedge_json_parse(text, len, doc), 0);
    return kedge_jdoc_root(*doc);
}

START_TEST(parse_tree_shape)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *root = parse_root(S("{\"a\":[1,\"x\",true],\"b\":{}}"), &doc);
    const struct kedge_jval *a = root->child, *e;

    ck_assert_uint_eq(root->n, 2);
    ck_assert_ptr_null(root->parent);
    ck_assert_uint_eq(a->key_len, 1);
    ck_assert_mem_eq(a->key, "a", 1);
    ck_assert_int_eq(a->type, KEDGE_JARR);
    ck_assert_uint_eq(a->n, 3);
    ck_assert_ptr_eq(a->parent, root);
    e = a->child;
    ck_assert_int_eq(e->type, KEDGE_JNUM);
    ck_assert_str_eq(e->str, "1");
    ck_assert_ptr_null(e->key);
    e = e->next;
    ck_assert_int_eq(e->type, KEDGE_JSTR);
    ck_assert_str_eq(e->str, "x");
    e = e->next;
    ck_assert_int_eq(e->type, KEDGE_JBOOL);
    ck_assert(e->boolean);
    ck_assert_ptr_null(e->next);
    ck_assert_ptr_eq(a->last, e);
    ck_assert_int_eq(a->next->type, KEDGE_JOBJ);
    ck_assert_uint_eq(a->next->n, 0);
    ck_assert_ptr_null(a->next->child);
    kedge_jdoc_free(doc);
}
END_TEST

/* Go's decoder: field names match case-insensitively, and the last match wins. */
static const struct {
    const char *doc;
    const char *name;
    const char *want; /* NULL: not found */
} gets[] = {
    {"{\"event_id\":\"x\"}", "event_id", "x"},
    {"{\"Event_ID\":\"x\"}", "event_id", "x"},
    {"{\"EVENT_ID\":\"x\"}", "event_id", "x"},
    {"{\"twin\":\"x\"}", "Twin", "x"},
    {"{\"a\":\"1\",\"A\":\"2\"}", "a", "2"},
    {"{\"A\":\"1\",\"a\":\"2\"}", "a", "2"},
    {"{\"a\":\"1\",\"a\":\"2\",\"b\":\"3\"}", "a", "2"},
    {"{\"a\":\"1\"}", "b", NULL},
    {"{\"ab\":\"1\"}", "a", NULL},
    {"{\"a\":\"1\"}", "ab", NULL},
    {"{\"\":\"e\"}", "", "e"},
    {"{\"a\\u0000\":\"1\"}", "a", NULL}, /* a key with a NUL is not "a" */
    {"{\"_\":\"1\"}", "\x7f", NULL},     /* folding is letters only */
    {"{\"[\":\"1\"}", "{", NULL},
    {"[\"a\"]", "a", NULL}, /* not an object */
};

START_TEST(get_case_insensitive_last_wins)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *root = parse_root(gets[_i].doc, strlen(gets[_i].doc), &doc);
    const struct kedge_jval *v = kedge_json_get(root, gets[_i].name);

    if (!gets[_i].want) {
        ck_assert_ptr_null(v);
    } else {
        ck_assert_ptr_nonnull(v);
        ck_assert_str_eq(v->str, gets[_i].want);
    }
    kedge_jdoc_free(doc);
}
END_TEST

START_TEST(get_exact)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *root =
        parse_root(S("{\"a\":\"1\",\"A\":\"2\",\"a\\u0000b\":\"3\",\"a\":\"4\"}"), &doc);
    const struct kedge_jval *v;

    v = kedge_json_get_exact(root, "a", 1);
    ck_assert_str_eq(v->str, "4");
    v = kedge_json_get_exact(root, "A", 1);
    ck_assert_str_eq(v->str, "2");
    v = kedge_json_get_exact(root, "a\0b", 3);
    ck_assert_str_eq(v->str, "3");
    ck_assert_ptr_null(kedge_json_get_exact(root, "ab", 2));
    ck_assert_ptr_null(kedge_json_get_exact(NULL, "a", 1));
    ck_assert_ptr_null(kedge_json_get(NULL, "a"));
    kedge_jdoc_free(doc);
}
END_TEST

/* Decoding a JSON number into an int64 field, as Go does (strconv.ParseInt on the literal). */
static const struct {
    const char *json;
    int rc;
    int64_t want;
} ints[] = {
    {"0", 0, 0},
    {"-0", 0, 0},
    {"42", 0, 42},
    {"-42", 0, -42},
    {"1700000000000", 0, 1700000000000},
    {"9223372036854775807", 0, INT64_MAX},
    {"-9223372036854775808", 0, INT64_MIN},
    {"9223372036854775808", KEDGE_ESCHEMA, 7},
    {"-9223372036854775809", KEDGE_ESCHEMA, 7},
    {"99999999999999999999999", KEDGE_ESCHEMA, 7},
    {"1.5", KEDGE_ESCHEMA, 7},
    {"1.0", KEDGE_ESCHEMA, 7},
    {"1e3", KEDGE_ESCHEMA, 7},
    {"1E3", KEDGE_ESCHEMA, 7},
    {"-1e0", KEDGE_ESCHEMA, 7},
    {"\"5\"", KEDGE_ESCHEMA, 7},
    {"true", KEDGE_ESCHEMA, 7},
    {"{}", KEDGE_ESCHEMA, 7},
    {"[]", KEDGE_ESCHEMA, 7},
    {"null", 0, 7}, /* null leaves the field alone */
};

START_TEST(int64_decoding)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *root = parse_root(ints[_i].json, strlen(ints[_i].json), &doc);
    int64_t v = 7;

    ck_assert_int_eq(kedge_json_int64(root, &v), ints[_i].rc);
    ck_assert_int_eq(v, ints[_i].want);
    kedge_jdoc_free(doc);
}
END_TEST

START_TEST(int64_absent)
{
    int64_t v = 7;

    ck_assert_int_eq(kedge_json_int64(NULL, &v), 0);
    ck_assert_int_eq(v, 7);
    ck_assert(kedge_json_is_null(NULL));
}
END_TEST

/* An optional object member: absent or null is Go's zero value, an object is taken, anything
 * else is the caller's error. */
START_TEST(optional_object)
{
    static const struct {
        const char *doc;
        int want;
    } cases[] = {
        {"{\"m\":{}}", 1},   {"{\"m\":null}", 0},    {"{}", 0},
        {"{\"m\":[]}", -77}, {"{\"m\":\"x\"}", -77},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kedge_jdoc *doc;

        ck_assert_int_eq(kedge_json_parse(cases[i].doc, strlen(cases[i].doc), &doc), 0);
        ck_assert_int_eq(kedge_json_optional_object(kedge_json_get(kedge_jdoc_root(doc), "m"), -77),
                         cases[i].want);
        kedge_jdoc_free(doc);
    }
}
END_TEST

/* Nesting: KEDGE_JSON_MAX_NEST levels parse, one more is refused (not a crash). */
START_TEST(depth_cap)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    int depth = KEDGE_JSON_MAX_NEST + _i, i, want = _i == 0 ? 0 : KEDGE_EPARSE;

    for (i = 0; i < depth; i++)
        ck_assert_int_eq(kedge_buf_puts(&b, i % 2 ? "{\"k\":" : "["), 0);
    ck_assert_int_eq(kedge_buf_putc(&b, '0'), 0);
    for (i = depth - 1; i >= 0; i--)
        ck_assert_int_eq(kedge_buf_puts(&b, i % 2 ? "}" : "]"), 0);
    ck_assert_int_eq(kedge_json_parse(b.data, b.len, &doc), want);
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&b);
}
END_TEST

START_TEST(deep_garbage_no_crash)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    int i;

    for (i = 0; i < 100000; i++)
        ck_assert_int_eq(kedge_buf_putc(&b, '['), 0);
    ck_assert_int_eq(kedge_json_parse(b.data, b.len, &doc), KEDGE_EPARSE);
    kedge_buf_cleanup(&b);
}
END_TEST

/* Strings come out as Go's decoder leaves them: escapes resolved, surrogate pairs joined,
 * and anything that is not well-formed UTF-8 (raw bad bytes, lone surrogates) turned into
 * U+FFFD (encoding/json decode.go unquote). */
static const struct {
    const char *json;
    const char *want;
    size_t want_len;
} strings[] = {
    {"\"abc\"", S("abc")},
    {"\"\"", S("")},
    {"\"\\u0000\"", S("\x00")},
    {"\"a\\u0000b\"", S("a\x00"
                        "b")},
    {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", S("\"\\/\b\f\n\r\t")},
    {"\"\\u00e9\"", S("\xc3\xa9")},
    {"\"\\u00E9\"", S("\xc3\xa9")},
    {"\"\\u20ac\"", S("\xe2\x82\xac")},
    {"\"\\u003c\"", S("<")},
    {"\"\\ud83d\\ude00\"", S("\xf0\x9f\x98\x80")},
    {"\"\\uD83D\\uDE00\"", S("\xf0\x9f\x98\x80")},
    {"\"\xc3\xa9\"", S("\xc3\xa9")},
    {"\"\\ud800\"", S("\xef\xbf\xbd")}, /* lone high surrogate */
    {"\"\\udc00\"", S("\xef\xbf\xbd")}, /* lone low surrogate */
    {"\"\\ud800x\"", S("\xef\xbf\xbdx")},
    {"\"\\ud800\\u0041\"", S("\xef\xbf\xbd"
                             "A")}, /* high surrogate, then not a low one */
    {"\"\\ud800\\ud800\\udc00\"", S("\xef\xbf\xbd\xf0\x90\x80\x80")},
    {"\"\\udc00\\ud800\"", S("\xef\xbf\xbd\xef\xbf\xbd")},
    {"\"\xff\"", S("\xef\xbf\xbd")}, /* invalid byte */
    {"\"a\xc3(\"", S("a\xef\xbf\xbd(")},
    {"\"\xed\xa0\x80\"", S("\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd")}, /* encoded surrogate */
    {"\"\xf0\x9f\x98\"", S("\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd")}, /* truncated 4-byte */
};

START_TEST(string_decoding)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *root = parse_root(strings[_i].json, strlen(strings[_i].json), &doc);

    ck_assert_int_eq(root->type, KEDGE_JSTR);
    ck_assert_uint_eq(root->len, strings[_i].want_len);
    ck_assert_mem_eq(root->str, strings[_i].want, strings[_i].want_len);
    ck_assert_int_eq(root->str[root->len], '\0');
    kedge_jdoc_free(doc);
}
END_TEST

/* Keys go through the same decoding as values. */
START_TEST(key_decoding)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *root =
        parse_root(S("{\"\\u0074win\":1,\"a\\u0000b\":2,\"\\ud800\":3,\"\xff\":4}"), &doc);
    const struct kedge_jval *m = root->child;

    ck_assert_uint_eq(m->key_len, 4);
    ck_assert_mem_eq(m->key, "twin", 4);
    ck_assert_ptr_eq(kedge_json_get(root, "TWIN"), m);
    m = m->next;
    ck_assert_uint_eq(m->key_len, 3);
    ck_assert_mem_eq(m->key, "a\0b", 3);
    m = m->next;
    ck_assert_uint_eq(m->key_len, 3);
    ck_assert_mem_eq(m->key, "\xef\xbf\xbd", 3);
    m = m->next;
    ck_assert_uint_eq(m->key_len, 3);
    ck_assert_mem_eq(m->key, "\xef\xbf\xbd", 3);
    kedge_jdoc_free(doc);
}
END_TEST

/* Numbers keep their literal text. */
START_TEST(number_text)
{
    struct kedge_jdoc *doc;
    const struct kedge_jval *root =
        parse_root(S("[-0.5e+10,123456789012345678901234567890]"), &doc);

    ck_assert_str_eq(root->child->str, "-0.5e+10");
    ck_assert_uint_eq(root->child->len, 8);
    ck_assert_str_eq(root->child->next->str, "123456789012345678901234567890");
    kedge_jdoc_free(doc);
}
END_TEST

/* A large document: many members and long strings force several arena blocks. */
START_TEST(large_document)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    const struct kedge_jval *root, *v;
    char key[32];
    int i;

    ck_assert_int_eq(kedge_buf_putc(&b, '{'), 0);
    for (i = 0; i < 5000; i++)
        ck_assert_int_eq(kedge_buf_printf(&b, "%s\"k%d\":\"%0300d\"", i ? "," : "", i, i), 0);
    ck_assert_int_eq(kedge_buf_putc(&b, '}'), 0);
    root = parse_root(b.data, b.len, &doc);
    ck_assert_uint_eq(root->n, 5000);
    (void)snprintf(key, sizeof(key), "K%d", 4321);
    v = kedge_json_get(root, key);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v->len, 300);
    ck_assert_int_eq(atoi(v->str), 4321);
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&b);
}
END_TEST

/* ---- round trip: what the writer prints, the parser reads back ------------------------------ */

START_TEST(escape_parse_round_trip)
{
    /* well-formed UTF-8 only: invalid input is replaced on the way out, as Go does */
    static const char *const texts[] = {
        "plain",        "<>&",   "\xe2\x80\xa8\xe2\x80\xa9", "\b\f\n\r\t",
        "\x01\x1f\x7f", "\"\\/", "\xc3\xa9\xf0\x9f\x98\x80"};
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    size_t i;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        kedge_buf_reset(&b);
        ck_assert_int_eq(kedge_json_escape(&b, texts[i], strlen(texts[i])), 0);
        ck_assert_int_eq(kedge_json_parse(b.data, b.len, &doc), 0);
        ck_assert_str_eq(kedge_jdoc_root(doc)->str, texts[i]);
        kedge_jdoc_free(doc);
    }
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_json_escape(&b, "a\0b", 3), 0);
    ck_assert_int_eq(kedge_json_parse(b.data, b.len, &doc), 0);
    ck_assert_uint_eq(kedge_jdoc_root(doc)->len, 3);
    ck_assert_mem_eq(kedge_jdoc_root(doc)->str, "a\0b", 3);
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&b);
}
END_TEST

/* ---- allocation failure -------------------------------------------------------------------- */

struct parse_ctx {
    const char *text;
    size_t len;
};

static int op_parse(void *arg)
{
    struct parse_ctx *c = arg;
    struct kedge_jdoc *doc;
    int rc = kedge_json_parse(c->text, c->len, &doc);

    if (rc == 0) {
        ck_assert_ptr_nonnull(kedge_json_get(kedge_jdoc_root(doc), "twin"));
        kedge_jdoc_free(doc);
    } else {
        ck_assert_ptr_null(doc);
    }
    return rc;
}

/* Documents that make yajl allocate in every place it does: the handle, the lexer, the state
 * stack, the decode buffer (strings with escapes) and the lexer buffer (a top-level number). */
static const char *const nomem_docs[] = {
    "{\"twin\":{\"a\":{\"actual\":{\"value\":\"x\\u0041\"}}}}",
    "{\"event_id\":\"\\ud83d\\ude00\",\"twin\":[1,2,[3,[4,{\"k\":\"\\n\"}]]],\"t\":1e5}",
};

START_TEST(parse_nomem)
{
    static const int ok[] = {-ENOMEM};
    struct parse_ctx c = {nomem_docs[_i], strlen(nomem_docs[_i])};

    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(op_parse, &c, ok, 1), 2);
    unit_libc_allocs();
}
END_TEST

static int op_parse_number(void *arg)
{
    struct kedge_jdoc *doc;
    int rc = kedge_json_parse(arg, strlen(arg), &doc);

    kedge_jdoc_free(doc);
    return rc;
}

START_TEST(parse_nomem_scalar)
{
    static const int ok[] = {-ENOMEM};

    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(op_parse_number, "12345", ok, 1), 0);
    ck_assert_int_gt(unit_alloc_fail_loop(op_parse_number, "\"a\\tb\"", ok, 1), 0);
    unit_libc_allocs();
}
END_TEST

/* Invalid input under allocation failure: -ENOMEM or KEDGE_EPARSE, never a crash or a leak. */
START_TEST(parse_nomem_invalid)
{
    static const int ok[] = {-ENOMEM, KEDGE_EPARSE};
    static const char text[] = "{\"a\":[1,2,\"\\u00e9\"],\"b\":";
    struct kedge_jdoc *doc;
    long n;

    unit_count_allocs();
    for (n = 0; n < 50; n++) {
        int rc;
        (void)kedge_alloc_fail_after(n);
        rc = kedge_json_parse(text, sizeof(text) - 1, &doc);
        (void)kedge_alloc_fail_after(-1);
        ck_assert(rc == ok[0] || rc == ok[1]);
        ck_assert_ptr_null(doc);
        ck_assert_int_eq(unit_live_blocks, 0);
    }
    unit_libc_allocs();
}
END_TEST

static int op_escape(void *arg)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    int rc = kedge_json_escape(&b, arg, strlen(arg));

    if (rc == 0)
        ck_assert_uint_gt(b.len, strlen(arg));
    kedge_buf_cleanup(&b);
    return rc;
}

START_TEST(escape_nomem)
{
    static const int ok[] = {-ENOMEM};
    char big[300];

    memset(big, '<', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(op_escape, big, ok, 1), 1);
    unit_libc_allocs();
}
END_TEST

/* kedge_buf_take of a buffer nothing was written to hands out "", a string (ASan caught a
 * strstr on an unterminated one in the real-cloud tier's log reader). */
START_TEST(buf_take_empty_is_a_string)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    size_t len = 99;
    char *s = kedge_buf_take(&b, &len);

    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(s, "");
    kedge_free(s);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc;

    tc = tcase_create("writer");
    tcase_add_loop_test(tc, escape_table, 0, (int)(sizeof(escapes) / sizeof(escapes[0])));
    tcase_add_test(tc, writer_escapes_keys_and_strings);
    tcase_add_test(tc, writer_nesting_and_commas);
    tcase_add_test(tc, writer_int64_limits);
    tcase_add_test(tc, writer_top_level_scalars);
    tcase_add_test(tc, writer_sticky_enomem);
    tcase_add_test(tc, writer_sticky_enomem_midway);
    tcase_add_loop_test(tc, writer_finish_unbalanced, OPEN_OBJ, TOO_DEEP + 1);
    tcase_add_test(tc, writer_max_depth_ok);
    tcase_add_test(tc, writer_finish_dangling_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("parser");
    tcase_add_loop_test(tc, parse_valid, 0, (int)(sizeof(valid_docs) / sizeof(valid_docs[0])));
    tcase_add_loop_test(tc, parse_invalid, 0,
                        (int)(sizeof(invalid_docs) / sizeof(invalid_docs[0])));
    tcase_add_test(tc, parse_null_empty);
    tcase_add_test(tc, parse_not_nul_terminated);
    tcase_add_test(tc, parse_tree_shape);
    tcase_add_loop_test(tc, get_case_insensitive_last_wins, 0,
                        (int)(sizeof(gets) / sizeof(gets[0])));
    tcase_add_test(tc, get_exact);
    tcase_add_loop_test(tc, int64_decoding, 0, (int)(sizeof(ints) / sizeof(ints[0])));
    tcase_add_test(tc, int64_absent);
    tcase_add_test(tc, optional_object);
    tcase_add_loop_test(tc, depth_cap, 0, 2);
    tcase_add_test(tc, deep_garbage_no_crash);
    tcase_add_loop_test(tc, string_decoding, 0, (int)(sizeof(strings) / sizeof(strings[0])));
    tcase_add_test(tc, key_decoding);
    tcase_add_test(tc, number_text);
    tcase_add_test(tc, large_document);
    tcase_add_test(tc, escape_parse_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("nomem");
    tcase_add_loop_test(tc, parse_nomem, 0, (int)(sizeof(nomem_docs) / sizeof(nomem_docs[0])));
    tcase_add_test(tc, parse_nomem_scalar);
    tcase_add_test(tc, parse_nomem_invalid);
    tcase_add_test(tc, escape_nomem);
    tcase_add_test(tc, buf_take_empty_is_a_string);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(json_suite());
}
