/* Edged's state machine (cloudbridge/edged/edged*.c) on a fake runtime (fake_runtime.c) and
 * fake bridge dependencies: an in-memory store, a cloud link that records what Edged sends
 * and answers when the test says so. A real lws context gives Edged its timers; the test
 * spins it until what it waits for happened, with a deadline.
 *
 * Walks: a pod is created (sandbox, image check, container create and start, status Running);
 * a container exits (restartPolicy Always: restarted with the next attempt; Never: not, and
 * the phase is Failed); the pod is deleted (its container stopped with TERM, the app removed
 * before the sandbox, the pod forgotten).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edged.h"
#include "fake_runtime.h"
#include "kedge/alloc.h"
#include "kedge/util.h"
#include "unit.h"

#define UID "7b1f3c2e-0000-4000-8000-000000000001"
#define POD_KEY "default/pod/web"
#define POD(policy)                                                                                \
    "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"" UID "\"},"              \
    "\"spec\":{\"nodeName\":\"node1\",\"restartPolicy\":\"" policy "\","                           \
    "\"containers\":[{\"name\":\"app\",\"image\":\"busybox:1.36\"}]}}"

/* ---- the fake bridge ------------------------------------------------------------------------ */

struct request {
    struct kedge_msg m; /* resource, operation, content: copies */
    edged_reply_fn fn;
    void *ctx;
    bool answered;
};

static struct lws_context *ctx;
static struct fake_runtime fake;
static char *store_key, *store_value; /* one pod row */
static struct request reqs[64];
static size_t n_reqs;
static edged_resource_fn hook;
static void *hook_ctx;
static char version[64];
static char pods_dir[64];
static const char *sandbox_image; /* the config's (NULL: not checked) */

static const char *secret_key, *secret_value; /* a second row, a secret (NULL: none) */
static int64_t backoff_initial_ms = 10000;    /* the config's */

static int store_get(void *c, const char *key, char **value)
{
    (void)c;
    if (secret_key && !strcmp(key, secret_key)) {
        *value = kedge_strdup(secret_value);
        return *value ? 0 : -ENOMEM;
    }
    if (!store_key || strcmp(key, store_key))
        return -ENOENT;
    *value = kedge_strdup(store_value);
    return *value ? 0 : -ENOMEM;
}

static int store_put(void *c, const char *key, const char *value, size_t len)
{
    (void)c;
    (void)key;
    (void)value;
    (void)len;
    return 0; /* podpatch rows: not read back by these tests */
}

static int store_delete(void *c, const char *key)
{
    (void)c;
    (void)key;
    return 0;
}

static int store_list(void *c, const char *type, edged_row_fn fn, void *fctx)
{
    (void)c;
    if (store_key && !strcmp(type, "pod"))
        fn(fctx, store_key, store_value);
    return 0;
}

static bool connected(void *c)
{
    (void)c;
    return true;
}

static int send_direct(void *c, const char *msg, size_t len)
{
    (void)c;
    (void)msg;
    (void)len;
    return 0;
}

static int request(void *c, const struct kedge_msg *m, int timeout_ms, edged_reply_fn fn,
                   void *fctx)
{
    struct request *r = &reqs[n_reqs++];

    (void)c;
    (void)timeout_ms;
    ck_assert_uint_le(n_reqs, 64);
    memset(r, 0, sizeof(*r));
    r->m.resource = strdup(m->resource);
    r->m.operation = strdup(m->operation);
    r->m.content_str = strndup(m->content_str ? m->content_str : "", m->content_str_len);
    r->fn = fn;
    r->ctx = fctx;
    return 0;
}

static char *object_of(void *c, const struct kedge_msg *m, const char **reason)
{
    (void)c;
    (void)m;
    *reason = NULL;
    return kedge_strdup("{}");
}

static void set_resource_hook(void *c, edged_resource_fn fn, void *fctx)
{
    (void)c;
    hook = fn;
    hook_ctx = fctx;
}

static void runtime_version(void *c, const char *v)
{
    (void)c;
    snprintf(version, sizeof(version), "%s", v);
}

/* Answer every request still open (the cloud took the patches). */
static void answer_all(void)
{
    struct kedge_msg reply = {0};

    for (size_t i = 0; i < n_reqs; i++)
        if (!reqs[i].answered) {
            reqs[i].answered = true;
            reqs[i].fn(reqs[i].ctx, &reply, 0);
        }
}

