/* The podspec suite's shared fixtures (podspec_fixture.h). */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "podspec_fixture.h"
#include "kedge/alloc.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* s with every ' turned into " (a ring of buffers: a few may be live at once). */
const char *Q(const char *s)
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

struct pod_spec *parse_ok(const char *json)
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
const char *with_hash(const char *tmpl, uint32_t h)
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

int lookups;

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

const struct docker_create cc_template = {
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
int body(const struct pod_spec *p, const struct pod_container *c, int attempt,
         struct kedge_buf *out, char *why, size_t why_len)
{
    struct docker_create cc = cc_template;

    cc.pod = p;
    cc.c = c;
    cc.attempt = attempt;
    kedge_buf_reset(out);
    return docker_create_body(&cc, out, why, why_len);
}

const char nginx_pod[] =
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

const char env_pod[] =
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
