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
#include "kedge/util.h"

struct object {
    struct object *next;
    char *key;  /* "node/{name}" for nodes (namespace-free), else "{ns}/{type}/{name}" */
    char *json; /* the object */
    size_t len;
    char rv[24];           /* resourceVersion the replies carry */
    unsigned long patches; /* status patches applied since it was first stored (pods) */
};

struct controllers {
    char *ca_pem;
    struct object *objects;
    unsigned long long next_rv;
    struct nodes *nodes;
    struct devctl *devices;
    struct workers *workers;
    struct applied *applied; /* what the workers applied, for GET /applied */
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
    struct object *o = object_find(c, r), **tail;
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
        for (tail = &c->objects; *tail; tail = &(*tail)->next)
            ; /* appended: GET /pods lists them in the order they came */
        *tail = o;
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

static void object_free(struct object *o)
{
    if (!o)
        return;
    kedge_free(o->key);
    kedge_free(o->json);
    kedge_free(o);
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
            object_free(o);
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

/* A Kubernetes StatusError as Go marshals it: {"ErrStatus":<metav1.Status>}, fields in
 * declaration order, empty ones left out. */
struct status_error {
    const char *reason;  /* "NotFound", "AlreadyExists", "Invalid", "BadRequest" */
    int code;            /* the HTTP status */
    const char *message; /* NULL: "" (out of memory building it) */
    const char *what;    /* details.kind and .group: "resource[.group]" (GroupResource.String())
                            or "Kind[.group]" (Invalid's GroupKind); NULL: no details */
    const char *name;    /* details.name */
    const char *cause_field, *cause_message; /* one FieldValueInvalid cause, or NULL */
};

static void write_details(struct kedge_jw *w, const struct status_error *e)
{
    const char *dot = strchr(e->what, '.');

    kedge_jw_key(w, "details");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "name", e->name);
    if (dot)
        kedge_jw_kstr(w, "group", dot + 1);
    kedge_jw_key(w, "kind");
    kedge_jw_strn(w, e->what, dot ? (size_t)(dot - e->what) : strlen(e->what));
    if (e->cause_field) {
        kedge_jw_key(w, "causes");
        kedge_jw_arr_open(w);
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "reason", "FieldValueInvalid");
        kedge_jw_kstr(w, "message", e->cause_message ? e->cause_message : "");
        kedge_jw_kstr(w, "field", e->cause_field);
        kedge_jw_obj_close(w);
        kedge_jw_arr_close(w);
    }
    kedge_jw_obj_close(w);
}

static void write_status_error(struct kedge_jw *w, const struct status_error *e)
{
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "ErrStatus");
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "metadata");
    kedge_jw_obj_open(w);
    kedge_jw_obj_close(w);
    kedge_jw_kstr(w, "status", "Failure");
    kedge_jw_kstr(w, "message", e->message ? e->message : "");
    kedge_jw_kstr(w, "reason", e->reason);
    if (e->what)
        write_details(w, e);
    kedge_jw_kint(w, "code", e->code);
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
}

/* k8s apierrors.NewNotFound(GroupResource, name). what: "resource" or "resource.group", as
 * GroupResource.String(). */
static void write_not_found(struct kedge_jw *w, const char *what, const char *name)
{
    struct kedge_buf msg = KEDGE_BUF_INIT;
    struct status_error e = {"NotFound", 404, NULL, what, name, NULL, NULL};

    if (kedge_buf_printf(&msg, "%s \"%s\" not found", what, name) < 0)
        w->err = w->err ? w->err : -ENOMEM;
    e.message = msg.data;
    write_status_error(w, &e);
    kedge_buf_cleanup(&msg);
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
    struct status_error e = {"AlreadyExists", 409, NULL, "nodes", name, NULL, NULL};

    if (kedge_buf_printf(&msg, "nodes \"%s\" already exists", name) < 0)
        w->err = w->err ? w->err : -ENOMEM;
    e.message = msg.data;
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "Object");
    kedge_jw_raw(w, empty_node, sizeof(empty_node) - 1);
    kedge_jw_key(w, "Err");
    write_status_error(w, &e);
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

/* ---- pods ------------------------------------------------------------------------------------ */

