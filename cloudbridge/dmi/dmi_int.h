/* What dmi.c, server.c, notify.c and store.c share: the one DMI object. */
#ifndef KEDGE_DMI_INT_H
#define KEDGE_DMI_INT_H

#include "dmi.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "mappers.h"

#define DMI_MAX_LOGGED 32 /* protocols whose missing mapper was logged */

struct dmi_report; /* a ReportDeviceStatus waiting for the plugin (server.c) */

struct dmi {
    struct dmi_deps deps;
    struct dmi_io io;
    bool has_io, stopping;
    struct dmi_mappers *mappers;
    struct kedge_ratelimit rl; /* refusals and failures: one line each, rate limited */
    struct dmi_report *reports;
    char *no_mapper[DMI_MAX_LOGGED]; /* logged once each */
    size_t n_no_mapper;
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
/* A JSON string member's text, or NULL. */
const char *dmi_jstr(const struct kedge_jval *v);

/* ---- server.c ---- */
void dmi_server_free_reports(struct dmi *d);

#endif
