/* Poison: finding the queued entry the cloud refuses, so that one bad message cannot stop the
 * queue for ever. EdgeHub tells this module what happened on the link; it counts failures in
 * the queue (cloudq_blame, cloudq_refused), which sets an entry aside at poison_after.
 *
 * A message the cloud cannot take (too large for it, say) makes it close the link after
 * reading it, every time it is sent. When the cloud closes the link with a close frame that is
 * not a normal end (1009 message too big, 1011, 1008, or no status at all; not 1000 or 1001)
 * while entries were written and not yet proven read, one of them is to blame. A link that
 * merely breaks (no close frame) blames nothing: a flapping network or a cloud that stops
 * reading would otherwise bury innocent entries (a test froze and dropped the link three times
 * while one entry was in doubt, and that upload became a dead letter). The price: a cloud that
 * drops the TCP connection on a message it refuses, without a close frame, is not detected;
 * cloudcore v1.15.4 sets no read limit, so the size case does not arise there.
 *
 * If exactly one entry was in doubt it is blamed (cloudq_blame counts a failure, and at
 * poison_after it becomes a dead letter with the close code and reason); if several were, the
 * next links go in probe mode: EdgeHub writes entries one at a time, each followed by its PING,
 * the next only after the PONG, so a link that dies blames the single entry in doubt. Probe
 * mode ends when the entries in doubt at the failure (ids up to a boundary kept in the queue,
 * so a restart probes on) have all been proven. An "error" answer from the cloud (router
 * operation "error", parent_msg_id = the entry's msg_id) counts a failure too.
 */
#ifndef KEDGE_BLAME_H
#define KEDGE_BLAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloudq.h"
#include "kedge/msg.h"
#include "kedge/log.h"

struct blame {
    struct cloudq *q;
    int64_t probe_upto; /* probe mode: entries in doubt up to this id (0: off) */
    int close_code;     /* the cloud's close frame on this link, if it sent one */
    char close_reason[124];
    /* msg_ids of the cloud's last "error" answers: one the cloud sends again (it wants an ack
     * and may not have had ours) is not a second refusal */
    char errors_seen[16][48];
    unsigned n_errors_seen;
    struct kedge_ratelimit rl;
};

void blame_init(struct blame *b, struct cloudq *q);
/* A new link: no close frame yet; probe mode as the queue remembers it (logged). */
void blame_link_up(struct blame *b);
/* The cloud's close frame: a 2-byte status code, then the reason text (RFC 6455 5.5.1). */
void blame_note_close(struct blame *b, const void *in, size_t len);
/* The cloud closed a link on which `in_doubt` entries were written and not proven read
 * (last_id: the one written last; cursor: the highest id written). Not for a link we closed
 * ourselves. Blames the single entry in doubt, or starts probe mode. */
void blame_link_failed(struct blame *b, uint64_t in_doubt, int64_t last_id, int64_t cursor);
static inline bool blame_probing(const struct blame *b)
{
    return b->probe_upto != 0;
}
/* Probe mode ends (why: logged). */
void blame_end_probe(struct blame *b, const char *why);
/* An "error" answer naming one of our entries (m->parent_msg_id): a failure for it (resent
 * after resend_s, a dead letter at poison_after). Returns cloudq_refused's result, or
 * -EALREADY for an answer already counted. */
int blame_error_answer(struct blame *b, const struct kedge_msg *m);

#endif
