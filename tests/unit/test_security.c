/* tests/unit/test_security.c — core/security.c without a network: the
 * temporary CA and what it issues, credentials from PEM text, files and the
 * environment (and the errors for bad ones), and real TLS handshakes between
 * herd_tls server and client sides driven in memory over an OpenSSL BIO pair:
 * a certificate from another CA, an expired or not-yet-valid one and a
 * server certificate for the wrong host are each refused with a clear reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "security.h"

#define DAY 86400L

/* (t is read after the call has filled it) */
static herd_tls *must(int rc, herd_tls **t, const herd_err *err)
{
    if (rc || !*t) fail_msg("unexpected error %d: %s", rc, err->msg);
    return *t;
}

static void contains(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle)) fail_msg("expected \"%s\" in \"%s\"", needle, hay ? hay : "(null)");
}

/* ---- an in-memory handshake between a server and a client side ---- */
typedef struct hs {
    int s_ok, c_ok;              /* handshake done and one message each way */
    char s_why[1024], c_why[1024];
} hs;

typedef struct side {
    SSL *ssl;
    int done, failed;
    char *why;
} side;

static void note_fail(side *p, int rc)
{
    int e = SSL_get_error(p->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    p->failed = 1;
    unsigned long code = ERR_get_error();
    if (!herd_tls_ssl_error(p->ssl, code, p->why, 1024)) snprintf(p->why, 1024, "(no reason)");
    ERR_clear_error();
}

static void step(side *p)
{
    if (p->done || p->failed) return;
    int rc = SSL_do_handshake(p->ssl);
    if (rc == 1) p->done = 1; else note_fail(p, rc);
}

/* One message from `from` to `to`; with TLS 1.3 this is where a client
 * learns that the server refused its certificate. */
static int exchange(side *from, side *to, const char *msg)
{
    char buf[64];
    if (from->failed || to->failed) return 0;
    int rc = SSL_write(from->ssl, msg, (int)strlen(msg));
    if (rc <= 0) { note_fail(from, rc); return 0; }
    for (int i = 0; i < 4; i++) {
        rc = SSL_read(to->ssl, buf, sizeof buf - 1);
        if (rc > 0) { buf[rc] = '\0'; return strcmp(buf, msg) == 0; }
        note_fail(to, rc);
        if (to->failed) return 0;
        /* the writer may still owe bytes (e.g. a pending alert) */
        char dummy[16];
        int r2 = SSL_read(from->ssl, dummy, sizeof dummy);
        if (r2 <= 0) { note_fail(from, r2); if (from->failed) return 0; }
    }
    return 0;
}

static void handshake(herd_tls *server, herd_tls *client, const char *host, hs *r)
{
    memset(r, 0, sizeof *r);
    herd_err err;
    side s = { .why = r->s_why }, c = { .why = r->c_why };
    s.ssl = herd_tls_ssl_new(server, 1, NULL, &err);
    if (!s.ssl) fail_msg("%s", err.msg);
    c.ssl = herd_tls_ssl_new(client, 0, host, &err);
    if (!c.ssl) fail_msg("%s", err.msg);
    BIO *bs, *bc;
    assert_int_equal(BIO_new_bio_pair(&bs, 0, &bc, 0), 1);
    SSL_set_bio(s.ssl, bs, bs);
    SSL_set_bio(c.ssl, bc, bc);
    for (int i = 0; i < 50; i++) {
        step(&c);
        step(&s);
        if ((c.done || c.failed) && (s.done || s.failed)) break;
    }
    if (c.done && !s.failed) {
        /* a client that finished may still be refused by the server (TLS 1.3) */
        if (!s.done) for (int i = 0; i < 10 && !s.done && !s.failed; i++) step(&s);
        int up = exchange(&c, &s, "ping");
        if (s.failed) {   /* deliver the server's alert to the client */
            char b[16];
            int rc = SSL_read(c.ssl, b, sizeof b);
            if (rc <= 0) note_fail(&c, rc);
        }
        int down = up && exchange(&s, &c, "pong");
        r->s_ok = up && down;
        r->c_ok = up && down;
    } else if (s.failed && !c.failed) {
        for (int i = 0; i < 5 && !c.failed; i++) {
            char b[16];
            int rc = c.done ? SSL_read(c.ssl, b, sizeof b) : SSL_do_handshake(c.ssl);
            if (rc <= 0) note_fail(&c, rc);
        }
    } else if (c.failed && !s.failed) {
        for (int i = 0; i < 5 && !s.failed; i++) {
            int rc = SSL_do_handshake(s.ssl);
            if (rc <= 0) note_fail(&s, rc); else break;
        }
    }
    if (r->s_ok) assert_string_equal(SSL_get_version(s.ssl), "TLSv1.3");
    SSL_free(s.ssl);
    SSL_free(c.ssl);
    ERR_clear_error();
}

static void expect_ok(herd_tls *server, herd_tls *client, const char *host)
{
    hs r;
    handshake(server, client, host, &r);
    if (!r.s_ok || !r.c_ok) fail_msg("handshake to %s failed: server: %s; client: %s", host ? host : "(no host)", r.s_why, r.c_why);
}

static void expect_refused(herd_tls *server, herd_tls *client, const char *host, hs *r)
{
    handshake(server, client, host, r);
    if (r->s_ok || r->c_ok) fail_msg("handshake to %s succeeded but should have been refused", host ? host : "(no host)");
    if (getenv("HERD_TEST_VERBOSE")) fprintf(stderr, "refused: server: %s\n         client: %s\n", r->s_why, r->c_why);
}

/* ---- PEM helpers ---- */
static void issue(const herd_tls_spec *spec, char **cert, char **key)
{
    herd_err err;
    if (herd_tls_issue(spec, cert, key, &err)) fail_msg("herd_tls_issue: %s", err.msg);
}

static X509 *pem_x509(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    return x;
}

static const char *env_val(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

/* a CA and a scheduler identity for 127.0.0.1/localhost from it */
typedef struct pki {
    char *ca, *cakey, *scert, *skey;
    herd_tls *server;
} pki;

static void pki_make(pki *p, const char *const *server_names)
{
    static const char *const local[] = { "127.0.0.1", "localhost", NULL };
    herd_tls_spec ca = { .cn = "test CA", .is_ca = 1, .not_before = -3600, .not_after = DAY };
    issue(&ca, &p->ca, &p->cakey);
    herd_tls_spec s = { .cn = "test-scheduler", .server = 1, .client = 1, .names = server_names ? server_names : local,
                        .not_before = -3600, .not_after = DAY, .issuer_cert = p->ca, .issuer_key = p->cakey };
    issue(&s, &p->scert, &p->skey);
    herd_err err;
    p->server = must(herd_tls_from_pem(p->ca, p->scert, p->skey, &p->server, &err), &p->server, &err);
}

/* a client identity issued by p's CA with the given validity, trusting trust_ca */
static herd_tls *pki_client(const pki *p, const char *trust_ca, long nb, long na)
{
    char *c, *k;
    herd_tls_spec s = { .cn = "test-client", .client = 1, .not_before = nb, .not_after = na,
                        .issuer_cert = p->ca, .issuer_key = p->cakey };
    issue(&s, &c, &k);
    herd_tls *t = NULL;
    herd_err err;
    must(herd_tls_from_pem(trust_ca, c, k, &t, &err), &t, &err);
    free(c);
    herd_tls_pem_free(k);
    return t;
}

static void pki_free(pki *p)
{
    free(p->ca);
    free(p->scert);
    herd_tls_pem_free(p->cakey);
    herd_tls_pem_free(p->skey);
    herd_tls_free(p->server);
}

/* ---- tests ---- */
static void test_temporary(void **state)
{
    static const char *const extra[] = { "10.1.2.3", "sched.example.org", NULL };
    herd_err err;
    herd_tls *t = NULL, *w = NULL;
    must(herd_tls_temporary("flow/with odd name", extra, &t, &err), &t, &err);
    char **env = NULL;
    assert_int_equal(herd_tls_export_env(t, &env, &err), 0);
    assert_non_null(env[0]);
    assert_non_null(env[1]);
    assert_non_null(env[2]);
    assert_null(env[3]);
    const char *ca = env_val(env, "HERD_TLS_CA"), *cert = env_val(env, "HERD_TLS_CERT"), *key = env_val(env, "HERD_TLS_KEY");
    assert_non_null(ca);
    assert_non_null(cert);
    assert_non_null(key);
    assert_ptr_equal(strstr(key, "-----BEGIN PRIVATE KEY-----"), key);
    assert_null(strstr(cert, "PRIVATE KEY"));

    /* the CA: a self-signed CA, valid for the advertised period */
    X509 *cax = pem_x509(ca), *wx = pem_x509(cert);
    assert_true(X509_check_ca(cax) > 0);
    assert_int_equal(X509_check_issued(cax, cax), X509_V_OK);
    assert_int_equal(X509_check_issued(cax, wx), X509_V_OK);
    char cn[128];
    X509_NAME_get_text_by_NID(X509_get_subject_name(cax), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, "herd temporary CA flowwithoddname");
    time_t in29 = time(NULL) + 29 * DAY, in31 = time(NULL) + 31 * DAY;
    assert_true(X509_cmp_time(X509_get0_notAfter(wx), &in29) > 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(wx), &in31) < 0);
    assert_true(X509_cmp_current_time(X509_get0_notBefore(wx)) < 0);
    /* the worker certificate is for clients only */
    assert_int_equal(X509_check_purpose(wx, X509_PURPOSE_SSL_CLIENT, 0), 1);
    assert_int_equal(X509_check_purpose(wx, X509_PURPOSE_SSL_SERVER, 0), 0);
    EVP_PKEY *pk = X509_get0_pubkey(wx);
    assert_int_equal(EVP_PKEY_get_base_id(pk), EVP_PKEY_EC);
    assert_int_equal(EVP_PKEY_get_bits(pk), 256);
    X509_free(cax);
    X509_free(wx);

    /* a worker with the exported credentials reaches the scheduler by every name */
    must(herd_tls_from_envp((const char *const *)env, &w, &err), &w, &err);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const char *names[] = { "127.0.0.1", "::1", "localhost", "10.1.2.3", "sched.example.org", host };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) expect_ok(t, w, names[i]);
    expect_ok(t, t, "localhost");      /* a client in the scheduler's process */

    /* but not by a name the certificate does not carry */
    hs r;
    expect_refused(t, w, "10.9.9.9", &r);
    contains(r.c_why, "certificate verify failed");
    contains(r.c_why, "wrong host");
    contains(r.c_why, "\"10.9.9.9\"");
    contains(r.c_why, "IP:127.0.0.1");
    contains(r.s_why, "refused this side's certificate");
    expect_refused(t, w, "other.example.org", &r);
    contains(r.c_why, "not valid for \"other.example.org\"");

    /* a worker's credentials cannot pose as the scheduler */
    expect_refused(w, t, "127.0.0.1", &r);
    contains(r.c_why, "certificate verify failed");

    herd_tls_envp_free(env);
    herd_tls_free(w);
    herd_tls_free(t);
}

