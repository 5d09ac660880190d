/* kedge-ctl mapper list: the DMI mappers kedge-bridge knows ($ke/bctl op mapper_list). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "kedge/buf.h"
#include "kedge/json.h"
#include "kedge/kebody.h"
#include "kedge/util.h"

#define NCOL 6

/* "2: thermo-1,thermo-2" */
static void devices_cell(const struct kedge_jval *m, struct kedge_buf *b)
{
    const struct kedge_jval *list = kedge_json_get(m, "devices"), *e;
    int rc = kedge_buf_printf(b, "%zu", list && list->type == KEDGE_JARR ? list->n : (size_t)0);

    for (e = list && list->type == KEDGE_JARR ? list->child : NULL; rc == 0 && e; e = e->next)
        rc = kedge_buf_printf(b, "%s%s", e == list->child ? ": " : ",",
                              e->type == KEDGE_JSTR ? e->str : "?");
    if (rc < 0)
        die_oom();
}

/* The last report's age ("12s ago"), or "-" when none since the bridge started. */
static void age_cell(const struct kedge_jval *m, struct kedge_buf *b)
{
    int64_t at = jint(m, "last_report_ms"), now = kedge_wall_ms();

    if ((at <= 0
             ? kedge_buf_puts(b, "-")
             : kedge_buf_printf(b, "%llds ago", (long long)(now > at ? (now - at) / 1000 : 0))) < 0)
        die_oom();
}

static void print_mappers(const struct kedge_jval *list)
{
    static const char *const head[NCOL] = {"NAME",  "PROTOCOL", "SOCKET",
                                           "STATE", "DEVICES",  "LAST_REPORT"};
    struct kedge_buf *bufs;
    const struct kedge_jval *m;
    const char **cells;
    size_t n = 1, i;

    if (!list->n) {
        out("no mapper has registered\n");
        return;
    }
    cells = table_new(list->n, NCOL, head);
    bufs = calloc(list->n * 2, sizeof(*bufs));
    if (!bufs)
        die_oom();
    for (m = list->child; m; m = m->next, n++) {
        const char **row = cells + n * NCOL;
        struct kedge_buf *b = bufs + (n - 1) * 2;
        devices_cell(m, &b[0]);
        age_cell(m, &b[1]);
        row[0] = or_dash(jstr(m, "name"));
        row[1] = or_dash(jstr(m, "protocol"));
        row[2] = or_dash(jstr(m, "address"));
        row[3] = or_dash(jstr(m, "state"));
        row[4] = b[0].data;
        row[5] = b[1].data;
    }
    table_print(cells, n, NCOL);
    for (i = 0; i < list->n * 2; i++)
        kedge_buf_cleanup(&bufs[i]);
    free(bufs);
}

int cmd_mapper_list(struct cmd_ctx *c, int argc, char **argv)
{
    struct kebody_request req = {.op = "mapper_list"};
    const struct kedge_jval *list;
    struct kedge_jdoc *doc = NULL;
    bool json = argc == 2 && !strcmp(argv[0], "-o") && !strcmp(argv[1], "json");
    int rc;

    if (argc != 0 && !json) {
        complain("usage: mapper list [-o json]\n");
        return EXIT_USAGE;
    }
    rc =
        ask_member(c, bctl_query, &req, "mappers", true,
                   "the bridge's answer holds no mapper list (a bridge without DMI?)", &doc, &list);
    if (rc)
        return rc;
    if (json)
        out("%.*s\n", (int)c->s.reply.len, c->s.reply.data);
    else
        print_mappers(list);
    kedge_jdoc_free(doc);
    return 0;
}
