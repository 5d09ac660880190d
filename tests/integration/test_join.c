/* Joining a cloudcore with one command, and certificate rotation (docs/kubeedge-wire.md §4.3).
 *
 * kedge-cloudsim serves cloudcore's :10002 endpoints (--https-port, tests/cloudsim/certsrv.c)
 * and writes the join token for its CA to <certs>/token. The tests run the real
 * `kedge-bridge join` as a program and check its result with OpenSSL: the certificate's subject
 * and key type, who signed it, the key file's mode; a wrong token or a CA that does not match the
 * token must leave the certificate directory without a file and say why. Rotation runs the whole
 * node (mosquitto + plugin from harness.h, kedge-bridge from bridgectl.h) on certificates that
 * live 20 s: the bridge must renew at 70-90 % of that, present its current certificate instead
 * of a token, reconnect with the new one, and the link must carry traffic afterwards.
 *
 * Only 127.0.0.1 is used. Waits are deadlines on a condition.
 */
#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bridgectl.h"
#include "chain.h"
#include "harness.h"
#include "proc.h"
#include "jsoncmp.h"
#include "kedge/json.h"
#include "simctl.h"
#include "testsupport.h"

#define PAUSE_MS 20 /* between two polls of a deadline loop */

#define WAIT_MS 10000
#define NODE "kedge-node"
#define BRIDGE_PASS "j0in-Secret"
#define LIFETIME_S 20

static struct simctl *sim;
static struct kh_broker *broker;
static struct bridgectl *bridge;
static char work[256]; /* this test's directory: the joined node's certificates and config */

/* ---- small things ------------------------------------------------------------------------- */

/* A port nothing listens on now (bind to 0 and read it back); cloudsim is retried if it
 * loses the race. */
