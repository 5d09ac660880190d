/* kedge-testmapper: the test mapper's process: options, the poll loop over stdin, its own
 * socket and connections, and the commands that call kedge (testmapper.h says the protocol). */
#define _GNU_SOURCE

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc_fd.h"
#include "kedge/alloc.h"
#include "testmapper.h"

#define MANAGER "/v1beta1.DeviceManagerService/"
#define CALL_TIMEOUT_MS 15000 /* above kedge's own deadlines: a hang shows as -1 here */
#define MAX_CONNS 64
#define LINE_MAX_BYTES 4096

struct tm_conn {
    int fd;
    struct grpc_conn *c;
};

struct tm_loop {
    struct testmapper tm;
    int lfd;
    struct tm_conn conns[MAX_CONNS];
    size_t nconns;
    bool hang, quit;
    char in[LINE_MAX_BYTES];
    size_t inlen;
};

/* ---- the event log ----------------------------------------------------------------------- */

void tm_event_begin(struct kedge_jw *w, struct kedge_buf *b, const char *ev)
{
    kedge_jw_init(w, b);
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "ev", ev);
}

void tm_event_end(struct kedge_jw *w, struct kedge_buf *b)
{
    kedge_jw_obj_close(w);
    if (kedge_jw_finish(w) < 0)
        (void)fputs("{\"ev\":\"error\",\"message\":\"event does not encode\"}\n", stdout);
    else
        (void)printf("%.*s\n", (int)b->len, b->data);
    (void)fflush(stdout);
    kedge_buf_cleanup(b);
}

static void event_error(const char *message)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    tm_event_begin(&w, &b, "error");
    kedge_jw_kstr(&w, "message", message);
    tm_event_end(&w, &b);
}

/* An answer from kedge: code and message as the event shows them (-1: no answer). */
static void event_code(struct kedge_jw *w, int rc, int code, const char *message)
{
    kedge_jw_kint(w, "code", rc < 0 ? -1 : code);
    kedge_jw_kstr(w, "message", rc < 0 ? strerror(-rc) : message ? message : "");
}

/* ---- calls to kedge ---------------------------------------------------------------------- */

static void do_register(struct tm_loop *l)
{
    V1beta1__MapperRegisterRequest req = V1BETA1__MAPPER_REGISTER_REQUEST__INIT;
    V1beta1__MapperInfo info = V1BETA1__MAPPER_INFO__INIT;
    V1beta1__MapperRegisterResponse *resp = NULL;
    struct kedge_buf b = KEDGE_BUF_INIT;
    char *message = NULL;
    struct kedge_jw w;
    int code = -1, rc;

    /* what mapper-framework's grpcclient/register.go sends */
    info.name = (char *)l->tm.name;
    info.version = (char *)"v1.15.0";
    info.api_version = (char *)"v1beta1";
    info.protocol = (char *)l->tm.protocol;
    info.address.data = (uint8_t *)l->tm.socket;
    info.address.len = strlen(l->tm.socket);
    info.state = (char *)"OK";
    req.withdata = 1;
    req.mapper = &info;
    rc = grpc_fd_unary(l->tm.kedge, MANAGER "MapperRegister", &req.base,
                       &v1beta1__mapper_register_response__descriptor, CALL_TIMEOUT_MS,
                       (ProtobufCMessage **)&resp, &code, &message);
    tm_event_begin(&w, &b, "registered");
    event_code(&w, rc, code, message);
    if (rc == 0 && code == GRPC_OK) {
        /* the lists replace what the mapper had, as mapper-framework's start does */
        tm_list_free(&l->tm.devices);
        tm_list_free(&l->tm.models);
        kedge_jw_key(&w, "devices");
        kedge_jw_arr_open(&w);
        for (size_t i = 0; i < resp->n_devicelist; i++) {
            kedge_jw_str(&w, resp->devicelist[i]->name);
            if (tm_list_put(&l->tm.devices, resp->devicelist[i]->name, &resp->devicelist[i]->base) <
                0)
                w.err = -ENOMEM;
        }
        kedge_jw_arr_close(&w);
        kedge_jw_key(&w, "models");
        kedge_jw_arr_open(&w);
        for (size_t i = 0; i < resp->n_modellist; i++) {
            kedge_jw_str(&w, resp->modellist[i]->name);
            if (tm_list_put(&l->tm.models, resp->modellist[i]->name, &resp->modellist[i]->base) < 0)
                w.err = -ENOMEM;
        }
        kedge_jw_arr_close(&w);
        kedge_jw_key(&w, "list");
        kedge_jw_arr_open(&w);
        for (size_t i = 0; i < resp->n_devicelist; i++)
            tm_device_json(&w, resp->devicelist[i]);
        kedge_jw_arr_close(&w);
    }
    tm_event_end(&w, &b);
    if (resp)
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    kedge_free(message);
}

