/* cloudbridge/edged/podvolumes.c: a pod's volume directories as kubelet lays them out: emptyDir,
 * hostPath type checks, configMap, secret, projected (the API server's kube-api-access volume,
 * every source kind, a token being fetched) and downwardAPI files through the AtomicWriter
 * layout (..data, timestamped directories, user-visible symlinks), and a removal no symlink
 * can redirect.
 *
 * The pod_spec is built by hand (no podspec_parse); the store is a lookup stub over a table.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "podvolumes.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "podvolumes_fixture.h"
#include "unit.h"

/* ---- emptyDir ------------------------------------------------------------------------------ */

START_TEST(empty_dir)
{
    char p[512];

    add_vol("cache", VOL_EMPTYDIR, NULL);
    add_vol("shm", VOL_EMPTYDIR, NULL)->medium = (char *)"Memory";
    ck_assert_int_eq(setup_pod(), 0);
    ck_assert_str_eq(why, "");
    ck_assert_int_eq(mode_of("cache", NULL), 0777); /* kubelet: any container user writes */
    ck_assert_int_eq(mode_of("shm", NULL), 0777);   /* a directory too (no tmpfs) */
    snprintf(p, sizeof(p), "%s/%s", pods, UID);
    ck_assert_int_eq(mode_of("", NULL) & 0777, 0750);   /* volumes/: kubelet's 0750 */
    ck_assert_int_eq(mode_of("..", NULL) & 0777, 0750); /* the pod's directory */
    /* a second setup keeps what the container wrote */
    path_of(p, sizeof(p), "cache", "state");
    write_file(p, "kept");
    ck_assert_int_eq(setup_pod(), 0);
    assert_content("cache", "state", "kept", 4);
    ck_assert_int_eq(lookup_calls, 0);
}
END_TEST

/* ---- hostPath ------------------------------------------------------------------------------ */

struct host_case {
    const char *type;
    const char *make; /* what exists at the path first: "", "dir", "file", "sock", "null" */
    int rc;
    const char *why; /* %s = the path */
};

static const struct host_case host_cases[] = {
    {"", "", 0, ""},
    {"DirectoryOrCreate", "", 0, ""},
    {"DirectoryOrCreate", "dir", 0, ""},
    {"DirectoryOrCreate", "file", KEDGE_ESCHEMA,
     "MountVolume.SetUp failed for volume \"host\" : hostPath type check failed: %s is not a "
     "directory"},
    {"Directory", "dir", 0, ""},
    {"Directory", "", KEDGE_ESCHEMA,
     "MountVolume.SetUp failed for volume \"host\" : hostPath type check failed: %s is not a "
     "directory"},
    {"Directory", "file", KEDGE_ESCHEMA,
     "MountVolume.SetUp failed for volume \"host\" : hostPath type check failed: %s is not a "
     "directory"},
    {"FileOrCreate", "", 0, ""},
    {"FileOrCreate", "file", 0, ""},
    {"FileOrCreate", "dir", KEDGE_ESCHEMA,
     "MountVolume.SetUp failed for volume \"host\" : hostPath type check failed: %s is not a "
     "file"},
    {"File", "file", 0, ""},
    {"File", "", KEDGE_ESCHEMA,
     "MountVolume.SetUp failed for volume \"host\" : hostPath type check failed: %s is not a "
     "file"},
    {"Socket", "sock", 0, ""},
    {"Socket", "file", KEDGE_ESCHEMA,
     "MountVolume.SetUp failed for volume \"host\" : hostPath type check failed: %s is not a "
     "socket file"},
    {"CharDevice", "null", 0, ""},
    {"CharDevice", "file", KEDGE_ESCHEMA,
     "MountVolume.SetUp failed for volume \"host\" : hostPath type check failed: %s is not a "
     "character device"},
    {"BlockDevice", "null", KEDGE_ESCHEMA,
     "MountVolume.SetUp failed for volume \"host\" : hostPath type check failed: %s is not a "
     "block device"},
    {"Fifo", "", KEDGE_ESCHEMA,
     "MountVolume.SetUp failed for volume \"host\" : Fifo is an invalid volume type"},
};

/* fmt with its one "%s" replaced by arg (the table's texts are not literals to printf). */
static void expand(char *out, size_t n, const char *fmt, const char *arg)
{
    const char *at = strstr(fmt, "%s");

    if (!at)
        snprintf(out, n, "%s", fmt);
    else
        snprintf(out, n, "%.*s%s%s", (int)(at - fmt), fmt, arg, at + 2);
}

