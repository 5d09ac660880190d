/* kedge-ctl outbox list|show|retry|drop: the plugin's queue ($ke/ctl), the bridge's queue and
 * its dead letters ($ke/bctl). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/json.h"
#include "kedge/kebody.h"
#include "ctl.h"

/* "p:12", "b:7", "d:3": which queue and which entry; a bare number is the plugin's seq.
 * 0, or EXIT_USAGE after saying why. */
static int outbox_ref(const char *ref, char *queue, int64_t *id)
{
    bool bare = *ref >= '0' && *ref <= '9';
    char *end;
    long long v;

    if (!bare && (strlen(ref) < 3 || !strchr("pbd", ref[0]) || ref[1] != ':'))
        goto bad;
    errno = 0;
    v = strtoll(bare ? ref : ref + 2, &end, 10);
    if (errno || *end || v <= 0)
        goto bad;
    *queue = bare ? 'p' : ref[0];
    *id = v;
    return 0;
bad:
    complain("'%s' is not an entry: p:SEQ (the plugin's queue), b:ID (the bridge's), d:ID (a "
             "dead letter), as outbox list shows them\n",
             ref);
    return EXIT_USAGE;
}

static const char *num(char (*cell)[24], int64_t v)
{
    (void)snprintf(*cell, sizeof(*cell), "%lld", (long long)v);
    return *cell;
}

/* One table of an outbox_list / dead_list answer. which: 'p', 'b' or 'd'. */
static void print_entries(const struct kedge_jval *root, char which)
{
    static const char *const head[3][6] = {
        {"ENTRY", "RESOURCE", "BYTES", "AGE_S", "STATE", "-"},
        {"ENTRY", "RESOURCE", "BYTES", "AGE_S", "FAILURES", "STATE"},
        {"ENTRY", "RESOURCE", "BYTES", "AGE_S", "FAILURES", "REASON"},
    };
    const struct kedge_jval *list = kedge_json_get(root, "entries"), *e;
    int t = which == 'p' ? 0 : which == 'b' ? 1 : 2;
    size_t ncol = t == 0 ? 5 : 6, n = 1;
    char(*nums)[24];
    const char **cells;

    if (!list || list->type != KEDGE_JARR || !list->n) {
        out("  (empty)\n");
        return;
    }
    cells = table_new(list->n, ncol, head[t]);
    nums = calloc((list->n + 1) * 4, sizeof(*nums));
    if (!nums)
        die_oom();
    for (e = list->child; e; e = e->next, n++) {
        const char **row = cells + n * ncol;
        char(*nb)[24] = nums + n * 4;
        (void)snprintf(nb[0], sizeof(nb[0]), "%c:%lld", which,
                       (long long)jint(e, which == 'p' ? "seq" : "id"));
        row[0] = nb[0];
        row[1] = or_dash(jstr(e, "resource"));
        row[2] = num(&nb[1], jint(e, "bytes"));
        row[3] = num(&nb[2], jint(e, "age_ms") / 1000);
        if (t == 0) {
            row[4] = jbool(e, "subject") ? "coalesced" : "-";
            continue;
        }
        row[4] = num(&nb[3], jint(e, "failures"));
        row[5] = t == 2                  ? or_dash(jstr(e, "reason"))
                 : jbool(e, "in_flight") ? "in-flight"
                 : jbool(e, "blocked")   ? "waiting"
                                         : "queued";
    }
    table_print(cells, n, ncol);
    free(nums);
}

