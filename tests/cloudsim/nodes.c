/* nodes.c: the edge controller's Node objects and Kubernetes' node lifecycle controller, as far
 * as the edge (and a test) can see them.
 *
 * Owns the Node objects and everything about them; controllers.c decides which message does
 * what and writes the replies.
 *
 *  - Registration (node insert): the Node is created as the API server would (metadata.uid,
 *    resourceVersion and creationTimestamp filled in). Inserting a Node that exists is
 *    refused with AlreadyExists, as the API server's Create. Every insert counts as a
 *    registration, so a test can see that a restarted edge did not register again.
 *  - Status (nodepatch, nodestatus update, node update): applied as a strategic merge patch
 *    (smpatch.c): the lists with a patchMergeKey of "type" (status.conditions and
 *    status.addresses) merge element by element, other lists are replaced. Each change is a
 *    new resourceVersion.
 *  - Lease (insert/update from the edge): spec.renewTime is remembered. A node whose lease has
 *    not been renewed for the grace period (--node-grace-s, Kubernetes' node-monitor-grace-period
 *    of 40 s) is marked as the node lifecycle controller does: every condition status "Unknown",
 *    reason "NodeStatusUnknown", message "Kubelet stopped posting node status." (a node that
 *    never reported a Ready condition gets one, reason "NodeStatusNeverUpdated"). A renewal or a
 *    new registration starts the grace period again; the node is Ready again when its kubelet
 *    next reports Ready. The check runs whenever a node is read or written (the controller's
 *    monitor period is effectively zero), so no timer is needed.
 */
#define _GNU_SOURCE /* timegm */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"

struct simnode {
    struct simnode *next;
    char *name;
    char *json; /* the Node */
    size_t len;
    char rv[24];
    unsigned long registrations;
    char *renew_time;       /* spec.renewTime of the last lease seen, as sent */
    int64_t lease_renew_ms; /* that time in Unix ms; 0 = no lease yet */
    uint64_t probe_ms;      /* monotonic: last registration or lease renewal */
    bool marked;            /* marked Unknown since the last probe */
};

struct nodes {
    struct simnode *list;
    long grace_s;
    unsigned long long *rv_counter;
};

/* ---- JSON helpers ------------------------------------------------------------------------------
 */

/* NodeStatus lists whose patchMergeKey is "type"; others are replaced (smpatch.c). */
static const struct smp_list node_lists[] = {
    {"conditions", "type"},
    {"addresses", "type"},
    {NULL, NULL},
};

static const struct kedge_jval *elem_type(const struct kedge_jval *e)
{
    const struct kedge_jval *t = kedge_json_get_exact(e, "type", 4);

    return t && t->type == KEDGE_JSTR ? t : NULL;
}

/* out = base (JSON) merged with patch (JSON) as a Node. Returns 0, KEDGE_EPARSE, KEDGE_ESCHEMA,
 * -ENOMEM. */
static int merge_json(const char *base, size_t base_len, const char *patch, size_t patch_len,
                      struct kedge_buf *out)
{
    return smp_apply(base, base_len, patch, patch_len, node_lists, out);
}

/* "2024-05-01T10:00:00.123456Z" (RFC 3339, Go's MicroTime) -> Unix ms; -1 if it is not one. */
static int64_t parse_time_ms(const char *s)
{
    struct tm tm;
    const char *rest;
    int64_t ms = 0, scale = 100;

    memset(&tm, 0, sizeof(tm));
    rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -1;
    if (*rest == '.')
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, scale /= 10)
            ms += (*rest - '0') * scale;
    if (strcmp(rest, "Z") != 0)
        return -1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* The status of the Node's Ready condition: "True", "False", "Unknown" (none reported). */
static void ready_status(const char *json, size_t len, char *out, size_t out_len)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *conds, *c, *st;

    (void)snprintf(out, out_len, "Unknown");
    if (kedge_json_parse(json, len, &doc) < 0)
        return;
    conds = kedge_json_get_exact(kedge_json_get_exact(kedge_jdoc_root(doc), "status", 6),
                                 "conditions", 10);
    for (c = conds && conds->type == KEDGE_JARR ? conds->child : NULL; c; c = c->next) {
        const struct kedge_jval *t = elem_type(c);
        if (t && strcmp(t->str, "Ready") == 0 && (st = kedge_json_get_exact(c, "status", 6)) &&
            st->type == KEDGE_JSTR)
            (void)snprintf(out, out_len, "%s", st->str);
    }
    kedge_jdoc_free(doc);
}

