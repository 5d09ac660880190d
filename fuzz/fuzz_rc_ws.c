/* The remote command codec over WebSocket (cloudbridge/stream/rc_ws.c) on arbitrary client
 * bytes after a good handshake; properties in fuzz_rc_common.h, plus: every server send after
 * the 101 is one whole unmasked frame with a known opcode. */
#include <stdint.h>

#include "fuzz_rc_common.h"

static bool ws_frame_ok(const char *b, size_t n)
{
    const unsigned char *p = (const unsigned char *)b;
    uint64_t len;
    size_t hl = 2, i;
    int op;

    if (n < 2 || (p[1] & 0x80) || (p[0] & 0x70) || !(p[0] & 0x80))
        return false;
    op = p[0] & 0x0f;
    if (op != 1 && op != 2 && op != 8 && op != 10)
        return false;
    len = p[1] & 0x7f;
    if (len == 126) {
        if (n < 4)
            return false;
        len = (uint64_t)p[2] << 8 | p[3];
        hl = 4;
    } else if (len == 127) {
        if (n < 10)
            return false;
        for (len = 0, i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        hl = 10;
    }
    return hl + len == n && (op < 8 || len <= 125);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const protos[] = {"v5.channel.k8s.io", "v4.channel.k8s.io",
                                         "v4.base64.channel.k8s.io", "channel.k8s.io"};
    const char *kv[] = {"Upgrade",
                        "websocket",
                        "Connection",
                        "Upgrade",
                        "Sec-WebSocket-Key",
                        "dGhlIHNhbXBsZSBub25jZQ==",
                        "Sec-WebSocket-Version",
                        "13",
                        "Sec-WebSocket-Protocol",
                        protos[size ? data[0] % 4 : 0],
                        NULL};

    fz_drive("GET", kv, data, size, ws_frame_ok);
    return 0;
}