/* PodStatus lists whose patchStrategy is merge (k8s.io/api core/v1 types.go). The container
 * status lists are listType=atomic there, so a patch replaces them whole: an edge that sends
 * only the containers that changed loses the others on a real API server, and so here. */
static const struct smp_list pod_lists[] = {
    {"conditions", "type"},
    {"podIPs", "ip"},
    {"hostIPs", "ip"},
    {NULL, NULL},
};

/* client-go's empty v1.Pod, as Go marshals the zero value: the Object beside an error (as the
 * empty Lease beside the Invalid error in node-and-pod.jsonl). */
static const char empty_pod[] =
    "{\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"containers\":null},\"status\":{}}";

/* metadata.uid of a parsed object; NULL when it has none or an empty one. */
static const struct kedge_jval *meta_uid(const struct kedge_jval *obj)
{
    const struct kedge_jval *u =
        kedge_json_get_exact(kedge_json_get_exact(obj, "metadata", 8), "uid", 3);

    return u && u->type == KEDGE_JSTR && u->len ? u : NULL;
}

/* Does uid (NULL: none given) name another pod than o? A stored pod without a uid (a test sent
 * it without one) matches any. Returns 1, 0, -ENOMEM. */
static int uid_mismatch(const struct object *o, const struct kedge_jval *uid)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *mine;
    int rc;

    if (!uid)
        return 0;
    rc = kedge_json_parse(o->json, o->len, &doc);
    if (rc < 0)
        return rc == -ENOMEM ? rc : 0;
    mine = meta_uid(kedge_jdoc_root(doc));
    rc = mine && (mine->len != uid->len || memcmp(mine->str, uid->str, uid->len) != 0);
    kedge_jdoc_free(doc);
    return rc;
}

/* Take buf's data as o's JSON, at version rv. Returns 0 or -ENOMEM (o unchanged). */
static int object_take_json(struct object *o, struct kedge_buf *buf, const char *rv)
{
    size_t len;
    char *json = kedge_buf_take(buf, &len);

    if (!json)
        return -ENOMEM;
    kedge_free(o->json);
    o->json = json;
    o->len = len;
    (void)snprintf(o->rv, sizeof(o->rv), "%s", rv);
    return 0;
}

/* Apply status (NULL: the patch has none) to the pod o. A change is a new
 * metadata.resourceVersion; a patch that changes nothing writes nothing, as the API server.
 * Counted either way. Returns 0, -ENOMEM. */
static int pod_apply_status(struct controllers *c, struct object *o,
                            const struct kedge_jval *status)
{
    struct kedge_buf patch = KEDGE_BUF_INIT, merged = KEDGE_BUF_INIT, stamp = KEDGE_BUF_INIT,
                     out = KEDGE_BUF_INIT;
    struct kedge_jw w;
    char rv[24];
    int rc;

    kedge_jw_init(&w, &patch);
    kedge_jw_obj_open(&w);
    if (status) {
        kedge_jw_key(&w, "status");
        kedge_json_write_value(&w, status);
    }
    kedge_jw_obj_close(&w);
    rc = kedge_jw_finish(&w);
    if (rc == 0)
        rc = smp_apply(o->json, o->len, patch.data, patch.len, pod_lists, &merged);
    if (rc == 0 && (merged.len != o->len || memcmp(merged.data, o->json, o->len) != 0)) {
        (void)snprintf(rv, sizeof(rv), "%llu", ++c->next_rv);
        rc = kedge_buf_printf(&stamp, "{\"metadata\":{\"resourceVersion\":\"%s\"}}", rv);
        if (rc == 0)
            rc = smp_apply(merged.data, merged.len, stamp.data, stamp.len, pod_lists, &out);
        if (rc == 0)
            rc = object_take_json(o, &out, rv);
    }
    if (rc == 0)
        o->patches++;
    kedge_buf_cleanup(&patch);
    kedge_buf_cleanup(&merged);
    kedge_buf_cleanup(&stamp);
    kedge_buf_cleanup(&out);
    return rc == -ENOMEM ? rc : 0; /* the stored pod parses, and so does our own patch */
}

/* ObjectResp{empty Pod, err}: what client-go's Patch returns beside an error. */
static void write_pod_error(struct kedge_jw *w, const struct status_error *e)
{
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "Object");
    kedge_jw_raw(w, empty_pod, sizeof(empty_pod) - 1);
    kedge_jw_key(w, "Err");
    write_status_error(w, e);
    kedge_jw_obj_close(w);
}

