/* core/security_ca.c — certificates herd makes itself: issuing one from a
 * spec (a CA, or a leaf signed by an issuer, with its names), and the
 * in-memory temporary CA of `security: temporary`: the credentials of a
 * flow run's scheduler and workers, a remote scheduler's certificate issued
 * for the names a provider passes, and the environment that carries them.
 * The CA key lives only as long as the herd_tls_ca. */
#include "security_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

static int dns_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 253) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

static int add_ext(X509 *x, X509V3_CTX *vctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, vctx, nid, value);
    if (!e) return 0;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

int herd_tls_issue(const herd_tls_spec *spec, char **cert_out, char **key_out, herd_err *err)
{
    *cert_out = *key_out = NULL;
    if (!spec || !spec->cn || !*spec->cn || strlen(spec->cn) > 64)
        return herd_err_set(err, HERD_EARG, "herd_tls_issue: cn must be 1..64 bytes");
    if (!spec->issuer_cert != !spec->issuer_key)
        return herd_err_set(err, HERD_EARG, "herd_tls_issue: issuer_cert and issuer_key go together");
    /* subjectAltName */
    char san[2048] = "";
    size_t sl = 0;
    for (const char *const *n = spec->names; n && *n; n++) {
        if (!tls_is_ip(*n) && !dns_ok(*n))
            return herd_err_set(err, HERD_EARG, "herd_tls_issue: name \"%s\" is neither an IP address nor a DNS name", *n);
        tls_clip(san, sizeof san, &sl, "%s%s:%s", sl ? "," : "", tls_is_ip(*n) ? "IP" : "DNS", *n);
        if (sl >= sizeof san - 1) return herd_err_set(err, HERD_EARG, "herd_tls_issue: too many names");
    }
    X509 *issuer = NULL, *x = NULL;
    EVP_PKEY *ikey = NULL, *key = NULL;
    BIGNUM *bn = NULL;
    int rc = 0;
    if (spec->issuer_cert) {
        STACK_OF(X509) *sk = NULL;
        if ((rc = tls_load_certs(spec->issuer_cert, "issuer certificate", &sk, err))) return rc;
        issuer = sk_X509_shift(sk);
        sk_X509_pop_free(sk, X509_free);
        if ((rc = tls_load_key(spec->issuer_key, "issuer key", &ikey, err))) goto done;
    }
    unsigned char serial[16];
    key = EVP_EC_gen("P-256");
    x = X509_new();
    if (!key || !x || RAND_bytes(serial, sizeof serial) != 1) { rc = herd_err_set(err, -ENOMEM, "TLS: cannot generate a key: %s", tls_ossl_reason()); goto done; }
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    X509_NAME *nm = X509_get_subject_name(x);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
             X509_set_version(x, 2) &&
             X509_gmtime_adj(X509_getm_notBefore(x), spec->not_before) &&
             X509_gmtime_adj(X509_getm_notAfter(x), spec->not_after) &&
             X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_UTF8, (const unsigned char *)"herd", -1, -1, 0) &&
             X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)spec->cn, -1, -1, 0) &&
             X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm) &&
             X509_set_pubkey(x, key);
    X509V3_CTX vctx;
    X509V3_set_ctx(&vctx, issuer ? issuer : x, x, NULL, NULL, 0);
    ok = ok && add_ext(x, &vctx, NID_basic_constraints, spec->is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
         add_ext(x, &vctx, NID_key_usage, spec->is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") &&
         add_ext(x, &vctx, NID_subject_key_identifier, "hash") &&
         add_ext(x, &vctx, NID_authority_key_identifier, "keyid");
    if (ok && !spec->is_ca && (spec->server || spec->client))
        ok = add_ext(x, &vctx, NID_ext_key_usage, spec->server && spec->client ? "serverAuth,clientAuth"
                                                 : spec->server ? "serverAuth" : "clientAuth");
    if (ok && sl) ok = add_ext(x, &vctx, NID_subject_alt_name, san);
    ok = ok && X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0;
    if (!ok) { rc = herd_err_set(err, HERD_ECONFIG, "TLS: cannot issue certificate \"%s\": %s", spec->cn, tls_ossl_reason()); goto done; }
    BIO *b = BIO_new(BIO_s_mem());
    if (b && PEM_write_bio_X509(b, x)) *cert_out = tls_bio_text(b);
    BIO_free(b);
    *key_out = tls_key_pem(key);
    if (!*cert_out || !*key_out) {
        free(*cert_out);
        herd_tls_pem_free(*key_out);
        *cert_out = *key_out = NULL;
        rc = herd_err_set(err, -ENOMEM, "out of memory");
    }
done:
    ERR_clear_error();
    BN_free(bn);
    X509_free(x);
    X509_free(issuer);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ikey);
    return rc;
}

/* The scheduler certificate's names: loopback, this host's name, and hosts. */
static int sched_names(const char *const *hosts, const char **names, size_t cap, char *self, size_t selfcap,
                       const char *what, herd_err *err)
{
    size_t nn = 0;
    names[nn++] = "localhost";
    names[nn++] = "127.0.0.1";
    names[nn++] = "::1";
    if (self && gethostname(self, selfcap - 1) == 0 && (self[selfcap - 1] = '\0', dns_ok(self)) &&
        strcmp(self, "localhost") != 0)
        names[nn++] = self;
    for (const char *const *h = hosts; h && *h; h++) {
        if (nn >= cap - 1)
            return herd_err_set(err, HERD_EARG, "%s: at most %zu extra host names", what, cap - 5);
        if (!tls_is_ip(*h) && !dns_ok(*h))
            return herd_err_set(err, HERD_EARG, "%s: host \"%s\" is neither an IP address nor a DNS name", what, *h);
        names[nn++] = *h;
    }
    names[nn] = NULL;
    return 0;
}

