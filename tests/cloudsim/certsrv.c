/* certsrv.c: CloudHub's HTTPS certificate service, the :10002 endpoints a joining edge uses
 * (docs/kubeedge-wire.md §4.3; cloudcore's cloud/pkg/cloudhub/servers/httpserver/server.go).
 *
 * Owns the token this cloudsim hands out, the HTTP side of the certsrv vhost and the signing of
 * node certificates. The vhost itself (TLS with the server certificate, a client certificate
 * asked for but not required) is made by main.c; the CA comes from certs.c.
 *
 *   GET /ca.crt    -> the CA certificate, DER. No client identity needed (the edge checks the
 *                     sha256 against its token).
 *   GET /edge.crt  -> body: a CSR, DER; headers NodeName and either Authorization: Bearer <JWT>
 *                     (join) or a TLS client certificate (rotation). Answers the signed
 *                     certificate, DER, valid for --cert-lifetime-s. 401 with a text body for a
 *                     bad token or identity, 400 for a bad CSR.
 *
 * The token is keadm gettoken's: "<sha256 hex of the CA DER>.<JWT>", the JWT HS256 with the CA
 * private key's DER (SEC1 for our EC CA, as Go's x509.MarshalECPrivateKey) as the secret and
 * only an `exp` claim (24 h, 2 x tokenRefreshDuration). It is logged at start-up
 * ("cloudsim: token=...") and written to <certs>/token (0600).
 *
 * The request body of a GET: lws 4.1.6 sets rx_content_length from Content-Length for every
 * method (lws_http_action), not only POST/PUT/PATCH, so a GET with a body is delivered through
 * LWS_CALLBACK_HTTP_BODY / HTTP_BODY_COMPLETION like a POST's. test_durability's join tests
 * exercise exactly that with kedge-bridge's certmgr, so an lws that stops doing it fails them.
 *
 * The client certificate: the vhost asks for one (SSL_VERIFY_PEER) but the handshake accepts
 * any or none (LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION returns 0); the verdict
 * is per request, here, with X509_verify_cert against the CA, because /ca.crt and a join must
 * work without one. OpenSSL's EVP, X509 and HMAC APIs only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/util.h"

#define BODY_MAX_BYTES (64u * 1024) /* a P-256 CSR is a few hundred bytes */
#define TOKEN_LIFETIME_S (24 * 3600)
#define NODE_MAX 256

struct certsrv {
    const struct cloudsim_config *cfg;
    X509 *ca;
    EVP_PKEY *ca_key;
    X509_STORE *store;     /* the CA, to verify rotation clients */
    unsigned char *ca_der; /* GET /ca.crt */
    size_t ca_der_len;
    unsigned char *secret; /* the JWT's HMAC key: the CA key's DER */
    size_t secret_len;
    char *token; /* "<hash>.<jwt>" */
    unsigned long signed_total;
};

/* lws per-session data: one HTTP transaction at a time. */
struct creq {
    char path[128];
    bool get;
    bool active, too_big;
    struct kedge_buf body;
    struct kedge_buf resp; /* LWS_PRE bytes of headroom, then the body */
    size_t sent;
};

/* ---- base64url (RFC 4648 §5, no padding), over OpenSSL's base64 ------------------------------ */

static int b64url_encode(struct kedge_buf *out, const unsigned char *in, size_t len)
{
    size_t cap = 4 * ((len + 2) / 3) + 1, i, n;
    unsigned char *tmp = kedge_malloc(cap);
    int rc;

    if (!tmp)
        return -ENOMEM;
    n = (size_t)EVP_EncodeBlock(tmp, in, (int)len);
    while (n && tmp[n - 1] == '=')
        n--;
    for (i = 0; i < n; i++)
        tmp[i] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i];
    rc = kedge_buf_append(out, tmp, n);
    kedge_free(tmp);
    return rc;
}

