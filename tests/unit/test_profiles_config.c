/* test_profiles_config.c - the `profiles:` section of agent.yaml: every
 * structured field parsed into the spec, `base:` merging, built-ins named by
 * jobs, and one case per defect whose message must carry file:line:col.
 *
 * Each case writes a small agent.yaml into a temporary file: a fixed 13-line
 * header, then the profiles on line 14 onwards, so the expected positions can
 * be read off the case text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static const char header[] = "agent:\n"                               /* 1 */
                             "  id: a\n"                              /* 2 */
                             "collector: {insecure_plaintext: true,\n" /* 3 */
                             "  url: http://127.0.0.1:1/v1/results}\n" /* 4 */
                             "targets:\n"                             /* 5 */
                             "  - name: t\n"                          /* 6 */
                             "    host: h\n"                          /* 7 */
                             "    port: 443\n"                        /* 8 */
                             "jobs:\n"                                /* 9 */
                             "  - targets: [t]\n"                     /* 10 */
                             "    profiles: [p]\n"                    /* 11 */
                             "    interval: 5s\n"                     /* 12 */
                             "profiles:\n";                           /* 13 */

static char path[64];

/* Writes header + body (with @DATA@ replaced by the data dir) and loads it. */
static tp_err load(const char *body, tp_agent_config **c, char *err, size_t errlen) {
  snprintf(path, sizeof(path), "/tmp/tp-profiles-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *fp = fdopen(fd, "w");
  assert_non_null(fp);
  fputs(header, fp);
  for (const char *at; (at = strstr(body, "@DATA@")) != NULL; body = at + 6) {
    fwrite(body, 1, (size_t)(at - body), fp);
    fputs(TP_TEST_DATA_DIR, fp);
  }
  fputs(body, fp);
  assert_int_equal(fclose(fp), 0);
  *c = NULL;
  tp_err rc = tp_agent_config_load(path, c, err, errlen);
  unlink(path);
  return rc;
}

static void test_every_field(void **state) {
  (void)state;
  char err[1024] = "";
  tp_agent_config *c;
  tp_err rc = load("  - name: p\n"
                   "    versions: [TLS1.2, TLS1.3]\n"
                   "    ciphers: [aes-256-gcm, AES-128-GCM]\n"
                   "    key_exchanges: [ECDHE-RSA, RSA]\n"
                   "    macs: [AEAD]\n"
                   "    groups: [X25519, SECP384R1]\n"
                   "    signature_algorithms: [RSA-PSS-RSAE-SHA256, ECDSA-SECP256R1-SHA256]\n"
                   "    alpn: [h2, http/1.1]\n"
                   "    client_certificate: @DATA@/profiles/client.pem\n"
                   "    client_key: @DATA@/profiles/client.key\n"
                   "    sni: api.example.test\n"
                   "    ocsp_status_request: on\n"
                   "    mode: resumption\n"
                   "    http: {method: HEAD, path: /health, host: www.example.test}\n"
                   "    description: \"Java 8u161 (testssl.sh, line 9)\"\n"
                   "    min_dh_bits: 1024\n"
                   "    max_dh_bits: 2048\n"
                   "    recorded_offer:\n"
                   "      versions: [TLS1.2, TLS1.3]\n"
                   "      cipher_suites: [0x1301, 0xc02f, 49199]\n"
                   "      groups: [0x001d, 0x0009]\n"
                   "      signature_algorithms: []\n"
                   "    fidelity_note: not a real browser\n",
                   &c, err, sizeof(err));
  if (rc != TP_E_OK)
    fail_msg("%s", err);
  assert_int_equal(c->n_profiles, 1);
  const tp_profile_spec *s = &c->profiles[0].spec;
  assert_int_equal(s->versions, TP_TLS1_2 | TP_TLS1_3);
  assert_string_equal(s->ciphers[0], "AES-256-GCM"); /* canonical spelling */
  assert_string_equal(s->ciphers[1], "AES-128-GCM");
  assert_null(s->ciphers[2]);
  assert_string_equal(s->key_exchanges[1], "RSA");
  assert_string_equal(s->macs[0], "AEAD");
  assert_string_equal(s->groups[1], "SECP384R1");
  assert_string_equal(s->signature_algorithms[0], "RSA-PSS-RSAE-SHA256");
  assert_string_equal(s->alpn[0], "h2");
  assert_string_equal(s->alpn[1], "http/1.1");
  assert_null(s->alpn[2]);
  assert_non_null(strstr(s->client_certificate, "client.pem"));
  assert_int_equal(s->sni_mode, TP_SNI_OVERRIDE);
  assert_string_equal(s->sni_name, "api.example.test");
  assert_int_equal(s->mode, TP_MODE_RESUMPTION);
  assert_string_equal(s->http.method, "HEAD");
  assert_string_equal(s->http.path, "/health");
  assert_string_equal(s->http.host, "www.example.test");
  assert_string_equal(s->fidelity_note, "not a real browser");
  assert_string_equal(c->profiles[0].description, "Java 8u161 (testssl.sh, line 9)");
  assert_int_equal(s->min_dh_bits, 1024);
  assert_int_equal(s->max_dh_bits, 2048);
  assert_true(s->has_recorded_offer);
  assert_int_equal(s->recorded_offer.versions, TP_TLS1_2 | TP_TLS1_3);
  assert_int_equal(s->recorded_offer.n_cipher_suites, 3);
  assert_int_equal(s->recorded_offer.cipher_suites[0], 0x1301);
  assert_int_equal(s->recorded_offer.cipher_suites[2], 0xc02f); /* decimal works too */
  assert_int_equal(s->recorded_offer.n_groups, 2);
  assert_int_equal(s->recorded_offer.groups[1], 9);
  assert_int_equal(s->recorded_offer.n_signature_algorithms, 0);
  tp_agent_config_free(c);
}

/* No DH limits and no recorded offer unless given (a hand-written profile or
 * a built-in without them); base: inherits a built-in's. */
static void test_limits_and_offer_defaults(void **state) {
  (void)state;
  char err[1024] = "";
  tp_agent_config *c;
  tp_err rc = load("  - name: p\n    base: intermediate\n"
                   "  - name: q\n    base: java-8\n",
                   &c, err, sizeof(err));
  if (rc != TP_E_OK)
    fail_msg("%s", err);
  const tp_profile_spec *s = &c->profiles[0].spec;
  assert_int_equal(s->min_dh_bits, 0);
  assert_int_equal(s->max_dh_bits, 0);
  assert_false(s->has_recorded_offer);
  tp_profile *p = NULL;
  if (tp_profile_new(s, &p, err, sizeof(err)) != TP_E_OK)
    fail_msg("%s", err);
  assert_null(tp_profile_recorded_offer(p));
  unsigned lo = 1, hi = 1;
  tp_profile_dh_bits(p, &lo, &hi);
  assert_int_equal(lo, 0);
  assert_int_equal(hi, 0);
  tp_profile_free(p);
  s = &c->profiles[1].spec; /* Java 8u161 refuses DH primes above 2048 bits */
  if (tp_profile_new(s, &p, err, sizeof(err)) != TP_E_OK)
    fail_msg("%s", err);
  tp_profile_dh_bits(p, &lo, &hi);
  assert_int_equal(lo, 0);
  assert_int_equal(hi, 2048);
  const tp_hello_offer *o = tp_profile_recorded_offer(p);
  assert_non_null(o);
  assert_int_equal(o->versions, TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2);
  assert_int_equal(o->n_cipher_suites, 49);
  assert_int_equal(o->cipher_suites[0], 0xc024);
  assert_int_equal(o->n_key_shares, 0); /* not part of a recorded offer */
  tp_profile_free(p);
  tp_agent_config_free(c);
}

static void test_sni_modes_and_defaults(void **state) {
  (void)state;
  char err[1024] = "";
  tp_agent_config *c;
  tp_err rc = load("  - name: p\n"
                   "    sni: off\n"
                   "    http: {method: GET}\n"
                   "  - name: q\n"
                   "    sni: on\n",
                   &c, err, sizeof(err));
  if (rc != TP_E_OK)
    fail_msg("%s", err);
  assert_int_equal(c->profiles[0].spec.sni_mode, TP_SNI_OFF);
  assert_string_equal(c->profiles[0].spec.http.path, "/");
  assert_int_equal(c->profiles[0].spec.mode, TP_MODE_HANDSHAKE);
  assert_int_equal(c->profiles[1].spec.sni_mode, TP_SNI_HOST);
  assert_null(c->profiles[1].spec.ciphers);
  tp_agent_config_free(c);
}

/* base: starts from the built-in; given fields replace the built-in's. */
static void test_base_and_builtins(void **state) {
  (void)state;
  char err[1024] = "";
  tp_agent_config *c;
  tp_err rc = load("  - name: p\n"
                   "    base: intermediate\n"
                   "    groups: [SECP384R1]\n"
                   "  - name: modern\n" /* shadows the built-in of that name */
                   "    versions: [TLS1.2]\n",
                   &c, err, sizeof(err));
  if (rc != TP_E_OK)
    fail_msg("%s", err);
  const tp_profile_spec *s = &c->profiles[0].spec;
  assert_string_equal(s->name, "p");
  assert_int_equal(s->versions, TP_TLS1_2 | TP_TLS1_3);
  assert_string_equal(s->key_exchanges[0], "ECDHE-ECDSA"); /* from the built-in */
  assert_string_equal(s->groups[0], "SECP384R1");          /* replaced */
  assert_null(s->groups[1]);
  assert_non_null(c->profiles[0].description);
  assert_int_equal(c->profiles[1].spec.versions, TP_TLS1_2);
  tp_agent_config_free(c);

  /* A job may name built-ins without a profiles: section at all. */
  snprintf(path, sizeof(path), "/tmp/tp-profiles-XXXXXX");
  int fd = mkstemp(path);
  FILE *fp = fdopen(fd, "w");
  fputs("agent: {id: a}\ncollector: {url: 'http://127.0.0.1:1/v1/results', insecure_plaintext: true}\n"
        "targets: [{name: t, host: h, port: 443}]\n"
        "jobs: [{targets: [t], profiles: [modern, old, modern], interval: 5s}]\n",
        fp);
  fclose(fp);
  rc = tp_agent_config_load(path, &c, err, sizeof(err));
  unlink(path);
  if (rc != TP_E_OK)
    fail_msg("%s", err);
  assert_int_equal(c->n_profiles, 2); /* each built-in once */
  assert_string_equal(c->profiles[c->jobs[0].profile_index[0]].spec.name, "modern");
  assert_string_equal(c->profiles[c->jobs[0].profile_index[1]].spec.name, "old");
  assert_int_equal(c->jobs[0].profile_index[2], c->jobs[0].profile_index[0]);
  assert_int_equal(c->profiles[0].defined, 0);
  tp_agent_config_free(c);
}

static const struct {
  const char *body;
  const char *expect; /* substring after the file name */
} bad_cases[] = {
    {"  - name: p\n    groups: [X25519, P-999]\n",
     ":15:22: profile \"p\": unknown group \"P-999\" (known: SECP192R1, SECP224R1, SECP256R1, "
     "SECP384R1, SECP521R1, X25519, X448, FFDHE2048"},
    {"  - name: p\n    ciphers: [AES-128-GCM, AES-999]\n",
     ":15:28: profile \"p\": unknown cipher \"AES-999\" (known: "},
    {"  - name: p\n    key_exchanges: [ECDHE-PSK]\n",
     ":15:21: profile \"p\": unknown key exchange \"ECDHE-PSK\" (known: ECDHE-RSA, ECDHE-ECDSA, "
     "RSA, DHE-RSA, DHE-DSS)"},
    {"  - name: p\n    macs: [SHA1, SHA1]\n", ":15:18: profile \"p\": MAC \"SHA1\" is listed twice"},
    {"  - name: p\n    signature_algorithms:\n      - RSA-SHA256\n      - RSA-FOO\n",
     ":17:9: profile \"p\": unknown signature algorithm \"RSA-FOO\" (known: RSA-SHA256"},
    {"  - name: p\n    versions: [TLS1.3]\n    priority: NORMAL\n",
     ":16:15: profile \"p\": \"priority\" (a raw GnuTLS string) cannot be combined with "
     "\"versions\""},
    {"  - name: p\n    groups: [X25519]\n    priority: NORMAL\n",
     ":16:15: profile \"p\": \"priority\" (a raw GnuTLS string) cannot be combined with "
     "\"groups\""},
    {"  - name: p\n    base: old\n    priority: NORMAL\n",
     ":16:15: profile \"p\": \"priority\" (a raw GnuTLS string) cannot be combined with \"base\""},
    {"  - name: p\n    base: ancient\n",
     ":15:11: profile \"p\": unknown built-in profile \"ancient\" (built-in: modern, "
     "intermediate, old"},
    {"  - name: p\n    sni: 192.0.2.1\n",
     ":15:10: profile \"p\": \"192.0.2.1\" is an IP address; SNI carries DNS names only"},
    {"  - name: p\n    ocsp_status_request: off\n",
     ":15:26: profile \"p\": cannot be turned off: GnuTLS 3.7.9 always sends the status_request "
     "extension"},
    {"  - name: p\n    mode: zero_rtt\n",
     ":15:11: profile \"p\": unknown mode \"zero_rtt\" (known: handshake, resumption, "
     "early_data)"},
    {"  - name: p\n    http: {method: BREW}\n",
     ":15:20: profile \"p\": unknown HTTP method \"BREW\" (known: GET, HEAD"},
    {"  - name: p\n    http:\n      method: GET\n      path: index.html\n",
     ":17:13: profile \"p\": \"index.html\" must start with '/'"},
    {"  - name: p\n    http:\n      method: GET\n      path: \"/a\\r\\nX-Evil: 1\"\n",
     /* the message shows the control characters as '?' (tp_yaml.h) */
     ":17:13: profile \"p\": \"/a??X-Evil: 1\" must start with '/' and contain no spaces or "
     "control characters"},
    {"  - name: p\n    http: {method: GET, host: \"a\\nb\"}\n",
     ":15:31: profile \"p\": \"a?b\" contains spaces or control characters"},
    {"  - name: p\n    client_certificate: @DATA@/profiles/client.pem\n",
     ":15:25: profile \"p\": client_certificate and client_key must be given together"},
    {"  - name: p\n    client_certificate: @DATA@/profiles/client.pem\n"
     "    client_key: /nonexistent/key.pem\n",
     ":16:17: profile \"p\": cannot read \"/nonexistent/key.pem\""},
    {"  - name: p\n    alpn: [h2, h2]\n", ":15:16: profile \"p\": ALPN protocol \"h2\" is listed twice"},
    {"  - name: q\n", ":11:16: unknown profile \"p\" (defined: q; built-in: modern"},
    {"  - name: p\n    min_dh_bits: 2048\n    max_dh_bits: 1024\n",
     ":16:18: profile \"p\": max_dh_bits 1024 is below min_dh_bits 2048: no DH prime would do"},
    {"  - name: p\n    max_dh_bits: 99999\n",
     ":15:18: profile \"p\": 99999 bits: at most 16384 (0 = no limit)"},
    {"  - name: p\n    min_dh_bits: -1\n", ":15:18: Invalid UINT value: '-1'"},
    {"  - name: p\n    recorded_offer: {versions: [SSL3.0]}\n",
     ":15:33: profile \"p\": unknown TLS version \"SSL3.0\""},
    {"  - name: p\n    recorded_offer: {cipher_suites: [0x10000]}\n",
     ":15:38: Invalid UINT value: '0x10000'"}, /* a code point is 16 bits */
    {"  - name: p\n    recorded_offer: {ciphers: [0x1301]}\n", ":15:22: Unexpected key: ciphers"},
};

static void test_bad_profiles(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
    char err[1024] = "";
    tp_agent_config *c = NULL;
    tp_err rc = load(bad_cases[i].body, &c, err, sizeof(err));
    if (rc != TP_E_CONFIG || strstr(err, bad_cases[i].expect) == NULL ||
        strncmp(err, path, strlen(path)) != 0)
      fail_msg("case %zu: rc=%d message \"%s\" lacks \"%s\"", i, rc, err, bad_cases[i].expect);
    assert_null(c);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_field),
      cmocka_unit_test(test_sni_modes_and_defaults),
      cmocka_unit_test(test_limits_and_offer_defaults),
      cmocka_unit_test(test_base_and_builtins),
      cmocka_unit_test(test_bad_profiles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
