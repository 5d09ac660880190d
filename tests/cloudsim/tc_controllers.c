/* tc_controllers.c: test_cloudsim's cases for the device and edge controllers, service account
 * tokens, the node lifecycle, the reject fault (test_cloudsim.c says how they work). */
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

static const struct {
    const char *version, *id, *unknown_res;
    bool creates_twins, answers_state;
} generations[] = {
    /* GetDeviceID reads "default": unknown */
    {"1.15", "thermo", "device/default/thermo/twin/edge_updated", false, false},
    /* GetDeviceID reads two levels: "thermo/twin", unknown; findOrCreateTwinByName */
    {"1.17", "default/thermo", "device/thermo/twin/edge_updated", true, false},
    /* and state/update is answered */
    {"1.18", "default/thermo", "device/thermo/twin/edge_updated", true, true},
};

#define THERMO_DEVICE                                                                              \
    "{\"header\":{\"resourceversion\":\"50\"},\"route\":{\"source\":\"devicecontroller\","         \
    "\"group\":\"resource\",\"operation\":\"insert\",\"resource\":"                                \
    "\"node/edge-node/default/device/thermo\"},\"content\":{\"apiVersion\":"                       \
    "\"devices.kubeedge.io/v1beta1\",\"kind\":\"Device\",\"metadata\":{\"name\":\"thermo\","       \
    "\"namespace\":\"default\",\"resourceVersion\":\"50\"},\"spec\":{\"nodeName\":\"edge-node\","  \
    "\"properties\":[{\"name\":\"temperature\",\"desired\":{\"value\":\"22\"}},{\"name\":"         \
    "\"humidity\"}]},\"status\":{\"twins\":[{\"propertyName\":\"temperature\",\"reported\":"       \
    "{\"value\":\"\"}}]}}}"

/* cloudcore's workers apply reports of one device read together in any order (workers.c
 * models the worst: newest first). Two reports sent back to back: both answered, and the
 * Device keeps the older value, as the real cloud did for a burst after an outage; the next
 * report, sent after the answers, lands. */
START_TEST(test_device_reports_applied_concurrently)
{
    struct simctl_opts o = {.cloud_version = "1.15"};
    struct simctl *s = sim_start_opts(&o);
    static const char *const values[] = {"1", "2", "3"};
    char json[2048], twin[512], id[16];
    struct kedge_msg m;
    struct wsc w;
    char *dev;
    size_t i;
    int answered = 0;

    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(simctl_send(s, NULL, THERMO_DEVICE, NULL), 0);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.resource, "default/device/thermo");
    edge_ack(&w, &m);
    kedge_msg_cleanup(&m);
    for (i = 0; i < 3; i++) {
        (void)snprintf(twin, sizeof(twin),
                       "{\"event_id\":\"u%zu\",\"timestamp\":1,\"twin\":{\"temperature\":{"
                       "\"actual\":{\"value\":\"%s\"},\"metadata\":{\"type\":\"int\"}}}}",
                       i, values[i]);
        (void)snprintf(id, sizeof(id), "twin-%zu", i);
        edge_msg(json, sizeof(json), id, "twin", "resource", "update",
                 "device/thermo/twin/edge_updated", twin);
        /* the first two go out in one burst */
        wsc_queue(&w, json, strlen(json), LWS_WRITE_TEXT);
        if (i == 0)
            continue;
        while (answered < (int)i + 1) {
            wsc_expect_next(&w, &m);
            if (!strcmp(m.operation, "response"))
                answered++;
            else
                edge_ack(&w, &m); /* the Device again, after each status patch */
            kedge_msg_cleanup(&m);
        }
        dev = get_object(s, "default/device/thermo");
        ck_assert_ptr_nonnull(dev);
        /* after the burst the older value won; the third report, sent alone, lands */
        (void)snprintf(json, sizeof(json),
                       "\"reported\":{\"metadata\":{\"type\":\"int\"},"
                       "\"value\":\"%s\"}",
                       i == 1 ? "1" : "3");
        ck_assert_msg(strstr(dev, json), "after report %zu: %s", i, dev);
        kedge_free(dev);
    }
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

