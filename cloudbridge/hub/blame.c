/* Finding the entry the cloud refuses (blame.h says how and why). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "blame.h"
#include "kedge/log.h"

void blame_init(struct blame *b, struct cloudq *q)
{
    memset(b, 0, sizeof(*b));
    b->q = q;
    b->rl = (struct kedge_ratelimit)KEDGE_RATELIMIT_INIT(10000, 20);
}

void blame_link_up(struct blame *b)
{
    b->close_code = 0;
    b->close_reason[0] = '\0';
    b->probe_upto = cloudq_probe_upto(b->q);
    if (b->probe_upto)
        kedge_log(KEDGE_LOG_NOTICE,
                  "edgehub: probe mode: entries up to %lld go one at a time, each proven "
                  "read before the next",
                  (long long)b->probe_upto);
}

void blame_note_close(struct blame *b, const void *in, size_t len)
{
    const unsigned char *p = in;
    size_t i, n = 0;

    b->close_code = len >= 2 ? p[0] << 8 | p[1] : 1005; /* 1005: no status received */
    for (i = 2; i < len && n + 1 < sizeof(b->close_reason); i++)
        b->close_reason[n++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    b->close_reason[n] = '\0';
}

/* A close frame from the cloud that is not a normal end (1000 normal, 1001 going away):
 * 0 means no close frame came at all, the link just broke. */
static bool refusal_code(int code)
{
    return code != 0 && code != 1000 && code != 1001;
}

void blame_link_failed(struct blame *b, uint64_t in_doubt, int64_t last_id, int64_t cursor)
{
    char why[200];

    if (!in_doubt || !refusal_code(b->close_code))
        return;
    snprintf(why, sizeof(why), "cloud closed the link %d%s%s after reading it", b->close_code,
             b->close_reason[0] ? " " : "", b->close_reason);
    if (b->probe_upto || in_doubt == 1) {
        (void)cloudq_blame(b->q, last_id, why);
        return;
    }
    if (cloudq_set_probe(b->q, cursor) == 0)
        kedge_log(KEDGE_LOG_WARN,
                  "edgehub: %s with %llu entries in doubt (%s); the next link sends them one "
                  "at a time to find the one the cloud refuses",
                  "the cloud closed the link", (unsigned long long)in_doubt, why);
}

void blame_end_probe(struct blame *b, const char *why)
{
    if (!b->probe_upto)
        return;
    if (cloudq_set_probe(b->q, 0) < 0)
        return; /* logged; probing on is safe */
    kedge_log(KEDGE_LOG_NOTICE, "edgehub: probe mode ends (%s)", why);
    b->probe_upto = 0;
}

/* Whether this error answer was counted already; remembers it if not. */
static bool error_seen(struct blame *b, const char *msg_id)
{
    size_t n = sizeof(b->errors_seen) / sizeof(b->errors_seen[0]), i;

    if (!msg_id || !*msg_id || strlen(msg_id) >= sizeof(b->errors_seen[0]))
        return false;
    for (i = 0; i < n; i++)
        if (!strcmp(b->errors_seen[i], msg_id))
            return true;
    strcpy(b->errors_seen[b->n_errors_seen++ % n], msg_id);
    return false;
}

int blame_error_answer(struct blame *b, const struct kedge_msg *m)
{
    char why[240];
    const char *text = m->content_str ? m->content_str : m->content ? m->content : "";
    size_t n = m->content_str ? m->content_str_len : m->content ? m->content_len : 0;
    int rc;

    if (error_seen(b, m->msg_id))
        return -EALREADY;
    snprintf(why, sizeof(why), "the cloud answered error: %.*s", (int)(n > 200 ? 200 : n), text);
    rc = cloudq_refused(b->q, m->parent_msg_id, why);
    if (rc == -ENOENT)
        kedge_log_limited(&b->rl, "edgehub", KEDGE_LOG_WARN,
                          "edgehub: the cloud answered error to %s, which is no longer queued: %s",
                          m->parent_msg_id, why);
    return rc;
}
