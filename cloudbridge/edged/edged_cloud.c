/* edged_cloud.c: Edged's messages to the cloud and its lookups in the meta store. A store miss
 * while the link is up asks the cloud (kubelet would read the API server); the answer, stored
 * by MetaManager, is found at the next sync.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "edged_int.h"
#include "kedge/alloc.h"
#include "kedge/util.h"

/* A message of edged to the meta group; *m's allocations are the caller's to free. */
static int message(struct kedge_msg *m, const char *op, const char *resource, const char *content,
                   size_t len, bool as_string)
{
    int rc;

    m->source = "edged";
    m->group = "meta";
    m->operation = (char *)op;
    m->resource = (char *)resource;
    rc = kedge_msg_new_id(m);
    if (rc == 0)
        rc = as_string ? kedge_msg_set_content_string(m, content, len)
                       : kedge_msg_set_content_json(m, content, len);
    return rc;
}

static void message_cleanup(struct kedge_msg *m)
{
    kedge_free(m->msg_id);
    kedge_free(m->content);
    kedge_free(m->content_str);
}

int edged_send_to_cloud(struct edged *ed, const char *op, const char *resource, const char *content,
                        bool as_string)
{
    struct kedge_msg m = {0};
    struct kedge_buf b = KEDGE_BUF_INIT;
    int rc = message(&m, op, resource, content, strlen(content), as_string);

    if (rc == 0)
        rc = kedge_msg_encode(&b, &m, false);
    if (rc == 0)
        rc = ed->deps.send(ed->deps.ctx, b.data, b.len);
    kedge_buf_cleanup(&b);
    message_cleanup(&m);
    return rc;
}

int edged_deps_request(const struct edged_deps *deps, int timeout_ms, const char *op,
                       const char *resource, const char *content, size_t len, bool as_string,
                       edged_reply_fn fn, void *ctx)
{
    struct kedge_msg m = {0};
    int rc = message(&m, op, resource, content, len, as_string);

    if (rc == 0)
        rc = deps->request(deps->ctx, &m, timeout_ms, fn, ctx);
    message_cleanup(&m);
    return rc;
}

int edged_request_cloud(struct edged *ed, const char *op, const char *resource, const char *content,
                        bool as_string, edged_reply_fn fn, void *ctx)
{
    return edged_deps_request(&ed->deps, (int)ed->cfg.remote_timeout_ms, op, resource, content,
                              strlen(content), as_string, fn, ctx);
}

static void ask_cloud(struct edged *ed, struct epod *p, const char *key)
{
    uint64_t now = kedge_now_ms();

    if (!ed->deps.connected(ed->deps.ctx) ||
        (p->queried_ms && now - p->queried_ms < QUERY_AGAIN_MS))
        return;
    p->queried_ms = now;
    (void)edged_send_to_cloud(ed, "query", key, "null", false);
}

int edged_store_lookup(void *ctx, const char *type, const char *ns, const char *name, char **json)
{
    struct lookup_ctx *lc = ctx;
    char key[700];
    int rc;

    snprintf(key, sizeof(key), "%s/%s/%s", ns, type, name);
    rc = lc->ed->deps.store_get(lc->ed->deps.ctx, key, json);
    if (rc == -ENOENT)
        ask_cloud(lc->ed, lc->p, key);
    return rc;
}
