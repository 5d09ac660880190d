/* summary_json.c: the /stats/summary body (summary.h).
 *
 * kubelet writes the Summary with go-restful's WriteAsJson, which pretty-prints by default:
 * encoding/json's Marshal, then Indent with prefix "" and a one-space indent. The struct fields
 * come in their Go declaration order; a nil pointer with omitempty is left out, a zero
 * metav1.Time is null, a set one is RFC 3339 in UTC to the second. The compact text is built
 * with kedge_jw (Go's escaping) and indented here as json.Indent does: "{}" and "[]" stay
 * empty, ": " after a key. edgecore's scanner ends every line, the last one too, with "\n".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "kedge/json.h"
#include "summary.h"

static void put_u64(struct kedge_jw *w, const char *key, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRIu64, v);

    kedge_jw_key(w, key);
    kedge_jw_raw(w, num, (size_t)n);
}

static void put_time(struct kedge_jw *w, const char *key, int64_t ms)
{
    char s[32];
    struct tm tm;
    time_t t = (time_t)(ms / 1000);

    kedge_jw_key(w, key);
    if (ms <= 0 || !gmtime_r(&t, &tm)) {
        kedge_jw_null(w);
        return;
    }
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
    kedge_jw_str(w, s);
}

static void put_cpu(struct kedge_jw *w, const struct ks_cpu *c)
{
    kedge_jw_key(w, "cpu");
    kedge_jw_obj_open(w);
    put_time(w, "time", c->time_ms);
    if (c->has_nano_cores)
        put_u64(w, "usageNanoCores", c->nano_cores);
    put_u64(w, "usageCoreNanoSeconds", c->usage_ns);
    kedge_jw_obj_close(w);
}

static void put_mem(struct kedge_jw *w, const struct ks_mem *m)
{
    kedge_jw_key(w, "memory");
    kedge_jw_obj_open(w);
    put_time(w, "time", m->time_ms);
    if (m->has_available)
        put_u64(w, "availableBytes", m->available);
    put_u64(w, "usageBytes", m->usage);
    put_u64(w, "workingSetBytes", m->working_set);
    if (m->has_rss)
        put_u64(w, "rssBytes", m->rss);
    if (m->has_faults) {
        put_u64(w, "pageFaults", m->page_faults);
        put_u64(w, "majorPageFaults", m->major_page_faults);
    }
    kedge_jw_obj_close(w);
}

static void put_iface_fields(struct kedge_jw *w, const struct ks_iface *i)
{
    kedge_jw_kstr(w, "name", i->name);
    put_u64(w, "rxBytes", i->rx_bytes);
    put_u64(w, "rxErrors", i->rx_errors);
    put_u64(w, "txBytes", i->tx_bytes);
    put_u64(w, "txErrors", i->tx_errors);
}

static void put_net(struct kedge_jw *w, const struct ks_net *n)
{
    size_t i;

    kedge_jw_key(w, "network");
    kedge_jw_obj_open(w);
    put_time(w, "time", n->time_ms);
    if (n->def >= 0 && (size_t)n->def < n->n)
        put_iface_fields(w, &n->ifs[n->def]);
    else
        kedge_jw_kstr(w, "name", ""); /* the inline InterfaceStats' name has no omitempty */
    if (n->n) {
        kedge_jw_key(w, "interfaces");
        kedge_jw_arr_open(w);
        for (i = 0; i < n->n; i++) {
            kedge_jw_obj_open(w);
            put_iface_fields(w, &n->ifs[i]);
            kedge_jw_obj_close(w);
        }
        kedge_jw_arr_close(w);
    }
    kedge_jw_obj_close(w);
}

static void put_fs(struct kedge_jw *w, const char *key, const struct ks_fs *f)
{
    kedge_jw_key(w, key);
    kedge_jw_obj_open(w);
    put_time(w, "time", f->time_ms);
    put_u64(w, "availableBytes", f->available);
    put_u64(w, "capacityBytes", f->capacity);
    if (f->has_used)
        put_u64(w, "usedBytes", f->used);
    put_u64(w, "inodesFree", f->inodes_free);
    put_u64(w, "inodes", f->inodes);
    put_u64(w, "inodesUsed", f->inodes_used);
    kedge_jw_obj_close(w);
}

static void put_rlimit(struct kedge_jw *w, const struct ks_rlimit *r)
{
    kedge_jw_key(w, "rlimit");
    kedge_jw_obj_open(w);
    put_time(w, "time", r->time_ms);
    if (r->maxpid >= 0)
        kedge_jw_kint(w, "maxpid", r->maxpid);
    if (r->curproc >= 0)
        kedge_jw_kint(w, "curproc", r->curproc);
    kedge_jw_obj_close(w);
}

