/* profile_internal.h - what the probe engine borrows from a profile. */
#ifndef TP_PROFILE_INTERNAL_H
#define TP_PROFILE_INTERNAL_H
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"

gnutls_priority_t tp__profile_priority(const tp_profile *profile);

/* Which dimension a diagnostic handshake widens. */
typedef enum { TP_WIDEN_GROUPS, TP_WIDEN_CIPHERS, TP_WIDEN__COUNT } tp_widen;
gnutls_priority_t tp__profile_widened_priority(const tp_profile *profile, tp_widen what);
gnutls_certificate_credentials_t tp__profile_credentials(const tp_profile *profile);
bool tp__profile_has_client_certificate(const tp_profile *profile);
/* The intermediate pool (see tp_profile_spec.intermediates); *count may be 0. */
const gnutls_x509_crt_t *tp__profile_intermediates(const tp_profile *profile, size_t *count);
/* ALPN protocols for gnutls_alpn_set_protocols(); *count = 0 when none. */
const gnutls_datum_t *tp__profile_alpn(const tp_profile *profile, unsigned *count);
/* Flags for gnutls_init beyond GNUTLS_CLIENT: the key-share count. */
unsigned tp__profile_session_flags(const tp_profile *profile);

/* What a verification result depends on besides the chain's bytes, the name
 * and the time: the trust store, the credentials' verification flags and
 * limits, and the priority string's verification profile -- all fixed when
 * the profile is built. A random identity drawn then names them (so a
 * profile freed and another allocated at the same address never share
 * cached verifications). */
#define TP_PROFILE_VERIFY_ID_LEN 16
const uint8_t *tp__profile_verify_id(const tp_profile *profile);

#endif
