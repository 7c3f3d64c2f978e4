/* profile.c - turns a tp_profile_spec into a GnuTLS priority cache and a
 * certificate credential, once. Probes borrow both (profile_internal.h). */
#include "profile.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "priority.h"
#include "profile_internal.h"
#include "tp_buf.h"
#include "tp_mem.h"

struct tp_profile {
  char *name;
  char *priority_string;
  gnutls_priority_t priority;
  /* The same preferences with one dimension widened, for the diagnostic
   * handshake that tells no_shared_group from no_shared_cipher. */
  gnutls_priority_t widened[TP_WIDEN__COUNT];
  gnutls_certificate_credentials_t credentials;
  gnutls_datum_t *alpn;
  unsigned n_alpn;
  bool has_client_certificate;
  gnutls_x509_crt_t *intermediates;
  unsigned n_intermediates;
  tp_sni_mode sni_mode;
  char *sni_name;
  tp_probe_mode mode;
  tp_http_spec http; /* strings owned */
  tp_early_data_spec early_data; /* raw bytes owned */
  int aia_fetch_off;
  unsigned min_dh_bits, max_dh_bits; /* 0 = no limit */
  bool has_recorded_offer;
  tp_hello_offer recorded_offer; /* only the four lists of profile.h */
  char *fidelity_note;
  unsigned key_shares; /* 1..3, resolved from the spec */
  uint8_t verify_id[TP_PROFILE_VERIFY_ID_LEN];
};

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

/* Keywords collected for a widened priority, each once. */
typedef struct keyword_set {
  const char *names[128]; /* GnuTLS's static name strings */
  size_t n;
} keyword_set;

static void add_keyword(keyword_set *set, const char *name) {
  if (name == NULL || name[0] == '\0' || set->n == sizeof(set->names) / sizeof(set->names[0]))
    return;
  for (size_t i = 0; i < set->n; i++)
    if (strcmp(set->names[i], name) == 0)
      return;
  set->names[set->n++] = name;
}

/* Key exchanges a certificate-authenticated client can complete: PSK, SRP and
 * anonymous suites need credentials no profile has, and GnuTLS refuses some of
 * them in a TLS 1.3-only priority outright. */
static bool certificate_kx(gnutls_kx_algorithm_t kx) {
  switch (kx) {
  case GNUTLS_KX_RSA:
  case GNUTLS_KX_DHE_RSA:
  case GNUTLS_KX_DHE_DSS:
  case GNUTLS_KX_ECDHE_RSA:
  case GNUTLS_KX_ECDHE_ECDSA:
    return true;
  default:
    return false;
  }
}

/* GOST suites need GOST keys and are refused with TLS 1.3-only priorities. */
static bool is_gost(gnutls_cipher_algorithm_t cipher, gnutls_kx_algorithm_t kx,
                    gnutls_mac_algorithm_t mac) {
  const char *names[] = {gnutls_cipher_get_name(cipher), gnutls_kx_get_name(kx),
                         gnutls_mac_get_name(mac)};
  for (size_t i = 0; i < 3; i++)
    if (names[i] != NULL && (strncmp(names[i], "GOST", 4) == 0 || strncmp(names[i], "VKO", 3) == 0))
      return true;
  return false;
}

/* Every cipher, key exchange and MAC that some suite of this GnuTLS build uses,
 * as priority keywords. "+CIPHER-ALL" is not that: it leaves out 3DES, RC4
 * and CAMELLIA, so a 3DES-only server would read as a bare handshake_failure
 * instead of no_shared_cipher. */
static char *every_suite_keyword(void) {
  keyword_set set = {.n = 0};
  for (size_t i = 0;; i++) {
    unsigned char id[2];
    gnutls_kx_algorithm_t kx;
    gnutls_cipher_algorithm_t cipher;
    gnutls_mac_algorithm_t mac;
    gnutls_protocol_t min_version;
    if (gnutls_cipher_suite_info(i, id, &kx, &cipher, &mac, &min_version) == NULL)
      break;
    if (!certificate_kx(kx) || cipher == GNUTLS_CIPHER_NULL || is_gost(cipher, kx, mac))
      continue;
    add_keyword(&set, gnutls_cipher_get_name(cipher));
    add_keyword(&set, gnutls_kx_get_name(kx));
    add_keyword(&set, gnutls_mac_get_name(mac));
  }
  add_keyword(&set, "AEAD");
  size_t len = 1;
  for (size_t i = 0; i < set.n; i++)
    len += strlen(set.names[i]) + 2;
  char *text = tp_xmalloc(len);
  size_t used = 0;
  for (size_t i = 0; i < set.n; i++)
    used += (size_t)snprintf(text + used, len - used, ":+%s", set.names[i]);
  text[used] = '\0';
  return text;
}

