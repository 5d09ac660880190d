/* sd_notify glue: svcnotify.h says what and why. */
#include <errno.h>
#include <stdint.h>

#include <systemd/sd-daemon.h>

#include "kedge/alloc.h"
#include "kedge/log.h"
#include "svcnotify.h"

struct svcnotify {
    struct lws_context *lws;
    lws_sorted_usec_list_t sul;
    uint64_t watchdog_us; /* 0: no watchdog asked for */
};

static void feed(lws_sorted_usec_list_t *sul)
{
    struct svcnotify *s = lws_container_of(sul, struct svcnotify, sul);

    (void)sd_notify(0, "WATCHDOG=1");
    lws_sul_schedule(s->lws, 0, &s->sul, feed, (lws_usec_t)(s->watchdog_us / 2));
}

int svcnotify_new(struct lws_context *lws, struct svcnotify **out)
{
    struct svcnotify *s = kedge_calloc(1, sizeof(*s));
    int rc;

    *out = s;
    if (!s)
        return -ENOMEM;
    s->lws = lws;
    rc = sd_watchdog_enabled(0, &s->watchdog_us);
    if (rc <= 0)
        s->watchdog_us = 0; /* none asked for, or WATCHDOG_PID names another process */
    return 0;
}

void svcnotify_free(struct svcnotify *s)
{
    if (!s)
        return;
    lws_sul_cancel(&s->sul);
    kedge_free(s);
}

void svcnotify_ready(struct svcnotify *s)
{
    if (sd_notify(0, "READY=1\nSTATUS=running, cloud link not up yet") > 0 && s->watchdog_us)
        kedge_log(KEDGE_LOG_INFO, "bridge: systemd watchdog every %llu ms",
                  (unsigned long long)(s->watchdog_us / 2000));
    if (s->watchdog_us)
        feed(&s->sul);
}

void svcnotify_link(void *ctx, bool up)
{
    (void)ctx;
    (void)sd_notify(0, up ? "STATUS=running, cloud link up" : "STATUS=running, cloud link down");
}

void svcnotify_stopping(struct svcnotify *s)
{
    (void)s;
    (void)sd_notify(0, "STOPPING=1");
}
