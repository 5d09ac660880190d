/* edged.c: kubelet's pod workers on the bridge's event loop.
 *
 * Level-triggered, as kubelet's PLEG + syncPod: edged relists the engine's containers (its
 * own, labelled io.kedge.node=<node>), inspects the ones that changed, and then drives every
 * pod one step toward its spec; when a step's API calls finish it relists again. Triggers: the
 * engine's /events stream (debounced), a pod from MetaManager, a back-off or probe coming due
 * (1 s tick), and a periodic resync (pod_resync_s) in case an event was missed.
 *
 * So a restart needs no special path: pods come from the meta store, containers from the
 * engine, and the first relist matches them by pod UID and container name. A running
 * container is adopted (never started twice); containers of pods the store no longer has are
 * removed (no orphans). Attempt numbers live in a label, so restartCount survives restarts.
 *
 * Steps for one pod (sync_pod): volumes; the infra container (a new sandbox if it died); init
 * containers in order; app containers: create+start the missing ones (image check / pull
 * first), restart dead ones per restartPolicy with kubelet's back-off (the first restart at
 * once, then initial, doubling to max; CrashLoopBackOff while waiting), replace ones whose
 * spec hash changed, stop ones a liveness probe failed. Deleted pods: stop the apps with the
 * grace period, report the final status, remove containers and volumes, forget the pod.
 *
 * Status (podstatus.c) is computed after every relist and sent as a podpatch when it changed;
 * while the link is down the newest status waits and goes when it returns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "edged.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/msg.h"
#include "kedge/util.h"

#define TICK_MS 1000
#define RELIST_DEBOUNCE_MS 50
#define BACKOFF_RESET_MS 600000 /* kubelet forgets a back-off after 2 x 300 s without a crash */
#define QUERY_AGAIN_MS 10000
#define RETAKE_AFTER_ERROR_MS 10000 /* kubelet's status manager syncs every 10 s */

/* A container as the last relist saw it. */
struct seen {
    struct observed_container o; /* strings owned */
    char *uid, *ip, *list_state;
    bool infra;
};

struct probe_ctx;

/* edged's state for one container of the spec (init containers first, then apps). */
struct cstate {
    enum container_waiting waiting;
    char *waiting_msg;
    uint64_t backoff_until_ms; /* monotonic; restart not before */
    int64_t backoff_ms;        /* the current step; 0: the next restart is immediate */
    uint64_t pull_until_ms;
    int64_t pull_backoff_ms;
    bool ready, started, kill_requested;
    int live_fail, ready_ok, ready_fail, start_ok, start_fail;
    uint64_t probe_at_ms[3]; /* liveness, readiness, startup: next run (0: not scheduled) */
    long probe_handle[3];
    struct probe_ctx *probe_ctx[3]; /* owned while the probe runs (freed on cancel) */
    char *probe_cid;                /* the container the probe counters belong to */
    uint64_t retry_at_ms;           /* after a config/create error: not before (monotonic) */
};

/* A container asked to stop: SIGTERM now, SIGKILL when the grace period is over (kubelet's
 * StopContainer; done with two quick kill calls rather than one /stop that answers only when
 * the container is gone). */
struct stopping {
    char id[72];
    uint64_t kill_at_ms; /* monotonic */
};
#define MAX_STOPPING 16

enum probe_slot { P_LIVE, P_READY, P_START };

struct epod {
    struct epod *next;
    char *key, *uid;
    struct pod_spec *spec;
    struct cstate *cs; /* spec->n_init_containers + spec->n_containers */
    size_t n_cs;
    char *pod_reason, *pod_message;
    int64_t start_ms;
    int64_t cond_since_s[N_COND];
    bool cond_last[N_COND], cond_known;
    int busy; /* engine calls in flight for this pod */
    struct stopping stops[MAX_STOPPING];
    size_t n_stops;
    uint64_t infra_retry_at_ms; /* after the infra container could not be made */
    int sandbox_attempt;
    bool terminating, finalise, final_sent, volumes_ready, volumes_dirty;
    char *status_sent, *status_pending;
    bool status_inflight;
    uint64_t queried_ms; /* last remote query for a missing configMap/secret */
};

struct edged {
    struct bridge *br;
    struct engine *engine;
    struct prober *prober;
    struct satoken *tokens;
    struct epod *pods;
    struct podgone *gone;     /* pods finished here: late updates of them are ignored */
    struct deletion *retakes; /* deletes the cloud did not confirm: pods to take again */
    struct seen *seen, *next_seen;
    size_t n_seen, n_next;
    size_t inspects_pending;
    bool relisting, relist_again, engine_up, listed_once, stopping;
    uint64_t retry_ms;  /* after a failed relist: 1 s, doubling up to pod_resync_s */
    bool relist_broken; /* an inspect of this relist failed: the list is not used */
    uint64_t next_resync_ms;
    char host_ip[64];
    struct kedge_ratelimit rl;
    lws_sorted_usec_list_t sul_tick, sul_relist;
};

/* One engine call's context: which pod (by UID: it may be gone when the reply comes). */
enum op_kind {
    OP_REMOVE,
    OP_STOP,
    OP_START_EXISTING,
    OP_IMAGE_CHECK,
    OP_PULL,
    OP_CREATE,
    OP_START,
    OP_INFRA_CREATE,
    OP_INFRA_START
};

struct op {
    struct edged *ed;
    char *uid;
    enum op_kind kind;
    int ci; /* container index into cs, -1 for the infra container */
    int attempt;
    char *id;
};

static void relist_soon(struct edged *ed);
static void probe_ctx_free(struct probe_ctx *pc);
static void cstate_cleanup(struct edged *ed, struct cstate *c);
static bool report_status(struct edged *ed, struct epod *p);

/* ---- small helpers --------------------------------------------------------------------------- */

static const struct pod_container *spec_container(const struct epod *p, size_t ci)
{
    if (ci < p->spec->n_init_containers)
        return &p->spec->init_containers[ci];
    return &p->spec->containers[ci - p->spec->n_init_containers];
}

static bool is_init(const struct epod *p, size_t ci)
{
    return ci < p->spec->n_init_containers;
}

static void set_waiting(struct cstate *c, enum container_waiting w, const char *msg)
{
    c->waiting = w;
    kedge_free(c->waiting_msg);
    c->waiting_msg = msg && *msg ? kedge_strdup(msg) : NULL;
}

/* A container that could not be made (bad config, image, engine error) waits before the
 * next try instead of trying again at every relist. */
static void hold(struct edged *ed, struct cstate *c, enum container_waiting w, const char *msg)
{
    set_waiting(c, w, msg);
    c->retry_at_ms = kedge_now_ms() + (uint64_t)ed->br->cfg.pod_backoff_initial_ms;
}

static struct epod *pod_by_uid(struct edged *ed, const char *uid)
{
    struct epod *p;

    for (p = ed->pods; p; p = p->next)
        if (uid && !strcmp(p->uid, uid))
            return p;
    return NULL;
}

static struct epod *pod_by_key(struct edged *ed, const char *key)
{
    struct epod *p;

    for (p = ed->pods; p; p = p->next)
        if (!strcmp(p->key, key))
            return p;
    return NULL;
}

/* Whether s is a container of pod uid. Entries emptied by a relist in progress (reuse) are
 * nobody's. */
static bool seen_of(const struct seen *s, const char *uid)
{
    return s->o.id && s->uid && !strcmp(s->uid, uid);
}

/* The newest and the previous attempt of container `name` of pod uid. */
static void find_seen(struct edged *ed, const char *uid, const char *name, bool infra,
                      struct seen **cur, struct seen **prev)
{
    size_t i;

    *cur = *prev = NULL;
    for (i = 0; i < ed->n_seen; i++) {
        struct seen *s = &ed->seen[i];
        if (!seen_of(s, uid) || s->infra != infra || (!infra && strcmp(s->o.name, name)))
            continue;
        if (!*cur || s->o.attempt > (*cur)->o.attempt ||
            (s->o.attempt == (*cur)->o.attempt && s->o.created_ms > (*cur)->o.created_ms)) {
            *prev = *cur;
            *cur = s;
        } else if (!*prev || s->o.attempt > (*prev)->o.attempt) {
            *prev = s;
        }
    }
}

static bool exited(const struct seen *s)
{
    return s && !s->o.running &&
           (s->o.finished_ms > 0 || !strcmp(s->o.state, "exited") ||
            !strcmp(s->o.state, "stopped"));
}

static void seen_cleanup(struct seen *s)
{
    kedge_free(s->o.id);
    kedge_free(s->o.name);
    kedge_free(s->o.image);
    kedge_free(s->o.image_id);
    kedge_free(s->o.state);
    kedge_free(s->o.error);
    kedge_free(s->uid);
    kedge_free(s->ip);
    kedge_free(s->list_state);
    memset(s, 0, sizeof(*s));
}

/* ---- engine calls ------------------------------------------------------------------------------
 */

static void op_free(struct op *o)
{
    if (!o)
        return;
    kedge_free(o->uid);
    kedge_free(o->id);
    kedge_free(o);
}

static void op_done(void *ctx, const struct engine_reply *r);

/* Start one call for pod p. On failure to even queue it, the pod is retried at the next tick. */
static int call(struct edged *ed, struct epod *p, enum op_kind kind, int ci, int attempt,
                const char *id, const char *method, const char *path, const char *body,
                size_t body_len, int timeout_ms)
{
    struct op *o = kedge_calloc(1, sizeof(*o));

    if (!o || !(o->uid = kedge_strdup(p->uid)) || (id && !(o->id = kedge_strdup(id)))) {
        op_free(o);
        return -ENOMEM;
    }
    o->ed = ed;
    o->kind = kind;
    o->ci = ci;
    o->attempt = attempt;
    kedge_log(KEDGE_LOG_DEBUG, "edged: pod %s: %s %s", p->key, method, path);
    p->busy++; /* first: a refused connection completes inside engine_request */
    if (engine_request(ed->engine, method, path, body, body_len, timeout_ms, op_done, o) < 0) {
        p->busy--;
        op_free(o);
        return -ENOMEM;
    }
    return 0;
}

/* A call on /containers/{id}{suffix}. */
static int call_id(struct edged *ed, struct epod *p, enum op_kind kind, int ci, const char *id,
                   const char *method, const char *suffix, int timeout_ms)
{
    char path[256];

    snprintf(path, sizeof(path), "/containers/%s%s", id, suffix);
    return call(ed, p, kind, ci, 0, id, method, path, NULL, 0, timeout_ms);
}

static void remove_container(struct edged *ed, struct epod *p, const char *id)
{
    (void)call_id(ed, p, OP_REMOVE, -1, id, "DELETE", "?force=1&v=1", 0);
}

static struct stopping *find_stop(struct epod *p, const char *id)
{
    size_t i;

    for (i = 0; i < p->n_stops; i++)
        if (!strcmp(p->stops[i].id, id))
            return &p->stops[i];
    return NULL;
}

static void kill_container(struct edged *ed, struct epod *p, int ci, const char *id,
                           const char *sig)
{
    char path[256];

    snprintf(path, sizeof(path), "/containers/%s/kill?signal=%s", id, sig);
    (void)call(ed, p, OP_STOP, ci, 0, id, "POST", path, NULL, 0, 0);
}

