/* testssl_import.h - `tlsprobe-agent profiles import-testssl FILE`: turns
 * testssl.sh's client-simulation.txt (handshake data of ~160 real clients,
 * written as bash array appends: names+=("..."), ciphers+=("...")...) into
 * tlsprobe profiles.
 *
 * The file is read as data, never executed: each line must be
 * `KEY+=("text")` or `KEY+=(word)`; "$SNI" is kept as the literal text it is.
 * A client is the block of lines from one `names+=` to the next, so a field
 * that only some clients have (alpn) stays with its client (bash would shift
 * the array indices). Unknown keys are ignored; malformed lines are errors
 * with their line number. */
#ifndef TP_AGENT_TESTSSL_IMPORT_H
#define TP_AGENT_TESTSSL_IMPORT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "profile.h"
#include "tp_error.h"

/* One client as written in the file (strings owned by the parsed file; NULL
 * when the block has no such key). Only handshakebytes, lowest_protocol,
 * minDhBits/maxDhBits and the names are used for the mapping; the other
 * fields are testssl.sh's own summary of the same hello and are kept for
 * reference (the ALPN summary, for one, often differs from the hello). */
typedef struct tp_testssl_client {
  const char *name, *short_name;
  const char *ciphers, *ciphersuites; /* OpenSSL names, ':'-separated; TLS 1.3 IANA names */
  const char *sni, *lowest_protocol, *highest_protocol, *alpn, *curves, *current;
  const char *handshakebytes;          /* hex of the recorded ClientHello, record layer included */
  const char *min_dh_bits, *max_dh_bits; /* decimal; -1 = no limit */
  unsigned line; /* of its names+= */
} tp_testssl_client;

typedef struct tp_testssl_file tp_testssl_file;

/* Parses `path`. On failure: TP_E_IO or TP_E_CONFIG with "path:line: what"
 * in err. */
tp_err tp_testssl_parse(const char *path, tp_testssl_file **out, char *err, size_t errlen);
size_t tp_testssl_count(const tp_testssl_file *file);
const tp_testssl_client *tp_testssl_client_at(const tp_testssl_file *file, size_t i);
void tp_testssl_free(tp_testssl_file *file);

/* The GnuTLS priority keywords of one IANA cipher suite: *kx is NULL for a
 * TLS 1.3 suite (RFC 8446 §B.4: the suite names no key exchange). Returns
 * false when GnuTLS lacks the suite or tlsprobe cannot offer it (PSK, SRP,
 * anonymous and GOST key exchanges need credentials a prober has not). */
bool tp_testssl_suite_keywords(uint16_t id, const char **kx, const char **cipher,
                               const char **mac);
/* Name of an IANA cipher suite for notes: GnuTLS's when it knows the suite,
 * else the IANA registry's for the suites recorded clients send that GnuTLS
 * lacks (static DH/ECDH, export, DES, IDEA, SEED, GOST, the pre-RFC ChaCha20),
 * else "0xHHLL" in buf. */
const char *tp_testssl_suite_name(uint16_t id, char *buf, size_t len);
/* GnuTLS priority names for one IANA SignatureScheme, most specific first,
 * NULL-terminated (static); NULL if GnuTLS has none. tls13: whether the
 * profile offers TLS 1.3, where 0x0403/0x0503/0x0603 are curve-bound. */
const char *const *tp_testssl_sigalg_keywords(uint16_t scheme, bool tls13);

/* One client mapped to a profile. */
typedef struct tp_testssl_profile tp_testssl_profile;

/* Maps a client from its recorded ClientHello (handshakebytes): versions
 * from supported_versions when the hello has it, else from its
 * legacy_version down to the file's lowest_protocol; suites, groups,
 * signature algorithms and ALPN from the hello; DH limits from
 * minDhBits/maxDhBits; the hello itself as the spec's recorded_offer. The
 * fidelity_note compares the ClientHello GnuTLS really writes for the
 * profile (tp_profile_sample_hello) with the recorded one.
 * TP_E_OK: *out holds a spec that tp__priority_build accepts.
 * TP_E_NOTFOUND: GnuTLS cannot emulate this client at all, or its data is
 * unusable (why says which part, e.g. "offers only SSL 3.0"); why may quote
 * the file's text unescaped. */
tp_err tp_testssl_map(const tp_testssl_client *client, tp_testssl_profile **out, char *why,
                      size_t whylen);
const tp_profile_spec *tp_testssl_profile_spec(const tp_testssl_profile *profile);
void tp_testssl_profile_free(tp_testssl_profile *profile);

/* The whole command: parses `path`, writes a `profiles:` YAML document with
 * one profile per client (only clients marked current with current_only) to
 * out through libyaml's emitter, each with a description naming the client
 * and its line, and one line per skipped client to diag (text from the file
 * escaped). Returns TP_E_OK, or the parse/write error (message in err). */
tp_err tp_testssl_import(const char *path, bool current_only, FILE *out, FILE *diag, char *err,
                         size_t errlen);

#endif
