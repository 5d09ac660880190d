/* runtime_docker.c: struct runtime over the Docker Engine REST API v1.41 (runtime_docker.h).
 *
 * Each op is one engine call (engine.c) whose reply is turned into a runtime_result here: the
 * HTTP statuses the engines answer, the inspect and list JSON, the error bodies. Create bodies
 * are built by runtime_docker_body.c, exec by runtime_docker_exec.c, logs streamed and
 * demultiplexed by runtime_docker_logs.c, pulls streamed by runtime_docker_pull.c,
 * interactive exec and attach sessions run by runtime_docker_session.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/util.h"
#include "podstatus.h"
#include "runtime_docker.h"
#include "runtime_docker_exec.h"
#include "runtime_docker_logs.h"
#include "runtime_docker_pull.h"
#include "runtime_docker_session.h"
#include "runtime_docker_stats.h"

struct docker_rt {
    struct engine *engine;
    char *node, *infra_image;
    int nofile, nproc;
    struct docker_execs execs;
    struct docker_logs logs;
    struct docker_sessions sessions;
    runtime_changed_fn changed;
    runtime_up_fn up;
    void *watch_ctx;
};

enum call_kind { C_CREATE, C_START, C_KILL, C_REMOVE, C_LIST, C_INSPECT, C_IMAGE, C_VERSION };

struct call {
    enum call_kind kind;
    runtime_done_fn done;
    void *ctx;
};

/* ---- replies ----------------------------------------------------------------------------- */

/* A failed reply: RT_UNREACHABLE (no answer) or RT_FAILED, with the engine's message. */
static void failed(const struct engine_reply *r, struct runtime_result *res, char *msg, size_t n)
{
    docker_engine_message(r, msg, n);
    res->outcome = r->status == 0 ? RT_UNREACHABLE : RT_FAILED;
    res->message = msg;
}

static const char *label(const struct kedge_jval *labels, const char *k)
{
    const struct kedge_jval *v = kedge_json_get_exact(labels, k, strlen(k));
    return v && v->type == KEDGE_JSTR ? v->str : NULL;
}

static char *dup_str(const struct kedge_jval *v)
{
    return v && v->type == KEDGE_JSTR ? kedge_strdup(v->str) : kedge_strdup("");
}

static int64_t time_of(const struct kedge_jval *v)
{
    return v && v->type == KEDGE_JSTR ? podstatus_parse_time_ms(v->str) : 0;
}

static bool is_true(const struct kedge_jval *v)
{
    return v && v->type == KEDGE_JBOOL && v->boolean;
}

/* The sandbox's IP: NetworkSettings.IPAddress, else the first network's. */
static char *ip_of(const struct kedge_jval *ns)
{
    const struct kedge_jval *n = kedge_json_get(ns, "IPAddress"), *nets;

    if (n && n->type == KEDGE_JSTR && n->len)
        return kedge_strdup(n->str);
    nets = kedge_json_get(ns, "Networks");
    for (n = nets && nets->type == KEDGE_JOBJ ? nets->child : NULL; n; n = n->next) {
        const struct kedge_jval *ip = kedge_json_get(n, "IPAddress");
        if (ip && ip->type == KEDGE_JSTR && ip->len)
            return kedge_strdup(ip->str);
    }
    return NULL;
}

