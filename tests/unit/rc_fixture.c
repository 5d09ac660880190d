/* Client side for the remote command suites (rc_fixture.h). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kedge/alloc.h"
#include "rc_fixture.h"
#include "rc_spdy.h" /* the dictionary: its Adler-32 is checked by a test */

static void on_send(void *ctx, const char *b, size_t n)
{
    struct rec *t = ctx;

    /* the recorder's own buffer is libc: fault injection is for the codec's allocations */
    char *grown = realloc(t->out.data, t->out.len + n + 1);

    ck_assert_ptr_nonnull(grown);
    t->out.data = grown;
    memcpy(t->out.data + t->out.len, b, n);
    t->out.len += n;
    t->out.data[t->out.len] = '\0';
}

static void on_ready(void *ctx, const struct rc_options *o)
{
    struct rec *t = ctx;

    t->ready++;
    t->o = *o;
    if (o->argc)
        snprintf(t->argv0, sizeof(t->argv0), "%s", o->argv[0]);
    if (t->exit_in_ready >= 0)
        ck_assert_int_eq(rc_exit(t->rc, t->exit_in_ready), 0);
}

static void on_stdin(void *ctx, const char *b, size_t n)
{
    struct rec *t = ctx;
    char *grown = realloc(t->in.data, t->in.len + n + 1);

    ck_assert_int_eq(t->stdin_closes, 0);
    ck_assert_ptr_nonnull(grown);
    t->in.data = grown;
    memcpy(t->in.data + t->in.len, b, n);
    t->in.len += n;
    t->in.data[t->in.len] = '\0';
}

static void on_stdin_close(void *ctx)
{
    ((struct rec *)ctx)->stdin_closes++;
}

static void on_resize(void *ctx, unsigned w, unsigned h)
{
    struct rec *t = ctx;

    ck_assert_int_lt(t->nresize, 16);
    t->w[t->nresize] = w;
    t->h[t->nresize++] = h;
}

static void on_closed(void *ctx, const char *why)
{
    struct rec *t = ctx;

    t->closes++;
    snprintf(t->why, sizeof(t->why), "%s", why);
}

const struct rc_fns rec_fns = {on_send, on_ready, on_stdin, on_stdin_close, on_resize, on_closed};

void rec_init(struct rec *t)
{
    memset(t, 0, sizeof(*t));
    t->exit_in_ready = -1;
}

void rec_cleanup(struct rec *t)
{
    rc_free(t->rc);
    free(t->out.data);
    free(t->in.data);
    memset(t, 0, sizeof(*t));
}

const char *hdrs_get(void *h, const char *name)
{
    const struct hdrs *hd = h;
    size_t i;

    for (i = 0; hd->kv[i]; i += 2)
        if (!strcasecmp(hd->kv[i], name))
            return hd->kv[i + 1];
    return NULL;
}

int accept_req(struct rec *t, const char *method, const char *query, const struct hdrs *h,
               bool attach)
{
    struct rc_upgrade u = {method, query, hdrs_get, (void *)h, attach};

    return rc_accept(&u, &rec_fns, t, &t->rc);
}

size_t head_len(const struct rec *t)
{
    const char *e = t->out.data ? strstr(t->out.data, "\r\n\r\n") : NULL;

    ck_assert_ptr_nonnull(e);
    return (size_t)(e - t->out.data) + 4;
}

int input_bytewise(struct rc *r, const char *b, size_t n)
{
    size_t i;
    int rc = 0;

    for (i = 0; i < n && rc == 0; i++)
        rc = rc_input(r, b + i, 1);
    return rc;
}

/* ---- WebSocket ------------------------------------------------------------------------------ */

static void put(struct kedge_buf *b, const void *p, size_t n)
{
    ck_assert_int_eq(kedge_buf_append(b, p, n), 0);
}

void ws_frame(struct kedge_buf *b, bool fin, int op, const void *p, size_t n)
{
    static const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    unsigned char h[14];
    size_t hl = 2, i;

    h[0] = (unsigned char)((fin ? 0x80 : 0) | op);
    if (n < 126) {
        h[1] = (unsigned char)(0x80 | n);
    } else if (n <= 0xffff) {
        h[1] = 0x80 | 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(h + hl, mask, 4);
    put(b, h, hl + 4);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)(((const unsigned char *)p)[i] ^ mask[i & 3]);
        put(b, &c, 1);
    }
}

void ws_msg(struct kedge_buf *b, int ch, const void *p, size_t n)
{
    struct kedge_buf m = KEDGE_BUF_INIT;
    unsigned char c = (unsigned char)ch;

    put(&m, &c, 1);
    put(&m, p, n);
    ws_frame(b, true, 2, m.data, m.len);
    kedge_buf_cleanup(&m);
}

size_t ws_parse(const struct rec *t, size_t off, struct wsf *f, size_t max)
{
    const unsigned char *p = (const unsigned char *)t->out.data;
    size_t k = 0;

    while (off < t->out.len) {
        uint64_t len;
        size_t hl = 2, i;

        ck_assert_int_lt(k, max);
        ck_assert_uint_ge(t->out.len - off, 2);
        ck_assert_msg(!(p[off + 1] & 0x80), "server frames are not masked");
        len = p[off + 1] & 0x7f;
        if (len == 126) {
            len = (uint64_t)p[off + 2] << 8 | p[off + 3];
            hl = 4;
        } else if (len == 127) {
            for (len = 0, i = 0; i < 8; i++)
                len = len << 8 | p[off + 2 + i];
            hl = 10;
        }
        ck_assert_uint_ge(t->out.len - off, hl + len);
        f[k].op = p[off] & 0x0f;
        f[k].fin = (p[off] & 0x80) != 0;
        f[k].p = p + off + hl;
        f[k].n = (size_t)len;
        k++;
        off += hl + (size_t)len;
    }
    return k;
}

