/* CR JSON -> DMI protobuf, as edgecore v1.15.4's ConvertDevice / ConvertDeviceModel.
 *
 * edgecore marshals the CR with encoding/json and unmarshals the bytes into the generated pb
 * struct, whose json names are the proto field names; Go's decoder matches them
 * case-insensitively (hostName -> hostname), the last duplicate wins, unknown keys are
 * ignored, null leaves a field alone, and a value of the wrong type fails the whole
 * conversion. Here one walk driven by protobuf-c's descriptors does the same over the stored
 * JSON, so no field has code of its own. The round trip through the CR type leaves marks the
 * walk adds explicitly (the table `special`):
 *  - fields the CR has as plain structs (Device.spec, status, spec.protocol, a property's
 *    desired and visitors, a twin's reported and observedDesired, DeviceModel.spec) are always
 *    marshalled, so the pb message always has them, even when the stored JSON does not;
 *  - fields the CR does not have never reach the pb struct (a model's commands), and those
 *    ConvertDevice overwrites are not read at all (name, deviceModelReference);
 *  - configData (the CR's map[string]interface{}) becomes map<string, Any>: a string is a
 *    google.protobuf.StringValue, a number (float64 in Go) a FloatValue, a bool a BoolValue,
 *    anything else fails (dataToAny).
 * A CR field of the wrong type that the pb struct does not have (spec.nodeName: 5) makes
 * edgecore's CR decode fail; the walk does not look at it.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "convert.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/util.h"

#define TYPE_URL_PREFIX "type.googleapis.com/"

/* ---- allocation -------------------------------------------------------------------------- */

static void *pb_alloc(void *data, size_t n)
{
    (void)data;
    return kedge_malloc(n ? n : 1);
}

static void pb_release(void *data, void *p)
{
    (void)data;
    kedge_free(p);
}

void *dmi_pb_new(const ProtobufCMessageDescriptor *desc)
{
    void *m = kedge_malloc(desc->sizeof_message);

    if (m)
        protobuf_c_message_init(desc, m);
    return m;
}

void dmi_pb_free(void *m)
{
    ProtobufCAllocator a = {pb_alloc, pb_release, NULL};

    if (m)
        protobuf_c_message_free_unpacked(m, &a);
}

char *dmi_pb_strdup(const char *s, size_t len)
{
    return kedge_strndup(s, len);
}

/* ---- what the round trip through the CR type adds ----------------------------------------- */

enum special {
    SP_NONE,
    SP_SKIP,   /* not in the CR, or set by ConvertDevice itself */
    SP_VALUE,  /* a plain struct in the CR: always there */
    SP_CONFIG, /* configData: map<string, Any> from dataToAny */
};

static const struct {
    const ProtobufCMessageDescriptor *desc;
    const char *field;
    enum special sp;
} special[] = {
    {&v1beta1__device__descriptor, "name", SP_SKIP},
    {&v1beta1__device__descriptor, "spec", SP_VALUE},
    {&v1beta1__device__descriptor, "status", SP_VALUE},
    {&v1beta1__device_spec__descriptor, "deviceModelReference", SP_SKIP},
    {&v1beta1__device_spec__descriptor, "protocol", SP_VALUE},
    {&v1beta1__device_property__descriptor, "desired", SP_VALUE},
    {&v1beta1__device_property__descriptor, "visitors", SP_VALUE},
    {&v1beta1__twin__descriptor, "reported", SP_VALUE},
    {&v1beta1__twin__descriptor, "observedDesired", SP_VALUE},
    {&v1beta1__protocol_config__descriptor, "configData", SP_CONFIG},
    {&v1beta1__visitor_config__descriptor, "configData", SP_CONFIG},
    {&v1beta1__device_model__descriptor, "name", SP_SKIP},
    {&v1beta1__device_model__descriptor, "spec", SP_VALUE},
    {&v1beta1__device_model_spec__descriptor, "commands", SP_SKIP},
};

static enum special special_of(const ProtobufCMessageDescriptor *d, const char *field)
{
    size_t i;

