/* core/security.c — TLS for herd connections with OpenSSL through libevent's
 * bufferevent_openssl: credentials (PEM files, PEM text, environment), the
 * server/client SSL_CTX pair with herd's policy (TLS 1.2+, AEAD ciphers,
 * mutual authentication), TLS bufferevents, and turning handshake failures
 * into reasons a person can act on. See security.h for the contract. The
 * temporary CA of `security: temporary` and certificate issuing are
 * security_ca.c, which builds on the PEM helpers here (security_int.h).
 *
 * Process-wide state: one SSL ex_data index, registered once (pthread_once),
 * under which each SSL keeps a note of its first verification failure. */
#include "security_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MAX_PEM_FILE (1u << 20)
/* TLS 1.2 suites: ECDHE key exchange, AEAD only (TLS 1.3 suites all qualify). */
#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
                      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct herd_tls {
    SSL_CTX *srv, *cli;
    char *ca, *cert, *key;     /* client-side identity, PEM (what workers get) */
    char *server_name;         /* the name the server's certificate is checked against, or NULL: the host dialled */
};

/* ---- per-SSL verification note ---- */
typedef struct vnote {
    char host[256];            /* the name checked: what the client dialled, or its tls_server_name ("" on the server side) */
    char dialled[256];         /* what it dialled when that differs (tls_server_name), else "" */
    char text[768];            /* first verification failure, "" if none */
} vnote;

static int note_idx = -1;
static pthread_once_t note_once = PTHREAD_ONCE_INIT;

static void note_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void note_init(void)
{
    note_idx = SSL_get_ex_new_index(0, (void *)"herd verify note", NULL, NULL, note_free);
}

void tls_clip(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0) *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

static void time_text(const ASN1_TIME *t, char *buf, size_t cap)
{
    buf[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (!b) return;
    if (ASN1_TIME_print(b, t) > 0) {
        int n = BIO_read(b, buf, (int)cap - 1);
        buf[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

static void cn_text(X509 *x, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!x || X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)cap) < 0) {
        X509_NAME_oneline(x ? X509_get_subject_name(x) : NULL, buf, (int)cap);
        if (!x) snprintf(buf, cap, "?");
    }
}

/* "DNS:localhost, IP:127.0.0.1" (or "no subjectAltName") */
static void san_text(X509 *x, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const char *sep = len ? ", " : "";
        if (g->type == GEN_DNS) {
            const ASN1_STRING *s = g->d.dNSName;
            tls_clip(buf, cap, &len, "%sDNS:%.*s", sep, ASN1_STRING_length(s), (const char *)ASN1_STRING_get0_data(s));
        } else if (g->type == GEN_IPADD) {
            const ASN1_STRING *s = g->d.iPAddress;
            char ip[INET6_ADDRSTRLEN] = "?";
            int l = ASN1_STRING_length(s);
            if (l == 4 || l == 16) inet_ntop(l == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), ip, sizeof ip);
            tls_clip(buf, cap, &len, "%sIP:%s", sep, ip);
        }
    }
    GENERAL_NAMES_free(gens);
    if (!len) snprintf(buf, cap, "no subjectAltName");
}

