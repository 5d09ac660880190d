/* podpayload.c: what a configMap, secret, downwardAPI or projected volume holds, as kubelet's
 * volume plugins compute it (pkg/volume/configmap and secret MakePayload,
 * pkg/volume/downwardapi/downwardapi.go CollectData, pkg/volume/projected/projected.go
 * collectData; KubeEdge v1.15.4's vendored kubernetes): a vol_payload that atomicwriter.c
 * writes.
 *
 *   configMap / secret  every key at its own name, or the items at their paths; a missing
 *                       object or key is an error unless optional (then it is left out).
 *   downwardAPI         fieldRef: fieldpath.ExtractFieldPathAsString (labels and annotations
 *                       as FormatMap: sorted `key="value"` lines, the value quoted as Go's %q);
 *                       resourceFieldRef: ceil(value / divisor) of the named container, a limit
 *                       not set being the node's allocatable (podspec_resource_value).
 *   projected           the sources' files in one payload (a later source's path wins); every
 *                       source is tried and the failures are reported together, as kubelet's
 *                       error aggregate; the token comes from the caller (satoken.c).
 * No I/O here: the objects come through the caller's lookup.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "podvolumes.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/util.h"

/* A configMap or secret as a volume or a projection names it. */
struct object_ref {
    bool secret;
    const char *name;
    const struct pod_key_path *items;
    size_t n_items;
    bool optional;
    int default_mode;
};

/* ---- configMap / secret ------------------------------------------------------------------ */

/* Every key of the object (ConfigMap data as is, binaryData and Secret data base64-decoded)
 * into all, path = key. Returns 0, KEDGE_ESCHEMA (msg set), -ENOMEM. */
static int object_keys(const struct kedge_jval *root, bool secret, const char *name,
                       struct vol_payload *all, char *msg, size_t msg_len)
{
    static const char *const fields[] = {"data", "binaryData"};
    const char *kind = secret ? "secret" : "configmap";
    size_t f;
    int rc;

    if (!root || root->type != KEDGE_JOBJ) {
        kedge_set_why(msg, msg_len, "%s \"%s\" is not an object", kind, name);
        return KEDGE_ESCHEMA;
    }
    for (f = 0; f < (secret ? 1u : 2u); f++) {
        const struct kedge_jval *obj = kedge_json_get(root, fields[f]), *m;
        bool b64 = secret || f == 1;

        if (kedge_json_is_null(obj))
            continue;
        if (obj->type != KEDGE_JOBJ) {
            kedge_set_why(msg, msg_len, "%s \"%s\": %s is not an object", kind, name, fields[f]);
            return KEDGE_ESCHEMA;
        }
        for (m = obj->child; m; m = m->next) {
            char *data = NULL, *key;
            size_t len = 0;

            if (m->type != KEDGE_JSTR || memchr(m->key, '\0', m->key_len)) {
                kedge_set_why(msg, msg_len, "%s \"%s\": %s.%.*s is not a string", kind, name,
                              fields[f], (int)m->key_len, m->key);
                return KEDGE_ESCHEMA;
            }
            if (b64) {
                rc = kedge_base64_decode(m->str, m->len, &data, &len);
                if (rc == KEDGE_EPARSE) {
                    kedge_set_why(msg, msg_len, "%s \"%s\": %s.%.*s is not base64", kind, name,
                                  fields[f], (int)m->key_len, m->key);
                    return KEDGE_ESCHEMA;
                }
                if (rc < 0)
                    return rc;
            } else {
                data = kedge_malloc(m->len + 1);
                if (!data)
                    return -ENOMEM;
                memcpy(data, m->str, m->len);
                data[m->len] = '\0';
                len = m->len;
            }
            key = kedge_strndup(m->key, m->key_len);
            if (!key || vol_payload_take(all, key, data, len, 0) < 0) {
                kedge_free(key);
                kedge_free(data);
                return -ENOMEM;
            }
        }
    }
    return 0;
}

