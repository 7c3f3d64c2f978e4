/* priority.h - builds the GnuTLS priority string of a profile from its
 * structured fields (versions, ciphers, key exchanges, MACs, groups, signature
 * algorithms), validating every name against the names the linked GnuTLS
 * itself reports. The string never depends on host policy (@SYSTEM is
 * refused; see agent/host_policy.h for the system priority file).
 *
 * Order: GnuTLS offers cipher suites in priority-string order, key exchange
 * first: for each key exchange (in the given order), each cipher (in order),
 * each MAC (in order) -- lib/priority.c set_ciphersuite_list(). TLS 1.3 suites
 * come first, ordered by cipher. So a profile can express "prefer ECDHE over
 * RSA, AES-256-GCM over AES-128-GCM", but not an arbitrary interleaving of
 * suites, and every valid (kx, cipher, MAC) combination of the lists is
 * offered. */
#ifndef TP_PRIORITY_H
#define TP_PRIORITY_H
#include <stddef.h>

#include "profile.h"

/* The structured dimensions of a profile. */
typedef enum {
  TP_PRIO_CIPHER = 0,
  TP_PRIO_KX,
  TP_PRIO_MAC,
  TP_PRIO_GROUP,
  TP_PRIO_SIGN,
  TP_PRIO__COUNT
} tp_priority_dim;

/* "cipher", "key exchange", "MAC", "group", "signature algorithm". */
const char *tp_priority_dim_name(tp_priority_dim dim);

/* The GnuTLS spelling of `name` (matched case-insensitively) if the linked
 * GnuTLS can offer it in a TLS client hello through a priority string,
 * otherwise NULL. The result is a static string owned by GnuTLS. Needs no
 * gnutls_global_init (the library initialises itself when loaded). */
const char *tp_priority_canonical(tp_priority_dim dim, const char *name);

/* Writes every accepted name of `dim` as "A, B, C" into buf (truncated with
 * "..." when it does not fit). */
void tp_priority_known(tp_priority_dim dim, char *buf, size_t len);

/* Returns a new string (caller frees) or NULL with a specific message in err,
 * e.g. "unknown group \"P-999\" (known: X25519, SECP256R1, ...)". The string
 * is checked with gnutls_priority_init: every requested TLS version must have
 * at least one cipher suite it can use (TLS 1.0/1.1 need a CBC cipher with a
 * SHA1 or MD5 MAC, TLS 1.3 an AEAD cipher). */
char *tp__priority_build(const tp_profile_spec *spec, char *err, size_t errlen);

/* One cipher suite a priority string offers. */
typedef struct tp_offered_suite {
  unsigned id;      /* IANA code point, 0xHHLL */
  const char *name; /* GnuTLS's name, e.g. "TLS_ECDHE_RSA_AES_128_GCM_SHA256" (static) */
} tp_offered_suite;

/* The suites `priority` offers that some version in `versions` (TP_TLS*
 * bits) can negotiate, in the order GnuTLS puts them in the ClientHello.
 * Writes up to `max` and returns how many there are in total; -1 if GnuTLS
 * rejects the string. */
long tp__priority_offered(const char *priority, unsigned versions, tp_offered_suite *out,
                          size_t max);

#endif
