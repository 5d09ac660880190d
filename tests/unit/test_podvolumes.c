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
#include "unit.h"

#define UID "8f1c2a7e-0000-4000-8000-000000000001"

static char tmp[64];      /* per-test scratch directory */
static char pods[128];    /* {tmp}/pods (made by setup on first use) */
static char outside[128]; /* {tmp}/outside: what removal must never touch */

/* ---- the store stub ------------------------------------------------------------------------ */

struct object {
    const char *type, *name, *json;
};

static struct object objects[8];
static size_t n_objects;
static int lookup_calls;
static char last_ns[64];
static int lookup_fail; /* non-zero: lookup returns it */

static void put_object(const char *type, const char *name, const char *json)
{
    size_t i;

    for (i = 0; i < n_objects; i++)
        if (!strcmp(objects[i].type, type) && !strcmp(objects[i].name, name)) {
            objects[i].json = json;
            return;
        }
    ck_assert_uint_lt(n_objects, sizeof(objects) / sizeof(objects[0]));
    objects[n_objects].type = type;
    objects[n_objects].name = name;
    objects[n_objects].json = json;
    n_objects++;
}

static int lookup(void *ctx, const char *type, const char *ns, const char *name, char **json)
{
    size_t i;

    ck_assert_ptr_eq(ctx, &objects);
    *json = NULL;
    lookup_calls++;
    snprintf(last_ns, sizeof(last_ns), "%s", ns);
    if (lookup_fail)
        return lookup_fail;
    for (i = 0; i < n_objects; i++)
        if (!strcmp(objects[i].type, type) && !strcmp(objects[i].name, name)) {
            *json = kedge_strdup(objects[i].json);
            return *json ? 0 : -ENOMEM;
        }
    return -ENOENT;
}

/* ---- the token source stub ------------------------------------------------------------------ */

struct tokens {
    const char *token; /* NULL: -EAGAIN, "waiting" */
    int calls;
    char audience[64];
    int64_t expiration_s;
};

static struct tokens tokens;

static int token_stub(void *ctx, const struct pod_spec *p, const struct pod_projection *src,
                      char **token, char *msg, size_t msg_len)
{
    struct tokens *t = ctx;

    ck_assert_ptr_eq(ctx, &tokens);
    ck_assert_ptr_nonnull(p);
    t->calls++;
    snprintf(t->audience, sizeof(t->audience), "%s", src->audience ? src->audience : "(null)");
    t->expiration_s = src->expiration_s;
    if (!t->token) {
        snprintf(msg, msg_len, "failed to fetch token: waiting");
        return -EAGAIN;
    }
    *token = kedge_strdup(t->token);
    return *token ? 0 : -ENOMEM;
}

/* ---- pod building -------------------------------------------------------------------------- */

static struct pod_volume vols[8];
static struct pod_key_path items[8];
static struct pod_spec pod;

static void pod_reset(void)
{
    memset(vols, 0, sizeof(vols));
    memset(items, 0, sizeof(items));
    memset(&pod, 0, sizeof(pod));
    pod.ns = (char *)"apps";
    pod.name = (char *)"web";
    pod.uid = (char *)UID;
    pod.volumes = vols;
}

static struct pod_volume *add_vol(const char *name, enum pod_volume_kind kind, const char *source)
{
    struct pod_volume *v = &vols[pod.n_volumes++];

    v->name = (char *)name;
    v->kind = kind;
    v->source = (char *)source;
    v->host_path_type = (char *)"";
    v->medium = (char *)"";
    v->default_mode = 0644;
    return v;
}

static void add_item(struct pod_volume *v, const char *key, const char *path, int mode)
{
    struct pod_key_path *it = &items[0];

    while (it->key)
        it++;
    it->key = (char *)key;
    it->path = (char *)path;
    it->mode = mode;
    if (!v->items)
        v->items = it;
    v->n_items++;
}

static char why[512];

static int setup_pod(void)
{
    memset(why, 'x', sizeof(why));
    why[sizeof(why) - 1] = '\0';
    struct podvolumes_src src = {lookup, &objects, token_stub, &tokens};

    return podvolumes_setup(pods, &pod, &src, why, sizeof(why));
}

/* ---- file helpers -------------------------------------------------------------------------- */

static void path_of(char *out, size_t n, const char *vol, const char *rel)
{
    snprintf(out, n, "%s/%s/volumes/%s%s%s", pods, UID, vol, rel ? "/" : "", rel ? rel : "");
}

