/* kedge-ctl meta get|list: kedge-bridge's MetaManager asked on $ke/meta. */
#include <stdlib.h>
#include <string.h>

#include "kedge/json.h"
#include "kedge/kebody.h"
#include "ctl.h"

/* The bridge may wait for the cloud up to this long: most of our own deadline, so its "no
 * answer from the cloud" reaches us before we give up on the bridge. */
static int64_t meta_timeout_ms(const struct ctl_config *cfg)
{
    return cfg->timeout_s * 1000 * 4 / 5;
}

static bool resource_usable(const char *r, bool need_name)
{
    const unsigned char *p = (const unsigned char *)r;
    const char *slash = strchr(r, '/');

    if (!*r || strlen(r) > 512 || !slash || slash == r || !slash[1] ||
        (need_name && (!strchr(slash + 1, '/') || strchr(slash + 1, '/')[1] == '\0')))
        return false;
    for (; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '+' || *p == '#')
            return false;
    return true;
}

int cmd_meta_get(struct cmd_ctx *c, int argc, char **argv)
{
    struct kebody_request req = {.op = "query", .has_timeout_ms = KEBODY_INT};
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *obj;
    const char *resource = NULL;
    bool show_source = false;
    int rc;

    if (one_operand(argc, argv, "--source", &resource, &show_source,
                    "meta get RESOURCE [--source]") < 0)
        return EXIT_USAGE;
    if (!resource_usable(resource, true)) {
        complain("'%s' is not a resource: NAMESPACE/TYPE/NAME, e.g. default/configmap/cm1\n",
                 resource);
        return EXIT_USAGE;
    }
    req.resource = resource;
    req.resource_len = strlen(resource);
    req.timeout_ms = meta_timeout_ms(c->cfg);
    rc = ask_member(c, meta_query, &req, "object", false, "the bridge's answer holds no object",
                    &doc, &obj);
    if (rc)
        return rc;
    if (show_source)
        out("source: %s\n", or_dash(jstr(kedge_jdoc_root(doc), "source")));
    print_json(obj, 0);
    out("\n");
    kedge_jdoc_free(doc);
    return 0;
}

int cmd_meta_list(struct cmd_ctx *c, int argc, char **argv)
{
    struct kebody_request req = {.op = "list"};
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *objs, *o;
    static const char *const head[] = {"KEY", "RESOURCE_VERSION"};
    const char **cells;
    size_t n = 1;
    int rc;

    if (argc != 1 || argv[0][0] == '-' || !*argv[0] || strchr(argv[0], '/')) {
        complain("usage: meta list TYPE (configmap, secret, pod, node, device, ...)\n");
        return EXIT_USAGE;
    }
    req.type = argv[0];
    req.type_len = strlen(argv[0]);
    rc = ask_member(c, meta_query, &req, "objects", true, "the bridge's answer has no object list",
                    &doc, &objs);
    if (rc)
        return rc;
    cells = table_new(objs->n, 2, head);
    for (o = objs->child; o; o = o->next, n++) {
        cells[n * 2 + 0] = or_dash(jstr(o, "key"));
        cells[n * 2 + 1] = or_dash(
            jstr(kedge_json_get(kedge_json_get(o, "object"), "metadata"), "resourceVersion"));
    }
    table_print(cells, n, 2);
    kedge_jdoc_free(doc);
    return 0;
}