    for (i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (special[i].desc == d && !strcmp(special[i].field, field))
            return special[i].sp;
    return SP_NONE;
}

/* ---- the walk ----------------------------------------------------------------------------- */

struct walk {
    char *why;
    size_t why_len;
};

static int fill(struct walk *w, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                const struct kedge_jval *obj);

static bool is_null(const struct kedge_jval *v)
{
    return kedge_json_is_null(v);
}

static const char *jtype_name(const struct kedge_jval *v)
{
    static const char *const names[] = {"null", "bool", "number", "string", "object", "array"};

    return names[v->type];
}

static int wrong(struct walk *w, const ProtobufCFieldDescriptor *f, const struct kedge_jval *v,
                 const char *want)
{
    return kedge_schema_why(w->why, w->why_len, "%s: cannot unmarshal %s into %s", f->name,
                            jtype_name(v), want);
}

/* A map field: protoc-c makes map<K, V> a repeated {key, value} *Entry message. */
static bool is_map(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *e = f->descriptor;
    size_t n;

    if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label != PROTOBUF_C_LABEL_REPEATED)
        return false;
    n = strlen(e->name);
    return n > 5 && !strcmp(e->name + n - 5, "Entry") && e->n_fields == 2 &&
           !strcmp(e->fields[0].name, "key") && !strcmp(e->fields[1].name, "value");
}

static int new_message(const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
    *out = dmi_pb_new(d);
    return *out ? 0 : -ENOMEM;
}

/* One value of field f (a single field or one element of a repeated one) into slot, which
 * holds the field's C type. v is not NULL; null is the zero value (an empty message). */
static int set_value(struct walk *w, const ProtobufCFieldDescriptor *f, void *slot,
                     const struct kedge_jval *v)
{
    int64_t n = 0;

    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        if (v->type == KEDGE_JNULL && *(char **)slot)
            return 0;               /* a single field keeps its default "" */
        if (v->type == KEDGE_JNULL) /* an element of a repeated one: "" */
            *(char **)slot = dmi_pb_strdup("", 0);
        else if (v->type == KEDGE_JSTR)
            *(char **)slot = dmi_pb_strdup(v->str, v->len);
        else
            return wrong(w, f, v, "string");
        return *(char **)slot ? 0 : -ENOMEM;
    case PROTOBUF_C_TYPE_BOOL:
        if (v->type != KEDGE_JBOOL && v->type != KEDGE_JNULL)
            return wrong(w, f, v, "bool");
        *(protobuf_c_boolean *)slot = v->type == KEDGE_JBOOL && v->boolean;
        return 0;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_INT64:
        if (v->type != KEDGE_JNUM && v->type != KEDGE_JNULL)
            return wrong(w, f, v, f->type == PROTOBUF_C_TYPE_INT32 ? "int32" : "int64");
        if (kedge_json_int64(v, &n) < 0 ||
            (f->type == PROTOBUF_C_TYPE_INT32 && (n < INT32_MIN || n > INT32_MAX)))
            return kedge_schema_why(w->why, w->why_len, "%s: cannot unmarshal number %.*s into %s",
                                    f->name, (int)v->len, v->str,
                                    f->type == PROTOBUF_C_TYPE_INT32 ? "int32" : "int64");
        if (f->type == PROTOBUF_C_TYPE_INT32)
            *(int32_t *)slot = (int32_t)n;
        else
            *(int64_t *)slot = n;
        return 0;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = slot;
        char *data = NULL;
        int rc;
        if (v->type == KEDGE_JNULL)
            return 0;
        if (v->type != KEDGE_JSTR)
            return wrong(w, f, v, "[]byte");
        rc = kedge_base64_decode(v->str, v->len, &data, &b->len);
        if (rc == KEDGE_EPARSE)
            return kedge_schema_why(w->why, w->why_len, "%s: not base64", f->name);
        b->data = (uint8_t *)data;
        return rc;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage **sub = slot;
        int rc;
        if (v->type != KEDGE_JOBJ && v->type != KEDGE_JNULL)
            return wrong(w, f, v, ((const ProtobufCMessageDescriptor *)f->descriptor)->name);
        rc = new_message(f->descriptor, sub);
        return rc < 0 ? rc : fill(w, f->descriptor, *sub, v);
    }
    default:
        return kedge_schema_why(w->why, w->why_len, "%s: field type %d not handled", f->name,
                                (int)f->type);
    }
}

/* The C size of one element of repeated field f. */
static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_INT32:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_INT64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default: /* strings and messages are pointers */
        return sizeof(void *);
    }
}

