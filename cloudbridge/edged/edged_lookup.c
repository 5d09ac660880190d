/* edged_lookup.c: which runtime container `kubectl logs/exec/attach` mean (edged.h).
 *
 * kubelet answers these from its own state, not the runtime's: the pod from its pod manager
 * (server.go: `pod "x" does not exist` for logs, `pod does not exist` for exec and attach),
 * the container from the pod's status (kubelet_pods.go validateContainerLogStatus for logs:
 * running, else terminated, else the last termination, else why it waits; findContainer for
 * exec and attach: running containers only, `container not found ("c")`). Edged's status is
 * computed from the last relist by podstatus.c, so the same view (edged_container_view) decides
 * here: what `kubectl get pod` shows is what logs finds.
 *
 * The API server normally fills in the container name (its own "a container name must be
 * specified" check); "" still picks a pod's only container, with the API server's message when
 * there are several.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "edged_int.h"
#include "kedge/buf.h"

struct runtime *edged_runtime(struct edged *ed)
{
    return &ed->rt;
}

static struct epod *pod_of(struct edged *ed, const char *ns, const char *pod)
{
    char key[512];
    int n = snprintf(key, sizeof(key), "%s/pod/%s", ns ? ns : "", pod ? pod : "");

    if (n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    return edged_pod_by_key(ed, key);
}

/* The API server's answer to a request without a container name (pkg/registry/core/pod's
 * validateContainer): "[a b]" lists, the init containers after the apps. */
static void name_required(const struct pod_spec *s, const char *pod, char *why, size_t why_len)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    size_t i;
    int rc;

    if (!s->n_containers) {
        snprintf(why, why_len, "pod %s does not have a container", pod);
        return;
    }
    rc = kedge_buf_printf(&b, "a container name must be specified for pod %s, choose one of: [",
                          pod);
    for (i = 0; i < s->n_containers && rc == 0; i++)
        rc = kedge_buf_printf(&b, "%s%s", i ? " " : "", s->containers[i].name);
    if (rc == 0)
        rc = kedge_buf_puts(&b, "]");
    for (i = 0; i < s->n_init_containers && rc == 0; i++)
        rc = kedge_buf_printf(&b, "%s%s", i ? " " : " or one of the init containers: [",
                              s->init_containers[i].name);
    if (rc == 0 && s->n_init_containers)
        rc = kedge_buf_puts(&b, "]");
    snprintf(why, why_len, "%s", rc == 0 ? b.data : "a container name must be specified");
    kedge_buf_cleanup(&b);
}

/* The index of container name in p's cs[] (init containers first), or -1; "" = the only app
 * container (-2 when there are several: name_required). */
static int container_index(const struct epod *p, const char *name)
{
    size_t ci;

    if (!name || !*name)
        return p->spec->n_containers == 1 ? (int)p->spec->n_init_containers : -2;
    for (ci = 0; ci < p->n_cs; ci++)
        if (!strcmp(edged_spec_container(p, ci)->name, name))
            return (int)ci;
    return -1;
}

static int found(const struct observed_container *o, char *id, size_t id_len)
{
    int n = snprintf(id, id_len, "%s", o->id);

    return n < 0 || (size_t)n >= id_len ? -ENAMETOOLONG : 0;
}

/* kubelet's validateContainerLogStatus on the status Edged reports for c. */
static int log_container(const struct container_view *c, const char *name, const char *pod,
                         bool previous, char *id, size_t id_len, char *why, size_t why_len)
{
    const struct observed_container *last = podstatus_last_terminated(c);
    enum podstatus_shown shown = podstatus_shown_state(c);

    if (previous) {
        if (last)
            return found(last, id, id_len);
        snprintf(why, why_len, "previous terminated container \"%s\" in pod \"%s\" not found", name,
                 pod);
        return -ENOENT;
    }
    if (shown != PS_SHOW_WAITING)
        return found(c->current, id, id_len); /* running, or terminated */
    if (last)
        return found(last, id, id_len);
    switch (c->waiting) {
    case WAIT_PULL_ERROR:
        snprintf(why, why_len,
                 "container \"%s\" in pod \"%s\" is waiting to start: image can't be "
                 "pulled",
                 name, pod);
        break;
    case WAIT_PULL_BACKOFF:
        snprintf(why, why_len,
                 "container \"%s\" in pod \"%s\" is waiting to start: trying and "
                 "failing to pull image",
                 name, pod);
        break;
    default:
        snprintf(why, why_len, "container \"%s\" in pod \"%s\" is waiting to start: %s", name, pod,
                 podstatus_waiting_reason(c->waiting));
        break;
    }
    return -ENOENT;
}

/* The pod and the index of its container, or -ENOENT with why. exec: kubelet's exec texts. */
static int resolve(struct edged *ed, const char *ns, const char *pod, const char *container,
                   bool exec, struct epod **pp, int *ci, char *why, size_t why_len)
{
    struct epod *p = pod_of(ed, ns, pod);

    if (!p) {
        if (exec)
            snprintf(why, why_len, "pod does not exist");
        else
            snprintf(why, why_len, "pod \"%s\" does not exist", pod ? pod : "");
        return -ENOENT;
    }
    *ci = container_index(p, container);
    if (*ci == -2) {
        name_required(p->spec, pod, why, why_len);
        return -ENOENT;
    }
    if (*ci < 0) {
        if (exec)
            snprintf(why, why_len, "container not found (\"%s\")", container);
        else
            snprintf(why, why_len, "container \"%s\" not found in pod \"%s\"", container, pod);
        return -ENOENT;
    }
    *pp = p;
    return 0;
}

int edged_find_container(struct edged *ed, const char *ns, const char *pod, const char *container,
                         bool previous, char *id, size_t id_len, char *why, size_t why_len)
{
    struct container_view cv;
    struct epod *p = NULL;
    int ci, rc;

    if (why_len)
        *why = '\0';
    rc = resolve(ed, ns, pod, container, false, &p, &ci, why, why_len);
    if (rc < 0)
        return rc;
    edged_container_view(ed, p, (size_t)ci, &cv);
    return log_container(&cv, cv.spec->name, pod, previous, id, id_len, why, why_len);
}

int edged_find_running(struct edged *ed, const char *ns, const char *pod, const char *container,
                       char *id, size_t id_len, char *why, size_t why_len)
{
    struct container_view cv;
    struct epod *p = NULL;
    int ci, rc;

    if (why_len)
        *why = '\0';
    rc = resolve(ed, ns, pod, container, true, &p, &ci, why, why_len);
    if (rc < 0)
        return rc;
    edged_container_view(ed, p, (size_t)ci, &cv);
    if (cv.current && cv.current->running)
        return found(cv.current, id, id_len);
    snprintf(why, why_len, "container not found (\"%s\")", cv.spec->name);
    return -ENOENT;
}
