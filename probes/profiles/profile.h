/* profile.h - a client profile: how the probe's ClientHello looks and what it
 * trusts. Built once from configuration (tp_profile_new) and then shared,
 * read-only, by every probe that uses it: the GnuTLS priority cache and the
 * certificate credentials are the expensive parts and are never rebuilt per
 * probe (s2n's config vs connection split). */
#ifndef TP_PROFILE_H
#define TP_PROFILE_H
#include <stdbool.h>
#include <stddef.h>

#include "hello.h" /* TP_TLS* version bits, tp_hello_offer */
#include "result.h"
#include "tp_error.h"

#define TP_TLS_DEFAULT_VERSIONS (TP_TLS1_2 | TP_TLS1_3)

/* Parses "TLS1.0".."TLS1.3" into one TP_TLS* bit; returns 0 if unknown. */
unsigned tp_tls_version_from_name(const char *name);
/* Comma-separated list of the names tp_tls_version_from_name knows. */
const char *tp_tls_version_names(void);

/* How the probe names the server. */
typedef enum {
  TP_SNI_HOST = 0, /* the target's sni, else its host unless it is an IP literal */
  TP_SNI_OFF,      /* send no SNI; verify against the target's sni/host */
  TP_SNI_OVERRIDE, /* send sni_name (and verify against it) for every target */
} tp_sni_mode;

/* tp_probe_mode (what a probe does after TCP connect) is part of the result,
 * so it is defined with it in proto/result.h. */

/* Optional HTTP request after the handshake (over the probe's own session). */
typedef struct tp_http_spec {
  const char *method; /* NULL = no request; "GET", "HEAD"... */
  const char *path;   /* default "/" */
  const char *host;   /* Host header; default: SNI name, else host */
} tp_http_spec;

/* What rides as 0-RTT data in mode early_data. By default the profile's HTTP
 * request (GET / when http: is not set), whose answer is read and judged; for
 * a TLS service that is not HTTP, raw bytes. With expect_reply false the
 * probe judges acceptance from the TLS facts alone (GNUTLS_SFLAGS_EARLY_DATA)
 * and reads nothing. */
typedef struct tp_early_data_spec {
  const unsigned char *raw; /* NULL = the HTTP request */
  size_t raw_len;
  int expect_reply; /* raw only; nonzero = wait for any answer bytes */
} tp_early_data_spec;

/* Plain description of a profile, as configured. Strings are borrowed and only
 * need to live during tp_profile_new. Name lists are NULL-terminated arrays of
 * GnuTLS priority keywords, in the user's order of preference. */
typedef struct tp_profile_spec {
  const char *name;
  unsigned versions;    /* TP_TLS* bits; 0 = TP_TLS_DEFAULT_VERSIONS */
  const char *priority; /* raw GnuTLS priority string; exclusive with the structured fields */
  const char *trust;    /* NULL or "system", a PEM bundle file or a directory */
  /* PEM bundle of known intermediate CAs, used only as evidence to tell an
   * incomplete chain from an unknown CA (never trusted as anchors). */
  const char *intermediates;
  const char *const *ciphers;              /* NULL = GnuTLS defaults */
  const char *const *key_exchanges;        /* TLS <= 1.2 key exchange */
  const char *const *macs;
  const char *const *groups;
  const char *const *signature_algorithms;
  const char *const *alpn;                 /* e.g. {"h2", "http/1.1", NULL} */
  const char *client_certificate, *client_key; /* PEM files, both or neither */
  tp_sni_mode sni_mode;
  const char *sni_name; /* TP_SNI_OVERRIDE only */
  tp_probe_mode mode;
  tp_http_spec http;
  tp_early_data_spec early_data; /* TP_MODE_EARLY_DATA only */
  /* Fetch a missing issuer from the leaf's AIA caIssuers URL (plain HTTP,
   * bounded, cached) to prove incomplete_chain; true = never fetch. */
  int aia_fetch_off;
  /* Finite-field DH limits of the emulated client, in bits of the server's
   * prime; 0 = no limit. Real clients refuse DH parameters outside their
   * range (Java 8: more than 2048 bits; Chrome 45+: fewer than 1024) while
   * GnuTLS accepts them, so the engine checks after the handshake (see
   * tp_profile_dh_bits). min <= max when both are set. */
  unsigned min_dh_bits, max_dh_bits;
  /* What the real client's recorded ClientHello offered (the importer fills
   * it from testssl.sh data), for telling when a GnuTLS emulation negotiated
   * something the real client could not (see tp_profile_recorded_offer).
   * Only versions, cipher_suites, groups and signature_algorithms are used. */
  bool has_recorded_offer;
  tp_hello_offer recorded_offer;
  const char *fidelity_note; /* what the emulation cannot reproduce; may be NULL */
  /* TLS 1.3 key shares in the first ClientHello, one per group type from the
   * top of the group list (GnuTLS's GNUTLS_KEY_SHARE_TOP, _TOP2, _TOP3):
   * 1..3, or 0 = automatic (tp_profile_key_shares says which). */
  unsigned key_shares;
} tp_profile_spec;