/* GET /containers/{id}/json into o. 0, KEDGE_EPARSE, -ENOMEM. */
static int parse_inspect(const char *json, size_t len, struct observed_container *o)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *cfg, *st, *labels;
    const char *v;
    int64_t code = 0;
    int rc = 0;

    if (kedge_json_parse(json, len, &doc) < 0)
        return KEDGE_EPARSE;
    root = kedge_jdoc_root(doc);
    cfg = kedge_json_get(root, "Config");
    st = kedge_json_get(root, "State");
    labels = kedge_json_get(cfg, "Labels");
    o->id = dup_str(kedge_json_get(root, "Id"));
    v = label(labels, LABEL_CONTAINER_NAME);
    o->name = kedge_strdup(v ? v : "");
    o->image = dup_str(kedge_json_get(cfg, "Image"));
    o->image_id = dup_str(kedge_json_get(root, "Image"));
    o->state = dup_str(kedge_json_get(st, "Status"));
    o->error = dup_str(kedge_json_get(st, "Error"));
    o->running = is_true(kedge_json_get(st, "Running"));
    o->oom_killed = is_true(kedge_json_get(st, "OOMKilled"));
    (void)kedge_json_int64(kedge_json_get(st, "ExitCode"), &code);
    o->exit_code = (int)code;
    o->started_ms = time_of(kedge_json_get(st, "StartedAt"));
    o->finished_ms = o->running ? 0 : time_of(kedge_json_get(st, "FinishedAt"));
    o->created_ms = time_of(kedge_json_get(root, "Created"));
    v = label(labels, LABEL_RESTART_COUNT);
    o->attempt = v ? atoi(v) : 0;
    v = label(labels, LABEL_CONTAINER_HASH);
    o->hash = v ? (uint32_t)strtoul(v, NULL, 10) : 0;
    o->ip = ip_of(kedge_json_get(root, "NetworkSettings"));
    if (!o->id || !o->name || !o->image || !o->image_id || !o->state || !o->error)
        rc = -ENOMEM;
    kedge_jdoc_free(doc);
    return rc;
}

static void inspected(const struct engine_reply *r, struct runtime_result *res, char *msg, size_t n,
                      struct observed_container *o)
{
    if (r->status == 404) {
        res->outcome = RT_NOT_FOUND;
        return;
    }
    if (r->status != 200 || parse_inspect(r->body, r->len, o) < 0) {
        failed(r, res, msg, n); /* unknown, not absent */
        return;
    }
    res->outcome = RT_OK;
    res->inspected = o;
}

/* GET /containers/json: the containers labelled with a pod UID and a container name. */
static void listed(const struct engine_reply *r, struct runtime_result *res, char *msg, size_t n,
                   struct kedge_jdoc **doc, struct runtime_listed **out)
{
    const struct kedge_jval *root, *c;
    size_t k = 0;

    if (r->status != 200 || kedge_json_parse(r->body, r->len, doc) < 0 ||
        kedge_jdoc_root(*doc)->type != KEDGE_JARR) {
        failed(r, res, msg, n);
        return;
    }
    root = kedge_jdoc_root(*doc);
    *out = kedge_calloc(root->n ? root->n : 1, sizeof(**out));
    if (!*out) {
        res->outcome = RT_FAILED;
        res->message = "out of memory";
        return;
    }
    for (c = root->child; c; c = c->next) {
        const struct kedge_jval *labels = kedge_json_get(c, "Labels");
        const struct kedge_jval *id = kedge_json_get(c, "Id"), *st = kedge_json_get(c, "State");
        struct runtime_listed *l = &(*out)[k];

        l->pod_uid = label(labels, LABEL_POD_UID);
        l->name = label(labels, LABEL_CONTAINER_NAME);
        l->id = id && id->type == KEDGE_JSTR ? id->str : "";
        l->state = st && st->type == KEDGE_JSTR ? st->str : "";
        if (!l->pod_uid || !l->name || !*l->id)
            continue;
        l->sandbox = !strcmp(l->name, INFRA_CONTAINER_NAME);
        k++;
    }
    res->outcome = RT_OK;
    res->listed = *out;
    res->n_listed = k;
}

/* GET /version: kubelet's form, <runtime>://<version> (dockershim said docker://24.0.5);
 * podman's Docker API names itself "Podman Engine". */
