/* Logs through the Docker Engine API (runtime_docker_logs.c), for runtime_docker.c only. */
#ifndef KEDGE_EDGED_RUNTIME_DOCKER_LOGS_H
#define KEDGE_EDGED_RUNTIME_DOCKER_LOGS_H

#include "engine.h"
#include "runtime.h"

struct docker_log;

/* The log streams open on one runtime. */
struct docker_logs {
    struct docker_log *head;
    long last_handle;
};

/* The runtime's logs op (runtime.h) on engine e; id is the container's id or name (the path
 * is built here, so id is checked: an id that cannot be one ends with -ENOENT). */
long docker_logs(struct docker_logs *x, struct engine *e, const char *id,
                 const struct runtime_log_options *o, runtime_log_chunk_fn chunk,
                 runtime_log_end_fn end, void *ctx);
void docker_logs_cancel(struct docker_logs *x, long handle);
/* After engine_free: the streams still there (paused with their end held) end, -ECANCELED. */
void docker_logs_free(struct docker_logs *x);
/* Backpressure: stop or resume reading handle's stream. */
void docker_logs_pause(struct docker_logs *x, long handle, bool pause);

#endif
