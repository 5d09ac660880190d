/* controllers.c: what cloudcore's controllers answer to the edge, and the objects they answer
 * from.
 *
 * CloudHub hands every upstream message that is not a keepalive, an ack, an error or a user
 * upload to a controller (message_dispatcher.go DispatchUpstream / Publish): source "twin" goes
 * to the device controller, everything else to the edge controller, which dispatches on the
 * resource type (cloud/pkg/edgecontroller/controller/upstream.go). This file reproduces the
 * replies the edge can observe, in the shapes node-and-pod.jsonl and devices-twin.jsonl show,
 * without a Kubernetes API server behind them:
 *
 *  - device controller: twin edge_updated and state/update get "OK" (group twin, resource
 *    "twin"); membership/detail is ignored. Cloudcore answers only for devices it knows; here
 *    every well-formed report is answered.
 *  - edge controller: the table `ec_rules` below, one row per (resource type, operation).
 *    Objects the edge inserts or updates, and objects the cloud sends down (hub_send_json), go
 *    into a small store keyed by resource; queries and patches answer from it. Nodes live in
 *    nodes.c, which creates them from the insert (AlreadyExists for a second one), applies
 *    status patches and marks a node whose lease stopped NotReady. Pod patches are not applied;
 *    a pod patch of an object the store does not have is answered with the patch itself as the
 *    object.
 *  - k8s/ca.crt (answered by CloudHub itself): the content is our CA certificate in PEM.
 *
 * Replies are queued through hub_enqueue, which applies the ack rules (§5.2) to them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/log.h"

struct object {
    struct object *next;
    char *key;  /* "node/{name}" for nodes (namespace-free), else "{ns}/{type}/{name}" */
    char *json; /* the object */
    size_t len;
    char rv[24]; /* resourceVersion the replies carry */
};

struct controllers {
    char *ca_pem;
    struct object *objects;
    unsigned long long next_rv;
    struct nodes *nodes;
};

/* ---- the store ------------------------------------------------------------------------------- */

/* A trimmed edge-controller resource, {ns}/{type}/{name}, split. */
struct res {
    char ns[256], type[64], name[256];
};

static int res_split(const char *resource, struct res *r)
{
    const char *a = resource ? strchr(resource, '/') : NULL;
    const char *b = a ? strchr(a + 1, '/') : NULL;
    int n;

    memset(r, 0, sizeof(*r));
    if (!a || !b || !b[1])
        return -1;
    if ((size_t)(a - resource) >= sizeof(r->ns) || (size_t)(b - a - 1) >= sizeof(r->type) ||
        strlen(b + 1) >= sizeof(r->name))
        return -1;
    memcpy(r->ns, resource, (size_t)(a - resource));
    memcpy(r->type, a + 1, (size_t)(b - a - 1));
    n = snprintf(r->name, sizeof(r->name), "%s", b + 1);
    return n < 0 ? -1 : 0;
}

/* The store type of a resource type: patches and status updates act on their object. */
static const char *store_type(const char *type)
{
    if (strcmp(type, "nodepatch") == 0 || strcmp(type, "nodestatus") == 0)
        return "node";
    if (strcmp(type, "podpatch") == 0 || strcmp(type, "podstatus") == 0)
        return "pod";
    return type;
}

static int object_key(const struct res *r, char *out, size_t out_len)
{
    const char *t = store_type(r->type);
    int n;

    if (strcmp(t, "node") == 0) /* the node's namespace varies by version (null/default/...) */
        n = snprintf(out, out_len, "node/%s", r->name);
    else
        n = snprintf(out, out_len, "%s/%s/%s", r->ns, t, r->name);
    return n < 0 || (size_t)n >= out_len ? -1 : 0;
}

static struct object *object_find(struct controllers *c, const struct res *r)
{
    char key[600];
    struct object *o;

    if (object_key(r, key, sizeof(key)) < 0)
        return NULL;
    for (o = c->objects; o; o = o->next)
        if (strcmp(o->key, key) == 0)
            return o;
    return NULL;
}