/* ---- the node list -----------------------------------------------------------------------------
 */

static struct simnode *node_find(struct nodes *ns, const char *name)
{
    struct simnode *n;

    for (n = ns->list; n; n = n->next)
        if (strcmp(n->name, name) == 0)
            return n;
    return NULL;
}

static struct simnode *node_add(struct nodes *ns, const char *name)
{
    struct simnode *n = kedge_calloc(1, sizeof(*n));

    if (!n || !(n->name = kedge_strdup(name))) {
        kedge_free(n);
        return NULL;
    }
    n->next = ns->list;
    ns->list = n;
    return n;
}

/* Take buf's data as the Node's JSON, with the next resourceVersion (or rv when given). */
static int node_set(struct nodes *ns, struct simnode *n, struct kedge_buf *buf, const char *rv)
{
    size_t len;
    char *json = kedge_buf_take(buf, &len);

    if (!json)
        return -ENOMEM;
    kedge_free(n->json);
    n->json = json;
    n->len = len;
    if (rv && *rv)
        (void)snprintf(n->rv, sizeof(n->rv), "%s", rv);
    else
        (void)snprintf(n->rv, sizeof(n->rv), "%llu", ++*ns->rv_counter);
    return 0;
}

/* Apply patch (JSON text) to n's Node; a new metadata.resourceVersion, as every write. */
static int node_patch(struct nodes *ns, struct simnode *n, const char *patch, size_t len)
{
    struct kedge_buf merged = KEDGE_BUF_INIT, stamp = KEDGE_BUF_INIT, out = KEDGE_BUF_INIT;
    char rv[24];
    int rc = merge_json(n->json, n->len, patch, len, &merged);

    (void)snprintf(rv, sizeof(rv), "%llu", ++*ns->rv_counter);
    if (rc == 0)
        rc = kedge_buf_printf(&stamp, "{\"metadata\":{\"resourceVersion\":\"%s\"}}", rv);
    if (rc == 0)
        rc = merge_json(merged.data, merged.len, stamp.data, stamp.len, &out);
    if (rc == 0)
        rc = node_set(ns, n, &out, rv);
    kedge_buf_cleanup(&merged);
    kedge_buf_cleanup(&stamp);
    kedge_buf_cleanup(&out);
    return rc;
}

/* The node lifecycle controller's verdict on a node whose lease went stale. */
static void mark_unknown(struct nodes *ns, struct simnode *n)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *conds, *c, *t, *st;
    struct kedge_buf patch = KEDGE_BUF_INIT;
    struct kedge_jw w;
    char now[32];
    bool has_ready = false;
    int rc;

    kedge_rfc3339_now(now);
    if (kedge_json_parse(n->json, n->len, &doc) < 0)
        return;
    conds = kedge_json_get_exact(kedge_json_get_exact(kedge_jdoc_root(doc), "status", 6),
                                 "conditions", 10);
    kedge_jw_init(&w, &patch);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "status");
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "conditions");
    kedge_jw_arr_open(&w);
    for (c = conds && conds->type == KEDGE_JARR ? conds->child : NULL; c; c = c->next) {
        if (!(t = elem_type(c)))
            continue;
        has_ready = has_ready || strcmp(t->str, "Ready") == 0;
        st = kedge_json_get_exact(c, "status", 6);
        if (st && st->type == KEDGE_JSTR && strcmp(st->str, "Unknown") == 0)
            continue;
        kedge_jw_obj_open(&w);
        kedge_jw_key(&w, "type");
        kedge_jw_strn(&w, t->str, t->len);
        kedge_jw_kstr(&w, "status", "Unknown");
        kedge_jw_kstr(&w, "lastTransitionTime", now);
        kedge_jw_kstr(&w, "reason", "NodeStatusUnknown");
        kedge_jw_kstr(&w, "message", "Kubelet stopped posting node status.");
        kedge_jw_obj_close(&w);
    }
    if (!has_ready) {
        kedge_jw_obj_open(&w);
        kedge_jw_kstr(&w, "type", "Ready");
        kedge_jw_kstr(&w, "status", "Unknown");
        kedge_jw_kstr(&w, "lastHeartbeatTime", now);
        kedge_jw_kstr(&w, "lastTransitionTime", now);
        kedge_jw_kstr(&w, "reason", "NodeStatusNeverUpdated");
        kedge_jw_kstr(&w, "message", "Kubelet never posted node status.");
        kedge_jw_obj_close(&w);
    }
    kedge_jw_arr_close(&w);
    kedge_jw_obj_close(&w);
    kedge_jw_obj_close(&w);
    rc = kedge_jw_finish(&w);
    if (rc == 0)
        rc = node_patch(ns, n, patch.data, patch.len);
    if (rc == 0) {
        n->marked = true;
        kedge_log(KEDGE_LOG_NOTICE,
                  "cloudsim: node %s NotReady: no lease renewal for %ld s (NodeStatusUnknown)",
                  n->name, ns->grace_s);
    } else {
        kedge_log(KEDGE_LOG_ERR, "cloudsim: cannot mark node %s Unknown: %s", n->name,
                  kedge_errname(rc));
    }
    kedge_buf_cleanup(&patch);
    kedge_jdoc_free(doc);
}

