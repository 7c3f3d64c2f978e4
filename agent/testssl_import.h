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
#include <stdio.h>

#include "profile.h"
#include "tp_error.h"

/* One client as written in the file (strings owned by the parsed file; NULL
 * when the block has no such key). */
typedef struct tp_testssl_client {
  const char *name, *short_name;
  const char *ciphers, *ciphersuites; /* OpenSSL names, ':'-separated; TLS 1.3 IANA names */
  const char *sni, *lowest_protocol, *highest_protocol, *alpn, *curves, *current;
  unsigned line; /* of its names+= */
} tp_testssl_client;

typedef struct tp_testssl_file tp_testssl_file;

/* Parses `path`. On failure: TP_E_IO or TP_E_CONFIG with "path:line: what"
 * in err. */
tp_err tp_testssl_parse(const char *path, tp_testssl_file **out, char *err, size_t errlen);
size_t tp_testssl_count(const tp_testssl_file *file);
const tp_testssl_client *tp_testssl_client_at(const tp_testssl_file *file, size_t i);
void tp_testssl_free(tp_testssl_file *file);

/* An OpenSSL cipher-suite name ("ECDHE-RSA-AES128-GCM-SHA256", "DES-CBC3-SHA")
 * split into the GnuTLS names of its key exchange, cipher and MAC. Returns
 * false for names that do not follow OpenSSL's naming. The parts may name
 * algorithms GnuTLS lacks (static "ECDH-RSA", "SEED-CBC"): see
 * tp_openssl_suite_supported. Parts are static strings. */
bool tp_openssl_suite_parse(const char *name, const char **kx, const char **cipher,
                            const char **mac);
/* True if GnuTLS has the suite and tlsprobe can offer it (certificate key
 * exchange, tp_priority_canonical names). */
bool tp_openssl_suite_supported(const char *kx, const char *cipher, const char *mac);
/* OpenSSL/testssl curve name ("prime256v1", "x25519", "ffdhe2048") -> GnuTLS
 * group name, or NULL if GnuTLS has no such group (sect*, brainpool*...). */
const char *tp_openssl_group(const char *curve);

/* One client mapped to a profile. */
typedef struct tp_testssl_profile tp_testssl_profile;

/* Maps a client. TP_E_OK: *out holds a spec that tp__priority_build accepts.
 * TP_E_NOTFOUND: GnuTLS cannot emulate this client at all (why says which
 * part, e.g. "offers only SSL 2/3"). */
tp_err tp_testssl_map(const tp_testssl_client *client, tp_testssl_profile **out, char *why,
                      size_t whylen);
const tp_profile_spec *tp_testssl_profile_spec(const tp_testssl_profile *profile);
void tp_testssl_profile_free(tp_testssl_profile *profile);

/* The whole command: parses `path`, writes a `profiles:` YAML document with
 * one profile per client (only clients marked current with current_only) to
 * out, and one line per skipped client to diag. Returns TP_E_OK, or the parse
 * error (message in err). */
tp_err tp_testssl_import(const char *path, bool current_only, FILE *out, FILE *diag, char *err,
                         size_t errlen);

#endif
