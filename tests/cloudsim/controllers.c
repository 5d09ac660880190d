/* controllers.c: what cloudcore's controllers answer to the edge, and the objects they answer
 * from.
 *
 * CloudHub hands every upstream message that is not a keepalive, an ack, an error or a user
 * upload to a controller (message_dispatcher.go DispatchUpstream / Publish): source "twin" goes
 * to the device controller, everything else to the edge controller, which dispatches on the
 * resource type (cloud/pkg/edgecontroller/controller/upstream.go). These files reproduce the
 * replies the edge can observe, in the shapes node-and-pod.jsonl and devices-twin.jsonl show,
 * without a Kubernetes API server behind them:
 *
 *  - device controller: twin edge_updated gets "OK" (group twin, resource "twin") for a
 *    device it knows, and a Device whose status it changed goes down again (devices.c);
 *    reports are applied by concurrent workers (workers.c): a burst lands newest first;
 *    state/update gets "OK" from v1.18 for a known device (before, GetResourceTypeForDevice
 *    knows no state/update and nothing answers it); membership/detail is ignored.
 *  - edge controller: the table `ec_rules` below, one row per (resource type, operation).
 *    Objects the edge inserts or updates, and objects the cloud sends down (hub_send_json), go
 *    into a small store keyed by resource; queries and patches answer from it. Nodes live in
 *    nodes.c, which creates them from the insert (AlreadyExists for a second one), applies
 *    status patches and marks a node whose lease stopped NotReady.
 *  - pods (the store, section "pods" below): a podpatch is applied as the API server's
 *    PATCH of pods/status (strategic merge, smpatch.c) and answered with the patched Pod;
 *    a missing pod is NotFound, a patch naming another pod's uid is Invalid (uid is
 *    immutable); the edge's delete of a pod it finalised removes it, is answered "OK" and
 *    brings the watch events cloudcore would pass on (a late update of a terminating pod, the
 *    delete). The control API reads them back (GET /pods, GET /object).
 *  - k8s/ca.crt (answered by CloudHub itself): the content is our CA certificate in PEM.
 *
 * Replies are queued through hub_enqueue, which applies the ack rules (docs/kubeedge-wire.md §5.2)
 * to them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"
#include "ctlpriv.h"

/* ---- service account tokens ------------------------------------------------------------------ */

/* The API server's CreateToken for the TokenRequest json: its answer, or the error for a
 * request that is not one or a bound pod that is not in the store (NotFound) or has another
 * uid (Conflict, token.go's message). */
static int token_request(struct controllers *c, const struct res *r, const char *json, size_t len,
                         struct kedge_jw *w)
{
    struct tokens_request tr = {r->ns, r->name, NULL, NULL, NULL, 3600};
    const struct kedge_jval *spec, *aud, *exp, *ref, *name, *uid, *puid;
    struct kedge_buf msg = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL, *pdoc = NULL;
    struct res pr;
    struct view v;
    int rc = 0;

    if (kedge_json_parse(json, len, &doc) < 0) {
        struct status_error e = {"BadRequest", 400, "the request is not a TokenRequest", NULL, NULL,
                                 NULL,         NULL};
        write_status_error(w, &e);
        return 0;
    }
    spec = kedge_json_get(kedge_jdoc_root(doc), "spec");
    aud = kedge_json_get(spec, "audiences");
    if (aud && aud->type == KEDGE_JARR && aud->child && aud->child->type == KEDGE_JSTR)
        tr.audience = aud->child->str;
    exp = kedge_json_get(spec, "expirationSeconds");
    if (exp && exp->type == KEDGE_JNUM)
        (void)kedge_json_int64(exp, &tr.expiration_s);
    ref = kedge_json_get(spec, "boundObjectRef");
    name = kedge_json_get(ref, "name");
    uid = kedge_json_get(ref, "uid");
    tr.pod = name && name->type == KEDGE_JSTR ? name->str : "";
    tr.pod_uid = uid && uid->type == KEDGE_JSTR ? uid->str : "";
    memset(&pr, 0, sizeof(pr));
    snprintf(pr.ns, sizeof(pr.ns), "%s", r->ns);
    snprintf(pr.type, sizeof(pr.type), "pod");
    snprintf(pr.name, sizeof(pr.name), "%s", tr.pod);
    view_get(c, &pr, &v);
    if (!v.found) {
        write_not_found(w, "pods", tr.pod);
        goto out;
    }
    if (kedge_json_parse(v.json, v.len, &pdoc) == 0 && (puid = meta_uid(kedge_jdoc_root(pdoc))) &&
        strcmp(puid->str, tr.pod_uid)) {
        struct status_error e = {"Conflict", 409, NULL, "pods", tr.pod, NULL, NULL};
        rc = kedge_buf_printf(&msg,
                              "Operation cannot be fulfilled on pods \"%s\": the UID in the bound "
                              "object reference (%s) does not match the UID in record. The object "
                              "might have been deleted and then recreated",
                              tr.pod, tr.pod_uid);
        e.message = msg.data;
        if (rc == 0)
            write_status_error(w, &e);
        goto out;
    }
    rc = tokens_answer(c->ca_pem, &tr, w);
out:
    kedge_buf_cleanup(&msg);
    kedge_jdoc_free(pdoc);
    kedge_jdoc_free(doc);
    return rc;
}