static void put_node(struct kedge_jw *w, const struct ks_node *n)
{
    kedge_jw_key(w, "node");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "nodeName", n->name ? n->name : "");
    put_time(w, "startTime", n->start_ms);
    if (n->has_cpu)
        put_cpu(w, &n->cpu);
    if (n->has_mem)
        put_mem(w, &n->mem);
    if (n->has_net)
        put_net(w, &n->net);
    if (n->has_fs)
        put_fs(w, "fs", &n->fs);
    if (n->has_image_fs) {
        kedge_jw_key(w, "runtime");
        kedge_jw_obj_open(w);
        put_fs(w, "imageFs", &n->image_fs);
        kedge_jw_obj_close(w);
    }
    if (n->has_rlimit)
        put_rlimit(w, &n->rlimit);
    kedge_jw_obj_close(w);
}

static void put_container(struct kedge_jw *w, const struct ks_container *c)
{
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "name", c->name);
    put_time(w, "startTime", c->start_ms);
    if (c->has_cpu)
        put_cpu(w, &c->cpu);
    if (c->has_mem)
        put_mem(w, &c->mem);
    kedge_jw_obj_close(w);
}

static void put_pod(struct kedge_jw *w, const struct ks_pod *p)
{
    size_t i;

    kedge_jw_obj_open(w);
    kedge_jw_key(w, "podRef");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "name", p->name);
    kedge_jw_kstr(w, "namespace", p->ns);
    kedge_jw_kstr(w, "uid", p->uid);
    kedge_jw_obj_close(w);
    put_time(w, "startTime", p->start_ms);
    kedge_jw_key(w, "containers");
    kedge_jw_arr_open(w);
    for (i = 0; i < p->n_cs; i++)
        put_container(w, &p->cs[i]);
    kedge_jw_arr_close(w);
    if (p->has_cpu)
        put_cpu(w, &p->cpu);
    if (p->has_mem)
        put_mem(w, &p->mem);
    kedge_jw_obj_close(w);
}

static int newline(struct kedge_buf *out, int depth)
{
    int rc = kedge_buf_putc(out, '\n');

    while (rc == 0 && depth-- > 0)
        rc = kedge_buf_putc(out, ' ');
    return rc;
}

/* json.Indent(out, in, "", " ") for the compact, valid JSON in[0..n). */
static int indent(const char *in, size_t n, struct kedge_buf *out)
{
    int depth = 0, rc = 0;
    bool in_str = false, esc = false, open = false; /* open: after '{' or '[' */
    size_t i;

    for (i = 0; i < n && rc == 0; i++) {
        char c = in[i];
        if (in_str) {
            in_str = esc || c != '"';
            esc = !esc && c == '\\';
            rc = kedge_buf_putc(out, c);
            continue;
        }
        if (open && c != '}' && c != ']') {
            rc = newline(out, depth); /* the first member of a non-empty object or array */
            if (rc)
                break;
        }
        open = false;
        switch (c) {
        case '{':
        case '[':
            depth++;
            open = true;
            rc = kedge_buf_putc(out, c);
            break;
        case '}':
        case ']':
            depth--;
            if (i > 0 && in[i - 1] != '{' && in[i - 1] != '[')
                rc = newline(out, depth);
            if (rc == 0)
                rc = kedge_buf_putc(out, c);
            break;
        case ',':
            rc = kedge_buf_putc(out, c);
            if (rc == 0)
                rc = newline(out, depth);
            break;
        case ':':
            rc = kedge_buf_puts(out, ": ");
            break;
        case '"':
            in_str = true;
            rc = kedge_buf_putc(out, c);
            break;
        default:
            rc = kedge_buf_putc(out, c);
        }
    }
    return rc < 0 ? -ENOMEM : 0;
}

int ks_summary_json(const struct ks_summary *s, struct kedge_buf *out)
{
    struct kedge_buf compact = KEDGE_BUF_INIT;
    struct kedge_jw w;
    size_t i;
    int rc;

    kedge_jw_init(&w, &compact);
    kedge_jw_obj_open(&w);
    put_node(&w, &s->node);
    kedge_jw_key(&w, "pods");
    kedge_jw_arr_open(&w);
    for (i = 0; i < s->n_pods; i++)
        put_pod(&w, &s->pods[i]);
    kedge_jw_arr_close(&w);
    kedge_jw_obj_close(&w);
    rc = kedge_jw_finish(&w);
    if (rc == 0)
        rc = indent(compact.data, compact.len, out);
    if (rc == 0)
        rc = kedge_buf_putc(out, '\n') < 0 ? -ENOMEM : 0;
    kedge_buf_cleanup(&compact);
    return rc;
}
