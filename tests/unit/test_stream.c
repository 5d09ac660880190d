/* cloudbridge/stream/: the tunnel's frame codec (KubeEdge's pkg/stream/message.go, bytes as
 * Go's encoding/binary writes them), the *_CONNECT request JSON as cloudcore marshals it, the
 * query string as Go's url.ParseQuery reads it, and the connectID table with its handlers over
 * a recording fake of the tunnel.
 */
#include <check.h>

#include "frame.h"
#include "kedge/err.h"
#include "logs.h"
#include "request.h"
#include "session.h"
#include "unit.h"

/* ---- frame ------------------------------------------------------------------------------- */

START_TEST(frame_bytes)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct stream_frame f;

    /* Go: NewMessage(1, MessageTypeData, "hi").Bytes() == 01 03 68 69 */
    ck_assert_int_eq(stream_frame_encode(&b, 1, STREAM_DATA, "hi", 2), 0);
    ASSERT_BYTES(b.data, b.len, "\x01\x03hi");
    kedge_buf_reset(&b);
    /* 300 = 0xac 0x02; REMOVE_CONNECT has no data */
    ck_assert_int_eq(stream_frame_encode(&b, 300, STREAM_REMOVE_CONNECT, NULL, 0), 0);
    ASSERT_BYTES(b.data, b.len, "\xac\x02\x04");
    ck_assert_int_eq(stream_frame_decode(b.data, b.len, &f), 0);
    ck_assert_uint_eq(f.id, 300);
    ck_assert_uint_eq(f.type, STREAM_REMOVE_CONNECT);
    ck_assert_uint_eq(f.len, 0);
    kedge_buf_reset(&b);
    ck_assert_int_eq(stream_frame_encode(&b, UINT64_MAX, 5, "x", 1), 0);
    ck_assert_uint_eq(b.len, 10 + 1 + 1);
    ck_assert_int_eq(stream_frame_decode(b.data, b.len, &f), 0);
    ck_assert(f.id == UINT64_MAX && f.type == 5 && f.len == 1 && f.data[0] == 'x');
    kedge_buf_cleanup(&b);
    ck_assert_str_eq(stream_type_name(STREAM_ATTACH_CONNECT), "ATTACH_CONNECT");
    ck_assert_str_eq(stream_type_name(99), "UNKNOWN");
}
END_TEST