START_TEST(test_device_controller_replies)
{
    struct simctl_opts o = {.cloud_version = generations[_i].version};
    struct simctl *s = sim_start_opts(&o);
    const char *twin = "{\"event_id\":\"u1\",\"timestamp\":1,\"twin\":{\"temperature\":{\"actual\":"
                       "{\"value\":\"25\",\"metadata\":{\"timestamp\":1700000000123}},"
                       "\"optional\":true,\"metadata\":{\"type\":\"int\"}},\"humidity\":{"
                       "\"actual\":{\"value\":\"40\"},\"metadata\":{\"type\":\"int\"}}}}";
    char json[2048], res[256], membership[512];
    bool seen_update = false, seen_twin = false, seen_membership = false;
    struct kedge_msg m;
    struct wsc w;
    char *dev;
    int i;

    edge_connect(&w, s, "edge-node");
    /* the cloud's own membership names the device as its generation does */
    (void)snprintf(membership, sizeof(membership),
                   "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":"
                   "\"update\",\"resource\":\"node/edge-node/membership\"},\"content\":{"
                   "\"event_id\":\"e1\",\"timestamp\":1,\"added_devices\":[{\"id\":\"%s\","
                   "\"name\":\"thermo\"}],\"removed_devices\":null}}",
                   generations[_i].id);
    ck_assert_int_eq(simctl_send(s, NULL, membership, NULL), 0);
    ck_assert_int_eq(simctl_send(s, NULL, THERMO_DEVICE, NULL), 0);
    /* both, in either order: queued before the session existed, they leave from the ack and
     * the no-ack queue, which cloudcore drains on two goroutines */
    for (i = 0; i < 2; i++) {
        wsc_expect_next(&w, &m);
        if (strcmp(m.resource, "membership")) {
            ck_assert_str_eq(m.resource, "default/device/thermo");
        } else {
            ck_assert(!seen_membership);
            seen_membership = true;
        }
        edge_ack(&w, &m);
        kedge_msg_cleanup(&m);
    }
    ck_assert(seen_membership);

    /* membership detail first: ignored; then a report under the other generation's id:
     * unknown, never answered; so the first reply is the known device's */
    edge_msg(json, sizeof(json), "detail-1", "twin", "resource", "get", "membership/detail",
             "\"{\\\"event_type\\\":\\\"group_membership_event\\\",\\\"operation\\\":"
             "\\\"detail\\\"}\"");
    wsc_send(&w, json);
    edge_msg(json, sizeof(json), "twin-0", "twin", "resource", "update",
             generations[_i].unknown_res, twin);
    wsc_send(&w, json);
    (void)snprintf(res, sizeof(res), "device/%s/twin/edge_updated", generations[_i].id);
    edge_msg(json, sizeof(json), "twin-1", "twin", "resource", "update", res, twin);
    wsc_send(&w, json);
    (void)snprintf(res, sizeof(res), "device/%s/state/update", generations[_i].id);
    edge_msg(json, sizeof(json), "state-1", "twin", "resource", "update", res,
             "\"{\\\"event_id\\\":\\\"s1\\\",\\\"timestamp\\\":1,\\\"device\\\":{\\\"state\\\":"
             "\\\"online\\\"}}\"");
    wsc_send(&w, json);

    /* the "OK" and the Device again (the status patch made a new version, which goes down as
     * the informer's update); the ack-needed queue and the response queue are separate, so
     * either may come first; then the state's "OK" */
    for (i = 0; i < (generations[_i].answers_state ? 3 : 2); i++) {
        wsc_expect_next(&w, &m);
        if (!strcmp(m.operation, "update")) {
            ck_assert(!seen_update);
            seen_update = true;
            ck_assert_str_eq(m.source, "devicecontroller");
            ck_assert_str_eq(m.group, "resource");
            ck_assert_str_eq(m.resource, "default/device/thermo");
            ck_assert_ptr_nonnull(m.resource_version);
            ck_assert_str_ne(m.resource_version, "50");
            ck_assert_ptr_nonnull(strstr(m.content, "\"desired\":{\"value\":\"22\"}"));
            edge_ack(&w, &m);
        } else if (!strcmp(m.parent_msg_id, "twin-1")) {
            ck_assert(!seen_twin);
            seen_twin = true;
            ck_assert_str_eq(m.source, "devicecontroller");
            ck_assert_str_eq(m.group, "twin");
            ck_assert_str_eq(m.operation, "response");
            ck_assert_str_eq(m.resource, "twin");
            ck_assert(m.content_is_string);
            ck_assert_str_eq(m.content_str, "OK");
            ck_assert_int_eq(strlen(m.msg_id), 36);
            ck_assert_ptr_null(m.resource_version);
        } else {
            ck_assert(generations[_i].answers_state);
            /* the workers answer in no particular order (workers.c) */
            ck_assert_str_eq(m.parent_msg_id, "state-1");
            ck_assert_str_eq(m.content_str, "OK");
        }
        kedge_msg_cleanup(&m);
    }
    ck_assert(seen_update && seen_twin);
    /* the next answer is a later report's: before v1.18 the state report got none */
    (void)snprintf(res, sizeof(res), "device/%s/twin/edge_updated", generations[_i].id);
    edge_msg(json, sizeof(json), "twin-2", "twin", "resource", "update", res,
             "{\"event_id\":\"u2\",\"timestamp\":2,\"twin\":{}}");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "twin-2");
    kedge_msg_cleanup(&m);

    /* only the listed twin got its reported value; from v1.17 the other property of the
     * Device got an entry without one (Go keeps the values in the copy it returns) */
    dev = get_object(s, "default/device/thermo");
    ck_assert_ptr_nonnull(dev);
    (void)snprintf(json, sizeof(json),
                   "\"status\":{\"twins\":[{\"propertyName\":\"temperature\",\"reported\":{"
                   "\"metadata\":{\"timestamp\":\"1700000000123\",\"type\":\"int\"},\"value\":"
                   "\"25\"}}%s]}",
                   generations[_i].creates_twins
                       ? ",{\"propertyName\":\"humidity\",\"reported\":{\"value\":\"\"},"
                         "\"observedDesired\":{\"value\":\"\"}}"
                       : "");
    ck_assert_msg(strstr(dev, json), "status: %s", dev);
    ck_assert_ptr_null(strstr(dev, "\"40\""));
    kedge_free(dev);

    /* the four reports were received and recorded, the unknown one too */
    ck_assert_int_eq(count_received(s, "?skip_keepalive=1", "update"), 4);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* The edge controller: node insert gets {"Object":<node as the API server made it>,"Err":null}
 * (uid, resourceVersion, creationTimestamp filled in); a query finds it (the object itself,
 * resourceversion set, as recorded); before that, NotFound; a status patch is applied and
 * answered with the patched Node; lease queries answer in an ObjectResp. A "response" from the
 * edge is never answered. */
