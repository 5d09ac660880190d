/* satoken.c: service account tokens for projected volumes, requested from the cloud as
 * edgecore does it, kept and refreshed as kubelet's token manager does.
 *
 * What KubeEdge v1.15.4 does (read for the facts, nothing copied):
 *   - kubelet's projected plugin asks its token manager for a TokenRequest {spec: audiences
 *     (the projection's audience, or none), expirationSeconds, boundObjectRef {Pod, v1, name,
 *     uid}} (vendor/k8s.io/kubernetes/pkg/volume/projected/projected.go collectData);
 *   - edged's client is MetaManager's (edge/pkg/metamanager/client/serviceaccount.go): a row of
 *     the meta table first (getTokenLocally; a row that requiresRefresh is deleted), else a
 *     message source "edged", group "meta", operation "query", resource
 *     "{ns}/serviceaccounttoken/{serviceaccount}", content the TokenRequest;
 *   - MetaManager sends it to the cloud while connected (serviceaccounttoken is remote-first,
 *     process.go requireRemoteQuery) and stores the reply in the meta table (type
 *     serviceaccounttoken, key computed from the TokenRequest); offline it answers from the
 *     table, and with nothing there edged gets "serviceaccount length from meta db is 0";
 *   - cloudcore's edge controller (cloud/pkg/edgecontroller/controller/upstream.go
 *     getServiceAccountToken) calls the API server's CreateToken and replies with the
 *     TokenRequest itself (status.token, status.expirationTimestamp), or an error;
 *   - rows are deleted when their pod goes (DeleteServiceAccountToken: by boundObjectRef.uid);
 *   - kubelet keeps tokens in memory, refreshes one older than 80 % of its TTL or 24 h
 *     (requiresRefresh), and while a refresh fails keeps using a token that has not expired.
 *
 * Here: one entry per (namespace, service account, pod uid, audience, expirationSeconds), in
 * memory and in the meta table under "{ns}/serviceaccounttoken/{sa}/{uid}/{exp}/{audience}"
 * (type serviceaccounttoken, so a restart without the cloud still has it). A token is used
 * until it expires; a refresh starts when it is due (timer) or asked for, never more than one
 * per entry at a time, and at most every RETRY_MS after a failure. Requests go through
 * metamgr_remote on the lws loop: nothing blocks. A new token calls the owner's changed hook,
 * and Edged rewrites the pod's volumes with it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "podstatus.h"
#include "satoken.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/util.h"

#define RETRY_MS 10000                  /* after a failed or unanswered request */
#define MAX_TTL_MS (24LL * 3600 * 1000) /* requiresRefresh's maxTTL */
#define TIMER_MAX_MS 3600000            /* the timer looks at least this often */

struct tok_req;

struct tok {
    char *ns, *sa, *pod, *uid, *audience; /* the key, with exp_s */
    int64_t exp_s;
    char *token;             /* NULL: none yet */
    int64_t expires_ms;      /* wall clock: status.expirationTimestamp */
    int64_t ttl_s;           /* spec.expirationSeconds of the token we hold */
    struct tok_req *pending; /* the request in flight, NULL none */
    uint64_t retry_at_ms;    /* monotonic: no new request before */
    char *error;             /* the last request's failure, for the FailedMount text */
    struct tok *next;
};

/* One request's context: it outlives its entry when the pod goes first. */
struct tok_req {
    struct satoken *ts;
    struct tok *t; /* NULL: detached */
};

struct satoken {
    const struct edged_deps *deps;
    int64_t timeout_ms;
    satoken_changed_fn changed;
    void *ctx;
    struct tok *toks;
    bool stopping;
    lws_sorted_usec_list_t sul;
};

/* ---- entries ----------------------------------------------------------------------------------
 */

static void tok_free(struct tok *t)
{
    if (t->pending)
        t->pending->t = NULL;
    kedge_free_all(t->ns, t->sa, t->pod, t->uid, t->audience, t->token, t->error, t);
}

