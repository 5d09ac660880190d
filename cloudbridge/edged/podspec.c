/* podspec.c: what kubelet reads of a v1.Pod (podspec.h). Pure: no I/O.
 *
 * Parsing follows Go's decoder (member names match case-insensitively, the last duplicate wins,
 * null is the zero value) and applies the API server's defaults (SetDefaults_Pod, _Container,
 * _Probe, _Volume, _HTTPGetAction), so a pod that reached kedge undefaulted behaves like one
 * that went through the API server. What is validated is what kubelet would trip over, in the
 * API server's words: wrong JSON types, bad quantities, names, duplicate containers or
 * volumes, paths that climb out of a volume. A mount naming no volume is a
 * CreateContainerConfigError at create time, as in kubelet.
 *
 * This file: the pod (metadata, spec), freeing, and the queries the environment and the
 * downward API share. Containers and volumes have their own files (podspec_containers.c,
 * podspec_volumes.c), as do the decoding helpers and the container hash (podspec_decode.c)
 * and the checks (podspec_check.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kedge/alloc.h"
#include "kedge/json.h"
#include "kedge/err.h"
#include "kedge/util.h"
#include "podspec_decode.h"

/* ==== podspec_parse: the pod ============================================================= */

static bool uid_ok(const char *s)
{
    size_t n = strlen(s);

    /* a UUID in practice; nothing that would break the container name's '_' fields */
    return n && n <= 128 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789-.") == n;
}

static int parse_metadata(struct parse_ctx *x, const struct kedge_jval *root, struct pod_spec *p)
{
    const struct kedge_jval *md, *v;
    size_t old;
    int rc = ps__get_obj(x, root, "metadata", &md);

    if (rc < 0)
        return rc;
    old = ps__path_key(x, "metadata");
    if (!md) {
        rc = ps__fail_at(x, "name", "Required value");
        goto out;
    }
    rc = ps__get_str(x, md, "name", &p->name);
    if (rc == 0)
        rc = ps__get_str(x, md, "namespace", &p->ns);
    if (rc == 0)
        rc = ps__get_str(x, md, "uid", &p->uid);
    if (rc < 0)
        goto out;
    if (!p->name || !*p->name) {
        rc = ps__fail_at(x, "name", "Required value");
        goto out;
    }
    if (!ps__dns_subdomain(p->name)) {
        rc = ps__fail_at(x, "name", "Invalid value: \"%.80s\": " SUBDOMAIN_MSG, p->name);
        goto out;
    }
    if (!p->ns || !*p->ns) {
        kedge_free(p->ns);
        if (!(p->ns = kedge_strdup("default"))) {
            rc = -ENOMEM;
            goto out;
        }
    }
    rc = ps__check_label(x, "namespace", p->ns);
    if (rc < 0)
        goto out;
    if (!p->uid || !*p->uid) {
        rc = ps__fail_at(x, "uid", "Required value");
        goto out;
    }
    if (!uid_ok(p->uid)) {
        rc = ps__fail_at(x, "uid", "Invalid value: \"%.80s\": must be a UUID", p->uid);
        goto out;
    }
    rc = ps__get_map(x, md, "labels", &p->labels, &p->n_labels);
    if (rc == 0)
        rc = ps__get_map(x, md, "annotations", &p->annotations, &p->n_annotations);
    if (rc == 0 && (v = ps__member(md, "deletionTimestamp"))) {
        if (v->type != KEDGE_JSTR)
            rc = ps__fail_at(x, "deletionTimestamp", "must be a string, not %s", ps__jtype_name(v));
        p->deleting = true;
    }
out:
    ps__path_pop(x, old);
    return rc;
}

/* imagePullSecrets[i]: a LocalObjectReference; its name ("" for an empty one, which kubelet
 * skips as a secret that cannot be found). */
static int parse_pull_secret(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                             void *ctx)
{
    int rc = ps__want_object(x, e);

    (void)i;
    (void)ctx;
    return rc < 0 ? rc : ps__get_str_or(x, e, "name", "", elem);
}

