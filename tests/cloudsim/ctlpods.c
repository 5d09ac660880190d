/* ctlpods.c: pods in cloudsim's store: a podpatch applied as the API server's PATCH of
 * pods/status (strategic merge, smpatch.c), NotFound and uid Invalid errors, the edge's delete
 * of a pod it finalised with the watch events cloudcore would pass on, and the pod list of the
 * control API (controllers.c describes the behaviour). */
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
const struct kedge_jval *meta_uid(const struct kedge_jval *obj)
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
int pod_patch(struct controllers *c, const struct res *r, const char *patch, size_t len,
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
int pod_event(struct controllers *c, struct hub *h, const char *node, const struct res *r,
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
int pod_delete(struct controllers *c, struct hub *h, const char *node, const struct res *r,
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
void write_pod_entry(struct kedge_jw *w, const struct object *o)
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