/* Stop a running container once: TERM, and KILL after the grace period (tick). */
static void stop_container(struct edged *ed, struct epod *p, int ci, const char *id)
{
    int64_t grace = p->spec ? p->spec->grace_s : 30;
    struct stopping *st = find_stop(p, id);

    if (st)
        return; /* asked already; the tick sends KILL when the grace period is over */
    if (grace <= 0 || p->n_stops == MAX_STOPPING) {
        kill_container(ed, p, ci, id, "KILL");
        return;
    }
    st = &p->stops[p->n_stops++];
    snprintf(st->id, sizeof(st->id), "%s", id);
    st->kill_at_ms = kedge_now_ms() + (uint64_t)grace * 1000;
    kill_container(ed, p, ci, id, "TERM");
}

/* The tick: KILL what outlived its grace period; forget stops of containers that are gone. */
static void stops_due(struct edged *ed, struct epod *p, uint64_t now)
{
    size_t i = 0;

    while (i < p->n_stops) {
        struct stopping *st = &p->stops[i];
        bool running = false;
        for (size_t k = 0; k < ed->n_seen; k++)
            if (ed->seen[k].o.id && !strcmp(ed->seen[k].o.id, st->id))
                running = ed->seen[k].o.running;
        if (running && now < st->kill_at_ms) {
            i++;
            continue;
        }
        if (running)
            kill_container(ed, p, -1, st->id, "KILL");
        p->stops[i] = p->stops[--p->n_stops];
    }
}

/* The engine's message from an error body ({"message":...} or {"cause":..,"message":..}). */
static void engine_message(const struct engine_reply *r, char *out, size_t n)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *m = NULL;

    if (r->status == 0) {
        snprintf(out, n, "container runtime is not reachable: %s", kedge_strerror(r->err));
        return;
    }
    if (kedge_json_parse(r->body, r->len, &doc) == 0)
        m = kedge_json_get(kedge_jdoc_root(doc), "message");
    if (m && m->type == KEDGE_JSTR)
        snprintf(out, n, "%s", m->str);
    else
        snprintf(out, n, "the container runtime answered %d", r->status);
    kedge_jdoc_free(doc);
}

/* ---- lookups for env and volumes --------------------------------------------------------------
 */

struct lookup_ctx {
    struct edged *ed;
    struct epod *p;
};

/* MetaManager's store; a miss while the link is up asks the cloud (kubelet would read the API
 * server), and the answer, stored by MetaManager, is found at the next sync. */
/* A message from edged straight onto the link (no reply awaited). 0 or a negative code
 * (-ENOTCONN offline). */
static int send_to_cloud(struct edged *ed, const char *op, const char *resource,
                         const char *content, bool as_string)
{
    struct kedge_msg m = {0};
    struct kedge_buf b = KEDGE_BUF_INIT;
    int rc;

    m.source = "edged";
    m.group = "meta";
    m.operation = (char *)op;
    m.resource = (char *)resource;
    rc = kedge_msg_new_id(&m);
    if (rc == 0)
        rc = as_string ? kedge_msg_set_content_string(&m, content, strlen(content))
                       : kedge_msg_set_content_json(&m, content, strlen(content));
    if (rc == 0)
        rc = kedge_msg_encode(&b, &m, false);
    if (rc == 0)
        rc = edgehub_send_direct(ed->br->hub, b.data, b.len);
    kedge_buf_cleanup(&b);
    kedge_free(m.msg_id);
    kedge_free(m.content);
    kedge_free(m.content_str);
    return rc;
}

static void ask_cloud(struct edged *ed, struct epod *p, const char *key)
{
    uint64_t now = kedge_now_ms();

    if (!edgehub_connected(ed->br->hub) || (p->queried_ms && now - p->queried_ms < QUERY_AGAIN_MS))
        return;
    p->queried_ms = now;
    (void)send_to_cloud(ed, "query", key, "null", false);
}

static int store_lookup(void *ctx, const char *type, const char *ns, const char *name, char **json)
{
    struct lookup_ctx *lc = ctx;
    char key[700];
    int rc;

    snprintf(key, sizeof(key), "%s/%s/%s", ns, type, name);
    rc = metamgr_get(lc->ed->br->meta, key, json);
    if (rc == -ENOENT)
        ask_cloud(lc->ed, lc->p, key);
    return rc;
}

/* ---- the sandbox -------------------------------------------------------------------------------
 */

static void fill_create(struct edged *ed, struct epod *p, struct podspec_create *cc,
                        const struct pod_container *c, int attempt, const struct seen *infra,
                        struct lookup_ctx *lc, char *vol_dir, size_t vol_len)
{
    memset(cc, 0, sizeof(*cc));
    snprintf(vol_dir, vol_len, "%s/%s/volumes", ed->br->cfg.pods_dir, p->uid);
    lc->ed = ed;
    lc->p = p;
    cc->pod = p->spec;
    cc->c = c;
    cc->node = ed->br->cfg.node_name;
    cc->infra_image = ed->br->cfg.pod_infra_image;
    cc->infra_id = infra ? infra->o.id : NULL;
    cc->pod_ip = infra && infra->ip ? infra->ip : (p->spec->host_network ? ed->host_ip : "");
    cc->host_ip = ed->host_ip;
    cc->volumes_dir = vol_dir;
    cc->attempt = attempt;
    cc->lookup = store_lookup;
    cc->lookup_ctx = lc;
    cc->nofile = (int)ed->br->cfg.engine_nofile;
    cc->nproc = (int)ed->br->cfg.engine_nproc;
}

/* POST /containers/create for the infra container (ci -1) or container ci. */
static int create(struct edged *ed, struct epod *p, int ci, int attempt, const struct seen *infra)
{
    struct kedge_buf body = KEDGE_BUF_INIT, name = KEDGE_BUF_INIT, path = KEDGE_BUF_INIT;
    struct podspec_create cc;
    struct lookup_ctx lc;
    char vol_dir[1024], why[512] = "";
    const struct pod_container *c = ci < 0 ? NULL : spec_container(p, (size_t)ci);
    int rc;

    fill_create(ed, p, &cc, c, attempt, infra, &lc, vol_dir, sizeof(vol_dir));
    rc = podspec_create_body(&cc, &body, why, sizeof(why));
    if (rc == KEDGE_ESCHEMA && ci >= 0) {
        hold(ed, &p->cs[ci], WAIT_CONFIG_ERROR, why);
        kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s container %s: %s",
                          p->key, c->name, why);
        goto out;
    }
    if (rc == 0)
        rc = podspec_container_name(&cc, &name);
    if (rc == 0 && (kedge_buf_puts(&path, "/containers/create?name=") < 0 ||
                    engine_urlencode(&path, name.data) < 0))
        rc = -ENOMEM;
    if (rc == 0)
        rc = call(ed, p, ci < 0 ? OP_INFRA_CREATE : OP_CREATE, ci, attempt, NULL, "POST", path.data,
                  body.data, body.len, 0);
    if (rc < 0)
        kedge_log(KEDGE_LOG_WARN, "edged: pod %s: cannot create a container: %s", p->key,
                  why[0] ? why : kedge_strerror(rc));
out:
    kedge_buf_cleanup(&body);
    kedge_buf_cleanup(&name);
    kedge_buf_cleanup(&path);
    return rc;
}

/* ---- images -------------------------------------------------------------------------------- */

static bool image_has_tag(const char *image)
{
    const char *slash = strrchr(image, '/');
    const char *last = slash ? slash + 1 : image;
    return strchr(last, ':') || strchr(image, '@');
}

/* Start container ci: check the image (pull if the policy says so), then create and start. */
static void start_container(struct edged *ed, struct epod *p, int ci, int attempt)
{
    const struct pod_container *c = spec_container(p, (size_t)ci);
    struct cstate *cs = &p->cs[ci];
    struct kedge_buf path = KEDGE_BUF_INIT;
    char msg[600];

    if (!c->image || !podspec_image_valid(c->image)) {
        snprintf(msg, sizeof(msg),
                 "Failed to apply default image tag \"%s\": couldn't parse image reference "
                 "\"%s\": invalid reference format",
                 c->image ? c->image : "", c->image ? c->image : "");
        hold(ed, cs, WAIT_INVALID_IMAGE, msg);
        return;
    }
    if (cs->pull_until_ms && kedge_now_ms() < cs->pull_until_ms) {
        snprintf(msg, sizeof(msg), "Back-off pulling image \"%s\"", c->image);
        set_waiting(cs, WAIT_PULL_BACKOFF, msg);
        return;
    }
    if (kedge_buf_puts(&path, "/images/") == 0 && engine_urlencode(&path, c->image) == 0 &&
        kedge_buf_puts(&path, "/json") == 0)
        (void)call(ed, p, OP_IMAGE_CHECK, ci, attempt, NULL, "GET", path.data, NULL, 0, 0);
    kedge_buf_cleanup(&path);
}

static void pull(struct edged *ed, struct epod *p, int ci, int attempt)
{
    const struct pod_container *c = spec_container(p, (size_t)ci);
    struct kedge_buf path = KEDGE_BUF_INIT;
    char image[512];

    /* a reference without a tag means :latest (the API would pull every tag) */
    snprintf(image, sizeof(image), "%s%s", c->image, image_has_tag(c->image) ? "" : ":latest");
    if (kedge_buf_puts(&path, "/images/create?fromImage=") == 0 &&
        engine_urlencode(&path, image) == 0)
        (void)call(ed, p, OP_PULL, ci, attempt, NULL, "POST", path.data, NULL, 0, 600000);
    kedge_buf_cleanup(&path);
}

/* /images/create answers 200 even when it failed: the error is in the JSON stream. */
static bool pull_error(const struct engine_reply *r, char *out, size_t n)
{
    const char *e = strstr(r->body, "\"error\"");

    if (r->status != 200) {
        engine_message(r, out, n);
        return true;
    }
    if (!e)
        return false;
    e = strchr(e + 7, '"');
    if (!e)
        snprintf(out, n, "pull failed");
    else
        snprintf(out, n, "%.*s", (int)strcspn(e + 1, "\""), e + 1);
    return true;
}

static void pull_failed(struct edged *ed, struct epod *p, int ci, const char *why)
{
    struct cstate *cs = &p->cs[ci];
    const struct pod_container *c = spec_container(p, (size_t)ci);
    char msg[800];
    int64_t init = ed->br->cfg.pod_backoff_initial_ms, max = ed->br->cfg.pod_backoff_max_ms;

    cs->pull_backoff_ms = cs->pull_backoff_ms ? cs->pull_backoff_ms * 2 : init;
    if (cs->pull_backoff_ms > max)
        cs->pull_backoff_ms = max;
    cs->pull_until_ms = kedge_now_ms() + (uint64_t)cs->pull_backoff_ms;
    snprintf(msg, sizeof(msg), "Failed to pull image \"%s\": %s", c->image, why);
    set_waiting(cs, WAIT_PULL_ERROR, msg);
    kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s: %s", p->key, msg);
}

/* ---- replies ------------------------------------------------------------------------------------
 */