/* One ReportDeviceStatus with n twins: props[i] reported values[i], observedDesired
 * desired[i] (NULL: none). */
static void do_report(struct tm_loop *l, const char *dev, size_t n, char **props, char **values,
                      char **desired)
{
    V1beta1__ReportDeviceStatusRequest req = V1BETA1__REPORT_DEVICE_STATUS_REQUEST__INIT;
    V1beta1__DeviceStatus st = V1BETA1__DEVICE_STATUS__INIT;
    V1beta1__Twin twins[16], *tp[16];
    V1beta1__TwinProperty rep[16], obs[16];
    ProtobufCMessage *resp = NULL;
    struct kedge_buf b = KEDGE_BUF_INIT;
    char *message = NULL;
    struct kedge_jw w;
    int code = -1, rc;

    for (size_t i = 0; i < n; i++) {
        v1beta1__twin__init(&twins[i]);
        v1beta1__twin_property__init(&rep[i]);
        v1beta1__twin_property__init(&obs[i]);
        twins[i].propertyname = props[i];
        rep[i].value = values[i];
        twins[i].reported = &rep[i];
        if (desired[i]) {
            obs[i].value = desired[i];
            twins[i].observeddesired = &obs[i];
        }
        tp[i] = &twins[i];
    }
    st.n_twins = n;
    st.twins = tp;
    req.devicename = (char *)dev;
    req.reporteddevice = &st;
    rc = grpc_fd_unary(l->tm.kedge, MANAGER "ReportDeviceStatus", &req.base,
                       &v1beta1__report_device_status_response__descriptor, CALL_TIMEOUT_MS, &resp,
                       &code, &message);
    tm_event_begin(&w, &b, "report");
    kedge_jw_kstr(&w, "device", dev);
    event_code(&w, rc, code, message);
    tm_event_end(&w, &b);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    kedge_free(message);
}

static void on_half_response(void *ctx, struct grpc_conn *c, void *tag, int code,
                             const char *message, const uint8_t *msg, size_t len)
{
    (void)ctx, (void)c, (void)tag, (void)code, (void)message, (void)msg, (void)len;
}

/* A mapper that dies in the middle of its own call: half of the call's bytes, then exit. */
static void do_half_report(struct tm_loop *l, const char *dev)
{
    static const struct grpc_conn_ops ops = {.response = on_half_response};
    V1beta1__ReportDeviceStatusRequest req = V1BETA1__REPORT_DEVICE_STATUS_REQUEST__INIT;
    struct grpc_conn *c = NULL;
    const uint8_t *out;
    size_t n;
    int fd = grpc_fd_connect_unix(l->tm.kedge);

    req.devicename = (char *)dev;
    if (fd < 0 || grpc_conn_new(false, &ops, NULL, NULL, &c) < 0 ||
        grpc_call(c, MANAGER "ReportDeviceStatus", &req.base, NULL) < 0) {
        event_error("half-report: could not start the call");
        if (fd >= 0)
            (void)close(fd);
        if (c)
            grpc_conn_free(c);
        return;
    }
    n = grpc_conn_output(c, &out);
    (void)!write(fd, out, n / 2);
    (void)printf("{\"ev\":\"dying\",\"method\":\"half-report\",\"bytes\":%zu}\n", n / 2);
    (void)fflush(stdout);
    _exit(3);
}

/* ---- commands ---------------------------------------------------------------------------- */

static void do_devices(struct tm_loop *l)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    tm_event_begin(&w, &b, "devices");
    kedge_jw_key(&w, "devices");
    tm_list_names(&w, &l->tm.devices);
    kedge_jw_key(&w, "models");
    tm_list_names(&w, &l->tm.models);
    tm_event_end(&w, &b);
}

struct big_call {
    bool done;
    int code;
    char message[256];
};

static void on_big_response(void *ctx, struct grpc_conn *c, void *tag, int code,
                            const char *message, const uint8_t *msg, size_t len)
{
    struct big_call *b = ctx;

    (void)c, (void)tag, (void)msg, (void)len;
    b->done = true;
    b->code = code;
    (void)snprintf(b->message, sizeof(b->message), "%s", message ? message : "");
}

/* A report over kedge's limit: grpc_fd_unary would refuse to send it (its own limit is gRPC's
 * 4 MiB), so this call raises the client's limit and runs the connection itself. */
