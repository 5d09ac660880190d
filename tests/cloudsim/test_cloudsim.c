/* test_cloudsim.c: kedge-cloudsim against the cloudcore behaviours it claims (cloudsim.h).
 *
 * Every test starts the real binary (simctl.h), drives it with a small lws websocket client
 * (simtest.c) (mutual TLS with the generated edge certificate, the handshake headers the edge
 * sends) and with the control API, then stops it and asserts exit status 0 (under
 * KEDGE_VALGRIND=1 that also means no leaks). Waits are deadlines on a condition. Where a test
 * must show that something does *not* happen (no resend, no reply), it uses a later marker that
 * the same ordered stream must deliver first, so the absence is proven without a timed pause;
 * the few remaining observation windows are named quiet_ms and documented at their use.
 *
 * The cases live in one file per topic (tc_*.c); this file assembles the suite.
 */
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

static Suite *cloudsim_suite(void)
{
    Suite *s = suite_create("cloudsim");
    TCase *tc = tcase_create("cloudcore");

    cloudsim_add_link_tests(tc);
    cloudsim_add_controller_tests(tc);
    cloudsim_add_pod_tests(tc);
    cloudsim_add_control_tests(tc);
    cloudsim_add_stream_tests(tc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cloudsim_suite());
    int failed;

    /* KEDGE_TEST_LWS_LOG=<lws level bits> shows the client's lws log (e.g. 15) */
    lws_set_log_level(getenv("KEDGE_TEST_LWS_LOG") ? atoi(getenv("KEDGE_TEST_LWS_LOG")) : LLL_ERR,
                      NULL);
    kedge_log_level_max = KEDGE_LOG_WARN;
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
