/* edged_pods.c: pods in and out. A pod comes from the store (at start, and again when the
 * cloud did not confirm its deletion) or from the cloud (insert, update, delete); it is taken
 * when it is bound to this node and not finished here, refused with a Failed status when it
 * cannot run as written, updated in place (a container whose spec did not change keeps its
 * state), or marked terminating. A pod this node has finished is deleted in the cloud with
 * kubelet's precondition; without the cloud's OK it is taken again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edged_int.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/util.h"

/* A pod's delete in flight (the pod is forgotten already), then, if the cloud did not confirm
 * it, the pod to take again from the store. */
struct deletion {
    struct deletion *next; /* in ed->retakes */
    struct edged *ed;
    char *key;
    uint64_t retake_ms; /* monotonic */
    char uid[];
};

static void deletion_free(struct deletion *d)
{
    kedge_free(d->key);
    kedge_free(d);
}

/* The cloud's answer to the delete: "OK" (cloudcore's deletePod answers so also when the pod
 * is gone already), or an error, or none. Without an OK the pod may still be there, waiting
 * for this node: the UID is no longer taken as finished and the pod, if the store still has
 * it, is taken again (it is terminating, so it ends in another delete) by the tick: at once
 * after a timeout (a lost link), after RETAKE_AFTER_ERROR_MS after an error, as kubelet's
 * status manager retries at its next sync rather than at once. */
static void delete_answered(void *ctx, const struct kedge_msg *m, int err)
{
    struct deletion *d = ctx;
    struct edged *ed = d->ed;

    if ((!err && m && m->content_is_string && m->content_str_len == 2 &&
         !memcmp(m->content_str, "OK", 2)) ||
        err == -ECANCELED || ed->stopping) {
        deletion_free(d);
        return;
    }
    kedge_log(KEDGE_LOG_WARN, "edged: pod %s (%s): the cloud did not confirm its deletion (%s)",
              d->key, d->uid, err ? kedge_strerror(err) : "an error");
    podgone_forget(ed->gone, d->uid);
    d->retake_ms = kedge_now_ms() + (err ? 0 : RETAKE_AFTER_ERROR_MS);
    d->next = ed->retakes;
    ed->retakes = d;
}

/* The tick: take the due ones of the pods whose deletion was not confirmed again. */
void edged_retake_due(struct edged *ed, uint64_t now)
{
    struct deletion **pp = &ed->retakes, *d;
    char *json;

    while ((d = *pp)) {
        if (now < d->retake_ms) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        json = NULL;
        if (!edged_pod_by_uid(ed, d->uid) && ed->deps.store_get(ed->deps.ctx, d->key, &json) == 0 &&
            strstr(json, d->uid))
            edged_pod_apply(ed, d->key, json, strlen(json), false);
        kedge_free(json);
        deletion_free(d);
    }
}

/* The cloud finalises a pod the kubelet has stopped with a delete from the kubelet: grace
 * period 0, the UID as the precondition (kubelet's status_manager.go). 0, or -ENOTCONN,
 * -ENOMEM: not sent. */
