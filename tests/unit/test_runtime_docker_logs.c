/* unit_runtime_docker, logs and sessions: runtime_docker_logs.c's stream fed in pieces the test
 * chooses (Docker's framing split everywhere, raw TTY output, errors, cancel and pause), and the
 * requests an interactive exec session starts with. The engine stub: runtime_docker_stub.h.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"
#include "runtime_docker_stub.h"
#include "unit.h"

/* What a logs call delivered: the bytes tagged with their stream ("1" stdout, "2" stderr) each
 * time the stream changes, so pieces cut anywhere read the same. */
struct logs_got {
    char text[512];
    size_t len;
    int last_stream, chunks, ends, err;
    char message[256];
    long cancel_in_chunk; /* a handle to cancel from inside the first chunk */
    long pause_in_chunk;  /* a handle to pause from inside the first chunk */
    struct runtime *rt;
};

static void log_chunk(void *ctx, enum runtime_log_stream stream, const char *b, size_t n)
{
    struct logs_got *g = ctx;

    ck_assert(stream == RT_STDOUT || stream == RT_STDERR);
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(g->ends, 0);
    if ((int)stream != g->last_stream) {
        ck_assert_uint_lt(g->len, sizeof(g->text) - 1);
        g->text[g->len++] = stream == RT_STDERR ? '2' : '1';
        g->last_stream = (int)stream;
    }
    ck_assert_uint_lt(g->len + n, sizeof(g->text));
    memcpy(g->text + g->len, b, n);
    g->len += n;
    g->text[g->len] = '\0';
    g->chunks++;
    if (g->cancel_in_chunk) {
        g->rt->ops->logs_cancel(g->rt->rt, g->cancel_in_chunk);
        g->cancel_in_chunk = 0;
    }
    if (g->pause_in_chunk) {
        g->rt->ops->logs_pause(g->rt->rt, g->pause_in_chunk, true);
        g->pause_in_chunk = 0;
    }
}

static void log_end(void *ctx, int err, const char *message)
{
    struct logs_got *g = ctx;

    g->ends++;
    g->err = err;
    snprintf(g->message, sizeof(g->message), "%s", message);
}

static const struct runtime_log_options all_logs = {false, -1, 0, false};

/* A Docker frame: [stream, 0, 0, 0, len BE32] + payload, appended to out at *len. */
static void frame(char *out, size_t *len, int stream, const char *payload)
{
    size_t n = strlen(payload);

    out[(*len)++] = (char)stream;
    out[(*len)++] = 0;
    out[(*len)++] = 0;
    out[(*len)++] = 0;
    out[(*len)++] = (char)(n >> 24);
    out[(*len)++] = (char)(n >> 16);
    out[(*len)++] = (char)(n >> 8);
    out[(*len)++] = (char)n;
    memcpy(out + *len, payload, n);
    *len += n;
}

START_TEST(logs_path)
{
    const struct runtime_log_options o = {true, 10, 1700000000, true};
    struct logs_got g = {0};

    ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &o, log_chunk, log_end, &g), 0);
    ck_assert_str_eq(es.path, "/containers/b2/logs?stdout=1&stderr=1&follow=1&tail=10"
                              "&since=1700000000&timestamps=1");
    stream_end(200, 0, "");
    ck_assert_int_eq(g.ends, 1);
    ck_assert_int_eq(g.err, 0);
    ck_assert_int_eq(g.chunks, 0);

    memset(&g, 0, sizeof(g));
    ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g), 0);
    ck_assert_str_eq(es.path, "/containers/b2/logs?stdout=1&stderr=1&follow=0&tail=all"
                              "&since=0&timestamps=0");
    stream_end(200, 0, "");

    /* an id that cannot be one never reaches a path */
    ck_assert_int_eq(rt.ops->logs(rt.rt, "../images", &all_logs, log_chunk, log_end, &g), -ENOENT);
    ck_assert_int_eq(es.n, 2);
}
END_TEST

