/* `kubectl exec` and `kubectl attach` on the tunnel: kubelet's /exec and /attach upgrade
 * requests served through remotecommand.h (the client's protocol) and a runtime session (the
 * process). See exec.c.
 */
#ifndef KEDGE_STREAM_EXEC_H
#define KEDGE_STREAM_EXEC_H

#include "session.h"

/* The handlers for EXEC_CONNECT and ATTACH_CONNECT; hctx is the struct stream_deps (outlives
 * the session). */
extern const struct stream_handler_ops stream_exec_ops;
extern const struct stream_handler_ops stream_attach_ops;

#endif
