/* chain.c - incomplete_chain vs unknown_ca from evidence (see chain.h). */
#include "chain.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAX_CHAIN 16

static void issuer_dn(gnutls_x509_crt_t crt, char *out, size_t len) {
  gnutls_datum_t dn = {NULL, 0};
  if (gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0) == 0) {
    snprintf(out, len, "%.*s", (int)dn.size, (const char *)dn.data);
    gnutls_free(dn.data);
  } else {
    snprintf(out, len, "?");
  }
}

/* Appends issuers of chain[*n - 1] found in the pool until a self-issued one
 * or the cap. Returns how many were added. */
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

static bool verifies_with(gnutls_certificate_credentials_t cred, gnutls_x509_crt_t *chain, size_t n,
                          const char *hostname) {
  gnutls_x509_trust_list_t tl = NULL;
  gnutls_certificate_get_trust_list(cred, &tl); /* borrowed; owned by the credentials */
  if (tl == NULL)
    return false;
  gnutls_typed_vdata_st vdata = {.type = GNUTLS_DT_DNS_HOSTNAME,
                                 .data = (unsigned char *)hostname,
                                 .size = 0};
  unsigned status = 0;
  if (gnutls_x509_trust_list_verify_crt2(tl, chain, (unsigned)n, &vdata, hostname ? 1 : 0, 0,
                                         &status, NULL) < 0)
    return false;
  return (status & GNUTLS_CERT_SIGNER_NOT_FOUND) == 0;
}

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
    snprintf(url, len, "%.*s", (int)data.size, (const char *)data.data);
    gnutls_free(data.data);
    return true;
  }
  return false;
}

tp_outcome tp_chain_diagnose_signer_not_found(gnutls_session_t session,
                                              gnutls_certificate_credentials_t cred,
                                              const gnutls_x509_crt_t *pool, size_t n_pool,
                                              const char *hostname, char *detail, size_t len) {
  unsigned n_peers = 0;
  const gnutls_datum_t *peers = gnutls_certificate_get_peers(session, &n_peers);
  gnutls_x509_crt_t chain[MAX_CHAIN];
  size_t n = 0;
  tp_outcome outcome = TP_OUTCOME_UNKNOWN_CA;
  char issuer[512], url[512];
  if (peers == NULL || n_peers == 0)
    return outcome;
  for (unsigned i = 0; i < n_peers && n < MAX_CHAIN / 2; i++) {
    if (gnutls_x509_crt_init(&chain[n]) < 0)
      break;
    if (gnutls_x509_crt_import(chain[n], &peers[i], GNUTLS_X509_FMT_DER) < 0) {
      gnutls_x509_crt_deinit(chain[n]);
      break;
    }
    n++;
  }
  if (n == 0)
    return outcome;
  size_t sent = n;
  gnutls_x509_crt_t last = chain[sent - 1];
  issuer_dn(last, issuer, sizeof(issuer));
  if (gnutls_x509_crt_check_issuer(last, last)) {
    snprintf(detail, len, "the chain ends in a root the profile does not trust: %s", issuer);
  } else if (extend_from_pool(chain, &n, pool, n_pool) > 0 &&
             verifies_with(cred, chain, n, hostname)) {
    outcome = TP_OUTCOME_INCOMPLETE_CHAIN;
    snprintf(detail, len,
             "the server did not send the intermediate \"%s\"; the chain verifies once it is "
             "added from the intermediate pool",
             issuer);
  } else if (aia_ca_issuers(last, url, sizeof(url))) {
    outcome = TP_OUTCOME_INCOMPLETE_CHAIN;
    snprintf(detail, len,
             "the server did not send the issuer \"%s\" of its last certificate, which names it "
             "at %s (AIA caIssuers; not fetched)",
             issuer, url);
  } else {
    snprintf(detail, len, "issuer \"%s\" is not in the profile's trust store", issuer);
  }
  for (size_t i = 0; i < sent; i++) /* pool entries are borrowed */
    gnutls_x509_crt_deinit(chain[i]);
  return outcome;
}
