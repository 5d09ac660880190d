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

/* ==== dmi_wiring.c: DMI on the bridge's rooms ================================================ */

/* DMI (dmi_enabled): the mapper registry, its socket, the hooks on devices.c and the relay.
 * After build(); 0 or a negative code (a socket that cannot be served is only logged). */
int dmi_start(struct bridge *br);
/* Stop answering and calling mappers, close the transport: before the loop is destroyed.
 * dmi_free(br->dmi) comes after relay_free (the relay's last results reach it). */
void dmi_close(struct bridge *br);

/* ==== stream_wiring.c: EdgeStream on Edged's runtime ========================================= */

/* The CloudStream tunnel (stream_enabled) serving kubectl logs/exec/attach from Edged's runtime;
 * after edged_start. br->stream stays NULL when off. 0 or a negative code. */
int stream_start(struct bridge *br);

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
    struct dmi *dmi;                     /* NULL when dmi_enabled is 0 */
    struct dmi_transport *dmi_transport; /* NULL when its socket could not be served */
    struct stream *stream;               /* NULL when stream_enabled is 0 */
    /* nodeInfo.containerRuntimeVersion (edged writes it from the engine, node.c reports it):
     * "" until the engine said */
    char runtime_version[96];
    bool stopping;
};

#endif
