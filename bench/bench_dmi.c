/* bench_dmi: ReportDeviceStatus calls per second through kedge-bridge's DMI socket, side by
 * side with MQTT twin updates of the same content through the broker, in the same run.
 * scripts/bench.sh dmi starts cloudsim, the broker with the plugin and the bridge; this program
 * only loads and measures.
 *
 *   bench_dmi setup --control-port C --node N --dmi SOCK [--devices D]
 *       the cloud (cloudsim's POST /send) adds D devices bench-dev-NNNN of protocol
 *       bench-virtual to the node as cloudcore v1.15 would: a DeviceModel, one membership
 *       update, D Devices; then waits until a report of the last one is answered OK.
 *   bench_dmi run --port P --dmi SOCK [--devices D] [--n1 N] [--n64 N] [--reps R]
 *       for each window W of 1 and 64, R alternating pairs of
 *         mqtt: one MQTT 3.1.1 client publishes twin updates ({"event_id","timestamp","twin":
 *               {"temperature":{"actual":{"value":V}}}}) to $hw/events/device/<dev>/twin/update,
 *               QoS 1, and the call is over when its .../twin/update/result is back (matched
 *               by event_id): the plugin committed it;
 *         dmi:  one connection to kedge's DeviceManagerService with W concurrent streams, each a
 *               ReportDeviceStatus of the same twin and value, over when answered (kedge answers
 *               after the plugin committed it);
 *       devices round-robin, at most W in flight. Prints each run, then per window the medians,
 *       the ratio dmi/mqtt (target >= 0.5) and a last line
 *       `dmi: w1_ratio=R w64_ratio=R w1_dmi_per_s=N w64_dmi_per_s=N w64_mqtt_per_s=N`.
 * Figures only, no assertion on time; the exit status is 1 when the measurement broke (a call
 * refused, a stall of 10 s, a lost connection), 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "grpc_fd.h"
#include "httpc.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kubeedge/dmi/v1beta1/api.pb-c.h"

#define PROTO "bench-virtual"
#define MODEL "bench-model"
#define REPORT_PATH "/v1beta1.DeviceManagerService/ReportDeviceStatus"
#define STALL_NS (10ull * 1000 * 1000 * 1000)
#define MAX_WINDOW 256

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void dev_name(char *out, size_t n, long i)
{
    (void)snprintf(out, n, "bench-dev-%04ld", i);
}

/* ---- one measured run ---------------------------------------------------------------------- */

struct load {
    long devices, n, window;
    long started, done, failed;
    uint64_t *t0;  /* start of each call, by sequence */
    uint64_t *lat; /* latency of each call */
    uint64_t last_progress;
    char why[256];
};

