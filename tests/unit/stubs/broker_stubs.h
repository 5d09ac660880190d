/* The recording side of broker_stubs.c. */
#ifndef KEDGE_BROKER_STUBS_H
#define KEDGE_BROKER_STUBS_H

#include <stdbool.h>
#include <stddef.h>

/* What a test passes where the broker would pass a `struct mosquitto *`. */
struct broker_stub_client {
    const char *id;
    const char *username;
};

#define BROKER_STUB_MAX 512

struct broker_stub_publish {
    char *client_id; /* NULL: to all subscribers */
    char *topic;
    char *payload; /* NUL-terminated copy */
    size_t len;
    int qos;
    bool retain;
};

extern struct broker_stub_publish broker_stub_published[BROKER_STUB_MAX];
extern size_t broker_stub_n_published;

/* Forget (and free) everything recorded. */
void broker_stub_reset(void);

#endif
