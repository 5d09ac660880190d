/* bench_pods: the measuring half of `scripts/bench.sh pods` (the script starts the engine,
 * kedge-cloudsim, the broker and kedge-bridge, and prints the summary).
 *
 *   bench_pods direct --engine SOCK --node NODE --n N --run R [--inflight 8] [--timeout-s S]
 *       The same containers edged makes, straight through the engine's API: per pod an infra
 *       container (localhost/pause:edge, NetworkMode bridge, kubelet's and kedge's labels),
 *       started, then the app container (localhost/busybox:edge, `sleep 3600`, NetworkMode
 *       container:<infra>), started, then inspect until it runs. N pods by `inflight` workers
 *       (edged's engine client keeps 8 calls in flight). The clock runs from the first call to
 *       the last pod running. Then every container is removed (DELETE ?force=1, apps first).
 *       The node label is NODE-direct, so the running bridge's edged (which removes containers
 *       labelled with its own node that belong to no pod) leaves them alone.
 *   bench_pods kedge --engine SOCK --control-port C --node NODE --n N --run R [--rss-pid P]
 *                    [--timeout-s S]
 *       N pod inserts through kedge-cloudsim's control API (POST /send); the clock runs from the
 *       first send until GET /pods (polled every 20 ms) shows every one of them, by uid, with
 *       status.phase Running. With --rss-pid, P's VmRSS is read 1 s after that. Then the pods
 *       are deleted (POST /send, operation delete) and it waits until the engine lists no
 *       container labelled io.kedge.node=NODE and cloudsim no longer lists them.
 *
 * Each prints one line: `pods <mode> n=N seconds=S first_s=S clean_s=S [patches=N] [rss_kb=K]`
 * (first_s: the first pod running; patches: status patches cloudsim applied to the N pods).
 * HTTP/1.1 with Connection: close, one connection per call as edged does; engine replies are
 * de-chunked. Exit status 0, or 1 when the measurement broke (an engine error, a timeout,
 * containers left over from before), 2 for a usage error.
 */
#define _GNU_SOURCE /* memmem */ // NOLINT(bugprone-reserved-identifier)
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define API "/v1.41"
#define POLL_MS 20
#define MAX_PODS 256

struct buf {
    char *p;
    size_t len, cap;
};

struct reply {
    int status;
    struct buf body; /* de-chunked, NUL-terminated */
};

static const char *engine_sock;
static int control_port;
static long timeout_s = 120;

/* ---- small helpers --------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("bench_pods: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            fail("out of memory");
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        fail("out of memory");
    buf_add(b, s, (size_t)n);
    free(s);
}

static void reply_free(struct reply *r)
{
    free(r->body.p);
    memset(r, 0, sizeof(*r));
}

/* ---- HTTP/1.1, one connection per call ------------------------------------------------------- */

static int connect_to(bool engine)
{
    struct timeval tv = {60, 0};
    int fd;

    if (engine) {
        struct sockaddr_un a = {0};
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        a.sun_family = AF_UNIX;
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", engine_sock);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
            close(fd);
            fd = -1;
        }
    } else {
        struct sockaddr_in a = {0};
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)control_port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Decode a chunked body in place. 0, or -1 when it is malformed or cut short. */
static int dechunk(struct buf *b)
{
    size_t in = 0, out = 0;

    for (;;) {
        char *end;
        unsigned long n = strtoul(b->p + in, &end, 16);
        char *crlf = strstr(end, "\r\n");
        if (end == b->p + in || !crlf)
            return -1;
        in = (size_t)(crlf + 2 - b->p);
        if (n == 0)
            break;
        if (in + n + 2 > b->len)
            return -1;
        memmove(b->p + out, b->p + in, n);
        out += n;
        in += n + 2;
    }
    b->len = out;
    b->p[out] = '\0';
    return 0;
}

/* One call: to the engine's unix socket, or to cloudsim's control port. 0 and *r (status and
 * body), or -1 when there was no complete answer. */
static int http(bool engine, const char *method, const char *path, const char *body,
                struct reply *r)
{
    struct buf req = {0}, raw = {0};
    char chunk[16384], *hdr_end, *te;
    size_t off = 0, blen = body ? strlen(body) : 0;
    ssize_t n;
    int fd = connect_to(engine);

