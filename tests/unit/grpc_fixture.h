/* Shared by the gRPC suites: a server and a client connection wired back to back in memory, a
 * DMI echo service (MapperRegister answered with the mapper's name as a model and its address as
 * a device name, so a large request makes an equally large answer), and a raw nghttp2 client
 * for what grpc_call never sends (wrong content-type, compressed messages, resets).
 */
#ifndef KEDGE_GRPC_FIXTURE_H
#define KEDGE_GRPC_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "grpc.h"
#include "kubeedge/dmi/v1beta1/api.pb-c.h"

#define MR_PATH "/v1beta1.DeviceManagerService/MapperRegister"
#define FX_MAX_CALLS 128

struct fx_req {
    int32_t stream;
    char path[128];
    V1beta1__MapperRegisterRequest *req; /* NULL when the bytes did not parse */
};

struct fx_resp {
    void *tag;
    int code;
    char message[256];
    V1beta1__MapperRegisterResponse *resp;
    int times; /* responses for this tag */
};

struct fx {
    struct grpc_conn *srv, *cli;
    bool hold; /* the server records requests and answers only when told (fx_answer) */
    struct fx_req reqs[FX_MAX_CALLS];
    size_t n_reqs;
    int32_t cancelled[FX_MAX_CALLS];
    size_t n_cancelled;
    struct fx_resp resps[FX_MAX_CALLS];
    size_t n_resps;
};

extern const struct grpc_conn_ops fx_server_ops, fx_client_ops;

/* Both ends, limits lim_srv / lim_cli (NULL: defaults). */
void fx_open(struct fx *f, const struct grpc_limits *lim_srv, const struct grpc_limits *lim_cli);
void fx_close(struct fx *f); /* frees what is still open and every recorded message */
/* Move bytes both ways until neither end has anything to write. */
void fx_shuttle(struct fx *f);
/* Answer recorded request i as the echo service does. */
void fx_answer(struct fx *f, size_t i);
/* A MapperRegister call with mapper name and an address of addr_len bytes 'a'. */
int fx_call(struct fx *f, const char *name, size_t addr_len, void *tag);
struct fx_resp *fx_resp_of(struct fx *f, void *tag);

/* ---- a raw HTTP/2 client (nghttp2 directly) --------------------------------------------- */

struct raw {
    nghttp2_session *s;
    int status, grpc_status;
    char grpc_message[256];
    uint32_t close_code;
    bool closed;
    const uint8_t *body;
    size_t body_len, body_off;
};

void raw_open(struct raw *r);
void raw_close(struct raw *r);
/* A POST of body with content-type ct; end: END_STREAM after the body. Returns the stream id. */
int32_t raw_request(struct raw *r, const char *ct, const uint8_t *body, size_t len, bool end);
/* Move bytes between r and the server conn srv until both are quiet. */
void raw_shuttle(struct raw *r, struct grpc_conn *srv);

#endif
