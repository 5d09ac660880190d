/* bench_relay: device -> cloud messages per second through broker + plugin + kedge-bridge to
 * kedge-cloudsim, against the same broker's bare loopback. scripts/bench.sh relay starts the
 * processes; this program only measures.
 *
 *   bench_relay loopback --port P [--n N] [--window W]
 *       one client publishes N QoS 1 messages to bench/echo/x (at most W unacknowledged) and
 *       receives them through its own subscription: the broker's bare round trip.
 *   bench_relay kedge --port P --control-port C [--n N] [--window W] [--timeout-s S]
 *       one client publishes N QoS 1 uploads to $hw/events/upload/bench (the plugin stores
 *       each in its outbox, the bridge in its own, then sends it on the websocket); the
 *       clock stops when cloudsim's control API has seen the Nth upload.
 * Each prints one line: `relay <mode> n=N seconds=S rate=R` (and `lost=N` for kedge).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#define TOPIC_UPLOAD "$hw/events/upload/bench"

struct run {
    struct mosquitto *mosq;
    atomic_long acked, received;
    long n, window;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_publish(struct mosquitto *m, void *ud, int mid)
{
    struct run *r = ud;

    (void)m;
    (void)mid;
    atomic_fetch_add(&r->acked, 1);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    struct run *r = ud;

    (void)m;
    (void)msg;
    atomic_fetch_add(&r->received, 1);
}

static int client(struct run *r, int port, const char *sub)
{
    int mid;

    mosquitto_lib_init();
    r->mosq = mosquitto_new(NULL, true, r);
    if (!r->mosq)
        return -1;
    (void)mosquitto_int_option(r->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    (void)mosquitto_int_option(r->mosq, MOSQ_OPT_SEND_MAXIMUM, 65535);
    mosquitto_publish_callback_set(r->mosq, on_publish);
    mosquitto_message_callback_set(r->mosq, on_message);
    if (mosquitto_connect(r->mosq, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(r->mosq) != MOSQ_ERR_SUCCESS)
        return -1;
    if (sub && mosquitto_subscribe(r->mosq, &mid, sub, 1) != MOSQ_ERR_SUCCESS)
        return -1;
    usleep(200000); /* the SUBACK; the measurement starts after it */
    return 0;
}

/* Publish n messages keeping at most window unacknowledged. */
static int publish_all(struct run *r, const char *topic)
{
    char payload[64];
    long i;

    for (i = 0; i < r->n; i++) {
        while (i - atomic_load(&r->acked) >= r->window)
            usleep(50);
        snprintf(payload, sizeof(payload), "seq=%ld", i);
        if (mosquitto_publish(r->mosq, NULL, topic, (int)strlen(payload), payload, 1, false) !=
            MOSQ_ERR_SUCCESS)
            return -1;
    }
    return 0;
}

/* A tiny HTTP GET to cloudsim's control API; the body in buf (NUL-terminated). */
static long http_get(int port, const char *path, char **buf)
{
    struct sockaddr_in a = {0};
    char req[256];
    size_t cap = 1 << 16, len = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    *buf = malloc(cap);
    if (fd < 0 || !*buf)
        return -1;
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    while ((n = read(fd, *buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (len + 1 == cap) {
            char *nb = realloc(*buf, cap * 2);
            if (!nb)
                break;
            *buf = nb;
            cap *= 2;
        }
    }
    close(fd);
    (*buf)[len] = '\0';
    return (long)len;
}

/* New uploads since *index; advances *index to the highest index seen. */
static long count_uploads(int cport, long *index)
{
    char path[128], *body = NULL, *p;
    long found = 0, idx;

    snprintf(path, sizeof(path), "/received?skip_keepalive=1&since=%ld", *index);
    if (http_get(cport, path, &body) < 0) {
        free(body);
        return 0;
    }
    for (p = body; (p = strstr(p, "\"index\":")); p += 8) {
        idx = strtol(p + 8, NULL, 10);
        if (idx > *index)
            *index = idx;
    }
    for (p = body; (p = strstr(p, "\"resource\":\"" TOPIC_UPLOAD "\"")); p++)
        found++;
    free(body);
    return found;
}

static long arg(int argc, char **argv, const char *name, long def)
{
    int i;

    for (i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return strtol(argv[i + 1], NULL, 10);
    return def;
}

int main(int argc, char **argv)
{
    struct run r = {0};
    long port, cport, timeout_s, seen = 0, index = -1;
    double t0, t1, deadline;

    if (argc < 2 || (strcmp(argv[1], "loopback") && strcmp(argv[1], "kedge"))) {
        fprintf(stderr, "usage: bench_relay loopback|kedge --port P [--control-port C] [--n N] "
                        "[--window W] [--timeout-s S]\n");
        return 2;
    }
    port = arg(argc, argv, "--port", 0);
    cport = arg(argc, argv, "--control-port", 0);
    r.n = arg(argc, argv, "--n", 20000);
    r.window = arg(argc, argv, "--window", 64);
    timeout_s = arg(argc, argv, "--timeout-s", 300);
    if (!strcmp(argv[1], "loopback")) {
        if (client(&r, (int)port, "bench/echo/#") < 0)
            return 1;
        t0 = now_s();
        if (publish_all(&r, "bench/echo/x") < 0)
            return 1;
        deadline = t0 + (double)timeout_s;
        while (atomic_load(&r.received) < r.n && now_s() < deadline)
            usleep(100);
        t1 = now_s();
        printf("relay loopback n=%ld seconds=%.3f rate=%.0f\n", r.n, t1 - t0,
               (double)atomic_load(&r.received) / (t1 - t0));
    } else {
        if (client(&r, (int)port, NULL) < 0)
            return 1;
        (void)count_uploads((int)cport, &index); /* start after what is already there */
        t0 = now_s();
        if (publish_all(&r, TOPIC_UPLOAD) < 0)
            return 1;
        deadline = t0 + (double)timeout_s;
        while (seen < r.n && now_s() < deadline) {
            seen += count_uploads((int)cport, &index);
            if (seen < r.n)
                usleep(5000);
        }
        t1 = now_s();
        printf("relay kedge n=%ld seconds=%.3f rate=%.0f lost=%ld\n", r.n, t1 - t0,
               (double)seen / (t1 - t0), r.n - seen);
    }
    mosquitto_disconnect(r.mosq);
    mosquitto_loop_stop(r.mosq, false);
    mosquitto_destroy(r.mosq);
    mosquitto_lib_cleanup();
    return 0;
}
