/* offline_support.c: see offline_support.h. */
#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "offline_support.h"
#include "proc.h"
#include "testsupport.h"

bool under_valgrind(void)
{
    const char *v = getenv("KEDGE_VALGRIND");

    if (v && *v && strcmp(v, "0")) {
        printf("offline: skipped under valgrind (a million updates take hours there)\n");
        return true;
    }
    return false;
}

/* KEDGE_OFFLINE_UPDATES, rounded down to whole passes over the devices (at least 2). */
long n_updates(void)
{
    const char *env = getenv("KEDGE_OFFLINE_UPDATES");
#ifdef KEDGE_ASAN_PRELOAD
    long n = 20000; /* the sanitizer tree is 20 to 30 times slower */
#else
    long n = 1000000;
#endif

    if (env && *env)
        n = strtol(env, NULL, 10);
    n -= n % N_DEV;
    return n < 2 * N_DEV ? 2 * N_DEV : n;
}

/* cloud_away's twin updates per policy: KEDGE_OFFLINE_AWAY_UPDATES, default N (the issue's
 * 1 000 000 with the cloud away, under each policy: about a minute each). */
long away_updates(void)
{
    const char *env = getenv("KEDGE_OFFLINE_AWAY_UPDATES");
    long n = env && *env ? strtol(env, NULL, 10) : n_updates();

    n -= n % N_DEV;
    return n < 2 * N_DEV ? 2 * N_DEV : n;
}

void dev_id(int i, char *out, size_t n)
{
    (void)snprintf(out, n, "off-%04d", i);
}

long rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    ck_assert_int_ge(kb, 0);
    return kb;
}

long file_bytes(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* "Flat": what the first pass took, plus half of it and 4 MiB. */
long flat_bound(long first)
{
    return first + first / 2 + 4L * 1024 * 1024;
}

int64_t jint(const struct kedge_jval *v, const char *what)
{
    int64_t x = 0;

    ck_assert_msg(v && kedge_json_int64(v, &x) == 0, "no number %s", what);
    return x;
}

/* devicecontroller's membership update (docs/kubeedge-wire.md §2.10) adding off-0000 .. off-0999.
 */
void membership_json(struct kedge_buf *b)
{
    char id[16];
    int i;

    ck_assert_int_eq(
        kedge_buf_puts(b, "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\","
                          "\"operation\":\"update\",\"resource\":\"membership\"},\"content\":{"
                          "\"event_id\":\"ev-off\",\"timestamp\":1700000000000,"
                          "\"added_devices\":["),
        0);
    for (i = 0; i < N_DEV; i++) {
        dev_id(i, id, sizeof(id));
        ck_assert_int_eq(kedge_buf_printf(b,
                                          "%s{\"id\":\"%s\",\"name\":\"%s\",\"description\":"
                                          "\"\",\"twin\":{\"temperature\":{\"metadata\":{"
                                          "\"type\":\"int\"}}}}",
                                          i ? "," : "", id, id),
                         0);
    }
    ck_assert_int_eq(kedge_buf_puts(b, "],\"removed_devices\":null}}"), 0);
}

void flood_open(struct flood *f, int port)
{
    char topic[96], id[16];
    int i;

    memset(f, 0, sizeof(*f));
    f->pub = kh_client_new(port, "off-pub", "sensor", "x", 4);
    f->sample = kh_client_new(port, "off-sample", "sensor", "x", 4);
    ck_assert_ptr_nonnull(f->pub);
    ck_assert_ptr_nonnull(f->sample);
    for (i = 0; i < N_DEV; i += SAMPLE_EVERY) {
        dev_id(i, id, sizeof(id));
        (void)snprintf(topic, sizeof(topic), "$hw/events/device/%s/twin/update/result", id);
        ck_assert_int_eq(kh_client_sub(f->sample, topic, 0), 0);
    }
}

/* The clients go; the counts stay for the verdict. */
void flood_close(struct flood *f)
{
    kh_client_free(f->pub);
    kh_client_free(f->sample);
    f->pub = f->sample = NULL;
}

/* Read the sampled results that came in; timeout_ms for the first one. */
void flood_collect(struct flood *f, int timeout_ms)
{
    struct kh_msg m;

    while (kh_client_wait(f->sample, RESULT_FILTER, timeout_ms, &m) == 0) {
        struct kedge_jdoc *doc = NULL;
        const struct kedge_jval *code;
        int64_t c = 0;

        timeout_ms = 0;
        f->results++;
        ck_assert_msg(kedge_json_parse(m.payload, (size_t)m.len, &doc) == 0, "result: %s",
                      m.payload);
        code = kedge_json_get(kedge_jdoc_root(doc), "code");
        if (code && kedge_json_int64(code, &c) == 0 && c) {
            if (c == 503)
                f->refused++;
            else
                f->failed++;
            if (f->refused + f->failed <= 3)
                fprintf(stderr, "offline: refused twin update: %s\n", m.payload);
        }
        kedge_jdoc_free(doc);
        kh_msg_cleanup(&m);
    }
}

/* Wait until every sampled result of the passes done so far is in. */
void flood_settle(struct flood *f)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(DRAIN_MS);

    while (f->results < f->passes_done * N_SAMPLE) {
        ck_assert_msg(kt_now_ms() < deadline, "sampled results: %ld of %ld", f->results,
                      f->passes_done * N_SAMPLE);
        flood_collect(f, 200);
    }
}

