/* The node certificate: keadm join's bootstrap with a token, and rotation with the current
 * certificate (CloudHub's certificate endpoint, docs/kubeedge-wire.md §4.3). Blocking calls, for
 * the join command and for the child process certwatch.c runs; nothing here touches the event loop.
 */
#ifndef KEDGE_CERTMGR_H
#define KEDGE_CERTMGR_H

#include <stdint.h>
#include <sys/types.h>

struct certmgr_req {
    const char *cloud_host;
    int https_port; /* CloudHub's HTTPS port, 10002 */
    const char *node_name;
    const char *ca_file, *cert_file, *key_file;
};

/* keadm join's certificate bootstrap (docs/kubeedge-wire.md §4.3). Blocking: for the join command
 * only. Returns 0, or KEDGE_ECONFIG with the reason logged; nothing is written unless it all
 * worked. */
int certmgr_join(const struct certmgr_req *cr, const char *token);
/* A new key and certificate, presenting the current one. Blocking. 0 or -1 (logged). */
int certmgr_rotate(const struct certmgr_req *cr);
/* certmgr_rotate in a child process, so the loop never blocks: returns its pid or -1. */
pid_t certmgr_rotate_async(const struct certmgr_req *cr);
/* Validity of a PEM certificate in Unix seconds. 0 or -1. */
int certmgr_validity(const char *cert_file, int64_t *not_before, int64_t *not_after);
/* When to rotate: a jittered 70-90 % of the lifetime (Unix seconds). */
int64_t certmgr_rotation_due(int64_t not_before, int64_t not_after);

#endif