static void version_read(const struct engine_reply *r, struct runtime_result *res, char *msg,
                         size_t n)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *v, *c;
    const char *runtime = "docker";

    if (r->err || r->status != 200 || kedge_json_parse(r->body, r->len, &doc) < 0) {
        failed(r, res, msg, n);
        return;
    }
    root = kedge_jdoc_root(doc);
    v = kedge_json_get(root, "Version");
    c = kedge_json_get(root, "Components");
    for (c = c && c->type == KEDGE_JARR ? c->child : NULL; c; c = c->next) {
        const struct kedge_jval *nm = kedge_json_get(c, "Name");
        if (nm && nm->type == KEDGE_JSTR && !strncmp(nm->str, "Podman", 6))
            runtime = "podman";
    }
    if (v && v->type == KEDGE_JSTR && v->len) {
        snprintf(msg, n, "%s://%s", runtime, v->str);
        res->outcome = RT_OK;
        res->text = msg;
    } else {
        res->outcome = RT_FAILED;
        res->message = "the container runtime did not say its version";
    }
    kedge_jdoc_free(doc);
}

static const char *created_id(const struct engine_reply *r, struct kedge_jdoc **doc)
{
    const struct kedge_jval *id;

    if (kedge_json_parse(r->body, r->len, doc) < 0)
        return NULL;
    id = kedge_json_get(kedge_jdoc_root(*doc), "Id");
    return id && id->type == KEDGE_JSTR ? id->str : NULL;
}

static void created(const struct engine_reply *r, struct runtime_result *res, char *msg, size_t n,
                    struct kedge_jdoc **doc)
{
    const char *id = r->status == 201 ? created_id(r, doc) : NULL;

    if (id) {
        res->outcome = RT_OK;
        res->id = id;
    } else if (r->status == 409 || (r->status == 500 && strstr(r->body, "already in use"))) {
        res->outcome = RT_CONFLICT; /* (podman answers a taken name with 500) */
        res->message = "the name is in use";
    } else {
        failed(r, res, msg, n);
        if (r->status == 404)
            res->outcome = RT_NOT_FOUND;
    }
}

static void answered(void *ctx, const struct engine_reply *r)
{
    struct call *c = ctx;
    struct runtime_result res = {.outcome = RT_OK, .message = ""};
    struct observed_container o = {0};
    struct runtime_listed *list = NULL;
    struct kedge_jdoc *doc = NULL;
    char msg[800];

    if (r->err == -ECANCELED) {
        res.outcome = RT_CANCELLED;
        res.message = "the container runtime client stopped";
    } else {
        switch (c->kind) {
        case C_CREATE:
            created(r, &res, msg, sizeof(msg), &doc);
            break;
        case C_START:
            if (r->status != 204 && r->status != 304)
                failed(r, &res, msg, sizeof(msg));
            break;
        case C_KILL:
        case C_REMOVE:
            if (r->status == 404)
                res.outcome = RT_NOT_FOUND;
            else if (r->status == 0 || (r->status >= 300 && r->status != 304))
                failed(r, &res, msg, sizeof(msg));
            break;
        case C_LIST:
            listed(r, &res, msg, sizeof(msg), &doc, &list);
            break;
        case C_INSPECT:
            inspected(r, &res, msg, sizeof(msg), &o);
            break;
        case C_IMAGE:
            if (r->status == 0)
                failed(r, &res, msg, sizeof(msg));
            res.present = r->status == 200;
            break;
        case C_VERSION:
            version_read(r, &res, msg, sizeof(msg));
            break;
        }
    }
    if (c->done)
        c->done(c->ctx, &res);
    observed_container_cleanup(&o);
    kedge_free(list);
    kedge_jdoc_free(doc);
    kedge_free(c);
}

/* ---- calls ------------------------------------------------------------------------------- */

static int request(struct docker_rt *d, enum call_kind kind, const char *method, const char *path,
                   const char *body, size_t body_len, int timeout_ms, runtime_done_fn done,
                   void *ctx)
{
    struct call *c = kedge_calloc(1, sizeof(*c));

    if (!c)
        return -ENOMEM;
    c->kind = kind;
    c->done = done;
    c->ctx = ctx;
    if (engine_request(d->engine, method, path, body, body_len, timeout_ms, answered, c) < 0) {
        kedge_free(c);
        return -ENOMEM;
    }
    return 0;
}

