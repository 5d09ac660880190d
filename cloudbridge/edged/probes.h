/* kubelet's prober: liveness / readiness / startup probes run once on request. exec through
 * the container runtime, httpGet and tcpSocket as lws client connections to the pod IP.
 */
#ifndef KEDGE_EDGED_PROBES_H
#define KEDGE_EDGED_PROBES_H

#include <libwebsockets.h>

#include "podspec.h"
#include "runtime.h"

struct prober;

enum probe_result { PROBE_SUCCESS, PROBE_FAILURE };
/* ctx, the probe's owner; result and a short message (kubelet's event text). */
typedef void (*probe_done_fn)(void *ctx, enum probe_result r, const char *message);

/* Probes open their connections on vhost of lws (which must carry probes_protocol); exec
 * probes run through rt (NULL: they fail). Returns 0 or -EINVAL, -ENOPROTOOPT, -ENOMEM. */
int prober_new(struct lws_context *lws, struct lws_vhost *vhost, const struct runtime *rt,
               struct prober **out);
/* Cancels every probe in flight: their done functions are not called. */
void prober_free(struct prober *pr);
/* Run one probe now against container_id (exec) or ip (httpGet / tcpSocket; the probe's host
 * wins when set). Timeout: probe->timeout_s. done is called exactly once unless the probe is
 * cancelled. Returns a handle (> 0) or a negative code. */
long prober_run(struct prober *pr, const struct pod_probe *probe, const char *container_id,
                const char *ip, probe_done_fn done, void *ctx);
void prober_cancel(struct prober *pr, long handle);
/* The lws protocol of the probes' client connections: on the bridge's local vhost (main.c). */
extern const struct lws_protocols probes_protocol;

#endif
