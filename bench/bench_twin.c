/* bench_twin: the measuring half of `scripts/bench.sh twin` (the script seeds the databases,
 * writes the broker configs and prints the summary).
 *
 *   roundtrip  One MQTT 3.1.1 client, one connection, QoS 1, against a running broker with
 *              kedge_plugin.so. It alternates two workloads with the same window W:
 *                plain: publish to bench/echo/<k>, subscribed to bench/echo/# (the round trip
 *                       is the client's own message coming back: bare broker loopback);
 *                kedge: publish a twin update to $hw/events/device/<prefix><k>/twin/update,
 *                       subscribed to .../twin/update/result (the round trip is the result).
 *              Each reply is matched to its request by event_id; per-request latency and
 *              msg/s = N / (first publish -> last reply) are reported, A B A B ..., and the
 *              medians go on one line per figure with both sides and their ratio.
 *   startup    Fork/exec the broker on a config (the clock starts just before the fork),
 *              connect every 2 ms until it accepts, subscribe to one device's
 *              twin/get/result, then publish the get; the clock stops when the result is in.
 *              Then read the broker's VmRSS/VmHWM and stop it (SIGTERM, by pid).
 *   offline    The kedge workload alone with no bridge attached (nothing drains the outbox):
 *              N twin updates at window 64 in chunks, the rate of each chunk printed, then
 *              the first and the last side by side (issue 13: no slowdown offline).
 *   freeport   Print a TCP port on 127.0.0.1 that was free a moment ago.
 *
 * Everything talks to 127.0.0.1 only. Timing uses CLOCK_MONOTONIC. Benchmarks never assert
 * on figures: the exit status is 0 unless the measurement itself broke (a wrong or missing
 * reply, a broker that died, a stall), which is 1; 2 is a usage error; 3 is "the broker
 * exited before answering" (the caller may retry on another port).
 */
#define _GNU_SOURCE /* memmem */ // NOLINT(bugprone-reserved-identifier)
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <mosquitto.h>

#ifndef MOSQUITTO_BIN
#define MOSQUITTO_BIN "/usr/sbin/mosquitto"
#endif

#define HOST "127.0.0.1"
#define KEEPALIVE_S 60
#define STALL_MS 10000 /* no reply for this long: the run is broken */
#define EXIT_BROKEN 1
#define EXIT_USAGE 2
#define EXIT_BROKER_GONE 3

