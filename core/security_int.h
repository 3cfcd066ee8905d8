/* core/security_int.h — what security.c (credentials, contexts, TLS
 * connections) and security_ca.c (the temporary CA, issuing certificates)
 * share and nobody else sees: the PEM and context helpers the issuing code
 * builds on (prefix tls_). security_ca.c calls security.c, never the reverse. */
#ifndef HERD_SECURITY_INT_H
#define HERD_SECURITY_INT_H

#include "security.h"

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Append to buf (len so far), cut to cap. */
void tls_clip(char *buf, size_t cap, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
const char *tls_ossl_reason(void);
int tls_load_certs(const char *pem, const char *what, STACK_OF(X509) **out, herd_err *err);
int tls_load_key(const char *pem, const char *what, EVP_PKEY **out, herd_err *err);
char *tls_bio_text(BIO *b);
char *tls_key_pem(EVP_PKEY *k);
int tls_build(const char *ca, const char *ca_what, const char *cert, const char *cert_what,
                 const char *key, const char *key_what, const char *scert, const char *skey,
                 herd_tls **out, herd_err *err);
int tls_is_ip(const char *s);

#endif