START_TEST(frame_bad)
{
    struct stream_frame f;
    /* 11 continuation bytes, a 10th byte of 2 (over 64 bits), a head cut short, nothing */
    const char over[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02\x03";
    const char eleven[] = "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00";

    ck_assert_int_eq(stream_frame_decode(over, sizeof(over) - 1, &f), KEDGE_EPARSE);
    ck_assert_int_eq(stream_frame_decode(eleven, sizeof(eleven) - 1, &f), KEDGE_EPARSE);
    ck_assert_int_eq(stream_frame_decode("\x01", 1, &f), KEDGE_EPARSE);
    ck_assert_int_eq(stream_frame_decode("\x81", 1, &f), KEDGE_EPARSE);
    ck_assert_int_eq(stream_frame_decode("", 0, &f), KEDGE_EPARSE);
    /* a non-minimal uvarint is what Go accepts too */
    ck_assert_int_eq(stream_frame_decode("\x81\x00\x03", 3, &f), 0);
    ck_assert_uint_eq(f.id, 1);
}
END_TEST

/* ---- request ----------------------------------------------------------------------------- */

/* What cloudcore v1.15.4 marshals for `kubectl logs -f --tail=2 web -c app` (field order and
 * names of Go's url.URL and http.Header; the host rewritten to edgecore's kubelet port). */
static const char logs_connect[] =
    "{\"MessID\":7,\"url\":{\"Scheme\":\"http\",\"Opaque\":\"\",\"User\":null,"
    "\"Host\":\"127.0.0.1:10350\",\"Path\":\"/containerLogs/default/web/app\",\"RawPath\":\"\","
    "\"OmitHost\":false,\"ForceQuery\":false,\"RawQuery\":\"follow=true\\u0026tailLines=2\","
    "\"Fragment\":\"\",\"RawFragment\":\"\"},\"header\":{\"Accept\":[\"*/*\"],"
    "\"User-Agent\":[\"kubectl/v1.32.4\"],\"X-Forwarded-For\":[\"10.0.0.1\",\"10.0.0.2\"]}}";

START_TEST(request_logs)
{
    struct stream_request r;

    ck_assert_int_eq(stream_request_parse(logs_connect, sizeof(logs_connect) - 1, &r), 0);
    ck_assert_uint_eq(r.mess_id, 7);
    ck_assert_str_eq(r.method, "GET");
    ck_assert_str_eq(r.scheme, "http");
    ck_assert_str_eq(r.host, "127.0.0.1:10350");
    ck_assert_str_eq(r.path, "/containerLogs/default/web/app");
    ck_assert_str_eq(r.raw_query, "follow=true&tailLines=2");
    ck_assert_str_eq(stream_request_header(&r, "user-agent"), "kubectl/v1.32.4");
    ck_assert_str_eq(stream_request_header(&r, "X-FORWARDED-FOR"), "10.0.0.1");
    ck_assert_ptr_null(stream_request_header(&r, "Upgrade"));
    stream_request_cleanup(&r);
}
END_TEST

START_TEST(request_exec)
{
    static const char j[] = "{\"MessID\":12,\"url\":{\"Path\":\"/exec/ns/p/c\","
                            "\"RawQuery\":\"command=sh\\u0026command=-c\\u0026command=echo+a%26b"
                            "\\u0026stdout=1\"},\"header\":{\"Upgrade\":[\"SPDY/3.1\"],"
                            "\"Connection\":[\"Upgrade\"]},\"method\":\"POST\"}";
    struct stream_request r;
    struct stream_query q;

    ck_assert_int_eq(stream_request_parse(j, sizeof(j) - 1, &r), 0);
    ck_assert_str_eq(r.method, "POST");
    ck_assert_str_eq(stream_request_header(&r, "upgrade"), "SPDY/3.1");
    ck_assert_int_eq(stream_query_parse(r.raw_query, strlen(r.raw_query), &q), 0);
    ck_assert_uint_eq(stream_query_count(&q, "command"), 3);
    ck_assert_str_eq(stream_query_nth(&q, "command", 0)->value, "sh");
    ck_assert_str_eq(stream_query_nth(&q, "command", 1)->value, "-c");
    ck_assert_str_eq(stream_query_nth(&q, "command", 2)->value, "echo a&b");
    ck_assert_ptr_null(stream_query_nth(&q, "command", 3));
    ck_assert_str_eq(stream_query_get(&q, "stdout")->value, "1");
    ck_assert(!q.had_error);
    stream_query_cleanup(&q);
    stream_request_cleanup(&r);
}
END_TEST

START_TEST(request_bad)
{
    struct stream_request r;

    ck_assert_int_eq(stream_request_parse("{", 1, &r), KEDGE_EPARSE);
    ck_assert_int_eq(stream_request_parse("[]", 2, &r), KEDGE_ESCHEMA);
    ck_assert_int_eq(stream_request_parse("{\"url\":\"/x\"}", 12, &r), KEDGE_ESCHEMA);
    ck_assert_int_eq(stream_request_parse("{\"MessID\":-1}", 13, &r), KEDGE_ESCHEMA);
    ck_assert_int_eq(stream_request_parse("{\"header\":{\"A\":\"b\"}}", 20, &r), KEDGE_ESCHEMA);
    ck_assert_int_eq(stream_request_parse("{\"url\":{\"Path\":1}}", 18, &r), KEDGE_ESCHEMA);
    /* nulls are Go's zero values */
    ck_assert_int_eq(stream_request_parse("{\"url\":null,\"header\":null}", 26, &r), 0);
    ck_assert_str_eq(r.path, "");
    ck_assert_ptr_null(stream_request_header(&r, "A"));
    stream_request_cleanup(&r);
}
END_TEST

START_TEST(query_go_rules)
{
    static const char raw[] = "a=1&&b&c=%zz&d=x;y&=v&e=%41%42+c&a=2&f=%00z";
    struct stream_query q;
    const struct stream_query_kv *kv;

    ck_assert_int_eq(stream_query_parse(raw, sizeof(raw) - 1, &q), 0);
    ck_assert(q.had_error); /* the bad escape and the semicolon, as Go reports */
    ck_assert_uint_eq(stream_query_count(&q, "a"), 2);
    ck_assert_str_eq(stream_query_get(&q, "a")->value, "1");
    ck_assert_str_eq(stream_query_get(&q, "b")->value, "");
    ck_assert_ptr_null(stream_query_get(&q, "c"));
    ck_assert_ptr_null(stream_query_get(&q, "d"));
    ck_assert_str_eq(stream_query_get(&q, "")->value, "v");
    ck_assert_str_eq(stream_query_get(&q, "e")->value, "AB c");
    kv = stream_query_get(&q, "f");
    ck_assert(kv && kv->value_len == 2 && kv->value[0] == '\0' && kv->value[1] == 'z');
    stream_query_cleanup(&q);
}
END_TEST

static int parse_op(void *ctx)
{
    struct stream_request r;
    struct stream_query q;
    int rc = stream_request_parse(logs_connect, sizeof(logs_connect) - 1, &r);

    (void)ctx;
    if (rc < 0)
        return rc;
    rc = stream_query_parse(r.raw_query, strlen(r.raw_query), &q);
    stream_query_cleanup(&q);
    stream_request_cleanup(&r);
    return rc;
}

START_TEST(request_alloc_failures)
{
    static const int ok[] = {-ENOMEM};

    unit_count_allocs();
    ck_assert_int_gt(unit_alloc_fail_loop(parse_op, NULL, ok, 1), 2);
    unit_libc_allocs();
}
END_TEST

/* ---- session ----------------------------------------------------------------------------- */

struct fake_tunnel {
    struct kedge_buf sent; /* every frame, each as "<id>:<TYPE>:<data>|" */
    size_t queued;
    int wakes;
    bool down;
};

static int fake_send(void *ctx, uint64_t id, uint64_t type, const char *data, size_t len)
{
    struct fake_tunnel *t = ctx;

    if (t->down)
        return -ENOTCONN;
    t->queued += len + 2;
    return kedge_buf_printf(&t->sent, "%llu:%s:%.*s|", (unsigned long long)id,
                            stream_type_name(type), (int)len, data ? data : "");
}

static size_t fake_queued(void *ctx)
{
    return ((struct fake_tunnel *)ctx)->queued;
}

static void fake_wake(void *ctx)
{
    ((struct fake_tunnel *)ctx)->wakes++;
}

/* A handler that echoes DATA back, ends on "bye", and counts its calls. */
struct echo {
    struct stream_conn *c;
    int removed, resumed;
    int *freed;
};

static int echo_open(void *hctx, struct stream_conn *c, const struct stream_request *req,
                     void **state)
{
    struct echo *e;

    if (!strcmp(req->path, "/refuse"))
        return -EINVAL;
    e = kedge_calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->c = c;
    e->freed = hctx;
    *state = e;
    return stream_conn_send(c, req->path, strlen(req->path));
}

static void echo_data(void *state, const char *b, size_t n)
{
    struct echo *e = state;

    if (n == 3 && !memcmp(b, "bye", 3)) {
        stream_conn_end(e->c);
        ck_assert_int_eq(stream_conn_send(e->c, "x", 1), -EPIPE);
        return;
    }
    (void)stream_conn_send(e->c, b, n);
    (void)stream_conn_over(e->c);
}

static void echo_remove(void *state)
{
    ((struct echo *)state)->removed++;
}

static void echo_resume(void *state)
{
    ((struct echo *)state)->resumed++;
}

static void echo_free(void *state)
{
    struct echo *e = state;

    (*e->freed)++;
    kedge_free(e);
}

static const struct stream_handler_ops echo_ops = {echo_open, echo_data, echo_remove, echo_resume,
                                                   echo_free};

static void input(struct stream_session *s, uint64_t id, uint64_t type, const char *data)
{
    struct stream_frame f = {id, type, data, strlen(data)};

    stream_session_input(s, &f);
}

static void connect_msg(char *out, size_t n, uint64_t id, const char *path)
{
    snprintf(out, n, "{\"MessID\":%llu,\"url\":{\"Path\":\"%s\"}}", (unsigned long long)id, path);
}

START_TEST(session_lifecycle)
{
    struct fake_tunnel t = {0};
    struct session_out out = {fake_send, fake_queued, fake_wake, &t, 10};
    struct stream_session *s;
    char j[128];
    int freed = 0;

    unit_count_allocs();
    ck_assert_int_eq(stream_session_new(&out, &s), 0);
    ck_assert_int_eq(stream_session_register(s, STREAM_DATA, &echo_ops, &freed), -EINVAL);
    ck_assert_int_eq(stream_session_register(s, STREAM_LOGS_CONNECT, &echo_ops, &freed), 0);
    connect_msg(j, sizeof(j), 1, "/a");
    input(s, 1, STREAM_LOGS_CONNECT, j);
    connect_msg(j, sizeof(j), 2, "/b");
    input(s, 2, STREAM_LOGS_CONNECT, j);
    ck_assert_uint_eq(stream_session_count(s), 2);
    input(s, 1, STREAM_DATA, "hello");       /* echoed; over the mark of 10 */
    input(s, 9, STREAM_DATA, "lost");        /* unknown: dropped */
    input(s, 2, STREAM_LOGS_CONNECT, j);     /* a second open of 2: dropped */
    input(s, 3, STREAM_EXEC_CONNECT, "{}");  /* no handler: refused */
    connect_msg(j, sizeof(j), 4, "/refuse"); /* open fails: ended, nothing to free */
    input(s, 4, STREAM_LOGS_CONNECT, j);
    input(s, 5, STREAM_LOGS_CONNECT, "not json");
    input(s, 1, STREAM_DATA, "bye");        /* the handler ends itself */
    input(s, 2, STREAM_REMOVE_CONNECT, ""); /* the cloud ends 2 */
    input(s, 2, STREAM_DATA, "late");       /* after its end: dropped */
    ASSERT_BUF(&t.sent, "1:DATA:/a|2:DATA:/b|1:DATA:hello|3:REMOVE_CONNECT:|4:REMOVE_CONNECT:|"
                        "5:REMOVE_CONNECT:|1:REMOVE_CONNECT:|");
    ck_assert_uint_eq(stream_session_count(s), 0);
    ck_assert_int_eq(freed, 0); /* not from inside the calls */
    ck_assert_int_gt(t.wakes, 0);
    stream_session_reap(s);
    ck_assert_int_eq(freed, 2);
    stream_session_free(s);
    kedge_buf_cleanup(&t.sent);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

START_TEST(session_backpressure_and_reset)
{
    struct fake_tunnel t = {0};
    struct session_out out = {fake_send, fake_queued, fake_wake, &t, 10};
    struct stream_session *s;
    char j[128];
    int freed = 0;

    unit_count_allocs();
    ck_assert_int_eq(stream_session_new(&out, &s), 0);
    ck_assert_int_eq(stream_session_register(s, STREAM_ATTACH_CONNECT, &echo_ops, &freed), 0);
    connect_msg(j, sizeof(j), 1, "/a");
    input(s, 1, STREAM_ATTACH_CONNECT, j);
    connect_msg(j, sizeof(j), 2, "/b");
    input(s, 2, STREAM_ATTACH_CONNECT, j);
    input(s, 1, STREAM_DATA, "0123456789"); /* conn 1 asks "over" and is told so */
    t.queued = 0;
    stream_session_drained(s);
    stream_session_drained(s); /* resume once per "over" */
    /* the tunnel drops: both removed (their runtime work cancelled), freed at the reap */
    t.down = true;
    stream_session_reset(s);
    ck_assert_uint_eq(stream_session_count(s), 0);
    ck_assert_int_eq(freed, 0);
    stream_session_reap(s);
    ck_assert_int_eq(freed, 2);
    stream_session_free(s);
    kedge_buf_cleanup(&t.sent);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

/* remove and resume as seen by the handler: counted on a state the test keeps. */
static int probe_removed, probe_resumed;

static void probe_remove(void *state)
{
    (void)state;
    probe_removed++;
}

static void probe_resume(void *state)
{
    (void)state;
    probe_resumed++;
}

static const struct stream_handler_ops probe_ops = {echo_open, echo_data, probe_remove,
                                                    probe_resume, echo_free};

START_TEST(session_remove_resume_counts)
{
    struct fake_tunnel t = {0};
    struct session_out out = {fake_send, fake_queued, fake_wake, &t, 10};
    struct stream_session *s;
    char j[128];
    int freed = 0;

    probe_removed = probe_resumed = 0;
    ck_assert_int_eq(stream_session_new(&out, &s), 0);
    ck_assert_int_eq(stream_session_register(s, STREAM_METRIC_CONNECT, &probe_ops, &freed), 0);
    connect_msg(j, sizeof(j), 1, "/a");
    input(s, 1, STREAM_METRIC_CONNECT, j);
    connect_msg(j, sizeof(j), 2, "/b");
    input(s, 2, STREAM_METRIC_CONNECT, j);
    input(s, 1, STREAM_DATA, "0123456789"); /* over: 1 waits */
    t.queued = 0;
    stream_session_drained(s);
    stream_session_drained(s);
    ck_assert_int_eq(probe_resumed, 1);
    input(s, 1, STREAM_DATA, "bye"); /* ended by itself: no remove */
    stream_session_reset(s);         /* 2 removed */
    ck_assert_int_eq(probe_removed, 1);
    stream_session_free(s);
    ck_assert_int_eq(freed, 2);
    kedge_buf_cleanup(&t.sent);
}
END_TEST

/* ---- logs ------------------------------------------------------------------------------- */

START_TEST(logs_parse_kubelet_rules)
{
    struct stream_log_request lr;
    char why[256];

    ck_assert_int_eq(stream_logs_parse("/containerLogs/ns/p/c", "", 1000, &lr, why, sizeof(why)),
                     0);
    ck_assert_str_eq(lr.ns, "ns");
    ck_assert_str_eq(lr.pod, "p");
    ck_assert_str_eq(lr.container, "c");
    ck_assert(!lr.follow && !lr.timestamps && !lr.previous);
    ck_assert_int_eq(lr.tail_lines, -1);
    ck_assert_int_eq(lr.limit_bytes, -1);
    ck_assert_int_eq(lr.since_s, 0);
    /* apimachinery's bools: only 0 and false (any case) are false, "" is true */
    ck_assert_int_eq(stream_logs_parse("/containerLogs/ns/p/c",
                                       "follow=&timestamps=TRUE&previous=FALSE&tailLines=3"
                                       "&limitBytes=10&sinceSeconds=10",
                                       1000, &lr, why, sizeof(why)),
                     0);
    ck_assert(lr.follow && lr.timestamps && !lr.previous);
    ck_assert_int_eq(lr.tail_lines, 3);
    ck_assert_int_eq(lr.limit_bytes, 10);
    ck_assert_int_eq(lr.since_s, 990);
    /* "tail" is the old name; "all" means none */
    ck_assert_int_eq(
        stream_logs_parse("/containerLogs/ns/p/c", "tail=7&tailLines=1", 0, &lr, why, sizeof(why)),
        0);
    ck_assert_int_eq(lr.tail_lines, 7);
    ck_assert_int_eq(
        stream_logs_parse("/containerLogs/ns/p/c", "tail=all&tailLines=1", 0, &lr, why, 256), 0);
    ck_assert_int_eq(lr.tail_lines, -1);
    ck_assert_int_eq(stream_logs_parse("/containerLogs/ns/p/c", "sinceTime=2026-12-06T10:00:00.5Z",
                                       0, &lr, why, sizeof(why)),
                     0);
    ck_assert_int_eq(lr.since_s, 1796551200);
    ck_assert_int_eq(stream_logs_parse("/containerLogs/ns/p/c",
                                       "sinceTime=2026-12-06T11:00:00%2B01:00", 0, &lr, why,
                                       sizeof(why)),
                     0);
    ck_assert_int_eq(lr.since_s, 1796551200);
}
END_TEST

START_TEST(logs_parse_refusals)
{
    static const struct {
        const char *path, *query, *why;
    } cases[] = {
        {"/containerLogs/ns/p/c", "sinceSeconds=1&sinceTime=2026-12-06T10:00:00Z",
         "{\"message\": \"Invalid request.\"}"},
        {"/containerLogs/ns/p/c", "tailLines=-1", "{\"message\": \"Invalid request.\"}"},
        {"/containerLogs/ns/p/c", "limitBytes=0", "{\"message\": \"Invalid request.\"}"},
        {"/containerLogs/ns/p/c", "sinceSeconds=0", "{\"message\": \"Invalid request.\"}"},
        {"/containerLogs/ns/p/c", "tailLines=x", "{\"message\": \"Unable to decode query.\"}"},
        {"/containerLogs/ns/p/c", "sinceTime=yesterday",
         "{\"message\": \"Unable to decode query.\"}"},
        {"/containerLogs/ns/p/", "", "{\"message\": \"Missing container name.\"}"},
        {"/containerLogs/ns//c", "", "{\"message\": \"Missing podID.\"}"},
        {"/containerLogs//p/c", "", "{\"message\": \"Missing podNamespace.\"}"},
        {"/stats/summary", "", "404 page not found"},
    };
    struct stream_log_request lr;
    char why[256];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(
            stream_logs_parse(cases[i].path, cases[i].query, 1000, &lr, why, sizeof(why)), -EINVAL);
        ck_assert_str_eq(why, cases[i].why);
    }
}
END_TEST

/* A runtime that only serves logs, driven by the test. */
struct fake_logs {
    runtime_log_chunk_fn chunk;
    runtime_log_end_fn end;
    void *ctx;
    char id[64];
    struct runtime_log_options o;
    int calls, cancels, pauses, resumes;
    long refuse; /* logs() returns it when negative */
};

static long fake_logs_start(void *rt, const char *id, const struct runtime_log_options *o,
                            runtime_log_chunk_fn chunk, runtime_log_end_fn end, void *ctx)
{
    struct fake_logs *f = rt;

    if (f->refuse < 0)
        return f->refuse;
    snprintf(f->id, sizeof(f->id), "%s", id);
    f->o = *o;
    f->chunk = chunk;
    f->end = end;
    f->ctx = ctx;
    f->calls++;
    return 42;
}

static void fake_logs_cancel(void *rt, long h)
{
    ck_assert_int_eq(h, 42);
    ((struct fake_logs *)rt)->cancels++;
}

static void fake_logs_pause(void *rt, long h, bool pause)
{
    struct fake_logs *f = rt;

    ck_assert_int_eq(h, 42);
    if (pause)
        f->pauses++;
    else
        f->resumes++;
}

static int fake_find(void *ctx, const char *ns, const char *pod, const char *container,
                     bool previous, char *id, size_t id_len, char *why, size_t why_len)
{
    (void)ctx;
    (void)ns;
    if (strcmp(pod, "web")) {
        snprintf(why, why_len, "pod \"%s\" does not exist", pod);
        return -ENOENT;
    }
    snprintf(id, id_len, "%s-%s", container, previous ? "old" : "new");
    return 0;
}

static void open_logs(struct stream_session *s, uint64_t id, const char *path, const char *query)
{
    char j[512];

    snprintf(j, sizeof(j), "{\"MessID\":%llu,\"url\":{\"Path\":\"%s\",\"RawQuery\":\"%s\"}}",
             (unsigned long long)id, path, query);
    input(s, id, STREAM_LOGS_CONNECT, j);
}

START_TEST(logs_handler)
{
    static const struct runtime_ops ops = {
        .logs = fake_logs_start, .logs_cancel = fake_logs_cancel, .logs_pause = fake_logs_pause};
    struct fake_logs f = {0};
    struct runtime rt = {&ops, &f};
    struct stream_deps deps = {.rt = &rt, .find = fake_find};
    struct fake_tunnel t = {0};
    struct session_out out = {fake_send, fake_queued, fake_wake, &t, 8};
    struct stream_session *s;

    unit_count_allocs();
    ck_assert_int_eq(stream_session_new(&out, &s), 0);
    ck_assert_int_eq(stream_session_register(s, STREAM_LOGS_CONNECT, &stream_logs_ops, &deps), 0);
    /* the whole log, with backpressure: over the mark the runtime is paused, resumed when the
     * tunnel drained; the end sends REMOVE_CONNECT */
    open_logs(s, 1, "/containerLogs/default/web/app", "previous=1&tailLines=5&timestamps=1");
    ck_assert_str_eq(f.id, "app-old");
    ck_assert(f.o.tail_lines == 5 && f.o.timestamps && !f.o.follow);
    f.chunk(f.ctx, RT_STDOUT, "hello\n", 6);
    ck_assert_int_eq(f.pauses, 0);
    f.chunk(f.ctx, RT_STDERR, "world\n", 6); /* 12 queued > 8 */
    ck_assert_int_eq(f.pauses, 1);
    t.queued = 0;
    stream_session_drained(s);
    ck_assert_int_eq(f.resumes, 1);
    f.end(f.ctx, 0, "");
    ck_assert_uint_eq(stream_session_count(s), 0);
    /* the cloud ends a follow: the runtime's stream is cancelled */
    open_logs(s, 2, "/containerLogs/default/web/app", "follow=true");
    ck_assert(f.o.follow);
    input(s, 2, STREAM_REMOVE_CONNECT, "");
    ck_assert_int_eq(f.cancels, 1);
    /* limitBytes cuts the body and stops the runtime */
    open_logs(s, 3, "/containerLogs/default/web/app", "limitBytes=3");
    f.chunk(f.ctx, RT_STDOUT, "abcdef", 6);
    ck_assert_int_eq(f.cancels, 2);
    /* refusals: kubelet's text, then the end; nothing asked of the runtime */
    open_logs(s, 4, "/containerLogs/default/nope/app", "");
    open_logs(s, 5, "/containerLogs/default/web/app", "tailLines=-2");
    /* the runtime fails: its message is the body */
    open_logs(s, 6, "/containerLogs/default/web/app", "");
    f.end(f.ctx, -EIO, "no such container: app-new");
    f.refuse = -EBADF;
    open_logs(s, 7, "/containerLogs/default/web/app", "");
    ASSERT_BUF(&t.sent, "1:DATA:hello\n|1:DATA:world\n|1:REMOVE_CONNECT:|"
                        "3:DATA:abc|3:REMOVE_CONNECT:|"
                        "4:DATA:pod \"nope\" does not exist|4:REMOVE_CONNECT:|"
                        "5:DATA:{\"message\": \"Invalid request.\"}|5:REMOVE_CONNECT:|"
                        "6:DATA:no such container: app-new|6:REMOVE_CONNECT:|"
                        "7:DATA:failed to get logs of container app: Bad file descriptor|"
                        "7:REMOVE_CONNECT:|");
    ck_assert_int_eq(f.calls, 4); /* 1, 2, 3, 6: the refusals asked nothing */
    ck_assert_uint_eq(stream_session_count(s), 0);
    stream_session_free(s);
    kedge_buf_cleanup(&t.sent);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

START_TEST(logs_tunnel_drop_cancels)
{
    static const struct runtime_ops ops = {.logs = fake_logs_start,
                                           .logs_cancel = fake_logs_cancel};
    struct fake_logs f = {0};
    struct runtime rt = {&ops, &f};
    struct stream_deps deps = {.rt = &rt, .find = fake_find};
    struct fake_tunnel t = {0};
    struct session_out out = {fake_send, fake_queued, fake_wake, &t, 8};
    struct stream_session *s;

    unit_count_allocs();
    ck_assert_int_eq(stream_session_new(&out, &s), 0);
    ck_assert_int_eq(stream_session_register(s, STREAM_LOGS_CONNECT, &stream_logs_ops, &deps), 0);
    open_logs(s, 1, "/containerLogs/default/web/app", "follow=1");
    f.chunk(f.ctx, RT_STDOUT, "0123456789", 10); /* over the mark, no logs_pause: still fine */
    stream_session_reset(s);                     /* the tunnel dropped */
    ck_assert_int_eq(f.cancels, 1);
    ck_assert_uint_eq(stream_session_count(s), 0);
    stream_session_free(s);
    kedge_buf_cleanup(&t.sent);
    ck_assert_int_eq(unit_live_blocks, 0);
    unit_libc_allocs();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stream");
    TCase *tl = tcase_create("logs");
    TCase *tc = tcase_create("codec");
    TCase *ts = tcase_create("session");

    tcase_add_test(tc, frame_bytes);
    tcase_add_test(tc, frame_bad);
    tcase_add_test(tc, request_logs);
    tcase_add_test(tc, request_exec);
    tcase_add_test(tc, request_bad);
    tcase_add_test(tc, query_go_rules);
    tcase_add_test(tc, request_alloc_failures);
    tcase_add_test(ts, session_lifecycle);
    tcase_add_test(ts, session_backpressure_and_reset);
    tcase_add_test(ts, session_remove_resume_counts);
    tcase_add_test(tl, logs_parse_kubelet_rules);
    tcase_add_test(tl, logs_parse_refusals);
    tcase_add_test(tl, logs_handler);
    tcase_add_test(tl, logs_tunnel_drop_cancels);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, ts);
    suite_add_tcase(s, tl);
    return unit_run(s);
}