/* Diagnostics: one line on stderr. A failed write there has nowhere better to go. */
__attribute__((format(printf, 1, 2))) static void complain(const char *fmt, ...)
{
    va_list ap;

    (void)fputs("bench_twin: ", stderr);
    va_start(ap, fmt);
    (void)vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec req = {ms / 1000, (ms % 1000) * 1000000L}, rem;

    while (nanosleep(&req, &rem) < 0 && errno == EINTR)
        req = rem;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t percentile(const uint64_t *sorted, size_t n, double p)
{
    size_t rank;

    if (n == 0)
        return 0;
    rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static double median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The decimal event id inside `"event_id":"<n>"`; -1 if there is none. */
static long long find_event_id(const void *payload, size_t len)
{
    static const char key[] = "\"event_id\":\"";
    const char *p = memmem(payload, len, key, sizeof(key) - 1);
    const char *end = (const char *)payload + len;
    long long v = 0;

    if (!p)
        return -1;
    p += sizeof(key) - 1;
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    for (; p < end && *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (*p - '0');
    return p < end && *p == '"' ? v : -1;
}

static bool contains(const void *payload, size_t len, const char *needle)
{
    return memmem(payload, len, needle, strlen(needle)) != NULL;
}

/* CPU time a process has had so far (ns, /proc/<pid>/schedstat), or -1. On a machine where
 * other work competes for the CPUs this moves far less than wall-clock figures do. */
static int64_t proc_cpu_ns(pid_t pid)
{
    char path[64];
    long long ns = -1;
    FILE *f;

    if (pid <= 0)
        return -1;
    (void)snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    if (fscanf(f, "%lld", &ns) != 1)
        ns = -1;
    (void)fclose(f);
    return ns;
}

/* ---- client setup shared by both measurements --------------------------------------------- */

struct client_state {
    bool connected;
    int connack_rc;
    int sub_mid; /* mid of the SUBSCRIBE we wait for; 0: none outstanding */
    bool subscribed;
    bool lost;
};

static void on_connect(struct mosquitto *mosq, void *ud, int rc)
{
    struct client_state *cs = ud;

    (void)mosq;
    cs->connack_rc = rc;
    cs->connected = rc == 0;
}

static void on_disconnect(struct mosquitto *mosq, void *ud, int rc)
{
    struct client_state *cs = ud;

    (void)mosq;
    (void)rc;
    cs->connected = false;
    cs->lost = true;
}

static void on_subscribe(struct mosquitto *mosq, void *ud, int mid, int qos_count,
                         const int *granted)
{
    struct client_state *cs = ud;
    int i;

    (void)mosq;
    if (mid != cs->sub_mid)
        return;
    for (i = 0; i < qos_count; i++) {
        if (granted[i] > 2) { /* 0x80: refused */
            complain("subscription %d refused\n", i);
            cs->lost = true;
            return;
        }
    }
    cs->subscribed = true;
}

/* A client with TCP_NODELAY (else a QoS 1 round trip is Nagle-bound, spec §9) and no client-side
 * cap on QoS 1 messages in flight (libmosquitto's default of 20 would shrink W=64). ud points
 * at the caller's context, whose first member is the struct client_state the shared callbacks
 * update. */
static struct mosquitto *client_new(const char *id, void *ud)
{
    struct mosquitto *mosq = mosquitto_new(id, true, ud);
    int rc;

    if (!mosq) {
        complain("mosquitto_new: %s\n", strerror(errno));
        return NULL;
    }
    rc = mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, 0); /* 0: 65535 */
    if (rc != MOSQ_ERR_SUCCESS) {
        complain("client options: %s\n", mosquitto_strerror(rc));
        mosquitto_destroy(mosq);
        return NULL;
    }
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_disconnect_callback_set(mosq, on_disconnect);
    mosquitto_subscribe_callback_set(mosq, on_subscribe);
    return mosq;
}

/* Run the loop until *flag is set, the connection is lost, or deadline_ns passes. */
static int loop_until(struct mosquitto *mosq, struct client_state *cs, const bool *flag,
                      uint64_t deadline_ns, const char *what)
{
    while (!*flag) {
        int rc = mosquitto_loop(mosq, 10, 1);
        if (rc != MOSQ_ERR_SUCCESS || cs->lost) {
            complain("connection lost while waiting for %s: %s\n", what,
                     rc != MOSQ_ERR_SUCCESS ? mosquitto_strerror(rc) : "disconnected");
            return -1;
        }
        if (now_ns() > deadline_ns) {
            complain("timed out waiting for %s\n", what);
            return -1;
        }
    }
    return 0;
}

/* ---- bridge stand-in ------------------------------------------------------------------------ */

/* Each accepted twin update also puts a cloud-bound edge_updated message in the plugin's
 * durable outbox (include/kedge/ke.h). With no bridge the outbox fills (plugin_opt_outbox_max)
 * and updates are refused; with one, each entry is offered on $ke/outbox/{seq} and deleted once
 * acked. The stand-in is the bridge's MQTT side only: it says hello under the bridge identity
 * and acks cumulatively, every 8th entry (the real bridge first stores a batch in its own
 * queue, then acks its last seq). It runs on libmosquitto's own thread so the measuring loop
 * stays as it is. */
struct standin {
    struct mosquitto *mosq;
    char hello[256];
    atomic_bool accepted, refused;
    atomic_long acked, received;
    atomic_llong last_seq;
};

static void si_on_connect(struct mosquitto *mosq, void *ud, int rc)
{
    struct standin *si = ud;

    if (rc != 0) {
        complain("bridge stand-in refused: %s\n", mosquitto_connack_string(rc));
        atomic_store(&si->refused, true);
        return;
    }
    if (mosquitto_publish(mosq, NULL, "$ke/hello", (int)strlen(si->hello), si->hello, 1, false) !=
        MOSQ_ERR_SUCCESS)
        atomic_store(&si->refused, true);
}

static void si_on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *m)
{
    static const char outbox[] = "$ke/outbox/";
    struct standin *si = ud;
    char topic[128];

    if (!strcmp(m->topic, "$ke/hello/result")) {
        if (contains(m->payload, (size_t)m->payloadlen, "\"accepted\":true")) {
            atomic_store(&si->accepted, true);
        } else {
            complain("bridge stand-in's hello refused: %.*s\n",
                     m->payloadlen > 200 ? 200 : m->payloadlen, (const char *)m->payload);
            atomic_store(&si->refused, true);
        }
        return;
    }
    if (strncmp(m->topic, outbox, sizeof(outbox) - 1) != 0)
        return;
    /* as kedge-bridge does: acks are cumulative, one per batch it stores (here: every 8th
     * entry, and the rest when the run drains) */
    atomic_store(&si->last_seq, strtoll(m->topic + sizeof(outbox) - 1, NULL, 10));
    atomic_fetch_add(&si->received, 1);
    if (atomic_load(&si->received) % 8)
        return;
    if (snprintf(topic, sizeof(topic), "$ke/ack/%s", m->topic + sizeof(outbox) - 1) >=
        (int)sizeof(topic))
        return;
    if (mosquitto_publish(mosq, NULL, topic, 0, NULL, 1, false) == MOSQ_ERR_SUCCESS)
        atomic_store(&si->acked, atomic_load(&si->received));
}

static int standin_start(struct standin *si, long port, const char *user, const char *password,
                         const char *node)
{
    uint64_t deadline = now_ns() + 5000000000u;
    int rc;

    memset(si, 0, sizeof(*si));
    (void)snprintf(si->hello, sizeof(si->hello), "{\"node_name\":\"%s\",\"version\":1}", node);
    si->mosq = mosquitto_new("kedge-bench-bridge", true, si);
    if (!si->mosq) {
        complain("mosquitto_new: %s\n", strerror(errno));
        return -1;
    }
    mosquitto_connect_callback_set(si->mosq, si_on_connect);
    mosquitto_message_callback_set(si->mosq, si_on_message);
    rc = mosquitto_int_option(si->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_int_option(si->mosq, MOSQ_OPT_SEND_MAXIMUM, 0);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_username_pw_set(si->mosq, user, password);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_connect(si->mosq, HOST, (int)port, KEEPALIVE_S);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_loop_start(si->mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        complain("bridge stand-in: %s\n",
                 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        mosquitto_destroy(si->mosq);
        si->mosq = NULL;
        return -1;
    }
    while (!atomic_load(&si->accepted)) {
        if (atomic_load(&si->refused) || now_ns() > deadline) {
            if (!atomic_load(&si->refused))
                complain("bridge stand-in: no $ke/hello/result in 5 s\n");
            return -1; /* standin_stop cleans up */
        }
        sleep_ms(2);
    }
    return 0;
}

/* Wait until at least n entries were acked (the outbox drained), up to 10 s. */
static int standin_drain(struct standin *si, long n)
{
    uint64_t deadline = now_ns() + 10000000000u;

    if (!si->mosq)
        return 0;
    while (atomic_load(&si->acked) < n) {
        if (atomic_load(&si->received) >= n) {
            char topic[64];
            (void)snprintf(topic, sizeof(topic), "$ke/ack/%lld",
                           (long long)atomic_load(&si->last_seq));
            if (mosquitto_publish(si->mosq, NULL, topic, 0, NULL, 1, false) == MOSQ_ERR_SUCCESS)
                atomic_store(&si->acked, atomic_load(&si->received));
            continue;
        }
        if (now_ns() > deadline) {
            complain("the outbox did not drain: %ld of %ld entries acked\n",
                     atomic_load(&si->acked), n);
            return -1;
        }
        sleep_ms(1);
    }
    return 0;
}

static void standin_stop(struct standin *si)
{
    if (!si->mosq)
        return;
    (void)mosquitto_disconnect(si->mosq);
    (void)mosquitto_loop_stop(si->mosq, false);
    mosquitto_destroy(si->mosq);
    si->mosq = NULL;
}

/* ---- roundtrip ------------------------------------------------------------------------------ */

enum rt_mode { RT_PLAIN, RT_KEDGE };

struct rt_run {
    enum rt_mode mode;
    long long base; /* event id of request 0 */
    size_t total, sent, done;
    uint64_t *sent_ns; /* per request */
    uint64_t *lat_ns;  /* per completed request, in completion order */
    bool *answered;
    size_t errors, strays, dups;
    char first_error[256];
    uint64_t t_first, t_last;
};

struct rt_ctx {
    struct client_state cs;
    struct rt_run *run; /* the run in progress, or NULL */
    const char *prefix; /* device id prefix, e.g. "bench/dev-" */
    int digits;
    long devices;
    long long next_event_id; /* unique over the whole process */
    pid_t broker_pid;        /* 0: unknown (no CPU figures) */
    struct standin *bridge;  /* NULL: no bridge stand-in */
    long twin_updates;       /* answered so far, warm-up included: one outbox entry each */
    size_t strays_between;   /* replies that arrived with no run in progress */
};

struct rt_result {
    double rate; /* msg/s */
    double p50_ms, p99_ms;
    double cpu_us; /* broker CPU time per request (us), outbox drain included; < 0: unknown */
};

static void rt_on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *m)
{
    struct rt_ctx *ctx = ud;
    struct rt_run *run = ctx->run;
    long long id;
    size_t k;

    (void)mosq;
    if (!run) {
        ctx->strays_between++;
        return;
    }
    id = find_event_id(m->payload, (size_t)m->payloadlen);
    if (id < run->base || id >= run->base + (long long)run->sent) {
        run->strays++;
        return;
    }
    k = (size_t)(id - run->base);
    if (run->answered[k]) {
        run->dups++;
        return;
    }
    if (run->mode == RT_KEDGE && !contains(m->payload, (size_t)m->payloadlen, "\"twin\":{")) {
        if (run->errors++ == 0)
            (void)snprintf(run->first_error, sizeof(run->first_error), "%s: %.*s", m->topic,
                           m->payloadlen > 200 ? 200 : m->payloadlen, (const char *)m->payload);
    }
    run->answered[k] = true;
    run->t_last = now_ns();
    run->lat_ns[run->done++] = run->t_last - run->sent_ns[k];
}

static int rt_publish(struct mosquitto *mosq, struct rt_ctx *ctx, struct rt_run *run)
{
    char topic[256], payload[256];
    long long id = run->base + (long long)run->sent;
    long dev = (long)(run->sent % (size_t)ctx->devices);
    int tlen, plen, rc;

    if (run->mode == RT_PLAIN)
        tlen = snprintf(topic, sizeof(topic), "bench/echo/%ld", dev);
    else
        tlen = snprintf(topic, sizeof(topic), "$hw/events/device/%s%0*ld/twin/update", ctx->prefix,
                        ctx->digits, dev);
    plen = snprintf(payload, sizeof(payload),
                    "{\"event_id\":\"%lld\",\"timestamp\":%" PRId64
                    ",\"twin\":{\"temperature\":{\"actual\":{\"value\":\"%lld\"}}}}",
                    id, wall_ms(), id);
    if (tlen < 0 || (size_t)tlen >= sizeof(topic) || plen < 0 || (size_t)plen >= sizeof(payload)) {
        complain("topic or payload too long\n");
        return -1;
    }
    run->sent_ns[run->sent] = now_ns();
    if (run->sent == 0)
        run->t_first = run->sent_ns[0];
    rc = mosquitto_publish(mosq, NULL, topic, plen, payload, 1, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        complain("publish: %s\n", mosquitto_strerror(rc));
        return -1;
    }
    run->sent++;
    return 0;
}

static void rt_run_free(struct rt_run *run)
{
    free(run->sent_ns);
    free(run->lat_ns);
    free(run->answered);
}

/* One measured run of `total` requests with at most `window` awaiting their reply. */
static int rt_measure(struct mosquitto *mosq, struct rt_ctx *ctx, enum rt_mode mode, size_t total,
                      size_t window, struct rt_result *res)
{
    struct rt_run run = {0};
    uint64_t last_progress;
    size_t last_done = 0;
    int64_t cpu0 = proc_cpu_ns(ctx->broker_pid), cpu1;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    run.mode = mode;
    run.total = total;
    run.base = ctx->next_event_id;
    ctx->next_event_id += (long long)total;
    run.sent_ns = calloc(total, sizeof(*run.sent_ns));
    run.lat_ns = calloc(total, sizeof(*run.lat_ns));
    run.answered = calloc(total, sizeof(*run.answered));
    if (!run.sent_ns || !run.lat_ns || !run.answered) {
        complain("out of memory\n");
        goto out;
    }
    ctx->run = &run;
    last_progress = now_ns();
    while (run.done < total) {
        /* Publish outside callbacks: libmosquitto then writes the packet at once. */
        while (run.sent < total && run.sent - run.done < window)
            if (rt_publish(mosq, ctx, &run) < 0)
                goto out;
        int lrc = mosquitto_loop(mosq, 100, 1);
        if (lrc != MOSQ_ERR_SUCCESS || ctx->cs.lost) {
            complain("connection lost: %s\n",
                     lrc != MOSQ_ERR_SUCCESS ? mosquitto_strerror(lrc) : "disconnected");
            goto out;
        }
        if (run.done != last_done) {
            last_done = run.done;
            last_progress = now_ns();
        } else if (now_ns() - last_progress > (uint64_t)STALL_MS * 1000000u) {
            complain("stalled: %zu of %zu replies after %d ms without one\n", run.done, total,
                     STALL_MS);
            goto out;
        }
    }
    if (run.errors) {
        complain("%zu error results; first: %s\n", run.errors, run.first_error);
        goto out;
    }
    /* The outbox traffic a run causes belongs to that run: measured, and drained before the
     * next run starts. */
    if (mode == RT_KEDGE) {
        ctx->twin_updates += (long)run.done;
        if (ctx->bridge && standin_drain(ctx->bridge, ctx->twin_updates) < 0)
            goto out;
    }
    cpu1 = proc_cpu_ns(ctx->broker_pid);
    res->cpu_us = cpu0 >= 0 && cpu1 >= cpu0 ? (double)(cpu1 - cpu0) / 1e3 / (double)total : -1;
    qsort(run.lat_ns, run.done, sizeof(*run.lat_ns), cmp_u64);
    res->rate = (double)total / ((double)(run.t_last - run.t_first) / 1e9);
    res->p50_ms = (double)percentile(run.lat_ns, run.done, 50) / 1e6;
    res->p99_ms = (double)percentile(run.lat_ns, run.done, 99) / 1e6;
    if (run.strays || run.dups)
        complain("note: %zu stray and %zu duplicate replies ignored\n", run.strays, run.dups);
    rc = 0;
out:
    ctx->run = NULL;
    rt_run_free(&run);
    return rc;
}

struct rt_opts {
    long port, devices, reps, n64, n1, warmup, digits;
    const char *prefix;
    int only;        /* -1: both modes; else one enum rt_mode (for profiling one side) */
    long broker_pid; /* 0: unknown */
    const char *bridge_user, *bridge_password, *node; /* password NULL: no stand-in */
};

static const char *mode_name(enum rt_mode m)
{
    return m == RT_PLAIN ? "plain" : "kedge";
}

/* reps x (plain, kedge) at one window; medians into plain/kedge. */
static int rt_window(struct mosquitto *mosq, struct rt_ctx *ctx, const struct rt_opts *o,
                     size_t window, size_t n, struct rt_result *plain, struct rt_result *kedge)
{
    enum { RATE, P50, P99, CPU, NMETRIC };
    size_t reps = (size_t)o->reps;
    double *v =
        calloc((size_t)2 * NMETRIC * reps, sizeof(*v)); /* v[(mode * NMETRIC + metric) * reps] */
    struct rt_result *out[2] = {plain, kedge};
    size_t r;
    int m;

#define V(mode, metric) (v + ((size_t)(mode)*NMETRIC + (metric)) * reps)
    if (!v) {
        complain("out of memory\n");
        return -1;
    }
    for (r = 0; r < reps; r++) {
        for (m = 0; m < 2; m++) {
            struct rt_result res = {0};
            if (o->only >= 0 && m != o->only)
                continue;
            if (rt_measure(mosq, ctx, (enum rt_mode)m, n, window, &res) < 0) {
                free(v);
                return -1;
            }
            (void)printf("rt w=%zu rep=%zu %-5s n=%zu rate=%.0f p50_ms=%.3f p99_ms=%.3f", window,
                         r + 1, mode_name((enum rt_mode)m), n, res.rate, res.p50_ms, res.p99_ms);
            if (res.cpu_us >= 0)
                (void)printf(" broker_cpu_us=%.1f", res.cpu_us);
            (void)printf("\n");
            (void)fflush(stdout);
            V(m, RATE)[r] = res.rate;
            V(m, P50)[r] = res.p50_ms;
            V(m, P99)[r] = res.p99_ms;
            V(m, CPU)[r] = res.cpu_us;
        }
    }
    for (m = 0; m < 2; m++) {
        out[m]->rate = median(V(m, RATE), reps);
        out[m]->p50_ms = median(V(m, P50), reps);
        out[m]->p99_ms = median(V(m, P99), reps);
        out[m]->cpu_us = median(V(m, CPU), reps);
    }
#undef V
    free(v);
    return 0;
}

static void print_pair(size_t window, const struct rt_result *p, const struct rt_result *k,
                       const char *rate_target, const char *p50_target)
{
    (void)printf("twin_update qos1 w=%-3zu plain=%.0f msg/s  kedge=%.0f msg/s  ratio=%.2f%s%s\n",
                 window, p->rate, k->rate, k->rate / p->rate, rate_target ? "  " : "",
                 rate_target ? rate_target : "");
    (void)printf("twin_update qos1 w=%-3zu p50: plain=%.3f ms  kedge=%.3f ms  ratio=%.2f%s%s   "
                 "p99: plain=%.3f ms  kedge=%.3f ms\n",
                 window, p->p50_ms, k->p50_ms, k->p50_ms / p->p50_ms, p50_target ? "  " : "",
                 p50_target ? p50_target : "", p->p99_ms, k->p99_ms);
    if (p->cpu_us >= 0 && k->cpu_us >= 0)
        (void)printf(
            "twin_update qos1 w=%-3zu broker CPU per request: plain=%.1f us  kedge=%.1f us  "
            "ratio=%.2f\n",
            window, p->cpu_us, k->cpu_us, k->cpu_us / p->cpu_us);
}

static void rt_disconnect(struct mosquitto *mosq, struct rt_ctx *ctx);

/* The measuring client: connected, subscribed to bench/echo/# and the devices' twin results
 * (ids are <namespace>/<name>: one level below the prefix's namespace). NULL on failure. */
static struct mosquitto *rt_connect(struct rt_ctx *ctx, long port, const char *prefix)
{
    char twin_sub[256];
    const char *subs[2];
    const char *slash = strchr(prefix, '/');
    struct mosquitto *mosq;
    int n, rc;

    n = slash ? snprintf(twin_sub, sizeof(twin_sub), "$hw/events/device/%.*s/+/twin/update/result",
                         (int)(slash - prefix), prefix)
              : snprintf(twin_sub, sizeof(twin_sub), "$hw/events/device/+/twin/update/result");
    if (n < 0 || (size_t)n >= sizeof(twin_sub))
        return NULL;
    subs[0] = "bench/echo/#";
    subs[1] = twin_sub;
    mosq = client_new("kedge-bench-rt", ctx);
    if (!mosq)
        return NULL;
    mosquitto_message_callback_set(mosq, rt_on_message);
    /* The broker may still be starting: retry for up to 5 s. */
    for (uint64_t until = now_ns() + 5000000000u;;) {
        rc = mosquitto_connect(mosq, HOST, (int)port, KEEPALIVE_S);
        if (rc == MOSQ_ERR_SUCCESS)
            break;
        if (now_ns() > until) {
            complain("connect to %s:%ld: %s\n", HOST, port,
                     rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
            goto fail;
        }
        sleep_ms(10);
    }
    if (loop_until(mosq, &ctx->cs, &ctx->cs.connected, now_ns() + 5000000000u, "CONNACK") < 0)
        goto fail;
    rc = mosquitto_subscribe_multiple(mosq, &ctx->cs.sub_mid, 2, (char *const *)subs, 1, 0, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        complain("subscribe: %s\n", mosquitto_strerror(rc));
        goto fail;
    }
    if (loop_until(mosq, &ctx->cs, &ctx->cs.subscribed, now_ns() + 5000000000u, "SUBACK") < 0)
        goto fail;
    return mosq;
fail:
    rt_disconnect(mosq, ctx);
    return NULL;
}

static void rt_disconnect(struct mosquitto *mosq, struct rt_ctx *ctx)
{
    if (ctx->cs.connected) {
        (void)mosquitto_disconnect(mosq);
        (void)mosquitto_loop(mosq, 10, 1);
    }
    mosquitto_destroy(mosq);
}

/* The measuring client for o's node: ctx set up from o, connected and subscribed. */
static struct mosquitto *rt_begin(struct rt_ctx *ctx, const struct rt_opts *o)
{
    ctx->prefix = o->prefix;
    ctx->digits = (int)o->digits;
    ctx->devices = o->devices;
    ctx->next_event_id = 1;
    ctx->broker_pid = (pid_t)o->broker_pid;
    return rt_connect(ctx, o->port, o->prefix);
}

static int cmd_roundtrip(const struct rt_opts *o)
{
    struct rt_ctx ctx = {0};
    struct standin si = {0};
    struct rt_result p64, k64, p1, k1, ignore;
    struct mosquitto *mosq;
    int status = EXIT_BROKEN;

    mosq = rt_begin(&ctx, o);
    if (!mosq)
        return EXIT_BROKEN;
    if (o->bridge_password) {
        if (standin_start(&si, o->port, o->bridge_user, o->bridge_password, o->node) < 0)
            goto out;
        ctx.bridge = &si;
    }
    /* Warm-up, not reported: page cache, WAL file, allocator and the broker's topic tree. */
    if (o->warmup > 0 && ((o->only != RT_KEDGE &&
                           rt_measure(mosq, &ctx, RT_PLAIN, (size_t)o->warmup, 64, &ignore) < 0) ||
                          (o->only != RT_PLAIN &&
                           rt_measure(mosq, &ctx, RT_KEDGE, (size_t)o->warmup, 64, &ignore) < 0)))
        goto out;
    if (rt_window(mosq, &ctx, o, 64, (size_t)o->n64, &p64, &k64) < 0 ||
        rt_window(mosq, &ctx, o, 1, (size_t)o->n1, &p1, &k1) < 0)
        goto out;

    if (o->only >= 0) {
        (void)printf("-- only %s was measured (--only): no comparison\n",
                     mode_name((enum rt_mode)o->only));
        status = 0;
        goto out;
    }
    (void)printf(
        "-- medians of %ld alternating runs (plain, kedge, plain, kedge, ...), %ld devices\n",
        o->reps, o->devices);
    print_pair(64, &p64, &k64, "(target >= 0.5)", NULL);
    print_pair(1, &p1, &k1, NULL, "(target <= 2)");
    (void)printf("RESULT w64_ratio=%.2f w1_p50_ratio=%.2f w64_per_s=%.0f w1_per_s=%.0f\n",
                 k64.rate / p64.rate, k1.p50_ms / p1.p50_ms, k64.rate, k1.rate);
    if (ctx.bridge)
        (void)printf("-- bridge stand-in: %ld outbox entries acked for %ld twin updates\n",
                     atomic_load(&si.acked), ctx.twin_updates);
    if (ctx.strays_between)
        complain("note: %zu replies arrived between runs\n", ctx.strays_between);
    status = 0;
out:
    standin_stop(&si);
    rt_disconnect(mosq, &ctx);
    return status;
}

/* ---- offline --------------------------------------------------------------------------------- */

/* A node whose bridge is away: `total` twin updates (QoS 1, window 64, round robin over the
 * devices) with nobody draining the outbox, measured in chunks. Every update must succeed (the
 * plugin folds each device's cloud report, so the outbox stays bounded); the rate of the first
 * and of the last chunk show whether the node slows down as it stays offline. */
static int read_rss(pid_t pid, long *rss_kb, long *hwm_kb);

static int cmd_offline(const struct rt_opts *o, long total, long chunk)
{
    struct rt_ctx ctx = {0};
    struct rt_result res, first = {0};
    struct mosquitto *mosq;
    long done = 0, rss = -1, hwm = -1, first_rss = -1;
    int status = EXIT_BROKEN;

    mosq = rt_begin(&ctx, o);
    if (!mosq)
        return EXIT_BROKEN;
    while (done < total) {
        long n = total - done < chunk ? total - done : chunk;
        if (rt_measure(mosq, &ctx, RT_KEDGE, (size_t)n, 64, &res) < 0)
            goto out;
        if (o->broker_pid)
            (void)read_rss((pid_t)o->broker_pid, &rss, &hwm);
        if (!done) {
            first = res;
            first_rss = rss;
        }
        done += n;
        (void)printf("offline done=%ld rate=%.0f p50_ms=%.3f p99_ms=%.3f", done, res.rate,
                     res.p50_ms, res.p99_ms);
        if (res.cpu_us >= 0)
            (void)printf(" broker_cpu_us=%.1f broker_rss_kb=%ld", res.cpu_us, rss);
        (void)printf("\n");
        (void)fflush(stdout);
    }
    (void)printf("RESULT offline_updates=%ld first_per_s=%.0f last_per_s=%.0f first_cpu_us=%.1f "
                 "last_cpu_us=%.1f first_rss_kb=%ld last_rss_kb=%ld\n",
                 done, first.rate, res.rate, first.cpu_us, res.cpu_us, first_rss, rss);
    status = 0;
out:
    rt_disconnect(mosq, &ctx);
    return status;
}

/* ---- startup -------------------------------------------------------------------------------- */

struct st_ctx {
    struct client_state cs;
    const char *result_topic;
    bool expect_ok;
    bool answered, bad;
    char reply[256];
};

static void st_on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *m)
{
    struct st_ctx *ctx = ud;

    (void)mosq;
    if (strcmp(m->topic, ctx->result_topic) != 0)
        return;
    (void)snprintf(ctx->reply, sizeof(ctx->reply), "%.*s",
                   m->payloadlen > 200 ? 200 : m->payloadlen, (const char *)m->payload);
    if (ctx->expect_ok && !contains(m->payload, (size_t)m->payloadlen, "\"twin\":{"))
        ctx->bad = true;
    ctx->answered = true;
}

/* VmRSS and VmHWM of pid, in kB. */
static int read_rss(pid_t pid, long *rss_kb, long *hwm_kb)
{
    char path[64], line[256];
    FILE *f;

    *rss_kb = *hwm_kb = -1;
    (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6))
            *rss_kb = strtol(line + 6, NULL, 10);
        else if (!strncmp(line, "VmHWM:", 6))
            *hwm_kb = strtol(line + 6, NULL, 10);
    }
    (void)fclose(f);
    return *rss_kb >= 0 && *hwm_kb >= 0 ? 0 : -EINVAL;
}

