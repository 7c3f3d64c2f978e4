/* certinfo.c - peer chain -> tp_cert_facts (subject, issuer, SANs, validity,
 * key, signature algorithm). A legal certificate may carry text the wire
 * contract does not allow (a 1,500-byte subject, a SAN that is not UTF-8,
 * control characters): every string is fitted here, at its source, so a
 * certificate can never make its target's result invalid (tp_text.h). */
#include "certinfo.h"

#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>

#include "tp_limits.h"
#include "tp_mem.h"
#include "tp_text.h"

static char *datum_to_string(gnutls_datum_t *d) {
  char *s = tp_text_fit((const char *)d->data, d->size, TP_V_MAX_CERT_TEXT);
  gnutls_free(d->data);
  d->data = NULL;
  return s;
}

static void collect_sans(gnutls_x509_crt_t crt, tp_cert_facts *facts) {
  for (unsigned i = 0; facts->n_san_dns < TP_CERTINFO_MAX_SANS; i++) {
    char name[256];
    size_t size = sizeof(name);
    unsigned critical = 0;
    int type = gnutls_x509_crt_get_subject_alt_name(crt, i, name, &size, &critical);
    if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
      break;
    if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
      continue; /* a >255-byte DNS name is not a valid host name anyway */
    if (type < 0)
      break;
    if (type != GNUTLS_SAN_DNSNAME)
      continue;
    facts->san_dns = tp_xrealloc(facts->san_dns, (facts->n_san_dns + 1) * sizeof(char *));
    facts->san_dns[facts->n_san_dns++] = tp_text_fit(name, size, TP_V_MAX_HOST);
  }
}

static int collect_one(const gnutls_datum_t *der, bool leaf, tp_cert_facts *facts) {
  gnutls_x509_crt_t crt;
  gnutls_datum_t text = {NULL, 0};
  if (gnutls_x509_crt_init(&crt) < 0)
    return -1;
  int rc = -1;
  if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0)
    goto out;
  if (gnutls_x509_crt_get_dn3(crt, &text, 0) == 0)
    facts->subject = datum_to_string(&text);
  if (gnutls_x509_crt_get_issuer_dn3(crt, &text, 0) == 0)
    facts->issuer = datum_to_string(&text);
  facts->not_before_unix = (int64_t)gnutls_x509_crt_get_activation_time(crt);
  facts->not_after_unix = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
  unsigned bits = 0;
  int pk = gnutls_x509_crt_get_pk_algorithm(crt, &bits);
  if (pk >= 0) {
    const char *name = gnutls_pk_get_name((gnutls_pk_algorithm_t)pk);
    facts->key_type = tp_text_fit_str(name ? name : "unknown", TP_V_MAX_SHORT);
    facts->key_bits = bits;
  }
  int sig = gnutls_x509_crt_get_signature_algorithm(crt);
  if (sig >= 0) {
    const char *name = gnutls_sign_get_name((gnutls_sign_algorithm_t)sig);
    facts->signature_algorithm = tp_text_fit_str(name ? name : "unknown", TP_V_MAX_SHORT);
  }
  if (leaf)
    collect_sans(crt, facts);
  rc = 0;
out:
  gnutls_x509_crt_deinit(crt);
  return rc;
}

/* ---- the facts cache: one parse per distinct certificate --------------- */

/* Frees what collect_one filled (every owned field of tp_cert_facts). */
static void facts_clear(tp_cert_facts *f) {
  free(f->subject);
  free(f->issuer);
  for (size_t i = 0; i < f->n_san_dns; i++)
    free(f->san_dns[i]);
  free(f->san_dns);
  free(f->key_type);
  free(f->signature_algorithm);
  memset(f, 0, sizeof(*f));
}

void tp_certinfo_facts_free(tp_cert_facts *facts) {
  if (facts == NULL)
    return;
  facts_clear(facts);
  free(facts);
}

/* A deep copy; the leaf's DNS names only where the certificate is the leaf
 * (the cache holds them for whatever position the certificate is sent at). */