    memset(r, 0, sizeof(*r));
    if (fd < 0)
        return -1;
    buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path,
               engine ? "d" : "127.0.0.1");
    if (body)
        buf_printf(&req, "Content-Type: application/json\r\n");
    if (body || strcmp(method, "GET"))
        buf_printf(&req, "Content-Length: %zu\r\n", blen);
    buf_printf(&req, "\r\n");
    if (body)
        buf_add(&req, body, blen);
    while (off < req.len) {
        n = write(fd, req.p + off, req.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    free(req.p);
    if (off == 0) {
        close(fd);
        return -1;
    }
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        buf_add(&raw, chunk, (size_t)n);
    }
    close(fd);
    if (!raw.p || sscanf(raw.p, "HTTP/1.%*d %d", &r->status) != 1 ||
        !(hdr_end = strstr(raw.p, "\r\n\r\n"))) {
        free(raw.p);
        return -1;
    }
    *hdr_end = '\0';
    te = strcasestr(raw.p, "\r\nTransfer-Encoding: chunked");
    buf_add(&r->body, hdr_end + 4, raw.len - (size_t)(hdr_end + 4 - raw.p));
    free(raw.p);
    if (te && dechunk(&r->body) < 0) {
        reply_free(r);
        return -1;
    }
    return 0;
}

/* An engine call that must answer `want`; the body is returned in r. */
static void engine_call(const char *method, const char *path, const char *body, int want,
                        struct reply *r)
{
    char full[1024];

    snprintf(full, sizeof(full), API "%s", path);
    if (http(true, method, full, body, r) < 0)
        fail("engine: %s %s: no answer", method, path);
    if (r->status != want)
        fail("engine: %s %s: HTTP %d %s", method, path, r->status, r->body.p ? r->body.p : "");
}

/* The ids of the engine's containers labelled io.kedge.node=node (and io.kubernetes.docker.type
 * =type when type is set): their count, the ids in ids[] up to max. */
static int list_ids(const char *node, const char *type, char (*ids)[72], int max)
{
    struct reply r;
    char path[512], more[128] = "";
    const char *p;
    int n = 0;

    /* filters={"label":["io.kedge.node=NODE"(,"io.kubernetes.docker.type=TYPE")]} */
    if (type)
        snprintf(more, sizeof(more), "%%2C%%22io.kubernetes.docker.type%%3D%s%%22", type);
    snprintf(path, sizeof(path),
             "/containers/json?all=1&filters=%%7B%%22label%%22%%3A%%5B%%22io.kedge.node%%3D%s%%22"
             "%s%%5D%%7D",
             node, more);
    engine_call("GET", path, NULL, 200, &r);
    for (p = r.body.p; p && (p = strstr(p, "\"Id\":\"")); p += 6) {
        if (ids && n < max)
            snprintf(ids[n], sizeof(ids[n]), "%.*s", (int)strcspn(p + 6, "\""), p + 6);
        n++;
    }
    reply_free(&r);
    return n;
}

/* ---- direct: the same containers, straight through the engine -------------------------------- */

struct direct {
    const char *node; /* the label value: NODE-direct */
    int n, run, next;
    double t0, first, last;
    pthread_mutex_t mu;
};

static void labels(struct buf *b, const char *node, const char *pod, const char *uid,
                   const char *cname, bool app)
{
    /* edged's set (podspec.c write_labels), sorted by key as a Go map is */
    buf_printf(b,
               "\"Labels\":{%s\"io.kedge.node\":\"%s\",\"io.kubernetes.container.name\":\"%s\","
               "\"io.kubernetes.container.restartCount\":\"0\","
               "\"io.kubernetes.docker.type\":\"%s\",\"io.kubernetes.pod.name\":\"%s\","
               "\"io.kubernetes.pod.namespace\":\"default\",\"io.kubernetes.pod.uid\":\"%s\"}",
               app ? "\"io.kubernetes.container.hash\":\"1\"," : "", node, cname,
               app ? "container" : "podsandbox", pod, uid);
}

