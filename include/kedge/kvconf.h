/* kvconf: the one key/value configuration parser.
 *
 * Every kedge program is configured by `key value` pairs: the plugin through mosquitto's
 * plugin_opt_* pairs, kedge-bridge through a mosquitto-style file plus `key=value` arguments,
 * kedge-ctl through the same file, kedge-cloudsim through `--key value` arguments. Each
 * describes its keys once in a table of struct kvconf_key rows (type, field offset, bounds,
 * default) and hands the table, the struct to fill and an error reporter to these functions.
 *
 * File syntax (mosquitto.conf's): one `key value` per line, blanks and tabs around both
 * ignored, blank lines and lines starting with '#' skipped; a key in a file must have a value.
 *
 * Errors are reported once, through the caller's kvconf_report_fn, so each program keeps its
 * own wording (and its users' log lines); kvconf_describe gives the common text.
 * Functions return 0, KEDGE_ECONFIG (reported) or -ENOMEM (not reported).
 */
#ifndef KEDGE_KVCONF_H
#define KEDGE_KVCONF_H

#include <stdbool.h>
#include <stddef.h>

enum kvconf_type {
    KVCONF_STR,  /* char * (kedge_strdup'd; kvconf_free releases it) */
    KVCONF_LONG, /* long in [min, max] */
};

struct kvconf_key {
    const char *key;
    enum kvconf_type type;
    size_t off; /* offsetof the field in the caller's struct */
    long min, max;
    const char *def; /* applied by kvconf_defaults; NULL: none (required or unset) */
    const char *help;
    const char *const *choices; /* KVCONF_STR: NULL-terminated allowed values; NULL: any */
};

enum kvconf_fault {
    KVCONF_UNKNOWN,    /* no such key (name/name_len) */
    KVCONF_NO_VALUE,   /* a key without its value */
    KVCONF_NOT_LONG,   /* value is not an integer in [key->min, key->max] */
    KVCONF_NOT_CHOICE, /* value is not one of key->choices */
    KVCONF_OPEN,       /* cannot open the file (err: errno) */
    KVCONF_READ,       /* reading the file failed (err: errno) */
};

struct kvconf_error {
    enum kvconf_fault fault;
    const char *where;            /* "path:line", "argument 2", a path, or NULL */
    const struct kvconf_key *key; /* NULL for KVCONF_UNKNOWN, OPEN, READ */
    const char *name;             /* the key as written (not NUL-terminated: name_len) */
    size_t name_len;
    const char *value;
    int err;
};

typedef void kvconf_report_fn(void *arg, const struct kvconf_error *e);

struct kvconf {
    const struct kvconf_key *keys;
    size_t n_keys;
    void *base;          /* the struct the offsets point into */
    bool ignore_unknown; /* a file shared with another program: skip the keys it does not know */
    kvconf_report_fn *report;
    void *report_arg;
};

/* The row for name[0..len), or NULL. */
const struct kvconf_key *kvconf_find(const struct kvconf *c, const char *name, size_t len);
/* Every row's default into its field. */
int kvconf_defaults(const struct kvconf *c);
/* Parse value into key's field (the old string is freed). */
int kvconf_set(const struct kvconf *c, const struct kvconf_key *key, const char *value,
               const char *where);
/* kvconf_find + kvconf_set; an unknown name is KVCONF_UNKNOWN (or 0 with ignore_unknown). */
int kvconf_set_name(const struct kvconf *c, const char *name, size_t len, const char *value,
                    const char *where);
/* One line, modified in place: sep ' ' is the file syntax (`key value`, comments, blank
 * lines); sep '=' is `key=value`, where the value may be empty. */
int kvconf_line(const struct kvconf *c, char *line, char sep, const char *where);
/* Every line of path, where = "path:N". missing_ok: a file that does not exist is 0. */
int kvconf_file(const struct kvconf *c, const char *path, bool missing_ok);
/* The secret file a key names (kedge_read_secret: its first line) into *out; a failure is
 * logged as "<who> <path>: <why>". Returns 0, KEDGE_ECONFIG or -ENOMEM. */
int kvconf_read_secret(const char *who, const char *path, char **out);
/* Free the string fields and set them NULL. */
void kvconf_free(const struct kvconf *c);
/* The error as text without a program prefix: "where: key 'v' is not a number in [1, 9]". */
void kvconf_describe(const struct kvconf_error *e, char *buf, size_t n);

#endif
