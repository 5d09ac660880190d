/* The podvolumes suite's shared fixtures (podvolumes_fixture.h). */
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

char tmp[64];
char pods[128];
char outside[128];

/* ---- the store stub ------------------------------------------------------------------------ */

struct object {
    const char *type, *name, *json;
};

static struct object objects[8];
size_t n_objects;
int lookup_calls;
char last_ns[64];
int lookup_fail;

/* Objects more than one file's tests store. */
const char cm_app[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"app\","
    "\"namespace\":\"apps\"},\"data\":{\"app.conf\":\"port=80\\n\",\"log.level\":\"info\"},"
    "\"binaryData\":{\"logo.bin\":\"AAEC/w==\"}}";
const char secret_db[] = "{\"kind\":\"Secret\",\"metadata\":{\"name\":\"db\"},\"type\":\"Opaque\","
                         "\"data\":{\"password\":\"czNjcjN0\",\"ca.crt\":\"AGJpbgA=\"}}";

void put_object(const char *type, const char *name, const char *json)
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

struct tokens tokens;

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

struct pod_volume vols[8];
struct pod_key_path items[8];
struct pod_spec pod;

void pod_reset(void)
{
    memset(vols, 0, sizeof(vols));
    memset(items, 0, sizeof(items));
    memset(&pod, 0, sizeof(pod));
    pod.ns = (char *)"apps";
    pod.name = (char *)"web";
    pod.uid = (char *)UID;
    pod.volumes = vols;
}

struct pod_volume *add_vol(const char *name, enum pod_volume_kind kind, const char *source)
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

void add_item(struct pod_volume *v, const char *key, const char *path, int mode)
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

char why[512];

int setup_pod(void)
{
    memset(why, 'x', sizeof(why));
    why[sizeof(why) - 1] = '\0';
    struct podvolumes_src src = {lookup, &objects, token_stub, &tokens};

    return podvolumes_setup(pods, &pod, &src, why, sizeof(why));
}

/* ---- file helpers -------------------------------------------------------------------------- */

void path_of(char *out, size_t n, const char *vol, const char *rel)
{
    snprintf(out, n, "%s/%s/volumes/%s%s%s", pods, UID, vol, rel ? "/" : "", rel ? rel : "");
}

void assert_content(const char *vol, const char *rel, const char *want, size_t want_len)
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

int mode_of(const char *vol, const char *rel)
{
    char p[512];
    struct stat st;

    path_of(p, sizeof(p), vol, rel);
    ck_assert_msg(stat(p, &st) == 0, "stat %s: %s", p, strerror(errno));
    return (int)(st.st_mode & 07777);
}

void assert_link(const char *vol, const char *rel, const char *target)
{
    char p[512], got[512];
    ssize_t n;

    path_of(p, sizeof(p), vol, rel);
    n = readlink(p, got, sizeof(got) - 1);
    ck_assert_msg(n > 0, "readlink %s: %s", p, strerror(errno));
    got[n] = '\0';
    ck_assert_str_eq(got, target);
}

bool exists_nofollow(const char *p)
{
    struct stat st;

    return lstat(p, &st) == 0;
}

/* The ..data target (a "..YYYY_..." name) into out. */
void data_target(const char *vol, char *out, size_t n)
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
void listing(const char *vol, char *out, size_t n)
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

void write_file(const char *p, const char *content)
{
    FILE *f = fopen(p, "w");

    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    ck_assert_int_eq(fclose(f), 0);
}

int mkdir_p_test(const char *dir)
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

void setup(void)
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

void teardown(void)
{
    unit_libc_allocs();
    rm_rf(tmp);
}
