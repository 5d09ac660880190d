/* Integration-test harness: broker processes, their watcher, and libmosquitto test clients.
 *
 * This file owns the lifecycle of one real mosquitto per kh_broker (temporary directory,
 * generated config, fork/exec, readiness, stop/kill/restart, exit status, log) and the test
 * clients' network threads and message queues. What a test asserts is the test's business;
 * how the broker behaves is mosquitto's and the plugin's. See harness.h for the contract.
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
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

#define READY_TIMEOUT_MS 10000 /* start-up, stop and CONNACK deadlines, before scaling */
#define ACK_TIMEOUT_MS 10000   /* SUBACK, PUBACK, PUBCOMP, UNSUBACK */
#define POLL_MS 10
#define PORT_ATTEMPTS 5

/* Diagnostics for the test's log. A failed write to stderr has nowhere better to be reported. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vfprintf(stderr, fmt, ap);
    va_end(ap);
}

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

static void harness_init(void)
{
    (void)pthread_once(&init_once, init_globals);
}

int kh_scale_ms(int ms)
{
    return kt_scale_ms(ms);
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
    harness_init();
    if (kt_valgrind() && asan_preload()) {
        say("harness: KEDGE_VALGRIND=1 needs the normal build, not the ASan one\n");
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
        say("harness: port %d was taken before the broker bound it%s\n", b->port,
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
    say("harness: broker did not start: %s", strerror(-rc));
    if (b) {
        say(" (exit status %d, dir %s)\n", b->proc.exit_status, b->dir);
        kh_broker_log_dump(b);
        kh_broker_free(b);
    } else {
        say("\n");
    }
    return NULL;
}

int kh_broker_stop(struct kh_broker *b)
{
    int rc = kt_proc_stop(&b->proc, kh_scale_ms(READY_TIMEOUT_MS), "harness: broker");

    if (rc == -ECHILD || (rc < 0 && rc != -ETIMEDOUT))
        return rc;
    if (rc != 0) {
        say("harness: broker stopped with status %d\n", rc);
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
        say("harness: broker did not restart: %s (exit status %d)\n", strerror(-rc),
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
            say("harness: kh_broker_free: broker exited with status %d\n", st);
    }
    kt_watcher_stop(&b->watcher);
    if (b->remove_dir) {
        int rc = kh_rmtree(b->dir);
        if (rc < 0)
            say("harness: cannot remove %s: %s\n", b->dir, strerror(-rc));
    } else if (kt_keep_tmp()) {
        say("harness: kept %s\n", b->dir);
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
    say("===== broker files in %s (port %d) =====\n", b->dir, b->port);
    kt_copy_to_stderr(b->log_path, "broker.log");
    kt_copy_to_stderr(b->out_path, "broker stdout/stderr");
    kt_copy_to_stderr(b->vg_path, "valgrind.log");
    say("===== end of broker files =====\n");
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

/* ---------------------------------------------------------------------------------------------
 * Clients
 */

struct qmsg {
    struct qmsg *next;
    struct kh_msg m;
};

struct ack {
    int mid;
    int code; /* granted QoS or SUBACK failure; PUBACK/PUBREC/PUBCOMP reason; 0 for UNSUBACK */
};

struct kh_client {
    /* Settings: fixed once kh_client_connect has run. */
    int port;
    int protocol;
    char *id, *username, *password;
    char *will_topic;
    void *will_payload;
    int will_len, will_qos;
    bool will_retain;
    bool clean;

    struct mosquitto *mosq;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast on every change below */
    /* Guarded by mu. */
    bool stop;
    bool got_connack, connected, gone;
    int connack_code, disconnect_code;
    bool lost_message; /* a message could not be queued (allocation failure) */
    struct ack *acks;
    size_t n_acks, cap_acks;
    /* QoS 0 publishes: libmosquitto reports them written (on_publish) but nobody waits for
     * that; their mids are dropped, or an old one would answer a QoS 1 publish that got the
     * same mid after the 16-bit wrap (and the list would grow by one per publish) */
    int *unwanted;
    size_t n_unwanted, cap_unwanted;
    struct qmsg *head, *tail;
};

void kh_msg_cleanup(struct kh_msg *m)
{
    if (!m)
        return;
    free(m->topic);
    free(m->payload);
    memset(m, 0, sizeof(*m));
}

