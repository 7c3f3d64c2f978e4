/* test_profiles_library.c - every built-in profile builds into a priority
 * string that a real gnutls_priority_init accepts (tp_profile_new), with the
 * versions and groups it documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>

#include "priority.h"
#include "profile.h"
#include "profile_internal.h"
#include "profile_library.h"

static void test_every_builtin_builds(void **state) {
  (void)state;
  assert_true(tp_profile_library_count() >= 10);
  for (size_t i = 0; i < tp_profile_library_count(); i++) {
    const tp_builtin_profile *b = tp_profile_library_at(i);
    char err[1024] = "";
    tp_profile *p = NULL;
    if (tp_profile_new(&b->spec, &p, err, sizeof(err)) != TP_E_OK)
      fail_msg("built-in \"%s\": %s", b->spec.name, err);
    assert_non_null(b->description);
    assert_non_null(tp__profile_priority(p));
    assert_ptr_equal(tp_profile_library_find(b->spec.name), b);
    tp_profile_free(p);
  }
  assert_null(tp_profile_library_find("no-such-profile"));
}

static bool has_cipher(gnutls_priority_t prio, gnutls_cipher_algorithm_t want) {
  const unsigned int *list = NULL;
  int n = gnutls_priority_cipher_list(prio, &list);
  for (int i = 0; i < n; i++)
    if (list[i] == (unsigned)want)
      return true;
  return false;
}

/* The every-cipher diagnostic must offer what "+CIPHER-ALL" leaves out (3DES,
 * RC4, CAMELLIA), or a server that speaks only those reads as a bare
 * handshake_failure instead of no_shared_cipher. The matrix proves CAMELLIA
 * against a real server; Debian's OpenSSL serves neither 3DES nor RC4. */
static void test_cipher_diagnostic_offers_every_cipher(void **state) {
  (void)state;
  tp_profile_spec spec = {.name = "diag", .versions = TP_TLS1_2};
  tp_profile *p = NULL;
  char err[512];
  assert_int_equal(tp_profile_new(&spec, &p, err, sizeof(err)), TP_E_OK);
  gnutls_priority_t own = tp__profile_priority(p);
  gnutls_priority_t wide = tp__profile_widened_priority(p, TP_WIDEN_CIPHERS);
  const gnutls_cipher_algorithm_t extra[] = {GNUTLS_CIPHER_3DES_CBC, GNUTLS_CIPHER_ARCFOUR_128,
                                             GNUTLS_CIPHER_CAMELLIA_128_CBC,
                                             GNUTLS_CIPHER_CAMELLIA_256_GCM};
  for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
    assert_false(has_cipher(own, extra[i])); /* the profile itself does not offer them */
    assert_true(has_cipher(wide, extra[i]));
  }
  tp_profile_free(p);
}

static void test_required_names_exist(void **state) {
  (void)state;
  static const char *const required[] = {"modern",      "intermediate", "old",
                                         "tls12-rsa-kx-only", "p384-only", "x25519-only",
                                         "ffdhe-only",  "android-4.4",  "java-8",
                                         "ie11-win7"};
  for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
    if (tp_profile_library_find(required[i]) == NULL)
      fail_msg("built-in \"%s\" missing", required[i]);
}

/* The strings say what the documentation says. */
static void test_priority_strings(void **state) {
  (void)state;
  char err[512];
  char *s = tp__priority_build(&tp_profile_library_find("modern")->spec, err, sizeof(err));
  assert_non_null(s);
  assert_string_equal(s, "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
                         "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-GROUP-ALL:+GROUP-X25519:"
                         "+GROUP-SECP256R1:+GROUP-SECP384R1");
  free(s);
  s = tp__priority_build(&tp_profile_library_find("p384-only")->spec, err, sizeof(err));
  assert_non_null(s);
  assert_string_equal(s, "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3:-GROUP-ALL:+GROUP-SECP384R1");
  free(s);
  s = tp__priority_build(&tp_profile_library_find("old")->spec, err, sizeof(err));
  assert_non_null(s);
  assert_non_null(strstr(s, "+VERS-TLS1.0:+VERS-TLS1.1:+VERS-TLS1.2:+VERS-TLS1.3"));
  assert_non_null(strstr(s, ":%COMPAT"));
  free(s);
}

/* Mozilla intermediate = exactly 9 TLS 1.2 suites + 3 TLS 1.3 suites. */
static void test_intermediate_suite_count(void **state) {
  (void)state;
  char err[512];
  char *s = tp__priority_build(&tp_profile_library_find("intermediate")->spec, err, sizeof(err));
  assert_non_null(s);
  gnutls_priority_t p;
  assert_int_equal(gnutls_priority_init2(&p, s, NULL, 0), 0);
  unsigned n = 0, sidx;
  for (unsigned i = 0;; i++) {
    int rc = gnutls_priority_get_cipher_suite_index(p, i, &sidx);
    if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
      break;
    if (rc == 0)
      n++;
  }
  assert_int_equal(n, 12);
  gnutls_priority_deinit(p);
  free(s);
}

