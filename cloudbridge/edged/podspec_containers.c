/* podspec_containers.c: spec.containers and spec.initContainers (v1.Container) into
 * struct pod_container: ports, env, envFrom, mounts, resources, probes, with the API
 * server's defaults (SetDefaults_Container, _Probe, _HTTPGetAction).
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

/* ==== podspec_parse: containers ========================================================== */

static int parse_port(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                      void *ctx)
{
    const struct pod_spec *p = ctx;
    struct pod_port *pt = elem;
    int rc;

    const struct ps_field fields[] = {
        {"name", PS_STR, &pt->name, NULL},
        {"hostIP", PS_OPT_STR, &pt->host_ip, NULL},
        {"protocol", PS_STR, &pt->protocol, "TCP"},
    };
    int64_t cp = 0, hp = 0;

    (void)i;
    rc = ps__want_object(x, e);
    if (rc == 0)
        rc = ps__get_int(x, e, "containerPort", INT64_MIN, INT64_MAX, &cp);
    if (rc == 0 && (cp < 1 || cp > 65535))
        rc = ps__fail_at(x, "containerPort",
                         "Invalid value: %" PRId64 ": must be between 1 and 65535, inclusive", cp);
    if (rc == 0)
        rc = ps__get_int(x, e, "hostPort", 0, 65535, &hp);
    if (rc == 0)
        rc = ps__get_fields(x, e, fields, PS_COUNT(fields));
    if (rc == 0 && strcmp(pt->protocol, "TCP") && strcmp(pt->protocol, "UDP") &&
        strcmp(pt->protocol, "SCTP"))
        rc = ps__fail_at(x, "protocol",
                         "Unsupported value: \"%.40s\": supported values: \"SCTP\", \"TCP\", "
                         "\"UDP\"",
                         pt->protocol);
    pt->container_port = (int)cp;
    /* SetDefaults_PodSpec: with hostNetwork a port is published on the node as is */
    pt->host_port = p->host_network && hp == 0 ? (int)cp : (int)hp;
    return rc;
}

static int parse_ports(struct parse_ctx *x, const struct kedge_jval *v, const struct pod_spec *p,
                       struct pod_container *c)
{
    return ps__parse_list(x, v, "ports", MAX_ITEMS, sizeof(*c->ports), &c->ports, &c->n_ports,
                          parse_port, (void *)(uintptr_t)p);
}

static const char *const field_paths[] = {
    "metadata.name",           "metadata.namespace", "metadata.uid",   "spec.nodeName",
    "spec.serviceAccountName", "status.hostIP",      "status.hostIPs", "status.podIP",
    "status.podIPs",
};

/* metadata.labels['k'] / metadata.annotations['k']: the subscript (within fp), or NULL. */
const char *ps__field_subscript(const char *fp, const char *prefix, size_t *len)
{
    size_t pl = strlen(prefix), n = strlen(fp);

    if (n < pl + 3 || strncmp(fp, prefix, pl) || strcmp(fp + n - 2, "']"))
        return NULL;
    *len = n - pl - 2;
    return fp + pl;
}

static bool field_path_ok(const char *fp)
{
    size_t i, n;

    for (i = 0; i < sizeof(field_paths) / sizeof(*field_paths); i++)
        if (!strcmp(fp, field_paths[i]))
            return true;
    return ps__field_subscript(fp, "metadata.labels['", &n) ||
           ps__field_subscript(fp, "metadata.annotations['", &n);
}

static const char *const resource_names[] = {"limits.cpu", "limits.memory", "requests.cpu",
                                             "requests.memory"};

/* v1.ResourceFieldSelector (the path is at it): resource one of resource_names, containerName
 * ("" -> NULL), divisor's text (NULL: "1"; it must be greater than 0). */