static void facts_copy(tp_cert_facts *dst, const tp_cert_facts *src, bool leaf) {
  *dst = *src;
  dst->subject = tp_xstrdup_or_null(src->subject);
  dst->issuer = tp_xstrdup_or_null(src->issuer);
  dst->key_type = tp_xstrdup_or_null(src->key_type);
  dst->signature_algorithm = tp_xstrdup_or_null(src->signature_algorithm);
  dst->san_dns = NULL;
  dst->n_san_dns = 0;
  if (!leaf || src->n_san_dns == 0)
    return;
  dst->san_dns = tp_xcalloc(src->n_san_dns, sizeof(char *));
  for (size_t i = 0; i < src->n_san_dns; i++)
    dst->san_dns[i] = tp_xstrdup(src->san_dns[i]);
  dst->n_san_dns = src->n_san_dns;
}

/* The facts of certificate i into *out: from the cache when its digest is
 * there, else parsed (and cached). Returns -1 for an unparsable certificate,
 * which is never cached (verification reports it). */
static int facts_of(const tp_certinfo_cache *cache, const gnutls_datum_t *cert, unsigned i,
                    tp_cert_facts *out) {
  bool cached =
      cache != NULL && cache->facts != NULL && cache->digests != NULL && i < cache->digests->n;
  if (!cached)
    return collect_one(cert, i == 0, out);
  const uint8_t *key = cache->digests->cert[i];
  const tp_cert_facts *hit = tp__digest_cache_get(cache->facts, key);
  if (hit != NULL) {
    (*cache->hits)++;
    facts_copy(out, hit, i == 0);
    return 0;
  }
  (*cache->misses)++;
  tp_cert_facts *parsed = tp_xcalloc(1, sizeof(*parsed));
  if (collect_one(cert, true, parsed) != 0) {
    tp_certinfo_facts_free(parsed);
    return -1;
  }
  facts_copy(out, parsed, i == 0);
  tp__digest_cache_put(cache->facts, key, parsed);
  return 0;
}

void tp_certinfo_collect(gnutls_session_t session, int64_t now_unix, const tp_certinfo_cache *cache,
                         tp_result *result) {
  unsigned n = 0;
  const gnutls_datum_t *certs = gnutls_certificate_get_peers(session, &n);
  if (certs != NULL)
    tp_certinfo_collect_cached(certs, n, now_unix, cache, result);
}

void tp_certinfo_collect_der(const gnutls_datum_t *certs, unsigned n, int64_t now_unix,
                             tp_result *result) {
  tp_certinfo_collect_cached(certs, n, now_unix, NULL, result);
}

void tp_certinfo_collect_cached(const gnutls_datum_t *certs, unsigned n, int64_t now_unix,
                                const tp_certinfo_cache *cache, tp_result *result) {
  if (n == 0)
    return;
  result->chain_length_sent = n; /* before the cap: what the server really sent */
  if (n > TP_CERTINFO_MAX_CHAIN)
    n = TP_CERTINFO_MAX_CHAIN;
  result->chain = tp_xcalloc(n, sizeof(tp_cert_facts));
  int64_t earliest = INT64_MAX;
  for (unsigned i = 0; i < n; i++) {
    tp_cert_facts *facts = &result->chain[result->chain_len];
    if (facts_of(cache, &certs[i], i, facts) != 0) {
      facts_clear(facts); /* what a failed parse left */
      continue;           /* an unparsable certificate: verification reports the failure */
    }
    result->chain_len++;
    if (facts->not_after_unix > 0 && facts->not_after_unix < earliest)
      earliest = facts->not_after_unix;
  }
  if (earliest != INT64_MAX) {
    /* floor division, so a certificate that expired an hour ago is at -1 days */
    int64_t diff = earliest - now_unix;
    int64_t days = diff >= 0 ? diff / 86400 : -((-diff + 86399) / 86400);
    result->days_to_earliest_expiry = (int32_t)days;
  }
}