static void do_oversize(struct tm_loop *l, const char *dev, const char *bytes)
{
    static const struct grpc_conn_ops ops = {.response = on_big_response};
    V1beta1__ReportDeviceStatusRequest req = V1BETA1__REPORT_DEVICE_STATUS_REQUEST__INIT;
    V1beta1__DeviceStatus st = V1BETA1__DEVICE_STATUS__INIT;
    V1beta1__Twin twin = V1BETA1__TWIN__INIT, *tp = &twin;
    V1beta1__TwinProperty rep = V1BETA1__TWIN_PROPERTY__INIT;
    struct grpc_limits lim = {64u * 1024 * 1024, 0};
    struct big_call b = {false, -1, "no answer"};
    long n = strtol(bytes, NULL, 10);
    struct grpc_conn *c = NULL;
    struct kedge_buf ev = KEDGE_BUF_INIT;
    struct kedge_jw w;
    char *big;
    int fd;

    if (n <= 0 || n > 32L * 1024 * 1024 || !(big = kedge_malloc((size_t)n + 1))) {
        event_error("oversize: bad size");
        return;
    }
    memset(big, '7', (size_t)n);
    big[n] = '\0';
    twin.propertyname = (char *)"temperature";
    rep.value = big;
    twin.reported = &rep;
    st.n_twins = 1;
    st.twins = &tp;
    req.devicename = (char *)dev;
    req.reporteddevice = &st;
    fd = grpc_fd_connect_unix(l->tm.kedge);
    if (fd >= 0 && grpc_conn_new(false, &ops, &b, &lim, &c) == 0 &&
        grpc_call(c, MANAGER "ReportDeviceStatus", &req.base, NULL) == 0) {
        for (int turns = 0; !b.done && turns < CALL_TIMEOUT_MS / 100; turns++)
            if (grpc_fd_pump(c, fd, 100) < 0)
                break; /* the connection is over: the answer, if any, came */
    }
    if (fd >= 0)
        (void)close(fd);
    if (c)
        grpc_conn_free(c); /* an open call ends here as UNAVAILABLE */
    kedge_free(big);
    tm_event_begin(&w, &ev, "report");
    kedge_jw_kstr(&w, "device", dev);
    kedge_jw_kint(&w, "code", b.code);
    kedge_jw_kstr(&w, "message", b.message);
    tm_event_end(&w, &ev);
}

/* reportm DEV P=V...: the twins of one report. */
static void do_reportm(struct tm_loop *l, char **tok, size_t ntok)
{
    char *props[16], *values[16], *desired[16];
    size_t n = 0;

    for (size_t i = 2; i < ntok && n < 16; i++) {
        char *eq = strchr(tok[i], '=');

        if (!eq) {
            event_error("reportm: PROP=VALUE expected");
            return;
        }
        *eq = '\0';
        props[n] = tok[i];
        values[n] = eq + 1;
        desired[n++] = NULL;
    }
    do_report(l, tok[1], n, props, values, desired);
}

static void command(struct tm_loop *l, char *line)
{
    char *tok[20], *save = NULL, *t;
    size_t n = 0;

    for (t = strtok_r(line, " \t\r", &save); t && n < 20; t = strtok_r(NULL, " \t\r", &save))
        tok[n++] = t;
    if (!n)
        return;
    if (!strcmp(tok[0], "register") && n == 1)
        do_register(l);
    else if (!strcmp(tok[0], "report") && (n == 4 || n == 5))
        do_report(l, tok[1], 1, &tok[2], &tok[3], n == 5 ? &tok[4] : (char *[]){NULL});
    else if (!strcmp(tok[0], "reportm") && n >= 3)
        do_reportm(l, tok, n);
    else if (!strcmp(tok[0], "oversize") && n == 3)
        do_oversize(l, tok[1], tok[2]);
    else if (!strcmp(tok[0], "half-report") && n == 2)
        do_half_report(l, tok[1]);
    else if (!strcmp(tok[0], "devices") && n == 1)
        do_devices(l);
    else if (!strcmp(tok[0], "hang") && n == 1)
        l->hang = true;
    else if (!strcmp(tok[0], "resume") && n == 1)
        l->hang = false;
    else if (!strcmp(tok[0], "die-on") && n == 2) {
        if (kedge_replace_str(&l->tm.die_on, tok[1]) < 0)
            event_error("out of memory");
    } else if (!strcmp(tok[0], "quit") && n == 1)
        l->quit = true;
    else
        event_error("unknown command");
    if (!strcmp(tok[0], "hang") || !strcmp(tok[0], "resume") || !strcmp(tok[0], "die-on")) {
        struct kedge_buf b = KEDGE_BUF_INIT;
        struct kedge_jw w;

        tm_event_begin(&w, &b, "ok");
        kedge_jw_kstr(&w, "command", tok[0]);
        tm_event_end(&w, &b);
    }
}

