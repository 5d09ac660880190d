/* Cloud -> edge dispatch by route.group, as edgecore's edgehub message handlers do
 * (kubeedge-wire.md §4.7): modules register a handler per group, so MetaManager and Edged plug
 * in without touching the link code. */
#include <errno.h>
#include <string.h>

#include "bridge.h"
#include "kedge/alloc.h"
#include "kedge/err.h"

struct route {
    char *group;
    route_fn fn;
    void *ctx;
};

struct router {
    struct route *routes;
    size_t n;
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

int router_dispatch(struct router *r, struct bridge *br, const struct kedge_msg *m)
{
    size_t i;

    for (i = 0; i < r->n; i++)
        if (m->group && !strcmp(m->group, r->routes[i].group))
            return r->routes[i].fn(br, m, r->routes[i].ctx);
    return KEDGE_ESCHEMA;
}

static bool contains(const char *s, const char *part)
{
    return s && strstr(s, part);
}

/* The resource type: element 2 of "{ns}/{type}/{name}" (edge-side resources carry no node
 * prefix, kubeedge-wire.md §5). */
static bool type_is(const char *resource, const char *type)
{
    const char *p = resource ? strchr(resource, '/') : NULL;
    size_t n = strlen(type);

    return p && !strncmp(p + 1, type, n) && (p[1 + n] == '/' || p[1 + n] == '\0');
}

bool route_needs_ack(const struct kedge_msg *m)
{
    static const char *const no_ack_parts[] = {"podlist", "membership", "twin/cloud_updated",
                                               "serviceaccounttoken", "k8s/ca.crt"};
    static const char *const no_ack_types[] = {"lease", "nodepatch", "podpatch", "podstatus",
                                               "certificatesigningrequest"};
    size_t i;

    /* CloudHub's noAckRequired (dispatcher/message_dispatcher.go), §5.2 */
    if (!m->msg_id || (m->group && !strcmp(m->group, "user")))
        return false;
    if (m->operation && !strcmp(m->operation, "response"))
        return false;
    for (i = 0; i < sizeof(no_ack_parts) / sizeof(no_ack_parts[0]); i++)
        if (contains(m->resource, no_ack_parts[i]))
            return false;
    for (i = 0; i < sizeof(no_ack_types) / sizeof(no_ack_types[0]); i++)
        if (type_is(m->resource, no_ack_types[i]))
            return false;
    if (type_is(m->resource, "node") && !(m->operation && !strcmp(m->operation, "update")))
        return false;
    return true;
}
