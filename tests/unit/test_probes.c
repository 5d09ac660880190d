/* cloudbridge/edged/probes.c: httpGet and tcpSocket probes against a tiny server on 127.0.0.1 (a
 * thread of this test: 200, 500, 302, a hang, a close without an answer, TLS), on a real lws
 * context built the way main.c builds it; exec probes through the Docker runtime's exec
 * against a stub engine_request that records the calls and answers when the test says so.
 *
 * Every test checks done() counts (exactly once, or never after a cancel) and that every block
 * probes.c allocated is freed (the counting allocator; valgrind covers lws' own).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "engine.h"
#include "probes.h"
#include "runtime_docker_exec.h"
#include "kedge/alloc.h"
#include "kedge/util.h"
#include "probes_fixture.h"
#include "unit.h"

/* ---- probes -------------------------------------------------------------------------------- */

static struct pod_probe http_probe(int p, const char *path)
{
    struct pod_probe pp;

    memset(&pp, 0, sizeof(pp));
    pp.kind = PROBE_HTTP;
    pp.port = p;
    pp.path = (char *)path;
    pp.scheme = (char *)"HTTP";
    pp.timeout_s = 5; /* ample, also under valgrind; the timeout tests set 1 */
    return pp;
}

static struct pod_probe tcp_probe(int p)
{
    struct pod_probe pp;

    memset(&pp, 0, sizeof(pp));
    pp.kind = PROBE_TCP;
    pp.port = p;
    pp.timeout_s = 5;
    return pp;
}

static char want[512];

#define WANT(...) (snprintf(want, sizeof(want), __VA_ARGS__), want)

START_TEST(http_ok)
{
    struct pod_kv headers[] = {{(char *)"X-Probe", (char *)"yes"}};
    struct pod_probe pp = http_probe(port[B_OK], "healthz?full=1");
    struct result res = {0};
    long h;

    pp.headers = headers;
    pp.n_headers = 1;
    h = prober_run(pr, &pp, NULL, "127.0.0.1", done, &res);
    ck_assert_int_gt(h, 0);
    ck_assert_int_eq(res.calls, 0); /* never from inside prober_run */
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_SUCCESS);
    ck_assert_str_eq(res.msg, "");
    pthread_mutex_lock(&mu);
    ck_assert_msg(!strncmp(last_request[B_OK], "GET /healthz?full=1 HTTP/1.1\r\n", 30), "%s",
                  last_request[B_OK]);
    ck_assert_ptr_nonnull(
        strstr(last_request[B_OK], WANT("\r\nHost: 127.0.0.1:%d\r\n", port[B_OK])));
    ck_assert_ptr_nonnull(strstr(last_request[B_OK], "\r\nUser-Agent: kube-probe/1.22\r\n"));
    ck_assert_ptr_nonnull(strstr(last_request[B_OK], "\r\nAccept: */*\r\n"));
    ck_assert_ptr_nonnull(strstr(last_request[B_OK], "\r\nX-Probe: yes\r\n"));
    pthread_mutex_unlock(&mu);
    prober_cancel(pr, h); /* done already: a no-op */
    spin_for(100);
    ck_assert_int_eq(res.calls, 1);
}
END_TEST

START_TEST(http_headers_override)
{
    struct pod_kv headers[] = {{(char *)"Host", (char *)"pod.example"},
                               {(char *)"User-Agent", (char *)"mine/1"}};
    struct pod_probe pp = http_probe(port[B_OK], "/");
    struct result res = {0};

    pp.headers = headers;
    pp.n_headers = 2;
    pp.host = (char *)"127.0.0.1"; /* the probe's host wins over the pod IP */
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "10.255.255.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_SUCCESS);
    pthread_mutex_lock(&mu);
    ck_assert_ptr_nonnull(strstr(last_request[B_OK], "\r\nHost: pod.example\r\n"));
    ck_assert_ptr_nonnull(strstr(last_request[B_OK], "\r\nUser-Agent: mine/1\r\n"));
    ck_assert_ptr_null(strstr(last_request[B_OK], "kube-probe"));
    pthread_mutex_unlock(&mu);
}
END_TEST

START_TEST(http_status)
{
    struct pod_probe pp = http_probe(port[B_FAIL], NULL);
    struct result res = {0};

    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, "HTTP probe failed with statuscode: 500");

    memset(&res, 0, sizeof(res)); /* a redirect is a success, and is not followed */
    pp = http_probe(port[B_REDIRECT], NULL);
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_SUCCESS);
}
END_TEST

