/* applied.c: what the device controller applied, per device, in the order it applied it.
 *
 * Tests of the edge's twin path (issue 13: the cloud must never receive an older value of a
 * twin after a newer one, across resends, reconnects and kill -9) need the cloud's side of the
 * story: not what arrived (GET /received has that), but what the workers applied, after their
 * reordering (workers.c). Each applied report is logged with, per twin, the actual value, the
 * edge's actual_version.edge and the actual value's metadata.timestamp; per twin a summary says
 * what is applied now, how many reports applied that same value (a resend applied twice counts
 * 2) and how many times a value went backwards: an edge version below the highest one applied
 * before (or, for a twin the edge sent without versions, an older timestamp).
 *
 * The log of each device keeps its APPLIED_LOG_MAX newest entries (log_dropped counts the
 * others); the summaries cover every report.
 */
#include <errno.h>
#include <string.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"

#define APPLIED_LOG_MAX 64

struct twin_state {
    char *name;
    char *value;      /* JSON of actual.value as applied last ("null" when absent) */
    int64_t edge;     /* actual_version.edge, -1 when the report had none */
    int64_t ts;       /* actual.metadata.timestamp, -1 when none */
    int64_t max_edge; /* the highest edge version applied so far (-1: none) */
    int64_t max_ts;
    unsigned long times;       /* reports that applied the current value and version */
    unsigned long regressions; /* applied values older than one applied before */
};

struct log_entry {
    struct log_entry *next;
    unsigned long n; /* 1 = the device's first applied report */
    int64_t t_ms;
    char *json; /* {"n","t_ms","msg_id","timestamp","twins":{name:{"value","edge","ts"}}} */
    size_t len;
};

struct applied_dev {
    struct applied_dev *next;
    char *id;
    unsigned long reports, regressions, log_dropped;
    struct twin_state *twins;
    size_t n_twins;
    struct log_entry *head, *tail;
    size_t n_log;
};

struct applied {
    struct applied_dev *devs, *tail;
    size_t n_devs;
};

int applied_new(struct applied **out)
{
    *out = kedge_calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

static void dev_free(struct applied_dev *d)
{
    size_t i;

    for (i = 0; i < d->n_twins; i++) {
        kedge_free(d->twins[i].name);
        kedge_free(d->twins[i].value);
    }
    kedge_free(d->twins);
    while (d->head) {
        struct log_entry *e = d->head;
        d->head = e->next;
        kedge_free(e->json);
        kedge_free(e);
    }
    kedge_free(d->id);
    kedge_free(d);
}

void applied_free(struct applied *a)
{
    if (!a)
        return;
    while (a->devs) {
        struct applied_dev *d = a->devs;
        a->devs = d->next;
        dev_free(d);
    }
    kedge_free(a);
}

static struct applied_dev *dev_get(struct applied *a, const char *id)
{
    struct applied_dev *d;

    for (d = a->devs; d; d = d->next)
        if (!strcmp(d->id, id))
            return d;
    d = kedge_calloc(1, sizeof(*d));
    if (!d || !(d->id = kedge_strdup(id))) {
        kedge_free(d);
        return NULL;
    }
    if (a->tail)
        a->tail->next = d;
    else
        a->devs = d;
    a->tail = d;
    a->n_devs++;
    return d;
}

static struct twin_state *twin_get(struct applied_dev *d, const char *name)
{
    struct twin_state *t;
    size_t i;

    for (i = 0; i < d->n_twins; i++)
        if (!strcmp(d->twins[i].name, name))
            return &d->twins[i];
    t = kedge_realloc(d->twins, (d->n_twins + 1) * sizeof(*t));
    if (!t)
        return NULL;
    d->twins = t;
    t = &t[d->n_twins];
    memset(t, 0, sizeof(*t));
    if (!(t->name = kedge_strdup(name)))
        return NULL;
    t->edge = t->ts = t->max_edge = t->max_ts = -1;
    d->n_twins++;
    return t;
}

static int64_t int_or(const struct kedge_jval *v, int64_t def)
{
    int64_t x;

    return v && kedge_json_int64(v, &x) == 0 ? x : def;
}

/* Fold one twin of a report into its state; older (edge version, else timestamp) than what
 * was applied before counts as a regression. value: JSON text, taken over. */
static void twin_apply(struct applied_dev *d, struct twin_state *t, char *value, int64_t edge,
                       int64_t ts)
{
    bool older = edge >= 0 && t->max_edge >= 0 ? edge < t->max_edge
                                               : ts >= 0 && t->max_ts >= 0 && ts < t->max_ts;
    bool same = t->value && !strcmp(t->value, value) && t->edge == edge && t->ts == ts;

    if (older) {
        t->regressions++;
        d->regressions++;
    }
    t->times = same ? t->times + 1 : 1;
    kedge_free(t->value);
    t->value = value;
    t->edge = edge;
    t->ts = ts;
    if (edge > t->max_edge)
        t->max_edge = edge;
    if (ts > t->max_ts)
        t->max_ts = ts;
}

static int value_json(const struct kedge_jval *v, char **out)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jw w;

    kedge_jw_init(&w, &b);
    if (v)
        kedge_json_write_value(&w, v);
    else
        kedge_jw_null(&w);
    if (kedge_jw_finish(&w) < 0 || !(*out = kedge_buf_take(&b, NULL))) {
        kedge_buf_cleanup(&b);
        return -ENOMEM;
    }
    return 0;
}

