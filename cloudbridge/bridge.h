/* The bridge object: main.c's composition of the rooms (hub/, meta/, edged/) and the relay.
 * Only the top level sees it; each module gets the narrow state it uses, and Edged gets its
 * struct edged_deps from edged_wiring.c.
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

/* ==== edged_wiring.c: Edged and the node on the bridge's rooms ============================== */

struct bridge;
struct edged;
struct node;
/* The node's registration, status and lease on the cloud link. 0 or -ENOMEM. */
int node_start(struct bridge *br, struct node **out);
/* Edged with the Docker runtime on engine_socket, the meta store and the cloud link; *out NULL
 * when engine_socket is "none". 0 or a negative code. */
int edged_start(struct bridge *br, struct edged **out);

/* ==== main.c ================================================================================ */

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
    struct svcnotify *svc; /* systemd's readiness and watchdog */
    struct metrics *metrics;
    /* nodeInfo.containerRuntimeVersion (edged writes it from the engine, node.c reports it):
     * "" until the engine said */
    char runtime_version[96];
    bool stopping;
};

#endif
