/* DMI, the device management interface of KubeEdge v1.15 (issue 16): mappers register and
 * report over gRPC on the bridge's socket (server.c), and get the cloud's Device and
 * DeviceModel changes on their own sockets (notify.c); mappers.c keeps who they are,
 * convert.c turns the stored CRs into the messages. The sockets are transport.c's.
 *
 * dmi/ calls meta/ (the stored Devices, DeviceModels and mapper rows) and nothing else of the
 * bridge: the transport and the plugin (through the relay) are reached through what the owner
 * passes here, so no call goes from dmi/ up to main.c or the relay.
 */
#ifndef KEDGE_DMI_H
#define KEDGE_DMI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "kedge/buf.h"
#include "kedge/msg.h"
#include "meta/metamanager.h"

/* The end of a call to a mapper (transport.h's dmi_response_fn). */
typedef void (*dmi_done_fn)(void *ctx, int code, const char *message, const ProtobufCMessage *resp);

/* The transport as DMI uses it (transport.h: dmi_reply, dmi_call); t is its object. */
struct dmi_io {
    void *t;
    int (*reply)(void *t, uint64_t call, int code, const char *message,
                 const ProtobufCMessage *resp);
    int (*call)(void *t, const char *sock, const char *path, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *resp_desc, dmi_done_fn done, void *ctx);
};

/* The plugin's answer to a $ke/down message (relay.h's relay_result_fn): code 0 committed,
 * 404 / 400 / 500 the plugin's refusal with its reason, -1 no answer (reason says why). */
typedef void (*dmi_result_fn)(void *ctx, const struct kedge_msg *m, int code, const char *reason);
/* Hand m to the plugin ($ke/down, relay_down_result): 0, then result exactly once; or < 0. */
typedef int (*dmi_down_fn)(void *sender, const struct kedge_msg *m, dmi_result_fn result,
                           void *ctx);

struct dmi_deps {
    struct metamgr *meta; /* Devices, DeviceModels, mapper rows */
    dmi_down_fn down;     /* to the plugin */
    void *sender;
    bool ids_namespaced; /* the plugin's device ids are {namespace}/{name} (cloud_version) */
};

struct dmi;

/* Restores the stored mappers. deps->meta outlives d. */
int dmi_new(const struct dmi_deps *deps, struct dmi **out);
/* The transport, once it exists (it needs dmi_request first). */
void dmi_set_io(struct dmi *d, const struct dmi_io *io);
/* Nothing more is answered or called: the transport is going (results still coming from the
 * relay only free their calls). */
void dmi_stop(struct dmi *d);
/* After the relay (whose pending results reach d) and the transport are gone. */
void dmi_free(struct dmi *d);

/* A request on the DeviceManagerService socket (transport.h's dmi_request_fn; ctx is d). */
void dmi_request(void *d, uint64_t call, const char *service, const char *method,
                 const uint8_t *msg, size_t len);
/* A Device ("device") or DeviceModel ("devicemodel") the cloud changed, after it was stored
 * and acked (devices.h's change hook; ctx is d). old: the row before a delete, or NULL. */
void dmi_cloud_change(void *d, const char *type, const char *operation, const char *json,
                      size_t len, const char *old);
/* $ke/bctl {"op":"mapper_list"}: 1 and the answer in out, or 0 when req is another op. */
int dmi_bctl(void *d, const char *req, size_t len, struct kedge_buf *out);

#endif
