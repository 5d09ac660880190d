/* regauth.c: kubelet's keyring of pull secrets (regauth.h). The rules are those of
 * k8s.io/kubernetes pkg/credentialprovider (keyring.go Add / Lookup / URLsMatch,
 * config.go DockerConfigEntry) and of Docker's reference normalisation; written from them,
 * not translated.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/util.h"
#include "regauth.h"

#define DEFAULT_REGISTRY_KEY "index.docker.io"

void regauth_cleanup(struct regauth *k)
{
    size_t i;

    for (i = 0; i < k->n; i++)
        kedge_free_all(k->e[i].key, k->e[i].username, k->e[i].password);
    kedge_free(k->e);
    k->e = NULL;
    k->n = 0;
}

/* ---- keys ---------------------------------------------------------------------------------- */

/* A schemeless URL's host and path (url.Parse after "https://" is put in front). */
struct url_parts {
    const char *host, *path;
    size_t host_len, path_len;
};

static void split_url(const char *s, struct url_parts *u)
{
    if (!strncmp(s, "https://", 8))
        s += 8;
    else if (!strncmp(s, "http://", 7))
        s += 7;
    u->host = s;
    u->host_len = strcspn(s, "/?#");
    u->path = s + u->host_len;
    u->path_len = strcspn(u->path, "?#");
}

/* kubelet's Add: the key a dockercfg location is filed under. */
static char *key_of(const char *loc)
{
    struct url_parts u;
    struct kedge_buf b = KEDGE_BUF_INIT;

    split_url(loc, &u);
    if (u.path_len >= 4 && (!strncmp(u.path, "/v2/", 4) || !strncmp(u.path, "/v1/", 4))) {
        u.path += 3; /* /v1/ and /v2/ name the registry itself */
        u.path_len -= 3;
    }
    if (u.path_len == 1 && u.path[0] == '/')
        u.path_len = 0;
    if (kedge_buf_append(&b, u.host, u.host_len) < 0 ||
        kedge_buf_append(&b, u.path, u.path_len) < 0 || kedge_buf_putc(&b, '\0') < 0) {
        kedge_buf_cleanup(&b);
        return NULL;
    }
    return kedge_buf_take(&b, NULL);
}

/* Keep the entries sorted by key, the greatest first; equal keys in the order added. */
static int insert(struct regauth *k, char *key, char *user, char *pass)
{
    struct regauth_entry *e = kedge_realloc(k->e, (k->n + 1) * sizeof(*e));
    size_t at = 0;

    if (!e) {
        kedge_free_all(key, user, pass);
        return -ENOMEM;
    }
    k->e = e;
    while (at < k->n && strcmp(e[at].key, key) >= 0)
        at++;
    memmove(&e[at + 1], &e[at], (k->n - at) * sizeof(*e));
    e[at].key = key;
    e[at].username = user;
    e[at].password = pass;
    k->n++;
    return 0;
}

static const char *str_of(const struct kedge_jval *o, const char *name)
{
    const struct kedge_jval *v = kedge_json_get_exact(o, name, strlen(name));

    return v && v->type == KEDGE_JSTR ? v->str : "";
}

/* DockerConfigEntry: "auth" is base64 of "user:password" and wins when present. */
static int add_entry(struct regauth *k, const struct kedge_jval *loc)
{
    const char *auth = str_of(loc, "auth");
    char *key = key_of(loc->key), *user = NULL, *pass = NULL, *raw = NULL, *colon;
    size_t raw_len = 0;
    int rc = 0;

    if (loc->type != KEDGE_JOBJ) {
        kedge_free(key);
        return KEDGE_EPARSE;
    }
    if (*auth) {
        rc = kedge_base64_decode(auth, strlen(auth), &raw, &raw_len);
        colon = rc == 0 ? memchr(raw, ':', raw_len) : NULL;
        if (rc == 0 && !colon)
            rc = KEDGE_EPARSE; /* "unable to parse auth field, must be formatted as user:pass" */
        if (rc == 0) {
            user = kedge_strndup(raw, (size_t)(colon - raw));
            pass = kedge_strndup(colon + 1, raw_len - (size_t)(colon - raw) - 1);
        }
        kedge_free(raw);
    } else {
        user = kedge_strdup(str_of(loc, "username"));
        pass = kedge_strdup(str_of(loc, "password"));
    }
    if (rc == 0 && (!key || !user || !pass))
        rc = -ENOMEM;
    if (rc < 0) {
        kedge_free_all(key, user, pass);
        return rc;
    }
    return insert(k, key, user, pass);
}

