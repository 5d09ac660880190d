/* ctlstore.c: the small object store cloudsim's controllers answer from: objects the edge
 * inserts or updates and objects the cloud sends down, keyed by resource (controllers.c says
 * which controller reads what). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"
#include "ctlpriv.h"

/* ---- the store ------------------------------------------------------------------------------- */

int res_split(const char *resource, struct res *r)
{
    const char *a = resource ? strchr(resource, '/') : NULL;
    const char *b = a ? strchr(a + 1, '/') : NULL;
    int n;

    memset(r, 0, sizeof(*r));
    if (!a || !b || !b[1])
        return -1;
    if ((size_t)(a - resource) >= sizeof(r->ns) || (size_t)(b - a - 1) >= sizeof(r->type) ||
        strlen(b + 1) >= sizeof(r->name))
        return -1;
    memcpy(r->ns, resource, (size_t)(a - resource));
    memcpy(r->type, a + 1, (size_t)(b - a - 1));
    n = snprintf(r->name, sizeof(r->name), "%s", b + 1);
    return n < 0 ? -1 : 0;
}

/* The store type of a resource type: patches and status updates act on their object. */
static const char *store_type(const char *type)
{
    if (strcmp(type, "nodepatch") == 0 || strcmp(type, "nodestatus") == 0)
        return "node";
    if (strcmp(type, "podpatch") == 0 || strcmp(type, "podstatus") == 0)
        return "pod";
    return type;
}

static int object_key(const struct res *r, char *out, size_t out_len)
{
    const char *t = store_type(r->type);
    int n;

    if (strcmp(t, "node") == 0) /* the node's namespace varies by version (null/default/...) */
        n = snprintf(out, out_len, "node/%s", r->name);
    else
        n = snprintf(out, out_len, "%s/%s/%s", r->ns, t, r->name);
    return n < 0 || (size_t)n >= out_len ? -1 : 0;
}

struct object *object_find(struct controllers *c, const struct res *r)
{
    char key[600];
    struct object *o;

    if (object_key(r, key, sizeof(key)) < 0)
        return NULL;
    for (o = c->objects; o; o = o->next)
        if (strcmp(o->key, key) == 0)
            return o;
    return NULL;
}

/* Store json under r. rv: the version to record, NULL = the next of our own. */
int object_put(struct controllers *c, const struct res *r, const char *json, size_t len,
               const char *rv)
{
    struct object *o = object_find(c, r), **tail;
    char key[600];
    char *copy;

    if (object_key(r, key, sizeof(key)) < 0)
        return 0; /* not storable; nothing to remember */
    copy = kedge_strndup(json, len);
    if (!copy)
        return -ENOMEM;
    if (!o) {
        o = kedge_calloc(1, sizeof(*o));
        if (!o || !(o->key = kedge_strdup(key))) {
            kedge_free(o);
            kedge_free(copy);
            return -ENOMEM;
        }
        for (tail = &c->objects; *tail; tail = &(*tail)->next)
            ; /* appended: GET /pods lists them in the order they came */
        *tail = o;
    }
    kedge_free(o->json);
    o->json = copy;
    o->len = len;
    if (rv && *rv)
        (void)snprintf(o->rv, sizeof(o->rv), "%s", rv);
    else
        (void)snprintf(o->rv, sizeof(o->rv), "%llu", ++c->next_rv);
    return 0;
}

void object_free(struct object *o)
{
    if (!o)
        return;
    kedge_free(o->key);
    kedge_free(o->json);
    kedge_free(o);
}

void object_delete(struct controllers *c, const struct res *r)
{
    struct object **pp, *o;
    char key[600];

    if (object_key(r, key, sizeof(key)) < 0)
        return;
    for (pp = &c->objects; (o = *pp); pp = &o->next) {
        if (strcmp(o->key, key) == 0) {
            *pp = o->next;
            object_free(o);
            return;
        }
    }
}

/* The JSON a message carries: a string holding JSON is that JSON (spec fact 18). */
void content_json(const struct kedge_msg *m, const char **json, size_t *len)
{
    struct kedge_jdoc *doc = NULL;

    *json = m->content ? m->content : "null";
    *len = m->content ? m->content_len : 4;
    if (m->content_is_string && kedge_json_parse(m->content_str, m->content_str_len, &doc) == 0) {
        *json = m->content_str;
        *len = m->content_str_len;
    }
    kedge_jdoc_free(doc);
}

bool content_is_object(const char *json, size_t len)
{
    struct kedge_jdoc *doc = NULL;
    bool obj = kedge_json_parse(json, len, &doc) == 0 && kedge_jdoc_root(doc)->type == KEDGE_JOBJ;

    kedge_jdoc_free(doc);
    return obj;
}

bool is_node(const struct res *r)
{
    return strcmp(store_type(r->type), "node") == 0;
}

void view_get(struct controllers *c, const struct res *r, struct view *v)
{
    struct object *o;

    memset(v, 0, sizeof(*v));
    if (is_node(r)) {
        v->found = nodes_get(c->nodes, r->name, &v->json, &v->len, &v->rv) == 0;
        return;
    }
    o = object_find(c, r);
    if (o) {
        v->json = o->json;
        v->len = o->len;
        v->rv = o->rv;
        v->found = true;
    }
}

/* The legacy nodestatus update {"UID":..,"Status":{..},"ExtendResources":..} as a status patch. */
int legacy_status_patch(const char *json, size_t len, struct kedge_buf *out)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *st;
    struct kedge_jw w;
    int rc = kedge_json_parse(json, len, &doc);

    if (rc < 0)
        return rc;
    st = kedge_json_get(kedge_jdoc_root(doc), "Status");
    if (!st || st->type != KEDGE_JOBJ) {
        kedge_jdoc_free(doc);
        return KEDGE_ESCHEMA;
    }
    kedge_jw_init(&w, out);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "status");
    kedge_json_write_value(&w, st);
    kedge_jw_obj_close(&w);
    rc = kedge_jw_finish(&w);
    kedge_jdoc_free(doc);
    return rc;
}