static int verify_cb(int ok, X509_STORE_CTX *xs)
{
    if (ok) return 1;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    vnote *n = ssl ? SSL_get_ex_data(ssl, note_idx) : NULL;
    if (!n || n->text[0]) return 0;
    int e = X509_STORE_CTX_get_error(xs);
    X509 *x = X509_STORE_CTX_get_current_cert(xs);
    char cn[128], when[64], names[384];
    cn_text(x, cn, sizeof cn);
    size_t len = 0;
    tls_clip(n->text, sizeof n->text, &len, "certificate verify failed: %s", X509_verify_cert_error_string(e));
    switch (e) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        time_text(X509_get0_notAfter(x), when, sizeof when);
        tls_clip(n->text, sizeof n->text, &len, " (certificate \"%s\" expired %s)", cn, when);
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        time_text(X509_get0_notBefore(x), when, sizeof when);
        tls_clip(n->text, sizeof n->text, &len, " (certificate \"%s\" is valid from %s)", cn, when);
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        tls_clip(n->text, sizeof n->text, &len, " (certificate \"%s\" was not issued by a CA this side trusts: unknown CA)", cn);
        break;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        tls_clip(n->text, sizeof n->text, &len, " (\"%s\" is not a CA this side trusts: unknown CA)", cn);
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        san_text(x, names, sizeof names);
        tls_clip(n->text, sizeof n->text, &len, " (server certificate \"%s\" is not valid for \"%s\"%s%s%s: wrong host; "
                 "it names %s)", cn, n->host, n->dialled[0] ? " (tls_server_name; dialled " : "", n->dialled,
                 n->dialled[0] ? ")" : "", names);
        break;
    case X509_V_ERR_INVALID_PURPOSE:
        tls_clip(n->text, sizeof n->text, &len, " (certificate \"%s\" is not for a TLS %s: check its extendedKeyUsage)",
             cn, SSL_is_server(ssl) ? "client" : "server");
        break;
    default:
        tls_clip(n->text, sizeof n->text, &len, " (certificate \"%s\", depth %d)", cn, X509_STORE_CTX_get_error_depth(xs));
    }
    return 0;
}

/* ---- reading PEM ---- */
static int no_passphrase(char *buf, int size, int rwflag, void *u) { return -1; }

const char *tls_ossl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown error";
}

/* The first PEM block whose label contains kind ("PRIVATE KEY"), as a copy. */
static char *pem_block(const char *pem, const char *kind)
{
    for (const char *p = pem; (p = strstr(p, "-----BEGIN ")); p += 11) {
        const char *eol = strstr(p + 11, "-----");
        if (!eol) return NULL;
        size_t ll = (size_t)(eol - (p + 11));
        char label[64];
        if (ll >= sizeof label) continue;
        memcpy(label, p + 11, ll);
        label[ll] = '\0';
        if (!strstr(label, kind)) continue;
        char endm[96];
        snprintf(endm, sizeof endm, "-----END %s-----", label);
        const char *e = strstr(eol, endm);
        if (!e) return NULL;
        return strndup(p, (size_t)(e + strlen(endm) - p));
    }
    return NULL;
}

int tls_load_certs(const char *pem, const char *what, STACK_OF(X509) **out, herd_err *err)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (!sk || !b) { sk_X509_free(sk); BIO_free(b); return herd_err_set(err, -ENOMEM, "%s: out of memory", what); }
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL))) sk_X509_push(sk, x);
    int parsed = sk_X509_num(sk), rc = 0;
    if (!parsed && strstr(pem, "-----BEGIN CERTIFICATE-----"))
        rc = herd_err_set(err, HERD_ECONFIG, "%s: malformed PEM certificate: %s", what, tls_ossl_reason());
    else if (!parsed)
        rc = herd_err_set(err, HERD_ECONFIG, "%s: no PEM certificate found (expected a -----BEGIN CERTIFICATE----- block)", what);
    ERR_clear_error();   /* the loop ends on "no start line" */
    BIO_free(b);
    if (rc) { sk_X509_pop_free(sk, X509_free); return rc; }
    *out = sk;
    return 0;
}

int tls_load_key(const char *pem, const char *what, EVP_PKEY **out, herd_err *err)
{
    char *blk = pem_block(pem, "PRIVATE KEY");
    if (!blk) return herd_err_set(err, HERD_ECONFIG, "%s: no PEM private key found (expected a -----BEGIN PRIVATE KEY----- block)", what);
    if (strstr(blk, "ENCRYPTED")) {
        OPENSSL_cleanse(blk, strlen(blk));
        free(blk);
        return herd_err_set(err, HERD_ECONFIG, "%s: the private key is encrypted with a passphrase; herd needs an unencrypted key "
                            "(protect it with file permissions)", what);
    }
    BIO *b = BIO_new_mem_buf(blk, -1);
    *out = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    OPENSSL_cleanse(blk, strlen(blk));
    free(blk);
    if (!*out) {
        int rc = herd_err_set(err, HERD_ECONFIG, "%s: malformed PEM private key: %s", what, tls_ossl_reason());
        ERR_clear_error();
        return rc;
    }
    return 0;
}

