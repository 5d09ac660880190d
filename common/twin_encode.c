/* DeviceTwin results encoded the way edgecore prints them (include/kedge/twin.h,
 * docs/kubeedge-wire.md §2): twin and twin-get results, documents, deltas, membership and state.
 */
#include <string.h>

#include "kedge/json.h"
#include "kedge/twin.h"

static void write_value(struct kedge_jw *w, const char *key, const struct kedge_twin_value *v)
{
    if (!v->present)
        return;
    kedge_jw_key(w, key);
    kedge_jw_obj_open(w);
    if (v->value)
        kedge_jw_kstr(w, "value", v->value);
    if (v->has_meta) {
        kedge_jw_key(w, "metadata");
        kedge_jw_obj_open(w);
        if (v->ts)
            kedge_jw_kint(w, "timestamp", v->ts);
        kedge_jw_obj_close(w);
    }
    kedge_jw_obj_close(w);
}

static void write_version(struct kedge_jw *w, const char *key, const struct kedge_twin_version *v)
{
    kedge_jw_key(w, key);
    kedge_jw_obj_open(w);
    kedge_jw_kint(w, "cloud", v->cloud);
    kedge_jw_kint(w, "edge", v->edge);
    kedge_jw_obj_close(w);
}

void kedge_twin_write(struct kedge_jw *w, const struct kedge_twin *t, unsigned flags)
{
    kedge_jw_obj_open(w);
    write_value(w, "expected", &t->expected);
    write_value(w, "actual", &t->actual);
    if (t->has_optional) {
        kedge_jw_key(w, "optional");
        kedge_jw_bool(w, t->optional);
    }
    if (t->has_meta) {
        kedge_jw_key(w, "metadata");
        kedge_jw_obj_open(w);
        if (t->type && *t->type)
            kedge_jw_kstr(w, "type", t->type);
        kedge_jw_obj_close(w);
    }
    if ((flags & KEDGE_TWIN_VERSIONS) && t->has_ev)
        write_version(w, "expected_version", &t->ev);
    if ((flags & KEDGE_TWIN_VERSIONS) && t->has_av)
        write_version(w, "actual_version", &t->av);
    kedge_jw_obj_close(w);
}

static void write_base(struct kedge_jw *w, const char *event_id, int64_t ts)
{
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "event_id", event_id ? event_id : "");
    kedge_jw_kint(w, "timestamp", ts);
}

int kedge_twin_error_encode(struct kedge_buf *b, const char *event_id, int64_t ts, int code,
                            const char *reason)
{
    struct kedge_jw w;

    kedge_jw_init(&w, b);
    write_base(&w, event_id, ts);
    if (code)
        kedge_jw_kint(&w, "code", code);
    if (reason && *reason)
        kedge_jw_kstr(&w, "reason", reason);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

/* {"event_id":...,"timestamp":...,"<key>":{ : the start of a message with one object member
 * ("twin", "device"). */
static void open_msg(struct kedge_jw *w, struct kedge_buf *b, const char *event_id, int64_t ts,
                     const char *key)
{
    kedge_jw_init(w, b);
    write_base(w, event_id, ts);
    kedge_jw_key(w, key);
    kedge_jw_obj_open(w);
}

/* }} and the writer's verdict. */
static int close_msg(struct kedge_jw *w)
{
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
    return kedge_jw_finish(w);
}

static void write_twin_or_null(struct kedge_jw *w, const struct kedge_twin *t, unsigned flags)
{
    if (t)
        kedge_twin_write(w, t, flags);
    else
        kedge_jw_null(w);
}

int kedge_twin_map_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                          const struct kedge_twin_ref *refs, size_t n, unsigned flags)
{
    struct kedge_jw w;
    size_t i;

    open_msg(&w, b, event_id, ts, "twin");
    for (i = 0; i < n; i++) {
        kedge_jw_key(&w, refs[i].name);
        write_twin_or_null(&w, refs[i].twin, flags);
    }
    return close_msg(&w);
}

int kedge_twin_document_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                               const struct kedge_twin_doc *docs, size_t n)
{
    struct kedge_jw w;
    size_t i;

    open_msg(&w, b, event_id, ts, "twin");
    for (i = 0; i < n; i++) {
        kedge_jw_key(&w, docs[i].name);
        kedge_jw_obj_open(&w);
        kedge_jw_key(&w, "last");
        write_twin_or_null(&w, docs[i].last, 0);
        kedge_jw_key(&w, "current");
        write_twin_or_null(&w, docs[i].current, 0);
        kedge_jw_obj_close(&w);
    }
    return close_msg(&w);
}

