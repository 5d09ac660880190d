/* A token bucket for edge -> cloud traffic (cloud_qps / cloud_burst): EdgeHub takes one token
 * per queued entry it writes, so a backlog after a long disconnection does not flood CloudHub.
 */
#ifndef KEDGE_RATELIMIT_H
#define KEDGE_RATELIMIT_H

#include <stdint.h>

struct ratelimit {
    double tokens, rate, burst;
    uint64_t last_ms;
};

void ratelimit_init(struct ratelimit *rl, long qps, long burst);
/* Take one token: 0 now, or the ms to wait for the next one. qps 0: always 0. */
uint64_t ratelimit_take(struct ratelimit *rl, uint64_t now_ms);

#endif
