/* MetaManager (metamanager.h says what it is).
 *
 * Cloud insert/update/patch/delete of pods, configmaps, secrets, nodes, devices, device models
 * and the rest are stored (INSERT OR REPLACE, key = the trimmed resource), passed on to their
 * consumer (resource.h: devices and device models to devices.c, pods, configmaps and secrets to
 * Edged once it registers a hook), and acked to the cloud only after the row is committed. A
 * pod row is deleted only when the UID matches. Queries are answered as edgecore does: remote-first
 * types go to the cloud while the link is up (the reply is stored), everything else, and everything
 * while offline, from the table.
 *
 * Devices and device models (whichever controller sends them) go to devices.c's hook instead,
 * which stores and acks them once the plugin has applied what they mean for the device twins.
 *
 * The local query interface ($ke/meta/{ref}, include/kedge/ke.h) answers kedge-ctl (and any
 * bridge-identity client) the way edgecore's processQuery answers edged.
 *
 * The bridge holds an flock on the meta DB file while it runs (SQLite's own locks are fcntl
 * locks, so readers are not affected): a second bridge on the same file, or `kedge-ctl import`
 * while this one runs, is refused instead of racing it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <sqlite3.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/kebody.h"
#include "kedge/log.h"
#include "kedge/schema.h"
#include "kedge/util.h"
#include "metamanager.h"
#include "resource.h"

enum { ST_PUT, ST_DEL, ST_GET, ST_BY_TYPE, ST_DEL_POD, ST_COUNT };

static const char *const sql[ST_COUNT] = {
    [ST_PUT] = "INSERT OR REPLACE INTO meta (key, type, value) VALUES (?1, ?2, ?3)",
    [ST_DEL] = "DELETE FROM meta WHERE key = ?1",
    [ST_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_BY_TYPE] = "SELECT key, value FROM meta WHERE type = ?1 ORDER BY key",
    /* edgecore's DeleteMetaByKeyAndPodUID: the UID must be in the stored object */
    [ST_DEL_POD] = "DELETE FROM meta WHERE key = ?1 AND value LIKE '%' || ?2 || '%'",
};

/* Exactly edgecore's beego-era table (docs/kubeedge-wire.md §3.1), so `kedge-ctl import` can copy
 * rows as they are. */
static const char schema[] =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-256;" KEDGE_SCHEMA_META;

struct waiter {
    char *msg_id;
    metamgr_reply_fn fn;
    void *ctx;
    uint64_t deadline_ms;
};

struct metamgr {
    struct metamgr_config cfg;
    struct lws_context *lws;
    struct edgehub *hub;
    bool stopping;
    metamgr_answer_fn answer;
    void *answer_ctx;
    struct kedge_ratelimit rl; /* lines that can repeat per message or query */
    sqlite3 *db;
    int lock_fd; /* flock held on the DB file while the bridge runs; -1 none */
    sqlite3_stmt *st[ST_COUNT];
    struct waiter *waiters;
    size_t n_waiters;
    lws_sorted_usec_list_t sul;
    metamgr_pod_fn pod_hook;
    void *pod_ctx;
    metamgr_device_fn device_hook;
    void *device_ctx;
};

/* ---- the table ------------------------------------------------------------------------------ */

static int step(struct metamgr *mm, int which)
{
    int rc = sqlite3_step(mm->st[which]);

    sqlite3_reset(mm->st[which]);
    sqlite3_clear_bindings(mm->st[which]);
    if (rc != SQLITE_DONE) {
        kedge_log_limited(&mm->rl, "metamanager", KEDGE_LOG_ERR, "metamanager: %s",
                          sqlite3_errmsg(mm->db));
        return KEDGE_ESTORE;
    }
    return 0;
}

int metamgr_put(struct metamgr *mm, const char *key, const char *value, size_t len)
{
    char type[64];

    if (resource_type_of(key, type, sizeof(type)) < 0)
        type[0] = '\0';
    return metamgr_put_typed(mm, key, type, value, len);
}

