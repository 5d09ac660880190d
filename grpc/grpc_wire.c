/* gRPC's wire details beside HTTP/2: see grpc_wire.h. */
#include "grpc_wire.h"

#include <string.h>

#include "grpc.h"
#include "kedge/alloc.h"

void grpc_wire_prefix(uint8_t out[GRPC_PREFIX_LEN], uint32_t len)
{
    out[0] = 0; /* never compressed */
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

bool grpc_wire_content_type_ok(const uint8_t *v, size_t n)
{
    static const char base[] = "application/grpc";
    size_t b = sizeof(base) - 1;

    if (n < b || memcmp(v, base, b) != 0)
        return false;
    return n == b || v[b] == '+' || v[b] == ';';
}

size_t grpc_wire_encode_message(const char *msg, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, o = 0;

    for (i = 0; msg[i] && i < GRPC_MESSAGE_MAX; i++) {
        unsigned char ch = (unsigned char)msg[i];

        if (ch >= ' ' && ch <= '~' && ch != '%') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return o;
}

static int hexval(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

char *grpc_wire_decode_message(const uint8_t *v, size_t n)
{
    char *out = kedge_malloc(n + 1);
    size_t i, o = 0;

    if (!out)
        return NULL;
    for (i = 0; i < n; i++) {
        if (v[i] == '%' && i + 2 < n && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
            out[o++] = (char)(hexval(v[i + 1]) << 4 | hexval(v[i + 2]));
            i += 2;
        } else {
            out[o++] = (char)v[i];
        }
    }
    out[o] = '\0';
    return out;
}

int grpc_wire_code_of_http(int http)
{
    switch (http) {
    case 400:
        return GRPC_INTERNAL;
    case 401:
        return 16; /* UNAUTHENTICATED */
    case 403:
        return 7; /* PERMISSION_DENIED */
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
}

int grpc_wire_parse_int(const uint8_t *v, size_t n)
{
    int x = 0;
    size_t i;

    if (n == 0 || n > 9)
        return -1;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}
