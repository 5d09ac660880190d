/* kedge-ctl's requests: one $ke/ request and its JSON answer (the plugin's $ke/ctl, the
 * bridge's $ke/bctl and $ke/meta), the bodies through kebody, and the answers' fields. */
#include <stdio.h>

#include "kedge/buf.h"
#include "kedge/json.h"
#include "kedge/ke.h"
#include "kedge/kebody.h"
#include "kedge/util.h"
#include "ctl.h"

/* {prefix}{ref} with body to the plugin or the bridge (who, whose: for messages); the answer
 * parsed into *doc (caller frees). Returns 0 or an exit code after printing why. */
static int json_query(struct session *s, const char *prefix, const char *who, const char *whose,
                      const struct kebody_request *req, struct kedge_jdoc **doc)
{
    char ref[KEDGE_UUID_LEN + 1];
    struct kedge_buf topic = KEDGE_BUF_INIT, body = KEDGE_BUF_INIT;
    int rc;

    *doc = NULL;
    kedge_uuid4(ref);
    if (kedge_buf_printf(&topic, "%s%s", prefix, ref) < 0 || kebody_request_encode(&body, req) < 0)
        die_oom();
    rc = session_request(s, topic.data, body.data, body.len, who);
    kedge_buf_cleanup(&topic);
    kedge_buf_cleanup(&body);
    if (rc)
        return rc;
    if (kedge_json_parse(s->reply.data, s->reply.len, doc) < 0 ||
        kedge_jdoc_root(*doc)->type != KEDGE_JOBJ) {
        complain("%s answer is not a JSON object: %.*s\n", whose, (int)s->reply.len,
                 s->reply.data ? s->reply.data : "");
        kedge_jdoc_free(*doc);
        *doc = NULL;
        return EXIT_REFUSED;
    }
    return 0;
}

/* $ke/ctl/{ref}: the plugin. */
int ctl_query(struct session *s, const struct kebody_request *req, struct kedge_jdoc **doc)
{
    return json_query(s, KE_CTL_PREFIX, PLUGIN_WHO, "the plugin's", req, doc);
}

int ask(struct cmd_ctx *c, query_fn *q, const struct kebody_request *req, struct kedge_jdoc **doc)
{
    int rc = connect_once(c);

    *doc = NULL;
    return rc ? rc : q(&c->s, req, doc);
}

int ask_member(struct cmd_ctx *c, query_fn *q, const struct kebody_request *req, const char *name,
               bool list, const char *lacks, struct kedge_jdoc **doc,
               const struct kedge_jval **member)
{
    int rc = ask(c, q, req, doc);

    if (rc)
        return rc;
    *member = kedge_json_get(kedge_jdoc_root(*doc), name);
    if (*member && (!list || (*member)->type == KEDGE_JARR))
        return 0;
    complain("%s: %.*s\n", lacks, (int)c->s.reply.len, c->s.reply.data);
    kedge_jdoc_free(*doc);
    *doc = NULL;
    return EXIT_REFUSED;
}

const char *jstr(const struct kedge_jval *obj, const char *key)
{
    const struct kedge_jval *v = kedge_json_get(obj, key);

    return v && v->type == KEDGE_JSTR ? v->str : NULL;
}

/* The code of an error answer ({"code":404,"reason":...}), or 0 for a normal one. */
int64_t answer_code(const struct kedge_jval *root)
{
    struct kebody_result res;

    kebody_result_read(root, &res);
    return res.code;
}

/* Read the password and connect, once the command's arguments are known to be fine (a usage
 * error must not depend on the password file or the broker). */
int connect_once(struct cmd_ctx *c)
{
    if (c->open)
        return 0;
    c->open = true;
    c->password = password_read(c->cfg->password_file);
    if (!c->password)
        return EXIT_CONNECT;
    return session_open(&c->s, c->cfg, c->password);
}

/* $ke/meta/{ref} with body; the answer parsed into *doc (caller frees). An {"ok":false} answer
 * is printed and returned as EXIT_REFUSED. Returns 0 or an exit code after printing why. */
int meta_query(struct session *s, const struct kebody_request *req, struct kedge_jdoc **doc)
{
    struct kebody_result res;
    int rc = json_query(s, KE_META_PREFIX, BRIDGE_WHO, "the bridge's", req, doc);

    if (rc)
        return rc;
    kebody_result_read(kedge_jdoc_root(*doc), &res);
    if (!res.ok) {
        complain("%s\n", res.reason ? res.reason : "refused by the bridge (no reason given)");
        kedge_jdoc_free(*doc);
        *doc = NULL;
        return EXIT_REFUSED;
    }
    return 0;
}

/* $ke/bctl/{ref}: kedge-bridge's queue and dead letters (include/kedge/ke.h). */
int bctl_query(struct session *s, const struct kebody_request *req, struct kedge_jdoc **doc)
{
    return json_query(s, KE_BCTL_PREFIX, BRIDGE_WHO, "the bridge's", req, doc);
}

/* An answer with a "code" (404, 409, 400...): print its reason, EXIT_REFUSED. Else 0. */
int refused(struct kedge_jdoc *doc, const char *what)
{
    struct kebody_result res;

    kebody_result_read(kedge_jdoc_root(doc), &res);
    if (!res.code)
        return 0;
    complain("%s: %s (code %lld)\n", what, or_dash(res.reason), (long long)res.code);
    return EXIT_REFUSED;
}

int64_t jint(const struct kedge_jval *o, const char *key)
{
    int64_t v = 0;

    (void)kedge_json_int64(kedge_json_get(o, key), &v);
    return v;
}

bool jbool(const struct kedge_jval *o, const char *key)
{
    const struct kedge_jval *v = kedge_json_get(o, key);

    return v && v->type == KEDGE_JBOOL && v->boolean;
}
