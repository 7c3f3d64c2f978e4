/* test_hello_http.c - the parsers of ClientHello bytes and of the HTTP
 * response head: our own ClientHello (evidence of groups / key shares
 * offered), real clients' recorded hellos (testssl.sh data: versions,
 * suites, groups, signature algorithms, SSL 2.0 framing), and the HTTP head.
 * Malformed and truncated input must be rejected, never read past its end
 * (run under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hello.h"
#include "http.h"

/* A TLS 1.3-style ClientHello body: version, random, empty session id, one
 * suite, null compression, then supported_groups {X25519, SECP256R1,
 * FFDHE2048} and key_share {X25519 (32 bytes), SECP256R1 (65 bytes)}. */
static size_t build_hello(uint8_t *b) {
  size_t n = 0;
  b[n++] = 3;
  b[n++] = 3;
  memset(b + n, 0xAB, 32);
  n += 32;
  b[n++] = 0; /* session id */
  b[n++] = 0;
  b[n++] = 2;
  b[n++] = 0x13;
  b[n++] = 0x01; /* TLS_AES_128_GCM_SHA256 */
  b[n++] = 1;
  b[n++] = 0; /* compression: null */
  size_t ext_len_at = n;
  n += 2;
  /* supported_groups */
  const uint8_t groups[] = {0, 10, 0, 8, 0, 6, 0, 29, 0, 23, 1, 0};
  memcpy(b + n, groups, sizeof(groups));
  n += sizeof(groups);
  /* key_share: ext type 51, ext len, shares len, (group, len, key)... */
  size_t shares = (2 + 2 + 32) + (2 + 2 + 65);
  b[n++] = 0;
  b[n++] = 51;
  b[n++] = (uint8_t)((shares + 2) >> 8);
  b[n++] = (uint8_t)(shares + 2);
  b[n++] = (uint8_t)(shares >> 8);
  b[n++] = (uint8_t)shares;
  b[n++] = 0;
  b[n++] = 29;
  b[n++] = 0;
  b[n++] = 32;
  memset(b + n, 1, 32);
  n += 32;
  b[n++] = 0;
  b[n++] = 23;
  b[n++] = 0;
  b[n++] = 65;
  memset(b + n, 2, 65);
  n += 65;
  size_t ext_len = n - ext_len_at - 2;
  b[ext_len_at] = (uint8_t)(ext_len >> 8);
  b[ext_len_at + 1] = (uint8_t)ext_len;
  return n;
}

static void test_client_hello(void **state) {
  (void)state;
  uint8_t b[512];
  size_t n = build_hello(b);
  tp_hello_offer offer;
  assert_int_equal(tp_hello_parse_client_hello(b, n, &offer), 0);
  assert_int_equal(offer.n_groups, 3);
  assert_int_equal(offer.groups[0], 29);
  assert_int_equal(offer.groups[2], 256);
  assert_int_equal(offer.n_key_shares, 2);
  assert_int_equal(offer.key_shares[1], 23);
  char buf[16];
  assert_string_equal(tp_hello_group_name(29, buf, sizeof(buf)), "X25519");
  assert_string_equal(tp_hello_group_name(256, buf, sizeof(buf)), "FFDHE2048");
  assert_string_equal(tp_hello_group_name(0x1234, buf, sizeof(buf)), "0x1234");
}

static void test_client_hello_truncated(void **state) {
  (void)state;
  uint8_t b[512];
  size_t n = build_hello(b);
  tp_hello_offer offer;
  /* every strict prefix that cuts into a length-prefixed field fails;
   * copy into an exact-size heap block so ASan sees any over-read */
  for (size_t cut = 1; cut < n; cut++) {
    uint8_t *copy = malloc(cut);
    memcpy(copy, b, cut);
    int rc = tp_hello_parse_client_hello(copy, cut, &offer);
    /* the only valid prefix is the one that ends before the extensions */
    if (cut == 2 + 32 + 1 + 4 + 2)
      assert_int_equal(rc, 0);
    else
      assert_int_equal(rc, -1);
    free(copy);
  }
  /* an extension claiming more bytes than the message has */
  b[2 + 32 + 1 + 4 + 2 + 2 + 2] = 0xFF; /* first extension's length, high byte */
  assert_int_equal(tp_hello_parse_client_hello(b, n, &offer), -1);
}

/* Recorded ClientHellos (record layer included) copied from testssl.sh
 * 3.0.8's etc/client-simulation.txt (handshake data from Qualys SSL Labs). */
