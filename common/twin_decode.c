/* DeviceTwin requests decoded the way Go's encoding/json does (include/kedge/twin.h,
 * docs/kubeedge-wire.md §2): twin updates, membership, twin/get and state requests. A type error
 * anywhere fails the whole message, as Unmarshal does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/twin.h"

/* A JSON string field into an owned C string. null/absent leave *out NULL. A string with an
 * embedded NUL cannot be a valid twin key/value anyway; it is cut there. */
static int get_string(const struct kedge_jval *v, char **out)
{
    *out = NULL;
    if (kedge_json_is_null(v))
        return 0;
    if (v->type != KEDGE_JSTR)
        return KEDGE_EPARSE;
    *out = kedge_strndup(v->str, v->len);
    return *out ? 0 : -ENOMEM;
}

static int get_bool(const struct kedge_jval *v, bool *present, bool *out)
{
    if (kedge_json_is_null(v))
        return 0;
    if (v->type != KEDGE_JBOOL)
        return KEDGE_EPARSE;
    *present = true;
    *out = v->boolean;
    return 0;
}

static int get_int(const struct kedge_jval *v, int64_t *out)
{
    return kedge_json_int64(v, out) < 0 ? KEDGE_EPARSE : 0;
}

/* Go's decoding into a struct: null leaves it alone (0), an object is decoded (1), anything
 * else fails the whole message. */
static int decode_value(const struct kedge_jval *v, struct kedge_twin_value *out)
{
    const struct kedge_jval *meta, *value;
    size_t i;
    int rc;

    if ((rc = kedge_json_optional_object(v, KEDGE_EPARSE)) <= 0)
        return rc;
    out->present = true;
    value = kedge_json_get(v, "value");
    rc = get_string(value, &out->value);
    if (rc < 0)
        return rc;
    /* Go's regexp sees every byte of "25\u0000x" and rejects it; cut at the NUL it would
     * pass as "25". A space fails the same check and keeps the length. */
    for (i = 0; out->value && i < value->len; i++)
        if (out->value[i] == '\0')
            out->value[i] = ' ';
    meta = kedge_json_get(v, "metadata");
    if ((rc = kedge_json_optional_object(meta, KEDGE_EPARSE)) <= 0)
        return rc;
    out->has_meta = true;
    return get_int(kedge_json_get(meta, "timestamp"), &out->ts);
}

static int decode_version(const struct kedge_jval *v, bool *has, struct kedge_twin_version *out)
{
    int rc;

    if ((rc = kedge_json_optional_object(v, KEDGE_EPARSE)) <= 0)
        return rc;
    *has = true;
    rc = get_int(kedge_json_get(v, "cloud"), &out->cloud);
    if (rc == 0)
        rc = get_int(kedge_json_get(v, "edge"), &out->edge);
    return rc;
}

static int decode_twin(const struct kedge_jval *v, struct kedge_twin *t)
{
    const struct kedge_jval *meta;
    int rc;

    if (kedge_json_is_null(v)) {
        t->is_null = true;
        return 0;
    }
    if (v->type != KEDGE_JOBJ)
        return KEDGE_EPARSE;
    rc = decode_value(kedge_json_get(v, "expected"), &t->expected);
    if (rc == 0)
        rc = decode_value(kedge_json_get(v, "actual"), &t->actual);
    if (rc == 0)
        rc = get_bool(kedge_json_get(v, "optional"), &t->has_optional, &t->optional);
    if (rc == 0)
        rc = decode_version(kedge_json_get(v, "expected_version"), &t->has_ev, &t->ev);
    if (rc == 0)
        rc = decode_version(kedge_json_get(v, "actual_version"), &t->has_av, &t->av);
    if (rc < 0)
        return rc;
    meta = kedge_json_get(v, "metadata");
    if ((rc = kedge_json_optional_object(meta, KEDGE_EPARSE)) <= 0)
        return rc;
    t->has_meta = true;
    {
        char *type = NULL;
        rc = get_string(kedge_json_get(meta, "type"), &type);
        if (rc == 0)
            rc = kedge_twin_set_type(t, type ? type : "");
        kedge_free(type);
    }
    return rc;
}

