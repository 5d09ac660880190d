/* Devices: the device controller's Devices and DeviceModels, turned into what the plugin's
 * DeviceTwin needs: the device under this cloud generation's id with typed twins, and each
 * changed desired value as the twin's expected value. MetaManager hands them here (its device
 * hook) before storing anything; the cloud is acked only once the plugin has committed what
 * they mean. devices.c says how, and why.
 *
 * The plugin is reached through a send function the owner passes (the relay's relay_down), so
 * meta/ never calls the relay.
 */
#ifndef KEDGE_DEVICES_H
#define KEDGE_DEVICES_H

#include <stdbool.h>

#include "hub/edgehub.h"
#include "kedge/msg.h"
#include "metamanager.h"

/* The plugin answered m (ok: committed) or will not (timeout, stop). */
typedef void (*devices_done_fn)(void *ctx, const struct kedge_msg *m, bool ok);
/* Hand m (a group twin message) to the plugin; done(done_ctx, copy of m, ok) later. 0 or an
 * error (then done is not called). */
typedef int (*devices_send_fn)(void *sender, const struct kedge_msg *m, devices_done_fn done,
                               void *done_ctx);

struct devices_deps {
    struct metamgr *meta; /* stores the rows, registers the hook */
    struct edgehub *hub;  /* acks the cloud */
    devices_send_fn send; /* to the plugin */
    void *sender;
    bool ids_namespaced; /* device ids are {namespace}/{name} (config_device_ids_namespaced) */
};

/* A Device (type "device") or DeviceModel ("devicemodel") the cloud changed, called once it is
 * stored and acked: operation insert/update/delete, json the CR as the cloud sent it, old the
 * row as it was before a delete (NULL otherwise, or when there was none). DMI's notify. */
typedef void (*devices_change_fn)(void *ctx, const char *type, const char *operation,
                                  const char *json, size_t len, const char *old);

struct devices;
int devices_new(const struct devices_deps *deps, struct devices **out);
void devices_set_change_hook(struct devices *d, devices_change_fn fn, void *ctx);
/* Stopping: answers that still come (ok false) leave rows and acks alone. */
void devices_stop(struct devices *d);
void devices_free(struct devices *d);

#endif