/* The newest status patch sent for the pod ("" none). */
static const char *last_patch(void)
{
    for (size_t i = n_reqs; i-- > 0;)
        if (!strcmp(reqs[i].m.operation, "patch"))
            return reqs[i].m.content_str;
    return "";
}

/* ---- the loop ------------------------------------------------------------------------------- */

typedef bool (*cond_fn)(void);

/* Serve the loop until cond holds (answering the cloud's requests as they come). */
static void spin_until(cond_fn cond)
{
    uint64_t deadline = kedge_now_ms() + 20000;

    while (!cond()) {
        ck_assert_msg(kedge_now_ms() < deadline, "timed out waiting; last patch: %.1500s",
                      last_patch());
        answer_all();
        lws_service(ctx, 0);
    }
}

static lws_sorted_usec_list_t tick_sul;

static void tick(lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(ctx, 0, sul, tick, 10 * LWS_US_PER_MS); /* lws_service returns often */
}

static struct edged *start(const char *pod_json)
{
    static const struct lws_protocols none[] = {{NULL, NULL, 0, 0, 0, NULL, 0}};
    struct lws_context_creation_info info;
    struct edged_deps deps = {
        NULL,      NULL,        NULL,    store_get, store_put,         store_delete,   store_list,
        connected, send_direct, request, object_of, set_resource_hook, runtime_version};
    struct edged_config cfg = {"node1", pods_dir, "fake",       backoff_initial_ms, 300000,
                               60,      1000,     "192.0.2.10", sandbox_image};
    struct runtime rt;
    struct edged *ed = NULL;

    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = none;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    lws_set_log_level(LLL_ERR, NULL);
    ctx = lws_create_context(&info);
    ck_assert_ptr_nonnull(ctx);
    lws_sul_schedule(ctx, 0, &tick_sul, tick, 10 * LWS_US_PER_MS);
    snprintf(pods_dir, sizeof(pods_dir), "/tmp/kedge-edged-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(pods_dir));
    store_key = strdup(POD_KEY);
    store_value = strdup(pod_json);
    n_reqs = 0;
    unit_count_allocs();
    fake_runtime_init(&fake, &rt);
    deps.lws = ctx;
    ck_assert_int_eq(edged_new(&deps, &cfg, &rt, &ed), 0);
    ck_assert_ptr_nonnull(ed);
    return ed;
}

static void finish(struct edged *ed)
{
    char cmd[128];

    edged_stop(ed);
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_STOP, NULL), 1);
    lws_sul_cancel(&tick_sul); /* the next test (unforked) schedules it on a new context */
    lws_context_destroy(ctx);
    for (size_t i = 0; i < n_reqs; i++) /* as metamgr_close cancels what waits, before */
        if (!reqs[i].answered) {
            reqs[i].answered = true;
            reqs[i].fn(reqs[i].ctx, NULL, -ECANCELED);
        }
    edged_free(ed);
    ck_assert(fake.freed);
    ck_assert_int_eq(unit_live_blocks, 0); /* everything Edged allocated is freed */
    ck_assert_ptr_null(hook);
    for (size_t i = 0; i < n_reqs; i++) {
        free(reqs[i].m.resource);
        free(reqs[i].m.operation);
        free(reqs[i].m.content_str);
    }
    free(store_key);
    free(store_value);
    store_key = store_value = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pods_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- conditions ----------------------------------------------------------------------------- */

static bool app_running(void)
{
    struct fake_container *c = fake_find(&fake, UID, "app");
    return c && c->running;
}

static bool app_running_init(void)
{
    struct fake_container *c = fake_find(&fake, UID, "init");
    return c && c->running;
}

static bool status_running(void)
{
    return strstr(last_patch(), "\"phase\":\"Running\"") != NULL;
}

static bool restarted(void)
{
    struct fake_container *c = fake_find(&fake, UID, "app");
    return c && c->attempt == 1 && c->running;
}

static bool status_failed(void)
{
    return strstr(last_patch(), "\"phase\":\"Failed\"") != NULL;
}

static bool nothing_left(void)
{
    return !fake_find(&fake, UID, "app") && !fake_find(&fake, UID, "POD");
}

