/* podspec_parse and docker_create_body (cloudbridge/edged/podspec.c) on arbitrary bytes.
 *
 * Properties:
 *  - parse fails only with KEDGE_EPARSE or KEDGE_ESCHEMA, with a why, and then hands back no
 *    pod; a pod it hands back has a name, namespace and uid, and every container a name, an
 *    image, a pull policy and the defaults kubelet relies on (probe periods, protocols);
 *  - parsing the same bytes again gives the same container hashes;
 *  - the container name and every create body (infra, each init and app container, with a
 *    store stub that has some objects, misses others and fails for one) either succeed, with a
 *    body that parses back as a JSON object carrying the container's Image and the pod's uid
 *    label, or fail with KEDGE_ESCHEMA (why set) or the stub's -EIO, leaving out as it was;
 *  - the input as a quantity and as an image reference: no crash, never a negative quantity.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "podspec.h"
#include "runtime_docker_body.h"
#include "fuzz.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"

/* The store: names starting "missing" do not exist, "broken" fails, "bad" holds data that is
 * not base64; everything else holds a few keys. */
static int lookup(void *ctx, const char *type, const char *ns, const char *name, char **json)
{
    const char *text;

    (void)ctx;
    CHECK(ns && *ns);
    *json = NULL;
    if (!strncmp(name, "missing", 7))
        return -ENOENT;
    if (!strcmp(name, "broken"))
        return -EIO;
    if (!strcmp(type, "secret"))
        text = !strncmp(name, "bad", 3) ? "{\"data\":{\"k\":\"!!\"}}"
                                        : "{\"data\":{\"k\":\"dmFsdWU=\",\"user\":\"YWRtaW4=\","
                                          "\"nul\":\"YQBi\"}}";
    else
        text = !strncmp(name, "bad", 3)
                   ? "{\"data\":[1]}"
                   : "{\"data\":{\"k\":\"v\",\"color\":\"$(k)\",\"1x\":\"y\","
                     "\"a=b\":\"z\",\"n\":null},\"binaryData\":{\"b\":\"AA==\"}}";
    *json = kedge_strdup(text);
    return *json ? 0 : -ENOMEM;
}

static void check_body(const struct pod_spec *p, const struct pod_container *c)
{
    struct docker_create cc = {
        .pod = p,
        .c = c,
        .node = "node-1",
        .infra_image = "localhost/pause:3.9",
        .infra_id = "0123abcd",
        .pod_ip = "10.88.0.2",
        .host_ip = "192.168.0.2",
        .volumes_dir = "/var/lib/kedge/pods/x/volumes",
        .attempt = 7,
        .lookup = lookup,
        .nofile = 20000,
        .nproc = 32768,
    };
    struct kedge_buf out = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    const struct kedge_jval *root, *image, *labels, *uid;
    char why[256];
    int rc;

    CHECK(kedge_buf_puts(&out, "prefix") == 0);
    rc = docker_create_body(&cc, &out, why, sizeof(why));
    CHECK(rc == 0 || rc == KEDGE_ESCHEMA || rc == -EIO);
    if (rc < 0) {
        CHECK(why[0] != '\0');
        CHECK(out.len == 6 && !memcmp(out.data, "prefix", 6));
    } else {
        CHECK(why[0] == '\0');
        CHECK(kedge_json_parse(out.data + 6, out.len - 6, &doc) == 0);
        root = kedge_jdoc_root(doc);
        CHECK(root->type == KEDGE_JOBJ);
        image = kedge_json_get_exact(root, "Image", 5);
        CHECK(image && image->type == KEDGE_JSTR);
        CHECK(!strcmp(image->str, c ? c->image : cc.infra_image));
        labels = kedge_json_get_exact(root, "Labels", 6);
        CHECK(labels && labels->type == KEDGE_JOBJ);
        uid = kedge_json_get_exact(labels, LABEL_POD_UID, strlen(LABEL_POD_UID));
        CHECK(uid && uid->type == KEDGE_JSTR && !strcmp(uid->str, p->uid));
        CHECK(kedge_json_get_exact(root, "HostConfig", 10) != NULL);
        kedge_jdoc_free(doc);
    }
    kedge_buf_reset(&out);
    CHECK(docker_container_name(&cc, &out) == 0);
    CHECK(!strncmp(out.data, "k8s_", 4));
    kedge_buf_cleanup(&out);
}

