/* A fake container runtime for Edged's tests (kubelet's FakeRuntime is the model): it keeps a
 * world of containers, records every call, answers at once, and lets the test change what the
 * next list and inspect observe (a container exiting, say) and fire the runtime's events.
 */
#ifndef KEDGE_TEST_FAKE_RUNTIME_H
#define KEDGE_TEST_FAKE_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime.h"

#define FAKE_MAX_CONTAINERS 32
#define FAKE_MAX_CALLS 256
#define FAKE_MAX_LOG 8
#define FAKE_MAX_SESSIONS 4
#define FAKE_SESSION_BYTES 4096

struct fake_container {
    char id[16], pod_uid[64], name[64], image[128];
    bool sandbox, running, exists;
    int attempt, exit_code;
    uint32_t hash;
    const char *state; /* "created" | "running" | "exited" */
    int64_t created_ms, started_ms, finished_ms;
};

enum fake_call_kind {
    FAKE_CREATE_SANDBOX,
    FAKE_CREATE,
    FAKE_START,
    FAKE_KILL,
    FAKE_REMOVE,
    FAKE_LIST,
    FAKE_INSPECT,
    FAKE_IMAGE,
    FAKE_PULL,
    FAKE_VERSION,
    FAKE_WATCH,
    FAKE_LOGS,
    FAKE_LOGS_CANCEL,
    FAKE_LOGS_PAUSE,     /* attempt: 1 pause, 0 resume */
    FAKE_EXEC_SESSION,   /* arg: "<id> <argv joined by spaces>" */
    FAKE_ATTACH_SESSION, /* arg: the id */
    FAKE_SESSION_CANCEL,
    FAKE_STOP,
    FAKE_FREE,
    FAKE_STATS, /* arg: the id */
};

struct fake_call {
    enum fake_call_kind kind;
    char arg[128]; /* the container id, name (create: the container's name), image, signal */
    int attempt;   /* create */
};

/* One piece of a container's output, as logs serves it. */
struct fake_log_chunk {
    enum runtime_log_stream stream;
    const char *bytes;
};

/* An interactive session (exec_session / attach_session): what the caller sent is recorded;
 * its output and end come when the test says (fake_session_output, fake_session_end), or, with
 * echo, stdin comes back as stdout and close_stdin ends it with exit code 0 (like `cat`). */
struct fake_session {
    long handle; /* 0: the slot is free */
    bool attach;
    char id[16];
    char argv[128]; /* joined by spaces */
    struct runtime_stdio io;
    struct runtime_session_fns fns;
    void *ctx;
    char in[FAKE_SESSION_BYTES]; /* stdin as written, in order */
    size_t in_len;
    bool stdin_closed, paused, cancelled, ended;
    unsigned width, height; /* the last resize */
    int resizes;
    /* output held while paused, delivered on resume */
    char held[FAKE_SESSION_BYTES];
    size_t held_len;
    enum runtime_log_stream held_stream;
};

struct fake_runtime {
    struct fake_container c[FAKE_MAX_CONTAINERS];
    size_t n;
    struct fake_call calls[FAKE_MAX_CALLS];
    size_t n_calls;
    bool image_present;
    const char *pull_error; /* set: every pull fails with it (RT_FAILED) */
    char pull_auth[256];    /* the last pull's credentials: "user:password@server" (":@" none) */
    int next_id;
    runtime_changed_fn changed;
    runtime_up_fn up;
    void *watch_ctx;
    /* logs serves log[] in order, then ends with log_err (a follow stays open instead, until
     * the container exits, fake_log_write adds to it, or it is cancelled) */
    struct fake_log_chunk log[FAKE_MAX_LOG];
    size_t n_log;
    int log_err;
    struct runtime_log_options log_opts; /* the last logs call's */
    long log_handle;                     /* the open follow (0: none) */
    runtime_log_chunk_fn log_chunk;
    runtime_log_end_fn log_end;
    void *log_ctx;
    char log_id[16];
    bool log_paused; /* logs_pause of the open follow */
    struct fake_session sessions[FAKE_MAX_SESSIONS];
    bool session_echo; /* new sessions echo stdin (see struct fake_session) */
    int session_err;   /* new sessions end at once with this (0: they run) */
    const char *session_message;
    bool freed;
    /* stats: a running container's sample is stats_sample, its time now and its cpu grown by
     * stats_step_ns at every call; -ENOENT for one not running. With stats_hold the answers
     * wait for fake_stats_release (free answers them -ECANCELED). */
    struct runtime_stats stats_sample;
    uint64_t stats_step_ns, stats_cpu_ns;
    bool stats_hold;
    struct {
        char id[16];
        runtime_stats_fn done;
        void *ctx;
    } stats_held[FAKE_MAX_CONTAINERS];
    size_t n_stats_held;
};

/* A runtime over f (which outlives it). */
void fake_runtime_init(struct fake_runtime *f, struct runtime *rt);
/* The container called name of pod uid (sandbox: name "POD"), the newest attempt; NULL none. */
struct fake_container *fake_find(struct fake_runtime *f, const char *uid, const char *name);
/* The container exits with code (its state changes; events fire). */
void fake_exit(struct fake_runtime *f, struct fake_container *c, int code);
/* The open follow (if any) gets bytes on stream. */
void fake_log_write(struct fake_runtime *f, enum runtime_log_stream stream, const char *bytes);
/* The session with handle (NULL: none, or it ended / was cancelled and is gone). */
struct fake_session *fake_session(struct fake_runtime *f, long handle);
/* The newest session that has not ended (NULL none). */
struct fake_session *fake_session_last(struct fake_runtime *f);
/* Session output (held while paused); then, with fake_session_end, its end. */
void fake_session_output(struct fake_runtime *f, struct fake_session *s,
                         enum runtime_log_stream stream, const char *bytes);
void fake_session_end(struct fake_runtime *f, struct fake_session *s, int err, int exit_code,
                      const char *message);
/* Answer the held stats calls (err 0: as if not held). */
void fake_stats_release(struct fake_runtime *f, int err);
/* How many calls of kind (with arg, when not NULL) were made since call index from. */
size_t fake_count(const struct fake_runtime *f, size_t from, enum fake_call_kind kind,
                  const char *arg);

#endif