int metamgr_put_typed(struct metamgr *mm, const char *key, const char *type, const char *value,
                      size_t len)
{
    sqlite3_bind_text(mm->st[ST_PUT], 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(mm->st[ST_PUT], 2, type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(mm->st[ST_PUT], 3, value, (int)len, SQLITE_TRANSIENT);
    return step(mm, ST_PUT);
}

int metamgr_get(struct metamgr *mm, const char *key, char **value)
{
    sqlite3_stmt *st = mm->st[ST_GET];
    int rc;

    *value = NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value = kedge_strdup((const char *)sqlite3_column_text(st, 0));
        rc = *value ? 0 : -ENOMEM;
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : KEDGE_ESTORE;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int metamgr_delete(struct metamgr *mm, const char *key)
{
    sqlite3_bind_text(mm->st[ST_DEL], 1, key, -1, SQLITE_TRANSIENT);
    return step(mm, ST_DEL);
}

int metamgr_list(struct metamgr *mm, const char *type, metamgr_row_fn fn, void *ctx)
{
    sqlite3_stmt *st = mm->st[ST_BY_TYPE];
    int rc;

    sqlite3_bind_text(st, 1, type, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : KEDGE_ESTORE;
}

static int delete_row(struct metamgr *mm, const struct kedge_msg *m, const char *type)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *uid = NULL;
    int rc;

    if (!resource_delete_by_uid(type)) {
        sqlite3_bind_text(mm->st[ST_DEL], 1, m->resource, -1, SQLITE_TRANSIENT);
        return step(mm, ST_DEL);
    }
    if (kedge_json_parse(m->content, m->content_len, &doc) == 0)
        uid = kedge_json_get(kedge_json_get(kedge_jdoc_root(doc), "metadata"), "uid");
    if (!uid || uid->type != KEDGE_JSTR || !uid->len) {
        kedge_jdoc_free(doc);
        return 0; /* no UID: nothing can match */
    }
    sqlite3_bind_text(mm->st[ST_DEL_POD], 1, m->resource, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(mm->st[ST_DEL_POD], 2, uid->str, (int)uid->len, SQLITE_TRANSIENT);
    rc = step(mm, ST_DEL_POD);
    if (rc == 0 && sqlite3_changes(mm->db) > 0) {
        /* and its podpatch row */
        char patch[600];
        const char *p = strstr(m->resource, "/pod/");
        if (p && snprintf(patch, sizeof(patch), "%.*s/podpatch/%s", (int)(p - m->resource),
                          m->resource, p + 5) < (int)sizeof(patch)) {
            sqlite3_bind_text(mm->st[ST_DEL], 1, patch, -1, SQLITE_TRANSIENT);
            rc = step(mm, ST_DEL);
        }
    }
    kedge_jdoc_free(doc);
    return rc;
}

/* ---- cloud messages ------------------------------------------------------------------------- */

static void ack(struct metamgr *mm, const struct kedge_msg *m)
{
    if (resource_needs_ack(m))
        (void)edgehub_ack(mm->hub, m); /* logged there when not sent; the cloud resends */
}

static int answer_waiter(struct metamgr *mm, const struct kedge_msg *m)
{
    size_t i;

    for (i = 0; i < mm->n_waiters; i++) {
        if (strcmp(mm->waiters[i].msg_id, m->parent_msg_id))
            continue;
        struct waiter w = mm->waiters[i];
        mm->waiters[i] = mm->waiters[--mm->n_waiters];
        w.fn(w.ctx, m, 0);
        kedge_free(w.msg_id);
        return 0;
    }
    return -ENOENT;
}

/* A cloud reply's content, as the requesters read it: an ObjectResp {"Object":..,"Err":..}
 * (node, lease, patch replies), a bare object (query replies), or a bare Kubernetes StatusError
 * {"ErrStatus":{..}} (a query of a missing object). Members point into the parsed tree. */
struct reply_view {
    const struct kedge_jval *obj; /* the object, or NULL */
    bool error;                   /* Err set, or a bare ErrStatus */
    const char *reason, *message; /* ErrStatus.reason / .message when given, else NULL */
};

static const char *jstr(const struct kedge_jval *obj, const char *key)
{
    const struct kedge_jval *v = kedge_json_get(obj, key);

    return v && v->type == KEDGE_JSTR ? v->str : NULL;
}

static void reply_view(const struct kedge_jval *root, struct reply_view *rv)
{
    const struct kedge_jval *obj, *err, *es = NULL;

    memset(rv, 0, sizeof(*rv));
    if (!root || root->type != KEDGE_JOBJ)
        return;
    obj = kedge_json_get_exact(root, "Object", 6);
    err = kedge_json_get_exact(root, "Err", 3);
    if (obj || err) {
        if (!kedge_json_is_null(err)) {
            rv->error = true;
            es = kedge_json_get_exact(err, "ErrStatus", 9);
        } else if (obj && obj->type == KEDGE_JOBJ) {
            rv->obj = obj;
        }
    } else if ((es = kedge_json_get_exact(root, "ErrStatus", 9)) != NULL) {
        rv->error = true;
    } else {
        rv->obj = root;
    }
    rv->reason = jstr(es, "reason");
    rv->message = jstr(es, "message");
}

/* What a cloud reply (parent_msg_id set) leaves in the table:
 *  - an object is stored under the reply's resource (query replies, node and lease
 *    insert/update replies), as edgecore's processRemoteQuery does;
 *  - a nodepatch/podpatch reply is not: that key holds the patch the edge sent, and the
 *    returned Node/Pod belongs under the node/pod key, which the requester writes (node.c), as
 *    edged does after edgecore's MetaManager hands it the reply;
 *  - NotFound removes the row: the cloud says the object is gone. Other errors change nothing.
 *    (edgecore stores an error reply as if it were the object; kedge does not, so an offline
 *    query never serves a cloud error as the object.) */
static int store_reply(struct metamgr *mm, const struct kedge_msg *m)
{
    struct kedge_jdoc *doc = NULL;
    struct reply_view rv;
    char type[64];
    int rc = 0;

    if (!m->resource || m->content_is_string ||
        resource_type_of(m->resource, type, sizeof(type)) < 0 || !resource_reply_stored(type) ||
        kedge_json_parse(m->content, m->content_len, &doc) < 0)
        return 0;
    reply_view(kedge_jdoc_root(doc), &rv);
    if (rv.obj) {
        struct kedge_buf b = KEDGE_BUF_INIT;
        struct kedge_jw w;
        kedge_jw_init(&w, &b);
        kedge_json_write_value(&w, rv.obj);
        rc = kedge_jw_finish(&w);
        if (rc == 0)
            rc = metamgr_put(mm, m->resource, b.data, b.len);
        kedge_buf_cleanup(&b);
    } else if (rv.error && rv.reason && !strcmp(rv.reason, "NotFound") &&
               strchr(strchr(m->resource, '/') + 1, '/')) {
        sqlite3_bind_text(mm->st[ST_DEL], 1, m->resource, -1, SQLITE_TRANSIENT);
        rc = step(mm, ST_DEL);
    }
    kedge_jdoc_free(doc);
    return rc;
}

int metamgr_store(struct metamgr *mm, const struct kedge_msg *m)
{
    char type[64];

    if (!m->resource || !m->operation || resource_type_of(m->resource, type, sizeof(type)) < 0)
        return KEDGE_ESCHEMA;
    if (!strcmp(m->operation, "delete"))
        return delete_row(mm, m, type);
    return metamgr_put(mm, m->resource, m->content, m->content_len);
}

static int on_cloud(const struct kedge_msg *m, void *ctx)
{
    struct metamgr *mm = ctx;
    const char *op = m->operation ? m->operation : "";
    char type[64];
    int rc;

    if (m->parent_msg_id && *m->parent_msg_id) {
        (void)store_reply(mm, m);
        (void)answer_waiter(mm, m); /* a late reply is stored anyway */
        /* edgecore's MetaManager answers every reply with "OK" (node-and-pod.jsonl) */
        (void)edgehub_ack(mm->hub, m); /* logged there when not sent */
        return 0;
    }
    if (!m->resource || resource_type_of(m->resource, type, sizeof(type)) < 0)
        return KEDGE_ESCHEMA;
    if (strcmp(op, "insert") && strcmp(op, "update") && strcmp(op, "patch") &&
        strcmp(op, "response") && strcmp(op, "delete"))
        return KEDGE_ESCHEMA;
    /* from the device controller, or from the edge controller's object sync after a
     * reconnect (cloudcore v1.15 re-sends a Device changed while the node was away that way) */
    if (mm->device_hook && resource_for_devices(type))
        return mm->device_hook(mm->device_ctx, m, type);
    rc = metamgr_store(mm, m);
    if (rc < 0)
        return rc; /* not stored: no ack, the cloud sends it again */
    if (mm->pod_hook && resource_wants_edged(type))
        mm->pod_hook(mm->pod_ctx, m);
    ack(mm, m);
    return 0;
}

/* ---- requests to the cloud (edged) ------------------------------------------------------------
 */

static void expire(lws_sorted_usec_list_t *sul)
{
    struct metamgr *mm = lws_container_of(sul, struct metamgr, sul);
    uint64_t now = kedge_now_ms();
    size_t i;

    for (i = 0; i < mm->n_waiters;) {
        if (now < mm->waiters[i].deadline_ms) {
            i++;
            continue;
        }
        struct waiter w = mm->waiters[i];
        mm->waiters[i] = mm->waiters[--mm->n_waiters];
        w.fn(w.ctx, NULL, -ETIMEDOUT);
        kedge_free(w.msg_id);
    }
    if (!mm->stopping)
        lws_sul_schedule(mm->lws, 0, &mm->sul, expire, LWS_USEC_PER_SEC);
}

int metamgr_remote(struct metamgr *mm, const struct kedge_msg *m, int timeout_ms,
                   metamgr_reply_fn fn, void *ctx)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct waiter *nw;
    int rc;

    if (!edgehub_connected(mm->hub))
        return -ENOTCONN; /* edgecore: "failed to process remote: not connected" */
    nw = kedge_realloc(mm->waiters, (mm->n_waiters + 1) * sizeof(*nw));
    if (!nw)
        return -ENOMEM;
    mm->waiters = nw;
    rc = kedge_msg_encode(&b, m, false);
    if (rc == 0)
        rc = edgehub_send_direct(mm->hub, b.data, b.len);
    kedge_buf_cleanup(&b);
    if (rc < 0)
        return rc;
    nw[mm->n_waiters].msg_id = kedge_strdup(m->msg_id);
    if (!nw[mm->n_waiters].msg_id)
        return -ENOMEM;
    nw[mm->n_waiters].fn = fn;
    nw[mm->n_waiters].ctx = ctx;
    nw[mm->n_waiters].deadline_ms = kedge_now_ms() + (uint64_t)timeout_ms;
    mm->n_waiters++;
    return 0;
}

/* {"Object":..,"Err":..} -> Object JSON (NULL if Err or none); also the error's reason. */
char *metamgr_object_of(const struct kedge_msg *m, const char **reason)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *obj, *err;
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;
    char *out = NULL;

    *reason = NULL;
    if (!m || kedge_json_parse(m->content, m->content_len, &doc) < 0)
        return NULL;
    root = kedge_jdoc_root(doc);
    obj = kedge_json_get_exact(root, "Object", 6);
    err = kedge_json_get_exact(root, "Err", 3);
    if (!obj && !err && root->type == KEDGE_JOBJ && !kedge_json_get_exact(root, "ErrStatus", 9))
        obj = root; /* a plain object (query reply) */
    if (!kedge_json_is_null(err) || kedge_json_get_exact(root, "ErrStatus", 9)) {
        const struct kedge_jval *es =
            kedge_json_get_exact(kedge_json_is_null(err) ? root : err, "ErrStatus", 9);
        const struct kedge_jval *r = kedge_json_get(es, "reason");
        *reason = r && r->type == KEDGE_JSTR && !strcmp(r->str, "AlreadyExists") ? "AlreadyExists"
                  : r && r->type == KEDGE_JSTR && !strcmp(r->str, "NotFound")    ? "NotFound"
                                                                                 : "error";
    } else if (obj && !kedge_json_is_null(obj)) {
        kedge_jw_init(&w, &b);
        kedge_json_write_value(&w, obj);
        if (kedge_jw_finish(&w) == 0)
            out = kedge_buf_take(&b, NULL);
    }
    kedge_buf_cleanup(&b);
    kedge_jdoc_free(doc);
    return out;
}

void metamgr_set_answer(struct metamgr *mm, metamgr_answer_fn fn, void *ctx)
{
    mm->answer = fn;
    mm->answer_ctx = ctx;
}

void metamgr_set_pod_hook(struct metamgr *mm, metamgr_pod_fn fn, void *ctx)
{
    mm->pod_hook = fn;
    mm->pod_ctx = ctx;
}

void metamgr_set_device_hook(struct metamgr *mm, metamgr_device_fn fn, void *ctx)
{
    mm->device_hook = fn;
    mm->device_ctx = ctx;
}

/* ---- the local query interface ($ke/meta/{ref}) ---------------------------------------------- */

#define LOCAL_RESOURCE_MAX 512

struct local_query {
    struct metamgr *mm;
    char *ref;
    char *resource;
    long timeout_ms;
};

static void local_query_free(struct local_query *q)
{
    kedge_free(q->ref);
    kedge_free(q->resource);
    kedge_free(q);
}

static void send_answer(struct metamgr *mm, const char *ref, struct kedge_jw *w,
                        struct kedge_buf *b)
{
    if (kedge_jw_finish(w) < 0) {
        kedge_log(KEDGE_LOG_ERR, "metamanager: out of memory answering query %s", ref);
        return;
    }
    if (mm->answer)
        mm->answer(mm->answer_ctx, ref, b->data, b->len);
}

__attribute__((format(printf, 3, 4))) static void answer_error(struct metamgr *mm, const char *ref,
                                                               const char *fmt, ...)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kebody_result refused = {false, 0, NULL};
    struct kedge_jw w;
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    kedge_log_limited(&mm->rl, "metamanager", KEDGE_LOG_INFO, "metamanager: query %s refused: %s",
                      ref, text);
    refused.reason = text;
    kedge_jw_init(&w, &b);
    kebody_result_write(&w, &refused);
    send_answer(mm, ref, &w, &b);
    kedge_buf_cleanup(&b);
}

/* A stored value is the object's JSON; one that does not parse (a foreign DB) goes as a string. */
static void write_stored(struct kedge_jw *w, const char *value)
{
    struct kedge_jdoc *doc = NULL;

    if (value && kedge_json_parse(value, strlen(value), &doc) == 0)
        kedge_jw_raw(w, value, strlen(value));
    else
        kedge_jw_str(w, value ? value : "");
    kedge_jdoc_free(doc);
}

static void answer_ok_open(struct kedge_jw *w, struct kedge_buf *b, const char *source)
{
    kedge_jw_init(w, b);
    kebody_meta_ok_open(w, source);
}

static void list_row(void *ctx, const char *key, const char *value)
{
    struct kedge_jw *w = ctx;

    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "key", key);
    kedge_jw_key(w, "object");
    write_stored(w, value);
    kedge_jw_obj_close(w);
}