int ps__parse_resource_ref(struct parse_ctx *x, const struct kedge_jval *ref, char **resource,
                           char **container, char **divisor)
{
    const struct kedge_jval *div;
    size_t i;
    int rc = ps__get_str(x, ref, "resource", resource);

    if (rc == 0)
        rc = ps__get_opt_str(x, ref, "containerName", container);
    if (rc == 0)
        rc = ps__required(x, "resource", *resource);
    for (i = 0; rc == 0 && i < 4 && strcmp(*resource, resource_names[i]); i++)
        ;
    if (rc == 0 && i == 4)
        rc = ps__fail_at(x, "resource",
                         "Unsupported value: \"%.80s\": supported values: \"limits.cpu\", "
                         "\"limits.memory\", \"requests.cpu\", \"requests.memory\"",
                         *resource);
    if (rc == 0 && (div = ps__member(ref, "divisor"))) {
        const char *s = NULL;
        size_t len = 0;
        int64_t d = 0;
        rc = ps__get_quantity(x, "divisor", div, strstr(*resource, "cpu") ? 3 : 0, &d);
        if (rc == 0 && d == 0)
            rc = ps__fail_at(x, "divisor", "Invalid value: \"%.*s\": must be greater than 0",
                             (int)div->len, div->str);
        if (rc == 0 && ps__quantity_text(x, "divisor", div, &s, &len) == 0 &&
            !(*divisor = kedge_strndup(s, len)))
            rc = -ENOMEM;
    }
    return rc;
}

static int parse_key_ref(struct parse_ctx *x, const char *key, const struct kedge_jval *ref,
                         struct pod_env *e)
{
    const struct ps_field fields[] = {
        {"name", PS_REQUIRED, &e->ref_name, NULL},
        {"key", PS_REQUIRED, &e->ref_key, NULL},
        {"optional", PS_BOOL, &e->optional, NULL},
    };
    size_t old = ps__path_key(x, key);
    int rc = ps__get_fields(x, ref, fields, PS_COUNT(fields));

    ps__path_pop(x, old);
    return rc;
}

static int parse_value_from(struct parse_ctx *x, const struct kedge_jval *vf, struct pod_env *e)
{
    static const char *const refs[] = {"configMapKeyRef", "secretKeyRef", "fieldRef",
                                       "resourceFieldRef"};
    size_t n, which, old;
    const struct kedge_jval *ref = ps__one_of(vf, refs, PS_COUNT(refs), &n, &which);
    int rc = 0;

    if (n == 0)
        return ps__fail(x,
                        "Invalid value: \"\": must specify one of: `configMapKeyRef`, `fieldRef`, "
                        "`resourceFieldRef` or `secretKeyRef`");
    if (n > 1)
        return ps__fail(
            x, "Invalid value: \"\": may not have more than one field specified at a time");
    if (which < 2) {
        e->src = which == 0 ? ENV_CONFIGMAP : ENV_SECRET;
        return parse_key_ref(x, refs[which], ref, e);
    }
    old = ps__path_key(x, refs[which]);
    if (ref->type != KEDGE_JOBJ) {
        rc = ps__want_object(x, ref);
    } else if (which == 2) {
        e->src = ENV_FIELD;
        rc = ps__get_str(x, ref, "fieldPath", &e->ref_key);
        if (rc == 0)
            rc = ps__required(x, "fieldPath", e->ref_key);
        if (rc == 0 && !field_path_ok(e->ref_key))
            rc = ps__fail_at(
                x, "fieldPath",
                "Unsupported value: \"%.80s\": supported values: \"metadata.name\", "
                "\"metadata.namespace\", \"metadata.uid\", \"metadata.labels['<KEY>']\", "
                "\"metadata.annotations['<KEY>']\", \"spec.nodeName\", "
                "\"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", "
                "\"status.podIP\", \"status.podIPs\"",
                e->ref_key);
    } else {
        e->src = ENV_RESOURCE;
        rc = ps__parse_resource_ref(x, ref, &e->ref_key, &e->ref_name, &e->value);
    }
    ps__path_pop(x, old);
    return rc;
}