START_TEST(http_refused)
{
    struct pod_probe pp = http_probe(closed_port, "/ready");
    struct result res = {0};

    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, WANT("Get \"http://127.0.0.1:%d/ready\": dial tcp 127.0.0.1:%d: "
                                   "connect: connection refused",
                                   closed_port, closed_port));
}
END_TEST

START_TEST(http_timeout)
{
    struct pod_probe pp = http_probe(port[B_HANG], NULL);
    struct result res = {0};

    pp.timeout_s = 1;
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, WANT("Get \"http://127.0.0.1:%d/\": context deadline exceeded "
                                   "(Client.Timeout exceeded while awaiting headers)",
                                   port[B_HANG]));
    spin_for(300);
    ck_assert_int_eq(res.calls, 1);
}
END_TEST

START_TEST(http_closed_without_answer)
{
    struct pod_probe pp = http_probe(port[B_CLOSE], NULL);
    struct result res = {0};

    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, WANT("Get \"http://127.0.0.1:%d/\": EOF", port[B_CLOSE]));
}
END_TEST

START_TEST(https_insecure)
{
    struct pod_probe pp = http_probe(port[B_TLS], "/tls");
    struct result res = {0};

    pp.scheme = (char *)"HTTPS";
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_msg(res.r == PROBE_SUCCESS, "%s", res.msg);
    pthread_mutex_lock(&mu);
    ck_assert_msg(!strncmp(last_request[B_TLS], "GET /tls HTTP/1.1\r\n", 19), "%s",
                  last_request[B_TLS]);
    pthread_mutex_unlock(&mu);

    memset(&res, 0, sizeof(res)); /* TLS to a plain HTTP port fails, and says which URL */
    pp = http_probe(port[B_FAIL], NULL);
    pp.scheme = (char *)"HTTPS";
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    WANT("Get \"https://127.0.0.1:%d/\": ", port[B_FAIL]);
    ck_assert_msg(!strncmp(res.msg, want, strlen(want)), "%s", res.msg);
}
END_TEST

START_TEST(http_bad_input)
{
    struct pod_kv bad_value[] = {{(char *)"X-A", (char *)"1\r\nX-Injected: 1"}};
    struct pod_kv bad_name[] = {{(char *)"X A", (char *)"1"}};
    struct pod_probe pp = http_probe(port[B_OK], NULL);
    struct result res = {0};

    pp.headers = bad_value;
    pp.n_headers = 1;
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    ck_assert_int_eq(res.calls, 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, WANT("Get \"http://127.0.0.1:%d/\": net/http: invalid header field "
                                   "value for \"X-A\"",
                                   port[B_OK]));
    memset(&res, 0, sizeof(res));
    pp.headers = bad_name;
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_str_eq(res.msg, WANT("Get \"http://127.0.0.1:%d/\": net/http: invalid header field "
                                   "name \"X A\"",
                                   port[B_OK]));
    memset(&res, 0, sizeof(res));
    pp = http_probe(80, NULL);
    pp.host = (char *)"pod.example";
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_str_eq(res.msg, "Get \"http://pod.example:80/\": dial tcp: lookup pod.example: not "
                              "an IP address (the prober does not resolve names)");
    memset(&res, 0, sizeof(res));
    pp = http_probe(port[B_OK], "/a b");
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.r, PROBE_SUCCESS);
    pthread_mutex_lock(&mu);
    ck_assert_msg(!strncmp(last_request[B_OK], "GET /a%20b HTTP/1.1\r\n", 21), "%s",
                  last_request[B_OK]);
    pthread_mutex_unlock(&mu);
    ck_assert_int_eq(prober_run(pr, NULL, NULL, "127.0.0.1", done, &res), -EINVAL);
    pp.kind = PROBE_NONE;
    ck_assert_int_eq(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), -EINVAL);
}
END_TEST

START_TEST(tcp_results)
{
    struct pod_probe pp = tcp_probe(port[B_OK]);
    struct result res = {0};

    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_SUCCESS);
    ck_assert_str_eq(res.msg, "");

    memset(&res, 0, sizeof(res));
    pp = tcp_probe(closed_port);
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg,
                     WANT("dial tcp 127.0.0.1:%d: connect: connection refused", closed_port));

    memset(&res, 0, sizeof(res));
    pp = tcp_probe(closed_port);
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "::1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    WANT("dial tcp [::1]:%d: connect: ", closed_port);
    ck_assert_msg(!strncmp(res.msg, want, strlen(want)), "%s", res.msg);
}
END_TEST

