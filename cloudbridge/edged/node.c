/* The edge node as Kubernetes sees it: registration, status and lease, as edged's kubelet
 * does them (docs/kubeedge-wire.md §7, cloudcore-recorded/node-and-pod.jsonl).
 *
 *  - Registration: `insert` of a v1.Node at {ns}/node/{name} (the labels edgecore sets,
 *    addresses, capacity/allocatable and nodeInfo read from this machine). The reply's Node
 *    is stored under the node key, so a restarted bridge does not register twice. If the cloud
 *    already has the node (AlreadyExists, e.g. a fresh meta DB), the Node is queried instead,
 *    as kubelet does, for its UID (the lease names its owner by UID).
 *  - Status: computed every status_interval_s (10 s), sent as a nodepatch (a strategic-merge
 *    patch as a string) when it changed and at least every 5 minutes. As edgecore, the patch is
 *    stored under its own key ({ns}/nodepatch/{name}) and the Node the cloud returns under the
 *    node key. A NotFound answer (the Node was deleted in the cloud) registers the node again.
 *  - Lease: kube-node-lease/lease/{name}, inserted once, then updated every lease_interval_s
 *    (10 s); a lease the cloud refuses (a Conflict, say) is queried again before the next
 *    update.
 * Nothing of this is queued while offline: only the newest status matters, so it is sent
 * straight on the link (never through the outbox) and again as soon as the link returns.
 * {ns} is "default" for cloudcore v1.12-v1.22 and "null" for v1.23+ (node_namespace, derived
 * from cloud_version unless set).
 */
#define _GNU_SOURCE /* strptime, timegm */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "node.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/util.h"

#define REPORT_AT_LEAST_S 300
#define LEASE_DURATION_S 40
#define NODE_MONITOR_GRACE_S 40 /* kube-controller-manager's node-monitor-grace-period */

struct node {
    struct edged_deps deps;
    struct node_config cfg;
    bool stopping;
    lws_sorted_usec_list_t sul;
    bool registered, registering, lease_inflight, status_inflight, was_connected;
    bool lease_refetch; /* the cloud refused our lease: query it before the next update */
    char *node_uid;
    char *lease_json;  /* last lease object from the cloud */
    char *last_status; /* status JSON (no heartbeat times) last sent */
    int64_t last_report_s, ready_since_s;
    uint64_t next_status_ms, next_lease_ms; /* monotonic; 0 = due */
    char key_node[256], key_patch[256], key_lease[256];
};

/* ---- what this machine is --------------------------------------------------------------- */

static long long meminfo_kib(const char *field)
{
    char line[256];
    long long v = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/meminfo", "r");

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = strtoll(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

static void read_line(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");

    out[0] = '\0';
    if (!f)
        return;
    if (fgets(out, (int)n, f))
        out[strcspn(out, "\r\n")] = '\0';
    fclose(f);
}

static void os_image(char *out, size_t n)
{
    char line[256];
    FILE *f = fopen("/etc/os-release", "r");

    snprintf(out, n, "Linux");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "PRETTY_NAME=", 12)) {
            char *v = line + 12;
            v[strcspn(v, "\r\n")] = '\0';
            if (*v == '"') {
                v++;
                v[strcspn(v, "\"")] = '\0';
            }
            snprintf(out, n, "%s", v);
        }
    }
    fclose(f);
}

void node_internal_ip(char *out, size_t n)
{
    struct ifaddrs *ifa = NULL, *i;

    snprintf(out, n, "127.0.0.1");
    if (getifaddrs(&ifa) < 0)
        return;
    for (i = ifa; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) ||
            !(i->ifa_flags & IFF_UP))
            continue;
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, out,
                  (socklen_t)n);
        break;
    }
    freeifaddrs(ifa);
}

static const char *go_arch(const char *m)
{
    if (!strcmp(m, "x86_64"))
        return "amd64";
    if (!strcmp(m, "aarch64"))
        return "arm64";
    if (!strncmp(m, "arm", 3))
        return "arm";
    return m;
}

struct machine {
    long cpus;
    long long mem_kib, mem_avail_kib, disk_kib, disk_free_kib;
    char ip[64], os[256], kernel[128], arch[80], machine_id[64], boot_id[64];
};

