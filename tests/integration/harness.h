/* Integration-test harness: a real mosquitto with kedge_plugin.so, and MQTT clients to drive it.
 *
 * Every integration test starts its own broker (`/usr/sbin/mosquitto`) on 127.0.0.1 and a free
 * port, from a config written into a per-test temporary directory (`kedge-it-XXXXXX` under
 * $TMPDIR or /tmp) that also holds the broker log and the plugin's SQLite file. Readiness is a
 * deadline loop (the broker has logged "running" and an MQTT client got a CONNACK), never a
 * sleep. Stopping the broker returns its exit status, so a test can assert that the plugin
 * shut down cleanly (and, in the sanitizer and valgrind builds, without leaks).
 *
 * If a test process dies with a broker still running (a failed ck_assert _exits the test's
 * process, a Check timeout SIGKILLs it), a watcher process prints the broker's log to stderr
 * and removes the directory; the broker itself dies with the test (PR_SET_PDEATHSIG).
 *
 * Environment:
 *   KEDGE_TEST_TIMEOUT_SCALE=F  multiply every deadline and quiet period by F (default 1).
 *   KEDGE_VALGRIND=1            run the broker under valgrind (leaks and errors fail the stop);
 *                               deadlines are scaled by a further 20.
 *   KEDGE_KEEP_TMP=1            keep the temporary directories (their paths are printed).
 * Build-time (CMake sets them): KEDGE_PLUGIN_PATH, KEDGE_SOURCE_DIR, MOSQUITTO_BIN and, in the
 * sanitizer tree, KEDGE_ASAN_PRELOAD (the libasan.so that the uninstrumented broker must
 * preload to load an ASan plugin: spec README fact 29).
 *
 * The JSON normaliser for comparing plugin replies with recorded ones lives elsewhere.
 * Nothing here talks to anything but 127.0.0.1.
 */
#ifndef KEDGE_TESTS_HARNESS_H
#define KEDGE_TESTS_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

/* ---------------------------------------------------------------------------------------------
 * Timing
 */

/* Scale a deadline or quiet period (ms) by KEDGE_TEST_TIMEOUT_SCALE and, under KEDGE_VALGRIND,
 * by 20. Every *_ms argument of this API is scaled already; use this for your own deadlines. */
int kh_scale_ms(int ms);

/* Process-wide set-up (libmosquitto, SIGPIPE ignored); every kh_ entry point that needs it
 * calls it, once is enough. */
void kh_harness_init(void);

/* A suite's main: run s (freed here) with Check's output mode; EXIT_SUCCESS when nothing
 * failed, else EXIT_FAILURE. */
struct Suite;
int kh_run_suite(struct Suite *s, int print_mode);

/* ---------------------------------------------------------------------------------------------
 * Broker
 */

/* One plugin option: written as `plugin_opt_<key> <value>`. A NULL value writes nothing, which
 * is how a test removes one of the defaults (db_path, node_name). */
struct kh_opt {
    const char *key;
    const char *value;
};

struct kh_broker_opts {
    /* Plugin options in file order, ended by { NULL, NULL }; may be NULL. Defaults, unless
     * overridden here: db_path <dir>/kedge.db (or .db_path below), node_name kedge-node. Keys are
     * not checked, so a test can feed the broker a bad one (keys under 3 characters stop it). */
    const struct kh_opt *plugin_opts;
    /* Raw config lines (with '\n' between them) placed at the end of the config, after the
     * plugin block: password_file, acl_file, extra listeners. Must not change log_dest or
     * log_type: readiness is read from the log. */
    const char *extra_conf;
    /* Raw config lines placed before the first listener (per_listener_settings and the like). */
    const char *extra_conf_head;
    /* The plugin's database file; default <dir>/kedge.db. */
    const char *db_path;
    /* Use this existing directory instead of a new temporary one. It is never removed: the
     * test owns it. Together with keep_data_dir, lets a second broker reopen a first one's
     * files. */
    const char *data_dir;
    /* Do not remove the temporary directory in kh_broker_free (remove it with kh_rmtree). */
    bool keep_data_dir;
    /* Start a plain broker with no plugin line (a baseline for comparisons). */
    bool no_plugin;
    /* Load this .so instead of KEDGE_PLUGIN_PATH. */
    const char *plugin_path;
    /* `persistence true` with its file in the directory (default: persistence false). */
    bool persistence;
};

