/* imagepull.c: kubelet's image pull decisions (imagepull.h). */
#include <stdio.h>
#include <string.h>

#include "imagepull.h"

enum imagepull_action imagepull_decide(const char *policy, bool present)
{
    if (policy && !strcmp(policy, "Always"))
        return IMAGE_PULL;
    if (present)
        return IMAGE_USE;
    return policy && !strcmp(policy, "Never") ? IMAGE_NEVER : IMAGE_PULL;
}

void imagepull_backoff_next(struct imagepull_backoff *b, uint64_t now, int64_t initial_ms,
                            int64_t max_ms)
{
    bool expired = b->step_ms && now - b->last_ms > (uint64_t)(2 * max_ms);

    if (!b->step_ms || expired)
        b->step_ms = initial_ms;
    else
        b->step_ms = b->step_ms * 2 > max_ms ? max_ms : b->step_ms * 2;
    b->last_ms = now;
}

bool imagepull_backoff_active(const struct imagepull_backoff *b, uint64_t now)
{
    return b->step_ms && now - b->last_ms < (uint64_t)b->step_ms;
}

uint64_t imagepull_backoff_until(const struct imagepull_backoff *b)
{
    return b->step_ms ? b->last_ms + (uint64_t)b->step_ms : 0;
}

void imagepull_backoff_message(const char *image, char *out, size_t n)
{
    snprintf(out, n, "Back-off pulling image \"%s\"", image);
}

void imagepull_never_message(const char *image, char *out, size_t n)
{
    snprintf(out, n, "Container image \"%s\" is not present with pull policy of Never", image);
}

void imagepull_failed_message(const char *image, const char *reason, char *out, size_t n)
{
    snprintf(out, n, "Failed to pull image \"%s\": %s", image, reason);
}
