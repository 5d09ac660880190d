/* Integration-test harness: broker processes and their watcher (the MQTT test clients are in
 * mqttc.c).
 *
 * This file owns the lifecycle of one real mosquitto per kh_broker (temporary directory,
 * generated config, fork/exec through proc.h, readiness, stop/kill/restart, exit status, log). What
 * a test asserts is the test's business; how the broker behaves is mosquitto's and the plugin's.
 * See harness.h for the contract.
 *
 * Process model. The broker is a child of the test process. It gets PR_SET_PDEATHSIG=SIGKILL
 * and stays in the test's process group, so it never outlives a test that died (Check's fork
 * mode _exits on a failed assertion and killpg()s the group afterwards). Its stdout/stderr go
 * to <dir>/broker.out, never to the test's pipes, so ctest cannot hang on an orphan. A second
 * child, the watcher (/bin/sh, in its own process group so Check's killpg spares it), holds the
 * read end of a pipe whose only write end is the test's: EOF without an "ok" line means the test
 * died, and the watcher prints the broker's files to stderr and removes the directory.
 */
#define _GNU_SOURCE /* asprintf */

#include "harness.h"
#include "proc.h"
#include "testsupport.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#ifndef KEDGE_PLUGIN_PATH
#error "KEDGE_PLUGIN_PATH must be defined (tests/integration/CMakeLists.txt)"
#endif
#ifndef MOSQUITTO_BIN
#define MOSQUITTO_BIN "/usr/sbin/mosquitto"
#endif
#ifndef KEDGE_SOURCE_DIR
#error "KEDGE_SOURCE_DIR must be defined (tests/integration/CMakeLists.txt)"
#endif

#define READY_TIMEOUT_MS 10000 /* start-up and stop deadlines, before scaling */
#define POLL_MS 10
#define PORT_ATTEMPTS 5

