/* Certificates as edgecore gets them (docs/kubeedge-wire.md §4.3): the one-command join and the
 * rotation at 70-90 % of the certificate's lifetime.
 *
 * Join: GET https://{cloud}:10002/ca.crt without verification, check its sha256 against the
 * token's first part, make an ECDSA P-256 key and a CSR (CN=system:node:{node},
 * O=system:nodes), GET /edge.crt (a GET with a body: the CSR DER) with the Bearer JWT and the
 * NodeName header, verifying the server with the CA just fetched, then save CA, certificate
 * (PEM CERTIFICATE) and key (PEM EC PRIVATE KEY, 0600). Nothing is written until everything
 * succeeded, and each file is written to a temporary name, fsynced and renamed, so a failed
 * join leaves the certificate directory as it was.
 *
 * Rotation runs the same CSR exchange presenting the current certificate instead of a token.
 * It is blocking I/O, so the daemon runs it in a child process (certmgr_rotate_async) and the
 * lws loop only waits for the child's exit status.
 *
 * OpenSSL's EVP and X509 APIs only; no hand-written crypto.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certmgr.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/util.h"

#define HTTP_TIMEOUT_S 15
#define HTTP_MAX_BODY (1 << 20)

static void log_ssl(const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();

    ERR_error_string_n(e, buf, sizeof(buf));
    kedge_log(KEDGE_LOG_ERR, "certmgr: %s: %s", what, e ? buf : "failed");
    ERR_clear_error();
}

/* ---- a small blocking HTTPS client (join is a one-shot command; rotation runs in a child) -- */

static int tcp_connect(const char *host, int port)
{
    struct addrinfo hints = {0}, *res = NULL, *ai;
    struct timeval tv = {HTTP_TIMEOUT_S, 0};
    char service[16];
    int fd = -1;

    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof(service), "%d", port);
    if (getaddrinfo(host, service, &hints, &res) != 0) {
        kedge_log(KEDGE_LOG_ERR, "certmgr: cannot resolve %s", host);
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        kedge_log(KEDGE_LOG_ERR, "certmgr: cannot connect to %s:%d: %s", host, port,
                  strerror(errno));
    return fd;
}

struct https_req {
    const char *host;
    int port;
    const char *path;
    const char *ca_file;              /* verify the server against this CA file, or */
    X509 *ca;                         /* against this one (join: the CA just fetched); neither:
                                       * do not verify (only /ca.crt) */
    const char *cert_file, *key_file; /* client certificate (rotation), or NULL */
    const char *bearer;               /* Authorization: Bearer ..., or NULL */
    const char *node_name;            /* NodeName header, or NULL */
    const unsigned char *body;
    size_t body_len;
};

static SSL_CTX *make_ctx(const struct https_req *rq)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (rq->ca_file || rq->ca) {
        if (rq->ca_file ? SSL_CTX_load_verify_locations(ctx, rq->ca_file, NULL) != 1
                        : X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), rq->ca) != 1)
            goto fail;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (rq->cert_file && (SSL_CTX_use_certificate_file(ctx, rq->cert_file, SSL_FILETYPE_PEM) != 1 ||
                          SSL_CTX_use_PrivateKey_file(ctx, rq->key_file, SSL_FILETYPE_PEM) != 1))
        goto fail;
    return ctx;
fail:
    log_ssl("TLS setup");
    SSL_CTX_free(ctx);
    return NULL;
}

/* The server must be who we dialled: IP addresses against IP SANs, names against DNS SANs. */
static int expect_host(SSL *ssl, const char *host)
{
    X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
    unsigned char tmp[16];
    int is_ip = inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;

    (void)SSL_set_tlsext_host_name(ssl, host);
    return is_ip ? X509_VERIFY_PARAM_set1_ip_asc(p, host) : X509_VERIFY_PARAM_set1_host(p, host, 0);
}

