/* The remote command codec over SPDY/3.1 (cloudbridge/stream/rc_spdy.c, rc_spdy_hdr.c) on
 * arbitrary client bytes after a good handshake; properties in fuzz_rc_common.h, plus: every
 * server send after the 101 is one whole SPDY/3 frame (a control frame of a type the server
 * sends, or DATA on a client stream). The seeds' header blocks are zlib with the SPDY
 * dictionary, so the fuzzer starts inside the compressed stream. */
#include <stdint.h>

#include "fuzz_rc_common.h"

static bool spdy_frame_ok(const char *b, size_t n)
{
    const unsigned char *p = (const unsigned char *)b;
    uint32_t len;

    if (n < 8)
        return false;
    len = (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
    if (len + 8 != n)
        return false;
    if (p[0] & 0x80) { /* SYN_REPLY, RST_STREAM, PING, GOAWAY */
        unsigned type = (unsigned)p[2] << 8 | p[3];

        return p[0] == 0x80 && p[1] == 3 && (type == 2 || type == 3 || type == 6 || type == 7);
    }
    return (p[0] | p[1] | p[2] | p[3]) != 0 && (p[4] & ~1) == 0; /* DATA: stream > 0, FIN only */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const versions[] = {"v4.channel.k8s.io", "v3.channel.k8s.io",
                                           "v2.channel.k8s.io", "channel.k8s.io"};
    const char *kv[] = {"Connection",
                        "Upgrade",
                        "Upgrade",
                        "SPDY/3.1",
                        "X-Stream-Protocol-Version",
                        versions[size ? data[0] % 4 : 0],
                        NULL};

    fz_drive("POST", kv, data, size, spdy_frame_ok);
    return 0;
}
