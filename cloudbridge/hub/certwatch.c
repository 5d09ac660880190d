/* Certificate rotation while running: a timer reads the node certificate's validity, and at
 * the jittered 70-90 % point runs the CSR exchange in a child process (certmgr.c) so the loop
 * never blocks on it. When the child succeeds, the link is redialled: edgehub.c notices the
 * new files and builds a new TLS identity. A failed rotation is retried every minute.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "bridge.h"
#include "kedge/alloc.h"
#include "kedge/log.h"

#define CHECK_US (1 * LWS_USEC_PER_SEC)
#define RETRY_S 60

struct certwatch {
    struct bridge *br;
    lws_sorted_usec_list_t sul;
    int64_t not_after, due; /* Unix seconds; 0 = unknown */
    time_t cert_mtime;
    pid_t child;
};

static struct certwatch watch;

static void reload_validity(struct certwatch *w)
{
    int64_t nb, na;

    if (certmgr_validity(w->br->cfg.tls_cert_file, &nb, &na) == 0) {
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
    struct certmgr_req cr = {w->br->cfg.cloud_host, (int)w->br->cfg.cloud_https_port,
                             w->br->cfg.node_name, w->br->cfg.tls_ca_file,
                             w->br->cfg.tls_cert_file, w->br->cfg.tls_key_file};
    int64_t now = (int64_t)time(NULL);
    int status;

    if (w->child > 0 && waitpid(w->child, &status, WNOHANG) == w->child) {
        w->child = 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            kedge_log(KEDGE_LOG_NOTICE, "certwatch: certificate rotated; reconnecting with it");
            reload_validity(w);
            edgehub_redial(w->br->hub);
        } else {
            kedge_log(KEDGE_LOG_ERR, "certwatch: rotation failed; retrying in %d s", RETRY_S);
            w->due = now + RETRY_S;
        }
    }
    if (!w->due)
        reload_validity(w);
    if (w->child <= 0 && w->due && now >= w->due && w->br->cfg.rotate_certificates) {
        kedge_log(KEDGE_LOG_NOTICE, "certwatch: rotating the node certificate");
        w->child = certmgr_rotate_async(&cr);
        if (w->child < 0)
            w->due = now + RETRY_S;
    }
    if (!w->br->stopping)
        lws_sul_schedule(w->br->lws, 0, &w->sul, check, CHECK_US);
}

void certwatch_start(struct bridge *br)
{
    memset(&watch, 0, sizeof(watch));
    watch.br = br;
    check(&watch.sul);
}

void certwatch_stop(void)
{
    int status;

    lws_sul_cancel(&watch.sul);
    if (watch.child > 0) {
        kill(watch.child, SIGTERM);
        (void)waitpid(watch.child, &status, 0);
    }
}

int64_t certwatch_not_after(void)
{
    return watch.not_after;
}
