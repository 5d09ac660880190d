/* The json suite (test_json.c): the tree parser with Go's decoding rules, and the round trip
 * from what the writer prints to what the parser reads back.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kedge/err.h"
#include "kedge/json.h"
#include "json_fixture.h"
#include "unit.h"

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

void json_parser_tests(TCase *parser)
{
    tcase_add_loop_test(parser, parse_valid, 0, (int)(sizeof(valid_docs) / sizeof(valid_docs[0])));
    tcase_add_loop_test(parser, parse_invalid, 0,
                        (int)(sizeof(invalid_docs) / sizeof(invalid_docs[0])));
    tcase_add_test(parser, parse_null_empty);
    tcase_add_test(parser, parse_not_nul_terminated);
    tcase_add_test(parser, parse_tree_shape);
    tcase_add_loop_test(parser, get_case_insensitive_last_wins, 0,
                        (int)(sizeof(gets) / sizeof(gets[0])));
    tcase_add_test(parser, get_exact);
    tcase_add_loop_test(parser, int64_decoding, 0, (int)(sizeof(ints) / sizeof(ints[0])));
    tcase_add_test(parser, int64_absent);
    tcase_add_test(parser, optional_object);
    tcase_add_loop_test(parser, depth_cap, 0, 2);
    tcase_add_test(parser, deep_garbage_no_crash);
    tcase_add_loop_test(parser, string_decoding, 0, (int)(sizeof(strings) / sizeof(strings[0])));
    tcase_add_test(parser, key_decoding);
    tcase_add_test(parser, number_text);
    tcase_add_test(parser, large_document);
    tcase_add_test(parser, escape_parse_round_trip);
}
