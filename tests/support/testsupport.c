#define _GNU_SOURCE /* nftw's FTW_ flags */

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testsupport.h"

int64_t kt_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kt_remaining_ms(int64_t deadline)
{
    int64_t r = deadline - kt_now_ms();
    return r < 0 ? 0 : r > INT_MAX ? INT_MAX : (int)r;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int kt_rmtree(const char *path, bool one_filesystem)
{
    int flags = FTW_DEPTH | FTW_PHYS | (one_filesystem ? FTW_MOUNT : 0);

    if (nftw(path, rm_entry, 16, flags) < 0)
        return errno == ENOENT ? 0 : -errno;
    return 0;
}

void kt_copy_to_stderr(const char *path, const char *what)
{
    char buf[4096];
    size_t n;
    FILE *f = fopen(path, "r");

    if (!f)
        return;
    (void)fprintf(stderr, "---- %s (%s) ----\n", what, path);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        (void)fwrite(buf, 1, n, stderr);
    (void)fprintf(stderr, "---- end of %s ----\n", what);
    (void)fclose(f);
}

void kt_watcher_stop(pid_t *pid, int *fd)
{
    if (*pid <= 0)
        return;
    if (*fd >= 0) {
        (void)!write(*fd, "ok\n", 3);
        (void)close(*fd);
        *fd = -1;
    }
    while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
        ;
    *pid = 0;
}
