/* Beehive message codec (include/kedge/msg.h). */
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/msg.h"
#include "kedge/util.h"

void kedge_msg_cleanup(struct kedge_msg *m)
{
    if (!m)
        return;
    kedge_free_all(m->msg_id, m->parent_msg_id, m->resource_version, m->type, m->source,
                   m->destination, m->group, m->operation, m->resource, m->content, m->content_str);
    memset(m, 0, sizeof(*m));
}

void kedge_json_write_value(struct kedge_jw *w, const struct kedge_jval *v)
{
    const struct kedge_jval *c;

    switch (v->type) {
    case KEDGE_JNULL:
        kedge_jw_null(w);
        break;
    case KEDGE_JBOOL:
        kedge_jw_bool(w, v->boolean);
        break;
    case KEDGE_JNUM:
        kedge_jw_raw(w, v->str, v->len);
        break;
    case KEDGE_JSTR:
        kedge_jw_strn(w, v->str, v->len);
        break;
    case KEDGE_JOBJ:
        kedge_jw_obj_open(w);
        for (c = v->child; c; c = c->next) {
            kedge_jw_key_n(w, c->key, c->key_len); /* keys may hold NUL */
            kedge_json_write_value(w, c);
        }
        kedge_jw_obj_close(w);
        break;
    case KEDGE_JARR:
        kedge_jw_arr_open(w);
        for (c = v->child; c; c = c->next)
            kedge_json_write_value(w, c);
        kedge_jw_arr_close(w);
        break;
    }
}

static int str_field(const struct kedge_jval *obj, const char *name, char **out)
{
    const struct kedge_jval *v = kedge_json_get(obj, name);

    *out = NULL;
    if (kedge_json_is_null(v))
        return 0;
    if (v->type != KEDGE_JSTR)
        return KEDGE_ESCHEMA;
    *out = kedge_strndup(v->str, v->len);
    return *out ? 0 : -ENOMEM;
}

static int decode_header(const struct kedge_jval *h, struct kedge_msg *m)
{
    const struct kedge_jval *v;
    int rc;

    if ((rc = kedge_json_optional_object(h, KEDGE_ESCHEMA)) <= 0)
        return rc;
    if ((rc = str_field(h, "msg_id", &m->msg_id)) < 0 ||
        (rc = str_field(h, "parent_msg_id", &m->parent_msg_id)) < 0 ||
        (rc = str_field(h, "resourceversion", &m->resource_version)) < 0 ||
        (rc = str_field(h, "type", &m->type)) < 0)
        return rc;
    if (kedge_json_int64(kedge_json_get(h, "timestamp"), &m->timestamp) < 0)
        return KEDGE_ESCHEMA;
    v = kedge_json_get(h, "sync");
    if (!kedge_json_is_null(v)) {
        if (v->type != KEDGE_JBOOL)
            return KEDGE_ESCHEMA;
        m->sync = v->boolean;
    }
    return 0;
}

static int decode_route(const struct kedge_jval *r, struct kedge_msg *m)
{
    int rc;

    if ((rc = kedge_json_optional_object(r, KEDGE_ESCHEMA)) <= 0)
        return rc;
    if ((rc = str_field(r, "source", &m->source)) < 0 ||
        (rc = str_field(r, "destination", &m->destination)) < 0 ||
        (rc = str_field(r, "group", &m->group)) < 0 ||
        (rc = str_field(r, "operation", &m->operation)) < 0)
        return rc;
    return str_field(r, "resource", &m->resource);
}

static int decode_content(const struct kedge_jval *c, struct kedge_msg *m)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    kedge_jw_init(&w, &b);
    if (c)
        kedge_json_write_value(&w, c);
    else
        kedge_jw_null(&w);
    if (kedge_jw_finish(&w) < 0 || !(m->content = kedge_buf_take(&b, &m->content_len))) {
        kedge_buf_cleanup(&b);
        return -ENOMEM;
    }
    if (c && c->type == KEDGE_JSTR) {
        m->content_is_string = true;
        m->content_str = kedge_strndup(c->str, c->len);
        m->content_str_len = c->len;
        if (!m->content_str)
            return -ENOMEM;
    }
    return 0;
}

