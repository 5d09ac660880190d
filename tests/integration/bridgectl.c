/* bridgectl.c: a kedge-bridge child process for integration tests (bridgectl.h).
 *
 * Owns one bridge's directory, generated config, process lifecycle (fork/exec, readiness,
 * stop/kill, exit status), log reading and the watcher that reports a test that died with the
 * bridge running. What the bridge does is the bridge's business; what a test asserts, the
 * test's. Waits are deadline loops on a condition; the only pause is between two polls.
 */
#define _GNU_SOURCE /* asprintf */

#include "bridgectl.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "proc.h"
#include "simctl.h"
#include "testsupport.h"

#ifndef KEDGE_BRIDGE_PATH
#error "KEDGE_BRIDGE_PATH must be defined (tests/integration/CMakeLists.txt)"
#endif

#define READY_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000
#define MAX_ARGS 64

struct bridgectl {
    char *dir, *conf_path, *log_path, *db_path, *meta_path, *pw_path;
    char *ready_log;
    char **args; /* command-line overrides, NULL-terminated */
    size_t n_args;
    char **env; /* extra environment, NULL-terminated */
    size_t n_env;
    struct kt_proc proc;
    unsigned runs; /* starts so far: names the valgrind log of each run */
    bool valgrind;
    struct kt_watcher watcher;
    int metrics_port; /* a free one, chosen at bridgectl_new */
};

static bool asan_tree(void)
{
#ifdef KEDGE_ASAN_PRELOAD
    return true;
#else
    return false;
#endif
}

/* ---- files ----------------------------------------------------------------------------------- */

static char *valgrind_log_path(const struct bridgectl *b, unsigned run)
{
    char name[64];

    (void)snprintf(name, sizeof(name), "valgrind-%u.log", run);
    return kt_path_join(b->dir, name);
}

void bridgectl_dump_log(const struct bridgectl *b)
{
    kt_copy_to_stderr(b->log_path, "kedge-bridge log");
    if (b->valgrind && b->runs) {
        char *vg = valgrind_log_path(b, b->runs);
        if (vg)
            kt_copy_to_stderr(vg, "kedge-bridge valgrind log");
        free(vg);
    }
}

/* ---- the watcher ----------------------------------------------------------------------------- */

/* $1 = directory, $2 = rm|keep. Lines: "ok" (the test freed the bridge), "dumped" / "fresh"
 * (whether the log is on stderr already). EOF without "ok" means the test process died. */
static const char watcher_script[] =
    "dumped=no\n"
    "while IFS= read -r line; do\n"
    "  case $line in ok) exit 0;; dumped) dumped=yes;; fresh) dumped=no;; esac\n"
    "done\n"
    "if [ $dumped = no ]; then\n"
    "  echo \"bridgectl: the test died with its bridge set up; files from $1:\" >&2\n"
    "  for f in \"$1\"/bridge.log \"$1\"/valgrind-*.log; do\n"
    "    if [ -s \"$f\" ]; then echo \"----- $f -----\" >&2; cat \"$f\" >&2; fi\n"
    "  done\n"
    "  echo \"----- end of bridgectl files -----\" >&2\n"
    "fi\n"
    "if [ \"$2\" = rm ]; then rm -rf -- \"$1\"; else echo \"bridgectl: kept $1\" >&2; fi\n";

/* ---- setup ----------------------------------------------------------------------------------- */

static void release(struct bridgectl *b)
{
    size_t i;

    for (i = 0; b->args && i < b->n_args; i++)
        free(b->args[i]);
    free(b->args);
    for (i = 0; b->env && i < b->n_env; i++)
        free(b->env[i]);
    free(b->env);
    free(b->dir);
    free(b->conf_path);
    free(b->log_path);
    free(b->db_path);
    free(b->meta_path);
    free(b->pw_path);
    free(b->ready_log);
    free(b);
}

int bridgectl_set(struct bridgectl *b, const char *key, const char *value)
{
    char *line = NULL;
    int rc;

    if (strchr(key, '\n') || strchr(value, '\n') || strchr(key, ' '))
        return -EINVAL;
    if (asprintf(&line, "%s %s\n", key, value) < 0)
        return -ENOMEM;
    rc = kt_append_text(b->conf_path, line, 0600);
    free(line);
    return rc;
}