/* The pod is forgotten: its directory under pods_dir is gone with it. */
static bool pod_gone(void)
{
    char dir[160];

    snprintf(dir, sizeof(dir), "%s/%s", pods_dir, UID);
    return access(dir, F_OK) != 0;
}

/* ---- tests ---------------------------------------------------------------------------------- */

/* The pod from the store runs: sandbox first, then its container, and the cloud hears Running. */
static struct edged *run_pod(const char *json)
{
    struct edged *ed = start(json);
    struct fake_container *sb, *app;

    spin_until(app_running);
    sb = fake_find(&fake, UID, "POD");
    app = fake_find(&fake, UID, "app");
    ck_assert_ptr_nonnull(sb);
    ck_assert(sb->running);
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_CREATE_SANDBOX, NULL), 1);
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_START, sb->id), 1);
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_IMAGE, "busybox:1.36"), 1);
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_PULL, NULL), 0); /* present, IfNotPresent */
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_CREATE, "app"), 1);
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_START, app->id), 1);
    ck_assert_int_eq(app->attempt, 0);
    ck_assert_str_eq(version, "fake://1.0");
    spin_until(status_running);
    ck_assert_ptr_nonnull(strstr(last_patch(), "\"podIP\":\"10.88.0.5\""));
    return ed;
}

START_TEST(create_restart_delete)
{
    struct edged *ed = run_pod(POD("Always"));
    struct fake_container *app = fake_find(&fake, UID, "app"), *sb;
    struct kedge_msg del = {0};
    size_t mark;

    /* the container exits: Always restarts it at once (kubelet's first restart), attempt 1 */
    mark = fake.n_calls;
    fake_exit(&fake, app, 1);
    spin_until(restarted);
    ck_assert_int_eq(fake_count(&fake, mark, FAKE_CREATE, "app"), 1);
    ck_assert_int_eq(fake_count(&fake, mark, FAKE_CREATE_SANDBOX, NULL), 0);
    for (size_t i = mark; i < fake.n_calls; i++)
        if (fake.calls[i].kind == FAKE_CREATE)
            ck_assert_int_eq(fake.calls[i].attempt, 1);

    /* the cloud deletes the pod: the app stops (TERM), is removed before the sandbox */
    mark = fake.n_calls;
    app = fake_find(&fake, UID, "app");
    sb = fake_find(&fake, UID, "POD");
    {
        char app_id[16], sb_id[16], term[64];
        size_t app_rm = 0, sb_rm = 0;

        snprintf(app_id, sizeof(app_id), "%s", app->id);
        snprintf(sb_id, sizeof(sb_id), "%s", sb->id);
        snprintf(term, sizeof(term), "%s TERM", app_id);
        del.operation = "delete";
        del.resource = POD_KEY;
        del.content = store_value;
        del.content_len = strlen(store_value);
        ck_assert(!pod_gone());
        hook(hook_ctx, &del);
        spin_until(nothing_left);
        spin_until(pod_gone);
        ck_assert_int_eq(fake_count(&fake, mark, FAKE_KILL, term), 1);
        ck_assert_int_eq(fake_count(&fake, mark, FAKE_REMOVE, app_id), 1);
        ck_assert_int_eq(fake_count(&fake, mark, FAKE_REMOVE, sb_id), 1);
        for (size_t i = mark; i < fake.n_calls; i++) {
            if (fake.calls[i].kind == FAKE_REMOVE && !strcmp(fake.calls[i].arg, app_id))
                app_rm = i;
            if (fake.calls[i].kind == FAKE_REMOVE && !strcmp(fake.calls[i].arg, sb_id))
                sb_rm = i;
        }
        ck_assert_uint_lt(app_rm, sb_rm);
        ck_assert_int_eq(fake_count(&fake, mark, FAKE_CREATE, NULL), 0);
    }
    finish(ed);
}
END_TEST

START_TEST(never_restart_fails)
{
    struct edged *ed = run_pod(POD("Never"));
    struct fake_container *app = fake_find(&fake, UID, "app");
    size_t mark = fake.n_calls, lists;

    fake_exit(&fake, app, 3);
    spin_until(status_failed);
    ck_assert_ptr_nonnull(strstr(last_patch(), "\"exitCode\":3"));
    /* relists go on (the tick, events); nothing is started again */
    lists = fake_count(&fake, mark, FAKE_LIST, NULL);
    ck_assert_uint_ge(lists, 1);
    ck_assert_int_eq(fake_count(&fake, mark, FAKE_CREATE, NULL), 0);
    ck_assert_int_eq(fake_count(&fake, mark, FAKE_START, NULL), 0);
    ck_assert_int_eq(fake_count(&fake, mark, FAKE_CREATE_SANDBOX, NULL), 0);
    finish(ed);
}
END_TEST

