/* The log sink switch and the rate limiter behind include/kedge/log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

void kedge_log_set_sink(kedge_log_sink sink)
{
    current_sink = sink;
}

void kedge_log_printf(int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap); /* truncation is fine for a log line */
    va_end(ap);
    if (current_sink) {
        current_sink(level, line);
        return;
    }
    (void)fprintf(stderr, "%s\n", line);
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