static void check_grace(struct nodes *ns)
{
    uint64_t now = kedge_now_ms(), grace_ms = (uint64_t)ns->grace_s * 1000;
    struct simnode *n;

    for (n = ns->list; n; n = n->next)
        if (n->json && !n->marked && n->probe_ms && now - n->probe_ms >= grace_ms)
            mark_unknown(ns, n);
}

/* ---- API ---------------------------------------------------------------------------------------
 */

int nodes_new(long grace_s, unsigned long long *rv_counter, struct nodes **out)
{
    struct nodes *ns = kedge_calloc(1, sizeof(*ns));

    *out = NULL;
    if (!ns)
        return -ENOMEM;
    ns->grace_s = grace_s;
    ns->rv_counter = rv_counter;
    *out = ns;
    return 0;
}

void nodes_free(struct nodes *ns)
{
    if (!ns)
        return;
    while (ns->list) {
        struct simnode *n = ns->list;
        ns->list = n->next;
        kedge_free(n->name);
        kedge_free(n->json);
        kedge_free(n->renew_time);
        kedge_free(n);
    }
    kedge_free(ns);
}

int nodes_get(struct nodes *ns, const char *name, const char **json, size_t *len, const char **rv)
{
    struct simnode *n;

    check_grace(ns);
    n = node_find(ns, name);
    if (!n || !n->json)
        return -ENOENT;
    *json = n->json;
    *len = n->len;
    *rv = n->rv;
    return 0;
}

int nodes_register(struct nodes *ns, const char *name, const char *json, size_t len, bool *existed)
{
    struct kedge_buf stamp = KEDGE_BUF_INIT, out = KEDGE_BUF_INIT;
    struct simnode *n;
    struct kedge_jw w;
    char uid[KEDGE_UUID_LEN + 1], now[32], rv[24];
    int rc;

    check_grace(ns);
    *existed = false;
    n = node_find(ns, name);
    if (!n && !(n = node_add(ns, name)))
        return -ENOMEM;
    n->registrations++;
    if (n->json) {
        *existed = true; /* the API server's Create: AlreadyExists, nothing changes */
        return 0;
    }
    kedge_uuid4(uid);
    kedge_rfc3339_now(now);
    (void)snprintf(rv, sizeof(rv), "%llu", ++*ns->rv_counter);
    /* what the API server fills in on create */
    kedge_jw_init(&w, &stamp);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "metadata");
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "name", name);
    kedge_jw_kstr(&w, "uid", uid);
    kedge_jw_kstr(&w, "resourceVersion", rv);
    kedge_jw_kstr(&w, "creationTimestamp", now);
    kedge_jw_obj_close(&w);
    kedge_jw_obj_close(&w);
    rc = kedge_jw_finish(&w);
    if (rc == 0)
        rc = merge_json(json, len, stamp.data, stamp.len, &out);
    if (rc == 0)
        rc = node_set(ns, n, &out, rv);
    if (rc == 0) {
        n->probe_ms = kedge_now_ms();
        n->marked = false;
        kedge_log(KEDGE_LOG_NOTICE, "cloudsim: node %s registered uid=%s", name, uid);
    }
    kedge_buf_cleanup(&stamp);
    kedge_buf_cleanup(&out);
    return rc;
}

