/* Token bucket for edge -> cloud traffic: edgecore's 30 msg/s with a burst of 60 by default.
 * Like edgecore's limiter it delays, never drops: the caller waits for the returned time. */
#include "ratelimit.h"

void ratelimit_init(struct ratelimit *rl, long qps, long burst)
{
    rl->rate = (double)qps / 1000.0; /* tokens per ms */
    rl->burst = (double)burst;
    rl->tokens = (double)burst;
    rl->last_ms = 0;
}

uint64_t ratelimit_take(struct ratelimit *rl, uint64_t now_ms)
{
    if (rl->rate <= 0)
        return 0;
    if (rl->last_ms) {
        rl->tokens += (double)(now_ms - rl->last_ms) * rl->rate;
        if (rl->tokens > rl->burst)
            rl->tokens = rl->burst;
    }
    rl->last_ms = now_ms;
    if (rl->tokens >= 1.0) {
        rl->tokens -= 1.0;
        return 0;
    }
    return (uint64_t)((1.0 - rl->tokens) / rl->rate) + 1;
}