/* A memory BIO's contents as a NUL-terminated malloc'd string. */
char *tls_bio_text(BIO *b)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) { memcpy(s, data, (size_t)n); s[n] = '\0'; }
    return s;
}

/* PEM text of certificates; of a key (written through a secure-heap BIO). */
static char *certs_pem(STACK_OF(X509) *sk)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    int ok = b != NULL;
    for (int i = 0; ok && i < sk_X509_num(sk); i++) ok = PEM_write_bio_X509(b, sk_X509_value(sk, i));
    if (ok) s = tls_bio_text(b);
    BIO_free(b);
    return s;
}

char *tls_key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_secmem());
    char *s = NULL;
    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)) s = tls_bio_text(b);
    BIO_free(b);
    return s;
}

void herd_tls_pem_free(char *pem)
{
    if (!pem) return;
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
}

/* ---- contexts ---- */
typedef struct ident {
    STACK_OF(X509) *certs;     /* leaf first, then its chain */
    EVP_PKEY *key;
} ident;

static void ident_free(ident *id)
{
    sk_X509_pop_free(id->certs, X509_free);
    EVP_PKEY_free(id->key);
    id->certs = NULL;
    id->key = NULL;
}

static int load_ident(const char *cert, const char *cert_what, const char *key, const char *key_what,
                      ident *id, herd_err *err)
{
    memset(id, 0, sizeof *id);
    int rc = tls_load_certs(cert, cert_what, &id->certs, err);
    if (!rc) rc = tls_load_key(key ? key : cert, key ? key_what : cert_what, &id->key, err);
    if (!rc && X509_check_private_key(sk_X509_value(id->certs, 0), id->key) != 1) {
        char cn[128];
        cn_text(sk_X509_value(id->certs, 0), cn, sizeof cn);
        rc = herd_err_set(err, HERD_ECONFIG, "%s: the private key does not match the certificate \"%s\" in %s",
                          key ? key_what : cert_what, cn, cert_what);
        ERR_clear_error();
    }
    if (rc) ident_free(id);
    return rc;
}

static SSL_CTX *make_ctx(int server, STACK_OF(X509) *cas, const ident *id, herd_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) { herd_err_set(err, -ENOMEM, "TLS: cannot create a context: %s", tls_ossl_reason()); return NULL; }
    int ok = SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) &&
             SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (server) SSL_CTX_set_num_tickets(ctx, 0);
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    for (int i = 0; ok && i < sk_X509_num(cas); i++) ok = X509_STORE_add_cert(st, sk_X509_value(cas, i));
    ok = ok && SSL_CTX_use_certificate(ctx, sk_X509_value(id->certs, 0));
    for (int i = 1; ok && i < sk_X509_num(id->certs); i++) ok = SSL_CTX_add1_chain_cert(ctx, sk_X509_value(id->certs, i));
    ok = ok && SSL_CTX_use_PrivateKey(ctx, id->key);
    if (!ok) {
        herd_err_set(err, HERD_ECONFIG, "TLS: cannot set up the %s context: %s", server ? "server" : "client", tls_ossl_reason());
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER, verify_cb);
    return ctx;
}

void herd_tls_free(herd_tls *t)
{
    if (!t) return;
    SSL_CTX_free(t->srv);
    SSL_CTX_free(t->cli);
    free(t->ca);
    free(t->cert);
    free(t->server_name);
    herd_tls_pem_free(t->key);
    free(t);
}

