/* Shared by the podspec_*.c files (podspec.h's parser): Go-decoder-like typed getters that
 * know where in the pod they are, so an error reads as the API server's
 * (`spec.containers[0].resources.limits.memory: quantity "12x" is not valid`), and the checks
 * of names, quantities and image references. Not for use outside podspec*.c and podenv.c.
 */
#ifndef KEDGE_EDGED_PODSPEC_DECODE_H
#define KEDGE_EDGED_PODSPEC_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/json.h"
#include "podspec.h"

#define PODSPEC_MAX_JSON (4u << 20) /* a pod in etcd is at most 1.5 MiB */
#define MAX_CONTAINERS 64           /* per list: initContainers, containers */
#define MAX_ITEMS 1024              /* any other list or map of a pod */
#define MAX_QUANTITY 128            /* characters in a quantity */
#define FNV_BASIS 2166136261u
#define LABEL_MSG                                                                                  \
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "   \
    "must start and end with an alphanumeric character"
#define SUBDOMAIN_MSG                                                                              \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "   \
    "'.', and must start and end with an alphanumeric character"

struct parse_ctx {
    char *why;
    size_t why_len;
    char path[256]; /* "spec.containers[0].env[2]": where the parser is */
    size_t plen;
};

/* Parse the i-th element e of a list into elem (zeroed; an element of the list's array). */
typedef int (*elem_fn)(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                       void *ctx);

size_t ps__path_key(struct parse_ctx *x, const char *key);
void ps__path_pop(struct parse_ctx *x, size_t old);
/* KEDGE_ESCHEMA, why = "<path>: <message>". */
int ps__fail(struct parse_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for the member key of where the parser is. */
int ps__fail_at(struct parse_ctx *x, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *ps__jtype_name(const struct kedge_jval *v);
const struct kedge_jval *ps__member(const struct kedge_jval *obj, const char *key);
int ps__get_str(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, char **out);
/* The same, but "" is not set either (*out NULL): Go's `if x != ""` fields. */
int ps__get_opt_str(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, char **out);
/* The same, with dflt for absent or "" (the API server's defaulting). */
int ps__get_str_or(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
                   const char *dflt, char **out);
/* "<path>.key: Required value" when s is NULL or "". */
int ps__required(struct parse_ctx *x, const char *key, const char *s);
/* "<path>: must be an object, not ..." unless v is one. */
int ps__want_object(struct parse_ctx *x, const struct kedge_jval *v);
/* A file mode in [0, 0777]; absent or null leaves *mode. */
int ps__get_mode(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, int *mode);

/* One member of an object as Go's decoder fills a struct field from it. */
enum ps_kind {
    PS_STR,      /* char *: a string (absent or null: NULL, or a copy of dflt when set) */
    PS_REQUIRED, /* a PS_STR that the validation then requires not to be empty */
    PS_OPT_STR,  /* char *: a string, "" counting as not set (NULL) */
    PS_BOOL,     /* bool */
    PS_MODE,     /* int: a file mode, ps__get_mode */
};
struct ps_field {
    const char *key;
    enum ps_kind kind;
    void *out;
    const char *dflt; /* PS_STR: the value for absent or "" */
};
/* obj must be an object; its fields are decoded in order, then the PS_REQUIRED ones are
 * checked in order: as the API server decodes the whole object before validating it, a type
 * error comes before a missing value. */
int ps__get_fields(struct parse_ctx *x, const struct kedge_jval *obj, const struct ps_field *f,
                   size_t n);
#define PS_COUNT(a) (sizeof(a) / sizeof(*(a)))
int ps__get_bool(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, bool *out);
int ps__get_int(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, int64_t min,
                int64_t max, int64_t *out);
int ps__get_obj(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
                const struct kedge_jval **out);
int ps__parse_list(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, size_t max,
                   size_t elem_size, void *out, size_t *n, elem_fn fn, void *ctx);
int ps__get_strv(struct parse_ctx *x, const struct kedge_jval *obj, const char *key, char ***out,
                 size_t *n);
int ps__sorted_members(const struct kedge_jval *obj, const struct kedge_jval ***out, size_t *n);
/* Go's "one of" members (a volume's type, a probe's handler, an env var's source): how many
 * of names[0..n) obj has (not null), *which the index of the last of them, whose value is
 * returned (NULL: none). */
const struct kedge_jval *ps__one_of(const struct kedge_jval *obj, const char *const *names,
                                    size_t n, size_t *count, size_t *which);
/* The members of the object obj[key] (at most MAX_ITEMS), as ps__sorted_members; none when
 * it is absent. */
int ps__get_members(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
                    const struct kedge_jval ***mems, size_t *n);
int ps__get_map(struct parse_ctx *x, const struct kedge_jval *obj, const char *key,
                struct pod_kv **out, size_t *n);
bool ps__dns_subdomain(const char *s);
int ps__check_label(struct parse_ctx *x, const char *key, const char *s);
bool ps__env_name_ok(const char *s);
const char *ps__relative_path_problem(const char *s);
int ps__quantity_scaled(const char *s, size_t len, int scale, int64_t *out, bool *neg);
int ps__quantity_text(struct parse_ctx *x, const char *key, const struct kedge_jval *v,
                      const char **s, size_t *n);
int ps__get_quantity(struct parse_ctx *x, const char *key, const struct kedge_jval *v, int scale,
                     int64_t *out);
const char *ps__default_pull_policy(const char *image);
uint32_t ps__fnv1a(const void *p, size_t n, uint32_t h);
int ps__container_hash(const struct kedge_jval *v, uint32_t *out);
int ps__parse_volumes(struct parse_ctx *x, const struct kedge_jval *spec, struct pod_spec *p);
const char *ps__field_subscript(const char *fp, const char *prefix, size_t *len);
int ps__parse_resource_ref(struct parse_ctx *x, const struct kedge_jval *ref, char **resource,
                           char **container, char **divisor);
int ps__parse_containers(struct parse_ctx *x, const struct kedge_jval *spec, const char *key,
                         struct pod_spec *p, struct pod_container **out, size_t *n_out);

#endif
