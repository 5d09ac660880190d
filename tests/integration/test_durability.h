/* test_durability.h: the chain test_durability runs, its devices, the tally of what was sent and
 * acknowledged, and publishing. */
#ifndef KEDGE_TESTS_TEST_DURABILITY_H
#define KEDGE_TESTS_TEST_DURABILITY_H

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "bridgectl.h"
#include "chain.h"
#include "dbpeek.h"
#include "harness.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/json.h"
#include "simctl.h"
#include "proc.h"
#include "testsupport.h"

#define PAUSE_MS 20      /* between two polls of a deadline loop */
#define WAIT_MS 10000    /* something that takes milliseconds */
#define DELIVER_MS 60000 /* a stream drains to the cloud once the path is whole again */
#define OUTAGE_S 60      /* the figure */
#define NODE "kedge-node"
#define N_DEV 2
#define UPLOAD_PREFIX "$hw/events/upload/dur/"
#define OUR_ROWS "SELECT count(*) FROM kedge_outbox WHERE msg LIKE '%dur-%'"

#define MAX_SEQ 2048

#define N_SRC (2 * N_DEV)

struct dev {
    const char *id, *name;
    struct kh_client *c;
};

struct source {
    char resource[96];
    unsigned char taken[MAX_SEQ + 1];
    unsigned short seen[MAX_SEQ + 1];
    int last; /* highest N among first arrivals */
    int dup, reordered;
};

struct totals {
    int taken, arrived, lost, dup, reordered, folded;
};

/* Rounds of (upload n, twin n) for every device, n from *next on. After each publish,
 * after(count, ctx) may kill something (it restarts what it killed before returning). */
typedef void (*after_fn)(int count, void *ctx);

struct chain_opts {
    const char *outbox_max;       /* plugin_opt_outbox_max, NULL: default */
    const char *const *bridge_kv; /* more bridge settings: key, value, ..., NULL */
    bool may_die;                 /* bridgectl_start does not wait: a crash hook may fire first */
};

struct tally {
    struct source src[N_SRC];
    long long since; /* last /received index looked at */
    int unexpected;  /* arrivals of what the device was refused */
    unsigned char refused[N_SRC][MAX_SEQ + 1];
};

extern struct simctl *sim;
extern struct kh_broker *broker;
extern struct bridgectl *bridge;
extern struct dev devs[];

int64_t wall_ms(void);

void seed_random(const char *test);

void wait_session(int64_t min_sessions, int timeout_ms);

void chain_up(const struct chain_opts *co);

void devices_free(void);

void teardown(void);

void wait_disconnected(void);

void wait_db_int(const char *path, const char *sql, int64_t want);

int64_t plugin_status_int(const char *key);

/* Until the plugin's outbox is empty (the bridge took everything). */
void wait_plugin_drained(void);

void devices_connect(void);

/* The cloud adds both devices; wait until the plugin announced them. */
void add_devices(void);

struct tally *tally_new(void);

/* Read what the cloud received since the last look. */
void tally_collect(struct tally *t);

struct totals tally_totals(const struct tally *t);

/* Poll the cloud until everything taken arrived (or the deadline). */
void wait_delivered(struct tally *t, int timeout_ms);

bool undelivered(struct tally *t);

/* The scenario's line, then the verdict: nothing lost, nothing out of order; and, where no
 * fault was injected (faults false), nothing twice either: at-least-once only repeats what a
 * crash or a broken link left unconfirmed. */
void report(const char *scenario, struct tally *t, bool faults);

/* A QoS 1 upload; taken on PUBACK. Returns 0 or what kh_client_pub said. */
int put_upload(struct tally *t, int d, int n);

/* A twin update temperature = n; taken on its success result (published after the commit).
 * Returns 0, the result's error code, or -errno. */
int put_twin(struct tally *t, int d, int n);

void stream(struct tally *t, int *next, int rounds, after_fn after, void *ctx);

/* test_durability_kill9.c: kill -9 of the bridge, the broker, both */
void durability_add_kill9_tests(Suite *s);
/* test_durability_health.c: $SYS health topics, the rate limit */
void durability_add_health_tests(Suite *s);

/* test_durability.c: one case per test, so CK_RUN_CASE=<name> runs one of them. */
void add_case(Suite *s, const char *name, const TTest *test, int timeout_s);

/* A random integer in [lo, hi]. */
int rand_in(int lo, int hi);

#endif
