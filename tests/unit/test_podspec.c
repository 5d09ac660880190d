/* cloudbridge/edged/podspec*.c: a v1.Pod's JSON -> struct pod_spec, and the Docker Engine API
 * create bodies (podspec.h, runtime_docker_body.h). Expected values are what the API server's
 * defaulting and kubelet (dockershim's mapping) produce for the same pod; whole bodies are compared
 * as bytes.
 *
 * Pods are written with ' for " (Q()), so a JSON string that needs an apostrophe spells it
 * \u0027.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "podspec.h"
#include "runtime_docker_body.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "unit.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* s with every ' turned into " (a ring of buffers: a few may be live at once). */
static const char *Q(const char *s)
{
    static char ring[8][32768];
    static int next;
    char *out = ring[next++ % 8];
    size_t i, n = strlen(s);

    ck_assert_uint_lt(n, sizeof(ring[0]));
    for (i = 0; i <= n; i++)
        out[i] = s[i] == '\'' ? '"' : s[i];
    return out;
}

static struct pod_spec *parse_ok(const char *json)
{
    struct pod_spec *p = NULL;
    char why[512];
    int rc = podspec_parse(json, strlen(json), &p, why, sizeof(why));

    ck_assert_msg(rc == 0, "rc=%d why=%s", rc, why);
    ck_assert_str_eq(why, "");
    ck_assert_ptr_nonnull(p);
    return p;
}

/* tmpl (after Q) with "#HASH#" replaced by h in decimal, as LABEL_CONTAINER_HASH carries it. */
static const char *with_hash(const char *tmpl, uint32_t h)
{
    static char out[32768];
    const char *at = strstr(tmpl, "#HASH#");

    ck_assert_ptr_nonnull(at);
    snprintf(out, sizeof(out), "%.*s%" PRIu32 "%s", (int)(at - tmpl), tmpl, h, at + 6);
    return out;
}

/* The store: ConfigMaps and Secrets by namespace/name. */
static const struct {
    const char *type, *ns, *name, *json;
} store[] = {
    {"configmap", "apps", "base",
     "{'metadata':{'name':'base'},'data':{'color':'blue','size':'L','1bad':'x','with=eq':'y'},"
     "'binaryData':{'bin':'AAE='}}"},
    {"secret", "apps", "creds",
     "{'metadata':{'name':'creds'},'type':'Opaque','data':{'password':'czNjcjN0',"
     "'user':'YWRtaW4='}}"},
    {"configmap", "apps", "garbage", "[1,2]"},
    {"secret", "apps", "badsecret", "{'data':{'k':'not base64!'}}"},
    {"configmap", "apps", "nodata", "{'metadata':{'name':'nodata'}}"},
};

static int lookups;

static int lookup(void *ctx, const char *type, const char *ns, const char *name, char **json)
{
    size_t i;

    (void)ctx;
    lookups++;
    *json = NULL;
    if (!strcmp(name, "broken"))
        return -EIO;
    for (i = 0; i < sizeof(store) / sizeof(store[0]); i++) {
        if (strcmp(store[i].type, type) || strcmp(store[i].ns, ns) || strcmp(store[i].name, name))
            continue;
        *json = kedge_strdup(Q(store[i].json));
        return *json ? 0 : -ENOMEM;
    }
    return -ENOENT;
}

static const struct docker_create cc_template = {
    .node = "edge-1",
    .infra_image = "localhost/pause:3.9",
    .infra_id = "4f1c0ffee",
    .pod_ip = "10.88.0.7",
    .host_ip = "192.168.1.10",
    .volumes_dir = "/var/lib/kedge/pods/0d6f1c2a-8b1e-4c55-9a0e-3f2b5c7d9e11/volumes",
    .attempt = 0,
    .lookup = lookup,
};

/* The body for container c of p (NULL: infra) into out; returns the code. */
static int body(const struct pod_spec *p, const struct pod_container *c, int attempt,
                struct kedge_buf *out, char *why, size_t why_len)
{
    struct docker_create cc = cc_template;

    cc.pod = p;
    cc.c = c;
    cc.attempt = attempt;
    kedge_buf_reset(out);
    return docker_create_body(&cc, out, why, why_len);
}

/* ---- the nginx pod ------------------------------------------------------------------------ */

#define UID "0d6f1c2a-8b1e-4c55-9a0e-3f2b5c7d9e11"

static const char nginx_pod[] =
    "{'apiVersion':'v1','kind':'Pod',"
    "'metadata':{'name':'web','namespace':'shop','uid':'" UID "',"
    "  'labels':{'tier':'front','app':'web'},'annotations':{'team':'edge'},"
    "  'creationTimestamp':'2024-05-01T10:00:00Z'},"
    "'spec':{'nodeName':'edge-1','serviceAccountName':'default','dnsPolicy':'ClusterFirst',"
    "  'volumes':["
    "    {'name':'html','emptyDir':{}},"
    "    {'name':'conf','configMap':{'name':'nginx-conf','items':[{'key':'nginx.conf',"
    "       'path':'nginx.conf'}]}},"
    "    {'name':'logs','hostPath':{'path':'/var/log/web','type':'DirectoryOrCreate'}},"
    "    {'name':'tls','secret':{'secretName':'web-tls','defaultMode':256}}],"
    "  'containers':["
    "    {'name':'nginx','image':'nginx:1.25',"
    "     'ports':[{'name':'http','containerPort':80,'hostPort':8080},"
    "              {'containerPort':443,'hostPort':8443,'hostIP':'127.0.0.1'},"
    "              {'containerPort':9113}],"
    "     'env':[{'name':'MODE','value':'prod'},"
    "            {'name':'POD','valueFrom':{'fieldRef':{'fieldPath':'metadata.name'}}}],"
    "     'volumeMounts':[{'name':'html','mountPath':'/usr/share/nginx/html'},"
    "       {'name':'conf','mountPath':'/etc/nginx/nginx.conf','subPath':'nginx.conf'},"
    "       {'name':'logs','mountPath':'/var/log/nginx'},"
    "       {'name':'tls','mountPath':'/etc/tls','readOnly':true}],"
    "     'resources':{'limits':{'cpu':'500m','memory':'128Mi'},'requests':{'cpu':'250m'}},"
    "     'livenessProbe':{'httpGet':{'path':'/healthz','port':'http'},'initialDelaySeconds':5},"
    "     'readinessProbe':{'tcpSocket':{'port':80},'periodSeconds':3}},"
    "    {'name':'sidecar','image':'busybox','command':['sh','-c'],"
    "     'args':['echo $(MSG) \\u0026\\u0026 sleep 3600'],'env':[{'name':'MSG','value':'hi'}],"
    "     'stdin':true,'tty':true}]},"
    "'status':{'phase':'Pending'}}";

START_TEST(nginx_parse)
{
    struct pod_spec *p = parse_ok(Q(nginx_pod));
    const struct pod_container *c, *s;

    ck_assert_str_eq(p->name, "web");
    ck_assert_str_eq(p->ns, "shop");
    ck_assert_str_eq(p->uid, UID);
    ck_assert_str_eq(p->node_name, "edge-1");
    ck_assert_str_eq(p->service_account, "default");
    ck_assert_ptr_null(p->hostname);
    ck_assert(!p->deleting && !p->host_network);
    ck_assert_int_eq(p->restart, RESTART_ALWAYS);
    ck_assert_int_eq(p->grace_s, 30);
    /* labels sorted by key */
    ck_assert_uint_eq(p->n_labels, 2);
    ck_assert_str_eq(p->labels[0].name, "app");
    ck_assert_str_eq(p->labels[0].value, "web");
    ck_assert_str_eq(p->labels[1].name, "tier");
    ck_assert_uint_eq(p->n_annotations, 1);
    ck_assert_str_eq(p->annotations[0].value, "edge");

    ck_assert_uint_eq(p->n_volumes, 4);
    ck_assert_int_eq(p->volumes[0].kind, VOL_EMPTYDIR);
    ck_assert_str_eq(p->volumes[0].medium, "");
    ck_assert_int_eq(p->volumes[0].size_limit, 0);
    ck_assert_int_eq(p->volumes[1].kind, VOL_CONFIGMAP);
    ck_assert_str_eq(p->volumes[1].source, "nginx-conf");
    ck_assert_int_eq(p->volumes[1].default_mode, 0644);
    ck_assert(!p->volumes[1].optional);
    ck_assert_uint_eq(p->volumes[1].n_items, 1);
    ck_assert_str_eq(p->volumes[1].items[0].key, "nginx.conf");
    ck_assert_str_eq(p->volumes[1].items[0].path, "nginx.conf");
    ck_assert_int_eq(p->volumes[1].items[0].mode, -1);
    ck_assert_int_eq(p->volumes[2].kind, VOL_HOSTPATH);
    ck_assert_str_eq(p->volumes[2].source, "/var/log/web");
    ck_assert_str_eq(p->volumes[2].host_path_type, "DirectoryOrCreate");
    ck_assert_int_eq(p->volumes[3].kind, VOL_SECRET);
    ck_assert_str_eq(p->volumes[3].source, "web-tls");
    ck_assert_int_eq(p->volumes[3].default_mode, 0400);

    ck_assert_uint_eq(p->n_init_containers, 0);
    ck_assert_uint_eq(p->n_containers, 2);
    c = &p->containers[0];
    ck_assert_str_eq(c->name, "nginx");
    ck_assert_str_eq(c->image, "nginx:1.25");
    ck_assert_str_eq(c->pull_policy, "IfNotPresent");
    ck_assert_uint_eq(c->n_command, 0);
    ck_assert_ptr_null(c->working_dir);
    ck_assert_uint_eq(c->n_ports, 3);
    ck_assert_str_eq(c->ports[0].name, "http");
    ck_assert_str_eq(c->ports[0].protocol, "TCP");
    ck_assert_ptr_null(c->ports[0].host_ip);
    ck_assert_int_eq(c->ports[0].container_port, 80);
    ck_assert_int_eq(c->ports[0].host_port, 8080);
    ck_assert_ptr_null(c->ports[1].name);
    ck_assert_str_eq(c->ports[1].host_ip, "127.0.0.1");
    ck_assert_int_eq(c->ports[2].host_port, 0);
    ck_assert_uint_eq(c->n_env, 2);
    ck_assert_int_eq(c->env[0].src, ENV_VALUE);
    ck_assert_str_eq(c->env[0].value, "prod");
    ck_assert_int_eq(c->env[1].src, ENV_FIELD);
    ck_assert_str_eq(c->env[1].ref_key, "metadata.name");
    ck_assert_uint_eq(c->n_mounts, 4);
    ck_assert_str_eq(c->mounts[1].sub_path, "nginx.conf");
    ck_assert_ptr_null(c->mounts[0].sub_path);
    ck_assert(c->mounts[3].read_only && !c->mounts[0].read_only);
    ck_assert_int_eq(c->cpu_limit_milli, 500);
    ck_assert_int_eq(c->cpu_request_milli, 250);
    ck_assert_int_eq(c->mem_limit_bytes, 134217728);
    ck_assert_int_eq(c->mem_request_bytes, 134217728); /* defaulted to the limit */
    /* liveness: the named port resolved, the API server's probe defaults */
    ck_assert_int_eq(c->liveness.kind, PROBE_HTTP);
    ck_assert_str_eq(c->liveness.path, "/healthz");
    ck_assert_str_eq(c->liveness.scheme, "HTTP");
    ck_assert_ptr_null(c->liveness.host);
    ck_assert_int_eq(c->liveness.port, 80);
    ck_assert_int_eq(c->liveness.initial_delay_s, 5);
    ck_assert_int_eq(c->liveness.period_s, 10);
    ck_assert_int_eq(c->liveness.timeout_s, 1);
    ck_assert_int_eq(c->liveness.success_threshold, 1);
    ck_assert_int_eq(c->liveness.failure_threshold, 3);
    ck_assert_int_eq(c->readiness.kind, PROBE_TCP);
    ck_assert_int_eq(c->readiness.port, 80);
    ck_assert_int_eq(c->readiness.period_s, 3);
    ck_assert_int_eq(c->startup.kind, PROBE_NONE);
    ck_assert(!c->tty && !c->stdin_open);

    s = &p->containers[1];
    ck_assert_str_eq(s->pull_policy, "Always"); /* no tag */
    ck_assert_uint_eq(s->n_command, 2);
    ck_assert_str_eq(s->command[1], "-c");
    ck_assert_uint_eq(s->n_args, 1);
    ck_assert_str_eq(s->args[0], "echo $(MSG) && sleep 3600");
    ck_assert(s->tty && s->stdin_open);
    ck_assert_int_eq(s->cpu_limit_milli, 0);
    ck_assert_uint_ne(s->hash, c->hash);
    podspec_free(p);
}
END_TEST