static int parse_env_var(struct parse_ctx *x, const struct kedge_jval *v, struct pod_env *e)
{
    const struct kedge_jval *vf = NULL;
    int rc;

    rc = ps__want_object(x, v);
    if (rc == 0)
        rc = ps__get_str(x, v, "name", &e->name);
    if (rc == 0)
        rc = ps__required(x, "name", e->name);
    if (rc == 0 && !ps__env_name_ok(e->name))
        rc = ps__fail_at(x, "name",
                         "Invalid value: \"%.80s\": a valid environment variable name must consist "
                         "only of printable ASCII characters other than '='",
                         e->name);
    if (rc == 0)
        rc = ps__get_str(x, v, "value", &e->value);
    if (rc == 0)
        rc = ps__get_obj(x, v, "valueFrom", &vf);
    if (rc < 0)
        return rc;
    if (!vf) {
        e->src = ENV_VALUE;
        return e->value || (e->value = kedge_strdup("")) ? 0 : -ENOMEM;
    }
    if (e->value && *e->value)
        return ps__fail_at(x, "valueFrom",
                           "Invalid value: \"\": may not be specified when `value` is not empty");
    kedge_free(e->value);
    e->value = NULL;
    {
        size_t old = ps__path_key(x, "valueFrom");
        rc = parse_value_from(x, vf, e);
        ps__path_pop(x, old);
    }
    return rc;
}

static int parse_env_elem(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                          void *ctx)
{
    (void)i;
    (void)ctx;
    return parse_env_var(x, e, elem);
}

static int parse_env(struct parse_ctx *x, const struct kedge_jval *v, struct pod_container *c)
{
    return ps__parse_list(x, v, "env", MAX_ITEMS, sizeof(*c->env), &c->env, &c->n_env,
                          parse_env_elem, NULL);
}

static int parse_env_from_one(struct parse_ctx *x, const struct kedge_jval *v,
                              struct pod_env_from *ef)
{
    const struct ps_field fields[] = {
        {"name", PS_REQUIRED, &ef->name, NULL},
        {"optional", PS_BOOL, &ef->optional, NULL},
    };
    const struct kedge_jval *cm, *sec, *ref;
    const char *key;
    size_t old;
    int rc;

    rc = ps__want_object(x, v);
    if (rc == 0)
        rc = ps__get_str(x, v, "prefix", &ef->prefix);
    if (rc == 0 && ef->prefix && *ef->prefix && !ps__env_name_ok(ef->prefix))
        rc = ps__fail_at(x, "prefix",
                         "Invalid value: \"%.80s\": a valid environment variable name must consist "
                         "only of printable ASCII characters other than '='",
                         ef->prefix);
    if (rc < 0)
        return rc;
    cm = ps__member(v, "configMapRef");
    sec = ps__member(v, "secretRef");
    if (!cm && !sec)
        return ps__fail(x,
                        "Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`");
    if (cm && sec)
        return ps__fail(
            x, "Invalid value: \"\": may not have more than one field specified at a time");
    ef->secret = sec != NULL;
    ref = sec ? sec : cm;
    key = sec ? "secretRef" : "configMapRef";
    old = ps__path_key(x, key);
    rc = ps__get_fields(x, ref, fields, PS_COUNT(fields));
    ps__path_pop(x, old);
    return rc;
}

static int parse_env_from_elem(struct parse_ctx *x, const struct kedge_jval *e, void *elem,
                               size_t i, void *ctx)
{
    (void)i;
    (void)ctx;
    return parse_env_from_one(x, e, elem);
}

static int parse_env_from(struct parse_ctx *x, const struct kedge_jval *v, struct pod_container *c)
{
    return ps__parse_list(x, v, "envFrom", MAX_ITEMS, sizeof(*c->env_from), &c->env_from,
                          &c->n_env_from, parse_env_from_elem, NULL);
}

static int parse_mount(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                       void *ctx)
{
    struct pod_mount *m = elem;
    const struct ps_field fields[] = {
        {"name", PS_REQUIRED, &m->name, NULL},
        {"mountPath", PS_REQUIRED, &m->mount_path, NULL},
        {"subPath", PS_OPT_STR, &m->sub_path, NULL},
        {"readOnly", PS_BOOL, &m->read_only, NULL},
    };
    const struct kedge_jval *expr;
    const char *problem;
    int rc = ps__get_fields(x, e, fields, PS_COUNT(fields));

    (void)i;
    (void)ctx;
    if (rc == 0 && m->sub_path && (problem = ps__relative_path_problem(m->sub_path)))
        rc = ps__fail_at(x, "subPath", "Invalid value: \"%.80s\": %s", m->sub_path, problem);
    if (rc == 0 && (expr = ps__member(e, "subPathExpr")) && (expr->type != KEDGE_JSTR || expr->len))
        rc = ps__fail_at(x, "subPathExpr", "Forbidden: not supported by kedge");
    return rc;
}

