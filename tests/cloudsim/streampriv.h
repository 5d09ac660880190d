/* Shared by stream.c (cloudcore's tunnel server: the edges' sessions) and streamapi.c (its
 * stream server: the API server's connections); nothing else includes it. */
#ifndef KEDGE_CLOUDSIM_STREAMPRIV_H
#define KEDGE_CLOUDSIM_STREAMPRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "cloudsim.h"
#include "kedge/buf.h"

/* pkg/stream/constants.go */
enum {
    CS_LOGS = 0,
    CS_EXEC = 1,
    CS_METRIC = 2,
    CS_DATA = 3,
    CS_REMOVE = 4,
    CS_CLOSE = 5,
    CS_ATTACH = 6
};

/* Bytes an API connection may have waiting before the tunnel is no longer read: cloudcore
 * writes DATA to the API server inside its tunnel read loop (session.go
 * ProxyTunnelMessageToApiserver), so one slow client stalls the whole tunnel. */
#define CS_API_HIGH (4u << 20)

struct tframe {
    struct tframe *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE, then the frame */
};

/* One edge's tunnel (cloudcore's Session, keyed by SessionHostNameOverride). */
struct tsess {
    struct tsess *next;
    struct cstream *cs;
    struct lws *wsi;
    char node[256], ip[64];
    struct tframe *head, *tail;
    struct kedge_buf rx;
    bool rx_bad, throttled;
};

/* One API server connection (cloudcore's APIServerConnection). */
struct aconn {
    struct aconn *next;
    struct cstream *cs;
    struct lws *wsi;
    struct tsess *sess;    /* NULL once the edge's side is gone */
    uint64_t id;           /* connectID, 0 before the request was read */
    int kind;              /* CS_LOGS, CS_EXEC, CS_ATTACH, CS_METRIC */
    struct kedge_buf head; /* the request head until it is complete */
    bool head_done, chunked, raw;
    struct kedge_buf out; /* to the client */
    size_t out_off;
    bool edge_done; /* the edge's REMOVE_CONNECT (or its tunnel went): close after out */
};

struct cstream {
    struct lws_context *ctx;
    struct tsess *sessions;
    struct aconn *conns;
    uint64_t next_id; /* StreamServer.nextMessageID: atomic add 1, first id 1 */
    uint64_t tunnels_total;
    bool stopping;
};

/* stream.c */
struct tsess *cstream_session_for(struct cstream *cs);
/* Queue a frame to the edge: 0 or -ENOMEM. */
int cstream_send(struct tsess *s, uint64_t id, int type, const void *data, size_t len);
/* An API connection drained: the tunnel is read again when no connection is above the mark. */
void cstream_unthrottle(struct tsess *s);

/* streamapi.c */
/* A frame from the edge for connection id of session s (DATA, REMOVE_CONNECT). */
void cstream_api_frame(struct cstream *cs, struct tsess *s, uint64_t id, int type, const char *data,
                       size_t len);
/* The tunnel of s is gone: its connections end (cloudcore: Session.Close, SetEdgePeerDone). */
void cstream_api_session_gone(struct cstream *cs, struct tsess *s);

#endif
