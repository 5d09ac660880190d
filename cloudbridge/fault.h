/* Test-only crash points of the delivery path (fault.c says where they are and why); the
 * durability tests set KEDGE_BRIDGE_CRASH_AT. Never set in production.
 */
#ifndef KEDGE_FAULT_H
#define KEDGE_FAULT_H

/* KEDGE_BRIDGE_CRASH_AT=after_receive[:N]|after_send[:N]: SIGKILL at the N-th pass of that
 * point (fault.c says where they are). Never set in production. */
enum fault_point { FAULT_AFTER_RECEIVE, FAULT_AFTER_SEND };
/* Read the variable once. 0, or -1 for a value that is not understood (logged). */
int fault_init(void);
void fault_point(enum fault_point p);

#endif
