/* faults.c: the reject fault, a cloud that refuses one kind of message from the edge.
 *
 * For tests of the edge's poison-message handling (issue 13: an entry the cloud refuses N times
 * in a row goes to a dead-letter table and the queue moves on). A rule names a resource prefix
 * and what the cloud does on reading a matching message:
 *   close  end the link with websocket status 1009 (message too big), as a size-limited peer
 *          does (a gorilla/websocket reader past SetReadLimit); the message is not handled;
 *   error  answer it with operation "error" (beehive model.ResponseErrorOperation, NewErrorMessage:
 *          parent_msg_id = its msg_id, its resource, the reason as content) instead of handling it.
 * max: reject at most that many matching messages (0 = until the rules are cleared). Rules are
 * tried in the order they were added; the first match decides. Every rejection is counted and
 * the newest REJECT_LOG_MAX are logged (msg_id, resource, mode), so a test can tell how many
 * times the edge sent a poison entry before setting it aside.
 */
#include <errno.h>
#include <string.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/util.h"

#define REJECT_LOG_MAX 1000

struct rule {
    struct rule *next;
    char *prefix;
    enum fault_action mode;
    unsigned long max, hits;
};

struct rejection {
    struct rejection *next;
    char *msg_id, *resource;
    enum fault_action mode;
    int64_t t_ms;
};

struct faults {
    struct rule *rules, *rules_tail;
    struct rejection *log, *log_tail;
    size_t n_log;
    unsigned long total, closed, errored;
};

int faults_new(struct faults **out)
{
    *out = kedge_calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void faults_clear(struct faults *f)
{
    while (f->rules) {
        struct rule *r = f->rules;
        f->rules = r->next;
        kedge_free(r->prefix);
        kedge_free(r);
    }
    f->rules_tail = NULL;
}

static void rejection_free(struct rejection *e)
{
    kedge_free(e->msg_id);
    kedge_free(e->resource);
    kedge_free(e);
}

void faults_free(struct faults *f)
{
    if (!f)
        return;
    faults_clear(f);
    while (f->log) {
        struct rejection *e = f->log;
        f->log = e->next;
        rejection_free(e);
    }
    kedge_free(f);
}

static const char *mode_name(enum fault_action a)
{
    return a == FAULT_CLOSE ? "close" : a == FAULT_ERROR ? "error" : "none";
}

int faults_add_reject(struct faults *f, const char *json, size_t len)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *root, *prefix, *mode, *max;
    struct rule *r = NULL;
    int64_t n = 0;
    int rc = kedge_json_parse(json, len, &doc);

    if (rc < 0)
        return rc;
    root = kedge_jdoc_root(doc);
    prefix = kedge_json_get(root, "resource_prefix");
    mode = kedge_json_get(root, "mode");
    max = kedge_json_get(root, "max");
    rc = KEDGE_ESCHEMA;
    if (!prefix || prefix->type != KEDGE_JSTR || !mode || mode->type != KEDGE_JSTR ||
        (strcmp(mode->str, "close") && strcmp(mode->str, "error")) ||
        (max && (kedge_json_int64(max, &n) < 0 || n < 0)))
        goto out;
    rc = -ENOMEM;
    r = kedge_calloc(1, sizeof(*r));
    if (!r || !(r->prefix = kedge_strdup(prefix->str)))
        goto out;
    r->mode = strcmp(mode->str, "close") ? FAULT_ERROR : FAULT_CLOSE;
    r->max = (unsigned long)n;
    if (f->rules_tail)
        f->rules_tail->next = r;
    else
        f->rules = r;
    f->rules_tail = r;
    r = NULL;
    rc = 0;
out:
    if (r)
        kedge_free(r->prefix);
    kedge_free(r);
    kedge_jdoc_free(doc);
    return rc;
}

static void log_rejection(struct faults *f, const struct kedge_msg *m, enum fault_action a)
{
    struct rejection *e = kedge_calloc(1, sizeof(*e));

    if (!e || !(e->msg_id = kedge_strdup(m->msg_id ? m->msg_id : "")) ||
        !(e->resource = kedge_strdup(m->resource ? m->resource : ""))) {
        if (e)
            rejection_free(e);
        return; /* the counters still hold it */
    }
    e->mode = a;
    e->t_ms = kedge_wall_ms();
    if (f->log_tail)
        f->log_tail->next = e;
    else
        f->log = e;
    f->log_tail = e;
    if (++f->n_log > REJECT_LOG_MAX) {
        struct rejection *old = f->log;
        f->log = old->next;
        rejection_free(old);
        f->n_log--;
    }
}

enum fault_action faults_check(struct faults *f, const struct kedge_msg *m)
{
    const char *res = m->resource ? m->resource : "";
    struct rule *r;

    for (r = f->rules; r; r = r->next) {
        if (strncmp(res, r->prefix, strlen(r->prefix)) || (r->max && r->hits >= r->max))
            continue;
        r->hits++;
        f->total++;
        if (r->mode == FAULT_CLOSE)
            f->closed++;
        else
            f->errored++;
        log_rejection(f, m, r->mode);
        return r->mode;
    }
    return FAULT_NONE;
}

void faults_write(const struct faults *f, struct kedge_jw *w)
{
    const struct rule *r;
    const struct rejection *e;

    kedge_jw_obj_open(w);
    kedge_jw_key(w, "reject");
    kedge_jw_arr_open(w);
    for (r = f->rules; r; r = r->next) {
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "resource_prefix", r->prefix);
        kedge_jw_kstr(w, "mode", mode_name(r->mode));
        kedge_jw_kint(w, "max", (int64_t)r->max);
        kedge_jw_kint(w, "hits", (int64_t)r->hits);
        kedge_jw_obj_close(w);
    }
    kedge_jw_arr_close(w);
    kedge_jw_kint(w, "rejections_total", (int64_t)f->total);
    kedge_jw_kint(w, "rejections_close", (int64_t)f->closed);
    kedge_jw_kint(w, "rejections_error", (int64_t)f->errored);
    kedge_jw_key(w, "rejected");
    kedge_jw_arr_open(w);
    for (e = f->log; e; e = e->next) {
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "msg_id", e->msg_id);
        kedge_jw_kstr(w, "resource", e->resource);
        kedge_jw_kstr(w, "mode", mode_name(e->mode));
        kedge_jw_kint(w, "t_ms", e->t_ms);
        kedge_jw_obj_close(w);
    }
    kedge_jw_arr_close(w);
    kedge_jw_obj_close(w);
}
