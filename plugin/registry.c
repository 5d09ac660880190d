/* The in-memory device table: a chained hash of devices by id (each device's twins are kept
 * by device.c). The registry owns the devices; store.c fills it at start and refreshes single
 * devices after a failed request or commit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "registry.h"

struct reg_entry {
    struct reg_entry *next;
    uint32_t hash;
    struct kedge_device *dev;
};

struct registry {
    struct reg_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
};

static uint32_t hash_id(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

int registry_new(struct registry **out)
{
    struct registry *r = kedge_calloc(1, sizeof(*r));

    *out = NULL;
    if (!r)
        return -ENOMEM;
    r->nbuckets = 64;
    r->buckets = kedge_calloc(r->nbuckets, sizeof(*r->buckets));
    if (!r->buckets) {
        kedge_free(r);
        return -ENOMEM;
    }
    *out = r;
    return 0;
}

void registry_clear(struct registry *r)
{
    size_t i;

    for (i = 0; i < r->nbuckets; i++) {
        struct reg_entry *e = r->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            kedge_device_free(e->dev);
            kedge_free(e);
        }
        r->buckets[i] = NULL;
    }
    r->count = 0;
}

void registry_free(struct registry *r)
{
    if (!r)
        return;
    registry_clear(r);
    kedge_free(r->buckets);
    kedge_free(r);
}

static struct reg_entry **slot_of(const struct registry *r, const char *id, size_t len, uint32_t h)
{
    struct reg_entry **pp = &r->buckets[h & (r->nbuckets - 1)];

    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && strlen((*pp)->dev->id) == len && !memcmp((*pp)->dev->id, id, len))
            return pp;
    return pp;
}

struct kedge_device *registry_find(const struct registry *r, const char *id, size_t id_len)
{
    struct reg_entry **pp = slot_of(r, id, id_len, hash_id(id, id_len));

    return *pp ? (*pp)->dev : NULL;
}

/* Double the table when the load factor passes 1; on -ENOMEM the table just stays fuller. */
static void maybe_grow(struct registry *r)
{
    size_t n = r->nbuckets * 2, i;
    struct reg_entry **nb;

    if (r->count < r->nbuckets)
        return;
    nb = kedge_calloc(n, sizeof(*nb));
    if (!nb)
        return;
    for (i = 0; i < r->nbuckets; i++) {
        struct reg_entry *e = r->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
        }
    }
    kedge_free(r->buckets);
    r->buckets = nb;
    r->nbuckets = n;
}

int registry_put(struct registry *r, struct kedge_device *dev)
{
    size_t len = strlen(dev->id);
    uint32_t h = hash_id(dev->id, len);
    struct reg_entry **pp = slot_of(r, dev->id, len, h), *e;

    if (*pp) {
        if ((*pp)->dev != dev)
            kedge_device_free((*pp)->dev);
        (*pp)->dev = dev;
        return 0;
    }
    e = kedge_malloc(sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->next = NULL;
    e->hash = h;
    e->dev = dev;
    *pp = e;
    r->count++;
    maybe_grow(r);
    return 0;
}

void registry_remove(struct registry *r, const char *id)
{
    size_t len = strlen(id);
    struct reg_entry **pp = slot_of(r, id, len, hash_id(id, len)), *e = *pp;

    if (!e)
        return;
    *pp = e->next;
    kedge_device_free(e->dev);
    kedge_free(e);
    r->count--;
}

size_t registry_count(const struct registry *r)
{
    return r->count;
}

static int cmp_dev(const void *a, const void *b)
{
    const struct kedge_device *x = *(const struct kedge_device *const *)a;
    const struct kedge_device *y = *(const struct kedge_device *const *)b;

    return strcmp(x->id, y->id);
}

int registry_sorted(const struct registry *r, const struct kedge_device ***out, size_t *n)
{
    const struct kedge_device **arr;
    size_t i, k = 0;

    *out = NULL;
    *n = 0;
    arr = kedge_calloc(r->count ? r->count : 1, sizeof(*arr));
    if (!arr)
        return -ENOMEM;
    for (i = 0; i < r->nbuckets; i++) {
        const struct reg_entry *e;
        for (e = r->buckets[i]; e; e = e->next)
            arr[k++] = e->dev;
    }
    qsort(arr, k, sizeof(*arr), cmp_dev);
    *out = arr;
    *n = k;
    return 0;
}