#define LABELS(name, restarts, type, hash)                                                         \
    "'Labels':{'io.kedge.node':'edge-1'," hash "'io.kubernetes.container.name':'" name "',"        \
    "'io.kubernetes.container.restartCount':'" restarts "','io.kubernetes.docker.type':'" type     \
    "','io.kubernetes.pod.name':'web','io.kubernetes.pod.namespace':'shop',"                       \
    "'io.kubernetes.pod.uid':'" UID "'}"

START_TEST(nginx_infra_body)
{
    struct pod_spec *p = parse_ok(Q(nginx_pod));
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct docker_create cc = cc_template;
    char why[256];

    ck_assert_int_eq(body(p, NULL, 0, &b, why, sizeof(why)), 0);
    ASSERT_BUF(&b, Q("{'Hostname':'web','ExposedPorts':{'443/tcp':{},'80/tcp':{}},"
                     "'Image':'localhost/pause:3.9'," LABELS(
                         "POD", "0", "podsandbox",
                         "") ","
                             "'HostConfig':{'NetworkMode':'bridge','PortBindings':{"
                             "'443/tcp':[{'HostIp':'127.0.0.1','HostPort':'8443'}],"
                             "'80/tcp':[{'HostIp':'','HostPort':'8080'}]},"
                             "'RestartPolicy':{'Name':'no'}}}"));
    /* the ulimits podman needs without containers.conf (containers.md §2.3) */
    cc.pod = p;
    cc.nofile = 20000;
    cc.nproc = 32768;
    kedge_buf_reset(&b);
    ck_assert_int_eq(docker_create_body(&cc, &b, why, sizeof(why)), 0);
    ck_assert_ptr_nonnull(
        strstr(b.data, Q("'RestartPolicy':{'Name':'no'},'Ulimits':[{'Name':'nofile','Hard':20000,"
                         "'Soft':20000},{'Name':'nproc','Hard':32768,'Soft':32768}]}}")));
    cc.nofile = 0;
    kedge_buf_reset(&b);
    ck_assert_int_eq(docker_create_body(&cc, &b, why, sizeof(why)), 0);
    ck_assert_ptr_nonnull(
        strstr(b.data, Q("'Ulimits':[{'Name':'nproc','Hard':32768,'Soft':32768}]}}")));

    kedge_buf_reset(&b);
    ck_assert_int_eq(docker_container_name(&cc, &b), 0);
    ASSERT_BUF(&b, "k8s_POD_web_shop_" UID "_0");
    kedge_buf_cleanup(&b);
    podspec_free(p);
}
END_TEST

START_TEST(nginx_app_bodies)
{
    struct pod_spec *p = parse_ok(Q(nginx_pod));
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct docker_create cc = cc_template;
    char why[256];

    ck_assert_int_eq(body(p, &p->containers[0], 2, &b, why, sizeof(why)), 0);
    ck_assert_str_eq(why, "");
    ASSERT_BUF(
        &b,
        with_hash(
            Q("{'Tty':false,'OpenStdin':false,'Env':['MODE=prod','POD=web'],"
              "'Image':'nginx:1.25',"
              "'Labels':{'io.kedge.node':'edge-1','io.kubernetes.container.hash':'#HASH#',"
              "'io.kubernetes.container.name':'nginx','io.kubernetes.container.restartCount':'2',"
              "'io.kubernetes.docker.type':'container','io.kubernetes.pod.name':'web',"
              "'io.kubernetes.pod.namespace':'shop','io.kubernetes.pod.uid':'" UID "'},"
              "'HostConfig':{'Binds':["
              "'/var/lib/kedge/pods/" UID "/volumes/html:/usr/share/nginx/html',"
              "'/var/lib/kedge/pods/" UID "/volumes/conf/nginx.conf:/etc/nginx/nginx.conf:ro',"
              "'/var/log/web:/var/log/nginx',"
              "'/var/lib/kedge/pods/" UID "/volumes/tls:/etc/tls:ro'],"
              "'NetworkMode':'container:4f1c0ffee','RestartPolicy':{'Name':'no'},"
              "'CpuShares':256,'Memory':134217728,'NanoCpus':500000000}}"),
            p->containers[0].hash));

    ck_assert_int_eq(body(p, &p->containers[1], 0, &b, why, sizeof(why)), 0);
    ASSERT_BUF(
        &b, with_hash(
                Q("{'Tty':true,'OpenStdin':true,'Env':['MSG=hi'],"
                  "'Cmd':['echo hi \\u0026\\u0026 sleep 3600'],'Image':'busybox',"
                  "'Entrypoint':['sh','-c'],"
                  "'Labels':{'io.kedge.node':'edge-1','io.kubernetes.container.hash':'#HASH#',"
                  "'io.kubernetes.container.name':'sidecar',"
                  "'io.kubernetes.container.restartCount':'0',"
                  "'io.kubernetes.docker.type':'container','io.kubernetes.pod.name':'web',"
                  "'io.kubernetes.pod.namespace':'shop','io.kubernetes.pod.uid':'" UID "'},"
                  "'HostConfig':{'NetworkMode':'container:4f1c0ffee','RestartPolicy':{'Name':'no'},"
                  "'CpuShares':2}}"),
                p->containers[1].hash));

    cc.pod = p;
    cc.c = &p->containers[1];
    cc.attempt = 3;
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_buf_puts(&b, "/containers/create?name="), 0);
    ck_assert_int_eq(docker_container_name(&cc, &b), 0); /* appends */
    ASSERT_BUF(&b, "/containers/create?name=k8s_sidecar_web_shop_" UID "_3");
    kedge_buf_cleanup(&b);
    podspec_free(p);
}
END_TEST

/* Every body the pod yields is JSON that parses back. */
START_TEST(bodies_parse_back)
{
    struct pod_spec *p = parse_ok(Q(nginx_pod));
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    char why[256];
    size_t i;

    for (i = 0; i <= p->n_containers; i++) {
        const struct pod_container *c = i ? &p->containers[i - 1] : NULL;
        const struct kedge_jval *labels;
        ck_assert_int_eq(body(p, c, 1, &b, why, sizeof(why)), 0);
        ck_assert_int_eq(kedge_json_parse(b.data, b.len, &doc), 0);
        labels = kedge_json_get(kedge_jdoc_root(doc), "Labels");
        ck_assert_ptr_nonnull(labels);
        ck_assert_str_eq(kedge_json_get_exact(labels, LABEL_POD_UID, strlen(LABEL_POD_UID))->str,
                         UID);
        kedge_jdoc_free(doc);
    }
    kedge_buf_cleanup(&b);
    podspec_free(p);
}
END_TEST

START_TEST(host_network)
{
    struct pod_spec *p = parse_ok(
        Q("{'metadata':{'name':'hn','uid':'u1'},'spec':{'hostNetwork':true,'hostname':'ignored',"
          "'initContainers':[{'name':'init','image':'busybox:1','ports':[{'containerPort':53,"
          "'protocol':'UDP'}]}],"
          "'containers':[{'name':'c','image':'app:1','ports':[{'containerPort':8080}]}]}}"));
    struct kedge_buf b = KEDGE_BUF_INIT;
    char why[128];

    ck_assert(p->host_network);
    ck_assert_str_eq(p->ns, "default");
    /* SetDefaults_PodSpec: hostPort = containerPort, init containers too */
    ck_assert_int_eq(p->containers[0].ports[0].host_port, 8080);
    ck_assert_int_eq(p->init_containers[0].ports[0].host_port, 53);
    ck_assert_str_eq(p->init_containers[0].ports[0].protocol, "UDP");
    ck_assert_int_eq(body(p, NULL, 0, &b, why, sizeof(why)), 0);
    ASSERT_BUF(&b, Q("{'Image':'localhost/pause:3.9','Labels':{'io.kedge.node':'edge-1',"
                     "'io.kubernetes.container.name':'POD','io.kubernetes.container.restartCount':"
                     "'0','io.kubernetes.docker.type':'podsandbox','io.kubernetes.pod.name':'hn',"
                     "'io.kubernetes.pod.namespace':'default','io.kubernetes.pod.uid':'u1'},"
                     "'HostConfig':{'NetworkMode':'host','RestartPolicy':{'Name':'no'}}}"));
    /* the init container: its own body, joined to the infra like the apps */
    ck_assert_int_eq(body(p, &p->init_containers[0], 0, &b, why, sizeof(why)), 0);
    ck_assert_ptr_nonnull(strstr(b.data, Q("'io.kubernetes.container.name':'init'")));
    ck_assert_ptr_nonnull(strstr(b.data, Q("'NetworkMode':'container:4f1c0ffee'")));
    kedge_buf_cleanup(&b);
    podspec_free(p);
}
END_TEST

