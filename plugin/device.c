/* One device's twins: a name-sorted array (the order Go prints map keys in), searched by
 * binary search.
 */
#include <string.h>

#include "kedge/alloc.h"
#include "device.h"

/* Binary search; *pos gets the insertion point when absent. */
static struct kedge_twin *twin_search(const struct kedge_device *d, const char *name, size_t *pos)
{
    size_t lo = 0, hi = d->n_twins;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(d->twins[mid].name, name);
        if (c == 0) {
            if (pos)
                *pos = mid;
            return &d->twins[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return NULL;
}

struct kedge_twin *device_twin_find(const struct kedge_device *d, const char *name)
{
    return twin_search(d, name, NULL);
}

struct kedge_twin *device_twin_insert(struct kedge_device *d, struct kedge_twin *t)
{
    size_t pos;

    if (twin_search(d, t->name, &pos))
        return NULL; /* callers insert only absent names */
    if (kedge_array_grow(&d->twins, &d->cap_twins, d->n_twins, sizeof(*d->twins), 4) < 0)
        return NULL;
    memmove(&d->twins[pos + 1], &d->twins[pos], (d->n_twins - pos) * sizeof(*t));
    d->twins[pos] = *t;
    d->n_twins++;
    memset(t, 0, sizeof(*t));
    return &d->twins[pos];
}
