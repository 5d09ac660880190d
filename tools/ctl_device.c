/* kedge-ctl device add|rm|list|get: the cloud's membership update on $ke/down (add, rm) and the
 * plugin's device_list / device_get queries, with the validation of ids and twin specs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/json.h"
#include "kedge/ke.h"
#include "kedge/kebody.h"
#include "kedge/msg.h"
#include "kedge/twin.h"
#include "kedge/util.h"
#include "ctl.h"

/* device_get for id: *doc is the answer, *found whether the device exists. */
static int device_lookup(struct session *s, const char *id, struct kedge_jdoc **doc, bool *found)
{
    struct kebody_request req = {.op = "device_get", .id_str = id, .id_len = strlen(id)};
    int rc = ctl_query(s, &req, doc);

    if (rc)
        return rc;
    *found = answer_code(kedge_jdoc_root(*doc)) == 0;
    if (!*found && answer_code(kedge_jdoc_root(*doc)) != 404) {
        const char *reason = jstr(kedge_jdoc_root(*doc), "reason");
        complain("device_get refused (code %lld): %s\n",
                 (long long)answer_code(kedge_jdoc_root(*doc)), reason ? reason : "");
        kedge_jdoc_free(*doc);
        *doc = NULL;
        return EXIT_REFUSED;
    }
    return 0;
}

/* A membership update (docs/kubeedge-wire.md §2.10) on $ke/down/{msg_id}, as the cloud's device
 * controller sends it. content: the membership JSON. Returns 0 when the plugin answered
 * {"ok":true}. */
static int down_membership(struct session *s, const char *content, size_t len)
{
    struct kedge_msg m = {0};
    struct kedge_buf msg = KEDGE_BUF_INIT, topic = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    struct kebody_result res;
    int rc;

    m.source = "kedge-ctl";
    m.group = "twin";
    m.resource = "membership";
    m.operation = "update";
    m.content = (char *)content;
    m.content_len = len;
    if (kedge_msg_new_id(&m) < 0 || kedge_msg_encode(&msg, &m, false) < 0 ||
        kedge_buf_printf(&topic, "%s%s", KE_DOWN_PREFIX, m.msg_id) < 0)
        die_oom();
    rc = session_request(s, topic.data, msg.data, msg.len, PLUGIN_WHO);
    if (rc)
        goto out;
    rc = EXIT_REFUSED;
    if (kebody_result_decode(s->reply.data, s->reply.len, &doc, &res) < 0 && !doc) {
        complain("the plugin's answer is not JSON: %.*s\n", (int)s->reply.len, s->reply.data);
        goto out;
    }
    if (res.ok) {
        rc = 0;
    } else {
        complain("refused by the node (code %lld): %s\n", (long long)res.code,
                 res.reason ? res.reason : "(no reason given)");
    }
out:
    kedge_jdoc_free(doc);
    kedge_free(m.msg_id);
    kedge_buf_cleanup(&msg);
    kedge_buf_cleanup(&topic);
    return rc;
}

/* A device id is `namespace/name` (KubeEdge v1.17+) or a bare `name`: one or two topic levels
 * of Kubernetes-name characters, so that every $hw/events/device/{id}/... topic parses. NULL
 * when it is, else what is wrong with it: a length says "too long", not "bad characters". */
static const char *device_id_problem(const char *id)
{
    const char *p = id;
    int levels = 0;

    for (;;) {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");
        if (n > ID_LEVEL_MAX)
            return "is too long: a namespace or name has at most 253 characters";
        if (n == 0)
            break;
        levels++;
        p += n;
        if (*p == '\0')
            return levels <= 2 ? NULL : "has more than two levels: use NAMESPACE/NAME or NAME";
        if (*p != '/')
            break;
        p++;
    }
    return "must be NAMESPACE/NAME or NAME, of letters, digits, '-', '_' and '.'";
}

/* rm and get take any id the node may hold (the cloud's membership update is not held to the
 * rule above), so that a device added with an odd id can still be looked at and removed. NULL
 * or what is wrong. */
