/* stream.c: EdgeStream's lifecycle (stream.h): the tunnel, the connectID table, the handlers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"
#include "kedge/alloc.h"
#include "kedge/log.h"
#include "kubelet_stats.h"
#include "logs.h"
#include "stream.h"
#include "tunnel.h"

/* Bytes queued for the tunnel above which handlers pause their source. A few hundred KiB is
 * a fraction of a second of a LAN or a fast WAN link, so a paused `kubectl logs -f` or exec
 * resumes quickly, and 20 busy connections cannot pile up megabytes. */
#define HIGH_WATER (256 * 1024)

struct stream {
    struct stream_config cfg; /* the tunnel's strings point into it */
    struct stream_deps deps;
    struct lws_context *lws;
    struct tunnel *t;
    struct stream_session *s;
    struct kubelet_stats *metrics; /* METRIC_CONNECT */
    lws_sorted_usec_list_t sul_reap;
    bool stopping;
};

/* ---- glue between the tunnel and the session -------------------------------------------- */

static int out_send(void *ctx, uint64_t id, uint64_t type, const char *data, size_t len)
{
    return tunnel_send(((struct stream *)ctx)->t, id, type, data, len);
}

static size_t out_queued(void *ctx)
{
    return tunnel_queued(((struct stream *)ctx)->t);
}

static void reap_cb(lws_sorted_usec_list_t *sul)
{
    struct stream *st = lws_container_of(sul, struct stream, sul_reap);

    if (st->s)
        stream_session_reap(st->s);
}

static void out_wake(void *ctx)
{
    struct stream *st = ctx;

    if (!st->stopping)
        lws_sul_schedule(st->lws, 0, &st->sul_reap, reap_cb, 1);
}

static void on_frame(void *ctx, const struct stream_frame *f)
{
    stream_session_input(((struct stream *)ctx)->s, f);
}

static void on_link(void *ctx, bool up)
{
    struct stream *st = ctx;

    if (!up && stream_session_count(st->s))
        kedge_log(KEDGE_LOG_WARN, "stream: tunnel down: ending %zu connection(s)",
                  stream_session_count(st->s));
    if (!up)
        stream_session_reset(st->s);
}

static void on_drained(void *ctx)
{
    stream_session_drained(((struct stream *)ctx)->s);
}

static int register_defaults(struct stream *st)
{
    if (stream_session_register(st->s, STREAM_LOGS_CONNECT, &stream_logs_ops, &st->deps) < 0 ||
        stream_session_register(st->s, STREAM_EXEC_CONNECT, &stream_exec_ops, &st->deps) < 0 ||
        stream_session_register(st->s, STREAM_ATTACH_CONNECT, &stream_attach_ops, &st->deps) < 0)
        return -EINVAL;
    return 0;
}

/* kubelet's /stats/summary and /metrics/resource from the runtime, Edged's pods and /proc. */
static int register_metrics(struct stream *st)
{
    struct kubelet_stats_config kc = {
        .rt = st->deps.rt,
        .pods = st->deps.pods,
        .pods_ctx = st->deps.pods_ctx,
        .node_name = st->cfg.node_name,
        .node = {.proc = "/proc",
                 .fs_path = st->deps.fs_path,
                 .image_fs_path = st->deps.fs_path,
                 .clk_tck = sysconf(_SC_CLK_TCK)},
    };

    if (kubelet_stats_new(&kc, &st->metrics) < 0)
        return -ENOMEM;
    return kubelet_stats_register(st->metrics, st->s);
}

int stream_new(const struct stream_config *cfg, const struct stream_deps *deps,
               struct lws_context *lws, struct stream **out)
{
    struct stream *st = kedge_calloc(1, sizeof(*st));
    struct tunnel_config tc;
    struct tunnel_fns fns;
    struct session_out so;

    *out = NULL;
    if (!st)
        return -ENOMEM;
    st->cfg = *cfg;
    cfg = &st->cfg;
    st->deps = *deps;
    st->lws = lws;
    tc = (struct tunnel_config){
        cfg->node_name,      cfg->node_ip,       cfg->server_host,  cfg->server_port,
        cfg->tls_ca_file,    cfg->tls_cert_file, cfg->tls_key_file, cfg->backoff_initial_ms,
        cfg->backoff_max_ms, cfg->ping_idle_s,   cfg->dead_link_s,  HIGH_WATER};
    fns = (struct tunnel_fns){on_frame, on_link, on_drained, st};
    so = (struct session_out){out_send, out_queued, out_wake, st, HIGH_WATER};
    if (stream_session_new(&so, &st->s) < 0 || register_defaults(st) < 0 ||
        register_metrics(st) < 0 || tunnel_new(&tc, lws, &fns, &st->t) < 0) {
        stream_session_free(st->s);
        kubelet_stats_free(st->metrics);
        kedge_free(st);
        return -ENOMEM;
    }
    tunnel_start(st->t);
    *out = st;
    return 0;
}

int stream_register(struct stream *s, uint64_t type, const struct stream_handler_ops *ops,
                    void *hctx)
{
    return stream_session_register(s->s, type, ops, hctx);
}

void stream_stop(struct stream *s)
{
    if (!s || s->stopping)
        return;
    s->stopping = true;
    lws_sul_cancel(&s->sul_reap);
    tunnel_stop(s->t);
    stream_session_free(s->s); /* every connection ends; the runtime is still there */
    s->s = NULL;
}

void stream_free(struct stream *s)
{
    if (!s)
        return;
    stream_session_free(s->s);
    kubelet_stats_free(s->metrics); /* after the session: its connections are gone */
    tunnel_free(s->t);
    kedge_free(s);
}

void stream_stats(const struct stream *s, struct stream_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!s)
        return;
    st->connected = tunnel_connected(s->t);
    st->reconnects = tunnel_reconnects(s->t);
    st->connections = stream_session_count(s->s);
    st->queued = s->s ? tunnel_queued(s->t) : 0;
}
