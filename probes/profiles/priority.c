/* priority.c - profile fields -> GnuTLS priority string.
 *
 * Names are never hard-coded: each dimension's accepted names come from the
 * linked GnuTLS (gnutls_cipher_suite_info, gnutls_group_list,
 * gnutls_sign_list...), so a library built without an algorithm rejects it
 * at config time with the list of what it does have. */
#include "priority.h"

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tp_buf.h"
#include "tp_mem.h"

static const struct {
  const char *name;
  unsigned bit;
  const char *gnutls_name;
  gnutls_protocol_t protocol;
} versions[] = {
    {"TLS1.0", TP_TLS1_0, "VERS-TLS1.0", GNUTLS_TLS1_0},
    {"TLS1.1", TP_TLS1_1, "VERS-TLS1.1", GNUTLS_TLS1_1},
    {"TLS1.2", TP_TLS1_2, "VERS-TLS1.2", GNUTLS_TLS1_2},
    {"TLS1.3", TP_TLS1_3, "VERS-TLS1.3", GNUTLS_TLS1_3},
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

/* Per dimension: how the priority string removes all of it, and the prefix of
 * one item ("+GROUP-X25519"). */
static const struct {
  const char *label, *remove_all, *prefix;
} dims[TP_PRIO__COUNT] = {
    [TP_PRIO_CIPHER] = {"cipher", "-CIPHER-ALL", ""},
    [TP_PRIO_KX] = {"key exchange", "-KX-ALL", ""},
    [TP_PRIO_MAC] = {"MAC", "-MAC-ALL", ""},
    [TP_PRIO_GROUP] = {"group", "-GROUP-ALL", "GROUP-"},
    [TP_PRIO_SIGN] = {"signature algorithm", "-SIGN-ALL", "SIGN-"},
};

const char *tp_priority_dim_name(tp_priority_dim dim) {
  return dim < TP_PRIO__COUNT ? dims[dim].label : "?";
}

/* Certificate-authenticated key exchanges: the only ones a probe can use.
 * PSK, SRP and anonymous suites need credentials a prober does not have, and
 * GOST (VKO) is not built into Debian's GnuTLS in a usable form. */
static bool kx_allowed(gnutls_kx_algorithm_t kx) {
  return kx == GNUTLS_KX_ECDHE_ECDSA || kx == GNUTLS_KX_ECDHE_RSA || kx == GNUTLS_KX_RSA ||
         kx == GNUTLS_KX_DHE_RSA || kx == GNUTLS_KX_DHE_DSS;
}

/* True if some TLS 1.3 suite (kx unknown) or some suite with an allowed key
 * exchange uses this cipher (dim CIPHER) or MAC (dim MAC). */
static bool in_some_suite(tp_priority_dim dim, int alg) {
  unsigned char id[2];
  gnutls_kx_algorithm_t kx;
  gnutls_cipher_algorithm_t cipher;
  gnutls_mac_algorithm_t mac;
  gnutls_protocol_t min;
  for (size_t i = 0; gnutls_cipher_suite_info(i, id, &kx, &cipher, &mac, &min) != NULL; i++) {
    if (kx != GNUTLS_KX_UNKNOWN && !kx_allowed(kx))
      continue;
    if ((dim == TP_PRIO_CIPHER && (int)cipher == alg) || (dim == TP_PRIO_MAC && (int)mac == alg))
      return true;
  }
  return false;
}

/* Calls fn(name, ctx) for each accepted name of dim, in GnuTLS's list order,
 * once per distinct name; stops early when fn returns true. Returns the name
 * fn stopped at, or NULL. */
typedef bool (*name_fn)(const char *name, void *ctx);

static const char *each_name(tp_priority_dim dim, name_fn fn, void *ctx) {
  switch (dim) {
  case TP_PRIO_CIPHER:
    for (const gnutls_cipher_algorithm_t *c = gnutls_cipher_list(); *c; c++)
      if (in_some_suite(dim, (int)*c) && fn(gnutls_cipher_get_name(*c), ctx))
        return gnutls_cipher_get_name(*c);
    return NULL;
  case TP_PRIO_KX:
    for (const gnutls_kx_algorithm_t *k = gnutls_kx_list(); *k; k++)
      if (kx_allowed(*k) && fn(gnutls_kx_get_name(*k), ctx))
        return gnutls_kx_get_name(*k);
    return NULL;
  case TP_PRIO_MAC:
    for (const gnutls_mac_algorithm_t *m = gnutls_mac_list(); *m; m++)
      if (in_some_suite(dim, (int)*m) && fn(gnutls_mac_get_name(*m), ctx))
        return gnutls_mac_get_name(*m);
    return NULL;
  case TP_PRIO_GROUP:
    /* GOST groups (GC256B, GC512A) only go with the GOST key exchange. */
    for (const gnutls_group_t *g = gnutls_group_list(); *g; g++) {
      const char *name = gnutls_group_get_name(*g);
      if (name != NULL && strncmp(name, "GC", 2) != 0 && fn(name, ctx))
        return name;
    }
    return NULL;
  case TP_PRIO_SIGN:
    /* The list has aliases (two OIDs for RSA-SHA1...): report each name once. */
    for (const gnutls_sign_algorithm_t *s = gnutls_sign_list(); *s; s++) {
      const char *name = gnutls_sign_get_name(*s);
      bool seen = false;
      for (const gnutls_sign_algorithm_t *t = gnutls_sign_list(); t < s && !seen; t++)
        seen = strcmp(gnutls_sign_get_name(*t), name) == 0;
      if (name != NULL && !seen && strncmp(name, "GOST", 4) != 0 && fn(name, ctx))
        return name;
    }
    return NULL;
  default:
    return NULL;
  }
}

static bool name_matches(const char *name, void *ctx) {
  return strcasecmp(name, (const char *)ctx) == 0;
}

const char *tp_priority_canonical(tp_priority_dim dim, const char *name) {
  if (name == NULL || dim >= TP_PRIO__COUNT)
    return NULL;
  return each_name(dim, name_matches, (void *)name);
}

typedef struct {
  char *buf;
  size_t len, used;
  bool truncated;
} name_list;

static bool append_name(const char *name, void *ctx) {
  name_list *l = ctx;
  /* Keep room for ", ..." so a truncated list still says so. */
  size_t need = strlen(name) + (l->used ? 2 : 0);
  if (l->truncated || l->used + need + 6 > l->len) {
    l->truncated = true;
    return false;
  }
  l->used += (size_t)snprintf(l->buf + l->used, l->len - l->used, "%s%s", l->used ? ", " : "",
                              name);
  return false;
}

void tp_priority_known(tp_priority_dim dim, char *buf, size_t len) {
  if (len == 0)
    return;
  buf[0] = '\0';
  name_list l = {.buf = buf, .len = len};
  (void)each_name(dim, append_name, &l);
  if (l.truncated && l.used + 5 < len)
    snprintf(buf + l.used, len - l.used, "%s...", l.used ? ", " : "");
}

/* ---- building --------------------------------------------------------- */

static bool append(tp_buf *b, const char *s) {
  return tp_buf_append(b, s, strlen(s)) == TP_E_OK;
}

static const char *const *dim_list(const tp_profile_spec *spec, tp_priority_dim dim) {
  switch (dim) {
  case TP_PRIO_CIPHER:
    return spec->ciphers;
  case TP_PRIO_KX:
    return spec->key_exchanges;
  case TP_PRIO_MAC:
    return spec->macs;
  case TP_PRIO_GROUP:
    return spec->groups;
  case TP_PRIO_SIGN:
    return spec->signature_algorithms;
  default:
    return NULL;
  }
}

/* Appends ":-X-ALL:+a:+b..." for one dimension, validating every name. */
static bool append_dim(tp_buf *b, const tp_profile_spec *spec, tp_priority_dim dim, char *err,
                       size_t errlen) {
  const char *const *list = dim_list(spec, dim);
  if (list == NULL)
    return true;
  if (list[0] == NULL) {
    snprintf(err, errlen, "the %s list is empty; omit it to keep GnuTLS's defaults",
             dims[dim].label);
    return false;
  }
  if (!append(b, ":") || !append(b, dims[dim].remove_all))
    goto toobig;
  for (size_t i = 0; list[i] != NULL; i++) {
    const char *canon = tp_priority_canonical(dim, list[i]);
    if (canon == NULL) {
      char known[768];
      tp_priority_known(dim, known, sizeof(known));
      snprintf(err, errlen, "unknown %s \"%s\" (known: %s)", dims[dim].label, list[i], known);
      return false;
    }
    for (size_t j = 0; j < i; j++) {
      if (strcasecmp(list[j], list[i]) == 0) {
        snprintf(err, errlen, "%s \"%s\" is listed twice", dims[dim].label, list[i]);
        return false;
      }
    }
    if (!append(b, ":+") || !append(b, dims[dim].prefix) || !append(b, canon))
      goto toobig;
  }
  return true;
toobig:
  snprintf(err, errlen, "the priority string would exceed %zu bytes", b->cap);
  return false;
}

/* Can `suite` be negotiated at version v? TLS 1.3 suites (no kx) only at
 * 1.3; the others from their minimum version up to 1.2. */
static bool suite_usable(gnutls_protocol_t v, gnutls_kx_algorithm_t kx, gnutls_protocol_t min) {
  if (v == GNUTLS_TLS1_3)
    return kx == GNUTLS_KX_UNKNOWN;
  return kx != GNUTLS_KX_UNKNOWN && min <= v;
}

static const char *version_hint(gnutls_protocol_t v) {
  switch (v) {
  case GNUTLS_TLS1_3:
    return "TLS 1.3 needs an AEAD cipher (AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305, "
           "AES-128-CCM) and the MAC AEAD";
  case GNUTLS_TLS1_2:
    return "the ciphers, key exchanges and MACs must combine into at least one TLS 1.2 suite";
  default:
    return "TLS 1.0/1.1 have no AEAD suites: add a CBC cipher (AES-128-CBC, AES-256-CBC, "
           "3DES-CBC...) and the MAC SHA1";
  }
}

/* Initialises the string once to check that every requested version can
 * negotiate at least one offered suite. */
static bool check_versions(const char *prio, unsigned mask, char *err, size_t errlen) {
  gnutls_priority_t p;
  const char *pos = NULL;
  int rc = gnutls_priority_init2(&p, prio, &pos, 0);
  if (rc == GNUTLS_E_NO_PRIORITIES_WERE_SET) {
    /* The lists form no suite at all: explain for the lowest version. */
    for (size_t v = 0; v < N_VERSIONS; v++) {
      if (mask & versions[v].bit) {
        snprintf(err, errlen, "no offered cipher suite can be used with %s: %s",
                 versions[v].name, version_hint(versions[v].protocol));
        return false;
      }
    }
  }
  if (rc < 0) {
    snprintf(err, errlen, "GnuTLS rejects \"%s\": %s (near \"%s\")", prio, gnutls_strerror(rc),
             pos ? pos : "");
    return false;
  }
  bool ok = true;
  for (size_t v = 0; v < N_VERSIONS && ok; v++) {
    if (!(mask & versions[v].bit))
      continue;
    bool usable = false;
    for (unsigned i = 0; !usable; i++) {
      unsigned sidx;
      rc = gnutls_priority_get_cipher_suite_index(p, i, &sidx);
      if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
        break;
      if (rc < 0)
        continue; /* a suite this build cannot do */
      unsigned char id[2];
      gnutls_kx_algorithm_t kx;
      gnutls_cipher_algorithm_t cipher;
      gnutls_mac_algorithm_t mac;
      gnutls_protocol_t min;
      if (gnutls_cipher_suite_info(sidx, id, &kx, &cipher, &mac, &min) != NULL)
        usable = suite_usable(versions[v].protocol, kx, min);
    }
    if (!usable) {
      snprintf(err, errlen, "no offered cipher suite can be used with %s: %s", versions[v].name,
               version_hint(versions[v].protocol));
      ok = false;
    }
  }
  gnutls_priority_deinit(p);
  return ok;
}

char *tp__priority_build(const tp_profile_spec *spec, char *err, size_t errlen) {
  unsigned mask = spec->versions ? spec->versions : TP_TLS_DEFAULT_VERSIONS;
  tp_buf b;
  tp_buf_init(&b, 16384);
  if (!append(&b, "NORMAL:-VERS-ALL"))
    goto toobig;
  for (size_t i = 0; i < N_VERSIONS; i++) {
    if ((mask & versions[i].bit) && (!append(&b, ":+") || !append(&b, versions[i].gnutls_name)))
      goto toobig;
  }
  for (int d = 0; d < TP_PRIO__COUNT; d++) {
    if (!append_dim(&b, spec, (tp_priority_dim)d, err, errlen))
      goto fail;
  }
  /* %COMPAT relaxes the record-layer strictness that old servers rely on. */
  if ((mask & (TP_TLS1_0 | TP_TLS1_1)) && !append(&b, ":%COMPAT"))
    goto toobig;
  char *out = tp_xstrndup((const char *)b.data, b.len);
  tp_buf_free(&b);
  if (!check_versions(out, mask, err, errlen)) {
    free(out);
    return NULL;
  }
  return out;
toobig:
  snprintf(err, errlen, "the priority string would exceed %zu bytes", b.cap);
fail:
  tp_buf_free(&b);
  return NULL;
}

long tp__priority_offered(const char *priority, unsigned mask, tp_offered_suite *out, size_t max) {
  gnutls_priority_t p;
  if (gnutls_priority_init2(&p, priority, NULL, 0) < 0)
    return -1;
  long n = 0;
  for (unsigned i = 0;; i++) {
    unsigned sidx;
    int rc = gnutls_priority_get_cipher_suite_index(p, i, &sidx);
    if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
      break;
    if (rc < 0)
      continue;
    unsigned char id[2];
    gnutls_kx_algorithm_t kx;
    gnutls_cipher_algorithm_t cipher;
    gnutls_mac_algorithm_t mac;
    gnutls_protocol_t min;
    const char *name = gnutls_cipher_suite_info(sidx, id, &kx, &cipher, &mac, &min);
    if (name == NULL)
      continue;
    bool usable = false;
    for (size_t v = 0; v < N_VERSIONS && !usable; v++)
      usable = (mask & versions[v].bit) && suite_usable(versions[v].protocol, kx, min);
    if (!usable)
      continue;
    if ((size_t)n < max)
      out[n] = (tp_offered_suite){.id = (unsigned)id[0] << 8 | id[1], .name = name};
    n++;
  }
  gnutls_priority_deinit(p);
  return n;
}