struct kh_broker;

/* Start a broker and wait until it accepts MQTT connections.
 *
 * o: borrowed for the call; NULL means all defaults.
 * Returns the broker, or NULL when it did not come up; the reason and the broker's log are then
 * on stderr. A port lost to a race between picking it and the broker binding it is retried
 * with a new port, up to 5 times.
 */
struct kh_broker *kh_broker_start(const struct kh_broker_opts *o);

/* Like kh_broker_start, for tests that expect start-up to fail.
 *
 * *out: set whenever the directory and config were made, even on failure, so the test can read
 *       kh_broker_exit_status() and the log; free it with kh_broker_free.
 * Returns 0 when the broker is ready; -ECHILD when it exited during start-up; -ETIMEDOUT when it
 * was not ready by the deadline (it is then killed); another -errno for a setup failure (then
 * *out is NULL).
 */
int kh_broker_launch(const struct kh_broker_opts *o, struct kh_broker **out);

/* SIGTERM the broker and reap it, waiting up to 10 s (scaled).
 *
 * Returns its exit code (0 = clean), 128 + signal number if a signal ended it, -ETIMEDOUT if it
 * had to be SIGKILLed after the deadline, or -ECHILD if it was not running. Any non-zero result
 * is a failure to assert on; the log is dumped to stderr when it is not 0.
 */
int kh_broker_stop(struct kh_broker *b);

/* SIGKILL the broker and reap it (a crash: no cleanup runs). Returns 0 or -ECHILD. */
int kh_broker_kill9(struct kh_broker *b);

/* Send a signal (SIGHUP for a reload, SIGUSR1 ...). Returns 0, -ECHILD or -errno. */
int kh_broker_signal(struct kh_broker *b, int sig);

/* Start the broker again: same port, same config, same directory and database. A running
 * broker is stopped first as kh_broker_stop does.
 *
 * Returns 0 when the new broker is ready; the old broker's exit status (> 0) when stopping it
 * failed (nothing is restarted then); -ECHILD, -ETIMEDOUT or -errno as kh_broker_launch.
 */
int kh_broker_restart(struct kh_broker *b);

/* Stop the broker if it is running (a non-zero exit is reported on stderr, not asserted: assert
 * on kh_broker_stop), then remove the directory unless KEDGE_KEEP_TMP=1, .keep_data_dir or
 * .data_dir say otherwise. NULL is a no-op. */
void kh_broker_free(struct kh_broker *b);

int kh_broker_port(const struct kh_broker *b);
/* The directory of config, logs and database; borrowed, valid until kh_broker_free. */
const char *kh_broker_dir(const struct kh_broker *b);
/* The database path given to the plugin; borrowed, valid until kh_broker_free. */
const char *kh_broker_db_path(const struct kh_broker *b);
/* The broker's process id, or 0 when it is not running. */
pid_t kh_broker_pid(const struct kh_broker *b);
/* Whether the broker is still running; reaps it (recording its exit status) if it has died. */
bool kh_broker_running(struct kh_broker *b);
/* Exit status of the last broker process that ended, encoded as kh_broker_stop returns it;
 * -ECHILD if none has ended yet. */
int kh_broker_exit_status(const struct kh_broker *b);

/* Print broker.log (and the broker's stdout/stderr and valgrind.log, when not empty) to stderr. */
void kh_broker_log_dump(const struct kh_broker *b);
/* The whole broker.log as a NUL-terminated string the caller frees, or NULL (errno set). */
char *kh_broker_log_read(const struct kh_broker *b);
/* Wait until broker.log contains needle (anywhere: the log spans every restart of this
 * broker). Returns 0 or -ETIMEDOUT. */
int kh_broker_wait_log(const struct kh_broker *b, const char *needle, int timeout_ms);

/* rm -rf path (no symlinks followed). Returns 0 or -errno. */
int kh_rmtree(const char *path);

/* ---------------------------------------------------------------------------------------------
 * MQTT clients (libmosquitto, one network thread per client)
 */

/* A received message. topic and payload are heap copies; payload has an extra NUL byte after
 * len bytes so it can be compared with strcmp. */
struct kh_msg {
    char *topic;
    char *payload;
    int len;
    int qos;
    bool retain;
};

