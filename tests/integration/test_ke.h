/* test_ke.h: the broker and the stand-in bridge client test_ke drives the $ke/ contract with, JSON
 * templates and devices. */
#ifndef KEDGE_TESTS_TEST_KE_H
#define KEDGE_TESTS_TEST_KE_H

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "proc.h"
#include "jsoncmp.h"
#include "kedge/json.h"
#include "kedge/msg.h"

#define WAIT_MS 5000 /* deadline for something that must arrive */
#define QUIET_MS 300 /* how long "nothing arrives" is watched */
#define NODE "kedge-node"
#define BRIDGE_USER "kedge-bridge"
#define BRIDGE_PASS "br1dge-Secret"
#define BRIDGE_ID "test-bridge"
#define DEV "default/thermo"
#define DEV_TOPIC "$hw/events/device/" DEV
#define UPDATED_TOPIC "$hw/events/node/" NODE "/membership/updated"
#define OK "{\"ok\":true}"

extern struct kh_broker *broker;
extern char *own_dir;

void start_broker(const struct kh_opt *extra_opts, const char *extra_conf);

void teardown(void);

int port(void);

/* Assert that payload matches the template (see the file comment). */
void expect_json(const char *payload, int len, const char *tpl);

void expect_msg_json(struct kh_client *c, const char *topic, const char *tpl);

struct kh_client *bridge_connect(const char *client_id);

void bridge_hello(struct kh_client *b, int64_t outbox_depth);

/* Hello, accepted; returns the outbox depth the plugin reports. */
int64_t bridge_hello_depth(struct kh_client *b);

struct kh_client *bridge_up(int64_t outbox_depth);

/* The next outbox entry: its seq, the message in *m (caller cleans up). */
int64_t bridge_next(struct kh_client *b, struct kh_msg *m);

void bridge_ack(struct kh_client *b, int64_t seq);

/* The next entry must match tpl; it is acked. Returns its seq. */
int64_t bridge_expect(struct kh_client *b, const char *tpl);

/* Send msg down on a fresh $ke/down/{ref} and compare the result with tpl. */
void down(struct kh_client *b, const char *msg, const char *tpl);

/* $ke/ctl/{ref} query; the answer in *m. */
void ctl(struct kh_client *b, const char *body, struct kh_msg *m);

int64_t ctl_status_int(struct kh_client *b, const char *key);

bool ctl_status_bool(struct kh_client *b, const char *key);

void add_thermo(struct kh_client *b);

struct kh_client *device(const char *id, const char *user, int proto);

void twin_update_value(struct kh_client *d, int value);

/* The edge_updated entry a successful actual update of temperature produces (docs/kubeedge-wire.md
 * §2.8). */
void edge_updated_tpl(char *tpl, size_t n, int value, int edge_version);

void upload_tpl(char *tpl, size_t n, const char *topic, const char *content_json);

/* test_ke_restart.c: kill -9, restart and reconnect; the ack window */
void ke_add_restart_tests(TCase *tc);
/* test_ke_acl.c: who may speak on $ke/ */
void ke_add_acl_tests(TCase *tc);

#endif
