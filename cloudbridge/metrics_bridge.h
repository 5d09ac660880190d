/* The bridge's own collector and health check for the metrics endpoint (metrics.h). */
#ifndef KEDGE_METRICS_BRIDGE_H
#define KEDGE_METRICS_BRIDGE_H

#include "edged/edged.h"
#include "hub/certwatch.h"
#include "hub/cloudq.h"
#include "hub/edgehub.h"
#include "metrics.h"
#include "relay.h"
#include "stream/stream.h"

/* What the figures are read from; all outlive the registration. */
struct metrics_bridge {
    const struct edgehub *hub;
    struct cloudq *q;
    const struct certwatch *certs;
    const struct relay *relay;
    const struct edged *edged;   /* NULL when engine_socket is none */
    const struct stream *stream; /* NULL when stream_enabled is 0 */
};

int metrics_bridge_register(struct metrics *m, struct metrics_bridge *mb);

#endif
