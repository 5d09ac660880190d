/* A DeviceManagerService on grpc_fd.h for grpc_interop.py (a real grpcio client): MapperRegister
 * echoes (the mapper's name as a model, its address as a device name; a name "err:TEXT" is
 * answered NOT_FOUND with TEXT), ReportDeviceStatus answers an empty message, anything else
 * UNIMPLEMENTED. Usage: grpc_interop_server SOCKET; prints "ready" once listening, serves until
 * stdin closes.
 */
#define _GNU_SOURCE /* accept4, strndup */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc_fd.h"
#include "kubeedge/dmi/v1beta1/api.pb-c.h"

#define MAX_CONNS 16
#define SVC "/v1beta1.DeviceManagerService/"

static void answer_register(struct grpc_conn *c, int32_t stream, const uint8_t *msg, size_t len)
{
    V1beta1__MapperRegisterRequest *req = v1beta1__mapper_register_request__unpack(NULL, len, msg);
    V1beta1__MapperRegisterResponse resp = V1BETA1__MAPPER_REGISTER_RESPONSE__INIT;
    V1beta1__DeviceModel model = V1BETA1__DEVICE_MODEL__INIT, *models[1] = {&model};
    V1beta1__Device dev = V1BETA1__DEVICE__INIT, *devs[1] = {&dev};

    if (!req || !req->mapper) {
        (void)grpc_reply(c, stream, GRPC_INVALID_ARGUMENT, "no mapper", NULL);
    } else if (strncmp(req->mapper->name, "err:", 4) == 0) {
        (void)grpc_reply(c, stream, GRPC_NOT_FOUND, req->mapper->name + 4, NULL);
    } else {
        char *addr = req->mapper->address.len ? strndup((const char *)req->mapper->address.data,
                                                        req->mapper->address.len)
                                              : strdup("");

        model.name = req->mapper->name;
        dev.name = addr ? addr : "";
        resp.n_modellist = resp.n_devicelist = 1;
        resp.modellist = models;
        resp.devicelist = devs;
        (void)grpc_reply(c, stream, GRPC_OK, NULL, &resp.base);
        free(addr);
    }
    if (req)
        v1beta1__mapper_register_request__free_unpacked(req, NULL);
}

static void on_request(void *ctx, struct grpc_conn *c, int32_t stream, const char *path,
                       const uint8_t *msg, size_t len)
{
    (void)ctx;
    if (strcmp(path, SVC "MapperRegister") == 0)
        answer_register(c, stream, msg, len);
    else if (strcmp(path, SVC "ReportDeviceStatus") == 0)
        (void)grpc_reply(c, stream, GRPC_OK, NULL, NULL);
    else
        (void)grpc_reply(c, stream, GRPC_UNIMPLEMENTED, "unknown method", NULL);
}

static const struct grpc_conn_ops ops = {on_request, NULL, NULL};

struct slot {
    int fd;
    struct grpc_conn *c;
};

static void accept_one(int lfd, struct slot *slots)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int i;

    if (fd < 0)
        return;
    for (i = 0; i < MAX_CONNS && slots[i].c; i++)
        ;
    if (i == MAX_CONNS || grpc_conn_new(true, &ops, NULL, NULL, &slots[i].c) < 0) {
        close(fd);
        return;
    }
    slots[i].fd = fd;
}

int main(int argc, char **argv)
{
    struct slot slots[MAX_CONNS] = {{0}};
    int lfd, i;

    if (argc != 2) {
        fprintf(stderr, "usage: grpc_interop_server SOCKET\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    lfd = grpc_fd_listen_unix(argv[1], 0600);
    if (lfd < 0) {
        fprintf(stderr, "listen %s: %s\n", argv[1], strerror(-lfd));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        struct pollfd p[MAX_CONNS + 2] = {{0, POLLIN, 0}, {lfd, POLLIN, 0}};

        for (i = 0; i < MAX_CONNS; i++) {
            const uint8_t *out;

            p[i + 2].fd = slots[i].c ? slots[i].fd : -1;
            p[i + 2].events = 0;
            if (slots[i].c && grpc_conn_want_read(slots[i].c))
                p[i + 2].events |= POLLIN;
            if (slots[i].c && grpc_conn_output(slots[i].c, &out) > 0)
                p[i + 2].events |= POLLOUT;
        }
        if (poll(p, MAX_CONNS + 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break; /* stdin closed: the test is over */
        if (p[1].revents & POLLIN)
            accept_one(lfd, slots);
        for (i = 0; i < MAX_CONNS; i++) {
            if (!slots[i].c || !p[i + 2].revents)
                continue;
            if (grpc_fd_pump(slots[i].c, slots[i].fd, 0) < 0) {
                grpc_conn_free(slots[i].c);
                close(slots[i].fd);
                slots[i].c = NULL;
            }
        }
    }
    for (i = 0; i < MAX_CONNS; i++) {
        if (slots[i].c) {
            grpc_conn_free(slots[i].c);
            close(slots[i].fd);
        }
    }
    close(lfd);
    unlink(argv[1]);
    return 0;
}