/* Appending "+X" keeps the user's order first and adds everything else after
 * it; works for raw priority strings too. */
static tp_err build_widened(tp_profile *p, char *err, size_t errlen) {
  char *every_suite = every_suite_keyword();
  const char *suffix[TP_WIDEN__COUNT] = {
      [TP_WIDEN_GROUPS] = ":+GROUP-ALL",
      [TP_WIDEN_CIPHERS] = every_suite,
  };
  for (int i = 0; i < TP_WIDEN__COUNT; i++) {
    char *text = tp_xasprintf("%s%s", p->priority_string, suffix[i]);
    int rc = gnutls_priority_init2(&p->widened[i], text, NULL, 0);
    free(text);
    if (rc < 0) {
      p->widened[i] = NULL;
      snprintf(err, errlen, "priority \"%s\" cannot be widened for diagnostics: %s",
               p->priority_string, gnutls_strerror(rc));
      free(every_suite);
      return TP_E_CONFIG;
    }
  }
  free(every_suite);
  return TP_E_OK;
}

static tp_err load_intermediates(tp_profile *p, const char *path, char *err, size_t errlen) {
  if (path == NULL)
    return TP_E_OK;
  gnutls_datum_t pem = {NULL, 0};
  int rc = gnutls_load_file(path, &pem);
  if (rc < 0) {
    snprintf(err, errlen, "intermediates \"%s\": %s", path, gnutls_strerror(rc));
    return TP_E_CONFIG;
  }
  rc = gnutls_x509_crt_list_import2(&p->intermediates, &p->n_intermediates, &pem,
                                    GNUTLS_X509_FMT_PEM, 0);
  gnutls_free(pem.data);
  if (rc < 0) {
    p->intermediates = NULL;
    p->n_intermediates = 0;
    snprintf(err, errlen, "intermediates \"%s\": %s", path, gnutls_strerror(rc));
    return TP_E_CONFIG;
  }
  return TP_E_OK;
}

static tp_err load_client_certificate(gnutls_certificate_credentials_t cred,
                                      const tp_profile_spec *spec, char *err, size_t errlen) {
  if ((spec->client_certificate == NULL) != (spec->client_key == NULL)) {
    snprintf(err, errlen, "client_certificate and client_key must be given together");
    return TP_E_CONFIG;
  }
  if (spec->client_certificate == NULL)
    return TP_E_OK;
  int n = gnutls_certificate_set_x509_key_file(cred, spec->client_certificate, spec->client_key,
                                               GNUTLS_X509_FMT_PEM);
  if (n < 0) {
    snprintf(err, errlen, "client certificate \"%s\" / key \"%s\": %s", spec->client_certificate,
             spec->client_key, gnutls_strerror(n));
    return TP_E_CONFIG;
  }
  return TP_E_OK;
}

/* ALPN protocol names are 1..255 bytes (RFC 7301 §3.1). */
static tp_err copy_alpn(tp_profile *p, const char *const *alpn, char *err, size_t errlen) {
  if (alpn == NULL)
    return TP_E_OK;
  while (alpn[p->n_alpn] != NULL)
    p->n_alpn++;
  p->alpn = tp_xcalloc(p->n_alpn, sizeof(gnutls_datum_t));
  for (unsigned i = 0; i < p->n_alpn; i++) {
    size_t len = strlen(alpn[i]);
    if (len == 0 || len > 255) {
      snprintf(err, errlen, "alpn: \"%s\" must be 1 to 255 bytes long", alpn[i]);
      return TP_E_CONFIG;
    }
    p->alpn[i].data = (unsigned char *)tp_xstrdup(alpn[i]);
    p->alpn[i].size = (unsigned)len;
  }
  return TP_E_OK;
}