/* A call on /containers/{id}{suffix}. */
static int on_container(struct docker_rt *d, enum call_kind kind, const char *method,
                        const char *id, const char *suffix, runtime_done_fn done, void *ctx)
{
    char path[256];

    snprintf(path, sizeof(path), "/containers/%s%s", id, suffix);
    return request(d, kind, method, path, NULL, 0, 0, done, ctx);
}

static int create(struct docker_rt *d, const struct runtime_create *rc, char *why, size_t why_len,
                  runtime_done_fn done, void *ctx)
{
    struct kedge_buf body = KEDGE_BUF_INIT, name = KEDGE_BUF_INIT, path = KEDGE_BUF_INIT;
    struct docker_create cc = {rc->pod,        rc->c,      d->node,        d->infra_image,
                               rc->sandbox_id, rc->pod_ip, rc->host_ip,    rc->volumes_dir,
                               rc->attempt,    rc->lookup, rc->lookup_ctx, d->nofile,
                               d->nproc};
    int err = docker_create_body(&cc, &body, why, why_len);

    if (err == 0)
        err = docker_container_name(&cc, &name);
    if (err == 0 && (kedge_buf_puts(&path, "/containers/create?name=") < 0 ||
                     docker_urlencode(&path, name.data) < 0))
        err = -ENOMEM;
    if (err == 0)
        err = request(d, C_CREATE, "POST", path.data, body.data, body.len, 0, done, ctx);
    kedge_buf_cleanup(&body);
    kedge_buf_cleanup(&name);
    kedge_buf_cleanup(&path);
    return err;
}

static int op_create_sandbox(void *rt, const struct runtime_create *cc, char *why, size_t why_len,
                             runtime_done_fn done, void *ctx)
{
    struct runtime_create sb = *cc;

    sb.c = NULL;
    return create(rt, &sb, why, why_len, done, ctx);
}

static int op_create_container(void *rt, const struct runtime_create *cc, char *why, size_t why_len,
                               runtime_done_fn done, void *ctx)
{
    if (!cc->c)
        return -EINVAL;
    return create(rt, cc, why, why_len, done, ctx);
}

static int op_start(void *rt, const char *id, runtime_done_fn done, void *ctx)
{
    return on_container(rt, C_START, "POST", id, "/start", done, ctx);
}

static int op_kill(void *rt, const char *id, const char *signal, runtime_done_fn done, void *ctx)
{
    char suffix[64];

    snprintf(suffix, sizeof(suffix), "/kill?signal=%s", signal);
    return on_container(rt, C_KILL, "POST", id, suffix, done, ctx);
}

static int op_remove(void *rt, const char *id, runtime_done_fn done, void *ctx)
{
    return on_container(rt, C_REMOVE, "DELETE", id, "?force=1&v=1", done, ctx);
}

static int op_list(void *rt, runtime_done_fn done, void *ctx)
{
    struct docker_rt *d = rt;
    struct kedge_buf path = KEDGE_BUF_INIT, f = KEDGE_BUF_INIT;
    int rc = -ENOMEM;

    if (kedge_buf_printf(&f, "{\"label\":[\"%s=%s\"]}", LABEL_NODE, d->node) == 0 &&
        kedge_buf_puts(&path, "/containers/json?all=1&filters=") == 0 &&
        docker_urlencode(&path, f.data) == 0)
        rc = request(d, C_LIST, "GET", path.data, NULL, 0, 0, done, ctx);
    kedge_buf_cleanup(&path);
    kedge_buf_cleanup(&f);
    return rc;
}

static int op_inspect(void *rt, const char *id, runtime_done_fn done, void *ctx)
{
    return on_container(rt, C_INSPECT, "GET", id, "/json", done, ctx);
}

