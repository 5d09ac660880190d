/* runtime_docker_exec.c: a command in a container through the engine's exec API: create, start
 * and wait for the output, inspect for ExitCode. Each engine request gets what is left of the
 * timeout. An engine request cannot be withdrawn: a cancelled run stays allocated, off the
 * list, until the engine answers it, and then asks for nothing more.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/util.h"
#include "runtime_docker_exec.h"
#include "runtime_docker_mux.h"

#define EXEC_OUTPUT_MAX 1024 /* command output kept for the message */

struct docker_exec {
    struct docker_exec *next; /* in x->head until finished or cancelled */
    struct docker_execs *x;   /* NULL once cancelled */
    struct engine *e;
    long handle;
    runtime_exec_fn done;
    void *ctx;
    uint64_t deadline_ms;
    char *exec_id;
    struct kedge_buf output;
};

static void unlink_run(struct docker_exec *r)
{
    struct docker_exec **pp;

    if (!r->x)
        return;
    for (pp = &r->x->head; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    r->x = NULL;
}

static void run_free(struct docker_exec *r)
{
    kedge_free(r->exec_id);
    kedge_buf_cleanup(&r->output);
    kedge_free(r);
}

/* The result is known: done, then the run is gone. */
static void finish(struct docker_exec *r, int err, const char *reason, int exit_code)
{
    struct runtime_exec_result res = {err, reason ? reason : "", exit_code,
                                      r->output.data ? r->output.data : "", r->output.len};

    unlink_run(r);
    r->done(r->ctx, &res);
    run_free(r);
}

/* The engine did not answer (err) or refused (status). */
static void engine_failed(struct docker_exec *r, const struct engine_reply *rep)
{
    char eb[128], why[600];

    if (rep->err == -ETIMEDOUT) {
        finish(r, -ETIMEDOUT, NULL, 0);
        return;
    }
    if (rep->err) {
        finish(r, rep->err,
               rep->err == -ECANCELED ? "the engine client stopped"
                                      : kedge_go_strerror(rep->err, eb, sizeof(eb)),
               0);
        return;
    }
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *m = NULL;

    if (kedge_json_parse(rep->body, rep->len, &doc) == 0)
        m = kedge_json_get(kedge_jdoc_root(doc), "message");
    if (m && m->type == KEDGE_JSTR)
        snprintf(why, sizeof(why), "%.*s", (int)m->len, m->str);
    else
        snprintf(why, sizeof(why), "engine answered %d", rep->status);
    kedge_jdoc_free(doc);
    finish(r, -EIO, why, 0);
}

/* The next engine call with what is left of the timeout. 0, or -ENOMEM (fn not called). */
static int step(struct docker_exec *r, const char *method, const char *path, const char *body,
                engine_done_fn fn)
{
    uint64_t now = kedge_now_ms();

    if (now >= r->deadline_ms) {
        finish(r, -ETIMEDOUT, NULL, 0);
        return 0;
    }
    return engine_request(r->e, method, path, body, body ? strlen(body) : 0,
                          (int)(r->deadline_ms - now), fn, r);
}

/* An engine answer arrived: false when the run is over (cancelled: then it is freed here). */
static bool answer_ok(struct docker_exec *r, const struct engine_reply *rep, int want_status)
{
    if (!r->x) {
        run_free(r);
        return false;
    }
    if (rep->err || rep->status != want_status) {
        engine_failed(r, rep);
        return false;
    }
    return true;
}

static bool keep(void *ctx, enum runtime_log_stream stream, const char *b, size_t n)
{
    struct docker_exec *r = ctx;
    size_t room = EXEC_OUTPUT_MAX - r->output.len;

    (void)stream;
    if (kedge_buf_append(&r->output, b, n < room ? n : room) < 0)
        return false; /* the message goes without output */
    return r->output.len < EXEC_OUTPUT_MAX;
}

/* The output (Docker's framing, or raw from a TTY exec) into r->output, up to EXEC_OUTPUT_MAX. */
static void keep_output(struct docker_exec *r, const char *b, size_t len)
{
    struct docker_mux m;

    docker_mux_init(&m, DOCKER_MUX_UNKNOWN);
    docker_mux_feed(&m, b, len, keep, r);
    docker_mux_flush(&m, keep, r);
}

static void exec_inspected(void *ctx, const struct engine_reply *rep)
{
    struct docker_exec *r = ctx;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *exit_code = NULL;
    int64_t code = -1;
    char why[160];

    if (!answer_ok(r, rep, 200))
        return;
    if (kedge_json_parse(rep->body, rep->len, &doc) == 0)
        exit_code = kedge_json_get(kedge_jdoc_root(doc), "ExitCode");
    if (kedge_json_is_null(exit_code) || kedge_json_int64(exit_code, &code) < 0 || code < INT_MIN ||
        code > INT_MAX) {
        snprintf(why, sizeof(why), "no exit code for exec %s", r->exec_id);
        finish(r, -EIO, why, 0);
    } else {
        finish(r, 0, NULL, (int)code);
    }
    kedge_jdoc_free(doc);
}

static void exec_started(void *ctx, const struct engine_reply *rep)
{
    struct docker_exec *r = ctx;
    char path[128];

    if (!answer_ok(r, rep, 200))
        return;
    keep_output(r, rep->body, rep->len);
    snprintf(path, sizeof(path), "/exec/%s/json", r->exec_id);
    if (step(r, "GET", path, NULL, exec_inspected) < 0)
        finish(r, -ENOMEM, NULL, 0);
}

/* The engine's message from an error body ({"message":...} or {"cause":..,"message":..}). */
void docker_engine_message(const struct engine_reply *r, char *out, size_t n)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *m = NULL;

    if (r->status == 0 || r->err) {
        snprintf(out, n, "container runtime is not reachable: %s", kedge_strerror(r->err));
        return;
    }
    if (kedge_json_parse(r->body, r->len, &doc) == 0)
        m = kedge_json_get(kedge_jdoc_root(doc), "message");
    if (m && m->type == KEDGE_JSTR)
        snprintf(out, n, "%s", m->str);
    else
        snprintf(out, n, "the container runtime answered %d", r->status);
    kedge_jdoc_free(doc);
}