static int parse_spec(struct parse_ctx *x, const struct kedge_jval *root, struct pod_spec *p)
{
    const struct kedge_jval *spec;
    char *restart = NULL;
    int64_t grace = 30;
    size_t old;
    int rc;

    p->grace_s = 30;
    p->restart = RESTART_ALWAYS;
    rc = ps__get_obj(x, root, "spec", &spec);
    if (rc < 0 || !spec)
        return rc;
    old = ps__path_key(x, "spec");
    rc = ps__get_str(x, spec, "nodeName", &p->node_name);
    if (rc == 0)
        rc = ps__get_str(x, spec, "serviceAccountName", &p->service_account);
    if (rc == 0 && (!p->service_account || !*p->service_account)) {
        /* serviceAccount: the deprecated alias, still honoured by the API's conversion */
        kedge_free(p->service_account);
        p->service_account = NULL;
        rc = ps__get_str(x, spec, "serviceAccount", &p->service_account);
    }
    if (rc == 0)
        rc = ps__get_opt_str(x, spec, "hostname", &p->hostname);
    if (rc == 0 && p->hostname)
        rc = ps__check_label(x, "hostname", p->hostname);
    if (rc == 0)
        rc = ps__get_bool(x, spec, "hostNetwork", &p->host_network);
    if (rc == 0)
        rc = ps__parse_list(x, spec, "imagePullSecrets", MAX_ITEMS, sizeof(char *),
                            &p->pull_secrets, &p->n_pull_secrets, parse_pull_secret, NULL);
    if (rc == 0)
        rc = ps__get_str(x, spec, "restartPolicy", &restart);
    if (rc == 0 && restart && *restart) {
        if (!strcmp(restart, "Always"))
            p->restart = RESTART_ALWAYS;
        else if (!strcmp(restart, "OnFailure"))
            p->restart = RESTART_ON_FAILURE;
        else if (!strcmp(restart, "Never"))
            p->restart = RESTART_NEVER;
        else
            rc = ps__fail_at(x, "restartPolicy",
                             "Unsupported value: \"%.40s\": supported values: \"Always\", "
                             "\"OnFailure\", \"Never\"",
                             restart);
    }
    kedge_free(restart);
    if (rc == 0)
        rc = ps__get_int(x, spec, "terminationGracePeriodSeconds", INT64_MIN, INT64_MAX, &grace);
    /* the API server turns a negative grace period into 1 */
    p->grace_s = grace < 0 ? 1 : grace;
    if (rc == 0)
        rc = ps__parse_volumes(x, spec, p);
    if (rc == 0)
        rc = ps__parse_containers(x, spec, "initContainers", p, &p->init_containers,
                                  &p->n_init_containers);
    if (rc == 0)
        rc = ps__parse_containers(x, spec, "containers", p, &p->containers, &p->n_containers);
    ps__path_pop(x, old);
    return rc;
}

