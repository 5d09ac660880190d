/* The devicetwin suite's shared fixtures (devicetwin_fixture.h). */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/topic.h"
#include "kedge/util.h"
#include "core.h"
#include "db.h"
#include "stubs/broker_stubs.h"
#include "devicetwin_fixture.h"
#include "unit.h"

/* ---- the plugin under test ------------------------------------------------------------------ */

struct unit_db db;
struct plugin_config cfg;
struct kedge_core core;
static bool dt_up;

struct pub pubs[256];
size_t n_pubs;

/* The retained $SYS status the plugin refreshes from its tick: kept apart, so that the
 * assertions see only what answers a request. refuse_retained: the broker refuses it. */
static size_t n_retained;
bool refuse_retained;

static int record_retained(const char *topic, char *payload)
{
    ck_assert_ptr_nonnull(strstr(topic, "/kedge/"));
    kedge_free(payload);
    if (refuse_retained)
        return -1;
    n_retained++;
    return 0;
}

static int record(void *ctx, const char *client_id, const char *topic, char *payload, size_t len,
                  int qos, bool retain)
{
    struct pub *p;

    (void)ctx;
    (void)qos;
    if (retain)
        return record_retained(topic, payload);

    ck_assert_uint_lt(n_pubs, sizeof(pubs) / sizeof(pubs[0]));
    p = &pubs[n_pubs++];
    p->client_id = client_id ? strdup(client_id) : NULL;
    p->topic = strdup(topic);
    p->payload = malloc(len + 1);
    memcpy(p->payload, payload, len);
    p->payload[len] = '\0';
    p->len = len;
    kedge_free(payload); /* taken in all cases */
    return 0;
}

void clear_pubs(void)
{
    size_t i;

    for (i = 0; i < n_pubs; i++) {
        free(pubs[i].client_id);
        free(pubs[i].topic);
        free(pubs[i].payload);
    }
    n_pubs = 0;
}

static void quiet(int level, const char *line)
{
    (void)level;
    (void)line;
}

void start_plugin(void)
{
    static const struct publisher pub = {record, NULL};

    ck_assert_int_eq(core_init(&core, &cfg, &pub), 0);
    dt_up = true;
}

void stop_plugin(void)
{
    if (dt_up)
        core_cleanup(&core);
    dt_up = false;
}

/* Every test: a seeded DB, the counting allocator (so teardown can prove nothing leaked),
 * the plugin started. */
void setup(void)
{
    unit_db_init(&db);
    unit_db_seed(&db);
    memset(&cfg, 0, sizeof(cfg));
    cfg.db_path = db.path;
    cfg.node_name = NODE;
    cfg.max_payload_bytes = 65536;
    cfg.commit_interval_ms = 0;
    cfg.commit_batch = 512;
    cfg.sync = "normal";
    cfg.log_level = "info";
    cfg.outbox_max = 100000;
    cfg.auth_mode = "open";
    kedge_log_set_sink(quiet);
    refuse_retained = false;
    unit_count_allocs();
    start_plugin();
}

void teardown(void)
{
    stop_plugin();
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
    clear_pubs();
    unit_db_cleanup(&db);
}

/* A client publish as the broker's MESSAGE callback sees it, then the TICK that commits. */
void send_nocommit(const char *topic, const char *payload, size_t len)
{
    char t[512];
    struct mosquitto_evt_message ev;

    (void)snprintf(t, sizeof(t), "%s", topic);
    memset(&ev, 0, sizeof(ev));
    ev.topic = t;
    ev.payload = (void *)payload;
    ev.payloadlen = (uint32_t)len;
    ev.qos = 1;
    ck_assert_int_eq(core_on_message(&core, &ev), MOSQ_ERR_SUCCESS);
}

/* ---- normalising generated values ----------------------------------------------------------- */

bool is_uuid(const char *s, size_t len)
{
    size_t i;

    if (len != 36)
        return false;
    for (i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]) || !s[i])
            return false;
    }
    return s[14] == '4' && strchr("89ab", s[19]);
}

