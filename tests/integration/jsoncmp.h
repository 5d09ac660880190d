/* Structural JSON comparison for recorded responses (tests/fixtures/edgecore-cases.json).
 *
 * The recording is normalised: keys sorted, generated timestamps shown as "<ts>", generated
 * event ids as "<generated>", times as "<time>". jsoncmp() compares an actual payload with such
 * an expected value: objects by key set (order-free: byte order is the unit tests' job), the
 * placeholders match any number / any non-empty string.
 */
#ifndef KEDGE_TESTS_JSONCMP_H
#define KEDGE_TESTS_JSONCMP_H

#include <stddef.h>

struct kedge_jval;

/* 1 when actual (JSON text) matches expected; otherwise 0 with a description of the first
 * difference in why[why_len]. */
int jsoncmp(const char *actual, size_t len, const struct kedge_jval *expected, char *why,
            size_t why_len);

/* Check assertion: payload[0..len) matches the template tpl (JSON text with the placeholders
 * above); on failure it prints the first difference, the payload and the template. */
void jsoncmp_expect(const char *payload, size_t len, const char *tpl);

struct kh_client;

/* Check assertion: a message on topic reaches c within timeout_ms (scaled) and its payload
 * matches tpl as jsoncmp_expect says. */
void jsoncmp_expect_msg(struct kh_client *c, const char *topic, const char *tpl, int timeout_ms);

/* Check assertion: path now holds exactly text. */
void test_write_file(const char *path, const char *text);

/* Run the whole file through seed SQL into a new SQLite database. Returns 0 or -1. */
int seed_db(const char *db_path, const char *sql_file);

/* Read a file into a NUL-terminated heap buffer (caller frees). NULL on error. */
char *slurp(const char *path, size_t *len);

#endif
