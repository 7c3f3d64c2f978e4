/* chain.h - tells a server that omitted an intermediate (incomplete_chain,
 * the server owner acts) from a client that lacks the root (unknown_ca, the
 * trust-store owner acts). GnuTLS reports both as GNUTLS_CERT_SIGNER_NOT_FOUND,
 * so the decision needs evidence about the last certificate sent:
 *   - it is self-issued: the server sent a root we do not trust -> unknown_ca;
 *   - its issuer is in the profile's intermediate pool: add it (and its own
 *     issuers from the pool), re-verify against the trust store; success
 *     confirms incomplete_chain;
 *   - it carries an AIA caIssuers URL: the issuer exists elsewhere and the
 *     server should have sent it -> incomplete_chain (the URL is reported,
 *     never fetched);
 *   - otherwise unknown_ca. */
#ifndef TP_CHAIN_H
#define TP_CHAIN_H
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stddef.h>

#include "outcome.h"

/* Called when verification reported SIGNER_NOT_FOUND. Returns
 * TP_OUTCOME_INCOMPLETE_CHAIN or TP_OUTCOME_UNKNOWN_CA with a detail. */
tp_outcome tp_chain_diagnose_signer_not_found(gnutls_session_t session,
                                              gnutls_certificate_credentials_t cred,
                                              const gnutls_x509_crt_t *pool, size_t n_pool,
                                              const char *hostname, char *detail, size_t len);

#endif