/* Ports: several bindings of one container port, UDP and SCTP keys, and spec.hostname. */
START_TEST(infra_ports_and_hostname)
{
    struct pod_spec *p = parse_ok(
        Q("{'metadata':{'name':'a-very-long-pod-name-that-goes-on-and-on-beyond-the-limit-of-6."
          "chars','uid':'u1'},'spec':{'containers':["
          "{'name':'a','image':'x','ports':[{'containerPort':53,'hostPort':5353,'protocol':'UDP'},"
          "{'containerPort':80,'hostPort':8080},{'containerPort':9,'hostPort':9,'protocol':"
          "'SCTP'}]},"
          "{'name':'b','image':'y','ports':[{'containerPort':80,'hostPort':8081,'hostIP':"
          "'10.0.0.1'}]}]}}"));
    struct kedge_buf b = KEDGE_BUF_INIT;
    char why[128];

    ck_assert_int_eq(body(p, NULL, 0, &b, why, sizeof(why)), 0);
    /* cut to 63 characters, which end in '.': that is dropped too */
    ck_assert_ptr_nonnull(strstr(
        b.data, Q("{'Hostname':'a-very-long-pod-name-that-goes-on-and-on-beyond-the-limit-of-6',"
                  "'ExposedPorts':{'53/udp':{},'80/tcp':{},'9/sctp':{}},")));
    ck_assert_ptr_nonnull(
        strstr(b.data, Q("'PortBindings':{'53/udp':[{'HostIp':'','HostPort':'5353'}],"
                         "'80/tcp':[{'HostIp':'','HostPort':'8080'},{'HostIp':'10.0.0.1',"
                         "'HostPort':'8081'}],'9/sctp':[{'HostIp':'','HostPort':'9'}]},")));
    podspec_free(p);

    p = parse_ok(Q("{'metadata':{'name':'p','uid':'u1'},'spec':{'hostname':'myhost'}}"));
    ck_assert_int_eq(body(p, NULL, 0, &b, why, sizeof(why)), 0);
    ck_assert_ptr_nonnull(strstr(b.data, Q("{'Hostname':'myhost','Image'")));
    kedge_buf_cleanup(&b);
    podspec_free(p);
}
END_TEST

/* A pod with only metadata (a forced deletion): no containers, and still an infra body. */
START_TEST(metadata_only)
{
    struct pod_spec *p =
        parse_ok(Q("{'metadata':{'name':'gone','namespace':'ns1','uid':'u-9',"
                   "'deletionTimestamp':'2024-05-01T10:00:00Z','deletionGracePeriodSeconds':0}}"));

    ck_assert_str_eq(p->name, "gone");
    ck_assert_str_eq(p->ns, "ns1");
    ck_assert_str_eq(p->uid, "u-9");
    ck_assert(p->deleting);
    ck_assert_uint_eq(p->n_containers, 0);
    ck_assert_uint_eq(p->n_init_containers, 0);
    ck_assert_uint_eq(p->n_volumes, 0);
    ck_assert_int_eq(p->grace_s, 30);
    ck_assert_int_eq(p->restart, RESTART_ALWAYS);
    ck_assert_ptr_null(p->node_name);
    podspec_free(p);
    podspec_free(NULL);
}
END_TEST

/* ---- defaulting ------------------------------------------------------------------------- */

static const struct {
    const char *image, *policy, *want;
} pull_policies[] = {
    {"nginx", NULL, "Always"},
    {"nginx:latest", NULL, "Always"},
    {"nginx:1.25", NULL, "IfNotPresent"},
    {"nginx:Latest", NULL, "IfNotPresent"},
    {"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL,
     "IfNotPresent"},
    {"nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL,
     "Always"},
    {"localhost:5000/app", NULL, "Always"},
    {"localhost:5000/app:v2", NULL, "IfNotPresent"},
    {"Not An Image", NULL, "IfNotPresent"}, /* ParseImageName fails: tag "" */
    {"", NULL, "IfNotPresent"},
    {"nginx", "Never", "Never"},
    {"nginx:1", "Always", "Always"},
    {"nginx", "", "Always"},
};

START_TEST(pull_policy_defaults)
{
    char json[512];
    struct pod_spec *p;

    if (pull_policies[_i].policy)
        snprintf(json, sizeof(json),
                 "{\"metadata\":{\"name\":\"p\",\"uid\":\"u\"},\"spec\":{\"containers\":[{\"name\":"
                 "\"c\",\"image\":\"%s\",\"imagePullPolicy\":\"%s\"}]}}",
                 pull_policies[_i].image, pull_policies[_i].policy);
    else
        snprintf(json, sizeof(json),
                 "{\"metadata\":{\"name\":\"p\",\"uid\":\"u\"},\"spec\":{\"containers\":[{\"name\":"
                 "\"c\",\"image\":\"%s\"}]}}",
                 pull_policies[_i].image);
    p = parse_ok(json);
    ck_assert_str_eq(p->containers[0].pull_policy, pull_policies[_i].want);
    ck_assert_str_eq(p->containers[0].image, pull_policies[_i].image);
    podspec_free(p);
}
END_TEST