static int cmp_twin_name(const void *a, const void *b)
{
    return strcmp(((const struct kedge_twin *)a)->name, ((const struct kedge_twin *)b)->name);
}

/* The twin map: one entry per distinct key (Go map: the last duplicate wins), sorted. */
static int decode_twin_map(const struct kedge_jval *map, struct kedge_twin_update *out)
{
    const struct kedge_jval *m;
    size_t i = 0;
    int rc;

    out->twins = kedge_calloc(map->n ? map->n : 1, sizeof(*out->twins));
    if (!out->twins)
        return -ENOMEM;
    for (m = map->child; m; m = m->next) {
        if (kedge_json_get_exact(map, m->key, m->key_len) != m)
            continue; /* a later duplicate wins */
        /* keys with an embedded NUL can never pass the key check; keep the text up to it */
        out->twins[i].name = kedge_strndup(m->key, m->key_len);
        if (!out->twins[i].name)
            return -ENOMEM;
        out->n = ++i;
        if (strlen(out->twins[i - 1].name) != m->key_len)
            out->twins[i - 1].name[0] = '\0'; /* forces the key check to fail */
        rc = decode_twin(m, &out->twins[i - 1]);
        if (rc < 0)
            return rc;
    }
    qsort(out->twins, out->n, sizeof(*out->twins), cmp_twin_name);
    return 0;
}

static int check_charsets(const struct kedge_twin_update *u)
{
    size_t i;

    for (i = 0; i < u->n; i++) {
        const struct kedge_twin *t = &u->twins[i];
        if (!kedge_twin_key_valid(t->name, strlen(t->name)))
            return KEDGE_ETWINKEY;
        if (t->expected.value && *t->expected.value &&
            !kedge_twin_value_valid(t->expected.value, strlen(t->expected.value)))
            return KEDGE_ETWINVALUE;
        if (t->actual.value && *t->actual.value &&
            !kedge_twin_value_valid(t->actual.value, strlen(t->actual.value)))
            return KEDGE_ETWINVALUE;
    }
    return 0;
}

static int decode_base(const struct kedge_jval *root, char **event_id, int64_t *ts)
{
    int rc;

    if (root->type == KEDGE_JNULL)
        return 0; /* json.Unmarshal("null") leaves the struct alone */
    if (root->type != KEDGE_JOBJ)
        return KEDGE_EPARSE;
    rc = get_string(kedge_json_get(root, "event_id"), event_id);
    if (rc == 0 && ts)
        rc = get_int(kedge_json_get(root, "timestamp"), ts);
    return rc;
}

/* Parse buf and its BaseMessage: *doc is set whenever the JSON parsed (the caller frees it). */
static int parse_base(const char *buf, size_t len, struct kedge_jdoc **doc,
                      const struct kedge_jval **root, char **event_id, int64_t *ts)
{
    int rc = kedge_json_parse(buf, len, doc);

    if (rc < 0) {
        *doc = NULL;
        *root = NULL;
        return rc;
    }
    *root = kedge_jdoc_root(*doc);
    return decode_base(*root, event_id, ts);
}

int kedge_twin_update_decode(const char *buf, size_t len, struct kedge_twin_update *out)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *twin;
    char *event_id;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = parse_base(buf, len, &doc, &root, &out->event_id, &out->timestamp);
    if (rc < 0)
        goto out;
    twin = kedge_json_get(root, "twin");
    if (kedge_json_is_null(twin)) {
        rc = KEDGE_ENOTWIN;
        goto out;
    }
    if (twin->type != KEDGE_JOBJ) {
        rc = KEDGE_EPARSE;
        goto out;
    }
    rc = decode_twin_map(twin, out);
    if (rc == 0)
        rc = check_charsets(out);
out:
    kedge_jdoc_free(doc);
    if (rc < 0) {
        event_id = out->event_id;
        out->event_id = NULL;
        kedge_twin_update_cleanup(out);
        out->event_id = event_id;
    }
    return rc;
}

/* MsgAttr: {"value","optional","metadata":{"type"}} -> stored attribute (MsgAttrToDeviceAttr:
 * optional defaults to true, type to string). */