static int op_image_present(void *rt, const char *image, runtime_done_fn done, void *ctx)
{
    struct kedge_buf path = KEDGE_BUF_INIT;
    int rc = -ENOMEM;

    if (kedge_buf_puts(&path, "/images/") == 0 && docker_urlencode(&path, image) == 0 &&
        kedge_buf_puts(&path, "/json") == 0)
        rc = request(rt, C_IMAGE, "GET", path.data, NULL, 0, 0, done, ctx);
    kedge_buf_cleanup(&path);
    return rc;
}

static int op_pull(void *rt, const char *image, const struct runtime_auth *auth,
                   runtime_done_fn done, void *ctx)
{
    struct docker_rt *d = rt;

    return docker_pull(d->engine, image, auth, done, ctx);
}

static int op_version(void *rt, runtime_done_fn done, void *ctx)
{
    return request(rt, C_VERSION, "GET", "/version", NULL, 0, 0, done, ctx);
}

static void on_event(void *ctx, const char *json, size_t len)
{
    struct docker_rt *d = ctx;

    (void)json;
    (void)len;
    d->changed(d->watch_ctx);
}

static void on_up(void *ctx, bool up)
{
    struct docker_rt *d = ctx;

    d->up(d->watch_ctx, up);
}

static int op_watch(void *rt, runtime_changed_fn changed, runtime_up_fn up, void *ctx)
{
    struct docker_rt *d = rt;
    struct kedge_buf l = KEDGE_BUF_INIT, f = KEDGE_BUF_INIT;
    int rc;

    d->changed = changed;
    d->up = up;
    d->watch_ctx = ctx;
    rc = kedge_buf_printf(&f, "{\"label\":[\"%s=%s\"],\"type\":[\"container\"]}", LABEL_NODE,
                          d->node);
    if (rc == 0)
        rc = kedge_buf_puts(&l, "/events?filters=") < 0 || docker_urlencode(&l, f.data) < 0
                 ? -ENOMEM
                 : 0;
    if (rc == 0)
        rc = engine_watch(d->engine, l.data, on_event, on_up, d);
    kedge_buf_cleanup(&l);
    kedge_buf_cleanup(&f);
    return rc;
}

static long op_exec(void *rt, const char *id, char *const *argv, size_t argc, int timeout_ms,
                    runtime_exec_fn done, void *ctx)
{
    struct docker_rt *d = rt;

    return docker_exec(&d->execs, d->engine, id, argv, argc, timeout_ms, done, ctx);
}

static void op_exec_cancel(void *rt, long handle)
{
    struct docker_rt *d = rt;

    docker_exec_cancel(&d->execs, handle);
}

static long op_logs(void *rt, const char *id, const struct runtime_log_options *o,
                    runtime_log_chunk_fn chunk, runtime_log_end_fn end, void *ctx)
{
    struct docker_rt *d = rt;

    return docker_logs(&d->logs, d->engine, id, o, chunk, end, ctx);
}

static void op_logs_cancel(void *rt, long handle)
{
    struct docker_rt *d = rt;

    docker_logs_cancel(&d->logs, handle);
}

static int op_stats(void *rt, const char *id, runtime_stats_fn done, void *ctx)
{
    struct docker_rt *d = rt;

    return docker_stats(d->engine, id, done, ctx);
}

static void op_logs_pause(void *rt, long handle, bool pause)
{
    struct docker_rt *d = rt;

    docker_logs_pause(&d->logs, handle, pause);
}

static long op_exec_session(void *rt, const char *id, char *const *argv, size_t argc,
                            const struct runtime_stdio *io, const struct runtime_session_fns *fns,
                            void *ctx)
{
    struct docker_rt *d = rt;

    return docker_exec_session(&d->sessions, id, argv, argc, io, fns, ctx);
}

static long op_attach_session(void *rt, const char *id, const struct runtime_stdio *io,
                              const struct runtime_session_fns *fns, void *ctx)
{
    struct docker_rt *d = rt;

    return docker_attach_session(&d->sessions, id, io, fns, ctx);
}

