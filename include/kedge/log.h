/* Logging: one macro, a level check before any formatting, and a sink each binary installs
 * (the plugin forwards to mosquitto_log_printf). Without one, lines go to stderr (or the file
 * kedge_log_open_file opened) as "2026-12-06T15:25:01.123Z warn   relay: ...", UTC with
 * milliseconds; under systemd, whose journal stamps lines itself, as "<4>relay: ..." so that the
 * journal knows the level.
 *
 * Lines start with the module ("twin: ", "store: ") and carry key=value fields. Payloads appear
 * only at debug level. kedge_log_limited() rate-limits one noisy source ("suppressed N").
 */
#ifndef KEDGE_LOG_H
#define KEDGE_LOG_H

#include <stdint.h>

enum kedge_log_level {
    KEDGE_LOG_ERR = 0,
    KEDGE_LOG_WARN = 1,
    KEDGE_LOG_NOTICE = 2,
    KEDGE_LOG_INFO = 3,
    KEDGE_LOG_DEBUG = 4,
};

/* The levels as the plugin's and the bridge's configs spell them, indexed by level,
 * NULL-terminated: "err", "warn", "notice", "info", "debug". */
extern const char *const kedge_log_level_names[];
/* The level a name says; KEDGE_LOG_INFO for any other text (the configs check it first). */
int kedge_log_level_named(const char *name);

typedef void (*kedge_log_sink)(int level, const char *line);

extern int kedge_log_level_max; /* lines above this level are dropped before formatting */

void kedge_log_set_sink(kedge_log_sink sink); /* NULL: stderr */
/* The default sink appends to path (created 0640) instead of stderr. 0 or -errno. */
int kedge_log_open_file(const char *path);
void kedge_log_printf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define kedge_log(level, ...)                                                                      \
    do {                                                                                           \
        if ((level) <= kedge_log_level_max)                                                        \
            kedge_log_printf((level), __VA_ARGS__);                                                \
    } while (0)

/* Rate limit for one source of repeated lines: at most `burst` lines per `interval_ms`. */
struct kedge_ratelimit {
    uint64_t window_start_ms;
    unsigned interval_ms, burst, printed, suppressed;
};
#define KEDGE_RATELIMIT_INIT(interval_ms, burst)                                                   \
    {                                                                                              \
        0, (interval_ms), (burst), 0, 0                                                            \
    }

/* Returns 1 if a line may be printed now; when a window with suppressed lines ends, logs
 * "<module>: suppressed N similar lines" once. */
int kedge_ratelimit_ok(struct kedge_ratelimit *rl, const char *module);

#define kedge_log_limited(rl, module, level, ...)                                                  \
    do {                                                                                           \
        if ((level) <= kedge_log_level_max && kedge_ratelimit_ok((rl), (module)))                  \
            kedge_log_printf((level), __VA_ARGS__);                                                \
    } while (0)

#endif
