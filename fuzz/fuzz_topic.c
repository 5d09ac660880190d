/* kedge_topic_parse on arbitrary bytes.
 *
 * Properties:
 *  - an id, when there is one, is a non-empty slice of the input between the prefix and the
 *    suffix of its kind, of one level or two (device) / one (node);
 *  - the request topic rebuilt from (kind, id) is the input, byte for byte, and parses back
 *    to the same kind and id;
 *  - no reply topic kedge builds from that id (result, document, delta, get result, state
 *    result, membership get result) is ever taken for a request: kedge never answers itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kedge/buf.h"
#include "kedge/topic.h"

static const char *request_suffix(enum kedge_topic_kind kind)
{
    switch (kind) {
    case KEDGE_TOPIC_TWIN_UPDATE:
        return KEDGE_SFX_TWIN_UPDATE;
    case KEDGE_TOPIC_TWIN_GET:
        return KEDGE_SFX_TWIN_GET;
    case KEDGE_TOPIC_TWIN_CLOUD_UPDATED:
        return KEDGE_SFX_TWIN_CLOUD_UPDATED;
    case KEDGE_TOPIC_STATE_UPDATE:
        return KEDGE_SFX_STATE_UPDATE;
    case KEDGE_TOPIC_STATE_GET:
        return KEDGE_SFX_STATE_GET;
    case KEDGE_TOPIC_DEVICE_UPDATED:
        return KEDGE_SFX_DEVICE_UPDATED;
    case KEDGE_TOPIC_MEMBERSHIP_GET:
        return KEDGE_SFX_MEMBERSHIP_GET;
    default:
        return NULL;
    }
}

static void check_not_request(const struct kedge_buf *b)
{
    struct kedge_topic r;

    kedge_topic_parse(b->data, b->len, &r);
    CHECK(r.kind == KEDGE_TOPIC_OTHER);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const device_replies[] = {
        KEDGE_SFX_TWIN_UPDATE_RESULT, KEDGE_SFX_TWIN_UPDATE_DOCUMENT, KEDGE_SFX_TWIN_UPDATE_DELTA,
        KEDGE_SFX_TWIN_GET_RESULT, KEDGE_SFX_STATE_UPDATE_RESULT};
    const char *topic = (const char *)data;
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_topic t, again;
    const char *sfx;
    size_t i, slashes = 0;

    kedge_topic_parse(topic, size, &t);
    sfx = request_suffix(t.kind);
    if (!sfx) {
        CHECK(t.id == NULL && t.id_len == 0);
        return 0;
    }
    /* a non-empty slice of the input, right after the prefix, right before the suffix */
    CHECK(t.id_len > 0);
    CHECK(t.id >= topic && t.id + t.id_len <= topic + size);
    CHECK((size_t)(t.id + t.id_len - topic) + strlen(sfx) == size);
    CHECK(!memcmp(t.id + t.id_len, sfx, strlen(sfx)));
    for (i = 0; i < t.id_len; i++)
        slashes += t.id[i] == '/';
    CHECK(t.id[0] != '/' && t.id[t.id_len - 1] != '/');
    if (t.kind == KEDGE_TOPIC_MEMBERSHIP_GET) {
        CHECK(slashes == 0);
        CHECK(t.id == topic + strlen(KEDGE_NODE_PREFIX));
        if (!memchr(t.id, '\0', t.id_len)) {
            char *node = strndup(t.id, t.id_len);
            CHECK(node);
            CHECK(kedge_topic_node(&b, node, sfx) == 0);
            CHECK(b.len == size && !memcmp(b.data, topic, size));
            CHECK(kedge_topic_node(&b, node, KEDGE_SFX_MEMBERSHIP_GET_RESULT) == 0);
            check_not_request(&b);
            free(node);
        }
        kedge_buf_cleanup(&b);
        return 0;
    }
    CHECK(slashes <= 1);
    CHECK(t.id == topic + strlen(KEDGE_DEVICE_PREFIX));
    /* rebuilt from (kind, id): the same bytes, the same parse */
    CHECK(kedge_topic_device(&b, t.id, t.id_len, sfx) == 0);
    CHECK(b.len == size && !memcmp(b.data, topic, size));
    kedge_topic_parse(b.data, b.len, &again);
    CHECK(again.kind == t.kind && again.id_len == t.id_len);
    CHECK(!memcmp(again.id, t.id, t.id_len));
    for (i = 0; i < sizeof(device_replies) / sizeof(device_replies[0]); i++) {
        CHECK(kedge_topic_device(&b, t.id, t.id_len, device_replies[i]) == 0);
        check_not_request(&b);
    }
    kedge_buf_cleanup(&b);
    return 0;
}