static pid_t spawn_broker(const char *broker, const char *conf, const char *out_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid != 0)
        return pid; /* -1 on failure, errno set */
    /* child: die with the bench if it dies first; output to the given file */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
        _exit(126);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
        _exit(126);
    execl(broker, broker, "-c", conf, (char *)NULL);
    _exit(127);
}

/* SIGTERM, then wait up to 10 s, then SIGKILL. Returns the wait status, or -1. */
static int stop_broker(pid_t pid)
{
    uint64_t deadline = now_ns() + 10000000000u;
    int status;

    if (kill(pid, SIGTERM) < 0 && errno != ESRCH)
        return -1;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ns() > deadline) {
            complain("broker pid %d ignored SIGTERM for 10 s: SIGKILL\n", (int)pid);
            (void)kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            return -1;
        }
        sleep_ms(5);
    }
}

struct st_opts {
    long port, timeout_ms;
    const char *conf, *device, *broker, *broker_out;
    bool expect_ok;
};

/* Broker still running? If not, report how it ended. */
static bool broker_alive(pid_t pid, int *status)
{
    pid_t r = waitpid(pid, status, WNOHANG);

    return r == 0;
}

static int cmd_startup(const struct st_opts *o)
{
    struct st_ctx ctx = {0};
    struct mosquitto *mosq;
    char result_topic[256], get_topic[256];
    uint64_t t0, t_conn = 0, t1, deadline;
    long rss_kb, hwm_kb, attempts = 0;
    int64_t cpu_ns;
    int rc, wstatus, status = EXIT_BROKEN;
    pid_t pid;
    bool get_sent = false;

    if (snprintf(result_topic, sizeof(result_topic), "$hw/events/device/%s/twin/get/result",
                 o->device) >= (int)sizeof(result_topic) ||
        snprintf(get_topic, sizeof(get_topic), "$hw/events/device/%s/twin/get", o->device) >=
            (int)sizeof(get_topic))
        return EXIT_USAGE;
    ctx.result_topic = result_topic;
    ctx.expect_ok = o->expect_ok;
    mosq = client_new("kedge-bench-startup", &ctx);
    if (!mosq)
        return EXIT_BROKEN;
    mosquitto_message_callback_set(mosq, st_on_message);

    t0 = now_ns();
    pid = spawn_broker(o->broker, o->conf, o->broker_out);
    if (pid < 0) {
        complain("fork: %s\n", strerror(errno));
        mosquitto_destroy(mosq);
        return EXIT_BROKEN;
    }
    deadline = t0 + (uint64_t)o->timeout_ms * 1000000u;

    /* Connect every 2 ms until the listener takes us. */
    for (;;) {
        attempts++;
        rc = mosquitto_connect(mosq, HOST, (int)o->port, KEEPALIVE_S);
        if (rc == MOSQ_ERR_SUCCESS)
            break;
        if (!broker_alive(pid, &wstatus)) {
            complain("broker exited (status 0x%x) before accepting; see %s\n", wstatus,
                     o->broker_out);
            pid = -1;
            status = EXIT_BROKER_GONE;
            goto out;
        }
        if (now_ns() > deadline) {
            complain("broker not accepting on port %ld after %ld ms\n", o->port, o->timeout_ms);
            goto out;
        }
        sleep_ms(2);
    }
    t_conn = now_ns();
    /* CONNACK, then SUBSCRIBE and its SUBACK, then the get: a get published before the
     * subscription is in place could be answered to nobody. */
    while (!ctx.answered) {
        if (ctx.cs.connected && !ctx.cs.sub_mid) {
            rc = mosquitto_subscribe(mosq, &ctx.cs.sub_mid, result_topic, 1);
            if (rc != MOSQ_ERR_SUCCESS) {
                complain("subscribe: %s\n", mosquitto_strerror(rc));
                goto out;
            }
        }
        if (ctx.cs.subscribed && !get_sent) {
            static const char get[] = "{\"event_id\":\"bench-startup\"}";
            rc = mosquitto_publish(mosq, NULL, get_topic, (int)sizeof(get) - 1, get, 1, false);
            if (rc != MOSQ_ERR_SUCCESS) {
                complain("publish: %s\n", mosquitto_strerror(rc));
                goto out;
            }
            get_sent = true;
        }
        rc = mosquitto_loop(mosq, 5, 1);
        if (rc != MOSQ_ERR_SUCCESS || ctx.cs.lost) {
            complain("connection lost before the get result: %s\n",
                     rc != MOSQ_ERR_SUCCESS ? mosquitto_strerror(rc) : "disconnected");
            if (!broker_alive(pid, &wstatus)) {
                pid = -1;
                status = EXIT_BROKER_GONE;
            }
            goto out;
        }
        if (now_ns() > deadline) {
            complain("no twin/get/result after %ld ms\n", o->timeout_ms);
            goto out;
        }
    }
    t1 = now_ns();
    if (ctx.bad) {
        complain("the get was answered with an error: %s\n", ctx.reply);
        goto out;
    }
    if (read_rss(pid, &rss_kb, &hwm_kb) < 0) {
        complain("cannot read /proc/%d/status\n", (int)pid);
        goto out;
    }
    cpu_ns = proc_cpu_ns(pid);
    (void)printf("startup ms=%.1f connect_ms=%.1f broker_cpu_ms=%.1f attempts=%ld rss_kb=%ld "
                 "hwm_kb=%ld pid=%d\n",
                 (double)(t1 - t0) / 1e6, (double)(t_conn - t0) / 1e6, (double)cpu_ns / 1e6,
                 attempts, rss_kb, hwm_kb, (int)pid);
    status = 0;
out:
    if (ctx.cs.connected) {
        (void)mosquitto_disconnect(mosq);
        (void)mosquitto_loop(mosq, 10, 1);
    }
    mosquitto_destroy(mosq);
    if (pid > 0) {
        int ws = stop_broker(pid);
        if (ws < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            complain("broker pid %d did not exit cleanly (status 0x%x)\n", (int)pid, ws);
            if (status == 0)
                status = EXIT_BROKEN;
        }
    }
    return status;
}

