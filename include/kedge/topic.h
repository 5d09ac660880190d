/* $hw/events/... topics: parse what devices publish, build what kedge answers on.
 *
 * Device ids come in both KubeEdge forms at once: `{namespace}/{name}` (v1.17+, two levels) and
 * bare `{name}` (<= v1.15, one level). The id is whatever lies between the prefix and a known
 * suffix, parsed by level rather than by edgecore's substring search (docs/kubeedge-wire.md §2.1).
 */
#ifndef KEDGE_TOPIC_H
#define KEDGE_TOPIC_H

#include <stddef.h>

#include "kedge/buf.h"

#define KEDGE_DEVICE_PREFIX "$hw/events/device/"
#define KEDGE_NODE_PREFIX "$hw/events/node/"

#define KEDGE_SFX_TWIN_UPDATE "/twin/update"
#define KEDGE_SFX_TWIN_UPDATE_RESULT "/twin/update/result"
#define KEDGE_SFX_TWIN_UPDATE_DOCUMENT "/twin/update/document"
#define KEDGE_SFX_TWIN_UPDATE_DELTA "/twin/update/delta"
#define KEDGE_SFX_TWIN_GET "/twin/get"
#define KEDGE_SFX_TWIN_GET_RESULT "/twin/get/result"
#define KEDGE_SFX_TWIN_CLOUD_UPDATED "/twin/cloud_updated"
#define KEDGE_SFX_STATE_UPDATE "/state/update"
#define KEDGE_SFX_STATE_UPDATE_RESULT "/state/update/result"
#define KEDGE_SFX_STATE_GET "/state/get"
#define KEDGE_SFX_DEVICE_UPDATED "/updated"
#define KEDGE_SFX_MEMBERSHIP_GET "/membership/get"
#define KEDGE_SFX_MEMBERSHIP_GET_RESULT "/membership/get/result"
#define KEDGE_SFX_MEMBERSHIP_UPDATED "/membership/updated"

enum kedge_topic_kind {
    KEDGE_TOPIC_OTHER = 0,          /* not a topic kedge acts on */
    KEDGE_TOPIC_TWIN_UPDATE,        /* $hw/events/device/{id}/twin/update */
    KEDGE_TOPIC_TWIN_GET,           /* .../twin/get */
    KEDGE_TOPIC_TWIN_CLOUD_UPDATED, /* .../twin/cloud_updated (cloud sync semantics) */
    KEDGE_TOPIC_STATE_UPDATE,       /* .../state/update */
    KEDGE_TOPIC_STATE_GET,          /* .../state/get (edgecore registers no handler) */
    KEDGE_TOPIC_DEVICE_UPDATED,     /* .../updated */
    KEDGE_TOPIC_MEMBERSHIP_GET,     /* $hw/events/node/{node}/membership/get */
    KEDGE_TOPIC_UPLOAD,             /* $hw/events/upload/#, SYS/dis/upload_records, +/user/# */
};

struct kedge_topic {
    enum kedge_topic_kind kind;
    const char *id; /* device id or node name, pointing into the parsed topic; not NUL-ended */
    size_t id_len;
};

/* Classify topic[0..len). Never fails: unknown shapes are KEDGE_TOPIC_OTHER. A device topic
 * whose id is empty or has more than two levels is OTHER too (edgecore would not subscribe). */
void kedge_topic_parse(const char *topic, size_t len, struct kedge_topic *out);

/* Append "$hw/events/device/{id}{suffix}" to b (reset first). Returns 0 or -ENOMEM. */
int kedge_topic_device(struct kedge_buf *b, const char *id, size_t id_len, const char *suffix);
/* Append "$hw/events/node/{node}{suffix}" to b (reset first). Returns 0 or -ENOMEM. */
int kedge_topic_node(struct kedge_buf *b, const char *node, const char *suffix);

#endif
