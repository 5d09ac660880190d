/* Shared by fuzz_rc_ws.c and fuzz_rc_spdy.c: callbacks that check the remote command codec's
 * contract (remotecommand.h) on every event, and the drive of one connection after a good
 * handshake. Input: byte 0 picks the protocol version offered, byte 1 the size of the pieces the
 * rest is fed in (every split must give the same result), then the client's bytes.
 *
 * Properties:
 *  - ready() at most once, before any stdin/resize; closed() at most once; stdin_close() at
 *    most once and no stdin after it;
 *  - once rc_input returned < 0, every later call returns -EPIPE and no callback comes;
 *  - what the server sends after the 101 is whole frames (checked by the target's frame_ok);
 *  - rc_exit after any input ends the rc: -EPIPE from then on.
 */
#ifndef KEDGE_FUZZ_RC_COMMON_H
#define KEDGE_FUZZ_RC_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "remotecommand.h"

struct fz {
    int ready, closes, stdin_closes;
    bool over, upgraded;
    size_t in_bytes;
    bool (*frame_ok)(const char *b, size_t n);
};

static void fz_send(void *ctx, const char *b, size_t n)
{
    struct fz *z = ctx;

    if (!z->upgraded) { /* the 101 */
        CHECK(n > 12 && !memcmp(b, "HTTP/1.1 101", 12));
        z->upgraded = true;
        return;
    }
    CHECK(z->frame_ok(b, n));
}

static void fz_ready(void *ctx, const struct rc_options *o)
{
    struct fz *z = ctx;

    CHECK(!z->over && z->ready == 0 && o->in && o->out);
    z->ready++;
}

static void fz_stdin(void *ctx, const char *b, size_t n)
{
    struct fz *z = ctx;

    (void)b;
    CHECK(!z->over && z->ready == 1 && z->stdin_closes == 0 && n > 0);
    z->in_bytes += n;
}

static void fz_stdin_close(void *ctx)
{
    struct fz *z = ctx;

    CHECK(!z->over && z->ready == 1 && z->stdin_closes == 0);
    z->stdin_closes++;
}

static void fz_resize(void *ctx, unsigned w, unsigned h)
{
    struct fz *z = ctx;

    CHECK(!z->over && z->ready == 1 && w <= 65535 && h <= 65535);
}

static void fz_closed(void *ctx, const char *why)
{
    struct fz *z = ctx;

    CHECK(!z->over && z->closes == 0 && why && *why);
    z->closes++;
}

static const struct rc_fns fz_fns = {fz_send,        fz_ready,  fz_stdin,
                                     fz_stdin_close, fz_resize, fz_closed};

static const char *fz_header(void *h, const char *name)
{
    const char *const *kv = h;

    for (; *kv; kv += 2)
        if (!strcasecmp(kv[0], name))
            return kv[1];
    return NULL;
}

/* Upgrade with headers kv, then feed data[2..] in pieces of data[1] (0 = one piece). */
static void fz_drive(const char *method, const char *const *kv, const uint8_t *data, size_t size,
                     bool (*frame_ok)(const char *, size_t))
{
    struct rc_upgrade u = {method, "command=sh&input=1&output=1&error=1&tty=1", fz_header,
                           (void *)kv, false};
    struct fz z = {0};
    struct rc *r = NULL;
    size_t piece = size > 1 && data[1] ? data[1] : (size_t)-1, off = 2;
    int rc = 0;

    z.frame_ok = frame_ok;
    CHECK(rc_accept(&u, &fz_fns, &z, &r) == 0 && r);
    while (off < size && rc == 0) {
        size_t k = size - off < piece ? size - off : piece;

        rc = rc_input(r, (const char *)data + off, k);
        CHECK(rc == 0 || rc == -EPROTO || rc == -EPIPE || rc == -ENOMEM);
        off += k;
    }
    if (rc < 0) {
        z.over = true;
        CHECK(rc_input(r, "\0", 1) == -EPIPE);
        CHECK(rc_output(r, RT_STDOUT, "x", 1) == -EPIPE);
        CHECK(rc_exit(r, 0) == -EPIPE);
    } else {
        CHECK(rc_output(r, RT_STDOUT, "out", 3) == 0);
        CHECK(rc_output(r, RT_STDERR, "err", 3) == 0);
        CHECK(rc_exit(r, 1) == 0);
        z.over = true;
        CHECK(rc_input(r, "\0", 1) == -EPIPE);
    }
    rc_free(r);
}

#endif
