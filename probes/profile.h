/* profile.h - a client profile: how the probe's ClientHello looks and what it
 * trusts. Built once from configuration (tp_profile_new) and then shared,
 * read-only, by every probe that uses it: the GnuTLS priority cache and the
 * certificate credentials are the expensive parts and are never rebuilt per
 * probe (s2n's config vs connection split). */
#ifndef TP_PROFILE_H
#define TP_PROFILE_H
#include <stddef.h>

#include "tp_error.h"

/* TLS protocol versions a profile may offer (bitmask). */
enum {
  TP_TLS1_0 = 1u << 0,
  TP_TLS1_1 = 1u << 1,
  TP_TLS1_2 = 1u << 2,
  TP_TLS1_3 = 1u << 3,
};
#define TP_TLS_DEFAULT_VERSIONS (TP_TLS1_2 | TP_TLS1_3)

/* Parses "TLS1.0".."TLS1.3" into one TP_TLS* bit; returns 0 if unknown. */
unsigned tp_tls_version_from_name(const char *name);
/* Comma-separated list of the names tp_tls_version_from_name knows. */
const char *tp_tls_version_names(void);

/* Plain description of a profile, as configured. Strings are borrowed and only
 * need to live during tp_profile_new. */
typedef struct tp_profile_spec {
  const char *name;
  unsigned versions;    /* TP_TLS* bits; 0 = TP_TLS_DEFAULT_VERSIONS */
  const char *priority; /* raw GnuTLS priority string; exclusive with versions */
  const char *trust;    /* NULL or "system", a PEM bundle file or a directory */
} tp_profile_spec;

typedef struct tp_profile tp_profile;

/* Builds the profile; on failure writes a specific message to err (no
 * file/line: the caller knows where the spec came from and prefixes it). */
tp_err tp_profile_new(const tp_profile_spec *spec, tp_profile **out, char *err, size_t errlen);
void tp_profile_free(tp_profile *profile);
const char *tp_profile_name(const tp_profile *profile);
/* The GnuTLS priority string the profile was built with (for logs and docs). */
const char *tp_profile_priority_string(const tp_profile *profile);

#endif