static void read_machine(const struct node_config *cfg, struct machine *mc)
{
    struct statvfs vfs;
    struct utsname u;
    char dir[1024], *slash;

    memset(mc, 0, sizeof(*mc));
    mc->cpus = sysconf(_SC_NPROCESSORS_ONLN);
    mc->mem_kib = meminfo_kib("MemTotal");
    mc->mem_avail_kib = meminfo_kib("MemAvailable");
    snprintf(dir, sizeof(dir), "%s", cfg->db_path);
    slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    if (statvfs(dir, &vfs) == 0) {
        mc->disk_kib = (long long)(vfs.f_blocks * vfs.f_frsize / 1024);
        mc->disk_free_kib = (long long)(vfs.f_bavail * vfs.f_frsize / 1024);
    }
    snprintf(mc->ip, sizeof(mc->ip), "%s", cfg->node_ip);
    os_image(mc->os, sizeof(mc->os));
    if (uname(&u) == 0) {
        snprintf(mc->kernel, sizeof(mc->kernel), "%s", u.release);
        snprintf(mc->arch, sizeof(mc->arch), "%s", go_arch(u.machine));
    }
    read_line("/etc/machine-id", mc->machine_id, sizeof(mc->machine_id));
    read_line("/proc/sys/kernel/random/boot_id", mc->boot_id, sizeof(mc->boot_id));
}

/* ---- the Node object ---------------------------------------------------------------------- */

static void resources(struct kedge_jw *w, const char *key, const struct machine *mc, bool alloc)
{
    char v[64];

    kedge_jw_key(w, key);
    kedge_jw_obj_open(w);
    snprintf(v, sizeof(v), "%ld", mc->cpus);
    kedge_jw_kstr(w, "cpu", v);
    /* kubelet's default eviction thresholds: memory 100Mi, nodefs 10% */
    snprintf(v, sizeof(v), "%lldKi", alloc ? mc->disk_kib * 9 / 10 : mc->disk_kib);
    kedge_jw_kstr(w, "ephemeral-storage", v);
    kedge_jw_kstr(w, "hugepages-1Gi", "0");
    kedge_jw_kstr(w, "hugepages-2Mi", "0");
    snprintf(v, sizeof(v), "%lldKi", alloc ? mc->mem_kib - 102400 : mc->mem_kib);
    kedge_jw_kstr(w, "memory", v);
    kedge_jw_kstr(w, "pods", "110");
    kedge_jw_obj_close(w);
}

static void condition(struct kedge_jw *w, const char *type, bool status, const char *reason,
                      const char *message, const char *now, const char *since)
{
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "type", type);
    kedge_jw_kstr(w, "status", status ? "True" : "False");
    kedge_jw_kstr(w, "lastHeartbeatTime", now);
    kedge_jw_kstr(w, "lastTransitionTime", since);
    kedge_jw_kstr(w, "reason", reason);
    kedge_jw_kstr(w, "message", message);
    kedge_jw_obj_close(w);
}

/* status{...}: with_times false leaves out heartbeat/transition times, for change detection */
static void write_status(struct node *n, struct kedge_jw *w, const struct machine *mc,
                         bool with_times)
{
    char now[32] = "", since[32] = "";
    bool mem = mc->mem_avail_kib >= 0 && mc->mem_avail_kib < 102400;
    bool disk = mc->disk_kib > 0 && mc->disk_free_kib < mc->disk_kib / 10;

    if (with_times) {
        kedge_rfc3339((int64_t)time(NULL), now);
        kedge_rfc3339(n->ready_since_s, since);
    }
    kedge_jw_obj_open(w);
    resources(w, "capacity", mc, false);
    resources(w, "allocatable", mc, true);
    kedge_jw_key(w, "conditions");
    kedge_jw_arr_open(w);
    condition(w, "MemoryPressure", mem,
              mem ? "KubeletHasInsufficientMemory" : "KubeletHasSufficientMemory",
              mem ? "kubelet has insufficient memory available"
                  : "kubelet has sufficient memory available",
              now, since);
    condition(w, "DiskPressure", disk, disk ? "KubeletHasDiskPressure" : "KubeletHasNoDiskPressure",
              disk ? "kubelet has disk pressure" : "kubelet has no disk pressure", now, since);
    condition(w, "PIDPressure", false, "KubeletHasSufficientPID",
              "kubelet has sufficient PID available", now, since);
    condition(w, "Ready", true, "KubeletReady", "kubelet is posting ready status", now, since);
    kedge_jw_arr_close(w);
    kedge_jw_key(w, "addresses");
    kedge_jw_arr_open(w);
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "type", "InternalIP");
    kedge_jw_kstr(w, "address", mc->ip);
    kedge_jw_obj_close(w);
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "type", "Hostname");
    kedge_jw_kstr(w, "address", n->cfg.node_name);
    kedge_jw_obj_close(w);
    kedge_jw_arr_close(w);
    kedge_jw_key(w, "daemonEndpoints");
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "kubeletEndpoint");
    kedge_jw_obj_open(w);
    kedge_jw_kint(w, "Port", 10350);
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
    kedge_jw_key(w, "nodeInfo");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "machineID", mc->machine_id);
    kedge_jw_kstr(w, "systemUUID", mc->machine_id);
    kedge_jw_kstr(w, "bootID", mc->boot_id);
    kedge_jw_kstr(w, "kernelVersion", mc->kernel);
    kedge_jw_kstr(w, "osImage", mc->os);
    /* kubelet's <runtime>://<version>; before the engine answered, as kubelet with a remote
     * runtime it cannot name yet */
    kedge_jw_kstr(w, "containerRuntimeVersion",
                  n->cfg.runtime_version[0] ? n->cfg.runtime_version : "remote://unknown");
    kedge_jw_kstr(w, "kubeletVersion", n->cfg.kubelet_version);
    kedge_jw_kstr(w, "kubeProxyVersion", "");
    kedge_jw_kstr(w, "operatingSystem", "linux");
    kedge_jw_kstr(w, "architecture", mc->arch);
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
}

