/* profile_library.h - the built-in, named client profiles ("modern", "old",
 * "android-4.4"...). A job may name them without defining them, and a
 * configured profile may start from one with `base: NAME`. The table is
 * static, read-only data: specs point at string literals. */
#ifndef TP_PROFILE_LIBRARY_H
#define TP_PROFILE_LIBRARY_H
#include <stddef.h>

#include "profile.h"

typedef struct tp_builtin_profile {
  const char *description; /* what it emulates and from which public source */
  tp_profile_spec spec;    /* spec.fidelity_note: what GnuTLS cannot reproduce */
} tp_builtin_profile;

size_t tp_profile_library_count(void);
/* i < tp_profile_library_count(); never NULL. */
const tp_builtin_profile *tp_profile_library_at(size_t i);
/* NULL if no built-in profile has that (case-sensitive) name. */
const tp_builtin_profile *tp_profile_library_find(const char *name);
/* "modern, intermediate, ..." into buf (truncated if short). */
void tp_profile_library_names(char *buf, size_t len);

#endif
