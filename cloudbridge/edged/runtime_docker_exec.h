/* Exec through the Docker Engine API (runtime_docker_exec.c), and the small pieces the
 * runtime_docker*.c files share. Not for use outside them. */
#ifndef KEDGE_EDGED_RUNTIME_DOCKER_EXEC_H
#define KEDGE_EDGED_RUNTIME_DOCKER_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "runtime.h"

struct docker_exec;

/* The runs in flight of one runtime. */
struct docker_execs {
    struct docker_exec *head;
    long last_handle;
};

/* The runtime's exec op (runtime.h) on engine e. */
long docker_exec(struct docker_execs *x, struct engine *e, const char *id, char *const *argv,
                 size_t argc, int timeout_ms, runtime_exec_fn done, void *ctx);
void docker_exec_cancel(struct docker_execs *x, long handle);

/* Whether s[0..n) can be an engine id (container or exec) and so go into a path as it is. */
bool docker_id_ok(const char *s, size_t n);
/* The engine's message from an error body ({"message":...}), or what answered: for a log
 * line or a why. */
void docker_engine_message(const struct engine_reply *r, char *out, size_t n);

#endif
