/* verify.c - what the primary attempt negotiated and whether the server's
 * chain verifies. Facts are collected before verification, and also when the
 * handshake failed after the ServerHello, so a failed probe still says which
 * version, suite and group the server chose. Every string is fitted to the
 * wire contract here, at its source (tp_text.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certinfo.h"
#include "chain.h"
#include "classify.h"
#include "ocsp.h"
#include "probe_internal.h"
#include "tp_limits.h"
#include "tp_mem.h"
#include "tp_text.h"
#include "verify_cache.h"

static void set_fact(char **field, const char *value) {
  free(*field);
  *field = tp_text_fit_str(value, TP_V_MAX_SHORT);
}

/* The key-exchange group; an unnamed (server-chosen) DH prime has none in
 * GnuTLS, so it is recorded as gnutls-cli shows it: CUSTOM<bits>. */
static void collect_group(gnutls_session_t s, tp_result *r) {
  gnutls_group_t group = gnutls_group_get(s);
  if (group != GNUTLS_GROUP_INVALID) {
    set_fact(&r->group, gnutls_group_get_name(group));
    return;
  }
  gnutls_kx_algorithm_t kx = gnutls_kx_get(s);
  if (kx != GNUTLS_KX_DHE_RSA && kx != GNUTLS_KX_DHE_DSS && kx != GNUTLS_KX_DHE_PSK &&
      kx != GNUTLS_KX_ANON_DH)
    return;
  int bits = gnutls_dh_get_prime_bits(s);
  if (bits > 0) {
    char name[32];
    snprintf(name, sizeof(name), "CUSTOM%d", bits);
    set_fact(&r->group, name);
  }
}

static void collect_session_facts(gnutls_session_t s, tp_result *r) {
  gnutls_protocol_t version = gnutls_protocol_get_version(s);
  if (version != GNUTLS_VERSION_UNKNOWN)
    set_fact(&r->tls_version, gnutls_protocol_get_name(version));
  set_fact(&r->cipher, gnutls_ciphersuite_get(s));
  collect_group(s, r);
  int sign = gnutls_sign_algorithm_get(s);
  if (sign > 0)
    set_fact(&r->server_signature_algorithm, gnutls_sign_get_name((gnutls_sign_algorithm_t)sign));
  gnutls_datum_t alpn;
  if (gnutls_alpn_get_selected_protocol(s, &alpn) == 0) {
    free(r->alpn);
    r->alpn = tp_text_fit((const char *)alpn.data, alpn.size, TP_V_MAX_SHORT);
  }
  r->resumed = gnutls_session_is_resumed(s) != 0;
}

/* The GnuTLS name of the suite with this IANA id, or NULL. */
static const char *suite_name(const uint8_t id[2]) {
  for (size_t i = 0;; i++) {
    unsigned char sid[2];
    const char *name = gnutls_cipher_suite_info(i, sid, NULL, NULL, NULL, NULL);
    if (name == NULL)
      return NULL;
    if (sid[0] == id[0] && sid[1] == id[1])
      return name;
  }
}

/* The chain's facts through the engine's facts cache. */
static void collect_chain_facts(tp_conn *c, const gnutls_datum_t *peers, unsigned n_peers,
                                const tp_chain_digests *digests) {
  tp_result *r = c->probe->result;
  tp_engine_caches *caches = tp__engine_caches(c->probe->engine);
  tp_certinfo_cache cache = {.facts = caches->facts,
                             .digests = digests,
                             .hits = &caches->stats.facts_hits,
                             .misses = &caches->stats.facts_misses};
  int64_t now_unix = r->started_unix_ns / 1000000000;
  if (peers != NULL)
    tp_certinfo_collect_cached(peers, n_peers, now_unix, &cache, r);
}

void tp__verify_collect_failure_facts(tp_conn *c) {
  if (!c->server_hello_seen)
    return; /* nothing was negotiated */
  tp_result *r = c->probe->result;
  collect_session_facts(c->session, r);
  /* gnutls_ciphersuite_get() is NULL until the handshake completes */
  if ((r->cipher == NULL || r->cipher[0] == '\0') && c->have_server_suite)
    set_fact(&r->cipher, suite_name(c->server_suite));
  unsigned n_peers = 0;
  const gnutls_datum_t *peers = gnutls_certificate_get_peers(c->session, &n_peers);
  tp_chain_digests digests;
  tp__chain_digests(peers, peers != NULL ? n_peers : 0, &digests);
  collect_chain_facts(c, peers, n_peers, &digests);
}

