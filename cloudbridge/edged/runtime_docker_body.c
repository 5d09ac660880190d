/* runtime_docker_body.c: the bodies of POST /containers/create (runtime_docker.h).
 *
 * dockershim's mapping onto the Docker Engine API v1.41 subset that both podman and dockerd
 * serve (docs/containers.md §5.2), written in the field order of Go's container.Config and
 * HostConfig, maps with sorted keys. ConfigMap, Secret, projected and downwardAPI volumes are
 * always mounted read-only, as kubelet's plugins say. Not done (outside the verified engine
 * subset): the /etc/hosts and termination-log mounts, sharing IPC and PID namespaces with the
 * infra container.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/util.h"
#include "podenv.h"
#include "runtime_docker_body.h"

/* ==== the container name ================================================================= */

int docker_container_name(const struct docker_create *cc, struct kedge_buf *out)
{
    const struct pod_spec *p = cc->pod;

    return kedge_buf_printf(out, "k8s_%s_%s_%s_%s_%d", cc->c ? cc->c->name : INFRA_CONTAINER_NAME,
                            p->name ? p->name : "", p->ns ? p->ns : "", p->uid ? p->uid : "",
                            cc->attempt);
}

/* ==== the create body ==================================================================== */

struct build {
    const struct docker_create *cc;
    const struct pod_spec *pod;
    const struct pod_container *c;
    char *why;
    size_t why_len;
    struct podenv env;
};

struct label {
    const char *key, *value;
};

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct label *)a)->key, ((const struct label *)b)->key);
}

/* Labels: a Go map, so sorted by key. */
static void write_labels(struct kedge_jw *w, const struct build *b, const char *hash)
{
    const struct docker_create *cc = b->cc;
    struct label l[8];
    char restarts[24];
    size_t n = 0, i;

    (void)snprintf(restarts, sizeof(restarts), "%d", cc->attempt);
    l[n++] = (struct label){LABEL_POD_NAME, b->pod->name};
    l[n++] = (struct label){LABEL_POD_NAMESPACE, b->pod->ns};
    l[n++] = (struct label){LABEL_POD_UID, b->pod->uid};
    l[n++] = (struct label){LABEL_CONTAINER_NAME, b->c ? b->c->name : INFRA_CONTAINER_NAME};
    l[n++] = (struct label){LABEL_CONTAINER_TYPE, b->c ? "container" : "podsandbox"};
    l[n++] = (struct label){LABEL_RESTART_COUNT, restarts};
    l[n++] = (struct label){LABEL_NODE, cc->node ? cc->node : ""};
    if (hash)
        l[n++] = (struct label){LABEL_CONTAINER_HASH, hash};
    qsort(l, n, sizeof(*l), label_cmp);
    kedge_jw_key(w, "Labels");
    kedge_jw_obj_open(w);
    for (i = 0; i < n; i++)
        kedge_jw_kstr(w, l[i].key, l[i].value);
    kedge_jw_obj_close(w);
}

/* One HostConfig.Ulimits entry, soft = hard; a limit not above 0 is not set. */
static void write_ulimit(struct kedge_jw *w, const char *name, int limit)
{
    if (limit <= 0)
        return;
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "Name", name);
    kedge_jw_kint(w, "Hard", limit);
    kedge_jw_kint(w, "Soft", limit);
    kedge_jw_obj_close(w);
}

static void write_ulimits(struct kedge_jw *w, const struct docker_create *cc)
{
    if (cc->nofile <= 0 && cc->nproc <= 0)
        return;
    kedge_jw_key(w, "Ulimits");
    kedge_jw_arr_open(w);
    write_ulimit(w, "nofile", cc->nofile);
    write_ulimit(w, "nproc", cc->nproc);
    kedge_jw_arr_close(w);
}

static void write_restart_policy(struct kedge_jw *w)
{
    /* kubelet restarts containers (with back-off), never the engine */
    kedge_jw_key(w, "RestartPolicy");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "Name", "no");
    kedge_jw_obj_close(w);
}

struct port_key {
    char key[24]; /* "80/tcp" */
    const struct pod_port *port;
    size_t seq;
};