static const char *created_id(const struct engine_reply *r, struct kedge_jdoc **doc)
{
    const struct kedge_jval *id;

    if (kedge_json_parse(r->body, r->len, doc) < 0)
        return NULL;
    id = kedge_json_get(kedge_jdoc_root(*doc), "Id");
    return id && id->type == KEDGE_JSTR ? id->str : NULL;
}

static void on_created(struct edged *ed, struct epod *p, struct op *o, const struct engine_reply *r)
{
    struct kedge_jdoc *doc = NULL;
    const char *id = r->status == 201 ? created_id(r, &doc) : NULL;
    char msg[600];

    if (id && p->terminating) {
        remove_container(ed, p, id); /* deleted meanwhile: never started */
    } else if (id) {
        (void)call_id(ed, p, o->kind == OP_INFRA_CREATE ? OP_INFRA_START : OP_START, o->ci, id,
                      "POST", "/start", 0);
    } else if (r->status == 409 || (r->status == 500 && strstr(r->body, "already in use"))) {
        /* (podman answers a taken name with 500) */
        /* a container of that name exists (a relist older than the engine): look again */
        kedge_log(KEDGE_LOG_INFO, "edged: pod %s: name conflict; relisting", p->key);
    } else {
        engine_message(r, msg, sizeof(msg));
        if (o->ci >= 0) {
            bool missing = r->status == 404;
            hold(ed, &p->cs[o->ci], missing ? WAIT_CREATING : WAIT_CREATE_ERROR, msg);
        } else {
            kedge_free(p->pod_message);
            p->pod_message = kedge_strdup(msg);
            p->infra_retry_at_ms = kedge_now_ms() + (uint64_t)ed->br->cfg.pod_backoff_initial_ms;
        }
        kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s: create failed: %s",
                          p->key, msg);
    }
    kedge_jdoc_free(doc);
}

static void on_started(struct edged *ed, struct epod *p, struct op *o, const struct engine_reply *r)
{
    char msg[600];

    if (r->status == 204 || r->status == 304) {
        if (o->ci >= 0)
            set_waiting(&p->cs[o->ci], WAIT_NONE, NULL);
        kedge_free(p->pod_message);
        p->pod_message = NULL;
        return;
    }
    engine_message(r, msg, sizeof(msg));
    kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s: start failed: %s", p->key,
                      msg);
    if (o->ci >= 0)
        hold(ed, &p->cs[o->ci], WAIT_RUN_ERROR, msg);
    if (o->id)
        remove_container(ed, p, o->id); /* never started: a fresh attempt after the back-off */
}

static void on_image_checked(struct edged *ed, struct epod *p, struct op *o,
                             const struct engine_reply *r)
{
    const struct pod_container *c = spec_container(p, (size_t)o->ci);
    bool present = r->status == 200;
    char msg[600];
    struct seen *infra, *prev;

    if (r->status == 0) {
        engine_message(r, msg, sizeof(msg));
        hold(ed, &p->cs[o->ci], WAIT_CREATING, msg);
        return;
    }
    if (!present && !strcmp(c->pull_policy, "Never")) {
        snprintf(msg, sizeof(msg),
                 "Container image \"%s\" is not present with pull policy of Never", c->image);
        hold(ed, &p->cs[o->ci], WAIT_NEVER_PULL, msg);
        return;
    }
    if (!present || !strcmp(c->pull_policy, "Always")) {
        pull(ed, p, o->ci, o->attempt);
        return;
    }
    find_seen(ed, p->uid, NULL, true, &infra, &prev);
    (void)create(ed, p, o->ci, o->attempt, infra);
}

static void on_pulled(struct edged *ed, struct epod *p, struct op *o, const struct engine_reply *r)
{
    char why[600];
    struct seen *infra, *prev;

    if (pull_error(r, why, sizeof(why))) {
        pull_failed(ed, p, o->ci, why);
        return;
    }
    p->cs[o->ci].pull_backoff_ms = 0;
    p->cs[o->ci].pull_until_ms = 0;
    find_seen(ed, p->uid, NULL, true, &infra, &prev);
    (void)create(ed, p, o->ci, o->attempt, infra);
}

static void op_done(void *ctx, const struct engine_reply *r)
{
    struct op *o = ctx;
    struct edged *ed = o->ed;
    struct epod *p = pod_by_uid(ed, o->uid);

    if (!p || ed->stopping || r->err == -ECANCELED) {
        if (p)
            p->busy--;
        op_free(o);
        return;
    }
    p->busy--;
    if (p->terminating && (o->kind == OP_IMAGE_CHECK || o->kind == OP_PULL)) {
        op_free(o); /* deleted meanwhile: nothing more is started */
        relist_soon(ed);
        return;
    }
    switch (o->kind) {
    case OP_IMAGE_CHECK:
        on_image_checked(ed, p, o, r);
        break;
    case OP_PULL:
        on_pulled(ed, p, o, r);
        break;
    case OP_CREATE:
    case OP_INFRA_CREATE:
        on_created(ed, p, o, r);
        break;
    case OP_START:
    case OP_INFRA_START:
    case OP_START_EXISTING:
        on_started(ed, p, o, r);
        break;
    case OP_STOP:
    case OP_REMOVE:
        if (r->status >= 300 && r->status != 304 && r->status != 404)
            kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s: %s %s answered %d",
                              p->key, o->kind == OP_STOP ? "stop" : "remove", o->id, r->status);
        break;
    }
    op_free(o);
    relist_soon(ed);
}

/* ---- syncing one pod ------------------------------------------------------------------------ */

static void reset_probes(struct cstate *cs, const char *cid)
{
    if (cs->probe_cid && cid && !strcmp(cs->probe_cid, cid))
        return;
    kedge_free(cs->probe_cid);
    cs->probe_cid = cid ? kedge_strdup(cid) : NULL;
    cs->ready = cs->started = cs->kill_requested = false;
    cs->live_fail = cs->ready_ok = cs->ready_fail = cs->start_ok = cs->start_fail = 0;
    memset(cs->probe_at_ms, 0, sizeof(cs->probe_at_ms));
}

static bool should_restart(const struct epod *p, const struct seen *s)
{
    switch (p->spec->restart) {
    case RESTART_ALWAYS:
        return true;
    case RESTART_ON_FAILURE:
        return s->o.exit_code != 0;
    case RESTART_NEVER:
    default:
        return false;
    }
}

/* A dead container: restart now, or wait out the back-off (CrashLoopBackOff). kubelet's
 * rule: the first restart is immediate; after that a container may start again only when
 * back-off has passed since it finished, the back-off doubling (initial .. max) with each
 * restart and forgotten once a container ran BACKOFF_RESET_MS. */
static void restart_dead(struct edged *ed, struct epod *p, int ci, const struct seen *cur)
{
    struct cstate *cs = &p->cs[ci];
    const struct pod_container *c = spec_container(p, (size_t)ci);
    int64_t wall = kedge_wall_ms(), finished = cur->o.finished_ms ? cur->o.finished_ms : wall;
    int64_t init = ed->br->cfg.pod_backoff_initial_ms, max = ed->br->cfg.pod_backoff_max_ms;
    char msg[600];

    if (cs->backoff_ms && cur->o.started_ms && finished - cur->o.started_ms > BACKOFF_RESET_MS)
        cs->backoff_ms = 0; /* it ran long enough: a fresh start */
    if (cs->backoff_ms && wall < finished + cs->backoff_ms) {
        snprintf(msg, sizeof(msg), "back-off %llds restarting failed container=%s pod=%s_%s(%s)",
                 (long long)(cs->backoff_ms / 1000), c->name, p->spec->name, p->spec->ns, p->uid);
        set_waiting(cs, WAIT_CRASH_BACKOFF, msg);
        cs->backoff_until_ms = kedge_now_ms() + (uint64_t)(finished + cs->backoff_ms - wall);
        return;
    }
    if (cs->waiting == WAIT_CRASH_BACKOFF)
        set_waiting(cs, WAIT_NONE, NULL);
    cs->backoff_ms = cs->backoff_ms ? (cs->backoff_ms * 2 > max ? max : cs->backoff_ms * 2) : init;
    cs->backoff_until_ms = 0;
    kedge_log(KEDGE_LOG_INFO, "edged: pod %s: container %s exited with %d; restart %d", p->key,
              c->name, cur->o.exit_code, cur->o.attempt + 1);
    start_container(ed, p, ci, cur->o.attempt + 1);
}

/* Remove attempts older than the previous one (kubelet keeps one dead container for logs). */
static void collect_garbage(struct edged *ed, struct epod *p, const char *name, bool infra,
                            const struct seen *cur, const struct seen *prev)
{
    size_t i;

    for (i = 0; i < ed->n_seen; i++) {
        struct seen *s = &ed->seen[i];
        if (!seen_of(s, p->uid) || s->infra != infra || (!infra && strcmp(s->o.name, name)))
            continue;
        if (s == cur || s == prev || s->o.running)
            continue;
        remove_container(ed, p, s->o.id);
    }
}

/* Container ci: one step. Returns true when it is done for now (running or finished). */
static bool sync_container(struct edged *ed, struct epod *p, int ci)
{
    const struct pod_container *c = spec_container(p, (size_t)ci);
    struct cstate *cs = &p->cs[ci];
    struct seen *cur, *prev;

    find_seen(ed, p->uid, c->name, false, &cur, &prev);
    collect_garbage(ed, p, c->name, false, cur, prev);
    if (!cur) {
        reset_probes(cs, NULL);
        if (cs->retry_at_ms && kedge_now_ms() < cs->retry_at_ms)
            return false; /* the last try failed: the tick brings the next one */
        cs->retry_at_ms = 0;
        start_container(ed, p, ci, 0);
        return false;
    }
    if (cur->o.running) {
        reset_probes(cs, cur->o.id);
        if (is_init(p, (size_t)ci))
            return false; /* the next one waits until this one has succeeded */
        if (cur->o.hash != c->hash) {
            kedge_log(KEDGE_LOG_INFO, "edged: pod %s: container %s changed; replacing", p->key,
                      c->name);
            cs->backoff_until_ms = 0;
            stop_container(ed, p, ci, cur->o.id);
        } else if (cs->kill_requested) {
            cs->kill_requested = false;
            stop_container(ed, p, ci, cur->o.id);
        }
        return true;
    }
    if (!exited(cur)) { /* created, never started: start it */
        (void)call_id(ed, p, OP_START_EXISTING, ci, cur->o.id, "POST", "/start", 0);
        return false;
    }
    if (is_init(p, (size_t)ci) && cur->o.exit_code == 0)
        return true;
    if (!should_restart(p, cur))
        return !is_init(p, (size_t)ci); /* a failed init container under Never: no apps */
    if (cur->o.hash != c->hash) {       /* changed while dead: a fresh one, no back-off */
        start_container(ed, p, ci, cur->o.attempt + 1);
        return false;
    }
    restart_dead(ed, p, ci, cur);
    return false;
}

/* Whether host_ip:port/protocol can be bound now. The engine reserves a published port by
 * holding it open, so a taken port is caught here before the infra container asks for it:
 * netavark's clean-up after a failed bind also deletes the forwarding rules of the container
 * that holds the port (found with podman 4.3 / netavark 1.4), breaking a running pod. */
