/* podenv.c: a container's environment, kubelet's makeEnvironmentVariables (podenv.h).
 *
 * Points decided as kubelet decides them: configMapKeyRef and envFrom read a ConfigMap's `data`
 * only (never binaryData); a resourceFieldRef to a limit that is not set resolves to the
 * node's allocatable (podspec_resource_value). Not done: service-link variables.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/json.h"
#include "kedge/err.h"
#include "kedge/util.h"
#include "podenv.h"
#include "podspec_decode.h"

/* ==== the environment ===================================================================== */

struct podenv_cached {
    const char *type; /* "configmap" | "secret" */
    char *name;
    struct kedge_jdoc *doc; /* NULL: not found */
};

static long env_find(const struct podenv *s, const char *name, size_t nlen)
{
    size_t i;

    if (!s->n_slot)
        return -1;
    for (i = ps__fnv1a(name, nlen, FNV_BASIS) & (s->n_slot - 1); s->slot[i];
         i = (i + 1) & (s->n_slot - 1)) {
        const struct podenv_var *e = &s->vars[s->slot[i] - 1];
        if (strlen(e->name) == nlen && !memcmp(e->name, name, nlen))
            return (long)(s->slot[i] - 1);
    }
    return -1;
}

static void env_slot(size_t *slot, size_t n_slot, const char *name, size_t idx)
{
    size_t j;

    for (j = ps__fnv1a(name, strlen(name), FNV_BASIS) & (n_slot - 1); slot[j];
         j = (j + 1) & (n_slot - 1))
        ;
    slot[j] = idx + 1;
}

static int env_rehash(struct podenv *s, size_t n_slot)
{
    size_t *slot = kedge_calloc(n_slot, sizeof(*slot)), i;

    if (!slot)
        return -ENOMEM;
    for (i = 0; i < s->n; i++)
        env_slot(slot, n_slot, s->vars[i].name, i);
    kedge_free(s->slot);
    s->slot = slot;
    s->n_slot = n_slot;
    return 0;
}

/* Set name (name[0..nlen)) to val[0..len): copies both. 0 or -ENOMEM (the set unchanged). */
static int env_put(struct podenv *s, const char *name, size_t nlen, const char *val, size_t len)
{
    long at = env_find(s, name, nlen);
    char *v = kedge_strndup(val, len), *n;
    int rc;

    if (!v)
        return -ENOMEM;
    if (at >= 0) {
        kedge_free(s->vars[at].val);
        s->vars[at].val = v;
        s->vars[at].len = len;
        return 0;
    }
    if ((s->n + 1) * 2 >= s->n_slot && (rc = env_rehash(s, s->n_slot ? s->n_slot * 2 : 16)) < 0) {
        kedge_free(v);
        return rc;
    }
    if (kedge_array_grow(&s->vars, &s->cap, s->n, sizeof(*s->vars), 16) < 0) {
        kedge_free(v);
        return -ENOMEM;
    }
    n = kedge_strndup(name, nlen);
    if (!n) {
        kedge_free(v);
        return -ENOMEM;
    }
    s->vars[s->n].name = n;
    s->vars[s->n].val = v;
    s->vars[s->n].len = len;
    env_slot(s->slot, s->n_slot, n, s->n);
    s->n++;
    return 0;
}

void podenv_cleanup(struct podenv *s)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        kedge_free(s->vars[i].name);
        kedge_free(s->vars[i].val);
    }
    kedge_free(s->vars);
    kedge_free(s->slot);
    for (i = 0; i < s->n_objs; i++) {
        kedge_free(s->objs[i].name);
        kedge_jdoc_free(s->objs[i].doc);
    }
    kedge_free(s->objs);
    memset(s, 0, sizeof(*s));
}

struct build {
    const struct podenv_src *src;
    const struct pod_spec *pod;
    const struct pod_container *c;
    char *why;
    size_t why_len;
    struct podenv *env;
};

