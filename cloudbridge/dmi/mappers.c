/* The registry of DMI mappers (mappers.h), kept in memory and in MetaManager's table. */
#include <errno.h>
#include <string.h>

#include "convert.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"
#include "mappers.h"

#define MAPPER_TYPE "devicemapper"
/* edgecore's saveMapper: "node" / "nodeID" / "namespace" are literal words, not values */
#define MAPPER_KEY_PREFIX "node/nodeID/namespace/" MAPPER_TYPE "/"

struct dmi_mappers {
    struct metamgr *meta;
    struct dmi_mapper *v; /* oldest registration first */
    size_t n, cap;
};

static void mapper_cleanup(struct dmi_mapper *x)
{
    kedge_free_all(x->name, x->version, x->api_version, x->protocol, x->state, x->socket);
    memset(x, 0, sizeof(*x));
}

static int mapper_from_info(struct dmi_mapper *x, const V1beta1__MapperInfo *info)
{
    memset(x, 0, sizeof(*x));
    x->name = kedge_strdup(info->name);
    x->version = kedge_strdup(info->version);
    x->api_version = kedge_strdup(info->api_version);
    x->protocol = kedge_strdup(info->protocol);
    x->state = kedge_strdup(info->state);
    /* Go's string(bytes) then a dial: a NUL ends the path for the kernel anyway */
    x->socket = kedge_strndup(info->address.data ? (const char *)info->address.data : "",
                              info->address.len);
    if (!x->name || !x->version || !x->api_version || !x->protocol || !x->state || !x->socket) {
        mapper_cleanup(x);
        return -ENOMEM;
    }
    return 0;
}

static size_t index_of(const struct dmi_mappers *m, const char *name)
{
    size_t i;

    for (i = 0; i < m->n && strcmp(m->v[i].name, name); i++)
        ;
    return i;
}

/* x (owned from now on) as the newest registration; one of the same name goes. */
static int place(struct dmi_mappers *m, struct dmi_mapper *x)
{
    size_t i = index_of(m, x->name);

    if (i < m->n) {
        mapper_cleanup(&m->v[i]);
        memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
        m->n--;
    } else if (kedge_array_grow(&m->v, &m->cap, m->n, sizeof(*m->v), 4) < 0) {
        mapper_cleanup(x);
        return -ENOMEM;
    }
    m->v[m->n++] = *x;
    return 0;
}

static void restore_row(void *ctx, const char *key, const char *value)
{
    struct dmi_mappers *m = ctx;
    struct kedge_jdoc *doc = NULL;
    ProtobufCMessage *info = NULL;
    struct dmi_mapper x;
    char why[160] = "";
    int rc = value ? kedge_json_parse(value, strlen(value), &doc) : KEDGE_EPARSE;

    if (rc == 0)
        rc = dmi_pb_from_json(&v1beta1__mapper_info__descriptor, kedge_jdoc_root(doc), &info, why,
                              sizeof(why));
    if (rc == 0 && !*((V1beta1__MapperInfo *)info)->protocol)
        rc = kedge_schema_why(why, sizeof(why), "no protocol");
    if (rc == 0 && (rc = mapper_from_info(&x, (V1beta1__MapperInfo *)info)) == 0)
        rc = place(m, &x);
    if (rc < 0)
        kedge_log(KEDGE_LOG_WARN, "dmi: stored mapper %s not restored: %s", key,
                  *why ? why : kedge_strerror(rc));
    dmi_pb_free(info);
    kedge_jdoc_free(doc);
}

int dmi_mappers_new(struct metamgr *meta, struct dmi_mappers **out)
{
    struct dmi_mappers *m = kedge_calloc(1, sizeof(*m));

    *out = m;
    if (!m)
        return -ENOMEM;
    m->meta = meta;
    if (metamgr_list(meta, MAPPER_TYPE, restore_row, m) < 0)
        kedge_log(KEDGE_LOG_WARN, "dmi: the stored mappers cannot be read");
    if (m->n)
        kedge_log(KEDGE_LOG_INFO, "dmi: %zu mapper(s) restored from the meta table", m->n);
    return 0;
}

void dmi_mappers_free(struct dmi_mappers *m)
{
    if (!m)
        return;
    while (m->n)
        mapper_cleanup(&m->v[--m->n]);
    kedge_free(m->v);
    kedge_free(m);
}

int dmi_mappers_register(struct dmi_mappers *m, const V1beta1__MapperInfo *info)
{
    struct kedge_buf key = KEDGE_BUF_INIT, value = KEDGE_BUF_INIT;
    struct dmi_mapper x;
    int rc = kedge_buf_printf(&key, MAPPER_KEY_PREFIX "%s", info->name);

    if (rc == 0)
        rc = dmi_mapper_info_json(info, &value);
    if (rc == 0)
        rc = metamgr_put_typed(m->meta, key.data, MAPPER_TYPE, value.data, value.len);
    if (rc == 0)
        rc = mapper_from_info(&x, info);
    if (rc == 0) {
        x.registered_ms = kedge_wall_ms();
        rc = place(m, &x);
    }
    kedge_buf_cleanup(&key);
    kedge_buf_cleanup(&value);
    return rc;
}

struct dmi_mapper *dmi_mappers_of_protocol(struct dmi_mappers *m, const char *protocol)
{
    size_t i;

    for (i = m->n; protocol && i-- > 0;)
        if (!strcmp(m->v[i].protocol, protocol))
            return &m->v[i];
    return NULL;
}

size_t dmi_mappers_count(const struct dmi_mappers *m)
{
    return m->n;
}

const struct dmi_mapper *dmi_mappers_at(const struct dmi_mappers *m, size_t i)
{
    return i < m->n ? &m->v[i] : NULL;
}