/* ---- SPDY ----------------------------------------------------------------------------------- */

void spdy_client_init(struct spdy_client *c)
{
    memset(c, 0, sizeof(*c));
    /* spdystream's framer: zlib.NewWriterLevelDict(BestCompression, the dictionary) */
    ck_assert_int_eq(deflateInit(&c->def, Z_BEST_COMPRESSION), Z_OK);
    ck_assert_int_eq(deflateSetDictionary(&c->def, rc_spdy_dict, RC_SPDY_DICT_LEN), Z_OK);
    ck_assert_int_eq(inflateInit(&c->inf), Z_OK);
}

void spdy_client_cleanup(struct spdy_client *c)
{
    (void)deflateEnd(&c->def);
    (void)inflateEnd(&c->inf);
}

static void put32(struct kedge_buf *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    put(b, p, 4);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void spdy_control(struct kedge_buf *b, unsigned version, unsigned type, unsigned flags,
                  const void *p, size_t n)
{
    put32(b, 0x80000000u | version << 16 | type);
    put32(b, (uint32_t)flags << 24 | (uint32_t)n);
    put(b, p, n);
}

void spdy_syn_stream(struct spdy_client *c, struct kedge_buf *b, uint32_t id, const char *type,
                     bool fin)
{
    struct kedge_buf blk = KEDGE_BUF_INIT, f = KEDGE_BUF_INIT;
    unsigned char z[512];

    /* client-go sets "streamType"; spdystream lowercases names on the wire */
    put32(&blk, 1);
    put32(&blk, 10);
    put(&blk, "streamtype", 10);
    put32(&blk, (uint32_t)strlen(type));
    put(&blk, type, strlen(type));
    c->def.next_in = (Bytef *)blk.data;
    c->def.avail_in = (uInt)blk.len;
    c->def.next_out = z;
    c->def.avail_out = sizeof(z);
    ck_assert_int_eq(deflate(&c->def, Z_SYNC_FLUSH), Z_OK);
    ck_assert_uint_gt(c->def.avail_out, 0);
    put32(&f, id);
    put32(&f, 0); /* associated-to */
    put(&f, "\0\0", 2);
    put(&f, z, sizeof(z) - c->def.avail_out);
    spdy_control(b, 3, 1, fin ? 1 : 0, f.data, f.len);
    kedge_buf_cleanup(&blk);
    kedge_buf_cleanup(&f);
}

void spdy_data(struct kedge_buf *b, uint32_t id, bool fin, const void *p, size_t n)
{
    put32(b, id);
    put32(b, (uint32_t)(fin ? 1 : 0) << 24 | (uint32_t)n);
    put(b, p, n);
}

static uint32_t reply_headers(struct spdy_client *c, const unsigned char *p, size_t n)
{
    unsigned char out[256];
    int zr;

    c->inf.next_in = (Bytef *)(uintptr_t)p;
    c->inf.avail_in = (uInt)n;
    c->inf.next_out = out;
    c->inf.avail_out = sizeof(out);
    zr = inflate(&c->inf, Z_SYNC_FLUSH);
    if (zr == Z_NEED_DICT) {
        ck_assert_int_eq(inflateSetDictionary(&c->inf, rc_spdy_dict, RC_SPDY_DICT_LEN), Z_OK);
        zr = inflate(&c->inf, Z_SYNC_FLUSH);
    }
    ck_assert_int_eq(zr, Z_OK);
    ck_assert_uint_eq(c->inf.avail_in, 0);
    ck_assert_uint_eq(sizeof(out) - c->inf.avail_out, 4);
    return get32(out);
}

size_t spdy_parse(struct spdy_client *c, const struct rec *t, size_t off, struct spdyf *f,
                  size_t max)
{
    const unsigned char *p = (const unsigned char *)t->out.data;
    size_t k = 0;

    while (off < t->out.len) {
        uint32_t w0, w1, len;
        struct spdyf *x = &f[k];

        ck_assert_int_lt(k, max);
        ck_assert_uint_ge(t->out.len - off, 8);
        w0 = get32(p + off);
        w1 = get32(p + off + 4);
        len = w1 & 0xffffff;
        ck_assert_uint_ge(t->out.len - off - 8, len);
        memset(x, 0, sizeof(*x));
        x->control = (w0 & 0x80000000u) != 0;
        x->flags = w1 >> 24;
        x->p = p + off + 8;
        x->n = len;
        if (x->control) {
            ck_assert_uint_eq((w0 >> 16) & 0x7fff, 3);
            x->type = w0 & 0xffff;
            if (len >= 4)
                x->id = get32(x->p) & 0x7fffffff;
            if (len >= 8)
                x->status = get32(x->p + 4);
            if (x->type == 6)
                x->status = x->id;
            if (x->type == 2)
                x->nheaders = reply_headers(c, x->p + 4, len - 4);
        } else {
            x->id = w0 & 0x7fffffff;
        }
        k++;
        off += 8 + len;
    }
    return k;
}