static bool host_port_free(const struct pod_port *pp)
{
    struct sockaddr_in a;
    bool udp = pp->protocol && !strcmp(pp->protocol, "UDP");
    int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0), one = 1;
    bool ok;

    if (fd < 0)
        return true; /* cannot tell: let the engine decide */
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)pp->host_port);
    if (!pp->host_ip || !*pp->host_ip || inet_pton(AF_INET, pp->host_ip, &a.sin_addr) != 1)
        a.sin_addr.s_addr = htonl(INADDR_ANY);
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno != EADDRINUSE;
    close(fd);
    return ok;
}

/* Before a sandbox is made: every hostPort of the pod must be free. */
static bool host_ports_free(struct epod *p)
{
    char msg[300];
    size_t ci, i;

    if (p->spec->host_network)
        return true; /* the app binds them itself */
    for (ci = 0; ci < p->n_cs; ci++) {
        const struct pod_container *c = spec_container(p, ci);
        for (i = 0; i < c->n_ports; i++) {
            const struct pod_port *pp = &c->ports[i];
            if (pp->host_port <= 0 || host_port_free(pp))
                continue;
            snprintf(msg, sizeof(msg), "host port %d/%s on %s is already in use", pp->host_port,
                     pp->protocol ? pp->protocol : "TCP",
                     pp->host_ip && *pp->host_ip ? pp->host_ip : "0.0.0.0");
            for (size_t k = 0; k < p->n_cs; k++)
                set_waiting(&p->cs[k], WAIT_CREATING, msg);
            return false;
        }
    }
    return true;
}

/* Remove the pod's containers: the apps first, the infra container once they are gone (the
 * engine refuses to remove a network namespace another container still uses). */
static void remove_pod_containers(struct edged *ed, struct epod *p)
{
    bool apps = false;
    size_t i;

    for (i = 0; i < ed->n_seen; i++)
        if (seen_of(&ed->seen[i], p->uid) && !ed->seen[i].infra) {
            apps = true;
            remove_container(ed, p, ed->seen[i].o.id);
        }
    if (apps)
        return;
    for (i = 0; i < ed->n_seen; i++)
        if (seen_of(&ed->seen[i], p->uid))
            remove_container(ed, p, ed->seen[i].o.id);
}

static bool setup_volumes(struct edged *ed, struct epod *p)
{
    struct lookup_ctx lc = {ed, p};
    struct podvolumes_src src = {store_lookup, &lc, satoken_get, ed->tokens};
    char why[600] = "";
    size_t i;
    int rc;

    if (p->volumes_ready && !p->volumes_dirty)
        return true;
    rc = podvolumes_setup(ed->br->cfg.pods_dir, p->spec, &src, why, sizeof(why));
    if (rc < 0) {
        if (!why[0])
            snprintf(why, sizeof(why), "cannot set up the volumes: %s", kedge_strerror(rc));
        for (i = 0; i < p->n_cs; i++)
            if (p->cs[i].waiting == WAIT_NONE || p->cs[i].waiting == WAIT_CREATING)
                set_waiting(&p->cs[i], WAIT_CREATING, why);
        kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s: %s", p->key, why);
        return p->volumes_ready; /* a rewrite that failed keeps the old files */
    }
    p->volumes_ready = true;
    p->volumes_dirty = false;
    return true;
}

/* Whether a dead sandbox stays dead (kubelet's computePodActions): under Never once any app
 * container has run, under OnFailure once every app container succeeded. A finished Job
 * never runs twice. */
static bool sandbox_done(struct edged *ed, struct epod *p)
{
    size_t ci, exited0 = 0, seen = 0;

    if (p->spec->restart == RESTART_ALWAYS)
        return false;
    for (ci = p->spec->n_init_containers; ci < p->n_cs; ci++) {
        struct seen *cur, *prev;
        find_seen(ed, p->uid, spec_container(p, ci)->name, false, &cur, &prev);
        if (!cur)
            continue;
        seen++;
        exited0 += exited(cur) && cur->o.exit_code == 0;
    }
    if (p->spec->restart == RESTART_NEVER)
        return seen > 0;
    return exited0 == p->spec->n_containers;
}

static void sync_running(struct edged *ed, struct epod *p)
{
    struct seen *infra, *prev;
    size_t i;

    if (!setup_volumes(ed, p))
        return;
    find_seen(ed, p->uid, NULL, true, &infra, &prev);
    collect_garbage(ed, p, NULL, true, infra, NULL);
    if (!infra || !infra->o.running) {
        if (infra && exited(infra) && sandbox_done(ed, p))
            return; /* finished: what is left stays for its status */
        if (infra && exited(infra)) {
            /* the sandbox died: everything in it goes, then a new sandbox (kubelet) */
            kedge_log(KEDGE_LOG_NOTICE, "edged: pod %s: sandbox died; making a new one", p->key);
            p->sandbox_attempt = infra->o.attempt + 1;
            remove_pod_containers(ed, p);
            return;
        }
        if (infra) /* created but not started */
            (void)call_id(ed, p, OP_INFRA_START, -1, infra->o.id, "POST", "/start", 0);
        else if (p->infra_retry_at_ms && kedge_now_ms() < p->infra_retry_at_ms)
            ; /* the last try failed: the resync brings the next one */
        else if (host_ports_free(p))
            (void)create(ed, p, -1, p->sandbox_attempt, NULL);
        else
            kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s: %s", p->key,
                              p->cs[0].waiting_msg ? p->cs[0].waiting_msg : "host port taken");
        return;
    }
    for (i = 0; i < p->spec->n_init_containers; i++)
        if (!sync_container(ed, p, (int)i))
            return; /* init containers run one at a time, in order */
    for (; i < p->n_cs; i++)
        (void)sync_container(ed, p, (int)i);
}

/* Deleted: stop the apps (grace period), report, remove everything, forget. */
static bool sync_terminating(struct edged *ed, struct epod *p)
{
    bool any = false, running = false;
    size_t i;

    for (i = 0; i < ed->n_seen; i++) {
        struct seen *s = &ed->seen[i];
        if (!seen_of(s, p->uid))
            continue;
        any = true;
        if (s->o.running && !s->infra) {
            running = true;
            stop_container(ed, p, -1, s->o.id);
        }
    }
    if (running || p->busy)
        return false; /* removals wait for the stops, and for calls in flight */
    if (!p->final_sent && p->spec && p->finalise) {
        /* the terminal status, from the stopped containers; waits for a patch in flight. Only
         * for a pod the cloud still has: one it deleted (or replaced under the same name)
         * would answer NotFound (or a uid conflict), as kubelet's status manager knows */
        if (!report_status(ed, p))
            return false;
        p->final_sent = true;
    }
    if (any) {
        remove_pod_containers(ed, p);
        return false;
    }
    return true; /* nothing left */
}

static int send_pod_delete(struct edged *ed, struct epod *p);
static void forget_pod(struct edged *ed, struct epod *p);

static void sync_pod(struct edged *ed, struct epod *p)
{
    if (p->terminating) { /* stops go out even while other calls are in flight */
        if (sync_terminating(ed, p) && !p->busy) {
            int rc;
            /* the delete waits for the final status's answer (cloudcore applies the two on
             * separate goroutines: a delete first makes the patch NotFound) and for a link to
             * send it on (kubelet retries it until it is done) */
            if (p->finalise && (p->status_inflight || !edgehub_connected(ed->br->hub) ||
                                send_pod_delete(ed, p) < 0))
                return;
            rc = podvolumes_remove(ed->br->cfg.pods_dir, p->uid);
            if (rc < 0)
                kedge_log(KEDGE_LOG_WARN, "edged: pod %s: cannot remove its volumes: %s", p->key,
                          kedge_strerror(rc));
            satoken_forget(ed->tokens, p->uid);
            kedge_log(KEDGE_LOG_NOTICE, "edged: pod %s (%s) removed", p->key, p->uid);
            podgone_add(ed->gone, p->uid, kedge_now_ms());
            forget_pod(ed, p);
        }
        return;
    }
    if (p->busy || !p->spec || p->spec->n_containers == 0)
        return;
    sync_running(ed, p);
}

/* ---- probes --------------------------------------------------------------------------------- */

struct probe_ctx {
    struct edged *ed;
    char *uid, *cid;
    int ci;
    enum probe_slot slot;
};

static void probe_ctx_free(struct probe_ctx *pc)
{
    if (!pc)
        return;
    kedge_free(pc->uid);
    kedge_free(pc->cid);
    kedge_free(pc);
}

static const struct pod_probe *probe_of(const struct pod_container *c, enum probe_slot s)
{
    return s == P_LIVE ? &c->liveness : s == P_READY ? &c->readiness : &c->startup;
}

static void probe_done(void *ctx, enum probe_result res, const char *message)
{
    struct probe_ctx *pc = ctx;
    struct epod *p = pod_by_uid(pc->ed, pc->uid);
    struct cstate *cs;
    const struct pod_probe *pr;
    bool ok = res == PROBE_SUCCESS, was_ready;

    if (!p || !p->spec || (size_t)pc->ci >= p->n_cs || p->cs[pc->ci].probe_ctx[pc->slot] != pc)
        goto out;
    cs = &p->cs[pc->ci];
    cs->probe_handle[pc->slot] = 0;
    cs->probe_ctx[pc->slot] = NULL;
    if (!cs->probe_cid || strcmp(cs->probe_cid, pc->cid))
        goto out; /* a probe of a container that is gone */
    pr = probe_of(spec_container(p, (size_t)pc->ci), pc->slot);
    was_ready = cs->ready;
    switch (pc->slot) {
    case P_START:
        cs->start_ok = ok ? cs->start_ok + 1 : 0;
        cs->start_fail = ok ? 0 : cs->start_fail + 1;
        if (cs->start_ok >= 1)
            cs->started = true;
        else if (cs->start_fail >= pr->failure_threshold)
            cs->kill_requested = true;
        break;
    case P_LIVE:
        cs->live_fail = ok ? 0 : cs->live_fail + 1;
        if (cs->live_fail >= pr->failure_threshold) {
            kedge_log(KEDGE_LOG_NOTICE,
                      "edged: pod %s container %s failed liveness probe, "
                      "will be restarted: %s",
                      p->key, spec_container(p, (size_t)pc->ci)->name, message ? message : "");
            cs->kill_requested = true;
            cs->live_fail = 0;
        }
        break;
    case P_READY:
        cs->ready_ok = ok ? cs->ready_ok + 1 : 0;
        cs->ready_fail = ok ? 0 : cs->ready_fail + 1;
        if (cs->ready_ok >= pr->success_threshold)
            cs->ready = true;
        else if (cs->ready_fail >= pr->failure_threshold)
            cs->ready = false;
        break;
    }
    if (cs->kill_requested || was_ready != cs->ready || (pc->slot == P_START && cs->started))
        relist_soon(pc->ed);
out:
    probe_ctx_free(pc);
}

