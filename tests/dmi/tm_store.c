/* tm_store.c: the devices and models kedge gave the test mapper, and how the events show them
 * (testmapper.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "google/protobuf/wrappers.pb-c.h"
#include "kedge/alloc.h"
#include "testmapper.h"

const struct tm_entry *tm_list_find(const struct tm_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].name, name))
            return &l->v[i];
    return NULL;
}

int tm_list_put(struct tm_list *l, const char *name, const ProtobufCMessage *m)
{
    struct tm_entry *e = (struct tm_entry *)tm_list_find(l, name);
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *packed = kedge_malloc(len ? len : 1);

    if (!packed)
        return -ENOMEM;
    (void)protobuf_c_message_pack(m, packed);
    if (!e) {
        char *copy = kedge_strdup(name);

        if (!copy || kedge_array_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v), 8) < 0) {
            kedge_free(copy);
            kedge_free(packed);
            return -ENOMEM;
        }
        e = &l->v[l->n++];
        e->name = copy;
        e->packed = NULL;
    }
    kedge_free(e->packed);
    e->packed = packed;
    e->len = len;
    return 0;
}

bool tm_list_remove(struct tm_list *l, const char *name)
{
    struct tm_entry *e = (struct tm_entry *)tm_list_find(l, name);

    if (!e)
        return false;
    kedge_free(e->name);
    kedge_free(e->packed);
    memmove(e, e + 1, (size_t)(&l->v[l->n] - (e + 1)) * sizeof(*e));
    l->n--;
    return true;
}

void tm_list_free(struct tm_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        kedge_free(l->v[i].name);
        kedge_free(l->v[i].packed);
    }
    kedge_free(l->v);
    memset(l, 0, sizeof(*l));
}

void tm_list_names(struct kedge_jw *w, const struct tm_list *l)
{
    kedge_jw_arr_open(w);
    for (size_t i = 0; i < l->n; i++)
        kedge_jw_str(w, l->v[i].name);
    kedge_jw_arr_close(w);
}

/* ---- the events' view of a device -------------------------------------------------------- */

static bool type_is(const char *url, const char *type)
{
    size_t ul = strlen(url), tl = strlen(type);

    return ul >= tl && !strcmp(url + ul - tl, type) && (ul == tl || url[ul - tl - 1] == '/');
}

/* One google.protobuf.Any of a configData map, as edgecore's dataToAny makes them. */
static void any_json(struct kedge_jw *w, const Google__Protobuf__Any *a)
{
    const char *url = a && a->type_url ? a->type_url : "";
    char num[64];

    if (type_is(url, "google.protobuf.StringValue")) {
        Google__Protobuf__StringValue *s =
            google__protobuf__string_value__unpack(NULL, a->value.len, a->value.data);

        kedge_jw_str(w, s ? s->value : "?bad StringValue");
        if (s)
            google__protobuf__string_value__free_unpacked(s, NULL);
    } else if (type_is(url, "google.protobuf.FloatValue")) {
        Google__Protobuf__FloatValue *f =
            google__protobuf__float_value__unpack(NULL, a->value.len, a->value.data);

        if (f) {
            (void)snprintf(num, sizeof(num), "%.9g", (double)f->value);
            kedge_jw_raw(w, num, strlen(num));
            google__protobuf__float_value__free_unpacked(f, NULL);
        } else {
            kedge_jw_str(w, "?bad FloatValue");
        }
    } else if (type_is(url, "google.protobuf.BoolValue")) {
        Google__Protobuf__BoolValue *b =
            google__protobuf__bool_value__unpack(NULL, a->value.len, a->value.data);

        if (b) {
            kedge_jw_bool(w, b->value);
            google__protobuf__bool_value__free_unpacked(b, NULL);
        } else {
            kedge_jw_str(w, "?bad BoolValue");
        }
    } else {
        char what[300];

        (void)snprintf(what, sizeof(what), "?%s", url);
        kedge_jw_str(w, what);
    }
}

static void config_json(struct kedge_jw *w, const V1beta1__CustomizedValue *cv)
{
    kedge_jw_obj_open(w);
    for (size_t i = 0; cv && i < cv->n_data; i++) {
        kedge_jw_key(w, cv->data[i]->key ? cv->data[i]->key : "");
        any_json(w, cv->data[i]->value);
    }
    kedge_jw_obj_close(w);
}

static void properties_json(struct kedge_jw *w, const V1beta1__DeviceSpec *s)
{
    kedge_jw_key(w, "desired");
    kedge_jw_obj_open(w);
    for (size_t i = 0; s && i < s->n_properties; i++)
        if (s->properties[i]->desired)
            kedge_jw_kstr(w, s->properties[i]->name, s->properties[i]->desired->value);
    kedge_jw_obj_close(w);
    kedge_jw_key(w, "visitors");
    kedge_jw_obj_open(w);
    for (size_t i = 0; s && i < s->n_properties; i++)
        if (s->properties[i]->visitors) {
            kedge_jw_key(w, s->properties[i]->name);
            config_json(w, s->properties[i]->visitors->configdata);
        }
    kedge_jw_obj_close(w);
}

void tm_device_json(struct kedge_jw *w, const V1beta1__Device *d)
{
    const V1beta1__DeviceSpec *s = d->spec;
    const V1beta1__DeviceStatus *st = d->status;

    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "name", d->name);
    kedge_jw_kstr(w, "model", s ? s->devicemodelreference : "");
    kedge_jw_kstr(w, "protocol", s && s->protocol ? s->protocol->protocolname : "");
    kedge_jw_key(w, "config");
    config_json(w, s && s->protocol ? s->protocol->configdata : NULL);
    properties_json(w, s);
    kedge_jw_key(w, "twins");
    kedge_jw_obj_open(w);
    for (size_t i = 0; st && i < st->n_twins; i++)
        kedge_jw_kstr(w, st->twins[i]->propertyname,
                      st->twins[i]->reported ? st->twins[i]->reported->value : "");
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
}

void tm_model_json(struct kedge_jw *w, const V1beta1__DeviceModel *m)
{
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "name", m->name);
    kedge_jw_key(w, "properties");
    kedge_jw_arr_open(w);
    for (size_t i = 0; m->spec && i < m->spec->n_properties; i++) {
        const V1beta1__ModelProperty *p = m->spec->properties[i];

        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "name", p->name);
        kedge_jw_kstr(w, "type", p->type);
        kedge_jw_kstr(w, "accessMode", p->accessmode);
        kedge_jw_obj_close(w);
    }
    kedge_jw_arr_close(w);
    kedge_jw_obj_close(w);
}