/* Store json under r. rv: the version to record, NULL = the next of our own. */
static int object_put(struct controllers *c, const struct res *r, const char *json, size_t len,
                      const char *rv)
{
    struct object *o = object_find(c, r);
    char key[600];
    char *copy;

    if (object_key(r, key, sizeof(key)) < 0)
        return 0; /* not storable; nothing to remember */
    copy = kedge_strndup(json, len);
    if (!copy)
        return -ENOMEM;
    if (!o) {
        o = kedge_calloc(1, sizeof(*o));
        if (!o || !(o->key = kedge_strdup(key))) {
            kedge_free(o);
            kedge_free(copy);
            return -ENOMEM;
        }
        o->next = c->objects;
        c->objects = o;
    }
    kedge_free(o->json);
    o->json = copy;
    o->len = len;
    if (rv && *rv)
        (void)snprintf(o->rv, sizeof(o->rv), "%s", rv);
    else
        (void)snprintf(o->rv, sizeof(o->rv), "%llu", ++c->next_rv);
    return 0;
}

static void object_delete(struct controllers *c, const struct res *r)
{
    struct object **pp, *o;
    char key[600];

    if (object_key(r, key, sizeof(key)) < 0)
        return;
    for (pp = &c->objects; (o = *pp); pp = &o->next) {
        if (strcmp(o->key, key) == 0) {
            *pp = o->next;
            kedge_free(o->key);
            kedge_free(o->json);
            kedge_free(o);
            return;
        }
    }
}

/* The JSON a message carries: a string holding JSON is that JSON (spec fact 18). */
static void content_json(const struct kedge_msg *m, const char **json, size_t *len)
{
    struct kedge_jdoc *doc = NULL;

    *json = m->content ? m->content : "null";
    *len = m->content ? m->content_len : 4;
    if (m->content_is_string && kedge_json_parse(m->content_str, m->content_str_len, &doc) == 0) {
        *json = m->content_str;
        *len = m->content_str_len;
    }
    kedge_jdoc_free(doc);
}

static bool content_is_object(const char *json, size_t len)
{
    struct kedge_jdoc *doc = NULL;
    bool obj = kedge_json_parse(json, len, &doc) == 0 && kedge_jdoc_root(doc)->type == KEDGE_JOBJ;

    kedge_jdoc_free(doc);
    return obj;
}

/* What a reply reads of a stored object: borrowed until the store changes. */
struct view {
    const char *json;
    size_t len;
    const char *rv;
    bool found;
};

static bool is_node(const struct res *r)
{
    return strcmp(store_type(r->type), "node") == 0;
}

static void view_get(struct controllers *c, const struct res *r, struct view *v)
{
    struct object *o;

    memset(v, 0, sizeof(*v));
    if (is_node(r)) {
        v->found = nodes_get(c->nodes, r->name, &v->json, &v->len, &v->rv) == 0;
        return;
    }
    o = object_find(c, r);
    if (o) {
        v->json = o->json;
        v->len = o->len;
        v->rv = o->rv;
        v->found = true;
    }
}

/* The legacy nodestatus update {"UID":..,"Status":{..},"ExtendResources":..} as a status patch. */
static int legacy_status_patch(const char *json, size_t len, struct kedge_buf *out)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *st;
    struct kedge_jw w;
    int rc = kedge_json_parse(json, len, &doc);

    if (rc < 0)
        return rc;
    st = kedge_json_get(kedge_jdoc_root(doc), "Status");
    if (!st || st->type != KEDGE_JOBJ) {
        kedge_jdoc_free(doc);
        return KEDGE_ESCHEMA;
    }
    kedge_jw_init(&w, out);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "status");
    kedge_json_write_value(&w, st);
    kedge_jw_obj_close(&w);
    rc = kedge_jw_finish(&w);
    kedge_jdoc_free(doc);
    return rc;
}

/* ---- replies --------------------------------------------------------------------------------- */

struct reply {
    const char *source, *group, *resource, *rv;
    struct kedge_buf content; /* JSON, or empty for the string "OK" */
};

static int reply_send(struct hub *h, const char *node, const struct kedge_msg *req,
                      struct reply *rp)
{
    struct kedge_msg r;
    bool needs_ack;
    int rc = -ENOMEM;

    memset(&r, 0, sizeof(r));
    if (!(r.parent_msg_id = kedge_strdup(req->msg_id ? req->msg_id : "")) ||
        !(r.source = kedge_strdup(rp->source)) || !(r.group = kedge_strdup(rp->group)) ||
        !(r.operation = kedge_strdup("response")) || !(r.resource = kedge_strdup(rp->resource)))
        goto out;
    if (rp->rv && *rp->rv && !(r.resource_version = kedge_strdup(rp->rv)))
        goto out;
    if (rp->content.len)
        rc = kedge_msg_set_content_json(&r, rp->content.data, rp->content.len);
    else
        rc = kedge_msg_set_content_string(&r, "OK", 2);
    if (rc == 0)
        rc = hub_enqueue(h, node, &r, &needs_ack);
out:
    kedge_msg_cleanup(&r);
    kedge_buf_cleanup(&rp->content);
    return rc;
}