/* ---- freeport -------------------------------------------------------------------------------- */

static int cmd_freeport(void)
{
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        perror("bench_twin: socket");
        return EXIT_BROKEN;
    }
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
        perror("bench_twin: bind 127.0.0.1:0");
        (void)close(fd);
        return EXIT_BROKEN;
    }
    (void)printf("%u\n", (unsigned)ntohs(a.sin_port));
    (void)close(fd);
    return 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(void)
{
    (void)fprintf(stderr,
                  "usage: bench_twin roundtrip --port P [--devices 1000] [--prefix bench/dev-]\n"
                  "                            [--digits 4] [--reps 5] [--n64 20000] [--n1 5000]\n"
                  "                            [--warmup 2000] [--only both|plain|kedge]\n"
                  "                            [--broker-pid PID (adds broker CPU per request)]\n"
                  "                            [--bridge-password PW [--bridge-user kedge-bridge]\n"
                  "                             [--node kedge-bench]] (acks the plugin's outbox)\n"
                  "       bench_twin offline --port P [--devices 1000] [--prefix bench/dev-]\n"
                  "                          [--digits 4] [--total 1000000] [--chunk 50000]\n"
                  "                          [--broker-pid PID] (twin updates, no bridge)\n"
                  "       bench_twin startup --port P --conf FILE --device ID [--expect ok|any]\n"
                  "                          [--broker " MOSQUITTO_BIN "] [--broker-out FILE]\n"
                  "                          [--timeout-ms 30000]\n"
                  "       bench_twin freeport\n");
}