START_TEST(host_path)
{
    const struct host_case *c = &host_cases[_i];
    char path[256], want[512], p[512];
    struct stat st;
    int sock = -1;

    snprintf(path, sizeof(path), "%s/host/a/b", tmp);
    if (!strcmp(c->make, "null")) {
        snprintf(path, sizeof(path), "/dev/null");
    } else if (*c->make) {
        snprintf(p, sizeof(p), "%s/host/a", tmp);
        ck_assert_int_eq(mkdir_p_test(p), 0);
        if (!strcmp(c->make, "dir")) {
            ck_assert_int_eq(mkdir(path, 0700), 0);
        } else if (!strcmp(c->make, "file")) {
            write_file(path, "x");
        } else {
            struct sockaddr_un sa = {.sun_family = AF_UNIX};
            ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
            memcpy(sa.sun_path, path, strlen(path) + 1);
            sock = socket(AF_UNIX, SOCK_STREAM, 0);
            ck_assert_int_ge(sock, 0);
            ck_assert_int_eq(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
        }
    }
    add_vol("host", VOL_HOSTPATH, path)->host_path_type = (char *)c->type;
    ck_assert_int_eq(setup_pod(), c->rc);
    expand(want, sizeof(want), c->why, path);
    ck_assert_str_eq(why, want);
    if (sock >= 0)
        close(sock);
    /* nothing is made under volumes/ for a hostPath: the bind uses the host path */
    path_of(p, sizeof(p), "host", NULL);
    ck_assert(!exists_nofollow(p));
    if (c->rc == 0 && !strcmp(c->type, "DirectoryOrCreate")) {
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        if (!*c->make)
            ck_assert_int_eq(st.st_mode & 0777, 0755);
    }
    if (c->rc == 0 && !strcmp(c->type, "FileOrCreate")) {
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert(S_ISREG(st.st_mode));
        if (!*c->make) {
            ck_assert_int_eq(st.st_size, 0);
            ck_assert_int_eq(st.st_mode & 0777, 0644);
        }
    }
    if (c->rc == 0 && !*c->type) /* no type: no check, nothing made */
        ck_assert(!exists_nofollow(path));
}
END_TEST

/* ---- configMap and secret ------------------------------------------------------------------ */

static const char cm_app_v2[] =
    "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"app\"},\"data\":{\"app.conf\":"
    "\"port=8080\\n\"},\"binaryData\":{\"logo.bin\":\"AAEC/w==\"}}";

START_TEST(configmap_all_keys)
{
    char list[512], target[128], p[512];

    put_object("configmap", "app", cm_app);
    add_vol("cfg", VOL_CONFIGMAP, "app");
    ck_assert_int_eq(setup_pod(), 0);
    ck_assert_str_eq(why, "");
    ck_assert_str_eq(last_ns, "apps");
    listing("cfg", list, sizeof(list));
    ck_assert_str_eq(list, "..TS ..data app.conf log.level logo.bin");
    assert_link("cfg", "app.conf", "..data/app.conf");
    assert_link("cfg", "logo.bin", "..data/logo.bin");
    assert_content("cfg", "app.conf", "port=80\n", 8);
    assert_content("cfg", "log.level", "info", 4);
    assert_content("cfg", "logo.bin", "\x00\x01\x02\xff", 4);
    ck_assert_int_eq(mode_of("cfg", "app.conf"), 0644);
    ck_assert_int_eq(mode_of("cfg", "logo.bin"), 0644);
    data_target("cfg", target, sizeof(target));
    snprintf(p, sizeof(p), "%s", target);
    ck_assert_int_eq(mode_of("cfg", p), 0755);
    ck_assert_int_eq(mode_of("cfg", NULL), 0755);
}
END_TEST

START_TEST(configmap_items)
{
    struct pod_volume *v;
    char list[512];

    put_object("configmap", "app", cm_app);
    v = add_vol("cfg", VOL_CONFIGMAP, "app");
    v->default_mode = 0440;
    add_item(v, "app.conf", "conf/nginx/app.conf", 0600);
    add_item(v, "log.level", "./level", -1);
    ck_assert_int_eq(setup_pod(), 0);
    listing("cfg", list, sizeof(list));
    ck_assert_str_eq(list, "..TS ..data conf level");
    assert_link("cfg", "conf", "..data/conf");
    assert_link("cfg", "level", "..data/level");
    assert_content("cfg", "conf/nginx/app.conf", "port=80\n", 8);
    assert_content("cfg", "level", "info", 4);
    ck_assert_int_eq(mode_of("cfg", "conf/nginx/app.conf"), 0600);
    ck_assert_int_eq(mode_of("cfg", "level"), 0440);
    ck_assert_int_eq(mode_of("cfg", "conf/nginx"), 0755);
}
END_TEST

START_TEST(configmap_missing_key)
{
    struct pod_volume *v;
    char list[512];

    put_object("configmap", "app", cm_app);
    v = add_vol("cfg", VOL_CONFIGMAP, "app");
    add_item(v, "nope", "nope", -1);
    add_item(v, "log.level", "level", -1);
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"cfg\" : configmap references "
                          "non-existent config key: nope");
    v->optional = true; /* optional: the missing key is skipped, the others are there */
    ck_assert_int_eq(setup_pod(), 0);
    listing("cfg", list, sizeof(list));
    ck_assert_str_eq(list, "..TS ..data level");
}
END_TEST

