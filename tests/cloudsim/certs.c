/* certs.c: the certificates kedge-cloudsim serves with and hands to the edge.
 *
 * Owns the six files in the certificate directory (cloudsim.h lists them). A file set that is
 * present and consistent is reused, so a test or an operator can point the bridge at the same
 * directory across runs; anything missing, unreadable or not chaining to the CA is made again.
 * Only OpenSSL's EVP and X509 APIs are used (EC_KEY_* is deprecated in OpenSSL 3; spec
 * fact 32), and nothing is shelled out. Loading the files into TLS contexts is lws's business
 * (main.c gives it the paths); this file never touches a socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/log.h"

#define CA_DAYS 3650
#define LEAF_DAYS 3650     /* test certificates: long enough that no test run sees them expire */
#define READ_MAX (1 << 20) /* certificates and keys are a few hundred bytes */

struct keypair {
    X509 *crt;
    EVP_PKEY *key;
};

static void keypair_cleanup(struct keypair *kp)
{
    X509_free(kp->crt);
    EVP_PKEY_free(kp->key);
    kp->crt = NULL;
    kp->key = NULL;
}

/* Log OpenSSL's error queue once, under what we were doing; returns KEDGE_ECONFIG. */
static int ossl_fail(const char *what, const char *path)
{
    unsigned long e;
    char buf[256];

    e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    else
        (void)snprintf(buf, sizeof(buf), "no OpenSSL error queued");
    kedge_log(KEDGE_LOG_ERR, "cloudsim: certs: %s failed path=%s err=%s", what, path ? path : "-",
              buf);
    ERR_clear_error();
    return KEDGE_ECONFIG;
}

int certs_read_file(const char *path, char **out, size_t *len)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char chunk[4096];
    ssize_t n;
    int fd, rc = 0;

    *out = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        if (b.len + (size_t)n > READ_MAX) {
            rc = -EFBIG;
            break;
        }
        if (kedge_buf_append(&b, chunk, (size_t)n) < 0) {
            rc = -ENOMEM;
            break;
        }
    }
    (void)close(fd);
    if (rc == 0 && !(*out = kedge_buf_take(&b, len)))
        rc = -ENOMEM;
    kedge_buf_cleanup(&b);
    return rc;
}

/* ---- loading --------------------------------------------------------------------------------- */

/* Load a certificate and its key. Returns 0, -ENOENT when either file is missing, or
 * KEDGE_ECONFIG when they do not parse or do not belong together (logged at notice: the caller
 * makes new ones). */
static int keypair_load(const char *crt_path, const char *key_path, struct keypair *kp)
{
    char *text = NULL;
    size_t len;
    BIO *bio;
    int rc;

    memset(kp, 0, sizeof(*kp));
    if (access(crt_path, F_OK) != 0 || access(key_path, F_OK) != 0)
        return -ENOENT;

    rc = certs_read_file(crt_path, &text, &len);
    if (rc < 0)
        return rc;
    bio = BIO_new_mem_buf(text, (int)len);
    kp->crt = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    kedge_free(text);

    rc = certs_read_file(key_path, &text, &len);
    if (rc < 0) {
        keypair_cleanup(kp);
        return rc;
    }
    bio = BIO_new_mem_buf(text, (int)len);
    kp->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(text, len);
    kedge_free(text);

    if (!kp->crt || !kp->key || X509_check_private_key(kp->crt, kp->key) != 1) {
        ERR_clear_error();
        kedge_log(KEDGE_LOG_NOTICE,
                  "cloudsim: certs: unusable pair crt=%s key=%s, making a new one", crt_path,
                  key_path);
        keypair_cleanup(kp);
        return KEDGE_ECONFIG;
    }
    return 0;
}

/* The subject's CN into out (empty when there is none). */
static void subject_cn(X509 *crt, char *out, size_t out_len)
{
    int n =
        X509_NAME_get_text_by_NID(X509_get_subject_name(crt), NID_commonName, out, (int)out_len);
    if (n < 0)
        out[0] = '\0';
}

/* A leaf is reusable when its key matches, the CA signed it, and (edge) it names the node. */
static int leaf_load(const char *crt_path, const char *key_path, const struct keypair *ca,
                     const char *want_cn, struct keypair *kp)
{
    char cn[256];
    int rc = keypair_load(crt_path, key_path, kp);

    if (rc < 0)
        return rc;
    if (X509_verify(kp->crt, ca->key) != 1) {
        ERR_clear_error();
        kedge_log(KEDGE_LOG_NOTICE, "cloudsim: certs: %s is not signed by the CA, remaking it",
                  crt_path);
        keypair_cleanup(kp);
        return KEDGE_ECONFIG;
    }
    if (want_cn) {
        subject_cn(kp->crt, cn, sizeof(cn));
        if (strcmp(cn, want_cn) != 0) {
            kedge_log(KEDGE_LOG_NOTICE, "cloudsim: certs: %s names cn=%s, want cn=%s, remaking it",
                      crt_path, cn, want_cn);
            keypair_cleanup(kp);
            return KEDGE_ECONFIG;
        }
    }
    return 0;
}