static const char *device_id_unusable(const char *id)
{
    const unsigned char *p = (const unsigned char *)id;

    if (!*p)
        return "is empty";
    if (strlen(id) > 2 * ID_LEVEL_MAX + 1)
        return "is too long: a device id has at most 507 characters";
    for (; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return "has control characters";
    return NULL;
}

static const char *const twin_types[] = {"string", "int", "integer", "float", "boolean"};

struct twin_spec {
    char *name;
    const char *type;
};

static int cmp_twin_spec(const void *a, const void *b)
{
    return strcmp(((const struct twin_spec *)a)->name, ((const struct twin_spec *)b)->name);
}

/* NAME:TYPE; NAME may itself hold ':' (KubeEdge's key charset allows it), TYPE never does. */
static int twin_spec_parse(const char *arg, struct twin_spec *out)
{
    const char *colon = strrchr(arg, ':');
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!colon || colon == arg) {
        complain("--twin '%s': expected NAME:TYPE\n", arg);
        return EXIT_USAGE;
    }
    for (i = 0; i < sizeof(twin_types) / sizeof(twin_types[0]); i++)
        if (!strcmp(colon + 1, twin_types[i]))
            out->type = twin_types[i];
    if (!out->type) {
        complain("--twin '%s': type '%s' is not one of string, int, integer, float, "
                 "boolean\n",
                 arg, colon + 1);
        return EXIT_USAGE;
    }
    if (!kedge_twin_key_valid(arg, (size_t)(colon - arg))) {
        complain("--twin '%s': %s\n", arg, KEDGE_REASON_KEY);
        return EXIT_USAGE;
    }
    out->name = strndup(arg, (size_t)(colon - arg));
    if (!out->name)
        die_oom();
    return 0;
}

static void write_device(struct kedge_jw *w, const char *id, const char *description,
                         const struct twin_spec *twins, size_t n)
{
    const char *slash = strrchr(id, '/');
    size_t i;

    kedge_jw_arr_open(w);
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "id", id);
    kedge_jw_kstr(w, "name", slash ? slash + 1 : id);
    if (description && *description)
        kedge_jw_kstr(w, "description", description);
    if (n) {
        kedge_jw_key(w, "twin");
        kedge_jw_obj_open(w);
        for (i = 0; i < n; i++) {
            kedge_jw_key(w, twins[i].name);
            kedge_jw_obj_open(w);
            kedge_jw_key(w, "metadata");
            kedge_jw_obj_open(w);
            kedge_jw_kstr(w, "type", twins[i].type);
            kedge_jw_obj_close(w);
            kedge_jw_obj_close(w);
        }
        kedge_jw_obj_close(w);
    }
    kedge_jw_obj_close(w);
    kedge_jw_arr_close(w);
}

/* The membership update content (docs/kubeedge-wire.md §2.10): one device added (with its twins'
 * names and types, no values: those come from the device) or removed. */
static void write_membership(struct kedge_jw *w, const char *id, const char *description,
                             const struct twin_spec *twins, size_t n, bool add)
{
    char uuid[KEDGE_UUID_LEN + 1];

    kedge_uuid4(uuid);
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "event_id", uuid);
    kedge_jw_kint(w, "timestamp", kedge_wall_ms());
    kedge_jw_key(w, "added_devices");
    if (add)
        write_device(w, id, description, twins, n);
    else
        kedge_jw_null(w);
    kedge_jw_key(w, "removed_devices");
    if (add)
        kedge_jw_null(w);
    else
        write_device(w, id, NULL, NULL, 0);
    kedge_jw_obj_close(w);
}

int cmd_device_add(struct cmd_ctx *c, int argc, char **argv)
{
    const char *why;
    struct twin_spec *twins = NULL;
    const char *id = NULL, *description = NULL, *v;
    struct kedge_buf content = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    struct kedge_jw w;
    size_t n = 0, i;
    bool found;
    int rc = 0;

    twins = calloc((size_t)argc + 1, sizeof(*twins));
    if (!twins)
        die_oom();
    for (int k = 0; k < argc && rc == 0; k++) {
        int t = long_value(argc, argv, &k, "--twin", &v), d = 0;

        if (t == 0)
            d = long_value(argc, argv, &k, "--description", &v);
        if (t < 0 || d < 0) {
            rc = EXIT_USAGE;
        } else if (t) {
            rc = twin_spec_parse(v, &twins[n]);
            if (rc == 0)
                n++;
        } else if (d) {
            description = v;
        } else if (argv[k][0] == '-' || id) {
            complain("device add: unexpected '%s'\n", argv[k]);
            rc = EXIT_USAGE;
        } else {
            id = argv[k];
        }
    }
    if (rc)
        goto out;
    if (!id) {
        complain("device add: missing ID\n");
        rc = EXIT_USAGE;
        goto out;
    }
    if ((why = device_id_problem(id)) != NULL) {
        complain("device id '%.80s%s' %s\n", id, strlen(id) > 80 ? "..." : "", why);
        rc = EXIT_USAGE;
        goto out;
    }
    /* Go prints map keys sorted; the plugin keeps twins sorted by name too */
    qsort(twins, n, sizeof(*twins), cmp_twin_spec);
    for (i = 1; i < n; i++) {
        if (!strcmp(twins[i - 1].name, twins[i].name)) {
            complain("twin '%s' given twice\n", twins[i].name);
            rc = EXIT_USAGE;
            goto out;
        }
    }
    kedge_jw_init(&w, &content);
    write_membership(&w, id, description, twins, n, true);
    if (kedge_jw_finish(&w) < 0)
        die_oom();

    rc = connect_once(c);
    if (rc == 0)
        rc = device_lookup(&c->s, id, &doc, &found);
    if (rc)
        goto out;
    if (found) {
        /* the cloud's membership update would only sync twins of a known device; an operator
         * asking to add it again more likely typed the wrong id */
        complain("device %s already exists on this node (device rm it first)\n", id);
        rc = EXIT_REFUSED;
        goto out;
    }
    rc = down_membership(&c->s, content.data, content.len);
    if (rc == 0)
        out("device %s added with %zu twin%s\n", id, n, n == 1 ? "" : "s");
out:
    for (i = 0; i < n; i++)
        free(twins[i].name);
    free(twins);
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&content);
    return rc;
}

