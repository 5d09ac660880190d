/* Image pulls through the Docker Engine API (runtime_docker_pull.c). Not for use outside
 * runtime_docker*.c. */
#ifndef KEDGE_EDGED_RUNTIME_DOCKER_PULL_H
#define KEDGE_EDGED_RUNTIME_DOCKER_PULL_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "kedge/buf.h"
#include "runtime.h"

/* POST /images/create?fromImage=<image with a tag> on e, streamed, with X-Registry-Auth when
 * auth is given: done once with RT_OK, or RT_FAILED and the registry's reason, RT_UNREACHABLE,
 * RT_CANCELLED (engine_free). 0, or -ENOMEM (done is not called). done may come before it
 * returns (a refused connection). */
int docker_pull(struct engine *e, const char *image, const struct runtime_auth *auth,
                runtime_done_fn done, void *ctx);

/* The path of the pull of image: "/images/create?fromImage=<ref>", a reference without a tag
 * given ":latest" (the API would pull every tag). 0 or -ENOMEM. */
int docker_pull_path(const char *image, struct kedge_buf *out);

/* Percent-encode s for a query string, appended to out. 0 or -ENOMEM. */
int docker_urlencode(struct kedge_buf *out, const char *s);

/* One line of the pull's progress stream (a JSON object): whether it reports the pull failed
 * ({"error": "...", "errorDetail": {"message": "..."}}), the message then in out. */
bool docker_pull_line_error(const char *line, size_t len, char *out, size_t n);

#endif