static void deadline_ts(struct timespec *ts, int64_t deadline)
{
    ts->tv_sec = (time_t)(deadline / 1000);
    ts->tv_nsec = (long)(deadline % 1000) * 1000000L;
}

/* Wait on c->cv until deadline (ms, monotonic). Caller holds c->mu. */
static void cv_wait(struct kh_client *c, int64_t deadline)
{
    struct timespec ts;

    deadline_ts(&ts, deadline);
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    struct kh_client *c = obj;

    (void)m;
    (void)flags;
    (void)props;
    pthread_mutex_lock(&c->mu);
    c->got_connack = true;
    c->connack_code = rc;
    c->connected = rc == 0;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
    struct kh_client *c = obj;

    (void)m;
    (void)props;
    pthread_mutex_lock(&c->mu);
    c->connected = false;
    if (!c->gone) {
        c->gone = true;
        c->disconnect_code = rc;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* mid is in c->unwanted: take it out. Caller holds c->mu. */
static bool take_unwanted(struct kh_client *c, int mid)
{
    size_t i;

    for (i = 0; i < c->n_unwanted && c->unwanted[i] != mid; i++)
        ;
    if (i == c->n_unwanted)
        return false;
    c->unwanted[i] = c->unwanted[--c->n_unwanted];
    return true;
}

/* A QoS 0 publish's mid: its on_publish is dropped, whether it came already or comes later.
 * Without memory for the note the ack is simply kept (the old behaviour). */
static void ignore_ack(struct kh_client *c, int mid)
{
    size_t i;

    pthread_mutex_lock(&c->mu);
    for (i = 0; i < c->n_acks && c->acks[i].mid != mid; i++)
        ;
    if (i < c->n_acks) {
        c->acks[i] = c->acks[--c->n_acks];
    } else {
        if (c->n_unwanted == c->cap_unwanted) {
            size_t ncap = c->cap_unwanted ? c->cap_unwanted * 2 : 64;
            int *nu = realloc(c->unwanted, ncap * sizeof(*nu));
            if (nu) {
                c->unwanted = nu;
                c->cap_unwanted = ncap;
            }
        }
        if (c->n_unwanted < c->cap_unwanted)
            c->unwanted[c->n_unwanted++] = mid;
    }
    pthread_mutex_unlock(&c->mu);
}

static void add_ack(struct kh_client *c, int mid, int code)
{
    pthread_mutex_lock(&c->mu);
    if (take_unwanted(c, mid)) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (c->n_acks == c->cap_acks) {
        size_t ncap = c->cap_acks ? c->cap_acks * 2 : 16;
        struct ack *na = realloc(c->acks, ncap * sizeof(*na));
        if (!na) {
            /* The waiter times out; nothing better to do inside a libmosquitto callback. */
            say("harness: out of memory recording ack mid=%d\n", mid);
            pthread_mutex_unlock(&c->mu);
            return;
        }
        c->acks = na;
        c->cap_acks = ncap;
    }
    c->acks[c->n_acks++] = (struct ack){mid, code};
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int rc,
                       const mosquitto_property *props)
{
    (void)m;
    (void)props;
    add_ack(obj, mid, rc);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int count, const int *granted,
                         const mosquitto_property *props)
{
    (void)m;
    (void)props;
    add_ack(obj, mid, count > 0 ? granted[0] : 0x80);
}

static void on_unsubscribe(struct mosquitto *m, void *obj, int mid, const mosquitto_property *props)
{
    (void)m;
    (void)props;
    add_ack(obj, mid, 0);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    struct kh_client *c = obj;
    struct qmsg *q = calloc(1, sizeof(*q));

    (void)m;
    (void)props;
    if (q) {
        q->m.topic = strdup(msg->topic);
        q->m.payload = malloc((size_t)msg->payloadlen + 1);
    }
    if (!q || !q->m.topic || !q->m.payload) {
        if (q)
            kh_msg_cleanup(&q->m);
        free(q);
        pthread_mutex_lock(&c->mu);
        c->lost_message = true;
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (msg->payloadlen > 0)
        memcpy(q->m.payload, msg->payload, (size_t)msg->payloadlen);
    q->m.payload[msg->payloadlen] = '\0';
    q->m.len = msg->payloadlen;
    q->m.qos = msg->qos;
    q->m.retain = msg->retain;

    pthread_mutex_lock(&c->mu);
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* The network thread: libmosquitto in "external thread" mode, so that publish/subscribe from the
 * test thread only queue packets and this loop writes them (mosquitto_threaded_set). Unlike
 * mosquitto_loop_forever it never reconnects: a lost connection is an event the test sees. */
static void *client_thread(void *arg)
{
    struct kh_client *c = arg;

    for (;;) {
        bool stop;
        int rc;

        pthread_mutex_lock(&c->mu);
        stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        rc = mosquitto_loop(c->mosq, POLL_MS, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            pthread_mutex_lock(&c->mu);
            c->connected = false;
            if (!c->gone) {
                c->gone = true;
                c->disconnect_code = rc;
            }
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
            break;
        }
    }
    return NULL;
}

static int mosq_to_errno(int rc)
{
    switch (rc) {
    case MOSQ_ERR_SUCCESS:
        return 0;
    case MOSQ_ERR_NOMEM:
        return -ENOMEM;
    case MOSQ_ERR_INVAL:
    case MOSQ_ERR_PAYLOAD_SIZE:
    case MOSQ_ERR_MALFORMED_UTF8:
    case MOSQ_ERR_QOS_NOT_SUPPORTED:
        return -EINVAL;
    case MOSQ_ERR_NO_CONN:
    case MOSQ_ERR_CONN_LOST:
        return -ENOTCONN;
    case MOSQ_ERR_ERRNO:
        return errno ? -errno : -EIO;
    default:
        return -EIO;
    }
}

struct kh_client *kh_client_create(int port, const char *client_id, const char *username,
                                   const char *password, int protocol_version)
{
    static unsigned long counter;
    struct kh_client *c;
    pthread_condattr_t ca;

    harness_init();
    if (port <= 0 || port > 65535 || protocol_version < 0 || protocol_version > 5 ||
        (protocol_version > 0 && protocol_version < 3))
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->port = port;
    c->protocol = protocol_version ? protocol_version : MQTT_PROTOCOL_V311;
    c->clean = true;
    if (client_id)
        c->id = strdup(client_id);
    else if (asprintf(&c->id, "kh-%d-%lu", (int)getpid(),
                      __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED)) < 0)
        c->id = NULL;
    c->username = username ? strdup(username) : NULL;
    c->password = password ? strdup(password) : NULL;
    if (!c->id || (username && !c->username) || (password && !c->password))
        goto fail;
    if (pthread_mutex_init(&c->mu, NULL) != 0)
        goto fail;
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&c->mu);
        goto fail;
    }
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&c->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&c->mu);
        goto fail;
    }
    pthread_condattr_destroy(&ca);
    return c;
