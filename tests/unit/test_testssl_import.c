/* test_testssl_import.c - testssl.sh client-simulation import: the parser on
 * a fixture of real clients with the real file's oddities; the mapping from
 * each client's recorded ClientHello (versions from supported_versions or
 * legacy_version bounded by lowest_protocol, suites, groups, signature
 * algorithms, DH limits, the recorded offer); malformed input (file:line
 * errors, nothing executed); the YAML emitter's output loading back through
 * the agent's own config loader -- including a spec with every field and
 * hostile text, and a hostile client-simulation file whose names try to
 * inject YAML. */
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
#include "profile_yaml.h"
#include "testssl_import.h"

#define FIXTURE TP_TEST_DATA_DIR "/profiles/client-simulation-mini.txt"

/* Recorded hellos from testssl.sh 3.0.8's client-simulation.txt. */
static const char openssl111d_hello[] =
    "16030101290100012503036f18cf85cf24e3676f0e79a3503aa9feefc961e3baed7b00fd876a2c6d2395b3205f4f"
    "b8769aa1e5279b848b3f35bec3d7aa9966595d22ebcd35e72f79b9d9fcc9003e130213031301c02cc030009fcca9"
    "cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f"
    "00ff0100009e0000000f000d00000a7465737473736c2e7368000b000403000102000a000c000a001d0017001e00"
    "190018002300000016000000170000000d002a0028040305030603080708080809080a080b080408050806040105"
    "010601030303010302040205020602002b00050403040303002d00020101003300260024001d0020a12c2f7e04ad"
    "cb76ce5eb8b05cf631e7cdf46f5e28cbe86a676d704098507b40";
static const char ie6_xp_hello[] =
    "804f01030000360000001000000400000500000a0100800700c00300800000090600400000640000620000030000"
    "060200800400800000130000120000630000ffd9f61eed63ba552d0bca94dc016081a3";

/* The agent.yaml around an imported `profiles:` document. */
static const char agent_head[] = "agent: {id: a}\n"
                                 "collector: {url: 'http://127.0.0.1:1/v1/results', insecure_plaintext: true}\n"
                                 "targets: [{name: t, host: h, port: 443}]\n";

static char *write_temp(const char *prefix, const char *text, size_t len) {
  char *path = malloc(64);
  snprintf(path, 64, "/tmp/%s-XXXXXX", prefix);
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  assert_int_equal(close(fd), 0);
  return path;
}

/* Imports `sim` and loads the result, with a job naming `profiles` (a flow
 * list), through tp_agent_config_load. diag_out (may be NULL) gets stderr. */
static tp_agent_config *import_and_load(const char *sim, bool current_only, const char *profiles,
                                        char **diag_out) {
  char *yaml = NULL, *diag = NULL;
  size_t yaml_len = 0, diag_len = 0;
  FILE *out = open_memstream(&yaml, &yaml_len), *err_fp = open_memstream(&diag, &diag_len);
  char err[1024] = "";
  fputs(agent_head, out);
  fprintf(out, "jobs: [{targets: [t], profiles: %s, interval: 5s}]\n", profiles);
  if (tp_testssl_import(sim, current_only, out, err_fp, err, sizeof(err)) != TP_E_OK)
    fail_msg("import: %s", err);
  assert_int_equal(fclose(out), 0);
  assert_int_equal(fclose(err_fp), 0);
  char *path = write_temp("tp-testssl-out", yaml, yaml_len);
  tp_agent_config *c = NULL;
  tp_err rc = tp_agent_config_load(path, &c, err, sizeof(err));
  unlink(path);
  free(path);
  if (rc != TP_E_OK)
    fail_msg("%s\n---\n%s", err, yaml);
  free(yaml);
  if (diag_out != NULL)
    *diag_out = diag;
  else
    free(diag);
  return c;
}

