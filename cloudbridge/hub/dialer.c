/* dialer.c: the TLS client vhost and the reconnect back-off (dialer.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dialer.h"
#include "kedge/err.h"
#include "kedge/log.h"

static bool readable(const char *path, time_t *mtime)
{
    struct stat st;

    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    if (st.st_mtime > *mtime)
        *mtime = st.st_mtime;
    return true;
}

/* The vhost is made again when a certificate file changes (rotation) and on every failure, so
 * fixing the files is enough. */
int dialer_vhost(struct dialer *d, struct lws_context *lws)
{
    struct lws_context_creation_info info;
    time_t mtime = 0;

    if (!readable(d->ca_file, &mtime) || !readable(d->cert_file, &mtime) ||
        !readable(d->key_file, &mtime)) {
        kedge_log(KEDGE_LOG_ERR,
                  "%s: TLS files missing (tls_ca_file=%s tls_cert_file=%s tls_key_file=%s);"
                  " retrying",
                  d->who, d->ca_file, d->cert_file, d->key_file);
        return -ENOENT;
    }
    if (d->vhost && mtime == d->cert_mtime)
        return 0;
    if (d->vhost)
        lws_vhost_destroy(d->vhost);
    d->vhost = NULL;
    d->list[0] = *d->protocol;
    memset(&d->list[1], 0, sizeof(d->list[1]));
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = d->list;
    info.vhost_name = d->who;
    info.user = d->user; /* the protocol callback's way back to its owner */
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = d->ca_file;
    info.client_ssl_cert_filepath = d->cert_file;
    info.client_ssl_private_key_filepath = d->key_file;
    d->vhost = lws_create_vhost(lws, &info);
    if (!d->vhost) {
        kedge_log(KEDGE_LOG_ERR,
                  "%s: cannot use the TLS identity (ca=%s cert=%s key=%s): check that the "
                  "files are PEM and the key matches the certificate; retrying",
                  d->who, d->ca_file, d->cert_file, d->key_file);
        return KEDGE_ECONFIG;
    }
    d->cert_mtime = mtime;
    return 0;
}

uint64_t dialer_backoff_ms(const struct dialer *d)
{
    uint64_t b = (uint64_t)d->backoff_initial_ms, max = (uint64_t)d->backoff_max_ms;
    unsigned i;

    for (i = 0; i < d->attempts && b < max; i++)
        b *= 2;
    if (b > max)
        b = max;
    return b * 3 / 4 + (uint64_t)(rand() % (int)(b / 2 + 1));
}