/* Decode into out (NUL-terminated for JSON). Returns 0, -EINVAL, -ENOMEM. */
static int b64url_decode(const char *in, size_t len, struct kedge_buf *out)
{
    size_t padded = (len + 3) / 4 * 4, i;
    unsigned char *std = NULL, *bin = NULL;
    int n, rc = -EINVAL;

    if (len % 4 == 1)
        return -EINVAL;
    std = kedge_malloc(padded + 1);
    bin = kedge_malloc(padded + 1);
    if (!std || !bin) {
        rc = -ENOMEM;
        goto out;
    }
    for (i = 0; i < len; i++) {
        char c = in[i];
        if (c == '+' || c == '/' || c == '=')
            goto out; /* not the url alphabet */
        std[i] = (unsigned char)(c == '-' ? '+' : c == '_' ? '/' : c);
    }
    for (; i < padded; i++)
        std[i] = '=';
    n = EVP_DecodeBlock(bin, std, (int)padded);
    if (n < 0)
        goto out;
    n -= (int)(padded - len); /* EVP_DecodeBlock counts the padding as zero bytes */
    rc = n < 0 ? -EINVAL : kedge_buf_append(out, bin, (size_t)n);
    if (rc == 0)
        rc = kedge_buf_putc(out, '\0');
    if (rc == 0)
        out->len--;
out:
    kedge_free(std);
    kedge_free(bin);
    return rc;
}

/* ---- the token ------------------------------------------------------------------------------- */

static int hmac_b64url(const unsigned char *key, size_t key_len, const char *data, size_t len,
                       struct kedge_buf *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, len, md, &md_len))
        return -EINVAL;
    return b64url_encode(out, md, md_len);
}

int cloudsim_jwt_hs256(const void *key, size_t key_len, const char *header, const char *claims,
                       struct kedge_buf *out)
{
    struct kedge_buf sig = KEDGE_BUF_INIT;
    size_t start = out->len;
    int rc = -ENOMEM;

    if (b64url_encode(out, (const unsigned char *)header, strlen(header)) == 0 &&
        kedge_buf_putc(out, '.') == 0 &&
        b64url_encode(out, (const unsigned char *)claims, strlen(claims)) == 0)
        rc = hmac_b64url(key, key_len, out->data + start, out->len - start, &sig);
    if (rc == 0 && (kedge_buf_putc(out, '.') < 0 || kedge_buf_append(out, sig.data, sig.len) < 0))
        rc = -ENOMEM;
    kedge_buf_cleanup(&sig);
    return rc;
}

/* "<sha256 hex of the CA DER>.<header>.<claims>.<signature>" with exp = now + 24 h. */
static int make_token(struct certsrv *cs)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    struct kedge_buf t = KEDGE_BUF_INIT;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0, i;
    char claims[64];
    int rc = -ENOMEM;

    if (EVP_Digest(cs->ca_der, cs->ca_der_len, md, &md_len, EVP_sha256(), NULL) != 1)
        return -EINVAL;
    for (i = 0; i < md_len; i++)
        if (kedge_buf_printf(&t, "%02x", md[i]) < 0)
            goto out;
    if (kedge_buf_putc(&t, '.') < 0)
        goto out;
    (void)snprintf(claims, sizeof(claims), "{\"exp\":%lld}",
                   (long long)time(NULL) + TOKEN_LIFETIME_S);
    rc = cloudsim_jwt_hs256(cs->secret, cs->secret_len, header, claims, &t);
    if (rc == 0 && !(cs->token = kedge_buf_take(&t, NULL)))
        rc = -ENOMEM;
out:
    kedge_buf_cleanup(&t);
    return rc;
}

/* Verify a JWT (the Bearer value) as cloudcore's token check does: HS256 with our secret, an
 * `exp` in the future. Returns NULL when good, else why not (for the 401 body). */