/* One line of the broker config; write errors are collected by ferror() before fclose. */
__attribute__((format(printf, 2, 3))) static void conf_line(FILE *f, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vfprintf(f, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------------------------
 * Process-wide set-up, scaling
 */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_globals(void)
{
    /* A broker that closes a test client's socket must fail a write, not kill the test. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        perror("harness: signal(SIGPIPE)");
    mosquitto_lib_init();
}

void kh_harness_init(void)
{
    (void)pthread_once(&init_once, init_globals);
}

int kh_scale_ms(int ms)
{
    return kt_scale_ms(ms);
}

int kh_run_suite(Suite *s, int print_mode)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, (enum print_output)print_mode);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static const char *asan_preload(void)
{
#ifdef KEDGE_ASAN_PRELOAD
    return KEDGE_ASAN_PRELOAD[0] ? KEDGE_ASAN_PRELOAD : NULL;
#else
    return NULL;
#endif
}

int kh_rmtree(const char *path)
{
    return kt_rmtree(path, false);
}

/* ---------------------------------------------------------------------------------------------
 * Broker
 */

struct kh_broker {
    char *dir;
    char *conf_path, *log_path, *out_path, *vg_path, *db_path;
    int port;
    struct kt_proc proc;
    long log_offset; /* broker.log size when the current process was spawned */
    long out_offset; /* the same for broker.out */
    bool remove_dir; /* ours to delete in kh_broker_free */
    struct kt_watcher watcher;
};

/* Script for the watcher; $1 = directory, $2 = rm|keep. Lines: "ok" (exit quietly), "dumped"
 * (the log is already on stderr), "fresh" (a new broker process wrote more log since). */
static const char watcher_script[] =
    "dumped=no\n"
    "while IFS= read -r line; do\n"
    "  case $line in ok) exit 0;; dumped) dumped=yes;; fresh) dumped=no;; esac\n"
    "done\n"
    "if [ $dumped = no ]; then\n"
    "  echo \"harness: the test ended with its broker alive; broker files from $1:\" >&2\n"
    "  for f in broker.log broker.out valgrind.log; do\n"
    "    if [ -s \"$1/$f\" ]; then echo \"----- $f -----\" >&2; cat \"$1/$f\" >&2; fi\n"
    "  done\n"
    "  echo \"----- end of broker files -----\" >&2\n"
    "fi\n"
    "if [ \"$2\" = rm ]; then rm -rf -- \"$1\"; else echo \"harness: kept $1\" >&2; fi\n";

static bool has_newline(const char *s)
{
    return s && strchr(s, '\n');
}

static bool opts_have_key(const struct kh_broker_opts *o, const char *key)
{
    if (!o || !o->plugin_opts)
        return false;
    for (const struct kh_opt *p = o->plugin_opts; p->key; p++)
        if (strcmp(p->key, key) == 0)
            return true;
    return false;
}

/* Write <dir>/mosquitto.conf for port. Returns 0 or -errno (-EINVAL for a value with a newline,
 * which would smuggle in a config line of its own). */
static int write_conf(const struct kh_broker *b, const struct kh_broker_opts *o, int port)
{
    static const struct kh_broker_opts none;
    FILE *f;
    int rc = 0;

    if (!o)
        o = &none;
    if (o->plugin_opts)
        for (const struct kh_opt *p = o->plugin_opts; p->key; p++)
            if (has_newline(p->key) || has_newline(p->value))
                return -EINVAL;
    if (has_newline(o->plugin_path) || has_newline(b->db_path) || strchr(b->dir, '\n'))
        return -EINVAL;

    f = fopen(b->conf_path, "we");
    if (!f)
        return -errno;
    conf_line(f, "# Written by the kedge integration harness (tests/integration/harness.c).\n");
    if (o->extra_conf_head)
        conf_line(f, "%s\n", o->extra_conf_head);
    conf_line(f, "listener %d 127.0.0.1\n", port);
    conf_line(f, "allow_anonymous true\n");
    conf_line(f, "set_tcp_nodelay true\n");
    if (o->persistence)
        conf_line(f, "persistence true\npersistence_location %s/\n", b->dir);
    else
        conf_line(f, "persistence false\n");
    conf_line(f, "log_dest file %s\n", b->log_path);
    conf_line(f, "log_type all\n");
    /* Started as root, mosquitto drops to user "mosquitto" before loading the plugin, which then
     * cannot read a .so or write a database under /root (spec README fact 28). */
    if (geteuid() == 0)
        conf_line(f, "user root\n");
    if (!o->no_plugin) {
        conf_line(f, "plugin %s\n", o->plugin_path ? o->plugin_path : KEDGE_PLUGIN_PATH);
        if (!opts_have_key(o, "db_path"))
            conf_line(f, "plugin_opt_db_path %s\n", b->db_path);
        if (!opts_have_key(o, "node_name"))
            conf_line(f, "plugin_opt_node_name kedge-node\n");
        if (o->plugin_opts)
            for (const struct kh_opt *p = o->plugin_opts; p->key; p++)
                if (p->value)
                    conf_line(f, "plugin_opt_%s %s\n", p->key, p->value);
    }
    if (o->extra_conf)
        conf_line(f, "%s\n", o->extra_conf);
    if (ferror(f))
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* What the broker's environment adds to ours when the plugin is an ASan build: the sanitizer
 * runtime and its options (each replaces an entry of the same name). *env: NULL-terminated,
 * free with free_env; NULL entries when there is nothing to add. Returns 0 or -ENOMEM. */
static int asan_env(char *env[5])
{
    const char *preload = asan_preload();
    int k = 0;

    memset(env, 0, 5 * sizeof(*env));
    if (!preload)
        return 0;
    /* fast_unwind_on_malloc=0: Debian's broker has no frame pointers, so the fast unwinder
     * stops at its first frame and a suppression could not tell the broker's allocations
     * from the plugin's (tests/lsan.supp). */
    if (asprintf(&env[k++], "LD_PRELOAD=%s", preload) < 0 ||
        !(env[k++] = strdup("ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23:"
                            "fast_unwind_on_malloc=0")) ||
        asprintf(&env[k++], "LSAN_OPTIONS=suppressions=%s/tests/lsan.supp:print_suppressions=0",
                 KEDGE_SOURCE_DIR) < 0 ||
        !(env[k++] = strdup("UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"))) {
        env[--k] = NULL; /* asprintf leaves its pointer undefined on failure */
        for (int j = 0; j < k; j++)
            free(env[j]);
        return -ENOMEM;
    }
    return 0;
}

static int spawn_broker(struct kh_broker *b)
{
    char *vg_log = NULL, *env[5];
    const char *argv[16];
    int argc = 0, rc;
    struct kt_spawn sp = {.argv = argv, .env = (const char *const *)env};

    if (kt_valgrind()) {
        if (asprintf(&vg_log, "--log-file=%s", b->vg_path) < 0)
            return -ENOMEM;
        argv[argc++] = "valgrind";
        argv[argc++] = "--leak-check=full";
        argv[argc++] = "--show-leak-kinds=definite,indirect";
        argv[argc++] = "--errors-for-leak-kinds=definite,indirect";
        argv[argc++] = "--error-exitcode=1";
        argv[argc++] = "--keep-debuginfo=yes"; /* the plugin is dlclose()d before the report */
        argv[argc++] = "--num-callers=30";
        argv[argc++] = vg_log;
    }
    argv[argc++] = MOSQUITTO_BIN;
    argv[argc++] = "-c";
    argv[argc++] = b->conf_path;
    argv[argc] = NULL;

    rc = asan_env(env);
    if (rc < 0) {
        free(vg_log);
        return rc;
    }
    b->log_offset = kt_file_size(b->log_path);
    b->out_offset = kt_file_size(b->out_path);
    sp.log_path = b->out_path; /* mosquitto's own log is the file log_dest names */
    rc = kt_proc_spawn(&b->proc, &sp);
    if (rc == 0)
        kt_watcher_say(&b->watcher, "fresh\n");
    for (int j = 0; env[j]; j++)
        free(env[j]);
    free(vg_log);
    return rc;
}

struct probe_state {
    bool connack;
};

static void probe_on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    (void)rc; /* any CONNACK, even a refusal (password_file tests), means "serving" */
    ((struct probe_state *)obj)->connack = true;
}

/* Whether the current broker process has logged "mosquitto version X running", which 2.0.11
 * does right after its listeners are open. */
static bool log_says_running(const struct kh_broker *b)
{
    static const char needle[] = "mosquitto version ";
    char *log = kt_read_from(b->log_path, b->log_offset);
    bool found = false;

    for (char *p = log ? strstr(log, needle) : NULL; p && !found; p = strstr(p + 1, needle)) {
        char *eol = strchr(p, '\n');
        found = eol && eol - p > 8 && strncmp(eol - 8, " running", 8) == 0;
    }
    free(log);
    return found;
}

/* Wait until the broker has logged "mosquitto version ... running" (so the listener we reach is
 * ours, not a process that took the port) and answers a CONNECT. Returns 0, -ECHILD when it
 * exited, -ETIMEDOUT (it is killed), or -ENOMEM. */
static int wait_ready(struct kh_broker *b)
{
    struct probe_state ps = {false};
    struct mosquitto *probe = mosquitto_new(NULL, true, &ps);
    int64_t deadline = kt_now_ms() + kh_scale_ms(READY_TIMEOUT_MS);
    bool running = false, connecting = false;
    int rc;

    if (!probe)
        return -ENOMEM;
    mosquitto_connect_callback_set(probe, probe_on_connect);
    for (;;) {
        if (kt_proc_reap(&b->proc, false)) {
            rc = -ECHILD;
            break;
        }
        if (!running)
            running = log_says_running(b);
        if (running && !connecting)
            connecting = mosquitto_connect(probe, "127.0.0.1", b->port, 60) == MOSQ_ERR_SUCCESS;
        if (connecting) {
            if (mosquitto_loop(probe, POLL_MS, 1) != MOSQ_ERR_SUCCESS)
                connecting = false; /* try again on the next turn */
            if (ps.connack) {
                mosquitto_disconnect(probe);
                rc = 0;
                break;
            }
        }
        if (kt_now_ms() >= deadline) {
            (void)kt_proc_kill9(&b->proc);
            rc = -ETIMEDOUT;
            break;
        }
        if (!connecting)
            kt_poll_pause();
    }
    mosquitto_destroy(probe);
    return rc;
}

/* The bind lost the race for the port we picked (kt_free_port). */
static bool port_was_lost(const struct kh_broker *b)
{
    static const char needle[] = "Address already in use";

    return kt_file_contains(b->log_path, b->log_offset, needle) ||
           kt_file_contains(b->out_path, b->out_offset, needle);
}

static int run_once(struct kh_broker *b)
{
    int rc = spawn_broker(b);

    return rc < 0 ? rc : wait_ready(b);
}

static void broker_release(struct kh_broker *b)
{
    free(b->dir);
    free(b->conf_path);
    free(b->log_path);
    free(b->out_path);
    free(b->vg_path);
    free(b->db_path);
    free(b);
}

static int make_dir(struct kh_broker *b, const struct kh_broker_opts *o)
{
    if (o && o->data_dir) {
        if (mkdir(o->data_dir, 0755) < 0 && errno != EEXIST)
            return -errno;
        b->dir = strdup(o->data_dir);
        return b->dir ? 0 : -ENOMEM;
    }
    b->dir = kt_scratch_dir("kedge-it", PATH_MAX);
    if (!b->dir)
        return -errno;
    b->remove_dir = !(o && o->keep_data_dir) && !kt_keep_tmp();
    return 0;
}

static int broker_paths(struct kh_broker *b, const struct kh_broker_opts *o)
{
    b->conf_path = kt_path_join(b->dir, "mosquitto.conf");
    b->log_path = kt_path_join(b->dir, "broker.log");
    b->out_path = kt_path_join(b->dir, "broker.out");
    b->vg_path = kt_path_join(b->dir, "valgrind.log");
    b->db_path = o && o->db_path ? strdup(o->db_path) : kt_path_join(b->dir, "kedge.db");
    if (o && o->plugin_opts)
        for (const struct kh_opt *p = o->plugin_opts; p->key; p++)
            if (strcmp(p->key, "db_path") == 0 && p->value) {
                free(b->db_path);
                b->db_path = strdup(p->value);
            }
    if (!b->conf_path || !b->log_path || !b->out_path || !b->vg_path || !b->db_path)
        return -ENOMEM;
    return 0;
}

int kh_broker_launch(const struct kh_broker_opts *o, struct kh_broker **out)
{
    const char *args[3] = {NULL, NULL, NULL};
    struct kh_broker *b;
    int rc;

    *out = NULL;
    kh_harness_init();
    if (kt_valgrind() && asan_preload()) {
        kt_say("harness: KEDGE_VALGRIND=1 needs the normal build, not the ASan one\n");
        return -ENOTSUP;
    }
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->proc = (struct kt_proc)KT_PROC_INIT;
    b->watcher = (struct kt_watcher)KT_WATCHER_INIT;
    rc = make_dir(b, o);
    if (rc == 0)
        rc = broker_paths(b, o);
    args[0] = b->dir;
    args[1] = b->remove_dir ? "rm" : "keep";
    if (rc == 0)
        rc = kt_watcher_start(&b->watcher, watcher_script, "kedge-watcher", args);
    if (rc < 0)
        goto fail;

    for (int attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
        rc = kt_free_port();
        if (rc < 0)
            goto fail;
        b->port = rc;
        rc = write_conf(b, o, b->port);
        if (rc < 0)
            goto fail;
        rc = run_once(b);
        if (rc != -ECHILD || !port_was_lost(b))
            break;
        kt_say("harness: port %d was taken before the broker bound it%s\n", b->port,
               attempt + 1 < PORT_ATTEMPTS ? "; retrying" : "");
    }
    *out = b;
    return rc;
fail:
    kt_watcher_stop(&b->watcher);
    if (b->dir && b->remove_dir)
        kh_rmtree(b->dir);
    broker_release(b);
    return rc;
}

struct kh_broker *kh_broker_start(const struct kh_broker_opts *o)
{
    struct kh_broker *b = NULL;
    int rc = kh_broker_launch(o, &b);

    if (rc == 0)
        return b;
    kt_say("harness: broker did not start: %s", strerror(-rc));
    if (b) {
        kt_say(" (exit status %d, dir %s)\n", b->proc.exit_status, b->dir);
        kh_broker_log_dump(b);
        kh_broker_free(b);
    } else {
        kt_say("\n");
    }
    return NULL;
}

int kh_broker_stop(struct kh_broker *b)
{
    int rc = kt_proc_stop(&b->proc, kh_scale_ms(READY_TIMEOUT_MS), "harness: broker");

    if (rc == -ECHILD || (rc < 0 && rc != -ETIMEDOUT))
        return rc;
    if (rc != 0) {
        kt_say("harness: broker stopped with status %d\n", rc);
        kh_broker_log_dump(b);
    }
    return rc;
}

int kh_broker_kill9(struct kh_broker *b)
{
    return kt_proc_kill9(&b->proc);
}

int kh_broker_signal(struct kh_broker *b, int sig)
{
    if (kt_proc_reap(&b->proc, false))
        return -ECHILD;
    return kill(b->proc.pid, sig) < 0 ? -errno : 0;
}

int kh_broker_restart(struct kh_broker *b)
{
    int rc;

    if (b->proc.pid) {
        rc = kh_broker_stop(b);
        if (rc != 0)
            return rc;
    }
    /* Same port: clients and the config refer to it. The port is free unless another process
     * grabbed it meanwhile; give such a holder a few chances to let go. */
    for (int attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
        rc = run_once(b);
        if (rc != -ECHILD || !port_was_lost(b))
            break;
        kt_poll_pause();
    }
    if (rc < 0) {
        kt_say("harness: broker did not restart: %s (exit status %d)\n", strerror(-rc),
               b->proc.exit_status);
        kh_broker_log_dump(b);
    }
    return rc;
}

void kh_broker_free(struct kh_broker *b)
{
    if (!b)
        return;
    if (b->proc.pid) {
        int st = kh_broker_stop(b);
        if (st != 0)
            kt_say("harness: kh_broker_free: broker exited with status %d\n", st);
    }
    kt_watcher_stop(&b->watcher);
    if (b->remove_dir) {
        int rc = kh_rmtree(b->dir);
        if (rc < 0)
            kt_say("harness: cannot remove %s: %s\n", b->dir, strerror(-rc));
    } else if (kt_keep_tmp()) {
        kt_say("harness: kept %s\n", b->dir);
    }
    broker_release(b);
}

int kh_broker_port(const struct kh_broker *b)
{
    return b->port;
}

const char *kh_broker_dir(const struct kh_broker *b)
{
    return b->dir;
}

const char *kh_broker_db_path(const struct kh_broker *b)
{
    return b->db_path;
}

pid_t kh_broker_pid(const struct kh_broker *b)
{
    return b->proc.pid;
}

bool kh_broker_running(struct kh_broker *b)
{
    return !kt_proc_reap(&b->proc, false);
}

int kh_broker_exit_status(const struct kh_broker *b)
{
    return b->proc.exit_status;
}

void kh_broker_log_dump(const struct kh_broker *b)
{
    kt_say("===== broker files in %s (port %d) =====\n", b->dir, b->port);
    kt_copy_to_stderr(b->log_path, "broker.log");
    kt_copy_to_stderr(b->out_path, "broker stdout/stderr");
    kt_copy_to_stderr(b->vg_path, "valgrind.log");
    kt_say("===== end of broker files =====\n");
    kt_watcher_say(&b->watcher, "dumped\n");
}

char *kh_broker_log_read(const struct kh_broker *b)
{
    return kt_read_from(b->log_path, 0);
}

int kh_broker_wait_log(const struct kh_broker *b, const char *needle, int timeout_ms)
{
    return kt_proc_wait_log(NULL, b->log_path, 0, needle, kh_scale_ms(timeout_ms));
}