static void run_probe(struct edged *ed, struct epod *p, int ci, enum probe_slot slot,
                      const struct seen *cur, const struct seen *infra)
{
    struct cstate *cs = &p->cs[ci];
    const struct pod_probe *pr = probe_of(spec_container(p, (size_t)ci), slot);
    struct probe_ctx *pc;
    const char *ip = p->spec->host_network ? "127.0.0.1" : (infra && infra->ip ? infra->ip : "");
    long h;

    pc = kedge_calloc(1, sizeof(*pc));
    if (!pc || !(pc->uid = kedge_strdup(p->uid)) || !(pc->cid = kedge_strdup(cur->o.id))) {
        if (pc)
            kedge_free(pc->uid);
        kedge_free(pc);
        return;
    }
    pc->ed = ed;
    pc->ci = ci;
    pc->slot = slot;
    h = prober_run(ed->prober, pr, cur->o.id, ip, probe_done, pc);
    if (h <= 0) {
        probe_ctx_free(pc);
        return;
    }
    cs->probe_handle[slot] = h;
    cs->probe_ctx[slot] = pc; /* freed by probe_done, or by cstate_cleanup on cancel */
}

/* Due probes of the running containers of p (the tick calls it every second). */
static void probe_pod(struct edged *ed, struct epod *p, uint64_t now)
{
    struct seen *infra, *iprev;
    size_t ci;

    if (!p->spec || p->terminating || !ed->prober)
        return;
    find_seen(ed, p->uid, NULL, true, &infra, &iprev);
    for (ci = p->spec->n_init_containers; ci < p->n_cs; ci++) {
        const struct pod_container *c = spec_container(p, ci);
        struct cstate *cs = &p->cs[ci];
        struct seen *cur, *prev;
        int slot;

        find_seen(ed, p->uid, c->name, false, &cur, &prev);
        if (!cur || !cur->o.running || !cs->probe_cid || strcmp(cs->probe_cid, cur->o.id))
            continue;
        if (c->startup.kind == PROBE_NONE)
            cs->started = true;
        if (c->readiness.kind == PROBE_NONE && cs->started && !cs->ready) {
            cs->ready = true;
            relist_soon(ed);
        }
        for (slot = 0; slot < 3; slot++) {
            const struct pod_probe *pr = probe_of(c, (enum probe_slot)slot);
            if (pr->kind == PROBE_NONE || cs->probe_handle[slot])
                continue;
            if ((slot != P_START && !cs->started) || (slot == P_START && cs->started))
                continue;
            if (!cs->probe_at_ms[slot]) {
                cs->probe_at_ms[slot] = now + (uint64_t)pr->initial_delay_s * 1000;
                continue;
            }
            if (now < cs->probe_at_ms[slot])
                continue;
            cs->probe_at_ms[slot] = now + (uint64_t)(pr->period_s > 0 ? pr->period_s : 10) * 1000;
            run_probe(ed, p, (int)ci, (enum probe_slot)slot, cur, infra);
        }
    }
}

/* ---- status -----------------------------------------------------------------------------------
 */

static void fill_view(struct edged *ed, struct epod *p, struct pod_view *v,
                      struct container_view *views)
{
    struct seen *infra, *iprev;
    size_t ci;

    memset(v, 0, sizeof(*v));
    v->spec = p->spec;
    find_seen(ed, p->uid, NULL, true, &infra, &iprev);
    v->sandbox_ready = infra && infra->o.running;
    v->pod_ip = p->spec->host_network ? ed->host_ip : (v->sandbox_ready ? infra->ip : NULL);
    v->host_ip = ed->host_ip;
    v->start_ms = p->start_ms;
    v->terminating = p->terminating;
    v->pod_reason = p->pod_reason;
    v->pod_message = p->pod_message;
    for (ci = 0; ci < p->n_cs; ci++) {
        const struct pod_container *c = spec_container(p, ci);
        struct container_view *cv = &views[ci];
        struct seen *cur, *prev;

        find_seen(ed, p->uid, c->name, false, &cur, &prev);
        memset(cv, 0, sizeof(*cv));
        cv->spec = c;
        cv->current = cur ? &cur->o : NULL;
        cv->previous = prev ? &prev->o : NULL;
        cv->waiting = p->cs[ci].waiting;
        cv->waiting_message = p->cs[ci].waiting_msg;
        if (cur && cur->o.running)
            cv->waiting = WAIT_NONE;
        else if (!is_init(p, ci) && !cur && p->spec->n_init_containers && cv->waiting == WAIT_NONE)
            cv->waiting = WAIT_POD_INIT; /* apps wait for the init containers */
        cv->ready = p->cs[ci].ready;
        cv->started = p->cs[ci].started;
        cv->restart_count = cur ? cur->o.attempt : 0;
    }
    v->init = views;
    v->n_init = p->spec->n_init_containers;
    v->apps = views + v->n_init;
    v->n_apps = p->spec->n_containers;
    memcpy(v->cond_since_s, p->cond_since_s, sizeof(v->cond_since_s));
}

struct status_ctx {
    struct edged *ed;
    char uid[]; /* the pod may be gone when the answer comes */
};

static void status_sent(void *ctx, const struct kedge_msg *m, int err)
{
    struct status_ctx *sc = ctx;
    struct edged *ed = sc->ed;
    const char *reason = NULL;
    char *obj = NULL;
    struct epod *p = pod_by_uid(ed, sc->uid);

    if (!err)
        obj = metamgr_object_of(m, &reason);
    if (p) {
        p->status_inflight = false;
        if (obj || !err) {
            /* applied, or refused by the cloud (a pod it no longer has, say): either way this
             * status is not sent again; the next change is */
            if (!obj)
                kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_INFO,
                                  "edged: pod %s: status patch refused (%s)", p->key,
                                  reason ? reason : "no object");
            kedge_free(p->status_sent);
            p->status_sent = p->status_pending;
            p->status_pending = NULL;
        } else {
            kedge_free(p->status_pending); /* no answer: sent again at the next tick */
            p->status_pending = NULL;
        }
    }
    kedge_free(obj);
    kedge_free(sc);
}

/* podpatch {ns}/podpatch/{name}: the status as a strategic-merge patch, a string (§5.1). */
static int send_status(struct edged *ed, struct epod *p, const char *status, size_t len)
{
    struct kedge_buf patch = KEDGE_BUF_INIT;
    struct kedge_msg m = {0};
    char resource[600];
    size_t ul = strlen(p->uid);
    struct status_ctx *sc = kedge_malloc(sizeof(*sc) + ul + 1);
    int rc = podstatus_patch(p->uid, status, len, &patch);

    snprintf(resource, sizeof(resource), "%s/podpatch/%s", p->spec->ns, p->spec->name);
    if (rc < 0 || !sc) {
        kedge_free(sc);
        kedge_buf_cleanup(&patch);
        return -ENOMEM;
    }
    sc->ed = ed;
    memcpy(sc->uid, p->uid, ul + 1);
    m.source = "edged";
    m.group = "meta";
    m.operation = "patch";
    m.resource = resource;
    rc = kedge_msg_new_id(&m);
    if (rc == 0)
        rc = kedge_msg_set_content_string(&m, patch.data, patch.len);
    if (rc == 0)
        rc = metamgr_remote(ed->br->meta, &m, (int)(ed->br->cfg.remote_query_timeout_s * 1000),
                            status_sent, sc);
    if (rc == 0)
        (void)metamgr_put(ed->br->meta, resource, patch.data, patch.len); /* as edgecore does */
    else
        kedge_free(sc);
    kedge_free(m.msg_id);
    kedge_free(m.content);
    kedge_free(m.content_str);
    kedge_buf_cleanup(&patch);
    return rc;
}

/* Compute p's status and send it if it changed. Returns false when it could not be sent now
 * (a patch in flight, out of memory), true when sent, unchanged, or offline. */
static bool report_status(struct edged *ed, struct epod *p)
{
    struct container_view *views;
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct pod_view v;
    bool cond[N_COND];
    int64_t now_s = (int64_t)time(NULL);
    bool done = true;
    int i;

    if (!p->spec || (p->terminating && !p->finalise))
        return true; /* a pod the cloud deleted (or replaced): it has no status to take */
    if (p->status_inflight)
        return false;
    views = kedge_calloc(p->n_cs ? p->n_cs : 1, sizeof(*views));
    if (!views)
        return false;
    fill_view(ed, p, &v, views);
    podstatus_conditions(&v, cond);
    for (i = 0; i < N_COND; i++)
        if (!p->cond_known || cond[i] != p->cond_last[i]) {
            p->cond_since_s[i] = now_s;
            p->cond_last[i] = cond[i];
        }
    p->cond_known = true;
    memcpy(v.cond_since_s, p->cond_since_s, sizeof(v.cond_since_s));
    if (podstatus_write(&v, &b) < 0) {
        done = false;
    } else if (!p->status_sent || strcmp(p->status_sent, b.data)) {
        if (!edgehub_connected(ed->br->hub)) {
            /* offline: nothing to wait for; the newest status goes when the link returns */
        } else if (send_status(ed, p, b.data, b.len) == 0) {
            p->status_inflight = true;
            p->status_pending = kedge_buf_take(&b, NULL);
            kedge_log(KEDGE_LOG_DEBUG, "edged: pod %s status %s sent", p->key, podstatus_phase(&v));
        } else {
            done = false;
        }
    }
    kedge_buf_cleanup(&b);
    kedge_free(views);
    return done;
}

/* ---- relisting --------------------------------------------------------------------------------
 */

static const char *label(const struct kedge_jval *labels, const char *k)
{
    const struct kedge_jval *v = kedge_json_get_exact(labels, k, strlen(k));
    return v && v->type == KEDGE_JSTR ? v->str : NULL;
}

static char *dup_str(const struct kedge_jval *v)
{
    return v && v->type == KEDGE_JSTR ? kedge_strdup(v->str) : kedge_strdup("");
}

