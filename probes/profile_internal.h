/* profile_internal.h - what the probe engine borrows from a profile. */
#ifndef TP_PROFILE_INTERNAL_H
#define TP_PROFILE_INTERNAL_H
#include <gnutls/gnutls.h>

#include "profile.h"

gnutls_priority_t tp__profile_priority(const tp_profile *profile);
gnutls_certificate_credentials_t tp__profile_credentials(const tp_profile *profile);

#endif
