/* mapperctl.c: a test's end of a DMI test mapper (mapperctl.h). */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "mapperctl.h"
#include "proc.h"
#include "testsupport.h"

#define READY_MS 10000
#define CALL_MS 20000
#define STOP_MS 5000
#define LINE_BYTES 4096 /* the mappers' line limit */

struct mapper_event {
    struct kedge_jdoc *doc;
    struct mapper_event *next;
};

struct mapperctl {
    struct mapperctl_opts o;
    char *name, *protocol, *socket, *kedge, *log_path; /* the copies o points at */
    struct kt_proc proc;
    int in_fd, out_fd; /* our ends of its stdin and stdout */
    struct kedge_buf partial;
    struct mapper_event *head, **tail;
};

const char *mapper_kind_name(enum mapper_kind k)
{
    return k == MAPPER_C ? "C" : "Python";
}

bool mapper_kind_available(enum mapper_kind k, const char **why)
{
    if (k == MAPPER_C)
        return true;
    if (access(KEDGE_PYTHON3, X_OK) < 0) {
        *why = KEDGE_PYTHON3 " is missing";
        return false;
    }
    if (access(KEDGE_PYDMI_DIR "/kubeedge/dmi/v1beta1/api_pb2_grpc.py", R_OK) < 0) {
        *why = "no stubs from python3-grpc-tools in " KEDGE_PYDMI_DIR;
        return false;
    }
    return true;
}

/* ---- the event queue ----------------------------------------------------------------------- */

static void queue_line(struct mapperctl *m, const char *line, size_t len)
{
    struct mapper_event *e;
    struct kedge_jdoc *doc = NULL;

    if (kedge_json_parse(line, len, &doc) != 0) {
        kt_say("mapper (%s): not an event: %.*s", mapper_kind_name(m->o.kind), (int)len, line);
        return;
    }
    e = kedge_calloc(1, sizeof(*e));
    if (!e) {
        kedge_jdoc_free(doc);
        return;
    }
    e->doc = doc;
    *m->tail = e;
    m->tail = &e->next;
}

/* Read what the mapper wrote, up to wait_ms for the first bytes. false at EOF. */
static bool pump(struct mapperctl *m, int wait_ms)
{
    struct pollfd pf = {m->out_fd, POLLIN, 0};
    char buf[65536], *nl;
    ssize_t r;

    if (m->out_fd < 0)
        return false;
    if (poll(&pf, 1, wait_ms) <= 0)
        return true;
    r = read(m->out_fd, buf, sizeof(buf));
    if (r < 0)
        return errno == EINTR || errno == EAGAIN;
    if (r == 0)
        return false;
    if (kedge_buf_append(&m->partial, buf, (size_t)r) < 0)
        return true;
    while (m->partial.len && (nl = memchr(m->partial.data, '\n', m->partial.len))) {
        size_t used = (size_t)(nl - m->partial.data) + 1;

        queue_line(m, m->partial.data, used - 1);
        memmove(m->partial.data, m->partial.data + used, m->partial.len - used);
        m->partial.len -= used;
    }
    return true;
}

static bool str_at(const struct kedge_jval *v, const char *want)
{
    return v && v->type == KEDGE_JSTR && !strcmp(v->str, want);
}

static bool event_matches(const struct kedge_jdoc *doc, const char *ev, const char *name)
{
    const struct kedge_jval *r = kedge_jdoc_root(doc);
    const struct kedge_jval *dev = kedge_json_get_exact(r, "device", 6);
    const struct kedge_jval *model = kedge_json_get_exact(r, "model", 5);

    if (!str_at(kedge_json_get_exact(r, "ev", 2), ev))
        return false;
    return !name || str_at(kedge_json_get_exact(r, "name", 4), name) || str_at(dev, name) ||
           str_at(kedge_json_get_exact(dev, "name", 4), name) ||
           str_at(kedge_json_get_exact(model, "name", 4), name);
}

/* Unlink and return the oldest matching event's doc, or NULL. */
static struct kedge_jdoc *take(struct mapperctl *m, const char *ev, const char *name)
{
    struct mapper_event **p, *e;
    struct kedge_jdoc *doc;

    for (p = &m->head; *p; p = &(*p)->next)
        if (event_matches((*p)->doc, ev, name))
            break;
    if (!*p)
        return NULL;
    e = *p;
    *p = e->next;
    if (!*p)
        m->tail = p;
    doc = e->doc;
    kedge_free(e);
    return doc;
}

