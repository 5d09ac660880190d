/* ctlpriv.h: what the files of cloudsim's controllers share (controllers.c: the device and
 * edge controllers and the entry points; ctlstore.c: the object store; ctlreply.c: replies and
 * Status errors; ctlpods.c: pods). Private to those files. */
#ifndef KEDGE_CLOUDSIM_CTLPRIV_H
#define KEDGE_CLOUDSIM_CTLPRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "cloudsim.h"
#include "kedge/buf.h"

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

/* A trimmed edge-controller resource, {ns}/{type}/{name}, split. */
struct res {
    char ns[256], type[64], name[256];
};

/* What a reply reads of a stored object: borrowed until the store changes. */
struct view {
    const char *json;
    size_t len;
    const char *rv;
    bool found;
};

struct reply {
    const char *source, *group, *resource, *rv;
    struct kedge_buf content; /* JSON, or empty for the string "OK" */
};

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

/* ---- ctlstore.c ---- */

/* Split a trimmed resource into r: 0, or -1 when it is not {ns}/{type}/{name} or too long. */
int res_split(const char *resource, struct res *r);

/* The stored object for r, or NULL. */
struct object *object_find(struct controllers *c, const struct res *r);

/* Store json under r. rv: the version to record, NULL = the next of our own. */
int object_put(struct controllers *c, const struct res *r, const char *json, size_t len,
               const char *rv);

/* Free an object taken out of the store. */
void object_free(struct object *o);

/* Remove (and free) the object for r, if stored. */
void object_delete(struct controllers *c, const struct res *r);

/* The JSON a message carries: a string holding JSON is that JSON (spec fact 18). */
void content_json(const struct kedge_msg *m, const char **json, size_t *len);

/* Whether json parses as a JSON object. */
bool content_is_object(const char *json, size_t len);

/* Whether r is a Node (stored namespace-free). */
bool is_node(const struct res *r);

/* What a reply reads of r: found or not, json and rv borrowed from the store. */
void view_get(struct controllers *c, const struct res *r, struct view *v);

/* The legacy nodestatus update {"UID":..,"Status":{..},"ExtendResources":..} as a status patch. */
int legacy_status_patch(const char *json, size_t len, struct kedge_buf *out);

/* ---- ctlreply.c ---- */

/* Queue the response to req for node through hub_enqueue (ack rules apply); rp->content is
 * consumed. */
int reply_send(struct hub *h, const char *node, const struct kedge_msg *req, struct reply *rp);

/* e as {"ErrStatus":<metav1.Status>}. */
void write_status_error(struct kedge_jw *w, const struct status_error *e);

/* k8s apierrors.NewNotFound(GroupResource, name). what: "resource" or "resource.group", as
 * GroupResource.String(). */
void write_not_found(struct kedge_jw *w, const char *what, const char *name);

/* The API server's Create of a Node that exists: ObjectResp{empty Node, AlreadyExists}. */
void write_node_exists(struct kedge_jw *w, const char *name);

/* edgeapi.ObjectResp{Object, Err}: no json tags, so the keys are the Go field names. */
void write_object_resp(struct kedge_jw *w, const char *obj, size_t obj_len, const char *not_found,
                       const char *name);

/* ---- ctlpods.c ---- */

/* metadata.uid of a parsed object; NULL when it has none or an empty one. */
const struct kedge_jval *meta_uid(const struct kedge_jval *obj);

/* A podpatch as cloudcore's patchPod hands it to the API server (PATCH pods/{name}/status,
 * strategic merge): a missing pod is NotFound; a patch that is not a JSON object is a
 * BadRequest; one naming another uid is Invalid (write_uid_invalid); otherwise only its
 * `status` is applied (the status strategy keeps everything else) and the patched Pod is the
 * answer. Writes the ObjectResp into w; *applied: the patch was applied (the reply then carries
 * the pod's resourceVersion). Returns 0 or -ENOMEM. */
int pod_patch(struct controllers *c, const struct res *r, const char *patch, size_t len,
              struct kedge_jw *w, bool *applied);

/* What the API server's watch makes cloudcore send the node about a pod (downstream.go):
 * op "update" (MODIFIED) or "delete" (DELETED), the object, a new resourceVersion. */
int pod_event(struct controllers *c, struct hub *h, const char *node, const struct res *r,
              const char *op, const struct object *o);

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
               const char *json, size_t len, struct object **removed);

/* One entry of GET /pods. */
void write_pod_entry(struct kedge_jw *w, const struct object *o);

#endif