static int parse_inspect(const char *json, size_t len, struct seen *s)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *cfg, *st, *labels, *ns, *nets, *n;
    const char *v;
    int64_t code = 0;
    int rc = 0;

    if (kedge_json_parse(json, len, &doc) < 0)
        return KEDGE_EPARSE;
    root = kedge_jdoc_root(doc);
    cfg = kedge_json_get(root, "Config");
    st = kedge_json_get(root, "State");
    labels = kedge_json_get(cfg, "Labels");
    s->o.image = dup_str(kedge_json_get(cfg, "Image"));
    s->o.image_id = dup_str(kedge_json_get(root, "Image"));
    s->o.state = dup_str(kedge_json_get(st, "Status"));
    s->o.error = dup_str(kedge_json_get(st, "Error"));
    n = kedge_json_get(st, "Running");
    s->o.running = n && n->type == KEDGE_JBOOL && n->boolean;
    n = kedge_json_get(st, "OOMKilled");
    s->o.oom_killed = n && n->type == KEDGE_JBOOL && n->boolean;
    (void)kedge_json_int64(kedge_json_get(st, "ExitCode"), &code);
    s->o.exit_code = (int)code;
    n = kedge_json_get(st, "StartedAt");
    s->o.started_ms = n && n->type == KEDGE_JSTR ? podstatus_parse_time_ms(n->str) : 0;
    n = kedge_json_get(st, "FinishedAt");
    s->o.finished_ms = n && n->type == KEDGE_JSTR ? podstatus_parse_time_ms(n->str) : 0;
    if (s->o.running)
        s->o.finished_ms = 0;
    n = kedge_json_get(root, "Created");
    s->o.created_ms = n && n->type == KEDGE_JSTR ? podstatus_parse_time_ms(n->str) : 0;
    v = label(labels, LABEL_RESTART_COUNT);
    s->o.attempt = v ? atoi(v) : 0;
    v = label(labels, LABEL_CONTAINER_HASH);
    s->o.hash = v ? (uint32_t)strtoul(v, NULL, 10) : 0;
    ns = kedge_json_get(root, "NetworkSettings");
    n = kedge_json_get(ns, "IPAddress");
    if (n && n->type == KEDGE_JSTR && n->len) {
        s->ip = kedge_strdup(n->str);
    } else if ((nets = kedge_json_get(ns, "Networks")) && nets->type == KEDGE_JOBJ) {
        for (n = nets->child; n && !s->ip; n = n->next) {
            const struct kedge_jval *ip = kedge_json_get(n, "IPAddress");
            if (ip && ip->type == KEDGE_JSTR && ip->len)
                s->ip = kedge_strdup(ip->str);
        }
    }
    if (!s->o.image || !s->o.image_id || !s->o.state || !s->o.error)
        rc = -ENOMEM;
    kedge_jdoc_free(doc);
    return rc;
}

static void relist_finished(struct edged *ed);

struct inspect_ctx {
    struct edged *ed;
    size_t i; /* index into ed->next_seen (never reallocated while inspects run) */
};

static void inspected(void *ctx, const struct engine_reply *r)
{
    struct inspect_ctx *ic = ctx;
    struct edged *ed = ic->ed;
    struct seen *s = &ed->next_seen[ic->i];

    kedge_free(ic);
    if (r->status == 404) {
        kedge_free(s->o.id); /* removed meanwhile: not seen */
        s->o.id = NULL;
    } else if (r->status != 200 || parse_inspect(r->body, r->len, s) < 0) {
        /* unknown, not absent: acting on this list could start a container twice */
        ed->relist_broken = true;
    }
    if (--ed->inspects_pending == 0 && !ed->stopping)
        relist_finished(ed);
}

static void start_inspect(struct edged *ed, size_t i)
{
    struct inspect_ctx *ic = kedge_malloc(sizeof(*ic));
    struct seen *s = &ed->next_seen[i];
    char path[256];

    snprintf(path, sizeof(path), "/containers/%s/json", s->o.id);
    if (ic) {
        ic->ed = ed;
        ic->i = i;
        ed->inspects_pending++;
        if (engine_request(ed->engine, "GET", path, NULL, 0, 0, inspected, ic) == 0)
            return;
        ed->inspects_pending--;
        kedge_free(ic);
    }
    kedge_free(s->o.id);
    s->o.id = NULL;
}

/* A previous sighting of the same container in the same list state: reused, not inspected. */
static char *dup_or_null(const char *v)
{
    return v ? kedge_strdup(v) : NULL;
}

/* A previous sighting of the same container in the same list state: copied, not inspected
 * (the old list stays whole until this one is complete and sound). */
static bool reuse(struct edged *ed, struct seen *s)
{
    size_t i;

    for (i = 0; i < ed->n_seen; i++) {
        const struct seen *o = &ed->seen[i];
        struct observed_container *c = &s->o;
        if (!o->o.id || strcmp(o->o.id, s->o.id) || !o->list_state ||
            strcmp(o->list_state, s->list_state))
            continue;
        kedge_free(c->id); /* listed()'s copy; replaced by a copy of the same */
        *c = o->o;
        c->id = dup_or_null(o->o.id);
        c->name = NULL; /* listed() puts its own back */
        c->image = dup_or_null(o->o.image);
        c->image_id = dup_or_null(o->o.image_id);
        c->state = dup_or_null(o->o.state);
        c->error = dup_or_null(o->o.error);
        kedge_free(s->ip);
        s->ip = dup_or_null(o->ip);
        if (!c->id || !c->image || !c->image_id || !c->state || !c->error || (o->ip && !s->ip))
            ed->relist_broken = true; /* out of memory: not a list to act on */
        return true;
    }
    return false;
}

/* The engine did not answer the relist: pods that never ran say why (kubelet's pods wait in
 * ContainerCreating while the runtime is down); running ones keep their last status. */
static void engine_unreachable(struct edged *ed, const struct engine_reply *r)
{
    uint64_t resync = (uint64_t)ed->br->cfg.pod_resync_s * 1000;
    struct epod *p;
    char msg[300];
    size_t i;

    /* try again soon, not only at the next resync: a busy engine drops a call now and then */
    ed->retry_ms = ed->retry_ms ? ed->retry_ms * 2 : 1000;
    if (ed->retry_ms > resync)
        ed->retry_ms = resync;
    ed->next_resync_ms = kedge_now_ms() + ed->retry_ms;

    engine_message(r, msg, sizeof(msg));
    kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: cannot list containers (%s): %s",
                      ed->br->cfg.engine_socket, msg);
    for (p = ed->pods; p; p = p->next) {
        struct seen *cur, *prev;
        if (!p->spec || p->terminating)
            continue;
        for (i = 0; i < p->n_cs; i++) {
            find_seen(ed, p->uid, spec_container(p, i)->name, false, &cur, &prev);
            if (!cur && (p->cs[i].waiting == WAIT_NONE || p->cs[i].waiting == WAIT_CREATING))
                set_waiting(&p->cs[i], WAIT_CREATING, msg);
        }
        report_status(ed, p);
    }
}

static void listed(void *ctx, const struct engine_reply *r)
{
    struct edged *ed = ctx;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *c;
    size_t n = 0;

    if (ed->stopping || r->err == -ECANCELED) {
        ed->relisting = false;
        return;
    }
    if (r->status != 200 || kedge_json_parse(r->body, r->len, &doc) < 0 ||
        kedge_jdoc_root(doc)->type != KEDGE_JARR) {
        kedge_jdoc_free(doc);
        ed->relisting = false;
        engine_unreachable(ed, r);
        return;
    }
    root = kedge_jdoc_root(doc);
    ed->next_seen = kedge_calloc(root->n ? root->n : 1, sizeof(*ed->next_seen));
    if (!ed->next_seen) {
        kedge_jdoc_free(doc);
        ed->relisting = false;
        return;
    }
    for (c = root->child; c; c = c->next) {
        const struct kedge_jval *labels = kedge_json_get(c, "Labels");
        const char *uid = label(labels, LABEL_POD_UID),
                   *cname = label(labels, LABEL_CONTAINER_NAME);
        struct seen *s = &ed->next_seen[n];
        if (!uid || !cname)
            continue;
        s->o.id = dup_str(kedge_json_get(c, "Id"));
        s->o.name = kedge_strdup(cname);
        s->uid = kedge_strdup(uid);
        s->list_state = dup_str(kedge_json_get(c, "State"));
        s->infra = !strcmp(cname, INFRA_CONTAINER_NAME);
        if (!s->o.id || !s->o.name || !s->uid || !s->list_state || !*s->o.id) {
            seen_cleanup(s);
            continue;
        }
        n++;
    }
    ed->n_next = n;
    kedge_jdoc_free(doc);
    ed->inspects_pending = 1; /* held until every inspect is queued */
    for (size_t i = 0; i < n; i++) {
        struct seen *s = &ed->next_seen[i];
        char *name = s->o.name;
        s->o.name = NULL;
        if (!reuse(ed, s))
            start_inspect(ed, i);
        kedge_free(s->o.name);
        s->o.name = name;
    }
    if (--ed->inspects_pending == 0)
        relist_finished(ed);
}

/* Containers of pods edged does not have: orphans of a pod deleted while the bridge was down. */
static void remove_orphans(struct edged *ed)
{
    size_t i;

    for (i = 0; i < ed->n_seen; i++) {
        struct seen *s = &ed->seen[i];
        char path[256];
        if (!s->o.id || pod_by_uid(ed, s->uid))
            continue;
        kedge_log(KEDGE_LOG_NOTICE, "edged: removing container %.12s of unknown pod %s", s->o.id,
                  s->uid);
        snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", s->o.id);
        (void)engine_request(ed->engine, "DELETE", path, NULL, 0, 0, NULL, NULL);
    }
}

static void relist_finished(struct edged *ed)
{
    struct epod *p, *next;
    size_t i, n = 0;

    if (ed->relist_broken) {
        struct engine_reply r = {0, -EIO, "", 0};
        for (i = 0; i < ed->n_next; i++)
            seen_cleanup(&ed->next_seen[i]);
        kedge_free(ed->next_seen);
        ed->next_seen = NULL;
        ed->n_next = 0;
        ed->relist_broken = false;
        ed->relisting = false;
        engine_unreachable(ed, &r);
        return;
    }

    for (i = 0; i < ed->n_seen; i++)
        seen_cleanup(&ed->seen[i]);
    kedge_free(ed->seen);
    /* compact: entries whose inspect failed are dropped */
    for (i = 0; i < ed->n_next; i++)
        if (ed->next_seen[i].o.id)
            ed->next_seen[n++] = ed->next_seen[i];
        else
            seen_cleanup(&ed->next_seen[i]);
    ed->seen = ed->next_seen;
    ed->n_seen = n;
    ed->next_seen = NULL;
    ed->n_next = 0;
    ed->relisting = false;
    ed->listed_once = true;
    ed->retry_ms = 0;
    remove_orphans(ed);
    for (p = ed->pods; p; p = next) {
        next = p->next; /* sync_pod may forget p */
        report_status(ed, p);
        sync_pod(ed, p);
    }
    if (ed->relist_again) {
        ed->relist_again = false;
        relist_soon(ed);
    }
}

static void relist(lws_sorted_usec_list_t *sul)
{
    struct edged *ed = lws_container_of(sul, struct edged, sul_relist);
    struct kedge_buf path = KEDGE_BUF_INIT, f = KEDGE_BUF_INIT;

    if (ed->stopping)
        return;
    if (ed->relisting) {
        ed->relist_again = true;
        return;
    }
    ed->next_resync_ms = kedge_now_ms() + (uint64_t)ed->br->cfg.pod_resync_s * 1000;
    ed->relisting = true; /* first: a refused connection completes inside engine_request */
    if (kedge_buf_printf(&f, "{\"label\":[\"%s=%s\"]}", LABEL_NODE, ed->br->cfg.node_name) < 0 ||
        kedge_buf_puts(&path, "/containers/json?all=1&filters=") < 0 ||
        engine_urlencode(&path, f.data) < 0 ||
        engine_request(ed->engine, "GET", path.data, NULL, 0, 0, listed, ed) < 0) {
        kedge_log(KEDGE_LOG_WARN, "edged: cannot relist: out of memory");
        ed->relisting = false;
    }
    kedge_buf_cleanup(&path);
    kedge_buf_cleanup(&f);
}