int nodes_patch(struct nodes *ns, const char *name, const char *patch, size_t len)
{
    struct simnode *n;

    check_grace(ns);
    n = node_find(ns, name);
    if (!n || !n->json)
        return -ENOENT;
    return node_patch(ns, n, patch, len);
}

int nodes_put(struct nodes *ns, const char *name, const char *json, size_t len, const char *rv)
{
    struct kedge_buf copy = KEDGE_BUF_INIT;
    struct simnode *n = node_find(ns, name);
    int rc;

    if (!n && !(n = node_add(ns, name)))
        return -ENOMEM;
    rc = kedge_buf_append(&copy, json, len);
    if (rc == 0)
        rc = node_set(ns, n, &copy, rv);
    kedge_buf_cleanup(&copy);
    return rc;
}

void nodes_delete(struct nodes *ns, const char *name)
{
    struct simnode *n = node_find(ns, name);

    if (!n)
        return;
    kedge_free(n->json); /* the bookkeeping (registrations) stays for the tests */
    n->json = NULL;
    n->len = 0;
    n->probe_ms = 0;
}

int nodes_lease(struct nodes *ns, const char *name, const char *json, size_t len)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *rt;
    struct simnode *n;
    char *copy;
    int64_t ms;

    check_grace(ns);
    if (kedge_json_parse(json, len, &doc) < 0)
        return KEDGE_EPARSE;
    rt =
        kedge_json_get_exact(kedge_json_get_exact(kedge_jdoc_root(doc), "spec", 4), "renewTime", 9);
    if (!rt || rt->type != KEDGE_JSTR) {
        kedge_jdoc_free(doc);
        return KEDGE_ESCHEMA;
    }
    n = node_find(ns, name);
    if (!n && !(n = node_add(ns, name))) {
        kedge_jdoc_free(doc);
        return -ENOMEM;
    }
    /* Kubernetes counts a renewal only when renewTime changed */
    if (!n->renew_time || strcmp(n->renew_time, rt->str) != 0) {
        if (!(copy = kedge_strndup(rt->str, rt->len))) {
            kedge_jdoc_free(doc);
            return -ENOMEM;
        }
        kedge_free(n->renew_time);
        n->renew_time = copy;
        ms = parse_time_ms(copy);
        n->lease_renew_ms = ms > 0 ? ms : kedge_wall_ms();
        n->probe_ms = kedge_now_ms();
        n->marked = false;
    }
    kedge_jdoc_free(doc);
    return 0;
}

void nodes_write(struct nodes *ns, struct kedge_jw *w)
{
    struct simnode *n;

    check_grace(ns);
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "nodes");
    kedge_jw_arr_open(w);
    for (n = ns->list; n; n = n->next) {
        struct kedge_jdoc *doc = NULL;
        char ready[16];

        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "name", n->name);
        if (n->json)
            ready_status(n->json, n->len, ready, sizeof(ready));
        else
            (void)snprintf(ready, sizeof(ready), "Unknown");
        kedge_jw_kstr(w, "ready", ready);
        kedge_jw_kint(w, "registrations", (int64_t)n->registrations);
        kedge_jw_kint(w, "lease_renew_ms", n->lease_renew_ms);
        kedge_jw_key(w, "exists");
        kedge_jw_bool(w, n->json != NULL);
        kedge_jw_key(w, "status");
        if (n->json && kedge_json_parse(n->json, n->len, &doc) == 0 &&
            kedge_json_get_exact(kedge_jdoc_root(doc), "status", 6))
            kedge_json_write_value(w, kedge_json_get_exact(kedge_jdoc_root(doc), "status", 6));
        else
            kedge_jw_null(w);
        kedge_jdoc_free(doc);
        kedge_jw_obj_close(w);
    }
    kedge_jw_arr_close(w);
    kedge_jw_obj_close(w);
}
