/* kubelet's image manager decisions (pkg/kubelet/images/image_manager.go EnsureImageExists):
 * whether to pull, the back-off between failed pulls, and the messages a pod status shows.
 * Pure: no I/O, times passed in.
 */
#ifndef KEDGE_EDGED_IMAGEPULL_H
#define KEDGE_EDGED_IMAGEPULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum imagepull_action {
    IMAGE_USE,   /* present and the policy does not ask for a pull */
    IMAGE_PULL,  /* Always, or IfNotPresent and absent */
    IMAGE_NEVER, /* Never and absent: ErrImageNeverPull */
};

/* shouldPullImage: policy "Always" | "IfNotPresent" | "Never" (anything else: IfNotPresent). */
enum imagepull_action imagepull_decide(const char *policy, bool present);

/* kubelet's flowcontrol.Backoff for one pod's image: the first failure waits initial, each
 * failure after doubles it up to max; an entry not updated for 2 x max starts over. */
struct imagepull_backoff {
    int64_t step_ms;  /* 0: no failure yet */
    uint64_t last_ms; /* monotonic time of the last failure */
};

/* A pull failed at now (Next). */
void imagepull_backoff_next(struct imagepull_backoff *b, uint64_t now, int64_t initial_ms,
                            int64_t max_ms);
/* Whether a pull must wait at now (IsInBackOffSinceUpdate): ImagePullBackOff. */
bool imagepull_backoff_active(const struct imagepull_backoff *b, uint64_t now);
/* When the back-off ends (monotonic; 0: none). */
uint64_t imagepull_backoff_until(const struct imagepull_backoff *b);

/* The waiting messages, as kubelet writes them: `Back-off pulling image "x"`,
 * `Container image "x" is not present with pull policy of Never`,
 * `Failed to pull image "x": <reason>`. */
void imagepull_backoff_message(const char *image, char *out, size_t n);
void imagepull_never_message(const char *image, char *out, size_t n);
void imagepull_failed_message(const char *image, const char *reason, char *out, size_t n);

#endif
