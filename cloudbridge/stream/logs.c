/* logs.c: kubelet's containerLogs on the tunnel (logs.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kedge/alloc.h"
#include "kedge/log.h"
#include "logs.h"
#include "request.h"

/* kubelet's bodies for requests it cannot decode or validate (server.go getContainerLogs) */
#define UNDECODABLE "{\"message\": \"Unable to decode query.\"}"
#define INVALID "{\"message\": \"Invalid request.\"}"

/* ---- the request ------------------------------------------------------------------------- */

/* One path segment into out; returns the rest (after the '/') or NULL at the end. */
static const char *segment(const char *p, char *out, size_t n)
{
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);

    if (len >= n)
        len = n - 1; /* too long for a name: it will not be found */
    memcpy(out, p, len);
    out[len] = '\0';
    return slash ? slash + 1 : NULL;
}

static int split_path(const char *path, struct stream_log_request *lr, char *why, size_t why_len)
{
    static const char prefix[] = "/containerLogs/";
    const char *p;

    if (strncmp(path, prefix, sizeof(prefix) - 1)) {
        snprintf(why, why_len, "404 page not found"); /* go-restful: no such route */
        return -EINVAL;
    }
    p = path + sizeof(prefix) - 1;
    p = segment(p, lr->ns, sizeof(lr->ns));
    p = p ? segment(p, lr->pod, sizeof(lr->pod)) : NULL;
    if (p)
        (void)segment(p, lr->container, sizeof(lr->container));
    if (!*lr->pod)
        snprintf(why, why_len, "{\"message\": \"Missing podID.\"}");
    else if (!*lr->container)
        snprintf(why, why_len, "{\"message\": \"Missing container name.\"}");
    else if (!*lr->ns)
        snprintf(why, why_len, "{\"message\": \"Missing podNamespace.\"}");
    else
        return 0;
    return -EINVAL;
}

/* apimachinery's Convert_Slice_string_To_bool: only "0" and "false" (any case) are false. */
static bool query_bool(const struct stream_query *q, const char *key)
{
    const struct stream_query_kv *kv = stream_query_get(q, key);

    return kv && strcmp(kv->value, "0") && strcasecmp(kv->value, "false");
}

/* strconv.ParseInt(s, 10, 64) of a value (kv NULL: absent). 0 absent, 1 set, -1 not a
 * number (strtoll would also take leading blanks, Go does not). */
static int parse_int(const struct stream_query_kv *kv, int64_t *out)
{
    char *end;

    if (!kv)
        return 0;
    errno = 0;
    *out = strtoll(kv->value, &end, 10);
    if (!*kv->value || *end || errno || kv->value_len != strlen(kv->value) ||
        (kv->value[0] != '-' && kv->value[0] != '+' && (kv->value[0] < '0' || kv->value[0] > '9')))
        return -1;
    return 1;
}

