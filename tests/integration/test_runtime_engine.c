/* The container-runtime seam (cloudbridge/edged/runtime.h) against a real engine: the Docker
 * runtime (runtime_docker.c, engine.c) on an lws loop in this process, talking to podman's
 * Docker API started by enginectl. What Edged does not drive itself yet is proven here: logs
 * (`kubectl logs` will be served through it) — the exact bytes on each stream of a container
 * that printed known lines, timestamps, follow seeing a line printed after the stream opened
 * (the container is told to print it through the runtime's exec) and ending with the
 * container, an unknown container, a follow cancelled, and 10 MB read with a pause.
 * Skipped (with a line saying why) when KEDGE_TEST_ENGINE=none or there is no podman.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "enginectl.h"
#include "engine.h"
#include "harness.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/util.h"
#include "runtime_docker.h"
#include "runtime_fixture.h"

static void setup(void)
{
    rtfx_setup_node("node-logs");
}

/* ---- what a logs call delivered ----------------------------------------------------------- */

struct logs_got {
    struct kedge_buf out, err; /* NUL-terminated as they grow */
    int chunks, end_err;
    bool ended, want_seen; /* want_seen: out and err are want_out and want_err */
    const char *want_out, *want_err;
    char message[256];
};

static void log_chunk(void *ctx, enum runtime_log_stream stream, const char *b, size_t n)
{
    struct logs_got *g = ctx;
    struct kedge_buf *to = stream == RT_STDERR ? &g->err : &g->out;

    ck_assert(stream == RT_STDOUT || stream == RT_STDERR);
    ck_assert(!g->ended);
    ck_assert_int_eq(kedge_buf_append(to, b, n), 0);
    ck_assert_int_eq(kedge_buf_putc(to, '\0'), 0);
    to->len--;
    g->chunks++;
    g->want_seen = g->want_out && g->out.data && !strcmp(g->out.data, g->want_out) && g->err.data &&
                   !strcmp(g->err.data, g->want_err);
}

static void log_end(void *ctx, int err, const char *message)
{
    struct logs_got *g = ctx;

    ck_assert_ptr_nonnull(message);
    ck_assert(!g->ended);
    g->ended = true;
    g->end_err = err;
    snprintf(g->message, sizeof(g->message), "%s", message);
}

static void got_reset(struct logs_got *g)
{
    kedge_buf_cleanup(&g->out);
    kedge_buf_cleanup(&g->err);
    memset(g, 0, sizeof(*g));
}

static const char *text(const struct kedge_buf *b)
{
    return b->data ? b->data : "";
}

/* Read id's logs to the end (not following) into g. */
static void read_logs(const char *id, const struct runtime_log_options *o, struct logs_got *g)
{
    got_reset(g);
    ck_assert_int_gt(rt.ops->logs(rt.rt, id, o, log_chunk, log_end, g), 0);
    ck_assert_msg(spin_until(&g->ended, 20000), "logs of %s did not end", id);
}

/* ---- containers, made with enginectl (the test's own client) ------------------------------ */

struct inspect_got {
    bool done;
    enum runtime_outcome outcome;
    bool running;
};

static void inspect_done(void *ctx, const struct runtime_result *r)
{
    struct inspect_got *i = ctx;

    i->done = true;
    i->outcome = r->outcome;
    i->running = r->inspected && r->inspected->running;
}

struct exec_got {
    bool done;
    int err, exit_code;
};