static void test_other_ca_refused(void **state)
{
    herd_err err;
    herd_tls *a = NULL, *b = NULL, *bw = NULL, *mixed = NULL;
    must(herd_tls_temporary("a", NULL, &a, &err), &a, &err);
    must(herd_tls_temporary("b", NULL, &b, &err), &b, &err);
    char **aenv, **benv;
    assert_int_equal(herd_tls_export_env(a, &aenv, &err), 0);
    assert_int_equal(herd_tls_export_env(b, &benv, &err), 0);
    /* two temporary CAs never share a key */
    assert_string_not_equal(env_val(aenv, "HERD_TLS_CA"), env_val(benv, "HERD_TLS_CA"));

    /* b's worker dialling a's scheduler: it refuses a's certificate */
    must(herd_tls_from_envp((const char *const *)benv, &bw, &err), &bw, &err);
    hs r;
    expect_refused(a, bw, "127.0.0.1", &r);
    contains(r.c_why, "certificate verify failed");
    contains(r.c_why, "unknown CA");
    contains(r.s_why, "unknown CA");

    /* a client that trusts a's CA but holds b's certificate: a's scheduler refuses it */
    must(herd_tls_from_pem(env_val(aenv, "HERD_TLS_CA"), env_val(benv, "HERD_TLS_CERT"),
                           env_val(benv, "HERD_TLS_KEY"), &mixed, &err), &mixed, &err);
    expect_refused(a, mixed, "127.0.0.1", &r);
    contains(r.s_why, "certificate verify failed: unable to get local issuer certificate");
    contains(r.s_why, "\"herd-worker\" was not issued by a CA this side trusts");
    contains(r.c_why, "refused this side's certificate: unknown CA");

    herd_tls_envp_free(aenv);
    herd_tls_envp_free(benv);
    herd_tls_free(a);
    herd_tls_free(b);
    herd_tls_free(bw);
    herd_tls_free(mixed);
}