START_TEST(secret_keys)
{
    struct pod_volume *v;
    char list[512];

    put_object("secret", "db", secret_db);
    v = add_vol("creds", VOL_SECRET, "db");
    v->default_mode = 0400;
    ck_assert_int_eq(setup_pod(), 0);
    listing("creds", list, sizeof(list));
    ck_assert_str_eq(list, "..TS ..data ca.crt password");
    assert_content("creds", "password", "s3cr3t", 6);
    assert_content("creds", "ca.crt", "\0bin\0", 5);
    ck_assert_int_eq(mode_of("creds", "password"), 0400);
}
END_TEST

START_TEST(secret_missing_key)
{
    struct pod_volume *v;

    put_object("secret", "db", secret_db);
    v = add_vol("creds", VOL_SECRET, "db");
    add_item(v, "user", "user", -1);
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"creds\" : references "
                          "non-existent secret key: user");
}
END_TEST

START_TEST(missing_objects)
{
    char list[512], target[128], p[512];
    struct pod_volume *v;
    DIR *d;
    struct dirent *de;
    int n = 0;

    v = add_vol("cfg", VOL_CONFIGMAP, "app");
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"cfg\" : configmap \"app\" not "
                          "found");
    pod_reset();
    v = add_vol("creds", VOL_SECRET, "db");
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"creds\" : secret \"db\" not "
                          "found");
    v->optional = true; /* an empty volume */
    ck_assert_int_eq(setup_pod(), 0);
    ck_assert_str_eq(why, "");
    listing("creds", list, sizeof(list));
    ck_assert_str_eq(list, "..TS ..data");
    data_target("creds", target, sizeof(target));
    path_of(p, sizeof(p), "creds", target);
    d = opendir(p);
    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    ck_assert_int_eq(n, 0);
}
END_TEST

struct path_case {
    const char *path;
    const char *why;
};

static const struct path_case path_cases[] = {
    {"../escape", "invalid path: must not contain '..': ../escape"},
    {"a/../../b", "invalid path: must not contain '..': a/../../b"},
    {"/etc/passwd", "invalid path: must be relative path: /etc/passwd"},
    {"..data/x", "invalid path: must not start with '..': ..data/x"},
    {"", "invalid path: must not be empty: \"\""},
};

START_TEST(item_paths)
{
    const struct path_case *c = &path_cases[_i];
    struct pod_volume *v;
    char want[512], p[512];

    put_object("configmap", "app", cm_app);
    v = add_vol("cfg", VOL_CONFIGMAP, "app");
    add_item(v, "app.conf", c->path, -1);
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    snprintf(want, sizeof(want), "MountVolume.SetUp failed for volume \"cfg\" : %s", c->why);
    ck_assert_str_eq(why, want);
    path_of(p, sizeof(p), "cfg", "..data"); /* nothing written */
    ck_assert(!exists_nofollow(p));
    snprintf(p, sizeof(p), "%s/escape", tmp);
    ck_assert(!exists_nofollow(p));
}
END_TEST

static ino_t inode_of(const char *vol, const char *rel)
{
    char p[512];
    struct stat st;

    path_of(p, sizeof(p), vol, rel);
    ck_assert_int_eq(stat(p, &st), 0);
    return st.st_ino;
}

