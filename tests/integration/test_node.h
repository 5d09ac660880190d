/* test_node.h: the chain test_node runs, cloudsim's view of the node, what the cloud received,
 * kedge-ctl and the raw local query interface. */
#ifndef KEDGE_TESTS_TEST_NODE_H
#define KEDGE_TESTS_TEST_NODE_H

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bridgectl.h"
#include "chain.h"
#include "ctlrun.h"
#include "harness.h"
#include "proc.h"
#include "jsoncmp.h"
#include "kedge/alloc.h"
#include "kedge/json.h"
#include "kedge/msg.h"
#include "simctl.h"
#include "testsupport.h"

#define PAUSE_MS 50   /* between two polls of a deadline loop */
#define WAIT_MS 10000 /* deadline for something that should take milliseconds */
#define NODE "kedge-node"
#define BRIDGE_PASS "n0de-Secret"
#define FIXTURES KEDGE_SOURCE_DIR "/tests/fixtures/"
#define END ((const char *)NULL) /* ends ctl()'s arguments */

struct chain_opts {
    const char *node_namespace;  /* NULL: the bridge's default */
    const char *cloud_version;   /* NULL: the bridge's default (1.15) */
    const char *plugin_db;       /* NULL: the harness's default */
    bool refuse_link;            /* cloudsim refuses the edge from the start */
    const char *kubelet_version; /* NULL: the bridge's default */
};

struct node_view {
    bool found;
    char ready[16], ready_reason[64];
    int64_t registrations, lease_renew_ms;
};

extern struct simctl *sim;
extern struct kh_broker *broker;
extern struct bridgectl *bridge;

int grace_s(void);

char *path_in(const char *dir, const char *name);

/* One text value of a query on a database (NULL when there is no row); malloc'd. */
char *db_text(const char *path, const char *sql);

void wait_connected(void);

void sim_start_for_node(void);

void chain_up(const struct chain_opts *co);

void teardown(void);

void node_view(struct node_view *v);

void wait_ready(const char *want, int timeout_ms, struct node_view *v);

/* Messages from the edge with this operation and resource (NULL: any) after index since. */
int count_received(const char *op, const char *resource, const char *content_has);

void wait_received(const char *op, const char *resource, int at_least);

/* kedge-ctl -p PORT -P PWFILE -t T args... */
void ctl(struct ctl_run *r, const char *first, ...);

/* Ask $ke/meta/{ref} with the bridge identity; the answer's payload (malloc'd). */
char *meta_raw(const char *body);

void expect_json(const char *actual, const char *expected);

/* test_node_query.c: local queries; a Device from the cloud */
void node_add_query_tests(TCase *tc);

#endif
