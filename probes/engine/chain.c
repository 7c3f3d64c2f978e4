/* chain.c - incomplete_chain vs unknown_ca from evidence (see chain.h). Works
 * on DER copies of the chain, so a fetched issuer can be checked after the
 * connection that delivered the chain is gone. */
#include "chain.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_limits.h"
#include "tp_text.h"

#define MAX_CHAIN 16

/* The certificate's issuer DN, fitted and escaped (it ends up in a detail). */
static void issuer_dn(gnutls_x509_crt_t crt, char *out, size_t len) {
  gnutls_datum_t dn = {NULL, 0};
  if (gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0) != 0) {
    snprintf(out, len, "?");
    return;
  }
  char *fitted = tp_text_fit((const char *)dn.data, dn.size, len > 200 ? 200 : len - 1);
  snprintf(out, len, "%s", fitted);
  free(fitted);
  gnutls_free(dn.data);
}

/* Imports up to MAX_CHAIN/2 certificates; returns how many. */
static size_t import_chain(const gnutls_datum_t *peers, size_t n_peers, gnutls_x509_crt_t *chain) {
  size_t n = 0;
  for (size_t i = 0; i < n_peers && n < MAX_CHAIN / 2; i++) {
    if (gnutls_x509_crt_init(&chain[n]) < 0)
      break;
    if (gnutls_x509_crt_import(chain[n], &peers[i], GNUTLS_X509_FMT_DER) < 0) {
      gnutls_x509_crt_deinit(chain[n]);
      break;
    }
    n++;
  }
  return n;
}

/* Appends issuers of chain[*n - 1] found in the pool until a self-issued one
 * or the cap. Returns how many were added (borrowed: never deinit them). */
static size_t extend_from_pool(gnutls_x509_crt_t *chain, size_t *n, const gnutls_x509_crt_t *pool,
                               size_t n_pool) {
  size_t added = 0;
  while (*n < MAX_CHAIN) {
    gnutls_x509_crt_t last = chain[*n - 1];
    if (gnutls_x509_crt_check_issuer(last, last))
      break;
    size_t i = 0;
    while (i < n_pool && !gnutls_x509_crt_check_issuer(last, pool[i]))
      i++;
    if (i == n_pool)
      break;
    chain[(*n)++] = pool[i];
    added++;
  }
  return added;
}

/* The verification status of the chain against the profile's trust store. */
static unsigned verify_status(gnutls_certificate_credentials_t cred, gnutls_x509_crt_t *chain,
                              size_t n, const char *hostname) {
  gnutls_x509_trust_list_t tl = NULL;
  gnutls_certificate_get_trust_list(cred, &tl); /* borrowed; owned by the credentials */
  if (tl == NULL)
    return GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_NOT_FOUND;
  gnutls_typed_vdata_st vdata = {.type = GNUTLS_DT_DNS_HOSTNAME,
                                 .data = (unsigned char *)hostname,
                                 .size = 0};
  unsigned status = 0;
  if (gnutls_x509_trust_list_verify_crt2(tl, chain, (unsigned)n, &vdata, hostname ? 1 : 0, 0,
                                         &status, NULL) < 0)
    return GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_NOT_FOUND;
  return status;
}

/* The first caIssuers URI, if it is plain http (the only kind fetched). */
static bool aia_ca_issuers(gnutls_x509_crt_t crt, char *url, size_t len) {
  for (unsigned seq = 0; seq < 16; seq++) {
    gnutls_datum_t data = {NULL, 0};
    unsigned critical = 0;
    int rc = gnutls_x509_crt_get_authority_info_access(crt, seq, GNUTLS_IA_CAISSUERS_URI, &data,
                                                       &critical);
    if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
      return false;
    if (rc < 0)
      continue; /* another access method at this position */
    bool usable = data.size < len && tp_text_fits((const char *)data.data, data.size, len - 1);
    if (usable)
      snprintf(url, len, "%.*s", (int)data.size, (const char *)data.data);
    gnutls_free(data.data);
    if (usable)
      return true;
  }
  return false;
}

static void deinit_sent(gnutls_x509_crt_t *chain, size_t sent) {
  for (size_t i = 0; i < sent; i++)
    gnutls_x509_crt_deinit(chain[i]);
}

