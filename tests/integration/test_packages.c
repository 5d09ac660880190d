/* The .deb packages (issue 14), as an administrator gets them: CPack builds kedge-plugin and
 * kedge-bridge from this tree, and `dpkg --root` installs them into a throw-away root with their
 * maintainer scripts (run with DPKG_ROOT set, --force-script-chrootless). Debian's own
 * /usr/sbin/mosquitto then starts with a main config like Debian's that includes the installed
 * /etc/mosquitto/conf.d/kedge.conf; only the port and the absolute paths of that file are
 * rewritten to point into the root, every other line is the package's. The installed kedge-ctl
 * (with the password kedge-plugin's postinst made) adds a device, and a device asks for its
 * twin and the node's membership and gets the answers. A second install (the upgrade path)
 * keeps the password; a purge removes what each package made and nothing else.
 *
 * Run as root (CI is; dpkg needs it), the broker drops to user mosquitto as Debian's does, so
 * the password file's root:mosquitto 0640 and the database directory's owner are checked too.
 * Nothing outside the scratch directory is touched: not /etc, not a service, not the host's
 * dpkg database.
 */
#define _GNU_SOURCE /* asprintf */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "proc.h"
#include "testsupport.h"

#define CPACK_MS 600000 /* building both packages (strip, dpkg-shlibdeps, xz) */
#define TOOL_MS 60000   /* dpkg-deb, the postinst, kedge-ctl */
#define WAIT_MS 10000   /* an answer from the broker */

static char *scratch; /* everything of this test: debs/, root/, conf.d/, the broker's files */
static char *root;    /* the throw-away root the packages are installed into */

/* "<a><b>", malloc'd; the test fails on allocation failure. */
static char *cat2(const char *a, const char *b)
{
    char *s;

    ck_assert_int_ge(asprintf(&s, "%s%s", a, b), 0);
    return s;
}

/* Run argv to its end; it must exit 0. Returns its stdout (free it). */
static char *run_ok(const char *const *argv, int timeout_ms)
{
    char *out = NULL, *err = NULL;
    int status = -1;
    int rc = kt_run(argv, kh_scale_ms(timeout_ms), &status, &out, &err);

    ck_assert_msg(rc == 0, "cannot run %s: %s", argv[0], strerror(-rc));
    if (status != 0)
        fprintf(stderr, "----- %s exited %d\n%s\n%s\n", argv[0], status, out, err);
    ck_assert_msg(status == 0, "%s %s exited %d", argv[0], argv[1] ? argv[1] : "", status);
    free(err);
    return out;
}

/* The one file in dir whose name starts with prefix, as a malloc'd path. */
static char *find_deb(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char *found = NULL;

    ck_assert_msg(d != NULL, "cannot open %s: %s", dir, strerror(errno));
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) || n < 4 ||
            strcmp(e->d_name + n - 4, ".deb"))
            continue;
        ck_assert_msg(found == NULL, "two %s packages in %s", prefix, dir);
        found = kt_path_join(dir, e->d_name);
    }
    closedir(d);
    ck_assert_msg(found != NULL, "no %s*.deb in %s", prefix, dir);
    return found;
}

static void assert_file(const char *path_in_root)
{
    char *p = cat2(root, path_in_root);
    struct stat st;

    ck_assert_msg(stat(p, &st) == 0 && S_ISREG(st.st_mode), "the packages do not install %s",
                  path_in_root);
    free(p);
}

/* Build both packages with this tree's CPack configuration; returns their paths. */
static void build_debs(char **plugin_deb, char **bridge_deb)
{
    char *debs = kt_path_join(scratch, "debs");
    const char *argv[] = {
        KEDGE_CPACK, "-G", "DEB", "--config", KEDGE_BINARY_DIR "/CPackConfig.cmake",
        "-B",        debs, NULL};

    free(run_ok(argv, CPACK_MS));
    *plugin_deb = find_deb(debs, "kedge-plugin_");
    *bridge_deb = find_deb(debs, "kedge-bridge_");
    free(debs);
}