static int digits(const char *s, int n, int *out)
{
    int i, v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Go's time.Parse(time.RFC3339, s) to Unix seconds: 2006-01-02T15:04:05[.frac](Z|+hh:mm). */
static int rfc3339(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, se, oh = 0, om = 0;
    const char *p = s + 19;
    long off = 0;

    if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':' || digits(s, 4, &y) || digits(s + 5, 2, &mo) ||
        digits(s + 8, 2, &d) || digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) ||
        digits(s + 17, 2, &se) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 59)
        return -1;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
        if (p == s + 20)
            return -1;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
               !digits(p + 1, 2, &oh) && !digits(p + 4, 2, &om) && oh < 24 && om < 60) {
        off = (*p == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    *out = (int64_t)timegm(&tm) - off;
    return 0;
}

/* The query into PodLogOptions; "tail" is kubelet's old name of tailLines ("all": none). */
static int decode_options(const struct stream_query *q, int64_t now_s,
                          struct stream_log_request *lr, bool *invalid)
{
    const struct stream_query_kv *tail = stream_query_get(q, "tail"), *st;
    int64_t tl = -1, lb = -1, ss = 0, t = 0;
    int has_tl = 0, has_lb, has_ss;

    lr->follow = query_bool(q, "follow");
    lr->timestamps = query_bool(q, "timestamps");
    lr->previous = query_bool(q, "previous");
    if (tail && *tail->value)
        has_tl = strcmp(tail->value, "all") ? parse_int(tail, &tl) : 0;
    else
        has_tl = parse_int(stream_query_get(q, "tailLines"), &tl);
    has_lb = parse_int(stream_query_get(q, "limitBytes"), &lb);
    has_ss = parse_int(stream_query_get(q, "sinceSeconds"), &ss);
    st = stream_query_get(q, "sinceTime");
    if (has_tl < 0 || has_lb < 0 || has_ss < 0 ||
        (st && *st->value && strcmp(st->value, "null") && rfc3339(st->value, &t) < 0))
        return -1;
    /* ValidatePodLogOptions */
    *invalid = (has_tl && tl < 0) || (has_lb && lb < 1) || (has_ss && st) || (has_ss && ss < 1);
    lr->tail_lines = has_tl ? (long)tl : -1;
    lr->limit_bytes = has_lb ? lb : -1;
    lr->since_s = has_ss ? now_s - ss : 0;
    if (st && t > lr->since_s) /* NewLogOptions: the later of the two */
        lr->since_s = t;
    return 0;
}

int stream_logs_parse(const char *path, const char *raw_query, int64_t now_s,
                      struct stream_log_request *lr, char *why, size_t why_len)
{
    struct stream_query q;
    bool invalid = false;
    int rc;

    memset(lr, 0, sizeof(*lr));
    if (split_path(path, lr, why, why_len) < 0)
        return -EINVAL;
    if (stream_query_parse(raw_query, strlen(raw_query), &q) < 0) {
        snprintf(why, why_len, "out of memory");
        return -ENOMEM;
    }
    rc = decode_options(&q, now_s, lr, &invalid);
    stream_query_cleanup(&q);
    if (rc < 0 || invalid) {
        snprintf(why, why_len, "%s", rc < 0 ? UNDECODABLE : INVALID);
        return -EINVAL;
    }
    return 0;
}

/* ---- the connection ---------------------------------------------------------------------- */

struct logs_conn {
    const struct stream_deps *deps;
    struct stream_conn *c;
    long handle;  /* the runtime's, 0 before logs() returned or after the end */
    bool running; /* between logs() and its end or cancel */
    bool paused;
    bool ended;   /* the runtime called end */
    int64_t left; /* limitBytes still allowed, -1 none */
    char what[200];
};

static void stop_runtime(struct logs_conn *l)
{
    if (l->running && l->handle > 0)
        l->deps->rt->ops->logs_cancel(l->deps->rt->rt, l->handle);
    l->running = false;
}

static void pause_runtime(struct logs_conn *l, bool pause)
{
    const struct runtime_ops *ops = l->deps->rt->ops;

    /* logs_pause comes with the Docker runtime's session work; without it the queue grows
     * past the mark, bounded by the engine's read chunks */
    if (!ops->logs_pause || !l->running || l->handle <= 0 || l->paused == pause)
        return;
    l->paused = pause;
    ops->logs_pause(l->deps->rt->rt, l->handle, pause);
}

static void on_chunk(void *ctx, enum runtime_log_stream s, const char *b, size_t n)
{
    struct logs_conn *l = ctx;
    int rc;

    (void)s; /* kubelet writes both streams to the one body */
    if (!l->running)
        return;
    if (l->left >= 0 && (int64_t)n > l->left)
        n = (size_t)l->left;
    if (n && (rc = stream_conn_send(l->c, b, n)) < 0) {
        kedge_log(KEDGE_LOG_INFO, "stream: logs of %s cut: %s", l->what,
                  rc == -ENOMEM ? "out of memory" : "the tunnel is gone");
        stop_runtime(l);
        stream_conn_end(l->c);
        return;
    }
    if (l->left >= 0) {
        l->left -= (int64_t)n;
        if (l->left == 0) { /* limitBytes reached: kubelet stops there */
            stop_runtime(l);
            stream_conn_end(l->c);
            return;
        }
    }
    if (stream_conn_over(l->c))
        pause_runtime(l, true);
}

static void on_end(void *ctx, int err, const char *message)
{
    struct logs_conn *l = ctx;

    l->running = false;
    l->ended = true;
    l->handle = 0;
    if (err < 0 && err != -ECANCELED) {
        kedge_log(KEDGE_LOG_INFO, "stream: logs of %s: %s", l->what, message);
        (void)stream_conn_send(l->c, message, strlen(message));
    }
    stream_conn_end(l->c);
}

/* A request refused the way kubelet refuses it: its text as the body, then the end. */
static int refuse(struct stream_conn *c, const char *what, const char *why)
{
    kedge_log(KEDGE_LOG_INFO, "stream: logs %s refused: %s", what, why);
    (void)stream_conn_send(c, why, strlen(why));
    stream_conn_end(c);
    return 0;
}

static int start(struct logs_conn *l, const struct stream_log_request *lr)
{
    const struct runtime_log_options o = {lr->follow, lr->tail_lines, lr->since_s, lr->timestamps};
    char id[128], why[512];
    long h;

    if (!l->deps->rt || !l->deps->find)
        return refuse(l->c, l->what, "this node runs no containers (engine_socket none)");
    if (l->deps->find(l->deps->find_ctx, lr->ns, lr->pod, lr->container, lr->previous, id,
                      sizeof(id), why, sizeof(why)) < 0)
        return refuse(l->c, l->what, why);
    l->running = true;
    h = l->deps->rt->ops->logs(l->deps->rt->rt, id, &o, on_chunk, on_end, l);
    if (h < 0) {
        l->running = false;
        snprintf(why, sizeof(why), "failed to get logs of container %s: %s", lr->container,
                 strerror((int)-h));
        return refuse(l->c, l->what, why);
    }
    if (l->running)
        l->handle = h;
    else if (!l->ended) /* stopped from inside a chunk before logs() returned */
        l->deps->rt->ops->logs_cancel(l->deps->rt->rt, h);
    return 0;
}

static int logs_open(void *hctx, struct stream_conn *c, const struct stream_request *req,
                     void **state)
{
    struct stream_log_request lr;
    struct logs_conn *l = kedge_calloc(1, sizeof(*l));
    char why[256];

    if (!l)
        return -ENOMEM;
    l->deps = hctx;
    l->c = c;
    *state = l;
    if (stream_logs_parse(req->path, req->raw_query, (int64_t)time(NULL), &lr, why, sizeof(why)) <
        0) {
        snprintf(l->what, sizeof(l->what), "%.150s", req->path);
        return refuse(c, l->what, why);
    }
    snprintf(l->what, sizeof(l->what), "%.60s/%.60s/%.60s (connection %llu)", lr.ns, lr.pod,
             lr.container, (unsigned long long)stream_conn_id(c));
    l->left = lr.limit_bytes;
    return start(l, &lr);
}

static void logs_remove(void *state)
{
    struct logs_conn *l = state;

    if (l->running)
        kedge_log(KEDGE_LOG_INFO, "stream: logs of %s ended by the cloud", l->what);
    stop_runtime(l);
}

static void logs_resume(void *state)
{
    pause_runtime(state, false);
}

static void logs_free(void *state)
{
    stop_runtime(state);
    kedge_free(state);
}

const struct stream_handler_ops stream_logs_ops = {logs_open, NULL, logs_remove, logs_resume,
                                                   logs_free};
