/* mapperctl: a test's end of a DMI test mapper (tests/dmi/testmapper.h's protocol), either
 * kedge-testmapper (C, kedge's own gRPC) or pymapper.py (Debian's python3-grpcio): the same
 * commands, the same events, so one test body drives both.
 *
 * The mapper is a child of the test (tests/support/proc.h: PR_SET_PDEATHSIG, reaped here), its
 * stdin and stdout pipes held by this end, its stderr appended to a log file the test names.
 * Events are read into a queue; a wait takes the oldest one that matches and leaves the others
 * queued, in order. Waits are deadlines (scaled as kt_scale_ms does), never sleeps. Failures are
 * returned, not asserted: the caller ck_asserts.
 */
#ifndef KEDGE_TESTS_MAPPERCTL_H
#define KEDGE_TESTS_MAPPERCTL_H

#include <stdbool.h>

#include "kedge/json.h"

enum mapper_kind {
    MAPPER_C,      /* kedge-testmapper */
    MAPPER_PYTHON, /* pymapper.py */
};

/* "C" / "Python", for messages. */
const char *mapper_kind_name(enum mapper_kind k);
/* Whether the kind can run here (the Python one needs /usr/bin/python3 with grpcio and the
 * generated stubs); when not, *why says so. */
bool mapper_kind_available(enum mapper_kind k, const char **why);

struct mapperctl_opts {
    enum mapper_kind kind;
    const char *name;     /* MapperInfo.name; NULL: the program's default */
    const char *protocol; /* MapperInfo.protocol */
    const char *socket;   /* its own DeviceMapperService socket */
    const char *kedge;    /* kedge's DeviceManagerService socket */
    const char *log_path; /* its stderr, appended; NULL: /dev/null */
};

struct mapperctl;

/* Start a mapper and wait (10 s, scaled) for its "ready" event. Returns 0 and *out, -ECHILD (it
 * exited), -ETIMEDOUT (killed) or -errno. o is copied. */
int mapperctl_start(const struct mapperctl_opts *o, struct mapperctl **out);
/* Start it again (after a stop or a death) with the same options; the queue is emptied. */
int mapperctl_restart(struct mapperctl *m);
/* One command line (no newline). 0 or -errno (-EPIPE: the mapper is gone). */
int mapperctl_send(struct mapperctl *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Take the oldest queued event whose "ev" is ev and, when name is not NULL, which names it (its
 * "name", "device", "device.name" or "model.name"), waiting up to timeout_ms (scaled). *doc: the
 * event (free it with kedge_jdoc_free); NULL to drop it. 0, -ETIMEDOUT, or -ECHILD when the
 * mapper exited with nothing matching queued. */
int mapperctl_wait(struct mapperctl *m, const char *ev, const char *name, int timeout_ms,
                   struct kedge_jdoc **doc);
/* Whether an event ev (named name, when not NULL) is queued now, after reading what arrived. */
bool mapperctl_has(struct mapperctl *m, const char *ev, const char *name);
/* Drop every queued event; how many. */
int mapperctl_drain(struct mapperctl *m);

/* A command that answers with an event of kedge's code ("registered", "report"): send it, wait
 * for that event (20 s, scaled: the mapper's own deadline is 15 s), return its "code" (-1: no
 * answer from kedge) and, when doc is not NULL, the event. < -1: -errno of the wait. */
int mapperctl_call(struct mapperctl *m, const char *ev, struct kedge_jdoc **doc, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* "quit", then wait (5 s, scaled) for the exit; SIGKILL past that. Returns the exit status. */
int mapperctl_stop(struct mapperctl *m);
/* SIGKILL and reap (a crashed mapper). */
int mapperctl_kill9(struct mapperctl *m);
/* Wait up to timeout_ms (scaled) for the mapper to exit on its own; its status or -ETIMEDOUT. */
int mapperctl_wait_exit(struct mapperctl *m, int timeout_ms);
bool mapperctl_running(struct mapperctl *m);
/* Kill it if it runs, free. NULL is a no-op. */
void mapperctl_free(struct mapperctl *m);

/* Helpers on events: the string at a dotted path ("device.desired.temperature"), NULL when
 * missing; whether the array at path holds exactly the strings of want (NULL-terminated), in
 * any order. */
const char *mapper_ev_str(const struct kedge_jdoc *doc, const char *path);
/* The same from any JSON value (exact keys; a number picks an array's element: "list.0.name"),
 * and the value itself whatever its type. */
const struct kedge_jval *mapper_jget(const struct kedge_jval *v, const char *path);
const char *mapper_jstr(const struct kedge_jval *v, const char *path);
bool mapper_ev_names_are(const struct kedge_jdoc *doc, const char *path, const char *const *want);

#endif
