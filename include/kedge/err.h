/* kedge error codes.
 *
 * Functions return 0 on success and a negative code on failure: -errno for system failures
 * (taken right at the call), or one of the domain codes below. One table gives the enum, the
 * stable names used in logs and tests, and the human text.
 */
#ifndef KEDGE_ERR_H
#define KEDGE_ERR_H

#define KEDGE_ERR_MAP(XX)                                                                          \
    XX(PARSE, -1001, "malformed JSON")                                                             \
    XX(SCHEMA, -1002, "JSON does not have the expected shape")                                     \
    XX(TOOBIG, -1003, "payload over the configured limit")                                         \
    XX(NODEVICE, -1004, "device is not known on this node")                                        \
    XX(STALE, -1005, "twin version older than the stored one")                                     \
    XX(STORE, -1006, "local store failed")                                                         \
    XX(NOTWIN, -1007, "update has no twin object")                                                 \
    XX(TWINKEY, -1008, "twin key has characters or a length KubeEdge rejects")                     \
    XX(TWINVALUE, -1009, "twin value has characters or a length KubeEdge rejects")                 \
    XX(TYPE, -1010, "twin value does not match its type")                                          \
    XX(BODY, -1011, "request body is wrong")                                                       \
    XX(FULL, -1012, "queue is full")                                                               \
    XX(TOPIC, -1013, "topic is not one kedge handles")                                             \
    XX(CONFIG, -1014, "invalid configuration")                                                     \
    XX(VERSION, -1015, "twin version conflict")

enum kedge_err {
#define XX(name, code, text) KEDGE_E##name = (code),
    KEDGE_ERR_MAP(XX)
#undef XX
};

/* "KEDGE_EPARSE", "ENOENT", ...: stable, for logs and tests. Never NULL. */
const char *kedge_errname(int err);
/* Human text; -errno values go through strerror(). Never NULL. */
const char *kedge_strerror(int err);

#endif
