/* DeviceTwin wire types and their codec (docs/kubeedge-wire.md §2.2-docs/kubeedge-wire.md §2.10).
 *
 * The structs mirror edgecore's Go types closely enough to print the same bytes: every
 * pointer-with-omitempty in Go is a `present`/`has_` flag here. The same struct holds a parsed
 * request, the stored twin and a result entry. Builders write Go's field order and sorted map
 * keys; callers pass twins sorted by name (the registry keeps them that way).
 */
#ifndef KEDGE_TWIN_H
#define KEDGE_TWIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"

/* KubeEdge's result reasons: part of the contract (docs/kubeedge-wire.md §2.3). */
#define KEDGE_REASON_UNMARSHAL "Unmarshal update request body failed, please check the request"
#define KEDGE_REASON_NOTWIN "Update twin error, key:twin does not exist"
#define KEDGE_REASON_KEY                                                                           \
    "The key of twin must only include upper or lowercase letters, number, english, and special "  \
    "letter - _ . , : / @ # and the length of key should be less than 128 bytes"
#define KEDGE_REASON_VALUE                                                                         \
    "The value of twin must only include upper or lowercase letters, number, english, and "        \
    "special letter - _ . , : / @ # and the length of value should be less than 512 bytes"
#define KEDGE_REASON_NODEVICE "update rejected due to the device is not existed"
#define KEDGE_REASON_BODY "the request body is wrong"
#define KEDGE_REASON_NOT_INT "the value is not int or integer"
#define KEDGE_REASON_NOT_FLOAT "the value is not float"
#define KEDGE_REASON_NOT_BOOL "the bool value must be true or false"
#define KEDGE_REASON_TYPE "the value type is not allowed"

#define KEDGE_TYPE_STRING "string"
#define KEDGE_TYPE_DELETED "deleted"

#define KEDGE_TWIN_KEY_MAX 128
#define KEDGE_TWIN_VALUE_MAX 512

struct kedge_twin_value {
    bool present;  /* the "expected"/"actual" object exists */
    bool has_meta; /* its "metadata" object exists */
    char *value;   /* NULL: no "value" key */
    int64_t ts;    /* metadata.timestamp; 0 is omitted (omitempty) */
};

struct kedge_twin_version {
    int64_t cloud, edge;
};

struct kedge_twin {
    char *name;
    struct kedge_twin_value expected, actual;
    struct kedge_twin_version ev, av;
    bool has_ev, has_av;
    bool has_optional, optional;
    bool has_meta; /* "metadata":{"type":...} present */
    char *type;    /* metadata.type; NULL or "" omitted */
    /* Stored columns that never appear in MsgTwin: */
    char *meta_col;    /* device_twin.metadata: metadata JSON without type ("{}" or "") */
    char *description; /* device_twin.description */
    bool is_null;      /* request only: the key's value was JSON null (delete) */
};

struct kedge_attr {
    char *name, *value, *type, *meta_col, *description;
    bool optional;
};

struct kedge_device {
    char *id, *name, *description, *state, *last_online;
    struct kedge_attr *attrs;
    size_t n_attrs;
    struct kedge_twin *twins; /* sorted by name (byte-wise), as Go prints map keys */
    size_t n_twins, cap_twins;
};

/* A parsed twin update request (docs/kubeedge-wire.md §2.4) or cloud sync (docs/kubeedge-wire.md
 * §2.5). */
struct kedge_twin_update {
    char *event_id;
    int64_t timestamp;
    struct kedge_twin *twins; /* sorted by name, duplicates resolved (last wins) */
    size_t n;
};

enum kedge_twin_flags {
    KEDGE_TWIN_VERSIONS = 1, /* print expected_version / actual_version */
};

/* ---- lifetime ---- */
void kedge_twin_cleanup(struct kedge_twin *t);
/* Set t->type (NULL means ""): known types are shared static strings, others copied; always
 * go through this (and kedge_twin_cleanup) rather than freeing t->type. 0 or -ENOMEM. */
int kedge_twin_set_type(struct kedge_twin *t, const char *type);
/* Deep copy. Returns 0 or -ENOMEM (dst zeroed on failure). */
int kedge_twin_copy(struct kedge_twin *dst, const struct kedge_twin *src);
void kedge_attr_cleanup(struct kedge_attr *a);
void kedge_device_free(struct kedge_device *d); /* frees d itself; NULL is a no-op */
void kedge_twin_update_cleanup(struct kedge_twin_update *u);