int mapperctl_drain(struct mapperctl *m)
{
    int n = 0;

    while (pump(m, 0) && m->out_fd >= 0) {
        struct pollfd pf = {m->out_fd, POLLIN, 0};

        if (poll(&pf, 1, 0) <= 0)
            break;
    }
    while (m->head) {
        struct mapper_event *e = m->head;

        m->head = e->next;
        kedge_jdoc_free(e->doc);
        kedge_free(e);
        n++;
    }
    m->tail = &m->head;
    return n;
}

int mapperctl_wait(struct mapperctl *m, const char *ev, const char *name, int timeout_ms,
                   struct kedge_jdoc **doc)
{
    int64_t deadline = kt_now_ms() + kt_scale_ms(timeout_ms);
    struct kedge_jdoc *d;

    for (;;) {
        if ((d = take(m, ev, name))) {
            if (doc)
                *doc = d;
            else
                kedge_jdoc_free(d);
            return 0;
        }
        if (kt_remaining_ms(deadline) == 0)
            return -ETIMEDOUT;
        if (!pump(m, kt_remaining_ms(deadline))) {
            if (m->out_fd >= 0)
                (void)close(m->out_fd);
            m->out_fd = -1;
            if ((d = take(m, ev, name)))
                continue; /* an event queued by that last read */
            return -ECHILD;
        }
    }
}

bool mapperctl_has(struct mapperctl *m, const char *ev, const char *name)
{
    struct mapper_event *e;

    while (m->out_fd >= 0) {
        struct pollfd pf = {m->out_fd, POLLIN, 0};

        if (poll(&pf, 1, 0) <= 0 || !pump(m, 0))
            break;
    }
    for (e = m->head; e; e = e->next)
        if (event_matches(e->doc, ev, name))
            return true;
    return false;
}

/* ---- the process --------------------------------------------------------------------------- */

static int spawn(struct mapperctl *m)
{
    const char *argv[16];
    int in[2] = {-1, -1}, out[2] = {-1, -1}, n = 0, rc;
    struct kt_spawn s = {.argv = argv, .log_path = m->o.log_path};

    if (m->o.kind == MAPPER_PYTHON) {
        argv[n++] = KEDGE_PYTHON3;
        argv[n++] = KEDGE_PYMAPPER;
        argv[n++] = "--stubs";
        argv[n++] = KEDGE_PYDMI_DIR;
    } else {
        argv[n++] = KEDGE_TESTMAPPER;
    }
    argv[n++] = "--protocol";
    argv[n++] = m->o.protocol;
    argv[n++] = "--socket";
    argv[n++] = m->o.socket;
    argv[n++] = "--kedge";
    argv[n++] = m->o.kedge;
    if (m->o.name) {
        argv[n++] = "--name";
        argv[n++] = m->o.name;
    }
    argv[n] = NULL;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
        rc = -errno;
        goto fail;
    }
    s.stdin_fd = in[0];
    s.stdout_fd = out[1];
    rc = kt_proc_spawn(&m->proc, &s);
    if (rc < 0)
        goto fail;
    (void)close(in[0]);
    (void)close(out[1]);
    m->in_fd = in[1];
    m->out_fd = out[0];
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            (void)close(in[i]);
        if (out[i] >= 0)
            (void)close(out[i]);
    }
    return rc;
}

static void close_pipes(struct mapperctl *m)
{
    if (m->in_fd >= 0)
        (void)close(m->in_fd);
    if (m->out_fd >= 0)
        (void)close(m->out_fd);
    m->in_fd = m->out_fd = -1;
    kedge_buf_reset(&m->partial);
}

static int start_and_wait(struct mapperctl *m)
{
    int rc = spawn(m);

    if (rc < 0)
        return rc;
    rc = mapperctl_wait(m, "ready", NULL, READY_MS, NULL);
    if (rc == -ETIMEDOUT)
        (void)kt_proc_kill9(&m->proc);
    if (rc < 0 && m->o.log_path)
        kt_copy_to_stderr(m->o.log_path, "mapper log");
    return rc;
}