static void relist_soon(struct edged *ed)
{
    if (ed->stopping)
        return;
    if (ed->relisting) {
        ed->relist_again = true;
        return;
    }
    lws_sul_schedule(ed->br->lws, 0, &ed->sul_relist, relist,
                     (lws_usec_t)RELIST_DEBOUNCE_MS * 1000);
}

/* ---- pods in and out ----------------------------------------------------------------------- */

static void pod_free(struct epod *p)
{
    size_t i;

    if (!p)
        return;
    for (i = 0; i < p->n_cs; i++) { /* probes are cancelled by forget_pod first */
        kedge_free(p->cs[i].waiting_msg);
        kedge_free(p->cs[i].probe_cid);
        for (int k = 0; k < 3; k++)
            probe_ctx_free(p->cs[i].probe_ctx[k]);
    }
    kedge_free(p->cs);
    podspec_free(p->spec);
    kedge_free(p->key);
    kedge_free(p->uid);
    kedge_free(p->pod_reason);
    kedge_free(p->pod_message);
    kedge_free(p->status_sent);
    kedge_free(p->status_pending);
    kedge_free(p);
}

static void forget_pod(struct edged *ed, struct epod *p)
{
    struct epod **pp;
    size_t i;

    for (i = 0; i < p->n_cs; i++)
        cstate_cleanup(ed, &p->cs[i]);
    for (pp = &ed->pods; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    pod_free(p);
}

static void pod_apply(struct edged *ed, const char *key, const char *json, size_t len,
                      bool deleted);

/* A pod's delete in flight (the pod is forgotten already), then, if the cloud did not confirm
 * it, the pod to take again from the store. */
struct deletion {
    struct deletion *next; /* in ed->retakes */
    struct edged *ed;
    char *key;
    uint64_t retake_ms; /* monotonic */
    char uid[];
};

static void deletion_free(struct deletion *d)
{
    kedge_free(d->key);
    kedge_free(d);
}

/* The cloud's answer to the delete: "OK" (cloudcore's deletePod answers so also when the pod
 * is gone already), or an error, or none. Without an OK the pod may still be there, waiting
 * for this node: the UID is no longer taken as finished and the pod, if the store still has
 * it, is taken again (it is terminating, so it ends in another delete) by the tick: at once
 * after a timeout (a lost link), after RETAKE_AFTER_ERROR_MS after an error, as kubelet's
 * status manager retries at its next sync rather than at once. */
static void delete_answered(void *ctx, const struct kedge_msg *m, int err)
{
    struct deletion *d = ctx;
    struct edged *ed = d->ed;

    if ((!err && m && m->content_is_string && m->content_str_len == 2 &&
         !memcmp(m->content_str, "OK", 2)) ||
        err == -ECANCELED || ed->stopping) {
        deletion_free(d);
        return;
    }
    kedge_log(KEDGE_LOG_WARN, "edged: pod %s (%s): the cloud did not confirm its deletion (%s)",
              d->key, d->uid, err ? kedge_strerror(err) : "an error");
    podgone_forget(ed->gone, d->uid);
    d->retake_ms = kedge_now_ms() + (err ? 0 : RETAKE_AFTER_ERROR_MS);
    d->next = ed->retakes;
    ed->retakes = d;
}

/* The tick: take the due ones of the pods whose deletion was not confirmed again. */
static void retake_due(struct edged *ed, uint64_t now)
{
    struct deletion **pp = &ed->retakes, *d;
    char *json;

    while ((d = *pp)) {
        if (now < d->retake_ms) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        json = NULL;
        if (!pod_by_uid(ed, d->uid) && metamgr_get(ed->br->meta, d->key, &json) == 0 &&
            strstr(json, d->uid))
            pod_apply(ed, d->key, json, strlen(json), false);
        kedge_free(json);
        deletion_free(d);
    }
}

/* The cloud finalises a pod the kubelet has stopped with a delete from the kubelet: grace
 * period 0, the UID as the precondition (kubelet's status_manager.go). 0, or -ENOTCONN,
 * -ENOMEM: not sent. */
static int send_pod_delete(struct edged *ed, struct epod *p)
{
    char resource[600], opts[200];
    size_t ul = strlen(p->uid);
    struct deletion *dc = kedge_calloc(1, sizeof(*dc) + ul + 1);
    struct kedge_msg m = {0};
    int rc = dc ? 0 : -ENOMEM;

    snprintf(resource, sizeof(resource), "%s/pod/%s", p->spec->ns, p->spec->name);
    snprintf(opts, sizeof(opts), "{\"gracePeriodSeconds\":0,\"preconditions\":{\"uid\":\"%s\"}}",
             p->uid);
    if (dc) {
        dc->ed = ed;
        memcpy(dc->uid, p->uid, ul + 1);
        if (!(dc->key = kedge_strdup(p->key)))
            rc = -ENOMEM;
    }
    m.source = "edged";
    m.group = "meta";
    m.operation = "delete";
    m.resource = resource;
    if (rc == 0)
        rc = kedge_msg_new_id(&m);
    if (rc == 0)
        rc = kedge_msg_set_content_json(&m, opts, strlen(opts));
    if (rc == 0)
        rc = metamgr_remote(ed->br->meta, &m, (int)(ed->br->cfg.remote_query_timeout_s * 1000),
                            delete_answered, dc);
    if (rc < 0 && dc)
        deletion_free(dc);
    kedge_free(m.msg_id);
    kedge_free(m.content);
    kedge_free(m.content_str);
    return rc;
}

static struct epod *pod_new(const char *key, struct pod_spec *spec)
{
    struct epod *p = kedge_calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->key = kedge_strdup(key);
    p->uid = kedge_strdup(spec->uid ? spec->uid : "");
    p->n_cs = spec->n_init_containers + spec->n_containers;
    p->cs = kedge_calloc(p->n_cs ? p->n_cs : 1, sizeof(*p->cs));
    if (!p->key || !p->uid || !p->cs) {
        podspec_free(spec);
        p->spec = NULL;
        pod_free(p);
        return NULL;
    }
    p->spec = spec;
    p->start_ms = kedge_wall_ms();
    return p;
}

static void cstate_cleanup(struct edged *ed, struct cstate *c)
{
    for (int k = 0; k < 3; k++)
        if (c->probe_handle[k] && ed->prober) {
            prober_cancel(ed->prober, c->probe_handle[k]);
            c->probe_handle[k] = 0;
        }
    for (int k = 0; k < 3; k++) {
        probe_ctx_free(c->probe_ctx[k]);
        c->probe_ctx[k] = NULL;
    }
    kedge_free(c->waiting_msg);
    kedge_free(c->probe_cid);
    memset(c, 0, sizeof(*c));
}

/* A pod taken again after a restart keeps the startTime and condition transition times it
 * reported (kubelet never moves them back): read from the podpatch row of the same UID. */
static void seed_from_last_patch(struct edged *ed, struct epod *p)
{
    static const char *const names[N_COND] = {"Initialized", "Ready", "ContainersReady",
                                              "PodScheduled"};
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *uid, *st, *c;
    char key[600], *json = NULL;

    snprintf(key, sizeof(key), "%s/podpatch/%s", p->spec->ns, p->spec->name);
    if (metamgr_get(ed->br->meta, key, &json) < 0 || kedge_json_parse(json, strlen(json), &doc) < 0)
        goto out;
    root = kedge_jdoc_root(doc);
    uid = kedge_json_get(kedge_json_get(root, "metadata"), "uid");
    if (!uid || uid->type != KEDGE_JSTR || strcmp(uid->str, p->uid))
        goto out; /* an earlier pod of that name */
    st = kedge_json_get(root, "status");
    c = kedge_json_get(st, "startTime");
    if (c && c->type == KEDGE_JSTR && podstatus_parse_time_ms(c->str))
        p->start_ms = podstatus_parse_time_ms(c->str);
    c = kedge_json_get(st, "conditions");
    for (c = c && c->type == KEDGE_JARR ? c->child : NULL; c; c = c->next) {
        const struct kedge_jval *t = kedge_json_get(c, "type"), *v = kedge_json_get(c, "status");
        const struct kedge_jval *at = kedge_json_get(c, "lastTransitionTime");
        for (int i = 0; i < N_COND; i++)
            if (t && t->type == KEDGE_JSTR && !strcmp(t->str, names[i]) && v &&
                v->type == KEDGE_JSTR && at && at->type == KEDGE_JSTR) {
                p->cond_last[i] = !strcmp(v->str, "True");
                p->cond_since_s[i] = podstatus_parse_time_ms(at->str) / 1000;
            }
    }
    p->cond_known = true;
out:
    kedge_jdoc_free(doc);
    kedge_free(json);
}

/* Swap in a new spec of the same pod (an update): a container whose spec did not change keeps
 * its state (readiness, back-off, probes); a changed one starts over. */
static int pod_update(struct edged *ed, struct epod *p, struct pod_spec *spec)
{
    size_t n = spec->n_init_containers + spec->n_containers, i, k;
    struct cstate *cs = kedge_calloc(n ? n : 1, sizeof(*cs));
    struct epod np;

    if (!cs) {
        podspec_free(spec);
        return -ENOMEM;
    }
    np.spec = spec;
    for (i = 0; i < n; i++) {
        const struct pod_container *c = spec_container(&np, i);
        for (k = 0; k < p->n_cs; k++) {
            const struct pod_container *o = spec_container(p, k);
            if (o->name && c->name && !strcmp(o->name, c->name) && o->hash == c->hash &&
                is_init(&np, i) == is_init(p, k)) {
                cs[i] = p->cs[k];
                memset(&p->cs[k], 0, sizeof(p->cs[k])); /* moved */
                break;
            }
        }
    }
    for (k = 0; k < p->n_cs; k++)
        cstate_cleanup(ed, &p->cs[k]);
    kedge_free(p->cs);
    podspec_free(p->spec);
    p->cs = cs;
    p->n_cs = n;
    p->spec = spec;
    p->volumes_dirty = true;
    return 0;
}

static bool for_this_node(struct edged *ed, const struct pod_spec *spec)
{
    return spec->node_name && !strcmp(spec->node_name, ed->br->cfg.node_name);
}

/* A pod of this node that cannot run as written (an invalid container name, say): Failed,
 * with the reason, so the user sees why instead of a pod that stays Pending (kubelet rejects
 * a pod it cannot admit the same way). The pod is not kept. */
static void report_refused(struct edged *ed, const char *key, const char *json, size_t len,
                           const char *why)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *uid, *node;
    struct kedge_buf status = KEDGE_BUF_INIT, patch = KEDGE_BUF_INIT;
    struct kedge_jw w;
    const char *slash = strstr(key, "/pod/");
    char resource[600];

    if (!slash || kedge_json_parse(json, len, &doc) < 0)
        return;
    root = kedge_jdoc_root(doc);
    uid = kedge_json_get(kedge_json_get(root, "metadata"), "uid");
    node = kedge_json_get(kedge_json_get(root, "spec"), "nodeName");
    if (uid && uid->type == KEDGE_JSTR && uid->len && node && node->type == KEDGE_JSTR &&
        !strcmp(node->str, ed->br->cfg.node_name)) {
        snprintf(resource, sizeof(resource), "%.*s/podpatch/%s", (int)(slash - key), key,
                 slash + 5);
        kedge_jw_init(&w, &status);
        kedge_jw_obj_open(&w);
        kedge_jw_kstr(&w, "phase", "Failed");
        kedge_jw_kstr(&w, "message", why);
        kedge_jw_kstr(&w, "reason", "InvalidPodSpec");
        kedge_jw_obj_close(&w);
        if (kedge_jw_finish(&w) == 0 &&
            podstatus_patch(uid->str, status.data, status.len, &patch) == 0)
            (void)send_to_cloud(ed, "patch", resource, patch.data, true);
    }
    kedge_buf_cleanup(&status);
    kedge_buf_cleanup(&patch);
    kedge_jdoc_free(doc);
}