/* ---- the device controller ------------------------------------------------------------------- */

/* The report goes into GET /applied's log under the id the controller read from it. */
static int record_applied(struct controllers *c, const struct kedge_msg *m)
{
    struct kedge_buf id = KEDGE_BUF_INIT;
    int rc = devctl_report_id(c->devices, m->resource ? m->resource : "", &id);

    if (rc == 0)
        rc = applied_record(c->applied, id.data, m, kedge_wall_ms());
    kedge_buf_cleanup(&id);
    return rc == -ENOMEM ? rc : 0;
}

/* One worker's report (updateDeviceStatus): patch the Device, then answer "OK"; the Device
 * whose status changed goes down again. */
static int apply_report(void *ctx, struct hub *h, const char *node, const struct kedge_msg *m)
{
    struct controllers *c = ctx;
    struct reply rp = {"devicecontroller", "twin", "twin", NULL, KEDGE_BUF_INIT};
    struct kedge_msg resend;
    bool known, needs_ack;
    int rc = devctl_edge_updated(c->devices, m, &known, &resend);

    if (rc == 0 && known)
        rc = record_applied(c, m);
    if (rc == 0 && known)
        rc = reply_send(h, node, m, &rp);
    if (rc == 0 && resend.resource)
        rc = hub_enqueue(h, node, &resend, &needs_ack);
    kedge_msg_cleanup(&resend);
    return rc;
}

static int device_controller(struct controllers *c, struct hub *h, const char *node,
                             const struct kedge_msg *m)
{
    const char *res = m->resource ? m->resource : "";
    struct reply rp = {"devicecontroller", "twin", "twin", NULL, KEDGE_BUF_INIT};

    /* GetResourceTypeForDevice: strings.Contains, in this order */
    if (strstr(res, "twin/edge_updated"))
        return workers_submit(c->workers, h, node, m);
    if (strstr(res, "state/update"))
        return devctl_state_answered(c->devices, m) ? reply_send(h, node, m, &rp) : 0;
    if (strstr(res, "membership/detail")) {
        kedge_log(KEDGE_LOG_INFO, "cloudsim: membership detail request ignored (as cloudcore)");
        return 0;
    }
    kedge_log(KEDGE_LOG_WARN, "cloudsim: device controller: unknown resource=%s", res);
    return 0;
}

/* ---- the edge controller --------------------------------------------------------------------- */

enum ec_action {
    EC_NONE,          /* no reply (events, rule status, ...) */
    EC_PUT_OBJRESP,   /* store the content; ObjectResp{content, nil} */
    EC_PATCH,         /* apply; ObjectResp{patched object, nil} or ObjectResp{empty, error} */
    EC_QUERY,         /* queryInner: the object itself (rv set), or the NotFound error */
    EC_QUERY_OBJRESP, /* ObjectResp{object, nil} or ObjectResp{nil, NotFound} */
    EC_UPDATE_OK,     /* "OK" with rv when the object is known, no reply when it is not */
    EC_OK,            /* "OK" (legacy status updates) */
    EC_DELETE,        /* forget the object (a pod: if the uid matches), no reply */
    EC_TOKEN,         /* getServiceAccountToken: the API server's TokenRequest, or its error */
};

struct ec_rule {
    const char *type, *op; /* op NULL: any */
    enum ec_action action;
    bool rv;                /* the reply carries header.resourceversion */
    const char *not_found;  /* "resource[.group]" as the lister or client names it */
    const char *reply_type; /* the reply resource's type when it differs from the request's */
};

