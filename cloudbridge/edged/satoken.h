/* Service account tokens requested from the cloud, cached, refreshed. */
#ifndef KEDGE_EDGED_SATOKEN_H
#define KEDGE_EDGED_SATOKEN_H

#include "edged.h"
#include "podvolumes.h"

struct satoken;
/* A new token for the pod with this uid is in the cache: its volumes need writing again. */
typedef void (*satoken_changed_fn)(void *ctx, const char *pod_uid);

/* Tokens requested from the cloud and kept in the meta store through deps (borrowed for the
 * satoken's lifetime), requests answered within timeout_ms; changed is called for every new
 * token. Returns 0 or -ENOMEM. */
int satoken_new(const struct edged_deps *deps, int64_t timeout_ms, satoken_changed_fn changed,
                void *ctx, struct satoken **out);
/* A podvolumes_token_fn (ctx: the satoken): the cached token while it has not expired; a
 * request goes to the cloud when there is none or it is due for refresh (80 % of its TTL or
 * 24 h). -EAGAIN with kubelet's "failed to fetch token: ..." while there is no usable one. */
int satoken_get(void *ctx, const struct pod_spec *p, const struct pod_projection *src, char **token,
                char *why, size_t why_len);
/* The pod is gone: its tokens leave memory and the meta table. */
void satoken_forget(struct satoken *ts, const char *pod_uid);
/* No new timers (before lws_context_destroy). NULL ok. */
void satoken_stop(struct satoken *ts);
/* After MetaManager is closed (its close answers the requests in flight). NULL ok. */
void satoken_free(struct satoken *ts);

#endif
