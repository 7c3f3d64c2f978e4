/* priority.c - profile fields -> GnuTLS priority string. */
#include "priority.h"

#include <stdio.h>
#include <string.h>

#include "tp_mem.h"

static const struct {
  const char *name;
  unsigned bit;
  const char *gnutls_name;
} versions[] = {
    {"TLS1.0", TP_TLS1_0, "VERS-TLS1.0"},
    {"TLS1.1", TP_TLS1_1, "VERS-TLS1.1"},
    {"TLS1.2", TP_TLS1_2, "VERS-TLS1.2"},
    {"TLS1.3", TP_TLS1_3, "VERS-TLS1.3"},
};
#define N_VERSIONS (sizeof(versions) / sizeof(versions[0]))

unsigned tp_tls_version_from_name(const char *name) {
  for (size_t i = 0; i < N_VERSIONS; i++)
    if (strcmp(versions[i].name, name) == 0)
      return versions[i].bit;
  return 0;
}

const char *tp_tls_version_names(void) {
  return "TLS1.0, TLS1.1, TLS1.2, TLS1.3";
}

/* NORMAL minus every version, plus the requested ones. %COMPAT relaxes the
 * record-layer strictness that old servers rely on. */
static char *priority_for_versions(unsigned mask) {
  char buf[256];
  size_t used = (size_t)snprintf(buf, sizeof(buf), "NORMAL:-VERS-ALL");
  for (size_t i = 0; i < N_VERSIONS; i++) {
    if (mask & versions[i].bit)
      used += (size_t)snprintf(buf + used, sizeof(buf) - used, ":+%s", versions[i].gnutls_name);
  }
  if (mask & (TP_TLS1_0 | TP_TLS1_1))
    snprintf(buf + used, sizeof(buf) - used, ":%%COMPAT");
  return tp_xstrdup(buf);
}

char *tp__priority_build(const tp_profile_spec *spec, char *err, size_t errlen) {
  if (spec->ciphers || spec->key_exchanges || spec->macs || spec->groups ||
      spec->signature_algorithms) {
    snprintf(err, errlen, "ciphers/key_exchanges/macs/groups/signature_algorithms are not "
                          "supported by this build; use \"priority\"");
    return NULL;
  }
  return priority_for_versions(spec->versions ? spec->versions : TP_TLS_DEFAULT_VERSIONS);
}