/* clang-format off */
static const struct ec_rule ec_rules[] = {
    /* type                   op        action            rv     NotFound: resource[.group]         reply */
    {"node",                  "insert", EC_PUT_OBJRESP,   false, "node",                             NULL},
    {"node",                  "query",  EC_QUERY,         true,  "node",                             NULL},
    {"node",                  "update", EC_UPDATE_OK,     true,  "node",                             NULL},
    {"nodestatus",            "update", EC_OK,            false, "node",                             "node"},
    {"nodepatch",             "patch",  EC_PATCH,         true,  "node",                             NULL},
    {"pod",                   "insert", EC_PUT_OBJRESP,   true,  "pod",                              NULL},
    {"pod",                   "delete", EC_DELETE,        false, "pod",                              NULL},
    {"podpatch",              "patch",  EC_PATCH,         true,  "pods",                             NULL},
    {"podstatus",             "update", EC_OK,            false, "pod",                              NULL},
    {"lease",                 "insert", EC_PUT_OBJRESP,   false, "lease.coordination.k8s.io",        NULL},
    {"lease",                 "update", EC_PUT_OBJRESP,   false, "lease.coordination.k8s.io",        NULL},
    {"lease",                 "query",  EC_QUERY_OBJRESP, false, "lease.coordination.k8s.io",        NULL},
    {"configmap",             "query",  EC_QUERY,         true,  "configmap",                        NULL},
    {"secret",                "query",  EC_QUERY,         true,  "secret",                           NULL},
    {"persistentvolume",      "query",  EC_QUERY,         true,  "persistentvolumes",                NULL},
    {"persistentvolumeclaim", "query",  EC_QUERY,         true,  "persistentvolumeclaims",           NULL},
    {"volumeattachment",      "query",  EC_QUERY,         true,  "volumeattachments.storage.k8s.io", NULL},
    {"serviceaccounttoken",   "query",  EC_TOKEN,         false, "pods",                             NULL},
    {"event",                 NULL,     EC_NONE,          false, NULL,                               NULL},
    {"rulestatus",            NULL,     EC_NONE,          false, NULL,                               NULL},
};
/* clang-format on */

static const struct ec_rule *ec_rule_find(const char *type, const char *op)
{
    size_t i;

    for (i = 0; i < sizeof(ec_rules) / sizeof(ec_rules[0]); i++)
        if (strcmp(ec_rules[i].type, type) == 0 &&
            (!ec_rules[i].op || (op && strcmp(ec_rules[i].op, op) == 0)))
            return &ec_rules[i];
    return NULL;
}

