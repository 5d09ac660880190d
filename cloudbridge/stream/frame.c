/* frame.c: the uvarint codec of the tunnel's frames (frame.h). */
#include <errno.h>

#include "frame.h"
#include "kedge/err.h"

/* Go's binary.ReadUvarint: at most 10 bytes, the 10th at most 1 (else overflow). Returns the
 * bytes used, 0 when cut short or over 64 bits. */
static size_t get_uvarint(const unsigned char *p, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    unsigned shift = 0;
    size_t i;

    for (i = 0; i < n && i < 10; i++) {
        if (p[i] < 0x80) {
            if (i == 9 && p[i] > 1)
                return 0;
            *v = x | (uint64_t)p[i] << shift;
            return i + 1;
        }
        x |= (uint64_t)(p[i] & 0x7f) << shift;
        shift += 7;
    }
    return 0;
}

static size_t put_uvarint(unsigned char *p, uint64_t v)
{
    size_t i = 0;

    while (v >= 0x80) {
        p[i++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (unsigned char)v;
    return i;
}

int stream_frame_decode(const char *b, size_t n, struct stream_frame *f)
{
    const unsigned char *p = (const unsigned char *)b;
    size_t a, c;

    a = get_uvarint(p, n, &f->id);
    if (!a)
        return KEDGE_EPARSE;
    c = get_uvarint(p + a, n - a, &f->type);
    if (!c)
        return KEDGE_EPARSE;
    f->data = b + a + c;
    f->len = n - a - c;
    return 0;
}

size_t stream_frame_head(unsigned char *out, uint64_t id, uint64_t type)
{
    size_t n = put_uvarint(out, id);

    return n + put_uvarint(out + n, type);
}

int stream_frame_encode(struct kedge_buf *b, uint64_t id, uint64_t type, const char *data,
                        size_t len)
{
    unsigned char head[STREAM_FRAME_HEAD_MAX];
    size_t h = stream_frame_head(head, id, type);

    if (kedge_buf_reserve(b, h + len) < 0)
        return -ENOMEM;
    (void)kedge_buf_append(b, head, h); /* reserved: cannot fail */
    return len ? kedge_buf_append(b, data, len) : 0;
}

const char *stream_type_name(uint64_t type)
{
    static const char *const names[STREAM_N_TYPES] = {
        "LOGS_CONNECT",   "EXEC_CONNECT",  "METRIC_CONNECT", "DATA",
        "REMOVE_CONNECT", "CLOSE_CONNECT", "ATTACH_CONNECT",
    };

    return type < STREAM_N_TYPES ? names[type] : "UNKNOWN";
}
