/* tc_pods.c: test_cloudsim's cases for pods: status patches, deletes and the object API
 * (test_cloudsim.c says how they work). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/msg.h"
#include "kedge/util.h"
#include "simctl.h"
#include "simtest.h"

/* ---- pods ----------------------------------------------------------------------------------- */

#define POD_UID "2b7e1b0c-4f0e-4b8e-9a51-6a3c5b7d9e01"
#define POD_STORED                                                                                 \
    "{\"metadata\":{\"name\":\"nginx\",\"namespace\":\"default\",\"uid\":\"" POD_UID "\"},"        \
    "\"spec\":{\"nodeName\":\"edge-node\",\"containers\":[{\"name\":\"a\",\"image\":\"nginx\"},"   \
    "{\"name\":\"b\",\"image\":\"busybox\"}]},\"status\":{\"phase\":\"Pending\",\"conditions\":["  \
    "{\"type\":\"PodScheduled\",\"status\":\"True\"}],\"containerStatuses\":[{\"name\":\"a\","     \
    "\"ready\":false},{\"name\":\"b\",\"ready\":false}]}}"
#define POD_SEND(name, content)                                                                    \
    "{\"header\":{\"resourceversion\":\"4711\"},\"route\":{\"source\":\"edgecontroller\","         \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":\"default/pod/" name "\"},"      \
    "\"content\":" content "}"
#define POD_TERMINATING                                                                            \
    "{\"metadata\":{\"name\":\"nginx\",\"namespace\":\"default\",\"uid\":\"" POD_UID "\","         \
    "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\",\"deletionGracePeriodSeconds\":30},"           \
    "\"spec\":{\"nodeName\":\"edge-node\",\"containers\":[{\"name\":\"a\",\"image\":\"nginx\"}]}}"
/* client-go's empty Pod: the Object beside an error */
#define EMPTY_POD                                                                                  \
    "{\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"containers\":null},\"status\":{}}"

/* json as a JSON string: a patch's content is a string holding the patch (docs/kubeedge-wire.md
 * §5.1). */
static char *as_string(const char *json)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char *out;

    ck_assert_int_eq(kedge_json_escape(&b, json, strlen(json)), 0);
    out = kedge_buf_take(&b, NULL);
    ck_assert_ptr_nonnull(out);
    return out;
}

/* A podpatch from edged (the patch JSON sent as a string), its reply in m. */
static void pod_patch(struct wsc *w, const char *id, const char *name, const char *patch,
                      struct kedge_msg *m)
{
    char resource[128], *content = as_string(patch);

    (void)snprintf(resource, sizeof(resource), "default/podpatch/%s", name);
    edge_call(w, id, "patch", resource, content, m);
    ck_assert_str_eq(m->source, "edgecontroller");
    ck_assert_str_eq(m->group, "resource");
    ck_assert_str_eq(m->operation, "response");
    ck_assert_str_eq(m->resource, resource);
    kedge_free(content);
}

/* The cloud sends a pod to the edge (stored in the cloud's store), and the edge acks it. */
static void cloud_sends_pod(struct simctl *s, struct wsc *w, const char *json)
{
    struct kedge_msg m;

    ck_assert_int_eq(simctl_send(s, NULL, json, NULL), 0);
    wsc_expect_next(w, &m);
    edge_ack(w, &m);
    kedge_msg_cleanup(&m);
}

/* One pod of GET /pods by key (its fields in v), or false when it is not listed. */
struct pod_view {
    char uid[64], phase[32];
    int64_t patches;
    int count; /* pods listed in all */
};

static bool pod_view(struct simctl *s, const char *key, struct pod_view *v)
{
    struct kedge_jdoc *doc = get_json(s, "/pods");
    const struct kedge_jval *p;
    bool found = false;

    memset(v, 0, sizeof(*v));
    p = kedge_json_get(kedge_jdoc_root(doc), "pods");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->type, KEDGE_JARR);
    for (p = p->child; p; p = p->next, v->count++) {
        if (!str_eq(kedge_json_get(p, "key")->str, key))
            continue;
        found = true;
        (void)snprintf(v->uid, sizeof(v->uid), "%s", kedge_json_get(p, "uid")->str);
        (void)snprintf(v->phase, sizeof(v->phase), "%s", kedge_json_get(p, "phase")->str);
        ck_assert_int_eq(kedge_json_int64(kedge_json_get(p, "patches"), &v->patches), 0);
        ck_assert_int_eq(kedge_json_get(p, "object")->type, KEDGE_JOBJ);
    }
    kedge_jdoc_free(doc);
    return found;
}