struct result {
    double per_s;
    double p50_us;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static int load_init(struct load *l, long devices, long n, long window)
{
    memset(l, 0, sizeof(*l));
    l->devices = devices;
    l->n = n;
    l->window = window;
    l->t0 = kedge_calloc((size_t)n, sizeof(*l->t0));
    l->lat = kedge_calloc((size_t)n, sizeof(*l->lat));
    return l->t0 && l->lat ? 0 : -ENOMEM;
}

static void load_finish(struct load *l, uint64_t begin, struct result *r)
{
    uint64_t total = now_ns() - begin;

    qsort(l->lat, (size_t)l->done, sizeof(*l->lat), cmp_u64);
    r->per_s = (double)l->done / ((double)total / 1e9);
    r->p50_us = l->done ? (double)l->lat[l->done / 2] / 1e3 : 0;
    kedge_free(l->t0);
    kedge_free(l->lat);
}

static void load_done(struct load *l, long seq, bool ok, const char *why)
{
    uint64_t t = now_ns();

    if (seq < 0 || seq >= l->started || l->lat[seq])
        return;
    l->lat[seq] = t - l->t0[seq] + 1;
    l->done++;
    l->last_progress = t;
    if (!ok && !l->failed++)
        (void)snprintf(l->why, sizeof(l->why), "%s", why);
}

/* ---- DMI: W streams on one connection ------------------------------------------------------ */

static void dmi_response(void *ctx, struct grpc_conn *c, void *tag, int code, const char *message,
                         const uint8_t *msg, size_t len)
{
    (void)c, (void)msg, (void)len;
    load_done(ctx, (long)(intptr_t)tag, code == GRPC_OK, message ? message : "error");
}

static int dmi_start(struct load *l, struct grpc_conn *c)
{
    V1beta1__ReportDeviceStatusRequest req = V1BETA1__REPORT_DEVICE_STATUS_REQUEST__INIT;
    V1beta1__DeviceStatus st = V1BETA1__DEVICE_STATUS__INIT;
    V1beta1__Twin twin = V1BETA1__TWIN__INIT, *tp = &twin;
    V1beta1__TwinProperty rep = V1BETA1__TWIN_PROPERTY__INIT;
    char dev[32], value[24];
    long seq = l->started;

    dev_name(dev, sizeof(dev), seq % l->devices);
    (void)snprintf(value, sizeof(value), "%ld", seq % 1000);
    twin.propertyname = (char *)"temperature";
    rep.value = value;
    twin.reported = &rep;
    st.n_twins = 1;
    st.twins = &tp;
    req.devicename = dev;
    req.reporteddevice = &st;
    l->t0[seq] = now_ns();
    if (grpc_call(c, REPORT_PATH, &req.base, (void *)(intptr_t)seq) < 0)
        return -EIO;
    l->started++;
    return 0;
}

static int run_dmi(const char *sock, long devices, long n, long window, struct result *r)
{
    static const struct grpc_conn_ops ops = {.response = dmi_response};
    struct grpc_limits lim = {0, MAX_WINDOW};
    struct grpc_conn *c = NULL;
    struct load l;
    uint64_t begin;
    int fd, rc = 0;

    if (load_init(&l, devices, n, window) < 0)
        return -ENOMEM;
    fd = grpc_fd_connect_unix(sock);
    if (fd < 0 || grpc_conn_new(false, &ops, &l, &lim, &c) < 0) {
        (void)fprintf(stderr, "bench_dmi: cannot connect to %s\n", sock);
        if (fd >= 0)
            (void)close(fd);
        load_finish(&l, now_ns(), r);
        return -EIO;
    }
    begin = l.last_progress = now_ns();
    while (rc == 0 && l.done < n) {
        while (rc == 0 && l.started < n && l.started - l.done < window)
            rc = dmi_start(&l, c);
        if (rc == 0 && grpc_fd_pump(c, fd, 100) < 0) {
            (void)fprintf(stderr, "bench_dmi: the DMI connection ended\n");
            rc = -EIO;
        }
        if (rc == 0 && now_ns() - l.last_progress > STALL_NS) {
            (void)fprintf(stderr, "bench_dmi: no DMI answer for 10 s\n");
            rc = -ETIMEDOUT;
        }
    }
    if (l.failed) {
        (void)fprintf(stderr, "bench_dmi: %ld DMI calls failed, the first: %s\n", l.failed, l.why);
        rc = -EIO;
    }
    load_finish(&l, begin, r);
    if (fd >= 0)
        (void)close(fd);
    grpc_conn_free(c);
    return rc;
}

/* ---- MQTT: twin updates of the same content -------------------------------------------------- */

struct mq {
    struct load l;
    bool connected, subscribed, lost;
    int sub_mid;
};

static void mq_connect(struct mosquitto *m, void *ud, int rc)
{
    struct mq *q = ud;

    (void)m;
    q->connected = rc == 0;
    q->lost = rc != 0;
}

static void mq_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted)
{
    struct mq *q = ud;

    (void)m, (void)n, (void)granted;
    if (mid == q->sub_mid)
        q->subscribed = true;
}

static void mq_disconnect(struct mosquitto *m, void *ud, int rc)
{
    (void)m, (void)rc;
    ((struct mq *)ud)->lost = true;
}

static void mq_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    struct mq *q = ud;
    const char *p = memmem(msg->payload, (size_t)msg->payloadlen, "\"event_id\":\"", 12);
    bool ok = !memmem(msg->payload, (size_t)msg->payloadlen, "\"code\":", 7);

    (void)m;
    if (p)
        load_done(&q->l, strtol(p + 12, NULL, 10), ok, "a twin update was refused");
}

