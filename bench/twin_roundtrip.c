/* twin_roundtrip.c: bench_twin's roundtrip and offline measurements and the bridge stand-in
 * that drains the outbox (bench_twin.c describes the commands). */
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

#include "proc.h"
#include "bench_twin.h"
#include "testsupport.h"

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

int cmd_roundtrip(const struct rt_opts *o)
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

int cmd_offline(const struct rt_opts *o, long total, long chunk)
{
    struct rt_ctx ctx = {0};
    struct rt_result res = {0}, first = {0};
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