static const char chrome57_win7[] =
    "1603010200010001fc0303300e33daa8f1f0d2d72c461a08851a34fe44df4e18ae5349aafb48e79dd69b65000022"
    "3a3a130113021303c02bc02fc02cc030cca9cca8c013c014009c009d002f0035000a010001b13a3a0000ff010001"
    "0000000014001200000f6465762e73736c6c6162732e636f6d0017000000230000000d0014001204030804040105"
    "0308050501080606010201000500050100000000001200000010000e000c02683208687474702f312e3175500000"
    "000b000201000028002b00290a0a000100001d0020beb55ec17fee5371560958f78db49d4dc33723e42a200b2464"
    "6b6d77a7a94867002d00020101002b000b0aaaaa7f12030303020301000a000a00080a0a001d00170018dada0001"
    "00001500ec0000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000";
static const char openssl111d[] =
    "16030101290100012503036f18cf85cf24e3676f0e79a3503aa9feefc961e3baed7b00fd876a2c6d2395b3205f4f"
    "b8769aa1e5279b848b3f35bec3d7aa9966595d22ebcd35e72f79b9d9fcc9003e130213031301c02cc030009fcca9"
    "cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f"
    "00ff0100009e0000000f000d00000a7465737473736c2e7368000b000403000102000a000c000a001d0017001e00"
    "190018002300000016000000170000000d002a0028040305030603080708080809080a080b080408050806040105"
    "010601030303010302040205020602002b00050403040303002d00020101003300260024001d0020a12c2f7e04ad"
    "cb76ce5eb8b05cf631e7cdf46f5e28cbe86a676d704098507b40";
static const char java8u161[] =
    "16030300e7010000e303035a7c3e8a16fa16ff755e607b462ca6fd1127ae38dd849d0ffe7f174efa60ebb4000064"
    "c024c028003dc026c02a006b006ac00ac0140035c005c00f00390038c023c027003cc025c02900670040c009c013"
    "002fc004c00e00330032c02cc02bc030009dc02ec032009f00a3c02f009cc02dc031009e00a2c008c012000ac003"
    "c00d0016001300ff01000056000a001600140017001800190009000a000b000c000d000e0016000b00020100000d"
    "0016001406030601050305010403040104020203020102020017000000000014001200000f6465762e73736c6c61"
    "62732e636f6d";
static const char java6u45[] =
    "8065010301003c0000002000000401008000000500002f00003300003200000a0700c00000160000130000090600"
    "400000150000120000030200800000080000140000110000ff52173357f48ce6722f974dbb429b9279208d1cf5b9"
    "088947c9ba16d9ecbc0fa6";

static size_t unhex(const char *hex, uint8_t *out, size_t max) {
  size_t n = strlen(hex) / 2;
  assert_true(n <= max);
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
    out[i] = (uint8_t)v;
  }
  return n;
}

static void parse_hex(const char *hex, tp_hello_offer *offer) {
  uint8_t b[2048];
  size_t n = unhex(hex, b, sizeof(b));
  const char *why = NULL;
  if (tp_hello_parse_recorded(b, n, offer, &why) != 0)
    fail_msg("recorded hello does not parse: %s", why);
}

/* Chrome 57 lists "TLS 1.3" in supported_versions only as draft 18
 * (0x7f12): that is not TLS 1.3 (RFC 8446 §4.2.1), whatever testssl.sh's
 * highest_protocol says. GREASE goes from every list. */
static void test_recorded_draft_tls13_only(void **state) {
  (void)state;
  tp_hello_offer o;
  parse_hex(chrome57_win7, &o);
  assert_true(o.versions_exact);
  assert_int_equal(o.versions, TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2);
  assert_int_equal(o.n_supported_versions, 4); /* GREASE 0xaaaa removed */
  assert_int_equal(o.supported_versions[0], 0x7f12);
  assert_true(o.grease);
  assert_int_equal(o.n_cipher_suites, 16); /* 17 on the wire, 0x3a3a is GREASE */
  assert_int_equal(o.cipher_suites[0], 0x1301);
  assert_int_equal(o.cipher_suites[15], 0x000a);
  assert_int_equal(o.n_groups, 3);
  assert_int_equal(o.groups[0], 29);
  assert_int_equal(o.n_signature_algorithms, 9);
  assert_int_equal(o.signature_algorithms[1], 0x0804);
  assert_int_equal(o.n_key_shares, 0); /* draft key_share was extension 40, not 51 */
  assert_true(o.has_server_name);
  assert_false(o.renegotiation_scsv); /* Chrome sends renegotiation_info instead */
  assert_memory_equal(o.alpn, "\x02h2\x08http/1.1", 12);
  assert_int_equal(o.alpn_len, 12);
  char buf[24];
  assert_string_equal(tp_hello_version_name(0x7f12, buf, sizeof(buf)), "TLS1.3-draft18");
}

