/* test_pull.h: test_pull's chain (test_pods' plus a registry, registryctl.h) and what it reads
 * of the status patches the cloud received. */
#ifndef KEDGE_TESTS_TEST_PULL_H
#define KEDGE_TESTS_TEST_PULL_H

#include "jsoncmp.h"
#include "registryctl.h"
#include "test_pods.h"

#define SECRET "regcred"

#define RUNNING_STATE                                                                              \
    "{\"waiting\":null,\"running\":{\"startedAt\":\"<time>\"},\"terminated\":null}"

extern struct registryctl *reg;

/* A message on stderr and true when there is no engine or no registry here. */
bool skip_pull_tests(void);
/* <registry>/<path> into buf. */
const char *ref(char *buf, size_t n, const char *path);
/* Stop the registry and the chain (test_pods' teardown); assert both stopped cleanly. */
void pull_teardown(void);
/* The chain with a short image back-off (1 s, at most 4 s), keepalive_s (NULL: the default). */
void chain_up_pull(const char *infra_image, const char *keepalive_s);
/* The engine, the registry with busybox as kedge/busybox:v1 and :never and pause as
 * kedge/pause:v1, then the chain; its sandbox image kedge/pause:v1 when infra_from_registry. */
void pull_chain_up(bool infra_from_registry, const char *keepalive_s);
/* A kubernetes.io/dockerconfigjson Secret for the registry, sent down by the cloud. */
void send_pull_secret(const char *name, const char *password);
/* A pod of one container `c` (sleep 600) with image and policy, imagePullSecrets [secret]
 * unless secret is NULL. */
void send_pull_pod(const char *name, const char *image, const char *policy, const char *secret);
/* The newest /received index (-1 when nothing). */
long long received_top(void);
bool image_in_engine(const char *image);
/* How many times the registry answered for the manifest of path (e.g. "kedge/busybox") by tag. */
int manifest_gets(const char *path, const char *tag);

struct patches {
    char *status[64]; /* each podpatch's content: {"metadata":{"uid"},"status":{...}}, in order */
    long long index[64];
    int n;
};

void patches_free(struct patches *p);
/* Every status patch of pod `name` the cloud received after /received index `after`. */
void pod_patches(const char *name, long long after, struct patches *out);
void print_patches(const char *name, const struct patches *p);
/* The first patch from `from` on whose text contains needle; -1 when none. */
int find_patch(const struct patches *p, int from, const char *needle);
/* Patch i matches the jsoncmp template tpl (objects by exact key set: null keys too). */
void expect_patch(const char *name, const struct patches *p, int i, const char *tpl);
/* The exact patch of pod uid-<name> with container "c" (see test_pull_fixture.c). */
void status_tpl(struct kedge_buf *b, const char *name, const char *phase, const char *image,
                const char *state, bool ready, bool running);
/* A container state object: waiting with reason and message. */
void waiting_state(char *out, size_t n, const char *reason, const char *message);
/* The engine's message for credentials the registry refused, as Edged passes it on. */
void denied_message(char *out, size_t n, const char *image, const char *repo);
/* A pod_cond_fn: the cloud's Pod has no status.message (or a null one). */
bool no_pod_message(const struct kedge_jval *pod, const void *arg);

/* test_pull_big.c: the large pull while the bridge's loop goes on. */
void pull_add_big_tests(Suite *s);

#endif