START_TEST(pulls_missing_image)
{
    struct edged *ed;

    ed = start(POD("Always")); /* nothing runs before the loop does */
    fake.image_present = false;
    spin_until(app_running);
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_PULL, "busybox:1.36"), 1);
    finish(ed);
}
END_TEST

/* The sandbox image is checked before a sandbox is made and pulled when absent (IfNotPresent),
 * with the pod's pull secret; the app image is then present. */
#define PRIVATE_POD(image)                                                                         \
    "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"" UID "\"},"              \
    "\"spec\":{\"nodeName\":\"node1\",\"imagePullSecrets\":[{\"name\":\"regcred\"}],"              \
    "\"containers\":[{\"name\":\"app\",\"image\":\"" image "\"}]}}"
/* {"auths":{"127.0.0.1:5000":{"username":"kedge","password":"s3cret"}}} */
#define REGCRED                                                                                    \
    "{\"metadata\":{\"name\":\"regcred\",\"namespace\":\"default\"},"                              \
    "\"type\":\"kubernetes.io/dockerconfigjson\",\"data\":{\".dockerconfigjson\":"                 \
    "\"eyJhdXRocyI6eyIxMjcuMC4wLjE6NTAwMCI6eyJ1c2VybmFtZSI6ImtlZGdlIiwicGFzc3dvcmQiOiJzM2NyZXQifX" \
    "19\"}}"

static void with_secret(void)
{
    secret_key = "default/secret/regcred";
    secret_value = REGCRED;
}

START_TEST(sandbox_image_pulled_when_absent)
{
    struct edged *ed;
    size_t i, image = 0, pull = 0, sandbox = 0;

    sandbox_image = "127.0.0.1:5000/pause:3.9";
    with_secret();
    ed = start(PRIVATE_POD("busybox:1.36"));
    fake.image_present = false; /* (the pull makes every image present) */
    spin_until(app_running);
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_PULL, "127.0.0.1:5000/pause:3.9"), 1);
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_PULL, NULL), 1);
    ck_assert_str_eq(fake.pull_auth, "kedge:s3cret@127.0.0.1:5000");
    for (i = 0; i < fake.n_calls; i++) {
        if (!image && fake.calls[i].kind == FAKE_IMAGE)
            image = i + 1;
        if (!pull && fake.calls[i].kind == FAKE_PULL)
            pull = i + 1;
        if (!sandbox && fake.calls[i].kind == FAKE_CREATE_SANDBOX)
            sandbox = i + 1;
    }
    ck_assert_str_eq(fake.calls[image - 1].arg, "127.0.0.1:5000/pause:3.9");
    ck_assert_uint_lt(image, pull);
    ck_assert_uint_lt(pull, sandbox);
    finish(ed);
    sandbox_image = NULL;
    secret_key = NULL;
}
END_TEST

static bool sandbox_pull_failed(void)
{
    return strstr(last_patch(), "\"waiting\":{\"reason\":\"ContainerCreating\",\"message\":"
                                "\"Failed to create pod sandbox: failed pulling image "
                                "\\\"localhost/pause:none\\\": manifest unknown\"}") != NULL;
}

/* A sandbox image that cannot be pulled: the pod stays Pending, ContainerCreating with
 * kubelet's FailedCreatePodSandBox text; no sandbox is made. */
START_TEST(sandbox_pull_failure_is_reported)
{
    struct edged *ed;

    sandbox_image = "localhost/pause:none";
    ed = start(POD("Always"));
    fake.image_present = false;
    fake.pull_error = "manifest unknown";
    spin_until(sandbox_pull_failed);
    ck_assert_ptr_nonnull(strstr(last_patch(), "\"phase\":\"Pending\""));
    ck_assert_str_eq(fake.pull_auth, ":@"); /* no pull secret: anonymous */
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_CREATE_SANDBOX, NULL), 0);
    fake.pull_error = NULL;
    finish(ed);
    sandbox_image = NULL;
}
END_TEST

