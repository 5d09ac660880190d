/* The cloud's resource types, each once: what the cloud expects of the edge for it and who on
 * the edge takes it. The router (its ack rule, registered by main.c), MetaManager (remote-first
 * queries, store policy, which hook gets a message) and Edged (which objects it follows) read
 * this table instead of knowing types themselves; a new type is one row.
 *
 * A resource is "{namespace}/{type}/{name}" or "{namespace}/{type}" (edgecore's
 * parseResource; edge-side resources carry no node prefix, docs/kubeedge-wire.md §5).
 */
#ifndef KEDGE_RESOURCE_H
#define KEDGE_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "kedge/msg.h"

/* Whether CloudHub waits for our "response" (its noAckRequired, dispatcher/
 * message_dispatcher.go, docs/kubeedge-wire.md §5.2). */
enum resource_ack {
    RES_ACK,             /* acked once stored (or applied by the plugin) */
    RES_NO_ACK,          /* never acked */
    RES_ACK_UPDATE_ONLY, /* acked for operation update only (node) */
};

/* Where a local query is answered from while the link is up (docs/kubeedge-wire.md §6). */
enum resource_remote {
    RES_LOCAL,                   /* the meta table */
    RES_REMOTE_FIRST,            /* the cloud first (the reply is stored), the table when offline */
    RES_REMOTE_FIRST_DEFAULT_NS, /* remote-first when node_namespace is "default" (cloudcore
                                  * v1.12-v1.22, docs/kubeedge-wire.md §6, §9): node */
};

/* What MetaManager does with a cloud message of the type. */
enum resource_store {
    RES_STORE_ROW,        /* INSERT OR REPLACE by key; delete by key */
    RES_STORE_POD,        /* a delete removes the row only with the pod's UID (edgecore's
                           * DeleteMetaByKeyAndPodUID), and its podpatch row with it */
    RES_STORE_NOT_REPLY,  /* a reply is not stored under this key: it holds what the edge
                           * sent (nodepatch/podpatch), the object belongs under another */
    RES_STORE_BY_DEVICES, /* devices.c stores it once the plugin applied it */
    RES_STORE_NONE,       /* the plugin's (group twin): never in the meta table */
};

/* Who takes a message of the type (bits). */
enum resource_consumer {
    RES_BY_META = 1,    /* kept in the meta table */
    RES_BY_EDGED = 2,   /* Edged's hook after the row is stored (pods, their volumes) */
    RES_BY_DEVICES = 4, /* devices.c: translated for the plugin's DeviceTwin */
    RES_BY_PLUGIN = 8,  /* the plugin itself (group twin, through twinbus.c) */
};

struct resource_kind {
    const char *type;
    /* the ack rule matches the name anywhere in the resource (CloudHub's strings.Contains),
     * not only as its type element */
    bool anywhere;
    enum resource_ack ack;
    enum resource_remote remote;
    enum resource_store store;
    unsigned consumers;
};

/* The row of a type, or NULL for a type the table does not name (then: acked, local, stored
 * as a row, MetaManager's only). */
const struct resource_kind *resource_find(const char *type);
/* The type of a resource ("a/b/c" and "a/b" -> "b") into type (n bytes). 0, or -1 when there
 * is none or it does not fit. */
int resource_type_of(const char *resource, char *type, size_t n);
/* The ack rule for a cloud message (route_ack_fn for the router). */
bool resource_needs_ack(const struct kedge_msg *m);
/* Whether a query of the type goes to the cloud first while the link is up. */
bool resource_remote_first(const char *type, const char *node_namespace);
bool resource_wants_edged(const char *type);
bool resource_for_devices(const char *type);
/* Whether the cloud's reply to a request on the type is stored under its resource. */
bool resource_reply_stored(const char *type);
/* Whether a delete of the type needs the object's UID to match (pods). */
bool resource_delete_by_uid(const char *type);

#endif