static int free_port(void)
{
    int port = kt_free_port();

    ck_assert_msg(port > 0, "no free port: %d", port);
    return port;
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");

    (void)snprintf(work, sizeof(work), "%s/kedge-join-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(work));
}

static void teardown(void)
{
    struct chain_exit x;

    chain_down(&bridge, &broker, &sim, false, &x);
    if (!getenv("KEDGE_KEEP_TMP"))
        (void)kh_rmtree(work);
    chain_assert_clean(&x);
}

/* cloudsim with the certificate service on a free port. */
static void start_cloud(long lifetime_s)
{
    char port[16], life[24];
    const char *extra[] = {"--https-port", port, "--cert-lifetime-s", life, NULL};
    struct simctl_opts so = {0};
    int attempt, rc = -1;

    (void)snprintf(life, sizeof(life), "%ld", lifetime_s);
    so.node = NODE;
    so.extra_args = extra;
    for (attempt = 0; attempt < 5 && rc != 0; attempt++) {
        (void)snprintf(port, sizeof(port), "%d", free_port());
        rc = simctl_start(&so, &sim);
        if (rc != 0) {
            simctl_free(sim);
            sim = NULL;
        }
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(simctl_https_port(sim), atoi(port));
}

static char *cloud_token(void)
{
    size_t len;
    char *t = slurp(simctl_cert_path(sim, "token"), &len);

    ck_assert_msg(t != NULL, "cloudsim wrote no token");
    t[strcspn(t, "\r\n")] = '\0';
    ck_assert_msg(strlen(t) > 65 && t[64] == '.', "not <hash>.<JWT>: %s", t);
    return t;
}

/* ---- running `kedge-bridge join` --------------------------------------------------------- */

struct join_run {
    int status; /* exit code, 128 + signal, -1 when it had to be killed */
    char *log;  /* its stderr and stdout */
};

static void run_join(const char *token, const char *certs, const char *conf, struct join_run *r)
{
    char https[16], wss[16], log_path[512];
    const char *argv[] = {KEDGE_BRIDGE_PATH, "join", "--cloud",      "127.0.0.1", "--token", token,
                          "--node",          NODE,   "--certs",      certs,       "-c",      conf,
                          "--port",          wss,    "--https-port", https,       NULL};
    struct kt_spawn sp = {.argv = argv, .log_path = log_path};
    struct kt_proc p = KT_PROC_INIT;
    size_t len;

    (void)snprintf(https, sizeof(https), "%d", simctl_https_port(sim));
    (void)snprintf(wss, sizeof(wss), "%d", simctl_wss_port(sim));
    (void)snprintf(log_path, sizeof(log_path), "%s/join.log", work);
    (void)unlink(log_path); /* this run's output only */
    ck_assert_int_eq(kt_proc_spawn(&p, &sp), 0);
    r->status = -1;
    if (kt_proc_wait_exit(&p, kh_scale_ms(30000)) == 0)
        r->status = p.exit_status;
    else
        (void)kt_proc_kill9(&p);
    r->log = slurp(log_path, &len);
    ck_assert_ptr_nonnull(r->log);
    fprintf(stderr, "join: exit %d\n%s", r->status, r->log);
}

/* ---- what a join leaves ------------------------------------------------------------------ */

static int files_found;

static int count_file(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_F) {
        fprintf(stderr, "join: left behind: %s\n", path);
        files_found++;
    }
    return 0;
}

/* Regular files under dir (a missing dir has none). */
static int files_under(const char *dir)
{
    files_found = 0;
    if (access(dir, F_OK) == 0)
        ck_assert_int_eq(nftw(dir, count_file, 16, FTW_PHYS), 0);
    return files_found;
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

    if (f)
        fclose(f);
    ck_assert_msg(x != NULL, "%s is not a PEM certificate", path);
    return x;
}

static char *serial_of(X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    char *copy;

    ck_assert_ptr_nonnull(hex);
    copy = strdup(hex);
    OPENSSL_free(hex);
    BN_free(bn);
    return copy;
}

static int64_t time_of(const ASN1_TIME *t)
{
    struct tm tm;

    ck_assert_int_eq(ASN1_TIME_to_tm(t, &tm), 1);
    return (int64_t)timegm(&tm);
}

/* The joined files: node certificate for NODE (P-256, signed by the cloud's CA, client auth),
 * its key (mode 0600, SEC1 PEM, matching), the CA as the cloud serves it. */
static void check_identity(const char *certs)
{
    char ca_path[512], crt_path[512], key_path[512], cn[128], o[64], group[32];
    X509 *ca, *crt, *cloud_ca;
    EVP_PKEY *key, *pub;
    struct stat st;
    size_t len;
    char *key_pem;
    FILE *f;

    (void)snprintf(ca_path, sizeof(ca_path), "%s/ca/rootCA.crt", certs);
    (void)snprintf(crt_path, sizeof(crt_path), "%s/certs/server.crt", certs);
    (void)snprintf(key_path, sizeof(key_path), "%s/certs/server.key", certs);
    ca = read_cert(ca_path);
    crt = read_cert(crt_path);
    cloud_ca = read_cert(simctl_cert_path(sim, "rootCA.crt"));
    ck_assert_msg(X509_cmp(ca, cloud_ca) == 0, "the saved CA is not the cloud's");

    ck_assert_int_gt(
        X509_NAME_get_text_by_NID(X509_get_subject_name(crt), NID_commonName, cn, sizeof(cn)), 0);
    ck_assert_str_eq(cn, "system:node:" NODE);
    ck_assert_int_gt(
        X509_NAME_get_text_by_NID(X509_get_subject_name(crt), NID_organizationName, o, sizeof(o)),
        0);
    ck_assert_str_eq(o, "system:nodes");
    pub = X509_get0_pubkey(crt);
    ck_assert_int_eq(EVP_PKEY_get_base_id(pub), EVP_PKEY_EC);
    ck_assert_int_eq(EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL), 1);
    ck_assert_str_eq(group, "prime256v1");
    ck_assert_msg(X509_verify(crt, X509_get0_pubkey(ca)) == 1, "not signed by the cloud's CA");
    ck_assert_msg(X509_check_purpose(crt, X509_PURPOSE_SSL_CLIENT, 0) == 1, "not a client cert");

    ck_assert_int_eq(stat(key_path, &st), 0);
    ck_assert_msg((st.st_mode & 0777) == 0600, "key mode %o, expected 600", st.st_mode & 0777);
    key_pem = slurp(key_path, &len);
    ck_assert_ptr_nonnull(key_pem);
    ck_assert_msg(strstr(key_pem, "-----BEGIN EC PRIVATE KEY-----") != NULL, "not SEC1 PEM");
    free(key_pem);
    f = fopen(key_path, "r");
    key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    ck_assert_ptr_nonnull(key);
    ck_assert_msg(X509_check_private_key(crt, key) == 1, "the key does not match");
    EVP_PKEY_free(key);
    X509_free(ca);
    X509_free(crt);
    X509_free(cloud_ca);
}