START_TEST(test_edge_controller_replies)
{
    struct simctl *s = sim_start(0, 0);
    const char *node = "{\"metadata\":{\"name\":\"edge-node\",\"creationTimestamp\":null,"
                       "\"labels\":{\"a\":\"b\"}},\"spec\":{},\"status\":{\"phase\":\"Running\"}}";
    char json[2048], *created;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *obj, *meta;
    struct kedge_msg m;
    struct wsc w;

    edge_connect(&w, s, "edge-node");
    edge_msg(json, sizeof(json), "q0", "edged", "meta", "query", "null/node/edge-node", "null");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "q0");
    ck_assert_str_eq(m.resource, "null/node/edge-node");
    ck_assert_str_eq(m.content,
                     "{\"ErrStatus\":{\"metadata\":{},\"status\":\"Failure\",\"message\":"
                     "\"node \\\"edge-node\\\" not found\",\"reason\":\"NotFound\",\"details\":{"
                     "\"name\":\"edge-node\",\"kind\":\"node\"},\"code\":404}}");
    kedge_msg_cleanup(&m);

    edge_msg(json, sizeof(json), "n1", "edged", "meta", "insert", "null/node/edge-node", node);
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "n1");
    ck_assert_str_eq(m.source, "edgecontroller");
    ck_assert_str_eq(m.group, "resource");
    ck_assert_str_eq(m.operation, "response");
    ck_assert_str_eq(m.resource, "null/node/edge-node");
    ck_assert_int_eq(kedge_json_parse(m.content, m.content_len, &doc), 0);
    ck_assert(kedge_json_is_null(kedge_json_get(kedge_jdoc_root(doc), "Err")));
    obj = kedge_json_get(kedge_jdoc_root(doc), "Object");
    meta = kedge_json_get(obj, "metadata");
    ck_assert_str_eq(kedge_json_get(meta, "name")->str, "edge-node");
    ck_assert_int_eq((int)kedge_json_get(meta, "uid")->len, KEDGE_UUID_LEN);
    ck_assert_int_gt((int)kedge_json_get(meta, "resourceVersion")->len, 0);
    ck_assert_int_eq((int)kedge_json_get(meta, "creationTimestamp")->len, 20);
    ck_assert_str_eq(kedge_json_get(kedge_json_get(meta, "labels"), "a")->str, "b");
    ck_assert_str_eq(kedge_json_get(kedge_json_get(obj, "status"), "phase")->str, "Running");
    created = kedge_strndup(m.content + 10, m.content_len - 10 - strlen(",\"Err\":null}"));
    ck_assert_ptr_nonnull(created);
    kedge_jdoc_free(doc);
    kedge_msg_cleanup(&m);

    /* the edge acks the reply (as edgecore does); never answered, never forwarded */
    wsc_send(&w, "{\"header\":{\"msg_id\":\"a1\",\"parent_msg_id\":\"whatever\",\"timestamp\":1},"
                 "\"route\":{\"source\":\"edgecontroller\",\"group\":\"resource\",\"operation\":"
                 "\"response\",\"resource\":\"null/node/edge-node\"},\"content\":\"OK\"}");
    edge_msg(json, sizeof(json), "q1", "edged", "meta", "query", "default/node/edge-node", "null");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "q1"); /* the first answer is the query's */
    ck_assert_str_eq(m.content, created);
    ck_assert_ptr_nonnull(m.resource_version);
    kedge_msg_cleanup(&m);

    /* a second insert: the API server's AlreadyExists */
    edge_msg(json, sizeof(json), "n2", "edged", "meta", "insert", "null/node/edge-node", node);
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "n2");
    ck_assert_ptr_nonnull(strstr(m.content, "\"reason\":\"AlreadyExists\""));
    ck_assert_ptr_nonnull(strstr(m.content, "\"code\":409"));
    kedge_msg_cleanup(&m);

    edge_msg(json, sizeof(json), "p1", "edged", "meta", "patch", "null/nodepatch/edge-node",
             "\"{\\\"status\\\":{\\\"phase\\\":\\\"Pending\\\"}}\"");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "p1");
    ck_assert_str_eq(m.resource, "null/nodepatch/edge-node");
    ck_assert_int_eq(kedge_json_parse(m.content, m.content_len, &doc), 0);
    obj = kedge_json_get(kedge_jdoc_root(doc), "Object");
    ck_assert_str_eq(kedge_json_get(kedge_json_get(obj, "status"), "phase")->str, "Pending");
    ck_assert_str_eq(kedge_json_get(kedge_json_get(obj, "metadata"), "resourceVersion")->str,
                     m.resource_version); /* a new version, in the header and the object */
    kedge_jdoc_free(doc);
    kedge_msg_cleanup(&m);
    kedge_free(created);

    edge_msg(json, sizeof(json), "l1", "edged", "meta", "query", "kube-node-lease/lease/edge-node",
             "null");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "l1");
    ck_assert_str_eq(m.content,
                     "{\"Object\":null,\"Err\":{\"ErrStatus\":{\"metadata\":{},\"status\":"
                     "\"Failure\",\"message\":\"lease.coordination.k8s.io \\\"edge-node\\\" not "
                     "found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"edge-node\","
                     "\"group\":\"coordination.k8s.io\",\"kind\":\"lease\"},\"code\":404}}}");
    kedge_msg_cleanup(&m);

    /* a configmap the cloud sent is what a later query gets */
    ck_assert_int_eq(simctl_send(s, NULL, CONFIGMAP_UPDATE, NULL), 0);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.resource, "default/configmap/cfg");
    edge_ack(&w, &m);
    kedge_msg_cleanup(&m);
    edge_msg(json, sizeof(json), "c1", "edged", "meta", "query", "default/configmap/cfg", "null");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "c1");
    ck_assert_str_eq(m.content, "{\"metadata\":{\"name\":\"cfg\"},\"data\":{\"k\":\"v\"}}");
    ck_assert_str_eq(m.resource_version, "77");
    kedge_msg_cleanup(&m);

    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* A pod's kube-api-access volume: the TokenRequest query is answered as cloudcore forwards the
 * API server's answer (the TokenRequest, audiences defaulted, a JWT bound to the pod, no
 * resourceversion); a pod not in the store is NotFound, another uid a Conflict; kube-root-ca.crt
 * exists in every namespace and holds the CA. */
