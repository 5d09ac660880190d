/* SPDY/3 header blocks (rc_spdy.h): the two zlib streams of a connection and the name/value block
 * format (draft-mbelshe-httpbis-spdy-00 §2.6.10: 32-bit counts and lengths, several values of one
 * name joined by NUL).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "kedge/alloc.h"
#include "rc_spdy.h"

#define BLOCK_MAX_HEADERS 256

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return kedge_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    kedge_free(p);
}

int rc_spdy_z_init(struct rc_spdy_z *z)
{
    memset(z, 0, sizeof(*z));
    z->in.zalloc = z->out.zalloc = z_alloc;
    z->in.zfree = z->out.zfree = z_free;
    if (inflateInit(&z->in) != Z_OK)
        return -ENOMEM;
    z->in_init = true;
    /* A 2 KiB window (> the dictionary) and a small hash keep the server side near 10 KiB per
     * connection; the client's inflater takes any window (Go's compress/flate does). */
    if (deflateInit2(&z->out, Z_BEST_COMPRESSION, Z_DEFLATED, 11, 2, Z_DEFAULT_STRATEGY) != Z_OK ||
        deflateSetDictionary(&z->out, rc_spdy_dict, RC_SPDY_DICT_LEN) != Z_OK) {
        if (z->out.state)
            (void)deflateEnd(&z->out);
        rc_spdy_z_cleanup(z);
        return -ENOMEM;
    }
    z->out_init = true;
    return 0;
}

void rc_spdy_z_cleanup(struct rc_spdy_z *z)
{
    if (z->in_init)
        (void)inflateEnd(&z->in);
    if (z->out_init)
        (void)deflateEnd(&z->out);
    z->in_init = z->out_init = false;
}

int rc_spdy_inflate(struct rc_spdy_z *z, const void *b, size_t n, size_t max, struct kedge_buf *out)
{
    unsigned char chunk[1024];

    kedge_buf_reset(out);
    z->in.next_in = (Bytef *)(uintptr_t)b;
    z->in.avail_in = (uInt)n;
    do {
        uInt before = z->in.avail_in;
        size_t got;
        int zr;

        z->in.next_out = chunk;
        z->in.avail_out = sizeof(chunk);
        zr = inflate(&z->in, Z_SYNC_FLUSH);
        if (zr == Z_NEED_DICT)
            zr = inflateSetDictionary(&z->in, rc_spdy_dict, RC_SPDY_DICT_LEN);
        if (zr == Z_MEM_ERROR)
            return -ENOMEM;
        if (zr != Z_OK && zr != Z_BUF_ERROR) /* data error, wrong dictionary, stream end */
            return -EPROTO;
        got = sizeof(chunk) - z->in.avail_out;
        if (zr == Z_BUF_ERROR && !got && z->in.avail_in && z->in.avail_in == before)
            return -EPROTO; /* stuck with input left */
        if (out->len + got > max)
            return -EPROTO;
        if (kedge_buf_append(out, chunk, got) < 0)
            return -ENOMEM;
    } while (z->in.avail_in || z->in.avail_out == 0);
    return 0;
}

int rc_spdy_deflate(struct rc_spdy_z *z, const void *b, size_t n, struct kedge_buf *out)
{
    unsigned char chunk[256];

    z->out.next_in = (Bytef *)(uintptr_t)b;
    z->out.avail_in = (uInt)n;
    do {
        z->out.next_out = chunk;
        z->out.avail_out = sizeof(chunk);
        if (deflate(&z->out, Z_SYNC_FLUSH) == Z_STREAM_ERROR)
            return -EPROTO;
        if (kedge_buf_append(out, chunk, sizeof(chunk) - z->out.avail_out) < 0)
            return -ENOMEM;
    } while (z->out.avail_out == 0);
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A 32-bit length and that many bytes at b[*off..n). 0 or -EPROTO. */
static int field(const unsigned char *b, size_t n, size_t *off, const unsigned char **f,
                 size_t *len)
{
    uint32_t l;

    if (n - *off < 4)
        return -EPROTO;
    l = be32(b + *off);
    *off += 4;
    if (l > n - *off)
        return -EPROTO;
    *f = b + *off;
    *len = l;
    *off += l;
    return 0;
}

int rc_spdy_block_find(const unsigned char *b, size_t n, const char *name, const char **v,
                       size_t *vlen)
{
    size_t off = 4, i, want = strlen(name);
    uint32_t count;
    int found = 0;

    if (n < 4)
        return -EPROTO;
    count = be32(b);
    if (count > BLOCK_MAX_HEADERS)
        return -EPROTO;
    for (i = 0; i < count; i++) {
        const unsigned char *k, *val;
        size_t klen, len;

        if (field(b, n, &off, &k, &klen) < 0 || field(b, n, &off, &val, &len) < 0)
            return -EPROTO;
        if (!found && klen == want && !strncasecmp((const char *)k, name, want)) {
            const unsigned char *nul = memchr(val, '\0', len);

            *v = (const char *)val;
            *vlen = nul ? (size_t)(nul - val) : len; /* Header.Get: the first value */
            found = 1;
        }
    }
    return off == n ? found : -EPROTO;
}