static void test_expired_refused(void **state)
{
    pki p = { 0 };
    pki_make(&p, NULL);
    hs r;
    /* control: a current client certificate from the same CA is accepted */
    herd_tls *good = pki_client(&p, p.ca, -3600, DAY);
    expect_ok(p.server, good, "127.0.0.1");

    herd_tls *expired = pki_client(&p, p.ca, -2 * DAY, -DAY);
    expect_refused(p.server, expired, "127.0.0.1", &r);
    contains(r.s_why, "certificate verify failed: certificate has expired");
    contains(r.s_why, "\"test-client\" expired");
    contains(r.s_why, "GMT");
    contains(r.c_why, "expired");

    herd_tls *future = pki_client(&p, p.ca, DAY, 2 * DAY);
    expect_refused(p.server, future, "127.0.0.1", &r);
    contains(r.s_why, "certificate verify failed: certificate is not yet valid");

    /* an expired server certificate: the client refuses it */
    char *sc, *sk;
    herd_tls_spec s = { .cn = "old-scheduler", .server = 1, .names = (const char *const[]){ "127.0.0.1", NULL },
                        .not_before = -2 * DAY, .not_after = -60, .issuer_cert = p.ca, .issuer_key = p.cakey };
    issue(&s, &sc, &sk);
    herd_tls *old = NULL;
    herd_err err;
    must(herd_tls_from_pem(p.ca, sc, sk, &old, &err), &old, &err);
    expect_refused(old, good, "127.0.0.1", &r);
    contains(r.c_why, "certificate has expired (certificate \"old-scheduler\" expired");
    free(sc);
    herd_tls_pem_free(sk);
    herd_tls_free(old);
    herd_tls_free(good);
    herd_tls_free(expired);
    herd_tls_free(future);
    pki_free(&p);
}

