/* usageNanoCores: the cpu rate kubelet's summary gives next to the cumulative counter
 * (cpurate.c). cadvisor computes it from its last two samples (taken every 10-15 s); here the
 * samples are the ones the summary requests themselves take, kept per container id. */
#ifndef KEDGE_STREAM_CPURATE_H
#define KEDGE_STREAM_CPURATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Below this window a new sample does not replace the kept one (the rate from two samples a
 * few ms apart is noise); the rate of the last full window is given instead. */
#define CPURATE_MIN_WINDOW_MS 1000

struct cpurate;

struct cpurate *cpurate_new(void); /* NULL: out of memory */
void cpurate_free(struct cpurate *r);
/* A sample of key's cumulative usage_ns at t_ms: true and *nano_cores when a rate is known.
 * Out of memory only loses the rate. */
bool cpurate_sample(struct cpurate *r, const char *key, uint64_t usage_ns, int64_t t_ms,
                    uint64_t *nano_cores);
/* Forget the keys not sampled since the last sweep (containers that are gone). */
void cpurate_sweep(struct cpurate *r);

#endif