/* Depends must name mosquitto (the plugin's host, which dpkg-shlibdeps cannot see) and the
 * libraries dpkg-shlibdeps found. */
static void check_depends(const char *plugin_deb, const char *bridge_deb)
{
    const char *pa[] = {"dpkg-deb", "-f", plugin_deb, "Depends", NULL};
    const char *ba[] = {"dpkg-deb", "-f", bridge_deb, "Depends", NULL};
    char *p = run_ok(pa, TOOL_MS), *b = run_ok(ba, TOOL_MS);

    kt_say("kedge-plugin Depends: %s\n", p);
    kt_say("kedge-bridge Depends: %s\n", b);
    ck_assert_ptr_nonnull(strstr(p, "mosquitto (>= 2.0)"));
    ck_assert_ptr_nonnull(strstr(p, "libsqlite3-0"));
    ck_assert_ptr_nonnull(strstr(p, "libc6"));
    ck_assert_ptr_nonnull(strstr(b, "libwebsockets"));
    ck_assert_ptr_nonnull(strstr(b, "libmosquitto1"));
    ck_assert_ptr_nonnull(strstr(b, "libsystemd0"));
    free(p);
    free(b);
}

/* A directory of the root that Debian's base system or another package would have made. */
static void mkdir_in_root(const char *path)
{
    char *p = cat2(root, path);

    ck_assert_msg(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p, strerror(errno));
    free(p);
}

/* dpkg on the root: `dpkg --root` with the maintainer scripts run outside a chroot and
 * DPKG_ROOT set (--force-script-chrootless; the root has no shell of its own) and the
 * dependencies not checked (the root's package database holds only ours; check_depends and the
 * host's packages stand in for them). args: dpkg's action and operands, NULL-terminated. */
static void dpkg_root(const char *const *args)
{
    char *admin = cat2("--root=", root), *log;
    const char *argv[16] = {"dpkg", admin, "--force-script-chrootless", "--force-depends"};
    size_t n = 5;

    ck_assert_int_ge(asprintf(&log, "--log=%s/dpkg.log", scratch), 0);
    argv[4] = log;
    for (; *args; args++) {
        ck_assert_uint_lt(n, sizeof(argv) / sizeof(argv[0]) - 1);
        argv[n++] = *args;
    }
    free(run_ok(argv, TOOL_MS));
    free(log);
    free(admin);
}

/* An empty dpkg database in the root, as debootstrap leaves one. */
static void make_root(void)
{
    static const char *const dirs[] = {
        "", "/var", "/var/lib", "/var/lib/dpkg", "/var/lib/dpkg/info", "/var/lib/dpkg/updates"};
    char *status = cat2(root, "/var/lib/dpkg/status");

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        mkdir_in_root(dirs[i]);
    ck_assert_int_eq(kt_append_text(status, "", 0644), 0);
    free(status);
}

static bool in_root(const char *path)
{
    char *p = cat2(root, path);
    bool there = access(p, F_OK) == 0;

    free(p);
    return there;
}

/* What dpkg recorded as the package's conffiles must include path. */
static void assert_conffile(const char *package, const char *path)
{
    char *admin = cat2("--admindir=", root), *db = cat2(admin, "/var/lib/dpkg"), *out;
    const char *argv[] = {"dpkg-query", db, "-W", "-f=${Conffiles}", package, NULL};

    out = run_ok(argv, TOOL_MS);
    ck_assert_msg(strstr(out, path) != NULL, "%s: %s is not a conffile (%s)", package, path, out);
    free(out);
    free(db);
    free(admin);
}

/* Install both packages into the root with dpkg, then install them again (an upgrade to the
 * same version: prerm, postrm and postinst with the old version run). kedge-plugin's postinst
 * must make the bridge password, root:mosquitto 0640, once, and keep it on the second run. */
