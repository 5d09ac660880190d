/* Certificate rotation while running (certwatch.h says what and why). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "certwatch.h"
#include "kedge/alloc.h"
#include "kedge/log.h"

#define CHECK_US (1 * LWS_USEC_PER_SEC)
#define RETRY_S 60

struct certwatch {
    struct certwatch_config cfg;
    struct lws_context *lws;
    certwatch_rotated_fn rotated;
    void *ctx;
    bool stopping;
    lws_sorted_usec_list_t sul;
    int64_t not_after, due; /* Unix seconds; 0 = unknown */
    time_t cert_mtime;
    pid_t child;
};

static void reload_validity(struct certwatch *w)
{
    int64_t nb, na;

    if (certmgr_validity(w->cfg.req.cert_file, &nb, &na) == 0) {
        w->not_after = na;
        w->due = certmgr_rotation_due(nb, na);
        kedge_log(KEDGE_LOG_INFO, "certwatch: certificate valid until %lld, rotation at %lld",
                  (long long)na, (long long)w->due);
    } else {
        w->not_after = w->due = 0;
    }
}

static void check(lws_sorted_usec_list_t *sul)
{
    struct certwatch *w = lws_container_of(sul, struct certwatch, sul);
    int64_t now = (int64_t)time(NULL);
    int status;

    if (w->child > 0 && waitpid(w->child, &status, WNOHANG) == w->child) {
        w->child = 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            kedge_log(KEDGE_LOG_NOTICE, "certwatch: certificate rotated; reconnecting with it");
            reload_validity(w);
            w->rotated(w->ctx);
        } else {
            kedge_log(KEDGE_LOG_ERR, "certwatch: rotation failed; retrying in %d s", RETRY_S);
            w->due = now + RETRY_S;
        }
    }
    if (!w->due)
        reload_validity(w);
    if (w->child <= 0 && w->due && now >= w->due && w->cfg.rotate) {
        kedge_log(KEDGE_LOG_NOTICE, "certwatch: rotating the node certificate");
        w->child = certmgr_rotate_async(&w->cfg.req);
        if (w->child < 0)
            w->due = now + RETRY_S;
    }
    if (!w->stopping)
        lws_sul_schedule(w->lws, 0, &w->sul, check, CHECK_US);
}

int certwatch_new(const struct certwatch_config *cfg, struct lws_context *lws,
                  certwatch_rotated_fn rotated, void *ctx, struct certwatch **out)
{
    struct certwatch *w = kedge_calloc(1, sizeof(*w));

    *out = w;
    if (!w)
        return -ENOMEM;
    w->cfg = *cfg;
    w->lws = lws;
    w->rotated = rotated;
    w->ctx = ctx;
    return 0;
}

void certwatch_start(struct certwatch *w)
{
    check(&w->sul);
}

void certwatch_stop(struct certwatch *w)
{
    int status;

    if (!w)
        return;
    w->stopping = true;
    lws_sul_cancel(&w->sul);
    if (w->child > 0) {
        kill(w->child, SIGTERM);
        (void)waitpid(w->child, &status, 0);
        w->child = 0;
    }
}

void certwatch_free(struct certwatch *w)
{
    kedge_free(w);
}

int64_t certwatch_not_after(const struct certwatch *w)
{
    return w ? w->not_after : 0;
}
