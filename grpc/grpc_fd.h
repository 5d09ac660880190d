/* grpc.h's connection on a plain file descriptor, for what has no event loop of its own to
 * offer: the test mapper, kedge-ctl, the benchmark. The bridge uses its lws loop instead
 * (cloudbridge/dmi/transport.c).
 */
#ifndef KEDGE_GRPC_FD_H
#define KEDGE_GRPC_FD_H

#include <sys/types.h>

#include "grpc.h"

/* A non-blocking listening unix socket at path with mode (e.g. 0660). A socket file left there
 * is removed first, as edgecore does; any other file there is an error. fd or -errno. */
int grpc_fd_listen_unix(const char *path, mode_t mode);
/* A non-blocking, connected unix socket to path. fd or -errno. */
int grpc_fd_connect_unix(const char *path);
/* One turn of c on fd: wait up to timeout_ms for fd to be readable (or writable while output
 * waits), feed what was read, write what waits. 0, or < 0 when the connection is over (peer
 * closed, I/O error, grpc_conn_done): close fd and free c. */
int grpc_fd_pump(struct grpc_conn *c, int fd, int timeout_ms);
/* One unary call on a fresh connection to the socket at sock, waiting up to timeout_ms.
 * Returns 0 when the call ended: *code (GRPC_OK: *resp unpacked with desc, free it with
 * protobuf_c_message_free_unpacked(*resp, NULL), *message NULL; else *message, kedge_free it; a
 * connection that ended without an answer is GRPC_UNAVAILABLE "connection closed"). < 0: no
 * answer (-errno of the connect, -ETIMEDOUT, -ENOMEM). */
int grpc_fd_unary(const char *sock, const char *path, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *desc, int timeout_ms, ProtobufCMessage **resp,
                  int *code, char **message);

#endif