int edged_send_pod_delete(struct edged *ed, struct epod *p)
{
    char resource[600], opts[200];
    size_t ul = strlen(p->uid);
    struct deletion *dc = kedge_calloc(1, sizeof(*dc) + ul + 1);
    int rc = dc ? 0 : -ENOMEM;

    snprintf(resource, sizeof(resource), "%s/pod/%s", p->spec->ns, p->spec->name);
    snprintf(opts, sizeof(opts), "{\"gracePeriodSeconds\":0,\"preconditions\":{\"uid\":\"%s\"}}",
             p->uid);
    if (dc) {
        dc->ed = ed;
        memcpy(dc->uid, p->uid, ul + 1);
        if (!(dc->key = kedge_strdup(p->key)))
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = edged_request_cloud(ed, "delete", resource, opts, false, delete_answered, dc);
    if (rc < 0 && dc)
        deletion_free(dc);
    return rc;
}

/* A pod taken again after a restart keeps the startTime and condition transition times it
 * reported (kubelet never moves them back): read from the podpatch row of the same UID. */
static void seed_from_last_patch(struct edged *ed, struct epod *p)
{
    static const char *const names[N_COND] = {"Initialized", "Ready", "ContainersReady",
                                              "PodScheduled"};
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *uid, *st, *c;
    char key[600], *json = NULL;

    snprintf(key, sizeof(key), "%s/podpatch/%s", p->spec->ns, p->spec->name);
    if (ed->deps.store_get(ed->deps.ctx, key, &json) < 0 ||
        kedge_json_parse(json, strlen(json), &doc) < 0)
        goto out;
    root = kedge_jdoc_root(doc);
    uid = kedge_json_get(kedge_json_get(root, "metadata"), "uid");
    if (!uid || uid->type != KEDGE_JSTR || strcmp(uid->str, p->uid))
        goto out; /* an earlier pod of that name */
    st = kedge_json_get(root, "status");
    c = kedge_json_get(st, "startTime");
    if (c && c->type == KEDGE_JSTR && podstatus_parse_time_ms(c->str))
        p->start_ms = podstatus_parse_time_ms(c->str);
    c = kedge_json_get(st, "conditions");
    for (c = c && c->type == KEDGE_JARR ? c->child : NULL; c; c = c->next) {
        const struct kedge_jval *t = kedge_json_get(c, "type"), *v = kedge_json_get(c, "status");
        const struct kedge_jval *at = kedge_json_get(c, "lastTransitionTime");
        for (int i = 0; i < N_COND; i++)
            if (t && t->type == KEDGE_JSTR && !strcmp(t->str, names[i]) && v &&
                v->type == KEDGE_JSTR && at && at->type == KEDGE_JSTR) {
                p->cond_last[i] = !strcmp(v->str, "True");
                p->cond_since_s[i] = podstatus_parse_time_ms(at->str) / 1000;
            }
    }
    p->cond_known = true;
out:
    kedge_jdoc_free(doc);
    kedge_free(json);
}

/* Swap in a new spec of the same pod (an update): a container whose spec did not change keeps
 * its state (readiness, back-off, probes); a changed one starts over. */
static int pod_update(struct edged *ed, struct epod *p, struct pod_spec *spec)
{
    size_t n = spec->n_init_containers + spec->n_containers, i, k;
    struct cstate *cs = kedge_calloc(n ? n : 1, sizeof(*cs));
    struct epod np;

    if (!cs) {
        podspec_free(spec);
        return -ENOMEM;
    }
    np.spec = spec;
    for (i = 0; i < n; i++) {
        const struct pod_container *c = edged_spec_container(&np, i);
        for (k = 0; k < p->n_cs; k++) {
            const struct pod_container *o = edged_spec_container(p, k);
            if (o->name && c->name && !strcmp(o->name, c->name) && o->hash == c->hash &&
                edged_is_init(&np, i) == edged_is_init(p, k)) {
                cs[i] = p->cs[k];
                memset(&p->cs[k], 0, sizeof(p->cs[k])); /* moved */
                break;
            }
        }
    }
    for (k = 0; k < p->n_cs; k++)
        edged_cstate_cleanup(ed, &p->cs[k]);
    kedge_free(p->cs);
    podspec_free(p->spec);
    p->cs = cs;
    p->n_cs = n;
    p->spec = spec;
    p->volumes_dirty = true;
    return 0;
}

static bool for_this_node(struct edged *ed, const struct pod_spec *spec)
{
    return spec->node_name && !strcmp(spec->node_name, ed->cfg.node_name);
}

/* A pod of this node that cannot run as written (an invalid container name, say): Failed,
 * with the reason, so the user sees why instead of a pod that stays Pending (kubelet rejects
 * a pod it cannot admit the same way). The pod is not kept. */
static void report_refused(struct edged *ed, const char *key, const char *json, size_t len,
                           const char *why)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *uid, *node;
    struct kedge_buf status = KEDGE_BUF_INIT, patch = KEDGE_BUF_INIT;
    struct kedge_jw w;
    const char *slash = strstr(key, "/pod/");
    char resource[600];

    if (!slash || kedge_json_parse(json, len, &doc) < 0)
        return;
    root = kedge_jdoc_root(doc);
    uid = kedge_json_get(kedge_json_get(root, "metadata"), "uid");
    node = kedge_json_get(kedge_json_get(root, "spec"), "nodeName");
    if (uid && uid->type == KEDGE_JSTR && uid->len && node && node->type == KEDGE_JSTR &&
        !strcmp(node->str, ed->cfg.node_name)) {
        snprintf(resource, sizeof(resource), "%.*s/podpatch/%s", (int)(slash - key), key,
                 slash + 5);
        kedge_jw_init(&w, &status);
        kedge_jw_obj_open(&w);
        kedge_jw_kstr(&w, "phase", "Failed");
        kedge_jw_kstr(&w, "message", why);
        kedge_jw_kstr(&w, "reason", "InvalidPodSpec");
        kedge_jw_obj_close(&w);
        if (kedge_jw_finish(&w) == 0 &&
            podstatus_patch(uid->str, status.data, status.len, &patch) == 0)
            (void)edged_send_to_cloud(ed, "patch", resource, patch.data, true);
    }
    kedge_buf_cleanup(&status);
    kedge_buf_cleanup(&patch);
    kedge_jdoc_free(doc);
}