int bridgectl_set_long(struct bridgectl *b, const char *key, long value)
{
    char v[32];

    (void)snprintf(v, sizeof(v), "%ld", value);
    return bridgectl_set(b, key, v);
}

int bridgectl_wire_cloudsim(struct bridgectl *b, struct simctl *sim, const char *node,
                            int broker_port, bool quick_dead_link)
{
    static const struct {
        const char *key, *file;
    } certs[] = {
        {"tls_ca_file", "rootCA.crt"}, {"tls_cert_file", "edge.crt"}, {"tls_key_file", "edge.key"}};
    static const struct {
        const char *key;
        long value;
        bool dead_link;
    } quick[] = {{"keepalive_s", 2, false},        {"ping_idle_s", 2, true},
                 {"dead_link_s", 5, true},         {"backoff_initial_ms", 100, false},
                 {"backoff_max_ms", 1000, false},  {"cloud_qps", 0, false},
                 {"rotate_certificates", 0, false}};
    int rc = bridgectl_set(b, "node_name", node);
    size_t i;

    if (rc == 0)
        rc = bridgectl_set(b, "cloud_host", "127.0.0.1");
    if (rc == 0)
        rc = bridgectl_set_long(b, "cloud_port", simctl_wss_port(sim));
    for (i = 0; rc == 0 && i < sizeof(certs) / sizeof(certs[0]); i++)
        rc = bridgectl_set(b, certs[i].key, simctl_cert_path(sim, certs[i].file));
    if (rc == 0 && simctl_tunnel_port(sim) > 0) { /* EdgeStream to cloudsim's CloudStream */
        char server[32];
        (void)snprintf(server, sizeof(server), "127.0.0.1:%d", simctl_tunnel_port(sim));
        rc = bridgectl_set(b, "stream_server", server);
        if (rc == 0)
            rc = bridgectl_set(b, "stream_node_ip", "127.0.0.1");
    }
    if (rc == 0)
        rc = bridgectl_set(b, "broker_host", "127.0.0.1");
    if (rc == 0)
        rc = bridgectl_set_long(b, "broker_port", broker_port);
    for (i = 0; rc == 0 && i < sizeof(quick) / sizeof(quick[0]); i++)
        if (!quick[i].dead_link || quick_dead_link)
            rc = bridgectl_set_long(b, quick[i].key, quick[i].value);
    return rc;
}

static int write_config(struct bridgectl *b, const struct bridgectl_opts *o)
{
    const char *const *l;
    int rc;

    rc = kt_append_text(b->conf_path,
                        "# Written by tests/integration/bridgectl.c; later lines win.\n", 0600);
    if (rc == 0)
        rc = bridgectl_set(b, "db_path", b->db_path);
    if (rc == 0)
        rc = bridgectl_set(b, "meta_db_path", b->meta_path);
    if (rc == 0) { /* no container engine unless a test names one; pod volumes stay inside */
        char *pods = NULL;
        rc = asprintf(&pods, "%s/pods", b->dir) < 0 ? -ENOMEM : 0;
        if (rc == 0)
            rc = bridgectl_set(b, "pods_dir", pods);
        free(pods);
    }
    if (rc == 0)
        rc = bridgectl_set(b, "engine_socket", "none");
    if (rc == 0) { /* bridges of one test, or of tests run side by side, each have their own */
        b->metrics_port = kt_free_port();
        rc = b->metrics_port > 0 ? bridgectl_set_long(b, "metrics_port", b->metrics_port) : -EIO;
    }
    if (rc == 0) { /* DMI's socket inside too: never edgecore's /etc/kubeedge/dmi.sock, which
                    * every bridge of a parallel run would take from the one before */
        char *dmi = NULL;
        rc = asprintf(&dmi, "%s/dmi.sock", b->dir) < 0 ? -ENOMEM : 0;
        if (rc == 0)
            rc = bridgectl_set(b, "dmi_socket", dmi);
        free(dmi);
    }
    if (rc == 0 && o->password) {
        char *pw = NULL;
        if (strchr(o->password, '\n') || asprintf(&pw, "%s\n", o->password) < 0)
            return -EINVAL;
        rc = kt_append_text(b->pw_path, pw, 0600);
        free(pw);
        if (rc == 0)
            rc = bridgectl_set(b, "broker_password_file", b->pw_path);
    }
    for (l = o->conf; rc == 0 && l && *l; l++) {
        char *line = NULL;
        if (strchr(*l, '\n'))
            return -EINVAL;
        if (asprintf(&line, "%s\n", *l) < 0)
            return -ENOMEM;
        rc = kt_append_text(b->conf_path, line, 0600);
        free(line);
    }
    return rc;
}