static int node_object(struct node *n, const struct machine *mc, struct kedge_buf *b)
{
    const char *name = n->cfg.node_name;
    struct kedge_jw w;

    kedge_jw_init(&w, b);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "metadata");
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "name", name);
    kedge_jw_key(&w, "creationTimestamp");
    kedge_jw_null(&w);
    kedge_jw_key(&w, "labels");
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "beta.kubernetes.io/arch", mc->arch);
    kedge_jw_kstr(&w, "beta.kubernetes.io/os", "linux");
    kedge_jw_kstr(&w, "kubernetes.io/arch", mc->arch);
    kedge_jw_kstr(&w, "kubernetes.io/hostname", name);
    kedge_jw_kstr(&w, "kubernetes.io/os", "linux");
    kedge_jw_kstr(&w, "node-role.kubernetes.io/agent", "");
    kedge_jw_kstr(&w, "node-role.kubernetes.io/edge", "");
    kedge_jw_obj_close(&w);
    kedge_jw_obj_close(&w);
    kedge_jw_key(&w, "spec");
    kedge_jw_obj_open(&w);
    kedge_jw_obj_close(&w);
    kedge_jw_key(&w, "status");
    write_status(n, &w, mc, true);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

/* ---- talking to the edge controller ------------------------------------------------------- */

/* Ask the cloud (edged/meta/op on resource); *inflight is set while fn's answer is awaited,
 * so that no second request of the kind goes out meanwhile. */
static int ask_cloud(struct node *n, const char *op, const char *resource, const char *content,
                     size_t len, bool as_string, edged_reply_fn fn, bool *inflight)
{
    int rc = edged_deps_request(&n->deps, (int)n->cfg.remote_timeout_ms, op, resource, content, len,
                                as_string, fn, n);

    if (rc == 0)
        *inflight = true;
    return rc;
}

/* RFC 3339 in UTC as Go writes a metav1.Time or MicroTime ("...T12:06:53Z",
 * "...T12:06:53.123456Z") -> Unix seconds, or -1. */
static int64_t parse_rfc3339(const struct kedge_jval *v)
{
    struct tm tm;
    const char *end;

    if (!v || v->type != KEDGE_JSTR)
        return -1;
    memset(&tm, 0, sizeof(tm));
    end = strptime(v->str, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end && *end == '.')
        end += 1 + strspn(end + 1, "0123456789");
    return end && !strcmp(end, "Z") ? (int64_t)timegm(&tm) : -1;
}

/* When this node became Ready, from what a previous run stored: kubelet keeps a condition's
 * lastTransitionTime while its status stays the same. The stored Node says Ready since T; it
 * stayed so only if the stored lease was renewed less than the node-monitor grace period ago.
 * Otherwise the controller has marked the node Unknown meanwhile, and Ready again is a
 * transition: now. */
