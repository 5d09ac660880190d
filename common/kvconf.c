/* kvconf: table-driven `key value` parsing shared by the plugin, the bridge, kedge-ctl and
 * cloudsim (include/kedge/kvconf.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/kvconf.h"
#include "kedge/log.h"
#include "kedge/util.h"

static int fault(const struct kvconf *c, enum kvconf_fault f, const char *where,
                 const struct kvconf_key *key, const char *value, int err)
{
    struct kvconf_error e = {f,     where, key, key ? key->key : NULL, key ? strlen(key->key) : 0,
                             value, err};

    if (c->report)
        c->report(c->report_arg, &e);
    return KEDGE_ECONFIG;
}

const struct kvconf_key *kvconf_find(const struct kvconf *c, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < c->n_keys; i++)
        if (strlen(c->keys[i].key) == len && !strncmp(c->keys[i].key, name, len))
            return &c->keys[i];
    return NULL;
}

static void *field(const struct kvconf *c, const struct kvconf_key *key)
{
    return (char *)c->base + key->off;
}

static bool in_choices(const char *v, const char *const *choices)
{
    for (; *choices; choices++)
        if (!strcmp(v, *choices))
            return true;
    return false;
}

int kvconf_set(const struct kvconf *c, const struct kvconf_key *key, const char *value,
               const char *where)
{
    char *copy, *old;

    if (key->type == KVCONF_LONG) {
        long v;
        if (kedge_parse_long(value, key->min, key->max, &v) < 0)
            return fault(c, KVCONF_NOT_LONG, where, key, value, 0);
        memcpy(field(c, key), &v, sizeof(v));
        return 0;
    }
    if (key->choices && !in_choices(value, key->choices))
        return fault(c, KVCONF_NOT_CHOICE, where, key, value, 0);
    copy = kedge_strdup(value);
    if (!copy)
        return -ENOMEM;
    memcpy(&old, field(c, key), sizeof(old));
    kedge_free(old);
    memcpy(field(c, key), &copy, sizeof(copy));
    return 0;
}

int kvconf_defaults(const struct kvconf *c)
{
    size_t i;
    int rc = 0;

    for (i = 0; i < c->n_keys && rc == 0; i++)
        if (c->keys[i].def)
            rc = kvconf_set(c, &c->keys[i], c->keys[i].def, "default");
    return rc;
}

int kvconf_set_name(const struct kvconf *c, const char *name, size_t len, const char *value,
                    const char *where)
{
    const struct kvconf_key *key = kvconf_find(c, name, len);

    if (key)
        return kvconf_set(c, key, value, where);
    if (c->ignore_unknown)
        return 0;
    if (c->report) {
        struct kvconf_error e = {KVCONF_UNKNOWN, where, NULL, name, len, value, 0};
        c->report(c->report_arg, &e);
    }
    return KEDGE_ECONFIG;
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

int kvconf_line(const struct kvconf *c, char *line, char sep, const char *where)
{
    const struct kvconf_key *key;
    size_t klen;
    char *v;

    line = trim(line);
    if (!*line || *line == '#')
        return 0;
    klen = strcspn(line, sep == '=' ? "=" : " \t");
    key = kvconf_find(c, line, klen);
    if (!key)
        return kvconf_set_name(c, line, klen, "", where); /* reports or ignores it */
    v = line[klen] ? trim(line + klen + 1) : line + klen;
    if (sep == '=' ? line[klen] != '=' : !*v)
        return fault(c, KVCONF_NO_VALUE, where, key, v, 0);
    return kvconf_set(c, key, v, where);
}

int kvconf_file(const struct kvconf *c, const char *path, bool missing_ok)
{
    FILE *f = fopen(path, "re");
    char *line = NULL, where[4096 + 24];
    size_t cap = 0;
    unsigned long n = 0;
    int rc = 0;

    if (!f) {
        if (missing_ok && errno == ENOENT)
            return 0;
        return fault(c, KVCONF_OPEN, path, NULL, NULL, errno);
    }
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        n++;
        (void)snprintf(where, sizeof(where), "%s:%lu", path, n);
        rc = kvconf_line(c, line, ' ', where);
    }
    if (rc == 0 && ferror(f))
        rc = fault(c, KVCONF_READ, path, NULL, NULL, errno);
    else if (rc == 0 && !feof(f))
        rc = -ENOMEM; /* getline stopped without an error or the end: it could not grow */
    free(line);       /* getline's, always libc */
    (void)fclose(f);
    return rc;
}

int kvconf_read_secret(const char *who, const char *path, char **out)
{
    int rc = kedge_read_secret(path, out);

    if (rc == -ENOMEM || rc == 0)
        return rc;
    kedge_log(KEDGE_LOG_ERR, "%s %s: %s", who, path,
              rc == KEDGE_ECONFIG ? "no password on its first line" : strerror(-rc));
    return KEDGE_ECONFIG;
}

void kvconf_free(const struct kvconf *c)
{
    size_t i;

    for (i = 0; i < c->n_keys; i++) {
        if (c->keys[i].type == KVCONF_STR) {
            char *s, *null = NULL;
            memcpy(&s, field(c, &c->keys[i]), sizeof(s));
            kedge_free(s);
            memcpy(field(c, &c->keys[i]), &null, sizeof(null));
        }
    }
}

void kvconf_describe(const struct kvconf_error *e, char *buf, size_t n)
{
    const char *w = e->where ? e->where : "", *sep = e->where ? ": " : "";
    int len = (int)e->name_len;

    switch (e->fault) {
    case KVCONF_UNKNOWN:
        (void)snprintf(buf, n, "%s%sunknown key '%.*s'", w, sep, len, e->name);
        break;
    case KVCONF_NO_VALUE:
        (void)snprintf(buf, n, "%s%s%.*s has no value", w, sep, len, e->name);
        break;
    case KVCONF_NOT_LONG:
        (void)snprintf(buf, n, "%s%s%.*s '%s' is not a number in [%ld, %ld]", w, sep, len, e->name,
                       e->value, e->key->min, e->key->max);
        break;
    case KVCONF_NOT_CHOICE:
        (void)snprintf(buf, n, "%s%s%.*s '%s' is not one of the allowed values", w, sep, len,
                       e->name, e->value);
        break;
    case KVCONF_OPEN:
        (void)snprintf(buf, n, "cannot open %s: %s", w, strerror(e->err));
        break;
    case KVCONF_READ:
        (void)snprintf(buf, n, "reading %s: %s", w, strerror(e->err));
        break;
    }
}