static void test_env_roundtrip(void **state)
{
    herd_err err;
    herd_tls *t = NULL, *w = NULL;
    must(herd_tls_temporary("env", NULL, &t, &err), &t, &err);
    char **env;
    assert_int_equal(herd_tls_export_env(t, &env, &err), 0);
    unsetenv("HERD_TLS_CA");
    unsetenv("HERD_TLS_CERT");
    unsetenv("HERD_TLS_KEY");
    assert_int_equal(herd_tls_from_envp(NULL, &w, &err), -ENOENT);
    assert_null(w);
    for (char **e = env; *e; e++) {
        char *eq = strchr(*e, '=');
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
        setenv(name, eq + 1, 1);
    }
    must(herd_tls_from_envp(NULL, &w, &err), &w, &err);
    expect_ok(t, w, "127.0.0.1");
    /* exporting again gives the same credentials */
    char **env2;
    assert_int_equal(herd_tls_export_env(w, &env2, &err), 0);
    for (int i = 0; i < 3; i++) assert_string_equal(env[i], env2[i]);
    herd_tls_envp_free(env2);
    herd_tls_free(w);
    w = NULL;

    /* incomplete and broken environments */
    unsetenv("HERD_TLS_KEY");
    unsetenv("HERD_TLS_CERT");
    assert_int_equal(herd_tls_from_envp(NULL, &w, &err), -HERD_ECONFIG);
    assert_string_equal(err.msg, "TLS credentials in the environment are incomplete: HERD_TLS_CERT, HERD_TLS_KEY not set");
    const char *partial[] = { env[0], env[2], NULL };
    assert_int_equal(herd_tls_from_envp(partial, &w, &err), -HERD_ECONFIG);
    assert_string_equal(err.msg, "TLS credentials in the environment are incomplete: HERD_TLS_CERT not set");
    const char *broken[] = { env[0], "HERD_TLS_CERT=hello", env[2], NULL };
    assert_int_equal(herd_tls_from_envp(broken, &w, &err), -HERD_ECONFIG);
    contains(err.msg, "HERD_TLS_CERT: no PEM certificate found");
    const char *none[] = { "PATH=/bin", NULL };
    assert_int_equal(herd_tls_from_envp(none, &w, &err), -ENOENT);
    assert_null(w);
    unsetenv("HERD_TLS_CA");
    herd_tls_envp_free(env);
    herd_tls_free(t);
}

/* ---- files ---- */
static char tmpdir[64];

static char *write_file(const char *name, const char *a, const char *b)
{
    char *path;
    assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(a, f);
    if (b) fputs(b, f);
    fclose(f);
    return path;
}