int regauth_add_config(struct regauth *k, const char *cfg, size_t len)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *loc;
    int rc = kedge_json_parse(cfg, len, &doc);

    if (rc < 0)
        return rc == -ENOMEM ? rc : KEDGE_EPARSE;
    root = kedge_jdoc_root(doc);
    rc = root->type == KEDGE_JOBJ ? 0 : KEDGE_EPARSE;
    for (loc = rc == 0 ? root->child : NULL; loc && rc == 0; loc = loc->next)
        rc = add_entry(k, loc);
    kedge_jdoc_free(doc);
    return rc;
}

/* data[name] of a secret, base64-decoded, as a dockercfg map (for dockerconfigjson: its
 * "auths"). */
static int add_data(struct regauth *k, const struct kedge_jval *data, const char *name, bool auths)
{
    const struct kedge_jval *v = kedge_json_get_exact(data, name, strlen(name)), *a;
    struct kedge_jdoc *doc = NULL;
    char *raw = NULL;
    size_t raw_len = 0;
    int rc;

    if (!v || v->type != KEDGE_JSTR || !v->len)
        return 0; /* kubelet: the key must exist and be non-empty */
    rc = kedge_base64_decode(v->str, v->len, &raw, &raw_len);
    if (rc == 0 && !auths)
        rc = regauth_add_config(k, raw, raw_len);
    else if (rc == 0 && (rc = kedge_json_parse(raw, raw_len, &doc)) == 0) {
        a = kedge_json_get(kedge_jdoc_root(doc), "auths");
        /* its "auths" object is a dockercfg map */
        for (a = a && a->type == KEDGE_JOBJ ? a->child : NULL; a && rc == 0; a = a->next)
            rc = add_entry(k, a);
    }
    kedge_jdoc_free(doc);
    kedge_free(raw);
    return rc == -ENOMEM || rc == 0 ? rc : KEDGE_EPARSE;
}

int regauth_add_secret(struct regauth *k, const char *json, size_t len)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *data;
    const char *type;
    int rc = kedge_json_parse(json, len, &doc);

    if (rc < 0)
        return rc == -ENOMEM ? rc : KEDGE_EPARSE;
    root = kedge_jdoc_root(doc);
    type = str_of(root, "type");
    data = kedge_json_get(root, "data");
    if (!strcmp(type, "kubernetes.io/dockerconfigjson"))
        rc = add_data(k, data, ".dockerconfigjson", true);
    else if (!strcmp(type, "kubernetes.io/dockercfg"))
        rc = add_data(k, data, ".dockercfg", false);
    kedge_jdoc_free(doc);
    return rc;
}

/* ---- repositories -------------------------------------------------------------------------- */

