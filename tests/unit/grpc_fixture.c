/* The gRPC suites' fixture: see grpc_fixture.h. */
#include "grpc_fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kedge/alloc.h"

/* ---- the echo service ------------------------------------------------------------------- */

static void echo_reply(struct grpc_conn *c, int32_t stream, const V1beta1__MapperRegisterRequest *r)
{
    V1beta1__MapperRegisterResponse resp = V1BETA1__MAPPER_REGISTER_RESPONSE__INIT;
    V1beta1__DeviceModel model = V1BETA1__DEVICE_MODEL__INIT, *models[1] = {&model};
    V1beta1__Device dev = V1BETA1__DEVICE__INIT, *devs[1] = {&dev};
    char *addr;

    if (!r || !r->mapper) {
        ck_assert_int_eq(grpc_reply(c, stream, GRPC_INVALID_ARGUMENT, "no mapper", NULL), 0);
        return;
    }
    if (strncmp(r->mapper->name, "err:", 4) == 0) {
        ck_assert_int_eq(grpc_reply(c, stream, GRPC_NOT_FOUND, r->mapper->name + 4, NULL), 0);
        return;
    }
    addr = malloc(r->mapper->address.len + 1);
    ck_assert_ptr_nonnull(addr);
    if (r->mapper->address.len)
        memcpy(addr, r->mapper->address.data, r->mapper->address.len);
    addr[r->mapper->address.len] = '\0';
    model.name = r->mapper->name;
    dev.name = addr;
    resp.n_modellist = 1;
    resp.modellist = models;
    resp.n_devicelist = 1;
    resp.devicelist = devs;
    (void)grpc_reply(c, stream, GRPC_OK, NULL, &resp.base);
    free(addr);
}

static void on_request(void *ctx, struct grpc_conn *c, int32_t stream, const char *path,
                       const uint8_t *msg, size_t len)
{
    struct fx *f = ctx;
    struct fx_req *q;

    ck_assert_uint_lt(f->n_reqs, FX_MAX_CALLS);
    q = &f->reqs[f->n_reqs++];
    q->stream = stream;
    (void)snprintf(q->path, sizeof(q->path), "%s", path);
    q->req = v1beta1__mapper_register_request__unpack(NULL, len, msg);
    if (!f->hold)
        echo_reply(c, stream, q->req);
}

static void on_cancelled(void *ctx, struct grpc_conn *c, int32_t stream)
{
    struct fx *f = ctx;

    (void)c;
    f->cancelled[f->n_cancelled++] = stream;
}

static void on_response(void *ctx, struct grpc_conn *c, void *tag, int code, const char *message,
                        const uint8_t *msg, size_t len)
{
    struct fx *f = ctx;
    struct fx_resp *r = fx_resp_of(f, tag);

    (void)c;
    if (!r) {
        ck_assert_uint_lt(f->n_resps, FX_MAX_CALLS);
        r = &f->resps[f->n_resps++];
        r->tag = tag;
    }
    r->times++;
    r->code = code;
    ck_assert_ptr_nonnull(message);
    (void)snprintf(r->message, sizeof(r->message), "%s", message);
    if (code == GRPC_OK) {
        r->resp = v1beta1__mapper_register_response__unpack(NULL, len, msg);
        ck_assert_ptr_nonnull(r->resp);
    }
}

const struct grpc_conn_ops fx_server_ops = {on_request, on_cancelled, NULL};
const struct grpc_conn_ops fx_client_ops = {NULL, NULL, on_response};

void fx_open(struct fx *f, const struct grpc_limits *lim_srv, const struct grpc_limits *lim_cli)
{
    memset(f, 0, sizeof(*f));
    ck_assert_int_eq(grpc_conn_new(true, &fx_server_ops, f, lim_srv, &f->srv), 0);
    ck_assert_int_eq(grpc_conn_new(false, &fx_client_ops, f, lim_cli, &f->cli), 0);
}

void fx_close(struct fx *f)
{
    size_t i;

    grpc_conn_free(f->cli);
    grpc_conn_free(f->srv);
    for (i = 0; i < f->n_reqs; i++)
        v1beta1__mapper_register_request__free_unpacked(f->reqs[i].req, NULL);
    for (i = 0; i < f->n_resps; i++)
        if (f->resps[i].resp)
            v1beta1__mapper_register_response__free_unpacked(f->resps[i].resp, NULL);
}

/* Move one end's output to the other in pieces (as a socket would). Returns bytes moved. */
static size_t move(struct grpc_conn *from, struct grpc_conn *to)
{
    const uint8_t *out;
    size_t n, moved = 0;

    while ((n = grpc_conn_output(from, &out)) > 0) {
        if (n > 7000)
            n = 7000;
        if (grpc_conn_recv(to, out, n) < 0) {
            grpc_conn_consumed(from, n);
            return moved + n;
        }
        grpc_conn_consumed(from, n);
        moved += n;
    }
    return moved;
}