static bool pull_err_seen;

static bool image_pull_backoff(void)
{
    pull_err_seen =
        pull_err_seen || strstr(last_patch(), "\"reason\":\"ErrImagePull\",\"message\":\"Failed to "
                                              "pull image \\\"127.0.0.1:5000/app:1\\\": "
                                              "unauthorized: authentication required\"");
    return strstr(last_patch(), "\"reason\":\"ImagePullBackOff\",\"message\":\"Back-off "
                                "pulling image \\\"127.0.0.1:5000/app:1\\\"\"") != NULL;
}

static bool no_stale_waiting(void)
{
    return status_running() && strstr(last_patch(), "\"state\":{\"waiting\":null,");
}

/* Wrong credentials: ErrImagePull with the registry's reason, then ImagePullBackOff, pulls
 * spaced by the back-off; once the registry takes them the pod runs and no stale waiting
 * state stays (it is written null). */
START_TEST(pull_failure_backs_off)
{
    struct edged *ed;
    size_t pulls;

    with_secret();
    backoff_initial_ms = 200;
    pull_err_seen = false;
    ed = start(PRIVATE_POD("127.0.0.1:5000/app:1"));
    fake.image_present = false;
    fake.pull_error = "unauthorized: authentication required";
    spin_until(image_pull_backoff);
    ck_assert(pull_err_seen);
    ck_assert_str_eq(fake.pull_auth, "kedge:s3cret@127.0.0.1:5000");
    pulls = fake_count(&fake, 0, FAKE_PULL, "127.0.0.1:5000/app:1");
    ck_assert_uint_ge(pulls, 2); /* ErrImagePull, then a second try whose back-off shows */
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_CREATE, "app"), 0);
    fake.pull_error = NULL;
    spin_until(no_stale_waiting);
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_CREATE, "app"), 1);
    finish(ed);
    backoff_initial_ms = 10000;
    secret_key = NULL;
}
END_TEST

static bool terminated_reported(void)
{
    return strstr(last_patch(), "\"phase\":\"Failed\"") &&
           strstr(last_patch(), "\"terminated\":{\"exitCode\":137,");
}

/* A deleted pod's last status keeps its containers' terminated states: the removal of the
 * containers after it is no new status (it would read waiting ContainerCreating). */
static bool secret_refused(void)
{
    return strstr(last_patch(), "\"reason\":\"ErrImagePull\",\"message\":\"Failed to pull image "
                                "\\\"127.0.0.1:5000/app:1\\\": pull secret default/regcred: its "
                                "docker config does not parse\"") != NULL;
}

/* A docker secret that does not decode fails the pull (kubelet's MakeDockerKeyring), nothing is
 * pulled without it. */
START_TEST(broken_pull_secret_fails_the_pull)
{
    struct edged *ed;

    secret_key = "default/secret/regcred";
    secret_value = "{\"type\":\"kubernetes.io/dockerconfigjson\",\"data\":{\".dockerconfigjson\":"
                   "\"bm90IGpzb24=\"}}"; /* "not json" */
    ed = start(PRIVATE_POD("127.0.0.1:5000/app:1"));
    fake.image_present = false;
    spin_until(secret_refused);
    ck_assert_int_eq(fake_count(&fake, 0, FAKE_PULL, "127.0.0.1:5000/app:1"), 0);
    finish(ed);
    secret_key = NULL;
}
END_TEST

START_TEST(deleted_pod_keeps_terminated_state)
{
    static char deleting[] =
        "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"" UID "\","
        "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"},\"spec\":{\"nodeName\":\"node1\","
        "\"terminationGracePeriodSeconds\":0,"
        "\"containers\":[{\"name\":\"app\",\"image\":\"busybox:1.36\"}]}}";
    struct edged *ed = run_pod(POD("Always"));
    struct kedge_msg upd = {0};
    size_t i, first, mark;

    /* kubectl delete: the cloud sends the pod with its deletionTimestamp; the node stops it,
     * reports the terminal status and deletes it */
    upd.operation = "update";
    upd.resource = POD_KEY;
    upd.content = deleting;
    upd.content_len = strlen(deleting);
    mark = n_reqs;
    hook(hook_ctx, &upd);
    spin_until(terminated_reported);
    first = n_reqs;
    spin_until(pod_gone);
    for (i = mark; i < n_reqs; i++)
        if (!strcmp(reqs[i].m.operation, "patch"))
            ck_assert_msg(!strstr(reqs[i].m.content_str, "ContainerCreating"), "patch %zu: %s", i,
                          reqs[i].m.content_str);
    for (i = first; i < n_reqs; i++)
        ck_assert_str_ne(reqs[i].m.operation, "patch"); /* nothing after the terminal one */
    finish(ed);
}
END_TEST

