/* ctlrun.c: kedge-ctl as a program under test (ctlrun.h). */
#include "ctlrun.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "proc.h"
#include "testsupport.h"

void ctl_run_argv(struct ctl_run *r, const char *prog, char *const *args, int timeout_ms)
{
    const char *argv[64];
    int n = 0;
    int64_t t0 = kt_now_ms();

    memset(r, 0, sizeof(*r));
    argv[n++] = prog;
    for (; *args && n < 63; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    ck_assert_int_eq(kt_run(argv, timeout_ms, &r->status, &r->out, &r->err), 0);
    r->ms = (long)(kt_now_ms() - t0);
    fprintf(stderr, "$ kedge-ctl");
    for (int i = 1; i < n; i++)
        fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, "  -> exit %d in %ld ms\n%s%s", r->status, r->ms, r->out, r->err);
}

void ctl_run_v(struct ctl_run *r, const char *prog, int timeout_ms, int port, const char *pwfile,
               const char *first, va_list ap)
{
    char port_s[16], step_s[16], *args[48];
    const char *a;
    int n = 0;

    snprintf(port_s, sizeof(port_s), "%d", port);
    /* kedge-ctl's own deadline per step, scaled as ours are (a valgrind broker is slow) */
    snprintf(step_s, sizeof(step_s), "%d", kh_scale_ms(5000) / 1000);
    args[n++] = "-p";
    args[n++] = port_s;
    args[n++] = "-P";
    args[n++] = (char *)pwfile;
    args[n++] = "-t";
    args[n++] = step_s;
    for (a = first; a && n < 47; a = va_arg(ap, const char *))
        args[n++] = (char *)a;
    args[n] = NULL;
    ctl_run_argv(r, prog, args, timeout_ms);
}

void ctl_run_free(struct ctl_run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}