START_TEST(tcp_timeout)
{
    struct pod_probe pp = tcp_probe(full_port);
    struct result res = {0};

    pp.timeout_s = 1;
    fill_queue();
    ck_assert_int_gt(prober_run(pr, &pp, NULL, "127.0.0.1", done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, WANT("dial tcp 127.0.0.1:%d: i/o timeout", full_port));
}
END_TEST

START_TEST(cancel_in_flight)
{
    struct pod_probe hang = http_probe(port[B_HANG], NULL);
    struct pod_probe refused = http_probe(closed_port, NULL);
    struct pod_probe slow = tcp_probe(full_port);
    struct pod_probe ok = http_probe(port[B_OK], NULL);
    struct result r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
    long h1, h2, h3, h4;

    hang.timeout_s = refused.timeout_s = slow.timeout_s = 1;
    fill_queue();
    h1 = prober_run(pr, &hang, NULL, "127.0.0.1", done, &r1);
    h2 = prober_run(pr, &refused, NULL, "127.0.0.1", done, &r2);
    h3 = prober_run(pr, &slow, NULL, "127.0.0.1", done, &r3);
    h4 = prober_run(pr, &ok, NULL, "127.0.0.1", done, &r4);
    ck_assert(h1 > 0 && h2 > h1 && h3 > h2 && h4 > h3);
    spin_for(200); /* the hang and the dial are in flight now */
    prober_cancel(pr, h1);
    prober_cancel(pr, h2); /* finished already, or not: either way, no call from now on */
    prober_cancel(pr, h3);
    prober_cancel(pr, 999999); /* unknown: nothing */
    spin_until(&r4, 10000);
    ck_assert_int_eq(r4.calls, 1);
    spin_for(1500); /* past every timeout */
    ck_assert_int_eq(r1.calls, 0);
    ck_assert_int_le(r2.calls, 1);
    ck_assert_int_eq(r3.calls, 0);
    ck_assert_int_eq(r4.calls, 1);
}
END_TEST

START_TEST(cancel_before_loop)
{
    struct pod_probe refused = http_probe(closed_port, NULL);
    struct pod_kv bad[] = {{(char *)"X", (char *)"\n"}};
    struct result r1 = {0}, r2 = {0};
    long h;

    refused.timeout_s = 1;
    h = prober_run(pr, &refused, NULL, "127.0.0.1", done, &r1);
    prober_cancel(pr, h);
    refused.headers = bad; /* decided inside prober_run, delivered later: cancelled first */
    refused.n_headers = 1;
    h = prober_run(pr, &refused, NULL, "127.0.0.1", done, &r2);
    prober_cancel(pr, h);
    spin_for(1500);
    ck_assert_int_eq(r1.calls, 0);
    ck_assert_int_eq(r2.calls, 0);
}
END_TEST

START_TEST(free_in_flight)
{
    struct pod_probe hang = http_probe(port[B_HANG], NULL);
    struct pod_probe slow = tcp_probe(full_port);
    struct pod_probe ex = {.kind = PROBE_EXEC, .timeout_s = 1};
    char *cmd[] = {(char *)"true"};
    struct result r1 = {0}, r2 = {0}, r3 = {0};

    ex.command = cmd;
    ex.n_command = 1;
    hang.timeout_s = slow.timeout_s = 1;
    fill_queue();
    ck_assert_int_gt(prober_run(pr, &hang, NULL, "127.0.0.1", done, &r1), 0);
    ck_assert_int_gt(prober_run(pr, &slow, NULL, "127.0.0.1", done, &r2), 0);
    ck_assert_int_gt(prober_run(pr, &ex, "c0ffee", NULL, done, &r3), 0);
    spin_for(100);
    prober_free(pr);
    pr = NULL;
    answer_json(0, 201, "{\"Id\":\"e1\"}"); /* the engine answers after all: nobody listens */
    spin_for(1500);
    ck_assert_int_eq(n_calls, 1);
    ck_assert_int_eq(r1.calls + r2.calls + r3.calls, 0);
}
END_TEST

START_TEST(free_from_done)
{
    struct pod_probe refused = tcp_probe(closed_port);
    struct pod_probe hang = http_probe(port[B_HANG], NULL);
    struct result r1 = {.free_prober = true}, r2 = {0};

    hang.timeout_s = 1;
    ck_assert_int_gt(prober_run(pr, &hang, NULL, "127.0.0.1", done, &r2), 0);
    ck_assert_int_gt(prober_run(pr, &refused, NULL, "127.0.0.1", done, &r1), 0);
    spin_until(&r1, 10000);
    ck_assert_int_eq(r1.calls, 1);
    ck_assert_ptr_null(pr);
    spin_for(1500);
    ck_assert_int_eq(r2.calls, 0);
}
END_TEST

/* ---- exec ---------------------------------------------------------------------------------- */

static char *health_cmd[] = {(char *)"cat", (char *)"/tmp/healthy"};

static struct pod_probe exec_probe(void)
{
    struct pod_probe pp;

    memset(&pp, 0, sizeof(pp));
    pp.kind = PROBE_EXEC;
    pp.command = health_cmd;
    pp.n_command = 2;
    pp.timeout_s = 1;
    return pp;
}

/* Docker's multiplexed stream: one frame per (stream, text). */
static size_t mux(char *out, int stream, const char *text)
{
    size_t n = strlen(text);

    out[0] = (char)stream;
    out[1] = out[2] = out[3] = 0;
    out[4] = (char)(n >> 24);
    out[5] = (char)(n >> 16);
    out[6] = (char)(n >> 8);
    out[7] = (char)n;
    memcpy(out + 8, text, n);
    return n + 8;
}

static void run_exec(struct result *res, int exit_code, const char *out_text)
{
    struct pod_probe pp = exec_probe();
    char body[256], json[64];
    size_t n;

    ck_assert_int_gt(prober_run(pr, &pp, "3f2a9c", NULL, done, res), 0);
    ck_assert_int_eq(n_calls, 1);
    ck_assert_str_eq(calls[0].method, "POST");
    ck_assert_str_eq(calls[0].path, "/containers/3f2a9c/exec");
    ck_assert_str_eq(calls[0].body, "{\"AttachStdout\":true,\"AttachStderr\":true,"
                                    "\"Cmd\":[\"cat\",\"/tmp/healthy\"]}");
    ck_assert(calls[0].timeout_ms > 0 && calls[0].timeout_ms <= 1000);
    answer_json(0, 201, "{\"Id\":\"e7f1\"}");
    ck_assert_int_eq(n_calls, 2);
    ck_assert_str_eq(calls[1].method, "POST");
    ck_assert_str_eq(calls[1].path, "/exec/e7f1/start");
    ck_assert_str_eq(calls[1].body, "{\"Detach\":false,\"Tty\":false}");
    ck_assert(calls[1].timeout_ms > 0 && calls[1].timeout_ms <= 1000);
    n = mux(body, 1, "");
    n += mux(body + n, 2, out_text);
    answer(1, 200, 0, body, n);
    ck_assert_int_eq(n_calls, 3);
    ck_assert_str_eq(calls[2].method, "GET");
    ck_assert_str_eq(calls[2].path, "/exec/e7f1/json");
    ck_assert_str_eq(calls[2].body, "");
    ck_assert_int_eq(res->calls, 0);
    snprintf(json, sizeof(json), "{\"Running\":false,\"ExitCode\":%d}", exit_code);
    answer_json(2, 200, json);
    ck_assert_int_eq(res->calls, 1);
}

START_TEST(exec_exit_codes)
{
    struct result res = {0};

    run_exec(&res, 1, "cat: /tmp/healthy: No such file or directory\n");
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, "command \"cat /tmp/healthy\" exited with 1: cat: /tmp/healthy: "
                              "No such file or directory");
    memset(&res, 0, sizeof(res));
    n_calls = 0;
    run_exec(&res, 0, "ok\n");
    ck_assert_int_eq(res.r, PROBE_SUCCESS);
    memset(&res, 0, sizeof(res));
    n_calls = 0;
    run_exec(&res, 137, "");
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, "command \"cat /tmp/healthy\" exited with 137");
}
END_TEST