int kedge_msg_decode(const char *buf, size_t len, struct kedge_msg *out)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = kedge_json_parse_object(buf, len, &doc);
    if (rc < 0)
        goto out;
    root = kedge_jdoc_root(doc);
    rc = decode_header(kedge_json_get(root, "header"), out);
    if (rc == 0)
        rc = decode_route(kedge_json_get(root, "route"), out);
    if (rc == 0)
        rc = decode_content(kedge_json_get(root, "content"), out);
out:
    kedge_jdoc_free(doc);
    if (rc < 0)
        kedge_msg_cleanup(out);
    return rc;
}

static void opt_str(struct kedge_jw *w, const char *key, const char *v)
{
    if (v && *v)
        kedge_jw_kstr(w, key, v);
}

int kedge_msg_encode(struct kedge_buf *b, const struct kedge_msg *m, bool newline)
{
    struct kedge_jw w;

    kedge_jw_init(&w, b);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "header");
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "msg_id", m->msg_id ? m->msg_id : "");
    opt_str(&w, "parent_msg_id", m->parent_msg_id);
    kedge_jw_kint(&w, "timestamp", m->timestamp);
    opt_str(&w, "resourceversion", m->resource_version);
    if (m->sync) {
        kedge_jw_key(&w, "sync");
        kedge_jw_bool(&w, true);
    }
    opt_str(&w, "type", m->type);
    kedge_jw_obj_close(&w);
    kedge_jw_key(&w, "route");
    kedge_jw_obj_open(&w);
    opt_str(&w, "source", m->source);
    opt_str(&w, "destination", m->destination);
    opt_str(&w, "group", m->group);
    opt_str(&w, "operation", m->operation);
    opt_str(&w, "resource", m->resource);
    kedge_jw_obj_close(&w);
    kedge_jw_key(&w, "content");
    if (m->content)
        kedge_jw_raw(&w, m->content, m->content_len);
    else
        kedge_jw_null(&w);
    kedge_jw_obj_close(&w);
    if (kedge_jw_finish(&w) < 0)
        return -ENOMEM;
    if (newline && kedge_buf_putc(b, '\n') < 0)
        return -ENOMEM;
    return 0;
}

int kedge_msg_set_content_string(struct kedge_msg *m, const char *s, size_t len)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char *str = kedge_strndup(s, len);

    if (!str || kedge_json_escape(&b, s, len) < 0) {
        kedge_free(str);
        kedge_buf_cleanup(&b);
        return -ENOMEM;
    }
    kedge_free(m->content);
    kedge_free(m->content_str);
    m->content = kedge_buf_take(&b, &m->content_len);
    m->content_is_string = true;
    m->content_str = str;
    m->content_str_len = len;
    return 0;
}

int kedge_msg_set_content_json(struct kedge_msg *m, const char *json, size_t len)
{
    char *c = kedge_strndup(json, len);

    if (!c)
        return -ENOMEM;
    kedge_free(m->content);
    kedge_free(m->content_str);
    m->content = c;
    m->content_len = len;
    m->content_is_string = false;
    m->content_str = NULL;
    m->content_str_len = 0;
    return 0;
}

int kedge_msg_new_id(struct kedge_msg *m)
{
    char uuid[KEDGE_UUID_LEN + 1];

    kedge_uuid4(uuid);
    kedge_free(m->msg_id);
    m->msg_id = kedge_strdup(uuid);
    m->timestamp = kedge_wall_ms();
    return m->msg_id ? 0 : -ENOMEM;
}

int kedge_msg_copy(struct kedge_msg *dst, const struct kedge_msg *src)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    int rc = kedge_msg_encode(&b, src, false);

    if (rc == 0)
        rc = kedge_msg_decode(b.data, b.len, dst);
    else
        memset(dst, 0, sizeof(*dst));
    kedge_buf_cleanup(&b);
    return rc < 0 ? -ENOMEM : 0;
}