int mapperctl_start(const struct mapperctl_opts *o, struct mapperctl **out)
{
    struct mapperctl *m = kedge_calloc(1, sizeof(*m));
    int rc;

    *out = NULL;
    if (!m)
        return -ENOMEM;
    m->proc = (struct kt_proc)KT_PROC_INIT;
    m->in_fd = m->out_fd = -1;
    m->tail = &m->head;
    m->o = *o;
    m->name = kedge_strdup(o->name);
    m->protocol = kedge_strdup(o->protocol);
    m->socket = kedge_strdup(o->socket);
    m->kedge = kedge_strdup(o->kedge);
    m->log_path = kedge_strdup(o->log_path);
    if ((o->name && !m->name) || !m->protocol || !m->socket || !m->kedge ||
        (o->log_path && !m->log_path)) {
        mapperctl_free(m);
        return -ENOMEM;
    }
    m->o.name = m->name;
    m->o.protocol = m->protocol;
    m->o.socket = m->socket;
    m->o.kedge = m->kedge;
    m->o.log_path = m->log_path;
    rc = start_and_wait(m);
    if (rc < 0) {
        mapperctl_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int mapperctl_restart(struct mapperctl *m)
{
    if (mapperctl_running(m))
        return -EBUSY;
    close_pipes(m);
    (void)mapperctl_drain(m);
    return start_and_wait(m);
}

__attribute__((format(printf, 2, 0))) static int send_line(struct mapperctl *m, const char *fmt,
                                                           va_list ap)
{
    char line[LINE_BYTES];
    int len = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    size_t off = 0;

    if (len < 0 || (size_t)len >= sizeof(line) - 1)
        return -E2BIG;
    line[len++] = '\n';
    while (off < (size_t)len) {
        ssize_t w = write(m->in_fd, line + off, (size_t)len - off);

        if (w < 0 && errno != EINTR)
            return -errno;
        if (w > 0)
            off += (size_t)w;
    }
    return 0;
}

int mapperctl_send(struct mapperctl *m, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = send_line(m, fmt, ap);
    va_end(ap);
    return rc;
}

int mapperctl_call(struct mapperctl *m, const char *ev, struct kedge_jdoc **doc, const char *fmt,
                   ...)
{
    struct kedge_jdoc *d = NULL;
    int64_t code = -1;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = send_line(m, fmt, ap);
    va_end(ap);
    if (rc == 0)
        rc = mapperctl_wait(m, ev, NULL, CALL_MS, &d);
    if (rc < 0)
        return rc < -1 ? rc : -EIO;
    if (kedge_json_int64(kedge_json_get_exact(kedge_jdoc_root(d), "code", 4), &code) != 0)
        code = -EPROTO;
    if (doc)
        *doc = d;
    else
        kedge_jdoc_free(d);
    return (int)code;
}

int mapperctl_wait_exit(struct mapperctl *m, int timeout_ms)
{
    int rc = kt_proc_wait_exit(&m->proc, kt_scale_ms(timeout_ms));

    return rc < 0 ? rc : m->proc.exit_status;
}

int mapperctl_stop(struct mapperctl *m)
{
    if (!mapperctl_running(m))
        return m->proc.exit_status;
    (void)mapperctl_send(m, "quit");
    if (kt_proc_wait_exit(&m->proc, kt_scale_ms(STOP_MS)) < 0)
        return kt_proc_stop(&m->proc, kt_scale_ms(STOP_MS), "mapper");
    return m->proc.exit_status;
}

int mapperctl_kill9(struct mapperctl *m)
{
    return kt_proc_kill9(&m->proc);
}

bool mapperctl_running(struct mapperctl *m)
{
    return !kt_proc_reap(&m->proc, false);
}

void mapperctl_free(struct mapperctl *m)
{
    if (!m)
        return;
    if (mapperctl_running(m))
        (void)kt_proc_kill9(&m->proc);
    close_pipes(m);
    (void)mapperctl_drain(m);
    kedge_buf_cleanup(&m->partial);
    kedge_free(m->name);
    kedge_free(m->protocol);
    kedge_free(m->socket);
    kedge_free(m->kedge);
    kedge_free(m->log_path);
    kedge_free(m);
}

/* ---- reading events ------------------------------------------------------------------------ */

const struct kedge_jval *mapper_jget(const struct kedge_jval *v, const char *path)
{
    const char *p = path;

    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);

        if (v->type == KEDGE_JARR && len && strspn(p, "0123456789") >= len) {
            long i = strtol(p, NULL, 10);

            for (v = v->child; v && i > 0; i--)
                v = v->next;
        } else {
            v = kedge_json_get_exact(v, p, len);
        }
        p += len + (dot ? 1 : 0);
    }
    return v;
}

const char *mapper_ev_str(const struct kedge_jdoc *doc, const char *path)
{
    return mapper_jstr(kedge_jdoc_root(doc), path);
}

const char *mapper_jstr(const struct kedge_jval *root, const char *path)
{
    const struct kedge_jval *v = mapper_jget(root, path);

    return v && v->type == KEDGE_JSTR ? v->str : NULL;
}

bool mapper_ev_names_are(const struct kedge_jdoc *doc, const char *path, const char *const *want)
{
    const struct kedge_jval *arr = mapper_jget(kedge_jdoc_root(doc), path), *e;
    size_t n = 0;

    if (!arr || arr->type != KEDGE_JARR)
        return false;
    for (; want[n]; n++) {
        bool found = false;

        for (e = arr->child; e && !found; e = e->next)
            found = str_at(e, want[n]);
        if (!found)
            return false;
    }
    return arr->n == n;
}