START_TEST(logs_framing_split_everywhere)
{
    char body[128];
    size_t len = 0;

    frame(body, &len, 1, "hello\n");
    frame(body, &len, 2, "oops\n");
    frame(body, &len, 1, "bye\n");
    frame(body, &len, 1, "");
    frame(body, &len, 2, "last");
    for (size_t k = 0; k <= len; k++) {
        struct logs_got g = {0};

        ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g), 0);
        feed(body, k); /* may be empty: the engine never calls with 0, but it must not matter */
        feed(body + k, len - k);
        stream_end(200, 0, "");
        ck_assert_str_eq(g.text, "1hello\n2oops\n1bye\n2last");
        ck_assert_int_eq(g.ends, 1);
        ck_assert_int_eq(g.err, 0);
    }
    {
        struct logs_got g = {0}; /* every byte a read of its own */

        ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g), 0);
        for (size_t k = 0; k < len; k++)
            feed(body + k, 1);
        stream_end(200, 0, "");
        ck_assert_str_eq(g.text, "1hello\n2oops\n1bye\n2last");
    }
}
END_TEST

START_TEST(logs_frames_in_one_read)
{
    struct logs_got g = {0};
    char body[64];
    size_t len = 0;

    frame(body, &len, 2, "err line\n");
    frame(body, &len, 1, "out line\n");
    ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g), 0);
    feed(body, len);
    ck_assert_int_eq(g.chunks, 2); /* one chunk per frame, each on its own stream */
    ck_assert_str_eq(g.text, "2err line\n1out line\n");
    ck_assert_int_eq(g.ends, 0); /* a follow stays open until the engine ends it */
    stream_end(200, 0, "");
    ck_assert_int_eq(g.ends, 1);
}
END_TEST

START_TEST(logs_raw_tty)
{
    struct logs_got g = {0};
    static const char tty[] = "$ ls\r\nbin  etc\r\n";

    ck_assert_int_gt(rt.ops->logs(rt.rt, "t1", &all_logs, log_chunk, log_end, &g), 0);
    feed(tty, 3); /* less than a header: held until it can tell */
    ck_assert_int_eq(g.chunks, 0);
    feed(tty + 3, strlen(tty) - 3);
    stream_end(200, 0, "");
    ck_assert_str_eq(g.text, "1$ ls\r\nbin  etc\r\n");
    ck_assert_int_eq(g.err, 0);

    memset(&g, 0, sizeof(g)); /* output shorter than a header, then the end */
    ck_assert_int_gt(rt.ops->logs(rt.rt, "t1", &all_logs, log_chunk, log_end, &g), 0);
    feed("ok\n", 3);
    stream_end(200, 0, "");
    ck_assert_str_eq(g.text, "1ok\n");
    ck_assert_int_eq(g.ends, 1);
}
END_TEST

START_TEST(logs_errors)
{
    struct logs_got g = {0};
    long h;

    ck_assert_int_gt(rt.ops->logs(rt.rt, "gone", &all_logs, log_chunk, log_end, &g), 0);
    stream_end(404, 0, "{\"message\":\"no such container\"}");
    ck_assert_int_eq(g.err, -ENOENT);
    ck_assert_str_eq(g.message, "no such container");
    ck_assert_int_eq(g.chunks, 0);

    memset(&g, 0, sizeof(g));
    ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g), 0);
    stream_end(500, 0, "{\"message\":\"failed to read log file\"}");
    ck_assert_int_eq(g.err, -EIO);
    ck_assert_str_eq(g.message, "failed to read log file");

    memset(&g, 0, sizeof(g)); /* refused at once: end before the call returns, handle valid */
    es.refuse = -ECONNREFUSED;
    h = rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g);
    ck_assert_int_gt(h, 0);
    ck_assert_int_eq(g.ends, 1);
    ck_assert_int_eq(g.err, -ECONNREFUSED);
    ck_assert_ptr_nonnull(strstr(g.message, "container runtime is not reachable: "));
    rt.ops->logs_cancel(rt.rt, h); /* after the end: nothing */
    es.refuse = 0;

    memset(&g, 0, sizeof(g)); /* the runtime is freed with the stream open */
    ck_assert_int_gt(rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &g), 0);
    feed("\1\0\0\0\0\0\0\3ab", 10);
    stream_end(0, -ECANCELED, "");
    ck_assert_int_eq(g.err, -ECANCELED);
    ck_assert_str_eq(g.text, "1ab");
}
END_TEST