/* OpenSSL 1.1.1d offers exactly {1.3, 1.2}: no TLS 1.0/1.1, though the
 * file's lowest_protocol is 0x0301. The SCSV is reported, not a suite. */
static void test_recorded_tls13_tls12_only(void **state) {
  (void)state;
  tp_hello_offer o;
  parse_hex(openssl111d, &o);
  assert_true(o.versions_exact);
  assert_int_equal(o.versions, TP_TLS1_2 | TP_TLS1_3);
  assert_int_equal(o.legacy_version, 0x0303);
  assert_true(o.renegotiation_scsv);
  assert_int_equal(o.n_cipher_suites, 30);
  for (size_t i = 0; i < o.n_cipher_suites; i++)
    assert_int_not_equal(o.cipher_suites[i], 0x00ff);
  assert_int_equal(o.cipher_suites[0], 0x1302);
  assert_int_equal(o.n_key_shares, 1);
  assert_int_equal(o.key_shares[0], 29);
  assert_int_equal(o.n_signature_algorithms, 20);
  assert_int_equal(o.signature_algorithms[3], 0x0807);
  assert_false(o.grease);
}

/* Java 8u161 sends no supported_versions: the hello names its highest
 * version only, so every TLS version up to it is offered, and versions_exact
 * tells the caller to apply the client's minimum. */
static void test_recorded_legacy_version(void **state) {
  (void)state;
  tp_hello_offer o;
  parse_hex(java8u161, &o);
  assert_false(o.versions_exact);
  assert_int_equal(o.versions, TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2);
  assert_int_equal(o.n_cipher_suites, 49);
  assert_int_equal(o.cipher_suites[0], 0xc024);
  assert_int_equal(o.n_groups, 10);
  assert_int_equal(o.groups[3], 9);
  char buf[16];
  assert_string_equal(tp_hello_group_name(9, buf, sizeof(buf)), "sect283k1");
  assert_int_equal(o.n_signature_algorithms, 10);
  assert_string_equal(tp_hello_sigalg_name(0x0402, buf, sizeof(buf)), "dsa_sha256");
  assert_true(o.renegotiation_scsv);
}

/* Java 6u45 sends an SSL 2.0-compatible CLIENT-HELLO announcing TLS 1.0:
 * 3-byte cipher specs, of which those starting with 0 are TLS suites. */
static void test_recorded_sslv2_format(void **state) {
  (void)state;
  tp_hello_offer o;
  parse_hex(java6u45, &o);
  assert_true(o.sslv2_format);
  assert_int_equal(o.legacy_version, 0x0301);
  assert_int_equal(o.versions, TP_TLS1_0);
  assert_int_equal(o.cipher_suites[0], 0x0004);
  assert_int_equal(o.n_cipher_suites, 15);
  assert_int_equal(o.n_sslv2_only_specs, 4);
  assert_true(o.renegotiation_scsv);
  assert_int_equal(o.n_groups, 0);
}

/* One message may span records (RFC 8446 §5.1): split OpenSSL's hello in
 * two records and the offer is the same. */
static void test_recorded_two_records(void **state) {
  (void)state;
  uint8_t b[2048], split[2048];
  size_t n = unhex(openssl111d, b, sizeof(b));
  size_t msg = n - 5, first = 100;
  memcpy(split, b, 3);
  split[3] = 0;
  split[4] = (uint8_t)first;
  memcpy(split + 5, b + 5, first);
  memcpy(split + 5 + first, b, 3);
  split[5 + first + 3] = (uint8_t)((msg - first) >> 8);
  split[5 + first + 4] = (uint8_t)(msg - first);
  memcpy(split + 10 + first, b + 5 + first, msg - first);
  tp_hello_offer one, two;
  const char *why = NULL;
  assert_int_equal(tp_hello_parse_recorded(b, n, &one, &why), 0);
  assert_int_equal(tp_hello_parse_recorded(split, n + 5, &two, &why), 0);
  assert_memory_equal(&one, &two, sizeof(one));
}

/* Every strict prefix of a recorded hello, and every corruption below, is
 * refused with a reason; exact-size heap copies let ASan see over-reads. */
static void expect_refused(const uint8_t *b, size_t n, const char *what) {
  uint8_t *copy = malloc(n ? n : 1);
  memcpy(copy, b, n);
  tp_hello_offer o;
  const char *why = NULL;
  if (tp_hello_parse_recorded(copy, n, &o, &why) != -1 || why == NULL)
    fail_msg("%s: accepted", what);
  free(copy);
}