/* The stored object type/name: *root its JSON object, or NULL when it does not exist.
 * Returns 0, KEDGE_ESCHEMA (the store holds something that is not an object), or the lookup's
 * own error (-ENOMEM, -EIO, ...). */
static int get_object(struct build *b, const char *type, const char *name,
                      const struct kedge_jval **root)
{
    const struct podenv_src *cc = b->src;
    struct kedge_jdoc *doc = NULL;
    char *json = NULL;
    size_t i;
    int rc;

    *root = NULL;
    for (i = 0; i < b->env->n_objs; i++)
        if (!strcmp(b->env->objs[i].type, type) && !strcmp(b->env->objs[i].name, name)) {
            *root = kedge_jdoc_root(b->env->objs[i].doc);
            return 0;
        }
    rc = cc->lookup ? cc->lookup(cc->lookup_ctx, type, b->pod->ns, name, &json) : -ENOENT;
    if (rc == 0 && !json)
        rc = -ENOENT;
    if (rc == 0) {
        rc = kedge_json_parse(json, strlen(json), &doc);
        if (rc == 0 && kedge_jdoc_root(doc)->type != KEDGE_JOBJ)
            rc = KEDGE_EPARSE;
        if (rc == KEDGE_EPARSE)
            rc = kedge_schema_why(b->why, b->why_len,
                                  "%s \"%s\": the stored object is not a JSON object", type, name);
    } else if (rc != -ENOENT && rc != -ENOMEM) {
        kedge_schema_why(b->why, b->why_len, "%s \"%s\": lookup failed: %s", type, name,
                         kedge_strerror(rc));
    }
    kedge_free(json);
    if (rc < 0 && rc != -ENOENT)
        goto fail;
    if (kedge_array_grow(&b->env->objs, &b->env->cap_objs, b->env->n_objs, sizeof(*b->env->objs),
                         4) < 0) {
        rc = -ENOMEM;
        goto fail;
    }
    b->env->objs[b->env->n_objs].name = kedge_strdup(name);
    if (!b->env->objs[b->env->n_objs].name) {
        rc = -ENOMEM;
        goto fail;
    }
    b->env->objs[b->env->n_objs].type = type;
    b->env->objs[b->env->n_objs].doc = doc;
    b->env->n_objs++;
    *root = kedge_jdoc_root(doc);
    return 0;
fail:
    kedge_jdoc_free(doc);
    return rc;
}

/* One value of a ConfigMap's data (plain) or a Secret's data (base64) into *out (kedge_malloc;
 * NULL when the key is absent). */
static int object_value(struct build *b, const char *type, const char *name,
                        const struct kedge_jval *v, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (v->type == KEDGE_JNULL) {
        *out = kedge_strdup("");
        return *out ? 0 : -ENOMEM;
    }
    if (v->type != KEDGE_JSTR)
        return kedge_schema_why(b->why, b->why_len, "%s \"%s\": data[%.*s] is not a string", type,
                                name, (int)v->key_len, v->key);
    if (type[0] == 's') {
        int rc = kedge_base64_decode(v->str, v->len, out, len);
        if (rc == KEDGE_EPARSE)
            return kedge_schema_why(b->why, b->why_len, "%s \"%s\": data[%.*s] is not valid base64",
                                    type, name, (int)v->key_len, v->key);
        return rc;
    }
    *out = kedge_strndup(v->str, v->len);
    *len = v->len;
    return *out ? 0 : -ENOMEM;
}

/* The object's data ps__member (NULL: none). */
static int object_data(struct build *b, const char *type, const char *name,
                       const struct kedge_jval *root, const struct kedge_jval **data)
{
    *data = ps__member(root, "data");
    if (*data && (*data)->type != KEDGE_JOBJ)
        return kedge_schema_why(b->why, b->why_len, "%s \"%s\": data is not an object", type, name);
    return 0;
}

/* Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion): $$ is a literal $,
 * $(NAME) is NAME's value when defined and stays as written otherwise, an unterminated $( and
 * any other $x are kept. Appends to out. */