START_TEST(logs_cancel)
{
    const struct runtime_log_options follow = {true, -1, 0, false};
    struct logs_got g = {0}, g2 = {0};
    char body[64];
    size_t len = 0;
    long h;

    frame(body, &len, 1, "one\n");
    frame(body, &len, 1, "two\n");
    h = rt.ops->logs(rt.rt, "b2", &follow, log_chunk, log_end, &g);
    ck_assert_int_gt(h, 0);
    feed(body, 10);
    rt.ops->logs_cancel(rt.rt, h);
    ck_assert(es.cancelled);
    ck_assert_str_eq(g.text, "1on");
    ck_assert_int_eq(g.ends, 0); /* a cancelled stream ends without end */

    /* from inside a chunk: the frame after it in the same read is not delivered */
    h = rt.ops->logs(rt.rt, "b2", &follow, log_chunk, log_end, &g2);
    g2.cancel_in_chunk = h;
    g2.rt = &rt;
    feed(body, len);
    ck_assert(es.cancelled);
    ck_assert_int_eq(g2.chunks, 1);
    ck_assert_str_eq(g2.text, "1one\n");
    ck_assert_int_eq(g2.ends, 0);
    rt.ops->logs_cancel(rt.rt, h); /* twice: nothing */
}
END_TEST

START_TEST(logs_pause)
{
    const struct runtime_log_options follow = {true, -1, 0, false};
    struct logs_got g = {0};
    long h = rt.ops->logs(rt.rt, "b2", &follow, log_chunk, log_end, &g);

    ck_assert_int_gt(h, 0);
    /* paused: what comes is held, and the connection is read on up to 4 MB held */
    rt.ops->logs_pause(rt.rt, h, true);
    ck_assert(!es.paused);
    {
        static char big[1 << 20];
        char head[8] = {1, 0, 0, 0, 0, 0x50, 0, 0}; /* stdout, 5 MB */

        feed(head, 8);
        for (int i = 0; i < 3; i++)
            feed(big, sizeof(big));
        feed(big, sizeof(big) - 8); /* 4 MB held with the header */
        ck_assert(!es.paused);
        feed(big, 1);
        ck_assert(es.paused); /* past 4 MB: not read any more */
        ck_assert_int_eq(g.chunks, 0);
        rt.ops->logs_pause(rt.rt, h + 100, true); /* no such stream: nothing */
        g.len = sizeof(g.text); /* log_chunk would keep the bytes; they are not looked at */
    }
    rt.ops->logs_cancel(rt.rt, h);

    /* paused from inside a chunk: the rest of that read waits, and the end behind it */
    {
        struct logs_got p = {0};
        char body[64];
        size_t len = 0;

        frame(body, &len, 1, "one\n");
        frame(body, &len, 2, "two\n");
        h = rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &p);
        p.pause_in_chunk = h;
        p.rt = &rt;
        feed(body, len);
        ck_assert(es.paused);
        ck_assert_str_eq(p.text, "1one\n");
        stream_end(200, 0, "");
        ck_assert_int_eq(p.ends, 0);
        rt.ops->logs_pause(rt.rt, h, false);
        ck_assert_str_eq(p.text, "1one\n2two\n");
        ck_assert_int_eq(p.ends, 1);
        ck_assert_int_eq(p.err, 0);

        /* and the runtime freed meanwhile: the end comes, cancelled */
        memset(&p, 0, sizeof(p));
        h = rt.ops->logs(rt.rt, "b2", &all_logs, log_chunk, log_end, &p);
        p.pause_in_chunk = h;
        p.rt = &rt;
        feed(body, len);
        stream_end(200, 0, "");
        ck_assert_int_eq(p.ends, 0);
        rt.ops->free(rt.rt);
        rt_freed = true;
        ck_assert_int_eq(p.ends, 1);
        ck_assert_int_eq(p.err, -ECANCELED);
        ck_assert_str_eq(p.text, "1one\n");
    }
}
END_TEST

/* What a session delivered. */
struct sess_got {
    int ends, err, exit_code;
    char message[512];
};