static int setup_dir(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/herd-test-security-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_files_roundtrip(void **state)
{
    pki p = { 0 };
    pki_make(&p, NULL);
    char *cc, *ck;
    herd_tls_spec s = { .cn = "file-client", .client = 1, .not_before = -60, .not_after = DAY,
                        .issuer_cert = p.ca, .issuer_key = p.cakey };
    issue(&s, &cc, &ck);
    char *ca = write_file("ca.pem", p.ca, NULL), *cert = write_file("cert.pem", cc, NULL),
         *key = write_file("key.pem", ck, NULL), *both = write_file("both.pem", ck, cc);
    herd_err err;
    herd_tls *t = NULL, *t2 = NULL;
    must(herd_tls_from_files(ca, cert, key, &t, &err), &t, &err);
    expect_ok(p.server, t, "127.0.0.1");
    /* key and certificate in one file (key first), no tls_key */
    must(herd_tls_from_files(ca, both, NULL, &t2, &err), &t2, &err);
    expect_ok(p.server, t2, "localhost");
    char **env;
    assert_int_equal(herd_tls_export_env(t2, &env, &err), 0);
    assert_null(strstr(env_val(env, "HERD_TLS_CERT"), "PRIVATE KEY"));
    assert_string_equal(env_val(env, "HERD_TLS_CERT"), cc);
    herd_tls_envp_free(env);
    /* the scheduler side from files as well */
    herd_tls *srv = NULL;
    char *scert = write_file("sched.pem", p.scert, NULL), *skey = write_file("sched.key", p.skey, NULL);
    must(herd_tls_from_files(ca, scert, skey, &srv, &err), &srv, &err);
    expect_ok(srv, t, "127.0.0.1");
    herd_tls_free(srv);
    herd_tls_free(t);
    herd_tls_free(t2);
    free(ca); free(cert); free(key); free(both); free(scert); free(skey);
    free(cc);
    herd_tls_pem_free(ck);
    pki_free(&p);
}

static void expect_file_error(const char *ca, const char *cert, const char *key, const char *want1, const char *want2)
{
    herd_err err;
    herd_tls *t = (herd_tls *)&err;
    int rc = herd_tls_from_files(ca, cert, key, &t, &err);
    if (rc == 0) fail_msg("loading %s / %s / %s succeeded", ca, cert, key ? key : "-");
    assert_int_equal(rc, err.code);
    assert_null(t);
    contains(err.msg, want1);
    if (want2) contains(err.msg, want2);
}

static void test_bad_files(void **state)
{
    pki p = { 0 };
    pki_make(&p, NULL);
    char *ca = write_file("ca.pem", p.ca, NULL), *cert = write_file("sched.pem", p.scert, NULL),
         *key = write_file("sched.key", p.skey, NULL);
    char *junk = write_file("junk.pem", "this is not PEM\n", NULL);
    char *empty = write_file("empty.pem", "", NULL);
    char *broken = write_file("broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA!!!!\n-----END CERTIFICATE-----\n", NULL);
    char *missing;
    assert_true(asprintf(&missing, "%s/nope.pem", tmpdir) > 0);
    char want[512];

    snprintf(want, sizeof want, "tls_ca_file \"%s\": cannot open: No such file or directory", missing);
    expect_file_error(missing, cert, key, want, NULL);
    snprintf(want, sizeof want, "tls_key \"%s\": cannot open: No such file or directory", missing);
    expect_file_error(ca, cert, missing, want, NULL);
    snprintf(want, sizeof want, "tls_ca_file \"%s\": no PEM certificate found", junk);
    expect_file_error(junk, cert, key, want, NULL);
    snprintf(want, sizeof want, "tls_cert \"%s\": the file is empty", empty);
    expect_file_error(ca, empty, key, want, NULL);
    snprintf(want, sizeof want, "tls_cert \"%s\": malformed PEM certificate", broken);
    expect_file_error(ca, broken, key, want, NULL);
    /* a key where the certificate belongs */
    snprintf(want, sizeof want, "tls_cert \"%s\": no PEM certificate found", key);
    expect_file_error(ca, key, key, want, NULL);
    /* no tls_key and no key in tls_cert */
    snprintf(want, sizeof want, "tls_cert \"%s\": no PEM private key found", cert);
    expect_file_error(ca, cert, NULL, want, NULL);
    snprintf(want, sizeof want, "tls_key \"%s\": no PEM private key found", junk);
    expect_file_error(ca, cert, junk, want, NULL);
    /* the key of another certificate */
    char *oc, *ok;
    herd_tls_spec s = { .cn = "other", .client = 1, .not_before = -60, .not_after = DAY, .issuer_cert = p.ca, .issuer_key = p.cakey };
    issue(&s, &oc, &ok);
    char *okey = write_file("other.key", ok, NULL);
    snprintf(want, sizeof want, "tls_key \"%s\": the private key does not match the certificate \"test-scheduler\" in tls_cert \"%s\"",
             okey, cert);
    expect_file_error(ca, cert, okey, want, NULL);
    /* a passphrase-protected key */
    BIO *b = BIO_new_mem_buf(ok, -1), *o = BIO_new(BIO_s_mem());
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    assert_non_null(pk);
    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(o, pk, EVP_aes_256_cbc(), "pw", 2, NULL, NULL), 1);
    char *enc;
    long n = BIO_get_mem_data(o, &enc);
    char *encpem = strndup(enc, (size_t)n);
    char *ekey = write_file("enc.key", encpem, NULL);
    snprintf(want, sizeof want, "tls_key \"%s\": the private key is encrypted with a passphrase", ekey);
    expect_file_error(ca, cert, ekey, want, NULL);
    expect_file_error(NULL, cert, key, "missing tls_ca_file", NULL);
    expect_file_error(ca, "", key, "missing tls_cert", NULL);
    /* the directory itself is not a file */
    snprintf(want, sizeof want, "tls_ca_file \"%s\": cannot read", tmpdir);
    expect_file_error(tmpdir, cert, key, want, "Is a directory");

    EVP_PKEY_free(pk);
    BIO_free(b);
    BIO_free(o);
    free(encpem);
    free(oc);
    herd_tls_pem_free(ok);
    free(ca); free(cert); free(key); free(junk); free(empty); free(broken); free(missing); free(okey); free(ekey);
    pki_free(&p);
}

