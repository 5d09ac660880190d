/* Devices, attributes and twins in KubeEdge's tables (device, device_attr, device_twin;
 * docs/kubeedge-wire.md §3): loading them into the registry, and the writes a request makes into
 * the open transaction (store.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"
#include "registry.h"
#include "store.h"
#include "store_int.h"

/* ---- reading ---------------------------------------------------------------------------- */

static char *col_dup(sqlite3_stmt *st, int col, int *err)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    char *d;

    if (!t)
        return NULL;
    d = kedge_strndup((const char *)t, (size_t)sqlite3_column_bytes(st, col));
    if (!d)
        *err = -ENOMEM;
    return d;
}

/* NULL for NULL and "": the empty description/metadata columns of most rows cost nothing. */
static char *col_dup_nonempty(sqlite3_stmt *st, int col, int *err)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    return t && *t ? col_dup(st, col, err) : NULL;
}

/* Non-NULL copy ("" for NULL). */
static char *col_dup0(sqlite3_stmt *st, int col, int *err)
{
    char *d = col_dup(st, col, err);

    if (!d && !*err) {
        d = kedge_strdup("");
        if (!d)
            *err = -ENOMEM;
    }
    return d;
}

/* beego stores bool as 1/0; tolerate 'true'/'false' text from other writers. */
static bool col_bool(sqlite3_stmt *st, int col)
{
    const unsigned char *t;

    if (sqlite3_column_type(st, col) == SQLITE_INTEGER)
        return sqlite3_column_int64(st, col) != 0;
    t = sqlite3_column_text(st, col);
    return t && (!strcmp((const char *)t, "true") || !strcmp((const char *)t, "1"));
}

/* Go writes these compactly ({"timestamp":T}, {"cloud":C,"edge":E}); a malformed value reads
 * as 0, as Go's ignored Unmarshal error leaves it. quoted_key includes the quotes. */
static int64_t json_int_field(const char *json, const char *quoted_key)
{
    const char *p = json ? strstr(json, quoted_key) : NULL;

    if (!p)
        return 0;
    p += strlen(quoted_key);
    while (*p == ' ' || *p == ':')
        p++;
    return strtoll(p, NULL, 10);
}

static void load_value(sqlite3_stmt *st, int vcol, int mcol, struct kedge_twin_value *v, int *err)
{
    const unsigned char *val = sqlite3_column_text(st, vcol);
    const unsigned char *meta;

    /* DeviceTwinToMsgTwin: an empty value means no expected/actual at all. */
    if (!val || !*val)
        return;
    v->present = true;
    v->value = col_dup(st, vcol, err);
    meta = sqlite3_column_text(st, mcol);
    if (meta && *meta) {
        v->has_meta = true;
        v->ts = json_int_field((const char *)meta, "\"timestamp\"");
    }
}

static void load_version(sqlite3_stmt *st, int col, bool *has, struct kedge_twin_version *v)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    if (!t || !*t)
        return;
    *has = true;
    v->cloud = json_int_field((const char *)t, "\"cloud\"");
    v->edge = json_int_field((const char *)t, "\"edge\"");
}

/* Columns as TWIN_COLS: 0 deviceid 1 name 2 description 3 expected 4 actual 5 expected_meta
 * 6 actual_meta 7 expected_version 8 actual_version 9 optional 10 attr_type 11 metadata */
static int twin_from_row(sqlite3_stmt *st, struct kedge_twin *t)
{
    int err = 0;

    memset(t, 0, sizeof(*t));
    t->name = col_dup0(st, 1, &err);
    t->description = col_dup_nonempty(st, 2, &err);
    load_value(st, 3, 5, &t->expected, &err);
    load_value(st, 4, 6, &t->actual, &err);
    load_version(st, 7, &t->has_ev, &t->ev);
    load_version(st, 8, &t->has_av, &t->av);
    t->has_optional = true;
    t->optional = col_bool(st, 9);
    t->has_meta = true;
    if (kedge_twin_set_type(t, (const char *)sqlite3_column_text(st, 10)) < 0)
        err = -ENOMEM;
    t->meta_col = col_dup_nonempty(st, 11, &err);
    if (err)
        kedge_twin_cleanup(t);
    return err;
}

