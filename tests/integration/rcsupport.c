/* rcsupport.c: the real-cloud tier's edge node, and the observers of the cloud, the engine and
 * the plugin (rcsupport.h). The HTTP and JSON helpers are in rcobserve.c. */
#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridgectl.h"
#include "cloudctl.h"
#include "enginectl.h"
#include "harness.h"
#include "kedge/ke.h"
#include "rcsupport.h"
#include "testsupport.h"

#define APPLY_MS 30000
#define JOIN_MS 60000
#define CTL_MS 10000

/* ---- the edge node --------------------------------------------------------------------------- */

/* kedge-bridge join with the cloud's token: the node's certificates into <bridge dir>/node. */
static int join(struct rc *e, char *certs, size_t len)
{
    struct kedge_buf out = KEDGE_BUF_INIT;
    char conf[PATH_MAX], ws[16], https[16];
    const char *argv[] = {KEDGE_BRIDGE_PATH,
                          "join",
                          "--cloud",
                          "127.0.0.1",
                          "--token",
                          cloudctl_env(e->cloud, "CC_TOKEN"),
                          "--node",
                          e->node,
                          "--certs",
                          certs,
                          "-c",
                          conf,
                          "--port",
                          ws,
                          "--https-port",
                          https,
                          NULL};
    int rc;

    snprintf(certs, len, "%s/node", bridgectl_dir(e->bridge));
    snprintf(conf, sizeof(conf), "%s/join.conf", bridgectl_dir(e->bridge));
    snprintf(ws, sizeof(ws), "%ld", cloudctl_env_long(e->cloud, "CC_WS_PORT"));
    snprintf(https, sizeof(https), "%ld", cloudctl_env_long(e->cloud, "CC_HTTPS_PORT"));
    rc = cloudctl_run(argv, NULL, NULL, &out, &out, kh_scale_ms(JOIN_MS));
    if (rc != 0)
        fprintf(stderr, "rcsupport: kedge-bridge join ended with %d:\n%s\n", rc,
                out.data ? out.data : "");
    kedge_buf_cleanup(&out);
    return rc == 0 ? 0 : -1;
}

static int bset(struct rc *e, const char *key, const char *value)
{
    return bridgectl_set(e->bridge, key, value);
}

static int bset_long(struct rc *e, const char *key, long value)
{
    return bridgectl_set_long(e->bridge, key, value);
}

static int configure_bridge(struct rc *e, const char *certs)
{
    char ca[PATH_MAX + 32], cert[PATH_MAX + 32], key[PATH_MAX + 32];
    int rc = 0;

    snprintf(ca, sizeof(ca), "%s/ca/rootCA.crt", certs);
    snprintf(cert, sizeof(cert), "%s/certs/server.crt", certs);
    snprintf(key, sizeof(key), "%s/certs/server.key", certs);
    rc |= bset(e, "node_name", e->node);
    rc |= bset(e, "cloud_host", "127.0.0.1");
    /* the API server dials the node's InternalIP for logs/exec, and cloudStream's stream port
     * listens on 127.0.0.1 only */
    rc |= bset(e, "node_ip", "127.0.0.1");
    if (cloudctl_env_long(e->cloud, "CC_TUNNEL_PORT") > 0) { /* cloudStream's tunnel */
        char server[32];

        snprintf(server, sizeof(server), "127.0.0.1:%ld",
                 cloudctl_env_long(e->cloud, "CC_TUNNEL_PORT"));
        rc |= bset(e, "stream_server", server);
    }
    rc |= bset_long(e, "cloud_port", cloudctl_env_long(e->cloud, "CC_WS_PORT"));
    rc |= bset_long(e, "cloud_https_port", cloudctl_env_long(e->cloud, "CC_HTTPS_PORT"));
    rc |= bset(e, "tls_ca_file", ca);
    rc |= bset(e, "tls_cert_file", cert);
    rc |= bset(e, "tls_key_file", key);
    rc |= bset_long(e, "broker_port", kh_broker_port(e->broker));
    /* reconnect quickly after the outage scenario's cloudcore restart */
    rc |= bset_long(e, "backoff_initial_ms", 200);
    rc |= bset_long(e, "backoff_max_ms", 2000);
    if (e->engine) /* else bridgectl's default: none */
        rc |= bset(e, "engine_socket", enginectl_socket(e->engine));
    rc |= bset(e, "pod_infra_image", "localhost/pause:edge");
    rc |= bset_long(e, "pod_resync_s", 2);
    rc |= bset(e, "log_level", "info");
    return rc ? -1 : 0;
}

