/* test_testssl_import.c - testssl.sh client-simulation import: the parser on a
 * fixture with the real file's oddities, the OpenSSL -> GnuTLS name mapping,
 * malformed input (file:line errors, nothing executed), and the YAML output
 * loading back through the agent's config loader with every profile
 * building in GnuTLS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>

#include "config.h"
#include "profile.h"
#include "testssl_import.h"

#define FIXTURE TP_TEST_DATA_DIR "/profiles/client-simulation-mini.txt"

static void test_parse_fixture(void **state) {
  (void)state;
  char err[512] = "";
  tp_testssl_file *f = NULL;
  if (tp_testssl_parse(FIXTURE, &f, err, sizeof(err)) != TP_E_OK)
    fail_msg("%s", err);
  assert_int_equal(tp_testssl_count(f), 4);
  const tp_testssl_client *c = tp_testssl_client_at(f, 0);
  assert_string_equal(c->name, "Modern Browser 1");
  assert_string_equal(c->sni, "$SNI"); /* kept literally, never expanded */
  assert_string_equal(c->alpn, "h2,http/1.1");
  assert_int_equal(c->line, 6);
  c = tp_testssl_client_at(f, 2); /* unindented names+=, no alpn line */
  assert_string_equal(c->name, "Legacy Phone 4");
  assert_null(c->alpn); /* alpn stays with its own client (bash would shift it) */
  assert_string_equal(c->sni, "");
  tp_testssl_free(f);
}

static void test_name_mapping(void **state) {
  (void)state;
  const char *kx, *cipher, *mac;
  assert_true(tp_openssl_suite_parse("ECDHE-RSA-AES128-GCM-SHA256", &kx, &cipher, &mac));
  assert_string_equal(kx, "ECDHE-RSA");
  assert_string_equal(cipher, "AES-128-GCM");
  assert_string_equal(mac, "AEAD");
  assert_true(tp_openssl_suite_supported(kx, cipher, mac));
  assert_true(tp_openssl_suite_parse("DES-CBC3-SHA", &kx, &cipher, &mac));
  assert_string_equal(kx, "RSA");
  assert_string_equal(cipher, "3DES-CBC");
  assert_true(tp_openssl_suite_supported(kx, cipher, mac));
  assert_true(tp_openssl_suite_parse("EDH-DSS-DES-CBC3-SHA", &kx, &cipher, &mac));
  assert_string_equal(kx, "DHE-DSS");
  assert_true(tp_openssl_suite_parse("SRP-RSA-AES-128-CBC-SHA", &kx, &cipher, &mac));
  assert_false(tp_openssl_suite_supported(kx, cipher, mac)); /* SRP: no credentials */
  assert_true(tp_openssl_suite_parse("ECDH-RSA-AES256-SHA", &kx, &cipher, &mac));
  assert_false(tp_openssl_suite_supported(kx, cipher, mac)); /* static ECDH: not in GnuTLS */
  assert_true(tp_openssl_suite_parse("SEED-SHA", &kx, &cipher, &mac));
  assert_false(tp_openssl_suite_supported(kx, cipher, mac));
  assert_true(tp_openssl_suite_parse("RC4-MD5", &kx, &cipher, &mac));
  assert_true(tp_openssl_suite_supported(kx, cipher, mac)); /* Debian's GnuTLS has RC4 */
  assert_false(tp_openssl_suite_parse("EXP-RC4-MD5", &kx, &cipher, &mac));
  assert_false(tp_openssl_suite_parse("DES-CBC3-MD5", &kx, &cipher, &mac)); /* SSL 2.0 */
  assert_false(tp_openssl_suite_parse("ECDHE-RSA-CHACHA20-POLY1305-OLD", &kx, &cipher, &mac));
  assert_string_equal(tp_openssl_group("prime256v1"), "SECP256R1");
  assert_string_equal(tp_openssl_group("x25519"), "X25519");
  assert_string_equal(tp_openssl_group("ffdhe3072"), "FFDHE3072");
  assert_null(tp_openssl_group("sect163k1"));
  assert_null(tp_openssl_group("brainpoolP256r1"));
  assert_null(tp_openssl_group("secp256k1"));
}