int bridgectl_new(const struct bridgectl_opts *o, struct bridgectl **out)
{
    static const struct bridgectl_opts none;
    struct bridgectl *b;
    const char *const *a;
    int rc;

    *out = NULL;
    if (!o)
        o = &none;
    if (kt_valgrind() && asan_tree()) {
        kt_say("bridgectl: KEDGE_VALGRIND=1 needs the normal build, not the ASan one\n");
        return -ENOTSUP;
    }
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->proc = (struct kt_proc)KT_PROC_INIT;
    b->watcher = (struct kt_watcher)KT_WATCHER_INIT;
    b->valgrind = kt_valgrind();
    b->dir = kt_scratch_dir("kedge-bridge", PATH_MAX);
    if (!b->dir) {
        rc = -errno;
        release(b);
        return rc;
    }
    b->conf_path = kt_path_join(b->dir, "kedge-bridge.conf");
    b->log_path = kt_path_join(b->dir, "bridge.log");
    b->db_path = kt_path_join(b->dir, "bridge.db");
    b->meta_path = kt_path_join(b->dir, "meta.db");
    b->pw_path = kt_path_join(b->dir, "bridge.password");
    b->ready_log = strdup(o->ready_log ? o->ready_log : BRIDGECTL_READY_LOG);
    for (a = o->args; a && *a; a++)
        b->n_args++;
    for (a = o->env; a && *a; a++)
        b->n_env++;
    b->args = calloc(b->n_args + 1, sizeof(*b->args));
    b->env = calloc(b->n_env + 1, sizeof(*b->env));
    rc = b->n_args > MAX_ARGS - 16 ? -E2BIG : -ENOMEM;
    if (!b->conf_path || !b->log_path || !b->db_path || !b->meta_path || !b->pw_path ||
        !b->ready_log || !b->args || !b->env || rc == -E2BIG)
        goto fail;
    for (size_t i = 0; o->args && i < b->n_args; i++)
        if (!(b->args[i] = strdup(o->args[i])))
            goto fail;
    for (size_t i = 0; o->env && i < b->n_env; i++) {
        rc = strchr(o->env[i], '=') ? -ENOMEM : -EINVAL;
        if (rc == -EINVAL || !(b->env[i] = strdup(o->env[i])))
            goto fail;
    }
    rc = write_config(b, o);
    if (rc == 0)
        rc = kt_watcher_start(&b->watcher, watcher_script, "kedge-bridgectl-watcher",
                              (const char *const[]){b->dir, kt_keep_tmp() ? "keep" : "rm", NULL});
    if (rc < 0)
        goto fail;
    *out = b;
    return 0;
fail:
    (void)kh_rmtree(b->dir);
    release(b);
    return rc;
}

/* ---- the process ----------------------------------------------------------------------------- */

static int spawn(struct bridgectl *b)
{
    const char *argv[MAX_ARGS];
    char *vg_arg = NULL, *vg_path = NULL, banner[96];
    int argc = 0, rc;
    struct kt_spawn sp = {.argv = argv, .env = (const char *const *)b->env};

    b->runs++;
    if (b->valgrind) {
        vg_path = valgrind_log_path(b, b->runs);
        if (!vg_path || asprintf(&vg_arg, "--log-file=%s", vg_path) < 0) {
            free(vg_path);
            return -ENOMEM;
        }
        argv[argc++] = "valgrind";
        argv[argc++] = "--leak-check=full";
        argv[argc++] = "--show-leak-kinds=definite,indirect";
        argv[argc++] = "--errors-for-leak-kinds=definite,indirect";
        argv[argc++] = "--error-exitcode=1";
        argv[argc++] = "--num-callers=30";
        argv[argc++] = vg_arg;
    }
    argv[argc++] = KEDGE_BRIDGE_PATH;
    argv[argc++] = "-c";
    argv[argc++] = b->conf_path;
    for (size_t i = 0; i < b->n_args; i++)
        argv[argc++] = b->args[i];
    argv[argc] = NULL;

    /* a banner between runs makes a dumped log readable */
    (void)snprintf(banner, sizeof(banner), "==== bridgectl: run %u ====\n", b->runs);
    rc = kt_append_text(b->log_path, banner, 0644);
    sp.log_path = b->log_path;
    if (rc == 0)
        rc = kt_proc_spawn(&b->proc, &sp);
    if (rc == 0)
        kt_watcher_say(&b->watcher, "fresh\n");
    free(vg_arg);
    free(vg_path);
    return rc;
}

