/* runtime.c: the observed-container struct's helpers, shared by every runtime and by Edged. */
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "runtime.h"

void observed_container_cleanup(struct observed_container *o)
{
    kedge_free_all(o->id, o->name, o->image, o->image_id, o->state, o->error, o->ip);
    memset(o, 0, sizeof(*o));
}

static int dup_or_null(char **dst, const char *src)
{
    *dst = src ? kedge_strdup(src) : NULL;
    return src && !*dst ? -ENOMEM : 0;
}

int observed_container_copy(struct observed_container *dst, const struct observed_container *src)
{
    int rc = 0;

    *dst = *src;
    rc |= dup_or_null(&dst->id, src->id);
    rc |= dup_or_null(&dst->name, src->name);
    rc |= dup_or_null(&dst->image, src->image);
    rc |= dup_or_null(&dst->image_id, src->image_id);
    rc |= dup_or_null(&dst->state, src->state);
    rc |= dup_or_null(&dst->error, src->error);
    rc |= dup_or_null(&dst->ip, src->ip);
    if (rc) {
        observed_container_cleanup(dst);
        return -ENOMEM;
    }
    return 0;
}