START_TEST(atomic_update)
{
    char t1[128], t2[128], t3[128], list[512], p[512];
    ino_t ino;

    put_object("configmap", "app", cm_app);
    add_vol("cfg", VOL_CONFIGMAP, "app");
    ck_assert_int_eq(setup_pod(), 0);
    data_target("cfg", t1, sizeof(t1));
    ino = inode_of("cfg", "app.conf");

    /* unchanged: nothing is rewritten, a removed user-visible link comes back */
    path_of(p, sizeof(p), "cfg", "log.level");
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(setup_pod(), 0);
    data_target("cfg", t2, sizeof(t2));
    ck_assert_str_eq(t1, t2);
    ck_assert(inode_of("cfg", "app.conf") == ino);
    assert_link("cfg", "log.level", "..data/log.level");

    /* changed: a new data directory, the old one gone, a dropped key's link gone */
    put_object("configmap", "app", cm_app_v2);
    ck_assert_int_eq(setup_pod(), 0);
    data_target("cfg", t2, sizeof(t2));
    ck_assert_str_ne(t1, t2);
    path_of(p, sizeof(p), "cfg", t1);
    ck_assert(!exists_nofollow(p));
    listing("cfg", list, sizeof(list));
    ck_assert_str_eq(list, "..TS ..data app.conf logo.bin");
    assert_content("cfg", "app.conf", "port=8080\n", 10);

    /* a mode change alone is a change too */
    vols[0].default_mode = 0600;
    ck_assert_int_eq(setup_pod(), 0);
    data_target("cfg", t3, sizeof(t3));
    ck_assert_str_ne(t2, t3);
    ck_assert_int_eq(mode_of("cfg", "app.conf"), 0600);

    /* a data directory a crash left behind goes with the next switch */
    path_of(p, sizeof(p), "cfg", "..2001_01_01_00_00_00.000000001");
    ck_assert_int_eq(mkdir(p, 0755), 0);
    put_object("configmap", "app", cm_app);
    ck_assert_int_eq(setup_pod(), 0);
    ck_assert(!exists_nofollow(p));
    listing("cfg", list, sizeof(list));
    ck_assert_str_eq(list, "..TS ..data app.conf log.level logo.bin");
}
END_TEST

START_TEST(object_errors)
{
    struct pod_volume *v;

    v = add_vol("cfg", VOL_CONFIGMAP, "app");
    put_object("configmap", "app", "{\"data\":");
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"cfg\" : configmap \"app\" is not "
                          "valid JSON");
    put_object("configmap", "app", "{\"data\":{\"k\":1}}");
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"cfg\" : configmap \"app\": "
                          "data.k is not a string");
    put_object("configmap", "app", "{\"data\":{\"a/b\":\"x\"}}");
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"cfg\" : invalid path: a/b is not "
                          "a file name");
    lookup_fail = -EIO;
    ck_assert_int_eq(setup_pod(), -EIO);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"cfg\" : get configmap \"app\": "
                          "Input/output error");
    lookup_fail = 0;
    pod_reset();
    v = add_vol("creds", VOL_SECRET, "db");
    put_object("secret", "db", "{\"data\":{\"password\":\"not base64!\"}}");
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"creds\" : secret \"db\": "
                          "data.password is not base64");
    pod_reset();
    v = add_vol("data", VOL_UNSUPPORTED, NULL);
    v->unsupported = (char *)"persistentVolumeClaim";
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"data\" : volume type "
                          "persistentVolumeClaim is not supported on this node");
    pod_reset();
    add_vol("..", VOL_EMPTYDIR, NULL);
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "volume name \"..\" cannot name a directory");
    pod_reset();
    pod.uid = (char *)"../x";
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "pod uid \"../x\" cannot name a directory");
}
END_TEST

START_TEST(uses)
{
    add_vol("cfg", VOL_CONFIGMAP, "app");
    add_vol("creds", VOL_SECRET, "db");
    add_vol("host", VOL_HOSTPATH, "/app");
    ck_assert(podvolumes_uses(&pod, "configmap", "app"));
    ck_assert(podvolumes_uses(&pod, "secret", "db"));
    ck_assert(!podvolumes_uses(&pod, "secret", "app"));
    ck_assert(!podvolumes_uses(&pod, "configmap", "db"));
    ck_assert(!podvolumes_uses(&pod, "configmap", "/app"));
    ck_assert(!podvolumes_uses(&pod, "pod", "app"));
}
END_TEST

static Suite *podvolumes_suite(void)
{
    Suite *s = suite_create("podvolumes");
    TCase *tc;

    tc = tcase_create("types");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, empty_dir);
    tcase_add_loop_test(tc, host_path, 0, (int)(sizeof(host_cases) / sizeof(host_cases[0])));
    tcase_add_test(tc, uses);
    suite_add_tcase(s, tc);

    tc = tcase_create("objects");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, configmap_all_keys);
    tcase_add_test(tc, configmap_items);
    tcase_add_test(tc, configmap_missing_key);
    tcase_add_test(tc, secret_keys);
    tcase_add_test(tc, secret_missing_key);
    tcase_add_test(tc, missing_objects);
    tcase_add_loop_test(tc, item_paths, 0, (int)(sizeof(path_cases) / sizeof(path_cases[0])));
    tcase_add_test(tc, atomic_update);
    tcase_add_test(tc, object_errors);
    podvolumes_nomem_tests(tc);
    suite_add_tcase(s, tc);

    tc = tcase_create("projected");
    tcase_add_checked_fixture(tc, setup, teardown);
    podvolumes_projected_tests(tc);
    suite_add_tcase(s, tc);

    tc = tcase_create("remove");
    tcase_add_checked_fixture(tc, setup, teardown);
    podvolumes_remove_tests(tc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(podvolumes_suite());
}
