/* test_dmi.h: mappers over DMI against the whole edge node (test_dmi.c says how the suite runs):
 * the chain of test_bridge (test_bridge.h: cloudsim, broker + plugin, kedge-bridge) with the
 * bridge's DMI socket in its directory, the test mappers of tests/dmi (mapperctl.h), and
 * the Devices and DeviceModels the cloud sends down as cloudcore v1.15 does. */
#ifndef KEDGE_TESTS_TEST_DMI_H
#define KEDGE_TESTS_TEST_DMI_H

#include <unistd.h>

#include "grpc.h"
#include "mapperctl.h"
#include "test_bridge.h"

#define PROTO "kedge-virtual" /* the test mapper's protocol */
#define OTHER_PROTO "modbus"  /* a protocol no mapper of the test serves */
#define MODEL "thermo-model"
#define CALL_TIMEOUT_MS "1500" /* dmi_call_timeout_ms: a hung mapper costs this */

/* The bridge's directory, where its DMI socket and the mappers' sockets and logs are. */
extern const char *dmi_dir;
extern char dmi_sock[256];

/* chain_up (cloud generation 1.15: device ids are bare names, as DMI's) with a short
 * dmi_call_timeout_ms; more: further bridge settings (may be NULL). */
void dmi_up(const struct kv *more);
/* teardown(). */
void dmi_down(void);

/* A mapper of kind named name (its socket and log under dmi_dir) for protocol, started; asserts
 * it came up. */
struct mapperctl *mapper_up(enum mapper_kind k, const char *name, const char *protocol);
/* The chain up, the cloud's thermo (desired 22) of MODEL and PROTO, and mapper "virt" of kind k
 * registered with it. */
struct mapperctl *thermo_mapper_up(enum mapper_kind k);
/* Whether the loop's kind can run here; prints why not (the test then passes vacuously and
 * says so). */
bool dmi_kind_runs(enum mapper_kind k);

/* The cloud's DeviceModel name (protocol proto; properties temperature INT and, with
 * with_mode, mode STRING) as a resource op (insert, update, delete); waits until acked. */
void cloud_model(const char *op, const char *name, const char *proto, bool with_mode);
/* The cloud's Device name of model and proto with desired temperature `desired`, as op;
 * waits until acked. Each carries a resourceVersion above the one the cloud holds. */
void cloud_device(const char *op, const char *name, const char *model, const char *proto,
                  const char *desired);
/* A device added to the node (its membership, then the Device) / removed (the Device deleted,
 * then its membership). */
void cloud_add_device(const char *name, const char *model, const char *proto, const char *desired);
void cloud_remove_device(const char *name, const char *model, const char *proto);

/* register: asserts code 0 and exactly these devices and models (NULL-terminated); returns the
 * event (free it). */
struct kedge_jdoc *mapper_register(struct mapperctl *m, const char *const *devices,
                                   const char *const *models);
/* Wait for the mapper's `ev` (RegisterDevice, UpdateDevice) of dev whose desired temperature
 * is value, skipping that device's earlier events of ev (cloudcore re-sends a Device after each
 * status patch). */
void mapper_wait_desired(struct mapperctl *m, const char *ev, const char *dev, const char *value);
/* report DEV temperature VALUE: kedge's code; *message (may be NULL) kedge_malloc'd. */
int mapper_report(struct mapperctl *m, const char *dev, const char *value, char **message);

/* test_dmi_bad.c */
void dmi_add_bad_input_tests(TCase *tc);

#endif
