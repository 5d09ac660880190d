/* edged_stats.c: the pods and containers kubelet's summary and /metrics/resource report on
 * (edged.h's edged_pod_list), for EdgeStream's metrics handler.
 *
 * kubelet lists the containers the runtime has running (cadvisor finds their cgroups), with
 * the pod they belong to; pods without a running container do not appear. Edged's last relist
 * is that view of the runtime: the newest attempt of each app container of each pod, when it
 * runs. It calls edged_state.c only and is called by none of edged's files.
 */
#include <errno.h>

#include "edged_int.h"
#include "kedge/alloc.h"

/* The running app containers of p into out[] (room for all of them); their number. */
static size_t running_of(struct edged *ed, const struct epod *p, struct edged_container_info *out)
{
    size_t i, n = 0;

    for (i = 0; i < p->spec->n_containers; i++) {
        struct seen *cur, *prev;
        edged_find_seen(ed, p->uid, p->spec->containers[i].name, false, &cur, &prev);
        if (!cur || !cur->o.running || !cur->o.id || !*cur->o.id)
            continue;
        out[n].name = p->spec->containers[i].name;
        out[n].id = cur->o.id;
        out[n].started_ms = cur->o.started_ms;
        n++;
    }
    return n;
}

int edged_pod_list(struct edged *ed, edged_pod_fn fn, void *ctx)
{
    const struct epod *p;

    for (p = ed->pods; p; p = p->next) {
        struct edged_container_info *cs;
        struct edged_pod_info info;

        if (!p->spec->n_containers)
            continue;
        cs = kedge_calloc(p->spec->n_containers, sizeof(*cs));
        if (!cs)
            return -ENOMEM;
        info.n_containers = running_of(ed, p, cs);
        if (info.n_containers) {
            info.ns = p->spec->ns;
            info.name = p->spec->name;
            info.uid = p->uid;
            info.start_ms = p->start_ms;
            info.containers = cs;
            fn(ctx, &info);
        }
        kedge_free(cs);
    }
    return 0;
}
