/* The engine stub of unit_runtime_docker (runtime_docker_stub.c): engine.h's client replaced by
 * one that records each request and answers when the test says so, and what the runtime
 * answered. Shared by test_runtime_docker.c (the ops) and test_runtime_docker_logs.c (logs and
 * sessions); one test binary, so the state is plain file-scope data.
 */
#ifndef KEDGE_TESTS_RUNTIME_DOCKER_STUB_H
#define KEDGE_TESTS_RUNTIME_DOCKER_STUB_H

#include <stdbool.h>
#include <stddef.h>

#include <check.h>

#include "engine.h"
#include "runtime_docker.h"

struct call {
    char method[8], path[512], body[4096];
    int timeout_ms;
    engine_done_fn done;
    void *ctx;
};
extern struct call calls[16];
extern int n_calls;
extern char watch_path[512];

/* The one stream open at a time (logs): what was asked, and the test feeds it. */
struct engine_stream_stub {
    int n;
    char path[512];
    const struct engine_stream_fns *fns;
    void *ctx;
    bool cancelled, paused;
    int refuse; /* an error: done is called inside engine_stream, as a refused connect does */
};
extern struct engine_stream_stub es;

/* A pull: a POST stream with its headers, recorded; the test answers through es. */
struct pull_stub {
    char method[8], path[512], auth[1024];
    size_t n_headers;
};
extern struct pull_stub pulled;

void feed(const char *b, size_t len);
void stream_end(int status, int err, const char *body);
void answer(int i, int status, int err, const char *body);

struct got {
    int calls;
    enum runtime_outcome outcome;
    char message[512], id[64], text[64];
    bool present;
    struct observed_container o;
    struct runtime_listed l[4];
    char l_ids[4][32], l_names[4][32], l_uids[4][32], l_states[4][32];
    size_t n_listed;
};
void got(void *ctx, const struct runtime_result *r);

extern struct runtime rt;
extern bool rt_freed;
/* The checked fixture: a fresh runtime on the stub, no allocation left after. */
void setup(void);
void teardown(void);

#endif