fail:
    free(c->id);
    free(c->username);
    free(c->password);
    free(c);
    return NULL;
}

int kh_client_set_will(struct kh_client *c, const char *topic, const void *payload, int len,
                       int qos, bool retain)
{
    char *t;
    void *p;

    if (c->mosq || !topic || qos < 0 || qos > 2)
        return -EINVAL;
    if (len < 0)
        len = payload ? (int)strlen(payload) : 0;
    t = strdup(topic);
    p = malloc(len > 0 ? (size_t)len : 1);
    if (!t || !p) {
        free(t);
        free(p);
        return -ENOMEM;
    }
    if (len > 0)
        memcpy(p, payload, (size_t)len);
    free(c->will_topic);
    free(c->will_payload);
    c->will_topic = t;
    c->will_payload = p;
    c->will_len = len;
    c->will_qos = qos;
    c->will_retain = retain;
    return 0;
}

int kh_client_set_clean_session(struct kh_client *c, bool clean)
{
    if (c->mosq)
        return -EINVAL;
    c->clean = clean;
    return 0;
}

int kh_client_connect(struct kh_client *c)
{
    mosquitto_property *props = NULL;
    int64_t deadline;
    int rc;

    if (c->mosq)
        return -EISCONN;
    c->mosq = mosquitto_new(c->id, c->clean, c);
    if (!c->mosq)
        return -ENOMEM;
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, c->protocol);
    mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_threaded_set(c->mosq, true);
    if (c->username) {
        rc = mosquitto_username_pw_set(c->mosq, c->username, c->password);
        if (rc != MOSQ_ERR_SUCCESS)
            return mosq_to_errno(rc);
    }
    if (c->will_topic) {
        rc = mosquitto_will_set(c->mosq, c->will_topic, c->will_len, c->will_payload, c->will_qos,
                                c->will_retain);
        if (rc != MOSQ_ERR_SUCCESS)
            return mosq_to_errno(rc);
    }
    mosquitto_connect_v5_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(c->mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(c->mosq, on_publish);
    mosquitto_subscribe_v5_callback_set(c->mosq, on_subscribe);
    mosquitto_unsubscribe_v5_callback_set(c->mosq, on_unsubscribe);
    mosquitto_message_v5_callback_set(c->mosq, on_message);

    /* v5 ends a session at disconnect unless CONNECT asks for an expiry interval. */
    if (!c->clean && c->protocol == MQTT_PROTOCOL_V5 &&
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 3600) !=
            MOSQ_ERR_SUCCESS)
        return -ENOMEM;
    errno = 0;
    rc = mosquitto_connect_bind_v5(c->mosq, "127.0.0.1", c->port, 60, NULL, props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS)
        return mosq_to_errno(rc);
    if (pthread_create(&c->thread, NULL, client_thread, c) != 0)
        return -EAGAIN;
    c->thread_started = true;

    deadline = kt_now_ms() + kh_scale_ms(READY_TIMEOUT_MS);
    pthread_mutex_lock(&c->mu);
    while (!c->got_connack && !c->gone && kt_now_ms() < deadline)
        cv_wait(c, deadline);
    if (c->got_connack)
        rc = c->connack_code;
    else
        rc = c->gone ? -ECONNRESET : -ETIMEDOUT;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