static const tp_agent_profile_config *find(const tp_agent_config *c, const char *name) {
  for (size_t i = 0; i < c->n_profiles; i++)
    if (strcmp(c->profiles[i].spec.name, name) == 0)
      return &c->profiles[i];
  fail_msg("no profile %s", name);
  return NULL;
}

static void test_parse_fixture(void **state) {
  (void)state;
  char err[512] = "";
  tp_testssl_file *f = NULL;
  if (tp_testssl_parse(FIXTURE, &f, err, sizeof(err)) != TP_E_OK)
    fail_msg("%s", err);
  assert_int_equal(tp_testssl_count(f), 7);
  const tp_testssl_client *c = tp_testssl_client_at(f, 0);
  assert_string_equal(c->name, "Chrome 57 Win 7");
  assert_string_equal(c->sni, "$SNI"); /* kept literally, never expanded */
  assert_string_equal(c->min_dh_bits, "1024");
  assert_string_equal(c->max_dh_bits, "-1");
  assert_int_equal(strncmp(c->handshakebytes, "160301020001", 12), 0);
  assert_null(c->alpn); /* alpn stays with its own client (bash would shift it) */
  assert_int_equal(c->line, 16);
  c = tp_testssl_client_at(f, 1);
  assert_string_equal(c->alpn, "h2,http/1.1");
  c = tp_testssl_client_at(f, 5); /* unindented names+= */
  assert_string_equal(c->name, "Android 4.0.4");
  assert_int_equal(c->line, 122);
  tp_testssl_free(f);
}

static void test_suite_and_sigalg_names(void **state) {
  (void)state;
  const char *kx, *cipher, *mac;
  assert_true(tp_testssl_suite_keywords(0xc02f, &kx, &cipher, &mac));
  assert_string_equal(kx, "ECDHE-RSA");
  assert_string_equal(cipher, "AES-128-GCM");
  assert_string_equal(mac, "AEAD");
  assert_true(tp_testssl_suite_keywords(0x1301, &kx, &cipher, &mac)); /* TLS 1.3: no kx */
  assert_null(kx);
  assert_string_equal(cipher, "AES-128-GCM");
  assert_true(tp_testssl_suite_keywords(0x0004, &kx, &cipher, &mac)); /* RC4-MD5 */
  assert_string_equal(cipher, "ARCFOUR-128");
  assert_string_equal(mac, "MD5");
  assert_false(tp_testssl_suite_keywords(0xc00f, &kx, &cipher, &mac)); /* static ECDH */
  assert_false(tp_testssl_suite_keywords(0x0096, &kx, &cipher, &mac)); /* SEED */
  assert_false(tp_testssl_suite_keywords(0xc022, &kx, &cipher, &mac)); /* SRP: no credentials */
  assert_false(tp_testssl_suite_keywords(0xcc13, &kx, &cipher, &mac)); /* pre-RFC ChaCha20 */
  char buf[16];
  assert_string_equal(tp_testssl_suite_name(0xc00f, buf, sizeof(buf)),
                      "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA");
  assert_string_equal(tp_testssl_suite_name(0xc02f, buf, sizeof(buf)),
                      "TLS_ECDHE_RSA_AES_128_GCM_SHA256"); /* GnuTLS's name */
  assert_string_equal(tp_testssl_suite_name(0x1234, buf, sizeof(buf)), "0x1234");
  const char *const *s = tp_testssl_sigalg_keywords(0x0403, true);
  assert_string_equal(s[0], "ECDSA-SECP256R1-SHA256");
  assert_string_equal(s[1], "ECDSA-SHA256");
  assert_null(s[2]);
  s = tp_testssl_sigalg_keywords(0x0403, false);
  assert_string_equal(s[0], "ECDSA-SHA256");
  assert_null(s[1]);
  assert_string_equal(tp_testssl_sigalg_keywords(0x0804, false)[0], "RSA-PSS-RSAE-SHA256");
  assert_null(tp_testssl_sigalg_keywords(0xeeee, false)); /* GOST */
}