/* Every row of a type, as edgecore answers a query without an id (by type, any namespace). */
static void answer_list(struct metamgr *mm, const char *ref, const char *type)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    answer_ok_open(&w, &b, "local");
    kedge_jw_key(&w, "objects");
    kedge_jw_arr_open(&w);
    if (metamgr_list(mm, type, list_row, &w) < 0) {
        kedge_buf_cleanup(&b);
        answer_error(mm, ref, "the meta store failed: %s", sqlite3_errmsg(mm->db));
        return;
    }
    kedge_jw_arr_close(&w);
    kedge_jw_obj_close(&w);
    send_answer(mm, ref, &w, &b);
    kedge_buf_cleanup(&b);
}

static void answer_local(struct metamgr *mm, const char *ref, const char *key)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;
    char *value = NULL;
    int rc = metamgr_get(mm, key, &value);

    if (rc == -ENOENT) {
        answer_error(mm, ref, "%s is not stored on this node%s", key,
                     edgehub_connected(mm->hub) ? "" : " (and the cloud link is down)");
        return;
    }
    if (rc < 0) {
        answer_error(mm, ref, "the meta store failed: %s", kedge_strerror(rc));
        return;
    }
    answer_ok_open(&w, &b, "local");
    kedge_jw_key(&w, "object");
    write_stored(&w, value);
    kedge_jw_obj_close(&w);
    send_answer(mm, ref, &w, &b);
    kedge_buf_cleanup(&b);
    kedge_free(value);
}

