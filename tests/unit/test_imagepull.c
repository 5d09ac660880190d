/* cloudbridge/edged/regauth.c and imagepull.c: which pull secret's credentials kubelet's
 * keyring picks for an image (pkg/credentialprovider/keyring.go's cases), the X-Registry-Auth
 * value the engines decode, the pull-policy decision and the image back-off.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "imagepull.h"
#include "kedge/err.h"
#include "kedge/util.h"
#include "regauth.h"
#include "unit.h"

/* A v1.Secret of type, its data[key] = base64(cfg). */
static void secret_json(const char *type, const char *key, const char *cfg, struct kedge_buf *out)
{
    struct kedge_buf b64 = KEDGE_BUF_INIT;

    kedge_buf_reset(out);
    ck_assert_int_eq(kedge_base64_encode(cfg, strlen(cfg), &b64), 0);
    ck_assert_int_eq(kedge_buf_printf(out,
                                      "{\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"},"
                                      "\"type\":\"%s\",\"data\":{\"%s\":\"%.*s\"}}",
                                      type, key, (int)b64.len, b64.data),
                     0);
    kedge_buf_cleanup(&b64);
}

static void add_cfg(struct regauth *k, const char *cfg)
{
    ck_assert_int_eq(regauth_add_config(k, cfg, strlen(cfg)), 0);
}

/* The usernames lookup gives for image, space-separated, in order. */
static const char *users_for(const struct regauth *k, const char *image, char *out, size_t n)
{
    const struct regauth_entry *e[8];
    char repo[256];
    size_t i, got;

    out[0] = '\0';
    ck_assert_int_eq(regauth_repository(image, repo, sizeof(repo)), 0);
    got = regauth_lookup(k, repo, e, 8);
    for (i = 0; i < got && i < 8; i++)
        snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? " " : "", e[i]->username);
    return out;
}

START_TEST(repositories_normalise_as_docker)
{
    static const struct {
        const char *image, *repo;
    } cases[] = {
        {"busybox", "docker.io/library/busybox"},
        {"busybox:1.36", "docker.io/library/busybox"},
        {"library/busybox", "docker.io/library/busybox"},
        {"kubeedge/pause:3.6", "docker.io/kubeedge/pause"},
        {"docker.io/busybox", "docker.io/library/busybox"},
        {"index.docker.io/org/app:2", "docker.io/org/app"},
        {"127.0.0.1:5000/kedge/app:1", "127.0.0.1:5000/kedge/app"},
        {"127.0.0.1:5000/app", "127.0.0.1:5000/app"},
        {"localhost/pause:edge", "localhost/pause"},
        {"quay.io/coreos/etcd@sha256:0123", "quay.io/coreos/etcd"},
        {"registry.example.com:443/a/b/c:latest", "registry.example.com:443/a/b/c"},
    };
    char repo[256], server[64];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        ck_assert_int_eq(regauth_repository(cases[i].image, repo, sizeof(repo)), 0);
        ck_assert_str_eq(repo, cases[i].repo);
    }
    ck_assert_int_eq(regauth_repository("busybox", repo, 10), -ENAMETOOLONG);
    regauth_registry("127.0.0.1:5000/kedge/app", server, sizeof(server));
    ck_assert_str_eq(server, "127.0.0.1:5000");
}
END_TEST

/* URLsMatch: the port must be equal, the host labels as many and each glob-matched, the key's
 * path a prefix of the repository's. */
