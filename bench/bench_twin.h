/* bench_twin.h: what the files of bench_twin share (bench_twin.c: the command line, startup;
 * twin_client.c: clocks, statistics and the measuring client's set-up; twin_roundtrip.c: the
 * bridge stand-in, the roundtrip and offline measurements). */
#ifndef KEDGE_BENCH_TWIN_H
#define KEDGE_BENCH_TWIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* Diagnostics: one line on stderr, prefixed "bench_twin: ". */
void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The two workloads of the roundtrip measurement (bench_twin.c's file comment). */
enum rt_mode { RT_PLAIN, RT_KEDGE };

struct client_state {
    bool connected;
    int connack_rc;
    int sub_mid; /* mid of the SUBSCRIBE we wait for; 0: none outstanding */
    bool subscribed;
    bool lost;
};

struct rt_opts {
    long port, devices, reps, n64, n1, warmup, digits;
    const char *prefix;
    int only;        /* -1: both modes; else one enum rt_mode (for profiling one side) */
    long broker_pid; /* 0: unknown */
    const char *bridge_user, *bridge_password, *node; /* password NULL: no stand-in */
};

/* CLOCK_MONOTONIC in ns. */
uint64_t now_ns(void);

/* CLOCK_REALTIME in ms. */
int64_t wall_ms(void);

/* Sleep ms: the pause between two polls or retries. */
void sleep_ms(long ms);

/* A decimal in min..max into *out: 0, or -EINVAL. */
int parse_long(const char *s, long min, long max, long *out);

/* qsort comparator for uint64_t. */
int cmp_u64(const void *a, const void *b);

/* Nearest-rank percentile of a sorted array. */
uint64_t percentile(const uint64_t *sorted, size_t n, double p);

/* The median of v (sorted in place); 0 for none. */
double median(double *v, size_t n);

/* The decimal event id inside `"event_id":"<n>"`; -1 if there is none. */
long long find_event_id(const void *payload, size_t len);

/* Whether payload[0..len) contains needle. */
bool contains(const void *payload, size_t len, const char *needle);

/* CPU time a process has had so far (ns, /proc/<pid>/schedstat), or -1. On a machine where
 * other work competes for the CPUs this moves far less than wall-clock figures do. */
int64_t proc_cpu_ns(pid_t pid);

/* A client with TCP_NODELAY (else a QoS 1 round trip is Nagle-bound, spec docs/kubeedge-wire.md §9)
 * and no client-side cap on QoS 1 messages in flight (libmosquitto's default of 20 would shrink
 * W=64). ud points at the caller's context, whose first member is the struct client_state the
 * shared callbacks update. */
struct mosquitto *client_new(const char *id, void *ud);

/* Run the loop until *flag is set, the connection is lost, or deadline_ns passes. */
int loop_until(struct mosquitto *mosq, struct client_state *cs, const bool *flag,
               uint64_t deadline_ns, const char *what);

/* The roundtrip command (bench_twin.c's file comment); an exit status. */
int cmd_roundtrip(const struct rt_opts *o);

/* The offline command: total updates in chunks; an exit status. */
int cmd_offline(const struct rt_opts *o, long total, long chunk);

/* VmRSS and VmHWM of pid, in kB. */
int read_rss(pid_t pid, long *rss_kb, long *hwm_kb);

#endif