static const char *service_account(const struct pod_spec *p)
{
    /* the API server's ServiceAccount admission always sets it; "default" is its choice */
    return p->service_account && *p->service_account ? p->service_account : "default";
}

static struct tok *tok_find(struct satoken *ts, const struct pod_spec *p,
                            const struct pod_projection *src)
{
    struct tok *t;

    for (t = ts->toks; t; t = t->next)
        if (!strcmp(t->uid, p->uid) && !strcmp(t->ns, p->ns) &&
            !strcmp(t->sa, service_account(p)) && !strcmp(t->audience, src->audience) &&
            t->exp_s == src->expiration_s)
            return t;
    return NULL;
}

static int tok_key(const struct tok *t, struct kedge_buf *b)
{
    return kedge_buf_printf(b, "%s/serviceaccounttoken/%s/%s/%" PRId64 "/%s", t->ns, t->sa, t->uid,
                            t->exp_s, t->audience);
}

/* A TokenRequest (the cloud's reply, or our stored copy) into t. 0, or KEDGE_ESCHEMA with
 * *why (static text) when it holds no usable token; *message: ErrStatus.message if it is a
 * Kubernetes error (points into doc). */
static int tok_take_reply(struct tok *t, const struct kedge_jval *root, const char **message)
{
    const struct kedge_jval *es, *st, *tok, *exp, *spec, *secs;
    int64_t expires, ttl = t->exp_s;
    char *copy;

    *message = NULL;
    es = kedge_json_get_exact(root, "ErrStatus", 9);
    if (!es) /* an ObjectResp {"Object":..,"Err":..} */
        es = kedge_json_get_exact(kedge_json_get_exact(root, "Err", 3), "ErrStatus", 9);
    if (es) {
        const struct kedge_jval *m = kedge_json_get(es, "message");
        *message = m && m->type == KEDGE_JSTR ? m->str : "the cloud answered with an error";
        return KEDGE_ESCHEMA;
    }
    if (kedge_json_get_exact(root, "Object", 6))
        root = kedge_json_get_exact(root, "Object", 6);
    st = kedge_json_get(root, "status");
    tok = kedge_json_get(st, "token");
    exp = kedge_json_get(st, "expirationTimestamp");
    spec = kedge_json_get(root, "spec");
    secs = kedge_json_get(spec, "expirationSeconds");
    if (!tok || tok->type != KEDGE_JSTR || !tok->len || memchr(tok->str, '\0', tok->len) || !exp ||
        exp->type != KEDGE_JSTR || (expires = podstatus_parse_time_ms(exp->str)) <= 0) {
        *message = "the cloud's TokenRequest has no token or expirationTimestamp";
        return KEDGE_ESCHEMA;
    }
    if (secs && secs->type == KEDGE_JNUM && kedge_json_int64(secs, &ttl) == 0 && ttl <= 0)
        ttl = t->exp_s;
    copy = kedge_strndup(tok->str, tok->len);
    if (!copy)
        return -ENOMEM;
    kedge_free(t->token);
    t->token = copy;
    t->expires_ms = expires;
    t->ttl_s = ttl;
    return 0;
}

/* getTokenLocally: the stored row of this entry, if any. */
static void tok_load(struct satoken *ts, struct tok *t)
{
    struct kedge_buf key = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    const char *message;
    char *value = NULL;

    if (tok_key(t, &key) == 0 && ts->deps->store_get(ts->deps->ctx, key.data, &value) == 0 &&
        kedge_json_parse(value, strlen(value), &doc) == 0)
        (void)tok_take_reply(t, kedge_jdoc_root(doc), &message);
    kedge_jdoc_free(doc);
    kedge_free(value);
    kedge_buf_cleanup(&key);
}