/* The library API refuses a raw priority string next to any structured list:
 * the string decides everything, so the list would be silently ignored. */
static void test_priority_excludes_structured_fields(void **state) {
  (void)state;
  static const char *const groups[] = {"X25519", NULL};
  static const char *const ciphers[] = {"AES-128-GCM", NULL};
  tp_profile_spec with_groups = {.name = "g", .priority = "NORMAL", .groups = groups};
  tp_profile_spec with_ciphers = {.name = "c", .priority = "NORMAL", .ciphers = ciphers};
  tp_profile_spec with_versions = {.name = "v", .priority = "NORMAL", .versions = TP_TLS1_3};
  const struct {
    const tp_profile_spec *spec;
    const char *field;
  } cases[] = {{&with_groups, "\"groups\""}, {&with_ciphers, "\"ciphers\""},
               {&with_versions, "\"versions\""}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[512] = "";
    tp_profile *p = NULL;
    assert_int_equal(tp_profile_new(cases[i].spec, &p, err, sizeof(err)), TP_E_CONFIG);
    assert_null(p);
    if (strstr(err, cases[i].field) == NULL || strstr(err, "cannot be combined") == NULL)
      fail_msg("case %zu: \"%s\" does not name %s", i, err, cases[i].field);
  }
}

static unsigned key_shares_of(const tp_profile_spec *spec) {
  char err[512] = "";
  tp_profile *p = NULL;
  if (tp_profile_new(spec, &p, err, sizeof(err)) != TP_E_OK)
    fail_msg("%s: %s", spec->name, err);
  unsigned n = tp_profile_key_shares(p);
  tp_profile_free(p);
  return n;
}

/* One key share only where nothing says which the profile needs: GnuTLS's
 * default groups (P-256 first, mandatory for servers); lists, raw strings and
 * emulated clients keep GnuTLS's two, which their notes were measured with. */
static void test_key_share_policy(void **state) {
  (void)state;
  static const char *const groups[] = {"X25519", "SECP256R1", NULL};
  tp_profile_spec generic = {.name = "generic", .versions = TP_TLS1_3};
  tp_profile_spec listed = {.name = "listed", .groups = groups};
  tp_profile_spec raw = {.name = "raw", .priority = "NORMAL"};
  tp_profile_spec emulated = {.name = "emulated", .has_recorded_offer = true};
  tp_profile_spec three = {.name = "three", .key_shares = 3};
  tp_profile_spec two = {.name = "two", .key_shares = 2};
  assert_int_equal(key_shares_of(&generic), 1);
  assert_int_equal(key_shares_of(&listed), 2);
  assert_int_equal(key_shares_of(&raw), 2);
  assert_int_equal(key_shares_of(&emulated), 2);
  assert_int_equal(key_shares_of(&three), 3);
  assert_int_equal(key_shares_of(&two), 2);
  const tp_builtin_profile *b;
  for (size_t i = 0; (b = tp_profile_library_at(i)) != NULL; i++)
    if (b->spec.groups != NULL || b->spec.has_recorded_offer)
      assert_int_equal(key_shares_of(&b->spec), 2);
  tp_profile_spec bad = {.name = "bad", .key_shares = 4};
  char err[512] = "";
  tp_profile *p = NULL;
  assert_int_equal(tp_profile_new(&bad, &p, err, sizeof(err)), TP_E_CONFIG);
  assert_non_null(strstr(err, "key_shares"));
}

/* Two profiles built from one spec never share cached verifications. */
static void test_verify_ids_differ(void **state) {
  (void)state;
  tp_profile_spec spec = {.name = "same"};
  char err[512];
  tp_profile *a = NULL, *b = NULL;
  assert_int_equal(tp_profile_new(&spec, &a, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_profile_new(&spec, &b, err, sizeof(err)), TP_E_OK);
  assert_memory_not_equal(tp__profile_verify_id(a), tp__profile_verify_id(b),
                          TP_PROFILE_VERIFY_ID_LEN);
  tp_profile_free(a);
  tp_profile_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_share_policy),
      cmocka_unit_test(test_verify_ids_differ),
      cmocka_unit_test(test_every_builtin_builds),
      cmocka_unit_test(test_cipher_diagnostic_offers_every_cipher),
      cmocka_unit_test(test_priority_excludes_structured_fields),
      cmocka_unit_test(test_required_names_exist),
      cmocka_unit_test(test_priority_strings),
      cmocka_unit_test(test_intermediate_suite_count),
  };
  if (gnutls_global_init() < 0)
    return 1;
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  gnutls_global_deinit();
  return rc;
}