/* --key value pairs into a small table; unknown keys are a usage error. */
struct arg {
    const char *key;
    const char *value;
};

static int parse_args(int argc, char **argv, struct arg *args, size_t nargs)
{
    int i;

    for (i = 0; i < argc; i += 2) {
        size_t k;
        if (i + 1 >= argc) {
            complain("%s needs a value\n", argv[i]);
            return -1;
        }
        for (k = 0; k < nargs; k++) {
            if (!strcmp(argv[i], args[k].key)) {
                args[k].value = argv[i + 1];
                break;
            }
        }
        if (k == nargs) {
            complain("unknown option %s\n", argv[i]);
            return -1;
        }
    }
    return 0;
}

static int get_long(const struct arg *a, long min, long max, long *out)
{
    if (parse_long(a->value, min, max, out) < 0) {
        complain("%s '%s' is not a number in [%ld, %ld]\n", a->key, a->value, min, max);
        return -1;
    }
    return 0;
}

static int main_roundtrip(int argc, char **argv)
{
    struct arg args[] = {{"--port", NULL},
                         {"--devices", "1000"},
                         {"--prefix", "bench/dev-"},
                         {"--digits", "4"},
                         {"--reps", "5"},
                         {"--n64", "20000"},
                         {"--n1", "5000"},
                         {"--warmup", "2000"},
                         {"--only", "both"},
                         {"--broker-pid", "0"},
                         {"--bridge-password", NULL},
                         {"--bridge-user", "kedge-bridge"},
                         {"--node", "kedge-bench"}};
    struct rt_opts o = {0};

    if (parse_args(argc, argv, args, sizeof(args) / sizeof(args[0])) < 0 || !args[0].value) {
        usage();
        return EXIT_USAGE;
    }
    if (get_long(&args[0], 1, 65535, &o.port) < 0 ||
        get_long(&args[1], 1, 1000000, &o.devices) < 0 || get_long(&args[3], 1, 9, &o.digits) < 0 ||
        get_long(&args[4], 1, 100, &o.reps) < 0 || get_long(&args[5], 64, 10000000, &o.n64) < 0 ||
        get_long(&args[6], 1, 10000000, &o.n1) < 0 ||
        get_long(&args[7], 0, 10000000, &o.warmup) < 0 ||
        get_long(&args[9], 0, 4194304, &o.broker_pid) < 0)
        return EXIT_USAGE;
    o.prefix = args[2].value;
    o.bridge_password = args[10].value;
    o.bridge_user = args[11].value;
    o.node = args[12].value;
    if (!strcmp(args[8].value, "both")) {
        o.only = -1;
    } else if (!strcmp(args[8].value, "plain")) {
        o.only = RT_PLAIN;
    } else if (!strcmp(args[8].value, "kedge")) {
        o.only = RT_KEDGE;
    } else {
        usage();
        return EXIT_USAGE;
    }
    return cmd_roundtrip(&o);
}

