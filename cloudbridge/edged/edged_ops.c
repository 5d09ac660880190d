/* edged_ops.c: the pod workers' runtime calls and what their answers change. Every call counts
 * in its pod's busy (a pod with calls in flight is not synced again) and carries the pod's UID,
 * not the pod: it may be gone when the answer comes. Each answer asks for a relist.
 *
 * Starting a container is a chain: image check -> pull (when the policy says so) -> create
 * -> start, each link in the previous one's answer; a failure holds the container with
 * kubelet's waiting reason (ErrImagePull, CreateContainerConfigError, RunContainerError, ...)
 * until the back-off lets the next sync try again. A sandbox is the same chain with the
 * sandbox image (pulled only when absent, as dockershim's ensureSandboxImageExists).
 * Pulls carry the credentials kubelet's keyring finds for the image in the pod's
 * imagePullSecrets, each matching one tried in turn until one works.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edged_int.h"
#include "imagepull.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"
#include "regauth.h"

#define MAX_CREDS 8 /* credentials tried for one pull (kubelet tries every match) */

enum op_kind {
    OP_REMOVE,
    OP_STOP,
    OP_START_EXISTING,
    OP_IMAGE_CHECK,
    OP_PULL,
    OP_CREATE,
    OP_START,
    OP_INFRA_IMAGE_CHECK,
    OP_INFRA_PULL,
    OP_INFRA_CREATE,
    OP_INFRA_START
};

/* One runtime call's context. */
struct op {
    struct edged *ed;
    char *uid;
    enum op_kind kind;
    int ci; /* container index into cs, -1 for the infra container */
    int attempt;
    char *id;
    size_t cred, n_creds; /* a pull: the credential tried (of the keyring's matches) */
};

static void op_free(struct op *o)
{
    if (!o)
        return;
    kedge_free(o->uid);
    kedge_free(o->id);
    kedge_free(o);
}

/* A call's context, counted in p->busy first: a refused connection completes inside the
 * call. NULL: out of memory (the pod is retried at the next tick). */
static struct op *op_begin(struct edged *ed, struct epod *p, enum op_kind kind, int ci, int attempt,
                           const char *id)
{
    struct op *o = kedge_calloc(1, sizeof(*o));

    if (!o || !(o->uid = kedge_strdup(p->uid)) || (id && !(o->id = kedge_strdup(id)))) {
        op_free(o);
        return NULL;
    }
    o->ed = ed;
    o->kind = kind;
    o->ci = ci;
    o->attempt = attempt;
    p->busy++;
    return o;
}

/* rc: what the runtime call returned. When it started nothing, the context goes. */
static int op_sent(struct epod *p, struct op *o, int rc)
{
    if (rc < 0) {
        p->busy--;
        op_free(o);
    }
    return rc;
}

static void op_done(void *ctx, const struct runtime_result *r);

static int call_on(struct edged *ed, struct epod *p, enum op_kind kind, int ci, const char *id)
{
    const struct runtime_ops *ops = ed->rt.ops;
    struct op *o = op_begin(ed, p, kind, ci, 0, id);
    int rc;

    if (!o)
        return -ENOMEM;
    kedge_log(KEDGE_LOG_DEBUG, "edged: pod %s: %s %s", p->key,
              kind == OP_REMOVE ? "remove"
              : kind == OP_STOP ? "kill"
                                : "start",
              id);
    if (kind == OP_REMOVE)
        rc = ops->remove_container(ed->rt.rt, id, op_done, o);
    else
        rc = ops->start_container(ed->rt.rt, id, op_done, o);
    return op_sent(p, o, rc);
}

void edged_remove_container(struct edged *ed, struct epod *p, const char *id)
{
    (void)call_on(ed, p, OP_REMOVE, -1, id);
}

void edged_start_existing(struct edged *ed, struct epod *p, int ci, const char *id)
{
    (void)call_on(ed, p, ci < 0 ? OP_INFRA_START : OP_START_EXISTING, ci, id);
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
    struct op *o = op_begin(ed, p, OP_STOP, ci, 0, id);

    if (!o)
        return;
    kedge_log(KEDGE_LOG_DEBUG, "edged: pod %s: kill %s %s", p->key, sig, id);
    (void)op_sent(p, o, ed->rt.ops->kill_container(ed->rt.rt, id, sig, op_done, o));
}

void edged_stop_container(struct edged *ed, struct epod *p, int ci, const char *id)
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

void edged_stops_due(struct edged *ed, struct epod *p, uint64_t now)
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

/* ---- create ------------------------------------------------------------------------------ */