static int parse_mounts(struct parse_ctx *x, const struct kedge_jval *v, struct pod_container *c)
{
    return ps__parse_list(x, v, "volumeMounts", MAX_ITEMS, sizeof(*c->mounts), &c->mounts,
                          &c->n_mounts, parse_mount, NULL);
}

/* resources.limits / requests: cpu and memory kept, every other quantity checked. */
static int parse_resource_list(struct parse_ctx *x, const struct kedge_jval *res, const char *key,
                               int64_t *cpu, int64_t *mem, bool *has_cpu, bool *has_mem)
{
    const struct kedge_jval **mems;
    size_t i, n, old;
    int rc = ps__get_members(x, res, key, &mems, &n);

    if (rc < 0 || !n)
        return rc;
    old = ps__path_key(x, key);
    for (i = 0; i < n && rc == 0; i++) {
        const struct kedge_jval *m = mems[i];
        char name[64];
        int64_t v = 0;
        (void)snprintf(name, sizeof(name), "%.*s", (int)m->key_len, m->key);
        if (m->type == KEDGE_JNULL)
            continue; /* a null Quantity is the zero quantity */
        if (m->key_len == 3 && !memcmp(m->key, "cpu", 3)) {
            rc = ps__get_quantity(x, name, m, 3, cpu);
            *has_cpu = true;
        } else if (m->key_len == 6 && !memcmp(m->key, "memory", 6)) {
            rc = ps__get_quantity(x, name, m, 0, mem);
            *has_mem = true;
        } else {
            const char *s = NULL;
            size_t len = 0;
            bool neg;
            /* kubelet does not use it: only the syntax matters */
            rc = ps__quantity_text(x, name, m, &s, &len);
            if (rc == 0 && ps__quantity_scaled(s, len, 0, &v, &neg) == KEDGE_EPARSE)
                rc = ps__fail_at(x, name, "quantity \"%.*s\" is not valid",
                                 (int)(len > 140 ? 140 : len), s);
        }
    }
    ps__path_pop(x, old);
    kedge_free(mems);
    return rc;
}

static int parse_resources(struct parse_ctx *x, const struct kedge_jval *v, struct pod_container *c)
{
    const struct kedge_jval *res;
    bool lc = false, lm = false, rcpu = false, rmem = false;
    size_t old;
    int rc = ps__get_obj(x, v, "resources", &res);

    if (rc < 0 || !res)
        return rc;
    old = ps__path_key(x, "resources");
    rc = parse_resource_list(x, res, "limits", &c->cpu_limit_milli, &c->mem_limit_bytes, &lc, &lm);
    if (rc == 0)
        rc = parse_resource_list(x, res, "requests", &c->cpu_request_milli, &c->mem_request_bytes,
                                 &rcpu, &rmem);
    ps__path_pop(x, old);
    /* SetDefaults_Pod: a request left out is the limit */
    if (lc && !rcpu)
        c->cpu_request_milli = c->cpu_limit_milli;
    if (lm && !rmem)
        c->mem_request_bytes = c->mem_limit_bytes;
    return rc;
}

/* IntOrString: a number, or the name of one of the container's ports, or (kubelet's last try)
 * a number written as a string. */
static int parse_probe_port(struct parse_ctx *x, const struct kedge_jval *h,
                            const struct pod_container *c, int *port)
{
    const struct kedge_jval *v = ps__member(h, "port");
    int64_t n = -1;
    size_t i;

    if (!v)
        return ps__fail_at(x, "port", "Required value");
    if (v->type == KEDGE_JNUM) {
        if (kedge_json_int64(v, &n) < 0)
            return ps__fail_at(x, "port", "must be an integer, not %.*s",
                               (int)(v->len > 40 ? 40 : v->len), v->str);
    } else if (v->type == KEDGE_JSTR) {
        for (i = 0; i < c->n_ports; i++)
            if (c->ports[i].name && strlen(c->ports[i].name) == v->len &&
                !memcmp(c->ports[i].name, v->str, v->len)) {
                *port = c->ports[i].container_port;
                return 0;
            }
        if (v->len && v->len < 10 && strspn(v->str, "0123456789") == v->len) {
            n = strtoll(v->str, NULL, 10);
        } else {
            return ps__fail_at(x, "port",
                               "Invalid value: \"%.*s\": the container has no port with this name",
                               (int)(v->len > 64 ? 64 : v->len), v->str);
        }
    } else {
        return ps__fail_at(x, "port", "must be an integer or a string, not %s", ps__jtype_name(v));
    }
    if (n < 1 || n > 65535)
        return ps__fail_at(x, "port",
                           "Invalid value: %" PRId64 ": must be between 1 and 65535, inclusive", n);
    *port = (int)n;
    return 0;
}