/* The API server refuses a patch whose metadata.uid is not the pod's: the uid is immutable
 * (rest.BeforeUpdate validation, apierrors.NewInvalid). kubelet puts the uid in its status
 * patch for exactly this (pkg/util/pod PatchPodStatus: a precondition). */
static void write_uid_invalid(struct kedge_jw *w, const char *name, const struct kedge_jval *uid)
{
    struct kedge_buf body = KEDGE_BUF_INIT, msg = KEDGE_BUF_INIT;
    struct status_error e = {"Invalid", 422, NULL, "Pod", name, "metadata.uid", NULL};

    if (kedge_buf_printf(&body, "Invalid value: \"%.*s\": field is immutable", (int)uid->len,
                         uid->str) < 0 ||
        kedge_buf_printf(&msg, "Pod \"%s\" is invalid: metadata.uid: %s", name, body.data) < 0)
        w->err = w->err ? w->err : -ENOMEM;
    e.message = msg.data;
    e.cause_message = body.data;
    write_pod_error(w, &e);
    kedge_buf_cleanup(&body);
    kedge_buf_cleanup(&msg);
}

static void write_pod_not_found(struct kedge_jw *w, const char *name)
{
    struct kedge_buf msg = KEDGE_BUF_INIT;
    struct status_error e = {"NotFound", 404, NULL, "pods", name, NULL, NULL};

    if (kedge_buf_printf(&msg, "pods \"%s\" not found", name) < 0)
        w->err = w->err ? w->err : -ENOMEM;
    e.message = msg.data;
    write_pod_error(w, &e);
    kedge_buf_cleanup(&msg);
}

/* A podpatch as cloudcore's patchPod hands it to the API server (PATCH pods/{name}/status,
 * strategic merge): a missing pod is NotFound; a patch that is not a JSON object is a
 * BadRequest; one naming another uid is Invalid (write_uid_invalid); otherwise only its
 * `status` is applied (the status strategy keeps everything else) and the patched Pod is the
 * answer. Writes the ObjectResp into w; *applied: the patch was applied (the reply then carries
 * the pod's resourceVersion). Returns 0 or -ENOMEM. */
static int pod_patch(struct controllers *c, const struct res *r, const char *patch, size_t len,
                     struct kedge_jw *w, bool *applied)
{
    static const struct status_error bad = {
        "BadRequest", 400, "the patch is not a JSON object", NULL, NULL, NULL, NULL};
    struct object *o = object_find(c, r);
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root;
    int rc;

    *applied = false;
    if (!o) {
        write_pod_not_found(w, r->name);
        return 0;
    }
    rc = kedge_json_parse(patch, len, &doc);
    if (rc == -ENOMEM)
        return rc;
    root = rc == 0 ? kedge_jdoc_root(doc) : NULL;
    rc = 0;
    if (!root || root->type != KEDGE_JOBJ) {
        write_pod_error(w, &bad);
    } else if ((rc = uid_mismatch(o, meta_uid(root))) == 1) {
        write_uid_invalid(w, r->name, meta_uid(root));
    } else if (rc == 0 &&
               (rc = pod_apply_status(c, o, kedge_json_get_exact(root, "status", 6))) == 0) {
        write_object_resp(w, o->json, o->len, NULL, r->name);
        *applied = true;
    }
    kedge_jdoc_free(doc);
    return rc < 0 ? rc : 0;
}

/* What the API server's watch makes cloudcore send the node about a pod (downstream.go):
 * op "update" (MODIFIED) or "delete" (DELETED), the object, a new resourceVersion. */
static int pod_event(struct controllers *c, struct hub *h, const char *node, const struct res *r,
                     const char *op, const struct object *o)
{
    struct kedge_msg m;
    char rv[24], resource[600];
    bool needs_ack;
    int rc = -ENOMEM;

    memset(&m, 0, sizeof(m));
    (void)snprintf(rv, sizeof(rv), "%llu", ++c->next_rv);
    (void)snprintf(resource, sizeof(resource), "%s/pod/%s", r->ns, r->name);
    if ((m.source = kedge_strdup("edgecontroller")) && (m.group = kedge_strdup("resource")) &&
        (m.operation = kedge_strdup(op)) && (m.resource_version = kedge_strdup(rv)) &&
        (m.resource = kedge_strdup(resource)))
        rc = kedge_msg_set_content_json(&m, o->json, o->len);
    if (rc == 0)
        rc = hub_enqueue(h, node, &m, &needs_ack);
    kedge_msg_cleanup(&m);
    return rc;
}

