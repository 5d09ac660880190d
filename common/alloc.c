/* The switchable allocator behind include/kedge/alloc.h, with a fail-after-N hook for tests. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"

static struct kedge_allocator cur = {malloc, realloc, free};
static long fail_countdown = -1; /* < 0: never fail */
static long alloc_count;

void kedge_alloc_set(const struct kedge_allocator *a)
{
    if (a) {
        cur = *a;
    } else {
        cur.malloc = malloc;
        cur.realloc = realloc;
        cur.free = free;
    }
}

long kedge_alloc_fail_after(long n)
{
    long made = alloc_count;

    fail_countdown = n;
    alloc_count = 0;
    return made;
}

static int should_fail(void)
{
    alloc_count++;
    if (fail_countdown < 0)
        return 0;
    if (fail_countdown == 0)
        return 1;
    fail_countdown--;
    return 0;
}

void *kedge_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    return cur.malloc(size ? size : 1);
}

void *kedge_calloc(size_t n, size_t size)
{
    void *p;

    if (size && n > (size_t)-1 / size)
        return NULL;
    p = kedge_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *kedge_realloc(void *ptr, size_t size)
{
    if (should_fail())
        return NULL;
    return cur.realloc(ptr, size ? size : 1);
}

void kedge_free(void *ptr)
{
    if (ptr)
        cur.free(ptr);
}

char *kedge_strndup(const char *s, size_t len)
{
    char *d;

    if (!s)
        return NULL;
    d = kedge_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *kedge_strdup(const char *s)
{
    return s ? kedge_strndup(s, strlen(s)) : NULL;
}

int kedge_replace_str(char **slot, const char *v)
{
    char *d = kedge_strdup(v ? v : "");

    if (!d)
        return -ENOMEM;
    kedge_free(*slot);
    *slot = d;
    return 0;
}

void kedge_free_each(void *const ptrs[], size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        kedge_free(ptrs[i]);
}

int kedge_array_grow(void *items_slot, size_t *cap, size_t n, size_t elem, size_t first)
{
    size_t want = *cap ? *cap * 2 : first;
    void *items, *grown;

    if (n < *cap)
        return 0;
    if (*cap > (size_t)-1 / 2 || (elem && want > (size_t)-1 / elem))
        return -ENOMEM;
    /* through memcpy: the slot is a typed pointer (struct reply **), not a void ** */
    memcpy(&items, items_slot, sizeof(items));
    grown = kedge_realloc(items, want * elem);
    if (!grown)
        return -ENOMEM;
    memcpy(items_slot, &grown, sizeof(grown));
    *cap = want;
    return 0;
}