static int parse_header(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                        void *ctx)
{
    struct pod_kv *hd = elem;
    const struct ps_field fields[] = {
        {"name", PS_REQUIRED, &hd->name, NULL},
        {"value", PS_STR, &hd->value, ""},
    };

    (void)i;
    (void)ctx;
    return ps__get_fields(x, e, fields, PS_COUNT(fields));
}

static int parse_http_get(struct parse_ctx *x, const struct kedge_jval *h,
                          const struct pod_container *c, struct pod_probe *pr)
{
    /* SetDefaults_HTTPGetAction: path "/", scheme "HTTP" */
    const struct ps_field fields[] = {
        {"path", PS_STR, &pr->path, "/"},
        {"host", PS_OPT_STR, &pr->host, NULL},
        {"scheme", PS_STR, &pr->scheme, "HTTP"},
    };
    int rc;

    pr->kind = PROBE_HTTP;
    rc = ps__get_fields(x, h, fields, PS_COUNT(fields));
    if (rc == 0)
        rc = parse_probe_port(x, h, c, &pr->port);
    if (rc < 0)
        return rc;
    if (strcmp(pr->scheme, "HTTP") && strcmp(pr->scheme, "HTTPS"))
        return ps__fail_at(x, "scheme",
                           "Unsupported value: \"%.40s\": supported values: \"HTTP\", \"HTTPS\"",
                           pr->scheme);
    return ps__parse_list(x, h, "httpHeaders", MAX_ITEMS, sizeof(*pr->headers), &pr->headers,
                          &pr->n_headers, parse_header, NULL);
}

static int parse_probe(struct parse_ctx *x, const struct kedge_jval *v, const char *key,
                       const struct pod_container *c, struct pod_probe *pr)
{
    static const char *const handlers[] = {"exec", "httpGet", "tcpSocket", "grpc"};
    static const char *const timings[] = {"initialDelaySeconds", "periodSeconds", "timeoutSeconds",
                                          "successThreshold", "failureThreshold"};
    const struct kedge_jval *probe, *h;
    size_t i, n, which, old, oh;
    int64_t t[5] = {0, 0, 0, 0, 0};
    int rc = ps__get_obj(x, v, key, &probe);

    if (rc < 0 || !probe)
        return rc;
    old = ps__path_key(x, key);
    h = ps__one_of(probe, handlers, PS_COUNT(handlers), &n, &which);
    if (n == 0) {
        rc = ps__fail(x, "Required value: must specify a handler type");
        goto out;
    }
    if (n > 1) {
        rc = ps__fail(x, "Forbidden: may not specify more than 1 handler type");
        goto out;
    }
    oh = ps__path_key(x, handlers[which]);
    if (h->type != KEDGE_JOBJ)
        rc = ps__want_object(x, h);
    else if (which == 0) {
        pr->kind = PROBE_EXEC;
        rc = ps__get_strv(x, h, "command", &pr->command, &pr->n_command);
    } else if (which == 1) {
        rc = parse_http_get(x, h, c, pr);
    } else if (which == 2) {
        pr->kind = PROBE_TCP;
        rc = ps__get_opt_str(x, h, "host", &pr->host);
        if (rc == 0)
            rc = parse_probe_port(x, h, c, &pr->port);
    } else {
        rc = ps__fail(x, "Forbidden: gRPC probes are not supported by kedge");
    }
    ps__path_pop(x, oh);
    for (i = 0; rc == 0 && i < PS_COUNT(timings); i++)
        rc = ps__get_int(x, probe, timings[i], 0, INT32_MAX, &t[i]);
    /* SetDefaults_Probe: 0 is "not set" */
    pr->initial_delay_s = (int)t[0];
    pr->period_s = t[1] ? (int)t[1] : 10;
    pr->timeout_s = t[2] ? (int)t[2] : 1;
    pr->success_threshold = t[3] ? (int)t[3] : 1;
    pr->failure_threshold = t[4] ? (int)t[4] : 3;
out:
    ps__path_pop(x, old);
    return rc;
}