static int main_offline(int argc, char **argv)
{
    struct arg args[] = {{"--port", NULL},     {"--devices", "1000"},  {"--prefix", "bench/dev-"},
                         {"--digits", "4"},    {"--total", "1000000"}, {"--chunk", "50000"},
                         {"--broker-pid", "0"}};
    struct rt_opts o = {0};
    long total, chunk;

    if (parse_args(argc, argv, args, sizeof(args) / sizeof(args[0])) < 0 || !args[0].value) {
        usage();
        return EXIT_USAGE;
    }
    if (get_long(&args[0], 1, 65535, &o.port) < 0 ||
        get_long(&args[1], 1, 1000000, &o.devices) < 0 || get_long(&args[3], 1, 9, &o.digits) < 0 ||
        get_long(&args[4], 1, 100000000, &total) < 0 ||
        get_long(&args[5], 64, 10000000, &chunk) < 0 ||
        get_long(&args[6], 0, 4194304, &o.broker_pid) < 0)
        return EXIT_USAGE;
    o.prefix = args[2].value;
    return cmd_offline(&o, total, chunk);
}

static int main_startup(int argc, char **argv)
{
    struct arg args[] = {{"--port", NULL},
                         {"--conf", NULL},
                         {"--device", NULL},
                         {"--expect", "ok"},
                         {"--broker", MOSQUITTO_BIN},
                         {"--broker-out", "/dev/null"},
                         {"--timeout-ms", "30000"}};
    struct st_opts o = {0};

    if (parse_args(argc, argv, args, sizeof(args) / sizeof(args[0])) < 0 || !args[0].value ||
        !args[1].value || !args[2].value ||
        (strcmp(args[3].value, "ok") != 0 && strcmp(args[3].value, "any") != 0)) {
        usage();
        return EXIT_USAGE;
    }
    if (get_long(&args[0], 1, 65535, &o.port) < 0 ||
        get_long(&args[6], 1, 600000, &o.timeout_ms) < 0)
        return EXIT_USAGE;
    o.conf = args[1].value;
    o.device = args[2].value;
    o.expect_ok = !strcmp(args[3].value, "ok");
    o.broker = args[4].value;
    o.broker_out = args[5].value;
    return cmd_startup(&o);
}

int main(int argc, char **argv)
{
    int rc;

    if (argc < 2) {
        usage();
        return EXIT_USAGE;
    }
    if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
        complain("mosquitto_lib_init failed\n");
        return EXIT_BROKEN;
    }
    if (!strcmp(argv[1], "roundtrip")) {
        rc = main_roundtrip(argc - 2, argv + 2);
    } else if (!strcmp(argv[1], "offline")) {
        rc = main_offline(argc - 2, argv + 2);
    } else if (!strcmp(argv[1], "startup")) {
        rc = main_startup(argc - 2, argv + 2);
    } else if (!strcmp(argv[1], "freeport")) {
        rc = cmd_freeport();
    } else {
        usage();
        rc = EXIT_USAGE;
    }
    (void)mosquitto_lib_cleanup();
    /* The figures are the product: a failed write of them is a failed run. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        complain("cannot write the results: %s\n", strerror(errno));
        if (rc == 0)
            rc = EXIT_BROKEN;
    }
    return rc;
}
