/* /metrics (Prometheus text format 0.0.4) and /healthz, served on a local port from the
 * bridge's lws loop. The figures come from collectors the owner registers (metrics_bridge.c
 * for the bridge's own), so this file knows HTTP and the format, not the modules.
 *
 * /healthz answers 200 "ok" while the loop runs (a stalled loop answers nothing, which is what
 * a probe needs to see), with the cloud link's state as a second line; 503 when a registered
 * health check says the bridge cannot do its job (no link to the local broker).
 */
#ifndef KEDGE_METRICS_H
#define KEDGE_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "kedge/buf.h"

struct metrics_writer;

/* One sample of a family; type "gauge", "counter" or "untyped", help one line. The family's
 * HELP and TYPE lines are written the first time its name is seen. */
void metrics_sample(struct metrics_writer *w, const char *name, const char *type, const char *help,
                    double value);
/* The same with one label (name="value"; the value is escaped). */
void metrics_sample_label(struct metrics_writer *w, const char *name, const char *type,
                          const char *help, const char *label, const char *label_value,
                          double value);

typedef void (*metrics_collect_fn)(void *ctx, struct metrics_writer *w);
/* Healthy, or false with *why (static text). */
typedef bool (*metrics_health_fn)(void *ctx, const char **why);

struct metrics;

/* Listens on address:port (port 0: no listener, nothing served; a port it cannot have is
 * logged, and the bridge goes on without). lws outlives m. 0 or -ENOMEM. */
int metrics_new(struct lws_context *lws, const char *address, long port, struct metrics **out);
void metrics_free(struct metrics *m);
int metrics_add(struct metrics *m, metrics_collect_fn fn, void *ctx);
void metrics_set_health(struct metrics *m, metrics_health_fn fn, void *ctx);
/* The text format of every collector's samples (what /metrics answers), for tests too. */
int metrics_render(struct metrics *m, struct kedge_buf *out);

#endif