START_TEST(resource_filter)
{
    char type[32];

    ck_assert_str_eq(edged_resource_type("default/pod/web", type, sizeof(type)), "pod");
    ck_assert_str_eq(edged_resource_type("ns/configmap/c", type, sizeof(type)), "configmap");
    ck_assert_str_eq(edged_resource_type("ns/secret/s", type, sizeof(type)), "secret");
    ck_assert_ptr_null(edged_resource_type("ns/device/d", type, sizeof(type)));
    ck_assert_ptr_null(edged_resource_type("nothing", type, sizeof(type)));
    ck_assert_ptr_null(edged_resource_type(NULL, type, sizeof(type)));
}
END_TEST

static char want_id[16];

static struct fake_container *fake_find_id(const char *id)
{
    for (size_t i = 0; i < fake.n; i++)
        if (fake.c[i].exists && !strcmp(fake.c[i].id, id))
            return &fake.c[i];
    return NULL;
}

static bool want_id_removed(void)
{
    return !fake_find_id(want_id);
}

/* ---- which container logs/exec/attach mean (edged_lookup.c) ---------------------------------- */

static char found_id[80], why[256];

static int find(struct edged *ed, const char *pod, const char *name, bool previous)
{
    found_id[0] = why[0] = '\0';
    return edged_find_container(ed, "default", pod, name, previous, found_id, sizeof(found_id), why,
                                sizeof(why));
}

/* Edged's relist has seen what the fake world holds: the lookup finds want_id for want_name. */
static struct edged *want_ed;
static const char *want_name;
static bool want_previous;

static bool finds_want(void)
{
    return find(want_ed, "web", want_name, want_previous) == 0 && !strcmp(found_id, want_id);
}

static void spin_until_found(struct edged *ed, const char *name, bool previous, const char *id)
{
    want_ed = ed;
    want_name = name;
    want_previous = previous;
    snprintf(want_id, sizeof(want_id), "%s", id);
    spin_until(finds_want);
}

static bool attempt2_running(void)
{
    struct fake_container *c = fake_find(&fake, UID, "app");
    return c && c->attempt == 2 && c->running;
}

START_TEST(lookup_current_and_previous)
{
    struct edged *ed = start(POD("Always"));
    struct fake_container *app;
    char first[16], second[16];

    ck_assert_ptr_eq(edged_runtime(ed)->rt, &fake);
    /* nothing listed yet: the status shows ContainerCreating, and so does logs */
    ck_assert_int_eq(find(ed, "web", "app", false), -ENOENT);
    ck_assert_str_eq(why,
                     "container \"app\" in pod \"web\" is waiting to start: ContainerCreating");
    spin_until(app_running);
    spin_until(status_running);
    app = fake_find(&fake, UID, "app");
    snprintf(first, sizeof(first), "%s", app->id);
    ck_assert_int_eq(find(ed, "web", "app", false), 0);
    ck_assert_str_eq(found_id, first);
    ck_assert_int_eq(find(ed, "web", "", false), 0); /* the only container */
    ck_assert_str_eq(found_id, first);
    ck_assert_int_eq(find(ed, "web", "app", true), -ENOENT);
    ck_assert_str_eq(why, "previous terminated container \"app\" in pod \"web\" not found");
    ck_assert_int_eq(find(ed, "web", "nope", false), -ENOENT);
    ck_assert_str_eq(why, "container \"nope\" not found in pod \"web\"");
    ck_assert_int_eq(find(ed, "gone", "app", false), -ENOENT);
    ck_assert_str_eq(why, "pod \"gone\" does not exist");
    ck_assert_int_eq(edged_find_container(ed, "other", "web", "app", false, found_id,
                                          sizeof(found_id), why, sizeof(why)),
                     -ENOENT); /* namespaces apart */
    ck_assert_int_eq(edged_find_running(ed, "default", "web", "app", found_id, sizeof(found_id),
                                        why, sizeof(why)),
                     0);
    ck_assert_str_eq(found_id, first);
    ck_assert_int_eq(edged_find_running(ed, "default", "gone", "app", found_id, sizeof(found_id),
                                        why, sizeof(why)),
                     -ENOENT);
    ck_assert_str_eq(why, "pod does not exist");

    /* a restart: the dead instance stays for logs --previous, the new one is current */
    fake_exit(&fake, app, 1);
    spin_until(restarted);
    snprintf(second, sizeof(second), "%s", fake_find(&fake, UID, "app")->id);
    ck_assert_str_ne(first, second);
    spin_until_found(ed, "app", false, second);
    ck_assert_int_eq(find(ed, "web", "app", true), 0);
    ck_assert_str_eq(found_id, first);

    /* the next restart: the oldest goes (kubelet keeps one dead instance), previous moves on */
    fake_exit(&fake, fake_find(&fake, UID, "app"), 2);
    spin_until(attempt2_running);
    spin_until_found(ed, "app", false, fake_find(&fake, UID, "app")->id);
    ck_assert_int_eq(find(ed, "web", "app", true), 0);
    ck_assert_str_eq(found_id, second);
    snprintf(want_id, sizeof(want_id), "%s", first);
    spin_until(want_id_removed); /* the garbage collection: one dead instance is kept */
    ck_assert_ptr_nonnull(fake_find_id(second));
    finish(ed);
}
END_TEST