static int port_key_cmp(const void *pa, const void *pb)
{
    const struct port_key *a = pa, *b = pb;
    int c = strcmp(a->key, b->key);

    return c ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

/* The published ports of every app container (dockershim's makePortsAndBindings), sorted by
 * "port/proto" (Go map order), bindings for one key in the pod's order. */
static int collect_ports(const struct pod_spec *p, struct port_key **out, size_t *n)
{
    size_t i, j, k = 0, total = 0;
    struct port_key *keys;

    *out = NULL;
    *n = 0;
    for (i = 0; i < p->n_containers; i++)
        for (j = 0; j < p->containers[i].n_ports; j++)
            total += p->containers[i].ports[j].host_port > 0;
    if (!total)
        return 0;
    keys = kedge_calloc(total, sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    for (i = 0; i < p->n_containers; i++) {
        for (j = 0; j < p->containers[i].n_ports; j++) {
            const struct pod_port *pt = &p->containers[i].ports[j];
            const char *proto = !strcmp(pt->protocol, "UDP")    ? "udp"
                                : !strcmp(pt->protocol, "SCTP") ? "sctp"
                                                                : "tcp";
            if (pt->host_port <= 0)
                continue;
            (void)snprintf(keys[k].key, sizeof(keys[k].key), "%d/%s", pt->container_port, proto);
            keys[k].port = pt;
            keys[k].seq = k;
            k++;
        }
    }
    qsort(keys, k, sizeof(*keys), port_key_cmp);
    *out = keys;
    *n = k;
    return 0;
}

static void write_exposed_ports(struct kedge_jw *w, const struct port_key *keys, size_t n)
{
    size_t i;

    kedge_jw_key(w, "ExposedPorts");
    kedge_jw_obj_open(w);
    for (i = 0; i < n; i++) {
        if (i && !strcmp(keys[i].key, keys[i - 1].key))
            continue;
        kedge_jw_key(w, keys[i].key);
        kedge_jw_obj_open(w);
        kedge_jw_obj_close(w);
    }
    kedge_jw_obj_close(w);
}

static void write_port_bindings(struct kedge_jw *w, const struct port_key *keys, size_t n)
{
    size_t i;
    char hp[16];

    kedge_jw_key(w, "PortBindings");
    kedge_jw_obj_open(w);
    for (i = 0; i < n; i++) {
        if (!i || strcmp(keys[i].key, keys[i - 1].key)) {
            if (i)
                kedge_jw_arr_close(w);
            kedge_jw_key(w, keys[i].key);
            kedge_jw_arr_open(w);
        }
        (void)snprintf(hp, sizeof(hp), "%d", keys[i].port->host_port);
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "HostIp", keys[i].port->host_ip ? keys[i].port->host_ip : "");
        kedge_jw_kstr(w, "HostPort", hp);
        kedge_jw_obj_close(w);
    }
    if (n)
        kedge_jw_arr_close(w);
    kedge_jw_obj_close(w);
}

/* kubelet's GeneratePodHostNameAndDomain: spec.hostname or the pod's name, cut to 63 characters
 * without a trailing '-' or '.'. */
static void write_hostname(struct kedge_jw *w, const struct pod_spec *p)
{
    const char *h = p->hostname ? p->hostname : p->name;
    size_t n = strlen(h);

    if (n > 63) {
        n = 63;
        while (n && (h[n - 1] == '-' || h[n - 1] == '.'))
            n--;
    }
    kedge_jw_key(w, "Hostname");
    kedge_jw_strn(w, h, n);
}

static int infra_body(struct build *b, struct kedge_jw *w)
{
    const struct docker_create *cc = b->cc;
    const struct pod_spec *p = b->pod;
    struct port_key *ports = NULL;
    size_t n_ports = 0;
    int rc;

    if (!cc->infra_image)
        return -EINVAL;
    /* with hostNetwork the node's ports are the pod's: nothing to publish, and Docker refuses
     * a Hostname in host mode */
    rc = p->host_network ? 0 : collect_ports(p, &ports, &n_ports);
    if (rc < 0)
        return rc;
    kedge_jw_obj_open(w);
    if (!p->host_network)
        write_hostname(w, p);
    if (n_ports)
        write_exposed_ports(w, ports, n_ports);
    kedge_jw_kstr(w, "Image", cc->infra_image);
    write_labels(w, b, NULL);
    kedge_jw_key(w, "HostConfig");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "NetworkMode", p->host_network ? "host" : "bridge");
    if (n_ports)
        write_port_bindings(w, ports, n_ports);
    write_restart_policy(w);
    write_ulimits(w, cc);
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
    kedge_free(ports);
    return 0;
}