static void create_start(const char *name, const char *body, char *id, size_t id_len)
{
    struct reply r;
    char path[512];
    const char *p;

    snprintf(path, sizeof(path), "/containers/create?name=%s", name);
    engine_call("POST", path, body, 201, &r);
    p = strstr(r.body.p, "\"Id\":\"");
    if (!p)
        fail("engine: create %s: no Id in %s", name, r.body.p);
    snprintf(id, id_len, "%.*s", (int)strcspn(p + 6, "\""), p + 6);
    reply_free(&r);
    snprintf(path, sizeof(path), "/containers/%s/start", id);
    engine_call("POST", path, NULL, 204, &r);
    reply_free(&r);
}

static void direct_pod(struct direct *d, int i)
{
    struct buf b = {0};
    struct reply r;
    char pod[64], uid[96], name[256], infra[72], app[72], path[256];
    double t;

    snprintf(pod, sizeof(pod), "bench-%d", i);
    snprintf(uid, sizeof(uid), "direct-%d-%d-%d", (int)getpid(), d->run, i);
    /* edged's infra body: Hostname, Image, Labels, HostConfig */
    buf_printf(&b, "{\"Hostname\":\"%s\",\"Image\":\"localhost/pause:edge\",", pod);
    labels(&b, d->node, pod, uid, "POD", false);
    buf_printf(&b, ",\"HostConfig\":{\"NetworkMode\":\"bridge\","
                   "\"RestartPolicy\":{\"Name\":\"no\"}}}");
    snprintf(name, sizeof(name), "k8s_POD_%s_default_%s_0", pod, uid);
    create_start(name, b.p, infra, sizeof(infra));
    /* edged's app body for this spec */
    b.len = 0;
    buf_printf(&b, "{\"Tty\":false,\"OpenStdin\":false,\"Image\":\"localhost/busybox:edge\","
                   "\"Entrypoint\":[\"sleep\",\"3600\"],");
    labels(&b, d->node, pod, uid, "app", true);
    buf_printf(&b,
               ",\"HostConfig\":{\"NetworkMode\":\"container:%s\","
               "\"RestartPolicy\":{\"Name\":\"no\"},\"CpuShares\":2}}",
               infra);
    snprintf(name, sizeof(name), "k8s_app_%s_default_%s_0", pod, uid);
    create_start(name, b.p, app, sizeof(app));
    free(b.p);
    snprintf(path, sizeof(path), "/containers/%s/json", app);
    for (;;) {
        bool running;
        engine_call("GET", path, NULL, 200, &r);
        running = strstr(r.body.p, "\"Running\":true") != NULL;
        reply_free(&r);
        if (running)
            break;
        if (now_s() - d->t0 > (double)timeout_s)
            fail("direct: pod %s not running after %ld s", pod, timeout_s);
        sleep_ms(POLL_MS);
    }
    t = now_s() - d->t0;
    pthread_mutex_lock(&d->mu);
    if (d->first == 0 || t < d->first)
        d->first = t;
    if (t > d->last)
        d->last = t;
    pthread_mutex_unlock(&d->mu);
}

static void *direct_worker(void *arg)
{
    struct direct *d = arg;

    for (;;) {
        int i;
        pthread_mutex_lock(&d->mu);
        i = d->next < d->n ? d->next++ : -1;
        pthread_mutex_unlock(&d->mu);
        if (i < 0)
            return NULL;
        direct_pod(d, i + 1);
    }
}

/* A queue of container ids to remove, shared by the removal workers. */
struct removal {
    char (*ids)[72];
    int n, next;
    pthread_mutex_t mu;
};

static void *remove_worker(void *arg)
{
    struct removal *q = arg;

    for (;;) {
        struct reply r;
        char path[256];
        int i;
        pthread_mutex_lock(&q->mu);
        i = q->next < q->n ? q->next++ : -1;
        pthread_mutex_unlock(&q->mu);
        if (i < 0)
            return NULL;
        snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", q->ids[i]);
        engine_call("DELETE", path, NULL, 204, &r);
        reply_free(&r);
    }
}

