/* core/security.h — TLS for herd connections (hidden API): credentials from
 * PEM files, PEM text or the environment, an in-memory temporary CA for one
 * cluster (`security: temporary`), TLS bufferevents for both ends of a
 * connection, and clear reasons when a handshake is refused.
 *
 * Policy: TLS 1.2 or later (1.3 preferred), forward-secret AEAD ciphers only,
 * and MUTUAL authentication: the server requires a client certificate issued
 * by its CA, the client checks the server certificate against its CA and the
 * host name or IP it dialled.
 *
 * A herd_tls holds two SSL_CTXs (server side, client side). It is read-only
 * after creation and may be shared by threads; every connection gets its own
 * SSL, which holds a reference to its SSL_CTX, so connections may outlive the
 * herd_tls that created them. */
#ifndef HERD_SECURITY_H
#define HERD_SECURITY_H

#include "internal.h"
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

typedef struct herd_tls herd_tls;

/* Environment variables that carry a worker's credentials (PEM text). The key
 * is a secret: never log HERD_TLS_KEY. */
#define HERD_TLS_ENV_CA   "HERD_TLS_CA"
#define HERD_TLS_ENV_CERT "HERD_TLS_CERT"
#define HERD_TLS_ENV_KEY  "HERD_TLS_KEY"
/* Not secret: the name the scheduler's certificate is checked against in
 * place of the host dialled (client_kwargs.tls_server_name). */
#define HERD_TLS_ENV_SERVER_NAME "HERD_TLS_SERVER_NAME"

/* Validity of the certificates herd_tls_temporary makes. */
#define HERD_TLS_TEMP_VALID_S (30L * 86400)

/* Load credentials from PEM files: ca_file (one or more CA certificates: the
 * peers to trust), cert_file (this process's certificate, optionally followed
 * by its chain) and key_file (its unencrypted private key; NULL: the key is in
 * cert_file). The same identity serves both sides. Errors name the option and
 * the file (tls_ca_file, tls_cert, tls_key) and say what is wrong. */
int herd_tls_from_files(const char *ca_file, const char *cert_file, const char *key_file,
                        herd_tls **out, herd_err *err);
/* The same from PEM text (key NULL: it is in cert). */
int herd_tls_from_pem(const char *ca, const char *cert, const char *key,
                      herd_tls **out, herd_err *err);
/* From HERD_TLS_CA/HERD_TLS_CERT/HERD_TLS_KEY (and HERD_TLS_SERVER_NAME,
 * when set: herd_tls_set_server_name) looked up in envp (a
 * NULL-terminated "K=V" array) or, when envp is NULL, in the process
 * environment. Returns -ENOENT (err filled) when none of them is set,
 * -HERD_ECONFIG naming the missing ones when only some are. */
int herd_tls_from_envp(const char *const *envp, herd_tls **out, herd_err *err);

/* A temporary CA made in memory (nothing is written to disk), used to issue a
 * scheduler certificate (serverAuth+clientAuth; names localhost, 127.0.0.1,
 * ::1, this host's name and each of hosts, a NULL-terminated list of extra DNS
 * names or IP literals, may be NULL) and one worker/client certificate
 * (clientAuth only: it cannot pose as the scheduler). EC P-256 keys, valid
 * from one hour ago for HERD_TLS_TEMP_VALID_S. The CA key is discarded once
 * both are signed. The result serves the scheduler (server side) and local
 * clients (client side); herd_tls_export_env hands workers the worker
 * identity. */
int herd_tls_temporary(const char *cluster_name, const char *const *hosts,
                       herd_tls **out, herd_err *err);
/* security: temporary for a scheduler that runs elsewhere (a provider's
 * start_scheduler): the CA is made now, with the client/worker identity
 * (client_out: serves the client side only), and kept in ca_out to issue the
 * scheduler's certificate once its host names are known
 * (herd_tls_ca_server_env); free it right after. */
typedef struct herd_tls_ca herd_tls_ca;
int herd_tls_temporary_remote(const char *cluster_name, herd_tls **client_out, herd_tls_ca **ca_out, herd_err *err);
/* A scheduler identity (serverAuth+clientAuth, names localhost, 127.0.0.1,
 * ::1 and hosts) as three "K=V" strings HERD_TLS_CA/CERT/KEY; free with
 * herd_tls_envp_free (wipes the key). */
int herd_tls_ca_server_env(const herd_tls_ca *ca, const char *const *hosts, char ***envp_out, herd_err *err);
void herd_tls_ca_free(herd_tls_ca *ca);
/* The client-side identity as a NULL-terminated array of three "K=V"
 * strings (HERD_TLS_CA, HERD_TLS_CERT, HERD_TLS_KEY; a fourth,
 * HERD_TLS_SERVER_NAME, when a server name is set) to add to a worker's
 * environment. Free with herd_tls_envp_free (wipes the key). */
