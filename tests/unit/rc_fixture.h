/* The client side for the remote command codec's suites (test_rc*.c): a recording set of
 * callbacks, upgrade requests from header tables, WebSocket frames as a client masks them, SPDY
 * frames with header blocks compressed as spdystream compresses them (zlib with the SPDY/3
 * dictionary, written here against zlib directly), and parsers for what the server sent.
 */
#ifndef KEDGE_RC_FIXTURE_H
#define KEDGE_RC_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#include "kedge/buf.h"
#include "remotecommand.h"

/* What the callbacks saw, and what a callback should do to the rc (re-entrancy tests). */
struct rec {
    struct kedge_buf out; /* every byte sent to the client */
    int ready, stdin_closes, closes, nresize;
    struct rc_options o;   /* as ready() got it */
    char argv0[64];        /* o.argv[0] then */
    struct kedge_buf in;   /* stdin */
    unsigned w[16], h[16]; /* resizes */
    char why[128];
    struct rc *rc;
    int exit_in_ready; /* >= 0: rc_exit(rc, it) from ready() */
};

void rec_init(struct rec *t);
void rec_cleanup(struct rec *t);
extern const struct rc_fns rec_fns;

/* An upgrade request: names and values, NULL-terminated pairs. */
struct hdrs {
    const char *kv[24];
};
const char *hdrs_get(void *h, const char *name);
/* rc_accept with method, query and header pairs; rc kept in t->rc. */
int accept_req(struct rec *t, const char *method, const char *query, const struct hdrs *h,
               bool attach);

/* The bytes after the response head (the first "\r\n\r\n"), and the head's length. */
size_t head_len(const struct rec *t);

/* ---- WebSocket client ---------------------------------------------------------------------- */

/* A masked client frame appended to b. */
void ws_frame(struct kedge_buf *b, bool fin, int op, const void *p, size_t n);
/* A binary message [ch]+p. */
void ws_msg(struct kedge_buf *b, int ch, const void *p, size_t n);

struct wsf {
    int op;
    bool fin;
    const unsigned char *p; /* into the rec's out buffer */
    size_t n;
};
/* Server frames in out[off..]: up to max into f; returns how many (asserts they parse whole). */
size_t ws_parse(const struct rec *t, size_t off, struct wsf *f, size_t max);

/* ---- SPDY client ------------------------------------------------------------------------- */

struct spdy_client {
    z_stream def, inf;
};
void spdy_client_init(struct spdy_client *c);
void spdy_client_cleanup(struct spdy_client *c);
void spdy_syn_stream(struct spdy_client *c, struct kedge_buf *b, uint32_t id, const char *type,
                     bool fin);
void spdy_data(struct kedge_buf *b, uint32_t id, bool fin, const void *p, size_t n);
void spdy_control(struct kedge_buf *b, unsigned version, unsigned type, unsigned flags,
                  const void *p, size_t n);

struct spdyf {
    bool control;
    unsigned type, flags; /* control: type; data: flags */
    uint32_t id;          /* data / SYN_REPLY / RST_STREAM: the stream; GOAWAY: last good */
    uint32_t status;      /* RST_STREAM, GOAWAY; PING: its id */
    const unsigned char *p;
    size_t n;
    uint32_t nheaders; /* SYN_REPLY: headers in its block */
};
/* Server frames in out[off..] (SYN_REPLY blocks inflated with c). */
size_t spdy_parse(struct spdy_client *c, const struct rec *t, size_t off, struct spdyf *f,
                  size_t max);

/* Feed bytes to rc_input one at a time (every split point), stopping at the first < 0. */
int input_bytewise(struct rc *r, const char *b, size_t n);

#endif