static const struct pod_volume *find_volume(const struct pod_spec *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->n_volumes; i++)
        if (!strcmp(p->volumes[i].name, name))
            return &p->volumes[i];
    return NULL;
}

/* base + "/" + sub with empty and "." elements of sub dropped (filepath.Join, no ".." left by
 * the parser). */
static int join_sub(struct kedge_buf *out, const char *sub)
{
    const char *p = sub;
    int rc = 0;

    while (*p && rc == 0) {
        size_t n = strcspn(p, "/");
        if (n && !(n == 1 && p[0] == '.')) {
            if (!out->len || out->data[out->len - 1] != '/')
                rc = kedge_buf_putc(out, '/');
            if (rc == 0)
                rc = kedge_buf_append(out, p, n);
        }
        p += n;
        if (*p == '/')
            p++;
    }
    return rc;
}

/* "{source}[/{subPath}]:{mountPath}[:ro]" for each mount (kubelet's makeMounts). */
static int write_binds(struct build *b, struct kedge_jw *w)
{
    const struct pod_container *c = b->c;
    struct kedge_buf bind = KEDGE_BUF_INIT;
    size_t i;
    int rc = 0;

    if (!c->n_mounts)
        return 0;
    kedge_jw_key(w, "Binds");
    kedge_jw_arr_open(w);
    for (i = 0; i < c->n_mounts && rc == 0; i++) {
        const struct pod_mount *m = &c->mounts[i];
        const struct pod_volume *v = find_volume(b->pod, m->name);
        bool ro = m->read_only;
        kedge_buf_reset(&bind);
        if (!v) {
            rc = kedge_schema_why(b->why, b->why_len,
                                  "cannot find volume \"%s\" to mount into container \"%s\"",
                                  m->name, c->name);
            break;
        }
        if (v->kind == VOL_HOSTPATH) {
            rc = kedge_buf_puts(&bind, v->source);
        } else if (!b->cc->volumes_dir) {
            rc = -EINVAL;
        } else {
            rc = kedge_buf_printf(&bind, "%s/%s", b->cc->volumes_dir, v->name);
            /* configMap, secret, projected and downwardAPI volumes are read-only mounts
             * (their plugins' GetAttributes say so) */
            ro = ro || v->kind == VOL_CONFIGMAP || v->kind == VOL_SECRET ||
                 v->kind == VOL_PROJECTED || v->kind == VOL_DOWNWARD;
        }
        if (rc == 0 && m->sub_path)
            rc = join_sub(&bind, m->sub_path);
        if (rc == 0 && bind.len && memchr(bind.data, ':', bind.len))
            rc = kedge_schema_why(b->why, b->why_len,
                                  "volume \"%s\": the path %s has a ':', which a bind cannot carry",
                                  m->name, bind.data);
        if (rc == 0 && strchr(m->mount_path, ':'))
            rc = kedge_schema_why(
                b->why, b->why_len,
                "volumeMount \"%s\": mountPath %s has a ':', which a bind cannot carry", m->name,
                m->mount_path);
        if (rc == 0)
            rc = kedge_buf_printf(&bind, ":%s%s%s", m->mount_path[0] == '/' ? "" : "/",
                                  m->mount_path, ro ? ":ro" : "");
        if (rc == 0)
            kedge_jw_str(w, bind.data);
    }
    kedge_jw_arr_close(w);
    kedge_buf_cleanup(&bind);
    return rc;
}

/* Entrypoint / Cmd: each element $(VAR)-expanded against the final environment. */
static int write_expanded(struct build *b, struct kedge_jw *w, const char *key, char **v, size_t n)
{
    struct kedge_buf tmp = KEDGE_BUF_INIT;
    size_t i;
    int rc = 0;

    kedge_jw_key(w, key);
    kedge_jw_arr_open(w);
    for (i = 0; i < n && rc == 0; i++) {
        kedge_buf_reset(&tmp);
        rc = podenv_expand(&b->env, v[i], strlen(v[i]), &tmp);
        if (rc == 0)
            kedge_jw_strn(w, tmp.data ? tmp.data : "", tmp.len);
    }
    kedge_jw_arr_close(w);
    kedge_buf_cleanup(&tmp);
    return rc;
}