/* Take a pod from the store or the cloud. */
void edged_pod_apply(struct edged *ed, const char *key, const char *json, size_t len, bool deleted)
{
    struct pod_spec *spec = NULL;
    struct epod *p = edged_pod_by_key(ed, key);
    char why[512] = "";
    int rc = podspec_parse(json, len, &spec, why, sizeof(why));

    if (rc < 0 && !deleted) {
        kedge_log(KEDGE_LOG_WARN, "edged: pod %s refused: %s", key,
                  why[0] ? why : kedge_strerror(rc));
        if (rc == KEDGE_ESCHEMA)
            report_refused(ed, key, json, len, why);
        return;
    }
    if (deleted) {
        /* only the pod with that UID (a delete may carry nothing else) */
        if (p && (!spec || !spec->uid || !*spec->uid || !strcmp(spec->uid, p->uid))) {
            p->terminating = true;
            p->finalise = false;
        }
        podspec_free(spec);
        edged_relist_soon(ed);
        return;
    }
    if (podgone_has(ed->gone, spec->uid, kedge_now_ms())) {
        /* a late update of a pod this node has finished (stopped, reported, deleted): kubelet
         * ignores those; starting it again would patch a pod the cloud is deleting */
        kedge_log(KEDGE_LOG_INFO, "edged: pod %s (%s) is finished here: update ignored", key,
                  spec->uid);
        podspec_free(spec);
        return;
    }
    if (!for_this_node(ed, spec)) {
        kedge_log(KEDGE_LOG_INFO, "edged: pod %s is bound to node \"%s\", not this one", key,
                  spec->node_name ? spec->node_name : "");
        podspec_free(spec);
        return;
    }
    if (p && strcmp(p->uid, spec->uid ? spec->uid : "")) {
        p->terminating = true; /* a new pod under the old name: the old one goes first */
        p->finalise = false;
        p = NULL;
    }
    if (!p) {
        p = edged_pod_new(key, spec);
        if (!p)
            return;
        p->next = ed->pods;
        ed->pods = p;
        seed_from_last_patch(ed, p);
        kedge_log(KEDGE_LOG_NOTICE, "edged: pod %s (%s) added", key, p->uid);
    } else if (pod_update(ed, p, spec) < 0) {
        return;
    }
    if (p->spec->deleting && !p->terminating) {
        p->terminating = true;
        p->finalise = true;
    }
    edged_relist_soon(ed);
}

void edged_retakes_free(struct edged *ed)
{
    while (ed->retakes) {
        struct deletion *d = ed->retakes;
        ed->retakes = d->next;
        deletion_free(d);
    }
}
