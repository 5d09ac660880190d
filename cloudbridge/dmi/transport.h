/* DMI's sockets on the bridge's lws loop: the DeviceManagerService socket the mappers call,
 * and a connection per call to a mapper's own socket. gRPC itself is grpc/grpc.h; this file
 * only moves its bytes (raw file descriptors adopted into lws, as the relay's broker socket).
 *
 * Nothing here blocks: unix-socket connects complete or fail at once, reads and writes are
 * non-blocking, and a mapper that hangs costs a timeout, not a stall.
 */
#ifndef KEDGE_DMI_TRANSPORT_H
#define KEDGE_DMI_TRANSPORT_H

#include <stdint.h>
#include <sys/types.h>

#include <libwebsockets.h>

#include "grpc.h"

/* A request on the served socket: method is the path's last part ("MapperRegister"), service
 * the part before ("v1beta1.DeviceManagerService"). call identifies it for dmi_reply; a call
 * whose connection went away is answered into nothing. */
typedef void (*dmi_request_fn)(void *ctx, uint64_t call, const char *service, const char *method,
                               const uint8_t *msg, size_t len);
/* The end of a call to a mapper: code GRPC_OK and resp (unpacked with the descriptor given;
 * freed after the callback returns), or an error code and message (ours for a socket that
 * does not answer, "deadline exceeded" after the timeout). */
typedef void (*dmi_response_fn)(void *ctx, int code, const char *message,
                                const ProtobufCMessage *resp);

struct dmi_transport_config {
    const char *socket_path; /* DeviceManagerService, edgecore's /etc/kubeedge/dmi.sock */
    mode_t socket_mode;      /* 0660 */
    size_t max_msg;          /* 0: 4 MiB */
    long call_timeout_ms;    /* a call to a mapper (edgecore: 10 s) */
};

struct dmi_transport;

/* Listens (the directory is created when missing). lws, vhost outlive t. */
int dmi_transport_new(struct lws_context *lws, struct lws_vhost *vhost,
                      const struct dmi_transport_config *cfg, dmi_request_fn request, void *ctx,
                      struct dmi_transport **out);
/* Closes every connection (calls still open end GRPC_UNAVAILABLE, their done called here) and
 * removes the socket. Call it before lws_context_destroy. */
void dmi_transport_free(struct dmi_transport *t);
/* Answer call (grpc_reply's code/message/resp), now or later, from anywhere (also inside the
 * request callback). -ENOENT: answered already, or its connection or stream went away. */
int dmi_reply(struct dmi_transport *t, uint64_t call, int code, const char *message,
              const ProtobufCMessage *resp);
/* Call path ("/v1beta1.DeviceMapperService/UpdateDevice") on the mapper's socket sock; done
 * is called exactly once, never from inside dmi_call (also from dmi_transport_free). 0 or < 0
 * (-errno of the connect: no socket there, refused; -ENOMEM; -EMSGSIZE): done is not called. */
int dmi_call(struct dmi_transport *t, const char *sock, const char *path,
             const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
             dmi_response_fn done, void *ctx);
/* The raw protocol for the context's list (its callbacks find t in the adopted fd's user). */
extern const struct lws_protocols dmi_protocol;

#endif
