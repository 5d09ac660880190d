/* $hw/events topic classification and reply-topic building (include/kedge/topic.h).
 *
 * Parsed by level: prefix, then an id of one level (bare name, KubeEdge <= v1.15) or two
 * (namespace/name, v1.17+), then a known suffix. Longer suffixes are tried first so that
 * ".../twin/update" is never read as id ".../twin" with suffix "/update".
 */
#include <errno.h>
#include <string.h>

#include "kedge/topic.h"

struct suffix {
    const char *text;
    enum kedge_topic_kind kind;
};

static const struct suffix device_suffixes[] = {
    {KEDGE_SFX_TWIN_UPDATE, KEDGE_TOPIC_TWIN_UPDATE},
    {KEDGE_SFX_TWIN_GET, KEDGE_TOPIC_TWIN_GET},
    {KEDGE_SFX_TWIN_CLOUD_UPDATED, KEDGE_TOPIC_TWIN_CLOUD_UPDATED},
    {KEDGE_SFX_STATE_UPDATE, KEDGE_TOPIC_STATE_UPDATE},
    {KEDGE_SFX_STATE_GET, KEDGE_TOPIC_STATE_GET},
    {KEDGE_SFX_DEVICE_UPDATED, KEDGE_TOPIC_DEVICE_UPDATED},
};

static int starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    return len >= n && memcmp(s, prefix, n) == 0;
}

static size_t count_levels(const char *s, size_t len)
{
    size_t i, n = 1;

    for (i = 0; i < len; i++)
        if (s[i] == '/')
            n++;
    return n;
}

/* An id is one or two non-empty levels. */
static int id_ok(const char *id, size_t len)
{
    const char *slash;

    if (len == 0 || id[0] == '/' || id[len - 1] == '/')
        return 0;
    slash = memchr(id, '/', len);
    return !slash || !memchr(slash + 1, '/', len - (size_t)(slash + 1 - id));
}

static void parse_device(const char *rest, size_t len, struct kedge_topic *out)
{
    size_t i;

    for (i = 0; i < sizeof(device_suffixes) / sizeof(device_suffixes[0]); i++) {
        const char *sfx = device_suffixes[i].text;
        size_t n = strlen(sfx);

        if (len <= n || memcmp(rest + len - n, sfx, n) != 0)
            continue;
        if (!id_ok(rest, len - n))
            continue;
        out->kind = device_suffixes[i].kind;
        out->id = rest;
        out->id_len = len - n;
        return;
    }
}

static void parse_node(const char *rest, size_t len, struct kedge_topic *out)
{
    size_t n = strlen(KEDGE_SFX_MEMBERSHIP_GET);

    /* $hw/events/node/{node}/membership/get: the node is exactly one level. */
    if (len <= n || memcmp(rest + len - n, KEDGE_SFX_MEMBERSHIP_GET, n) != 0)
        return;
    if (memchr(rest, '/', len - n))
        return;
    out->kind = KEDGE_TOPIC_MEMBERSHIP_GET;
    out->id = rest;
    out->id_len = len - n;
}

/* Topics edgecore forwards to the cloud as uploads (docs/kubeedge-wire.md §1.2). */
static int is_upload(const char *t, size_t len)
{
    const char *slash;

    if (starts_with(t, len, "$hw/events/upload") &&
        (len == strlen("$hw/events/upload") || t[strlen("$hw/events/upload")] == '/'))
        return 1;
    if (len == strlen("SYS/dis/upload_records") && starts_with(t, len, "SYS/dis/upload_records"))
        return 1;
    /* +/user/#: any first level, then "user" (edgecore v1.6+). '+' does not match a first
     * level starting with '$' only for subscriptions; edgecore would not see $x/user. */
    slash = len ? memchr(t, '/', len) : NULL; /* (NULL, 0) is an empty topic */
    if (slash && t[0] != '$') {
        size_t rest = len - (size_t)(slash + 1 - t);
        if (rest >= 4 && memcmp(slash + 1, "user", 4) == 0 && (rest == 4 || slash[5] == '/'))
            return 1;
    }
    return 0;
}

void kedge_topic_parse(const char *topic, size_t len, struct kedge_topic *out)
{
    memset(out, 0, sizeof(*out));
    if (starts_with(topic, len, KEDGE_DEVICE_PREFIX)) {
        size_t p = strlen(KEDGE_DEVICE_PREFIX);
        if (count_levels(topic + p, len - p) <= 5)
            parse_device(topic + p, len - p, out);
        return;
    }
    if (starts_with(topic, len, KEDGE_NODE_PREFIX)) {
        size_t p = strlen(KEDGE_NODE_PREFIX);
        parse_node(topic + p, len - p, out);
        return;
    }
    if (is_upload(topic, len))
        out->kind = KEDGE_TOPIC_UPLOAD;
}

int kedge_topic_device(struct kedge_buf *b, const char *id, size_t id_len, const char *suffix)
{
    kedge_buf_reset(b);
    if (kedge_buf_puts(b, KEDGE_DEVICE_PREFIX) < 0 || kedge_buf_append(b, id, id_len) < 0 ||
        kedge_buf_puts(b, suffix) < 0)
        return -ENOMEM;
    return 0;
}

int kedge_topic_node(struct kedge_buf *b, const char *node, const char *suffix)
{
    kedge_buf_reset(b);
    if (kedge_buf_puts(b, KEDGE_NODE_PREFIX) < 0 || kedge_buf_puts(b, node) < 0 ||
        kedge_buf_puts(b, suffix) < 0)
        return -ENOMEM;
    return 0;
}