/* kubelet's MilliCPUToShares */
static int64_t cpu_shares(int64_t milli)
{
    int64_t shares;

    if (milli >= 256000)
        return 262144;
    shares = milli * 1024 / 1000;
    return shares < 2 ? 2 : shares;
}

static int app_body(struct build *b, struct kedge_jw *w)
{
    const struct docker_create *cc = b->cc;
    const struct pod_container *c = b->c;
    struct kedge_buf tmp = KEDGE_BUF_INIT;
    char hash[16];
    size_t i;
    int rc;

    if (!cc->infra_id)
        return -EINVAL;
    if (c->cpu_limit_milli > INT64_MAX / 1000000)
        return kedge_schema_why(b->why, b->why_len, "container \"%s\": the cpu limit is too large",
                                c->name);
    rc = podenv_resolve(
        &(struct podenv_src){b->pod, c, cc->pod_ip, cc->host_ip, cc->lookup, cc->lookup_ctx},
        &b->env, b->why, b->why_len);
    if (rc < 0)
        return rc;
    (void)snprintf(hash, sizeof(hash), "%" PRIu32, c->hash);
    kedge_jw_obj_open(w);
    kedge_jw_key(w, "Tty");
    kedge_jw_bool(w, c->tty);
    kedge_jw_key(w, "OpenStdin");
    kedge_jw_bool(w, c->stdin_open);
    if (b->env.n) {
        kedge_jw_key(w, "Env");
        kedge_jw_arr_open(w);
        for (i = 0; i < b->env.n && rc == 0; i++) {
            kedge_buf_reset(&tmp);
            rc = kedge_buf_printf(&tmp, "%s=", b->env.vars[i].name);
            if (rc == 0)
                rc = kedge_buf_append(&tmp, b->env.vars[i].val, b->env.vars[i].len);
            if (rc == 0)
                kedge_jw_strn(w, tmp.data, tmp.len);
        }
        kedge_jw_arr_close(w);
    }
    if (rc == 0 && c->n_args)
        rc = write_expanded(b, w, "Cmd", c->args, c->n_args);
    kedge_jw_kstr(w, "Image", c->image);
    if (c->working_dir)
        kedge_jw_kstr(w, "WorkingDir", c->working_dir);
    if (rc == 0 && c->n_command)
        rc = write_expanded(b, w, "Entrypoint", c->command, c->n_command);
    write_labels(w, b, hash);
    kedge_jw_key(w, "HostConfig");
    kedge_jw_obj_open(w);
    if (rc == 0)
        rc = write_binds(b, w);
    kedge_buf_reset(&tmp);
    if (rc == 0)
        rc = kedge_buf_printf(&tmp, "container:%s", cc->infra_id);
    if (rc == 0)
        kedge_jw_kstr(w, "NetworkMode", tmp.data);
    write_restart_policy(w);
    kedge_jw_kint(w, "CpuShares", cpu_shares(c->cpu_request_milli));
    if (c->mem_limit_bytes > 0)
        kedge_jw_kint(w, "Memory", c->mem_limit_bytes);
    if (c->cpu_limit_milli > 0)
        kedge_jw_kint(w, "NanoCpus", c->cpu_limit_milli * 1000000);
    write_ulimits(w, cc);
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
    kedge_buf_cleanup(&tmp);
    return rc;
}

int docker_create_body(const struct docker_create *cc, struct kedge_buf *out, char *why,
                       size_t why_len)
{
    struct build b;
    struct kedge_jw w;
    size_t start = out->len;
    int rc;

    kedge_set_why(why, why_len, "%s", "");
    if (!cc || !cc->pod || !cc->pod->name || !cc->pod->ns || !cc->pod->uid)
        return -EINVAL;
    memset(&b, 0, sizeof(b));
    b.cc = cc;
    b.pod = cc->pod;
    b.c = cc->c;
    b.why = why;
    b.why_len = why_len;
    kedge_jw_init(&w, out);
    rc = cc->c ? app_body(&b, &w) : infra_body(&b, &w);
    if (rc == 0)
        rc = kedge_jw_finish(&w);
    podenv_cleanup(&b.env);
    if (rc < 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}