/* Read the whole response (the server closes: Connection: close). *status, body owned. */
static int read_response(SSL *ssl, int *status, struct kedge_buf *body)
{
    struct kedge_buf raw = KEDGE_BUF_INIT;
    char chunk[4096], *hdr_end;
    int n, rc = -1;

    while ((n = SSL_read(ssl, chunk, sizeof(chunk))) > 0) {
        if (raw.len + (size_t)n > HTTP_MAX_BODY || kedge_buf_append(&raw, chunk, (size_t)n) < 0)
            goto out;
    }
    if (!raw.data || sscanf(raw.data, "HTTP/1.%*d %d", status) != 1)
        goto out;
    hdr_end = strstr(raw.data, "\r\n\r\n");
    if (!hdr_end)
        goto out;
    rc = kedge_buf_append(body, hdr_end + 4, raw.len - (size_t)(hdr_end + 4 - raw.data)) < 0 ? -1
                                                                                             : 0;
out:
    kedge_buf_cleanup(&raw);
    return rc;
}

/* GET (with an optional body, as cloudcore's /edge.crt wants). Returns 0 with *status and the
 * body, or -1 (logged). */
static int https_get(const struct https_req *rq, int *status, struct kedge_buf *body)
{
    struct kedge_buf req = KEDGE_BUF_INIT;
    SSL_CTX *ctx = make_ctx(rq);
    SSL *ssl = NULL;
    int fd = -1, rc = -1;

    if (!ctx)
        return -1;
    fd = tcp_connect(rq->host, rq->port);
    if (fd < 0)
        goto out;
    ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 ||
        ((rq->ca_file || rq->ca) && expect_host(ssl, rq->host) != 1))
        goto ssl_fail;
    if (SSL_connect(ssl) != 1)
        goto ssl_fail;
    if (kedge_buf_printf(&req,
                         "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n"
                         "Content-Length: %zu\r\n",
                         rq->path, rq->host, rq->port, rq->body_len) < 0 ||
        (rq->bearer && kedge_buf_printf(&req, "Authorization: Bearer %s\r\n", rq->bearer) < 0) ||
        (rq->node_name && kedge_buf_printf(&req, "NodeName: %s\r\n", rq->node_name) < 0) ||
        kedge_buf_puts(&req, "\r\n") < 0 ||
        (rq->body_len && kedge_buf_append(&req, rq->body, rq->body_len) < 0))
        goto out;
    if (SSL_write(ssl, req.data, (int)req.len) != (int)req.len)
        goto ssl_fail;
    rc = read_response(ssl, status, body);
    if (rc < 0)
        kedge_log(KEDGE_LOG_ERR, "certmgr: bad HTTP answer from %s:%d%s", rq->host, rq->port,
                  rq->path);
    goto out;
ssl_fail:
    log_ssl(rq->ca_file || rq->ca ? "TLS handshake (server verified against the cloud's CA)"
                                  : "TLS handshake");
out:
    kedge_buf_cleanup(&req);
    if (ssl)
        SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    return rc;
}

/* ---- keys, CSRs, files --------------------------------------------------------------------- */

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    if (!k)
        log_ssl("ECDSA P-256 key");
    return k;
}

/* CSR DER with edgecore's subject (certmanager.go). */
static int make_csr(EVP_PKEY *key, const char *node, unsigned char **der, int *len)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    char cn[300];
    int rc = -1;

    *der = NULL;
    snprintf(cn, sizeof(cn), "system:node:%s", node);
    if (!req || !name ||
        !X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"CN", -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(name, "ST", MBSTRING_ASC, (const unsigned char *)"Zhejiang", -1,
                                    -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "L", MBSTRING_ASC, (const unsigned char *)"Hangzhou", -1,
                                    -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"system:nodes",
                                    -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key) ||
        !X509_REQ_sign(req, key, EVP_sha256()))
        goto out;
    *len = i2d_X509_REQ(req, der);
    rc = *len > 0 ? 0 : -1;
out:
    if (rc < 0)
        log_ssl("certificate request");
    X509_NAME_free(name);
    X509_REQ_free(req);
    return rc;
}