static void sess_output(void *ctx, enum runtime_log_stream s, const char *b, size_t n)
{
    (void)ctx;
    (void)s;
    (void)b;
    (void)n;
    ck_abort_msg("no output expected");
}

static void sess_end(void *ctx, int err, int exit_code, const char *message)
{
    struct sess_got *g = ctx;

    g->ends++;
    g->err = err;
    g->exit_code = exit_code;
    snprintf(g->message, sizeof(g->message), "%s", message);
}

static const struct runtime_session_fns sess_fns = {sess_output, sess_end};

/* The exec's create: its body, and the engine's refusals as the session's end. */
START_TEST(exec_session_create)
{
    char *argv[] = {"sh", "-c", "echo \"hi\""};
    const struct runtime_stdio io = {true, true, false, true};
    struct sess_got g = {0};
    long h;

    h = rt.ops->exec_session(rt.rt, "c1", argv, 3, &io, &sess_fns, &g);
    ck_assert_int_gt(h, 0);
    ck_assert_int_eq(n_calls, 1);
    ck_assert_str_eq(calls[0].method, "POST");
    ck_assert_str_eq(calls[0].path, "/containers/c1/exec");
    ck_assert_str_eq(calls[0].body, "{\"AttachStdin\":true,\"AttachStdout\":true,"
                                    "\"AttachStderr\":false,\"Tty\":true,"
                                    "\"Cmd\":[\"sh\",\"-c\",\"echo \\\"hi\\\"\"]}");
    /* stdin and a resize before the exec runs wait for it; then the engine says no */
    ck_assert_int_eq(rt.ops->session_stdin(rt.rt, h, "x", 1), 0);
    ck_assert_int_eq(rt.ops->session_resize(rt.rt, h, 80, 24), 0);
    answer(0, 404, 0, "{\"message\":\"No such container: c1\"}");
    ck_assert_int_eq(g.ends, 1);
    ck_assert_int_eq(g.err, -ENOENT);
    ck_assert_str_eq(g.message, "No such container: c1");
    ck_assert_int_eq(rt.ops->session_stdin(rt.rt, h, "x", 1), -ENOENT); /* over */
    ck_assert_int_eq(n_calls, 1);

    memset(&g, 0, sizeof(g)); /* the engine is down */
    h = rt.ops->exec_session(rt.rt, "c1", argv, 1, &io, &sess_fns, &g);
    answer(1, 0, -ECONNREFUSED, "");
    ck_assert_int_eq(g.err, -ECONNREFUSED);
    ck_assert_ptr_nonnull(strstr(g.message, "container runtime is not reachable"));

    memset(&g, 0, sizeof(g)); /* cancelled before the engine answered: no end after */
    h = rt.ops->exec_session(rt.rt, "c1", argv, 1, &io, &sess_fns, &g);
    rt.ops->session_cancel(rt.rt, h);
    answer(2, 201, 0, "{\"Id\":\"e1\"}");
    ck_assert_int_eq(g.ends, 0);
    ck_assert_int_eq(n_calls, 3); /* and nothing started */

    memset(&g, 0, sizeof(g)); /* the runtime is freed while the create is in flight */
    h = rt.ops->exec_session(rt.rt, "c1", argv, 1, &io, &sess_fns, &g);
    answer(3, 0, -ECANCELED, "");
    ck_assert_int_eq(g.err, -ECANCELED);

    ck_assert_int_eq(rt.ops->exec_session(rt.rt, "../x", argv, 1, &io, &sess_fns, &g), -ENOENT);
    ck_assert_int_eq(rt.ops->exec_session(rt.rt, "c1", argv, 0, &io, &sess_fns, &g), -EINVAL);
}
END_TEST

TCase *runtime_docker_logs_tcase(void);

TCase *runtime_docker_logs_tcase(void)
{
    TCase *tc = tcase_create("logs");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, logs_path);
    tcase_add_test(tc, logs_framing_split_everywhere);
    tcase_add_test(tc, logs_frames_in_one_read);
    tcase_add_test(tc, logs_raw_tty);
    tcase_add_test(tc, logs_errors);
    tcase_add_test(tc, logs_cancel);
    tcase_add_test(tc, logs_pause);
    tcase_add_test(tc, exec_session_create);
    return tc;
}
