/* registryctl.c: scripts/registry.sh as a test's private registry (registryctl.h). Test-side
 * code: blocking runs of the script with deadlines. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "proc.h"
#include "registryctl.h"
#include "testsupport.h"

#define REGISTRY_SH KEDGE_SOURCE_DIR "/scripts/registry.sh"
#define START_MS 30000
#define PUSH_MS 300000 /* a push of the big image goes through the engine */
#define STOP_MS 30000

struct registryctl {
    char dir[96];
    char addr[32];
    char user[32];
    char password[64];
    pid_t pid;
    bool running;
    struct kt_watcher watcher;
};

/* If the test dies without registryctl_free, the watcher stops the registry (it is a daemon). */
static const char watcher_script[] =
    "if IFS= read -r line && [ \"$line\" = ok ]; then exit 0; fi\n"
    "echo \"registryctl: the test ended with the registry in $1 running; stopping it\" >&2\n"
    "/bin/bash \"$2\" stop \"$1\" >&2\n";

static bool have(const char *prog)
{
    const char *const dirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"};
    char path[256];
    size_t i;

    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        (void)snprintf(path, sizeof(path), "%s/%s", dirs[i], prog);
        if (access(path, X_OK) == 0)
            return true;
    }
    return false;
}

const char *registryctl_unavailable_reason(void)
{
    static const char *const progs[] = {"docker-registry", "openssl", "htpasswd", "curl",
                                        "busybox"};
    static char why[80];
    size_t i;

    if (geteuid() != 0)
        return "not root (the engines' certs.d)";
    if (access(REGISTRY_SH, R_OK) != 0)
        return "no " REGISTRY_SH;
    for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
        if (!have(progs[i])) {
            (void)snprintf(why, sizeof(why), "%s is not installed", progs[i]);
            return why;
        }
    }
    return NULL;
}

/* registry.sh with up to four arguments after the directory; stdout into *out (may be NULL).
 * Its stderr is printed when it fails. Returns 0 or < 0. */
static int script(struct registryctl *r, const char *verb, const char *const *args, int ms,
                  char **out)
{
    const char *argv[10] = {"/bin/bash", REGISTRY_SH, verb, r->dir};
    char *so = NULL, *se = NULL;
    int status = -1, rc;
    size_t i;

    for (i = 0; args && args[i] && i < 5; i++)
        argv[4 + i] = args[i];
    rc = kt_run(argv, kt_scale_ms(ms), &status, &so, &se);
    if (rc == 0 && status != 0) {
        (void)fprintf(stderr, "registryctl: registry.sh %s failed (%d):\n%s%s", verb, status,
                      so ? so : "", se ? se : "");
        rc = -ECHILD;
    }
    if (rc == 0 && out)
        *out = so;
    else
        free(so);
    free(se);
    return rc;
}

int registryctl_start(struct registryctl **out)
{
    struct registryctl *r;
    char port[16], *so = NULL, *dir, *line;
    int rc, pid = 0;

    *out = NULL;
    if (registryctl_unavailable_reason())
        return -ENOTSUP;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->watcher = (struct kt_watcher)KT_WATCHER_INIT;
    dir = kt_scratch_dir("kedge-registry", 60);
    if (!dir) {
        free(r);
        return -errno;
    }
    (void)snprintf(r->dir, sizeof(r->dir), "%s", dir);
    free(dir);
    (void)snprintf(port, sizeof(port), "%d", kt_free_port());
    rc = kt_watcher_start(&r->watcher, watcher_script, "kedge-registryctl-watcher",
                          (const char *const[]){r->dir, REGISTRY_SH, NULL});
    if (rc == 0) {
        r->running = true;
        rc = script(r, "start", (const char *const[]){port, NULL}, START_MS, &so);
    }
    line = so ? strstr(so, "registry: ready addr=") : NULL;
    if (rc == 0 &&
        (!line || sscanf(line, "registry: ready addr=%31s pid=%d user=%31s password=%63s", r->addr,
                         &pid, r->user, r->password) != 4)) {
        (void)fprintf(stderr, "registryctl: no ready line: %s\n", so ? so : "");
        rc = -EPROTO;
    }
    free(so);
    if (rc < 0) {
        registryctl_free(r);
        return rc;
    }
    r->pid = pid;
    *out = r;
    return 0;
}

int registryctl_push(struct registryctl *r, const char *engine_sock, const char *src,
                     const char *name)
{
    return script(r, "push", (const char *const[]){engine_sock, src, name, NULL}, PUSH_MS, NULL);
}

int registryctl_make_big(struct registryctl *r, const char *engine_sock, const char *name, int mb)
{
    char n[16];

    (void)snprintf(n, sizeof(n), "%d", mb);
    return script(r, "big", (const char *const[]){engine_sock, name, n, NULL}, PUSH_MS, NULL);
}

int registryctl_stop(struct registryctl *r)
{
    int rc;

    if (!r->running)
        return -ECHILD;
    rc = script(r, "stop", NULL, STOP_MS, NULL);
    r->running = false;
    if (rc == 0 && r->pid > 0 && !kt_pid_gone(r->pid))
        rc = -EBUSY;
    r->pid = 0;
    return rc;
}

void registryctl_free(struct registryctl *r)
{
    if (!r)
        return;
    if (r->running && registryctl_stop(r) != 0)
        (void)fprintf(stderr, "registryctl: stopping the registry in %s failed\n", r->dir);
    kt_watcher_stop(&r->watcher);
    free(r);
}

const char *registryctl_addr(const struct registryctl *r)
{
    return r->addr;
}

const char *registryctl_user(const struct registryctl *r)
{
    return r->user;
}

const char *registryctl_password(const struct registryctl *r)
{
    return r->password;
}

pid_t registryctl_pid(const struct registryctl *r)
{
    return r->running ? r->pid : 0;
}

int registryctl_log_count(const struct registryctl *r, const char *needle)
{
    char path[128], *log, *p;
    int n = 0;

    (void)snprintf(path, sizeof(path), "%s/registry.log", r->dir);
    log = kt_read_from(path, 0);
    if (!log)
        return -1;
    for (p = log; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(log);
    return n;
}

void registryctl_dump_log(const struct registryctl *r)
{
    char path[128];

    (void)snprintf(path, sizeof(path), "%s/registry.log", r->dir);
    kt_copy_to_stderr(path, "registry log");
}