struct kh_client *kh_client_new(int port, const char *client_id, const char *username,
                                const char *password, int protocol_version)
{
    struct kh_client *c = kh_client_create(port, client_id, username, password, protocol_version);
    int rc;

    if (!c) {
        say("harness: kh_client_create failed\n");
        return NULL;
    }
    rc = kh_client_connect(c);
    if (rc != 0) {
        if (rc < 0)
            say("harness: client %s could not connect to port %d: %s\n", c->id, port,
                strerror(-rc));
        else
            say("harness: client %s was refused by port %d: CONNACK code 0x%02x\n", c->id, port,
                (unsigned)rc);
        kh_client_free(c);
        return NULL;
    }
    return c;
}

/* Wait for the ack of mid. Returns its code, -ENOTCONN if the connection went, -ETIMEDOUT. */
static int wait_ack(struct kh_client *c, int mid)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(ACK_TIMEOUT_MS);
    int rc = -ETIMEDOUT;

    pthread_mutex_lock(&c->mu);
    for (;;) {
        size_t i;
        for (i = 0; i < c->n_acks && c->acks[i].mid != mid; i++)
            ;
        if (i < c->n_acks) {
            rc = c->acks[i].code;
            c->acks[i] = c->acks[--c->n_acks];
            break;
        }
        if (c->gone) {
            rc = -ENOTCONN;
            break;
        }
        if (kt_now_ms() >= deadline)
            break;
        cv_wait(c, deadline);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int kh_client_sub(struct kh_client *c, const char *filter, int qos)
{
    int mid = 0, rc;

    if (!c->mosq)
        return -ENOTCONN;
    rc = mosquitto_subscribe(c->mosq, &mid, filter, qos);
    if (rc != MOSQ_ERR_SUCCESS)
        return mosq_to_errno(rc);
    return wait_ack(c, mid);
}

int kh_client_unsub(struct kh_client *c, const char *filter)
{
    int mid = 0, rc;

    if (!c->mosq)
        return -ENOTCONN;
    rc = mosquitto_unsubscribe(c->mosq, &mid, filter);
    if (rc != MOSQ_ERR_SUCCESS)
        return mosq_to_errno(rc);
    rc = wait_ack(c, mid);
    return rc > 0 ? 0 : rc;
}

int kh_client_pub(struct kh_client *c, const char *topic, const void *payload, int len, int qos,
                  bool retain)
{
    int mid = 0, rc;

    if (!c->mosq)
        return -ENOTCONN;
    if (len < 0)
        len = payload ? (int)strlen(payload) : 0;
    rc = mosquitto_publish(c->mosq, &mid, topic, len, payload, qos, retain);
    if (rc != MOSQ_ERR_SUCCESS)
        return mosq_to_errno(rc);
    if (qos == 0) {
        ignore_ack(c, mid);
        return 0;
    }
    rc = wait_ack(c, mid);
    if (rc < 0)
        return rc;
    return rc < 0x80 ? 0 : rc;
}

/* Unlink and return the first queued message matching filter, or NULL. Caller holds c->mu. */
static struct qmsg *take_match(struct kh_client *c, const char *filter, bool unlink_it)
{
    struct qmsg *prev = NULL;

    for (struct qmsg *q = c->head; q; prev = q, q = q->next) {
        bool match = false;
        if (mosquitto_topic_matches_sub(filter, q->m.topic, &match) != MOSQ_ERR_SUCCESS || !match)
            continue;
        if (unlink_it) {
            if (prev)
                prev->next = q->next;
            else
                c->head = q->next;
            if (c->tail == q)
                c->tail = prev;
            q->next = NULL;
        }
        return q;
    }
    return NULL;
}

int kh_client_wait(struct kh_client *c, const char *filter, int timeout_ms, struct kh_msg *out)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);
    struct qmsg *q;

    if (out)
        memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->mu);
    while (!(q = take_match(c, filter, true)) && kt_now_ms() < deadline)
        cv_wait(c, deadline);
    if (!q && c->lost_message)
        say("harness: client %s dropped a message (out of memory)\n", c->id);
    pthread_mutex_unlock(&c->mu);
    if (!q)
        return -ETIMEDOUT;
    if (out)
        *out = q->m;
    else
        kh_msg_cleanup(&q->m);
    free(q);
    return 0;
}

