/* The small pieces of gRPC's wire that are not HTTP/2 (grpc's doc/PROTOCOL-HTTP2.md): the
 * message prefix, grpc-message's percent-encoding, content-type, and the HTTP status of a
 * response without grpc-status. Pure functions, shared by grpc.c's two ends.
 */
#ifndef KEDGE_GRPC_WIRE_H
#define KEDGE_GRPC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRPC_PREFIX_LEN 5
/* grpc-message is cut to this many bytes before encoding: a status line, not a payload. */
#define GRPC_MESSAGE_MAX 1024

void grpc_wire_prefix(uint8_t out[GRPC_PREFIX_LEN], uint32_t len);
/* "application/grpc", or "application/grpc+..." / "application/grpc;..." (grpc-go's rule). */
bool grpc_wire_content_type_ok(const uint8_t *v, size_t n);
/* Percent-encode (bytes outside ' '..'~' and '%') the first GRPC_MESSAGE_MAX bytes of msg into
 * out, which holds 3 * GRPC_MESSAGE_MAX + 1 bytes. Returns the length. */
size_t grpc_wire_encode_message(const char *msg, char *out);
/* Decode a received grpc-message (malformed escapes kept as they are) into a fresh string
 * (kedge_malloc), NULL on -ENOMEM. */
char *grpc_wire_decode_message(const uint8_t *v, size_t n);
/* The code of a response that ended with HTTP status http and no grpc-status (grpc's
 * doc/http-grpc-status-mapping.md). */
int grpc_wire_code_of_http(int http);
/* A decimal number of at most 9 digits, else -1. */
int grpc_wire_parse_int(const uint8_t *v, size_t n);

#endif
