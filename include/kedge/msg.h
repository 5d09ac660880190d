/* The beehive message: KubeEdge's envelope for everything between edge and cloud
 * (docs/kubeedge-wire.md §4.4), and the payload of kedge's own $ke/ topics (include/kedge/ke.h).
 *
 *   {"header":{"msg_id","parent_msg_id","timestamp","resourceversion","sync","type"},
 *    "route":{"source","destination","group","operation","resource"},
 *    "content":<any JSON>}
 *
 * Header fields print in that order; msg_id and timestamp always, the rest when non-empty.
 * route is always present; its fields print when non-empty. content is any JSON value; when it
 * is a string holding JSON, the string *is* the payload (spec fact 18), so decode keeps both
 * the value's JSON text and, for strings, the unescaped text.
 */
#ifndef KEDGE_MSG_H
#define KEDGE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"

struct kedge_msg {
    char *msg_id, *parent_msg_id, *resource_version, *type;
    int64_t timestamp;
    bool sync;
    char *source, *destination, *group, *operation, *resource;
    char *content; /* JSON text of the content value ("null" when absent) */
    size_t content_len;
    bool content_is_string;
    char *content_str; /* content_is_string: the string's value (may hold NUL; see len) */
    size_t content_str_len;
};

/* Decode one message. Accepts Go's case-insensitive keys. Returns 0, KEDGE_EPARSE (not JSON),
 * KEDGE_ESCHEMA (not an object, or header/route of the wrong type), -ENOMEM.
 * *out is zeroed first and clean on failure. */
int kedge_msg_decode(const char *buf, size_t len, struct kedge_msg *out);
void kedge_msg_cleanup(struct kedge_msg *m);

/* Encode with Go's bytes. content: JSON text used as is (NULL prints null). newline: append
 * the "\n" the websocket framing wants (MQTT payloads have none). Returns 0 or -ENOMEM. */
int kedge_msg_encode(struct kedge_buf *b, const struct kedge_msg *m, bool newline);

/* Set m->content to s encoded as a JSON string (content_is_string, content_str set too).
 * Returns 0 or -ENOMEM. */
int kedge_msg_set_content_string(struct kedge_msg *m, const char *s, size_t len);
/* Set m->content to a copy of the JSON text json. Returns 0 or -ENOMEM. */
int kedge_msg_set_content_json(struct kedge_msg *m, const char *json, size_t len);
/* A deep copy of src (through the codec, so it owns everything). *dst is clean on failure.
 * Returns 0 or -ENOMEM. */
int kedge_msg_copy(struct kedge_msg *dst, const struct kedge_msg *src);
/* Fill msg_id with a fresh UUID and timestamp with the wall clock. Returns 0 or -ENOMEM. */
int kedge_msg_new_id(struct kedge_msg *m);

struct kedge_jval;
struct kedge_jw;
/* Write a parsed value back out (objects keep their member order). */
void kedge_json_write_value(struct kedge_jw *w, const struct kedge_jval *v);

#endif
