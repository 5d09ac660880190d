/* The pods this node has finished: their UIDs, so that a late update does not bring one back.
 *
 * Cloudcore sends every change of a terminating pod to its node, and the edge's own final
 * status patch and its delete (grace period 0) make two more; those `update`s, each with the
 * deletionTimestamp, can reach the edge after it has stopped the pod, reported it and asked for
 * its deletion, and before the cloud's `delete` (cloud/pkg/cloudhub/dispatcher
 * message_dispatcher.go: a message with a deletionTimestamp is always sent). Kubelet's pod
 * workers keep a finished pod's UID and ignore updates of it (pod_workers.go, "pod is
 * finished"); edged does the same with this set. A UID is never reused, so remembering one too
 * long costs nothing; the set is a ring of the last PODGONE_MAX, each kept PODGONE_TTL_MS.
 */
#include <errno.h>
#include <string.h>

#include "podgone.h"
#include "kedge/alloc.h"

#define PODGONE_MAX 256
#define PODGONE_TTL_MS (30 * 60 * 1000) /* far beyond any delivery delay of the cloud's */

struct gone {
    char uid[128]; /* Kubernetes UIDs are 36 characters */
    uint64_t at_ms;
};

struct podgone {
    struct gone ring[PODGONE_MAX];
    size_t next; /* the slot the next UID takes (the oldest when the ring is full) */
};

int podgone_new(struct podgone **out)
{
    *out = kedge_calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void podgone_free(struct podgone *g)
{
    kedge_free(g);
}

void podgone_add(struct podgone *g, const char *uid, uint64_t now_ms)
{
    size_t n = uid ? strlen(uid) : 0;

    if (!g || !n || n >= sizeof(g->ring[0].uid) || podgone_has(g, uid, now_ms))
        return; /* no UID, nothing to match it by */
    memcpy(g->ring[g->next].uid, uid, n + 1);
    g->ring[g->next].at_ms = now_ms;
    g->next = (g->next + 1) % PODGONE_MAX;
}

void podgone_forget(struct podgone *g, const char *uid)
{
    size_t i;

    for (i = 0; g && uid && i < PODGONE_MAX; i++)
        if (!strcmp(g->ring[i].uid, uid))
            g->ring[i].uid[0] = '\0';
}

bool podgone_has(const struct podgone *g, const char *uid, uint64_t now_ms)
{
    size_t i;

    if (!g || !uid || !*uid)
        return false;
    for (i = 0; i < PODGONE_MAX; i++)
        if (g->ring[i].uid[0] && now_ms - g->ring[i].at_ms < PODGONE_TTL_MS &&
            !strcmp(g->ring[i].uid, uid))
            return true;
    return false;
}