int cmd_device_rm(struct cmd_ctx *c, int argc, char **argv)
{
    const char *why;
    struct kedge_buf content = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    struct kedge_jw w;
    bool found;
    int rc;

    if (argc != 1) {
        complain("usage: device rm ID\n");
        return EXIT_USAGE;
    }
    if ((why = device_id_unusable(argv[0])) != NULL) {
        complain("device id '%.80s%s' %s\n", argv[0], strlen(argv[0]) > 80 ? "..." : "", why);
        return EXIT_USAGE;
    }
    kedge_jw_init(&w, &content);
    write_membership(&w, argv[0], NULL, NULL, 0, false);
    if (kedge_jw_finish(&w) < 0)
        die_oom();
    rc = connect_once(c);
    if (rc == 0)
        rc = device_lookup(&c->s, argv[0], &doc, &found);
    if (rc == 0 && !found) {
        complain("device %s not found\n", argv[0]);
        rc = EXIT_REFUSED;
    }
    if (rc == 0)
        rc = down_membership(&c->s, content.data, content.len);
    if (rc == 0)
        out("device %s removed\n", argv[0]);
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&content);
    return rc;
}

int cmd_device_list(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct kebody_request req = {.op = "device_list"};
    static const char *const head[] = {"ID", "NAME", "STATE", "LAST_ONLINE"};
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *devs, *d;
    const char **cells;
    size_t n = 1;
    int rc;

    (void)argv;
    if (argc != 0) {
        complain("usage: device list\n");
        return EXIT_USAGE;
    }
    rc = ask_member(c, ctl_query, &req, "devices", true, "the plugin's answer has no device list",
                    &doc, &devs);
    if (rc)
        return rc;
    cells = table_new(devs->n, 4, head);
    for (d = devs->child; d; d = d->next, n++) {
        cells[n * 4 + 0] = or_dash(jstr(d, "id"));
        cells[n * 4 + 1] = or_dash(jstr(d, "name"));
        cells[n * 4 + 2] = or_dash(jstr(d, "state"));
        cells[n * 4 + 3] = or_dash(jstr(d, "last_online"));
    }
    table_print(cells, n, 4);
    kedge_jdoc_free(doc);
    return 0;
}

static const char *twin_value(const struct kedge_jval *twin, const char *side)
{
    return or_dash(jstr(kedge_json_get(twin, side), "value"));
}

int cmd_device_get(struct cmd_ctx *c, int argc, char **argv)
{
    const char *why;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *twins, *t;
    static const char *const head[] = {"TWIN", "TYPE", "EXPECTED", "ACTUAL"};
    const char *id = NULL, **cells;
    bool table = false, found;
    size_t n = 1;
    int rc;

    if (one_operand(argc, argv, "--table", &id, &table, "device get ID [--table]") < 0)
        return EXIT_USAGE;
    if ((why = device_id_unusable(id)) != NULL) {
        complain("device id '%.80s%s' %s\n", id, strlen(id) > 80 ? "..." : "", why);
        return EXIT_USAGE;
    }
    rc = connect_once(c);
    if (rc == 0)
        rc = device_lookup(&c->s, id, &doc, &found);
    if (rc)
        return rc;
    if (!found) {
        complain("device %s not found\n", id);
        rc = EXIT_REFUSED;
        goto out;
    }
    root = kedge_jdoc_root(doc);
    if (!table) {
        print_json(root, 0);
        out("\n");
        goto out;
    }
    twins = kedge_json_get(root, "twin");
    cells = table_new(twins && twins->type == KEDGE_JOBJ ? twins->n : 0, 4, head);
    if (twins && twins->type == KEDGE_JOBJ) {
        for (t = twins->child; t; t = t->next, n++) {
            cells[n * 4 + 0] = t->key;
            cells[n * 4 + 1] = or_dash(jstr(kedge_json_get(t, "metadata"), "type"));
            cells[n * 4 + 2] = twin_value(t, "expected");
            cells[n * 4 + 3] = twin_value(t, "actual");
        }
    }
    table_print(cells, n, 4);
out:
    kedge_jdoc_free(doc);
    return rc;
}