static void assert_content(const char *vol, const char *rel, const char *want, size_t want_len)
{
    char p[512], buf[4096];
    ssize_t n;
    int fd;

    path_of(p, sizeof(p), vol, rel);
    fd = open(p, O_RDONLY);
    ck_assert_msg(fd >= 0, "open %s: %s", p, strerror(errno));
    n = read(fd, buf, sizeof(buf));
    close(fd);
    ck_assert_int_eq(n, (ssize_t)want_len);
    ck_assert(memcmp(buf, want, want_len) == 0);
}

static int mode_of(const char *vol, const char *rel)
{
    char p[512];
    struct stat st;

    path_of(p, sizeof(p), vol, rel);
    ck_assert_msg(stat(p, &st) == 0, "stat %s: %s", p, strerror(errno));
    return (int)(st.st_mode & 07777);
}

static void assert_link(const char *vol, const char *rel, const char *target)
{
    char p[512], got[512];
    ssize_t n;

    path_of(p, sizeof(p), vol, rel);
    n = readlink(p, got, sizeof(got) - 1);
    ck_assert_msg(n > 0, "readlink %s: %s", p, strerror(errno));
    got[n] = '\0';
    ck_assert_str_eq(got, target);
}

static bool exists_nofollow(const char *p)
{
    struct stat st;

    return lstat(p, &st) == 0;
}

/* The ..data target (a "..YYYY_..." name) into out. */
static void data_target(const char *vol, char *out, size_t n)
{
    char p[512];
    ssize_t k;

    path_of(p, sizeof(p), vol, "..data");
    k = readlink(p, out, n - 1);
    ck_assert_msg(k > 0, "readlink %s: %s", p, strerror(errno));
    out[k] = '\0';
    ck_assert_msg(strncmp(out, "..", 2) == 0 && strlen(out) == strlen("..2024_01_02_03_04_05.") + 9,
                  "bad data dir name %s", out);
}

/* Entries of a volume directory, sorted, joined by ' ' (to see exactly what is there). */
static void listing(const char *vol, char *out, size_t n)
{
    struct dirent **list;
    char p[512];
    int k, i;

    path_of(p, sizeof(p), vol, NULL);
    k = scandir(p, &list, NULL, alphasort);
    ck_assert_int_ge(k, 0);
    out[0] = '\0';
    for (i = 0; i < k; i++) {
        if (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, "..")) {
            const char *name = strncmp(list[i]->d_name, "..2", 3) ? list[i]->d_name : "..TS";
            strncat(out, name, n - strlen(out) - 2);
            strncat(out, " ", n - strlen(out) - 1);
        }
        free(list[i]);
    }
    free(list);
    if (*out)
        out[strlen(out) - 1] = '\0';
}

static void write_file(const char *p, const char *content)
{
    FILE *f = fopen(p, "w");

    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    ck_assert_int_eq(fclose(f), 0);
}

static int mkdir_p_test(const char *dir)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
    return system(cmd);
}

