/* The cloudq suite's shared fixtures (cloudq_fixture.h). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cloudq.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "cloudq_fixture.h"
#include "unit.h"

static char dir[64];
char path[128];
int64_t seq;

struct cloudq *open_ob(long resend_max, bool state_answered)
{
    struct cloudq_opts o = {resend_max, state_answered, 0, false, 3};
    struct cloudq *ob;

    ck_assert_int_eq(cloudq_open(path, &o, &ob), 0);
    return ob;
}

void setup(void)
{
    seq = 0;
    snprintf(dir, sizeof(dir), "/tmp/kedge-cloudq-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/bridge.db", dir);
}

void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A beehive message as the plugin hands it over: twin reports are confirm entries whose
 * subject is their resource; anything else is a fire entry. */
void put(struct cloudq *ob, const char *msg_id, const char *resource)
{
    char msg[512];
    int n =
        snprintf(msg, sizeof(msg),
                 "{\"header\":{\"msg_id\":\"%s\",\"parent_msg_id\":\"\",\"timestamp\":1},"
                 "\"route\":{\"source\":\"%s\",\"group\":\"resource\",\"operation\":"
                 "\"update\",\"resource\":\"%s\"},\"content\":\"x\"}",
                 msg_id, strncmp(resource, "device/", 7) ? "router_eventbus" : "twin", resource);

    ck_assert_int_eq(cloudq_put(ob, msg, (size_t)n, ++seq), 0);
}

/* The batch of puts so far made durable, as the relay does after each read. */
void commit(struct cloudq *ob)
{
    ck_assert_int_eq(cloudq_commit(ob), 0);
}

/* One message put and committed on its own. */
void put_commit(struct cloudq *ob, const char *msg_id, const char *resource)
{
    put(ob, msg_id, resource);
    commit(ob);
}

/* Take the next entry, mark it sent, and return its msg_id (static buffer) or "" for none. */
const char *send_next(struct cloudq *ob, int64_t *cursor, uint64_t resend_ms)
{
    static char id[64];
    struct cloudq_entry e;
    int rc = cloudq_next(ob, *cursor, resend_ms, &e);

    ck_assert_int_ge(rc, 0);
    if (rc == 0)
        return "";
    snprintf(id, sizeof(id), "%s", e.msg_id);
    ck_assert_int_eq(cloudq_sent(ob, &e), 0);
    if (e.id > *cursor)
        *cursor = e.id;
    cloudq_entry_cleanup(&e);
    return id;
}

/* A message with this content (JSON text) into msg; source "twin" for device resources. */
static int build(char *msg, size_t size, const char *msg_id, const char *resource,
                 const char *content)
{
    int dev = !strncmp(resource, "device/", 7);
    int n = snprintf(msg, size,
                     "{\"header\":{\"msg_id\":\"%s\",\"parent_msg_id\":\"\",\"timestamp\":1},"
                     "\"route\":{\"source\":\"%s\",\"group\":\"%s\",\"operation\":"
                     "\"update\",\"resource\":\"%s\"},\"content\":%s}",
                     msg_id, dev ? "twin" : "bus", dev ? "twin" : "user", resource, content);

    ck_assert_int_lt(n, (int)size);
    return n;
}

/* Put that message with the plugin's seq; returns what cloudq_put said. */
int put_raw(struct cloudq *ob, const char *msg_id, const char *resource, const char *content,
            int64_t with_seq)
{
    char msg[2048];
    int n = build(msg, sizeof(msg), msg_id, resource, content);

    return cloudq_put(ob, msg, (size_t)n, with_seq);
}

/* A twin report setting twin `key` to `value`. */
void put_twin(struct cloudq *ob, const char *msg_id, const char *key, const char *value)
{
    char content[256];

    snprintf(content, sizeof(content),
             "{\"event_id\":\"e-%s\",\"timestamp\":1,\"twin\":{\"%s\":{\"actual\":"
             "{\"value\":\"%s\"},\"metadata\":{\"type\":\"string\"}}}}",
             msg_id, key, value);
    ck_assert_int_eq(put_raw(ob, msg_id, TWIN_A, content, ++seq), 0);
}

/* An upload; every one with a 3-character msg_id has the same length, upload_len(). */
int put_upload(struct cloudq *ob, const char *msg_id)
{
    ck_assert_int_eq(strlen(msg_id), 3);
    return put_raw(ob, msg_id, "$hw/events/upload/x", "\"payload\"", ++seq);
}

int64_t upload_len(void)
{
    char msg[2048];

    return build(msg, sizeof(msg), "u00", "$hw/events/upload/x", "\"payload\"");
}

int grab(void *ctx, const struct cloudq_row *row)
{
    struct rows *r = ctx;

    ck_assert_int_lt(r->n, 16);
    r->id[r->n] = row->id;
    r->failures[r->n] = row->failures;
    r->in_flight[r->n] = row->in_flight;
    r->blocked[r->n] = row->blocked;
    snprintf(r->msg_id[r->n], sizeof(r->msg_id[0]), "%s", row->msg_id);
    snprintf(r->reason[r->n], sizeof(r->reason[0]), "%s", row->reason);
    snprintf(r->msg[r->n], sizeof(r->msg[0]), "%.*s", (int)row->len, row->msg);
    r->n++;
    return 0;
}

struct rows queue_rows(struct cloudq *ob)
{
    struct rows r = {0};

    ck_assert_int_ge(cloudq_list(ob, 16, grab, &r), 0);
    return r;
}

/* The queue id of the entry with msg_id. */
int64_t id_of(struct cloudq *ob, const char *msg_id)
{
    struct rows r = queue_rows(ob);
    int i;

    for (i = 0; i < r.n; i++)
        if (!strcmp(r.msg_id[i], msg_id))
            return r.id[i];
    ck_abort_msg("%s is not queued", msg_id);
    return 0;
}

/* msg_id is a dead letter whose reason is `reason`; returns its dead-letter id. */
int64_t expect_dead(struct cloudq *ob, const char *msg_id, const char *reason)
{
    struct rows r = {0};
    int i;

    ck_assert_int_ge(cloudq_dead_list(ob, 16, grab, &r), 0);
    for (i = 0; i < r.n; i++) {
        if (!strcmp(r.msg_id[i], msg_id)) {
            ck_assert_str_eq(r.reason[i], reason);
            return r.id[i];
        }
    }
    ck_abort_msg("%s is not a dead letter", msg_id);
    return 0;
}
struct cloudq *open_budget(int64_t budget, bool drop_oldest)
{
    struct cloudq_opts o = {0, true, budget, drop_oldest, 3};
    struct cloudq *ob;

    ck_assert_int_eq(cloudq_open(path, &o, &ob), 0);
    return ob;
}