static void install_debs(const char *plugin_deb, const char *bridge_deb)
{
    const char *install[] = {"-i", plugin_deb, bridge_deb, NULL};
    char *pw = cat2(root, "/etc/kedge/bridge.password"), *first, *second;
    struct stat st;
    struct group *g = getgrnam("mosquitto");

    make_root();
    dpkg_root(install);
    assert_conffile("kedge-plugin", "/etc/kedge/mosquitto-kedge.conf");
    { /* conf.d has a plain link to it, which a remove takes away */
        char *link = cat2(root, "/etc/mosquitto/conf.d/kedge.conf"), target[128];
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        ck_assert_msg(n > 0, "%s is not a link", link);
        target[n] = '\0';
        ck_assert_str_eq(target, "../../kedge/mosquitto-kedge.conf");
        free(link);
    }
    assert_conffile("kedge-bridge", "/etc/kedge/kedge-bridge.conf");
    ck_assert_msg(stat(pw, &st) == 0, "postinst made no %s", pw);
    ck_assert_int_eq(st.st_mode & 07777, 0640);
    ck_assert_msg(g != NULL && st.st_gid == g->gr_gid, "bridge.password is not group mosquitto");
    ck_assert_int_gt(st.st_size, 16);
    first = kt_read_from(pw, 0);
    dpkg_root(install);
    second = kt_read_from(pw, 0);
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(second);
    ck_assert_str_eq(first, second);
    free(second);
    free(first);
    free(pw);
}

/* The installed conf.d file with only the listener's port and the absolute paths moved into
 * the root; written to <scratch>/conf.d/kedge.conf. Its content is checked first: the plugin
 * line names the installed plugin, set_tcp_nodelay is on, per_listener_settings never. */
static void write_patched_confd(int port)
{
    char *src = cat2(root, "/etc/mosquitto/conf.d/kedge.conf");
    char *text = kt_read_from(src, 0), *line, *next;
    char *dir = kt_path_join(scratch, "conf.d"), *dst = kt_path_join(dir, "kedge.conf");
    FILE *f;
    int patched = 0;

    ck_assert_msg(text != NULL, "no %s", src);
    ck_assert_ptr_nonnull(strstr(text, "\nplugin " KEDGE_PLUGIN_INSTALL_PATH "\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nset_tcp_nodelay true\n"));
    ck_assert_ptr_null(strstr(text, "\nper_listener_settings true"));
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    f = fopen(dst, "w");
    ck_assert_ptr_nonnull(f);
    for (line = text; *line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : line + strlen(line);
        if (nl)
            *nl = '\0';
        if (!strncmp(line, "listener ", 9)) {
            fprintf(f, "listener %d 127.0.0.1\n", port);
            patched++;
        } else if (!strncmp(line, "plugin /", 8) || !strncmp(line, "plugin_opt_db_path /", 20) ||
                   !strncmp(line, "plugin_opt_bridge_password_file /", 33)) {
            char *slash = strchr(line, '/');
            fprintf(f, "%.*s%s%s\n", (int)(slash - line), line, root, slash);
            patched++;
        } else {
            fprintf(f, "%s\n", line);
        }
    }
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(patched, 4); /* listener, plugin, db_path, password file */
    free(dst);
    free(dir);
    free(text);
    free(src);
}

/* Debian's mosquitto.conf in miniature: persistence, a log, include_dir. Run as root, the broker
 * drops to user mosquitto (no `user` line), so the scratch tree must be traversable by it and the
 * database directory (Debian's /var/lib/mosquitto, which mosquitto's postinst gives to
 * mosquitto) owned by it. */
static char *write_main_conf(void)
{
    char *conf = kt_path_join(scratch, "mosquitto.conf"), *state = cat2(root, "/var/lib/mosquitto");
    FILE *f;

    mkdir_in_root("/var");
    mkdir_in_root("/var/lib");
    mkdir_in_root("/var/lib/mosquitto");
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("mosquitto");
        ck_assert_msg(pw != NULL, "no user mosquitto (Debian's mosquitto package makes it)");
        ck_assert_int_eq(chown(state, pw->pw_uid, (gid_t)-1), 0);
        ck_assert_int_eq(chmod(scratch, 0755), 0);
    }
    f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "persistence true\npersistence_location %s/\nlog_dest stderr\nlog_type all\n"
            "include_dir %s/conf.d\n",
            state, scratch);
    ck_assert_int_eq(fclose(f), 0);
    free(state);
    return conf;
}

