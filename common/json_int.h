/* Shared by the JSON writer (json_write.c) and parser (json.c) only. */
#ifndef KEDGE_JSON_INT_H
#define KEDGE_JSON_INT_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid, as Go's utf8.DecodeRune:
 * no overlongs, no surrogates, nothing above U+10FFFF. *cp gets the code point. */
size_t kedge_utf8_seq(const unsigned char *s, size_t n, unsigned *cp);

#endif
