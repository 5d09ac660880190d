/* Certificate rotation while running: a timer reads the node certificate's validity, and at the
 * jittered 70-90 % point runs the CSR exchange in a child process (certmgr.c) so the loop never
 * blocks on it. When the child succeeds the owner's `rotated` callback runs (main.c makes
 * EdgeHub redial, which builds a new TLS identity from the new files). A failed rotation is
 * retried every minute.
 */
#ifndef KEDGE_CERTWATCH_H
#define KEDGE_CERTWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "certmgr.h"

/* What certwatch reads: where the certificate is and whom to ask for a new one. */
struct certwatch_config {
    struct certmgr_req req; /* borrowed strings: they outlive the watch */
    bool rotate;            /* rotate_certificates */
};

typedef void (*certwatch_rotated_fn)(void *ctx);

struct certwatch;

int certwatch_new(const struct certwatch_config *cfg, struct lws_context *lws,
                  certwatch_rotated_fn rotated, void *ctx, struct certwatch **out);
void certwatch_start(struct certwatch *w);
/* Cancel the timer and end a rotation child (SIGTERM, then reaped). */
void certwatch_stop(struct certwatch *w);
void certwatch_free(struct certwatch *w);
/* Unix seconds, 0 unknown. */
int64_t certwatch_not_after(const struct certwatch *w);

#endif