/* An ASan plugin needs the sanitizer runtime preloaded into Debian's uninstrumented broker. */
static const char *const *broker_env(void)
{
#ifdef KEDGE_ASAN_PRELOAD
    static const char *const env[] = {
        "LD_PRELOAD=" KEDGE_ASAN_PRELOAD, "ASAN_OPTIONS=detect_leaks=1:exitcode=23",
        "LSAN_OPTIONS=suppressions=" KEDGE_SOURCE_DIR "/tests/lsan.supp:print_suppressions=0",
        NULL};
    return env;
#else
    return NULL;
#endif
}

/* Start the broker on a free port; a port taken between picking and binding is retried. */
static int start_broker(struct kt_proc *p, const char *conf, const char *log)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = kt_free_port();
        const char *argv[] = {MOSQUITTO_BIN, "-c", conf, NULL};
        struct kt_spawn sp = {.argv = argv, .env = broker_env(), .log_path = log};
        long from = kt_file_size(log);
        char *d = kt_path_join(scratch, "conf.d");

        ck_assert_int_gt(port, 0);
        kt_rmtree(d, true);
        free(d);
        write_patched_confd(port);
        ck_assert_int_eq(kt_proc_spawn(p, &sp), 0);
        if (kt_proc_wait_log(p, log, from, " running", kh_scale_ms(WAIT_MS)) == 0)
            return port;
        if (!kt_file_contains(log, from, "Address already in use"))
            break;
        kt_proc_stop(p, kh_scale_ms(WAIT_MS), "mosquitto");
    }
    kt_copy_to_stderr(log, "mosquitto");
    ck_abort_msg("Debian's mosquitto did not start with the installed conf.d/kedge.conf");
    return -1;
}

/* A device's question and the plugin's answer. */
static char *ask(struct kh_client *c, const char *topic, const char *body, const char *result)
{
    struct kh_msg m;
    char *payload;

    ck_assert_int_ge(kh_client_sub(c, result, 1), 0);
    ck_assert_int_eq(kh_client_pub(c, topic, body, -1, 1, false), 0);
    ck_assert_msg(kh_client_wait(c, result, WAIT_MS, &m) == 0, "no answer on %s", result);
    payload = strdup(m.payload);
    ck_assert_ptr_nonnull(payload);
    kh_msg_cleanup(&m);
    return payload;
}