/* Maps client i of the fixture (TP_E_OK expected). */
static tp_testssl_profile *map_at(const tp_testssl_file *f, size_t i) {
  char why[1200] = "";
  tp_testssl_profile *p = NULL;
  if (tp_testssl_map(tp_testssl_client_at(f, i), &p, why, sizeof(why)) != TP_E_OK)
    fail_msg("client %zu: %s", i, why);
  return p;
}

static bool lists(const char *const *list, const char *name) {
  for (size_t i = 0; list != NULL && list[i] != NULL; i++)
    if (strcmp(list[i], name) == 0)
      return true;
  return false;
}

/* Versions come from the recorded hello, not from highest/lowest_protocol. */
static void test_versions_from_the_hello(void **state) {
  (void)state;
  char err[512], why[1200];
  tp_testssl_file *f = NULL;
  assert_int_equal(tp_testssl_parse(FIXTURE, &f, err, sizeof(err)), TP_E_OK);

  /* Chrome 57: highest_protocol 0x0304, but TLS 1.3 only as draft 18 */
  tp_testssl_profile *p = map_at(f, 0);
  const tp_profile_spec *s = tp_testssl_profile_spec(p);
  assert_int_equal(s->versions, TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2);
  assert_non_null(strstr(s->fidelity_note, "TLS1.3-draft18"));
  assert_non_null(strstr(s->fidelity_note, "TLS 1.3 suites without TLS 1.3 (3)"));
  assert_non_null(strstr(s->fidelity_note, "GREASE"));
  assert_string_equal(s->alpn[0], "h2"); /* from the hello: the file has no alpn+= here */
  assert_int_equal(s->min_dh_bits, 1024);
  tp_testssl_profile_free(p);

  /* OpenSSL 1.1.1d: lowest_protocol 0x0301, but supported_versions {1.3, 1.2} */
  p = map_at(f, 1);
  s = tp_testssl_profile_spec(p);
  assert_int_equal(s->versions, TP_TLS1_2 | TP_TLS1_3);
  assert_null(s->alpn); /* its hello has no ALPN, whatever alpn+= says */
  assert_true(lists(s->signature_algorithms, "EdDSA-Ed25519"));
  assert_true(lists(s->signature_algorithms, "ECDSA-SECP256R1-SHA256"));
  assert_non_null(strstr(s->fidelity_note, "key shares differ; GnuTLS sends (2): X25519"));
  tp_testssl_profile_free(p);

  /* Java 8u161: legacy_version 1.2 down to lowest_protocol 0x0301; DH <= 2048 */
  p = map_at(f, 2);
  s = tp_testssl_profile_spec(p);
  assert_int_equal(s->versions, TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2);
  assert_int_equal(s->min_dh_bits, 0);
  assert_int_equal(s->max_dh_bits, 2048);
  assert_true(lists(s->key_exchanges, "DHE-RSA"));
  assert_true(lists(s->signature_algorithms, "DSA-SHA256"));
  /* measured: GnuTLS accepts the name but does not put it in its hello */
  assert_non_null(strstr(s->fidelity_note, "signature algorithms GnuTLS does not send (1): "
                                           "dsa_sha256"));
  assert_non_null(strstr(s->fidelity_note, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384"));
  tp_testssl_profile_free(p);

  /* IE 6 XP: an SSL 2.0-compatible hello with SSL 3.0 at most */
  assert_int_equal(tp_testssl_map(tp_testssl_client_at(f, 3), &p, why, sizeof(why)),
                   TP_E_NOTFOUND);
  assert_non_null(strstr(why, "offers only SSL 2.0/3.0"));

  /* Java 6u45: SSL 2.0 framing announcing TLS 1.0; DH <= 1024 */
  p = map_at(f, 4);
  s = tp_testssl_profile_spec(p);
  assert_int_equal(s->versions, TP_TLS1_0);
  assert_int_equal(s->max_dh_bits, 1024);
  assert_int_equal(s->sni_mode, TP_SNI_OFF);
  assert_non_null(strstr(s->fidelity_note, "SSL 2.0-compatible ClientHello"));
  tp_testssl_profile_free(p);

  /* Android 4.0.4: what GnuTLS lacks is named */
  p = map_at(f, 5);
  s = tp_testssl_profile_spec(p);
  assert_int_equal(s->versions, TP_TLS1_0);
  assert_non_null(strstr(s->fidelity_note, "SSL 3.0 not available"));
  assert_non_null(strstr(s->fidelity_note, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA"));
  assert_non_null(strstr(s->fidelity_note, "sect163k1"));
  assert_non_null(strstr(s->fidelity_note, "compression"));
  assert_true(lists(s->groups, "SECP192R1"));
  assert_false(lists(s->groups, "sect163k1"));
  tp_testssl_profile_free(p);
  tp_testssl_free(f);
}

/* lowest_protocol bounds a hello without supported_versions from below and
 * never adds a version the hello does not have. */
static void test_lowest_protocol_is_only_a_bound(void **state) {
  (void)state;
  tp_testssl_client c = {.name = "x", .lowest_protocol = "0x0302",
                         .highest_protocol = "0x0304"};
  char why[1200];
  tp_testssl_profile *p = NULL;
  /* Java 8u161's hello is not in this file's constants: build from the
   * fixture instead */
  char err[512];
  tp_testssl_file *f = NULL;
  assert_int_equal(tp_testssl_parse(FIXTURE, &f, err, sizeof(err)), TP_E_OK);
  c.handshakebytes = tp_testssl_client_at(f, 2)->handshakebytes;
  assert_int_equal(tp_testssl_map(&c, &p, why, sizeof(why)), TP_E_OK);
  assert_int_equal(tp_testssl_profile_spec(p)->versions, TP_TLS1_1 | TP_TLS1_2);
  tp_testssl_profile_free(p);
  c.lowest_protocol = NULL; /* unknown: no bound, and the note says so */
  assert_int_equal(tp_testssl_map(&c, &p, why, sizeof(why)), TP_E_OK);
  assert_int_equal(tp_testssl_profile_spec(p)->versions, TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2);
  assert_non_null(strstr(tp_testssl_profile_spec(p)->fidelity_note, "no lowest_protocol"));
  tp_testssl_profile_free(p);
  c.lowest_protocol = "0x0304"; /* above the hello's TLS 1.2 */
  assert_int_equal(tp_testssl_map(&c, &p, why, sizeof(why)), TP_E_NOTFOUND);
  assert_non_null(strstr(why, "inconsistent"));
  c.handshakebytes = openssl111d_hello; /* supported_versions: the bound does not apply */
  c.lowest_protocol = "0x0301";
  assert_int_equal(tp_testssl_map(&c, &p, why, sizeof(why)), TP_E_OK);
  assert_int_equal(tp_testssl_profile_spec(p)->versions, TP_TLS1_2 | TP_TLS1_3);
  tp_testssl_profile_free(p);
  tp_testssl_free(f);
}

static const struct {
  const char *hello, *min, *max, *expect;
} bad_clients[] = {
    {NULL, NULL, NULL, "no recorded ClientHello (handshakebytes)"},
    {"1603", NULL, NULL, "handshakebytes: truncated TLS record"},
    {"16030", NULL, NULL, "odd number of hex digits"},
    {"16zz", NULL, NULL, "not hex at offset 2"},
    {"1703010001ff", NULL, NULL, "not a TLS handshake record"},
    {ie6_xp_hello, NULL, NULL, "offers only SSL 2.0/3.0"},
    {openssl111d_hello, "abc", NULL, "minDhBits \"abc\" is not -1 or a number"},
    {openssl111d_hello, "4096", "2048", "minDhBits 4096 is above maxDhBits 2048"},
    {openssl111d_hello, NULL, "99999", "maxDhBits \"99999\""},
};

static void test_unusable_clients(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(bad_clients) / sizeof(bad_clients[0]); i++) {
    tp_testssl_client c = {.name = "x", .handshakebytes = bad_clients[i].hello,
                           .lowest_protocol = "0x0301", .min_dh_bits = bad_clients[i].min,
                           .max_dh_bits = bad_clients[i].max};
    char why[1200] = "";
    tp_testssl_profile *p = NULL;
    tp_err rc = tp_testssl_map(&c, &p, why, sizeof(why));
    if (rc != TP_E_NOTFOUND || strstr(why, bad_clients[i].expect) == NULL)
      fail_msg("case %zu: rc=%d \"%s\" lacks \"%s\"", i, rc, why, bad_clients[i].expect);
    assert_null(p);
  }
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
    {"names+=(\"a\")\nhandshakebytes+=(\"00\")\nhandshakebytes+=(\"00\")\n",
     ":3: second handshakebytes+= for client \"a\" (line 1)"},
    {"names+=(\"unterminated)\n", ":1: unterminated \""},
    {"names+=(\"a\") ; rm -rf /\n", ":1: unexpected text after ')'"},
    /* the file's text reaches the terminal escaped */
    {"names+=(\"a\x1b[2J\")\nnames+=(\"a\x1b[2J\")\ncurves+=(\"x\")\ncurves+=(\"y\")\n",
     ":4: second curves+= for client \"a\\x1B[2J\" (line 2)"},
    {"\x1b]0;evil\x07\n", ":1: expected KEY+=(VALUE) (testssl.sh client-simulation data), got "
                          "\"\\x1B]0;evil\\x07\""},
    {"# nothing here\n", "no clients"},
};

static void test_malformed(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
    char *path = write_temp("tp-testssl", malformed[i].text, strlen(malformed[i].text));
    char err[512] = "";
    tp_testssl_file *f = NULL;
    tp_err rc = tp_testssl_parse(path, &f, err, sizeof(err));
    unlink(path);
    if (rc != TP_E_CONFIG || strncmp(err, path, strlen(path)) != 0 ||
        strstr(err, malformed[i].expect) == NULL)
      fail_msg("case %zu: rc=%d \"%s\" lacks \"%s\"", i, rc, err, malformed[i].expect);
    free(path);
    assert_null(f);
  }
  assert_int_equal(access("/tmp/tp-pwned", F_OK), -1); /* nothing was executed */
  char err[256];
  tp_testssl_file *f = NULL;
  assert_int_equal(tp_testssl_parse("/nonexistent/cs.txt", &f, err, sizeof(err)), TP_E_IO);
}

/* The output is a valid `profiles:` section: load it with the real loader,
 * check what the mapping put in survived, and build every profile. */
static void test_output_loads(void **state) {
  (void)state;
  char *diag = NULL;
  tp_agent_config *c = import_and_load(
      FIXTURE, false, "[chrome_57_win7, openssl_111d, java_8u161, chrome_57_win7-2]", &diag);
  assert_int_equal(c->n_profiles, 6); /* 7 clients, IE 6 XP skipped */
  assert_non_null(strstr(diag, "skipped \"IE 6 XP\""));
  assert_non_null(strstr(diag, "6 profiles written, 1 clients skipped"));
  free(diag);
  const tp_agent_profile_config *pc = find(c, "java_8u161");
  assert_int_equal(pc->spec.max_dh_bits, 2048);
  assert_string_equal(pc->description, "Java 8u161 (testssl.sh client-simulation, " FIXTURE
                                       ":59), a current client");
  assert_true(pc->spec.has_recorded_offer);
  assert_int_equal(pc->spec.recorded_offer.n_cipher_suites, 49);
  assert_int_equal(pc->spec.recorded_offer.cipher_suites[0], 0xc024);
  assert_int_equal(pc->spec.recorded_offer.n_groups, 10);
  assert_int_equal(pc->spec.recorded_offer.groups[3], 9); /* kept, though GnuTLS lacks it */
  pc = find(c, "openssl_111d");
  assert_int_equal(pc->spec.versions, TP_TLS1_2 | TP_TLS1_3);
  assert_int_equal(pc->spec.recorded_offer.versions, TP_TLS1_2 | TP_TLS1_3);
  assert_int_equal(pc->spec.recorded_offer.n_signature_algorithms, 20);
  assert_int_equal(find(c, "chrome_57_win7-2")->spec.min_dh_bits, 1024);
  assert_int_equal(find(c, "java_6u45")->spec.sni_mode, TP_SNI_OFF);
  char err[1024];
  for (size_t i = 0; i < c->n_profiles; i++) {
    tp_profile *p = NULL;
    if (tp_profile_new(&c->profiles[i].spec, &p, err, sizeof(err)) != TP_E_OK)
      fail_msg("%s: %s", c->profiles[i].spec.name, err);
    const tp_hello_offer *o = tp_profile_recorded_offer(p);
    assert_non_null(o);
    assert_int_equal(o->versions, c->profiles[i].spec.versions);
    assert_int_equal(o->n_cipher_suites, c->profiles[i].spec.recorded_offer.n_cipher_suites);
    unsigned lo, hi;
    tp_profile_dh_bits(p, &lo, &hi);
    assert_int_equal(lo, c->profiles[i].spec.min_dh_bits);
    assert_int_equal(hi, c->profiles[i].spec.max_dh_bits);
    tp_profile_free(p);
  }
  tp_agent_config_free(c);
}

/* --current-only keeps clients marked current=true. */
static void test_current_only(void **state) {
  (void)state;
  tp_agent_config *c = import_and_load(FIXTURE, true, "[openssl_111d]", NULL);
  assert_int_equal(c->n_profiles, 2);
  (void)find(c, "openssl_111d");
  (void)find(c, "java_8u161");
  tp_agent_config_free(c);
}

/* Text a YAML writer must not let out of its scalar: CR, LF, NEL and LS
 * (libyaml breaks lines at all four), quotes, '#', ': ', a tab. */
#define HOSTILE "a\"b\r  - name: x\n    trust: /etc/evil\xc2\x85# c: d\xe2\x80\xa8\te\\"

/* Every field through the emitter and back through the loader. */
static void test_emitter_round_trip(void **state) {
  (void)state;
  tp_profile_spec a = {
      .name = "every-field",
      .versions = TP_TLS1_2 | TP_TLS1_3,
      .ciphers = (const char *const[]){"AES-128-GCM", "NULL", "3DES-CBC", NULL},
      .key_exchanges = (const char *const[]){"ECDHE-RSA", "RSA", NULL},
      .macs = (const char *const[]){"AEAD", "SHA1", NULL},
      .groups = (const char *const[]){"X25519", "FFDHE2048", NULL},
      .signature_algorithms = (const char *const[]){"RSA-PSS-RSAE-SHA256", NULL},
      .alpn = (const char *const[]){"h2", "on", "x: #y", NULL},
      .trust = "/etc/ssl/certs/ca-certificates.crt",
      .intermediates = "/tmp/inter \"mediates\".pem",
      .client_certificate = TP_TEST_DATA_DIR "/profiles/client.pem",
      .client_key = TP_TEST_DATA_DIR "/profiles/client.key",
      .sni_mode = TP_SNI_OVERRIDE,
      .sni_name = "api.example.test",
      .mode = TP_MODE_RESUMPTION,
      .http = {.method = "HEAD", .path = "/health", .host = "www.example.test"},
      .aia_fetch_off = 1,
      .min_dh_bits = 1024,
      .max_dh_bits = 4096,
      .has_recorded_offer = true,
      .recorded_offer = {.versions = TP_TLS1_2 | TP_TLS1_3,
                         .cipher_suites = {0x1301, 0xc02f, 0xc00f},
                         .n_cipher_suites = 3,
                         .groups = {29, 1},
                         .n_groups = 2,
                         .signature_algorithms = {0x0804},
                         .n_signature_algorithms = 1},
      .fidelity_note = HOSTILE,
  };
  tp_profile_spec b = {
      .name = "early",
      .versions = TP_TLS1_3,
      .mode = TP_MODE_EARLY_DATA,
      .sni_mode = TP_SNI_OFF,
      .early_data = {.raw = (const unsigned char *)"PING\r\n", .raw_len = 6, .expect_reply = 1},
  };
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  fputs(agent_head, out);
  fputs("jobs: [{targets: [t], profiles: [every-field, early], interval: 5s}]\n", out);
  char err[1024] = "";
  tp_profile_yaml *w = NULL;
  assert_int_equal(tp_profile_yaml_open(out, &w, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_profile_yaml_add(w, &a, HOSTILE, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_profile_yaml_add(w, &b, "bad \xff byte\r", err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_profile_yaml_close(w, err, sizeof(err)), TP_E_OK);
  assert_int_equal(fclose(out), 0);
  char *path = write_temp("tp-yaml-rt", text, len);
  tp_agent_config *c = NULL;
  tp_err rc = tp_agent_config_load(path, &c, err, sizeof(err));
  unlink(path);
  free(path);
  if (rc != TP_E_OK)
    fail_msg("%s\n---\n%s", err, text);
  free(text);
  assert_int_equal(c->n_profiles, 2);
  const tp_profile_spec *s = &c->profiles[0].spec;
  assert_string_equal(s->name, "every-field");
  assert_string_equal(c->profiles[0].description, HOSTILE); /* verbatim */
  assert_string_equal(s->fidelity_note, HOSTILE);
  assert_int_equal(s->versions, a.versions);
  for (size_t i = 0; a.ciphers[i] != NULL; i++)
    assert_string_equal(s->ciphers[i], a.ciphers[i]); /* "NULL" is a string, not null */
  assert_string_equal(s->key_exchanges[1], "RSA");
  assert_string_equal(s->macs[1], "SHA1");
  assert_string_equal(s->groups[1], "FFDHE2048");
  assert_string_equal(s->signature_algorithms[0], "RSA-PSS-RSAE-SHA256");
  assert_string_equal(s->alpn[1], "on");
  assert_string_equal(s->alpn[2], "x: #y");
  assert_string_equal(s->trust, a.trust);
  assert_string_equal(s->intermediates, a.intermediates);
  assert_string_equal(s->client_certificate, a.client_certificate);
  assert_int_equal(s->sni_mode, TP_SNI_OVERRIDE);
  assert_string_equal(s->sni_name, "api.example.test");
  assert_int_equal(s->mode, TP_MODE_RESUMPTION);
  assert_string_equal(s->http.method, "HEAD");
  assert_string_equal(s->http.path, "/health");
  assert_string_equal(s->http.host, "www.example.test");
  assert_int_equal(s->aia_fetch_off, 1);
  assert_int_equal(s->min_dh_bits, 1024);
  assert_int_equal(s->max_dh_bits, 4096);
  assert_true(s->has_recorded_offer);
  assert_int_equal(s->recorded_offer.versions, a.recorded_offer.versions);
  assert_int_equal(s->recorded_offer.n_cipher_suites, 3);
  assert_memory_equal(s->recorded_offer.cipher_suites, a.recorded_offer.cipher_suites, 6);
  assert_int_equal(s->recorded_offer.n_groups, 2);
  assert_int_equal(s->recorded_offer.groups[1], 1);
  assert_int_equal(s->recorded_offer.signature_algorithms[0], 0x0804);
  s = &c->profiles[1].spec;
  assert_int_equal(s->mode, TP_MODE_EARLY_DATA);
  assert_int_equal(s->sni_mode, TP_SNI_OFF);
  assert_int_equal(s->early_data.raw_len, 6);
  assert_memory_equal(s->early_data.raw, "PING\r\n", 6);
  assert_int_equal(s->early_data.expect_reply, 1);
  assert_false(s->has_recorded_offer);
  /* text that is not UTF-8 cannot be a YAML scalar: written as tp_text_fit
   * escapes it (control characters included) */
  assert_string_equal(c->profiles[1].description, "bad \\xFF byte\\x0D");
  tp_agent_config_free(c);
}

/* One client block of a client-simulation file. */
static void client_block(FILE *fp, const char *name, const char *short_name, const char *hello,
                         const char *lowest) {
  fprintf(fp, "names+=(\"%s\")\nshort+=(\"%s\")\nhandshakebytes+=(\"%s\")\n"
              "lowest_protocol+=(\"%s\")\ncurrent+=(true)\n\n",
          name, short_name, hello, lowest);
}

/* A client-simulation file written to inject YAML: a skipped client whose
 * name carries CR line breaks (a comment that ends early), written clients
 * whose names carry NEL / LS line breaks and quotes, a hostile short name.
 * Loaded back by the agent's own loader it must give exactly the expected
 * profiles, and no trust store anywhere. */
static void test_hostile_file(void **state) {
  (void)state;
  static const char evil_skipped[] =
      "Evil\r  - name: injected\r    trust: /etc/evil\r  # ";
  static const char evil_written[] =
      "Evil 'Quoted' # not a comment\xe2\x80\xa8  - name: injected2\xe2\x80\xa8    trust: "
      "/etc/evil\xe2\x80\xa8  #\xc2\x85  - name: injected3\r";
  char *text = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&text, &len);
  client_block(fp, evil_skipped, "skipped", ie6_xp_hello, "0x0200");
  client_block(fp, evil_written, "written", openssl111d_hello, "0x0301");
  client_block(fp, "Plain", "x\r  trust: /etc/evil", openssl111d_hello, "0x0301");
  assert_int_equal(fclose(fp), 0);
  char *sim = write_temp("tp-testssl-hostile", text, len);
  free(text);
  char *diag = NULL;
  tp_agent_config *c = import_and_load(sim, false, "[written]", &diag);
  assert_int_equal(c->n_profiles, 2);
  assert_string_equal(c->profiles[0].spec.name, "written");
  assert_string_equal(c->profiles[1].spec.name, "x___trust___etc_evil");
  for (size_t i = 0; i < c->n_profiles; i++) {
    assert_null(c->profiles[i].spec.trust);
    assert_null(c->profiles[i].spec.intermediates);
  }
  /* the name is kept exactly, as data */
  char expect[512];
  snprintf(expect, sizeof(expect), "%s (testssl.sh client-simulation, %s:7), a current client",
           evil_written, sim);
  assert_string_equal(c->profiles[0].description, expect);
  /* the skipped client reaches stderr escaped: no raw CR */
  assert_non_null(strstr(diag, "skipped \"Evil\\x0D  - name: injected\\x0D"));
  assert_null(strchr(diag, '\r'));
  free(diag);
  tp_agent_config_free(c);
  unlink(sim);
  free(sim);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_fixture),
      cmocka_unit_test(test_suite_and_sigalg_names),
      cmocka_unit_test(test_versions_from_the_hello),
      cmocka_unit_test(test_lowest_protocol_is_only_a_bound),
      cmocka_unit_test(test_unusable_clients),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_output_loads),
      cmocka_unit_test(test_current_only),
      cmocka_unit_test(test_emitter_round_trip),
      cmocka_unit_test(test_hostile_file),
  };
  if (gnutls_global_init() < 0)
    return 1;
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  gnutls_global_deinit();
  return rc;
}
