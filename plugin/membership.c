/* The cloud's membership update (membership.h). */
#include <errno.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/topic.h"
#include "kedge/twin.h"
#include "kedge/util.h"
#include "membership.h"

static struct kedge_ratelimit oom_rl = KEDGE_RATELIMIT_INIT(10000, 5);

static int dup_or_empty(char **dst, const char *src)
{
    *dst = kedge_strdup(src ? src : "");
    return *dst ? 0 : -ENOMEM;
}

/* A registry device from the one received: same fields, no twins yet (devicetwin_sync adds
 * them so that versions and types follow the usual rules). */
static int new_device(const struct kedge_device *in, struct kedge_device **out)
{
    struct kedge_device *d = kedge_calloc(1, sizeof(*d));
    size_t i;

    *out = NULL;
    if (!d)
        return -ENOMEM;
    if (dup_or_empty(&d->id, in->id) < 0 || dup_or_empty(&d->name, in->name) < 0 ||
        dup_or_empty(&d->description, in->description) < 0 ||
        dup_or_empty(&d->state, in->state) < 0 || dup_or_empty(&d->last_online, "") < 0)
        goto oom;
    if (in->n_attrs) {
        d->attrs = kedge_calloc(in->n_attrs, sizeof(*d->attrs));
        if (!d->attrs)
            goto oom;
        for (i = 0; i < in->n_attrs; i++) {
            const struct kedge_attr *a = &in->attrs[i];
            struct kedge_attr *b = &d->attrs[d->n_attrs++];
            b->optional = a->optional;
            if (dup_or_empty(&b->name, a->name) < 0 || dup_or_empty(&b->value, a->value) < 0 ||
                dup_or_empty(&b->type, a->type) < 0 || dup_or_empty(&b->meta_col, "") < 0 ||
                dup_or_empty(&b->description, a->description) < 0)
                goto oom;
        }
    }
    *out = d;
    return 0;
oom:
    kedge_device_free(d);
    return -ENOMEM;
}

static void queue_updated(struct devicetwin *dt, const struct kedge_device *added,
                          const struct kedge_device *removed)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char uuid[KEDGE_UUID_LEN + 1];
    size_t len;
    char *payload;

    kedge_uuid4(uuid);
    if (kedge_topic_node(&dt->topic, dt->cfg->node_name, KEDGE_SFX_MEMBERSHIP_UPDATED) < 0 ||
        kedge_membership_updated_encode(&b, uuid, kedge_wall_ms(), added, removed) < 0 ||
        !(payload = kedge_buf_take(&b, &len))) {
        kedge_buf_cleanup(&b);
        kedge_log_limited(&oom_rl, "membership", KEDGE_LOG_ERR,
                          "membership: out of memory, membership/updated lost");
        return;
    }
    if (replies_take(dt->out, dt->topic.data, payload, len, REPLY_DROP, NULL) < 0) {
        kedge_free(payload);
        kedge_log_limited(&oom_rl, "membership", KEDGE_LOG_ERR,
                          "membership: out of memory, membership/updated lost");
    }
}

static int add_one(struct devicetwin *dt, const struct kedge_device *in)
{
    struct kedge_device *d;
    size_t i;
    int rc;

    if (registry_find(dt->reg, in->id, strlen(in->id))) {
        /* known: no announcement; twins follow the cloud's versions */
        return in->n_twins ? devicetwin_sync(dt, in->id, "", in->twins, in->n_twins) : 0;
    }
    rc = new_device(in, &d);
    if (rc < 0)
        return rc;
    rc = store_device_insert(dt->store, d);
    for (i = 0; rc == 0 && i < d->n_attrs; i++)
        rc = store_attr_write(dt->store, d->id, &d->attrs[i], true);
    if (rc == 0 && (rc = registry_put(dt->reg, d)) < 0)
        kedge_device_free(d);
    if (rc < 0)
        return rc;
    (void)batch_mark_dirty(dt->batch, in->id);
    if (in->n_twins && (rc = devicetwin_sync(dt, in->id, "", in->twins, in->n_twins)) < 0)
        return rc;
    kedge_log(KEDGE_LOG_NOTICE, "membership: device=%s added with twins=%zu", in->id, in->n_twins);
    queue_updated(dt, in, NULL);
    return 0;
}

static int remove_one(struct devicetwin *dt, const struct kedge_device *in)
{
    int rc;

    if (!registry_find(dt->reg, in->id, strlen(in->id)))
        return 0;
    rc = store_device_delete(dt->store, in->id);
    if (rc < 0)
        return rc;
    (void)batch_mark_dirty(dt->batch, in->id);
    registry_remove(dt->reg, in->id);
    kedge_log(KEDGE_LOG_NOTICE, "membership: device=%s removed", in->id);
    queue_updated(dt, NULL, in);
    return 0;
}

/* A device id devices can reach: one or two non-empty topic levels without wildcards, and
 * twin names KubeEdge accepts. */
static bool device_ok(const struct kedge_device *d, const char **reason)
{
    const char *id = d->id, *slash = strchr(id, '/');
    size_t i;

    if (!*id || strpbrk(id, "+#") || id[0] == '/' || id[strlen(id) - 1] == '/' ||
        (slash && strchr(slash + 1, '/'))) {
        *reason = "device id must be name or namespace/name, without + or #";
        return false;
    }
    for (i = 0; i < d->n_twins; i++) {
        if (!kedge_twin_key_valid(d->twins[i].name, strlen(d->twins[i].name))) {
            *reason = KEDGE_REASON_KEY;
            return false;
        }
    }
    return true;
}

int membership_update(struct devicetwin *dt, const char *content, size_t len, const char **reason)
{
    struct kedge_membership m;
    size_t i;
    int rc;

    *reason = NULL;
    rc = kedge_membership_decode(content, len, &m);
    if (rc < 0) {
        *reason = rc == KEDGE_ESCHEMA ? "a device in the membership has no id"
                                      : "membership content does not parse";
        return rc;
    }
    for (i = 0; i < m.n_added; i++) {
        if (!device_ok(m.added[i], reason)) {
            rc = KEDGE_ESCHEMA;
            goto out;
        }
    }
    if (!store_ok(dt->store)) {
        *reason = store_error(dt->store);
        rc = KEDGE_ESTORE;
        goto out;
    }
    for (i = 0; i < m.n_added && rc == 0; i++)
        rc = add_one(dt, m.added[i]);
    for (i = 0; i < m.n_removed && rc == 0; i++)
        rc = remove_one(dt, m.removed[i]);
    if (rc < 0)
        *reason = rc == KEDGE_ESTORE ? store_error(dt->store) : kedge_strerror(rc);
out:
    kedge_membership_cleanup(&m);
    return rc;
}
