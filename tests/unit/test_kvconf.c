/* common/kvconf.c: the one key/value config parser (plugin options, bridge file and
 * overrides, kedge-ctl, cloudsim): defaults, the file syntax, `key=value`, every fault with
 * its where, unknown keys ignored or refused, and no leak on any allocation failure.
 */
#include <check.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "kedge/err.h"
#include "kedge/kvconf.h"
#include "unit.h"

struct cfg {
    char *name;
    long port;
    char *mode;
    char *empty;
};

static const char *const modes[] = {"fast", "safe", NULL};

#define F(m) offsetof(struct cfg, m)
static const struct kvconf_key keys[] = {
    {"name", KVCONF_STR, F(name), 0, 0, NULL, "required", NULL},
    {"port", KVCONF_LONG, F(port), 1, 65535, "1883", "a port", NULL},
    {"mode", KVCONF_STR, F(mode), 0, 0, "safe", "a choice", modes},
    {"empty", KVCONF_STR, F(empty), 0, 0, "", "empty by default", NULL},
};
#undef F

/* The last report, as kvconf_describe words it, and how many there were. */
struct seen {
    int n;
    enum kvconf_fault fault;
    char text[512];
};

static void record(void *arg, const struct kvconf_error *e)
{
    struct seen *s = arg;

    s->n++;
    s->fault = e->fault;
    kvconf_describe(e, s->text, sizeof(s->text));
}

static struct kvconf table(struct cfg *c, struct seen *s)
{
    struct kvconf k = {keys, sizeof(keys) / sizeof(keys[0]), c, false, record, s};

    memset(c, 0, sizeof(*c));
    memset(s, 0, sizeof(*s));
    return k;
}

/* A scratch file holding text; path is filled in. */
static void write_file(char path[64], const char *text)
{
    int fd;

    strcpy(path, "/tmp/kvconf-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    ck_assert_int_eq(close(fd), 0);
}

START_TEST(defaults_then_set)
{
    struct cfg c;
    struct seen s;
    struct kvconf k = table(&c, &s);

    ck_assert_int_eq(kvconf_defaults(&k), 0);
    ck_assert_ptr_null(c.name);
    ck_assert_int_eq(c.port, 1883);
    ck_assert_str_eq(c.mode, "safe");
    ck_assert_str_eq(c.empty, "");
    ck_assert_int_eq(kvconf_set_name(&k, "port", 4, "65535", NULL), 0);
    ck_assert_int_eq(c.port, 65535);
    ck_assert_int_eq(kvconf_set_name(&k, "mode", 4, "fast", NULL), 0);
    ck_assert_str_eq(c.mode, "fast");
    ck_assert_int_eq(s.n, 0);
    kvconf_free(&k);
    ck_assert_ptr_null(c.mode);
    ck_assert_ptr_null(c.empty);
}
END_TEST

static const struct {
    const char *key, *value;
    enum kvconf_fault fault;
    const char *text;
} bad_values[] = {
    {"port", "0", KVCONF_NOT_LONG, "here: port '0' is not a number in [1, 65535]"},
    {"port", "65536", KVCONF_NOT_LONG, "here: port '65536' is not a number in [1, 65535]"},
    {"port", "12x", KVCONF_NOT_LONG, "here: port '12x' is not a number in [1, 65535]"},
    {"port", "", KVCONF_NOT_LONG, "here: port '' is not a number in [1, 65535]"},
    {"mode", "Fast", KVCONF_NOT_CHOICE, "here: mode 'Fast' is not one of the allowed values"},
    {"nope", "1", KVCONF_UNKNOWN, "here: unknown key 'nope'"},
};

START_TEST(bad_value)
{
    struct cfg c;
    struct seen s;
    struct kvconf k = table(&c, &s);

    ck_assert_int_eq(kvconf_defaults(&k), 0);
    ck_assert_int_eq(kvconf_set_name(&k, bad_values[_i].key, strlen(bad_values[_i].key),
                                     bad_values[_i].value, "here"),
                     KEDGE_ECONFIG);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.fault, bad_values[_i].fault);
    ck_assert_str_eq(s.text, bad_values[_i].text);
    ck_assert_int_eq(c.port, 1883); /* a refused value leaves the field alone */
    ck_assert_str_eq(c.mode, "safe");
    kvconf_free(&k);
}
END_TEST

START_TEST(file_syntax)
{
    struct cfg c;
    struct seen s;
    struct kvconf k = table(&c, &s);
    char path[64];

    write_file(path, "# a comment\n\n   \t\nname  \t edge one  \r\n  port 10\n"
                     "\t# indented comment\nmode fast");
    ck_assert_int_eq(kvconf_defaults(&k), 0);
    ck_assert_int_eq(kvconf_file(&k, path, false), 0);
    ck_assert_int_eq(s.n, 0);
    ck_assert_str_eq(c.name, "edge one"); /* the value is the rest of the line, trimmed */
    ck_assert_int_eq(c.port, 10);
    ck_assert_str_eq(c.mode, "fast");
    ck_assert_int_eq(unlink(path), 0);
    kvconf_free(&k);
}
END_TEST

