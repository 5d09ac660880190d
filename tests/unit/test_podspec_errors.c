/* The podspec suite (test_podspec.c): the errors a pod is refused with, the container hash,
 * and what allocation failures leave behind.
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
/* ---- errors ----------------------------------------------------------------------------- */

#define POD(spec) "{'metadata':{'name':'p','uid':'u'},'spec':" spec "}"
#define ONE(container) POD("{'containers':[{'name':'c','image':'i'," container "}]}")

static const struct {
    const char *json;
    int rc;
    const char *why;
} parse_errors[] = {
    {"{", KEDGE_EPARSE, "pod: not valid JSON"},
    {POD("{'imagePullSecrets':'regcred','containers':[{'name':'c','image':'i'}]}"), KEDGE_ESCHEMA,
     "spec.imagePullSecrets: must be an array, not a string"},
    {POD("{'imagePullSecrets':['regcred'],'containers':[{'name':'c','image':'i'}]}"), KEDGE_ESCHEMA,
     "spec.imagePullSecrets[0]: must be an object, not a string"},
    {POD("{'imagePullSecrets':[{'name':1}],'containers':[{'name':'c','image':'i'}]}"),
     KEDGE_ESCHEMA, "spec.imagePullSecrets[0].name: must be a string, not a number"},
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

void podspec_parse_error_tests(TCase *parse)
{
    tcase_add_test(parse, projected_volumes);
    tcase_add_loop_test(parse, parse_error_table, 0,
                        (int)(sizeof(parse_errors) / sizeof(parse_errors[0])));
    tcase_add_test(parse, parse_bounds);
    tcase_add_test(parse, container_hash);
}

void podspec_nomem_tests(TCase *nomem)
{
    tcase_add_test(nomem, nomem_nginx);
    tcase_add_test(nomem, nomem_env);
    tcase_add_loop_test(nomem, errors_do_not_leak, 0,
                        (int)(sizeof(parse_errors) / sizeof(parse_errors[0])));
}