/* ---- 1. a join from an empty directory ---------------------------------------------------- */

START_TEST(test_join_ok)
{
    char certs[512], conf[512], line[600];
    struct join_run r;
    char *token, *text;
    size_t len;

    start_cloud(365L * 24 * 3600);
    token = cloud_token();
    (void)snprintf(certs, sizeof(certs), "%s/kedge", work);
    (void)snprintf(conf, sizeof(conf), "%s/kedge-bridge.conf", work);
    run_join(token, certs, conf, &r);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strstr(r.log, "join: node " NODE " joined 127.0.0.1") != NULL, "no join line");
    check_identity(certs);
    /* the written configuration points at the cloud and the files */
    text = slurp(conf, &len);
    ck_assert_ptr_nonnull(text);
    (void)snprintf(line, sizeof(line), "\ncloud_port %d\n", simctl_wss_port(sim));
    ck_assert_msg(strstr(text, line) != NULL, "%s", text);
    (void)snprintf(line, sizeof(line), "\ncloud_https_port %d\n", simctl_https_port(sim));
    ck_assert_msg(strstr(text, line) != NULL, "%s", text);
    (void)snprintf(line, sizeof(line), "\ntls_key_file %s/certs/server.key\n", certs);
    ck_assert_msg(strstr(text, line) != NULL, "%s", text);
    ck_assert_msg(strstr(text, "\nnode_name " NODE "\n") != NULL, "%s", text);
    free(text);
    free(r.log);
    free(token);
}
END_TEST

/* ---- 2. refusals leave nothing behind ---------------------------------------------------- */

START_TEST(test_join_bad_token)
{
    char certs[512], conf[512];
    struct join_run r;
    char *token = NULL;
    size_t n;

    start_cloud(365L * 24 * 3600);
    token = cloud_token();
    /* right CA hash, a JWT signature the CA never made */
    n = strlen(token);
    token[n - 2] = token[n - 2] == 'A' ? 'B' : 'A';
    (void)snprintf(certs, sizeof(certs), "%s/kedge", work);
    (void)snprintf(conf, sizeof(conf), "%s/kedge-bridge.conf", work);
    run_join(token, certs, conf, &r);
    ck_assert_int_ne(r.status, 0);
    ck_assert_msg(strstr(r.log, "refused the certificate request (HTTP 401)") &&
                      strstr(r.log, "signature mismatch"),
                  "the log does not say why: %s", r.log);
    ck_assert_int_eq(files_under(certs), 0);
    ck_assert_int_ne(access(conf, F_OK), 0);
    free(r.log);
    free(token);
}
END_TEST

START_TEST(test_join_ca_mismatch)
{
    char certs[512], conf[512];
    struct join_run r;
    char *token;

    start_cloud(365L * 24 * 3600);
    token = cloud_token();
    /* a token for another CA: the hash part does not match what /ca.crt serves */
    memset(token, '0', 64);
    (void)snprintf(certs, sizeof(certs), "%s/kedge", work);
    (void)snprintf(conf, sizeof(conf), "%s/kedge-bridge.conf", work);
    run_join(token, certs, conf, &r);
    ck_assert_int_ne(r.status, 0);
    ck_assert_msg(strstr(r.log, "does not match the token") != NULL, "the log does not say why");
    ck_assert_int_eq(files_under(certs), 0);
    ck_assert_int_ne(access(conf, F_OK), 0);
    free(r.log);
    free(token);
}
END_TEST

/* ---- 2b. the certificate service's own checks, request by request ------------------------
 * A small blocking HTTPS client (OpenSSL, the server verified against the cloud's CA) sends what
 * a misbehaving or foreign node might. */

struct creq_out {
    int status;
    char body[4096];
    size_t len;
};

