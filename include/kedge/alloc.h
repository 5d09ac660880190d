/* Allocation through one switchable set of functions.
 *
 * In the plugin they wrap mosquitto_malloc/mosquitto_free, so any buffer may be handed to the
 * broker (mosquitto_broker_publish frees payloads with its own allocator); in the bridge and the
 * tools they are libc. Test builds can make the Nth allocation fail so the unit tests can walk
 * every allocation-failure path.
 */
#ifndef KEDGE_ALLOC_H
#define KEDGE_ALLOC_H

#include <stddef.h>

struct kedge_allocator {
    void *(*malloc)(size_t size);
    void *(*realloc)(void *ptr, size_t size);
    void (*free)(void *ptr);
};

/* Install the allocator; NULL restores libc. Call before anything is allocated. */
void kedge_alloc_set(const struct kedge_allocator *a);

void *kedge_malloc(size_t size);
void *kedge_calloc(size_t n, size_t size); /* zeroed; NULL on overflow */
void *kedge_realloc(void *ptr, size_t size);
void kedge_free(void *ptr);        /* NULL is a no-op */
char *kedge_strdup(const char *s); /* NULL in, NULL out */
char *kedge_strndup(const char *s, size_t len);

/* Replace *slot (freed) with a copy of v, "" for NULL. Returns 0 or -ENOMEM (*slot kept). */
int kedge_replace_str(char **slot, const char *v);

/* Make room for one more element in an array of n elements of elem bytes: *items_slot (the
 * address of the array pointer) is reallocated to twice *cap, or to first when empty, when
 * n == *cap. Returns 0 or -ENOMEM (the array and *cap unchanged). */
int kedge_array_grow(void *items_slot, size_t *cap, size_t n, size_t elem, size_t first);

/* Free every pointer of ptrs[0..n): a destructor's owned fields in one call, through
 * kedge_free_all(o->a, o->b, ...), which counts them. */
void kedge_free_each(void *const ptrs[], size_t n);
#define kedge_free_all(...)                                                                        \
    kedge_free_each((void *const[]){__VA_ARGS__},                                                  \
                    sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))

/* Test hook: allocations succeed n more times, then fail; n < 0 turns failure off.
 * Returns how many allocations have been made since the last call (for loop tests). */
long kedge_alloc_fail_after(long n);

#endif
