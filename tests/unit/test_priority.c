/* test_priority.c - structured profile fields -> GnuTLS priority string:
 * names come from the linked GnuTLS, the user's order is the order GnuTLS
 * offers, and every bad input gets a message that names it and lists what
 * would have been accepted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>

#include "priority.h"
#include "profile.h"

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_default_versions(void **state) {
  (void)state;
  char err[256];
  tp_profile_spec spec = {.name = "d"};
  char *s = tp__priority_build(&spec, err, sizeof(err));
  assert_string_equal(s, "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3");
  free(s);
  spec.versions = TP_TLS1_0;
  s = tp__priority_build(&spec, err, sizeof(err));
  assert_string_equal(s, "NORMAL:-VERS-ALL:+VERS-TLS1.0:%COMPAT");
  free(s);
}

static void test_every_dimension(void **state) {
  (void)state;
  char err[256];
  tp_profile_spec spec = {
      .name = "all",
      .versions = TP_TLS1_2,
      .ciphers = L("aes-256-gcm", "AES-128-GCM"), /* case-insensitive, canonicalised */
      .key_exchanges = L("ECDHE-RSA", "RSA"),
      .macs = L("AEAD"),
      .groups = L("SECP384R1", "X25519"),
      .signature_algorithms = L("ECDSA-SECP256R1-SHA256", "RSA-PSS-RSAE-SHA256", "RSA-SHA256"),
  };
  char *s = tp__priority_build(&spec, err, sizeof(err));
  assert_non_null(s);
  assert_string_equal(s, "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"
                         "-KX-ALL:+ECDHE-RSA:+RSA:-MAC-ALL:+AEAD:-GROUP-ALL:+GROUP-SECP384R1:"
                         "+GROUP-X25519:-SIGN-ALL:+SIGN-ECDSA-SECP256R1-SHA256:"
                         "+SIGN-RSA-PSS-RSAE-SHA256:+SIGN-RSA-SHA256");
  free(s);
}

/* Suite index order of a priority string, as IANA ids (0xHHLL). */
static size_t suite_order(const char *prio, unsigned *ids, size_t max) {
  gnutls_priority_t p;
  assert_int_equal(gnutls_priority_init2(&p, prio, NULL, 0), 0);
  size_t n = 0;
  for (unsigned i = 0; n < max; i++) {
    unsigned sidx;
    int rc = gnutls_priority_get_cipher_suite_index(p, i, &sidx);
    if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
      break;
    if (rc < 0)
      continue;
    unsigned char id[2];
    gnutls_kx_algorithm_t kx;
    gnutls_cipher_algorithm_t c;
    gnutls_mac_algorithm_t m;
    gnutls_protocol_t v;
    assert_non_null(gnutls_cipher_suite_info(sidx, id, &kx, &c, &m, &v));
    ids[n++] = (unsigned)id[0] << 8 | id[1];
  }
  gnutls_priority_deinit(p);
  return n;
}

/* The user's order survives, key exchange first (priority.h). */
static void test_order_is_preserved(void **state) {
  (void)state;
  char err[256];
  unsigned ids[32];
  tp_profile_spec spec = {
      .name = "o",
      .versions = TP_TLS1_2,
      .ciphers = L("AES-128-GCM", "AES-256-GCM"),
      .key_exchanges = L("RSA", "ECDHE-RSA"),
      .macs = L("AEAD"),
  };
  char *s = tp__priority_build(&spec, err, sizeof(err));
  assert_non_null(s);
  size_t n = suite_order(s, ids, 32);
  free(s);
  /* The TLS 1.3 suites sit in the cache too; keep only the TLS 1.2 ones. */
  unsigned tls12[8];
  size_t m = 0;
  for (size_t i = 0; i < n && m < 8; i++)
    if ((ids[i] >> 8) != 0x13)
      tls12[m++] = ids[i];
  assert_int_equal(m, 4);
  assert_int_equal(tls12[0], 0x009c); /* TLS_RSA_WITH_AES_128_GCM_SHA256 */
  assert_int_equal(tls12[1], 0x009d); /* TLS_RSA_WITH_AES_256_GCM_SHA384 */
  assert_int_equal(tls12[2], 0xc02f); /* TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 */
  assert_int_equal(tls12[3], 0xc030); /* TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 */

  /* Reversed lists, reversed order. */
  spec.ciphers = L("AES-256-GCM", "AES-128-GCM");
  spec.key_exchanges = L("ECDHE-RSA", "RSA");
  s = tp__priority_build(&spec, err, sizeof(err));
  n = suite_order(s, ids, 32);
  free(s);
  m = 0;
  for (size_t i = 0; i < n && m < 8; i++)
    if ((ids[i] >> 8) != 0x13)
      tls12[m++] = ids[i];
  assert_int_equal(tls12[0], 0xc030);
  assert_int_equal(tls12[1], 0xc02f);
  assert_int_equal(tls12[2], 0x009d);
  assert_int_equal(tls12[3], 0x009c);
}

