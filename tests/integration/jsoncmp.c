/* Structural JSON comparison with the recording's placeholders, and DB seeding helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <check.h>

#include "harness.h"
#include "jsoncmp.h"
#include "kedge/json.h"

static int cmp(const struct kedge_jval *a, const struct kedge_jval *e, char *why, size_t n,
               const char *path);

static int diff_at(char *why, size_t n, const char *path, const char *msg)
{
    snprintf(why, n, "at %s: %s", path[0] ? path : "(root)", msg);
    return 0;
}

static int cmp_obj(const struct kedge_jval *a, const struct kedge_jval *e, char *why, size_t n,
                   const char *path)
{
    const struct kedge_jval *m;
    char sub[512];

    if (a->n != e->n) {
        char msg[64];
        snprintf(msg, sizeof(msg), "%zu keys, expected %zu", a->n, e->n);
        return diff_at(why, n, path, msg);
    }
    for (m = e->child; m; m = m->next) {
        const struct kedge_jval *am = kedge_json_get_exact(a, m->key, m->key_len);
        snprintf(sub, sizeof(sub), "%s.%s", path, m->key);
        if (!am)
            return diff_at(why, n, sub, "missing");
        if (!cmp(am, m, why, n, sub))
            return 0;
    }
    return 1;
}

static int cmp(const struct kedge_jval *a, const struct kedge_jval *e, char *why, size_t n,
               const char *path)
{
    const struct kedge_jval *x, *y;
    char sub[512];
    int i = 0;

    if (e->type == KEDGE_JSTR && !strcmp(e->str, "<ts>"))
        return a->type == KEDGE_JNUM ? 1 : diff_at(why, n, path, "expected a timestamp");
    if (e->type == KEDGE_JSTR && (!strcmp(e->str, "<generated>") || !strcmp(e->str, "<time>")))
        return a->type == KEDGE_JSTR && a->len ? 1 : diff_at(why, n, path, "expected a string");
    if (a->type != e->type)
        return diff_at(why, n, path, "different JSON type");
    switch (e->type) {
    case KEDGE_JNULL:
        return 1;
    case KEDGE_JBOOL:
        return a->boolean == e->boolean ? 1 : diff_at(why, n, path, "different bool");
    case KEDGE_JNUM:
    case KEDGE_JSTR:
        if (a->len == e->len && !memcmp(a->str, e->str, a->len))
            return 1;
        snprintf(sub, sizeof(sub), "got '%.*s', expected '%.*s'", (int)a->len, a->str, (int)e->len,
                 e->str);
        return diff_at(why, n, path, sub);
    case KEDGE_JOBJ:
        return cmp_obj(a, e, why, n, path);
    case KEDGE_JARR:
        if (a->n != e->n)
            return diff_at(why, n, path, "different array length");
        for (x = a->child, y = e->child; x && y; x = x->next, y = y->next, i++) {
            snprintf(sub, sizeof(sub), "%s[%d]", path, i);
            if (!cmp(x, y, why, n, sub))
                return 0;
        }
        return 1;
    }
    return 0;
}

int jsoncmp(const char *actual, size_t len, const struct kedge_jval *expected, char *why,
            size_t why_len)
{
    struct kedge_jdoc *doc = NULL;
    int ok;

    if (kedge_json_parse(actual, len, &doc) < 0) {
        snprintf(why, why_len, "actual payload is not JSON: %.*s", (int)len, actual);
        return 0;
    }
    ok = cmp(kedge_jdoc_root(doc), expected, why, why_len, "");
    kedge_jdoc_free(doc);
    return ok;
}

char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        if (len)
            *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

int seed_db(const char *db_path, const char *sql_file)
{
    char *sql = slurp(sql_file, NULL);
    sqlite3 *db = NULL;
    int rc = -1;

    if (!sql)
        return -1;
    if (sqlite3_open(db_path, &db) == SQLITE_OK &&
        sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
        rc = 0;
    else
        fprintf(stderr, "seed %s: %s\n", db_path, db ? sqlite3_errmsg(db) : "open failed");
    sqlite3_close(db);
    free(sql);
    return rc;
}

void jsoncmp_expect(const char *payload, size_t len, const char *tpl)
{
    struct kedge_jdoc *e = NULL;
    char why[1024];
    int ok;

    ck_assert_msg(kedge_json_parse(tpl, strlen(tpl), &e) == 0, "bad template: %s", tpl);
    ok = jsoncmp(payload, len, kedge_jdoc_root(e), why, sizeof(why));
    kedge_jdoc_free(e);
    ck_assert_msg(ok, "%s\n  got:      %.*s\n  template: %s", why, (int)len, payload, tpl);
}

void test_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

void jsoncmp_expect_msg(struct kh_client *c, const char *topic, const char *tpl, int timeout_ms)
{
    struct kh_msg m;

    ck_assert_msg(kh_client_wait(c, topic, timeout_ms, &m) == 0, "nothing on %s", topic);
    jsoncmp_expect(m.payload, (size_t)m.len, tpl);
    kh_msg_cleanup(&m);
}
