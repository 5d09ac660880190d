/* Interactive sessions of the runtime seam (runtime.h exec_session, attach_session, session_*)
 * against a real engine (enginectl): the Docker runtime's hijacked connections
 * (runtime_docker_session.c, engine_hijack.c) as `kubectl exec` and `kubectl attach` will use
 * them. Proven: an exec's stdout and stderr apart and its exit code; stdin (written before the
 * engine took the connection over and after) and its EOF reaching `cat`; a TTY resized (what
 * `stty size` prints); attach to a container's main process, its end and exit code; 10 MB of
 * output with reading paused and resumed; errors (no such container, no such binary, no
 * engine); a session cancelled in the middle of its output leaves no descriptor behind.
 * Skipped (with a line saying why) when KEDGE_TEST_ENGINE=none or there is no podman.
 */
#define _GNU_SOURCE /* strcasestr */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/util.h"
#include "runtime_docker.h"
#include "runtime_fixture.h"

/* ---- what a session delivered ------------------------------------------------------------- */

struct sess {
    long h;
    struct kedge_buf out, err; /* NUL-terminated as they grow (counted only: count_only) */
    size_t n_out, n_err;
    bool count_only;
    bool ended;
    int end_err, exit_code;
    char message[512];
    const char *want; /* seen: out contains want */
    bool seen;
    size_t want_bytes; /* seen: n_out reached it */
    bool pause_at_want, cancel_at_want;
    size_t outputs_while_paused;
    bool paused;
};

static void sess_output(void *ctx, enum runtime_log_stream stream, const char *b, size_t n)
{
    struct sess *s = ctx;
    struct kedge_buf *to = stream == RT_STDERR ? &s->err : &s->out;

    ck_assert(stream == RT_STDOUT || stream == RT_STDERR);
    ck_assert(!s->ended);
    ck_assert_uint_gt(n, 0);
    if (s->paused)
        s->outputs_while_paused++;
    *(stream == RT_STDERR ? &s->n_err : &s->n_out) += n;
    if (!s->count_only) {
        ck_assert_int_eq(kedge_buf_append(to, b, n), 0);
        ck_assert_int_eq(kedge_buf_putc(to, '\0'), 0);
        to->len--;
    }
    if (s->seen)
        return;
    s->seen = (s->want && s->out.data && strstr(s->out.data, s->want)) ||
              (s->want_bytes && s->n_out >= s->want_bytes);
    if (s->seen && s->pause_at_want) {
        rt.ops->session_pause(rt.rt, s->h, true);
        s->paused = true;
    }
    if (s->seen && s->cancel_at_want)
        rt.ops->session_cancel(rt.rt, s->h); /* from inside the callback */
}

static void sess_end(void *ctx, int err, int exit_code, const char *message)
{
    struct sess *s = ctx;

    ck_assert_ptr_nonnull(message);
    ck_assert(!s->ended);
    s->ended = true;
    s->end_err = err;
    s->exit_code = exit_code;
    snprintf(s->message, sizeof(s->message), "%s", message);
}

static const struct runtime_session_fns fns = {sess_output, sess_end};

static void sess_reset(struct sess *s)
{
    kedge_buf_cleanup(&s->out);
    kedge_buf_cleanup(&s->err);
    memset(s, 0, sizeof(*s));
}

static const char *text(const struct kedge_buf *b)
{
    return b->data ? b->data : "";
}

static void exec_in(struct sess *s, const char *id, char *const *argv, size_t argc,
                    struct runtime_stdio io)
{
    s->h = rt.ops->exec_session(rt.rt, id, argv, argc, &io, &fns, s);
    ck_assert_int_gt(s->h, 0);
}

