/* DeviceTwin: what edgecore's dtmanager does for devices over MQTT (docs/kubeedge-wire.md §2),
 * answered from inside the broker.
 *
 * A request is applied to the in-memory registry by the twin engine (twin_engine.h), its rows
 * are written into the store's open transaction, and its result, document and delta are
 * queued in replies, published only after the commit that holds them (batch.h). A request
 * that fails validation is undone by reloading its device from the store, as edgecore's
 * SyncDeviceFromSqlite does, which is also why some in-memory quirks of edgecore (an empty
 * value vanishing after an error) show up here the same way.
 *
 * The device-facing requests (twin update and get, state update, membership get) are one
 * table in twin_requests.c: a topic kind, its handler, its answer to an oversized payload.
 */
#ifndef KEDGE_DEVICETWIN_H
#define KEDGE_DEVICETWIN_H

#include <stdbool.h>
#include <stddef.h>

#include "kedge/buf.h"
#include "kedge/topic.h"
#include "batch.h"
#include "options.h"
#include "outbox.h"
#include "registry.h"
#include "replies.h"
#include "store.h"
#include "twin_engine.h"

/* KubeEdge's HTTP-like codes in error results. */
#define TWIN_BAD_REQUEST 400
#define TWIN_NOT_FOUND 404
#define TWIN_INTERNAL 500

struct devicetwin {
    const struct plugin_config *cfg; /* node_name, max_payload_bytes */
    struct registry *reg;
    struct store *store;
    struct replies *out;
    struct outbox *outbox;  /* twin and state reports for the cloud */
    struct batch *batch;    /* devices written, reloads */
    struct kedge_buf topic; /* scratch: the topic of what is being queued */
    /* requests since the broker started (status, /metrics): twin updates from MQTT and from
     * DMI mappers, twin gets, state updates, membership gets, and error results answered */
    struct twin_counts {
        int64_t updates, gets, states, members, errors;
    } n;
};

/* Borrow the pieces (they must outlive dt). */
void devicetwin_init(struct devicetwin *dt, const struct plugin_config *cfg, struct registry *reg,
                     struct store *store, struct replies *out, struct outbox *outbox,
                     struct batch *batch);
void devicetwin_cleanup(struct devicetwin *dt);

/* A device's request ($hw/events/..., parsed into t). Handlers answer the device themselves
 * (or stay silent where edgecore does) and never fail the broker. Returns false when t is not
 * a DeviceTwin request. payload may be NULL when len is 0. */
bool devicetwin_request(struct devicetwin *dt, const struct kedge_topic *t, const char *payload,
                        size_t len);

/* An edge-originated twin update of device id (docs/kubeedge-wire.md §2.4): what a device
 * publishes on $hw/events/device/{id}/twin/update, and what the bridge hands over for a DMI
 * mapper's ReportDeviceStatus. The device is answered on its result topic as edgecore would.
 * Returns 0 (applied; the result follows the commit) or the code of the error result:
 * TWIN_BAD_REQUEST, TWIN_NOT_FOUND, TWIN_INTERNAL, with *why (if not NULL) its reason. Static
 * strings or the decoder's, valid until the next call. */
int devicetwin_edge_update(struct devicetwin *dt, const char *id, size_t id_len,
                           const char *payload, size_t len, const char **why);

/* Apply a change to dev (registry's) in mode, then write its rows, and queue its result
 * (TWIN_REST), document, delta and cloud message. On failure the device is reloaded from the
 * store and *reason says why, as KubeEdge words it ("out of memory" for -ENOMEM; NULL when
 * not even the reload could be prepared). 0; KEDGE_EBODY / KEDGE_ETYPE (TWIN_REST only);
 * -ENOMEM. */
int devicetwin_apply(struct devicetwin *dt, struct kedge_device *dev, enum twin_mode mode,
                     const char *event_id, const struct kedge_twin *twins, size_t n,
                     const char **reason);
/* Cloud-side twin change (sync semantics, docs/kubeedge-wire.md §2.5) for a known device: versions
 * decide, refused keys go back to the cloud as edge_updated. Publishes document and delta, no
 * result. Returns 0, KEDGE_ENODEVICE, -ENOMEM. */
int devicetwin_sync(struct devicetwin *dt, const char *dev_id, const char *event_id,
                    const struct kedge_twin *twins, size_t n);
/* The cloud's desired values (include/kedge/ke.h, device/{id}/twin/desired): see TWIN_DESIRED.
 * Nothing goes back to the cloud (it knows its desired values); a value already held
 * publishes nothing. 0, KEDGE_ENODEVICE, -ENOMEM. */
int devicetwin_desired(struct devicetwin *dt, const char *dev_id, const char *event_id,
                       const struct kedge_twin *twins, size_t n);

/* kedge-ctl views: the membership get result of all devices, and one device's twin get
 * result (or {"code":404,...}). Return 0 or -ENOMEM. */
int devicetwin_encode_members(struct devicetwin *dt, const char *event_id, struct kedge_buf *b);
int devicetwin_encode_twins(struct devicetwin *dt, const char *id, size_t id_len,
                            struct kedge_buf *b);

/* For the request handlers: queue b's payload (taken) on dt->topic, lost with a log line on
 * -ENOMEM; an error result {"code","reason"} on dt->topic; and whether the store can take
 * writes (if not, a 500 is queued and false returned). */
void devicetwin_queue(struct devicetwin *dt, struct kedge_buf *b, enum reply_fail on_fail,
                      const char *event_id);
void devicetwin_queue_error(struct devicetwin *dt, const char *event_id, int code,
                            const char *reason);
bool devicetwin_store_usable(struct devicetwin *dt, const char *event_id);

#endif