static void write_pem_files(EVP_PKEY *key, X509 *crt, const char *key_path, const char *crt_path)
{
    FILE *f = fopen(key_path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    f = fopen(crt_path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_X509(f, crt), 1);
    fclose(f);
}

/* GET path with headers and a body; client identity from cert/key files when given. */
static void cert_request(const char *path, const char *auth, const char *node,
                         const unsigned char *body, size_t body_len, const char *cert,
                         const char *key, struct creq_out *out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    struct sockaddr_in sa = {0};
    char head[4096], buf[8192];
    size_t got = 0;
    SSL *ssl;
    int fd, n, hl;
    char *eoh;

    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, simctl_cert_path(sim, "rootCA.crt"), NULL),
                     1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cert) {
        ck_assert_int_eq(SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM), 1);
        ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)simctl_https_port(sim));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ssl = SSL_new(ctx);
    ck_assert_ptr_nonnull(ssl);
    ck_assert_int_eq(SSL_set_fd(ssl, fd), 1);
    ck_assert_msg(SSL_connect(ssl) == 1, "TLS handshake with the certificate service failed");
    hl = snprintf(head, sizeof(head),
                  "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                  "Content-Length: %zu\r\n%s%s%s%s%s%s\r\n",
                  path, body_len, auth ? "Authorization: " : "", auth ? auth : "",
                  auth ? "\r\n" : "", node ? "NodeName: " : "", node ? node : "",
                  node ? "\r\n" : "");
    ck_assert_int_eq(SSL_write(ssl, head, hl), hl);
    if (body_len)
        ck_assert_int_eq(SSL_write(ssl, body, (int)body_len), (int)body_len);
    while (got < sizeof(buf) - 1 &&
           (n = SSL_read(ssl, buf + got, (int)(sizeof(buf) - 1 - got))) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    ck_assert_msg(sscanf(buf, "HTTP/1.%*d %d", &out->status) == 1, "not HTTP: %s", buf);
    eoh = memmem(buf, got, "\r\n\r\n", 4);
    ck_assert_ptr_nonnull(eoh);
    out->len = got - (size_t)(eoh + 4 - buf);
    memcpy(out->body, eoh + 4, out->len);
    out->body[out->len] = '\0';
}

/* A CSR DER for CN=system:node:<node>, O=system:nodes (and the key, when wanted). */
static unsigned char *make_csr(const char *node, int *len, EVP_PKEY **key_out)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_REQ_get_subject_name(req);
    unsigned char *der = NULL;
    char cn[128];

    (void)snprintf(cn, sizeof(cn), "system:node:%s", node);
    ck_assert_ptr_nonnull(key);
    ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                                (const unsigned char *)"system:nodes", -1, -1, 0),
                     1);
    ck_assert_int_eq(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
    ck_assert_int_gt(X509_REQ_sign(req, key, EVP_sha256()), 0);
    *len = i2d_X509_REQ(req, &der);
    ck_assert_int_gt(*len, 0);
    X509_REQ_free(req);
    if (key_out)
        *key_out = key;
    else
        EVP_PKEY_free(key);
    return der;
}

/* A certificate for CN=system:node:<node>, O=system:nodes, self-signed: from no CA the cloud
 * knows. */
static X509 *foreign_cert(EVP_PKEY *key, const char *node)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_get_subject_name(x);
    char cn[128];

    (void)snprintf(cn, sizeof(cn), "system:node:%s", node);
    ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
    ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -60));
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                                (const unsigned char *)"system:nodes", -1, -1, 0),
                     1);
    ck_assert_int_eq(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    ck_assert_int_eq(X509_set_issuer_name(x, name), 1);
    ck_assert_int_eq(X509_set_pubkey(x, key), 1);
    ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
    return x;
}

/* base64url without padding */
static void b64url(const unsigned char *in, size_t len, char *out, size_t out_len)
{
    unsigned char tmp[512];
    int n = EVP_EncodeBlock(tmp, in, (int)len), i, j = 0;

    ck_assert_int_lt(n, (int)out_len);
    for (i = 0; i < n && tmp[i] != '='; i++)
        out[j++] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : (char)tmp[i];
    out[j] = '\0';
}

/* "Bearer <JWT>" signed as cloudcore signs (HS256, the CA key's DER), with this exp. */
static void bearer_with_exp(long long exp, char *out, size_t out_len)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    char claims[64], h64[128], c64[128], s64[128], signing[300];
    unsigned int md_len = 0;
    EVP_PKEY *ca_key;
    FILE *f = fopen(simctl_cert_path(sim, "rootCA.key"), "r");
    int n;

    ck_assert_ptr_nonnull(f);
    ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ck_assert_ptr_nonnull(ca_key);
    n = i2d_PrivateKey(ca_key, &der);
    ck_assert_int_gt(n, 0);
    (void)snprintf(claims, sizeof(claims), "{\"exp\":%lld}", exp);
    b64url((const unsigned char *)header, strlen(header), h64, sizeof(h64));
    b64url((const unsigned char *)claims, strlen(claims), c64, sizeof(c64));
    (void)snprintf(signing, sizeof(signing), "%s.%s", h64, c64);
    ck_assert_ptr_nonnull(
        HMAC(EVP_sha256(), der, n, (const unsigned char *)signing, strlen(signing), md, &md_len));
    b64url(md, md_len, s64, sizeof(s64));
    (void)snprintf(out, out_len, "Bearer %s.%s", signing, s64);
    OPENSSL_free(der);
    EVP_PKEY_free(ca_key);
}