START_TEST(lookup_terminated)
{
    struct edged *ed = run_pod(POD("Never"));
    struct fake_container *app = fake_find(&fake, UID, "app");
    char id[16];

    snprintf(id, sizeof(id), "%s", app->id);
    fake_exit(&fake, app, 3);
    spin_until(status_failed);
    ck_assert_int_eq(find(ed, "web", "app", false), 0); /* logs of the dead one */
    ck_assert_str_eq(found_id, id);
    ck_assert_int_eq(find(ed, "web", "app", true), -ENOENT);
    /* exec and attach: running containers only */
    ck_assert_int_eq(edged_find_running(ed, "default", "web", "app", found_id, sizeof(found_id),
                                        why, sizeof(why)),
                     -ENOENT);
    ck_assert_str_eq(why, "container not found (\"app\")");
    finish(ed);
}
END_TEST

#define POD3                                                                                       \
    "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"" UID "\"},"              \
    "\"spec\":{\"nodeName\":\"node1\",\"initContainers\":[{\"name\":\"init\",\"image\":"           \
    "\"busybox\"}],"                                                                               \
    "\"containers\":[{\"name\":\"app\",\"image\":\"busybox\"},{\"name\":\"side\",\"image\":"       \
    "\"busybox\"}]}}"

START_TEST(lookup_names)
{
    struct edged *ed = start(POD3);

    ck_assert_int_eq(find(ed, "web", "", false), -ENOENT);
    ck_assert_str_eq(why,
                     "a container name must be specified for pod web, choose one of: [app side] "
                     "or one of the init containers: [init]");
    ck_assert_int_eq(find(ed, "web", "side", false), -ENOENT); /* waits for the init container */
    ck_assert_str_eq(why, "container \"side\" in pod \"web\" is waiting to start: PodInitializing");
    spin_until(app_running_init);
    spin_until_found(ed, "init", false, fake_find(&fake, UID, "init")->id); /* logs of init too */
    finish(ed);
}
END_TEST

static Suite *edged_suite(void)
{
    Suite *s = suite_create("edged");
    TCase *tc = tcase_create("fake runtime");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, create_restart_delete);
    tcase_add_test(tc, never_restart_fails);
    tcase_add_test(tc, pulls_missing_image);
    tcase_add_test(tc, sandbox_image_pulled_when_absent);
    tcase_add_test(tc, sandbox_pull_failure_is_reported);
    tcase_add_test(tc, pull_failure_backs_off);
    tcase_add_test(tc, broken_pull_secret_fails_the_pull);
    tcase_add_test(tc, deleted_pod_keeps_terminated_state);
    tcase_add_test(tc, resource_filter);
    tcase_add_test(tc, lookup_current_and_previous);
    tcase_add_test(tc, lookup_terminated);
    tcase_add_test(tc, lookup_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(edged_suite());
}