static tp_err copy_options(tp_profile *p, const tp_profile_spec *spec, char *err, size_t errlen) {
  p->sni_mode = spec->sni_mode;
  if (spec->sni_mode == TP_SNI_OVERRIDE && (spec->sni_name == NULL || spec->sni_name[0] == '\0')) {
    snprintf(err, errlen, "sni: an override needs a server name");
    return TP_E_CONFIG;
  }
  p->sni_name = tp_xstrdup_or_null(spec->sni_name);
  p->mode = spec->mode;
  p->http.method = tp_xstrdup_or_null(spec->http.method);
  p->http.path = tp_xstrdup_or_null(spec->http.method ? (spec->http.path ? spec->http.path : "/") : NULL);
  p->http.host = tp_xstrdup_or_null(spec->http.host);
  p->aia_fetch_off = spec->aia_fetch_off;
  if (spec->early_data.raw != NULL) {
    unsigned char *raw = tp_xmalloc(spec->early_data.raw_len ? spec->early_data.raw_len : 1);
    memcpy(raw, spec->early_data.raw, spec->early_data.raw_len);
    p->early_data.raw = raw;
    p->early_data.raw_len = spec->early_data.raw_len;
    p->early_data.expect_reply = spec->early_data.expect_reply;
  }
  p->fidelity_note = tp_xstrdup_or_null(spec->fidelity_note);
  return copy_alpn(p, spec->alpn, err, errlen);
}

/* Above any real prime: RFC 7919's largest group is 8192 bits. */
#define MAX_DH_BITS 16384u

static tp_err copy_dh_bits(tp_profile *p, const tp_profile_spec *spec, char *err,
                           size_t errlen) {
  if (spec->min_dh_bits > MAX_DH_BITS || spec->max_dh_bits > MAX_DH_BITS) {
    snprintf(err, errlen, "min_dh_bits/max_dh_bits: at most %u bits", MAX_DH_BITS);
    return TP_E_CONFIG;
  }
  if (spec->min_dh_bits != 0 && spec->max_dh_bits != 0 && spec->min_dh_bits > spec->max_dh_bits) {
    snprintf(err, errlen, "min_dh_bits (%u) is above max_dh_bits (%u): no DH prime would do",
             spec->min_dh_bits, spec->max_dh_bits);
    return TP_E_CONFIG;
  }
  p->min_dh_bits = spec->min_dh_bits;
  p->max_dh_bits = spec->max_dh_bits;
  return TP_E_OK;
}

/* n ids into a fixed array of max, never past it. */
static size_t copy_ids(uint16_t *dst, const uint16_t *src, size_t n, size_t max) {
  if (n > max)
    n = max;
  if (n > 0) /* never memcpy from NULL, even for 0 bytes (C17 7.24.1) */
    memcpy(dst, src, n * sizeof(uint16_t));
  return n;
}

#define COPY_IDS(dst, src, field)                                                          \
  ((dst)->n_##field = copy_ids((dst)->field, (src)->field, (src)->n_##field,               \
                               sizeof((dst)->field) / sizeof((dst)->field[0])))

/* Keeps exactly what profile.h promises: the other fields stay zero, so an
 * engine cannot come to rely on facts the config loader never fills. */
static void copy_recorded_offer(tp_profile *p, const tp_profile_spec *spec) {
  if (!spec->has_recorded_offer)
    return;
  const tp_hello_offer *src = &spec->recorded_offer;
  tp_hello_offer *dst = &p->recorded_offer;
  p->has_recorded_offer = true;
  dst->versions = src->versions;
  COPY_IDS(dst, src, cipher_suites);
  COPY_IDS(dst, src, groups);
  COPY_IDS(dst, src, signature_algorithms);
}

/* See tp_profile_key_shares in profile.h. */
static tp_err resolve_key_shares(tp_profile *p, const tp_profile_spec *spec, char *err,
                                 size_t errlen) {
  if (spec->key_shares > 3) {
    snprintf(err, errlen, "key_shares: 1 to 3 (0 = automatic), not %u", spec->key_shares);
    return TP_E_CONFIG;
  }
  if (spec->key_shares != 0)
    p->key_shares = spec->key_shares;
  else if (spec->priority == NULL && spec->groups == NULL && !spec->has_recorded_offer)
    p->key_shares = 1;
  else
    p->key_shares = 2; /* GnuTLS's default, GNUTLS_KEY_SHARE_TOP2 */
  return TP_E_OK;
}

/* The first structured field a raw priority string would override, or NULL. */
static const char *first_structured_field(const tp_profile_spec *spec) {
  if (spec->versions != 0)
    return "versions";
  if (spec->ciphers != NULL)
    return "ciphers";
  if (spec->key_exchanges != NULL)
    return "key_exchanges";
  if (spec->macs != NULL)
    return "macs";
  if (spec->groups != NULL)
    return "groups";
  if (spec->signature_algorithms != NULL)
    return "signature_algorithms";
  return NULL;
}