/* The cloud's reply to a remote query (already stored and acked by on_cloud). */
static void local_reply(void *ctx, const struct kedge_msg *m, int err)
{
    struct local_query *q = ctx;
    struct metamgr *mm = q->mm;
    struct kedge_jdoc *doc = NULL;
    struct reply_view rv;

    if (err == -ECANCELED) {
        local_query_free(q); /* the bridge is stopping: nobody to answer */
        return;
    }
    if (err == -ETIMEDOUT) {
        /* edgecore: "if up but the cloud does not answer within 60 s, edged gets an error" */
        answer_error(mm, q->ref, "no answer from the cloud for %s within %ld ms", q->resource,
                     q->timeout_ms);
    } else if (err < 0 || kedge_json_parse(m->content, m->content_len, &doc) < 0) {
        answer_error(mm, q->ref, "the cloud's answer for %s is not JSON", q->resource);
    } else {
        reply_view(kedge_jdoc_root(doc), &rv);
        if (rv.obj) {
            struct kedge_buf b = KEDGE_BUF_INIT;
            struct kedge_jw w;
            answer_ok_open(&w, &b, "cloud");
            kedge_jw_key(&w, "object");
            kedge_json_write_value(&w, rv.obj);
            kedge_jw_obj_close(&w);
            send_answer(mm, q->ref, &w, &b);
            kedge_buf_cleanup(&b);
        } else if (rv.error) {
            answer_error(mm, q->ref, "the cloud answered %s for %s: %s",
                         rv.reason ? rv.reason : "an error", q->resource,
                         rv.message ? rv.message : "(no message)");
        } else {
            answer_error(mm, q->ref, "the cloud's answer for %s holds no object", q->resource);
        }
    }
    kedge_jdoc_free(doc);
    local_query_free(q);
}