static void expect_error(const tp_profile_spec *spec, const char *const *needles) {
  char err[1024] = "";
  char *s = tp__priority_build(spec, err, sizeof(err));
  if (s != NULL)
    fail_msg("built \"%s\", expected an error", s);
  for (size_t i = 0; needles[i] != NULL; i++)
    if (strstr(err, needles[i]) == NULL)
      fail_msg("message \"%s\" lacks \"%s\"", err, needles[i]);
}

static void test_errors(void **state) {
  (void)state;
  tp_profile_spec spec = {.name = "e", .groups = L("X25519", "P-999")};
  expect_error(&spec, L("unknown group \"P-999\" (known: ", "X25519", "SECP256R1", "FFDHE8192"));
  spec = (tp_profile_spec){.name = "e", .ciphers = L("AES-999-GCM")};
  expect_error(&spec, L("unknown cipher \"AES-999-GCM\" (known: ", "AES-128-GCM", "3DES-CBC"));
  /* GnuTLS knows AES-192-CBC as an algorithm, but no TLS suite uses it. */
  spec = (tp_profile_spec){.name = "e", .ciphers = L("AES-192-CBC")};
  expect_error(&spec, L("unknown cipher \"AES-192-CBC\""));
  spec = (tp_profile_spec){.name = "e", .key_exchanges = L("PSK")};
  expect_error(&spec, L("unknown key exchange \"PSK\" (known: ", "ECDHE-RSA", "DHE-RSA"));
  spec = (tp_profile_spec){.name = "e", .macs = L("SHA3")};
  expect_error(&spec, L("unknown MAC \"SHA3\" (known: ", "SHA1", "AEAD"));
  spec = (tp_profile_spec){.name = "e", .signature_algorithms = L("RSA-WHIRLPOOL")};
  expect_error(&spec, L("unknown signature algorithm \"RSA-WHIRLPOOL\" (known: ", "RSA-SHA256"));
  spec = (tp_profile_spec){.name = "e", .groups = L("X25519", "x25519")};
  expect_error(&spec, L("group \"x25519\" is listed twice"));
  spec = (tp_profile_spec){.name = "e", .groups = (const char *const[]){NULL}};
  expect_error(&spec, L("the group list is empty"));
  /* TLS 1.3 without an AEAD cipher; TLS 1.0 without a CBC one. */
  spec = (tp_profile_spec){.name = "e", .versions = TP_TLS1_3, .ciphers = L("AES-128-CBC")};
  expect_error(&spec, L("with TLS1.3", "AEAD"));
  spec = (tp_profile_spec){.name = "e", .versions = TP_TLS1_0 | TP_TLS1_2,
                           .ciphers = L("AES-128-GCM")};
  expect_error(&spec, L("with TLS1.0", "CBC"));
  /* Lists that form no suite at all. */
  spec = (tp_profile_spec){.name = "e", .versions = TP_TLS1_2, .ciphers = L("AES-128-CBC"),
                           .macs = L("AEAD")};
  expect_error(&spec, L("TLS1.2"));
}

static void test_canonical_and_known(void **state) {
  (void)state;
  assert_string_equal(tp_priority_canonical(TP_PRIO_GROUP, "secp256r1"), "SECP256R1");
  assert_string_equal(tp_priority_canonical(TP_PRIO_SIGN, "rsa-pss-rsae-sha256"),
                      "RSA-PSS-RSAE-SHA256");
  assert_null(tp_priority_canonical(TP_PRIO_GROUP, "GC256B")); /* GOST: not offered */
  assert_null(tp_priority_canonical(TP_PRIO_KX, "ANON-DH"));
  char buf[64];
  tp_priority_known(TP_PRIO_SIGN, buf, sizeof(buf));
  assert_true(strlen(buf) < sizeof(buf));
  assert_non_null(strstr(buf, "..."));
  tp_priority_known(TP_PRIO_KX, buf, sizeof(buf));
  assert_string_equal(buf, "ECDHE-RSA, ECDHE-ECDSA, RSA, DHE-RSA, DHE-DSS");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_versions),
      cmocka_unit_test(test_every_dimension),
      cmocka_unit_test(test_order_is_preserved),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_canonical_and_known),
  };
  if (gnutls_global_init() < 0)
    return 1;
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  gnutls_global_deinit();
  return rc;
}