int rc_setup(struct rc *e, const char *cloudcore_dir, const char *bridge_password)
{
    struct bridgectl_opts bo = {.password = bridge_password};
    struct kh_broker_opts ko = {0};
    struct kh_opt popts[3] = {{"node_name", e->node}, {NULL, NULL}, {NULL, NULL}};
    char certs[PATH_MAX];
    int rc;

    snprintf(e->node, sizeof(e->node), "kedge-rc-%d", (int)getpid());
    snprintf(e->password, sizeof(e->password), "%s", bridge_password);
    if ((rc = cloudctl_start(cloudcore_dir, &e->cloud)) < 0) {
        fprintf(stderr, "rcsupport: the real cloud did not come up (%d)\n", rc);
        return -1;
    }
    if (!e->no_engine && (rc = enginectl_start(&e->engine)) < 0) {
        fprintf(stderr, "rcsupport: the container engine did not start (%d)\n", rc);
        return -1;
    }
    if (e->engine && enginectl_claim_node(e->engine, e->node) < 0)
        return -1;
    if ((rc = bridgectl_new(&bo, &e->bridge)) < 0) {
        fprintf(stderr, "rcsupport: bridgectl_new: %d\n", rc);
        return -1;
    }
    if (join(e, certs, sizeof(certs)) < 0)
        return -1;
    popts[1].key = "bridge_password_file";
    popts[1].value = bridgectl_password_path(e->bridge);
    ko.plugin_opts = popts;
    e->broker = kh_broker_start(&ko);
    if (!e->broker) {
        fprintf(stderr, "rcsupport: the broker with kedge_plugin.so did not start\n");
        return -1;
    }
    if (configure_bridge(e, certs) < 0) {
        fprintf(stderr, "rcsupport: cannot write the bridge's config\n");
        return -1;
    }
    e->t_bridge = kt_now_ms();
    if ((rc = bridgectl_start(e->bridge)) < 0) {
        fprintf(stderr, "rcsupport: kedge-bridge did not start (%d)\n", rc);
        return -1;
    }
    printf("test_realcloud: node %s, cloud in %s (wss :%ld, https :%ld)\n", e->node,
           cloudctl_run_dir(e->cloud), cloudctl_env_long(e->cloud, "CC_WS_PORT"),
           cloudctl_env_long(e->cloud, "CC_HTTPS_PORT"));
    return 0;
}

bool rc_edge_up(const struct rc *e)
{
    return e->cloud && (e->engine || e->no_engine) && e->broker && e->bridge && e->t_bridge > 0;
}

int rc_teardown(struct rc *e)
{
    int bst = 0, mst = 0, est = 0, cst = 0;

    if (e->bridge && bridgectl_pid(e->bridge))
        bst = bridgectl_stop(e->bridge);
    bridgectl_free(e->bridge);
    if (e->broker)
        mst = kh_broker_pid(e->broker) ? kh_broker_stop(e->broker) : 0;
    kh_broker_free(e->broker);
    if (e->engine)
        est = enginectl_stop(e->engine);
    enginectl_free(e->engine);
    if (e->cloud)
        cst = cloudctl_down(e->cloud);
    cloudctl_free(e->cloud);
    memset(e, 0, sizeof(*e));
    if (bst || mst || est || cst)
        fprintf(stderr,
                "rcsupport: exit statuses: kedge-bridge %d, mosquitto %d, engine stop %d, "
                "down.sh %d\n",
                bst, mst, est, cst);
    return bst || mst || est || cst ? -1 : 0;
}

/* What explains a timeout: the bridge's log and cloudcore's. */
static void dump_logs(struct rc *e)
{
    bridgectl_dump_log(e->bridge);
    cloudctl_dump_log(e->cloud, "cloudcore", 60);
}

/* ---- the cloud (kubectl) --------------------------------------------------------------------- */

struct kedge_jdoc *rc_kget(struct rc *e, const char *kind, const char *name)
{
    struct kedge_buf out = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;

    if (cloudctl_kubectl(e->cloud, NULL, &out, NULL, "get", kind, name, "-o", "json", NULL) != 0 ||
        kedge_json_parse(out.data ? out.data : "", out.len, &doc) != 0)
        doc = NULL;
    kedge_buf_cleanup(&out);
    return doc;
}