tp_outcome tp_chain_diagnose_signer_not_found(const gnutls_datum_t *peers, size_t n_peers,
                                              gnutls_certificate_credentials_t cred,
                                              const gnutls_x509_crt_t *pool, size_t n_pool,
                                              const char *hostname, char *detail, size_t len,
                                              char *aia_url, size_t url_len) {
  gnutls_x509_crt_t chain[MAX_CHAIN];
  tp_outcome outcome = TP_OUTCOME_UNKNOWN_CA;
  char issuer[256];
  aia_url[0] = '\0';
  size_t n = import_chain(peers, n_peers, chain);
  if (n == 0)
    return outcome;
  size_t sent = n;
  gnutls_x509_crt_t last = chain[sent - 1];
  issuer_dn(last, issuer, sizeof(issuer));
  if (gnutls_x509_crt_check_issuer(last, last)) {
    snprintf(detail, len, "the chain ends in a root the profile does not trust: %s", issuer);
  } else if (extend_from_pool(chain, &n, pool, n_pool) > 0 &&
             (verify_status(cred, chain, n, hostname) & GNUTLS_CERT_SIGNER_NOT_FOUND) == 0) {
    outcome = TP_OUTCOME_INCOMPLETE_CHAIN;
    snprintf(detail, len,
             "the server did not send the intermediate \"%s\"; the chain verifies once it is "
             "added from the intermediate pool",
             issuer);
  } else if (aia_ca_issuers(last, aia_url, url_len)) {
    snprintf(detail, len,
             "issuer \"%s\" of the last certificate sent is not in the profile's trust store; "
             "the certificate names it at %s (AIA caIssuers)",
             issuer, aia_url);
  } else {
    snprintf(detail, len, "issuer \"%s\" is not in the profile's trust store", issuer);
  }
  deinit_sent(chain, sent);
  return outcome;
}

static int import_issuer(gnutls_x509_crt_t crt, const gnutls_datum_t *issuer) {
  if (gnutls_x509_crt_import(crt, issuer, GNUTLS_X509_FMT_DER) == 0)
    return 0;
  return gnutls_x509_crt_import(crt, issuer, GNUTLS_X509_FMT_PEM);
}

tp_outcome tp_chain_verify_with_issuer(const gnutls_datum_t *peers, size_t n_peers,
                                       const gnutls_datum_t *fetched,
                                       gnutls_certificate_credentials_t cred,
                                       const gnutls_x509_crt_t *pool, size_t n_pool,
                                       const char *hostname, const char *url, char *detail,
                                       size_t len) {
  gnutls_x509_crt_t chain[MAX_CHAIN];
  char issuer[256];
  tp_outcome outcome = TP_OUTCOME_UNKNOWN_CA;
  size_t n = import_chain(peers, n_peers, chain);
  if (n == 0) {
    snprintf(detail, len, "the chain as sent cannot be parsed");
    return outcome;
  }
  size_t sent = n;
  issuer_dn(chain[sent - 1], issuer, sizeof(issuer));
  gnutls_x509_crt_t extra = NULL;
  if (gnutls_x509_crt_init(&extra) < 0 || import_issuer(extra, fetched) < 0) {
    snprintf(detail, len,
             "issuer \"%s\" of the last certificate sent is missing; what %s (AIA caIssuers) "
             "serves is not a certificate",
             issuer, url);
    goto out;
  }
  if (!gnutls_x509_crt_check_issuer(chain[sent - 1], extra)) {
    snprintf(detail, len,
             "issuer \"%s\" of the last certificate sent is missing; the certificate %s (AIA "
             "caIssuers) serves is not its issuer",
             issuer, url);
    goto out;
  }
  chain[n++] = extra;
  (void)extend_from_pool(chain, &n, pool, n_pool);
  unsigned status = verify_status(cred, chain, n, hostname);
  if ((status & GNUTLS_CERT_SIGNER_NOT_FOUND) == 0) {
    outcome = TP_OUTCOME_INCOMPLETE_CHAIN;
    snprintf(detail, len,
             "the server did not send the intermediate \"%s\"; fetched from %s (AIA caIssuers), "
             "the chain verifies with it",
             issuer, url);
  } else {
    snprintf(detail, len,
             "issuer \"%s\" is not in the profile's trust store: the chain does not verify even "
             "with the issuer fetched from %s (AIA caIssuers)",
             issuer, url);
  }
out:
  deinit_sent(chain, sent);
  if (extra != NULL)
    gnutls_x509_crt_deinit(extra);
  return outcome;
}
