/* ctlrun: kedge-ctl run as a program by a test, to its end, with its output captured. For
 * Check tests (test_ctl, test_node): a run that cannot be started fails the test. */
#ifndef KEDGE_TESTS_CTLRUN_H
#define KEDGE_TESTS_CTLRUN_H

#include <stdarg.h>

struct ctl_run {
    int status; /* exit code, 128 + signal, or -1 when it had to be killed */
    char *out, *err;
    long ms; /* how long it ran */
};

/* Run prog with args (NULL-terminated, without the program name), stdout and stderr captured,
 * killed after timeout_ms (not scaled); the command line and what it did go to stderr. */
void ctl_run_argv(struct ctl_run *r, const char *prog, char *const *args, int timeout_ms);

/* prog -p port -P pwfile -t T, then the arguments from first on (NULL-terminated): T is
 * kedge-ctl's own deadline per step, 5 s scaled as the tests' deadlines are. */
void ctl_run_v(struct ctl_run *r, const char *prog, int timeout_ms, int port, const char *pwfile,
               const char *first, va_list ap);

/* Free what a run holds and zero it. */
void ctl_run_free(struct ctl_run *r);

#endif