START_TEST(exec_engine_errors)
{
    struct pod_probe pp = exec_probe();
    struct result res = {0};

    ck_assert_int_gt(prober_run(pr, &pp, "3f2a9c", NULL, done, &res), 0);
    answer_json(0, 404, "{\"message\":\"No such container: 3f2a9c\"}");
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.r, PROBE_FAILURE);
    ck_assert_str_eq(res.msg, "failed to exec in container: No such container: 3f2a9c");

    memset(&res, 0, sizeof(res));
    ck_assert_int_gt(prober_run(pr, &pp, "3f2a9c", NULL, done, &res), 0);
    answer_json(1, 201, "{\"Id\":\"e2\"}");
    answer(2, 0, -ETIMEDOUT, "", 0); /* start: the command outlived the timeout */
    ck_assert_int_eq(res.calls, 1);
    ck_assert_str_eq(res.msg, "command \"cat /tmp/healthy\" timed out");
    ck_assert_int_eq(n_calls, 3);

    memset(&res, 0, sizeof(res)); /* the engine is down: answered inside engine_request */
    sync_err = -ECONNREFUSED;
    ck_assert_int_gt(prober_run(pr, &pp, "3f2a9c", NULL, done, &res), 0);
    ck_assert_int_eq(res.calls, 0);
    spin_until(&res, 10000);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_str_eq(res.msg, "failed to exec in container: connection refused");
    sync_err = 0;

    memset(&res, 0, sizeof(res));
    ck_assert_int_gt(prober_run(pr, &pp, "3f2a9c", NULL, done, &res), 0);
    answer_json(4, 201, "{}");
    ck_assert_int_eq(res.calls, 1);
    ck_assert_str_eq(res.msg, "failed to exec in container: the engine gave no exec id");

    memset(&res, 0, sizeof(res));
    ck_assert_int_gt(prober_run(pr, &pp, "bad/id", NULL, done, &res), 0);
    spin_until(&res, 10000);
    ck_assert_str_eq(res.msg, "failed to exec in container: no container id");
    ck_assert_int_eq(n_calls, 5);
}
END_TEST

