/* hello.h - reads a ClientHello (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2 for
 * TLS <= 1.2) into the offer it makes: versions, cipher suites, groups, key
 * shares, signature algorithms, ALPN. Two readers: the engine reads its own
 * hello as GnuTLS sent it (evidence of what a profile really emulated), and
 * the testssl.sh importer reads real clients' recorded hellos, which are
 * untrusted input. Both are parsed with bounds checks on every length. */
#ifndef TP_HELLO_H
#define TP_HELLO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* TLS protocol versions a profile may offer (bitmask). Defined here because
 * an offer is made of them; profile.h re-exports them. */
enum {
  TP_TLS1_0 = 1u << 0,
  TP_TLS1_1 = 1u << 1,
  TP_TLS1_2 = 1u << 2,
  TP_TLS1_3 = 1u << 3,
};

/* Wire code points (RFC 8446 §4.2.1, RFC 5246 Appendix E). */
enum {
  TP_WIRE_SSL3_0 = 0x0300,
  TP_WIRE_TLS1_0 = 0x0301,
  TP_WIRE_TLS1_2 = 0x0303,
  TP_WIRE_TLS1_3 = 0x0304,
};

#define TP_HELLO_MAX_SUITES 256
#define TP_HELLO_MAX_GROUPS 64
#define TP_HELLO_MAX_KEY_SHARES 16
#define TP_HELLO_MAX_SIGALGS 64
#define TP_HELLO_MAX_VERSIONS 16
#define TP_HELLO_MAX_ALPN 256 /* bytes of the ProtocolNameList kept */

/* What one ClientHello offers. Every list keeps the client's order with
 * GREASE values (RFC 8701) removed; `grease` says whether there were any. A
 * list longer than its array keeps its first entries and sets `truncated`. */
typedef struct tp_hello_offer {
  uint16_t legacy_version; /* ClientHello.legacy_version / client_version */
  /* TP_TLS* bits. With supported_versions, exactly the final TLS versions it
   * lists (RFC 8446 §4.2.1: the extension replaces legacy_version). Without
   * it, every TLS version from 1.0 up to legacy_version, capped at 1.2: such
   * a hello names its highest version only, never its lowest (RFC 5246
   * Appendix E.1), so a caller that knows the client's minimum must apply
   * it (see versions_exact). */
  unsigned versions;
  bool versions_exact; /* versions came from supported_versions */
  /* supported_versions as sent, GREASE removed, drafts (0x7fXX) kept */
  uint16_t supported_versions[TP_HELLO_MAX_VERSIONS];
  size_t n_supported_versions;
  /* IANA cipher suite ids; the signalling values TLS_EMPTY_RENEGOTIATION_
   * INFO_SCSV and TLS_FALLBACK_SCSV are not suites and are reported below */
  uint16_t cipher_suites[TP_HELLO_MAX_SUITES];
  size_t n_cipher_suites;
  uint16_t groups[TP_HELLO_MAX_GROUPS]; /* supported_groups (RFC 8446 §4.2.7) */
  size_t n_groups;
  uint16_t key_shares[TP_HELLO_MAX_KEY_SHARES]; /* key_share groups (§4.2.8) */
  size_t n_key_shares;
  uint16_t signature_algorithms[TP_HELLO_MAX_SIGALGS]; /* SignatureScheme (§4.2.3) */
  size_t n_signature_algorithms;
  /* ALPN ProtocolNameList body (RFC 7301 §3.1): length-prefixed names, each
   * checked to be 1..255 bytes; whole names only */
  uint8_t alpn[TP_HELLO_MAX_ALPN];
  size_t alpn_len;
  bool has_server_name;    /* server_name extension present (RFC 6066 §3) */
  bool renegotiation_scsv; /* TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 §3.3) */
  bool fallback_scsv;      /* TLS_FALLBACK_SCSV (RFC 7507 §4): a fallback retry */
  bool compression;        /* offers a compression method besides null */
  bool grease;
  bool sslv2_format;        /* an SSL 2.0-compatible CLIENT-HELLO (RFC 5246 §E.2) */
  size_t n_sslv2_only_specs; /* of its cipher specs, SSL 2.0 kinds (not TLS suites) */
  bool truncated;
} tp_hello_offer;

/* Parses a ClientHello body (without the 4-byte handshake header).
 * Returns 0, or -1 if the message is malformed (offer is then partial). */
int tp_hello_parse_client_hello(const uint8_t *body, size_t len, tp_hello_offer *offer);

/* Parses a ClientHello as recorded on the wire: TLS records of content type
 * handshake (RFC 8446 §5.1) whose fragments form one client_hello message,
 * or an SSL 2.0-compatible CLIENT-HELLO with a 2-byte header (RFC 5246
 * Appendix E.2). Returns 0, or -1 with *why (a static string) saying what is
 * wrong. Bytes after the message are an error. */
int tp_hello_parse_recorded(const uint8_t *bytes, size_t len, tp_hello_offer *offer,
                            const char **why);

/* RFC 8701 GREASE value (0x?A?A with equal bytes). */
bool tp_hello_is_grease(uint16_t value);

/* IANA NamedGroup code point -> "X25519", "SECP256R1", "FFDHE2048"... (the
 * GnuTLS spelling for the groups GnuTLS has, the registry's for the others,
 * e.g. "sect163k1", "brainpoolP256r1"); writes "0x%04x" into buf for unknown
 * ones and returns buf. */
const char *tp_hello_group_name(uint16_t group, char *buf, size_t len);

/* IANA SignatureScheme code point -> its registry name ("rsa_pss_rsae_sha256",
 * "ecdsa_secp256r1_sha256"...), else "0x%04x" in buf. */
const char *tp_hello_sigalg_name(uint16_t scheme, char *buf, size_t len);

/* Protocol version code point -> "TLS1.2", "SSL3.0", "TLS1.3-draft23"
 * (0x7f17), else "0x%04x" in buf. */
const char *tp_hello_version_name(uint16_t version, char *buf, size_t len);

#endif
