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
    FAKE_STOP,
    FAKE_FREE,
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
    bool freed;
};

/* A runtime over f (which outlives it). */
void fake_runtime_init(struct fake_runtime *f, struct runtime *rt);
/* The container called name of pod uid (sandbox: name "POD"), the newest attempt; NULL none. */
struct fake_container *fake_find(struct fake_runtime *f, const char *uid, const char *name);
/* The container exits with code (its state changes; events fire). */
void fake_exit(struct fake_runtime *f, struct fake_container *c, int code);
/* The open follow (if any) gets bytes on stream. */
void fake_log_write(struct fake_runtime *f, enum runtime_log_stream stream, const char *bytes);
/* How many calls of kind (with arg, when not NULL) were made since call index from. */
size_t fake_count(const struct fake_runtime *f, size_t from, enum fake_call_kind kind,
                  const char *arg);

#endif
