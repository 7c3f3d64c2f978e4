/* tls_server.h - the collector's HTTPS credentials and client-certificate checks.
 *
 * libmicrohttpd builds its GnuTLS credentials once, so the server certificate is
 * handed over per handshake instead (MHD_OPTION_HTTPS_CERT_CALLBACK, GnuTLS's
 * retrieve function): a reload on SIGHUP swaps the set new handshakes get, and the
 * previous set is freed only once every connection that was open at the swap has
 * closed (a connection may have picked it in its handshake). Client certificates are
 * verified here, in the request handler's thread, against a trust list (CA + optional
 * CRL) that is reloaded with the rest: libmicrohttpd only requests them.
 *
 * TLS versions and suites: TP_TLS_SERVER_PRIORITIES (TLS 1.2 and 1.3, AEAD suites
 * with forward secrecy only). */
#ifndef TP_TLS_SERVER_H
#define TP_TLS_SERVER_H
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stddef.h>
#include <stdint.h>

#include "tp_error.h"
#include "tp_log.h"

#define TP_TLS_SERVER_PRIORITIES                                                                   \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"            \
  "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

typedef struct tp_tls_server tp_tls_server;

typedef struct tp_tls_files {
  const char *cert_file;       /* PEM chain, leaf first */
  const char *key_file;        /* PEM key, unencrypted */
  const char *client_ca_file;  /* NULL = no client certificates */
  const char *client_crl_file; /* NULL = no CRL */
} tp_tls_files;

/* Loads everything (a key that does not match the certificate is an error). Warns
 * through log when the key file is readable by group or others. Only one HTTPS server
 * may exist per process (GnuTLS's callback carries no pointer of ours). */
tp_err tp_tls_server_new(const tp_tls_files *files, const tp_log *log, tp_tls_server **out,
                         char *err, size_t errlen);
void tp_tls_server_free(tp_tls_server *tls);
/* Re-reads the files; on failure everything in force stays. */
tp_err tp_tls_server_reload(tp_tls_server *tls, char *err, size_t errlen);

/* For MHD_OPTION_HTTPS_CERT_CALLBACK. */
int tp_tls_server_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                           const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                           gnutls_pcert_st **pcert, unsigned int *pcert_length,
                           gnutls_privkey_t *privkey);
/* The client CA file's PEM text, for MHD_OPTION_HTTPS_MEM_TRUST (which makes MHD
 * request a client certificate and name the CA in its request); NULL without one.
 * Read at start: the names advertised change only with a restart, the CA a
 * certificate is verified against changes on reload. */
const char *tp_tls_server_client_ca_pem(const tp_tls_server *tls);
/* "CN=collector.example" of the leaf in force, for logs. */
void tp_tls_server_describe(tp_tls_server *tls, char *out, size_t len);

/* A connection opened / closed (the HTTP thread's notifications): keeps retired
 * credential sets alive while a connection that might use them is open. */
uint64_t tp_tls_server_conn_opened(tp_tls_server *tls);
void tp_tls_server_conn_closed(tp_tls_server *tls, uint64_t epoch);

/* Generation of the client trust list; changes on every reload (cached verdicts
 * of an older generation must be redone). */
uint64_t tp_tls_server_trust_generation(tp_tls_server *tls);

/* The agent identity in the session's client certificate: TP_E_OK with identity set
 * (the certificate's CN, else its first DNS SAN, which must be a valid agent id);
 * TP_E_NOTFOUND when the client sent none (or no client CA is configured);
 * TP_E_TLS with why ("certificate not trusted: signer not found") otherwise. */
tp_err tp_tls_server_peer_identity(tp_tls_server *tls, gnutls_session_t session, char *identity,
                                   size_t identity_len, char *why, size_t why_len);

#endif
