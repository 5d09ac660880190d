/* What the devicetwin suite's files share (devicetwin_fixture.c): the plugin's core under test
 * on a seeded DB, what it published, sending a request the way the broker does, and comparing
 * payloads after normalise().
 */
#ifndef KEDGE_UNIT_DEVICETWIN_FIXTURE_H
#define KEDGE_UNIT_DEVICETWIN_FIXTURE_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "kedge/buf.h"
#include "core.h"
#include "db.h"

#define NODE "kedge-node"
#define DEV "conf-dev-1"
#define PFX "$hw/events/device/"
#define RESULT PFX DEV "/twin/update/result"
#define DOCUMENT PFX DEV "/twin/update/document"
#define DELTA PFX DEV "/twin/update/delta"
#define GET_RESULT PFX DEV "/twin/get/result"

/* conf-dev-1's seeded twins as Go prints them (versions stripped). */
#define META0 "{\"timestamp\":1700000000000}"
#define SEED_TWIN(e, a, opt, type)                                                                 \
    "{\"expected\":{\"value\":\"" e "\",\"metadata\":" META0 "},\"actual\":{\"value\":\"" a        \
    "\",\"metadata\":" META0 "},\"optional\":" opt ",\"metadata\":{\"type\":\"" type "\"}}"
#define HUMIDITY SEED_TWIN("40.5", "41.5", "false", "float")
#define LABEL SEED_TWIN("a", "a", "false", "string")
#define MANDKEY SEED_TWIN("x", "y", "false", "string")
#define OPTKEY SEED_TWIN("x", "y", "true", "string")
#define SWITCH SEED_TWIN("true", "false", "false", "boolean")
#define TEMPERATURE SEED_TWIN("20", "21", "false", "int")
#define SEED_TWINS                                                                                 \
    "\"humidity\":" HUMIDITY ",\"label\":" LABEL ",\"mandkey\":" MANDKEY ",\"optkey\":" OPTKEY     \
    ",\"switch\":" SWITCH ",\"temperature\":" TEMPERATURE
#define SEED_DELTA                                                                                 \
    "{\"humidity\":\"40.5\",\"mandkey\":\"x\",\"optkey\":\"x\",\"switch\":\"true\","               \
    "\"temperature\":\"20\"}"

/* The plugin under test and what it published (setup and teardown, every test). */
extern struct unit_db db;
extern struct plugin_config cfg;
extern struct kedge_core core;

struct pub {
    char *client_id, *topic, *payload;
    size_t len;
};

extern struct pub pubs[256];
extern size_t n_pubs;
/* The broker refuses the retained $SYS status. */
extern bool refuse_retained;

void clear_pubs(void);
void start_plugin(void);
void stop_plugin(void);
void setup(void);
void teardown(void);
void send_nocommit(const char *topic, const char *payload, size_t len);

/* Static: a global send() would stand in for libc's in every library of the executable. */
static inline void send(const char *topic, const char *payload)
{
    send_nocommit(topic, payload, strlen(payload));
    batch_tick(&core.batch, true);
}

bool is_uuid(const char *s, size_t len);
bool is_rfc3339(const char *s, size_t len);
bool is_now(long long ms);
void normalise(const char *in, size_t len, struct kedge_buf *out);
void expect_pub(size_t i, const char *topic, const char *want);
void expect_count(size_t n);
void expect_get(const char *twins_json);
const char *db_text(const char *sql);

/* The tests of test_devicetwin_other.c, added to the suite's TCases. */
void devicetwin_failure_tests(TCase *failure);
void devicetwin_other_tests(TCase *other);
void devicetwin_regression_tests(TCase *regressions);

#endif
