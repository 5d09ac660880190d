/* The remote command codec's entry points (remotecommand.h): the request's options read from the
 * query as kubelet reads them, the transport picked, and every later call passed to it through
 * its ops table. The wire work is rc_ws.c's and rc_spdy.c's; the shared semantics rc_core.c's.
 */
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "rc_int.h"

/* ---- the query, as Go's url.ParseQuery + Request.FormValue read it -------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* QueryUnescape of s[0..n) into a new string; NULL with *bad for a malformed escape. */
static char *unescape(const char *s, size_t n, bool *bad)
{
    char *d = kedge_malloc(n + 1);
    size_t i, j = 0;

    *bad = false;
    if (!d)
        return NULL;
    for (i = 0; i < n; i++) {
        if (s[i] == '+') {
            d[j++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;

            if (hi < 0 || lo < 0) {
                kedge_free(d);
                *bad = true;
                return NULL;
            }
            d[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = '\0';
    return d;
}

/* One key=value pair of the query. Returns 0 (kept or skipped as Go skips a bad pair), -ENOMEM. */
static int query_pair(struct rc *r, const char *s, size_t n, bool seen[4])
{
    /* kubelet's names (api.ExecStdinParam etc.): kube-apiserver turns the pods/exec options
     * stdin/stdout/stderr into input/output/error on the URL it sends a kubelet */
    static const char *const flags[] = {"input", "output", "error", "tty"};
    bool *const dest[] = {&r->o.in, &r->o.out, &r->o.err, &r->o.tty};
    const char *eq = memchr(s, '=', n);
    size_t klen = eq ? (size_t)(eq - s) : n;
    char *key, *val;
    bool bad;
    size_t i;

    if (memchr(s, ';', n)) /* Go >= 1.17 refuses a pair with ';' and goes on */
        return 0;
    key = unescape(s, klen, &bad);
    if (!key)
        return bad ? 0 : -ENOMEM;
    val = unescape(eq ? eq + 1 : s + n, eq ? n - klen - 1 : 0, &bad);
    if (!val) {
        kedge_free(key);
        return bad ? 0 : -ENOMEM;
    }
    for (i = 0; i < 4; i++) {
        if (strcmp(key, flags[i]) || seen[i])
            continue;
        seen[i] = true; /* FormValue: the first value counts, and only "1" is true */
        *dest[i] = !strcmp(val, "1");
    }
    if (!strcmp(key, "command")) {
        char **argv = kedge_realloc(r->argv, (r->o.argc + 2) * sizeof(*argv));

        if (!argv) {
            kedge_free_all(key, val);
            return -ENOMEM;
        }
        r->argv = argv;
        argv[r->o.argc++] = val;
        argv[r->o.argc] = NULL;
        val = NULL;
    } else if (!strcmp(key, "container") && !r->container) {
        r->container = val;
        val = NULL;
    }
    kedge_free_all(key, val);
    return 0;
}

static int parse_query(struct rc *r, const char *q)
{
    bool seen[4] = {false, false, false, false};
    int rc = 0;

    while (q && *q && rc == 0) {
        size_t n = strcspn(q, "&");

        if (n)
            rc = query_pair(r, q, n, seen);
        q += n + (q[n] == '&');
    }
    r->o.argv = r->argv;
    r->o.container = r->container;
    return rc;
}

/* ---- entry points ------------------------------------------------------------------------- */

static void rc_free_parts(struct rc *r)
{
    size_t i;

    for (i = 0; i < r->o.argc; i++)
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
