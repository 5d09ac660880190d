/* smpatch.c: the strategic merge patch the API server applies to a status patch
 * (k8s.io/apimachinery/pkg/util/strategicpatch), as far as the patches kubelet and kedge send
 * need it. Nodes (nodes.c) and Pods (ctlpods.c) are patched with it; each passes the lists
 * its type merges.
 *
 *  - Objects merge key by key; a null value deletes its key.
 *  - A list the caller names (patchStrategy "merge" in k8s.io/api, with its patchMergeKey)
 *    merges element by element: a patch element merges into the base element with the same key
 *    value, elements the patch does not name stay where they are, new ones are appended.
 *  - Every other list (listType atomic: e.g. PodStatus.containerStatuses) and every scalar is
 *    replaced by the patch's value.
 *  - Keys that start with "$" are directives ($setElementOrder/..., $retainKeys, $patch) that
 *    client-go's two-way patches carry. They are not data, so they are dropped: the order stays
 *    the base's and no directive deletes an element.
 */
#include <errno.h>
#include <string.h>

#include "cloudsim.h"
#include "kedge/err.h"
#include "kedge/msg.h"

/* A member key that may hold NUL bytes, as kedge_json_write_value writes them. */
static void write_key(struct kedge_jw *w, const struct kedge_jval *member)
{
    if (w->need_comma[w->depth])
        (void)kedge_buf_putc(w->out, ',');
    w->need_comma[w->depth] = true;
    if (kedge_json_escape(w->out, member->key, member->key_len) < 0 ||
        kedge_buf_putc(w->out, ':') < 0)
        w->err = w->err ? w->err : -ENOMEM;
    w->after_key = true;
}

static bool key_is(const struct kedge_jval *member, const char *name)
{
    return member->key_len == strlen(name) && memcmp(member->key, name, member->key_len) == 0;
}

static bool is_directive(const struct kedge_jval *member)
{
    return member->key_len > 0 && member->key[0] == '$';
}

/* The patchMergeKey of the list under `member`, or NULL when that list is replaced. */
static const char *merge_key_of(const struct smp_list *lists, const struct kedge_jval *member)
{
    for (; member && lists->name; lists++)
        if (key_is(member, lists->name))
            return lists->key;
    return NULL;
}

/* e's string member `key`, or NULL. */
static const struct kedge_jval *elem_key(const struct kedge_jval *e, const char *key)
{
    const struct kedge_jval *k = kedge_json_get_exact(e, key, strlen(key));

    return k && k->type == KEDGE_JSTR ? k : NULL;
}

static const struct kedge_jval *find_elem(const struct kedge_jval *arr, const char *key,
                                          const struct kedge_jval *want)
{
    const struct kedge_jval *e, *k;

    for (e = arr->child; e; e = e->next)
        if ((k = elem_key(e, key)) && k->len == want->len && memcmp(k->str, want->str, k->len) == 0)
            return e;
    return NULL;
}

/* A patch value as data: without its null members (they delete, and there is nothing to
 * delete) and without directives. */
static void write_patch_value(struct kedge_jw *w, const struct kedge_jval *p)
{
    const struct kedge_jval *c;

    if (p->type != KEDGE_JOBJ) {
        kedge_json_write_value(w, p);
        return;
    }
    kedge_jw_obj_open(w);
    for (c = p->child; c; c = c->next) {
        if (c->type == KEDGE_JNULL || is_directive(c))
            continue;
        write_key(w, c);
        write_patch_value(w, c);
    }
    kedge_jw_obj_close(w);
}

static void merge(struct kedge_jw *w, const struct smp_list *lists, const struct kedge_jval *member,
                  const struct kedge_jval *base, const struct kedge_jval *patch);

static void merge_objects(struct kedge_jw *w, const struct smp_list *lists,
                          const struct kedge_jval *base, const struct kedge_jval *patch)
{
    const struct kedge_jval *c, *p;

    kedge_jw_obj_open(w);
    for (c = base->child; c; c = c->next) {
        p = kedge_json_get_exact(patch, c->key, c->key_len);
        if (p && p->type == KEDGE_JNULL)
            continue;
        write_key(w, c);
        if (p)
            merge(w, lists, c, c, p);
        else
            kedge_json_write_value(w, c);
    }
    for (p = patch->child; p; p = p->next) {
        if (p->type == KEDGE_JNULL || is_directive(p) ||
            kedge_json_get_exact(base, p->key, p->key_len))
            continue;
        write_key(w, p);
        write_patch_value(w, p);
    }
    kedge_jw_obj_close(w);
}

static void merge_lists(struct kedge_jw *w, const struct smp_list *lists, const char *key,
                        const struct kedge_jval *base, const struct kedge_jval *patch)
{
    const struct kedge_jval *c, *p, *k;

    kedge_jw_arr_open(w);
    for (c = base->child; c; c = c->next) {
        p = (k = elem_key(c, key)) ? find_elem(patch, key, k) : NULL;
        if (p)
            merge(w, lists, NULL, c, p);
        else
            kedge_json_write_value(w, c);
    }
    for (p = patch->child; p; p = p->next)
        if (!(k = elem_key(p, key)) || !find_elem(base, key, k))
            write_patch_value(w, p);
    kedge_jw_arr_close(w);
}

/* base merged with patch. member: base's member (for its key), or NULL at the root and for
 * list elements. */
static void merge(struct kedge_jw *w, const struct smp_list *lists, const struct kedge_jval *member,
                  const struct kedge_jval *base, const struct kedge_jval *patch)
{
    const char *key;

    if (base->type == KEDGE_JOBJ && patch->type == KEDGE_JOBJ)
        merge_objects(w, lists, base, patch);
    else if (base->type == KEDGE_JARR && patch->type == KEDGE_JARR &&
             (key = merge_key_of(lists, member)))
        merge_lists(w, lists, key, base, patch);
    else
        write_patch_value(w, patch);
}

int smp_apply(const char *base, size_t base_len, const char *patch, size_t patch_len,
              const struct smp_list *lists, struct kedge_buf *out)
{
    struct kedge_jdoc *b = NULL, *p = NULL;
    struct kedge_jw w;
    int rc;

    rc = kedge_json_parse(base, base_len, &b);
    if (rc == 0)
        rc = kedge_json_parse(patch, patch_len, &p);
    if (rc == 0 && kedge_jdoc_root(p)->type != KEDGE_JOBJ)
        rc = KEDGE_ESCHEMA;
    if (rc == 0) {
        kedge_jw_init(&w, out);
        merge(&w, lists, NULL, kedge_jdoc_root(b), kedge_jdoc_root(p));
        rc = kedge_jw_finish(&w);
    }
    kedge_jdoc_free(b);
    kedge_jdoc_free(p);
    return rc;
}
