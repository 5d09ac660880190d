/* edged_worker.c: kubelet's pod workers. After every relist each pod takes one step toward
 * its spec (level-triggered, as kubelet's syncPod): volumes; the infra container (a new
 * sandbox if it died); init containers in order; app containers: create and start the missing
 * ones, restart dead ones per restartPolicy with kubelet's back-off (the first restart at
 * once, then initial, doubling to max; CrashLoopBackOff while waiting), replace ones whose
 * spec hash changed, stop ones a liveness probe failed. A deleted pod: stop the apps with the
 * grace period, report the final status, remove containers and volumes, forget the pod.
 * A running container is adopted (never started twice): attempts live with the containers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edged_int.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"
#include "podvolumes.h"

#define BACKOFF_RESET_MS 600000 /* kubelet forgets a back-off after 2 x 300 s without a crash */

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
    const struct pod_container *c = edged_spec_container(p, (size_t)ci);
    int64_t wall = kedge_wall_ms(), finished = cur->o.finished_ms ? cur->o.finished_ms : wall;
    int64_t init = ed->cfg.backoff_initial_ms, max = ed->cfg.backoff_max_ms;
    char msg[600];

    if (cs->backoff_ms && cur->o.started_ms && finished - cur->o.started_ms > BACKOFF_RESET_MS)
        cs->backoff_ms = 0; /* it ran long enough: a fresh start */
    if (cs->backoff_ms && wall < finished + cs->backoff_ms) {
        snprintf(msg, sizeof(msg), "back-off %llds restarting failed container=%s pod=%s_%s(%s)",
                 (long long)(cs->backoff_ms / 1000), c->name, p->spec->name, p->spec->ns, p->uid);
        edged_set_waiting(cs, WAIT_CRASH_BACKOFF, msg);
        cs->backoff_until_ms = kedge_now_ms() + (uint64_t)(finished + cs->backoff_ms - wall);
        return;
    }
    if (cs->waiting == WAIT_CRASH_BACKOFF)
        edged_set_waiting(cs, WAIT_NONE, NULL);
    cs->backoff_ms = cs->backoff_ms ? (cs->backoff_ms * 2 > max ? max : cs->backoff_ms * 2) : init;
    cs->backoff_until_ms = 0;
    kedge_log(KEDGE_LOG_INFO, "edged: pod %s: container %s exited with %d; restart %d", p->key,
              c->name, cur->o.exit_code, cur->o.attempt + 1);
    edged_start_container(ed, p, ci, cur->o.attempt + 1);
}

/* Remove attempts older than the previous one (kubelet keeps one dead container for logs). */
static void collect_garbage(struct edged *ed, struct epod *p, const char *name, bool infra,
                            const struct seen *cur, const struct seen *prev)
{
    size_t i;

    for (i = 0; i < ed->n_seen; i++) {
        struct seen *s = &ed->seen[i];
        if (!edged_seen_of(s, p->uid) || s->infra != infra || (!infra && strcmp(s->o.name, name)))
            continue;
        if (s == cur || s == prev || s->o.running)
            continue;
        edged_remove_container(ed, p, s->o.id);
    }
}

