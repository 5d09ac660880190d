/* The podspec suite (test_podspec.c): env in the create bodies, binds, quantities and image
 * references.
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
/* ---- env -------------------------------------------------------------------------------- */

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

void podspec_env_body_tests(TCase *bodies)
{
    tcase_add_test(bodies, env_every_source);
    tcase_add_test(bodies, env_resource_node_allocatable);
    tcase_add_loop_test(bodies, env_expansion, 0,
                        (int)(sizeof(expansions) / sizeof(expansions[0])));
    tcase_add_loop_test(bodies, env_error_table, 0,
                        (int)(sizeof(env_errors) / sizeof(env_errors[0])));
    tcase_add_test(bodies, binds);
}

void podspec_value_tests(TCase *values)
{
    tcase_add_loop_test(values, quantity_table, 0,
                        (int)(sizeof(quantities) / sizeof(quantities[0])));
    tcase_add_test(values, quantity_limits);
    tcase_add_loop_test(values, image_table, 0, (int)(sizeof(images) / sizeof(images[0])));
    tcase_add_test(values, image_name_length);
}