/* Read stdin; run each complete line. EOF (the test is gone) ends the mapper. */
static void read_stdin(struct tm_loop *l)
{
    ssize_t r = read(0, l->in + l->inlen, sizeof(l->in) - 1 - l->inlen);
    char *nl;

    if (r <= 0) {
        if (r == 0 || (errno != EINTR && errno != EAGAIN))
            l->quit = true;
        return;
    }
    l->inlen += (size_t)r;
    l->in[l->inlen] = '\0';
    while (!l->quit && (nl = memchr(l->in, '\n', l->inlen))) {
        size_t used = (size_t)(nl - l->in) + 1;

        *nl = '\0';
        command(l, l->in);
        memmove(l->in, l->in + used, l->inlen - used);
        l->inlen -= used;
    }
    if (l->inlen == sizeof(l->in) - 1) {
        event_error("line too long");
        l->inlen = 0;
    }
}

/* ---- the mapper's own socket --------------------------------------------------------------- */

static const struct grpc_conn_ops serve_ops = {.request = tm_serve_request};

static void accept_conn(struct tm_loop *l)
{
    int fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct grpc_conn *c = NULL;

    if (fd < 0)
        return;
    if (l->nconns == MAX_CONNS || grpc_conn_new(true, &serve_ops, &l->tm, NULL, &c) < 0) {
        (void)close(fd);
        return;
    }
    l->conns[l->nconns].fd = fd;
    l->conns[l->nconns++].c = c;
}

static void drop_conn(struct tm_loop *l, size_t i)
{
    (void)close(l->conns[i].fd);
    grpc_conn_free(l->conns[i].c);
    l->conns[i] = l->conns[--l->nconns];
}

static void loop_once(struct tm_loop *l)
{
    struct pollfd pf[2 + MAX_CONNS];
    size_t n = 2, nc = l->hang ? 0 : l->nconns;

    pf[0] = (struct pollfd){0, POLLIN, 0};
    pf[1] = (struct pollfd){l->hang ? -1 : l->lfd, POLLIN, 0};
    for (size_t i = 0; i < nc; i++) {
        const uint8_t *out;
        short ev = grpc_conn_want_read(l->conns[i].c) ? POLLIN : 0;

        if (grpc_conn_output(l->conns[i].c, &out))
            ev |= POLLOUT;
        pf[n++] = (struct pollfd){l->conns[i].fd, ev, 0};
    }
    if (poll(pf, n, -1) < 0)
        return;
    if (pf[0].revents)
        read_stdin(l);
    if (pf[1].revents & POLLIN)
        accept_conn(l);
    /* backwards: drop_conn moves the last connection into the freed slot */
    for (size_t i = nc; i-- > 0;)
        if (pf[2 + i].revents && grpc_fd_pump(l->conns[i].c, l->conns[i].fd, 0) < 0)
            drop_conn(l, i);
}

static void announce_ready(const struct testmapper *tm)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    tm_event_begin(&w, &b, "ready");
    kedge_jw_kstr(&w, "socket", tm->socket);
    kedge_jw_kstr(&w, "protocol", tm->protocol);
    tm_event_end(&w, &b);
}

static int usage(void)
{
    (void)fputs("usage: kedge-testmapper --protocol P --socket OWN.sock --kedge DMI.sock "
                "[--name N]\n",
                stderr);
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                         {"protocol", required_argument, NULL, 'p'},
                                         {"socket", required_argument, NULL, 's'},
                                         {"kedge", required_argument, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    static struct tm_loop l;
    int o;

    l.tm.name = "kedge-testmapper";
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'n')
            l.tm.name = optarg;
        else if (o == 'p')
            l.tm.protocol = optarg;
        else if (o == 's')
            l.tm.socket = optarg;
        else if (o == 'k')
            l.tm.kedge = optarg;
        else
            return usage();
    }
    if (!l.tm.protocol || !l.tm.socket || !l.tm.kedge || optind != argc)
        return usage();
    (void)signal(SIGPIPE, SIG_IGN);
    l.lfd = grpc_fd_listen_unix(l.tm.socket, 0660);
    if (l.lfd < 0) {
        (void)fprintf(stderr, "kedge-testmapper: %s: %s\n", l.tm.socket, strerror(-l.lfd));
        return 1;
    }
    announce_ready(&l.tm);
    while (!l.quit)
        loop_once(&l);
    while (l.nconns)
        drop_conn(&l, l.nconns - 1);
    (void)close(l.lfd);
    (void)unlink(l.tm.socket);
    tm_list_free(&l.tm.devices);
    tm_list_free(&l.tm.models);
    kedge_free(l.tm.die_on);
    return 0;
}