START_TEST(spec_defaults)
{
    struct pod_spec *p = parse_ok(
        Q("{'Metadata':{'NAME':'p','uid':'u'},'spec':{'restartPolicy':'OnFailure',"
          "'terminationGracePeriodSeconds':-5,'serviceAccount':'legacy','volumes':[{'name':'v'},"
          "{'name':'m','emptyDir':{'medium':'Memory','sizeLimit':'64Mi'}},{'name':'h','hostPath':"
          "{'path':'/srv'}},{'name':'n','nfs':{'server':'s','path':'/'}},{'name':'t','projected':"
          "{'sources':[]}},{'name':'u','unknownField':{},'name':'u2'}],"
          "'containers':[{'name':'c','image':'i','resources':{'limits':{'memory':'1Gi',"
          "'nvidia.com/gpu':1},'requests':{'memory':'256Mi'}},"
          "'startupProbe':{'exec':{'command':['cat','/ready']},'failureThreshold':30},"
          "'livenessProbe':{'httpGet':{'port':'8080','host':'127.0.0.1','scheme':'HTTPS',"
          "'httpHeaders':[{'name':'X-A','value':'1'}]},'timeoutSeconds':0}}]}}"));
    const struct pod_container *c = &p->containers[0];

    ck_assert_str_eq(p->name, "p"); /* member names match as Go's decoder matches them */
    ck_assert_int_eq(p->restart, RESTART_ON_FAILURE);
    ck_assert_int_eq(p->grace_s, 1); /* negative: 1, as the API server sets it */
    ck_assert_str_eq(p->service_account, "legacy");
    ck_assert_uint_eq(p->n_volumes, 6);
    ck_assert_int_eq(p->volumes[0].kind, VOL_EMPTYDIR); /* no source: SetDefaults_Volume */
    ck_assert_str_eq(p->volumes[0].medium, "");
    ck_assert_str_eq(p->volumes[1].medium, "Memory");
    ck_assert_int_eq(p->volumes[1].size_limit, 64 << 20);
    ck_assert_str_eq(p->volumes[2].host_path_type, "");
    ck_assert_int_eq(p->volumes[3].kind, VOL_UNSUPPORTED);
    ck_assert_str_eq(p->volumes[3].unsupported, "nfs");
    ck_assert_int_eq(p->volumes[4].kind, VOL_PROJECTED);
    ck_assert_uint_eq(p->volumes[4].n_sources, 0);
    ck_assert_int_eq(p->volumes[4].default_mode, 0644);
    ck_assert_int_eq(p->volumes[5].kind, VOL_EMPTYDIR); /* unknown member ignored */
    ck_assert_str_eq(p->volumes[5].name, "u2");         /* last duplicate wins */
    ck_assert_int_eq(c->mem_limit_bytes, 1 << 30);
    ck_assert_int_eq(c->mem_request_bytes, 256 << 20);
    ck_assert_int_eq(c->cpu_limit_milli, 0);
    ck_assert_int_eq(c->startup.kind, PROBE_EXEC);
    ck_assert_uint_eq(c->startup.n_command, 2);
    ck_assert_str_eq(c->startup.command[1], "/ready");
    ck_assert_int_eq(c->startup.failure_threshold, 30);
    ck_assert_int_eq(c->liveness.kind, PROBE_HTTP);
    ck_assert_int_eq(c->liveness.port, 8080); /* a number as a string: kubelet's last try */
    ck_assert_str_eq(c->liveness.path, "/");
    ck_assert_str_eq(c->liveness.scheme, "HTTPS");
    ck_assert_str_eq(c->liveness.host, "127.0.0.1");
    ck_assert_uint_eq(c->liveness.n_headers, 1);
    ck_assert_str_eq(c->liveness.headers[0].name, "X-A");
    ck_assert_str_eq(c->liveness.headers[0].value, "1");
    ck_assert_int_eq(c->liveness.timeout_s, 1);
    podspec_free(p);

    p = parse_ok(Q("{'metadata':{'name':'p','uid':'u'},'spec':{'restartPolicy':'Never',"
                   "'terminationGracePeriodSeconds':0,'hostNetwork':null,'containers':null}}"));
    ck_assert_int_eq(p->restart, RESTART_NEVER);
    ck_assert_int_eq(p->grace_s, 0);
    podspec_free(p);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

#define POD(spec) "{'metadata':{'name':'p','uid':'u'},'spec':" spec "}"
#define ONE(container) POD("{'containers':[{'name':'c','image':'i'," container "}]}")

static const struct {
    const char *json;
    int rc;
    const char *why;
} parse_errors[] = {
    {"{", KEDGE_EPARSE, "pod: not valid JSON"},
    {"[]", KEDGE_ESCHEMA, "pod: must be an object, not an array"},
    {"{}", KEDGE_ESCHEMA, "metadata.name: Required value"},
    {"{'metadata':{'uid':'u'}}", KEDGE_ESCHEMA, "metadata.name: Required value"},
    {"{'metadata':{'name':'p'}}", KEDGE_ESCHEMA, "metadata.uid: Required value"},
    {"{'metadata':{'name':'p','uid':'a_b'}}", KEDGE_ESCHEMA,
     "metadata.uid: Invalid value: \"a_b\": must be a UUID"},
    {"{'metadata':{'name':3,'uid':'u'}}", KEDGE_ESCHEMA,
     "metadata.name: must be a string, not a number"},
    {"{'metadata':'x'}", KEDGE_ESCHEMA, "metadata: must be an object, not a string"},
    {"{'metadata':{'name':'a\\u0000b','uid':'u'}}", KEDGE_ESCHEMA,
     "metadata.name: must not contain a NUL character"},
    {"{'metadata':{'name':'Web','uid':'u'}}", KEDGE_ESCHEMA,
     "metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of lower "
     "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
     "character"},
    {"{'metadata':{'name':'p','namespace':'a.b','uid':'u'}}", KEDGE_ESCHEMA,
     "metadata.namespace: Invalid value: \"a.b\": a lowercase RFC 1123 label must consist of lower "
     "case alphanumeric characters or '-', and must start and end with an alphanumeric character"},
    {"{'metadata':{'name':'p','uid':'u','labels':{'app':1}}}", KEDGE_ESCHEMA,
     "metadata.labels[app]: must be a string, not a number"},
    {"{'metadata':{'name':'p','uid':'u','deletionTimestamp':5}}", KEDGE_ESCHEMA,
     "metadata.deletionTimestamp: must be a string, not a number"},
    {POD("[]"), KEDGE_ESCHEMA, "spec: must be an object, not an array"},
    {POD("{'hostNetwork':'yes'}"), KEDGE_ESCHEMA,
     "spec.hostNetwork: must be a boolean, not a string"},
    {POD("{'restartPolicy':'Sometimes'}"), KEDGE_ESCHEMA,
     "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", "
     "\"OnFailure\", \"Never\""},
    {POD("{'terminationGracePeriodSeconds':1.5}"), KEDGE_ESCHEMA,
     "spec.terminationGracePeriodSeconds: must be an integer, not 1.5"},
    {POD("{'hostname':'My_Host'}"), KEDGE_ESCHEMA,
     "spec.hostname: Invalid value: \"My_Host\": a lowercase RFC 1123 label must consist of lower "
     "case alphanumeric characters or '-', and must start and end with an alphanumeric character"},
    {POD("{'containers':{}}"), KEDGE_ESCHEMA, "spec.containers: must be an array, not an object"},
    {POD("{'containers':[1]}"), KEDGE_ESCHEMA,
     "spec.containers[0]: must be an object, not a number"},
    {POD("{'containers':[{'image':'i'}]}"), KEDGE_ESCHEMA,
     "spec.containers[0].name: Required value"},
    {POD("{'containers':[{'name':'Web_1','image':'i'}]}"), KEDGE_ESCHEMA,
     "spec.containers[0].name: Invalid value: \"Web_1\": a lowercase RFC 1123 label must consist "
     "of lower case alphanumeric characters or '-', and must start and end with an alphanumeric "
     "character"},
    {POD("{'containers':[{'name':'a234567890123456789012345678901234567890123456789012345678901234'"
         ","
         "'image':'i'}]}"),
     KEDGE_ESCHEMA,
     "spec.containers[0].name: Invalid value: "
     "\"a234567890123456789012345678901234567890123456789012345678901234\": must be no more than "
     "63 characters"},
    {POD("{'containers':[{'name':'c','image':'i'},{'name':'c','image':'j'}]}"), KEDGE_ESCHEMA,
     "spec.containers[1].name: Duplicate value: \"c\""},
    {POD("{'initContainers':[{'name':'c','image':'i'}],'containers':[{'name':'c','image':'j'}]}"),
     KEDGE_ESCHEMA, "spec.containers[0].name: Duplicate value: \"c\""},
    {ONE("'image':7"), KEDGE_ESCHEMA, "spec.containers[0].image: must be a string, not a number"},
    {ONE("'imagePullPolicy':'Sometimes'"), KEDGE_ESCHEMA,
     "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: "
     "\"Always\", \"IfNotPresent\", \"Never\""},
    {ONE("'command':['sh',1]"), KEDGE_ESCHEMA,
     "spec.containers[0].command[1]: must be a string, not a number"},
    {ONE("'args':'x'"), KEDGE_ESCHEMA, "spec.containers[0].args: must be an array, not a string"},
    {ONE("'tty':1"), KEDGE_ESCHEMA, "spec.containers[0].tty: must be a boolean, not a number"},
    {ONE("'ports':[{}]"), KEDGE_ESCHEMA,
     "spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, "
     "inclusive"},
    {ONE("'ports':[{'containerPort':80,'hostPort':70000}]"), KEDGE_ESCHEMA,
     "spec.containers[0].ports[0].hostPort: Invalid value: 70000: must be between 0 and 65535, "
     "inclusive"},
    {ONE("'ports':[{'containerPort':'80'}]"), KEDGE_ESCHEMA,
     "spec.containers[0].ports[0].containerPort: must be an integer, not a string"},
    {ONE("'ports':[{'containerPort':80,'protocol':'tcp'}]"), KEDGE_ESCHEMA,
     "spec.containers[0].ports[0].protocol: Unsupported value: \"tcp\": supported values: "
     "\"SCTP\", \"TCP\", \"UDP\""},
    {ONE("'env':[{'value':'x'}]"), KEDGE_ESCHEMA, "spec.containers[0].env[0].name: Required value"},
    {ONE("'env':[{'name':'A=B'}]"), KEDGE_ESCHEMA,
     "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name "
     "must consist only of printable ASCII characters other than '='"},
    {ONE("'env':[{'name':'A','value':'x','valueFrom':{'fieldRef':{'fieldPath':'metadata.name'}}}]"),
     KEDGE_ESCHEMA,
     "spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not be specified when `value` "
     "is not empty"},
    {ONE("'env':[{'name':'A','valueFrom':{}}]"), KEDGE_ESCHEMA,
     "spec.containers[0].env[0].valueFrom: Invalid value: \"\": must specify one of: "
     "`configMapKeyRef`, `fieldRef`, `resourceFieldRef` or `secretKeyRef`"},
    {ONE("'env':[{'name':'A','valueFrom':{'fieldRef':{'fieldPath':'metadata.name'},"
         "'secretKeyRef':{'name':'s','key':'k'}}}]"),
     KEDGE_ESCHEMA,
     "spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not have more than one field "
     "specified at a time"},
    {ONE("'env':[{'name':'A','valueFrom':{'configMapKeyRef':{'name':'cm'}}}]"), KEDGE_ESCHEMA,
     "spec.containers[0].env[0].valueFrom.configMapKeyRef.key: Required value"},
    {ONE("'env':[{'name':'A','valueFrom':{'secretKeyRef':{'key':'k'}}}]"), KEDGE_ESCHEMA,
     "spec.containers[0].env[0].valueFrom.secretKeyRef.name: Required value"},
    {ONE("'env':[{'name':'A','valueFrom':{'fieldRef':{'fieldPath':'spec.foo'}}}]"), KEDGE_ESCHEMA,
     "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.foo\": "
     "supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", "
     "\"metadata.labels['<KEY>']\", \"metadata.annotations['<KEY>']\", \"spec.nodeName\", "
     "\"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", "
     "\"status.podIPs\""},
    {ONE("'env':[{'name':'A','valueFrom':{'resourceFieldRef':{'resource':'limits.gpu'}}}]"),
     KEDGE_ESCHEMA,
     "spec.containers[0].env[0].valueFrom.resourceFieldRef.resource: Unsupported value: "
     "\"limits.gpu\": supported values: \"limits.cpu\", \"limits.memory\", \"requests.cpu\", "
     "\"requests.memory\""},
    {ONE("'env':[{'name':'A','valueFrom':{'resourceFieldRef':{'resource':'limits.cpu',"
         "'divisor':'0'}}}]"),
     KEDGE_ESCHEMA,
     "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor: Invalid value: \"0\": must be "
     "greater than 0"},
    {ONE("'envFrom':[{'prefix':'P_'}]"), KEDGE_ESCHEMA,
     "spec.containers[0].envFrom[0]: Invalid value: \"\": must specify one of: `configMapRef` or "
     "`secretRef`"},
    {ONE("'envFrom':[{'configMapRef':{}}]"), KEDGE_ESCHEMA,
     "spec.containers[0].envFrom[0].configMapRef.name: Required value"},
    {ONE("'volumeMounts':[{'name':'v'}]"), KEDGE_ESCHEMA,
     "spec.containers[0].volumeMounts[0].mountPath: Required value"},
    {ONE("'volumeMounts':[{'name':'v','mountPath':'/m','subPath':'/abs'}]"), KEDGE_ESCHEMA,
     "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"/abs\": must be a relative "
     "path"},
    {ONE("'volumeMounts':[{'name':'v','mountPath':'/m','subPath':'a/../../etc'}]"), KEDGE_ESCHEMA,
     "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"a/../../etc\": must not contain "
     "'..'"},
    {ONE("'volumeMounts':[{'name':'v','mountPath':'/m','subPathExpr':'$(POD)'}]"), KEDGE_ESCHEMA,
     "spec.containers[0].volumeMounts[0].subPathExpr: Forbidden: not supported by kedge"},
    {ONE("'resources':{'limits':{'memory':'12x'}}"), KEDGE_ESCHEMA,
     "spec.containers[0].resources.limits.memory: quantity \"12x\" is not valid"},
    {ONE("'resources':{'requests':{'cpu':'-1'}}"), KEDGE_ESCHEMA,
     "spec.containers[0].resources.requests.cpu: Invalid value: \"-1\": must be greater than or "
     "equal to 0"},
    {ONE("'resources':{'limits':{'cpu':'1e30'}}"), KEDGE_ESCHEMA,
     "spec.containers[0].resources.limits.cpu: quantity \"1e30\" is too large"},
    {ONE("'resources':{'limits':{'cpu':true}}"), KEDGE_ESCHEMA,
     "spec.containers[0].resources.limits.cpu: must be a quantity (a string), not a boolean"},
    {ONE("'resources':{'limits':{'example.com/dongle':'2 '}}"), 0, NULL}, /* trimmed, ignored */
    {ONE("'resources':{'limits':{'example.com/dongle':'two'}}"), KEDGE_ESCHEMA,
     "spec.containers[0].resources.limits.example.com/dongle: quantity \"two\" is not valid"},
    {ONE("'livenessProbe':{'httpGet':{'port':'metrics'}}"), KEDGE_ESCHEMA,
     "spec.containers[0].livenessProbe.httpGet.port: Invalid value: \"metrics\": the container "
     "has no port with this name"},
    {ONE("'livenessProbe':{'httpGet':{'path':'/'}}"), KEDGE_ESCHEMA,
     "spec.containers[0].livenessProbe.httpGet.port: Required value"},
    {ONE("'livenessProbe':{'tcpSocket':{'port':0}}"), KEDGE_ESCHEMA,
     "spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: 0: must be between 1 and "
     "65535, inclusive"},
    {ONE("'livenessProbe':{'httpGet':{'port':80,'scheme':'FTP'}}"), KEDGE_ESCHEMA,
     "spec.containers[0].livenessProbe.httpGet.scheme: Unsupported value: \"FTP\": supported "
     "values: \"HTTP\", \"HTTPS\""},
    {ONE("'readinessProbe':{'periodSeconds':5}"), KEDGE_ESCHEMA,
     "spec.containers[0].readinessProbe: Required value: must specify a handler type"},
    {ONE("'readinessProbe':{'exec':{'command':['true']},'tcpSocket':{'port':1}}"), KEDGE_ESCHEMA,
     "spec.containers[0].readinessProbe: Forbidden: may not specify more than 1 handler type"},
    {ONE("'livenessProbe':{'grpc':{'port':9090}}"), KEDGE_ESCHEMA,
     "spec.containers[0].livenessProbe.grpc: Forbidden: gRPC probes are not supported by kedge"},
    {ONE("'livenessProbe':{'exec':{'command':['true']},'periodSeconds':-1}"), KEDGE_ESCHEMA,
     "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or "
     "equal to 0"},
    {ONE("'livenessProbe':{'exec':{'command':['true']},'timeoutSeconds':2147483648}"),
     KEDGE_ESCHEMA,
     "spec.containers[0].livenessProbe.timeoutSeconds: Invalid value: 2147483648: must be no more "
     "than 2147483647"},
    {ONE("'resources':{'limits':{'memory':'\\u00001'}}"), KEDGE_ESCHEMA,
     "spec.containers[0].resources.limits.memory: must not contain a NUL character"},
    {POD("{'volumes':[{'name':'v'},{'name':'v'}]}"), KEDGE_ESCHEMA,
     "spec.volumes[1].name: Duplicate value: \"v\""},
    {POD("{'volumes':[{'emptyDir':{}}]}"), KEDGE_ESCHEMA, "spec.volumes[0].name: Required value"},
    {POD("{'volumes':[{'name':'v','emptyDir':{},'hostPath':{'path':'/x'}}]}"), KEDGE_ESCHEMA,
     "spec.volumes[0]: Forbidden: may not specify more than 1 volume type"},
    {POD("{'volumes':[{'name':'v','emptyDir':{'sizeLimit':'lots'}}]}"), KEDGE_ESCHEMA,
     "spec.volumes[0].emptyDir.sizeLimit: quantity \"lots\" is not valid"},
    {POD("{'volumes':[{'name':'v','hostPath':{}}]}"), KEDGE_ESCHEMA,
     "spec.volumes[0].hostPath.path: Required value"},
    {POD("{'volumes':[{'name':'v','hostPath':{'path':'/x','type':'Dir'}}]}"), KEDGE_ESCHEMA,
     "spec.volumes[0].hostPath.type: Unsupported value: \"Dir\": supported values: \"\", "
     "\"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", "
     "\"FileOrCreate\", \"Socket\""},
    {POD("{'volumes':[{'name':'v','configMap':'cm'}]}"), KEDGE_ESCHEMA,
     "spec.volumes[0].configMap: must be an object, not a string"},
    {POD("{'volumes':[{'name':'v','configMap':{}}]}"), KEDGE_ESCHEMA,
     "spec.volumes[0].configMap.name: Required value"},
    {POD("{'volumes':[{'name':'v','secret':{'name':'s'}}]}"), KEDGE_ESCHEMA,
     "spec.volumes[0].secret.secretName: Required value"},
    {POD("{'volumes':[{'name':'v','configMap':{'name':'c','defaultMode':512}}]}"), KEDGE_ESCHEMA,
     "spec.volumes[0].configMap.defaultMode: Invalid value: 512: must be a number between 0 and "
     "0777 (octal), both inclusive"},
    {POD("{'volumes':[{'name':'v','configMap':{'name':'c','items':[{'key':'k','path':'../x'}]}}]}"),
     KEDGE_ESCHEMA,
     "spec.volumes[0].configMap.items[0].path: Invalid value: \"../x\": must not contain '..'"},
    {POD("{'volumes':[{'name':'v','secret':{'secretName':'s','items':[{'key':'k'}]}}]}"),
     KEDGE_ESCHEMA, "spec.volumes[0].secret.items[0].path: Required value"},
    {POD("{'volumes':[{'name':'v','projected':{'sources':[{'serviceAccountToken':{'path':'t',"
         "'expirationSeconds':599}}]}}]}"),
     KEDGE_ESCHEMA,
     "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds: Invalid value: "
     "599: may not specify a duration less than 10 minutes"},
    {POD("{'volumes':[{'name':'v','projected':{'sources':[{'serviceAccountToken':{}}]}}]}"),
     KEDGE_ESCHEMA,
     "spec.volumes[0].projected.sources[0].serviceAccountToken.path: Required value"},
    {POD("{'volumes':[{'name':'v','projected':{'sources':[{'configMap':{'name':'c'},"
         "'secret':{'name':'s'}}]}}]}"),
     KEDGE_ESCHEMA,
     "spec.volumes[0].projected.sources[0]: Forbidden: may not specify more than 1 volume type"},
    {POD("{'volumes':[{'name':'v','downwardAPI':{'items':[{'path':'x','fieldRef':{'fieldPath':"
         "'spec.nodeName'}}]}}]}"),
     KEDGE_ESCHEMA,
     "spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: "
     "\"spec.nodeName\": supported values: \"metadata.annotations\", \"metadata.labels\", "
     "\"metadata.name\", \"metadata.namespace\", \"metadata.uid\""},
    {POD("{'volumes':[{'name':'v','downwardAPI':{'items':[{'path':'x','resourceFieldRef':"
         "{'resource':'limits.cpu'}}]}}]}"),
     KEDGE_ESCHEMA,
     "spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName: Required value"},
    {POD("{'volumes':[{'name':'v','downwardAPI':{'items':[{'path':'../x','fieldRef':"
         "{'fieldPath':'metadata.name'}}]}}]}"),
     KEDGE_ESCHEMA,
     "spec.volumes[0].downwardAPI.items[0].path: Invalid value: \"../x\": must not contain '..'"},
    {POD("{'volumes':[{'name':'v','downwardAPI':{'items':[{'path':'x'}]}}]}"), KEDGE_ESCHEMA,
     "spec.volumes[0].downwardAPI.items[0]: Required value: one of fieldRef and resourceFieldRef "
     "is required"},
};

/* The volume the API server adds to every pod, as it writes it, and a downwardAPI volume. */
START_TEST(projected_volumes)
{
    struct pod_spec *p = parse_ok(
        Q("{'metadata':{'name':'p','uid':'u'},'spec':{'serviceAccountName':'default','volumes':["
          "{'name':'kube-api-access-x7k2p','projected':{'defaultMode':420,'sources':["
          "{'serviceAccountToken':{'expirationSeconds':3607,'path':'token'}},"
          "{'configMap':{'name':'kube-root-ca.crt','items':[{'key':'ca.crt','path':'ca.crt'}]}},"
          "{'downwardAPI':{'items':[{'fieldRef':{'apiVersion':'v1','fieldPath':"
          "'metadata.namespace'},'path':'namespace'}]}}]}},"
          "{'name':'info','downwardAPI':{'defaultMode':256,'items':["
          "{'path':'labels','fieldRef':{'fieldPath':'metadata.labels'},'mode':384},"
          "{'path':'mem','resourceFieldRef':{'containerName':'c','resource':'limits.memory',"
          "'divisor':'1Mi'}}]}},"
          "{'name':'aud','projected':{'sources':[{'serviceAccountToken':{'audience':'vault',"
          "'path':'vault/token'}},{'secret':{'name':'s','optional':true}}]}}],"
          "'containers':[{'name':'c','image':'i'}]}}"));
    const struct pod_volume *v = &p->volumes[0];

    ck_assert_str_eq(p->service_account, "default");
    ck_assert_int_eq(v->kind, VOL_PROJECTED);
    ck_assert_int_eq(v->default_mode, 0644);
    ck_assert_uint_eq(v->n_sources, 3);
    ck_assert_int_eq(v->sources[0].kind, PROJ_TOKEN);
    ck_assert_str_eq(v->sources[0].audience, "");
    ck_assert_str_eq(v->sources[0].path, "token");
    ck_assert_int_eq(v->sources[0].expiration_s, 3607);
    ck_assert_int_eq(v->sources[1].kind, PROJ_CONFIGMAP);
    ck_assert_str_eq(v->sources[1].name, "kube-root-ca.crt");
    ck_assert_uint_eq(v->sources[1].n_items, 1);
    ck_assert_str_eq(v->sources[1].items[0].path, "ca.crt");
    ck_assert_int_eq(v->sources[1].items[0].mode, -1);
    ck_assert_int_eq(v->sources[2].kind, PROJ_DOWNWARD);
    ck_assert_uint_eq(v->sources[2].n_fields, 1);
    ck_assert_str_eq(v->sources[2].fields[0].field_path, "metadata.namespace");
    v = &p->volumes[1];
    ck_assert_int_eq(v->kind, VOL_DOWNWARD);
    ck_assert_int_eq(v->default_mode, 0400);
    ck_assert_uint_eq(v->n_fields, 2);
    ck_assert_int_eq(v->fields[0].mode, 0600);
    ck_assert_ptr_null(v->fields[1].field_path);
    ck_assert_str_eq(v->fields[1].resource, "limits.memory");
    ck_assert_str_eq(v->fields[1].container, "c");
    ck_assert_str_eq(v->fields[1].divisor, "1Mi");
    v = &p->volumes[2];
    ck_assert_int_eq(v->sources[0].expiration_s, 3600); /* SetDefaults */
    ck_assert_str_eq(v->sources[0].audience, "vault");
    ck_assert_int_eq(v->sources[1].kind, PROJ_SECRET);
    ck_assert(v->sources[1].optional);
    podspec_free(p);
}
END_TEST

START_TEST(parse_error_table)
{
    struct pod_spec *p = (struct pod_spec *)1;
    char why[1024];
    const char *json = Q(parse_errors[_i].json);
    int rc = podspec_parse(json, strlen(json), &p, why, sizeof(why));

    ck_assert_msg(rc == parse_errors[_i].rc, "rc=%d (%s) why=%s", rc, kedge_errname(rc), why);
    if (rc == 0) {
        podspec_free(p);
        return;
    }
    ck_assert_ptr_null(p);
    ck_assert_str_eq(why, parse_errors[_i].why);
}
END_TEST

/* Absurd inputs are refused without trouble; a short why buffer is cut, not overrun. */
START_TEST(parse_bounds)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct pod_spec *p;
    char why[512], tiny[8];
    int i;

    ck_assert_int_eq(kedge_buf_puts(&b, "{\"metadata\":{\"name\":\"p\",\"uid\":\"u\"},\"spec\":"
                                        "{\"containers\":["),
                     0);
    for (i = 0; i < 65; i++)
        ck_assert_int_eq(
            kedge_buf_printf(&b, "%s{\"name\":\"c%d\",\"image\":\"i\"}", i ? "," : "", i), 0);
    ck_assert_int_eq(kedge_buf_puts(&b, "]}}"), 0);
    ck_assert_int_eq(podspec_parse(b.data, b.len, &p, why, sizeof(why)), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "spec.containers: Too many: must have at most 64 items");
    ck_assert_int_eq(podspec_parse(b.data, b.len, &p, tiny, sizeof(tiny)), KEDGE_ESCHEMA);
    ck_assert_str_eq(tiny, "spec.co");
    ck_assert_int_eq(podspec_parse(b.data, b.len, &p, NULL, 0), KEDGE_ESCHEMA);
    /* 64 is fine */
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_buf_puts(&b, "{\"metadata\":{\"name\":\"p\",\"uid\":\"u\"},\"spec\":"
                                        "{\"containers\":["),
                     0);
    for (i = 0; i < 64; i++)
        ck_assert_int_eq(
            kedge_buf_printf(&b, "%s{\"name\":\"c%d\",\"image\":\"i\"}", i ? "," : "", i), 0);
    ck_assert_int_eq(kedge_buf_puts(&b, "]}}"), 0);
    ck_assert_int_eq(podspec_parse(b.data, b.len, &p, why, sizeof(why)), 0);
    ck_assert_uint_eq(p->n_containers, 64);
    podspec_free(p);
    /* over 4 MiB: refused before parsing */
    kedge_buf_reset(&b);
    ck_assert_int_eq(kedge_buf_reserve(&b, (4u << 20) + 2), 0);
    memset(b.data, ' ', (4u << 20) + 1);
    b.len = (4u << 20) + 1;
    b.data[b.len] = '\0';
    ck_assert_int_eq(podspec_parse(b.data, b.len, &p, why, sizeof(why)), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "pod: the pod's JSON is 4194305 bytes, over the limit of 4194304");
    kedge_buf_cleanup(&b);
}
END_TEST

