/* The podvolumes suite (test_podvolumes.c): removal no symlink can redirect, the projected and
 * downwardAPI volumes (the API server's kube-api-access volume, every source kind, a token being
 * fetched), and what allocation failures leave behind.
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

void podvolumes_projected_tests(TCase *projected)
{
    tcase_add_test(projected, projected_kube_api_access);
    tcase_add_test(projected, projected_waits_for_token);
    tcase_add_test(projected, projected_sources);
    tcase_add_test(projected, downward_api);
    tcase_add_test(projected, unsupported_refused);
}

void podvolumes_remove_tests(TCase *remove)
{
    tcase_add_test(remove, remove_never_follows);
    tcase_add_test(remove, remove_symlinked_pod_dir);
    tcase_add_test(remove, remove_deep_tree);
}

void podvolumes_nomem_tests(TCase *objects)
{
    tcase_add_test(objects, setup_nomem);
}