START_TEST(test_certsrv_checks)
{
    char auth[1024], good[1024], fkey[512], fcrt[512], ecrt[1024], ekey[1024];
    struct creq_out r;
    unsigned char *csr, *other_csr, *ca_der = NULL;
    X509 *ca, *signed_crt, *fx;
    EVP_PKEY *fk;
    const unsigned char *p;
    int len, other_len, ca_len;
    char *token;

    start_cloud(3600);
    token = cloud_token();
    (void)snprintf(good, sizeof(good), "Bearer %s", token + 65);
    csr = make_csr(NODE, &len, NULL);
    other_csr = make_csr("other-node", &other_len, NULL);

    /* /ca.crt: the CA, DER, no identity needed */
    cert_request("/ca.crt", NULL, NULL, NULL, 0, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ca = read_cert(simctl_cert_path(sim, "rootCA.crt"));
    ca_len = i2d_X509(ca, &ca_der);
    ck_assert_int_eq((int)r.len, ca_len);
    ck_assert_int_eq(memcmp(r.body, ca_der, r.len), 0);

    /* a join as certmgr makes it: a DER certificate for the CSR's key and subject */
    cert_request("/edge.crt", good, NODE, csr, (size_t)len, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    p = (const unsigned char *)r.body;
    signed_crt = d2i_X509(NULL, &p, (long)r.len);
    ck_assert_ptr_nonnull(signed_crt);
    ck_assert_int_eq(X509_verify(signed_crt, X509_get0_pubkey(ca)), 1);
    ck_assert_int_eq(
        time_of(X509_get0_notAfter(signed_crt)) - time_of(X509_get0_notBefore(signed_crt)), 3600);
    X509_free(signed_crt);

    /* refusals, each with a text body that says why */
    cert_request("/edge.crt", good, NULL, csr, (size_t)len, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_msg(strstr(r.body, "NodeName") != NULL, "%s", r.body);
    cert_request("/edge.crt", good, NODE, other_csr, (size_t)other_len, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_msg(strstr(r.body, "system:node:<NodeName>") != NULL, "%s", r.body);
    cert_request("/edge.crt", good, NODE, (const unsigned char *)"not a csr", 9, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 400);
    cert_request("/edge.crt", "Basic dXNlcjpwdw==", NODE, csr, (size_t)len, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 401);
    bearer_with_exp((long long)time(NULL) - 10, auth, sizeof(auth));
    cert_request("/edge.crt", auth, NODE, csr, (size_t)len, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_msg(strstr(r.body, "expired") != NULL, "%s", r.body);
    bearer_with_exp((long long)time(NULL) + 600, auth, sizeof(auth));
    cert_request("/edge.crt", auth, NODE, csr, (size_t)len, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200); /* the same signing, a fresh exp: accepted */

    /* rotation: no token; the TLS client certificate must chain to the CA and name the node */
    cert_request("/edge.crt", NULL, NODE, csr, (size_t)len, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 401);
    /* (simctl_cert_path's string lives until its next call: copy) */
    (void)snprintf(ecrt, sizeof(ecrt), "%s", simctl_cert_path(sim, "edge.crt"));
    (void)snprintf(ekey, sizeof(ekey), "%s", simctl_cert_path(sim, "edge.key"));
    cert_request("/edge.crt", NULL, NODE, csr, (size_t)len, ecrt, ekey, &r);
    ck_assert_int_eq(r.status, 200);
    cert_request("/edge.crt", NULL, "other-node", other_csr, (size_t)other_len, ecrt, ekey, &r);
    ck_assert_int_eq(r.status, 401); /* our certificate names another node */
    fk = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(fk);
    fx = foreign_cert(fk, NODE);
    (void)snprintf(fkey, sizeof(fkey), "%s/foreign.key", work);
    (void)snprintf(fcrt, sizeof(fcrt), "%s/foreign.crt", work);
    write_pem_files(fk, fx, fkey, fcrt);
    cert_request("/edge.crt", NULL, NODE, csr, (size_t)len, fcrt, fkey, &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_msg(strstr(r.body, "client certificate") != NULL, "%s", r.body);
    /* other paths */
    cert_request("/node/x", NULL, NULL, NULL, 0, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);

    X509_free(fx);
    EVP_PKEY_free(fk);
    X509_free(ca);
    OPENSSL_free(ca_der);
    OPENSSL_free(csr);
    OPENSSL_free(other_csr);
    free(token);
}
END_TEST

/* ---- 3. rotation at 70-90 % of a 20 s certificate --------------------------------------- */

static int64_t sim_state_int(const char *key)
{
    struct kedge_jdoc *doc = NULL;
    int64_t v = -1;
    int status = 0;

    if (simctl_http_json(sim, "GET", "/state?node=" NODE, NULL, &status, &doc) == 0 &&
        status == 200)
        (void)kedge_json_int64(kedge_json_get(kedge_jdoc_root(doc), key), &v);
    kedge_jdoc_free(doc);
    return v;
}

static bool sim_connected(void)
{
    struct kedge_jdoc *doc = NULL;
    const struct kedge_jval *v;
    bool up = false;
    int status = 0;

    if (simctl_http_json(sim, "GET", "/state?node=" NODE, NULL, &status, &doc) == 0 &&
        status == 200 && (v = kedge_json_get(kedge_jdoc_root(doc), "connected")) &&
        v->type == KEDGE_JBOOL)
        up = v->boolean;
    kedge_jdoc_free(doc);
    return up;
}

static void wait_session(int64_t min_sessions, int timeout_ms)
{
    int64_t deadline = kt_now_ms() + kh_scale_ms(timeout_ms);

    while (!(sim_connected() && sim_state_int("sessions_total") >= min_sessions)) {
        ck_assert_msg(kt_now_ms() < deadline, "no session %" PRId64 " at the cloud", min_sessions);
        kt_pause_ms(PAUSE_MS);
    }
}

/* Copy the joined configuration's "key value" lines into the bridge's. */
static void take_conf(const char *conf)
{
    char line[1024];
    FILE *f = fopen(conf, "r");

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        char *sp = strchr(line, ' ');
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || !sp)
            continue;
        *sp = '\0';
        ck_assert_int_eq(bridgectl_set(bridge, line, sp + 1), 0);
    }
    fclose(f);
}

/* An upload published now reaches the cloud. */
static void link_carries(const char *topic)
{
    struct kh_client *d = kh_client_new(kh_broker_port(broker), "join-dev", NULL, NULL, 4);
    int64_t deadline = kt_now_ms() + kh_scale_ms(WAIT_MS);
    struct kedge_buf resp = KEDGE_BUF_INIT;
    int status;

    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(kh_client_pub(d, topic, "{\"after\":\"rotation\"}", -1, 1, false), 0);
    for (;;) {
        kedge_buf_reset(&resp);
        ck_assert_int_eq(
            simctl_http(sim, "GET", "/received?skip_keepalive=1", NULL, &status, &resp), 0);
        if (resp.data && strstr(resp.data, topic))
            break;
        ck_assert_msg(kt_now_ms() < deadline, "%s never reached the cloud", topic);
        kt_pause_ms(PAUSE_MS);
    }
    kedge_buf_cleanup(&resp);
    kh_client_free(d);
}

START_TEST(test_rotation)
{
    struct kh_opt popts[2] = {{"bridge_password_file", NULL}, {NULL, NULL}};
    struct kh_broker_opts ko = {0};
    struct bridgectl_opts bo = {0};
    char certs[400], conf[512], crt_path[512], key_path[512];
    int64_t nb1, na1, na2, rotated_at, deadline;
    char *token, *serial1, *serial2;
    struct join_run r;
    struct stat st;
    X509 *x;
    long mark;

    start_cloud(LIFETIME_S);
    token = cloud_token();
    (void)snprintf(certs, sizeof(certs), "%s/kedge", work);
    (void)snprintf(conf, sizeof(conf), "%s/kedge-bridge.conf", work);
    (void)snprintf(crt_path, sizeof(crt_path), "%s/certs/server.crt", certs);
    (void)snprintf(key_path, sizeof(key_path), "%s/certs/server.key", certs);
    run_join(token, certs, conf, &r);
    ck_assert_int_eq(r.status, 0);
    free(r.log);
    x = read_cert(crt_path);
    serial1 = serial_of(x);
    nb1 = time_of(X509_get0_notBefore(x));
    na1 = time_of(X509_get0_notAfter(x));
    X509_free(x);
    ck_assert_int_eq(na1 - nb1, LIFETIME_S);

    /* the node, on the joined identity and configuration */
    bo.password = BRIDGE_PASS;
    ck_assert_int_eq(bridgectl_new(&bo, &bridge), 0);
    popts[0].value = bridgectl_password_path(bridge);
    ko.plugin_opts = popts;
    broker = kh_broker_start(&ko);
    ck_assert_ptr_nonnull(broker);
    take_conf(conf);
    ck_assert_int_eq(bridgectl_set_long(bridge, "broker_port", kh_broker_port(broker)), 0);
    ck_assert_int_eq(bridgectl_set(bridge, "rotate_certificates", "1"), 0);
    ck_assert_int_eq(bridgectl_set_long(bridge, "backoff_initial_ms", 100), 0);
    ck_assert_int_eq(bridgectl_set_long(bridge, "backoff_max_ms", 1000), 0);
    ck_assert_int_eq(bridgectl_set_long(bridge, "keepalive_s", 2), 0);
    mark = bridgectl_log_mark(bridge);
    ck_assert_int_eq(bridgectl_start(bridge), 0);
    wait_session(1, WAIT_MS);
    link_carries("$hw/events/upload/join/before");

    /* the bridge renews by itself: a new certificate file with another serial */
    deadline = kt_now_ms() + kh_scale_ms((LIFETIME_S + 10) * 1000);
    for (;;) {
        x = NULL;
        if (stat(crt_path, &st) == 0) {
            FILE *f = fopen(crt_path, "r");
            x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
            if (f)
                fclose(f);
        }
        if (x) {
            serial2 = serial_of(x);
            if (strcmp(serial1, serial2))
                break;
            free(serial2);
            X509_free(x);
        }
        ck_assert_msg(kt_now_ms() < deadline, "the certificate was not rotated");
        kt_pause_ms(PAUSE_MS);
    }
    rotated_at = (int64_t)st.st_mtime;
    na2 = time_of(X509_get0_notAfter(x));
    X509_free(x);
    printf("join: rotated %" PRId64 " s into a %d s certificate (serial %s -> %s)\n",
           rotated_at - nb1, LIFETIME_S, serial1, serial2);
    fflush(stdout);
    /* at a jittered 70-90 % of the lifetime (whole seconds, a 1 s timer, the child's work) */
    ck_assert_int_ge(rotated_at - nb1, LIFETIME_S * 70 / 100 - 1);
    ck_assert_int_le(rotated_at - nb1, LIFETIME_S * 90 / 100 + 2);
    ck_assert_int_gt(na2, na1);
    check_identity(certs);
    ck_assert_int_eq(stat(key_path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* by the certificate, not a token; then the link is dialled again with the new one */
    ck_assert_int_eq(bridgectl_wait_log(bridge, mark, "certwatch: certificate rotated", WAIT_MS),
                     0);
    wait_session(2, WAIT_MS);
    link_carries("$hw/events/upload/join/after");
    {
        char path[1200], *log;
        size_t len;
        (void)snprintf(path, sizeof(path), "%s/cloudsim.log", simctl_dir(sim));
        log = slurp(path, &len);
        ck_assert_ptr_nonnull(log);
        ck_assert_msg(strstr(log, "certsrv: signed node=" NODE " by=certificate serial=") != NULL,
                      "cloudsim did not sign a rotation request");
        free(log);
    }
    free(serial1);
    free(serial2);
    free(token);
}
END_TEST

static Suite *join_suite(void)
{
    Suite *s = suite_create("join");
    TCase *tc = tcase_create("join");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_join_ok);
    tcase_add_test(tc, test_join_bad_token);
    tcase_add_test(tc, test_join_ca_mismatch);
    tcase_add_test(tc, test_certsrv_checks);
    tcase_add_test(tc, test_rotation);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kh_run_suite(join_suite(), CK_NORMAL);
}