int herd_tls_export_env(const herd_tls *t, char ***envp_out, herd_err *err);
void herd_tls_envp_free(char **envp);
void herd_tls_free(herd_tls *t);

/* The name the client side checks the server's certificate against in
 * place of the host it dialled (gRPC's ssl_target_name_override): for a
 * scheduler behind NAT or a load balancer, or one whose address is known
 * only once it runs (a provider's start_scheduler). NULL: the host dialled.
 * Set it before the first connection (a herd_tls is read-only once shared).
 * herd_tls_server_name_check: is name a DNS name or an IP address? Errors
 * name field ("client_kwargs.tls_server_name") and the value. Peer
 * connections (herd_tls_connect_peer) check no name either way. */
int herd_tls_server_name_check(const char *field, const char *name, herd_err *err);
int herd_tls_set_server_name(herd_tls *t, const char *field, const char *name, herd_err *err);
const char *herd_tls_server_name(const herd_tls *t);

/* addr is "tls://..." exactly when t is not NULL; otherwise an error saying
 * which side is missing. */
int herd_tls_addr_check(const herd_tls *t, const char *addr, herd_err *err);

/* TLS bufferevents on a connected socket. fd is taken in every case (closed
 * on failure, closed with the bufferevent otherwise: BEV_OPT_CLOSE_ON_FREE).
 * accept: the server side; the handshake requires a client certificate from
 * the CA. connect: the client side; host is what was dialled (a name or an IP
 * literal) and the server certificate must be valid for it (NULL skips the
 * name check — only for tests). A dirty TCP close reads as EOF: frames carry
 * their length, so truncation cannot go unnoticed. */
struct bufferevent *herd_tls_accept(herd_tls *t, struct event_base *base, evutil_socket_t fd,
                                    herd_err *err);
struct bufferevent *herd_tls_connect(herd_tls *t, struct event_base *base, evutil_socket_t fd,
                                     const char *host, herd_err *err);

/* The client side of a connection to a worker's peer server: the peer's
 * certificate must chain to the CA and be a cluster member's (clientAuth:
 * workers present their worker identity); its host is not checked (a
 * worker's certificate names no host). The cluster token is checked on top. */
struct bufferevent *herd_tls_connect_peer(herd_tls *t, struct event_base *base, evutil_socket_t fd, herd_err *err);

/* How herd_tls_error's reason begins when the peer sent something that is not
 * TLS (a plain herd frame: it dialled tcp://). */
#define HERD_TLS_NOT_TLS "the peer does not speak TLS"
/* When a TLS bufferevent reports BEV_EVENT_ERROR or BEV_EVENT_EOF: write a
 * clear reason into buf ("certificate verify failed: certificate has expired
 * (certificate CN=..., notAfter ...)", "the peer presented no certificate...",
 * ...) and return 1; return 0 (buf untouched) when bev is not a TLS
 * bufferevent or nothing TLS-specific went wrong (a plain EOF after a
 * completed handshake). Consumes the bufferevent's queued OpenSSL errors. */
int herd_tls_error(struct bufferevent *bev, short what, char *buf, size_t cap);
/* 1 while bev is a TLS bufferevent whose handshake has not finished. */
int herd_tls_handshaking(struct bufferevent *bev);
/* After the handshake: the peer certificate's subject CN (for logs). Returns
 * 1, or 0 (buf = "") when bev is not TLS or has no peer certificate. */
int herd_tls_peer_name(struct bufferevent *bev, char *buf, size_t cap);

/* ---- lower level: used by the functions above and by tests ---- */
/* A new SSL for one connection (server or client side, host as for
 * herd_tls_connect), with the verification bookkeeping herd_tls_ssl_error uses. */
SSL *herd_tls_ssl_new(herd_tls *t, int server, const char *host, herd_err *err);
/* The reason an SSL failed: e is the first OpenSSL error code queued by the
 * failure (0 if none). Returns 1 if a reason was written, else 0. */
int herd_tls_ssl_error(SSL *ssl, unsigned long e, char *buf, size_t cap);

/* Issue one certificate and its new EC P-256 key, as PEM text (malloc'd;
 * free key_pem with herd_tls_pem_free). */
typedef struct herd_tls_spec {
    const char *cn;                /* subject common name */
    int is_ca;                     /* CA:TRUE, keyCertSign (no EKU) */
    int server, client;            /* extendedKeyUsage serverAuth / clientAuth */
    const char *const *names;      /* subjectAltName: IP literals -> IP:, else DNS: */
    long not_before, not_after;    /* validity, seconds relative to now */
    const char *issuer_cert, *issuer_key;   /* PEM; NULL: self-signed */
} herd_tls_spec;
int herd_tls_issue(const herd_tls_spec *spec, char **cert_pem, char **key_pem, herd_err *err);
/* Wipe and free PEM text that may hold a key. */
void herd_tls_pem_free(char *pem);

#endif