static void test_map_clients(void **state) {
  (void)state;
  char err[512] = "", why[1200] = "";
  tp_testssl_file *f = NULL;
  assert_int_equal(tp_testssl_parse(FIXTURE, &f, err, sizeof(err)), TP_E_OK);

  tp_testssl_profile *p = NULL;
  assert_int_equal(tp_testssl_map(tp_testssl_client_at(f, 0), &p, why, sizeof(why)), TP_E_OK);
  const tp_profile_spec *s = tp_testssl_profile_spec(p);
  assert_int_equal(s->versions, TP_TLS1_2 | TP_TLS1_3);
  /* TLS 1.3 suites first, then the TLS 1.2 ciphers in first-seen order. */
  assert_string_equal(s->ciphers[0], "AES-128-GCM");
  assert_string_equal(s->ciphers[1], "CHACHA20-POLY1305");
  assert_null(s->ciphers[2]);
  assert_string_equal(s->key_exchanges[0], "ECDHE-ECDSA");
  assert_string_equal(s->groups[1], "SECP256R1");
  assert_null(s->groups[2]); /* brainpool dropped ... */
  assert_non_null(strstr(s->fidelity_note, "brainpoolP256r1")); /* ... and said so */
  assert_string_equal(s->alpn[1], "http/1.1");
  assert_int_equal(s->sni_mode, TP_SNI_HOST);
  tp_testssl_profile_free(p);

  assert_int_equal(tp_testssl_map(tp_testssl_client_at(f, 1), &p, why, sizeof(why)),
                   TP_E_NOTFOUND);
  assert_non_null(strstr(why, "only SSL 2.0/3.0"));

  assert_int_equal(tp_testssl_map(tp_testssl_client_at(f, 2), &p, why, sizeof(why)), TP_E_OK);
  s = tp_testssl_profile_spec(p);
  assert_int_equal(s->versions, TP_TLS1_0);
  assert_int_equal(s->sni_mode, TP_SNI_OFF);
  const char *note = s->fidelity_note;
  assert_non_null(strstr(note, "SSL 3.0 not available"));
  assert_non_null(strstr(note, "ECDH-RSA-AES256-SHA"));
  assert_non_null(strstr(note, "EXP1024-RC4-SHA"));
  assert_non_null(strstr(note, "sect163k1"));
  assert_non_null(strstr(note, "TLS_ECDHE_RSA_3DES_EDE_CBC_SHA1")); /* an extra suite */
  tp_testssl_profile_free(p);

  /* TLS 1.3 suite names inside ciphers[] are TLS 1.3 suites. */
  assert_int_equal(tp_testssl_map(tp_testssl_client_at(f, 3), &p, why, sizeof(why)), TP_E_OK);
  s = tp_testssl_profile_spec(p);
  assert_string_equal(s->ciphers[0], "AES-256-GCM");
  assert_string_equal(s->groups[2], "FFDHE2048");
  tp_testssl_profile_free(p);
  tp_testssl_free(f);
}

static const struct {
  const char *text;
  const char *expect;
} malformed[] = {
    {"names+=(\"a\")\nciphers+=(\"AES128-SHA\"\n", ":2: expected ')' after the value"},
    {"names+=(\"a\")\n\nciphers+=(\"$(touch /tmp/tp-pwned)\")\n",
     ":3: shell escape or substitution inside the quotes (the file is read as data)"},
    {"names+=(\"a\")\nciphers+=(\"`id`\")\n", ":2: shell escape or substitution"},
    {"# comment\nciphers+=(\"AES128-SHA\")\nnames+=(\"a\")\n",
     ":2: ciphers+= before the first names+="},
    {"names+=(\"a\")\necho hello\n", ":2: expected KEY+=(VALUE)"},
    {"names+=(\"a\")\nciphers+=(\"x\")\nciphers+=(\"y\")\n",
     ":3: second ciphers+= for client \"a\" (line 1)"},
    {"names+=(\"unterminated)\n", ":1: unterminated \""},
    {"names+=(\"a\") ; rm -rf /\n", ":1: unexpected text after ')'"},
    {"# nothing here\n", "no clients"},
};

