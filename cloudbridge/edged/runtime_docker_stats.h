/* A container's usage sample through the Docker Engine API (runtime_docker_stats.c), for
 * runtime_docker.c only; the parser is exposed for the unit tests. */
#ifndef KEDGE_EDGED_RUNTIME_DOCKER_STATS_H
#define KEDGE_EDGED_RUNTIME_DOCKER_STATS_H

#include <stddef.h>

#include "engine.h"
#include "runtime.h"

/* The runtime's stats op (runtime.h) on engine e: GET /containers/{id}/stats?stream=false
 * &one-shot=true. id is checked (one that cannot be an id ends with -ENOENT, answered at once).
 * 0, or -ENOMEM (nothing is called). */
int docker_stats(struct engine *e, const char *id, runtime_stats_fn done, void *ctx);

/* The body of a stats answer into s. 0, KEDGE_EPARSE (not JSON), KEDGE_ESCHEMA (no cpu_stats
 * or memory_stats object: not a stats answer), -ENOMEM. */
int docker_stats_parse(const char *json, size_t len, struct runtime_stats *s);

#endif
