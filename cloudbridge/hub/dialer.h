/* What a TLS websocket client to cloudcore needs besides its protocol: the client vhost that
 * carries the node's identity (CA, certificate, key files), made again when a file changes,
 * and the capped, jittered reconnect back-off. EdgeHub (edgehub.c) and EdgeStream's tunnel
 * (stream/tunnel.c) each hold one, so both links see a rotated certificate and back off alike.
 */
#ifndef KEDGE_HUB_DIALER_H
#define KEDGE_HUB_DIALER_H

#include <stdint.h>
#include <time.h>

#include <libwebsockets.h>

struct dialer {
    /* set by the owner before the first dialer_vhost; strings are borrowed */
    const char *who; /* log prefix and vhost name: "edgehub", "stream" */
    const char *ca_file, *cert_file, *key_file;
    const struct lws_protocols *protocol; /* the only protocol of the vhost */
    void *user;                           /* lws_vhost_user of the vhost: the owner */
    long backoff_initial_ms, backoff_max_ms;
    /* kept by the dialer */
    struct lws_vhost *vhost;
    time_t cert_mtime;
    unsigned attempts; /* failed attempts since the last good connection (owner resets) */
    struct lws_protocols list[2]; /* lws keeps a pointer to the vhost's list */
};

/* The client vhost for d's files, made (again) when missing or a file is newer. 0, -ENOENT
 * (a file missing) or KEDGE_ECONFIG (lws refused them); both logged, the caller retries. */
int dialer_vhost(struct dialer *d, struct lws_context *lws);
/* The next reconnect delay: initial * 2^attempts up to max, +-25% jitter so a fleet of nodes
 * does not reconnect in lockstep after a cloud restart. */
uint64_t dialer_backoff_ms(const struct dialer *d);

#endif