static struct tok *tok_new(struct satoken *ts, const struct pod_spec *p,
                           const struct pod_projection *src)
{
    struct tok *t = kedge_calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->ns = kedge_strdup(p->ns);
    t->sa = kedge_strdup(service_account(p));
    t->pod = kedge_strdup(p->name);
    t->uid = kedge_strdup(p->uid);
    t->audience = kedge_strdup(src->audience);
    t->exp_s = src->expiration_s;
    if (!t->ns || !t->sa || !t->pod || !t->uid || !t->audience) {
        tok_free(t);
        return NULL;
    }
    tok_load(ts, t);
    t->next = ts->toks;
    ts->toks = t;
    return t;
}

/* ---- timing -----------------------------------------------------------------------------------
 */

/* requiresRefresh: older than 24 h, or within the last 20 % of its TTL. */
static bool requires_refresh(const struct tok *t, int64_t now)
{
    int64_t issued = t->expires_ms - t->ttl_s * 1000;

    return now > issued + MAX_TTL_MS || now > t->expires_ms - t->ttl_s * 1000 * 20 / 100;
}

/* When t wants a request (wall ms), or INT64_MAX never. */
static int64_t refresh_due(const struct tok *t)
{
    int64_t issued, due;

    if (!t->token)
        return 0;
    issued = t->expires_ms - t->ttl_s * 1000;
    due = t->expires_ms - t->ttl_s * 1000 * 20 / 100;
    return issued + MAX_TTL_MS < due ? issued + MAX_TTL_MS : due;
}

static void on_timer(lws_sorted_usec_list_t *sul);

static void schedule(struct satoken *ts)
{
    int64_t now = kedge_wall_ms(), wait = TIMER_MAX_MS;
    uint64_t mono = kedge_now_ms();
    struct tok *t;

    if (ts->stopping)
        return;
    for (t = ts->toks; t; t = t->next) {
        int64_t due = refresh_due(t) - now, retry = 0;

        if (t->pending)
            continue;
        if (t->retry_at_ms > mono)
            retry = (int64_t)(t->retry_at_ms - mono);
        if (due < retry)
            due = retry;
        if (due < wait)
            wait = due;
    }
    if (wait < 1000)
        wait = 1000; /* a token due now is requested by whoever asked for it */
    lws_sul_schedule(ts->deps->lws, 0, &ts->sul, on_timer, (lws_usec_t)wait * 1000);
}

/* ---- requests to the cloud --------------------------------------------------------------------
 */

static void tok_set_error(struct tok *t, const char *msg)
{
    char *copy = kedge_strdup(msg);

    if (copy) {
        kedge_free(t->error);
        t->error = copy;
    }
}

/* Keep the reply in the meta table, as MetaManager's processRemote does. */
static void tok_store(struct satoken *ts, struct tok *t, const struct kedge_msg *m)
{
    struct kedge_buf key = KEDGE_BUF_INIT;
    int rc = tok_key(t, &key);

    if (rc == 0)
        rc = ts->deps->store_put(ts->deps->ctx, key.data, m->content, m->content_len);
    if (rc < 0)
        kedge_log(KEDGE_LOG_WARN, "satoken: %s/%s for pod %s not stored: %s", t->ns, t->sa, t->pod,
                  kedge_strerror(rc));
    kedge_buf_cleanup(&key);
}

static void on_reply(void *ctx, const struct kedge_msg *m, int err)
{
    struct tok_req *rq = ctx;
    struct satoken *ts = rq->ts;
    struct tok *t = rq->t;
    struct kedge_jdoc *doc = NULL;
    const char *message = NULL;
    char buf[400];
    int rc = err;

    kedge_free(rq);
    if (!t)
        return; /* the pod went meanwhile */
    t->pending = NULL;
    if (rc == 0 && (!m || kedge_json_parse(m->content, m->content_len, &doc) < 0)) {
        message = "the cloud's answer is not JSON";
        rc = KEDGE_ESCHEMA;
    } else if (rc == 0) {
        rc = tok_take_reply(t, kedge_jdoc_root(doc), &message);
    }
    if (rc == 0) {
        kedge_free(t->error);
        t->error = NULL;
        tok_store(ts, t, m);
        kedge_log(KEDGE_LOG_INFO, "satoken: token for %s/%s (pod %s) until %" PRId64, t->ns, t->sa,
                  t->pod, t->expires_ms / 1000);
        if (ts->changed)
            ts->changed(ts->ctx, t->uid);
    } else {
        t->retry_at_ms = kedge_now_ms() + RETRY_MS;
        if (!message)
            message = err == -ETIMEDOUT ? "timeout" : kedge_strerror(rc);
        snprintf(buf, sizeof(buf), "%s", message);
        tok_set_error(t, buf);
        kedge_log(KEDGE_LOG_WARN, "satoken: token for %s/%s (pod %s): %s", t->ns, t->sa, t->pod,
                  buf);
    }
    kedge_jdoc_free(doc);
    schedule(ts);
}