static const char *jwt_check(const struct certsrv *cs, const char *jwt, size_t len)
{
    const char *dot1 = memchr(jwt, '.', len), *dot2, *end = jwt + len;
    struct kedge_buf want = KEDGE_BUF_INIT, part = KEDGE_BUF_INIT;
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *v;
    const char *why = NULL;
    int64_t exp = 0;

    dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1)) : NULL;
    if (!dot1 || !dot2 || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1))) {
        why = "the token is not a JWT (header.claims.signature)";
        goto out;
    }
    if (hmac_b64url(cs->secret, cs->secret_len, jwt, (size_t)(dot2 - jwt), &want) < 0) {
        why = "cannot compute the signature";
        goto out;
    }
    if (want.len != (size_t)(end - dot2 - 1) || CRYPTO_memcmp(want.data, dot2 + 1, want.len)) {
        why = "signature mismatch: the token was not issued by this cloud's CA";
        goto out;
    }
    if (b64url_decode(jwt, (size_t)(dot1 - jwt), &part) < 0 ||
        kedge_json_parse(part.data, part.len, &doc) < 0) {
        why = "the JWT header does not decode";
        goto out;
    }
    v = kedge_json_get(kedge_jdoc_root(doc), "alg");
    if (!v || v->type != KEDGE_JSTR || strcmp(v->str, "HS256")) {
        why = "the JWT is not HS256";
        goto out;
    }
    kedge_jdoc_free(doc);
    doc = NULL;
    kedge_buf_reset(&part);
    if (b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &part) < 0 ||
        kedge_json_parse(part.data, part.len, &doc) < 0 ||
        kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), "exp"), &exp) < 0 || !exp) {
        why = "the JWT claims do not decode or have no exp";
        goto out;
    }
    if (exp <= (int64_t)time(NULL))
        why = "the token has expired";
out:
    kedge_jdoc_free(doc);
    kedge_buf_cleanup(&want);
    kedge_buf_cleanup(&part);
    return why;
}

/* ---- set-up ---------------------------------------------------------------------------------- */

static void log_ossl(const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();

    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    else
        (void)snprintf(buf, sizeof(buf), "no OpenSSL error queued");
    kedge_log(KEDGE_LOG_ERR, "cloudsim: certsrv: %s failed err=%s", what, buf);
    ERR_clear_error();
}

