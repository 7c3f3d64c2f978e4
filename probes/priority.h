/* priority.h - builds the GnuTLS priority string of a profile from its
 * structured fields (versions, ciphers, key exchanges, MACs, groups, signature
 * algorithms), validating every name. The string never depends on host policy
 * (@SYSTEM is refused). */
#ifndef TP_PRIORITY_H
#define TP_PRIORITY_H
#include <stddef.h>

#include "profile.h"

/* Returns a new string (caller frees) or NULL with a specific message in err,
 * e.g. "unknown group \"P-999\" (known: X25519, SECP256R1, ...)". */
char *tp__priority_build(const tp_profile_spec *spec, char *err, size_t errlen);

#endif
