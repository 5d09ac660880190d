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

#include "proc.h"
#include "bench_twin.h"
#include "testsupport.h"

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
int read_rss(pid_t pid, long *rss_kb, long *hwm_kb)
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

struct st_opts {
    long port, timeout_ms;
    const char *conf, *device, *broker, *broker_out;
    bool expect_ok;
};

static int cmd_startup(const struct st_opts *o)
{
    struct st_ctx ctx = {0};
    struct mosquitto *mosq;
    char result_topic[256], get_topic[256];
    uint64_t t0, t_conn = 0, t1, deadline;
    long rss_kb, hwm_kb, attempts = 0;
    int64_t cpu_ns;
    const char *argv[] = {o->broker, "-c", o->conf, NULL};
    struct kt_spawn sp = {.argv = argv, .log_path = o->broker_out};
    struct kt_proc broker = KT_PROC_INIT;
    int rc, status = EXIT_BROKEN;
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

    (void)unlink(o->broker_out); /* this run's output only */
    t0 = now_ns();
    rc = kt_proc_spawn(&broker, &sp);
    if (rc < 0) {
        complain("fork: %s\n", strerror(-rc));
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
        if (kt_proc_reap(&broker, false)) {
            complain("broker exited (status %d) before accepting; see %s\n", broker.exit_status,
                     o->broker_out);
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
            if (kt_proc_reap(&broker, false))
                status = EXIT_BROKER_GONE;
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
    if (read_rss(broker.pid, &rss_kb, &hwm_kb) < 0) {
        complain("cannot read /proc/%d/status\n", (int)broker.pid);
        goto out;
    }
    cpu_ns = proc_cpu_ns(broker.pid);
    (void)printf("startup ms=%.1f connect_ms=%.1f broker_cpu_ms=%.1f attempts=%ld rss_kb=%ld "
                 "hwm_kb=%ld pid=%d\n",
                 (double)(t1 - t0) / 1e6, (double)(t_conn - t0) / 1e6, (double)cpu_ns / 1e6,
                 attempts, rss_kb, hwm_kb, (int)broker.pid);
    status = 0;
out:
    if (ctx.cs.connected) {
        (void)mosquitto_disconnect(mosq);
        (void)mosquitto_loop(mosq, 10, 1);
    }
    mosquitto_destroy(mosq);
    if (broker.pid) {
        pid_t pid = broker.pid;
        int st = kt_proc_stop(&broker, 10000, "bench_twin: broker");
        if (st != 0) {
            complain("broker pid %d did not exit cleanly (status %d)\n", (int)pid, st);
            if (status == 0)
                status = EXIT_BROKEN;
        }
    }
    return status;
}

/* ---- freeport -------------------------------------------------------------------------------- */

static int cmd_freeport(void)
{
    int port = kt_free_port();

    if (port < 0) {
        complain("no free port on 127.0.0.1: %s\n", strerror(-port));
        return EXIT_BROKEN;
    }
    (void)printf("%d\n", port);
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
