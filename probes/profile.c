/* profile.c - turns a tp_profile_spec into a GnuTLS priority cache and a
 * certificate credential, once. Probes borrow both (profile_internal.h). */
#include "profile.h"

#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "profile_internal.h"
#include "tp_mem.h"

struct tp_profile {
  char *name;
  char *priority_string;
  gnutls_priority_t priority;
  gnutls_certificate_credentials_t credentials;
};

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

/* NORMAL minus every version, plus the requested ones. Legacy versions also
 * need the legacy signature/hash and cipher choices NORMAL still carries in
 * GnuTLS 3.7; %COMPAT relaxes record-layer strictness old servers rely on. */
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

static tp_err load_trust(gnutls_certificate_credentials_t cred, const char *trust, char *err,
                         size_t errlen) {
  int n;
  struct stat st;
  if (trust == NULL || strcmp(trust, "system") == 0) {
    n = gnutls_certificate_set_x509_system_trust(cred);
    trust = "the system trust store";
  } else if (stat(trust, &st) != 0) {
    snprintf(err, errlen, "trust \"%s\": no such file or directory", trust);
    return TP_E_CONFIG;
  } else if (S_ISDIR(st.st_mode)) {
    n = gnutls_certificate_set_x509_trust_dir(cred, trust, GNUTLS_X509_FMT_PEM);
  } else {
    n = gnutls_certificate_set_x509_trust_file(cred, trust, GNUTLS_X509_FMT_PEM);
  }
  if (n < 0) {
    snprintf(err, errlen, "trust \"%s\": %s", trust, gnutls_strerror(n));
    return TP_E_CONFIG;
  }
  if (n == 0) {
    snprintf(err, errlen, "trust: no CA certificate could be loaded from %s", trust);
    return TP_E_CONFIG;
  }
  return TP_E_OK;
}

tp_err tp_profile_new(const tp_profile_spec *spec, tp_profile **out, char *err, size_t errlen) {
  tp_err rc = TP_E_CONFIG;
  const char *err_pos = NULL;
  tp_profile *p = tp_xcalloc(1, sizeof(*p));
  p->name = tp_xstrdup(spec->name);

  if (spec->priority != NULL && spec->versions != 0) {
    snprintf(err, errlen,
             "\"priority\" is a raw GnuTLS string and cannot be combined with \"versions\"; "
             "put the versions in the priority string (e.g. -VERS-ALL:+VERS-TLS1.3)");
    goto fail;
  }
  if (spec->priority != NULL && strstr(spec->priority, "@SYSTEM") != NULL) {
    snprintf(err, errlen,
             "priority: @SYSTEM makes the profile depend on the host's crypto policy; "
             "spell the profile out instead");
    goto fail;
  }
  p->priority_string = spec->priority != NULL
                           ? tp_xstrdup(spec->priority)
                           : priority_for_versions(spec->versions ? spec->versions
                                                                  : TP_TLS_DEFAULT_VERSIONS);
  int grc = gnutls_priority_init2(&p->priority, p->priority_string, &err_pos, 0);
  if (grc < 0) {
    snprintf(err, errlen, "priority \"%s\": %s near \"%s\"", p->priority_string,
             gnutls_strerror(grc), err_pos ? err_pos : "");
    p->priority = NULL;
    goto fail;
  }
  grc = gnutls_certificate_allocate_credentials(&p->credentials);
  if (grc < 0) {
    snprintf(err, errlen, "cannot allocate credentials: %s", gnutls_strerror(grc));
    rc = TP_E_TLS;
    p->credentials = NULL;
    goto fail;
  }
  rc = load_trust(p->credentials, spec->trust, err, errlen);
  if (rc != TP_E_OK)
    goto fail;
  *out = p;
  return TP_E_OK;

fail:
  tp_profile_free(p);
  return rc;
}

void tp_profile_free(tp_profile *profile) {
  if (profile == NULL)
    return;
  if (profile->priority != NULL)
    gnutls_priority_deinit(profile->priority);
  if (profile->credentials != NULL)
    gnutls_certificate_free_credentials(profile->credentials);
  free(profile->priority_string);
  free(profile->name);
  free(profile);
}

const char *tp_profile_name(const tp_profile *profile) {
  return profile->name;
}

const char *tp_profile_priority_string(const tp_profile *profile) {
  return profile->priority_string;
}

gnutls_priority_t tp__profile_priority(const tp_profile *profile) {
  return profile->priority;
}

gnutls_certificate_credentials_t tp__profile_credentials(const tp_profile *profile) {
  return profile->credentials;
}