int cmd_outbox_list(struct cmd_ctx *c, int argc, char **argv)
{
    struct kebody_request req = {.op = "outbox_list", .has_limit = KEBODY_INT};
    struct kedge_jdoc *doc = NULL;
    char *end = NULL;
    long long limit = 20;
    int rc;

    if (argc == 2 && !strcmp(argv[0], "--limit")) {
        errno = 0;
        limit = strtoll(argv[1], &end, 10);
    }
    if ((argc != 0 && argc != 2) || (argc == 2 && (!end || *end || errno || limit < 1))) {
        complain("usage: outbox list [--limit N]\n");
        return EXIT_USAGE;
    }
    req.limit = limit;
    rc = ask(c, ctl_query, &req, &doc);
    if (rc)
        return rc;
    if (refused(doc, "the plugin's queue") == 0) {
        out("plugin queue: %lld entries, %lld upload bytes\n",
            (long long)jint(kedge_jdoc_root(doc), "depth"),
            (long long)jint(kedge_jdoc_root(doc), "bytes"));
        print_entries(kedge_jdoc_root(doc), 'p');
    }
    kedge_jdoc_free(doc);
    rc = bctl_query(&c->s, &req, &doc);
    if (rc == EXIT_CONNECT) {
        /* the plugin's queue is what matters most while the bridge is away: shown, exit 0 */
        out("bridge queue and dead letters: kedge-bridge did not answer (not running?)\n");
        return 0;
    }
    if (rc)
        return rc;
    out("bridge queue: %lld entries, %lld of %lld upload bytes\n",
        (long long)jint(kedge_jdoc_root(doc), "depth"),
        (long long)jint(kedge_jdoc_root(doc), "bytes"),
        (long long)jint(kedge_jdoc_root(doc), "budget_bytes"));
    print_entries(kedge_jdoc_root(doc), 'b');
    kedge_jdoc_free(doc);
    req.op = "dead_list";
    rc = bctl_query(&c->s, &req, &doc);
    if (rc)
        return rc;
    out("dead letters: %lld\n", (long long)jint(kedge_jdoc_root(doc), "count"));
    print_entries(kedge_jdoc_root(doc), 'd');
    kedge_jdoc_free(doc);
    return 0;
}

/* outbox show|drop|retry REF: one request to the queue REF names. */
static int cmd_outbox_act(struct cmd_ctx *c, const char *verb, int argc, char **argv)
{
    struct kebody_request req = {0};
    struct kedge_jdoc *doc = NULL;
    char queue, op[24];
    int64_t id;
    int rc;

    if (argc != 1) {
        complain("usage: outbox %s %s\n", verb,
                 !strcmp(verb, "retry") ? "d:ID" : "p:SEQ|b:ID|d:ID");
        return EXIT_USAGE;
    }
    rc = outbox_ref(argv[0], &queue, &id);
    if (rc)
        return rc;
    if (!strcmp(verb, "retry") && queue != 'd') {
        complain("only a dead letter (d:ID) can be retried; queued entries go on their own\n");
        return EXIT_USAGE;
    }
    (void)snprintf(op, sizeof(op), "%s_%s", queue == 'd' ? "dead" : "outbox", verb);
    req.op = op;
    if (queue == 'p') {
        req.has_seq = KEBODY_INT;
        req.seq = id;
    } else {
        req.has_id = KEBODY_INT;
        req.id = id;
    }
    rc = ask(c, queue == 'p' ? ctl_query : bctl_query, &req, &doc);
    if (rc == 0)
        rc = refused(doc, argv[0]);
    if (rc == 0 && !strcmp(verb, "show")) {
        print_json(kedge_jdoc_root(doc), 0);
        out("\n");
    } else if (rc == 0) {
        out("%s: %s\n", argv[0], !strcmp(verb, "drop") ? "dropped" : "queued again");
    }
    kedge_jdoc_free(doc);
    return rc;
}

int cmd_outbox_show(struct cmd_ctx *c, int argc, char **argv)
{
    return cmd_outbox_act(c, "show", argc, argv);
}

int cmd_outbox_retry(struct cmd_ctx *c, int argc, char **argv)
{
    return cmd_outbox_act(c, "retry", argc, argv);
}

int cmd_outbox_drop(struct cmd_ctx *c, int argc, char **argv)
{
    return cmd_outbox_act(c, "drop", argc, argv);
}
