/* TRANSITIONAL (issue 15): what is left of the bridge's one-for-all header, for Edged only.
 *
 * Each module now has its own header (config.h, relay.h, twinbus.h, fault.h, and one per module
 * in hub/ and meta/) and takes the narrow state it uses. Edged (cloudbridge/edged/) still takes the
 * whole `struct bridge` and includes this file through edged.h; once Edged takes its own deps
 * (helper "edged": edged_deps), it includes hub/edgehub.h, meta/metamanager.h and
 * meta/resource.h instead, node.c's declarations move to edged.h, and this file goes.
 */
#ifndef KEDGE_BRIDGE_H
#define KEDGE_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

#include "config.h"
#include "hub/edgehub.h"
#include "meta/metamanager.h"
#include "meta/resource.h"

/* ==== node.c (Edged's) ==================================================================== */

struct bridge;

/* Register the node, then keep its status and lease fresh while the link is up. */
int node_start(struct bridge *br);
void node_stop(void);
/* The node's InternalIP (the first IPv4 address of an interface that is up and not loopback;
 * 127.0.0.1 when there is none), as reported in the Node's addresses and the pods' hostIP. */
void node_internal_ip(char *out, size_t n);

/* ==== main.c: the bridge object, still handed whole to Edged ============================== */

struct bridge {
    struct bridge_config cfg;
    struct lws_context *lws;
    struct lws_vhost *vhost;
    struct cloudq *cloudq;
    struct router *router;
    struct edgehub *hub;
    struct relay *relay;
    struct metamgr *meta;
    struct certwatch *certs;
    struct edged *edged; /* NULL when engine_socket is none */
    struct devices *devices;
    /* nodeInfo.containerRuntimeVersion (edged writes it from the engine, node.c reports it):
     * "" until the engine said */
    char runtime_version[96];
    bool stopping;
};

#endif