/* The array of a repeated field and its count, filled one element at a time so that a
 * failure half way leaves a message protobuf_c_message_free_unpacked can free. */
static int alloc_repeated(const ProtobufCFieldDescriptor *f, ProtobufCMessage *m, size_t n,
                          void **arr)
{
    *arr = NULL;
    if (n == 0)
        return 0;
    *arr = kedge_calloc(n, elem_size(f));
    if (!*arr)
        return -ENOMEM;
    *(void **)((char *)m + f->offset) = *arr;
    return 0;
}

static size_t *count_of(const ProtobufCFieldDescriptor *f, ProtobufCMessage *m)
{
    return (size_t *)(void *)((char *)m + f->quantifier_offset);
}

static int set_repeated(struct walk *w, const ProtobufCFieldDescriptor *f, ProtobufCMessage *m,
                        const struct kedge_jval *arr)
{
    const struct kedge_jval *e;
    void *items;
    int rc;

    if (arr->type != KEDGE_JARR)
        return wrong(w, f, arr, "array");
    rc = alloc_repeated(f, m, arr->n, &items);
    for (e = arr->child; rc == 0 && e; e = e->next) {
        void *slot = (char *)items + *count_of(f, m) * elem_size(f);
        rc = set_value(w, f, slot, e);
        /* a half-filled message is freed with the rest; a failed string was never made */
        if (rc == 0 || (f->type == PROTOBUF_C_TYPE_MESSAGE && *(void **)slot))
            (*count_of(f, m))++;
    }
    return rc;
}

/* A map<string, V> from a JSON object; a key given twice keeps its last value, as a Go map. */
static int set_map(struct walk *w, const ProtobufCFieldDescriptor *f, ProtobufCMessage *m,
                   const struct kedge_jval *obj)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const struct kedge_jval *e;
    ProtobufCMessage **items;
    int rc;

    if (obj->type != KEDGE_JOBJ)
        return wrong(w, f, obj, "map");
    rc = alloc_repeated(f, m, obj->n, (void **)&items);
    for (e = obj->child; rc == 0 && e; e = e->next) {
        ProtobufCMessage *entry;
        if (kedge_json_get_exact(obj, e->key, e->key_len) != e)
            continue; /* a later duplicate wins */
        rc = new_message(ed, &entry);
        if (rc < 0)
            break;
        items[(*count_of(f, m))++] = entry;
        *(char **)((char *)entry + ed->fields[0].offset) = dmi_pb_strdup(e->key, e->key_len);
        if (!*(char **)((char *)entry + ed->fields[0].offset))
            rc = -ENOMEM;
        else
            rc = set_value(w, &ed->fields[1], (char *)entry + ed->fields[1].offset, e);
    }
    return rc;
}

/* ---- configData: dataToAny ------------------------------------------------------------------ */

/* Go's name of the type encoding/json gives v in an interface{}, for dataToAny's message. */
static const char *go_type(const struct kedge_jval *v)
{
    return v->type == KEDGE_JNULL  ? "<nil>"
           : v->type == KEDGE_JOBJ ? "map[string]interface {}"
                                   : "[]interface {}";
}

/* The wrapper of one configData value, packed into an Any. */
static int to_any(struct walk *w, const char *key, const struct kedge_jval *v,
                  Google__Protobuf__Any *any)
{
    Google__Protobuf__StringValue s = GOOGLE__PROTOBUF__STRING_VALUE__INIT;
    Google__Protobuf__FloatValue fl = GOOGLE__PROTOBUF__FLOAT_VALUE__INIT;
    Google__Protobuf__BoolValue b = GOOGLE__PROTOBUF__BOOL_VALUE__INIT;
    ProtobufCMessage *wrapper;
    size_t len;

    if (v->type == KEDGE_JSTR) {
        s.value = (char *)v->str;
        wrapper = &s.base;
    } else if (v->type == KEDGE_JNUM) {
        double d;
        char *end;
        errno = 0;
        d = strtod(v->str, &end);
        if (*end || (errno == ERANGE && isinf(d)))
            return kedge_schema_why(w->why, w->why_len, "configData %s: number %s out of range",
                                    key, v->str);
        fl.value = (float)d; /* Go: wrapperspb.Float(float32(m)) */
        wrapper = &fl.base;
    } else if (v->type == KEDGE_JBOOL) {
        b.value = v->boolean;
        wrapper = &b.base;
    } else {
        return kedge_schema_why(w->why, w->why_len,
                                "configData %s: %s does not support converting to any", key,
                                go_type(v));
    }
    any->type_url = kedge_malloc(strlen(TYPE_URL_PREFIX) + strlen(wrapper->descriptor->name) + 1);
    if (!any->type_url)
        return -ENOMEM;
    strcpy(any->type_url, TYPE_URL_PREFIX);
    strcat(any->type_url, wrapper->descriptor->name);
    len = protobuf_c_message_get_packed_size(wrapper);
    if (len == 0)
        return 0; /* a zero value packs to nothing, as in Go */
    any->value.data = kedge_malloc(len);
    if (!any->value.data)
        return -ENOMEM;
    any->value.len = protobuf_c_message_pack(wrapper, any->value.data);
    return 0;
}