static int64_t ready_since(const char *node_json, const char *lease_json, int64_t now)
{
    struct kedge_jdoc *node = NULL, *lease = NULL;
    const struct kedge_jval *c;
    int64_t since = now, renewed;

    if (!node_json || !lease_json || kedge_json_parse(node_json, strlen(node_json), &node) < 0 ||
        kedge_json_parse(lease_json, strlen(lease_json), &lease) < 0)
        goto out;
    renewed =
        parse_rfc3339(kedge_json_get(kedge_json_get(kedge_jdoc_root(lease), "spec"), "renewTime"));
    if (renewed < 0 || now - renewed >= NODE_MONITOR_GRACE_S)
        goto out;
    c = kedge_json_get(kedge_json_get(kedge_jdoc_root(node), "status"), "conditions");
    for (c = c && c->type == KEDGE_JARR ? c->child : NULL; c; c = c->next) {
        const struct kedge_jval *type = kedge_json_get(c, "type");
        const struct kedge_jval *status = kedge_json_get(c, "status");
        int64_t was = parse_rfc3339(kedge_json_get(c, "lastTransitionTime"));

        if (type && type->type == KEDGE_JSTR && !strcmp(type->str, "Ready")) {
            if (status && status->type == KEDGE_JSTR && !strcmp(status->str, "True") && was >= 0 &&
                was <= now)
                since = was;
            break;
        }
    }
out:
    kedge_jdoc_free(node);
    kedge_jdoc_free(lease);
    return since;
}

static char *uid_of(const char *json)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *uid;
    char *out = NULL;

    if (json && kedge_json_parse(json, strlen(json), &doc) == 0) {
        uid = kedge_json_get(kedge_json_get(kedge_jdoc_root(doc), "metadata"), "uid");
        if (uid && uid->type == KEDGE_JSTR)
            out = kedge_strndup(uid->str, uid->len);
    }
    kedge_jdoc_free(doc);
    return out;
}

/* The Node the cloud returned: its UID, stored under the node key (edged does this with
 * the objects MetaManager hands it back). obj: taken. */
static void adopt_node(struct node *n, char *obj)
{
    char *uid = uid_of(obj);

    if (uid) {
        kedge_free(n->node_uid);
        n->node_uid = uid;
    }
    (void)n->deps.store_put(n->deps.ctx, n->key_node, obj, strlen(obj));
    kedge_free(obj);
}

/* The object of the cloud's answer m to one of our requests (NULL: err, or *reason the
 * cloud's refusal). */
static char *answer_object(struct node *n, const struct kedge_msg *m, int err, const char **reason)
{
    *reason = NULL;
    return err ? NULL : n->deps.object_of(n->deps.ctx, m, reason);
}

/* For a log line: why an answer brought no object. */
static const char *no_object_why(int err, const char *reason)
{
    return err ? kedge_strerror(err) : reason ? reason : "no object";
}

/* The lease we hold is not the cloud's any more: the next renewal inserts a new one. */
static void forget_lease(struct node *n)
{
    kedge_free(n->lease_json);
    n->lease_json = NULL;
    n->lease_refetch = false;
}

static void fetched(void *ctx, const struct kedge_msg *m, int err)
{
    struct node *n = ctx;
    const char *reason;
    char *obj = answer_object(n, m, err, &reason);

    n->registering = false;
    if (!obj) {
        kedge_log(KEDGE_LOG_WARN,
                  "node: the cloud has node %s but did not return it (%s); "
                  "trying again",
                  n->cfg.node_name, no_object_why(err, reason));
        return;
    }
    adopt_node(n, obj);
    n->registered = true;
    kedge_log(KEDGE_LOG_NOTICE, "node: %s was registered already; using the cloud's Node",
              n->cfg.node_name);
}

static void registered(void *ctx, const struct kedge_msg *m, int err)
{
    struct node *n = ctx;
    const char *reason;
    char *obj = answer_object(n, m, err, &reason);

    n->registering = false;
    if (err) {
        kedge_log(KEDGE_LOG_WARN, "node: registration got no answer (%s)", kedge_strerror(err));
        return;
    }
    if (!obj && reason && !strcmp(reason, "AlreadyExists")) {
        /* kubelet's tryRegisterWithAPIServer: get the existing Node instead */
        (void)ask_cloud(n, "query", n->key_node, "null", 4, false, fetched, &n->registering);
        return;
    }
    if (!obj) {
        kedge_log(KEDGE_LOG_WARN, "node: the cloud refused the registration (%s)",
                  no_object_why(err, reason));
        return;
    }
    adopt_node(n, obj);
    n->registered = true;
    kedge_log(KEDGE_LOG_NOTICE, "node: %s registered with the cloud", n->cfg.node_name);
}

