/* What the cloudq suite's files share (cloudq_fixture.c): a scratch directory per test, the
 * queue opened on it, messages put the way the plugin hands them over, sending as edgehub does,
 * and the rows the queue and its dead letters list.
 */
#ifndef KEDGE_UNIT_CLOUDQ_FIXTURE_H
#define KEDGE_UNIT_CLOUDQ_FIXTURE_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "cloudq.h"
/* unit.h first: its helpers' parameter `path` would shadow the global below otherwise. */
#include "unit.h"

#define TWIN_A "device/a/twin/edge_updated"
#define TWIN_B "device/b/twin/edge_updated"
#define HOUR_MS (3600u * 1000u)

extern char path[128];
extern int64_t seq; /* the plugin's seq of the next put */

struct cloudq *open_ob(long resend_max, bool state_answered);
struct cloudq *open_budget(int64_t budget, bool drop_oldest);
void setup(void);
void teardown(void);
void put(struct cloudq *ob, const char *msg_id, const char *resource);
void commit(struct cloudq *ob);
void put_commit(struct cloudq *ob, const char *msg_id, const char *resource);
const char *send_next(struct cloudq *ob, int64_t *cursor, uint64_t resend_ms);
int put_raw(struct cloudq *ob, const char *msg_id, const char *resource, const char *content,
            int64_t with_seq);
void put_twin(struct cloudq *ob, const char *msg_id, const char *key, const char *value);
int put_upload(struct cloudq *ob, const char *msg_id);
int64_t upload_len(void);

struct rows {
    int n;
    int64_t id[16], failures[16];
    bool in_flight[16], blocked[16];
    char msg_id[16][64], reason[16][256], msg[16][1024];
};

int grab(void *ctx, const struct cloudq_row *row);
struct rows queue_rows(struct cloudq *ob);
int64_t id_of(struct cloudq *ob, const char *msg_id);
int64_t expect_dead(struct cloudq *ob, const char *msg_id, const char *reason);

/* The tests of test_cloudq_dead.c, added to the suite's TCase. */
void cloudq_dead_letter_tests(TCase *order);

#endif