int podenv_expand(const struct podenv *env, const char *in, size_t len, struct kedge_buf *out)
{
    size_t i = 0, checkpoint = 0;
    int rc = 0;

    for (i = 0; i < len && rc == 0; i++) {
        if (in[i] != '$' || i + 1 >= len)
            continue;
        rc = kedge_buf_append(out, in + checkpoint, i - checkpoint);
        if (rc)
            break;
        if (in[i + 1] == '$') {
            rc = kedge_buf_putc(out, '$');
            i += 1;
        } else if (in[i + 1] == '(') {
            const char *close = memchr(in + i + 2, ')', len - i - 2);
            if (close) {
                size_t nlen = (size_t)(close - (in + i + 2));
                long at = env_find(env, in + i + 2, nlen);
                if (at >= 0) /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): found */
                    rc = kedge_buf_append(out, env->vars[at].val, env->vars[at].len);
                else
                    rc = kedge_buf_append(out, in + i, nlen + 3);
                i += nlen + 2;
            } else {
                rc = kedge_buf_append(out, "$(", 2);
                i += 1;
            }
        } else {
            /* Go's string(input[0]) of a byte: a byte over 0x7f becomes that code point */
            unsigned char c = (unsigned char)in[i + 1];
            char enc[3] = {'$', (char)c, 0};
            size_t n = 2;
            if (c >= 0x80) {
                enc[1] = (char)(0xc0 | (c >> 6));
                enc[2] = (char)(0x80 | (c & 0x3f));
                n = 3;
            }
            rc = kedge_buf_append(out, enc, n);
            i += 1;
        }
        checkpoint = i + 1;
    }
    if (rc == 0)
        rc = kedge_buf_append(out, in + checkpoint, len - checkpoint);
    return rc;
}

/* fieldRef (kubelet's podFieldSelectorRuntimeValue): a missing label or annotation is "". */
static int field_value(struct build *b, const char *fp, struct kedge_buf *out)
{
    const struct pod_spec *p = b->pod;
    const char *v = NULL;

    if (podspec_metadata_field(p, fp, &v))
        return kedge_buf_puts(out, v ? v : "");
    if (!strcmp(fp, "spec.nodeName"))
        v = p->node_name;
    else if (!strcmp(fp, "spec.serviceAccountName"))
        v = p->service_account;
    else if (!strcmp(fp, "status.podIP") || !strcmp(fp, "status.podIPs"))
        v = b->src->pod_ip;
    else if (!strcmp(fp, "status.hostIP") || !strcmp(fp, "status.hostIPs"))
        v = b->src->host_ip;
    else
        return kedge_schema_why(b->why, b->why_len, "unsupported fieldPath: %s", fp);
    return kedge_buf_puts(out, v ? v : "");
}

/* resourceFieldRef (kubelet's containerResourceRuntimeValue): ceil(value / divisor). */
static int resource_value(struct build *b, const struct pod_env *e, struct kedge_buf *out)
{
    const struct pod_container *c = b->c;
    int rc;

    if (e->ref_name && !(c = podspec_find_container(b->pod, e->ref_name)))
        return kedge_schema_why(b->why, b->why_len, "container %s not found", e->ref_name);
    rc = podspec_resource_value(c, e->ref_key, e->value, out);
    if (rc == KEDGE_ESCHEMA)
        return kedge_schema_why(b->why, b->why_len, "invalid divisor %s", e->value);
    return rc;
}

/* The data of the ConfigMap or Secret (type) a variable names (NULL: it has none, or it does
 * not exist and optional says that is fine). */
static int referenced_data(struct build *b, const char *type, const char *name, bool optional,
                           const struct kedge_jval **data)
{
    const struct kedge_jval *root;
    int rc = get_object(b, type, name, &root);

    *data = NULL;
    if (rc < 0)
        return rc;
    if (!root)
        return optional ? 0
                        : kedge_schema_why(b->why, b->why_len, "%s \"%s\" not found", type, name);
    return object_data(b, type, name, root, data);
}