static int write_token_file(const struct certsrv *cs)
{
    struct kedge_buf path = KEDGE_BUF_INIT;
    size_t len = strlen(cs->token);
    int fd, rc = 0;

    if (kedge_buf_printf(&path, "%s/token", cs->cfg->certs_dir) < 0)
        return -ENOMEM;
    fd = open(path.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, cs->token, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
        rc = -errno;
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        kedge_log(KEDGE_LOG_ERR, "cloudsim: certsrv: cannot write path=%s err=%s", path.data,
                  strerror(-rc));
    kedge_buf_cleanup(&path);
    return rc;
}

int certsrv_new(const struct cloudsim_config *cfg, const struct cloudsim_certs *certs,
                struct certsrv **out)
{
    struct certsrv *cs = kedge_calloc(1, sizeof(*cs));
    unsigned char *p;
    FILE *f;
    int n, rc = -EINVAL;

    *out = NULL;
    if (!cs)
        return -ENOMEM;
    cs->cfg = cfg;
    f = fopen(certs->ca_crt, "r");
    cs->ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        (void)fclose(f);
    f = fopen(certs->ca_key, "r");
    cs->ca_key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        (void)fclose(f);
    if (!cs->ca || !cs->ca_key) {
        log_ossl("loading the CA");
        goto fail;
    }
    n = i2d_X509(cs->ca, NULL);
    cs->ca_der = n > 0 ? kedge_malloc((size_t)n) : NULL;
    if (!cs->ca_der)
        goto oom;
    p = cs->ca_der;
    cs->ca_der_len = (size_t)i2d_X509(cs->ca, &p);
    /* i2d_PrivateKey writes the "traditional" form: SEC1 ECPrivateKey for an EC key */
    n = i2d_PrivateKey(cs->ca_key, NULL);
    cs->secret = n > 0 ? kedge_malloc((size_t)n) : NULL;
    if (!cs->secret)
        goto oom;
    p = cs->secret;
    cs->secret_len = (size_t)i2d_PrivateKey(cs->ca_key, &p);
    cs->store = X509_STORE_new();
    if (!cs->store || X509_STORE_add_cert(cs->store, cs->ca) != 1) {
        log_ossl("the CA store");
        goto fail;
    }
    rc = make_token(cs);
    if (rc < 0)
        goto fail;
    rc = write_token_file(cs);
    if (rc < 0)
        goto fail;
    kedge_log(KEDGE_LOG_NOTICE, "cloudsim: token=%s", cs->token);
    *out = cs;
    return 0;
oom:
    rc = -ENOMEM;
fail:
    certsrv_free(cs);
    return rc;
}

void certsrv_free(struct certsrv *cs)
{
    if (!cs)
        return;
    X509_free(cs->ca);
    EVP_PKEY_free(cs->ca_key);
    X509_STORE_free(cs->store);
    kedge_free(cs->ca_der);
    if (cs->secret)
        OPENSSL_cleanse(cs->secret, cs->secret_len);
    kedge_free(cs->secret);
    kedge_free(cs->token);
    kedge_free(cs);
}

const char *certsrv_token(const struct certsrv *cs)
{
    return cs->token;
}

/* ---- /edge.crt --------------------------------------------------------------------------------
 */

/* The subject's first entry of nid into out ("" when absent). */
static void name_entry(const X509_NAME *name, int nid, char *out, size_t out_len)
{
    if (X509_NAME_get_text_by_NID((X509_NAME *)name, nid, out, (int)out_len) < 0)
        out[0] = '\0';
}

/* O=system:nodes, CN=system:node:<node> (cloudcore's rotation check and CSR expectations). */
static bool names_node(const X509_NAME *name, const char *node)
{
    char o[64], cn[NODE_MAX + 16], want[NODE_MAX + 16];

    name_entry(name, NID_organizationName, o, sizeof(o));
    name_entry(name, NID_commonName, cn, sizeof(cn));
    (void)snprintf(want, sizeof(want), "system:node:%s", node);
    return !strcmp(o, "system:nodes") && !strcmp(cn, want);
}

/* Rotation: the TLS client certificate must chain to the CA and name the node. */
static const char *client_cert_check(struct certsrv *cs, struct lws *wsi, const char *node)
{
    SSL *ssl = lws_get_ssl(wsi);
    X509 *peer = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
    X509_STORE_CTX *ctx = NULL;
    const char *why = NULL;
    static char buf[160];

    if (!peer)
        return "no Authorization token and no client certificate";
    ctx = X509_STORE_CTX_new();
    if (!ctx || X509_STORE_CTX_init(ctx, cs->store, peer, NULL) != 1) {
        why = "cannot verify the client certificate";
    } else if (X509_verify_cert(ctx) != 1) {
        (void)snprintf(buf, sizeof(buf), "client certificate: %s",
                       X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        why = buf;
    } else if (!names_node(X509_get_subject_name(peer), node)) {
        why = "client certificate is not O=system:nodes, CN=system:node:<NodeName>";
    }
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_free(peer);
    return why;
}

static int add_ext(X509 *crt, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ex;
    int ok;

    X509V3_set_ctx(&ctx, NULL, crt, NULL, NULL, 0);
    ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex)
        return -1;
    ok = X509_add_ext(crt, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

/* Sign a verified CSR: client-auth certificate for --cert-lifetime-s. DER into out. */
static int sign_csr(struct certsrv *cs, X509_REQ *req, struct kedge_buf *out, char serial_hex[80])
{
    X509 *crt = X509_new();
    BIGNUM *bn = BN_new();
    X509V3_CTX ctx;
    X509_EXTENSION *aki = NULL;
    unsigned char *der = NULL;
    char *hex = NULL;
    int n, rc = -1;

    serial_hex[0] = '\0';
    if (!crt || !bn || !X509_set_version(crt, X509_VERSION_3) ||
        !BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt)) ||
        !X509_gmtime_adj(X509_getm_notBefore(crt), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(crt), cs->cfg->cert_lifetime_s) ||
        !X509_set_subject_name(crt, X509_REQ_get_subject_name(req)) ||
        !X509_set_issuer_name(crt, X509_get_subject_name(cs->ca)) ||
        !X509_set_pubkey(crt, X509_REQ_get0_pubkey(req)))
        goto out;
    /* edgecore's default ExtKeyUsages: client auth only (docs/kubeedge-wire.md §4.3 step 5) */
    if (add_ext(crt, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(crt, NID_key_usage, "critical,digitalSignature,keyEncipherment") < 0 ||
        add_ext(crt, NID_ext_key_usage, "clientAuth") < 0)
        goto out;
    X509V3_set_ctx(&ctx, cs->ca, crt, NULL, NULL, 0);
    aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    if (!aki || !X509_add_ext(crt, aki, -1))
        goto out;
    if (X509_sign(crt, cs->ca_key, EVP_sha256()) <= 0)
        goto out;
    n = i2d_X509(crt, &der);
    if (n <= 0 || kedge_buf_append(out, der, (size_t)n) < 0)
        goto out;
    hex = BN_bn2hex(bn);
    if (hex)
        (void)snprintf(serial_hex, 80, "%s", hex);
    rc = 0;
out:
    if (rc < 0)
        log_ossl("signing a node certificate");
    OPENSSL_free(hex);
    OPENSSL_free(der);
    X509_EXTENSION_free(aki);
    BN_free(bn);
    X509_free(crt);
    return rc;
}

/* A header into out (trimmed); "" when absent or too long. name: "nodename:" for a custom one
 * (lws keeps unknown names lower-cased, with the colon), NULL to use token. */
static void header(struct lws *wsi, const char *name, enum lws_token_indexes token, char *out,
                   size_t out_len)
{
    int n;
    size_t a = 0, z;

    out[0] = '\0';
    if (name) {
        n = lws_hdr_custom_length(wsi, name, (int)strlen(name));
        if (n < 0 || (size_t)n >= out_len ||
            lws_hdr_custom_copy(wsi, out, (int)out_len, name, (int)strlen(name)) < 0)
            out[0] = '\0';
    } else if (lws_hdr_total_length(wsi, token) <= 0 ||
               lws_hdr_total_length(wsi, token) >= (int)out_len ||
               lws_hdr_copy(wsi, out, (int)out_len, token) < 0) {
        out[0] = '\0';
    }
    z = strlen(out);
    while (a < z && (out[a] == ' ' || out[a] == '\t'))
        a++;
    while (z > a && (out[z - 1] == ' ' || out[z - 1] == '\t' || out[z - 1] == '\r'))
        z--;
    memmove(out, out + a, z - a);
    out[z - a] = '\0';
}

static unsigned edge_crt(struct certsrv *cs, struct lws *wsi, struct creq *r, struct kedge_buf *out,
                         const char **ctype)
{
    char node[NODE_MAX], auth[4096], serial[80];
    const unsigned char *p = (const unsigned char *)r->body.data;
    X509_REQ *req = NULL;
    const char *why, *how;
    unsigned status = 400;

    header(wsi, "nodename:", WSI_TOKEN_COUNT, node, sizeof(node));
    header(wsi, NULL, WSI_TOKEN_HTTP_AUTHORIZATION, auth, sizeof(auth));
    if (!*node || strchr(node, '/')) {
        why = "the NodeName header is required";
        goto refuse;
    }
    if (*auth) {
        how = "token";
        if (strncmp(auth, "Bearer ", 7) != 0)
            why = "Authorization is not a Bearer token";
        else
            why = jwt_check(cs, auth + 7, strlen(auth + 7));
    } else {
        how = "certificate";
        why = client_cert_check(cs, wsi, node);
    }
    if (why) {
        status = 401;
        goto refuse;
    }
    if (r->too_big || !r->body.len || !(req = d2i_X509_REQ(NULL, &p, (long)r->body.len)) ||
        p != (const unsigned char *)r->body.data + r->body.len) {
        why = "the body is not a DER certificate request";
        goto refuse;
    }
    if (X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1) {
        why = "the certificate request's signature does not verify";
        goto refuse;
    }
    if (!names_node(X509_REQ_get_subject_name(req), node)) {
        why = "the certificate request must name O=system:nodes, CN=system:node:<NodeName>";
        goto refuse;
    }
    if (sign_csr(cs, req, out, serial) < 0) {
        why = "signing failed";
        status = 500;
        goto refuse;
    }
    cs->signed_total++;
    kedge_log(KEDGE_LOG_NOTICE,
              "cloudsim: certsrv: signed node=%s by=%s serial=%s lifetime_s=%ld total=%lu", node,
              how, serial, cs->cfg->cert_lifetime_s, cs->signed_total);
    X509_REQ_free(req);
    ERR_clear_error();
    *ctype = "application/octet-stream";
    return 200;
refuse:
    ERR_clear_error();
    X509_REQ_free(req);
    kedge_log(KEDGE_LOG_NOTICE, "cloudsim: certsrv: refused /edge.crt node=%s status=%u: %s",
              *node ? node : "-", status, why);
    kedge_buf_reset(out);
    (void)kedge_buf_puts(out, why);
    *ctype = "text/plain";
    return status;
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

static void creq_reset(struct creq *r)
{
    kedge_buf_cleanup(&r->body);
    kedge_buf_cleanup(&r->resp);
    memset(r, 0, sizeof(*r));
}

static int respond(struct lws *wsi, struct certsrv *cs, struct creq *r)
{
    unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
                                      *end = hdr + sizeof(hdr) - 1;
    struct kedge_buf body = KEDGE_BUF_INIT;
    const char *ctype = "text/plain";
    unsigned status;

    if (!cs) {
        status = 500;
        (void)kedge_buf_puts(&body, "no certificate service");
    } else if (!r->get) {
        status = 405;
        (void)kedge_buf_puts(&body, "method not allowed");
    } else if (!strcmp(r->path, "/ca.crt")) {
        status = 200;
        ctype = "application/octet-stream";
        (void)kedge_buf_append(&body, cs->ca_der, cs->ca_der_len);
    } else if (!strcmp(r->path, "/edge.crt")) {
        status = edge_crt(cs, wsi, r, &body, &ctype);
    } else {
        status = 404;
        (void)kedge_buf_puts(&body, "not found");
    }
    kedge_log(KEDGE_LOG_INFO, "cloudsim: certsrv: GET %s -> %u", r->path, status);
    kedge_buf_reset(&r->resp);
    if (kedge_buf_reserve(&r->resp, LWS_PRE + body.len + 1) < 0) {
        kedge_buf_cleanup(&body);
        return -1;
    }
    r->resp.len = LWS_PRE;
    if (body.len)
        (void)kedge_buf_append(&r->resp, body.data, body.len);
    kedge_buf_cleanup(&body);
    if (lws_add_http_common_headers(wsi, status, ctype, (lws_filepos_t)(r->resp.len - LWS_PRE), &p,
                                    end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    r->sent = LWS_PRE;
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_writeable(struct lws *wsi, struct creq *r)
{
    size_t n;

    if (!r->active || r->sent > r->resp.len)
        return 0;
    n = r->resp.len - r->sent;
    if (n &&
        lws_write(wsi, (unsigned char *)r->resp.data + r->sent, n, LWS_WRITE_HTTP_FINAL) < (int)n)
        return -1;
    r->sent = r->resp.len + 1;
    r->active = false;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int certsrv_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                            size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    struct certsrv *cs = vh ? lws_vhost_user(vh) : NULL;
    struct creq *r = user;

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
        return 0; /* any or none: /ca.crt and joins have none; the verdict is per request */

    case LWS_CALLBACK_HTTP:
        creq_reset(r);
        r->active = true;
        r->get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
        if (in && strlen(in) < sizeof(r->path))
            memcpy(r->path, in, strlen(in) + 1);
        else
            memcpy(r->path, "/?", 3);
        if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
            char cl[32];
            if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
                strtol(cl, NULL, 10) > 0)
                return 0; /* a body follows (even on a GET): answered at BODY_COMPLETION */
        }
        return respond(wsi, cs, r);

    case LWS_CALLBACK_HTTP_BODY:
        if (!r->active || r->too_big)
            return 0;
        if (r->body.len + len > BODY_MAX_BYTES) {
            r->too_big = true;
            kedge_buf_cleanup(&r->body);
            return 0;
        }
        return len && kedge_buf_append(&r->body, in, len) < 0 ? -1 : 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return r->active ? respond(wsi, cs, r) : 0;

    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(wsi, r);

    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (r)
            creq_reset(r);
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols certsrv_protocols[] = {
    {"cloudsim-certsrv", certsrv_callback, sizeof(struct creq), (size_t)16 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};