/* k8s apierrors.NewNotFound(GroupResource, name), as Go marshals the StatusError
 * ({"ErrStatus":{...}}). what: "resource" or "resource.group", as GroupResource.String(). */
static void write_not_found(struct kedge_jw *w, const char *what, const char *name)
{
    struct kedge_buf msg = KEDGE_BUF_INIT, resource = KEDGE_BUF_INIT;
    const char *dot = strchr(what, '.');
    const char *group = dot ? dot + 1 : "";

    if (kedge_buf_printf(&msg, "%s \"%s\" not found", what, name) < 0 ||
        kedge_buf_append(&resource, what, dot ? (size_t)(dot - what) : strlen(what)) < 0)
        w->err = w->err ? w->err : -ENOMEM;
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "ErrStatus");
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "metadata");
    kedge_jw_obj_open(w);
    kedge_jw_obj_close(w);
    kedge_jw_kstr(w, "status", "Failure");
    kedge_jw_kstr(w, "message", msg.data ? msg.data : "");
    kedge_jw_kstr(w, "reason", "NotFound");
    kedge_jw_key(w, "details");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "name", name);
    if (*group)
        kedge_jw_kstr(w, "group", group);
    kedge_jw_kstr(w, "kind", resource.data ? resource.data : "");
    kedge_jw_obj_close(w);
    kedge_jw_kint(w, "code", 404);
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
    kedge_buf_cleanup(&msg);
    kedge_buf_cleanup(&resource);
}

/* client-go's empty v1.Node, as Go marshals the zero value: the Object beside an error. */
static const char empty_node[] =
    "{\"metadata\":{\"creationTimestamp\":null},\"spec\":{},\"status\":{\"daemonEndpoints\":{"
    "\"kubeletEndpoint\":{\"Port\":0}},\"nodeInfo\":{\"machineID\":\"\",\"systemUUID\":\"\","
    "\"bootID\":\"\",\"kernelVersion\":\"\",\"osImage\":\"\",\"containerRuntimeVersion\":\"\","
    "\"kubeletVersion\":\"\",\"kubeProxyVersion\":\"\",\"operatingSystem\":\"\","
    "\"architecture\":\"\"}}}";

/* The API server's Create of a Node that exists: ObjectResp{empty Node, AlreadyExists}. */
static void write_node_exists(struct kedge_jw *w, const char *name)
{
    struct kedge_buf msg = KEDGE_BUF_INIT;

    if (kedge_buf_printf(&msg, "nodes \"%s\" already exists", name) < 0)
        w->err = w->err ? w->err : -ENOMEM;
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "Object");
    kedge_jw_raw(w, empty_node, sizeof(empty_node) - 1);
    kedge_jw_key(w, "Err");
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "ErrStatus");
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "metadata");
    kedge_jw_obj_open(w);
    kedge_jw_obj_close(w);
    kedge_jw_kstr(w, "status", "Failure");
    kedge_jw_kstr(w, "message", msg.data ? msg.data : "");
    kedge_jw_kstr(w, "reason", "AlreadyExists");
    kedge_jw_key(w, "details");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "name", name);
    kedge_jw_kstr(w, "kind", "nodes");
    kedge_jw_obj_close(w);
    kedge_jw_kint(w, "code", 409);
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
    kedge_buf_cleanup(&msg);
}

/* edgeapi.ObjectResp{Object, Err}: no json tags, so the keys are the Go field names. */
static void write_object_resp(struct kedge_jw *w, const char *obj, size_t obj_len,
                              const char *not_found, const char *name)
{
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "Object");
    if (obj)
        kedge_jw_raw(w, obj, obj_len);
    else
        kedge_jw_null(w);
    kedge_jw_key(w, "Err");
    if (not_found)
        write_not_found(w, not_found, name);
    else
        kedge_jw_null(w);
    kedge_jw_obj_close(w);
}

/* ---- the device controller ------------------------------------------------------------------- */

