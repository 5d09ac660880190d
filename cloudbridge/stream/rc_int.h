/* Inside the remote command codec (remotecommand.h): the connection object every file shares,
 * the transport ops table rc.c calls through, and rc_core.c's helpers, which the transports and
 * rc.c both use. Calls go one way: rc.c -> rc_ws.c / rc_spdy.c -> rc_core.c.
 */
#ifndef KEDGE_RC_INT_H
#define KEDGE_RC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"
#include "remotecommand.h"

/* The protocol version negotiated: what the error channel carries and which streams exist.
 * V1 is channel.k8s.io (and WebSocket without a subprotocol), V2..V5 vN.channel.k8s.io. */
enum rc_version { RC_V1 = 1, RC_V2, RC_V3, RC_V4, RC_V5 };

/* The channels, numbered as on the WebSocket wire (k8s.io/apimachinery/pkg/util/remotecommand). */
enum rc_chan { RC_STDIN = 0, RC_STDOUT, RC_STDERR, RC_ERROR, RC_RESIZE, RC_NCHAN };

enum rc_state {
    RC_OPENING, /* upgraded, waiting for the client's streams (SPDY) */
    RC_RUNNING, /* ready() called */
    RC_OVER,    /* ended: by rc_exit/rc_fail, by the client, or by a protocol error */
};

/* Bounds on what a client can make us hold. */
#define RC_OUT_CHUNK 32768         /* the process's output per message / DATA frame (io.Copy's) */
#define RC_RESIZE_MAX 4096         /* unparsed resize JSON */
#define RC_PENDING_STDIN_MAX 65536 /* stdin that came before ready() */

struct rc;

/* A transport: rc_ws.c or rc_spdy.c. */
struct rc_proto {
    /* Client bytes. 0, or < 0 once the connection is over. */
    int (*input)(struct rc *r, const char *b, size_t n);
    /* Bytes on RC_STDOUT / RC_STDERR. 0, -ENOMEM. */
    int (*output)(struct rc *r, enum rc_chan ch, const char *b, size_t n);
    /* The status on the error channel (n == 0: nothing to write there), then the close. */
    int (*finish)(struct rc *r, const char *status, size_t n);
    void (*free)(struct rc *r);
};

struct rc {
    const struct rc_proto *proto;
    void *p; /* the transport's state */
    struct rc_fns fns;
    void *ctx;
    struct rc_options o;
    char **argv; /* owned: o.argv */
    char *container;
    bool attach;
    enum rc_version version;
    enum rc_state state;
    bool stdin_closed;           /* stdin_close() called (or due at ready) */
    bool resize_off;             /* the resize stream ended or broke: kubelet stops reading it */
    struct kedge_buf resize_buf; /* resize JSON not parsed yet */
    struct kedge_buf pending_in; /* stdin before ready() */
};

/* ---- rc_core.c ------------------------------------------------------------------------------ */

/* The request header name's value, "" when absent. */
const char *rc_core_header(const struct rc_upgrade *u, const char *name);
/* Whether s contains word, ASCII case-insensitively (Go's strings.Contains on ToLower). */
bool rc_core_contains_ci(const char *s, const char *word);

/* An HTTP response: status line, Content-Length, Content-Type text/plain when text, extra
 * (preformatted "Name: value\r\n" lines, or NULL), body. 0 or -ENOMEM (then a bare 500 that
 * needs no memory was sent instead). */
int rc_core_http(const struct rc_fns *fns, void *ctx, int status, const char *extra, bool text,
                 const char *body, size_t len);

/* The client's streams are there: state RUNNING, ready(), then what waited for it (stdin that
 * came early, its EOF, resizes). */
void rc_core_ready(struct rc *r);
/* Client stdin / its EOF / resize stream bytes / end of the resize stream. Before ready they
 * are held (bounded: -EPROTO past RC_PENDING_STDIN_MAX); when stdin was not asked for, dropped. */
int rc_core_stdin(struct rc *r, const char *b, size_t n);
void rc_core_stdin_eof(struct rc *r);
int rc_core_resize(struct rc *r, const char *b, size_t n);
/* The client ended the connection or broke the protocol: state OVER, closed(why) once. */
void rc_core_closed(struct rc *r, const char *why);

/* The status kubelet writes on the error channel, for this version, into out (emptied first;
 * left empty where kubelet writes nothing: success before v4). 0 or -ENOMEM. */
int rc_core_status_exit(const struct rc *r, int exit_code, struct kedge_buf *out);
int rc_core_status_fail(const struct rc *r, const char *message, struct kedge_buf *out);

/* ---- the transports ------------------------------------------------------------------------ */

/* Whether u asks for a WebSocket (wsstream.IsWebSocketRequest). */
bool rc_ws_is_request(const struct rc_upgrade *u);
/* Answer the upgrade on r (options parsed, fns set): the 101 and r->proto/p/version set, 0; or
 * the HTTP error sent and < 0 (r->p left NULL). */
int rc_ws_accept(struct rc *r, const struct rc_upgrade *u);
int rc_spdy_accept(struct rc *r, const struct rc_upgrade *u);

#endif
