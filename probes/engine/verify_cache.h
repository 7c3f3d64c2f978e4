/* verify_cache.h - chain verification through the engine's cache of chains
 * that verified (engine-internal; docs/internals/engine-caches.md).
 *
 * The question a probe asks, "what does gnutls_certificate_verify_peers3 say
 * about this chain, for this name, now?", depends on the chain's bytes, the
 * profile (trust store, verification flags), the name, the time, and the
 * OCSP staple(s). A success is kept under a key made of the first three; the
 * answer is taken from the cache only when what can change without the bytes
 * changing provably does not change it:
 *   - time: every certificate sent, and every trust anchor issuing or naming
 *     one of them, is still inside its validity period (the cache keeps the
 *     intersection of those periods and checks it against the clock);
 *   - no OCSP staple came with the chain (a staple is always judged by GnuTLS,
 *     revocation included), and no certificate demands one (RFC 7633);
 *   - the entry is younger than the maximum age.
 * Otherwise GnuTLS verifies in full, and its status is the answer. Failures
 * are never cached: their classification (incomplete_chain evidence, AIA)
 * needs more than the status, and a failing target is rare; so every
 * verdict other than ok is reached exactly as without the cache.
 *
 * The server's CertificateVerify signature (its possession of the leaf's
 * key) is checked by GnuTLS inside every handshake; only the chain's
 * verification is cached. */
#ifndef TP_VERIFY_CACHE_H
#define TP_VERIFY_CACHE_H
#include <gnutls/gnutls.h>

#include "digest_cache.h"
#include "probe.h"
#include "profile_internal.h"

/* The engine's caches and their counters (owned by the engine). */
typedef struct tp_engine_caches {
  tp_digest_cache *verified; /* chain key -> when and for how long it verified; NULL = off */
  tp_digest_cache *facts;    /* certificate digest -> tp_cert_facts; NULL = off */
  uint64_t max_age_ns;
  tp_probe_cache_stats stats;
} tp_engine_caches;

void tp__engine_caches_init(tp_engine_caches *caches, const tp_probe_engine_options *options);
void tp__engine_caches_free(tp_engine_caches *caches);

/* What gnutls_certificate_verify_peers3(session, name, status) returns and
 * sets, from the cache when that is provably the same (see above). `peers`
 * and `digests` are the session's peer chain as sent and its digests. */
int tp__verify_peers_cached(tp_engine_caches *caches, gnutls_session_t session,
                            const tp_profile *profile, const char *name,
                            const gnutls_datum_t *peers, unsigned n_peers,
                            const tp_chain_digests *digests, unsigned *status);

/* The validity window of a chain that verified: the intersection of the
 * validity periods of `n` certificates as sent and of the anchors in `tl`
 * that issue or carry the name of one of them. False when it cannot be told
 * (an unparsable certificate, no defined time) or a certificate demands an
 * OCSP staple: such a chain is never cached. Exposed for the unit test. */
bool tp__verify_chain_window(gnutls_x509_trust_list_t tl, const gnutls_datum_t *certs, unsigned n,
                             int64_t *valid_from, int64_t *valid_until);

#endif
