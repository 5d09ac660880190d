/* Cloud -> edge dispatch by route.group, as edgecore's edgehub message handlers do
 * (docs/kubeedge-wire.md §4.7); router.h says who registers. */
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "router.h"

struct route {
    char *group;
    route_fn fn;
    void *ctx;
};

struct router {
    struct route *routes;
    size_t n;
    route_ack_fn needs_ack;
};

int router_new(struct router **out)
{
    *out = kedge_calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void router_free(struct router *r)
{
    size_t i;

    if (!r)
        return;
    for (i = 0; i < r->n; i++)
        kedge_free(r->routes[i].group);
    kedge_free(r->routes);
    kedge_free(r);
}

int router_add(struct router *r, const char *group, route_fn fn, void *ctx)
{
    struct route *nr = kedge_realloc(r->routes, (r->n + 1) * sizeof(*nr));
    char *g;

    if (!nr)
        return -ENOMEM;
    r->routes = nr;
    g = kedge_strdup(group);
    if (!g)
        return -ENOMEM;
    r->routes[r->n].group = g;
    r->routes[r->n].fn = fn;
    r->routes[r->n].ctx = ctx;
    r->n++;
    return 0;
}

int router_dispatch(struct router *r, const struct kedge_msg *m)
{
    size_t i;

    for (i = 0; i < r->n; i++)
        if (m->group && !strcmp(m->group, r->routes[i].group))
            return r->routes[i].fn(m, r->routes[i].ctx);
    return KEDGE_ESCHEMA;
}

void router_set_ack_rule(struct router *r, route_ack_fn fn)
{
    r->needs_ack = fn;
}

bool router_needs_ack(const struct router *r, const struct kedge_msg *m)
{
    return r->needs_ack ? r->needs_ack(m) : true;
}