START_TEST(keys_match_as_kubelet)
{
    static const struct {
        const char *key, *repo;
        bool match;
    } cases[] = {
        {"127.0.0.1:5000", "127.0.0.1:5000/kedge/app", true},
        {"127.0.0.1", "127.0.0.1:5000/kedge/app", false},      /* port differs */
        {"127.0.0.1:5001", "127.0.0.1:5000/kedge/app", false}, /* port differs */
        {"127.0.0.1:5000/kedge", "127.0.0.1:5000/kedge/app", true},
        {"127.0.0.1:5000/other", "127.0.0.1:5000/kedge/app", false},
        {"127.0.0.1:5000/ked", "127.0.0.1:5000/kedge/app", true}, /* a raw prefix, as Go's */
        {"*.example.com", "registry.example.com/a", true},
        {"*.example.com", "example.com/a", false}, /* label count */
        {"*.example.com", "a.b.example.com/a", false},
        {"re*ry.example.com", "registry.example.com/a", true},
        {"docker.io", "docker.io/library/busybox", true},
        {"index.docker.io", "docker.io/library/busybox", false}, /* only by the fallback */
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        ck_assert_msg(regauth_match(cases[i].key, cases[i].repo) == cases[i].match,
                      "%s vs %s: want %d", cases[i].key, cases[i].repo, cases[i].match);
}
END_TEST

/* Add's keys: schemes and /v1/ /v2/ dropped; the most specific key first; Docker Hub's
 * index.docker.io entry serves docker.io and index.docker.io images when nothing else matched. */
START_TEST(lookup_order_and_docker_hub)
{
    struct regauth k = REGAUTH_INIT;
    char users[128];

    add_cfg(&k, "{\"https://127.0.0.1:5000/v2/\":{\"username\":\"host\",\"password\":\"p\"},"
                "\"127.0.0.1:5000/kedge\":{\"username\":\"path\",\"password\":\"p\"},"
                "\"http://127.0.0.1:5000/kedge/app\":{\"username\":\"deep\",\"password\":\"p\"},"
                "\"https://index.docker.io/v1/\":{\"username\":\"hub\",\"password\":\"p\"},"
                "\"quay.io\":{\"username\":\"quay\",\"password\":\"p\"}}");
    ck_assert_uint_eq(k.n, 5);
    ck_assert_str_eq(users_for(&k, "127.0.0.1:5000/kedge/app:1", users, sizeof(users)),
                     "deep path host");
    ck_assert_str_eq(users_for(&k, "127.0.0.1:5000/kedge/other", users, sizeof(users)),
                     "path host");
    ck_assert_str_eq(users_for(&k, "127.0.0.1:5000/x", users, sizeof(users)), "host");
    ck_assert_str_eq(users_for(&k, "127.0.0.1:5001/x", users, sizeof(users)), "");
    ck_assert_str_eq(users_for(&k, "busybox", users, sizeof(users)), "hub");
    ck_assert_str_eq(users_for(&k, "docker.io/org/app", users, sizeof(users)), "hub");
    ck_assert_str_eq(users_for(&k, "index.docker.io/org/app", users, sizeof(users)), "hub");
    ck_assert_str_eq(users_for(&k, "quay.io/coreos/etcd", users, sizeof(users)), "quay");
    ck_assert_str_eq(users_for(&k, "ghcr.io/a/b", users, sizeof(users)), "");
    regauth_cleanup(&k);

    /* a docker.io key matches Docker Hub images directly; the fallback is not needed */
    add_cfg(&k, "{\"docker.io\":{\"username\":\"direct\",\"password\":\"p\"},"
                "\"index.docker.io\":{\"username\":\"hub\",\"password\":\"p\"}}");
    ck_assert_str_eq(users_for(&k, "busybox", users, sizeof(users)), "direct");
    regauth_cleanup(&k);
}
END_TEST

/* The secret types kubelet reads; "auth" wins over username/password. */
START_TEST(pull_secrets_become_credentials)
{
    struct regauth k = REGAUTH_INIT;
    struct kedge_buf s = KEDGE_BUF_INIT;
    const struct regauth_entry *e[4];

    /* dockerconfigjson: {"auths": {...}}, auth = base64("kedge:pw:with:colons") */
    secret_json("kubernetes.io/dockerconfigjson", ".dockerconfigjson",
                "{\"auths\":{\"127.0.0.1:5000\":{\"username\":\"ignored\",\"password\":\"x\","
                "\"auth\":\"a2VkZ2U6cHc6d2l0aDpjb2xvbnM=\"}}}",
                &s);
    ck_assert_int_eq(regauth_add_secret(&k, s.data, s.len), 0);
    /* the legacy dockercfg: the map itself */
    secret_json("kubernetes.io/dockercfg", ".dockercfg",
                "{\"quay.io\":{\"username\":\"q\",\"password\":\"qp\",\"email\":\"a@b\"}}", &s);
    ck_assert_int_eq(regauth_add_secret(&k, s.data, s.len), 0);
    /* other types (and a docker type under the wrong key) add nothing */
    secret_json("Opaque", ".dockerconfigjson", "{\"auths\":{\"x.io\":{\"username\":\"o\"}}}", &s);
    ck_assert_int_eq(regauth_add_secret(&k, s.data, s.len), 0);
    secret_json("kubernetes.io/dockerconfigjson", ".dockercfg", "{\"y.io\":{}}", &s);
    ck_assert_int_eq(regauth_add_secret(&k, s.data, s.len), 0);
    ck_assert_uint_eq(k.n, 2);

    ck_assert_uint_eq(regauth_lookup(&k, "127.0.0.1:5000/kedge/app", e, 4), 1);
    ck_assert_str_eq(e[0]->username, "kedge");
    ck_assert_str_eq(e[0]->password, "pw:with:colons");
    ck_assert_uint_eq(regauth_lookup(&k, "quay.io/a/b", e, 4), 1);
    ck_assert_str_eq(e[0]->password, "qp");

    /* what does not decode is refused: kubelet's MakeDockerKeyring fails then */
    secret_json("kubernetes.io/dockerconfigjson", ".dockerconfigjson", "{not json", &s);
    ck_assert_int_eq(regauth_add_secret(&k, s.data, s.len), KEDGE_EPARSE);
    secret_json("kubernetes.io/dockercfg", ".dockercfg", "{\"h\":{\"auth\":\"bm9jb2xvbg==\"}}",
                &s); /* "nocolon" */
    ck_assert_int_eq(regauth_add_secret(&k, s.data, s.len), KEDGE_EPARSE);
    ck_assert_int_eq(regauth_add_secret(&k, "{", 1), KEDGE_EPARSE);
    ck_assert_uint_eq(k.n, 2);
    regauth_cleanup(&k);
    kedge_buf_cleanup(&s);
}
END_TEST

static int add_one_secret(void *ctx)
{
    const struct kedge_buf *s = ctx;
    struct regauth k = REGAUTH_INIT;
    int rc = regauth_add_secret(&k, s->data, s->len);

    regauth_cleanup(&k);
    return rc;
}

START_TEST(secrets_survive_allocation_failures)
{
    static const int ok[] = {-ENOMEM};
    struct kedge_buf s = KEDGE_BUF_INIT;

    secret_json("kubernetes.io/dockerconfigjson", ".dockerconfigjson",
                "{\"auths\":{\"a.io\":{\"auth\":\"dTpw\"},\"b.io\":{\"username\":\"u\"}}}", &s);
    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(add_one_secret, &s, ok, 1), 3);
    unit_libc_allocs();
    kedge_buf_cleanup(&s);
}
END_TEST

