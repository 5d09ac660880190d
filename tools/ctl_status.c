/* kedge-ctl status: the plugin's status object (with the bridge's last report inside) as
 * `key: value` lines in human units. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kedge/json.h"
#include "kedge/kebody.h"
#include "kedge/util.h"
#include "ctl.h"

static const char *fmt_bytes(char *buf, size_t len, int64_t n)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = (double)n / 1024;
    int u = 0;

    if (n < 0)
        return "unknown";
    if (n < 1024) {
        (void)snprintf(buf, len, "%lld B", (long long)n);
        return buf;
    }
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    (void)snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

static const char *fmt_age(char *buf, size_t len, int64_t ms)
{
    long long s = (long long)(ms / 1000);

    if (ms < 1000)
        (void)snprintf(buf, len, "%lld ms", (long long)ms);
    else if (s < 60)
        (void)snprintf(buf, len, "%.1f s", (double)ms / 1000);
    else if (s < 3600)
        (void)snprintf(buf, len, "%lldm %llds", s / 60, s % 60);
    else if (s < 86400)
        (void)snprintf(buf, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
    else
        (void)snprintf(buf, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
    return buf;
}

static bool has_suffix(const char *s, const char *sfx)
{
    size_t n = strlen(s), k = strlen(sfx);

    return n >= k && !strcmp(s + n - k, sfx);
}

/* One `key: value` line per member, in the plugin's order; nested objects (the bridge's own
 * report) are flattened with their key as a prefix. Sizes and times in human units:
 *   db_bytes              -> db_size: 120.0 KiB
 *   outbox_oldest_age_ms  -> outbox_oldest_age: 1.2 s   ("-" when the outbox is empty)
 *   *_ms (Unix ms, 0 = never), e.g. last_ack_ms -> last_ack: 3.0 s ago
 *   *_s  (Unix s, 0 = unknown), e.g. cert_not_after_s -> cert_not_after: <UTC time> (in 90d 2h)
 * anything else as sent (booleans as yes/no). */
static void print_status(const struct kedge_jval *obj, const char *prefix)
{
    const struct kedge_jval *m;
    int64_t depth = 0, now_ms = kedge_wall_ms();

    (void)kedge_json_int64(kedge_json_get(obj, "outbox_depth"), &depth);
    for (m = obj->child; m; m = m->next) {
        int64_t num = 0;
        bool is_num = m->type == KEDGE_JNUM && kedge_json_int64(m, &num) == 0;
        char name[128], text[64];

        (void)snprintf(name, sizeof(name), "%s%s", prefix, m->key);
        if (!strcmp(m->key, "db_bytes") && is_num) {
            out("%sdb_size: %s\n", prefix, fmt_bytes(text, sizeof(text), num));
        } else if (!strcmp(m->key, "outbox_oldest_age_ms") && is_num) {
            out("%soutbox_oldest_age: %s\n", prefix,
                depth == 0 ? "-" : fmt_age(text, sizeof(text), num));
        } else if (!strcmp(m->key, "outbox_oldest_ms") && is_num) {
            out("%soutbox_oldest_age: %s\n", prefix,
                num == 0 ? "-" : fmt_age(text, sizeof(text), now_ms > num ? now_ms - num : 0));
        } else if (has_suffix(m->key, "_ms") && is_num) {
            out("%.*s: %s%s\n", (int)(strlen(name) - 3), name,
                num == 0 ? "never" : fmt_age(text, sizeof(text), now_ms > num ? now_ms - num : 0),
                num == 0 ? "" : " ago");
        } else if (has_suffix(m->key, "_s") && is_num) {
            time_t t = (time_t)num;
            struct tm tm;
            char when[32] = "unknown";
            int64_t left_ms = num * 1000 - now_ms;

            if (num != 0 && gmtime_r(&t, &tm))
                (void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
            out("%.*s: %s", (int)(strlen(name) - 2), name, when);
            if (num != 0)
                out(left_ms >= 0 ? " (in %s)" : " (%s ago)",
                    fmt_age(text, sizeof(text), left_ms >= 0 ? left_ms : -left_ms));
            out("\n");
        } else if (m->type == KEDGE_JOBJ) {
            char sub[160];
            if (snprintf(sub, sizeof(sub), "%s_", name) < (int)sizeof(sub))
                print_status(m, sub);
        } else if (m->type == KEDGE_JNULL && !strcmp(m->key, "bridge")) {
            out("%s: no report\n", name);
        } else if (m->type == KEDGE_JBOOL) {
            out("%s: %s\n", name, m->boolean ? "yes" : "no");
        } else if (m->type == KEDGE_JSTR) {
            out("%s: %s\n", name, m->str);
        } else {
            out("%s: ", name);
            print_json(m, 0);
            out("\n");
        }
    }
}

int cmd_status(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct kebody_request req = {.op = "status"};
    struct kedge_jdoc *doc = NULL;
    int rc;

    (void)argv;
    if (argc != 0) {
        complain("usage: status\n");
        return EXIT_USAGE;
    }
    rc = ask(c, ctl_query, &req, &doc);
    if (rc)
        return rc;
    print_status(kedge_jdoc_root(doc), "");
    kedge_jdoc_free(doc);
    return 0;
}