/* Container ci: one step. Returns true when it is done for now (running or finished). */
static bool sync_container(struct edged *ed, struct epod *p, int ci)
{
    const struct pod_container *c = edged_spec_container(p, (size_t)ci);
    struct cstate *cs = &p->cs[ci];
    struct seen *cur, *prev;

    edged_find_seen(ed, p->uid, c->name, false, &cur, &prev);
    collect_garbage(ed, p, c->name, false, cur, prev);
    if (!cur) {
        reset_probes(cs, NULL);
        if (cs->retry_at_ms && kedge_now_ms() < cs->retry_at_ms)
            return false; /* the last try failed: the tick brings the next one */
        cs->retry_at_ms = 0;
        edged_start_container(ed, p, ci, 0);
        return false;
    }
    if (cur->o.running) {
        reset_probes(cs, cur->o.id);
        if (edged_is_init(p, (size_t)ci))
            return false; /* the next one waits until this one has succeeded */
        if (cur->o.hash != c->hash) {
            kedge_log(KEDGE_LOG_INFO, "edged: pod %s: container %s changed; replacing", p->key,
                      c->name);
            cs->backoff_until_ms = 0;
            edged_stop_container(ed, p, ci, cur->o.id);
        } else if (cs->kill_requested) {
            cs->kill_requested = false;
            edged_stop_container(ed, p, ci, cur->o.id);
        }
        return true;
    }
    if (!edged_exited(cur)) { /* created, never started: start it */
        edged_start_existing(ed, p, ci, cur->o.id);
        return false;
    }
    if (edged_is_init(p, (size_t)ci) && cur->o.exit_code == 0)
        return true;
    if (!should_restart(p, cur))
        return !edged_is_init(p, (size_t)ci); /* a failed init container under Never: no apps */
    if (cur->o.hash != c->hash) {             /* changed while dead: a fresh one, no back-off */
        edged_start_container(ed, p, ci, cur->o.attempt + 1);
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
        const struct pod_container *c = edged_spec_container(p, ci);
        for (i = 0; i < c->n_ports; i++) {
            const struct pod_port *pp = &c->ports[i];
            if (pp->host_port <= 0 || host_port_free(pp))
                continue;
            snprintf(msg, sizeof(msg), "host port %d/%s on %s is already in use", pp->host_port,
                     pp->protocol ? pp->protocol : "TCP",
                     pp->host_ip && *pp->host_ip ? pp->host_ip : "0.0.0.0");
            for (size_t k = 0; k < p->n_cs; k++)
                edged_set_waiting(&p->cs[k], WAIT_CREATING, msg);
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
        if (edged_seen_of(&ed->seen[i], p->uid) && !ed->seen[i].infra) {
            apps = true;
            edged_remove_container(ed, p, ed->seen[i].o.id);
        }
    if (apps)
        return;
    for (i = 0; i < ed->n_seen; i++)
        if (edged_seen_of(&ed->seen[i], p->uid))
            edged_remove_container(ed, p, ed->seen[i].o.id);
}

static bool setup_volumes(struct edged *ed, struct epod *p)
{
    struct lookup_ctx lc = {ed, p};
    struct podvolumes_src src = {edged_store_lookup, &lc, satoken_get, ed->tokens};
    char why[600] = "";
    size_t i;
    int rc;

    if (p->volumes_ready && !p->volumes_dirty)
        return true;
    rc = podvolumes_setup(ed->cfg.pods_dir, p->spec, &src, why, sizeof(why));
    if (rc < 0) {
        if (!why[0])
            snprintf(why, sizeof(why), "cannot set up the volumes: %s", kedge_strerror(rc));
        for (i = 0; i < p->n_cs; i++)
            if (p->cs[i].waiting == WAIT_NONE || p->cs[i].waiting == WAIT_CREATING)
                edged_set_waiting(&p->cs[i], WAIT_CREATING, why);
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
        edged_find_seen(ed, p->uid, edged_spec_container(p, ci)->name, false, &cur, &prev);
        if (!cur)
            continue;
        seen++;
        exited0 += edged_exited(cur) && cur->o.exit_code == 0;
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
    edged_find_seen(ed, p->uid, NULL, true, &infra, &prev);
    collect_garbage(ed, p, NULL, true, infra, NULL);
    if (!infra || !infra->o.running) {
        if (infra && edged_exited(infra) && sandbox_done(ed, p))
            return; /* finished: what is left stays for its status */
        if (infra && edged_exited(infra)) {
            /* the sandbox died: everything in it goes, then a new sandbox (kubelet) */
            kedge_log(KEDGE_LOG_NOTICE, "edged: pod %s: sandbox died; making a new one", p->key);
            p->sandbox_attempt = infra->o.attempt + 1;
            remove_pod_containers(ed, p);
            return;
        }
        if (infra) /* created but not started */
            edged_start_existing(ed, p, -1, infra->o.id);
        else if (p->infra_retry_at_ms && kedge_now_ms() < p->infra_retry_at_ms)
            ; /* the last try failed: the resync brings the next one */
        else if (host_ports_free(p))
            edged_create_sandbox(ed, p);
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
        if (!edged_seen_of(s, p->uid))
            continue;
        any = true;
        if (s->o.running && !s->infra) {
            running = true;
            edged_stop_container(ed, p, -1, s->o.id);
        }
    }
    if (running || p->busy)
        return false; /* removals wait for the stops, and for calls in flight */
    if (!p->final_sent && p->spec && p->finalise) {
        /* the terminal status, from the stopped containers; waits for a patch in flight. Only
         * for a pod the cloud still has: one it deleted (or replaced under the same name)
         * would answer NotFound (or a uid conflict), as kubelet's status manager knows */
        if (!edged_report_final_status(ed, p))
            return false;
        p->final_sent = true;
    }
    if (any) {
        remove_pod_containers(ed, p);
        return false;
    }
    return true; /* nothing left */
}

void edged_sync_pod(struct edged *ed, struct epod *p)
{
    if (p->terminating) { /* stops go out even while other calls are in flight */
        if (sync_terminating(ed, p) && !p->busy) {
            int rc;
            /* the delete waits for the final status's answer (cloudcore applies the two on
             * separate goroutines: a delete first makes the patch NotFound) and for a link to
             * send it on (kubelet retries it until it is done) */
            if (p->finalise && !p->status_inflight && !edged_final_status_taken(p))
                (void)edged_report_status(ed, p); /* it was taken offline: it goes first */
            if (p->finalise && (p->status_inflight || !ed->deps.connected(ed->deps.ctx) ||
                                !edged_final_status_taken(p) || edged_send_pod_delete(ed, p) < 0))
                return;
            rc = podvolumes_remove(ed->cfg.pods_dir, p->uid);
            if (rc < 0)
                kedge_log(KEDGE_LOG_WARN, "edged: pod %s: cannot remove its volumes: %s", p->key,
                          kedge_strerror(rc));
            satoken_forget(ed->tokens, p->uid);
            kedge_log(KEDGE_LOG_NOTICE, "edged: pod %s (%s) removed", p->key, p->uid);
            podgone_add(ed->gone, p->uid, kedge_now_ms());
            edged_forget_pod(ed, p);
        }
        return;
    }
    if (p->busy || !p->spec || p->spec->n_containers == 0)
        return;
    sync_running(ed, p);
}
