/* testsupport: the small pieces every process helper of the tests needs (proc.c, harness.c,
 * bridgectl.c, simctl.c, enginectl.c): a monotonic clock for deadlines, removing a scratch
 * tree, reading and showing a log file; a free port and a plain HTTP GET for the suites. Test
 * code only; nothing here is in a shipped binary. */
#ifndef KEDGE_TESTSUPPORT_H
#define KEDGE_TESTSUPPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A diagnostic line for the test's log (stderr). */
void kt_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* CLOCK_MONOTONIC in ms. */
int64_t kt_now_ms(void);
/* ms left until deadline (a kt_now_ms value), clamped to 0..INT_MAX: for poll(). */
int kt_remaining_ms(int64_t deadline);
/* Remove path and everything below it, never following symlinks; one_filesystem: do not
 * descend into other mounts (an engine's overlay). A missing path is fine. 0 or -errno. */
int kt_rmtree(const char *path, bool one_filesystem);
/* Copy a file to stderr between "----- what (path) -----" lines; nothing if it cannot be read
 * or is empty. */
void kt_copy_to_stderr(const char *path, const char *what);
/* A TCP port on 127.0.0.1 that was free a moment ago (bound, read back, closed), or -errno. */
int kt_free_port(void);
/* GET http://127.0.0.1:port{path} over HTTP/1.0 (2 s receive timeout): the body of a 200 reply
 * (malloc'd, NUL-terminated, at most 16 KiB of reply read), or NULL for anything else. */
char *kt_http_get(int port, const char *path) __attribute__((warn_unused_result));
/* environ plus extra ("NAME=value" entries, NULL-terminated, may be NULL), each replacing an
 * entry of the same NAME: a calloc'ed, NULL-terminated array (free it) of borrowed strings, or
 * NULL. Build it before fork: the child of a threaded test may not allocate. */
char **kt_env_with(const char *const *extra);
/* Close every descriptor from lowest up. Async-signal-safe: for a child between fork and exec
 * in a multithreaded test. */
void kt_close_from(int lowest);

/* "dir/name", malloc'd; NULL on allocation failure. */
char *kt_path_join(const char *dir, const char *name);
/* The size of a file, 0 when it cannot be stat'ed (not there yet). */
long kt_file_size(const char *path);
/* The file from byte offset to its end: a malloc'd NUL-terminated string, or NULL (errno). */
char *kt_read_from(const char *path, long offset);
/* Whether the file, from byte offset on, contains needle. */
bool kt_file_contains(const char *path, long offset, const char *needle);
/* Append text to path (created with mode if missing). 0 or -errno. */
int kt_append_text(const char *path, const char *text, mode_t mode);

#endif