bool docker_id_ok(const char *s, size_t n)
{
    size_t i;

    if (!n || n > 80)
        return false;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return false;
    return true;
}

static void exec_created(void *ctx, const struct engine_reply *rep)
{
    static const char start[] = "{\"Detach\":false,\"Tty\":false}";
    struct docker_exec *r = ctx;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *id = NULL;
    char path[128];

    if (!answer_ok(r, rep, 201))
        return;
    if (kedge_json_parse(rep->body, rep->len, &doc) == 0)
        id = kedge_json_get(kedge_jdoc_root(doc), "Id");
    if (!id || id->type != KEDGE_JSTR || !docker_id_ok(id->str, id->len)) {
        kedge_jdoc_free(doc);
        finish(r, -EIO, "the engine gave no exec id", 0);
        return;
    }
    r->exec_id = kedge_strndup(id->str, id->len);
    kedge_jdoc_free(doc);
    if (!r->exec_id) {
        finish(r, -ENOMEM, NULL, 0);
        return;
    }
    snprintf(path, sizeof(path), "/exec/%s/start", r->exec_id);
    if (step(r, "POST", path, start, exec_started) < 0)
        finish(r, -ENOMEM, NULL, 0);
}

static int create_body(char *const *argv, size_t argc, struct kedge_buf *body)
{
    struct kedge_jw w;
    size_t k;

    kedge_jw_init(&w, body);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "AttachStdout");
    kedge_jw_bool(&w, true);
    kedge_jw_key(&w, "AttachStderr");
    kedge_jw_bool(&w, true);
    kedge_jw_key(&w, "Cmd");
    kedge_jw_arr_open(&w);
    for (k = 0; k < argc; k++)
        kedge_jw_str(&w, argv[k] ? argv[k] : "");
    kedge_jw_arr_close(&w);
    kedge_jw_obj_close(&w);
    return kedge_jw_finish(&w);
}

long docker_exec(struct docker_execs *x, struct engine *e, const char *id, char *const *argv,
                 size_t argc, int timeout_ms, runtime_exec_fn done, void *ctx)
{
    struct kedge_buf body = KEDGE_BUF_INIT;
    struct docker_exec *r;
    char path[160];
    long handle;
    int rc;

    if (!done)
        return -EINVAL;
    if (x->last_handle >= LONG_MAX - 1)
        x->last_handle = 0;
    handle = ++x->last_handle;
    if (!id || !docker_id_ok(id, strlen(id))) {
        struct runtime_exec_result res = {-EINVAL, "no container id", 0, "", 0};
        done(ctx, &res);
        return handle;
    }
    r = kedge_calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->x = x;
    r->e = e;
    r->handle = handle;
    r->done = done;
    r->ctx = ctx;
    r->deadline_ms = kedge_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    rc = create_body(argv, argc, &body);
    if (rc < 0) {
        kedge_buf_cleanup(&body);
        run_free(r);
        return -ENOMEM;
    }
    r->next = x->head;
    x->head = r;
    snprintf(path, sizeof(path), "/containers/%s/exec", id);
    rc = step(r, "POST", path, body.data, exec_created);
    kedge_buf_cleanup(&body);
    if (rc < 0) {
        unlink_run(r);
        run_free(r);
        return -ENOMEM;
    }
    return handle;
}

void docker_exec_cancel(struct docker_execs *x, long handle)
{
    struct docker_exec *r;

    for (r = x->head; r; r = r->next)
        if (r->handle == handle) {
            unlink_run(r); /* freed when the engine answers */
            return;
        }
}