static void test_recorded_malformed(void **state) {
  (void)state;
  const char *const hellos[] = {chrome57_win7, openssl111d, java8u161, java6u45};
  uint8_t b[2048];
  for (size_t h = 0; h < sizeof(hellos) / sizeof(hellos[0]); h++) {
    size_t n = unhex(hellos[h], b, sizeof(b));
    for (size_t cut = 0; cut < n; cut++)
      expect_refused(b, cut, "a prefix");
    b[n] = 0;
    expect_refused(b, n + 1, "a trailing byte");
  }
  size_t n = unhex(openssl111d, b, sizeof(b));
  b[0] = 23; /* application_data */
  expect_refused(b, n, "a record that is not a handshake");
  n = unhex(openssl111d, b, sizeof(b));
  b[5] = 2; /* a ServerHello */
  expect_refused(b, n, "not a ClientHello");
  n = unhex(openssl111d, b, sizeof(b));
  b[5 + 4 + 2 + 32] = 33; /* legacy_session_id longer than 32 */
  expect_refused(b, n, "a 33-byte session id");
  n = unhex(java6u45, b, sizeof(b));
  b[6] = 0; /* cipher_spec_length 0x3c -> 0x003b: not a multiple of 3 */
  b[7] = 0x3b;
  expect_refused(b, n, "SSL 2.0 specs not a multiple of 3");
}

/* RFC 8446 §4.2: no two extensions of one type. A second supported_groups
 * must not silently replace the first. */
static void test_client_hello_duplicate_extension(void **state) {
  (void)state;
  uint8_t b[512];
  size_t n = build_hello(b);
  const uint8_t again[] = {0, 10, 0, 4, 0, 2, 0, 24};
  memcpy(b + n, again, sizeof(again));
  n += sizeof(again);
  size_t ext_len_at = 2 + 32 + 1 + 4 + 2;
  size_t ext_len = n - ext_len_at - 2;
  b[ext_len_at] = (uint8_t)(ext_len >> 8);
  b[ext_len_at + 1] = (uint8_t)ext_len;
  tp_hello_offer offer;
  assert_int_equal(tp_hello_parse_client_hello(b, n, &offer), -1);
}

static tp_buf buf_of(const char *s) {
  tp_buf b;
  tp_buf_init(&b, TP_HTTP_MAX_HEADER_BYTES);
  assert_int_equal(tp_buf_append(&b, s, strlen(s)), TP_E_OK);
  return b;
}

static void test_http_head(void **state) {
  (void)state;
  tp_http_response r;
  tp_buf b = buf_of("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                    "strict-transport-security: max-age=63072000\r\n\r\nbody");
  assert_int_equal(tp_http_parse_head(&b, &r), 0);
  assert_int_equal(r.status, 200);
  assert_true(r.hsts);
  assert_true(r.complete);
  tp_buf_free(&b);

  b = buf_of("HTTP/1.0 503 Service Unavailable\n\n");
  assert_int_equal(tp_http_parse_head(&b, &r), 0);
  assert_int_equal(r.status, 503);
  assert_false(r.hsts);
  tp_buf_free(&b);

  b = buf_of("HTTP/1.1 301 Moved\r\nLocation: /x\r\n"); /* head not finished */
  assert_int_equal(tp_http_parse_head(&b, &r), 1);
  assert_int_equal(r.status, 301);
  tp_buf_free(&b);

  b = buf_of("HTTP/1."); /* may still become a status line */
  assert_int_equal(tp_http_parse_head(&b, &r), 1);
  tp_buf_free(&b);

  const char *bad[] = {"SSH-2.0-OpenSSH_9.2\r\n", "HTTP/2 200\r\n\r\n", "HTTP/1.1 20 OK\r\n",
                       "HTTP/1.1 2000 OK\r\n", "<html>", "HTTP/1.1 abc OK\r\n"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    b = buf_of(bad[i]);
    if (tp_http_parse_head(&b, &r) != -1)
      fail_msg("accepted \"%s\"", bad[i]);
    tp_buf_free(&b);
  }
}

static void test_http_request(void **state) {
  (void)state;
  char *req = tp_http_build_request("HEAD", "/health", "shop.example");
  assert_string_equal(req, "HEAD /health HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: tlsprobe\r\n"
                           "Accept: */*\r\n\r\n");
  free(req);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_hello),
      cmocka_unit_test(test_client_hello_truncated),
      cmocka_unit_test(test_client_hello_duplicate_extension),
      cmocka_unit_test(test_recorded_draft_tls13_only),
      cmocka_unit_test(test_recorded_tls13_tls12_only),
      cmocka_unit_test(test_recorded_legacy_version),
      cmocka_unit_test(test_recorded_sslv2_format),
      cmocka_unit_test(test_recorded_two_records),
      cmocka_unit_test(test_recorded_malformed),
      cmocka_unit_test(test_http_head),
      cmocka_unit_test(test_http_request),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
