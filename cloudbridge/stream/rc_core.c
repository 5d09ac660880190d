/* What both transports of the remote command codec share (rc_int.h): request header lookups, the
 * HTTP responses kubelet writes, the statuses it puts on the error channel, and the client's
 * stdin / resize streams up to the callbacks, held until ready() as kubelet's pipes hold them.
 * It calls nothing else in the codec; the transports and rc.c call it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "rc_int.h"

const char *rc_core_header(const struct rc_upgrade *u, const char *name)
{
    const char *v = u->header ? u->header(u->hctx, name) : NULL;

    return v ? v : "";
}

bool rc_core_contains_ci(const char *s, const char *word)
{
    size_t n = strlen(word);

    for (; *s; s++)
        if (!strncasecmp(s, word, n))
            return true;
    return n == 0;
}

static const char *status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

int rc_core_http(const struct rc_fns *fns, void *ctx, int status, const char *extra, bool text,
                 const char *body, size_t len)
{
    static const char bare500[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
    struct kedge_buf b = KEDGE_BUF_INIT;
    int rc;

    /* Go's net/http sniffs a body written without a type: kubelet's texts are text/plain. */
    /* header lines in the order Go's net/http writes them: sorted */
    rc = kedge_buf_printf(
        &b, "HTTP/1.1 %03d %s\r\nContent-Length: %zu\r\n%s%s\r\n", status, status_text(status), len,
        text && len ? "Content-Type: text/plain; charset=utf-8\r\n" : "", extra ? extra : "");
    if (rc == 0)
        rc = kedge_buf_append(&b, body, len);
    if (rc == 0)
        fns->send(ctx, b.data, b.len);
    else
        fns->send(ctx, bare500, sizeof(bare500) - 1);
    kedge_buf_cleanup(&b);
    return rc;
}

void rc_core_closed(struct rc *r, const char *why)
{
    if (r->state == RC_OVER)
        return;
    r->state = RC_OVER;
    r->fns.closed(r->ctx, why);
}

/* ---- stdin ---------------------------------------------------------------------------------- */

int rc_core_stdin(struct rc *r, const char *b, size_t n)
{
    if (!r->o.in || r->stdin_closed || r->state == RC_OVER || n == 0)
        return 0;
    if (r->state == RC_OPENING) {
        if (r->pending_in.len + n > RC_PENDING_STDIN_MAX)
            return -EPROTO;
        return kedge_buf_append(&r->pending_in, b, n);
    }
    r->fns.stdin_data(r->ctx, b, n);
    return 0;
}

void rc_core_stdin_eof(struct rc *r)
{
    if (!r->o.in || r->stdin_closed || r->state == RC_OVER)
        return;
    r->stdin_closed = true;
    if (r->state == RC_RUNNING)
        r->fns.stdin_close(r->ctx);
}

/* ---- resize: a stream of JSON objects {"Width":w,"Height":h} (json.Decoder in kubelet) ------- */