static void wait_end(struct sess *s)
{
    ck_assert_msg(spin_until(&s->ended, 30000), "the session did not end (out '%s' err '%s')",
                  text(&s->out), text(&s->err));
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void setup(void)
{
    rtfx_setup_node("node-sessions");
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(exec_output_and_exit_code)
{
    char *const argv[] = {"sh", "-c", "echo to-out; echo to-err >&2; exit 3"};
    struct sess s = {0};
    char id[80];

    run_container("kedge-sess-1", "exec sleep 1000", id, sizeof(id));
    exec_in(&s, id, argv, 3, (struct runtime_stdio){false, true, true, false});
    wait_end(&s);
    ck_assert_msg(s.end_err == 0, "%s: %s", kedge_errname(s.end_err), s.message);
    ck_assert_int_eq(s.exit_code, 3);
    ck_assert_str_eq(text(&s.out), "to-out\n");
    ck_assert_str_eq(text(&s.err), "to-err\n");
    sess_reset(&s);

    /* stdin: bytes before the engine took the connection over, more after, then EOF */
    {
        char *const cat[] = {"cat"};

        exec_in(&s, id, cat, 1, (struct runtime_stdio){true, true, true, false});
        ck_assert_int_eq(rt.ops->session_stdin(rt.rt, s.h, "early\n", 6), 0);
        s.want = "early\n";
        ck_assert_msg(spin_until(&s.seen, 20000), "cat: '%s'", text(&s.out));
        ck_assert_int_eq(rt.ops->session_stdin(rt.rt, s.h, "late", 4), 0);
        ck_assert_int_eq(rt.ops->session_stdin(rt.rt, s.h, "r\n", 2), 0);
        ck_assert_int_eq(rt.ops->session_close_stdin(rt.rt, s.h), 0);
        ck_assert_int_eq(rt.ops->session_stdin(rt.rt, s.h, "x", 1), -ENOENT); /* closed */
        wait_end(&s);                                                         /* cat saw EOF */
        ck_assert_int_eq(s.end_err, 0);
        ck_assert_int_eq(s.exit_code, 0);
        ck_assert_str_eq(text(&s.out), "early\nlater\n");
        ck_assert_str_eq(text(&s.err), "");
        sess_reset(&s);
    }
}
END_TEST

START_TEST(exec_tty_resize)
{
    char *const sh[] = {"sh"};
    struct sess s = {0};
    uint64_t end;
    char id[80];

    run_container("kedge-sess-2", "exec sleep 1000", id, sizeof(id));
    exec_in(&s, id, sh, 1, (struct runtime_stdio){true, true, false, true});
    ck_assert_int_eq(rt.ops->session_resize(rt.rt, s.h, 123, 45), 0);
    /* the resize is a call of its own: ask until the terminal has the size (a deadline) */
    s.want = "45 123";
    end = kedge_now_ms() + (uint64_t)enginectl_scale_ms(20000);
    while (!s.seen && !s.ended && kedge_now_ms() < end) {
        ck_assert_int_eq(rt.ops->session_stdin(rt.rt, s.h, "stty size\n", 10), 0);
        (void)spin_until(&s.seen, 300);
    }
    ck_assert_msg(s.seen, "stty size never said 45 123: '%s'", text(&s.out));
    ck_assert_int_eq(rt.ops->session_resize(rt.rt, s.h, 81, 19), 0);
    s.want = "19 81";
    s.seen = false;
    end = kedge_now_ms() + (uint64_t)enginectl_scale_ms(20000);
    while (!s.seen && !s.ended && kedge_now_ms() < end) {
        ck_assert_int_eq(rt.ops->session_stdin(rt.rt, s.h, "stty size\n", 10), 0);
        (void)spin_until(&s.seen, 300);
    }
    ck_assert_msg(s.seen, "stty size never said 19 81: '%s'", text(&s.out));
    ck_assert_int_eq(rt.ops->session_stdin(rt.rt, s.h, "exit 7\n", 7), 0);
    wait_end(&s);
    ck_assert_int_eq(s.end_err, 0);
    ck_assert_int_eq(s.exit_code, 7);
    ck_assert_str_eq(text(&s.err), "");                  /* a TTY has one stream */
    ck_assert_ptr_nonnull(strstr(text(&s.out), "\r\n")); /* the terminal's line endings */
    sess_reset(&s);
}
END_TEST

START_TEST(attach_main_process)
{
    const struct runtime_stdio io = {true, true, true, false};
    struct sess s = {0};
    char id[80];

    /* the main process waits for a line on its stdin, answers on both streams and exits 5 */
    run_container_with("kedge-sess-3", "read x; echo got-$x; echo err-$x >&2; exit 5",
                       ",\"OpenStdin\":true,\"StdinOnce\":false", id, sizeof(id));
    s.h = rt.ops->attach_session(rt.rt, id, &io, &fns, &s);
    ck_assert_int_gt(s.h, 0);
    ck_assert_int_eq(rt.ops->session_stdin(rt.rt, s.h, "ping\n", 5), 0);
    wait_end(&s);
    ck_assert_msg(s.end_err == 0, "%s: %s", kedge_errname(s.end_err), s.message);
    ck_assert_str_eq(text(&s.out), "got-ping\n");
    ck_assert_str_eq(text(&s.err), "err-ping\n");
    ck_assert_int_eq(s.exit_code, 5);
    sess_reset(&s);

    /* a TTY container: raw output, resized through the container; each line it reads makes
     * it print its size, until "q" */
    run_container_with("kedge-sess-4",
                       "while read x; do [ \\\"$x\\\" = q ] && exit 4; stty size; done",
                       ",\"OpenStdin\":true,\"StdinOnce\":false,\"Tty\":true", id, sizeof(id));
    {
        const struct runtime_stdio tty = {true, true, false, true};
        uint64_t end = kedge_now_ms() + (uint64_t)enginectl_scale_ms(20000);

        s.h = rt.ops->attach_session(rt.rt, id, &tty, &fns, &s);
        ck_assert_int_gt(s.h, 0);
        ck_assert_int_eq(rt.ops->session_resize(rt.rt, s.h, 90, 30), 0);
        s.want = "30 90"; /* the resize is a call of its own: ask until it landed */
        while (!s.seen && !s.ended && kedge_now_ms() < end) {
            ck_assert_int_eq(rt.ops->session_stdin(rt.rt, s.h, "\r", 1), 0);
            (void)spin_until(&s.seen, 300);
        }
        ck_assert_msg(s.seen, "tty attach: '%s'", text(&s.out));
        ck_assert_int_eq(rt.ops->session_stdin(rt.rt, s.h, "q\r", 2), 0);
        wait_end(&s);
        ck_assert_int_eq(s.end_err, 0);
        ck_assert_int_eq(s.exit_code, 4);
        ck_assert_str_eq(text(&s.err), "");
        sess_reset(&s);
    }
}
END_TEST

/* 10 MB through a paused and resumed session: nothing arrives while paused, all of it after. */
START_TEST(big_output_paused)
{
    char *const argv[] = {"sh", "-c", "head -c 10485760 /dev/zero; echo done >&2"};
    struct sess s = {0};
    bool never = false;
    size_t at_pause;
    char id[80];

    run_container("kedge-sess-5", "exec sleep 1000", id, sizeof(id));
    s.count_only = true;
    s.want_bytes = 1 << 20;
    s.pause_at_want = true;
    exec_in(&s, id, argv, 3, (struct runtime_stdio){false, true, true, false});
    ck_assert_msg(spin_until(&s.seen, 30000), "only %zu bytes", s.n_out);
    at_pause = s.n_out;
    (void)spin_until(&never, 1000); /* serve the loop a while: the engine is held back */
    ck_assert_uint_eq(s.outputs_while_paused, 0);
    ck_assert_uint_eq(s.n_out, at_pause);
    ck_assert(!s.ended);
    s.paused = false;
    rt.ops->session_pause(rt.rt, s.h, false);
    wait_end(&s);
    ck_assert_int_eq(s.end_err, 0);
    ck_assert_int_eq(s.exit_code, 0);
    ck_assert_uint_eq(s.n_out, 10485760);
    ck_assert_uint_eq(s.n_err, 5);
    sess_reset(&s);
}
END_TEST

START_TEST(errors)
{
    char *const echo[] = {"echo", "hi"};
    char *const missing[] = {"no-such-binary-kedge"};
    struct sess s = {0};
    char id[80];

    /* no such container: -ENOENT and the engine's words */
    exec_in(&s, "kedge-no-such-container", echo, 2,
            (struct runtime_stdio){false, true, true, false});
    wait_end(&s);
    ck_assert_int_eq(s.end_err, -ENOENT);
    ck_assert_msg(strcasestr(s.message, "no such container") != NULL, "'%s'", s.message);
    sess_reset(&s);
    s.h = rt.ops->attach_session(rt.rt, "kedge-no-such-container",
                                 &(struct runtime_stdio){false, true, true, false}, &fns, &s);
    ck_assert_int_gt(s.h, 0);
    wait_end(&s);
    ck_assert_int_eq(s.end_err, -ENOENT);
    ck_assert_msg(strcasestr(s.message, "no such container") != NULL, "'%s'", s.message);
    sess_reset(&s);

    /* no such binary: the runtime's message reaches the caller, and 126/127 */
    run_container("kedge-sess-6", "exec sleep 1000", id, sizeof(id));
    exec_in(&s, id, missing, 1, (struct runtime_stdio){false, true, true, false});
    wait_end(&s);
    printf("test_runtime_session: missing binary: err %d exit %d message '%s' out '%s' err "
           "'%s'\n",
           s.end_err, s.exit_code, s.message, text(&s.out), text(&s.err));
    ck_assert_msg(strstr(s.message, "executable file not found") ||
                      strstr(text(&s.out), "executable file not found") ||
                      strstr(text(&s.err), "executable file not found"),
                  "no runtime message: '%s' '%s' '%s'", s.message, text(&s.out), text(&s.err));
    ck_assert_msg(s.exit_code == 126 || s.exit_code == 127, "exit %d", s.exit_code);
    sess_reset(&s);

    /* a stopped container */
    {
        char path[200];
        int status = -1;

        snprintf(path, sizeof(path), ENGINECTL_API "/containers/%s/kill", id);
        ck_assert_int_eq(enginectl_http(engine, "POST", path, NULL, &status, NULL), 0);
        snprintf(path, sizeof(path), ENGINECTL_API "/containers/%s/wait", id);
        ck_assert_int_eq(enginectl_http(engine, "POST", path, NULL, &status, NULL), 0);
        exec_in(&s, id, echo, 2, (struct runtime_stdio){false, true, true, false});
        wait_end(&s);
        ck_assert_int_lt(s.end_err, 0);
        ck_assert_str_ne(s.message, "");
        printf("test_runtime_session: exec in a stopped container: %s '%s'\n",
               kedge_errname(s.end_err), s.message);
        sess_reset(&s);
    }
}
END_TEST

/* No engine at all: a runtime on a socket nobody listens on. */
START_TEST(engine_down)
{
    char *const echo[] = {"echo", "hi"};
    const struct runtime_docker_config cfg = {"/nonexistent/kedge-engine.sock", "node-x",
                                              ENGINECTL_PAUSE_IMAGE, 0, 0};
    const struct runtime_stdio io = {false, true, true, false};
    struct runtime down;
    struct sess s = {0};

    ck_assert_int_eq(runtime_docker_new(lws, rtfx_vhost, &cfg, &down), 0);
    s.h = down.ops->exec_session(down.rt, "c1", echo, 2, &io, &fns, &s);
    ck_assert_int_gt(s.h, 0);
    wait_end(&s);
    ck_assert_int_eq(s.end_err, -ECONNREFUSED);
    ck_assert_ptr_nonnull(strstr(s.message, "container runtime is not reachable"));
    sess_reset(&s);
    s.h = down.ops->attach_session(down.rt, "c1", &io, &fns, &s);
    ck_assert_int_gt(s.h, 0);
    ck_assert(s.ended); /* refused at once */
    ck_assert_int_eq(s.end_err, -ECONNREFUSED);
    sess_reset(&s);
    down.ops->stop(down.rt);
    down.ops->free(down.rt);
}
END_TEST

/* Cancelled in the middle of its output (from inside the output callback, and from outside):
 * nothing more is called, and the connections are closed. */
START_TEST(cancel_mid_stream)
{
    /* finite: what a cancel leaves running is the engine's to finish (kubelet's way too), and
     * an endless writer would keep a core busy for the rest of the run */
    char *const argv[] = {"head", "-c", "20000000", "/dev/zero"};
    struct sess s = {0}, t = {0};
    bool never = false;
    int before;
    char id[80];

    run_container("kedge-sess-7", "exec sleep 1000", id, sizeof(id));
    /* one session first: the engine client's own descriptors are made */
    {
        char *const echo[] = {"true"};
        exec_in(&s, id, echo, 1, (struct runtime_stdio){false, true, true, false});
        wait_end(&s);
        sess_reset(&s);
    }
    before = open_fds();
    s.count_only = true;
    s.want_bytes = 100000;
    s.cancel_at_want = true;
    exec_in(&s, id, argv, 4, (struct runtime_stdio){false, true, true, false});
    ck_assert(spin_until(&s.seen, 30000));
    t.count_only = true;
    t.want_bytes = 100000;
    exec_in(&t, id, argv, 4, (struct runtime_stdio){true, true, true, false});
    ck_assert(spin_until(&t.seen, 30000));
    rt.ops->session_cancel(rt.rt, t.h);
    rt.ops->session_cancel(rt.rt, t.h); /* twice: nothing */
    {
        size_t n = s.n_out, m = t.n_out;
        uint64_t end = kedge_now_ms() + (uint64_t)enginectl_scale_ms(20000);

        while (open_fds() > before && kedge_now_ms() < end)
            (void)spin_until(&never, 50);
        ck_assert_int_eq(open_fds(), before);
        ck_assert_uint_eq(s.n_out, n);
        ck_assert_uint_eq(t.n_out, m);
    }
    ck_assert(!s.ended);
    ck_assert(!t.ended);
    sess_reset(&s);
    sess_reset(&t);
}
END_TEST

static Suite *runtime_session_suite(void)
{
    Suite *s = suite_create("runtime_session");
    TCase *tc;
    const char *why =
        !enginectl_wanted() ? "KEDGE_TEST_ENGINE=none" : enginectl_unavailable_reason();

    if (why) {
        (void)printf("test_runtime_session: skipped: %s\n", why);
        return s;
    }
    tc = tcase_create("sessions");
    tcase_add_checked_fixture(tc, setup, rtfx_teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, exec_output_and_exit_code);
    tcase_add_test(tc, exec_tty_resize);
    tcase_add_test(tc, attach_main_process);
    tcase_add_test(tc, big_output_paused);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, engine_down);
    tcase_add_test(tc, cancel_mid_stream);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kh_run_suite(runtime_session_suite(), CK_NORMAL);
}
