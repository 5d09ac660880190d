/* tc_control.c: test_cloudsim's cases for the control API, certificates and the command line
 * (test_cloudsim.c says how they work). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/msg.h"
#include "kedge/util.h"
#include "simctl.h"
#include "simtest.h"

/* The control API's errors and /received's filters. */
START_TEST(test_control_api)
{
    struct simctl *s = sim_start(0, 0);
    struct kedge_buf body = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc;
    char json[1024];
    struct wsc w;
    int status, one = 1, three = 3;

    ck_assert_int_eq(simctl_http(s, "GET", "/nope", NULL, &status, &body), 0);
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(body.data, "{\"error\":\"no such endpoint\"}\n");
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "POST", "/send", "{\"route\":", &status, &body), 0);
    ck_assert_int_eq(status, 400);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "POST", "/send", "[]", &status, &body), 0);
    ck_assert_int_eq(status, 400);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "GET", "/send", NULL, &status, &body), 0);
    ck_assert_int_eq(status, 405);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "GET", "/state?node=ghost", NULL, &status, &body), 0);
    ck_assert_int_eq(status, 404);
    kedge_buf_reset(&body);
    ck_assert_int_eq(simctl_http(s, "GET", "/received?since=x", NULL, &status, &body), 0);
    ck_assert_int_eq(status, 400);
    kedge_buf_cleanup(&body);

    edge_connect(&w, s, "edge-node");
    send_keepalive(&w);
    edge_msg(json, sizeof(json), "up-1", "bus", "user", "upload", "SYS/dis/upload_records",
             "\"hello\"");
    wsc_send(&w, json);
    send_keepalive(&w);
    ck_assert(await_state(s, &w, cond_received_at_least, &one));
    ck_assert(await_state(s, &w, cond_received_all_at_least, &three));
    ck_assert_int_eq(count_received(s, NULL, NULL), 3);
    ck_assert_int_eq(count_received(s, "?skip_keepalive=1", NULL), 1);
    ck_assert_int_eq(count_received(s, "?since=0", NULL), 2);
    ck_assert_int_eq(count_received(s, "?since=1&skip_keepalive=1", NULL), 0);
    doc = get_json(s, "/received?since=0&skip_keepalive=1");
    {
        const struct kedge_jval *e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child;
        int64_t idx = -1, t = 0;
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(kedge_json_int64(kedge_json_get(e, "index"), &idx), 0);
        ck_assert_int_eq(idx, 1);
        ck_assert_int_eq(kedge_json_int64(kedge_json_get(e, "t_ms"), &t), 0);
        ck_assert_int_gt(t, 1600000000000LL);
        ck_assert_str_eq(
            kedge_json_get(kedge_json_get(kedge_json_get(e, "json"), "header"), "msg_id")->str,
            "up-1");
    }
    kedge_jdoc_free(doc);
    ck_assert_int_eq(w.in_total, 0); /* uploads go to the router: no reply */

    /* /send_raw: bytes that are not a message reach the edge exactly as given */
    ck_assert_int_eq(simctl_send_raw(s, NULL, "{\"not\": a message"), 0);
    {
        size_t len;
        char *raw = wsc_next_raw(&w, &len);
        ck_assert_uint_eq(len, strlen("{\"not\": a message"));
        ck_assert_int_eq(memcmp(raw, "{\"not\": a message", len), 0);
        kedge_free(raw);
    }
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* Certificates: made with the right properties, reused on the next start. */
START_TEST(test_certs_made_and_reused)
{
    static const char *const files[] = {"rootCA.crt", "rootCA.key", "server.crt",
                                        "server.key", "edge.crt",   "edge.key"};
    struct simctl_opts o;
    struct simctl *s;
    char dir[] = "/tmp/kedge-cloudsim-certs-XXXXXX", path[600], *ca1 = NULL, *ca2 = NULL;
    size_t l1, l2, i;
    struct stat st;
    struct wsc w;

    ck_assert_ptr_nonnull(mkdtemp(dir)); /* outlives each cloudsim process */
    memset(&o, 0, sizeof(o));
    o.certs_dir = dir;
    o.node = "kedge-node-7";
    s = sim_start_opts(&o);
    ck_assert_int_eq(certs_read_file(simctl_cert_path(s, "rootCA.crt"), &ca1, &l1), 0);
    ck_assert_int_eq(stat(simctl_cert_path(s, "edge.key"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(simctl_cert_path(s, "rootCA.key"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    edge_connect(&w, s, "kedge-node-7"); /* the edge certificate for --node works */
    wsc_close(&w);
    sim_stop_ok(s);

    s = sim_start_opts(&o); /* same directory: the CA is reused, byte for byte */
    ck_assert_int_eq(certs_read_file(simctl_cert_path(s, "rootCA.crt"), &ca2, &l2), 0);
    ck_assert_uint_eq(l1, l2);
    ck_assert_int_eq(memcmp(ca1, ca2, l1), 0);
    sim_stop_ok(s);

    kedge_free(ca1);
    kedge_free(ca2);
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        (void)snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        ck_assert_int_eq(unlink(path), 0);
    }
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* Run kedge-cloudsim with args and return its exit status (it is expected to exit at once). */
static int run_cli(const char *const *args)
{
    const char *argv[16];
    int argc = 0, st;
    pid_t pid;

    argv[argc++] = KEDGE_CLOUDSIM_BIN;
    while (*args && argc < 15)
        argv[argc++] = *args++;
    argv[argc] = NULL;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null < 0 || dup2(null, STDOUT_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0)
            _exit(126);
        execv(KEDGE_CLOUDSIM_BIN, (char *const *)argv);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid); /* Check's test timeout bounds this */
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* The command line: --help, and bad input refused with status 2 before anything starts. */
START_TEST(test_command_line)
{
    static const char *const help[] = {"--help", NULL};
    static const char *const no_certs[] = {"--port", "0", NULL};
    static const char *const unknown[] = {"--certs", "/nonexistent", "--bogus", "1", NULL};
    static const char *const range[] = {"--certs", "/nonexistent", "--port", "70000", NULL};
    static const char *const level[] = {"--certs", "/nonexistent", "--log-level", "loud", NULL};
    static const char *const https[] = {"--certs", "/nonexistent", "--https-port", "-1", NULL};
    static const char *const life[] = {"--certs", "/nonexistent", "--cert-lifetime-s", "0", NULL};
    static const char *const missing[] = {"--certs", NULL};

    ck_assert_int_eq(run_cli(help), 0);
    ck_assert_int_eq(run_cli(no_certs), 2);
    ck_assert_int_eq(run_cli(unknown), 2);
    ck_assert_int_eq(run_cli(range), 2);
    ck_assert_int_eq(run_cli(level), 2);
    ck_assert_int_eq(run_cli(https), 2);
    ck_assert_int_eq(run_cli(life), 2);
    ck_assert_int_eq(run_cli(missing), 2);
}
END_TEST

void cloudsim_add_control_tests(TCase *tc)
{
    tcase_add_test(tc, test_control_api);
    tcase_add_test(tc, test_certs_made_and_reused);
    tcase_add_test(tc, test_command_line);
}
