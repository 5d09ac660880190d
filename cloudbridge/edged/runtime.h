/* The container runtime as Edged sees it: kubelet's runtime interface, as an ops table.
 *
 * Edged asks for sandboxes (the pod's infra container, holding its network) and containers,
 * lists and inspects what exists, checks and pulls images, runs commands inside containers
 * (exec probes) and reads a container's output (logs, for `kubectl logs`). Every call is
 * asynchronous on the bridge's one event loop: `done` is called exactly once, also when the runtime
 * could not be reached, and it may be called before the call returns (a refused connection is
 * answered at once). A call that returns a negative code started nothing and calls nothing.
 *
 * The runtime knows nothing of pods beyond what a create needs (struct runtime_create); Edged
 * knows nothing of the runtime's wire format. runtime_docker.c is the Docker Engine API behind
 * this table; a second runtime is one new file that fills it.
 */
#ifndef KEDGE_EDGED_RUNTIME_H
#define KEDGE_EDGED_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "podspec.h"

/* What the runtime reports of one container (inspect). Strings are owned by whoever holds
 * the struct (observed_container_cleanup frees them). */
struct observed_container {
    char *id, *name; /* runtime id; the spec's container name ("POD" for the sandbox) */
    char *image, *image_id;
    int attempt; /* the restart count the container was made with */
    uint32_t hash;
    bool running;
    char *state; /* created|running|exited|stopped|... */
    int exit_code;
    bool oom_killed;
    char *error;                     /* the runtime's error for it ("" none) */
    int64_t started_ms, finished_ms; /* 0: never */
    int64_t created_ms;
    char *ip; /* the sandbox's pod IP (NULL: none yet) */
};

void observed_container_cleanup(struct observed_container *o);
/* A deep copy of src into dst. 0, or -ENOMEM (dst then empty). */
int observed_container_copy(struct observed_container *dst, const struct observed_container *src);

/* One container of a list: enough to match it to a pod and to tell whether it changed since
 * it was inspected. */
struct runtime_listed {
    const char *id, *pod_uid, *name; /* name: the spec's container name or "POD" */
    const char *state;               /* opaque: a different value means inspect again */
    bool sandbox;
};

/* The outcome of a call. */
enum runtime_outcome {
    RT_OK,
    RT_NOT_FOUND,   /* no such container (inspect, remove) or image (create) */
    RT_CONFLICT,    /* create: the name is taken (a list older than the runtime) */
    RT_UNREACHABLE, /* no answer: the runtime is down, slow or refused the connection */
    RT_FAILED,      /* the runtime answered with an error */
    RT_CANCELLED,   /* the runtime client is being freed */
};

struct runtime_result {
    enum runtime_outcome outcome;
    const char *message; /* for a failure: the reason a user reads in the pod status; never NULL */
    const char *id;      /* create: the new container's id */
    bool present;        /* image_present */
    const char *text;    /* version: "<runtime>://<version>" */
    const struct observed_container *inspected; /* inspect */
    const struct runtime_listed *listed;        /* list */
    size_t n_listed;
};

typedef void (*runtime_done_fn)(void *ctx, const struct runtime_result *r);

/* The result of running a command in a container. */
struct runtime_exec_result {
    int err;            /* 0: it ran (exit_code, output); -ETIMEDOUT; other: see reason */
    const char *reason; /* err other than 0 / -ETIMEDOUT: why it could not run */
    int exit_code;
    const char *output; /* stdout and stderr, cut at a small size; never NULL */
    size_t output_len;
};

typedef void (*runtime_exec_fn)(void *ctx, const struct runtime_exec_result *r);

/* A container's output, as kubelet's ContainerLogs serves `kubectl logs` (PodLogOptions in
 * k8s.io/api core/v1, made the CRI's LogOptions by NewLogOptions in kubelet's
 * pkg/kubelet/kuberuntime/logs/logs.go):
 *   follow      <- Follow (-f): keep streaming until the container ends or logs_cancel;
 *   tail_lines  <- TailLines (--tail): the last n lines only; -1 all (kubelet's default);
 *   since_s     <- SinceSeconds / SinceTime (--since, --since-time), the later of the two as a
 *                  Unix time in seconds; 0 from the start;
 *   timestamps  <- Timestamps (--timestamps): each line starts with the runtime's RFC 3339 time
 *                  and a space.
 * Previous (-p) is the caller's choice of container id; LimitBytes the caller cuts itself. */
struct runtime_log_options {
    bool follow;
    long tail_lines;
    int64_t since_s;
    bool timestamps;
};

enum runtime_log_stream { RT_STDOUT = 1, RT_STDERR = 2 };