/* Take a pod from the store or the cloud. */
static void pod_apply(struct edged *ed, const char *key, const char *json, size_t len, bool deleted)
{
    struct pod_spec *spec = NULL;
    struct epod *p = pod_by_key(ed, key);
    char why[512] = "";
    int rc = podspec_parse(json, len, &spec, why, sizeof(why));

    if (rc < 0 && !deleted) {
        kedge_log(KEDGE_LOG_WARN, "edged: pod %s refused: %s", key,
                  why[0] ? why : kedge_strerror(rc));
        if (rc == KEDGE_ESCHEMA)
            report_refused(ed, key, json, len, why);
        return;
    }
    if (deleted) {
        /* only the pod with that UID (a delete may carry nothing else) */
        if (p && (!spec || !spec->uid || !*spec->uid || !strcmp(spec->uid, p->uid))) {
            p->terminating = true;
            p->finalise = false;
        }
        podspec_free(spec);
        relist_soon(ed);
        return;
    }
    if (podgone_has(ed->gone, spec->uid, kedge_now_ms())) {
        /* a late update of a pod this node has finished (stopped, reported, deleted): kubelet
         * ignores those; starting it again would patch a pod the cloud is deleting */
        kedge_log(KEDGE_LOG_INFO, "edged: pod %s (%s) is finished here: update ignored", key,
                  spec->uid);
        podspec_free(spec);
        return;
    }
    if (!for_this_node(ed, spec)) {
        kedge_log(KEDGE_LOG_INFO, "edged: pod %s is bound to node \"%s\", not this one", key,
                  spec->node_name ? spec->node_name : "");
        podspec_free(spec);
        return;
    }
    if (p && strcmp(p->uid, spec->uid ? spec->uid : "")) {
        p->terminating = true; /* a new pod under the old name: the old one goes first */
        p->finalise = false;
        p = NULL;
    }
    if (!p) {
        p = pod_new(key, spec);
        if (!p)
            return;
        p->next = ed->pods;
        ed->pods = p;
        seed_from_last_patch(ed, p);
        kedge_log(KEDGE_LOG_NOTICE, "edged: pod %s (%s) added", key, p->uid);
    } else if (pod_update(ed, p, spec) < 0) {
        return;
    }
    if (p->spec->deleting && !p->terminating) {
        p->terminating = true;
        p->finalise = true;
    }
    relist_soon(ed);
}

/* MetaManager: a cloud insert/update/delete of a pod, configmap or secret (stored already). */
static void on_meta(void *ctx, const struct kedge_msg *m)
{
    struct edged *ed = ctx;
    const char *op = m->operation ? m->operation : "";
    char type[32] = "";
    const char *a = m->resource ? strchr(m->resource, '/') : NULL;
    const char *b = a ? strchr(a + 1, '/') : NULL;
    struct epod *p;

    if (!a || !b || (size_t)(b - a - 1) >= sizeof(type))
        return;
    memcpy(type, a + 1, (size_t)(b - a - 1));
    if (!strcmp(type, "pod")) {
        if (!strcmp(op, "insert") || !strcmp(op, "update") || !strcmp(op, "delete"))
            pod_apply(ed, m->resource, m->content, m->content_len, !strcmp(op, "delete"));
        return;
    }
    /* a configMap or secret changed: pods that mount it get their files rewritten */
    for (p = ed->pods; p; p = p->next)
        if (p->spec && podvolumes_uses(p->spec, type, b + 1) &&
            !strncmp(m->resource, p->spec->ns, (size_t)(a - m->resource)))
            p->volumes_dirty = true;
    relist_soon(ed);
}

/* satoken: a new token for the pod uid: its projected volumes are written again. */
static void on_token(void *ctx, const char *uid)
{
    struct edged *ed = ctx;
    struct epod *p;

    if (ed->stopping)
        return;
    for (p = ed->pods; p; p = p->next)
        if (!strcmp(p->uid, uid))
            p->volumes_dirty = true;
    relist_soon(ed);
}

static void load_row(void *ctx, const char *key, const char *value)
{
    pod_apply(ctx, key, value, strlen(value), false);
}

/* ---- the tick ----------------------------------------------------------------------------------
 */

static void tick(lws_sorted_usec_list_t *sul)
{
    struct edged *ed = lws_container_of(sul, struct edged, sul_tick);
    uint64_t now = kedge_now_ms();
    bool due = now >= ed->next_resync_ms;
    struct epod *p;

    retake_due(ed, now);
    for (p = ed->pods; p; p = p->next) {
        size_t i;
        probe_pod(ed, p, now);
        stops_due(ed, p, now);
        if (p->terminating)
            due = true; /* until its containers are gone */
        for (i = 0; i < p->n_cs; i++) {
            struct cstate *cs = &p->cs[i];
            if ((cs->waiting == WAIT_CRASH_BACKOFF && now >= cs->backoff_until_ms) ||
                (cs->waiting == WAIT_PULL_BACKOFF && now >= cs->pull_until_ms) ||
                (cs->retry_at_ms && now >= cs->retry_at_ms) || cs->kill_requested)
                due = true;
        }
        if (!p->status_inflight && p->status_pending == NULL && p->spec &&
            edgehub_connected(ed->br->hub) && ed->listed_once)
            report_status(ed, p); /* sends only when it differs from what the cloud has */
    }
    if (due)
        relist_soon(ed);
    if (!ed->stopping)
        lws_sul_schedule(ed->br->lws, 0, &ed->sul_tick, tick, (lws_usec_t)TICK_MS * 1000);
}

static void on_event(void *ctx, const char *json, size_t len)
{
    (void)json;
    (void)len;
    relist_soon(ctx);
}

/* GET /version: the node's containerRuntimeVersion in kubelet's form, <runtime>://<version>
 * (dockershim said docker://24.0.5); podman's Docker API names itself "Podman Engine". */
static void version_read(void *ctx, const struct engine_reply *r)
{
    struct edged *ed = ctx;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *v, *c;
    const char *runtime = "docker";

    if (r->err || r->status != 200 || kedge_json_parse(r->body, r->len, &doc) < 0)
        return; /* the node keeps what it says; the next connection asks again */
    root = kedge_jdoc_root(doc);
    v = kedge_json_get(root, "Version");
    c = kedge_json_get(root, "Components");
    for (c = c && c->type == KEDGE_JARR ? c->child : NULL; c; c = c->next) {
        const struct kedge_jval *n = kedge_json_get(c, "Name");
        if (n && n->type == KEDGE_JSTR && !strncmp(n->str, "Podman", 6))
            runtime = "podman";
    }
    if (v && v->type == KEDGE_JSTR && v->len)
        snprintf(ed->br->runtime_version, sizeof(ed->br->runtime_version), "%s://%s", runtime,
                 v->str);
    kedge_jdoc_free(doc);
}

static void on_engine_up(void *ctx, bool up)
{
    struct edged *ed = ctx;

    if (up != ed->engine_up)
        kedge_log(up ? KEDGE_LOG_NOTICE : KEDGE_LOG_WARN, "edged: container runtime %s (%s)",
                  up ? "connected" : "lost", ed->br->cfg.engine_socket);
    ed->engine_up = up;
    if (up) {
        relist_soon(ed);
        if (engine_request(ed->engine, "GET", "/version", NULL, 0, 0, version_read, ed) < 0)
            kedge_log(KEDGE_LOG_WARN, "edged: out of memory asking the engine's version");
    }
}

/* ---- lifetime ----------------------------------------------------------------------------------
 */

int edged_start(struct bridge *br, struct edged **out)
{
    struct edged *ed;
    int rc;

    *out = NULL;
    if (!strcmp(br->cfg.engine_socket, "none")) {
        kedge_log(KEDGE_LOG_NOTICE, "edged: off (engine_socket none): no pods on this node");
        return 0;
    }
    ed = kedge_calloc(1, sizeof(*ed));
    if (!ed)
        return -ENOMEM;
    ed->br = br;
    ed->rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(10000, 5);
    node_internal_ip(ed->host_ip, sizeof(ed->host_ip));
    rc = podgone_new(&ed->gone);
    if (rc == 0)
        rc = engine_new(br, br->cfg.engine_socket, &ed->engine);
    if (rc == 0)
        rc = prober_new(br, ed->engine, &ed->prober);
    if (rc == 0)
        rc = satoken_new(br, on_token, ed, &ed->tokens);
    if (rc < 0) {
        edged_free(ed);
        return rc;
    }
    rc = metamgr_list(br->meta, "pod", load_row, ed);
    if (rc < 0)
        kedge_log(KEDGE_LOG_WARN, "edged: cannot read the pods in the store: %s",
                  kedge_strerror(rc));
    metamgr_set_pod_hook(br->meta, on_meta, ed);
    rc = engine_watch(ed->engine, br->cfg.node_name, on_event, on_engine_up, ed);
    if (rc < 0) {
        edged_free(ed);
        return rc;
    }
    relist_soon(ed);
    lws_sul_schedule(br->lws, 0, &ed->sul_tick, tick, (lws_usec_t)TICK_MS * 1000);
    kedge_log(KEDGE_LOG_NOTICE, "edged: engine %s, pods in %s, infra image %s",
              br->cfg.engine_socket, br->cfg.pods_dir, br->cfg.pod_infra_image);
    *out = ed;
    return 0;
}

void edged_stop(struct edged *ed)
{
    if (!ed)
        return;
    ed->stopping = true;
    metamgr_set_pod_hook(ed->br->meta, NULL, NULL);
    lws_sul_cancel(&ed->sul_tick);
    lws_sul_cancel(&ed->sul_relist);
    satoken_stop(ed->tokens);
}

void edged_free(struct edged *ed)
{
    size_t i;

    if (!ed)
        return;
    ed->stopping = true;
    while (ed->pods)
        forget_pod(ed, ed->pods); /* cancels their probes */
    prober_free(ed->prober);
    satoken_free(ed->tokens);
    engine_free(ed->engine); /* completes what is queued (cancelled); the pods are gone */
    for (i = 0; i < ed->n_seen; i++)
        seen_cleanup(&ed->seen[i]);
    kedge_free(ed->seen);
    for (i = 0; i < ed->n_next; i++)
        seen_cleanup(&ed->next_seen[i]);
    kedge_free(ed->next_seen);
    podgone_free(ed->gone);
    while (ed->retakes) {
        struct deletion *d = ed->retakes;
        ed->retakes = d->next;
        deletion_free(d);
    }
    kedge_free(ed);
}