static struct kedge_jdoc *klist(struct rc *e, const char *kind, const char *selector)
{
    struct kedge_buf out = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;

    if (cloudctl_kubectl(e->cloud, NULL, &out, NULL, "get", kind, "-l", selector, "-o", "json",
                         NULL) != 0 ||
        kedge_json_parse(out.data ? out.data : "", out.len, &doc) != 0)
        doc = NULL;
    kedge_buf_cleanup(&out);
    return doc;
}

void rc_apply(struct rc *e, const char *fmt, ...)
{
    struct kedge_buf err = KEDGE_BUF_INIT;
    int64_t deadline = kt_now_ms() + kh_scale_ms(APPLY_MS);
    char *yaml = NULL;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    ck_assert_int_gt(vasprintf(&yaml, fmt, ap), 0);
    va_end(ap);
    while ((rc = cloudctl_kubectl(e->cloud, yaml, NULL, &err, "apply", "-f", "-", NULL)) != 0 &&
           kt_now_ms() < deadline) {
        kedge_buf_reset(&err);
        rc_sleep_ms(500);
    }
    ck_assert_msg(rc == 0, "kubectl apply ended with %d: %s\n%s", rc, err.data ? err.data : "",
                  yaml);
    free(yaml);
    kedge_buf_cleanup(&err);
}

void rc_wait_node_ready(struct rc *e, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + timeout_ms;
    char last[256] = "no Node object";

    for (;;) {
        struct kedge_jdoc *doc = rc_kget(e, "node", e->node);
        const struct kedge_jval *c = doc ? rc_condition(kedge_jdoc_root(doc), "Ready") : NULL;
        bool ready = c && !strcmp(rc_str(c, "status"), "True");
        if (c)
            snprintf(last, sizeof(last), "Ready=%s (%s: %s)", rc_str(c, "status"),
                     rc_str(c, "reason"), rc_str(c, "message"));
        kedge_jdoc_free(doc);
        if (ready)
            return;
        if (kt_now_ms() >= deadline)
            dump_logs(e);
        ck_assert_msg(kt_now_ms() < deadline, "node %s not Ready: %s", e->node, last);
        rc_sleep_ms(500);
    }
}