static const struct {
    const char *text;
    enum kvconf_fault fault;
    const char *said; /* after "PATH:" */
} bad_files[] = {
    {"name a\nport\n", KVCONF_NO_VALUE, "2: port has no value"},
    {"name a\nport   \t\n", KVCONF_NO_VALUE, "2: port has no value"},
    {"\n\n# x\nwhat 1\n", KVCONF_UNKNOWN, "4: unknown key 'what'"},
    {"port 1\nport 99999\n", KVCONF_NOT_LONG, "2: port '99999' is not a number in [1, 65535]"},
};

START_TEST(file_fault_has_line)
{
    struct cfg c;
    struct seen s;
    struct kvconf k = table(&c, &s);
    char path[64], want[128];

    write_file(path, bad_files[_i].text);
    ck_assert_int_eq(kvconf_defaults(&k), 0);
    ck_assert_int_eq(kvconf_file(&k, path, false), KEDGE_ECONFIG);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.fault, bad_files[_i].fault);
    (void)snprintf(want, sizeof(want), "%s:%s", path, bad_files[_i].said);
    ck_assert_str_eq(s.text, want);
    ck_assert_int_eq(unlink(path), 0);
    kvconf_free(&k);
}
END_TEST

START_TEST(file_unknown_ignored)
{
    struct cfg c;
    struct seen s;
    struct kvconf k = table(&c, &s);
    char path[64];

    k.ignore_unknown = true;
    write_file(path, "cloud_host 1.2.3.4\nname n\nother\n");
    ck_assert_int_eq(kvconf_file(&k, path, false), 0);
    ck_assert_int_eq(s.n, 0);
    ck_assert_str_eq(c.name, "n");
    ck_assert_int_eq(unlink(path), 0);
    kvconf_free(&k);
}
END_TEST

START_TEST(file_missing)
{
    struct cfg c;
    struct seen s;
    struct kvconf k = table(&c, &s);

    ck_assert_int_eq(kvconf_file(&k, "/nonexistent/kvconf.conf", true), 0);
    ck_assert_int_eq(s.n, 0);
    ck_assert_int_eq(kvconf_file(&k, "/nonexistent/kvconf.conf", false), KEDGE_ECONFIG);
    ck_assert_int_eq(s.fault, KVCONF_OPEN);
    ck_assert_str_eq(s.text, "cannot open /nonexistent/kvconf.conf: No such file or directory");
}
END_TEST

START_TEST(override_syntax)
{
    struct cfg c;
    struct seen s;
    struct kvconf k = table(&c, &s);
    char a[] = "name= spaced out ", b[] = "empty=", d[] = "port", e[] = "mode=Slow",
         f[] = "# not a comment=1";

    ck_assert_int_eq(kvconf_defaults(&k), 0);
    ck_assert_int_eq(kvconf_line(&k, a, '=', "argument 1"), 0);
    ck_assert_str_eq(c.name, "spaced out");
    ck_assert_int_eq(kvconf_line(&k, b, '=', "argument 2"), 0); /* empty is a value here */
    ck_assert_str_eq(c.empty, "");
    ck_assert_int_eq(kvconf_line(&k, d, '=', "argument 3"), KEDGE_ECONFIG);
    ck_assert_str_eq(s.text, "argument 3: port has no value");
    ck_assert_int_eq(kvconf_line(&k, e, '=', "argument 4"), KEDGE_ECONFIG);
    ck_assert_str_eq(s.text, "argument 4: mode 'Slow' is not one of the allowed values");
    ck_assert_int_eq(kvconf_line(&k, f, '=', "argument 5"), 0); /* '#' lines are skipped */
    ck_assert_int_eq(s.n, 2);
    kvconf_free(&k);
}
END_TEST

static int load_op(void *ctx)
{
    const char *path = ctx;
    struct cfg c;
    struct seen s;
    struct kvconf k = table(&c, &s);
    int rc = kvconf_defaults(&k);

    if (rc == 0)
        rc = kvconf_file(&k, path, false);
    kvconf_free(&k);
    return rc;
}

START_TEST(alloc_failures)
{
    static const int ok[] = {-ENOMEM};
    char path[64];

    write_file(path, "name x\nmode fast\nempty y\nname z\n");
    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(load_op, path, ok, 1), 3);
    unit_libc_allocs();
    ck_assert_int_eq(unlink(path), 0);
}
END_TEST

static Suite *kvconf_suite(void)
{
    Suite *s = suite_create("kvconf");
    TCase *tc = tcase_create("kvconf");

    tcase_add_test(tc, defaults_then_set);
    tcase_add_loop_test(tc, bad_value, 0, sizeof(bad_values) / sizeof(bad_values[0]));
    tcase_add_test(tc, file_syntax);
    tcase_add_loop_test(tc, file_fault_has_line, 0, sizeof(bad_files) / sizeof(bad_files[0]));
    tcase_add_test(tc, file_unknown_ignored);
    tcase_add_test(tc, file_missing);
    tcase_add_test(tc, override_syntax);
    tcase_add_test(tc, alloc_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(kvconf_suite());
}
