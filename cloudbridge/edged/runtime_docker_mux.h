/* Docker's stream framing (runtime_docker_mux.c): the body of logs, exec and attach without a
 * TTY, cut back into stdout and stderr. For runtime_docker*.c only. */
#ifndef KEDGE_EDGED_RUNTIME_DOCKER_MUX_H
#define KEDGE_EDGED_RUNTIME_DOCKER_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"
#include "runtime.h"

#define DOCKER_MUX_HEADER 8

enum docker_mux_mode {
    DOCKER_MUX_UNKNOWN, /* the first 8 bytes decide (logs: a TTY container's output is raw) */
    DOCKER_MUX_FRAMED,
    DOCKER_MUX_RAW, /* a TTY: all of it is stdout */
};

struct docker_mux {
    unsigned char header[DOCKER_MUX_HEADER];
    size_t header_len;
    uint32_t left; /* payload bytes of the current frame still to come */
    enum runtime_log_stream stream;
    enum docker_mux_mode mode;
};

/* A piece of one stream; false: stop here (the reader was cancelled or paused from inside). */
typedef bool (*docker_mux_emit_fn)(void *ctx, enum runtime_log_stream s, const char *b, size_t n);

void docker_mux_init(struct docker_mux *m, enum docker_mux_mode mode);
/* Bytes of the body as they arrive (any split). Returns how many were taken: all, or fewer
 * when emit said stop (the rest is the caller's to feed again later, or to drop). */
size_t docker_mux_feed(struct docker_mux *m, const char *b, size_t n, docker_mux_emit_fn emit,
                       void *ctx);
/* The body ended: raw bytes still held (fewer than a header in UNKNOWN mode) go out. */
void docker_mux_flush(struct docker_mux *m, docker_mux_emit_fn emit, void *ctx);

/* Framed output with backpressure: while paused nothing is emitted. A pause from inside emit
 * (which then returns false) stops the feed there and holds the rest of what was read; the
 * resume emits what is held first. Logs and sessions read their engine connection this way. */
struct docker_paced {
    struct docker_mux mux;
    struct kedge_buf held;
    bool paused;
};

/* emit must return false once paused (or gone: then the rest is dropped). 0 or -ENOMEM. */
int docker_paced_feed(struct docker_paced *p, const char *b, size_t n, docker_mux_emit_fn emit,
                      void *ctx);
/* Not paused any more: what is held goes out (until a pause again). 0 or -ENOMEM. */
int docker_paced_resume(struct docker_paced *p, docker_mux_emit_fn emit, void *ctx);
/* Whether output waits (held, or paused): an end must wait behind it. */
bool docker_paced_waiting(const struct docker_paced *p);
void docker_paced_cleanup(struct docker_paced *p);

#endif