static void register_node(struct node *n)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct machine mc;

    read_machine(&n->cfg, &mc);
    if (node_object(n, &mc, &b) == 0)
        (void)ask_cloud(n, "insert", n->key_node, b.data, b.len, false, registered,
                        &n->registering);
    kedge_buf_cleanup(&b);
}

static void lease_done(void *ctx, const struct kedge_msg *m, int err)
{
    struct node *n = ctx;
    const char *reason;
    char *obj = answer_object(n, m, err, &reason);

    n->lease_inflight = false;
    if (obj) {
        kedge_free(n->lease_json);
        n->lease_json = obj;
        n->lease_refetch = false;
    } else if (reason && !strcmp(reason, "NotFound")) {
        forget_lease(n); /* deleted in the cloud */
    } else if (reason) {
        /* AlreadyExists on insert, Conflict on update: ours is not the cloud's lease */
        n->lease_refetch = true;
    }
}

/* Insert the lease once, then update its renewTime every 10 s (coordination/v1). */
static void renew_lease(struct node *n)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char now[40];
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(now, 24, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(now + strlen(now), sizeof(now) - strlen(now), ".%06ldZ", ts.tv_nsec / 1000);
    if (n->lease_refetch) {
        (void)ask_cloud(n, "query", n->key_lease, "null", 4, false, lease_done, &n->lease_inflight);
    } else if (!n->lease_json) {
        (void)kedge_buf_printf(&b,
                               "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"kube-node-lease\","
                               "\"creationTimestamp\":null,\"ownerReferences\":[{\"apiVersion\":"
                               "\"v1\",\"kind\":\"Node\",\"name\":\"%s\",\"uid\":\"%s\"}]},"
                               "\"spec\":{\"holderIdentity\":\"%s\",\"leaseDurationSeconds\":%d,"
                               "\"renewTime\":\"%s\"}}",
                               n->cfg.node_name, n->cfg.node_name, n->node_uid ? n->node_uid : "",
                               n->cfg.node_name, LEASE_DURATION_S, now);
        if (b.data)
            (void)ask_cloud(n, "insert", n->key_lease, b.data, b.len, false, lease_done,
                            &n->lease_inflight);
    } else {
        /* the last lease from the cloud with a new renewTime (resourceVersion kept) */
        const char *rt = strstr(n->lease_json, "\"renewTime\":\"");
        if (rt) {
            const char *end = strchr(rt + 13, '"');
            if (end &&
                kedge_buf_append(&b, n->lease_json, (size_t)(rt + 13 - n->lease_json)) == 0 &&
                kedge_buf_puts(&b, now) == 0 && kedge_buf_puts(&b, end) == 0)
                (void)ask_cloud(n, "update", n->key_lease, b.data, b.len, false, lease_done,
                                &n->lease_inflight);
        } else {
            kedge_free(n->lease_json);
            n->lease_json = NULL;
        }
    }
    kedge_buf_cleanup(&b);
}

static void status_done(void *ctx, const struct kedge_msg *m, int err)
{
    struct node *n = ctx;
    const char *reason;
    char *obj = answer_object(n, m, err, &reason);

    n->status_inflight = false;
    if (obj) {
        adopt_node(n, obj); /* the patched Node, under the node key (not the patch's) */
        return;
    }
    kedge_free(n->last_status); /* send it again next time */
    n->last_status = NULL;
    if (reason && !strcmp(reason, "NotFound")) {
        kedge_log(KEDGE_LOG_WARN, "node: the cloud has no node %s any more; registering again",
                  n->cfg.node_name);
        n->registered = false;
        forget_lease(n); /* it names the old Node's UID */
    } else if (err != -ETIMEDOUT && err != -ECANCELED) {
        kedge_log(KEDGE_LOG_WARN, "node: status patch refused (%s)", no_object_why(err, reason));
    }
}