static void rm_rf(const char *dir)
{
    char cmd[600];

    /* the scratch tree only, made by this test: plain rm is fine here */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void setup(void)
{
    umask(022);
    snprintf(tmp, sizeof(tmp), "/tmp/kedge-podvol-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(pods, sizeof(pods), "%s/var/pods", tmp);
    snprintf(outside, sizeof(outside), "%s/outside", tmp);
    ck_assert_int_eq(mkdir(outside, 0755), 0);
    n_objects = 0;
    lookup_calls = 0;
    lookup_fail = 0;
    last_ns[0] = '\0';
    pod_reset();
}

static void teardown(void)
{
    unit_libc_allocs();
    rm_rf(tmp);
}

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

static const char cm_app[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"app\","
    "\"namespace\":\"apps\"},\"data\":{\"app.conf\":\"port=80\\n\",\"log.level\":\"info\"},"
    "\"binaryData\":{\"logo.bin\":\"AAEC/w==\"}}";
static const char cm_app_v2[] =
    "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"app\"},\"data\":{\"app.conf\":"
    "\"port=8080\\n\"},\"binaryData\":{\"logo.bin\":\"AAEC/w==\"}}";
static const char secret_db[] =
    "{\"kind\":\"Secret\",\"metadata\":{\"name\":\"db\"},\"type\":\"Opaque\","
    "\"data\":{\"password\":\"czNjcjN0\",\"ca.crt\":\"AGJpbgA=\"}}";

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

/* ---- removal ------------------------------------------------------------------------------- */

START_TEST(remove_never_follows)
{
    char p[512], q[512], precious[256];
    struct stat st;

    snprintf(precious, sizeof(precious), "%s/precious", outside);
    write_file(precious, "keep me");
    put_object("configmap", "app", cm_app);
    add_vol("cache", VOL_EMPTYDIR, NULL);
    add_vol("cfg", VOL_CONFIGMAP, "app");
    ck_assert_int_eq(setup_pod(), 0);
    /* what a container could leave in its emptyDir */
    path_of(p, sizeof(p), "cache", "to-dir");
    ck_assert_int_eq(symlink(outside, p), 0);
    path_of(p, sizeof(p), "cache", "to-file");
    ck_assert_int_eq(symlink(precious, p), 0);
    path_of(p, sizeof(p), "cache", "sub");
    ck_assert_int_eq(mkdir(p, 0700), 0);
    path_of(p, sizeof(p), "cache", "sub/deeper");
    ck_assert_int_eq(mkdir(p, 0), 0); /* no permissions: root removes it anyway */
    path_of(p, sizeof(p), "cache", "sub/up");
    ck_assert_int_eq(symlink("../../../../../../outside", p), 0);
    path_of(p, sizeof(p), "cache", "sub/hard");
    ck_assert_int_eq(link(precious, p), 0);
    ck_assert_int_eq(podvolumes_remove(pods, UID), 0);
    snprintf(q, sizeof(q), "%s/%s", pods, UID);
    ck_assert(!exists_nofollow(q));
    ck_assert_int_eq(stat(precious, &st), 0);
    ck_assert_int_eq(st.st_size, 7);
    ck_assert_int_eq(podvolumes_remove(pods, UID), 0); /* gone already: 0 */
    ck_assert_int_eq(podvolumes_remove(pods, ".."), -EINVAL);
    ck_assert_int_eq(podvolumes_remove(pods, "a/b"), -EINVAL);
    snprintf(q, sizeof(q), "%s/none", tmp);
    ck_assert_int_eq(podvolumes_remove(q, UID), 0);
}
END_TEST

START_TEST(remove_symlinked_pod_dir)
{
    char p[512], precious[256];

    snprintf(precious, sizeof(precious), "%s/precious", outside);
    write_file(precious, "keep me");
    ck_assert_int_eq(mkdir_p_test(pods), 0);
    snprintf(p, sizeof(p), "%s/%s", pods, UID);
    ck_assert_int_eq(symlink(outside, p), 0);
    ck_assert_int_eq(podvolumes_remove(pods, UID), 0);
    ck_assert(!exists_nofollow(p));
    ck_assert(exists_nofollow(precious));
}
END_TEST

START_TEST(remove_deep_tree)
{
    char p[512];
    int fd, next, i;

    add_vol("cache", VOL_EMPTYDIR, NULL);
    ck_assert_int_eq(setup_pod(), 0);
    path_of(p, sizeof(p), "cache", NULL);
    fd = open(p, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(fd, 0);
    for (i = 0; i < 300; i++) { /* deeper than the removal keeps descriptors open for */
        ck_assert_int_eq(mkdirat(fd, "d", 0755), 0);
        next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
        ck_assert_int_ge(next, 0);
        if (i % 7 == 0)
            ck_assert_int_eq(symlinkat("/", next, "root"), 0);
        close(fd);
        fd = next;
    }
    close(fd);
    ck_assert_int_eq(podvolumes_remove(pods, UID), 0);
    snprintf(p, sizeof(p), "%s/%s", pods, UID);
    ck_assert(!exists_nofollow(p));
}
END_TEST

/* ---- projected and downwardAPI -------------------------------------------------------------- */

static struct pod_projection sources[8];
static struct pod_field_file fields[16]; /* one more than any test uses: a NULL path ends them */
static struct pod_kv labels[4], annotations[2];
static struct pod_container containers[1];

static struct pod_projection *add_source(struct pod_volume *v, enum pod_projection_kind kind)
{
    struct pod_projection *pr = &sources[0];

    while (pr->kind != PROJ_NONE)
        pr++;
    ck_assert_msg(pr < sources + sizeof(sources) / sizeof(sources[0]) - 1, "sources[] is full");
    pr->kind = kind;
    if (!v->sources)
        v->sources = pr;
    v->n_sources++;
    return pr;
}

/* A field file appended to the run that starts at *first (n counts them). */
static void add_field(struct pod_field_file **first, size_t *n, const char *path, const char *fp,
                      const char *resource, const char *divisor, int mode)
{
    struct pod_field_file *f = &fields[0];

    while (f->path)
        f++;
    ck_assert_msg(f < fields + sizeof(fields) / sizeof(fields[0]) - 1, "fields[] is full");
    f->path = (char *)path;
    f->field_path = (char *)fp;
    f->resource = (char *)resource;
    f->container = resource ? (char *)"app" : NULL;
    f->divisor = (char *)divisor;
    f->mode = mode;
    if (!*first)
        *first = f;
    (*n)++;
}

static const char root_ca[] =
    "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"kube-root-ca.crt\"},"
    "\"data\":{\"ca.crt\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"}}";
static const char root_ca_pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

/* The volume the API server adds to every pod (kube-api-access-*), exactly as it writes it. */
static struct pod_volume *kube_api_access(void)
{
    struct pod_volume *v = add_vol("kube-api-access-x7k2p", VOL_PROJECTED, NULL);
    struct pod_projection *pr;

    v->default_mode = 420;
    pr = add_source(v, PROJ_TOKEN);
    pr->audience = (char *)"";
    pr->path = (char *)"token";
    pr->expiration_s = 3607;
    pr = add_source(v, PROJ_CONFIGMAP);
    pr->name = (char *)"kube-root-ca.crt";
    items[7].key = (char *)"ca.crt";
    items[7].path = (char *)"ca.crt";
    items[7].mode = -1;
    pr->items = &items[7];
    pr->n_items = 1;
    pr = add_source(v, PROJ_DOWNWARD);
    add_field(&pr->fields, &pr->n_fields, "namespace", "metadata.namespace", NULL, NULL, -1);
    return v;
}

static void projected_reset(void)
{
    memset(sources, 0, sizeof(sources));
    memset(fields, 0, sizeof(fields));
    memset(containers, 0, sizeof(containers));
    memset(&tokens, 0, sizeof(tokens));
}

START_TEST(projected_kube_api_access)
{
    char list[512];

    projected_reset();
    put_object("configmap", "kube-root-ca.crt", root_ca);
    tokens.token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    kube_api_access();
    ck_assert_int_eq(setup_pod(), 0);
    ck_assert_str_eq(why, "");
    ck_assert_int_eq(tokens.calls, 1);
    ck_assert_str_eq(tokens.audience, "");
    ck_assert_int_eq(tokens.expiration_s, 3607);
    listing("kube-api-access-x7k2p", list, sizeof(list));
    ck_assert_str_eq(list, "..TS ..data ca.crt namespace token");
    assert_link("kube-api-access-x7k2p", "token", "..data/token");
    assert_content("kube-api-access-x7k2p", "token", tokens.token, strlen(tokens.token));
    assert_content("kube-api-access-x7k2p", "ca.crt", root_ca_pem, strlen(root_ca_pem));
    assert_content("kube-api-access-x7k2p", "namespace", "apps", 4);
    ck_assert_int_eq(mode_of("kube-api-access-x7k2p", "token"), 0644);
    ck_assert_int_eq(mode_of("kube-api-access-x7k2p", "ca.crt"), 0644);
    ck_assert_int_eq(mode_of("kube-api-access-x7k2p", "namespace"), 0644);
    ck_assert(podvolumes_uses(&pod, "configmap", "kube-root-ca.crt"));
    ck_assert(!podvolumes_uses(&pod, "secret", "kube-root-ca.crt"));
    ck_assert(podvolumes_has_token(&pod));

    /* a new token: only the token file changes, through a new data directory */
    tokens.token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ5In0.bmV3";
    ck_assert_int_eq(setup_pod(), 0);
    assert_content("kube-api-access-x7k2p", "token", tokens.token, strlen(tokens.token));
    listing("kube-api-access-x7k2p", list, sizeof(list));
    ck_assert_str_eq(list, "..TS ..data ca.crt namespace token");
}
END_TEST

START_TEST(projected_waits_for_token)
{
    char p[512];

    projected_reset();
    put_object("configmap", "kube-root-ca.crt", root_ca);
    kube_api_access();
    ck_assert_int_eq(setup_pod(), -EAGAIN);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"kube-api-access-x7k2p\" : "
                          "failed to fetch token: waiting");
    path_of(p, sizeof(p), "kube-api-access-x7k2p", "..data");
    ck_assert(!exists_nofollow(p)); /* nothing is written until every source has its files */

    /* every source is tried; the failures come together, as kubelet's aggregate prints them */
    n_objects = 0;
    ck_assert_int_eq(setup_pod(), -EAGAIN);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"kube-api-access-x7k2p\" : "
                          "[failed to fetch token: waiting, configmap \"kube-root-ca.crt\" not "
                          "found]");
    tokens.token = "t";
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"kube-api-access-x7k2p\" : "
                          "configmap \"kube-root-ca.crt\" not found");
}
END_TEST