/* A request answered in order after everything the edge sent before it: a lease query, whose
 * answer needs no ack (docs/kubeedge-wire.md §5.2). */
enum { DEL_UPDATE = 1, DEL_DELETE = 2 };

/* The edge deletes pod default/pod/{name}: cloudcore answers "OK" (parent id), and for a pod
 * that went, the watch events come down (`update` if it was terminating, then `delete`), each
 * acked here; `events` says which must come. They and the answer may come in any order
 * (cloudcore sends them from different goroutines), the update before the delete. */
static void edge_delete(struct wsc *w, const char *id, const char *name, const char *content,
                        int events)
{
    char resource[128];
    int seen = 0;
    bool answered = false;

    (void)snprintf(resource, sizeof(resource), "default/pod/%s", name);
    edge_msg_send(w, id, "delete", resource, content);
    while (!answered || seen != events) {
        struct kedge_msg m;
        wsc_expect_next(w, &m);
        if (str_eq(m.operation, "response")) {
            ck_assert_str_eq(m.parent_msg_id, id);
            ck_assert(m.content_is_string && !strcmp(m.content_str, "OK"));
            answered = true;
        } else {
            int ev = str_eq(m.operation, "update") ? DEL_UPDATE : DEL_DELETE;
            ck_assert_str_eq(m.source, "edgecontroller");
            ck_assert_str_eq(m.resource, resource);
            ck_assert_msg(str_eq(m.operation, "update") || str_eq(m.operation, "delete"), "%s",
                          m.operation);
            ck_assert_msg((events & ev) && !(seen & ev), "unexpected %s", m.operation);
            ck_assert_msg(ev == DEL_UPDATE || !(events & DEL_UPDATE) || (seen & DEL_UPDATE),
                          "the delete came before the update");
            ck_assert_ptr_nonnull(strstr(m.content, name)); /* the Pod as stored */
            seen |= ev;
            edge_ack(w, &m);
        }
        kedge_msg_cleanup(&m);
    }
}

/* Pod status (docs/kubeedge-wire.md §7, §8.4 step 6): a podpatch is applied to the pod the cloud
 * sent as the API server applies PATCH pods/status (strategic merge: conditions merge by type, the
 * container status lists are atomic and replaced, only status is taken) and answered with the
 * patched Pod and its new resourceVersion. A patch naming another pod's uid is Invalid and changes
 * nothing; a pod the cloud does not have is NotFound; a patch that is not an object is a
 * BadRequest. GET /pods and GET /object show the result. */
