/* What dmi.c, server.c, notify.c and store.c share: the one DMI object. */
#ifndef KEDGE_DMI_INT_H
#define KEDGE_DMI_INT_H

#include "dmi.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "mappers.h"

#define DMI_MAX_LOGGED 32 /* protocols whose missing mapper was logged */

struct dmi_report; /* a ReportDeviceStatus waiting for the plugin (server.c) */

/* A stored Device as a report needs it: found by the name the mapper knows (store.c). */
struct dmi_dev {
    char *name, *ns, *protocol;
};
struct dmi_outcall; /* a call to a mapper waiting for its turn (notify.c) */

#define DMI_MAX_QUEUED 4096 /* calls to mappers waiting; more are dropped, logged */

struct dmi {
    struct dmi_deps deps;
    struct dmi_io io;
    bool has_io, stopping;
    struct dmi_mappers *mappers;
    struct kedge_ratelimit rl; /* refusals and failures: one line each, rate limited */
    struct dmi_report *reports;
    char *no_mapper[DMI_MAX_LOGGED]; /* logged once each */
    size_t n_no_mapper;
    /* calls to mappers, one at a time in the cloud's order, as edgecore's one DMI worker
     * makes them (a model before the device that uses it) */
    struct dmi_outcall *q_head, *q_tail;
    size_t q_len;
    bool in_flight, pumping;
    char current[200]; /* the call in flight, for its log line */
    /* the stored Devices by name, read from the table at the first report and kept current
     * by the cloud's changes: a report must not parse every Device row */
    struct dmi_dev *devs;
    size_t n_devs, cap_devs;
    bool devs_loaded;
};

/* ---- store.c: the stored Devices and DeviceModels ---- */

/* One stored Device: its key, namespace and parsed JSON (valid during the callback). */
typedef void (*dmi_device_fn)(void *ctx, const char *key, const char *ns,
                              const struct kedge_jval *dev);
int dmi_each_device(struct dmi *d, dmi_device_fn fn, void *ctx);
/* spec.protocol.protocolName of a Device, or NULL. */
const char *dmi_device_protocol(const struct kedge_jval *dev);
/* The stored model {ns}/devicemodel/{name} parsed into *doc; -ENOENT, KEDGE_EPARSE, ... */
int dmi_load_model(struct dmi *d, const char *ns, const char *name, struct kedge_jdoc **doc);
/* The stored Device named name (the first when two namespaces have one): 0 with *out (valid
 * until the next change), -ENOENT, -ENOMEM, KEDGE_ESTORE. */
int dmi_device_lookup(struct dmi *d, const char *name, const struct dmi_dev **out);
/* The cloud stored (insert, update) or deleted a Device: the index follows. */
void dmi_device_changed(struct dmi *d, const char *operation, const struct kedge_jval *dev);
void dmi_device_index_free(struct dmi *d);
/* A JSON string member's text, or NULL. */
const char *dmi_jstr(const struct kedge_jval *v);

/* ---- server.c ---- */
void dmi_server_free_reports(struct dmi *d);

/* ---- notify.c ---- */
void dmi_notify_free_queue(struct dmi *d);

#endif