/* Columns as ATTR_COLS: 0 deviceid 1 name 2 description 3 value 4 optional 5 attr_type
 * 6 metadata */
static int attr_from_row(sqlite3_stmt *st, struct kedge_attr *a)
{
    int err = 0;

    memset(a, 0, sizeof(*a));
    a->name = col_dup0(st, 1, &err);
    a->description = col_dup(st, 2, &err);
    a->value = col_dup0(st, 3, &err);
    a->optional = col_bool(st, 4);
    a->type = col_dup0(st, 5, &err);
    a->meta_col = col_dup(st, 6, &err);
    if (err)
        kedge_attr_cleanup(a);
    return err;
}

static int device_from_row(sqlite3_stmt *st, struct kedge_device **out)
{
    struct kedge_device *d = kedge_calloc(1, sizeof(*d));
    int err = 0;

    *out = NULL;
    if (!d)
        return -ENOMEM;
    d->id = col_dup0(st, 0, &err);
    d->name = col_dup0(st, 1, &err);
    d->description = col_dup0(st, 2, &err);
    d->state = col_dup0(st, 3, &err);
    d->last_online = col_dup0(st, 4, &err);
    if (err) {
        kedge_device_free(d);
        return err;
    }
    *out = d;
    return 0;
}

/* Rows come ordered by name, so appending is the common case; a duplicate name (edgecore's
 * table has no unique key) replaces the earlier row, as Go's map assignment does. */
static int add_twin(struct kedge_device *d, struct kedge_twin *t)
{
    struct kedge_twin *old;

    if (d->n_twins < d->cap_twins &&
        (!d->n_twins || strcmp(d->twins[d->n_twins - 1].name, t->name) < 0)) {
        d->twins[d->n_twins++] = *t;
        return 0;
    }
    old = device_twin_find(d, t->name);
    if (old) {
        kedge_twin_cleanup(old);
        *old = *t;
        return 0;
    }
    if (!device_twin_insert(d, t))
        return -ENOMEM;
    return 0;
}

static int add_attr(struct kedge_device *d, struct kedge_attr *a)
{
    struct kedge_attr *na;
    size_t i;

    for (i = 0; i < d->n_attrs; i++) {
        if (!strcmp(d->attrs[i].name, a->name)) {
            kedge_attr_cleanup(&d->attrs[i]);
            d->attrs[i] = *a;
            return 0;
        }
    }
    na = kedge_realloc(d->attrs, (d->n_attrs + 1) * sizeof(*na));
    if (!na)
        return -ENOMEM;
    d->attrs = na;
    d->attrs[d->n_attrs++] = *a; /* rows arrive sorted by name */
    return 0;
}

typedef struct kedge_device *(*device_lookup)(void *ctx, const char *id);

/* Fill twins and attrs from a statement whose column 0 is the device id. */
static int load_children(struct store *s, sqlite3_stmt *st, bool twins, device_lookup find,
                         void *ctx)
{
    int rc, err = 0;

    while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *id = sqlite3_column_text(st, 0);
        struct kedge_device *d = id ? find(ctx, (const char *)id) : NULL;
        if (!d)
            continue; /* a row for a device that no longer exists */
        if (twins) {
            struct kedge_twin t;
            err = twin_from_row(st, &t);
            if (err == 0 && (err = add_twin(d, &t)) < 0)
                kedge_twin_cleanup(&t);
        } else {
            struct kedge_attr a;
            err = attr_from_row(st, &a);
            if (err == 0 && (err = add_attr(d, &a)) < 0)
                kedge_attr_cleanup(&a);
        }
    }
    if (err == 0)
        err = store_step_error(s, rc, "load");
    sqlite3_reset(st);
    return err;
}

static struct kedge_device *find_in_registry(void *ctx, const char *id)
{
    return registry_find(ctx, id, strlen(id));
}