static void check_container(const struct pod_container *c)
{
    const struct pod_probe *probes[3] = {&c->liveness, &c->readiness, &c->startup};
    size_t i;

    CHECK(c->name && *c->name && c->image && c->pull_policy);
    CHECK(!strcmp(c->pull_policy, "Always") || !strcmp(c->pull_policy, "IfNotPresent") ||
          !strcmp(c->pull_policy, "Never"));
    CHECK(c->cpu_limit_milli >= 0 && c->cpu_request_milli >= 0 && c->mem_limit_bytes >= 0 &&
          c->mem_request_bytes >= 0);
    for (i = 0; i < c->n_ports; i++) {
        CHECK(c->ports[i].protocol);
        CHECK(c->ports[i].container_port >= 1 && c->ports[i].container_port <= 65535);
        CHECK(c->ports[i].host_port >= 0 && c->ports[i].host_port <= 65535);
    }
    for (i = 0; i < c->n_env; i++)
        CHECK(c->env[i].name && (c->env[i].src != ENV_VALUE || c->env[i].value));
    for (i = 0; i < c->n_mounts; i++)
        CHECK(c->mounts[i].name && c->mounts[i].mount_path && *c->mounts[i].mount_path);
    for (i = 0; i < 3; i++) {
        if (probes[i]->kind == PROBE_NONE)
            continue;
        CHECK(probes[i]->period_s > 0 && probes[i]->timeout_s > 0 &&
              probes[i]->success_threshold > 0 && probes[i]->failure_threshold > 0);
        if (probes[i]->kind == PROBE_HTTP)
            CHECK(probes[i]->path && probes[i]->scheme);
        if (probes[i]->kind != PROBE_EXEC)
            CHECK(probes[i]->port >= 1 && probes[i]->port <= 65535);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pod_spec *p = NULL, *again = NULL;
    char why[256], text[160];
    size_t i;
    int64_t v;
    int rc;

    rc = podspec_parse((const char *)data, size, &p, why, sizeof(why));
    if (rc < 0) {
        CHECK(rc == KEDGE_EPARSE || rc == KEDGE_ESCHEMA);
        CHECK(p == NULL && why[0] != '\0');
    } else {
        CHECK(p && p->name && p->ns && p->uid && why[0] == '\0');
        CHECK(p->grace_s >= 0);
        CHECK(podspec_parse((const char *)data, size, &again, why, sizeof(why)) == 0);
        CHECK(again->n_containers == p->n_containers);
        for (i = 0; i < p->n_containers; i++)
            CHECK(again->containers[i].hash == p->containers[i].hash);
        podspec_free(again);
        for (i = 0; i < p->n_volumes; i++)
            CHECK(p->volumes[i].name &&
                  (p->volumes[i].kind != VOL_UNSUPPORTED || p->volumes[i].unsupported));
        check_body(p, NULL);
        for (i = 0; i < p->n_init_containers; i++) {
            check_container(&p->init_containers[i]);
            check_body(p, &p->init_containers[i]);
        }
        for (i = 0; i < p->n_containers; i++) {
            check_container(&p->containers[i]);
            check_body(p, &p->containers[i]);
        }
        podspec_free(p);
    }
    /* short inputs are also a quantity and an image reference */
    if (size < sizeof(text)) {
        memcpy(text, data, size);
        text[size] = '\0';
        if (podspec_cpu_milli(text, &v) == 0)
            CHECK(v >= 0);
        if (podspec_bytes(text, &v) == 0)
            CHECK(v >= 0);
        (void)podspec_image_valid(text);
    }
    return 0;
}
