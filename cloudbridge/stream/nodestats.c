/* nodestats.c: the node part of kubelet's summary (nodestats.h).
 *
 * kubelet takes the node's cpu and memory from cadvisor's root cgroup "/", which spans every
 * process of the host, so the host-wide counters give the same numbers:
 *   cpu.usageCoreNanoSeconds  /proc/stat's first line: user + nice + system + irq + softirq
 *                             ticks (what the root cgroup's cpuacct counts: idle, iowait and
 *                             steal are not time this node's processes ran) * 1e9 / USER_HZ;
 *   memory.usageBytes         MemTotal - MemFree (the root cgroup's usage counts page cache);
 *   memory.workingSetBytes    usage - Inactive(file), floor 0 (cadvisor's working set);
 *   memory.availableBytes     MemTotal - workingSet (the root's limit is the capacity);
 *   memory.rssBytes           AnonPages (the root's total_rss: anonymous memory);
 *   memory.(major)pageFaults  /proc/vmstat's pgfault, pgmajfault;
 *   startTime                 /proc/stat's btime (kubelet's systemBootTime);
 *   network                   /proc/net/dev without the devices cadvisor ignores (lo, veth*,
 *                             docker*, nerdctl*), "eth0" inline as kubelet's default;
 *   fs, runtime.imageFs       statvfs of the given paths (usedBytes: capacity - free for fs;
 *                             imageFs' usedBytes is the images' size, which kubelet asks the
 *                             runtime for: left out);
 *   rlimit                    /proc/sys/kernel/pid_max and /proc/loadavg's task count.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "kedge/alloc.h"
#include "nodestats.h"

static FILE *open_proc(const struct nodestats_src *src, const char *name)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", src->proc, name);
    return fopen(path, "re");
}

/* "key value" lines (meminfo: "Key:   123 kB", vmstat: "key 123"): the value of key. */
static bool keyed(const struct nodestats_src *src, const char *file, const char *key, uint64_t *out)
{
    FILE *f = open_proc(src, file);
    char line[256];
    size_t kl = strlen(key);
    bool found = false;

    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f))
        if (!strncmp(line, key, kl) && (line[kl] == ' ' || line[kl] == ':' || line[kl] == '\t'))
            found = sscanf(line + kl + 1, " %" SCNu64, out) == 1;
    fclose(f);
    return found;
}

static bool meminfo(const struct nodestats_src *src, const char *key, uint64_t *bytes)
{
    uint64_t kb;

    if (!keyed(src, "meminfo", key, &kb))
        return false;
    *bytes = kb * 1024;
    return true;
}

uint64_t nodestats_mem_total(const struct nodestats_src *src)
{
    uint64_t total = 0;

    return meminfo(src, "MemTotal", &total) ? total : 0;
}

static void read_cpu(const struct nodestats_src *src, int64_t now_ms, struct ks_node *n)
{
    FILE *f = open_proc(src, "stat");
    char line[512];
    uint64_t t[7] = {0}; /* user nice system idle iowait irq softirq */
    unsigned long long btime;

    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "cpu ", 4) &&
            sscanf(line + 4,
                   "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                   " %" SCNu64,
                   &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6]) == 7 &&
            src->clk_tck > 0) {
            uint64_t ticks = t[0] + t[1] + t[2] + t[5] + t[6];
            n->cpu = (struct ks_cpu){.time_ms = now_ms};
            n->cpu.usage_ns = ticks * (1000000000u / (uint64_t)src->clk_tck);
            n->has_cpu = true;
        } else if (!strncmp(line, "btime ", 6) && sscanf(line + 6, "%llu", &btime) == 1) {
            n->start_ms = (int64_t)btime * 1000;
        }
    }
    fclose(f);
}

static void read_mem(const struct nodestats_src *src, int64_t now_ms, struct ks_node *n)
{
    uint64_t total, free_, inactive = 0;
    struct ks_mem *m = &n->mem;

    if (!meminfo(src, "MemTotal", &total) || !meminfo(src, "MemFree", &free_) || free_ > total)
        return;
    meminfo(src, "Inactive(file)", &inactive);
    *m = (struct ks_mem){.time_ms = now_ms, .usage = total - free_};
    m->working_set = m->usage > inactive ? m->usage - inactive : 0;
    m->available = total - m->working_set;
    m->has_available = true;
    m->has_rss = meminfo(src, "AnonPages", &m->rss);
    m->has_faults = keyed(src, "vmstat", "pgfault", &m->page_faults) &&
                    keyed(src, "vmstat", "pgmajfault", &m->major_page_faults);
    n->has_mem = true;
}