/* Bytes the container wrote to one stream, in order; not cut at lines. A container with a TTY
 * has one stream: all of it comes as RT_STDOUT. */
typedef void (*runtime_log_chunk_fn)(void *ctx, enum runtime_log_stream stream, const char *bytes,
                                     size_t len);
/* The end: err 0 (all of it, or the followed container ended), -ENOENT (no such container),
 * -ECANCELED (the runtime is being freed), or another negative code with the runtime's message
 * (never NULL). */
typedef void (*runtime_log_end_fn)(void *ctx, int err, const char *message);

/* What an interactive session has: stdin, stdout, stderr, a TTY (kubectl exec -i -t). */
struct runtime_stdio {
    bool in, out, err, tty;
};

struct runtime_session_fns {
    /* Output of the process: RT_STDOUT or RT_STDERR (with a TTY all of it is RT_STDOUT). */
    void (*output)(void *ctx, enum runtime_log_stream stream, const char *bytes, size_t len);
    /* Once. err 0: the process ended with exit_code (attach: the container's, -1 unknown);
     * err < 0: it could not start or the runtime went away; message is the runtime's reason
     * (never NULL). */
    void (*end)(void *ctx, int err, int exit_code, const char *message);
};

/* One sample of a container's resource usage, as kubelet's summary needs it (the Docker
 * Engine's GET /containers/{id}/stats; cadvisor's names in the comments). A field the runtime
 * did not report is 0 with its has_ flag false. */
struct runtime_stats {
    int64_t time_ms;          /* when the runtime read the sample (Unix ms) */
    uint64_t cpu_usage_ns;    /* cumulative CPU time of all cores (cpuacct usage) */
    uint64_t mem_usage;       /* bytes in use, page cache included (memory.usage_in_bytes) */
    uint64_t mem_working_set; /* usage - inactive file pages, floor 0 (cadvisor's working set) */
    uint64_t mem_rss;         /* anonymous and swap cache (total_rss, v2 anon) */
    uint64_t mem_limit;       /* the runtime's limit; the host's memory when unlimited */
    uint64_t page_faults, major_page_faults;
    bool has_cpu, has_mem, has_rss, has_limit, has_faults;
};

/* The end of a stats call: err 0 and s; -ENOENT (no such container); -ECANCELED (the runtime
 * is being freed); another negative code with the runtime's message (never NULL). */
typedef void (*runtime_stats_fn)(void *ctx, int err, const struct runtime_stats *s,
                                 const char *message);

/* Containers changed (a hint to list again); up: the runtime's event source came or went. */
typedef void (*runtime_changed_fn)(void *ctx);
typedef void (*runtime_up_fn)(void *ctx, bool up);

/* What a create needs: the pod, the container (NULL: the sandbox), and what the container's
 * environment and mounts refer to. */
struct runtime_create {
    const struct pod_spec *pod;
    const struct pod_container *c; /* NULL: the sandbox */
    const char *sandbox_id;        /* containers: the sandbox whose network they join */
    const char *pod_ip, *host_ip;  /* for fieldRef status.podIP / status.hostIP */
    const char *volumes_dir;       /* {pods_dir}/{uid}/volumes: binds are {dir}/{volume}[/sub] */
    int attempt;                   /* the restart count, kept by the runtime with it */
    podspec_lookup_fn lookup;      /* configMaps and secrets for the environment */
    void *lookup_ctx;
};

/* Credentials for a pull (CRI's AuthConfig): what kubelet's keyring found for the image; server
 * is the registry's host ("127.0.0.1:5000", "docker.io"). Borrowed for the call only: the
 * runtime copies what it sends. */
struct runtime_auth {
    const char *username, *password, *server;
};

