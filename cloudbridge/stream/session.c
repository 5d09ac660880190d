/* session.c: the connectID table and the handlers (session.h). */
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "session.h"

struct handler {
    const struct stream_handler_ops *ops;
    void *hctx;
};

struct stream_conn {
    struct stream_session *s;
    uint64_t id, type;
    const struct stream_handler_ops *ops;
    void *state;
    bool opened;  /* open returned 0: free is owed */
    bool dead;    /* ended: out of the table's count, freed at the next reap */
    bool waiting; /* told "over": resume is owed */
};

struct stream_session {
    struct session_out out;
    struct handler handlers[STREAM_N_TYPES];
    struct stream_conn **conns;
    size_t n, cap;
    size_t live;
    bool reaping;
    struct kedge_ratelimit rl;
};

int stream_session_new(const struct session_out *out, struct stream_session **s)
{
    struct kedge_ratelimit rl = KEDGE_RATELIMIT_INIT(10000, 10);

    *s = kedge_calloc(1, sizeof(**s));
    if (!*s)
        return -ENOMEM;
    (*s)->out = *out;
    (*s)->rl = rl;
    return 0;
}

int stream_session_register(struct stream_session *s, uint64_t type,
                            const struct stream_handler_ops *ops, void *hctx)
{
    if (type >= STREAM_N_TYPES || type == STREAM_DATA || type == STREAM_REMOVE_CONNECT ||
        type == STREAM_CLOSE_CONNECT || !ops || !ops->open || !ops->free)
        return -EINVAL;
    s->handlers[type].ops = ops;
    s->handlers[type].hctx = hctx;
    return 0;
}

static struct stream_conn *find(const struct stream_session *s, uint64_t id)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (!s->conns[i]->dead && s->conns[i]->id == id)
            return s->conns[i];
    return NULL;
}

/* Out of the count; freed by the next reap. remove: the peer ended it (tell the handler). */
static void kill_conn(struct stream_conn *c, bool remove)
{
    struct stream_session *s = c->s;

    if (c->dead)
        return;
    c->dead = true;
    s->live--;
    if (remove && c->opened && c->ops->remove)
        c->ops->remove(c->state);
    s->out.wake(s->out.ctx);
}

static void end_unserved(struct stream_session *s, uint64_t id)
{
    (void)s->out.send(s->out.ctx, id, STREAM_REMOVE_CONNECT, NULL, 0);
}

static void open_conn(struct stream_session *s, const struct stream_frame *f)
{
    const struct handler *h = &s->handlers[f->type];
    struct stream_request req;
    struct stream_conn *c;
    int rc;

    if (find(s, f->id)) {
        kedge_log_limited(&s->rl, "stream", KEDGE_LOG_WARN,
                          "stream: %s for connection %llu, which is open: dropped",
                          stream_type_name(f->type), (unsigned long long)f->id);
        return;
    }
    if (!h->ops) {
        kedge_log(KEDGE_LOG_WARN, "stream: no handler for %s (connection %llu): refused",
                  stream_type_name(f->type), (unsigned long long)f->id);
        end_unserved(s, f->id);
        return;
    }
    rc = stream_request_parse(f->data, f->len, &req);
    c = rc == 0 ? kedge_calloc(1, sizeof(*c)) : NULL;
    if (c && s->n == s->cap && kedge_array_grow(&s->conns, &s->cap, s->n, sizeof(c), 16) < 0) {
        kedge_free(c);
        c = NULL;
    }
    if (!c) {
        kedge_log(KEDGE_LOG_WARN, "stream: %s for connection %llu not served: %s",
                  stream_type_name(f->type), (unsigned long long)f->id,
                  rc < 0 ? kedge_strerror(rc) : "out of memory");
        stream_request_cleanup(&req);
        end_unserved(s, f->id);
        return;
    }
    *c = (struct stream_conn){.s = s, .id = f->id, .type = f->type, .ops = h->ops};
    s->conns[s->n++] = c;
    s->live++;
    rc = h->ops->open(h->hctx, c, &req, &c->state);
    stream_request_cleanup(&req);
    if (rc == 0) {
        c->opened = true;
        return;
    }
    kedge_log(KEDGE_LOG_WARN, "stream: %s for connection %llu not served: %s",
              stream_type_name(f->type), (unsigned long long)f->id, kedge_strerror(rc));
    stream_conn_end(c);
}