START_TEST(exec_timeout_and_cancel)
{
    struct pod_probe pp = exec_probe();
    struct result r1 = {0}, r2 = {0};
    long h;

    ck_assert_int_gt(prober_run(pr, &pp, "3f2a9c", NULL, done, &r1), 0);
    answer_json(0, 201, "{\"Id\":\"e3\"}");
    spin_until(&r1, 10000); /* the start never answers: the probe's own timer */
    ck_assert_int_eq(r1.calls, 1);
    ck_assert_str_eq(r1.msg, "command \"cat /tmp/healthy\" timed out");
    answer(1, 0, -ETIMEDOUT, "", 0); /* the late answer reaches nobody */
    ck_assert_int_eq(r1.calls, 1);

    h = prober_run(pr, &pp, "3f2a9c", NULL, done, &r2);
    prober_cancel(pr, h);
    answer_json(2, 201, "{\"Id\":\"e4\"}");
    ck_assert_int_eq(n_calls, 3); /* nothing more asked for a cancelled probe */
    ck_assert_int_eq(r2.calls, 0);
}
END_TEST

/* ---- allocation failures ------------------------------------------------------------------- */

static int op_run(void *arg)
{
    const struct pod_probe *pp = arg;
    struct result res = {0};
    long h;

    n_calls = 0;
    h = prober_run(pr, pp, "3f2a9c", "127.0.0.1", done, &res);
    if (h < 0)
        return (int)h;
    prober_cancel(pr, h);
    return 0;
}

START_TEST(run_nomem)
{
    static const int ok[] = {-ENOMEM};
    struct pod_kv headers[] = {{(char *)"X-Probe", (char *)"yes"}, {(char *)"Host", (char *)"h"}};
    struct pod_probe http = http_probe(port[B_OK], "/x");
    struct pod_probe tcp = tcp_probe(port[B_OK]);
    struct pod_probe ex = exec_probe();

    http.headers = headers;
    http.n_headers = 2;
    ck_assert_int_gt(unit_alloc_fail_loop(op_run, &http, ok, 1), 3);
    ck_assert_int_ge(unit_alloc_fail_loop(op_run, &tcp, ok, 1), 1);
    sync_err = -ECONNREFUSED; /* every exec answered at once: nothing stays in the engine */
    ck_assert_int_ge(unit_alloc_fail_loop(op_run, &ex, ok, 1), 2);
    sync_err = 0;
    spin_for(50);
}
END_TEST

static Suite *probes_suite(void)
{
    Suite *s = suite_create("probes");
    TCase *tc;

    tc = tcase_create("http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, http_ok);
    tcase_add_test(tc, http_headers_override);
    tcase_add_test(tc, http_status);
    tcase_add_test(tc, http_refused);
    tcase_add_test(tc, http_timeout);
    tcase_add_test(tc, http_closed_without_answer);
    tcase_add_test(tc, https_insecure);
    tcase_add_test(tc, http_bad_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("tcp");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, tcp_results);
    tcase_add_test(tc, tcp_timeout);
    suite_add_tcase(s, tc);

    tc = tcase_create("exec");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, exec_exit_codes);
    tcase_add_test(tc, exec_engine_errors);
    tcase_add_test(tc, exec_timeout_and_cancel);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetime");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, cancel_in_flight);
    tcase_add_test(tc, cancel_before_loop);
    tcase_add_test(tc, free_in_flight);
    tcase_add_test(tc, free_from_done);
    tcase_add_test(tc, run_nomem);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(probes_suite());
}