int bridgectl_start(struct bridgectl *b)
{
    long from;
    int rc;

    if (!kt_proc_reap(&b->proc, false))
        return -EBUSY;
    rc = spawn(b);
    if (rc < 0)
        return rc;
    from = kt_file_size(b->log_path); /* after the banner: this run's lines only */
    if (!*b->ready_log)
        return 0;
    rc = kt_proc_wait_log(&b->proc, b->log_path, from, b->ready_log, kh_scale_ms(READY_TIMEOUT_MS));
    if (rc == -ECHILD) {
        kt_say("bridgectl: kedge-bridge exited during start-up with status %d\n",
               b->proc.exit_status);
    } else if (rc == -ETIMEDOUT) {
        kt_say("bridgectl: kedge-bridge did not log '%s' in time; killing it\n", b->ready_log);
        (void)kt_proc_kill9(&b->proc);
    }
    if (rc < 0) {
        bridgectl_dump_log(b);
        kt_watcher_say(&b->watcher, "dumped\n");
    }
    return rc;
}

int bridgectl_stop(struct bridgectl *b)
{
    int rc = kt_proc_stop(&b->proc, kh_scale_ms(STOP_TIMEOUT_MS), "bridgectl: kedge-bridge");

    if (rc == -ECHILD || (rc < 0 && rc != -ETIMEDOUT))
        return rc;
    if (rc != 0) {
        kt_say("bridgectl: kedge-bridge stopped with status %d\n", rc);
        bridgectl_dump_log(b);
        kt_watcher_say(&b->watcher, "dumped\n");
    }
    return rc;
}

int bridgectl_kill9(struct bridgectl *b)
{
    return kt_proc_kill9(&b->proc);
}

bool bridgectl_running(struct bridgectl *b)
{
    return !kt_proc_reap(&b->proc, false);
}

int bridgectl_exit_status(const struct bridgectl *b)
{
    return b->proc.exit_status;
}

void bridgectl_free(struct bridgectl *b)
{
    if (!b)
        return;
    if (b->proc.pid) {
        int st = bridgectl_stop(b);
        if (st != 0)
            kt_say("bridgectl: bridgectl_free: kedge-bridge exited with status %d\n", st);
    }
    kt_watcher_stop(&b->watcher);
    kt_scratch_done(b->dir, false, "bridgectl");
    release(b);
}

/* ---- accessors, the log ---------------------------------------------------------------------- */

int bridgectl_metrics_port(const struct bridgectl *b)
{
    return b->metrics_port;
}

pid_t bridgectl_pid(const struct bridgectl *b)
{
    return b->proc.pid;
}

const char *bridgectl_dir(const struct bridgectl *b)
{
    return b->dir;
}

const char *bridgectl_db_path(const struct bridgectl *b)
{
    return b->db_path;
}

const char *bridgectl_meta_db_path(const struct bridgectl *b)
{
    return b->meta_path;
}

const char *bridgectl_password_path(const struct bridgectl *b)
{
    return b->pw_path;
}

long bridgectl_log_mark(const struct bridgectl *b)
{
    return kt_file_size(b->log_path);
}

char *bridgectl_log_read(const struct bridgectl *b, long from)
{
    return kt_read_from(b->log_path, from);
}

int bridgectl_count_log(const struct bridgectl *b, long from, const char *needle)
{
    char *log = kt_read_from(b->log_path, from);
    size_t n = strlen(needle);
    int count = 0;

    for (const char *p = log && n ? strstr(log, needle) : NULL; p; p = strstr(p + n, needle))
        count++;
    free(log);
    return count;
}

int bridgectl_wait_log(struct bridgectl *b, long from, const char *needle, int timeout_ms)
{
    return kt_proc_wait_log(NULL, b->log_path, from, needle, kh_scale_ms(timeout_ms));
}