static int op_session_stdin(void *rt, long handle, const char *b, size_t n)
{
    struct docker_rt *d = rt;

    return docker_session_stdin(&d->sessions, handle, b, n);
}

static int op_session_close_stdin(void *rt, long handle)
{
    struct docker_rt *d = rt;

    return docker_session_close_stdin(&d->sessions, handle);
}

static int op_session_resize(void *rt, long handle, unsigned width, unsigned height)
{
    struct docker_rt *d = rt;

    return docker_session_resize(&d->sessions, handle, width, height);
}

static void op_session_pause(void *rt, long handle, bool pause)
{
    struct docker_rt *d = rt;

    docker_session_pause(&d->sessions, handle, pause);
}

static void op_session_cancel(void *rt, long handle)
{
    struct docker_rt *d = rt;

    docker_session_cancel(&d->sessions, handle);
}

static void op_stop(void *rt)
{
    struct docker_rt *d = rt;

    docker_sessions_stop(&d->sessions);
    engine_stop(d->engine);
}

static void op_free(void *rt)
{
    struct docker_rt *d = rt;

    if (!d)
        return;
    engine_free(d->engine); /* answers every call in flight (cancelled) */
    docker_logs_free(&d->logs);
    docker_sessions_free(&d->sessions);
    kedge_free(d->node);
    kedge_free(d->infra_image);
    kedge_free(d);
}

static const struct runtime_ops docker_ops = {
    .create_sandbox = op_create_sandbox,
    .create_container = op_create_container,
    .start_container = op_start,
    .kill_container = op_kill,
    .remove_container = op_remove,
    .list = op_list,
    .inspect = op_inspect,
    .image_present = op_image_present,
    .pull_image = op_pull,
    .version = op_version,
    .watch = op_watch,
    .exec = op_exec,
    .exec_cancel = op_exec_cancel,
    .logs = op_logs,
    .logs_cancel = op_logs_cancel,
    .logs_pause = op_logs_pause,
    .exec_session = op_exec_session,
    .attach_session = op_attach_session,
    .session_stdin = op_session_stdin,
    .session_close_stdin = op_session_close_stdin,
    .session_resize = op_session_resize,
    .session_pause = op_session_pause,
    .session_cancel = op_session_cancel,
    .stats = op_stats,
    .stop = op_stop,
    .free = op_free,
};

/* ---- lifetime ---------------------------------------------------------------------------- */

static int wrap(struct engine *e, struct lws_context *lws, struct lws_vhost *vhost,
                const struct runtime_docker_config *cfg, struct runtime *out)
{
    struct docker_rt *d = kedge_calloc(1, sizeof(*d));

    out->ops = NULL;
    out->rt = NULL;
    if (!d)
        return -ENOMEM;
    d->engine = e;
    d->node = kedge_strdup(cfg->node ? cfg->node : "");
    d->infra_image = cfg->infra_image ? kedge_strdup(cfg->infra_image) : NULL;
    d->nofile = cfg->nofile;
    d->nproc = cfg->nproc;
    if (!d->node || (cfg->infra_image && !d->infra_image) ||
        docker_sessions_init(&d->sessions, e, lws, vhost, cfg->socket_path) < 0) {
        docker_sessions_free(&d->sessions);
        kedge_free(d->node);
        kedge_free(d->infra_image);
        kedge_free(d);
        return -ENOMEM;
    }
    out->ops = &docker_ops;
    out->rt = d;
    return 0;
}

int runtime_docker_new(struct lws_context *lws, struct lws_vhost *vhost,
                       const struct runtime_docker_config *cfg, struct runtime *out)
{
    struct engine *e = NULL;
    int rc = engine_new(lws, vhost, cfg->socket_path, &e);

    if (rc == 0)
        rc = wrap(e, lws, vhost, cfg, out);
    if (rc < 0) {
        engine_free(e);
        return rc;
    }
    return 0;
}