/* What a configMap or secret (volume or projection) projects: every key at its own name, or
 * only the items at their paths (MakePayload). msg gets the FailedMount detail. Returns 0,
 * KEDGE_ESCHEMA, -ENOMEM. */
static int project(const struct object_ref *o, const struct vol_payload *all,
                   struct vol_payload *out, char *msg, size_t msg_len)
{
    bool secret = o->secret;
    size_t i, k;
    int rc;

    if (!o->n_items) {
        for (k = 0; k < all->n; k++) {
            char *clean;

            rc = vol_clean_path(all->f[k].path, &clean, msg, msg_len);
            if (rc == 0 && (strcmp(clean, all->f[k].path) || strchr(clean, '/'))) {
                /* a key is one file name (the API server's key rule) */
                kedge_set_why(msg, msg_len, "invalid path: %s is not a file name", all->f[k].path);
                rc = KEDGE_ESCHEMA;
            }
            kedge_free(clean);
            if (rc < 0)
                return rc;
            rc = vol_payload_add(out, all->f[k].path, all->f[k].data, all->f[k].len,
                                 o->default_mode);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    for (i = 0; i < o->n_items; i++) {
        const struct pod_key_path *it = &o->items[i];
        const struct vol_file *src = NULL;
        char *clean;

        for (k = all->n; k-- > 0;)
            if (it->key && !strcmp(all->f[k].path, it->key)) {
                src = &all->f[k];
                break;
            }
        if (!src) {
            if (o->optional)
                continue;
            if (secret)
                kedge_set_why(msg, msg_len, "references non-existent secret key: %s",
                              it->key ? it->key : "");
            else
                kedge_set_why(msg, msg_len, "configmap references non-existent config key: %s",
                              it->key ? it->key : "");
            return KEDGE_ESCHEMA;
        }
        rc = vol_clean_path(it->path ? it->path : "", &clean, msg, msg_len);
        if (rc < 0)
            return rc;
        rc = vol_payload_add(out, clean, src->data, src->len,
                             it->mode >= 0 ? it->mode : o->default_mode);
        kedge_free(clean);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The object's files into out. msg: the FailedMount detail. Returns 0, KEDGE_ESCHEMA, -ENOMEM
 * or the lookup's error. */
static int object_payload(const struct podvolumes_src *src, const char *ns,
                          const struct object_ref *o, struct vol_payload *out, char *msg,
                          size_t msg_len)
{
    const char *type = o->secret ? "secret" : "configmap";
    struct vol_payload all = {0};
    struct kedge_jdoc *doc = NULL;
    char *json = NULL;
    int rc;

    if (!o->name || !*o->name) {
        kedge_set_why(msg, msg_len, "%s has no name", type);
        return KEDGE_ESCHEMA;
    }
    rc = src && src->lookup ? src->lookup(src->lookup_ctx, type, ns, o->name, &json) : -ENOENT;
    if (rc == 0 && !json)
        rc = -EIO;
    if (rc == -ENOENT) {
        /* optional and missing: nothing projected (kubelet projects an empty object) */
        if (o->optional)
            return 0;
        kedge_set_why(msg, msg_len, "%s \"%s\" not found", type, o->name);
        return KEDGE_ESCHEMA;
    }
    if (rc < 0) {
        kedge_set_why(msg, msg_len, "get %s \"%s\": %s", type, o->name, kedge_strerror(rc));
        return rc;
    }
    rc = kedge_json_parse(json, strlen(json), &doc);
    if (rc == KEDGE_EPARSE) {
        kedge_set_why(msg, msg_len, "%s \"%s\" is not valid JSON", type, o->name);
        rc = KEDGE_ESCHEMA;
    }
    if (rc == 0)
        rc = object_keys(kedge_jdoc_root(doc), o->secret, o->name, &all, msg, msg_len);
    if (rc == 0)
        rc = project(o, &all, out, msg, msg_len);
    vol_payload_cleanup(&all);
    kedge_jdoc_free(doc);
    kedge_free(json);
    return rc;
}

/* ---- downwardAPI ------------------------------------------------------------------------- */

/* One code point of s (at most n bytes) as Go's utf8.DecodeRuneInString: its length, or 0 for
 * an invalid sequence (overlong, surrogate, beyond U+10FFFF, truncated). */
static size_t utf8_rune(const unsigned char *s, size_t n, uint32_t *r)
{
    size_t len, i;
    uint32_t c, min;

    if (s[0] < 0x80) {
        *r = s[0];
        return 1;
    }
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2, c = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, c = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *r = c;
    return len;
}

/* Whether Go's strconv.IsPrint would keep code point r (>= 0x80) as it is. Go's tables are
 * not copied: the C1 controls, the soft hyphen, the format characters and separators of
 * general category Cf/Zl/Zp in common use, private use and the non-characters are escaped;
 * every other assigned-looking code point is kept. */
static bool go_printable(uint32_t r)
{
    if (r < 0xa0 || r == 0xad || r == 0x61c || r == 0x180e)
        return false;
    if ((r >= 0x200b && r <= 0x200f) || (r >= 0x2028 && r <= 0x202e) ||
        (r >= 0x2060 && r <= 0x206f) || r == 0xfeff || (r >= 0xfff9 && r <= 0xfffb))
        return false;
    if ((r >= 0xe000 && r <= 0xf8ff) || r >= 0xf0000 || (r >= 0xfdd0 && r <= 0xfdef) ||
        (r & 0xfffe) == 0xfffe)
        return false;
    return true;
}

/* s quoted as Go's strconv.Quote (fmt's %q of a string). */
static int go_quote(struct kedge_buf *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    int rc = kedge_buf_putc(out, '"');

    while (rc == 0 && n) {
        uint32_t r = 0;
        size_t len = utf8_rune(p, n, &r);

        if (!len) {
            rc = kedge_buf_printf(out, "\\x%02x", p[0]);
            len = 1;
        } else if (r == '"' || r == '\\') {
            rc = kedge_buf_printf(out, "\\%c", (char)r);
        } else if (r >= 0x20 && r < 0x7f) {
            rc = kedge_buf_putc(out, (char)r);
        } else if (r < 0x80) {
            static const char esc[] = "\a\b\f\n\r\t\v", name[] = "abfnrtv";
            const char *e = r ? strchr(esc, (int)r) : NULL;
            rc = e ? kedge_buf_printf(out, "\\%c", name[e - esc])
                   : kedge_buf_printf(out, "\\x%02x", (unsigned)r);
        } else if (go_printable(r)) {
            rc = kedge_buf_append(out, p, len);
        } else {
            rc = r < 0x10000 ? kedge_buf_printf(out, "\\u%04x", (unsigned)r)
                             : kedge_buf_printf(out, "\\U%08x", (unsigned)r);
        }
        p += len;
        n -= len;
    }
    return rc == 0 ? kedge_buf_putc(out, '"') : rc;
}

static int kv_cmp(const void *a, const void *b)
{
    const struct pod_kv *x = *(const struct pod_kv *const *)a;
    const struct pod_kv *y = *(const struct pod_kv *const *)b;

    return strcmp(x->name, y->name);
}

/* fieldpath.FormatMap: `key="value"` per entry in key order, joined with newlines. */
static int format_map(const struct pod_kv *kv, size_t n, struct kedge_buf *out)
{
    const struct pod_kv **sorted;
    size_t i;
    int rc = 0;

    if (!n)
        return 0;
    sorted = kedge_calloc(n, sizeof(*sorted));
    if (!sorted)
        return -ENOMEM;
    for (i = 0; i < n; i++)
        sorted[i] = &kv[i];
    qsort(sorted, n, sizeof(*sorted), kv_cmp);
    for (i = 0; i < n && rc == 0; i++) {
        rc = kedge_buf_printf(out, "%s%s=", i ? "\n" : "", sorted[i]->name);
        if (rc == 0)
            rc = go_quote(out, sorted[i]->value);
    }
    kedge_free(sorted);
    return rc;
}

int podpayload_field(const struct pod_spec *p, const char *fp, struct kedge_buf *out)
{
    const char *v = NULL;

    if (podspec_metadata_field(p, fp, &v))
        return kedge_buf_puts(out, v ? v : "");
    if (!strcmp(fp, "metadata.labels"))
        return format_map(p->labels, p->n_labels, out);
    if (!strcmp(fp, "metadata.annotations"))
        return format_map(p->annotations, p->n_annotations, out);
    return KEDGE_ESCHEMA;
}

/* One downwardAPI file's content into val. msg: the error's text. */
static int field_file_value(const struct pod_spec *p, const struct pod_field_file *f,
                            struct kedge_buf *val, char *msg, size_t msg_len)
{
    const struct pod_container *c;
    int rc;

    if (f->field_path) {
        rc = podpayload_field(p, f->field_path, val);
        if (rc == KEDGE_ESCHEMA)
            kedge_set_why(msg, msg_len, "unsupported fieldPath: %s", f->field_path);
        return rc;
    }
    c = f->container ? podspec_find_container(p, f->container) : NULL;
    if (!c) {
        kedge_set_why(msg, msg_len, "container %s not found", f->container ? f->container : "");
        return KEDGE_ESCHEMA;
    }
    rc = podspec_resource_value(c, f->resource ? f->resource : "", f->divisor, val);
    if (rc == KEDGE_ESCHEMA)
        kedge_set_why(msg, msg_len, "invalid divisor %s", f->divisor ? f->divisor : "");
    return rc;
}

/* CollectData: every file, with its own mode or default_mode. */
static int downward_payload(const struct pod_spec *p, const struct pod_field_file *files, size_t n,
                            int default_mode, struct vol_payload *out, char *msg, size_t msg_len)
{
    struct kedge_buf val = KEDGE_BUF_INIT;
    size_t i;
    int rc = 0;

    for (i = 0; i < n && rc == 0; i++) {
        char *clean = NULL;

        kedge_buf_reset(&val);
        rc = vol_clean_path(files[i].path ? files[i].path : "", &clean, msg, msg_len);
        if (rc == 0)
            rc = field_file_value(p, &files[i], &val, msg, msg_len);
        if (rc == 0)
            rc = vol_payload_add(out, clean, val.data ? val.data : "", val.len,
                                 files[i].mode >= 0 ? files[i].mode : default_mode);
        kedge_free(clean);
    }
    kedge_buf_cleanup(&val);
    return rc;
}

/* ---- projected ------------------------------------------------------------------------------ */

/* utilerrors.NewAggregate(errs).Error(): one message as it is, several (duplicates dropped) in
 * "[a, b]". */
struct aggregate {
    struct kedge_buf msgs; /* NUL-separated */
    size_t n;
    int first_rc;
};

static int aggregate_add(struct aggregate *ag, int rc, const char *msg)
{
    size_t off = 0;

    for (; off < ag->msgs.len; off += strlen(ag->msgs.data + off) + 1)
        if (!strcmp(ag->msgs.data + off, msg))
            return 0;
    if (!ag->n)
        ag->first_rc = rc;
    ag->n++;
    return kedge_buf_append(&ag->msgs, msg, strlen(msg) + 1);
}

static void aggregate_text(const struct aggregate *ag, char *msg, size_t msg_len)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    size_t off = 0, i = 0;
    int rc = ag->n > 1 ? kedge_buf_putc(&b, '[') : 0;

    for (; rc == 0 && off < ag->msgs.len; off += strlen(ag->msgs.data + off) + 1, i++)
        rc = kedge_buf_printf(&b, "%s%s", i ? ", " : "", ag->msgs.data + off);
    if (rc == 0 && ag->n > 1)
        rc = kedge_buf_putc(&b, ']');
    kedge_set_why(msg, msg_len, "%s", rc == 0 && b.data ? b.data : "out of memory");
    kedge_buf_cleanup(&b);
}

static int token_payload(const struct podvolumes_src *src, const struct pod_spec *p,
                         const struct pod_projection *pr, int mode, struct vol_payload *out,
                         char *msg, size_t msg_len)
{
    char *token = NULL, *clean = NULL;
    int rc;

    if (!src || !src->token) {
        kedge_set_why(msg, msg_len, "failed to fetch token: no token source on this node");
        return KEDGE_ESCHEMA;
    }
    rc = src->token(src->token_ctx, p, pr, &token, msg, msg_len);
    if (rc == 0)
        rc = vol_clean_path(pr->path ? pr->path : "", &clean, msg, msg_len);
    if (rc == 0 && (rc = vol_payload_take(out, clean, token, strlen(token), mode)) == 0)
        clean = token = NULL;
    kedge_free(clean);
    kedge_free(token);
    return rc;
}

static int projection_payload(const struct podvolumes_src *src, const struct pod_spec *p,
                              const struct pod_volume *v, const struct pod_projection *pr,
                              struct vol_payload *out, char *msg, size_t msg_len)
{
    const char *ns = p->ns ? p->ns : "default";
    struct object_ref o = {pr->kind == PROJ_SECRET, pr->name, pr->items, pr->n_items, pr->optional,
                           v->default_mode};

    switch (pr->kind) {
    case PROJ_NONE:
        return 0;
    case PROJ_CONFIGMAP:
    case PROJ_SECRET:
        return object_payload(src, ns, &o, out, msg, msg_len);
    case PROJ_DOWNWARD:
        return downward_payload(p, pr->fields, pr->n_fields, v->default_mode, out, msg, msg_len);
    case PROJ_TOKEN:
        /* kubelet: 0600 instead when an fsUser/fsGroup owns the volume; kedge sets neither */
        return token_payload(src, p, pr, v->default_mode, out, msg, msg_len);
    }
    return 0;
}

/* Each source into one payload; a source that fails contributes nothing, and all failures are
 * reported together. */
static int projected_payload(const struct podvolumes_src *src, const struct pod_spec *p,
                             const struct pod_volume *v, struct vol_payload *out, char *msg,
                             size_t msg_len)
{
    struct aggregate ag = {KEDGE_BUF_INIT, 0, 0};
    char one[512];
    size_t i;
    int rc = 0;

    for (i = 0; i < v->n_sources && rc != -ENOMEM; i++) {
        struct vol_payload part = {0};
        size_t k;

        one[0] = '\0';
        rc = projection_payload(src, p, v, &v->sources[i], &part, one, sizeof(one));
        for (k = 0; rc == 0 && k < part.n; k++) {
            rc = vol_payload_take(out, part.f[k].path, part.f[k].data, part.f[k].len,
                                  part.f[k].mode);
            if (rc == 0)
                part.f[k].path = part.f[k].data = NULL;
        }
        vol_payload_cleanup(&part);
        if (rc < 0 && rc != -ENOMEM)
            rc = aggregate_add(&ag, rc, one[0] ? one : kedge_strerror(rc));
    }
    if (rc == 0 && ag.n) {
        aggregate_text(&ag, msg, msg_len);
        rc = ag.first_rc;
    }
    kedge_buf_cleanup(&ag.msgs);
    return rc;
}

int podpayload_build(const struct podvolumes_src *src, const struct pod_spec *p,
                     const struct pod_volume *v, struct vol_payload *out, char *msg, size_t msg_len)
{
    struct object_ref o = {v->kind == VOL_SECRET, v->source,      v->items, v->n_items,
                           v->optional,           v->default_mode};

    switch (v->kind) {
    case VOL_CONFIGMAP:
    case VOL_SECRET:
        return object_payload(src, p->ns ? p->ns : "default", &o, out, msg, msg_len);
    case VOL_DOWNWARD:
        return downward_payload(p, v->fields, v->n_fields, v->default_mode, out, msg, msg_len);
    case VOL_PROJECTED:
        return projected_payload(src, p, v, out, msg, msg_len);
    default:
        kedge_set_why(msg, msg_len, "not a file volume");
        return -EINVAL;
    }
}