/* The end of the JSON object starting at b[0] == '{', or 0 while it is incomplete. */
static size_t object_end(const char *b, size_t n)
{
    size_t i, depth = 0;
    bool in_str = false, esc = false;

    for (i = 0; i < n; i++) {
        char c = b[i];

        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

/* A uint16 member as Go decodes it: absent/null = 0; anything else not in range is an error. */
static int size_field(const struct kedge_jval *obj, const char *name, unsigned *out)
{
    const struct kedge_jval *v = kedge_json_get(obj, name);
    int64_t x = 0;

    *out = 0;
    if (kedge_json_is_null(v))
        return 0;
    if (kedge_json_int64(v, &x) < 0 || x < 0 || x > 65535)
        return KEDGE_ESCHEMA;
    *out = (unsigned)x;
    return 0;
}

/* One object: resize() with its size; < 0 when it is not a TerminalSize (kubelet stops). */
static int resize_object(struct rc *r, const char *b, size_t n)
{
    struct kedge_jdoc *doc = NULL;
    unsigned w = 0, h = 0;
    int rc = kedge_json_parse_object(b, n, &doc);

    if (rc == 0)
        rc = size_field(kedge_jdoc_root(doc), "Width", &w);
    if (rc == 0)
        rc = size_field(kedge_jdoc_root(doc), "Height", &h);
    kedge_jdoc_free(doc);
    if (rc == 0)
        r->fns.resize(r->ctx, w, h);
    return rc;
}

/* Parse what is held; objects reach resize() only once RUNNING. */
static int resize_drain(struct rc *r)
{
    struct kedge_buf *q = &r->resize_buf;
    size_t off = 0;
    int rc = 0;

    if (!q->len)
        return 0;
    while (r->state == RC_RUNNING && !r->resize_off) {
        size_t end;

        while (off < q->len && isspace((unsigned char)q->data[off]))
            off++;
        if (off == q->len)
            break;
        if (q->data[off] != '{') {
            r->resize_off = true; /* not a TerminalSize: Decode fails, kubelet stops */
            break;
        }
        end = object_end(q->data + off, q->len - off);
        if (end == 0)
            break;
        rc = resize_object(r, q->data + off, end);
        off += end;
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0)
            r->resize_off = true;
    }
    if (r->resize_off)
        off = q->len;
    memmove(q->data, q->data + off, q->len - off);
    q->len -= off;
    q->data[q->len] = '\0';
    return 0;
}

int rc_core_resize(struct rc *r, const char *b, size_t n)
{
    int rc;

    if (r->resize_off || r->state == RC_OVER)
        return 0;
    if (r->resize_buf.len + n > RC_RESIZE_MAX) {
        r->resize_off = true; /* no terminal size is that long */
        kedge_buf_cleanup(&r->resize_buf);
        return 0;
    }
    rc = kedge_buf_append(&r->resize_buf, b, n);
    return rc < 0 ? rc : resize_drain(r);
}

void rc_core_ready(struct rc *r)
{
    struct kedge_buf in = r->pending_in;

    r->state = RC_RUNNING;
    r->fns.ready(r->ctx, &r->o);
    r->pending_in = (struct kedge_buf)KEDGE_BUF_INIT;
    if (r->state == RC_RUNNING && in.len)
        r->fns.stdin_data(r->ctx, in.data, in.len);
    kedge_buf_cleanup(&in);
    if (r->state == RC_RUNNING && r->stdin_closed && r->o.in)
        r->fns.stdin_close(r->ctx);
    if (r->state == RC_RUNNING)
        (void)resize_drain(r); /* -ENOMEM: the held sizes stay for the next bytes */
}

/* ---- the status on the error channel ------------------------------------------------------- */

/* metav1.Status as encoding/json writes it: TypeMeta empty, ListMeta "metadata":{} (a struct is
 * never omitted), then status, message, reason, details{causes[{reason,message}]}, code. */
static int status_json(struct kedge_buf *out, const char *message, const char *reason,
                       const char *cause_reason, const char *cause_message, int code)
{
    struct kedge_jw w;

    kedge_jw_init(&w, out);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "metadata");
    kedge_jw_obj_open(&w);
    kedge_jw_obj_close(&w);
    kedge_jw_kstr(&w, "status", reason ? "Failure" : "Success");
    if (reason) {
        kedge_jw_kstr(&w, "message", message);
        kedge_jw_kstr(&w, "reason", reason);
        kedge_jw_key(&w, "details");
        kedge_jw_obj_open(&w);
        kedge_jw_key(&w, "causes");
        kedge_jw_arr_open(&w);
        kedge_jw_obj_open(&w);
        if (cause_reason)
            kedge_jw_kstr(&w, "reason", cause_reason);
        kedge_jw_kstr(&w, "message", cause_message);
        kedge_jw_obj_close(&w);
        kedge_jw_arr_close(&w);
        kedge_jw_obj_close(&w);
        if (code)
            kedge_jw_kint(&w, "code", code);
    }
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

/* Before v4 the error channel carries the failure's message as text, nothing on success
 * (v1WriteStatusFunc). */
static bool json_status(const struct rc *r)
{
    return r->version >= RC_V4;
}

int rc_core_status_exit(const struct rc *r, int exit_code, struct kedge_buf *out)
{
    struct kedge_buf msg = KEDGE_BUF_INIT;
    char code[16];
    size_t i;
    int rc;

    kedge_buf_reset(out);
    if (r->attach || exit_code == 0) /* kubelet's attach ends in Success whatever the code */
        return json_status(r) ? status_json(out, NULL, NULL, NULL, NULL, 0) : 0;
    /* exec.go's message around containerd's CodeExitError ("%v" of the []string command). */
    rc = kedge_buf_puts(&msg, "command terminated with non-zero exit code: error executing "
                              "command [");
    for (i = 0; rc == 0 && i < r->o.argc; i++)
        rc = kedge_buf_printf(&msg, "%s%s", i ? " " : "", r->o.argv[i]);
    if (rc == 0)
        rc = kedge_buf_printf(&msg, "], exit code %d", exit_code);
    (void)snprintf(code, sizeof(code), "%d", exit_code);
    if (rc == 0 && json_status(r))
        rc = status_json(out, msg.data, "NonZeroExitCode", "ExitCode", code, 0);
    else if (rc == 0)
        rc = kedge_buf_append(out, msg.data, msg.len);
    kedge_buf_cleanup(&msg);
    return rc;
}

int rc_core_status_fail(const struct rc *r, const char *message, struct kedge_buf *out)
{
    struct kedge_buf err = KEDGE_BUF_INIT, msg = KEDGE_BUF_INIT;
    int rc;

    kedge_buf_reset(out);
    /* apierrors.NewInternalError(fmt.Errorf("error executing command in container: %v")) */
    rc = kedge_buf_printf(&err, "%s: %s",
                          r->attach ? "error attaching to container"
                                    : "error executing command in container",
                          message ? message : "");
    if (rc == 0)
        rc = kedge_buf_printf(&msg, "Internal error occurred: %s", err.data);
    if (rc == 0 && json_status(r))
        rc = status_json(out, msg.data, "InternalError", NULL, err.data, 500);
    else if (rc == 0)
        rc = kedge_buf_append(out, msg.data, msg.len);
    kedge_buf_cleanup(&err);
    kedge_buf_cleanup(&msg);
    return rc;
}
