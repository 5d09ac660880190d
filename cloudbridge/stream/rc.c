/* The remote command codec's entry points (remotecommand.h): the request's options read from the
 * query as kubelet reads them, the transport picked, and every later call passed to it through
 * its ops table. The wire work is rc_ws.c's and rc_spdy.c's; the shared semantics rc_core.c's.
 */
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "rc_int.h"
#include "request.h"

/* ---- the query, as Go's url.ParseQuery + Request.FormValue read it -------------------------- */

/* kubelet's names (api.ExecStdinParam etc.): kube-apiserver turns the pods/exec options
 * stdin/stdout/stderr into input/output/error on the URL it sends a kubelet. FormValue: the
 * first value counts, and only "1" is true. */
static bool flag(const struct stream_query *q, const char *key)
{
    const struct stream_query_kv *kv = stream_query_get(q, key);

    return kv && kv->value_len == 1 && kv->value[0] == '1';
}

static int take_strings(struct rc *r, const struct stream_query *q)
{
    size_t i, n = stream_query_count(q, "command");
    const struct stream_query_kv *c = stream_query_get(q, "container");

    r->argv = kedge_calloc(n + 1, sizeof(*r->argv));
    if (!r->argv)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        const struct stream_query_kv *kv = stream_query_nth(q, "command", i);

        r->argv[i] = kedge_strndup(kv->value, kv->value_len);
        if (!r->argv[i])
            return -ENOMEM;
        r->o.argc++;
    }
    if (c && !(r->container = kedge_strndup(c->value, c->value_len)))
        return -ENOMEM;
    return 0;
}

static int parse_query(struct rc *r, const char *raw)
{
    struct stream_query q;
    int rc = stream_query_parse(raw ? raw : "", raw ? strlen(raw) : 0, &q);

    if (rc == 0) {
        r->o.in = flag(&q, "input");
        r->o.out = flag(&q, "output");
        r->o.err = flag(&q, "error");
        r->o.tty = flag(&q, "tty");
        rc = take_strings(r, &q);
    }
    stream_query_cleanup(&q);
    r->o.argv = r->argv;
    r->o.container = r->container;
    return rc;
}

/* ---- entry points ------------------------------------------------------------------------- */

static void rc_free_parts(struct rc *r)
{
    size_t i;

    for (i = 0; r->argv && r->argv[i]; i++)
        kedge_free(r->argv[i]);
    kedge_free(r->argv);
    kedge_free(r->container);
    kedge_buf_cleanup(&r->resize_buf);
    kedge_buf_cleanup(&r->pending_in);
    kedge_free(r);
}

int rc_accept(const struct rc_upgrade *u, const struct rc_fns *fns, void *ctx, struct rc **out)
{
    static const char none[] = "you must specify at least 1 of stdin, stdout, stderr";
    struct rc *r = kedge_calloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    if (!r) {
        (void)rc_core_http(fns, ctx, 500, NULL, false, NULL, 0);
        return -ENOMEM;
    }
    r->fns = *fns;
    r->ctx = ctx;
    r->attach = u->attach;
    rc = parse_query(r, u->raw_query);
    if (rc < 0) {
        (void)rc_core_http(fns, ctx, 500, NULL, false, NULL, 0);
        goto fail;
    }
    if (r->o.tty && r->o.err)
        r->o.err = false; /* NewOptions: a TTY has no stderr */
    if (!r->o.in && !r->o.out && !r->o.err) {
        /* kubelet's router answers NewOptions' error (go-restful WriteError: no newline) */
        rc = rc_core_http(fns, ctx, 400, NULL, true, none, sizeof(none) - 1);
        rc = rc < 0 ? rc : -EINVAL;
        goto fail;
    }
    *out = r; /* before the transport: a WebSocket calls ready() from inside its accept */
    rc = rc_ws_is_request(u) ? rc_ws_accept(r, u) : rc_spdy_accept(r, u);
    if (rc == 0)
        return 0;
    *out = NULL;
fail:
    rc_free_parts(r);
    return rc;
}

int rc_input(struct rc *r, const char *b, size_t n)
{
    if (r->state == RC_OVER)
        return -EPIPE;
    return r->proto->input(r, b, n);
}

int rc_output(struct rc *r, enum runtime_log_stream s, const char *b, size_t n)
{
    enum rc_chan ch = s == RT_STDERR ? RC_STDERR : RC_STDOUT;

    if (r->state == RC_OVER)
        return -EPIPE;
    if (r->o.tty)
        ch = RC_STDOUT;
    if ((ch == RC_STDOUT && !r->o.out) || (ch == RC_STDERR && !r->o.err) || n == 0)
        return 0;
    return r->proto->output(r, ch, b, n);
}

/* Whatever happens the rc is over: without its status the glue can only cut the connection. */
static int finish(struct rc *r, struct kedge_buf *status, int rc)
{
    if (rc == 0)
        rc = r->proto->finish(r, status->data, status->len);
    r->state = RC_OVER;
    kedge_buf_cleanup(status);
    return rc;
}

int rc_exit(struct rc *r, int exit_code)
{
    struct kedge_buf status = KEDGE_BUF_INIT;

    if (r->state == RC_OVER)
        return -EPIPE;
    return finish(r, &status, rc_core_status_exit(r, exit_code, &status));
}

int rc_fail(struct rc *r, const char *message)
{
    struct kedge_buf status = KEDGE_BUF_INIT;

    if (r->state == RC_OVER)
        return -EPIPE;
    return finish(r, &status, rc_core_status_fail(r, message, &status));
}

int rc_reject(const struct rc_fns *fns, void *ctx, int status, const char *body)
{
    return rc_core_http(fns, ctx, status, NULL, true, body ? body : "", body ? strlen(body) : 0);
}

void rc_free(struct rc *r)
{
    if (!r)
        return;
    if (r->proto)
        r->proto->free(r);
    rc_free_parts(r);
}