/* ---- making ---------------------------------------------------------------------------------- */

static int add_ext(X509 *crt, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ex;
    int ok;

    X509V3_set_ctx(&ctx, issuer, crt, NULL, NULL, 0);
    ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex)
        return -1;
    ok = X509_add_ext(crt, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

static int set_serial(X509 *crt)
{
    BIGNUM *bn = BN_new();
    int ok = bn && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt));

    BN_free(bn);
    return ok ? 0 : -1;
}

struct cert_spec {
    const char *o, *cn; /* subject */
    bool ca;
    const char *eku; /* extendedKeyUsage, NULL for the CA */
    const char *san; /* subjectAltName or NULL */
    long days;
};

/* Make a key and a certificate for it. issuer NULL: self-signed. */
static int keypair_make(const struct cert_spec *s, const struct keypair *issuer, struct keypair *kp)
{
    X509_NAME *name;

    memset(kp, 0, sizeof(*kp));
    kp->key = EVP_EC_gen("P-256");
    kp->crt = X509_new();
    if (!kp->key || !kp->crt)
        goto fail;
    name = X509_get_subject_name(kp->crt);
    if (!X509_set_version(kp->crt, X509_VERSION_3) || set_serial(kp->crt) < 0 ||
        !X509_gmtime_adj(X509_getm_notBefore(kp->crt), -3600) ||
        !X509_time_adj_ex(X509_getm_notAfter(kp->crt), (int)s->days, 0, NULL) ||
        (s->o && !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)s->o,
                                             -1, -1, 0)) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)s->cn, -1, -1,
                                    0) ||
        !X509_set_issuer_name(kp->crt, issuer ? X509_get_subject_name(issuer->crt) : name) ||
        !X509_set_pubkey(kp->crt, kp->key))
        goto fail;

    if (s->ca) {
        if (add_ext(kp->crt, kp->crt, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
            add_ext(kp->crt, kp->crt, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
            add_ext(kp->crt, kp->crt, NID_subject_key_identifier, "hash") < 0 ||
            add_ext(kp->crt, kp->crt, NID_authority_key_identifier, "keyid:always") < 0)
            goto fail;
    } else {
        if (add_ext(kp->crt, issuer->crt, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
            add_ext(kp->crt, issuer->crt, NID_key_usage, "critical,digitalSignature") < 0 ||
            add_ext(kp->crt, issuer->crt, NID_ext_key_usage, s->eku) < 0 ||
            add_ext(kp->crt, issuer->crt, NID_subject_key_identifier, "hash") < 0 ||
            add_ext(kp->crt, issuer->crt, NID_authority_key_identifier, "keyid:always") < 0 ||
            (s->san && add_ext(kp->crt, issuer->crt, NID_subject_alt_name, s->san) < 0))
            goto fail;
    }
    if (X509_sign(kp->crt, issuer ? issuer->key : kp->key, EVP_sha256()) <= 0)
        goto fail;
    return 0;
fail:
    keypair_cleanup(kp);
    return ossl_fail("making a certificate", s->cn);
}

/* Write PEM text to path through a temporary file and a rename, so a crash never leaves a
 * half-written key behind. */
static int write_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
    struct kedge_buf tmp = KEDGE_BUF_INIT;
    size_t off = 0;
    ssize_t n;
    int fd, rc = 0;

    if (kedge_buf_printf(&tmp, "%s.tmp", path) < 0)
        return -ENOMEM;
    fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    while (off < len) {
        n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        off += (size_t)n;
    }
    if (rc == 0 && fchmod(fd, mode) < 0) /* the umask may have narrowed or widened nothing */
        rc = -errno;
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp.data, path) < 0)
        rc = -errno;
    if (rc < 0)
        (void)unlink(tmp.data);
out:
    if (rc < 0)
        kedge_log(KEDGE_LOG_ERR, "cloudsim: certs: cannot write path=%s err=%s", path,
                  strerror(-rc));
    kedge_buf_cleanup(&tmp);
    return rc;
}

