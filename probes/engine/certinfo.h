/* certinfo.h - extracts the facts of the peer's certificate chain as sent.
 * Works whether or not verification succeeded: an expired or untrusted chain
 * is exactly when operators need to see what was served. */
#ifndef TP_CERTINFO_H
#define TP_CERTINFO_H
#include <gnutls/gnutls.h>

#include "result.h"
#include "tp_limits.h"

/* At most this many certificates / leaf DNS names are recorded. */
#define TP_CERTINFO_MAX_CHAIN 16
#define TP_CERTINFO_MAX_SANS 64
_Static_assert(TP_CERTINFO_MAX_CHAIN <= TP_V_MAX_CHAIN, "chain cap within the wire limit");
_Static_assert(TP_CERTINFO_MAX_SANS <= TP_V_MAX_SANS, "SAN cap within the wire limit");

/* Fills result->chain, chain_len and days_to_earliest_expiry from the peer
 * certificates of `session`; `now_unix` anchors the days computation.
 * Leaves the chain empty when the peer sent none or it cannot be parsed. */
void tp_certinfo_collect(gnutls_session_t session, int64_t now_unix, tp_result *result);
/* The same from `n` DER certificates in the order the server sent them (leaf
 * first): what tp_certinfo_collect does with the peer's, and the entry point
 * of the fuzz target (tests/fuzz/fuzz_certinfo.c). */
void tp_certinfo_collect_der(const gnutls_datum_t *certs, unsigned n, int64_t now_unix,
                             tp_result *result);

#endif