START_TEST(debs_install_and_serve)
{
    char *plugin_deb, *bridge_deb, *conf, *log, *ctl, *pw, *bconf, *out;
    struct kt_proc broker = KT_PROC_INIT;
    struct kh_client *dev;
    int port;

    build_debs(&plugin_deb, &bridge_deb);
    check_depends(plugin_deb, bridge_deb);
    install_debs(plugin_deb, bridge_deb);
    assert_file(KEDGE_PLUGIN_INSTALL_PATH);
    assert_file("/usr/bin/kedge-bridge");
    assert_file("/usr/bin/kedge-ctl");
    assert_file("/lib/systemd/system/kedge-bridge.service");
    assert_file("/usr/share/doc/kedge-bridge/README.md");
    assert_file("/usr/share/doc/kedge-plugin/copyright");
#ifdef KEDGE_HAVE_MANPAGES
    assert_file("/usr/share/man/man1/kedge-bridge.1.gz");
    assert_file("/usr/share/man/man1/kedge-ctl.1.gz");
#endif

    conf = write_main_conf();
    log = kt_path_join(scratch, "broker.log");
    port = start_broker(&broker, conf, log);

    /* The operator's step: the installed kedge-ctl, with the installed bridge config and the
     * postinst's password, adds a device through the plugin's $ke/ contract. */
    ctl = cat2(root, "/usr/bin/kedge-ctl");
    pw = cat2(root, "/etc/kedge/bridge.password");
    bconf = cat2(root, "/etc/kedge/kedge-bridge.conf");
    {
        char ps[16];
        snprintf(ps, sizeof(ps), "%d", port);
        const char *argv[] = {ctl, "-c",     bconf, "-p",     ps,       "-P",
                              pw,  "device", "add", "thermo", "--twin", "temperature:int",
                              NULL};
        free(run_ok(argv, TOOL_MS));
    }

    dev = kh_client_new(port, "thermo-device", NULL, NULL, 4);
    ck_assert_ptr_nonnull(dev);
    out = ask(dev, "$hw/events/device/thermo/twin/get", "{\"event_id\":\"g1\",\"timestamp\":1}",
              "$hw/events/device/thermo/twin/get/result");
    kt_say("twin get result: %s\n", out);
    ck_assert_ptr_nonnull(strstr(out, "\"event_id\":\"g1\""));
    ck_assert_ptr_nonnull(strstr(out, "\"temperature\""));
    free(out);
    /* plugin_opt_node_name as the package ships it. */
    out = ask(dev, "$hw/events/node/edge-node/membership/get", "{\"event_id\":\"m1\"}",
              "$hw/events/node/edge-node/membership/get/result");
    kt_say("membership get result: %s\n", out);
    ck_assert_ptr_nonnull(strstr(out, "\"thermo\""));
    free(out);
    kh_client_free(dev);

    ck_assert_int_eq(kt_proc_stop(&broker, kh_scale_ms(WAIT_MS), "mosquitto"), 0);
    ck_assert_msg(kt_file_contains(log, 0, "kedge"), "the broker's log never names the plugin");

    /* Purge: the plugin's files, its conffile, the password and the twins' database go;
     * mosquitto's own database and the other package stay. */
    {
        const char *purge_plugin[] = {"--purge", "kedge-plugin", NULL};
        const char *purge_bridge[] = {"--purge", "kedge-bridge", NULL};

        const char *remove_plugin[] = {"--remove", "kedge-plugin", NULL};

        /* remove (not purge): the plugin and the conf.d link go, so Debian's mosquitto starts
         * without it; the conffile and the twins stay */
        ck_assert(in_root("/var/lib/mosquitto/kedge.db"));
        dpkg_root(remove_plugin);
        ck_assert(!in_root(KEDGE_PLUGIN_INSTALL_PATH));
        ck_assert(!in_root("/etc/mosquitto/conf.d/kedge.conf"));
        ck_assert(in_root("/etc/kedge/mosquitto-kedge.conf"));
        ck_assert(in_root("/var/lib/mosquitto/kedge.db"));
        dpkg_root(purge_plugin);
        ck_assert(!in_root("/etc/kedge/mosquitto-kedge.conf"));
        ck_assert(!in_root(KEDGE_PLUGIN_INSTALL_PATH));
        ck_assert(!in_root("/etc/mosquitto/conf.d/kedge.conf"));
        ck_assert(!in_root("/etc/kedge/bridge.password"));
        ck_assert(!in_root("/var/lib/mosquitto/kedge.db"));
        ck_assert(in_root("/var/lib/mosquitto/mosquitto.db"));
        ck_assert(in_root("/etc/kedge/kedge-bridge.conf"));
        dpkg_root(purge_bridge);
        ck_assert(!in_root("/etc/kedge/kedge-bridge.conf"));
        ck_assert(!in_root("/usr/bin/kedge-bridge"));
    }
    free(bconf);
    free(pw);
    free(ctl);
    free(log);
    free(conf);
    free(bridge_deb);
    free(plugin_deb);
}
END_TEST

static void setup(void)
{
    kh_harness_init();
    scratch = kt_scratch_dir("kedge-pkg", 64);
    ck_assert_ptr_nonnull(scratch);
    root = kt_path_join(scratch, "root");
    ck_assert_ptr_nonnull(root);
}

static void teardown(void)
{
    kt_scratch_done(scratch, true, "test_packages");
    free(root);
    free(scratch);
    root = scratch = NULL;
}

int main(void)
{
    Suite *s = suite_create("packages");
    TCase *tc = tcase_create("deb");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, debs_install_and_serve);
    suite_add_tcase(s, tc);
    return kh_run_suite(s, CK_NORMAL);
}