/* Keeps a copy of the chain as sent: an AIA fetch re-verifies it after the
 * connection (and its session) is gone. */
static void keep_peer_chain(tp_probe *p, const gnutls_datum_t *peers, unsigned n) {
  p->peer_der = tp_xcalloc(n ? n : 1, sizeof(gnutls_datum_t));
  for (unsigned i = 0; i < n; i++) {
    p->peer_der[i].data = tp_xmalloc(peers[i].size ? peers[i].size : 1);
    memcpy(p->peer_der[i].data, peers[i].data, peers[i].size);
    p->peer_der[i].size = peers[i].size;
  }
  p->n_peer_der = n;
}

/* SIGNER_NOT_FOUND: incomplete_chain only on evidence (chain.h). */
static tp_outcome diagnose_missing_signer(tp_conn *c, tp_verdict *v) {
  tp_probe *p = c->probe;
  unsigned n_peers = 0;
  const gnutls_datum_t *peers = gnutls_certificate_get_peers(c->session, &n_peers);
  size_t n_pool;
  const gnutls_x509_crt_t *pool = tp__profile_intermediates(p->profile, &n_pool);
  tp_outcome outcome = tp_chain_diagnose_signer_not_found(
      peers, n_peers, tp__profile_credentials(p->profile), pool, n_pool,
      tp__probe_expected_name(p), v->detail, sizeof(v->detail), v->aia_url, sizeof(v->aia_url));
  if (v->aia_url[0] == '\0')
    return outcome;
  if (!tp_profile_aia_fetch(p->profile)) {
    size_t used = strlen(v->detail);
    snprintf(v->detail + used, sizeof(v->detail) - used, "; not fetched: aia_fetch is off");
    v->aia_url[0] = '\0';
    return outcome;
  }
  keep_peer_chain(p, peers, n_peers);
  return outcome;
}

/* ---- fidelity to the emulated real client ------------------------------ */

/* IANA NamedGroup code point of a GnuTLS group (RFC 8446 §4.2.7, RFC 7919). */
static int group_iana(gnutls_group_t g) {
  static const struct {
    gnutls_group_t group;
    uint16_t iana;
  } map[] = {{GNUTLS_GROUP_SECP192R1, 19}, {GNUTLS_GROUP_SECP224R1, 21},
             {GNUTLS_GROUP_SECP256R1, 23}, {GNUTLS_GROUP_SECP384R1, 24},
             {GNUTLS_GROUP_SECP521R1, 25}, {GNUTLS_GROUP_X25519, 29},
             {GNUTLS_GROUP_X448, 30},      {GNUTLS_GROUP_FFDHE2048, 256},
             {GNUTLS_GROUP_FFDHE3072, 257}, {GNUTLS_GROUP_FFDHE4096, 258},
             {GNUTLS_GROUP_FFDHE6144, 259}, {GNUTLS_GROUP_FFDHE8192, 260}};
  for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
    if (map[i].group == g)
      return map[i].iana;
  return -1;
}

static unsigned version_bit(gnutls_protocol_t v) {
  switch (v) {
  case GNUTLS_TLS1_0:
    return TP_TLS1_0;
  case GNUTLS_TLS1_1:
    return TP_TLS1_1;
  case GNUTLS_TLS1_2:
    return TP_TLS1_2;
  case GNUTLS_TLS1_3:
    return TP_TLS1_3;
  default:
    return 0;
  }
}

static bool has_id(const uint16_t *ids, size_t n, uint16_t id) {
  for (size_t i = 0; i < n; i++)
    if (ids[i] == id)
      return true;
  return false;
}

static void add_divergence(char *out, size_t len, size_t *used, const char *what) {
  int n = snprintf(out + *used, len - *used, "%s%s", *used ? "; " : "", what);
  if (n > 0)
    *used = (size_t)n + *used < len ? *used + (size_t)n : len - 1;
}

/* GnuTLS offers suites as a cross product of ciphers, key exchanges and MACs,
 * so an imported profile can succeed only through something the real client
 * never offers. Compare what was negotiated with the recorded offer. */