/* The TokenRequest kubelet's projected plugin builds, as Go marshals it. */
static int request_body(const struct tok *t, struct kedge_buf *b)
{
    static const char meta[] = "{\"creationTimestamp\":null}",
                      status[] = "{\"token\":\"\",\"expirationTimestamp\":null}";
    struct kedge_jw w;

    kedge_jw_init(&w, b);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "metadata");
    kedge_jw_raw(&w, meta, sizeof(meta) - 1);
    kedge_jw_key(&w, "spec");
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "audiences");
    if (*t->audience) {
        kedge_jw_arr_open(&w);
        kedge_jw_str(&w, t->audience);
        kedge_jw_arr_close(&w);
    } else {
        kedge_jw_raw(&w, "null", 4);
    }
    kedge_jw_kint(&w, "expirationSeconds", t->exp_s);
    kedge_jw_key(&w, "boundObjectRef");
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "kind", "Pod");
    kedge_jw_kstr(&w, "apiVersion", "v1");
    kedge_jw_kstr(&w, "name", t->pod);
    kedge_jw_kstr(&w, "uid", t->uid);
    kedge_jw_obj_close(&w);
    kedge_jw_obj_close(&w);
    kedge_jw_key(&w, "status");
    kedge_jw_raw(&w, status, sizeof(status) - 1);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

/* Send t's request unless one is in flight or a failure is too recent. -ENOTCONN offline. */
static int tok_request(struct satoken *ts, struct tok *t)
{
    struct kedge_buf res = KEDGE_BUF_INIT, body = KEDGE_BUF_INIT;
    struct tok_req *rq;
    int rc;

    if (t->pending || kedge_now_ms() < t->retry_at_ms)
        return 0;
    rq = kedge_calloc(1, sizeof(*rq));
    if (!rq)
        return -ENOMEM;
    rq->ts = ts;
    rq->t = t;
    rc = kedge_buf_printf(&res, "%s/serviceaccounttoken/%s", t->ns, t->sa);
    if (rc == 0)
        rc = request_body(t, &body);
    if (rc == 0)
        rc = edged_deps_request(ts->deps, (int)ts->timeout_ms, "query", res.data, body.data,
                                body.len, false, on_reply, rq);
    if (rc == 0)
        t->pending = rq;
    else
        kedge_free(rq);
    if (rc < 0 && rc != -ENOTCONN)
        t->retry_at_ms = kedge_now_ms() + RETRY_MS;
    kedge_buf_cleanup(&res);
    kedge_buf_cleanup(&body);
    return rc;
}

static void on_timer(lws_sorted_usec_list_t *sul)
{
    struct satoken *ts = lws_container_of(sul, struct satoken, sul);
    int64_t now = kedge_wall_ms();
    struct tok *t;

    for (t = ts->toks; t; t = t->next)
        if (!t->token || requires_refresh(t, now))
            (void)tok_request(ts, t);
    schedule(ts);
}

/* ---- the interface ----------------------------------------------------------------------------
 */

int satoken_new(const struct edged_deps *deps, int64_t timeout_ms, satoken_changed_fn changed,
                void *ctx, struct satoken **out)
{
    struct satoken *ts = kedge_calloc(1, sizeof(*ts));

    *out = NULL;
    if (!ts)
        return -ENOMEM;
    ts->deps = deps;
    ts->timeout_ms = timeout_ms;
    ts->changed = changed;
    ts->ctx = ctx;
    *out = ts;
    return 0;
}