typedef struct tp_profile tp_profile;

/* Builds the profile; on failure writes a specific message to err (no
 * file/line: the caller knows where the spec came from and prefixes it). */
tp_err tp_profile_new(const tp_profile_spec *spec, tp_profile **out, char *err, size_t errlen);
void tp_profile_free(tp_profile *profile);
const char *tp_profile_name(const tp_profile *profile);
/* The GnuTLS priority string the profile was built with (for logs and docs). */
const char *tp_profile_priority_string(const tp_profile *profile);
tp_sni_mode tp_profile_sni_mode(const tp_profile *profile);
const char *tp_profile_sni_name(const tp_profile *profile); /* TP_SNI_OVERRIDE only */
tp_probe_mode tp_profile_mode(const tp_profile *profile);
const tp_http_spec *tp_profile_http(const tp_profile *profile); /* method NULL = none */
const tp_early_data_spec *tp_profile_early_data(const tp_profile *profile);
int tp_profile_aia_fetch(const tp_profile *profile); /* nonzero = on (the default) */
/* True for HTTP methods that are not safe (RFC 9110 §9.2.1: anything but GET,
 * HEAD, OPTIONS, TRACE). 0-RTT data can be replayed (RFC 8446 §8); a server
 * that processes such a request as early data instead of answering 425 Too
 * Early (RFC 8470 §5.2) can be made to repeat its effect. */
int tp_http_method_is_unsafe_for_early_data(const char *method);
const char *tp_profile_fidelity_note(const tp_profile *profile); /* NULL = faithful */

/* How many TLS 1.3 key shares the profile's first ClientHello carries (1..3).
 * Automatic (spec key_shares 0): one for a generic profile that leaves the
 * groups at GnuTLS's defaults (its first group is P-256, which RFC 8446 §9.1
 * makes mandatory for servers, so a second share -- X25519 -- is computed and
 * thrown away by every server that takes the client's first choice); GnuTLS's
 * own two for a profile that lists groups, a raw priority string or an
 * emulated real client, whose recorded offer and fidelity note were measured
 * with two. */
unsigned tp_profile_key_shares(const tp_profile *profile);

/* The emulated client's finite-field DH limits: *min and *max are bits of
 * the server's DH prime, 0 = no limit on that side. A real client fails the
 * handshake when the prime is outside [min, max]; GnuTLS does not, so after
 * a handshake that used a DHE key exchange (or an FFDHE group), compare
 * gnutls_dh_get_prime_bits(session) with them: bits < *min (when *min) or
 * bits > *max (when *max) means the real client would have failed. */
void tp_profile_dh_bits(const tp_profile *profile, unsigned *min, unsigned *max);

/* What the real client offered in its recorded ClientHello, or NULL when the
 * profile has no recording (built-ins, hand-written profiles). Owned by the
 * profile. Meaning of the fields for a comparison with what a GnuTLS
 * handshake negotiated:
 *  - versions: TP_TLS* bits the real client offers; a negotiated version
 *    whose bit is not set is one the real client could not have used.
 *  - cipher_suites[n_cipher_suites]: IANA ids (GREASE and SCSVs removed),
 *    including suites GnuTLS lacks; a negotiated suite not in the list was
 *    added by GnuTLS's cross product of ciphers x key exchanges x MACs.
 *  - groups[n_groups]: IANA NamedGroup ids; n_groups == 0 means the client
 *    sent no supported_groups, which restricts nothing (RFC 8422 §4).
 *  - signature_algorithms[n_signature_algorithms]: IANA SignatureScheme
 *    ids; 0 entries = none sent (TLS <= 1.1, or the RFC 5246 §7.4.1.4.1
 *    defaults for TLS 1.2).
 * Other fields of tp_hello_offer are not recorded and stay zero. */
const tp_hello_offer *tp_profile_recorded_offer(const tp_profile *profile);

/* The ClientHello GnuTLS writes for `priority` (e.g. from a spec through
 * tp__priority_build), parsed into *offer: what a profile with that string
 * really puts on the wire, measured without a network -- the first flight
 * is captured from the transport callback and the handshake abandoned. No
 * SNI and no ALPN are set. On failure writes why into err. */
tp_err tp_profile_sample_hello(const char *priority, tp_hello_offer *offer, char *err,
                               size_t errlen);

#endif