START_TEST(test_pod_status_patch)
{
    struct simctl *s = sim_start(0, 0);
    char expect[2048], *obj, *after_first;
    struct pod_view v;
    struct kedge_msg m;
    struct wsc w;

    edge_connect(&w, s, "edge-node");
    cloud_sends_pod(s, &w, POD_SEND("nginx", POD_STORED));
    ck_assert(pod_view(s, "default/pod/nginx", &v));
    ck_assert_int_eq(v.count, 1);
    ck_assert_str_eq(v.uid, POD_UID);
    ck_assert_str_eq(v.phase, "Pending");
    ck_assert_int_eq(v.patches, 0);

    /* the uid is a precondition; conditions merge by type (PodScheduled keeps its place and
     * gains a field, Ready is added); containerStatuses is replaced whole; spec and the rest of
     * metadata stay; a new resourceVersion, in the header and in the object */
    pod_patch(&w, "pp1", "nginx",
              "{\"metadata\":{\"uid\":\"" POD_UID "\"},\"status\":{\"phase\":\"Running\","
              "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},{\"type\":"
              "\"PodScheduled\",\"status\":\"True\",\"lastTransitionTime\":"
              "\"2030-01-01T00:00:00Z\"}],\"podIP\":\"10.0.0.5\",\"containerStatuses\":[{"
              "\"name\":\"b\",\"ready\":true,\"restartCount\":0}]}}",
              &m);
    ck_assert_ptr_nonnull(m.resource_version);
    ck_assert_str_ne(m.resource_version, "4711");
    (void)snprintf(
        expect, sizeof(expect),
        "{\"Object\":{\"metadata\":{\"name\":\"nginx\",\"namespace\":\"default\",\"uid\":"
        "\"" POD_UID "\",\"resourceVersion\":\"%s\"},\"spec\":{\"nodeName\":\"edge-node\","
        "\"containers\":[{\"name\":\"a\",\"image\":\"nginx\"},{\"name\":\"b\",\"image\":"
        "\"busybox\"}]},\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":"
        "\"PodScheduled\",\"status\":\"True\",\"lastTransitionTime\":\"2030-01-01T00:00:00Z\"},"
        "{\"type\":\"Ready\",\"status\":\"True\"}],\"containerStatuses\":[{\"name\":\"b\","
        "\"ready\":true,\"restartCount\":0}],\"podIP\":\"10.0.0.5\"}},\"Err\":null}",
        m.resource_version);
    ck_assert_str_eq(m.content, expect);
    kedge_msg_cleanup(&m);
    ck_assert(pod_view(s, "default/pod/nginx", &v));
    ck_assert_str_eq(v.phase, "Running");
    ck_assert_int_eq(v.patches, 1);
    /* GET /object is the Object the edge got */
    after_first = get_object(s, "default/pod/nginx");
    ck_assert_ptr_nonnull(after_first);
    ck_assert_int_eq(strncmp(expect + strlen("{\"Object\":"), after_first, strlen(after_first)), 0);
    ck_assert_str_eq(expect + strlen("{\"Object\":") + strlen(after_first), ",\"Err\":null}");
    obj = get_object(s, "default%2Fpod%2Fnginx"); /* the key may be URL-encoded */
    ck_assert_ptr_nonnull(obj);
    ck_assert_str_eq(obj, after_first);
    kedge_free(obj);

    /* another pod's uid: Invalid (the uid is immutable), the empty Pod beside it, no version,
     * nothing applied */
    pod_patch(&w, "pp2", "nginx",
              "{\"metadata\":{\"uid\":\"other-uid\"},\"status\":{\"phase\":\"Failed\"}}", &m);
    ck_assert_str_eq(
        m.content,
        "{\"Object\":" EMPTY_POD ",\"Err\":{\"ErrStatus\":{\"metadata\":{},\"status\":\"Failure\","
        "\"message\":\"Pod \\\"nginx\\\" is invalid: metadata.uid: Invalid value: "
        "\\\"other-uid\\\": field is immutable\",\"reason\":\"Invalid\",\"details\":{\"name\":"
        "\"nginx\",\"kind\":\"Pod\",\"causes\":[{\"reason\":\"FieldValueInvalid\",\"message\":"
        "\"Invalid value: \\\"other-uid\\\": field is immutable\",\"field\":\"metadata.uid\"}]},"
        "\"code\":422}}}");
    ck_assert(!m.resource_version || !*m.resource_version);
    kedge_msg_cleanup(&m);
    obj = get_object(s, "default/pod/nginx");
    ck_assert_str_eq(obj, after_first);
    kedge_free(obj);

    /* no uid: no precondition; a condition changes in place, the other lists stay */
    pod_patch(&w, "pp3", "nginx",
              "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","
              "\"reason\":\"ContainersNotReady\"}]}}",
              &m);
    ck_assert_ptr_nonnull(strstr(
        m.content, "\"conditions\":[{\"type\":\"PodScheduled\",\"status\":\"True\","
                   "\"lastTransitionTime\":\"2030-01-01T00:00:00Z\"},{\"type\":\"Ready\","
                   "\"status\":\"False\",\"reason\":\"ContainersNotReady\"}],"
                   "\"containerStatuses\":[{\"name\":\"b\",\"ready\":true,\"restartCount\":0}]"));
    kedge_msg_cleanup(&m);
    ck_assert(pod_view(s, "default/pod/nginx", &v));
    ck_assert_int_eq(v.patches, 2);

    /* a pod the cloud does not have */
    pod_patch(&w, "pp4", "ghost",
              "{\"metadata\":{\"uid\":\"" POD_UID "\"},\"status\":{\"phase\":\"Running\"}}", &m);
    ck_assert_str_eq(m.content,
                     "{\"Object\":" EMPTY_POD ",\"Err\":{\"ErrStatus\":{\"metadata\":{},"
                     "\"status\":\"Failure\",\"message\":\"pods \\\"ghost\\\" not found\","
                     "\"reason\":\"NotFound\",\"details\":{\"name\":\"ghost\",\"kind\":\"pods\"},"
                     "\"code\":404}}}");
    ck_assert(!m.resource_version || !*m.resource_version);
    kedge_msg_cleanup(&m);
    ck_assert(!pod_view(s, "default/pod/ghost", &v));

    /* a patch that is not an object */
    pod_patch(&w, "pp5", "nginx", "[1]", &m);
    ck_assert_ptr_nonnull(strstr(m.content, "\"reason\":\"BadRequest\""));
    ck_assert_ptr_nonnull(strstr(m.content, "\"code\":400"));
    kedge_msg_cleanup(&m);
    ck_assert(pod_view(s, "default/pod/nginx", &v));
    ck_assert_int_eq(v.patches, 2);

    kedge_free(after_first);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* The edge finalises a pod the cloud deleted (docs/kubeedge-wire.md §5.1 pod delete): the delete
 * removes it from the store when its uid is the pod's (DeleteOptions preconditions, metadata, or
 * the bare uid of old edges), and leaves it when the uid is another pod's; each is answered "OK"
 * (cloudcore's deletePod), and a removed pod's watch events follow (a terminating pod's late
 * update, the delete). GET /object: 404 for what is not stored, 400 without a key, and Nodes by
 * either key. */
START_TEST(test_pod_delete_and_object_api)
{
    struct simctl *s = sim_start(0, 0);
    struct kedge_buf body = KEDGE_BUF_INIT;
    struct pod_view v;
    struct wsc w;
    char *obj;
    int status;

    edge_connect(&w, s, "edge-node");
    cloud_sends_pod(s, &w, POD_SEND("nginx", POD_STORED));
    cloud_sends_pod(s, &w, POD_SEND("web", "{\"metadata\":{\"name\":\"web\"}}"));
    ck_assert(pod_view(s, "default/pod/web", &v));
    ck_assert_int_eq(v.count, 2);
    ck_assert_str_eq(v.uid, "");
    ck_assert_str_eq(v.phase, "");

    /* another pod's uid: stays; answered "OK" all the same */
    edge_delete(&w, "d1", "nginx",
                "{\"gracePeriodSeconds\":0,\"preconditions\":{\"uid\":\"other-uid\"}}", 0);
    ck_assert(pod_view(s, "default/pod/nginx", &v));
    ck_assert_int_eq(v.count, 2);

    /* its own uid: gone, "OK", and the API server's DELETED event comes down as a delete */
    edge_delete(&w, "d2", "nginx",
                "{\"gracePeriodSeconds\":0,\"preconditions\":{\"uid\":\"" POD_UID "\"}}",
                DEL_DELETE);
    ck_assert(!pod_view(s, "default/pod/nginx", &v));
    ck_assert_int_eq(v.count, 1);
    ck_assert_ptr_null(get_object(s, "default/pod/nginx"));

    /* the uid as the content (before v1.12); then a pod without a uid, DeleteOptions {} */
    cloud_sends_pod(s, &w, POD_SEND("nginx", POD_STORED));
    edge_delete(&w, "d3", "nginx", "\"" POD_UID "\"", DEL_DELETE);
    edge_delete(&w, "d4", "web", "{}", DEL_DELETE);
    ck_assert(!pod_view(s, "default/pod/nginx", &v));
    ck_assert_int_eq(v.count, 0);

    /* a pod the cloud is deleting (deletionTimestamp): the edge's delete after it finished
     * the pod brings the MODIFIED update (a late update of a finished pod) and the delete */
    cloud_sends_pod(s, &w, POD_SEND("nginx", POD_TERMINATING));
    edge_delete(&w, "d5", "nginx", "\"" POD_UID "\"", DEL_UPDATE | DEL_DELETE);
    ck_assert(!pod_view(s, "default/pod/nginx", &v));

    /* GET /object for other kinds and its errors */
    ck_assert_int_eq(simctl_http(s, "GET", "/object", NULL, &status, &body), 0);
    ck_assert_int_eq(status, 400);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "POST", "/object?key=a/b/c", NULL, &status, &body), 0);
    ck_assert_int_eq(status, 405);
    kedge_buf_cleanup(&body);
    ck_assert_ptr_null(get_object(s, "node/edge-node"));
    edge_request(&w, "n1", "insert", "null/node/edge-node", NODE_READY);
    obj = get_object(s, "node/edge-node");
    ck_assert_ptr_nonnull(strstr(obj, "\"name\":\"edge-node\""));
    kedge_free(obj);
    obj = get_object(s, "null/node/edge-node");
    ck_assert_ptr_nonnull(strstr(obj, "\"name\":\"edge-node\""));
    kedge_free(obj);
    ck_assert_int_eq(simctl_send(s, NULL, CONFIGMAP_UPDATE, NULL), 0);
    obj = get_object(s, "default/configmap/cfg");
    ck_assert_str_eq(obj, "{\"metadata\":{\"name\":\"cfg\"},\"data\":{\"k\":\"v\"}}");
    kedge_free(obj);

    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

void cloudsim_add_pod_tests(TCase *tc)
{
    tcase_add_test(tc, test_pod_status_patch);
    tcase_add_test(tc, test_pod_delete_and_object_api);
}