START_TEST(projected_sources)
{
    struct pod_volume *v;
    struct pod_projection *pr;
    char list[512];

    projected_reset();
    put_object("configmap", "app", cm_app);
    put_object("secret", "db", secret_db);
    v = add_vol("all", VOL_PROJECTED, NULL);
    v->default_mode = 0440;
    pr = add_source(v, PROJ_CONFIGMAP); /* every key, at its own name */
    pr->name = (char *)"app";
    pr = add_source(v, PROJ_SECRET); /* one key, its own mode; a later source's path wins */
    pr->name = (char *)"db";
    items[0].key = (char *)"password";
    items[0].path = (char *)"log.level";
    items[0].mode = 0400;
    pr->items = &items[0];
    pr->n_items = 1;
    pr = add_source(v, PROJ_SECRET); /* optional and missing: nothing */
    pr->name = (char *)"absent";
    pr->optional = true;
    ck_assert_int_eq(setup_pod(), 0);
    listing("all", list, sizeof(list));
    ck_assert_str_eq(list, "..TS ..data app.conf log.level logo.bin");
    assert_content("all", "log.level", "s3cr3t", 6);
    ck_assert_int_eq(mode_of("all", "log.level"), 0400);
    ck_assert_int_eq(mode_of("all", "app.conf"), 0440);
    ck_assert_int_eq(tokens.calls, 0);
    ck_assert(podvolumes_uses(&pod, "secret", "db"));
    ck_assert(!podvolumes_has_token(&pod));

    pr->optional = false; /* not optional: the volume fails and keeps its old files */
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"all\" : secret \"absent\" not "
                          "found");
    assert_content("all", "log.level", "s3cr3t", 6);
}
END_TEST

