/* Folding device state messages (include/kedge/coalesce.h). */
#include <errno.h>
#include <string.h>

#include "kedge/coalesce.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/msg.h"

#define DEVICE_PREFIX "device/"

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return n > k && !memcmp(s + n - k, suffix, k);
}

enum kedge_coalesce_kind kedge_coalesce_kind(const char *resource)
{
    size_t n = resource ? strlen(resource) : 0, p = strlen(DEVICE_PREFIX);

    if (n <= p || memcmp(resource, DEVICE_PREFIX, p))
        return KEDGE_COALESCE_NONE;
    /* the id between prefix and suffix must not be empty: "device//twin/edge_updated" is no
     * device's subject */
    if (ends_with(resource, n, "/twin/edge_updated") && n > p + strlen("/twin/edge_updated"))
        return KEDGE_COALESCE_TWIN;
    if (ends_with(resource, n, "/state/update") && n > p + strlen("/state/update"))
        return KEDGE_COALESCE_STATE;
    return KEDGE_COALESCE_NONE;
}

/* Byte order of two object keys, as Go sorts map keys. */
static int key_cmp(const struct kedge_jval *a, const struct kedge_jval *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);

    if (c)
        return c;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

static void write_member(struct kedge_jw *w, const struct kedge_jval *m)
{
    kedge_jw_key_n(w, m->key, m->key_len);
    kedge_json_write_value(w, m);
}

/* The older map overlaid by the newer one. Members of each are sorted already when they come
 * from Go or from kedge, but a foreign sender need not be: an unsorted input is merged by
 * lookup instead, which keeps the result right at a quadratic cost for that rare message. */
static bool sorted(const struct kedge_jval *map)
{
    const struct kedge_jval *c;

    for (c = map ? map->child : NULL; c && c->next; c = c->next)
        if (key_cmp(c, c->next) >= 0)
            return false;
    return true;
}

static void write_merged_map(struct kedge_jw *w, const struct kedge_jval *older,
                             const struct kedge_jval *newer)
{
    const struct kedge_jval *a = older ? older->child : NULL, *b = newer ? newer->child : NULL;

    kedge_jw_obj_open(w);
    if (!sorted(older) || !sorted(newer)) {
        for (; a; a = a->next)
            if (!kedge_json_get_exact(newer, a->key, a->key_len))
                write_member(w, a);
        for (; b; b = b->next)
            write_member(w, b);
        kedge_jw_obj_close(w);
        return;
    }
    while (a || b) {
        int c = !a ? 1 : !b ? -1 : key_cmp(a, b);
        if (c < 0) {
            write_member(w, a);
            a = a->next;
        } else {
            write_member(w, b);
            b = b->next;
            if (c == 0)
                a = a->next;
        }
    }
    kedge_jw_obj_close(w);
}

static const struct kedge_jval *twin_map(const struct kedge_jval *content)
{
    const struct kedge_jval *t =
        content && content->type == KEDGE_JOBJ ? kedge_json_get(content, "twin") : NULL;

    return t && t->type == KEDGE_JOBJ ? t : NULL;
}

/* The newer content with its twin map merged over the older one. */
static int merge_content(const struct kedge_jval *older, const struct kedge_jval *newer,
                         struct kedge_buf *out)
{
    const struct kedge_jval *ot = twin_map(older), *nt = twin_map(newer), *c;
    struct kedge_jw w;

    if (!ot || !nt)
        return KEDGE_ESCHEMA;
    kedge_jw_init(&w, out);
    kedge_jw_obj_open(&w);
    for (c = newer->child; c; c = c->next) {
        if (c == nt) {
            kedge_jw_key_n(&w, c->key, c->key_len);
            write_merged_map(&w, ot, nt);
        } else {
            write_member(&w, c);
        }
    }
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

static int parse_content(const struct kedge_msg *m, struct kedge_jdoc **doc)
{
    int rc = kedge_json_parse(m->content, m->content_len, doc);

    return rc == -ENOMEM ? rc : rc < 0 ? KEDGE_ESCHEMA : 0;
}

int kedge_coalesce_merge(enum kedge_coalesce_kind kind, const char *older, size_t older_len,
                         const char *newer, size_t newer_len, struct kedge_buf *out)
{
    struct kedge_msg om = {0}, nm = {0};
    struct kedge_jdoc *od = NULL, *nd = NULL;
    struct kedge_buf content = KEDGE_BUF_INIT;
    char *keep;
    size_t keep_len;
    int rc;

    rc = kedge_msg_decode(newer, newer_len, &nm);
    if (rc == 0 && kind == KEDGE_COALESCE_STATE)
        rc = kedge_buf_append(out, newer, newer_len);
    if (rc < 0 || kind != KEDGE_COALESCE_TWIN)
        goto out;
    rc = kedge_msg_decode(older, older_len, &om);
    if (rc == 0)
        rc = parse_content(&om, &od);
    if (rc == 0)
        rc = parse_content(&nm, &nd);
    if (rc == 0)
        rc = merge_content(kedge_jdoc_root(od), kedge_jdoc_root(nd), &content);
    if (rc < 0)
        goto out;
    keep = nm.content;
    keep_len = nm.content_len;
    nm.content = content.data;
    nm.content_len = content.len;
    rc = kedge_msg_encode(out, &nm, false);
    nm.content = keep;
    nm.content_len = keep_len;
out:
    kedge_jdoc_free(od);
    kedge_jdoc_free(nd);
    kedge_buf_cleanup(&content);
    kedge_msg_cleanup(&om);
    kedge_msg_cleanup(&nm);
    return rc == -ENOMEM ? rc : rc < 0 ? KEDGE_ESCHEMA : 0;
}