static int edge_controller(struct controllers *c, struct hub *h, const char *node,
                           const struct kedge_msg *m)
{
    struct reply rp = {"edgecontroller", "resource", m->resource, NULL, KEDGE_BUF_INIT};
    const struct ec_rule *rule;
    struct kedge_buf resource = KEDGE_BUF_INIT, patch = KEDGE_BUF_INIT;
    struct view v;
    const char *json;
    struct kedge_jw w;
    struct res r;
    struct object *removed = NULL;
    bool existed, applied = true;
    size_t len;
    int rc = 0;

    if (res_split(m->resource, &r) < 0) {
        kedge_log(KEDGE_LOG_WARN, "cloudsim: edge controller: no resource type in resource=%s",
                  m->resource ? m->resource : "");
        return 0;
    }
    rule = ec_rule_find(r.type, m->operation);
    if (!rule) {
        kedge_log(KEDGE_LOG_WARN, "cloudsim: edge controller: unsupported type=%s op=%s", r.type,
                  m->operation ? m->operation : "");
        return 0;
    }
    if (rule->reply_type) {
        if (kedge_buf_printf(&resource, "%s/%s/%s", r.ns, rule->reply_type, r.name) < 0)
            return -ENOMEM;
        rp.resource = resource.data;
    }
    content_json(m, &json, &len);
    kedge_jw_init(&w, &rp.content);
    memset(&v, 0, sizeof(v));

    switch (rule->action) {
    case EC_NONE:
        goto out;
    case EC_DELETE:
        if (is_node(&r)) {
            nodes_delete(c->nodes, r.name);
            goto out;
        }
        rc = pod_delete(c, h, node, &r, json, len, &removed);
        if (rc < 0)
            goto out;
        break; /* content stays empty: "OK" */
    case EC_PUT_OBJRESP:
        if (!content_is_object(json, len)) {
            write_object_resp(&w, json, len, NULL, r.name);
            break;
        }
        if (is_node(&r)) {
            rc = nodes_register(c->nodes, r.name, json, len, &existed);
            if (rc == -ENOMEM)
                goto out;
            view_get(c, &r, &v);
            if (existed)
                write_node_exists(&w, r.name);
            else
                write_object_resp(&w, v.found ? v.json : json, v.found ? v.len : len, NULL, r.name);
            rc = 0;
            break;
        }
        rc = object_put(c, &r, json, len, NULL);
        if (rc == 0 && strcmp(r.type, "lease") == 0)
            rc = nodes_lease(c->nodes, r.name, json, len) == -ENOMEM ? -ENOMEM : 0;
        if (rc < 0)
            goto out;
        write_object_resp(&w, json, len, NULL, r.name);
        break;
    case EC_PATCH:
        if (is_node(&r)) {
            rc = nodes_patch(c->nodes, r.name, json, len);
            if (rc == -ENOMEM)
                goto out;
            view_get(c, &r, &v);
            if (rc == -ENOENT)
                write_object_resp(&w, NULL, 0, rule->not_found, r.name);
            else
                write_object_resp(&w, v.found ? v.json : json, v.found ? v.len : len, NULL, r.name);
            rc = 0;
            break;
        }
        rc = pod_patch(c, &r, json, len, &w, &applied);
        if (rc < 0)
            goto out;
        break;
    case EC_QUERY:
        view_get(c, &r, &v);
        if (v.found)
            kedge_jw_raw(&w, v.json, v.len);
        else if (!strcmp(r.type, "configmap") && !strcmp(r.name, "kube-root-ca.crt"))
            rc = tokens_root_ca(c->ca_pem, r.ns, &w); /* in every namespace, as in a cluster */
        else
            write_not_found(&w, rule->not_found, r.name);
        if (rc < 0)
            goto out;
        break;
    case EC_TOKEN:
        rc = token_request(c, &r, json, len, &w);
        if (rc < 0)
            goto out;
        break;
    case EC_QUERY_OBJRESP:
        view_get(c, &r, &v);
        if (v.found)
            write_object_resp(&w, v.json, v.len, NULL, r.name);
        else
            write_object_resp(&w, NULL, 0, rule->not_found, r.name);
        break;
    case EC_UPDATE_OK:
        if (is_node(&r) && content_is_object(json, len) &&
            nodes_patch(c->nodes, r.name, json, len) == -ENOMEM) {
            rc = -ENOMEM;
            goto out;
        }
        view_get(c, &r, &v);
        if (!v.found) {
            kedge_log(KEDGE_LOG_WARN, "cloudsim: edge controller: %s %s not found, no reply",
                      rule->type, r.name);
            goto out;
        }
        break; /* content stays empty: "OK" */
    case EC_OK:
        if (is_node(&r) && legacy_status_patch(json, len, &patch) == 0 &&
            nodes_patch(c->nodes, r.name, patch.data, patch.len) == -ENOMEM) {
            rc = -ENOMEM;
            goto out;
        }
        view_get(c, &r, &v);
        break;
    }
    if (kedge_jw_finish(&w) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    if (rule->rv && applied)
        view_get(c, &r, &v); /* the version after this request's change; none beside an error */
    rp.rv = rule->rv && v.found ? v.rv : NULL;
    rc = reply_send(h, node, m, &rp);
    if (rc == 0 && removed)
        rc = pod_event(c, h, node, &r, "delete", removed);
out:
    object_free(removed);
    kedge_buf_cleanup(&rp.content);
    kedge_buf_cleanup(&resource);
    kedge_buf_cleanup(&patch);
    return rc;
}

/* ---- entry points ---------------------------------------------------------------------------- */

int controllers_upstream(struct controllers *c, struct hub *h, const char *node,
                         const struct kedge_msg *m)
{
    if (m->resource && strcmp(m->resource, "k8s/ca.crt") == 0) {
        /* DispatchUpstream answers this itself, with the Kubernetes CA as a string */
        struct reply rp = {"cloudhub", "resource", "k8s/ca.crt", NULL, KEDGE_BUF_INIT};
        struct kedge_jw w;

        kedge_jw_init(&w, &rp.content);
        kedge_jw_str(&w, c->ca_pem);
        if (kedge_jw_finish(&w) < 0) {
            kedge_buf_cleanup(&rp.content);
            return -ENOMEM;
        }
        return reply_send(h, node, m, &rp);
    }
    if (m->source && strcmp(m->source, "twin") == 0)
        return device_controller(c, h, node, m);
    if (m->source && strcmp(m->source, "metaserver") == 0)
        return 0; /* the dynamic controller: nothing the edge sees */
    return edge_controller(c, h, node, m);
}

int controllers_downstream(struct controllers *c, const struct kedge_msg *m)
{
    const char *json;
    struct res r;
    size_t len;

    if (m->group && !strcmp(m->group, "twin") && m->resource &&
        (!strcmp(m->resource, "membership") || strstr(m->resource, "/membership")))
        return devctl_downstream(c->devices, m, NULL, NULL);
    if (!m->group || strcmp(m->group, "resource") != 0 || !m->operation ||
        res_split(m->resource, &r) < 0)
        return 0;
    if (!strcmp(r.type, "device"))
        return devctl_downstream(c->devices, m, r.ns, r.name);
    if (strcmp(m->operation, "delete") == 0) {
        if (is_node(&r))
            nodes_delete(c->nodes, r.name);
        else
            object_delete(c, &r);
        return 0;
    }
    if (strcmp(m->operation, "insert") != 0 && strcmp(m->operation, "update") != 0)
        return 0;
    content_json(m, &json, &len);
    if (!content_is_object(json, len))
        return 0;
    if (is_node(&r))
        return nodes_put(c->nodes, r.name, json, len, m->resource_version);
    return object_put(c, &r, json, len, m->resource_version);
}

void controllers_write_nodes(struct controllers *c, struct kedge_jw *w)
{
    nodes_write(c->nodes, w);
}

void controllers_write_pods(struct controllers *c, struct kedge_jw *w)
{
    const struct object *o;
    struct res r;

    kedge_jw_obj_open(w);
    kedge_jw_key(w, "pods");
    kedge_jw_arr_open(w);
    for (o = c->objects; o; o = o->next)
        if (res_split(o->key, &r) == 0 && strcmp(r.type, "pod") == 0)
            write_pod_entry(w, o);
    kedge_jw_arr_close(w);
    kedge_jw_obj_close(w);
}

int controllers_write_object(struct controllers *c, const char *key, struct kedge_jw *w)
{
    const char *rv;
    struct view v;
    struct res r;

    memset(&v, 0, sizeof(v));
    if (strncmp(key, "node/", 5) == 0 && key[5] && !strchr(key + 5, '/'))
        v.found = nodes_get(c->nodes, key + 5, &v.json, &v.len, &rv) == 0;
    else if (res_split(key, &r) == 0 && !strcmp(r.type, "device"))
        v.found = devctl_get(c->devices, r.ns, r.name, &v.json, &v.len, &rv) == 0;
    else if (res_split(key, &r) == 0)
        view_get(c, &r, &v);
    if (!v.found)
        return -ENOENT;
    kedge_jw_raw(w, v.json, v.len);
    return 0;
}

int controllers_new(const char *ca_pem, long node_grace_s, long cloud_minor,
                    struct controllers **out)
{
    struct controllers *c = kedge_calloc(1, sizeof(*c));

    *out = NULL;
    if (!c || !(c->ca_pem = kedge_strdup(ca_pem)) ||
        nodes_new(node_grace_s, &c->next_rv, &c->nodes) < 0 ||
        devctl_new(cloud_minor, &c->next_rv, &c->devices) < 0 ||
        workers_new(apply_report, c, &c->workers) < 0 || applied_new(&c->applied) < 0) {
        if (c) {
            workers_free(c->workers);
            devctl_free(c->devices);
            nodes_free(c->nodes);
            kedge_free(c->ca_pem);
        }
        kedge_free(c);
        return -ENOMEM;
    }
    c->next_rv = 1000;
    *out = c;
    return 0;
}

void controllers_free(struct controllers *c)
{
    if (!c)
        return;
    while (c->objects) {
        struct object *o = c->objects;
        c->objects = o->next;
        kedge_free(o->key);
        kedge_free(o->json);
        kedge_free(o);
    }
    workers_free(c->workers);
    applied_free(c->applied);
    nodes_free(c->nodes);
    devctl_free(c->devices);
    kedge_free(c->ca_pem);
    kedge_free(c);
}

void controllers_write_applied(struct controllers *c, const char *device, bool with_log,
                               struct kedge_jw *w)
{
    applied_write(c->applied, device, with_log, w);
}

void controllers_stop(struct controllers *c)
{
    if (c)
        workers_stop(c->workers);
}