/* One pass: every device's temperature := value. The last publish is QoS 1: its PUBACK says
 * the broker has handed the pass to the plugin. */
void flood_pass(struct flood *f, long value)
{
    char topic[96], payload[128], id[16];
    int i, len;

    for (i = 0; i < N_DEV; i++) {
        dev_id(i, id, sizeof(id));
        (void)snprintf(topic, sizeof(topic), "$hw/events/device/%s/twin/update", id);
        len = snprintf(payload, sizeof(payload),
                       "{\"event_id\":\"v%ld\",\"twin\":{\"temperature\":{\"actual\":{"
                       "\"value\":\"%ld\"}}}}",
                       value, value);
        ck_assert_int_eq(kh_client_pub(f->pub, topic, payload, len, i == N_DEV - 1 ? 1 : 0, false),
                         0);
    }
    f->passes_done++;
    flood_collect(f, 0);
}

/* GET /applied (no logs): how many devices hold the final value, and how often it was applied. */
void applied_view(struct simctl *sim, const char *final, struct applied_view *v)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *d;
    int status = 0;

    memset(v, 0, sizeof(*v));
    ck_assert_int_eq(simctl_http_json(sim, "GET", "/applied?log=0", NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    root = kedge_jdoc_root(doc);
    v->devices = jint(kedge_json_get(root, "devices_total"), "devices_total");
    v->regressions = jint(kedge_json_get(root, "regressions"), "regressions");
    for (d = kedge_json_get(root, "devices")->child; d; d = d->next) {
        const struct kedge_jval *t = kedge_json_get(kedge_json_get(d, "twins"), "temperature");
        const struct kedge_jval *val = kedge_json_get(t, "value");
        int64_t times;
        if (!val || val->type != KEDGE_JSTR || strcmp(val->str, final)) {
            const struct kedge_jval *id = kedge_json_get(d, "id");
            if (!v->lagging[0])
                (void)snprintf(v->lagging, sizeof(v->lagging), "%s (value %s)",
                               id && id->type == KEDGE_JSTR ? id->str : "?",
                               val && val->type == KEDGE_JSTR ? val->str : "none");
            continue;
        }
        v->at_final++;
        times = jint(kedge_json_get(t, "times"), "times");
        if (times == 1)
            v->once++;
        else if (times == 2)
            v->twice++;
        else
            v->more++;
    }
    kedge_jdoc_free(doc);
}

/* A sampled device's applied log: its values never go down (the edge produced them counting
 * up), whatever actual_version says. Returns the reports in the log. */
int applied_log_monotonic(struct simctl *sim, const char *id)
{
    char path[64];
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *d, *e;
    int status = 0, n = 0;
    long last = 0;

    (void)snprintf(path, sizeof(path), "/applied?device=%s", id);
    ck_assert_int_eq(simctl_http_json(sim, "GET", path, NULL, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    d = kedge_json_get(kedge_jdoc_root(doc), "devices")->child;
    ck_assert_msg(d != NULL, "nothing applied for %s", id);
    for (e = kedge_json_get(d, "log")->child; e; e = e->next, n++) {
        const struct kedge_jval *v =
            kedge_json_get(kedge_json_get(kedge_json_get(e, "twins"), "temperature"), "value");
        long x;
        ck_assert_msg(v && v->type == KEDGE_JSTR, "%s: applied report without a value", id);
        x = strtol(v->str, NULL, 10);
        ck_assert_msg(x >= last, "%s: the cloud applied %ld after %ld", id, x, last);
        last = x;
    }
    kedge_jdoc_free(doc);
    return n;
}

/* Poll GET /applied until every device holds `final`. */
void wait_final_applied(struct simctl *sim, const char *final, struct applied_view *v)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(DRAIN_MS);

    for (;;) {
        applied_view(sim, final, v);
        if (v->at_final == N_DEV)
            return;
        ck_assert_msg(kt_now_ms() < deadline,
                      "after %d s: %d of %d devices hold their final value %s at the cloud "
                      "(%d applied at all; e.g. %s)",
                      kh_scale_ms(DRAIN_MS) / 1000, v->at_final, N_DEV, final, (int)v->devices,
                      v->lagging[0] ? v->lagging : "none lagging among those applied");
        pause_poll();
    }
}