/* ca + client identity (cert/key); server identity scert/skey (NULL: the same). */
int tls_build(const char *ca, const char *ca_what, const char *cert, const char *cert_what,
                 const char *key, const char *key_what, const char *scert, const char *skey,
                 herd_tls **out, herd_err *err)
{
    pthread_once(&note_once, note_init);
    *out = NULL;
    if (note_idx < 0) return herd_err_set(err, -ENOMEM, "TLS: cannot register SSL ex_data");
    STACK_OF(X509) *cas = NULL;
    ident cid = { 0 }, sid = { 0 };
    herd_tls *t = NULL;
    int rc = tls_load_certs(ca, ca_what, &cas, err);
    if (!rc) rc = load_ident(cert, cert_what, key, key_what, &cid, err);
    if (!rc && scert) rc = load_ident(scert, "scheduler certificate", skey, "scheduler key", &sid, err);
    if (!rc && !(t = calloc(1, sizeof *t))) rc = herd_err_set(err, -ENOMEM, "out of memory");
    if (!rc && !(t->cli = make_ctx(0, cas, &cid, err))) rc = err ? err->code : -HERD_ECONFIG;
    if (!rc && !(t->srv = make_ctx(1, cas, scert ? &sid : &cid, err))) rc = err ? err->code : -HERD_ECONFIG;
    if (!rc) {
        t->ca = certs_pem(cas);
        t->cert = certs_pem(cid.certs);
        t->key = tls_key_pem(cid.key);
        if (!t->ca || !t->cert || !t->key) rc = herd_err_set(err, -ENOMEM, "out of memory");
    }
    sk_X509_pop_free(cas, X509_free);
    ident_free(&cid);
    ident_free(&sid);
    if (rc) { herd_tls_free(t); return rc; }
    *out = t;
    return 0;
}

int herd_tls_from_pem(const char *ca, const char *cert, const char *key, herd_tls **out, herd_err *err)
{
    *out = NULL;
    if (!ca || !cert) return herd_err_set(err, HERD_EARG, "TLS: a CA and a certificate are required (mutual TLS), got %s%s",
                                          ca ? "" : "no CA ", cert ? "" : "no certificate");
    return tls_build(ca, "CA PEM", cert, "certificate PEM", key, "key PEM", NULL, NULL, out, err);
}

