/* SPDY/3 header blocks for rc_spdy.c (rc_spdy_hdr.c): each direction of a connection is one zlib
 * stream preset with the SPDY dictionary (rc_spdy_dict.c), a block per SYN_STREAM / SYN_REPLY /
 * HEADERS frame ending in a sync flush, as spdystream's framer writes and reads them.
 */
#ifndef KEDGE_RC_SPDY_H
#define KEDGE_RC_SPDY_H

#include <stdbool.h>
#include <stddef.h>

#include <zlib.h>

#include "kedge/buf.h"

#define RC_SPDY_DICT_LEN 1423
extern const unsigned char rc_spdy_dict[RC_SPDY_DICT_LEN];

struct rc_spdy_z {
    z_stream in, out;
    bool in_init, out_init;
};

/* Both streams, allocating through kedge_malloc. 0 or -ENOMEM (nothing left to clean up). */
int rc_spdy_z_init(struct rc_spdy_z *z);
void rc_spdy_z_cleanup(struct rc_spdy_z *z);

/* A frame's compressed block b[0..n), all of it, inflated into out (emptied first), at most max
 * bytes. 0, -EPROTO (not our zlib stream, or over max: the connection is unusable), -ENOMEM. */
int rc_spdy_inflate(struct rc_spdy_z *z, const void *b, size_t n, size_t max,
                    struct kedge_buf *out);
/* A block b[0..n) compressed and sync-flushed, appended to out. 0, -ENOMEM, -EPROTO. */
int rc_spdy_deflate(struct rc_spdy_z *z, const void *b, size_t n, struct kedge_buf *out);

/* The first value of header name (lower case) in a decoded block: 1 and v, vlen set (a pointer
 * into b), 0 when absent, -EPROTO when the block is malformed (lengths past its end, bytes after
 * it, more than 256 headers). */
int rc_spdy_block_find(const unsigned char *b, size_t n, const char *name, const char **v,
                       size_t *vlen);

#endif