/* ---- the container hash ----------------------------------------------------------------- */

static uint32_t fnv1a32(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static uint32_t hash_of(const char *container)
{
    char json[1024];
    struct pod_spec *p;
    uint32_t h;

    snprintf(json, sizeof(json),
             "{\"metadata\":{\"name\":\"p\",\"uid\":\"u\"},"
             "\"spec\":{\"containers\":[%s]}}",
             container);
    p = parse_ok(json);
    h = p->containers[0].hash;
    podspec_free(p);
    return h;
}

START_TEST(container_hash)
{
    uint32_t h = hash_of(Q("{'name':'c','image':'i:1','args':['a','b'],"
                           "'env':[{'value':'1','name':'X'}],'tty':false,'x':null,'n':1.50}"));

    /* FNV-1a 32 of the canonical JSON: keys sorted, no spaces, numbers as written */
    ck_assert_uint_eq(h, fnv1a32(Q("{'args':['a','b'],'env':[{'name':'X','value':'1'}],"
                                   "'image':'i:1','n':1.50,'name':'c','tty':false,'x':null}")));
    /* the same container written differently */
    ck_assert_uint_eq(h, hash_of(Q(" { 'x' : null , 'n':1.50, 'tty':false, 'env':[ {'name':'X',"
                                   "'value':'1'} ], 'image':'old', 'args':['a','b'],"
                                   "'image':'i:1','name':'c' } ")));
    ck_assert_uint_eq(h, hash_of(Q("{'name':'c','image':'i:1','args':['a','b'],'env':[{'value':"
                                   "'\\u0031','name':'X'}],'tty':false,'x':null,'n':1.50}")));
    /* any change is a new container */
    ck_assert_uint_ne(h, hash_of(Q("{'name':'c','image':'i:2','args':['a','b'],"
                                   "'env':[{'value':'1','name':'X'}],'tty':false,'x':null,"
                                   "'n':1.50}")));
    ck_assert_uint_ne(h, hash_of(Q("{'name':'c','image':'i:1','args':['b','a'],"
                                   "'env':[{'value':'1','name':'X'}],'tty':false,'x':null,"
                                   "'n':1.50}")));
    ck_assert_uint_ne(h, hash_of(Q("{'name':'c','image':'i:1','args':['a','b'],"
                                   "'env':[{'value':'1','name':'X'}],'tty':false,'x':null,"
                                   "'n':1.5}")));
}
END_TEST

/* ---- env -------------------------------------------------------------------------------- */

static const char env_pod[] =
    "{'metadata':{'name':'envpod','namespace':'apps','uid':'uid-1','labels':{'app':'demo'},"
    "  'annotations':{'note':'x y'}},"
    "'spec':{'nodeName':'edge-1','serviceAccountName':'robot','containers':[{'name':'main',"
    "  'image':'demo:v1','command':['/bin/run','--who=$(NAME)'],"
    "  'args':['$(COMBO)','$$HOME','$(S_user)','$(NOPE)'],"
    "  'resources':{'limits':{'cpu':'1500m','memory':'64Mi'},"
    "    'requests':{'cpu':'100m','memory':'32Mi'}},"
    "  'envFrom':[{'configMapRef':{'name':'base'}},{'secretRef':{'name':'creds'},'prefix':'S_'},"
    "    {'configMapRef':{'name':'nope','optional':true}},{'configMapRef':{'name':'nodata'}}],"
    "  'env':["
    "    {'name':'PLAIN','value':'v'},"
    "    {'name':'EMPTY'},"
    "    {'name':'CM','valueFrom':{'configMapKeyRef':{'name':'base','key':'color'}}},"
    "    {'name':'SEC','valueFrom':{'secretKeyRef':{'name':'creds','key':'password'}}},"
    "    {'name':'NAME','valueFrom':{'fieldRef':{'fieldPath':'metadata.name'}}},"
    "    "
    "{'name':'NS','valueFrom':{'fieldRef':{'apiVersion':'v1','fieldPath':'metadata.namespace'}}},"
    "    {'name':'UID','valueFrom':{'fieldRef':{'fieldPath':'metadata.uid'}}},"
    "    "
    "{'name':'APP','valueFrom':{'fieldRef':{'fieldPath':'metadata.labels[\\u0027app\\u0027]'}}},"
    "    {'name':'NOTE','valueFrom':{'fieldRef':"
    "      {'fieldPath':'metadata.annotations[\\u0027note\\u0027]'}}},"
    "    "
    "{'name':'NOLABEL','valueFrom':{'fieldRef':{'fieldPath':'metadata.labels[\\u0027zz\\u0027]'}}},"
    "    {'name':'NODE','valueFrom':{'fieldRef':{'fieldPath':'spec.nodeName'}}},"
    "    {'name':'SA','valueFrom':{'fieldRef':{'fieldPath':'spec.serviceAccountName'}}},"
    "    {'name':'PODIP','valueFrom':{'fieldRef':{'fieldPath':'status.podIP'}}},"
    "    {'name':'HOSTIP','valueFrom':{'fieldRef':{'fieldPath':'status.hostIP'}}},"
    "    {'name':'CPU_LIMIT','valueFrom':{'resourceFieldRef':{'resource':'limits.cpu'}}},"
    "    {'name':'CPU_LIMIT_M','valueFrom':{'resourceFieldRef':{'resource':'limits.cpu',"
    "      'divisor':'1m'}}},"
    "    {'name':'MEM_LIMIT','valueFrom':{'resourceFieldRef':{'resource':'limits.memory'}}},"
    "    {'name':'MEM_LIMIT_MI','valueFrom':{'resourceFieldRef':{'containerName':'main',"
    "      'resource':'limits.memory','divisor':'1Mi'}}},"
    "    {'name':'CPU_REQ','valueFrom':{'resourceFieldRef':{'resource':'requests.cpu'}}},"
    "    {'name':'MEM_REQ','valueFrom':{'resourceFieldRef':{'resource':'requests.memory',"
    "      'divisor':'1Ki'}}},"
    "    {'name':'OPT_KEY','valueFrom':{'configMapKeyRef':{'name':'base','key':'absent',"
    "      'optional':true}}},"
    "    {'name':'OPT_SEC','valueFrom':{'secretKeyRef':{'name':'gone','key':'x','optional':true}}},"
    "    {'name':'COMBO','value':'$(NAME)-$(CM)-$(UNDEFINED)-$$(NAME)'},"
    "    {'name':'color','value':'red'},"
    "    {'name':'SELF','value':'[$(SELF)]'}]}]}}";

START_TEST(env_every_source)
{
    struct pod_spec *p = parse_ok(Q(env_pod));
    const struct pod_container *c = &p->containers[0];
    struct kedge_buf b = KEDGE_BUF_INIT;
    char why[256];

    ck_assert_int_eq(c->env[2].src, ENV_CONFIGMAP);
    ck_assert_str_eq(c->env[2].ref_name, "base");
    ck_assert_str_eq(c->env[2].ref_key, "color");
    ck_assert_int_eq(c->env[3].src, ENV_SECRET);
    ck_assert_int_eq(c->env[14].src, ENV_RESOURCE);
    ck_assert_str_eq(c->env[14].ref_key, "limits.cpu");
    ck_assert_ptr_null(c->env[14].value);
    ck_assert_str_eq(c->env[15].value, "1m"); /* the divisor */
    ck_assert_str_eq(c->env[17].ref_name, "main");
    ck_assert(c->env[20].optional);
    ck_assert_uint_eq(c->n_env_from, 4);
    ck_assert(c->env_from[1].secret);
    ck_assert_str_eq(c->env_from[1].prefix, "S_");
    ck_assert(c->env_from[2].optional);

    lookups = 0;
    ck_assert_int_eq(body(p, c, 0, &b, why, sizeof(why)), 0);
    ck_assert_str_eq(why, "");
    /* one lookup per object (kubelet's per-call maps), also for the ones not found */
    ck_assert_int_eq(lookups, 5);
    ASSERT_BUF(
        &b,
        with_hash(
            Q("{'Tty':false,'OpenStdin':false,'Env':["
              "'1bad=x','color=red','size=L','S_password=s3cr3t','S_user=admin',"
              "'PLAIN=v','EMPTY=','CM=blue','SEC=s3cr3t','NAME=envpod','NS=apps','UID=uid-1',"
              "'APP=demo','NOTE=x y','NOLABEL=','NODE=edge-1','SA=robot','PODIP=10.88.0.7',"
              "'HOSTIP=192.168.1.10','CPU_LIMIT=2','CPU_LIMIT_M=1500','MEM_LIMIT=67108864',"
              "'MEM_LIMIT_MI=64','CPU_REQ=1','MEM_REQ=32768',"
              "'COMBO=envpod-blue-$(UNDEFINED)-$(NAME)','SELF=[$(SELF)]'],"
              "'Cmd':['envpod-blue-$(UNDEFINED)-$(NAME)','$HOME','admin','$(NOPE)'],"
              "'Image':'demo:v1','Entrypoint':['/bin/run','--who=envpod'],"
              "'Labels':{'io.kedge.node':'edge-1','io.kubernetes.container.hash':'#HASH#',"
              "'io.kubernetes.container.name':'main','io.kubernetes.container.restartCount':'0',"
              "'io.kubernetes.docker.type':'container','io.kubernetes.pod.name':'envpod',"
              "'io.kubernetes.pod.namespace':'apps','io.kubernetes.pod.uid':'uid-1'},"
              "'HostConfig':{'NetworkMode':'container:4f1c0ffee','RestartPolicy':{'Name':'no'},"
              "'CpuShares':102,'Memory':67108864,'NanoCpus':1500000000}}"),
            c->hash));
    kedge_buf_cleanup(&b);
    podspec_free(p);
}
END_TEST

/* resourceFieldRef to a limit that is not set: the node's allocatable. */
START_TEST(env_resource_node_allocatable)
{
    struct pod_spec *p = parse_ok(
        Q("{'metadata':{'name':'p','uid':'u'},'spec':{'containers':[{'name':'c','image':'i','env':["
          "{'name':'C','valueFrom':{'resourceFieldRef':{'resource':'limits.cpu','divisor':'1m'}}},"
          "{'name':'M','valueFrom':{'resourceFieldRef':{'resource':'limits.memory'}}},"
          "{'name':'R','valueFrom':{'resourceFieldRef':{'resource':'requests.memory'}}},"
          "{'name':'O','valueFrom':{'resourceFieldRef':{'containerName':'other',"
          "'resource':'limits.memory','divisor':'1Mi'}}}]},"
          "{'name':'other','image':'i','resources':{'limits':{'memory':'100Mi'}}}]}}"));
    struct kedge_buf b = KEDGE_BUF_INIT;
    char why[128], want[256];
    long long mem = (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) - (100 << 20);

    snprintf(want, sizeof(want), "\"Env\":[\"C=%ld\",\"M=%lld\",\"R=0\",\"O=100\"]",
             sysconf(_SC_NPROCESSORS_ONLN) * 1000, mem);
    ck_assert_int_eq(body(p, &p->containers[0], 0, &b, why, sizeof(why)), 0);
    ck_assert_msg(strstr(b.data, want), "%s", b.data);
    kedge_buf_cleanup(&b);
    podspec_free(p);
}
END_TEST

static const struct {
    const char *value, *want;
} expansions[] = {
    {"$(A)", "alpha"},
    {"$(B)", "alpha"}, /* B was expanded when it was defined */
    {"$$(A)", "$(A)"},
    {"$$$(A)", "$alpha"},
    {"$$$$", "$$"},
    {"$(NOPE)", "$(NOPE)"},
    {"$(A", "$(A"},
    {"x$", "x$"},
    {"$", "$"},
    {"$x", "$x"},
    {"$()", "$()"},
    {"a$(A)b$(A)", "aalphabalpha"},
    {"$(A)$(A)", "alphaalpha"},
    {"$(A)(", "alpha("},
    {"$($(A))", "$($(A))"},
    {"$\xc3\xa9", "$\xc3\x83\\ufffd"}, /* Go's string(byte): kubelet mangles it the same way */
};

START_TEST(env_expansion)
{
    char json[1024];
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct pod_spec *p;
    char why[128], want[256];

    snprintf(json, sizeof(json),
             "{\"metadata\":{\"name\":\"p\",\"uid\":\"u\"},\"spec\":{\"containers\":[{\"name\":"
             "\"c\",\"image\":\"i\",\"env\":[{\"name\":\"A\",\"value\":\"alpha\"},{\"name\":\"B\","
             "\"value\":\"$(A)\"},{\"name\":\"E\",\"value\":\"%s\"}]}]}}",
             expansions[_i].value);
    p = parse_ok(json);
    ck_assert_int_eq(body(p, &p->containers[0], 0, &b, why, sizeof(why)), 0);
    snprintf(want, sizeof(want), "\"Env\":[\"A=alpha\",\"B=alpha\",\"E=%s\"]", expansions[_i].want);
    ck_assert_msg(strstr(b.data, want), "want %s in %s", want, b.data);
    kedge_buf_cleanup(&b);
    podspec_free(p);
}
END_TEST

/* CreateContainerConfigError: kubelet's messages. */
static const struct {
    const char *container;
    int rc;
    const char *why;
} env_errors[] = {
    {"'env':[{'name':'A','valueFrom':{'configMapKeyRef':{'name':'nope','key':'k'}}}]",
     KEDGE_ESCHEMA, "configmap \"nope\" not found"},
    {"'env':[{'name':'A','valueFrom':{'configMapKeyRef':{'name':'base','key':'missing'}}}]",
     KEDGE_ESCHEMA, "couldn't find key missing in ConfigMap apps/base"},
    {"'env':[{'name':'A','valueFrom':{'configMapKeyRef':{'name':'base','key':'bin'}}}]",
     KEDGE_ESCHEMA, "couldn't find key bin in ConfigMap apps/base"}, /* binaryData: not env */
    {"'env':[{'name':'A','valueFrom':{'configMapKeyRef':{'name':'nodata','key':'k'}}}]",
     KEDGE_ESCHEMA, "couldn't find key k in ConfigMap apps/nodata"},
    {"'env':[{'name':'A','valueFrom':{'secretKeyRef':{'name':'nope','key':'k'}}}]", KEDGE_ESCHEMA,
     "secret \"nope\" not found"},
    {"'env':[{'name':'A','valueFrom':{'secretKeyRef':{'name':'creds','key':'missing'}}}]",
     KEDGE_ESCHEMA, "couldn't find key missing in Secret apps/creds"},
    {"'envFrom':[{'configMapRef':{'name':'nope'}}]", KEDGE_ESCHEMA, "configmap \"nope\" not found"},
    {"'envFrom':[{'secretRef':{'name':'nope'}}]", KEDGE_ESCHEMA, "secret \"nope\" not found"},
    {"'envFrom':[{'secretRef':{'name':'badsecret'}}]", KEDGE_ESCHEMA,
     "secret \"badsecret\": data[k] is not valid base64"},
    {"'env':[{'name':'A','valueFrom':{'configMapKeyRef':{'name':'garbage','key':'k'}}}]",
     KEDGE_ESCHEMA, "configmap \"garbage\": the stored object is not a JSON object"},
    {"'env':[{'name':'A','valueFrom':{'configMapKeyRef':{'name':'broken','key':'k'}}}]", -EIO,
     "configmap \"broken\": lookup failed: Input/output error"},
    {"'env':[{'name':'A','valueFrom':{'resourceFieldRef':{'containerName':'ghost',"
     "'resource':'limits.cpu'}}}]",
     KEDGE_ESCHEMA, "container ghost not found"},
    {"'volumeMounts':[{'name':'nope','mountPath':'/m'}]", KEDGE_ESCHEMA,
     "cannot find volume \"nope\" to mount into container \"c\""},
    {"'volumeMounts':[{'name':'v','mountPath':'/a:b'}]", KEDGE_ESCHEMA,
     "volumeMount \"v\": mountPath /a:b has a ':', which a bind cannot carry"},
    {"'volumeMounts':[{'name':'h','mountPath':'/m'}]", KEDGE_ESCHEMA,
     "volume \"h\": the path /srv/a:b has a ':', which a bind cannot carry"},
    /* optional: nothing set, no error */
    {"'env':[{'name':'A','valueFrom':{'configMapKeyRef':{'name':'nope','key':'k','optional':true}}}"
     ",{'name':'B','valueFrom':{'secretKeyRef':{'name':'creds','key':'no','optional':true}}}],"
     "'envFrom':[{'secretRef':{'name':'nope','optional':true}}]",
     0, NULL},
};

START_TEST(env_error_table)
{
    char json[2048];
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct pod_spec *p;
    char why[256];
    int rc;

    snprintf(json, sizeof(json),
             "{'metadata':{'name':'p','namespace':'apps','uid':'u'},'spec':{'volumes':["
             "{'name':'v'},{'name':'h','hostPath':{'path':'/srv/a:b'}}],'containers':[{'name':'c',"
             "'image':'i',%s}]}}",
             env_errors[_i].container);
    p = parse_ok(Q(json));
    ck_assert_int_eq(kedge_buf_puts(&b, "kept"), 0);
    {
        struct docker_create cc = cc_template;
        cc.pod = p;
        cc.c = &p->containers[0];
        rc = docker_create_body(&cc, &b, why, sizeof(why));
    }
    ck_assert_msg(rc == env_errors[_i].rc, "rc=%d why=%s", rc, why);
    if (rc == 0) {
        ck_assert_ptr_null(strstr(b.data, "\"Env\"")); /* all optional, all missing */
    } else {
        ck_assert_str_eq(why, env_errors[_i].why);
        ASSERT_BUF(&b, "kept"); /* out as it was */
    }
    kedge_buf_cleanup(&b);
    podspec_free(p);
}
END_TEST

/* Binds: relative mountPath, hostPath with subPath, subPath cleaning, unsupported volumes. */
START_TEST(binds)
{
    struct pod_spec *p = parse_ok(
        Q("{'metadata':{'name':'p','uid':'u'},'spec':{'volumes':[{'name':'h','hostPath':{'path':"
          "'/srv/data/'}},{'name':'e','emptyDir':{'medium':'Memory'}},{'name':'n','nfs':{}},"
          "{'name':'s','secret':{'secretName':'s'}}],"
          "'containers':[{'name':'c','image':'i','volumeMounts':["
          "{'name':'h','mountPath':'/d','subPath':'./x//y/'},{'name':'e','mountPath':'rel'},"
          "{'name':'n','mountPath':'/n','readOnly':true},{'name':'s','mountPath':'/s',"
          "'readOnly':false,'subPath':'key'}]}]}}"));
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct docker_create cc = cc_template;
    char why[128];

    cc.pod = p;
    cc.c = &p->containers[0];
    cc.volumes_dir = "/pods/u/volumes";
    ck_assert_int_eq(docker_create_body(&cc, &b, why, sizeof(why)), 0);
    ck_assert_msg(strstr(b.data, Q("'Binds':['/srv/data/x/y:/d','/pods/u/volumes/e:/rel',"
                                   "'/pods/u/volumes/n:/n:ro','/pods/u/volumes/s/key:/s:ro'],")),
                  "%s", b.data);
    /* caller mistakes */
    kedge_buf_reset(&b);
    cc.volumes_dir = NULL;
    ck_assert_int_eq(docker_create_body(&cc, &b, why, sizeof(why)), -EINVAL);
    ck_assert_uint_eq(b.len, 0);
    cc.volumes_dir = "/v";
    cc.infra_id = NULL;
    ck_assert_int_eq(docker_create_body(&cc, &b, why, sizeof(why)), -EINVAL);
    cc.c = NULL;
    cc.infra_image = NULL;
    ck_assert_int_eq(docker_create_body(&cc, &b, why, sizeof(why)), -EINVAL);
    kedge_buf_cleanup(&b);
    podspec_free(p);
}
END_TEST

/* ---- quantities ------------------------------------------------------------------------- */

#define BAD INT64_MIN

static const struct {
    const char *q;
    int64_t milli, bytes; /* BAD: KEDGE_ESCHEMA */
} quantities[] = {
    {"100m", 100, 1},
    {"2", 2000, 2},
    {"0.5", 500, 1},
    {"0.1", 100, 1},
    {"1.5", 1500, 2},
    {"0", 0, 0},
    {"00", 0, 0},
    {"-0", 0, 0},
    {"250u", 1, 1}, /* rounded up: a request for some gets some */
    {"1n", 1, 1},
    {"1500000n", 2, 1},
    {"12345m", 12345, 13},
    {"1k", 1000000, 1000},
    {"1M", 1000000000, 1000000},
    {"1G", 1000000000000, 1000000000},
    {"1T", 1000000000000000, 1000000000000},
    {"1P", 1000000000000000000, 1000000000000000},
    {"1E", BAD, 1000000000000000000},
    {"9E", BAD, 9000000000000000000},
    {"10E", BAD, BAD},
    {"1Ki", 1024000, 1024},
    {"128Mi", 134217728000, 134217728},
    {"1.5Ki", 1536000, 1536},
    {"2.5Gi", 2684354560000, 2684354560},
    {"1Ti", 1099511627776000, 1099511627776},
    {"1Pi", 1125899906842624000, 1125899906842624},
    {"1Ei", BAD, 1152921504606846976},
    {"7Ei", BAD, 8070450532247928832},
    {"8Ei", BAD, BAD},
    {"0.000000001Gi", 1074, 2},
    {"1e3", 1000000, 1000},
    {"1E3", 1000000, 1000},
    {"1e+3", 1000000, 1000},
    {"1e-3", 1, 1},
    {"1.5e1", 15000, 15},
    {"123456789012345678901234567890e-20", 1234567890124, 1234567891},
    {"1e-2147483648", 1, 1},
    {"0e2147483647", 0, 0},
    {"1e2147483648", BAD, BAD}, /* the exponent must be an int32 */
    {"1e16", BAD, 10000000000000000},
    {"9223372036854775807", BAD, INT64_MAX},
    {"9223372036854775808", BAD, BAD},
    {"9223372036854775m", 9223372036854775, 9223372036855},
    {"9223372036854775807m", INT64_MAX, 9223372036854776},
    {"+1", 1000, 1},
    {".5", 500, 1},
    {"1.", 1000, 1},
    {"m", 0, 0}, /* ParseQuantity: an empty number is 0 */
    {"+", 0, 0},
    {"-1", BAD, BAD},
    {"-1Mi", BAD, BAD},
    {"", BAD, BAD},
    {"1x", BAD, BAD},
    {"1K", BAD, BAD}, /* kilo is 'k' */
    {"1ki", BAD, BAD},
    {"1e", BAD, BAD},
    {"1e+", BAD, BAD},
    {"1ee3", BAD, BAD},
    {"1Mi3", BAD, BAD},
    {"1.2.3", BAD, BAD},
    {"--1", BAD, BAD},
    {" 1", BAD, BAD},
    {"1 ", BAD, BAD},
    {"0x10", BAD, BAD},
    {"1e3.5", BAD, BAD},
    {"1mi", BAD, BAD},
};

START_TEST(quantity_table)
{
    int64_t v = 42;
    int rc = podspec_cpu_milli(quantities[_i].q, &v);

    if (quantities[_i].milli == BAD) {
        ck_assert_msg(rc == KEDGE_ESCHEMA, "cpu %s: rc=%d v=%" PRId64, quantities[_i].q, rc, v);
    } else {
        ck_assert_msg(rc == 0, "cpu %s: rc=%d", quantities[_i].q, rc);
        ck_assert_msg(v == quantities[_i].milli, "cpu %s: %" PRId64, quantities[_i].q, v);
    }
    rc = podspec_bytes(quantities[_i].q, &v);
    if (quantities[_i].bytes == BAD) {
        ck_assert_msg(rc == KEDGE_ESCHEMA, "bytes %s: rc=%d v=%" PRId64, quantities[_i].q, rc, v);
    } else {
        ck_assert_msg(rc == 0, "bytes %s: rc=%d", quantities[_i].q, rc);
        ck_assert_msg(v == quantities[_i].bytes, "bytes %s: %" PRId64, quantities[_i].q, v);
    }
}
END_TEST

START_TEST(quantity_limits)
{
    char q[200];
    int64_t v;

    ck_assert_int_eq(podspec_cpu_milli(NULL, &v), KEDGE_ESCHEMA);
    /* 128 characters is the longest quantity taken */
    memset(q, '0', 127);
    q[127] = '1';
    q[128] = '\0';
    ck_assert_int_eq(podspec_bytes(q, &v), 0);
    ck_assert_int_eq(v, 1);
    q[128] = '0';
    q[129] = '\0';
    ck_assert_int_eq(podspec_bytes(q, &v), KEDGE_ESCHEMA);
    /* a number in JSON is a quantity too (Quantity.UnmarshalJSON) */
    {
        struct pod_spec *p = parse_ok(Q("{'metadata':{'name':'p','uid':'u'},'spec':{'containers':"
                                        "[{'name':'c','image':'i','resources':{'limits':"
                                        "{'cpu':0.25,'memory':1e3}}}]}}"));
        ck_assert_int_eq(p->containers[0].cpu_limit_milli, 250);
        ck_assert_int_eq(p->containers[0].mem_limit_bytes, 1000);
        podspec_free(p);
    }
}
END_TEST

/* ---- image references ------------------------------------------------------------------- */

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct {
    const char *image;
    bool valid;
} images[] = {
    {"nginx", true},
    {"nginx:1.25", true},
    {"library/nginx:latest", true},
    {"docker.io/library/nginx:1.25-alpine", true},
    {"localhost/busybox:edge", true},
    {"localhost:5000/team/app:v1.2.3", true},
    {"registry.example.com:443/a/b/c", true},
    {"quay.io/prometheus/node-exporter:v1.6.0", true},
    {"my_app", true},
    {"my__app", true},
    {"my-app", true},
    {"my---app", true},
    {"a.b", true},
    {"app:v_1.0-rc", true},
    {"app:_x", true},
    {"app:X", true},
    {"nginx@sha256:" HEX64, true},
    {"nginx:1.25@sha256:" HEX64, true},
    {"nginx@sha512:" HEX64 HEX64, true},
    {"[::1]:5000/app:v1", true},
    {"Example.com/app", true}, /* an upper-case first component is a registry host */
    {"localhost:5000", true},  /* "localhost" tagged 5000 */
    {HEX64 ":v1", true},
    {"", false},
    {"Nginx", false},
    {"a/B", false},
    {"nginx:", false},
    {"nginx:-1", false},
    {"nginx:.1", false},
    {":tag", false},
    {"/nginx", false},
    {"nginx/", false},
    {"a//b", false},
    {"my___app", false},
    {"my_-app", false},
    {"my..app", false},
    {"-app", false},
    {"app-", false},
    {"app.", false},
    {"nginx@sha256:abc", false},
    {"nginx@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", false},
    {"nginx@md5:0123456789abcdef0123456789abcdef", false},
    {"nginx@", false},
    {" nginx", false},
    {"nginx latest", false},
    {"localhost:port/app", false},
    {"-bad.com/app", false},
    {"bad-.com/app", false},
    {"bad..com/app", false},
    {"[]:5000/app", false},
    {"[zz]/app", false},
    {HEX64, false}, /* looks like an image id */
};

START_TEST(image_table)
{
    ck_assert_msg(podspec_image_valid(images[_i].image) == images[_i].valid, "%s: want %s",
                  images[_i].image, images[_i].valid ? "valid" : "invalid");
}
END_TEST

START_TEST(image_name_length)
{
    char name[300];

    memset(name, 'a', 255);
    name[255] = '\0';
    ck_assert(podspec_image_valid(name));
    strcat(name, ":tag");
    ck_assert(podspec_image_valid(name)); /* the tag does not count */
    memset(name, 'a', 256);
    name[256] = '\0';
    ck_assert(!podspec_image_valid(name));
    ck_assert(!podspec_image_valid(NULL));
    /* a tag is at most 128 characters */
    strcpy(name, "nginx:");
    memset(name + 6, 'v', 128);
    name[6 + 128] = '\0';
    ck_assert(podspec_image_valid(name));
    strcat(name, "v");
    ck_assert(!podspec_image_valid(name));
}
END_TEST

/* ---- allocation failures ---------------------------------------------------------------- */

static int op_parse_and_build(void *ctx)
{
    const char *json = ctx;
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct pod_spec *p;
    char why[256];
    size_t i;
    int rc = podspec_parse(json, strlen(json), &p, why, sizeof(why));

    if (rc < 0)
        return rc;
    for (i = 0; i <= p->n_containers && rc == 0; i++) {
        struct docker_create cc = cc_template;
        cc.pod = p;
        cc.c = i ? &p->containers[i - 1] : NULL;
        cc.nofile = 1024;
        kedge_buf_reset(&b);
        rc = docker_create_body(&cc, &b, why, sizeof(why));
        if (rc == 0)
            rc = docker_container_name(&cc, &b);
    }
    kedge_buf_cleanup(&b);
    podspec_free(p);
    return rc;
}

START_TEST(nomem_nginx)
{
    static const int ok[] = {-ENOMEM};
    char *json = strdup(Q(nginx_pod));

    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(op_parse_and_build, json, ok, 1), 50);
    unit_libc_allocs();
    free(json);
}
END_TEST