static void exec_done(void *ctx, const struct runtime_exec_result *r)
{
    struct exec_got *x = ctx;

    x->done = true;
    x->err = r->err;
    x->exit_code = r->exit_code;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* Prints three lines, waits for /tmp/go (made through exec), prints two more and exits. */
#define SCRIPT                                                                                     \
    "echo out-one; echo err-one >&2; printf 'out-two\\\\n'; "                                      \
    "while [ ! -e /tmp/go ]; do sleep 0.1; done; echo later-out; echo later-err >&2"

START_TEST(logs_exact_and_follow)
{
    const struct runtime_log_options all = {false, -1, 0, false};
    const struct runtime_log_options stamped = {false, -1, 0, true};
    const struct runtime_log_options follow = {true, -1, 0, false};
    char *const touch[] = {"touch", "/tmp/go"};
    struct logs_got g = {0}, f = {0};
    struct exec_got x = {0};
    uint64_t end;
    char id[80];

    run_container("kedge-logs-1", SCRIPT, id, sizeof(id));

    /* the first three lines: once they are all there, exactly they */
    end = kedge_now_ms() + (uint64_t)enginectl_scale_ms(20000);
    do {
        read_logs(id, &all, &g);
        ck_assert_msg(g.end_err == 0, "logs: %s (%s)", kedge_errname(g.end_err), g.message);
    } while (strlen(text(&g.out)) + strlen(text(&g.err)) < 24 && kedge_now_ms() < end);
    ck_assert_str_eq(text(&g.out), "out-one\nout-two\n");
    ck_assert_str_eq(text(&g.err), "err-one\n");

    /* by name too, with timestamps: RFC 3339 and a space before each line */
    read_logs("kedge-logs-1", &stamped, &g);
    ck_assert_int_eq(g.end_err, 0);
    ck_assert_msg(!strncmp(text(&g.out), "20", 2) && strstr(text(&g.out), "T") &&
                      strstr(text(&g.out), " out-one\n") && strstr(text(&g.out), " out-two\n"),
                  "stamped: %s", text(&g.out));
    ck_assert_ptr_nonnull(strstr(text(&g.err), " err-one\n"));

    /* follow: what is there, then a line printed after the stream opened, then the end */
    f.want_out = "out-one\nout-two\n";
    f.want_err = "err-one\n";
    ck_assert_int_gt(rt.ops->logs(rt.rt, id, &follow, log_chunk, log_end, &f), 0);
    ck_assert_msg(spin_until(&f.want_seen, 20000), "follow: out '%s' err '%s'", text(&f.out),
                  text(&f.err));
    ck_assert(!f.ended);
    ck_assert_int_gt(rt.ops->exec(rt.rt, id, touch, 2, enginectl_scale_ms(20000), exec_done, &x),
                     0);
    ck_assert(spin_until(&x.done, 20000));
    ck_assert_int_eq(x.err, 0);
    ck_assert_int_eq(x.exit_code, 0);
    f.want_out = "out-one\nout-two\nlater-out\n";
    f.want_err = "err-one\nlater-err\n";
    f.want_seen = false;
    ck_assert_msg(spin_until(&f.want_seen, 20000), "follow: out '%s' err '%s'", text(&f.out),
                  text(&f.err));
    ck_assert_msg(spin_until(&f.ended, 20000), "the follow did not end with the container");
    ck_assert_int_eq(f.end_err, 0);
    ck_assert_str_eq(text(&f.out), "out-one\nout-two\nlater-out\n");
    ck_assert_str_eq(text(&f.err), "err-one\nlater-err\n");
    got_reset(&g);
    got_reset(&f);
}
END_TEST

START_TEST(logs_unknown_and_cancel)
{
    const struct runtime_log_options follow = {true, -1, 0, false};
    struct logs_got g = {0};
    char id[80];
    long h;
    int chunks;

    read_logs("kedge-no-such-container", &follow, &g);
    ck_assert_int_eq(g.end_err, -ENOENT);
    ck_assert_int_eq(g.chunks, 0);
    ck_assert_str_ne(g.message, "");

    run_container("kedge-logs-2", "echo tick; exec sleep 1000", id, sizeof(id));
    got_reset(&g);
    g.want_out = "tick\n";
    g.want_err = "";
    ck_assert_int_eq(kedge_buf_putc(&g.err, '\0'), 0);
    g.err.len = 0;
    h = rt.ops->logs(rt.rt, id, &follow, log_chunk, log_end, &g);
    ck_assert_int_gt(h, 0);
    ck_assert_msg(spin_until(&g.want_seen, 20000), "follow: '%s'", text(&g.out));

    /* follows never end by themselves: more of them than requests may be in flight must not
     * hold up a request */
    {
        struct logs_got more[10];
        struct inspect_got in = {0};
        long hs[10];

        memset(more, 0, sizeof(more));
        for (int i = 0; i < 10; i++) {
            hs[i] = rt.ops->logs(rt.rt, id, &follow, log_chunk, log_end, &more[i]);
            ck_assert_int_gt(hs[i], 0);
        }
        ck_assert_int_eq(rt.ops->inspect(rt.rt, id, inspect_done, &in), 0);
        ck_assert_msg(spin_until(&in.done, 20000), "an inspect waited behind the follows");
        ck_assert_int_eq(in.outcome, RT_OK);
        ck_assert(in.running);
        for (int i = 0; i < 10; i++) {
            ck_assert(!more[i].ended);
            rt.ops->logs_cancel(rt.rt, hs[i]);
            got_reset(&more[i]);
        }
    }
    rt.ops->logs_cancel(rt.rt, h);
    chunks = g.chunks;
    /* the container is removed: a follow not cancelled would end now */
    {
        struct exec_got none = {0};
        char path[160];
        int status = -1;

        snprintf(path, sizeof(path), ENGINECTL_API "/containers/%s?force=1", id);
        ck_assert_int_eq(enginectl_http(engine, "DELETE", path, NULL, &status, NULL), 0);
        ck_assert_int_lt(status, 300);
        (void)spin_until(&none.done, 1000); /* let anything that would come, come */
    }
    ck_assert(!g.ended);
    ck_assert_int_eq(g.chunks, chunks);
    got_reset(&g);
}
END_TEST

/* Backpressure on a logs stream: 10 MB of output read with a pause from inside a chunk;
 * nothing comes while paused (the loop serving), all of it after the resume. */
struct paced_got {
    size_t bytes, at_pause, while_paused;
    size_t pause_at; /* bytes (0: 1 MB) */
    bool paused, seen_mb, ended;
    int err;
    long h;
};

static void paced_chunk(void *ctx, enum runtime_log_stream stream, const char *b, size_t n)
{
    struct paced_got *p = ctx;

    (void)stream;
    (void)b;
    if (p->paused)
        p->while_paused += n;
    p->bytes += n;
    if (!p->seen_mb && p->bytes >= (p->pause_at ? p->pause_at : 1u << 20)) {
        p->seen_mb = p->paused = true;
        p->at_pause = p->bytes;
        rt.ops->logs_pause(rt.rt, p->h, true);
    }
}

static void paced_end(void *ctx, int err, const char *message)
{
    struct paced_got *p = ctx;

    (void)message;
    ck_assert(!p->paused);
    p->ended = true;
    p->err = err;
}

START_TEST(logs_paused)
{
    const struct runtime_log_options all = {false, -1, 0, false};
    struct paced_got p = {0};
    bool never = false;
    char id[80];

    run_container("kedge-logs-3", "head -c 10485760 /dev/zero; echo; echo end-of-output", id,
                  sizeof(id));
    { /* the container is done: its whole output is there */
        char path[200];
        int status = -1;

        snprintf(path, sizeof(path), ENGINECTL_API "/containers/%s/wait", id);
        ck_assert_int_eq(enginectl_http(engine, "POST", path, NULL, &status, NULL), 0);
        ck_assert_int_eq(status, 200);
    }
    p.h = rt.ops->logs(rt.rt, id, &all, paced_chunk, paced_end, &p);
    ck_assert_int_gt(p.h, 0);
    ck_assert_msg(spin_until(&p.seen_mb, 30000), "only %zu bytes", p.bytes);
    (void)spin_until(&never, 1000); /* serve the loop a while: the stream is not read */
    ck_assert_uint_eq(p.while_paused, 0);
    ck_assert_uint_eq(p.bytes, p.at_pause);
    ck_assert(!p.ended);
    p.paused = false;
    rt.ops->logs_pause(rt.rt, p.h, false);
    ck_assert(spin_until(&p.ended, 30000));
    ck_assert_int_eq(p.err, 0);
    ck_assert_uint_eq(p.bytes, 10485760 + 1 + 14);

    /* paused while the engine writes the last of it and closes: the end is not lost */
    run_container("kedge-logs-4", "head -c 60000 /dev/zero", id, sizeof(id));
    {
        char path[200];
        int status = -1;

        snprintf(path, sizeof(path), ENGINECTL_API "/containers/%s/wait", id);
        ck_assert_int_eq(enginectl_http(engine, "POST", path, NULL, &status, NULL), 0);
    }
    memset(&p, 0, sizeof(p));
    p.pause_at = 1;
    p.h = rt.ops->logs(rt.rt, id, &all, paced_chunk, paced_end, &p);
    ck_assert_msg(spin_until(&p.seen_mb, 30000), "only %zu bytes", p.bytes);
    (void)spin_until(&never, 1000); /* the engine has written it all and closed meanwhile */
    ck_assert_uint_eq(p.while_paused, 0);
    ck_assert(!p.ended);
    p.paused = false;
    rt.ops->logs_pause(rt.rt, p.h, false);
    ck_assert(spin_until(&p.ended, 30000));
    ck_assert_int_eq(p.err, 0);
    ck_assert_uint_eq(p.bytes, 60000);
}
END_TEST

static Suite *runtime_engine_suite(void)
{
    Suite *s = suite_create("runtime_engine");
    TCase *tc;
    const char *why =
        !enginectl_wanted() ? "KEDGE_TEST_ENGINE=none" : enginectl_unavailable_reason();

    if (why) {
        (void)printf("test_runtime_engine: skipped: %s\n", why);
        return s;
    }
    tc = tcase_create("logs");
    tcase_add_checked_fixture(tc, setup, rtfx_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, logs_exact_and_follow);
    tcase_add_test(tc, logs_unknown_and_cancel);
    tcase_add_test(tc, logs_paused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kh_run_suite(runtime_engine_suite(), CK_NORMAL);
}