/* FormatMap and %q: sorted keys, Go's escapes (and UTF-8 kept, invalid bytes as \x). */
START_TEST(downward_api)
{
    static const char want_labels[] = "app=\"web\"\n"
                                      "q=\"say \\\"hi\\\"\\n\\tok\\\\\"\n"
                                      "u=\"\xc3\xa9\\x01\\xff\\u0085\\x7f\"";
    struct pod_volume *v;
    char list[512];

    projected_reset();
    labels[0] = (struct pod_kv){(char *)"u", (char *)"\xc3\xa9\x01\xff\xc2\x85\x7f"};
    labels[1] = (struct pod_kv){(char *)"app", (char *)"web"};
    labels[2] = (struct pod_kv){(char *)"q", (char *)"say \"hi\"\n\tok\\"};
    annotations[0] = (struct pod_kv){(char *)"example.com/owner", (char *)"team a"};
    pod.labels = labels;
    pod.n_labels = 3;
    pod.annotations = annotations;
    pod.n_annotations = 1;
    containers[0].name = (char *)"app";
    containers[0].mem_limit_bytes = 64 << 20;
    containers[0].cpu_request_milli = 250;
    pod.containers = containers;
    pod.n_containers = 1;
    v = add_vol("podinfo", VOL_DOWNWARD, NULL);
    v->default_mode = 0600;
    add_field(&v->fields, &v->n_fields, "labels", "metadata.labels", NULL, NULL, -1);
    add_field(&v->fields, &v->n_fields, "meta/annotations", "metadata.annotations", NULL, NULL,
              0400);
    add_field(&v->fields, &v->n_fields, "owner", "metadata.annotations['example.com/owner']", NULL,
              NULL, -1);
    add_field(&v->fields, &v->n_fields, "nolabel", "metadata.labels['missing']", NULL, NULL, -1);
    add_field(&v->fields, &v->n_fields, "name", "metadata.name", NULL, NULL, -1);
    add_field(&v->fields, &v->n_fields, "uid", "metadata.uid", NULL, NULL, -1);
    add_field(&v->fields, &v->n_fields, "mem", NULL, "limits.memory", "1Mi", -1);
    add_field(&v->fields, &v->n_fields, "cpu", NULL, "requests.cpu", "1m", -1);
    add_field(&v->fields, &v->n_fields, "cpu_cores", NULL, "requests.cpu", NULL, -1);
    ck_assert_int_eq(setup_pod(), 0);
    listing("podinfo", list, sizeof(list));
    ck_assert_str_eq(list, "..TS ..data cpu cpu_cores labels mem meta name nolabel owner uid");
    assert_content("podinfo", "labels", want_labels, strlen(want_labels));
    assert_content("podinfo", "meta/annotations", "example.com/owner=\"team a\"", 26);
    assert_content("podinfo", "owner", "team a", 6);
    assert_content("podinfo", "nolabel", "", 0);
    assert_content("podinfo", "name", "web", 3);
    assert_content("podinfo", "uid", UID, strlen(UID));
    assert_content("podinfo", "mem", "64", 2);
    assert_content("podinfo", "cpu", "250", 3);
    assert_content("podinfo", "cpu_cores", "1", 1); /* ceil(0.25) */
    ck_assert_int_eq(mode_of("podinfo", "labels"), 0600);
    ck_assert_int_eq(mode_of("podinfo", "meta/annotations"), 0400);

    /* a change of the pod's labels rewrites the file; an empty map is an empty file */
    pod.n_labels = 0;
    ck_assert_int_eq(setup_pod(), 0);
    assert_content("podinfo", "labels", "", 0);

    fields[0].field_path = (char *)"spec.nodeName"; /* not a volume's field */
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"podinfo\" : unsupported "
                          "fieldPath: spec.nodeName");
    fields[0].field_path = (char *)"metadata.labels";
    fields[6].container = (char *)"sidecar";
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"podinfo\" : container sidecar "
                          "not found");
}
END_TEST