/* X-Registry-Auth: base64url (RFC 4648 §5) with padding of the AuthConfig JSON. */
START_TEST(registry_auth_header)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char *raw = NULL;
    size_t raw_len = 0, i;

    ck_assert_int_eq(regauth_header("kedge", "s3cret", "127.0.0.1:5000", &b), 0);
    ASSERT_BUF(&b, "eyJ1c2VybmFtZSI6ImtlZGdlIiwicGFzc3dvcmQiOiJzM2NyZXQiLCJzZXJ2ZXJhZGRyZXNzIjoi"
                   "MTI3LjAuMC4xOjUwMDAifQ==");
    kedge_buf_reset(&b);
    /* a password whose standard base64 has '+' and '/': base64url has '-' and '_' */
    ck_assert_int_eq(regauth_header("u", "~~~", "r", &b), 0);
    ASSERT_BUF(&b, "eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6In5-fiIsInNlcnZlcmFkZHJlc3MiOiJyIn0=");
    kedge_buf_reset(&b);
    ck_assert_int_eq(regauth_header("u", "a?~\"", "r", &b), 0);
    for (i = 0; i < b.len; i++) /* back to the standard alphabet to decode it */
        b.data[i] = b.data[i] == '-' ? '+' : b.data[i] == '_' ? '/' : b.data[i];
    ck_assert_int_eq(kedge_base64_decode(b.data, b.len, &raw, &raw_len), 0);
    ASSERT_BYTES(raw, raw_len,
                 "{\"username\":\"u\",\"password\":\"a?~\\\"\",\"serveraddress\":\"r\"}");
    kedge_free(raw);
    kedge_buf_cleanup(&b);
}
END_TEST