START_TEST(nomem_env)
{
    static const int ok[] = {-ENOMEM};
    char *json = strdup(Q(env_pod));

    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(op_parse_and_build, json, ok, 1), 100);
    unit_libc_allocs();
    free(json);
}
END_TEST

/* A failed parse leaves nothing behind, whatever the error. */
START_TEST(errors_do_not_leak)
{
    struct pod_spec *p;
    char why[512];
    const char *json = Q(parse_errors[_i].json);

    unit_count_allocs();
    if (podspec_parse(json, strlen(json), &p, why, sizeof(why)) == 0)
        podspec_free(p);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

static Suite *podspec_suite(void)
{
    Suite *s = suite_create("podspec");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, nginx_parse);
    tcase_add_test(tc, metadata_only);
    tcase_add_loop_test(tc, pull_policy_defaults, 0,
                        (int)(sizeof(pull_policies) / sizeof(pull_policies[0])));
    tcase_add_test(tc, spec_defaults);
    tcase_add_test(tc, projected_volumes);
    tcase_add_loop_test(tc, parse_error_table, 0,
                        (int)(sizeof(parse_errors) / sizeof(parse_errors[0])));
    tcase_add_test(tc, parse_bounds);
    tcase_add_test(tc, container_hash);
    suite_add_tcase(s, tc);

    tc = tcase_create("bodies");
    tcase_add_test(tc, nginx_infra_body);
    tcase_add_test(tc, nginx_app_bodies);
    tcase_add_test(tc, bodies_parse_back);
    tcase_add_test(tc, host_network);
    tcase_add_test(tc, infra_ports_and_hostname);
    tcase_add_test(tc, env_every_source);
    tcase_add_test(tc, env_resource_node_allocatable);
    tcase_add_loop_test(tc, env_expansion, 0, (int)(sizeof(expansions) / sizeof(expansions[0])));
    tcase_add_loop_test(tc, env_error_table, 0, (int)(sizeof(env_errors) / sizeof(env_errors[0])));
    tcase_add_test(tc, binds);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_loop_test(tc, quantity_table, 0, (int)(sizeof(quantities) / sizeof(quantities[0])));
    tcase_add_test(tc, quantity_limits);
    tcase_add_loop_test(tc, image_table, 0, (int)(sizeof(images) / sizeof(images[0])));
    tcase_add_test(tc, image_name_length);
    suite_add_tcase(s, tc);

    tc = tcase_create("nomem");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, nomem_nginx);
    tcase_add_test(tc, nomem_env);
    tcase_add_loop_test(tc, errors_do_not_leak, 0,
                        (int)(sizeof(parse_errors) / sizeof(parse_errors[0])));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(podspec_suite());
}
