/* test_stream's parts (test_stream.c: logs and the tunnel; test_stream_exec.c: exec and
 * attach) share the chain and the bridge's figures. */
#ifndef KEDGE_TESTS_TEST_STREAM_H
#define KEDGE_TESTS_TEST_STREAM_H

#include "test_pods.h"

/* A sample of the bridge's /metrics, -1 when absent; wait until it is want. */
double metric(const char *name);
void wait_metric(const char *name, double want, const char *what);
/* test_pods' chain, and the bridge's tunnel to cloudsim up. */
void stream_chain_up(void);
/* Pod name (uid "uid-<name>") with one container "c" running sh -c script. */
void send_pod(const char *name, const char *policy, const char *script);
/* A number of cloudsim's GET /stream. */
int64_t sim_stream(const char *key);

/* The exec/attach TCase (test_stream_exec.c). */
void stream_exec_tcase(Suite *s);
/* Read what fd has within timeout_ms into `into`: 1 something came, 0 nothing, -1 the peer
 * closed (then *eof is set and every later call returns -1). */
int stream_read(int fd, bool *eof, struct kedge_buf *into, int timeout_ms);

#endif