static void test_malformed(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
    char path[64] = "/tmp/tp-testssl-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, malformed[i].text, strlen(malformed[i].text)),
                     (ssize_t)strlen(malformed[i].text));
    close(fd);
    char err[512] = "";
    tp_testssl_file *f = NULL;
    tp_err rc = tp_testssl_parse(path, &f, err, sizeof(err));
    unlink(path);
    if (rc != TP_E_CONFIG || strncmp(err, path, strlen(path)) != 0 ||
        strstr(err, malformed[i].expect) == NULL)
      fail_msg("case %zu: rc=%d \"%s\" lacks \"%s\"", i, rc, err, malformed[i].expect);
    assert_null(f);
  }
  assert_int_equal(access("/tmp/tp-pwned", F_OK), -1); /* nothing was executed */
  char err[256];
  tp_testssl_file *f = NULL;
  assert_int_equal(tp_testssl_parse("/nonexistent/cs.txt", &f, err, sizeof(err)), TP_E_IO);
}

/* The output is a valid `profiles:` section: wrap it into an agent.yaml, load
 * it with the real loader and build every profile. */
static void test_output_loads(void **state) {
  (void)state;
  char path[64] = "/tmp/tp-testssl-out-XXXXXX";
  int fd = mkstemp(path);
  FILE *out = fdopen(fd, "w");
  FILE *diag = fopen("/dev/null", "w");
  fputs("agent: {id: a}\ncollector: {url: 'http://127.0.0.1:1/v1/results'}\n"
        "targets: [{name: t, host: h, port: 443}]\n"
        "jobs: [{targets: [t], profiles: [modern_1, legacy_phone, modern_1-2], interval: 5s}]\n",
        out);
  char err[1024] = "";
  assert_int_equal(tp_testssl_import(FIXTURE, false, out, diag, err, sizeof(err)), TP_E_OK);
  fclose(out);
  fclose(diag);
  tp_agent_config *c = NULL;
  tp_err rc = tp_agent_config_load(path, &c, err, sizeof(err));
  unlink(path);
  if (rc != TP_E_OK)
    fail_msg("%s", err);
  assert_int_equal(c->n_profiles, 3);
  assert_string_equal(c->profiles[1].spec.name, "legacy_phone");
  assert_int_equal(c->profiles[1].spec.sni_mode, TP_SNI_OFF);
  assert_non_null(strstr(c->profiles[1].spec.fidelity_note, "SSL 3.0"));
  for (size_t i = 0; i < c->n_profiles; i++) {
    tp_profile *p = NULL;
    if (tp_profile_new(&c->profiles[i].spec, &p, err, sizeof(err)) != TP_E_OK)
      fail_msg("%s: %s", c->profiles[i].spec.name, err);
    tp_profile_free(p);
  }
  tp_agent_config_free(c);
}

/* --current-only keeps clients marked current=true. */
static void test_current_only(void **state) {
  (void)state;
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  FILE *diag = fopen("/dev/null", "w");
  char err[512];
  assert_int_equal(tp_testssl_import(FIXTURE, true, out, diag, err, sizeof(err)), TP_E_OK);
  fclose(out);
  fclose(diag);
  assert_non_null(strstr(buf, "name: \"modern_1\""));
  assert_non_null(strstr(buf, "name: \"modern_1-2\""));
  assert_null(strstr(buf, "legacy_phone"));
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_fixture), cmocka_unit_test(test_name_mapping),
      cmocka_unit_test(test_map_clients),   cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_output_loads),  cmocka_unit_test(test_current_only),
  };
  if (gnutls_global_init() < 0)
    return 1;
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  gnutls_global_deinit();
  return rc;
}
