/* profile_library.c - the built-in client profiles, as a documented C table.
 *
 * Why C and not YAML files: the agent is one binary with no install-time data
 * directory, and a table the compiler checks cannot go missing or drift from
 * the binary. `tlsprobe-agent profiles show NAME` prints any entry as YAML, so
 * the table is also the documentation. Every entry must build with a real
 * gnutls_priority_init (tests/unit/test_profiles_library.c).
 *
 * Sources (facts only, no copied prose):
 *  - modern / intermediate / old: Mozilla "Server Side TLS" recommendations
 *    v5.7 (wiki.mozilla.org/Security/Server_Side_TLS, ssl-config.mozilla.org),
 *    seen from the client side: the versions, cipher suites and groups a
 *    server configured at that level accepts.
 *  - android-4.4, java-8, ie11-win7: testssl.sh's etc/client-simulation.txt
 *    (Debian package testssl.sh 3.0.8; data from Qualys SSL Labs' client
 *    list): the client's versions, cipher list and curves; the signature
 *    algorithms are decoded from the recorded ClientHello (handshakebytes,
 *    extension 0x000d). Their recorded_offer is that hello as `profiles
 *    import-testssl` decodes it (tests/integration/test_profiles_import.sh
 *    compares the two), so the engine can tell when GnuTLS negotiated what
 *    the real client never offers; min/max_dh_bits are the file's
 *    minDhBits/maxDhBits.
 *
 * What no entry can reproduce (GnuTLS 3.7.9): the exact cipher-suite order
 * (GnuTLS orders key exchange first, then cipher, then MAC, and offers every
 * valid combination of the lists -- see priority.h), the extension set and
 * order, GREASE, SSL 3.0, and suites GnuTLS lacks (static ECDH/DH, SEED,
 * IDEA, DES, export). Each entry's fidelity_note says what matters for it. */
#include "profile_library.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

/* One list of a recorded offer with its count. */
#define IDS(field, ...)                                                                      \
  .field = {__VA_ARGS__}, .n_##field = sizeof((const uint16_t[]){__VA_ARGS__}) / sizeof(uint16_t)

/* Mozilla: TLS 1.3 suites AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305 and the
 * groups X25519, prime256v1, secp384r1 at every level. */
#define MOZ_GROUPS L("X25519", "SECP256R1", "SECP384R1")