int satoken_get(void *ctx, const struct pod_spec *p, const struct pod_projection *src, char **token,
                char *why, size_t why_len)
{
    struct satoken *ts = ctx;
    int64_t now = kedge_wall_ms();
    struct tok *t;
    int rc = 0;

    *token = NULL;
    if (!p->ns || !p->uid || !p->name || !src->audience) {
        kedge_set_why(why, why_len, "failed to fetch token: the pod has no name or uid");
        return KEDGE_ESCHEMA;
    }
    t = tok_find(ts, p, src);
    if (!t && !(t = tok_new(ts, p, src)))
        return -ENOMEM;
    if (!t->token || requires_refresh(t, now)) {
        rc = tok_request(ts, t);
        schedule(ts);
    }
    if (t->token && now < t->expires_ms) { /* kubelet: a token not expired serves meanwhile */
        *token = kedge_strdup(t->token);
        return *token ? 0 : -ENOMEM;
    }
    if (rc == -ENOMEM)
        return rc;
    if (rc == -ENOTCONN) /* what edgecore's edged reads from an empty meta table offline */
        kedge_set_why(why, why_len,
                      "failed to fetch token: serviceaccount length from meta db is 0");
    else if (t->pending)
        kedge_set_why(why, why_len, "failed to fetch token: waiting for the cloud's answer");
    else
        kedge_set_why(why, why_len, "failed to fetch token: %s",
                      t->error ? t->error : kedge_strerror(rc ? rc : -EAGAIN));
    return -EAGAIN;
}

/* edgecore's DeleteServiceAccountToken: every serviceaccounttoken row bound to the pod. */
struct forget_rows {
    const char *uid;
    struct kedge_buf keys; /* NUL-separated */
    int rc;
};

static void forget_row(void *ctx, const char *key, const char *value)
{
    struct forget_rows *fr = ctx;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *uid;

    if (kedge_json_parse(value, strlen(value), &doc) < 0)
        return;
    root = kedge_jdoc_root(doc);
    if (kedge_json_get_exact(root, "Object", 6))
        root = kedge_json_get_exact(root, "Object", 6);
    uid = kedge_json_get(kedge_json_get(kedge_json_get(root, "spec"), "boundObjectRef"), "uid");
    if (uid && uid->type == KEDGE_JSTR && !strcmp(uid->str, fr->uid) && fr->rc == 0)
        fr->rc = kedge_buf_append(&fr->keys, key, strlen(key) + 1);
    kedge_jdoc_free(doc);
}

void satoken_forget(struct satoken *ts, const char *pod_uid)
{
    struct forget_rows fr = {pod_uid, KEDGE_BUF_INIT, 0};
    struct tok **pp = &ts->toks;
    size_t off;

    while (*pp) {
        struct tok *t = *pp;
        if (strcmp(t->uid, pod_uid)) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        tok_free(t);
    }
    if (ts->deps->store_list(ts->deps->ctx, "serviceaccounttoken", forget_row, &fr) < 0 ||
        fr.rc < 0)
        kedge_log(KEDGE_LOG_WARN, "satoken: cannot list the tokens of pod %s", pod_uid);
    for (off = 0; off < fr.keys.len; off += strlen(fr.keys.data + off) + 1)
        if (ts->deps->store_delete(ts->deps->ctx, fr.keys.data + off) < 0)
            kedge_log(KEDGE_LOG_WARN, "satoken: row %s not deleted", fr.keys.data + off);
    kedge_buf_cleanup(&fr.keys);
}

void satoken_stop(struct satoken *ts)
{
    if (!ts)
        return;
    ts->stopping = true;
    lws_sul_cancel(&ts->sul);
}

void satoken_free(struct satoken *ts)
{
    if (!ts)
        return;
    while (ts->toks) {
        struct tok *t = ts->toks;
        ts->toks = t->next;
        tok_free(t);
    }
    kedge_free(ts);
}