static int sha256_hex(const unsigned char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;

    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return -1;
    for (i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int fsync_dir(const char *path)
{
    char *copy = kedge_strdup(path);
    int fd, rc = -1;

    if (!copy)
        return -1;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    kedge_free(copy);
    return rc;
}

static int mkdirs(const char *path)
{
    char *copy = kedge_strdup(path), *p;

    if (!copy)
        return -1;
    for (p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
            kedge_free(copy);
            return -1;
        }
        *p = '/';
    }
    kedge_free(copy);
    return 0;
}

/* Write PEM text to path.tmp (mode), fsync, leave it for commit_file. */
static int stage_pem(const char *path, const char *pem, size_t len, mode_t mode)
{
    char tmp[4096];
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (mkdirs(path) < 0)
        return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0 || write(fd, pem, len) != (ssize_t)len || fchmod(fd, mode) < 0 || fsync(fd) < 0) {
        kedge_log(KEDGE_LOG_ERR, "certmgr: cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return -1;
    }
    return close(fd);
}

static int commit_file(const char *path)
{
    char tmp[4096];

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (rename(tmp, path) < 0 || fsync_dir(path) < 0) {
        kedge_log(KEDGE_LOG_ERR, "certmgr: cannot install %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void drop_staged(const char *path)
{
    char tmp[4096];

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
}

/* DER certificate -> PEM text in b. */
static int der_to_pem(const unsigned char *der, size_t len, struct kedge_buf *b)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;
    int rc = -1;

    if (x && bio && PEM_write_bio_X509(bio, x) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0)
        rc = kedge_buf_append(b, data, (size_t)n);
    X509_free(x);
    BIO_free(bio);
    return rc;
}

static int key_to_pem(EVP_PKEY *key, struct kedge_buf *b)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;
    int rc = -1;

    /* "traditional" = SEC1 "EC PRIVATE KEY", what edgecore writes */
    if (bio && PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL) == 1 &&
        (n = BIO_get_mem_data(bio, &data)) > 0)
        rc = kedge_buf_append(b, data, (size_t)n);
    BIO_free(bio);
    return rc;
}

/* The CSR exchange shared by join and rotation: new key, CSR, /edge.crt. On success the
 * certificate and key PEMs are in cert_pem and key_pem. */
static int request_cert(const struct certmgr_req *cr, const char *ca_file, X509 *ca,
                        const char *bearer, struct kedge_buf *cert_pem, struct kedge_buf *key_pem)
{
    struct kedge_buf body = KEDGE_BUF_INIT;
    struct https_req rq = {0};
    EVP_PKEY *key = new_key();
    unsigned char *csr = NULL;
    int len = 0, status = 0, rc = -1;

    if (!key || make_csr(key, cr->node_name, &csr, &len) < 0)
        goto out;
    rq.host = cr->cloud_host;
    rq.port = cr->https_port;
    rq.path = "/edge.crt";
    rq.ca_file = ca_file;
    rq.ca = ca;
    rq.bearer = bearer;
    rq.node_name = cr->node_name;
    rq.cert_file = bearer ? NULL : cr->cert_file;
    rq.key_file = bearer ? NULL : cr->key_file;
    rq.body = csr;
    rq.body_len = (size_t)len;
    if (https_get(&rq, &status, &body) < 0)
        goto out;
    if (status != 200) {
        kedge_log(KEDGE_LOG_ERR,
                  "certmgr: the cloud refused the certificate request (HTTP %d): "
                  "%.*s",
                  status, (int)(body.len > 300 ? 300 : body.len), body.data ? body.data : "");
        goto out;
    }
    if (der_to_pem((const unsigned char *)body.data, body.len, cert_pem) < 0) {
        kedge_log(KEDGE_LOG_ERR, "certmgr: the cloud's answer is not a DER certificate");
        goto out;
    }
    rc = key_to_pem(key, key_pem);
out:
    OPENSSL_free(csr);
    EVP_PKEY_free(key);
    kedge_buf_cleanup(&body);
    return rc;
}

static int install(const char *const paths[], const struct kedge_buf *const pems[],
                   const mode_t modes[], int n)
{
    int i;

    for (i = 0; i < n; i++) {
        if (stage_pem(paths[i], pems[i]->data, pems[i]->len, modes[i]) < 0) {
            while (i-- > 0)
                drop_staged(paths[i]);
            return -1;
        }
    }
    for (i = 0; i < n; i++)
        if (commit_file(paths[i]) < 0)
            return -1;
    return 0;
}

int certmgr_join(const struct certmgr_req *cr, const char *token)
{
    struct kedge_buf ca = KEDGE_BUF_INIT, ca_pem = KEDGE_BUF_INIT, cert = KEDGE_BUF_INIT,
                     key = KEDGE_BUF_INIT;
    struct https_req rq = {0};
    const char *dot = strchr(token, '.');
    const unsigned char *der;
    X509 *ca_x509 = NULL;
    char hash[65];
    int status = 0, rc = -1;

    if (!dot || dot - token != 64) {
        kedge_log(KEDGE_LOG_ERR, "certmgr: the token is not <sha256 of the CA>.<JWT> (keadm "
                                 "gettoken prints one)");
        return KEDGE_ECONFIG;
    }
    rq.host = cr->cloud_host;
    rq.port = cr->https_port;
    rq.path = "/ca.crt";
    if (https_get(&rq, &status, &ca) < 0)
        goto out;
    if (status != 200) {
        kedge_log(KEDGE_LOG_ERR, "certmgr: GET /ca.crt answered HTTP %d", status);
        goto out;
    }
    if (sha256_hex((const unsigned char *)ca.data, ca.len, hash) < 0 ||
        strncmp(hash, token, 64) != 0) {
        kedge_log(KEDGE_LOG_ERR,
                  "certmgr: the cloud's CA (sha256 %s) does not match the token "
                  "(%.64s): wrong token or not the cloud you meant; nothing saved",
                  hash, token);
        goto out;
    }
    der = (const unsigned char *)ca.data;
    ca_x509 = d2i_X509(NULL, &der, (long)ca.len);
    if (!ca_x509 || der_to_pem((const unsigned char *)ca.data, ca.len, &ca_pem) < 0) {
        kedge_log(KEDGE_LOG_ERR, "certmgr: /ca.crt is not a DER certificate");
        goto out;
    }
    /* the CSR exchange verifies the server with this CA, from memory: a failed join must
     * leave the certificate directory as it was, not even a staged CA in it */
    if (request_cert(cr, NULL, ca_x509, dot + 1, &cert, &key) < 0)
        goto out;
    {
        const char *paths[] = {cr->ca_file, cr->cert_file, cr->key_file};
        const struct kedge_buf *pems[] = {&ca_pem, &cert, &key};
        const mode_t modes[] = {0644, 0644, 0600};
        rc = install(paths, pems, modes, 3);
    }
    if (rc == 0)
        kedge_log(KEDGE_LOG_NOTICE, "certmgr: joined: CA %s, certificate %s, key %s", cr->ca_file,
                  cr->cert_file, cr->key_file);
out:
    X509_free(ca_x509);
    kedge_buf_cleanup(&ca);
    kedge_buf_cleanup(&ca_pem);
    kedge_buf_cleanup(&cert);
    kedge_buf_cleanup(&key);
    return rc < 0 ? KEDGE_ECONFIG : 0;
}

int certmgr_rotate(const struct certmgr_req *cr)
{
    struct kedge_buf cert = KEDGE_BUF_INIT, key = KEDGE_BUF_INIT;
    int rc = request_cert(cr, cr->ca_file, NULL, NULL, &cert, &key);

    if (rc == 0) {
        const char *paths[] = {cr->key_file, cr->cert_file};
        const struct kedge_buf *pems[] = {&key, &cert};
        const mode_t modes[] = {0600, 0644};
        rc = install(paths, pems, modes, 2);
    }
    kedge_buf_cleanup(&cert);
    kedge_buf_cleanup(&key);
    return rc;
}

/* ---- expiry -------------------------------------------------------------------------------- */

int certmgr_validity(const char *cert_file, int64_t *not_before, int64_t *not_after)
{
    FILE *f = fopen(cert_file, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    struct tm tm;
    int rc = -1;

    if (f)
        fclose(f);
    if (!x)
        return -1;
    if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1) {
        *not_before = (int64_t)timegm(&tm);
        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
            *not_after = (int64_t)timegm(&tm);
            rc = 0;
        }
    }
    X509_free(x);
    return rc;
}

/* Rotation time: a jittered 70-90 % of the lifetime, as edgecore's certificate manager. */
int64_t certmgr_rotation_due(int64_t not_before, int64_t not_after)
{
    int64_t life = not_after - not_before;

    return not_before + life * (70 + rand() % 21) / 100;
}

pid_t certmgr_rotate_async(const struct certmgr_req *cr)
{
    pid_t pid = fork();

    if (pid == 0) {
        /* The child needs none of the parent's descriptors, and must not keep the meta DB's
         * lock or the broker's socket alive if the bridge restarts meanwhile. */
        for (int fd = 3; fd < 1024; fd++)
            (void)close(fd);
        _exit(certmgr_rotate(cr) == 0 ? 0 : 1);
    }
    if (pid < 0)
        kedge_log(KEDGE_LOG_ERR, "certmgr: fork: %s", strerror(errno));
    return pid;
}