static int device_controller(struct hub *h, const char *node, const struct kedge_msg *m)
{
    const char *res = m->resource ? m->resource : "";
    struct reply rp = {"devicecontroller", "twin", "twin", NULL, KEDGE_BUF_INIT};

    /* GetResourceTypeForDevice: strings.Contains, in this order */
    if (strstr(res, "twin/edge_updated") || strstr(res, "state/update"))
        return reply_send(h, node, m, &rp);
    if (strstr(res, "membership/detail")) {
        kedge_log(KEDGE_LOG_INFO, "cloudsim: membership detail request ignored (as cloudcore)");
        return 0;
    }
    kedge_log(KEDGE_LOG_WARN, "cloudsim: device controller: unknown resource=%s", res);
    return 0;
}

/* ---- the edge controller --------------------------------------------------------------------- */

enum ec_action {
    EC_NONE,          /* no reply (events, pod delete, rule status, ...) */
    EC_PUT_OBJRESP,   /* store the content; ObjectResp{content, nil} */
    EC_PATCH,         /* ObjectResp{stored object, or the patch itself, nil} */
    EC_QUERY,         /* queryInner: the object itself (rv set), or the NotFound error */
    EC_QUERY_OBJRESP, /* ObjectResp{object, nil} or ObjectResp{nil, NotFound} */
    EC_UPDATE_OK,     /* "OK" with rv when the object is known, no reply when it is not */
    EC_OK,            /* "OK" (legacy status updates) */
    EC_DELETE,        /* forget the object, no reply */
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
    {"podpatch",              "patch",  EC_PATCH,         true,  "pod",                              NULL},
    {"podstatus",             "update", EC_OK,            false, "pod",                              NULL},
    {"lease",                 "insert", EC_PUT_OBJRESP,   false, "lease.coordination.k8s.io",        NULL},
    {"lease",                 "update", EC_PUT_OBJRESP,   false, "lease.coordination.k8s.io",        NULL},
    {"lease",                 "query",  EC_QUERY_OBJRESP, false, "lease.coordination.k8s.io",        NULL},
    {"configmap",             "query",  EC_QUERY,         true,  "configmap",                        NULL},
    {"secret",                "query",  EC_QUERY,         true,  "secret",                           NULL},
    {"persistentvolume",      "query",  EC_QUERY,         true,  "persistentvolumes",                NULL},
    {"persistentvolumeclaim", "query",  EC_QUERY,         true,  "persistentvolumeclaims",           NULL},
    {"volumeattachment",      "query",  EC_QUERY,         true,  "volumeattachments.storage.k8s.io", NULL},
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
    bool existed;
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
        if (is_node(&r))
            nodes_delete(c->nodes, r.name);
        else
            object_delete(c, &r);
        goto out;
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
        view_get(c, &r, &v);
        if (v.found)
            write_object_resp(&w, v.json, v.len, NULL, r.name);
        else
            write_object_resp(&w, json, len, NULL, r.name);
        break;
    case EC_QUERY:
        view_get(c, &r, &v);
        if (v.found)
            kedge_jw_raw(&w, v.json, v.len);
        else
            write_not_found(&w, rule->not_found, r.name);
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
    if (rule->rv)
        view_get(c, &r, &v); /* the version after this request's change */
    rp.rv = rule->rv && v.found ? v.rv : NULL;
    rc = reply_send(h, node, m, &rp);
out:
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
        return device_controller(h, node, m);
    if (m->source && strcmp(m->source, "metaserver") == 0)
        return 0; /* the dynamic controller: nothing the edge sees */
    return edge_controller(c, h, node, m);
}

int controllers_downstream(struct controllers *c, const struct kedge_msg *m)
{
    const char *json;
    struct res r;
    size_t len;

    if (!m->group || strcmp(m->group, "resource") != 0 || !m->operation ||
        res_split(m->resource, &r) < 0)
        return 0;
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

int controllers_new(const char *ca_pem, long node_grace_s, struct controllers **out)
{
    struct controllers *c = kedge_calloc(1, sizeof(*c));

    *out = NULL;
    if (!c || !(c->ca_pem = kedge_strdup(ca_pem)) ||
        nodes_new(node_grace_s, &c->next_rv, &c->nodes) < 0) {
        if (c)
            kedge_free(c->ca_pem);
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
    nodes_free(c->nodes);
    kedge_free(c->ca_pem);
    kedge_free(c);
}
