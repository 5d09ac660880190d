/* The server side of Kubernetes' remote command protocols (kubectl exec / attach), as kubelet's
 * streaming server (k8s.io/kubelet/pkg/cri/streaming/remotecommand, the code containerd runs)
 * speaks them: a pure codec, bytes in and bytes out, no I/O and no clock.
 *
 * Two transports, picked from the upgrade request as kubelet picks them:
 *  - WebSocket (RFC 6455; rc_ws.c) when Upgrade is "websocket": subprotocols v5.channel.k8s.io,
 *    v4.channel.k8s.io, v4.base64.channel.k8s.io, channel.k8s.io, base64.channel.k8s.io and none,
 *    the first of the client's list we serve winning. Every message starts with a channel byte:
 *    0 stdin, 1 stdout, 2 stderr, 3 error (the status), 4 resize; v5 adds [255, ch] from the
 *    client = "channel ch is closed" (stdin EOF). kubelet serves v4 at most: kubectl >= 1.30 asks
 *    for v5 only and falls back to SPDY when refused. We serve v5 too (what kube-apiserver >= 1.30
 *    gives kubectl in front of kubelet), so kubectl 1.32 through an older API server that passes
 *    the upgrade untouched gets its default protocol.
 *  - SPDY/3.1 (rc_spdy.c) otherwise, X-Stream-Protocol-Version among v4.channel.k8s.io,
 *    v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io: the client opens one stream per
 *    channel (header streamtype: error, stdin, stdout, stderr, resize), stdin EOF is its FIN.
 *
 * The request's options are read from the query as kubelet reads them: input, output, error, tty
 * (stdin, stdout, stderr, tty) are true only when "1" (kube-apiserver writes input=1 ... on the
 * URL it sends to a kubelet, whatever kubectl sent it); command= repeated (exec); container=. tty
 * drops stderr. None of stdin, stdout, stderr: 400 "you must specify at least 1 of stdin, stdout,
 * stderr".
 *
 * How to drive it (the glue, exec.c):
 *   1. rc_accept() with the upgrade request. It writes the response through fns->send: the 101
 *      (then 0, *out set) or the HTTP error kubelet would answer (then < 0, *out NULL; end the
 *      connection). For WebSocket, ready() is called from inside rc_accept, after *out is set.
 *   2. Every byte from the client after the request: rc_input(). Callbacks come from inside it:
 *      ready() once all the streams the options need are there (SPDY: their SYN_STREAMs), then
 *      stdin_data(), stdin_close(), resize(); closed() when the client ends the connection (a
 *      close frame, GOAWAY) or breaks the protocol. rc_input returns < 0 once the connection is
 *      over: closed() has been called then, once, unless a callback ended it with rc_exit or
 *      rc_fail (then end the transport as after those).
 *   3. On ready(): start the process with the options (o->argv, o->tty, ...). Its output:
 *      rc_output(). Its end: rc_exit() (exit code; attach: any) or rc_fail() (it could not run).
 *      Those write the status on the error channel the way kubelet writes it and close the
 *      connection (WebSocket: a close frame 1000; SPDY: FIN on every stream, then GOAWAY): end the
 *      transport right after they return. closed() is not called for that ending.
 *   4. rc_free() when done, never from inside a callback.
 * Callbacks may call rc_output, rc_exit and rc_fail on the same rc (not rc_free). The glue keeps
 * its own timers: kubelet gives the client 30 s (streamCreationTimeout) to open its streams, and
 * drops an idle connection after its streamIdleTimeout.
 *
 * Flow control: neither side of spdystream (kubectl's and kubelet's SPDY) enforces or sends SPDY
 * windows, so none is kept here; backpressure is the transport's (the glue pauses the process's
 * output while the tunnel is over its high-water mark).
 */
#ifndef KEDGE_REMOTECOMMAND_H
#define KEDGE_REMOTECOMMAND_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime.h" /* enum runtime_log_stream */

struct rc;

/* The upgrade request. header(hctx, name): the value of a request header, name matched without
 * case, several field lines of one name joined with ", " (RFC 9110 §5.3: kubectl's SPDY client
 * sends X-Stream-Protocol-Version once per version), or NULL when absent. raw_query: after '?',
 * undecoded, NULL or "" for none. attach: an attach, not an exec (the status texts differ). */
struct rc_upgrade {
    const char *method, *raw_query;
    const char *(*header)(void *hctx, const char *name);
    void *hctx;
    bool attach;
};

/* What the client asked for. argv/container are borrowed from the rc (valid until rc_free). */
struct rc_options {
    bool in, out, err, tty;
    char *const *argv; /* exec: the command= values in order; NULL-terminated */
    size_t argc;
    const char *container; /* container= from the query, NULL when absent (kubelet: the path) */
};

struct rc_fns {
    void (*send)(void *ctx, const char *b, size_t n);     /* bytes to the client, the 101 too */
    void (*ready)(void *ctx, const struct rc_options *o); /* streams set up: start the process */
    void (*stdin_data)(void *ctx, const char *b, size_t n);
    void (*stdin_close)(void *ctx); /* once */
    void (*resize)(void *ctx, unsigned width, unsigned height);
    void (*closed)(void *ctx, const char *why); /* client gone / protocol broken; once */
};

/* Answer the upgrade request u. fns: copied; ctx: passed to every callback.
 * Returns 0 (*out: the connection, free with rc_free), -EINVAL (the request was refused with
 * kubelet's HTTP error through send) or -ENOMEM (a 500 was sent). */
int rc_accept(const struct rc_upgrade *u, const struct rc_fns *fns, void *ctx, struct rc **out);

/* Bytes from the client, any split. Returns 0, or < 0 once the connection is over (-EPROTO: the
 * client broke the protocol, -EPIPE: it closed or the rc already ended, -ENOMEM); closed() has
 * been called by then unless the rc was ended by rc_exit/rc_fail. */
int rc_input(struct rc *r, const char *b, size_t n);

/* The process's output on stream s (a TTY: all RT_STDOUT). Returns 0 (sent, or dropped when the
 * client did not ask for that stream), -EPIPE (the connection is over), -ENOMEM. */
int rc_output(struct rc *r, enum runtime_log_stream s, const char *b, size_t n);

/* The process ended with exit_code: exec: Success for 0, else kubelet's NonZeroExitCode status
 * (kubectl exits with the code; it parses 0..255); attach: Success whatever the code. Then the
 * connection is closed. Returns 0, -EPIPE (already over), -ENOMEM (the status could not be
 * built or sent: cut the transport; kubectl then reports a broken stream). The rc is over either
 * way. */
int rc_exit(struct rc *r, int exit_code);

/* The process could not run / the runtime went away: kubelet's InternalError status with
 * "error executing command in container: <message>" (attach: "error attaching to container:
 * <message>"), then the close. Returns as rc_exit. */
int rc_fail(struct rc *r, const char *message);

/* A plain HTTP error response the way kubelet's router writes one (for a request refused before
 * any upgrade: no such pod or container), body as given. Returns 0 or -ENOMEM. */
int rc_reject(const struct rc_fns *fns, void *ctx, int status, const char *body);

void rc_free(struct rc *r); /* NULL is a no-op */

#endif
