/* The metrics endpoint: metrics.h says what and why. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/log.h"
#include "metrics.h"

#define MAX_COLLECTORS 16

struct metrics_writer {
    struct kedge_buf *out;
    char family[96]; /* the family being written: HELP and TYPE go once, before its samples */
    int rc;
};

struct collector {
    metrics_collect_fn fn;
    void *ctx;
};

struct metrics {
    struct lws_vhost *vhost;
    struct collector c[MAX_COLLECTORS];
    size_t n;
    metrics_health_fn health;
    void *health_ctx;
};

/* One answer being written: the headers went out, the body waits for the writable callback. */
struct http_session {
    unsigned char *body; /* LWS_PRE bytes of room, then the body */
    size_t len;
};

/* ---- the text format ------------------------------------------------------------------------ */

static void family(struct metrics_writer *w, const char *name, const char *type, const char *help)
{
    if (!strcmp(w->family, name))
        return;
    (void)snprintf(w->family, sizeof(w->family), "%s", name);
    if (w->rc == 0)
        w->rc = kedge_buf_printf(w->out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Prometheus' float text: integers without a fraction, NaN and infinities by name. */
static int value_text(struct kedge_buf *b, double v)
{
    if (isnan(v))
        return kedge_buf_puts(b, "NaN");
    if (isinf(v))
        return kedge_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    if (v == (double)(long long)v && fabs(v) < 9e15)
        return kedge_buf_printf(b, "%lld", (long long)v);
    return kedge_buf_printf(b, "%.17g", v);
}

void metrics_sample(struct metrics_writer *w, const char *name, const char *type, const char *help,
                    double value)
{
    family(w, name, type, help);
    if (w->rc == 0)
        w->rc = kedge_buf_printf(w->out, "%s ", name);
    if (w->rc == 0)
        w->rc = value_text(w->out, value);
    if (w->rc == 0)
        w->rc = kedge_buf_puts(w->out, "\n");
}

/* A label value escapes backslash, double quote and newline (the format's three). */
static int label_text(struct kedge_buf *b, const char *v)
{
    int rc = 0;

    for (; *v && rc == 0; v++)
        rc = *v == '\\'   ? kedge_buf_puts(b, "\\\\")
             : *v == '"'  ? kedge_buf_puts(b, "\\\"")
             : *v == '\n' ? kedge_buf_puts(b, "\\n")
                          : kedge_buf_append(b, v, 1);
    return rc;
}

void metrics_sample_label(struct metrics_writer *w, const char *name, const char *type,
                          const char *help, const char *label, const char *label_value,
                          double value)
{
    family(w, name, type, help);
    if (w->rc == 0)
        w->rc = kedge_buf_printf(w->out, "%s{%s=\"", name, label);
    if (w->rc == 0)
        w->rc = label_text(w->out, label_value);
    if (w->rc == 0)
        w->rc = kedge_buf_puts(w->out, "\"} ");
    if (w->rc == 0)
        w->rc = value_text(w->out, value);
    if (w->rc == 0)
        w->rc = kedge_buf_puts(w->out, "\n");
}

int metrics_render(struct metrics *m, struct kedge_buf *out)
{
    struct metrics_writer w = {out, "", 0};
    size_t i;

    for (i = 0; i < m->n && w.rc == 0; i++)
        m->c[i].fn(m->c[i].ctx, &w);
    return w.rc;
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

/* The answer to uri: its status, content type and body. */
static int answer_for(struct metrics *m, const char *uri, unsigned *status, const char **type,
                      struct kedge_buf *body)
{
    const char *why = NULL;

    *type = "text/plain; charset=utf-8";
    if (!strcmp(uri, "/metrics")) {
        *status = HTTP_STATUS_OK;
        *type = "text/plain; version=0.0.4; charset=utf-8";
        return metrics_render(m, body);
    }
    if (!strcmp(uri, "/healthz")) {
        bool ok = !m->health || m->health(m->health_ctx, &why);
        *status = ok ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE;
        return kedge_buf_printf(body, "%s\n", ok ? "ok" : why ? why : "unhealthy");
    }
    *status = HTTP_STATUS_NOT_FOUND;
    return kedge_buf_puts(body, "not found: /metrics and /healthz are served here\n");
}

static int start_answer(struct lws *wsi, struct http_session *s, const char *uri)
{
    struct metrics *m = lws_vhost_user(lws_get_vhost(wsi));
    unsigned char head[LWS_PRE + 512], *start = &head[LWS_PRE], *p = start;
    struct kedge_buf body = KEDGE_BUF_INIT;
    const char *type;
    unsigned status;

    if (kedge_buf_append(&body, head, LWS_PRE) < 0 ||
        answer_for(m, uri, &status, &type, &body) < 0) {
        kedge_buf_cleanup(&body);
        return -1; /* out of memory: the connection closes, the scraper retries */
    }
    s->len = body.len - LWS_PRE;
    s->body = (unsigned char *)kedge_buf_take(&body, NULL);
    if (lws_add_http_common_headers(wsi, status, type, s->len, &p, &head[sizeof(head) - 1]) ||
        lws_finalize_write_http_header(wsi, start, &p, &head[sizeof(head) - 1]))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct http_session *s = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return start_answer(wsi, s, in);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!s->body)
            return -1;
        if (lws_write(wsi, s->body + LWS_PRE, s->len, LWS_WRITE_HTTP_FINAL) < (int)s->len)
            return -1;
        kedge_free(s->body);
        s->body = NULL;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        kedge_free(s->body);
        s->body = NULL;
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols http_protocols[] = {
    {"kedge-metrics", http_callback, sizeof(struct http_session), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int metrics_new(struct lws_context *lws, const char *address, long port, struct metrics **out)
{
    struct lws_context_creation_info info;
    struct metrics *m = kedge_calloc(1, sizeof(*m));

    *out = m;
    if (!m)
        return -ENOMEM;
    if (port == 0)
        return 0;
    memset(&info, 0, sizeof(info));
    info.vhost_name = "metrics";
    info.iface = address;
    info.port = (int)port;
    info.protocols = http_protocols;
    info.user = m; /* http_callback's way back */
    m->vhost = lws_create_vhost(lws, &info);
    if (!m->vhost) { /* the bridge's job is the cloud link: it goes on without a scrape */
        kedge_log(KEDGE_LOG_ERR, "metrics: cannot listen on %s:%ld (metrics_port): no /metrics",
                  address, port);
        return 0;
    }
    kedge_log(KEDGE_LOG_INFO, "metrics: /metrics and /healthz on http://%s:%ld", address, port);
    return 0;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    if (m->vhost)
        lws_vhost_destroy(m->vhost);
    kedge_free(m);
}

int metrics_add(struct metrics *m, metrics_collect_fn fn, void *ctx)
{
    if (m->n == MAX_COLLECTORS)
        return -ENOSPC;
    m->c[m->n++] = (struct collector){fn, ctx};
    return 0;
}

void metrics_set_health(struct metrics *m, metrics_health_fn fn, void *ctx)
{
    m->health = fn;
    m->health_ctx = ctx;
}