#define TOKEN_REQ(uid)                                                                             \
    "{\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"audiences\":null,"                     \
    "\"expirationSeconds\":3607,\"boundObjectRef\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\","       \
    "\"name\":\"nginx\",\"uid\":\"" uid "\"}},\"status\":{\"token\":\"\","                         \
    "\"expirationTimestamp\":null}}"

START_TEST(test_service_account_token)
{
    struct simctl *s = sim_start(0, 0);
    char json[2048], *ca = NULL;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *st, *v;
    struct kedge_msg m;
    struct wsc w;
    size_t ca_len = 0;
    FILE *f;

    edge_connect(&w, s, "edge-node");
    edge_msg(json, sizeof(json), "t0", "edged", "meta", "query",
             "default/serviceaccounttoken/default", TOKEN_REQ("u-1"));
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "t0");
    ck_assert_msg(strstr(m.content, "\"reason\":\"NotFound\"") &&
                      strstr(m.content, "pods \\\"nginx\\\" not found"),
                  "%s", m.content);
    kedge_msg_cleanup(&m);

    ck_assert_int_eq(simctl_send(s, NULL,
                                 "{\"header\":{\"resourceversion\":\"5\"},\"route\":{\"source\":"
                                 "\"edgecontroller\",\"group\":\"resource\",\"operation\":"
                                 "\"insert\",\"resource\":\"default/pod/nginx\"},\"content\":"
                                 "{\"metadata\":{\"name\":\"nginx\",\"namespace\":\"default\","
                                 "\"uid\":\"u-1\"}}}",
                                 NULL),
                     0);
    wsc_expect_next(&w, &m);
    edge_ack(&w, &m);
    kedge_msg_cleanup(&m);
    edge_msg(json, sizeof(json), "t1", "edged", "meta", "query",
             "default/serviceaccounttoken/default", TOKEN_REQ("u-1"));
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "t1");
    ck_assert_str_eq(m.source, "edgecontroller");
    ck_assert_str_eq(m.group, "resource");
    ck_assert_str_eq(m.operation, "response");
    ck_assert_str_eq(m.resource, "default/serviceaccounttoken/default");
    ck_assert_ptr_null(m.resource_version);
    ck_assert_int_eq(kedge_json_parse(m.content, m.content_len, &doc), 0);
    root = kedge_jdoc_root(doc);
    ck_assert_str_eq(kedge_json_get(root, "kind")->str, "TokenRequest");
    v = kedge_json_get(kedge_json_get(root, "spec"), "audiences");
    ck_assert_str_eq(v->child->str, "https://kubernetes.default.svc.cluster.local");
    ck_assert_str_eq(
        kedge_json_get(kedge_json_get(kedge_json_get(root, "spec"), "boundObjectRef"), "uid")->str,
        "u-1");
    st = kedge_json_get(root, "status");
    v = kedge_json_get(st, "token");
    ck_assert_msg(v && v->type == KEDGE_JSTR && strchr(v->str, '.') &&
                      strchr(strchr(v->str, '.') + 1, '.'),
                  "token %s", m.content);
    v = kedge_json_get(st, "expirationTimestamp");
    ck_assert_msg(v && v->type == KEDGE_JSTR && v->len == 20 && v->str[19] == 'Z', "%s", m.content);
    kedge_jdoc_free(doc);
    kedge_msg_cleanup(&m);

    edge_msg(json, sizeof(json), "t2", "edged", "meta", "query",
             "default/serviceaccounttoken/default", TOKEN_REQ("u-2"));
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_msg(strstr(m.content, "\"reason\":\"Conflict\"") && strstr(m.content, "\"code\":409"),
                  "%s", m.content);
    kedge_msg_cleanup(&m);

    edge_msg(json, sizeof(json), "r1", "edged", "meta", "query",
             "kube-system/configmap/kube-root-ca.crt", "null");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "r1");
    f = fopen(simctl_cert_path(s, "rootCA.crt"), "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_gt(getdelim(&ca, &ca_len, '\0', f), 0);
    fclose(f);
    ck_assert_int_eq(kedge_json_parse(m.content, m.content_len, &doc), 0);
    root = kedge_jdoc_root(doc);
    ck_assert_str_eq(kedge_json_get(kedge_json_get(root, "metadata"), "namespace")->str,
                     "kube-system");
    ck_assert_str_eq(kedge_json_get(kedge_json_get(root, "data"), "ca.crt")->str, ca);
    kedge_jdoc_free(doc);
    kedge_msg_cleanup(&m);
    free(ca);

    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* One node of GET /nodes: its "ready", "registrations", "lease_renew_ms", and the status of
 * condition `cond` (its reason in reason[]). */
struct node_view {
    char ready[16], cond_status[16], cond_reason[64];
    int64_t registrations, lease_renew_ms;
};

static void node_view(struct simctl *s, const char *name, const char *cond, struct node_view *v)
{
    struct kedge_jdoc *doc = get_json(s, "/nodes");
    const struct kedge_jval *n, *c;

    memset(v, 0, sizeof(*v));
    n = kedge_json_get(kedge_jdoc_root(doc), "nodes");
    ck_assert_ptr_nonnull(n);
    for (n = n->child; n && !str_eq(kedge_json_get(n, "name")->str, name); n = n->next)
        ;
    ck_assert_msg(n != NULL, "/nodes has no node %s", name);
    (void)snprintf(v->ready, sizeof(v->ready), "%s", kedge_json_get(n, "ready")->str);
    ck_assert_int_eq(kedge_json_int64(kedge_json_get(n, "registrations"), &v->registrations), 0);
    ck_assert_int_eq(kedge_json_int64(kedge_json_get(n, "lease_renew_ms"), &v->lease_renew_ms), 0);
    c = kedge_json_get(kedge_json_get(n, "status"), "conditions");
    for (c = c ? c->child : NULL; c; c = c->next) {
        if (!str_eq(kedge_json_get(c, "type")->str, cond))
            continue;
        (void)snprintf(v->cond_status, sizeof(v->cond_status), "%s",
                       kedge_json_get(c, "status")->str);
        (void)snprintf(v->cond_reason, sizeof(v->cond_reason), "%s",
                       kedge_json_get(c, "reason")->str);
    }
    kedge_jdoc_free(doc);
}

#define LEASE(t)                                                                                   \
    "{\"metadata\":{\"name\":\"edge-node\",\"namespace\":\"kube-node-lease\"},\"spec\":{"          \
    "\"holderIdentity\":\"edge-node\",\"leaseDurationSeconds\":40,\"renewTime\":\"" t "\"}}"

/* The node lifecycle (nodes.c): Ready as the kubelet reports it; status patches merge their
 * conditions by type; the lease's renewTime is tracked; without a renewal for --node-grace-s
 * every condition turns Unknown (NodeStatusUnknown); a renewal plus a Ready report bring it
 * back. Every insert counts as a registration. */
START_TEST(test_node_lifecycle)
{
    char grace_s[16];
    const char *args[] = {"--node-grace-s", grace_s, NULL};
    struct simctl_opts o;
    struct wsc_opts eo;
    struct node_view v;
    struct simctl *s;
    struct wsc w;
    int64_t deadline;

    /* long enough for the steps below to happen inside it, even under valgrind */
    (void)snprintf(grace_s, sizeof(grace_s), "%d", simctl_scale_ms(2000) / 1000);
    memset(&o, 0, sizeof(o));
    o.extra_args = args;
    s = sim_start_opts(&o);
    /* keepalives: the scaled grace period (40 s under valgrind) outlasts the 30 s deadline */
    eo = edge_opts(s, "edge-node");
    eo.keepalive_ms = 5000;
    wsc_open(&w, s, &eo);
    ck_assert_msg(w.state == WSC_OPEN, "edge could not connect: %s", w.error);
    edge_request(&w, "n1", "insert", "null/node/edge-node", NODE_READY);
    edge_request(&w, "l1", "insert", "kube-node-lease/lease/edge-node",
                 LEASE("2030-01-01T00:00:00.250000Z"));
    node_view(s, "edge-node", "Ready", &v);
    ck_assert_str_eq(v.ready, "True");
    ck_assert_int_eq(v.registrations, 1);
    ck_assert_int_eq(v.lease_renew_ms, 1893456000250LL);

    /* merge by type: Ready changes, MemoryPressure stays, a new condition is added */
    edge_request(&w, "p1", "patch", "null/nodepatch/edge-node",
                 "\"{\\\"status\\\":{\\\"conditions\\\":[{\\\"type\\\":\\\"Ready\\\","
                 "\\\"status\\\":\\\"False\\\",\\\"reason\\\":\\\"KubeletNotReady\\\"},{"
                 "\\\"type\\\":\\\"PIDPressure\\\",\\\"status\\\":\\\"False\\\",\\\"reason\\\":"
                 "\\\"KubeletHasSufficientPID\\\"}]}}\"");
    node_view(s, "edge-node", "Ready", &v);
    ck_assert_str_eq(v.ready, "False");
    ck_assert_str_eq(v.cond_reason, "KubeletNotReady");
    node_view(s, "edge-node", "MemoryPressure", &v);
    ck_assert_str_eq(v.cond_status, "False");
    node_view(s, "edge-node", "PIDPressure", &v);
    ck_assert_str_eq(v.cond_reason, "KubeletHasSufficientPID");

    /* no renewal: Unknown, every condition, once the grace period is over */
    deadline = mono_ms() + simctl_scale_ms(2000) + simctl_scale_ms(DEADLINE_MS);
    for (;;) {
        node_view(s, "edge-node", "Ready", &v);
        if (str_eq(v.ready, "Unknown") || mono_ms() > deadline)
            break;
        wsc_quiet(&w, 50);
    }
    ck_assert_str_eq(v.ready, "Unknown");
    ck_assert_str_eq(v.cond_reason, "NodeStatusUnknown");
    node_view(s, "edge-node", "MemoryPressure", &v);
    ck_assert_str_eq(v.cond_status, "Unknown");
    ck_assert_str_eq(v.cond_reason, "NodeStatusUnknown");

    /* a renewal alone does not make it Ready; the kubelet's next report does */
    edge_request(&w, "l2", "update", "kube-node-lease/lease/edge-node",
                 LEASE("2030-01-01T00:00:10.000000Z"));
    node_view(s, "edge-node", "Ready", &v);
    ck_assert_str_eq(v.ready, "Unknown");
    ck_assert_int_eq(v.lease_renew_ms, 1893456010000LL);
    edge_request(&w, "p2", "patch", "null/nodepatch/edge-node",
                 "\"{\\\"status\\\":{\\\"conditions\\\":[{\\\"type\\\":\\\"Ready\\\","
                 "\\\"status\\\":\\\"True\\\",\\\"reason\\\":\\\"KubeletReady\\\"}]}}\"");
    node_view(s, "edge-node", "Ready", &v);
    ck_assert_str_eq(v.ready, "True");
    ck_assert_int_eq(v.registrations, 1);

    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

static void thermo_report(struct wsc *w, const char *id, int v)
{
    char json[1024], twin[512];

    (void)snprintf(twin, sizeof(twin),
                   "{\"event_id\":\"e-%s\",\"timestamp\":%d,\"twin\":{\"temperature\":{"
                   "\"actual\":{\"value\":\"%d\",\"metadata\":{\"timestamp\":%d}},"
                   "\"metadata\":{\"type\":\"int\"},\"actual_version\":{\"cloud\":0,"
                   "\"edge\":%d}}}}",
                   id, 1000 + v, v, 1000 + v, v);
    edge_msg(json, sizeof(json), id, "twin", "resource", "update",
             "device/thermo/twin/edge_updated", twin);
    wsc_queue(w, json, strlen(json), LWS_WRITE_TEXT);
}

/* Wait for n answers ("OK") from the device controller. */
static void expect_answers(struct wsc *w, int n)
{
    struct kedge_msg m;

    while (n > 0) {
        wsc_expect_next(w, &m);
        ck_assert_str_eq(m.operation, "response");
        n--;
        kedge_msg_cleanup(&m);
    }
}

static int64_t jint(const struct kedge_jval *v)
{
    int64_t x = -999;

    ck_assert_msg(v && kedge_json_int64(v, &x) == 0, "not a number");
    return x;
}

/* GET /applied: per device, the order the workers applied reports in, each twin's value with
 * its edge version, how many reports applied the current value, and every step backwards. A
 * report sent again alone is applied again (times 2); a burst is applied newest first, so the
 * older value lands after the newer one (a regression, as with cloudcore's goroutines). */
START_TEST(test_applied_order)
{
    static const int want[] = {1, 2, 2, 4, 3};
    struct simctl *s = sim_start(0, 0);
    const struct kedge_jval *dev, *t, *e;
    struct kedge_jdoc *doc;
    struct wsc w;
    size_t i;

    edge_connect(&w, s, "edge-node");
    thermo_known(s, &w);
    thermo_report(&w, "r1", 1);
    expect_answers(&w, 1);
    thermo_report(&w, "r2", 2);
    expect_answers(&w, 1);
    thermo_report(&w, "r2", 2); /* a resend */
    expect_answers(&w, 1);
    thermo_report(&w, "r3", 3);
    thermo_report(&w, "r4", 4);
    expect_answers(&w, 2);
    /* a device the controller does not know is not applied */
    {
        char json[512];
        edge_msg(json, sizeof(json), "ghost-1", "twin", "resource", "update",
                 "device/ghost/twin/edge_updated", "{\"twin\":{}}");
        wsc_send(&w, json);
    }

    doc = get_json(s, "/applied?device=thermo");
    ck_assert_int_eq(jint(kedge_json_get(kedge_jdoc_root(doc), "regressions")), 1);
    dev = kedge_json_get(kedge_jdoc_root(doc), "devices")->child;
    ck_assert_ptr_nonnull(dev);
    ck_assert_str_eq(kedge_json_get(dev, "id")->str, "thermo");
    ck_assert_int_eq(jint(kedge_json_get(dev, "reports")), 5);
    ck_assert_int_eq(jint(kedge_json_get(dev, "regressions")), 1);
    t = kedge_json_get(kedge_json_get(dev, "twins"), "temperature");
    ck_assert_str_eq(kedge_json_get(t, "value")->str, "3");
    ck_assert_int_eq(jint(kedge_json_get(t, "edge")), 3);
    ck_assert_int_eq(jint(kedge_json_get(t, "ts")), 1003);
    ck_assert_int_eq(jint(kedge_json_get(t, "times")), 1);
    ck_assert_int_eq(jint(kedge_json_get(t, "regressions")), 1);
    ck_assert_int_eq(jint(kedge_json_get(dev, "log_dropped")), 0);
    for (i = 0, e = kedge_json_get(dev, "log")->child; e; e = e->next, i++) {
        const struct kedge_jval *tw = kedge_json_get(kedge_json_get(e, "twins"), "temperature");
        char v[8];
        ck_assert_uint_lt(i, 5);
        ck_assert_int_eq(jint(kedge_json_get(e, "n")), (int64_t)i + 1);
        (void)snprintf(v, sizeof(v), "%d", want[i]);
        ck_assert_str_eq(kedge_json_get(tw, "value")->str, v);
        ck_assert_int_eq(jint(kedge_json_get(tw, "edge")), want[i]);
        ck_assert_int_eq(jint(kedge_json_get(e, "timestamp")), 1000 + want[i]);
    }
    ck_assert_uint_eq(i, 5);
    kedge_jdoc_free(doc);

    /* the resend: times counts the reports that applied the value it holds */
    thermo_report(&w, "r3", 3);
    expect_answers(&w, 1);
    doc = get_json(s, "/applied?log=0");
    ck_assert_int_eq(jint(kedge_json_get(kedge_jdoc_root(doc), "devices_total")), 1);
    dev = kedge_json_get(kedge_jdoc_root(doc), "devices")->child;
    ck_assert_ptr_null(kedge_json_get(dev, "log"));
    t = kedge_json_get(kedge_json_get(dev, "twins"), "temperature");
    ck_assert_int_eq(jint(kedge_json_get(t, "times")), 2);
    ck_assert_int_eq(jint(kedge_json_get(dev, "reports")), 6);
    kedge_jdoc_free(doc);
    doc = get_json(s, "/applied?device=ghost");
    ck_assert_ptr_null(kedge_json_get(kedge_jdoc_root(doc), "devices")->child);
    kedge_jdoc_free(doc);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

static int64_t faults_int(struct simctl *s, const char *key)
{
    struct kedge_jdoc *doc = get_json(s, "/faults");
    int64_t v = jint(kedge_json_get(kedge_jdoc_root(doc), key));

    kedge_jdoc_free(doc);
    return v;
}

/* POST /faults/reject: an upload to the poison topic is answered with an "error" (NewErrorMessage:
 * parent_msg_id, same resource; group user needs no ack), others pass; a close rule with max 1
 * closes the link with 1009 on the first twin report only; /faults counts and lists the
 * rejections; /faults/clear ends them. A rejected message is still in /received. */
START_TEST(test_reject_fault)
{
    static const char poison[] = "$hw/events/upload/poison";
    struct simctl *s = sim_start(0, 0);
    struct kedge_buf body = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    const struct kedge_jval *e;
    struct kedge_msg m;
    char json[1024];
    struct wsc w;
    int status;

    ck_assert_int_eq(
        simctl_http(s, "POST", "/faults/reject", "{\"mode\":\"close\"}", &status, &body), 0);
    ck_assert_int_eq(status, 400);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "POST", "/faults/reject",
                                 "{\"resource_prefix\":\"x\",\"mode\":\"explode\"}", &status,
                                 &body),
                     0);
    ck_assert_int_eq(status, 400);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "POST", "/faults/reject",
                                 "{\"resource_prefix\":\"$hw/events/upload/poison\","
                                 "\"mode\":\"error\"}",
                                 &status, &body),
                     0);
    ck_assert_int_eq(status, 200);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "POST", "/faults/reject",
                                 "{\"resource_prefix\":\"device/thermo/twin\",\"mode\":\"close\","
                                 "\"max\":1}",
                                 &status, &body),
                     0);
    ck_assert_int_eq(status, 200);
    kedge_buf_cleanup(&body);

    edge_connect(&w, s, "edge-node");
    thermo_known(s, &w);
    edge_msg(json, sizeof(json), "up-poison", "bus", "user", "upload", poison, "\"x\"");
    wsc_send(&w, json);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.operation, "error");
    ck_assert_str_eq(m.parent_msg_id, "up-poison");
    ck_assert_str_eq(m.resource, poison);
    ck_assert_str_eq(m.source, "cloudhub");
    ck_assert_str_eq(m.group, "user");
    ck_assert(m.content_is_string);
    kedge_msg_cleanup(&m);
    ck_assert_int_eq(state_int(s, NULL, "pending_acks"), 0); /* group user: no ack needed */
    edge_msg(json, sizeof(json), "up-fine", "bus", "user", "upload", "$hw/events/upload/fine",
             "\"y\"");
    wsc_send(&w, json);
    thermo_report(&w, "t-1", 1);
    ck_assert_msg(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS), "link not closed");
    ck_assert_int_eq(w.peer_close, 1009);
    /* the membership and the error: the upload passed, the report was not handled */
    ck_assert_int_eq(w.in_total, 2);
    wsc_close(&w);
    ck_assert_int_eq(faults_int(s, "rejections_total"), 2);
    ck_assert_int_eq(faults_int(s, "rejections_error"), 1);
    ck_assert_int_eq(faults_int(s, "rejections_close"), 1);
    doc = get_json(s, "/faults");
    e = kedge_json_get(kedge_jdoc_root(doc), "rejected")->child;
    ck_assert_str_eq(kedge_json_get(e, "msg_id")->str, "up-poison");
    ck_assert_str_eq(kedge_json_get(e, "mode")->str, "error");
    ck_assert_str_eq(kedge_json_get(e->next, "msg_id")->str, "t-1");
    ck_assert_str_eq(kedge_json_get(e->next, "mode")->str, "close");
    ck_assert_ptr_null(e->next->next);
    e = kedge_json_get(kedge_jdoc_root(doc), "reject")->child;
    ck_assert_int_eq(jint(kedge_json_get(e, "hits")), 1);
    ck_assert_int_eq(jint(kedge_json_get(e->next, "hits")), 1);
    kedge_jdoc_free(doc);
    ck_assert_int_eq(count_received(s, "?skip_keepalive=1", "upload"), 2);

    /* max 1: the next report is handled */
    edge_connect(&w, s, "edge-node");
    thermo_report(&w, "t-2", 2);
    expect_answers(&w, 1);
    /* cleared: the poison upload passes */
    ck_assert_int_eq(simctl_post(s, "/faults/clear"), 200);
    edge_msg(json, sizeof(json), "up-poison-2", "bus", "user", "upload", poison, "\"x\"");
    wsc_send(&w, json);
    thermo_report(&w, "t-3", 3);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "t-3"); /* the answer to the report, no error before it */
    kedge_msg_cleanup(&m);
    ck_assert_int_eq(faults_int(s, "rejections_total"), 2);
    doc = get_json(s, "/faults");
    ck_assert_ptr_null(kedge_json_get(kedge_jdoc_root(doc), "reject")->child);
    kedge_jdoc_free(doc);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

void cloudsim_add_controller_tests(TCase *tc)
{
    tcase_add_loop_test(tc, test_device_controller_replies, 0,
                        (int)(sizeof(generations) / sizeof(generations[0])));
    tcase_add_test(tc, test_edge_controller_replies);
    tcase_add_test(tc, test_service_account_token);
    tcase_add_test(tc, test_device_reports_applied_concurrently);
    tcase_add_test(tc, test_node_lifecycle);
    tcase_add_test(tc, test_applied_order);
    tcase_add_test(tc, test_reject_fault);
}