static int mq_start(struct mosquitto *m, struct mq *q)
{
    char topic[96], payload[192];
    long seq = q->l.started;
    int len;

    (void)snprintf(topic, sizeof(topic), "$hw/events/device/bench-dev-%04ld/twin/update",
                   seq % q->l.devices);
    len = snprintf(payload, sizeof(payload),
                   "{\"event_id\":\"%ld\",\"timestamp\":%" PRId64 ",\"twin\":{\"temperature\":{"
                   "\"actual\":{\"value\":\"%ld\"}}}}",
                   seq, wall_ms(), seq % 1000);
    q->l.t0[seq] = now_ns();
    if (mosquitto_publish(m, NULL, topic, len, payload, 1, false) != MOSQ_ERR_SUCCESS)
        return -EIO;
    q->l.started++;
    return 0;
}

static struct mosquitto *mq_client(struct mq *q, long port)
{
    struct mosquitto *m = mosquitto_new(NULL, true, q);
    uint64_t deadline = now_ns() + STALL_NS;

    if (!m)
        return NULL;
    (void)mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    (void)mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, 65535);
    mosquitto_connect_callback_set(m, mq_connect);
    mosquitto_subscribe_callback_set(m, mq_subscribe);
    mosquitto_disconnect_callback_set(m, mq_disconnect);
    mosquitto_message_callback_set(m, mq_message);
    if (mosquitto_connect(m, "127.0.0.1", (int)port, 60) != MOSQ_ERR_SUCCESS)
        goto fail;
    while (!q->connected && !q->lost && now_ns() < deadline)
        (void)mosquitto_loop(m, 100, 1);
    if (!q->connected ||
        mosquitto_subscribe(m, &q->sub_mid, "$hw/events/device/+/twin/update/result", 1) !=
            MOSQ_ERR_SUCCESS)
        goto fail;
    while (!q->subscribed && !q->lost && now_ns() < deadline)
        (void)mosquitto_loop(m, 100, 1);
    if (q->subscribed)
        return m;
fail:
    (void)fprintf(stderr, "bench_dmi: the MQTT client could not connect and subscribe\n");
    mosquitto_destroy(m);
    return NULL;
}

static int run_mqtt(long port, long devices, long n, long window, struct result *r)
{
    struct mq q = {0};
    struct mosquitto *m;
    uint64_t begin;
    int rc = 0;

    if (load_init(&q.l, devices, n, window) < 0)
        return -ENOMEM;
    m = mq_client(&q, port);
    if (!m) {
        load_finish(&q.l, now_ns(), r);
        return -EIO;
    }
    begin = q.l.last_progress = now_ns();
    while (rc == 0 && q.l.done < n) {
        while (rc == 0 && q.l.started < n && q.l.started - q.l.done < window)
            rc = mq_start(m, &q);
        if (rc == 0 && (mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS || q.lost)) {
            (void)fprintf(stderr, "bench_dmi: the MQTT connection was lost\n");
            rc = -EIO;
        }
        if (rc == 0 && now_ns() - q.l.last_progress > STALL_NS) {
            (void)fprintf(stderr, "bench_dmi: no twin update result for 10 s\n");
            rc = -ETIMEDOUT;
        }
    }
    if (q.l.failed) {
        (void)fprintf(stderr, "bench_dmi: %ld MQTT updates failed: %s\n", q.l.failed, q.l.why);
        rc = -EIO;
    }
    load_finish(&q.l, begin, r);
    (void)mosquitto_disconnect(m);
    mosquitto_destroy(m);
    return rc;
}

/* ---- setup: the devices, as the cloud sends them ------------------------------------------- */

static int sim_send(int control_port, const char *node, const char *body)
{
    char path[160];
    int status = -1, rc;

    (void)snprintf(path, sizeof(path), "/send?node=%s", node);
    rc = kt_http_fd(kt_connect_tcp(control_port), "127.0.0.1", "POST", path, body, 10000, &status,
                    NULL);
    if (rc == 0 && status != 200)
        rc = -EBADMSG;
    if (rc < 0)
        (void)fprintf(stderr, "bench_dmi: POST %s: %s (HTTP %d)\n", path, strerror(-rc), status);
    return rc;
}

