/* The twin engine: applying a twin change to one device in memory, the way edgecore's
 * dtmanager (twin.go, DealMsgTwin) does, and encoding what the change reports. Pure: it
 * touches no store and no broker; the caller writes the rows and publishes (devicetwin.h).
 *
 * Three modes:
 *  - TWIN_REST: a device's own update ($hw/events/device/{id}/twin/update). Each changed side
 *    moves its edge version on by one; the first bad key aborts the whole request, leaving the
 *    device half-changed (the caller reloads it from the store, as edgecore does).
 *  - TWIN_SYNC: the cloud's change (docs/kubeedge-wire.md §2.5). Versions decide: the cloud's pair
 * is taken unless the edge's is newer, in which case the key is echoed back (twin_key.echo). Bad
 * keys are skipped, not fatal. Type "deleted" deletes.
 *  - TWIN_DESIRED: the cloud's desired values (include/kedge/ke.h): an "expected" value that
 *    differs from the one held becomes the expected value and the cloud version moves on by
 *    one; actual values and values of the wrong type are left alone.
 * New keys are added (versions from {0,1} or the cloud's, optional true, type string by
 * default); rest deletes optional twins on a null, sync deletes with type "deleted".
 */
#ifndef KEDGE_TWIN_ENGINE_H
#define KEDGE_TWIN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"
#include "kedge/twin.h"
#include "device.h"

enum twin_mode { TWIN_REST, TWIN_SYNC, TWIN_DESIRED };

/* What one key of a change did: enough to print result, document and cloud message. */
struct twin_key {
    const char *name;       /* the request's key (borrowed from the request) */
    bool changed;           /* a row is to be written: document entry, result entry (rest) */
    bool inserted;          /* new row */
    bool deleted;           /* result prints null, document current null */
    bool echo;              /* sync refused: `sync` carries the edge's newer twin to the cloud */
    bool has_last;          /* document last = `last`, else null */
    struct kedge_twin last; /* the twin before the change */
    struct kedge_twin sync; /* rest: the change as edgecore's syncResult (result = it minus
                               versions); sync: the echo */
};

/* One change to one device: the keys that did something, in request order. */
struct twin_change {
    struct kedge_device *dev; /* borrowed */
    int64_t now;              /* wall-clock ms stamped on values and on the result/document */
    bool sync;                /* TWIN_SYNC or TWIN_DESIRED */
    bool desired;             /* TWIN_DESIRED */
    struct twin_key *keys;
    size_t n;
    const char *reason; /* TWIN_REST: the first error, as KubeEdge words it */
};

/* Apply twins (a decoded request, borrowed: keys point into it) to dev in mode, stamping
 * values with now. *c is set up here and must be released with twin_change_cleanup whatever
 * the result. Returns 0; TWIN_REST only: KEDGE_EBODY or KEDGE_ETYPE with c->reason (dev is
 * then partly changed: reload it); -ENOMEM (dev partly changed). */
int twin_apply(struct twin_change *c, struct kedge_device *dev, enum twin_mode mode, int64_t now,
               const struct kedge_twin *twins, size_t n);
void twin_change_cleanup(struct twin_change *c);

/* A twin of type "deleted": kept as a row, invisible to get, result and delta. */
bool twin_is_deleted(const struct kedge_twin *t);

/* The rest update's result: {"event_id","timestamp","twin":{...}} of the changed keys
 * (deleted ones as null). Appends to b; 0 or -ENOMEM. */
int twin_encode_result(const struct twin_change *c, const char *event_id, struct kedge_buf *b);
/* The document (last and current of each changed key). 1 with b appended, 0 when no key
 * changed (nothing to publish), -ENOMEM. */
int twin_encode_document(const struct twin_change *c, const char *event_id, struct kedge_buf *b);
/* The edge_updated content for the cloud (versions included): rest changes, or the keys whose
 * sync was refused. 1 with b appended, 0 when there is nothing to send, -ENOMEM. */
int twin_encode_cloud(const struct twin_change *c, const char *event_id, int64_t ts,
                      struct kedge_buf *b);
/* A twin get result of dev: versions stripped, deleted twins left out. 0 or -ENOMEM. */
int twin_encode_get(const struct kedge_device *dev, const char *event_id, int64_t ts,
                    struct kedge_buf *b);

#endif