/* DELETE ?force=1 every container labelled node (of type, when set), inflight at a time. */
static void remove_all(const char *node, const char *type, int inflight)
{
    static char ids[2 * MAX_PODS + 16][72];
    struct removal q = {.ids = ids, .mu = PTHREAD_MUTEX_INITIALIZER};
    pthread_t th[64];
    int i, nth;

    q.n = list_ids(node, type, ids, (int)(sizeof(ids) / sizeof(ids[0])));
    if (q.n > (int)(sizeof(ids) / sizeof(ids[0])))
        fail("%d containers labelled %s: more than this program removes", q.n, node);
    nth = inflight < q.n ? inflight : q.n;
    for (i = 0; i < nth; i++)
        if (pthread_create(&th[i], NULL, remove_worker, &q) != 0)
            fail("pthread_create failed");
    for (i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
}

static void cmd_direct(const char *node, int n, int run, int inflight)
{
    char label[256];
    struct direct d = {.node = label, .n = n, .run = run, .mu = PTHREAD_MUTEX_INITIALIZER};
    pthread_t th[64];
    double t_clean;
    int i, nth = inflight < n ? inflight : n;

    snprintf(label, sizeof(label), "%s-direct", node);
    if (list_ids(label, NULL, NULL, 0) != 0)
        fail("direct: containers labelled io.kedge.node=%s exist before the run", label);
    d.t0 = now_s();
    for (i = 0; i < nth; i++)
        if (pthread_create(&th[i], NULL, direct_worker, &d) != 0)
            fail("pthread_create failed");
    for (i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    t_clean = now_s();
    remove_all(label, "container", inflight); /* an infra goes only after its apps */
    remove_all(label, NULL, inflight);
    if (list_ids(label, NULL, NULL, 0) != 0)
        fail("direct: containers left after the removal");
    printf("pods direct n=%d seconds=%.3f first_s=%.3f clean_s=%.3f\n", n, d.last, d.first,
           now_s() - t_clean);
}

/* ---- kedge: through cloudsim, the bridge and edged ------------------------------------------- */

static void sim_send(const char *json)
{
    struct reply r;

    if (http(false, "POST", "/send", json, &r) < 0)
        fail("cloudsim: POST /send: no answer");
    if (r.status != 200 || !strstr(r.body.p, "\"queued\":true"))
        fail("cloudsim: POST /send: HTTP %d %s", r.status, r.body.p ? r.body.p : "");
    reply_free(&r);
}

#define ROUTE                                                                                      \
    "{\"header\":{\"resourceversion\":\"1\"},\"route\":{\"source\":\"edgecontroller\","            \
    "\"group\":\"resource\",\"operation\":\"%s\",\"resource\":\"default/pod/%s\"},\"content\":"

/* How many of the n pods (uids[i]) cloudsim lists with phase `phase` (NULL: listed at all);
 * *patches: the sum of their patch counts. */
static int sim_pods(char (*uids)[96], int n, const char *phase, long *patches)
{
    struct reply r;
    char want[160];
    int i, count = 0;

    if (http(false, "GET", "/pods", NULL, &r) < 0 || r.status != 200)
        fail("cloudsim: GET /pods failed");
    if (patches)
        *patches = 0;
    for (i = 0; i < n; i++) {
        /* an entry is {"key","uid","phase","patches","object"} in that order */
        const char *p;
        snprintf(want, sizeof(want), "\"uid\":\"%.95s\",\"phase\":\"", uids[i]);
        p = strstr(r.body.p, want);
        if (!p)
            continue;
        p += strlen(want);
        if (!phase || (!strncmp(p, phase, strlen(phase)) && p[strlen(phase)] == '"'))
            count++;
        if (patches && (p = strstr(p, "\"patches\":")))
            *patches += strtol(p + 10, NULL, 10);
    }
    reply_free(&r);
    return count;
}

static long rss_kb(long pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    if (!(f = fopen(path, "r")))
        fail("cannot read %s", path);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void cmd_kedge(const char *node, int n, int run, long rss_pid)
{
    static char uids[MAX_PODS][96];
    struct buf b = {0};
    char pod[64];
    double t0, t, first = 0, deadline, t_clean;
    long patches = 0, rss = -1;
    int i, running;

    if (list_ids(node, NULL, NULL, 0) != 0)
        fail("kedge: containers labelled io.kedge.node=%s exist before the run", node);
    for (i = 0; i < n; i++)
        snprintf(uids[i], sizeof(uids[i]), "kedge-%d-%d-%d", (int)getpid(), run, i + 1);
    t0 = now_s();
    for (i = 0; i < n; i++) {
        snprintf(pod, sizeof(pod), "bench-%d", i + 1);
        b.len = 0;
        buf_printf(&b,
                   ROUTE "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\","
                         "\"uid\":\"%s\"},\"spec\":{\"nodeName\":\"%s\","
                         "\"terminationGracePeriodSeconds\":0,\"containers\":[{\"name\":\"app\","
                         "\"image\":\"localhost/busybox:edge\",\"imagePullPolicy\":"
                         "\"IfNotPresent\",\"command\":[\"sleep\",\"3600\"]}]}}}",
                   "insert", pod, pod, uids[i], node);
        sim_send(b.p);
    }
    deadline = t0 + (double)timeout_s;
    for (;;) {
        running = sim_pods(uids, n, "Running", NULL);
        t = now_s() - t0;
        if (running > 0 && first == 0)
            first = t;
        if (running == n)
            break;
        if (now_s() > deadline)
            fail("kedge: %d of %d pods Running after %ld s", running, n, timeout_s);
        sleep_ms(POLL_MS);
    }
    if (rss_pid > 0) {
        sleep_ms(1000); /* the status reports of the last pods go out */
        rss = rss_kb(rss_pid);
    }
    (void)sim_pods(uids, n, NULL, &patches);
    t_clean = now_s();
    for (i = 0; i < n; i++) {
        snprintf(pod, sizeof(pod), "bench-%d", i + 1);
        b.len = 0;
        buf_printf(&b,
                   ROUTE "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\","
                         "\"uid\":\"%s\"}}}",
                   "delete", pod, pod, uids[i]);
        sim_send(b.p);
    }
    free(b.p);
    deadline = now_s() + (double)timeout_s;
    while (list_ids(node, NULL, NULL, 0) != 0 || sim_pods(uids, n, NULL, NULL) != 0) {
        if (now_s() > deadline)
            fail("kedge: containers or pods left %ld s after the deletes", timeout_s);
        sleep_ms(POLL_MS);
    }
    printf("pods kedge n=%d seconds=%.3f first_s=%.3f clean_s=%.3f patches=%ld", n, t, first,
           now_s() - t_clean, patches);
    if (rss >= 0)
        printf(" rss_kb=%ld", rss);
    printf("\n");
}

/* ---- main ------------------------------------------------------------------------------------ */

static const char *sarg(int argc, char **argv, const char *name, const char *def)
{
    int i;

    for (i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return argv[i + 1];
    return def;
}

static long narg(int argc, char **argv, const char *name, long def)
{
    const char *v = sarg(argc, argv, name, NULL);

    return v ? strtol(v, NULL, 10) : def;
}

int main(int argc, char **argv)
{
    const char *node;
    long n, run, inflight;

    if (argc < 2 || (strcmp(argv[1], "direct") && strcmp(argv[1], "kedge"))) {
        fprintf(stderr, "usage: bench_pods direct|kedge --engine SOCK --node NODE --n N --run R "
                        "[--control-port C] [--inflight 8] [--rss-pid P] [--timeout-s S]\n");
        return 2;
    }
    engine_sock = sarg(argc, argv, "--engine", NULL);
    node = sarg(argc, argv, "--node", NULL);
    n = narg(argc, argv, "--n", 1);
    run = narg(argc, argv, "--run", 0);
    inflight = narg(argc, argv, "--inflight", 8);
    timeout_s = narg(argc, argv, "--timeout-s", 120);
    control_port = (int)narg(argc, argv, "--control-port", 0);
    if (!engine_sock || !node || strlen(node) > 100 || n < 1 || n > MAX_PODS || inflight < 1 ||
        inflight > 64 || timeout_s < 1) {
        fprintf(stderr, "bench_pods: bad arguments\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(argv[1], "direct")) {
        cmd_direct(node, (int)n, (int)run, (int)inflight);
    } else {
        if (control_port <= 0) {
            fprintf(stderr, "bench_pods: kedge needs --control-port\n");
            return 2;
        }
        cmd_kedge(node, (int)n, (int)run, narg(argc, argv, "--rss-pid", 0));
    }
    return 0;
}