/* ---- validation (docs/kubeedge-wire.md §2.3) ---- */
bool kedge_twin_key_valid(const char *key, size_t len);
bool kedge_twin_value_valid(const char *value, size_t len);
/* Value against type as dtcommon.ValidateValue. Returns NULL if fine, else the KubeEdge reason. */
const char *kedge_twin_check_type(const char *type, const char *value);

/* ---- decode ---- */
/* Twin update request. Go semantics: keys case-insensitive, unknown keys ignored.
 * Returns 0; KEDGE_EPARSE for bad JSON or a wrong JSON type anywhere (Go's Unmarshal error);
 * KEDGE_ENOTWIN when "twin" is missing or null; KEDGE_ETWINKEY / KEDGE_ETWINVALUE for the
 * regex checks; -ENOMEM. *out is zeroed first and left clean on failure, except event_id,
 * which is kept when the JSON parsed (callers that echo it need it). */
int kedge_twin_update_decode(const char *buf, size_t len, struct kedge_twin_update *out);
/* {"event_id":...} of a get request. Returns 0, KEDGE_EPARSE, -ENOMEM. *event_id owned. */
int kedge_twin_event_id_decode(const char *buf, size_t len, char **event_id);
/* State update: {"state":...}. Returns 0, KEDGE_EPARSE, -ENOMEM. *state owned ("" if absent). */
int kedge_twin_state_decode(const char *buf, size_t len, char **state);

/* Membership update from the cloud (docs/kubeedge-wire.md §2.10): devices with optional attributes
 * and twins (twins sorted by name, as the registry keeps them). */
struct kedge_membership {
    char *event_id;
    int64_t timestamp;
    struct kedge_device **added, **removed;
    size_t n_added, n_removed;
};
/* Returns 0, KEDGE_EPARSE (bad JSON / wrong types), KEDGE_ESCHEMA (a device without id),
 * -ENOMEM. *out is zeroed first and clean on failure. */
int kedge_membership_decode(const char *buf, size_t len, struct kedge_membership *out);
void kedge_membership_cleanup(struct kedge_membership *m);

/* ---- encode: one MsgTwin object ---- */
struct kedge_jw;
void kedge_twin_write(struct kedge_jw *w, const struct kedge_twin *t, unsigned flags);

/* ---- encode: whole messages (MQTT payloads, no trailing newline) ---- */
/* {"event_id","timestamp","code","reason"} (code/reason omitempty). */
int kedge_twin_error_encode(struct kedge_buf *b, const char *event_id, int64_t ts, int code,
                            const char *reason);

/* {"event_id","timestamp","twin":{name: MsgTwin|null}}: update result, get result and the
 * edge_updated content. entries with is_null print null. */
struct kedge_twin_ref {
    const struct kedge_twin *twin; /* NULL prints null */
    const char *name;
};
int kedge_twin_map_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                          const struct kedge_twin_ref *refs, size_t n, unsigned flags);

/* Document: {"event_id","timestamp","twin":{name:{"last":..,"current":..}}} */
struct kedge_twin_doc {
    const char *name;
    const struct kedge_twin *last, *current; /* NULL prints null */
};
int kedge_twin_document_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                               const struct kedge_twin_doc *docs, size_t n);

/* Delta over all of a device's twins (docs/kubeedge-wire.md §2.4). *has_delta = some expected !=
 * actual: only then does edgecore publish it. */
int kedge_twin_delta_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                            const struct kedge_twin *twins, size_t n, bool *has_delta);

/* Membership get result: {"event_id","timestamp","devices":[Device...]} (no twins). */
int kedge_membership_get_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                                const struct kedge_device *const *devs, size_t n);

/* membership/updated for one device (docs/kubeedge-wire.md §2.10):
 * {"event_id","timestamp","added_devices":[D]|null, "removed_devices":[D]|null}; D as received,
 * twins without versions, deleted twins null. */
int kedge_membership_updated_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                                    const struct kedge_device *added,
                                    const struct kedge_device *removed);

/* State result: {"event_id","timestamp","device":{"name","state","lastOnlineTime"}} */
int kedge_state_result_encode(struct kedge_buf *b, const char *event_id, int64_t ts,
                              const char *name, const char *state, const char *last_online);

#endif