/* Create the infra container (ci -1) or container ci. */
static int create(struct edged *ed, struct epod *p, int ci, int attempt, const struct seen *infra)
{
    const struct pod_container *c = ci < 0 ? NULL : edged_spec_container(p, (size_t)ci);
    struct lookup_ctx lc = {ed, p};
    char vol_dir[1024], why[512] = "";
    struct runtime_create cc = {0};
    struct op *o;
    int rc;

    snprintf(vol_dir, sizeof(vol_dir), "%s/%s/volumes", ed->cfg.pods_dir, p->uid);
    cc.pod = p->spec;
    cc.c = c;
    cc.sandbox_id = infra ? infra->o.id : NULL;
    cc.pod_ip = infra && infra->o.ip ? infra->o.ip : (p->spec->host_network ? ed->cfg.host_ip : "");
    cc.host_ip = ed->cfg.host_ip;
    cc.volumes_dir = vol_dir;
    cc.attempt = attempt;
    cc.lookup = edged_store_lookup;
    cc.lookup_ctx = &lc;
    o = op_begin(ed, p, ci < 0 ? OP_INFRA_CREATE : OP_CREATE, ci, attempt, NULL);
    if (!o)
        return -ENOMEM;
    kedge_log(KEDGE_LOG_DEBUG, "edged: pod %s: create %s", p->key, c ? c->name : "sandbox");
    rc = c ? ed->rt.ops->create_container(ed->rt.rt, &cc, why, sizeof(why), op_done, o)
           : ed->rt.ops->create_sandbox(ed->rt.rt, &cc, why, sizeof(why), op_done, o);
    (void)op_sent(p, o, rc);
    if (rc == KEDGE_ESCHEMA && ci >= 0) {
        edged_hold(ed, &p->cs[ci], WAIT_CONFIG_ERROR, why);
        kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s container %s: %s",
                          p->key, c->name, why);
    } else if (rc < 0) {
        kedge_log(KEDGE_LOG_WARN, "edged: pod %s: cannot create a container: %s", p->key,
                  why[0] ? why : kedge_strerror(rc));
    }
    return rc;
}

/* The container's create, with the sandbox it joins. */
static void create_in_sandbox(struct edged *ed, struct epod *p, struct op *o)
{
    struct seen *infra, *prev;

    edged_find_seen(ed, p->uid, NULL, true, &infra, &prev);
    (void)create(ed, p, o->ci, o->attempt, infra);
}

/* ---- images ------------------------------------------------------------------------------ */

static const char *image_of(struct edged *ed, struct epod *p, int ci)
{
    return ci < 0 ? ed->cfg.sandbox_image : edged_spec_container(p, (size_t)ci)->image;
}

/* The sandbox could not be made: kubelet's FailedCreatePodSandBox. The pod stays Pending, its
 * containers in ContainerCreating with the reason (the event's text: there are no events
 * here), until the next try. */
static void sandbox_failed(struct edged *ed, struct epod *p, const char *why)
{
    char msg[900];
    size_t i;

    snprintf(msg, sizeof(msg), "Failed to create pod sandbox: %s", why);
    for (i = 0; i < p->n_cs; i++)
        if (p->cs[i].waiting == WAIT_NONE || p->cs[i].waiting == WAIT_CREATING)
            edged_set_waiting(&p->cs[i], WAIT_CREATING, msg);
    p->infra_retry_at_ms = kedge_now_ms() + (uint64_t)ed->cfg.backoff_initial_ms;
    kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s: %s", p->key, msg);
}

/* A container's pull failed: ErrImagePull until the pod worker's next try (kubelet requeues a
 * failed sync after its back-off period), then ImagePullBackOff while the image's back-off
 * lasts (on_image_checked). */
static void pull_failed(struct edged *ed, struct epod *p, int ci, const char *why)
{
    struct cstate *cs = &p->cs[ci];
    char msg[900];

    imagepull_backoff_next(&cs->pull_backoff, kedge_now_ms(), ed->cfg.backoff_initial_ms,
                           ed->cfg.backoff_max_ms);
    imagepull_failed_message(image_of(ed, p, ci), why, msg, sizeof(msg));
    edged_hold(ed, cs, WAIT_PULL_ERROR, msg);
    kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s: %s", p->key, msg);
}

/* A pull of container ci's image (ci -1: the sandbox's) failed with why. */
static void pull_refused(struct edged *ed, struct epod *p, int ci, const char *why)
{
    char msg[900];

    if (ci >= 0) {
        pull_failed(ed, p, ci, why);
        return;
    }
    snprintf(msg, sizeof(msg), "failed pulling image \"%s\": %s", image_of(ed, p, -1), why);
    sandbox_failed(ed, p, msg);
}

/* The pod's keyring: its imagePullSecrets from the store (a miss asks the cloud, and this pull
 * goes without: kubelet warns and pulls too). KEDGE_EPARSE and why: a docker secret that does
 * not decode, which fails the pull as kubelet's MakeDockerKeyring does; else 0. */