START_TEST(pull_policies)
{
    ck_assert_int_eq(imagepull_decide("Always", true), IMAGE_PULL);
    ck_assert_int_eq(imagepull_decide("Always", false), IMAGE_PULL);
    ck_assert_int_eq(imagepull_decide("IfNotPresent", true), IMAGE_USE);
    ck_assert_int_eq(imagepull_decide("IfNotPresent", false), IMAGE_PULL);
    ck_assert_int_eq(imagepull_decide("Never", true), IMAGE_USE);
    ck_assert_int_eq(imagepull_decide("Never", false), IMAGE_NEVER);
}
END_TEST

/* flowcontrol.Backoff with kubelet's image settings: 10 s doubling to 300 s; 2 x 300 s without
 * a failure starts over. */
START_TEST(backoff_doubles_to_the_cap)
{
    static const int64_t want[] = {10000, 20000, 40000, 80000, 160000, 300000, 300000};
    struct imagepull_backoff b = {0, 0};
    uint64_t now = 1000000;
    char msg[200];
    size_t i;

    ck_assert(!imagepull_backoff_active(&b, now));
    ck_assert_uint_eq(imagepull_backoff_until(&b), 0);
    for (i = 0; i < sizeof(want) / sizeof(*want); i++) {
        imagepull_backoff_next(&b, now, 10000, 300000);
        ck_assert_int_eq(b.step_ms, want[i]);
        ck_assert(imagepull_backoff_active(&b, now + (uint64_t)want[i] - 1));
        ck_assert(!imagepull_backoff_active(&b, now + (uint64_t)want[i]));
        ck_assert_uint_eq(imagepull_backoff_until(&b), now + (uint64_t)want[i]);
        now += (uint64_t)want[i];
    }
    now += 600001; /* over 2 x max since the last failure */
    imagepull_backoff_next(&b, now, 10000, 300000);
    ck_assert_int_eq(b.step_ms, 10000);

    imagepull_backoff_message("127.0.0.1:5000/app:1", msg, sizeof(msg));
    ck_assert_str_eq(msg, "Back-off pulling image \"127.0.0.1:5000/app:1\"");
    imagepull_never_message("app:1", msg, sizeof(msg));
    ck_assert_str_eq(msg, "Container image \"app:1\" is not present with pull policy of Never");
    imagepull_failed_message("app:1", "unauthorized", msg, sizeof(msg));
    ck_assert_str_eq(msg, "Failed to pull image \"app:1\": unauthorized");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("imagepull");
    TCase *tc = tcase_create("imagepull");

    tcase_add_test(tc, repositories_normalise_as_docker);
    tcase_add_test(tc, keys_match_as_kubelet);
    tcase_add_test(tc, lookup_order_and_docker_hub);
    tcase_add_test(tc, pull_secrets_become_credentials);
    tcase_add_test(tc, secrets_survive_allocation_failures);
    tcase_add_test(tc, registry_auth_header);
    tcase_add_test(tc, pull_policies);
    tcase_add_test(tc, backoff_doubles_to_the_cap);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
