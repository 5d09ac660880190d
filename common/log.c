/* The log sink switch, the default sink and the rate limiter behind include/kedge/log.h. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kedge/log.h"
#include "kedge/util.h"

int kedge_log_level_max = KEDGE_LOG_INFO;
const char *const kedge_log_level_names[] = {"err", "warn", "notice", "info", "debug", NULL};

int kedge_log_level_named(const char *name)
{
    int i;

    for (i = 0; kedge_log_level_names[i]; i++)
        if (!strcmp(name, kedge_log_level_names[i]))
            return i;
    return KEDGE_LOG_INFO;
}
static kedge_log_sink current_sink;
static int log_fd = STDERR_FILENO;

void kedge_log_set_sink(kedge_log_sink sink)
{
    current_sink = sink;
}

int kedge_log_open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

    if (fd < 0)
        return -errno;
    if (log_fd != STDERR_FILENO)
        (void)close(log_fd);
    log_fd = fd;
    return 0;
}

/* systemd connected stderr to the journal: JOURNAL_STREAM names stderr's device and inode
 * (systemd.exec(5)). The journal stamps lines itself and reads "<N>" as the priority. */
static bool to_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    return log_fd == STDERR_FILENO && js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
           fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

/* "2026-12-06T15:25:01.123Z warn relay: ..." (UTC, milliseconds), or "<4>relay: ..." for the
 * journal; one write() per line, so lines from a file's other writers do not interleave. */
static void default_sink(int level, const char *line)
{
    static const int syslog_prio[] = {3, 4, 5, 6, 7};
    char head[64];
    struct timespec ts;
    struct tm tm;
    int n;

    if (level < KEDGE_LOG_ERR || level > KEDGE_LOG_DEBUG)
        level = KEDGE_LOG_INFO;
    if (to_journal()) {
        n = snprintf(head, sizeof(head), "<%d>", syslog_prio[level]);
    } else {
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        (void)gmtime_r(&ts.tv_sec, &tm);
        n = (int)strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm);
        n += snprintf(head + n, sizeof(head) - (size_t)n, ".%03ldZ %-6s ", ts.tv_nsec / 1000000,
                      kedge_log_level_names[level]);
    }
    (void)dprintf(log_fd, "%s%s\n", head, line); /* nowhere to report a failed log write */
}

void kedge_log_printf(int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap); /* truncation is fine for a log line */
    va_end(ap);
    (current_sink ? current_sink : default_sink)(level, line);
}

int kedge_ratelimit_ok(struct kedge_ratelimit *rl, const char *module)
{
    uint64_t now = kedge_now_ms();

    if (now - rl->window_start_ms >= rl->interval_ms) {
        if (rl->suppressed)
            kedge_log(KEDGE_LOG_WARN, "%s: suppressed %u similar lines", module, rl->suppressed);
        rl->window_start_ms = now;
        rl->printed = 0;
        rl->suppressed = 0;
    }
    if (rl->printed < rl->burst) {
        rl->printed++;
        return 1;
    }
    rl->suppressed++;
    return 0;
}