static int pod_keyring(struct edged *ed, struct epod *p, struct regauth *k, char *why, size_t n)
{
    struct lookup_ctx lc = {ed, p};
    size_t i;
    int rc = 0;

    for (i = 0; i < p->spec->n_pull_secrets && rc != KEDGE_EPARSE; i++) {
        const char *name = p->spec->pull_secrets[i];
        char *json = NULL;

        rc = *name ? edged_store_lookup(&lc, "secret", p->spec->ns, name, &json) : -ENOENT;
        if (rc == 0)
            rc = regauth_add_secret(k, json, strlen(json));
        if (rc == KEDGE_EPARSE)
            snprintf(why, n, "pull secret %s/%s: its docker config does not parse", p->spec->ns,
                     name);
        else if (rc < 0)
            kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN,
                              "edged: pod %s: unable to use pull secret %s/%s (%s); the image "
                              "pull may not succeed",
                              p->key, p->spec->ns, name, kedge_strerror(rc));
        kedge_free(json);
    }
    return rc == KEDGE_EPARSE ? rc : 0;
}

/* Pull container ci's image (ci -1: the sandbox's) with the cred-th credential the keyring
 * matches (none: anonymous). */
static void pull(struct edged *ed, struct epod *p, int ci, int attempt, size_t cred)
{
    const char *image = image_of(ed, p, ci);
    const struct regauth_entry *found[MAX_CREDS];
    struct regauth k = REGAUTH_INIT;
    struct runtime_auth auth;
    char repo[512], server[256], why[400];
    size_t n = 0;
    struct op *o;

    if (pod_keyring(ed, p, &k, why, sizeof(why)) < 0) {
        regauth_cleanup(&k);
        pull_refused(ed, p, ci, why);
        return;
    }
    if (regauth_repository(image, repo, sizeof(repo)) == 0)
        n = regauth_lookup(&k, repo, found, MAX_CREDS);
    if (n > MAX_CREDS)
        n = MAX_CREDS;
    o = op_begin(ed, p, ci < 0 ? OP_INFRA_PULL : OP_PULL, ci, attempt, NULL);
    if (o) {
        o->cred = cred;
        o->n_creds = n;
        if (cred < n) {
            regauth_registry(repo, server, sizeof(server));
            auth = (struct runtime_auth){found[cred]->username, found[cred]->password, server};
        }
        kedge_log(KEDGE_LOG_INFO, "edged: pod %s: pulling %s%s%s", p->key, image,
                  cred < n ? " as " : "", cred < n ? found[cred]->username : "");
        (void)op_sent(
            p, o, ed->rt.ops->pull_image(ed->rt.rt, image, cred < n ? &auth : NULL, op_done, o));
    }
    regauth_cleanup(&k);
}

static void check_image(struct edged *ed, struct epod *p, int ci, int attempt)
{
    struct op *o =
        op_begin(ed, p, ci < 0 ? OP_INFRA_IMAGE_CHECK : OP_IMAGE_CHECK, ci, attempt, NULL);

    if (o)
        (void)op_sent(p, o, ed->rt.ops->image_present(ed->rt.rt, image_of(ed, p, ci), op_done, o));
}

void edged_start_container(struct edged *ed, struct epod *p, int ci, int attempt)
{
    const struct pod_container *c = edged_spec_container(p, (size_t)ci);
    struct cstate *cs = &p->cs[ci];
    char msg[600];

    if (!c->image || !podspec_image_valid(c->image)) {
        snprintf(msg, sizeof(msg),
                 "Failed to apply default image tag \"%s\": couldn't parse image reference "
                 "\"%s\": invalid reference format",
                 c->image ? c->image : "", c->image ? c->image : "");
        edged_hold(ed, cs, WAIT_INVALID_IMAGE, msg);
        return;
    }
    check_image(ed, p, ci, attempt);
}

void edged_create_sandbox(struct edged *ed, struct epod *p)
{
    if (ed->cfg.sandbox_image && *ed->cfg.sandbox_image)
        check_image(ed, p, -1, p->sandbox_attempt);
    else
        (void)create(ed, p, -1, p->sandbox_attempt, NULL);
}

/* ---- answers ----------------------------------------------------------------------------- */

static void on_created(struct edged *ed, struct epod *p, struct op *o,
                       const struct runtime_result *r)
{
    if (r->outcome == RT_OK && p->terminating) {
        edged_remove_container(ed, p, r->id); /* deleted meanwhile: never started */
    } else if (r->outcome == RT_OK) {
        edged_start_existing(ed, p, o->ci, r->id);
    } else if (r->outcome == RT_CONFLICT) {
        /* a container of that name exists (a relist older than the runtime): look again */
        kedge_log(KEDGE_LOG_INFO, "edged: pod %s: name conflict; relisting", p->key);
    } else {
        if (o->ci >= 0) {
            bool missing = r->outcome == RT_NOT_FOUND;
            edged_hold(ed, &p->cs[o->ci], missing ? WAIT_CREATING : WAIT_CREATE_ERROR, r->message);
        } else {
            sandbox_failed(ed, p, r->message);
        }
        kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s: create failed: %s",
                          p->key, r->message);
    }
}

