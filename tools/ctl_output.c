/* kedge-ctl's output: stdout and stderr through one pair of functions, JSON printed indented,
 * tables in aligned columns. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/buf.h"
#include "kedge/json.h"
#include "ctl.h"

/* Output goes through these two, so that a failed write is handled in one place: stderr has
 * nowhere better to go, and stdout's error state is checked once before exit (main). */
__attribute__((format(printf, 1, 2))) void out(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vprintf(fmt, ap);
    va_end(ap);
}

/* "kedge-ctl: " + the message, on stderr. */
__attribute__((format(printf, 1, 2))) void complain(const char *fmt, ...)
{
    va_list ap;

    (void)fputs("kedge-ctl: ", stderr);
    va_start(ap, fmt);
    (void)vfprintf(stderr, fmt, ap);
    va_end(ap);
}

void die_oom(void)
{
    complain("out of memory\n");
    exit(EXIT_CONNECT);
}

char *xstrdup(const char *s)
{
    char *d = strdup(s);

    if (!d)
        die_oom();
    return d;
}

static void print_json_string(const char *s, size_t len)
{
    struct kedge_buf b = KEDGE_BUF_INIT;

    if (kedge_json_escape(&b, s, len) < 0)
        die_oom();
    out("%.*s", (int)b.len, b.data);
    kedge_buf_cleanup(&b);
}

void print_json(const struct kedge_jval *v, int indent)
{
    const struct kedge_jval *m;

    switch (v->type) {
    case KEDGE_JNULL:
        out("null");
        break;
    case KEDGE_JBOOL:
        out("%s", v->boolean ? "true" : "false");
        break;
    case KEDGE_JNUM:
        out("%.*s", (int)v->len, v->str);
        break;
    case KEDGE_JSTR:
        print_json_string(v->str, v->len);
        break;
    case KEDGE_JOBJ:
    case KEDGE_JARR:
        if (!v->child) {
            out("%s", v->type == KEDGE_JOBJ ? "{}" : "[]");
            break;
        }
        out("%c", v->type == KEDGE_JOBJ ? '{' : '[');
        for (m = v->child; m; m = m->next) {
            out("\n%*s", (indent + 1) * 2, "");
            if (v->type == KEDGE_JOBJ) {
                print_json_string(m->key, m->key_len);
                out(": ");
            }
            print_json(m, indent + 1);
            if (m->next)
                out(",");
        }
        out("\n%*s%c", indent * 2, "", v->type == KEDGE_JOBJ ? '}' : ']');
        break;
    }
}

/* A table: rows of ncol cells (borrowed), columns padded to their widest cell. */
void print_table(const char *const *cells, size_t nrows, size_t ncol)
{
    size_t width[8] = {0}, r, k;

    for (r = 0; r < nrows; r++)
        for (k = 0; k < ncol; k++)
            if (strlen(cells[r * ncol + k]) > width[k])
                width[k] = strlen(cells[r * ncol + k]);
    for (r = 0; r < nrows; r++) {
        for (k = 0; k < ncol; k++) {
            if (k + 1 < ncol)
                out("%-*s  ", (int)width[k], cells[r * ncol + k]);
            else
                out("%s\n", cells[r * ncol + k]);
        }
    }
}

const char **table_new(size_t rows, size_t ncol, const char *const *head)
{
    const char **cells = calloc((rows + 1) * ncol, sizeof(*cells));

    if (!cells)
        die_oom();
    memcpy(cells, head, ncol * sizeof(*cells));
    return cells;
}

void table_print(const char **cells, size_t nrows, size_t ncol)
{
    print_table(cells, nrows, ncol);
    free(cells);
}

const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}