int kh_client_expect_none(struct kh_client *c, const char *filter, int quiet_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(quiet_ms);
    struct qmsg *q;

    pthread_mutex_lock(&c->mu);
    while (!(q = take_match(c, filter, false)) && kt_now_ms() < deadline)
        cv_wait(c, deadline);
    if (q)
        say("harness: client %s got an unexpected message on %s (%d bytes): %.200s\n", c->id,
            q->m.topic, q->m.len, q->m.payload);
    pthread_mutex_unlock(&c->mu);
    return q ? 1 : 0;
}

int kh_client_drain(struct kh_client *c)
{
    struct qmsg *q;
    int n = 0;

    pthread_mutex_lock(&c->mu);
    q = c->head;
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->mu);
    while (q) {
        struct qmsg *next = q->next;
        kh_msg_cleanup(&q->m);
        free(q);
        q = next;
        n++;
    }
    return n;
}

bool kh_client_connected(struct kh_client *c)
{
    bool v;

    pthread_mutex_lock(&c->mu);
    v = c->connected;
    pthread_mutex_unlock(&c->mu);
    return v;
}

int kh_client_wait_disconnect(struct kh_client *c, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);
    int rc;

    pthread_mutex_lock(&c->mu);
    while (!c->gone && kt_now_ms() < deadline)
        cv_wait(c, deadline);
    rc = c->gone ? c->disconnect_code : -ETIMEDOUT;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static void stop_thread(struct kh_client *c)
{
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_mutex_unlock(&c->mu);
    if (c->thread_started) {
        pthread_join(c->thread, NULL);
        c->thread_started = false;
    }
}

void kh_client_abort(struct kh_client *c)
{
    if (!c->mosq)
        return;
    stop_thread(c);
    /* mosquitto_destroy closes the socket without sending DISCONNECT. */
    mosquitto_destroy(c->mosq);
    c->mosq = NULL;
    pthread_mutex_lock(&c->mu);
    c->connected = false;
    if (!c->gone) {
        c->gone = true;
        c->disconnect_code = MOSQ_ERR_CONN_LOST;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void kh_client_free(struct kh_client *c)
{
    if (!c)
        return;
    if (c->mosq) {
        if (kh_client_connected(c) && mosquitto_disconnect(c->mosq) == MOSQ_ERR_SUCCESS)
            (void)kh_client_wait_disconnect(c, READY_TIMEOUT_MS);
        stop_thread(c);
        mosquitto_destroy(c->mosq);
        c->mosq = NULL;
    }
    kh_client_drain(c);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->acks);
    free(c->unwanted);
    free(c->will_topic);
    free(c->will_payload);
    free(c->id);
    free(c->username);
    free(c->password);
    free(c);
}
