/* The node's own numbers for kubelet's summary, read from /proc and statvfs (nodestats.c):
 * what cadvisor reports for the root cgroup, computed from the host-wide counters the kernel
 * keeps. Synchronous: a few small pseudo-files, read in well under a millisecond. */
#ifndef KEDGE_STREAM_NODESTATS_H
#define KEDGE_STREAM_NODESTATS_H

#include <stdint.h>

#include "summary.h"

struct nodestats_src {
    const char *proc;          /* "/proc" (a test gives a directory of fixtures) */
    const char *fs_path;       /* the node's filesystem (kubelet's root dir): statvfs, NULL none */
    const char *image_fs_path; /* the runtime's image store: statvfs, NULL none */
    long clk_tck;              /* USER_HZ of /proc/stat (sysconf(_SC_CLK_TCK)) */
};

/* Fill n (not its name) as of now_ms. cpu_and_memory: only startTime, cpu and memory, as
 * kubelet's GetCPUAndMemoryStats. A file that cannot be read leaves its part out (has_ false).
 * 0 or -ENOMEM. */
int nodestats_read(const struct nodestats_src *src, int64_t now_ms, bool cpu_and_memory,
                   struct ks_node *n);

/* The node's memory capacity (MemTotal) in bytes, 0 unknown: a container limit at or above it
 * is the runtime's "unlimited". */
uint64_t nodestats_mem_total(const struct nodestats_src *src);

#endif
