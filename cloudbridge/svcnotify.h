/* The service manager's view of the bridge (sd_notify(3), from Debian's libsystemd): READY=1
 * once the loop runs with every socket open, WATCHDOG=1 from the loop itself at half the
 * unit's WatchdogSec (so a stalled loop is what stops it, and systemd restarts the bridge), a
 * STATUS= line when the cloud link changes, and STOPPING=1. Outside systemd (no
 * NOTIFY_SOCKET) every call does nothing.
 */
#ifndef KEDGE_SVCNOTIFY_H
#define KEDGE_SVCNOTIFY_H

#include <stdbool.h>

#include <libwebsockets.h>

struct svcnotify;

/* lws outlives s. */
int svcnotify_new(struct lws_context *lws, struct svcnotify **out);
void svcnotify_free(struct svcnotify *s);
void svcnotify_ready(struct svcnotify *s);
/* For a link-state listener: the cloud link is up or down. */
void svcnotify_link(void *s, bool up);
void svcnotify_stopping(struct svcnotify *s);

#endif
