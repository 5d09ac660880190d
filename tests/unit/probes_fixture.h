/* The probes suite's rig (probes_fixture.c): a server thread on 127.0.0.1 (one listener per
 * behaviour), a real lws loop with a prober on it, and a stub engine_request that records the
 * calls and answers when the test says so. setup/teardown build and take down all of it for
 * every test (teardown checks that every block probes.c allocated is freed).
 */
#ifndef KEDGE_UNIT_PROBES_FIXTURE_H
#define KEDGE_UNIT_PROBES_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "probes.h"

/* ---- the server thread ---- */

enum behaviour { B_OK, B_FAIL, B_REDIRECT, B_HANG, B_CLOSE, B_TLS, N_B };

extern int port[N_B];
extern int closed_port; /* nothing listens there */
extern int full_port;   /* a listener whose accept queue is full: SYNs dropped */
extern pthread_mutex_t mu;
extern char last_request[N_B][2048];

void fill_queue(void);

/* ---- the loop ---- */

extern struct prober *pr;

struct result {
    int calls;
    enum probe_result r;
    char msg[1024];
    bool free_prober; /* done() frees the prober (re-entrancy) */
};

void done(void *arg, enum probe_result r, const char *message);
void spin_until(struct result *res, int max_ms);
void spin_for(int ms);

/* ---- the engine stub ---- */

struct call {
    char method[8], path[160], body[512];
    int timeout_ms;
    engine_done_fn done;
    void *ctx;
    bool answered;
};

extern struct call calls[16];
extern int n_calls;
extern int sync_err; /* engine_request answers at once with this err (engine down) */

void answer(int i, int status, int err, const char *body, size_t len);
void answer_json(int i, int status, const char *json);

void setup(void);
void teardown(void);

#endif