static int send_devices(int control_port, const char *node, long devices)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char dev[32];
    int rc;

    rc = sim_send(control_port, node,
                  "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"resource\","
                  "\"operation\":\"insert\",\"resource\":\"default/devicemodel/" MODEL "\"},"
                  "\"content\":{\"apiVersion\":\"devices.kubeedge.io/v1beta1\",\"kind\":"
                  "\"DeviceModel\",\"metadata\":{\"name\":\"" MODEL "\",\"namespace\":"
                  "\"default\"},\"spec\":{\"protocol\":\"" PROTO "\",\"properties\":[{\"name\":"
                  "\"temperature\",\"type\":\"INT\",\"accessMode\":\"ReadWrite\"}]}}}");
    if (rc == 0)
        rc = kedge_buf_printf(&b,
                              "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\","
                              "\"operation\":\"update\",\"resource\":\"node/%s/membership\"},"
                              "\"content\":{\"event_id\":\"bench\",\"timestamp\":1,"
                              "\"added_devices\":[",
                              node);
    for (long i = 0; rc == 0 && i < devices; i++) {
        dev_name(dev, sizeof(dev), i);
        rc = kedge_buf_printf(&b, "%s{\"id\":\"%s\",\"name\":\"%s\"}", i ? "," : "", dev, dev);
    }
    if (rc == 0)
        rc = kedge_buf_puts(&b, "],\"removed_devices\":[]}}");
    if (rc == 0)
        rc = sim_send(control_port, node, b.data);
    for (long i = 0; rc == 0 && i < devices; i++) {
        dev_name(dev, sizeof(dev), i);
        kedge_buf_reset(&b);
        rc = kedge_buf_printf(
            &b,
            "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"resource\",\"operation\":"
            "\"insert\",\"resource\":\"default/device/%s\"},\"content\":{\"apiVersion\":"
            "\"devices.kubeedge.io/v1beta1\",\"kind\":\"Device\",\"metadata\":{\"name\":\"%s\","
            "\"namespace\":\"default\"},\"spec\":{\"deviceModelRef\":{\"name\":\"" MODEL "\"},"
            "\"nodeName\":\"%s\",\"protocol\":{\"protocolName\":\"" PROTO "\"},\"properties\":[{"
            "\"name\":\"temperature\"}]},\"status\":{\"twins\":[{\"propertyName\":"
            "\"temperature\",\"reported\":{\"value\":\"\"}}]}}}",
            dev, dev, node);
        if (rc == 0)
            rc = sim_send(control_port, node, b.data);
    }
    kedge_buf_cleanup(&b);
    return rc;
}

/* A report of the last device answered OK: every device is known to kedge. */
static int wait_known(const char *sock, long devices)
{
    V1beta1__ReportDeviceStatusRequest req = V1BETA1__REPORT_DEVICE_STATUS_REQUEST__INIT;
    V1beta1__DeviceStatus st = V1BETA1__DEVICE_STATUS__INIT;
    V1beta1__Twin twin = V1BETA1__TWIN__INIT, *tp = &twin;
    V1beta1__TwinProperty rep = V1BETA1__TWIN_PROPERTY__INIT;
    uint64_t deadline = now_ns() + 12 * STALL_NS;
    char dev[32], *message = NULL;
    int code = -1;

    dev_name(dev, sizeof(dev), devices - 1);
    twin.propertyname = (char *)"temperature";
    rep.value = (char *)"0";
    twin.reported = &rep;
    st.n_twins = 1;
    st.twins = &tp;
    req.devicename = dev;
    req.reporteddevice = &st;
    while (now_ns() < deadline) {
        ProtobufCMessage *resp = NULL;
        int rc = grpc_fd_unary(sock, REPORT_PATH, &req.base,
                               &v1beta1__report_device_status_response__descriptor, 10000, &resp,
                               &code, &message);

        if (resp)
            protobuf_c_message_free_unpacked(resp, NULL);
        kedge_free(message);
        message = NULL;
        if (rc == 0 && code == GRPC_OK)
            return 0;
        usleep(100 * 1000); /* the pause between two polls */
    }
    (void)fprintf(stderr, "bench_dmi: %s never became known to kedge (last code %d)\n", dev, code);
    return -ETIMEDOUT;
}

