/* verify_cache.c - see verify_cache.h. Sits between verify.c and
 * gnutls_certificate_verify_peers3 on the primary attempt's data path; the
 * facts cache beside it is certinfo.c's. */
#include "verify_cache.h"

#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "certinfo.h"
#include "tp_mem.h"

/* A chain that verified: accepted again while now is in [valid_from,
 * valid_until) and the entry is younger than the maximum age. */
typedef struct verified_chain {
  int64_t valid_from, valid_until; /* unix seconds */
  uint64_t verified_ns;            /* uv_hrtime() of the full verification */
} verified_chain;

static void free_verified(void *value) { free(value); }

static void free_facts(void *value) { tp_certinfo_facts_free(value); }

static size_t bound(unsigned configured, unsigned fallback) {
  return configured == 0 ? fallback : configured;
}

void tp__engine_caches_init(tp_engine_caches *c, const tp_probe_engine_options *o) {
  unsigned verify = o ? o->verify_cache_entries : 0;
  unsigned facts = o ? o->facts_cache_entries : 0;
  unsigned age_s =
      o && o->verify_cache_max_age_s ? o->verify_cache_max_age_s : TP_PROBE_VERIFY_MAX_AGE_S;
  memset(c, 0, sizeof(*c));
  if (verify != TP_PROBE_CACHE_OFF)
    c->verified = tp__digest_cache_new(bound(verify, TP_PROBE_VERIFY_CACHE_DEFAULT), free_verified);
  if (facts != TP_PROBE_CACHE_OFF)
    c->facts = tp__digest_cache_new(bound(facts, TP_PROBE_FACTS_CACHE_DEFAULT), free_facts);
  c->max_age_ns = (uint64_t)age_s * 1000000000u;
}

void tp__engine_caches_free(tp_engine_caches *c) {
  tp__digest_cache_free(c->verified);
  tp__digest_cache_free(c->facts);
  c->verified = c->facts = NULL;
}

/* ---- the key ------------------------------------------------------------ */

static void put_u32(gnutls_hash_hd_t h, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  (void)gnutls_hash(h, b, sizeof(b));
}

/* SHA-256 of: a version tag, the profile's verification identity, the name
 * (length-prefixed; NULL differs from ""), and the digest of every
 * certificate in the order sent. */
static bool chain_key(const tp_profile *profile, const char *name, const tp_chain_digests *d,
                      uint8_t key[TP_DIGEST_LEN]) {
  static const char tag[] = "tlsprobe verified chain v1";
  gnutls_hash_hd_t h;
  if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
    return false;
  (void)gnutls_hash(h, tag, sizeof(tag));
  (void)gnutls_hash(h, tp__profile_verify_id(profile), TP_PROFILE_VERIFY_ID_LEN);
  if (name == NULL) {
    put_u32(h, UINT32_MAX);
  } else {
    size_t len = strlen(name);
    put_u32(h, (uint32_t)len);
    (void)gnutls_hash(h, name, len);
  }
  put_u32(h, d->n);
  for (unsigned i = 0; i < d->n; i++)
    (void)gnutls_hash(h, d->cert[i], TP_DIGEST_LEN);
  gnutls_hash_deinit(h, key);
  return true;
}

/* ---- the validity window ------------------------------------------------ */

/* Narrows [from, until] to crt's validity period. GnuTLS treats an
 * undefined time ((time_t)-1) as invalid, so such a chain is not cached. */
static bool narrow(gnutls_x509_crt_t crt, int64_t *from, int64_t *until) {
  time_t nb = gnutls_x509_crt_get_activation_time(crt);
  time_t na = gnutls_x509_crt_get_expiration_time(crt);
  if (nb == (time_t)-1 || na == (time_t)-1)
    return false;
  if ((int64_t)nb > *from)
    *from = (int64_t)nb;
  if ((int64_t)na < *until)
    *until = (int64_t)na;
  return true;
}

/* RFC 7633 TLS feature status_request (5): the chain is acceptable only
 * with a staple, which GnuTLS judges on every probe. */
static bool demands_staple(gnutls_x509_crt_t crt) {
  gnutls_x509_tlsfeatures_t features;
  bool found = false;
  if (gnutls_x509_tlsfeatures_init(&features) < 0)
    return true; /* cannot tell: treat as demanding */
  if (gnutls_x509_crt_get_tlsfeatures(crt, features, 0, NULL) == 0) {
    unsigned feature;
    for (unsigned i = 0; !found && gnutls_x509_tlsfeatures_get(features, i, &feature) == 0; i++)
      found = feature == 5;
  }
  gnutls_x509_tlsfeatures_deinit(features);
  return found;
}

