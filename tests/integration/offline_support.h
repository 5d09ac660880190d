/* offline_support: the parts of test_offline (issue 13) that are not a scenario: knobs, small
 * measurements, the twin flood (one MQTT publisher, a sample of the results) and the reading of
 * cloudsim's GET /applied. Check assertions inside: for the test process only. */
#ifndef KEDGE_TESTS_OFFLINE_SUPPORT_H
#define KEDGE_TESTS_OFFLINE_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dbpeek.h"
#include "harness.h"
#include "kedge/buf.h"
#include "kedge/json.h"
#include "proc.h"
#include "simctl.h"

#define WAIT_MS 10000   /* something that takes milliseconds */
#define DRAIN_MS 120000 /* the queues drain to the cloud once it is back */
#define N_DEV 1000
#define SAMPLE_EVERY 100 /* devices 0, 100, ...: the test reads their results */
#define N_SAMPLE (N_DEV / SAMPLE_EVERY)
#define RESULT_FILTER "$hw/events/device/+/twin/update/result"

/* ---- small things ---------------------------------------------------------------------------- */

/* Between two polls of a deadline loop. */
#define pause_poll() kt_pause_ms(50)
/* KEDGE_VALGRIND is set: the suite is skipped (printed). */
bool under_valgrind(void);
/* N: KEDGE_OFFLINE_UPDATES (1 000 000; 20 000 in the sanitizer tree), whole passes, >= 2 passes. */
long n_updates(void);
/* cloud_away's updates per policy: KEDGE_OFFLINE_AWAY_UPDATES, default N. */
long away_updates(void);
/* off-NNNN */
void dev_id(int i, char *out, size_t n);
/* VmRSS of pid in kB (asserted readable). */
long rss_kb(pid_t pid);
/* Size of a file, 0 when it does not exist. */
long file_bytes(const char *path);
/* "Flat": what the first pass took, plus half of it and 4 MiB. */
long flat_bound(long first);
/* A number that must be there (asserted). */
int64_t jint(const struct kedge_jval *v, const char *what);
/* devicecontroller's membership update adding off-0000 .. off-0999 (docs/kubeedge-wire.md §2.10).
 */
void membership_json(struct kedge_buf *b);

/* ---- the twin flood: one publisher, a sample of results ----------------------------------------
 */

struct flood {
    struct kh_client *pub, *sample;
    long passes_done;
    long results, refused, failed; /* sampled results: all, 503, other errors */
};

/* Connect the publisher and the sampler (devices 0, 100, ...) to the broker on port. */
void flood_open(struct flood *f, int port);
/* The clients go; the counts stay for the verdict. */
void flood_close(struct flood *f);
/* Read the sampled results that came in; timeout_ms for the first one. */
void flood_collect(struct flood *f, int timeout_ms);
/* Wait until every sampled result of the passes done so far is in. */
void flood_settle(struct flood *f);
/* One pass: every device's temperature := value, the last publish at QoS 1 (awaited). */
void flood_pass(struct flood *f, long value);

/* ---- what the cloud applied (cloudsim's GET /applied) ------------------------------------------
 */

struct applied_view {
    int64_t devices, regressions;
    int at_final, once, twice, more;
    char lagging[96]; /* one device not at final: "id (value v)", or "" */
};

/* How many devices hold final, how often it was applied, regressions. */
void applied_view(struct simctl *sim, const char *final, struct applied_view *v);
/* A device's applied log never goes down in value; returns its entries (asserted). */
int applied_log_monotonic(struct simctl *sim, const char *id);
/* Poll until every device holds final (DRAIN_MS). */
void wait_final_applied(struct simctl *sim, const char *final, struct applied_view *v);

#endif