void rc_wall_now(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    char sec[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%06ldZ", sec, ts.tv_nsec / 1000);
}

void rc_wait_lease_renewed(struct rc *e, const char *since, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + timeout_ms;
    char last[64] = "no Lease";

    for (;;) {
        struct kedge_buf out = KEDGE_BUF_INIT;
        struct kedge_jdoc *doc = NULL;
        bool ok = false;
        if (cloudctl_kubectl(e->cloud, NULL, &out, NULL, "-n", "kube-node-lease", "get", "lease",
                             e->node, "-o", "json", NULL) == 0 &&
            kedge_json_parse(out.data ? out.data : "", out.len, &doc) == 0) {
            const char *renew = rc_str(rc_path(kedge_jdoc_root(doc), "spec"), "renewTime");
            snprintf(last, sizeof(last), "%s", renew);
            ok = strcmp(renew, since) > 0; /* the same fixed-width RFC 3339 form, UTC */
        }
        kedge_jdoc_free(doc);
        kedge_buf_cleanup(&out);
        if (ok)
            return;
        if (kt_now_ms() >= deadline)
            dump_logs(e);
        ck_assert_msg(kt_now_ms() < deadline, "node %s: lease renewTime %s, not after %s", e->node,
                      last, since);
        rc_sleep_ms(500);
    }
}

static bool pod_running_here(struct rc *e, const struct kedge_jval *pod)
{
    return !strcmp(rc_str(rc_path(pod, "spec"), "nodeName"), e->node) &&
           !strcmp(rc_str(rc_path(pod, "status"), "phase"), "Running") &&
           *rc_str(rc_path(pod, "status"), "podIP") && !rc_path(pod, "metadata.deletionTimestamp");
}

void rc_wait_pod_running(struct rc *e, const char *selector, int timeout_ms, char *name,
                         size_t name_len, char *uid, size_t uid_len)
{
    int64_t deadline = kt_now_ms() + timeout_ms;
    struct kedge_buf last = KEDGE_BUF_INIT;

    for (;;) {
        struct kedge_jdoc *doc = klist(e, "pods", selector);
        const struct kedge_jval *items = doc ? rc_path(kedge_jdoc_root(doc), "items") : NULL;
        bool ok = items && items->n == 1 && pod_running_here(e, items->child);
        kedge_buf_reset(&last);
        for (const struct kedge_jval *p = items ? items->child : NULL; p; p = p->next)
            (void)kedge_buf_printf(
                &last, "%s on \"%s\": %s %s; ", rc_str(rc_path(p, "metadata"), "name"),
                rc_str(rc_path(p, "spec"), "nodeName"), rc_str(rc_path(p, "status"), "phase"),
                rc_str(rc_path(p, "status"), "reason"));
        if (ok) {
            snprintf(name, name_len, "%s", rc_str(rc_path(items->child, "metadata"), "name"));
            snprintf(uid, uid_len, "%s", rc_str(rc_path(items->child, "metadata"), "uid"));
        }
        kedge_jdoc_free(doc);
        if (ok)
            break;
        if (kt_now_ms() >= deadline)
            dump_logs(e);
        ck_assert_msg(kt_now_ms() < deadline, "no single Running pod %s on %s: %s", selector,
                      e->node, last.data ? last.data : "no pods");
        rc_sleep_ms(500);
    }
    kedge_buf_cleanup(&last);
}

void rc_wait_pod_condition(struct rc *e, const char *pod, const char *type, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + timeout_ms;
    char last[256] = "no pod";

    for (;;) {
        struct kedge_jdoc *doc = rc_kget(e, "pod", pod);
        const struct kedge_jval *c = doc ? rc_condition(kedge_jdoc_root(doc), type) : NULL;
        bool ok = c && !strcmp(rc_str(c, "status"), "True");
        snprintf(last, sizeof(last), "%s=%s (%s)", type, c ? rc_str(c, "status") : "absent",
                 c ? rc_str(c, "reason") : "");
        kedge_jdoc_free(doc);
        if (ok)
            return;
        if (kt_now_ms() >= deadline)
            dump_logs(e);
        ck_assert_msg(kt_now_ms() < deadline, "pod %s: %s", pod, last);
        rc_sleep_ms(500);
    }
}

void rc_assert_scheduled(struct rc *e, const char *pod)
{
    struct kedge_jdoc *doc = rc_kget(e, "pod", pod), *ev = NULL;
    const struct kedge_jval *c, *items;
    char sel[256];
    bool found = false;

    ck_assert_ptr_nonnull(doc);
    c = rc_condition(kedge_jdoc_root(doc), "PodScheduled");
    ck_assert_msg(c && !strcmp(rc_str(c, "status"), "True"), "pod %s: PodScheduled not True", pod);
    snprintf(sel, sizeof(sel), "involvedObject.name=%s,reason=Scheduled", pod);
    ck_assert_int_eq(cloudctl_kubectl_json(e->cloud, &ev, "get", "events", "--field-selector", sel,
                                           "-o", "json", NULL),
                     0);
    items = rc_path(kedge_jdoc_root(ev), "items");
    for (const struct kedge_jval *i = items ? items->child : NULL; i; i = i->next) {
        const char *msg = rc_str(i, "message");
        printf("test_realcloud: event Scheduled (%s): %s\n", rc_str(i, "reportingComponent"), msg);
        found = found || strstr(msg, e->node) != NULL;
    }
    ck_assert_msg(found, "no Scheduled event naming %s for pod %s", e->node, pod);
    kedge_jdoc_free(ev);
    kedge_jdoc_free(doc);
}

bool rc_pod_phase_by_uid(struct rc *e, const char *selector, const char *uid, const char *phase)
{
    struct kedge_jdoc *doc = klist(e, "pods", selector);
    const struct kedge_jval *items = doc ? rc_path(kedge_jdoc_root(doc), "items") : NULL;
    bool ok = false;

    for (const struct kedge_jval *p = items ? items->child : NULL; p; p = p->next)
        ok = ok || (!strcmp(rc_str(rc_path(p, "metadata"), "uid"), uid) &&
                    !strcmp(rc_str(rc_path(p, "status"), "phase"), phase));
    kedge_jdoc_free(doc);
    return ok;
}

void rc_wait_no_pods(struct rc *e, const char *selector, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + timeout_ms;

    for (;;) {
        struct kedge_jdoc *doc = klist(e, "pods", selector);
        const struct kedge_jval *items = doc ? rc_path(kedge_jdoc_root(doc), "items") : NULL;
        size_t n = items ? items->n : 1;
        kedge_jdoc_free(doc);
        if (n == 0)
            return;
        if (kt_now_ms() >= deadline)
            dump_logs(e);
        ck_assert_msg(kt_now_ms() < deadline, "%zu pod(s) %s still in the cloud", n, selector);
        rc_sleep_ms(500);
    }
}

static const struct kedge_jval *twin_of(const struct kedge_jval *device, const char *prop)
{
    const struct kedge_jval *t = rc_path(device, "status.twins");

    for (t = t ? t->child : NULL; t; t = t->next)
        if (!strcmp(rc_str(t, "propertyName"), prop))
            return t;
    return NULL;
}

void rc_wait_reported(struct rc *e, const char *device, const char *value, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + timeout_ms;
    char last[64] = "no Device";

    for (;;) {
        struct kedge_jdoc *doc = rc_kget(e, "device", device);
        const struct kedge_jval *t = doc ? twin_of(kedge_jdoc_root(doc), "temperature") : NULL;
        bool ok = t && !strcmp(rc_str(rc_path(t, "reported"), "value"), value);
        if (t)
            snprintf(last, sizeof(last), "\"%s\"", rc_str(rc_path(t, "reported"), "value"));
        kedge_jdoc_free(doc);
        if (ok)
            return;
        if (kt_now_ms() >= deadline)
            dump_logs(e);
        ck_assert_msg(kt_now_ms() < deadline,
                      "Device %s: status.twins[temperature].reported.value %s, want \"%s\"", device,
                      last, value);
        rc_sleep_ms(50);
    }
}

/* ---- the engine ------------------------------------------------------------------------------ */

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

int rc_pod_containers(struct rc *e, const char *uid, char ids[][80], int max)
{
    struct kedge_jdoc *doc = NULL;
    char filter[160];
    int n = 0;

    snprintf(filter, sizeof(filter), "io.kubernetes.pod.uid=%s", uid);
    ck_assert_int_eq(enginectl_list(e->engine, filter, &doc), 0);
    for (const struct kedge_jval *c = kedge_jdoc_root(doc)->child; c; c = c->next) {
        if (ids && n < max)
            snprintf(ids[n], 80, "%s", rc_str(c, "Id"));
        n++;
    }
    kedge_jdoc_free(doc);
    if (ids)
        qsort(ids, (size_t)(n < max ? n : max), sizeof(ids[0]), cmp_id);
    return n;
}

void rc_wait_containers(struct rc *e, const char *uid, int want, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + timeout_ms;
    int n;

    while ((n = rc_pod_containers(e, uid, NULL, 0)) != want) {
        if (kt_now_ms() >= deadline)
            dump_logs(e);
        ck_assert_msg(kt_now_ms() < deadline, "pod %s: %d containers, not %d", uid, n, want);
        rc_sleep_ms(200);
    }
}

bool rc_app_labels(struct rc *e, const char *uid, const char *cname, struct kedge_buf *labels)
{
    struct kedge_jdoc *doc = NULL;
    char filter[160];
    bool found = false;

    snprintf(filter, sizeof(filter), "io.kubernetes.pod.uid=%s", uid);
    ck_assert_int_eq(enginectl_list(e->engine, filter, &doc), 0);
    for (const struct kedge_jval *c = kedge_jdoc_root(doc)->child; c; c = c->next) {
        const struct kedge_jval *l = kedge_json_get(c, "Labels");
        if (strcmp(rc_str(l, "io.kubernetes.container.name"), cname) ||
            strcmp(rc_str(c, "State"), "running"))
            continue;
        found = true;
        for (const struct kedge_jval *m = l->child; m; m = m->next)
            ck_assert_int_eq(kedge_buf_printf(labels, "%.*s=%s\n", (int)m->key_len, m->key, m->str),
                             0);
    }
    kedge_jdoc_free(doc);
    return found;
}

bool rc_has_label(const struct kedge_buf *labels, const char *key, const char *value)
{
    char line[512];
    size_t n = (size_t)snprintf(line, sizeof(line), "%s=%s\n", key, value);
    const char *p = labels->data;

    for (; p && (p = strstr(p, line)); p++)
        if (p == labels->data || p[-1] == '\n')
            return n < sizeof(line);
    return false;
}

/* ---- the edge's devices ---------------------------------------------------------------------- */

/* One $ke/ctl query as the bridge identity (what kedge-ctl does); the parsed answer. */
static struct kedge_jdoc *ke_ctl_raw(struct rc *e, const char *query, struct kh_msg *raw);

static struct kedge_jdoc *ke_ctl(struct rc *e, const char *query)
{
    return ke_ctl_raw(e, query, NULL);
}

void rc_edge_print(struct rc *e, const char *query)
{
    struct kh_msg m;

    kedge_jdoc_free(ke_ctl_raw(e, query, &m));
    printf("test_realcloud: $ke/ctl %s -> %s\n", query, m.payload);
    kh_msg_cleanup(&m);
}

static struct kedge_jdoc *ke_ctl_raw(struct rc *e, const char *query, struct kh_msg *raw)
{
    static unsigned ref;
    struct kh_client *c = kh_client_new(kh_broker_port(e->broker), "rc-ctl",
                                        KE_DEFAULT_BRIDGE_USERNAME, e->password, 5);
    struct kedge_jdoc *doc = NULL;
    char topic[64], rtopic[80];
    struct kh_msg m;

    ck_assert_ptr_nonnull(c);
    snprintf(topic, sizeof(topic), KE_CTL_PREFIX "rc-%u", ++ref);
    snprintf(rtopic, sizeof(rtopic), "%s/result", topic);
    ck_assert_int_eq(kh_client_sub(c, rtopic, 1), 1);
    ck_assert_int_eq(kh_client_pub(c, topic, query, -1, 1, false), 0);
    ck_assert_msg(kh_client_wait(c, rtopic, CTL_MS, &m) == 0, "no answer to %s", query);
    ck_assert_msg(kedge_json_parse(m.payload, (size_t)m.len, &doc) == 0, "answer: %s", m.payload);
    if (raw)
        *raw = m;
    else
        kh_msg_cleanup(&m);
    kh_client_free(c);
    return doc;
}

int rc_wait_edge_device(struct rc *e, const char *name, int timeout_ms, struct kedge_buf *ids,
                        struct kedge_buf *all)
{
    int64_t deadline = kt_now_ms() + timeout_ms;

    for (;;) {
        struct kedge_jdoc *doc = ke_ctl(e, "{\"op\":\"device_list\"}");
        const struct kedge_jval *d = rc_path(kedge_jdoc_root(doc), "devices");
        int n = 0;
        kedge_buf_reset(ids);
        kedge_buf_reset(all);
        for (d = d ? d->child : NULL; d; d = d->next) {
            const char *id = rc_str(d, "id"), *slash = strrchr(id, '/');
            ck_assert_int_eq(kedge_buf_printf(all, "%s (name %s) ", id, rc_str(d, "name")), 0);
            /* by name, or by id: either form of this device's id counts */
            if (!strcmp(rc_str(d, "name"), name) || !strcmp(id, name) ||
                (slash && !strcmp(slash + 1, name))) {
                ck_assert_int_eq(kedge_buf_printf(ids, "%s ", id), 0);
                n++;
            }
        }
        kedge_jdoc_free(doc);
        if (n > 0)
            return n;
        if (kt_now_ms() >= deadline)
            dump_logs(e);
        ck_assert_msg(kt_now_ms() < deadline, "no device %s at the edge (devices: %s)", name,
                      all->data ? all->data : "none");
        rc_sleep_ms(200);
    }
}

struct kedge_jdoc *rc_edge_twins(struct rc *e, const char *id)
{
    struct kedge_buf q = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;

    ck_assert_int_eq(kedge_buf_puts(&q, "{\"op\":\"device_get\",\"id\":"), 0);
    ck_assert_int_eq(kedge_json_escape(&q, id, strlen(id)), 0);
    ck_assert_int_eq(kedge_buf_putc(&q, '}'), 0);
    doc = ke_ctl(e, q.data);
    kedge_buf_cleanup(&q);
    return doc;
}

struct kedge_jdoc *rc_edge_status(struct rc *e)
{
    return ke_ctl(e, "{\"op\":\"status\"}");
}

int rc_run_suite(struct rc *e, const char *cloudcore_dir, const char *bridge_password, Suite *s)
{
    SRunner *sr;
    int failed;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (rc_setup(e, cloudcore_dir, bridge_password) < 0) {
        srunner_free(srunner_create(s)); /* what frees a suite */
        return -1;
    }
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