/* cadvisor's ignoredDevicePrefixes */
static bool ignored_dev(const char *name)
{
    static const char *const prefixes[] = {"lo", "veth", "docker", "nerdctl"};
    size_t i;

    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
            return true;
    return false;
}

/* One /proc/net/dev line into i; false: a header or a line that does not parse. */
static bool dev_line(char *line, struct ks_iface *i)
{
    char *colon = strchr(line, ':'), *name = line;
    uint64_t v[16];

    if (!colon)
        return false;
    *colon = '\0';
    while (*name == ' ')
        name++;
    if (strlen(name) >= sizeof(i->name) ||
        sscanf(colon + 1,
               "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
               " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
               &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10]) != 11)
        return false;
    snprintf(i->name, sizeof(i->name), "%s", name);
    i->rx_bytes = v[0];
    i->rx_errors = v[2];
    i->tx_bytes = v[8];
    i->tx_errors = v[10];
    return true;
}

static int read_net(const struct nodestats_src *src, int64_t now_ms, struct ks_node *n)
{
    FILE *f = open_proc(src, "net/dev");
    char line[512];
    struct ks_net *net = &n->net;
    size_t cap = 0;

    net->def = -1;
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        struct ks_iface i;
        if (!dev_line(line, &i) || ignored_dev(i.name))
            continue;
        if (net->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct ks_iface *ifs = kedge_realloc(net->ifs, ncap * sizeof(*ifs));
            if (!ifs) {
                fclose(f);
                return -ENOMEM;
            }
            net->ifs = ifs;
            cap = ncap;
        }
        if (!strcmp(i.name, "eth0"))
            net->def = (int)net->n;
        net->ifs[net->n++] = i;
    }
    fclose(f);
    net->time_ms = now_ms;
    n->has_net = true;
    return 0;
}

static bool read_fs(const char *path, int64_t now_ms, bool used, struct ks_fs *fs)
{
    struct statvfs v;

    if (!path || statvfs(path, &v) < 0)
        return false;
    *fs = (struct ks_fs){.time_ms = now_ms};
    fs->capacity = (uint64_t)v.f_blocks * v.f_frsize;
    fs->available = (uint64_t)v.f_bavail * v.f_frsize;
    fs->used = (uint64_t)(v.f_blocks - v.f_bfree) * v.f_frsize;
    fs->has_used = used;
    fs->inodes = v.f_files;
    fs->inodes_free = v.f_ffree;
    fs->inodes_used = v.f_files - v.f_ffree;
    return true;
}

static void read_rlimit(const struct nodestats_src *src, int64_t now_ms, struct ks_node *n)
{
    FILE *f = open_proc(src, "sys/kernel/pid_max");
    long long maxpid = -1, running, total = -1;

    if (f) {
        if (fscanf(f, "%lld", &maxpid) != 1)
            maxpid = -1;
        fclose(f);
    }
    f = open_proc(src, "loadavg");
    if (f) { /* "0.00 0.01 0.05 2/232 11556": runnable/total tasks */
        if (fscanf(f, "%*s %*s %*s %lld/%lld", &running, &total) != 2)
            total = -1;
        fclose(f);
    }
    n->rlimit = (struct ks_rlimit){.time_ms = now_ms, .maxpid = maxpid, .curproc = total};
    n->has_rlimit = maxpid >= 0 || total >= 0;
}

int nodestats_read(const struct nodestats_src *src, int64_t now_ms, bool cpu_and_memory,
                   struct ks_node *n)
{
    read_cpu(src, now_ms, n);
    read_mem(src, now_ms, n);
    n->net.def = -1;
    if (cpu_and_memory)
        return 0;
    n->has_fs = read_fs(src->fs_path, now_ms, true, &n->fs);
    n->has_image_fs = read_fs(src->image_fs_path, now_ms, false, &n->image_fs);
    read_rlimit(src, now_ms, n);
    return read_net(src, now_ms, n);
}