/* Free what the message holds and zero it. NULL and a zeroed message are no-ops. */
void kh_msg_cleanup(struct kh_msg *m);

struct kh_client;

/* A client that is not connected yet, so that a will or session flag can be set first.
 *
 * client_id: NULL for a generated unique id. username, password: NULL for none.
 * protocol_version: 3 (MQTT 3.1), 4 (3.1.1) or 5; 0 means 4. All strings are copied.
 * Returns NULL on allocation failure or a bad argument.
 */
struct kh_client *kh_client_create(int port, const char *client_id, const char *username,
                                   const char *password, int protocol_version);

/* Set the will (before kh_client_connect). len < 0 means strlen(payload). Returns 0 or -errno. */
int kh_client_set_will(struct kh_client *c, const char *topic, const void *payload, int len,
                       int qos, bool retain);

/* Clean session (3.1.1) / clean start (5); default true. Before kh_client_connect. */
int kh_client_set_clean_session(struct kh_client *c, bool clean);

/* Connect to 127.0.0.1 and wait (10 s, scaled) for the CONNACK.
 *
 * Returns 0 when accepted; the CONNACK code (> 0: 5 "not authorised" on 3.1.1, 0x86/0x87 on v5)
 * when refused; -ETIMEDOUT, -ECONNREFUSED or another -errno.
 */
int kh_client_connect(struct kh_client *c);

/* kh_client_create + kh_client_connect. Returns NULL (reason on stderr) unless accepted. */
struct kh_client *kh_client_new(int port, const char *client_id, const char *username,
                                const char *password, int protocol_version);

/* Subscribe and wait for the SUBACK. Returns the granted QoS (0..2), the failure code from the
 * SUBACK (0x80 and up), or -errno (-ETIMEDOUT, -ENOTCONN). */
int kh_client_sub(struct kh_client *c, const char *filter, int qos);

/* Unsubscribe and wait for the UNSUBACK. Returns 0 or -errno. */
int kh_client_unsub(struct kh_client *c, const char *filter);

/* Publish. len < 0 means strlen(payload). For QoS 1 and 2, waits for the PUBACK / PUBCOMP.
 *
 * Returns 0 when the broker accepted it (QoS 0: when libmosquitto queued it; a v5 reason code
 * below 0x80, such as 0x10 "no matching subscribers", is success), the v5 reason code (0x80 and
 * up, e.g. 0x87 not authorised) when it refused it, or -errno (-ETIMEDOUT, -ENOTCONN, -EINVAL).
 */
int kh_client_pub(struct kh_client *c, const char *topic, const void *payload, int len, int qos,
                  bool retain);

/* Take the oldest queued message whose topic matches filter (MQTT wildcards), waiting up to
 * timeout_ms (scaled) for one. Non-matching messages stay queued, in arrival order.
 *
 * out: zeroed first; filled on success, then the caller owns it (kh_msg_cleanup). May be NULL
 *      to discard the message.
 * Returns 0 or -ETIMEDOUT.
 */
int kh_client_wait(struct kh_client *c, const char *filter, int timeout_ms, struct kh_msg *out);

/* Assert-style helper: wait quiet_ms (scaled) and report whether a message matching filter is
 * queued. Returns 0 when none arrived, 1 when one did (it stays queued; it is printed to
 * stderr). */
int kh_client_expect_none(struct kh_client *c, const char *filter, int quiet_ms);

/* Drop every queued message. Returns how many were dropped. */
int kh_client_drain(struct kh_client *c);

/* Whether the client has a live, accepted connection. */
bool kh_client_connected(struct kh_client *c);

/* Wait until the connection is gone (the broker closed it, or it failed).
 * Returns the disconnect code libmosquitto reported (a v5 reason code from the broker, or a
 * MOSQ_ERR_* such as MOSQ_ERR_CONN_LOST), or -ETIMEDOUT. */
int kh_client_wait_disconnect(struct kh_client *c, int timeout_ms);

/* Drop the connection without a DISCONNECT packet, as a crashed device would: the broker sends
 * the will. The client can then only be freed (queued messages can still be read). */
void kh_client_abort(struct kh_client *c);

/* Disconnect cleanly (no will) if connected, stop the network thread and free everything.
 * NULL is a no-op. */
void kh_client_free(struct kh_client *c);

#endif