/* The twins of one report into the device's states and the log entry's "twins" object. */
static int apply_twins(struct applied_dev *d, const struct kedge_jval *twin, struct kedge_jw *w)
{
    const struct kedge_jval *t;

    kedge_jw_key(w, "twins");
    kedge_jw_obj_open(w);
    for (t = twin && twin->type == KEDGE_JOBJ ? twin->child : NULL; t; t = t->next) {
        const struct kedge_jval *actual = kedge_json_get(t, "actual");
        int64_t edge = int_or(kedge_json_get(kedge_json_get(t, "actual_version"), "edge"), -1);
        int64_t ts = int_or(kedge_json_get(kedge_json_get(actual, "metadata"), "timestamp"), -1);
        struct twin_state *st = twin_get(d, t->key);
        char *value = NULL;

        if (!st || value_json(kedge_json_get(actual, "value"), &value) < 0)
            return -ENOMEM;
        kedge_jw_key(w, t->key);
        kedge_jw_obj_open(w);
        kedge_jw_key(w, "value");
        kedge_jw_raw(w, value, strlen(value));
        kedge_jw_kint(w, "edge", edge);
        kedge_jw_kint(w, "ts", ts);
        kedge_jw_obj_close(w);
        twin_apply(d, st, value, edge, ts);
    }
    kedge_jw_obj_close(w);
    return 0;
}

static void log_push(struct applied_dev *d, struct log_entry *e)
{
    if (d->tail)
        d->tail->next = e;
    else
        d->head = e;
    d->tail = e;
    if (++d->n_log > APPLIED_LOG_MAX) {
        struct log_entry *old = d->head;
        d->head = old->next;
        kedge_free(old->json);
        kedge_free(old);
        d->n_log--;
        d->log_dropped++;
    }
}

int applied_record(struct applied *a, const char *id, const struct kedge_msg *m, int64_t now_ms)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    struct applied_dev *d = dev_get(a, id);
    struct log_entry *e = NULL;
    const struct kedge_jval *root = NULL;
    struct kedge_jw w;
    int rc = -ENOMEM;

    if (!d || !(e = kedge_calloc(1, sizeof(*e))))
        goto out;
    if (kedge_json_parse(m->content, m->content_len, &doc) == 0)
        root = kedge_jdoc_root(doc);
    e->n = ++d->reports;
    e->t_ms = now_ms;
    kedge_jw_init(&w, &b);
    kedge_jw_obj_open(&w);
    kedge_jw_kint(&w, "n", (int64_t)e->n);
    kedge_jw_kint(&w, "t_ms", now_ms);
    kedge_jw_kstr(&w, "msg_id", m->msg_id ? m->msg_id : "");
    kedge_jw_kint(&w, "timestamp", int_or(kedge_json_get(root, "timestamp"), -1));
    if (apply_twins(d, kedge_json_get(root, "twin"), &w) < 0)
        goto out;
    kedge_jw_obj_close(&w);
    if (kedge_jw_finish(&w) < 0 || !(e->json = kedge_buf_take(&b, &e->len)))
        goto out;
    log_push(d, e);
    e = NULL;
    rc = 0;
out:
    kedge_buf_cleanup(&b);
    kedge_jdoc_free(doc);
    kedge_free(e);
    return rc;
}

static void write_twin_states(struct kedge_jw *w, const struct applied_dev *d)
{
    size_t i;

    kedge_jw_key(w, "twins");
    kedge_jw_obj_open(w);
    for (i = 0; i < d->n_twins; i++) {
        const struct twin_state *t = &d->twins[i];
        kedge_jw_key(w, t->name);
        kedge_jw_obj_open(w);
        kedge_jw_key(w, "value");
        kedge_jw_raw(w, t->value ? t->value : "null", t->value ? strlen(t->value) : 4);
        kedge_jw_kint(w, "edge", t->edge);
        kedge_jw_kint(w, "ts", t->ts);
        kedge_jw_kint(w, "times", (int64_t)t->times);
        kedge_jw_kint(w, "regressions", (int64_t)t->regressions);
        kedge_jw_obj_close(w);
    }
    kedge_jw_obj_close(w);
}

static void write_dev(struct kedge_jw *w, const struct applied_dev *d, bool with_log)
{
    const struct log_entry *e;

    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "id", d->id);
    kedge_jw_kint(w, "reports", (int64_t)d->reports);
    kedge_jw_kint(w, "regressions", (int64_t)d->regressions);
    write_twin_states(w, d);
    if (with_log) {
        kedge_jw_kint(w, "log_dropped", (int64_t)d->log_dropped);
        kedge_jw_key(w, "log");
        kedge_jw_arr_open(w);
        for (e = d->head; e; e = e->next)
            kedge_jw_raw(w, e->json, e->len);
        kedge_jw_arr_close(w);
    }
    kedge_jw_obj_close(w);
}

void applied_write(const struct applied *a, const char *id, bool with_log, struct kedge_jw *w)
{
    const struct applied_dev *d;
    unsigned long reports = 0, regressions = 0;

    for (d = a->devs; d; d = d->next) {
        reports += d->reports;
        regressions += d->regressions;
    }
    kedge_jw_obj_open(w);
    kedge_jw_kint(w, "reports", (int64_t)reports);
    kedge_jw_kint(w, "regressions", (int64_t)regressions);
    kedge_jw_kint(w, "devices_total", (int64_t)a->n_devs);
    kedge_jw_key(w, "devices");
    kedge_jw_arr_open(w);
    for (d = a->devs; d; d = d->next) {
        if (id && strcmp(id, d->id))
            continue;
        write_dev(w, d, with_log);
    }
    kedge_jw_arr_close(w);
    kedge_jw_obj_close(w);
}