/* configData: the CR's flat map (no "data" level) as CustomizedValue.data. */
static int set_config(struct walk *w, const ProtobufCFieldDescriptor *f, ProtobufCMessage *m,
                      const struct kedge_jval *obj)
{
    V1beta1__CustomizedValue *cv;
    const struct kedge_jval *e;
    int rc;

    if (obj->type != KEDGE_JOBJ)
        return wrong(w, f, obj, "map[string]interface {}");
    cv = dmi_pb_new(&v1beta1__customized_value__descriptor);
    if (!cv)
        return -ENOMEM;
    *(V1beta1__CustomizedValue **)((char *)m + f->offset) = cv;
    if (obj->n && !(cv->data = kedge_calloc(obj->n, sizeof(*cv->data))))
        return -ENOMEM;
    for (e = obj->child, rc = 0; rc == 0 && e; e = e->next) {
        V1beta1__CustomizedValue__DataEntry *entry;
        if (kedge_json_get_exact(obj, e->key, e->key_len) != e)
            continue;
        entry = dmi_pb_new(&v1beta1__customized_value__data_entry__descriptor);
        if (!entry)
            return -ENOMEM;
        cv->data[cv->n_data++] = entry;
        entry->key = dmi_pb_strdup(e->key, e->key_len);
        entry->value = dmi_pb_new(&google__protobuf__any__descriptor);
        if (!entry->key || !entry->value)
            return -ENOMEM;
        rc = to_any(w, entry->key, e, entry->value);
    }
    return rc;
}

static int check_root(struct walk *w, const struct kedge_jval *root)
{
    if (!root || root->type != KEDGE_JOBJ)
        return kedge_schema_why(w->why, w->why_len, "not a JSON object");
    return 0;
}

/* Every field of d from obj (an object, or null: all defaults). */
static int fill(struct walk *w, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                const struct kedge_jval *obj)
{
    unsigned i;
    int rc = 0;

    for (i = 0; rc == 0 && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        enum special sp = special_of(d, f->name);
        const struct kedge_jval *v = sp == SP_SKIP ? NULL : kedge_json_get(obj, f->name);

        if (sp == SP_SKIP)
            continue;
        if (is_null(v)) {
            if (sp == SP_VALUE)
                rc = new_message(f->descriptor, (ProtobufCMessage **)((char *)m + f->offset));
        } else if (sp == SP_CONFIG) {
            rc = set_config(w, f, m, v);
        } else if (is_map(f)) {
            rc = set_map(w, f, m, v);
        } else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = set_repeated(w, f, m, v);
        } else {
            rc = set_value(w, f, (char *)m + f->offset, v);
        }
    }
    return rc;
}

/* ---- any message from JSON, and MapperInfo to JSON ---------------------------------------- */

int dmi_pb_from_json(const ProtobufCMessageDescriptor *desc, const struct kedge_jval *obj,
                     ProtobufCMessage **out, char *why, size_t why_len)
{
    struct walk w = {why, why_len};
    int rc;

    *out = NULL;
    rc = check_root(&w, obj);
    if (rc == 0)
        rc = new_message(desc, out);
    if (rc == 0)
        rc = fill(&w, desc, *out, obj);
    if (rc < 0) {
        dmi_pb_free(*out);
        *out = NULL;
    }
    return rc;
}