void fx_shuttle(struct fx *f)
{
    int i;

    for (i = 0; i < 100000; i++)
        if (move(f->cli, f->srv) + move(f->srv, f->cli) == 0)
            return;
    ck_abort_msg("the connections never went quiet");
}

void fx_answer(struct fx *f, size_t i)
{
    echo_reply(f->srv, f->reqs[i].stream, f->reqs[i].req);
}

int fx_call(struct fx *f, const char *name, size_t addr_len, void *tag)
{
    V1beta1__MapperRegisterRequest req = V1BETA1__MAPPER_REGISTER_REQUEST__INIT;
    V1beta1__MapperInfo info = V1BETA1__MAPPER_INFO__INIT;
    uint8_t *addr = malloc(addr_len + 1);
    int rv;

    ck_assert_ptr_nonnull(addr);
    memset(addr, 'a', addr_len);
    info.name = (char *)name;
    info.protocol = "modbus";
    info.address.data = addr;
    info.address.len = addr_len;
    req.withdata = true;
    req.mapper = &info;
    rv = grpc_call(f->cli, MR_PATH, &req.base, tag);
    free(addr);
    return rv;
}

struct fx_resp *fx_resp_of(struct fx *f, void *tag)
{
    size_t i;

    for (i = 0; i < f->n_resps; i++)
        if (f->resps[i].tag == tag)
            return &f->resps[i];
    return NULL;
}

/* ---- the raw client --------------------------------------------------------------------- */

static int raw_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name,
                      size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                      void *ud)
{
    struct raw *r = ud;
    char v[256];

    (void)s;
    (void)fr;
    (void)flags;
    (void)snprintf(v, sizeof(v), "%.*s", (int)valuelen, (const char *)value);
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        r->status = atoi(v);
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        r->grpc_status = atoi(v);
    else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
        (void)snprintf(r->grpc_message, sizeof(r->grpc_message), "%s", v);
    return 0;
}

static int raw_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct raw *r = ud;

    (void)s;
    (void)id;
    r->closed = true;
    r->close_code = code;
    return 0;
}

void raw_open(struct raw *r)
{
    nghttp2_session_callbacks *cb;

    memset(r, 0, sizeof(*r));
    r->grpc_status = -1;
    ck_assert_int_eq(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, raw_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, raw_stream_close);
    ck_assert_int_eq(nghttp2_session_client_new(&r->s, cb, r), 0);
    nghttp2_session_callbacks_del(cb);
    ck_assert_int_eq(nghttp2_submit_settings(r->s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

void raw_close(struct raw *r)
{
    nghttp2_session_del(r->s);
}

static ssize_t raw_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct raw *r = ud;
    size_t n = r->body_len - r->body_off;

    (void)s;
    (void)id;
    if (n > length)
        n = length;
    memcpy(buf, r->body + r->body_off, n);
    r->body_off += n;
    if (r->body_off == r->body_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!src->ptr)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return (ssize_t)n;
}

int32_t raw_request(struct raw *r, const char *ct, const uint8_t *body, size_t len, bool end)
{
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)MR_PATH, 5, sizeof(MR_PATH) - 1, 0},
        {(uint8_t *)":authority", (uint8_t *)"etc/kubeedge/dmi.sock", 10, 21, 0},
        {(uint8_t *)"content-type", (uint8_t *)ct, 12, strlen(ct), 0},
    };
    nghttp2_data_provider prd;

    r->body = body;
    r->body_len = len;
    r->body_off = 0;
    prd.source.ptr = end ? r : NULL;
    prd.read_callback = raw_read;
    return nghttp2_submit_request(r->s, NULL, nv, 5, &prd, NULL);
}

void raw_shuttle(struct raw *r, struct grpc_conn *srv)
{
    int i;

    for (i = 0; i < 10000; i++) {
        const uint8_t *out;
        ssize_t n;
        size_t m, moved = 0;

        while ((n = nghttp2_session_mem_send(r->s, &out)) > 0) {
            moved += (size_t)n;
            if (grpc_conn_recv(srv, out, (size_t)n) < 0)
                break;
        }
        while ((m = grpc_conn_output(srv, &out)) > 0) {
            moved += m;
            ck_assert_int_ge(nghttp2_session_mem_recv(r->s, out, m), 0);
            grpc_conn_consumed(srv, m);
        }
        if (moved == 0)
            return;
    }
    ck_abort_msg("never quiet");
}