static void test_pem_args(void **state)
{
    herd_err err;
    herd_tls *t = NULL;
    assert_int_equal(herd_tls_from_pem(NULL, "x", "y", &t, &err), -HERD_EARG);
    contains(err.msg, "mutual TLS");
    char *c, *k;
    herd_tls_spec bad = { .cn = "x", .names = (const char *const[]){ "good.example", "bad name,IP:1.2.3.4", NULL },
                          .not_after = DAY };
    assert_int_equal(herd_tls_issue(&bad, &c, &k, &err), -HERD_EARG);
    contains(err.msg, "\"bad name,IP:1.2.3.4\" is neither an IP address nor a DNS name");
    assert_null(c);
    herd_tls_spec half = { .cn = "x", .issuer_cert = "pem", .not_after = DAY };
    assert_int_equal(herd_tls_issue(&half, &c, &k, &err), -HERD_EARG);
    assert_int_equal(herd_tls_temporary("x", (const char *const[]){ "a b", NULL }, &t, &err), -HERD_EARG);
    contains(err.msg, "host \"a b\"");
    assert_null(t);
}

static void test_addr_check(void **state)
{
    herd_err err;
    herd_tls *t = NULL;
    must(herd_tls_temporary("addr", NULL, &t, &err), &t, &err);
    assert_int_equal(herd_tls_addr_check(t, "tls://127.0.0.1:8786", &err), 0);
    assert_int_equal(herd_tls_addr_check(NULL, "tcp://127.0.0.1:8786", &err), 0);
    assert_int_equal(herd_tls_addr_check(NULL, "unix:///tmp/x.sock", &err), 0);
    assert_int_equal(herd_tls_addr_check(t, "tcp://127.0.0.1:8786", &err), -HERD_ECONFIG);
    assert_string_equal(err.msg, "address \"tcp://127.0.0.1:8786\": TLS is configured, so the address must be tls://host:port");
    assert_int_equal(herd_tls_addr_check(NULL, "tls://h:1", &err), -HERD_ECONFIG);
    contains(err.msg, "uses TLS but no TLS credentials are configured");
    herd_tls_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_temporary),
        cmocka_unit_test(test_other_ca_refused),
        cmocka_unit_test(test_expired_refused),
        cmocka_unit_test(test_env_roundtrip),
        cmocka_unit_test_setup_teardown(test_files_roundtrip, setup_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_bad_files, setup_dir, remove_dir),
        cmocka_unit_test(test_pem_args),
        cmocka_unit_test(test_addr_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
