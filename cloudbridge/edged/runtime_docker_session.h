/* Interactive sessions through the Docker Engine API (runtime_docker_session.c): the runtime's
 * exec_session, attach_session and session_* ops (runtime.h), for runtime_docker.c only. */
#ifndef KEDGE_EDGED_RUNTIME_DOCKER_SESSION_H
#define KEDGE_EDGED_RUNTIME_DOCKER_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

#include "engine.h"
#include "runtime.h"

struct docker_session;

/* The sessions of one runtime and what they need: the engine client for the side calls, the
 * loop (timers) and the vhost and socket for their own connections. */
struct docker_sessions {
    struct docker_session *head;
    long last_handle;
    struct engine *e;
    struct lws_context *lws;
    struct lws_vhost *vhost;
    char *socket_path;
    bool stopping;
};

/* 0 or -ENOMEM (socket_path is copied). */
int docker_sessions_init(struct docker_sessions *x, struct engine *e, struct lws_context *lws,
                         struct lws_vhost *vhost, const char *socket_path);
/* Before the loop goes away: no new timers; a session whose stream ends from now on ends with
 * -ECANCELED. */
void docker_sessions_stop(struct docker_sessions *x);
/* After engine_free: every session still there ends (-ECANCELED) and is freed. */
void docker_sessions_free(struct docker_sessions *x);

long docker_exec_session(struct docker_sessions *x, const char *id, char *const *argv, size_t argc,
                         const struct runtime_stdio *io, const struct runtime_session_fns *fns,
                         void *ctx);
long docker_attach_session(struct docker_sessions *x, const char *id,
                           const struct runtime_stdio *io, const struct runtime_session_fns *fns,
                           void *ctx);
int docker_session_stdin(struct docker_sessions *x, long handle, const char *b, size_t n);
int docker_session_close_stdin(struct docker_sessions *x, long handle);
int docker_session_resize(struct docker_sessions *x, long handle, unsigned width, unsigned height);
void docker_session_pause(struct docker_sessions *x, long handle, bool pause);
void docker_session_cancel(struct docker_sessions *x, long handle);

#endif