static void check_emulation(tp_conn *c) {
  tp_probe *p = c->probe;
  const tp_hello_offer *offer = tp_profile_recorded_offer(p->profile);
  if (offer == NULL)
    return;
  tp_result *r = p->result;
  r->emulation_checked = true;
  char out[TP_V_MAX_NOTE];
  char what[160];
  size_t used = 0;
  out[0] = '\0';
  gnutls_protocol_t version = gnutls_protocol_get_version(c->session);
  if (offer->versions != 0 && (version_bit(version) & offer->versions) == 0) {
    snprintf(what, sizeof(what), "version %s not offered by the real client",
             gnutls_protocol_get_name(version) ? gnutls_protocol_get_name(version) : "?");
    add_divergence(out, sizeof(out), &used, what);
  }
  if (c->have_server_suite && offer->n_cipher_suites > 0) {
    uint16_t id = (uint16_t)(c->server_suite[0] << 8 | c->server_suite[1]);
    if (!has_id(offer->cipher_suites, offer->n_cipher_suites, id)) {
      snprintf(what, sizeof(what), "cipher suite %s (0x%04X) not offered by the real client",
               r->cipher ? r->cipher : "?", id);
      add_divergence(out, sizeof(out), &used, what);
    }
  }
  int group = group_iana(gnutls_group_get(c->session));
  if (group >= 0 && offer->n_groups > 0 &&
      !has_id(offer->groups, offer->n_groups, (uint16_t)group)) {
    snprintf(what, sizeof(what), "group %s not offered by the real client",
             r->group ? r->group : "?");
    add_divergence(out, sizeof(out), &used, what);
  }
  if (used > 0)
    r->emulation_divergence = tp_text_fit_str(out, TP_V_MAX_NOTE);
}

/* Real clients refuse DH primes outside their range (Java 8: more than 2048
 * bits) where GnuTLS accepts them: the probe must fail where the client would. */
static bool dh_outside_client_limits(tp_conn *c, tp_verdict *v) {
  unsigned min = 0, max = 0;
  tp_profile_dh_bits(c->probe->profile, &min, &max);
  if (min == 0 && max == 0)
    return false;
  gnutls_kx_algorithm_t kx = gnutls_kx_get(c->session);
  gnutls_group_t g = gnutls_group_get(c->session);
  /* GnuTLS's enum is not ordered by size (FFDHE6144 comes after FFDHE8192) */
  bool ffdh = kx == GNUTLS_KX_DHE_RSA || kx == GNUTLS_KX_DHE_DSS || g == GNUTLS_GROUP_FFDHE2048 ||
              g == GNUTLS_GROUP_FFDHE3072 || g == GNUTLS_GROUP_FFDHE4096 ||
              g == GNUTLS_GROUP_FFDHE6144 || g == GNUTLS_GROUP_FFDHE8192;
  if (!ffdh)
    return false;
  int bits = gnutls_dh_get_prime_bits(c->session);
  if (bits <= 0 || ((min == 0 || (unsigned)bits >= min) && (max == 0 || (unsigned)bits <= max)))
    return false;
  v->outcome = TP_OUTCOME_NO_SHARED_GROUP;
  snprintf(v->detail, sizeof(v->detail),
           "the server's %d-bit DH prime is outside what the emulated client accepts (%u..%u "
           "bits; 0 = no limit): the real client aborts this handshake (GnuTLS completed it)",
           bits, min, max);
  return true;
}

/* Verifies the peer chain; sets the verdict's outcome and detail. */
void tp__verify_primary(tp_conn *c, tp_verdict *v) {
  char *detail = v->detail;
  size_t len = sizeof(v->detail);
  tp_probe *p = c->probe;
  tp_result *r = p->result;
  int64_t now_unix = r->started_unix_ns / 1000000000;
  unsigned n_peers = 0;
  const gnutls_datum_t *peers = gnutls_certificate_get_peers(c->session, &n_peers);
  tp_chain_digests digests; /* hashed once, keys of both caches */
  tp__chain_digests(peers, peers != NULL ? n_peers : 0, &digests);
  collect_session_facts(c->session, r);
  collect_chain_facts(c, peers, n_peers, &digests);
  tp_ocsp_collect(c->session, now_unix, r);
  unsigned status = 0;
  const char *name = tp__probe_expected_name(p);
  int rc = tp__verify_peers_cached(tp__engine_caches(p->engine), c->session, p->profile, name,
                                   peers, n_peers, &digests, &status);
  if (rc < 0) {
    snprintf(detail, len, "certificate verification could not run: %s", gnutls_strerror(rc));
    v->outcome = TP_OUTCOME_OTHER;
    return;
  }
  r->chain_complete = (status & GNUTLS_CERT_SIGNER_NOT_FOUND) == 0;
  v->outcome = tp_classify_verify_status(status, detail, len);
  if (v->outcome == TP_OUTCOME_UNKNOWN_CA)
    v->outcome = diagnose_missing_signer(c, v);
  if (v->outcome == TP_OUTCOME_OK && !dh_outside_client_limits(c, v))
    check_emulation(c);
}
