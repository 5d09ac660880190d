/* kedge-ctl pod list|get: the node's pods from kedge-bridge's store ($ke/meta): each pod as the
 * cloud sent it ({ns}/pod/{name}) and the status Edged last reported for it, the podpatch row
 * ({ns}/podpatch/{name}, docs/kubeedge-wire.md §5.1), so an operator sees a pod's phase with
 * the cloud away.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/json.h"
#include "kedge/kebody.h"
#include "ctl.h"

/* Every stored object of type (the answer's "objects"): 0 or an exit code after printing why. */
static int list_type(struct cmd_ctx *c, const char *type, struct kedge_jdoc **doc,
                     const struct kedge_jval **objs)
{
    struct kebody_request req = {.op = "list"};

    req.type = type;
    req.type_len = strlen(type);
    return ask_member(c, meta_query, &req, "objects", true,
                      "the bridge's answer has no object list", doc, objs);
}

/* The podpatch of namespace/name among patches: its "status" object, NULL when none. A patch
 * stored as a string holding JSON (the wire form) is parsed into *parsed (caller frees). */
static const struct kedge_jval *status_of(const struct kedge_jval *patches, const char *ns,
                                          const char *name, struct kedge_jdoc **parsed)
{
    const struct kedge_jval *o, *obj;
    char key[600];

    *parsed = NULL;
    (void)snprintf(key, sizeof(key), "%s/podpatch/%s", ns, name);
    for (o = patches ? patches->child : NULL; o; o = o->next) {
        if (!jstr(o, "key") || strcmp(jstr(o, "key"), key))
            continue;
        obj = kedge_json_get(o, "object");
        if (obj && obj->type == KEDGE_JSTR) {
            if (kedge_json_parse(obj->str, obj->len, parsed) < 0)
                return NULL;
            obj = kedge_jdoc_root(*parsed);
        }
        return kedge_json_get(obj, "status");
    }
    return NULL;
}

/* Why a pod is not running: the status's reason, else the first container's waiting or
 * terminated reason. */
static const char *reason_of(const struct kedge_jval *status)
{
    const struct kedge_jval *cs = kedge_json_get(status, "containerStatuses"), *c;
    const char *r = jstr(status, "reason");

    for (c = cs && cs->type == KEDGE_JARR ? cs->child : NULL; !r && c; c = c->next) {
        const struct kedge_jval *st = kedge_json_get(c, "state");
        r = jstr(kedge_json_get(st, "waiting"), "reason");
        if (!r)
            r = jstr(kedge_json_get(st, "terminated"), "reason");
    }
    return r;
}

int cmd_pod_list(struct cmd_ctx *c, int argc, char **argv)
{
    static const char *const head[] = {"NAMESPACE", "NAME", "PHASE", "IP", "REASON"};
    struct kedge_jdoc *pods = NULL, *patches = NULL, **parsed;
    const struct kedge_jval *po, *pa = NULL, *p;
    const char **cells;
    size_t n = 1, i;
    int rc;

    (void)argv;
    if (argc != 0) {
        complain("usage: pod list\n");
        return EXIT_USAGE;
    }
    rc = list_type(c, "pod", &pods, &po);
    if (rc == 0)
        rc = list_type(c, "podpatch", &patches, &pa);
    if (rc) {
        kedge_jdoc_free(pods);
        return rc;
    }
    cells = table_new(po->n, 5, head);
    parsed = calloc(po->n + 1, sizeof(*parsed));
    if (!parsed)
        die_oom();
    for (p = po->child; p; p = p->next, n++) {
        const struct kedge_jval *meta = kedge_json_get(kedge_json_get(p, "object"), "metadata");
        const char *ns = or_dash(jstr(meta, "namespace")), *name = or_dash(jstr(meta, "name"));
        const struct kedge_jval *st = status_of(pa, ns, name, &parsed[n - 1]);
        cells[n * 5 + 0] = ns;
        cells[n * 5 + 1] = name;
        cells[n * 5 + 2] = or_dash(jstr(st, "phase"));
        cells[n * 5 + 3] = or_dash(jstr(st, "podIP"));
        cells[n * 5 + 4] = or_dash(reason_of(st));
    }
    table_print(cells, n, 5);
    for (i = 0; i < po->n; i++)
        kedge_jdoc_free(parsed[i]);
    free(parsed);
    kedge_jdoc_free(patches);
    kedge_jdoc_free(pods);
    return 0;
}

int cmd_pod_get(struct cmd_ctx *c, int argc, char **argv)
{
    struct kebody_request req = {.op = "query", .has_timeout_ms = KEBODY_INT};
    struct kedge_jdoc *pod = NULL, *patches = NULL, *parsed = NULL;
    const struct kedge_jval *obj, *pa = NULL;
    const char *slash, *ns = "default", *name;
    char key[600], nsbuf[256];
    int rc;

    if (argc != 1 || argv[0][0] == '-' || !*argv[0]) {
        complain("usage: pod get [NAMESPACE/]NAME\n");
        return EXIT_USAGE;
    }
    name = argv[0];
    if ((slash = strchr(name, '/')) != NULL) {
        if (slash == name || !slash[1] || strchr(slash + 1, '/') ||
            (size_t)(slash - name) >= sizeof(nsbuf)) {
            complain("'%s' is not NAMESPACE/NAME or NAME\n", argv[0]);
            return EXIT_USAGE;
        }
        (void)snprintf(nsbuf, sizeof(nsbuf), "%.*s", (int)(slash - name), name);
        ns = nsbuf;
        name = slash + 1;
    }
    if (strlen(name) > ID_LEVEL_MAX) {
        complain("pod name is too long: at most %d characters\n", ID_LEVEL_MAX);
        return EXIT_USAGE;
    }
    (void)snprintf(key, sizeof(key), "%s/pod/%s", ns, name);
    req.resource = key;
    req.resource_len = strlen(key);
    req.timeout_ms = c->cfg->timeout_s * 1000 * 4 / 5;
    rc = ask_member(c, meta_query, &req, "object", false, "the bridge's answer holds no object",
                    &pod, &obj);
    if (rc == 0)
        rc = list_type(c, "podpatch", &patches, &pa);
    if (rc == 0) {
        const struct kedge_jval *st = status_of(pa, ns, name, &parsed);
        out("pod: ");
        print_json(obj, 0);
        out("\nstatus: ");
        if (st)
            print_json(st, 0);
        else
            out("none reported yet");
        out("\n");
    }
    kedge_jdoc_free(parsed);
    kedge_jdoc_free(patches);
    kedge_jdoc_free(pod);
    return rc;
}