static bool pod_terminating(const struct object *o)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *ts = NULL;
    bool yes;

    if (kedge_json_parse(o->json, o->len, &doc) == 0)
        ts = kedge_json_get_exact(kedge_json_get_exact(kedge_jdoc_root(doc), "metadata", 8),
                                  "deletionTimestamp", 17);
    yes = ts && !kedge_json_is_null(ts);
    kedge_jdoc_free(doc);
    return yes;
}

/* The edge's delete of a pod it finalised: kubelet's status manager deletes with grace period
 * 0 and the pod's uid as a DeleteOptions precondition (cloudcore before v1.12 took the uid
 * itself as the content). The pod goes at once. A uid that is not the pod's leaves it (the API
 * server's precondition Conflict). cloudcore answers "OK" either way (upstream.go deletePod:
 * NotFound and "deleted and then recreated" are no errors); the caller sends that. What the
 * API server's watch then says, cloudcore passes on: a pod that was terminating is MODIFIED
 * first (deletionGracePeriodSeconds 0), an `update` that reaches the edge after it finished the
 * pod, then DELETED, a `delete`; *removed is the pod for that (the caller frees it), or NULL.
 * Returns 0 or -ENOMEM. */
static int pod_delete(struct controllers *c, struct hub *h, const char *node, const struct res *r,
                      const char *json, size_t len, struct object **removed)
{
    struct object *o = object_find(c, r), **pp;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *uid = NULL;
    int rc;

    *removed = NULL;
    if (!o)
        return 0;
    rc = kedge_json_parse(json, len, &doc);
    if (rc == -ENOMEM)
        return rc;
    root = rc == 0 ? kedge_jdoc_root(doc) : NULL;
    if (root && root->type == KEDGE_JSTR && root->len)
        uid = root;
    else if (root && !(uid = kedge_json_get_exact(kedge_json_get_exact(root, "preconditions", 13),
                                                  "uid", 3)))
        uid = meta_uid(root);
    if (uid && (uid->type != KEDGE_JSTR || !uid->len))
        uid = NULL;
    rc = uid_mismatch(o, uid);
    if (rc == 1)
        kedge_log(KEDGE_LOG_WARN, "cloudsim: pod %s not deleted: uid %s is another pod's", o->key,
                  uid->str);
    if (rc == 0 && pod_terminating(o))
        rc = pod_event(c, h, node, r, "update", o);
    if (rc == 0) {
        for (pp = &c->objects; *pp != o; pp = &(*pp)->next)
            ;
        *pp = o->next;
        *removed = o;
    }
    kedge_jdoc_free(doc);
    return rc < 0 ? rc : 0;
}

/* One entry of GET /pods. */
static void write_pod_entry(struct kedge_jw *w, const struct object *o)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root = NULL, *uid, *phase;

    if (kedge_json_parse(o->json, o->len, &doc) == 0)
        root = kedge_jdoc_root(doc);
    else
        w->err = w->err ? w->err : -ENOMEM; /* only JSON objects are stored */
    uid = meta_uid(root);
    phase = kedge_json_get_exact(kedge_json_get_exact(root, "status", 6), "phase", 5);
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "key", o->key);
    kedge_jw_key(w, "uid");
    kedge_jw_strn(w, uid ? uid->str : "", uid ? uid->len : 0);
    kedge_jw_key(w, "phase");
    if (phase && phase->type == KEDGE_JSTR)
        kedge_jw_strn(w, phase->str, phase->len);
    else
        kedge_jw_str(w, "");
    kedge_jw_kint(w, "patches", (int64_t)o->patches);
    kedge_jw_key(w, "object");
    kedge_jw_raw(w, o->json, o->len);
    kedge_jw_obj_close(w);
    kedge_jdoc_free(doc);
}

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