static int decode_attr(const struct kedge_jval *v, struct kedge_attr *a)
{
    const struct kedge_jval *meta;
    bool has_opt = false;
    int rc;

    a->optional = true;
    if (v->type != KEDGE_JOBJ)
        return KEDGE_EPARSE;
    rc = get_string(kedge_json_get(v, "value"), &a->value);
    if (rc == 0)
        rc = get_bool(kedge_json_get(v, "optional"), &has_opt, &a->optional);
    if (rc < 0)
        return rc;
    meta = kedge_json_get(v, "metadata");
    if (!kedge_json_is_null(meta)) {
        if (meta->type != KEDGE_JOBJ)
            return KEDGE_EPARSE;
        rc = get_string(kedge_json_get(meta, "type"), &a->type);
        if (rc < 0)
            return rc;
        if (!a->type && !(a->type = kedge_strdup("")))
            return -ENOMEM;
    } else if (!(a->type = kedge_strdup(KEDGE_TYPE_STRING))) {
        return -ENOMEM;
    }
    if (!a->value && !(a->value = kedge_strdup("")))
        return -ENOMEM;
    return 0;
}

static int cmp_attr_name(const void *x, const void *y)
{
    return strcmp(((const struct kedge_attr *)x)->name, ((const struct kedge_attr *)y)->name);
}

