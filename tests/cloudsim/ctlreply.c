/* ctlreply.c: how cloudsim's controllers answer the edge: a response message queued through
 * hub_enqueue (which applies the ack rules), and the Kubernetes Status errors (NotFound,
 * AlreadyExists, Invalid) in the shapes node-and-pod.jsonl shows. */
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

/* ---- replies --------------------------------------------------------------------------------- */

int reply_send(struct hub *h, const char *node, const struct kedge_msg *req, struct reply *rp)
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

void write_status_error(struct kedge_jw *w, const struct status_error *e)
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
void write_not_found(struct kedge_jw *w, const char *what, const char *name)
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
void write_node_exists(struct kedge_jw *w, const char *name)
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
void write_object_resp(struct kedge_jw *w, const char *obj, size_t obj_len, const char *not_found,
                       const char *name)
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