/* nodepatch: a strategic-merge patch of the status, as a string (docs/kubeedge-wire.md §5.1) */
static void report_status(struct node *n)
{
    struct kedge_buf plain = KEDGE_BUF_INIT, patch = KEDGE_BUF_INIT;
    struct kedge_jw w;
    struct machine mc;
    int64_t now = (int64_t)time(NULL);

    read_machine(&n->cfg, &mc);
    kedge_jw_init(&w, &plain);
    write_status(n, &w, &mc, false);
    if (kedge_jw_finish(&w) < 0)
        goto out;
    if (n->last_status && !strcmp(n->last_status, plain.data) &&
        now - n->last_report_s < REPORT_AT_LEAST_S)
        goto out;
    kedge_jw_init(&w, &patch);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "status");
    write_status(n, &w, &mc, true);
    kedge_jw_obj_close(&w);
    if (kedge_jw_finish(&w) < 0)
        goto out;
    /* edgecore's processPatch: the patch is stored under its own key, then sent */
    (void)n->deps.store_put(n->deps.ctx, n->key_patch, patch.data, patch.len);
    if (ask_cloud(n, "patch", n->key_patch, patch.data, patch.len, true, status_done,
                  &n->status_inflight) == 0) {
        n->last_report_s = now;
        kedge_free(n->last_status);
        n->last_status = kedge_buf_take(&plain, NULL);
    }
out:
    kedge_buf_cleanup(&plain);
    kedge_buf_cleanup(&patch);
}

/* Once a second, or sooner when the status or lease falls due. */
static void tick(lws_sorted_usec_list_t *sul)
{
    struct node *n = lws_container_of(sul, struct node, sul);
    bool up = n->deps.connected(n->deps.ctx);
    uint64_t now = kedge_now_ms(), delay_ms = 1000;

    if (up && !n->was_connected) {
        kedge_free(n->last_status); /* the link is back: the newest status goes now */
        n->last_status = NULL;
        n->next_status_ms = n->next_lease_ms = 0;
    }
    n->was_connected = up;
    if (up && !n->registered && !n->registering)
        register_node(n);
    if (up && n->registered) {
        if (!n->lease_inflight && now >= n->next_lease_ms) {
            renew_lease(n);
            n->next_lease_ms = now + (uint64_t)n->cfg.lease_interval_s * 1000;
        }
        if (!n->status_inflight && now >= n->next_status_ms) {
            report_status(n);
            n->next_status_ms = now + (uint64_t)n->cfg.status_interval_s * 1000;
        }
        if (!n->lease_inflight && n->next_lease_ms > now && n->next_lease_ms - now < delay_ms)
            delay_ms = n->next_lease_ms - now;
        if (!n->status_inflight && n->next_status_ms > now && n->next_status_ms - now < delay_ms)
            delay_ms = n->next_status_ms - now;
    }
    if (!n->stopping)
        lws_sul_schedule(n->deps.lws, 0, &n->sul, tick, (lws_usec_t)delay_ms * 1000);
}

int node_new(const struct edged_deps *deps, const struct node_config *cfg, struct node **out)
{
    struct node *n = kedge_calloc(1, sizeof(*n));
    char *stored = NULL;
    const char *ns = cfg->node_namespace;

    *out = NULL;
    if (!n)
        return -ENOMEM;
    n->deps = *deps;
    n->cfg = *cfg;
    n->ready_since_s = (int64_t)time(NULL);
    snprintf(n->key_node, sizeof(n->key_node), "%s/node/%s", ns, cfg->node_name);
    snprintf(n->key_patch, sizeof(n->key_patch), "%s/nodepatch/%s", ns, cfg->node_name);
    snprintf(n->key_lease, sizeof(n->key_lease), "kube-node-lease/lease/%s", cfg->node_name);
    /* registered before (MetaManager kept the cloud's Node): no second registration */
    if (deps->store_get(deps->ctx, n->key_node, &stored) == 0) {
        n->node_uid = uid_of(stored);
        n->registered = n->node_uid != NULL;
    }
    if (deps->store_get(deps->ctx, n->key_lease, &n->lease_json) < 0)
        n->lease_json = NULL;
    n->ready_since_s = ready_since(stored, n->lease_json, n->ready_since_s);
    kedge_free(stored);
    *out = n;
    tick(&n->sul);
    return 0;
}

void node_stop(struct node *n)
{
    if (!n)
        return;
    n->stopping = true;
    lws_sul_cancel(&n->sul);
}

void node_free(struct node *n)
{
    if (!n)
        return;
    kedge_free_all(n->node_uid, n->lease_json, n->last_status, n);
}
