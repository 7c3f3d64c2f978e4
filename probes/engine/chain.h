/* chain.h - tells a server that omitted an intermediate (incomplete_chain,
 * the server owner acts) from a client that lacks the root (unknown_ca, the
 * trust-store owner acts). GnuTLS reports both as GNUTLS_CERT_SIGNER_NOT_FOUND
 * (even with the intermediate added, when the root is unknown), so the server
 * is blamed only on evidence that verifies:
 *   - the last certificate sent is self-issued: a root we do not trust -> unknown_ca;
 *   - its issuer is in the profile's intermediate pool, and the chain then
 *     verifies against the trust store -> incomplete_chain;
 *   - it names its issuer by AIA caIssuers (RFC 5280 §4.2.2.1): the caller may
 *     fetch it (aia.c) and re-verify with tp_chain_verify_with_issuer; only a
 *     chain that then verifies is incomplete_chain;
 *   - otherwise unknown_ca, with a detail that says the issuer was missing and
 *     where it may be. */
#ifndef TP_CHAIN_H
#define TP_CHAIN_H
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stddef.h>

#include "outcome.h"

/* Called when verification reported SIGNER_NOT_FOUND, with the chain as sent
 * (DER). Returns TP_OUTCOME_INCOMPLETE_CHAIN or TP_OUTCOME_UNKNOWN_CA with a
 * detail; aia_url receives the last certificate's caIssuers http URL when the
 * outcome is unknown_ca and one exists (else ""), so the caller can fetch it. */
tp_outcome tp_chain_diagnose_signer_not_found(const gnutls_datum_t *peers, size_t n_peers,
                                              gnutls_certificate_credentials_t cred,
                                              const gnutls_x509_crt_t *pool, size_t n_pool,
                                              const char *hostname, char *detail, size_t len,
                                              char *aia_url, size_t url_len);

/* Re-verifies the chain as sent plus `issuer` (DER or PEM, as fetched), then its
 * issuers from the pool. Returns incomplete_chain when the chain now reaches a
 * trust anchor, else unknown_ca; detail says which and why. */
tp_outcome tp_chain_verify_with_issuer(const gnutls_datum_t *peers, size_t n_peers,
                                       const gnutls_datum_t *issuer,
                                       gnutls_certificate_credentials_t cred,
                                       const gnutls_x509_crt_t *pool, size_t n_pool,
                                       const char *hostname, const char *url, char *detail,
                                       size_t len);

#endif
