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
#include "podspec_fixture.h"
#include "unit.h"
/* ---- the nginx pod ------------------------------------------------------------------------ */

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
    /* the ulimits podman needs without containers.conf (docs/containers.md §2.3) */
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

/* imagePullSecrets: the names in order; an empty reference is kept as "" (kubelet looks it up
 * and warns). */
START_TEST(pull_secrets)
{
    struct pod_spec *p =
        parse_ok("{\"metadata\":{\"name\":\"p\",\"uid\":\"u\"},\"spec\":{\"imagePullSecrets\":"
                 "[{\"name\":\"regcred\"},{},{\"name\":\"other\"}],\"containers\":[{\"name\":"
                 "\"c\",\"image\":\"127.0.0.1:5000/app:1\"}]}}");

    ck_assert_uint_eq(p->n_pull_secrets, 3);
    ck_assert_str_eq(p->pull_secrets[0], "regcred");
    ck_assert_str_eq(p->pull_secrets[1], "");
    ck_assert_str_eq(p->pull_secrets[2], "other");
    podspec_free(p);
    p = parse_ok("{\"metadata\":{\"name\":\"p\",\"uid\":\"u\"},\"spec\":{\"containers\":"
                 "[{\"name\":\"c\",\"image\":\"i\"}]}}");
    ck_assert_uint_eq(p->n_pull_secrets, 0);
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

static Suite *podspec_suite(void)
{
    Suite *s = suite_create("podspec");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, nginx_parse);
    tcase_add_test(tc, metadata_only);
    tcase_add_loop_test(tc, pull_policy_defaults, 0,
                        (int)(sizeof(pull_policies) / sizeof(pull_policies[0])));
    tcase_add_test(tc, spec_defaults);
    tcase_add_test(tc, pull_secrets);
    podspec_parse_error_tests(tc);
    suite_add_tcase(s, tc);

    tc = tcase_create("bodies");
    tcase_add_test(tc, nginx_infra_body);
    tcase_add_test(tc, nginx_app_bodies);
    tcase_add_test(tc, bodies_parse_back);
    tcase_add_test(tc, host_network);
    tcase_add_test(tc, infra_ports_and_hostname);
    podspec_env_body_tests(tc);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    podspec_value_tests(tc);
    suite_add_tcase(s, tc);

    tc = tcase_create("nomem");
    tcase_set_timeout(tc, 120);
    podspec_nomem_tests(tc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(podspec_suite());
}