/* One omitempty string member. */
static void omitempty(struct kedge_jw *jw, const char *key, const char *v)
{
    if (v && *v)
        kedge_jw_kstr(jw, key, v);
}

int dmi_mapper_info_json(const V1beta1__MapperInfo *info, struct kedge_buf *out)
{
    struct kedge_buf addr = KEDGE_BUF_INIT;
    struct kedge_jw jw;
    int rc = kedge_base64_encode(info->address.data, info->address.len, &addr);

    kedge_jw_init(&jw, out);
    kedge_jw_obj_open(&jw);
    omitempty(&jw, "name", info->name);
    omitempty(&jw, "version", info->version);
    omitempty(&jw, "api_version", info->api_version);
    omitempty(&jw, "protocol", info->protocol);
    if (info->address.len) /* []byte: base64, as encoding/json writes it */
    {
        kedge_jw_key(&jw, "address");
        kedge_jw_strn(&jw, addr.data, addr.len);
    }
    omitempty(&jw, "state", info->state);
    kedge_jw_obj_close(&jw);
    kedge_buf_cleanup(&addr);
    return rc < 0 ? rc : kedge_jw_finish(&jw);
}

/* ---- the two conversions -------------------------------------------------------------------- */

/* metadata.name, which ConvertDevice sets over whatever the walk found. */
static int set_name(struct walk *w, const struct kedge_jval *root, char **name)
{
    const struct kedge_jval *meta = kedge_json_get(root, "metadata");
    const struct kedge_jval *n = kedge_json_get(meta, "name");

    if (!is_null(meta) && meta->type != KEDGE_JOBJ)
        return kedge_schema_why(w->why, w->why_len, "metadata is not an object");
    if (is_null(n))
        return 0;
    if (n->type != KEDGE_JSTR)
        return kedge_schema_why(w->why, w->why_len, "metadata.name is not a string");
    *name = dmi_pb_strdup(n->str, n->len);
    return *name ? 0 : -ENOMEM;
}

/* spec.deviceModelReference = spec.deviceModelRef.name. edgecore dereferences deviceModelRef
 * without a check (a Device without one crashes it); here it is a conversion error. */
static int set_model_ref(struct walk *w, const struct kedge_jval *root, V1beta1__DeviceSpec *spec)
{
    const struct kedge_jval *ref = kedge_json_get(kedge_json_get(root, "spec"), "deviceModelRef");
    const struct kedge_jval *n = kedge_json_get(ref, "name");

    if (is_null(ref))
        return kedge_schema_why(w->why, w->why_len, "spec.deviceModelRef is missing");
    if (ref->type != KEDGE_JOBJ || (!is_null(n) && n->type != KEDGE_JSTR))
        return kedge_schema_why(w->why, w->why_len, "spec.deviceModelRef is not {name: string}");
    if (is_null(n))
        return 0;
    spec->devicemodelreference = dmi_pb_strdup(n->str, n->len);
    return spec->devicemodelreference ? 0 : -ENOMEM;
}

int dmi_convert_device(const struct kedge_jval *dev, V1beta1__Device **out, char *why,
                       size_t why_len)
{
    struct walk w = {why, why_len};
    V1beta1__Device *d;
    int rc;

    *out = NULL;
    rc = check_root(&w, dev);
    if (rc < 0)
        return rc;
    d = dmi_pb_new(&v1beta1__device__descriptor);
    if (!d)
        return -ENOMEM;
    rc = fill(&w, &v1beta1__device__descriptor, &d->base, dev);
    if (rc == 0)
        rc = set_name(&w, dev, &d->name);
    if (rc == 0)
        rc = set_model_ref(&w, dev, d->spec);
    if (rc < 0) {
        dmi_pb_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int dmi_convert_model(const struct kedge_jval *model, V1beta1__DeviceModel **out, char *why,
                      size_t why_len)
{
    struct walk w = {why, why_len};
    V1beta1__DeviceModel *m;
    int rc;

    *out = NULL;
    rc = check_root(&w, model);
    if (rc < 0)
        return rc;
    m = dmi_pb_new(&v1beta1__device_model__descriptor);
    if (!m)
        return -ENOMEM;
    rc = fill(&w, &v1beta1__device_model__descriptor, &m->base, model);
    if (rc == 0)
        rc = set_name(&w, model, &m->name);
    if (rc < 0) {
        dmi_pb_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