static int keypair_save(const struct keypair *kp, const char *crt_path, const char *key_path)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long len;
    int rc;

    if (!bio)
        return -ENOMEM;
    /* SEC1 "EC PRIVATE KEY", the form edgecore's certmanager writes (docs/kubeedge-wire.md §4.3
     * step 6). */
    if (!PEM_write_bio_PrivateKey_traditional(bio, kp->key, NULL, NULL, 0, NULL, NULL)) {
        BIO_free(bio);
        return ossl_fail("encoding a key", key_path);
    }
    len = BIO_get_mem_data(bio, &data);
    rc = write_atomic(key_path, data, (size_t)len, 0600);
    (void)BIO_reset(bio);
    if (rc == 0) {
        if (!PEM_write_bio_X509(bio, kp->crt)) {
            BIO_free(bio);
            return ossl_fail("encoding a certificate", crt_path);
        }
        len = BIO_get_mem_data(bio, &data);
        rc = write_atomic(crt_path, data, (size_t)len, 0644);
    }
    BIO_free(bio);
    return rc;
}

/* ---- the set --------------------------------------------------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    char *p;

    if (kedge_buf_printf(&b, "%s/%s", dir, name) < 0)
        return NULL;
    p = kedge_buf_take(&b, NULL);
    kedge_buf_cleanup(&b);
    return p;
}

void certs_cleanup(struct cloudsim_certs *c)
{
    kedge_free(c->ca_crt);
    kedge_free(c->ca_key);
    kedge_free(c->server_crt);
    kedge_free(c->server_key);
    kedge_free(c->edge_crt);
    kedge_free(c->edge_key);
    memset(c, 0, sizeof(*c));
}

/* Reuse the leaf at crt/key when it is good, else make and save a new one. */
static int ensure_leaf(const struct cert_spec *s, const struct keypair *ca, bool force,
                       const char *crt, const char *key, const char *want_cn)
{
    struct keypair kp;
    int rc = force ? -ENOENT : leaf_load(crt, key, ca, want_cn, &kp);

    if (rc == 0) {
        keypair_cleanup(&kp);
        return 0;
    }
    if (rc != -ENOENT && rc != KEDGE_ECONFIG)
        return rc;
    rc = keypair_make(s, ca, &kp);
    if (rc == 0)
        rc = keypair_save(&kp, crt, key);
    if (rc == 0)
        kedge_log(KEDGE_LOG_NOTICE, "cloudsim: certs: made %s cn=%s", crt, s->cn);
    keypair_cleanup(&kp);
    return rc;
}

int certs_ensure(const char *dir, const char *node, struct cloudsim_certs *out)
{
    struct kedge_buf edge_cn = KEDGE_BUF_INIT;
    struct keypair ca = {NULL, NULL};
    bool new_ca = false;
    int rc;

    memset(out, 0, sizeof(*out));
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        kedge_log(KEDGE_LOG_ERR, "cloudsim: certs: cannot create dir=%s err=%s", dir,
                  strerror(errno));
        return rc;
    }
    out->ca_crt = path_join(dir, "rootCA.crt");
    out->ca_key = path_join(dir, "rootCA.key");
    out->server_crt = path_join(dir, "server.crt");
    out->server_key = path_join(dir, "server.key");
    out->edge_crt = path_join(dir, "edge.crt");
    out->edge_key = path_join(dir, "edge.key");
    if (!out->ca_crt || !out->ca_key || !out->server_crt || !out->server_key || !out->edge_crt ||
        !out->edge_key || kedge_buf_printf(&edge_cn, "system:node:%s", node) < 0) {
        rc = -ENOMEM;
        goto out;
    }

    rc = keypair_load(out->ca_crt, out->ca_key, &ca);
    if (rc == -ENOENT || rc == KEDGE_ECONFIG) {
        static const struct cert_spec ca_spec = {"kedge", "kedge-cloudsim CA", true, NULL, NULL,
                                                 CA_DAYS};
        rc = keypair_make(&ca_spec, NULL, &ca);
        if (rc == 0)
            rc = keypair_save(&ca, out->ca_crt, out->ca_key);
        if (rc == 0)
            kedge_log(KEDGE_LOG_NOTICE, "cloudsim: certs: made a new CA %s", out->ca_crt);
        new_ca = true;
    }
    if (rc < 0)
        goto out;

    {
        const struct cert_spec server = {
            "kedge",  "kedge-cloudsim", false, "serverAuth", "IP:127.0.0.1,DNS:localhost",
            LEAF_DAYS};
        const struct cert_spec edge = {"system:nodes", edge_cn.data, false,
                                       "clientAuth",   NULL,         LEAF_DAYS};

        rc = ensure_leaf(&server, &ca, new_ca, out->server_crt, out->server_key, NULL);
        if (rc == 0)
            rc = ensure_leaf(&edge, &ca, new_ca, out->edge_crt, out->edge_key, edge_cn.data);
    }
out:
    keypair_cleanup(&ca);
    kedge_buf_cleanup(&edge_cn);
    return rc;
}