/* envFrom: every key of the object's data, prefixed, in key order. */
static int env_from_object(struct build *b, const struct pod_env_from *ef)
{
    const char *type = ef->secret ? "secret" : "configmap";
    const struct kedge_jval *data, **mems = NULL;
    struct kedge_buf name = KEDGE_BUF_INIT;
    size_t i, n = 0;
    int rc = referenced_data(b, type, ef->name, ef->optional, &data);

    if (rc < 0 || !data)
        return rc;
    rc = ps__sorted_members(data, &mems, &n);
    for (i = 0; i < n && rc == 0; i++) {
        char *val = NULL;
        size_t len = 0;
        kedge_buf_reset(&name);
        rc = kedge_buf_puts(&name, ef->prefix ? ef->prefix : "");
        if (rc == 0)
            rc = kedge_buf_append(&name, mems[i]->key, mems[i]->key_len);
        if (rc < 0)
            break;
        /* kubelet skips keys that are not valid variable names (and reports them in an event) */
        if (strlen(name.data) != name.len || !ps__env_name_ok(name.data))
            continue;
        rc = object_value(b, type, ef->name, mems[i], &val, &len);
        if (rc == 0)
            rc = env_put(b->env, name.data, name.len, val, len);
        kedge_free(val);
    }
    kedge_free(mems);
    kedge_buf_cleanup(&name);
    return rc;
}

/* configMapKeyRef / secretKeyRef. *found false: optional and missing (the variable is not set). */
static int env_key_ref(struct build *b, const struct pod_env *e, char **val, size_t *len,
                       bool *found)
{
    bool secret = e->src == ENV_SECRET;
    const char *type = secret ? "secret" : "configmap";
    const struct kedge_jval *data, *v;
    int rc = referenced_data(b, type, e->ref_name, e->optional, &data);

    *found = false;
    if (rc < 0)
        return rc;
    v = data ? kedge_json_get_exact(data, e->ref_key, strlen(e->ref_key)) : NULL;
    if (!v)
        return e->optional
                   ? 0
                   : kedge_schema_why(b->why, b->why_len, "couldn't find key %s in %s %s/%s",
                                      e->ref_key, secret ? "Secret" : "ConfigMap", b->pod->ns,
                                      e->ref_name);
    rc = object_value(b, type, e->ref_name, v, val, len);
    *found = rc == 0;
    return rc;
}

/* Kubelet's makeEnvironmentVariables into b->env. */
static int resolve_env(struct build *b)
{
    const struct pod_container *c = b->c;
    struct kedge_buf tmp = KEDGE_BUF_INIT;
    size_t i;
    int rc = 0;

    for (i = 0; i < c->n_env_from && rc == 0; i++)
        rc = env_from_object(b, &c->env_from[i]);
    for (i = 0; i < c->n_env && rc == 0; i++) {
        const struct pod_env *e = &c->env[i];
        char *val = NULL;
        size_t len = 0;
        bool found = true;
        kedge_buf_reset(&tmp);
        switch (e->src) {
        case ENV_VALUE:
            rc = podenv_expand(b->env, e->value ? e->value : "", e->value ? strlen(e->value) : 0,
                               &tmp);
            break;
        case ENV_CONFIGMAP:
        case ENV_SECRET:
            rc = env_key_ref(b, e, &val, &len, &found);
            break;
        case ENV_FIELD:
            rc = field_value(b, e->ref_key, &tmp);
            break;
        case ENV_RESOURCE:
            rc = resource_value(b, e, &tmp);
            break;
        }
        if (rc == 0 && found)
            rc = val ? env_put(b->env, e->name, strlen(e->name), val, len)
                     : env_put(b->env, e->name, strlen(e->name), tmp.data ? tmp.data : "", tmp.len);
        kedge_free(val);
    }
    kedge_buf_cleanup(&tmp);
    return rc;
}

int podenv_resolve(const struct podenv_src *src, struct podenv *env, char *why, size_t why_len)
{
    struct build b = {src, src->pod, src->c, why, why_len, env};

    return resolve_env(&b);
}