struct herd_tls_ca { char *cert, *key; };

void herd_tls_ca_free(herd_tls_ca *ca)
{
    if (!ca) return;
    free(ca->cert);
    herd_tls_pem_free(ca->key);
    free(ca);
}

/* A CA made in memory and the worker/client identity it issues. */
static int temp_ca(const char *cluster_name, herd_tls_ca **ca_out, char **wcert, char **wkey, herd_err *err)
{
    char cn[65];
    size_t cl = (size_t)snprintf(cn, sizeof cn, "herd temporary CA ");
    for (const char *p = cluster_name ? cluster_name : ""; *p && cl < sizeof cn - 1; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.", *p))
            cn[cl++] = *p;
    cn[cl] = '\0';
    herd_tls_ca *ca = calloc(1, sizeof *ca);
    if (!ca) return herd_err_set(err, -ENOMEM, "out of memory");
    herd_tls_spec cas = { .cn = cn, .is_ca = 1, .not_before = -3600, .not_after = HERD_TLS_TEMP_VALID_S };
    int rc = herd_tls_issue(&cas, &ca->cert, &ca->key, err);
    if (!rc) {
        herd_tls_spec ws = { .cn = "herd-worker", .client = 1, .not_before = -3600, .not_after = HERD_TLS_TEMP_VALID_S,
                             .issuer_cert = ca->cert, .issuer_key = ca->key };
        rc = herd_tls_issue(&ws, wcert, wkey, err);
    }
    if (rc) { herd_tls_ca_free(ca); return rc; }
    *ca_out = ca;
    return 0;
}

static int sched_ident(const herd_tls_ca *ca, const char *const *names, char **scert, char **skey, herd_err *err)
{
    herd_tls_spec ss = { .cn = "herd-scheduler", .server = 1, .client = 1, .names = names,
                         .not_before = -3600, .not_after = HERD_TLS_TEMP_VALID_S,
                         .issuer_cert = ca->cert, .issuer_key = ca->key };
    return herd_tls_issue(&ss, scert, skey, err);
}

int herd_tls_temporary(const char *cluster_name, const char *const *hosts, herd_tls **out, herd_err *err)
{
    *out = NULL;
    const char *names[64];
    char self[256] = "";
    int rc = sched_names(hosts, names, sizeof names / sizeof *names, self, sizeof self, "TLS temporary", err);
    if (rc) return rc;
    herd_tls_ca *ca = NULL;
    char *scert = NULL, *skey = NULL, *wcert = NULL, *wkey = NULL;
    rc = temp_ca(cluster_name, &ca, &wcert, &wkey, err);
    if (!rc) rc = sched_ident(ca, names, &scert, &skey, err);
    if (!rc) rc = tls_build(ca->cert, "temporary CA", wcert, "worker certificate", wkey, "worker key", scert, skey, out, err);
    herd_tls_ca_free(ca);    /* the CA key is gone once both are signed */
    free(scert);
    free(wcert);
    herd_tls_pem_free(skey);
    herd_tls_pem_free(wkey);
    return rc ? herd_err_prefix(err, "security: temporary") : 0;
}

int herd_tls_temporary_remote(const char *cluster_name, herd_tls **client_out, herd_tls_ca **ca_out, herd_err *err)
{
    *client_out = NULL;
    *ca_out = NULL;
    char *wcert = NULL, *wkey = NULL;
    int rc = temp_ca(cluster_name, ca_out, &wcert, &wkey, err);
    if (!rc) rc = tls_build((*ca_out)->cert, "temporary CA", wcert, "worker certificate", wkey, "worker key", NULL, NULL,
                        client_out, err);
    free(wcert);
    herd_tls_pem_free(wkey);
    if (rc) { herd_tls_ca_free(*ca_out); *ca_out = NULL; }
    return rc ? herd_err_prefix(err, "security: temporary") : 0;
}

int herd_tls_ca_server_env(const herd_tls_ca *ca, const char *const *hosts, char ***envp_out, herd_err *err)
{
    *envp_out = NULL;
    if (!ca) return herd_err_set(err, HERD_ESTATE, "TLS: the temporary CA is gone (a scheduler certificate is issued "
                                 "only while start_scheduler runs)");
    const char *names[64];
    int rc = sched_names(hosts, names, sizeof names / sizeof *names, NULL, 0, "scheduler certificate", err);
    char *scert = NULL, *skey = NULL;
    if (!rc) rc = sched_ident(ca, names, &scert, &skey, err);
    char **v = rc ? NULL : calloc(4, sizeof *v);
    if (!rc && !v) rc = herd_err_set(err, -ENOMEM, "out of memory");
    if (!rc) {
        if (asprintf(&v[0], "%s=%s", HERD_TLS_ENV_CA, ca->cert) < 0) v[0] = NULL;
        if (asprintf(&v[1], "%s=%s", HERD_TLS_ENV_CERT, scert) < 0) v[1] = NULL;
        if (asprintf(&v[2], "%s=%s", HERD_TLS_ENV_KEY, skey) < 0) v[2] = NULL;
        if (!v[0] || !v[1] || !v[2]) { herd_tls_envp_free(v); v = NULL; rc = herd_err_set(err, -ENOMEM, "out of memory"); }
    }
    free(scert);
    herd_tls_pem_free(skey);
    *envp_out = v;
    return rc;
}
