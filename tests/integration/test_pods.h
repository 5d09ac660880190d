/* test_pods.h: the chain test_pods runs (cloudsim, broker + plugin, bridge with Edged, a private
 * engine) and what it reads of pods on both sides. */
#ifndef KEDGE_TESTS_TEST_PODS_H
#define KEDGE_TESTS_TEST_PODS_H

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridgectl.h"
#include "chain.h"
#include "ctlrun.h"
#include "httpc.h"
#include "enginectl.h"
#include "harness.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/util.h"
#include "kedge/json.h"
#include "simctl.h"
#include "proc.h"
#include "testsupport.h"

#define PAUSE_MS 100  /* between two polls of a deadline loop */
#define WAIT_MS 30000 /* pod start-up includes an engine's create + start of two containers */
#define NODE "kedge-pods"
#define ROUTE(op, res)                                                                             \
    "{\"header\":{\"resourceversion\":\"1\"},\"route\":{\"source\":\"edgecontroller\","            \
    "\"group\":\"resource\",\"operation\":\"" op "\",\"resource\":\"" res "\"},\"content\":"

typedef bool (*pod_cond_fn)(const struct kedge_jval *pod, const void *arg);

extern struct enginectl *engine;
extern struct simctl *sim;
extern struct bridgectl *bridge;

void wait_page(int port, const char *want);

__attribute__((format(printf, 1, 2))) void sim_send(const char *fmt, ...);

void send_configmap(const char *name, const char *data_json);

/* The pod as the cloud knows it: GET /object (NULL when absent). */
struct kedge_jdoc *sim_pod(const char *name);

const struct kedge_jval *jpath(const struct kedge_jval *v, const char *a, const char *b,
                               const char *c);

const struct kedge_jval *first_cs(const struct kedge_jval *pod);

bool str_is(const struct kedge_jval *v, const char *s);

int64_t num(const struct kedge_jval *v);

/* Wait until the cloud's pod satisfies cond; the last status is printed when it does not. */
void wait_pod(const char *name, pod_cond_fn cond, const void *arg, const char *what);

bool running_ready(const struct kedge_jval *pod, const void *arg);

bool restarted(const struct kedge_jval *pod, const void *arg);

bool waiting_message(const struct kedge_jval *pod, const void *arg);

bool waiting_reason(const struct kedge_jval *pod, const void *arg);

/* The engine's containers of a pod, by UID label. */
int pod_containers(const char *uid, char ids[][80], int max);

void wait_containers(const char *uid, int want);

/* The app container's id and labels (the one named `cname`). */
void app_container(const char *uid, const char *cname, char *id, size_t len,
                   struct kedge_buf *labels);

void kill_app(const char *uid, const char *cname);

void bset(const char *key, const char *value);

void chain_up(const char *engine_socket);
/* The same with another pod_infra_image (NULL: localhost/pause:edge) and more bridge settings
 * (key, value, ..., NULL; may be NULL). */
void chain_up_with(const char *engine_socket, const char *infra_image, const char *const *extra);
int chain_broker_port(void);

void teardown(void);

bool skip_without_engine(void);
/* kedge-ctl against this chain (ctlrun.h). */
void pods_ctl(struct ctl_run *r, const char *first, ...);

/* The web pod: busybox httpd serving /www (a configMap) on hostPort `port`. */
void send_web_pod(const char *name, const char *uid, int port, const char *op);

/* The node's containerRuntimeVersion (kubelet's <runtime>://<version>) starts with prefix,
 * and has a version after it. */
void wait_runtime_version(const char *prefix);
const char *engine_runtime_prefix(void);

/* test_pods_lifecycle.c: restart policies, init containers, liveness; graceful delete */
void pods_add_lifecycle_tests(TCase *tc);

bool phase_is(const struct kedge_jval *pod, const void *arg);

void send_simple_pod(const char *name, const char *image, const char *extra_container,
                     const char *volumes);

#endif