bool is_rfc3339(const char *s, size_t len)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    size_t i;

    if (len != sizeof(shape) - 1)
        return false;
    for (i = 0; i < len; i++)
        if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
            return false;
    return true;
}

/* A timestamp kedge generated: within a day of the wall clock (the seed's and the requests'
 * are years away). */
bool is_now(long long ms)
{
    long long d = ms - (long long)kedge_wall_ms();

    return d > -86400000LL && d < 86400000LL;
}

/* "timestamp":<digits> -> "timestamp":T if generated now; "event_id":"<uuid>" ->
 * "event_id":"UUID"; "lastOnlineTime"/"last_online":"<rfc3339>" -> "TIME". */
void normalise(const char *in, size_t len, struct kedge_buf *out)
{
    static const char ts[] = "\"timestamp\":", ev[] = "\"event_id\":\"";
    static const char *const times[] = {"\"lastOnlineTime\":\"", "\"last_online\":\""};
    size_t i = 0, j, k;

    kedge_buf_reset(out);
    while (i < len) {
        if (len - i > sizeof(ts) - 1 && !memcmp(in + i, ts, sizeof(ts) - 1)) {
            j = i + sizeof(ts) - 1;
            for (k = j; k < len && in[k] >= '0' && in[k] <= '9'; k++)
                ;
            if (k > j && k - j < 19 && is_now(strtoll(in + j, NULL, 10))) {
                ck_assert_int_eq(kedge_buf_puts(out, "\"timestamp\":T"), 0);
                i = k;
                continue;
            }
        }
        if (len - i > sizeof(ev) - 1 + 36 && !memcmp(in + i, ev, sizeof(ev) - 1) &&
            is_uuid(in + i + sizeof(ev) - 1, 36)) {
            ck_assert_int_eq(kedge_buf_puts(out, "\"event_id\":\"UUID"), 0);
            i += sizeof(ev) - 1 + 36;
            continue;
        }
        for (k = 0; k < 2; k++) {
            size_t n = strlen(times[k]);
            if (len - i > n + 20 && !memcmp(in + i, times[k], n) && is_rfc3339(in + i + n, 20))
                break;
        }
        if (k < 2) {
            ck_assert_int_eq(kedge_buf_printf(out, "%.*sTIME", (int)strlen(times[k]), in + i), 0);
            i += strlen(times[k]) + 20;
            continue;
        }
        ck_assert_int_eq(kedge_buf_putc(out, in[i]), 0);
        i++;
    }
}

/* Publish number i went to `topic` with `want` as its normalised payload. */
void expect_pub(size_t i, const char *topic, const char *want)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    ck_assert_msg(i < n_pubs, "publish %zu missing (only %zu): want %s %s", i, n_pubs, topic, want);
    ck_assert_msg(!strcmp(pubs[i].topic, topic), "publish %zu: topic %s, want %s", i, pubs[i].topic,
                  topic);
    ck_assert_ptr_null(pubs[i].client_id);
    normalise(pubs[i].payload, pubs[i].len, &b);
    ASSERT_BUF(&b, want);
    kedge_buf_cleanup(&b);
}

void expect_count(size_t n)
{
    size_t i;

    if (n_pubs != n)
        for (i = 0; i < n_pubs; i++)
            fprintf(stderr, "  publish %zu: %s %s\n", i, pubs[i].topic, pubs[i].payload);
    ck_assert_uint_eq(n_pubs, n);
}

/* The twins of conf-dev-1 as a get shows them now (normalised). */
void expect_get(const char *twins_json)
{
    char want[8192];

    clear_pubs();
    send(PFX DEV "/twin/get", "{\"event_id\":\"g\"}");
    expect_count(1);
    (void)snprintf(want, sizeof(want), "{\"event_id\":\"g\",\"timestamp\":T,\"twin\":{%s}}",
                   twins_json);
    expect_pub(0, GET_RESULT, want);
    clear_pubs();
}

const char *db_text(const char *sql)
{
    static char buf[1024];

    return unit_db_text(&db, sql, buf, sizeof(buf));
}
