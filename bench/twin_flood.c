/* twin_flood: `bench_twin flood`, the offline half of `scripts/bench.sh twin`: a node with no
 * bridge takes a long stream of twin updates, so the script can measure the round-trip rate
 * before and after it on the same broker (issue 13: no slowdown as the node stays offline).
 *
 * One MQTT 3.1.1 client publishes `--updates` twin updates over `--devices` devices
 * <prefix><k> (k zero-padded to `--digits`), temperature = start, start + 1, ... per pass over
 * the devices. Updates go at QoS 0; the last of every pass goes at QoS 1 and its PUBACK is
 * awaited, which bounds what is in flight (the broker handles one connection's packets in
 * order). Device 0's results are read: a result with a non-zero code counts as refused. Prints
 * one line: `flood updates=N seconds=S per_s=R sampled_results=K refused=K`.
 */
#define _GNU_SOURCE /* memmem */ // NOLINT(bugprone-reserved-identifier)
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

#include "twin_flood.h"

#define HOST "127.0.0.1"
#define STALL_NS 30000000000ull /* no PUBACK for this long: the run is broken */

struct flood {
    bool connected, lost, subscribed;
    int sync_mid;
    bool synced;
    long results, refused;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    struct flood *f = ud;

    (void)m;
    f->connected = rc == 0;
    f->lost = rc != 0;
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc)
{
    struct flood *f = ud;

    (void)m;
    (void)rc;
    f->lost = true;
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted)
{
    struct flood *f = ud;

    (void)m;
    (void)mid;
    f->subscribed = n == 1 && granted[0] <= 2;
    f->lost |= !f->subscribed;
}

static void on_publish(struct mosquitto *m, void *ud, int mid)
{
    struct flood *f = ud;

    (void)m;
    if (mid == f->sync_mid)
        f->synced = true;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    struct flood *f = ud;
    const char *p = msg->payload;

    (void)m;
    f->results++;
    /* an error result carries "code"; a success result does not */
    if (p && msg->payloadlen > 0 && memmem(p, (size_t)msg->payloadlen, "\"code\":", 7))
        f->refused++;
}

static int wait_for(struct mosquitto *mosq, struct flood *f, const bool *flag, const char *what)
{
    uint64_t deadline = mono_ns() + STALL_NS;

    while (!*flag) {
        int rc = mosquitto_loop(mosq, 100, 1);
        if (rc != MOSQ_ERR_SUCCESS || f->lost || mono_ns() > deadline) {
            (void)fprintf(stderr, "bench_twin flood: no %s: %s\n", what,
                          rc != MOSQ_ERR_SUCCESS ? mosquitto_strerror(rc)
                          : f->lost              ? "connection lost"
                                                 : "timed out");
            return -1;
        }
    }
    return 0;
}

static int flood_connect(struct mosquitto *mosq, struct flood *f, const struct flood_opts *o)
{
    char topic[256];
    uint64_t until = mono_ns() + 5000000000u;
    int rc;

    while ((rc = mosquitto_connect(mosq, HOST, (int)o->port, 60)) != MOSQ_ERR_SUCCESS) {
        if (mono_ns() > until) {
            (void)fprintf(stderr, "bench_twin flood: connect %s:%ld: %s\n", HOST, o->port,
                          mosquitto_strerror(rc));
            return -1;
        }
        (void)nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    if (wait_for(mosq, f, &f->connected, "CONNACK") < 0)
        return -1;
    (void)snprintf(topic, sizeof(topic), "$hw/events/device/%s%0*d/twin/update/result", o->prefix,
                   (int)o->digits, 0);
    if (mosquitto_subscribe(mosq, NULL, topic, 0) != MOSQ_ERR_SUCCESS)
        return -1;
    return wait_for(mosq, f, &f->subscribed, "SUBACK");
}

/* One update; the last of a pass at QoS 1, awaited. */
static int publish_one(struct mosquitto *mosq, struct flood *f, const struct flood_opts *o, long i)
{
    char topic[256], payload[160];
    long dev = i % o->devices, value = o->start + i / o->devices;
    bool sync = dev == o->devices - 1 || i == o->updates - 1;
    int len, rc;

    (void)snprintf(topic, sizeof(topic), "$hw/events/device/%s%0*ld/twin/update", o->prefix,
                   (int)o->digits, dev);
    len = snprintf(payload, sizeof(payload),
                   "{\"event_id\":\"f%ld\",\"twin\":{\"temperature\":{\"actual\":{\"value\":"
                   "\"%ld\"}}}}",
                   i, value);
    f->synced = false;
    rc = mosquitto_publish(mosq, sync ? &f->sync_mid : NULL, topic, len, payload, sync ? 1 : 0,
                           false);
    if (rc != MOSQ_ERR_SUCCESS) {
        (void)fprintf(stderr, "bench_twin flood: publish: %s\n", mosquitto_strerror(rc));
        return -1;
    }
    return sync ? wait_for(mosq, f, &f->synced, "PUBACK") : 0;
}

int twin_flood(const struct flood_opts *o)
{
    struct flood f = {0};
    struct mosquitto *mosq = mosquitto_new("kedge-bench-flood", true, &f);
    uint64_t t0, t1;
    long i;
    int rc = -1;

    if (!mosq) {
        (void)fprintf(stderr, "bench_twin flood: mosquitto_new: %s\n", strerror(errno));
        return -1;
    }
    (void)mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_disconnect_callback_set(mosq, on_disconnect);
    mosquitto_subscribe_callback_set(mosq, on_subscribe);
    mosquitto_publish_callback_set(mosq, on_publish);
    mosquitto_message_callback_set(mosq, on_message);
    if (flood_connect(mosq, &f, o) < 0)
        goto out;
    t0 = mono_ns();
    for (i = 0; i < o->updates; i++)
        if (publish_one(mosq, &f, o, i) < 0)
            goto out;
    t1 = mono_ns();
    /* the last pass's result of device 0 may still be on its way: a short look */
    (void)mosquitto_loop(mosq, 100, 1);
    (void)printf("flood updates=%ld seconds=%.1f per_s=%.0f sampled_results=%ld refused=%ld\n",
                 o->updates, (double)(t1 - t0) / 1e9,
                 (double)o->updates / ((double)(t1 - t0) / 1e9), f.results, f.refused);
    rc = 0;
out:
    if (f.connected) {
        (void)mosquitto_disconnect(mosq);
        (void)mosquitto_loop(mosq, 10, 1);
    }
    mosquitto_destroy(mosq);
    return rc;
}
