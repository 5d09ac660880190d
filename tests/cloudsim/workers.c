/* workers.c: the device controller's updateDeviceStatus workers, as the edge sees them.
 *
 * cloudcore hands every twin report it reads to a channel that several goroutines drain
 * (cloud/pkg/devicecontroller/controller/upstream.go, UpdateDeviceStatusWorkers), each
 * applying its report (a PATCH of the Device) and answering "OK" afterwards. Two reports of one
 * device that reach the cloud together can therefore be applied in either order, and the
 * Device can end on the older value: seen against cloudcore v1.15.4, where 20 reports sent in
 * one burst after an outage left the Device at 119 instead of 120.
 *
 * The model takes the worst order the goroutines allow, deterministically: reports read
 * within APPLY_US of the first one (about what the PATCH to the API server takes) are applied
 * together, newest first, and answered then. An edge that sends the next report of a device
 * only after the previous one was answered never sees the difference; one that sends a burst
 * sees its reports applied backwards.
 */
#include <errno.h>
#include <string.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/log.h"

#define APPLY_US 3000

struct job {
    char *node;
    struct kedge_msg m;
};

struct workers {
    worker_fn fn;
    void *ctx;
    struct hub *hub;
    struct lws_context *lws;
    lws_sorted_usec_list_t sul;
    bool scheduled;
    struct job *jobs;
    size_t n, cap;
};

int workers_new(worker_fn fn, void *ctx, struct workers **out)
{
    struct workers *w = kedge_calloc(1, sizeof(*w));

    *out = w;
    if (!w)
        return -ENOMEM;
    w->fn = fn;
    w->ctx = ctx;
    return 0;
}

static void job_cleanup(struct job *j)
{
    kedge_free(j->node);
    kedge_msg_cleanup(&j->m);
}

/* Newest first: the last report read is the first one applied. */
static void run_jobs(lws_sorted_usec_list_t *sul)
{
    struct workers *w = lws_container_of(sul, struct workers, sul);
    struct job *jobs = w->jobs;
    size_t n = w->n;

    w->jobs = NULL;
    w->n = w->cap = 0;
    w->scheduled = false;
    while (n--) {
        if (w->fn(w->ctx, w->hub, jobs[n].node, &jobs[n].m) < 0)
            kedge_log(KEDGE_LOG_ERR, "cloudsim: device controller: out of memory applying %s",
                      jobs[n].m.msg_id ? jobs[n].m.msg_id : "?");
        job_cleanup(&jobs[n]);
    }
    kedge_free(jobs);
}

int workers_submit(struct workers *w, struct hub *h, const char *node, const struct kedge_msg *m)
{
    struct job *j;

    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        struct job *nj = kedge_realloc(w->jobs, cap * sizeof(*nj));
        if (!nj)
            return -ENOMEM;
        w->jobs = nj;
        w->cap = cap;
    }
    j = &w->jobs[w->n];
    memset(j, 0, sizeof(*j));
    if (!(j->node = kedge_strdup(node)) || kedge_msg_copy(&j->m, m) < 0) {
        job_cleanup(j);
        return -ENOMEM;
    }
    w->n++;
    w->hub = h;
    if (!w->scheduled) {
        w->lws = hub_context(h);
        lws_sul_schedule(w->lws, 0, &w->sul, run_jobs, APPLY_US);
        w->scheduled = true;
    }
    return 0;
}

void workers_stop(struct workers *w)
{
    size_t i;

    if (!w)
        return;
    if (w->scheduled)
        lws_sul_cancel(&w->sul);
    w->scheduled = false;
    for (i = 0; i < w->n; i++)
        job_cleanup(&w->jobs[i]);
    w->n = 0;
}

void workers_free(struct workers *w)
{
    if (!w)
        return;
    workers_stop(w);
    kedge_free(w->jobs);
    kedge_free(w);
}
