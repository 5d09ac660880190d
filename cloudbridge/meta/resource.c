/* The resource table (resource.h says what each column means). */
#include <string.h>

#include "resource.h"

static const struct resource_kind kinds[] = {
    /* type, anywhere, ack, remote, store, consumers */
    {"pod", false, RES_ACK, RES_LOCAL, RES_STORE_POD, RES_BY_META | RES_BY_EDGED},
    {"configmap", false, RES_ACK, RES_REMOTE_FIRST, RES_STORE_ROW, RES_BY_META | RES_BY_EDGED},
    {"secret", false, RES_ACK, RES_REMOTE_FIRST, RES_STORE_ROW, RES_BY_META | RES_BY_EDGED},
    {"node", false, RES_ACK_UPDATE_ONLY, RES_REMOTE_FIRST_DEFAULT_NS, RES_STORE_ROW, RES_BY_META},
    {"nodepatch", false, RES_NO_ACK, RES_LOCAL, RES_STORE_NOT_REPLY, RES_BY_META},
    {"podpatch", false, RES_NO_ACK, RES_LOCAL, RES_STORE_NOT_REPLY, RES_BY_META},
    {"podstatus", false, RES_NO_ACK, RES_LOCAL, RES_STORE_ROW, RES_BY_META},
    {"podlist", true, RES_NO_ACK, RES_LOCAL, RES_STORE_ROW, RES_BY_META},
    {"lease", false, RES_NO_ACK, RES_REMOTE_FIRST, RES_STORE_ROW, RES_BY_META},
    {"certificatesigningrequest", false, RES_NO_ACK, RES_REMOTE_FIRST, RES_STORE_ROW, RES_BY_META},
    {"serviceaccounttoken", true, RES_NO_ACK, RES_REMOTE_FIRST, RES_STORE_ROW, RES_BY_META},
    {"k8s/ca.crt", true, RES_NO_ACK, RES_REMOTE_FIRST, RES_STORE_ROW, RES_BY_META},
    {"persistentvolume", false, RES_ACK, RES_REMOTE_FIRST, RES_STORE_ROW, RES_BY_META},
    {"persistentvolumeclaim", false, RES_ACK, RES_REMOTE_FIRST, RES_STORE_ROW, RES_BY_META},
    {"volumeattachment", false, RES_ACK, RES_REMOTE_FIRST, RES_STORE_ROW, RES_BY_META},
    {"device", false, RES_ACK, RES_LOCAL, RES_STORE_BY_DEVICES, RES_BY_DEVICES},
    {"devicemodel", false, RES_ACK, RES_LOCAL, RES_STORE_BY_DEVICES, RES_BY_DEVICES},
    /* the plugin's: group twin, never stored here; named for their ack rule */
    {"membership", true, RES_NO_ACK, RES_LOCAL, RES_STORE_NONE, RES_BY_PLUGIN},
    {"twin/cloud_updated", true, RES_NO_ACK, RES_LOCAL, RES_STORE_NONE, RES_BY_PLUGIN},
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

const struct resource_kind *resource_find(const char *type)
{
    size_t i;

    for (i = 0; type && i < N_KINDS; i++)
        if (!strcmp(type, kinds[i].type))
            return &kinds[i];
    return NULL;
}

int resource_type_of(const char *resource, char *type, size_t n)
{
    const char *a = resource ? strchr(resource, '/') : NULL, *b;
    size_t len;

    if (!a)
        return -1;
    b = strchr(a + 1, '/');
    len = b ? (size_t)(b - a - 1) : strlen(a + 1);
    if (!len || len >= n)
        return -1;
    memcpy(type, a + 1, len);
    type[len] = '\0';
    return 0;
}

/* Whether the type element of resource is `type` (no length limit, unlike resource_type_of:
 * the ack rule reads any resource the cloud sends). */
static bool type_is(const char *resource, const char *type)
{
    const char *p = resource ? strchr(resource, '/') : NULL;
    size_t n = strlen(type);

    return p && !strncmp(p + 1, type, n) && (p[1 + n] == '/' || p[1 + n] == '\0');
}

static bool matches(const struct resource_kind *k, const char *resource)
{
    if (k->anywhere)
        return resource && strstr(resource, k->type);
    return type_is(resource, k->type);
}

bool resource_needs_ack(const struct kedge_msg *m)
{
    size_t i;

    if (!m->msg_id || (m->group && !strcmp(m->group, "user")))
        return false;
    if (m->operation && !strcmp(m->operation, "response"))
        return false;
    for (i = 0; i < N_KINDS; i++) {
        const struct resource_kind *k = &kinds[i];
        if (k->ack == RES_ACK || !matches(k, m->resource))
            continue;
        if (k->ack == RES_NO_ACK)
            return false;
        if (!(m->operation && !strcmp(m->operation, "update"))) /* RES_ACK_UPDATE_ONLY */
            return false;
    }
    return true;
}

bool resource_remote_first(const char *type, const char *node_namespace)
{
    const struct resource_kind *k = resource_find(type);

    if (!k)
        return false;
    if (k->remote == RES_REMOTE_FIRST_DEFAULT_NS)
        return node_namespace && !strcmp(node_namespace, "default");
    return k->remote == RES_REMOTE_FIRST;
}

static unsigned consumers_of(const char *type)
{
    const struct resource_kind *k = resource_find(type);

    return k ? k->consumers : RES_BY_META;
}

bool resource_wants_edged(const char *type)
{
    return (consumers_of(type) & RES_BY_EDGED) != 0;
}

bool resource_for_devices(const char *type)
{
    return (consumers_of(type) & RES_BY_DEVICES) != 0;
}

bool resource_reply_stored(const char *type)
{
    const struct resource_kind *k = resource_find(type);

    return !k || k->store != RES_STORE_NOT_REPLY;
}

bool resource_delete_by_uid(const char *type)
{
    const struct resource_kind *k = resource_find(type);

    return k && k->store == RES_STORE_POD;
}