static bool name_taken(const struct pod_container *list, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (list[i].name && !strcmp(list[i].name, name))
            return true;
    return false;
}

/* c is element i of its list; the containers parsed before it (both lists) are complete. */
static int parse_container(struct parse_ctx *x, const struct kedge_jval *v,
                           const struct pod_spec *p, struct pod_container *c,
                           const struct pod_container *list, size_t i)
{
    int rc;

    rc = ps__want_object(x, v);
    if (rc == 0)
        rc = ps__container_hash(v, &c->hash);
    if (rc == 0)
        rc = ps__get_str(x, v, "name", &c->name);
    if (rc == 0)
        rc = ps__check_label(x, "name", c->name);
    if (rc == 0 && (name_taken(list, i, c->name) ||
                    (list != p->init_containers &&
                     name_taken(p->init_containers, p->n_init_containers, c->name))))
        rc = ps__fail_at(x, "name", "Duplicate value: \"%s\"", c->name);
    if (rc == 0)
        rc = ps__get_str_or(x, v, "image", "", &c->image);
    if (rc == 0)
        rc = ps__get_str(x, v, "imagePullPolicy", &c->pull_policy);
    if (rc == 0 && c->pull_policy && *c->pull_policy && strcmp(c->pull_policy, "Always") &&
        strcmp(c->pull_policy, "IfNotPresent") && strcmp(c->pull_policy, "Never"))
        rc = ps__fail_at(x, "imagePullPolicy",
                         "Unsupported value: \"%.40s\": supported values: \"Always\", "
                         "\"IfNotPresent\", \"Never\"",
                         c->pull_policy);
    if (rc == 0 && (!c->pull_policy || !*c->pull_policy)) {
        kedge_free(c->pull_policy);
        if (!(c->pull_policy = kedge_strdup(ps__default_pull_policy(c->image))))
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = ps__get_strv(x, v, "command", &c->command, &c->n_command);
    if (rc == 0)
        rc = ps__get_strv(x, v, "args", &c->args, &c->n_args);
    if (rc == 0)
        rc = ps__get_opt_str(x, v, "workingDir", &c->working_dir);
    if (rc == 0)
        rc = parse_ports(x, v, p, c);
    if (rc == 0)
        rc = parse_env(x, v, c);
    if (rc == 0)
        rc = parse_env_from(x, v, c);
    if (rc == 0)
        rc = parse_mounts(x, v, c);
    if (rc == 0)
        rc = parse_resources(x, v, c);
    if (rc == 0)
        rc = parse_probe(x, v, "livenessProbe", c, &c->liveness);
    if (rc == 0)
        rc = parse_probe(x, v, "readinessProbe", c, &c->readiness);
    if (rc == 0)
        rc = parse_probe(x, v, "startupProbe", c, &c->startup);
    if (rc == 0)
        rc = ps__get_bool(x, v, "tty", &c->tty);
    if (rc == 0)
        rc = ps__get_bool(x, v, "stdin", &c->stdin_open);
    return rc;
}

static int parse_container_elem(struct parse_ctx *x, const struct kedge_jval *e, void *elem,
                                size_t i, void *ctx)
{
    struct pod_container *c = elem;

    return parse_container(x, e, ctx, c, c - i, i);
}

int ps__parse_containers(struct parse_ctx *x, const struct kedge_jval *spec, const char *key,
                         struct pod_spec *p, struct pod_container **out, size_t *n_out)
{
    return ps__parse_list(x, spec, key, MAX_CONTAINERS, sizeof(**out), out, n_out,
                          parse_container_elem, p);
}