/* Send the query to the cloud. Returns 0 (answered later), -ENOTCONN, or another error. */
static int query_remote(struct metamgr *mm, const char *ref, const char *resource, long timeout_ms)
{
    struct local_query *q = kedge_calloc(1, sizeof(*q));
    struct kedge_msg m = {0};
    int rc = -ENOMEM;

    if (!q || !(q->ref = kedge_strdup(ref)) || !(q->resource = kedge_strdup(resource)))
        goto out;
    q->mm = mm;
    q->timeout_ms = timeout_ms;
    /* as edgecore forwards edged's query: route edged/meta/query, a fresh msg_id, no content */
    m.source = "edged";
    m.group = "meta";
    m.operation = "query";
    m.resource = (char *)resource;
    rc = kedge_msg_new_id(&m);
    if (rc == 0)
        rc = kedge_msg_set_content_json(&m, "null", 4);
    if (rc == 0)
        rc = metamgr_remote(mm, &m, (int)timeout_ms, local_reply, q);
out:
    if (rc < 0 && q)
        local_query_free(q);
    kedge_free(m.msg_id);
    kedge_free(m.content);
    kedge_free(m.content_str);
    return rc;
}

void metamgr_local_request(struct metamgr *mm, const char *ref, const char *payload, size_t len)
{
    const long max_ms = mm->cfg.remote_query_timeout_s * 1000;
    struct kedge_jdoc *doc = NULL;
    struct kebody_request q;
    char type[64];
    int64_t timeout_ms = max_ms;
    const char *slash, *res;
    bool remote;
    int rc;

    if (kebody_request_decode(payload, len, true, &doc, &q) < 0) {
        answer_error(mm, ref, "the request is not a JSON object");
        goto out;
    }
    if (q.has_timeout_ms == KEBODY_WRONG || (q.has_timeout_ms == KEBODY_INT && q.timeout_ms < 1)) {
        answer_error(mm, ref, "timeout_ms must be a positive number of ms");
        goto out;
    }
    if (q.has_timeout_ms == KEBODY_INT)
        timeout_ms = q.timeout_ms;
    if (timeout_ms > max_ms)
        timeout_ms = max_ms; /* remote_query_timeout_s is the bridge's limit */
    if (q.op && !strcmp(q.op, "list")) {
        if (!q.type || !q.type_len || q.type_len >= sizeof(type) ||
            memchr(q.type, '/', q.type_len) || strlen(q.type) != q.type_len) {
            answer_error(mm, ref, "list needs \"type\": a resource type such as configmap");
            goto out;
        }
        answer_list(mm, ref, q.type);
        goto out;
    }
    res = q.resource;
    if (!q.op || strcmp(q.op, "query") != 0) {
        answer_error(mm, ref,
                     "unknown op: use {\"op\":\"query\",\"resource\":\"ns/type/name\"} "
                     "or {\"op\":\"list\",\"type\":\"configmap\"}");
        goto out;
    }
    if (!res || q.resource_len > LOCAL_RESOURCE_MAX || strlen(res) != q.resource_len ||
        resource_type_of(res, type, sizeof(type)) < 0) {
        answer_error(mm, ref,
                     "query needs \"resource\": {namespace}/{type}/{name}, e.g. "
                     "default/configmap/cm1");
        goto out;
    }
    slash = strchr(strchr(res, '/') + 1, '/');
    if (!slash) { /* {ns}/{type}: every row of the type, from the table */
        answer_list(mm, ref, type);
        goto out;
    }
    /* node was remote-first up to v1.22 (docs/kubeedge-wire.md §6, §9): resource.h */
    remote = resource_remote_first(type, mm->cfg.node_namespace);
    if (remote && edgehub_connected(mm->hub)) {
        rc = query_remote(mm, ref, res, (long)timeout_ms);
        if (rc == 0)
            goto out;
        if (rc != -ENOTCONN) {
            answer_error(mm, ref, "cannot ask the cloud for %s: %s", res, kedge_strerror(rc));
            goto out;
        }
    }
    answer_local(mm, ref, res);
out:
    kedge_jdoc_free(doc);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int metamgr_open(const struct metamgr_config *cfg, struct lws_context *lws, struct router *r,
                 struct edgehub *hub, struct metamgr **out)
{
    struct metamgr *mm = kedge_calloc(1, sizeof(*mm));
    const char *path = cfg->path;
    int i;

    *out = NULL;
    if (!mm)
        return -ENOMEM;
    mm->cfg = *cfg;
    mm->lws = lws;
    mm->hub = hub;
    mm->rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(10000, 10);
    mm->lock_fd = -1;
    if (sqlite3_open_v2(path, &mm->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(mm->db, schema, NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    mm->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (mm->lock_fd < 0 || flock(mm->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        kedge_log(KEDGE_LOG_ERR, "metamanager: %s: %s", path,
                  e == EWOULDBLOCK ? "in use by another process (a second kedge-bridge, or "
                                     "kedge-ctl import)"
                                   : strerror(e));
        metamgr_close(mm);
        return KEDGE_ESTORE;
    }
    sqlite3_busy_timeout(mm->db, 1000);
    for (i = 0; i < ST_COUNT; i++)
        if (sqlite3_prepare_v2(mm->db, sql[i], -1, &mm->st[i], NULL) != SQLITE_OK)
            goto fail;
    if (router_add(r, "resource", on_cloud, mm) < 0 || router_add(r, "func", on_cloud, mm) < 0)
        goto fail;
    *out = mm;
    return 0;
fail:
    kedge_log(KEDGE_LOG_ERR, "metamanager: cannot open %s: %s", path,
              mm->db ? sqlite3_errmsg(mm->db) : "out of memory");
    metamgr_close(mm);
    return KEDGE_ESTORE;
}

void metamgr_start(struct metamgr *mm)
{
    expire(&mm->sul);
}

void metamgr_stop(struct metamgr *mm)
{
    if (!mm)
        return;
    mm->stopping = true;
    lws_sul_cancel(&mm->sul);
}

void metamgr_close(struct metamgr *mm)
{
    int i;

    if (!mm)
        return;
    while (mm->n_waiters) {
        struct waiter w = mm->waiters[--mm->n_waiters];
        w.fn(w.ctx, NULL, -ECANCELED);
        kedge_free(w.msg_id);
    }
    kedge_free(mm->waiters);
    for (i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(mm->st[i]);
    sqlite3_close_v2(mm->db);
    if (mm->lock_fd >= 0)
        (void)close(mm->lock_fd); /* releases the flock */
    kedge_free(mm);
}