int podspec_parse(const char *json, size_t len, struct pod_spec **out, char *why, size_t why_len)
{
    struct parse_ctx x;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root;
    struct pod_spec *p = NULL;
    int rc;

    *out = NULL;
    memset(&x, 0, sizeof(x));
    x.why = why;
    x.why_len = why_len;
    kedge_set_why(why, why_len, "%s", "");
    if (len > PODSPEC_MAX_JSON)
        return ps__fail(&x, "the pod's JSON is %zu bytes, over the limit of %u", len,
                        PODSPEC_MAX_JSON);
    rc = kedge_json_parse(json, len, &doc);
    if (rc == KEDGE_EPARSE)
        kedge_set_why(why, why_len, "pod: not valid JSON");
    if (rc < 0)
        return rc;
    root = kedge_jdoc_root(doc);
    rc = ps__want_object(&x, root);
    if (rc < 0)
        goto out;
    p = kedge_calloc(1, sizeof(*p));
    if (!p) {
        rc = -ENOMEM;
        goto out;
    }
    rc = parse_metadata(&x, root, p);
    if (rc == 0)
        rc = parse_spec(&x, root, p);
out:
    kedge_jdoc_free(doc);
    if (rc < 0) {
        podspec_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static void free_strv(char **v, size_t n)
{
    size_t i;

    for (i = 0; v && i < n; i++)
        kedge_free(v[i]);
    kedge_free(v);
}

static void free_kv(struct pod_kv *kv, size_t n)
{
    size_t i;

    for (i = 0; kv && i < n; i++) {
        kedge_free(kv[i].name);
        kedge_free(kv[i].value);
    }
    kedge_free(kv);
}

static void free_probe(struct pod_probe *pr)
{
    free_strv(pr->command, pr->n_command);
    kedge_free(pr->path);
    kedge_free(pr->host);
    kedge_free(pr->scheme);
    free_kv(pr->headers, pr->n_headers);
}

static void free_containers(struct pod_container *cs, size_t n)
{
    size_t i, j;

    for (i = 0; cs && i < n; i++) {
        struct pod_container *c = &cs[i];
        kedge_free(c->name);
        kedge_free(c->image);
        kedge_free(c->pull_policy);
        free_strv(c->command, c->n_command);
        free_strv(c->args, c->n_args);
        kedge_free(c->working_dir);
        for (j = 0; c->env && j < c->n_env; j++) {
            kedge_free_all(c->env[j].name, c->env[j].value, c->env[j].ref_name, c->env[j].ref_key);
        }
        kedge_free(c->env);
        for (j = 0; c->env_from && j < c->n_env_from; j++) {
            kedge_free(c->env_from[j].name);
            kedge_free(c->env_from[j].prefix);
        }
        kedge_free(c->env_from);
        for (j = 0; c->ports && j < c->n_ports; j++) {
            kedge_free(c->ports[j].name);
            kedge_free(c->ports[j].protocol);
            kedge_free(c->ports[j].host_ip);
        }
        kedge_free(c->ports);
        for (j = 0; c->mounts && j < c->n_mounts; j++) {
            kedge_free(c->mounts[j].name);
            kedge_free(c->mounts[j].mount_path);
            kedge_free(c->mounts[j].sub_path);
        }
        kedge_free(c->mounts);
        free_probe(&c->liveness);
        free_probe(&c->readiness);
        free_probe(&c->startup);
    }
    kedge_free(cs);
}

static void free_key_paths(struct pod_key_path *items, size_t n)
{
    size_t i;

    for (i = 0; items && i < n; i++) {
        kedge_free(items[i].key);
        kedge_free(items[i].path);
    }
    kedge_free(items);
}

static void free_field_files(struct pod_field_file *f, size_t n)
{
    size_t i;

    for (i = 0; f && i < n; i++) {
        kedge_free_all(f[i].path, f[i].field_path, f[i].resource, f[i].container, f[i].divisor);
    }
    kedge_free(f);
}

static void free_projection(struct pod_projection *pr)
{
    kedge_free(pr->name);
    free_key_paths(pr->items, pr->n_items);
    free_field_files(pr->fields, pr->n_fields);
    kedge_free(pr->audience);
    kedge_free(pr->path);
}

void podspec_free(struct pod_spec *p)
{
    size_t i, j;

    if (!p)
        return;
    kedge_free_all(p->ns, p->name, p->uid, p->node_name, p->service_account, p->hostname);
    free_kv(p->labels, p->n_labels);
    free_kv(p->annotations, p->n_annotations);
    for (i = 0; p->pull_secrets && i < p->n_pull_secrets; i++)
        kedge_free(p->pull_secrets[i]);
    kedge_free(p->pull_secrets);
    free_containers(p->init_containers, p->n_init_containers);
    free_containers(p->containers, p->n_containers);
    for (i = 0; p->volumes && i < p->n_volumes; i++) {
        struct pod_volume *v = &p->volumes[i];
        kedge_free_all(v->name, v->source, v->host_path_type, v->medium);
        free_key_paths(v->items, v->n_items);
        kedge_free(v->unsupported);
        free_field_files(v->fields, v->n_fields);
        for (j = 0; v->sources && j < v->n_sources; j++)
            free_projection(&v->sources[j]);
        kedge_free(v->sources);
    }
    kedge_free(p->volumes);
    kedge_free(p);
}

static int64_t node_cpu_milli(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return (n > 0 ? (int64_t)n : 1) * 1000;
}

static int64_t node_memory_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    int64_t m = pages > 0 && page > 0 ? (int64_t)pages * page - (100 << 20) : 0;

    return m > 0 ? m : 0;
}

int podspec_resource_value(const struct pod_container *c, const char *resource, const char *divisor,
                           struct kedge_buf *out)
{
    bool cpu = strstr(resource, "cpu") != NULL, limit = !strncmp(resource, "limits.", 7);
    int64_t v, d = cpu ? 1000 : 1;

    if (divisor && (cpu ? podspec_cpu_milli(divisor, &d) : podspec_bytes(divisor, &d)) < 0)
        return KEDGE_ESCHEMA;
    if (d <= 0)
        d = cpu ? 1000 : 1;
    if (cpu)
        v = limit ? c->cpu_limit_milli : c->cpu_request_milli;
    else
        v = limit ? c->mem_limit_bytes : c->mem_request_bytes;
    if (limit && !v) /* defaultPodLimitsForDownwardAPI: the node's allocatable */
        v = cpu ? node_cpu_milli() : node_memory_bytes();
    return kedge_buf_printf(out, "%" PRId64, v / d + (v % d != 0));
}

const struct pod_container *podspec_find_container(const struct pod_spec *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->n_containers; i++)
        if (!strcmp(p->containers[i].name, name))
            return &p->containers[i];
    for (i = 0; i < p->n_init_containers; i++)
        if (!strcmp(p->init_containers[i].name, name))
            return &p->init_containers[i];
    return NULL;
}

/* The value of the label or annotation named key[0..klen), or NULL. */
static const char *kv_find(const struct pod_kv *kv, size_t n, const char *key, size_t klen)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strlen(kv[i].name) == klen && !memcmp(kv[i].name, key, klen))
            return kv[i].value;
    return NULL;
}

bool podspec_metadata_field(const struct pod_spec *p, const char *fp, const char **v)
{
    const char *sub;
    size_t n;

    if (!strcmp(fp, "metadata.name"))
        *v = p->name;
    else if (!strcmp(fp, "metadata.namespace"))
        *v = p->ns;
    else if (!strcmp(fp, "metadata.uid"))
        *v = p->uid;
    else if ((sub = ps__field_subscript(fp, "metadata.labels['", &n)))
        *v = kv_find(p->labels, p->n_labels, sub, n);
    else if ((sub = ps__field_subscript(fp, "metadata.annotations['", &n)))
        *v = kv_find(p->annotations, p->n_annotations, sub, n);
    else
        return false;
    return true;
}
