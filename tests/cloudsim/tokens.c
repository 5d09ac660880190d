/* tokens.c: what the API server gives cloudcore's edge controller for a pod's kube-api-access
 * volume, so that an ordinary pod runs against cloudsim as against a real cloud:
 *
 *   - a TokenRequest answer (serviceaccounts/{name}/token; Kubernetes
 *     pkg/registry/core/serviceaccount/storage/token.go), which cloudcore's
 *     getServiceAccountToken (cloud/pkg/edgecontroller/controller/upstream.go) sends back as
 *     it is, kind and apiVersion set: the request with empty audiences replaced by the API
 *     server's own, status.token a JWT whose claims are a bound service account token's (sub
 *     system:serviceaccount:{ns}:{name}, kubernetes.io namespace/pod/serviceaccount), and
 *     status.expirationTimestamp = now + expirationSeconds. With expirationSeconds 3607 (the
 *     API server's default projection) the JWT itself lives a year and carries warnafter, as
 *     --service-account-extend-token-expiration (on by default) makes it;
 *   - the kube-root-ca.crt ConfigMap that kube-controller-manager's root-ca-cert-publisher
 *     keeps in every namespace (data ca.crt: the cluster's CA).
 *
 * Differences, on purpose: the JWT is HS256 with a key of cloudsim's (the API server signs
 * RS256 with its service account key; the edge never verifies it); the service account is
 * not looked up (every name exists) and its uid is derived from its name.
 */
#include <errno.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"

#define API_AUDIENCE "https://kubernetes.default.svc.cluster.local"
#define WARN_ONLY_EXPIRATION_S 3607         /* token.WarnOnlyBoundTokenExpirationSeconds */
#define EXTENDED_EXPIRATION_S (365 * 86400) /* token.ExpirationExtensionSeconds */

static void rfc3339(int64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A stable uid-shaped string for name (the API server's would be random). */
static void fake_uid(const char *ns, const char *name, char *out, size_t n)
{
    uint32_t h = 2166136261u;
    const char *s;

    for (s = ns; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    for (s = name; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    snprintf(out, n, "%08" PRIx32 "-0000-4000-8000-000000000000", h);
}

/* The JWT claims of a bound token, Go's field order (jwt.Claims then the private claims). */
static int write_claims(struct kedge_buf *b, const struct tokens_request *tr, int64_t now,
                        int64_t exp)
{
    struct kedge_buf sub = KEDGE_BUF_INIT;
    struct kedge_jw w;
    char sa_uid[48];
    int rc;

    fake_uid(tr->ns, tr->sa, sa_uid, sizeof(sa_uid));
    kedge_jw_init(&w, b);
    kedge_jw_obj_open(&w);
    kedge_jw_key(&w, "aud");
    kedge_jw_arr_open(&w);
    kedge_jw_str(&w, tr->audience ? tr->audience : API_AUDIENCE);
    kedge_jw_arr_close(&w);
    kedge_jw_kint(&w, "exp", exp);
    kedge_jw_kint(&w, "iat", now);
    kedge_jw_kstr(&w, "iss", API_AUDIENCE);
    kedge_jw_key(&w, "kubernetes.io");
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "namespace", tr->ns);
    kedge_jw_key(&w, "pod");
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "name", tr->pod);
    kedge_jw_kstr(&w, "uid", tr->pod_uid);
    kedge_jw_obj_close(&w);
    kedge_jw_key(&w, "serviceaccount");
    kedge_jw_obj_open(&w);
    kedge_jw_kstr(&w, "name", tr->sa);
    kedge_jw_kstr(&w, "uid", sa_uid);
    kedge_jw_obj_close(&w);
    if (exp - now != tr->expiration_s)
        kedge_jw_kint(&w, "warnafter", now + tr->expiration_s);
    kedge_jw_obj_close(&w);
    kedge_jw_kint(&w, "nbf", now);
    rc = kedge_buf_printf(&sub, "system:serviceaccount:%s:%s", tr->ns, tr->sa);
    kedge_jw_kstr(&w, "sub", rc == 0 ? sub.data : "");
    kedge_jw_obj_close(&w);
    kedge_buf_cleanup(&sub);
    return rc < 0 ? rc : kedge_jw_finish(&w);
}

int tokens_answer(const char *key, const struct tokens_request *tr, struct kedge_jw *w)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    struct kedge_buf claims = KEDGE_BUF_INIT, jwt = KEDGE_BUF_INIT;
    int64_t now = (int64_t)time(NULL), exp = now + tr->expiration_s;
    char when[32], created[32];
    int rc;

    rfc3339(now, created, sizeof(created));
    if (tr->expiration_s == WARN_ONLY_EXPIRATION_S && !tr->audience)
        exp = now + EXTENDED_EXPIRATION_S;
    rc = write_claims(&claims, tr, now, exp);
    if (rc == 0)
        rc = cloudsim_jwt_hs256(key, strlen(key), header, claims.data, &jwt);
    if (rc == 0) {
        rfc3339(now + tr->expiration_s, when, sizeof(when));
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "kind", "TokenRequest");
        kedge_jw_kstr(w, "apiVersion", "authentication.k8s.io/v1");
        kedge_jw_key(w, "metadata");
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "name", tr->sa);
        kedge_jw_kstr(w, "namespace", tr->ns);
        kedge_jw_kstr(w, "creationTimestamp", created); /* the real one also has managedFields */
        kedge_jw_obj_close(w);
        kedge_jw_key(w, "spec");
        kedge_jw_obj_open(w);
        kedge_jw_key(w, "audiences");
        kedge_jw_arr_open(w);
        kedge_jw_str(w, tr->audience ? tr->audience : API_AUDIENCE);
        kedge_jw_arr_close(w);
        kedge_jw_kint(w, "expirationSeconds", tr->expiration_s);
        kedge_jw_key(w, "boundObjectRef");
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "kind", "Pod");
        kedge_jw_kstr(w, "apiVersion", "v1");
        kedge_jw_kstr(w, "name", tr->pod);
        kedge_jw_kstr(w, "uid", tr->pod_uid);
        kedge_jw_obj_close(w);
        kedge_jw_obj_close(w);
        kedge_jw_key(w, "status");
        kedge_jw_obj_open(w);
        kedge_jw_kstr(w, "token", jwt.data);
        kedge_jw_kstr(w, "expirationTimestamp", when);
        kedge_jw_obj_close(w);
        kedge_jw_obj_close(w);
    }
    kedge_buf_cleanup(&claims);
    kedge_buf_cleanup(&jwt);
    return rc;
}

int tokens_root_ca(const char *ca_pem, const char *ns, struct kedge_jw *w)
{
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "kind", "ConfigMap");
    kedge_jw_kstr(w, "apiVersion", "v1");
    kedge_jw_key(w, "metadata");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "name", "kube-root-ca.crt");
    kedge_jw_kstr(w, "namespace", ns);
    kedge_jw_key(w, "annotations");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "kubernetes.io/description",
                  "Contains a CA bundle that can be used to verify the kube-apiserver when using "
                  "internal endpoints such as the internal service IP or kubernetes.default.svc. "
                  "No other usage is guaranteed across distributions of Kubernetes clusters.");
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
    kedge_jw_key(w, "data");
    kedge_jw_obj_open(w);
    kedge_jw_kstr(w, "ca.crt", ca_pem);
    kedge_jw_obj_close(w);
    kedge_jw_obj_close(w);
    return w->err;
}