static int read_text(const char *path, const char *opt, char **out, herd_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return herd_err_set(err, -errno, "%s \"%s\": cannot open: %s", opt, path, strerror(errno));
    char *buf = malloc(MAX_PEM_FILE + 1);
    size_t n = buf ? fread(buf, 1, MAX_PEM_FILE + 1, f) : 0;
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    int rc = 0;
    if (!buf) rc = herd_err_set(err, -ENOMEM, "out of memory");
    else if (rerr) rc = herd_err_set(err, -rerr, "%s \"%s\": cannot read: %s", opt, path, strerror(rerr));
    else if (n > MAX_PEM_FILE) rc = herd_err_set(err, HERD_ECONFIG, "%s \"%s\": larger than %u bytes, not a PEM file", opt, path, MAX_PEM_FILE);
    else if (n == 0) rc = herd_err_set(err, HERD_ECONFIG, "%s \"%s\": the file is empty (expected PEM text)", opt, path);
    else if (memchr(buf, '\0', n)) rc = herd_err_set(err, HERD_ECONFIG, "%s \"%s\": binary data, expected PEM text (DER is not supported)", opt, path);
    if (rc) { if (buf) OPENSSL_cleanse(buf, n); free(buf); return rc; }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

int herd_tls_from_files(const char *ca_file, const char *cert_file, const char *key_file,
                        herd_tls **out, herd_err *err)
{
    *out = NULL;
    if (!ca_file || !*ca_file || !cert_file || !*cert_file)
        return herd_err_set(err, HERD_ECONFIG, "TLS needs tls_ca_file and tls_cert (and tls_key unless the key is in tls_cert): "
                            "missing %s", !ca_file || !*ca_file ? "tls_ca_file" : "tls_cert");
    if (key_file && !*key_file) key_file = NULL;
    char *ca = NULL, *cert = NULL, *key = NULL;
    char ca_what[PATH_MAX + 32], cert_what[PATH_MAX + 32], key_what[PATH_MAX + 32];
    snprintf(ca_what, sizeof ca_what, "tls_ca_file \"%s\"", ca_file);
    snprintf(cert_what, sizeof cert_what, "tls_cert \"%s\"", cert_file);
    snprintf(key_what, sizeof key_what, "tls_key \"%s\"", key_file ? key_file : "");
    int rc = read_text(ca_file, "tls_ca_file", &ca, err);
    if (!rc) rc = read_text(cert_file, "tls_cert", &cert, err);
    if (!rc && key_file) rc = read_text(key_file, "tls_key", &key, err);
    if (!rc) rc = tls_build(ca, ca_what, cert, cert_what, key, key_what, NULL, NULL, out, err);
    free(ca);
    herd_tls_pem_free(cert);
    herd_tls_pem_free(key);
    return rc;
}

static const char *env_lookup(const char *const *envp, const char *name)
{
    if (!envp) return getenv(name);
    size_t n = strlen(name);
    for (const char *const *e = envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

int herd_tls_from_envp(const char *const *envp, herd_tls **out, herd_err *err)
{
    *out = NULL;
    const char *ca = env_lookup(envp, HERD_TLS_ENV_CA), *cert = env_lookup(envp, HERD_TLS_ENV_CERT),
               *key = env_lookup(envp, HERD_TLS_ENV_KEY);
    if (!ca && !cert && !key)
        return herd_err_set(err, -ENOENT, "%s, %s and %s are not set", HERD_TLS_ENV_CA, HERD_TLS_ENV_CERT, HERD_TLS_ENV_KEY);
    if (!ca || !cert || !key)
        return herd_err_set(err, HERD_ECONFIG, "TLS credentials in the environment are incomplete: %s%s%s%s%s not set",
                            !ca ? HERD_TLS_ENV_CA : "", !ca && (!cert || !key) ? ", " : "",
                            !cert ? HERD_TLS_ENV_CERT : "", !cert && !key ? ", " : "", !key ? HERD_TLS_ENV_KEY : "");
    int rc = tls_build(ca, HERD_TLS_ENV_CA, cert, HERD_TLS_ENV_CERT, key, HERD_TLS_ENV_KEY, NULL, NULL, out, err);
    const char *sn = env_lookup(envp, HERD_TLS_ENV_SERVER_NAME);
    if (!rc && sn && *sn && (rc = herd_tls_set_server_name(*out, HERD_TLS_ENV_SERVER_NAME, sn, err))) {
        herd_tls_free(*out);
        *out = NULL;
    }
    return rc;
}

int herd_tls_export_env(const herd_tls *t, char ***envp_out, herd_err *err)
{
    *envp_out = NULL;
    if (!t) return herd_err_set(err, HERD_EARG, "herd_tls_export_env: no TLS credentials");
    char **v = calloc(5, sizeof *v);
    if (!v) return herd_err_set(err, -ENOMEM, "out of memory");
    if (asprintf(&v[0], "%s=%s", HERD_TLS_ENV_CA, t->ca) < 0) v[0] = NULL;
    if (asprintf(&v[1], "%s=%s", HERD_TLS_ENV_CERT, t->cert) < 0) v[1] = NULL;
    if (asprintf(&v[2], "%s=%s", HERD_TLS_ENV_KEY, t->key) < 0) v[2] = NULL;
    int oom = !v[0] || !v[1] || !v[2];
    if (!oom && t->server_name && asprintf(&v[3], "%s=%s", HERD_TLS_ENV_SERVER_NAME, t->server_name) < 0) {
        v[3] = NULL;
        oom = 1;
    }
    if (oom) { herd_tls_envp_free(v); return herd_err_set(err, -ENOMEM, "out of memory"); }
    *envp_out = v;
    return 0;
}

void herd_tls_envp_free(char **envp)
{
    if (!envp) return;
    for (char **p = envp; *p; p++) herd_tls_pem_free(*p);
    free(envp);
}

int tls_is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* A DNS name: dot-separated labels of 1 to 63 letters, digits and '-' (not
   at either end of a label), 253 characters at most. */
static int dns_name_ok(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (n == 0 || n > 253) return 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = s[i];
        if (ch == '.' || ch == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-') return 0;
            label = 0;
            continue;
        }
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-';
        if (!ok || (label == 0 && ch == '-')) return 0;
        label++;
    }
    return 1;
}

int herd_tls_server_name_check(const char *field, const char *name, herd_err *err)
{
    if (name && (dns_name_ok(name) || tls_is_ip(name))) return 0;
    return herd_err_set(err, HERD_ECONFIG, "%s: expected a DNS name (letters, digits, '-' and dots, such as "
                        "herd-scheduler or sched.example.com) or an IP address, the name the scheduler's "
                        "certificate is checked against; got \"%.260s\"", field ? field : "tls_server_name",
                        name ? name : "(null)");
}

int herd_tls_set_server_name(herd_tls *t, const char *field, const char *name, herd_err *err)
{
    if (!t) return herd_err_set(err, HERD_EARG, "herd_tls_set_server_name: no TLS credentials");
    char *copy = NULL;
    if (name) {
        int rc = herd_tls_server_name_check(field, name, err);
        if (rc) return rc;
        if (!(copy = strdup(name))) return herd_err_set(err, -ENOMEM, "out of memory");
    }
    free(t->server_name);
    t->server_name = copy;
    return 0;
}

const char *herd_tls_server_name(const herd_tls *t) { return t ? t->server_name : NULL; }

int herd_tls_addr_check(const herd_tls *t, const char *addr, herd_err *err)
{
    int tls = addr && strncmp(addr, "tls://", 6) == 0;
    if (tls && !t)
        return herd_err_set(err, HERD_ECONFIG, "address \"%s\" uses TLS but no TLS credentials are configured "
                            "(set tls_ca_file, tls_cert and tls_key, or security: temporary)", addr);
    if (!tls && t)
        return herd_err_set(err, HERD_ECONFIG, "address \"%s\": TLS is configured, so the address must be tls://host:port",
                            addr ? addr : "");
    return 0;
}

/* ---- connections ---- */
SSL *herd_tls_ssl_new(herd_tls *t, int server, const char *host, herd_err *err)
{
    if (!t) { herd_err_set(err, HERD_EARG, "TLS: no credentials"); return NULL; }
    SSL *ssl = SSL_new(server ? t->srv : t->cli);
    vnote *n = calloc(1, sizeof *n);
    if (!ssl || !n || !SSL_set_ex_data(ssl, note_idx, n)) {
        free(n);
        SSL_free(ssl);
        herd_err_set(err, -ENOMEM, "TLS: cannot create a connection: %s", tls_ossl_reason());
        ERR_clear_error();
        return NULL;
    }
    if (server) SSL_set_accept_state(ssl); else SSL_set_connect_state(ssl);
    if (!server && host && *host) {
        if (t->server_name && strcmp(t->server_name, host) != 0) {   /* tls_server_name: that name, not the host */
            snprintf(n->dialled, sizeof n->dialled, "%s", host);
            host = t->server_name;
        }
        snprintf(n->host, sizeof n->host, "%s", host);
        int ok;
        if (tls_is_ip(host)) ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
        else {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set1_host(ssl, host) && SSL_set_tlsext_host_name(ssl, host);
        }
        if (!ok) {
            herd_err_set(err, HERD_EARG, "TLS: cannot check the server name against host \"%s\": %s", host, tls_ossl_reason());
            ERR_clear_error();
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

static struct bufferevent *wrap(herd_tls *t, struct event_base *base, evutil_socket_t fd, int server,
                                const char *host, herd_err *err)
{
    SSL *ssl = herd_tls_ssl_new(t, server, host, err);
    if (!ssl) { evutil_closesocket(fd); return NULL; }
    struct bufferevent *bev = bufferevent_openssl_socket_new(base, fd, ssl,
        server ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        herd_err_set(err, -ENOMEM, "TLS: cannot create a bufferevent");
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

struct bufferevent *herd_tls_accept(herd_tls *t, struct event_base *base, evutil_socket_t fd, herd_err *err)
{
    return wrap(t, base, fd, 1, NULL, err);
}

struct bufferevent *herd_tls_connect(herd_tls *t, struct event_base *base, evutil_socket_t fd,
                                     const char *host, herd_err *err)
{
    return wrap(t, base, fd, 0, host, err);
}

struct bufferevent *herd_tls_connect_peer(herd_tls *t, struct event_base *base, evutil_socket_t fd, herd_err *err)
{
    SSL *ssl = herd_tls_ssl_new(t, 0, NULL, err);
    if (!ssl) { evutil_closesocket(fd); return NULL; }
    /* the holder presents its worker identity: a cluster member's
     * certificate (clientAuth), not a server's */
    X509_VERIFY_PARAM_set_purpose(SSL_get0_param(ssl), X509_PURPOSE_SSL_CLIENT);
    struct bufferevent *bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                             BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        herd_err_set(err, -ENOMEM, "TLS: cannot create a bufferevent");
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static const char *alert_reason(int r)
{
    switch (r) {
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return "the peer presented no certificate (mutual TLS requires one: configure tls_cert and tls_key)";
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return "the peer requires a certificate and none was sent (configure tls_cert and tls_key)";
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        return "the peer refused this side's certificate: unknown CA (it was not issued by the CA the peer trusts)";
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
        return "the peer refused this side's certificate: certificate expired or not yet valid";
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
        return "the peer refused this side's certificate: bad certificate (the peer's log says why: "
               "wrong host, purpose, CA or validity)";
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
        return "the peer refused this side's certificate: certificate revoked";
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        return "TLS handshake failed: no common protocol version or cipher (herd requires TLS 1.2+ with AEAD ciphers)";
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
        return HERD_TLS_NOT_TLS " (is it using a tcp:// or unix:// address?)";
    default:
        return NULL;
    }
}

int herd_tls_ssl_error(SSL *ssl, unsigned long e, char *buf, size_t cap)
{
    if (!ssl || !cap) return 0;
    /* a client (worker, flow) that refuses the certificate says so: it is
     * this side's verdict, not the scheduler's */
    const char *mine = SSL_is_server(ssl) ? "" : "this side refused the scheduler's certificate: ";
    vnote *n = note_idx >= 0 ? SSL_get_ex_data(ssl, note_idx) : NULL;
    if (n && n->text[0]) { snprintf(buf, cap, "%s%s", mine, n->text); return 1; }
    if (e) {
        const char *r = ERR_GET_LIB(e) == ERR_LIB_SSL ? alert_reason(ERR_GET_REASON(e)) : NULL;
        if (r) { snprintf(buf, cap, "%s", r); return 1; }
        if (!(ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)) {
            const char *rs = ERR_reason_error_string(e);
            snprintf(buf, cap, "TLS error: %s", rs ? rs : "unknown");
            return 1;
        }
    }
    long vr = SSL_get_verify_result(ssl);
    if (vr != X509_V_OK) {
        snprintf(buf, cap, "%scertificate verify failed: %s", mine, X509_verify_cert_error_string(vr));
        return 1;
    }
    if (!SSL_is_init_finished(ssl)) {
        snprintf(buf, cap, "connection closed during the TLS handshake (the peer may have refused this side's "
                 "certificate, or does not speak TLS)");
        return 1;
    }
    return 0;
}

int herd_tls_error(struct bufferevent *bev, short what, char *buf, size_t cap)
{
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    if (!ssl || !(what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))) return 0;
    unsigned long e, any = 0, ssl_e = 0;
    while ((e = bufferevent_get_openssl_error(bev))) {
        if (!any) any = e;
        if (!ssl_e && ERR_GET_LIB(e) == ERR_LIB_SSL) ssl_e = e;
    }
    return herd_tls_ssl_error(ssl, ssl_e ? ssl_e : any, buf, cap);
}

int herd_tls_handshaking(struct bufferevent *bev)
{
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    return ssl && !SSL_is_init_finished(ssl);
}

int herd_tls_peer_name(struct bufferevent *bev, char *buf, size_t cap)
{
    if (!cap) return 0;
    buf[0] = '\0';
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    X509 *x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    if (!x) return 0;
    cn_text(x, buf, cap);
    return 1;
}
