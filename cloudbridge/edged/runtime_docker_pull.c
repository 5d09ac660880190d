/* runtime_docker_pull.c: POST /images/create as a stream (runtime_docker_pull.h).
 *
 * Why a stream: the engine answers a pull with one progress line per layer event for as long as
 * the pull takes (minutes for a large image); collected, that body grows with the image and the
 * request's timeout would cut a slow pull. Streamed, each piece is split into lines as it comes
 * and only a failure is kept. The two engines fail differently: dockerd answers an error found
 * before the pull starts (unknown host, unauthorized, no such tag) with HTTP 500 and
 * {"message":..}; podman answers 200 and puts {"error":..} in the stream, as dockerd does for a
 * failure midway. Both end in one done.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/json.h"
#include "regauth.h"
#include "runtime_docker_exec.h"
#include "runtime_docker_pull.h"

#define PULL_HEAD_TIMEOUT_MS 600000 /* until the engine answers at all (it resolves first) */
#define MAX_PROGRESS_LINE 65536     /* a progress line is ~200 bytes: a longer one is dropped */

struct pull {
    runtime_done_fn done;
    void *ctx;
    struct kedge_buf line; /* the partial progress line */
    char error[800];       /* the stream's first error ("" none) */
};

int docker_urlencode(struct kedge_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int rc;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            rc = kedge_buf_putc(out, (char)c);
        else
            rc = kedge_buf_printf(out, "%%%c%c", hex[c >> 4], hex[c & 15]);
        if (rc < 0)
            return -ENOMEM;
    }
    return 0;
}

static bool has_tag(const char *image)
{
    const char *slash = strrchr(image, '/');
    const char *last = slash ? slash + 1 : image;

    return strchr(last, ':') || strchr(image, '@');
}

int docker_pull_path(const char *image, struct kedge_buf *out)
{
    if (kedge_buf_puts(out, "/images/create?fromImage=") < 0 || docker_urlencode(out, image) < 0 ||
        (!has_tag(image) && kedge_buf_puts(out, "%3Alatest") < 0))
        return -ENOMEM;
    return 0;
}

bool docker_pull_line_error(const char *line, size_t len, char *out, size_t n)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *e = NULL, *d;
    bool failed = false;

    if (kedge_json_parse(line, len, &doc) < 0)
        return false; /* not a progress object: nothing said */
    e = kedge_json_get(kedge_jdoc_root(doc), "error");
    d = kedge_json_get(kedge_json_get(kedge_jdoc_root(doc), "errorDetail"), "message");
    if (d && d->type == KEDGE_JSTR && d->len)
        e = d;
    if (e && e->type == KEDGE_JSTR) {
        snprintf(out, n, "%s", e->len ? e->str : "pull failed");
        failed = true;
    }
    kedge_jdoc_free(doc);
    return failed;
}

static void take_line(struct pull *p, const char *b, size_t n)
{
    while (n && (b[n - 1] == '\r' || b[n - 1] == ' '))
        n--;
    if (n && !p->error[0])
        (void)docker_pull_line_error(b, n, p->error, sizeof(p->error));
}

/* Hand each complete line over; keep the partial tail. */
static void on_data(void *ctx, const char *bytes, size_t len)
{
    struct pull *p = ctx;
    struct kedge_buf *b = &p->line;
    size_t start = 0, i;

    if (kedge_buf_append(b, bytes, len) < 0) {
        b->len = 0; /* a progress line lost: only an error would matter, and it ends the pull */
        return;
    }
    for (i = 0; i < b->len; i++)
        if (b->data[i] == '\n') {
            take_line(p, b->data + start, i - start);
            start = i + 1;
        }
    if (start) {
        memmove(b->data, b->data + start, b->len - start);
        b->len -= start;
    }
    if (b->len > MAX_PROGRESS_LINE)
        b->len = 0;
}

static void on_done(void *ctx, const struct engine_reply *r)
{
    struct pull *p = ctx;
    struct runtime_result res = {.outcome = RT_OK, .message = ""};
    char msg[800];

    if (p->line.len)
        take_line(p, p->line.data, p->line.len); /* the last line without its newline */
    if (r->err == -ECANCELED) {
        res.outcome = RT_CANCELLED;
        res.message = "the container runtime client stopped";
    } else if (r->status < 200 || r->status >= 300) {
        docker_engine_message(r, msg, sizeof(msg)); /* dockerd: 500 {"message":..} */
        res.outcome = r->status == 0 ? RT_UNREACHABLE : RT_FAILED;
        res.message = msg;
    } else if (p->error[0]) {
        res.outcome = RT_FAILED; /* podman, or a failure midway: in the stream */
        res.message = p->error;
    } else if (r->err) {
        docker_engine_message(r, msg, sizeof(msg)); /* the stream broke off */
        res.outcome = RT_UNREACHABLE;
        res.message = msg;
    }
    p->done(p->ctx, &res);
    kedge_buf_cleanup(&p->line);
    kedge_free(p);
}

static const struct engine_stream_fns pull_fns = {NULL, on_data, on_done};

int docker_pull(struct engine *e, const char *image, const struct runtime_auth *auth,
                runtime_done_fn done, void *ctx)
{
    struct kedge_buf path = KEDGE_BUF_INIT, xra = KEDGE_BUF_INIT;
    struct engine_header h = {"X-Registry-Auth", NULL};
    struct engine_call call = {"POST", NULL, NULL, 0, PULL_HEAD_TIMEOUT_MS};
    struct pull *p = kedge_calloc(1, sizeof(*p));
    struct engine_req *req = NULL;
    int rc = p ? docker_pull_path(image, &path) : -ENOMEM;

    if (rc == 0 && auth) {
        rc = regauth_header(auth->username, auth->password, auth->server, &xra);
        h.value = xra.data;
        call.headers = &h;
        call.n_headers = 1;
    }
    if (rc == 0) {
        p->done = done;
        p->ctx = ctx;
        call.path = path.data;
        rc = engine_stream_call(e, &call, &pull_fns, p, &req);
    }
    if (rc < 0)
        kedge_free(p);
    kedge_buf_cleanup(&path);
    kedge_buf_cleanup(&xra);
    return rc;
}