static void on_started(struct edged *ed, struct epod *p, struct op *o,
                       const struct runtime_result *r)
{
    if (r->outcome == RT_OK) {
        if (o->ci >= 0)
            edged_set_waiting(&p->cs[o->ci], WAIT_NONE, NULL);
        for (size_t i = 0; o->ci < 0 && i < p->n_cs; i++)
            if (p->cs[i].waiting == WAIT_CREATING) /* a sandbox failure's message goes */
                edged_set_waiting(&p->cs[i], WAIT_NONE, NULL);
        return;
    }
    kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s: start failed: %s", p->key,
                      r->message);
    if (o->ci >= 0)
        edged_hold(ed, &p->cs[o->ci], WAIT_RUN_ERROR, r->message);
    if (o->id)
        edged_remove_container(ed, p, o->id); /* never started: a fresh attempt after back-off */
}

static void on_image_checked(struct edged *ed, struct epod *p, struct op *o,
                             const struct runtime_result *r)
{
    const char *image = image_of(ed, p, o->ci);
    struct cstate *cs = o->ci >= 0 ? &p->cs[o->ci] : NULL;
    char msg[600];

    if (r->outcome == RT_UNREACHABLE) {
        if (cs)
            edged_hold(ed, cs, WAIT_CREATING, r->message);
        else
            sandbox_failed(ed, p, r->message);
        return;
    }
    /* the sandbox image: IfNotPresent */
    switch (imagepull_decide(
        cs ? edged_spec_container(p, (size_t)o->ci)->pull_policy : "IfNotPresent", r->present)) {
    case IMAGE_NEVER:
        imagepull_never_message(image, msg, sizeof(msg));
        edged_hold(ed, cs, WAIT_NEVER_PULL, msg);
        return;
    case IMAGE_PULL:
        if (cs && imagepull_backoff_active(&cs->pull_backoff, kedge_now_ms())) {
            imagepull_backoff_message(image, msg, sizeof(msg));
            edged_set_waiting(cs, WAIT_PULL_BACKOFF, msg);
            cs->retry_at_ms = imagepull_backoff_until(&cs->pull_backoff);
            return;
        }
        pull(ed, p, o->ci, o->attempt, 0);
        return;
    case IMAGE_USE:
        break;
    }
    if (cs)
        create_in_sandbox(ed, p, o);
    else
        (void)create(ed, p, -1, o->attempt, NULL);
}

static void on_pulled(struct edged *ed, struct epod *p, struct op *o,
                      const struct runtime_result *r)
{
    if (r->outcome == RT_FAILED && o->cred + 1 < o->n_creds) {
        pull(ed, p, o->ci, o->attempt, o->cred + 1); /* the next credential that matches */
        return;
    }
    if (r->outcome != RT_OK) {
        pull_refused(ed, p, o->ci, r->message);
        return;
    }
    if (o->ci < 0)
        (void)create(ed, p, -1, o->attempt, NULL);
    else
        create_in_sandbox(ed, p, o);
}

static void op_done(void *ctx, const struct runtime_result *r)
{
    struct op *o = ctx;
    struct edged *ed = o->ed;
    struct epod *p = edged_pod_by_uid(ed, o->uid);

    if (!p || ed->stopping || r->outcome == RT_CANCELLED) {
        if (p)
            p->busy--;
        op_free(o);
        return;
    }
    p->busy--;
    if (p->terminating && (o->kind == OP_IMAGE_CHECK || o->kind == OP_PULL ||
                           o->kind == OP_INFRA_IMAGE_CHECK || o->kind == OP_INFRA_PULL)) {
        op_free(o); /* deleted meanwhile: nothing more is started */
        edged_relist_soon(ed);
        return;
    }
    switch (o->kind) {
    case OP_IMAGE_CHECK:
    case OP_INFRA_IMAGE_CHECK:
        on_image_checked(ed, p, o, r);
        break;
    case OP_PULL:
    case OP_INFRA_PULL:
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
        if (r->outcome == RT_FAILED)
            kedge_log_limited(&ed->rl, "edged", KEDGE_LOG_WARN, "edged: pod %s: %s %s: %s", p->key,
                              o->kind == OP_STOP ? "stop" : "remove", o->id, r->message);
        break;
    }
    op_free(o);
    edged_relist_soon(ed);
}