int regauth_repository(const char *image, char *out, size_t n)
{
    size_t len = strcspn(image, "@"), first = strcspn(image, "/");
    const char *last_slash = NULL, *p, *domain = "docker.io", *rest = image;
    size_t domain_len = 9;
    bool library;
    int w;

    for (p = image; p < image + len; p++)
        if (*p == '/')
            last_slash = p;
    p = memchr(last_slash ? last_slash : image, ':',
               len - (size_t)((last_slash ? last_slash : image) - image));
    if (p)
        len = (size_t)(p - image); /* the tag goes */
    if (first < len && (memchr(image, '.', first) || memchr(image, ':', first) ||
                        (first == 9 && !strncmp(image, "localhost", 9)))) {
        domain = image;
        domain_len = first;
        rest = image + first + 1;
        if (first == 15 && !strncmp(image, "index.docker.io", 15)) {
            domain = "docker.io";
            domain_len = 9;
        }
    }
    len -= (size_t)(rest - image);
    library = domain_len == 9 && !strncmp(domain, "docker.io", 9) && !memchr(rest, '/', len);
    w = snprintf(out, n, "%.*s/%s%.*s", (int)domain_len, domain, library ? "library/" : "",
                 (int)len, rest);
    return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

void regauth_registry(const char *repo, char *out, size_t n)
{
    snprintf(out, n, "%.*s", (int)strcspn(repo, "/"), repo);
}

/* ---- matching ------------------------------------------------------------------------------ */

/* net.SplitHostPort: "h:p" -> h, p; anything else is all host, no port. */
static void host_port(const struct url_parts *u, size_t *host_len, const char **port,
                      size_t *port_len)
{
    const char *colon = memchr(u->host, ':', u->host_len);

    *host_len = colon ? (size_t)(colon - u->host) : u->host_len;
    *port = colon ? colon + 1 : "";
    *port_len = colon ? u->host_len - *host_len - 1 : 0;
}

static size_t count_labels(const char *h, size_t n)
{
    size_t i, c = 1;

    for (i = 0; i < n; i++)
        c += h[i] == '.';
    return c;
}

/* Each host label of glob matches the target's label (filepath.Match: `*`, `?`, `[..]`). */
static bool labels_match(const char *g, size_t gl, const char *t, size_t tl)
{
    while (gl || tl) {
        size_t a = strcspn(g, "."), b = strcspn(t, ".");
        char gp[256], tp[256];

        a = a > gl ? gl : a;
        b = b > tl ? tl : b;
        snprintf(gp, sizeof(gp), "%.*s", (int)a, g);
        snprintf(tp, sizeof(tp), "%.*s", (int)b, t);
        if (fnmatch(gp, tp, FNM_PATHNAME) != 0)
            return false;
        g += a + (a < gl);
        gl -= a + (a < gl);
        t += b + (b < tl);
        tl -= b + (b < tl);
    }
    return true;
}

bool regauth_match(const char *key, const char *repo)
{
    struct url_parts g, t;
    const char *gport, *tport;
    size_t gh, th, gpl, tpl;

    split_url(key, &g);
    split_url(repo, &t);
    host_port(&g, &gh, &gport, &gpl);
    host_port(&t, &th, &tport, &tpl);
    if (gpl != tpl || memcmp(gport, tport, gpl))
        return false; /* the port must be the same (none = none) */
    if (count_labels(g.host, gh) != count_labels(t.host, th))
        return false;
    if (g.path_len > t.path_len || memcmp(g.path, t.path, g.path_len))
        return false; /* the key's path is a prefix of the repository's */
    return labels_match(g.host, gh, t.host, th);
}

/* isDefaultRegistryMatch, for a normalised repository: Docker Hub's. */
static bool on_docker_hub(const char *repo)
{
    return !strncmp(repo, "docker.io/", 10) || !strncmp(repo, "index.docker.io/", 16);
}

size_t regauth_lookup(const struct regauth *k, const char *repo, const struct regauth_entry **out,
                      size_t max)
{
    size_t i, n = 0;

    for (i = 0; i < k->n; i++)
        if (regauth_match(k->e[i].key, repo)) {
            if (n < max)
                out[n] = &k->e[i];
            n++;
        }
    if (n || !on_docker_hub(repo))
        return n;
    for (i = 0; i < k->n; i++)
        if (!strcmp(k->e[i].key, DEFAULT_REGISTRY_KEY)) {
            if (n < max)
                out[n] = &k->e[i];
            n++;
        }
    return n;
}

/* ---- the header ---------------------------------------------------------------------------- */

int regauth_header(const char *username, const char *password, const char *server,
                   struct kedge_buf *out)
{
    struct kedge_buf json = KEDGE_BUF_INIT;
    struct kedge_jw w;
    size_t from = out->len, i;
    int rc;

    kedge_jw_init(&w, &json);
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "username", username ? username : "");
    kedge_jw_kstr(&w, "password", password ? password : "");
    kedge_jw_kstr(&w, "serveraddress", server ? server : "");
    kedge_jw_obj_close(&w);
    rc = kedge_jw_finish(&w);
    if (rc == 0)
        rc = kedge_base64_encode(json.data, json.len, out);
    kedge_buf_cleanup(&json);
    if (rc < 0)
        return -ENOMEM;
    for (i = from; i < out->len; i++) /* base64url: the alphabet of RFC 4648 §5 */
        if (out->data[i] == '+')
            out->data[i] = '-';
        else if (out->data[i] == '/')
            out->data[i] = '_';
    return 0;
}