tp_err tp_profile_new(const tp_profile_spec *spec, tp_profile **out, char *err, size_t errlen) {
  tp_err rc = TP_E_CONFIG;
  const char *err_pos = NULL;
  tp_profile *p = tp_xcalloc(1, sizeof(*p));
  p->name = tp_xstrdup(spec->name);

  const char *structured = first_structured_field(spec);
  if (spec->priority != NULL && structured != NULL) {
    /* the raw string decides everything; the field would be silently ignored */
    snprintf(err, errlen,
             "\"priority\" is a raw GnuTLS string and cannot be combined with \"%s\"; "
             "express it in the priority string (e.g. -VERS-ALL:+VERS-TLS1.3)",
             structured);
    goto fail;
  }
  if (spec->priority != NULL && strstr(spec->priority, "@SYSTEM") != NULL) {
    snprintf(err, errlen,
             "priority: @SYSTEM makes the profile depend on the host's crypto policy; "
             "spell the profile out instead");
    goto fail;
  }
  p->priority_string =
      spec->priority != NULL ? tp_xstrdup(spec->priority) : tp__priority_build(spec, err, errlen);
  if (p->priority_string == NULL)
    goto fail;
  int grc = gnutls_priority_init2(&p->priority, p->priority_string, &err_pos, 0);
  if (grc < 0) {
    snprintf(err, errlen, "priority \"%s\": %s near \"%s\"", p->priority_string,
             gnutls_strerror(grc), err_pos ? err_pos : "");
    p->priority = NULL;
    goto fail;
  }
  if (build_widened(p, err, errlen) != TP_E_OK)
    goto fail;
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
  rc = load_intermediates(p, spec->intermediates, err, errlen);
  if (rc != TP_E_OK)
    goto fail;
  rc = load_client_certificate(p->credentials, spec, err, errlen);
  p->has_client_certificate = spec->client_certificate != NULL;
  if (rc != TP_E_OK)
    goto fail;
  rc = copy_options(p, spec, err, errlen);
  if (rc != TP_E_OK)
    goto fail;
  rc = copy_dh_bits(p, spec, err, errlen);
  if (rc != TP_E_OK)
    goto fail;
  rc = resolve_key_shares(p, spec, err, errlen);
  if (rc != TP_E_OK)
    goto fail;
  if (gnutls_rnd(GNUTLS_RND_NONCE, p->verify_id, sizeof(p->verify_id)) != 0) {
    snprintf(err, errlen, "cannot draw the profile's verification identity (gnutls_rnd)");
    rc = TP_E_TLS;
    goto fail;
  }
  copy_recorded_offer(p, spec);
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
  for (int i = 0; i < TP_WIDEN__COUNT; i++)
    if (profile->widened[i] != NULL)
      gnutls_priority_deinit(profile->widened[i]);
  if (profile->credentials != NULL)
    gnutls_certificate_free_credentials(profile->credentials);
  for (unsigned i = 0; i < profile->n_intermediates; i++)
    gnutls_x509_crt_deinit(profile->intermediates[i]);
  gnutls_free(profile->intermediates);
  for (unsigned i = 0; i < profile->n_alpn; i++)
    free(profile->alpn[i].data);
  free(profile->alpn);
  free(profile->sni_name);
  free((char *)profile->http.method);
  free((char *)profile->http.path);
  free((char *)profile->http.host);
  free((unsigned char *)profile->early_data.raw);
  free(profile->fidelity_note);
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

tp_sni_mode tp_profile_sni_mode(const tp_profile *profile) {
  return profile->sni_mode;
}

const char *tp_profile_sni_name(const tp_profile *profile) {
  return profile->sni_name;
}

tp_probe_mode tp_profile_mode(const tp_profile *profile) {
  return profile->mode;
}

const tp_http_spec *tp_profile_http(const tp_profile *profile) {
  return &profile->http;
}

int tp_profile_aia_fetch(const tp_profile *profile) {
  return !profile->aia_fetch_off;
}

const tp_early_data_spec *tp_profile_early_data(const tp_profile *profile) {
  return &profile->early_data;
}

int tp_http_method_is_unsafe_for_early_data(const char *method) {
  static const char *const idempotent[] = {"GET", "HEAD", "OPTIONS", "TRACE"};
  if (method == NULL)
    return 0; /* the default request is a GET */
  for (size_t i = 0; i < sizeof(idempotent) / sizeof(idempotent[0]); i++)
    if (strcmp(method, idempotent[i]) == 0)
      return 0;
  return 1;
}

const char *tp_profile_fidelity_note(const tp_profile *profile) {
  return profile->fidelity_note;
}

const gnutls_datum_t *tp__profile_alpn(const tp_profile *profile, unsigned *count) {
  *count = profile->n_alpn;
  return profile->alpn;
}

unsigned tp_profile_key_shares(const tp_profile *profile) {
  return profile->key_shares;
}

unsigned tp__profile_session_flags(const tp_profile *profile) {
  switch (profile->key_shares) {
  case 1:
    return GNUTLS_KEY_SHARE_TOP;
  case 3:
    return GNUTLS_KEY_SHARE_TOP3;
  default:
    return GNUTLS_KEY_SHARE_TOP2;
  }
}

const uint8_t *tp__profile_verify_id(const tp_profile *profile) {
  return profile->verify_id;
}

const gnutls_x509_crt_t *tp__profile_intermediates(const tp_profile *profile, size_t *count) {
  *count = profile->n_intermediates;
  return profile->intermediates;
}

gnutls_priority_t tp__profile_widened_priority(const tp_profile *profile, tp_widen what) {
  return profile->widened[what];
}

bool tp__profile_has_client_certificate(const tp_profile *profile) {
  return profile->has_client_certificate;
}

void tp_profile_dh_bits(const tp_profile *profile, unsigned *min, unsigned *max) {
  *min = profile->min_dh_bits;
  *max = profile->max_dh_bits;
}

const tp_hello_offer *tp_profile_recorded_offer(const tp_profile *profile) {
  return profile->has_recorded_offer ? &profile->recorded_offer : NULL;
}

/* ---- sampling the ClientHello GnuTLS writes ----------------------------- */

/* The first flight, as the push callback saw it. */
typedef struct {
  tp_buf bytes;
  bool too_big;
} flight;

/* Keeps what GnuTLS writes, then fails the write: the handshake stops
 * after the ClientHello and nothing ever reaches a network. */
static ssize_t on_push(gnutls_transport_ptr_t ptr, const void *data, size_t len) {
  flight *f = ptr;
  if (tp_buf_append(&f->bytes, data, len) != TP_E_OK)
    f->too_big = true;
  errno = EIO;
  return -1;
}

static ssize_t on_pull(gnutls_transport_ptr_t ptr, void *data, size_t len) {
  (void)ptr;
  (void)data;
  (void)len;
  errno = EIO;
  return -1;
}

/* Runs the handshake until GnuTLS has written its first flight into f. */
static tp_err write_first_flight(const char *priority, flight *f, char *err, size_t errlen) {
  gnutls_session_t session = NULL;
  gnutls_certificate_credentials_t cred = NULL;
  const char *pos = NULL;
  tp_err rc = TP_E_TLS;
  int grc = gnutls_certificate_allocate_credentials(&cred);
  if (grc < 0) {
    cred = NULL;
    goto fail;
  }
  grc = gnutls_init(&session, GNUTLS_CLIENT);
  if (grc < 0) {
    session = NULL;
    goto fail;
  }
  /* Empty credentials still count: without any, GnuTLS drops every
   * certificate-authenticated suite from the hello. */
  if ((grc = gnutls_priority_set_direct(session, priority, &pos)) < 0 ||
      (grc = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cred)) < 0)
    goto fail;
  gnutls_transport_set_ptr(session, f);
  gnutls_transport_set_push_function(session, on_push);
  gnutls_transport_set_pull_function(session, on_pull);
  grc = gnutls_handshake(session); /* fails by design once the hello is written */
  if (f->bytes.len == 0 || f->too_big) {
    snprintf(err, errlen, "GnuTLS wrote no ClientHello for \"%s\": %s", priority,
             gnutls_strerror(grc));
    goto out;
  }
  rc = TP_E_OK;
  goto out;
fail:
  snprintf(err, errlen, "cannot sample a ClientHello for \"%s\": %s%s%s", priority,
           gnutls_strerror(grc),
           pos ? " near " : "", pos ? pos : "");
out:
  if (session != NULL)
    gnutls_deinit(session);
  if (cred != NULL)
    gnutls_certificate_free_credentials(cred);
  return rc;
}

tp_err tp_profile_sample_hello(const char *priority, tp_hello_offer *offer, char *err,
                               size_t errlen) {
  flight f = {.too_big = false};
  tp_buf_init(&f.bytes, 1u << 16);
  tp_err rc = write_first_flight(priority, &f, err, errlen);
  const char *why = NULL;
  if (rc == TP_E_OK && tp_hello_parse_recorded(f.bytes.data, f.bytes.len, offer, &why) != 0) {
    snprintf(err, errlen, "the ClientHello GnuTLS wrote does not parse: %s", why);
    rc = TP_E_TLS;
  }
  tp_buf_free(&f.bytes);
  return rc;
}