void stream_session_input(struct stream_session *s, const struct stream_frame *f)
{
    struct stream_conn *c;

    switch (f->type) {
    case STREAM_DATA:
        c = find(s, f->id);
        if (!c)
            kedge_log_limited(&s->rl, "stream", KEDGE_LOG_INFO,
                              "stream: DATA for connection %llu, which is not open: dropped",
                              (unsigned long long)f->id);
        else if (c->opened && c->ops->data)
            c->ops->data(c->state, f->data, f->len);
        return;
    case STREAM_REMOVE_CONNECT:
        c = find(s, f->id);
        if (c) {
            kedge_log(KEDGE_LOG_INFO, "stream: the cloud ended connection %llu (%s)",
                      (unsigned long long)f->id, stream_type_name(c->type));
            kill_conn(c, true);
        }
        return;
    case STREAM_LOGS_CONNECT:
    case STREAM_EXEC_CONNECT:
    case STREAM_METRIC_CONNECT:
    case STREAM_ATTACH_CONNECT:
        open_conn(s, f);
        return;
    default:
        kedge_log_limited(&s->rl, "stream", KEDGE_LOG_WARN,
                          "stream: a frame of unknown type %llu (connection %llu): dropped",
                          (unsigned long long)f->type, (unsigned long long)f->id);
        return;
    }
}

void stream_session_reset(struct stream_session *s)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        kill_conn(s->conns[i], true);
}

void stream_session_drained(struct stream_session *s)
{
    size_t i, n = s->n;

    /* resume may end or open nothing (opens come only from input), but it may end itself:
     * dead conns stay in the array until reap, so indexes hold */
    for (i = 0; i < n; i++) {
        struct stream_conn *c = s->conns[i];
        if (c->dead || !c->waiting)
            continue;
        c->waiting = false;
        if (c->ops->resume)
            c->ops->resume(c->state);
    }
}

void stream_session_reap(struct stream_session *s)
{
    size_t i = 0;

    if (s->reaping)
        return;
    s->reaping = true;
    while (i < s->n) {
        struct stream_conn *c = s->conns[i];
        if (!c->dead) {
            i++;
            continue;
        }
        s->conns[i] = s->conns[--s->n];
        if (c->opened)
            c->ops->free(c->state);
        kedge_free(c);
    }
    s->reaping = false;
}

size_t stream_session_count(const struct stream_session *s)
{
    return s ? s->live : 0;
}

void stream_session_free(struct stream_session *s)
{
    if (!s)
        return;
    stream_session_reset(s);
    stream_session_reap(s);
    kedge_free(s->conns);
    kedge_free(s);
}

/* ---- for handlers ------------------------------------------------------------------------ */

int stream_conn_send(struct stream_conn *c, const char *b, size_t n)
{
    struct stream_session *s = c->s;

    if (c->dead)
        return -EPIPE;
    return s->out.send(s->out.ctx, c->id, STREAM_DATA, b, n);
}

bool stream_conn_over(struct stream_conn *c)
{
    struct stream_session *s = c->s;

    if (c->dead || s->out.queued(s->out.ctx) <= s->out.high_water)
        return false;
    c->waiting = true;
    return true;
}

void stream_conn_end(struct stream_conn *c)
{
    struct stream_session *s = c->s;

    if (c->dead)
        return;
    /* edgecore tries three times; ours is queued (or the tunnel is gone, and with it the
     * cloud's side of the connection) */
    (void)s->out.send(s->out.ctx, c->id, STREAM_REMOVE_CONNECT, NULL, 0);
    kill_conn(c, false);
}

uint64_t stream_conn_id(const struct stream_conn *c)
{
    return c->id;
}
