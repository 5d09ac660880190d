/* twin_client.c: bench_twin's clocks, statistics and the measuring MQTT client's set-up
 * (bench_twin.h). */
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

/* Diagnostics: one line on stderr. A failed write there has nowhere better to go. */
void complain(const char *fmt, ...)
{
    va_list ap;

    (void)fputs("bench_twin: ", stderr);
    va_start(ap, fmt);
    (void)vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* ---- small helpers ------------------------------------------------------------------------ */

uint64_t now_ns(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t wall_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(long ms)
{
    struct timespec req = {ms / 1000, (ms % 1000) * 1000000L}, rem;

    while (nanosleep(&req, &rem) < 0 && errno == EINTR)
        req = rem;
}

int parse_long(const char *s, long min, long max, long *out)
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

int cmp_u64(const void *a, const void *b)
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
uint64_t percentile(const uint64_t *sorted, size_t n, double p)
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

double median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The decimal event id inside `"event_id":"<n>"`; -1 if there is none. */
long long find_event_id(const void *payload, size_t len)
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

bool contains(const void *payload, size_t len, const char *needle)
{
    return memmem(payload, len, needle, strlen(needle)) != NULL;
}

/* CPU time a process has had so far (ns, /proc/<pid>/schedstat), or -1. On a machine where
 * other work competes for the CPUs this moves far less than wall-clock figures do. */
int64_t proc_cpu_ns(pid_t pid)
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

/* A client with TCP_NODELAY (else a QoS 1 round trip is Nagle-bound, spec docs/kubeedge-wire.md §9)
 * and no client-side cap on QoS 1 messages in flight (libmosquitto's default of 20 would shrink
 * W=64). ud points at the caller's context, whose first member is the struct client_state the
 * shared callbacks update. */
struct mosquitto *client_new(const char *id, void *ud)
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
int loop_until(struct mosquitto *mosq, struct client_state *cs, const bool *flag,
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