static int decode_device(const struct kedge_jval *v, struct kedge_device **out)
{
    struct kedge_device *d = kedge_calloc(1, sizeof(*d));
    const struct kedge_jval *m, *attrs, *twins;
    struct kedge_twin_update tw = {0};
    int rc;

    *out = NULL;
    if (!d)
        return -ENOMEM;
    rc = v->type == KEDGE_JOBJ ? 0 : KEDGE_EPARSE;
    if (rc == 0)
        rc = get_string(kedge_json_get(v, "id"), &d->id);
    if (rc == 0)
        rc = get_string(kedge_json_get(v, "name"), &d->name);
    if (rc == 0)
        rc = get_string(kedge_json_get(v, "description"), &d->description);
    if (rc == 0)
        rc = get_string(kedge_json_get(v, "state"), &d->state);
    if (rc == 0)
        rc = get_string(kedge_json_get(v, "last_online"), &d->last_online);
    if (rc == 0 && (!d->id || !*d->id))
        rc = KEDGE_ESCHEMA;
    attrs = kedge_json_get(v, "attributes");
    if (rc == 0 && !kedge_json_is_null(attrs)) {
        if (attrs->type != KEDGE_JOBJ)
            rc = KEDGE_EPARSE;
        else if (!(d->attrs = kedge_calloc(attrs->n ? attrs->n : 1, sizeof(*d->attrs))))
            rc = -ENOMEM;
        for (m = attrs->child; rc == 0 && m; m = m->next) {
            if (kedge_json_get_exact(attrs, m->key, m->key_len) != m || m->type == KEDGE_JNULL)
                continue;
            struct kedge_attr *a = &d->attrs[d->n_attrs++];
            a->name = kedge_strndup(m->key, m->key_len);
            rc = a->name ? decode_attr(m, a) : -ENOMEM;
        }
        if (rc == 0)
            qsort(d->attrs, d->n_attrs, sizeof(*d->attrs), cmp_attr_name);
    }
    twins = kedge_json_get(v, "twin");
    if (rc == 0 && !kedge_json_is_null(twins)) {
        rc = twins->type == KEDGE_JOBJ ? decode_twin_map(twins, &tw) : KEDGE_EPARSE;
        d->twins = tw.twins;
        d->n_twins = d->cap_twins = tw.n;
        tw.twins = NULL;
        tw.n = 0;
    }
    kedge_twin_update_cleanup(&tw);
    if (rc < 0) {
        kedge_device_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

static int decode_device_list(const struct kedge_jval *arr, struct kedge_device ***out, size_t *n)
{
    const struct kedge_jval *e;
    int rc = 0;

    if (kedge_json_is_null(arr))
        return 0;
    if (arr->type != KEDGE_JARR)
        return KEDGE_EPARSE;
    *out = kedge_calloc(arr->n ? arr->n : 1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    for (e = arr->child; e && rc == 0; e = e->next) {
        rc = decode_device(e, &(*out)[*n]);
        if (rc == 0)
            (*n)++;
    }
    return rc;
}

void kedge_membership_cleanup(struct kedge_membership *m)
{
    size_t i;

    if (!m)
        return;
    for (i = 0; i < m->n_added; i++)
        kedge_device_free(m->added[i]);
    for (i = 0; i < m->n_removed; i++)
        kedge_device_free(m->removed[i]);
    kedge_free(m->added);
    kedge_free(m->removed);
    kedge_free(m->event_id);
    memset(m, 0, sizeof(*m));
}

int kedge_membership_decode(const char *buf, size_t len, struct kedge_membership *out)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = parse_base(buf, len, &doc, &root, &out->event_id, &out->timestamp);
    if (rc == 0 && root->type == KEDGE_JOBJ)
        rc = decode_device_list(kedge_json_get(root, "added_devices"), &out->added, &out->n_added);
    if (rc == 0 && root->type == KEDGE_JOBJ)
        rc = decode_device_list(kedge_json_get(root, "removed_devices"), &out->removed,
                                &out->n_removed);
    kedge_jdoc_free(doc);
    if (rc < 0)
        kedge_membership_cleanup(out);
    return rc;
}

int kedge_twin_event_id_decode(const char *buf, size_t len, char **event_id)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root;
    int64_t ts = 0;
    int rc;

    *event_id = NULL;
    rc = parse_base(buf, len, &doc, &root, event_id, &ts);
    kedge_jdoc_free(doc);
    if (rc < 0) {
        kedge_free(*event_id);
        *event_id = NULL;
    } else if (!*event_id) {
        *event_id = kedge_strdup("");
        rc = *event_id ? 0 : -ENOMEM;
    }
    return rc;
}

/* DeviceUpdate: BaseMessage, state, attributes (map of MsgAttr). Type errors anywhere make
 * Go's Unmarshal fail, and edgecore then stays silent. */
/* Go's Unmarshal into a field of this type: absent or null is fine, another type is not. */
static bool member_is(const struct kedge_jval *obj, const char *key, enum kedge_jtype type)
{
    const struct kedge_jval *f = kedge_json_get(obj, key);

    return kedge_json_is_null(f) || f->type == type;
}

static int check_attrs(const struct kedge_jval *attrs)
{
    const struct kedge_jval *a, *meta;
    int rc;

    if ((rc = kedge_json_optional_object(attrs, KEDGE_EPARSE)) <= 0)
        return rc;
    for (a = attrs->child; a; a = a->next) {
        if ((rc = kedge_json_optional_object(a, KEDGE_EPARSE)) <= 0) {
            if (rc < 0)
                return rc;
            continue;
        }
        if (!member_is(a, "value", KEDGE_JSTR) || !member_is(a, "optional", KEDGE_JBOOL))
            return KEDGE_EPARSE;
        meta = kedge_json_get(a, "metadata");
        if ((rc = kedge_json_optional_object(meta, KEDGE_EPARSE)) < 0)
            return rc;
        if (rc == 1 && !member_is(meta, "type", KEDGE_JSTR))
            return KEDGE_EPARSE;
    }
    return 0;
}

int kedge_twin_state_decode(const char *buf, size_t len, char **state)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root;
    char *event_id = NULL;
    int64_t ts = 0;
    int rc;

    *state = NULL;
    rc = parse_base(buf, len, &doc, &root, &event_id, &ts);
    if (rc == 0 && root->type == KEDGE_JOBJ)
        rc = check_attrs(kedge_json_get(root, "attributes"));
    if (rc == 0 && root->type == KEDGE_JOBJ)
        rc = get_string(kedge_json_get(root, "state"), state);
    if (rc == 0 && !*state) {
        *state = kedge_strdup("");
        rc = *state ? 0 : -ENOMEM;
    }
    kedge_free(event_id);
    kedge_jdoc_free(doc);
    if (rc < 0) {
        kedge_free(*state);
        *state = NULL;
    }
    return rc;
}
