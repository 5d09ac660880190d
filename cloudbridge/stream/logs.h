/* `kubectl logs` on the tunnel: kubelet's GET /containerLogs/{ns}/{pod}/{container} served
 * from the runtime's logs (runtime.h). The edge sends only the body (cloudcore already wrote
 * 200 and Transfer-Encoding: chunked to the API server), then REMOVE_CONNECT. A request kubelet
 * refuses gets kubelet's error text as the body, the same way.
 */
#ifndef KEDGE_STREAM_LOGS_H
#define KEDGE_STREAM_LOGS_H

#include "session.h"
#include "stream.h"

/* The handler for LOGS_CONNECT; hctx is the struct stream_deps (outlives the session). */
extern const struct stream_handler_ops stream_logs_ops;

/* kubelet's PodLogOptions from the query (pkg/kubelet/server/server.go getContainerLogs, with
 * apimachinery's query conversions and ValidatePodLogOptions). */
struct stream_log_request {
    char ns[256], pod[256], container[256];
    bool follow, timestamps, previous;
    long tail_lines;     /* -1: all */
    int64_t limit_bytes; /* -1: no limit */
    int64_t since_s;     /* Unix seconds, 0: from the start */
};
/* 0, or -EINVAL with kubelet's error body in why. now_s: the clock for sinceSeconds. */
int stream_logs_parse(const char *path, const char *raw_query, int64_t now_s,
                      struct stream_log_request *lr, char *why, size_t why_len);

#endif