/* The anchors GnuTLS may use for crt: one that issues it, and one that
 * carries its name (a trusted copy of a sent CA certificate, which GnuTLS
 * substitutes and time-checks). */
static bool narrow_by_anchors(gnutls_x509_trust_list_t tl, gnutls_x509_crt_t crt, int64_t *from,
                              int64_t *until) {
  bool ok = true;
  gnutls_x509_crt_t anchor = NULL;
  if (gnutls_x509_trust_list_get_issuer(tl, crt, &anchor, GNUTLS_TL_GET_COPY) == 0) {
    ok = narrow(anchor, from, until);
    gnutls_x509_crt_deinit(anchor);
    anchor = NULL;
  }
  gnutls_datum_t dn = {NULL, 0};
  if (ok && gnutls_x509_crt_get_raw_dn(crt, &dn) == 0) {
    if (gnutls_x509_trust_list_get_issuer_by_dn(tl, &dn, &anchor, 0) == 0) {
      ok = narrow(anchor, from, until);
      gnutls_x509_crt_deinit(anchor);
    }
    gnutls_free(dn.data);
  }
  return ok;
}

bool tp__verify_chain_window(gnutls_x509_trust_list_t tl, const gnutls_datum_t *certs, unsigned n,
                             int64_t *valid_from, int64_t *valid_until) {
  int64_t from = INT64_MIN, until = INT64_MAX;
  bool ok = n > 0;
  for (unsigned i = 0; ok && i < n; i++) {
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
      return false;
    ok = gnutls_x509_crt_import(crt, &certs[i], GNUTLS_X509_FMT_DER) == 0 &&
         narrow(crt, &from, &until) && !demands_staple(crt) &&
         (tl == NULL || narrow_by_anchors(tl, crt, &from, &until));
    gnutls_x509_crt_deinit(crt);
  }
  *valid_from = from;
  *valid_until = until;
  return ok && from <= until;
}

/* ---- the decision ------------------------------------------------------- */

static bool staple_present(gnutls_session_t s, unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    gnutls_datum_t d;
    if (gnutls_ocsp_status_request_get2(s, i, &d) >= 0)
      return true;
  }
  return false;
}

static bool still_holds(const tp_engine_caches *c, const verified_chain *v, int64_t now_unix,
                        uint64_t now_ns) {
  /* now == valid_until is still valid for GnuTLS (it fails only after);
   * stopping one second early only costs a full verification. */
  return now_ns - v->verified_ns < c->max_age_ns && v->valid_from <= now_unix &&
         now_unix < v->valid_until;
}

/* After GnuTLS said the chain verifies: remember it with its window. */
static void remember(tp_engine_caches *c, const tp_profile *profile, const uint8_t key[],
                     const gnutls_datum_t *peers, unsigned n, int64_t now_unix, uint64_t now_ns) {
  gnutls_x509_trust_list_t tl = NULL;
  gnutls_certificate_get_trust_list(tp__profile_credentials(profile), &tl); /* borrowed */
  verified_chain v = {.verified_ns = now_ns};
  if (!tp__verify_chain_window(tl, peers, n, &v.valid_from, &v.valid_until) ||
      now_unix < v.valid_from || now_unix >= v.valid_until) {
    (void)tp__digest_cache_remove(c->verified, key);
    return;
  }
  verified_chain *stored = tp_xmalloc(sizeof(*stored));
  *stored = v;
  tp__digest_cache_put(c->verified, key, stored);
}

int tp__verify_peers_cached(tp_engine_caches *c, gnutls_session_t s, const tp_profile *profile,
                            const char *name, const gnutls_datum_t *peers, unsigned n_peers,
                            const tp_chain_digests *d, unsigned *status) {
  uint8_t key[TP_DIGEST_LEN];
  if (c->verified == NULL || peers == NULL || !d->complete || d->n != n_peers ||
      !chain_key(profile, name, d, key))
    return gnutls_certificate_verify_peers3(s, name, status);
  int64_t now_unix = (int64_t)time(NULL); /* the clock GnuTLS verifies against */
  uint64_t now_ns = uv_hrtime();
  const verified_chain *v = tp__digest_cache_get(c->verified, key);
  if (v != NULL && still_holds(c, v, now_unix, now_ns) && !staple_present(s, n_peers)) {
    c->stats.verify_hits++;
    *status = 0;
    return 0;
  }
  if (v != NULL)
    c->stats.verify_rechecks++;
  else
    c->stats.verify_misses++;
  int rc = gnutls_certificate_verify_peers3(s, name, status);
  if (rc >= 0 && *status == 0)
    remember(c, profile, key, peers, n_peers, now_unix, now_ns);
  else if (v != NULL)
    (void)tp__digest_cache_remove(c->verified, key);
  return rc;
}