static struct kedge_device *find_single(void *ctx, const char *id)
{
    struct kedge_device *d = ctx;

    return !strcmp(d->id, id) ? d : NULL;
}

/* Give each device's twin array room to grow by appends while loading. */
static int reserve_twins(struct kedge_device *d)
{
    if (d->cap_twins)
        return 0;
    d->twins = kedge_calloc(4, sizeof(*d->twins));
    if (!d->twins)
        return -ENOMEM;
    d->cap_twins = 4;
    return 0;
}

/* Every device's twin array at its final size before the rows arrive: no growth by doubling
 * (slack and realloc churn were a third of the load time and a fifth of the memory). */
static int reserve_all(struct store *s, struct registry *r)
{
    sqlite3_stmt *st = s->st[ST_TWIN_COUNTS];
    int rc, err = 0;

    while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *id = sqlite3_column_text(st, 0);
        struct kedge_device *d =
            id ? registry_find(r, (const char *)id, strlen((const char *)id)) : NULL;
        sqlite3_int64 n = sqlite3_column_int64(st, 1);
        if (!d || n <= 0 || d->cap_twins)
            continue;
        d->twins = kedge_calloc((size_t)n, sizeof(*d->twins));
        if (!d->twins)
            err = -ENOMEM;
        else
            d->cap_twins = (size_t)n;
    }
    if (err == 0)
        err = store_step_error(s, rc, "count twins");
    sqlite3_reset(st);
    return err;
}

int store_load_all(struct store *s, struct registry *r)
{
    sqlite3_stmt *st;
    int rc, err = 0;

    if (!store_ok(s))
        return KEDGE_ESTORE;
    registry_clear(r);
    st = s->st[ST_LOAD_DEVICES];
    while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct kedge_device *d;
        err = device_from_row(st, &d);
        if (err == 0 && (err = registry_put(r, d)) < 0)
            kedge_device_free(d);
    }
    if (err == 0)
        err = store_step_error(s, rc, "load devices");
    sqlite3_reset(st);
    if (err == 0)
        err = reserve_all(s, r);
    if (err == 0)
        err = load_children(s, s->st[ST_LOAD_ATTRS], false, find_in_registry, r);
    if (err == 0)
        err = load_children(s, s->st[ST_LOAD_TWINS], true, find_in_registry, r);
    if (err < 0)
        registry_clear(r);
    return err;
}

int store_load_device(struct store *s, const char *id, struct kedge_device **out)
{
    sqlite3_stmt *st;
    struct kedge_device *d = NULL;
    int rc, err;

    *out = NULL;
    if (!store_ok(s))
        return KEDGE_ESTORE;
    st = s->st[ST_ONE_DEVICE];
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        err = device_from_row(st, &d);
    else
        err = rc == SQLITE_DONE ? -ENOENT : store_step_error(s, rc, "load device");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (err == 0)
        err = reserve_twins(d);
    for (int i = 0; err == 0 && i < 2; i++) {
        st = s->st[i == 0 ? ST_ONE_ATTRS : ST_ONE_TWINS];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        err = load_children(s, st, i == 1, find_single, d);
        sqlite3_clear_bindings(st);
    }
    if (err < 0) {
        kedge_device_free(d);
        return err;
    }
    *out = d;
    return 0;
}

/* edgecore's NOT NULL text columns: an absent string is stored as "". */
static void bind_text_or_empty(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_TRANSIENT);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void bind_value(sqlite3_stmt *st, int vcol, int mcol, const struct kedge_twin_value *v)
{
    char meta[48];

    bind_text_or_null(st, vcol, v->present ? v->value : NULL);
    if (v->present && v->value && v->has_meta) {
        if (v->ts)
            (void)snprintf(meta, sizeof(meta), "{\"timestamp\":%lld}", (long long)v->ts);
        else
            (void)snprintf(meta, sizeof(meta), "{}");
        sqlite3_bind_text(st, mcol, meta, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, mcol);
    }
}

