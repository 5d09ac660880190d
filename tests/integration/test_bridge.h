/* test_bridge.h: the chain test_bridge runs (cloudsim, broker + plugin, bridge), reading cloudsim's
 * control API, the plugin and the databases, and the cloud messages its cases share. */
#ifndef KEDGE_TESTS_TEST_BRIDGE_H
#define KEDGE_TESTS_TEST_BRIDGE_H

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "bridgectl.h"
#include "chain.h"
#include "dbpeek.h"
#include "harness.h"
#include "jsoncmp.h"
#include "kedge/alloc.h"
#include "kedge/json.h"
#include "kedge/msg.h"
#include "simctl.h"
#include "proc.h"
#include "testsupport.h"

#define PAUSE_MS 20   /* between two polls of a deadline loop */
#define WAIT_MS 10000 /* deadline for something that should take milliseconds */
#define LINK_MS 20000 /* deadline for a dead link to be noticed and redialled (5 s settings) */
#define NODE "kedge-node"
#define PROJECT "e632aba927ea4ac2b575ec1603d56f10"
#define BRIDGE_PASS "br1dge-Secret"
#define DEV "default/thermo"
#define DEV_TOPIC "$hw/events/device/" DEV
#define UPDATED_TOPIC "$hw/events/node/" NODE "/membership/updated"
#define OUTBOX_COUNT "SELECT count(*) FROM kedge_outbox"
#define MEMBERSHIP_ADD_THERMO                                                                      \
    "{\"route\":{\"source\":\"devicecontroller\",\"group\":\"twin\",\"operation\":\"update\","     \
    "\"resource\":\"membership\"},"                                                                \
    "\"content\":{\"event_id\":\"ev-add\",\"timestamp\":1700000000000,\"added_devices\":["         \
    "{\"id\":\"" DEV "\",\"name\":\"thermo\",\"description\":\"hall\","                            \
    "\"twin\":{\"temperature\":{\"metadata\":{\"type\":\"int\"}}}}],\"removed_devices\":null}}"
#define ANNOUNCED_THERMO                                                                           \
    "{\"event_id\":\"<generated>\",\"timestamp\":\"<ts>\",\"added_devices\":["                     \
    "{\"id\":\"" DEV "\",\"name\":\"thermo\",\"description\":\"hall\","                            \
    "\"twin\":{\"temperature\":{\"metadata\":{\"type\":\"int\"}}}}],\"removed_devices\":null}"

struct kv {
    const char *key, *value;
};

struct chain_opts {
    const struct kv *bridge_conf; /* more bridge settings, ended by {NULL, NULL} */
    long resend_interval_s;       /* cloudsim: 0 = its default (5 s) */
    long keepalive_timeout_s;     /* cloudsim: 0 = its default (30 s) */
    const char *cloud_version;    /* both ends; NULL: 1.17, whose ns/name ids DEV uses */
    const char *session_setup_ms; /* cloudsim: NULL = its default */
};

/* What the cloud received, filtered by route (NULL fields match anything). */
struct route_sel {
    const char *source, *group, *operation, *resource;
};

extern struct simctl *sim;
extern struct kh_broker *broker;
extern struct bridgectl *bridge;

void bset(const char *key, const char *value);

void chain_up(const struct chain_opts *co);

void teardown(void);

int64_t state_int(const char *key);

bool state_bool(const char *key);

void state_str_is(const char *key, const char *want);

/* Wait until the node has a live session and at least min_sessions were ever opened. */
void wait_session(int64_t min_sessions, int timeout_ms);

void wait_disconnected(void);

/* Queue a message for the node; returns the msg_id cloudsim gave it (kedge_free). */
char *cloud_send(const char *json);

/* Wait for the next matching message after *since (see cloud_find). */
char *cloud_wait(long long *since, const struct route_sel *sel);

int cloud_count(long long since, const struct route_sel *sel);

bool acked(const char *msg_id);

void wait_acked(const char *msg_id);

/* Lines of cloudsim's log holding both needles. */
int sim_log_count(const char *a, const char *b);

void expect_json(const char *payload, size_t len, const char *tpl);

void expect_cloud_msg(char *json, const char *tpl);

/* The edge_updated message a successful actual update of temperature produces
 * (docs/kubeedge-wire.md §2.8). */
void edge_updated_tpl(char *tpl, size_t n, const char *dev, int value, int edge_version);

void upload_tpl(char *tpl, size_t n, const char *topic, const char *content_json);

struct kh_client *device(const char *id);

void expect_mqtt_json(struct kh_client *c, const char *topic, const char *tpl);

/* The next message of any topic must be exactly topic/payload. */
void expect_next(struct kh_client *c, const char *topic, const char *payload);

void twin_update_value(struct kh_client *d, const char *dev, int value);

/* Wait until the plugin's status says the cloud link is up / down (the bridge tells it with
 * edgehub's node/connection message, docs/kubeedge-wire.md §4.6). */
void wait_plugin_cloud(bool connected);

void wait_plugin_outbox(int64_t depth);

void wait_db_int(const char *path, const char *sql, int64_t want);

void wait_bridge_log(long from, const char *needle);

/* router_eventbus publish (docs/kubeedge-wire.md §5.2, §8.6): content is the MQTT payload. */
void cloud_publish(const char *topic, const char *payload);

/* Add default/thermo from the cloud and wait until the plugin announced it. */
void add_thermo(void);

/* test_bridge_devices.c: the "devices" case: membership, Device generations, a backlog */
void bridge_add_devices_tests(TCase *tc);

/* Wait until cloudsim holds no unacked message for the node. */
void wait_no_pending(void);

#endif