/* A type kedge has no plugin for is refused by name, never bound as an empty directory. */
START_TEST(unsupported_refused)
{
    char p[512];

    add_vol("data", VOL_UNSUPPORTED, NULL)->unsupported = (char *)"nfs";
    ck_assert_int_eq(setup_pod(), KEDGE_ESCHEMA);
    ck_assert_str_eq(why, "MountVolume.SetUp failed for volume \"data\" : volume type nfs is not "
                          "supported on this node");
    path_of(p, sizeof(p), "data", NULL);
    ck_assert(!exists_nofollow(p));
}
END_TEST

/* ---- allocation failures ------------------------------------------------------------------- */

static int op_setup(void *ctx)
{
    int rc;

    (void)ctx;
    rc = setup_pod();
    if (rc == 0)
        rc = podvolumes_remove(pods, UID);
    return rc;
}

START_TEST(setup_nomem)
{
    static const int ok[] = {-ENOMEM};
    struct pod_volume *v;

    put_object("configmap", "app", cm_app);
    put_object("secret", "db", secret_db);
    v = add_vol("cfg", VOL_CONFIGMAP, "app");
    add_item(v, "app.conf", "conf/app.conf", 0600);
    add_item(v, "logo.bin", "logo.bin", -1);
    add_vol("creds", VOL_SECRET, "db");
    add_vol("host", VOL_HOSTPATH, tmp)->host_path_type = (char *)"DirectoryOrCreate";
    projected_reset();
    put_object("configmap", "kube-root-ca.crt", root_ca);
    tokens.token = "token";
    kube_api_access();
    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(op_setup, NULL, ok, 1), 10);
    unit_libc_allocs();
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
    tcase_add_test(tc, setup_nomem);
    suite_add_tcase(s, tc);

    tc = tcase_create("projected");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, projected_kube_api_access);
    tcase_add_test(tc, projected_waits_for_token);
    tcase_add_test(tc, projected_sources);
    tcase_add_test(tc, downward_api);
    tcase_add_test(tc, unsupported_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("remove");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, remove_never_follows);
    tcase_add_test(tc, remove_symlinked_pod_dir);
    tcase_add_test(tc, remove_deep_tree);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(podvolumes_suite());
}