static void bind_version(sqlite3_stmt *st, int col, bool has, const struct kedge_twin_version *v)
{
    char text[64];

    if (!has) {
        sqlite3_bind_text(st, col, "", 0, SQLITE_STATIC);
        return;
    }
    (void)snprintf(text, sizeof(text), "{\"cloud\":%lld,\"edge\":%lld}", (long long)v->cloud,
                   (long long)v->edge);
    sqlite3_bind_text(st, col, text, -1, SQLITE_TRANSIENT);
}

static int write_twin(struct store *s, enum stmt_id which, const char *dev_id,
                      const struct kedge_twin *t)
{
    sqlite3_stmt *st = s->st[which];
    int rc = store_begin_write(s);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, dev_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, t->name, -1, SQLITE_TRANSIENT);
    bind_text_or_empty(st, 3, t->description);
    bind_value(st, 4, 6, &t->expected);
    bind_value(st, 5, 7, &t->actual);
    bind_version(st, 8, t->has_ev, &t->ev);
    bind_version(st, 9, t->has_av, &t->av);
    sqlite3_bind_int(st, 10, t->optional ? 1 : 0);
    bind_text_or_empty(st, 11, t->type);
    bind_text_or_empty(st, 12, t->meta_col);
    return store_finish_write(s, st, which == ST_TWIN_INSERT ? "insert twin" : "update twin");
}

int store_twin_insert(struct store *s, const char *dev_id, const struct kedge_twin *t)
{
    return write_twin(s, ST_TWIN_INSERT, dev_id, t);
}

int store_twin_update(struct store *s, const char *dev_id, const struct kedge_twin *t)
{
    return write_twin(s, ST_TWIN_UPDATE, dev_id, t);
}

int store_device_state(struct store *s, const char *dev_id, const char *state,
                       const char *last_online)
{
    sqlite3_stmt *st = s ? s->st[ST_DEVICE_STATE] : NULL;
    int rc = store_begin_write(s);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, dev_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, last_online, -1, SQLITE_TRANSIENT);
    return store_finish_write(s, st, "update device state");
}

/* ---- devices and attributes ------------------------------------------------------------- */

int store_device_insert(struct store *s, const struct kedge_device *d)
{
    sqlite3_stmt *st = s ? s->st[ST_DEVICE_INSERT] : NULL;
    int rc = store_begin_write(s);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_TRANSIENT);
    bind_text_or_empty(st, 2, d->name);
    bind_text_or_empty(st, 3, d->description);
    bind_text_or_empty(st, 4, d->state);
    bind_text_or_empty(st, 5, d->last_online);
    return store_finish_write(s, st, "insert device");
}

int store_device_delete(struct store *s, const char *id)
{
    int rc = store_exec_bound(s, ST_DEVICE_TWINS_DELETE, "delete twins", id, NULL);

    if (rc == 0)
        rc = store_exec_bound(s, ST_DEVICE_ATTRS_DELETE, "delete attributes", id, NULL);
    if (rc == 0)
        rc = store_exec_bound(s, ST_DEVICE_DELETE, "delete device", id, NULL);
    return rc;
}

int store_attr_write(struct store *s, const char *dev_id, const struct kedge_attr *a, bool insert)
{
    sqlite3_stmt *st = s ? s->st[insert ? ST_ATTR_INSERT : ST_ATTR_UPDATE] : NULL;
    int rc = store_begin_write(s);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, dev_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, a->name, -1, SQLITE_TRANSIENT);
    bind_text_or_empty(st, 3, a->description);
    bind_text_or_empty(st, 4, a->value);
    sqlite3_bind_int(st, 5, a->optional ? 1 : 0);
    bind_text_or_empty(st, 6, a->type);
    bind_text_or_empty(st, 7, a->meta_col);
    return store_finish_write(s, st, insert ? "insert attribute" : "update attribute");
}

int store_attr_delete(struct store *s, const char *dev_id, const char *name)
{
    return store_exec_bound(s, ST_ATTR_DELETE, "delete attribute", dev_id, name);
}