static const tp_builtin_profile library[] = {
    {
        .description = "Mozilla 'modern' level seen from the client: TLS 1.3 only with the "
                       "suites TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, "
                       "TLS_CHACHA20_POLY1305_SHA256 and groups X25519, P-256, P-384.",
        .spec =
            {
                .name = "modern",
                .versions = TP_TLS1_3,
                .ciphers = L("AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"),
                .macs = L("AEAD"),
                .groups = MOZ_GROUPS,
            },
    },
    {
        .description = "Mozilla 'intermediate' level seen from the client: TLS 1.2 + 1.3; "
                       "TLS 1.2 suites ECDHE-ECDSA/ECDHE-RSA/DHE-RSA with AES-128-GCM, "
                       "AES-256-GCM, CHACHA20-POLY1305 (9 suites); groups X25519, P-256, P-384, "
                       "ffdhe2048.",
        .spec =
            {
                .name = "intermediate",
                .versions = TP_TLS1_2 | TP_TLS1_3,
                .ciphers = L("AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"),
                .key_exchanges = L("ECDHE-ECDSA", "ECDHE-RSA", "DHE-RSA"),
                .macs = L("AEAD"),
                .groups = L("X25519", "SECP256R1", "SECP384R1", "FFDHE2048"),
                .fidelity_note = "suite order is key-exchange-major (all ECDHE-ECDSA suites, "
                                 "then ECDHE-RSA, then DHE-RSA); Mozilla's list interleaves "
                                 "ECDSA and RSA per cipher",
            },
    },
    {
        .description = "Mozilla 'old' level seen from the client: TLS 1.0-1.3; ECDHE-ECDSA, "
                       "ECDHE-RSA, DHE-RSA and RSA key exchange with AES-GCM, CHACHA20-POLY1305, "
                       "AES-CBC (SHA1/SHA256/SHA384) and 3DES (DES-CBC3-SHA); groups X25519, "
                       "P-256, P-384, ffdhe2048.",
        .spec =
            {
                .name = "old",
                .versions = TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2 | TP_TLS1_3,
                .ciphers = L("AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305", "AES-128-CBC",
                             "AES-256-CBC", "3DES-CBC"),
                .key_exchanges = L("ECDHE-ECDSA", "ECDHE-RSA", "DHE-RSA", "RSA"),
                .macs = L("AEAD", "SHA256", "SHA384", "SHA1"),
                .groups = L("X25519", "SECP256R1", "SECP384R1", "FFDHE2048"),
                .fidelity_note = "GnuTLS offers every valid combination of the lists, so a few "
                                 "suites outside Mozilla's 'old' list are offered too (e.g. "
                                 "ECDHE-ECDSA-DES-CBC3-SHA, DHE-RSA-AES256-SHA); suite order is "
                                 "key-exchange-major",
            },
    },
    {
        .description = "TLS 1.2 with static RSA key transport only (no forward secrecy): "
                       "shows whether a server still accepts clients without ECDHE/DHE.",
        .spec =
            {
                .name = "tls12-rsa-kx-only",
                .versions = TP_TLS1_2,
                .key_exchanges = L("RSA"),
            },
    },
    {
        .description = "TLS 1.2 + 1.3 offering only the P-384 (secp384r1) group.",
        .spec = {.name = "p384-only", .groups = L("SECP384R1")},
    },
    {
        .description = "TLS 1.2 + 1.3 offering only the X25519 group.",
        .spec = {.name = "x25519-only", .groups = L("X25519")},
    },
    {
        .description = "TLS 1.2 + 1.3 with finite-field Diffie-Hellman only: RFC 7919 groups "
                       "ffdhe2048..8192 and, for TLS 1.2, the DHE-RSA key exchange.",
        .spec =
            {
                .name = "ffdhe-only",
                .key_exchanges = L("DHE-RSA"),
                .groups = L("FFDHE2048", "FFDHE3072", "FFDHE4096", "FFDHE6144", "FFDHE8192"),
            },
    },
    {
        .description = "Android 4.4 (KitKat, 4.4.2) era client: TLS 1.0-1.2, AES-GCM/CBC, "
                       "3DES and RC4 suites, groups P-521, P-384, P-256 (testssl.sh "
                       "client-simulation 'Android 4.4.2').",
        .spec =
            {
                .name = "android-4.4",
                .versions = TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2,
                .key_exchanges = L("ECDHE-RSA", "ECDHE-ECDSA", "DHE-DSS", "DHE-RSA", "RSA"),
                .ciphers = L("AES-256-GCM", "AES-256-CBC", "3DES-CBC", "AES-128-GCM",
                             "AES-128-CBC", "ARCFOUR-128"),
                .macs = L("AEAD", "SHA1", "SHA256", "MD5"),
                .groups = L("SECP521R1", "SECP384R1", "SECP256R1"),
                .signature_algorithms =
                    L("RSA-SHA512", "DSA-SHA512", "ECDSA-SHA512", "RSA-SHA384", "DSA-SHA384",
                      "ECDSA-SHA384", "RSA-SHA256", "DSA-SHA256", "ECDSA-SHA256", "RSA-SHA224",
                      "DSA-SHA224", "ECDSA-SHA224", "RSA-SHA1", "DSA-SHA1", "ECDSA-SHA1"),
                .has_recorded_offer = true,
                .recorded_offer =
                    {
                        .versions = TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2,
                        IDS(cipher_suites, 0xc030, 0xc02c, 0xc014, 0xc00a, 0x00a3, 0x009f, 0x006b,
                            0x006a, 0x0039, 0x0038, 0x009d, 0x003d, 0x0035, 0xc012, 0xc008,
                            0x0016, 0x0013, 0x000a, 0xc02f, 0xc02b, 0xc027, 0xc023, 0xc013,
                            0xc009, 0x00a2, 0x009e, 0x0067, 0x0040, 0x0033, 0x0032, 0x009c,
                            0x003c, 0x002f, 0xc011, 0xc007, 0x0005, 0x0004),
                        IDS(groups, 0x0019, 0x0018, 0x0017),
                        IDS(signature_algorithms, 0x0601, 0x0602, 0x0603, 0x0501, 0x0502,
                            0x0503, 0x0401, 0x0402, 0x0403, 0x0301, 0x0302, 0x0303, 0x0201,
                            0x0202, 0x0203, 0x0101),
                    },
                .fidelity_note =
                    "the real client also offers SSL 3.0 (fallback), which GnuTLS lacks; suite "
                    "order is key-exchange-major and combinations the client did not offer are "
                    "added (e.g. DHE-DSS-3DES, ECDHE-ECDSA-AES256-SHA384 variants); extension "
                    "set and order are GnuTLS's (adds extended_master_secret, "
                    "encrypt_then_mac, status_request)",
            },
    },
    {
        .description = "Java 8 (8u161) era client (JSSE defaults): TLS 1.0-1.2, CBC suites "
                       "before GCM, 3DES last, groups P-256, P-384, P-521 (testssl.sh "
                       "client-simulation 'Java 8u161').",
        .spec =
            {
                .name = "java-8",
                .versions = TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2,
                .key_exchanges = L("ECDHE-ECDSA", "ECDHE-RSA", "RSA", "DHE-RSA", "DHE-DSS"),
                .ciphers = L("AES-256-CBC", "AES-128-CBC", "AES-256-GCM", "AES-128-GCM",
                             "3DES-CBC"),
                .macs = L("SHA384", "SHA256", "SHA1", "AEAD"),
                .groups = L("SECP256R1", "SECP384R1", "SECP521R1"),
                .signature_algorithms =
                    L("ECDSA-SHA512", "RSA-SHA512", "ECDSA-SHA384", "RSA-SHA384", "ECDSA-SHA256",
                      "RSA-SHA256", "DSA-SHA256", "ECDSA-SHA1", "RSA-SHA1", "DSA-SHA1"),
                .max_dh_bits = 2048,
                .has_recorded_offer = true,
                .recorded_offer =
                    {
                        .versions = TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2,
                        IDS(cipher_suites, 0xc024, 0xc028, 0x003d, 0xc026, 0xc02a, 0x006b, 0x006a,
                            0xc00a, 0xc014, 0x0035, 0xc005, 0xc00f, 0x0039, 0x0038, 0xc023,
                            0xc027, 0x003c, 0xc025, 0xc029, 0x0067, 0x0040, 0xc009, 0xc013,
                            0x002f, 0xc004, 0xc00e, 0x0033, 0x0032, 0xc02c, 0xc02b, 0xc030,
                            0x009d, 0xc02e, 0xc032, 0x009f, 0x00a3, 0xc02f, 0x009c, 0xc02d,
                            0xc031, 0x009e, 0x00a2, 0xc008, 0xc012, 0x000a, 0xc003, 0xc00d,
                            0x0016, 0x0013),
                        IDS(groups, 0x0017, 0x0018, 0x0019, 0x0009, 0x000a, 0x000b, 0x000c,
                            0x000d, 0x000e, 0x0016),
                        IDS(signature_algorithms, 0x0603, 0x0601, 0x0503, 0x0501, 0x0403,
                            0x0401, 0x0402, 0x0203, 0x0201, 0x0202),
                    },
                .fidelity_note =
                    "static ECDH suites (ECDH-ECDSA-*, ECDH-RSA-*) and the sect*/secp256k1 "
                    "curves of the real client do not exist in GnuTLS; suite order is "
                    "key-exchange-major and combinations the client did not offer are added; "
                    "extension set and order are GnuTLS's",
            },
    },
    {
        .description = "Internet Explorer 11 on Windows 7 (SChannel): TLS 1.0-1.2, "
                       "ECDHE-RSA only with CBC suites, GCM only with DHE-RSA, RSA and "
                       "ECDHE-ECDSA, groups P-256, P-384 (testssl.sh client-simulation "
                       "'IE 11 Win 7').",
        .spec =
            {
                .name = "ie11-win7",
                .versions = TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2,
                .key_exchanges = L("ECDHE-RSA", "DHE-RSA", "RSA", "ECDHE-ECDSA", "DHE-DSS"),
                .ciphers = L("AES-256-CBC", "AES-128-CBC", "AES-256-GCM", "AES-128-GCM",
                             "3DES-CBC"),
                .macs = L("SHA384", "SHA256", "SHA1", "AEAD"),
                .groups = L("SECP256R1", "SECP384R1"),
                .signature_algorithms =
                    L("RSA-SHA512", "ECDSA-SHA512", "RSA-SHA256", "RSA-SHA384", "RSA-SHA1",
                      "ECDSA-SHA256", "ECDSA-SHA384", "ECDSA-SHA1", "DSA-SHA1"),
                .min_dh_bits = 1024,
                .max_dh_bits = 4096,
                .has_recorded_offer = true,
                .recorded_offer =
                    {
                        .versions = TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2,
                        IDS(cipher_suites, 0xc028, 0xc027, 0xc014, 0xc013, 0x009f, 0x009e, 0x009d,
                            0x009c, 0x003d, 0x003c, 0x0035, 0x002f, 0xc02c, 0xc02b, 0xc024,
                            0xc023, 0xc00a, 0xc009, 0x006a, 0x0040, 0x0038, 0x0032, 0x000a,
                            0x0013),
                        IDS(groups, 0x0017, 0x0018),
                        IDS(signature_algorithms, 0x0601, 0x0603, 0x0401, 0x0501, 0x0201,
                            0x0403, 0x0503, 0x0203, 0x0202),
                    },
                .fidelity_note =
                    "NOT faithful on the point this client is known for: IE 11 on Windows 7 "
                    "offers no ECDHE-RSA-AES-GCM suite, but GnuTLS offers every valid "
                    "combination of the lists, so ECDHE-RSA-AES128/256-GCM are offered; a "
                    "server that only has those will succeed here and fail for real IE 11/Win 7 "
                    "clients (such a result carries an emulation_divergence, from the recorded "
                    "offer). Suite order is key-exchange-major; extensions are GnuTLS's",
            },
    },
};
#define N_LIBRARY (sizeof(library) / sizeof(library[0]))

size_t tp_profile_library_count(void) {
  return N_LIBRARY;
}

const tp_builtin_profile *tp_profile_library_at(size_t i) {
  return i < N_LIBRARY ? &library[i] : NULL;
}

const tp_builtin_profile *tp_profile_library_find(const char *name) {
  for (size_t i = 0; i < N_LIBRARY; i++)
    if (strcmp(library[i].spec.name, name) == 0)
      return &library[i];
  return NULL;
}

void tp_profile_library_names(char *buf, size_t len) {
  size_t used = 0;
  if (len == 0)
    return;
  buf[0] = '\0';
  for (size_t i = 0; i < N_LIBRARY && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", library[i].spec.name);
}
