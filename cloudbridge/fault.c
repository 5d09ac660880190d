/* Test-only fault injection: the bridge kills itself at a chosen point of the delivery path.
 *
 * KEDGE_BRIDGE_CRASH_AT=after_receive[:N] | after_send[:N], read once at start. The N-th time
 * (default 1) the bridge passes that point it raises SIGKILL, which is what kill -9 does, but
 * at an instant a test could never hit from outside:
 *   after_receive  an outbox entry from the plugin is in the open SQLite batch, neither
 *                  committed nor acked to the plugin (relay.c);
 *   after_send     an entry was written to the cloud link and not yet marked sent or deleted
 *                  from the bridge's cloud queue (edgehub.c).
 * tests/integration/test_durability.c uses it to prove that neither point loses a message.
 * Unset (the only production setting) it costs one branch per message.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "kedge/log.h"
#include "kedge/util.h"

static struct {
    bool armed;
    enum fault_point point;
    long n, seen;
} fault;

static const char *const names[] = {
    [FAULT_AFTER_RECEIVE] = "after_receive", [FAULT_AFTER_SEND] = "after_send"};

int fault_init(void)
{
    const char *v = getenv("KEDGE_BRIDGE_CRASH_AT");
    size_t i, len;

    memset(&fault, 0, sizeof(fault));
    if (!v || !*v)
        return 0;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        len = strlen(names[i]);
        if (strncmp(v, names[i], len) || (v[len] && v[len] != ':'))
            continue;
        fault.n = 1;
        if (v[len] == ':' && kedge_parse_long(v + len + 1, 1, 1000000000L, &fault.n) < 0)
            break;
        fault.point = (enum fault_point)i;
        fault.armed = true;
        kedge_log(KEDGE_LOG_WARN,
                  "fault: KEDGE_BRIDGE_CRASH_AT=%s armed: SIGKILL at pass %ld of "
                  "%s (test-only)",
                  v, fault.n, names[i]);
        return 0;
    }
    kedge_log(KEDGE_LOG_ERR,
              "fault: KEDGE_BRIDGE_CRASH_AT='%s' is not after_receive[:N] or "
              "after_send[:N]",
              v);
    return -1;
}

void fault_point(enum fault_point p)
{
    if (!fault.armed || p != fault.point || ++fault.seen < fault.n)
        return;
    kedge_log(KEDGE_LOG_WARN, "fault: %s pass %ld reached: SIGKILL", names[p], fault.seen);
    (void)raise(SIGKILL);
}
