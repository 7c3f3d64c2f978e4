/* certinfo.h - extracts the facts of the peer's certificate chain as sent.
 * Works whether or not verification succeeded: an expired or untrusted chain
 * is exactly when operators need to see what was served. */
#ifndef TP_CERTINFO_H
#define TP_CERTINFO_H
#include <gnutls/gnutls.h>

#include "digest_cache.h"
#include "result.h"
#include "tp_limits.h"

/* At most this many certificates / leaf DNS names are recorded. */
#define TP_CERTINFO_MAX_CHAIN 16
#define TP_CERTINFO_MAX_SANS 64
_Static_assert(TP_CERTINFO_MAX_CHAIN <= TP_V_MAX_CHAIN, "chain cap within the wire limit");
_Static_assert(TP_CERTINFO_MAX_SANS <= TP_V_MAX_SANS, "SAN cap within the wire limit");

/* The engine's facts cache (digest_cache.h): a certificate's facts depend on
 * its bytes only, so they are parsed once per distinct DER and copied into
 * each result. What depends on the time (days_to_earliest_expiry) is worked
 * out for every result. */
typedef struct tp_certinfo_cache {
  tp_digest_cache *facts;          /* digest -> tp_cert_facts; NULL = parse every time */
  const tp_chain_digests *digests; /* of the certificates passed in */
  uint64_t *hits, *misses;         /* counters to bump */
} tp_certinfo_cache;

/* Fills result->chain, chain_len and days_to_earliest_expiry from the peer
 * certificates of `session`; `now_unix` anchors the days computation.
 * Leaves the chain empty when the peer sent none or it cannot be parsed.
 * cache may be NULL. */
void tp_certinfo_collect(gnutls_session_t session, int64_t now_unix, const tp_certinfo_cache *cache,
                         tp_result *result);
/* The same from `n` DER certificates in the order the server sent them (leaf
 * first), without a cache: the entry point of the fuzz target
 * (tests/fuzz/fuzz_certinfo.c). */
void tp_certinfo_collect_der(const gnutls_datum_t *certs, unsigned n, int64_t now_unix,
                             tp_result *result);
/* The same through a cache (NULL = none). */
void tp_certinfo_collect_cached(const gnutls_datum_t *certs, unsigned n, int64_t now_unix,
                                const tp_certinfo_cache *cache, tp_result *result);
/* Frees a tp_cert_facts allocated on its own (the cache's values). */
void tp_certinfo_facts_free(tp_cert_facts *facts);

#endif
