/* httpc: the tests' blocking HTTP/1.1 client, for control APIs on 127.0.0.1 (kedge-cloudsim's,
 * simctl.h) and on unix sockets (a container engine's, enginectl.h). Test code only: blocking
 * with a deadline is fine here. */
#ifndef KEDGE_TESTS_HTTPC_H
#define KEDGE_TESTS_HTTPC_H

#include "kedge/buf.h"

/* A stream socket connected to 127.0.0.1:port or to the unix socket at path; -errno. */
int kt_connect_tcp(int port);
int kt_connect_unix(const char *path);

/* One HTTP/1.1 request (Connection: close) over fd, a connected socket (or a -errno from the
 * kt_connect_* above, returned as it is); fd is closed. body: NULL for none, else sent as
 * application/json (POST and PUT without one send Content-Length: 0). *status: the HTTP status
 * (-1 until one is read). resp: the body is appended, de-chunked when the reply is chunked;
 * may be NULL. Returns 0; -ETIMEDOUT after timeout_ms (not scaled); -EPROTO (not HTTP, bad
 * chunk framing, a body cut short); -ENOMEM; -errno. */
int kt_http_fd(int fd, const char *host, const char *method, const char *path, const char *body,
               int timeout_ms, int *status, struct kedge_buf *resp);

#endif