static bool is_deleted(const struct kedge_twin *t)
{
    return t->has_meta && t->type && !strcmp(t->type, KEDGE_TYPE_DELETED);
}

static const char *value_text(const struct kedge_twin_value *v)
{
    return v->present && v->value ? v->value : "";
}

int kedge_twin_delta_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                            const struct kedge_twin *twins, size_t n, bool *has_delta)
{
    struct kedge_jw w;
    size_t i;

    *has_delta = false;
    open_msg(&w, b, event_id, ts, "twin");
    for (i = 0; i < n; i++) {
        if (is_deleted(&twins[i]) || !*value_text(&twins[i].expected))
            continue;
        kedge_jw_key(&w, twins[i].name);
        kedge_twin_write(&w, &twins[i], 0);
    }
    kedge_jw_obj_close(&w);
    kedge_jw_key(&w, "delta");
    kedge_jw_obj_open(&w);
    for (i = 0; i < n; i++) {
        const char *exp = value_text(&twins[i].expected);
        if (is_deleted(&twins[i]) || !*exp || !strcmp(exp, value_text(&twins[i].actual)))
            continue;
        kedge_jw_kstr(&w, twins[i].name, exp);
        *has_delta = true;
    }
    return close_msg(&w);
}

static void write_opt_str(struct kedge_jw *w, const char *key, const char *s)
{
    if (s && *s)
        kedge_jw_kstr(w, key, s);
}

/* dttype.Device; with_twins adds "twin" (versions stripped, deleted twins null) as
 * MarshalMembershipUpdate prints it. */
static void write_device(struct kedge_jw *w, const struct kedge_device *d, bool with_twins)
{
    size_t i;

    kedge_jw_obj_open(w);
    write_opt_str(w, "id", d->id);
    write_opt_str(w, "name", d->name);
    write_opt_str(w, "description", d->description);
    write_opt_str(w, "state", d->state);
    write_opt_str(w, "last_online", d->last_online);
    if (d->n_attrs) {
        kedge_jw_key(w, "attributes");
        kedge_jw_obj_open(w);
        for (i = 0; i < d->n_attrs; i++) {
            const struct kedge_attr *a = &d->attrs[i];
            kedge_jw_key(w, a->name);
            kedge_jw_obj_open(w);
            kedge_jw_kstr(w, "value", a->value ? a->value : "");
            kedge_jw_key(w, "optional");
            kedge_jw_bool(w, a->optional);
            kedge_jw_key(w, "metadata");
            kedge_jw_obj_open(w);
            write_opt_str(w, "type", a->type);
            kedge_jw_obj_close(w);
            kedge_jw_obj_close(w);
        }
        kedge_jw_obj_close(w);
    }
    if (with_twins && d->n_twins) {
        kedge_jw_key(w, "twin");
        kedge_jw_obj_open(w);
        for (i = 0; i < d->n_twins; i++) {
            const struct kedge_twin *t = &d->twins[i];
            kedge_jw_key(w, t->name);
            if (t->is_null || is_deleted(t))
                kedge_jw_null(w);
            else
                kedge_twin_write(w, t, 0);
        }
        kedge_jw_obj_close(w);
    }
    kedge_jw_obj_close(w);
}

int kedge_membership_updated_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                                    const struct kedge_device *added,
                                    const struct kedge_device *removed)
{
    struct kedge_jw w;
    int i;

    kedge_jw_init(&w, b);
    write_base(&w, event_id, ts);
    for (i = 0; i < 2; i++) {
        const struct kedge_device *d = i == 0 ? added : removed;
        kedge_jw_key(&w, i == 0 ? "added_devices" : "removed_devices");
        if (!d) {
            kedge_jw_null(&w);
            continue;
        }
        kedge_jw_arr_open(&w);
        write_device(&w, d, true);
        kedge_jw_arr_close(&w);
    }
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

int kedge_membership_get_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                                const struct kedge_device *const *devs, size_t n)
{
    struct kedge_jw w;
    size_t i;

    kedge_jw_init(&w, b);
    write_base(&w, event_id, ts);
    kedge_jw_key(&w, "devices");
    kedge_jw_arr_open(&w);
    for (i = 0; i < n; i++)
        write_device(&w, devs[i], false);
    kedge_jw_arr_close(&w);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

int kedge_state_result_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                              const char *name, const char *state, const char *last_online)
{
    struct kedge_jw w;

    open_msg(&w, b, event_id, ts, "device");
    write_opt_str(&w, "name", name);
    write_opt_str(&w, "state", state);
    write_opt_str(&w, "lastOnlineTime", last_online);
    return close_msg(&w);
}
