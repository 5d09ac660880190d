/* meta_stub.h: MetaManager's table in memory. Rows are libc-allocated, so that the suites'
 * counting allocator sees only what the module under test allocates. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "meta/metamanager.h"
#include "meta_stub.h"

struct meta_stub_row meta_stub_rows[META_STUB_MAX];
int meta_stub_n;
int meta_stub_fail;

static struct meta_stub_row *find(const char *key)
{
    int i;

    for (i = 0; i < meta_stub_n; i++)
        if (!strcmp(meta_stub_rows[i].key, key))
            return &meta_stub_rows[i];
    return NULL;
}

const struct meta_stub_row *meta_stub_find(const char *key)
{
    return find(key);
}

void meta_stub_put(const char *key, const char *type, const char *value)
{
    struct meta_stub_row *r = find(key);

    if (!r) {
        if (meta_stub_n == META_STUB_MAX)
            abort();
        r = &meta_stub_rows[meta_stub_n++];
        r->key = strdup(key);
    } else {
        free(r->type);
        free(r->value);
    }
    r->type = strdup(type);
    r->value = strdup(value);
}

void meta_stub_reset(void)
{
    while (meta_stub_n) {
        struct meta_stub_row *r = &meta_stub_rows[--meta_stub_n];
        free(r->key);
        free(r->type);
        free(r->value);
    }
    meta_stub_fail = 0;
}

int metamgr_put_typed(struct metamgr *mm, const char *key, const char *type, const char *value,
                      size_t len)
{
    char *v;

    (void)mm;
    if (meta_stub_fail)
        return KEDGE_ESTORE;
    v = strndup(value, len);
    meta_stub_put(key, type, v);
    free(v);
    return 0;
}

int metamgr_get(struct metamgr *mm, const char *key, char **value)
{
    const struct meta_stub_row *r = find(key);

    (void)mm;
    *value = NULL;
    if (meta_stub_fail)
        return KEDGE_ESTORE;
    if (!r)
        return -ENOENT;
    *value = kedge_strdup(r->value);
    return *value ? 0 : -ENOMEM;
}

int metamgr_list(struct metamgr *mm, const char *type, metamgr_row_fn fn, void *ctx)
{
    int i;

    (void)mm;
    if (meta_stub_fail)
        return KEDGE_ESTORE;
    for (i = 0; i < meta_stub_n; i++)
        if (!strcmp(meta_stub_rows[i].type, type))
            fn(ctx, meta_stub_rows[i].key, meta_stub_rows[i].value);
    return 0;
}