struct runtime_ops {
    /* Make the pod's sandbox (not started: start_container starts it). A create that cannot
     * be built (a missing configMap key, say) answers nothing and returns KEDGE_ESCHEMA with
     * why set to kubelet's message; other returns as for every call. */
    int (*create_sandbox)(void *rt, const struct runtime_create *cc, char *why, size_t why_len,
                          runtime_done_fn done, void *ctx);
    int (*create_container)(void *rt, const struct runtime_create *cc, char *why, size_t why_len,
                            runtime_done_fn done, void *ctx);
    int (*start_container)(void *rt, const char *id, runtime_done_fn done, void *ctx);
    /* Send a signal ("TERM", "KILL"): Edged times the grace period itself. */
    int (*kill_container)(void *rt, const char *id, const char *signal, runtime_done_fn done,
                          void *ctx);
    /* Remove a container (a sandbox too), stopping it if it runs; done may be NULL. */
    int (*remove_container)(void *rt, const char *id, runtime_done_fn done, void *ctx);
    /* The containers this node's runtime holds for Edged (all states). */
    int (*list)(void *rt, runtime_done_fn done, void *ctx);
    int (*inspect)(void *rt, const char *id, runtime_done_fn done, void *ctx);
    int (*image_present)(void *rt, const char *image, runtime_done_fn done, void *ctx);
    /* Pull image (a reference without a tag: ":latest"), with auth (NULL: anonymous). The
     * pull streams: a large one holds no memory and no loop time beyond its progress lines.
     * RT_FAILED with the registry's reason (the engine's error, whether it answered an HTTP
     * error or put it in the progress stream). */
    int (*pull_image)(void *rt, const char *image, const struct runtime_auth *auth,
                      runtime_done_fn done, void *ctx);
    /* The runtime's name and version, kubelet's containerRuntimeVersion. */
    int (*version)(void *rt, runtime_done_fn done, void *ctx);
    /* Follow the runtime's container events from now on. */
    int (*watch)(void *rt, runtime_changed_fn changed, runtime_up_fn up, void *ctx);
    /* Run argv in container id within timeout_ms. Returns a handle (> 0): done is called once
     * unless exec_cancel(handle) comes first; or a negative code (nothing runs). */
    long (*exec)(void *rt, const char *id, char *const *argv, size_t argc, int timeout_ms,
                 runtime_exec_fn done, void *ctx);
    void (*exec_cancel)(void *rt, long handle);
    /* Container id's output as o says: chunk for each piece as it arrives, then end once,
     * unless logs_cancel(handle) comes first. Returns a handle (> 0), or a negative code
     * (nothing is called). end may come before it returns (the runtime refused at once). */
    long (*logs)(void *rt, const char *id, const struct runtime_log_options *o,
                 runtime_log_chunk_fn chunk, runtime_log_end_fn end, void *ctx);
    /* Stop reading (a follow too): no chunk or end is called for handle any more. Safe from
     * inside chunk. */
    void (*logs_cancel)(void *rt, long handle);
    /* Backpressure for a logs stream: while paused no chunk (and no end) is delivered, also
     * from inside chunk; the runtime stops reading its source (the Docker runtime after
     * holding a few MB, so a stream ending meanwhile is not cut). */
    void (*logs_pause)(void *rt, long handle, bool pause);
    /* An interactive process in container id: exec_session runs argv (kubectl exec),
     * attach_session joins the container's main process (kubectl attach). io says which of
     * stdin, stdout, stderr it has and whether it has a TTY. Returns a handle (> 0): fns->output
     * for each piece of output, then fns->end once, unless session_cancel comes first; or a
     * negative code (nothing is called). end may come before it returns. */
    long (*exec_session)(void *rt, const char *id, char *const *argv, size_t argc,
                         const struct runtime_stdio *io, const struct runtime_session_fns *fns,
                         void *ctx);
    long (*attach_session)(void *rt, const char *id, const struct runtime_stdio *io,
                           const struct runtime_session_fns *fns, void *ctx);
    /* Bytes for the process's stdin, buffered in order: 0, -ENOMEM or -ENOENT (no session, or
     * stdin closed). Bytes for a process that closed its stdin are dropped, as a pipe does. */
    int (*session_stdin)(void *rt, long handle, const char *b, size_t n);
    /* EOF on the process's stdin once what is buffered is written. */
    int (*session_close_stdin)(void *rt, long handle);
    /* The TTY's new size (a session with tty). */
    int (*session_resize)(void *rt, long handle, unsigned width, unsigned height);
    /* Backpressure: while paused no output (and no end) is delivered, also from inside
     * output; the runtime stops reading the process's output. */
    void (*session_pause)(void *rt, long handle, bool pause);
    /* End the session (the process of an exec is left to finish on its own, as kubelet
     * does); no callback any more. Safe from inside a callback. */
    void (*session_cancel)(void *rt, long handle);
    /* One usage sample of container id (kubelet's /stats/summary, /metrics/resource): done
     * once, also when the runtime cannot answer. 0, or a negative code (nothing is called). */
    int (*stats)(void *rt, const char *id, runtime_stats_fn done, void *ctx);
    /* Before the loop goes away: no new timers. */
    void (*stop)(void *rt);
    /* Every call in flight completes (RT_CANCELLED; exec and logs: -ECANCELED unless
     * cancelled), then the runtime is gone. */
    void (*free)(void *rt);
};

struct runtime {
    const struct runtime_ops *ops;
    void *rt;
};

#endif
