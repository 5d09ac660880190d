/* kedge_twin_update_decode on arbitrary bytes (a device's $hw/events/device/{id}/twin/update).
 *
 * Properties:
 *  - a failure is one of the documented codes and leaves no twins behind;
 *  - a success has byte-wise sorted, distinct, valid keys and valid non-empty values;
 *  - re-encoding the decoded twins with kedge_twin_map_encode gives JSON that kedge_json_parse
 *    accepts and that decodes back to the very same twins (every field), and encoding that
 *    again gives the same bytes;
 *  - the other decoders and the type check take the same bytes without crashing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/twin.h"

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static void same_value(const struct kedge_twin_value *a, const struct kedge_twin_value *b)
{
    CHECK(a->present == b->present);
    CHECK(a->has_meta == b->has_meta);
    CHECK(str_eq(a->value, b->value));
    CHECK(a->ts == b->ts);
}

static void same_twin(const struct kedge_twin *a, const struct kedge_twin *b)
{
    CHECK(!strcmp(a->name, b->name));
    CHECK(a->is_null == b->is_null);
    same_value(&a->expected, &b->expected);
    same_value(&a->actual, &b->actual);
    CHECK(a->has_optional == b->has_optional && a->optional == b->optional);
    CHECK(a->has_meta == b->has_meta);
    /* "type":"" is omitempty: "metadata":{} reads back as type "" */
    CHECK(str_eq(a->type, b->type));
    CHECK(a->has_ev == b->has_ev && a->has_av == b->has_av);
    CHECK(a->ev.cloud == b->ev.cloud && a->ev.edge == b->ev.edge);
    CHECK(a->av.cloud == b->av.cloud && a->av.edge == b->av.edge);
}

static int encode(const struct kedge_twin_update *u, struct kedge_buf *b)
{
    struct kedge_twin_ref *refs = calloc(u->n ? u->n : 1, sizeof(*refs));
    size_t i;
    int rc;

    CHECK(refs);
    for (i = 0; i < u->n; i++) {
        refs[i].name = u->twins[i].name;
        refs[i].twin = u->twins[i].is_null ? NULL : &u->twins[i];
    }
    rc = kedge_twin_map_encode(b, u->event_id, u->timestamp, refs, u->n, KEDGE_TWIN_VERSIONS);
    free(refs);
    return rc;
}

static void check_values(const struct kedge_twin_value *v)
{
    static const char *const types[] = {"",      "string",  "int",     "integer",
                                        "float", "boolean", "deleted", "double"};
    size_t i;

    if (!v->value)
        return;
    if (*v->value)
        CHECK(kedge_twin_value_valid(v->value, strlen(v->value)));
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        (void)kedge_twin_check_type(types[i], v->value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kedge_twin_update u, back;
    struct kedge_buf b1 = KEDGE_BUF_INIT, b2 = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    char *s = NULL;
    size_t i;
    int rc;

    rc = kedge_twin_update_decode((const char *)data, size, &u);
    if (rc < 0) {
        CHECK(rc == KEDGE_EPARSE || rc == KEDGE_ENOTWIN || rc == KEDGE_ETWINKEY ||
              rc == KEDGE_ETWINVALUE);
        CHECK(u.twins == NULL && u.n == 0);
        kedge_twin_update_cleanup(&u);
        goto others;
    }
    for (i = 0; i < u.n; i++) {
        const struct kedge_twin *t = &u.twins[i];
        CHECK(kedge_twin_key_valid(t->name, strlen(t->name)));
        if (i)
            CHECK(strcmp(u.twins[i - 1].name, t->name) < 0);
        check_values(&t->expected);
        check_values(&t->actual);
        if (t->is_null)
            CHECK(!t->expected.present && !t->actual.present && !t->has_meta);
    }
    /* encode, parse, decode: the same twins */
    CHECK(encode(&u, &b1) == 0);
    CHECK(kedge_json_parse(b1.data, b1.len, &doc) == 0);
    kedge_jdoc_free(doc);
    CHECK(kedge_twin_update_decode(b1.data, b1.len, &back) == 0);
    CHECK(back.n == u.n);
    CHECK(str_eq(back.event_id ? back.event_id : "", u.event_id ? u.event_id : ""));
    CHECK(back.timestamp == u.timestamp);
    for (i = 0; i < u.n; i++)
        same_twin(&u.twins[i], &back.twins[i]);
    CHECK(encode(&back, &b2) == 0);
    CHECK(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len));
    kedge_twin_update_cleanup(&back);
    kedge_twin_update_cleanup(&u);
others:
    if (kedge_twin_event_id_decode((const char *)data, size, &s) == 0)
        CHECK(s != NULL);
    kedge_free(s);
    s = NULL;
    if (kedge_twin_state_decode((const char *)data, size, &s) == 0)
        CHECK(s != NULL);
    kedge_free(s);
    kedge_buf_cleanup(&b1);
    kedge_buf_cleanup(&b2);
    return 0;
}