/* ---- the command line ---------------------------------------------------------------------- */

struct opts {
    long port, control_port, devices, n1, n64, reps;
    const char *node, *dmi;
};

static int parse(int argc, char **argv, struct opts *o)
{
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        char *end;
        long n = strtol(v, &end, 10);

        if (!strcmp(k, "--node"))
            o->node = v;
        else if (!strcmp(k, "--dmi"))
            o->dmi = v;
        else if (*end || n <= 0)
            return -EINVAL;
        else if (!strcmp(k, "--port"))
            o->port = n;
        else if (!strcmp(k, "--control-port"))
            o->control_port = n;
        else if (!strcmp(k, "--devices"))
            o->devices = n;
        else if (!strcmp(k, "--n1"))
            o->n1 = n;
        else if (!strcmp(k, "--n64"))
            o->n64 = n;
        else if (!strcmp(k, "--reps"))
            o->reps = n;
        else
            return -EINVAL;
    }
    return argc % 2 ? -EINVAL : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, long n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* R alternating mqtt/dmi pairs at window w; the medians of each. */
static int run_window(const struct opts *o, long w, long n, double *mqtt, double *dmi)
{
    double mq[64], dm[64];
    struct result a, b;

    for (long rep = 1; rep <= o->reps; rep++) {
        if (run_mqtt(o->port, o->devices, n, w, &a) < 0 ||
            run_dmi(o->dmi, o->devices, n, w, &b) < 0)
            return -EIO;
        (void)printf("   rep=%ld w=%ld n=%ld  mqtt=%.0f/s p50=%.0fus  dmi=%.0f/s p50=%.0fus\n", rep,
                     w, n, a.per_s, a.p50_us, b.per_s, b.p50_us);
        (void)fflush(stdout);
        mq[rep - 1] = a.per_s;
        dm[rep - 1] = b.per_s;
    }
    *mqtt = median(mq, o->reps);
    *dmi = median(dm, o->reps);
    (void)printf("dmi w=%-3ld mqtt=%.0f/s  dmi=%.0f/s  ratio=%.2f  (target >= 0.5)\n", w, *mqtt,
                 *dmi, *dmi / *mqtt);
    (void)fflush(stdout);
    return 0;
}

static int usage(void)
{
    (void)fputs("usage: bench_dmi setup --control-port C --node N --dmi SOCK [--devices D]\n"
                "       bench_dmi run --port P --dmi SOCK [--devices D] [--n1 N] [--n64 N] "
                "[--reps R]\n",
                stderr);
    return 2;
}

int main(int argc, char **argv)
{
    struct opts o = {.devices = 1000, .n1 = 2000, .n64 = 20000, .reps = 5};
    double m1, d1, m64, d64;

    if (argc < 2 || parse(argc, argv, &o) < 0 || !o.dmi || o.reps > 64)
        return usage();
    if (!strcmp(argv[1], "setup")) {
        if (!o.control_port || !o.node)
            return usage();
        return send_devices((int)o.control_port, o.node, o.devices) < 0 ||
                       wait_known(o.dmi, o.devices) < 0
                   ? 1
                   : 0;
    }
    if (strcmp(argv[1], "run") || !o.port)
        return usage();
    if (run_window(&o, 1, o.n1, &m1, &d1) < 0 || run_window(&o, 64, o.n64, &m64, &d64) < 0)
        return 1;
    (void)printf("dmi: w1_ratio=%.2f w64_ratio=%.2f w1_dmi_per_s=%.0f w64_dmi_per_s=%.0f "
                 "w64_mqtt_per_s=%.0f\n",
                 d1 / m1, d64 / m64, d1, d64, m64);
    return 0;
}
